"""A SavedModel in memory: read it, pick a meta graph by tags, typed views.

Reading never imports the TensorFlow runtime (see `protos`). The views are
plain dataclasses so that `show`, `diff` and `request` share one
interpretation of dtypes, shapes and composite tensors.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import message as pb_message

from smsurgery.core import lazy_files, protos
from smsurgery.core.checkpoint_index import OBJECT_GRAPH_KEY, IndexEntry, read_index
from smsurgery.core.errors import CorruptModel, SignatureNotFound, TagSetNotFound, listing
from smsurgery.core.layout import ModelRef, is_remote_text
from smsurgery.core.layout import resolve as resolve_local
from smsurgery.core.skim import FileLayout, Skim, skim

DEFAULT_TAGS = ("serve",)
DEFAULT_SIGNATURE = "serving_default"
INIT_OP_SIGNATURE = "__saved_model_init_op"
METHOD_PREFIX = "tensorflow/serving/"


@dataclass(frozen=True)
class TensorView:
    """One input or output of a signature, as clients see it."""

    alias: str
    dtype: str  # "DT_FLOAT"
    shape: tuple[int, ...] | None  # -1 for an unknown dim; None for unknown rank
    name: str | None  # "x:0"; None for composite tensors
    encoding: str = "name"  # name | coo_sparse | composite_tensor
    components: dict[str, str] = field(default_factory=dict)

    @property
    def location(self) -> str:
        if self.name is not None:
            return self.name
        parts = ", ".join(f"{k}={v}" for k, v in self.components.items())
        return f"{self.encoding}({parts})"

    def to_json(self) -> dict[str, Any]:
        return {
            "dtype": self.dtype,
            "shape": list(self.shape) if self.shape is not None else None,
            "name": self.name,
            "encoding": self.encoding,
            "components": dict(self.components),
        }


@dataclass(frozen=True)
class SignatureView:
    key: str
    method_name: str
    inputs: tuple[TensorView, ...]
    outputs: tuple[TensorView, ...]

    @property
    def method(self) -> str:
        """`predict`, `classify`, `regress`, or the method name as written."""
        if self.method_name.startswith(METHOD_PREFIX):
            return self.method_name[len(METHOD_PREFIX) :]
        return self.method_name

    def input(self, alias: str) -> TensorView:
        return _by_alias(self.inputs, alias, f"input of signature '{self.key}'")

    def output(self, alias: str) -> TensorView:
        return _by_alias(self.outputs, alias, f"output of signature '{self.key}'")

    def to_json(self) -> dict[str, Any]:
        return {
            "method_name": self.method_name,
            "inputs": {t.alias: t.to_json() for t in self.inputs},
            "outputs": {t.alias: t.to_json() for t in self.outputs},
        }


def _by_alias(tensors: tuple[TensorView, ...], alias: str, what: str) -> TensorView:
    for tensor in tensors:
        if tensor.alias == alias:
            return tensor
    from smsurgery.core.errors import AliasNotFound

    raise AliasNotFound(f"no {what} named '{alias}'", hint=f"it has: {listing(t.alias for t in tensors)}")


def shape_of(shape_proto: Any) -> tuple[int, ...] | None:
    if shape_proto.unknown_rank:
        return None
    return tuple(int(dim.size) for dim in shape_proto.dim)


def shape_text(shape: Sequence[int] | None) -> str:
    """`(-1, 3)` as TensorFlow prints shapes; `unknown rank` for None."""
    if shape is None:
        return "unknown rank"
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def tensor_view(alias: str, info: Any) -> TensorView:
    encoding = info.WhichOneof("encoding") or "name"
    components: dict[str, str] = {}
    name: str | None = None
    if encoding == "name":
        name = info.name
    elif encoding == "coo_sparse":
        coo = info.coo_sparse
        components = {
            "values": coo.values_tensor_name,
            "indices": coo.indices_tensor_name,
            "dense_shape": coo.dense_shape_tensor_name,
        }
    elif encoding == "composite_tensor":
        components = {str(i): c.name for i, c in enumerate(info.composite_tensor.components)}
    return TensorView(
        alias=alias,
        dtype=protos.dtype_name(info.dtype),
        shape=shape_of(info.tensor_shape),  # absent reads as a scalar, as in TensorFlow
        name=name,
        encoding=encoding,
        components=components,
    )


def signature_view(key: str, signature_def: Any) -> SignatureView:
    return SignatureView(
        key=key,
        method_name=signature_def.method_name,
        inputs=tuple(tensor_view(a, signature_def.inputs[a]) for a in sorted(signature_def.inputs)),
        outputs=tuple(tensor_view(a, signature_def.outputs[a]) for a in sorted(signature_def.outputs)),
    )


def tag_set_text(tags: tuple[str, ...] | list[str]) -> str:
    return ",".join(tags) if tags else "(no tags)"


@dataclass(frozen=True)
class Variables:
    count: int
    bytes: int
    present: bool  # False: no variables/variables.index at all


@dataclass(frozen=True)
class FileEntry:
    path: str  # relative to the version folder, posix
    bytes: int


class MetaGraph:
    """One meta graph of a SavedModel, with read-only typed views.

    `skim` is the MetaGraphDef without `graph_def` (all that signatures,
    tags, assets and the object graph need); `proto` is the whole of it,
    parsed from the file on first use; `graph_def` parses only the graph.
    """

    def __init__(self, model: SavedModelFile, meta: int | Any) -> None:
        """`meta`: the position of the meta graph in the file, or a MetaGraphDef in memory (all of it)."""
        self.model = model
        self._given = None if isinstance(meta, int) else meta
        self.position = meta if isinstance(meta, int) else self._position_of(meta)
        self.skim = model.skim.meta_graphs[meta] if isinstance(meta, int) else meta

    def _position_of(self, meta: Any) -> int:
        tags = list(meta.meta_info_def.tags)
        found = [i for i, m in enumerate(self.model.skim.meta_graphs) if list(m.meta_info_def.tags) == tags]
        return found[0] if found else 0

    @property
    def proto(self) -> Any:
        return self._given if self._given is not None else self.model.proto.meta_graphs[self.position]

    @property
    def graph_def(self) -> Any:
        return self._given.graph_def if self._given is not None else self.model.graph_def(self.position)

    @property
    def tags(self) -> tuple[str, ...]:
        return tuple(self.skim.meta_info_def.tags)

    @property
    def graph_bytes(self) -> int:
        """Size of `graph_def` (binary): from the skimmed file's layout, else from the graph already in memory."""
        layout = self.model.layout if self._given is None else None
        if layout is not None:
            return layout.meta_graphs[self.position].graph_bytes
        return self.graph_def.ByteSize()

    @property
    def kind(self) -> str:
        """`tf2` when an object graph is present (tf.saved_model.save), else `tf1`."""
        return "tf2" if len(self.skim.object_graph_def.nodes) > 0 else "tf1"

    def signature_keys(self, *, include_init: bool = False) -> list[str]:
        keys = sorted(self.skim.signature_def)
        return keys if include_init else [k for k in keys if k != INIT_OP_SIGNATURE]

    def signatures(self, *, include_init: bool = False) -> list[SignatureView]:
        return [signature_view(k, self.skim.signature_def[k]) for k in self.signature_keys(include_init=include_init)]

    def signature(self, key: str) -> SignatureView:
        if key not in self.skim.signature_def or key == INIT_OP_SIGNATURE:
            raise SignatureNotFound(
                f"no signature '{key}' in meta graph [{tag_set_text(self.tags)}] of {self.model.ref}",
                hint=f"it has: {listing(self.signature_keys())}",
            )
        return signature_view(key, self.skim.signature_def[key])

    @property
    def default_signature(self) -> str | None:
        return DEFAULT_SIGNATURE if DEFAULT_SIGNATURE in self.skim.signature_def else None

    def op_histogram(self) -> dict[str, int]:
        """Ops of the graph and of every function in its library."""
        graph = self.graph_def
        counts: collections.Counter[str] = collections.Counter(node.op for node in graph.node)
        for function in graph.library.function:
            counts.update(node.op for node in function.node_def)
        return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


