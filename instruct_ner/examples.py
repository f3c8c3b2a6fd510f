"""Examples (tokens + IOB2 tags over a surface text) and the span arithmetic every stage shares.

An `Example` is the unit that flows through the whole pipeline: readers make them, templates render
them, the parser and the tagger fill `pred_tags` for them, the scorer compares `tags` with `pred_tags`.
Every token has a character span (`offsets`) in `text`, so an entity can always be reported both as a
token span and as character offsets.

This module does not read files (see `prompts.readers`) and does not render prompts
(see `prompts.templates`). It knows IOB2 and writes IOB2 only; `iob1_to_iob2` is conlleval's repair of an I- that
opens an entity (readers and the tagger use it). Detecting and converting other schemes (IOB1 files, BIOES/BILOU,
IO) at read time is `prompts.readers.schemes`.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

from instruct_ner.errors import DataError  # noqa: F401  (re-exported: every stage catches it here)

TAG_PATTERN = re.compile(r"^(?:O|[BI]-[^\s]+)$")


@dataclass(frozen=True)
class Entity:
    """One entity: a label over tokens [token_start, token_end) and characters [start, end) of the text.

    `score`: the predictor's confidence in the entity, in [0, 1] (None where none was computed); what it measures
    is said where it is computed (`inference.confidence` for the generative path, `sft.crf` for the tagger).
    It does not enter equality: batching moves it in the last digits.
    """

    label: str
    token_start: int
    token_end: int
    start: int
    end: int
    text: str
    score: float | None = field(default=None, compare=False)  # the same entity at another batch size is equal

    def to_dict(self) -> dict:
        saved = {
            "text": self.text,
            "label": self.label,
            "token_start": self.token_start,
            "token_end": self.token_end,
            "start": self.start,
            "end": self.end,
        }
        if self.score is not None:
            saved["score"] = self.score
        return saved

    @classmethod
    def from_dict(cls, saved: dict) -> Entity:
        """The Entity of a JSONL record's entity dict (`to_dict`'s inverse; other keys are an error).

        Example: Entity.from_dict({"text": "EU", "label": "ORG", "token_start": 0, "token_end": 1, "start": 0,
            "end": 2}) -> Entity(label='ORG', token_start=0, token_end=1, start=0, end=2, text='EU')
        """
        return cls(**saved)


@dataclass
class Example:
    """Tokens with IOB2 tags. `text` is the surface text; token i is text[offsets[i][0]:offsets[i][1]].

    When no text is given the tokens are joined by single spaces (the CoNLL case).
    """

    id: str
    tokens: list[str]
    tags: list[str]
    text: str = ""
    offsets: list[tuple[int, int]] = field(default_factory=list)
    source: str = ""

    def __post_init__(self) -> None:
        if len(self.tokens) != len(self.tags):
            raise DataError(self.source or self.id, f"{len(self.tokens)} tokens but {len(self.tags)} tags")
        if not self.text and not self.offsets:
            self.text, self.offsets = join_tokens(self.tokens)
        self.offsets = [tuple(span) for span in self.offsets]

    @property
    def entities(self) -> list[Entity]:
        return [self.entity(label, s, e) for label, s, e in tags_to_spans(self.tags)]

    def entity(self, label: str, token_start: int, token_end: int, score: float | None = None) -> Entity:
        start, end = self.offsets[token_start][0], self.offsets[token_end - 1][1]
        return Entity(label, token_start, token_end, start, end, self.text[start:end], score)

    def to_record(self) -> dict:
        record = {"id": self.id, "text": self.text, "tokens": self.tokens, "offsets": self.offsets, "tags": self.tags}
        if self.source:
            record["source"] = self.source
        return record

    @classmethod
    def from_record(cls, record: dict, where: str = "") -> Example:
        """Build an Example from a JSONL record; `where` (file:line) is used in error messages.

        Types are checked: `tokens` a list of strings, `tags` a list of strings of the same length (required,
        also for text to be tagged: write "O" for every token), `text` a string, `offsets` [start, end]
        pairs inside the text, one per token, each token equal to the text at its offsets (the first that is
        not is named: `offsets_mismatch`).
        Example: Example.from_record({"id": 1, "tokens": ["EU"], "tags": ["B-ORG"]}).tags -> ["B-ORG"]
        """
        where = where or str(record.get("id", "?"))
        for key in ("id", "tokens", "tags"):
            if key not in record or record[key] is None:
                hint = ' (write "O" for every token of text that has no annotation)' if key == "tags" else ""
                message = f"record has no {key!r} field (fields: {sorted(record)}){hint}"
                raise DataError(where, message, "missing_field")
        tokens, tags = record["tokens"], record["tags"]
        for key, value in (("tokens", tokens), ("tags", tags)):
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                found = type(value).__name__ if not isinstance(value, list) else "a list with non-strings"
                raise DataError(where, f"{key!r} must be a list of strings, found {found}", "bad_type")
        if len(tokens) != len(tags):
            raise DataError(where, f"{len(tokens)} tokens but {len(tags)} tags", "length_mismatch")
        if isinstance(record["id"], (dict, list)):
            raise DataError(where, "'id' must be a string or a number", "bad_type")
        text, offsets = record.get("text", ""), record.get("offsets") or []
        if not isinstance(text, str):
            raise DataError(where, f"'text' must be a string, found {type(text).__name__}", "bad_type")
        if offsets or text:
            if not offsets and text and tokens:
                raise DataError(where, "record has a 'text' but no 'offsets' (one [start, end] per token)", "bad_type")
            valid = isinstance(offsets, list) and len(offsets) == len(tokens)
            valid = valid and all(
                isinstance(o, list | tuple) and len(o) == 2 and all(type(x) is int for x in o) and 0 <= o[0] <= o[1]
                for o in offsets
            )
            if not valid or (offsets and max(o[1] for o in offsets) > len(text)):
                raise DataError(where, "'offsets' must be one [start, end] pair inside 'text' per token", "bad_type")
            for i, (token, (start, end)) in enumerate(zip(tokens, offsets)):
                if text[start:end] != token:
                    message = (
                        f"token {i} {token!r} is not the text at its offsets [{start}, {end}], {text[start:end]!r}"
                    )
                    raise DataError(where, message + "; expected text[start:end] == token", "offsets_mismatch")
                if i and start < offsets[i - 1][1]:
                    raise DataError(
                        where,
                        f"token {i} {token!r} starts at {start}, before token {i - 1} ends ({offsets[i - 1][1]}); "
                        "expected tokens in text order, not overlapping",
                        "offsets_order",
                    )
        for i, token in enumerate(tokens):
            if not token or "\n" in token or "\r" in token:
                raise DataError(
                    where, f"token {i} is {token!r}; expected a non-empty token without a line break", "bad_token"
                )
        source = record.get("source", where)
        return cls(
            id=str(record["id"]),
            tokens=list(tokens),
            tags=list(tags),
            text=text,
            offsets=[tuple(o) for o in offsets],
            source=source if isinstance(source, str) else where,
        )


def join_tokens(tokens: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """Join tokens with single spaces and return the text with each token's character span.

    Example: join_tokens(["EU", "rejects"]) -> ("EU rejects", [(0, 2), (3, 10)])
    """
    offsets, position = [], 0
    for token in tokens:
        offsets.append((position, position + len(token)))
        position += len(token) + 1
    return " ".join(tokens), offsets


def snap_span(
    offsets: list[tuple[int, int]], start: int, end: int, bounds: tuple[list[int], list[int]] | None = None
) -> tuple[int, int, bool] | None:
    """The tokens a character span [start, end) touches: (first token, last token + 1, widened), where
    `widened` says the span did not fall on token bounds; None when it touches no token.

    `bounds` (from `token_bounds`) saves recomputing them when one text is snapped many times.
    Example: snap_span([(0, 2), (3, 10)], 1, 5) -> (0, 2, True); snap_span([(0, 2)], 0, 2) -> (0, 1, False)
    """
    starts, ends = bounds or token_bounds(offsets)  # offsets are sorted and disjoint
    first, last = bisect.bisect_right(ends, start), bisect.bisect_left(starts, end)
    if first >= last:
        return None
    return first, last, offsets[first][0] != start or offsets[last - 1][1] != end


def token_bounds(offsets: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """Token starts and ends, for repeated `snap_span` calls.

    Example: token_bounds([(0, 2), (3, 5)]) -> ([0, 3], [2, 5])
    """
    return [s for s, _ in offsets], [e for _, e in offsets]


def tags_to_spans(tags: list[str]) -> list[tuple[str, int, int]]:
    """Entity spans (label, start, end-exclusive) from IOB2 tags, read leniently as conlleval does.

    An I- tag that does not continue an entity of its type starts a new one, so invalid predicted
    sequences still yield spans (exactly what seqeval's default mode and conlleval count).
    Example: tags_to_spans(["B-PER", "I-PER", "O", "I-LOC"]) -> [("PER", 0, 2), ("LOC", 3, 4)]
    """
    spans: list[tuple[str, int, int]] = []
    label, start = None, 0
    for i, tag in enumerate(tags):
        prefix, _, kind = tag.partition("-")
        continues = prefix == "I" and kind == label
        if label is not None and not continues:
            spans.append((label, start, i))
            label = None
        if prefix in ("B", "I") and not continues:
            label, start = kind, i
    if label is not None:
        spans.append((label, start, len(tags)))
    return spans


def spans_to_tags(spans: list[tuple[str, int, int]], length: int) -> list[str]:
    """IOB2 tags of the given length from non-overlapping spans (label, start, end-exclusive).

    Example: spans_to_tags([("ORG", 0, 1), ("MISC", 2, 3)], 4) -> ["B-ORG", "O", "B-MISC", "O"]
    """
    tags = ["O"] * length
    for label, start, end in spans:
        tags[start] = f"B-{label}"
        for i in range(start + 1, end):
            tags[i] = f"I-{label}"
    return tags


def iob2_error(tags: list[str]) -> tuple[int, str] | None:
    """The first position that breaks IOB2 and what was expected there, or None if the tags are valid.

    Example: iob2_error(["B-ORG", "I-PER"]) -> (1, "I-PER follows B-ORG; expected B-PER, I-ORG or O")
    """
    previous = "O"
    for i, tag in enumerate(tags):
        if not TAG_PATTERN.match(tag):
            return i, f"invalid tag {tag!r}; expected O, B-TYPE or I-TYPE"
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            kind = tag[2:]
            after = f"follows {previous}" if previous != "O" else "starts an entity"
            if i == 0:
                after = "starts the sentence"
            allowed = f"B-{kind}" + (f", I-{previous[2:]}" if previous != "O" else "") + " or O"
            return i, f"{tag} {after}; expected {allowed}"
        previous = tag
    return None


def iob1_to_iob2(tags: list[str]) -> list[str]:
    """Convert IOB1 tags to IOB2: an I- tag that opens an entity becomes B-.

    Example: iob1_to_iob2(["I-ORG", "O", "I-PER", "B-PER"]) -> ["B-ORG", "O", "B-PER", "B-PER"]
    """
    converted, previous = [], "O"
    for tag in tags:
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            tag = "B-" + tag[2:]
        converted.append(tag)
        previous = tag
    return converted


def labels_of(tag_sequences) -> list[str]:
    """Sorted entity types found in tag sequences. Example: labels_of([["B-PER", "O"]]) -> ["PER"]"""
    return sorted({tag[2:] for tags in tag_sequences for tag in tags if tag != "O"})
