import pytest

from instruct_ner.examples import Example
from instruct_ner.prompts.templates import PromptBuilder, TemplateError, available_templates, load_template

EXAMPLE = Example("1", ["EU", "rejects", "German", "call"], ["B-ORG", "O", "B-MISC", "O"])


def test_shipped_templates_and_latest_version():
    assert set(available_templates()) >= {"ner-list.en.v1", "ner-list.it.v1", "ner-inline.en.v1", "ner-inline.it.v1"}
    assert load_template("ner-list.en").name == "ner-list.en.v1"


@pytest.mark.parametrize("name", ["ner-list.en.v1", "ner-list.it.v1", "ner-inline.en.v1", "ner-inline.it.v1"])
def test_instruction_style_is_alpaca_and_the_prefix_is_shared(name):
    builder = PromptBuilder(load_template(name), ["MISC", "ORG"])
    record = builder.build(EXAMPLE)
    assert record["prompt"].startswith(("Below is an instruction", "Di seguito è riportata un'istruzione"))
    assert record["prompt"].endswith(("### Response:\n", "### Risposta:\n"))
    assert "EU rejects German call" in record["prompt"]
    other = builder.build(Example("2", ["Ciao"], ["O"]))["prompt"]
    prefix = record["prompt"][: record["prompt"].index("EU rejects")]
    assert other.startswith(prefix) and "ORG" in prefix


def test_response_formats():
    assert PromptBuilder(load_template("ner-list.en"), ["MISC", "ORG"]).build(EXAMPLE)["response"] == (
        "EU | ORG\nGerman | MISC"
    )
    inline = PromptBuilder(load_template("ner-inline.en"), ["MISC", "ORG"]).build(EXAMPLE)["response"]
    assert inline == "[EU | ORG] rejects [German | MISC] call"
    empty = Example("2", ["Grazie"], ["O"])
    assert PromptBuilder(load_template("ner-list.it"), ["PER"]).build(empty)["response"] == "none"


def test_chat_style_messages():
    record = PromptBuilder(load_template("ner-list.it"), ["ORG"], style="chat").build(EXAMPLE)
    assert [m["role"] for m in record["messages"]] == ["system", "user"]
    assert record["messages"][1]["content"] == "EU rejects German call"
    assert "Estrai le entità" in record["messages"][0]["content"] and "ORG" in record["messages"][0]["content"]


def test_definitions_override_and_few_shot():
    shots = [{"text": "Mario paga", "response": "Mario | PER"}]
    builder = PromptBuilder(load_template("ner-list.en"), ["PER"], definitions={"PER": "a person"}, few_shot=shots)
    assert "- PER: a person" in builder.instruction
    assert "Text: Mario paga\nAnswer:\nMario | PER" in builder.instruction


def test_builder_round_trips_through_its_saved_form():
    builder = PromptBuilder(load_template("ner-inline.it"), ["LOC", "PER"], "chat", {"LOC": "luoghi"})
    rebuilt = PromptBuilder.from_dict(builder.to_dict())
    assert rebuilt.build(EXAMPLE) == builder.build(EXAMPLE)


def test_user_template_file(tmp_path):
    path = tmp_path / "mine.jinja"
    path.write_text(
        "{#- instruct-ner\nresponse_format: inline\nlanguage: en\n-#}\n"
        "Tag {{ labels|map(attribute='name')|join(', ') }}."
    )
    builder = PromptBuilder(load_template(str(path)), ["ORG", "MISC"])
    assert "Tag ORG, MISC." in builder.build(EXAMPLE)["prompt"]
    assert builder.response_format == "inline"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("Tag {{ labels }}", "no header"),
        ("{#- instruct-ner\nresponse_format: json\n-#}{{ labels }}", "response_format must be one of"),
        (
            "{#- instruct-ner\nresponse_format: inline\n-#}Tag things.",
            "does not use the required variable(s) ['labels']",
        ),
        (
            "{#- instruct-ner\nresponse_format: inline\n-#}\n{% for x in labels %}",
            "line 4: Unexpected end of template",
        ),
    ],
)
def test_bad_user_templates_fail_clearly(tmp_path, source, message):
    path = tmp_path / "bad.jinja"
    path.write_text(source)
    with pytest.raises(TemplateError) as error:
        load_template(str(path))
    assert str(error.value).startswith(f"template {path}") and message in str(error.value)


def test_templates_are_sandboxed(tmp_path):
    path = tmp_path / "evil.jinja"
    path.write_text("{#- instruct-ner\nresponse_format: inline\n-#}{{ labels.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(TemplateError, match="unsafe|access"):
        PromptBuilder(load_template(str(path)), ["ORG"])


def test_unknown_template_lists_the_shipped_ones():
    with pytest.raises(TemplateError, match="unknown template 'ner-json'; shipped templates: .*ner-inline.en.v1"):
        load_template("ner-json")
