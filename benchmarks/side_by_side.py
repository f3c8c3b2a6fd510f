"""Generative extractor vs token classifier on the same backbone and training budget, in one run.

For each corpus (CoNLL-2003, Italian KIND Wikinews): four systems are trained on the same first N
training sentences with the same number of optimizer steps and batch size, and evaluated on the same
first M test sentences:

- `gen-list`: LoRA SFT, entity-list responses (ner-list template), batched generation with the shared
  prefix cache;
- `gen-list-no-guard`: the `gen-list` adapter decoded without the runaway guard (an ablation: what
  stopping looping rows early buys in speed and precision);
- `gen-inline`: the same with inline responses (ner-inline template);
- `tagger-causal`, `tagger-bidirectional`: the token classifier (LoRA, CRF head, compound loss) with the
  causal mask kept or removed.

Each corpus gets a `compare` report (Markdown, JSON, PNG); `side_by_side.json` holds F1 and sentences/s of
every system. CPU default (about 35 minutes on 2 cores, the embedded SmolLM2-135M-Instruct):

    .venv/bin/python benchmarks/side_by_side.py --out benchmarks/results/side_by_side

Full-data setting for one GPU (8-bit, Llama-3.2-1B; about 1.5 epochs of CoNLL-2003 train):

    python benchmarks/side_by_side.py --model meta-llama/Llama-3.2-1B-Instruct --precision 8bit \\
        --train_limit 0 --test_limit 0 --steps 2600 --batch 8 --out benchmarks/results/side_by_side_gpu
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CORPORA = {
    "conll2003": {"train": SHARED / "conll2003/train.txt", "test": SHARED / "conll2003/test.txt", "language": "en"},
    "kind-wn": {"train": SHARED / "kind/WN_train.tsv", "test": SHARED / "kind/WN_dev.tsv", "language": "it"},
}


def run_corpus(name: str, corpus: dict, args, folder: Path) -> dict:
    from instruct_ner.inference.compare import CompareConfig, compare
    from instruct_ner.inference.generate import GenerateConfig, generate
    from instruct_ner.inference.tag import TagConfig, tag
    from instruct_ner.sft.train import TrainConfig, train
    from instruct_ner.sft.train_tagger import TaggerConfig, train_tagger

    limit = args.train_limit or None
    test_limit = args.test_limit or None
    common = {"model": args.model, "precision": args.precision}
    systems, figures = {}, {}
    for fmt in ("list", "inline"):
        system = f"gen-{fmt}"
        print(f"\n=== {name}: {system}", file=sys.stderr, flush=True)
        adapter = folder / system
        trained = train(
            TrainConfig(
                data=str(corpus["train"]),
                limit=limit,
                template=f"ner-{fmt}.{corpus['language']}",
                max_steps=args.steps,
                per_device_train_batch_size=args.batch,
                learning_rate=args.generative_lr,
                warmup_ratio=0.1,
                output_dir=str(adapter),
                overwrite=True,  # this comparison's own folder, replaced on a rerun
                save_steps=100_000,
                logging_steps=5,
                max_length=512,
                **common,
            )
        )
        # The gen-list adapter is also decoded without the runaway guard: an ablation in the same run.
        decodings = [(system, True)] + ([(f"{system}-no-guard", False)] if fmt == "list" else [])
        for decoded, guard in decodings:
            if decoded != system:
                print(f"\n=== {name}: {decoded}", file=sys.stderr, flush=True)
            out = folder / f"{decoded}.jsonl"
            speed = generate(
                GenerateConfig(
                    data=str(corpus["test"]),
                    limit=test_limit,
                    adapter=str(adapter),
                    out=str(out),
                    batch_size=args.generate_batch,
                    stop_runaway=guard,
                    progress=False,
                    **common,
                )
            )
            systems[decoded] = str(out)
            figures[decoded] = {
                "train_seconds": trained["seconds"],
                "train_steps": trained["steps"],
                "sentences_per_second": speed["sentences_per_second"],
            }
    for attention in ("causal", "bidirectional"):
        system = f"tagger-{attention}"
        print(f"\n=== {name}: {system}", file=sys.stderr, flush=True)
        adapter = folder / system
        trained, _, _ = train_tagger(
            TaggerConfig(
                data=str(corpus["train"]),
                limit=limit,
                attention=attention,
                head="crf",
                loss="compound",
                max_steps=args.steps,
                per_device_train_batch_size=args.batch,
                learning_rate=args.tagger_lr,
                warmup_ratio=0.1,
                output_dir=str(adapter),
                overwrite=True,  # this comparison's own folder, replaced on a rerun
                save_steps=100_000,
                logging_steps=5,
                max_length=256,
                **common,
            )
        )
        out = folder / f"{system}.jsonl"
        speed = tag(
            TagConfig(
                adapter=str(adapter),
                data=str(corpus["test"]),
                limit=test_limit,
                out=str(out),
                batch_size=args.tag_batch,
            )
        )
        systems[system] = str(out)
        figures[system] = {
            "train_seconds": trained["seconds"],
            "train_steps": trained["steps"],
            "sentences_per_second": speed["sentences_per_second"],
        }
    report_dir = str(folder / "report")
    report = compare(CompareConfig(data=list(systems.values()), names=list(systems), output_dir=report_dir))
    for system, result in report.items():
        figures[system].update(
            micro_f1=result["micro"]["f1"],
            macro_f1=result["macro"]["f1"],
            precision=result["micro"]["precision"],
            recall=result["micro"]["recall"],
            failure_rate=result["failure_rate"],
            errors=result["errors"],
            diagnostics=result["diagnostics"],
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpora", nargs="+", default=list(CORPORA), choices=list(CORPORA))
    parser.add_argument("--model", default="", help="empty = the embedded SmolLM2-135M-Instruct")
    parser.add_argument("--precision", default="bf16")
    parser.add_argument("--train_limit", type=int, default=200, help="first N training sentences (0 = all)")
    parser.add_argument("--test_limit", type=int, default=200, help="first M test sentences (0 = all)")
    parser.add_argument("--steps", type=int, default=50, help="optimizer steps, the same for every system")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--generative_lr", type=float, default=1e-3)
    parser.add_argument("--tagger_lr", type=float, default=1e-3)
    parser.add_argument("--generate_batch", type=int, default=32)
    parser.add_argument("--tag_batch", type=int, default=32)
    parser.add_argument("--out", default="benchmarks/results/side_by_side")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import torch

    out = Path(args.out)
    results = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
        "date": time.strftime("%Y-%m-%d"),
        "settings": vars(args),
        "corpora": {},
    }
    started = time.perf_counter()
    for name in args.corpora:
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        results["corpora"][name] = run_corpus(name, CORPORA[name], args, folder)
        (out / "side_by_side.json").write_text(json.dumps(results, indent=2))
    results["wall_seconds"] = time.perf_counter() - started
    (out / "side_by_side.json").write_text(json.dumps(results, indent=2))
    for name, systems in results["corpora"].items():
        tagger_speed = systems["tagger-bidirectional"]["sentences_per_second"]
        print(f"\n{name}: system, micro F1, sentences/s, throughput vs bidirectional tagger")
        for system, figures in systems.items():
            print(
                f"  {system:<22} {figures['micro_f1']:.4f}  {figures['sentences_per_second']:8.2f}  "
                f"{figures['sentences_per_second'] / tagger_speed:.3f}"
            )
    print(f"\nwall time {results['wall_seconds'] / 60:.1f} min; reports in {out}/*/report/")


if __name__ == "__main__":
    main()
