"""The token-classification model that training and prediction share: a Llama backbone (causal or bidirectional
attention) with LoRA, or frozen, under a linear, CRF or BiLSTM-CRF head; the encoding of word-level IOB2 examples
into windows of sub-tokens and their batches; and the tagger folder's save and load.

- `attention: bidirectional` removes the causal mask in every layer (padding stays masked): the
  config's `is_causal` makes transformers build a bidirectional mask, and every attention module's
  `is_causal` keeps SDPA from falling back to its own causal mask when no mask is materialised.
- Each word is represented by its first sub-token; the other sub-tokens are not labelled.
- Heads: `linear`, `crf` (linear + `sft.crf.CRF`), `bilstm-crf` (a BiLSTM over the frozen backbone's
  hidden states, then linear + CRF). Losses: `ce` (cross-entropy for `linear`, CRF negative
  log-likelihood for the CRF heads) or `compound` = w1 * class-weighted cross-entropy + w2 * CRF NLL +
  w3 * label-smoothed cross-entropy (defaults 0.5 / 0.3 / 0.2; needs a CRF head). Each term is a mean over the
  batch; `loss_terms` gives their sums and denominators, which processes sharing a batch add up (DDP).
- Decoding is Viterbi restricted to valid IOB2 transitions for every head, so output is always valid IOB2.
- Texts longer than `max_length` tokens are cut into windows of whole words (a warning says how many).
- Encoder backbones (BERT family, e.g. MiniLM-L6) work too: they are bidirectional already (`causal` is
  refused), each window is wrapped in [CLS] ... [SEP], and LoRA targets their own projection names.

It does not train (sft/train_tagger.py does, through `transformers.Trainer`), cache features (sft/features.py)
or predict (inference/tagging.py). The torch-free names (heads, losses, file names) are sft/tagger_spec.py's;
the folder's description is sft/artifact.py's.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from instruct_ner.examples import Example, tags_to_spans
from instruct_ner.sft.crf import CRF, constrained_decode, constrained_marginals
from instruct_ner.sft.tagger_spec import (
    ATTENTIONS,
    CLASS_WEIGHTS,
    ENCODER_LORA_TARGETS,
    HEAD_WEIGHTS,
    HEADS,
    IGNORE,
    LOSSES,
    tag_names,
)


def is_encoder(model: nn.Module) -> bool:
    """True for a BERT-family encoder (by `config.model_type`), whose attention is bidirectional already."""
    config = getattr(model, "config", None)
    return getattr(config, "model_type", None) in ENCODER_LORA_TARGETS


def set_attention(model: nn.Module, attention: str) -> None:
    """Make every layer of a Llama causal or bidirectional (padding is masked either way); encoders: no-op."""
    from instruct_ner.config import ConfigError

    if attention not in ATTENTIONS:
        raise ValueError(f"attention must be one of {ATTENTIONS}, not {attention!r}")
    if is_encoder(model):
        if attention == "causal":
            raise ConfigError(
                f"attention 'causal' needs a decoder backbone; {model.config.model_type} is a bidirectional "
                "encoder: use --attention bidirectional"
            )
        return
    causal = attention == "causal"
    config = getattr(model, "config", None)
    if config is not None:
        config.is_causal = causal
    for module in model.modules():
        if hasattr(module, "is_causal"):
            module.is_causal = causal
        if hasattr(module, "config") and module.config is not None and module is not model:
            module.config.is_causal = causal


class LossTerm(NamedTuple):
    """One term of the tagger's loss: it adds `weight * value / denominator` (value a sum) or `weight * value`
    (value a mean)."""

    weight: float
    value: torch.Tensor
    denominator: torch.Tensor


class TokenTagger(nn.Module):
    """backbone (LlamaModel) -> first sub-token of each word -> [BiLSTM] -> linear -> [CRF]."""

    def __init__(
        self,
        backbone: nn.Module,
        labels: list[str],
        head: str = "linear",
        loss: str = "ce",
        loss_weights: tuple[float, float, float] = (0.5, 0.3, 0.2),
        class_weights: torch.Tensor | None = None,
        lstm_hidden: int = 256,
        dropout: float = 0.1,
        label_smoothing: float = 0.1,
    ):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, not {head!r}")
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, not {loss!r}")
        if loss == "compound" and head == "linear":
            raise ValueError("loss 'compound' needs a CRF head (crf or bilstm-crf)")
        self.backbone, self.labels, self.tags = backbone, labels, tag_names(labels)
        self.head_kind, self.loss_kind, self.loss_weights = head, loss, loss_weights
        self.label_smoothing = label_smoothing
        hidden = backbone.config.hidden_size
        self.lstm = (
            nn.LSTM(hidden, lstm_hidden, batch_first=True, bidirectional=True) if head == "bilstm-crf" else None
        )
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(2 * lstm_hidden if self.lstm is not None else hidden, len(self.tags))
        self.crf = CRF(self.tags) if head != "linear" else None
        weights = class_weights if class_weights is not None else torch.ones(len(self.tags))
        # The head goes where the backbone takes its inputs (cuda:0 for one loaded with a device_map, as 8-bit
        # is), so that every batch moved to `self.device` meets the backbone and the head. Only the head
        # moves: a quantised backbone refuses `.to()`.
        self.head_modules().to(self.device)
        self.register_buffer("class_weights", weights.float().to(self.device))

    @property
    def device(self) -> torch.device:
        """Where batches go: the device of the backbone's input embeddings (the head is there too)."""
        embeddings = self.backbone.get_input_embeddings()
        return embeddings.weight.device if embeddings is not None else next(self.backbone.parameters()).device

    def head_modules(self) -> nn.ModuleDict:
        modules = {"classifier": self.classifier}
        if self.lstm is not None:
            modules["lstm"] = self.lstm
        if self.crf is not None:
            modules["crf"] = self.crf
        return nn.ModuleDict(modules)

    def word_features(self, input_ids, attention_mask, word_index) -> torch.Tensor:
        """The backbone's last hidden state at each word's first sub-token: [batch, words, hidden] (float)."""
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return torch.gather(hidden, 1, word_index.unsqueeze(-1).expand(-1, -1, hidden.shape[-1])).float()

    def emissions(self, input_ids, attention_mask, word_index, features=None) -> torch.Tensor:
        """Per-word tag scores; `features` (from word_features, e.g. a frozen backbone's cache) skips the backbone."""
        words = features if features is not None else self.word_features(input_ids, attention_mask, word_index)
        if self.lstm is not None:
            words = self.lstm(words)[0]
        return self.classifier(self.dropout(words))

    def loss_terms(self, emissions, labels, word_mask, reduction: str = "sum") -> list[LossTerm]:
        """The loss's terms over this batch, each (weight, value, denominator): with `reduction="sum"` the value
        is the term's sum and the loss their weighted sums over their denominators (cross-entropy: the valid
        words, or the targets' class weights when class-weighted; CRF NLL: the sequences). Sums and denominators
        add up across batches, so that processes sharing a batch can take its means (sft/tagger_trainer.py);
        `reduction="mean"` gives torch's means of this batch, which `loss` weighs."""
        flat_emissions, flat_labels = emissions.reshape(-1, emissions.shape[-1]), labels.reshape(-1)
        valid = flat_labels != IGNORE
        words = valid.sum().float()

        def cross_entropy(**kwargs) -> torch.Tensor:
            return nn.functional.cross_entropy(
                flat_emissions, flat_labels, ignore_index=IGNORE, reduction=reduction, **kwargs
            )

        if self.loss_kind == "ce" and self.crf is None:
            return [LossTerm(1.0, cross_entropy(), words)]
        crf_nll = -self.crf.log_likelihood(emissions, labels.clamp(min=0), word_mask)
        sequences = torch.tensor(float(emissions.shape[0]), device=emissions.device)
        crf_term = crf_nll.sum() if reduction == "sum" else crf_nll.mean()
        if self.loss_kind == "ce":
            return [LossTerm(1.0, crf_term, sequences)]
        w_ce, w_crf, w_smooth = self.loss_weights
        return [
            LossTerm(w_ce, cross_entropy(weight=self.class_weights), self.class_weights[flat_labels[valid]].sum()),
            LossTerm(w_crf, crf_term, sequences),
            LossTerm(w_smooth, cross_entropy(label_smoothing=self.label_smoothing), words),
        ]

    def loss(self, emissions, labels, word_mask) -> torch.Tensor:
        """The weighted sum of the terms' means over this batch (torch's mean reductions)."""
        return sum(term.weight * term.value for term in self.loss_terms(emissions, labels, word_mask, "mean"))

    def forward(
        self, input_ids, attention_mask, word_index, word_mask, labels=None, features=None, loss_sums: bool = False
    ) -> dict:
        """{"emissions", "loss"} (loss None without labels): the form `transformers.Trainer` reads its loss from.
        With `loss_sums`, "loss_terms" (`loss_terms`' sums) in place of "loss": they are computed inside the
        forward pass so that DDP, which looks for the parameters the outputs used, finds the CRF's."""
        emissions = self.emissions(input_ids, attention_mask, word_index, features)
        if labels is not None and loss_sums:
            return {"loss_terms": self.loss_terms(emissions, labels, word_mask), "emissions": emissions}
        loss = self.loss(emissions, labels, word_mask) if labels is not None else None
        return {"loss": loss, "emissions": emissions}

    @torch.no_grad()
    def decode(self, emissions, word_mask) -> list[list[str]]:
        if self.crf is not None:
            paths = self.crf.decode(emissions, word_mask)
        else:
            paths = constrained_decode(emissions.log_softmax(-1), word_mask, self.tags)
        return [[self.tags[i] for i in path] for path in paths]

    @torch.no_grad()
    def span_marginals(self, emissions, word_mask, paths: list[list[str]]) -> list[dict[tuple[str, int, int], float]]:
        """For each row, {(label, start, end): probability} of each entity of its decoded tags: the marginal of
        exactly that span with that label over every tag path (`sft.crf.span_marginals`), not the path's score."""
        index = {tag: i for i, tag in enumerate(self.tags)}
        spans = [tags_to_spans(tags) for tags in paths]
        wanted = [[(index[f"B-{label}"], index[f"I-{label}"], s, e) for label, s, e in row] for row in spans]
        if self.crf is not None:
            marginals = self.crf.span_marginals(emissions, word_mask, wanted)
        else:
            marginals = constrained_marginals(emissions.float().log_softmax(-1), word_mask, self.tags, wanted)
        return [dict(zip(row, found)) for row, found in zip(spans, marginals)]


