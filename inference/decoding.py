"""Decoding: prompts in, generated texts out. Batched greedy decoding with a Hugging Face causal LM in our own
loop, the shared-prefix KV cache, constrained decoding and the runaway guard for entity lists.

This module knows nothing of files, records or parsing (see `inference.generate`, which drives it);
it only turns prompts (strings or chat messages) into `Generated` texts, one per prompt, in order.

- Greedy decoding, left padding; the token prefix common to every prompt of a run is encoded once and
  its KV cache reused by every batch (`share_prefix`).
- Lean generation: our own loop instead of `model.generate`; a row that has finished leaves the batch
  (its rows of the KV cache, mask and positions are dropped, `compact`), so a step costs what its live
  rows cost. Per-step Python time (token choice, constraints, stopping) is counted in `stats`.
- Generation stops at the end-of-turn token the model was trained to emit (and, for the instruction
  style, at a new `###` section); the format's `new_token_bound` bounds the new tokens of each row from what
  it needs for its text (text tokens plus per-line overhead), not from a multiple of the input length.
- Constrained decoding (`DecodeOptions.constrain`): each row may only write what its format allows for
  its own text (`inference.constrained`); such a row always ends before its bound.
- Runaway guard (unconstrained, formats with `stops_runaway`, i.e. entity lists): a row stops at the first
  completed line whose entity text is not in its input text, or that lists a text more often than it occurs
  there (the format's `runaway`).
- Token scores (`DecodeOptions.scores`, on by default): the log-probability of each chosen token under the
  model's distribution renormalised over what the row's constraint allowed at that step (the whole vocabulary
  when unconstrained), and where each token ends in the response's characters (`Generated.token_logprobs`,
  `token_ends`). The choice itself is unchanged (still the argmax over the allowed tokens); what an entity's
  confidence is made of them is `inference.confidence`'s business.

Nothing here branches on a format's name: the format object (`prompts.formats.get_format`) is asked.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

from instruct_ner.prompts.formats import get_format
from instruct_ner.prompts.formats.entity_list import runaway_line  # noqa: F401  (the guard's default check)


@dataclass
class Generated:
    """One generated response: its text, how many tokens it took, and why it stopped."""

    text: str
    new_tokens: int
    prompt_tokens: int
    hit_limit: bool
    stopped_runaway: bool = False
    # per kept token (the end token included when the row ended with one): its renormalised log-probability, and
    # the character of `text` where it ends (the end token: len(text) + 1, one past the end)
    token_logprobs: list[float] | None = None
    token_ends: list[int] | None = None


@dataclass
class DecodeOptions:
    """Run-level decoding settings a generator holds: what the responses look like and how rows may stop.

    `stop_runaway` applies to formats that can run away (`stops_runaway`). `constrain` asks for constrained
    decoding where the generator supports it.
    """

    response_format: str = "entity_list"
    labels: list[str] = field(default_factory=list)
    stop_runaway: bool = True
    constrain: bool = False
    scores: bool = True

    @property
    def guarded(self) -> bool:
        return self.stop_runaway and get_format(self.response_format).stops_runaway


class Generator:
    """What the pipeline needs from a generator: prompts in, generated texts out (same order).

    `examples` are the records the prompts are about (their text and word offsets), given with every
    batch so that a generator can stop runaway rows or constrain each row to its own text.
    """

    options: DecodeOptions = DecodeOptions()

    def prepare(self, prompts: list) -> None:
        """Called once with every prompt of the run before the first batch (e.g. to share their prefix)."""

    def generate(self, prompts: list, limits: list[int], examples: list | None = None) -> list[Generated]:
        """One `Generated` per prompt, in order; `examples[i]` is the Example prompt i is about."""
        raise NotImplementedError  # pragma: no cover - interface

    def prompt_length(self, prompt) -> int:
        return len(prompt) if isinstance(prompt, str) else sum(len(m["content"]) for m in prompt)

    def text_length(self, text: str) -> int:
        return len(text.split())

    def text_lengths(self, texts: list[str]) -> list[int]:
        """`text_length` of many texts (a generator with a tokenizer counts them in one call)."""
        return [self.text_length(text) for text in texts]

    def context_length(self) -> int | None:
        """The most tokens (prompt and response) the model takes, or None when unknown."""
        return None


def cache_keyword(model) -> str:
    """The name under which this model's forward takes the KV cache: `cache` (transformers >= 5.2x, where the old
    `past_key_values` warns of its removal on every call) or `past_key_values` (older releases)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(type(base).forward).parameters else "past_key_values"


