r"""The `inline` response format: the input text rewritten with each entity bracketed in place:

    [EU | ORG] rejects [German | MISC] call to boycott [British | MISC] lamb .

A backslash escapes what would otherwise be read as markup: inside an entity every `\`, `[`, `]` and `|` is
written `\\`, `\[`, `\]`, `\|`; outside entities every `[` is written `\[`, and a `\` that precedes one of
those four characters (or ends a stretch of plain text) is doubled. Texts without those characters (almost
all) are copied unchanged, and the round trip is exact for every text.

Everything about the format is here: render, read, the decoding constraint (`InlineAutomaton`), the
new-token bound and the per-row regex. Reading only splits the response into mentions (pinned to offsets
when the response reproduces the text); grounding them is `inference.grounding`'s job.
"""

from __future__ import annotations

import bisect
import re
from enum import IntEnum

from instruct_ner.examples import Example
from instruct_ner.prompts.formats.base import (
    INF,
    ByteAutomaton,
    LabelTrie,
    Mention,
    ReadMentions,
    ResponseFormat,
    RowText,
    TokenSpellings,
    labels_regex,
    regex_escape,
    word_bounds,
)
from instruct_ner.prompts.formats.entity_list import line_bound

SPECIAL = "\\[]|"
# an entity at a `[`: escaped or plain characters (no newline), ` | `, a label, `]`
INLINE_ENTITY = re.compile(r"\[((?:\\[\\\[\]|]|[^\\\[\]|\n])+?) \| ([^\[\]|\n]+?)\]")
UNESCAPE = re.compile(r"\\([\\\[\]|])")
_SPECIAL = frozenset(SPECIAL.encode())  # what the format escapes inside an entity
_BACKSLASH, _OPEN, _CLOSE = 0x5C, 0x5B, 0x5D
_SEP = b" | "


def escapable(text: str) -> int:
    """How many characters of a text the inline format may escape. Example: escapable("AT|T [x]") -> 3"""
    return sum(c in SPECIAL for c in text)


def escape_entity(text: str) -> str:
    """Entity text as the inline format writes it. Example: escape_entity("AT|T [x]") -> "AT\\|T \\[x\\]" """
    return "".join("\\" + c if c in SPECIAL else c for c in text)


def escape_plain(text: str) -> str:
    """Text outside entities as the inline format writes it: `[` escaped, a `\\` doubled where it would escape.

    Example: escape_plain("a [b] c") -> "a \\[b] c"
    """
    out = []
    for i, c in enumerate(text):
        if c == "[" or (c == "\\" and (i + 1 == len(text) or text[i + 1] in SPECIAL)):
            out.append("\\")
        out.append(c)
    return "".join(out)


