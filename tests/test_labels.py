"""Issue 43, item 8: one label validation; every accepted label round-trips through both formats and the parser."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from instruct_ner.errors import DataError
from instruct_ner.examples import Example
from instruct_ner.inference.grounding import parse_response
from instruct_ner.prompts.formats import get_format
from instruct_ner.prompts.labels import check_label, check_labels


@pytest.mark.parametrize(
    "labels",
    [["PER", "per"], "PER", ["PER", None], ["O"], ["LOC X"], ["A|B"], ["[LOC]"], ["(LOC)"], ["LOC\n"], [""], [3]],
)
def test_bad_label_sets_are_refused(labels):
    with pytest.raises(DataError):
        check_labels(labels, "--labels")


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=12))
def test_every_accepted_label_reads_back_as_itself_in_both_formats(label):
    try:
        check_label(label, "test")
    except DataError:
        return
    example = Example("x", ["Mario", "vive", "a", "Roma"], ["B-" + label, "O", "O", "B-LOC"])
    labels = check_labels(sorted({label, "LOC"}, key=str), "test") if label.upper() != "LOC" else [label]
    if label.upper() == "LOC":
        example = Example("x", ["Mario", "vive", "a", "Roma"], ["B-" + label, "O", "O", "O"])
    for name in ("entity_list", "inline"):
        response = get_format(name).render(example)
        parsed = parse_response(response, example, labels, name)
        assert parsed.pred_tags == example.tags, (name, label, response)


def test_case_variants_in_data_are_refused_at_read_time(tmp_path):
    from instruct_ner.prompts.readers import load_examples

    path = tmp_path / "mixed.txt"
    path.write_text("Mario B-PER\nRossi I-PER\n\nLuigi B-per\n", encoding="utf-8")
    with pytest.raises(DataError, match="'PER' and 'per' differ only by case"):
        load_examples(path)


def test_a_label_with_a_trailing_newline_is_refused_on_the_command_line(tmp_path):
    from instruct_ner.prompts.readers import ReaderOptions, load_examples

    path = tmp_path / "a.txt"
    path.write_text("Mario B-PER\n", encoding="utf-8")
    with pytest.raises(DataError, match="--labels"):
        load_examples(path, ReaderOptions(labels=["PER\n"]))
