"""`instruct-ner calibrate` on bad input: one line naming the file or folder, exit 2, the folder's description
untouched.
"""

import json

import pytest

from instruct_ner.cli import main
from instruct_ner.jsonl import write_jsonl
from instruct_ner.sft.artifact import Artifact

# --- bad input: one line naming the file or folder, exit 2, the folder's description untouched ------------------

ENTITY = {"text": "Peter", "label": "PER", "token_start": 0, "token_end": 1, "start": 0, "end": 5, "score": 0.7}


def record(tags=("B-PER", "O"), **changes) -> dict:
    saved = {"id": "1", "tokens": ["Peter", "sings"], "tags": list(tags), "pred_tags": ["B-PER", "O"]}
    return {**saved, "entities": [ENTITY], **changes}


@pytest.fixture
def model_folder(tmp_path):
    """A model folder's description alone: calibrate reads and writes nothing else."""
    folder = tmp_path / "model"
    Artifact(kind="generative", labels=["LOC", "PER"]).save(folder)
    return folder


def calibrate_fails(folder, data, capsys) -> str:
    """The one error line of a calibrate that must exit 2."""
    description = (folder / "instruct_ner.json").read_bytes() if (folder / "instruct_ner.json").exists() else None
    capsys.readouterr()
    assert main(["calibrate", "--adapter", str(folder), "--data", str(data)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("instruct-ner calibrate: error: ") and captured.out == ""
    if description is not None:
        assert (folder / "instruct_ner.json").read_bytes() == description  # nothing saved
    return lines[0]


def test_calibrate_refuses_predictions_without_gold_tags(model_folder, tmp_path, capsys):
    """Regression: a record without `tags` was a KeyError with a traceback; predictions whose tags hold no entity
    (unannotated text, tagged O) were fitted, every entity taken for a wrong one, and saved a = 0.001."""
    data = tmp_path / "predictions.jsonl"
    without = record()
    del without["tags"]
    write_jsonl(data, [record(), without])
    line = calibrate_fails(model_folder, data, capsys)
    assert f"{data}:2" in line and "'tags'" in line
    write_jsonl(data, [record(tags=("O", "O"))] * 3)
    line = calibrate_fails(model_folder, data, capsys)
    assert str(data) in line and "no gold entity" in line
    assert "calibration" not in json.loads((model_folder / "instruct_ner.json").read_text())


@pytest.mark.parametrize(
    "bad, named",
    [
        ({"entities": [{**ENTITY, "confidence": 0.7}]}, "entities[0] is not an entity"),
        ({"entities": [{**ENTITY, "score": "0.7"}]}, "entities[0] has score '0.7'"),
        ({"entities": [{**ENTITY, "score": 1.5}]}, "entities[0] has score 1.5"),
        ({"entities": "PER"}, "'entities' must be a list"),
        ({"tags": ["B-PER"]}, "1 tags but 2 pred_tags"),
    ],
)
def test_calibrate_names_the_line_of_a_malformed_record(bad, named, model_folder, tmp_path, capsys):
    """Regression: an entity with another key or a score that is not a number was a TypeError with a traceback."""
    data = tmp_path / "predictions.jsonl"
    write_jsonl(data, [record(), record(**bad)])
    line = calibrate_fails(model_folder, data, capsys)
    assert f"{data}:2" in line and named in line


def test_calibrate_refuses_an_empty_file_and_a_folder_that_is_not_a_model(model_folder, tmp_path, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    line = calibrate_fails(model_folder, empty, capsys)
    assert str(empty) in line and "no records" in line
    unscored = tmp_path / "unscored.jsonl"
    write_jsonl(unscored, [record(entities=[{k: v for k, v in ENTITY.items() if k != "score"}])])
    assert str(unscored) in calibrate_fails(model_folder, unscored, capsys)
    good = tmp_path / "good.jsonl"
    write_jsonl(good, [record()])
    (tmp_path / "plain").mkdir()
    line = calibrate_fails(tmp_path / "plain", good, capsys)
    assert str(tmp_path / "plain") in line and "instruct_ner.json" in line
    assert str(tmp_path / "missing") in calibrate_fails(tmp_path / "missing", good, capsys)
    assert str(tmp_path / "absent.jsonl") in calibrate_fails(model_folder, tmp_path / "absent.jsonl", capsys)
