"""Generative SFT on a tiny Llama built in the test: LoRA, loss masking, 8-bit, save/reload, overfitting."""

import dataclasses
import json

import pytest
import torch
from transformers import TrainerCallback

from instruct_ner.config import ConfigError, parse_config
from instruct_ner.examples import DataError
from instruct_ner.prompts.templates import TemplateError
from instruct_ner.sft import train as train_module
from instruct_ner.sft.train import TrainConfig, run_training, to_prompt_completion, training_pairs


def config_for(tiny_llama, data, tmp_path, **overrides):
    values = dict(model=str(tiny_llama), data=str(data), output_dir=str(tmp_path / "adapter"), precision="fp32")
    values.update(max_steps=3, per_device_train_batch_size=2, logging_steps=1, save_steps=100, max_length=256)
    values.update(overrides)
    return TrainConfig(**values)


def test_a_few_steps_change_lora_weights_only(tiny_llama, conll_file, tmp_path):
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_llama).state_dict()
    results, model, _ = run_training(config_for(tiny_llama, conll_file, tmp_path, learning_rate=1e-2))
    assert results["steps"] == 3 and len(results["losses"]) == 3
    trained = model.state_dict()
    lora_b = [name for name in trained if "lora_B" in name]
    assert lora_b and all(trained[name].abs().sum() > 0 for name in lora_b)  # lora_B starts at zero
    for name, value in trained.items():
        if "lora_" not in name:
            base_name = name.replace("base_model.model.", "").replace(".base_layer", "")
            assert torch.equal(value, base[base_name]), name
    saved = json.loads((tmp_path / "adapter" / "instruct_ner.json").read_text())
    assert saved["prompt"]["template"] == "ner-inline-compact.en.v1"  # train's default
    assert saved["labels"] == ["LOC", "MISC", "ORG", "PER"]
    assert "{#- instruct-ner" in saved["prompt"]["template_source"]
    assert (tmp_path / "adapter" / "adapter_model.safetensors").exists()


def test_labels_mask_everything_but_the_response(tiny_llama, conll_file, tmp_path):
    import datasets
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    config = config_for(tiny_llama, conll_file, tmp_path)
    pairs, _, _ = training_pairs(config)
    assert pairs[0]["response"] == "[EU | ORG] rejects [German | MISC] call"  # train's default: the inline format
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    trainer = SFTTrainer(
        model=str(tiny_llama),
        args=SFTConfig(output_dir=str(tmp_path / "t"), completion_only_loss=True, report_to="none", use_cpu=True),
        train_dataset=datasets.Dataset.from_list([to_prompt_completion(pairs[0])]),
        processing_class=tokenizer,
    )
    batch = trainer.data_collator([trainer.train_dataset[0]])
    labels = batch["labels"][0]
    learned = labels[labels != -100]
    assert tokenizer.decode(learned) == "[EU | ORG] rejects [German | MISC] call<|im_end|>"
    prompt_length = (labels == -100).sum().item()
    assert tokenizer.decode(batch["input_ids"][0][:prompt_length]) == pairs[0]["prompt"]


def test_chat_style_masks_system_and_user_turns(tiny_llama, conll_file, tmp_path):
    config = config_for(tiny_llama, conll_file, tmp_path, style="chat", template="ner-list.en")
    pairs, _, _ = training_pairs(config)
    record = to_prompt_completion(pairs[0])
    assert [m["role"] for m in record["prompt"]] == ["system", "user"]
    assert record["completion"] == [{"role": "assistant", "content": "EU | ORG\nGerman | MISC"}]
    results, _, _ = run_training(config)
    assert results["steps"] == 3


def test_8bit_path_runs_on_cpu(tiny_llama, conll_file, tmp_path):
    results, model, _ = run_training(config_for(tiny_llama, conll_file, tmp_path, precision="8bit", max_steps=2))
    assert results["steps"] == 2 and results["precision"] == "8bit"
    import bitsandbytes as bnb

    assert any(isinstance(module, bnb.nn.Linear8bitLt) for module in model.modules())


