"""Mention-replacement augmentation: extra copies of training examples with every entity swapped for another
mention of the same label, drawn from the training examples' own mentions.

A copy keeps everything outside its entities as it is, character for character (the words, their tags and the
whitespace between them, line breaks included); each entity becomes another mention of its label, whose words and
inner spacing are those of the text it was read from. Tokens, IOB2 tags, text and character offsets are rebuilt
together, so every copy satisfies what an `Example` promises: `text[start:end] == token` for each token, tokens in
text order, each entity's text its own words as they stand in the text.

The rules, for `augment_examples(examples, copies, seed)`:
- the mentions are the distinct (label, words, inner spacing) of the given examples, sampled uniformly (a rare
  mention is as likely as a frequent one), with a seeded `random.Random`: the same examples and seed give the
  same copies;
- a mention that occurs in the example being copied is not drawn for it, so that every swap changes the text;
  where a label has no other mention, the entity keeps its own;
- an example without entities is not copied, and neither is a copy in which no mention could change: either would
  be the original again (repetition, not augmentation), so the count of copies added can fall short of
  `copies` x examples; callers report it;
- copies keep the original's `source` (where it was read) and get the id `ID+augK` (K from 1).

A copy's tokens are its original's and its mentions' tokens, not the text tokenised again: where a mention glues to
the next character differently (`{MONEY 2,35 €}/kg` becoming `1.200 euro/kg`, which `prompts.tokenize` would read
with `euro/kg` as one word), the copy keeps the words apart, as its entity requires (2 of 453 copies of the
hand-written e-mails at 3 copies each; tests/test_augment.py bounds the share).

It reads no file and touches no dev data: callers pass the training examples only (the trainers call it after the
dev split, `sft/options.py` `augment_training`). It knows IOB2 only, as `Example` does; readers convert other
schemes when they read.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from instruct_ner.examples import Example, tags_to_spans


@dataclass(frozen=True)
class Mention:
    """An entity's words as one text wrote them: tokens, their offsets from the mention's first character, and the
    mention's text (from its first token's start to its last token's end, inner spacing included)."""

    label: str
    tokens: tuple[str, ...]
    offsets: tuple[tuple[int, int], ...]
    text: str


def mentions_of(example: Example) -> list[Mention]:
    """The example's entities as mentions, in text order.

    Example: mentions_of(Example("1", ["Peter", "Blair", "visits"], ["B-PER", "I-PER", "O"])) ->
        [Mention(label="PER", tokens=("Peter", "Blair"), offsets=((0, 5), (6, 11)), text="Peter Blair")]
    """
    found = []
    for label, first, last in tags_to_spans(example.tags):
        start, end = example.offsets[first][0], example.offsets[last - 1][1]
        offsets = tuple((s - start, e - start) for s, e in example.offsets[first:last])
        found.append(Mention(label, tuple(example.tokens[first:last]), offsets, example.text[start:end]))
    return found


def mention_pool(examples: list[Example]) -> dict[str, dict[Mention, set[int]]]:
    """Per label, the distinct mentions of the examples (first seen first) with the indices of the examples that
    hold each.

    Example: mention_pool([Example("1", ["Rome"], ["B-LOC"]), Example("2", ["Rome"], ["B-LOC"])])
        -> {"LOC": {Mention("LOC", ("Rome",), ((0, 4),), "Rome"): {0, 1}}}
    """
    pool: dict[str, dict[Mention, set[int]]] = {}
    for index, example in enumerate(examples):
        for mention in mentions_of(example):
            pool.setdefault(mention.label, {}).setdefault(mention, set()).add(index)
    return pool


