"""`ReaderOptions`: the options every reader takes; each stage that reads data exposes each as a flag of that name.

This module reads nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from instruct_ner.prompts.readers.schemes import SCHEMES

DATA_FORMATS = ("auto", "conll", "csv", "hf", "jsonl")  # readers; response formats: prompts.formats


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
