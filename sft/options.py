"""The options `train` and `train-tagger` share, declared once: the model (`ModelOptions`, also used by
`generate` and `tag`; `PrecisionOption` also by `demo`), the optimisation loop (`LoopOptions`), the
LoRA adapter (`LoraOptions`) and dev-F1 model selection (`DevF1Options`, carried out by
sft/selection.py with an evaluator that `instruct_ner.training` builds), plus the helpers built on them: `lora_config`,
`loop_arguments` (the Trainer arguments both trainers share), `resume_checkpoint` (the checkpoint lookup for
`--resume`) and `prune_checkpoints` (for scripts that prune by hand; the Trainer prunes its own).

This module loads no model and reads no data.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from instruct_ner.prompts.readers import ReaderOptions
from instruct_ner.sft.models import PRECISIONS

from instruct_ner.config import ConfigError


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
    per_device_train_batch_size: int = field(default=8, metadata={"help": "batch size per device"})
    save_steps: int = field(default=100, metadata={"help": "save a checkpoint every N steps"})
    save_total_limit: int | None = field(
        default=2, metadata={"help": "checkpoints kept, the newest; older checkpoint-N folders are deleted"}
    )
    logging_steps: int = field(default=10, metadata={"help": "log the loss every N steps"})
    seed: int = field(default=42, metadata={"help": "random seed (data order, initialisation, dev split)"})
    resume: str | None = field(
        default=None, metadata={"help": "resume from a checkpoint folder, or 'latest' for the newest in output_dir"}
    )

    def check_loop(self) -> None:
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


def loop_arguments(config: LoopOptions, output_dir: str, names: set[str]) -> dict:
    """The `transformers.TrainingArguments` (or TRL `SFTConfig`) fields of the loop options, the same for both
    trainers: AdamW, warm-up, steps or epochs, batch size, checkpoints, logging, seeds, CPU or CUDA. `names`: the
    argument class's field names (transformers 5 dropped `warmup_ratio`).

    Example: loop_arguments(LoopOptions(max_steps=5), "runs/x", names)["max_steps"] -> 5
    """
    import torch

    return {
        "output_dir": output_dir,
        "learning_rate": config.learning_rate,
        **warmup_argument(config.warmup_ratio, names),
        "weight_decay": config.weight_decay,
        "optim": "adamw_torch",
        "num_train_epochs": config.num_train_epochs,
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


def resume_checkpoint(resume: str | None, output_dir: str | Path, marker: str | None = None) -> str | None:
    """The checkpoint folder `--resume` names: 'latest' = the highest checkpoint-N in output_dir.

    `marker` is a file a checkpoint of this kind must hold (e.g. the tagger's training_state.pt).
    """
    if not resume:
        return None
    if resume == "latest":
        saved = checkpoints(output_dir)
        if not saved:
            raise ConfigError(f"--resume latest: no checkpoint-* folder in {output_dir}")
        folder = saved[-1]
    else:
        folder = Path(resume)
        if not folder.is_dir():
            raise ConfigError(f"--resume {resume}: no such checkpoint folder")
    if marker and not (folder / marker).exists():
        raise ConfigError(f"--resume {folder}: not a checkpoint of this kind (no {marker})")
    return str(folder)


def checkpoints(output_dir: str | Path) -> list[Path]:
    """The checkpoint-N folders in output_dir, oldest (lowest N) first.

    Example: folders checkpoint-10, checkpoint-9 and checkpoint-x -> [checkpoint-9, checkpoint-10]
    """
    found = [p for p in Path(output_dir).glob("checkpoint-*") if p.is_dir() and p.name.split("-", 1)[1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-", 1)[1]))


def prune_checkpoints(output_dir: str | Path, keep: int | None) -> list[Path]:
    """Delete all but the newest `keep` checkpoint-N folders (None: keep all); returns the deleted ones."""
    import shutil

    saved = checkpoints(output_dir)
    doomed = saved[: max(len(saved) - keep, 0)] if keep is not None else []
    for folder in doomed:
        shutil.rmtree(folder)
    return doomed
