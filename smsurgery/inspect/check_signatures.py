"""Signature findings: what TensorFlow Serving does with each SignatureDef.

Nothing validates signature tensor names at load time (a signature pointing
at `does_not_exist:0` loads and fails on the first request), so these are
the rules Serving applies when a request arrives: the tensors must exist and
be fed by the signature's own inputs, classify and regress signatures follow
`classifier.cc` and `regressor.cc`, and the REST API encodes only some dtypes
(`json_tensor.cc`, AddValueToTensor).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from smsurgery.core.graphmodel import MAIN, GraphModel, node_of
from smsurgery.core.model import DEFAULT_SIGNATURE, INIT_OP_SIGNATURE, MetaGraph, SignatureView, TensorView
from smsurgery.inspect.findings import Finding, finding

CLASSIFY = "tensorflow/serving/classify"
REGRESS = "tensorflow/serving/regress"
# json_tensor.cc AddValueToTensor: every other dtype is "Unimplemented" over REST.
REST_DTYPES = {
    "DT_FLOAT", "DT_DOUBLE", "DT_INT32", "DT_INT16", "DT_INT8", "DT_UINT8",
    "DT_STRING", "DT_INT64", "DT_BOOL", "DT_UINT32", "DT_UINT64",
}  # fmt: skip
_FEEDABLE_DEFAULTS = {"PlaceholderWithDefault"}


def tensor_names(tensor: TensorView) -> list[str]:
    return [tensor.name] if tensor.name is not None else list(tensor.components.values())


def signature_findings(meta: MetaGraph, path: str) -> list[Finding]:
    signatures = meta.signatures()
    found: list[Finding] = []
    if not signatures:
        found.append(finding("SM-SIG-NONE", f"meta graph [{','.join(meta.tags)}]", "it has no signature to serve"))
        return found
    if meta.default_signature is None:
        keys = ", ".join(s.key for s in signatures)
        found.append(
            finding(
                "SM-SIG-NO-DEFAULT",
                "signature 'serving_default'",
                f"requests without signature_name fail; the signatures are: {keys}",
                f"smsurgery signature rename {path} {signatures[0].key} {DEFAULT_SIGNATURE}",
            )
        )
    model = GraphModel(meta.proto, lenient=True)
    nodes = model.main.nodes
    for signature in signatures:
        found += _tensor_findings(signature, nodes, path)
        found += _unfed_findings(signature, model)
        found += _method_findings(signature)
        found += _rest_findings(signature, path)
    init = meta.proto.signature_def.get(INIT_OP_SIGNATURE) if INIT_OP_SIGNATURE in meta.proto.signature_def else None
    if init is not None:
        for alias, info in init.outputs.items():
            if info.name and node_of(info.name) not in nodes:
                found.append(finding("SM-SIG-TENSOR-MISSING", f"init op '{alias}'", f"{info.name} is not in the graph"))
    return found


def _tensor_findings(signature: SignatureView, nodes: dict[str, Any], path: str) -> Iterator[Finding]:
    for direction, tensors in (("input", signature.inputs), ("output", signature.outputs)):
        for tensor in tensors:
            for name in tensor_names(tensor):
                if node_of(name) not in nodes:
                    yield finding(
                        "SM-SIG-TENSOR-MISSING",
                        f"signature '{signature.key}' {direction} '{tensor.alias}'",
                        f"{name} is not a tensor of the graph; every request to this signature fails",
                        f"smsurgery alias repoint {path} {signature.key} {tensor.alias} TENSOR",
                    )


def _unfed_findings(signature: SignatureView, model: GraphModel) -> Iterator[Finding]:
    """Placeholders an output needs that none of the signature's inputs feeds.

    One walk over all outputs finds them; only when some exist does each
    output get its own walk, to name the first output that needs each.
    """
    fed = {node_of(n) for t in signature.inputs for n in tensor_names(t)}
    nodes = model.main.nodes
    placeholders = {name for name, node in nodes.items() if node.op == "Placeholder"} - fed

    def unfed(outputs: list[TensorView]) -> set[str]:
        roots = [node_of(n) for t in outputs for n in tensor_names(t)]
        return model.upstream(MAIN, [r for r in roots if r not in fed], stop=fed | placeholders) & placeholders

    needed: dict[str, str] = {}  # placeholder -> the first output alias that needs it
    if unfed(list(signature.outputs)):
        for output in signature.outputs:
            for name in unfed([output]):
                needed.setdefault(name, output.alias)
    for name, alias in sorted(needed.items()):
        yield finding(
            "SM-SIG-UNFED-INPUT",
            f"signature '{signature.key}' output '{alias}'",
            f"it depends on placeholder {name}, which no input of the signature feeds; Serving's requests fail with "
            f"'You must feed a value for placeholder tensor'",
        )


def _examples_input_findings(signature: SignatureView) -> Iterator[Finding]:
    """Classify and Regress feed serialized tf.Examples into `inputs`; Predict still works."""
    if signature.method_name not in (CLASSIFY, REGRESS) or len(signature.inputs) != 1:
        return
    tensor = signature.inputs[0]
    if tensor.alias == "inputs" and tensor.dtype != "DT_STRING":
        api = "Classify" if signature.method_name == CLASSIFY else "Regress"
        yield finding(
            "SM-SIG-EXAMPLES-INPUT",
            f"signature '{signature.key}' input 'inputs'",
            f"{api} requests feed serialized tf.Examples (DT_STRING) into it, but it is {tensor.dtype}; "
            "they fail, while Predict requests to this signature work",
        )


def _method_findings(signature: SignatureView) -> Iterator[Finding]:
    yield from _examples_input_findings(signature)
    inputs = {t.alias: t for t in signature.inputs}
    outputs = {t.alias: t for t in signature.outputs}
    subject = f"signature '{signature.key}'"
    if signature.method_name == CLASSIFY:
        problems = []
        if len(inputs) != 1 or "inputs" not in inputs:
            problems.append(f"it must have exactly one input named 'inputs' (has: {', '.join(inputs) or 'none'})")
        if not 1 <= len(outputs) <= 2 or not {"classes", "scores"} & set(outputs):
            problems.append(f"it needs one or two outputs among 'classes', 'scores' (has: {', '.join(outputs)})")
        if "classes" in outputs and outputs["classes"].dtype != "DT_STRING":
            problems.append(f"output 'classes' must be DT_STRING (is {outputs['classes'].dtype})")
        if "scores" in outputs and outputs["scores"].dtype != "DT_FLOAT":
            problems.append(f"output 'scores' must be DT_FLOAT (is {outputs['scores'].dtype})")
        for problem in problems:
            yield finding("SM-SIG-CLASSIFY", subject, f"classify signature: {problem}")
    elif signature.method_name == REGRESS:
        problems = []
        if len(inputs) != 1 or "inputs" not in inputs:
            problems.append(f"it must have exactly one input named 'inputs' (has: {', '.join(inputs) or 'none'})")
        if list(outputs) != ["outputs"]:
            problems.append(f"it must have exactly one output named 'outputs' (has: {', '.join(outputs)})")
        elif outputs["outputs"].dtype != "DT_FLOAT":
            problems.append(f"output 'outputs' must be DT_FLOAT (is {outputs['outputs'].dtype})")
        for problem in problems:
            yield finding("SM-SIG-REGRESS", subject, f"regress signature: {problem}")


def _rest_findings(signature: SignatureView, path: str) -> Iterator[Finding]:
    if signature.method_name in (CLASSIFY, REGRESS):
        return  # REST classify/regress build tf.Examples: the dtype is Serving's own
    for direction, tensors in (("input", signature.inputs), ("output", signature.outputs)):
        for tensor in tensors:
            dtype = tensor.dtype.removesuffix("_REF")
            if dtype not in REST_DTYPES:
                fix = f"smsurgery input cast {path} {tensor.alias} float32 -s {signature.key}, or use gRPC"
                yield finding(
                    "SM-SIG-REST-DTYPE",
                    f"signature '{signature.key}' {direction} '{tensor.alias}'",
                    f"{tensor.dtype} cannot be sent or returned as JSON by Serving's REST API (gRPC works)",
                    fix if direction == "input" else "use gRPC for this output",
                )
