"""Response formats as objects: the registry, a toy third format added by one class (render, parse through the real
parser, constrained decoding with a tiny Llama), and the per-row regex for external engines checked against the gold
responses of the bundled data and against each format's own decoding automaton."""

from __future__ import annotations

import random
import re
from enum import IntEnum

import pytest

from conftest import DATA
from instruct_ner.examples import DataError, Example, labels_of
from instruct_ner.inference.constrained import ConstraintFactory
from instruct_ner.inference.decoding import DecodeOptions, HFGenerator
from instruct_ner.inference.grounding import parse_response
from instruct_ner.prompts.formats import (
    FORMAT_NAMES,
    FORMATS,
    LabelTrie,
    Mention,
    ReadMentions,
    ResponseFormat,
    RowText,
    get_format,
    register_format,
    unregister_format,
)
from instruct_ner.prompts.formats.base import INF, ByteAutomaton, labels_regex, regex_escape, word_bounds
from instruct_ner.prompts.readers import ReaderOptions, load_examples

LABELS = ["LOC", "ORG", "PER"]


# --- a third format in one class ------------------------------------------------------------------------------------


class Toy(IntEnum):
    LAB, COLON, WORD, SPAN, DASH = range(20, 25)  # (LAB, node), (COLON, k), (WORD,), (SPAN, s, p), (DASH, k)


class LabelFirstFormat(ResponseFormat):
    """`LABEL: text` lines in order of appearance; `-` alone for no entity. No cursor, no escapes."""

    name = "label_first"
    description = "one entity per line as `LABEL: text`; `-` if there is none"

    def render(self, example: Example) -> str:
        lines = [f"{e.label}: {' '.join(e.text.split())}" for e in example.entities]
        return "\n".join(lines) or "-"

    def read(self, response: str, text: str | None = None, hit_limit: bool = False) -> ReadMentions:
        read = ReadMentions()
        lines = [(n, line.strip()) for n, line in enumerate(response.split("\n"), start=1) if line.strip()]
        read.lines = len(lines)
        for position, (number, line) in enumerate(lines):
            label, colon, entity = line.partition(": ")
            if line == "-":
                read.no_entity_marker = True
            elif colon and label and entity.strip():
                read.mentions.append(Mention(entity.strip(), label, number))
            elif hit_limit and position == len(lines) - 1:
                read.truncated += 1
            else:
                read.malformed += 1
        return read

    def automaton(self, example, labels, tokens, end_string=b""):
        return LabelFirstAutomaton(RowText.from_example(example.text, example.offsets, True), labels)

    def new_token_bound(self, text, text_tokens, words=None, label_tokens=2):
        return text_tokens + (label_tokens + 3) * ((text_tokens if words is None else words) + 2)

    def regex(self, example, labels):
        text, starts, ends = word_bounds(example.text, example.offsets, True)
        spans = "|".join(regex_escape(text[s:e]) for s in starts for e in ends if e > s)
        line = f"{labels_regex(labels)}: (?:{spans})"
        return f"(?:{line}(?:\\n{line})*|-)" if spans else "-"


class LabelFirstAutomaton(ByteAutomaton):
    def __init__(self, text: RowText, labels: LabelTrie):
        super().__init__()
        self.t, self.labels = text, labels
        self.is_start, self.is_end = text.marks()
        n = len(text.data)
        self.end_after = [INF] * (n + 2)  # the nearest word end > p
        for p in range(n - 1, -1, -1):
            self.end_after[p] = p + 1 if self.is_end[p + 1] else self.end_after[p + 1]
        self.word = min((self.end_after[s] - s for s in text.starts), default=INF)
        self.start = self.normalise({(Toy.LAB, 0), (Toy.DASH, 0)} if text.starts else {(Toy.DASH, 0)})

    def thread_cost(self, th):
        kind = th[0]
        if kind == Toy.LAB:
            return self.labels.rest[th[1]] + 2 + self.word
        if kind == Toy.COLON:
            return 2 - th[1] + self.word
        if kind == Toy.WORD:
            return self.word
        if kind == Toy.SPAN:
            s, p = th[1], th[2]
            return 0 if p > s and self.is_end[p] else self.end_after[p] - p
        return 1 - th[1]

    def thread_step(self, th, b, out):
        kind, data = th[0], self.t.data
        if kind == Toy.LAB:
            if (child := self.labels.children[th[1]].get(b)) is not None:
                out.add((Toy.LAB, child))
            if b == ord(":") and self.labels.terminal[th[1]]:
                out.add((Toy.COLON, 1))
        elif kind == Toy.COLON and b == 0x20:
            out.add((Toy.WORD,))
        elif kind == Toy.WORD:
            out.update((Toy.SPAN, s, s + 1) for s in self.t.starts if s < len(data) and data[s] == b)
        elif kind == Toy.SPAN:
            s, p = th[1], th[2]
            if p < len(data) and data[p] == b:
                out.add((Toy.SPAN, s, p + 1))
            if b == 0x0A and p > s and self.is_end[p]:
                out.add((Toy.LAB, 0))
        elif kind == Toy.DASH and th[1] == 0 and b == ord("-"):
            out.add((Toy.DASH, 1))

    def thread_bytes(self, th, candidates):
        kind, data = th[0], self.t.data
        if kind == Toy.LAB:
            candidates.update(self.labels.children[th[1]], [ord(":")])
        elif kind == Toy.COLON:
            candidates.add(0x20)
        elif kind == Toy.WORD:
            candidates.update(data[s] for s in self.t.starts if s < len(data))
        elif kind == Toy.SPAN:
            candidates.update([data[th[2]]] if th[2] < len(data) else [], [0x0A])
        elif th[1] == 0:
            candidates.add(ord("-"))


