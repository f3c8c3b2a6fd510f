"""The small-data options of the trainers: `--augment K` (mention-replacement copies of the training examples only,
counted in the results) on `train` and `train-tagger`, and `--init_adapter DIR` on `train` (a warm start from a saved
adapter: its weights are the run's first, its base model and LoRA shape are checked before anything loads)."""

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

from conftest import CONLL_SAMPLE
from instruct_ner.cli import main
from instruct_ner.config import ConfigError, parse_config
from instruct_ner.prompts.readers import load_examples
from instruct_ner.sft import train as train_module
from instruct_ner.sft.artifact import Artifact
from instruct_ner.sft.models import ModelError
from instruct_ner.sft.train import TrainConfig, run_training, training_pairs, warm_start
from instruct_ner.sft.train_tagger import TaggerConfig, train_tagger

# Eight sentences, two without entities, so that a dev split and augmentation both have something to do.
CONLL = (
    CONLL_SAMPLE
    + """
Anna B-PER
met O
Ugo B-PER
in O
Oslo B-LOC

The O
UN B-ORG
said O
so O

It O
rained O

Acme B-ORG
hired O
Maria B-PER
Rossi I-PER
"""
)
PER_LOC = "Ugo B-PER\nwent O\nto O\nBari B-LOC\n\nLuca B-PER\nlikes O\nTorino B-LOC\n"


@pytest.fixture
def conll(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text(CONLL, encoding="utf-8")
    return path


def config_for(tiny_llama, data, out, **overrides):
    values = dict(model=str(tiny_llama), data=str(data), output_dir=str(out), precision="fp32", max_length=256)
    values.update(max_steps=2, per_device_train_batch_size=2, logging_steps=1, save_steps=100)
    values.update(overrides)
    return TrainConfig(**values)


# --augment


def test_augment_adds_copies_of_the_training_examples_only(conll, capsys):
    plain = training_pairs(TrainConfig(data=str(conll), eval_fraction=0.25))
    pairs, dev, builder = training_pairs(TrainConfig(data=str(conll), eval_fraction=0.25, augment=2))
    assert dev == plain[1] and len(dev) == 2  # the same held-out examples, not augmented
    assert pairs[: len(plain[0])] == plain[0]  # the training pairs as before, then the copies
    copies = pairs[len(plain[0]) :]
    assert copies and all(pair["augmented"] for pair in copies) and not any("augmented" in p for p in plain[0])
    held_out = {pair["source"] for pair in dev}
    trained = {pair["source"] for pair in plain[0]}
    assert {pair["source"] for pair in copies} <= trained and not held_out & {p["source"] for p in copies}
    # no mention of a held-out sentence is swapped in: the copies' responses mark the training mentions only
    mentions = {source: [e.text for e in x.entities] for x in load_examples(conll)[0] for source in [x.source]}
    only_held_out = {m for s in held_out for m in mentions[s]} - {m for s in trained for m in mentions[s]}
    assert only_held_out and not [m for m in only_held_out for pair in copies if f"[{m} |" in pair["response"]]
    assert f"augment 2: {len(copies)} copies of {len(copies) // 2} of the 6 training examples added" in (
        capsys.readouterr().err
    )
    assert builder.labels == plain[2].labels


def test_augment_never_touches_eval_data(conll, tmp_path):
    dev = tmp_path / "dev.txt"
    dev.write_text(PER_LOC, encoding="utf-8")
    plain = training_pairs(TrainConfig(data=str(conll), eval_data=str(dev)))
    pairs, dev_pairs, _ = training_pairs(TrainConfig(data=str(conll), eval_data=str(dev), augment=3))
    assert dev_pairs == plain[1] and len(dev_pairs) == 2
    assert len(pairs) == 8 + 3 * 6  # six of the eight sentences have an entity that can change


def test_augment_zero_is_the_training_data_as_before(conll):
    assert training_pairs(TrainConfig(data=str(conll), augment=0)) == training_pairs(TrainConfig(data=str(conll)))


@pytest.mark.parametrize("config_class", [TrainConfig, TaggerConfig])
def test_augment_is_an_option_of_both_trainers_checked_before_anything_loads(config_class, conll):
    assert parse_config(config_class, ["--data", str(conll), "--augment", "3"]).augment == 3
    with pytest.raises(ConfigError, match="augment must be a number of copies >= 0, got -1"):
        parse_config(config_class, ["--data", str(conll), "--augment", "-1"])


def test_train_reports_and_records_the_augmented_examples(tiny_llama, conll, tmp_path, capsys):
    results, _, _ = run_training(config_for(tiny_llama, conll, tmp_path / "a", augment=2))
    assert results["augmented_examples"] == 12 and results["train_examples"] == 20
    assert "training on 20 examples (12 augmented)" in capsys.readouterr().err
    saved = json.loads((tmp_path / "a" / "train_results.json").read_text(encoding="utf-8"))
    assert saved["augmented_examples"] == 12
    artifact = json.loads((tmp_path / "a" / "instruct_ner.json").read_text(encoding="utf-8"))
    assert artifact["training_config"]["augment"] == 2


def test_train_tagger_augments_the_same_way(tiny_llama, conll, tmp_path, capsys):
    config = TaggerConfig(
        model=str(tiny_llama),
        data=str(conll),
        output_dir=str(tmp_path / "tagger"),
        precision="fp32",
        max_steps=1,
        per_device_train_batch_size=2,
        augment=2,
    )
    results = train_tagger(config)[0]
    assert results["augmented_examples"] == 12 and results["train_examples"] == 20
    assert "augment 2: 12 copies of 6 of the 8 training examples added" in capsys.readouterr().err
    artifact = json.loads((tmp_path / "tagger" / "instruct_ner.json").read_text(encoding="utf-8"))
    assert artifact["training_config"]["augment"] == 2


# --init_adapter


class FirstWeights(TrainerCallback):
    """The LoRA weights as training begins (after the Trainer has placed the model), by name."""

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.weights = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}


