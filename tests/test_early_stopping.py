"""Dev-F1 selection, one way for both trainers: the history survives a restart, patience stops training, the saved
model is the best, and a run resumed from a checkpoint selects as an uninterrupted one does."""

import json

import pytest
import torch
from safetensors.torch import load_file

from instruct_ner.inference import evaluation
from instruct_ner.inference.evaluation import tagger_dev_f1, tagger_evaluator
from instruct_ner.prompts.readers import load_examples
from instruct_ner.sft.selection import BEST_WEIGHTS, STATE_DIR, DevF1Tracker
from instruct_ner.sft.tagger import load_tagger
from instruct_ner.sft.train_tagger import TaggerConfig, train_tagger


def test_tracker_keeps_the_best_across_a_restart_and_counts_patience(tmp_path):
    tracker = DevF1Tracker(tmp_path, every=2, patience=2)
    assert tracker.due(2, 9) and not tracker.due(3, 9) and tracker.due(9, 9)
    assert DevF1Tracker(tmp_path, every=104).due(520, 625) and not DevF1Tracker(tmp_path, every=104).due(624, 625)
    assert tracker.record(2, 0.4, 1.0) and not tracker.record(4, 0.3, 1.0)
    again = DevF1Tracker(tmp_path, every=2, patience=2)  # a resumed run reads the history back
    assert (again.best_step, again.best_f1) == (2, 0.4) and not again.exhausted()
    again.record(6, 0.35, 1.0)
    assert again.exhausted()
    again.record(4, 0.5, 1.0)  # re-evaluating a step after resuming from an earlier checkpoint replaces the rest
    assert [h["step"] for h in again.history] == [2, 4] and again.best_step == 4


def tagger_options(tiny_llama, conll_file, tmp_path, **overrides):
    values = dict(
        model=str(tiny_llama),
        data=str(conll_file),
        output_dir=str(tmp_path / "tagger"),
        precision="fp32",
        max_steps=8,
        per_device_train_batch_size=2,
        learning_rate=5e-3,
        logging_steps=4,
        save_steps=100,
    )
    values.update(overrides)
    return TaggerConfig(**values)


def test_the_saved_tagger_is_the_best_one_on_dev(tiny_llama, conll_file, tmp_path):
    dev = load_examples(conll_file)[0]
    config = tagger_options(tiny_llama, conll_file, tmp_path, eval_f1_data=str(conll_file), eval_f1_steps=2)
    results, _, _ = train_tagger(config, evaluator=tagger_evaluator(dev))
    assert results["steps"] == 8 and [h["step"] for h in results["dev_history"]] == [2, 4, 6, 8]
    reloaded, tokenizer, _ = load_tagger(tmp_path / "tagger")
    assert tagger_dev_f1(reloaded, tokenizer, dev) == pytest.approx(results["best_dev_f1"])


def test_patience_stops_training_and_restores_the_earlier_best(tiny_llama, conll_file, tmp_path):
    scores = iter([0.5, 0.4, 0.3, 0.2])
    config = tagger_options(tiny_llama, conll_file, tmp_path, eval_f1_data=str(conll_file), eval_f1_steps=2)
    config.early_stopping_patience, config.save_steps = 1, 2
    results, model, _ = train_tagger(config, evaluator=lambda model, tokenizer: next(scores))
    assert results["steps"] == 4 and results["best_step"] == 2
    best = load_file(tmp_path / "tagger" / STATE_DIR / BEST_WEIGHTS)
    step2 = load_file(tmp_path / "tagger" / "checkpoint-2" / "trainable.safetensors")  # the Trainer's own checkpoint
    step4 = load_file(tmp_path / "tagger" / "checkpoint-4" / "trainable.safetensors")
    current = model.state_dict()
    assert best.keys() == step2.keys() and all(torch.equal(current[k], step2[k]) for k in step2)
    assert any(not torch.equal(current[k], step4[k]) for k in step4)  # the last step's weights are not the ones kept


def test_sft_keeps_the_best_adapter_and_stops_on_patience(tiny_llama, conll_file, tmp_path):
    """The adapter saved in output_dir equals the trainer's own checkpoint of the best step; patience ends the run."""
    from test_sft import config_for

    from instruct_ner.sft.train import run_training, training_pairs

    scores, seen = iter([0.2, 0.5, 0.1, 0.0]), []
    config = config_for(tiny_llama, conll_file, tmp_path, max_steps=6, learning_rate=1e-2, save_steps=1)
    config.eval_f1_data, config.eval_f1_steps, config.early_stopping_patience = str(conll_file), 1, 1
    prepared, dev = training_pairs(config), load_examples(conll_file)[0]

    def evaluator(model, tokenizer):  # the real evaluation runs (and must return a score); the value is scripted
        seen.append(evaluation.generative_dev_f1(model, tokenizer, prepared[2], dev))
        return next(scores)

    results = run_training(config, evaluator=evaluator, prepared=prepared)[0]
    assert results["steps"] == 3 and results["best_step"] == 2
    assert len(seen) == 3 and all(0.0 <= f1 <= 1.0 for f1 in seen)
    saved = load_file(tmp_path / "adapter" / "adapter_model.safetensors")
    step2 = load_file(tmp_path / "adapter" / "checkpoint-2" / "adapter_model.safetensors")
    step3 = load_file(tmp_path / "adapter" / "checkpoint-3" / "adapter_model.safetensors")
    assert saved.keys() == step2.keys() and all(torch.equal(saved[k], step2[k]) for k in saved)
    assert any(not torch.equal(saved[k], step3[k]) for k in saved)  # the last step's weights are not the best


