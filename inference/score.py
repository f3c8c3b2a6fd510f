"""`instruct-ner score`: entity-level precision, recall and F1 (seqeval) of `pred_tags` against `tags`.

Reports each type, the micro and macro averages and token accuracy; `--strict` scores in seqeval's
strict IOB2 mode (an entity counts only if its B-/I- tags are well formed), the default is conlleval's
lenient reading. Prints a table; `--out` writes the same numbers as JSON. If the records carry parse
diagnostics (from `parse`, `generate`), their totals are reported as well.

Examples:
    instruct-ner score runs/valid.parsed.jsonl
    instruct-ner score --data runs/predictions.jsonl --out runs/scores.json --strict
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from instruct_ner.inference.parser import total_diagnostics
from instruct_ner.prompts.examples import DataError, labels_of, tags_to_spans
from instruct_ner.prompts.jsonl import iter_jsonl

from instruct_ner.config import ConfigError, parse_config

DIAGNOSTIC_KEYS = (
    "mentions",
    "entities",
    "hallucinated",
    "unknown_label",
    "malformed",
    "truncated",
    "overlaps_removed",
    "out_of_order",
    "snapped",
)


@dataclass
class ScoreConfig:
    data: str | None = field(default=None, metadata={"help": "JSONL with tags and pred_tags", "positional": True})
    out: str | None = field(default=None, metadata={"help": "also write the scores to this JSON file"})
    strict: bool = field(default=False, metadata={"help": "seqeval strict mode with the IOB2 scheme"})

    def __post_init__(self) -> None:
        if not self.data:
            raise ConfigError("score needs a JSONL file: instruct-ner score --data FILE.jsonl")


def score_tags(gold: list[list[str]], pred: list[list[str]], strict: bool = False) -> dict:
    """seqeval precision/recall/F1 per type, micro and macro averages, and token accuracy.

    Example: score_tags([["B-PER", "O"]], [["B-PER", "O"]])["micro"]["f1"] -> 1.0
    """
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2

    options = {"mode": "strict", "scheme": IOB2} if strict else {}
    tokens = sum(len(tags) for tags in gold)
    correct = sum(g == p for gold_tags, pred_tags in zip(gold, pred) for g, p in zip(gold_tags, pred_tags))
    types = labels_of(gold) + [label for label in labels_of(pred) if label not in labels_of(gold)]
    accuracy = correct / tokens if tokens else 0.0
    result = {
        "per_type": {},
        "micro": _zero(),
        "macro": _zero(),
        "token_accuracy": accuracy,
        "sentences": len(gold),
        "tokens": tokens,
        "gold_entities": sum(len(tags_to_spans(t)) for t in gold),
        "predicted_entities": sum(len(tags_to_spans(t)) for t in pred),
    }
    if not types:
        result["micro"] = result["macro"] = {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 0}
        return result
    report = classification_report(gold, pred, output_dict=True, zero_division=0, **options)
    for label in sorted(types):
        row = report.get(label, _zero())
        result["per_type"][label] = _row(row)
    result["micro"], result["macro"] = _row(report["micro avg"]), _row(report["macro avg"])
    return result


def _zero() -> dict:
    return {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def _row(row: dict) -> dict:
    return {
        "precision": float(row["precision"]),
        "recall": float(row["recall"]),
        "f1": float(row["f1-score"]),
        "support": int(row["support"]),
    }


def read_tag_pairs(path: str | Path) -> tuple[list[list[str]], list[list[str]], list[dict]]:
    """Gold and predicted tags of every record; a record lacking either, or of unequal lengths, is an error."""
    gold, pred, diagnostics = [], [], []
    for where, record in iter_jsonl(path):
        for key in ("tags", "pred_tags"):
            if not isinstance(record.get(key), list):
                hint = " (run parse, generate or tag first)" if key == "pred_tags" else ""
                raise DataError(where, f"record has no {key!r} list{hint}", "missing_field")
        if len(record["tags"]) != len(record["pred_tags"]):
            raise DataError(where, f"{len(record['tags'])} tags but {len(record['pred_tags'])} pred_tags", "length")
        gold.append(record["tags"])
        pred.append(record["pred_tags"])
        if isinstance(record.get("parse"), dict):
            diagnostics.append(record["parse"])
    if not gold:
        raise DataError(str(path), "no records to score", "empty")
    return gold, pred, diagnostics


def score_file(path: str | Path, strict: bool = False) -> dict:
    gold, pred, diagnostics = read_tag_pairs(path)
    result = score_tags(gold, pred, strict)
    if diagnostics:
        totals = total_diagnostics(diagnostics)
        result["parse"] = {key: totals[key] for key in DIAGNOSTIC_KEYS}
    result["file"] = str(path)
    result["mode"] = "strict" if strict else "conlleval"
    return result


def format_table(result: dict) -> str:
    lines = [f"{'type':<10}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}"]
    rows = [*result["per_type"].items(), ("micro", result["micro"]), ("macro", result["macro"])]
    for name, row in rows:
        if name == "micro":
            lines.append("-" * 50)
        lines.append(
            f"{name:<10}{row['precision']:>10.4f}{row['recall']:>10.4f}{row['f1']:>10.4f}{row['support']:>10}"
        )
    lines.append(
        f"token accuracy {result['token_accuracy']:.4f} over {result['tokens']} tokens, "
        f"{result['sentences']} sentences ({result.get('mode', 'conlleval')} mode)"
    )
    if "parse" in result:
        lines.append("parse: " + ", ".join(f"{k} {v}" for k, v in result["parse"].items()))
    micro = result["micro"]
    lines.append(f"micro F1 = {micro['f1']:.4f} (precision {micro['precision']:.4f}, recall {micro['recall']:.4f})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    config = parse_config(ScoreConfig, argv, prog="instruct-ner score", description=__doc__)
    result = score_file(config.data, config.strict)
    print(format_table(result))
    if config.out:
        Path(config.out).parent.mkdir(parents=True, exist_ok=True)
        Path(config.out).write_text(json.dumps(result, indent=2), encoding="utf-8")
        print(f"scores written to {config.out}", file=sys.stderr)
    return 0