def saved_name(name: str) -> str:
    """A live LoRA parameter's name as peft saves it (without the adapter's name)."""
    return name.replace(".default.", ".")


def test_a_warm_start_begins_from_the_saved_adapter_and_trains_it(tiny_llama, conll, tmp_path, capsys):
    first = config_for(tiny_llama, conll, tmp_path / "first", learning_rate=1e-2, lora_r=4, lora_alpha=8)
    run_training(first)
    saved = load_file(tmp_path / "first" / "adapter_model.safetensors")
    assert any("lora_B" in name and tensor.abs().sum() > 0 for name, tensor in saved.items())  # trained, not init

    other = tmp_path / "per_loc.txt"  # other labels: the new run prompts with its own
    other.write_text(PER_LOC, encoding="utf-8")
    seen = FirstWeights()
    warm = TrainConfig(
        data=str(other),
        output_dir=str(tmp_path / "warm"),
        init_adapter=str(tmp_path / "first"),  # no --model: the adapter's base model
        precision="fp32",
        max_steps=1,
        per_device_train_batch_size=2,
        learning_rate=1e-2,
        warmup_ratio=0.0,  # the one step at the full rate (a warm-up's first step has none)
        max_length=256,
    )
    _, model, _ = run_training(warm, callbacks=[seen])
    assert {saved_name(n) for n in seen.weights} == set(saved)
    for name, value in seen.weights.items():
        assert torch.equal(value, saved[saved_name(name)]), name
    trained = {n: p for n, p in model.named_parameters() if "lora_" in n}
    assert all(p.requires_grad for p in trained.values())
    assert any(not torch.equal(trained[n], seen.weights[n]) for n in trained)  # one step moved them
    assert all(value.shape[0] == 4 for name, value in seen.weights.items() if "lora_A" in name)  # the adapter's rank

    artifact = Artifact.load(tmp_path / "warm")
    assert artifact.labels == ["LOC", "PER"] and artifact.base_model == str(tiny_llama.resolve())
    recorded = artifact.training_config
    assert recorded["init_adapter"] == str(tmp_path / "first") and (recorded["lora_r"], recorded["lora_alpha"]) == (
        4,
        8,
    )
    err = capsys.readouterr().err
    assert "warm start from" in err and "trained with labels ['LOC', 'MISC', 'ORG', 'PER']" in err
    assert "this run prompts with ['LOC', 'PER']" in err
    adapter_config = json.loads((tmp_path / "warm" / "adapter_config.json").read_text(encoding="utf-8"))
    assert adapter_config["r"] == 4 and adapter_config["lora_alpha"] == 8