def replace_mentions(example: Example, replacements: list[Mention], example_id: str | None = None) -> Example:
    """The example with its k-th entity replaced by `replacements[k]` (one per entity, in text order, each of the
    entity's label): the text between entities, and the tokens and tags there, stay as they are.

    Example: replace_mentions(Example("1", ["Rome", "and", "Paris"], ["B-LOC", "O", "B-LOC"]), [
            Mention("LOC", ("New", "York"), ((0, 3), (4, 8)), "New York"), Mention("LOC", ("Oslo",), ((0, 4),), "Oslo")
        ])
        -> Example(tokens=["New", "York", "and", "Oslo"], tags=["B-LOC", "I-LOC", "O", "B-LOC"],
            text="New York and Oslo", offsets=[(0, 3), (4, 8), (9, 12), (13, 17)])
    """
    spans = tags_to_spans(example.tags)
    if len(spans) != len(replacements):
        raise ValueError(f"{example.id}: {len(spans)} entities but {len(replacements)} replacements")
    tokens: list[str] = []
    tags: list[str] = []
    offsets: list[tuple[int, int]] = []
    pieces: list[str] = []
    shift = 0  # new position - old position, for the text after the last entity replaced
    token_cursor = char_cursor = 0

    def keep(until_token: int) -> None:  # the tokens (and their tags) before the next entity, moved by `shift`
        tokens.extend(example.tokens[token_cursor:until_token])
        tags.extend(example.tags[token_cursor:until_token])
        offsets.extend((s + shift, e + shift) for s, e in example.offsets[token_cursor:until_token])

    for (label, first, last), mention in zip(spans, replacements):
        if mention.label != label:
            raise ValueError(f"{example.id}: a {mention.label} mention cannot replace a {label} entity")
        start, end = example.offsets[first][0], example.offsets[last - 1][1]
        keep(first)
        pieces.append(example.text[char_cursor:start])
        new_start = start + shift
        tokens.extend(mention.tokens)
        tags.extend([f"B-{label}"] + [f"I-{label}"] * (len(mention.tokens) - 1))
        offsets.extend((new_start + s, new_start + e) for s, e in mention.offsets)
        pieces.append(mention.text)
        shift += len(mention.text) - (end - start)
        token_cursor, char_cursor = last, end
    keep(len(example.tokens))
    pieces.append(example.text[char_cursor:])
    return Example(
        example.id if example_id is None else example_id, tokens, tags, "".join(pieces), offsets, example.source
    )


def augment_examples(examples: list[Example], copies: int, seed: int = 42) -> list[Example]:
    """The examples followed by up to `copies` copies of each, every entity swapped for another mention of its
    label from the examples (the module's rules). `copies=0` returns the examples as they are.

    Example: augment_examples([Example("a", ["Rome"], ["B-LOC"]), Example("b", ["Paris"], ["B-LOC"])], 1)
        -> [the two examples, Example("a+aug1", ["Paris"], ["B-LOC"]), Example("b+aug1", ["Rome"], ["B-LOC"])]
    """
    if isinstance(copies, bool) or not isinstance(copies, int) or copies < 0:
        raise ValueError(f"copies must be a whole number >= 0, got {copies!r}")
    if copies == 0:
        return list(examples)
    pool = {label: list(found.items()) for label, found in mention_pool(examples).items()}
    rng = random.Random(seed)
    added = []
    for index, example in enumerate(examples):
        own = mentions_of(example)
        # a label has another mention when the pool holds more of it than this example does (each of its own is there)
        others = {m.label: len(pool[m.label]) > len({o for o in own if o.label == m.label}) for m in own}
        if not any(others.values()):
            continue  # no entities, or none that can change: every copy would be the original
        for k in range(1, copies + 1):
            picked = [_draw(pool[m.label], index, rng) if others[m.label] else m for m in own]
            added.append(replace_mentions(example, picked, f"{example.id}+aug{k}"))
    return [*examples, *added]


def _draw(mentions: list[tuple[Mention, set[int]]], index: int, rng: random.Random) -> Mention:
    """A mention drawn uniformly from those that example `index` does not hold (the caller knows there is one)."""
    while True:  # rejection: an example holds few of a label's mentions, so this ends after a draw or two
        mention, holders = rng.choice(mentions)
        if index not in holders:
            return mention
