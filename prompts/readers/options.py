"""`ReaderOptions`: the options every reader takes; each stage that reads data exposes each as a flag of that name.

The CSV-only fields carry `metadata["group"]`, so that `--help` lists them under their own heading
(`instruct_ner.config.build_parser`). This module reads nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from instruct_ner.prompts.readers.schemes import SCHEMES

DATA_FORMATS = ("auto", "conll", "csv", "hf", "jsonl")  # readers; response formats: prompts.formats
UNITS = ("sentence", "document")  # what one example of a CoNLL file is
CSV_GROUP = "CSV input (only for .csv data)"


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
            "help": "tag scheme of the source, converted to IOB2; auto detects IOB1, IO (plain types such as PER "
            "beside O, no prefix anywhere in the source) and BIOES/IOBES/BILOU (S-/E-, U-/L-)",
            "choices": list(SCHEMES),
        },
    )
    repair_tags: bool = field(
        default=True,
        metadata={
            "help": "read an I- that opens an entity as B- (as conlleval does), listing each repair; "
            "false = refuse such sentences (strict IOB2)"
        },
    )
    text_column: str = field(
        default="text", metadata={"help": "wide layout: column with the text", "group": CSV_GROUP}
    )
    entities_column: str = field(
        default="entities",
        metadata={"help": "wide layout: column with the [{word, entity_group}] list", "group": CSV_GROUP},
    )
    id_column: list[str] | None = field(
        default=None,
        metadata={
            "help": "id column(s); in the long layout, rows with the same ids form one text (default: a document "
            "id column such as email_id, doc_id, text_id or id, and/or sentence_id)",
            "group": CSV_GROUP,
        },
    )
    word_column: str = field(
        default="word", metadata={"help": "long layout: column with one word per row", "group": CSV_GROUP}
    )
    tag_column: str = field(
        default="entity_group",
        metadata={"help": "long layout: entity group (or B-/I- tag) of the word", "group": CSV_GROUP},
    )
    csv_layout: str = field(
        default="auto",
        metadata={
            "help": "wide (one row per text) or long (one row per word); auto = wide if the entities column exists",
            "choices": ["auto", "wide", "long"],
            "group": CSV_GROUP,
        },
    )
    delimiter: str | None = field(default=None, metadata={"help": "sniffed when not given", "group": CSV_GROUP})
    split_sentences: bool = field(
        default=False,
        metadata={"help": "wide layout: split texts into sentences (never inside an entity)", "group": CSV_GROUP},
    )
    unit: str = field(
        default="sentence",
        metadata={
            "help": "CoNLL input: one example per sentence, or per -DOCSTART- document (its sentences joined by "
            "line breaks; long documents are cut into windows at prediction)",
            "choices": list(UNITS),
        },
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
