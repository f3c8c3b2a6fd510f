"""Annotation tools: our records out as pre-annotations (with scores) for Label Studio, Prodigy and Argilla, and the
corrected annotations back in as training records (`id`, `text`, `tokens`, `offsets`, `tags`) that `train` reads.

Formats written and read (one JSON object per task; Label Studio and Argilla files are JSON arrays, Prodigy JSONL;
import also takes a JSONL file for any tool):

- `labelstudio`: Label Studio tasks, `{"data": {"text": ...}, "predictions": [{"model_version", "score",
  "result": [...]}], "annotations": [{"result": [...]}]}`; each result is a `labels` region, `{"from_name": "label",
  "to_name": "text", "type": "labels", "value": {"start", "end", "text", "labels": [LABEL]}, "score"}`. The project's
  labelling config must name its `<Labels>` "label" and its `<Text>` "text" (export prints one). Import reads a
  task's last annotation that was not cancelled (`was_cancelled`), never its predictions, as the gold tags.
- `prodigy`: Prodigy/spaCy tasks, `{"text", "tokens": [{"text", "start", "end", "id", "ws"}], "spans": [{"start",
  "end", "token_start", "token_end" (inclusive, as Prodigy writes it), "label", "score"}], "meta": {"id"}}`, as
  `ner.manual`/`ner.correct` read and `db-out` writes them. Import reads `answer: "accept"` tasks; `reject` and
  `ignore` are counted and left out.
- `argilla`: Argilla 2.x records as `Record.to_dict()` writes them and `Record.from_dict()` / `records.to_json()` /
  `records.from_json()` read them (SDK 2.x, as in `argilla/src/argilla/records/_resource.py`): `{"id", "fields":
  {"text": ...}, "metadata": {...}, "suggestions": {"spans": {"value": [{"start", "end", "label"}], "score": [per
  span], "agent"}}, "responses": {"spans": [{"value": [...], "user_id", "status"}]}, "vectors": {}}`, for a dataset
  with a `TextField("text")` and a `SpanQuestion("spans", field="text")`. Import reads the first `submitted`
  response (one without a status, as older 2.x `to_dict()` writes it, counts as submitted); `discarded` records are
  counted and left out. Gold exported with `--gold` has `user_id: null`: set an Argilla user's id before logging it
  as responses.

Our own words travel with each task (Label Studio `data.instruct_ner`, Prodigy `instruct_ner`, Argilla
`metadata.instruct_ner` as a JSON string): the record id, tokens and offsets, and (Prodigy) the predictions, so that
records -> tool -> records is exact. A task without them (made in the tool) is tokenised by `prompts.tokenize`.

Spans come back as character offsets and are snapped to the tokens: whitespace at either end of a span is dropped
(annotators often select a trailing space); a span that cuts a token (`Acme` of `Acme.it`) is an error naming the
task and the token, never widened (`--on_error skip` counts it and leaves the task out). Predictions come back as
`entities` (with `score` where the tool kept one) and `pred_tags`. A task that nobody annotated is left out and
counted (`--unannotated predictions` takes its pre-annotations as its tags instead).

This module reads and writes files only in `export_main`/`import_main`; the converters are pure. It does not talk to
the tools' servers.

Examples:
    instruct-ner export --data runs/predictions.jsonl --to labelstudio --out runs/review.labelstudio.json
    instruct-ner import --data export.json --from labelstudio --out runs/corrected.jsonl
"""

from __future__ import annotations

import html
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from instruct_ner.config import ConfigError, parse_config
from instruct_ner.examples import DataError, Example, snap_span, spans_to_tags, tags_to_spans
from instruct_ner.jsonl import iter_jsonl, write_jsonl, write_text_atomic
from instruct_ner.outputs import check_outputs
from instruct_ner.prompts.tokenize import tokenize_with_offsets
from instruct_ner.textio import read_text

TOOLS = ("labelstudio", "prodigy", "argilla")
CARRY = "instruct_ner"  # the key our own words travel under in each tool's task
AGENT = "instruct-ner"
QUESTION = "spans"  # Argilla's span question, and Label Studio's from_name is "label"


# ----------------------------------------------------------------------------------------------------------- out


