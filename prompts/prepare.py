"""`instruct-ner prepare`: read a data source and write instruction/response pairs as JSONL.

Each output record is the example (`id`, `text`, `tokens`, `offsets`, `tags`, `source`) plus `prompt`
(instruction style) or `messages` (chat style), `response`, and what later stages need to read the
response back: `labels`, `response_format` and `template`.

Examples:
    instruct-ner prepare --data ../shared/data/conll2003/valid.txt --out runs/valid.pairs.jsonl
    instruct-ner prepare --data data/emails_it.csv --template ner-list.it --style chat --out runs/emails.jsonl
    instruct-ner prepare --data eriktks/conll2003 --split validation --few_shot 2 --out runs/hf.jsonl
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from instruct_ner.config import ConfigError, parse_config
from instruct_ner.examples import Example
from instruct_ner.jsonl import write_jsonl
from instruct_ner.outputs import check_outputs
from instruct_ner.prompts.readers import ReaderOptions, ReadReport, load_examples
from instruct_ner.prompts.templates import (
    TRAINING_TEMPLATE,
    PromptBuilder,
    PromptOptions,
    builder_from_options,
    template_field,
)


@dataclass
class PrepareConfig(PromptOptions, ReaderOptions):
    template: str = template_field(TRAINING_TEMPLATE)  # pairs are for training
    data: str | None = field(default=None, metadata={"help": "file, folder or hub id to read (required)"})
    out: str | None = field(default=None, metadata={"help": "output JSONL file (required)"})

    def __post_init__(self) -> None:
        if not self.data:
            raise ConfigError("prepare needs --data (a CoNLL/CSV/JSONL file, a dataset folder or a hub id)")
        if not self.out:
            raise ConfigError("prepare needs --out (the JSONL file to write)")


def pair_records(examples: list[Example], builder: PromptBuilder) -> list[dict]:
    """Examples -> JSONL records with the prompt, the gold response and what is needed to parse it."""
    extra = {"labels": builder.labels, "response_format": builder.response_format, "template": builder.template.name}
    return [{**example.to_record(), **builder.build(example), **extra} for example in examples]


def prepare(config: PrepareConfig) -> tuple[list[dict], ReadReport, PromptBuilder]:
    check_outputs(
        "prepare",
        files={"--out": config.out},
        inputs=[config.data, config.few_shot_from, config.label_definitions],
    )
    examples, report = load_examples(config.data, config)
    if not examples:
        raise ConfigError(f"{config.data}: no examples read\n{report.summary()}")
    pool = load_examples(config.few_shot_from, config)[0] if config.few_shot_from else None
    builder = builder_from_options(config, examples, pool)
    return pair_records(examples, builder), report, builder


def main(argv: list[str] | None = None) -> int:
    config = parse_config(PrepareConfig, argv, prog="instruct-ner prepare", description=__doc__)
    records, report, builder = prepare(config)
    count = write_jsonl(config.out, records)
    print(report.summary(), file=sys.stderr)
    print(
        f"wrote {count} records ({builder.template.name}, {builder.style}, labels {builder.labels}) to {config.out}",
        file=sys.stderr,
    )
    return 0
