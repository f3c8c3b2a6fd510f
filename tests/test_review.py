"""The review page: every entity highlighted with its own text and label, missed gold spans marked, least confident
first, hostile text escaped, nothing loaded from elsewhere; and the same read back from a real headless browser's DOM
(Chromium), with the filters applied from the page address."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from instruct_ner.cli import main
from instruct_ner.examples import tags_to_spans
from instruct_ner.prompts.readers import load_examples

ROOT = Path(__file__).resolve().parents[1]
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")
HOSTILE = "<script>alert('x')</script> & \"Rossi\" <b>"


def records() -> list[dict]:
    """Shipped e-mails and news with made-up scored predictions (some dropped, some relabelled), a hostile text and
    a record without scores."""
    rng, out = random.Random(3), []
    for path in ("data/emails_it/test.csv", "data/conll_en/test.txt"):
        for example in load_examples(ROOT / path)[0][:12]:
            record = example.to_record() | {"offsets": [list(o) for o in example.offsets], "entities": []}
            record["id"] = f"{Path(path).parent.name}/{example.id}"  # the two samples share ids
            for entity in example.entities:
                luck = rng.random()
                if luck > 0.15:
                    label = entity.label if luck > 0.3 else "OTHER"
                    record["entities"].append(entity.to_dict() | {"label": label, "score": round(rng.random(), 4)})
            out.append(record)
    tokens = ["<script>alert('x')</script>", "&", '"Rossi"', "<b>"]
    hostile = {"id": "x<&\"'>", "text": HOSTILE, "tokens": tokens, "offsets": [[0, 27], [28, 29], [30, 37], [38, 41]]}
    hostile["tags"] = ["O", "O", "B-PER", "O"]
    hostile["entities"] = [
        {"text": tokens[0], "label": "MISC", "token_start": 0, "token_end": 1, "start": 0, "end": 27, "score": 0.001}
    ]
    out.insert(5, hostile)
    out.append({"id": "plain", "tokens": ["EU", "says"], "tags": ["B-ORG", "O"], "pred_tags": ["B-ORG", "O"]})
    return out


def expected(record: dict) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(text, label) of the predicted entities and of the gold spans that no prediction overlaps, in text order."""
    if "entities" in record:
        predicted = [(e["start"], e["end"], e["label"]) for e in record["entities"]]
        text, offsets = record["text"], record["offsets"]
    else:
        text = " ".join(record["tokens"])
        offsets, at = [], 0
        for token in record["tokens"]:
            offsets.append((at, at + len(token)))
            at += len(token) + 1
        predicted = [(offsets[s][0], offsets[e - 1][1], label) for label, s, e in tags_to_spans(record["pred_tags"])]
    gold = [(offsets[s][0], offsets[e - 1][1], label) for label, s, e in tags_to_spans(record["tags"])]
    missed = [g for g in gold if not any(p[0] < g[1] and g[0] < p[1] for p in predicted)]
    return [(text[s:e], label) for s, e, label in sorted(predicted)], [(text[s:e], label) for s, e, label in missed]


class Page(HTMLParser):
    """Sections (records) with their marks (text, label, kind, score) and hidden flag; scripts and links seen."""

    def __init__(self):
        super().__init__()
        self.sections, self.mark, self.tags = [], None, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "section":
            self.sections.append({"id": attrs["data-id"], "hidden": "hidden" in attrs, "marks": []})
        elif tag == "mark":
            self.mark = [attrs["data-label"], attrs["data-kind"], attrs["data-score"], ""]

    def handle_data(self, data):
        if self.mark is not None:
            self.mark[3] += data

    def handle_endtag(self, tag):
        if tag == "mark":
            label, kind, score, text = self.mark
            self.sections[-1]["marks"].append((text, label, kind, score))
            self.mark = None


def parse(html_text: str) -> Page:
    page = Page()
    page.feed(html_text)
    return page


def write_page(tmp_path: Path) -> tuple[list[dict], Path]:
    data = tmp_path / "predictions.jsonl"
    items = records()
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in items), encoding="utf-8")
    assert main(["review", "--data", str(data), "--gold", "--output_dir", str(tmp_path / "review")]) == 0
    return items, tmp_path / "review" / "review.html"


def check_sections(page: Page, items: list[dict]) -> None:
    by_id = {str(r["id"]): r for r in items}
    assert sorted(s["id"] for s in page.sections) == sorted(by_id)
    for section in page.sections:
        predicted, missed = expected(by_id[section["id"]])
        marks = section["marks"]
        assert [(t, label) for t, label, kind, _ in marks if kind != "missed"] == predicted, section["id"]
        assert [(t, label) for t, label, kind, _ in marks if kind == "missed"] == missed, section["id"]
    confidences = [min((e["score"] for e in by_id[s["id"]].get("entities", [])), default=None) for s in page.sections]
    scored = [c for c in confidences if c is not None]
    assert scored == sorted(scored) and confidences[len(scored) :] == [None] * (len(confidences) - len(scored))
    assert page.sections[0]["id"] == "x<&\"'>" and page.sections[-1]["id"] == "plain"


def test_the_page_read_back_in_python(tmp_path):
    items, path = write_page(tmp_path)
    text = path.read_text(encoding="utf-8")
    page = parse(text)
    check_sections(page, items)
    assert text.count("<script") == 1 and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text
    assert not [(tag, a) for tag, a in page.tags if tag in ("link", "img", "iframe") or "src" in a or "href" in a]
    assert "http" not in text and "@import" not in text and "url(" not in text
    kinds = {kind for s in page.sections for _, _, kind, _ in s["marks"]}
    assert {"correct", "wrong_type", "spurious", "missed"} <= kinds
    assert "1 without any scored entity shown after them, in input order" in text


def browser() -> str | None:
    return next((found for name in BROWSERS if (found := shutil.which(name))), None)


@pytest.mark.skipif(browser() is None, reason="no Chromium binary found (apt-get install chromium)")
def test_the_page_in_headless_chromium(tmp_path):
    items, path = write_page(tmp_path)
    flags = [
        browser(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path}/profile",
    ]
    url = path.resolve().as_uri()
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True).stdout
    page = parse(dom)
    check_sections(page, items)
    assert not any(s["hidden"] for s in page.sections)
    shot = tmp_path / "review.png"
    subprocess.run([*flags, "--window-size=1200,1400", f"--screenshot={shot}", url], capture_output=True, timeout=120)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    filtered = parse(
        subprocess.run([*flags, "--dump-dom", url + "#label=PER&kind=missed"], capture_output=True, text=True,
                       timeout=120, check=True).stdout
    )  # fmt: skip
    shown = {s["id"] for s in filtered.sections if not s["hidden"]}
    wanted = {
        s["id"]
        for s in page.sections
        if any(label == "PER" for _, label, _, _ in s["marks"]) and any(k == "missed" for _, _, k, _ in s["marks"])
    }
    assert shown == wanted and 0 < len(shown) < len(page.sections)
