"""`instruct-ner calibrate` end to end, on a tiny tagger and a tiny generative adapter (tests/conftest.py): dev data
predicted with the CLI, the calibration fitted on that output and saved, then applied by `NER.from_pretrained` and
by the CLI to every score, and only to the scores. Calibrating twice composes. Bad input is one line and exit 2.

The calibration is recomputed here by hand from what the folder saved (`instruct_ner.json`: score ->
sigmoid(a * logit(score) + b)), and the fit is checked by its optimality on the raw scores (the log loss's
gradient is zero there), not by calling `inference.confidence`.
"""

import json
import math
import shutil

import pytest

from conftest import DATA
from instruct_ner import NER
from instruct_ner.cli import main
from instruct_ner.examples import spans_to_tags
from instruct_ner.jsonl import read_records, write_jsonl
from instruct_ner.sft.artifact import Artifact

TEST_FILE = DATA / "conll_en" / "test.txt"
DEV_RECORDS = 8
COMMAND = {"tagger": "tag", "adapter": "generate"}


def by_hand(saved: dict, score: float) -> float:
    """The saved calibration applied to a score: sigmoid(a * logit(score) + b)."""
    z = saved["a"] * math.log(score / (1 - score)) + saved.get("b", 0.0)
    return 1 / (1 + math.exp(-z))


def log_loss_gradient(a: float, b: float, scores: list[float], correct: list[bool]) -> tuple[float, float]:
    """d/da and d/db of the log loss of `correct` under sigmoid(a * logit(score) + b)."""
    ga = gb = 0.0
    for score, right in zip(scores, correct):
        x = math.log(score / (1 - score))
        residual = 1 / (1 + math.exp(-(a * x + b))) - right
        ga, gb = ga + residual * x, gb + residual
    return ga, gb


def saved_calibration(folder) -> dict:
    return json.loads((folder / "instruct_ner.json").read_text(encoding="utf-8"))["calibration"]


def spans(entities) -> list[tuple]:
    """What a prediction is, without its score: label, token span, character span, text."""
    return [(e.label, e.token_start, e.token_end, e.start, e.end, e.text) for e in entities]


def file_spans(records: list[dict]) -> list[list[tuple]]:
    return [[(e["label"], e["token_start"], e["token_end"], e["text"]) for e in r["entities"]] for r in records]


def file_scores(records: list[dict]) -> list[float]:
    return [e["score"] for r in records for e in r["entities"]]


