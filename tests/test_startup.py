"""Start-up of the read commands: what `show`, `diff` and `request` do not import.

At small sizes a read command is mostly Python starting and importing
(issue 14: `show --json` must be 30x faster than `saved_model_cli show
--all`, ~0.085 s of CPU). Each module kept off the path here was measured
to cost milliseconds of every call; these tests keep it off.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from smsurgery.cli import fast
from tests.conftest import FIXTURE_MODELS, REPO


def _modules_after(*args: str) -> set[str]:
    """The modules a whole `python -m smsurgery ARGS` process imported (it must succeed)."""
    code = (
        "import sys, runpy\n"
        f"sys.argv = ['smsurgery', *{list(args)!r}]\n"
        "try:\n    runpy.run_module('smsurgery', run_name='__main__')\n"
        "except SystemExit as stop:\n    assert stop.code in (None, 0, 1), stop.code\n"
        "sys.stderr.write('MODULES ' + ' '.join(sorted(sys.modules)) + '\\n')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = [text for text in proc.stderr.splitlines() if text.startswith("MODULES ")][-1]
    return set(line.split()[1:])


def test_local_reads_do_not_import_the_storage_package() -> None:
    model = str(FIXTURE_MODELS / "tf1_linear")
    for args in (("show", "--json", model), ("diff", model, model)):
        imported = _modules_after(*args)
        assert "smsurgery.core.model" in imported
        assert not {m for m in imported if m.startswith("smsurgery.storage")}, args


def test_the_cheap_url_check_knows_the_schemes_storage_reads() -> None:
    from smsurgery.core.layout import REMOTE_SCHEMES, is_remote_text
    from smsurgery.storage.url import SCHEMES, is_remote

    assert set(REMOTE_SCHEMES) == set(SCHEMES)
    for text in ("s3://b/m", "gs://b/m@3", "s3:/b", "s3", "models/s3://x", "file://x", "", "gs://"):
        assert is_remote_text(text) == is_remote(text), text


def test_local_show_json_and_diff_json_import_no_rich() -> None:
    model = str(FIXTURE_MODELS / "tf1_linear")
    for args in (("show", "--json", model), ("diff", "--json", model, model)):
        imported = _modules_after(*args)
        assert not {m for m in imported if m == "rich" or m.startswith("rich.")}, args


MESSAGES = [
    "the graph (1.5 MB) was not read: placements and the warnings that need it were skipped; --graph reads it",
    "tabs\there\tand\t\tthere, a bell \a, a backspace \b, a form feed \f, a vertical tab \v, a return \r.",
    "two\nlines\n",
    "",
    "\n\n",
    "wide 日本語 and émoji ✓ [bold]not markup[/bold] :smile: 'x:0'",
    "\x1b[31mescape codes pass through\x1b[0m",
    "a" * 3000,
    "ends with spaces   ",
    "\ttab first\n\tand again",
]


def test_plain_warnings_and_notes_are_what_rich_writes_to_a_pipe(monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.console import Console

    from smsurgery.cli import common

    for name in ("TTY_COMPATIBLE", "FORCE_COLOR", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(common, "err", common._LazyConsole(stderr=True))  # not built by an earlier test
    for message in MESSAGES:
        for function, rich_print in (
            (common.warn, lambda c, m: c.print(f"warning: {m}", style="yellow")),
            (common.note, lambda c, m: c.print(m, markup=False, highlight=False)),
        ):
            plain = io.StringIO()
            monkeypatch.setattr(sys, "stderr", plain)
            assert common._plain_stderr()
            function(message)
            drawn = io.StringIO()
            console = Console(
                file=drawn, highlight=False, soft_wrap=True, markup=False, emoji=False, width=common.PIPED_WIDTH
            )
            rich_print(console, message)
            assert plain.getvalue() == drawn.getvalue(), (function.__name__, message)


def test_a_terminal_or_forced_colour_still_goes_through_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    from smsurgery.cli import common

    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    monkeypatch.setattr(common, "err", common._LazyConsole(stderr=True))
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert not common._plain_stderr()
    monkeypatch.delenv("FORCE_COLOR")

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stderr", Terminal())
    assert not common._plain_stderr()


def test_plain_show_and_diff_run_without_typer() -> None:
    model = str(FIXTURE_MODELS / "tf1_linear")
    for args in (("show", "--json", model), ("diff", "--json", model, model), ("--debug", "show", model)):
        imported = _modules_after(*args)
        assert "typer" not in imported and "smsurgery.cli.commands" not in imported, args


def _typer_command(words: tuple[str, ...]) -> Any:
    import typer.main

    from smsurgery.cli import commands

    commands.register_commands(list(words))
    command = typer.main.get_command(commands.app)
    for word in words:
        command = command.commands[word]  # type: ignore[attr-defined]
    return command


@pytest.mark.parametrize("words", sorted(fast.SPECS), ids=" ".join)
def test_the_fast_path_agrees_with_the_typer_command(words: tuple[str, ...]) -> None:
    import importlib
    import inspect

    from smsurgery.cli.edit_output import target_from_options

    spec = fast.SPECS[words]
    command = _typer_command(words)
    function = getattr(importlib.import_module(spec.module), spec.function)
    ours = {p.name: p.default for p in inspect.signature(function).parameters.values()}
    if spec.publishes:  # the function takes one `target`; typer's command, the options that make it
        assert ours.pop("target") is inspect.Parameter.empty
        ours |= {p.name: p.default for p in inspect.signature(target_from_options).parameters.values()}
    theirs = {p.name: p.default for p in inspect.signature(command.callback).parameters.values()}
    assert ours == theirs  # the same parameters, the same defaults
    arguments = [p.name for p in command.params if p.param_type_name == "argument"]
    assert tuple(arguments) == spec.arguments
    assert sum(p.required for p in command.params if p.param_type_name == "argument") == spec.required
    tokens = {}
    for param in command.params:
        if param.param_type_name != "option":
            continue
        for token in param.opts:
            tokens[token] = param.name
        for token in param.secondary_opts:
            tokens[token] = param.name
    assert {t: p for t, (p, _v) in spec.flags.items()} | {t: p for t, (p, _c) in spec.options.items()} == {
        t: p for t, p in tokens.items() if t != "--help"
    }
    for token, (parameter, value) in spec.flags.items():
        param = next(p for p in command.params if p.name == parameter)
        assert param.is_flag and value == (token in param.opts), token
    for token, (parameter, convert) in spec.options.items():
        param = next(p for p in command.params if p.name == parameter)
        assert not param.is_flag and param.type.name == convert.__name__, token
        assert param.multiple == getattr(convert, "multiple", False), token


@pytest.mark.parametrize(
    "args",
    [
        ["show", "--help"],
        ["show", "m", "--help"],
        ["show"],
        ["show", "a", "b"],
        ["show", "m", "--bogus"],
        ["show", "m", "--json", "--json"],
        ["show", "m", "--json=1"],
        ["show", "m", "--version", "x"],
        ["show", "m", "--version"],
        ["show", "m", "--tags", "-x"],
        ["show", "-sdefault", "m"],
        ["show", "-s=default", "m"],
        ["show", "--", "m"],
        ["show", "-", "m"],
        ["show", "m", "--debug"],
        ["--version"],
        ["--debug", "--debug", "show", "m"],
        ["diff"],
        ["diff", "a", "b", "c"],
        ["scan", "m"],
        [],
        ["tags"],
        ["tags", "set", "m"],
        ["tags", "set", "m", "serve", "extra"],
        ["tags", "bogus", "m", "serve"],
        ["tags", "set", "m", "serve", "--version", "x"],
        ["tags", "set", "m", "serve", "--no-verify=1"],
        ["tags", "set", "m", "serve", "--help"],
        ["shape", "set", "m", "x", "-1,224,224,3"],
        ["devices", "set", "m", "/gpu:0", "--match"],
        ["signature", "add", "m", "k", "-i", "x=x:0"],
        ["alias", "repoint", "m", "y", "z:0"],
        ["request", "m", "-i", "x=1", "-i", "x=2"],
        ["request", "m", "-i", "x=1", "--input", "x=2"],
        ["request", "m", "-o=body.json"],
        ["request", "m", "-i=x=1"],
        ["request", "m", "--batch", "two"],
    ],
)
def test_calls_the_fast_path_does_not_fully_understand_go_to_typer(args: list[str]) -> None:
    assert fast.parse(args) is None


def test_the_fast_path_reads_options_as_typer_does() -> None:
    parsed = fast.parse(["--debug", "show", "--version=3", "m", "-s", "k", "--no-graph", "--tags", ""])
    assert parsed is not None
    spec, values, debug = parsed
    assert spec.function == "show_model" and debug
    assert values == {"version": 3, "path": "m", "signature": "k", "graph": False, "tags": ""}
    parsed = fast.parse(["diff", "a", "--format", "markdown", "b", "--deep"])
    assert parsed is not None and parsed[1] == {"old": "a", "new": "b", "fmt": "markdown", "deep": True}
    parsed = fast.parse(["tags", "set", "m@1", "--version=7", "serve,gpu", "--no-verify", "--rtol", "1e-3", "--copy"])
    assert parsed is not None and parsed[0].function == "tags_set"
    assert parsed[1] == {
        "path": "m@1", "new_tags": "serve,gpu", "new_version": 7, "no_verify": True, "rtol": 1e-3, "copy": True,
    }  # fmt: skip
    parsed = fast.parse(["alias", "rename", "m", "x", "inp", "-s", "k", "--input", "--out", "b2"])
    assert parsed is not None and parsed[1] == {
        "path": "m", "old": "x", "new": "inp", "signature": "k", "as_input": True, "out_base": "b2",
    }  # fmt: skip


def test_the_fast_path_reads_request_options_as_typer_does() -> None:
    parsed = fast.parse(["request", "m@2", "-i", "x=[1]", "-o", "b.json", "--batch=3", "--curl", "--method", "predict"])
    assert parsed is not None and parsed[0].function == "print_request"
    assert parsed[1] == {
        "path": "m@2", "inputs": ["x=[1]"], "out": Path("b.json"), "batch": 3, "curl": True, "method": "predict",
    }  # fmt: skip


@pytest.mark.parametrize(
    "options",
    [[], ["--format", "columnar", "--batch", "2"], ["-i", "x=[[1.0,2.0]]", "--host", "serving:9000"], ["--curl"],
     ["--grpc"], ["--model-name", "linear", "--version", "1", "-s", "prediction"]],
    ids=lambda value: " ".join(value) or "plain",
)  # fmt: skip
def test_the_fast_path_and_typer_print_the_same_request(options: list[str]) -> None:
    model = str(FIXTURE_MODELS / "tf1_linear")
    printed = []
    for middle in ([], ["--"]):
        args = ["request", *options, *middle, model]
        assert (fast.parse(args) is None) == bool(middle), args
        proc = subprocess.run([sys.executable, "-m", "smsurgery", *args], capture_output=True, text=True, cwd=REPO)
        assert proc.returncode == 0, proc.stderr
        printed.append((proc.stdout, proc.stderr))
    assert printed[0] == printed[1]


def test_request_runs_without_typer_rich_numpy_or_a_graph_model() -> None:
    """Samples come from the pure-Python generator; only string inputs need the graph (their parse ops)."""
    imported = _modules_after("request", str(FIXTURE_MODELS / "tf1_linear"))
    assert "smsurgery.cli.request_output" in imported
    assert not {m.split(".")[0] for m in imported} & {"typer", "rich", "tensorflow", "numpy"}
    assert "smsurgery.core.graphmodel" not in imported


def test_proto_edits_run_without_typer_rich_or_tensorflow(tmp_path: Path) -> None:
    model = str(FIXTURE_MODELS / "tf1_linear")
    for args in (
        ("tags", "set", model, "serve,gpu", "--no-verify", "--out", str(tmp_path / "tags")),
        ("devices", "strip", model, "--no-verify", "--out", str(tmp_path / "devices")),
        ("signature", "rename", model, "prediction", "predict", "--no-verify", "--out", str(tmp_path / "sig")),
    ):
        imported = _modules_after(*args)
        assert "smsurgery.cli.edit_commands" in imported, args
        unwanted = {m.split(".")[0] for m in imported} & {"typer", "rich", "tensorflow", "numpy"}
        assert not unwanted, (args, unwanted)


@pytest.mark.parametrize(
    ("command", "arguments", "options"),
    [
        (["tags", "set"], ["serve,gpu"], []),
        (["tags", "add"], ["serve,gpu"], []),
        (["devices", "strip"], [], []),
        (["devices", "set"], ["/device:CPU:0"], ["--match", "*CPU*"]),
        (["shape", "set"], ["x"], ["--batch", "3", "-s", "prediction"]),
        (["signature", "rename"], ["prediction", "predict"], []),
        (["alias", "rename"], ["x", "features"], ["--input", "--signature=prediction"]),
    ],
    ids=lambda value: " ".join(value),
)
def test_the_fast_path_and_typer_publish_the_same_version(
    tmp_path: Path, model_copy, command: list[str], arguments: list[str], options: list[str]
) -> None:
    """The same call through both parsers (`--` sends it to typer): the same report, the same saved_model.pb."""
    source = model_copy("tf1_linear")
    before = sorted(p.name for p in source.iterdir())
    outputs = []
    for name, middle in (("fast", []), ("typer", ["--"])):
        base = tmp_path / name
        args = [*command, *options, "--no-verify", "--json", "--out", str(base), *middle, f"{source}@1", *arguments]
        assert (fast.parse(args) is None) == (name == "typer"), args
        proc = subprocess.run([sys.executable, "-m", "smsurgery", *args], capture_output=True, text=True, cwd=REPO)
        assert proc.returncode == 0, proc.stderr
        report = json.loads(proc.stdout.replace(str(base), "BASE"))
        outputs.append((report, (base / "1" / "saved_model.pb").read_bytes(), proc.stderr))
    assert outputs[0] == outputs[1]
    assert sorted(p.name for p in source.iterdir()) == before


def test_show_of_a_tf1_export_builds_no_graph_model() -> None:
    imported = _modules_after("show", "--json", str(FIXTURE_MODELS / "tf1_linear"))
    assert "smsurgery.inspect.restore_check" in imported  # the warnings ran
    assert "smsurgery.core.graphmodel" not in imported
