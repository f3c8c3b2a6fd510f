"""Windows: the one policy that cuts a long text into pieces a model can take, and merges their predictions back.

Both prediction paths use it: the generative predictor (a window is one prompt: instruction, few-shot examples,
the window's text and the format's response bound must fit the model's context) and the token classifier (a
window is one forward pass of at most the tagger's `max_length` sub-tokens).

- The window's size: at most what the model's context takes (prompt, text and the format's response bound), and by
  default at most twice the longest text the model was trained on (`Artifact.window_cap`, recorded by train and
  train-tagger): a model trained on sentences, asked about a whole document in one window, misses entities
  (CoNLL-2003 test as documents with the sentence-trained tagger: F1 0.624 in windows of up to 510 tokens against
  0.663 sentence by sentence; 0.670 in windows of 128, BENCHMARKS.md).
- A generative model's window holds by default at most as many sentences as nine in ten of its training texts
  (`Artifact.window_sentences`: one for a model trained on sentences): its entity list stops short on a window of
  several sentences, where the tagger, which labels every token, gains from them (no sentence limit for it). A
  text (or message) no longer than the longest training text is one window whatever its sentences: it reads as
  the training texts did.
  Windows cut at a sentence start under that limit share no overlap (the model never saw context past its own
  sentences); a sentence longer than the window is cut by words, with the overlap.
- Messages: a text too long for one window is first cut around the header of each quoted or forwarded message (a
  reply's `Il giorno ... ha scritto:` / `On ... wrote:`, a forward's or Outlook's header block: `message_headers`):
  no window spans a reply and the mail it quotes, each message is read as the e-mail it was, and each header is a
  window of its own.
- Cutting (`split_windows`): a text is a list of words with a cost each (its model tokens, with the whitespace
  before it) and a predicate `fits(start, end)` that says whether words [start, end) fit one window. A text that
  fits is one window. Otherwise (after the cut at message starts) each window ends at the last sentence start
  that fits (`sentence_starts`, from `prompts.tokenize.sentence_bounds`: line breaks and . ! ? before a capital,
  not after `Sig.`, `Dott.`, `n.`, `S.p.A.`), else at the last word that fits, and never cuts a word. Prediction
  cuts on the text alone; a caller that cuts annotated text for training can forbid cuts inside gold entities
  (`allowed_cuts`). The next window starts `overlap` tokens back: whole sentences when they fit in the overlap,
  else whole words. A word (or gold entity) longer than a window is a window of its own (over budget; the caller
  decides what to do with it).
- Merging (`merge_spans`): every window's entities, in document word positions, are candidates. Rule: the
  candidate farther from an edge of its window wins (an edge that is the document's own edge is no edge: the
  text is whole there), ties to the earlier window; candidates are taken in that order and one that overlaps a
  span already taken is dropped. The same span with the same label found by two windows counts once
  (`duplicates`); a dropped candidate with another label or other bounds is a `conflict` (both counted).

It is pure Python: it does not tokenise (the caller gives the costs), render prompts or run a model.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from instruct_ner.examples import Example
from instruct_ner.prompts.tokenize import message_headers, sentence_bounds

OVERLAP_SHARE = 32  # the default overlap of two windows: a 32nd of the model's context (64 tokens of 2,048)
WINDOW_OVERLAP_SHARE = 4  # and at most a quarter of the window itself


def default_overlap(context: float, window: float = math.inf) -> int:
    """The overlap, in tokens, two neighbouring windows share unless told otherwise: whole sentences (else words)
    up to a 32nd of the model's context, and at most a quarter of the window (so that short windows still move on).

    Example: default_overlap(2048) -> 64; default_overlap(2048, 118) -> 29
    """
    shares = [int(context) // OVERLAP_SHARE] if context < math.inf else []
    shares += [int(window) // WINDOW_OVERLAP_SHARE] if window < math.inf else []
    return max(0, min(shares, default=0))


@dataclass
class WindowOptions:
    """The window flags of `generate` and `tag` (and the fields of `RunOptions` they fill)."""

    window_tokens: int | None = field(
        default=None,
        metadata={
            "help": "most text tokens of one window of a long text; default: twice the longest training text, "
            "within what the model's context allows (generate: with the prompt and the response bound; tag: the "
            "tagger's max_length)"
        },
    )
    window_overlap: int | None = field(
        default=None,
        metadata={
            "help": "most tokens two neighbouring windows share (whole sentences, else words); default: "
            "a 32nd of the context, at most a quarter of the window"
        },
    )
    window_sentences: int | None = field(
        default=None,
        metadata={
            "help": "most sentences of one window of a long text; default: as many as nine in ten of a generative "
            "model's training texts hold (1 for a model trained on sentences), no limit for a tagger; 0: no limit"
        },
    )


def check_window_options(options: WindowOptions) -> None:
    """A window of no token, or a negative overlap, is a mistake of the options (one line)."""
    from instruct_ner.config import ConfigError

    if options.window_tokens is not None and options.window_tokens < 1:
        raise ConfigError(f"window_tokens must be at least 1, got {options.window_tokens}")
    if options.window_overlap is not None and options.window_overlap < 0:
        raise ConfigError(f"window_overlap must be 0 or more, got {options.window_overlap}")
    if options.window_sentences is not None and options.window_sentences < 0:
        raise ConfigError(f"window_sentences must be 0 (no limit) or more, got {options.window_sentences}")


@dataclass
class Merged:
    """The merged spans of a document (label, word start, word end), in text order, and what merging dropped."""

    spans: list[tuple[str, int, int]]
    duplicates: int = 0
    conflicts: int = 0
    dropped: list[tuple[str, int, int]] = field(default_factory=list)
    scores: dict[tuple[str, int, int], float] = field(default_factory=dict)  # each kept span's, where given


def allowed_cuts(tags: Sequence[str]) -> list[bool]:
    """`cut[i]`: a window may begin at word i (and the one before end there): not inside a gold entity.

    Example: allowed_cuts(["B-PER", "I-PER", "O", "B-LOC"]) -> [True, False, True, True]
    """
    return [not tag.startswith("I-") for tag in tags]


def word_positions(example: Example, characters: Sequence[int]) -> list[int]:
    """The word positions (0 first) where the character positions fall, each the first word starting there or after.

    Example: word_positions(Example("d", ["Ciao", ".", "Grazie", "."], ["O"] * 4), [7]) -> [0, 2]
    """
    starts = [0]
    word_starts = [start for start, _ in example.offsets]
    for first in characters:
        word = bisect.bisect_left(word_starts, first)
        if 0 < word < len(word_starts) and word != starts[-1]:
            starts.append(word)
    return starts


def sentence_starts(example: Example) -> list[int]:
    """The word positions where a sentence of the example's text begins (0 first), by `sentence_bounds`.

    Example: sentence_starts(Example("d", ["Ciao", ".", "Grazie", "."], ["O"] * 4)) -> [0, 2]
    """
    return word_positions(example, [start for start, _ in sentence_bounds(example.text)])


def few_sentences(example: Example, tokens: float, most: int | None, longest: int | None) -> bool:
    """Whether a text of `tokens` tokens may be one window as far as sentences go: no sentence limit, a text no
    longer than the longest training text, or at most `most` sentences (the check both predictors make first).

    Example: few_sentences(Example("d", ["A", ".", "B", "."], ["O"] * 4), 4, 1, None) -> False
    """
    return most is None or tokens <= (longest or 0) or len(sentence_starts(example)) <= most


def example_windows(
    example,
    costs: Sequence[int],
    fits: Callable[[int, int], bool],
    overlap: int = 0,
    max_sentences: int | None = None,
    whole_tokens: int | None = None,
):
    """`split_windows` over an example's words: its sentence starts as preferred cuts, the bounds of its message
    headers (quoted or forwarded mail, `message_headers`) as cuts a text too long for one window is always cut at.

    The one call both predictors make (the generative one measures `fits` on prompts, the tagger on word tokens).
    The cuts depend on the text alone, never on its gold tags: a text is windowed and predicted the same with and
    without annotations (the API's raw text and the CLI's scored file agree), and gold never helps a score.
    """
    bounds = [position for header in message_headers(example.text) for position in header]
    messages = word_positions(example, bounds)[1:]
    sentences = sentence_starts(example)
    return split_windows(costs, fits, overlap, sentences, None, messages, max_sentences, whole_tokens)


def split_windows(
    costs: Sequence[int],
    fits: Callable[[int, int], bool],
    overlap: int = 0,
    sentences: Sequence[int] = (),
    cuts: Sequence[bool] | None = None,
    messages: Sequence[int] = (),
    max_sentences: int | None = None,
    whole_tokens: int | None = None,
) -> list[tuple[int, int]]:
    """Word ranges [start, end) of the windows of a text of `len(costs)` words (see the module docstring).

    `fits(start, end)` must be monotone (a range inside one that fits fits too); `overlap`: the most tokens (by
    `costs`) two neighbouring windows share, at most half of the window before; `sentences`: sentence starts;
    `cuts[i]`: whether a window may begin at word i (default: everywhere); `messages`: where a text that does not
    fit one window is cut first (each part then windowed on its own); `max_sentences`: the most sentences (started
    in it, or cut into) of one window, and windows cut at a sentence start then share no overlap; `whole_tokens`: a
    text, or a part between message starts, of at most so many tokens that fits is one window whatever its
    sentences (a text as long as the model's training texts is read as they were).
    Example: split_windows([1] * 6, lambda s, e: e - s <= 4, overlap=1) -> [(0, 4), (3, 6)]
    Example: split_windows([1] * 6, lambda s, e: True, sentences=[2, 4], max_sentences=1) -> [(0, 2), (2, 4), (4, 6)]
    """
    n = len(costs)
    if n == 0:
        return []
    cuts = cuts if cuts is not None else [True] * n
    sentence_list = sorted({i for i in sentences if 0 < i < n and cuts[i]})
    prefix = [0]
    for cost in costs:
        prefix.append(prefix[-1] + cost)
    short = whole_tokens if whole_tokens is not None else -1
    fits_tokens = fits
    whole = lambda start, end: prefix[end] - prefix[start] <= short and fits_tokens(start, end)  # noqa: E731
    if max_sentences is not None:
        fits = within_sentences(fits, sentence_list, max(1, max_sentences))
    if whole(0, n) or fits(0, n):
        return [(0, n)]
    bounds = [0, *sorted({m for m in messages if 0 < m < n and cuts[m]}), n]
    windows: list[tuple[int, int]] = []
    for low, high in zip(bounds, bounds[1:]):
        if whole(low, high):
            windows.append((low, high))
            continue
        part = [i for i in sentence_list if low < i < high]
        windows += split_part(low, high, prefix, fits, overlap, part, cuts, max_sentences is not None)
    return windows


def within_sentences(fits: Callable[[int, int], bool], sentences: list[int], most: int) -> Callable[[int, int], bool]:
    """`fits`, and [start, end) holds at most `most` sentences (each sentence start inside it opens one more).

    Example: within_sentences(lambda s, e: True, [2, 4], 2)(0, 5) -> False
    """

    def fits_sentences(start: int, end: int) -> bool:
        inside = bisect.bisect_left(sentences, end) - bisect.bisect_right(sentences, start)
        return inside + 1 <= most and fits(start, end)

    return fits_sentences


def split_part(
    low: int,
    high: int,
    prefix: list[int],
    fits: Callable[[int, int], bool],
    overlap: int,
    sentences: list[int],
    cuts: Sequence[bool],
    capped: bool,
) -> list[tuple[int, int]]:
    """The windows of words [low, high) (one part of a text between message starts); see `split_windows`."""
    if fits(low, high):
        return [(low, high)]
    words = [i for i in range(low + 1, high) if cuts[i]] + [high]  # where a window may end
    sentence_set = set(sentences)
    ends_at_sentences = [*sentences, high]

    def last_fitting(candidates: list[int], start: int, after: int) -> int | None:
        """The largest candidate end > after (and > start) with fits(start, end), by binary search."""
        low_k = bisect.bisect_right(candidates, max(start, after))
        high_k = len(candidates) - 1
        found = None
        while low_k <= high_k:
            middle = (low_k + high_k) // 2
            if fits(start, candidates[middle]):
                found, low_k = candidates[middle], middle + 1
            else:
                high_k = middle - 1
        return found

    windows: list[tuple[int, int]] = []
    start, previous_end = low, low
    while previous_end < high:
        end = last_fitting(ends_at_sentences, start, previous_end) or last_fitting(words, start, previous_end)
        if end is None and start < previous_end:  # the overlap leaves no room for the next word: no overlap
            start = previous_end
            end = last_fitting(ends_at_sentences, start, start) or last_fitting(words, start, start)
        if end is None:  # one word (or gold entity) longer than a window: a window of its own
            end = words[bisect.bisect_right(words, start)]
        windows.append((start, end))
        previous_end = end
        if end == high:
            break
        at_sentence = capped and end in sentence_set  # a model reading whole sentences needs no context across them
        start = end if at_sentence else overlap_start(prefix, start, end, overlap, sentence_set, cuts)
    return windows


def overlap_start(
    prefix: list[int], start: int, end: int, overlap: int, sentences: set[int], cuts: Sequence[bool]
) -> int:
    """Where the window after [start, end) begins: the earliest sentence start (else word) in (start, end] whose
    words up to `end` cost at most `overlap` tokens and half the window; `end` when none does.

    Example: overlap_start([0, 1, 2, 3, 4], 0, 4, 2, set(), [True] * 4) -> 2
    """
    limit = min(overlap, (prefix[end] - prefix[start]) // 2)
    if limit <= 0:
        return end
    sentence = min((s for s in sentences if start < s < end and prefix[end] - prefix[s] <= limit), default=None)
    if sentence is not None:
        return sentence
    first = bisect.bisect_left(prefix, prefix[end] - limit, lo=start + 1, hi=end + 1)
    for word in range(max(first, start + 1), end):
        if cuts[word]:
            return word
    return end


def window_example(example: Example, start: int, end: int) -> Example:
    """The words [start, end) of an example as an Example of their own (text sliced, offsets shifted); the example
    itself when the range is all of it, so that a text that fits one window is predicted exactly as before.

    Example: window_example(Example("d", ["a", "b", "c"], ["O"] * 3), 1, 3).text -> "b c"
    """
    if start == 0 and end == len(example.tokens):
        return example
    first, last = example.offsets[start][0], example.offsets[end - 1][1]
    offsets = [(s - first, e - first) for s, e in example.offsets[start:end]]
    return Example(
        f"{example.id}#w{start}",
        example.tokens[start:end],
        example.tags[start:end],
        example.text[first:last],
        offsets,
        example.source,
    )


def merge_spans(
    windows: Sequence[tuple[int, int]],
    found: Sequence[Sequence[tuple[str, int, int]]],
    n: int,
    scores: Sequence[Mapping[tuple[str, int, int], float]] | None = None,
) -> Merged:
    """One set of non-overlapping spans for a document of `n` words from each window's spans (window-local word
    positions), by the rule of the module docstring. `scores`: each window's span confidences (window-local keys);
    a kept span keeps the score of the window it was taken from (`Merged.scores`, document positions).

    Example: merge_spans([(0, 4), (1, 6)], [[("PER", 2, 4)], [("PER", 1, 4)]], 6).spans -> [("PER", 2, 5)]
    """
    candidates = []
    for k, ((w_start, w_end), spans) in enumerate(zip(windows, found)):
        for label, s, e in spans:
            score = scores[k].get((label, s, e)) if scores is not None else None
            s, e = s + w_start, e + w_start
            left = s - w_start if w_start > 0 else math.inf
            right = w_end - e if w_end < n else math.inf
            candidates.append((-min(left, right), k, s, e, label, score))
    candidates.sort(key=lambda candidate: candidate[:5])
    taken: dict[tuple[str, int, int], None] = {}
    owner = [-1] * n  # the span (index into kept) covering each word
    kept: list[tuple[str, int, int]] = []
    merged = Merged([])
    for _, _, s, e, label, score in candidates:
        if (label, s, e) in taken:
            merged.duplicates += 1
            continue
        if any(owner[i] >= 0 for i in range(s, e)):
            merged.conflicts += 1
            merged.dropped.append((label, s, e))
            continue
        taken[(label, s, e)] = None
        for i in range(s, e):
            owner[i] = len(kept)
        kept.append((label, s, e))
        if score is not None:
            merged.scores[(label, s, e)] = score
    merged.spans = sorted(kept, key=lambda span: (span[1], span[2]))
    return merged


def word_costs(example: Example, lengths: Callable[[list[str]], list[int]]) -> list[int]:
    """Each word's model tokens, counted with the whitespace before it (`lengths`: a batch of texts -> their token
    counts), so a window's cost is about the tokens of its text.

    Example: word_costs(Example("d", ["EU", "rejects"], ["O", "O"]), lambda ts: [len(t) for t in ts]) -> [2, 8]
    """
    pieces, previous = [], 0
    for i, (start, end) in enumerate(example.offsets):
        pieces.append(example.text[previous if i else start : end])
        previous = end
    return [max(1, count) for count in lengths(pieces)]
