"""Break a good SavedModel in every way the issue lists, one copy per case.

Nothing binary is committed: each case starts from a copy of the bundled
`tf1_lookup` fixture (variables, an asset that a table initializer reads)
and damages it in a temporary folder. `outside` is a folder beside the model
holding a sentinel file that hostile links point at: a test checks it is
never read into, nor written next to, by smsurgery. Special files (a
`/dev/zero`-like device, a FIFO, a socket) are made for real with
`os.mknod`, `os.mkfifo` and a bound Unix socket.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import text_format

from smsurgery.core import protos
from smsurgery.core.model import parse_saved_model

SOURCE_MODEL = "tf1_lookup"
SHARD = "variables/variables.data-00000-of-00001"
INDEX = "variables/variables.index"
SENTINEL = "secret.txt"


@dataclass(frozen=True)
class Case:
    """A way to break a version folder, and the words its error must contain."""

    name: str
    breaks: Callable[[Path, Path], None]  # (version folder, outside folder)
    words: tuple[str, ...]
    parses: bool = True  # False: saved_model.pb itself is broken, so read() already refuses


def _truncate(path: Path, keep: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _rewrite_assets(version: Path, filename: str) -> None:
    """Point every AssetFileDef of the model at `filename`."""
    model = parse_saved_model(version / "saved_model.pb")
    asset_class = protos.message_class("tensorflow/core/protobuf/meta_graph.proto", "tensorflow.AssetFileDef")
    for meta in model.meta_graphs:
        for packed in meta.collection_def["saved_model_assets"].any_list.value:
            asset = asset_class.FromString(packed.value)
            asset.filename = filename
            packed.value = asset.SerializeToString()
    (version / "saved_model.pb").write_bytes(model.SerializeToString(deterministic=True))


def _pb_random(version: Path, _outside: Path) -> None:
    (version / "saved_model.pb").write_bytes(random.Random(8).randbytes(4096))


def _pbtxt_syntax(version: Path, _outside: Path) -> None:
    model = parse_saved_model(version / "saved_model.pb")
    text = text_format.MessageToString(model, descriptor_pool=protos.pool())
    (version / "saved_model.pb").unlink()
    (version / "saved_model.pbtxt").write_text(text[: len(text) // 2] + "\n  }} meta_graphs {{ oops: \n")


def _index_of_other_model(version: Path, _outside: Path) -> None:
    fixtures = Path(__file__).resolve().parents[2] / "fixtures" / "models"
    shutil.copyfile(fixtures / "tf1_image" / "1" / INDEX, version / INDEX)


def _symlink_loop(version: Path, _outside: Path) -> None:
    os.symlink("loop_b", version / "assets" / "loop_a")
    os.symlink("loop_a", version / "assets" / "loop_b")


def _symlink_escape_file(version: Path, outside: Path) -> None:
    (version / "assets" / "vocab.txt").unlink()
    os.symlink(outside / SENTINEL, version / "assets" / "vocab.txt")


def _symlink_escape_folder(version: Path, outside: Path) -> None:
    shutil.rmtree(version / "assets")
    os.symlink(outside, version / "assets")


def _pb_symlink_loop(version: Path, _outside: Path) -> None:
    (version / "saved_model.pb").unlink()
    os.symlink("saved_model.pb", version / "saved_model.pb")


def _device_in_variables(version: Path, _outside: Path) -> None:
    """A /dev/zero-like character device: a copy of it never ends (4 GB went into staging)."""
    os.mknod(version / "variables" / "zero", stat.S_IFCHR | 0o644, os.makedev(1, 5))


def _fifo_in_assets(version: Path, _outside: Path) -> None:
    """A FIFO nobody writes to: opening it for a copy or a read blocks forever."""
    os.mkfifo(version / "assets" / "pipe")


def _socket_in_assets_extra(version: Path, _outside: Path) -> None:
    (version / "assets.extra").mkdir()
    here = os.getcwd()
    os.chdir(version / "assets.extra")  # a relative name: a socket path is limited to ~107 bytes
    try:
        with socket.socket(socket.AF_UNIX) as listener:
            listener.bind("control.sock")
    finally:
        os.chdir(here)


def _symlink_to_fifo_inside(version: Path, _outside: Path) -> None:
    """A symlink that stays inside the version, to a FIFO that also does: the target's type counts."""
    os.mkfifo(version / "variables" / "pipe")
    (version / "assets" / "vocab.txt").unlink()
    os.symlink("../variables/pipe", version / "assets" / "vocab.txt")


