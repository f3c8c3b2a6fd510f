"""Grounding, the response parser's second half: the mentions a response format read from generated text + the
original tokens -> entities (token spans and character offsets) -> IOB2 tags, with diagnostics saying what could
not be used and why. (`inference/parse.py` is the `parse` stage's command around it.)

The parser is a chain of small steps, each a pure function:

1. `read_mentions`: the response format's own `read` splits the text into mentions and counts
   malformed lines (see `prompts.formats`); a last line cut off is `truncated` only when the caller says
   that generation stopped at its token limit (`hit_limit`), otherwise it is `malformed`;
2. `normalise_labels`: maps a written label onto the label set (case, common long names such as
   PERSON or LUOGO); unknown labels are dropped and counted;
3. `find_offsets`: finds each mention in the input text with a forward cursor, so repeated mentions land
   on successive occurrences. From the cursor, a match that starts and ends on token bounds is preferred,
   tried in order: the stated occurrence among exact matches, an exact match, a case-insensitive match, then
   the same after Unicode normalisation (NFC, typographic quotes and apostrophes as ASCII, non-breaking and
   other spaces as a space; counted as `normalised`), then ignoring case and spacing (`U.S .` vs `U.S.`);
   then the same for the mention without a list bullet (`- Berlin`); then all of it from the start of the
   text (counted as out of order). Offsets always point into the original text. Mentions found nowhere are
   dropped and counted as hallucinated;
4. `snap_to_tokens`: a match that cuts a word (`ilan` in `Milano`) is not an entity of the text: it is
   dropped and counted as `partial_word` (a boundary error), unless `snap_partial=True`, which widens it to
   the tokens it touches (counted as `snapped`);
5. `remove_overlaps`: left to right, an entity that overlaps one already kept is dropped (counted).
   Kept first: the earlier start, then the longer span, then the one listed first. This also removes a
   mention listed twice for a single occurrence.

Given the decoder's token scores (`Generated.token_logprobs`, `token_ends`), each mention gets its confidence
(`inference.confidence.mention_score`) as it is read, and carries it through every step to its entity's `score`.

Whatever the response, the result has exactly one IOB2 tag per token. The parser never raises on
model output; it only raises on a bad call (an unknown format). It is linear in the text and response
lengths for well-behaved output (positions are precomputed once per example, lookups are bisections).
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace

from instruct_ner.examples import Entity, Example, snap_span, spans_to_tags, token_bounds
from instruct_ner.inference.confidence import mention_score
from instruct_ner.prompts.formats import Mention, ReadMentions, aligned_occurrences, get_format
from instruct_ner.prompts.labels import LABEL_WRAPPERS

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
    partial_word: int = 0
    normalised: int = 0
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
    response: str,
    example: Example,
    labels: list[str],
    response_format: str = "entity_list",
    hit_limit: bool = False,
    snap_partial: bool = False,
    token_scores: tuple[list[float], list[int]] | None = None,
    score_method: str = "sequence",
) -> ParseResult:
    """Parse a response about `example` into entities and IOB2 tags.

    `hit_limit`: generation stopped at its token limit (a cut last line is `truncated`, not `malformed`).
    `snap_partial`: widen a mention that cuts a word to the whole tokens (default: drop it, `partial_word`).
    `token_scores`: (log-probability, end character) of each response token, for each entity's `score`.
    Example: parse_response("EU | ORG", Example("1", ["EU", "rejects"], ["O", "O"]), ["ORG"]).pred_tags
        -> ["B-ORG", "O"]
    """
    diagnostics = ParseDiagnostics(empty_response=not response.strip())
    read = read_mentions(response, example, response_format, diagnostics, hit_limit)
    mentions = read.mentions
    if token_scores is not None:
        logprobs, ends = token_scores
        mentions = [replace(m, score=mention_score(m, logprobs, ends, score_method)) for m in mentions]
    mentions = normalise_labels(mentions, labels, diagnostics)
    spans = find_offsets(mentions, example, diagnostics)
    token_spans = snap_to_tokens(spans, example, diagnostics, snap_partial)
    kept = remove_overlaps(token_spans, diagnostics)
    entities = [example.entity(label, start, end, score) for label, start, end, score in kept]
    diagnostics.entities = len(entities)
    tags = spans_to_tags([(label, start, end) for label, start, end, _ in kept], len(example.tokens))
    return ParseResult(entities, tags, diagnostics)


def read_mentions(
    response: str, example: Example, response_format: str, diagnostics: ParseDiagnostics, hit_limit: bool = False
):
    read: ReadMentions = get_format(response_format).read(response, example.text, hit_limit=hit_limit)
    diagnostics.lines, diagnostics.mentions = read.lines, len(read.mentions)
    diagnostics.malformed, diagnostics.truncated = read.malformed, read.truncated
    diagnostics.no_entity_marker = read.no_entity_marker
    return read


def normalise_label(label: str, labels: list[str]) -> str | None:
    """The label set's spelling of a written label, or None if it is not in the set.

    Example: normalise_label("person", ["PER", "LOC"]) -> "PER"; normalise_label("DATE", ["PER"]) -> None
    """
    by_upper = {known.upper(): known for known in labels}
    upper = label.strip().strip(LABEL_WRAPPERS).upper()
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
        kept.append(replace(mention, label=label))
    return kept


BULLET = re.compile(r"^[-*•]\s+")
# typographic characters written the ASCII way (NFC is applied first)
CHARACTER_MAP = str.maketrans(
    {
        **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032\u02bc\u00b4\u0060", "'"),
        **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb", '"'),
        **dict.fromkeys("\u00a0\u2007\u202f\u2009\u200a\u2002\u2003\u2004\u2005\u2006\u3000", " "),
        **dict.fromkeys("\u2010\u2011\u2012\u2013", "-"),
    }
)


def normalise_text(text: str) -> str:
    """The form in which the parser compares texts when the exact text is not found.

    Example: normalise_text("dell\u2019Ufficio\u00a0di citta\u0300") -> "dell'Ufficio di città"
    """
    return unicodedata.normalize("NFC", text).translate(CHARACTER_MAP)


class _View:
    """A transformed copy of a text that remembers, for each of its characters, where it came from."""

    def __init__(self, text: str, starts: list[int], ends: list[int]):
        self.text, self.starts, self.ends = text, starts, ends

    @classmethod
    def identity(cls, text: str) -> _View:
        return cls(text, list(range(len(text))), list(range(1, len(text) + 1)))

    def lower(self) -> _View:
        """Lower case, one character for one (a character whose lower case is longer is kept)."""
        return _View("".join(_lower(c) for c in self.text), self.starts, self.ends)

    def squeezed(self) -> _View:
        keep = [k for k, c in enumerate(self.text) if not c.isspace()]
        return _View("".join(self.text[k] for k in keep), [self.starts[k] for k in keep], [self.ends[k] for k in keep])

    @classmethod
    def normalised(cls, text: str) -> _View:
        """`normalise_text` applied per base character and its combining marks, positions kept."""
        chars, starts, ends = [], [], []
        k = 0
        while k < len(text):
            j = k + 1
            while j < len(text) and unicodedata.combining(text[j]):
                j += 1
            for c in normalise_text(text[k:j]):
                chars.append(c)
                starts.append(k)
                ends.append(j)
            k = j
        return cls("".join(chars), starts, ends)

    def position(self, cursor: int) -> int:
        """The first position of the view whose character starts at or after `cursor` in the original."""
        return bisect.bisect_left(self.starts, cursor)


def _lower(c: str) -> str:
    lowered = c.lower()
    return lowered if len(lowered) == 1 else c


class _Finder:
    """Searches one example's text for mentions, exactly, then ignoring case, Unicode variants and spacing.

    Every view of the text (exact, lower case, normalised, normalised lower case, squeezed) is built once;
    a search is a `str.find` from the cursor's position in a view, then a set lookup of the token bounds.
    """

    def __init__(self, example: Example):
        self.example = example
        self.text = example.text
        self.token_starts = {s for s, _ in example.offsets}
        self.token_ends = {e for _, e in example.offsets}
        exact = _View.identity(self.text)
        normalised = _View.normalised(self.text)
        self.views = [  # (view, needle transform, found by normalising)
            (exact, lambda n: n, False),
            (exact.lower(), lambda n: "".join(_lower(c) for c in n), False),
            (normalised, normalise_text, True),
            (normalised.lower(), lambda n: "".join(_lower(c) for c in normalise_text(n)), True),
            (
                normalised.lower().squeezed(),
                lambda n: "".join(_lower(c) for c in normalise_text(n) if not c.isspace()),
                True,
            ),
        ]
        self.normalised = 0

    def find(self, mention: Mention, cursor: int) -> tuple[int, int] | None:
        """The mention as written; failing that, without a list bullet ("- Berlin"; never "1.": "1. FC Cologne")."""
        span = self._find(mention.text, mention.occurrence, cursor)
        unbulleted = BULLET.sub("", mention.text)
        if span is None and unbulleted and unbulleted != mention.text:
            span = self._find(unbulleted, mention.occurrence, cursor)
        return span

    def _aligned(self, start: int, end: int) -> bool:
        return start in self.token_starts and end in self.token_ends

    def _find(self, needle: str, occurrence: int | None, cursor: int) -> tuple[int, int] | None:
        """The best span: on token bounds in the first view that has one, else the first span that cuts a word."""
        loosest, transform, _ = self.views[-1]
        if (target := transform(needle)) and loosest.text.find(target, loosest.position(cursor)) < 0:
            return None  # in no view: one search instead of one per view
        if occurrence and occurrence > 1:
            aligned = aligned_occurrences(self.text, self.example.offsets, needle, cursor)
            if len(aligned) >= occurrence:
                return aligned[occurrence - 1]
        partial = None
        for view, transform, by_normalising in self.views:
            target = transform(needle)
            if not target:
                continue
            k = view.text.find(target, view.position(cursor))
            while k >= 0:
                start, end = view.starts[k], view.ends[k + len(target) - 1]
                if self._aligned(start, end):
                    if by_normalising and (
                        normalise_text(needle) != needle
                        or normalise_text(self.text[start:end]) != self.text[start:end]
                    ):
                        self.normalised += 1
                    return start, end
                if partial is None:
                    partial = (start, end)
                k = view.text.find(target, k + 1)
        return partial


def find_offsets(
    mentions: list[Mention], example: Example, diagnostics: ParseDiagnostics
) -> list[tuple[str, int, int]]:
    """Character spans (label, start, end, score) of the mentions, found with a forward cursor."""
    finder, spans, cursor = _Finder(example), [], 0
    for mention in mentions:
        if mention.start is not None and mention.end is not None:
            span = (mention.start, mention.end)
        else:
            span = finder.find(mention, cursor)
            # Not ahead of the cursor, or ahead only inside a longer word (`Rossi` in a later `Rossini`): a whole-word
            # occurrence earlier in the text is the mention, out of order.
            if cursor > 0 and (span is None or not finder._aligned(*span)):
                earlier = finder.find(mention, 0)
                if earlier is not None and (span is None or finder._aligned(*earlier)):
                    span = earlier
                    diagnostics.out_of_order += 1
        if span is None:
            diagnostics.hallucinated += 1
            diagnostics.dropped.append({"line": mention.line, "text": mention.text, "reason": "hallucinated"})
            continue
        spans.append((mention.label, *span, mention.score))
        cursor = span[1]
    diagnostics.normalised += finder.normalised
    return spans


def snap_to_tokens(
    spans: list[tuple[str, int, int]], example: Example, diagnostics: ParseDiagnostics, snap_partial: bool = False
) -> list[tuple[str, int, int]]:
    """Token spans (label, first token, last token + 1, ...) of character spans (label, start, end, ...) that start
    and end on token bounds (what follows the end, the score, is carried along).

    A span that cuts a token is dropped as `partial_word`, or with `snap_partial` widened to the tokens it
    touches (`snapped`).
    Example: for the tokens ["Milano", "e"], ("LOC", 1, 5) ("ilan") is dropped; snapped it is ("LOC", 0, 1)
    """
    token_spans, bounds = [], token_bounds(example.offsets)
    for label, start, end, *rest in spans:
        snapped = snap_span(example.offsets, start, end, bounds)
        if snapped is None:
            diagnostics.hallucinated += 1  # only whitespace matched
            diagnostics.dropped.append({"text": example.text[start:end], "reason": "hallucinated"})
            continue
        first, last, widened = snapped
        if widened:
            if not snap_partial:
                diagnostics.partial_word += 1
                diagnostics.dropped.append({"text": example.text[start:end], "reason": "partial_word"})
                continue
            diagnostics.snapped += 1
        token_spans.append((label, first, last, *rest))
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
        label, start, end, *rest = token_spans[k]
        if start < end_of_kept:
            diagnostics.overlaps_removed += 1
            continue
        kept.append((label, start, end, *rest))
        end_of_kept = end
    return kept
