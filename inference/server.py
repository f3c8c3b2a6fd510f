"""`instruct-ner serve`: vLLM's OpenAI-compatible server with trained adapters as LoRA modules, and the client
the API uses for it (`NER.from_server(url, adapter=DIR)`, a `ServerGenerator`).

The server is vLLM's own (`vllm.entrypoints.openai.api_server`, run in this process's place): the adapters' common
base model at our resolved precision, each adapter a LoRA module named after its folder (`adapter_name`), on
127.0.0.1 unless `--host` says otherwise. Nothing of ours runs inside it.

The client sends what `generate --engine vllm` sends (`inference.vllm_engine`): our prompt as token ids (rendered
and tokenised here, from the adapter folder's saved prompt), greedy, our stop rule and per-row bound, the per-row
constraint as `structured_outputs: {"regex": ...}` (vLLM 0.32's request field; older releases called it
`guided_regex`), and reads back the generated token ids (`return_token_ids`), which our rules cut and our tokenizer
decodes; the predictor then parses them as for any engine, so records equal `generate --engine vllm`'s. Requests of
a batch go out concurrently (one thread each, up to `concurrency`). Only the standard library speaks HTTP here.

Example:
    instruct-ner serve --adapter runs/sft-conll --adapter runs/sft-emails --port 8000
    NER.from_server("http://127.0.0.1:8000", adapter="runs/sft-conll").predict_entities("EU rejects German call")
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from instruct_ner.config import Config, ConfigError, parse_config
from instruct_ner.errors import ModelError
from instruct_ner.inference.decoding import DecodeOptions, Generated, TokenizedGenerator
from instruct_ner.inference.vllm_engine import (
    VLLM_MISSING,
    adapter_rank,
    cpu_kv_cache_bytes,
    finish,
    lora_slot_rank,
    model_context,
    row_regex,
    vllm_dtype,
)
from instruct_ner.sft.artifact import Artifact
from instruct_ner.sft.options import PrecisionOption


def adapter_name(folder: str | Path) -> str:
    """The LoRA module name of an adapter folder on the server (and the client's default): its folder name.

    Example: adapter_name("runs/sft-conll/") -> "sft-conll"
    """
    return Path(folder).resolve().name


@dataclass
class ServeConfig(Config, PrecisionOption):
    adapter: list[str] = field(
        default_factory=list, metadata={"help": "LoRA adapter folders from train (one or more; repeat --adapter)"}
    )
    model: str = field(default="", metadata={"help": "base model folder; default: the adapters' saved base model"})
    host: str = field(default="127.0.0.1", metadata={"help": "address to listen on (loopback unless told)"})
    port: int = field(default=8000, metadata={"help": "port to listen on"})

    def __post_init__(self) -> None:
        if not self.adapter:
            raise ConfigError("serve needs --adapter DIR (one or more adapter folders from train)")


def server_command(config: ServeConfig, python: str = sys.executable) -> list[str]:
    """vLLM's server command line for the config; every adapter checked and on one base model first."""
    from instruct_ner.sft.models import EMBEDDED, resolve_model, resolve_precision

    names, bases, ranks = {}, set(), []
    for folder in config.adapter:
        if not Path(folder, "adapter_config.json").exists():
            raise ModelError(f"{folder}: no adapter_config.json; not a LoRA adapter folder")
        artifact = Artifact.load(folder, kind="generative")
        name = adapter_name(folder)
        if name in names:
            raise ConfigError(f"two adapters named {name!r} ({names[name]}, {folder}); rename one folder")
        names[name] = folder
        bases.add(artifact.base_model or EMBEDDED)
        ranks.append(adapter_rank(folder))
    if not config.model and len(bases) > 1:
        raise ConfigError(f"the adapters were trained on different base models {sorted(bases)}; serve one at a time")
    model_path = resolve_model(config.model or bases.pop())
    dtype = vllm_dtype(resolve_precision(config.precision, "generate", model_path))
    command = [python, "-m", "vllm.entrypoints.openai.api_server", "--model", model_path, "--dtype", dtype]
    command += ["--seed", "0", "--host", config.host, "--port", str(config.port)]
    context = model_context(model_path)
    if context:
        command += ["--max-model-len", str(context)]
    if cpu_kv_cache_bytes():
        command += ["--kv-cache-memory-bytes", str(cpu_kv_cache_bytes())]
    command += ["--enable-lora", "--max-loras", str(len(names)), "--max-lora-rank", str(lora_slot_rank(ranks))]
    command += ["--lora-modules", *(f"{name}={Path(folder).resolve()}" for name, folder in names.items())]
    return command


def repeated_flags(argv: list[str], flag: str = "--adapter") -> list[str]:
    """`--adapter A --adapter B` as `--adapter A B` (list options take their values after one flag).

    Example: repeated_flags(["--adapter", "a", "--port", "1", "--adapter", "b"])
    -> ["--adapter", "a", "b", "--port", "1"]
    """
    values, rest, k = [], [], 0
    while k < len(argv):
        if argv[k] == flag:
            k += 1
            while k < len(argv) and not argv[k].startswith("--"):
                values.append(argv[k])
                k += 1
        else:
            rest.append(argv[k])
            k += 1
    return ([flag, *values] if values else []) + rest


def main(argv: list[str] | None = None) -> int:
    import importlib.util

    argv = repeated_flags(sys.argv[1:] if argv is None else argv)
    config = parse_config(ServeConfig, argv, prog="instruct-ner serve", description=__doc__)
    if importlib.util.find_spec("vllm") is None:
        raise ConfigError(VLLM_MISSING.replace("--engine vllm", "serve"))
    command = server_command(config)
    print("instruct-ner serve: " + " ".join(command), file=sys.stderr, flush=True)
    os.execv(command[0], command)  # vLLM's server in this process's place: signals reach it directly
    return 0  # pragma: no cover - execv does not return


class ServerGenerator(TokenizedGenerator):
    """A `Generator` that asks a vLLM OpenAI-compatible server (`instruct-ner serve`) for completions of our prompts,
    one request per prompt, up to `concurrency` at once. `latencies` keeps each request's seconds."""

    def __init__(
        self,
        url: str,
        name: str,
        tokenizer,
        style: str,
        options: DecodeOptions | None = None,
        concurrency: int = 16,
        timeout: float = 600.0,
        context: int | None = None,
    ):
        super().__init__(tokenizer, style, options)
        self.url, self.name, self.concurrency, self.timeout = url.rstrip("/"), name, concurrency, timeout
        self.context = context
        self.latencies: list[float] = []

    def context_length(self) -> int | None:
        return self.context

    def request(self, prompt_ids: list[int], limit: int, example) -> dict:
        """The JSON body of one completion request (OpenAI's fields and vLLM's extra ones)."""
        body = {
            "model": self.name,
            "prompt": prompt_ids,
            "max_tokens": max(1, limit),
            "temperature": 0.0,
            "stop": list(self.stop_strings or []),
            "stop_token_ids": list(self.eos_ids),
            "skip_special_tokens": True,
            "return_token_ids": True,
        }
        if self.options.constrain and example is not None:
            body["structured_outputs"] = {"regex": row_regex(self.options, self.style, example)}
        return body

    def post(self, body: dict) -> dict:
        import time

        data = json.dumps(body).encode("utf-8")
        request = urllib.request.Request(
            f"{self.url}/v1/completions", data=data, headers={"Content-Type": "application/json"}
        )
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as error:
            refusal = error.read()[:300]
            raise ModelError(f"{self.url}: the server refused a request ({error.code}: {refusal!r})") from None
        except (urllib.error.URLError, OSError) as error:
            raise ModelError(f"{self.url}: no answer from the server ({error})") from None
        self.latencies.append(time.perf_counter() - started)
        return answer

    def generate(self, prompts: list, limits: list[int], examples: list | None = None) -> list[Generated]:
        limits = self.row_limits(limits, examples)
        rows = examples if examples is not None else [None] * len(prompts)
        ids = [self.prompt_ids(prompt) for prompt in prompts]
        bodies = [self.request(i, limit, example) for i, limit, example in zip(ids, limits, rows)]
        with ThreadPoolExecutor(max_workers=max(1, min(self.concurrency, len(bodies)))) as pool:
            answers = list(pool.map(self.post, bodies))
        guarded = self.options.guarded  # constrained rows too: the regex has no forward cursor (module docstring)
        results = []
        for answer, prompt_ids, limit, example in zip(answers, ids, limits, rows):
            tokens = list(answer["choices"][0].get("token_ids") or [])
            text, new, hit_limit, stopped = finish(self, tokens, example, limit, guarded)
            results.append(Generated(text, new, len(prompt_ids), hit_limit, stopped))
        return results


def server_generator(
    url: str, folder: str | Path, name: str | None = None, constrain: bool = True, concurrency: int = 16
) -> tuple:
    """(builder, ServerGenerator) for an adapter folder served at `url`: the prompt from the folder's description,
    the tokenizer of its base model (the embedded one's tokenizer alone when that is the base)."""
    from instruct_ner.sft.models import EMBEDDED, embedded_tokenizer_dir, load_tokenizer, resolve_model

    artifact = Artifact.load(folder, kind="generative")
    builder = artifact.builder()
    base = artifact.base_model or EMBEDDED
    path = str(embedded_tokenizer_dir()) if base == EMBEDDED else resolve_model(base)
    tokenizer = load_tokenizer(path, padding_side="left")
    context = model_context(path) or getattr(tokenizer, "model_max_length", None)
    options = DecodeOptions(builder.response_format, builder.labels, True, constrain)
    generator = ServerGenerator(
        url, name or adapter_name(folder), tokenizer, builder.style, options, concurrency, context=context
    )
    return builder, generator
