"""Long texts: the shared windowing policy (inference/windows.py), the generative predictor over windows, documents
read from CoNLL `-DOCSTART-` files, and a long text through the API with the tiny Llama."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import SHARED_DATA, needs_shared_data
from instruct_ner.examples import Example, tags_to_spans
from instruct_ner.inference.decoding import Generated, Generator
from instruct_ner.inference.predictor import GenerativePredictor, RunOptions
from instruct_ner.inference.windows import (
    allowed_cuts,
    example_windows,
    merge_spans,
    sentence_starts,
    split_windows,
    window_example,
)
from instruct_ner.prompts.formats import get_format
from instruct_ner.prompts.readers import ReaderOptions, load_examples
from instruct_ner.prompts.templates import PromptBuilder, load_template
from instruct_ner.prompts.tokenize import sentence_bounds, tokenize_with_offsets


def test_titles_and_dotted_abbreviations_do_not_end_a_sentence():
    text = "La Acme S.p.A. Vende mele. Il Sig. Rossi e il Dott. Bianchi, n. 5. Fine."
    assert [text[s:e] for s, e in sentence_bounds(text)] == [
        "La Acme S.p.A. Vende mele.",
        "Il Sig. Rossi e il Dott. Bianchi, n. 5.",
        "Fine.",
    ]


def test_a_text_that_fits_is_one_window_and_windows_end_on_sentences():
    assert split_windows([1] * 10, lambda s, e: True, overlap=3) == [(0, 10)]
    windows = split_windows([1] * 10, lambda s, e: e - s <= 5, overlap=0, sentences=[0, 3, 6, 8])
    assert windows == [(0, 3), (3, 8), (8, 10)]  # the last sentence start that fits, not the last word


def test_a_window_never_cuts_a_gold_entity_and_overlaps_by_whole_words():
    tags = ["O", "O", "O", "B-PER", "I-PER", "I-PER", "O", "O", "O", "O"]
    windows = split_windows([1] * 10, lambda s, e: e - s <= 5, overlap=2, cuts=allowed_cuts(tags))
    assert windows[0] == (0, 3) and all(not tags[start].startswith("I-") for start, _ in windows)
    assert windows[-1][1] == 10 and all(b[0] < a[1] or b[0] == a[1] for a, b in zip(windows, windows[1:]))


def test_merging_keeps_the_span_farther_from_a_window_edge_and_counts_what_it_drops():
    merged = merge_spans([(0, 6), (3, 10)], [[("PER", 4, 6), ("LOC", 0, 1)], [("ORG", 1, 3), ("LOC", 5, 6)]], 10)
    # "PER 4-6" touches window 0's right edge; "ORG 4-6" is one word from window 1's left edge: ORG wins
    assert merged.spans == [("LOC", 0, 1), ("ORG", 4, 6), ("LOC", 8, 9)] and merged.conflicts == 1
    same = merge_spans([(0, 6), (3, 10)], [[("PER", 3, 4)], [("PER", 0, 1)]], 10)
    assert same.spans == [("PER", 3, 4)] and same.duplicates == 1 and same.conflicts == 0


class GoldGenerator(Generator):
    """A deterministic fake model: answers every prompt with the gold entities of its own (window) text, in the
    entity-list format; one token per word of a prompt, and a context of `context` tokens."""

    def __init__(self, context: int | None):
        self.context, self.seen = context, []

    def generate(self, prompts, limits, examples=None):
        self.seen += examples
        return [Generated(get_format("entity_list").render(e), 1, 1, False) for e in examples]

    def prompt_length(self, prompt) -> int:
        return len(prompt.split())

    def context_length(self):
        return self.context


WORDS = ["rome", "the", "Anna", "Milano", "and", "visits", "Acme", ",", "."]


def gold_example(words: list[str]) -> Example:
    """Runs of capitalised words are PER entities (the fake model's truth)."""
    tags = []
    for i, word in enumerate(words):
        capital = word[0].isupper()
        tags.append(("I-PER" if i and tags[-1] != "O" else "B-PER") if capital else "O")
    return Example("doc", words, tags)


BUILDER = PromptBuilder(load_template("ner-list.en"), ["PER"], "instruction")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    words=st.lists(st.sampled_from(WORDS), min_size=1, max_size=120),
    room=st.integers(min_value=40, max_value=400),
    overlap=st.integers(min_value=0, max_value=20),
    most=st.one_of(st.none(), st.integers(min_value=1, max_value=4)),
)
def test_merged_entities_equal_the_single_window_ones_and_none_crosses_an_edge(words, room, overlap, most):
    example = gold_example(words)
    single = GenerativePredictor(BUILDER, GoldGenerator(None)).predict([example])[0]
    generator = GoldGenerator(None)
    predictor = GenerativePredictor(BUILDER, generator)
    generator.context = predictor.prompt_overhead() + room
    options = RunOptions(batch_size=4, window_overlap=overlap, window_sentences=most)
    output = predictor.predict([example], options=options)[0]
    assert single["entities"] == example.entities
    entities = output["entities"]
    assert all(example.text[e.start : e.end] == e.text for e in entities)
    assert all(a.token_end <= b.token_start for a, b in zip(entities, entities[1:]))  # merged: none overlaps
    assert output.get("windows", 1) == len(generator.seen)
    if len(generator.seen) == 1:  # a text that fits: the record is the one of a single prompt, no `windows`
        assert {k: v for k, v in output.items() if k != "timing"} == {k: v for k, v in single.items() if k != "timing"}
        return
    # windows are cut on the text alone (gold never guides a cut), so an entity may straddle an edge; every gold
    # entity that no window edge cuts comes back exactly, and what comes back lies inside one window
    plan = predictor.plan_windows(example, options)
    starts = sentence_starts(example)
    if most is not None:  # a window holds at most `most` sentences (each sentence start inside it opens one)
        assert all(sum(s < k < e for k in starts) + 1 <= most for s, e in plan)
    edges = {s for s, _ in plan[1:]} | {e for _, e in plan[:-1]}
    uncut = [g for g in example.entities if not any(g.token_start < edge < g.token_end for edge in edges)]
    assert all(g in entities for g in uncut)
    assert all(any(s <= e.token_start and e.token_end <= t for s, t in plan) for e in entities)


