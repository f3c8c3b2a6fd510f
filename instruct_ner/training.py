"""`instruct-ner train` and `instruct-ner train-tagger`: the trainers of `sft/` plus dev-F1 model selection.

With `--eval_f1_steps N --eval_f1_data DEV`, every N steps (and at the last step) the model being trained
labels the dev sentences, generating for SFT (greedy, constrained, as `generate` does) or tagging for the
token classifier, and its micro entity F1 is recorded; the best weights are the ones saved in
`output_dir`, and `--early_stopping_patience K` ends training after K evaluations without a better F1.
The history (`dev_f1/early_stopping.json`) survives `--resume`. Without those options the trainers run
exactly as `sft.train.train` / `sft.train_tagger.train_tagger`.

It lives here, above `inference/`, because scoring a generative model needs generation: `sft/` may not
import `inference/`. It trains nothing itself.

Examples:
    instruct-ner train --data data/conll_en/train.txt --eval_f1_data data/conll_en/test.txt --eval_f1_steps 20
    instruct-ner train-tagger --data data/conll_en/train.txt --eval_f1_data data/conll_en/test.txt \\
        --eval_f1_steps 20 --early_stopping_patience 3
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from instruct_ner.config import ConfigError, parse_config
from instruct_ner.prompts.readers import load_examples
from instruct_ner.sft import train as sft_train
from instruct_ner.sft import train_tagger as sft_tagger

STATE_DIR = "dev_f1"
ADAPTER_FILES = ("adapter_model.safetensors", "adapter_config.json")


def dev_examples(config) -> list:
    """`eval_f1_data` read as the training data is, but its own split and `eval_f1_limit` (not `--limit`)."""
    examples, report = load_examples(
        config.eval_f1_data, config.dev_reader_options(config.eval_f1_data, config.eval_f1_limit)
    )
    if not examples:
        raise ConfigError(f"{config.eval_f1_data}: no dev examples to score\n{report.summary()}")
    if report.n_skipped:  # skipped dev records are counted and reported, as training records are
        print(report.summary(), file=sys.stderr)
    return examples


def train(config: sft_train.TrainConfig) -> dict:
    """SFT; with `eval_f1_steps`, the adapter saved in output_dir is the one with the best dev F1."""
    if not config.eval_f1_steps:
        return sft_train.train(config)
    from instruct_ner.inference.early_stopping import sft_early_stopping
    from instruct_ner.sft.models import load_tokenizer, resolve_model

    dev = dev_examples(config)
    tokenizer = load_tokenizer(resolve_model(config.model), config.trust_remote_code, padding_side="left")
    state = Path(config.output_dir) / STATE_DIR
    made = []  # the callback, built by run_training from the prompt builder it has already made

    def callbacks(builder):
        made.append(sft_early_stopping(dev, builder, tokenizer, state, config.eval_f1_steps, patience_of(config)))
        return made

    results = sft_train.run_training(config, callbacks=callbacks)[0]
    callback = made[0]
    if (state / ADAPTER_FILES[0]).exists():  # the best adapter replaces the last one
        for name in ADAPTER_FILES:
            shutil.copy2(state / name, Path(config.output_dir) / name)
    return record(results, callback.tracker, config.output_dir)


def train_tagger(config: sft_tagger.TaggerConfig) -> dict:
    """The token classifier; with `eval_f1_steps`, the weights saved are those with the best dev F1."""
    if not config.eval_f1_steps:
        return sft_tagger.train_tagger(config)[0]
    from instruct_ner.inference.early_stopping import TaggerEarlyStopping

    state = Path(config.output_dir) / STATE_DIR
    callback = TaggerEarlyStopping(
        dev_examples(config), state, config.eval_f1_steps, patience_of(config), config.max_length
    )
    results = sft_tagger.train_tagger(config, step_callback=callback)[0]
    return record(results, callback.tracker, config.output_dir)


def patience_of(config) -> int | None:
    return config.early_stopping_patience or None


def record(results: dict, tracker, output_dir) -> dict:
    results = {**results, **tracker.summary()}
    Path(output_dir, "dev_f1.json").write_text(json.dumps(tracker.summary(), indent=2), encoding="utf-8")
    print(f"best dev F1 {tracker.best_f1:.4f} at step {tracker.best_step}: those weights are saved", file=sys.stderr)
    return results


def train_main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    config = parse_config(sft_train.TrainConfig, argv, prog="instruct-ner train", description=sft_train.__doc__)
    results = train(config)
    print(
        f"adapter saved to {config.output_dir}: {results['steps']} steps in {results['seconds']:.1f} s "
        f"({results['samples_per_second']:.2f} samples/s), train loss {results['train_loss']:.4f}"
    )
    return 0


def tagger_main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    config = parse_config(
        sft_tagger.TaggerConfig, argv, prog="instruct-ner train-tagger", description=sft_tagger.__doc__
    )
    results = train_tagger(config)
    print(
        f"tagger saved to {config.output_dir}: {results['steps']} steps in {results['seconds']:.1f} s, "
        f"last loss {results['losses'][-1]:.4f}"
    )
    return 0
