"""The `entity_list` response format (compact, the default): one entity per line in order of appearance, every
occurrence listed, `text | LABEL`; `none` alone when there is no entity. A newline inside an entity becomes a
space. When an entity's text also occurs as whole tokens, but not as that entity, between the previous entity
and it, its line gets the occurrence number among those occurrences from the previous entity on
(`Stato | ORG | 2`), so the list always maps back to the exact tokens. This is rare (once in all of CoNLL-2003
and KIND), so the model almost always sees plain `text | LABEL` lines.

    EU | ORG
    German | MISC
    British | MISC

Everything about the format is here: render, read, the decoding constraint (`EntityListAutomaton`), the
new-token bound, the per-row regex and the runaway check for unconstrained decoding. Reading only splits
lines into mentions; finding them in the text is `inference.grounding`'s job.
"""

from __future__ import annotations

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
    aligned_occurrences,
    labels_regex,
    regex_escape,
    word_bounds,
)

_SEP = b" | "
_NONE = b"none"


class EntityListFormat(ResponseFormat):
    """`text | LABEL` lines in order of appearance; `none` for no entity."""

    name = "entity_list"
    version = 1
    separator = " | "
    none_marker = "none"
    description = "one entity per line as `text | LABEL`, in order of appearance; `none` if there is none"
    stops_runaway = True

    def render(self, example: Example) -> str:
        """Example: an example "EU rejects German call" tagged B-ORG O B-MISC O -> "EU | ORG\\nGerman | MISC" """
        lines, cursor = [], 0
        for entity in example.entities:
            text = " ".join(entity.text.split())
            line = f"{text}{self.separator}{entity.label}"
            starts = [start for start, _ in aligned_occurrences(example.text, example.offsets, entity.text, cursor)]
            occurrence = starts.index(entity.start) + 1
            if occurrence > 1:
                line += f"{self.separator}{occurrence}"
            lines.append(line)
            cursor = entity.end
        return "\n".join(lines) if lines else self.none_marker

    def read(self, response: str, text: str | None = None, hit_limit: bool = False) -> ReadMentions:
        """Mentions in order. The label is what follows the last `|` (an entity text may contain `|`).

        A line that cannot be read is `malformed`, unless it is the last one and generation stopped at its
        token limit (`hit_limit=True`), when it is `truncated`. Labels are returned as written.
        Example: read("EU | ORG\\nGerman | MISC").mentions -> [Mention("EU", "ORG", 1), Mention("German", "MISC", 2)]
        """
        read = ReadMentions()
        lines, starts, first = [], [], 0
        for n, raw in enumerate(response.split("\n"), start=1):
            if raw.strip():
                lines.append((n, raw.strip()))
                starts.append((first, first + len(raw) - len(raw.lstrip()), first + len(raw)))
            first += len(raw) + 1
        read.lines = len(lines)
        for position, (number, line) in enumerate(lines):
            line_start, text_start, line_end = starts[position]
            last = position == len(lines) - 1
            if line.lower().strip(" .") in (self.none_marker, "nessuna", "nessuno", "no entities"):
                read.no_entity_marker = True
                continue
            head, _, label = line.rpartition("|")
            occurrence, label_from = None, len(head) + 1
            before, _, label_before = head.rpartition("|")
            if label.strip().isdigit() and before.strip() and label_before.strip():
                occurrence, head, label, label_from = int(label.strip()), before, label_before, len(before) + 1
            label_from += len(label) - len(label.lstrip())
            entity, label = head.strip(), label.strip()
            if not entity or not label or any(c.isspace() for c in label):
                if last and hit_limit:
                    read.truncated += 1
                else:
                    read.malformed += 1
                continue
            at, label_at = (line_start, line_end + 1), (text_start + label_from, text_start + label_from + len(label))
            read.mentions.append(Mention(entity, label, number, occurrence, at=at, label_at=label_at))
        return read

    def automaton(
        self, example: Example, labels: LabelTrie, tokens: TokenSpellings, end_string: bytes = b""
    ) -> EntityListAutomaton:
        return EntityListAutomaton(RowText.from_example(example.text, example.offsets, True), labels, end_string)

    def new_token_bound(self, text: str, text_tokens: int, words: int | None = None, label_tokens: int = 2) -> int:
        """Entities are non-overlapping pieces of the text, so their text takes at most the text's own tokens
        (`text_tokens`); each line adds ` |`, the label (`label_tokens`, with its leading space), the newline,
        and one token because a span tokenised alone can split differently from inside the text. Lines: a
        text of `words` words has at most (words + 1) // 2 + 1 entities in all of CoNLL-2003 and KIND (45,000
        sentences; one more for margin); without `words`, every token counts as a word.

        Example: EntityListFormat().new_token_bound("...", 22, words=14) -> 22 + 5 * 9 = 67
        """
        return text_tokens + (label_tokens + 3) * line_bound(text_tokens, words)

    def regex(self, example: Example, labels: list[str]) -> str:
        """Lines ` ?SPAN | LABEL` (optionally ` | N`, the renderer's occurrence number) joined by newlines, or
        ` ?none`. SPAN is any piece of the text (whitespace runs as one space) that starts and ends on a word
        boundary, LABEL one of `labels`: no hallucinated span, no unknown label, no malformed line.

        What it cannot express (the constraint, `EntityListAutomaton`, does): the forward cursor (lines in
        order of appearance, a text listed no more often than it occurs) and whether an occurrence number is
        right; the model's own order is then the parser's business (`out_of_order`, `overlaps_removed`).
        Its size is quadratic in the words of the text (each start nests every later word end): ~1,900
        characters for a median CoNLL-2003 sentence, ~8,400 for an e-mail.
        Example: EntityListFormat().regex(Example("x", ["EU", "rejects"], ["B-ORG", "O"]), ["ORG"])
        -> "(?: ?(?:EU(?: rejects)?|rejects) \\| (?:ORG)(?: \\| [1-9][0-9]*)?(?:\\n ?...)*| ?none)"
        """
        text, starts, ends = word_bounds(example.text, example.offsets, True)
        nest = [""] * (len(ends) + 1)  # nest[i]: the optional continuation from ends[i - 1] through later ends
        for i in range(len(ends) - 1, 0, -1):
            nest[i] = f"(?:{regex_escape(text[ends[i - 1] : ends[i]])}{nest[i + 1]})?"
        spans = []
        for s in starts:
            first = next((i for i, e in enumerate(ends) if e > s), None)
            if first is not None:
                spans.append(regex_escape(text[s : ends[first]]) + nest[first + 1])
        none = f" ?{self.none_marker}"
        if not spans:
            return none
        line = f" ?(?:{'|'.join(spans)}) \\| {labels_regex(labels)}(?: \\| [1-9][0-9]*)?"
        return f"(?:{line}(?:\\n{line})*|{none})"

    def runaway(self, response: str, source: str) -> bool:
        return runaway_line(response, source)


