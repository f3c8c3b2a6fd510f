"""Checkpoints that are whole or absent: both trainers (TRL's `SFTTrainer` and the tagger's `transformers.Trainer`)
write each `checkpoint-N` into a staging folder (`output_dir/.saving-checkpoint-N/checkpoint-N`) and rename it into
place once the Trainer has written everything, its state (`trainer_state.json`) last. A save interrupted by Ctrl-C
thus leaves a staging folder (cleared by the next run, sft/options.py `claim_output_dir`), never a `checkpoint-N`
that `--resume latest` would pick. Each checkpoint also gets its run's config (`run.json`, `options.run_config`),
which `--resume` compares. Pruning to `save_total_limit` happens after the rename, over complete checkpoints only.

Callbacks' `on_save` runs after `_save_checkpoint` returns (transformers' `_maybe_log_save_evaluate`), so a callback
that writes into `checkpoint-N` finds it renamed already. This module loads no model.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from instruct_ner.sft.options import RUN_FILE, STAGING_PREFIX, prune_checkpoints


class AtomicCheckpoints:
    """A mixin for a `transformers.Trainer` subclass (put it first): staged, renamed checkpoints with a run.json.

    `run_config`: the dict written as each checkpoint's run.json (None: none written).
    """

    run_config: dict | None = None

    def _save_checkpoint(self, model, trial) -> None:
        from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

        run_dir = Path(self._get_output_dir(trial=trial))
        name = f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        staging = run_dir / f"{STAGING_PREFIX}{name}"
        # transformers writes the checkpoint to `_get_output_dir(trial)/checkpoint-N` and rotates checkpoints there:
        # pointed at the staging folder, it writes the one checkpoint there and finds nothing to prune
        self._get_output_dir = lambda trial=None: str(staging)
        try:
            super()._save_checkpoint(model, trial)
        finally:
            del self._get_output_dir
        self.accelerator.wait_for_everyone()  # every process has written its part (e.g. its RNG state)
        if not self.args.should_save:
            return
        staged, final = staging / name, run_dir / name
        if self.run_config is not None:
            (staged / RUN_FILE).write_text(json.dumps(self.run_config, indent=2, ensure_ascii=False), "utf-8")
        if final.exists():  # a resumed run writes a step again: the old folder goes once the new one is in place
            os.replace(final, staging / f"replaced-{name}")
        os.replace(staged, final)
        shutil.rmtree(staging, ignore_errors=True)
        prune_checkpoints(run_dir, self.args.save_total_limit, protect=final)
