"""Predictors: a loaded model that turns Examples into output records, the one code path behind both
the `generate` / `tag` subcommands and the Python API (`instruct_ner.NER`), so they cannot disagree.

- `GenerativePredictor`: a prompt builder + a `Generator` (inference/decoding.py's interface; the
  Hugging Face one is `HFGenerator`). Each prompt is rendered once per run (`start`), prompts are
  sorted by length inside chunks of `batch_size * 8`, decoded batch by batch, parsed by
  `inference.grounding`; each output record is its input record plus `generation`, `entities`,
  `pred_tags`, `parse` (diagnostics) and `timing`.
- `TaggerPredictor`: a token classifier from `train-tagger` (sft/tagger.py's `predict`); each output
  record is its input record plus `labels`, `pred_tags`, `entities` and `timing`.

Every entity carries its confidence (`Entity.score`, `inference.confidence`); a predictor applies its folder's
saved calibration to the scores and drops the entities below its `threshold` (0: none) in every output record.

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
from functools import cached_property
from pathlib import Path

from instruct_ner.config import ConfigError, explicit_or_saved
from instruct_ner.examples import DataError, Example, labels_of, spans_to_tags, tags_to_spans
from instruct_ner.inference.confidence import Calibration, apply_threshold
from instruct_ner.inference.decoding import DecodeOptions, Generated, Generator
from instruct_ner.inference.grounding import parse_response
from instruct_ner.inference.windows import (
    default_overlap,
    example_windows,
    few_sentences,
    merge_spans,
    window_example,
    word_costs,
)
from instruct_ner.jsonl import iter_jsonl
from instruct_ner.prompts.readers import ReaderOptions, load_examples
from instruct_ner.prompts.templates import PromptBuilder
from instruct_ner.sft.artifact import Artifact, check_labels


@dataclass
class RunOptions:
    """How a predictor runs over a list of examples (what `generate` / `tag` / the API pass it)."""

    batch_size: int = 16
    max_new_tokens: int | None = None  # generative: cap on new tokens; default: from each text's length
    sort_by_length: bool = True
    progress: bool = False
    on_chunk: Callable[[int], None] | None = None  # called with the number of records done after each chunk
    window_tokens: int | None = None  # most text tokens of one window; default: what the model's context allows
    window_overlap: int | None = None  # most tokens two neighbouring windows share; default: `default_overlap`
    window_sentences: int | None = None  # most sentences of one window; default: the model's (0: no limit)


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

    `order`: the input positions in the order `outputs` yields them. Generative predictors: `windows`, the word
    ranges each example is cut into (`inference.windows`; one range for a text that fits); `units`, every window
    as (example position, window Example); `prompts`, the rendered prompt of each unit (rendered once per run,
    for sorting and decoding alike); `chunks`, the units of each chunk in decoding order.
    """

    records: list[dict]
    examples: list[Example]
    options: RunOptions
    order: list[int]
    prompts: list[dict] = field(default_factory=list)
    windows: list[list[tuple[int, int]]] = field(default_factory=list)
    units: list[tuple[int, Example]] = field(default_factory=list)
    chunks: list[list[int]] = field(default_factory=list)

    @cached_property
    def first_unit(self) -> list[int]:
        """The position in `units` of each example's first window (units are laid out example after example)."""
        firsts, position = [], 0
        for ranges in self.windows:
            firsts.append(position)
            position += len(ranges)
        return firsts


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
    threshold: float = 0.0  # entities scored below it are dropped (their tags O)
    calibration: Calibration | None = None  # applied to every score before the threshold
    window_cap: int | None = None  # default most text tokens of a window (Artifact.window_cap); window_tokens wins
    sentence_cap: int | None = None  # default most sentences of a window (Artifact.window_sentences)
    longest_text: int | None = None  # tokens of the longest training text: a text within it is one window

    def most_sentences(self, options: RunOptions) -> int | None:
        """The most sentences of one window: `window_sentences` when given (0: no limit), else the model's."""
        chosen = options.window_sentences if options.window_sentences is not None else self.sentence_cap
        return chosen or None

    def finish(self, output: dict) -> dict:
        """An output record with calibrated scores and the entities below the threshold dropped."""
        if self.calibration is None and self.threshold <= 0:
            return output
        return apply_threshold(output, self.threshold, self.calibration)

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
    score_method = "sequence"  # inference.confidence.SCORE_METHODS

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
        engine: str = "hf",
    ) -> GenerativePredictor:
        """Base model (+ adapter, merged when not quantised) and tokenizer -> an HFGenerator; with `engine="vllm"`
        a `VLLMGenerator` (inference/vllm_engine.py: vLLM's engine, the adapter per request) on the same prompts."""
        from instruct_ner.inference.decoding import HFGenerator
        from instruct_ner.sft.models import is_quantized, load_causal_lm, load_tokenizer, resolve_model

        options = DecodeOptions(
            response_format=builder.response_format,
            labels=builder.labels,
            stop_runaway=stop_runaway,
            constrain=constrain,
        )
        if engine == "vllm":
            from instruct_ner.inference.vllm_engine import vllm_generator

            generator = vllm_generator(model, adapter, precision, builder.style, options, trust_remote_code)
            return cls(builder, generator, str(adapter) if adapter else None)
        if engine != "hf":
            from instruct_ner.inference.vllm_engine import check_engine

            check_engine(engine)
        model_path = resolve_model(model)
        tokenizer = load_tokenizer(model_path, trust_remote_code, padding_side="left")
        loaded = load_causal_lm(model_path, precision, trust_remote_code)
        if adapter:
            from peft import PeftModel

            loaded = PeftModel.from_pretrained(loaded, str(adapter))
            if not is_quantized(loaded):
                loaded = loaded.merge_and_unload()  # same outputs, no LoRA overhead per token
        loaded.eval()
        generator = HFGenerator(loaded, tokenizer, builder.style, share_prefix, options)
        return cls(builder, generator, str(adapter) if adapter else None)

    @classmethod
    def from_artifact(
        cls, folder: str | Path, artifact: Artifact, model: str, precision: str, **options
    ) -> GenerativePredictor:
        """A trained adapter folder, its description already read, at the model and precision chosen."""
        return cls.load(artifact.builder(), model, folder, precision, **options)

    def start(self, records: list[dict], examples: list[Example], options: RunOptions) -> Run:
        """Cuts each text into windows that fit the model's context (`inference.windows`; a text that fits is one
        window, the example itself) and renders every window's prompt (once per run). Chunks are consecutive
        examples holding about `batch_size * 8` windows; inside a chunk windows are sorted by prompt length (less
        padding) unless `sort_by_length` is off, and examples are yielded as their last window is decoded."""
        windows = [self.plan_windows(example, options) for example in examples]
        units = [(i, window_example(example, s, e)) for i, example in enumerate(examples) for s, e in windows[i]]
        prompts = [self.builder.build(window) for _, window in units]
        lengths = [self.generator.prompt_length(prompt_input(prompt)) for prompt in prompts]
        self.check_context([window for _, window in units], lengths, options)
        chunks, order, first = [], [], 0
        for chunk_docs in document_chunks([len(w) for w in windows], options.batch_size * 8):
            last = first + sum(len(windows[i]) for i in chunk_docs)
            chunk = list(range(first, last))
            if options.sort_by_length:
                chunk = sorted(chunk, key=lengths.__getitem__)
            finished = {units[u][0]: k for k, u in enumerate(chunk)}  # an example's last window in the chunk
            order += sorted(chunk_docs, key=finished.__getitem__)
            chunks.append(chunk)
            first = last
        return Run(records, examples, options, order, prompts, windows, units, chunks)

    def plan_windows(self, example: Example, options: RunOptions) -> list[tuple[int, int]]:
        """The word ranges of an example's windows: one when prompt, text and response bound fit the context (and
        `window_tokens`, when given); else cut by `inference.windows.split_windows` on sentence bounds, never inside
        a gold entity, with an overlap of `window_overlap` tokens (default: a 32nd of the context)."""
        n, generator = len(example.tokens), self.generator
        context = generator.context_length()
        cap = options.window_tokens or self.window_cap or math.inf
        if n == 0 or (context is None and cap == math.inf):
            return [(0, n)]
        context = context if context is not None else math.inf
        prefix = self.prompt_overhead()
        total = generator.text_length(example.text)
        most = self.most_sentences(options)
        few = few_sentences(example, total, most, self.longest_text)
        if few and total <= cap and prefix + total + self.response_limit(example, total, options) <= context:
            return [(0, n)]
        costs = word_costs(example, generator.text_lengths)
        sums = [0]
        for cost in costs:
            sums.append(sums[-1] + cost)
        overlap = options.window_overlap
        overlap = overlap if overlap is not None else default_overlap(context, cap)

        def fits(start: int, end: int) -> bool:
            """Estimated from the words' tokens first; measured on the window's own prompt when that is close."""
            tokens = sums[end] - sums[start]
            if tokens > cap or prefix + tokens > context:
                return False
            window = window_example(example, start, end)
            limit = self.response_limit(window, tokens, options)
            if (prefix + tokens + limit) * 0.9 > context:
                return False
            length = generator.prompt_length(prompt_input(self.builder.build(window)))
            return length + self.response_limit(window, generator.text_length(window.text), options) <= context

        return example_windows(example, costs, fits, overlap, most, self.longest_text)

    def response_limit(self, example: Example, text_tokens: int, options: RunOptions) -> float:
        """The most new tokens a prompt about `example` may take: `max_new_tokens`, and the format's bound from the
        text's tokens, with and without its words (the bound the decoder applies per row, `row_limit`)."""
        labels = self.label_tokens()
        bound = self.builder.format.new_token_bound(example.text, text_tokens)
        words = self.builder.format.new_token_bound(example.text, text_tokens, len(example.tokens), labels)
        return min(options.max_new_tokens or math.inf, bound, words)

    def label_tokens(self) -> int:
        """Tokens of the longest label with its leading space (what a response line spends on its label)."""
        if getattr(self, "_label_tokens", None) is None:
            self._label_tokens = max((self.generator.text_length(" " + label) for label in self.labels), default=2)
        return self._label_tokens

    def prompt_overhead(self) -> int:
        """Tokens of a prompt besides its text (instruction, few-shot examples, chat markup), measured once on a
        one-word probe."""
        if getattr(self, "_overhead", None) is None:
            probe = Example("probe", ["x"], ["O"])
            prompt = self.generator.prompt_length(prompt_input(self.builder.build(probe)))
            self._overhead = prompt - self.generator.text_length(probe.text)
        return self._overhead

    def check_context(self, examples: list[Example], lengths: list[int], options: RunOptions) -> None:
        """Refuse, before any generation, a window whose prompt and response cannot fit the model's context: a
        causal LM past its trained length degrades silently. Windows are cut to fit (`plan_windows`), so only a
        single word (or gold entity) longer than a window is refused here, or a prompt whose instruction and
        few-shot examples leave no room for a text."""
        context = self.generator.context_length()
        if context is None:
            return
        for example, length in zip(examples, lengths):
            needed = length + self.response_limit(example, self.generator.text_length(example.text), options)
            if needed > context:
                raise DataError(
                    f"record {example.id}",
                    f"{len(example.tokens)} words that cannot be cut (a window never cuts a word or a gold entity) "
                    f"need {int(needed)} tokens of prompt and response, more than the model's context of {context}",
                    "too_long",
                )

    def outputs(self, run: Run, start: int = 0) -> Iterator[list[dict]]:
        """Output records of `run.order[start:]`: windows decoded batch by batch (a batch may hold windows of many
        examples), an example's record yielded once its last window is decoded, its windows' entities merged
        (`inference.windows.merge_spans`)."""
        generator = self.generator
        examples, options, units = run.examples, run.options, run.units
        done = set(run.order[:start])
        todo = [[u for u in chunk if units[u][0] not in done] for chunk in run.chunks]
        generator.prepare([prompt_input(run.prompts[u]) for chunk in todo for u in chunk])
        left = {i: len(run.windows[i]) for i in range(len(examples)) if i not in done}
        results: dict[int, tuple[Generated, float, int]] = {}
        done_windows = len(units) - sum(left.values())
        bar = _progress(len(units), done_windows, len(examples), len(done), options.progress)
        for chunk in todo:  # batches never cross a chunk: same batches on resume
            for batch in chunks(chunk, options.batch_size):
                batch_started = time.perf_counter()
                windows = [units[u][1] for u in batch]
                limits = [int(self.response_limit(w, generator.text_length(w.text), options)) for w in windows]
                generated = generator.generate([prompt_input(run.prompts[u]) for u in batch], limits, windows)
                seconds = time.perf_counter() - batch_started
                finished = []
                for u, output in zip(batch, generated):
                    results[u] = (output, seconds, len(batch))
                    left[units[u][0]] -= 1
                    if not left[units[u][0]]:
                        finished.append(units[u][0])
                yield [self.finish(self.document_output(run, i, results)) for i in finished]
                bar.update(len(batch))
                bar.set_postfix_str(f"{len(examples) - len(left) + len(finished)}/{len(examples)} texts")
                for i in finished:
                    del left[i]
        bar.close()

    def document_output(self, run: Run, i: int, results: dict) -> dict:
        """The output record of example i from its windows' generations (which it removes from `results`)."""
        first = run.first_unit[i]
        if len(run.windows[i]) > 1:
            units = range(first, first + len(run.windows[i]))
            return window_record(run, i, units, results, self.builder, self.score_method)
        output, seconds, size = results.pop(first)
        record, example, prompt = run.records[i], run.examples[i], run.prompts[first]
        return output_record(record, example, prompt, self.builder, output, seconds, range(size), self.score_method)


