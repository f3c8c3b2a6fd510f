"""What every response format is made of: the `ResponseFormat` interface (render, read, the per-row decoding
constraint, the new-token bound, the per-row regex for external engines), the mentions a format reads, and the
pure-Python pieces a format's byte automaton is built from (`ByteAutomaton`, `LabelTrie`, `RowText`).

A format is one object that owns its whole grammar, as spaCy-llm's `NERTask` owns template, parser and
examples: the text a model is trained on (`render`), how a response is read back (`read`), which bytes a
constrained row may write next (`automaton`), how many new tokens a complete response can need
(`new_token_bound`) and the same language as a regular expression (`regex`). Nothing else branches on a
format's name: callers look the object up (`prompts.formats.get_format`) and ask it.

This module does not know the vocabulary or run a model: the token-level driver that steps a format's byte
automaton over token spellings is `inference.constrained`; grounding mentions in the text is
`inference.grounding`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Protocol

from instruct_ner.examples import Example

INF = 1 << 30  # the cost of a state that can no longer reach acceptance


@dataclass(frozen=True)
class Mention:
    """An entity as the response states it. `start`/`end` pin it in the input text when the format can.

    `at`: the characters [start, end) of the response that state this mention, where the format knows them (the
    entity list: its line and the newline that ends it, or one past the response's end for the last line, the
    place of the end token; inline: the bracket); `label_at`: the label's characters. Confidence is computed from
    the tokens that write them (`inference.confidence`); neither enters comparisons.
    """

    text: str
    label: str
    line: int
    occurrence: int | None = None
    start: int | None = None
    end: int | None = None
    at: tuple[int, int] | None = field(default=None, compare=False)
    label_at: tuple[int, int] | None = field(default=None, compare=False)
    score: float | None = field(default=None, compare=False)


@dataclass
class ReadMentions:
    mentions: list[Mention] = field(default_factory=list)
    malformed: int = 0
    truncated: int = 0
    no_entity_marker: bool = False  # the response says there is no entity (`none`; inline: the bare text)
    lines: int = 0


class TokenSpellings(Protocol):
    """What an automaton may ask of the vocabulary (`inference.constrained.TokenTrie` is one)."""

    def prefixes(self, data: bytes, start: int) -> list[tuple[int, int]]:
        """(token id, end) for every token spelling data[start:end]."""


class ResponseFormat(ABC):
    """One response format. Subclasses set `name`, `version` and `description` and implement the methods.

    `version` changes whenever what `render` writes changes (a model trained on one version expects it).
    """

    name: str
    version: int = 1
    description: str
    stops_runaway: bool = False  # unconstrained rows may be stopped by `runaway` (see `inference.decoding`)

    @abstractmethod
    def render(self, example: Example) -> str:
        """The response a model is trained to write for `example` (its gold entities)."""

    @abstractmethod
    def read(self, response: str, text: str | None = None, hit_limit: bool = False) -> ReadMentions:
        """Split a response into mentions; count what cannot be read (`truncated` when `hit_limit` and last)."""

    @abstractmethod
    def automaton(
        self, example: Example, labels: LabelTrie, tokens: TokenSpellings, end_string: bytes = b""
    ) -> ByteAutomaton:
        """The responses this format allows for one row, as a byte automaton with token costs.

        `end_string`: bytes that also complete the row after a complete response, where the format allows it
        (the instruction style's `\\n###`); a format may ignore it.
        """

    @abstractmethod
    def new_token_bound(self, text: str, text_tokens: int, words: int | None = None, label_tokens: int = 2) -> int:
        """Most new tokens a complete response about `text` (`text_tokens` tokens, `words` words) can need."""

    @abstractmethod
    def regex(self, example: Example, labels: list[str]) -> str:
        """This row's allowed responses as a regular expression (Python `re` / xgrammar syntax, anchored by the
        caller: match with `re.fullmatch`)."""

    def runaway(self, response: str, source: str) -> bool:
        """Whether a partial response shows the model running away (only used where `stops_runaway`)."""
        return False


# --- the pieces of a byte automaton ---------------------------------------------------------------------------


class LabelTrie:
    """The label set as a byte trie: node ids, children, terminal nodes and bytes to the nearest terminal."""

    def __init__(self, labels: list[str]):
        self.labels = list(labels)
        self.children: list[dict[int, int]] = [{}]
        self.terminal: list[bool] = [False]
        for label in labels:
            node = 0
            for b in label.encode("utf-8"):
                if b not in self.children[node]:
                    self.children.append({})
                    self.terminal.append(False)
                    self.children[node][b] = len(self.children) - 1
                node = self.children[node][b]
            self.terminal[node] = True
        self.rest = [self._rest(n) for n in range(len(self.children))]

    def _rest(self, node: int) -> int:
        if self.terminal[node]:
            return 0
        return 1 + min((self._rest(c) for c in self.children[node].values()), default=INF)


@dataclass
class RowText:
    """A text as bytes with its word boundaries as byte positions (whitespace runs squeezed when asked)."""

    data: bytes
    starts: list[int]
    ends: list[int]

    @classmethod
    def from_example(cls, text: str, offsets: list[tuple[int, int]], squeeze: bool) -> RowText:
        """Example: RowText.from_example("a  b", [(0, 1), (3, 4)], True) -> RowText(b"a b", [0, 2], [1, 3])"""
        out, starts, ends = word_bounds(text, offsets, squeeze)
        byte_at = [0]
        for c in out:
            byte_at.append(byte_at[-1] + len(c.encode("utf-8")))
        return cls(out.encode("utf-8"), [byte_at[s] for s in starts], [byte_at[e] for e in ends])

    def marks(self) -> tuple[bytearray, bytearray]:
        """(is_start, is_end): one flag per byte position 0..len(data)."""
        n = len(self.data)
        is_start, is_end = bytearray(n + 1), bytearray(n + 1)
        for s in self.starts:
            is_start[s] = 1
        for e in self.ends:
            is_end[e] = 1
        return is_start, is_end


def word_bounds(text: str, offsets: list[tuple[int, int]], squeeze: bool) -> tuple[str, list[int], list[int]]:
    """The text (whitespace runs as one space when `squeeze`) and its word starts and ends, sorted, in it.

    Example: word_bounds("a \n b", [(0, 1), (4, 5)], True) -> ("a b", [0, 2], [1, 3])
    """
    chars, char_to_out = [], []
    previous_space = False
    for c in text:
        char_to_out.append(len(chars))
        if squeeze and c.isspace():
            if not previous_space:
                chars.append(" ")
            previous_space = True
            continue
        chars.append(c)
        previous_space = False
    char_to_out.append(len(chars))
    starts = sorted({char_to_out[s] for s, e in offsets if e > s})
    ends = sorted({char_to_out[e - 1] + 1 for s, e in offsets if e > s})
    return "".join(chars), starts, ends


class ByteAutomaton:
    """A nondeterministic byte automaton whose state is a sorted tuple of threads (tuples, kind first).

    A format subclasses it with its own thread kinds and implements `thread_step`, `thread_cost` and
    `thread_bytes`; `normalise` may prune a state. Every state has a cost: an upper bound on the tokens still
    needed to reach acceptance (`INF`: dead), so a driver can keep a row within its token budget. Steps,
    costs and candidate bytes are cached per state.
    """

    start: tuple = ()

    def __init__(self) -> None:
        self._step: dict = {}
        self._bytes: dict = {}
        self._cost: dict = {}

    def thread_step(self, thread: tuple, b: int, out: set) -> None:
        """Add to `out` the threads `thread` becomes after byte `b` (none: it dies)."""
        raise NotImplementedError  # pragma: no cover - interface

    def thread_cost(self, thread: tuple) -> int:
        """Tokens the thread still needs to reach acceptance at most; 0 accepts; INF is dead."""
        raise NotImplementedError  # pragma: no cover - interface

    def thread_bytes(self, thread: tuple, candidates: set) -> None:
        """Add the bytes the thread may take next (a superset; `step` decides)."""
        raise NotImplementedError  # pragma: no cover - interface

    def normalise(self, threads: set) -> tuple:
        """The state for a set of threads: the live ones, sorted."""
        return tuple(sorted(th for th in threads if self.thread_cost(th) < INF))

    def finished(self, state: tuple) -> bool:
        """Whether the row is complete without an end token (e.g. it wrote the instruction style's next section)."""
        return False

    def step(self, state: tuple, b: int) -> tuple:
        key = (state, b)
        nxt = self._step.get(key)
        if nxt is None:
            out: set = set()
            for th in state:
                self.thread_step(th, b, out)
            nxt = self.normalise(out)
            self._step[key] = nxt
        return nxt

    def cost(self, state: tuple) -> int:
        value = self._cost.get(state)
        if value is None:
            value = min((self.thread_cost(th) for th in state), default=INF)
            self._cost[state] = value
        return value

    def accepting(self, state: tuple) -> bool:
        return self.cost(state) == 0

    def next_bytes(self, state: tuple) -> list[int]:
        found = self._bytes.get(state)
        if found is None:
            candidates: set = set()
            for th in state:
                self.thread_bytes(th, candidates)
            found = sorted(candidates)
            self._bytes[state] = found
        return found


# --- pieces of a regex ------------------------------------------------------------------------------------------


_REGEX_SPECIAL = {c: "\\" + c for c in "\\.^$|?*+()[]{}"} | {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def regex_escape(text: str) -> str:
    """A literal for Python `re` and xgrammar alike: metacharacters escaped, spaces as they are, newlines as `\\n`.

    Example: regex_escape("U.S. [x]") -> "U\\.S\\. \\[x\\]"
    """
    return "".join(_REGEX_SPECIAL.get(c, c) for c in text)


def labels_regex(labels: list[str]) -> str:
    """Example: labels_regex(["PER", "LOC"]) -> "(?:LOC|PER)" """
    return "(?:" + "|".join(regex_escape(label) for label in sorted(labels, key=lambda x: (-len(x), x))) + ")"


def aligned_occurrences(text: str, offsets: list[tuple[int, int]], needle: str, cursor: int) -> list[tuple[int, int]]:
    """Character spans where `needle` occurs in `text` from `cursor` on, starting and ending on token bounds.

    Example: aligned_occurrences("USA and US", [(0, 3), (4, 7), (8, 10)], "US", 0) -> [(8, 10)]
    """
    if not needle:
        return []
    starts, ends = {s for s, _ in offsets}, {e for _, e in offsets}
    found, position = [], text.find(needle, cursor)
    while position >= 0:
        if position in starts and position + len(needle) in ends:
            found.append((position, position + len(needle)))
        position = text.find(needle, position + 1)
    return found
