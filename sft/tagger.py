"""The token-classification variant: a Llama backbone (causal or bidirectional attention) with LoRA, or
frozen, under a linear, CRF or BiLSTM-CRF head, trained on word-level IOB2 labels.

- `attention: bidirectional` removes the causal mask in every layer (padding stays masked): the
  config's `is_causal` makes transformers build a bidirectional mask, and every attention module's
  `is_causal` keeps SDPA from falling back to its own causal mask when no mask is materialised.
- Each word is represented by its first sub-token; the other sub-tokens are not labelled.
- Heads: `linear`, `crf` (linear + `sft.crf.CRF`), `bilstm-crf` (a BiLSTM over the frozen backbone's
  hidden states, then linear + CRF). Losses: `ce` (cross-entropy for `linear`, CRF negative
  log-likelihood for the CRF heads) or `compound` = w1 * class-weighted cross-entropy + w2 * CRF NLL +
  w3 * label-smoothed cross-entropy (defaults 0.5 / 0.3 / 0.2; needs a CRF head).
- Decoding is Viterbi restricted to valid IOB2 transitions for every head, so output is always valid IOB2.
- Texts longer than `max_length` tokens are cut into windows of whole words (a warning says how many).
- Encoder backbones (BERT family, e.g. MiniLM-L6) work too: they are bidirectional already (`causal` is
  refused), each window is wrapped in [CLS] ... [SEP], and LoRA targets their own projection names.

The training loop is ours (AdamW, cosine schedule with warm-up, gradient clipping, checkpoints with
optimizer state, the newest `save_total_limit` kept, resume), since the model is not a Hugging Face
`PreTrainedModel`. `instruct-ner tag` (inference/tag.py) loads what `save_tagger` writes; the folder's
description is `sft/artifact.py`'s.
"""

from __future__ import annotations

import json
import math
import random
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from instruct_ner.sft.crf import CRF, constrained_decode
from instruct_ner.sft.options import prune_checkpoints
from torch import nn

from instruct_ner.examples import Example, iob1_to_iob2
from instruct_ner.jsonl import atomic_path

HEADS = ("linear", "crf", "bilstm-crf")
LOSSES = ("ce", "compound")
ATTENTIONS = ("causal", "bidirectional")
IGNORE = -100
HEAD_WEIGHTS = "head.pt"
TRAINING_STATE = "training_state.pt"


def tag_names(labels: list[str]) -> list[str]:
    """IOB2 tag names for a label set, O first. Example: tag_names(["PER"]) -> ["O", "B-PER", "I-PER"]"""
    return ["O"] + [f"{prefix}-{label}" for label in labels for prefix in ("B", "I")]


# Encoder (BERT-family) model types: bidirectional by construction, and their LoRA target module names.
ENCODER_LORA_TARGETS = {
    "bert": ["query", "key", "value", "dense"],
    "roberta": ["query", "key", "value", "dense"],
    "xlm-roberta": ["query", "key", "value", "dense"],
    "electra": ["query", "key", "value", "dense"],
    "distilbert": ["q_lin", "k_lin", "v_lin", "out_lin", "lin1", "lin2"],
}


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

    def loss(self, emissions, labels, word_mask) -> torch.Tensor:
        flat_emissions, flat_labels = emissions.reshape(-1, emissions.shape[-1]), labels.reshape(-1)
        if self.loss_kind == "ce" and self.crf is None:
            return nn.functional.cross_entropy(flat_emissions, flat_labels, ignore_index=IGNORE)
        crf_nll = -self.crf.log_likelihood(emissions, labels.clamp(min=0), word_mask).mean()
        if self.loss_kind == "ce":
            return crf_nll
        weighted = nn.functional.cross_entropy(
            flat_emissions, flat_labels, weight=self.class_weights, ignore_index=IGNORE
        )
        smoothed = nn.functional.cross_entropy(
            flat_emissions, flat_labels, ignore_index=IGNORE, label_smoothing=self.label_smoothing
        )
        w_ce, w_crf, w_smooth = self.loss_weights
        return w_ce * weighted + w_crf * crf_nll + w_smooth * smoothed

    def forward(self, input_ids, attention_mask, word_index, word_mask, labels=None, features=None):
        emissions = self.emissions(input_ids, attention_mask, word_index, features)
        return emissions, (self.loss(emissions, labels, word_mask) if labels is not None else None)

    @torch.no_grad()
    def decode(self, emissions, word_mask) -> list[list[str]]:
        if self.crf is not None:
            paths = self.crf.decode(emissions, word_mask)
        else:
            paths = constrained_decode(emissions.log_softmax(-1), word_mask, self.tags)
        return [[self.tags[i] for i in path] for path in paths]


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


