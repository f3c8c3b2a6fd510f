"""Constrained decoding: per row, a byte-level automaton of the responses the format allows for that row's
text, walked together with a trie over the vocabulary's token bytes to decide which tokens may come next.

What is allowed is the response format's business: each `ResponseFormat` (`prompts.formats`) builds a byte
automaton of the responses it allows for one row (`EntityListAutomaton`, `InlineAutomaton`; see their
docstrings), with a cost per state. This module is format-independent: it spells the vocabulary as bytes
(`token_bytes`, `TokenTrie`) and steps a row's automaton over token spellings (`RowConstraint`, one per prompt;
`ConstraintFactory` builds them for a run). End of sequence (the model's eos / end-of-turn tokens) is allowed
only where the automaton accepts; a row whose automaton says it is finished (the instruction style's `\\n###`
after a complete entity-list line) ends too.

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
cursor; outlines-core would need a regex of every span of each text, compiled per input (not measured; each
format's `regex` is that grammar, for engines that take one per request).
Our automaton is exact for both formats, handles that ambiguity by keeping both threads, adds no
dependency, and is far below the forward pass in cost.

This module does not run the model (see `inference.decoding`) and does not parse responses
(see `inference.grounding`).
"""

from __future__ import annotations

import re

from instruct_ner.prompts.formats import LabelTrie, get_format

_LEAF = 256  # trie-node key holding the ids of the tokens that end at that node
_FORBIDDEN_LABEL = frozenset(b"[]|\n")  # a label with one of these could not be read back from a response


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


# --- the driver ----------------------------------------------------------------------------------------------


class RowConstraint:
    """One row's allowed responses at token level: its format's byte automaton, stepped over token spellings.

    `allows(token, budget)` -> the next state if the token is allowed and the next state's cost is at most
    `budget`, else None; `allowed(budget)` -> every allowed token id; `advance(token)` moves on.
    """

    def __init__(self, factory: ConstraintFactory, automaton):
        self.f, self.automaton = factory, automaton
        self.trie = factory.trie
        self.state = automaton.start
        self.done = False

    def accepting(self, state: tuple | None = None) -> bool:
        return self.automaton.accepting(self.state if state is None else state)

    def allows(self, token_id: int, budget: int) -> tuple | None:
        """The state after `token_id` if it is allowed and can still finish within `budget` tokens."""
        if token_id in self.f.eos:
            return self.state if self.accepting() else None
        spelled = self.trie.bytes[token_id] if token_id < self.trie.vocab_size else None
        if not spelled:
            return None
        state, step = self.state, self.automaton.step
        for b in spelled:
            state = step(state, b)
            if not state:
                return None
        return state if self.automaton.cost(state) <= budget else None

    def allowed(self, budget: int) -> list[int]:
        """Every allowed token id (eos included where the state accepts), walking the trie with the state."""
        automaton = self.automaton
        found = list(self.f.eos) if self.accepting() else []
        stack = [(self.trie.root, self.state)]
        while stack:
            node, state = stack.pop()
            for b in automaton.next_bytes(state):
                child = node.get(b)
                if child is None:
                    continue
                nxt = automaton.step(state, b)
                if not nxt:
                    continue
                ids = child.get(_LEAF)
                if ids and automaton.cost(nxt) <= budget:
                    found.extend(ids)
                stack.append((child, nxt))
        return found

    def advance(self, token_id: int) -> None:
        if token_id in self.f.eos:
            self.done = True
            return
        for b in self.trie.bytes[token_id] or b"":
            self.state = self.automaton.step(self.state, b)
        if self.automaton.finished(self.state):
            self.done = True  # e.g. the instruction style's next section: the row is complete


class ConstraintFactory:
    """What every row of a run shares: the vocabulary trie, the label trie, the eos ids and the format."""

    def __init__(self, tokenizer, response_format: str, labels: list[str], eos_ids, end_string: str = ""):
        self.format = get_format(response_format)
        if not labels:
            raise ValueError("constrained decoding needs the label set")
        self.trie = token_trie(tokenizer)
        self.response_format = response_format
        usable = [label for label in labels if not set(label.encode()) & _FORBIDDEN_LABEL]
        self.labels = LabelTrie(usable or labels)
        self.eos = frozenset(eos_ids)
        self.end_string = end_string.encode("utf-8")

    def row(self, example) -> RowConstraint:
        """The constraint for one Example (its text and word offsets)."""
        return RowConstraint(self, self.format.automaton(example, self.labels, self.trie, self.end_string))
