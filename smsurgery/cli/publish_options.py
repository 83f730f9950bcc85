"""One option group for every command that publishes a new version.

Writing commands share the same six choices; pasting them into each command
made 8 copies of 7 options. `@publish_options` adds them to a command's
signature (typer reads `__signature__`) and hands the command one
`PublishTarget` instead, so a new writing command gets the whole group, and
a new publish option reaches every command, by one line.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from smsurgery.cli.edit_output import target_from_options

F = TypeVar("F", bound=Callable[..., Any])

_OPTIONS: dict[str, tuple[Any, Any]] = {
    "new_version": (
        Annotated[
            int | None,
            typer.Option(
                "--version",
                help="Number of the new version (default: the next free one); choose the source version with PATH@N.",
                show_default=False,
            ),
        ],
        None,
    ),
    "out_base": (
        Annotated[
            str | None,
            typer.Option("--out", help="Model base to publish into (default: the source's).", show_default=False),
        ],
        None,
    ),
    "copy": (
        Annotated[bool, typer.Option("--copy", help="Copy variable shards instead of hard-linking them.")],
        False,
    ),
    "no_verify": (
        Annotated[bool, typer.Option("--no-verify", help="Do not run old and new versions to compare them.")],
        False,
    ),
    "rtol": (
        Annotated[
            float | None,
            typer.Option(
                "--rtol", help="Relative tolerance of verification (default: the command's own).", show_default=False
            ),
        ],
        None,
    ),
    "atol": (
        Annotated[
            float | None,
            typer.Option(
                "--atol", help="Absolute tolerance of verification (default: the command's own).", show_default=False
            ),
        ],
        None,
    ),
}


def publish_options(command: F | None = None, *, omit: tuple[str, ...] = ()) -> Any:
    """Give `command(..., target: PublishTarget)` the publish options instead of its `target` parameter.

    `omit` leaves out options a command cannot honour (`convert` writes into
    its BASE argument and always writes fresh shards: no `--out`, no
    `--copy`); the rest keep their one spelling and meaning.
    """
    if command is None:
        return functools.partial(publish_options, omit=omit)
    unknown = set(omit) - set(_OPTIONS)
    if unknown:
        raise TypeError(f"@publish_options cannot omit {sorted(unknown)}: it has {sorted(_OPTIONS)}")
    options = {name: spec for name, spec in _OPTIONS.items() if name not in omit}
    signature = inspect.signature(command, eval_str=True)
    if "target" not in signature.parameters:
        raise TypeError(f"{command.__name__} has no 'target' parameter for @publish_options")
    kept = [p for p in signature.parameters.values() if p.name != "target"]
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
        for name, (annotation, default) in options.items()
    ]

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        values = {name: kwargs.pop(name, default) for name, (_, default) in options.items()}
        return command(*args, target=target_from_options(**values), **kwargs)

    wrapper.__signature__ = signature.replace(parameters=[*kept, *added])  # type: ignore[attr-defined]
    return wrapper
