"""The token classifier's training: a `transformers.Trainer` for a `TokenTagger` (sft/tagger.py), so that the
tagger trains as SFT does, with the same optimizer, schedule, clipping, checkpoints, `--resume` and callbacks
(dev-F1 selection, sft/selection.py).

- Items are encoded windows (`{"window": Encoded, "features": tensor or None}`); the collator pads them into a
  batch, and stacks a frozen backbone's cached word features when the items carry them (the head runs alone).
- A checkpoint (`checkpoint-N`) keeps the trainable weights only (`trainable.safetensors`: LoRA and the head, never a
  frozen backbone), the per-step losses so far, and a tagger folder that `instruct-ner tag` loads. Optimizer,
  scheduler, RNG and the data position are the Trainer's own, and so is resuming them.
- In several processes (DDP) the loss is the mean over the whole batch, every process's share of it together, as in
  one process: the shares' sums over the denominators all-reduced (`TaggerTrainer.compute_loss`).

It reads no data and loads no model: sft/train_tagger.py builds both and calls `tagger_trainer`.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments

from instruct_ner.sft.checkpoints import AtomicCheckpoints
from instruct_ner.sft.features import collate_features
from instruct_ner.sft.models import is_quantized
from instruct_ner.sft.options import loop_arguments, training_epochs
from instruct_ner.sft.selection import load_trainable, save_trainable
from instruct_ner.sft.tagger import collate, save_tagger

TRAINABLE_WEIGHTS = "trainable.safetensors"  # a checkpoint's trainable weights (the format selection keeps)
STEP_LOSSES = "losses.json"  # a checkpoint's per-step losses so far


class TaggerCollator:
    """Encoded windows -> a padded batch (sft.tagger.collate), plus their cached word features when present."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, items: list[dict]) -> dict:
        batch = collate([item["window"] for item in items], self.pad_id)
        if items[0]["features"] is not None:
            batch["features"] = collate_features([item["features"] for item in items])
        return batch


class TaggerTrainer(AtomicCheckpoints, Trainer):
    """A Trainer whose checkpoints hold a TokenTagger's trainable weights and a loadable tagger folder; it records
    every optimizer step's loss (`step_losses`, kept across `--resume`). Checkpoints are staged and renamed, with
    their run's config (sft/checkpoints.py)."""

    # The loss is a micro-batch's mean (over every process's share of it): the Trainer divides it by the accumulation
    # steps, in one process as in several. TokenTagger.forward takes no `num_items_in_batch`, so the Trainer neither
    # counts items nor rescales by `average_tokens_across_devices`.
    loss_is_scaled_for_ga = False

    def __init__(self, *args, save_folder, **kwargs):
        super().__init__(*args, **kwargs)
        self.save_folder, self.step_losses = save_folder, []

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """In several processes, each one's loss is its share's sums over the whole batch's denominators (all
        processes' shares) times the number of processes: DDP averages their gradients, which is then the gradient
        of the whole batch's mean, and so is the mean of their losses, which the Trainer logs. Each process's own
        mean would weigh the words of a share with fewer of them more than one process does."""
        processes = self.accelerator.num_processes
        if processes == 1 or not model.training:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        outputs = model(**inputs, loss_sums=True)
        terms = outputs["loss_terms"]
        shares = self.accelerator.reduce(torch.stack([term.denominator for term in terms]), "sum") / processes
        loss = sum(term.weight * (term.value / share) for term, share in zip(terms, shares))
        return (loss, outputs) if return_outputs else loss

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        # in several processes, the mean of their losses: the loss of the step's whole batch, as the Trainer logs it
        shared = self.accelerator.reduce(loss.detach(), "mean") if self.accelerator.num_processes > 1 else loss
        self.step_losses.append(shared.item())
        return loss

    def _move_model_to_device(self, model, device):
        if not is_quantized(model.backbone):  # a quantised backbone stays where it was loaded, the head beside it
            super()._move_model_to_device(model, device)

    def _save(self, output_dir: str | None = None, state_dict=None) -> None:
        folder = Path(output_dir or self.args.output_dir)
        self.save_folder(folder)
        save_trainable(self.model, folder / TRAINABLE_WEIGHTS)
        (folder / STEP_LOSSES).write_text(json.dumps(self.step_losses), encoding="utf-8")

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        folder = Path(resume_from_checkpoint)
        load_trainable(model or self.model, folder / TRAINABLE_WEIGHTS)
        self.step_losses = json.loads((folder / STEP_LOSSES).read_text(encoding="utf-8"))


class EpochTimes(TrainerCallback):
    """Seconds of each epoch; the first also carries what ran since `started` (feature extraction or cache read)."""

    def __init__(self, started: float):
        self.started, self.training_started, self.begun = started, started, []

    def on_train_begin(self, args, state, control, **kwargs):
        self.training_started = time.perf_counter()

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.begun.append(time.perf_counter())

    def epoch_seconds(self) -> list[float]:
        ends = [*self.begun[1:], time.perf_counter()]
        seconds = [end - begin for begin, end in zip(self.begun, ends)]
        if seconds:
            seconds[0] += self.begun[0] - self.started
        return seconds


def tagger_trainer(
    config, model, tokenizer, items: list[dict], pad_id: int, artifact, callbacks, run: dict | None = None
) -> TaggerTrainer:
    """The Trainer of a TaggerConfig's loop options (cosine schedule, as SFT's default) for `model` on `items`;
    `run` (`options.run_config`) goes into every checkpoint as its run.json."""
    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    args = TrainingArguments(
        **loop_arguments(config, config.output_dir, names, training_epochs(config, len(items))),
        lr_scheduler_type="cosine",
        remove_unused_columns=False,  # the collator reads the items whole
        disable_tqdm=True,
    )
    trainer = TaggerTrainer(
        model=model,
        args=args,
        train_dataset=items,
        data_collator=TaggerCollator(pad_id),
        processing_class=tokenizer,
        callbacks=callbacks,
        save_folder=lambda folder: save_tagger(model, tokenizer, folder, artifact),
    )
    trainer.run_config = run
    return trainer
