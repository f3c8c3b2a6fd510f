"""Export to and import from Label Studio, Prodigy and Argilla: records -> tool -> records is exact on every shipped
corpus, corrected annotations come back as training records, and a span that cuts a token is one line naming the
task (or a counted skip)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from instruct_ner.cli import main
from instruct_ner.examples import DataError
from instruct_ner.prompts.annotation_tools import TOOLS, export_record, import_tasks
from instruct_ner.prompts.readers import load_examples

ROOT = Path(__file__).resolve().parents[1]
CORPORA = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "data").glob("*/*") if p.suffix in (".txt", ".csv"))
KEYS = ("id", "text", "tokens", "offsets", "tags", "entities", "pred_tags")


def prediction_records(path: str) -> list[dict]:
    """The corpus's records with a made-up prediction: a third of the entities dropped, a third relabelled, scores."""
    rng = random.Random(7)
    examples, _ = load_examples(ROOT / path)
    records = []
    for example in examples:
        record = example.to_record()
        record["offsets"] = [list(o) for o in example.offsets]
        entities, pred_tags = [], ["O"] * len(example.tokens)
        for entity in example.entities:
            luck = rng.random()
            if luck < 0.33:
                continue
            label = "OTHER" if luck < 0.66 else entity.label
            saved = entity.to_dict() | {"label": label, "score": round(rng.random(), 6)}
            entities.append(saved)
            pred_tags[entity.token_start : entity.token_end] = [f"B-{label}"] + [f"I-{label}"] * (
                entity.token_end - entity.token_start - 1
            )
        record["entities"], record["pred_tags"] = entities, pred_tags
        records.append(record)
    return records


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize("corpus", CORPORA)
def test_records_to_tool_to_records_is_exact(corpus, tool):
    records = prediction_records(corpus)
    assert records and any(r["entities"] for r in records)
    tasks = [(f"t{i}", json.loads(json.dumps(export_record(r, tool, gold=True)))) for i, r in enumerate(records)]
    back, skipped = import_tasks(tasks, tool)
    assert not skipped and len(back) == len(records)
    for original, imported in zip(records, back):
        assert {k: original[k] for k in KEYS} == {k: imported[k] for k in KEYS}


@pytest.mark.parametrize("tool", TOOLS)
def test_the_cli_round_trip_through_files_and_train_reads_the_result(tmp_path, tool, capsys):
    records = prediction_records("data/emails_it/test.csv")
    data = tmp_path / "predictions.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    exported, imported = tmp_path / f"tasks.{tool}", tmp_path / "train.jsonl"
    assert main(["export", "--data", str(data), "--to", tool, "--out", str(exported), "--gold"]) == 0
    assert main(["import", "--data", str(exported), "--from", tool, "--out", str(imported)]) == 0
    back = [json.loads(line) for line in imported.read_text(encoding="utf-8").splitlines()]
    assert [{k: r[k] for k in KEYS} for r in back] == [{k: r[k] for k in KEYS} for r in records]
    examples, report = load_examples(imported)  # what `train --data` reads
    assert [e.tags for e in examples] == [r["tags"] for r in records] and not report.skipped
    if tool == "labelstudio":
        assert '<Labels name="label" toName="text">' in capsys.readouterr().err


def test_label_studio_shapes_and_scores():
    record = {"id": "a", "tokens": ["Rossi", "visits", "Rome"], "tags": ["B-PER", "O", "B-LOC"]}
    record["entities"] = [
        {"text": "Rossi", "label": "PER", "token_start": 0, "token_end": 1, "start": 0, "end": 5, "score": 0.25}
    ]
    task = export_record(record, "labelstudio")
    assert task["data"]["text"] == "Rossi visits Rome" and "annotations" not in task
    (prediction,) = task["predictions"]
    assert prediction["score"] == 0.25
    assert prediction["result"] == [
        {
            "id": "e0",
            "from_name": "label",
            "to_name": "text",
            "type": "labels",
            "value": {"start": 0, "end": 5, "text": "Rossi", "labels": ["PER"]},
            "score": 0.25,
        }
    ]


