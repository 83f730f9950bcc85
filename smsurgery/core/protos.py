"""TensorFlow's proto classes, without starting the TensorFlow runtime.

`import tensorflow` costs 2.5 s and ~500 MB; reading a `saved_model.pb`
needs none of it. Each generated `*_pb2.py` of TensorFlow (and of
tensorflow-serving-api) carries its file descriptor as one serialized
`FileDescriptorProto` literal. We locate those files with
`importlib.util.find_spec` (which does not execute a package's `__init__`),
pull the literal out with `ast`, and build message classes in a private
descriptor pool.

Messages of this pool and of TensorFlow's own pool do not `CopyFrom` each
other: serialize and parse when crossing over (see `to_tf`).
"""

from __future__ import annotations

import ast
import codecs
import importlib.util
import re
import threading
from functools import cache
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pool, message_factory

from smsurgery.core.errors import InternalError, MissingDependency
from smsurgery.core.wire import LENGTH_DELIMITED, walk_fields

_POOL = descriptor_pool.DescriptorPool()
_LOCK = threading.Lock()
_ADDED: set[str] = set()

# Top-level python packages whose generated files we may read.
_PROTO_PACKAGES = ("tensorflow", "tensorflow_serving", "tsl", "xla")


@cache
def _package_root(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))).parent


def _pb2_path(proto_file: str) -> Path:
    """Map `tensorflow/core/framework/graph.proto` to its installed `_pb2.py`."""
    top = proto_file.split("/", 1)[0]
    relative = proto_file[: -len(".proto")] + "_pb2.py"
    root = _package_root(top) if top in _PROTO_PACKAGES else None
    candidates = [root / relative] if root else []
    # Some TensorFlow wheels ship tsl/xla protos under tensorflow/.
    tf_root = _package_root("tensorflow")
    if tf_root is not None and top != "tensorflow":
        candidates.append(tf_root / "tensorflow" / relative)
        # TF 2.21 ships xla/tsl/protobuf/*.proto as tensorflow/compiler/xla/tsl/protobuf/*_pb2.py.
        candidates.append(tf_root / "tensorflow" / "compiler" / relative)
    for path in candidates:
        if path.is_file():
            return path
    if top == "tensorflow_serving":
        raise MissingDependency(
            "tensorflow-serving-api is not installed",
            hint="pip install 'smsurgery[serving]'",
        )
    raise MissingDependency(
        f"cannot find TensorFlow's generated file for {proto_file}",
        hint="pip install 'tensorflow>=2.16,<3'",
    )


# `AddSerializedFile(b'...')` as protoc writes it: one bytes literal of escaped ASCII.
_LITERAL = re.compile(r"""AddSerializedFile\(b'((?:[^'\\\n]|\\.)*)'\)""")


def _serialized_descriptor(path: Path) -> bytes:
    """The descriptor literal of a generated `_pb2.py`, without executing it.

    The literal is unescaped by the codec Python's own bytes literals use
    (`codecs.escape_decode`): parsing the whole file with `ast` cost ~25 ms
    of every command's start-up (TensorFlow's big generated files). Files
    written another way fall back to `ast`.
    """
    text = path.read_text(encoding="utf-8")
    start = text.find("AddSerializedFile(b'")  # str.find, then the pattern there: a search over the file cost ~3 ms
    match = _LITERAL.match(text, start) if start >= 0 else None
    if match is not None and match.group(1).isascii():
        return codecs.escape_decode(match.group(1).encode("ascii"))[0]
    return _parsed_descriptor(text, path)


def _parsed_descriptor(text: str, path: Path) -> bytes:
    tree = ast.parse(text, filename=str(path))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "AddSerializedFile"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, bytes)
        ):
            return node.args[0].value
    raise InternalError(f"no AddSerializedFile literal in {path}")


_DEPENDENCY = 3  # FileDescriptorProto.dependency (repeated string)


def _dependencies(serialized: bytes) -> list[str]:
    """`FileDescriptorProto.dependency` read off the wire.

    Parsing the descriptor with `descriptor_pb2` only to learn its imports
    cost importing descriptor_pb2 (~3 ms of every command) and a parse of
    each file; the pool parses the bytes itself in `AddSerializedFile`.
    """
    fields = walk_fields(serialized, 0, len(serialized))
    if fields is None:
        raise InternalError("a file descriptor that is not a plain message")
    return [
        serialized[f.body : f.end].decode("utf-8")
        for f in fields
        if f.number == _DEPENDENCY and f.wire_type == LENGTH_DELIMITED
    ]


def _add_file(proto_file: str) -> None:
    if proto_file in _ADDED:
        return
    if proto_file.startswith("google/protobuf/"):
        module = importlib.import_module("google.protobuf." + Path(proto_file).stem + "_pb2")
        serialized = module.DESCRIPTOR.serialized_pb
    else:
        serialized = _serialized_descriptor(_pb2_path(proto_file))
    for dependency in _dependencies(serialized):
        _add_file(dependency)
    _POOL.AddSerializedFile(serialized)
    _ADDED.add(proto_file)


def message_class(proto_file: str, full_name: str) -> type[Any]:
    """The class of message `full_name` defined in `proto_file`, from our pool."""
    with _LOCK:
        _add_file(proto_file)
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(full_name))


def enum_values(proto_file: str, full_name: str) -> dict[str, int]:
    with _LOCK:
        _add_file(proto_file)
    enum = _POOL.FindEnumTypeByName(full_name)
    return {value.name: value.number for value in enum.values}


_SAVED_MODEL = "tensorflow/core/protobuf/saved_model.proto"
_META_GRAPH = "tensorflow/core/protobuf/meta_graph.proto"
_TYPES = "tensorflow/core/framework/types.proto"


def SavedModel() -> Any:  # noqa: N802 - reads like the proto class it builds
    return message_class(_SAVED_MODEL, "tensorflow.SavedModel")()


def saved_model_class() -> type[Any]:
    return message_class(_SAVED_MODEL, "tensorflow.SavedModel")


def meta_graph_class() -> type[Any]:
    return message_class(_META_GRAPH, "tensorflow.MetaGraphDef")


def signature_def_class() -> type[Any]:
    return message_class(_META_GRAPH, "tensorflow.SignatureDef")


def tensor_info_class() -> type[Any]:
    return message_class(_META_GRAPH, "tensorflow.TensorInfo")


def graph_def_class() -> type[Any]:
    return message_class("tensorflow/core/framework/graph.proto", "tensorflow.GraphDef")


def tensor_proto_class() -> type[Any]:
    return message_class("tensorflow/core/framework/tensor.proto", "tensorflow.TensorProto")


def bundle_entry_class() -> type[Any]:
    return message_class("tensorflow/core/protobuf/tensor_bundle.proto", "tensorflow.BundleEntryProto")


@cache
def dtype_names() -> dict[int, str]:
    """`1 -> "DT_FLOAT"`, for every DataType, ref types included."""
    return {number: name for name, number in enum_values(_TYPES, "tensorflow.DataType").items()}


@cache
def dtype_numbers() -> dict[str, int]:
    return enum_values(_TYPES, "tensorflow.DataType")


def dtype_name(number: int) -> str:
    return dtype_names().get(number, f"DT_UNKNOWN_{number}")


def to_tf(message: Any, tf_class: type[Any]) -> Any:
    """Cross from our pool into TensorFlow's (or back): serialize, then parse."""
    return tf_class.FromString(message.SerializeToString())


def pool() -> descriptor_pool.DescriptorPool:
    """Our private pool (for `text_format` and `Any` expansion)."""
    return _POOL
