"""Whether a file path in a graph is one of the model's own assets (for table initializers).

A table filled from a vocabulary file in `assets/` is what every TFX or
Estimator export does, and is not reported; a table filled from any other
path (a constant `/etc/hostname`, a computed string) is.
"""

from __future__ import annotations

from typing import Any

from smsurgery.core import protos
from smsurgery.core.graphmodel import data_inputs, node_of, parse_input
from smsurgery.inspect.scan_graph import PASS_THROUGH, ScanGraph

# Where a called function's first argument sits among the caller's inputs.
_ARG_OFFSET = {"f": 0, "body": 0, "cond": 0, "then_branch": 1, "else_branch": 1, "branches": 1}
_MAX_DEPTH = 64


def asset_tensor_names(meta_graph: Any) -> set[str]:
    """Tensors that the loader feeds with asset file paths (`name:0`)."""
    names = {asset.tensor_info.name for asset in meta_graph.asset_file_def}
    asset_class = protos.message_class("tensorflow/core/protobuf/meta_graph.proto", "tensorflow.AssetFileDef")
    if "saved_model_assets" in meta_graph.collection_def:
        for packed in meta_graph.collection_def["saved_model_assets"].any_list.value:
            if packed.type_url.endswith("tensorflow.AssetFileDef"):
                try:
                    names.add(asset_class.FromString(packed.value).tensor_info.name)
                except Exception:  # a broken entry names no asset
                    continue
    if "asset_filepaths" in meta_graph.collection_def:
        names.update(meta_graph.collection_def["asset_filepaths"].node_list.value)
    return {name if ":" in name else f"{name}:0" for name in names if name}


class AssetTracer:
    """Follows a string tensor back through Identity-like nodes, variables and call sites."""

    def __init__(self, graph: ScanGraph, asset_tensors: set[str]) -> None:
        self.graph = graph
        self.asset_tensors = asset_tensors

    def traces_to_asset(self, context: str | None, tensor: str, depth: int = 0) -> bool:
        """Whether `tensor` (in the graph, or in function `context`) is an asset file path."""
        if depth > _MAX_DEPTH or tensor.startswith("^"):
            return False
        name = node_of(tensor)
        if context is None:
            node = self.graph.main_node(name)
            if node is None:
                return False
            if f"{name}:{parse_input(tensor, in_function=False, lenient=True).index}" in self.asset_tensors:
                return True
        else:
            args = [arg.name for arg in self.graph.functions[context].signature.input_arg]
            if name in args and ":" not in tensor:
                return self._arg_traces_to_asset(context, args.index(name), depth)
            node = self.graph.function_node(context, name)
            if node is None:
                return False
        inputs = data_inputs(node)
        if node.op in PASS_THROUGH and inputs:
            return self.traces_to_asset(context, inputs[0], depth + 1)
        if node.op == "ReadVariableOp" and context is None and inputs:
            # TF2 keeps an asset path in a variable: every value assigned to it must be an asset.
            values = self._assigned_values(node_of(inputs[0]))
            return bool(values) and all(self.traces_to_asset(None, value, depth + 1) for value in values)
        return False

    def _assigned_values(self, variable: str) -> list[str]:
        """Value inputs of the graph's Assign/AssignVariableOp nodes that write `variable`."""
        values = []
        for node in self.graph.graph_def.node:
            if node.op in ("AssignVariableOp", "Assign"):
                inputs = data_inputs(node)
                if len(inputs) > 1 and node_of(inputs[0]) == variable:
                    values.append(inputs[1])
        return values

    def _arg_traces_to_asset(self, function: str, position: int, depth: int) -> bool:
        calls = self.graph.callers.get(function, [])
        if not calls:
            return False
        for context, node, attr in calls:
            offset = _ARG_OFFSET.get(attr, 0 if attr == "op" else None)
            inputs = data_inputs(node)
            if offset is None or offset + position >= len(inputs):
                return False
            if not self.traces_to_asset(context, inputs[offset + position], depth + 1):
                return False
        return True