def test_adapter_save_and_reload_gives_identical_logits(tiny_llama, conll_file, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = config_for(tiny_llama, conll_file, tmp_path, learning_rate=1e-2)
    _, model, _ = run_training(config)
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    inputs = tokenizer(["EU rejects German call"], return_tensors="pt")
    model.eval()
    reloaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llama), config.output_dir).eval()
    with torch.no_grad():
        assert torch.equal(model(**inputs).logits, reloaded(**inputs).logits)


def test_overfits_a_handful_of_examples(tiny_llama, conll_file, tmp_path):
    template = tmp_path / "short.jinja"  # a one-line instruction keeps sequences short, so steps are cheap
    template.write_text("{#- instruct-ner\nresponse_format: entity_list\n-#}NER {{ labels|join(',', 'name') }}")
    config = config_for(
        tiny_llama,
        conll_file,
        tmp_path,
        template=str(template),
        max_steps=100,
        learning_rate=3e-3,
        lora_r=64,
        lora_alpha=64,
        lora_dropout=0.0,
        warmup_ratio=0.1,
        lr_scheduler_type="cosine",
        per_device_train_batch_size=4,
    )
    results, _, _ = run_training(config)
    assert results["losses"][0] > 10.0
    assert sum(results["losses"][-5:]) / 5 < 0.3  # stated threshold: mean of the last 5 logged losses


def lora_weights(model) -> dict:
    return {name: value.detach().clone() for name, value in model.state_dict().items() if "lora_" in name}


