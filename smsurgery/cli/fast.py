"""A plain `show`, `diff`, `request` or proto-only edit, parsed by hand: no typer app.

Importing typer (and the click it carries: inspect, subprocess, platform,
uuid, datetime, difflib, gettext) and building the click command from the
function's signature cost ~30 ms of every call; at small sizes that is a
third of `show --json` (issue 14), and with the edit modules' imports ~80 ms
of a 0.3 s `tags set --no-verify` (issue 16). This parser takes only calls it
understands completely: the command words (after an optional `--debug`),
the command's own options each at most once, as `--opt VALUE` or
`--opt=VALUE`, and the right number of arguments. It then runs the same
function with the values typer would pass. Anything else (`--help`, an
unknown, repeated or short-joined option, a value or argument starting with
`-`, `--`, a value typer would refuse, shell completion) is left to typer,
so every usage message stays typer's. `tests/test_startup.py` checks that
the two agree on defaults and on what each option sets.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple


class Spec(NamedTuple):
    """One command as typer declares it: arguments, flags (token -> value) and valued options."""

    module: str  # the typer-free module with the function
    function: str
    arguments: tuple[str, ...]  # parameter names, in order
    required: int  # how many arguments must be given
    flags: dict[str, tuple[str, Any]]
    options: dict[str, tuple[str, Callable[[str], Any]]]
    publishes: bool = False  # takes the publish options (`cli.publish_options`) as one `target`


def path(text: str) -> Path:
    """typer's `path` type: a Path, unchecked (the command checks it)."""
    return Path(text)


class Repeatable:
    """A repeatable option given once: typer passes the list of its values (a repeated one goes to typer)."""

    multiple = True

    def __init__(self, convert: Callable[[str], Any]) -> None:
        self.convert = convert
        self.__name__ = convert.__name__  # the type name `test_startup` compares with typer's

    def __call__(self, text: str) -> list[Any]:
        return [self.convert(text)]


_TAGS: dict[str, tuple[str, Callable[[str], Any]]] = {"--tags": ("tags", str)}
_SIGNATURE: dict[str, tuple[str, Callable[[str], Any]]] = {"--signature": ("signature", str), "-s": ("signature", str)}
_JSON: dict[str, tuple[str, Any]] = {"--json": ("as_json", True)}
_DROP: dict[str, tuple[str, Any]] = {"--drop-object-graph": ("drop_object_graph", True)}
# `cli.publish_options`: the parameter names are those of `edit_output.target_from_options`.
_PUBLISH_FLAGS: dict[str, tuple[str, Any]] = {"--copy": ("copy", True), "--no-verify": ("no_verify", True)}
_PUBLISH_OPTIONS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "--version": ("new_version", int),
    "--out": ("out_base", str),
    "--rtol": ("rtol", float),
    "--atol": ("atol", float),
}


def _edit(
    function: str,
    arguments: tuple[str, ...],
    required: int,
    flags: dict[str, tuple[str, Any]],
    options: dict[str, tuple[str, Callable[[str], Any]]],
) -> Spec:
    """An edit command of `cli.edit_commands`: its own options, `--json`, and the publish options."""
    return Spec(
        "smsurgery.cli.edit_commands", function, arguments, required,
        {**flags, **_JSON, **_PUBLISH_FLAGS}, {**options, **_TAGS, **_PUBLISH_OPTIONS}, publishes=True,
    )  # fmt: skip


