"""The compact SFT templates: label names, no definitions, no preamble; the same response formats as the long ones."""

import pytest

from instruct_ner.examples import Example
from instruct_ner.prompts.templates import PromptBuilder, available_templates, load_template

LABELS = ["PER", "ORG", "LOC", "MISC"]


@pytest.mark.parametrize("kind", ["ner-list", "ner-inline"])
@pytest.mark.parametrize("language", ["en", "it"])
def test_compact_template_names_labels_only_and_keeps_the_format(kind, language):
    assert f"{kind}-compact.{language}.v1" in available_templates()
    compact, long = load_template(f"{kind}-compact.{language}"), load_template(f"{kind}.{language}")
    assert (compact.response_format, compact.language) == (long.response_format, long.language)
    definitions = {"PER": "people's names, surnames included"}
    built = PromptBuilder(compact, LABELS, "chat", definitions)
    assert "PER, ORG, LOC, MISC" in built.instruction and definitions["PER"] not in built.instruction
    assert len(built.instruction) < len(PromptBuilder(long, LABELS, "chat", definitions).instruction) / 3
    example = Example("x", ["Peter", "visits", "Rome"], ["B-PER", "O", "B-LOC"])
    assert built.build(example)["response"] == PromptBuilder(long, LABELS, "chat").build(example)["response"]


def test_compact_template_keeps_few_shot_examples():
    shots = [{"text": "Peter visits Rome", "response": "Peter | PER\nRome | LOC"}]
    built = PromptBuilder(load_template("ner-list-compact.en"), LABELS, "instruction", few_shot=shots)
    assert "Text: Peter visits Rome\nAnswer:\nPeter | PER\nRome | LOC" in built.instruction