def returned_cache(output):
    """The KV cache a forward returned, under whichever name this transformers release gives it."""
    cache = output.get("cache") if hasattr(output, "get") else None
    return cache if cache is not None else output.past_key_values


class TokenizedGenerator(Generator):
    """What every engine with a Hugging Face tokenizer shares (ours, vLLM's, a vLLM server's): the prompt text (chat
    template applied), prompt and text lengths in tokens, the end-of-turn token ids, the instruction style's stop
    string and the per-row bound on new tokens (`row_limit`), so that engines cannot disagree on any of them."""

    def __init__(self, tokenizer, style: str, options: DecodeOptions | None = None):
        self.tokenizer, self.style = tokenizer, style
        self.options = options or DecodeOptions()
        eos = {tokenizer.eos_token_id}
        for token in ("<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "</s>"):
            token_id = tokenizer.convert_tokens_to_ids(token)
            if isinstance(token_id, int) and token_id != tokenizer.unk_token_id:
                eos.add(token_id)
        self.eos_ids = sorted(i for i in eos if i is not None)
        self._eos_set = frozenset(self.eos_ids)
        self.stop_strings = ["\n###"] if style == "instruction" else None
        self._label_tokens: int | None = None

    def prompt_text(self, prompt) -> str:
        if isinstance(prompt, str):
            return prompt
        return self.tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)

    def prompt_ids(self, prompt) -> list[int]:
        """The prompt's token ids, as TRL tokenised the training prompts (the tokenizer's own special-token rule)."""
        return self.tokenizer(self.prompt_text(prompt))["input_ids"]

    def prompt_length(self, prompt) -> int:
        return len(self.prompt_ids(prompt))

    def text_length(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def text_lengths(self, texts: list[str]) -> list[int]:
        counts = []
        for start in range(0, len(texts), 4096):  # bounded memory for a text of any size
            ids = self.tokenizer(texts[start : start + 4096], add_special_tokens=False)["input_ids"]
            counts += [len(i) for i in ids]
        return counts

    def row_limit(self, example) -> int:
        """The bound on new tokens for one example, from its text, words and the longest label."""
        labels = self.options.labels or ["MISC"]
        if self._label_tokens is None:
            self._label_tokens = max(self.text_length(" " + label) for label in labels)
        words = len(example.tokens) if example.tokens else None
        response_format = get_format(self.options.response_format)
        return response_format.new_token_bound(example.text, self.text_length(example.text), words, self._label_tokens)

    def row_limits(self, limits: list[int], examples: list | None) -> list[int]:
        """The caller's limits, each bounded by its example's `row_limit` (when the examples are given)."""
        if examples is None:
            return list(limits)
        return [min(limit, self.row_limit(example)) for limit, example in zip(limits, examples)]


class HFGenerator(TokenizedGenerator):
    """Greedy batched decoding with a Hugging Face causal LM (optionally with a LoRA adapter).

    With `share_prefix`, the token prefix common to every prompt of the run (the instruction, label
    definitions, few-shot examples) is encoded once; each batch starts from a copy of its KV cache and
    only encodes its own texts. Batches are laid out [prefix | padding | text], the padding masked, so
    positions and outputs are those of the unshared prompts.
    """

    top_k = 8  # constrained rows: candidates checked against the automaton before a full mask is computed

    def __init__(
        self,
        model,
        tokenizer,
        style: str,
        share_prefix: bool = True,
        options: DecodeOptions | None = None,
        compact: bool = True,
    ):
        super().__init__(tokenizer, style, options)
        self.model, self.compact = model, compact
        self.share_prefix, self.prefix_ids, self.prefix_cache = share_prefix, None, None
        self._pieces: dict[int, str] = {}
        self._factory, self._factory_key = None, None
        self.stats = new_stats()

    def prepare(self, prompts: list) -> None:
        import torch

        self.prefix_ids = self.prefix_cache = None
        if not self.share_prefix or len(prompts) < 2:
            return
        ids = [self.prompt_ids(p) for p in prompts]
        shortest = min(len(i) for i in ids)
        length = 0
        while length < shortest - 1 and all(i[length] == ids[0][length] for i in ids):
            length += 1
        if length < 8:
            return  # nothing worth sharing
        self.prefix_ids = ids[0][:length]
        with torch.inference_mode():
            prefix = torch.tensor([self.prefix_ids], device=self.model.device)
            self.prefix_cache = returned_cache(self.model(input_ids=prefix, use_cache=True))

    def context_length(self) -> int | None:
        """The model's trained context (`max_position_embeddings`; SmolLM2-135M: 2,048 tokens)."""
        config = getattr(self.model, "config", None)
        value = getattr(config, "max_position_embeddings", None)
        return int(value) if isinstance(value, int) and value > 0 else None

    def generate(self, prompts: list, limits: list[int], examples: list | None = None) -> list[Generated]:
        import torch

        texts = [self.prompt_text(p) for p in prompts]
        # Tokenised as TRL tokenised the training prompts: the tokenizer's own special-token rule.
        inputs, cache = self._shared_prefix_inputs(texts), None
        if inputs is not None:
            inputs, cache = inputs
        else:
            # Left padding asked per call: the caller's tokenizer keeps its own padding_side.
            inputs = self.tokenizer(texts, return_tensors="pt", padding=True, padding_side="left")
            inputs = inputs.to(self.model.device)
        limits = self.row_limits(limits, examples)
        constraints = None
        if self.options.constrain and examples is not None:
            factory = self.constraint_factory()
            constraints = [factory.row(example) for example in examples]
        guarded = examples is not None and self.options.guarded and constraints is None
        if guarded:
            check = get_format(self.options.response_format).runaway
            guard = RunawayGuard(self.tokenizer, [e.text for e in examples], 0, check)
        else:
            guard = None
        with torch.inference_mode():
            rows, logprobs = self._decode(inputs, cache, limits, guard, constraints)
        results = []
        for row, limit in enumerate(limits):
            new, stopped = rows[row], guard is not None and guard.stopped_at[row] is not None
            ended = next((k for k, t in enumerate(new) if t in self._eos_set), None)
            kept = new[:ended] if ended is not None else new[:limit]
            text = self.tokenizer.decode(kept, skip_special_tokens=True)
            if self.stop_strings and "\n###" in text:
                text = text[: text.index("\n###")]
            hit_limit = ended is None and not stopped and len(kept) >= limit and "\n###" not in text
            prompt_tokens = int(inputs["attention_mask"][row].sum())
            generated = Generated(text.strip(), len(kept), prompt_tokens, hit_limit, stopped and ended is None)
            if logprobs is not None:
                scored = len(kept) + (ended is not None)
                generated.token_logprobs = logprobs[row][:scored]
                generated.token_ends = self._token_ends(kept, text, ended is not None)
            results.append(generated)
        return results

    def _token_ends(self, kept: list[int], text: str, ended: bool) -> list[int]:
        """Where each kept token ends in the stripped response (prefix decodes; the end token one past its end).

        A token that splits a character ends where the character does; tokens past a cut (`\n###`) end at the end.
        """
        lead = len(text) - len(text.lstrip())
        length = len(text.strip())
        prefixes = self.tokenizer.batch_decode([kept[: k + 1] for k in range(len(kept))], skip_special_tokens=True)
        ends, previous = [], 0
        for prefix in prefixes:
            end = len(prefix.rstrip("\ufffd"))  # an unfinished character is not written yet
            previous = max(previous, min(max(end - lead, 0), length))
            ends.append(previous)
        return ends + [length + 1] if ended else ends

    def constraint_factory(self):
        from instruct_ner.inference.constrained import ConstraintFactory

        response_format, labels = self.options.response_format, list(self.options.labels)
        if self._factory is None or self._factory_key != (response_format, labels):
            end = "\n###" if self.stop_strings else ""
            self._factory = ConstraintFactory(self.tokenizer, response_format, labels, self.eos_ids, end)
            self._factory_key = (response_format, labels)
        return self._factory

    def _decode(self, inputs, cache, limits: list[int], guard, constraints) -> list[list[int]]:
        """Greedy decoding, our own loop: the new token ids of each row (eos included where it ended).

        Rows leave the batch when they finish (`compact`): their KV cache rows, mask and positions are
        dropped, so a step costs what its live rows cost. Without compaction finished rows are fed the pad
        token until every row has finished, as `model.generate` does. Time spent outside the forward pass
        (choosing tokens, constraints, stopping) is added up in `self.stats`.
        """
        import time

        import torch

        model, device = self.model, self.model.device
        input_ids, mask = inputs["input_ids"], inputs["attention_mask"]
        positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
        past = cache.get_seq_length() if cache is not None else 0
        step_ids, step_positions = input_ids[:, past:], positions[:, past:]
        last_position = positions[:, -1]
        n = input_ids.shape[0]
        live = list(range(n))  # original row of each batch row
        new: list[list[int]] = [[] for _ in range(n)]
        scored = self.options.scores
        logprobs: list[list[float]] | None = [[] for _ in range(n)] if scored else None
        finished = [False] * n
        tails = [""] * n
        stats = self.stats
        for _ in range(max(limits) if limits else 0):
            started = time.perf_counter()
            output = model(
                input_ids=step_ids,
                attention_mask=mask,
                position_ids=step_positions,
                **{cache_keyword(model): cache},
                use_cache=True,
                logits_to_keep=1,
            )
            cache, logits = returned_cache(output), output.logits[:, -1, :]
            chose = time.perf_counter()
            stats["forward_seconds"] += chose - started
            tokens, token_logprobs = self._choose(logits, live, new, limits, finished, constraints, scored)
            for k, row in enumerate(live):
                if finished[row]:
                    continue
                token = tokens[k]
                new[row].append(token)
                if logprobs is not None:
                    logprobs[row].append(token_logprobs[k])
                if constraints is not None and constraints[row] is not None:
                    constraints[row].advance(token)
                if self._row_done(row, token, new[row], limits[row], tails, guard, constraints):
                    finished[row] = True
            stats["steps"] += 1
            stats["row_steps"] += len(live)
            if all(finished):
                stats["other_seconds"] += time.perf_counter() - chose
                break
            keep = [k for k, row in enumerate(live) if not finished[row]]
            next_tokens = torch.tensor(tokens, dtype=torch.long, device=device)
            if self.compact and len(keep) < len(live):
                index = torch.tensor(keep, dtype=torch.long, device=device)
                cache.batch_select_indices(index)
                mask, last_position, next_tokens = mask[index], last_position[index], next_tokens[index]
                live = [live[k] for k in keep]
            else:
                next_tokens = next_tokens.masked_fill(
                    torch.tensor([finished[row] for row in live], device=device), self.tokenizer.pad_token_id
                )
            last_position = last_position + 1
            mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
            step_ids, step_positions = next_tokens[:, None], last_position[:, None]
            stats["other_seconds"] += time.perf_counter() - chose
        return new, logprobs

    def _choose(self, logits, live, new, limits, finished, constraints, scored=False):
        """The next token of each batch row: the argmax, or the best token its constraint allows; with `scored`, also
        its log-probability renormalised over the tokens that were allowed (else a list of None)."""
        import time

        if constraints is None:
            tokens = logits.argmax(-1)
            if not scored:
                return tokens.tolist(), [None] * len(live)
            chosen_logprobs = logits.float().log_softmax(-1).gather(1, tokens[:, None])[:, 0]
            return tokens.tolist(), chosen_logprobs.tolist()
        started = time.perf_counter()
        k = min(self.top_k, logits.shape[-1])
        top = logits.topk(k, dim=-1).indices.tolist()
        chosen, chosen_logprobs = [], []
        for b, row in enumerate(live):
            if finished[row]:
                chosen.append(self.tokenizer.pad_token_id)
                chosen_logprobs.append(None)
                continue
            constraint = constraints[row]
            # tokens left, this one included; the next state must finish in what is left after the end token
            budget = limits[row] - len(new[row]) - 2
            token = next((t for t in top[b] if constraint.allows(t, budget) is not None), None)
            if token is None:
                allowed = constraint.allowed(budget) or constraint.allowed(1 << 30)
                self.stats["full_masks"] += 1
                if allowed:
                    index = self._index_tensor(allowed, logits.device)
                    token = allowed[int(logits[b].index_select(0, index).argmax())]
                else:  # nothing can follow (cannot happen for a live row); end it
                    token = self.eos_ids[0]
            elif scored:
                allowed = constraint.allowed(budget) or constraint.allowed(1 << 30)
            chosen.append(token)
            chosen_logprobs.append(self._renormalised(logits[b], token, allowed) if scored else None)
        self.stats["constraint_seconds"] += time.perf_counter() - started
        return chosen, chosen_logprobs

    def _renormalised(self, logits, token: int, allowed: list[int]) -> float:
        """log p(token) under the softmax restricted to `allowed` (the token counted in, should it not be there)."""
        if not allowed:
            return 0.0
        index = self._index_tensor(sorted(set(allowed) | {token}), logits.device)
        return float(logits[token].float() - logits.index_select(0, index).float().logsumexp(0))

    @staticmethod
    def _index_tensor(ids: list[int], device):
        import torch

        return torch.tensor(ids, dtype=torch.long, device=device)

    def _row_done(self, row, token, new, limit, tails, guard, constraints) -> bool:
        if token in self._eos_set or len(new) >= limit:
            return True
        if constraints is not None and constraints[row] is not None and constraints[row].done:
            return True
        piece = self._piece(token)
        if self.stop_strings:
            tails[row] = (tails[row] + piece)[-8:]
            if "\n###" in tails[row]:
                return True
        if guard is not None and "\n" in piece:
            return guard.check(row, self.tokenizer.decode(new, skip_special_tokens=True), len(new))
        return False

    def _piece(self, token: int) -> str:
        piece = self._pieces.get(token)
        if piece is None:
            piece = self._pieces[token] = self.tokenizer.decode([token])
        return piece

    def _shared_prefix_inputs(self, texts: list[str]):
        """([prefix | padding | text] ids and mask, a copy of the prefix cache per row), or None."""
        import copy

        import torch

        if self.prefix_ids is None:
            return None
        length = len(self.prefix_ids)
        ids = [self.tokenizer(text)["input_ids"] for text in texts]
        if any(i[:length] != self.prefix_ids or len(i) <= length for i in ids):
            return None  # a prompt outside the prepared run: encode it whole
        width = max(len(i) - length for i in ids)
        input_ids = torch.full((len(ids), length + width), self.tokenizer.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros_like(input_ids)
        for row, i in enumerate(ids):
            suffix = i[length:]
            input_ids[row, :length] = torch.tensor(self.prefix_ids)
            input_ids[row, length + width - len(suffix) :] = torch.tensor(suffix)
            attention_mask[row, :length] = 1
            attention_mask[row, length + width - len(suffix) :] = 1
        cache = copy.deepcopy(self.prefix_cache)
        cache.batch_repeat_interleave(len(ids))
        device = self.model.device
        return {"input_ids": input_ids.to(device), "attention_mask": attention_mask.to(device)}, cache


class RunawayGuard:
    """The runaway guard, row by row: a row stops once `check` (the format's `runaway`; default the entity
    list's `runaway_line`) holds for what it has generated
    (checked only when a token containing a newline completes a line). `stopped_at[row]` is the number of
    new tokens the row had then. Our decoding loop calls `check`; called with (input_ids, scores) it is
    also a `transformers` stopping criterion (new tokens start at `prompt_width`)."""

    def __init__(self, tokenizer, sources: list[str], prompt_width: int, check=runaway_line):
        self.tokenizer, self.sources, self.prompt_width, self.runaway = tokenizer, sources, prompt_width, check
        self.stopped_at: list[int | None] = [None] * len(sources)
        self._has_newline: dict[int, bool] = {}

    def check(self, row: int, response: str, new_tokens: int | None = None) -> bool:
        """Whether the row stops here (`response`: its text so far, ending with a newline token)."""
        if self.stopped_at[row] is None and self.runaway(response, self.sources[row]):
            self.stopped_at[row] = new_tokens if new_tokens is not None else len(self.tokenizer(response)["input_ids"])
        return self.stopped_at[row] is not None

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        stop = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        for row, token in enumerate(input_ids[:, -1].tolist()):
            if self.stopped_at[row] is not None:
                stop[row] = True
                continue
            if token not in self._has_newline:
                self._has_newline[token] = "\n" in self.tokenizer.decode([token])
            if not self._has_newline[token]:
                continue
            new = input_ids[row, self.prompt_width :].tolist()
            stop[row] = self.check(row, self.tokenizer.decode(new, skip_special_tokens=True), len(new))
        return stop


def new_stats() -> dict:
    """Decoding counters: forward-pass and other (per-step Python) seconds, steps, rows decoded, full masks."""
    return {
        "forward_seconds": 0.0,
        "other_seconds": 0.0,
        "constraint_seconds": 0.0,
        "steps": 0,
        "row_steps": 0,
        "full_masks": 0,
    }
