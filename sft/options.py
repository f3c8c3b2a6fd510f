"""The options `train` and `train-tagger` share, declared once: the model (`ModelOptions`, also used by `generate` and
`tag`; `PrecisionOption` also by `demo`), the optimisation loop (`LoopOptions`), the LoRA adapter (`LoraOptions`)
and dev-F1 model selection (`DevF1Options`, carried out by sft/selection.py with an evaluator that
`instruct_ner.training` builds), plus the helpers built on them: `lora_config`, `loop_arguments` (the Trainer
arguments both trainers share; `epochs_for` raises the epochs to `min_steps`), `prepare_output_dir` /
`claim_output_dir` (the `--output_dir` check before anything loads, and the claim once every check passed),
`AugmentOptions` and `augment_training` (mention-replacement copies of the training examples, prompts/augment.py),
`run_config` (what decides a run's weights, written into each checkpoint as run.json by sft/checkpoints.py),
`resume_checkpoint` (the checkpoint lookup for `--resume`: the newest complete one, of the same run) and
`prune_checkpoints` (after each staged save).

This module loads no model and reads no data.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

from instruct_ner.config import ConfigError
from instruct_ner.examples import Example
from instruct_ner.prompts.readers import ReaderOptions
from instruct_ner.sft.distributed import is_main, world_size
from instruct_ner.sft.models import PRECISIONS


@dataclass
class PrecisionOption:
    """`--precision`, the same in every subcommand that loads a model (demo included)."""

    precision: str = field(
        default="auto",
        metadata={
            "help": "8bit, 4bit (bitsandbytes), bf16 or fp32; auto = by hardware: 8bit to train and bf16 to "
            "generate on CUDA, bf16 on CPUs with native bf16, fp32 otherwise",
            "choices": list(PRECISIONS),
        },
    )


@dataclass
class ModelOptions(PrecisionOption):
    model: str = field(
        default="",
        metadata={"help": "Hugging Face causal LM id or local folder; empty = the embedded SmolLM2-135M-Instruct"},
    )
    trust_remote_code: bool = field(default=False, metadata={"help": "allow model code from the hub (off)"})


@dataclass
class LoopOptions:
    """The optimisation loop `train` and `train-tagger` share (AdamW, cosine schedule with warm-up)."""

    learning_rate: float = field(
        default=1e-3,
        metadata={
            "help": "peak learning rate (AdamW); 1e-3 won the generative dev-F1 sweeps on CoNLL-2003 (BENCHMARKS.md): "
            "the entity list's at 500 sentences, the inline format's at 2,000 (3e-3 led it at 500 by 0.008); "
            "3e-3 won on runs of a few dozen steps (60 and 120 e-mails: recipe smollm2-emails-it)"
        },
    )
    warmup_ratio: float = field(default=0.05, metadata={"help": "fraction of steps spent warming up, in [0, 1)"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    num_train_epochs: float = field(default=1.0, metadata={"help": "epochs (ignored when max_steps > 0)"})
    max_steps: int = field(default=-1, metadata={"help": "optimizer steps; -1 = use num_train_epochs"})
    min_steps: int = field(
        default=0,
        metadata={
            "help": "train at least this many optimizer steps: on a small training set num_train_epochs is raised "
            "to reach them (40 e-mails at 3 epochs made 15-30 steps, far from trained: BENCHMARKS.md); 0 = off"
        },
    )
    per_device_train_batch_size: int = field(default=8, metadata={"help": "batch size per device"})
    save_steps: int = field(default=100, metadata={"help": "save a checkpoint every N steps"})
    save_total_limit: int | None = field(
        default=2, metadata={"help": "checkpoints kept, the newest; older checkpoint-N folders are deleted"}
    )
    logging_steps: int = field(default=10, metadata={"help": "log the loss every N steps"})
    seed: int = field(default=42, metadata={"help": "random seed (data order, initialisation, dev split)"})
    resume: str | None = field(
        default=None,
        metadata={
            "help": "resume from a checkpoint folder, or 'latest' for the newest complete one in output_dir; it "
            "must come from a run with the same settings (its run.json)"
        },
    )
    overwrite: bool = field(
        default=False,
        metadata={
            "help": "train into an output_dir that holds a finished run or files this command did not write, "
            "replacing them (the data and the model are never written over)"
        },
    )

    def check_loop(self) -> None:
        if isinstance(self.min_steps, bool) or self.min_steps < 0:
            raise ConfigError(f"min_steps must be a number of steps >= 0, got {self.min_steps}")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        limit = self.save_total_limit
        if limit is not None and (isinstance(limit, bool) or limit < 1):
            raise ConfigError(f"save_total_limit must be at least 1, got {limit}")


@dataclass
class DevF1Options:
    """Dev-F1 model selection and early stopping: entity F1 (not the loss) on dev data every N steps."""

    eval_f1_data: str | None = field(
        default=None,
        metadata={
            "help": "dev data scored by micro entity F1 while training (any source prepare reads; --limit caps the "
            "training data only, eval_f1_limit this)"
        },
    )
    eval_f1_limit: int | None = field(
        default=None, metadata={"help": "score only the first N records of eval_f1_data (default: all of them)"}
    )
    eval_split: str = field(
        default="validation",
        metadata={"help": "split read when eval_data / eval_f1_data is a Hugging Face dataset (not --split's)"},
    )
    eval_f1_steps: int = field(
        default=0,
        metadata={"help": "score eval_f1_data every N steps and at the end; the best weights are saved (0: off)"},
    )
    early_stopping_patience: int = field(
        default=0, metadata={"help": "with eval_f1_steps: stop after N evaluations without a better dev F1 (0: never)"}
    )

    def dev_reader_options(self, source: str, limit: int | None = None) -> ReaderOptions:
        """The reader options of the training data for a dev source: `eval_split` as its split, `limit` in place of
        `--limit` (which caps the training records only), and an explicit `--format` kept only for a dev file of
        the training data's kind (same suffix); another kind is read by its own suffix.

        Example: TrainConfig(data="train.csv", format="csv").dev_reader_options("dev.jsonl").format -> "auto"
        """
        options = ReaderOptions(**{f.name: getattr(self, f.name) for f in fields(ReaderOptions)})
        options.split, options.limit = self.eval_split, limit
        if Path(str(source)).suffix.lower() != Path(str(getattr(self, "data", None) or "")).suffix.lower():
            options.format = "auto"
        return options

    def check_dev_f1(self) -> None:
        if self.eval_f1_steps < 0 or self.early_stopping_patience < 0:
            raise ConfigError("eval_f1_steps and early_stopping_patience must be >= 0")
        if self.eval_f1_steps and not self.eval_f1_data:
            raise ConfigError("eval_f1_steps needs --eval_f1_data (the dev sentences to score)")
        if self.eval_f1_limit is not None and (isinstance(self.eval_f1_limit, bool) or self.eval_f1_limit < 1):
            raise ConfigError(f"eval_f1_limit must be at least 1, got {self.eval_f1_limit}")
        if self.eval_f1_limit is not None and not self.eval_f1_steps:
            raise ConfigError("eval_f1_limit needs --eval_f1_steps N (it caps the dev sentences scored)")
        if self.early_stopping_patience and not self.eval_f1_steps:
            raise ConfigError("early_stopping_patience needs --eval_f1_steps N (how often to score the dev data)")


@dataclass
class LoraOptions:
    lora_r: int = field(default=16, metadata={"help": "LoRA rank"})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha (scale = alpha / r)"})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout"})
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["all-linear"],
        metadata={"help": "modules that get LoRA; all-linear = every linear projection (not the LM head)"},
    )

    def check_lora(self) -> None:
        if self.lora_r <= 0:
            raise ConfigError(f"lora_r must be positive, got {self.lora_r}")


@dataclass
class AugmentOptions:
    """Mention-replacement augmentation of the training examples (prompts/augment.py), the same in both trainers."""

    augment: int = field(
        default=0,
        metadata={
            "help": "add K copies of each training example with every entity swapped for another mention of its "
            "label from the training examples (seeded by --seed; after the dev split, never on dev data; an example "
            "without entities, or with none that can change, is not copied); 0 = off"
        },
    )

    def check_augment(self) -> None:
        if isinstance(self.augment, bool) or self.augment < 0:
            raise ConfigError(f"augment must be a number of copies >= 0, got {self.augment}")


def augment_training(examples: list[Example], options: AugmentOptions, seed: int) -> list[Example]:
    """The training examples followed by their `--augment` copies (`prompts.augment.augment_examples`), with how many
    were added said on stderr. Pass the training examples only: their mentions are the ones swapped in.

    Example: augment_training(examples, TrainConfig(data="t.txt", augment=2), 42)[len(examples):] -> the copies
    """
    import sys

    from instruct_ner.prompts.augment import augment_examples

    if not options.augment:
        return list(examples)
    augmented = augment_examples(examples, options.augment, seed)
    added = len(augmented) - len(examples)
    copied = added // options.augment  # each example copied at all is copied `augment` times
    print(
        f"augment {options.augment}: {added} copies of {copied} of the {len(examples)} training examples added "
        f"(mentions swapped within their labels; {len(examples) - copied} without a mention to swap not copied)",
        file=sys.stderr,
    )
    return augmented


def lora_config(options: LoraOptions, task_type: str):
    """The peft LoraConfig of the options. Example: lora_config(LoraOptions(), "CAUSAL_LM").r -> 16"""
    from peft import LoraConfig

    targets = list(options.lora_target_modules)
    return LoraConfig(
        r=options.lora_r,
        lora_alpha=options.lora_alpha,
        lora_dropout=options.lora_dropout,
        target_modules="all-linear" if targets == ["all-linear"] else targets,
        task_type=task_type,
    )


def epochs_for(config: LoopOptions, examples: int, per_step: int) -> float:
    """`num_train_epochs`, raised to the whole epochs that make at least `min_steps` optimizer steps over `examples`
    training examples at `per_step` examples a step (micro batch x accumulation x processes). Unchanged when
    `max_steps` decides the length, `min_steps` is 0, or the epochs asked already make enough steps.

    Example: epochs_for(LoopOptions(num_train_epochs=3, min_steps=100), examples=40, per_step=4) -> 10
    Example: epochs_for(LoopOptions(num_train_epochs=3, min_steps=100), examples=240, per_step=4) -> 3
    """
    if config.max_steps > 0 or config.min_steps <= 0 or examples <= 0:
        return config.num_train_epochs
    steps_per_epoch = math.ceil(examples / max(1, per_step))
    return max(config.num_train_epochs, math.ceil(config.min_steps / steps_per_epoch))


def training_epochs(config: LoopOptions, examples: int) -> float:
    """`epochs_for` this run: micro batch x accumulation (where the trainer has it) x processes a step; says on
    stderr (main process) when `min_steps` raised the epochs."""
    per_step = config.per_device_train_batch_size * getattr(config, "gradient_accumulation_steps", 1) * world_size()
    epochs = epochs_for(config, examples, per_step)
    if epochs != config.num_train_epochs and is_main():
        print(
            f"min_steps {config.min_steps}: {epochs:g} epochs over {examples} training examples "
            f"({math.ceil(examples / per_step)} steps each), not {config.num_train_epochs:g}",
            file=sys.stderr,
        )
    return epochs


def loop_arguments(config: LoopOptions, output_dir: str, names: set[str], epochs: float | None = None) -> dict:
    """The `transformers.TrainingArguments` (or TRL `SFTConfig`) fields of the loop options, the same for both
    trainers: AdamW, warm-up, steps or epochs (`epochs`: `epochs_for`'s, default the config's), batch size,
    checkpoints, logging, seeds, CPU or CUDA. `names`: the argument class's field names (transformers 5 dropped
    `warmup_ratio`).

    Example: loop_arguments(LoopOptions(max_steps=5), "runs/x", names)["max_steps"] -> 5
    """
    import torch

    return {
        "output_dir": output_dir,
        "learning_rate": config.learning_rate,
        **warmup_argument(config.warmup_ratio, names),
        "weight_decay": config.weight_decay,
        "optim": "adamw_torch",
        "num_train_epochs": config.num_train_epochs if epochs is None else epochs,
        "max_steps": config.max_steps,
        "per_device_train_batch_size": config.per_device_train_batch_size,
        "per_device_eval_batch_size": config.per_device_train_batch_size,
        "save_strategy": "steps",
        "save_steps": config.save_steps,
        "save_total_limit": config.save_total_limit,
        "logging_steps": config.logging_steps,
        "seed": config.seed,
        "data_seed": config.seed,
        "use_cpu": not torch.cuda.is_available(),
        "report_to": "none",
        "dataloader_num_workers": 0,
    }


def warmup_argument(ratio: float, names: set[str]) -> dict:
    """The warm-up as this transformers version takes it: `warmup_ratio` where it still exists, else
    `warmup_steps` given as a float in (0, 1), which transformers 5 reads as a ratio of the total steps.

    Example: warmup_argument(0.05, {"warmup_steps"}) -> {"warmup_steps": 0.05}
    """
    if "warmup_ratio" in names:
        return {"warmup_ratio": ratio}
    return {"warmup_steps": float(ratio)} if ratio > 0 else {"warmup_steps": 0}


TRAINER_STATE = "trainer_state.json"  # the Trainer writes it last: a checkpoint without it is incomplete
RUN_FILE = "run.json"  # a checkpoint's run config (`run_config`): what `--resume` compares
STAGING_PREFIX = ".saving-"  # a checkpoint being written: output_dir/.saving-checkpoint-N/checkpoint-N, then renamed
# Fields that do not decide a run's weights (where it writes, how it logs and selects, how long it goes on, how it
# spends memory), and the data's path, reading options and augmentation, for which the records' fingerprint stands
# (taken after augmentation; so a checkpoint of before `augment` existed resumes too).
NOT_IN_RUN = frozenset(
    "resume overwrite output_dir logging_steps save_steps save_total_limit eval_steps eval_data eval_limit eval_split "
    "eval_f1_data eval_f1_limit eval_f1_steps early_stopping_patience merge max_steps min_steps num_train_epochs "
    "trust_remote_code max_batch_tokens gradient_checkpointing completion_only_lm_head data augment".split()
)


def run_config(config, **decided) -> dict:
    """What decides a run's weights, as `--resume` compares it: the config's fields but `NOT_IN_RUN` and the reader
    options (the data is `data_fingerprint`'s), with `decided` (resolved values: precision, labels, the prompt, the
    data fingerprint) in place of the options they stand for. JSON-ready.

    Example: run_config(TrainConfig(data="t.txt"), data_fingerprint="ab12")["lora_r"] -> 16
    """
    import json
    from dataclasses import asdict

    reader = {f.name for f in fields(ReaderOptions)} - {"labels"}
    values = {k: v for k, v in asdict(config).items() if k not in NOT_IN_RUN and k not in reader}
    return json.loads(json.dumps({**values, **decided}, ensure_ascii=False, default=str))


def data_fingerprint(items) -> str:
    """SHA-256 of the training items (JSON-able: pairs' prompts and responses, or tokens and tags), in order.

    Example: data_fingerprint([["EU"], ["B-ORG"]]) != data_fingerprint([["UE"], ["B-ORG"]])
    """
    import hashlib
    import json

    digest = hashlib.sha256()
    for item in items:
        digest.update(json.dumps(item, ensure_ascii=False, sort_keys=True).encode() + b"\n")
    return digest.hexdigest()


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_run(folder: Path, run: dict) -> None:
    """Refuse (one line naming the differing keys) a checkpoint whose run.json differs from `run`."""
    import json

    path = folder / RUN_FILE
    if not path.is_file():
        raise ConfigError(
            f"--resume {folder}: no {RUN_FILE}, so the run it belongs to is unknown (a checkpoint of an older "
            "instruct-ner or another program); start afresh with --overwrite"
        )
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigError(f"--resume {path}: unreadable ({error})") from None
    if not isinstance(saved, dict):
        raise ConfigError(f"--resume {path}: expected a JSON object")
    differences = [key for key in sorted(set(saved) | set(run)) if saved.get(key) != run.get(key)]
    if differences:
        shown = "; ".join(f"{k} was {_shown(saved.get(k))}, now {_shown(run.get(k))}" for k in differences[:4])
        more = f" and {len(differences) - 4} more" if len(differences) > 4 else ""
        raise ConfigError(
            f"--resume {folder}: the checkpoint is of another run ({shown}{more}); resume with that run's settings, "
            "or start afresh (another --output_dir, or --overwrite)"
        )


def resume_checkpoint(
    resume: str | None, output_dir: str | Path, marker: str | None = None, run: dict | None = None
) -> str | None:
    """The checkpoint folder `--resume` names: 'latest' = the highest complete checkpoint-N in output_dir.

    A checkpoint is complete when it holds the Trainer's state (`trainer_state.json`, written last); an incomplete
    one named explicitly is refused. `marker` is a file a checkpoint of this kind must hold (e.g. the tagger's
    trainable.safetensors). `run` (`run_config`): the checkpoint's run.json must equal it (`check_run`).
    Everything here runs before the model loads.
    """
    if not resume:
        return None
    if resume == "latest":
        saved = complete_checkpoints(output_dir)
        if not saved:
            found = "" if not checkpoints(output_dir) else " (only incomplete ones, whose save was interrupted)"
            raise ConfigError(f"--resume latest: no complete checkpoint-* folder in {output_dir}{found}")
        folder = saved[-1]
    else:
        folder = Path(resume)
        if not folder.is_dir():
            raise ConfigError(f"--resume {resume}: no such checkpoint folder")
        if not (folder / TRAINER_STATE).is_file():
            raise ConfigError(
                f"--resume {folder}: an incomplete checkpoint (no {TRAINER_STATE}): its save was interrupted; "
                "resume from an earlier one, or --resume latest"
            )
    if marker and not (folder / marker).exists():
        raise ConfigError(f"--resume {folder}: not a checkpoint of this kind (no {marker})")
    if run is not None:
        check_run(folder, run)
    return str(folder)


def checkpoints(output_dir: str | Path) -> list[Path]:
    """The checkpoint-N folders in output_dir, oldest (lowest N) first.

    Example: folders checkpoint-10, checkpoint-9 and checkpoint-x -> [checkpoint-9, checkpoint-10]
    """
    found = [p for p in Path(output_dir).glob("checkpoint-*") if p.is_dir() and p.name.split("-", 1)[1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-", 1)[1]))


def complete_checkpoints(output_dir: str | Path) -> list[Path]:
    """The checkpoint-N folders that hold the Trainer's state (written last), oldest first."""
    return [p for p in checkpoints(output_dir) if (p / TRAINER_STATE).is_file()]


def prune_checkpoints(output_dir: str | Path, keep: int | None, protect: str | Path | None = None) -> list[Path]:
    """Delete all but the newest `keep` checkpoint-N folders (None: keep all); returns the deleted ones.

    `protect` (the checkpoint just written) is always kept and counts as one of `keep`, even when a resumed run
    wrote it below a newer step. (A training run meets no incomplete checkpoint: `claim_output_dir` clears them.)
    """
    import shutil

    if keep is None:
        return []
    saved = [p for p in checkpoints(output_dir) if protect is None or p != Path(protect)]
    keep_others = keep - 1 if protect is not None else keep
    doomed = saved[: max(len(saved) - keep_others, 0)]
    for folder in doomed:
        shutil.rmtree(folder)
    return doomed


def prepare_output_dir(config, command: str, inputs, models=()) -> None:
    """Check `--output_dir` against the inputs and the model (`outputs.check_outputs`); writes nothing.

    `inputs`: the paths the run reads (those that do not exist, such as a hub id or a template's name, are left
    out); `models`: model folders it reads besides `--model` (a warm start's adapter). Call before anything loads;
    then `claim_output_dir` once every other check has passed.
    """
    from instruct_ner.outputs import check_outputs

    check_outputs(
        command,
        folders={"--output_dir": config.output_dir},
        inputs=[p for p in inputs if p and Path(p).exists()],
        models=[config.model, *models],
        resume=bool(config.resume),
        overwrite=config.overwrite,
    )


def claim_output_dir(config, command: str, run_state: tuple[str, ...] = ()) -> None:
    """Mark `--output_dir` as `command`'s (`outputs.claim_folder`) and clear what cannot be continued: staging
    folders and incomplete checkpoints of an interrupted save always; every checkpoint and `run_state` (the names of
    other state folders, e.g. dev-F1 selection's) unless the run resumes."""
    import shutil

    from instruct_ner.outputs import claim_folder

    folder = claim_folder(config.output_dir, command)
    doomed = [p for p in folder.glob(f"{STAGING_PREFIX}*") if p.is_dir()]
    doomed += [p for p in checkpoints(folder) if not (p / TRAINER_STATE).is_file()]
    if not config.resume:
        doomed += checkpoints(folder) + [folder / name for name in run_state if (folder / name).is_dir()]
    for path in dict.fromkeys(doomed):
        shutil.rmtree(path, ignore_errors=True)