@pytest.fixture
def label_first():
    response_format = register_format(LabelFirstFormat())
    yield response_format
    unregister_format(response_format.name)


@pytest.fixture(scope="module")
def model_and_tokenizer(tiny_llama):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_llama).eval(), AutoTokenizer.from_pretrained(tiny_llama)


def sentence(text: str, tags: list[str] | None = None) -> Example:
    tokens = text.split()
    return Example("x", tokens, tags or ["O"] * len(tokens))


GOLD = sentence("Peter Blackburn of the EU met Peter in Paris .", "B-PER I-PER O O B-ORG O B-PER O B-LOC O".split())


def test_the_registry_names_every_format_and_only_those(label_first):
    assert "label_first" in FORMAT_NAMES and get_format("label_first") is label_first
    assert set(FORMAT_NAMES) == {"entity_list", "inline", "label_first"} == set(FORMATS)
    unregister_format("label_first")
    assert "label_first" not in FORMAT_NAMES
    with pytest.raises(DataError, match="unknown response format 'label_first'; expected one of entity_list, inline"):
        get_format("label_first")


def test_a_new_format_renders_and_parses_through_the_real_parser(label_first):
    response = label_first.render(GOLD)
    assert response == "PER: Peter Blackburn\nORG: EU\nPER: Peter\nLOC: Paris"
    parsed = parse_response(response, GOLD, LABELS, "label_first")
    assert parsed.pred_tags == GOLD.tags and parsed.diagnostics.malformed == 0
    odd = parse_response("PER: Peter\nnot a line\nORG: Bolton", GOLD, LABELS, "label_first")
    assert (odd.diagnostics.malformed, odd.diagnostics.hallucinated) == (1, 1)
    assert odd.pred_tags[:2] == ["B-PER", "O"]
    nothing = parse_response("-", GOLD, LABELS, "label_first")
    assert nothing.diagnostics.no_entity_marker and set(nothing.pred_tags) == {"O"}


def test_a_new_format_constrains_decoding(label_first, model_and_tokenizer):
    """A tiny random Llama writes only what the toy format allows: its own regex matches every output, and the
    real parser finds nothing hallucinated, malformed or unlabelled."""
    model, tokenizer = model_and_tokenizer
    factory = ConstraintFactory(tokenizer, "label_first", LABELS, [tokenizer.eos_token_id])
    row = factory.row(GOLD)
    for token in tokenizer(label_first.render(GOLD), add_special_tokens=False)["input_ids"]:
        assert row.allows(token, 1000) is not None
        row.advance(token)
    assert row.accepting()
    assert factory.row(GOLD).allows(tokenizer.convert_tokens_to_ids("EU"), 1000) is None  # a label comes first

    examples = [GOLD, sentence("Japan beat Syria 2-1 ."), sentence("Nothing happened .")]
    prompts = [[{"role": "user", "content": f"Find {', '.join(LABELS)} in: {e.text}"}] for e in examples]
    options = DecodeOptions("label_first", LABELS, constrain=True)
    generator = HFGenerator(model, tokenizer, "chat", share_prefix=False, options=options)
    free = HFGenerator(model, tokenizer, "chat", share_prefix=False, options=DecodeOptions("label_first", LABELS))
    limits = [30] * len(examples)
    unconstrained = [g.text for g in free.generate(prompts, limits, examples)]
    for generated, e, loose in zip(generator.generate(prompts, limits, examples), examples, unconstrained):
        assert re.fullmatch(label_first.regex(e, LABELS), generated.text), (generated.text, loose)
        diagnostics = parse_response(generated.text, e, LABELS, "label_first").diagnostics
        assert diagnostics.hallucinated == diagnostics.malformed == diagnostics.unknown_label == 0
        assert not generated.hit_limit
    assert not any(re.fullmatch(label_first.regex(e, LABELS), t) for e, t in zip(examples, unconstrained))


