"""A plain `show` or `diff`, parsed by hand: the read commands without the typer app.

Importing typer (and the click it carries: inspect, subprocess, platform,
uuid, datetime, difflib, gettext) and building the click command from the
function's signature cost ~30 ms of every call; at small sizes that is a
third of `show --json` (issue 14). This parser takes only calls it
understands completely: the command word (after an optional `--debug`),
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
from typing import Any, NamedTuple


class Spec(NamedTuple):
    """One command as typer declares it: arguments, flags (token -> value) and valued options."""

    module: str  # the typer-free module with the function
    function: str
    arguments: tuple[str, ...]  # parameter names, in order
    required: int  # how many arguments must be given
    flags: dict[str, tuple[str, Any]]
    options: dict[str, tuple[str, Callable[[str], Any]]]


_READ_OPTIONS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "--tags": ("tags", str),
    "--signature": ("signature", str),
    "-s": ("signature", str),
}

SPECS = {
    "show": Spec(
        "smsurgery.cli.show_output",
        "show_model",
        ("path",),
        1,
        {
            "--ops": ("ops", True),
            "--graph": ("graph", True),
            "--no-graph": ("graph", False),
            "--json": ("as_json", True),
        },
        {**_READ_OPTIONS, "--version": ("version", int)},
    ),
    "diff": Spec(
        "smsurgery.cli.diff_output",
        "diff_models",
        ("old", "new"),
        1,
        {"--deep": ("deep", True), "--json": ("as_json", True)},
        {**_READ_OPTIONS, "--format": ("fmt", str)},
    ),
}


def parse(args: list[str]) -> tuple[Spec, dict[str, Any], bool] | None:
    """(spec, keyword arguments, --debug) for a call this parser understands, else None."""
    debug = bool(args) and args[0] == "--debug"
    words = args[1:] if debug else args
    spec = SPECS.get(words[0]) if words else None
    if spec is None:
        return None
    values: dict[str, Any] = {}
    positional: list[str] = []
    rest = iter(words[1:])
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
            if text is None or text.startswith("-") or (name == "-s" and has_value):
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