@pytest.fixture
def saved_adapter(tmp_path, tiny_llama):
    """A folder as `train` leaves it, without training: its description, peft's config, a weights file."""
    folder = tmp_path / "adapter"
    training = {"lora_r": 8, "lora_alpha": 16, "lora_target_modules": ["all-linear"]}
    Artifact("generative", ["LOC", "PER"], base_model=str(tiny_llama.resolve()), training_config=training).save(folder)
    config = {"peft_type": "LORA", "r": 8, "lora_alpha": 16, "target_modules": ["q_proj", "v_proj"]}
    (folder / "adapter_config.json").write_text(json.dumps(config), encoding="utf-8")
    (folder / "adapter_model.safetensors").write_bytes(b"")
    return folder


def test_a_warm_start_takes_the_adapters_base_model_and_lora_shape(saved_adapter, tiny_llama, conll):
    config, artifact = warm_start(TrainConfig(data=str(conll), init_adapter=str(saved_adapter)))
    assert (config.lora_r, config.lora_alpha, config.lora_target_modules) == (8, 16, ["all-linear"])
    assert config.model == str(tiny_llama.resolve()) and artifact.labels == ["LOC", "PER"]
    same = TrainConfig(data=str(conll), init_adapter=str(saved_adapter), model=str(tiny_llama), lora_r=8)
    assert warm_start(same)[0].lora_r == 8  # given, and equal to the adapter's: fine
    assert warm_start(TrainConfig(data=str(conll))) == (TrainConfig(data=str(conll)), None)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"lora_r": 16}, r"this run asks lora_r 16 \(the adapter's: 8\); drop these options"),
        ({"lora_alpha": 32, "lora_target_modules": ["q_proj"]}, r"lora_alpha 32 \(the adapter's: 16\), lora_target"),
        ({"model": ""}, r"was trained on the base model .*tiny-llama.*, this run names embedded: an adapter fits"),
    ],
)
def test_a_warm_start_that_cannot_be_what_was_asked_fails_before_loading(
    saved_adapter, conll, tmp_path, no_model_loading, overrides, message
):
    config = TrainConfig(data=str(conll), init_adapter=str(saved_adapter), output_dir=str(tmp_path / "o"), **overrides)
    with pytest.raises(ConfigError, match=message):
        train_module.train(config)


def test_an_adapter_folder_that_is_not_one_fails_before_loading(saved_adapter, conll, tmp_path, no_model_loading):
    def refused(folder) -> str:
        with pytest.raises(ModelError) as caught:
            train_module.train(TrainConfig(data=str(conll), init_adapter=str(folder), output_dir=str(tmp_path / "o")))
        return str(caught.value)

    assert refused(tmp_path / "nope") == f"--init_adapter {tmp_path / 'nope'}: folder not found"
    (saved_adapter / "adapter_model.safetensors").unlink()
    assert "no adapter weights (adapter_model.safetensors or adapter_model.bin)" in refused(saved_adapter)
    (saved_adapter / "adapter_config.json").unlink()
    assert "no adapter_config.json; expected a LoRA adapter folder" in refused(saved_adapter)
    tagger = tmp_path / "tagger"
    spec = {"attention": "causal", "head": "linear", "loss": "ce"}
    Artifact("tagger", ["PER"], tagger=spec).save(tagger)
    assert "a tagger folder, not one written by instruct-ner train" in refused(tagger)


def test_the_output_folder_may_not_be_the_adapter_folder(saved_adapter, conll, no_model_loading):
    config = TrainConfig(data=str(conll), init_adapter=str(saved_adapter), output_dir=str(saved_adapter / "next"))
    with pytest.raises(ValueError, match="is, holds or lies in the model folder"):
        train_module.train(config)


def test_the_cli_says_a_bad_warm_start_in_one_line(saved_adapter, conll, tmp_path, capsys, no_model_loading):
    argv = ["train", "--data", str(conll), "--init_adapter", str(saved_adapter), "--lora_r", "4"]
    assert main([*argv, "--output_dir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("instruct-ner train: error: --init_adapter ")
    assert "Traceback" not in err
