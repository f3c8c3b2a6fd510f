"""Issue 43, items 1, 7 and 13, and the one "explicit beats saved" rule for the trainers' configs.

- `train` / `train-tagger` check `--output_dir` against the data, the model and what the folder holds before anything
  loads or is written: a refused run leaves every file byte-identical and says why in one line;
- each checkpoint carries its run's config (`run.json`), and `--resume` refuses a checkpoint of another run;
- checkpoints are written to a staging folder and renamed, so an interrupted save never leaves a `checkpoint-N` that
  `--resume latest` would pick; an incomplete checkpoint named explicitly is a one-line error before the model loads.
"""

from __future__ import annotations

import json

import pytest
from test_sft import Steps, StopAt

from instruct_ner.cli import main
from instruct_ner.config import ConfigError, fields_set
from instruct_ner.outputs import MARKER
from instruct_ner.sft import tagger as tagger_module
from instruct_ner.sft import train as train_module
from instruct_ner.sft import train_tagger as train_tagger_module
from instruct_ner.sft.train import TrainConfig, run_training
from instruct_ner.sft.train_tagger import TaggerConfig, train_tagger

COMMANDS = ["train", "train-tagger"]


def snapshot(root):
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def no_loading(monkeypatch):
    """Any model or tokenizer load fails the test: every refusal must come before one."""

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the output folder was checked")

    monkeypatch.setattr(train_module, "load_causal_lm", refuse)
    monkeypatch.setattr(train_module, "load_tokenizer", refuse)
    monkeypatch.setattr(tagger_module, "load_backbone", refuse)
    import instruct_ner.sft.models as models

    monkeypatch.setattr(models, "load_tokenizer", refuse)


def cli(command, tiny_llama, data, out, *extra):
    args = [command, "--model", str(tiny_llama), "--data", str(data), "--output_dir", str(out)]
    args += ["--precision", "fp32", "--max_steps", "1", "--per_device_train_batch_size", "2", "--save_steps", "1"]
    if command == "train-tagger":
        args += ["--head", "linear", "--loss", "ce"]
    return main([*args, *extra])


@pytest.fixture
def tree(tmp_path, conll_file):
    """data/ with the training file and the user's README, and an adapter folder another tool wrote."""
    (tmp_path / "data").mkdir()
    data = tmp_path / "data" / "train.txt"
    data.write_bytes(conll_file.read_bytes())
    (tmp_path / "data" / "README.md").write_text("the user's notes\n", encoding="utf-8")
    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / "adapter_model.safetensors").write_bytes(b"old weights")
    (tmp_path / "adapter" / "instruct_ner.json").write_text('{"kind": "generative"}', encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("data", "holds the input"),
        ("adapter", "is not empty (adapter_model.safetensors, instruct_ner.json)"),
        ("data/train.txt", "exists and is a file"),
    ],
)
def test_a_refused_output_dir_leaves_every_file_as_it_was(
    tiny_llama, tree, command, target, message, no_loading, capsys
):
    before = snapshot(tree)
    assert cli(command, tiny_llama, tree / "data" / "train.txt", tree / target) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and message in error and error.startswith(f"instruct-ner {command}: error: ")
    assert snapshot(tree) == before


