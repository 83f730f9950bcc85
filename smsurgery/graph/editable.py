"""Bring a SavedModel into a `tf.compat.v1` Graph and Session to edit it.

This is the general graph-editing entry point: every surgery that needs to
add ops to a model (decoding in front of an input, converting a checkpoint)
starts from an `EditableGraph` and ends with `graph.export.publish_editable`.

It does what `tf.compat.v1.saved_model.loader.load` does (import the meta
graph with its collections, restore the variables through the meta graph's
own `saver_def`, run the init op with the asset paths fed) but keeps the
pieces that a re-export needs and the loader throws away: the `Saver` built
from `saver_def` (without it `SavedModelBuilder` writes an empty
`variables/`), the init op (re-exported as the main op), and the asset
tensors. Asset path constants are rewritten to the files of the source
version before import, so that `SavedModelBuilder` finds and copies them
(it reads the path from the constant and silently skips a file it cannot
find).

Works on TF1 exports (`SavedModelBuilder`), TF2 exports
(`tf.saved_model.save`) and Keras 3 exports alike: all of them carry a
graph, a `saver_def` and signature tensor names. A TF2 export comes out of
`export.publish_editable` as a TF1-style export (no object graph).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smsurgery.core import protos
from smsurgery.core.errors import LoaderFailed, SignatureNotFound, listing
from smsurgery.core.graphmodel import node_of
from smsurgery.core.integrity import require_safe_tree
from smsurgery.core.layout import ModelRef
from smsurgery.core.model import MetaGraph, SavedModelFile, read
from smsurgery.graph.session import INIT_OP_SIGNATURE, first_line, import_tf, session_for
from smsurgery.storage.mirror import materialize

ASSETS_KEY = "saved_model_assets"
MAIN_OP_KEYS = ("saved_model_main_op", "legacy_init_op")


@dataclass
class EditableGraph:
    """One meta graph of a SavedModel, live in a Graph+Session with its variables restored.

    `meta_graph` is TensorFlow's own `MetaGraphDef` (asset paths rewritten
    to the source files); `model` is smsurgery's TF-free view of the same
    version, for typed signature views and error messages.
    """

    model: SavedModelFile
    meta: MetaGraph
    graph: Any
    session: Any
    meta_graph: Any
    saver: Any | None
    init_op: Any | None
    asset_files: dict[str, Path] = field(default_factory=dict)

    @property
    def source(self) -> Path:
        return self.model.path

    @property
    def tags(self) -> tuple[str, ...]:
        return self.meta.tags

    @property
    def kind(self) -> str:
        return self.meta.kind

    def signature_defs(self) -> dict[str, Any]:
        """The signatures (TensorFlow `SignatureDef`s) by key, without the init op entry."""
        return {k: v for k, v in self.meta_graph.signature_def.items() if k != INIT_OP_SIGNATURE}

    def signature_def(self, key: str) -> Any:
        signatures = self.signature_defs()
        if key not in signatures:
            raise SignatureNotFound(
                f"no signature '{key}' in {self.model.ref}", hint=f"it has: {listing(sorted(signatures))}"
            )
        return signatures[key]

    def tensor(self, name: str) -> Any:
        return self.graph.get_tensor_by_name(name)

    def asset_tensors(self) -> list[Any]:
        """The asset path constants, in the form `SavedModelBuilder(assets_collection=...)` takes."""
        return [self.graph.get_tensor_by_name(name) for name in self.asset_files]

    def run(self, fetches: Any, feed_dict: dict[Any, Any] | None = None) -> Any:
        return self.session.run(fetches, feed_dict=feed_dict)


def _asset_protos(meta_graph: Any) -> list[Any]:
    """`asset_file_def` entries, or the older `saved_model_assets` collection (as the loader reads them)."""
    from tensorflow.core.protobuf import meta_graph_pb2

    if meta_graph.asset_file_def:
        return list(meta_graph.asset_file_def)
    result = []
    if ASSETS_KEY in meta_graph.collection_def:
        for packed in meta_graph.collection_def[ASSETS_KEY].any_list.value:
            asset = meta_graph_pb2.AssetFileDef()
            packed.Unpack(asset)
            result.append(asset)
    return result


def _point_assets_at_source(meta_graph: Any, source: Path) -> dict[str, Path]:
    """Make every asset path tensor a constant holding the source's file; return tensor name -> file.

    TF1 exports hold asset paths in `Const` nodes, TF2 exports in
    `Placeholder`s (`asset_path_initializer`) that only the loader feeds.
    `SavedModelBuilder` accepts constants only, and reads the file to copy
    from their value, so both become constants naming the source's file.
    Loaders still feed them with the new version's path.
    """
    from tensorflow.core.framework import types_pb2

    nodes = {node.name: node for node in meta_graph.graph_def.node}
    files: dict[str, Path] = {}
    for asset in _asset_protos(meta_graph):
        name = asset.tensor_info.name
        path = (source / "assets" / asset.filename).absolute()
        files[name] = path
        node = nodes.get(node_of(name))
        if node is None or node.op not in ("Const", "Placeholder"):
            continue
        if node.op == "Placeholder":
            node.op = "Const"
            for key in list(node.attr):
                del node.attr[key]
            node.attr["dtype"].type = types_pb2.DT_STRING
        value = node.attr["value"].tensor
        value.dtype = types_pb2.DT_STRING
        value.tensor_shape.Clear()
        del value.string_val[:]
        value.string_val.append(str(path).encode())
    return files


def _tf_meta_graph(meta: MetaGraph) -> Any:
    """The meta graph as TensorFlow's own message class (our reader uses a private descriptor pool)."""
    from tensorflow.core.protobuf import meta_graph_pb2

    return protos.to_tf(meta.proto, meta_graph_pb2.MetaGraphDef)


