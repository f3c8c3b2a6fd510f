import pytest
from hypothesis import given
from hypothesis import strategies as st

from instruct_ner.examples import (
    DataError,
    Example,
    iob1_to_iob2,
    iob2_error,
    join_tokens,
    spans_to_tags,
    tags_to_spans,
)


def test_spans_round_trip_on_a_literal_case():
    tags = ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC"]
    spans = tags_to_spans(tags)
    assert spans == [("PER", 0, 2), ("LOC", 3, 4), ("LOC", 4, 6)]
    assert spans_to_tags(spans, len(tags)) == tags


def test_lenient_reading_of_invalid_sequences_matches_conlleval():
    assert tags_to_spans(["O", "I-PER", "I-PER", "I-ORG"]) == [("PER", 1, 3), ("ORG", 3, 4)]


@pytest.mark.parametrize(
    ("tags", "position", "fragment"),
    [
        (["B-ORG", "I-PER"], 1, "I-PER follows B-ORG; expected B-PER, I-ORG or O"),
        (["I-PER"], 0, "starts the sentence"),
        (["O", "I-LOC"], 1, "starts an entity"),
        (["B-PER", "X"], 1, "invalid tag 'X'"),
        (["B-PER", "S-PER"], 1, "invalid tag"),
    ],
)
def test_iob2_errors_say_what_was_expected(tags, position, fragment):
    error = iob2_error(tags)
    assert error is not None and error[0] == position and fragment in error[1]


def test_iob1_to_iob2_repairs_an_inside_tag_that_opens_an_entity():
    assert iob1_to_iob2(["I-ORG", "O", "I-PER", "I-PER", "B-PER"]) == ["B-ORG", "O", "B-PER", "I-PER", "B-PER"]
    assert iob1_to_iob2(["B-PER", "I-PER", "I-LOC"]) == ["B-PER", "I-PER", "B-LOC"]


def test_example_text_and_offsets_from_tokens():
    example = Example("1", ["EU", "rejects", "German"], ["B-ORG", "O", "B-MISC"])
    assert example.text == "EU rejects German"
    assert [e.to_dict() for e in example.entities][1] == {
        "text": "German",
        "label": "MISC",
        "token_start": 2,
        "token_end": 3,
        "start": 11,
        "end": 17,
    }


def test_example_length_mismatch_names_the_source():
    with pytest.raises(DataError, match="f.txt:3: 2 tokens but 1 tags"):
        Example("1", ["a", "b"], ["O"], source="f.txt:3")


@given(st.lists(st.text(min_size=1, max_size=5).filter(lambda t: not any(c.isspace() for c in t)), max_size=8))
def test_join_tokens_offsets_point_at_tokens(tokens):
    text, offsets = join_tokens(tokens)
    assert [text[s:e] for s, e in offsets] == tokens
