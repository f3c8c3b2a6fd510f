"""CoNLL column files -> Examples: `token ... tag` per line, blank line between sentences.

Space- or tab-separated, token first and tag last (`split_columns`). Columns are split on ASCII spaces and tabs
only: a token keeps any other character (a non-breaking space, U+2009, U+3000 stay inside it). A line holding a
tab is split at each tab together with the spaces around it (`EU \\tB-ORG` is `EU`, `B-ORG`; a token of a tab file
may hold spaces, `New York\\tB-LOC`, and two tabs make an empty column); a line without a tab at each run of
spaces. A token that is empty or only whitespace is an error. `#` comment lines before a sentence (CoNLL-U,
MultiCoNER) are skipped and counted. `-DOCSTART-` lines end a sentence; with `unit="sentence"` (the default) that is
all they do, with `unit="document"` each one opens a document and every document is one example (id `STEM-docK`):
its sentences, each read and checked as above, joined by a line break (`DOCUMENT_SEPARATOR`), so the text's
sentence bounds are the file's. A file without `-DOCSTART-` is one document. IOB1 and IO are detected per file
(`schemes.source_scheme`).

A line of only whitespace (spaces, tabs, or any other whitespace) ends a sentence, as an empty line does and as
conlleval reads it (`^\\s*$`); since such a line may be a token whose tag was lost, each one is counted
(`whitespace_only_lines`) and listed with its file:line in the read report (`ReadReport.notices`), never silent.
Every line of a file must have as many columns as its first one; a bad sentence is an error naming its line
(or, with `on_error="skip"`, skipped and counted). This module does not guess other column layouts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from instruct_ner.examples import DataError, Example, join_tokens
from instruct_ner.prompts.readers.options import ReaderOptions
from instruct_ner.prompts.readers.report import ErrorPolicy
from instruct_ner.prompts.readers.schemes import checked_tags, scheme_to_iob2, source_scheme
from instruct_ner.textio import read_text, split_lines

CONLL_SUFFIXES = {".txt", ".conll", ".conllu", ".tsv", ".iob", ".iob2", ".bio"}
_TAG_LIKE = re.compile(r"^(?:O|[BIESLU]-\S+)$")  # a tag of any scheme readers accept (checked_tags validates it)
_TAB = re.compile(r" *\t *")  # a tab and the spaces around it: one separator
_SPACES = re.compile(r" +")


DOCUMENT_SEPARATOR = "\n"  # between the sentences of a document's text (`unit="document"`)


def read_conll(path: str | Path, options: ReaderOptions, policy: ErrorPolicy) -> Iterator[Example]:
    """CoNLL-style column files. IOB1 and IO are detected over the whole file (options.scheme="auto") and converted."""
    path = Path(path)
    documents: list[int] = []  # the document of each sentence (`unit="document"`)
    sentences = list(_conll_sentences(path, policy, documents))
    scheme = source_scheme([tags for _, (_, _, tags) in sentences], options.scheme, policy.report)
    checked = _checked_sentences(path, sentences, scheme, options, policy)
    if getattr(options, "unit", "sentence") != "document":
        for index, first_line, tokens, tags in checked:
            yield Example(f"{path.stem}-{index}", tokens, tags, source=f"{path}:{first_line}")
        return
    document, parts = None, []
    for index, first_line, tokens, tags in checked:
        if parts and documents[index] != document:
            yield document_example(path, document, parts)
            parts = []
        document = documents[index]
        parts.append((first_line, tokens, tags))
    if parts:
        yield document_example(path, document, parts)


def _checked_sentences(path: Path, sentences, scheme: str, options: ReaderOptions, policy: ErrorPolicy):
    """(index, first line, tokens, IOB2 tags) of every sentence whose tags pass `checked_tags`."""
    for index, (first_line, tokens, tags) in sentences:
        tags = scheme_to_iob2(tags, scheme)
        try:
            tags = checked_tags(tags, lambda i, first=first_line: f"{path}:{first + i}", options, policy.report)
        except DataError as error:
            policy.handle(error)
            continue
        yield index, first_line, tokens, tags


def document_example(path: Path, document: int, parts: list[tuple[int, list[str], list[str]]]) -> Example:
    """One Example of a document's sentences: tokens and tags concatenated, sentences joined by a line break.

    Example: document_example(Path("t.txt"), 0, [(2, ["EU"], ["B-ORG"]), (4, ["Hi"], ["O"])]).text -> "EU\nHi"
    """
    tokens, tags, offsets, texts, position = [], [], [], [], 0
    for _, sentence_tokens, sentence_tags in parts:
        text, sentence_offsets = join_tokens(sentence_tokens)
        tokens += sentence_tokens
        tags += sentence_tags
        offsets += [(start + position, end + position) for start, end in sentence_offsets]
        texts.append(text)
        position += len(text) + len(DOCUMENT_SEPARATOR)
    text = DOCUMENT_SEPARATOR.join(texts)
    return Example(f"{path.stem}-doc{document}", tokens, tags, text, offsets, source=f"{path}:{parts[0][0]}")


def is_comment_line(line: str) -> bool:
    """A `#` line before a sentence whose last field is no tag: CoNLL-U (`# sent_id = 3`), MultiCoNER (`# id ...`).

    A token `#` with its tag (`# O`, `#\tB-MISC`) is a token, not a comment.
    Example: is_comment_line("# id 4ab2 domain=en") -> True; is_comment_line("#\tO") -> False
    """
    return line.startswith("#") and not _TAG_LIKE.match(line.split()[-1])


def split_columns(line: str) -> list[str]:
    """The columns of a CoNLL line, split on ASCII spaces and tabs only (see the module docstring).

    Example: split_columns("EU \\tB-ORG") -> ["EU", "B-ORG"]; split_columns("New\\u00a0York B-LOC") ->
    ["New\\u00a0York", "B-LOC"]; split_columns("New York\\t_\\tB-LOC") -> ["New York", "_", "B-LOC"]
    """
    if "\t" in line:
        return _TAB.split(line.strip(" "))
    return _SPACES.split(line.strip(" "))


def _conll_sentences(
    path: Path, policy: ErrorPolicy, documents: list[int] | None = None
) -> Iterator[tuple[int, tuple[int, list[str], list[str]]]]:
    """(sentence index, (first line number, tokens, tags)) for every well-formed sentence of the file;
    `documents`, when given, gets the document number of every sentence index (a `-DOCSTART-` opens one)."""
    document = 0
    columns_seen: tuple[int, int] | None = None  # (column count, line where it was first seen)
    index, first_line, tokens, tags, error = 0, 0, [], [], None

    def flush():
        nonlocal index, tokens, tags, error
        result = None
        if error is not None:
            policy.handle(error)
        elif tokens:
            result = (index, (first_line, tokens, tags))
        if tokens or error is not None:
            index += 1
            if documents is not None:
                documents.append(document)
        tokens, tags, error = [], [], None
        return result

    lines = split_lines(read_text(path, "CoNLL file"))  # decoded first: a bad byte names its line
    for line_number, line in enumerate(lines, start=1):
        if not line.strip() or line.startswith("-DOCSTART-"):
            if line and not line.strip():
                policy.report.notice(
                    "whitespace_only_lines",
                    f"{path}:{line_number}",
                    "a line of only whitespace, read as a sentence boundary",
                )
            if (sentence := flush()) is not None:
                yield sentence
            if line.startswith("-DOCSTART-") and index:
                document += 1  # the first document is open from the file's start
            continue
        if not tokens and error is None and is_comment_line(line):
            policy.report.notes["comment_lines"] += 1
            continue
        if not tokens and error is None:
            first_line = line_number
        if error is not None:
            continue  # the rest of a sentence already rejected
        fields = split_columns(line)
        if len(fields) < 2:
            error = DataError(
                f"{path}:{line_number}",
                f"expected at least 2 columns (token ... tag), found {len(fields)}: {line!r}",
                "column_count",
            )
            continue
        if columns_seen is None:
            columns_seen = (len(fields), line_number)
        elif len(fields) != columns_seen[0]:
            error = DataError(
                f"{path}:{line_number}",
                f"expected {columns_seen[0]} columns as on line {columns_seen[1]}, found {len(fields)}: {line!r}",
                "column_count",
            )
            continue
        if not fields[0].strip():
            error = DataError(
                f"{path}:{line_number}",
                f"empty token (only whitespace); expected a token first: {line!r}",
                "empty_token",
            )
            continue
        tokens.append(fields[0])
        tags.append(fields[-1].strip())
    if (sentence := flush()) is not None:
        yield sentence
