"""Confidence: are entity scores calibrated, does a threshold trade recall for precision, does triage help.

Cells (each written to the JSON as soon as it is done; a rerun skips the cells already there unless --redo):
- `conll-{list,inline,tagger}`: one system each (`--list_adapter`, `--inline_adapter`, `--tagger`, the tagger
  bidirectional), predicted on CoNLL-2003 dev and test. Reported: micro F1; ECE of the raw scores on test (for the
  generative systems both score definitions, `sequence` and `label`, from one decoding each); a temperature fitted
  on dev (`inference.confidence.fit_calibration`) and the test ECE after it, after Platt scaling (also fitted on
  dev) and after what `calibrate`'s default (auto: `choose_calibration` on the dev records) picks, the one the
  acceptance reads; reliability tables and diagrams before and after auto (`--figures`); the test PR curve over
  thresholds, a sweep at fixed thresholds with precision's standard error, and the dev-best threshold's test F1.
  Acceptance: ECE after calibration <= 0.05; precision rising with the threshold within noise
  (`falls_beyond_noise`: thresholds of the sweep where precision is more than two standard errors below its best
  at a lower threshold; `precision_drops`: the largest fall on the full curve, noise included).
- `emails-{generative,tagger}`: an e-mail test set (`--emails`, `--email_adapter`, `--email_tagger`): each e-mail's
  confidence is its least confident entity (1 without entities); the 20% least confident e-mails go to review,
  and the micro F1 of the other 80% is reported beside the F1 of all (the gain is the figure).

    python benchmarks/confidence_adapters.py    # the CoNLL-2003 adapters at 2,000 sentences (runs/confidence/)
    python benchmarks/confidence.py --dev_limit 1000 --list_adapter runs/confidence/conll2003__gen-list__2000/model \\
        --inline_adapter runs/confidence/conll2003__gen-inline__2000/model \\
        --tagger runs/confidence/conll2003__tagger-bidirectional__2000/model \\
        --cells conll-tagger conll-list conll-inline
    python benchmarks/confidence.py --cells emails-generative emails-tagger --email_adapter ... --email_tagger ... \\
        --emails TEST.csv --out benchmarks/results/confidence_emails_foldK.json

The full CoNLL-2003 test takes ~40 minutes on a 2-core CPU (three systems); --limit makes a smoke run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the repository root, for `benchmarks.*`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.cells import load, save  # noqa: E402

CONLL_DEV = "../shared/data/conll2003/valid.txt"
CONLL_TEST = "../shared/data/conll2003/test.txt"
EMAILS_TEST = "data/emails_it_large/test.csv"
CELLS = ["conll-list", "conll-inline", "conll-tagger", "emails-generative", "emails-tagger"]
FOLDER = {
    "conll-list": "list_adapter",
    "conll-inline": "inline_adapter",
    "conll-tagger": "tagger",
    "emails-generative": "email_adapter",
    "emails-tagger": "email_tagger",
}


class RememberingGenerator:
    """A generator that decodes each prompt once: the second score definition re-parses the first one's
    generations (greedy decoding of the same prompt is the same tokens with the same log-probabilities)."""

    def __init__(self, generator):
        self.generator, self.seen = generator, {}

    def __getattr__(self, name):
        return getattr(self.generator, name)

    def generate(self, prompts, limits, examples=None):
        keys = [json.dumps(prompt, sort_keys=True) for prompt in prompts]
        todo = [k for k, key in enumerate(keys) if key not in self.seen]
        if todo:
            chosen = [examples[k] for k in todo] if examples else None
            made = self.generator.generate([prompts[k] for k in todo], [limits[k] for k in todo], chosen)
            self.seen.update((keys[k], generated) for k, generated in zip(todo, made))
        return [self.seen[key] for key in keys]


PREDICTORS: dict[str, object] = {}  # one loaded model per folder for the whole run


def predict(folder: str, data: str, limit: int | None, batch_size: int, score_method: str = "sequence") -> list[dict]:
    from instruct_ner.inference.predictor import load_predictor
    from instruct_ner.prompts.readers import ReaderOptions, load_examples

    if folder not in PREDICTORS:
        PREDICTORS[folder] = predictor = load_predictor(folder)
        if hasattr(predictor, "generator"):
            predictor.generator = RememberingGenerator(predictor.generator)
    predictor = PREDICTORS[folder]
    if hasattr(predictor, "score_method"):
        predictor.score_method = score_method
    examples = load_examples(data, ReaderOptions(limit=limit))[0]
    return predictor.predict(examples, batch_size)


def keep(path: Path, records: list[dict]) -> None:
    """Write prediction records as `generate` / `tag` would (a finished file is left as it is)."""
    from instruct_ner.inference.predictor import file_record
    from instruct_ner.jsonl import write_jsonl

    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        write_jsonl(path, (file_record(r) for r in records))


def micro_f1(records: list[dict]) -> float:
    from instruct_ner.inference.score import score_tags

    if not records:
        return 0.0
    return score_tags([r["tags"] for r in records], [r["pred_tags"] for r in records])["micro"]["f1"]


def precision_drops(points: list[dict]) -> float:
    """The largest fall of precision from a threshold to any higher one (0 when precision never falls)."""
    worst, best_below = 0.0, 0.0
    for point in points:
        worst = max(worst, best_below - point["precision"])
        best_below = max(best_below, point["precision"])
    return worst


SWEEP = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99]


def threshold_sweep(scores: list[float], correct: list[bool], gold: int, thresholds=SWEEP) -> list[dict]:
    """Precision, recall and kept entities at fixed thresholds (read off `pr_curve`, whose points are every distinct
    score), with precision's binomial standard error sqrt(p (1 - p) / kept): the noise against which a fall of
    precision at a higher threshold is read."""
    from instruct_ner.inference.confidence import pr_curve

    curve, points = pr_curve(scores, correct, gold), []
    for threshold in thresholds:
        at = next((p for p in curve if p["threshold"] >= threshold), {"kept": 0, "precision": 1.0, "recall": 0.0})
        kept, precision = at["kept"], at["precision"]
        points.append(
            {
                "threshold": threshold,
                "kept": kept,
                "precision": precision,
                "precision_se": (precision * (1 - precision) / kept) ** 0.5 if kept else 0.0,
                "recall": at["recall"],
            }
        )
    return points


def falls_beyond_noise(points: list[dict]) -> list[float]:
    """Thresholds of a sweep where precision is below the best precision at a lower threshold by more than twice its
    standard error (none: precision rises with the threshold within noise)."""
    falls, best_below = [], 0.0
    for point in points:
        if point["kept"] and best_below - point["precision"] > 2 * point["precision_se"]:
            falls.append(point["threshold"])
        best_below = max(best_below, point["precision"])
    return falls


def conll_cell(name: str, args) -> dict:
    from instruct_ner.inference.confidence import (
        apply_threshold,
        best_threshold,
        choose_calibration,
        expected_calibration_error,
        fit_calibration,
        plot_pr_curves,
        plot_reliability,
        pr_curve,
        reliability,
        scored_entities,
    )

    folder = getattr(args, FOLDER[name])
    methods = ["sequence"] if name == "conll-tagger" else ["sequence", "label"]
    cell: dict = {"folder": folder}
    for method in methods:
        dev = predict(folder, args.conll_dev, args.dev_limit or args.limit, args.batch_size, method)
        test = predict(folder, args.conll, args.limit, args.batch_size, method)
        if args.predictions:  # kept for what the cell does not compute (another calibration, another triage)
            keep(Path(args.predictions) / f"{name}-{method}-dev.jsonl", dev)
            keep(Path(args.predictions) / f"{name}-{method}-test.jsonl", test)
        dev_scored, test_scored = scored_entities(dev), scored_entities(test)
        fitted = fit_calibration(dev_scored.scores, dev_scored.correct, "temperature")
        platt = fit_calibration(dev_scored.scores, dev_scored.correct, "platt")
        choice, dev_table = choose_calibration(dev)  # what `calibrate` does by default (auto) with these dev records
        chosen = {"none": None, "temperature": fitted, "platt": platt}[choice]
        calibrated = [chosen(s) for s in test_scored.scores] if chosen else list(test_scored.scores)
        points = pr_curve(test_scored.scores, test_scored.correct, test_scored.gold)
        dev_best = best_threshold(pr_curve(dev_scored.scores, dev_scored.correct, dev_scored.gold))["threshold"]
        sweep = threshold_sweep(test_scored.scores, test_scored.correct, test_scored.gold)
        raw, after = reliability(test_scored.scores, test_scored.correct), reliability(calibrated, test_scored.correct)
        cell[method] = {
            "f1": micro_f1(test),
            "f1_at_threshold_0": micro_f1([apply_threshold(r, 0.0) for r in test]),
            "entities": len(test_scored.scores),
            "unscored": test_scored.unscored,
            "dev_entities": len(dev_scored.scores),
            "ece": expected_calibration_error(test_scored.scores, test_scored.correct),
            "temperature": 1 / fitted.a,
            "ece_calibrated": expected_calibration_error([fitted(s) for s in test_scored.scores], test_scored.correct),
            "auto_choice": choice,
            "dev_cross_fitted_ece": dev_table,
            "ece_auto": expected_calibration_error(calibrated, test_scored.correct),
            "platt": platt.to_dict(),
            "ece_platt": expected_calibration_error([platt(s) for s in test_scored.scores], test_scored.correct),
            "reliability": raw,
            "reliability_calibrated": after,
            "sweep": sweep,
            "falls_beyond_noise": falls_beyond_noise(sweep),
            "pr_curve": points[:: max(1, len(points) // 50)],
            "precision_drops": precision_drops(points),
            "dev_best_threshold": dev_best,
            "f1_at_dev_best": micro_f1([apply_threshold(r, dev_best) for r in test]),
        }
        if args.figures:
            figures = Path(args.figures)
            figures.mkdir(parents=True, exist_ok=True)
            plot_reliability(f"{name} {method}, raw", raw, figures / f"{name}-{method}-raw.png")
            plot_reliability(f"{name} {method}, calibrated", after, figures / f"{name}-{method}-calibrated.png")
            plot_pr_curves({method: points}, figures / f"{name}-{method}-pr.png")
    return cell


def email_cell(name: str, args) -> dict:
    folder = getattr(args, FOLDER[name])
    records = predict(folder, args.emails, args.limit, args.batch_size)
    confidence = [min((e.score for e in r["entities"] if e.score is not None), default=1.0) for r in records]
    order = sorted(range(len(records)), key=lambda i: confidence[i])
    review = set(order[: round(len(records) * args.review_share)])
    rest = [r for i, r in enumerate(records) if i not in review]
    f1_all, f1_rest = micro_f1(records), micro_f1(rest)
    return {
        "folder": folder,
        "emails": len(records),
        "reviewed": len(review),
        "f1_all": f1_all,
        "f1_rest": f1_rest,
        "gain": f1_rest - f1_all,
    }


SYSTEM_NAMES = {"conll-list": "entity list", "conll-inline": "inline", "conll-tagger": "bidirectional tagger"}


def report(results: list[dict]) -> str:
    """Markdown tables of finished results files: calibration and thresholds per CoNLL-2003 system and score
    definition, then the e-mail triage per results file (one file per fold) and its mean gain per system."""
    rows, triage = [], []
    for result in results:
        for name, cell in result["cells"].items():
            if name.startswith("conll"):
                for method in ("sequence", "label"):
                    if method not in cell:
                        continue
                    m = cell[method]
                    at = {p["threshold"]: p for p in m["sweep"]}
                    auto = f"**{m['ece_auto']:.3f}** ({m['auto_choice']})" if "ece_auto" in m else "-"
                    rows.append(
                        f"| {SYSTEM_NAMES[name]} | {method} | {m['f1']:.3f} | {m['entities']:,} | {m['ece']:.3f} | "
                        f"{m['temperature']:.2f} | {m['ece_calibrated']:.3f} | {m['ece_platt']:.3f} | {auto} | "
                        + " | ".join(f"{at[t]['precision']:.3f} / {at[t]['recall']:.3f}" for t in (0.0, 0.5, 0.9))
                        + f" | {', '.join(str(t) for t in m['falls_beyond_noise']) or 'none'} | "
                        f"{m['dev_best_threshold']:.2f}, {m['f1_at_dev_best']:.3f} |"
                    )
            else:
                triage.append((name, cell))
    lines = []
    if rows:
        lines += [
            "| system | score | F1 | entities | ECE raw | T | ECE after T | ECE after Platt | ECE after auto "
            "(choice) | P / R at 0 | P / R at 0.5 | P / R at 0.9 | precision falls beyond 2 se | "
            "dev-best threshold, test F1 |",
            "|---" * 14 + "|",
            *rows,
        ]
    if triage:
        lines += ["", "| system | test e-mails | reviewed | F1 all | F1 of the rest | gain |", "|---" * 6 + "|"]
        gains: dict[str, list[float]] = {}
        for name, cell in triage:
            gains.setdefault(name, []).append(cell["gain"])
            lines.append(
                f"| {name} ({cell['folder']}) | {cell['emails']} | {cell['reviewed']} | {cell['f1_all']:.3f} | "
                f"{cell['f1_rest']:.3f} | {cell['gain']:+.3f} |"
            )
        for name, values in gains.items():
            lines.append(f"| {name}, mean of {len(values)} | | | | | **{sum(values) / len(values):+.3f}** |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for flag in sorted(set(FOLDER.values())):
        parser.add_argument(f"--{flag}", help="a trained folder (its cells are skipped without it)")
    parser.add_argument("--conll", default=CONLL_TEST)
    parser.add_argument("--conll_dev", default=CONLL_DEV)
    parser.add_argument("--emails", default=EMAILS_TEST)
    parser.add_argument("--cells", nargs="+", default=CELLS, choices=CELLS)
    parser.add_argument("--limit", type=int, default=None, help="inputs per data set (a smoke run)")
    parser.add_argument("--dev_limit", type=int, default=None, help="dev inputs to fit the calibration on")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--review_share", type=float, default=0.2)
    parser.add_argument("--redo", action="store_true", help="recompute cells already in the results")
    parser.add_argument("--out", default="benchmarks/results/confidence.json")
    parser.add_argument("--figures", default="benchmarks/results/confidence", help="reliability and PR PNGs ('' none)")
    parser.add_argument("--predictions", default="runs/confidence/predictions", help="records folder ('' none)")
    parser.add_argument("--report", nargs="+", metavar="JSON", help="print these results files' tables; run nothing")
    args = parser.parse_args()
    if args.report:
        print(report([json.loads(Path(path).read_text(encoding="utf-8")) for path in args.report]))
        return
    out = Path(args.out)
    results = load(out)
    for name in args.cells:
        if name in results["cells"] and not args.redo:
            print(f"{name}: done already (--redo to recompute)")
            continue
        if not getattr(args, FOLDER[name]):
            print(f"{name}: skipped (no --{FOLDER[name]})")
            continue
        cell = conll_cell if name.startswith("conll") else email_cell
        results["cells"][name] = cell(name, args)
        save(out, results)
        print(f"{name}: {json.dumps(results['cells'][name])[:300]}")


if __name__ == "__main__":
    main()
