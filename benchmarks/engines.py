"""Both engines on the same CPU, model, adapter and sentences: `generate --engine hf` (our loop) and
`--engine vllm` (vLLM's engine), each with the constraint on and off. Reports throughput (sentences/s, decoding
only: model loading excluded, as `generate` prints it), F1 (seqeval, `inference.score`), the parser's
diagnostics summed, and how many generations are identical between engines. Run it in the vLLM venv
(.venv-vllm/bin/python benchmarks/engines.py), which has both engines.

Resumable: each (engine, constraint) run is a `generate` output under `benchmarks/results/engines/` continued with
`--resume`, and a finished run is not redone; the summary is `benchmarks/results/engines/summary.json`.

Example:
    .venv-vllm/bin/python benchmarks/engines.py --data ../shared/data/conll2003/test.txt --limit 50
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

OUT = Path(__file__).resolve().parent / "results" / "engines"


def cpu() -> dict:
    flags = set()
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags") and not flags:
            flags = set(line.split(":", 1)[1].split())
        if line.startswith("model name") and not model:
            model = line.split(":", 1)[1].strip()
    import os

    return {"model": model, "cores": os.cpu_count(), "avx512_bf16": "avx512_bf16" in flags, "machine": platform.node()}


def run(engine: str, constrain: bool, args) -> dict:
    from instruct_ner.config import make_config
    from instruct_ner.inference.generate import GenerateConfig, generate
    from instruct_ner.inference.score import score_file

    out = OUT / f"{engine}-{'constrained' if constrain else 'free'}.jsonl"
    figures_file = out.with_suffix(".figures.json")
    if figures_file.exists():
        return json.loads(figures_file.read_text())
    values = dict(data=args.data, limit=args.limit, out=str(out), engine=engine, constrain=constrain)
    values.update(precision=args.precision, batch_size=args.batch_size, progress=False, resume=out.exists())
    if args.adapter:
        values["adapter"] = args.adapter
    figures = generate(make_config(GenerateConfig, values))
    records = [json.loads(line) for line in out.read_text().splitlines()]
    keys = ("hallucinated", "malformed", "unknown_label", "truncated", "out_of_order", "stopped_runaway")
    figures["parse"] = {k: sum(int(r["parse"].get(k, 0)) for r in records) for k in keys}
    figures["f1"] = score_file(out)["micro"]["f1"]
    figures_file.write_text(json.dumps(figures, indent=1))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/conll2003/test.txt"))
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--adapter", default=None, help="adapter folder; none = zero-shot prompting")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--batch_size", type=int, default=16)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    summary = {"cpu": cpu(), "data": args.data, "limit": args.limit, "adapter": args.adapter, "runs": {}}
    for constrain in (False, True):
        for engine in ("hf", "vllm"):
            summary["runs"][f"{engine}-{'constrained' if constrain else 'free'}"] = run(engine, constrain, args)
        pair = [
            [
                json.loads(line)["generation"]
                for line in (OUT / f"{e}-{'constrained' if constrain else 'free'}.jsonl").read_text().splitlines()
            ]
            for e in ("hf", "vllm")
        ]
        same = sum(a == b for a, b in zip(*pair))
        summary[f"identical_{'constrained' if constrain else 'free'}"] = f"{same}/{len(pair[0])}"
    (OUT / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
