"""Render the first-round tables (BENCHMARKS.md, "First round") from the JSON files the benchmarks wrote
(benchmarks/results/), so that no figure is copied by hand. `bash benchmarks/run_all.sh` runs those benchmarks
and then this.

    .venv/bin/python benchmarks/summarise.py > benchmarks/results/first_round.md
"""

from __future__ import annotations

import json
import platform
import re
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def load(name: str) -> dict | None:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def cpu() -> str:
    try:
        model = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text()).group(1)
    except (OSError, AttributeError):
        model = platform.processor() or platform.machine()
    return f"{model}, 2 cores, 24 GiB, no GPU"


def sft_section(data: dict) -> list[str]:
    lines = [
        "## SFT throughput by precision (issue 3)",
        "",
        f"Date {data['date']}; machine: {cpu()}. Embedded SmolLM2-135M-Instruct, LoRA r=16 on all linear "
        "projections, `ner-list.en`, batch 8, the same first CoNLL-2003 training sentences for every precision; "
        "samples/s over the optimizer steps after the first.",
        "",
        "Command: `.venv/bin/python benchmarks/sft_speed.py --steps 6 --batch 8`",
        "",
        "| precision | samples/s | s/step | x bf16 | loss first -> last |",
        "|---|---|---|---|---|",
    ]
    for name, run in data["runs"].items():
        lines.append(
            f"| {name} | {run['samples_per_second']:.3f} | {run['seconds_per_step']:.2f} | "
            f"{run.get('ratio_to_bf16', 1):.2f} | {run['first_loss']:.3f} -> {run['last_loss']:.3f} |"
        )
    lines += [
        "",
        "8-bit runs through bitsandbytes' CPU kernels here: it is the memory-saving path for a GPU, "
        "not a speed-up on this CPU (which has native bf16 matrix instructions).",
        "",
    ]
    return lines


def recipe_section(log: str | None) -> list[str]:
    if not log:
        return []
    done = re.search(
        r"adapter saved to (\S+): (\d+) steps in ([\d.]+) s \(([\d.]+) samples/s\), train loss ([\d.]+)", log
    )
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", log)
    measured = re.search(r"^measured: (.+)$", log, re.MULTILINE)
    if not done:
        return []
    lines = [
        "## The CPU recipe on 200 CoNLL-2003 sentences (issue 3)",
        "",
        f"Date {measured.group(1) if measured else 'not recorded'}; machine: {cpu()}.",
        "",
        "Command: `instruct-ner train --config sft/recipes/smollm2-conll2003-cpu.yaml`",
        "",
        f"Completed: {done.group(2)} optimizer steps in {float(done.group(3)) / 60:.1f} min "
        f"({done.group(4)} samples/s), final train loss {done.group(5)}"
        + (f", peak memory {int(peak.group(1)) / 1e6:.1f} GB." if peak else "."),
        "",
    ]
    return lines


