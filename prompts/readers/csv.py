"""Word/entity-group CSVs -> Examples, in two layouts (`--csv_layout`, auto-detected from the header).

- wide: one row per text plus an entities column holding a JSON (or Python-literal) list of
  `{"word": ..., "entity_group": ...}` in order of appearance (optionally with `start`/`end`), as Hugging Face's
  aggregated NER pipeline outputs; texts are tokenised by `prompts.tokenize` and may be split into sentences.
- long: one row per word with one or more id columns (`email_id sentence_id`), a word column and an entity-group
  column (plain group names with `O`/empty for none, or B-/I- tags); consecutive rows with the same id key form
  one text, and a key that comes back after other texts is an error.

Each text's id (the id columns joined by `-`, or the file name and row) must be unique: a second text with the id
of an earlier one (wide: two rows with one `--id_column` value; long: keys that join to one id, `a-b`+`c` and
`a`+`b-c`) is an error naming both rows (`duplicate_id`; in the wide layout the row is skipped and counted with
`on_error="skip"`; the long layout's grouping errors stop the read whatever `on_error` says).

The delimiter is sniffed unless given; a record ends at `\\n`, `\\r` or `\\r\\n` only (U+2028 inside a text is
text). A bad row is an error naming the file, line and row. This module does not normalise texts.
"""

from __future__ import annotations

import ast
import csv
import io
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

from instruct_ner.examples import DataError, Example, snap_span, spans_to_tags
from instruct_ner.prompts.readers.options import ReaderOptions
from instruct_ner.prompts.readers.report import ErrorPolicy, ReadReport
from instruct_ner.prompts.readers.schemes import check_label, checked_tags, scheme_to_iob2, source_scheme
from instruct_ner.prompts.tokenize import sentence_bounds, tokenize_with_offsets
from instruct_ner.textio import read_text

MAX_CSV_CELL = 16 * 1024 * 1024  # characters; larger cells are refused with their row
DOCUMENT_ID_COLUMNS = ("document_id", "doc_id", "email_id", "text_id", "id")
SENTENCE_ID_COLUMNS = ("sentence_id",)


def read_csv(path: str | Path, options: ReaderOptions, policy: ErrorPolicy) -> Iterator[Example]:
    """A word/entity-group CSV in the wide or long layout (options.csv_layout, auto-detected from the header)."""
    path = Path(path)
    rows, header = _csv_rows(path, options.delimiter)
    layout = options.csv_layout
    if layout == "auto":
        layout = "wide" if options.entities_column in header else "long"
    if layout == "wide":
        yield from _csv_wide(path, header, rows, options, policy)
    elif layout == "long":
        yield from _csv_long(path, header, rows, options, policy)
    else:
        raise ValueError(f"csv_layout must be auto, wide or long, not {layout!r}")


