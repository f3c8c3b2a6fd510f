"""Predictors: a loaded model that turns Examples into output records, the one code path behind both
the `generate` / `tag` subcommands and the Python API (`instruct_ner.NER`), so they cannot disagree.

- `GenerativePredictor`: a prompt builder + a `Generator` (inference/decoding.py's interface; the
  Hugging Face one is `HFGenerator`). Each prompt is rendered once per run (`start`), prompts are
  sorted by length inside chunks of `batch_size * 8`, decoded batch by batch, parsed by
  `inference.grounding`; each output record is its input record plus `generation`, `entities`,
  `pred_tags`, `parse` (diagnostics) and `timing`.
- `TaggerPredictor`: a token classifier from `train-tagger` (sft/tagger.py's `predict`); each output
  record is its input record plus `labels`, `pred_tags`, `entities` and `timing`.

A run is `start(records, examples, options)` (a `Run`: the generation order and what is computed once
per run), then `outputs(run, start=k)`, which yields output records batch by batch in the run's order;
`predict` puts them back into input order. In output records `entities` are `Entity` objects; they
become dicts only at the file boundary (`file_record`). `load_predictor` loads a trained folder of
either kind, its saved model and precision overridden by explicit ones (`config.explicit_or_saved`).
This module writes no files (see `inference.generate` and `inference.tag`) and parses no options.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from instruct_ner.inference.decoding import DecodeOptions, Generated, Generator
from instruct_ner.inference.grounding import parse_response
from instruct_ner.prompts.readers import ReaderOptions, load_examples
from instruct_ner.prompts.templates import PromptBuilder
from instruct_ner.sft.artifact import Artifact, check_labels

from instruct_ner.config import explicit_or_saved
from instruct_ner.examples import DataError, Example, labels_of, tags_to_spans
from instruct_ner.jsonl import iter_jsonl


@dataclass
class RunOptions:
    """How a predictor runs over a list of examples (what `generate` / `tag` / the API pass it)."""

    batch_size: int = 16
    max_new_tokens: int | None = None  # generative: cap on new tokens; default: from each text's length
    sort_by_length: bool = True
    progress: bool = False
    on_chunk: Callable[[int], None] | None = None  # called with the number of records done after each chunk


def input_records(data: str | Path, options: ReaderOptions) -> tuple[list[dict], list[Example]]:
    """The input records (as they are, for a JSONL input) and their examples; an empty input is an error."""
    examples, report = load_examples(data, options)
    if report.n_skipped:
        print(report.summary(), file=sys.stderr)
    if not examples:
        raise DataError(str(data), "no records to predict for (empty input)", "empty")
    if str(data).endswith(".jsonl") and not report.n_skipped:
        records = [record for _, record in iter_jsonl(data)][: len(examples)]
    else:
        records = [example.to_record() for example in examples]
    return records, examples


@dataclass
class Run:
    """One pass of a predictor over a list of examples: what is decided once, before any output.

    `order`: the input positions in the order `outputs` yields them; `prompts`: the rendered prompt of
    each example (generative predictors; rendered once per run, for sorting and decoding alike).
    """

    records: list[dict]
    examples: list[Example]
    options: RunOptions
    order: list[int]
    prompts: list[dict] = field(default_factory=list)


def file_record(output: dict) -> dict:
    """An output record as written to JSONL: its `Entity` objects as dicts (the file boundary).

    Example: file_record({"id": "1", "entities": [Entity("PER", 0, 1, 0, 2, "Al")]})["entities"][0]["text"] -> "Al"
    """
    return {**output, "entities": [entity.to_dict() for entity in output.get("entities", [])]}


def chunks(order: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(order), size):
        yield order[start : start + size]


def generation_order(count: int, chunk_size: int, length: Callable[[int], int] | None = None) -> list[int]:
    """Input positions in the order they are generated and written: chunks of `chunk_size` consecutive
    records, each sorted by `length` when given. The chunks are fixed by input position, so the order is
    the same in a resumed run.

    Example: generation_order(5, 3, lambda i: -i) -> [2, 1, 0, 4, 3]
    """
    order: list[int] = []
    for start in range(0, count, chunk_size):
        chunk = list(range(start, min(count, start + chunk_size)))
        order += sorted(chunk, key=length) if length is not None else chunk
    return order


class Predictor:
    """A loaded model: examples in, one output record per example out (input order)."""

    kind: str = ""
    labels: list[str]
    folder: str | None = None

    def check_data(self, examples: list[Example], data: str | Path) -> None:
        """Data may only use labels the model knows (a trained folder's label set is fixed)."""
        if self.folder is not None:
            check_labels(self.labels, labels_of(e.tags for e in examples), self.folder, data)

    def start(self, records: list[dict], examples: list[Example], options: RunOptions) -> Run:
        """A run over `examples` (one input record each); input order unless a predictor sorts."""
        return Run(records, examples, options, list(range(len(examples))))

    def outputs(self, run: Run, start: int = 0) -> Iterator[list[dict]]:
        """Output records for `run.order[start:]`, batch by batch, in that order."""
        raise NotImplementedError  # pragma: no cover - interface

    def predict(
        self,
        examples: list[Example],
        batch_size: int = 16,
        records: list[dict] | None = None,
        options: RunOptions | None = None,
    ) -> list[dict]:
        """One output record per example, in input order (`options`, when given, replace `batch_size`)."""
        records = records if records is not None else [example.to_record() for example in examples]
        run = self.start(records, examples, options or RunOptions(batch_size=batch_size))
        outputs = [output for batch in self.outputs(run) for output in batch]
        in_order: list[dict] = [{}] * len(examples)
        for position, output in zip(run.order, outputs):
            in_order[position] = output
        return in_order


class GenerativePredictor(Predictor):
    kind = "generative"

    def __init__(self, builder: PromptBuilder, generator: Generator, folder: str | None = None):
        self.builder, self.generator, self.folder = builder, generator, folder
        self.labels = builder.labels

    @classmethod
    def load(
        cls,
        builder: PromptBuilder,
        model: str = "",
        adapter: str | Path | None = None,
        precision: str = "auto",
        share_prefix: bool = True,
        stop_runaway: bool = True,
        constrain: bool = True,
        trust_remote_code: bool = False,
    ) -> GenerativePredictor:
        """Base model (+ adapter, merged when not quantised) and tokenizer -> an HFGenerator."""
        from instruct_ner.inference.decoding import HFGenerator
        from instruct_ner.sft.models import is_quantized, load_causal_lm, load_tokenizer, resolve_model

        model_path = resolve_model(model)
        tokenizer = load_tokenizer(model_path, trust_remote_code, padding_side="left")
        loaded = load_causal_lm(model_path, precision, trust_remote_code)
        if adapter:
            from peft import PeftModel

            loaded = PeftModel.from_pretrained(loaded, str(adapter))
            if not is_quantized(loaded):
                loaded = loaded.merge_and_unload()  # same outputs, no LoRA overhead per token
        loaded.eval()
        options = DecodeOptions(
            response_format=builder.response_format,
            labels=builder.labels,
            stop_runaway=stop_runaway,
            constrain=constrain,
        )
        generator = HFGenerator(loaded, tokenizer, builder.style, share_prefix, options)
        return cls(builder, generator, str(adapter) if adapter else None)

    @classmethod
    def from_artifact(
        cls, folder: str | Path, artifact: Artifact, model: str, precision: str, **options
    ) -> GenerativePredictor:
        """A trained adapter folder, its description already read, at the model and precision chosen."""
        return cls.load(artifact.builder(), model, folder, precision, **options)

    def start(self, records: list[dict], examples: list[Example], options: RunOptions) -> Run:
        """Renders every prompt (once per run); the order is chunks of `batch_size * 8` records in input
        order, each sorted by prompt length (less padding), unless `sort_by_length` is off."""
        prompts = [self.builder.build(example) for example in examples]
        lengths = [self.generator.prompt_length(prompt_input(prompt)) for prompt in prompts]
        self.check_context(examples, lengths, options)
        if options.sort_by_length:
            order = generation_order(len(examples), options.batch_size * 8, lengths.__getitem__)
        else:
            order = list(range(len(examples)))
        return Run(records, examples, options, order, prompts)

    def check_context(self, examples: list[Example], lengths: list[int], options: RunOptions) -> None:
        """Refuse, before any generation, a text whose prompt and response cannot fit the model's context: a causal
        LM past its trained length degrades silently, and a huge text would run for hours. Long documents are
        to be cut into windows (not done yet): until then the error says to split the text."""
        context = self.generator.context_length()
        if context is None:
            return
        for example, length in zip(examples, lengths):
            bound = self.builder.format.new_token_bound(example.text, self.generator.text_length(example.text))
            needed = length + min(options.max_new_tokens or math.inf, bound)
            if needed > context:
                raise DataError(
                    f"record {example.id}",
                    f"{len(example.tokens)} words need {int(needed)} tokens of prompt and response, more than the "
                    f"model's context of {context}; split the text into shorter ones",
                    "too_long",
                )

    def outputs(self, run: Run, start: int = 0) -> Iterator[list[dict]]:
        builder, generator = self.builder, self.generator
        records, examples, options, prompts = run.records, run.examples, run.options, run.prompts
        prompt_inputs = [prompt_input(prompt) for prompt in prompts]
        limits = [
            min(
                options.max_new_tokens or math.inf,
                builder.format.new_token_bound(e.text, generator.text_length(e.text)),
            )
            for e in examples
        ]
        order, chunk_size = run.order, options.batch_size * 8
        generator.prepare([prompt_inputs[i] for i in order[start:]])
        bar = _progress(len(examples), start, options.progress)
        for chunk_start in range(0, len(order), chunk_size):  # batches never cross a chunk: same batches on resume
            chunk = order[max(chunk_start, start) : chunk_start + chunk_size]
            for batch in chunks(chunk, options.batch_size):
                batch_started = time.perf_counter()
                generated = generator.generate(
                    [prompt_inputs[i] for i in batch], [int(limits[i]) for i in batch], [examples[i] for i in batch]
                )
                seconds = time.perf_counter() - batch_started
                yield [
                    output_record(records[i], examples[i], prompts[i], builder, output, seconds, batch)
                    for i, output in zip(batch, generated)
                ]
                bar.update(len(batch))
        bar.close()


def prompt_input(prompt: dict) -> str | list[dict]:
    """What the generator is given of a rendered prompt: its chat messages or its prompt text.

    Example: prompt_input({"prompt": "### Input: ...", "response": "none"}) -> "### Input: ..."
    """
    return prompt["messages"] if "messages" in prompt else prompt["prompt"]


def output_record(record, example, prompt, builder, generated: Generated, batch_seconds, batch) -> dict:
    parsed = parse_response(generated.text, example, builder.labels, builder.response_format, generated.hit_limit)
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
        entities=list(parsed.entities),
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


class TaggerPredictor(Predictor):
    kind = "tagger"

    def __init__(self, model, tokenizer, artifact: Artifact, folder: str | None = None):
        self.model, self.tokenizer, self.artifact, self.folder = model, tokenizer, artifact, folder
        self.labels = artifact.labels

    @classmethod
    def from_artifact(
        cls, folder: str | Path, artifact: Artifact, model: str, precision: str, trust_remote_code: bool = False
    ) -> TaggerPredictor:
        """A folder from train-tagger, its description already read, at the model and precision chosen."""
        from instruct_ner.sft.tagger import load_tagger

        tagger, tokenizer, artifact = load_tagger(folder, model, precision, artifact, trust_remote_code)
        return cls(tagger, tokenizer, artifact, str(folder))

    def outputs(self, run: Run, start: int = 0) -> Iterator[list[dict]]:
        from instruct_ner.inference.tagging import predict

        records, examples, options = run.records, run.examples, run.options
        todo = run.order[start:]
        max_length = self.artifact.tagger.get("max_length", 512)
        for chunk in chunks(todo, options.batch_size * 8):
            started = time.perf_counter()
            predicted = predict(
                self.model, [examples[i] for i in chunk], self.tokenizer, max_length, options.batch_size
            )
            seconds = (time.perf_counter() - started) / len(chunk)
            outputs = []
            for i, pred_tags in zip(chunk, predicted):
                example = examples[i]
                entities = [example.entity(label, s, e) for label, s, e in tags_to_spans(pred_tags)]
                outputs.append(
                    {
                        **records[i],
                        "labels": self.labels,
                        "pred_tags": pred_tags,
                        "entities": entities,
                        "timing": {"seconds": seconds},
                    }
                )
            yield outputs


def load_predictor(
    folder: str | Path, given: dict | None = None, artifact: Artifact | None = None, **options
) -> Predictor:
    """The predictor of a trained folder of either kind (read from its artifact description unless given).

    `given`: the explicit options (a config, or a mapping such as {"precision": "bf16"}); each wins over
    the model and precision saved with the folder (`config.explicit_or_saved`, the CLI's rule too).
    """
    artifact = artifact or Artifact.load(folder)
    chosen = explicit_or_saved(given or {}, artifact.saved_options())
    if artifact.kind == "tagger":
        return TaggerPredictor.from_artifact(
            folder, artifact, chosen["model"], chosen["precision"], options.get("trust_remote_code", False)
        )
    return GenerativePredictor.from_artifact(folder, artifact, chosen["model"], chosen["precision"], **options)