def predicted_spans(record: dict, example: Example) -> list[dict] | None:
    """The record's predicted entities as {start, end, label[, score]} (from `entities`, else `pred_tags`); None when
    the record holds no prediction.

    Example: predicted_spans({"pred_tags": ["B-ORG"]}, Example("1", ["EU"], ["O"])) -> [{"start": 0, "end": 2,
        "label": "ORG"}]
    """
    if isinstance(record.get("entities"), list):
        spans = []
        for entity in record["entities"]:
            span = {"start": entity["start"], "end": entity["end"], "label": entity["label"]}
            if entity.get("score") is not None:
                span["score"] = entity["score"]
            spans.append(span)
        return spans
    if isinstance(record.get("pred_tags"), list):
        return [
            {"start": example.offsets[s][0], "end": example.offsets[e - 1][1], "label": label}
            for label, s, e in tags_to_spans(record["pred_tags"])
        ]
    return None


def gold_spans(example: Example) -> list[dict]:
    """The gold entities of an example as {start, end, label}. Example: for tags ["B-ORG"] over "EU" -> [{"start": 0,
    "end": 2, "label": "ORG"}]"""
    return [{"start": e.start, "end": e.end, "label": e.label} for e in example.entities]


def to_labelstudio(example: Example, predictions: list[dict] | None, gold: bool) -> dict:
    """A Label Studio task: the text, our words under data.instruct_ner, predictions (scored) and, with `gold`, the
    gold tags as an annotation.

    Example: to_labelstudio(Example("1", ["EU"], ["B-ORG"]), None, True)["annotations"][0]["result"][0]["value"]
        -> {"start": 0, "end": 2, "text": "EU", "labels": ["ORG"]}
    """

    def results(spans):
        out = []
        for i, span in enumerate(spans):
            value = {"start": span["start"], "end": span["end"], "text": example.text[span["start"] : span["end"]]}
            item = {"id": f"e{i}", "from_name": "label", "to_name": "text", "type": "labels"}
            item["value"] = value | {"labels": [span["label"]]}
            if "score" in span:
                item["score"] = span["score"]
            out.append(item)
        return out

    task = {"data": {"text": example.text, CARRY: _carried(example)}}
    if predictions is not None:
        prediction = {"model_version": AGENT, "result": results(predictions)}
        scores = [span["score"] for span in predictions if "score" in span]
        if scores:
            prediction["score"] = min(scores)
        task["predictions"] = [prediction]
    if gold:
        task["annotations"] = [{"result": results(gold_spans(example))}]
    return task


def to_prodigy(example: Example, predictions: list[dict] | None, gold: bool) -> dict:
    """A Prodigy/spaCy task: tokens, and spans to correct (the gold ones with `gold`, accepted; else the predictions);
    the predictions also travel under `instruct_ner`.

    Example: to_prodigy(Example("1", ["EU", "says"], ["B-ORG", "O"]), None, True)["spans"]
        -> [{"start": 0, "end": 2, "token_start": 0, "token_end": 0, "label": "ORG"}]
    """
    tokens = []
    for i, (token, (start, end)) in enumerate(zip(example.tokens, example.offsets)):
        following = example.offsets[i + 1][0] if i + 1 < len(example.offsets) else len(example.text)
        tokens.append({"text": token, "start": start, "end": end, "id": i, "ws": following > end})

    def spans(items):
        out = []
        for item in items:
            first, last, _ = snap_span(example.offsets, item["start"], item["end"])
            span = {"start": item["start"], "end": item["end"], "token_start": first, "token_end": last - 1}
            out.append(span | {k: item[k] for k in ("label", "score") if k in item})
        return out

    carried = _carried(example)
    if predictions is not None:
        carried["predictions"] = spans(predictions)
    task = {"text": example.text, "tokens": tokens, "spans": spans(gold_spans(example) if gold else predictions or [])}
    task["meta"] = {"id": example.id}
    task[CARRY] = carried
    if gold:
        task["answer"] = "accept"
    return task


