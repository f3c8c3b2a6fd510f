import json
import subprocess
import sys

import pytest
from conftest import SHARED_DATA, needs_shared_data

from instruct_ner.cli import main


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def chain(capsys, tmp_path, data, *prepare_options):
    pairs, parsed = tmp_path / "pairs.jsonl", tmp_path / "parsed.jsonl"
    assert run(capsys, "prepare", "--data", data, "--out", pairs, *prepare_options)[0] == 0
    assert run(capsys, "parse", "--in", pairs, "--field", "response", "--out", parsed)[0] == 0
    code, out, _ = run(capsys, "score", parsed, "--json", tmp_path / "scores.json")
    assert code == 0
    return out, json.loads((tmp_path / "scores.json").read_text()), pairs, parsed


def test_prepare_parse_score_chain_on_a_small_file(capsys, tmp_path):
    data = tmp_path / "a.txt"
    data.write_text("EU B-ORG\nrejects O\nGerman B-MISC\n\nPeter B-PER\nBlair I-PER\n\nNothing O\n")
    out, scores, pairs, parsed = chain(capsys, tmp_path, data)
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
    [("conll2003/test.txt", []), ("kind/ADG_dev.tsv", ["--template", "ner-inline.it", "--style", "chat"])],
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


def test_console_script_is_installed():
    result = subprocess.run([sys.executable, "-m", "instruct_ner.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "prepare" in result.stdout and "score" in result.stdout
