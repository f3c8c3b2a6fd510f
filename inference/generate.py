"""`instruct-ner generate`: batched greedy generation of entity lists (or inline markup), parsed into
entities and IOB2 tags, written as JSONL: one output record per input record, in input order.

- With `--adapter DIR`, the prompt is rebuilt exactly as in training from `DIR/instruct_ner.json`
  (template source, style, labels, definitions, few-shot examples). Without one, the prompt comes from
  the options (`--template`, `--style`, `--few_shot N --few_shot_from FILE`): the zero- and few-shot
  prompting baselines, parsed by the same parser.
- Decoding: greedy, left padding, the prompt prefix shared by all records encoded once (its KV cache
  reused by every batch), records sorted by prompt length inside chunks of `batch_size * 8`
  to cut padding; generation stops at the end-of-turn token the model was trained to emit (and, for
  the instruction style, at a new `###` section); `max_new_tokens` is bounded per record from its text
  length (`3 * text tokens + 16` for entity lists, `2 * text tokens + 24` inline).
- Runaway guard (entity lists, `--stop_runaway`, on by default): a row stops at the first completed
  line whose entity text is not in its input text, or that lists a text more often than it occurs
  there. Past that point a small or undertrained model is looping over the same names or inventing
  new ones, and every further token is wasted; the offending line is kept, so the parser still counts
  it as hallucinated, and `parse.stopped_runaway` says the guard fired.
- Each output record is its input record plus `generation`, `entities`, `pred_tags`, `parse`
  (diagnostics) and `timing`. Records are written chunk by chunk, each line flushed, so a crash or
  Ctrl-C leaves a valid partial file; `--resume` continues it without duplicates.

Examples:
    instruct-ner generate --adapter runs/smollm2-conll2003 --data ../shared/data/conll2003/test.txt \\
        --limit 200 --out runs/predictions.jsonl
    instruct-ner generate --data data/conll_en/test.txt --style chat --few_shot 3 \\
        --few_shot_from data/conll_en/train.txt --out runs/few-shot.jsonl
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from instruct_ner.inference.decoding import (  # noqa: F401  (re-exported: the generator interface)
    DecodeOptions,
    Generated,
    Generator,
    HFGenerator,
    RunawayGuard,
    length_bound,
    runaway_line,
)
from instruct_ner.inference.parser import parse_response
from instruct_ner.prompts.examples import DataError, Example, labels_of
from instruct_ner.prompts.readers import ReaderOptions, load_examples
from instruct_ner.prompts.templates import PromptBuilder, PromptOptions, builder_from_options, load_template
from instruct_ner.sft.train import DEFAULT_TEMPLATE, ModelOptions, load_inference_config

from instruct_ner.config import ConfigError, parse_config
from instruct_ner.jsonl import iter_jsonl, write_jsonl


@dataclass
class GenerateConfig(ModelOptions, PromptOptions, ReaderOptions):
    data: str | None = field(default=None, metadata={"help": "data source or prepare JSONL (required)"})
    out: str | None = field(default=None, metadata={"help": "output JSONL (required)"})
    adapter: str | None = field(default=None, metadata={"help": "LoRA adapter folder from train; none = prompting"})
    batch_size: int = field(default=16, metadata={"help": "prompts decoded together"})
    max_new_tokens: int | None = field(
        default=None, metadata={"help": "cap on generated tokens; default: derived from each text's length"}
    )
    sort_by_length: bool = field(default=True, metadata={"help": "sort prompts by length inside chunks"})
    share_prefix: bool = field(
        default=True, metadata={"help": "encode the prompt prefix common to all records once and reuse its KV cache"}
    )
    stop_runaway: bool = field(
        default=True,
        metadata={"help": "entity lists: stop a record at its first line not in its text or listed too often"},
    )
    constrain: bool = field(
        default=True,
        metadata={"help": "constrained decoding: entities are spans of the text, labels from the set"},
    )
    resume: bool = field(default=False, metadata={"help": "continue a partial output file instead of replacing it"})
    progress: bool = field(default=True, metadata={"help": "show a progress bar on stderr"})

    def __post_init__(self) -> None:
        if not self.data or not self.out:
            raise ConfigError("generate needs --data (a source or prepare JSONL) and --out FILE.jsonl")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {self.batch_size}")


def input_records(config: GenerateConfig) -> tuple[list[dict], list[Example]]:
    """The input records (as they are, for a JSONL input) and their examples; an empty input is an error."""
    examples, report = load_examples(config.data, config)
    if report.n_skipped:
        print(report.summary(), file=sys.stderr)
    if not examples:
        raise DataError(str(config.data), "no records to generate for (empty input)", "empty")
    if str(config.data).endswith(".jsonl") and not report.n_skipped:
        records = [record for _, record in iter_jsonl(config.data)][: len(examples)]
    else:
        records = [example.to_record() for example in examples]
    return records, examples


def prompt_builder(config: GenerateConfig, examples: list[Example], records: list[dict]) -> PromptBuilder:
    """The adapter's saved builder (checked against the data and options), or one from the options."""
    data_labels = labels_of(e.tags for e in examples)
    if config.adapter:
        saved = load_inference_config(config.adapter)
        builder = PromptBuilder.from_dict(saved["prompt"])
        if unknown := sorted(set(data_labels) - set(builder.labels)):
            raise ConfigError(
                f"the adapter {config.adapter} was trained with labels {builder.labels}; "
                f"the data {config.data} has {unknown} as well"
            )
        if config.labels and sorted(config.labels) != sorted(builder.labels):
            raise ConfigError(f"--labels {config.labels} differ from the adapter's label set {builder.labels}")
        asked = config.template if config.template != DEFAULT_TEMPLATE else records[0].get("template")
        if asked and load_template(asked).name != builder.template.name:
            raise ConfigError(
                f"the adapter {config.adapter} was trained with template {builder.template.name}, "
                f"not {load_template(asked).name}; generate with the adapter's template"
            )
        return builder
    pool = load_examples(config.few_shot_from, config)[0] if config.few_shot_from else None
    if config.few_shot and pool is None:
        raise ConfigError("--few_shot needs --few_shot_from (examples other than the ones being scored)")
    return builder_from_options(config, examples, pool)