# About 30 s for the tagger and 50 s for the adapter on an idle CPU (the adapter generates 6 times): slow, as in
# test_api.py.
@pytest.mark.parametrize("kind", ["tagger", pytest.param("adapter", marks=pytest.mark.slow)])
def test_a_saved_calibration_is_applied_to_every_score_and_calibrating_twice_composes(kind, request, tmp_path, capsys):
    folder = tmp_path / kind  # calibrate writes into the folder: a copy, the session's folder stays raw
    shutil.copytree(request.getfixturevalue(kind), folder)

    def predict_file(data, out, *options) -> list[dict]:
        args = [COMMAND[kind], "--adapter", str(folder), "--data", str(data), "--out", str(out), *options]
        assert main(args) == 0
        return read_records(out)

    # Dev data: the test file's first texts, with gold tags that hold the entities the model scores at least their
    # median, every third entity the other way round: the scores say something, and right and wrong entities
    # interleave, so that each fit below has a finite optimum away from the identity.
    first = predict_file(TEST_FILE, tmp_path / "first.jsonl", "--limit", str(DEV_RECORDS))
    predicted = [
        (r["id"], (e["label"], e["token_start"], e["token_end"]), e["score"]) for r in first for e in r["entities"]
    ]
    median = sorted(score for _, _, score in predicted)[len(predicted) // 2]
    gold = {r["id"]: set() for r in first}
    for k, (record_id, span, score) in enumerate(predicted):
        if (score >= median) != (k % 3 == 0):
            gold[record_id].add(span)
    dev = [
        {key: r[key] for key in ("id", "text", "tokens", "offsets")}
        | {"tags": spans_to_tags(sorted(gold[r["id"]], key=lambda s: s[1]), len(r["tokens"]))}
        for r in first
    ]
    write_jsonl(tmp_path / "dev.jsonl", dev)
    texts = [r["text"] for r in dev]

    # Before calibration: the raw scores, from the CLI (the fit's input) and from the API.
    raw_file = predict_file(tmp_path / "dev.jsonl", tmp_path / "dev.raw.jsonl")
    raw = NER.from_pretrained(folder).predict(texts)
    raw_scores = file_scores(raw_file)
    correct = [
        (e["label"], e["token_start"], e["token_end"]) in gold[r["id"]] for r in raw_file for e in r["entities"]
    ]
    assert 0 < sum(correct) < len(correct), "the dev data must hold right and wrong entities"
    assert all(1e-6 < s < 1 - 1e-6 for s in raw_scores)  # logit(score) by hand is exact: no clipping involved
    assert all(e.score is not None for entities in raw for e in entities)

    # Calibrate once (temperature): the saved a is the raw scores' optimum (b stays 0).
    args = ["calibrate", "--adapter", str(folder), "--data", str(tmp_path / "dev.raw.jsonl")]
    args += ["--method", "temperature"]
    assert main(args) == 0
    once = saved_calibration(folder)
    assert once["method"] == "temperature" and once["b"] == 0.0
    assert 1e-3 < once["a"] < 1e3 and abs(once["a"] - 1) > 0.01  # an interior fit that changes the scores
    gradient, _ = log_loss_gradient(once["a"], 0.0, raw_scores, correct)
    assert abs(gradient) < 1e-6 * len(raw_scores)

    # The API applies it to every score and changes no prediction.
    ner = NER.from_pretrained(folder)
    calibrated = ner.predict(texts)
    assert [spans(entities) for entities in calibrated] == [spans(entities) for entities in raw]
    for before, after in zip(raw, calibrated):
        for raw_entity, entity in zip(before, after):
            assert entity.score == pytest.approx(by_hand(once, raw_entity.score), rel=1e-9, abs=1e-12)
    assert calibrated[0] == ner.predict_entities(texts[0])

    # A threshold is on calibrated scores, kept when >= it: the median entity is kept, the ones below dropped.
    scores = sorted(e.score for entities in calibrated for e in entities)
    threshold = scores[len(scores) // 2]
    kept = ner.predict(texts, threshold=threshold)
    expected = [[e for e in entities if e.score >= threshold] for entities in calibrated]
    assert [spans(entities) for entities in kept] == [spans(entities) for entities in expected]
    assert 0 < sum(map(len, kept)) < len(scores) and threshold in [e.score for entities in kept for e in entities]
    by_raw = [[e for e in entities if e.score >= threshold] for entities in raw]
    assert [spans(entities) for entities in by_raw] != [spans(entities) for entities in kept]  # not on raw scores
    assert spans(ner.predict_entities(texts[0], threshold=threshold)) == spans(kept[0])

    # The CLI applies it too (to every score; with --threshold, the same entities as the API keeps).
    once_file = predict_file(tmp_path / "dev.jsonl", tmp_path / "dev.once.jsonl")
    assert file_spans(once_file) == file_spans(raw_file)
    assert file_scores(once_file) == pytest.approx([by_hand(once, s) for s in raw_scores], rel=1e-9, abs=1e-12)
    cut = predict_file(tmp_path / "dev.jsonl", tmp_path / "dev.cut.jsonl", "--threshold", str(threshold))
    above = [{**r, "entities": [e for e in r["entities"] if e["score"] >= threshold]} for r in once_file]
    assert file_spans(cut) == file_spans(above) and file_spans(cut) != file_spans(once_file)

    # Calibrate again (Platt) on predictions made with the first calibration: the saved calibration composes the
    # two, so it is the Platt optimum on the raw scores (the second fit saw logit(score) scaled by a).
    args = ["calibrate", "--adapter", str(folder), "--data", str(tmp_path / "dev.once.jsonl"), "--method", "platt"]
    assert main(args) == 0
    twice = saved_calibration(folder)
    assert twice["method"] == "platt"
    ga, gb = log_loss_gradient(twice["a"], twice["b"], raw_scores, correct)
    assert abs(ga) < 1e-6 * len(raw_scores) and abs(gb) < 1e-6 * len(raw_scores)
    second = NER.from_pretrained(folder).predict(texts)
    assert [spans(entities) for entities in second] == [spans(entities) for entities in raw]
    for before, after in zip(raw, second):
        for raw_entity, entity in zip(before, after):
            assert entity.score == pytest.approx(by_hand(twice, raw_entity.score), rel=1e-9, abs=1e-12)
    capsys.readouterr()


# --- bad input: one line naming the file or folder, exit 2, the folder's description untouched ------------------

ENTITY = {"text": "Peter", "label": "PER", "token_start": 0, "token_end": 1, "start": 0, "end": 5, "score": 0.7}


def record(tags=("B-PER", "O"), **changes) -> dict:
    saved = {"id": "1", "tokens": ["Peter", "sings"], "tags": list(tags), "pred_tags": ["B-PER", "O"]}
    return {**saved, "entities": [ENTITY], **changes}


def scored(score: float, right: bool) -> dict:
    """A one-entity record whose entity (PER, score) is right or wrong."""
    return record(tags=("B-PER", "O") if right else ("O", "O"), entities=[{**ENTITY, "score": score}])


def test_auto_calibration_leaves_calibrated_scores_alone_and_fits_overconfident_ones(model_folder, tmp_path, capsys):
    """`calibrate`'s default (auto) saves nothing where the scores are calibrated already (at 0.25 one entity in
    four is right, at 0.75 three in four, in each half of the file too), and saves a calibration that lowers
    overconfident scores (0.95 and 0.6, each right half the time: raw ECE (0.45 + 0.1) / 2 = 0.275)."""
    data, description = tmp_path / "calibrated.jsonl", (model_folder / "instruct_ner.json").read_bytes()
    pattern = [(0.25, r) for r in (True, False, False, False)] + [(0.75, r) for r in (True, True, False, True)]
    write_jsonl(data, [scored(s, r) for s, r in pattern for _ in (0, 1)])  # records 2k and 2k+1 alike: equal halves
    capsys.readouterr()
    assert main(["calibrate", "--adapter", str(model_folder), "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert "-> none" in out and "left as they are" in out and "ECE 0.0000" in out
    assert (model_folder / "instruct_ner.json").read_bytes() == description

    over = tmp_path / "overconfident.jsonl"
    write_jsonl(over, [scored(s, r) for s in (0.95, 0.6) for r in (True, False, True, False) for _ in (0, 1)])
    assert main(["calibrate", "--adapter", str(model_folder), "--data", str(over)]) == 0
    out = capsys.readouterr().out
    saved = saved_calibration(model_folder)
    assert saved["method"] in ("temperature", "platt") and f"-> {saved['method']}" in out and "none 0.2750" in out
    assert by_hand(saved, 0.95) < 0.6 and abs(by_hand(saved, 0.6) - 0.5) < 0.1  # both near their accuracy, 0.5


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
