"""`plan` and `apply` on s3:// model bases, against moto on loopback.

A proto-only recipe: `plan` reads the remote bases (named on the command
line and in `--from FILE`), `apply --jobs 2` publishes one new version into
each by the object-store protocol (forked workers make their own client),
and the second apply finds nothing to do.
"""

from __future__ import annotations

import json
from pathlib import Path

from smsurgery.core.errors import InvalidOption
from smsurgery.recipes import load
from smsurgery.recipes.plan import expand_bases
from tests.conftest import FIXTURES, run_cli
from tests.remote_servers import Store
from tests.test_remote_publish import assert_serving_sees_no_broken_version

RECIPE = '[[steps]]\nop = "rename_signature"\nold = "double"\nnew = "times_six"\n[steps.match]\nsignature = "double"\n'


def test_plan_then_apply_on_two_remote_bases_then_nothing(s3_store: Store, tmp_path: Path) -> None:
    model = FIXTURES / "models" / "tf2_module"
    first, second = (s3_store.upload(model, s3_store.prefix(name)) for name in ("a", "b"))
    (tmp_path / "recipe.toml").write_text(RECIPE)
    (tmp_path / "bases.txt").write_text(f"# the fleet\n{second}\n")
    planned = run_cli(
        "plan", tmp_path / "recipe.toml", first, "--from", tmp_path / "bases.txt", "--json", env=s3_store.env
    )
    assert planned.code == 1, planned.stderr
    assert [(m["base"], m["status"]) for m in json.loads(planned.stdout)["models"]] == [
        (first, "changes"), (second, "changes")
    ]  # fmt: skip
    applied = run_cli("apply", tmp_path / "recipe.toml", first, second, "--jobs", "2", "--no-verify", "--json",
                      env=s3_store.env)  # fmt: skip
    assert applied.code == 0, applied.stderr
    outcomes = json.loads(applied.stdout)["models"]
    assert [(m["status"], m["path"]) for m in outcomes] == [("published", f"{first}/2"), ("published", f"{second}/2")]
    recipe = load(tmp_path / "recipe.toml")
    again = recipe.apply([first, second])
    assert again.exit_status == 0 and again.count("unchanged") == 2, [m.reason for m in again.models]
    for base in (first, second):
        assert set(assert_serving_sees_no_broken_version(s3_store, base)) == {1, 2}
        assert not [k for k in s3_store.keys(base) if k.startswith(".smsurgery")]


def test_patterns_in_urls_are_refused_in_one_line() -> None:
    import pytest

    with pytest.raises(InvalidOption, match="patterns are not expanded"):
        expand_bases(["s3://bucket/models/*"])
