"""JSONL in and out: the one file format every stage reads and writes.

Readers report the file and line of a malformed record; the writer flushes each record so that an
interrupted run leaves a valid file up to its last complete line. It lives in the lowest stage
(`prompts`), beside `DataError`, so that the readers and every later stage import it downwards.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from instruct_ner.prompts.examples import DataError


def iter_jsonl(path: str | Path) -> Iterator[tuple[str, dict]]:
    """Yield ("file:line", record) for each non-blank line; a malformed line raises DataError."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{line_number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(
                    where, f"not valid JSON ({error.msg}); expected one JSON object per line", "bad_json"
                ) from None
            if not isinstance(record, dict):
                raise DataError(where, f"expected a JSON object, found {type(record).__name__}", "bad_json")
            yield where, record


def read_records(path: str | Path) -> list[dict]:
    """Every record of a JSONL file, as dicts (see `prompts.readers.read_jsonl` for Examples)."""
    return [record for _, record in iter_jsonl(path)]


def write_jsonl(path: str | Path, records: Iterable[dict], append: bool = False) -> int:
    """Write records one per line (UTF-8, not ASCII-escaped); returns how many were written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with open(path, "a" if append else "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.flush()
            count += 1
    return count
