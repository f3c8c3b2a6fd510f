"""Issue 13 acceptance: cost per example of generative SFT against the tagger, generation against tagging,
today's SFT against the new defaults (and F1 at equal steps), the frozen-backbone feature cache, the demo.

One command runs every cell; each cell's result is written to the results file as soon as it is done,
and a cell already there is skipped (resumable; `--force` reruns the cells named in `--cells`). Every
timing is fp32 (a CPU without native bf16 emulates bf16 ~100x slower). Ratios are taken between cells of
the results file, which `--cells` can rerun together so that they come from one run.

Cells:
- `sft-new`: generative SFT at the new defaults (compact instruction `ner-list-compact.en`, batches
  grouped by length, completion-only LM head) on the first 384 CoNLL-2003 training sentences, batch 8,
  48 steps; its adapter is kept for `generate`.
  An SFT cell trains `--segment` steps per call and resumes from its checkpoint on the next call (its
  time is the sum of the segments'), so each call fits the lock's slot: repeat the command until it
  reports the cell done.
- `sft-today`: the same with today's behaviour (`ner-list.en` with label definitions, no grouping, every
  position through the LM head).
- `tagger`: `train-tagger` at its defaults (bidirectional, LoRA, crf head, compound loss), same data,
  batch and steps.
- `generate`: the `sft-new` adapter (and the `sft-today` one, for F1 at equal steps) on the first 300
  CoNLL-2003 test sentences with whatever inference/generate.py does now: sentences/s and micro F1.
  Rerun it alone after a decoding change: `--cells generate --force`.
- `tag`: the `tagger` model on the same 300 sentences.
- `frozen`: `train-tagger --freeze_backbone true` (crf head), 2 epochs over the 384 sentences with a cold
  feature cache: seconds of the first epoch (features computed) and of the second (head only).
- `demo`: `instruct-ner demo` at its defaults, wall time and F1 per sample.

    flock /work/notes/bench.lock env OMP_NUM_THREADS=2 .venv/bin/python benchmarks/speed.py --cells sft-new
    ... --cells sft-today, --cells tagger tag frozen, --cells generate, --cells demo   (each under 8 min here)
    .venv/bin/python benchmarks/speed.py --report     # the Markdown section from the results file
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CELLS = ("sft-new", "sft-today", "tagger", "generate", "tag", "frozen", "demo")
SFT_VARIANTS = {
    "sft-new": {"template": "ner-list-compact.en", "speed": {}},
    "sft-today": {
        "template": "ner-list.en",
        "speed": {"group_by_length": False, "padding_free": False, "completion_only_lm_head": False},
    },
}


def machine() -> str:
    import torch

    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = os.environ.get("OMP_NUM_THREADS") or str(os.cpu_count())
    return f"{cpu or platform.processor() or platform.machine()}, {cores} threads, torch {torch.__version__}"


def load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {"cells": {}}


def save(path: Path, results: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(results, indent=2))
    partial.replace(path)


def cell_sft(name: str, args, results: dict) -> dict | None:
    """Train `args.segment` steps per call (a checkpoint each segment, resumed on the next call), so that a
    slow variant fits the lock's time slot; the cell is complete, and returns its figures, at `args.steps`."""
    from transformers import TrainerCallback

    from instruct_ner.sft.train import TrainConfig, run_training

    class StopAfterSegment(TrainerCallback):
        def on_train_begin(self, args_, state, control, **kwargs):
            self.start = state.global_step

        def on_step_end(self, args_, state, control, **kwargs):
            if state.global_step - self.start >= segment:
                control.should_training_stop = True

    variant = SFT_VARIANTS[name]
    output_dir = Path(args.work) / name
    partial = results.setdefault("partial", {}).get(name)
    if partial is None or not any(output_dir.glob("checkpoint-*")):
        partial = {"seconds": 0.0, "steps": 0}
        shutil.rmtree(output_dir, ignore_errors=True)
    segment = args.segment if args.segment > 0 else args.steps
    config = TrainConfig(
        data=args.train,
        limit=args.train_limit,
        template=variant["template"],
        precision="fp32",
        max_steps=args.steps,
        per_device_train_batch_size=args.batch,
        learning_rate=args.learning_rate,
        output_dir=str(output_dir),
        overwrite=True,  # the benchmark's own work folder
        save_steps=segment,
        save_total_limit=1,
        logging_steps=max(1, min(8, args.steps)),
        resume="latest" if partial["steps"] else None,
    )
    for key, value in variant["speed"].items():
        setattr(config, key, value)
    summary = run_training(config, callbacks=[StopAfterSegment()])[0]
    partial = {"seconds": partial["seconds"] + summary["seconds"], "steps": summary["steps"]}
    results["partial"][name] = partial
    if summary["steps"] < args.steps:
        print(f"{name}: {summary['steps']}/{args.steps} steps; run the cell again to continue", flush=True)
        return None
    results["partial"].pop(name)
    examples = summary["steps"] * args.batch
    return {
        "template": variant["template"],
        "speed_options": variant["speed"] or "defaults",
        "examples_per_second": examples / partial["seconds"],
        "seconds": partial["seconds"],
        "steps": summary["steps"],
        "first_loss": summary["losses"][0],
        "last_loss": summary["losses"][-1],
        "adapter": config.output_dir,
    }


