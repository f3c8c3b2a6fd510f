import dataclasses
import errno
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SHARED_DATA, needs_shared_data
from instruct_ner.cli import SUBCOMMANDS, main


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def chain(capsys, tmp_path, data, *prepare_options):
    pairs, parsed = tmp_path / "pairs.jsonl", tmp_path / "parsed.jsonl"
    assert run(capsys, "prepare", "--data", data, "--out", pairs, *prepare_options)[0] == 0
    assert run(capsys, "parse", "--data", pairs, "--field", "response", "--out", parsed)[0] == 0
    code, out, _ = run(capsys, "score", parsed, "--out", tmp_path / "scores.json")
    assert code == 0
    return out, json.loads((tmp_path / "scores.json").read_text()), pairs, parsed


def test_prepare_parse_score_chain_on_a_small_file(capsys, tmp_path):
    data = tmp_path / "a.txt"
    data.write_text("EU B-ORG\nrejects O\nGerman B-MISC\n\nPeter B-PER\nBlair I-PER\n\nNothing O\n")
    out, scores, pairs, parsed = chain(capsys, tmp_path, data, "--template", "ner-list.en")
    assert "micro F1 = 1.0000" in out and scores["micro"]["f1"] == 1.0
    records = [json.loads(line) for line in parsed.read_text().splitlines()]
    assert len(records) == 3  # records in = records out
    assert records[0]["response"] == "EU | ORG\nGerman | MISC" and records[0]["labels"] == ["MISC", "ORG", "PER"]
    assert records[0]["entities"][1] == {
        "text": "German",
        "label": "MISC",
        "token_start": 2,
        "token_end": 3,
        "start": 11,
        "end": 17,
    }
    assert records[2]["response"] == "none" and records[2]["parse"]["no_entity_marker"]


@needs_shared_data
@pytest.mark.parametrize(
    ("data", "options"),
    [
        ("conll2003/test.txt", []),  # prepare's default: ner-inline-compact.en
        ("conll2003/test.txt", ["--template", "ner-list.en"]),
        ("kind/ADG_dev.tsv", ["--template", "ner-inline.it", "--style", "chat"]),
    ],
)
def test_chain_on_real_corpora_gives_f1_one(capsys, tmp_path, data, options):
    out, scores, _, _ = chain(capsys, tmp_path, SHARED_DATA / data, *options)
    assert "micro F1 = 1.0000" in out and scores["micro"]["f1"] == 1.0


def test_bad_input_is_one_clear_line_and_status_2(capsys, tmp_path):
    data = tmp_path / "bad.txt"
    data.write_text("EU B-ORG\nrejects XYZ\n")
    code, _, err = run(capsys, "prepare", "--data", data, "--out", tmp_path / "o.jsonl")
    assert code == 2 and f"instruct-ner prepare: error: {data}:2: invalid tag 'XYZ'" in err


def test_skip_reports_counts(capsys, tmp_path):
    data = tmp_path / "bad.txt"
    data.write_text("EU B-ORG\n\nrejects XYZ\n")
    code, _, err = run(capsys, "prepare", "--data", data, "--out", tmp_path / "o.jsonl", "--on_error", "skip")
    assert code == 0 and "read 1 examples, skipped 1 (invalid_tag: 1)" in err


def test_recipe_yaml_with_overrides_and_unknown_keys(capsys, tmp_path):
    data = tmp_path / "a.txt"
    data.write_text("EU B-ORG\n")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"data: {data}\nout: {tmp_path / 'x.jsonl'}\nstyle: chat\n")
    assert run(capsys, "prepare", "--config", recipe, "--style", "instruction")[0] == 0
    assert "prompt" in json.loads((tmp_path / "x.jsonl").read_text().splitlines()[0])
    recipe.write_text("data: a.txt\nlearning_rate: 3\n")
    code, _, err = run(capsys, "prepare", "--config", recipe)
    assert code == 2 and "unknown field(s) ['learning_rate']" in err


