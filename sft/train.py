"""`instruct-ner train`: supervised fine-tuning of a causal LM into an entity extractor, with TRL's
`SFTTrainer` and a peft LoRA adapter, on a model loaded in 8-bit (bitsandbytes; the default on CUDA),
4-bit, bf16 or fp32.

The loss covers the response tokens only: examples are given to TRL as prompt/completion pairs, and
its completion mask hides the prompt (and, in chat style, the system and user turns). The adapter folder
gets its description (`sft/artifact.py`, `instruct_ner.json`): the exact prompt builder (template
source, style, labels, definitions, few-shot examples), the response format, the base model and the
training config, so that `generate` and the Python API rebuild the training prompt exactly. With
`--eval_f1_steps`, dev-F1 selection (sft/selection.py, shared with the token classifier) keeps the best adapter; its
evaluator comes from the caller (instruct_ner/training.py), since scoring needs generation.

`--augment K` adds K copies of each training example with its entities swapped for other training mentions of their
labels (prompts/augment.py), after the dev split: the dev records are never augmented, and a held-out example's
mentions are never swapped in. `--init_adapter DIR` starts from the LoRA weights of an earlier `train` folder (a warm
start, `warm_start`): the adapter's base model, rank, alpha and target modules are used, this run's data, labels and
template make the prompts.

Examples:
    instruct-ner train --config sft/recipes/smollm2-conll2003-cpu.yaml
    instruct-ner train --config sft/recipes/smollm2-conll2003-cpu.yaml --max_steps 20 --output_dir runs/try
    instruct-ner train --data runs/train.pairs.jsonl --model meta-llama/Llama-3.2-1B-Instruct --precision 8bit
    instruct-ner train --config smollm2-emails-it --data our.csv --augment 3 --init_adapter runs/smollm2-emails-it
    accelerate launch --config_file sft/recipes/accelerate-ddp.yaml -m instruct_ner.cli train --config ...

Every check on the config, the data and the template runs before the model loads.
"""

from __future__ import annotations

import contextlib
import functools
import json
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from instruct_ner.config import Config, ConfigError, explicit_or_saved, fields_set, replace_config
from instruct_ner.jsonl import read_records
from instruct_ner.prompts.readers import ReaderOptions, load_examples
from instruct_ner.prompts.templates import (
    TRAINING_TEMPLATE,
    PromptBuilder,
    PromptOptions,
    builder_from_options,
    template_field,
)
from instruct_ner.sft.artifact import Artifact, fingerprint, longest_text_tokens, sentences_per_text
from instruct_ner.sft.distributed import barrier, claim_after_checks, is_main, world_size
from instruct_ner.sft.models import (
    EMBEDDED,
    ModelError,
    is_quantized,
    load_causal_lm,
    load_tokenizer,
    model_reference,
    resolve_model,
    resolve_precision,
)
from instruct_ner.sft.options import (  # noqa: F401  (ModelOptions, LoopOptions: re-exported for old imports)
    AugmentOptions,
    DevF1Options,
    LoopOptions,
    LoraOptions,
    ModelOptions,
    augment_training,
    claim_output_dir,
    data_fingerprint,
    loop_arguments,
    lora_config,
    prepare_output_dir,
    resume_checkpoint,
    run_config,
    training_epochs,
)