def chunks(order: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(order), size):
        yield order[start : start + size]


def completed_records(out: Path, records: list[dict]) -> int:
    """How many leading input records a partial output already holds (a torn last line is dropped)."""
    if not out.exists():
        return 0
    text = out.read_text(encoding="utf-8")
    if text and not text.endswith("\n"):  # the process died mid-line: keep the complete lines only
        out.write_text(text[: text.rfind("\n") + 1], encoding="utf-8")
    done = 0
    for where, record in iter_jsonl(out):
        if done >= len(records) or record.get("id") != records[done].get("id"):
            raise DataError(where, f"--resume: this output does not match the input (id {record.get('id')!r})")
        done += 1
    return done


def run_generation(
    records: list[dict],
    examples: list[Example],
    builder: PromptBuilder,
    generator: Generator,
    out: str | Path,
    batch_size: int = 16,
    max_new_tokens: int | None = None,
    sort_by_length: bool = True,
    resume: bool = False,
    progress: bool = True,
    on_chunk: Callable[[int], None] | None = None,
) -> dict:
    """Generate, parse and write one output record per input record, in input order. Returns run figures."""
    out = Path(out)
    done = completed_records(out, records) if resume else 0
    if not resume and out.exists():
        out.unlink()
    out.parent.mkdir(parents=True, exist_ok=True)
    prompts = [builder.build(example) for example in examples]
    prompt_inputs = [p["messages"] if "messages" in p else p["prompt"] for p in prompts]
    limits = [
        min(max_new_tokens or math.inf, length_bound(generator.text_length(e.text), builder.response_format))
        for e in examples
    ]
    todo = list(range(done, len(records)))
    generator.prepare([prompt_inputs[i] for i in range(done, len(records))])
    bar = _progress(len(records), done, progress)
    started, new_tokens, written = time.perf_counter(), 0, done
    for chunk in chunks(todo, batch_size * 8):
        order = sorted(chunk, key=lambda i: generator.prompt_length(prompt_inputs[i])) if sort_by_length else chunk
        results: dict[int, dict] = {}
        for batch in chunks(order, batch_size):
            batch_started = time.perf_counter()
            outputs = generator.generate(
                [prompt_inputs[i] for i in batch],
                [int(limits[i]) for i in batch],
                [examples[i] for i in batch],
            )
            seconds = time.perf_counter() - batch_started
            for i, generated in zip(batch, outputs):
                results[i] = output_record(records[i], examples[i], prompts[i], builder, generated, seconds, batch)
                new_tokens += generated.new_tokens
            bar.update(len(batch))
        written += write_jsonl(out, (results[i] for i in chunk), append=True)
        if on_chunk is not None:
            on_chunk(written)
    bar.close()
    seconds = time.perf_counter() - started
    generated_now = len(todo)
    return {
        "records": written,
        "generated": generated_now,
        "seconds": seconds,
        "new_tokens": new_tokens,
        "sentences_per_second": generated_now / seconds if seconds else 0.0,
    }