def test_a_model_trained_on_sentences_reads_one_per_window_and_sentences_share_no_overlap():
    costs, starts = [1] * 12, [0, 4, 7]  # sentences of 4, 3 and 5 words
    everything = lambda s, e: True  # noqa: E731
    assert split_windows(costs, everything, 3, starts, max_sentences=1) == [(0, 4), (4, 7), (7, 12)]
    assert split_windows(costs, everything, 3, starts, max_sentences=2) == [(0, 7), (7, 12)]
    assert split_windows(costs, everything, 3, starts) == [(0, 12)]  # no cap: one window
    # a text no longer than the longest training text is read whole, as the model's training texts were
    assert split_windows(costs, everything, 3, starts, max_sentences=1, whole_tokens=12) == [(0, 12)]
    assert split_windows(costs, everything, 3, starts, max_sentences=1, whole_tokens=11) == [(0, 4), (4, 7), (7, 12)]
    # a sentence longer than the token budget is cut by words, and those cuts keep their overlap
    windows = split_windows(costs, lambda s, e: e - s <= 3, 1, starts, max_sentences=1)
    assert windows == [(0, 3), (2, 4), (4, 7), (7, 10), (9, 12)]


def test_a_long_thread_is_cut_at_its_messages_and_a_short_one_is_one_window():
    reply = "Confermo la consegna di lunedì a Milano. Grazie, Anna Neri."
    header = "\n\nIl giorno 3 marzo 2025 alle ore 10:07 Mario Rossi <m.rossi@acme.it> ha scritto:\n\n"
    first = "Buongiorno, vi mando l'ordine n. 42 per la sede di Torino. Cordiali saluti, Mario Rossi."
    text = reply + header + first
    words = tokenize_with_offsets(text)
    example = Example("t", [w for w, _, _ in words], ["O"] * len(words), text, [(s, e) for _, s, e in words])
    costs = [1] * len(words)
    header_word = next(i for i, (w, _, _) in enumerate(words) if w == "Il")
    body_word = next(i for i, (w, _, _) in enumerate(words) if w == "Buongiorno")
    assert example_windows(example, costs, lambda s, e: True, overlap=4) == [(0, len(words))]
    windows = example_windows(example, costs, lambda s, e: e - s <= len(words) - 2, overlap=4)
    # the reply, the header and the quoted message each on their own: the quoted one read as the e-mail it was
    assert windows == [(0, header_word), (header_word, body_word), (body_word, len(words))]