# ------------------------------------------------------------------------------- feature cache

FEATURE_CACHE_VERSION = 1


def backbone_is_frozen(model: TokenTagger) -> bool:
    return not any(p.requires_grad for p in model.backbone.parameters())


def feature_cache_key(model: TokenTagger, encoded: list[Encoded], max_length: int) -> str:
    """A hash of everything a frozen backbone's word features depend on: the model (its config, weight
    files' names, sizes and times, dtype), the attention, the layer read, max_length and the data as the
    backbone sees it (token ids and first-sub-token positions of every window)."""
    import hashlib

    backbone = model.backbone
    config = backbone.config
    digest = hashlib.sha256()
    source = Path(str(getattr(config, "name_or_path", "") or ""))
    weights = []
    if source.is_dir():
        for path in sorted(source.glob("*.safetensors")) + sorted(source.glob("*.bin")):
            stat = path.stat()
            weights.append((path.name, stat.st_size, stat.st_mtime_ns))
    identity = {
        "version": FEATURE_CACHE_VERSION,
        "config": config.to_json_string(use_diff=False),
        "weights": weights,
        "dtype": str(next(backbone.parameters()).dtype),
        "attention": bool(getattr(config, "is_causal", True)),
        "layer": "last_hidden_state",
        "max_length": max_length,
    }
    digest.update(json.dumps(identity, sort_keys=True, default=str).encode())
    for e in encoded:
        digest.update(json.dumps([e.input_ids, e.word_index]).encode())
    return digest.hexdigest()[:32]


@torch.no_grad()
def compute_features(
    model: TokenTagger, encoded: list[Encoded], pad_id: int, batch_size: int = 16
) -> list[torch.Tensor]:
    """Word features of every window ([1 + words, hidden], slot 0 the padding value; backbone dtype)."""
    was_training = model.training
    model.eval()
    device = model.device
    dtype = next(model.backbone.parameters()).dtype
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].input_ids))
    features: list[torch.Tensor | None] = [None] * len(encoded)
    for start in range(0, len(order), batch_size):
        ids = order[start : start + batch_size]
        batch = collate([encoded[i] for i in ids], pad_id)
        # Slot 0 is position 0's state: what a padded word slot holds in the uncached path (word_index pads
        # with 0), since a BiLSTM reads padded slots too; collate_features pads with it, so batches match exactly.
        word_index = torch.cat([torch.zeros_like(batch["word_index"][:, :1]), batch["word_index"]], 1)
        words = model.word_features(
            batch["input_ids"].to(device), batch["attention_mask"].to(device), word_index.to(device)
        )
        for row, i in enumerate(ids):
            features[i] = words[row, : 1 + len(encoded[i].word_index)].to(dtype).cpu().clone()
    model.train(was_training)
    return features


def cached_features(
    model: TokenTagger, encoded: list[Encoded], pad_id: int, max_length: int, folder: Path | None = None
) -> list[torch.Tensor]:
    """A frozen backbone's word features, read from `folder` (default: the cache dir's tagger-features/) when
    computed before for the same model, attention, precision, max_length and data; computed and saved
    (safetensors) otherwise."""
    from instruct_ner.sft.models import cache_dir
    from safetensors.torch import load_file, save_file

    folder = Path(folder) if folder is not None else cache_dir() / "tagger-features"
    path = folder / f"{feature_cache_key(model, encoded, max_length)}.safetensors"
    if path.exists():
        stored = load_file(str(path))
        flat, offsets = stored["features"], stored["offsets"].tolist()
        if len(offsets) == len(encoded) + 1:
            print(f"frozen backbone: word features read from {path}", file=sys.stderr)
            return [flat[offsets[i] : offsets[i + 1]] for i in range(len(encoded))]
    import time

    started = time.perf_counter()
    features = compute_features(model, encoded, pad_id)
    offsets = [0]
    for f in features:
        offsets.append(offsets[-1] + f.shape[0])
    # atomic, and a file of this writer's own: a cut-off run never leaves half a cache, two runs never mix theirs
    with atomic_path(path) as partial:
        save_file({"features": torch.cat(features), "offsets": torch.tensor(offsets)}, str(partial))
    print(
        f"frozen backbone: word features of {len(encoded)} windows computed in {time.perf_counter() - started:.1f} s, "
        f"cached in {path}",
        file=sys.stderr,
    )
    return features


