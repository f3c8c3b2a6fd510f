"""`instruct-ner compare`: the side-by-side report of several systems' predictions (from `generate`,
`tag`, or `parse`), each scored against its own gold tags.

For every system: seqeval precision, recall and F1 per type, micro and macro; throughput when the
records carry timing; and an error analysis over entity spans:

- `correct`: same span, same type;      `wrong_type`: same span, another type;
- `boundary`: overlapping span, same type;  `boundary_and_type`: overlapping span, another type;
- `spurious`: a predicted span that overlaps no gold span;  `missed`: a gold span no prediction overlaps;
- `hallucinated`, `parse_failures` (malformed + truncated lines), `unknown_label` and `partial_word`
  (mentions that cut a word, dropped: their gold span counts as missed): from the parser's
  diagnostics, for generative systems.

Writes `report.md`, `report.json` and PNG figures (F1 per type for all systems; a type confusion
matrix per system) into the output folder (a new or existing folder; an existing file there is refused).
The files compared must hold the same records (same ids and tokens, in the same order): anything else
is an error naming the first record that differs.

Examples:
    instruct-ner compare runs/generative.jsonl runs/tagger.jsonl --output_dir report/
    instruct-ner compare --data a.jsonl b.jsonl --names entity-list bidirectional-crf --output_dir report/
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from instruct_ner.config import ConfigError, parse_config
from instruct_ner.examples import DataError, tags_to_spans
from instruct_ner.inference.confidence import (
    choose_calibration,
    confidence_report,
    plot_pr_curves,
    plot_reliability,
)
from instruct_ner.inference.grounding import total_diagnostics
from instruct_ner.inference.score import check_tag_record, score_tags
from instruct_ner.jsonl import iter_jsonl, write_text_atomic
from instruct_ner.outputs import check_outputs, claim_folder

ERROR_KINDS = ("correct", "wrong_type", "boundary", "boundary_and_type", "spurious", "missed")
NONE = "(none)"


@dataclass
class CompareConfig:
    data: list[str] = field(
        default_factory=list, metadata={"help": "prediction JSONL files (tags + pred_tags)", "positional": True}
    )
    names: list[str] | None = field(default=None, metadata={"help": "system names (default: file names)"})
    output_dir: str = field(default="report", metadata={"help": "folder for report.md, report.json, figures"})
    strict: bool = field(default=False, metadata={"help": "seqeval strict IOB2 mode"})
    overwrite: bool = field(
        default=False, metadata={"help": "write into an --output_dir that holds files compare did not write"}
    )

    def __post_init__(self) -> None:
        if not self.data:
            raise ConfigError("compare needs at least one prediction file: compare --data A.jsonl [B.jsonl ...]")
        if self.names and len(self.names) != len(self.data):
            raise ConfigError(f"{len(self.names)} names for {len(self.data)} files")


def classify_errors(gold: list[tuple[str, int, int]], pred: list[tuple[str, int, int]]) -> tuple[Counter, Counter]:
    """Error counts and (gold type, predicted type) confusion pairs for one sentence's spans.

    Example: classify_errors([("PER", 0, 2)], [("ORG", 0, 2)])[0]["wrong_type"] -> 1
    """
    errors, confusion = Counter(), Counter()
    covered = set()
    for label, start, end in pred:
        same = [g for g in gold if g[1] == start and g[2] == end]
        overlapping = [g for g in gold if g[1] < end and start < g[2]]
        if same:
            kind = "correct" if same[0][0] == label else "wrong_type"
            match = same[0]
        elif overlapping:
            match = next((g for g in overlapping if g[0] == label), overlapping[0])
            kind = "boundary" if match[0] == label else "boundary_and_type"
        else:
            errors["spurious"] += 1
            confusion[(NONE, label)] += 1
            continue
        errors[kind] += 1
        confusion[(match[0], label)] += 1
        covered.update(g for g in overlapping)
    for g in gold:
        if g not in covered:
            errors["missed"] += 1
            confusion[(g[0], NONE)] += 1
    return errors, confusion


def analyse(path: str | Path, strict: bool = False) -> dict:
    """Scores, error analysis, confusion and throughput of one prediction file."""
    gold_all, pred_all, errors, confusion, parses = [], [], Counter(), Counter(), []
    seconds, timed = 0.0, 0
    keys = []
    for where, record in iter_jsonl(path):
        check_tag_record(record, where)
        keys.append((where, record.get("id"), record.get("tokens")))
        gold_all.append(record["tags"])
        pred_all.append(record["pred_tags"])
        sentence_errors, sentence_confusion = classify_errors(
            tags_to_spans(record["tags"]), tags_to_spans(record["pred_tags"])
        )
        errors.update(sentence_errors)
        confusion.update(sentence_confusion)
        parses.append(record.get("parse") or {})
        timing = record.get("timing") or {}
        if "batch_seconds" in timing:
            seconds += timing["batch_seconds"] / max(1, timing.get("batch_size", 1))
            timed += 1
        elif "seconds" in timing:
            seconds += timing["seconds"]
            timed += 1
    if not gold_all:
        raise DataError(str(path), "no records")
    totals = total_diagnostics(parses)
    diagnostics = {
        "hallucinated": totals["hallucinated"],
        "parse_failures": totals["malformed"] + totals["truncated"],
        "unknown_label": totals["unknown_label"],
        "partial_word": totals["partial_word"],
        "mentions": totals["mentions"],
    }
    result = score_tags(gold_all, pred_all, strict)
    result["errors"] = {kind: errors[kind] for kind in ERROR_KINDS}
    result["diagnostics"] = dict(diagnostics)
    predicted = result["predicted_entities"]
    failures = diagnostics["hallucinated"] + diagnostics["parse_failures"]
    result["failure_rate"] = failures / max(1, diagnostics["mentions"] or predicted)
    result["confusion"] = [[g, p, n] for (g, p), n in sorted(confusion.items())]
    result["sentences_per_second"] = timed / seconds if timed == len(gold_all) and seconds > 0 else None
    records = [record for _, record in iter_jsonl(path)]
    confidence = confidence_report(records)
    if confidence is not None:
        try:  # what `calibrate` (auto) would choose on this file, and its ECE on held-out halves
            choice, table = choose_calibration(records, str(path))
            confidence["calibration_choice"], confidence["ece_calibrated"] = choice, table[choice]
        except DataError:  # too few scored entities in one half: no calibrated figure
            confidence["calibration_choice"], confidence["ece_calibrated"] = None, None
        result["confidence"] = confidence
    result["file"] = str(path)
    result["records"] = keys
    return result


def check_same_records(systems: dict[str, dict]) -> None:
    """Every file holds the same records in the same order (ids and tokens), or DataError names the first difference.

    Example: files with ids [1, 2] and [2, 1] -> DataError("b.jsonl:1: record id '2' (tokens ...) where a.jsonl:1 has
        id '1'; compare needs the same records in the same order")
    """
    first, *others = systems.values()
    reference = first["records"]
    for result in others:
        records = result["records"]
        for (where_a, id_a, tokens_a), (where_b, id_b, tokens_b) in zip(reference, records):
            if id_a != id_b or tokens_a != tokens_b:
                what = f"record id {id_b!r}" if id_a != id_b else f"record id {id_b!r} with other tokens"
                raise DataError(
                    where_b,
                    f"{what} where {where_a} has id {id_a!r}; compare needs the same records in the same order",
                    "mismatch",
                )
        if len(records) != len(reference):
            raise DataError(
                result["file"],
                f"{len(records)} records but {first['file']} has {len(reference)}; compare needs the same records",
                "mismatch",
            )


def markdown(systems: dict[str, dict]) -> str:
    names = list(systems)
    types = sorted({t for r in systems.values() for t in r["per_type"]})
    lines = ["# NER comparison", "", "## Scores", ""]
    lines.append(
        "| system | " + " | ".join(f"{t} F1" for t in types) + " | micro P | micro R | micro F1 | macro F1 | sent/s |"
    )
    lines.append("|---" * (len(types) + 6) + "|")
    for name in names:
        r = systems[name]
        per_type = " | ".join(f"{r['per_type'].get(t, {}).get('f1', 0.0):.4f}" for t in types)
        speed = f"{r['sentences_per_second']:.2f}" if r["sentences_per_second"] else "-"
        lines.append(f"| {name} | {per_type} | {r['micro']['precision']:.4f} | {r['micro']['recall']:.4f} | "
                     f"**{r['micro']['f1']:.4f}** | {r['macro']['f1']:.4f} | {speed} |")  # fmt: skip
    lines += ["", "## Errors (entity spans)", ""]
    kinds = list(ERROR_KINDS) + ["hallucinated", "parse_failures", "unknown_label", "partial_word"]
    lines.append("| system | " + " | ".join(kinds) + " |")
    lines.append("|---" * (len(kinds) + 1) + "|")
    for name in names:
        r = systems[name]
        counts = [r["errors"][k] for k in ERROR_KINDS] + [r["diagnostics"].get(k, 0) for k in kinds[6:]]
        lines.append(f"| {name} | " + " | ".join(str(c) for c in counts) + " |")
    scored = [name for name in names if "confidence" in systems[name]]
    if scored:
        lines += ["", "## Confidence (entity scores)", ""]
        lines.append(
            "| system | scored entities | ECE | ECE after calibrate (2-fold; its choice) | best threshold | F1 there |"
        )
        lines.append("|---" * 6 + "|")
        for name in scored:
            c = systems[name]["confidence"]
            after = "-"
            if c.get("ece_calibrated") is not None:
                after = f"{c['ece_calibrated']:.4f} ({c['calibration_choice']})"
            best = c["best_threshold"]
            lines.append(
                f"| {name} | {c['entities']} | {c['ece']:.4f} | {after} | {best['threshold']:.4f} | {best['f1']:.4f} |"
            )
    figures_line = "Figures: `f1_per_type.png`, `confusion_<system>.png`"
    if scored:
        figures_line += ", `pr_curve.png`, `reliability_<system>.png`"
    lines += ["", figures_line + ".", ""]
    return "\n".join(lines)


def figures(systems: dict[str, dict], out: Path) -> list[Path]:
    from matplotlib.figure import Figure  # the object API: no pyplot, the global backend is left alone

    written = []
    types = sorted({t for r in systems.values() for t in r["per_type"]})
    fig = Figure(figsize=(1.6 + 1.2 * len(types), 4))
    ax = fig.subplots()
    width = 0.8 / len(systems)
    for k, (name, r) in enumerate(systems.items()):
        xs = [i + k * width for i in range(len(types))]
        ax.bar(xs, [r["per_type"].get(t, {}).get("f1", 0.0) for t in types], width, label=name)
    ax.set_xticks([i + width * (len(systems) - 1) / 2 for i in range(len(types))], types)
    ax.set_ylim(0, 1)
    ax.set_ylabel("F1")
    ax.set_title("F1 per entity type")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / "f1_per_type.png"
    fig.savefig(path, dpi=110)
    written.append(path)
    for name, r in systems.items():
        axis = types + [NONE]
        matrix = [[0] * len(axis) for _ in axis]
        for gold, pred, count in r["confusion"]:
            matrix[axis.index(gold)][axis.index(pred)] += count
        fig = Figure(figsize=(1.2 + 0.9 * len(axis), 1 + 0.8 * len(axis)))
        ax = fig.subplots()
        ax.imshow(matrix, cmap="Blues")
        ax.set_xticks(range(len(axis)), axis, rotation=45, ha="right")
        ax.set_yticks(range(len(axis)), axis)
        ax.set_xlabel("predicted type")
        ax.set_ylabel("gold type")
        ax.set_title(f"{name}: type confusion")
        for i, row in enumerate(matrix):
            for j, count in enumerate(row):
                dark = count > 0.5 * max(max(row) for row in matrix)
                ax.text(j, i, str(count), ha="center", va="center", fontsize=8, color="white" if dark else "black")
        fig.tight_layout()
        path = out / f"confusion_{safe_name(name)}.png"
        fig.savefig(path, dpi=110)
        written.append(path)
    curves = {name: r["confidence"]["pr_curve"] for name, r in systems.items() if "confidence" in r}
    if curves:
        plot_pr_curves(curves, out / "pr_curve.png")
        written.append(out / "pr_curve.png")
        for name in curves:
            path = out / f"reliability_{safe_name(name)}.png"
            plot_reliability(name, systems[name]["confidence"]["reliability"], path)
            written.append(path)
    return written


def safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def compare(config: CompareConfig) -> dict:
    names = config.names or [Path(p).stem for p in config.data]
    if len(set(names)) != len(names):
        raise ConfigError(f"system names must differ: {names}; pass --names")
    out = Path(config.output_dir)
    written = ["report.json", "report.md", "f1_per_type.png", *(f"confusion_{safe_name(n)}.png" for n in names)]
    written += ["pr_curve.png", *(f"reliability_{safe_name(n)}.png" for n in names)]
    check_outputs(
        "compare",
        folders={"--output_dir": out},
        inputs=config.data,
        writes={"--output_dir": written},
        replace_own=True,  # a report folder compare wrote before is replaced by the new report
        overwrite=config.overwrite,
    )
    systems = {name: analyse(path, config.strict) for name, path in zip(names, config.data)}
    check_same_records(systems)
    for result in systems.values():
        del result["records"]
    claim_folder(out, "compare")
    write_text_atomic(out / "report.json", json.dumps(systems, indent=2))
    write_text_atomic(out / "report.md", markdown(systems))
    figures(systems, out)
    return systems


def main(argv: list[str] | None = None) -> int:
    config = parse_config(CompareConfig, argv, prog="instruct-ner compare", description=__doc__)
    systems = compare(config)
    print(markdown(systems))
    print(f"report written to {config.output_dir}/ (report.md, report.json, PNG figures)", file=sys.stderr)
    return 0
