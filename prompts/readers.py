"""Readers: CoNLL column files, Hugging Face datasets, word/entity-group CSVs and JSONL records -> Examples.

Every reader returns IOB2 examples and fills a `ReadReport`. Bad input raises `DataError` naming the file
and the line (CoNLL, JSONL) or the row (CSV, datasets) and what was expected; with `on_error="skip"` the
bad sentence or row is skipped instead, and the report counts it by reason. Nothing is dropped silently.

Formats:
- conll: `token ... tag` per line (space- or tab-separated, token first, tag last), blank line between
  sentences, `-DOCSTART-` lines ignored, `#` comment lines before a sentence (CoNLL-U, MultiCoNER) skipped
  and counted. IOB1 and IO are detected per file and converted to IOB2.
- hf: a dataset shaped like `eriktks/conll2003` (`tokens`, `ner_tags` as ClassLabel ids or strings), by hub
  name, a `save_to_disk` folder, or a local json/jsonl/csv/parquet file.
- csv, wide layout: one row per text plus an entities column holding a JSON (or Python-literal) list of
  `{"word": ..., "entity_group": ...}` in order of appearance (optionally with `start`/`end`), as Hugging
  Face's aggregated NER pipeline outputs; texts are tokenised by `prompts.tokenize`.
- csv, long layout: one row per word with one or more id columns (`email_id sentence_id`), a word
  column and an entity-group column (plain group names with `O`/empty for none, or B-/I- tags);
  consecutive rows with the same id key form one text.
- jsonl: records written by `instruct-ner prepare` (or any stage): `id`, `tokens`, `tags`, ...

Tags (every format): BIOES/IOBES (`S-`, `E-`) and BILOU (`U-`, `L-`) tags are detected per sentence and
converted to IOB2 (`S-`/`U-` -> `B-`, `E-`/`L-` -> `I-`; counted as `converted_bioes`). IO tags (plain types
such as `location-GPE` beside `O`, no prefix anywhere in the source; Few-NERD) are converted per source: the
words of one run of a type form one entity, so two adjacent entities of one type merge, as IO cannot tell them
apart. An `I-` tag that does not continue an entity of its type (at a sentence start, after `O` or after
another type) is read the way conlleval and seqeval read it, as the start of an entity, and repaired to `B-`;
each repair is counted and listed with its file:line (`ReadReport.repairs`). `repair_tags=False` refuses such
a sentence instead (strict IOB2). Entity types must be single words without `|`, `[` or `]` (they are
written into responses).

Text files are read as UTF-8 (a BOM is stripped; other encodings are an error naming the line) and split
on `\n` only, so U+2028 or U+0085 inside a text is kept as text.

It does not download anything itself except through `datasets.load_dataset` for a hub name.
"""

from __future__ import annotations

import ast
import csv
import io
import json
import re
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from instruct_ner.prompts.tokenize import sentence_bounds, tokenize_with_offsets

from instruct_ner.examples import (
    TAG_PATTERN,
    DataError,
    Example,
    bioes_to_iob2,
    iob1_to_iob2,
    iob2_error,
    is_bioes,
    is_iob1,
    labels_of,
    snap_span,
    spans_to_tags,
)
from instruct_ner.jsonl import iter_jsonl
from instruct_ner.textio import read_text, split_lines

DATA_FORMATS = ("auto", "conll", "csv", "hf", "jsonl")  # readers; response formats: prompts.formats
CONLL_SUFFIXES = {".txt", ".conll", ".conllu", ".tsv", ".iob", ".iob2", ".bio"}
MAX_REPORTED_ERRORS = 5
MAX_LISTED_REPAIRS = 20
MAX_CSV_CELL = 16 * 1024 * 1024  # characters; larger cells are refused with their row
LABEL_PATTERN = re.compile(r"^[^\s|\[\]]+$")
_TAG_LIKE = re.compile(r"^(?:O|[BIESLU]-\S+)$")  # a tag of any scheme readers accept (checked_tags validates it)
_PREFIXED = re.compile(r"^[BIESLU]-")
SCHEMES = ("auto", "iob1", "iob2", "bioes", "io")
DOCUMENT_ID_COLUMNS = ("document_id", "doc_id", "email_id", "text_id", "id")
SENTENCE_ID_COLUMNS = ("sentence_id",)


