"""Confidence: are entity scores calibrated, does a threshold trade recall for precision, does triage help.

Cells (each written to the JSON as soon as it is done; a rerun skips the cells already there unless --redo):
- `conll-{list,inline,tagger}`: one system each (`--list_adapter`, `--inline_adapter`, `--tagger`, the tagger
  bidirectional), predicted on CoNLL-2003 dev and test. Reported: micro F1; ECE of the raw scores on test (for the
  generative systems both score definitions, `sequence` and `label`, from one decoding each); a temperature fitted
  on dev (`inference.confidence.fit_calibration`) and the test ECE after it; the test PR curve over thresholds and
  the dev-best threshold's test F1. Acceptance: ECE after calibration <= 0.05; precision rising with the threshold
  within noise (`precision_drops`: the largest fall of precision from one threshold to a higher one).
- `emails-{generative,tagger}`: the e-mail test set (`--email_adapter`, `--email_tagger`): each e-mail's
  confidence is its least confident entity (1 without entities); the 20% least confident e-mails go to review,
  and the micro F1 of the other 80% is reported beside the F1 of all (the gain is the figure).

    .venv/bin/python benchmarks/confidence.py --list_adapter runs/sft-conll --inline_adapter runs/sft-conll-inline \\
        --tagger runs/tagger-conll-bidir --email_adapter runs/sft-emails --email_tagger runs/tagger-emails \\
        --out benchmarks/results/confidence.json

The full test sets take long on CPU; run them on a GPU machine, or with --limit for a smoke run.
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


def conll_cell(name: str, args) -> dict:
    from instruct_ner.inference.confidence import (
        apply_threshold,
        best_threshold,
        expected_calibration_error,
        fit_calibration,
        pr_curve,
        scored_entities,
    )

    folder = getattr(args, FOLDER[name])
    methods = ["sequence"] if name == "conll-tagger" else ["sequence", "label"]
    cell: dict = {"folder": folder}
    for method in methods:
        dev = predict(folder, args.conll_dev, args.dev_limit or args.limit, args.batch_size, method)
        test = predict(folder, args.conll, args.limit, args.batch_size, method)
        dev_scored, test_scored = scored_entities(dev), scored_entities(test)
        fitted = fit_calibration(dev_scored.scores, dev_scored.correct)
        calibrated = [fitted(s) for s in test_scored.scores]
        points = pr_curve(test_scored.scores, test_scored.correct, test_scored.gold)
        dev_best = best_threshold(pr_curve(dev_scored.scores, dev_scored.correct, dev_scored.gold))["threshold"]
        cell[method] = {
            "f1": micro_f1(test),
            "entities": len(test_scored.scores),
            "ece": expected_calibration_error(test_scored.scores, test_scored.correct),
            "temperature": 1 / fitted.a,
            "ece_calibrated": expected_calibration_error(calibrated, test_scored.correct),
            "pr_curve": points[:: max(1, len(points) // 50)],
            "precision_drops": precision_drops(points),
            "dev_best_threshold": dev_best,
            "f1_at_dev_best": micro_f1([apply_threshold(r, dev_best) for r in test]),
        }
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
    args = parser.parse_args()
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