def generate_section(data: dict) -> list[str]:
    lines = [
        "## Generation throughput by batch size (issue 4)",
        "",
        f"Date {data['date']}; machine: {cpu()}. Embedded SmolLM2-135M-Instruct + the adapter of the CPU "
        f"recipe, {data['precision']}, greedy decoding, the first {data['sentences']} CoNLL-2003 test sentences, "
        "all batch sizes in one run with the model loaded once.",
        "",
        "Command: `.venv/bin/python benchmarks/generate_speed.py --adapter runs/smollm2-conll2003 --limit 500 "
        "--batch_sizes 1 8 32`",
        "",
        "| batch size | sentences/s | x first | new tokens / sentence | micro F1 | hit max_new_tokens | "
        "stopped by the guard |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, run in data["runs"].items():
        lines.append(
            f"| {name} | {run['sentences_per_second']:.2f} | {run['ratio_to_first']:.2f} | "
            f"{run['new_tokens_per_sentence']:.1f} | {run['micro_f1']:.4f} | {run['hit_max_new_tokens']} | "
            f"{run.get('stopped_runaway', '-')} |"
        )
    lines += [
        "",
        "Rows without a suffix use the shared-prefix KV cache (the instruction is encoded once per run) and "
        "the runaway guard (a record stops at its first listed entity that is not in its text or is listed "
        "more often than it occurs); `-no-shared-prefix` encodes every prompt whole, `-no-guard` decodes "
        "until the end of the response or max_new_tokens.",
        "",
    ]
    return lines


def tagger_section(data: dict) -> list[str]:
    lines = [
        "## Token classifier: cost per step (issue 5)",
        "",
        f"Date {data['date']}; machine: {cpu()}. Embedded SmolLM2-135M-Instruct, bf16, LoRA r=16 on attention "
        f"and MLP projections, batch {data['batch']}, {data['steps']} steps on the first 200 CoNLL-2003 training "
        "sentences; seconds per step after the first.",
        "",
        f"Command: `.venv/bin/python benchmarks/tagger_speed.py --steps {data['steps']} --batch {data['batch']}`",
        "",
        "| attention-head | s/step | x causal-linear | loss first -> last |",
        "|---|---|---|---|",
    ]
    for name, run in data["runs"].items():
        lines.append(
            f"| {name} | {run['seconds_per_step']:.3f} | {run['ratio_to_causal_linear']:.2f} | "
            f"{run['first_loss']:.3f} -> {run['last_loss']:.3f} |"
        )
    return lines + [""]


def side_by_side_section(data: dict) -> list[str]:
    settings = data["settings"]
    lines = [
        "## Generative vs token classification, same backbone and budget (issue 6)",
        "",
        f"Date {data['date']}; machine: {cpu()}; wall time {data.get('wall_seconds', 0) / 60:.0f} min. "
        f"Embedded SmolLM2-135M-Instruct ({settings['precision']}); every system trained on the first "
        f"{settings['train_limit']} training sentences for {settings['steps']} optimizer steps of batch "
        f"{settings['batch']}; scored on the first {settings['test_limit']} test sentences (KIND: WN dev, the "
        "shared folder has no WN test).",
        "",
        "Command: `.venv/bin/python benchmarks/side_by_side.py --out benchmarks/results/side_by_side`",
        "",
    ]
    lines += [
        "How to read it: at this budget (a 135M model, one pass over 200 sentences) no system is near "
        "convergence, and the token classifier learns faster, since a label on every word is a denser signal "
        "than a generated list. The throughput gap is structural on a CPU: the tagger runs one forward pass "
        "per sentence, generation one forward pass of the whole batch per generated token. The shared prefix, "
        "batching and the runaway guard narrow it (see the generation table); they do not close it. "
        "`gen-list-no-guard` is the `gen-list` adapter decoded without the runaway guard.",
        "",
    ]
    for corpus, systems in data["corpora"].items():
        tagger = systems["tagger-bidirectional"]
        lines += [
            f"### {corpus}",
            "",
            "| system | micro P | micro R | micro F1 | macro F1 | sentences/s | x bidirectional tagger | "
            "hallucinated + parse failures |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, s in systems.items():
            failures = s["diagnostics"].get("hallucinated", 0) + s["diagnostics"].get("parse_failures", 0)
            rate = f"{failures} ({100 * s['failure_rate']:.1f}%)" if name.startswith("gen") else "-"
            lines.append(
                f"| {name} | {s['precision']:.4f} | {s['recall']:.4f} | **{s['micro_f1']:.4f}** | "
                f"{s['macro_f1']:.4f} | {s['sentences_per_second']:.2f} | "
                f"{s['sentences_per_second'] / tagger['sentences_per_second']:.3f} | {rate} |"
            )
        lines += [
            "",
            f"Report with error analysis and figures: `benchmarks/results/side_by_side/{corpus}/report/` "
            f"(![F1 per type](benchmarks/results/side_by_side/{corpus}/report/f1_per_type.png))",
            "",
        ]
        gen, bi = systems["gen-list"], tagger
        lines += [
            f"Targets on {corpus}: generative F1 >= bidirectional tagger F1: "
            f"{'met' if gen['micro_f1'] >= bi['micro_f1'] else 'not met'} ({gen['micro_f1']:.4f} vs "
            f"{bi['micro_f1']:.4f}); entity-list throughput >= 0.6 x tagger: "
            f"{'met' if gen['sentences_per_second'] >= 0.6 * bi['sentences_per_second'] else 'not met'} "
            f"({gen['sentences_per_second'] / bi['sentences_per_second']:.3f} x); parse failures + "
            f"hallucinations < 0.5%: {'met' if gen['failure_rate'] < 0.005 else 'not met'} "
            f"({100 * gen['failure_rate']:.2f}%).",
            "",
        ]
    return lines


def main() -> None:
    lines = [
        "# Benchmarks",
        "",
        "Every figure below comes from `bash benchmarks/run_all.sh` (the JSON it writes is in "
        "`benchmarks/results/`; this file is rendered from it by `benchmarks/summarise.py`). Variants are "
        "compared as ratios measured in the same run, since these machines are shared and noisy.",
        "",
        "No GPU was lent to the session that measured these; the GPU settings are documented in "
        "`benchmarks/side_by_side.py` and `sft/recipes/*llama*`, not measured.",
        "",
    ]
    log = RESULTS / "train_cpu_recipe.log"
    lines += recipe_section(log.read_text() if log.exists() else None)
    for name, section in (
        ("sft_speed.json", sft_section),
        ("generate_speed.json", generate_section),
        ("tagger_speed.json", tagger_section),
        ("side_by_side/side_by_side.json", side_by_side_section),
    ):
        if (data := load(name)) is not None:
            lines += section(data)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
