"""`instruct-ner score`: entity-level precision, recall and F1 (seqeval) of `pred_tags` against `tags`.

Reports each type, the micro and macro averages and token accuracy; `--strict` scores in seqeval's
strict IOB2 mode (an entity counts only if its B-/I- tags are well formed), the default is conlleval's
lenient reading. Prints a table; `--out` writes the same numbers as JSON. If the records carry parse
diagnostics (from `parse`, `generate`), their totals are reported as well, with the number of responses
that had text but no readable entity line (prose instead of an entity list) made visible.

Tags are checked before anything is scored: `tags` and `pred_tags` must be lists of tag strings (`O`,
`B-TYPE`, `I-TYPE`) of the same length, and a predicted type must be in the record's `labels` when it has
them; anything else is an error naming the JSONL line.

Examples:
    instruct-ner score runs/valid.parsed.jsonl
    instruct-ner score --data runs/predictions.jsonl --out runs/scores.json --strict
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from instruct_ner.config import ConfigError, parse_config
from instruct_ner.examples import TAG_PATTERN, DataError, labels_of, tags_to_spans
from instruct_ner.inference.confidence import check_entities, confidence_report, plot_pr_curves
from instruct_ner.inference.grounding import total_diagnostics
from instruct_ner.jsonl import iter_jsonl, write_text_atomic
from instruct_ner.outputs import check_outputs

DIAGNOSTIC_KEYS = (
    "mentions",
    "entities",
    "hallucinated",
    "unknown_label",
    "malformed",
    "truncated",
    "partial_word",
    "normalised",
    "overlaps_removed",
    "out_of_order",
    "snapped",
)


@dataclass
class ScoreConfig:
    data: str | None = field(default=None, metadata={"help": "JSONL with tags and pred_tags", "positional": True})
    out: str | None = field(default=None, metadata={"help": "also write the scores to this JSON file"})
    strict: bool = field(default=False, metadata={"help": "seqeval strict mode with the IOB2 scheme"})
    pr_curve: str | None = field(
        default=None, metadata={"help": "draw the precision-recall curve over entity-score thresholds to this PNG"}
    )

    def __post_init__(self) -> None:
        if not self.data:
            raise ConfigError("score needs a JSONL file: instruct-ner score --data FILE.jsonl")


def score_tags(gold: list[list[str]], pred: list[list[str]], strict: bool = False) -> dict:
    """seqeval precision/recall/F1 per type, micro and macro averages, and token accuracy.

    Example: score_tags([["B-PER", "O"]], [["B-PER", "O"]])["micro"]["f1"] -> 1.0
    """
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2

    check_tag_lists(gold, pred)
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


def check_tag_lists(gold, pred, where: str = "tags") -> None:
    """Raise DataError unless `gold` and `pred` are equally long lists of equally long lists of valid tags.

    Every caller of the scorer (the CLI, `compare`, the API's `score`, dev-F1 selection) goes through this, so a
    malformed tag never scores as an entity and a length mismatch never scores silently.
    Example: check_tag_lists([["B-PER"]], [["X-PER"]]) raises DataError("tags: sentence 0: pred_tags[0] is ...")
    """
    for name, sequences in (("gold", gold), ("pred_tags", pred)):
        if isinstance(sequences, str) or not isinstance(sequences, list | tuple):
            raise DataError(
                where, f"{name} must be a list of tag lists, not {type(sequences).__name__}", "invalid_tag"
            )
    if len(gold) != len(pred):
        raise DataError(where, f"{len(gold)} gold sentences but {len(pred)} predicted", "length")
    for k, (gold_tags, pred_tags) in enumerate(zip(gold, pred)):
        for name, tags in (("tags", gold_tags), ("pred_tags", pred_tags)):
            if isinstance(tags, str) or not isinstance(tags, list | tuple):
                raise DataError(where, f"sentence {k}: {name} must be a list of tags, not {tags!r}", "invalid_tag")
            for i, tag in enumerate(tags):
                if not isinstance(tag, str) or not TAG_PATTERN.match(tag):
                    raise DataError(
                        where, f"sentence {k}: {name}[{i}] is {tag!r}; expected O, B-TYPE or I-TYPE", "invalid_tag"
                    )
        if len(gold_tags) != len(pred_tags):
            raise DataError(where, f"sentence {k}: {len(gold_tags)} tags but {len(pred_tags)} pred_tags", "length")


def _zero() -> dict:
    return {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def _row(row: dict) -> dict:
    return {
        "precision": float(row["precision"]),
        "recall": float(row["recall"]),
        "f1": float(row["f1-score"]),
        "support": int(row["support"]),
    }


def check_tag_record(record: dict, where: str) -> None:
    """Raise DataError (naming `where`) unless `tags` and `pred_tags` are equal-length lists of valid tags.

    Example: check_tag_record({"tags": ["O"], "pred_tags": ["X-FOO"]}, "p.jsonl:3") raises
        DataError("p.jsonl:3: pred_tags[0] is 'X-FOO'; expected O, B-TYPE or I-TYPE")
    """
    labels = record.get("labels")
    known = set(labels) if isinstance(labels, list) and all(isinstance(x, str) for x in labels) else None
    for key in ("tags", "pred_tags"):
        tags = record.get(key)
        if not isinstance(tags, list):
            hint = " (run parse, generate or tag first)" if key == "pred_tags" else ""
            raise DataError(where, f"record has no {key!r} list{hint}", "missing_field")
        for i, tag in enumerate(tags):
            if not isinstance(tag, str) or not TAG_PATTERN.match(tag):
                raise DataError(where, f"{key}[{i}] is {tag!r}; expected O, B-TYPE or I-TYPE", "invalid_tag")
            if key == "pred_tags" and known is not None and tag != "O" and tag[2:] not in known:
                raise DataError(
                    where, f"{key}[{i}] is {tag!r}; {tag[2:]!r} is not in the labels {labels}", "invalid_tag"
                )
    if len(record["tags"]) != len(record["pred_tags"]):
        raise DataError(where, f"{len(record['tags'])} tags but {len(record['pred_tags'])} pred_tags", "length")
    tokens = record.get("tokens")
    if isinstance(tokens, list) and len(tokens) != len(record["tags"]):
        raise DataError(where, f"{len(tokens)} tokens but {len(record['tags'])} tags", "length")
    check_entities(record, where)  # their scores feed the confidence report


def read_tag_pairs(path: str | Path) -> tuple[list[list[str]], list[list[str]], list[dict]]:
    """Gold and predicted tags of every record; a record lacking either, or of unequal lengths, is an error."""
    gold, pred, diagnostics = [], [], []
    for where, record in iter_jsonl(path):
        check_tag_record(record, where)
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
        result["parse"]["responses"] = len(diagnostics)
        result["parse"]["unreadable_responses"] = sum(unreadable(d) for d in diagnostics)
    confidence = confidence_report([record for _, record in iter_jsonl(path)])
    if confidence is not None:
        del confidence["reliability"]
        result["confidence"] = confidence
    result["file"] = str(path)
    result["mode"] = "strict" if strict else "conlleval"
    return result


def _count(value) -> int:
    return int(value) if isinstance(value, int | float) else 0


def unreadable(diagnostics: dict) -> bool:
    """A response with text but not one readable entity line and no no-entity marker (prose, for example).

    Example: unreadable({"lines": 3, "mentions": 0, "no_entity_marker": False}) -> True
    """
    return (
        _count(diagnostics.get("lines", 0)) > 0
        and not diagnostics.get("mentions")
        and not (diagnostics.get("no_entity_marker"))
    )


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
        parse = result["parse"]
        lines.append("parse: " + ", ".join(f"{k} {parse[k]}" for k in DIAGNOSTIC_KEYS))
        if parse["unreadable_responses"]:
            lines.append(
                f"parse: {parse['unreadable_responses']} of {parse['responses']} responses had text but no readable "
                "entity line (prose instead of the response format?)"
            )
    if "confidence" in result:
        confidence, best = result["confidence"], result["confidence"]["best_threshold"]
        lines.append(
            f"confidence: {confidence['entities']} scored entities, ECE {confidence['ece']:.4f}; best threshold "
            f"{best['threshold']:.4f} (F1 {best['f1']:.4f}, precision {best['precision']:.4f}, "
            f"recall {best['recall']:.4f})"
        )
    micro = result["micro"]
    lines.append(f"micro F1 = {micro['f1']:.4f} (precision {micro['precision']:.4f}, recall {micro['recall']:.4f})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    config = parse_config(ScoreConfig, argv, prog="instruct-ner score", description=__doc__)
    if config.out or config.pr_curve:
        check_outputs("score", files={"--out": config.out, "--pr_curve": config.pr_curve}, inputs=[config.data])
    result = score_file(config.data, config.strict)
    print(format_table(result))
    if config.pr_curve:
        if "confidence" not in result:
            raise DataError(config.data, "no scored entities to draw a precision-recall curve of", "empty")
        plot_pr_curves({Path(config.data).stem: result["confidence"]["pr_curve"]}, config.pr_curve)
        print(f"precision-recall curve written to {config.pr_curve}", file=sys.stderr)
    if config.out:
        write_text_atomic(config.out, json.dumps(result, indent=2))
        print(f"scores written to {config.out}", file=sys.stderr)
    return 0
