"""`instruct-ner parse`: read responses (gold `response` or model `generation`) back into IOB2 tags.

Adds to every record `entities` (text, label, token span, character offsets), `pred_tags` and `parse`
(the parser's diagnostics). Records out = records in, in input order. The label set and the response
format come from each record (`labels`, `response_format`, written by `prepare` and `generate`) unless
given on the command line.

Examples:
    instruct-ner parse --data runs/valid.pairs.jsonl --field response --out runs/valid.parsed.jsonl
    instruct-ner parse runs/predictions.jsonl --field generation --out runs/reparsed.jsonl
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field

from instruct_ner.inference.parser import parse_response, total_diagnostics
from instruct_ner.prompts.examples import DataError, Example, labels_of
from instruct_ner.prompts.formats import FORMAT_NAMES
from instruct_ner.prompts.jsonl import iter_jsonl, write_jsonl

from instruct_ner.config import ConfigError, parse_config


@dataclass
class ParseConfig:
    data: str | None = field(default=None, metadata={"help": "JSONL records to parse (required)", "positional": True})
    out: str | None = field(default=None, metadata={"help": "output JSONL (required)"})
    text_field: str = field(
        default="generation",
        metadata={
            "help": "record field holding the text to parse",
            "choices": ["response", "generation"],
            "aliases": ["--field"],
        },
    )
    labels: list[str] | None = field(default=None, metadata={"help": "label set (default: each record's labels)"})
    response_format: str | None = field(
        default=None,
        metadata={"help": "response format (default: each record's response_format)", "choices": list(FORMAT_NAMES)},
    )

    def __post_init__(self) -> None:
        if not self.data or not self.out:
            raise ConfigError("parse needs --data FILE.jsonl and --out FILE.jsonl")


def parse_record(record: dict, where: str, text_field: str, labels=None, response_format=None) -> dict:
    """One record with `entities`, `pred_tags` and `parse` added; raises DataError naming `where`."""
    if text_field not in record:
        raise DataError(where, f"record has no {text_field!r} field (fields: {sorted(record)})", "missing_field")
    example = Example.from_record(record, where)
    labels = labels or record.get("labels") or labels_of([example.tags])
    response_format = response_format or record.get("response_format", "entity_list")
    result = parse_response(str(record[text_field] or ""), example, labels, response_format)
    return {
        **record,
        "entities": [entity.to_dict() for entity in result.entities],
        "pred_tags": result.pred_tags,
        "parse": result.diagnostics.to_dict(),
    }


def summarise(records: list[dict]) -> Counter:
    return total_diagnostics(record["parse"] for record in records)


def main(argv: list[str] | None = None) -> int:
    config = parse_config(ParseConfig, argv, prog="instruct-ner parse", description=__doc__)
    records = [
        parse_record(record, where, config.text_field, config.labels, config.response_format)
        for where, record in iter_jsonl(config.data)
    ]
    write_jsonl(config.out, records)
    totals = summarise(records)
    keys = ("entities", "hallucinated", "unknown_label", "malformed", "truncated", "overlaps_removed")
    print(
        f"parsed {len(records)} records -> {config.out}: " + ", ".join(f"{k} {totals[k]}" for k in keys),
        file=sys.stderr,
    )
    return 0
