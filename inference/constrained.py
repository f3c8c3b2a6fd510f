"""Constrained decoding: per row, a byte-level automaton of the responses the format allows for that row's
text, walked together with a trie over the vocabulary's token bytes to decide which tokens may come next.

What is allowed (`RowConstraint`, one per prompt; `ConstraintFactory` builds them for a run):

- `entity_list`: lines `span | LABEL`, where `span` is a contiguous piece of the input text that starts and
  ends on word boundaries of our tokenizer (`Example.offsets`; whitespace runs written as one space), and
  LABEL is one of the run's labels; lines are separated by a newline; or `none` alone. Spans follow the
  format's order rule with a forward cursor: a span is placed where the parser will place it (its first
  whole-word occurrence at or after the end of the previous line's span), and the next span must start at
  or after its end, so a text is never listed more often than it occurs (the runaway guard is part of the
  constraint). A line may start with one space (the model's ` Peter` variant; the parser strips lines).
  The rare `| 2` occurrence suffix of `EntityListFormat.to_str` is never produced: a line always names
  the first occurrence from the cursor.
- `inline`: the input text copied byte for byte, with `[` inserted at a word start and ` | LABEL]` at a
  later word end of the same entity; entity text never contains a newline (which the inline format's
  reader could not read back). The format's escapes are written: outside entities `[` as `\\[` and `\\` as
  `\\\\` (always doubled: the reader takes `\\\\` as one backslash wherever it stands); inside them each of
  `\\`, `[`, `]`, `|` with a backslash before it. One leading space is allowed.
- End of sequence (the model's eos / end-of-turn tokens) only where the automaton accepts: after a complete
  label, or after `none`. For the instruction style `\\n###` after a complete line also ends the row.

The automaton works on UTF-8 bytes, not on the input's token ids: any tokenisation that spells an allowed
string is allowed (` Peter`+` Black`+`burn`, or `Pet`+`er`, ...), and byte tokens that split a multi-byte
character work too. Its state is a small set of threads (a nondeterministic automaton), because a space
after a span may continue the span or start the separator, and a span prefix may occur at several places.

Budget: every state has a cost, an upper bound on the tokens still needed to reach acceptance (bytes for
spans, separators and labels; for the inline copy of the rest of the text the fewest tokens that spell it,
from a dynamic programme over the trie). A token is allowed only if its next state's cost plus one (the
end token) fits in the tokens left, so a constrained row always ends before its bound: near the bound only
the tokens that finish the current line (or copy) remain.

Engine choice. Measured here (SmolLM2's 49,152-token vocabulary, 2-core AMD EPYC, one thread; /tmp script
in the decoding report): the trie is built once per tokenizer in 0.74 s; a row's automaton in 0.1 ms; a
full mask 0.52 ms at the start of a line of a CoNLL sentence (0.58 ms for an Italian e-mail of ~80 tokens)
and 0.02-0.03 ms inside a span; checking one token 0.003 ms. Greedy decoding only needs the best allowed
token, so each step checks the model's top-8 tokens first and computes the full mask only when none is
allowed (in the zero-shot smoke run, 45 full masks in 476 row-steps; constraint work 0.3% of step time).
llguidance (1.9.1) computes masks in microseconds too, but, as the issue's check found, its greedy lexer
rejects `Peter Blackburn | PER` (the space before `|` could continue the span), i.e. the tokenisation
the model was trained on, and its substring lexeme knows neither our word boundaries nor the forward
cursor; outlines-core would need a regex of every span of each text, compiled per input (not measured).
Our automaton is exact for both formats, handles that ambiguity by keeping both threads, adds no
dependency, and is far below the forward pass in cost.

This module does not run the model (see `inference.decoding`) and does not parse responses
(see `inference.grounding`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from instruct_ner.prompts.formats import SPECIAL

_LEAF = 256  # trie-node key holding the ids of the tokens that end at that node
_FORBIDDEN_LABEL = frozenset(b"[]|\n")  # a label with one of these could not be read back from an inline bracket
_SPECIAL = frozenset(SPECIAL.encode())  # what the inline format escapes inside an entity
_BACKSLASH, _OPEN = 0x5C, 0x5B
_SEP = b" | "
_NONE = b"none"
_INF = 1 << 30

LINE, SPAN, SEP, LABEL, NONE, END, START = range(7)  # entity-list thread kinds
OUT, ENT, ISEP, ILABEL, ISTART, OESC, EESC = range(7)  # inline thread kinds (OESC/EESC: after an escape's `\\`)


# --- the vocabulary ---------------------------------------------------------------------------------------


def _byte_decoder() -> dict[str, int]:
    """The inverse of GPT-2's bytes_to_unicode: the character a byte-level BPE token uses for each byte."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    codes, extra = list(printable), 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, codes)}


