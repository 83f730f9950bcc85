"""`smsurgery run`: a REST body through the TF1 loader, answered as TensorFlow Serving answers.

Two steps. `plan_body` reads the body and checks it against the signature by
Serving's rules (`serving/rest.py`, `serving/tf_example.py`): pure, so a wrong body fails
in Serving's words before TensorFlow is even imported. `Runner.execute` then
feeds the tensors into the session and writes Serving's response.

Serving loads a version with the TF1 session loader and calls the C++
`Session::Run` with the signature's tensor names. Python's `Session.run`
adds a check that Serving does not have ("Cannot feed value of shape (3,)
for Tensor x:0, which has shape (None, 1)") and would refuse Serving's own
half_plus_three example; we run through a session *callable* made from
`CallableOptions(feed=..., fetch=...)`, which goes straight to the C++ run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from smsurgery.core.errors import InvalidRequest
from smsurgery.core.model import DEFAULT_SIGNATURE, MetaGraph, SavedModelFile, SignatureView, read
from smsurgery.graph.session import Session, import_tf, load_session
from smsurgery.serving.grpc_requests import examples_call, predict_arrays
from smsurgery.serving.request_body import BuiltRequest, signature_lookup
from smsurgery.serving.responses import Response, classify_response, predict_response, regress_response
from smsurgery.serving.rest import EXAMPLES, check_predict, loads, parse_predict
from smsurgery.serving.tf_example import ExamplesCall, examples_signature, examples_targets, parse_examples


@dataclass(frozen=True)
class Plan:
    """A call Serving would make: the signature, and its tensors or its examples."""

    signature: SignatureView
    method: str  # predict | classify | regress
    format: str  # row | columnar | examples
    inputs: dict[str, np.ndarray] | None = None
    examples: ExamplesCall | None = None


@dataclass(frozen=True)
class RunResult:
    """What Serving would answer: the response body, and which call produced it."""

    response: Response
    signature: str
    method: str
    format: str
    path: Path

    @property
    def text(self) -> str:
        return self.response.text

    @property
    def data(self) -> Any:
        return self.response.data


def _method_for(meta: MetaGraph, doc: dict[str, Any]) -> str:
    """No URL here: a body with `examples` goes to its classify/regress signature's method."""
    if "examples" not in doc:
        return "predict"
    name = doc.get("signature_name")
    view = signature_lookup(meta)(name if isinstance(name, str) and name else DEFAULT_SIGNATURE)
    return view.method if view is not None and view.method in ("classify", "regress") else "predict"


def plan_body(
    meta: MetaGraph, body: str | bytes | dict[str, Any], *, signature: str | None = None, method: str | None = None
) -> Plan:
    """Read a REST body as Serving does, up to the session run; errors in Serving's words."""
    doc = loads(body) if isinstance(body, (str, bytes)) else dict(body)
    if signature is not None:
        named = doc.get("signature_name")
        if named not in (None, signature):
            raise InvalidRequest(f"the body names signature '{named}' but --signature says '{signature}'")
        doc["signature_name"] = signature
    chosen = method or _method_for(meta, doc)
    lookup = signature_lookup(meta)
    if chosen == "predict":
        call = parse_predict(doc, lookup)
        view = lookup(call.signature_name or DEFAULT_SIGNATURE)
        assert view is not None  # parse_predict found it
        check_predict(view, call.tensors)  # the aliases sent: no arrays needed yet
        return Plan(view, chosen, call.format, inputs=call.inputs)
    if chosen not in ("classify", "regress"):
        raise InvalidRequest(f"unknown method '{chosen}'", hint="choose predict, classify or regress")
    examples = parse_examples(doc)
    view = examples_signature(lookup, examples.signature_name, chosen)
    examples_targets(view, chosen)
    return Plan(view, chosen, EXAMPLES, examples=examples)


def plan_built(built: BuiltRequest) -> Plan:
    """The plan of a request made by `build_request` (a no-input signature too, as gRPC sends it)."""
    if built.method == "predict":
        inputs = predict_arrays(built)
        check_predict(built.signature, inputs)
        return Plan(built.signature, "predict", built.format, inputs=inputs)
    return Plan(built.signature, built.method, EXAMPLES, examples=examples_call(built))


