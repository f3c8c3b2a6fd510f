"""Issue 43, items 1-3: an output never lands on an input, a model folder, another output or a user's folder.

Each case builds its files, runs the check (or the command), and compares every file's bytes before and after.
"""

from __future__ import annotations

import json

import pytest

from instruct_ner.cli import main
from instruct_ner.errors import DataError
from instruct_ner.outputs import MARKER, check_outputs, claim_folder, folder_owner


def snapshot(root):
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.txt").write_text("EU B-ORG\n", encoding="utf-8")
    (tmp_path / "data" / "README.md").write_text("the user's notes\n", encoding="utf-8")
    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / "instruct_ner.json").write_text("{}", encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(
    ("files", "folders", "reason"),
    [
        ({"--out": "data/train.txt"}, {}, "out_is_input"),
        ({"--out": "adapter/instruct_ner.json"}, {}, "out_in_model"),
        ({"--out": "adapter/new.jsonl"}, {}, "out_in_model"),
        ({"--out": "data"}, {}, "out_is_folder"),
        ({"--out": "p.jsonl", "--report": "p.jsonl"}, {}, "out_twice"),
        ({}, {"--output_dir": "data"}, "input_in_out"),
        ({}, {"--output_dir": "adapter"}, "out_in_model"),
        ({}, {"--output_dir": "adapter/sub"}, "out_in_model"),
        ({}, {"--output_dir": "."}, "out_in_model"),
        ({}, {"--output_dir": "data/train.txt"}, "out_is_file"),
        ({"--out": "run/p.jsonl"}, {"--output_dir": "run"}, "out_in_output"),
    ],
)
def test_every_output_is_checked_against_inputs_models_and_other_outputs(tree, files, folders, reason):
    before = snapshot(tree)
    files = {flag: tree / p for flag, p in files.items()}
    folders = {flag: tree / p for flag, p in folders.items()}
    with pytest.raises(DataError) as error:
        check_outputs(
            "train", files=files, folders=folders, inputs=[tree / "data" / "train.txt"], models=[tree / "adapter"]
        )
    assert error.value.reason == reason
    assert snapshot(tree) == before


def test_a_folder_of_the_users_is_refused_unless_overwrite(tree):
    (tree / "notes").mkdir()
    (tree / "notes" / "README.md").write_text("mine", encoding="utf-8")
    with pytest.raises(DataError, match="holds files this command did not write") as error:
        check_outputs("train", folders={"--output_dir": tree / "notes"})
    assert error.value.reason == "out_not_empty"
    check_outputs("train", folders={"--output_dir": tree / "notes"}, overwrite=True)  # explicit: allowed


def test_a_finished_run_is_kept_unless_resumed_and_a_report_is_replaced(tree):
    claim_folder(tree / "run", "train")
    (tree / "run" / "adapter_model.safetensors").write_bytes(b"weights")
    assert folder_owner(tree / "run") == "train"
    with pytest.raises(DataError, match="pass --resume to continue it"):
        check_outputs("train", folders={"--output_dir": tree / "run"})
    check_outputs("train", folders={"--output_dir": tree / "run"}, resume=True)
    with pytest.raises(DataError, match="holds the output of `instruct-ner train`"):
        check_outputs("compare", folders={"--output_dir": tree / "run"}, replace_own=True)
    claim_folder(tree / "report", "compare")
    (tree / "report" / "report.md").write_text("old report", encoding="utf-8")
    check_outputs("compare", folders={"--output_dir": tree / "report"}, replace_own=True)
    assert json.loads((tree / "report" / MARKER).read_text())["command"] == "compare"


def compare_file(path, ids):
    records = [{"id": i, "tokens": ["EU"], "tags": ["B-ORG"], "pred_tags": ["B-ORG"]} for i in ids]
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_compare_never_overwrites_an_input_named_like_its_report(tmp_path, capsys):
    out = tmp_path / "report"
    out.mkdir()
    a = compare_file(out / "report.json", ["1"])
    b = compare_file(tmp_path / "b.jsonl", ["1"])
    before = snapshot(tmp_path)
    assert main(["compare", str(a), str(b), "--output_dir", str(out), "--overwrite"]) == 2
    assert "holds the input" in capsys.readouterr().err
    assert snapshot(tmp_path) == before


def test_compare_writes_into_a_new_folder_and_replaces_its_own_report(tmp_path):
    a, b = compare_file(tmp_path / "a.jsonl", ["1"]), compare_file(tmp_path / "b.jsonl", ["1"])
    out = tmp_path / "report"
    assert main(["compare", str(a), str(b), "--output_dir", str(out)]) == 0
    assert main(["compare", str(a), str(b), "--output_dir", str(out)]) == 0  # its own report: replaced
    assert folder_owner(out) == "compare" and (out / "report.md").exists()


def test_a_second_run_on_a_locked_output_is_refused_and_a_dead_holder_frees_it(tmp_path):
    import subprocess
    import sys

    from instruct_ner.jsonl import output_lock

    out = tmp_path / "p.jsonl"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom instruct_ner.jsonl import output_lock\n"
            f"with output_lock({str(out)!r}):\n    print('locked', flush=True)\n    time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(DataError, match=f"another run \\(process {holder.pid}\\)") as error:
            with output_lock(out):
                pass
        assert error.value.reason == "out_locked"
    finally:
        holder.kill()
        holder.wait()
    with output_lock(out):  # the killed holder's lock went with its process
        pass


# The acceptance property of issue 43: for every subcommand and the API, each output option pointed at any input,
# the model folder or a file inside it is refused before any write, leaving every file byte-identical.
def _workspace(tmp_path, tiny_llama):
    import shutil

    data = tmp_path / "data.txt"
    data.write_text("EU B-ORG\nrejects O\n\nPeter B-PER\nBlair I-PER\n", encoding="utf-8")
    scored = tmp_path / "scored.jsonl"
    scored.write_text(
        json.dumps({"id": "1", "tokens": ["EU"], "tags": ["B-ORG"], "pred_tags": ["B-ORG"]}) + "\n", encoding="utf-8"
    )
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(
        json.dumps({"id": "1", "tokens": ["EU"], "tags": ["B-ORG"], "response": "EU | ORG"}) + "\n", encoding="utf-8"
    )
    model = tmp_path / "model"
    shutil.copytree(tiny_llama, model)
    tagger = tmp_path / "tagger"
    tagger.mkdir()
    (tagger / "instruct_ner.json").write_text(json.dumps({"kind": "tagger", "labels": ["ORG"]}), encoding="utf-8")
    return {"data": data, "scored": scored, "pairs": pairs, "model": model, "tagger": tagger}


COMMANDS = {  # command line (by workspace name), the output flag, the inputs and the model folder it reads
    "prepare": (["prepare", "--data", "data"], "--out", ["data"], None),
    "parse": (["parse", "--data", "pairs", "--field", "response"], "--out", ["pairs"], None),
    "score": (["score", "scored"], "--out", ["scored"], None),
    "generate": (
        ["generate", "--data", "data", "--model", "model", "--precision", "fp32", "--max_new_tokens", "2"],
        "--out",
        ["data"],
        "model",
    ),
    "tag": (["tag", "--data", "data", "--adapter", "tagger"], "--out", ["data"], "tagger"),
    "compare": (["compare", "scored", "scored", "--names", "a", "b"], "--output_dir", ["scored"], None),
    "train": (["train", "--data", "data", "--model", "model", "--precision", "fp32"], "--output_dir", [], "model"),
    "train-tagger": (
        ["train-tagger", "--data", "data", "--model", "model", "--precision", "fp32"],
        "--output_dir",
        [],
        "model",
    ),
    "export": (["export", "--data", "scored", "--to", "prodigy"], "--out", ["scored"], None),
    "review": (["review", "--data", "scored", "--gold"], "--output_dir", ["scored"], None),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_no_output_option_of_any_command_lands_on_an_input_or_the_model(tmp_path, capsys, tiny_llama, command):
    space = _workspace(tmp_path, tiny_llama)
    argv, flag, inputs, model = COMMANDS[command]
    argv = [str(space.get(word, word)) for word in argv]
    targets = [space[name] for name in inputs]
    if flag == "--output_dir":
        targets = [space["data"].parent]  # the folder that holds its input
    if model:
        inside = space[model] / ("sub" if flag == "--output_dir" else "new-output.jsonl")
        targets += [space[model], space[model] / "instruct_ner.json", inside]
    before = snapshot(tmp_path)
    for target in targets:
        code = main([*argv, flag, str(target)])
        err = capsys.readouterr().err.strip()
        assert code == 2, (command, target, err)
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert snapshot(tmp_path) == before, (command, target)


def test_the_api_evaluate_out_never_lands_on_its_data_or_model(tmp_path, tiny_llama):
    from instruct_ner import NER

    space = _workspace(tmp_path, tiny_llama)
    ner = NER.zero_shot(labels=["ORG", "PER"], model=str(space["model"]), precision="fp32")
    ner.predictor.folder = str(space["model"])  # as for a trained folder: the folder it was loaded from
    before = snapshot(tmp_path)
    for target in (space["data"], space["model"] / "config.json", space["model"] / "p.jsonl"):
        with pytest.raises(DataError):
            ner.evaluate(space["data"], out=target)
    assert snapshot(tmp_path) == before
