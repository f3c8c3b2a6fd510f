"""JSONL records -> Examples: records written by `instruct-ner prepare` (or any stage): `id`, `tokens`, `tags`, and
optionally `text` and `offsets`. Tags are validated like every reader's; other fields are left to the stages.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from instruct_ner.examples import DataError, Example
from instruct_ner.jsonl import iter_jsonl
from instruct_ner.prompts.readers.options import ReaderOptions
from instruct_ner.prompts.readers.report import ErrorPolicy
from instruct_ner.prompts.readers.schemes import checked_tags


def read_jsonl(path: str | Path, options: ReaderOptions, policy: ErrorPolicy) -> Iterator[Example]:
    """Records of any stage (`id`, `tokens`, `tags`, optionally `text` and `offsets`)."""
    for where, record in iter_jsonl(path):
        try:
            example = Example.from_record(record, where)
            where_of = lambda i, where=where: f"{where}: tags[{i}]"  # noqa: E731
            example.tags = checked_tags(example.tags, where_of, options, policy.report)
        except DataError as error:
            policy.handle(error)
            continue
        yield example
