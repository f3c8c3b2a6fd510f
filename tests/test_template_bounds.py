"""Issue 43, item 16: every rendering is bounded in size and time; a template's own mistake is one line.

Each template here ran for a minute, took gigabytes or raised a traceback before the bounds. They are rendered
through `Template.render`, which is what `prepare`, `train`, `generate` and loading a saved adapter all call.
"""

from __future__ import annotations

import pytest

from instruct_ner.errors import TemplateError
from instruct_ner.prompts.templates import MAX_OUTPUT_CHARS, MAX_REPEAT, load_template

HEADER = "{#- instruct-ner\nresponse_format: entity_list\nlanguage: en\n-#}\n"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{{ 'x'|center(10**9) }}", f"filter center called with 1000000000 (over {MAX_REPEAT})"),
        ("{{ 'x'.center(10**9) }}", "called with 1000000000"),
        ("{{ lipsum(10**6) }}", "lipsum"),
        ("{% set x = 'x' * 99999 %}{% set y = [x] * 99999 %}{{ y|length }}", "operator *"),
        (
            "{% set ns = namespace(x='x') %}{% for i in range(40) %}{% set ns.x = ns.x ~ ns.x %}{% endfor %}",
            f"over {MAX_OUTPUT_CHARS}",
        ),
        ("{% set l = [1] %}{% for i in range(40) %}{% set _ = l.extend(l) %}{% endfor %}", "unsafe"),
        ("{{ 3|dictsort }}", "AttributeError"),
        ("{{ labels[99] }}", "has no element 99"),
        ("{{ 1 // 0 }}", "ZeroDivisionError"),
    ],
)
def test_runaway_or_broken_templates_are_one_line_errors(body, message):
    template = load_template("t", HEADER + body + "{{ labels }}")
    with pytest.raises(TemplateError, match="template t: ") as error:
        template.render(labels=[], examples=[])
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_slow_template_stops_at_the_deadline(monkeypatch):
    import instruct_ner.prompts.templates as templates

    ticks = iter(range(0, 10**6, 1))  # a fake clock: one second per reading, so the deadline passes by itself
    monkeypatch.setattr(templates.time, "monotonic", lambda: float(next(ticks)))
    template = load_template("t", HEADER + "{% for i in range(50) %}{{ i }}{% endfor %}{{ labels }}")
    with pytest.raises(TemplateError, match="rendering took longer than"):
        template.render(labels=[], examples=[])


def test_ordinary_templates_still_render():
    template = load_template("t", HEADER + "{{ 'x'|center(9) }}{% set ns = namespace(n=0) %}{{ labels|join(',') }}")
    assert template.render(labels=["PER", "LOC"], examples=[]) == "x    PER,LOC"