def collate_features(features: list[torch.Tensor]) -> torch.Tensor:
    """[batch, words, hidden] float; each row's padded slots hold its slot 0 (see compute_features)."""
    words = max(f.shape[0] for f in features) - 1
    out = torch.empty(len(features), words, features[0].shape[-1])
    for row, f in enumerate(features):
        out[row] = f[0].float()
        out[row, : f.shape[0] - 1] = f[1:].float()
    return out


# -------------------------------------------------------------------------------------- building


def load_backbone(model_path: str, precision: str, attention: str, trust_remote_code: bool = False):
    from instruct_ner.sft.models import load_causal_lm
    from transformers import AutoModel

    backbone = load_causal_lm(model_path, precision, trust_remote_code, model_class=AutoModel)
    set_attention(backbone, attention)
    return backbone


def add_lora(backbone, config):
    """The backbone with a fresh LoRA adapter (`config`: a peft LoraConfig, see sft.options.lora_config)."""
    from instruct_ner.sft.models import is_quantized
    from peft import get_peft_model, prepare_model_for_kbit_training

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
    torch.save(model.class_weights.cpu(), output_dir / "class_weights.pt")
    tokenizer.save_pretrained(str(output_dir))
    artifact.save(output_dir)


def load_tagger(
    adapter_dir: str | Path,
    model: str | None = None,
    precision: str | None = None,
    artifact=None,
    trust_remote_code=False,
):
    """(TokenTagger, tokenizer, Artifact) from a folder written by `instruct-ner train-tagger`.

    `model` and `precision` (when given) win over the ones saved with the tagger.
    """
    from instruct_ner.sft.artifact import Artifact
    from instruct_ner.sft.models import load_tokenizer, resolve_model
    from peft import PeftModel

    adapter_dir = Path(adapter_dir)
    artifact = artifact or Artifact.load(adapter_dir, kind="tagger")
    saved = artifact.tagger
    model_path = resolve_model(model or artifact.base_model)
    backbone = load_backbone(model_path, precision or artifact.precision, saved["attention"], trust_remote_code)
    if (adapter_dir / "adapter_config.json").exists():
        backbone = PeftModel.from_pretrained(backbone, str(adapter_dir))
        set_attention(backbone, saved["attention"])
    tagger = TokenTagger(
        backbone,
        artifact.labels,
        saved["head"],
        saved["loss"],
        tuple(saved["loss_weights"]),
        torch.load(adapter_dir / "class_weights.pt", weights_only=True),
        saved["lstm_hidden"],
        0.0,
    )
    tagger.head_modules().load_state_dict(torch.load(adapter_dir / HEAD_WEIGHTS, weights_only=True))
    tagger.eval()
    return tagger, load_tokenizer(str(adapter_dir)), artifact


def trainable_parameters(model: nn.Module) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


