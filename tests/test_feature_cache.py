"""The frozen-backbone feature cache: cached training equals uncached training; new data, new cache."""

import torch

from conftest import CONLL_SAMPLE
from instruct_ner.sft.features import feature_cache_key
from instruct_ner.sft.train_tagger import TaggerConfig, train_tagger


def config_for(tiny_llama, data, tmp_path, name, **overrides):
    values = dict(
        model=str(tiny_llama),
        data=str(data),
        output_dir=str(tmp_path / name),
        precision="fp32",
        max_steps=6,
        per_device_train_batch_size=2,
        logging_steps=100,
        save_steps=100,
        lstm_hidden=16,
        freeze_backbone=True,
        head="crf",
        learning_rate=5e-3,
    )
    values.update(overrides)
    return TaggerConfig(**values)


def run(config, feature_cache):
    return train_tagger(config, feature_cache=feature_cache)[0]


def test_cached_and_uncached_training_give_the_same_losses(tiny_llama, conll_file, tmp_path, monkeypatch):
    monkeypatch.setenv("INSTRUCT_NER_CACHE", str(tmp_path / "cache"))
    for head in ("crf", "bilstm-crf"):
        uncached = run(config_for(tiny_llama, conll_file, tmp_path, f"u-{head}", head=head), feature_cache=False)
        cached = run(config_for(tiny_llama, conll_file, tmp_path, f"c-{head}", head=head), feature_cache=True)
        again = run(config_for(tiny_llama, conll_file, tmp_path, f"a-{head}", head=head), feature_cache=True)
        assert len(uncached["losses"]) == 6
        torch.testing.assert_close(
            torch.tensor(cached["losses"]), torch.tensor(uncached["losses"]), rtol=1e-4, atol=1e-5
        )
        torch.testing.assert_close(
            torch.tensor(again["losses"]), torch.tensor(uncached["losses"]), rtol=1e-4, atol=1e-5
        )
    assert len(list((tmp_path / "cache" / "tagger-features").glob("*.safetensors"))) == 1  # one data set, one model


def test_changing_the_data_or_max_length_invalidates_the_cache(tiny_llama, tmp_path, monkeypatch):
    monkeypatch.setenv("INSTRUCT_NER_CACHE", str(tmp_path / "cache"))
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text(CONLL_SAMPLE, encoding="utf-8")
    second.write_text(CONLL_SAMPLE.replace("Rome B-LOC", "Milan B-LOC", 1), encoding="utf-8")
    run(config_for(tiny_llama, first, tmp_path, "first"), feature_cache=True)
    run(config_for(tiny_llama, second, tmp_path, "second"), feature_cache=True)
    run(config_for(tiny_llama, first, tmp_path, "first-again"), feature_cache=True)
    folder = tmp_path / "cache" / "tagger-features"
    assert len(list(folder.glob("*.safetensors"))) == 2
    run(config_for(tiny_llama, first, tmp_path, "attention", attention="causal"), feature_cache=True)
    assert len(list(folder.glob("*.safetensors"))) == 3


def test_the_key_follows_the_model_layer_inputs():
    class Config:
        name_or_path = ""
        is_causal = False

        def to_json_string(self, use_diff=False):
            return '{"hidden_size": 8}'

    class Backbone(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.config, self.weight = Config(), torch.nn.Parameter(torch.zeros(1))

    class Model:
        backbone = Backbone()

    from instruct_ner.sft.tagger import Encoded

    data = [Encoded(0, 0, [1, 5, 6], [1, 2], [0, 0])]
    key = feature_cache_key(Model(), data, 512)
    assert key == feature_cache_key(Model(), [Encoded(0, 0, [1, 5, 6], [1, 2], [1, 2])], 512)  # labels: same
    assert key != feature_cache_key(Model(), [Encoded(0, 0, [1, 5, 7], [1, 2], [0, 0])], 512)
    assert key != feature_cache_key(Model(), data, 256)
    Model.backbone.weight.data = Model.backbone.weight.data.double()
    assert key != feature_cache_key(Model(), data, 512)  # precision