def test_many_documents_share_batches_and_come_back_in_input_order():
    documents = [gold_example((["Anna", "visits", "rome", "."] * k)[: 4 * k]) for k in (1, 30, 2, 25, 1)]
    for k, document in enumerate(documents):
        document.id = f"d{k}"
    generator = GoldGenerator(None)
    predictor = GenerativePredictor(BUILDER, generator)
    generator.context = predictor.prompt_overhead() + 120
    outputs = predictor.predict(documents, options=RunOptions(batch_size=8))
    assert [o["id"] for o in outputs] == [d.id for d in documents]
    assert [o["entities"] for o in outputs] == [d.entities for d in documents]
    assert outputs[1]["windows"] > 1 and "windows" not in outputs[0]
    assert sum(o.get("windows", 1) for o in outputs) == len(generator.seen)


def test_sentence_starts_map_sentence_bounds_to_words():
    example = Example("d", ["Ciao", "Mario", ".", "Grazie", "."], ["O"] * 5)
    assert sentence_starts(example) == [0, 3]


@needs_shared_data
def test_conll_documents_hold_the_same_tokens_and_tags_as_their_sentences():
    path = SHARED_DATA / "conll2003" / "test.txt"
    documents, _ = load_examples(path, ReaderOptions(unit="document"))
    sentences, _ = load_examples(path)
    assert len(documents) == 231 and len(sentences) == 3453
    assert [t for d in documents for t in d.tokens] == [t for s in sentences for t in s.tokens]
    assert [t for d in documents for t in d.tags] == [t for s in sentences for t in s.tags]
    assert sum(len(d.entities) for d in documents) == sum(len(s.entities) for s in sentences)
    for document in documents[:20]:
        assert all(document.text[s:e] == token for token, (s, e) in zip(document.tokens, document.offsets))
        lines = [0] + [
            i for i in range(1, len(document.tokens)) if "\n" in document.text[: document.offsets[i][0]][-1:]
        ]
        assert set(lines) <= set(sentence_starts(document))  # every sentence of the file starts a sentence


def test_a_conll_file_read_as_documents(tmp_path):
    path = tmp_path / "docs.txt"
    path.write_text("-DOCSTART- O\n\nEU B-ORG\nrejects O\n\nPeter B-PER\n\n-DOCSTART- O\n\nRome B-LOC\n")
    documents, _ = load_examples(path, ReaderOptions(unit="document"))
    assert [d.text for d in documents] == ["EU rejects\nPeter", "Rome"]
    assert [tags_to_spans(d.tags) for d in documents] == [[("ORG", 0, 1), ("PER", 2, 3)], [("LOC", 0, 1)]]
    assert len(load_examples(path)[0]) == 3  # sentences, as before


@pytest.fixture(scope="module")
def ner(tiny_llama):
    from instruct_ner import NER

    return NER.zero_shot(labels=["PER", "LOC"], model=str(tiny_llama), precision="fp32")