@dataclass
class ReadReport:
    """What a reader did: records read, records skipped by reason, the first error messages, notes."""

    source: str
    read: int = 0
    skipped: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    repairs: list[str] = field(default_factory=list)

    def repair(self, where: str, message: str) -> None:
        """Count an I- tag read as B- (conlleval's reading) and keep where it was."""
        self.notes["repaired_tags"] += 1
        self.repairs.append(f"{where}: {message}")

    def skip(self, error: DataError) -> None:
        self.skipped[error.reason] += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(str(error))

    @property
    def n_skipped(self) -> int:
        return sum(self.skipped.values())

    def summary(self) -> str:
        line = f"{self.source}: read {self.read} examples"
        if self.skipped:
            line += f", skipped {self.n_skipped} ({', '.join(f'{k}: {v}' for k, v in sorted(self.skipped.items()))})"
        if self.notes:
            line += "; " + ", ".join(f"{k}: {v}" for k, v in sorted(self.notes.items()))
        line += "".join(f"\n  {message}" for message in self.errors)
        line += "".join(f"\n  repaired {message}" for message in self.repairs[:MAX_LISTED_REPAIRS])
        if len(self.repairs) > MAX_LISTED_REPAIRS:
            line += f"\n  ... and {len(self.repairs) - MAX_LISTED_REPAIRS} more repairs"
        return line

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "read": self.read,
            "skipped": dict(self.skipped),
            "notes": dict(self.notes),
            "repairs": list(self.repairs),
        }


@dataclass
class ReaderOptions:
    """Options shared by every reader; every stage that reads data exposes each as a flag of the same name."""

    format: str = field(
        default="auto",
        metadata={
            "help": "data format; auto = by suffix (.txt/.tsv conll, .csv, .jsonl), folder or hub id = hf",
            "choices": list(DATA_FORMATS),
        },
    )
    split: str = field(default="train", metadata={"help": "split of a Hugging Face dataset"})
    scheme: str = field(
        default="auto",
        metadata={
            "help": "tag scheme; auto detects IOB1, IO (plain types such as PER next to O, no prefixes in the whole "
            "source) and BIOES/IOBES/BILOU tags (S-/E-, U-/L-) and converts them to IOB2",
            "choices": list(SCHEMES),
        },
    )
    repair_tags: bool = field(
        default=True,
        metadata={
            "help": "read an I- tag that opens an entity (sentence start, after O or another type) as B-, as "
            "conlleval does, counting and listing each repair; false = refuse such sentences (strict IOB2)"
        },
    )
    text_column: str = field(default="text", metadata={"help": "CSV (wide): column with the text"})
    entities_column: str = field(
        default="entities", metadata={"help": "CSV (wide): column with the [{word, entity_group}] list"}
    )
    id_column: list[str] | None = field(
        default=None,
        metadata={
            "help": "CSV: id column(s); rows with the same combination of ids form one text in the long layout "
            "(default: a document id column such as email_id, doc_id, text_id or id and/or sentence_id)"
        },
    )
    word_column: str = field(default="word", metadata={"help": "CSV (long): column with one word per row"})
    tag_column: str = field(
        default="entity_group", metadata={"help": "CSV (long): entity group (or B-/I- tag) of the word"}
    )
    csv_layout: str = field(
        default="auto",
        metadata={
            "help": "CSV layout; auto = wide if the entities column exists",
            "choices": ["auto", "wide", "long"],
        },
    )
    delimiter: str | None = field(default=None, metadata={"help": "CSV delimiter; sniffed when not given"})
    split_sentences: bool = field(
        default=False, metadata={"help": "CSV (wide): split texts into sentences (never inside an entity)"}
    )
    labels: list[str] | None = field(
        default=None, metadata={"help": "the label set; default: the labels found in the data"}
    )
    on_error: str = field(
        default="raise",
        metadata={
            "help": "bad records: raise (stop with file and line) or skip (count and report)",
            "choices": ["raise", "skip"],
        },
    )
    limit: int | None = field(
        default=None, metadata={"help": "read at most this many examples (of each data source); at least 1"}
    )


class _Policy:
    """Raise or count a DataError, as the user asked."""

    def __init__(self, on_error: str, report: ReadReport):
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
        self.on_error, self.report = on_error, report

    def handle(self, error: DataError) -> None:
        if self.on_error == "raise":
            raise error
        self.report.skip(error)


