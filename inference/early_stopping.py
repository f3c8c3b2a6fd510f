"""Dev-F1 early stopping: entity F1 on dev sentences every N optimizer steps (not the loss), best weights kept.

- `TaggerEarlyStopping`: a `step_callback` for the token classifier's `train_loop` (it binds the model
  before the first step). At the last step, or when `patience` evaluations in a row did not improve the
  best F1, it puts the best weights back into the model, so that what `train_tagger` saves is the best.
- `SFTEarlyStopping`: a transformers `TrainerCallback` for `sft.train.run_training(config, callbacks=...)`;
  it saves the best adapter to `best_dir` (use that folder, plus the run's `instruct_ner.json`, afterwards)
  and sets `should_training_stop` when patience runs out.

Both write their history (`early_stopping.json` in `state_dir`) after every evaluation and read it back
when a run resumes from a checkpoint, so an interrupted run keeps its best so far. It does not train,
load models or choose the data: the caller passes dev examples and, for SFT, the prompt builder.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from instruct_ner.inference.score import score_tags

from instruct_ner.examples import Example

STATE_FILE = "early_stopping.json"
BEST_WEIGHTS = "best_weights.pt"


class DevF1Tracker:
    """Evaluation history, best step and patience, persisted as JSON in `state_dir`."""

    def __init__(self, state_dir: str | Path, every: int, patience: int | None = None):
        if every <= 0:
            raise ValueError(f"evaluate every N > 0 steps, not {every}")
        self.state_dir, self.every, self.patience = Path(state_dir), every, patience
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
        state = {"history": self.history, "best_step": self.best_step, "best_f1": self.best_f1, "every": self.every}
        (self.state_dir / STATE_FILE).write_text(json.dumps(state, indent=2), encoding="utf-8")

    def summary(self) -> dict:
        return {
            "best_step": self.best_step,
            "best_dev_f1": self.best_f1,
            "dev_history": self.history,
            "eval_seconds": sum(h["seconds"] for h in self.history),
        }


def tagger_dev_f1(model, tokenizer, examples: list[Example], max_length: int = 512) -> float:
    """Micro entity F1 of the token classifier on `examples` (the model is put back in training mode)."""
    from instruct_ner.sft.tagger import predict

    pred = predict(model, examples, tokenizer, max_length)
    model.train()
    return score_tags([e.tags for e in examples], pred)["micro"]["f1"]


def generative_dev_f1(model, tokenizer, builder, examples: list[Example], batch_size: int = 16) -> float:
    """Micro entity F1 of a generative model (greedy, the project's decoding) on `examples`.

    `tokenizer` must be a separate instance from the trainer's: the generator pads on the left.
    """
    from instruct_ner.inference.decoding import DecodeOptions, HFGenerator
    from instruct_ner.inference.predictor import GenerativePredictor

    was_training = model.training
    model.eval()
    options = DecodeOptions(builder.response_format, builder.labels, constrain=True)
    predictor = GenerativePredictor(builder, HFGenerator(model, tokenizer, builder.style, True, options))
    pred = [record["pred_tags"] for record in predictor.predict(examples, batch_size)]
    if was_training:
        model.train()
    return score_tags([e.tags for e in examples], pred)["micro"]["f1"]


class TaggerEarlyStopping:
    """`train_loop` step callback: dev F1 every `every` steps; the best weights go back in at the end."""

    def __init__(self, dev: list[Example], state_dir, every: int, patience: int | None = None, max_length=512):
        self.dev, self.max_length = dev, max_length
        self.tracker = DevF1Tracker(state_dir, every, patience)
        self.model = self.tokenizer = self.total = None

    def bind(self, model, tokenizer, total: int) -> None:
        self.model, self.tokenizer, self.total = model, tokenizer, total

    def _trainable(self) -> dict:
        names = {name for name, p in self.model.named_parameters() if p.requires_grad}
        return {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items() if k in names}

    def __call__(self, step: int) -> bool:
        import torch

        if not self.tracker.due(step, self.total):
            return True
        started = time.perf_counter()
        f1 = tagger_dev_f1(self.model, self.tokenizer, self.dev, self.max_length)
        if self.tracker.record(step, f1, time.perf_counter() - started):
            torch.save(self._trainable(), self.tracker.state_dir / BEST_WEIGHTS)
        stop = self.tracker.exhausted()
        if stop or step >= self.total:
            best = self.tracker.state_dir / BEST_WEIGHTS
            if best.exists():
                self.model.load_state_dict(torch.load(best, weights_only=True), strict=False)
                print(f"restored the best weights (step {self.tracker.best_step})", file=sys.stderr)
        return not stop


def sft_early_stopping(dev: list[Example], builder, tokenizer, best_dir, every: int, patience=None, batch_size=16):
    """A TrainerCallback (built here so that transformers is imported only when used)."""
    from transformers import TrainerCallback

    class SFTEarlyStopping(TrainerCallback):
        def __init__(self):
            self.tracker = DevF1Tracker(best_dir, every, patience)
            self.best_dir = Path(best_dir)

        def on_step_end(self, args, state, control, model=None, **kwargs):
            if not self.tracker.due(state.global_step, state.max_steps):
                return control
            started = time.perf_counter()
            f1 = generative_dev_f1(model, tokenizer, builder, dev, batch_size)
            if self.tracker.record(state.global_step, f1, time.perf_counter() - started):
                model.save_pretrained(str(self.best_dir))
            if self.tracker.exhausted():
                control.should_training_stop = True
            return control

    return SFTEarlyStopping()
