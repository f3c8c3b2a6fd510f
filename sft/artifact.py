"""The description of a trained model folder, read and written here only: `instruct_ner.json`.

Both kinds of folder carry one: a LoRA adapter written by `train` (kind `generative`) and a token
classifier written by `train-tagger` (kind `tagger`). It holds what inference needs to rebuild the
model and its inputs exactly: the label set, the base model (`embedded` for the embedded default),
the precision it was trained at, the training config, and per kind either the prompt builder
(template source, style, labels, definitions, few-shot examples) or the tagger's head and attention.
`generate`, `tag`, the Python API (`NER.from_pretrained`) and the trainers all go through
`Artifact.load` / `Artifact.save`.

Folders from before this file had `kind` (a generative `instruct_ner.json` without it, or a tagger's
`tagger.json`) are still read. This module loads no model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from instruct_ner.sft.models import EMBEDDED, ModelError

ARTIFACT_FILE = "instruct_ner.json"
LEGACY_TAGGER_FILE = "tagger.json"
KINDS = ("generative", "tagger")
WINDOW_STRETCH = 2  # a prediction window holds at most this many times the longest training text's tokens
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")


@dataclass
class Artifact:
    """What a trained folder is: `kind`, `labels`, `base_model`, `precision`, `training_config`, and

    - generative: `prompt` (PromptBuilder.to_dict()) and `response_format`;
    - tagger: `tagger` = {tags, attention, head, loss, loss_weights, lstm_hidden, max_length};
    - either, once calibrated: `calibration` = {method: temperature | platt, a, b}, applied to every entity's
      score at prediction (`inference.confidence.Calibration`);
    - either: `longest_text_tokens`, the longest training text in the base model's tokens, which bounds the
      default prediction window (`window_cap`; absent in folders trained before it was recorded);
    - either: `sentences_per_text`, how many sentences nine in ten training texts hold at most, which bounds a
      generative model's default prediction window (`window_sentences`; absent in older folders).
    """

    kind: str
    labels: list[str]
    base_model: str = EMBEDDED
    precision: str = "auto"
    training_config: dict = field(default_factory=dict)
    prompt: dict | None = None
    response_format: str | None = None
    tagger: dict = field(default_factory=dict)
    base_model_path: str | None = None
    calibration: dict = field(default_factory=dict)  # {method, a, b}: `instruct-ner calibrate`'s fit
    longest_text_tokens: int | None = None
    sentences_per_text: int | None = None

    def __post_init__(self) -> None:
        """A description is checked as it loads: a folder downloaded or edited by hand is input like any other."""
        if self.kind not in KINDS:
            raise ModelError(f"artifact kind must be one of {KINDS}, not {self.kind!r}")
        from instruct_ner.errors import DataError
        from instruct_ner.prompts.labels import check_labels

        try:
            check_labels(self.labels, "labels")
        except DataError as error:
            raise ModelError(f"{ARTIFACT_FILE}: {error}") from None
        for name in ("base_model", "precision"):
            if not isinstance(getattr(self, name), str):
                raise ModelError(f"{ARTIFACT_FILE}: {name} must be a string, not {getattr(self, name)!r}")
        if self.kind == "tagger":
            from instruct_ner.sft.tagger_spec import ATTENTIONS, HEADS, LOSSES

            spec = self.tagger if isinstance(self.tagger, dict) else {}
            expected = {"attention": ATTENTIONS, "head": HEADS, "loss": LOSSES}
            for key, choices in expected.items():
                if spec.get(key) not in choices:
                    raise ModelError(
                        f"{ARTIFACT_FILE}: a tagger needs tagger.{key} in {choices}, found {spec.get(key)!r} "
                        "(not a folder written by instruct-ner train-tagger?)"
                    )
            weights = spec.get("loss_weights", [0.5, 0.3, 0.2])
            if not (isinstance(weights, list) and len(weights) == 3 and all(type(w) in (int, float) for w in weights)):
                raise ModelError(f"{ARTIFACT_FILE}: tagger.loss_weights must be three numbers, not {weights!r}")
            if type(spec.get("lstm_hidden", 256)) is not int:
                raise ModelError(f"{ARTIFACT_FILE}: tagger.lstm_hidden must be a whole number")
        calibration = self.calibration
        if calibration and not (
            isinstance(calibration, dict)
            and calibration.get("method") in ("temperature", "platt")
            and all(type(calibration.get(k, 0.0)) in (int, float) for k in ("a", "b"))
            and calibration.get("a", 0) > 0
        ):
            raise ModelError(f"{ARTIFACT_FILE}: calibration must be {{method, a > 0, b}}, not {calibration!r}")
        for name in ("longest_text_tokens", "sentences_per_text"):
            value = getattr(self, name)
            if value is not None and not (type(value) is int and value >= 1):
                raise ModelError(f"{ARTIFACT_FILE}: {name} must be a whole number >= 1, not {value!r}")
        if self.kind != "tagger" and self.prompt is not None and not isinstance(self.prompt, dict):
            raise ModelError(f"{ARTIFACT_FILE}: prompt must be a mapping, not {type(self.prompt).__name__}")

    def builder(self):
        """The exact prompt builder of a generative artifact."""
        from instruct_ner.prompts.templates import PromptBuilder

        if self.kind != "generative" or not self.prompt:
            raise ModelError(f"a {self.kind} artifact has no prompt builder")
        return PromptBuilder.from_dict(self.prompt)

    def window_cap(self) -> int | None:
        """The default most text tokens of one prediction window: WINDOW_STRETCH times the longest training text.

        A model trained on sentences and asked about a whole article in one window reads a text unlike any it
        learned on, and finds fewer entities (CoNLL-2003 test as documents, BENCHMARKS.md); windows a little longer
        than its training texts keep it on familiar ground while merging still sees whole sentences. None (no cap
        beyond the model's context) for folders that do not record the length.
        Example: Artifact("generative", ["PER"], longest_text_tokens=59).window_cap() -> 118
        """
        return None if self.longest_text_tokens is None else WINDOW_STRETCH * self.longest_text_tokens

    def window_sentences(self) -> int | None:
        """The default most sentences of one prediction window: a generative model's `sentences_per_text`.

        A generative model fine-tuned on one sentence per prompt answers a window of several sentences with a list
        that stops short (CoNLL-2003 test as documents, the entity list: recall 0.51 in windows of 59 tokens against
        the sentences' own, BENCHMARKS.md), so it reads as many sentences per window as its training texts held. A
        tagger labels every token in one forward pass and gains from neighbouring sentences (documents 0.671 vs
        sentences 0.663): no limit for it, nor for folders that do not record the count.
        Example: Artifact("generative", ["PER"], sentences_per_text=1).window_sentences() -> 1
        """
        return self.sentences_per_text if self.kind == "generative" else None

    def saved_options(self) -> dict:
        """The options saved with the folder that an explicit one overrides (`config.explicit_or_saved`)."""
        return {"model": self.base_model, "precision": self.precision}

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / ARTIFACT_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        saved = {k: v for k, v in dataclasses.asdict(self).items() if v not in (None, {})}
        from instruct_ner.jsonl import write_text_atomic

        # atomic: `calibrate` rewrites a finished folder's description, which a cut-off write must not leave broken
        write_text_atomic(path, json.dumps(saved, indent=2, ensure_ascii=False))
        return path

    @classmethod
    def load(cls, folder: str | Path, kind: str | None = None) -> Artifact:
        """Read a folder's description; `kind` (when given) must match. A missing file is a ModelError."""
        folder = Path(folder)
        if not folder.is_dir():
            raise ModelError(f"{folder}: folder not found")
        path, legacy = folder / ARTIFACT_FILE, folder / LEGACY_TAGGER_FILE
        if path.exists():
            saved = _read(path)
            saved.setdefault("kind", "generative")
        elif legacy.exists():
            saved = _read(legacy)
            tagger_keys = ("tags", "attention", "head", "loss", "loss_weights", "lstm_hidden", "max_length")
            saved = {
                "kind": "tagger",
                "tagger": {k: saved.pop(k) for k in tagger_keys if k in saved},
                **saved,
            }
        else:
            raise ModelError(
                f"{folder}: no {ARTIFACT_FILE}; not a folder written by instruct-ner train or train-tagger"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        try:
            artifact = cls(**{k: v for k, v in saved.items() if k in known})
        except TypeError as error:
            raise ModelError(f"{path}: {error}") from None
        if kind is not None and artifact.kind != kind:
            command = "train" if kind == "generative" else "train-tagger"
            raise ModelError(f"{folder}: a {artifact.kind} folder, not one written by instruct-ner {command}")
        return artifact


def fingerprint(folder: str | Path) -> str:
    """SHA-256 over a trained folder's description and weight files (names and contents, top level only).

    A folder retrained in place gets a new fingerprint, where its path stays the same: `generate --resume`
    compares it so that one output never mixes two models' predictions. Checkpoint subfolders are ignored.

    Example: fingerprint("runs/adapter") -> "3f1c...e9" (64 hex digits)
    """
    folder = Path(folder)
    files = sorted(
        p for p in folder.iterdir() if p.is_file() and (p.name == ARTIFACT_FILE or p.suffix in WEIGHT_SUFFIXES)
    )
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()


def _read(path: Path) -> dict:
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ModelError(f"{path}: not valid JSON ({error.msg})") from None
    if not isinstance(saved, dict):
        raise ModelError(f"{path}: expected a JSON object")
    return saved


def check_labels(trained: list[str], data_labels: list[str], folder: str | Path, data: str | Path) -> None:
    """Data may only use labels the model was trained with (the one label-set check of generate and tag)."""
    from instruct_ner.config import ConfigError

    if unknown := sorted(set(data_labels) - set(trained)):
        raise ConfigError(
            f"the model {folder} was trained with labels {trained}; the data {data} has {unknown} as well"
        )


TEXT_SENTENCES_QUANTILE = 0.9  # `sentences_per_text`: what nine in ten training texts hold at most


def sentences_per_text(texts: list[str]) -> int | None:
    """How many sentences (`prompts.tokenize.sentence_bounds`) nine in ten of the texts hold at most; None without
    texts. A quantile, not the most: a few training texts that the splitter cuts twice (a headline with a full stop
    inside) must not turn a model trained on sentences into one that reads paragraphs.

    Example: sentences_per_text(["One."] * 9 + ["Un. Deux. Trois."]) -> 1
    """
    from instruct_ner.prompts.tokenize import sentence_bounds

    counts = sorted(max(1, len(sentence_bounds(text))) for text in texts)
    if not counts:
        return None
    return counts[max(0, math.ceil(TEXT_SENTENCES_QUANTILE * len(counts)) - 1)]


def longest_text_tokens(texts: list[str], tokenizer) -> int | None:
    """The longest of the training texts in the tokenizer's tokens (no special tokens); None without texts."""
    if not texts:
        return None
    return max(len(ids) for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]) or None