def document_chunks(windows: list[int], size: int) -> Iterator[list[int]]:
    """Consecutive example positions, grouped into chunks of about `size` windows (at least one example each).

    Example: list(document_chunks([1, 1, 3, 1], 2)) -> [[0, 1], [2], [3]]
    """
    chunk, count = [], 0
    for i, n in enumerate(windows):
        if chunk and count + n > size:
            yield chunk
            chunk, count = [], 0
        chunk.append(i)
        count += n
    if chunk:
        yield chunk


def token_scores(generated: Generated) -> tuple[list[float], list[int]] | None:
    """(log-probability, end character) of each token of a generation, when the generator recorded them."""
    if generated.token_logprobs is None or generated.token_ends is None:
        return None
    return generated.token_logprobs, generated.token_ends


def parse_generation(generated: Generated, example: Example, builder: PromptBuilder, score_method: str):
    """One generation parsed against its example (a whole text or one window), with its entities' scores."""
    return parse_response(
        generated.text,
        example,
        builder.labels,
        builder.response_format,
        generated.hit_limit,
        token_scores=token_scores(generated),
        score_method=score_method,
    )


def window_record(
    run: Run, i: int, unit_ids: range, results: dict, builder: PromptBuilder, score_method: str = "sequence"
) -> dict:
    """The output record of an example cut into windows: each window parsed on its own text, the entities merged
    back to the example's words (`merge_spans`); `generation` holds the windows' responses one after another,
    `parse` the windows' diagnostics summed plus what merging dropped, `windows` how many windows it took. The
    rendered prompt is not kept (a prompt per window)."""
    example = run.examples[i]
    parsed, generations, timing = [], [], {"batch_seconds": 0.0, "batch_size": 0, "prompt_tokens": 0, "new_tokens": 0}
    scores = []
    diagnostics: dict = {}
    for u in unit_ids:
        output, seconds, size = results.pop(u)
        window = run.units[u][1]
        result = parse_generation(output, window, builder, score_method)
        parsed.append([(e.label, e.token_start, e.token_end) for e in result.entities])
        scores.append({(e.label, e.token_start, e.token_end): e.score for e in result.entities if e.score is not None})
        generations.append(output.text)
        window_diagnostics = result.diagnostics.to_dict()
        window_diagnostics["hit_max_new_tokens"] = output.hit_limit
        window_diagnostics["stopped_runaway"] = output.stopped_runaway
        for key, value in window_diagnostics.items():
            if isinstance(value, bool):
                diagnostics[key] = diagnostics.get(key, False) or value
            elif isinstance(value, int):
                diagnostics[key] = diagnostics.get(key, 0) + value
            else:
                diagnostics[key] = diagnostics.get(key, []) + value
        timing["batch_seconds"] += seconds / size
        timing["batch_size"] = max(timing["batch_size"], size)
        timing["prompt_tokens"] += output.prompt_tokens
        timing["new_tokens"] += output.new_tokens
    merged = merge_spans(run.windows[i], parsed, len(example.tokens), scores)
    diagnostics.update(entities=len(merged.spans), window_duplicates=merged.duplicates)
    diagnostics["window_conflicts"] = merged.conflicts
    timing["batch_seconds"] = round(timing["batch_seconds"], 4)
    output = dict(run.records[i])
    output.update(
        labels=builder.labels,
        response_format=builder.response_format,
        template=builder.template.name,
        generation="\n".join(generations),
        entities=[example.entity(label, s, e, merged.scores.get((label, s, e))) for label, s, e in merged.spans],
        pred_tags=spans_to_tags(merged.spans, len(example.tokens)),
        parse=diagnostics,
        timing=timing,
        windows=len(run.windows[i]),
    )
    return output