@dataclass
class TrainConfig(
    Config, ModelOptions, LoopOptions, LoraOptions, DevF1Options, AugmentOptions, PromptOptions, ReaderOptions
):
    template: str = template_field(TRAINING_TEMPLATE)
    data: str | None = field(
        default=None, metadata={"help": "training data: a prepare JSONL, or any source prepare reads (required)"}
    )
    eval_data: str | None = field(
        default=None, metadata={"help": "dev data for the evaluation loss (read whole; a dataset's eval_split)"}
    )
    eval_limit: int | None = field(
        default=None, metadata={"help": "compute the dev loss on the first N records of eval_data only (default: all)"}
    )
    eval_fraction: float = field(
        default=0.0, metadata={"help": "hold out this fraction of the training data as dev data when no eval_data"}
    )
    output_dir: str = field(default="runs/sft", metadata={"help": "where the adapter and checkpoints go"})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "learning-rate schedule"})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "batches per optimizer step"})
    max_length: int = field(default=512, metadata={"help": "longest prompt + response in tokens (longer: cut)"})
    max_batch_tokens: int | None = field(
        default=None,
        metadata={
            "help": "cap on padded tokens per forward pass (examples x the longest one's tokens): when the longest "
            "example would overrun it, every step runs as more, smaller micro-batches with gradient accumulation, "
            "the same examples per step (fp32 SmolLM2-135M on 24 GiB of RAM: about 6144)"
        },
    )
    packing: bool = field(default=False, metadata={"help": "pack several examples into one sequence"})
    gradient_checkpointing: bool = field(default=False, metadata={"help": "trade compute for memory"})
    eval_steps: int = field(default=50, metadata={"help": "evaluate the dev loss every N steps"})
    merge: bool = field(default=False, metadata={"help": "also export the base model with the adapter merged in"})
    group_by_length: bool = field(default=True, metadata={"help": "batch examples of similar length (less padding)"})
    padding_free: bool = field(
        default=False,
        metadata={"help": "flatten each batch into one row without padding (exact; on CPU usually slower)"},
    )
    completion_only_lm_head: bool = field(
        default=True, metadata={"help": "score only completion positions in the LM head (same loss, less work)"}
    )
    init_adapter: str | None = field(
        default=None,
        metadata={
            "help": "warm start: begin from the LoRA weights of this instruct-ner train folder, not a fresh adapter; "
            "its base model, lora_r, lora_alpha and lora_target_modules are used (other values given are an "
            "error), this run's data, labels and template make the prompts"
        },
    )

    def __post_init__(self) -> None:
        if not self.data:
            raise ConfigError("train needs --data (a prepare JSONL or a data source)")
        if not 0 <= self.eval_fraction < 1:
            raise ConfigError(f"eval_fraction must be in [0, 1), got {self.eval_fraction}")
        if self.eval_limit is not None and (isinstance(self.eval_limit, bool) or self.eval_limit < 1):
            raise ConfigError(f"eval_limit must be at least 1, got {self.eval_limit}")
        if self.max_batch_tokens is not None and (
            isinstance(self.max_batch_tokens, bool) or self.max_batch_tokens < 1
        ):
            raise ConfigError(f"max_batch_tokens must be at least 1, got {self.max_batch_tokens}")
        if self.eval_limit is not None and not self.eval_data:
            raise ConfigError("eval_limit needs --eval_data (it caps the dev records of the loss)")
        self.check_loop()
        self.check_lora()
        self.check_dev_f1()
        self.check_augment()
        if self.merge and self.eval_f1_steps:
            raise ConfigError("merge exports the last weights, eval_f1_steps keeps the best: pick one")


def training_pairs(config: TrainConfig) -> tuple[list[dict], list[dict], PromptBuilder]:
    """Train and dev records (prompt or messages + response) and the builder that made them.

    From a prepare JSONL, the records' template, style and labels are used unless the config sets
    them explicitly, and every record's prompt must equal the one the builder rebuilds: the saved
    builder is then exactly what produced the training prompts. The config is not changed.
    With `augment`, the copies of the training examples (not the dev ones) follow the training pairs, each marked
    `"augmented": True`.
    """
    examples, report = load_examples(config.data, config)
    if not examples:
        raise ConfigError(f"{config.data}: no training examples\n{report.summary()}")
    if report.n_skipped:
        print(report.summary(), file=sys.stderr)
    records = read_records(config.data) if str(config.data).endswith(".jsonl") else []
    options = config
    if records and "response" in records[0]:
        first = records[0]
        from_records = {
            "template": first.get("template") or None,
            "style": "chat" if "messages" in first else "instruction",
            "labels": first.get("labels") or None,
        }
        options = replace_config(config, **explicit_or_saved(config, from_records))  # an explicit option wins
    builder = builder_from_options(options, examples)
    pairs = [{**builder.build(example), "source": example.source, "text": example.text} for example in examples]
    for record, pair, example in zip(records, pairs, examples):
        for key in ("prompt", "messages", "response"):
            if key in record and record[key] != pair.get(key):
                raise ConfigError(
                    f"{example.source}: the record's {key!r} differs from what template {builder.template.name} "
                    f"({builder.style}) builds; train with the same template, labels, definitions and few-shot "
                    "options that prepare used"
                )
    held_out: set[int] = set()
    if config.eval_data:
        dev_examples, report = load_examples(
            config.eval_data, config.dev_reader_options(config.eval_data, config.eval_limit)
        )
        if report.n_skipped:
            print(report.summary(), file=sys.stderr)
        dev = [builder.build(example) for example in dev_examples]
    elif config.eval_fraction > 0:
        order = list(range(len(pairs)))
        random.Random(config.seed).shuffle(order)
        held_out = set(order[: max(1, int(len(pairs) * config.eval_fraction))])
        dev = [pairs[i] for i in sorted(held_out)]
        pairs = [pairs[i] for i in range(len(pairs)) if i not in held_out]
    else:
        dev = []
    # after the dev split, from the training examples alone: no held-out example is copied, nor its mentions drawn
    training = [example for i, example in enumerate(examples) if i not in held_out]
    copies = augment_training(training, config, config.seed)[len(training) :]
    pairs += [
        {**builder.build(example), "source": example.source, "text": example.text, "augmented": True}
        for example in copies
    ]
    return pairs, dev, builder