def load_examples(source: str | Path, options: ReaderOptions | None = None) -> tuple[list[Example], ReadReport]:
    """Read any supported source into examples, honouring `options.on_error`, `options.labels`, `options.limit`.

    Example: load_examples("data/conll_sample/train.txt") -> ([Example(id="train-0", ...), ...], report)
    """
    options = options or ReaderOptions()
    if options.limit is not None and (isinstance(options.limit, bool) or options.limit < 1):
        raise DataError("--limit", f"expected a number of records of at least 1, got {options.limit}", "bad_option")
    for label in options.labels or []:
        check_label(label, "--labels")
    fmt = detect_format(source, options.format)
    if fmt != "hf" and Path(source).is_dir():
        raise DataError(str(source), f"is a folder; expected a {fmt} file", "not_a_file")
    if fmt != "hf" and not Path(source).is_file():
        raise FileNotFoundError(f"{source}: no such file (expected {fmt} data)")
    report = ReadReport(str(source))
    policy = _Policy(options.on_error, report)
    readers = {"conll": read_conll, "csv": read_csv, "hf": read_hf, "jsonl": read_jsonl}
    examples = []
    for example in readers[fmt](source, options, policy):
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
    return examples, report


def check_label(label: str, where: str) -> str:
    """An entity type as responses can carry it: one word without `|`, `[` or `]`.

    Example: check_label("LOC", "f.csv:2") -> "LOC"; check_label("LOC X", "f.csv:2") raises DataError
    """
    if not isinstance(label, str) or not LABEL_PATTERN.match(label) or label == "O":
        raise DataError(
            where, f"invalid entity type {label!r}; expected one word without spaces, '|', '[' or ']'", "invalid_tag"
        )
    return label


def checked_tags(tags: list[str], where_of, options: ReaderOptions, report: ReadReport) -> list[str]:
    """IOB2 tags after the conlleval repair (I- opening an entity -> B-), or DataError at the first bad tag.

    `where_of(i)` names token i (file:line or row). BIOES/BILOU tags are converted first (scheme auto or
    bioes; counted per sentence as `converted_bioes`). With `options.repair_tags` false an I- (or E-/L-) that
    opens an entity is an error (strict IOB2); otherwise each repair is counted and listed in the report.
    Example: checked_tags(["O", "I-PER"], str, ReaderOptions(), report) -> ["O", "B-PER"]
    """
    original = tags
    if options.scheme in ("auto", "bioes") and is_bioes(tags):
        tags = bioes_to_iob2(tags)
        report.notes["converted_bioes"] += 1
    for i, tag in enumerate(tags):
        if not TAG_PATTERN.match(tag):
            hint = " (BIOES/BILOU tags: --scheme auto or bioes)" if is_bioes([tag]) else ""
            expected = "O, B-TYPE or I-TYPE" if options.scheme != "bioes" else "O or a B-, I-, E-, S-, L- or U-TYPE"
            raise DataError(where_of(i), f"invalid tag {tag!r}; expected {expected}{hint}", "invalid_tag")
        if tag != "O":
            check_label(tag[2:], where_of(i))
    if not options.repair_tags:
        if (error := iob2_error(tags)) is not None:
            position, message = error
            if original[position] != tags[position]:
                message += f" (read from {original[position]})"
            raise DataError(where_of(position), message, "invalid_sequence")
        return tags
    repaired = iob1_to_iob2(tags)
    for i, (before, after) in enumerate(zip(tags, repaired)):
        if before != after:
            previous = original[i - 1] if i else None
            context = "starts an entity" if previous == "O" else f"follows {previous}"
            context = "starts the sentence" if i == 0 else context
            report.repair(where_of(i), f"{original[i]} {context}: read as {after}")
    return repaired


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


# --------------------------------------------------------------------------------------------- CoNLL


def read_conll(path: str | Path, options: ReaderOptions, policy: _Policy) -> Iterator[Example]:
    """CoNLL-style column files. IOB1 and IO are detected over the whole file (options.scheme="auto") and converted."""
    path = Path(path)
    sentences = list(_conll_sentences(path, policy))
    scheme = source_scheme([tags for _, (_, _, tags) in sentences], options.scheme, policy.report)
    for index, (first_line, tokens, tags) in sentences:
        tags = scheme_to_iob2(tags, scheme)
        try:
            tags = checked_tags(tags, lambda i, first=first_line: f"{path}:{first + i}", options, policy.report)
        except DataError as error:
            policy.handle(error)
            continue
        yield Example(f"{path.stem}-{index}", tokens, tags, source=f"{path}:{first_line}")


