"""Readers: CoNLL column files, Hugging Face datasets, word/entity-group CSVs and JSONL records -> Examples.

Every reader returns IOB2 examples and fills a `ReadReport`. Bad input raises `DataError` naming the file
and the line (CoNLL, JSONL) or the row (CSV, datasets) and what was expected; with `on_error="skip"` the
bad sentence or row is skipped instead, and the report counts it by reason. Nothing is dropped silently.

`load_examples(source, ReaderOptions(...))` picks the reader (`detect_format`) and applies the options every
reader shares (`labels`, `limit`, `on_error`). One module per format, named as `--format` names it:
- `conll`: `token ... tag` column files (`-DOCSTART-` ignored, `#` comment lines skipped and counted);
- `hf`: datasets shaped like `eriktks/conll2003`, by hub name, `save_to_disk` folder or local data file;
- `csv`: word/entity-group CSVs, wide (one row per text, an entities list) or long (one row per word);
- `jsonl`: records written by `instruct-ner prepare` (or any stage).
and beside them `options` (`ReaderOptions`), `report` (`ReadReport`, `ErrorPolicy`) and `schemes`.

Tags (every format, `schemes`): BIOES/IOBES (`S-`, `E-`) and BILOU (`U-`, `L-`) tags are detected per sentence and
converted to IOB2 (`S-`/`U-` -> `B-`, `E-`/`L-` -> `I-`; counted as `converted_bioes`). IOB1 and IO tags (plain
types such as `location-GPE` beside `O`, no prefix anywhere in the source; Few-NERD) are detected per source; the
words of one IO run of a type form one entity, so two adjacent entities of one type merge, as IO cannot tell them
apart. An `I-` tag that does not continue an entity of its type (at a sentence start, after `O` or after
another type) is read the way conlleval and seqeval read it, as the start of an entity, and repaired to `B-`;
each repair is counted and listed with its file:line (`ReadReport.repairs`). `repair_tags=False` refuses such
a sentence instead (strict IOB2). Entity types must be single words without `|`, `[` or `]` (they are
written into responses).

Text files are read as UTF-8 (a BOM is stripped; other encodings are an error naming the line) and split
on `\\n` only, so U+2028 or U+0085 inside a text is kept as text.

It does not download anything itself except through `datasets.load_dataset` for a hub name.
"""

from __future__ import annotations

import re
from pathlib import Path

from instruct_ner.examples import DataError, Example, labels_of
from instruct_ner.prompts.labels import check_labels
from instruct_ner.prompts.readers.conll import CONLL_SUFFIXES, is_comment_line, read_conll
from instruct_ner.prompts.readers.csv import (
    DOCUMENT_ID_COLUMNS,
    MAX_CSV_CELL,
    SENTENCE_ID_COLUMNS,
    example_from_text,
    locate_entities,
    long_id_columns,
    parse_entity_list,
    read_csv,
    split_into_sentences,
)
from instruct_ner.prompts.readers.hf import read_hf
from instruct_ner.prompts.readers.jsonl import read_jsonl
from instruct_ner.prompts.readers.options import CSV_GROUP, DATA_FORMATS, ReaderOptions
from instruct_ner.prompts.readers.report import MAX_LISTED_REPAIRS, MAX_REPORTED_ERRORS, ErrorPolicy, ReadReport
from instruct_ner.prompts.readers.schemes import (
    LABEL_PATTERN,
    SCHEMES,
    bioes_to_iob2,
    check_label,
    checked_tags,
    is_bioes,
    is_iob1,
    scheme_to_iob2,
    source_scheme,
)

__all__ = [
    "CONLL_SUFFIXES",
    "CSV_GROUP",
    "DATA_FORMATS",
    "DOCUMENT_ID_COLUMNS",
    "LABEL_PATTERN",
    "MAX_CSV_CELL",
    "MAX_LISTED_REPAIRS",
    "MAX_REPORTED_ERRORS",
    "SCHEMES",
    "SENTENCE_ID_COLUMNS",
    "ErrorPolicy",
    "ReadReport",
    "ReaderOptions",
    "bioes_to_iob2",
    "check_label",
    "checked_tags",
    "detect_format",
    "example_from_text",
    "is_bioes",
    "is_comment_line",
    "is_iob1",
    "load_examples",
    "locate_entities",
    "long_id_columns",
    "parse_entity_list",
    "read_conll",
    "read_csv",
    "read_hf",
    "read_jsonl",
    "scheme_to_iob2",
    "source_scheme",
    "split_into_sentences",
]
READERS = {"conll": read_conll, "csv": read_csv, "hf": read_hf, "jsonl": read_jsonl}  # by --format name


def load_examples(source: str | Path, options: ReaderOptions | None = None) -> tuple[list[Example], ReadReport]:
    """Read any supported source into examples, honouring `options.on_error`, `options.labels`, `options.limit`.

    Example: load_examples("data/conll_sample/train.txt") -> ([Example(id="train-0", ...), ...], report)
    """
    options = options or ReaderOptions()
    if options.limit is not None and (isinstance(options.limit, bool) or options.limit < 1):
        raise DataError("--limit", f"expected a number of records of at least 1, got {options.limit}", "bad_option")
    if options.labels is not None:
        check_labels(options.labels, "--labels")
    fmt = detect_format(source, options.format)
    if fmt != "hf" and Path(source).is_dir():
        raise DataError(str(source), f"is a folder; expected a {fmt} file", "not_a_file")
    if fmt != "hf" and not Path(source).is_file():
        raise FileNotFoundError(f"{source}: no such file (expected {fmt} data)")
    report = ReadReport(str(source))
    policy = ErrorPolicy(options.on_error, report)
    examples = []
    for example in READERS[fmt](source, options, policy):
        # readers that check tags name the token's line or row (checked_tags); this names a wide CSV's row
        if options.labels is not None and (unknown := set(labels_of([example.tags])) - set(options.labels)):
            policy.handle(
                DataError(
                    example.source or example.id,
                    f"label(s) {sorted(unknown)} not in the label set {options.labels}",
                    "unknown_label",
                )
            )
            continue
        examples.append(example)
        if options.limit is not None and len(examples) >= options.limit:
            break
    report.read = len(examples)
    if examples and options.labels is None:  # labels found in the data: one set a response can carry exactly
        check_labels(labels_of([e.tags for e in examples]), f"{source}: the labels found in the data")
    return examples, report


def detect_format(source: str | Path, fmt: str = "auto") -> str:
    """The reader for a source: by explicit name, by file suffix, a `save_to_disk` folder, or a hub name."""
    if fmt != "auto":
        if fmt not in DATA_FORMATS:
            raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(DATA_FORMATS)}")
        return fmt
    path = Path(source)
    if path.is_dir():
        return "hf"
    if path.suffix.lower() in CONLL_SUFFIXES:
        return "conll"
    if path.suffix.lower() == ".csv":
        return "csv"
    if path.suffix.lower() in (".jsonl", ".json"):
        return "jsonl"
    if not path.exists():
        if re.fullmatch(r"[\w.-]+(/[\w.-]+)?", str(source)) and not path.suffix:
            return "hf"  # looks like a hub id such as eriktks/conll2003
        raise FileNotFoundError(f"{source}: no such file or folder")
    raise DataError(str(source), f"cannot tell the format from the suffix {path.suffix!r}; pass --format")
