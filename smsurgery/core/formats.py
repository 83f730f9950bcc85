"""What a model file or folder is, told from its bytes and layout alone.

`convert` accepts three families of sources (TF1 checkpoints, frozen
GraphDefs, Keras files) and must say clearly what it was given when it is none
of them: a SavedModel already, a TF.js `model.json`, an ONNX model, a TFLite
flatbuffer, a TF2 object-based checkpoint. Users name files loosely (a
checkpoint by its prefix, its `.meta`, its `.index` or its folder; a frozen
graph as `.pb` or `.pbtxt`), so detection looks at magic bytes and proto
structure rather than trusting suffixes, and never imports TensorFlow: the
protos come from `smsurgery.core.protos`, which reads TensorFlow's descriptors
without starting the runtime.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import message as pb_message
from google.protobuf import text_format

from smsurgery.core import protos
from smsurgery.core.checkpoint_index import OBJECT_GRAPH_KEY, read_index
from smsurgery.core.errors import NotASavedModel, PathNotFound, listing
from smsurgery.core.layout import SAVED_MODEL_FILES, has_saved_model, is_version_name
from smsurgery.core.user_files import special_kind
from smsurgery.core.wire import read_varint

# Kinds that `convert` reads; every other kind is recognised only to be named.
CHECKPOINT = "checkpoint"
FROZEN_GRAPH = "frozen_graph"
FROZEN_GRAPH_TEXT = "frozen_graph_text"
KERAS_V3 = "keras_v3"
KERAS_H5 = "keras_h5"
CONVERTIBLE = frozenset({CHECKPOINT, FROZEN_GRAPH, FROZEN_GRAPH_TEXT, KERAS_V3, KERAS_H5})
KERAS_KINDS = frozenset({KERAS_V3, KERAS_H5})

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_TABLE_MAGIC = bytes.fromhex("57fb808b247547db")  # little-endian 0xdb4775248b80fb57, end of a .index
_DATA_SHARD = re.compile(r"^(?P<prefix>.+)\.data-\d{5}-of-\d{5}$")
_SHARD_SUFFIX = re.compile(r"\d{5}-of-\d{5}")
_CHECKPOINT_STATE = re.compile(r'^\s*model_checkpoint_path:\s*"(?P<path>(?:[^"\\]|\\.)*)"', re.MULTILINE)
_OP_TYPE = re.compile(r"[A-Za-z_][A-Za-z0-9_>.]*")
_VARIABLE_OPS = {"VariableV2", "Variable", "VarHandleOp", "VariableV1"}
# ONNX ModelProto top-level fields and their wire types (0 varint, 2 length-delimited).
_ONNX_FIELDS = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2}


@dataclass(frozen=True)
class SourceFormat:
    """What a path holds: a kind, a one-line description, and where the parts are."""

    kind: str
    path: Path
    description: str
    prefix: Path | None = None  # checkpoints: the prefix that .index/.meta/.data-* extend
    detail: str | None = None  # why a recognised file cannot be read (e.g. a graph with variables)

    @property
    def convertible(self) -> bool:
        return self.kind in CONVERTIBLE and self.detail is None


def detect(path: str | Path) -> SourceFormat:
    """Recognise a model source; `PathNotFound` only when nothing matches the path at all."""
    path = Path(path)
    if not path.exists():
        for suffix in (".index", ".meta"):
            if Path(f"{path}{suffix}").is_file():
                return checkpoint_format(path, path)
        raise PathNotFound(f"no such file or folder: {path}")
    _refuse_special(path)
    try:
        return _detect_folder(path) if path.is_dir() else _detect_file(path)
    except OSError as error:  # unreadable files or folders, special files
        where = error.filename or path
        raise PathNotFound(f"cannot read {where}: {error.strerror or error}") from error


def _refuse_special(path: Path) -> None:
    """A device or FIFO (the source, or a file of a source folder) would be read forever or block."""
    try:
        entries = [path, *path.iterdir()] if path.is_dir() else [path]
        for entry in entries:
            kind = special_kind(os.stat(entry).st_mode)
            if kind is not None:
                raise NotASavedModel(f"{entry} is {kind}, not a model file")
    except OSError:
        return  # unreadable: detection below names it


def checkpoint_format(path: Path, prefix: Path) -> SourceFormat:
    """A TF1 checkpoint prefix; a TF2 object-based one (no .meta, an object graph) is named as such."""
    parts = checkpoint_parts(prefix)
    if not parts.meta.is_file():
        if prefix.parent.name == "variables" and has_saved_model(prefix.parent.parent):
            return SourceFormat(
                "saved_model", path, f"the variables of the SavedModel in {prefix.parent.parent}", prefix=prefix
            )
        if parts.object_graph:
            return SourceFormat(
                "tf2_checkpoint",
                path,
                f"a TF2 object-based checkpoint ({prefix.name}: .index and data, no .meta graph)",
                prefix=prefix,
            )
    if parts.layout == "V1 sharded" and prefix.name == "export":
        what = "a SessionBundle export (export.meta + export-* shards, a V1 checkpoint)"
    else:
        have = ", ".join(
            [
                *(s for s, f in ((".meta", parts.meta), (".index", Path(f"{prefix}.index"))) if f.is_file()),
                f"{len(parts.present)} data file{'s' if len(parts.present) != 1 else ''}",
            ]
        )
        what = f"a TF1 checkpoint ({parts.layout}, {prefix.name}: {have})"
    return SourceFormat(CHECKPOINT, path, what, prefix=prefix)


@dataclass(frozen=True)
class CheckpointParts:
    """The files of a checkpoint prefix, and which of those it needs are missing."""

    prefix: Path
    meta: Path
    layout: str  # "V2" (.index + .data-*), "V1" (one table file), "V1 sharded" (PREFIX-NNNNN-of-MMMMM)
    restore_path: str  # what Saver.restore takes
    present: tuple[Path, ...]
    missing: tuple[str, ...]  # file names next to the prefix that the layout needs
    object_graph: bool = False


def checkpoint_parts(prefix: Path) -> CheckpointParts:
    """Find a checkpoint's variable files; TensorFlow's own error for a missing shard names no file."""
    meta, index = Path(f"{prefix}.meta"), Path(f"{prefix}.index")
    if index.is_file():
        shards = data_shards(prefix, ".data-")
        entries = read_index(index)
        total = _shard_total(shards) or max((e.shard_id + 1 for e in entries if e.size), default=0)
        wanted = [f"{prefix.name}.data-{i:05d}-of-{total:05d}" for i in range(total)]
        present = {p.name for p in shards}
        return CheckpointParts(
            prefix,
            meta,
            "V2",
            str(prefix),
            tuple(shards),
            tuple(n for n in wanted if n not in present),
            object_graph=any(e.name == OBJECT_GRAPH_KEY for e in entries),
        )
    if prefix.is_file():
        return CheckpointParts(prefix, meta, "V1", str(prefix), (prefix,), ())
    shards = data_shards(prefix, "-")
    if shards:
        total = _shard_total(shards)
        wanted = [f"{prefix.name}-{i:05d}-of-{total:05d}" for i in range(total)]
        present = {p.name for p in shards}
        missing = tuple(n for n in wanted if n not in present)
        return CheckpointParts(prefix, meta, "V1 sharded", f"{prefix}-?????-of-{total:05d}", tuple(shards), missing)
    return CheckpointParts(prefix, meta, "V2", str(prefix), (), (f"{prefix.name}.index", f"{prefix.name}.data-*"))


def data_shards(prefix: Path, separator: str = ".data-") -> list[Path]:
    """`PREFIX.data-NNNNN-of-MMMMM` (V2) or `PREFIX-NNNNN-of-MMMMM` (V1) files next to a prefix."""
    if not prefix.parent.is_dir():
        return []
    start = f"{prefix.name}{separator}"
    return sorted(
        child
        for child in prefix.parent.iterdir()
        if child.name.startswith(start) and _SHARD_SUFFIX.fullmatch(child.name[len(start) :])
    )


def _shard_total(shards: list[Path]) -> int:
    return max((int(p.name.rsplit("-of-", 1)[1]) for p in shards), default=0)


def _detect_folder(folder: Path) -> SourceFormat:
    if has_saved_model(folder):
        return SourceFormat("saved_model", folder, "a SavedModel version folder (it has saved_model.pb)")
    names = sorted(child.name for child in folder.iterdir())
    state = folder / "checkpoint"
    if state.is_file():
        prefix = _prefix_from_state(state)
        if prefix is not None:
            return checkpoint_format(folder, prefix)
    metas = [n for n in names if n.endswith(".meta")]
    if len(metas) == 1:
        return checkpoint_format(folder, folder / metas[0][: -len(".meta")])
    if len(metas) > 1:
        return SourceFormat(
            CHECKPOINT,
            folder,
            f"a folder of {len(metas)} TF1 checkpoints",
            detail=f"name one of them: {listing(m[: -len('.meta')] for m in metas)}",
        )
    versions = [n for n in names if is_version_name(n) and has_saved_model(folder / n)]
    if versions:
        return SourceFormat("saved_model", folder, f"a SavedModel model base (versions {listing(versions)})")
    if "model.json" in names:
        return _detect_file(folder / "model.json")
    shown = listing(names[:10], empty="nothing") + (" ..." if len(names) > 10 else "")
    return SourceFormat("unknown", folder, f"a folder holding: {shown}")


def _prefix_from_state(state: Path) -> Path | None:
    """`model_checkpoint_path` of a `checkpoint` file; relative paths are relative to its folder."""
    try:
        match = _CHECKPOINT_STATE.search(state.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None
    if match is None:
        return None
    written = Path(match["path"].replace('\\"', '"').replace("\\\\", "\\"))
    prefix = written if written.is_absolute() else state.parent / written
    # A folder copied from elsewhere keeps absolute paths of the old place: look next to the state file.
    if not any(Path(f"{prefix}{s}").is_file() for s in (".index", ".meta")):
        prefix = state.parent / written.name
    return prefix


def _detect_file(path: Path) -> SourceFormat:
    name = path.name
    if name in SAVED_MODEL_FILES:
        return SourceFormat("saved_model", path, f"a SavedModel ({name})")
    if name == "checkpoint":
        return _detect_folder(path.parent)
    if name.endswith(".meta"):
        return checkpoint_format(path, path.with_name(name[: -len(".meta")]))
    shard = _DATA_SHARD.match(name)
    if shard:
        return checkpoint_format(path, path.with_name(shard["prefix"]))
    with open(path, "rb") as handle:
        head = handle.read(1 << 16)
    if _tail(path) == _TABLE_MAGIC:
        if name.endswith(".index"):
            return checkpoint_format(path, path.with_name(name[: -len(".index")]))
        if Path(f"{path}.meta").is_file():
            return checkpoint_format(path, path)
        return SourceFormat(
            "checkpoint_v1",
            path,
            "a checkpoint table file (a V1 checkpoint or a variables index), not a V2 checkpoint prefix",
            detail="restore it with tf.compat.v1.train.Saver and save it again (V2 format), then convert that",
        )
    return _detect_by_content(path, head)


def _tail(path: Path) -> bytes:
    size = path.stat().st_size
    if size < 48:
        return b""
    with open(path, "rb") as handle:
        handle.seek(size - 8)
        return handle.read(8)


def _detect_by_content(path: Path, head: bytes) -> SourceFormat:
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _detect_zip(path)
    if any(head.startswith(_HDF5_MAGIC, offset) for offset in (0, 512, 1024, 2048)):
        return _detect_hdf5(path)
    if head[4:8] == b"TFL3":
        return SourceFormat("tflite", path, "a TensorFlow Lite flatbuffer (TFL3)")
    if head.lstrip()[:1] == b"{":
        recognised = _detect_json(path)
        if recognised is not None:
            return recognised
    if head and b"\x00" not in head and _is_text(head):
        return _detect_text_proto(path)
    return _detect_binary_proto(path)


def _is_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        return error.start >= len(head) - 4  # a multi-byte character cut at the end of the sample
    return True


def _detect_zip(path: Path) -> SourceFormat:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return SourceFormat("unknown", path, "a damaged zip archive")
    if "config.json" in names and ("model.weights.h5" in names or "metadata.json" in names):
        return SourceFormat(KERAS_V3, path, "a Keras v3 file (zip with config.json and weights)")
    shown = listing(names[:8], empty="nothing") + (" ..." if len(names) > 8 else "")
    return SourceFormat("zip", path, f"a zip archive that is not a Keras v3 file (it holds: {shown})")


def _detect_hdf5(path: Path) -> SourceFormat:
    """Keras writes its model config as a root attribute; a weights-only file has none."""
    with open(path, "rb") as handle:
        sample = handle.read(1 << 20)
    if b"model_config" in sample:
        return SourceFormat(KERAS_H5, path, "a Keras HDF5 model file (legacy .h5)")
    return SourceFormat(KERAS_H5, path, "an HDF5 file with no Keras model config in its first MB (weights only?)")


def _detect_json(path: Path) -> SourceFormat | None:
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if isinstance(data, dict) and ({"modelTopology", "weightsManifest"} & set(data)):
        return SourceFormat("tfjs", path, f"a TensorFlow.js model.json ({data.get('format', 'model')})")
    return SourceFormat("json", path, "a JSON file that is not a model")


def _parse(message: Any, data: bytes) -> Any | None:
    try:
        message.ParseFromString(data)
    except (pb_message.DecodeError, RuntimeError, ValueError):
        return None
    return message


def _detect_binary_proto(path: Path) -> SourceFormat:
    data = path.read_bytes()
    saved_model = _parse(protos.SavedModel(), data)
    if saved_model is not None and saved_model.meta_graphs and saved_model.meta_graphs[0].graph_def.node:
        return SourceFormat("saved_model", path, f"a SavedModel proto (named {path.name}, not saved_model.pb)")
    if _looks_like_onnx(data):
        return SourceFormat("onnx", path, "an ONNX model (ModelProto)")
    meta = _parse(protos.meta_graph_class()(), data)
    if meta is not None and meta.graph_def.node and (meta.HasField("meta_info_def") or meta.HasField("saver_def")):
        return SourceFormat("meta_graph", path, "a TF1 MetaGraphDef (a checkpoint's .meta under another name)")
    graph = _parse(protos.graph_def_class()(), data)
    if graph is not None and _plausible_graph(graph):
        return _graph_format(path, graph, FROZEN_GRAPH, "binary")
    size = len(data)
    return SourceFormat("unknown", path, f"an unrecognised binary file ({size} bytes, starts {data[:8].hex(' ')})")


def _detect_text_proto(path: Path) -> SourceFormat:
    text = path.read_text(encoding="utf-8", errors="replace")
    candidates = (
        ("saved_model", protos.saved_model_class()),
        ("meta_graph", protos.meta_graph_class()),
        (FROZEN_GRAPH_TEXT, protos.graph_def_class()),
    )
    for kind, cls in candidates:
        message = cls()
        try:
            text_format.Parse(text, message, descriptor_pool=protos.pool())
        except (text_format.ParseError, ValueError):
            continue
        if kind == "saved_model" and message.meta_graphs:
            return SourceFormat(kind, path, f"a text SavedModel (named {path.name})")
        if kind == "meta_graph" and message.graph_def.node:
            return SourceFormat(kind, path, "a text TF1 MetaGraphDef")
        if kind == FROZEN_GRAPH_TEXT and _plausible_graph(message):
            return _graph_format(path, message, FROZEN_GRAPH_TEXT, "text")
    first = text.strip().splitlines()[0][:60] if text.strip() else ""
    return SourceFormat("unknown", path, f"a text file that is not a TensorFlow proto (starts {first!r})")


def _plausible_graph(graph: Any) -> bool:
    """Random bytes sometimes parse as a GraphDef; real nodes have names and identifier-like op types."""
    return bool(graph.node) and all(node.name and _OP_TYPE.fullmatch(node.op) for node in graph.node)


def _graph_format(path: Path, graph: Any, kind: str, encoding: str) -> SourceFormat:
    variables = sorted(node.name for node in graph.node if node.op in _VARIABLE_OPS)
    description = f"a frozen GraphDef ({encoding}, {len(graph.node)} nodes)"
    if not variables:
        return SourceFormat(kind, path, description)
    return SourceFormat(
        kind,
        path,
        f"a GraphDef ({encoding}) with {len(variables)} variables, not frozen",
        detail=(
            f"its variables ({listing(variables[:5])}{' ...' if len(variables) > 5 else ''}) have no values in it: "
            "convert the checkpoint it came from, or freeze the graph first"
        ),
    )


def _looks_like_onnx(data: bytes) -> bool:
    """Walk the top-level protobuf fields: ONNX's ModelProto has ir_version (1) and graph (7)."""
    pos, seen = 0, set()
    try:
        while pos < len(data):
            key, pos = read_varint(data, pos)
            field, wire = key >> 3, key & 7
            if _ONNX_FIELDS.get(field) != wire:
                return False
            value, pos = read_varint(data, pos)
            if wire == 2:
                pos += value
            seen.add(field)
    except (IndexError, ValueError):
        return False
    return pos == len(data) and {1, 7} <= seen