_HEX_BYTE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


def token_bytes(tokenizer) -> list[bytes | None]:
    """The UTF-8 bytes each token id spells; None for special and added tokens (never generated as text).

    Byte-level BPE tokens (`ĠPeter`) map through GPT-2's byte alphabet; SentencePiece tokens (`▁Peter`,
    `<0xE2>`) through `▁` = space and byte fallback.
    """
    decoder = _byte_decoder()
    special = set(tokenizer.all_special_ids) | set(getattr(tokenizer, "added_tokens_decoder", {}) or {})
    pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    out: list[bytes | None] = []
    for token_id, piece in enumerate(pieces):
        if piece is None or token_id in special:
            out.append(None)
        elif all(c in decoder for c in piece):
            out.append(bytes(decoder[c] for c in piece))
        elif match := _HEX_BYTE.match(piece):
            out.append(bytes([int(match.group(1), 16)]))
        else:
            out.append(piece.replace("▁", " ").encode("utf-8"))
    return out


class TokenTrie:
    """A trie over the vocabulary's token bytes (nested dicts; key 256 lists the ids ending at a node)."""

    def __init__(self, tokenizer):
        self.bytes = token_bytes(tokenizer)
        self.root: dict = {}
        for token_id, spelled in enumerate(self.bytes):
            if not spelled:
                continue
            node = self.root
            for b in spelled:
                node = node.setdefault(b, {})
            node.setdefault(_LEAF, []).append(token_id)
        self.vocab_size = len(self.bytes)

    def prefixes(self, data: bytes, start: int) -> list[tuple[int, int]]:
        """(token id, end) for every token spelling data[start:end]."""
        found, node = [], self.root
        for end in range(start, len(data)):
            node = node.get(data[end])
            if node is None:
                break
            for token_id in node.get(_LEAF, ()):
                found.append((token_id, end + 1))
        return found


_TRIES: dict[tuple, TokenTrie] = {}


def token_trie(tokenizer) -> TokenTrie:
    """The tokenizer's trie, built once per tokenizer (about a second for 49k tokens) and cached."""
    key = (getattr(tokenizer, "name_or_path", ""), len(tokenizer), type(tokenizer).__name__)
    if key not in _TRIES:
        _TRIES[key] = TokenTrie(tokenizer)
    return _TRIES[key]


# --- labels -----------------------------------------------------------------------------------------------


class LabelTrie:
    """The label set as a byte trie: node ids, children, terminal nodes and bytes to the nearest terminal."""

    def __init__(self, labels: list[str]):
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
        return 1 + min((self._rest(c) for c in self.children[node].values()), default=_INF)


# --- the text of one row ----------------------------------------------------------------------------------


@dataclass
class RowText:
    """A text as bytes with its word boundaries as byte positions (whitespace runs squeezed when asked)."""

    data: bytes
    starts: list[int]
    ends: list[int]

    @classmethod
    def from_example(cls, text: str, offsets: list[tuple[int, int]], squeeze: bool) -> RowText:
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
        out = "".join(chars)
        byte_at = [0]
        for c in out:
            byte_at.append(byte_at[-1] + len(c.encode("utf-8")))
        starts = sorted({byte_at[char_to_out[s]] for s, e in offsets if e > s})
        ends = sorted({byte_at[char_to_out[e - 1] + 1] for s, e in offsets if e > s})
        return cls(out.encode("utf-8"), starts, ends)


# --- the automaton ----------------------------------------------------------------------------------------


