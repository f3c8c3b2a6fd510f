"""Versioned jinja2 prompt templates, rendered in a sandbox, and the `PromptBuilder` that turns an example
into an instruction/response pair (instruction style) or chat messages plus a response (chat style).

A template file (`prompts/templates/NAME.LANG.vN.jinja`, or any file a user passes) renders the
*instruction*: the task, the label list with definitions and optional few-shot examples. It never sees
the input text, so every prompt of a run starts with the same instruction and its encoding can be
shared. Its header comment declares the response format and language:

    {#- instruct-ner
    response_format: entity_list
    language: en
    -#}

Styles:
- `instruction`: the Alpaca wrapper (`alpaca.LANG.v1.jinja`): instruction, then `### Input:` with the
  text, then `### Response:`; the record gets `prompt` (a string).
- `chat`: `messages` = a system turn (the instruction) and a user turn (the text); the response is the
  assistant turn. The tokenizer's chat template turns them into text at training and generation time.

Released templates are never edited: a change is a new version (`ner-list.en.v2.jinja`). A name without a
version (`ner-list.en`) means its latest version. This module does not tokenise or call a model.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import jinja2.meta
import yaml
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace

from instruct_ner.errors import DataError, TemplateError  # noqa: F401  (TemplateError re-exported)
from instruct_ner.examples import Example
from instruct_ner.prompts.formats import FORMAT_NAMES, get_format
from instruct_ner.prompts.labels import label_entries
from instruct_ner.textio import read_text

TEMPLATE_DIR = Path(__file__).parent / "templates"
HEADER = re.compile(r"\A\{#-?\s*instruct-ner\s*\n(.*?)-?#\}", re.DOTALL)
REQUIRED_VARIABLES = {"labels"}
STYLES = ("instruction", "chat")
MAX_RANGE_ITEMS = 100_000  # items all `range` calls of one rendering may produce together
MAX_OUTPUT_CHARS = 1_000_000  # characters one rendering may produce
MAX_REPEAT = 100_000  # the largest `"x" * n` or `[x] * n`


MAX_RENDER_SECONDS = 5.0  # wall time one rendering may take (checked at every call, filter and output piece)


def _weight(value, depth: int = 0) -> int:
    """Characters and items a value would take if written out (a list holding one string 99,999 times weighs
    99,999 times that string). Example: _weight(["ab", ["c"]]) -> 2 + 2 + 1 + 1 == 6"""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list | tuple | dict) and depth < 8:
        items = value.items() if isinstance(value, dict) else value
        return len(value) + sum(_weight(item, depth + 1) for item in items)
    return 1


def _check_size(value, what: str):
    """`value` unless writing it out would take more than MAX_OUTPUT_CHARS (SecurityError)."""
    if isinstance(value, str | list | tuple | dict) and (weight := _weight(value)) > MAX_OUTPUT_CHARS:
        raise jinja2.exceptions.SecurityError(f"{what} built a value of {weight} characters (over {MAX_OUTPUT_CHARS})")
    return value


def _check_arguments(arguments, what: str) -> None:
    """No integer argument above MAX_REPEAT: `"x".center(10**9)`, `x|indent(10**9)`, `lipsum(10**6)`."""
    for value in arguments:
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_REPEAT:
            raise jinja2.exceptions.SecurityError(f"{what} called with {value} (over {MAX_REPEAT})")


class _Deadline:
    """The wall-time budget of one rendering (a template from a downloaded adapter is rendered at load time)."""

    def __init__(self, seconds: float = MAX_RENDER_SECONDS):
        self.end = time.monotonic() + seconds

    def check(self) -> None:
        if time.monotonic() > self.end:
            raise jinja2.exceptions.SecurityError(f"rendering took longer than {MAX_RENDER_SECONDS:g} s")


_deadline = threading.local()  # the rendering under way in this thread


def _check_deadline() -> None:
    current = getattr(_deadline, "value", None)
    if current is not None:
        current.check()


class _BoundedNamespace(Namespace):
    """`namespace()` whose attributes cannot grow past MAX_OUTPUT_CHARS (`ns.x = ns.x ~ ns.x` in a loop)."""

    def __setitem__(self, name, value):
        _check_deadline()
        super().__setitem__(name, _check_size(value, "namespace assignment"))


def _bounded_filter(name: str, function):
    def bounded(*arguments, **keywords):
        _check_deadline()
        _check_arguments([*arguments[1:], *keywords.values()], f"filter {name}")
        return _check_size(function(*arguments, **keywords), f"filter {name}")

    for attribute in ("jinja_pass_arg",):  # pass_context / pass_environment markers stay on the wrapper
        if hasattr(function, attribute):
            setattr(bounded, attribute, getattr(function, attribute))
    return bounded


class _LimitedSandbox(ImmutableSandboxedEnvironment):
    """The immutable jinja2 sandbox (no `list.append`/`extend`: a value cannot double in place), plus bounds: `*` and
    `**`, integer arguments of every call and filter, the size of every value they return and every namespace
    assignment, and the wall time of the rendering."""

    intercepted_binops = frozenset({"*", "**", "+"})

    def __init__(self, **options):
        super().__init__(**options)
        self.filters = {name: _bounded_filter(name, f) for name, f in self.filters.items()}
        self.globals.pop("lipsum", None)  # a lorem-ipsum generator has no place in a prompt
        self.globals["namespace"] = _BoundedNamespace

    def call_binop(self, context, operator, left, right):
        _check_deadline()
        if operator == "*" and any(isinstance(x, str | list | tuple) for x in (left, right)):
            count = right if isinstance(left, str | list | tuple) else left
            if isinstance(count, int) and count > MAX_REPEAT:
                raise jinja2.exceptions.SecurityError(f"repetition by {count} exceeds {MAX_REPEAT}")
        if operator == "**" and isinstance(right, int | float) and abs(right) > 100:
            raise jinja2.exceptions.SecurityError(f"exponent {right} exceeds 100")
        return _check_size(super().call_binop(context, operator, left, right), f"operator {operator}")

    def call(self, __context, __obj, *arguments, **keywords):
        _check_deadline()
        if not getattr(__obj, "budgeted", False):  # `range` has its own budget (MAX_RANGE_ITEMS in all)
            _check_arguments([*arguments, *keywords.values()], f"call of {getattr(__obj, '__name__', 'a function')}")
        return _check_size(super().call(__context, __obj, *arguments, **keywords), "a call")


def _budgeted_range():
    """A `range` for one rendering: all its ranges together yield at most MAX_RANGE_ITEMS items."""
    budget = [MAX_RANGE_ITEMS]

    def limited_range(*arguments):
        values = range(*arguments)
        budget[0] -= len(values)
        if budget[0] < 0:
            raise jinja2.exceptions.SecurityError(f"ranges of more than {MAX_RANGE_ITEMS} items in all")
        return values

    limited_range.budgeted = True
    return limited_range


_environment = _LimitedSandbox(undefined=jinja2.StrictUndefined, autoescape=False)


@dataclass(frozen=True)
class Template:
    """A loaded template: its name (or path), source text, response format and language."""

    name: str
    source: str
    response_format: str
    language: str

    def render(self, **context) -> str:
        """The rendered text; a template that loops too long or writes too much raises TemplateError."""
        outer = getattr(_deadline, "value", None)
        _deadline.value = _Deadline()
        try:
            pieces, length = [], 0
            for piece in _environment.from_string(self.source).generate(**context, range=_budgeted_range()):
                _check_deadline()
                length += len(piece)
                if length > MAX_OUTPUT_CHARS:
                    raise TemplateError(f"template {self.name}: output longer than {MAX_OUTPUT_CHARS} characters")
                pieces.append(piece)
            return "".join(pieces).strip()
        except jinja2.TemplateError as error:
            raise TemplateError(f"template {self.name}: {error}") from error
        except TemplateError:
            raise
        except (
            OverflowError,
            MemoryError,
            RecursionError,
            TypeError,
            ValueError,
            AttributeError,
            KeyError,
            IndexError,
            ArithmeticError,
        ) as error:  # a template's own mistake (a filter applied to an int, say): one line, never a traceback
            raise TemplateError(f"template {self.name}: {type(error).__name__}: {error}") from error
        finally:
            _deadline.value = outer


def available_templates() -> list[str]:
    """Names of the shipped instruction templates, e.g. ["ner-inline.en.v1", "ner-list.en.v1", ...]."""
    return sorted(p.name.removesuffix(".jinja") for p in TEMPLATE_DIR.glob("ner-*.jinja"))


def resolve_template_path(name_or_path: str) -> Path:
    """A shipped template by name (latest version if none is given) or a user's .jinja file."""
    path = Path(name_or_path)
    if path.suffix == ".jinja" or path.exists():
        if not path.exists():
            raise TemplateError(f"{path}: template file not found")
        return path
    if re.search(r"\.v\d+$", name_or_path):
        candidate = TEMPLATE_DIR / f"{name_or_path}.jinja"
        if candidate.exists():
            return candidate
    else:
        versions = sorted(
            TEMPLATE_DIR.glob(f"{name_or_path}.v*.jinja"),
            key=lambda p: int(re.search(r"\.v(\d+)\.jinja$", p.name).group(1)),
        )
        if versions:
            return versions[-1]
    raise TemplateError(f"unknown template {name_or_path!r}; shipped templates: {', '.join(available_templates())}")


