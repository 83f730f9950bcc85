"""Recipes: one reviewed change, planned and applied across model bases of mixed kinds."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest

from smsurgery import read
from smsurgery.core.errors import InvalidEdit, InvalidOption
from smsurgery.publishing.target import PublishTarget
from smsurgery.recipes import load, parse
from smsurgery.recipes.plan import expand_bases, select_shard
from tests.conftest import FIXTURE_MODELS, REPO, SCHEMAS, assert_one_line_error, run_cli, tree_digest

# Keras exports have `serve`; tf2_module has `double`; tf1_linear has neither: a fleet of mixed kinds.
RECIPE = """\
[require]
verdict = "breaking"

[[steps]]
op = "rename_signature"
old = "serve"
new = "serve_raw"
[steps.match]
signature = "serve"

[[steps]]
op = "rename_alias"
signature = "serve_raw"
old = "output_0"
new = "probs"
[steps.match]
alias = "serve_raw/output_0"

[[steps]]
op = "rename_signature"
old = "double"
new = "times_six"
[steps.match]
signature = "double"
"""
FLEET = {"k1": "keras_mlp", "k2": "keras_image", "m": "tf2_module", "lin": "tf1_linear", "lookup": "tf1_lookup"}


@pytest.fixture
def fleet(tmp_path: Path) -> tuple[Path, list[str]]:
    for name, fixture in FLEET.items():
        shutil.copytree(FIXTURE_MODELS / fixture, tmp_path / "models" / name)
    (tmp_path / "recipe.toml").write_text(RECIPE)
    return tmp_path, [str(tmp_path / "models" / name) for name in FLEET]


# --- the file ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (
            '[[steps]]\nop = "rename_signature"\nold = "a"\nnew = "b"\n\n[[steps]]\nop = "renam"\n',
            ["r.toml:7: step 2 has unknown kind 'renam'; known kinds:", "rename_signature", "strip_devices"],
        ),
        (
            '[[steps]]\nop = "rename_signature"\nold = "a"\nnwe = "b"\n',
            ["r.toml:4: step 1 (rename_signature) has no field 'nwe'; its fields are: old, new"],
        ),
        ('[[steps]]\nop = "rename_signature"\nold = "a"\n', ["r.toml:1: step 1 (rename_signature) is missing 'new'"]),
        ('[[steps]]\nop = "rename_signature"\nold = 3\nnew = "b"\n', ["r.toml:3:", "'old' must be a string"]),
        (
            '[[steps]]\nop = "remove_signature"\nkey = "a"\n[steps.match]\nsignatur = "a"\n',
            ["r.toml:5:", "unknown match rule 'signatur'; known rules: signature, no_signature", "input_shape"],
        ),
        (
            '[[steps]]\nop = "remove_signature"\nkey = "a"\n[steps.match]\nkind = "tf1"\ninput_shape = "?,2x"\n',
            ["r.toml:6:", "'2x' is not a size"],
        ),
        ('[[steps]]\nop = "remove_signature"\nkey = "a"\n[steps.match]\ninput_dtype = "floaty"\n', ["DT_FLOAT"]),
        ('[[steps]]\nop = "remove_signature"\nkey = "a"\nmatch = "x"\n', ["r.toml:4:", "must be a table"]),
        ('{"steps": [\n {"op": "rename_signature",\n  "old": "a",\n  "nwe": "b"}]}', ["r.toml:4:", "'nwe'"]),
        (
            '[require]\nverdict = "fine"\n[[steps]]\nop = "remove_signature"\nkey = "a"\n',
            ["require.verdict", "breaking"],
        ),
        ("[[steps]\n", ["not valid TOML"]),
        ("title = 'x'\n", ["unknown key", "title"]),
        ("[require]\n", ["no [[steps]]"]),
    ],
)  # fmt: skip
def test_recipe_errors_name_the_line_and_what_is_known(text: str, words: list[str]) -> None:
    with pytest.raises(InvalidEdit) as caught:
        parse(text, source="r.toml")
    for word in words:
        assert word in str(caught.value)


def test_json_recipe_has_the_same_structure() -> None:
    recipe = parse(
        json.dumps({"steps": [{"op": "rename_signature", "old": "a", "new": "b", "match": {"signature": "a"}}]})
    )
    assert recipe.steps[0].edit.op == "rename_signature" and recipe.steps[0].match == {"signature": "a"}


def test_recipe_schema_file_accepts_the_documented_recipe() -> None:
    import tomllib

    schema = json.loads((SCHEMAS / "recipe.json").read_text())
    jsonschema.validate(tomllib.loads(RECIPE), schema)
    jsonschema.validate(tomllib.loads(ATTACH_RECIPE), schema)
    devices = '[[steps]]\nop = "set_devices"\ndevice = "/cpu:0"\nmatch = "*GPU*"\n[steps.when]\nkind = "tf1"\n'
    jsonschema.validate(tomllib.loads(devices), schema)
    for bad in ('[[steps]]\nop = "rename_signature"\nold = "a"\nnwe = "b"\n', '[[steps]]\nop = "renam"\n'):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(tomllib.loads(bad), schema)


def test_recipe_schema_has_every_kind_with_exactly_its_fields() -> None:
    from smsurgery.recipes.recipe_file import KINDS, kind_fields

    items = json.loads((SCHEMAS / "recipe.json").read_text())["properties"]["steps"]["items"]
    branches = {b["if"]["properties"]["op"]["const"]: b["then"] for b in items["allOf"]}
    assert sorted(branches) == sorted(KINDS) == items["properties"]["op"]["enum"]
    for op, then in branches.items():
        every, required = kind_fields(op)
        assert set(then["properties"]) == {"op", "match", "when", *every}, op
        assert then["required"] == ["op", *required], op


def test_shards_are_disjoint_complete_and_stable(tmp_path: Path) -> None:
    bases = [str(tmp_path / f"m{i}") for i in range(50)]
    shards = [select_shard(bases, f"{i}/4") for i in range(4)]
    assert sorted(base for shard in shards for base in shard) == sorted(bases)
    assert sum(len(s) for s in shards) == len(bases) and all(shards)
    assert select_shard([*bases, str(tmp_path / "new")], "2/4")[: len(shards[2])] == shards[2]  # others stay put
    for bad in ("4/4", "-1/2", "1", "a/b", "0/0"):
        with pytest.raises(InvalidOption):
            select_shard(bases, bad)


def test_bases_from_globs_and_a_file(fleet: tuple[Path, list[str]]) -> None:
    root, bases = fleet
    (root / "list.txt").write_text("# fleet\n" + "\n".join(bases[:2]) + "\n")
    assert expand_bases([str(root / "models" / "k*")]) == sorted(bases[:2])
    assert expand_bases([bases[0]], root / "list.txt") == bases[:2]


# --- plan --------------------------------------------------------------------------------------


def test_plan_writes_nothing_and_says_what_each_model_gets(fleet: tuple[Path, list[str]]) -> None:
    root, bases = fleet
    before = tree_digest(root / "models")
    result = run_cli("plan", root / "recipe.toml", *bases, "--json")
    assert result.code == 1, result.stderr
    report = json.loads(result.stdout)
    status = {Path(m["base"]).name: m["status"] for m in report["models"]}
    assert status == {"k1": "changes", "k2": "changes", "m": "changes", "lin": "unchanged", "lookup": "unchanged"}
    k1 = next(m for m in report["models"] if m["base"].endswith("k1"))
    assert [s["status"] for s in k1["steps"]] == ["applied", "applied", "skipped"] and k1["verdict"] == "breaking"
    assert tree_digest(root / "models") == before
    markdown = run_cli("plan", root / "recipe.toml", *bases, "--format", "markdown")
    assert markdown.code == 1 and "| model | version | status |" in markdown.stdout and "`" in markdown.stdout


def test_require_holds_back_a_breaking_change(fleet: tuple[Path, list[str]]) -> None:
    root, bases = fleet
    strict = root / "strict.toml"
    strict.write_text(RECIPE.replace('verdict = "breaking"', 'verdict = "compatible"'))
    planned = run_cli("plan", strict, *bases, "--json")
    assert planned.code == 3 and json.loads(planned.stdout)["summary"]["blocked"] == 3
    applied = run_cli("apply", strict, *bases, "--no-verify", "--json")
    assert applied.code == 3 and json.loads(applied.stdout)["summary"]["published"] == 0
    assert all(sorted(p.name for p in Path(b).iterdir()) == ["1"] for b in bases)


def test_bad_bases_and_options_are_one_line(fleet: tuple[Path, list[str]]) -> None:
    root, bases = fleet
    assert_one_line_error(run_cli("plan", root / "recipe.toml", root / "nope*"), "no model base matches")
    assert_one_line_error(run_cli("apply", root / "recipe.toml", *bases, "--shard", "9/2"), "--shard")
    assert_one_line_error(run_cli("apply", root / "recipe.toml", *bases, "--version", "7"), "--version")
    assert_one_line_error(run_cli("plan", root / "missing.toml", *bases), "no recipe file")
    not_a_model = root / "models" / "empty"
    not_a_model.mkdir()
    planned = run_cli("plan", root / "recipe.toml", *bases, not_a_model, "--json")
    assert planned.code == 2
    assert json.loads(planned.stdout)["summary"]["error"] == 1  # the others still planned


# --- apply -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_apply_publishes_what_plan_said_then_is_a_no_op(fleet: tuple[Path, list[str]]) -> None:
    root, bases = fleet
    recipe = load(root / "recipe.toml")
    planned = {m.base: m for m in recipe.plan(bases).models}
    report = recipe.apply(bases, jobs=2)
    assert report.exit_status == 0, [m.reason for m in report.models]
    for outcome in report.models:
        plan = planned[outcome.base]
        assert outcome.status == ("published" if plan.status == "changes" else "unchanged")
        if outcome.status == "published":
            applied = [d for s in plan.steps if s.status == "applied" for d in s.details]
            assert outcome.changes == applied and outcome.version == 2
    assert set(read(root / "models" / "k2").meta_graph().signature_keys()) == {"serve_raw", "serving_default"}
    assert read(root / "models" / "k2").meta_graph().signature("serve_raw").outputs[0].alias == "probs"
    assert "times_six" in read(root / "models" / "m").meta_graph().signature_keys()
    again = recipe.apply(bases, jobs=2)
    assert again.exit_status == 0 and again.count("unchanged") == len(bases)
    assert recipe.plan(bases).exit_status == 0  # nothing left to do
    assert all(sorted(p.name for p in Path(b).iterdir()) in (["1"], ["1", "2"]) for b in bases)


def test_keep_going_processes_the_others(fleet: tuple[Path, list[str]]) -> None:
    root, bases = fleet
    bad = root / "bad.toml"
    bad.write_text('[[steps]]\nop = "remove_signature"\nkey = "serving_default"\n')  # lin has no serving_default
    order = [bases[3], bases[0]]  # tf1_linear first: refused
    stopped = json.loads(run_cli("apply", bad, *order, "--no-verify", "--json").stdout)
    assert [m["status"] for m in stopped["models"]] == ["refused", "not run"]
    going = run_cli("apply", bad, *order, "--no-verify", "--keep-going", "--json")
    assert going.code == 2 and [m["status"] for m in json.loads(going.stdout)["models"]] == ["refused", "published"]


def test_killed_apply_then_rerun_ends_where_one_run_ends(fleet: tuple[Path, list[str]], tmp_path: Path) -> None:
    root, bases = fleet
    clean = tmp_path / "clean"
    shutil.copytree(root / "models", clean)
    clean_bases = [str(clean / Path(b).name) for b in bases]
    assert run_cli("apply", root / "recipe.toml", *clean_bases, "--no-verify").code == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "smsurgery", "apply", str(root / "recipe.toml"), *bases, "--no-verify"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ},
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not (Path(bases[0]) / "2").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert run_cli("apply", root / "recipe.toml", *bases, "--no-verify").code == 0
    for mine, reference in zip(bases, clean_bases, strict=True):
        versions = sorted(p.name for p in Path(mine).iterdir())
        assert versions == sorted(p.name for p in Path(reference).iterdir())
        newest = versions[-1]
        assert (
            read(f"{mine}@{newest}").meta_graph().signature_keys()
            == read(f"{reference}@{newest}").meta_graph().signature_keys()
        )


def test_require_check_reads_what_check_finds_in_the_result(fleet: tuple[Path, list[str]]) -> None:
    root, bases = fleet
    steps = (
        '[[steps]]\nop = "remove_signature"\nkey = "serving_default"\n[steps.match]\nsignature = "serving_default"\n'
    )
    for level, status in (("clean", "blocked"), ("no-errors", "changes"), ("no-new-errors", "changes")):
        recipe = root / f"{level}.toml"
        recipe.write_text(f'[require]\ncheck = "{level}"\n{steps}')
        planned = json.loads(run_cli("plan", recipe, bases[0], "--json").stdout)
        (model,) = planned["models"]
        assert model["status"] == status, (level, model)
        assert "SM-SIG-NO-DEFAULT" in {f["code"] for f in model["findings"]}


# --- match rules -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "fits"),
    [
        ({"input_shape": "?,64,64,3"}, {"keras_image"}),
        ({"input_shape": "-1,*,*,3"}, {"keras_image"}),
        ({"input_shape": "*,3"}, {"tf2_module", "tf1_linear"}),
        ({"input_shape": "...,3"}, {"keras_image", "tf2_module", "tf1_linear"}),
        ({"input_shape": "[None]"}, {"tf2_module", "tf1_lookup"}),
        ({"input_shape": "..."}, set(FLEET.values())),
        ({"input_dtype": "string"}, {"tf1_lookup"}),
        ({"input_dtype": "DT_FLOAT", "kind": "tf1"}, {"tf1_linear"}),
        ({"alias": "serve/features"}, {"keras_mlp"}),
        ({"alias": "words"}, {"tf1_lookup"}),
        ({"tags": "serve"}, set(FLEET.values())),
        ({"tags": "serve,gpu"}, set()),
        ({"no_signature": "serve", "signature": "serving_default"}, {"tf2_module", "tf1_lookup"}),
    ],
)  # fmt: skip
def test_match_rules_pick_models_by_shape_dtype_alias_and_tags(rules: dict[str, str], fits: set[str]) -> None:
    from smsurgery.recipes.matching import mismatch

    text = "".join(f'{k} = "{v}"\n' for k, v in rules.items())
    rules = dict(parse(f'[[steps]]\nop = "strip_devices"\n[steps.match]\n{text}').steps[0].match)
    assert {f for f in FLEET.values() if mismatch(rules, read(FIXTURE_MODELS / f).meta_graph()) is None} == fits


def test_set_devices_match_field_and_the_step_rules_do_not_collide(fleet: tuple[Path, list[str]]) -> None:
    _, bases = fleet
    both = parse(
        '[[steps]]\nop = "set_devices"\ndevice = "/device:CPU:0"\nmatch = "*GPU*"\n[steps.when]\nkind = "tf1"\n'
    ).steps[0]
    assert (both.edit.match, dict(both.match)) == ("*GPU*", {"kind": "tf1"})
    rules_only = parse('[[steps]]\nop = "set_devices"\ndevice = "/device:CPU:0"\n[steps.match]\nkind = "tf1"\n')
    assert (rules_only.steps[0].edit.match, dict(rules_only.steps[0].match)) == (None, {"kind": "tf1"})
    with pytest.raises(InvalidEdit, match="not both"):
        parse('{"steps": [{"op": "set_devices", "device": "/cpu", "match": {"kind": "tf1"}, "when": {"kind": "tf1"}}]}')
    planned = rules_only.plan([bases[0], bases[3]])  # keras_mlp (tf2): skipped; tf1_linear: every node placed
    steps = {Path(m.base).name: m.steps[0] for m in planned.models}
    assert steps["k1"].status == "skipped" and steps["k1"].details == ["a tf2 export"]
    assert steps["lin"].status == "applied"
    glob_only = parse('[[steps]]\nop = "set_devices"\ndevice = "/device:CPU:0"\nmatch = "*GPU*"\n').plan([bases[3]])
    assert "matches '*GPU*'" in (glob_only.models[0].reason or "")  # the glob reached the edit: no GPU pin there


def test_plan_warns_once_per_step_that_matches_no_model(fleet: tuple[Path, list[str]]) -> None:
    root, bases = fleet
    text = RECIPE + '\n[[steps]]\nop = "remove_signature"\nkey = "nope"\n[steps.match]\nsignature = "nope"\n'
    report = parse(text, source="r.toml").plan(bases)
    assert report.warnings == ["step 4 (line 26) (remove_signature) matches no model"]
    assert report.exit_status == 1  # a warning, not an error
    (root / "warn.toml").write_text(text)
    shown = run_cli("plan", root / "warn.toml", *bases)
    assert shown.code == 1 and "step 4 (line 26) (remove_signature) matches no model" in shown.stderr


def test_cli_shards_apply_disjoint_and_complete_shares(fleet: tuple[Path, list[str]]) -> None:
    root, bases = fleet
    touched: list[str] = []
    for index in range(3):
        report = json.loads(
            run_cli("apply", root / "recipe.toml", *bases, "--shard", f"{index}/3", "--no-verify", "--json").stdout
        )
        touched += [m["base"] for m in report["models"]]
    assert sorted(touched) == sorted(bases)  # every base in exactly one shard
    after = run_cli("plan", root / "recipe.toml", *bases, "--json")
    assert after.code == 0 and json.loads(after.stdout)["summary"]["unchanged"] == len(bases)


# --- attachment steps --------------------------------------------------------------------------

ATTACH_RECIPE = """\
[[steps]]
op = "rename_alias"
signature = "serving_default"
old = "output_0"
new = "probs"
[steps.match]
alias = "serving_default/output_0"

