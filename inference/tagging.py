"""Prediction with a trained token classifier: IOB2 tags for examples, window by window, merged back in order.

A text longer than the tagger's `max_length` sub-tokens is cut into windows by the policy the generative path uses
(`inference.windows`: sentence bounds, never inside a word or gold entity, an overlap of whole sentences or words),
the windows of many texts batched together, and each text's entities merged by `merge_spans`. `encode_examples`
keeps its own model-level guard (a window it still finds too long is cut there, with its warning).

The model, its encoding and loading are sft/tagger.py's (shared with training); `instruct-ner tag` and the Python
API reach this through inference/predictor.py, dev-F1 selection through inference/evaluation.py. It does not train.
"""

from __future__ import annotations

import torch

from instruct_ner.examples import Example, iob1_to_iob2, spans_to_tags, tags_to_spans
from instruct_ner.inference.windows import (
    Merged,
    default_overlap,
    example_windows,
    few_sentences,
    merge_spans,
    window_example,
)
from instruct_ner.sft.tagger import TokenTagger, collate, encode_examples, special_ids


def tagger_windows(
    example: Example,
    tokenizer,
    max_length: int,
    window_tokens: int | None = None,
    overlap: int | None = None,
    max_sentences: int | None = None,
    whole_tokens: int | None = None,
) -> list[tuple[int, int]]:
    """The word ranges of an example's windows for a tagger of `max_length` sub-tokens (its special tokens
    included): each word counted as `encode_examples` encodes it, with or without the space before it."""
    bos, eos = special_ids(tokenizer)
    budget = min(max_length - len(bos) - len(eos), window_tokens or max_length)
    words = example.tokens
    spaced = tokenizer([" " + word for word in words], add_special_tokens=False)["input_ids"]
    costs = [len(ids) or 1 for ids in spaced]
    few = few_sentences(example, sum(costs), max_sentences, whole_tokens)
    if few and sum(costs) + 1 <= budget:  # the first word's own tokens may differ by one without its space
        return [(0, len(words))]
    bare = tokenizer(list(words), add_special_tokens=False)["input_ids"]
    costs = [max(cost, len(ids) or 1) for cost, ids in zip(costs, bare)]
    sums = [0]
    for cost in costs:
        sums.append(sums[-1] + cost)
    overlap = overlap if overlap is not None else default_overlap(max_length, budget)
    fits = lambda start, end: sums[end] - sums[start] <= budget  # noqa: E731
    return example_windows(example, costs, fits, overlap, max_sentences, whole_tokens)


@torch.no_grad()
def predict_windows(
    model: TokenTagger,
    examples: list[Example],
    tokenizer,
    max_length: int = 512,
    batch_size: int = 16,
    window_tokens: int | None = None,
    overlap: int | None = None,
    max_sentences: int | None = None,
    whole_tokens: int | None = None,
) -> list[tuple[list[str], int, Merged]]:
    """(IOB2 tags, windows taken, what merging dropped) for every example; the windows of all examples are
    batched together. `Merged.scores` holds each entity's confidence (`predict_scored`)."""
    windows = [
        tagger_windows(example, tokenizer, max_length, window_tokens, overlap, max_sentences, whole_tokens)
        for example in examples
    ]
    units = [window_example(example, s, e) for example, ranges in zip(examples, windows) for s, e in ranges]
    scored = predict_scored(model, units, tokenizer, max_length, batch_size)
    tags, scores = [t for t, _ in scored], [s for _, s in scored]
    results, position = [], 0
    for example, ranges in zip(examples, windows):
        found = [tags_to_spans(t) for t in tags[position : position + len(ranges)]]
        found_scores = scores[position : position + len(ranges)]
        position += len(ranges)
        if len(ranges) == 1:
            results.append((tags[position - 1], 1, Merged(found[0], scores=found_scores[0])))
            continue
        merged = merge_spans(ranges, found, len(example.tokens), found_scores)
        results.append((spans_to_tags(merged.spans, len(example.tokens)), len(ranges), merged))
    return results


@torch.no_grad()
def predict(
    model: TokenTagger, examples: list[Example], tokenizer, max_length: int = 512, batch_size: int = 16
) -> list[list[str]]:
    """IOB2 tags for every example (windows stitched back in order)."""
    return [tags for tags, _ in predict_scored(model, examples, tokenizer, max_length, batch_size, scores=False)]


@torch.no_grad()
def predict_scored(
    model: TokenTagger,
    examples: list[Example],
    tokenizer,
    max_length: int = 512,
    batch_size: int = 16,
    scores: bool = True,
) -> list[tuple[list[str], dict[tuple[str, int, int], float]]]:
    """(IOB2 tags, {(label, start, end): confidence}) for every example (windows stitched back in order).

    The confidence of a decoded entity is its marginal probability under the head (`TokenTagger.span_marginals`:
    the CRF's forward-backward, or the softmax under the IOB2 constraints), computed in the model-level window
    that decoded it; the tags are the Viterbi path's, unchanged by scoring.
    """
    model.eval()
    encoded = encode_examples(examples, tokenizer, model.tags, max_length, with_labels=False)
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].input_ids))
    decoded: dict[int, list[str]] = {}
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    for start in range(0, len(order), batch_size):
        batch_ids = order[start : start + batch_size]
        batch = collate([encoded[i] for i in batch_ids], pad_id)
        device = model.device
        emissions = model.emissions(
            batch["input_ids"].to(device), batch["attention_mask"].to(device), batch["word_index"].to(device)
        )
        word_mask = batch["word_mask"].to(device)
        paths = model.decode(emissions, word_mask)
        marginals = model.span_marginals(emissions, word_mask, paths) if scores else [{} for _ in paths]
        for i, tags, found in zip(batch_ids, paths, marginals):
            decoded[i] = (tags, found)
    per_example: list[list[str]] = [[] for _ in examples]
    per_scores: list[dict] = [{} for _ in examples]
    for i, e in enumerate(encoded):
        offset = len(per_example[e.example_index])
        tags, found = decoded[i]
        per_example[e.example_index] += tags
        per_scores[e.example_index].update({(label, s + offset, t + offset): p for (label, s, t), p in found.items()})
    # An I- tag that a window boundary left without its B- opens an entity: the IOB1 -> IOB2 rule.
    return [(iob1_to_iob2(tags), found) for tags, found in zip(per_example, per_scores)]
