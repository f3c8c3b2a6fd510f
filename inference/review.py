"""`instruct-ner review`: one self-contained HTML page to read predictions, least confident first.

Each record's text is shown with its predicted entities highlighted, one colour per label, the label beside each
entity and its score on hover. With `--gold`, each prediction is marked against the gold tags as `compare` counts
it (`correct`, `wrong_type`: same span, another type; `boundary`: overlapping span; `spurious`: overlaps no gold
span) and the gold spans no prediction overlaps are shown as `missed`. Records are sorted by their confidence, the
least score of their entities, lowest first; records without any scored entity follow in input order (the page
says how many). Two filters, by label and by error kind, hide the records that do not match; they are kept in the
page's address (`review.html#label=PER&kind=missed` opens filtered).

The page is one HTML file (`review.html` in `--output_dir`) with its CSS and a few lines of vanilla JavaScript
inline: no network, no external scripts or fonts. Every text is HTML-escaped, and the records are rendered as HTML
here (not embedded as data), so a page of thousands of records opens without a script building it.

It reads prediction records (`generate`, `tag`, `parse`, or `import`): `text`, `tokens`, `offsets`, `tags`, and the
prediction as `entities` (with an optional `score` in [0, 1]) or else `pred_tags`. It does not score (see `score`,
`compare`) and does not edit anything (see `export` for annotation tools).

Examples:
    instruct-ner review --data runs/predictions.jsonl --output_dir runs/review/
    instruct-ner review --data runs/predictions.jsonl --gold --output_dir runs/review/
"""

from __future__ import annotations

import html
import sys
from dataclasses import dataclass, field
from pathlib import Path

from instruct_ner.config import ConfigError, parse_config
from instruct_ner.examples import DataError, Example, tags_to_spans
from instruct_ner.jsonl import iter_jsonl, write_text_atomic
from instruct_ner.outputs import check_outputs, claim_folder

PAGE = "review.html"
KINDS = ("correct", "wrong_type", "boundary", "spurious", "missed")
PALETTE = (
    "#8ecae6", "#ffb703", "#95d5b2", "#f4a261", "#cdb4db", "#e9c46a",
    "#90e0ef", "#ffafcc", "#b5e48c", "#f6bd60", "#a2d2ff", "#d4a373",
)  # fmt: skip


@dataclass
class ReviewConfig:
    data: str = field(default="", metadata={"help": "prediction records (JSONL)", "positional": True})
    gold: bool = field(
        default=False, metadata={"help": "mark missed, spurious, wrong-type and boundary spans against the gold tags"}
    )
    output_dir: str = field(default="review", metadata={"help": "folder for review.html"})
    overwrite: bool = field(
        default=False, metadata={"help": "write into an --output_dir that holds files review did not write"}
    )

    def __post_init__(self) -> None:
        if not self.data:
            raise ConfigError("review needs --data PREDICTIONS.jsonl")


@dataclass
class Mark:
    """One highlighted span of a record's text: a prediction (with its kind against gold) or a missed gold span."""

    start: int
    end: int
    label: str
    kind: str  # "predicted" without gold; else one of KINDS
    score: float | None = None
    gold_label: str | None = None


