"""Prediction with a trained token classifier: IOB2 tags for examples, window by window, stitched back in order.

The model, its encoding and loading are sft/tagger.py's (shared with training); `instruct-ner tag` and the Python
API reach this through inference/predictor.py, dev-F1 selection through inference/evaluation.py. It does not train.
"""

from __future__ import annotations

import torch
from instruct_ner.sft.tagger import TokenTagger, collate, encode_examples

from instruct_ner.examples import Example, iob1_to_iob2


@torch.no_grad()
def predict(
    model: TokenTagger, examples: list[Example], tokenizer, max_length: int = 512, batch_size: int = 16
) -> list[list[str]]:
    """IOB2 tags for every example (windows stitched back in order)."""
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
        for i, tags in zip(batch_ids, model.decode(emissions, batch["word_mask"].to(device))):
            decoded[i] = tags
    per_example: list[list[str]] = [[] for _ in examples]
    for i, e in enumerate(encoded):
        per_example[e.example_index] += decoded[i]
    # An I- tag that a window boundary left without its B- opens an entity: the IOB1 -> IOB2 rule.
    return [iob1_to_iob2(tags) for tags in per_example]
