"""Constrained vs unconstrained decoding (issue 14) and batch compaction (issue 13.3), on CPU in fp32.

Cells (each under ~8 minutes on a 2-core CPU; run them one by one under the bench lock, or all at once):

- `adapter`: trains a small LoRA adapter with the CPU recipe (`sft/recipes/smollm2-conll2003-cpu.yaml`,
  fp32, `--train_limit` sentences) unless `--adapter DIR` is given or it exists already;
- `conll`: that adapter on the first `--limit` CoNLL-2003 test sentences: constrained, unconstrained
  (runaway guard on, as before), and unconstrained without batch compaction (finished rows stay in the
  batch, as `model.generate` does);
- `zero_shot`: the embedded model without adapter (zero-shot, `ner-list.en`) on the same sentences,
  constrained and unconstrained;
- `emails`: the zero-shot embedded model on the Italian e-mail sample (`data/emails_it/test.csv`,
  `ner-list.it`, id column `id`), constrained and unconstrained.

Every run reports micro F1 (conlleval), the parser's diagnostics summed over records, sentences/s, new
tokens per sentence, and the decoder's own counters (forward-pass vs per-step Python time, full masks).
Results are merged into `--out` after every run, so an interrupted cell resumes with the runs it lacks
(`--force` reruns them). Ratios are computed inside each cell (same process, same load).

    flock /work/notes/bench.lock env OMP_NUM_THREADS=2 .venv/bin/python benchmarks/constrained.py --cells adapter
    flock /work/notes/bench.lock env OMP_NUM_THREADS=2 .venv/bin/python benchmarks/constrained.py --cells conll
    flock /work/notes/bench.lock env OMP_NUM_THREADS=2 .venv/bin/python benchmarks/constrained.py --cells zero_shot
    flock /work/notes/bench.lock env OMP_NUM_THREADS=2 .venv/bin/python benchmarks/constrained.py --cells emails
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from instruct_ner.inference.decoding import new_stats
from instruct_ner.inference.generate import (
    GenerateConfig,
    input_records,
    load_generator,
    prompt_builder,
    run_generation,
)
from instruct_ner.inference.score import score_file

DIAGNOSTICS = (
    "hallucinated",
    "malformed",
    "truncated",
    "unknown_label",
    "out_of_order",
    "overlaps_removed",
    "snapped",
    "empty_response",
    "hit_max_new_tokens",
    "stopped_runaway",
)


def load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def save(path: Path, results: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")


def train_adapter(args) -> None:
    if Path(args.adapter, "adapter_config.json").exists():
        print(f"adapter {args.adapter} exists; not training", flush=True)
        return
    command = [
        str(Path(sys.executable).parent / "instruct-ner"),
        "train",
        "--config",
        "sft/recipes/smollm2-conll2003-cpu.yaml",
        "--precision",
        "fp32",
        "--limit",
        str(args.train_limit),
        "--output_dir",
        args.adapter,
    ]
    print(" ".join(command), flush=True)
    started = time.perf_counter()
    subprocess.run(command, check=True)
    print(f"trained in {time.perf_counter() - started:.0f} s", flush=True)


def run_cell(args, results: dict, cell: str, config: GenerateConfig, runs: list[tuple[str, bool, bool]]) -> None:
    """Each run: (name, constrain, compact). One generator loaded for the cell, shared by its runs."""
    import torch

    done = results.setdefault("cells", {}).setdefault(cell, {"runs": {}})
    todo = [run for run in runs if args.force or run[0] not in done["runs"]]
    if not todo:
        print(f"{cell}: done already", flush=True)
        return
    records, examples = input_records(config)
    builder = prompt_builder(config, examples, records)
    generator = load_generator(config, builder)
    done.update(
        sentences=len(records),
        data=config.data,
        adapter=config.adapter,
        template=builder.template.name,
        style=builder.style,
        batch_size=config.batch_size,
        machine=f"{platform.machine()} {platform.processor()}, {torch.get_num_threads()} threads",
        date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    )
    for name, constrain, compact in todo:
        generator.options.constrain, generator.compact = constrain, compact
        generator.stats = new_stats()
        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder) / "p.jsonl"
            figures = run_generation(
                records, examples, builder, generator, out, batch_size=config.batch_size, progress=False
            )
            scores = score_file(out)
            predictions = [json.loads(line) for line in out.read_text().splitlines()]
        stats = generator.stats
        step_seconds = stats["forward_seconds"] + stats["other_seconds"]
        done["runs"][name] = {
            "constrain": constrain,
            "compact": compact,
            "micro_f1": round(scores["micro"]["f1"], 4),
            "sentences_per_second": round(figures["sentences_per_second"], 3),
            "seconds": round(figures["seconds"], 1),
            "new_tokens_per_sentence": round(figures["new_tokens"] / len(records), 2),
            "diagnostics": {key: sum(int(p["parse"].get(key, 0)) for p in predictions) for key in DIAGNOSTICS},
            "entities_predicted": sum(len(p["entities"]) for p in predictions),
            "decoder": {
                "steps": stats["steps"],
                "row_steps": stats["row_steps"],
                "forward_seconds": round(stats["forward_seconds"], 2),
                "per_step_python_share": round(stats["other_seconds"] / step_seconds, 4) if step_seconds else 0,
                "constraint_share": round(stats["constraint_seconds"] / step_seconds, 4) if step_seconds else 0,
                "full_masks": stats["full_masks"],
            },
            "example": predictions[0]["generation"][:200],
        }
        print(cell, name, json.dumps(done["runs"][name]), flush=True)
        save(Path(args.out), results)
    runs_done = done["runs"]
    if "unconstrained" in runs_done:
        base = runs_done["unconstrained"]
        for run in runs_done.values():
            run["speed_vs_unconstrained"] = round(run["sentences_per_second"] / base["sentences_per_second"], 3)
            run["f1_minus_unconstrained"] = round(run["micro_f1"] - base["micro_f1"], 4)
    if "unconstrained" in runs_done and "unconstrained-no-compaction" in runs_done:
        done["compaction_speedup"] = round(
            runs_done["unconstrained"]["sentences_per_second"]
            / runs_done["unconstrained-no-compaction"]["sentences_per_second"],
            3,
        )
    save(Path(args.out), results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", nargs="+", default=["adapter", "conll", "zero_shot", "emails"])
    parser.add_argument("--adapter", default="runs/bench-constrained-adapter", help="trained here if missing")
    parser.add_argument("--train_limit", type=int, default=200, help="training sentences when it trains the adapter")
    parser.add_argument("--data", default="../shared/data/conll2003/test.txt")
    parser.add_argument("--emails", default="data/emails_it/test.csv")
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--out", default="benchmarks/results/constrained.json")
    parser.add_argument("--force", action="store_true", help="rerun runs already in --out")
    parser.add_argument("--unconstrained_first", action="store_true", help="order check: unconstrained run first")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    results = load(Path(args.out))
    results["command"] = "benchmarks/constrained.py " + " ".join(sys.argv[1:])
    common = dict(out="unused.jsonl", precision="fp32", progress=False, batch_size=args.batch_size)
    both = [("constrained", True, True), ("unconstrained", False, True)]
    if args.unconstrained_first:
        both.reverse()
    for cell in args.cells:
        if cell == "adapter":
            train_adapter(args)
        elif cell == "conll":
            config = GenerateConfig(data=args.data, adapter=args.adapter, limit=args.limit, **common)
            run_cell(args, results, cell, config, [*both, ("unconstrained-no-compaction", False, False)])
        elif cell == "zero_shot":
            config = GenerateConfig(data=args.data, template="ner-list.en", limit=args.limit, **common)
            run_cell(args, results, cell, config, both)
        elif cell == "emails":
            config = GenerateConfig(data=args.emails, template="ner-list.it", id_column="id", **common)
            run_cell(args, results, cell, config, both)
        else:
            parser.error(f"unknown cell {cell!r}; expected adapter, conll, zero_shot or emails")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