class StopAt(TrainerCallback):
    """Ends training after optimizer step `step` (its checkpoint, when due, is written first)."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        control.should_training_stop = state.global_step == self.step


class Steps(TrainerCallback):
    """The optimizer steps a run really takes."""

    def __init__(self):
        self.taken = []

    def on_step_end(self, args, state, control, **kwargs):
        self.taken.append(state.global_step)


def test_resume_equals_an_uninterrupted_run(tiny_llama, conll_file, tmp_path):
    common = dict(max_steps=4, save_steps=2, learning_rate=1e-2)
    full, full_model, _ = run_training(config_for(tiny_llama, conll_file, tmp_path / "full", **common))
    interrupted = config_for(tiny_llama, conll_file, tmp_path / "cut", **common)
    first, _, _ = run_training(interrupted, callbacks=[StopAt(2)])
    assert first["steps"] == 2 and (tmp_path / "cut" / "adapter" / "checkpoint-2").is_dir()
    resumed_config = config_for(tiny_llama, conll_file, tmp_path / "cut", resume="latest", **common)
    steps = Steps()
    resumed, resumed_model, _ = run_training(resumed_config, callbacks=[steps])
    assert steps.taken == [3, 4]  # only what was left
    # The same losses and weights as the run that was never stopped (optimizer, schedule and data order restored).
    assert resumed["losses"] == pytest.approx(full["losses"], rel=1e-4) and len(full["losses"]) == 4
    expected, got = lora_weights(full_model), lora_weights(resumed_model)
    assert expected.keys() == got.keys() and all(torch.allclose(expected[k], got[k], atol=1e-5) for k in expected)


def test_unknown_field_fails_before_loading(tmp_path, no_model_loading):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("data: x.txt\nlearning_rat: 0.1\n")
    with pytest.raises(ConfigError, match=r"unknown field\(s\) \['learning_rat'\]"):
        parse_config(TrainConfig, ["--config", str(recipe)])


def test_missing_data_fails_before_loading(tmp_path, no_model_loading):
    with pytest.raises(FileNotFoundError, match="nope.txt: no such file"):
        train_module.train(TrainConfig(data=str(tmp_path / "nope.txt")))


def test_labels_that_disagree_with_the_data_fail_before_loading(conll_file, no_model_loading):
    with pytest.raises(DataError, match=rf"{conll_file}:1: label\(s\) \['MISC', 'ORG'\] not in the label set"):
        train_module.train(TrainConfig(data=str(conll_file), labels=["PER", "LOC"]))


def test_template_without_a_required_variable_fails_before_loading(conll_file, tmp_path, no_model_loading):
    template = tmp_path / "t.jinja"
    template.write_text("{#- instruct-ner\nresponse_format: entity_list\n-#}Find entities.")
    with pytest.raises(TemplateError, match=r"does not use the required variable\(s\) \['labels'\]"):
        train_module.train(TrainConfig(data=str(conll_file), template=str(template)))


def test_prepared_jsonl_prompts_must_match_the_rebuilt_ones(conll_file, tmp_path, no_model_loading):
    from instruct_ner.cli import main

    pairs = tmp_path / "pairs.jsonl"
    main(["prepare", "--data", str(conll_file), "--out", str(pairs), "--template", "ner-inline.en"])
    pairs_built, _, builder = training_pairs(TrainConfig(data=str(pairs)))
    assert builder.template.name == "ner-inline.en.v1" and pairs_built[0]["response"].startswith("[EU | ORG]")
    with pytest.raises(ConfigError, match="differs from what template"):
        training_pairs(TrainConfig(data=str(pairs), template="ner-list.it"))


def test_packing_and_merged_export(tiny_llama, conll_file, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = config_for(tiny_llama, conll_file, tmp_path, packing=True, max_steps=2, merge=True, learning_rate=1e-2)
    results, _, _ = run_training(config)
    assert results["steps"] == 2
    adapter = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llama), config.output_dir).eval()
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "adapter" / "merged").eval()
    base = AutoModelForCausalLM.from_pretrained(tiny_llama).eval()
    inputs = AutoTokenizer.from_pretrained(tmp_path / "adapter" / "merged")(
        ["EU rejects German call"], return_tensors="pt"
    )
    with torch.no_grad():
        expected, got = adapter(**inputs).logits, merged(**inputs).logits
        assert not torch.allclose(base(**inputs).logits, expected, atol=1e-3)  # the adapter changed something
    assert merged.dtype == torch.float32 and torch.allclose(got, expected, atol=1e-4)


def test_an_explicit_template_wins_over_the_prepared_records(conll_file, tmp_path, no_model_loading):
    """`--template ner-inline-compact.en` is train's default value, but given explicitly it is not replaced by the
    records'."""
    from instruct_ner.cli import main
    from instruct_ner.prompts.templates import TRAINING_TEMPLATE

    assert TRAINING_TEMPLATE == "ner-inline-compact.en"
    pairs = tmp_path / "pairs.jsonl"
    main(["prepare", "--data", str(conll_file), "--out", str(pairs), "--template", "ner-list.en"])
    implicit = parse_config(TrainConfig, ["--data", str(pairs)])
    assert training_pairs(implicit)[2].template.name == "ner-list.en.v1"
    explicit = parse_config(TrainConfig, ["--data", str(pairs), "--template", "ner-inline-compact.en"])
    before = dataclasses.asdict(explicit)
    with pytest.raises(ConfigError, match="differs from what template ner-inline-compact.en.v1"):
        training_pairs(explicit)
    training_pairs(implicit)
    assert dataclasses.asdict(explicit) == before and implicit.template == TRAINING_TEMPLATE  # configs not mutated


def test_training_defaults_to_the_inline_format_and_prompting_to_the_list(conll_file, tmp_path):
    """The learning curves' winner is what `prepare` and `train` build unless told; zero-shot `generate` keeps the
    long list template with label definitions."""
    from instruct_ner.cli import main
    from instruct_ner.inference.generate import GenerateConfig

    pairs = tmp_path / "pairs.jsonl"
    assert main(["prepare", "--data", str(conll_file), "--out", str(pairs)]) == 0
    record = json.loads(pairs.read_text(encoding="utf-8").splitlines()[0])
    assert record["template"] == "ner-inline-compact.en.v1" and record["response"].startswith("[EU | ORG] rejects")
    assert training_pairs(TrainConfig(data=str(conll_file)))[2].template.name == "ner-inline-compact.en.v1"
    assert GenerateConfig(data=str(conll_file), out=str(tmp_path / "out.jsonl")).template == "ner-list.en"


