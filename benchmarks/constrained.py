"""Constrained vs unconstrained decoding (issue 14) and batch compaction (issue 13.3), on CPU in fp32.

Cells (each under ~8 minutes on a 2-core CPU; run them one by one under the bench lock, or all at once):

- `adapter`: trains a small LoRA adapter with the CPU recipe (`sft/recipes/smollm2-conll2003-cpu.yaml`,
  in the entity-list format `ner-list-compact.en`, fp32, `--train_limit` sentences) unless `--adapter DIR` is
  given or it exists already;
- `conll`: that adapter on the first `--limit` CoNLL-2003 test sentences: constrained, unconstrained
  (runaway guard on, as before), unconstrained without batch compaction (finished rows stay in the
  batch), and unconstrained with the previous release's `model.generate` decoding (`model-generate`);
- `zero_shot`: the embedded model without adapter (zero-shot, `ner-list.en`) on the same sentences,
  constrained and unconstrained;
- `emails`: the zero-shot embedded model on the Italian e-mail sample (`data/emails_it/test.csv`,
  `ner-list.it`, id column `id`), constrained and unconstrained.

- `few_shot` (optional, not in the default list): the embedded model with 3 worked examples from the
  training file, constrained and unconstrained.

Every run reports micro F1 (conlleval), the parser's diagnostics summed over records, sentences/s, new
tokens per sentence, and the decoder's own counters (forward-pass vs per-step Python time, full masks).
Runs are decoded in slices of `--slice` records (predictions under `--work`); a command starts no slice
after `--max_minutes` and saves where it stopped, so the same command run again resumes (`--force`
starts over). Sentences/s is summed over slices, so every ratio compares runs made under the same lock.

    flock /work/notes/bench.lock env OMP_NUM_THREADS=2 .venv/bin/python benchmarks/constrained.py --cells adapter
    # then, repeated until it prints no "run the command again":
    flock /work/notes/bench.lock env OMP_NUM_THREADS=2 .venv/bin/python benchmarks/constrained.py \
        --cells conll zero_shot emails
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import time
import types
import warnings
from pathlib import Path

from instruct_ner.inference.decoding import new_stats
from instruct_ner.inference.generate import GenerateConfig, load_predictor, prompt_builder, run_generation
from instruct_ner.inference.predictor import RunOptions, input_records
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
        "--template",
        "ner-list-compact.en",  # the format these cells measure (the recipe now trains the inline one)
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


def model_generate_decode(self, inputs, cache, limits, guard, constraints):
    """Baseline for the lean loop: the decoding of the previous release, `model.generate` with the runaway
    guard as a stopping criterion (unconstrained only); finished rows stay in the batch."""
    from transformers import StoppingCriteriaList

    width = inputs["input_ids"].shape[1]
    if guard is not None:
        guard.prompt_width = width
    output = self.model.generate(
        **inputs,
        past_key_values=cache,
        max_new_tokens=max(limits),
        do_sample=False,
        eos_token_id=self.eos_ids,
        pad_token_id=self.tokenizer.pad_token_id,
        stop_strings=self.stop_strings,
        tokenizer=self.tokenizer if self.stop_strings else None,
        stopping_criteria=StoppingCriteriaList([guard]) if guard else None,
    )
    rows = []
    for row in range(output.shape[0]):
        new = output[row, width:].tolist()
        if guard is not None and guard.stopped_at[row] is not None:
            new = new[: guard.stopped_at[row]]
        rows.append(new)
    return rows


def run_cell(args, results: dict, cell: str, config: GenerateConfig, runs: list[tuple[str, bool, bool]]) -> None:
    """Each run: (name, constrain, compact), decoded in slices of `--slice` records, each written under
    `--work` and timed; a command stops starting slices after `--max_minutes` and the next one resumes.
    One generator is loaded for the cell and shared by its runs."""
    import torch

    done = results.setdefault("cells", {}).setdefault(cell, {"runs": {}})
    todo = [
        run for run in runs if (args.force or run[0] not in done["runs"]) and (not args.runs or run[0] in args.runs)
    ]
    if not todo:
        print(f"{cell}: done already", flush=True)
        return
    started = time.perf_counter()
    records, examples = input_records(config.data, config)
    builder = prompt_builder(config, examples, records)
    predictor = load_predictor(config, builder)
    generator = predictor.generator
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
    partials = done.setdefault("partial", {})
    warm = Path(args.work, cell, "warm-up.jsonl")  # first forward passes of a process are slow: not timed
    for constrain in sorted({run[1] for run in todo}):
        generator.options.constrain = constrain
        warm.parent.mkdir(parents=True, exist_ok=True)
        run_generation(predictor, records[:4], examples[:4], warm, RunOptions(batch_size=4))
    for name, constrain, compact in todo:
        folder = Path(args.work, cell, name)
        if args.force and name not in partials:
            shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        part = partials.setdefault(name, {"records": 0, "seconds": 0.0, "new_tokens": 0, "stats": new_stats()})
        generator.options.constrain, generator.compact = constrain, compact
        if name == "model-generate":
            generator._decode = types.MethodType(model_generate_decode, generator)
        else:
            generator.__dict__.pop("_decode", None)
        last_slice = 0.0
        while part["records"] < len(records):
            elapsed = time.perf_counter() - started
            if elapsed + last_slice > args.max_minutes * 60:
                print(f"{cell} {name}: {part['records']}/{len(records)} records; run the command again", flush=True)
                save(Path(args.out), results)
                return
            lo = part["records"]
            hi = min(len(records), lo + args.slice)
            generator.stats = new_stats()
            figures = run_generation(
                predictor, records[lo:hi], examples[lo:hi], folder / f"{lo:05d}.jsonl", RunOptions(config.batch_size)
            )
            last_slice = figures["seconds"]
            part["records"], part["seconds"] = hi, part["seconds"] + figures["seconds"]
            part["new_tokens"] += figures["new_tokens"]
            for key, value in generator.stats.items():
                part["stats"][key] += value
            print(f"{cell} {name}: {hi}/{len(records)} ({figures['sentences_per_second']:.2f} sent/s)", flush=True)
            save(Path(args.out), results)
        merged = folder / "all.jsonl"
        merged.write_text(
            "".join((folder / f"{lo:05d}.jsonl").read_text() for lo in range(0, len(records), args.slice))
        )
        done["runs"][name] = summary(merged, part, constrain, compact, len(records))
        del partials[name]
        print(cell, name, json.dumps(done["runs"][name]), flush=True)
        save(Path(args.out), results)
    runs_done = done["runs"]
    if "unconstrained" in runs_done:
        base = runs_done["unconstrained"]
        for run in runs_done.values():
            run["speed_vs_unconstrained"] = round(run["sentences_per_second"] / base["sentences_per_second"], 3)
            run["f1_minus_unconstrained"] = round(run["micro_f1"] - base["micro_f1"], 4)
    for other, key in (
        ("unconstrained-no-compaction", "compaction_speedup"),
        ("model-generate", "lean_vs_model_generate"),
    ):
        if "unconstrained" in runs_done and other in runs_done:
            done[key] = round(
                runs_done["unconstrained"]["sentences_per_second"] / runs_done[other]["sentences_per_second"], 3
            )
    save(Path(args.out), results)


def summary(path: Path, part: dict, constrain: bool, compact: bool, sentences: int) -> dict:
    scores = score_file(path)
    predictions = [json.loads(line) for line in path.read_text().splitlines()]
    stats = part["stats"]
    step_seconds = stats["forward_seconds"] + stats["other_seconds"]
    return {
        "constrain": constrain,
        "compact": compact,
        "micro_f1": round(scores["micro"]["f1"], 4),
        "sentences_per_second": round(sentences / part["seconds"], 3),
        "seconds": round(part["seconds"], 1),
        "new_tokens_per_sentence": round(part["new_tokens"] / sentences, 2),
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


def markdown(results: dict) -> str:
    """The finished runs as a Markdown table (what the report and BENCHMARKS.md show)."""
    lines = [
        "| cell | run | micro F1 | sent/s | vs unconstrained | halluc. | malformed | truncated | unknown label "
        "| hit bound | new tok/sent | python share |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for cell, figures in results.get("cells", {}).items():
        for name, run in figures["runs"].items():
            d = run["diagnostics"]
            lines.append(
                f"| {cell} ({figures['sentences']}) | {name} | {run['micro_f1']:.3f} "
                f"| {run['sentences_per_second']:.2f} | {run.get('speed_vs_unconstrained', '')} "
                f"| {d['hallucinated']} | {d['malformed']} | {d['truncated']} "
                f"| {d['unknown_label']} | {d['hit_max_new_tokens']} | {run['new_tokens_per_sentence']} "
                f"| {run['decoder']['per_step_python_share']:.3f} |"
            )
    return "\n".join(lines)


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
    parser.add_argument("--runs", nargs="*", help="only these runs of the cells (e.g. constrained unconstrained)")
    parser.add_argument("--slice", type=int, default=64, help="records decoded and timed per slice")
    parser.add_argument("--max_minutes", type=float, default=7.0, help="start no slice after this; rerun to resume")
    parser.add_argument("--work", default="runs/bench-constrained", help="predictions of every slice")
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
            lean = [("unconstrained-no-compaction", False, False), ("model-generate", False, False)]
            run_cell(args, results, cell, config, [*both, *lean])
        elif cell == "few_shot":
            pool = str(Path(args.data).with_name("train.txt"))
            config = GenerateConfig(
                data=args.data, template="ner-list.en", limit=args.limit, few_shot=3, few_shot_from=pool, **common
            )
            run_cell(args, results, cell, config, both)
        elif cell == "zero_shot":
            config = GenerateConfig(data=args.data, template="ner-list.en", limit=args.limit, **common)
            run_cell(args, results, cell, config, both)
        elif cell == "emails":
            config = GenerateConfig(data=args.emails, template="ner-list.it", id_column="id", **common)
            run_cell(args, results, cell, config, both)
        else:
            parser.error(f"unknown cell {cell!r}; expected adapter, conll, zero_shot, few_shot or emails")
    print(markdown(results))


if __name__ == "__main__":
    main()
