"""Hostile inputs: every case of tests/hostile/inputs.py gets one line, exit 2, and nothing written.

The cases meet the CLI as a real process: a FIFO nobody writes to, /dev/zero
as a value, a body or stdin, JSON nested 100000 deep, a path past PATH_MAX,
a closed stdin, a stdout on /dev/full, a declared shape whose sample would
need terabytes, and option values that would make a model silently wrong.
A hang is a failure (each run has a timeout). Then: where a writing command
may publish (`--out`), and what it says when its report cannot be written
after it published.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from smsurgery.core.errors import PublishError
from smsurgery.core.model import read
from smsurgery.publishing.atomic import STAGING_PREFIX, refuse_base_inside_a_version, staged_version
from smsurgery.publishing.new_version import publish_proto
from smsurgery.publishing.target import PublishTarget
from tests.conftest import FIXTURE_MODELS, REPO, CliResult, assert_one_line_error, run_cli, tree_digest
from tests.hostile.inputs import INPUT_CASES, InputCase


def _listing(root: Path) -> list[str]:
    return sorted(os.path.relpath(os.path.join(f, n), root) for f, d, files in os.walk(root) for n in d + files)


def run_hostile(args: list[str], *, stdin: str | None = None, stdout: str | None = None) -> CliResult:
    """`python -m smsurgery ARGS` with stdin closed or read from a path, stdout to a path; 60 s at most."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    stdin_file = open(stdin, "rb") if stdin not in (None, "closed") else subprocess.DEVNULL  # noqa: SIM115
    stdout_file = open(stdout, "w") if stdout else subprocess.PIPE  # noqa: SIM115
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "smsurgery", *args],
            stdin=stdin_file,
            stdout=stdout_file,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
            timeout=60,
            preexec_fn=(lambda: os.close(0)) if stdin == "closed" else None,
        )
    finally:
        for handle in (stdin_file, stdout_file):
            if hasattr(handle, "close"):
                handle.close()
    return CliResult(proc.returncode, proc.stdout or "", proc.stderr)


@pytest.mark.parametrize("case", INPUT_CASES, ids=[c.name for c in INPUT_CASES])
def test_hostile_input_gets_one_line_and_nothing_is_written(tmp_path: Path, case: InputCase) -> None:
    base = tmp_path / "models" / case.model
    shutil.copytree(FIXTURE_MODELS / case.model, base)
    args = case.make(tmp_path, base)
    before, listing = tree_digest(tmp_path), _listing(tmp_path)
    result = run_hostile(args, stdin=case.stdin, stdout=case.stdout)
    assert_one_line_error(result, *case.words)
    assert tree_digest(tmp_path) == before
    assert _listing(tmp_path) == listing, "a version, a staging folder or a file appeared"


def test_inputs_corpus_covers_the_issue_list() -> None:
    names = {c.name for c in INPUT_CASES}
    assert {"value_from_dev_zero", "body_from_fifo", "edits_stdin_endless", "body_stdin_closed"} <= names
    assert {"edits_nested_deeply", "body_nested_deeply", "edits_not_utf8", "edits_list_for_a_name"} <= names
    assert {"path_too_long", "stdout_full", "huge_declared_shape_request", "huge_batch"} <= names
    assert {"scale_nan", "scale_inf", "scale_inverted", "std_zero", "std_negative", "input_name_empty"} <= names


def test_a_value_from_a_fifo_with_a_writer_is_read(tmp_path: Path, model_copy) -> None:
    """Bounded is not refused: a writer that is there (as with `<(cmd)`) is read to its end."""
    base = model_copy("tf1_lookup")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    writer = subprocess.Popen(["sh", "-c", f"sleep 0.3; printf '\"hello\"' > {fifo}"])
    result = run_cli("request", base, "-i", f"words=@{fifo}")
    writer.wait(timeout=30)
    assert result.code == 0, result.stderr
    assert '"b64"' in result.stdout


# --- where a new version may go (item 5) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("out", "words"),
    [
        ("m/1", ("m/1 is version 1",)),
        ("m/1/sub", ("is version 1",)),
        ("m/1/variables", ("is version 1",)),
        ("m/7", ("would become a version folder",)),
        (f"m/{STAGING_PREFIX}123-0badc0de/x", ("staging folder",)),
    ],
)
def test_out_into_a_version_or_a_staging_folder_is_refused(tmp_path: Path, out: str, words: tuple[str, ...]) -> None:
    base = tmp_path / "m"
    shutil.copytree(FIXTURE_MODELS / "tf1_lookup", base)
    (base / f"{STAGING_PREFIX}123-0badc0de").mkdir()
    before, listing = tree_digest(tmp_path), _listing(tmp_path)
    result = run_cli("signature", "rename", f"{base}@1", "serving_default", "x", "--no-verify", "--out", tmp_path / out)
    assert_one_line_error(result, *(w.replace("m/", f"{tmp_path}/m/") for w in words))
    assert tree_digest(tmp_path) == before and _listing(tmp_path) == listing


def test_out_through_a_symlink_into_a_version_is_refused(tmp_path: Path, model_copy) -> None:
    base = model_copy("tf1_lookup")
    (tmp_path / "alias").symlink_to(base / "1")
    with pytest.raises(PublishError, match="is version 1"):
        refuse_base_inside_a_version(tmp_path / "alias")
    source = read(base / "1")
    with pytest.raises(PublishError, match="is version 1"):  # refused where the target is made, before any work
        publish_proto(source, source.proto, PublishTarget(base=tmp_path / "alias" / "inner"))
    with pytest.raises(PublishError, match="is version 1"), staged_version(tmp_path / "alias" / "inner"):
        pass  # and by the publisher itself, for a caller that stages directly
    assert sorted(p.name for p in base.iterdir()) == ["1"]
    assert sorted(p.name for p in (base / "1").iterdir()) == ["assets", "saved_model.pb", "variables"]


def test_out_into_a_fresh_or_another_base_still_works(tmp_path: Path, model_copy) -> None:
    base = model_copy("tf1_lookup")
    for out in (tmp_path / "fresh", tmp_path / "fresh", tmp_path / "deeper" / "7" / "base"):
        result = run_cli("signature", "rename", f"{base}@1", "serving_default", "x", "--no-verify", "--out", out)
        assert result.code == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "fresh").iterdir()) == ["1", "2"]
    assert (tmp_path / "deeper" / "7" / "base" / "1" / "saved_model.pb").is_file()


# --- a stdout that fails (item 6) ---------------------------------------------------------------------


def test_stdout_failing_after_publishing_says_the_version_was_published(model_copy) -> None:
    """A script that retries on failure must learn that the version is there (exit 4, not 2)."""
    base = model_copy("tf1_lookup")
    result = run_hostile(
        ["signature", "rename", f"{base}@1", "serving_default", "renamed", "--no-verify"], stdout="/dev/full"
    )
    assert result.code == 4, (result.code, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "cannot write to stdout" in lines[0] and f"WAS published: {base / '2'}" in lines[0]
    assert "renamed" in read(base / "2").meta_graph().signature_keys()


def test_a_closed_pipe_on_stdout_is_one_line(model_copy) -> None:
    base = model_copy("tf1_lookup")
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody will ever read: every write gets EPIPE
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "smsurgery", "show", str(base), "--json"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert_one_line_error(CliResult(proc.returncode, "", proc.stderr), "cannot write to stdout", "Broken pipe")
