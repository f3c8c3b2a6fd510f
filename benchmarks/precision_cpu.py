"""bf16 vs fp32 training on a CPU: F1 and time of the same cells, same seed, one run on one machine (issue 45).

Each cell trains with the CLI a user runs (`instruct-ner train --config sft/recipes/smollm2-emails-it.yaml` or
`instruct-ner train-tagger`, bidirectional LoRA + CRF, 3 epochs) on the first N training e-mails of the hand-written
set (`data/emails_it_real/`, folds 1-3), predicts fold 0 (`generate` / `tag`) and scores it; training and prediction
seconds are wall time with the CPU to itself. Only meaningful on a CPU with native bf16 (`avx512_bf16` or
`amx_bf16`: the machine line says), where `--precision auto` picks bf16; elsewhere bf16 is ~100x slower.
Results go to `benchmarks/results/precision_cpu.json` after each cell; finished cells are skipped (`--redo`).

    python benchmarks/precision_cpu.py                      # every cell: {tagger, inline} x {fp32, bf16}
    python benchmarks/precision_cpu.py --cells tagger-bf16 --train 40
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the repository root, not benchmarks/, must be importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.cells import load, save, timed  # noqa: E402
from instruct_ner.data.make_emails_real import fold_of  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EMAILS = ROOT / "data" / "emails_it_real" / "emails.csv"
CELLS = ["tagger-fp32", "tagger-bf16", "inline-fp32", "inline-bf16"]


def split(folder: Path, train_size: int) -> tuple[Path, Path]:
    """train.csv (the first `train_size` e-mails of folds 1-3) and test.csv (fold 0) in `folder`."""
    with EMAILS.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    parts = {
        "train": [r for r in rows if fold_of(r["id"]) != 0][:train_size],
        "test": [r for r in rows if fold_of(r["id"]) == 0],
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, chosen in parts.items():
        with (folder / f"{name}.csv").open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["id", "text", "entities"])
            writer.writeheader()
            writer.writerows(chosen)
    return folder / "train.csv", folder / "test.csv"


def run_cell(name: str, train: Path, test: Path, runs: Path) -> dict:
    system, precision = name.split("-")
    model, out = runs / name / "model", runs / name / "predictions.jsonl"
    common = ["--data", str(train), "--format", "csv", "--id_column", "id", "--precision", precision, "--seed", "42"]
    if system == "tagger":
        train_seconds = timed(
            ["train-tagger", *common, "--num_train_epochs", "3", "--output_dir", str(model), "--overwrite"]
        )
        predict = ["tag", "--adapter", str(model)]
    else:
        recipe = ["--config", "smollm2-emails-it", "--eval_fraction", "0"]
        train_seconds = timed(["train", *recipe, *common, "--output_dir", str(model), "--overwrite"])
        predict = ["generate", "--adapter", str(model), "--progress", "false"]
    data = ["--data", str(test), "--format", "csv", "--id_column", "id", "--precision", precision]
    predict_seconds = timed([*predict, *data, "--out", str(out)])
    from instruct_ner.inference.score import score_file

    scores = score_file(out)
    return {
        "system": system,
        "precision": precision,
        "train_emails": sum(1 for _ in csv.DictReader(train.open(encoding="utf-8", newline=""))),
        "test_emails": scores["sentences"],
        "micro_f1": round(scores["micro"]["f1"], 4),
        "per_type_f1": {label: round(row["f1"], 4) for label, row in scores["per_type"].items()},
        "train_seconds": round(train_seconds, 1),
        "predict_seconds": round(predict_seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", nargs="+", default=CELLS, choices=CELLS)
    parser.add_argument("--train", type=int, default=40, help="training e-mails (from folds 1-3)")
    parser.add_argument("--redo", action="store_true", help="recompute cells already in the results")
    parser.add_argument("--out", default="benchmarks/results/precision_cpu.json")
    args = parser.parse_args()
    out = Path(args.out)
    results = load(out)
    runs = ROOT / "runs" / "precision_cpu"
    train, test = split(runs / "data", args.train)
    for name in args.cells:
        key = f"{name}/{args.train}"
        if key in results["cells"] and not args.redo:
            print(f"{key}: done already (--redo to recompute)", file=sys.stderr)
            continue
        results["cells"][key] = {**run_cell(name, train, test, runs), "date": time.strftime("%Y-%m-%d %H:%M UTC")}
        save(out, results)
        print(json.dumps(results["cells"][key]), flush=True)


if __name__ == "__main__":
    main()