def record_marks(record: dict, gold: bool, where: str = "") -> tuple[Example, list[Mark]]:
    """The example of a prediction record and its marks in text order.

    Example: record_marks({"id": 1, "tokens": ["EU", "says"], "tags": ["B-ORG", "O"], "pred_tags": ["O", "B-ORG"]},
        True)[1] -> [Mark(0, 2, "ORG", "missed"), Mark(3, 7, "ORG", "spurious")]
    """
    example = Example.from_record(record, where)
    if isinstance(record.get("entities"), list):
        predicted = []
        for entity in record["entities"]:
            if not isinstance(entity, dict) or not all(type(entity.get(k)) is int for k in ("start", "end")):
                raise DataError(where, f"entity {entity!r}: expected integer start and end", "bad_type")
            if not 0 <= entity["start"] < entity["end"] <= len(example.text):
                raise DataError(where, f"entity {entity!r} lies outside the text", "bad_span")
            score = entity.get("score")
            predicted.append((entity["start"], entity["end"], str(entity.get("label")), score))
    elif isinstance(record.get("pred_tags"), list):
        predicted = [
            (example.offsets[s][0], example.offsets[e - 1][1], label, None)
            for label, s, e in tags_to_spans(record["pred_tags"])
        ]
    else:
        raise DataError(where, "record has neither 'entities' nor 'pred_tags'; expected a prediction", "missing_field")
    if not gold:
        return example, sorted((Mark(s, e, label, "predicted", score) for s, e, label, score in predicted), key=_at)
    truth = [(e.start, e.end, e.label) for e in example.entities]
    marks, covered = [], set()
    for start, end, label, score in predicted:
        same = [g for g in truth if g[0] == start and g[1] == end]
        overlapping = [g for g in truth if g[0] < end and start < g[1]]
        covered.update(overlapping)
        if same:
            kind, match = ("correct" if same[0][2] == label else "wrong_type"), same[0]
        elif overlapping:
            kind, match = "boundary", overlapping[0]
        else:
            kind, match = "spurious", None
        marks.append(Mark(start, end, label, kind, score, match[2] if match else None))
    marks += [Mark(s, e, label, "missed", None, label) for s, e, label in truth if (s, e, label) not in covered]
    return example, sorted(marks, key=_at)


def _at(mark: Mark) -> tuple[int, int]:
    return mark.start, mark.end


def confidence(marks: list[Mark]) -> float | None:
    """A record's confidence: the least score of its predicted entities; None when none has a score.

    Example: confidence([Mark(0, 2, "ORG", "predicted", 0.9), Mark(3, 5, "PER", "predicted", 0.4)]) -> 0.4
    """
    scores = [m.score for m in marks if m.kind != "missed" and isinstance(m.score, int | float)]
    return min(scores) if scores else None


def render_text(text: str, marks: list[Mark], colours: dict[str, str]) -> str:
    """The text as HTML, each mark a <mark> element (escaped; a mark overlapping the one before is left out).

    Example: render_text("a<b", [Mark(0, 1, "X", "predicted", 0.5)], {"X": "#fff"}) ->
        '<mark class="ent k-predicted" style="--c:#fff" data-label="X" ...>a</mark>&lt;b'
    """
    parts, position = [], 0
    for mark in marks:
        if mark.start < position:
            continue
        parts.append(html.escape(text[position : mark.start]))
        tip = mark.label + (f" {mark.score:.2f}" if isinstance(mark.score, int | float) else "")
        title = f"{mark.label}" + (f" · score {mark.score:.3f}" if isinstance(mark.score, int | float) else "")
        if mark.kind not in ("predicted", "correct"):
            title += f" · {mark.kind.replace('_', ' ')}"
            if mark.gold_label and mark.kind != "missed":
                title += f" (gold {mark.gold_label})"
        attributes = {
            "class": f"ent k-{mark.kind}",
            "style": f"--c:{colours.get(mark.label, '#ddd')}",
            "data-label": mark.label,
            "data-kind": mark.kind,
            "data-start": str(mark.start),
            "data-end": str(mark.end),
            "data-score": "" if mark.score is None else str(mark.score),
            "data-tip": tip,
            "title": title,
        }
        shown = " ".join(f'{key}="{html.escape(value, quote=True)}"' for key, value in attributes.items())
        parts.append(f"<mark {shown}>{html.escape(text[mark.start : mark.end])}</mark>")
        position = mark.end
    parts.append(html.escape(text[position:]))
    return "".join(parts)


