"""Issue 43, item 14: every recipe key is type-checked; a bad recipe is one line naming the recipe, the key and the
expected type (never a traceback, never a silently converted value)."""

from __future__ import annotations

import pytest

from instruct_ner.cli import main


@pytest.mark.parametrize(
    ("recipe", "message"),
    [
        ("limit: [1, 2]\n", "field 'limit': expected an integer, got [1, 2]"),
        ("template: {a: 1}\n", "field 'template': expected a string, got {'a': 1}"),
        ("data: 5\n", "field 'data': expected a string, got 5"),
        ("split_sentences: maybe\n", "field 'split_sentences': expected true or false, got 'maybe'"),
        ("few_shot: [3]\n", "field 'few_shot': expected an integer, got [3]"),
        ("limit: .inf\n", "field 'limit': expected an integer, got inf"),
        ("limit: 2.5\n", "field 'limit': expected an integer, got 2.5"),
        ("labels: [[PER]]\n", "field 'labels': expected a list of strings"),
        ("limit: !!python/object:os.system {}\n", ":1: not a YAML mapping of field: value"),
        ("limit: [1\n", "not a YAML mapping of field: value"),
        ("1: a\nb: 2\n", "unknown field(s) ['1', 'b']"),
        ("- limit\n", "expected a flat mapping of field: value"),
    ],
)
def test_a_bad_recipe_is_one_line_naming_recipe_key_and_type(tmp_path, capsys, recipe, message):
    path = tmp_path / "recipe.yaml"
    path.write_text(recipe, encoding="utf-8")
    code = main(["prepare", "--config", str(path), "--out", str(tmp_path / "p.jsonl")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"config file {path}" in err and message in err
    assert not (tmp_path / "p.jsonl").exists()


def test_good_values_are_converted_as_before(tmp_path):
    from instruct_ner.config import parse_config
    from instruct_ner.prompts.prepare import PrepareConfig

    path = tmp_path / "recipe.yaml"
    path.write_text("limit: '7'\nsplit_sentences: yes\nlabels: PER,LOC\nfew_shot: 2.0\n", encoding="utf-8")
    config = parse_config(PrepareConfig, ["--config", str(path), "--data", "x.txt", "--out", "p.jsonl"])
    assert (config.limit, config.split_sentences, config.labels, config.few_shot) == (7, True, ["PER", "LOC"], 2)
