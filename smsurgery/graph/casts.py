"""Prove an input cast with TensorFlow: new(x) == old(cast(x) * scale), under both loaders.

Old-vs-new verification cannot feed the source the new dtype, so the cast
edit marks its signature as new there, and this comparison stands in: the
new version is fed sample values of the new dtype, the source the same
values cast (and scaled) by numpy to the dtype it expects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from smsurgery.core.errors import SmsurgeryError
from smsurgery.core.model import read
from smsurgery.graph.session import load_session, load_tf2, run_tf2
from smsurgery.publishing.comparison import compare_arrays
from smsurgery.serving.samples import numpy_dtype, sample_inputs


def _differences(expected: dict, actual: dict, what: str) -> list[str]:
    problems = []
    for alias, value in expected.items():
        compared = compare_arrays(value, actual[alias])
        if not compared:
            problems.append(f"{what}: output '{alias}' differs from the source fed the cast input ({compared.detail})")
    return problems


def compare_cast(
    source: Path, source_tags: tuple[str, ...], staging: Path, tags: tuple[str, ...], edit: Any, *, tf2: bool
) -> list[str]:
    """Problems of the cast edit `edit` (signature, alias, scale) in `staging` against `source`."""
    key, alias = edit.signature, edit.alias
    new_view = read(staging).meta_graph(tags).signature(key)
    old_view = read(source).meta_graph(source_tags).signature(key)
    new_feeds = sample_inputs(new_view, batch=2)
    old_feeds = dict(new_feeds)
    old_type = np.dtype(numpy_dtype(old_view.input(alias).dtype))
    cast = np.asarray(new_feeds[alias]).astype(old_type)
    old_feeds[alias] = cast * old_type.type(edit.scale) if edit.scale is not None else cast
    try:
        with load_session(source, source_tags) as session:
            expected = session.run(key, old_feeds)
        with load_session(staging, tags) as session:
            problems = _differences(expected, session.run(key, new_feeds), "TF1 loader")
        if tf2:
            values = run_tf2(load_tf2(staging, tags), key, new_feeds)
            problems += _differences(expected, values, "tf.saved_model.load")
    except SmsurgeryError as error:
        return [str(error)]
    return problems