def line_bound(text_tokens: int, words: int | None = None) -> int:
    """Most entities (lines) a text can have, with margin. Example: line_bound(22, 14) -> 9"""
    return ((text_tokens if words is None else words) + 1) // 2 + 2


def _squash(text: str) -> str:
    return "".join(text.split()).lower()


def runaway_line(response: str, source: str) -> bool:
    """Whether the last complete line of a partial entity-list response shows the model running away:
    its entity text (compared without case and spacing) is not in the source text, or the response
    lists that text more often than it occurs there. The line still being written is not judged.

    Example: runaway_line("Japan | LOC\\nJapan | LOC\\n", "Japan beat Syria .") -> True
    Example: runaway_line("Japan | LOC\\nSyria | LOC\\n", "Japan beat Syria .") -> False
    Example: runaway_line("Bolton | LOC\\n", "Japan beat Syria .") -> True
    """
    complete = [line for line in response.split("\n")[:-1] if line.strip()]
    if not complete:
        return False
    entity = _squash(complete[-1].split("|")[0])
    if not entity or entity == "none":
        return False
    occurs = _squash(source).count(entity)
    listed = sum(1 for line in complete if _squash(line.split("|")[0]) == entity)
    return listed > occurs


# --- the decoding constraint --------------------------------------------------------------------------------


class ListThread(IntEnum):
    """Thread kinds of `EntityListAutomaton` (values apart from every other format's)."""

    LINE = 0  # (LINE, cursor, spaced): at the start of a line
    SPAN = 1  # (SPAN, start, position)
    SEP = 2  # (SEP, span end, bytes of ` | ` written, span start)
    LABEL = 3  # (LABEL, span end, label-trie node, span start)
    NONE = 4  # (NONE, bytes of `none` written)
    END = 5  # (END, cursor, bytes of the end string written)


LINE, SPAN, SEP, LABEL, NONE, END = ListThread