class SavedModelFile:
    """A `saved_model.pb` (or `.pbtxt`) and the version folder around it.

    Made by `read`, it holds only the skimmed small fields (`skim`); the
    whole proto (`proto`) or one meta graph's `graph_def` is parsed from the
    file the first time something asks, once. Made from a proto in memory
    (an edited model), everything is that proto.
    """

    def __init__(self, ref: ModelRef, proto: Any = None, *, skimmed: Skim | None = None) -> None:
        self.ref = ref
        self._proto = proto
        self._skimmed = skimmed if proto is None else None
        self._graphs: dict[int, Any] = {}
        self._index: list[IndexEntry] | None = None

    @property
    def proto(self) -> Any:
        """The whole SavedModel, graphs included (parsed on first use)."""
        if self._proto is None:
            self._proto = parse_saved_model(self.ref.saved_model_file)
            self._graphs.clear()  # from now on the graphs of the whole proto are the ones served
        return self._proto

    @proto.setter
    def proto(self, value: Any) -> None:
        self._proto, self._skimmed = value, None
        self._graphs.clear()

    @property
    def skim(self) -> Any:
        """The SavedModel without its meta graphs' `graph_def` (the whole one when not skimmed)."""
        return self._skimmed.saved_model if self._skimmed is not None else self.proto

    @property
    def layout(self) -> FileLayout | None:
        """Where the fields of the file lie, when it was skimmed (for splicing)."""
        return self._skimmed.file_layout if self._skimmed is not None else None

    @property
    def skimmed(self) -> Skim | None:
        return self._skimmed

    def graph_def(self, position: int) -> Any:
        """Meta graph `position`'s GraphDef, parsed once; the whole proto's when that is parsed."""
        if self._proto is not None or self._skimmed is None:
            return self.proto.meta_graphs[position].graph_def
        if position not in self._graphs:
            try:
                self._graphs[position] = self._skimmed.graph_def(position)
            except (pb_message.DecodeError, RuntimeError, ValueError):
                return self.proto.meta_graphs[position].graph_def  # the full parse names the damage
        return self._graphs[position]

    @property
    def path(self) -> Path:
        return self.ref.version_dir

    @property
    def tag_sets(self) -> list[tuple[str, ...]]:
        return [tuple(mg.meta_info_def.tags) for mg in self.skim.meta_graphs]

    def meta_graph(self, tags: tuple[str, ...] | list[str] | None = None) -> MetaGraph:
        """The meta graph with exactly this tag set (order ignored).

        `None` means `serve`, or the only meta graph when the model has one.
        """
        metas = list(self.skim.meta_graphs)
        if not metas:
            raise CorruptModel(f"{self.ref.saved_model_file} holds no meta graph")
        wanted = set(DEFAULT_TAGS if tags is None else tags)
        for position, meta in enumerate(metas):
            if set(meta.meta_info_def.tags) == wanted:
                return MetaGraph(self, position)
        if tags is None and len(metas) == 1:
            return MetaGraph(self, 0)
        raise TagSetNotFound(
            f"no meta graph with tags [{tag_set_text(sorted(wanted))}] in {self.ref}",
            hint="tag sets: " + listing("[" + tag_set_text(t) + "]" for t in self.tag_sets),
        )

    @property
    def index_path(self) -> Path:
        return self.path / "variables" / "variables.index"

    def index_entries(self) -> list[IndexEntry]:
        """The checkpoint index's entries, parsed once (integrity, show and diff all need them)."""
        if self._index is None:
            self._index = read_index(self.index_path)
        return self._index

    def variable_entries(self) -> list[IndexEntry]:
        """The variables proper, without the object-graph bookkeeping entry; [] without an index."""
        if not self.index_path.is_file():
            return []
        return [entry for entry in self.index_entries() if entry.name != OBJECT_GRAPH_KEY]

    def variables(self) -> Variables:
        entries = self.variable_entries()
        present = self.index_path.is_file()
        return Variables(count=len(entries), bytes=sum(e.size for e in entries), present=present)

    def files_under(self, folder: str) -> list[FileEntry]:
        root = self.path / folder
        if not root.is_dir():
            return []
        return [
            FileEntry(path=p.relative_to(self.path).as_posix(), bytes=p.stat().st_size)
            for p in sorted(root.rglob("*"))
            if p.is_file()
        ]


