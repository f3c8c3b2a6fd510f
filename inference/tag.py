"""`instruct-ner tag`: tag data with a trained token classifier; writes the same record schema as
`generate` (`pred_tags`, `entities` with token spans and character offsets, `timing`), so `score` and
`compare` treat both variants alike. Records out = records in, in input order; the output is always
valid IOB2 (constrained Viterbi).

Examples:
    instruct-ner tag --adapter runs/tagger --data ../shared/data/conll2003/test.txt --limit 500 --out runs/tagged.jsonl
    instruct-ner score runs/tagged.jsonl
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from instruct_ner.prompts.examples import DataError, labels_of, tags_to_spans
from instruct_ner.prompts.readers import ReaderOptions, load_examples

from instruct_ner.config import ConfigError, parse_config
from instruct_ner.jsonl import check_output, write_jsonl


@dataclass
class TagConfig(ReaderOptions):
    adapter: str | None = field(default=None, metadata={"help": "folder written by train-tagger (required)"})
    data: str | None = field(default=None, metadata={"help": "data source or JSONL records (required)"})
    out: str | None = field(default=None, metadata={"help": "output JSONL (required)"})
    model: str | None = field(
        default=None, metadata={"help": "base model (default: the one the tagger was trained on)"}
    )
    precision: str | None = field(default=None, metadata={"help": "override the precision saved with the tagger"})
    batch_size: int = field(default=32, metadata={"help": "texts per forward pass"})

    def __post_init__(self) -> None:
        if not self.adapter or not self.data or not self.out:
            raise ConfigError("tag needs --adapter DIR, --data SRC and --out FILE.jsonl")


def tag(config: TagConfig) -> dict:
    from instruct_ner.sft.models import ModelError
    from instruct_ner.sft.tagger import TAGGER_CONFIG, load_tagger, predict

    check_output(config.out, config.data)
    if not Path(config.adapter, TAGGER_CONFIG).exists():
        raise ModelError(f"{config.adapter}: no {TAGGER_CONFIG}; not a folder written by instruct-ner train-tagger")
    examples, report = load_examples(config.data, config)
    if report.n_skipped:
        print(report.summary(), file=sys.stderr)
    if not examples:
        raise DataError(str(config.data), "no records to tag (empty input)", "empty")
    import json

    saved = json.loads(Path(config.adapter, TAGGER_CONFIG).read_text(encoding="utf-8"))
    if unknown := sorted(set(labels_of(e.tags for e in examples)) - set(saved["labels"])):
        raise ConfigError(
            f"the tagger {config.adapter} was trained with labels {saved['labels']}; "
            f"the data {config.data} has {unknown} as well"
        )
    model, tokenizer, saved = load_tagger(config.adapter, config.model, config.precision)
    started = time.perf_counter()
    predicted = predict(model, examples, tokenizer, saved.get("max_length", 512), config.batch_size)
    seconds = time.perf_counter() - started
    records = []
    for example, pred_tags in zip(examples, predicted):
        entities = [example.entity(label, s, e).to_dict() for label, s, e in tags_to_spans(pred_tags)]
        records.append(
            {
                **example.to_record(),
                "labels": saved["labels"],
                "pred_tags": pred_tags,
                "entities": entities,
                "timing": {"seconds": seconds / len(examples)},
            }
        )
    write_jsonl(config.out, records)
    return {"records": len(records), "seconds": seconds, "sentences_per_second": len(records) / seconds}


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    config = parse_config(TagConfig, argv, prog="instruct-ner tag", description=__doc__)
    figures = tag(config)
    print(f"wrote {figures['records']} records to {config.out} ({figures['sentences_per_second']:.2f} sentences/s)")
    return 0
