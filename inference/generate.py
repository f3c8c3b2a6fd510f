"""`instruct-ner generate`: batched greedy generation of entity lists (or inline markup), parsed into
entities and IOB2 tags, written as JSONL: one output record per input record, in input order.

- With `--adapter DIR`, the prompt is rebuilt exactly as in training from the adapter's description
  (`sft/artifact.py`: template source, style, labels, definitions, few-shot examples). Without one,
  the prompt comes from the options (`--template`, `--style`, `--few_shot N --few_shot_from FILE`):
  the zero- and few-shot prompting baselines, parsed by the same parser.
- Decoding: greedy, left padding, the prompt prefix shared by all records encoded once (its KV cache
  reused by every batch), records sorted by prompt length inside chunks of `batch_size * 8`
  to cut padding; generation stops at the end-of-turn token the model was trained to emit (and, for
  the instruction style, at a new `###` section); `max_new_tokens` is bounded per record by what the
  format can need for its text (the format's `new_token_bound`). Finished rows leave the batch.
- Constrained decoding (`--constrain`, on by default): every entity line is a word-aligned span of the
  input with a label from the set, in the format's order (`inference/constrained.py`).
- Runaway guard (entity lists, `--stop_runaway`, on by default): a row stops at the first completed
  line whose entity text is not in its input text, or that lists a text more often than it occurs
  there. Past that point a small or undertrained model is looping over the same names or inventing
  new ones, and every further token is wasted; the offending line is kept, so the parser still counts
  it as hallucinated, and `parse.stopped_runaway` says the guard fired.
- Engines (`--engine`): `hf`, our own loop (the default, everything above), or `vllm`, vLLM's engine
  (`inference/vllm_engine.py`, an optional install: `make install-vllm`): the same prompts, stop rule, bound and
  parser, the adapter applied per request, the constraint as a per-request regex (the format's own); it cannot
  keep entity lists in order of appearance, which the parser then sorts out.
- Long texts (`--window_tokens`, `--window_overlap`, `--window_sentences`; `--unit document` reads CoNLL
  documents): a text whose prompt and response bound do not fit the model's context, or longer than the sentences
  and tokens the model was trained on, is cut into windows (`inference/windows.py`), the
  windows of many texts decoded in the same batches, and their entities merged back with exact offsets; such a
  record says how many windows it took (`windows`) and what merging dropped (`parse.window_conflicts`).
- Confidence: every entity has a `score` (`inference/confidence.py`: by default the probability of its line or
  bracket renormalised over what the constraint allows; `--score_method label`: its label's given the span),
  calibrated when the adapter was (`instruct-ner calibrate`); `--threshold T` drops the entities below T.
- Each output record is its input record plus `generation`, `entities`, `pred_tags`, `parse`
  (diagnostics) and `timing`. Records are written chunk by chunk, each line flushed, so a crash or
  Ctrl-C leaves a valid partial file; `--resume` continues it without duplicates.
- An explicit `--model` / `--precision` wins over the adapter's saved ones, and an explicit
  `--template` / `--style` must agree with the adapter's (`config.explicit_or_saved`, the rule the
  Python API follows too). The adapter's description is read once per run.
- The work is done by `inference.predictor.GenerativePredictor`, the object the Python API uses too;
  this module adds the options, the checks and the output file (where entities become dicts).

Examples:
    instruct-ner generate --adapter runs/smollm2-conll2003 --data ../shared/data/conll2003/test.txt \\
        --limit 200 --out runs/predictions.jsonl
    instruct-ner generate --data data/conll_en/test.txt --style chat --few_shot 3 \\
        --few_shot_from data/conll_en/train.txt --out runs/few-shot.jsonl
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from instruct_ner.config import Config, ConfigError, explicit_or_saved, parse_config
from instruct_ner.examples import DataError, Example, labels_of
from instruct_ner.inference.confidence import SCORE_METHODS, Calibration, check_threshold
from instruct_ner.inference.decoding import (  # noqa: F401  (re-exported: the generator interface)
    DecodeOptions,
    Generated,
    Generator,
    HFGenerator,
    RunawayGuard,
    runaway_line,
)
from instruct_ner.inference.predictor import GenerativePredictor, RunOptions, file_record, input_records
from instruct_ner.inference.vllm_engine import ENGINES
from instruct_ner.inference.windows import WindowOptions, check_window_options
from instruct_ner.jsonl import (
    check_run_settings,
    iter_jsonl,
    output_lock,
    read_records,
    records_fingerprint,
    write_jsonl,
)
from instruct_ner.outputs import check_outputs
from instruct_ner.prompts.readers import ReaderOptions, load_examples
from instruct_ner.prompts.templates import PromptBuilder, PromptOptions, builder_from_options, load_template
from instruct_ner.sft.artifact import Artifact, check_labels, fingerprint
from instruct_ner.sft.options import ModelOptions


@dataclass
class GenerateConfig(Config, ModelOptions, PromptOptions, ReaderOptions, WindowOptions):
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
    engine: str = field(
        default="hf",
        metadata={
            "help": "decoder: hf (our own loop) or vllm (vLLM's engine, an optional install: make install-vllm)",
            "choices": list(ENGINES),
        },
    )
    threshold: float = field(
        default=0.0, metadata={"help": "drop entities whose (calibrated) score is below it; 0 keeps every one"}
    )
    score_method: str = field(
        default="sequence",
        metadata={"help": "entity score: sequence (its whole line or bracket) or label (its label given the span)"},
    )
    resume: bool = field(default=False, metadata={"help": "continue a partial output file instead of replacing it"})
    progress: bool = field(default=True, metadata={"help": "show a progress bar on stderr"})

    def __post_init__(self) -> None:
        if not self.data or not self.out:
            raise ConfigError("generate needs --data (a source or prepare JSONL) and --out FILE.jsonl")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {self.batch_size}")
        check_window_options(self)
        check_threshold(self.threshold)
        if self.score_method not in SCORE_METHODS:
            raise ConfigError(f"score_method must be one of {SCORE_METHODS}, not {self.score_method!r}")

    def run_options(self) -> RunOptions:
        return RunOptions(
            self.batch_size,
            self.max_new_tokens,
            self.sort_by_length,
            self.progress,
            window_tokens=self.window_tokens,
            window_overlap=self.window_overlap,
            window_sentences=self.window_sentences,
        )


def prompt_builder(
    config: GenerateConfig, examples: list[Example], records: list[dict], artifact: Artifact | None = None
) -> PromptBuilder:
    """The adapter's saved builder (checked against the data and options), or one from the options.

    `artifact`: the adapter's description when the caller has read it already (else it is read here).
    """
    if config.adapter:
        builder = (artifact or adapter_artifact(config)).builder()
        check_labels(builder.labels, labels_of(e.tags for e in examples), config.adapter, config.data)
        if config.labels and sorted(config.labels) != sorted(builder.labels):
            raise ConfigError(f"--labels {config.labels} differ from the adapter's label set {builder.labels}")
        # what the options (or else a prepare JSONL) ask for; the adapter's prompt must be that one
        asked = explicit_or_saved(config, {"template": records[0].get("template"), "style": None})
        if "template" in asked and load_template(asked["template"]).name != builder.template.name:
            raise ConfigError(
                f"the adapter {config.adapter} was trained with template {builder.template.name}, "
                f"not {load_template(asked['template']).name}; generate with the adapter's template"
            )
        if "style" in asked and config.style != builder.style:
            raise ConfigError(
                f"the adapter {config.adapter} was trained with style {builder.style}, not {config.style}"
            )
        return builder
    pool = load_examples(config.few_shot_from, config)[0] if config.few_shot_from else None
    if config.few_shot and pool is None:
        raise ConfigError("--few_shot needs --few_shot_from (examples other than the ones being scored)")
    return builder_from_options(config, examples, pool)


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
    predictor: GenerativePredictor,
    records: list[dict],
    examples: list[Example],
    out: str | Path,
    options: RunOptions | None = None,
    resume: bool = False,
) -> dict:
    """Generate, parse and write one output record per input record, in input order. Returns run figures."""
    import time

    options = options or RunOptions()
    out = Path(out)
    run = predictor.start(records, examples, options)
    order = run.order
    done = 0
    if resume:
        try:
            done = completed_records(out, [records[i] for i in order])
        except DataError:
            if completed_records(out, records) != len(records):  # a finished file, already in input order
                raise
            done, order = len(records), list(range(len(records)))
    if not resume and out.exists():
        out.unlink()
    out.parent.mkdir(parents=True, exist_ok=True)
    # Each batch is written as soon as it is done (an interrupt loses at most one batch), in generation
    # order; the finished file is put back into input order at the end.
    started, new_tokens, written = time.perf_counter(), 0, done
    for batch in predictor.outputs(run, start=done):
        written += write_jsonl(out, [file_record(output) for output in batch], append=True)
        new_tokens += sum(output["timing"]["new_tokens"] for output in batch)
        if options.on_chunk is not None:
            options.on_chunk(written)
    if order != sorted(order):  # back to input order, atomically
        written_records, position = read_records(out), {i: k for k, i in enumerate(order)}
        write_jsonl(out, [written_records[position[i]] for i in range(len(records))])
    seconds = time.perf_counter() - started
    generated_now = len(records) - done
    return {
        "records": written,
        "generated": generated_now,
        "seconds": seconds,
        "new_tokens": new_tokens,
        "sentences_per_second": generated_now / seconds if seconds else 0.0,
    }


def adapter_artifact(config: GenerateConfig) -> Artifact | None:
    """The adapter's description (None without `--adapter`); a missing or non-adapter folder fails here."""
    from instruct_ner.sft.models import ModelError

    if not config.adapter:
        return None
    if not Path(config.adapter).is_dir():
        raise ModelError(f"{config.adapter}: adapter folder not found")
    if not Path(config.adapter, "adapter_config.json").exists():
        raise ModelError(f"{config.adapter}: no adapter_config.json; not a LoRA adapter folder")
    return Artifact.load(config.adapter, kind="generative")


