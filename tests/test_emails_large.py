"""The large Italian e-mail set (data/emails_it_large): readable, labelled where the JSON says, held out,
reproducible from its seeded script, and its gold responses parse back to F1 1.0 in every format."""

import csv
import json

import pytest

from conftest import DATA
from instruct_ner.data import make_emails_large
from instruct_ner.examples import labels_of
from instruct_ner.inference.grounding import parse_response
from instruct_ner.inference.score import score_tags
from instruct_ner.prompts.formats import FORMATS
from instruct_ner.prompts.readers import ReaderOptions, load_examples

FOLDER = DATA / "emails_it_large"
LABELS = ["CODE", "DATE", "EMAIL", "LOC", "MONEY", "ORG", "PER", "PHONE"]


def rows(split):
    with open(FOLDER / f"{split}.csv", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("split", ["train", "dev", "test"])
def test_every_email_reads_with_each_listed_entity_at_its_offsets(split):
    examples, report = load_examples(FOLDER / f"{split}.csv", ReaderOptions(format="csv", id_column="id"))
    table = rows(split)
    assert report.n_skipped == 0 and len(examples) == len(table) == make_emails_large.SIZES[split]
    assert not report.notes  # no entity had to be snapped to token bounds
    for example, row in zip(examples, table):
        listed = json.loads(row["entities"])
        assert [(d["entity_group"], row["text"][d["start"] : d["end"]]) for d in listed] == [
            (d["entity_group"], d["word"]) for d in listed
        ]
        assert [(e.label, e.text) for e in example.entities] == [(d["entity_group"], d["word"]) for d in listed]
        assert 50 <= len(row["text"].split()) <= 200 and "\n\n" in row["text"]
    assert labels_of(e.tags for e in examples) == LABELS


@pytest.mark.parametrize("fmt_name", list(FORMATS))
def test_gold_responses_parse_back_to_f1_one(fmt_name):
    examples, _ = load_examples(FOLDER / "test.csv", ReaderOptions(format="csv", id_column="id"))
    pred = [parse_response(FORMATS[fmt_name].render(e), e, LABELS, fmt_name).pred_tags for e in examples]
    assert score_tags([e.tags for e in examples], pred)["micro"]["f1"] == 1.0


def test_test_split_is_held_out_and_the_script_rewrites_the_same_files(tmp_path, monkeypatch):
    train_texts = {row["text"] for row in rows("train")}
    assert not train_texts & {row["text"] for row in rows("test")}
    assert not train_texts & {row["text"] for row in rows("dev")}
    monkeypatch.setattr(make_emails_large, "OUT", tmp_path)
    make_emails_large.main()
    for split in ("train", "dev", "test"):
        assert (tmp_path / f"{split}.csv").read_bytes() == (FOLDER / f"{split}.csv").read_bytes()