def cell_tagger(args) -> dict:
    from instruct_ner.sft.train_tagger import TaggerConfig, train_tagger

    config = TaggerConfig(
        data=args.train,
        limit=args.train_limit,
        precision="fp32",
        max_steps=args.steps,
        per_device_train_batch_size=args.batch,
        output_dir=str(Path(args.work) / "tagger"),
        overwrite=True,  # the benchmark's own work folder
        save_steps=10_000,
        logging_steps=max(1, min(8, args.steps)),
    )
    summary = train_tagger(config)[0]
    return {
        "settings": "defaults: bidirectional, LoRA, crf head, compound loss",
        "examples_per_second": summary["samples_per_second"],
        "seconds": summary["seconds"],
        "steps": summary["steps"],
        "first_loss": summary["losses"][0],
        "last_loss": summary["losses"][-1],
        "model": config.output_dir,
    }


def cell_generate(args, results: dict) -> dict:
    from instruct_ner.inference.generate import GenerateConfig, generate
    from instruct_ner.inference.score import score_file

    out = {}
    for name in ("sft-new", "sft-today"):
        adapter = Path(args.work) / name
        if not (adapter / "adapter_config.json").exists():
            print(f"generate: no adapter {adapter} (run --cells {name} first); skipped", file=sys.stderr)
            continue
        predictions = Path(args.work) / f"{name}.test.jsonl"
        figures = generate(
            GenerateConfig(
                data=args.test, out=str(predictions), adapter=str(adapter), limit=args.test_limit, precision="fp32"
            )
        )
        out[name] = {
            "sentences_per_second": figures["sentences_per_second"],
            "seconds": figures["seconds"],
            "new_tokens": figures.get("new_tokens"),
            "micro_f1": score_file(predictions)["micro"]["f1"],
        }
        print(f"generate {name}: {json.dumps(out[name])}", flush=True)
    return out


def cell_tag(args) -> dict:
    from instruct_ner.inference.score import score_file
    from instruct_ner.inference.tag import TagConfig, tag

    predictions = Path(args.work) / "tagger.test.jsonl"
    figures = tag(
        TagConfig(
            adapter=str(Path(args.work) / "tagger"),
            data=args.test,
            out=str(predictions),
            limit=args.test_limit,
            precision="fp32",
        )
    )
    return {
        "sentences_per_second": figures["sentences_per_second"],
        "seconds": figures["seconds"],
        "micro_f1": score_file(predictions)["micro"]["f1"],
    }


def cell_frozen(args) -> dict:
    from instruct_ner.sft.train_tagger import TaggerConfig, train_tagger

    model = str(embedded())  # resolved before the cache dir moves to the cold temporary one
    with tempfile.TemporaryDirectory() as cache:
        previous = os.environ.get("INSTRUCT_NER_CACHE")
        os.environ["INSTRUCT_NER_CACHE"] = cache  # a cold cache: the first epoch computes the features
        try:
            config = TaggerConfig(
                data=args.train,
                limit=args.train_limit,
                precision="fp32",
                freeze_backbone=True,
                head="crf",
                num_train_epochs=2,
                per_device_train_batch_size=args.batch,
                output_dir=str(Path(args.work) / "tagger-frozen"),
                overwrite=True,  # the benchmark's own work folder
                save_steps=10_000,
                logging_steps=16,
                model=model,
            )
            summary = train_tagger(config)[0]
        finally:
            if previous is None:
                os.environ.pop("INSTRUCT_NER_CACHE")
            else:
                os.environ["INSTRUCT_NER_CACHE"] = previous
    first, second = summary["epoch_seconds"][:2]
    return {
        "epoch_seconds": summary["epoch_seconds"],
        "speedup_after_first": first / second,
        "steps": summary["steps"],
    }


def embedded() -> Path:
    from instruct_ner.sft.models import embedded_model_dir

    return embedded_model_dir()


def cell_demo(args) -> dict:
    with tempfile.TemporaryDirectory() as output_dir:
        started = time.perf_counter()
        command = [str(Path(sys.executable).parent / "instruct-ner"), "demo", "--output_dir", output_dir]
        subprocess.run(command, check=True)
        seconds = time.perf_counter() - started
        summary = json.loads((Path(output_dir) / "summary.json").read_text())
    return {
        "wall_seconds": seconds,
        "samples": {
            r["sample"]: {
                "zero_shot_f1": r["zero_shot"]["micro"]["f1"],
                "sft_f1": r["sft"]["micro"]["f1"],
                "sft_steps": r["train"]["steps"],
                "sft_seconds": r["train"]["seconds"],
            }
            for r in summary
        },
    }


