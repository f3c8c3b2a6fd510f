"""Response formats: the registry. Each format is one `ResponseFormat` object (`prompts.formats.base`) that owns
its grammar: render, read, the decoding constraint, the new-token bound and the per-row regex.

Built in: `entity_list` (`prompts.formats.entity_list`, the default) and `inline` (`prompts.formats.inline`).
A new format is one module with a `ResponseFormat` subclass plus `register_format(TheFormat())`; nothing
else names formats. `FORMAT_NAMES` is a live view of the registry's names.

This package does not know the vocabulary (see `inference.constrained`) and does not ground mentions in
the text (see `inference.grounding`).
"""

from __future__ import annotations

from instruct_ner.examples import DataError
from instruct_ner.prompts.formats.base import (  # noqa: F401  (the format interface, importable from here)
    LabelTrie,
    Mention,
    ReadMentions,
    ResponseFormat,
    RowText,
    aligned_occurrences,
)
from instruct_ner.prompts.formats.entity_list import EntityListFormat
from instruct_ner.prompts.formats.inline import InlineFormat, escapable  # noqa: F401

FORMATS: dict[str, ResponseFormat] = {}
FORMAT_NAMES = FORMATS.keys()  # a live view: a registered format is a valid name everywhere


def register_format(response_format: ResponseFormat) -> ResponseFormat:
    """Add a format to the registry under its `name` (replacing one of that name); returns it."""
    if not isinstance(response_format, ResponseFormat):
        raise TypeError(f"a response format must be a ResponseFormat, not {type(response_format).__name__}")
    FORMATS[response_format.name] = response_format
    return response_format


def unregister_format(name: str) -> None:
    """Remove a format from the registry (tests that add a toy format take it out again)."""
    FORMATS.pop(name, None)


def get_format(name: str) -> ResponseFormat:
    """The registered format of that name. Example: get_format("inline").name -> "inline" """
    if name not in FORMATS:
        raise DataError("response_format", f"unknown response format {name!r}; expected one of {', '.join(FORMATS)}")
    return FORMATS[name]


register_format(EntityListFormat())
register_format(InlineFormat())