def _csv_rows(path: Path, delimiter: str | None) -> tuple[list[tuple[int, int, dict]], list[str]]:
    """[(row number, first line number, row dict)] and the header; the delimiter is sniffed if not given."""
    content = read_text(path, "CSV file")
    if not content.strip():
        raise DataError(f"{path}:1", "empty CSV file; expected a header row", "empty")
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(content[:65536].split("\n", 1)[0], delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    # newline="": only \n, \r and \r\n end a record (never U+2028 or U+0085, which may be inside a text)
    reader = csv.reader(io.StringIO(content, newline=""), delimiter=delimiter)
    limit = csv.field_size_limit()
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # cells are checked against MAX_CSV_CELL below
    try:
        header = [name.strip() for name in next(reader)]
        rows, line = [], reader.line_num + 1
        for row_number, values in enumerate(reader, start=1):
            where = f"{path}:{line} (row {row_number})"
            if values:
                if len(values) != len(header):
                    raise DataError(
                        where,
                        f"expected {len(header)} fields as in the header {header}, found {len(values)}",
                        "column_count",
                    )
                for name, value in zip(header, values):
                    if len(value) > MAX_CSV_CELL:
                        raise DataError(
                            where, f"cell {name!r} holds {len(value)} characters; at most {MAX_CSV_CELL}", "cell_size"
                        )
                rows.append((row_number, line, dict(zip(header, values))))
            line = reader.line_num + 1
    except csv.Error as error:
        raise DataError(f"{path}:{reader.line_num}", f"not a valid CSV file ({error})", "bad_csv") from None
    finally:
        csv.field_size_limit(limit)
    return rows, header


def _require(path: Path, header: list[str], *columns: str | None) -> None:
    for column in columns:
        if column is not None and column not in header:
            raise DataError(
                f"{path}:1",
                f"missing column {column!r}; the header has {header} (choose columns with the *_column options)",
                "missing_column",
            )


def parse_entity_list(cell: str, where: str) -> list[dict]:
    """The entities cell: a JSON or Python-literal list of {word, entity_group[, start, end]} objects.

    Example: parse_entity_list('[{"word": "Mario", "entity_group": "PER"}]', "f.csv:2")
        -> [{"word": "Mario", "entity_group": "PER"}]
    """
    if not cell.strip():
        return []
    try:
        value = json.loads(cell)
    except json.JSONDecodeError:
        try:
            value = ast.literal_eval(cell)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            raise DataError(
                where, f"entities cell is neither JSON nor a Python literal: {cell[:80]!r}", "bad_entities"
            ) from None
    except RecursionError:
        message = "entities cell is nested too deeply; expected a flat list of objects"
        raise DataError(where, message, "bad_entities") from None
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise DataError(where, "entities must be a list of objects with 'word' and 'entity_group'", "bad_entities")
    entities = []
    for item in value:
        label = item.get("entity_group", item.get("entity", item.get("label")))
        if "word" not in item or not label:
            raise DataError(where, f"entity {item} lacks 'word' or 'entity_group'", "bad_entities")
        if not isinstance(item["word"], str | int | float) or not isinstance(label, str):
            message = f"entity {str(item)[:80]}: 'word' and 'entity_group' must be strings"
            raise DataError(where, message, "bad_entities")
        entities.append({**item, "entity_group": check_label(re.sub(r"^[BI]-", "", label), where)})
    return entities


def locate_entities(text: str, entities: list[dict], where: str) -> list[tuple[str, int, int]]:
    """Character spans (label, start, end) of entities listed in order of appearance, by a forward cursor.

    `start`/`end` given with an entity are used when they point at its word. Otherwise the word is looked
    up from the end of the previous entity on, exactly and then ignoring case character by character (a regex
    with IGNORECASE on the text itself, so offsets are the text's even where lower-casing changes a length,
    as `İ` -> `i̇` does; `STRAẞE` finds `Straße`, but `STRASSE` does not).
    Example: locate_entities("Rossi scrive a Rossi", [{"word": "Rossi", "entity_group": "PER"}] * 2, "x")
        -> [("PER", 0, 5), ("PER", 15, 20)]
    """
    spans, cursor = [], 0
    for item in entities:
        word, label = str(item["word"]).strip(), item["entity_group"]
        start, end = item.get("start"), item.get("end")
        if isinstance(start, int) and isinstance(end, int) and text[start:end].strip().lower() == word.lower():
            start, end = start + len(text[start:end]) - len(text[start:end].lstrip()), end
            end = start + len(text[start:end].strip())
        else:
            start = text.find(word, cursor) if word else -1
            end = start + len(word)
            if start < 0 and word and (match := re.compile(re.escape(word), re.IGNORECASE).search(text, cursor)):
                start, end = match.span()
            if start < 0:
                raise DataError(
                    where,
                    f"entity word {word!r} ({label}) not found in the text after character {cursor}"
                    " (entities must be listed in order of appearance)",
                    "entity_not_in_text",
                )
        spans.append((label, start, end))
        cursor = end
    return spans


def example_from_text(
    example_id: str, text: str, char_spans: list[tuple[str, int, int]], where: str, report: ReadReport
) -> Example:
    """Tokenise a text and turn character-level entity spans into IOB2 tags over the tokens.

    An entity must start and end at token bounds: one that covers part of a token (`Acme` in `Acme.it`) is an
    error naming the row, the entity and the token (`partial_token`), never widened to the whole token, which
    would tag text the annotation did not. Scripts written without spaces (Chinese, Japanese) are tokenised
    one character a token (`prompts.tokenize`), so their entities fall on token bounds.
    """
    tokenized = tokenize_with_offsets(text)
    tokens = [token for token, _, _ in tokenized]
    offsets = [(start, end) for _, start, end in tokenized]
    token_spans = []
    for label, start, end in char_spans:
        snapped = snap_span(offsets, start, end)
        if snapped is None:
            raise DataError(where, f"entity {text[start:end]!r} ({label}) covers no token", "entity_not_in_text")
        first, last, widened = snapped
        if widened:
            cut = first if offsets[first][0] != start else last - 1
            message = (
                f"entity {text[start:end]!r} ({label}) covers part of the token {tokens[cut]!r}; an entity must"
                " start and end at token bounds (words, numbers, addresses as prompts.tokenize splits them)"
            )
            raise DataError(where, message, "partial_token")
        if token_spans and first < token_spans[-1][2]:
            raise DataError(where, f"entity {text[start:end]!r} ({label}) overlaps the previous one", "overlap")
        token_spans.append((label, first, last))
    return Example(example_id, tokens, spans_to_tags(token_spans, len(tokens)), text, offsets, source=where)


def split_into_sentences(example: Example) -> list[Example]:
    """Split an example at sentence bounds that no entity crosses; ids get a -k suffix."""
    bounds = sentence_bounds(example.text)
    entity_spans = [(e.start, e.end) for e in example.entities]
    cuts = [end for (_, end) in bounds[:-1] if not any(s < end < e for s, e in entity_spans)]
    pieces, start_token = [], 0
    for cut in [*cuts, len(example.text) + 1]:
        end_token = start_token
        while end_token < len(example.tokens) and example.offsets[end_token][1] <= cut:
            end_token += 1
        if end_token > start_token:
            base = example.offsets[start_token][0]
            text_end = example.offsets[end_token - 1][1]
            pieces.append(
                Example(
                    f"{example.id}-{len(pieces)}",
                    example.tokens[start_token:end_token],
                    example.tags[start_token:end_token],
                    example.text[base:text_end],
                    [(s - base, e - base) for s, e in example.offsets[start_token:end_token]],
                    source=example.source,
                )
            )
        start_token = end_token
    return pieces


def _unique_id(example_id: str, seen: dict[str, tuple[int, int]], where: str, row_number: int, line: int) -> None:
    """Remember the row of an id, or raise DataError naming both rows when an earlier text has the same id."""
    if example_id in seen:
        first_row, first_line = seen[example_id]
        message = (
            f"id {example_id!r} is already the id of row {first_row} (line {first_line}); each text needs its own id"
        )
        raise DataError(where, message, "duplicate_id")
    seen[example_id] = (row_number, line)


def _csv_wide(path: Path, header, rows, options: ReaderOptions, policy: ErrorPolicy) -> Iterator[Example]:
    id_columns = _id_columns(options)
    _require(path, header, options.text_column, options.entities_column, *id_columns)
    ids: dict[str, tuple[int, int]] = {}
    for row_number, line, row in rows:
        where = f"{path}:{line} (row {row_number})"
        try:
            example_id = "-".join(row[c] for c in id_columns) if id_columns else f"{path.stem}-{row_number}"
            _unique_id(example_id, ids, where, row_number, line)
            text = row[options.text_column]
            if not text.strip():
                raise DataError(where, f"empty {options.text_column!r} cell", "empty_text")
            entities = parse_entity_list(row[options.entities_column], where)
            spans = locate_entities(text, entities, where)
            example = example_from_text(example_id, text, spans, where, policy.report)
        except DataError as error:
            policy.handle(error)
            continue
        yield from split_into_sentences(example) if options.split_sentences else [example]


def _id_columns(options: ReaderOptions) -> list[str]:
    """The id columns asked for (a single name is accepted as well as a list)."""
    columns = options.id_column or []
    return [columns] if isinstance(columns, str) else list(columns)


def long_id_columns(header: list[str], options: ReaderOptions) -> list[str]:
    """The id columns of a long-layout CSV: those asked for, else a document id and/or `sentence_id`.

    Example: long_id_columns(["email_id", "sentence_id", "word", "entity_group"], ReaderOptions())
        -> ["email_id", "sentence_id"]
    """
    if columns := _id_columns(options):
        return columns
    document = next((c for c in DOCUMENT_ID_COLUMNS if c in header), None)
    sentence = next((c for c in SENTENCE_ID_COLUMNS if c in header), None)
    return [c for c in (document, sentence) if c is not None]


_KEY_HINT = " (several id columns together form the key: --id_column doc_id sentence_id)"


def _csv_long(path: Path, header, rows, options: ReaderOptions, policy: ErrorPolicy) -> Iterator[Example]:
    id_columns = long_id_columns(header, options)
    if not id_columns:
        _require(path, header, "sentence_id")
    _require(path, header, *id_columns, options.word_column, options.tag_column)
    named = " ".join(id_columns)
    groups: list[tuple[tuple[str, ...], list[tuple[int, int, dict]]]] = []
    seen: dict[tuple[str, ...], int] = {}
    ids: dict[str, tuple[int, int]] = {}
    for row_number, line, row in rows:
        key = tuple(row[c].strip() for c in id_columns)
        if empty := [c for c, value in zip(id_columns, key) if not value]:
            raise DataError(f"{path}:{line} (row {row_number})", f"empty {empty[0]!r}", "missing_id")
        if groups and groups[-1][0] == key:
            groups[-1][1].append((row_number, line, row))
            continue
        if key in seen:
            shown = key[0] if len(key) == 1 else key
            raise DataError(
                f"{path}:{line} (row {row_number})",
                f"{named} {shown!r} appears again after other texts (first at row {seen[key]});"
                " the rows of one text must be consecutive" + (_KEY_HINT if len(key) == 1 else ""),
                "non_consecutive_id",
            )
        seen[key] = row_number
        _unique_id("-".join(key), ids, f"{path}:{line} (row {row_number})", row_number, line)
        groups.append((key, [(row_number, line, row)]))
    tag_sequences = [[row[options.tag_column].strip() or "O" for _, _, row in group] for _, group in groups]
    scheme = source_scheme(tag_sequences, options.scheme, policy.report, plain_groups=True)
    for (key, group), tags in zip(groups, tag_sequences):
        first_row, first_line = group[0][0], group[0][1]
        where = f"{path}:{first_line} (row {first_row})"
        try:
            words = [row[options.word_column].strip() for _, _, row in group]
            for (row_number, line, _), word in zip(group, words):
                if not word:
                    raise DataError(f"{path}:{line} (row {row_number})", "empty word", "empty_word")
            tags = scheme_to_iob2(tags, scheme)

            def where_of(i, group=group):
                return f"{path}:{group[i][1]} (row {group[i][0]})"

            tags = checked_tags(tags, where_of, options, policy.report)
        except DataError as error:
            policy.handle(error)
            continue
        yield Example("-".join(key), words, tags, source=where)