def source_scheme(tag_sequences: list[list[str]], scheme: str, report: ReadReport, plain_groups: bool = False) -> str:
    """The tag scheme of a whole file or dataset, counted in the report when it is converted as a whole.

    `scheme` unless it is "auto"; then "io" when no tag anywhere has a B-/I-/E-/S-/L-/U- prefix and some are `O`
    (Few-NERD; a column of POS tags has no `O` and stays an error), or with `plain_groups` (word/entity-group
    CSVs) whenever no tag has a prefix; "iob1" when I- opens entities and B- only splits them; else "iob2"
    (BIOES/BILOU sentences are converted one by one in `checked_tags`).
    Example: source_scheme([["O", "PER", "PER"]], "auto", report) -> "io"
    """
    if scheme == "auto":
        tags = {tag for sequence in tag_sequences for tag in sequence}
        if not any(_PREFIXED.match(tag) for tag in tags) and tags - {"O"} and (plain_groups or "O" in tags):
            scheme = "io"
        else:
            scheme = "iob1" if is_iob1(tag_sequences) else "iob2"
    if scheme in ("io", "iob1"):
        report.notes[f"converted_{scheme}"] += len(tag_sequences)
    return scheme


def scheme_to_iob2(tags: list[str], scheme: str) -> list[str]:
    """Tags of a source read in `scheme` as IOB2 (BIOES is left to `checked_tags`, which validates every tag).

    Example: scheme_to_iob2(["PER", "PER", "O"], "io") -> ["B-PER", "I-PER", "O"]
    """
    if scheme == "io":
        return _groups_to_iob2(tags)
    return iob1_to_iob2(tags) if scheme == "iob1" else tags


def is_comment_line(line: str) -> bool:
    """A `#` line before a sentence whose last field is no tag: CoNLL-U (`# sent_id = 3`), MultiCoNER (`# id ...`).

    A token `#` with its tag (`# O`, `#\tB-MISC`) is a token, not a comment.
    Example: is_comment_line("# id 4ab2 domain=en") -> True; is_comment_line("#\tO") -> False
    """
    return line.startswith("#") and not _TAG_LIKE.match(line.split()[-1])


def _conll_sentences(path: Path, policy: _Policy) -> Iterator[tuple[int, tuple[int, list[str], list[str]]]]:
    """(sentence index, (first line number, tokens, tags)) for every well-formed sentence of the file."""
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
        tokens, tags, error = [], [], None
        return result

    lines = split_lines(read_text(path, "CoNLL file"))  # decoded first: a bad byte names its line
    for line_number, line in enumerate(lines, start=1):
        if not line.strip() or line.startswith("-DOCSTART-"):
            if (sentence := flush()) is not None:
                yield sentence
            continue
        if not tokens and error is None and is_comment_line(line):
            policy.report.notes["comment_lines"] += 1
            continue
        if not tokens and error is None:
            first_line = line_number
        if error is not None:
            continue  # the rest of a sentence already rejected
        fields = line.split("\t") if "\t" in line else line.split()
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
        tokens.append(fields[0])
        tags.append(fields[-1].strip())
    if (sentence := flush()) is not None:
        yield sentence


# ---------------------------------------------------------------------------------- Hugging Face