def to_prompt_completion(pair: dict) -> dict:
    """A record -> TRL's prompt/completion form (plain text, or conversational for chat style)."""
    if "messages" in pair:
        return {"prompt": pair["messages"], "completion": [{"role": "assistant", "content": pair["response"]}]}
    return {"prompt": pair["prompt"], "completion": pair["response"]}


def trainer_max_length(config: TrainConfig) -> int | None:
    """The cut TRL applies: none when padding-free without packing (TRL refuses a max_length there)."""
    return None if config.padding_free and not config.packing else config.max_length


def sequence_lengths(pairs: list[dict], tokenizer) -> list[tuple[int, int]]:
    """(prompt tokens, prompt + response tokens) of each pair as TRL's `SFTTrainer` builds the training
    sequence before cutting it to `max_length`: plain text gets the EOS token appended to the response; chat
    pairs go through the tokenizer's chat template (the prompt with the generation prompt)."""
    lengths = []
    for pair in pairs:
        record = to_prompt_completion(pair)
        if "messages" in pair:
            prompt = tokenizer.apply_chat_template(record["prompt"], add_generation_prompt=True, return_dict=True)
            whole = tokenizer.apply_chat_template(record["prompt"] + record["completion"], return_dict=True)
        else:
            prompt = tokenizer(record["prompt"])
            whole = tokenizer(record["prompt"] + record["completion"] + tokenizer.eos_token)
        lengths.append((len(prompt["input_ids"]), len(whole["input_ids"])))
    return lengths


def report_overlong(
    pairs: list[dict], tokenizer, max_length: int | None, lengths: list[tuple[int, int]] | None = None
) -> int:
    """Warn (on stderr) about the training examples longer than `max_length` tokens, which the trainer cuts:
    how many, the longest, the first few by source, and how many lose their whole response (the trainer
    then drops them). Returns how many are cut. Nothing is reported when nothing is cut (or no max_length).
    `lengths`: the pairs' `sequence_lengths`, when already known.
    """
    if max_length is None:
        return 0
    over = [
        (whole, prompt >= max_length, pair.get("source") or f"example {i + 1}")
        for i, (pair, (prompt, whole)) in enumerate(zip(pairs, lengths or sequence_lengths(pairs, tokenizer)))
        if whole > max_length
    ]
    if over:
        longest = max(whole for whole, _, _ in over)
        dropped = sum(gone for _, gone, _ in over)
        names = ", ".join(source for _, _, source in over[:3]) + (", ..." if len(over) > 3 else "")
        print(
            f"warning: {len(over)} of {len(pairs)} training examples are longer than max_length={max_length} "
            f"tokens (longest {longest}; {names}): the trainer cuts their ends, so their responses are learned in "
            f"part{f' and {dropped} with no response left are dropped' if dropped else ''}; "
            f"--max_length {longest} keeps them whole",
            file=sys.stderr,
        )
    return len(over)


