"""The response parser: generated text + the original tokens -> entities (token spans and character
offsets) -> IOB2 tags, with diagnostics saying what could not be used and why.

The parser is a chain of small steps, each a pure function:

1. `read_mentions`: the response format's own `from_str` splits the text into mentions and counts
   malformed and truncated lines (see `prompts.formats`);
2. `normalise_labels`: maps a written label onto the label set (case, common long names such as
   PERSON or LUOGO); unknown labels are dropped and counted;
3. `find_offsets`: finds each mention in the input text with a forward cursor, so repeated mentions land
   on successive occurrences. Tried in order from the cursor: the stated occurrence among whole-token
   matches, the first whole-token exact match, any exact match, a case-insensitive match, a match that
   ignores case and spacing (`U.S .` vs `U.S.`); then the same for the mention without a list bullet
   (`- Berlin`); then all of it from the start of the text (counted as out of order). Mentions found
   nowhere are dropped and counted as hallucinated;
4. `snap_to_tokens`: widens a character span to the tokens it touches (counted when it had to widen);
5. `remove_overlaps`: left to right, an entity that overlaps one already kept is dropped (counted).
   Kept first: the earlier start, then the longer span, then the one listed first. This also removes a
   mention listed twice for a single occurrence.

Whatever the response, the result has exactly one IOB2 tag per token. The parser never raises on
model output; it only raises on a bad call (an unknown format).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from instruct_ner.prompts.examples import Entity, Example, snap_span, spans_to_tags
from instruct_ner.prompts.formats import Mention, ReadMentions, aligned_occurrences, get_format

LABEL_ALIASES = {
    "PERSON": "PER",
    "PERSONS": "PER",
    "PEOPLE": "PER",
    "PERSONA": "PER",
    "PERSONE": "PER",
    "ORGANIZATION": "ORG",
    "ORGANISATION": "ORG",
    "ORGANIZZAZIONE": "ORG",
    "COMPANY": "ORG",
    "AZIENDA": "ORG",
    "LOCATION": "LOC",
    "PLACE": "LOC",
    "LUOGO": "LOC",
    "GPE": "LOC",
    "MISCELLANEOUS": "MISC",
    "VARIE": "MISC",
    "MAIL": "EMAIL",
    "E-MAIL": "EMAIL",
    "TELEPHONE": "PHONE",
    "TELEFONO": "PHONE",
    "DATA": "DATE",
    "IMPORTO": "MONEY",
    "AMOUNT": "MONEY",
    "CODICE": "CODE",
}


@dataclass
class ParseDiagnostics:
    """Counts of what the parser saw; `entities` is how many made it into `pred_tags`."""

    lines: int = 0
    mentions: int = 0
    entities: int = 0
    malformed: int = 0
    truncated: int = 0
    unknown_label: int = 0
    hallucinated: int = 0
    out_of_order: int = 0
    snapped: int = 0
    overlaps_removed: int = 0
    empty_response: bool = False
    no_entity_marker: bool = False
    dropped: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def total_diagnostics(diagnostics: Iterable[dict]) -> Counter:
    """Every count (and flag, as 0/1) of many records' parse diagnostics, summed: what parse, score and
    compare report. Example: total_diagnostics([{"hallucinated": 1}, {"hallucinated": 2}])["hallucinated"] -> 3
    """
    totals: Counter = Counter()
    for record_diagnostics in diagnostics:
        for key, value in record_diagnostics.items():
            if isinstance(value, (int, bool)):
                totals[key] += int(value)
    return totals


@dataclass
class ParseResult:
    entities: list[Entity]
    pred_tags: list[str]
    diagnostics: ParseDiagnostics


def parse_response(
    response: str, example: Example, labels: list[str], response_format: str = "entity_list"
) -> ParseResult:
    """Parse a response about `example` into entities and IOB2 tags.

    Example: parse_response("EU | ORG", Example("1", ["EU", "rejects"], ["O", "O"]), ["ORG"]).pred_tags
        -> ["B-ORG", "O"]
    """
    diagnostics = ParseDiagnostics(empty_response=not response.strip())
    read = read_mentions(response, example, response_format, diagnostics)
    mentions = normalise_labels(read.mentions, labels, diagnostics)
    spans = find_offsets(mentions, example, diagnostics)
    token_spans = snap_to_tokens(spans, example, diagnostics)
    kept = remove_overlaps(token_spans, diagnostics)
    entities = [example.entity(label, start, end) for label, start, end in kept]
    diagnostics.entities = len(entities)
    return ParseResult(entities, spans_to_tags(kept, len(example.tokens)), diagnostics)


def read_mentions(response: str, example: Example, response_format: str, diagnostics: ParseDiagnostics):
    read: ReadMentions = get_format(response_format).from_str(response, example.text)
    diagnostics.lines, diagnostics.mentions = read.lines, len(read.mentions)
    diagnostics.malformed, diagnostics.truncated = read.malformed, read.truncated
    diagnostics.no_entity_marker = read.no_entity_marker
    return read


def normalise_label(label: str, labels: list[str]) -> str | None:
    """The label set's spelling of a written label, or None if it is not in the set.

    Example: normalise_label("person", ["PER", "LOC"]) -> "PER"; normalise_label("DATE", ["PER"]) -> None
    """
    by_upper = {known.upper(): known for known in labels}
    upper = label.strip().strip("[]()<>*`'\"").upper()
    if upper in by_upper:
        return by_upper[upper]
    alias = LABEL_ALIASES.get(upper)
    return by_upper.get(alias) if alias else None


def normalise_labels(mentions: list[Mention], labels: list[str], diagnostics: ParseDiagnostics) -> list[Mention]:
    kept = []
    for mention in mentions:
        label = normalise_label(mention.label, labels)
        if label is None:
            diagnostics.unknown_label += 1
            diagnostics.dropped.append({"line": mention.line, "text": mention.text, "reason": "unknown_label"})
            continue
        kept.append(Mention(mention.text, label, mention.line, mention.occurrence, mention.start, mention.end))
    return kept


BULLET = re.compile(r"^[-*•]\s+")


class _Finder:
    """Searches one example's text for mentions, exactly and then ignoring case and spacing."""

    def __init__(self, example: Example):
        self.example = example
        self.text = example.text
        self.lower = example.text.lower()
        self.squeezed_positions = [i for i, c in enumerate(self.text) if not c.isspace()]
        self.squeezed = "".join(self.lower[i] for i in self.squeezed_positions)

    def find(self, mention: Mention, cursor: int) -> tuple[int, int] | None:
        """The mention as written; failing that, without a list bullet ("- Berlin"; never "1.": "1. FC Cologne")."""
        span = self._find(mention.text, mention.occurrence, cursor)
        unbulleted = BULLET.sub("", mention.text)
        if span is None and unbulleted and unbulleted != mention.text:
            span = self._find(unbulleted, mention.occurrence, cursor)
        return span

    def _find(self, needle: str, occurrence: int | None, cursor: int) -> tuple[int, int] | None:
        aligned = aligned_occurrences(self.text, self.example.offsets, needle, cursor)
        if occurrence and len(aligned) >= occurrence:
            return aligned[occurrence - 1]
        if aligned:
            return aligned[0]
        if (start := self.text.find(needle, cursor)) >= 0:
            return start, start + len(needle)
        if (start := self.lower.find(needle.lower(), cursor)) >= 0:
            return start, start + len(needle)
        squeezed_needle = "".join(needle.lower().split())
        if not squeezed_needle:
            return None
        squeezed_cursor = next((k for k, i in enumerate(self.squeezed_positions) if i >= cursor), None)
        if squeezed_cursor is None:
            return None
        k = self.squeezed.find(squeezed_needle, squeezed_cursor)
        if k < 0:
            return None
        return self.squeezed_positions[k], self.squeezed_positions[k + len(squeezed_needle) - 1] + 1


