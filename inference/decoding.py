"""Decoding: prompts in, generated texts out. Batched greedy decoding with a Hugging Face causal LM,
the shared-prefix KV cache, and the runaway guard for entity lists.

This module knows nothing of files, records or parsing (see `inference.generate`, which drives it);
it only turns prompts (strings or chat messages) into `Generated` texts, one per prompt, in order.

- Greedy decoding, left padding; the token prefix common to every prompt of a run is encoded once and
  its KV cache reused by every batch (`share_prefix`).
- Generation stops at the end-of-turn token the model was trained to emit (and, for the instruction
  style, at a new `###` section); `length_bound` bounds the new tokens of each row from its text.
- Runaway guard (entity lists): a row stops at the first completed line whose entity text is not in its
  input text, or that lists a text more often than it occurs there.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Generated:
    """One generated response: its text, how many tokens it took, and why it stopped."""

    text: str
    new_tokens: int
    prompt_tokens: int
    hit_limit: bool
    stopped_runaway: bool = False


@dataclass
class DecodeOptions:
    """Run-level decoding settings a generator holds: what the responses look like and how rows may stop.

    `stop_runaway` applies to entity lists only. `constrain` asks for constrained decoding where the
    generator supports it.
    """

    response_format: str = "entity_list"
    labels: list[str] = field(default_factory=list)
    stop_runaway: bool = True
    constrain: bool = False

    @property
    def guarded(self) -> bool:
        return self.stop_runaway and self.response_format == "entity_list"


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


def length_bound(text_tokens: int, response_format: str) -> int:
    """Most tokens a complete response can need: entity lists repeat entity text plus ` | LABEL` per line.

    Example: length_bound(10, "entity_list") -> 46
    """
    return 3 * text_tokens + 16 if response_format == "entity_list" else 2 * text_tokens + 24


def _squash(text: str) -> str:
    return "".join(text.split()).lower()


def runaway_line(response: str, source: str) -> bool:
    """Whether the last complete line of a partial entity-list response shows the model running away:
    its entity text (compared without case and spacing) is not in the source text, or the response
    lists that text more often than it occurs there. The line still being written is not judged.

    Example: runaway_line("Japan | LOC\nJapan | LOC\n", "Japan beat Syria .") -> True
    Example: runaway_line("Japan | LOC\nSyria | LOC\n", "Japan beat Syria .") -> False
    Example: runaway_line("Bolton | LOC\n", "Japan beat Syria .") -> True
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


class HFGenerator(Generator):
    """Greedy batched decoding with a Hugging Face causal LM (optionally with a LoRA adapter).

    With `share_prefix`, the token prefix common to every prompt of the run (the instruction, label
    definitions, few-shot examples) is encoded once; each batch starts from a copy of its KV cache and
    only encodes its own texts. Batches are laid out [prefix | padding | text], the padding masked, so
    positions and outputs are those of the unshared prompts.
    """

    def __init__(self, model, tokenizer, style: str, share_prefix: bool = True, options: DecodeOptions | None = None):
        self.model, self.tokenizer, self.style = model, tokenizer, style
        self.options = options or DecodeOptions()
        self.share_prefix, self.prefix_ids, self.prefix_cache = share_prefix, None, None
        eos = {tokenizer.eos_token_id}
        for token in ("<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "</s>"):
            token_id = tokenizer.convert_tokens_to_ids(token)
            if isinstance(token_id, int) and token_id != tokenizer.unk_token_id:
                eos.add(token_id)
        self.eos_ids = sorted(i for i in eos if i is not None)
        self.stop_strings = ["\n###"] if style == "instruction" else None

    def prepare(self, prompts: list) -> None:
        import torch

        self.prefix_ids = self.prefix_cache = None
        if not self.share_prefix or len(prompts) < 2:
            return
        ids = [self.tokenizer(self.prompt_text(p))["input_ids"] for p in prompts]
        shortest = min(len(i) for i in ids)
        length = 0
        while length < shortest - 1 and all(i[length] == ids[0][length] for i in ids):
            length += 1
        if length < 8:
            return  # nothing worth sharing
        self.prefix_ids = ids[0][:length]
        with torch.inference_mode():
            prefix = torch.tensor([self.prefix_ids], device=self.model.device)
            self.prefix_cache = self.model(input_ids=prefix, use_cache=True).past_key_values

    def prompt_text(self, prompt) -> str:
        if isinstance(prompt, str):
            return prompt
        return self.tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)

    def prompt_length(self, prompt) -> int:
        return len(self.tokenizer(self.prompt_text(prompt))["input_ids"])

    def text_length(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def generate(self, prompts: list, limits: list[int], examples: list | None = None) -> list[Generated]:
        import torch
        from transformers import StoppingCriteriaList

        texts = [self.prompt_text(p) for p in prompts]
        # Tokenised as TRL tokenised the training prompts: the tokenizer's own special-token rule.
        inputs, cache = self._shared_prefix_inputs(texts), None
        if inputs is not None:
            inputs, cache = inputs
        else:
            # Left padding asked per call: the caller's tokenizer keeps its own padding_side.
            inputs = self.tokenizer(texts, return_tensors="pt", padding=True, padding_side="left")
            inputs = inputs.to(self.model.device)
        prompt_width = inputs["input_ids"].shape[1]
        guarded = examples is not None and self.options.guarded
        guard = RunawayGuard(self.tokenizer, [e.text for e in examples], prompt_width) if guarded else None
        with torch.inference_mode():
            output = self.model.generate(
                **inputs,
                past_key_values=cache,
                max_new_tokens=max(limits),
                do_sample=False,
                eos_token_id=self.eos_ids,
                pad_token_id=self.tokenizer.pad_token_id,
                stop_strings=self.stop_strings,
                tokenizer=self.tokenizer if self.stop_strings else None,
                stopping_criteria=StoppingCriteriaList([guard]) if guard else None,
            )
        results = []
        for row, limit in enumerate(limits):
            new = output[row, prompt_width:].tolist()
            stopped = guard is not None and guard.stopped_at[row] is not None
            if stopped:
                new = new[: guard.stopped_at[row]]
            ended = next((k for k, t in enumerate(new) if t in self.eos_ids), None)
            kept = new[:ended] if ended is not None else new[:limit]
            text = self.tokenizer.decode(kept, skip_special_tokens=True)
            if self.stop_strings and "\n###" in text:
                text = text[: text.index("\n###")]
            hit_limit = ended is None and not stopped and len(kept) >= limit and "\n###" not in text
            prompt_tokens = int(inputs["attention_mask"][row].sum())
            results.append(Generated(text.strip(), len(kept), prompt_tokens, hit_limit, stopped and ended is None))
        return results

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
    """A `transformers` stopping criterion, row by row: a row stops once `runaway_line` holds for what it
    has generated (checked only when a token containing a newline completes a line). `stopped_at[row]`
    is the number of new tokens the row had then; generate pads the rest."""

    def __init__(self, tokenizer, sources: list[str], prompt_width: int):
        self.tokenizer, self.sources, self.prompt_width = tokenizer, sources, prompt_width
        self.stopped_at: list[int | None] = [None] * len(sources)
        self._has_newline: dict[int, bool] = {}

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
            if runaway_line(self.tokenizer.decode(new, skip_special_tokens=True), self.sources[row]):
                self.stopped_at[row] = len(new)
                stop[row] = True
        return stop