def to_argilla(example: Example, predictions: list[dict] | None, gold: bool) -> dict:
    """An Argilla 2.x record (`Record.to_dict()` shape): predictions as the span question's suggestion (a score per
    span when every span has one), gold as a submitted response with `gold`.

    Example: to_argilla(Example("1", ["EU"], ["B-ORG"]), [{"start": 0, "end": 2, "label": "ORG", "score": 0.9}],
        False)["suggestions"] -> {"spans": {"value": [{"start": 0, "end": 2, "label": "ORG"}], "score": [0.9],
        "agent": "instruct-ner"}}
    """
    record = {"id": example.id, "fields": {"text": example.text}}
    record["metadata"] = {CARRY: json.dumps(_carried(example), ensure_ascii=False)}
    record["suggestions"], record["responses"], record["vectors"] = {}, {}, {}
    if predictions is not None:
        value = [{k: span[k] for k in ("start", "end", "label")} for span in predictions]
        scored = predictions and all("score" in span for span in predictions)
        score = [span["score"] for span in predictions] if scored else None
        record["suggestions"][QUESTION] = {"value": value, "score": score, "agent": AGENT}
    if gold:
        record["responses"][QUESTION] = [{"value": gold_spans(example), "user_id": None, "status": "submitted"}]
    return record


EXPORTERS = {"labelstudio": to_labelstudio, "prodigy": to_prodigy, "argilla": to_argilla}


def export_record(record: dict, tool: str, gold: bool = False, where: str = "") -> dict:
    """One of our records as a task of `tool` (see the module docstring for each format).

    Example: export_record({"id": "1", "tokens": ["EU"], "tags": ["O"], "pred_tags": ["B-ORG"]}, "argilla")["id"]
        -> "1"
    """
    example = Example.from_record(record, where)
    return EXPORTERS[tool](example, predicted_spans(record, example), gold)


def labelstudio_config(labels: list[str]) -> str:
    """The Label Studio labelling config that our tasks need (names `label` and `text`).

    Example: labelstudio_config(["ORG"]).splitlines()[2] -> '    <Label value="ORG"/>'
    """
    lines = ["<View>", '  <Labels name="label" toName="text">']
    lines += [f'    <Label value="{html.escape(label)}"/>' for label in labels]
    lines += ["  </Labels>", '  <Text name="text" value="$text"/>', "</View>"]
    return "\n".join(lines)


def _carried(example: Example) -> dict:
    return {"id": example.id, "tokens": list(example.tokens), "offsets": [list(o) for o in example.offsets]}


# ------------------------------------------------------------------------------------------------------------ in