def test_a_corrected_label_studio_task_made_in_the_tool_is_tokenised_and_trimmed():
    """No words of ours in the task: our tokenizer's tokens; the last annotation not cancelled wins; a trailing
    space in a selection is dropped."""
    text = "Scriva a mario.rossi@acme.it entro il 3 maggio."
    region = lambda s, e, label: {"type": "labels", "value": {"start": s, "end": e, "labels": [label]}}  # noqa: E731
    task = {
        "id": 17,
        "data": {"text": text},
        "annotations": [
            {"result": [region(9, 28, "EMAIL")]},
            {"result": [region(9, 29, "EMAIL"), region(38, 46, "DATE")]},
            {"result": [], "was_cancelled": True},
        ],
        "predictions": [{"result": [region(9, 28, "PER")]}],
    }
    (record,), skipped = import_tasks([("x.json: task 0", task)], "labelstudio")
    assert not skipped and record["id"] == "17"
    spans = [(e, t) for t, e in zip(record["tags"], record["tokens"]) if t != "O"]
    assert spans == [("mario.rossi@acme.it", "B-EMAIL"), ("3", "B-DATE"), ("maggio", "I-DATE")]
    assert [e["label"] for e in record["entities"]] == ["PER"]


def test_a_span_that_cuts_a_token_names_the_task_or_is_counted():
    task = {"data": {"text": "Visit acme.it today"}, "annotations": [{"result": [
        {"type": "labels", "value": {"start": 6, "end": 10, "labels": ["ORG"]}}
    ]}]}  # fmt: skip
    with pytest.raises(DataError) as error:
        import_tasks([("export.json: task 3", task)], "labelstudio")
    message = str(error.value)
    assert message.startswith("export.json: task 3") and "'acme.it'" in message and "\n" not in message
    records, skipped = import_tasks([("export.json: task 3", task)], "labelstudio", on_error="skip")
    assert records == [] and skipped == {"partial_token": 1}


def test_only_accepted_or_submitted_work_comes_back():
    text = {"text": "EU says", "spans": [{"start": 0, "end": 2, "label": "ORG"}]}
    prodigy = [("p:1", text | {"answer": "accept"}), ("p:2", text | {"answer": "reject"}), ("p:3", dict(text))]
    records, skipped = import_tasks(prodigy, "prodigy")
    assert [r["tags"] for r in records] == [["B-ORG", "O"]] and skipped == {"rejected": 1, "not_annotated": 1}
    records, _ = import_tasks(prodigy, "prodigy", unannotated="predictions")
    assert len(records) == 2
    value = [{"start": 3, "end": 7, "label": "MISC"}]
    argilla = [
        ("a:0", {"id": "x", "fields": {"text": "EU says"}, "responses": {"spans": [{"value": value}]}}),
        (
            "a:1",
            {"id": "y", "fields": {"text": "EU says"}, "responses": {"spans": [{"value": [], "status": "draft"}]}},
        ),
        ("a:2", {"id": "z", "fields": {"text": "EU says"}, "responses": {"spans": [{"status": "discarded"}]}}),
    ]
    records, skipped = import_tasks(argilla, "argilla")
    assert [(r["id"], r["tags"]) for r in records] == [("x", ["O", "B-MISC"])]
    assert skipped == {"not_annotated": 1, "discarded": 1}


def test_argilla_record_shape():
    record = {"id": "7", "tokens": ["EU", "says"], "tags": ["B-ORG", "O"], "pred_tags": ["B-ORG", "O"]}
    item = export_record(record, "argilla", gold=True)
    assert item["fields"] == {"text": "EU says"} and item["id"] == "7"
    assert item["suggestions"] == {"spans": {"value": [{"start": 0, "end": 2, "label": "ORG"}], "score": None,
                                             "agent": "instruct-ner"}}  # fmt: skip
    assert item["responses"]["spans"][0]["value"] == [{"start": 0, "end": 2, "label": "ORG"}]
    assert isinstance(item["metadata"]["instruct_ner"], str)  # a plain string: Argilla metadata values are scalars