class Runner:
    """One loaded version, answering planned calls like a model server holding it."""

    def __init__(self, model: SavedModelFile, meta: MetaGraph, session: Session) -> None:
        self.model = model
        self.meta = meta
        self.session = session

    def fetch(self, feeds: dict[str, np.ndarray], fetches: list[str]) -> list[np.ndarray]:
        """Session::Run by tensor names, without Python's feed-shape check."""
        tf = import_tf()
        from tensorflow.core.protobuf import config_pb2

        options = config_pb2.CallableOptions(feed=list(feeds), fetch=fetches)
        try:
            call = self.session.session._make_callable_from_options(options)
            return list(call(*feeds.values()))
        except tf.errors.OpError as error:
            raise InvalidRequest(_tf_message(error)) from error

    def predict(self, signature: SignatureView, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """RunPredict: feed the inputs by tensor name, fetch every output."""
        names = {t.alias: t.name for t in signature.inputs}
        feeds = {names[alias] or "": array for alias, array in inputs.items()}
        if "" in feeds:
            raise InvalidRequest(f"signature '{signature.key}' has composite inputs, which cannot be fed by name")
        outputs = [t for t in signature.outputs if t.name]
        values = self.fetch(feeds, [t.name or "" for t in outputs])
        return {t.alias: value for t, value in zip(outputs, values, strict=True)}

    def classify_or_regress(self, signature: SignatureView, method: str, call: ExamplesCall) -> Response:
        """Serialized examples into `inputs`; Serving's post-processing of the outputs."""
        input_name, targets = examples_targets(signature, method)
        serialized = np.empty(len(call.examples), dtype=object)
        serialized[:] = call.serialized()
        outputs = dict(zip(targets, self.fetch({input_name: serialized}, list(targets.values())), strict=True))
        if method == "classify":
            return classify_response(outputs.get("classes"), outputs.get("scores"), len(call.examples))
        return regress_response(outputs["outputs"], len(call.examples))

    def execute(self, plan: Plan) -> RunResult:
        if plan.inputs is not None:
            outputs = self.predict(plan.signature, plan.inputs)
            if not plan.signature.inputs:  # gRPC-only call: no format; give every output a batch dimension
                outputs = {alias: np.atleast_1d(value) for alias, value in outputs.items()}
            response = predict_response(outputs, plan.format)
        else:
            assert plan.examples is not None
            response = self.classify_or_regress(plan.signature, plan.method, plan.examples)
        return RunResult(response, plan.signature.key, plan.method, plan.format, self.model.path)

    def run(
        self, body: str | bytes | dict[str, Any], *, signature: str | None = None, method: str | None = None
    ) -> RunResult:
        """Answer one REST body as Serving would."""
        return self.execute(plan_body(self.meta, body, signature=signature, method=method))

    def run_built(self, built: BuiltRequest) -> RunResult:
        return self.execute(plan_built(built))


def _tf_message(error: Any) -> str:
    """A TensorFlow error as Serving reports it: the status message, first line."""
    text = str(getattr(error, "message", "") or error)
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return type(error).__name__


@contextlib.contextmanager
def open_runner(
    path: str | Path | SavedModelFile, *, version: int | None = None, tags: tuple[str, ...] | list[str] | None = None
) -> Iterator[Runner]:
    """Load a version with the TF1 loader (as Serving does) and keep it for several calls."""
    model = path if isinstance(path, SavedModelFile) else read(path, version)
    meta = model.meta_graph(tags)
    with load_session(model.path, meta.tags) as session:
        yield Runner(model, meta, session)


def run_body(
    path: str | Path,
    body: str | bytes | dict[str, Any],
    *,
    version: int | None = None,
    tags: tuple[str, ...] | list[str] | None = None,
    signature: str | None = None,
    method: str | None = None,
) -> RunResult:
    """Answer one REST body with the model at `path`, in Serving's response format."""
    model = read(path, version)
    meta = model.meta_graph(tags)
    plan = plan_body(meta, body, signature=signature, method=method)
    with open_runner(model, tags=meta.tags) as runner:
        return runner.execute(plan)


def run_request(built: BuiltRequest) -> RunResult:
    """Run a built request against its own model (the check before writing warmup records)."""
    plan = plan_built(built)
    with open_runner(built.model, tags=built.meta.tags) as runner:
        return runner.execute(plan)