def model_options(config: GenerateConfig, artifact: Artifact | None) -> dict:
    """{"model", "precision"} to load: an explicit option wins over the adapter's saved one (`explicit_or_saved`)."""
    saved = artifact.saved_options() if artifact is not None else {}
    return {"model": config.model, "precision": config.precision, **explicit_or_saved(config, saved)}


def load_predictor(
    config: GenerateConfig, builder: PromptBuilder, artifact: Artifact | None = None
) -> GenerativePredictor:
    """The predictor for the config, at `model_options` (the adapter's description is read here unless given)."""
    artifact = artifact or adapter_artifact(config)
    chosen = model_options(config, artifact)
    predictor = GenerativePredictor.load(
        builder,
        chosen["model"],
        config.adapter,
        chosen["precision"],
        config.share_prefix,
        config.stop_runaway,
        config.constrain,
        config.trust_remote_code,
        config.engine,
    )
    if isinstance(predictor, GenerativePredictor):  # (a test's stand-in loader may return anything)
        predictor.threshold, predictor.score_method = config.threshold, config.score_method
        predictor.calibration = Calibration.from_dict(artifact.calibration) if artifact is not None else None
    return predictor


def check_model(model: str) -> None:
    """A model folder that does not exist fails here, before data is read or anything is loaded."""
    from instruct_ner.sft.models import EMBEDDED, resolve_model

    if model not in ("", EMBEDDED):
        resolve_model(model)  # a hub id passes; a local path that does not exist fails