@pytest.mark.parametrize("command", COMMANDS)
def test_a_finished_run_is_kept_unless_resumed_or_overwritten(tiny_llama, conll_file, tmp_path, command, capsys):
    out = tmp_path / "run"
    assert cli(command, tiny_llama, conll_file, out) == 0
    assert json.loads((out / MARKER).read_text())["command"] == command
    # the longest training sentence, counted here from the file itself, bounds the default prediction window
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    blocks = [b for b in conll_file.read_text(encoding="utf-8").split("\n\n") if b.strip()]
    sentences = [" ".join(line.split()[0] for line in block.splitlines() if line.strip()) for block in blocks]
    longest = max(len(tokenizer(s, add_special_tokens=False)["input_ids"]) for s in sentences)
    assert json.loads((out / "instruct_ner.json").read_text())["longest_text_tokens"] == longest
    # and how many sentences nine in ten of them hold (the 90% quantile) bounds a generative window too
    from instruct_ner.prompts.tokenize import sentence_bounds

    counts = sorted(len(sentence_bounds(s)) for s in sentences)
    assert (
        json.loads((out / "instruct_ner.json").read_text())["sentences_per_text"] == counts[-(len(counts) // 10) - 1]
    )
    before = snapshot(tmp_path)
    assert cli(command, tiny_llama, conll_file, out) == 2
    assert "it holds a finished run: pass --resume" in capsys.readouterr().err
    assert snapshot(tmp_path) == before
    assert cli(command, tiny_llama, conll_file, out, "--overwrite") == 0
    capsys.readouterr()


@pytest.mark.parametrize("command", COMMANDS)
def test_overwrite_replaces_a_foreign_folder_but_never_an_input(tiny_llama, tree, command, no_loading, capsys):
    before = snapshot(tree)
    assert cli(command, tiny_llama, tree / "data" / "train.txt", tree / "data", "--overwrite") == 2
    assert "holds the input" in capsys.readouterr().err and snapshot(tree) == before


def sft_config(tiny_llama, data, out, **overrides):
    values = dict(model=str(tiny_llama), data=str(data), output_dir=str(out), precision="fp32", max_length=256)
    values.update(max_steps=2, per_device_train_batch_size=2, logging_steps=1, save_steps=1, learning_rate=1e-2)
    values.update(overrides)
    return TrainConfig(**values)


def tagger_config(tiny_llama, data, out, **overrides):
    values = dict(model=str(tiny_llama), data=str(data), output_dir=str(out), precision="fp32", head="linear")
    values.update(loss="ce", max_steps=2, per_device_train_batch_size=2, logging_steps=1, save_steps=1)
    values.update(overrides)
    return TaggerConfig(**values)


RUNS = {"generative": (sft_config, run_training), "tagger": (tagger_config, train_tagger)}
OTHER_RUN = {"generative": {"template": "ner-list.en", "lora_r": 4}, "tagger": {"head": "crf", "lora_r": 4}}


@pytest.mark.parametrize("kind", list(RUNS))
def test_resume_refuses_a_checkpoint_of_another_run(tiny_llama, conll_file, tmp_path, kind, monkeypatch):
    make, run = RUNS[kind]
    out = tmp_path / "out"
    run(make(tiny_llama, conll_file, out, max_steps=1))
    saved = json.loads((out / "checkpoint-1" / "run.json").read_text())
    assert "output_dir" not in saved and "resume" not in saved and "data_fingerprint" in saved
    other = tmp_path / "other.txt"
    other.write_text(conll_file.read_text().replace("Rome", "Milan"))
    monkeypatch.setattr(train_module, "load_causal_lm", lambda *a, **k: pytest.fail("model loaded"))
    monkeypatch.setattr(tagger_module, "load_backbone", lambda *a, **k: pytest.fail("model loaded"))
    with pytest.raises(ConfigError, match=r"checkpoint-1: .*lora_r was 16, now 4") as error:
        run(make(tiny_llama, conll_file, out, resume="latest", **OTHER_RUN[kind]))
    assert "\n" not in str(error.value)
    with pytest.raises(ConfigError, match="data_fingerprint"):
        run(make(tiny_llama, other, out, resume="latest"))


class InterruptSave:
    """Raises KeyboardInterrupt while the checkpoint of optimizer step `step` is being written (after its weights)."""

    def __init__(self, monkeypatch, step: int):
        from transformers import Trainer

        original = Trainer._save_rng_state

        def interrupted(trainer, output_dir):
            if trainer.state.global_step == step:
                raise KeyboardInterrupt
            return original(trainer, output_dir)

        monkeypatch.setattr(Trainer, "_save_rng_state", interrupted)


@pytest.mark.parametrize("kind", list(RUNS))
def test_an_interrupted_checkpoint_is_never_resumed_from(tiny_llama, conll_file, tmp_path, kind, monkeypatch):
    make, run = RUNS[kind]
    out = tmp_path / "out"
    with monkeypatch.context() as patch:
        InterruptSave(patch, 2)
        with pytest.raises(KeyboardInterrupt):
            run(make(tiny_llama, conll_file, out, max_steps=3))
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-1"]  # no half-written checkpoint-2
    (out / "checkpoint-3").mkdir()  # as an interrupted save of an older version left it: empty
    with monkeypatch.context() as patch:
        patch.setattr(train_module, "load_causal_lm", lambda *a, **k: pytest.fail("model loaded"))
        patch.setattr(tagger_module, "load_backbone", lambda *a, **k: pytest.fail("model loaded"))
        with pytest.raises(ConfigError, match=r"checkpoint-3: an incomplete checkpoint \(no trainer_state.json\)"):
            run(make(tiny_llama, conll_file, out, max_steps=3, resume=str(out / "checkpoint-3")))
    steps = Steps()
    results = run(make(tiny_llama, conll_file, out, max_steps=3, resume="latest"), callbacks=[steps])[0]
    assert steps.taken == [2, 3] and results["steps"] == 3  # resumed from checkpoint-1, the complete one
    assert not list(out.glob(".*checkpoint*"))  # no staging folder left behind


def test_pruning_keeps_the_newest_complete_checkpoints(tiny_llama, conll_file, tmp_path):
    out = tmp_path / "out"
    train_tagger(tagger_config(tiny_llama, conll_file, out, max_steps=4, save_total_limit=2), callbacks=[StopAt(3)])
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-3"]
    assert all((out / name / "run.json").exists() for name in ("checkpoint-2", "checkpoint-3"))


def test_python_built_trainer_configs_record_their_given_fields(conll_file):
    assert fields_set(TrainConfig(data=str(conll_file), precision="auto")) == {"data", "precision"}
    assert fields_set(TaggerConfig(data=str(conll_file), head="crf")) == {"data", "head"}


def test_an_explicit_default_template_wins_over_the_prepared_records_in_python_too(conll_file, tmp_path):
    """`TrainConfig(template=TRAINING_TEMPLATE)` counts as given, as `--template` does on the command line."""
    from instruct_ner.prompts.templates import TRAINING_TEMPLATE
    from instruct_ner.sft.train import training_pairs

    pairs = tmp_path / "pairs.jsonl"
    main(["prepare", "--data", str(conll_file), "--out", str(pairs), "--template", "ner-list.en"])
    assert training_pairs(TrainConfig(data=str(pairs)))[2].template.name == "ner-list.en.v1"
    with pytest.raises(ConfigError, match="differs from what template ner-inline-compact.en.v1"):
        training_pairs(TrainConfig(data=str(pairs), template=TRAINING_TEMPLATE))


def test_an_explicit_empty_model_means_the_embedded_one_for_a_tagger(tmp_path, tiny_llama, monkeypatch):
    from instruct_ner.sft.artifact import Artifact
    from instruct_ner.sft.models import resolve_model

    folder = tmp_path / "tagger"
    tagger = {"tags": ["O"], "attention": "causal", "head": "linear", "loss": "ce", "loss_weights": [1, 0, 0]}
    Artifact(kind="tagger", labels=[], base_model=str(tiny_llama), precision="bf16", tagger=tagger).save(folder)
    loaded = []

    def record(path, precision, attention, trust_remote_code=False):
        loaded.append((path, precision))
        raise RuntimeError("stop")

    monkeypatch.setattr(tagger_module, "load_backbone", record)
    for model, precision, expected in [
        (None, None, (str(tiny_llama), "bf16")),
        ("", "fp32", (resolve_model(""), "fp32")),
    ]:
        with pytest.raises(RuntimeError, match="stop"):
            tagger_module.load_tagger(folder, model, precision)
        assert loaded.pop() == expected
    assert train_tagger_module  # imported for the monkeypatch targets' modules to be loaded


@pytest.mark.parametrize("kind", list(RUNS))
def test_min_steps_raises_the_epochs_of_a_small_training_set(tiny_llama, conll_file, tmp_path, kind, capsys):
    """One epoch's steps as the Trainer counts them, then min_steps one more: two whole epochs, said on stderr."""
    make, run = RUNS[kind]
    one, more = Steps(), Steps()
    common = dict(max_steps=-1, num_train_epochs=1, save_steps=1000)
    run(make(tiny_llama, conll_file, tmp_path / "one", **common), callbacks=[one])
    epoch = one.taken[-1]
    run(make(tiny_llama, conll_file, tmp_path / "more", min_steps=epoch + 1, **common), callbacks=[more])
    assert more.taken[-1] == 2 * epoch
    assert f"min_steps {epoch + 1}: 2 epochs over" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="min_steps must be"):
        make(tiny_llama, conll_file, tmp_path / "bad", min_steps=-1)