def find_offsets(
    mentions: list[Mention], example: Example, diagnostics: ParseDiagnostics
) -> list[tuple[str, int, int]]:
    """Character spans (label, start, end) of the mentions, found with a forward cursor."""
    finder, spans, cursor = _Finder(example), [], 0
    for mention in mentions:
        if mention.start is not None and mention.end is not None:
            span = (mention.start, mention.end)
        else:
            span = finder.find(mention, cursor)
            if span is None and cursor > 0 and (span := finder.find(mention, 0)) is not None:
                diagnostics.out_of_order += 1
        if span is None:
            diagnostics.hallucinated += 1
            diagnostics.dropped.append({"line": mention.line, "text": mention.text, "reason": "hallucinated"})
            continue
        spans.append((mention.label, *span))
        cursor = span[1]
    return spans


def snap_to_tokens(
    spans: list[tuple[str, int, int]], example: Example, diagnostics: ParseDiagnostics
) -> list[tuple[str, int, int]]:
    """Token spans (label, first token, last token + 1) covering each character span."""
    token_spans = []
    for label, start, end in spans:
        snapped = snap_span(example.offsets, start, end)
        if snapped is None:
            diagnostics.hallucinated += 1  # only whitespace matched
            continue
        first, last, widened = snapped
        if widened:
            diagnostics.snapped += 1
        token_spans.append((label, first, last))
    return token_spans


def remove_overlaps(
    token_spans: list[tuple[str, int, int]], diagnostics: ParseDiagnostics
) -> list[tuple[str, int, int]]:
    """Keep, left to right, spans that overlap no kept span (earlier start first, then longer, then listed first).

    Example: remove_overlaps([("ORG", 0, 2), ("LOC", 1, 3), ("PER", 3, 4)], d) -> [("ORG", 0, 2), ("PER", 3, 4)]
    """
    order = sorted(range(len(token_spans)), key=lambda k: (token_spans[k][1], -token_spans[k][2], k))
    kept, end_of_kept = [], 0
    for k in order:
        label, start, end = token_spans[k]
        if start < end_of_kept:
            diagnostics.overlaps_removed += 1
            continue
        kept.append((label, start, end))
        end_of_kept = end
    return kept