def render_page(records: list[tuple[str, dict]], gold: bool, source: str = "") -> str:
    """The whole review page for (where, record) pairs, least confident first."""
    items = []
    for index, (where, record) in enumerate(records):
        example, marks = record_marks(record, gold, where)
        items.append((index, example, marks, confidence(marks)))
    scored = sorted((item for item in items if item[3] is not None), key=lambda item: (item[3], item[0]))
    unscored = [item for item in items if item[3] is None]
    labels = sorted({m.label for _, _, marks, _ in items for m in marks})
    colours = {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}
    kinds = [k for k in KINDS if any(m.kind == k for _, _, marks, _ in items for m in marks)]
    body = []
    for rank, (_, example, marks, value) in enumerate([*scored, *unscored], start=1):
        record_kinds = sorted({m.kind for m in marks})
        record_labels = sorted({m.label for m in marks})
        shown = "no score" if value is None else f"confidence {value:.3f}"
        predicted = sum(m.kind != "missed" for m in marks)
        body.append(
            f'<section class="rec" data-id="{html.escape(example.id, quote=True)}" '
            f'data-labels="{html.escape(" ".join(record_labels), quote=True)}" '
            f'data-kinds="{html.escape(" ".join(record_kinds), quote=True)}">'
            f'<div class="head"><span class="rank">#{rank}</span> <span class="rid">{html.escape(example.id)}</span>'
            f" · {shown} · {predicted} predicted</div>"
            f'<div class="text">{render_text(example.text, marks, colours)}</div></section>'
        )
    legend = "".join(
        f'<span class="ent legend" style="--c:{colours[label]}">{html.escape(label)}</span>' for label in labels
    )
    label_options = "".join(f'<option value="{html.escape(x, quote=True)}">{html.escape(x)}</option>' for x in labels)
    kind_options = "".join(f'<option value="{k}">{k.replace("_", " ")}</option>' for k in kinds)
    notes = [f"{len(items)} records from {source}" if source else f"{len(items)} records"]
    notes.append(f"{len(scored)} sorted by confidence (the least entity score), lowest first")
    if unscored:
        notes.append(f"{len(unscored)} without any scored entity shown after them, in input order")
    if gold:
        counts = {k: sum(m.kind == k for _, _, marks, _ in items for m in marks) for k in KINDS}
        notes.append("against gold: " + ", ".join(f"{k.replace('_', ' ')} {n}" for k, n in counts.items()))
    kind_filter = f'<label>error kind <select id="kind"><option value="">all</option>{kind_options}</select></label>'
    return TEMPLATE.format(
        title=html.escape(f"instruct-ner review: {source}" if source else "instruct-ner review"),
        notes=html.escape("; ".join(notes)),
        legend=legend,
        label_options=label_options,
        kind_filter=kind_filter if gold else "",
        key=KEY if gold else "",
        records="\n".join(body),
        total=len(items),
    )


KEY = (
    '<p class="key notes"><span class="ent k-spurious">spurious</span><span class="ent k-wrong_type">wrong type</span>'
    '<span class="ent k-boundary">boundary</span><span class="ent k-missed">missed</span> (the label and score of'
    " each entity show on hover; the filters are kept in the page address)</p>"
)
TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font: 15px/1.6 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 0;
  color: #1d2330; background: #f4f5f7; }}
header {{ position: sticky; top: 0; background: #fff; border-bottom: 1px solid #d8dce3; padding: 10px 20px;
  z-index: 2; }}