def load_template(name_or_path: str, source: str | None = None) -> Template:
    """Load and check a template: header present, known response format, required variables used.

    `source` rebuilds a template saved beside an adapter without needing its file.
    """
    if source is None:
        path = resolve_template_path(name_or_path)
        try:
            source = read_text(path, "template")
        except DataError as error:
            raise TemplateError(str(error)) from None
        name = path.name.removesuffix(".jinja") if path.parent == TEMPLATE_DIR else str(path)
    else:
        name = name_or_path
    header = HEADER.match(source)
    if header is None:
        raise TemplateError(
            f"template {name}: no header; start it with '{{#- instruct-ner' and lines "
            "'response_format: entity_list|inline' and 'language: en|it', then '-#}'"
        )
    try:
        meta = yaml.safe_load(header.group(1)) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f", line {mark.line + 2}" if mark is not None else ""  # +1: 0-based, +1: the `{#- instruct-ner` line
        problem = getattr(error, "problem", None) or type(error).__name__
        raise TemplateError(f"template {name}{line}: the header is not valid YAML ({problem})") from None
    if not isinstance(meta, dict):
        raise TemplateError(f"template {name}: the header must be YAML lines 'key: value', found {meta!r}")
    response_format = meta.get("response_format")
    if response_format not in FORMAT_NAMES:
        names = ", ".join(FORMAT_NAMES)
        raise TemplateError(f"template {name}: response_format must be one of {names}, not {response_format!r}")
    try:
        variables = jinja2.meta.find_undeclared_variables(_environment.parse(source))
    except jinja2.TemplateSyntaxError as error:
        raise TemplateError(f"template {name}, line {error.lineno}: {error.message}") from error
    if missing := REQUIRED_VARIABLES - variables:
        raise TemplateError(f"template {name} does not use the required variable(s) {sorted(missing)}")
    return Template(name, source, response_format, str(meta.get("language", "en")))


