"""Property-based fuzzing of the readers: only the SmsurgeryError family may come out.

Inputs are real files of the fixture models, mutated (truncation, bit flips,
splices, inserted and deleted runs, huge varints) or replaced by random
bytes. Targets: `parse_saved_model` (binary and text), `read_index` (plain
and Snappy-compressed tables), the views and `scan` over whatever parses,
and `describe` on a model folder with one mutated file. Hostile inputs:
edit lists and REST bodies (wrong types, deep nesting, non-text bytes),
image-input's scale/mean/std texts, and special files (FIFO, socket,
device, links to them, a link to its own folder) anywhere in a version.

CI runs SMSURGERY_FUZZ_EXAMPLES (default 500) examples per target with a
fixed seed; set it higher locally, e.g. SMSURGERY_FUZZ_EXAMPLES=5000.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import stat
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import text_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smsurgery.attach.image_plan import _spec as image_spec
from smsurgery.cli.signature import read_edits
from smsurgery.core import protos
from smsurgery.core.checkpoint_index import _table_entries, read_index, snappy_decompress
from smsurgery.core.errors import CorruptModel, InvalidEdit, SmsurgeryError
from smsurgery.core.integrity import require_intact
from smsurgery.core.layout import ModelRef
from smsurgery.core.model import SavedModelFile, TensorView, parse_saved_model, read
from smsurgery.edits.kinds import EDIT_TYPES, Edit
from smsurgery.graph.run import plan_body
from smsurgery.inspect.describe import describe
from smsurgery.inspect.scan import scan_meta_graph
from tests.conftest import FIXTURE_MODELS

EXAMPLES = int(os.environ.get("SMSURGERY_FUZZ_EXAMPLES", "500"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=bool(os.environ.get("CI")),  # reproducible in CI, new cases on every local run
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SMALL_MODELS = ("tf1_linear", "tf1_lookup", "tf2_module")


def _seed_files(name: str) -> list[bytes]:
    return [(FIXTURE_MODELS / model / "1" / name).read_bytes() for model in SMALL_MODELS]


PB_SEEDS = _seed_files("saved_model.pb")
INDEX_SEEDS = _seed_files("variables/variables.index")


def _pbtxt_seed() -> str:
    return text_format.MessageToString(parse_saved_model(FIXTURE_MODELS / "tf1_linear" / "1" / "saved_model.pb"),
                                       descriptor_pool=protos.pool())  # fmt: skip


@st.composite
def mutated(draw: Callable[..., Any], seeds: list[bytes]) -> bytes:
    """A seed file with 1–4 mutations, or plain random bytes now and then."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=2048))
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        size = len(data)
        at = draw(st.integers(0, size))
        kind = draw(st.sampled_from(("truncate", "flip", "splice", "insert", "delete", "overwrite", "varint")))
        if kind == "truncate":
            data = data[:at]
        elif kind == "flip" and size:
            data[min(at, size - 1)] ^= 1 << draw(st.integers(0, 7))
        elif kind == "splice" and size:
            start = draw(st.integers(0, size - 1))
            data[at:at] = data[start : start + draw(st.integers(1, 64))]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 32))]
        elif kind == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=16))
            data[at : at + len(chunk)] = chunk
        else:  # a length or offset field turned huge
            data[at : at + 5] = draw(st.sampled_from((b"\xff\xff\xff\xff\x0f", b"\x80\x80\x80\x80\x10", b"\x00")))
    return bytes(data)


@st.composite
def mutated_text(draw: Callable[..., Any], seed: str) -> str:
    text = seed
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(("truncate", "insert", "delete", "nest")))
        if kind == "truncate":
            text = text[:at]
        elif kind == "insert":
            text = (
                text[:at]
                + draw(st.sampled_from(("{", "}", '"', ":", "\\", "\x00", "é", "1e999", "-", " [")))
                + text[at:]
            )
        elif kind == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 20)) :]
        else:
            depth = draw(st.integers(1, 400))
            text = text[:at] + "a { " * depth + text[at:]
    return text


