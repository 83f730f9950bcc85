"""The attach interface: any preprocessor and postprocessor, on the session route and the function route.

A toy attachment (a new input `half` that is doubled into the original
input, and outputs multiplied by 10 under new aliases) is built into a TF1
export and a TF2 export; the staging check must pass, both loaders must
give the original signature's outputs with the same steps done in numpy,
the TF2 result must keep its object graph, and a postprocessor whose graph
and eager results disagree must stop the publish.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from smsurgery import read
from smsurgery.core.errors import VerificationFailed
from smsurgery.graph.attach import AttachPlan, StagingCheck, attach
from smsurgery.graph.session import import_tf, load_session, load_tf2, run_tf2
from tests.conftest import tree_digest

pytestmark = pytest.mark.slow
tf = import_tf()


@dataclass(frozen=True)
class Doubled:
    feeds: str
    width: int
    image_inputs: tuple[str, ...] = ()

    @property
    def replaces(self) -> tuple[str, ...]:
        return (self.feeds,)

    @property
    def new_inputs(self) -> dict:
        return {"half": ("float32", (None, self.width))}

    def __call__(self, tf, inputs):
        return {self.feeds: inputs["half"] * 2.0}

    def sample(self, tf) -> dict:
        return {"half": np.arange(self.width, dtype=np.float32)[None] - 1.5}


class TimesTen:
    def __call__(self, tf, outputs):
        return {f"{alias}_x10": value * 10.0 for alias, value in outputs.items()}


class Unstable(TimesTen):
    """Differs between graph and eager: adds 1 only when building a graph."""

    def __call__(self, tf, outputs):
        shift = 0.0 if tf.executing_eagerly() else 1.0
        return {alias: value + shift for alias, value in outputs.items()}


def plan_for(base, key: str, feeds: str, width: int, route: str, post=None) -> AttachPlan:
    model = read(base)
    meta = model.meta_graph()
    return AttachPlan(
        model=model, meta=meta, signature=meta.signature(key), target="attached", keep_original_as=None,
        replace=False, base=base, route=route, pre=Doubled(feeds, width), post=post or TimesTen(),
    )  # fmt: skip


CASES = [
    ("tf1_linear", "prediction", "x", 3, "session", {}),
    ("tf2_module", "serving_default", "a", 3, "function", {"b": np.ones((2, 3), np.float32)}),
]


@pytest.mark.parametrize(("fixture", "key", "feeds", "width", "route", "others"), CASES)
def test_pre_and_postprocessor_on_both_routes(model_copy, fixture, key, feeds, width, route, others) -> None:
    base = model_copy(fixture)
    source = tree_digest(base / "1")
    plan = plan_for(base, key, feeds, width, route)
    check = StagingCheck(plan)
    published = attach(plan, new_version=None, check=check)
    assert published.version == 2 and tree_digest(base / "1") == source
    assert check.summary["new_signature_max_abs_diff"] == {"tf1": 0.0, "tf2": 0.0}
    half = np.array([[0.5, 1.0, -2.0], [3.0, 0.0, 1.0]], np.float32)
    with load_session(base / "1", ("serve",)) as old, load_session(base / "2", ("serve",)) as new:
        want = {f"{a}_x10": v * 10 for a, v in old.run(key, {feeds: half * 2, **others}).items()}
        got = new.run("attached", {"half": half, **others})
    assert sorted(got) == sorted(want) and all(np.allclose(got[a], want[a], rtol=1e-6) for a in want)
    loaded = load_tf2(base / "2")
    tf2 = run_tf2(loaded, "attached", {"half": half, **others})
    assert all(np.allclose(tf2[a], want[a], rtol=1e-6) for a in want)
    assert read(base / "2").meta_graph().kind == read(base / "1").meta_graph().kind


def test_a_check_that_fails_publishes_nothing(model_copy) -> None:
    base = model_copy("tf2_module")
    plan = plan_for(base, "serving_default", "a", 3, "function", post=Unstable())
    with pytest.raises(VerificationFailed, match="differs from 'serving_default' with the same steps done eagerly"):
        attach(plan, new_version=None, check=StagingCheck(plan))
    assert sorted(p.name for p in base.iterdir()) == ["1"]