def _symlink_to_own_folder(version: Path, _outside: Path) -> None:
    """assets/again -> .. stays inside the version, but copying it would never end."""
    os.symlink("..", version / "assets" / "again")


def _device_as_shard(version: Path, _outside: Path) -> None:
    (version / SHARD).unlink()
    os.mknod(version / SHARD, stat.S_IFCHR | 0o644, os.makedev(1, 5))


# Special files in a version folder (issue 11, item 2); os.mknod of a device needs root.
SPECIAL_FILE_CASES = {"device_in_variables", "device_as_shard", "fifo_in_assets", "socket_in_assets_extra",
                      "symlink_to_fifo_inside", "symlink_to_own_folder"}  # fmt: skip
NEEDS_ROOT = {"device_in_variables", "device_as_shard"}

CASES: list[Case] = [
    Case("pb_truncated", lambda v, _o: _truncate(v / "saved_model.pb", 0.5), ("not a valid SavedModel",), False),
    Case("pb_random", _pb_random, ("not a valid SavedModel",), False),
    Case("pb_empty", lambda v, _o: (v / "saved_model.pb").write_bytes(b""), ("no meta graph",), False),
    Case("pbtxt_syntax", _pbtxt_syntax, ("saved_model.pbtxt", "not a valid text SavedModel"), False),
    Case("pb_symlink_loop", _pb_symlink_loop, ("saved_model.pb", "symlink"), False),
    Case("shard_missing", lambda v, _o: (v / SHARD).unlink(), ("variables.data-00000-of-00001", "missing")),
    Case("shard_truncated", lambda v, _o: _truncate(v / SHARD, 0.5), ("variables.data-00000-of-00001", "truncated")),
    Case("shard_empty", lambda v, _o: (v / SHARD).write_bytes(b""), ("variables.data-00000-of-00001", "0 bytes")),
    Case("index_truncated", lambda v, _o: _truncate(v / INDEX, 0.6), ("variables.index", "does not parse")),
    Case("index_random", lambda v, _o: (v / INDEX).write_bytes(random.Random(9).randbytes(300)),
         ("variables.index", "does not parse")),
    Case("index_missing", lambda v, _o: (v / INDEX).unlink(), ("variables.index", "missing")),
    Case("index_of_other_data", _index_of_other_model, ("variables.data-00000-of-00001", "index of other data")),
    Case("asset_absent", lambda v, _o: (v / "assets" / "vocab.txt").unlink(), ("assets/vocab.txt", "missing")),
    Case("asset_dotdot", lambda v, _o: _rewrite_assets(v, "../../" + SENTINEL), ("asset filename", "'..'")),
    Case("asset_absolute", lambda v, o: _rewrite_assets(v, str(o / SENTINEL)), ("asset filename", "absolute")),
    Case("symlink_loop", _symlink_loop, ("assets/loop_a", "symlink loop")),
    Case("symlink_escape_file", _symlink_escape_file, ("assets/vocab.txt", "leaves the version folder")),
    Case("symlink_escape_folder", _symlink_escape_folder, ("assets", "leaves the version folder")),
    Case("device_in_variables", _device_in_variables, ("variables/zero", "character device")),
    Case("device_as_shard", _device_as_shard, ("variables.data-00000-of-00001", "character device")),
    Case("fifo_in_assets", _fifo_in_assets, ("assets/pipe", "FIFO")),
    Case("socket_in_assets_extra", _socket_in_assets_extra, ("assets.extra/control.sock", "socket")),
    Case("symlink_to_fifo_inside", _symlink_to_fifo_inside, ("assets/vocab.txt", "symlink to a FIFO")),
    Case("symlink_to_own_folder", _symlink_to_own_folder, ("assets/again", "folder that contains it")),
]  # fmt: skip


def make_case(case: Case, root: Path) -> tuple[Path, Path, Path]:
    """Build `root/outside/` and `root/models/<case>/1` broken by `case`: (base, version, outside)."""
    fixtures = Path(__file__).resolve().parents[2] / "fixtures" / "models"
    outside = root / "outside"
    outside.mkdir(parents=True, exist_ok=True)
    (outside / SENTINEL).write_text("must never be read or copied\n")
    base = root / "models" / case.name
    shutil.copytree(fixtures / SOURCE_MODEL, base)
    version = base / "1"
    case.breaks(version, outside)
    return base, version, outside