class InlineFormat(ResponseFormat):
    """The input text with each entity written in place as `[text | LABEL]`."""

    name = "inline"
    version = 1
    description = "the input text rewritten with each entity marked in place as `[text | LABEL]`"

    def render(self, example: Example) -> str:
        """Example: "EU rejects German call" (B-ORG O B-MISC O) -> "[EU | ORG] rejects [German | MISC] call" """
        pieces, cursor = [], 0
        for entity in example.entities:
            pieces.append(escape_plain(example.text[cursor : entity.start]))
            pieces.append(f"[{escape_entity(entity.text)} | {entity.label}]")
            cursor = entity.end
        pieces.append(escape_plain(example.text[cursor:]))
        return "".join(pieces)

    def read(self, response: str, text: str | None = None, hit_limit: bool = False) -> ReadMentions:
        """Mentions in order; pinned to offsets in `text` when the response reproduces the text (spacing aside).

        The response is scanned left to right: `\\` + a special character is that character, a `[` that
        opens `[text | LABEL]` is an entity, anything else is plain text. A bracket never closed is
        `malformed`, or `truncated` when generation stopped at its token limit (`hit_limit`).
        """
        read = ReadMentions(lines=len(response.split("\n")) if response.strip() else 0)
        plain_parts: list[str] = []
        found: list[tuple[re.Match, int, int, str]] = []  # (match, plain start, plain end, entity text)
        plain_length, i, unclosed, stray = 0, 0, False, 0
        while i < len(response):
            c = response[i]
            if c == "\\" and i + 1 < len(response) and response[i + 1] in SPECIAL:
                plain_parts.append(response[i + 1])
                plain_length, i = plain_length + 1, i + 2
                continue
            if c == "[":
                if (match := INLINE_ENTITY.match(response, i)) is not None:
                    inner = UNESCAPE.sub(r"\1", match.group(1))
                    found.append((match, plain_length, plain_length + len(inner), inner))
                    plain_parts.append(inner)
                    plain_length, i = plain_length + len(inner), match.end()
                    continue
                closing = response.find("]", i)
                if closing < 0:
                    unclosed = True  # a bracket never closed: cut by the token limit, or malformed
                elif "\n" not in response[i:closing]:
                    stray += 1
            plain_parts.append(c)
            plain_length, i = plain_length + 1, i + 1
        plain = "".join(plain_parts)
        if unclosed:
            if hit_limit:
                read.truncated += 1
            else:
                read.malformed += 1
        if text is None or "[" not in text:
            read.malformed += stray  # a bracketed stretch that is not `[text | LABEL]`
        pin = _plain_to_text_map(plain, text) if text is not None else None
        # the text copied back without a bracket is this format's way of saying "no entity"
        read.no_entity_marker = not found and not unclosed and not stray and pin is not None
        line_starts = [m.start() for m in re.finditer(r"^", response, flags=re.MULTILINE)]
        for match, start, end, inner in found:
            line = bisect.bisect_right(line_starts, match.start())
            label = match.group(2).strip()
            label_start = match.start(2) + len(match.group(2)) - len(match.group(2).lstrip())
            where = {"at": (match.start(), match.end()), "label_at": (label_start, label_start + len(label))}
            mention = Mention(inner.strip(), label, line, **where)
            if pin is not None:
                lead = len(inner) - len(inner.lstrip())
                trail = len(inner) - len(inner.rstrip())
                pinned_start, pinned_end = pin(start + lead), pin(end - 1 - trail)
                if pinned_start is not None and pinned_end is not None:
                    mention = Mention(mention.text, label, line, None, pinned_start, pinned_end + 1, **where)
            read.mentions.append(mention)
        return read

    def automaton(
        self, example: Example, labels: LabelTrie, tokens: TokenSpellings, end_string: bytes = b""
    ) -> InlineAutomaton:
        """The instruction style's end string is not used: the copy of the text ends the row."""
        return InlineAutomaton(RowText.from_example(example.text, example.offsets, False), labels, tokens)

    def new_token_bound(self, text: str, text_tokens: int, words: int | None = None, label_tokens: int = 2) -> int:
        """The text's own tokens, per entity `[`, ` |`, the label (`label_tokens`), `]` and one token for a
        span that splits differently (entities as `EntityListFormat` counts them), and per character the
        format escapes (`escapable`) its backslash: two tokens at most (the backslash, and the token it splits).

        Example: InlineFormat().new_token_bound("EU rejects ...", 22, words=14) -> 22 + 6 * 9 = 76
        """
        return text_tokens + (label_tokens + 4) * line_bound(text_tokens, words) + 2 * escapable(text)

    def regex(self, example: Example, labels: list[str]) -> str:
        """The text copied with `[` inserted at word starts and ` | LABEL]` at later word ends of the same
        entity (no newline inside one), the format's escapes written as the constraint writes them (outside
        entities `[` as `\\[` and every `\\` doubled), one optional leading space and the text's trailing
        whitespace optional: no hallucinated span, no unknown label, no unclosed or stray bracket.

        It says exactly what the constraint (`InlineAutomaton`) allows; its cost is size: markup balance over
        a fixed text needs the in/out state at every word start, built by halving the text, so it grows with
        the square of a line's words (~4,700 characters for a median CoNLL-2003 sentence, ~14,000 for an
        e-mail). Lines are independent (an entity never spans a newline).
        A `\\` in plain text not before a special character, which `render` writes single, must be doubled here
        (as the constraint writes it); the bundled data has none.
        Example: InlineFormat().regex(Example("x", ["EU"], ["B-ORG"]), ["ORG"]) -> " ?(?:EU|\\[EU \\| (?:ORG)\\])"
        """
        text, starts, ends = word_bounds(example.text, example.offsets, False)
        last = len(text.rstrip())
        close = f" \\| {labels_regex(labels)}\\]"
        start_set = set(starts)
        points = sorted({0, last} | {p for p in starts if p <= last})
        pieces, chunk = [], [points[0]]
        for p in points[1:]:
            chunk.append(p)
            if "\n" in text[chunk[-2] : p]:  # no entity runs on past this segment: the state after it is outside
                pieces.append(_chain(text, chunk, start_set, ends, close))
                chunk = [p]
        if len(chunk) > 1:
            pieces.append(_chain(text, chunk, start_set, ends, close))
        tail = "".join(f"(?:{regex_escape(c)}" for c in text[last:]) + ")?" * (len(text) - last)
        return " ?" + "".join(pieces) + tail