def _exercise(saved_model: Any, folder: Path) -> None:
    """What show, diff and scan do with a parsed proto: views, op histogram, scan."""
    model = SavedModelFile(ModelRef(version_dir=folder), saved_model)
    for tags in model.tag_sets:
        meta = model.meta_graph(tags)
        meta.signatures(include_init=True)
        meta.op_histogram()
        _ = meta.kind, meta.default_signature
    for meta_proto in saved_model.meta_graphs:
        scan_meta_graph(meta_proto)


def _only_our_errors(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except SmsurgeryError:
        return None


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@FUZZ
@given(data=mutated(PB_SEEDS))
def test_fuzz_saved_model_pb(scratch: Path, data: bytes) -> None:
    path = scratch / "saved_model.pb"
    path.write_bytes(data)
    parsed = _only_our_errors(lambda: parse_saved_model(path))
    if parsed is not None:
        _only_our_errors(lambda: _exercise(parsed, scratch))


_PBTXT_SEED = _pbtxt_seed()


@FUZZ
@given(text=mutated_text(_PBTXT_SEED))
def test_fuzz_saved_model_pbtxt(scratch: Path, text: str) -> None:
    path = scratch / "saved_model.pbtxt"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    parsed = _only_our_errors(lambda: parse_saved_model(path))
    if parsed is not None:
        _only_our_errors(lambda: _exercise(parsed, scratch))


@FUZZ
@given(data=mutated(INDEX_SEEDS))
def test_fuzz_checkpoint_index(scratch: Path, data: bytes) -> None:
    path = scratch / "variables.index"
    path.write_bytes(data)
    _only_our_errors(lambda: read_index(path))


# --- Snappy: the index reader's decompressor, on tables we compress ourselves --------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def snappy_compress(data: bytes) -> bytes:
    """A small greedy Snappy encoder (literals and 2-byte-offset copies), for test inputs."""
    out, literal_start, pos, last = bytearray(_varint(len(data))), 0, 0, {}

    def literal(chunk: bytes) -> None:
        for i in range(0, len(chunk), 60):
            piece = chunk[i : i + 60]
            out.append((len(piece) - 1) << 2)
            out.extend(piece)

    while pos + 4 <= len(data):
        key = data[pos : pos + 4]
        candidate, last[key] = last.get(key), pos
        if candidate is None or pos - candidate > 0xFFFF:
            pos += 1
            continue
        length = 4
        while pos + length < len(data) and length < 64 and data[candidate + length] == data[pos + length]:
            length += 1
        literal(data[literal_start:pos])
        out.append(((length - 1) << 2) | 2)
        out.extend(struct.pack("<H", pos - candidate))
        pos += length
        literal_start = pos
    literal(data[literal_start:])
    return bytes(out)


def _block(entries: list[tuple[bytes, bytes]]) -> bytes:
    body = b"".join(_varint(0) + _varint(len(k)) + _varint(len(v)) + k + v for k, v in entries)
    return body + struct.pack("<II", 0, 1)  # one restart point at 0


def snappy_table(index: bytes) -> bytes:
    """Rewrite a variables.index as one Snappy-compressed data block (as TensorFlow may write it)."""
    entries = _table_entries(index)
    data = snappy_compress(_block(entries))
    out = bytearray(data + b"\x01" + b"\0\0\0\0")
    index_block = _block([(entries[-1][0], _varint(0) + _varint(len(data)))])
    index_offset = len(out)
    out += index_block + b"\x00" + b"\0\0\0\0"
    meta_offset = len(out)
    out += _block([]) + b"\x00" + b"\0\0\0\0"
    handles = _varint(meta_offset) + _varint(8) + _varint(index_offset) + _varint(len(index_block))
    out += handles.ljust(40, b"\0") + struct.pack("<Q", 0xDB4775248B80FB57)
    return bytes(out)


SNAPPY_SEEDS = [snappy_table(seed) for seed in INDEX_SEEDS]


def test_snappy_tables_read_like_the_originals(tmp_path: Path) -> None:
    """The encoder above is right, so fuzzing its output reaches the decoder's inner paths."""
    for original, compressed in zip(INDEX_SEEDS, SNAPPY_SEEDS, strict=True):
        assert snappy_decompress(snappy_compress(original * 3)) == original * 3
        (tmp_path / "a.index").write_bytes(original)
        (tmp_path / "b.index").write_bytes(compressed)
        assert read_index(tmp_path / "b.index") == read_index(tmp_path / "a.index")


@FUZZ
@given(data=mutated(SNAPPY_SEEDS))
def test_fuzz_snappy_checkpoint_index(scratch: Path, data: bytes) -> None:
    path = scratch / "snappy.index"
    path.write_bytes(data)
    _only_our_errors(lambda: read_index(path))


# --- describe on a model folder with one mutated file ------------------------------------------


@pytest.fixture(scope="module")
def fuzz_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("fuzz-model") / "model"
    shutil.copytree(FIXTURE_MODELS / "tf1_lookup", base)
    return base


FOLDER_FILES = ("saved_model.pb", "variables/variables.index", "variables/variables.data-00000-of-00001")


@FUZZ
@given(which=st.sampled_from(FOLDER_FILES), data=st.data())
def test_fuzz_describe_model_folder(fuzz_model: Path, which: str, data: st.DataObject) -> None:
    path = fuzz_model / "1" / which
    original = path.read_bytes()
    path.write_bytes(data.draw(mutated([original])))
    try:
        _only_our_errors(lambda: describe(fuzz_model, ops=True))
    finally:
        path.write_bytes(original)


def test_deeply_nested_pbtxt_is_a_clear_error(tmp_path: Path) -> None:
    """Found by this fuzzing: text_format recursed into a RecursionError (fixed in model.py)."""
    nested = 'func { name: "f" attr { key: "a" value { ' * 300 + 's: "z"' + " } } }" * 300
    path = tmp_path / "saved_model.pbtxt"
    path.write_text(f'meta_graphs {{ graph_def {{ node {{ name: "n" attr {{ key: "a" value {{ {nested} }} }} }} }} }}')
    with pytest.raises(CorruptModel, match="nested too deeply"):
        parse_saved_model(path)


# --- hostile inputs (issue 11): edit lists, REST bodies, option values, special files -----------------

JSON_LEAVES = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
JSON_VALUES = st.recursive(
    JSON_LEAVES, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
)
EDIT_FIELDS = ("op", "old", "new", "key", "signature", "alias", "tensor", "inputs", "outputs", "side", "keep")


@st.composite
def hostile_json(draw: Callable[..., Any]) -> bytes:
    """An edit list or a body: JSON with wrong types in the right places, deep nesting, or bytes that are not text."""
    kind = draw(st.sampled_from(("edits", "deep", "bytes", "any")))
    if kind == "deep":
        depth = draw(st.integers(500, 200_000))
        return (draw(st.sampled_from(("[", '{"a":', "[{"))) * depth).encode()
    if kind == "bytes":
        return draw(st.binary(max_size=256))
    if kind == "any":
        return json.dumps(draw(JSON_VALUES)).encode()
    ops = st.sampled_from(sorted(EDIT_TYPES)) | JSON_LEAVES
    edit = st.dictionaries(st.sampled_from(EDIT_FIELDS), JSON_VALUES, max_size=5) | st.fixed_dictionaries(
        {"op": ops}, optional={f: JSON_VALUES | st.text(max_size=8) for f in EDIT_FIELDS[1:]}
    )
    return json.dumps(draw(st.lists(edit, max_size=3))).encode()


@FUZZ
@given(data=hostile_json())
def test_fuzz_edit_lists(scratch: Path, data: bytes) -> None:
    """read_edits on anything: a list of Edit values, or InvalidEdit; never a TypeError from deep inside."""
    path = scratch / "edits.json"
    path.write_bytes(data)
    try:
        edits = read_edits(str(path))
    except InvalidEdit:
        return
    assert all(isinstance(e, Edit) for e in edits)


@FUZZ
@given(data=hostile_json())
def test_fuzz_rest_bodies(data: bytes) -> None:
    """A REST body as `run --body` plans it (before TensorFlow): only our errors."""
    meta = read(FIXTURE_MODELS / "tf1_lookup").meta_graph()
    _only_our_errors(lambda: plan_body(meta, data))


FLOAT_TEXT = st.floats(allow_nan=True, allow_infinity=True).map(repr) | st.sampled_from(
    ("nan", "inf", "-inf", "1e309", "", " ", "-0", "0", "1,1", "1,0", "0,nan", "a")
)


@FUZZ
@given(scale=st.none() | st.lists(FLOAT_TEXT, max_size=3).map(",".join), std=st.none() | FLOAT_TEXT,
       mean=st.none() | FLOAT_TEXT)  # fmt: skip
def test_fuzz_image_scale_mean_std(scale: str | None, std: str | None, mean: str | None) -> None:
    """Every accepted decoding is finite, with LOW < HIGH and a positive std; the rest is InvalidEdit."""
    tensor = TensorView("image", "DT_FLOAT", (-1, 8, 8, 3), "image:0")
    try:
        spec = image_spec(tensor, 3, (8, 8), {"scale": scale, "std": std, "mean": mean})
    except InvalidEdit:
        return
    values = [*spec.scale, *(spec.mean or ()), *(spec.std or ())]
    assert all(math.isfinite(v) for v in values), spec
    assert spec.scale[0] < spec.scale[1], spec
    assert spec.std is None or min(spec.std) > 0, spec


SPECIAL_KINDS = ("fifo", "socket", "device", "link_to_fifo", "link_to_device", "link_to_own_folder")
PLACES = ("", "variables", "assets", "assets/deeper", "assets.extra")


def _make_special(path: Path, kind: str, version: Path) -> None:
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device" or kind == "link_to_device":
        target = path if kind == "device" else version / "variables" / "dev0"
        os.mknod(target, stat.S_IFCHR | 0o600, os.makedev(1, 5))
        if kind == "link_to_device":
            os.symlink(os.path.relpath(target, path.parent), path)
    elif kind == "link_to_fifo":
        os.mkfifo(version / "variables" / "fifo0")
        os.symlink(os.path.relpath(version / "variables" / "fifo0", path.parent), path)
    elif kind == "link_to_own_folder":
        os.symlink(".", path)
    else:
        here = os.getcwd()
        os.chdir(path.parent)
        try:
            with socket.socket(socket.AF_UNIX) as listener:
                listener.bind(path.name)
        finally:
            os.chdir(here)


@FUZZ
@given(kind=st.sampled_from(SPECIAL_KINDS), place=st.sampled_from(PLACES), name=st.sampled_from(("x", "vocab2.txt")))
def test_fuzz_special_files_anywhere_in_a_version(
    tmp_path_factory: pytest.TempPathFactory, kind: str, place: str, name: str
) -> None:
    """A special file (or a link to one) at any place in a version is an error that names it."""
    if "device" in kind and os.geteuid() != 0:
        pytest.skip("making a device node needs root")
    base = tmp_path_factory.mktemp("special") / "m"
    shutil.copytree(FIXTURE_MODELS / "tf1_lookup", base)
    version = base / "1"
    (version / place).mkdir(parents=True, exist_ok=True)
    _make_special(version / place / name, kind, version)
    relative = (Path(place) / name).as_posix()
    # A link's target is a special file too: either may be the one named first.
    named = {relative, "variables/fifo0", "variables/dev0"} if kind.startswith("link_to_") else {relative}
    with pytest.raises(CorruptModel) as error:
        require_intact(read(base))
    assert any(f"{path}: is" in str(error.value) for path in named), (relative, str(error.value))
    shutil.rmtree(base.parent)
