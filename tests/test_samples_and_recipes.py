"""The samples we ship and the recipes: they load, the test parts are held out, every recipe parses."""

import json
from pathlib import Path

import pytest
from instruct_ner.prompts.readers import ReaderOptions, load_examples
from instruct_ner.sft.train import TrainConfig
from instruct_ner.sft.train_tagger import TaggerConfig

from conftest import DATA, ROOT
from instruct_ner.cli import main
from instruct_ner.config import load_recipe, make_config

RECIPES = sorted(
    p for p in (ROOT / "sft" / "recipes").glob("*.yaml") if not p.name.startswith(("accelerate", "tagger"))
)
TAGGER_RECIPES = sorted((ROOT / "sft" / "recipes").glob("tagger-*.yaml"))


@pytest.mark.parametrize("sample", ["conll_en", "emails_it"])
def test_shipped_samples_load_and_the_test_part_is_held_out(sample):
    suffix = ".txt" if sample == "conll_en" else ".csv"
    options = ReaderOptions(id_column="id" if suffix == ".csv" else None)
    train, train_report = load_examples(DATA / sample / f"train{suffix}", options)
    test, test_report = load_examples(DATA / sample / f"test{suffix}", options)
    assert train_report.n_skipped == test_report.n_skipped == 0 and len(train) > len(test) >= 20
    assert not {e.text for e in train} & {e.text for e in test}


def test_email_sample_has_every_business_label():
    examples, _ = load_examples(DATA / "emails_it" / "train.csv", ReaderOptions(id_column="id"))
    labels = {e.label for example in examples for e in example.entities}
    assert labels == {"PER", "ORG", "LOC", "DATE", "MONEY", "EMAIL", "PHONE", "CODE"}


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_every_recipe_parses_into_a_train_config(recipe):
    config = make_config(TrainConfig, load_recipe(str(recipe), TrainConfig))
    assert config.output_dir.startswith("runs/")


@pytest.mark.parametrize("recipe", TAGGER_RECIPES, ids=lambda p: p.name)
def test_every_tagger_recipe_parses(recipe):
    config = make_config(TaggerConfig, load_recipe(str(recipe), TaggerConfig))
    assert config.head == "crf" and config.attention == "bidirectional"


def test_generate_through_the_cli_on_a_tiny_model(tiny_llama, tmp_path, capsys):
    out = tmp_path / "p.jsonl"
    code = main(
        [
            "generate",
            "--model",
            str(tiny_llama),
            "--data",
            str(DATA / "conll_en" / "test.txt"),
            "--limit",
            "6",
            "--batch_size",
            "4",
            "--max_new_tokens",
            "8",
            "--precision",
            "fp32",
            "--out",
            str(out),
            "--progress",
            "false",
        ]
    )
    assert code == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 6 and all(len(r["pred_tags"]) == len(r["tokens"]) for r in records)
    assert all(r["timing"]["new_tokens"] <= 8 for r in records)
    assert main(["score", str(out)]) == 0
    assert "micro F1" in capsys.readouterr().out


def test_missing_model_through_the_cli_is_one_line(tmp_path, capsys):
    code = main(
        [
            "generate",
            "--model",
            str(Path(tmp_path) / "missing"),
            "--data",
            str(DATA / "conll_en" / "test.txt"),
            "--out",
            str(tmp_path / "o.jsonl"),
        ]
    )
    assert code == 2 and "model folder not found" in capsys.readouterr().err