def report(results: dict) -> str:
    stored = results.get("cells", {})
    cells = {name: cell["result"] for name, cell in stored.items()}
    lines = [
        "## Fast by default (issue 13)",
        "",
        f"Machine: {results.get('machine', '?')}; fp32 everywhere. Command: `benchmarks/speed.py` (cells below; "
        "results in `benchmarks/results/speed.json`, each cell with its date).",
        "",
    ]
    sft_new, sft_today, tagger = cells.get("sft-new"), cells.get("sft-today"), cells.get("tagger")
    generation, tagging = cells.get("generate", {}), cells.get("tag")
    lines += ["| measure | value | target | met |", "|---|---|---|---|"]
    if sft_new and tagger:
        ratio = sft_new["examples_per_second"] / tagger["examples_per_second"]
        lines.append(
            f"| SFT examples/s ({sft_new['examples_per_second']:.2f}) / tagger training examples/s "
            f"({tagger['examples_per_second']:.2f}) | {ratio:.3f} | >= 0.35 | {'yes' if ratio >= 0.35 else 'no'} |"
        )
    if generation.get("sft-new") and tagging:
        ratio = generation["sft-new"]["sentences_per_second"] / tagging["sentences_per_second"]
        lines.append(
            f"| generation sentences/s ({generation['sft-new']['sentences_per_second']:.2f}) / tagging sentences/s "
            f"({tagging['sentences_per_second']:.2f}) | {ratio:.3f} | >= 0.30 | {'yes' if ratio >= 0.30 else 'no'} |"
        )
    if sft_new and sft_today:
        speedup = sft_new["examples_per_second"] / sft_today["examples_per_second"]
        lines.append(
            f"| SFT speed-up, new defaults / today | {speedup:.2f}x | > 1 | {'yes' if speedup > 1 else 'no'} |"
        )
        if generation.get("sft-new") and generation.get("sft-today"):
            new, old = generation["sft-new"]["micro_f1"], generation["sft-today"]["micro_f1"]
            lines.append(
                f"| F1 at equal steps, compact / long instruction | {new:.4f} / {old:.4f} | unchanged or better | "
                f"{'yes' if new >= old - 0.01 else 'no'} |"
            )
    if frozen := cells.get("frozen"):
        lines.append(
            f"| frozen backbone: epoch 1 / epoch 2 seconds ({frozen['epoch_seconds'][0]:.1f} / "
            f"{frozen['epoch_seconds'][1]:.1f}) | {frozen['speedup_after_first']:.1f}x | >= 10x | "
            f"{'yes' if frozen['speedup_after_first'] >= 10 else 'no'} |"
        )
    if demo := cells.get("demo"):
        f1 = ", ".join(f"{k} {v['sft_f1']:.3f}" for k, v in demo["samples"].items())
        ok = demo["wall_seconds"] < 360
        lines.append(
            f"| demo wall time (F1 after SFT: {f1}) | {demo['wall_seconds']:.0f} s | < 360 s | "
            f"{'yes' if ok else 'no'} |"
        )
    lines += ["", "Cells:", ""]
    for name in CELLS:
        if name in stored:
            lines.append(
                f"- `{name}` ({stored[name]['date']}, {stored[name]['cell_seconds']:.0f} s): "
                f"`{json.dumps(cells[name])}`"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", nargs="+", default=list(CELLS), choices=CELLS)
    parser.add_argument("--force", action="store_true", help="rerun the named cells even if they have results")
    parser.add_argument("--report", action="store_true", help="print the Markdown section and stop")
    parser.add_argument("--train", default=str(ROOT.parent / "shared" / "data" / "conll2003" / "train.txt"))
    parser.add_argument("--test", default=str(ROOT.parent / "shared" / "data" / "conll2003" / "test.txt"))
    parser.add_argument("--train_limit", type=int, default=384)
    parser.add_argument("--test_limit", type=int, default=300)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=48)
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument(
        "--segment", type=int, default=16, help="SFT steps per call (0 = all); the cell resumes where it stopped"
    )
    parser.add_argument("--work", default="runs/speed", help="adapters and predictions")
    parser.add_argument("--out", default="benchmarks/results/speed.json")
    args = parser.parse_args()
    out = Path(args.out)
    results = load(out)
    if args.report:
        print(report(results))
        return
    warnings.filterwarnings("ignore")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    results["machine"] = machine()
    results["settings"] = {k: v for k, v in vars(args).items() if k not in ("cells", "force", "report")}
    for name in args.cells:
        if name in results["cells"] and not args.force:
            print(f"{name}: already in {out} (--force to rerun)", flush=True)
            continue
        print(f"=== cell {name}", flush=True)
        started = time.perf_counter()
        if name.startswith("sft-"):
            result = cell_sft(name, args, results)
            if result is None:
                save(out, results)
                continue
        elif name == "tagger":
            result = cell_tagger(args)
        elif name == "generate":
            result = cell_generate(args, results)
        elif name == "tag":
            result = cell_tag(args)
        elif name == "frozen":
            result = cell_frozen(args)
        else:
            result = cell_demo(args)
        results["cells"][name] = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "cell_seconds": time.perf_counter() - started,
            "result": result,
        }
        save(out, results)
        print(f"{name}: {json.dumps(result)}", flush=True)
    print(report(results))


if __name__ == "__main__":
    main()
