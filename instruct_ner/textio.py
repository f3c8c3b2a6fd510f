"""Reading text files the same way in every reader: UTF-8, a byte-order mark stripped, bad bytes reported
with their file and line, and lines split on `\\n` only (never `str.splitlines`, which also breaks at
U+2028, U+0085 and other characters that are legitimate inside a text).

This module does not parse anything; CoNLL, CSV, JSONL, label-definition and template readers use it.
"""

from __future__ import annotations

from pathlib import Path

from instruct_ner.examples import DataError

BOM = "\ufeff"


def read_text(path: str | Path, what: str = "file") -> str:
    """The file's text without a leading BOM; a file that is not UTF-8 raises DataError naming file:line.

    Example: read_text("a.txt") -> "EU B-ORG\\n"   (for a file holding b"\\xef\\xbb\\xbfEU B-ORG\\n")
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(str(path), f"is a folder; expected a {what}", "not_a_file")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise DataError(
            f"{path}:{line}",
            f"not UTF-8 (byte {data[error.start]:#04x} at offset {error.start}); save the {what} as UTF-8",
            "encoding",
        ) from None
    return text.removeprefix(BOM)


def split_lines(text: str) -> list[str]:
    """Lines split on `\\n` only, each without its `\\r\\n` / `\\n`.

    Example: split_lines("a\\u2028b\\r\\nc") -> ["a\\u2028b", "c"]
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]
