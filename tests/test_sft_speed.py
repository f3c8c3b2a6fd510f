"""Training-speed options of generative SFT change the cost, never the loss: padding-free (packed) batches,
length grouping's sampler, the completion-only LM head. Compared against plain padded training."""

import pytest
import torch

from instruct_ner.sft.train import TrainConfig, completion_only_lm_head, run_training


def losses(tiny_llama, data, tmp_path, name, **speed):
    config = TrainConfig(
        model=str(tiny_llama),
        data=str(data),
        output_dir=str(tmp_path / name),
        precision="fp32",
        max_steps=3,
        per_device_train_batch_size=4,
        logging_steps=1,
        save_steps=100,
        learning_rate=1e-2,
        style="chat",
        lora_dropout=0.0,  # dropout masks depend on the batch shape; without it the two must match exactly
    )
    for key, value in speed.items():
        setattr(config, key, value)
    return torch.tensor(run_training(config)[0]["losses"])


def test_packed_and_padded_batches_give_the_same_losses(tiny_llama, conll_file, tmp_path):
    """Padding-free: one flattened row, position_ids restarting per example; transformers' masking_utils turns
    them into a block-diagonal causal mask for sdpa on CPU, so every step's loss equals the padded batch's."""
    padded = losses(tiny_llama, conll_file, tmp_path, "padded", padding_free=False, completion_only_lm_head=False)
    packed = losses(tiny_llama, conll_file, tmp_path, "packed", padding_free=True, completion_only_lm_head=False)
    assert len(padded) == 3 and not torch.equal(padded[0], padded[-1])  # it trains
    torch.testing.assert_close(packed, padded, rtol=1e-4, atol=1e-5)


def test_completion_only_lm_head_gives_the_same_losses(tiny_llama, conll_file, tmp_path):
    full = losses(tiny_llama, conll_file, tmp_path, "full", completion_only_lm_head=False)
    compact = losses(tiny_llama, conll_file, tmp_path, "compact", completion_only_lm_head=True)
    torch.testing.assert_close(compact, full, rtol=1e-4, atol=1e-5)


def test_packed_sequences_attend_only_within_their_example(tiny_llama):
    """The model-level fact the above rests on: two examples flattened into one row with restarting position_ids
    give each token the log-probabilities it gets alone."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama, attn_implementation="sdpa").eval()
    a, b = torch.tensor([[5, 17, 230, 9, 44]]), torch.tensor([[71, 8, 2001]])
    with torch.no_grad():
        alone = [model(input_ids=x).logits[0] for x in (a, b)]
        flat = torch.cat([a, b], 1)
        positions = torch.cat([torch.arange(5), torch.arange(3)])[None]
        packed = model(input_ids=flat, position_ids=positions, use_cache=False).logits[0]  # a cache hides packing
    torch.testing.assert_close(packed, torch.cat(alone), rtol=1e-4, atol=1e-4)


def test_completion_only_lm_head_restores_trl():
    from trl.trainer import utils as trl_utils

    original = trl_utils._use_triton
    with completion_only_lm_head() as active:
        assert active and trl_utils._use_triton(torch.device("cpu"))
    assert trl_utils._use_triton is original
    with completion_only_lm_head(False) as active:
        assert not active and trl_utils._use_triton is original


@pytest.mark.parametrize("strategy", ["group_by_length"])
def test_length_grouping_is_the_default(tmp_path, strategy):
    from instruct_ner.sft.train import sft_config

    config = TrainConfig(data="x.txt", output_dir=str(tmp_path))
    args = sft_config(config, False, "fp32")
    assert getattr(args, "train_sampling_strategy", None) == strategy or getattr(args, "group_by_length", False)
