"""`instruct-ner train-tagger`: train the token-classification variant on the same backbone as SFT.

Examples:
    instruct-ner train-tagger --config sft/recipes/tagger-smollm2-conll2003-cpu.yaml
    instruct-ner train-tagger --config sft/recipes/tagger-smollm2-conll2003-cpu.yaml --attention causal --head linear
    instruct-ner train-tagger --data data/conll_en/train.txt --head bilstm-crf --freeze_backbone true
    instruct-ner train-tagger --config sft/recipes/tagger-llama-3.2-1b-conll2003.yaml   # GPU, 8-bit

Every check on the config and data runs before the model loads. The output folder holds the LoRA
adapter (unless the backbone is frozen), the head weights, the tokenizer and its description
(`sft/artifact.py`, `instruct_ner.json`: labels, attention, head, loss, base model and the training
config), which `instruct-ner tag` and the Python API read.

Training goes through `transformers.Trainer`, as SFT goes through TRL's: the same AdamW, cosine schedule with
warm-up, gradient clipping, checkpoints (`checkpoint-N`, the newest `save_total_limit` kept), `--resume` (weights,
optimizer, scheduler, RNG and data order) and dev-F1 selection (sft/selection.py). A checkpoint holds the trainable
weights only (`trainable.safetensors`: the LoRA adapter and the head; never a frozen backbone), the per-step losses
and a loadable tagger folder. With a frozen backbone its word features are computed once (sft/features.py, cached on
disk) and ride in the dataset's items, so that every step runs the head only. `--augment K` adds mention-replacement
copies of the training examples (sft/options.py `augment_training`, as `train` does; dev-F1 data is never augmented).
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field

from instruct_ner.config import Config, ConfigError
from instruct_ner.examples import labels_of
from instruct_ner.prompts.readers import ReaderOptions, load_examples
from instruct_ner.sft.artifact import Artifact, longest_text_tokens, sentences_per_text
from instruct_ner.sft.distributed import barrier, claim_after_checks, is_main, world_size
from instruct_ner.sft.models import model_reference
from instruct_ner.sft.options import (
    AugmentOptions,
    DevF1Options,
    LoopOptions,
    LoraOptions,
    ModelOptions,
    augment_training,
    claim_output_dir,
    data_fingerprint,
    lora_config,
    prepare_output_dir,
    resume_checkpoint,
    run_config,
)
from instruct_ner.sft.tagger_spec import ATTENTIONS, HEADS, LOSSES, tag_names


@dataclass
class TaggerConfig(Config, ModelOptions, LoopOptions, LoraOptions, DevF1Options, AugmentOptions, ReaderOptions):
    data: str | None = field(default=None, metadata={"help": "training data: any source prepare reads (required)"})
    attention: str = field(
        default="bidirectional",
        metadata={"help": "causal keeps the mask; bidirectional removes it", "choices": list(ATTENTIONS)},
    )
    head: str = field(
        default="crf", metadata={"help": "linear, crf or bilstm-crf (over a frozen backbone)", "choices": list(HEADS)}
    )
    loss: str = field(
        default="compound",
        metadata={"help": "ce, or compound = weighted CE + CRF NLL + smoothed CE", "choices": list(LOSSES)},
    )
    loss_weights: list[float] = field(
        default_factory=lambda: [0.5, 0.3, 0.2],
        metadata={"help": "compound weights: weighted CE, CRF NLL, label smoothing"},
    )
    label_smoothing: float = field(default=0.1, metadata={"help": "smoothing of the third compound term"})
    freeze_backbone: bool | None = field(
        default=None,
        metadata={"help": "train the head only (no LoRA); default: true for bilstm-crf (which needs it), else false"},
    )
    lstm_hidden: int = field(default=256, metadata={"help": "BiLSTM hidden size per direction (bilstm-crf)"})
    dropout: float = field(default=0.1, metadata={"help": "dropout before the classifier"})
    learning_rate: float = field(
        default=3e-3, metadata={"help": "peak learning rate (AdamW); 3e-3 won the dev-F1 sweep (BENCHMARKS.md)"}
    )
    max_length: int = field(default=512, metadata={"help": "longest window in tokens; longer texts are windowed"})
    output_dir: str = field(default="runs/tagger", metadata={"help": "where the tagger is saved"})

    def __post_init__(self) -> None:
        if not self.data:
            raise ConfigError("train-tagger needs --data")
        if self.loss == "compound" and self.head == "linear":
            raise ConfigError("loss 'compound' needs a CRF head: --head crf or bilstm-crf, or --loss ce")
        if self.head == "bilstm-crf" and self.freeze_backbone is False:
            raise ConfigError(
                "head bilstm-crf reads a frozen backbone; drop --freeze_backbone false or pick another head"
            )
        if self.freeze_backbone is None:  # the BiLSTM-CRF reads frozen LLaMA hidden states, as in the reference
            self.freeze_backbone = self.head == "bilstm-crf"
        self.check_loop()
        self.check_lora()
        self.check_dev_f1()
        self.check_augment()
        if len(self.loss_weights) != 3:
            raise ConfigError(
                f"loss_weights needs 3 numbers (weighted CE, CRF NLL, smoothing), got {self.loss_weights}"
            )


def check_output_dir(config: TaggerConfig) -> None:
    """Refuse an `--output_dir` that is a file, holds the data or the model, or holds files this run may not
    replace (`outputs.check_outputs`: a user's folder, a finished run without `--resume` or `--overwrite`)."""
    prepare_output_dir(config, "train-tagger", [config.data, config.eval_f1_data])


def train_tagger(config: TaggerConfig, callbacks=None, evaluator=None, feature_cache: bool | None = None):
    """Train; returns (results, tagger, tokenizer). `callbacks` go to the Trainer.

    With `eval_f1_steps`, `evaluator` (`(model, tokenizer) -> dev micro F1`, see sft/selection.py) selects the
    weights by dev F1: the ones saved are the best. `feature_cache`: run the head on cached word features (None:
    whenever the backbone is frozen).
    """
    import time

    import torch

    from instruct_ner.sft.features import backbone_is_frozen, cached_features
    from instruct_ner.sft.models import default_precision, load_tokenizer, resolve_model
    from instruct_ner.sft.selection import STATE_DIR, selection_for
    from instruct_ner.sft.tagger import (
        TokenTagger,
        add_lora,
        class_weights_from,
        encode_examples,
        load_backbone,
        save_tagger,
        trainable_parameters,
    )
    from instruct_ner.sft.tagger_trainer import TRAINABLE_WEIGHTS, EpochTimes, tagger_trainer

    # the output folder, data, labels and checkpoint checks first; nothing is written before they pass
    check_output_dir(config)
    examples, report = load_examples(config.data, config)
    if not examples:
        raise ConfigError(f"{config.data}: no training examples\n{report.summary()}")
    labels = list(config.labels) if config.labels else labels_of(e.tags for e in examples)
    read = len(examples)
    examples = augment_training(examples, config, config.seed)  # the labels stay: each mention keeps its own
    precision = default_precision() if config.precision == "auto" else config.precision
    run = run_config(
        config,
        labels=labels,
        precision=precision,
        freeze_backbone=config.freeze_backbone,
        data_fingerprint=data_fingerprint([e.tokens, e.tags] for e in examples),
    )
    checkpoint = resume_checkpoint(config.resume, config.output_dir, marker=TRAINABLE_WEIGHTS, run=run)
    # every process checks the folder as the user left it; then the main one alone claims it (sft/distributed.py)
    claim_after_checks(lambda: claim_output_dir(config, "train-tagger", run_state=(STATE_DIR,)))
    selection = selection_for(config, evaluator)
    model_path = resolve_model(config.model)
    tokenizer = load_tokenizer(model_path, config.trust_remote_code)
    tags = tag_names(labels)
    encoded = encode_examples(examples, tokenizer, tags, config.max_length)
    torch.manual_seed(config.seed)
    backbone = load_backbone(model_path, precision, config.attention, config.trust_remote_code)
    if config.freeze_backbone:
        backbone.requires_grad_(False)
    else:
        backbone = add_lora(backbone, lora_config(config, "FEATURE_EXTRACTION"))
    model = TokenTagger(
        backbone,
        labels,
        config.head,
        config.loss,
        tuple(config.loss_weights),
        class_weights_from(encoded, len(tags)),
        config.lstm_hidden,
        config.dropout,
        config.label_smoothing,
    )
    trainable, total = trainable_parameters(model)
    print(
        f"tagger: {config.attention} attention, {config.head} head, {config.loss} loss, labels {labels}; "
        f"trainable parameters {trainable:,} of {total:,}",
        file=sys.stderr,
    )
    artifact = Artifact(
        kind="tagger",
        labels=labels,
        base_model=model_reference(config.model),
        precision=config.precision,
        training_config=asdict(config),
        tagger={
            "tags": tags,
            "attention": config.attention,
            "head": config.head,
            "loss": config.loss,
            "loss_weights": list(config.loss_weights),
            "lstm_hidden": config.lstm_hidden,
            "max_length": config.max_length,
        },
        longest_text_tokens=longest_text_tokens([example.text for example in examples], tokenizer),
        sentences_per_text=sentences_per_text([example.text for example in examples]),
    )
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    started = time.perf_counter()
    use_cache = backbone_is_frozen(model) if feature_cache is None else feature_cache
    features = cached_features(model, encoded, pad_id, config.max_length) if use_cache else None
    items = [{"window": e, "features": features[i] if features else None} for i, e in enumerate(encoded)]
    timing = EpochTimes(started)
    callbacks = [*(callbacks or []), timing, *([selection] if selection else [])]
    trainer = tagger_trainer(config, model, tokenizer, items, pad_id, artifact, callbacks, run)
    trainer.train(resume_from_checkpoint=checkpoint)
    seconds = time.perf_counter() - timing.training_started
    if is_main():
        save_tagger(model, tokenizer, config.output_dir, artifact)
    steps = trainer.state.global_step
    results = {
        "steps": steps,
        "losses": trainer.step_losses,
        "seconds": seconds,
        "epoch_seconds": timing.epoch_seconds(),
        "train_examples": len(examples),
        "augmented_examples": len(examples) - read,
        "windows": len(encoded),
        "precision": precision,
        "samples_per_second": steps * config.per_device_train_batch_size * world_size() / seconds if seconds else 0.0,
        "processes": world_size(),
    }
    if selection:
        results = selection.report(results, config.output_dir)
    barrier()  # no process returns (or exits) before the outputs are complete
    return results, model, tokenizer