@dataclass
class PromptBuilder:
    """Everything that decides the exact prompt: template, style, labels, definitions, few-shot examples.

    `to_dict()` is saved beside a trained adapter and `from_dict()` rebuilds the identical builder.
    """

    template: Template
    labels: list[str]
    style: str = "instruction"
    definitions: dict[str, str] = field(default_factory=dict)
    few_shot: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ValueError(f"style must be one of {STYLES}, not {self.style!r}")
        if not self.labels:
            raise ValueError("the label set is empty; give --labels or data with entities")
        self.format = get_format(self.template.response_format)
        self.instruction = self.template.render(
            labels=label_entries(self.labels, self.template.language, self.definitions),
            examples=self.few_shot,
            language=self.template.language,
        )
        if self.style == "instruction":
            wrapper = load_wrapper(self.template.language)
            # The prefix shared by every prompt: render with a marker and cut there.
            marker = "\x00INPUT\x00"
            full = wrapper.render(instruction=self.instruction, input=marker)
            self._before_input, self._after_input = full.split(marker)

    @property
    def response_format(self) -> str:
        return self.template.response_format

    def prompt_text(self, text: str) -> str:
        return f"{self._before_input}{text}{self._after_input}\n"

    def build(self, example: Example) -> dict:
        """{"prompt": str} or {"messages": [...]}, plus "response", for one example."""
        record: dict = {}
        if self.style == "instruction":
            record["prompt"] = self.prompt_text(example.text)
        else:
            record["messages"] = [
                {"role": "system", "content": self.instruction},
                {"role": "user", "content": example.text},
            ]
        record["response"] = self.format.render(example)
        return record

    def to_dict(self) -> dict:
        return {
            "template": self.template.name,
            "template_source": self.template.source,
            "style": self.style,
            "labels": self.labels,
            "definitions": self.definitions,
            "few_shot": self.few_shot,
        }

    @classmethod
    def from_dict(cls, saved: dict) -> PromptBuilder:
        template = load_template(saved["template"], source=saved.get("template_source"))
        return cls(
            template,
            saved["labels"],
            saved.get("style", "instruction"),
            saved.get("definitions", {}),
            saved.get("few_shot", []),
        )


