"""Issue 43, items 8 and 15: a trained folder's description and weights are input like any other: a tampered or
foreign one is a one-line error (exit 2 on the CLI), never a KeyError or an UnpicklingError traceback."""

from __future__ import annotations

import json

import pytest

from instruct_ner.sft.artifact import Artifact
from instruct_ner.sft.models import ModelError

TAGGER = {"attention": "bidirectional", "head": "crf", "loss": "compound", "loss_weights": [0.5, 0.3, 0.2]}


def folder_with(tmp_path, description):
    (tmp_path / "instruct_ner.json").write_text(json.dumps(description), encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(
    ("description", "message"),
    [
        ({"kind": "tagger", "labels": ["PER"]}, "a tagger needs tagger.attention"),  # an adapter relabelled tagger
        ({"kind": "tagger", "labels": "PER", "tagger": TAGGER}, "labels must be a list of names"),
        ({"kind": "tagger", "labels": ["PER", "per"], "tagger": TAGGER}, "differ only by case"),
        ({"kind": "generative", "labels": ["PER", None]}, "invalid entity type None"),
        ({"kind": "tagger", "labels": ["PER"], "tagger": {**TAGGER, "head": "mlp"}}, "tagger.head in"),
        ({"kind": "tagger", "labels": ["PER"], "tagger": {**TAGGER, "loss_weights": "x"}}, "three numbers"),
        ({"kind": "generative", "labels": ["PER"], "precision": 5}, "precision must be a string"),
    ],
)
def test_a_tampered_description_is_one_line(tmp_path, description, message):
    with pytest.raises(ModelError, match=message) as error:
        Artifact.load(folder_with(tmp_path, description))
    assert "\n" not in str(error.value)


def test_a_tampered_head_pickle_is_refused_without_running_it(tmp_path, monkeypatch):
    import pickle

    from instruct_ner.sft.tagger import load_tensors

    ran = []

    class Exploit:
        def __reduce__(self):
            return (ran.append, ("code ran",))

    path = tmp_path / "head.pt"
    path.write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(ModelError, match="refused: not a file of tensors"):
        load_tensors(path)
    assert ran == []


def test_tag_with_a_relabelled_adapter_folder_is_one_line(tmp_path, capsys):
    from instruct_ner.cli import main

    data = tmp_path / "d.txt"
    data.write_text("Rome B-LOC\n", encoding="utf-8")
    (tmp_path / "adapter").mkdir()
    folder = folder_with(tmp_path / "adapter", {"kind": "tagger", "labels": ["LOC"]})
    code = main(["tag", "--adapter", str(folder), "--data", str(data), "--out", str(tmp_path / "t.jsonl")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "a tagger needs tagger.attention" in err