h1 {{ font-size: 18px; margin: 0 0 4px; }}
.notes {{ color: #555d6b; font-size: 13px; margin: 0 0 6px; }}
.controls {{ display: flex; flex-wrap: wrap; gap: 14px; align-items: center; font-size: 14px; }}
select {{ font: inherit; padding: 2px 4px; }}
main {{ padding: 12px 20px; max-width: 1100px; }}
.rec {{ background: #fff; border: 1px solid #dfe3ea; border-radius: 6px; margin: 0 0 10px; padding: 8px 12px; }}
.rec[hidden] {{ display: none; }}
.head {{ font-size: 12px; color: #667085; margin-bottom: 2px; }}
.rank {{ font-weight: 600; color: #1d2330; }}
.text {{ white-space: pre-wrap; word-wrap: break-word; line-height: 2.1; }}
.ent {{ background: color-mix(in srgb, var(--c) 45%, white); border-bottom: 2px solid var(--c); border-radius: 3px;
  padding: 1px 2px; color: inherit; }}
.ent::after {{ content: attr(data-label); font-size: 10px; font-weight: 600; margin-left: 3px; padding: 0 3px;
  border-radius: 2px; background: var(--c); color: #1d2330; vertical-align: 1px; }}
.ent:hover::after {{ content: attr(data-tip); }}
.legend::after {{ content: none; }}
.k-spurious {{ outline: 2px solid #d62828; }}
.k-wrong_type {{ outline: 2px dashed #d62828; }}
.k-boundary {{ outline: 2px dotted #e76f51; }}
.k-missed {{ background: repeating-linear-gradient(45deg, #fff, #fff 4px, #fde2e2 4px, #fde2e2 8px);
  outline: 2px dashed #7d8597; }}
.k-missed::after {{ content: "missed " attr(data-label); background: #7d8597; color: #fff; }}
.key span {{ margin-right: 10px; font-size: 12px; padding: 0 4px; --c: #e4e7ec; }}
.key span::after {{ content: none; }}
</style></head>
<body>
<header>
<h1>{title}</h1>
<p class="notes">{notes}</p>
<div class="controls">
<label>label <select id="label"><option value="">all</option>{label_options}</select></label>
{kind_filter}
<span>showing <b id="count">{total}</b> of {total}</span>
<span>{legend}</span>
</div>
{key}
</header>
<main id="records">
{records}
</main>
<script>
(function () {{
  var records = document.querySelectorAll("section.rec");
  var label = document.getElementById("label"), kind = document.getElementById("kind");
  function has(list, value) {{ return !value || (" " + list + " ").indexOf(" " + value + " ") >= 0; }}
  function apply() {{
    var shown = 0;
    for (var i = 0; i < records.length; i++) {{
      var r = records[i];
      var ok = has(r.dataset.labels, label.value) && has(r.dataset.kinds, kind ? kind.value : "");
      r.hidden = !ok;
      if (ok) shown++;
    }}
    document.getElementById("count").textContent = shown;
  }}
  function remember() {{
    var parts = [];
    if (label.value) parts.push("label=" + encodeURIComponent(label.value));
    if (kind && kind.value) parts.push("kind=" + encodeURIComponent(kind.value));
    history.replaceState(null, "", parts.length ? "#" + parts.join("&") : location.pathname);
    apply();
  }}
  location.hash.replace(/^#/, "").split("&").forEach(function (part) {{
    var pair = part.split("="), value = decodeURIComponent(pair[1] || "");
    if (pair[0] === "label") label.value = value;
    if (pair[0] === "kind" && kind) kind.value = value;
  }});
  label.addEventListener("change", remember);
  if (kind) kind.addEventListener("change", remember);
  apply();
}})();
</script>
</body></html>
"""


def review(config: ReviewConfig) -> Path:
    """Write the review page of `config.data` into `config.output_dir`; returns the page's path."""
    out = Path(config.output_dir)
    check_outputs(
        "review",
        folders={"--output_dir": out},
        inputs=[config.data],
        writes={"--output_dir": [PAGE]},
        replace_own=True,
        overwrite=config.overwrite,
    )
    records = list(iter_jsonl(config.data))
    if not records:
        raise DataError(str(config.data), "no records", "empty")
    page = render_page(records, config.gold, Path(config.data).name)
    claim_folder(out, "review")
    write_text_atomic(out / PAGE, page)
    return out / PAGE


def main(argv: list[str] | None = None) -> int:
    config = parse_config(ReviewConfig, argv, prog="instruct-ner review", description=__doc__)
    page = review(config)
    print(f"review page written to {page} (open it in a browser)", file=sys.stderr)
    return 0