def test_warmup_ratio_reaches_the_scheduler(tiny_llama, conll_file, tmp_path):
    """warmup_ratio 0.5 of 4 steps: the learning rate rises for 2 steps, then decays."""
    from transformers import TrainerCallback

    rates = []

    class Rates(TrainerCallback):
        def on_step_end(self, args, state, control, optimizer=None, **kwargs):
            rates.append(optimizer.param_groups[0]["lr"])

    config = config_for(tiny_llama, conll_file, tmp_path, max_steps=4, warmup_ratio=0.5, learning_rate=1e-2)
    run_training(config, callbacks=[Rates()])
    assert rates[0] < rates[1] == pytest.approx(1e-2) and rates[1] > rates[2] > rates[3]
    with pytest.raises(ConfigError, match=r"warmup_ratio must be in \[0, 1\)"):
        config_for(tiny_llama, conll_file, tmp_path, warmup_ratio=1.0)


def trl_sequences(tiny_llama, pairs, tmp_path, max_length):
    """The training rows TRL's own SFTTrainer builds from `pairs` (the reference for our length count)."""
    import datasets
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    trainer = SFTTrainer(
        model=str(tiny_llama),
        args=SFTConfig(
            output_dir=str(tmp_path / "t"),
            completion_only_loss=True,
            report_to="none",
            use_cpu=True,
            max_length=max_length,
        ),
        train_dataset=datasets.Dataset.from_list([to_prompt_completion(p) for p in pairs]),
        processing_class=AutoTokenizer.from_pretrained(tiny_llama),
    )
    return list(trainer.train_dataset)


@pytest.mark.parametrize("style", ["instruction", "chat"])
def test_sequence_lengths_are_those_trl_trains_on(tiny_llama, conll_file, tmp_path, style):
    from transformers import AutoTokenizer

    pairs, _, _ = training_pairs(config_for(tiny_llama, conll_file, tmp_path, style=style))
    rows = trl_sequences(tiny_llama, pairs, tmp_path, max_length=None)
    expected = [
        (row["labels"].index(next(t for t in row["labels"] if t != -100)), len(row["input_ids"])) for row in rows
    ]
    assert train_module.sequence_lengths(pairs, AutoTokenizer.from_pretrained(tiny_llama)) == expected


def test_examples_cut_by_max_length_are_counted_and_named(tiny_llama, conll_file, tmp_path, capsys):
    """Regression: TRL cut over-long examples (147 of 240 of our large e-mails at the recipe's 512 tokens) and
    dropped those with no response left, without a word. Now the count, the longest and the sources are told,
    and the counts agree with what TRL's own trainer does to the same pairs."""
    from transformers import AutoTokenizer

    pairs, _, _ = training_pairs(config_for(tiny_llama, conll_file, tmp_path))
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    lengths = train_module.sequence_lengths(pairs, tokenizer)
    longest = max(n for _, n in lengths)
    assert train_module.report_overlong(pairs, tokenizer, longest) == 0 and capsys.readouterr().err == ""
    # the shortest example's length: some are cut; the longest prompt: that example loses its whole response
    for limit in (min(n for _, n in lengths), max(p for p, _ in lengths)):
        kept = trl_sequences(tiny_llama, pairs, tmp_path, max_length=limit)
        assert max(len(row["input_ids"]) for row in kept) <= limit
        cut = train_module.report_overlong(pairs, tokenizer, limit)
        assert cut == sum(n > limit for _, n in lengths) > 0
        err = capsys.readouterr().err
        assert f"{cut} of {len(pairs)} training examples are longer than max_length={limit}" in err
        assert f"longest {longest}" in err and pairs[[n for _, n in lengths].index(longest)]["source"] in err
        dropped = len(pairs) - len(kept)
        assert (f"and {dropped} with no response left are dropped" in err) == (dropped > 0)
    assert dropped > 0  # the second limit did drop one, and the warning said so