def micro_batches(batch: int, accumulation: int, longest: int, max_batch_tokens: int | None) -> tuple[int, int]:
    """(examples per forward pass, passes per optimizer step) for `batch` x `accumulation` examples a step: the
    largest divisor of `batch` whose padded tokens (it x `longest`) fit in `max_batch_tokens`, at least 1.

    Example: micro_batches(8, 1, 991, 6144) -> (4, 2)
    Example: micro_batches(8, 2, 500, 6144) -> (8, 2)
    """
    if max_batch_tokens is None or batch * longest <= max_batch_tokens:
        return batch, accumulation
    micro = max((d for d in range(1, batch + 1) if batch % d == 0 and d * longest <= max_batch_tokens), default=1)
    return micro, accumulation * (batch // micro)


def fit_batches(config: TrainConfig, lengths: list[tuple[int, int]]) -> TrainConfig:
    """`config` with its batch split into micro-batches that keep `max_batch_tokens` (said on stderr when split).
    The longest example counts at most `max_length` tokens, where the trainer cuts it; a packed row, max_length."""
    if config.packing:  # packed rows are filled up to max_length
        longest = config.max_length
    else:
        cut = trainer_max_length(config)
        longest = max((min(whole, cut) if cut else whole for _, whole in lengths), default=0)
    batch, accumulation = config.per_device_train_batch_size, config.gradient_accumulation_steps
    micro, passes = micro_batches(batch, accumulation, longest, config.max_batch_tokens)
    if micro == batch:
        return config
    print(
        f"max_batch_tokens={config.max_batch_tokens}: the longest example has {longest} tokens, so batches of "
        f"{batch} run as {batch // micro} micro-batches of {micro} (gradient accumulation {passes}: the same "
        f"{batch * accumulation} examples per step)",
        file=sys.stderr,
    )
    return replace_config(config, per_device_train_batch_size=micro, gradient_accumulation_steps=passes)


ADAPTER_CONFIG = "adapter_config.json"  # peft's description of a LoRA adapter, beside its weights
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
WARM_LORA = ("lora_r", "lora_alpha", "lora_target_modules")  # what a warm start takes from its adapter


def warm_start(config: TrainConfig) -> tuple[TrainConfig, Artifact | None]:
    """`config` as a warm start from `--init_adapter` runs it, and the adapter folder's description (None without
    `--init_adapter`: the config as it is). Nothing is loaded but the folder's two JSON files.

    The folder must be one `instruct-ner train` wrote (`instruct_ner.json` of a generative model, peft's
    `adapter_config.json` of a LoRA adapter and its weights). Its base model is this run's: without `--model`, the
    adapter's; a `--model` naming another is an error (the adapter fits its own base model only). Its LoRA shape is
    this run's, as its weights have it: `lora_r`, `lora_alpha` and `lora_target_modules` become the adapter's, and
    one given explicitly (flag or recipe) with another value is an error, since the user asked for something this
    run cannot train; `lora_dropout` (a training setting, not part of the weights) stays this run's. The labels may
    differ: the prompts are built from this run's labels (said on stderr by `run_training`).
    Example: warm_start(TrainConfig(data="t.txt", init_adapter="runs/a"))[0].lora_r -> the adapter's rank
    """
    if not config.init_adapter:
        return config, None
    folder = Path(config.init_adapter)
    try:
        artifact = Artifact.load(folder, kind="generative")
    except ModelError as error:
        raise ModelError(f"--init_adapter {error}") from None
    path = folder / ADAPTER_CONFIG
    try:
        adapter = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"--init_adapter {folder}: no {ADAPTER_CONFIG}; expected a LoRA adapter folder") from None
    except (OSError, ValueError) as error:
        raise ModelError(f"--init_adapter {path}: unreadable ({error})") from None
    if not isinstance(adapter, dict) or adapter.get("peft_type") != "LORA" or type(adapter.get("r")) is not int:
        raise ModelError(f"--init_adapter {path}: not a LoRA adapter's config (peft_type LORA and a rank r)")
    if not any((folder / name).is_file() for name in ADAPTER_WEIGHTS):
        raise ModelError(f"--init_adapter {folder}: no adapter weights ({' or '.join(ADAPTER_WEIGHTS)})")
    given = fields_set(config)
    changes = {}
    if "model" in given and model_reference(config.model) != artifact.base_model:
        raise ConfigError(
            f"--init_adapter {folder} was trained on the base model {artifact.base_model}, this run names "
            f"{model_reference(config.model)}: an adapter fits its own base model only (drop --model to use it)"
        )
    if "model" not in given:
        changes["model"] = "" if artifact.base_model == EMBEDDED else artifact.base_model
    targets = artifact.training_config.get("lora_target_modules")
    if not isinstance(targets, list):  # a folder of another writer: the module names peft saved
        saved = adapter.get("target_modules") or []
        targets = [saved] if isinstance(saved, str) else sorted(saved)
    lora = {"lora_r": adapter["r"], "lora_alpha": adapter.get("lora_alpha", 8), "lora_target_modules": targets}
    asked = [
        f"{name} {getattr(config, name)!r} (the adapter's: {lora[name]!r})"
        for name in WARM_LORA
        if name in given and getattr(config, name) != lora[name]
    ]
    if asked:
        raise ConfigError(
            f"--init_adapter {folder}: a warm start trains the adapter's own LoRA, this run asks {', '.join(asked)}; "
            "drop these options or give the adapter's values"
        )
    return replace_config(config, **changes, **lora), artifact