def test_a_long_text_through_the_api_finishes_with_exact_offsets(ner):
    sentence = "Il Sig. Rossi della Acme S.p.A. ha scritto a Maria Bianchi da Milano, n. 5. "
    text = sentence * (200_000 // len(sentence))  # about 200 KB: tens of windows of the tiny model's context
    ner.max_new_tokens = 3  # cheap: the windows, not the responses, are under test
    entities = ner.predict_entities(text)
    assert all(text[e.start : e.end] == e.text for e in entities)
    assert entities == sorted(entities, key=lambda e: e.start) and all(
        a.end <= b.start for a, b in zip(entities, entities[1:])
    )


def test_the_tagger_uses_the_same_windows_and_a_short_text_is_tagged_as_before(tiny_llama):
    from transformers import AutoTokenizer

    from instruct_ner.examples import iob2_error
    from instruct_ner.inference.tagging import predict, predict_windows, tagger_windows
    from instruct_ner.sft.tagger import TokenTagger, load_backbone

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    model = TokenTagger(load_backbone(str(tiny_llama), "fp32", "bidirectional"), ["PER", "LOC"], "crf").eval()
    short = Example("s", ["Anna", "visits", "Rome", "."], ["O"] * 4)
    words = ("Il Sig. Rossi scrive a Maria da Milano . " * 40).split()
    long = Example("l", words, ["O"] * len(words))
    assert tagger_windows(short, tokenizer, 64) == [(0, 4)]
    windows = tagger_windows(long, tokenizer, 64, overlap=8)
    assert len(windows) > 5 and windows[0][0] == 0 and windows[-1][1] == len(words)
    assert all(s < e and s < f_start < e for (s, e), (f_start, _) in zip(windows, windows[1:]))  # they overlap
    results = predict_windows(model, [short, long], tokenizer, 64, batch_size=4, overlap=8)
    assert results[0][0] == predict(model, [short], tokenizer, 64)[0] and results[0][1] == 1
    tags, count, _ = results[1]
    assert count == len(windows) and len(tags) == len(words) and iob2_error(tags) is None


def test_the_default_window_is_twice_the_longest_training_text_and_a_shorter_text_is_untouched(ner):
    """A folder's `longest_text_tokens` caps its windows (`Artifact.window_cap`); `window_tokens` still wins."""
    from instruct_ner.inference.predictor import RunOptions
    from instruct_ner.prompts.tokenize import tokenize_with_offsets
    from instruct_ner.sft.artifact import Artifact

    assert Artifact("generative", ["PER"], longest_text_tokens=30).window_cap() == 60
    assert Artifact("generative", ["PER"]).window_cap() is None
    # a generative model reads as many sentences per window as its training texts held; a tagger is not limited
    assert Artifact("generative", ["PER"], sentences_per_text=1).window_sentences() == 1
    spec = {"attention": "bidirectional", "head": "crf", "loss": "compound"}
    assert Artifact("tagger", ["PER"], tagger=spec, sentences_per_text=1).window_sentences() is None
    predictor, tokenizer = ner.predictor, ner.predictor.generator.tokenizer
    text = "Il Sig. Rossi scrive a Maria da Milano. " * 12
    words = tokenize_with_offsets(text)
    long = Example("l", [w for w, _, _ in words], ["O"] * len(words), text, [(s, e) for _, s, e in words])
    short = window_example(long, 0, 9)
    assert predictor.plan_windows(long, RunOptions()) == [(0, len(words))]  # fits the context
    try:
        predictor.window_cap = 30
        windows = predictor.plan_windows(long, RunOptions())
        assert len(windows) > 3 and windows[0][0] == 0 and windows[-1][1] == len(words)
        for start, end in windows:  # each window's text, counted by the tokenizer itself, within the cap
            piece = text[long.offsets[start][0] : long.offsets[end - 1][1]]
            assert len(tokenizer(piece, add_special_tokens=False)["input_ids"]) <= 30
        assert predictor.plan_windows(short, RunOptions()) == [(0, len(short.tokens))]
        assert predictor.plan_windows(long, RunOptions(window_tokens=1000)) == [(0, len(words))]
        # trained on one sentence per text: one sentence per window, unless the text is as short as a training one
        predictor.window_cap, predictor.sentence_cap = None, 1
        two = window_example(long, 0, 2 * len(words) // 12)
        sentences = [s for s, _ in predictor.plan_windows(long, RunOptions())]
        assert sentences == sentence_starts(long) and len(sentences) == 12
        assert len(predictor.plan_windows(two, RunOptions())) == 2
        predictor.longest_text = len(tokenizer(two.text, add_special_tokens=False)["input_ids"])
        assert predictor.plan_windows(two, RunOptions()) == [(0, len(two.tokens))]
        assert len(predictor.plan_windows(long, RunOptions())) == 12
        assert predictor.plan_windows(long, RunOptions(window_sentences=0)) == [(0, len(words))]
    finally:
        predictor.window_cap, predictor.sentence_cap, predictor.longest_text = None, None, None