def _alt(options: list[str | None]) -> str | None:
    kept = [o for o in options if o is not None]
    if not kept:
        return None
    return kept[0] if len(kept) == 1 else "(?:" + "|".join(kept) + ")"


def _chain(text: str, points: list[int], starts: set, ends: list[int], close: str) -> str:
    """The regex from outside at points[0] to outside at points[-1] (points: word starts; a segment runs from
    one to the next and an entity may close at any word end inside it), built by halving with the in/out state
    at the middle point."""

    def out(piece: str) -> str:
        return regex_escape("".join("\\" + c if c in "[\\" else c for c in piece))

    def ent(piece: str) -> str | None:
        return None if "\n" in piece else regex_escape(escape_entity(piece))

    def segment(k: int) -> dict:
        p, q = points[k], points[k + 1]
        inner = [e for e in ends[bisect.bisect_right(ends, p) : bisect.bisect_right(ends, q)] if "\n" not in text[p:e]]
        closed = [ent(text[p:e]) + close + out(text[e:q]) for e in inner]  # the entity's text up to e, closed
        opening = p in starts
        return {
            ("o", "o"): _alt([out(text[p:q]), *(["\\[" + c for c in closed] if opening else [])]),
            ("o", "i"): "\\[" + ent(text[p:q]) if opening and ent(text[p:q]) is not None else None,
            ("i", "i"): ent(text[p:q]),
            ("i", "o"): _alt(closed),
        }

    def span(a: int, b: int) -> dict:
        if b - a == 1:
            return segment(a)
        m = (a + b) // 2
        left, right = span(a, m), span(m, b)
        joined = {}
        for s in "oi":
            for t in "oi":
                joined[s, t] = _alt(
                    [left[s, r] + right[r, t] for r in "oi" if left[s, r] is not None and right[r, t] is not None]
                )
        return joined

    return span(0, len(points) - 1)["o", "o"] or ""


def _plain_to_text_map(plain: str, text: str):
    """A function from positions in `plain` to positions in `text` if both have the same non-space characters."""
    plain_positions = [i for i, c in enumerate(plain) if not c.isspace()]
    text_positions = [i for i, c in enumerate(text) if not c.isspace()]
    if len(plain_positions) != len(text_positions):
        return None
    if any(plain[p] != text[t] for p, t in zip(plain_positions, text_positions)):
        return None
    index = {p: t for p, t in zip(plain_positions, text_positions)}
    return index.get


# --- the decoding constraint --------------------------------------------------------------------------------


class InlineThread(IntEnum):
    """Thread kinds of `InlineAutomaton` (values apart from every other format's)."""

    OUT = 10  # (OUT, position): copying the text outside entities
    ENT = 11  # (ENT, entity start, position)
    ISEP = 12  # (ISEP, entity end, bytes of ` | ` written)
    ILABEL = 13  # (ILABEL, entity end, label-trie node)
    ISTART = 14  # (ISTART,): before the optional leading space
    OESC = 15  # (OESC, position): after an escape's `\` outside an entity
    EESC = 16  # (EESC, entity start, position): after an escape's `\` inside an entity


OUT, ENT, ISEP, ILABEL, ISTART, OESC, EESC = InlineThread