def prepare_model(config: TrainConfig, model_path: str):
    """The base model at the asked precision, k-bit prepared if quantised, with a fresh LoRA adapter, or with the
    adapter of `--init_adapter` (its weights and shape, this run's dropout), trainable."""
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model, prepare_model_for_kbit_training

    torch.manual_seed(config.seed)
    model = load_causal_lm(model_path, config.precision, config.trust_remote_code, purpose="train")
    if is_quantized(model):
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=config.gradient_checkpointing)
    elif config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    if config.init_adapter:
        adapter = LoraConfig.from_pretrained(config.init_adapter)
        adapter.lora_dropout = config.lora_dropout
        model = PeftModel.from_pretrained(model, config.init_adapter, is_trainable=True, config=adapter)
    else:
        model = get_peft_model(model, lora_config(config, "CAUSAL_LM"))
    trainable, total = model.get_nb_trainable_parameters()
    print(f"trainable parameters: {trainable:,} of {total:,} ({100 * trainable / total:.3f}%)", file=sys.stderr)
    return model


def sft_config(config: TrainConfig, has_eval: bool, precision: str, examples: int = 0):
    """TRL's SFTConfig of a TrainConfig; `examples`: the training examples, for `min_steps` (`epochs_for`)."""
    import dataclasses

    import torch
    from trl import SFTConfig

    # Checkpointing is handled in prepare_model, before the adapter is added; transformers 5.x renamed the
    # field (the old name warns), so set whichever this version has.
    names = {f.name for f in dataclasses.fields(SFTConfig)}
    checkpointing = "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"
    extra: dict = {checkpointing: False}
    # Batches of similar lengths pad little: transformers 5.x names it train_sampling_strategy, 4.x group_by_length.
    if config.group_by_length:
        if "train_sampling_strategy" in names:
            extra["train_sampling_strategy"] = "group_by_length"
        else:
            extra["group_by_length"] = True
    return SFTConfig(
        **loop_arguments(config, config.output_dir, names, training_epochs(config, examples)),
        lr_scheduler_type=config.lr_scheduler_type,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        max_length=trainer_max_length(config),
        packing=config.packing,
        # Padding-free: the batch flattened into one row, position_ids restarting at each example; transformers
        # builds a block-diagonal causal mask from them for sdpa/eager, so it is exact on CPU too.
        padding_free=config.padding_free,
        completion_only_loss=True,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=config.eval_steps,
        bf16=precision != "fp32" and (torch.cuda.is_available() or precision == "bf16"),
        disable_tqdm=False,
        dataset_num_proc=None,
        **extra,
    )


