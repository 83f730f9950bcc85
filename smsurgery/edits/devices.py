"""Device placements in a meta graph: count them, strip them, rewrite them (pure proto edits).

A graph exported on a GPU machine (or with `tf.device` scopes) carries a
device string on every node, in the main graph and in every function of the
library; a TF2 export also records a device per variable and resource in
the object graph. Served on a machine without those devices it fails with
"Cannot assign a device for operation" unless soft placement is on
(tensorflow/serving #977). Clearing the fields lets the placer choose.

Device strings are checked with the rules of TensorFlow's
`DeviceNameUtils::ParseFullName` (tensorflow/core/util/device_name_utils.cc):
a sequence of `/job:NAME`, `/replica:N`, `/task:N`, `/device:TYPE[:N]` and the
legacy `/cpu:N` / `/gpu:N`, each part possibly `*`; NAME and TYPE start with
a letter and hold letters, digits and `_`. What is written is TensorFlow's
canonical form (`ParsedNameToString`: `/gpu:0` becomes `/device:GPU:0`).
"""

from __future__ import annotations

import collections
import fnmatch
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from smsurgery.core.errors import InvalidEdit
from smsurgery.edits.changes import Change, EditReport


@dataclass
class ParsedDevice:
    job: str | None = None  # "*" for a wildcard
    replica: str | None = None
    task: str | None = None
    type: str | None = None
    id: str | None = None

    def canonical(self) -> str:
        """TensorFlow's `ParsedNameToString`."""
        text = "".join(f"/{part}:{value}" for part, value in (("job", self.job), ("replica", self.replica),
                                                              ("task", self.task)) if value is not None)  # fmt: skip
        if self.type is not None:
            text += f"/device:{self.type}:{self.id if self.id is not None else '*'}"
        return text


def _name(rest: str, terminators: str) -> tuple[str, str] | None:
    """`ConsumePrefix`: a letter, then letters, digits or `_` up to a terminator."""
    end = next((i for i, ch in enumerate(rest) if ch in terminators), len(rest))
    word = rest[:end]
    if not word or not word[0].isascii() or not word[0].isalpha():
        return None
    if not all(ch.isascii() and (ch.isalnum() or ch == "_") for ch in word):
        return None
    return word, rest[end:]


def _number(rest: str) -> tuple[str, str] | None:
    end = next((i for i, ch in enumerate(rest) if not ("0" <= ch <= "9")), len(rest))
    return (str(int(rest[:end])), rest[end:]) if end else None


def _part(rest: str, consume: Any) -> tuple[str, str] | None:
    if rest.startswith("*"):
        return "*", rest[1:]
    return consume(rest)


def _step(rest: str, parsed: ParsedDevice) -> str | None:
    """One round of ParseFullName's loop; None when nothing could be consumed."""
    progress = False
    for prefix, field, consume in (("/job:", "job", lambda r: _name(r, "/")), ("/replica:", "replica", _number),
                                   ("/task:", "task", _number)):  # fmt: skip
        if rest.startswith(prefix):
            got = _part(rest[len(prefix) :], consume)
            if got is None:
                return None
            setattr(parsed, field, got[0])
            rest, progress = got[1], True
    if rest.startswith("/device:"):
        got = _part(rest[len("/device:") :], lambda r: _name(r, "/:"))
        if got is None:
            return None
        parsed.type, rest, parsed.id = got[0], got[1], None
        if rest.startswith(":"):
            got = _part(rest[1:], _number)
            if got is None:
                return None
            parsed.id, rest = got
        progress = True
    for legacy in ("cpu", "gpu"):
        for prefix in (f"/{legacy}:", f"/{legacy.upper()}:"):
            if rest.startswith(prefix):
                got = _part(rest[len(prefix) :], _number)
                if got is None:
                    return None
                parsed.type, (parsed.id, rest), progress = legacy.upper(), got, True
    return rest if progress else None


