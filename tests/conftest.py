import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
DATA = ROOT / "data"


def shared_files() -> list[Path]:
    return sorted(p for p in SHARED_DATA.glob("*/*") if p.suffix in (".txt", ".tsv"))


needs_shared_data = pytest.mark.skipif(not SHARED_DATA.exists(), reason="../shared/data is not beside the checkout")


CONLL_SAMPLE = """EU B-ORG
rejects O
German B-MISC
call O

Peter B-PER
Blair I-PER
visits O
Rome B-LOC

Nothing O
happened O
. O

Rome B-LOC
and O
Paris B-LOC
"""


@pytest.fixture
def conll_file(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text(CONLL_SAMPLE, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tokenizer_dir():
    from instruct_ner.sft.models import embedded_tokenizer_dir

    return embedded_tokenizer_dir()


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory, tokenizer_dir):
    """A 2-layer Llama with random weights and the real SmolLM2 tokenizer, saved as a model folder."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    path = tmp_path_factory.mktemp("tiny-llama")
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # the frozen LM head must be large enough for LoRA to sharpen the logits
        model.lm_head.weight.mul_(25)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


# Tiny trained folders, trained once per session and shared by every test that predicts with one: read-only. A test
# that changes a folder (calibrate writes into it, an adapter "retrained" in place) works on a copy.


@pytest.fixture(scope="session")
def train_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "train.txt"
    path.write_text(CONLL_SAMPLE, encoding="utf-8")
    return path


def whole_texts(folder: Path) -> Path:
    """The folder as one trained before `longest_text_tokens` and `sentences_per_text` were recorded: no default
    window cap. CONLL_SAMPLE's sentences are a few words long, so the caps (twice the longest, one sentence) would
    cut the longer texts these folders are asked about; the tests that use them are about other things, and the
    caps have their own (tests/test_windows.py)."""
    path = folder / "instruct_ner.json"
    description = json.loads(path.read_text(encoding="utf-8"))
    description.pop("longest_text_tokens", None)
    description.pop("sentences_per_text", None)
    path.write_text(json.dumps(description, indent=2), encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def adapter(tiny_llama, train_file, tmp_path_factory):
    """A LoRA adapter folder (`instruct-ner train`) of the tiny Llama, trained 2 steps on CONLL_SAMPLE."""
    from instruct_ner.config import make_config
    from instruct_ner.sft.train import TrainConfig, train

    folder = tmp_path_factory.mktemp("sft") / "adapter"
    values = dict(model=str(tiny_llama), data=str(train_file), output_dir=str(folder), precision="fp32")
    values.update(max_steps=2, per_device_train_batch_size=2, save_steps=100, max_length=256, learning_rate=1e-2)
    train(make_config(TrainConfig, values))
    return whole_texts(folder)


@pytest.fixture(scope="session")
def tagger(tiny_llama, train_file, tmp_path_factory):
    """A token-classifier folder (`instruct-ner train-tagger`, linear head) of the tiny Llama, trained 2 steps."""
    from instruct_ner.config import make_config
    from instruct_ner.sft.train_tagger import TaggerConfig, train_tagger

    folder = tmp_path_factory.mktemp("tagger") / "tagger"
    values = dict(model=str(tiny_llama), data=str(train_file), output_dir=str(folder), precision="fp32")
    values.update(max_steps=2, per_device_train_batch_size=2, save_steps=100, head="linear", loss="ce")
    train_tagger(make_config(TaggerConfig, values))
    return whole_texts(folder)


@pytest.fixture
def no_model_loading(monkeypatch):
    """`train` may not load a model (or resolve one) before it has checked its config."""
    from instruct_ner.sft import train as train_module

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the config was checked")

    monkeypatch.setattr(train_module, "load_causal_lm", refuse)
    monkeypatch.setattr(train_module, "resolve_model", refuse)
