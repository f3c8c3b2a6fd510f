"""Mention-replacement augmentation (prompts/augment.py): every copy of every shipped corpus keeps what an Example
promises and what its original had outside its entities, byte for byte; copies are seeded, labels stay per span,
copies=0 is the identity, examples without a mention to swap are not copied; the copies survive the JSONL writer
and reader unchanged; a property test over generated texts with odd spacing."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import DATA
from instruct_ner.examples import Example, iob2_error, spans_to_tags
from instruct_ner.jsonl import write_jsonl
from instruct_ner.prompts.augment import Mention, augment_examples, mention_pool, mentions_of, replace_mentions
from instruct_ner.prompts.readers import ReaderOptions, load_examples
from instruct_ner.prompts.tokenize import tokenize_with_offsets

CSV = ReaderOptions(format="csv", id_column=["id"])
CORPORA = {
    "conll_en/train": (DATA / "conll_en" / "train.txt", ReaderOptions()),
    "conll_en/test": (DATA / "conll_en" / "test.txt", ReaderOptions()),
    "emails_it/train": (DATA / "emails_it" / "train.csv", CSV),
    "emails_it/test": (DATA / "emails_it" / "test.csv", CSV),
    "emails_it_large/train": (DATA / "emails_it_large" / "train.csv", CSV),
    "emails_it_large/dev": (DATA / "emails_it_large" / "dev.csv", CSV),
    "emails_it_real": (DATA / "emails_it_real" / "emails.csv", CSV),
    "emails_it_real/sentences": (
        DATA / "emails_it_real" / "emails.csv",
        ReaderOptions(format="csv", id_column=["id"], split_sentences=True),
    ),
}


def corpus(name: str) -> list[Example]:
    path, options = CORPORA[name]
    examples, report = load_examples(path, options)
    assert examples and report.n_skipped == 0
    return examples


# The checks below read the examples with their own arithmetic, not the module's.


def spans(tags: list[str]) -> list[tuple[str, int, int]]:
    """(label, first token, last token + 1) of IOB2 tags, strictly."""
    found = []
    for i, tag in enumerate(tags):
        if tag.startswith("B-"):
            found.append([tag[2:], i, i + 1])
        elif tag.startswith("I-"):
            assert found and found[-1][0] == tag[2:] and found[-1][2] == i, (i, tags)
            found[-1][2] = i + 1
    return [tuple(span) for span in found]


def check_example(example: Example) -> None:
    """What every Example of a reader promises: one tag and one offset per token, each token the text at its
    offsets, in text order, only whitespace between tokens, valid IOB2, each entity its words as they stand."""
    assert len(example.tokens) == len(example.tags) == len(example.offsets)
    assert iob2_error(example.tags) is None
    previous = 0
    for token, (start, end) in zip(example.tokens, example.offsets):
        assert 0 <= previous <= start < end <= len(example.text)
        assert example.text[start:end] == token
        assert example.text[previous:start].strip() == ""  # nothing but whitespace between words
        previous = end
    assert example.text[previous:].strip() == ""
    for entity, (label, first, last) in zip(example.entities, spans(example.tags), strict=True):
        assert entity.label == label and (entity.token_start, entity.token_end) == (first, last)
        assert example.text[entity.start : entity.end] == entity.text
        assert "".join(entity.text.split()) == "".join(example.tokens[first:last])  # its words, spaced as they stand


def masked(example: Example) -> tuple[str, list[str], list[str]]:
    """The text with each entity cut down to one NUL, and the words and tags outside entities."""
    pieces, cursor, outside = [], 0, set(range(len(example.tokens)))
    for _, first, last in spans(example.tags):
        start, end = example.offsets[first][0], example.offsets[last - 1][1]
        pieces += [example.text[cursor:start], "\0"]
        cursor = end
        outside -= set(range(first, last))
    pieces.append(example.text[cursor:])
    return "".join(pieces), [example.tokens[i] for i in sorted(outside)], [example.tags[i] for i in sorted(outside)]


def surface(example: Example, first: int, last: int) -> tuple:
    """An entity as it stands: its words, their offsets from its start, its text (inner spacing included)."""
    start = example.offsets[first][0]
    offsets = tuple((s - start, e - start) for s, e in example.offsets[first:last])
    return tuple(example.tokens[first:last]), offsets, example.text[start : example.offsets[last - 1][1]]


def check_augmented(originals: list[Example], augmented: list[Example], copies: int) -> None:
    """The originals come first, unchanged; each copy is its original outside its entities, with each entity a
    mention of the same label from the originals that its original does not hold (unless none other exists)."""
    assert augmented[: len(originals)] == originals
    by_id = {example.id: example for example in originals}
    pool: dict[str, set] = {}
    for example in originals:
        for label, first, last in spans(example.tags):
            pool.setdefault(label, set()).add(surface(example, first, last))
    counts: dict[str, int] = {}
    for copy in augmented[len(originals) :]:
        check_example(copy)
        original_id, _, k = copy.id.rpartition("+aug")
        original = by_id[original_id]
        counts[original_id] = counts.get(original_id, 0) + 1
        assert int(k) == counts[original_id] and copy.source == original.source
        assert masked(copy) == masked(original)  # the words, tags and whitespace around the entities
        own = {label: set() for label in pool}
        for label, first, last in spans(original.tags):
            own[label].add(surface(original, first, last))
        assert [label for label, _, _ in spans(copy.tags)] == [label for label, _, _ in spans(original.tags)]
        for label, first, last in spans(copy.tags):
            mention = surface(copy, first, last)
            assert mention in pool[label]
            assert mention not in own[label] or pool[label] == own[label]
    for example in originals:  # copied `copies` times when a label of it has a mention it does not hold, else never
        held = {(label, surface(example, first, last)) for label, first, last in spans(example.tags)}
        swappable = any(pool[label] - {m for lb, m in held if lb == label} for label, _ in held)
        assert counts.get(example.id, 0) == (copies if swappable else 0), example.id


@pytest.mark.parametrize("name", list(CORPORA))
def test_every_copy_of_every_shipped_corpus_keeps_the_invariants(name):
    originals = corpus(name)
    for example in originals:
        check_example(example)  # what the checks assume of the data holds before augmentation
    augmented = augment_examples(originals, 3, seed=7)
    assert len(augmented) > len(originals)
    check_augmented(originals, augmented, 3)


def test_the_copies_read_back_through_the_jsonl_writer_and_reader_unchanged(tmp_path):
    originals = corpus("emails_it_real")
    augmented = augment_examples(originals, 2, seed=1)
    path = tmp_path / "augmented.jsonl"
    write_jsonl(path, [example.to_record() for example in augmented])
    read, report = load_examples(path)  # Example.from_record checks every token against the text at its offsets
    assert report.n_skipped == 0 and not report.repairs
    assert read == augmented


def test_copies_are_seeded():
    originals = corpus("emails_it/train")
    first, again = augment_examples(originals, 2, seed=3), augment_examples(originals, 2, seed=3)
    assert first == again
    assert augment_examples(originals, 2, seed=4) != first
    assert augment_examples(list(originals), 2, seed=3) == first  # the input is not changed
    assert originals == corpus("emails_it/train")


def test_zero_copies_is_the_identity():
    originals = corpus("conll_en/test")
    assert augment_examples(originals, 0) == originals
    assert augment_examples([], 3) == []


@pytest.mark.parametrize("copies", [-1, 1.5, True])
def test_copies_must_be_a_whole_number(copies):
    with pytest.raises(ValueError, match="copies must be a whole number"):
        augment_examples(corpus("conll_en/test"), copies)


def test_examples_without_a_mention_to_swap_are_not_copied():
    nothing = Example("none", ["Nothing", "happened"], ["O", "O"])
    alone = Example("alone", ["Call", "ACME"], ["O", "B-ORG"])  # the only ORG mention: nothing to swap it for
    rome = Example("rome", ["Rome", "and", "ACME"], ["B-LOC", "O", "B-ORG"])
    paris = Example("paris", ["to", "Paris"], ["O", "B-LOC"])
    augmented = augment_examples([nothing, alone, rome, paris], 2, seed=0)
    assert [e.id for e in augmented[4:]] == ["rome+aug1", "rome+aug2", "paris+aug1", "paris+aug2"]
    assert [e.text for e in augmented[4:]] == ["Paris and ACME"] * 2 + ["to Rome"] * 2  # ACME: no other ORG


def test_a_mention_keeps_its_inner_spacing_and_the_text_around_keeps_its_own():
    words, tags = ["Via", "Roma", "8", ",", "Iseo"], ["B-LOC", "I-LOC", "I-LOC", "I-LOC", "I-LOC"]
    source = Example("s", words, tags, "Via  Roma\t8, Iseo", [(0, 3), (5, 9), (10, 11), (11, 12), (13, 17)])
    target = Example("t", ["a", "Milano", ":", "ok"], ["O", "B-LOC", "O", "O"], "a\n\n Milano:  ok")
    target.offsets = [(0, 1), (4, 10), (10, 11), (13, 15)]
    copy = augment_examples([source, target], 1)[3]
    assert copy == Example(
        "t+aug1",
        ["a", "Via", "Roma", "8", ",", "Iseo", ":", "ok"],
        ["O", "B-LOC", "I-LOC", "I-LOC", "I-LOC", "I-LOC", "O", "O"],
        "a\n\n Via  Roma\t8, Iseo:  ok",
        [(0, 1), (4, 7), (9, 13), (14, 15), (15, 16), (17, 21), (21, 22), (24, 26)],
    )
    check_augmented([source, target], augment_examples([source, target], 1), 1)


def test_adjacent_entities_of_one_label_stay_two():
    a = Example("a", ["Rossi", "Bianchi"], ["B-PER", "B-PER"])
    b = Example("b", ["Anna", "Neri", "e", "Ugo"], ["B-PER", "I-PER", "O", "B-PER"])
    augmented = augment_examples([a, b], 3, seed=5)
    check_augmented([a, b], augmented, 3)
    assert all(len(spans(copy.tags)) == 2 for copy in augmented[2:])


def test_mentions_and_the_pool():
    example = Example("1", ["Peter", "Blair", "visits", "Rome"], ["B-PER", "I-PER", "O", "B-LOC"])
    assert mentions_of(example) == [
        Mention("PER", ("Peter", "Blair"), ((0, 5), (6, 11)), "Peter Blair"),
        Mention("LOC", ("Rome",), ((0, 4),), "Rome"),
    ]
    pool = mention_pool([example, Example("2", ["Rome"], ["B-LOC"])])
    assert pool["LOC"] == {Mention("LOC", ("Rome",), ((0, 4),), "Rome"): {0, 1}}


def test_replace_mentions_refuses_a_mention_of_another_label_or_count():
    example = Example("1", ["Rome"], ["B-LOC"])
    with pytest.raises(ValueError, match="a PER mention cannot replace a LOC entity"):
        replace_mentions(example, [Mention("PER", ("Ugo",), ((0, 3),), "Ugo")])
    with pytest.raises(ValueError, match="1 entities but 0 replacements"):
        replace_mentions(example, [])


@pytest.mark.parametrize("name", ["emails_it/train", "emails_it_large/train", "emails_it_real"])
def test_the_copies_of_raw_texts_tokenise_again_as_they_are_nearly_always(name):
    """Not an invariant (a copy's tokens are its own and its mentions', never the text tokenised again), but how
    rarely a swapped mention glues to the next character otherwise than its original did (prompts/augment.py)."""
    augmented = augment_examples(corpus(name), 3, seed=7)
    copies = augmented[len(corpus(name)) :]
    differ = [c.id for c in copies if [t for t, _, _ in tokenize_with_offsets(c.text)] != c.tokens]
    assert len(differ) <= 0.01 * len(copies), differ


# Generated texts: words, and the whitespace between them as raw texts have it (none, runs of spaces, tabs, line
# breaks; leading and trailing too); random IOB2 tags over up to three labels.
WORD = st.sampled_from(["Rossi", "S.p.A.", "l'", "1.250,00", "€", ",", ".", "New", "York", "Ufficio", "a@b.it"])
GAP = st.sampled_from(["", " ", " ", "  ", "\t", "\n", " \n\n "])


@st.composite
def examples(draw, index: int = 0):
    size = draw(st.integers(1, 12))
    words = draw(st.lists(WORD, min_size=size, max_size=size))
    gaps = draw(st.lists(GAP, min_size=size + 1, max_size=size + 1))
    text, offsets = gaps[0], []
    for word, gap in zip(words, gaps[1:]):
        offsets.append((len(text), len(text) + len(word)))
        text += word + gap
    entity_spans, i = [], 0
    while i < size:
        length = draw(st.integers(0, 3))
        if length and i + length <= size:
            entity_spans.append((draw(st.sampled_from(["PER", "ORG", "LOC"])), i, i + length))
        i += max(length, 1)
    return Example(f"g{index}", words, spans_to_tags(entity_spans, size), text, offsets)


@settings(max_examples=150, deadline=None)
@given(st.lists(examples(), min_size=1, max_size=6), st.integers(0, 3), st.integers(0, 2**32))
def test_generated_examples_augment_with_every_invariant(found, copies, seed):
    found = [Example(f"g{i}", e.tokens, e.tags, e.text, e.offsets, f"gen:{i}") for i, e in enumerate(found)]
    for example in found:
        check_example(example)
    augmented = augment_examples(found, copies, seed)
    check_augmented(found, augmented, copies)
    assert augment_examples(found, copies, seed) == augmented
    assert [Example.from_record(e.to_record()) for e in augmented] == augmented


def test_a_draw_is_uniform_over_distinct_mentions():
    """A mention seen many times is drawn as often as one seen once (distinct mentions, not occurrences)."""
    many = [Example(f"r{i}", ["Rome"], ["B-LOC"]) for i in range(30)]
    target = Example("t", ["to", "Oslo"], ["O", "B-LOC"])
    augmented = augment_examples([*many, target, Example("p", ["Paris"], ["B-LOC"])], 400, seed=0)
    drawn = [e.text for e in augmented if e.id.startswith("t+aug")]
    assert 150 < drawn.count("to Rome") < 250 and drawn.count("to Rome") + drawn.count("to Paris") == 400
