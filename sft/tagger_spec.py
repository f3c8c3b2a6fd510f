"""What a token classifier is made of, without torch: its heads, losses and attentions, the tag set of a label set,
the encoder families it knows, and the names of its files.

`TaggerConfig` (sft/train_tagger.py) reads its choices here, so `instruct-ner train-tagger --help` starts without
torch; the model itself is sft/tagger.py's. This module loads no model and imports nothing heavy.
"""

from __future__ import annotations

HEADS = ("linear", "crf", "bilstm-crf")
LOSSES = ("ce", "compound")
ATTENTIONS = ("causal", "bidirectional")
IGNORE = -100  # the label of a sub-token or padded word slot that no loss counts
HEAD_WEIGHTS = "head.pt"
CLASS_WEIGHTS = "class_weights.pt"

# Encoder (BERT-family) model types: bidirectional by construction, and their LoRA target module names.
ENCODER_LORA_TARGETS = {
    "bert": ["query", "key", "value", "dense"],
    "roberta": ["query", "key", "value", "dense"],
    "xlm-roberta": ["query", "key", "value", "dense"],
    "electra": ["query", "key", "value", "dense"],
    "distilbert": ["q_lin", "k_lin", "v_lin", "out_lin", "lin1", "lin2"],
}


def tag_names(labels: list[str]) -> list[str]:
    """IOB2 tag names for a label set, O first. Example: tag_names(["PER"]) -> ["O", "B-PER", "I-PER"]"""
    return ["O"] + [f"{prefix}-{label}" for label in labels for prefix in ("B", "I")]