# ------------------------------------------------------------------------------------------ data


@dataclass
class Encoded:
    """One window of an example: token ids and, for each of its words, the first sub-token's position."""

    example_index: int
    word_start: int
    input_ids: list[int]
    word_index: list[int]
    labels: list[int]


def encode_examples(
    examples: list[Example], tokenizer, tags: list[str], max_length: int = 512, with_labels: bool = True
) -> list[Encoded]:
    """Sub-tokenise words (each after a space, as in running text), cut into windows of whole words.

    A window starts with the tokenizer's BOS token (Llama) or [CLS] and ends with [SEP] (BERT family).
    """
    tag_index = {tag: i for i, tag in enumerate(tags)}
    bos, eos = special_ids(tokenizer)
    max_length -= len(eos)
    encoded, windowed = [], 0
    for k, example in enumerate(examples):
        pieces = [
            tokenizer.encode((" " if i else "") + word, add_special_tokens=False) or [tokenizer.unk_token_id or 0]
            for i, word in enumerate(example.tokens)
        ]
        start, windows = 0, 0
        while start < len(pieces):
            ids, word_index, end = list(bos), [], start
            while end < len(pieces) and (len(ids) + len(pieces[end]) <= max_length or end == start):
                word_index.append(len(ids))
                ids += pieces[end][: max_length - len(ids)] if end == start else pieces[end]
                end += 1
            labels = [tag_index.get(tag, IGNORE) for tag in example.tags[start:end]] if with_labels else []
            encoded.append(Encoded(k, start, ids + eos, word_index, labels))
            start, windows = end, windows + 1
        windowed += windows > 1
    if windowed:
        warnings.warn(
            f"{windowed} text(s) longer than max_length={max_length} tokens were cut into windows of whole words",
            stacklevel=2,
        )
    return encoded


