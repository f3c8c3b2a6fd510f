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

from instruct_ner.config import ConfigError, parse_config
from instruct_ner.examples import DataError, Example, labels_of
from instruct_ner.inference.grounding import parse_response, total_diagnostics
from instruct_ner.inference.score import DIAGNOSTIC_KEYS
from instruct_ner.jsonl import iter_jsonl, write_jsonl
from instruct_ner.outputs import check_outputs
from instruct_ner.prompts.formats import FORMAT_NAMES


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
    snap_partial_words: bool = field(
        default=False,
        metadata={
            "help": "widen a mention that cuts a word (`ilan` in `Milano`) to the whole word, counted as snapped; "
            "by default it is dropped and counted as partial_word"
        },
    )

    def __post_init__(self) -> None:
        if not self.data or not self.out:
            raise ConfigError("parse needs --data FILE.jsonl and --out FILE.jsonl")


def parse_record(
    record: dict, where: str, text_field: str, labels=None, response_format=None, snap_partial: bool = False
) -> dict:
    """One record with `entities`, `pred_tags` and `parse` added; raises DataError naming `where`.

    A generation that stopped at its token limit (`parse.hit_max_new_tokens`, written by `generate`) may end
    in a truncated line; the parser is told so.
    """
    if text_field not in record:
        raise DataError(where, f"record has no {text_field!r} field (fields: {sorted(record)})", "missing_field")
    if not isinstance(record[text_field], str | None):
        raise DataError(
            where, f"{text_field!r} must be a string, found {type(record[text_field]).__name__}", "bad_type"
        )
    example = Example.from_record(record, where)
    labels = labels or record.get("labels") or labels_of([example.tags])
    if not isinstance(labels, list) or not labels or not all(isinstance(label, str) for label in labels):
        raise DataError(where, f"'labels' must be a non-empty list of strings, found {labels!r}", "bad_type")
    response_format = response_format or record.get("response_format", "entity_list")
    if response_format not in FORMAT_NAMES:
        message = f"unknown response_format {response_format!r}; expected one of {', '.join(FORMAT_NAMES)}"
        raise DataError(where, message, "bad_format")
    previous = record.get("parse") if isinstance(record.get("parse"), dict) else {}
    hit_limit = text_field == "generation" and bool(previous.get("hit_max_new_tokens"))
    result = parse_response(
        record[text_field] or "", example, labels, response_format, hit_limit=hit_limit, snap_partial=snap_partial
    )
    diagnostics = result.diagnostics.to_dict()
    for key in ("hit_max_new_tokens", "stopped_runaway"):
        if key in previous and text_field == "generation":
            diagnostics[key] = previous[key]
    return {
        **record,
        "entities": [entity.to_dict() for entity in result.entities],
        "pred_tags": result.pred_tags,
        "parse": diagnostics,
    }


def summarise(records: list[dict]) -> Counter:
    return total_diagnostics(record["parse"] for record in records)


def main(argv: list[str] | None = None) -> int:
    config = parse_config(ParseConfig, argv, prog="instruct-ner parse", description=__doc__)
    check_outputs("parse", files={"--out": config.out}, inputs=[config.data])
    records = [
        parse_record(
            record, where, config.text_field, config.labels, config.response_format, config.snap_partial_words
        )
        for where, record in iter_jsonl(config.data)
    ]
    write_jsonl(config.out, records)
    totals = summarise(records)
    print(
        f"parsed {len(records)} records -> {config.out}: " + ", ".join(f"{k} {totals[k]}" for k in DIAGNOSTIC_KEYS),
        file=sys.stderr,
    )
    return 0