# --- the regex for external engines ---------------------------------------------------------------------------------


def bundled_examples() -> dict[str, list[Example]]:
    found = {p.name: load_examples(p)[0] for p in sorted((DATA / "conll_en").glob("*.txt"))}
    for path in sorted((DATA / "emails_it").glob("*.csv")):
        found[f"emails_it/{path.name}"] = load_examples(path, ReaderOptions(id_column="id"))[0]
    return found


@pytest.fixture(scope="module")
def bundled():
    return bundled_examples()


@pytest.mark.parametrize("response_format", ["entity_list", "inline"])
def test_every_gold_response_matches_its_rows_regex(bundled, response_format):
    fmt = get_format(response_format)
    for name, examples in bundled.items():
        labels = labels_of(e.tags for e in examples)
        failed = [e.id for e in examples if not re.fullmatch(fmt.regex(e, labels), fmt.render(e))]
        assert not failed, (name, failed[:5])


@pytest.mark.parametrize(
    "response_format, response",
    [
        ("entity_list", "Peter Blackburn | PER\nBolton | LOC"),  # a span that is not in the text
        ("entity_list", "Peter Black | PER"),  # a span that cuts a word
        ("entity_list", "Peter | PERSON"),  # a label not in the set
        ("entity_list", "Peter | PER\nEU ORG"),  # a line without its separator
        ("entity_list", "Peter | PER\n\nEU | ORG"),  # an empty line
        ("entity_list", "Peter | PER | LOC"),  # two labels
        ("inline", "[Peter Blackburn | PER] of the [EU | ORG] met Peter in Bolton ."),  # the text not copied
        ("inline", "[Peter Blackburn | PER] of the [EU | ORG] met [Pet | PER]er in Paris ."),  # cuts a word
        ("inline", "[Peter Blackburn | PERSON] of the EU met Peter in Paris ."),  # a label not in the set
        ("inline", "[Peter Blackburn | PER of the EU met Peter in Paris ."),  # never closed
        ("inline", "Peter Blackburn | PER] of the EU met Peter in Paris ."),  # never opened
        ("inline", "[[Peter | PER] Blackburn | PER] of the EU met Peter in Paris ."),  # nested
    ],
)
def test_the_regex_rejects_what_the_format_does_not_allow(response_format, response):
    fmt = get_format(response_format)
    assert fmt.regex(GOLD, LABELS) and not re.fullmatch(fmt.regex(GOLD, LABELS), response)
    assert re.fullmatch(fmt.regex(GOLD, LABELS), fmt.render(GOLD))


class EveryByte:
    """A vocabulary of single bytes (enough for an automaton's costs)."""

    def prefixes(self, data: bytes, start: int) -> list[tuple[int, int]]:
        return [(0, start + 1)] if start < len(data) else []


@pytest.mark.parametrize("response_format", ["entity_list", "inline"])
@pytest.mark.parametrize("separator", [" ", "\n", "  "])
def test_the_regex_and_the_decoding_automaton_agree(response_format, separator):
    """Random walks of the automaton (what constrained decoding may write) all match the regex; a one-character
    edit of one matches the regex exactly when the automaton accepts it too (except what the regex cannot say:
    order and occurrence numbers, which single edits of these texts do not reach)."""
    words = ["Peter", "Blackburn", "AT|T", "[x]", "a\\b", "EU", "dell’Ufficio", "Peter", "."]
    text = separator.join(words)
    offsets, position = [], 0
    for word in words:
        offsets.append((position, position + len(word)))
        position += len(word) + len(separator)
    example = Example("x", words, ["O"] * len(words), text, offsets)
    fmt, rng = get_format(response_format), random.Random(0)
    pattern = re.compile(fmt.regex(example, LABELS))
    automaton = fmt.automaton(example, LabelTrie(LABELS), EveryByte())

    def accepts(response: str) -> bool:
        state = automaton.start
        for b in response.encode():
            if not (state := automaton.step(state, b)):
                return False
        return automaton.accepting(state)

    walks = 0
    for _ in range(150):
        state, written = automaton.start, bytearray()
        while not (automaton.accepting(state) and rng.random() < 0.15) and len(written) < 150:
            options = [b for b in automaton.next_bytes(state) if automaton.step(state, b)]
            if not options:
                break
            b = rng.choice(options)
            state, written = automaton.step(state, b), written + bytes([b])
        if not automaton.accepting(state):
            continue
        walks += 1
        response = written.decode()
        assert pattern.fullmatch(response), response
        for _ in range(3):
            i = rng.randrange(len(response) + 1)
            edited = response[:i] + rng.choice("[]| \\\nxP") + response[i:] if rng.random() < 0.5 else None
            edited = edited if edited is not None else response[:i] + response[i + 1 :]
            assert bool(pattern.fullmatch(edited)) == accepts(edited), edited
    assert walks > 50
