"""Load a SavedModel the way TensorFlow Serving does, and run its signatures.

TensorFlow Serving loads a version with the TF1 session loader and runs a
signature by feeding and fetching the tensor names in `signature_def`. This
module does the same (and offers `tf.saved_model.load` beside it, so tests
and verification can check that both views agree). Loader failures become
one-line `LoaderFailed` errors that say which loader failed and why.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from smsurgery.core.errors import LoaderFailed, SignatureNotFound, UnsupportedModel, listing
from smsurgery.core.integrity import require_safe_tree
from smsurgery.storage.mirror import materialize

INIT_OP_SIGNATURE = "__saved_model_init_op"


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    """Silence file descriptor 2 itself: TensorFlow's C++ start-up lines bypass Python."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def import_tf() -> Any:
    """Import TensorFlow quietly; only ever called by commands that need the runtime.

    TensorFlow 2.21 prints INFO lines (oneDNN, CUDA stubs, cuInit) from C++
    while it imports and first lists devices, whatever TF_CPP_MIN_LOG_LEVEL
    says; they would bury smsurgery's one-line messages. SMSURGERY_TF_LOGS=1
    keeps them.
    """
    if "tensorflow" in sys.modules and hasattr(sys.modules["tensorflow"], "Graph"):
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    quiet = _stderr_silenced() if not os.environ.get("SMSURGERY_TF_LOGS") else contextlib.nullcontext()
    with quiet:
        import tensorflow as tf

        tf.config.list_physical_devices()  # the cuInit message comes out here, not at the first run
    tf.get_logger().setLevel("ERROR")
    with contextlib.suppress(Exception):
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    return tf


# Headers TensorFlow puts before the message that names the actual problem.
_GENERIC_HEADERS = ("Graph execution error:", "Detected at node", "Detected unsupported operations")


def first_line(error: BaseException) -> str:
    """A TensorFlow error's message in one line: the line that names the problem.

    Graph-mode errors start with "Graph execution error:" and a stack of
    "Detected at node" context; the reason comes later, so skip those.
    """
    text = str(getattr(error, "message", None) or error or "")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    useful = [
        line
        for line in lines
        if not line.startswith(_GENERIC_HEADERS) and not line.startswith(("[[", "File ", "Node:"))
    ]
    chosen = useful[0] if useful else (lines[0] if lines else "")
    return f"{type(error).__name__}: {chosen}" if chosen else type(error).__name__


@dataclass
class Session:
    """A TF1 session holding one loaded meta graph (TensorFlow's own MetaGraphDef)."""

    graph: Any
    session: Any
    meta_graph: Any
    path: Path

    def signature_keys(self) -> list[str]:
        return sorted(k for k in self.meta_graph.signature_def if k != INIT_OP_SIGNATURE)

    def run(self, key: str, feeds: Mapping[str, Any], outputs: list[str] | None = None) -> dict[str, np.ndarray]:
        """Run signature `key` with inputs by alias; return outputs by alias."""
        if key not in self.meta_graph.signature_def or key == INIT_OP_SIGNATURE:
            raise SignatureNotFound(
                f"no signature '{key}' in {self.path}", hint=f"it has: {listing(self.signature_keys())}"
            )
        signature = self.meta_graph.signature_def[key]
        feed_dict = {}
        for alias, value in feeds.items():
            if alias not in signature.inputs:
                from smsurgery.core.errors import AliasNotFound

                raise AliasNotFound(
                    f"no input '{alias}' in signature '{key}'", hint=f"it has: {listing(sorted(signature.inputs))}"
                )
            info = signature.inputs[alias]
            if not info.name:
                raise UnsupportedModel(f"input '{alias}' of signature '{key}' is a composite tensor; feed it by parts")
            feed_dict[info.name] = value
        wanted = outputs if outputs is not None else sorted(signature.outputs)
        fetches = {}
        for alias in wanted:
            info = signature.outputs[alias]
            if not info.name:
                raise UnsupportedModel(f"output '{alias}' of signature '{key}' is a composite tensor")
            fetches[alias] = info.name
        try:
            return self.session.run(fetches, feed_dict=feed_dict)
        except Exception as error:
            raise LoaderFailed(f"running signature '{key}' of {self.path} failed: {first_line(error)}") from error

    def close(self) -> None:
        self.session.close()


def session_for(graph: Any) -> Any:
    """A `tf.compat.v1.Session` on `graph` with soft placement.

    Graphs exported for GPU serving (or frozen on a GPU machine) pin ops to
    /device:GPU:0; soft placement lets them load and run on a CPU-only machine.
    """
    tf = import_tf()
    return tf.compat.v1.Session(graph=graph, config=tf.compat.v1.ConfigProto(allow_soft_placement=True))


@contextlib.contextmanager
def load_session(path: Path, tags: tuple[str, ...] | list[str]) -> Iterator[Session]:
    """`tf.compat.v1.saved_model.loader.load` into a fresh graph: how Serving loads a version."""
    require_safe_tree(path)
    materialize(path)  # a mirror of a remote version: its real shards, never the placeholders
    tf = import_tf()
    graph = tf.Graph()
    session = session_for(graph)
    try:
        with graph.as_default():
            try:
                meta_graph = tf.compat.v1.saved_model.loader.load(session, list(tags), str(path))
            except Exception as error:
                raise LoaderFailed(f"the TF1 session loader failed on {path}: {first_line(error)}") from error
        yield Session(graph=graph, session=session, meta_graph=meta_graph, path=path)
    finally:
        session.close()


def load_tf2(path: Path, tags: tuple[str, ...] | list[str] | None = None, *, links_checked: bool = False) -> Any:
    """`tf.saved_model.load`: the object-graph view of a TF2 export.

    `links_checked`: `path` is a scratch folder of links into a version folder
    that the caller has already checked (its links leave it by design).
    """
    if not links_checked:
        require_safe_tree(path)
    materialize(path)
    tf = import_tf()
    try:
        return tf.saved_model.load(str(path), tags=list(tags) if tags else None)
    except Exception as error:
        raise LoaderFailed(f"tf.saved_model.load failed on {path}: {first_line(error)}") from error


def run_tf2(loaded: Any, key: str, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Call `loaded.signatures[key]` with keyword inputs; outputs as numpy by alias."""
    if key not in loaded.signatures:
        raise SignatureNotFound(
            f"tf.saved_model.load sees no signature '{key}'", hint=f"it has: {listing(sorted(loaded.signatures))}"
        )
    tf = import_tf()
    function = loaded.signatures[key]
    try:
        result = function(**{alias: tf.constant(value) for alias, value in feeds.items()})
    except Exception as error:
        raise LoaderFailed(
            f"running signature '{key}' under tf.saved_model.load failed: {first_line(error)}"
        ) from error
    return {alias: value.numpy() for alias, value in result.items()}
