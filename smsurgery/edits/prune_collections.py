"""What prune reads from a meta graph's collections: the nodes the loaders need, and what may go.

The TF1 loader re-imports every collection and fails on an entry naming a
missing node, so prune either keeps what an entry names or drops the entry.
Three kinds of collections:

- `asset_file_def` and the asset collections: the loader feeds them, so
  the tensors they name are roots;
- variable collections (`variables`, `trainable_variables`, ...): one
  `VariableDef` per variable; an entry stays (and what it names is a root)
  while its variable stays, and goes with it (optimizer slots, EMA copies);
- training collections (`train_op`, `summaries`, `losses`, `update_ops`):
  entries that nothing else reaches go;
- every other collection is kept whole and what it names is a root: init
  ops (`saved_model_main_op`, `legacy_init_op`, `table_initializer`), and a
  library's own (tf.Transform's `tft_schema_override_min`); their
  `bytes_list` protos (cond and while contexts, savers) are read as far as
  they name nodes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from smsurgery.core import protos
from smsurgery.core.errors import UnsupportedModel

VARIABLE_PROTO = "tensorflow/core/framework/variable.proto"
META_GRAPH_PROTO = "tensorflow/core/protobuf/meta_graph.proto"
TRAINING_COLLECTIONS = frozenset(
    {"train_op", "saved_model_train_op", "summaries", "losses", "regularization_losses", "update_ops", "eval_step"}
)  # fmt: skip
VARIABLE_COLLECTIONS = frozenset(
    {"variables", "trainable_variables", "local_variables", "model_variables", "moving_average_variables",
     "global_step", "metric_variables"}
)  # fmt: skip


def node_name(reference: str) -> str:
    return reference.lstrip("^").split(":")[0]


def _names_in(definition: Any) -> Iterator[str]:
    for name in (definition.variable_name, definition.initializer_name, definition.snapshot_name,
                 definition.initial_value_name):  # fmt: skip
        if name:
            yield node_name(name)


def _parse(key: str, value: bytes) -> Any:
    definition = protos.message_class(VARIABLE_PROTO, "tensorflow.VariableDef")()
    try:
        definition.ParseFromString(value)
    except Exception as error:
        raise UnsupportedModel(f"collection '{key}' holds something prune cannot read") from error
    return definition


def variable_defs(meta: Any) -> Iterator[Any]:
    """The `VariableDef` entries of the variable collections."""
    for key, collection in meta.collection_def.items():
        if key in VARIABLE_COLLECTIONS and collection.WhichOneof("kind") == "bytes_list":
            yield from (_parse(key, value) for value in collection.bytes_list.value)


def variable_roots(meta: Any, variables: set[str]) -> set[str]:
    """What the `VariableDef` entries of the kept `variables` name (initializers, snapshots)."""
    return {n for d in variable_defs(meta) if node_name(d.variable_name) in variables for n in _names_in(d)}


def _asset_names(meta: Any) -> Iterator[str]:
    asset_class = protos.message_class(META_GRAPH_PROTO, "tensorflow.AssetFileDef")
    yield from (node_name(asset.tensor_info.name) for asset in meta.asset_file_def if asset.tensor_info.name)
    for collection in meta.collection_def.values():
        if collection.WhichOneof("kind") == "any_list":
            for packed in collection.any_list.value:
                if packed.type_url.endswith("tensorflow.AssetFileDef"):
                    asset = asset_class.FromString(packed.value)
                    if asset.tensor_info.name:
                        yield node_name(asset.tensor_info.name)


def roots(meta: Any) -> set[str]:
    """Nodes the loaders need whatever else goes: every collection but the training and variable ones."""
    result = set(_asset_names(meta))
    for key, collection in meta.collection_def.items():
        kind = collection.WhichOneof("kind")
        if kind == "node_list" and key not in TRAINING_COLLECTIONS:
            result |= {node_name(value) for value in collection.node_list.value}
        elif kind == "bytes_list" and key not in VARIABLE_COLLECTIONS:
            result |= {n for value in collection.bytes_list.value for n in _names_in(_parse(key, value))}
    return result


def drop_unreached(meta: Any, reached: set[str]) -> list[str]:
    """Remove the entries naming nodes outside `reached` ("collection/entry"); empty collections go too."""
    dropped: list[str] = []
    for key in list(meta.collection_def):
        collection = meta.collection_def[key]
        kind = collection.WhichOneof("kind")
        if kind == "node_list" and key in TRAINING_COLLECTIONS:
            values = list(collection.node_list.value)
            kept = [v for v in values if node_name(v) in reached]
            dropped += [f"{key}/{v}" for v in values if node_name(v) not in reached]
            del collection.node_list.value[:]
            collection.node_list.value.extend(kept)
            if not kept:
                del meta.collection_def[key]
        elif kind == "bytes_list" and key in VARIABLE_COLLECTIONS:
            values = list(collection.bytes_list.value)
            names = [node_name(_parse(key, v).variable_name) for v in values]
            dropped += [f"{key}/{n}" for n in names if n not in reached]
            del collection.bytes_list.value[:]
            collection.bytes_list.value.extend(v for v, n in zip(values, names, strict=True) if n in reached)
            if not collection.bytes_list.value:
                del meta.collection_def[key]
    return dropped