class InlineAutomaton(ByteAutomaton):
    """The input text copied byte for byte, with `[` inserted at a word start and ` | LABEL]` at a later word
    end of the same entity; entity text never contains a newline (which `read` could not read back). The
    format's escapes are written: outside entities `[` as `\\[` and `\\` as `\\\\` (always doubled: the reader
    takes `\\\\` as one backslash wherever it stands); inside them each of `\\`, `[`, `]`, `|` with a
    backslash before it. One leading space is allowed; the text's trailing whitespace is optional.

    Cost: for the copy of the rest of the text the fewest tokens that spell it (a dynamic programme over the
    vocabulary's spellings, `tokens`), bytes for entity text, separators and labels.
    """

    def __init__(self, text: RowText, labels: LabelTrie, tokens: TokenSpellings):
        super().__init__()
        self.t, self.labels = text, labels
        data = text.data
        self.n = n = len(data)
        self.is_start, self.is_end = text.marks()
        last = len(data.rstrip())
        self.last = last
        # the rest of the text as written outside entities (`[` and `\\` escaped), and where each byte lands
        written, at = bytearray(), []
        for b in data:
            at.append(len(written))
            if b in (_OPEN, _BACKSLASH):
                written.append(_BACKSLASH)
            written.append(b)
        at.append(len(written))
        written, written_last = bytes(written), at[last]
        # fewest tokens that copy it from each position (trailing whitespace optional)
        wcopy = [INF] * (len(written) + 1)
        for q in range(len(written), -1, -1):
            if q >= written_last:
                wcopy[q] = 0
                continue
            wcopy[q] = 1 + min((wcopy[r] for _, r in tokens.prefixes(written, q)), default=INF - 1)
        self.copy = [wcopy[at[p]] for p in range(n + 1)]
        # bytes an entity's text takes from p on: one per byte plus one per escape
        self.special_before = [0] * (n + 1)
        for p, b in enumerate(data):
            self.special_before[p + 1] = self.special_before[p] + (b in _SPECIAL)
        # nearest word end e > p with no newline in data[p:e]
        self.ent_after = [INF] * (n + 2)
        nxt = INF
        for p in range(n - 1, -1, -1):
            if data[p] == 0x0A:
                nxt = INF
            elif self.is_end[p + 1]:
                nxt = p + 1
            self.ent_after[p] = nxt
        self.close_cost = len(_SEP) + labels.rest[0] + 1
        self.start = self.normalise({(ISTART,), (OUT, 0)})

    def thread_cost(self, th: tuple) -> int:
        kind = th[0]
        if kind == OUT:
            return self.copy[th[1]]
        if kind == ISTART:
            return INF  # only a way into OUT at 0, which is in the state too
        if kind == ENT:
            s, p = th[1], th[2]
            e = p if (p > s and self.is_end[p]) else self.ent_after[p]
            if e >= INF:
                return INF
            return e - p + self.special_before[e] - self.special_before[p] + self.close_cost + self.copy[e]
        if kind == OESC:
            return 1 + self.copy[th[1] + 1]
        if kind == EESC:
            return 1 + self.thread_cost((ENT, th[1], th[2] + 1))
        if kind == ISEP:
            return len(_SEP) - th[2] + self.labels.rest[0] + 1 + self.copy[th[1]]
        return self.labels.rest[th[2]] + 1 + self.copy[th[1]]

    def normalise(self, threads: set) -> tuple:
        """Drop dead threads (the leading-space thread lives though its cost is INF)."""
        return tuple(sorted(th for th in threads if self.thread_cost(th) < INF or th[0] == ISTART))

    def thread_step(self, th: tuple, b: int, out: set) -> None:
        data, kind = self.t.data, th[0]
        if kind == ISTART:
            if b == 0x20:
                out.add((OUT, 0))
        elif kind == OUT:
            p = th[1]
            if p < self.n:
                if data[p] in (_OPEN, _BACKSLASH):
                    if b == _BACKSLASH:
                        out.add((OESC, p))
                elif data[p] == b:
                    out.add((OUT, p + 1))
            if b == _OPEN and p < self.n and self.is_start[p]:
                out.add((ENT, p, p))
        elif kind == OESC:
            if data[th[1]] == b:
                out.add((OUT, th[1] + 1))
        elif kind == ENT:
            s, p = th[1], th[2]
            if p < self.n and data[p] != 0x0A:
                if data[p] in _SPECIAL:
                    if b == _BACKSLASH:
                        out.add((EESC, s, p))
                elif data[p] == b:
                    out.add((ENT, s, p + 1))
            if b == _SEP[0] and p > s and self.is_end[p]:
                out.add((ISEP, p, 1))
        elif kind == EESC:
            s, p = th[1], th[2]
            if data[p] == b:
                out.add((ENT, s, p + 1))
        elif kind == ISEP:
            e, k = th[1], th[2]
            if b == _SEP[k]:
                out.add((ISEP, e, k + 1) if k + 1 < len(_SEP) else (ILABEL, e, 0))
        elif kind == ILABEL:
            e, node = th[1], th[2]
            child = self.labels.children[node].get(b)
            if child is not None:
                out.add((ILABEL, e, child))
            if b == _CLOSE and self.labels.terminal[node]:
                out.add((OUT, e))

    def thread_bytes(self, th: tuple, candidates: set) -> None:
        kind, data = th[0], self.t.data
        if kind == ISTART:
            candidates.add(0x20)
        elif kind == OUT:
            if th[1] < self.n:
                candidates.add(_BACKSLASH if data[th[1]] in (_OPEN, _BACKSLASH) else data[th[1]])
            candidates.add(_OPEN)
        elif kind == ENT:
            if th[2] < self.n:
                candidates.add(_BACKSLASH if data[th[2]] in _SPECIAL else data[th[2]])
            candidates.add(_SEP[0])
        elif kind == OESC:
            candidates.add(data[th[1]])
        elif kind == EESC:
            candidates.add(data[th[2]])
        elif kind == ISEP:
            candidates.add(_SEP[th[2]])
        else:
            candidates.update(self.labels.children[th[2]])
            candidates.add(_CLOSE)