@contextlib.contextmanager
def completion_only_lm_head(enabled: bool = True):
    """Score only the completion positions in the LM head, on every device.

    TRL 1.x's fused LM head (trl.trainer.utils.add_fused_lm_head) projects the hidden states of the
    positions whose label is not -100 only when Triton runs the kernel (CUDA/XPU); elsewhere it scores every
    position, to keep tile shapes fixed for compilers such as Neuron's. On CPU that is wasted work: the
    prompt is most of an example and the LM head (vocabulary x hidden) is a fifth of the model's FLOPs. The
    loss is the same either way (prompt positions are masked out of it); only the cost differs. With a TRL
    without that switch this does nothing; `_use_triton` is private, so pyproject.toml bounds trl below 2.
    """
    try:
        from trl.trainer import utils as trl_utils
    except ImportError:
        trl_utils = None
    original = getattr(trl_utils, "_use_triton", None)
    if not enabled or original is None:
        yield False
        return
    trl_utils._use_triton = lambda device: True  # only the `compact` choice reads this name in trl.trainer.utils
    try:
        yield True
    finally:
        trl_utils._use_triton = original


def artifact_of(
    builder: PromptBuilder,
    config: TrainConfig,
    model_path: str,
    longest: int | None = None,
    sentences: int | None = None,
) -> Artifact:
    return Artifact(
        kind="generative",
        labels=builder.labels,
        base_model=model_reference(config.model),
        base_model_path=model_path,
        precision=config.precision,
        training_config=asdict(config),
        prompt=builder.to_dict(),
        response_format=builder.response_format,
        longest_text_tokens=longest,
        sentences_per_text=sentences,
    )


def check_output_dir(config: TrainConfig) -> None:
    """Refuse an `--output_dir` that is a file, holds the data or the model, or holds files this run may not
    replace (`outputs.check_outputs`: a user's folder, a finished run without `--resume` or `--overwrite`)."""
    inputs = [config.data, config.eval_data, config.eval_f1_data, config.few_shot_from, config.label_definitions]
    prepare_output_dir(config, "train", [*inputs, config.template], models=[config.init_adapter])


@functools.cache
def staged_sft_trainer():
    """TRL's SFTTrainer with staged, renamed checkpoints that carry their run's config (sft/checkpoints.py)."""
    from trl import SFTTrainer

    from instruct_ner.sft.checkpoints import AtomicCheckpoints

    return type("StagedSFTTrainer", (AtomicCheckpoints, SFTTrainer), {"__module__": __name__})


def train(config: TrainConfig, evaluator=None) -> dict:
    """Run SFT; returns timing and loss figures (also written to output_dir/train_results.json)."""
    return run_training(config, evaluator=evaluator)[0]


@contextlib.contextmanager
def quiet_dataset_preparation():
    """`datasets`' progress bars off while TRL tokenises and truncates the pairs (back on afterwards)."""
    from datasets.utils import logging as datasets_logging

    enabled = datasets_logging.is_progress_bar_enabled()
    datasets_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            datasets_logging.enable_progress_bar()


