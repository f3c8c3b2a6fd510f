"""The parser: one named regression test per behaviour, with the response inline, plus fuzzing."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from instruct_ner.examples import Example
from instruct_ner.inference.grounding import parse_response

LABELS = ["LOC", "MISC", "ORG", "PER"]


def example(text: str) -> Example:
    tokens = text.split()
    return Example("t", tokens, ["O"] * len(tokens))


def tags(response, text, fmt="entity_list", labels=LABELS):
    return parse_response(response, example(text), labels, fmt).pred_tags


def diagnostics(response, text, fmt="entity_list", hit_limit=False):
    return parse_response(response, example(text), LABELS, fmt, hit_limit=hit_limit).diagnostics


def test_repeated_mentions_land_on_successive_occurrences():
    assert tags("Rossi | PER\nRossi | PER", "Rossi met Rossi .") == ["B-PER", "O", "B-PER", "O"]


def test_repeated_mention_listed_once_tags_only_the_first():
    assert tags("Rossi | PER", "Rossi met Rossi") == ["B-PER", "O", "O"]


def test_case_differences_are_tolerated():
    assert tags("leicestershire | ORG", "CRICKET - LEICESTERSHIRE WIN") == ["O", "O", "B-ORG", "O"]


def test_spacing_around_punctuation_is_tolerated():
    assert tags("U.S . | LOC", "the U.S. said") == ["O", "B-LOC", "O"]
    assert tags("Smith ( AP ) | PER", "Smith (AP) said") == ["B-PER", "I-PER", "O"]


def test_text_not_in_the_input_is_hallucinated_and_dropped():
    result = parse_response("Bonn | LOC\nBerlin | LOC", example("Berlin is big"), LABELS)
    assert result.pred_tags == ["B-LOC", "O", "O"]
    assert result.diagnostics.hallucinated == 1 and result.diagnostics.dropped[0]["reason"] == "hallucinated"


def test_unknown_labels_are_dropped_and_counted():
    d = diagnostics("Berlin | CITY\nBerlin | LOC", "Berlin Berlin")
    assert d.unknown_label == 1 and d.entities == 1


def test_label_spelling_and_long_names_are_normalised():
    assert tags("Mario | person\nRoma | Luogo\nACME | org", "Mario Roma ACME") == ["B-PER", "B-LOC", "B-ORG"]


def test_malformed_lines_are_counted():
    d = diagnostics("Here are the entities:\nBerlin | LOC\n", "Berlin")
    assert d.malformed == 1 and d.entities == 1


def test_overlapping_spans_keep_the_earlier_then_longer():
    result = parse_response(
        "New York | LOC\nYork City | ORG\nNew York City | LOC", example("New York City hall"), LABELS
    )
    assert result.pred_tags == ["B-LOC", "I-LOC", "I-LOC", "O"]
    assert result.diagnostics.overlaps_removed == 2


def test_empty_response():
    result = parse_response("", example("Berlin"), LABELS)
    assert result.pred_tags == ["O"] and result.diagnostics.empty_response


def test_no_entity_marker():
    d = diagnostics("none", "nothing here")
    assert d.no_entity_marker and d.malformed == 0 and d.entities == 0


def test_truncated_last_line_is_counted_not_malformed():
    d = diagnostics("Berlin | LOC\nPari", "Berlin and Paris", hit_limit=True)
    assert d.truncated == 1 and d.malformed == 0 and d.entities == 1


def test_a_last_line_without_separator_is_malformed_when_generation_ended_normally():
    d = diagnostics("Berlin | LOC\nPari", "Berlin and Paris")
    assert d.truncated == 0 and d.malformed == 1 and d.entities == 1


def test_numbered_entity_is_not_a_list_bullet():
    # "1. FC Cologne" is a football club: a leading "1." must not be stripped as list numbering.
    assert tags("1. FC Cologne | ORG", "1. FC Cologne 16 8") == ["B-ORG", "I-ORG", "I-ORG", "O", "O"]


def test_dash_bullets_are_tolerated():
    assert tags("- Berlin | LOC", "Berlin") == ["B-LOC"]


def test_occurrence_number_picks_the_stated_occurrence():
    assert tags("Stato | ORG | 2", "lo Stato e lo Stato") == ["O", "O", "O", "O", "B-ORG"]


def test_whole_token_match_is_preferred_over_a_substring():
    assert tags("US | LOC", "USA and US") == ["O", "O", "B-LOC"]


def test_mentions_listed_out_of_order_are_still_found():
    result = parse_response("Paris | LOC\nBerlin | LOC", example("Berlin and Paris"), LABELS)
    assert result.pred_tags == ["B-LOC", "O", "B-LOC"] and result.diagnostics.out_of_order == 1


def test_a_mention_inside_a_token_is_a_partial_word_not_an_entity():
    result = parse_response("Baghdad | LOC", example("Baghdad-based group"), LABELS)
    assert result.pred_tags == ["O", "O"] and result.diagnostics.partial_word == 1
    assert result.diagnostics.dropped == [{"text": "Baghdad", "reason": "partial_word"}]


def test_a_mention_inside_a_token_snaps_to_the_whole_token_when_asked():
    result = parse_response("Baghdad | LOC", example("Baghdad-based group"), LABELS, snap_partial=True)
    assert result.pred_tags == ["B-LOC", "O"] and result.diagnostics.snapped == 1


def test_pipe_inside_entity_text():
    assert tags("AT | T | ORG", "AT|T said") == ["B-ORG", "O"]


def test_inline_pins_offsets_so_an_earlier_plain_occurrence_is_not_taken():
    response = "Germany said [Germany | LOC] won"
    assert tags(response, "Germany said Germany won", fmt="inline") == ["O", "O", "B-LOC", "O"]


def test_inline_with_rewritten_text_falls_back_to_search():
    response = "[EU | ORG] rejected a call by [Germany | LOC]"
    assert tags(response, "EU rejects German call by Germany", fmt="inline") == ["B-ORG", "O", "O", "O", "O", "B-LOC"]


def test_inline_unclosed_bracket_is_truncation():
    d = diagnostics("[EU | ORG] rejects [Germ", "EU rejects German", fmt="inline", hit_limit=True)
    assert d.truncated == 1 and d.malformed == 0 and d.entities == 1


def test_inline_unclosed_bracket_without_the_token_limit_is_malformed():
    d = diagnostics("[EU | ORG] rejects [Germ", "EU rejects German", fmt="inline")
    assert d.truncated == 0 and d.malformed == 1 and d.entities == 1


def test_inline_text_copied_without_brackets_says_no_entity():
    # 663 of 3,453 CoNLL-2003 test responses of the 5,000-sentence inline model were counted "unreadable" for this
    d = diagnostics("Results of the second round .", "Results of the second round .", fmt="inline")
    assert d.no_entity_marker and d.malformed == 0 and d.entities == 0


def test_inline_prose_without_brackets_is_not_a_no_entity_answer():
    d = diagnostics("There are no entities in this sentence.", "Results of the second round .", fmt="inline")
    assert not d.no_entity_marker and d.entities == 0


def test_inline_unknown_label_is_counted():
    d = diagnostics("[EU | THING] rejects", "EU rejects", fmt="inline")
    assert d.unknown_label == 1 and d.entities == 0


ADVERSARIAL = [
    "|",
    "| | |",
    "[[[[",
    "]]] | ORG]",
    "\n\n\n",
    "none\nBerlin | LOC",
    "Berlin | ",
    " | LOC",
    "Berlin | LOC | 99",
    "Berlin | LOC | 0",
    "[ | LOC]",
    "[Berlin | LOC",
    "Berlin|LOC|LOC|LOC",
    "\x00\x01",
    "🙂 | PER",
    "B" * 5000,
    "Berlin | LOC\n" * 200,
    "[Berlin | LOC][Berlin | LOC]",
    "   \t  ",
    "Berlin\tLOC",
]


@pytest.mark.parametrize("fmt", ["entity_list", "inline"])
@pytest.mark.parametrize("response", ADVERSARIAL)
def test_adversarial_responses_never_crash(response, fmt):
    result = parse_response(response, example("Berlin and Berlin | LOC [x]"), LABELS, fmt)
    assert len(result.pred_tags) == 6


@settings(max_examples=300, deadline=None)
@given(
    response=st.text(alphabet=st.sampled_from(list("ab |[]\nLOCPERorg.-1 ")), max_size=80) | st.text(max_size=80),
    words=st.lists(st.sampled_from(["a", "b", "ab", "|", "[", "]", "LOC", "a.b", "-"]), min_size=1, max_size=12),
    fmt=st.sampled_from(["entity_list", "inline"]),
)
def test_fuzz_random_responses_give_one_valid_tag_per_token(response, words, fmt):
    ex = Example("f", words, ["O"] * len(words))
    result = parse_response(response, ex, LABELS, fmt)
    assert len(result.pred_tags) == len(words)
    previous = "O"
    for tag in result.pred_tags:
        assert tag == "O" or tag[:2] in ("B-", "I-")
        if tag.startswith("I-"):
            assert previous[2:] == tag[2:]  # always valid IOB2
        previous = tag


def test_a_whole_word_earlier_beats_a_partial_word_ahead():
    """Issue 43, item 10: `Rossi` listed after `Bianchi` is the `Rossi` before it, not part of a later `Rossini`."""
    example = Example("d", "Rossi e Bianchi e Rossini".split(), ["B-PER", "O", "B-PER", "O", "O"])
    result = parse_response("Bianchi | PER\nRossi | PER", example, ["PER"], "entity_list")
    assert result.pred_tags == ["B-PER", "O", "B-PER", "O", "O"]
    assert result.diagnostics.out_of_order == 1 and result.diagnostics.partial_word == 0
