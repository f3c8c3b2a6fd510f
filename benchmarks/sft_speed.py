"""SFT throughput of the embedded SmolLM2-135M-Instruct at 8-bit, bf16 and fp32, in one run.

Each precision trains the same LoRA adapter (ner-list.en, all linear projections, r=16) on the same
first N CoNLL-2003 training sentences for the same number of optimizer steps; samples/s is measured
over the optimizer steps after the first (the first pays one-off costs). Ratios are against bf16 in
the same run, since these machines are shared and noisy.

    .venv/bin/python benchmarks/sft_speed.py --steps 6 --batch 8 --out benchmarks/results/sft_speed.json
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
import warnings
from pathlib import Path

from learning_curve import machine  # noqa: E402  (benchmarks/ is on sys.path when run as a script)
from transformers import TrainerCallback  # noqa: E402

from instruct_ner.sft.train import TrainConfig, run_training  # noqa: E402


class StepTimer(TrainerCallback):
    def __init__(self):
        self.times = []

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="../shared/data/conll2003/train.txt")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--precisions", nargs="+", default=["8bit", "bf16", "fp32"])
    parser.add_argument("--out", default="benchmarks/results/sft_speed.json")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import torch

    cuda = torch.cuda.is_available()
    results = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "runs": {},
    }
    for precision in args.precisions:
        timer = StepTimer()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        with tempfile.TemporaryDirectory() as output_dir:
            config = TrainConfig(
                data=args.data,
                template="ner-list.en",  # what the recorded figures trained (train's default of their date)
                limit=args.steps * args.batch,
                precision=precision,
                max_steps=args.steps,
                per_device_train_batch_size=args.batch,
                output_dir=output_dir,
                save_steps=10_000,
                logging_steps=1,
                max_length=384,
            )
            started = time.perf_counter()
            summary, _, _ = run_training(config, callbacks=[timer])
            total = time.perf_counter() - started
        steady = timer.times[-1] - timer.times[0]
        samples = (len(timer.times) - 1) * args.batch
        results["runs"][precision] = {
            "samples_per_second": samples / steady,
            "seconds_per_step": steady / (len(timer.times) - 1),
            "steps": summary["steps"],
            "first_loss": summary["losses"][0],
            "last_loss": summary["losses"][-1],
            "wall_seconds_including_load": total,
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
            **({"peak_cuda_gb": torch.cuda.max_memory_allocated() / 1e9} if cuda else {}),
        }
        print(precision, json.dumps(results["runs"][precision]), flush=True)
    if "bf16" in results["runs"]:
        base = results["runs"]["bf16"]["samples_per_second"]
        for run in results["runs"].values():
            run["ratio_to_bf16"] = run["samples_per_second"] / base
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