class NotAnnotated(Exception):
    """A task left out on purpose (rejected, discarded, not annotated): counted under `reason`, never an error."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def example_of(text: str, carried: dict | None, example_id: str, where: str) -> Example:
    """The tokens of a task's text: the ones we exported with it when they still fit the text, else our tokenizer's.

    Example: example_of("EU says", None, "7", "t").tokens -> ["EU", "says"]
    """
    if not isinstance(text, str):
        raise DataError(where, f"the task's text is {type(text).__name__}; expected a string", "bad_type")
    if isinstance(carried, dict) and isinstance(carried.get("tokens"), list):
        record = {"id": example_id, "text": text, "tokens": carried["tokens"], "offsets": carried.get("offsets")}
        record["tags"] = ["O"] * len(carried["tokens"])
        try:
            return Example.from_record(record, where)
        except DataError:
            pass  # the text was edited in the tool: tokenise it afresh
    tokenized = tokenize_with_offsets(text)
    tokens, offsets = [t for t, _, _ in tokenized], [(s, e) for _, s, e in tokenized]
    return Example(example_id, tokens, ["O"] * len(tokens), text, offsets, source=where)


def snap_spans(example: Example, spans: list[dict], where: str) -> list[tuple[str, int, int, float | None]]:
    """Character spans {start, end, label[, score]} as token spans (label, first, last + 1, score), in text order.

    Whitespace at a span's ends is dropped; a span that cuts a token, covers none, or overlaps another raises
    DataError naming `where`.
    Example: snap_spans(Example("1", ["EU", "says"], ["O", "O"]), [{"start": 0, "end": 3, "label": "ORG"}], "t")
        -> [("ORG", 0, 1, None)]
    """
    text, snapped = example.text, []
    for span in spans:
        start, end, label = span.get("start"), span.get("end"), span.get("label")
        if not (type(start) is int and type(end) is int and 0 <= start <= end <= len(text)) or not label:
            raise DataError(
                where, f"span {span!r}: expected integer start <= end inside the text and a label", "bad_span"
            )
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        found = snap_span(example.offsets, start, end) if start < end else None
        if found is None:
            raise DataError(
                where, f"span {text[span['start'] : span['end']]!r} ({label}) covers no token", "empty_span"
            )
        first, last, widened = found
        if widened:
            cut = first if example.offsets[first][0] != start else last - 1
            raise DataError(
                where,
                f"span {text[start:end]!r} ({label}) at [{start}, {end}] cuts the token {example.tokens[cut]!r} "
                f"at {list(example.offsets[cut])}; correct the span to whole tokens (or --on_error skip)",
                "partial_token",
            )
        snapped.append((label, first, last, span.get("score")))
    snapped.sort(key=lambda s: (s[1], s[2]))
    for before, after in zip(snapped, snapped[1:]):
        if after[1] < before[2]:
            shown = example.text[example.offsets[after[1]][0] : example.offsets[after[2] - 1][1]]
            raise DataError(where, f"span {shown!r} ({after[0]}) overlaps the span before it ({before[0]})", "overlap")
    return snapped


def build_record(example: Example, gold: list[dict], predictions: list[dict] | None, where: str) -> dict:
    """Our record: tokens, offsets, gold tags and, when the task held predictions, `entities` (scored) and
    `pred_tags`.

    Example: build_record(Example("1", ["EU"], ["O"]), [{"start": 0, "end": 2, "label": "ORG"}], None, "t")["tags"]
        -> ["B-ORG"]
    """
    spans = snap_spans(example, gold, where)
    record = Example(example.id, example.tokens, spans_to_tags([s[:3] for s in spans], len(example.tokens)))
    record.text, record.offsets = example.text, example.offsets
    out = record.to_record()
    out["offsets"] = [list(o) for o in example.offsets]
    if predictions is not None:
        predicted = snap_spans(example, predictions, where)
        entities = []
        for label, first, last, score in predicted:
            entity = example.entity(label, first, last).to_dict()
            if score is not None:
                entity["score"] = score
            entities.append(entity)
        out["entities"] = entities
        out["pred_tags"] = spans_to_tags([s[:3] for s in predicted], len(example.tokens))
    return out


def from_labelstudio(task: dict, where: str, unannotated: str = "skip") -> dict:
    """Our record of a Label Studio task: its last annotation not cancelled as the tags, its first prediction as
    the entities.

    Example: from_labelstudio({"data": {"text": "EU"}, "annotations": [{"result": [{"type": "labels", "value":
        {"start": 0, "end": 2, "labels": ["ORG"]}}]}]}, "t")["tags"] -> ["B-ORG"]
    """
    data = _object(task.get("data"), where, "data")
    carried = data.get(CARRY) if isinstance(data.get(CARRY), dict) else {}
    example_id = str(carried.get("id", task.get("id", where)))
    where = f"{where} (id {example_id})"
    example = example_of(data.get("text"), carried, example_id, where)
    annotations = [a for a in task.get("annotations") or [] if isinstance(a, dict) and not a.get("was_cancelled")]
    predictions = [p for p in task.get("predictions") or [] if isinstance(p, dict)]
    if annotations:
        gold = _labelstudio_spans(annotations[-1].get("result"), where)
    elif task.get("annotations"):
        raise NotAnnotated("cancelled")
    elif unannotated == "predictions" and predictions:
        gold = _labelstudio_spans(predictions[0].get("result"), where)
    else:
        raise NotAnnotated("not_annotated")
    predicted = _labelstudio_spans(predictions[0].get("result"), where) if predictions else None
    return build_record(example, gold, predicted, where)


def _labelstudio_spans(result, where: str) -> list[dict]:
    spans = []
    for item in result or []:
        if not isinstance(item, dict) or item.get("type") != "labels":
            continue  # relations, choices, text areas: not entities
        value = _object(item.get("value"), where, "result value")
        labels = value.get("labels")
        if not isinstance(labels, list) or len(labels) != 1:
            raise DataError(
                where, f"region {value.get('text')!r} has labels {labels!r}; expected exactly one", "bad_span"
            )
        span = {"start": value.get("start"), "end": value.get("end"), "label": labels[0]}
        if isinstance(item.get("score"), int | float):
            span["score"] = item["score"]
        spans.append(span)
    return spans


def from_prodigy(task: dict, where: str, unannotated: str = "skip") -> dict:
    """Our record of an accepted Prodigy task: its spans as the tags, the predictions we sent as the entities.

    Example: from_prodigy({"text": "EU", "spans": [{"start": 0, "end": 2, "label": "ORG"}], "answer": "accept"},
        "t")["tags"] -> ["B-ORG"]
    """
    answer = task.get("answer")
    if answer in ("reject", "ignore"):
        raise NotAnnotated(f"{answer}ed")
    if answer != "accept" and not (answer is None and unannotated == "predictions"):
        raise NotAnnotated("not_annotated")
    carried = task.get(CARRY) if isinstance(task.get(CARRY), dict) else {}
    meta = task.get("meta") if isinstance(task.get("meta"), dict) else {}
    example_id = str(carried.get("id", meta.get("id", where)))
    where = f"{where} (id {example_id})"
    if "tokens" not in carried and isinstance(task.get("tokens"), list):  # Prodigy's tokens (spaCy's, spaces dropped)
        words = [t for t in task["tokens"] if isinstance(t, dict) and str(t.get("text", "")).strip()]
        carried = carried | {"tokens": [t.get("text") for t in words]}
        carried["offsets"] = [[t.get("start"), t.get("end")] for t in words]
    example = example_of(task.get("text"), carried, example_id, where)
    gold = [_object(span, where, "span") for span in task.get("spans") or []]
    predicted = carried.get("predictions") if isinstance(carried.get("predictions"), list) else None
    return build_record(example, gold, predicted, where)


def from_argilla(item: dict, where: str, unannotated: str = "skip") -> dict:
    """Our record of an Argilla 2.x record: its first submitted response to the span question as the tags, the
    suggestion as the entities.

    Example: from_argilla({"id": "1", "fields": {"text": "EU"}, "responses": {"spans": [{"value": [{"start": 0,
        "end": 2, "label": "ORG"}], "status": "submitted"}]}}, "t")["tags"] -> ["B-ORG"]
    """
    fields = _object(item.get("fields"), where, "fields")
    metadata = item.get("metadata") if isinstance(item.get("metadata"), dict) else {}
    try:
        carried = json.loads(metadata.get(CARRY) or "{}")
    except (TypeError, json.JSONDecodeError):
        carried = {}
    example_id = str(item.get("id") if item.get("id") is not None else carried.get("id", where))
    where = f"{where} (id {example_id})"
    example = example_of(fields.get("text"), carried, example_id, where)
    suggestion = (item.get("suggestions") or {}).get(QUESTION)
    predicted = None
    if isinstance(suggestion, dict):
        predicted = [dict(_object(s, where, "suggested span")) for s in suggestion.get("value") or []]
        scores = suggestion.get("score")
        if isinstance(scores, list) and len(scores) == len(predicted):
            for span, score in zip(predicted, scores):
                span["score"] = score
    responses = [r for r in (item.get("responses") or {}).get(QUESTION) or [] if isinstance(r, dict)]
    submitted = [r for r in responses if r.get("status", "submitted") == "submitted"]
    if submitted:
        gold = [_object(s, where, "span") for s in submitted[0].get("value") or []]
    elif any(r.get("status") == "discarded" for r in responses):
        raise NotAnnotated("discarded")
    elif unannotated == "predictions" and predicted is not None:
        gold = predicted
    else:
        raise NotAnnotated("not_annotated")
    return build_record(example, gold, predicted, where)


IMPORTERS = {"labelstudio": from_labelstudio, "prodigy": from_prodigy, "argilla": from_argilla}


def import_tasks(
    tasks: list[tuple[str, dict]], tool: str, on_error: str = "raise", unannotated: str = "skip"
) -> tuple[list[dict], Counter]:
    """Our records of a tool's tasks ((where, task) pairs) and the tasks left out, counted by reason.

    Example: import_tasks([("t:1", {"text": "EU", "spans": [], "answer": "reject"})], "prodigy") -> ([],
        Counter({"rejected": 1}))
    """
    records, skipped = [], Counter()
    for where, task in tasks:
        try:
            records.append(IMPORTERS[tool](_object(task, where, "task"), where, unannotated))
        except NotAnnotated as left_out:
            skipped[left_out.reason] += 1
        except DataError as error:
            if on_error == "raise":
                raise
            skipped[error.reason] += 1
    return records, skipped


def read_tasks(path: str | Path) -> list[tuple[str, dict]]:
    """(where, task) of a tool's export: a JSON array (Label Studio, Argilla), one object, or JSONL (Prodigy)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    text = read_text(path, "export file")
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as error:
            raise DataError(f"{path}:{error.lineno}", f"not valid JSON ({error.msg})", "bad_json") from None
        return [(f"{path}: task {i}", item) for i, item in enumerate(items)]
    return list(iter_jsonl(path))


