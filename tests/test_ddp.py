"""Training past one process: `accelerate launch` with the CPU DDP config (2 processes, gloo) trains `train` and
`train-tagger` to the same losses and trainable weights as one process with the same global batch.

Two processes at per-device batch 2 against one at batch 4, same seed: the Trainer's random sampler draws the same
permutation in both, and accelerate gives each process alternate batches of 2 of it, so every step sees the same 4
examples. What else has to match, and why the options below are set:
- dropout off (`--lora_dropout 0`, the tagger's `--dropout 0`): each process draws its own masks for its half;
- SFT without `group_by_length`: its sampler groups by the per-device batch, so 2 and 4 order the data differently.

The sentences have 1 to 7 words, so that the halves of a batch hold different numbers of words (or tokens): each
loss is a mean over the whole batch, not the mean of the halves' means that DDP's gradient average would give
(SFT's is normalised over the tokens of all processes by the Trainer, `num_items_in_batch`; the tagger's, every
term of the compound loss, by TaggerTrainer.compute_loss). The trained weights are compared per tensor, in norm:
the halves pad to other lengths than the whole batch, and Adam, which divides each gradient by its running
magnitude, turns that rounding noise into visible moves of the few elements whose gradient is nearly 0.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from instruct_ner.cli import main

ROOT = Path(__file__).resolve().parents[1]
DDP_CPU = ROOT / "sft" / "recipes" / "accelerate-ddp-cpu.yaml"
STEPS = 4

WORDS = [("EU", "B-ORG"), ("Peter", "B-PER"), ("Rome", "B-LOC"), ("German", "B-MISC"), ("visits", "O"), ("the", "O")]


@pytest.fixture
def varied_conll(tmp_path):
    """24 sentences of 1 to 7 words (a fixed shuffle of a small vocabulary)."""
    import random

    rng = random.Random(7)
    sentences = ["\n".join(" ".join(rng.choice(WORDS)) for _ in range(rng.randint(1, 7))) for _ in range(24)]
    path = tmp_path / "train.txt"
    path.write_text("\n\n".join(sentences) + "\n", encoding="utf-8")
    return path


def arguments(command: str, model: Path, data: Path, out: Path, batch: int) -> list[str]:
    args = [command, "--model", str(model), "--data", str(data), "--output_dir", str(out), "--precision", "fp32"]
    args += ["--max_steps", str(STEPS), "--per_device_train_batch_size", str(batch), "--max_length", "96"]
    args += ["--logging_steps", "1", "--save_steps", str(STEPS), "--seed", "3", "--lora_dropout", "0"]
    args += ["--learning_rate", "0.003", "--warmup_ratio", "0"]
    if command == "train":
        args += ["--group_by_length", "false", "--template", "ner-list-compact.en"]
    else:
        args += ["--head", "crf", "--loss", "compound", "--dropout", "0"]  # every term of the loss
        args += ["--eval_f1_data", str(data), "--eval_f1_steps", "2"]  # dev-F1 selection under DDP too
    return args


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """`accelerate launch --config_file sft/recipes/accelerate-ddp-cpu.yaml -m instruct_ner.cli ARGS`."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "CUDA_VISIBLE_DEVICES": ""}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(DDP_CPU)]
    command += ["--main_process_port", str(free_port()), "-m", "instruct_ner.cli", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def logged(out: Path, key: str) -> list[float]:
    """Each step's logged `key` (loss, grad_norm)."""
    state = json.loads((out / f"checkpoint-{STEPS}" / "trainer_state.json").read_text(encoding="utf-8"))
    return [entry[key] for entry in state["log_history"] if "loss" in entry]


def trainable_weights(command: str, out: Path) -> dict:
    from safetensors.torch import load_file

    if command == "train":
        return load_file(str(out / "adapter_model.safetensors"))
    return load_file(str(out / f"checkpoint-{STEPS}" / "trainable.safetensors"))  # LoRA and the head


@pytest.mark.slow  # about 35 s each on 2 CPU cores (two launches of the model); `make test` runs it, test-fast not
@pytest.mark.parametrize("command", ["train", "train-tagger"])
def test_two_processes_train_as_one_with_the_same_global_batch(command, tiny_llama, varied_conll, tmp_path):
    import torch

    two, one = tmp_path / "ddp", tmp_path / "single"
    launched = launch(arguments(command, tiny_llama, varied_conll, two, batch=2), tmp_path)
    assert launched.returncode == 0, launched.stderr[-4000:]
    assert main(arguments(command, tiny_llama, varied_conll, one, batch=4)) == 0

    # two processes really ran (accelerate's MULTI_CPU type would have started one: see the config's comment)
    assert launched.stderr.count("[rank1]") + launched.stdout.count(" saved to ") >= 2, launched.stderr[-2000:]
    assert json.loads((two / f"checkpoint-{STEPS}" / "trainer_state.json").read_text())["global_step"] == STEPS
    # the main process alone wrote the outputs, the checkpoint whole (each process's RNG state in it)
    assert (two / "instruct_ner.json").is_file() and (two / ".instruct-ner-output.json").is_file()
    assert not list(two.glob(".saving-*"))
    assert sorted(p.name for p in (two / f"checkpoint-{STEPS}").glob("rng_state*")) == [
        "rng_state_0.pth",
        "rng_state_1.pth",
    ]

    losses_two, losses_one = logged(two, "loss"), logged(one, "loss")
    assert len(losses_two) == len(losses_one) == STEPS
    assert losses_two == pytest.approx(losses_one, rel=1e-4)
    assert losses_two[-1] < losses_two[0]  # it learned something, so equal weights are not just the initial ones
    # the gradients too: the norm of the processes' average, before clipping, is the one-process gradient's
    assert logged(two, "grad_norm") == pytest.approx(logged(one, "grad_norm"), rel=1e-4)

    weights_two, weights_one = trainable_weights(command, two), trainable_weights(command, one)
    assert weights_two.keys() == weights_one.keys() and weights_two
    for name, tensor in weights_one.items():  # (a mean of the halves' means misses by 30% in the tagger's LoRA)
        assert torch.linalg.norm(weights_two[name] - tensor) <= 1e-4 * torch.linalg.norm(tensor), name
    if command == "train-tagger":
        steps = json.loads((two / f"checkpoint-{STEPS}" / "losses.json").read_text())  # the processes' mean
        assert steps == pytest.approx(json.loads((one / f"checkpoint-{STEPS}" / "losses.json").read_text()), rel=1e-4)
        # the main process scored the dev data at the same steps, to the same F1, and kept the state
        history_two = json.loads((two / "dev_f1.json").read_text())["dev_history"]
        history_one = json.loads((one / "dev_f1.json").read_text())["dev_history"]
        assert [h["step"] for h in history_two] == [h["step"] for h in history_one] == [2, 4]
        assert [h["dev_f1"] for h in history_two] == pytest.approx([h["dev_f1"] for h in history_one], abs=1e-6)
        assert (two / "dev_f1" / "early_stopping.json").is_file()