class ScoresByStep:
    """A scripted evaluator: the dev F1 of the step being scored, read from a callback that runs before selection."""

    def __init__(self, scores: dict[int, float]):
        from transformers import TrainerCallback

        self.scores, self.step, outer = scores, 0, self

        class Step(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                outer.step = state.global_step

        self.callback = Step()

    def __call__(self, model, tokenizer) -> float:
        return self.scores[self.step]


def trainable(model) -> dict:
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("kind", ["tagger", "generative"])
def test_selection_and_resume_are_one_path_for_both_trainers(tiny_llama, conll_file, tmp_path, kind):
    """Each trainer, with dev-F1 selection, stopped after step 3 and resumed: the same history, best step and kept
    weights as an uninterrupted run, and those weights are the best step's checkpoint."""
    from test_sft import StopAt, config_for

    from instruct_ner.sft.train import run_training

    scores = {1: 0.2, 2: 0.6, 3: 0.4, 4: 0.5}
    common = dict(max_steps=4, save_steps=1, save_total_limit=None, eval_f1_data=str(conll_file), eval_f1_steps=1)
    if kind == "tagger":
        common.update(head="crf", loss="ce", dropout=0.0, lora_dropout=0.0)
        make, run, weights = tagger_options, train_tagger, "trainable.safetensors"
    else:
        common.update(learning_rate=1e-2, lora_dropout=0.0)
        make, run, weights = config_for, run_training, "adapter_model.safetensors"

    def train(name, *callbacks, **overrides):
        evaluator = ScoresByStep(scores)
        config = make(tiny_llama, conll_file, tmp_path / name, **common, **overrides)
        return run(config, callbacks=[evaluator.callback, *callbacks], evaluator=evaluator)

    full, full_model, _ = train("full")
    cut, _, _ = train("cut", StopAt(3))
    resumed, resumed_model, _ = train("cut", resume="latest")
    assert cut["steps"] == 3 and resumed["steps"] == full["steps"] == 4
    assert [h["step"] for h in resumed["dev_history"]] == [h["step"] for h in full["dev_history"]] == [1, 2, 3, 4]
    assert resumed["best_step"] == full["best_step"] == 2 and resumed["best_dev_f1"] == full["best_dev_f1"] == 0.6
    expected, got = trainable(full_model), trainable(resumed_model)
    assert expected.keys() == got.keys() and all(torch.allclose(expected[k], got[k], atol=1e-5) for k in expected)
    out = tmp_path / "full" / ("tagger" if kind == "tagger" else "adapter")
    step2, step4 = (load_file(out / f"checkpoint-{n}" / weights) for n in (2, 4))
    # what the run kept: the tagger's trainable weights; the adapter file SFT saved in output_dir
    kept = trainable(full_model) if kind == "tagger" else load_file(out / weights)
    assert kept.keys() == step2.keys() and all(torch.equal(kept[k], step2[k]) for k in step2)
    assert any(not torch.equal(kept[k], step4[k]) for k in step4)


def cli_training(command, tiny_llama, conll_file, out, every, steps, lr, *extra):
    """`instruct-ner COMMAND` on the tiny model with dev-F1 selection on the training file; its dev_f1.json."""
    from instruct_ner.cli import main

    args = [command, "--model", str(tiny_llama), "--data", str(conll_file), "--precision", "fp32"]
    args += ["--output_dir", str(out), "--eval_f1_data", str(conll_file), "--eval_f1_steps", str(every)]
    args += ["--max_steps", str(steps), "--learning_rate", lr, "--per_device_train_batch_size", "2"]
    assert main([*args, "--save_steps", "100", *extra]) == 0
    return json.loads((out / "dev_f1.json").read_text())


def test_train_tagger_cli_saves_the_weights_with_the_best_dev_f1(tiny_llama, conll_file, tmp_path, capsys):
    out, head = tmp_path / "tagger", ["--head", "linear", "--loss", "ce"]
    summary = cli_training("train-tagger", tiny_llama, conll_file, out, 2, 6, "5e-3", *head)
    assert [h["step"] for h in summary["dev_history"]] == [2, 4, 6]
    reloaded, tokenizer, _ = load_tagger(out)  # scored afresh from the saved folder
    assert tagger_dev_f1(reloaded, tokenizer, load_examples(conll_file)[0]) == pytest.approx(summary["best_dev_f1"])
    capsys.readouterr()


@pytest.mark.slow
def test_train_cli_saves_the_adapter_with_the_best_dev_f1(tiny_llama, conll_file, tmp_path):
    from instruct_ner import NER

    out = tmp_path / "adapter"
    summary = cli_training("train", tiny_llama, conll_file, out, 1, 3, "1e-2")
    assert [h["step"] for h in summary["dev_history"]] == [1, 2, 3]
    scored = NER.from_pretrained(out).evaluate(conll_file)["micro"]["f1"]  # the saved adapter, scored afresh
    assert scored == pytest.approx(summary["best_dev_f1"])


@pytest.mark.parametrize(
    "options, message",
    [
        (["--eval_f1_steps", "5"], "eval_f1_steps needs --eval_f1_data"),
        (["--early_stopping_patience", "2"], "early_stopping_patience needs --eval_f1_steps"),
        (["--eval_f1_steps", "5", "--eval_f1_data", "x.txt", "--merge", "true"], "merge exports the last weights"),
        (["--eval_f1_limit", "10"], "eval_f1_limit needs --eval_f1_steps"),
        (
            ["--eval_f1_steps", "5", "--eval_f1_data", "x.txt", "--eval_f1_limit", "0"],
            "eval_f1_limit must be at least 1",
        ),
        (["--eval_limit", "10"], "eval_limit needs --eval_data"),
        (["--eval_data", "x.txt", "--eval_limit", "0"], "eval_limit must be at least 1"),
    ],
)
def test_dev_f1_options_are_checked_before_anything_loads(options, message, capsys, tmp_path):
    from instruct_ner.cli import main

    assert main(["train", "--data", str(tmp_path / "x.txt"), *options]) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and len(error.splitlines()) == 1


def test_limit_caps_the_training_records_and_eval_f1_limit_the_dev_set(conll_file):
    from instruct_ner.sft.train import TrainConfig
    from instruct_ner.training import dev_examples

    everything, _ = load_examples(conll_file)
    config = TrainConfig(data=str(conll_file), eval_f1_data=str(conll_file), eval_f1_steps=5, limit=1)
    assert [e.tokens for e in dev_examples(config)] == [e.tokens for e in everything]
    assert len(everything) > 1
    config.eval_f1_limit = 1
    assert [e.tokens for e in dev_examples(config)] == [everything[0].tokens]


def test_eval_limit_caps_the_dev_loss_records_and_not_the_training_ones(conll_file):
    from instruct_ner.sft.train import TrainConfig, training_pairs

    everything, _ = load_examples(conll_file)
    assert len(everything) > 1
    config = TrainConfig(data=str(conll_file), eval_data=str(conll_file))
    pairs, dev, _ = training_pairs(config)
    assert len(pairs) == len(dev) == len(everything)
    config.eval_limit = 1
    capped_pairs, capped_dev, _ = training_pairs(config)
    assert capped_pairs == pairs and capped_dev == dev[:1]


def test_a_hugging_face_dev_set_is_read_from_its_own_split(tmp_path):
    import datasets

    from instruct_ner.sft.train import TrainConfig
    from instruct_ner.training import dev_examples

    features = datasets.Features(
        {
            "tokens": datasets.Sequence(datasets.Value("string")),
            "ner_tags": datasets.Sequence(datasets.Value("string")),
        }
    )
    split = {
        name: datasets.Dataset.from_dict({"tokens": [[word, "runs"]], "ner_tags": [["B-PER", "O"]]}, features=features)
        for name, word in (("train", "Ann"), ("validation", "Bob"))
    }
    datasets.DatasetDict(split).save_to_disk(str(tmp_path / "hf"))
    config = TrainConfig(data=str(tmp_path / "hf"), eval_f1_data=str(tmp_path / "hf"), eval_f1_steps=5)
    assert [e.tokens for e in dev_examples(config)] == [["Bob", "runs"]]
    assert [e.tokens for e in load_examples(tmp_path / "hf", config)[0]] == [["Ann", "runs"]]


def test_a_dev_file_of_another_kind_than_the_training_data_is_read_by_its_suffix(conll_file, tmp_path):
    from instruct_ner.jsonl import write_jsonl
    from instruct_ner.sft.train import TrainConfig
    from instruct_ner.training import dev_examples

    examples, _ = load_examples(conll_file)
    write_jsonl(tmp_path / "dev.jsonl", [{"id": e.id, "tokens": e.tokens, "tags": e.tags} for e in examples])
    config = TrainConfig(
        data=str(conll_file), format="conll", eval_f1_data=str(tmp_path / "dev.jsonl"), eval_f1_steps=5
    )
    assert [e.tags for e in dev_examples(config)] == [e.tags for e in examples]


def test_skipped_dev_records_are_reported(conll_file, tmp_path, capsys):
    from instruct_ner.sft.train import TrainConfig
    from instruct_ner.training import dev_examples

    dev = tmp_path / "dev.txt"
    dev.write_text(conll_file.read_text() + "\nBroken B-PER extra\n", encoding="utf-8")
    config = TrainConfig(data=str(conll_file), eval_f1_data=str(dev), eval_f1_steps=5, on_error="skip")
    assert len(dev_examples(config)) == len(load_examples(conll_file)[0])
    assert "skipped" in capsys.readouterr().err