class RowConstraint:
    """The allowed responses for one row as a byte automaton; `state` is a tuple of threads.

    `allows(token, budget)` -> the next state if the token is allowed and the next state's cost is at most
    `budget`, else None; `allowed(budget)` -> every allowed token id; `advance(token)` moves on.
    """

    def __init__(self, factory: ConstraintFactory, text: RowText):
        self.f, self.t = factory, text
        self.trie = factory.trie
        data, n = text.data, len(text.data)
        self.n = n
        self.is_start, self.is_end = bytearray(n + 1), bytearray(n + 1)
        for s in text.starts:
            self.is_start[s] = 1
        for e in text.ends:
            self.is_end[e] = 1
        self._step: dict = {}
        self._bytes: dict = {}
        self._cost: dict = {}
        self._starts_by_byte: dict[int, list[int]] = {}
        self.inline = factory.response_format == "inline"
        if self.inline:
            self._prepare_inline(data, n)
            self.state = self._norm({(ISTART,), (OUT, 0)})
        else:
            self._prepare_list(data, n)
            first = {(LINE, 0, 0), (NONE, 0)} if text.starts else {(NONE, 0)}
            self.state = self._norm(first)
        self.done = False

    # entity list ------------------------------------------------------------------------------------------

    def _prepare_list(self, data: bytes, n: int) -> None:
        # the nearest word end > p (a span that started at p cannot end at p)
        self.end_after = [_INF] * (n + 2)
        nxt = _INF
        for p in range(n, -1, -1):
            self.end_after[p] = nxt
            if self.is_end[p]:
                nxt = p
        # cheapest line from cursor c: first word start >= c, its first word, separator, shortest label
        label_cost = len(_SEP) + self.f.labels.rest[0]
        self.line_cost = [_INF] * (n + 2)
        best = _INF
        for c in range(n, -1, -1):
            if self.is_start[c] and self.end_after[c] < _INF:
                best = min(best, self.end_after[c] - c + label_cost)
            self.line_cost[c] = best
        self.label_cost = label_cost

    # inline -----------------------------------------------------------------------------------------------

    def _prepare_inline(self, data: bytes, n: int) -> None:
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
        wcopy = [_INF] * (len(written) + 1)
        for q in range(len(written), -1, -1):
            if q >= written_last:
                wcopy[q] = 0
                continue
            wcopy[q] = 1 + min((wcopy[r] for _, r in self.trie.prefixes(written, q)), default=_INF - 1)
        self.copy = [wcopy[at[p]] for p in range(n + 1)]
        # bytes an entity's text takes from p on: one per byte plus one per escape
        self.special_before = [0] * (n + 1)
        for p, b in enumerate(data):
            self.special_before[p + 1] = self.special_before[p] + (b in _SPECIAL)
        # nearest word end e > p with no newline in data[p:e]
        self.ent_after = [_INF] * (n + 2)
        nxt = _INF
        for p in range(n - 1, -1, -1):
            if data[p] == 0x0A:
                nxt = _INF
            elif self.is_end[p + 1]:
                nxt = p + 1
            self.ent_after[p] = nxt
        self.close_cost = len(_SEP) + self.f.labels.rest[0] + 1

    # threads ----------------------------------------------------------------------------------------------

    def _thread_cost(self, th: tuple) -> int:
        kind = th[0]
        if self.inline:
            if kind == OUT:
                return self.copy[th[1]]
            if kind == ISTART:
                return _INF  # only a way into OUT at 0, which is in the state too
            if kind == ENT:
                s, p = th[1], th[2]
                e = p if (p > s and self.is_end[p]) else self.ent_after[p]
                if e >= _INF:
                    return _INF
                return e - p + self.special_before[e] - self.special_before[p] + self.close_cost + self.copy[e]
            if kind == OESC:
                return 1 + self.copy[th[1] + 1]
            if kind == EESC:
                return 1 + self._thread_cost((ENT, th[1], th[2] + 1))
            if kind == ISEP:
                return len(_SEP) - th[2] + self.f.labels.rest[0] + 1 + self.copy[th[1]]
            return self.f.labels.rest[th[2]] + 1 + self.copy[th[1]]
        if kind == LINE:
            return self.line_cost[th[1]]
        if kind == SPAN:
            s, p = th[1], th[2]
            e = p if (p > s and self.is_end[p]) else self.end_after[p]
            return _INF if e >= _INF else e - p + self.label_cost
        if kind == SEP:
            return len(_SEP) - th[2] + self.f.labels.rest[0]
        if kind == LABEL:
            return self.f.labels.rest[th[2]]
        if kind == NONE:
            return len(_NONE) - th[1]
        if kind == END:
            return 0 if th[2] == len(self.f.end_string) else len(self.f.end_string) - th[2]
        return _INF

    def _norm(self, threads: set) -> tuple:
        """Drop dead threads; after a span has ended keep only the first occurrence (the parser's choice)."""
        alive = [th for th in threads if self._thread_cost(th) < _INF or th[0] == ISTART and self.inline]
        if not self.inline:
            ended = [th for th in alive if th[0] in (SEP, LABEL)]
            if len(ended) > 1:
                by_key: dict = {}
                for th in ended:  # (kind, start, end, progress): one per written text; keep the smallest start
                    key = (th[0], th[2])
                    if key not in by_key or th[3] < by_key[key][3]:
                        by_key[key] = th
                alive = [th for th in alive if th[0] not in (SEP, LABEL)] + list(by_key.values())
        return tuple(sorted(alive))

    def cost(self, state: tuple) -> int:
        value = self._cost.get(state)
        if value is None:
            value = min((self._thread_cost(th) for th in state), default=_INF)
            self._cost[state] = value
        return value

    def accepting(self, state: tuple | None = None) -> bool:
        state = self.state if state is None else state
        return self.cost(state) == 0

    def _thread_step(self, th: tuple, b: int, out: set) -> None:
        data, kind = self.t.data, th[0]
        if self.inline:
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
                child = self.f.labels.children[node].get(b)
                if child is not None:
                    out.add((ILABEL, e, child))
                if b == 0x5D and self.f.labels.terminal[node]:  # "]"
                    out.add((OUT, e))
            return
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
            child = self.f.labels.children[node].get(b)
            if child is not None:
                out.add((LABEL, e, child, th[3]))
            if self.f.labels.terminal[node] and b == 0x0A:
                if self.line_cost[e] < _INF:
                    out.add((LINE, e, 0))
                if self.f.end_string:
                    out.add((END, e, 1))
        elif kind == NONE:
            k = th[1]
            if k < len(_NONE) and b == _NONE[k]:
                out.add((NONE, k + 1))
        elif kind == END:
            k = th[2]
            if k < len(self.f.end_string) and b == self.f.end_string[k]:
                out.add((END, th[1], k + 1))

    def _starts_with(self, b: int, cursor: int) -> list[int]:
        starts = self._starts_by_byte.get(b)
        if starts is None:
            starts = [s for s in self.t.starts if s < self.n and self.t.data[s] == b]
            self._starts_by_byte[b] = starts
        return [s for s in starts if s >= cursor]

    def step(self, state: tuple, b: int) -> tuple:
        key = (state, b)
        nxt = self._step.get(key)
        if nxt is None:
            out: set = set()
            for th in state:
                self._thread_step(th, b, out)
            nxt = self._norm(out)
            self._step[key] = nxt
        return nxt

    def next_bytes(self, state: tuple) -> list[int]:
        """The bytes some thread of the state can take next (a superset; `step` decides)."""
        found = self._bytes.get(state)
        if found is None:
            data, candidates = self.t.data, set()
            for th in state:
                kind = th[0]
                if self.inline:
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
                        candidates.update(self.f.labels.children[th[2]])
                        candidates.add(0x5D)
                    continue
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
                    candidates.update(self.f.labels.children[th[2]])
                    candidates.add(0x0A)
                elif kind == NONE:
                    if th[1] < len(_NONE):
                        candidates.add(_NONE[th[1]])
                elif kind == END:
                    if th[2] < len(self.f.end_string):
                        candidates.add(self.f.end_string[th[2]])
            found = sorted(candidates)
            self._bytes[state] = found
        return found

    # tokens -----------------------------------------------------------------------------------------------

    def allows(self, token_id: int, budget: int) -> tuple | None:
        """The state after `token_id` if it is allowed and can still finish within `budget` tokens."""
        if token_id in self.f.eos:
            return self.state if self.accepting() else None
        spelled = self.trie.bytes[token_id] if token_id < self.trie.vocab_size else None
        if not spelled:
            return None
        state = self.state
        for b in spelled:
            state = self.step(state, b)
            if not state:
                return None
        return state if self.cost(state) <= budget else None

    def allowed(self, budget: int) -> list[int]:
        """Every allowed token id (eos included where the state accepts), walking the trie with the state."""
        found = list(self.f.eos) if self.accepting() else []
        stack = [(self.trie.root, self.state)]
        while stack:
            node, state = stack.pop()
            for b in self.next_bytes(state):
                child = node.get(b)
                if child is None:
                    continue
                nxt = self.step(state, b)
                if not nxt:
                    continue
                ids = child.get(_LEAF)
                if ids and self.cost(nxt) <= budget:
                    found.extend(ids)
                stack.append((child, nxt))
        return found

    def advance(self, token_id: int) -> None:
        if token_id in self.f.eos:
            self.done = True
            return
        for b in self.trie.bytes[token_id] or b"":
            self.state = self.step(self.state, b)
        if self.f.end_string and any(th[0] == END and th[2] == len(self.f.end_string) for th in self.state):
            self.done = True  # the instruction style's next section: the row is complete


class ConstraintFactory:
    """What every row of a run shares: the vocabulary trie, the label trie, the eos ids and the format."""

    def __init__(self, tokenizer, response_format: str, labels: list[str], eos_ids, end_string: str = ""):
        if response_format not in ("entity_list", "inline"):
            raise ValueError(f"no constraint for response format {response_format!r}")
        if not labels:
            raise ValueError("constrained decoding needs the label set")
        self.trie = token_trie(tokenizer)
        self.response_format = response_format
        usable = [label for label in labels if not set(label.encode()) & _FORBIDDEN_LABEL]
        self.labels = LabelTrie(usable or labels)
        self.eos = frozenset(eos_ids)
        self.end_string = end_string.encode("utf-8") if response_format == "entity_list" else b""

    def row(self, example) -> RowConstraint:
        """The constraint for one Example (its text and word offsets)."""
        squeeze = self.response_format == "entity_list"
        return RowConstraint(self, RowText.from_example(example.text, example.offsets, squeeze))