def parse_device(text: str) -> ParsedDevice:
    """A device string as TensorFlow parses it; InvalidEdit naming the forms it accepts otherwise."""
    parsed, rest = ParsedDevice(), text
    if text == "/":
        return parsed
    while rest:
        after = _step(rest, parsed)
        if after is None:
            raise InvalidEdit(
                f"TensorFlow cannot parse the device {text!r}",
                hint="forms: /device:GPU:0, /device:CPU:0, /cpu:0, /gpu:0, /job:NAME/replica:0/task:0/device:TYPE:N",
            )
        rest = after
    if not text:
        raise InvalidEdit("the device must not be empty", hint="use `devices strip` to clear placements")
    return parsed


def node_defs(meta: Any) -> Iterator[tuple[str, Any]]:
    """(where, NodeDef) for the main graph and every function of the library."""
    for node in meta.graph_def.node:
        yield "", node
    for function in meta.graph_def.library.function:
        for node in function.node_def:
            yield function.signature.name, node


def _object_devices(meta: Any) -> Iterator[Any]:
    """Object-graph messages with a `device` field: variables (and their components) and resources."""
    for node in meta.object_graph_def.nodes:
        kind = node.WhichOneof("kind")
        if kind == "variable":
            yield node.variable
            yield from node.variable.experimental_distributed_variable_components
        elif kind == "resource":
            yield node.resource


def placements(meta: Any) -> dict[str, int]:
    """Nodes per requested device (main graph and functions); unplaced nodes are not counted."""
    graph = meta.graph_def  # the walk of node_defs, without its (scope, node) pairs: 10 k nodes per MB of graph
    counts: collections.Counter[str] = collections.Counter(n.device for n in graph.node if n.device)
    for function in graph.library.function:
        counts.update(n.device for n in function.node_def if n.device)
    return dict(sorted(counts.items()))


def gpu_pins(counts: dict[str, int]) -> int:
    """How many nodes of a `placements` count ask for a device type other than CPU (a GPU, a TPU)."""
    total = 0
    for device, count in counts.items():
        try:
            kind = parse_device(device).type
        except InvalidEdit:
            continue
        total += count if kind not in (None, "CPU", "*") else 0
    return total


def gpu_pin_warning(counts: dict[str, int]) -> str | None:
    """One line for `show` when nodes ask for an accelerator, which a CPU-only server cannot assign."""
    pinned = gpu_pins(counts)
    if not pinned:
        return None
    return (
        f"{pinned} nodes ask for an accelerator ({', '.join(d for d in counts if gpu_pins({d: 1}))}): "
        "a server without it fails with 'Cannot assign a device' unless soft placement is on. "
        "Fix: smsurgery devices strip PATH"
    )


def strip_devices(meta: Any) -> EditReport:
    """Clear every device field: nodes of the graph and of every function, object-graph variables/resources."""
    nodes = sum(1 for _, node in node_defs(meta) if node.device)
    objects = sum(1 for item in _object_devices(meta) if item.device)
    if not nodes and not objects:
        return EditReport(warnings=["no device placements to strip"])
    before = placements(meta)
    for _, node in node_defs(meta):
        node.ClearField("device")
    for item in _object_devices(meta):
        item.ClearField("device")
    detail = f"device cleared on {nodes} nodes ({', '.join(f'{d}: {n}' for d, n in before.items()) or 'none'})"
    if objects:
        detail += f" and {objects} object-graph variables/resources"
    return EditReport([Change("strip_devices", "", old=", ".join(before), detail=detail)])


def set_devices(meta: Any, device: str, match: str | None = None) -> EditReport:
    """Place every node (or those whose device matches the glob `match`) on `device`."""
    canonical = parse_device(device).canonical()
    changed = 0
    for _, node in node_defs(meta):
        if (match is None or fnmatch.fnmatchcase(node.device, match)) and node.device != canonical:
            node.device = canonical
            changed += 1
    for item in _object_devices(meta):
        if item.device and (match is None or fnmatch.fnmatchcase(item.device, match)):
            item.device = canonical
    if not changed:
        hint = f"devices in the graph: {', '.join(placements(meta)) or 'none'}"
        raise InvalidEdit(f"no node to place on {canonical}" + (f" matches {match!r}" if match else ""), hint=hint)
    where = f" (nodes on devices matching {match!r})" if match else ""
    detail = f"{changed} nodes placed on {canonical}{where}"
    return EditReport([Change("set_devices", "", new=canonical, detail=detail)])