def parse_saved_model(path: Path) -> Any:
    """Parse `saved_model.pb` or `.pbtxt`; a clear error names the file."""
    saved_model = protos.SavedModel()
    try:
        lazy_files.ensure_whole(path)  # a remote file the skim read by ranges: all of it now
        data = path.read_bytes()
    except PermissionError as error:
        raise CorruptModel(f"cannot read {path}: permission denied") from error
    except OSError as error:
        raise CorruptModel(f"cannot read {path}: {error.strerror}") from error
    if path.suffix == ".pbtxt":
        from google.protobuf import text_format  # ~15 ms of every call, for the rare text SavedModel

        try:
            text_format.Parse(data.decode("utf-8"), saved_model, descriptor_pool=protos.pool())
        except (text_format.ParseError, UnicodeDecodeError) as error:
            raise CorruptModel(f"{path} is not a valid text SavedModel: {_first_line(error)}") from error
        except RecursionError as error:  # text_format parses nested messages recursively
            raise CorruptModel(f"{path} is not a valid text SavedModel: messages nested too deeply") from error
    else:
        try:
            saved_model.ParseFromString(data)
        except (pb_message.DecodeError, RuntimeError, ValueError) as error:
            raise CorruptModel(
                f"{path} is not a valid SavedModel ({len(data)} bytes): truncated or not a saved_model.pb"
            ) from error
        if not saved_model.meta_graphs:
            raise CorruptModel(f"{path} is not a valid SavedModel ({len(data)} bytes): no meta graph in it")
    return saved_model


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def locate(text: str | Path, version: int | None = None) -> ModelRef:
    """`layout.resolve` for local paths; s3:// and gs:// URLs through `smsurgery.storage`, imported only for them."""
    if is_remote_text(str(text)):
        from smsurgery.storage.locate import resolve as resolve_remote

        return resolve_remote(text, version)
    return resolve_local(text, version)


def read(path: str | Path | ModelRef, version: int | None = None, *, full: bool = False) -> SavedModelFile:
    """Resolve what the user typed and skim its SavedModel file (`full`: parse all of it now)."""
    ref = path if isinstance(path, ModelRef) else locate(path, version)
    skimmed = None if full else skim(ref.saved_model_file)
    if skimmed is None:
        return SavedModelFile(ref, parse_saved_model(ref.saved_model_file))
    return SavedModelFile(ref, skimmed=skimmed)