def load_wrapper(language: str) -> Template:
    path = TEMPLATE_DIR / f"alpaca.{language}.v1.jinja"
    if not path.exists():
        path = TEMPLATE_DIR / "alpaca.en.v1.jinja"
    return Template(path.name.removesuffix(".jinja"), path.read_text(encoding="utf-8"), "entity_list", language)


def few_shot_examples(examples: list[Example], count: int, response_format: str) -> list[dict]:
    """The first `count` examples with at least one entity, as {text, response} for the template."""
    chosen = [e for e in examples if e.entities][:count]
    fmt = get_format(response_format)
    return [{"text": e.text, "response": fmt.render(e)} for e in chosen]


PROMPTING_TEMPLATE = "ner-list.en"  # `generate` without an adapter: label definitions help an untrained model
TRAINING_TEMPLATE = "ner-inline-compact.en"  # `prepare`, `train`: above the list at every learning-curve point


def template_field(default: str):
    """The `template` option with its default: prompting and training defaults differ (see above)."""
    return field(
        default=default,
        metadata={
            "help": f"shipped template name (default {default}; ner-list, ner-inline, ner-list-compact, "
            "ner-inline-compact, each .en or .it; latest version unless .vN is given) or your own .jinja file"
        },
    )


@dataclass
class PromptOptions:
    """How prompts are built; shared by `prepare`, `train` and `generate` (the first two default to
    `TRAINING_TEMPLATE`)."""

    template: str = template_field(PROMPTING_TEMPLATE)
    style: str = field(
        default="instruction",
        metadata={
            "help": "instruction (Alpaca-style prompt text) or chat (system/user messages)",
            "choices": list(STYLES),
        },
    )
    label_definitions: str | None = field(
        default=None, metadata={"help": "YAML/JSON file {LABEL: short definition} overriding the built-in ones"}
    )
    few_shot: int = field(default=0, metadata={"help": "number of worked examples put in the instruction"})
    few_shot_from: str | None = field(
        default=None, metadata={"help": "where few-shot examples come from (default: the data itself)"}
    )


def builder_from_options(options, examples: list[Example], few_shot_pool: list[Example] | None = None):
    """A PromptBuilder from PromptOptions (+ `labels`), with the label set taken from the data if not given."""
    from instruct_ner.examples import labels_of
    from instruct_ner.prompts.labels import load_definitions

    template = load_template(options.template)
    labels = list(options.labels) if options.labels else labels_of(e.tags for e in examples)
    if not labels:
        raise DataError(
            "--labels", "the data has no entity, so the label set is empty; name the labels, e.g. --labels PER ORG LOC"
        )
    shots = few_shot_examples(few_shot_pool or examples, options.few_shot, template.response_format)
    definitions = load_definitions(options.label_definitions, labels)
    return PromptBuilder(template, labels, options.style, definitions, shots)