SPECS: dict[tuple[str, ...], Spec] = {
    ("show",): Spec(
        "smsurgery.cli.show_output",
        "show_model",
        ("path",),
        1,
        {"--ops": ("ops", True), "--graph": ("graph", True), "--no-graph": ("graph", False), **_JSON},
        {**_TAGS, **_SIGNATURE, "--version": ("version", int)},
    ),
    ("diff",): Spec(
        "smsurgery.cli.diff_output",
        "diff_models",
        ("old", "new"),
        1,
        {"--deep": ("deep", True), **_JSON},
        {**_TAGS, **_SIGNATURE, "--format": ("fmt", str)},
    ),
    ("request",): Spec(
        "smsurgery.cli.request_output",
        "print_request",
        ("path",),
        1,
        {"--curl": ("curl", True), "--grpc": ("grpc", True)},
        {
            **_TAGS,
            **_SIGNATURE,
            "--version": ("version", int),
            "--method": ("method", str),
            "--format": ("fmt", str),
            "--input": ("inputs", Repeatable(str)),
            "-i": ("inputs", Repeatable(str)),
            "--batch": ("batch", int),
            "--host": ("host", str),
            "--model-name": ("model_name", str),
            "--out": ("out", path),
            "-o": ("out", path),
        },
    ),
    ("tags", "set"): _edit("tags_set", ("path", "new_tags"), 2, {}, {}),
    ("tags", "add"): _edit("tags_add", ("path", "new_tags"), 2, {}, {}),
    ("devices", "strip"): _edit("devices_strip", ("path",), 1, {}, {}),
    ("devices", "set"): _edit("devices_set", ("path", "device"), 2, {}, {"--match": ("match", str)}),
    # DIMS usually starts with -1, which this parser takes for an option: such a call goes to typer.
    ("shape", "set"): _edit("shape_set", ("path", "alias", "dims"), 2, {}, {"--batch": ("batch", str), **_SIGNATURE}),
    ("signature", "rename"): _edit("signature_rename", ("path", "old", "new"), 3, _DROP, {}),
    ("signature", "remove"): _edit("signature_remove", ("path", "key"), 2, _DROP, {}),
    ("alias", "rename"): _edit(
        "alias_rename",
        ("path", "old", "new"),
        3,
        {"--input": ("as_input", True), "--output": ("as_output", True), **_DROP},
        _SIGNATURE,
    ),
}


def parse(args: list[str]) -> tuple[Spec, dict[str, Any], bool] | None:
    """(spec, keyword arguments, --debug) for a call this parser understands, else None."""
    debug = bool(args) and args[0] == "--debug"
    words = args[1:] if debug else args
    for length in (1, 2):
        spec = SPECS.get(tuple(words[:length])) if len(words) >= length else None
        if spec is not None:
            break
    else:
        return None
    values: dict[str, Any] = {}
    positional: list[str] = []
    rest = iter(words[length:])
    for word in rest:
        if not word.startswith("-"):
            positional.append(word)
            continue
        name, has_value, given = word.partition("=")
        if name in spec.flags and not has_value:
            parameter, value = spec.flags[name]
        elif name in spec.options:
            parameter, convert = spec.options[name]
            text = given if has_value else next(rest, None)
            if text is None or text.startswith("-") or (has_value and not name.startswith("--")):
                return None
            try:
                value = convert(text)
            except ValueError:
                return None
        else:
            return None
        if parameter in values:
            return None
        values[parameter] = value
    if not spec.required <= len(positional) <= len(spec.arguments):
        return None
    values.update(zip(spec.arguments, positional, strict=False))
    return spec, values, debug


def run(args: list[str]) -> bool:
    """Run the call if it is plain (exits as typer does: `sys.exit(status)`); False to leave it to typer."""
    if "_SMSURGERY_COMPLETE" in os.environ:
        return False
    parsed = parse(args)
    if parsed is None:
        return False
    spec, values, debug = parsed
    from smsurgery.cli import boundary

    boundary.STATE["debug"] = debug or bool(os.environ.get("SMSURGERY_DEBUG"))
    import importlib

    function = getattr(importlib.import_module(spec.module), spec.function)
    if spec.publishes:
        from smsurgery.cli.edit_output import target_from_options

        publish = {p for p, _ in (*_PUBLISH_FLAGS.values(), *_PUBLISH_OPTIONS.values())}
        values["target"] = target_from_options(**{p: values.pop(p) for p in publish if p in values})
    try:
        status = function(**values)
    except KeyboardInterrupt:  # as typer's main: a silent 130
        sys.exit(130)
    except OSError as error:
        if error.errno != errno.EPIPE:
            raise
        boundary.silence_stdout()  # as click's main: the reader went away, exit 1 without a word
        sys.exit(1)
    sys.exit(status or 0)
