import json
import re

import pytest
from conlleval import conlleval_counts
from hypothesis import given, settings
from hypothesis import strategies as st

from instruct_ner.examples import DataError
from instruct_ner.inference.score import score_file, score_tags

# A worked case: a right entity, a wrong type, a boundary error, and a predicted entity opened with I-.
GOLD = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "I-ORG", "O"], ["O", "B-LOC"]]
PRED = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O", "O"], ["O", "I-LOC"]]


def test_worked_case_by_hand():
    # gold: PER, LOC, ORG, LOC = 4. predicted (lenient): PER, ORG, ORG, LOC = 4. correct: PER and the I-LOC one.
    result = score_tags(GOLD, PRED)
    assert result["micro"]["precision"] == pytest.approx(2 / 4)
    assert result["micro"]["recall"] == pytest.approx(2 / 4)
    assert result["per_type"]["LOC"] == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2})
    assert result["per_type"]["ORG"]["f1"] == 0.0 and result["per_type"]["PER"]["f1"] == 1.0
    assert result["macro"]["f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert result["token_accuracy"] == pytest.approx(6 / 9)


def test_worked_case_matches_the_reference_conlleval_algorithm():
    correct, guessed, gold = conlleval_counts(GOLD, PRED)
    assert (correct, guessed, gold) == (2, 4, 4)
    result = score_tags(GOLD, PRED)
    assert result["micro"]["precision"] == pytest.approx(correct / guessed)
    assert result["micro"]["recall"] == pytest.approx(correct / gold)


def test_strict_mode_drops_entities_opened_with_inside_tags():
    result = score_tags(GOLD, PRED, strict=True)
    assert result["micro"]["precision"] == pytest.approx(1 / 3)
    assert result["micro"]["recall"] == pytest.approx(1 / 4)
    assert result["micro"]["f1"] == pytest.approx(2 / 7)


TAG = st.sampled_from(["O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC"])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.integers(1, 8).flatmap(
            lambda n: st.tuples(st.lists(TAG, min_size=n, max_size=n), st.lists(TAG, min_size=n, max_size=n))
        ),
        min_size=1,
        max_size=5,
    )
)
def test_random_sequences_agree_with_conlleval(pairs):
    gold, pred = [g for g, _ in pairs], [p for _, p in pairs]
    correct, guessed, found = conlleval_counts(gold, pred)
    result = score_tags(gold, pred)
    precision = correct / guessed if guessed else 0.0
    recall = correct / found if found else 0.0
    if found or guessed:
        assert result["micro"]["precision"] == pytest.approx(precision)
        assert result["micro"]["recall"] == pytest.approx(recall)


def test_score_file_errors_name_the_line(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(
        json.dumps({"id": "1", "tags": ["O"], "pred_tags": ["O"]})
        + "\n"
        + json.dumps({"id": "2", "tags": ["O"]})
        + "\n"
    )
    with pytest.raises(
        DataError, match=rf"{path}:2: record has no 'pred_tags' list \(run parse, generate or tag first\)"
    ):
        score_file(path)
    path.write_text(json.dumps({"id": "1", "tags": ["O", "O"], "pred_tags": ["O"]}) + "\n")
    with pytest.raises(DataError, match=rf"{path}:1: 2 tags but 1 pred_tags"):
        score_file(path)


# Issue 43, item 9: length and tag checks belong to the scoring core, not to one caller.
@pytest.mark.parametrize(
    ("gold", "pred", "message"),
    [
        ([["B-PER"]], [["X-PER"]], "pred_tags[0] is 'X-PER'"),
        ([["B-PER", "O"]], [["B-PER"]], "2 tags but 1 pred_tags"),
        ([["B-PER"]], [["B-PER"], ["O"]], "1 gold sentences but 2 predicted"),
        ([["B-PER"]], ["B-PER"], "pred_tags must be a list of tags"),
        ("B-PER", [["B-PER"]], "gold must be a list of tag lists"),
    ],
)
def test_the_scorer_refuses_malformed_tags_and_lengths(gold, pred, message):
    with pytest.raises(DataError, match=re.escape(message)):
        score_tags(gold, pred)


def test_a_record_with_more_tags_than_tokens_is_refused(tmp_path):
    path = tmp_path / "p.jsonl"
    record = {"id": "a", "tokens": ["Peter", "Blair"], "tags": ["B-PER", "I-PER", "O", "O"]}
    path.write_text(json.dumps({**record, "pred_tags": record["tags"]}) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=re.escape("p.jsonl:1: 2 tokens but 4 tags")):
        score_file(path)