[[steps]]
op = "image_input"
[steps.match]
input_shape = "?,*,*,3"

[[steps]]
op = "warmup"
"""


def test_attachments_must_come_after_the_in_memory_edits() -> None:
    with pytest.raises(InvalidEdit) as caught:
        parse('[[steps]]\nop = "warmup"\n\n[[steps]]\nop = "strip_devices"\n', source="r.toml")
    assert "r.toml:4: step 2 (strip_devices) is an edit in memory after step 1 (warmup)" in str(caught.value)
    with pytest.raises(InvalidEdit, match="its fields are: labels_file, signature"):
        parse('[[steps]]\nop = "labels"\nfile = "x"\n')


def test_attachment_default_keys_are_those_of_the_commands() -> None:
    from smsurgery.attach import example_plan, image_plan, labels_plan
    from smsurgery.recipes import attachments

    assert attachments.IMAGE_KEY == image_plan.DEFAULT_IMAGE_KEY and attachments.WARMUP == image_plan.WARMUP
    assert attachments.LABELS_KEY == labels_plan.DEFAULT_KEY and attachments.EXAMPLE_KEYS == example_plan.DEFAULT_KEYS


def test_attachment_plans_say_what_they_add_without_tensorflow(fleet: tuple[Path, list[str]]) -> None:
    root, bases = fleet
    (root / "labels.txt").write_text("cat\ndog\nbird\n")
    recipe = parse(
        f'[[steps]]\nop = "labels"\nlabels_file = "{root / "labels.txt"}"\n[steps.match]\nsignature = "serve"\n\n'
        '[[steps]]\nop = "example_input"\nsignature = "prediction"\nmethod = "regress"\n'
        '[steps.match]\nsignature = "prediction"\n'
    )
    planned = {Path(m.base).name: m for m in recipe.plan([bases[1], bases[3]]).models}  # keras_image, tf1_linear
    image, linear = planned["k2"], planned["lin"]
    assert (image.status, image.verdict, [s.status for s in image.steps]) == (
        "changes",
        "compatible",
        ["applied", "skipped"],
    )
    assert (
        "signature 'labels' gives the top" in image.steps[0].details[0] and "of 3 classes" in image.steps[0].details[0]
    )
    assert (linear.status, [s.status for s in linear.steps]) == ("changes", ["skipped", "applied"])
    assert linear.steps[1].details == ["signature 'regress' (regress) parses tf.Examples (features x) for 'prediction'"]
    rerun = (
        parse('[[steps]]\nop = "image_input"\nsignature = "prediction"\n').plan([bases[3]]).models[0]
    )  # tf1_linear has no image input
    assert rerun.status == "error" and "no image-like input" in (rerun.reason or "")


def test_planning_attachments_never_imports_tensorflow(fleet: tuple[Path, list[str]]) -> None:
    root, bases = fleet
    (root / "attach.toml").write_text(ATTACH_RECIPE)
    script = (
        "import sys, smsurgery.recipes as r\n"
        "plan = r.load(sys.argv[1]).plan(sys.argv[2:])\n"
        "assert [m.status for m in plan.models] == ['changes', 'changes'], plan.to_json()\n"
        "assert 'tensorflow' not in sys.modules\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(root / "attach.toml"), bases[1], bases[3]],
        capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_a_stale_scratch_base_of_a_killed_apply_is_removed_by_the_next(fleet: tuple[Path, list[str]]) -> None:
    root, bases = fleet
    stale = Path(bases[0]) / ".smsurgery-scratch-999999-0123abcd"
    shutil.copytree(FIXTURE_MODELS / "keras_mlp" / "1", stale / "1")
    assert load(root / "recipe.toml").apply(bases[:1], target=PublishTarget(verify=False)).exit_status == 0
    assert sorted(p.name for p in Path(bases[0]).iterdir()) == ["1", "2"]
    shutil.copytree(FIXTURE_MODELS / "keras_mlp" / "1", stale / "1")  # killed after its last publish
    again = load(root / "recipe.toml").apply(bases[:1], target=PublishTarget(verify=False))
    assert again.count("unchanged") == 1 and sorted(p.name for p in Path(bases[0]).iterdir()) == ["1", "2"]


@pytest.mark.slow
def test_attachments_publish_one_version_per_model_and_then_nothing(fleet: tuple[Path, list[str]]) -> None:
    root, bases = fleet
    (root / "labels.txt").write_text("cat\ndog\nbird\n")
    more = (
        f'[[steps]]\nop = "labels"\nlabels_file = "{root / "labels.txt"}"\nsignature = "serve"\n'
        '[steps.match]\nsignature = "serve"\n\n'
        '[[steps]]\nop = "example_input"\nsignature = "prediction"\nmethod = "regress"\n'
        '[steps.match]\nsignature = "prediction"\n\n'
    )
    (root / "attach.toml").write_text(
        ATTACH_RECIPE.replace('[[steps]]\nop = "warmup"', more + '[[steps]]\nop = "warmup"')
    )
    chosen = [bases[1], bases[3]]  # keras_image (TF2, an image input), tf1_linear (TF1, no image)
    planned = json.loads(run_cli("plan", root / "attach.toml", *chosen, "--json").stdout)
    steps = {Path(m["base"]).name: [s["status"][0] for s in m["steps"]] for m in planned["models"]}
    assert steps == {"k2": ["a", "a", "a", "s", "a"], "lin": ["s", "s", "s", "a", "a"]}  # applied, skipped
    applied = run_cli("apply", root / "attach.toml", *chosen, "--json")
    assert applied.code == 0, applied.stdout + applied.stderr
    for model in json.loads(applied.stdout)["models"]:
        plan = next(m for m in planned["models"] if m["base"] == model["base"])
        assert model["changes"] == [d for s in plan["steps"] if s["status"] == "applied" for d in s["details"]]
        assert sorted(p.name for p in Path(model["base"]).iterdir()) == ["1", "2"]  # no scratch base left
        assert (Path(model["base"]) / "2" / "assets.extra" / "tf_serving_warmup_requests").is_file()
    image = read(f"{bases[1]}@2").meta_graph()
    assert set(image.signature_keys()) == {"serve", "serving_default", "serving_b64", "labels"}
    assert image.signature("serving_b64").outputs[0].alias == "probs"
    script = (
        "import sys, tensorflow as tf\n"
        "for p, expected in zip(sys.argv[1::2], sys.argv[2::2]):\n"
        "    with tf.compat.v1.Session(graph=tf.Graph()) as s:\n"
        "        meta = tf.compat.v1.saved_model.loader.load(s, ['serve'], p)\n"
        "    keys = set(meta.signature_def) - {'__saved_model_init_op'}\n"
        "    assert keys == set(tf.saved_model.load(p).signatures) == set(expected.split(',')), keys\n"
    )
    assert load(root / "recipe.toml").apply(bases[:1], target=None).exit_status == 0  # in-memory only, verified
    expected = [f"{bases[1]}/2", "serve,serving_default,serving_b64,labels", f"{bases[3]}/2", "prediction,regress"]
    expected += [f"{bases[0]}/2", "serve_raw,serving_default"]  # every published version loads under both loaders
    proc = subprocess.run([sys.executable, "-c", script, *expected], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    again = json.loads(run_cli("apply", root / "attach.toml", *chosen, "--json").stdout)
    assert again["summary"]["unchanged"] == 2
