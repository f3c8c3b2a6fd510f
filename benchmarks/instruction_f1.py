"""F1 at equal steps with the long and the compact SFT instruction, over several seeds (issue 13).

Each run trains the embedded model with `instruct-ner train` (the defaults of today: length-grouped
batches, padding-free, completion-only LM head; only `--template` differs between the two variants) on
the first 384 CoNLL-2003 training sentences, batch 8, 48 steps, learning rate 1e-3, fp32, then generates
on the first `--test_limit` test sentences with `instruct-ner generate` (constrained, the default) and
scores them. The seed changes the data order and the LoRA initialisation. A finished run is stored in
`benchmarks/results/instruction_f1.json` and skipped on re-run; a run cut off midway resumes from its
checkpoint and its partial predictions. It does not time anything (see `benchmarks/speed.py`).

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/instruction_f1.py                   # every run not done
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/instruction_f1.py --seeds 42 --variants compact
    .venv/bin/python benchmarks/instruction_f1.py --report                            # the Markdown table
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "conll2003"
BIN = Path(sys.executable).parent
VARIANTS = {"long": "ner-list.en", "compact": "ner-list-compact.en"}
SEEDS = (42, 1, 2)


def cli(*args: str) -> None:
    command = [str(BIN / "instruct-ner"), *args]
    print("$ " + " ".join(command), file=sys.stderr, flush=True)
    subprocess.run(command, check=True)


def run(variant: str, seed: int, args) -> dict:
    from instruct_ner.inference.score import score_file

    folder = Path(args.work) / f"{variant}-s{seed}"
    adapter = folder / "model"
    if not (adapter / "instruct_ner.json").exists():
        resume = ["--resume", "latest"] if any(adapter.glob("checkpoint-*")) else []
        cli(
            "train",
            "--data", str(args.train), "--limit", str(args.train_limit),
            "--template", VARIANTS[variant], "--precision", "fp32",
            "--max_steps", str(args.steps), "--per_device_train_batch_size", str(args.batch),
            "--learning_rate", str(args.learning_rate), "--seed", str(seed),
            "--save_steps", "16", "--save_total_limit", "1", "--logging_steps", "8",
            "--output_dir", str(adapter), *resume,
        )  # fmt: skip
    out = folder / f"test{args.test_limit}.jsonl"
    cli(
        "generate", "--adapter", str(adapter), "--data", str(args.test), "--limit", str(args.test_limit),
        "--out", str(out), "--precision", "fp32", "--resume", "true",
    )  # fmt: skip
    scores = score_file(out)
    return {
        "variant": variant,
        "template": VARIANTS[variant],
        "seed": seed,
        "test_sentences": scores["sentences"],
        "micro": scores["micro"],
        "per_type": scores.get("per_type"),
        "parse": scores.get("parse"),
        "date": dt.date.today().isoformat(),
    }


def report(results: dict) -> str:
    runs = results.get("runs", {})
    lines = [
        "| seed | long F1 | compact F1 | compact - long |",
        "|---|---|---|---|",
    ]
    diffs, by_variant = [], {v: [] for v in VARIANTS}
    for seed in sorted({r["seed"] for r in runs.values()}):
        f1 = {v: runs.get(f"{v}-s{seed}", {}).get("micro", {}).get("f1") for v in VARIANTS}
        for v, value in f1.items():
            if value is not None:
                by_variant[v].append(value)
        diff = f1["compact"] - f1["long"] if None not in f1.values() else None
        if diff is not None:
            diffs.append(diff)
        cells = [f"{value:.4f}" if value is not None else "-" for value in (f1["long"], f1["compact"], diff)]
        lines.append(f"| {seed} | " + " | ".join(cells) + " |")
    means = [statistics.mean(by_variant[v]) if by_variant[v] else None for v in ("long", "compact")]
    spread = [statistics.stdev(by_variant[v]) if len(by_variant[v]) > 1 else 0.0 for v in ("long", "compact")]
    if None not in means:
        mean_diff = statistics.mean(diffs) if diffs else float("nan")
        error = statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else float("nan")
        lines.append(
            f"| mean (sd) | {means[0]:.4f} ({spread[0]:.4f}) | {means[1]:.4f} ({spread[1]:.4f}) "
            f"| {mean_diff:+.4f} (standard error {error:.4f}) |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--report", action="store_true", help="print the Markdown table and stop")
    parser.add_argument("--train", default=str(SHARED / "train.txt"))
    parser.add_argument("--test", default=str(SHARED / "test.txt"))
    parser.add_argument("--train_limit", type=int, default=384)
    parser.add_argument("--test_limit", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=48)
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--work", default="runs/instruction_f1", help="adapters and predictions")
    parser.add_argument("--out", default="benchmarks/results/instruction_f1.json")
    args = parser.parse_args(argv)
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {"runs": {}}
    if args.report:
        print(report(results))
        return 0
    results["settings"] = {k: v for k, v in vars(args).items() if k not in ("variants", "seeds", "report")}
    for seed in args.seeds:  # seed by seed, so that a partial grid is already a paired comparison
        for variant in args.variants:
            key = f"{variant}-s{seed}"
            if key in results["runs"]:
                continue
            results["runs"][key] = run(variant, seed, args)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.with_suffix(".partial").write_text(json.dumps(results, indent=2))
            out.with_suffix(".partial").replace(out)
            print(report(results), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