def test_micro_batches_are_the_largest_divisor_within_the_token_cap():
    for batch in range(1, 17):
        for accumulation in (1, 2, 3):
            for longest in (1, 7, 100, 991):
                for cap in (None, 1, 50, 700, 4000, 6144, 10**6):
                    micro, passes = train_module.micro_batches(batch, accumulation, longest, cap)
                    assert batch % micro == 0 and micro * passes == batch * accumulation  # the same examples a step
                    if cap is None or batch * longest <= cap:
                        assert (micro, passes) == (batch, accumulation)
                        continue
                    assert micro * longest <= cap or micro == 1
                    assert not [d for d in range(micro + 1, batch + 1) if batch % d == 0 and d * longest <= cap]


def test_max_batch_tokens_trains_as_the_same_micro_batches_set_by_hand(tiny_llama, conll_file, tmp_path, capsys):
    """A cap below batch x longest example splits each step; the run equals one with that split given explicitly
    (losses, step count), and differs from the unsplit one, so the split reached the trainer."""
    from transformers import AutoTokenizer

    common = dict(max_steps=3, per_device_train_batch_size=4, learning_rate=1e-2, max_length=1024)
    pairs, _, _ = training_pairs(config_for(tiny_llama, conll_file, tmp_path, **common))
    longest = max(n for _, n in train_module.sequence_lengths(pairs, AutoTokenizer.from_pretrained(tiny_llama)))
    capped, _, _ = run_training(
        config_for(tiny_llama, conll_file, tmp_path / "capped", max_batch_tokens=2 * longest + 1, **common)
    )
    assert f"the longest example has {longest} tokens, so batches of 4 run as 2 micro-batches of 2" in (
        capsys.readouterr().err
    )
    assert capped["micro_batch"] == 2 and capped["gradient_accumulation_steps"] == 2
    by_hand, _, _ = run_training(
        config_for(
            tiny_llama,
            conll_file,
            tmp_path / "hand",
            **{**common, "per_device_train_batch_size": 2},
            gradient_accumulation_steps=2,
        )
    )
    whole, _, _ = run_training(config_for(tiny_llama, conll_file, tmp_path / "whole", **common))
    assert capped["losses"] == pytest.approx(by_hand["losses"], rel=1e-5) and len(capped["losses"]) == 3
    assert whole["micro_batch"] == 4 and whole["losses"] != pytest.approx(capped["losses"], rel=1e-5)


def test_max_batch_tokens_must_be_positive(conll_file, no_model_loading):
    with pytest.raises(ConfigError, match="max_batch_tokens must be at least 1"):
        TrainConfig(data=str(conll_file), max_batch_tokens=0)


def test_packed_rows_count_max_length_against_the_token_cap(conll_file, no_model_loading, capsys):
    """Packing fills every row to max_length, so short examples still split under a cap that 8 full rows exceed;
    the same short examples unpacked fit whole."""
    short = [(3, 10)] * 20  # (prompt, prompt + response) tokens: 8 x 10 is far below the cap
    common = dict(data=str(conll_file), per_device_train_batch_size=8, max_length=64, max_batch_tokens=256)
    packed = train_module.fit_batches(TrainConfig(packing=True, **common), short)
    assert (packed.per_device_train_batch_size, packed.gradient_accumulation_steps) == (4, 2)  # 4 x 64 = 256
    assert "the longest example has 64 tokens" in capsys.readouterr().err
    unpacked = train_module.fit_batches(TrainConfig(**common), short)
    assert (unpacked.per_device_train_batch_size, unpacked.gradient_accumulation_steps) == (8, 1)
