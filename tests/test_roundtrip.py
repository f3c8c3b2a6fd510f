"""gold tags -> rendered response -> parse == gold tags, for every response format (and every corpus)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import needs_shared_data, shared_files
from instruct_ner.examples import Example, labels_of, spans_to_tags
from instruct_ner.inference.grounding import parse_response
from instruct_ner.prompts.formats import FORMATS
from instruct_ner.prompts.readers import load_examples

FORMAT_NAMES = list(FORMATS)


def round_trip_failures(examples, fmt_name):
    fmt, labels = FORMATS[fmt_name], labels_of(e.tags for e in examples)
    return [e.id for e in examples if parse_response(fmt.render(e), e, labels, fmt_name).pred_tags != e.tags]


@needs_shared_data
@pytest.mark.parametrize("fmt_name", FORMAT_NAMES)
@pytest.mark.parametrize("path", shared_files(), ids=lambda p: p.name)
def test_every_sentence_of_every_shared_corpus_round_trips(path, fmt_name):
    examples, _ = load_examples(path)
    assert round_trip_failures(examples, fmt_name) == []


# Tokens as corpora have them: words, numbers, punctuation, accents, and markup characters ("|", "[", "]", "\\")
# that the inline format must escape; never whitespace.
TOKEN = st.one_of(
    st.sampled_from(
        ["EU", "U.S.", "l'", "Rossi", "rossi", "1.250,00", "-", ".", "none", "New", "York", "(", ")", "'s"]
        + ["|", "[", "]", "AT|T", "[1]", "x]", "\\", "a\\", "\\[", "LOC]", "[b"]
    ),
    st.text(alphabet=st.characters(categories=["L", "N", "P", "S"]), min_size=1, max_size=6),
)


@st.composite
def examples(draw):
    tokens = draw(st.lists(TOKEN, min_size=1, max_size=14))
    spans, position = [], 0
    while position < len(tokens):
        if draw(st.booleans()):
            end = draw(st.integers(position + 1, min(len(tokens), position + 3)))
            spans.append((draw(st.sampled_from(["PER", "ORG", "LOC", "MONEY"])), position, end))
            position = end
        else:
            position += 1
    return Example("h", tokens, spans_to_tags(spans, len(tokens)))


@settings(max_examples=400, deadline=None)
@pytest.mark.parametrize("fmt_name", FORMAT_NAMES)
@given(example=examples())
def test_random_tokens_and_tags_round_trip(fmt_name, example):
    response = FORMATS[fmt_name].render(example)
    assert parse_response(response, example, ["PER", "ORG", "LOC", "MONEY"], fmt_name).pred_tags == example.tags
