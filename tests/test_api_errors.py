"""Issue 43, items 8, 9, 15, 16 (API side): a caller's mistake is one clear exception, never a deep traceback or a
silently wrong result."""

from __future__ import annotations

import pytest

from instruct_ner import NER
from instruct_ner.errors import DataError


@pytest.fixture(scope="module")
def ner(tiny_llama):
    return NER.zero_shot(labels=["PER", "LOC"], model=str(tiny_llama), precision="fp32")


def test_predict_refuses_a_bare_string(ner):
    with pytest.raises(TypeError, match="for one text use predict_entities"):
        ner.predict("Peter visits Rome")  # was one list per character


@pytest.mark.parametrize("batch_size", [-1, 0, 2.5, True])
def test_predict_refuses_a_bad_batch_size(ner, batch_size):
    with pytest.raises(ValueError, match="batch_size must be a whole number of at least 1"):
        ner.predict(["Peter visits Rome"], batch_size=batch_size)


@pytest.mark.parametrize("labels", ["PER", ["PER", None], ["PER", "per"], ["O"], ["A B"]])
def test_zero_shot_checks_its_labels(tiny_llama, labels):
    with pytest.raises(DataError, match="zero_shot"):
        NER.zero_shot(labels=labels, model=str(tiny_llama), precision="fp32")


def test_a_hub_dataset_that_cannot_be_reached_is_one_line(monkeypatch, tmp_path):
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    # the libraries read those variables once, at import: set what they read (no network attempt, no time-out)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    monkeypatch.chdir(tmp_path)
    from instruct_ner.prompts.readers import ReaderOptions, load_examples

    with pytest.raises(DataError, match="the hub could not provide it") as error:
        load_examples("no-such-org/no-such-dataset-xyz", ReaderOptions(format="hf"))
    assert "\n" not in str(error.value)
