"""Token-classifier training cost on the embedded SmolLM2-135M-Instruct: seconds per optimizer step for
causal vs bidirectional attention and linear vs CRF heads, in one run (same data, steps and batch size).

    .venv/bin/python benchmarks/tagger_speed.py --steps 8 --batch 8 --out benchmarks/results/tagger_speed.json
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
import warnings
from pathlib import Path

from instruct_ner.sft.train_tagger import TaggerConfig, train_tagger  # noqa: E402

VARIANTS = [("causal", "linear", "ce"), ("bidirectional", "linear", "ce"), ("causal", "crf", "compound"),
            ("bidirectional", "crf", "compound")]  # fmt: skip


def StepTimes(times: list[float]):
    """A TrainerCallback that records the wall time at the end of every optimizer step into `times`."""
    from transformers import TrainerCallback

    class _StepTimes(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            times.append(time.perf_counter())

    return _StepTimes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="../shared/data/conll2003/train.txt")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--out", default="benchmarks/results/tagger_speed.json")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import torch

    results = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
        "date": time.strftime("%Y-%m-%d"),
        "steps": args.steps,
        "batch": args.batch,
        "runs": {},
    }
    for attention, head, loss in VARIANTS:
        times = []
        with tempfile.TemporaryDirectory() as output_dir:
            config = TaggerConfig(
                data=args.data,
                limit=200,
                attention=attention,
                head=head,
                loss=loss,
                precision="bf16",
                max_steps=args.steps,
                per_device_train_batch_size=args.batch,
                output_dir=output_dir,
                save_steps=10_000,
                logging_steps=10_000,
            )
            summary, _, _ = train_tagger(config, callbacks=[StepTimes(times)])
        steady = (times[-1] - times[0]) / (len(times) - 1)  # the first step pays one-off costs
        name = f"{attention}-{head}"
        results["runs"][name] = {
            "seconds_per_step": steady,
            "first_loss": summary["losses"][0],
            "last_loss": summary["losses"][-1],
        }
        print(name, json.dumps(results["runs"][name]), flush=True)
    base = results["runs"]["causal-linear"]["seconds_per_step"]
    for run in results["runs"].values():
        run["ratio_to_causal_linear"] = run["seconds_per_step"] / base
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