def prompt_input(prompt: dict) -> str | list[dict]:
    """What the generator is given of a rendered prompt: its chat messages or its prompt text.

    Example: prompt_input({"prompt": "### Input: ...", "response": "none"}) -> "### Input: ..."
    """
    return prompt["messages"] if "messages" in prompt else prompt["prompt"]


def output_record(
    record, example, prompt, builder, generated: Generated, batch_seconds, batch, score_method: str = "sequence"
) -> dict:
    parsed = parse_generation(generated, example, builder, score_method)
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


def _progress(windows: int, done_windows: int, texts: int, done_texts: int, enabled: bool):
    """A progress bar on stderr that counts windows (one per text that fits) and says how many texts are done."""
    from tqdm import tqdm

    options = {"unit": "window", "desc": "generate", "file": sys.stderr}
    bar = tqdm(total=windows, initial=done_windows, disable=not enabled, **options)
    bar.set_postfix_str(f"{done_texts}/{texts} texts")
    return bar


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
        """Tags chunk by chunk; a text longer than the tagger's `max_length` is cut by the shared window policy
        (`inference.windows`, as the generative path is) and its windows' entities merged."""
        from instruct_ner.inference.tagging import predict_windows

        records, examples, options = run.records, run.examples, run.options
        todo = run.order[start:]
        max_length = self.artifact.tagger.get("max_length", 512)
        for chunk in chunks(todo, options.batch_size * 8):
            started = time.perf_counter()
            predicted = predict_windows(
                self.model,
                [examples[i] for i in chunk],
                self.tokenizer,
                max_length,
                options.batch_size,
                options.window_tokens or self.window_cap,
                options.window_overlap,
                self.most_sentences(options),
                self.longest_text,
            )
            seconds = (time.perf_counter() - started) / len(chunk)
            outputs = []
            for i, (pred_tags, windows, merged) in zip(chunk, predicted):
                example = examples[i]
                entities = [
                    example.entity(label, s, e, merged.scores.get((label, s, e)))
                    for label, s, e in tags_to_spans(pred_tags)
                ]
                output = {
                    **records[i],
                    "labels": self.labels,
                    "pred_tags": pred_tags,
                    "entities": entities,
                    "timing": {"seconds": seconds},
                }
                if windows > 1:
                    output.update(windows=windows, window_conflicts=merged.conflicts)
                outputs.append(self.finish(output))
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
        if options.get("engine", "hf") != "hf":
            engine = options["engine"]
            raise ConfigError(f"{folder}: a tagger folder runs on its own; engine={engine!r} is for adapters")
        predictor = TaggerPredictor.from_artifact(
            folder, artifact, chosen["model"], chosen["precision"], options.get("trust_remote_code", False)
        )
    else:
        predictor = GenerativePredictor.from_artifact(
            folder, artifact, chosen["model"], chosen["precision"], **options
        )
    if isinstance(predictor, Predictor):  # (a test's stand-in loader may return anything)
        predictor.calibration = Calibration.from_dict(artifact.calibration)
        predictor.window_cap = artifact.window_cap()
        predictor.sentence_cap = artifact.window_sentences()
        predictor.longest_text = artifact.longest_text_tokens
    return predictor
