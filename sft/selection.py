"""Dev-F1 model selection, one way for both trainers: micro entity F1 on dev sentences every N optimizer steps (not
the loss), the best trainable weights kept, patience, and the best weights put back before the final save.

- `DevF1Tracker`: the evaluation history, best step and patience, persisted as JSON (`early_stopping.json`) so that a
  run resumed from a checkpoint keeps its best so far.
- `DevF1Selection`: a `transformers.TrainerCallback` used by generative SFT (sft/train.py) and the token classifier
  (sft/train_tagger.py) alike. It scores the model with an *evaluator* (a callable `(model, tokenizer) -> micro F1`)
  when `DevF1Tracker.due`, saves the trainable weights of the best step to `best.safetensors` in its folder, stops
  training when patience runs out, and at the end of training loads the best weights back into the model, so that
  what the trainer saves next is the best.
- `selection_for(config, evaluator)`: the callback a config asks for (`eval_f1_steps`), in `output_dir/dev_f1`.

It does not generate or tag: scoring a generative model needs generation, which lives above `sft/`; the caller
(instruct_ner/training.py) builds the evaluator from inference/evaluation.py and passes it down.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from transformers import TrainerCallback

from instruct_ner.config import ConfigError
from instruct_ner.errors import ModelError
from instruct_ner.sft.distributed import broadcast, is_main

STATE_DIR = "dev_f1"
STATE_FILE = "early_stopping.json"
BEST_WEIGHTS = "best.safetensors"
SUMMARY_FILE = "dev_f1.json"

Evaluator = Callable[..., float]  # (model, tokenizer) -> dev micro F1; it leaves the model in training mode


class DevF1Tracker:
    """Evaluation history, best step and patience, persisted as JSON in `state_dir`."""

    def __init__(self, state_dir: str | Path, every: int, patience: int | None = None):
        if every <= 0:
            raise ValueError(f"evaluate every N > 0 steps, not {every}")
        self.state_dir, self.every, self.patience = Path(state_dir), every, patience
        if is_main():  # several processes (sft/distributed.py): the main one keeps the state
            self.state_dir.mkdir(parents=True, exist_ok=True)
        path = self.state_dir / STATE_FILE
        state = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        self.history: list[dict] = state.get("history", [])
        self.best_step: int | None = state.get("best_step")
        self.best_f1: float = state.get("best_f1", -1.0)

    def due(self, step: int, total: int | None) -> bool:
        """Every `every` steps and at the last; a periodic evaluation less than half a period before the last
        one is skipped (at 624 of 625 it scored nearly the same weights again, ~100 s in a generative run).

        Example: DevF1Tracker(dir, every=104).due(624, 625) -> False; .due(625, 625) -> True
        """
        if total is not None and step >= total:
            return True
        return step % self.every == 0 and (total is None or total - step >= self.every / 2)

    def record(self, step: int, f1: float, seconds: float) -> bool:
        """Add an evaluation; True when it is the new best."""
        self.history = [h for h in self.history if h["step"] < step] + [
            {"step": step, "dev_f1": round(f1, 6), "seconds": round(seconds, 2)}
        ]
        improved = f1 > self.best_f1
        if improved:
            self.best_step, self.best_f1 = step, f1
        self.save()
        print(f"dev F1 at step {step}: {f1:.4f} (best {self.best_f1:.4f} at step {self.best_step})", file=sys.stderr)
        return improved

    def exhausted(self) -> bool:
        if self.patience is None or self.best_step is None:
            return False
        return sum(h["step"] > self.best_step for h in self.history) >= self.patience

    def save(self) -> None:
        if not is_main():
            return
        state = {"history": self.history, "best_step": self.best_step, "best_f1": self.best_f1, "every": self.every}
        (self.state_dir / STATE_FILE).write_text(json.dumps(state, indent=2), encoding="utf-8")

    def summary(self) -> dict:
        return {
            "best_step": self.best_step,
            "best_dev_f1": self.best_f1,
            "dev_history": self.history,
            "eval_seconds": sum(h["seconds"] for h in self.history),
        }


def trainable_state(model) -> dict:
    """The parameters that train (LoRA, a head), detached on the CPU: what selection and checkpoints keep."""
    return {name: p.detach().cpu().contiguous() for name, p in model.named_parameters() if p.requires_grad}


def load_trainable(model, path: str | Path) -> None:
    """Load weights saved by `trainable_state` (safetensors) into `model`; a name the model lacks is a ModelError."""
    from safetensors.torch import load_file

    unexpected = model.load_state_dict(load_file(str(path)), strict=False).unexpected_keys
    if unexpected:
        raise ModelError(f"{path}: weights this model does not have: {unexpected[:3]}")


def save_trainable(model, path: str | Path) -> None:
    from safetensors.torch import save_file

    save_file(trainable_state(model), str(path))


class DevF1Selection(TrainerCallback):
    """Dev F1 every `every` steps (DevF1Tracker.due); the best trainable weights kept and loaded back at the end."""

    def __init__(self, evaluator: Evaluator, state_dir: str | Path, every: int, patience: int | None = None):
        self.evaluator = evaluator
        self.tracker = DevF1Tracker(state_dir, every, patience)
        self.best_path = self.tracker.state_dir / BEST_WEIGHTS

    def on_step_end(self, args, state, control, model=None, processing_class=None, **kwargs):
        if not self.tracker.due(state.global_step, state.max_steps):
            return control
        started = time.perf_counter()
        # In several processes the main one scores the dev data (its weights are every process's) and tells the
        # others, so that all record the same history and stop at the same step.
        f1 = broadcast(self.evaluator(model, processing_class) if is_main() else None)
        if self.tracker.record(state.global_step, f1, time.perf_counter() - started) and is_main():
            save_trainable(model, self.best_path)
        if self.tracker.exhausted():
            control.should_training_stop = True
        return control

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if is_main() and self.best_path.exists():  # the main process saves the model
            load_trainable(model, self.best_path)
            print(f"restored the best weights (step {self.tracker.best_step})", file=sys.stderr)
        return control

    def report(self, results: dict, output_dir: str | Path) -> dict:
        """`results` with the selection's summary, which is also written to output_dir/dev_f1.json."""
        summary = self.tracker.summary()
        if not is_main():
            return {**results, **summary}
        Path(output_dir, SUMMARY_FILE).write_text(json.dumps(summary, indent=2), encoding="utf-8")
        print(
            f"best dev F1 {self.tracker.best_f1:.4f} at step {self.tracker.best_step}: those weights are saved",
            file=sys.stderr,
        )
        return {**results, **summary}


def selection_for(config, evaluator: Evaluator | None) -> DevF1Selection | None:
    """The dev-F1 callback a config's `eval_f1_steps` asks for (None when off), its state in output_dir/dev_f1."""
    if not config.eval_f1_steps:
        return None
    if evaluator is None:
        raise ConfigError(
            "eval_f1_steps needs an evaluator of dev F1: train through instruct_ner.training (the CLI's train and "
            "train-tagger), which builds it"
        )
    if os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true":
        raise ConfigError(
            "eval_f1_steps under FSDP is not supported: the main process scores the dev data alone, and FSDP shards "
            "the weights across processes; select by dev F1 with DDP (sft/recipes/accelerate-ddp.yaml) or one process"
        )
    state_dir = Path(config.output_dir) / STATE_DIR
    return DevF1Selection(evaluator, state_dir, config.eval_f1_steps, config.early_stopping_patience or None)
