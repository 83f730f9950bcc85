"""Hostile inputs to the CLI: files, streams and option values a command must refuse in one line.

Each case builds its hostile thing for real in a temporary folder (a FIFO
with `os.mkfifo`, `/dev/zero` itself, a sparse 65 MiB file, JSON nested
100000 deep, a path longer than PATH_MAX, a closed stdin, a stdout on
`/dev/full`) and names the command line that meets it and the words its
one-line error must contain. Models are copies of bundled fixtures; nothing
here starts TensorFlow: every refusal comes before the runtime is needed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from smsurgery.core.model import parse_saved_model

# What a case needs: (temporary folder, the model base it may use) -> the CLI arguments.
Make = Callable[[Path, Path], list[str]]


@dataclass(frozen=True)
class InputCase:
    name: str
    make: Make
    words: tuple[str, ...]
    stdin: str | None = None  # None: /dev/null; "closed": file descriptor 0 closed; else a path to read from
    stdout: str | None = None  # None: a pipe; else a path to write to (/dev/full)
    model: str = "tf1_lookup"


def _write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


def _fifo(root: Path) -> Path:
    path = root / "pipe"
    os.mkfifo(path)
    return path


def _sparse(root: Path, size: int) -> Path:
    path = root / "huge.json"
    with open(path, "wb") as handle:
        handle.truncate(size)  # a hole: no disk used, but stat says `size` bytes
    return path


def _huge_declared_shape(base: Path) -> None:
    """Declare input x of tf1_linear as [1000000, 1000000, 3]: a sample would need 12 TB."""
    pb = base / "1" / "saved_model.pb"
    model = parse_saved_model(pb)
    shape = model.meta_graphs[0].signature_def["prediction"].inputs["x"].tensor_shape
    del shape.dim[:]
    for size in (1_000_000, 1_000_000, 3):
        shape.dim.add().size = size
    pb.write_bytes(model.SerializeToString(deterministic=True))


def _long_path(root: Path) -> str:
    return str(root / (("x" * 250 + "/") * 20))  # 5000 characters more: past PATH_MAX (4096)


def _image(name: str, options: list[str], words: tuple[str, ...]) -> InputCase:
    """An image-input option case, on the tf1_image fixture (input 'image' [None, 8, 8, 3])."""
    return InputCase(name, lambda r, m: ["image-input", str(m), *options], words, model="tf1_image")


DEEP = "[" * 100_000
RECIPE = '[[steps]]\nop = "rename_signature"\nold = "serving_default"\nnew = "renamed"\n'
EDIT_LIST_FOR_NAME = json.dumps([{"op": "rename_signature", "old": ["serving_default"], "new": "renamed"}])
EDIT_NOT_UTF8 = b'[{"op": "rename_signature", "old": "serving_default", "new": "caf\xe9"}]'

INPUT_CASES: list[InputCase] = [
    # --- files that never end, never start, or are too large (item 2)
    InputCase("value_from_dev_zero", lambda r, m: ["request", str(m), "-i", "words=@/dev/zero"],
              ("/dev/zero", "character device")),
    InputCase("value_from_fifo_without_writer", lambda r, m: ["request", str(m), "-i", f"words=@{_fifo(r)}"],
              ("FIFO", "nobody wrote")),
    InputCase("value_too_large", lambda r, m: ["request", str(m), "-i", f"words=@{_sparse(r, 65 << 20)}"],
              ("huge.json", "65 MiB", "limit is 64 MiB")),
    InputCase("body_from_dev_zero", lambda r, m: ["run", str(m), "--body", "/dev/zero"], ("body", "character device")),
    InputCase("body_from_fifo", lambda r, m: ["run", str(m), "--body", str(_fifo(r))], ("body", "FIFO")),
    InputCase("body_from_folder", lambda r, m: ["run", str(m), "--body", str(r)], ("body", "folder")),
    InputCase("body_stdin_endless", lambda r, m: ["run", str(m), "--body", "-"], ("stdin", "64 MiB"), "/dev/zero"),
    InputCase("body_stdin_closed", lambda r, m: ["run", str(m), "--body", "-"], ("stdin is closed",), "closed"),
    InputCase("edits_from_dev_zero", lambda r, m: ["signature", "apply", str(m), "/dev/zero"],
              ("edits file", "character device")),
    InputCase("edits_stdin_endless", lambda r, m: ["signature", "apply", str(m), "-"], ("stdin", "4 MiB"),
              "/dev/zero"),
    InputCase("edits_stdin_closed", lambda r, m: ["signature", "apply", str(m), "-"], ("stdin is closed",), "closed"),
    InputCase("recipe_from_dev_zero", lambda r, m: ["plan", "/dev/zero", str(m)], ("recipe", "character device")),
    InputCase("recipe_from_fifo", lambda r, m: ["plan", str(_fifo(r)), str(m)], ("recipe", "FIFO")),
    InputCase("bases_list_from_dev_zero", lambda r, m: ["plan", str(_write(r / "r.toml", RECIPE)), "--from",
                                                         "/dev/zero"], ("list of bases", "character device")),
    InputCase("convert_from_dev_zero", lambda r, m: ["convert", "/dev/zero", str(r / "out")],
              ("/dev/zero", "character device")),
    InputCase("convert_from_fifo", lambda r, m: ["convert", str(_fifo(r)), str(r / "out")], ("FIFO",)),
    # --- tracebacks that must be one line (item 6)
    InputCase("edits_nested_deeply", lambda r, m: ["signature", "apply", str(m), str(_write(r / "e.json", DEEP))],
              ("nested too deeply",)),
    InputCase("body_nested_deeply", lambda r, m: ["run", str(m), "--body", str(_write(r / "b.json", DEEP))],
              ("nested too deeply",)),
    InputCase("value_nested_deeply", lambda r, m: ["request", str(m), "-i", f"words=@{_write(r / 'v.json', DEEP)}"],
              ("nested too deeply",)),
    InputCase("edits_not_utf8", lambda r, m: ["signature", "apply", str(m), str(_write(r / "e.json", EDIT_NOT_UTF8))],
              ("not UTF-8",)),
    InputCase("edits_list_for_a_name",
              lambda r, m: ["signature", "apply", str(m), str(_write(r / "e.json", EDIT_LIST_FOR_NAME))],
              ("'old' must be a string", "not a list")),
    InputCase("path_too_long", lambda r, m: ["show", _long_path(r)], ("File name too long", "characters")),
    InputCase("out_path_too_long",
              lambda r, m: ["signature", "rename", str(m), "serving_default", "x", "--no-verify", "--out",
                            _long_path(r)],
              ("too long",)),
    InputCase("stdout_full", lambda r, m: ["show", str(m), "--json"], ("cannot write to stdout", "No space left"),
              stdout="/dev/full"),
    InputCase("huge_declared_shape_request", lambda r, m: (_huge_declared_shape(m), ["request", str(m)])[1],
              ("input 'x'", "1000000", "GiB"), model="tf1_linear"),
    InputCase("huge_declared_shape_warmup", lambda r, m: (_huge_declared_shape(m), ["warmup", str(m)])[1],
              ("input 'x'", "1000000", "GiB"), model="tf1_linear"),
    InputCase("huge_batch", lambda r, m: ["request", str(m), "--batch", "1000000000"], ("--batch 1000000000",)),
    # --- option values that make a model silently wrong (item 8)
    _image("scale_nan", ["--scale", "0,nan"], ("--scale", "finite")),
    _image("scale_inf", ["--scale", "0,inf"], ("--scale", "finite")),
    _image("scale_inverted", ["--scale", "1,0"], ("--scale", "LOW < HIGH")),
    _image("scale_empty_range", ["--scale", "1,1"], ("--scale", "LOW < HIGH")),
    _image("scale_empty", ["--scale", ""], ("--scale", "numbers")),
    _image("std_zero", ["--std", "0"], ("--std", "positive")),
    _image("std_negative", ["--std", "-1"], ("--std", "positive")),
    _image("std_nan", ["--std", "nan"], ("--std", "finite")),
    _image("mean_inf", ["--mean", "inf"], ("--mean", "finite")),
    _image("input_name_empty", ["--input-name", ""], ("--input-name", "empty")),
    _image("as_empty", ["--as", ""], ("--as", "empty")),
    _image("keep_original_as_empty", ["--as", "serving_default", "--keep-original-as", ""],
           ("--keep-original-as", "empty")),
    _image("image_signature_empty", ["--signature", ""], ("signature ''",)),
    InputCase("show_signature_empty", lambda r, m: ["show", str(m), "--signature", ""], ("signature ''",)),
    InputCase("model_name_empty", lambda r, m: ["request", str(m), "--model-name", ""], ("--model-name", "empty")),
]  # fmt: skip