def read_hf(name_or_path: str | Path, options: ReaderOptions, policy: _Policy) -> Iterator[Example]:
    """A `tokens` + `ner_tags` dataset: hub name (needs internet), `save_to_disk` folder, or local data file."""
    import datasets

    path = Path(name_or_path)
    if path.is_dir():
        dataset = datasets.load_from_disk(str(path))
    elif path.is_file():
        builder = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}.get(path.suffix, "json")
        dataset = datasets.load_dataset(builder, data_files=str(path), split="train")
    else:
        dataset = datasets.load_dataset(str(name_or_path), split=options.split)
    if isinstance(dataset, datasets.DatasetDict):
        if options.split not in dataset:
            raise DataError(str(name_or_path), f"no split {options.split!r}; splits are {sorted(dataset)}", "split")
        dataset = dataset[options.split]
    where = f"{name_or_path}[{options.split}]"
    for column in ("tokens", "ner_tags"):
        if column not in dataset.column_names:
            raise DataError(where, f"missing column {column!r}; columns are {dataset.column_names}", "missing_column")
    feature = dataset.features["ner_tags"]
    inner = getattr(feature, "feature", None)
    if inner is None and isinstance(feature, list):
        inner = feature[0]
    names = getattr(inner, "names", None)
    records = []
    for row, record in enumerate(dataset):
        tokens, ids = record["tokens"], record["ner_tags"]
        try:
            tags = [names[i] if names is not None else str(i) for i in ids]
        except (IndexError, TypeError):
            policy.handle(
                DataError(f"{where} row {row}", f"tag ids {ids} outside the tag names {names}", "invalid_tag")
            )
            continue
        if len(tokens) != len(tags):
            message = f"{len(tokens)} tokens but {len(tags)} tags"
            policy.handle(DataError(f"{where} row {row}", message, "length_mismatch"))
            continue
        records.append((row, record, tokens, tags))
    scheme = source_scheme([tags for *_, tags in records], options.scheme, policy.report)
    for row, record, tokens, tags in records:
        tags = scheme_to_iob2(tags, scheme)
        try:
            tags = checked_tags(tags, lambda i, row=row: f"{where} row {row} token {i}", options, policy.report)
        except DataError as error:
            policy.handle(error)
            continue
        yield Example(str(record.get("id", row)), list(tokens), tags, source=f"{where} row {row}")


# ------------------------------------------------------------------------------------------- CSV


def read_csv(path: str | Path, options: ReaderOptions, policy: _Policy) -> Iterator[Example]:
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
    up from the end of the previous entity on, exactly and then ignoring case.
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
            if start < 0:
                start = text.lower().find(word.lower(), cursor) if word else -1
            if start < 0:
                raise DataError(
                    where,
                    f"entity word {word!r} ({label}) not found in the text after character {cursor}"
                    " (entities must be listed in order of appearance)",
                    "entity_not_in_text",
                )
            end = start + len(word)
        spans.append((label, start, end))
        cursor = end
    return spans


def example_from_text(
    example_id: str, text: str, char_spans: list[tuple[str, int, int]], where: str, report: ReadReport
) -> Example:
    """Tokenise a text and turn character-level entity spans into IOB2 tags over the tokens."""
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
            report.notes["entities_snapped_to_tokens"] += 1
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


def _csv_wide(path: Path, header, rows, options: ReaderOptions, policy: _Policy) -> Iterator[Example]:
    id_columns = _id_columns(options)
    _require(path, header, options.text_column, options.entities_column, *id_columns)
    for row_number, line, row in rows:
        where = f"{path}:{line} (row {row_number})"
        try:
            text = row[options.text_column]
            if not text.strip():
                raise DataError(where, f"empty {options.text_column!r} cell", "empty_text")
            entities = parse_entity_list(row[options.entities_column], where)
            spans = locate_entities(text, entities, where)
            example_id = "-".join(row[c] for c in id_columns) if id_columns else f"{path.stem}-{row_number}"
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


def _csv_long(path: Path, header, rows, options: ReaderOptions, policy: _Policy) -> Iterator[Example]:
    id_columns = long_id_columns(header, options)
    if not id_columns:
        _require(path, header, "sentence_id")
    _require(path, header, *id_columns, options.word_column, options.tag_column)
    named = " ".join(id_columns)
    groups: list[tuple[tuple[str, ...], list[tuple[int, int, dict]]]] = []
    seen: dict[tuple[str, ...], int] = {}
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


def _groups_to_iob2(groups: list[str]) -> list[str]:
    """Plain entity groups per word -> IOB2; consecutive words of one group form one entity.

    Example: _groups_to_iob2(["PER", "PER", "O", "ORG"]) -> ["B-PER", "I-PER", "O", "B-ORG"]
    """
    tags, previous = [], "O"
    for group in groups:
        if group == "O":
            tags.append("O")
        elif not LABEL_PATTERN.match(group):
            tags.append(group)  # left for checked_tags to report
        else:
            tags.append(("I-" if group == previous else "B-") + group)
        previous = group
    return tags


# ----------------------------------------------------------------------------------------- JSONL


def read_jsonl(path: str | Path, options: ReaderOptions, policy: _Policy) -> Iterator[Example]:
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