def run_training(config: TrainConfig, callbacks=None, evaluator=None, prepared=None):
    """SFT; returns (results, the trained PeftModel, the tokenizer). `callbacks` go to the Trainer.

    With `eval_f1_steps`, `evaluator` (`(model, tokenizer) -> dev micro F1`, see sft/selection.py) selects the
    adapter by dev F1: the one saved is the best. `prepared`: `training_pairs(config)`, when the caller has it
    already (the evaluator needs its prompt builder).
    """
    import datasets

    from instruct_ner.sft.selection import STATE_DIR, selection_for

    # every output folder, data, template and checkpoint check before the model loads or anything is written
    check_output_dir(config)
    config, warm = warm_start(config)
    pairs, dev, builder = prepared if prepared is not None else training_pairs(config)
    precision = resolve_precision(config.precision, "train")
    run = run_config(
        config,
        precision=precision,
        prompt=builder.to_dict(),
        data_fingerprint=data_fingerprint(
            {k: pair[k] for k in ("prompt", "messages", "response") if k in pair} for pair in pairs
        ),
        init_adapter=fingerprint(config.init_adapter) if warm else None,  # its weights, not its path, decide a run
    )
    checkpoint = resume_checkpoint(config.resume, config.output_dir, run=run)
    model_path = resolve_model(config.model)
    # every process checks the folder as the user left it; then the main one alone claims it (sft/distributed.py)
    claim_after_checks(lambda: claim_output_dir(config, "train", run_state=(STATE_DIR,)))
    selection = selection_for(config, evaluator)
    callbacks = [*(callbacks or []), *([selection] if selection else [])]
    augmented = sum(bool(pair.get("augmented")) for pair in pairs)
    print(
        f"training on {len(pairs)} examples{f' ({augmented} augmented)' if augmented else ''} ({len(dev)} dev), "
        f"{builder.template.name} ({builder.style}), labels {builder.labels}, "
        f"model {config.model or 'embedded SmolLM2-135M-Instruct'}, {precision}",
        file=sys.stderr,
    )
    if warm:
        relabelled = "" if warm.labels == builder.labels else f"; this run prompts with {builder.labels}"
        print(
            f"warm start from {config.init_adapter} (LoRA r={config.lora_r}, alpha={config.lora_alpha}, trained "
            f"with labels {warm.labels}{relabelled})",
            file=sys.stderr,
        )
    tokenizer = load_tokenizer(model_path, config.trust_remote_code)
    lengths = sequence_lengths(pairs, tokenizer)
    cut = report_overlong(pairs, tokenizer, trainer_max_length(config), lengths)
    batching = fit_batches(config, lengths)
    model = prepare_model(config, model_path)
    train_dataset = datasets.Dataset.from_list([to_prompt_completion(p) for p in pairs])
    eval_dataset = datasets.Dataset.from_list([to_prompt_completion(p) for p in dev]) if dev else None
    with quiet_dataset_preparation():  # TRL's four dataset passes take milliseconds; their bars read as noise
        trainer = staged_sft_trainer()(
            model=model,
            args=sft_config(batching, bool(dev), precision, len(train_dataset)),
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            processing_class=tokenizer,
            callbacks=callbacks,
        )
    trainer.run_config = run
    started = time.perf_counter()
    with completion_only_lm_head(config.completion_only_lm_head):
        output = trainer.train(resume_from_checkpoint=checkpoint)
        seconds = time.perf_counter() - started
        if dev:
            final_eval_loss = trainer.evaluate()["eval_loss"]
    trainer.save_model(config.output_dir)  # the Trainer writes on the main process only
    main = is_main()
    if main:
        tokenizer.save_pretrained(config.output_dir)
        texts = [pair["text"] for pair in pairs if "text" in pair]
        longest, sentences = longest_text_tokens(texts, tokenizer), sentences_per_text(texts)
        artifact_of(builder, config, model_path, longest, sentences).save(config.output_dir)
    steps = trainer.state.global_step
    samples = steps * batching.per_device_train_batch_size * batching.gradient_accumulation_steps * world_size()
    results = {
        "train_examples": len(pairs),
        "augmented_examples": augmented,
        "steps": steps,
        "seconds": seconds,
        "samples_per_second": samples / seconds if seconds else 0.0,
        "train_loss": output.training_loss,
        "losses": [entry["loss"] for entry in trainer.state.log_history if "loss" in entry],
        "eval_losses": [entry["eval_loss"] for entry in trainer.state.log_history if "eval_loss" in entry],
        "precision": precision,
        "examples_over_max_length": cut,
        "micro_batch": batching.per_device_train_batch_size,
        "gradient_accumulation_steps": batching.gradient_accumulation_steps,
        "processes": world_size(),
    }
    if dev:
        results["final_eval_loss"] = final_eval_loss
    if main:
        Path(config.output_dir, "train_results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    if selection:
        results = selection.report(results, config.output_dir)
    if config.merge and main:
        export_merged(config, model_path, precision)
    barrier()  # no process returns (or exits) before the outputs are complete
    return results, trainer.model, tokenizer


def export_merged(config: TrainConfig, model_path: str, precision: str = "bf16") -> Path:
    """Base model + adapter -> one folder, at the training precision (bf16 for a quantised base, which
    cannot be merged into)."""
    from peft import PeftModel

    precision = "bf16" if precision in ("8bit", "4bit") else precision
    base = load_causal_lm(model_path, precision, config.trust_remote_code)
    merged = PeftModel.from_pretrained(base, config.output_dir).merge_and_unload()
    target = Path(config.output_dir) / "merged"
    merged.save_pretrained(str(target))
    load_tokenizer(model_path).save_pretrained(str(target))
    print(f"merged model written to {target}", file=sys.stderr)
    return target