def _object(value, where: str, what: str) -> dict:
    if not isinstance(value, dict):
        raise DataError(where, f"{what} is {type(value).__name__}; expected a JSON object", "bad_type")
    return value


# ------------------------------------------------------------------------------------------------------ commands


@dataclass
class ExportConfig:
    data: str = field(default="", metadata={"help": "our records (JSONL: a prediction, prepare or import file)"})
    to: str = field(default="labelstudio", metadata={"help": "annotation tool format", "choices": list(TOOLS)})
    out: str = field(default="", metadata={"help": "file to write (JSON array; JSONL for prodigy)"})
    gold: bool = field(
        default=False,
        metadata={"help": "also export the records' gold tags as accepted annotations (default: predictions only)"},
    )

    def __post_init__(self) -> None:
        if not self.data or not self.out:
            raise ConfigError("export needs --data RECORDS.jsonl and --out FILE")


@dataclass
class ImportConfig:
    data: str = field(default="", metadata={"help": "the tool's export (JSON array or JSONL)"})
    from_: str = field(
        default="labelstudio",
        metadata={"help": "annotation tool format of --data", "choices": list(TOOLS), "aliases": ["--from"]},
    )
    out: str = field(default="", metadata={"help": "training records to write (JSONL)"})
    on_error: str = field(
        default="raise",
        metadata={
            "help": "a span that cuts a token or overlaps another: raise, or skip the task and count it",
            "choices": ["raise", "skip"],
        },
    )
    unannotated: str = field(
        default="skip",
        metadata={
            "help": "a task nobody annotated: skip it (counted), or take its predictions as its tags",
            "choices": ["skip", "predictions"],
        },
    )

    def __post_init__(self) -> None:
        if not self.data or not self.out:
            raise ConfigError("import needs --data EXPORT and --from labelstudio|prodigy|argilla and --out FILE")


