"""The frozen backbone's word features, computed once and cached on disk, so that training a head over a frozen
backbone runs the head only at every step.

The cache file (safetensors, in the cache dir's tagger-features/ by default) is named by a hash of everything the
features depend on: the model (config, weight files, dtype), the attention, the layer read, max_length and the data as
the backbone sees it. Slot 0 of each window's features is the padding value, so that a batch of cached features equals
the uncached batch exactly. It does not train or decide when to use the cache (sft/train_tagger.py does).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from instruct_ner.jsonl import atomic_path
from instruct_ner.sft.tagger import Encoded, TokenTagger, collate

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
    from safetensors.torch import load_file, save_file

    from instruct_ner.sft.models import cache_dir

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