def special_ids(tokenizer) -> tuple[list[int], list[int]]:
    """Ids put before and after each window: [BOS] and nothing (Llama), or [CLS] and [SEP] (no BOS: BERT)."""
    if tokenizer.bos_token_id is not None:
        return [tokenizer.bos_token_id], []
    cls, sep = getattr(tokenizer, "cls_token_id", None), getattr(tokenizer, "sep_token_id", None)
    return ([cls] if cls is not None else []), ([sep] if sep is not None and cls is not None else [])


def collate(batch: list[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(e.input_ids) for e in batch)
    words = max(len(e.word_index) for e in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
    word_index = torch.zeros((len(batch), words), dtype=torch.long)
    word_mask = torch.zeros((len(batch), words), dtype=torch.bool)
    labels = torch.full((len(batch), words), IGNORE, dtype=torch.long)
    for row, e in enumerate(batch):
        input_ids[row, : len(e.input_ids)] = torch.tensor(e.input_ids)
        attention_mask[row, : len(e.input_ids)] = 1
        word_index[row, : len(e.word_index)] = torch.tensor(e.word_index)
        word_mask[row, : len(e.word_index)] = True
        if e.labels:
            labels[row, : len(e.labels)] = torch.tensor(e.labels)
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "word_index": word_index,
        "word_mask": word_mask,
        "labels": labels,
    }


def class_weights_from(encoded: list[Encoded], size: int) -> torch.Tensor:
    """Inverse-frequency weights (square-rooted, mean 1) so that rare entity tags count more than O."""
    counts = torch.ones(size)
    for e in encoded:
        for label in e.labels:
            if label != IGNORE:
                counts[label] += 1
    weights = (counts.sum() / counts).sqrt()
    return weights / weights.mean()


# -------------------------------------------------------------------------------------- building


def load_backbone(model_path: str, precision: str, attention: str, trust_remote_code: bool = False):
    from transformers import AutoModel

    from instruct_ner.sft.models import load_causal_lm

    backbone = load_causal_lm(model_path, precision, trust_remote_code, model_class=AutoModel)
    set_attention(backbone, attention)
    return backbone


def add_lora(backbone, config):
    """The backbone with a fresh LoRA adapter (`config`: a peft LoraConfig, see sft.options.lora_config)."""
    from peft import get_peft_model, prepare_model_for_kbit_training

    from instruct_ner.sft.models import is_quantized

    if is_quantized(backbone):
        backbone = prepare_model_for_kbit_training(backbone, use_gradient_checkpointing=False)
    targets = config.target_modules
    if targets is not None and targets != "all-linear":  # an encoder names its projections differently
        import dataclasses

        config = dataclasses.replace(config, target_modules=lora_targets(backbone, sorted(targets)))
    return get_peft_model(backbone, config)


def lora_targets(backbone, requested: list[str]) -> list[str]:
    """The requested LoRA targets, or the architecture's own when none of them names a module of an encoder.

    Example: lora_targets(bert, ["q_proj", "v_proj"]) -> ["query", "key", "value", "dense"]
    """
    if not is_encoder(backbone):
        return requested
    leaves = {name.rsplit(".", 1)[-1] for name, _ in backbone.named_modules()}
    if set(requested) & leaves or requested == ["all-linear"]:
        return requested
    targets = ENCODER_LORA_TARGETS[backbone.config.model_type]
    print(f"LoRA targets {requested} name no {backbone.config.model_type} module; using {targets}", file=sys.stderr)
    return targets


def save_tagger(model: TokenTagger, tokenizer, output_dir: str | Path, artifact) -> None:
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    if hasattr(model.backbone, "peft_config"):
        model.backbone.save_pretrained(str(output_dir))
    torch.save({k: v.cpu() for k, v in model.head_modules().state_dict().items()}, output_dir / HEAD_WEIGHTS)
    torch.save(model.class_weights.cpu(), output_dir / CLASS_WEIGHTS)
    tokenizer.save_pretrained(str(output_dir))
    artifact.save(output_dir)


def load_tensors(path: Path):
    """Tensors saved by `save_tagger`, loaded as tensors and plain values only (never unpickling code): a tampered
    or foreign file is a one-line ModelError naming it, not an UnpicklingError traceback."""
    import pickle

    from instruct_ner.sft.models import ModelError

    if not path.exists():
        raise ModelError(f"{path}: missing; not a folder written by instruct-ner train-tagger")
    try:
        return torch.load(path, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, EOFError, ValueError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ModelError(f"{path}: refused: not a file of tensors ({first[:200]})") from None


def load_tagger(
    adapter_dir: str | Path,
    model: str | None = None,
    precision: str | None = None,
    artifact=None,
    trust_remote_code=False,
):
    """(TokenTagger, tokenizer, Artifact) from a folder written by `instruct-ner train-tagger`.

    `model` and `precision` (when given, not None) win over the ones saved with the tagger (`explicit_or_saved`, the
    one rule): an explicit empty `model` means the embedded model, not the saved one.
    """
    from peft import PeftModel

    from instruct_ner.config import explicit_or_saved
    from instruct_ner.sft.artifact import Artifact
    from instruct_ner.sft.models import ModelError, load_tokenizer, resolve_model

    adapter_dir = Path(adapter_dir)
    artifact = artifact or Artifact.load(adapter_dir, kind="tagger")
    saved = artifact.tagger
    given = {name: value for name, value in {"model": model, "precision": precision}.items() if value is not None}
    chosen = {"precision": "auto", **explicit_or_saved(given, artifact.saved_options())}
    model_path = resolve_model(chosen.get("model"))
    backbone = load_backbone(model_path, chosen["precision"], saved["attention"], trust_remote_code)
    if (adapter_dir / "adapter_config.json").exists():
        backbone = PeftModel.from_pretrained(backbone, str(adapter_dir))
        set_attention(backbone, saved["attention"])
    tagger = TokenTagger(
        backbone,
        artifact.labels,
        saved["head"],
        saved["loss"],
        tuple(saved.get("loss_weights", (0.5, 0.3, 0.2))),
        load_tensors(adapter_dir / CLASS_WEIGHTS),
        saved.get("lstm_hidden", 256),
        0.0,
    )
    try:
        tagger.head_modules().load_state_dict(load_tensors(adapter_dir / HEAD_WEIGHTS))
    except (RuntimeError, KeyError, TypeError, AttributeError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ModelError(f"{adapter_dir / HEAD_WEIGHTS}: not this tagger's head weights ({first})") from None
    tagger.eval()
    return tagger, load_tokenizer(str(adapter_dir)), artifact


def trainable_parameters(model: nn.Module) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())
