"""Generation throughput (sentences/s) of the embedded SmolLM2-135M-Instruct at several batch sizes (CPU or GPU).

All batch sizes decode the same first N CoNLL-2003 test sentences with the same adapter (trained by
`sft/recipes/smollm2-conll2003-cpu.yaml`), in one run, with the shared-prefix KV cache and the runaway
guard; batch size 8 also without the shared prefix, and 32 also without the guard; ratios are against
the first batch size. F1 is reported too, as a check that batching
and prefix sharing do not change the output much (greedy decoding; bf16 rounding can flip a rare token).

    instruct-ner train --config sft/recipes/smollm2-conll2003-cpu.yaml --template ner-list-compact.en
    .venv/bin/python benchmarks/generate_speed.py --adapter runs/smollm2-conll2003 --limit 500 \\
        --batch_sizes 1 8 32 --out benchmarks/results/generate_speed.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path

from learning_curve import machine  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

from instruct_ner.inference.generate import (  # noqa: E402
    GenerateConfig,
    input_records,
    load_predictor,
    prompt_builder,
    run_generation,
)
from instruct_ner.inference.predictor import RunOptions  # noqa: E402
from instruct_ner.inference.score import score_file  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--adapter", default="runs/smollm2-conll2003")
    parser.add_argument("--data", default="../shared/data/conll2003/test.txt")
    parser.add_argument("--limit", type=int, default=500)
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--precision", default="bf16")
    parser.add_argument("--unshared", type=int, nargs="*", default=[8], help="batch sizes also run without sharing")
    parser.add_argument("--unguarded", type=int, nargs="*", default=[32], help="batch sizes also run without guard")
    parser.add_argument("--out", default="benchmarks/results/generate_speed.json")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    config = GenerateConfig(
        data=args.data,
        out="unused.jsonl",
        adapter=args.adapter,
        limit=args.limit,
        precision=args.precision,
        progress=False,
    )
    records, examples = input_records(config.data, config)
    builder = prompt_builder(config, examples, records)
    predictor = load_predictor(config, builder)  # loaded once, shared by every batch size
    generator = predictor.generator
    results = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "sentences": len(records),
        "adapter": args.adapter,
        "precision": args.precision,
        "runs": {},
    }
    runs = [(str(size), size, True, True) for size in args.batch_sizes]
    runs += [(f"{size}-no-shared-prefix", size, False, True) for size in args.unshared]
    runs += [(f"{size}-no-guard", size, True, False) for size in args.unguarded]
    for name, batch_size, share, guard in runs:
        generator.share_prefix = share
        generator.options.stop_runaway = guard
        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder) / "p.jsonl"
            figures = run_generation(predictor, records, examples, out, RunOptions(batch_size=batch_size))
            scores = score_file(out)
            predictions = [json.loads(line) for line in out.read_text().splitlines()]
        results["runs"][name] = {
            "sentences_per_second": figures["sentences_per_second"],
            "seconds": figures["seconds"],
            "new_tokens_per_sentence": figures["new_tokens"] / len(records),
            "micro_f1": scores["micro"]["f1"],
            "hit_max_new_tokens": sum(p["parse"]["hit_max_new_tokens"] for p in predictions),
            "stopped_runaway": sum(p["parse"]["stopped_runaway"] for p in predictions),
        }
        print(name, json.dumps(results["runs"][name]), flush=True)
    base = results["runs"][str(args.batch_sizes[0])]["sentences_per_second"]
    for run in results["runs"].values():
        run["ratio_to_first"] = run["sentences_per_second"] / base
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