def installed_script() -> str:
    """The `instruct-ner` console script of the environment running the tests (its bin folder first)."""
    beside = Path(sys.executable).parent / "instruct-ner"
    return str(beside) if beside.exists() else shutil.which("instruct-ner")


def test_console_script_is_installed(tmp_path):
    script = installed_script()
    assert script, "no instruct-ner script beside the interpreter or on PATH"
    result = subprocess.run([script, "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "prepare" in result.stdout and "score" in result.stdout
    data = tmp_path / "p.jsonl"
    data.write_text(json.dumps({"id": "1", "tokens": ["EU"], "tags": ["B-ORG"], "pred_tags": ["B-ORG"]}) + "\n")
    result = subprocess.run([script, "score", str(data)], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0 and "micro F1 = 1.0000" in result.stdout
    result = subprocess.run([script, "score", str(tmp_path / "none.jsonl")], capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.startswith("instruct-ner score: error:")


READS_RECORDS = {"prepare", "parse", "score", "train", "generate", "train-tagger", "compare", "tag"}
READS_RECORDS |= {"review", "export", "import", "calibrate"}
WRITES_A_FILE = {"prepare", "parse", "score", "generate", "tag", "export", "import"}
WRITES_A_FOLDER = {"demo", "train", "train-tagger", "compare", "review"}
LOADS_A_MODEL = {"demo", "train", "generate", "train-tagger", "tag"}
RETIRED = {"--in", "--input", "--inputs", "--json", "--output", "--out_dir", "--output-file", "--report"}


def help_of(capsys, subcommand: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        main([subcommand, "--help"])
    assert exit_.value.code == 0
    return " ".join(capsys.readouterr().out.split())


def test_every_subcommand_names_the_same_things_the_same_way(capsys):
    helps = {name: help_of(capsys, name) for name in SUBCOMMANDS}
    precision = {}
    for name, text in helps.items():
        options = set(re.findall(r"(?<![\w-])--[a-z][a-z_-]*", text))
        assert not options & RETIRED, (name, options & RETIRED)
        assert ("--data" in options) == (name in READS_RECORDS), name
        assert ("--out" in options) == (name in WRITES_A_FILE), name
        assert ("--output_dir" in options) == (name in WRITES_A_FOLDER), name
        if name in LOADS_A_MODEL:
            precision[name] = re.search(r"--precision \{([^}]*)\} (.*?\(default: \w+\))", text).groups()
    assert set(precision) == LOADS_A_MODEL
    assert len(set(precision.values())) == 1, precision  # the same choices, help and default everywhere
    assert next(iter(precision.values()))[1].endswith("(default: auto)")


def test_a_positional_path_is_a_shorthand_for_data(capsys, tmp_path):
    data = tmp_path / "p.jsonl"
    data.write_text(json.dumps({"id": "1", "tokens": ["EU"], "tags": ["B-ORG"], "pred_tags": ["O"]}) + "\n")
    assert run(capsys, "score", data)[1] == run(capsys, "score", "--data", data)[1]
    code, _, err = run(capsys, "score", data, "--data", data)
    assert code == 2 and "data given twice" in err


def test_every_command_in_the_readme_and_the_docstrings_uses_known_options(capsys):
    import importlib

    from conftest import ROOT

    texts = [(ROOT / "README.md").read_text(encoding="utf-8")]
    modules = {module.partition(":")[0] for module, _ in SUBCOMMANDS.values()}
    modules |= {"instruct_ner.sft.train", "instruct_ner.sft.train_tagger"}  # their docstrings are the --help texts
    texts += [importlib.import_module(module).__doc__ or "" for module in sorted(modules)]
    known = {}
    checked = 0
    for text in texts:
        for line in text.replace("\\\n", " ").splitlines():
            for name, rest in re.findall(r"instruct-ner ([a-z-]+)([^`|\n]*)", line):
                if name not in SUBCOMMANDS:
                    continue
                if name not in known:
                    known[name] = set(re.findall(r"(?<![\w-])--[a-z][a-z_-]*", help_of(capsys, name)))
                unknown = set(re.findall(r"(?<![\w-])--[a-z][a-z_-]*", rest)) - known[name]
                assert not unknown, f"instruct-ner {name}: {sorted(unknown)} in {line.strip()!r}"
                checked += 1
    assert checked > 20


def test_fields_set_records_what_the_recipe_and_the_flags_gave(tmp_path):
    from instruct_ner.config import fields_set, make_config, parse_config
    from instruct_ner.prompts.prepare import PrepareConfig

    recipe = tmp_path / "r.yaml"
    recipe.write_text("data: a.txt\nstyle: instruction\n")  # style: the default value, given explicitly
    config = parse_config(PrepareConfig, ["--config", str(recipe), "--out", "o.jsonl", "--template", "ner-list.en"])
    assert fields_set(config) == {"data", "style", "out", "template"}
    values = {"data": "a.txt", "out": "o.jsonl", "limit": "3"}
    assert make_config(PrepareConfig, values).limit == 3 and values["limit"] == "3"  # the mapping is not changed
    assert fields_set(PrepareConfig(data="a.txt", out="o.jsonl", style="instruction")) == {"data", "out"}


# Issue 43, item 12: a full disk or a read-only target is one line naming the file, exit 2, never a traceback.
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_a_full_or_read_only_disk_is_one_line(tmp_path, capsys, monkeypatch, code):
    import instruct_ner.inference.score as score_module

    data = tmp_path / "p.jsonl"
    data.write_text(json.dumps({"id": "a", "tags": ["B-PER"], "pred_tags": ["B-PER"]}) + "\n", encoding="utf-8")
    out = tmp_path / "scores.json"

    def full(path, text):
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr(score_module, "write_text_atomic", full)
    assert main(["score", str(data), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert str(out) in err and os.strerror(code) in err
    assert not out.exists()


def test_a_config_built_in_python_records_the_fields_passed_to_it():
    """`GenerateConfig(precision="auto")` gives `precision` as explicitly as `--precision auto` does."""
    from instruct_ner.config import Config, fields_set, make_config, parse_config, replace_config
    from instruct_ner.inference.generate import GenerateConfig
    from instruct_ner.inference.tag import TagConfig

    python = GenerateConfig(data="a.txt", out="o.jsonl", precision="auto", style="chat")
    cli = parse_config(
        GenerateConfig, ["--data", "a.txt", "--out", "o.jsonl", "--precision", "auto", "--style", "chat"]
    )
    made = make_config(GenerateConfig, {"data": "a.txt", "out": "o.jsonl", "precision": "auto", "style": "chat"})
    assert fields_set(python) == fields_set(cli) == fields_set(made) == {"data", "out", "precision", "style"}
    assert fields_set(TagConfig(adapter="t", data="a.txt", out="o.jsonl", model="")) == {
        "adapter",
        "data",
        "out",
        "model",
    }

    @dataclasses.dataclass
    class Positional(Config):
        a: int = 0
        b: int = 0
        c: int = 0

    assert fields_set(Positional(0, c=0)) == {"a", "c"}  # positional arguments count too
    copy = replace_config(python, batch_size=4)
    assert fields_set(copy) == {"data", "out", "precision", "style", "batch_size"} and fields_set(
        python
    ) == fields_set(cli)


@pytest.mark.parametrize(
    "given, saved, expected",
    [
        ({"precision": "auto"}, {"precision": "fp32", "model": "m"}, {"precision": "auto", "model": "m"}),
        ({}, {"precision": "fp32", "model": "m"}, {"precision": "fp32", "model": "m"}),
        ({"template": "ner-list.en"}, {"template": None, "style": None}, {"template": "ner-list.en"}),
        ({"model": ""}, {"model": "m"}, {"model": ""}),  # an empty explicit value still counts
    ],
)
def test_explicit_or_saved(given, saved, expected):
    from instruct_ner.config import explicit_or_saved
    from instruct_ner.inference.generate import GenerateConfig

    assert explicit_or_saved(given, saved) == expected
    config = GenerateConfig(data="a.txt", out="o.jsonl", **given)  # the same rule for a config
    assert explicit_or_saved(config, saved) == expected
