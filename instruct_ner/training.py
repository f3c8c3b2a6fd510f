"""`instruct-ner train` and `instruct-ner train-tagger`: config -> dev-F1 evaluator -> the trainer of `sft/`.

With `--eval_f1_steps N --eval_f1_data DEV`, every N steps (and at the last step) the model being trained
labels the dev sentences, generating for SFT (greedy, constrained, as `generate` does) or tagging for the
token classifier, and its micro entity F1 is recorded; the best weights are the ones saved in
`output_dir`, and `--early_stopping_patience K` ends training after K evaluations without a better F1.
The history (`dev_f1/early_stopping.json`) survives `--resume`. Both trainers select the same way
(sft/selection.py); this module only builds the evaluator (inference/evaluation.py, since scoring a generative
model needs generation, which `sft/` may not import) and hands it down. It trains nothing itself.

Examples:
    instruct-ner train --data data/conll_en/train.txt --eval_f1_data data/conll_en/test.txt --eval_f1_steps 20
    instruct-ner train-tagger --data data/conll_en/train.txt --eval_f1_data data/conll_en/test.txt \\
        --eval_f1_steps 20 --early_stopping_patience 3
"""

from __future__ import annotations

import os
import sys

from instruct_ner.config import ConfigError, parse_config
from instruct_ner.prompts.readers import load_examples
from instruct_ner.sft import train as sft_train
from instruct_ner.sft import train_tagger as sft_tagger


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
    from instruct_ner.inference.evaluation import generative_evaluator

    sft_train.check_output_dir(config)  # before the data is read (the trainer checks again before it writes)

    prepared = sft_train.training_pairs(config)  # the run's prompt builder, made once: the evaluator prompts with it
    evaluator = generative_evaluator(dev_examples(config), prepared[2])
    return sft_train.run_training(config, evaluator=evaluator, prepared=prepared)[0]


def train_tagger(config: sft_tagger.TaggerConfig) -> dict:
    """The token classifier; with `eval_f1_steps`, the weights saved are those with the best dev F1."""
    if not config.eval_f1_steps:
        return sft_tagger.train_tagger(config)[0]
    from instruct_ner.inference.evaluation import tagger_evaluator

    sft_tagger.check_output_dir(config)  # before the data is read (the trainer checks again before it writes)

    return sft_tagger.train_tagger(config, evaluator=tagger_evaluator(dev_examples(config), config.max_length))[0]


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
