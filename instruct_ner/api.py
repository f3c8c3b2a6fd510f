"""The Python API: a trained folder (or a prompted model) as an object with `predict_entities(text)`.

    from instruct_ner import NER
    ner = NER.from_pretrained("runs/sft")          # a generative adapter folder or a tagger folder
    ner.predict_entities("EU rejects German call to boycott British lamb .")
    # -> [Entity(label='ORG', token_start=0, token_end=1, start=0, end=2, text='EU'), ...]
    ner.predict(texts, batch_size=32)               # one list per text, input order kept
    ner.evaluate("data/conll_en/test.txt")          # the same scores as `instruct-ner score`
    NER.zero_shot(labels=["PER", "ORG", "LOC"])     # prompting baseline; embedded model unless model= is given

Texts are split into words by the project's tokenizer (`prompts.tokenize`), so `text[e.start:e.end] ==
e.text` for every entity. A text of any length is taken: one past the model's context is cut into windows and their
entities merged back (`inference.windows`, as `generate` and `tag` do). The predictions come from the same
predictor objects as `instruct-ner generate` and `instruct-ner tag` (`inference.predictor`),
so the API and the CLI cannot disagree. An
option given here (model, precision; None = not given) wins over the value saved with the folder, by
the CLI's rule (`config.explicit_or_saved`). Entities are `Entity` objects throughout; they become
dicts only in a file written by `evaluate(out=...)`, whose records are in input order like `generate`'s.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path

from instruct_ner.examples import Entity, Example
from instruct_ner.inference.predictor import (
    GenerativePredictor,
    Predictor,
    RunOptions,
    file_record,
    input_records,
    load_predictor,
)
from instruct_ner.jsonl import write_jsonl
from instruct_ner.outputs import check_outputs
from instruct_ner.prompts.readers import ReaderOptions
from instruct_ner.prompts.templates import PROMPTING_TEMPLATE
from instruct_ner.prompts.tokenize import tokenize_with_offsets


class NER:
    """A named-entity recogniser: a generative adapter, a token classifier, or a prompted model."""

    def __init__(self, predictor: Predictor, batch_size: int = 32, max_new_tokens: int | None = None):
        """`max_new_tokens`: a cap on each generated response (generative; default: the format's bound per text)."""
        self.predictor, self.batch_size, self.max_new_tokens = predictor, batch_size, max_new_tokens

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        model: str | None = None,
        precision: str | None = None,
        constrain: bool = True,
        batch_size: int = 32,
        engine: str = "hf",
    ) -> NER:
        """A folder written by `instruct-ner train` (LoRA adapter) or `instruct-ner train-tagger`.

        `model` and `precision` default to the ones saved with the folder; `constrain` (generative
        folders) asks for constrained decoding where the decoder supports it. `engine` (generative folders):
        "hf", our own decoding loop, or "vllm", vLLM's engine (`generate --engine`; needs `make install-vllm`).
        """
        given = {name: value for name, value in (("model", model), ("precision", precision)) if value is not None}
        return cls(load_predictor(path, given, constrain=constrain, engine=engine), batch_size)

    @classmethod
    def from_server(
        cls,
        url: str,
        adapter: str | Path,
        name: str | None = None,
        constrain: bool = True,
        batch_size: int = 32,
        concurrency: int = 16,
    ) -> NER:
        """A client of `instruct-ner serve` (vLLM's OpenAI-compatible server) for one adapter it serves.

        `adapter`: the adapter folder (read here for its prompt, labels and base model's tokenizer); `name`: its LoRA
        module name on the server (default: the folder's name, as `serve` names it). Each text is sent as our prompt
        with its grounding constraint; answers come back as `Entity` objects with offsets, as from_pretrained's do.
        Example: NER.from_server("http://127.0.0.1:8000", adapter="runs/sft").predict_entities("EU rejects ...")
        """
        from instruct_ner.inference.server import server_generator

        builder, generator = server_generator(url, adapter, name, constrain, concurrency)
        return cls(GenerativePredictor(builder, generator, str(adapter)), batch_size)

    @classmethod
    def zero_shot(
        cls,
        labels: list[str],
        model: str | None = None,
        template: str = PROMPTING_TEMPLATE,
        style: str = "chat",
        precision: str = "auto",
        definitions: dict[str, str] | None = None,
        constrain: bool = True,
        batch_size: int = 32,
    ) -> NER:
        """The prompting baseline: an instruction-tuned model asked for `labels`, no training.

        With no `model`, the embedded SmolLM2-135M-Instruct.
        """
        from instruct_ner.prompts.labels import check_labels
        from instruct_ner.prompts.templates import PromptBuilder, load_template

        labels = check_labels(labels, "zero_shot(labels=...)")  # "PER" is not ["P", "E", "R"]
        builder = PromptBuilder(load_template(template), labels, style, dict(definitions or {}))
        predictor = GenerativePredictor.load(builder, model or "", precision=precision, constrain=constrain)
        return cls(predictor, batch_size)

    @property
    def labels(self) -> list[str]:
        return list(self.predictor.labels)

    @property
    def kind(self) -> str:
        """generative or tagger."""
        return self.predictor.kind

    def predict_entities(self, text: str, threshold: float = 0.0) -> list[Entity]:
        """The entities of one text, in order; `text[e.start:e.end] == e.text`. Empty text -> [].

        Each has a `score` in [0, 1] (calibrated when the folder was); those scored below `threshold` are left out.
        """
        return self.predict([text], threshold=threshold)[0]

    def predict(
        self, texts: Iterable[str], batch_size: int | None = None, threshold: float = 0.0
    ) -> list[list[Entity]]:
        """One list of entities per text, in input order (those scored below `threshold` left out)."""
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
            raise ValueError(f"threshold must be a number between 0 and 1, not {threshold!r}")
        if isinstance(texts, str):
            raise TypeError("predict takes a list of texts; for one text use predict_entities(text)")
        texts = list(texts)
        if any(not isinstance(text, str) for text in texts):
            raise TypeError("predict takes strings (use predict_entities for one text)")
        batch_size = self.batch_size if batch_size is None else batch_size
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a whole number of at least 1, not {batch_size!r}")
        examples = {i: example for i, text in enumerate(texts) if (example := text_example(str(i), text)) is not None}
        result: list[list[Entity]] = [[] for _ in texts]
        if examples:
            options = RunOptions(batch_size=batch_size, max_new_tokens=self.max_new_tokens)
            outputs = self.predictor.predict(list(examples.values()), options=options)
            for i, output in zip(examples, outputs):
                result[i] = [e for e in output["entities"] if e.score is None or e.score >= threshold]
        return result

    def evaluate(
        self, data: str | Path, out: str | Path | None = None, strict: bool = False, **reader_options
    ) -> dict:
        """Predict on labelled data and score it exactly as `instruct-ner score` does (seqeval).

        `reader_options` are `ReaderOptions` fields (`limit`, `format`, `id_column`, ...); `out`, when
        given, keeps the predictions as JSONL: the records `generate` / `tag` would write, in input order
        (so `instruct-ner compare` takes it beside their outputs).
        """
        from instruct_ner.inference.score import score_file

        if out is not None:  # before anything is read or predicted: never onto the data or the model folder
            check_outputs("evaluate", files={"out": out}, inputs=[data], models=[self.predictor.folder])
        records, examples = input_records(data, ReaderOptions(**reader_options))
        self.predictor.check_data(examples, data)
        outputs = self.predictor.predict(examples, self.batch_size, records)
        if out is not None:
            write_jsonl(out, [file_record(output) for output in outputs])
            return score_file(out, strict)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "predictions.jsonl"
            write_jsonl(path, [file_record(output) for output in outputs])
            result = score_file(path, strict)
        result["file"] = str(data)
        return result

    def __repr__(self) -> str:
        where = f" from {self.predictor.folder}" if self.predictor.folder else " (zero-shot)"
        return f"NER({self.kind}{where}, labels={self.labels})"


def text_example(example_id: str, text: str) -> Example | None:
    """An unlabelled Example of a raw text (all tags O), or None when the text has no word.

    Example: text_example("1", "EU rejects .").offsets -> [(0, 2), (3, 10), (11, 12)]
    """
    words = tokenize_with_offsets(text)
    if not words:
        return None
    tokens = [word for word, _, _ in words]
    return Example(example_id, tokens, ["O"] * len(tokens), text, [(start, end) for _, start, end in words])


def score(predictions: str | Path | list[list[str]], gold: list[list[str]] | None = None, strict: bool = False):
    """Scores as `instruct-ner score` gives them: of a JSONL file (tags + pred_tags), or of tag lists.

    Example: score([["B-PER", "O"]], gold=[["B-PER", "O"]])["micro"]["f1"] -> 1.0
    """
    from instruct_ner.inference.score import score_file, score_tags

    if isinstance(predictions, (str, Path)):
        return score_file(predictions, strict)
    if gold is None:
        raise TypeError("score(pred_tags, gold=tags): gold tags are needed with tag lists")
    return score_tags(gold, predictions, strict)