class EntityListAutomaton(ByteAutomaton):
    """Lines `span | LABEL`, where `span` is a contiguous piece of the input text that starts and ends on word
    boundaries of our tokenizer (`Example.offsets`; whitespace runs written as one space), and LABEL is one of
    the run's labels; lines are separated by a newline; or `none` alone. Spans follow the format's order rule
    with a forward cursor: a span is placed where the parser will place it (its first whole-word occurrence at
    or after the end of the previous line's span), and the next span must start at or after its end, so a
    text is never listed more often than it occurs (the runaway guard is part of the constraint). A line may
    start with one space (the model's ` Peter` variant; the parser strips lines). The rare `| 2` occurrence
    suffix of `render` is never produced: a line always names the first occurrence from the cursor. With an
    `end_string` (`\\n###`), writing it after a complete line also ends the row.

    Cost (tokens to acceptance, at most): bytes for spans, separators and labels.
    """

    def __init__(self, text: RowText, labels: LabelTrie, end_string: bytes = b""):
        super().__init__()
        self.t, self.labels, self.end_string = text, labels, end_string
        self.n = n = len(text.data)
        self.is_start, self.is_end = text.marks()
        self._starts_by_byte: dict[int, list[int]] = {}
        # the nearest word end > p (a span that started at p cannot end at p)
        self.end_after = [INF] * (n + 2)
        nxt = INF
        for p in range(n, -1, -1):
            self.end_after[p] = nxt
            if self.is_end[p]:
                nxt = p
        # cheapest line from cursor c: first word start >= c, its first word, separator, shortest label
        label_cost = len(_SEP) + labels.rest[0]
        self.line_cost = [INF] * (n + 2)
        best = INF
        for c in range(n, -1, -1):
            if self.is_start[c] and self.end_after[c] < INF:
                best = min(best, self.end_after[c] - c + label_cost)
            self.line_cost[c] = best
        self.label_cost = label_cost
        self.start = self.normalise({(LINE, 0, 0), (NONE, 0)} if text.starts else {(NONE, 0)})

    def thread_cost(self, th: tuple) -> int:
        kind = th[0]
        if kind == LINE:
            return self.line_cost[th[1]]
        if kind == SPAN:
            s, p = th[1], th[2]
            e = p if (p > s and self.is_end[p]) else self.end_after[p]
            return INF if e >= INF else e - p + self.label_cost
        if kind == SEP:
            return len(_SEP) - th[2] + self.labels.rest[0]
        if kind == LABEL:
            return self.labels.rest[th[2]]
        if kind == NONE:
            return len(_NONE) - th[1]
        if kind == END:
            return 0 if th[2] == len(self.end_string) else len(self.end_string) - th[2]
        return INF

    def normalise(self, threads: set) -> tuple:
        """Drop dead threads; after a span has ended keep only the first occurrence (the parser's choice)."""
        alive = [th for th in threads if self.thread_cost(th) < INF]
        ended = [th for th in alive if th[0] in (SEP, LABEL)]
        if len(ended) > 1:
            by_key: dict = {}
            for th in ended:  # (kind, start, end, progress): one per written text; keep the smallest start
                key = (th[0], th[2])
                if key not in by_key or th[3] < by_key[key][3]:
                    by_key[key] = th
            alive = [th for th in alive if th[0] not in (SEP, LABEL)] + list(by_key.values())
        return tuple(sorted(alive))

    def thread_step(self, th: tuple, b: int, out: set) -> None:
        data, kind = self.t.data, th[0]
        if kind == LINE:
            c, spaced = th[1], th[2]
            if b == 0x20 and not spaced:
                out.add((LINE, c, 1))
            if b == 0x20 and not spaced and c == 0:
                out.add((NONE, 0))  # ` none`: the first line may start with a space too
            for s in self._starts_with(b, c):
                out.add((SPAN, s, s + 1))
        elif kind == SPAN:
            s, p = th[1], th[2]
            if p < self.n and data[p] == b:
                out.add((SPAN, s, p + 1))
            if b == _SEP[0] and p > s and self.is_end[p]:
                out.add((SEP, p, 1, s))
        elif kind == SEP:
            e, k, s = th[1], th[2], th[3]
            if b == _SEP[k]:
                out.add((SEP, e, k + 1, s) if k + 1 < len(_SEP) else (LABEL, e, 0, s))
        elif kind == LABEL:
            e, node = th[1], th[2]
            child = self.labels.children[node].get(b)
            if child is not None:
                out.add((LABEL, e, child, th[3]))
            if self.labels.terminal[node] and b == 0x0A:
                if self.line_cost[e] < INF:
                    out.add((LINE, e, 0))
                if self.end_string:
                    out.add((END, e, 1))
        elif kind == NONE:
            k = th[1]
            if k < len(_NONE) and b == _NONE[k]:
                out.add((NONE, k + 1))
        elif kind == END:
            k = th[2]
            if k < len(self.end_string) and b == self.end_string[k]:
                out.add((END, th[1], k + 1))

    def thread_bytes(self, th: tuple, candidates: set) -> None:
        kind, data = th[0], self.t.data
        if kind == LINE:
            candidates.add(0x20)
            candidates.update(data[s] for s in self.t.starts if s >= th[1] and s < self.n)
        elif kind == SPAN:
            if th[2] < self.n:
                candidates.add(data[th[2]])
            candidates.add(_SEP[0])
        elif kind == SEP:
            candidates.add(_SEP[th[2]])
        elif kind == LABEL:
            candidates.update(self.labels.children[th[2]])
            candidates.add(0x0A)
        elif kind == NONE:
            if th[1] < len(_NONE):
                candidates.add(_NONE[th[1]])
        elif kind == END:
            if th[2] < len(self.end_string):
                candidates.add(self.end_string[th[2]])

    def finished(self, state: tuple) -> bool:
        return bool(self.end_string) and any(th[0] == END and th[2] == len(self.end_string) for th in state)

    def _starts_with(self, b: int, cursor: int) -> list[int]:
        starts = self._starts_by_byte.get(b)
        if starts is None:
            starts = [s for s in self.t.starts if s < self.n and self.t.data[s] == b]
            self._starts_by_byte[b] = starts
        return [s for s in starts if s >= cursor]
