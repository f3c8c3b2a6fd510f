"""The hand-written Italian e-mail set (data/emails_it_real): every e-mail reads with its entities where the JSON
says, the counts per label are the README's hand count and above a floor, no e-mail near-duplicates another, the
CSV is what the script writes from the hand-written sources, and gold responses parse back to F1 1.0 in every
format."""

import csv
import itertools
import json
import re
from collections import Counter

import pytest

from conftest import DATA
from instruct_ner.data import make_emails_real
from instruct_ner.inference.grounding import parse_response
from instruct_ner.inference.score import score_tags
from instruct_ner.prompts.formats import FORMATS
from instruct_ner.prompts.readers import ReaderOptions, load_examples
from instruct_ner.prompts.tokenize import tokenize_with_offsets

FOLDER = DATA / "emails_it_real"
LABELS = ["CODE", "DATE", "EMAIL", "LOC", "MONEY", "ORG", "PER", "PHONE"]
FLOOR = {"PER": 150, "ORG": 100, "LOC": 80, "DATE": 100, "MONEY": 60, "EMAIL": 40, "PHONE": 60, "CODE": 100}


def rows():
    with open(FOLDER / "emails.csv", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def examples():
    found, report = load_examples(FOLDER / "emails.csv", ReaderOptions(format="csv", id_column="id"))
    assert report.n_skipped == 0 and not report.notes
    return found


def readme_counts():
    """The README's table of entities per label: `| PER | 225 |` lines."""
    text = (FOLDER / "README.md").read_text(encoding="utf-8")
    return {m[1]: int(m[2]) for m in re.finditer(r"^\| (\w+) \| (\d+) \|$", text, re.MULTILINE) if m[1] in LABELS}


def test_every_email_reads_with_each_listed_entity_at_its_offsets():
    table, found = rows(), examples()
    assert len(found) == len(table) >= 150
    assert [row["id"] for row in table] == [f"real-{k:03d}" for k in range(1, len(table) + 1)]
    for example, row in zip(found, table):
        listed = json.loads(row["entities"])
        assert [(d["entity_group"], row["text"][d["start"] : d["end"]]) for d in listed] == [
            (d["entity_group"], d["word"]) for d in listed
        ]
        assert [(e.label, e.text) for e in example.entities] == [(d["entity_group"], d["word"]) for d in listed]


def test_counts_per_label_are_the_readme_hand_count_and_above_the_floor():
    counts = Counter(e.label for example in examples() for e in example.entities)
    assert dict(counts) == readme_counts()
    assert all(counts[label] >= floor for label, floor in FLOOR.items()), counts


def test_no_email_is_a_near_duplicate_of_another():
    sets = [{token.lower() for token, _, _ in tokenize_with_offsets(row["text"])} for row in rows()]
    worst = max(len(a & b) / len(a | b) for a, b in itertools.combinations(sets, 2))
    assert worst <= 0.8


@pytest.mark.parametrize("fmt_name", list(FORMATS))
def test_gold_responses_parse_back_to_f1_one(fmt_name):
    found = examples()
    pred = [parse_response(FORMATS[fmt_name].render(e), e, LABELS, fmt_name).pred_tags for e in found]
    assert score_tags([e.tags for e in found], pred)["micro"]["f1"] == 1.0


def test_the_script_rewrites_the_same_file_and_folds_spread_evenly(tmp_path, monkeypatch):
    monkeypatch.setattr(make_emails_real, "OUT", tmp_path / "emails.csv")
    make_emails_real.main()
    assert (tmp_path / "emails.csv").read_bytes() == (FOLDER / "emails.csv").read_bytes()
    sizes = Counter(make_emails_real.fold_of(row["id"]) for row in rows())
    assert sorted(sizes) == [0, 1, 2, 3] and max(sizes.values()) - min(sizes.values()) <= 1