def output_record(record, example, prompt, builder, generated: Generated, batch_seconds, batch) -> dict:
    parsed = parse_response(generated.text, example, builder.labels, builder.response_format)
    diagnostics = parsed.diagnostics.to_dict()
    diagnostics["hit_max_new_tokens"] = generated.hit_limit
    diagnostics["stopped_runaway"] = generated.stopped_runaway
    output = dict(record)
    for key in ("prompt", "messages"):
        if key in prompt and key not in output:
            output[key] = prompt[key]
    output.update(
        labels=builder.labels,
        response_format=builder.response_format,
        template=builder.template.name,
        generation=generated.text,
        entities=[entity.to_dict() for entity in parsed.entities],
        pred_tags=parsed.pred_tags,
        parse=diagnostics,
        timing={
            "batch_seconds": round(batch_seconds, 4),
            "batch_size": len(batch),
            "prompt_tokens": generated.prompt_tokens,
            "new_tokens": generated.new_tokens,
        },
    )
    return output


def _progress(total: int, initial: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, unit="sent", desc="generate", file=sys.stderr)


def load_generator(config: GenerateConfig, builder: PromptBuilder) -> HFGenerator:
    """Base model (+ adapter, merged when not quantised) and tokenizer; a missing path fails clearly first."""
    from instruct_ner.sft.models import load_causal_lm, load_tokenizer, resolve_model

    model_path = resolve_model(base_model_name(config))
    tokenizer = load_tokenizer(model_path, config.trust_remote_code, padding_side="left")
    model = load_causal_lm(model_path, config.precision, config.trust_remote_code)
    if config.adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, config.adapter)
        if not (getattr(model, "is_loaded_in_8bit", False) or getattr(model, "is_loaded_in_4bit", False)):
            model = model.merge_and_unload()  # same outputs, no LoRA overhead per token
    model.eval()
    options = DecodeOptions(builder.response_format, builder.labels, config.stop_runaway, config.constrain)
    return HFGenerator(model, tokenizer, builder.style, config.share_prefix, options)


def base_model_name(config: GenerateConfig) -> str:
    """The model to load: the one named, else the adapter's base model ("" = the embedded default)."""
    if config.model or not config.adapter:
        return config.model
    base = load_inference_config(config.adapter).get("base_model", "embedded")
    return "" if base == "embedded" else base


def check_paths(config: GenerateConfig) -> None:
    """A missing adapter or model folder fails here, before data is read or anything is loaded."""
    from instruct_ner.sft.models import ModelError, resolve_model

    if config.adapter:
        if not Path(config.adapter).is_dir():
            raise ModelError(f"{config.adapter}: adapter folder not found")
        if not Path(config.adapter, "adapter_config.json").exists():
            raise ModelError(f"{config.adapter}: no adapter_config.json; not a LoRA adapter folder")
        load_inference_config(config.adapter)
    if base_model_name(config):
        resolve_model(base_model_name(config))  # a hub id passes; a local path that does not exist fails


def generate(config: GenerateConfig) -> dict:
    check_paths(config)
    records, examples = input_records(config)
    builder = prompt_builder(config, examples, records)
    generator = load_generator(config, builder)
    figures = run_generation(
        records,
        examples,
        builder,
        generator,
        config.out,
        config.batch_size,
        config.max_new_tokens,
        config.sort_by_length,
        config.resume,
        config.progress,
    )
    return figures


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    config = parse_config(GenerateConfig, argv, prog="instruct-ner generate", description=__doc__)
    figures = generate(config)
    print(
        f"wrote {figures['records']} records to {config.out} ({figures['generated']} generated in "
        f"{figures['seconds']:.1f} s, {figures['sentences_per_second']:.2f} sentences/s)"
    )
    return 0