def generate(config: GenerateConfig) -> dict:
    """Generate `config.data` into `config.out`; the adapter's description is read once, here."""
    inputs = [config.data, config.few_shot_from, config.label_definitions]
    models = [config.adapter, config.model]
    check_outputs("generate", files={"--out": config.out}, inputs=inputs, models=models)
    artifact = adapter_artifact(config)
    chosen = model_options(config, artifact)
    check_model(chosen["model"])
    records, examples = input_records(config.data, config)
    builder = prompt_builder(config, examples, records, artifact)
    with output_lock(config.out):  # one run per output: a second is refused, naming this one's process
        settings = {**run_settings(config, builder, chosen), "data_fingerprint": records_fingerprint(records)}
        check_run_settings(config.out, settings, config.resume)
        predictor = load_predictor(config, builder, artifact)
        return run_generation(predictor, records, examples, config.out, config.run_options(), config.resume)


def run_settings(config: GenerateConfig, builder: PromptBuilder, chosen: dict) -> dict:
    """What decides the generations of a run (`chosen`: `model_options`); `--resume` refuses to continue a
    file made with other settings."""
    return {
        **builder.to_dict(),
        "model": chosen["model"] or "embedded",
        "adapter": str(Path(config.adapter).resolve()) if config.adapter else None,
        "adapter_fingerprint": fingerprint(config.adapter) if config.adapter else None,
        "precision": chosen["precision"],
        "max_new_tokens": config.max_new_tokens,
        "stop_runaway": config.stop_runaway,
        "constrain": config.constrain,
        **({"engine": config.engine} if config.engine != "hf" else {}),
        **({"threshold": config.threshold} if config.threshold else {}),
        **({"score_method": config.score_method} if config.score_method != "sequence" else {}),
        **({"window_tokens": config.window_tokens} if config.window_tokens is not None else {}),
        **({"window_overlap": config.window_overlap} if config.window_overlap is not None else {}),
        **({"window_sentences": config.window_sentences} if config.window_sentences is not None else {}),
    }


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    config = parse_config(GenerateConfig, argv, prog="instruct-ner generate", description=__doc__)
    figures = generate(config)
    print(
        f"wrote {figures['records']} records to {config.out} ({figures['generated']} generated in "
        f"{figures['seconds']:.1f} s, {figures['sentences_per_second']:.2f} sentences/s)"
    )
    return 0
