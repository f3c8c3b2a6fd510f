"""The small-data recipe search on the hand-written Italian e-mails (issue 45): k-fold cells and their report.

A cell is `<candidate>/<train size>/fold<k>/seed<s>`: fold k of `data/emails_it_real/` (`fold_of`,
data/make_emails_real.py) is the test set; `size` training e-mails are drawn from the other three folds by a
generator seeded with `s`, which also seeds training. Each cell trains with the CLI a user runs
(`instruct-ner train` / `train-tagger` plus the candidate's options), predicts the test fold (`generate` / `tag`) and
scores it with seqeval (`score_file`): micro and per-type F1, wall seconds of training and prediction, the precision
`--precision` resolved to, and the machine. Cells are written to the JSON one by one; a rerun skips finished ones.
`--report` prints, per candidate and size, the mean and spread (sample standard deviation) over folds and seeds.

The hand-written e-mails are realistic, not real mail (their README); say so wherever these figures go.
`transfer/<size>/...` trains the inline recipe on the templated set (`data/emails_it_large/train.csv`) only and
tests the same fold: how far templated training carries to hand-written mail. Its training does not depend on the
fold, so one model per seed (`runs/emails_kfold/transfer_seed<s>/model`, with its train seconds) serves every fold.
`inline-warm` starts from such an adapter (`--warm_adapter`, e.g. `runs/emails_kfold/transfer_seed1/model`).

    python benchmarks/emails_kfold.py --candidates tagger inline --sizes 40 --folds 0 1 2 3 --seeds 1
    python benchmarks/emails_kfold.py --report
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the repository root, not benchmarks/, must be importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.cells import load, save, timed  # noqa: E402
from instruct_ner.data.make_emails_real import fold_of  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EMAILS = ROOT / "data" / "emails_it_real" / "emails.csv"
TEMPLATED = ROOT / "data" / "emails_it_large" / "train.csv"
RECIPE = ["--config", "smollm2-emails-it", "--eval_fraction", "0"]
TAGGER = ["--num_train_epochs", "3"]  # train-tagger's defaults otherwise: bidirectional LoRA + CRF
# name -> (command, options after the data's): each differs from its baseline (tagger, inline = 3 epochs; the
# definitions, augment and warm candidates: inline-recipe) in what its name says
CANDIDATES = {
    "tagger": ("train-tagger", TAGGER),
    "tagger-e10": ("train-tagger", ["--num_train_epochs", "10"]),
    "tagger-e20": ("train-tagger", ["--num_train_epochs", "20"]),
    "inline": ("train", [*RECIPE, "--min_steps", "0"]),  # 3 epochs, as the recipe was before min_steps
    "inline-e10": ("train", [*RECIPE, "--num_train_epochs", "10"]),
    "inline-recipe": ("train", RECIPE),  # the recipe as it is (min_steps 100: 10 epochs of 40 e-mails)
    "inline-e10-lr1e-3": ("train", [*RECIPE, "--num_train_epochs", "10", "--learning_rate", "1e-3"]),
    "inline-definitions": ("train", [*RECIPE, "--template", "ner-inline.it"]),
    "inline-augment": ("train", [*RECIPE, "--augment", "2"]),
    "inline-warm": ("train", RECIPE),  # + --init_adapter WARM
    "list": ("train", [*RECIPE, "--template", "ner-list-compact.it", "--min_steps", "0"]),
    "list-e10": ("train", [*RECIPE, "--template", "ner-list-compact.it", "--num_train_epochs", "10"]),
    "transfer": ("train", RECIPE),  # trained on the templated set only
}


def kfold_split(rows: list[dict], fold: int, size: int, seed: int) -> tuple[list[dict], list[dict]]:
    """(train, test): test is fold `fold`; train is `size` of the other folds' rows, drawn by `seed`, in file order.

    Example: kfold_split(rows, 0, 40, 1) -> (40 rows of folds 1-3, the rows of fold 0)
    """
    test = [r for r in rows if fold_of(r["id"]) == fold]
    others = [r for r in rows if fold_of(r["id"]) != fold]
    if size > len(others):
        raise ValueError(f"{size} training e-mails asked, the other folds hold {len(others)}")
    chosen = set(random.Random(seed).sample(range(len(others)), size))
    return [r for k, r in enumerate(others) if k in chosen], test


def write_csv(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "text", "entities"])
        writer.writeheader()
        writer.writerows({k: r[k] for k in ("id", "text", "entities")} for r in rows)
    return path


def run_cell(key: str, rows: list[dict], runs: Path, args) -> dict:
    candidate, size, fold, seed = key.split("/")
    size, fold, seed = int(size), int(fold.removeprefix("fold")), int(seed.removeprefix("seed"))
    command, options = CANDIDATES[candidate]
    train_rows, test_rows = kfold_split(rows, fold, size, seed)
    folder = runs / key.replace("/", "_")
    test = write_csv(folder / "test.csv", test_rows)
    train = TEMPLATED if candidate == "transfer" else write_csv(folder / "train.csv", train_rows)
    model, out = folder / "model", folder / "predictions.jsonl"
    if candidate == "transfer":  # the fold plays no part in its training: one model per seed serves every fold
        model = runs / f"transfer_seed{seed}" / "model"
    if candidate == "inline-warm":
        if not args.warm_adapter:
            raise SystemExit("inline-warm needs --warm_adapter (an adapter trained on the templated e-mails)")
        options = [*options, "--init_adapter", args.warm_adapter]
    reading = ["--format", "csv", "--id_column", "id", "--precision", args.precision]
    out.unlink(missing_ok=True)  # a --redo of this script's own cell: its predictions are redone with its model
    common = ["--data", str(train), *reading, "--seed", str(seed), "--output_dir", str(model), "--overwrite"]
    trained = model / "train_results.json"  # written last by a finished training
    if candidate == "transfer" and trained.exists() and not args.redo:
        train_seconds = json.loads((model.parent / "train_seconds.json").read_text())["train_seconds"]
    else:
        train_seconds = timed([command, *common, *options])
        if candidate == "transfer":
            (model.parent / "train_seconds.json").write_text(f'{{"train_seconds": {train_seconds:.1f}}}\n')
    predict = ["tag", "--adapter", str(model)]
    if command == "train":
        predict = ["generate", "--adapter", str(model), "--progress", "false"]
    predict_seconds = timed([*predict, "--data", str(test), *reading, "--out", str(out)])
    from benchmarks.curves.runner import machine
    from instruct_ner.inference.score import score_file
    from instruct_ner.sft.models import resolve_precision

    scores = score_file(out)
    return {
        "candidate": candidate,
        "train_emails": 240 if candidate == "transfer" else size,
        "fold": fold,
        "seed": seed,
        "test_emails": scores["sentences"],
        "micro_f1": round(scores["micro"]["f1"], 4),
        "per_type_f1": {label: round(row["f1"], 4) for label, row in scores["per_type"].items()},
        "train_seconds": round(train_seconds, 1),
        "predict_seconds": round(predict_seconds, 1),
        "precision": resolve_precision(args.precision, "train"),
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def report(results: dict) -> str:
    """A markdown table: per candidate and training size, micro / EMAIL / PHONE F1 as mean +- spread, and cells."""
    groups: dict[tuple[str, int], list[dict]] = {}
    for cell in results["cells"].values():
        groups.setdefault((cell["candidate"], cell["train_emails"]), []).append(cell)

    def spread(values: list[float]) -> str:
        deviation = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.3f} +- {deviation:.3f}"

    lines = ["| candidate | train e-mails | cells | micro F1 | EMAIL F1 | PHONE F1 | train s | precision |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for (candidate, size), cells in sorted(groups.items(), key=lambda item: (item[0][1], item[0][0])):
        label = [spread([c["per_type_f1"].get(name, 0.0) for c in cells]) for name in ("EMAIL", "PHONE")]
        seconds = statistics.mean(c["train_seconds"] for c in cells)
        precisions = "/".join(sorted({c["precision"] for c in cells}))
        lines.append(
            f"| {candidate} | {size} | {len(cells)} | {spread([c['micro_f1'] for c in cells])} | {label[0]} "
            f"| {label[1]} | {seconds:.0f} | {precisions} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candidates", nargs="+", default=["tagger", "inline"], choices=list(CANDIDATES))
    parser.add_argument("--sizes", nargs="+", type=int, default=[40])
    parser.add_argument("--folds", nargs="+", type=int, default=[0, 1, 2, 3])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1])
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--warm_adapter", help="inline-warm's starting adapter (trained on the templated e-mails)")
    parser.add_argument("--redo", action="store_true", help="recompute cells already in the results")
    parser.add_argument("--report", action="store_true", help="print the table of the results and stop")
    parser.add_argument("--out", default="benchmarks/results/emails_kfold.json")
    args = parser.parse_args()
    out = Path(args.out)
    results = load(out)
    if args.report:
        print(report(results))
        return
    with EMAILS.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for size in args.sizes:
        for seed in args.seeds:
            for fold in args.folds:
                for candidate in args.candidates:
                    key = f"{candidate}/{size}/fold{fold}/seed{seed}"
                    if key in results["cells"] and not args.redo:
                        print(f"{key}: done already (--redo to recompute)", file=sys.stderr)
                        continue
                    results["cells"][key] = run_cell(key, rows, ROOT / "runs" / "emails_kfold", args)
                    save(out, results)
                    cell = results["cells"][key]
                    print(f"{key}: F1 {cell['micro_f1']} train {cell['train_seconds']} s", flush=True)


if __name__ == "__main__":
    main()