def train_loop(
    model: TokenTagger,
    encoded: list[Encoded],
    tokenizer,
    config,
    output_dir: str | Path,
    save: callable,
    resume_from: str | None = None,
    step_callback=None,
    feature_cache: bool | None = None,
) -> dict:
    """AdamW + cosine schedule with warm-up; checkpoints (weights + optimizer + scheduler + step) and resume.

    `step_callback(step)` runs after every optimizer step; returning False stops training there. If it has a
    `bind(model, tokenizer, total_steps)` method, that is called once before the first step.
    With a frozen backbone (`feature_cache` None = whenever the backbone is frozen), its word features are
    computed once (or read from the on-disk cache) and every step runs the head only.
    """
    import time

    from transformers import get_cosine_schedule_with_warmup

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    batches_per_epoch = math.ceil(len(encoded) / config.per_device_train_batch_size)
    total = config.max_steps if config.max_steps > 0 else math.ceil(batches_per_epoch * config.num_train_epochs)
    scheduler = get_cosine_schedule_with_warmup(optimizer, int(config.warmup_ratio * total), total)
    step, losses = 0, []
    if resume_from:
        state = load_training_state(Path(resume_from) / TRAINING_STATE)
        model.load_state_dict(state["model"], strict=False)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, losses = state["step"], state["losses"]
    rng = random.Random(config.seed)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = model.device
    use_cache = backbone_is_frozen(model) if feature_cache is None else feature_cache
    features_started = time.perf_counter()
    features = (
        cached_features(
            model, encoded, pad_id, getattr(config, "max_length", 512), getattr(config, "feature_cache_dir", None)
        )
        if use_cache
        else None
    )
    epoch_started: list[float] = []
    order: list[int] = []
    for _ in range(step // batches_per_epoch + 1):  # replay the shuffles of finished epochs, for a faithful resume
        order = list(range(len(encoded)))
        rng.shuffle(order)
    position = (step % batches_per_epoch) * config.per_device_train_batch_size
    started = time.perf_counter()
    if hasattr(step_callback, "bind"):  # a callback that evaluates the model (dev-F1 early stopping) gets it here
        step_callback.bind(model, tokenizer, total)
    model.train()
    while step < total:
        if position >= len(order):
            order = list(range(len(encoded)))
            rng.shuffle(order)
            position = 0
        if position == 0:
            epoch_started.append(time.perf_counter())
        chosen = order[position : position + config.per_device_train_batch_size]
        batch = collate([encoded[i] for i in chosen], pad_id)
        if features is not None:
            batch["features"] = collate_features([features[i] for i in chosen])
        position += config.per_device_train_batch_size
        batch = {k: v.to(device) for k, v in batch.items()}
        _, loss = model(**batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        step += 1
        losses.append(loss.detach().item())
        if step_callback is not None and step_callback(step) is False:  # False stops training (early stopping)
            break
        if step % config.logging_steps == 0:
            print(f"step {step}/{total} loss {losses[-1]:.4f} lr {scheduler.get_last_lr()[0]:.2e}", file=sys.stderr)
        if step % config.save_steps == 0 and step < total:
            checkpoint = Path(output_dir) / f"checkpoint-{step}"
            save(checkpoint)
            trainable = {k: v for k, v in model.state_dict().items() if _is_trainable(model, k)}
            torch.save(
                {
                    "model": trainable,
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "step": step,
                    "losses": [float(loss) for loss in losses],
                },
                checkpoint / TRAINING_STATE,
            )
            prune_checkpoints(output_dir, config.save_total_limit)  # only after the new one is complete
    seconds = time.perf_counter() - started
    ends = [*epoch_started[1:], time.perf_counter()]
    epoch_seconds = [end - begin for begin, end in zip(epoch_started, ends)]
    if epoch_seconds:  # the first epoch carries the feature extraction (or cache read)
        epoch_seconds[0] += epoch_started[0] - features_started
    return {"steps": step, "losses": losses, "seconds": seconds, "epoch_seconds": epoch_seconds}


def load_training_state(path: Path) -> dict:
    """A checkpoint's training state, loaded as tensors and plain values only (never unpickling code).

    `weights_only=True` accepts dicts, lists, tensors, numbers and strings: what `train_loop` saves. Anything
    else (a crafted pickle whose `__reduce__` runs code, for example) is refused with a ModelError.
    """
    import pickle

    from instruct_ner.sft.models import ModelError

    try:
        return torch.load(path, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, EOFError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ModelError(f"{path}: refused: not a training state of tensors and numbers ({message})") from None


def _is_trainable(model: nn.Module, name: str) -> bool:
    parameters = dict(model.named_parameters())
    return name in parameters and parameters[name].requires_grad
