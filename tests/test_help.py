"""`--help` a user can read: options under headings by the options dataclass they come from, each option shown
once, no default said twice; and every spelling of every option still parses to the same config."""

import dataclasses
import re

import pytest

from instruct_ner.config import build_parser, parse_config
from instruct_ner.inference.generate import GenerateConfig
from instruct_ner.prompts.prepare import PrepareConfig
from instruct_ner.prompts.readers import ReaderOptions
from instruct_ner.prompts.templates import PromptOptions
from instruct_ner.sft.options import DevF1Options, LoopOptions, LoraOptions, ModelOptions
from instruct_ner.sft.train import TrainConfig
from instruct_ner.sft.train_tagger import TaggerConfig

CONFIGS = [TrainConfig, TaggerConfig, GenerateConfig, PrepareConfig]
FLAG = re.compile(r"^  (--[a-z][\w-]*)")


def sections(text: str) -> dict[str, list[str]]:
    """{heading: the flags listed under it} of a help text (a heading is an unindented line ending in ':')."""
    found, current = {}, None
    for line in text.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            current = found.setdefault(line[:-1], [])
        elif current is not None and (match := FLAG.match(line)):
            current.append(match.group(1))
    return found


def names(options_class) -> list[str]:
    return [f"--{spec.name}" for spec in dataclasses.fields(options_class)]


@pytest.fixture(autouse=True)
def eighty_columns(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")


def test_train_help_lists_each_options_class_under_its_own_heading():
    listed = sections(build_parser(TrainConfig, "instruct-ner train").format_help())
    csv = ["--text_column", "--entities_column", "--id_column", "--word_column", "--tag_column", "--csv_layout"]
    csv += ["--delimiter", "--split_sentences"]
    assert listed["CSV input (only for .csv data)"] == csv
    assert listed["data"] == [name for name in names(ReaderOptions) if name not in csv]
    assert listed["prompt"] == names(PromptOptions)
    assert listed["model"] == names(ModelOptions)
    assert listed["training loop"] == names(LoopOptions)
    assert listed["LoRA"] == names(LoraOptions)
    assert listed["dev-F1 selection"] == names(DevF1Options)
    inherited = {name for heading, flags in listed.items() if heading != "options" for name in flags}
    own = [name for name in names(TrainConfig) if name not in inherited]
    assert listed["options"] == ["--config", *own] and "--data" in own and "--lora_r" not in own


@pytest.mark.parametrize("config_class", CONFIGS, ids=lambda c: c.__name__)
def test_every_option_is_listed_once_and_says_its_default_at_most_once(config_class):
    text = build_parser(config_class, "instruct-ner x").format_help()
    listed = [flag for flags in sections(text).values() for flag in flags]
    assert sorted(listed) == sorted(["--config", *names(config_class)])
    dashed = {name.replace("_", "-") for name in names(config_class) if "_" in name[2:]}
    assert dashed and not {word.rstrip(",") for word in text.split()} & dashed  # accepted, not listed again
    entries = re.split(r"\n  (?=--)", text)
    assert all(entry.lower().count("default") <= 1 for entry in entries), [
        e for e in entries if e.lower().count("default") > 1
    ]


def test_usage_is_one_line():
    usage = build_parser(TrainConfig, "instruct-ner train").format_usage()
    assert usage == "usage: instruct-ner train [-h] [--config RECIPE] [--OPTION VALUE ...]\n"


@pytest.mark.parametrize("config_class", CONFIGS, ids=lambda c: c.__name__)
def test_both_spellings_of_every_option_are_still_accepted(config_class):
    parser = build_parser(config_class, "instruct-ner x")
    for spec in dataclasses.fields(config_class):
        for flag in {f"--{spec.name}", f"--{spec.name.replace('_', '-')}"}:
            assert parser._option_string_actions[flag].dest == spec.name


def test_the_parsed_config_does_not_depend_on_the_spelling_or_the_heading():
    underscores = ["--data", "a.txt", "--max_steps", "3", "--lora_r", "4", "--text_column", "body"]
    underscores += ["--repair_tags", "false", "--packing", "--lora_target_modules", "q_proj", "v_proj"]
    dashes = [word.replace("_", "-") if word.startswith("--") else word for word in underscores]
    given = parse_config(TrainConfig, underscores)
    assert given == parse_config(TrainConfig, dashes)
    assert (given.max_steps, given.lora_r, given.text_column, given.repair_tags, given.packing) == (
        3, 4, "body", False, True
    )  # fmt: skip
    assert given.lora_target_modules == ["q_proj", "v_proj"] and given.learning_rate == LoopOptions().learning_rate
