"""Placement on a GPU, checked without one: a model loaded on CUDA goes to cuda:0 at every precision, and a
tagger's head follows its backbone wherever that lives (the `meta` device stands in for cuda:0 here).

The first bug was seen on an H100: `train-tagger` stopped at its first batch (head and batches on the CPU, an 8-bit
backbone on cuda:0). The second was found in the code beside it: `tag` / `generate` at bf16 loaded no device map, so
nothing moved the model off the CPU. Both fixes were then run on the H100 (BENCHMARKS.md, "On a GPU")."""

import pytest
import torch
from transformers import LlamaConfig, LlamaModel

from instruct_ner.sft import models
from instruct_ner.sft.tagger import TokenTagger


@pytest.mark.parametrize("head", ["linear", "crf", "bilstm-crf"])
def test_tagger_head_and_batches_follow_a_backbone_off_the_cpu(head):
    config = LlamaConfig(
        vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2
    )
    with torch.device("meta"):
        backbone = LlamaModel(config)
    tagger = TokenTagger(backbone, ["PER", "LOC"], head=head, loss="ce", class_weights=torch.ones(5))
    assert tagger.device == torch.device("meta")  # where train_loop / predict / compute_features send batches
    head_tensors = [*tagger.head_modules().parameters(), *tagger.head_modules().buffers(), tagger.class_weights]
    assert {t.device.type for t in head_tensors} == {"meta"}


class Recorder:
    """A stand-in model class: records what `from_pretrained` was asked for."""

    asked: dict = {}

    @classmethod
    def from_pretrained(cls, model, **kwargs):
        cls.asked = kwargs
        return cls()


@pytest.mark.parametrize(
    ("cuda", "precision", "device_map"),
    [
        (True, "bf16", {"": 0}),
        (True, "fp32", {"": 0}),
        (True, "8bit", {"": 0}),
        (False, "fp32", None),  # the CPU: no device_map, as before
        (False, "8bit", {"": "cpu"}),  # bitsandbytes' CPU backend needs the map
    ],
)
def test_a_model_loaded_where_cuda_exists_goes_to_the_gpu_at_every_precision(monkeypatch, cuda, precision, device_map):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    models.load_causal_lm("some/model", precision, model_class=Recorder)
    assert Recorder.asked.get("device_map") == device_map
    assert Recorder.asked["dtype"] == (torch.float32 if precision == "fp32" else torch.bfloat16)
