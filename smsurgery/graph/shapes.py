"""Prove a shape edit with TensorFlow: the new version runs the sizes the old one refused.

Old-vs-new verification feeds both versions the inputs the *old* one
accepts (batch 1 for a batch-1 export), so it cannot show that the new
declared shape is real. This runs the new version at sizes 2 and 3 for
each dimension made unknown, under the TF1 session loader (as Serving does)
and, for TF2 exports, under `tf.saved_model.load`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from smsurgery.core.errors import SmsurgeryError
from smsurgery.core.model import read
from smsurgery.graph.session import first_line, load_session, load_tf2, run_tf2
from smsurgery.serving.samples import sample_array, sample_inputs

TRIAL_SIZES = (2, 3)


def _feeds(path: Path, tags: tuple[str, ...], key: str, alias: str, dims: Sequence[int], size: int) -> dict:
    signature = read(path).meta_graph(tags).signature(key)
    feeds = sample_inputs(signature, batch=size)
    shape = tuple(size if d < 0 else d for d in dims)
    feeds[alias] = sample_array(replace(signature.input(alias), shape=shape), batch=size)
    return feeds


def run_new_shape(
    path: Path, tags: tuple[str, ...], key: str, alias: str, dims: Sequence[int], *, tf2: bool
) -> list[str]:
    """Problems running `key` of `path` with `alias` at the new shape (empty when it runs)."""
    if all(d >= 0 for d in dims):
        return []
    problems = []
    trials = [_feeds(path, tags, key, alias, dims, size) for size in TRIAL_SIZES]
    try:
        with load_session(path, tags) as session:
            for feeds in trials:
                try:
                    session.run(key, feeds)
                except SmsurgeryError as error:
                    problems.append(f"'{key}' does not run '{alias}' of shape {list(feeds[alias].shape)}: {error}")
                    break
    except SmsurgeryError as error:
        return [str(error)]
    if tf2 and not problems:
        try:
            loaded = load_tf2(path, tags)
            for feeds in trials:
                run_tf2(loaded, key, feeds)
        except SmsurgeryError as error:
            problems.append(f"tf.saved_model.load: '{key}' with '{alias}' at the new shape: {first_line(error)}")
    return problems