def _restore(session: Any, saver: Any | None, source: Path) -> None:
    index = source / "variables" / "variables.index"
    if saver is None or not index.is_file():
        return
    materialize(source)  # a mirror of a remote version: the real shards first
    saver.restore(session, str(source / "variables" / "variables"))


@contextlib.contextmanager
def open_editable(
    path: str | Path | ModelRef | SavedModelFile, tags: tuple[str, ...] | list[str] | None = None
) -> Iterator[EditableGraph]:
    """Import one meta graph (by tag set; default `serve`) into a fresh Graph+Session.

    Variables are restored and the init op has run, exactly as TensorFlow
    Serving would have it; the session is closed when the block ends.
    """
    model = path if isinstance(path, SavedModelFile) else read(path)
    meta = model.meta_graph(tags)
    require_safe_tree(model.path)
    tf = import_tf()
    meta_graph = _tf_meta_graph(meta)
    asset_files = _point_assets_at_source(meta_graph, model.path)
    graph = tf.Graph()
    session = session_for(graph)
    try:
        with graph.as_default():
            try:
                saver = tf.compat.v1.train.import_meta_graph(meta_graph, clear_devices=False)
                _restore(session, saver, model.path)
                init_op = _init_op(meta_graph)
                if init_op is not None:
                    feeds = {graph.get_tensor_by_name(n): str(p) for n, p in asset_files.items()}
                    session.run(init_op, feed_dict=feeds)
            except Exception as error:
                raise LoaderFailed(f"cannot load {model.ref} into a session: {first_line(error)}") from error
        yield EditableGraph(
            model=model,
            meta=meta,
            graph=graph,
            session=session,
            meta_graph=meta_graph,
            saver=saver,
            init_op=init_op,
            asset_files=asset_files,
        )
    finally:
        session.close()


def _init_op(meta_graph: Any) -> Any | None:
    """`__saved_model_init_op`, else the main op, else the legacy init op: the loader's order."""
    from tensorflow.python.saved_model import loader_impl

    return loader_impl.get_init_op(meta_graph)