def export_records(path: str | Path, tool: str, gold: bool = False) -> list[dict]:
    """Every record of a JSONL file as a task of `tool`."""
    return [export_record(record, tool, gold, where) for where, record in iter_jsonl(path)]


def export_main(argv: list[str] | None = None) -> int:
    config = parse_config(ExportConfig, argv, prog="instruct-ner export", description=__doc__)
    check_outputs("export", files={"--out": config.out}, inputs=[config.data])
    tasks = export_records(config.data, config.to, config.gold)
    if config.to == "prodigy":
        write_jsonl(config.out, tasks)
    else:
        write_text_atomic(config.out, json.dumps(tasks, ensure_ascii=False, indent=1) + "\n")
    print(f"{config.out}: {len(tasks)} {config.to} tasks", file=sys.stderr)
    if config.to == "labelstudio":
        labels = sorted(
            {r["value"]["labels"][0] for t in tasks for p in t.get("predictions", []) for r in p["result"]}
            | {r["value"]["labels"][0] for t in tasks for a in t.get("annotations", []) for r in a["result"]}
        )
        print("Label Studio labelling config for these tasks:\n" + labelstudio_config(labels), file=sys.stderr)
    return 0


def import_main(argv: list[str] | None = None) -> int:
    config = parse_config(ImportConfig, argv, prog="instruct-ner import", description=__doc__)
    check_outputs("import", files={"--out": config.out}, inputs=[config.data])
    records, skipped = import_tasks(read_tasks(config.data), config.from_, config.on_error, config.unannotated)
    write_jsonl(config.out, records)
    left_out = ", ".join(f"{reason}: {n}" for reason, n in sorted(skipped.items()))
    print(f"{config.out}: {len(records)} records" + (f"; left out {left_out}" if left_out else ""), file=sys.stderr)
    return 0
