"""The token classifier: bidirectional attention, the CRF against brute force, each head, save/reload."""

import itertools
import json
import warnings

import pytest
import torch

from conftest import DATA
from instruct_ner.config import ConfigError, parse_config
from instruct_ner.examples import Example, iob2_error
from instruct_ner.inference.tag import TagConfig, tag
from instruct_ner.inference.tagging import predict
from instruct_ner.sft.crf import CRF, constrained_decode
from instruct_ner.sft.tagger import encode_examples, load_tagger, set_attention, tag_names
from instruct_ner.sft.train_tagger import TaggerConfig, train_tagger


@pytest.mark.parametrize("attention", ["causal", "bidirectional"])
def test_attention_mode_decides_whether_earlier_positions_see_later_tokens(tiny_llama, attention):
    from transformers import AutoModel

    model = AutoModel.from_pretrained(tiny_llama).eval()
    set_attention(model, attention)
    ids = torch.tensor([[5, 17, 230, 41, 980, 77, 301, 12]])
    changed = ids.clone()
    j = 5
    changed[0, j] = 4242
    with torch.no_grad():
        before = model(input_ids=ids).last_hidden_state[0]
        after = model(input_ids=changed).last_hidden_state[0]
    earlier_moved = [not torch.allclose(before[i], after[i], atol=1e-6) for i in range(j)]
    if attention == "bidirectional":
        assert any(earlier_moved)
    else:
        assert not any(earlier_moved)


def test_bidirectional_attention_still_masks_padding(tiny_llama):
    from transformers import AutoModel

    model = AutoModel.from_pretrained(tiny_llama).eval()
    set_attention(model, "bidirectional")
    ids = torch.tensor([[5, 17, 230, 41]])
    padded = torch.tensor([[5, 17, 230, 41, 0, 0]])
    with torch.no_grad():
        alone = model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state[0]
        mask = torch.tensor([[1, 1, 1, 1, 0, 0]])
        with_pad = model(input_ids=padded, attention_mask=mask).last_hidden_state[0, :4]
    assert torch.allclose(alone, with_pad, atol=1e-5)


TAGS = ["O", "B-PER", "I-PER"]


def brute_force(crf, emissions, length):
    transitions, start, end = crf._scores()
    scores = {}
    for path in itertools.product(range(len(TAGS)), repeat=length):
        score = start[path[0]] + emissions[0, path[0]] + end[path[-1]]
        for t in range(1, length):
            score = score + transitions[path[t - 1], path[t]] + emissions[t, path[t]]
        scores[path] = score
    return scores


def test_crf_log_likelihood_and_viterbi_equal_brute_force():
    torch.manual_seed(0)
    crf = CRF(TAGS)
    with torch.no_grad():
        crf.transitions.normal_()
        crf.start.normal_()
        crf.end.normal_()
    emissions = torch.randn(2, 4, 3)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]], dtype=torch.bool)
    gold = torch.tensor([[1, 2, 0, 1], [0, 1, 2, 0]])
    log_likelihood = crf.log_likelihood(emissions, gold, mask)
    decoded = crf.decode(emissions, mask)
    for row, length in enumerate([4, 3]):
        scores = brute_force(crf, emissions[row], length)
        log_z = torch.logsumexp(torch.stack(list(scores.values())), 0)
        path = tuple(gold[row, :length].tolist())
        assert log_likelihood[row].item() == pytest.approx((scores[path] - log_z).item(), abs=1e-4)
        assert tuple(decoded[row]) == max(scores, key=lambda p: scores[p].item())
        assert iob2_error([TAGS[i] for i in decoded[row]]) is None


def test_constrained_decoding_never_opens_with_an_inside_tag():
    log_probs = torch.tensor([[[-5.0, -5.0, 0.0], [-5.0, -5.0, 0.0], [0.0, -5.0, -5.0]]])
    path = constrained_decode(log_probs, torch.ones(1, 3, dtype=torch.bool), TAGS)[0]
    assert iob2_error([TAGS[i] for i in path]) is None


def tagger_config(tiny_llama, data, tmp_path, **overrides):
    values = dict(
        model=str(tiny_llama),
        data=str(data),
        output_dir=str(tmp_path / "tagger"),
        precision="fp32",
        max_steps=4,
        per_device_train_batch_size=2,
        logging_steps=2,
        save_steps=100,
        lstm_hidden=16,
    )
    values.update(overrides)
    return TaggerConfig(**values)


@pytest.mark.parametrize(
    ("head", "loss", "attention"),
    [
        ("linear", "ce", "causal"),
        ("crf", "ce", "bidirectional"),
        ("crf", "compound", "bidirectional"),
        ("bilstm-crf", "compound", "causal"),
    ],
)
def test_each_head_trains_and_reloads_to_identical_predictions(
    tiny_llama, conll_file, tmp_path, head, loss, attention
):
    config = tagger_config(
        tiny_llama, conll_file, tmp_path, head=head, loss=loss, attention=attention, learning_rate=5e-3, max_steps=12
    )
    results, model, tokenizer = train_tagger(config)
    assert results["steps"] == 12 and all(torch.isfinite(torch.tensor(results["losses"])))
    assert sum(results["losses"][-3:]) < sum(results["losses"][:3])  # it learns
    examples = [
        Example("a", ["Peter", "Blair", "visits", "Rome"], ["O"] * 4),
        Example("b", ["EU", "rejects"], ["O"] * 2),
    ]
    before = predict(model, examples, tokenizer)
    reloaded, reloaded_tokenizer, saved = load_tagger(config.output_dir)
    assert saved.kind == "tagger" and saved.tagger["head"] == head and saved.tagger["attention"] == attention
    assert predict(reloaded, examples, reloaded_tokenizer) == before
    assert all(iob2_error(tags) is None and len(tags) == len(e.tokens) for tags, e in zip(before, examples))
    if head == "bilstm-crf":
        assert not any(p.requires_grad for p in model.backbone.parameters())


def test_tag_writes_the_generate_schema_and_refuses_other_labels(tiny_llama, conll_file, tmp_path):
    config = tagger_config(tiny_llama, conll_file, tmp_path, head="linear", loss="ce")
    train_tagger(config)
    out = tmp_path / "tagged.jsonl"
    figures = tag(
        TagConfig(adapter=config.output_dir, data=str(DATA / "conll_en" / "test.txt"), out=str(out), limit=5)
    )
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert figures["records"] == len(records) == 5
    assert set(records[0]) >= {"id", "tokens", "tags", "pred_tags", "entities", "timing"}
    other = tmp_path / "other.txt"
    other.write_text("Roma B-CITY\n")
    with pytest.raises(ConfigError, match=r"trained with labels \['LOC', 'MISC', 'ORG', 'PER'\]; .* \['CITY'\]"):
        tag(TagConfig(adapter=config.output_dir, data=str(other), out=str(tmp_path / "o.jsonl")))


def test_texts_longer_than_the_context_are_windowed_with_a_warning(tiny_llama):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    words = [f"word{i}" for i in range(300)]
    example = Example("long", words, ["B-PER"] + ["I-PER"] * 299)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        encoded = encode_examples([example], tokenizer, tag_names(["PER"]), max_length=64)
    assert len(encoded) > 1 and any("cut into windows" in str(w.message) for w in caught)
    assert sum(len(e.word_index) for e in encoded) == 300 and all(len(e.input_ids) <= 64 for e in encoded)


def test_tagger_resume_equals_an_uninterrupted_run(tiny_llama, conll_file, tmp_path):
    """The Trainer's resume, as SFT's: the same losses and weights as a run that was never stopped."""
    from test_sft import Steps, StopAt

    common = dict(max_steps=5, head="crf", loss="compound", learning_rate=5e-3)
    common.update(dropout=0.0, lora_dropout=0.0)  # no random draws, so that losses compare exactly
    full, full_model, _ = train_tagger(tagger_config(tiny_llama, conll_file, tmp_path / "full", **common))
    common.update(save_steps=1, save_total_limit=2)  # checkpoints of steps 1, 2, 3; the two newest are kept
    cut = train_tagger(tagger_config(tiny_llama, conll_file, tmp_path / "cut", **common), callbacks=[StopAt(3)])[0]
    assert cut["steps"] == 3
    folder = tmp_path / "cut" / "tagger"
    assert sorted(p.name for p in folder.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-3"]
    # a checkpoint keeps the trainable weights only: LoRA and the head, not the backbone
    from safetensors.torch import load_file

    kept = load_file(folder / "checkpoint-3" / "trainable.safetensors")
    trainable = {name for name, p in full_model.named_parameters() if p.requires_grad}
    assert set(kept) == trainable and any("lora_" in name for name in kept) and any("crf" in name for name in kept)
    steps = Steps()
    resumed, resumed_model, _ = train_tagger(
        tagger_config(tiny_llama, conll_file, tmp_path / "cut", resume="latest", **common), callbacks=[steps]
    )
    assert steps.taken == [4, 5]  # only what was left after the checkpoint of step 3
    # The same losses and weights as the run that was never stopped (optimizer, schedule and data order restored).
    assert resumed["losses"] == pytest.approx(full["losses"], rel=1e-4) and len(full["losses"]) == 5
    expected, got = full_model.state_dict(), resumed_model.state_dict()
    assert all(torch.allclose(expected[k], got[k], atol=1e-5) for k in expected)


def test_bilstm_crf_freezes_the_backbone_unless_told_otherwise(conll_file):
    assert TaggerConfig(data=str(conll_file), head="bilstm-crf").freeze_backbone is True
    assert TaggerConfig(data=str(conll_file), head="crf").freeze_backbone is False
    with pytest.raises(ConfigError, match="bilstm-crf reads a frozen backbone"):
        parse_config(TaggerConfig, ["--data", str(conll_file), "--head", "bilstm-crf", "--freeze_backbone", "false"])


def test_save_total_limit_must_keep_at_least_one_checkpoint(conll_file):
    with pytest.raises(ConfigError, match="save_total_limit must be at least 1"):
        TaggerConfig(data=str(conll_file), save_total_limit=0)


def test_compound_loss_needs_a_crf_head(conll_file):
    with pytest.raises(ConfigError, match="loss 'compound' needs a CRF head"):
        TaggerConfig(data=str(conll_file), head="linear", loss="compound")


@pytest.mark.parametrize(("head", "loss"), [("linear", "ce"), ("crf", "ce"), ("crf", "compound")])
def test_loss_is_torch_means_and_its_terms_add_up_across_parts_of_a_batch(tiny_llama, head, loss):
    """`loss` is what it was before the terms: torch's means over the batch. The terms' sums and denominators add
    up across parts of a batch padded apart (as processes under DDP share it) to the whole batch's means, which
    the mean of the parts' means is not when they hold different numbers of words."""
    from torch.nn import functional as F

    from instruct_ner.sft.tagger import TokenTagger, load_backbone
    from instruct_ner.sft.tagger_spec import IGNORE

    torch.manual_seed(0)
    backbone = load_backbone(str(tiny_llama), "fp32", "bidirectional")
    model = TokenTagger(backbone, ["PER", "LOC"], head, loss, class_weights=torch.tensor([0.5, 2, 1.5, 1, 3]))
    lengths = torch.tensor([1, 6, 3, 2])
    word_mask = torch.arange(6) < lengths.unsqueeze(1)
    emissions = torch.randn(4, 6, len(model.tags))
    labels = torch.tensor([0, 1, 3])[torch.randint(0, 3, (4, 6))].masked_fill(~word_mask, IGNORE)  # O, B-PER, B-LOC

    flat_emissions, flat_labels = emissions.reshape(-1, len(model.tags)), labels.reshape(-1)
    if model.crf is None:
        expected = F.cross_entropy(flat_emissions, flat_labels, ignore_index=IGNORE)
    else:
        crf_nll = -model.crf.log_likelihood(emissions, labels.clamp(min=0), word_mask).mean()
        expected = crf_nll
        if loss == "compound":
            weighted = F.cross_entropy(flat_emissions, flat_labels, weight=model.class_weights, ignore_index=IGNORE)
            smoothed = F.cross_entropy(flat_emissions, flat_labels, ignore_index=IGNORE, label_smoothing=0.1)
            expected = 0.5 * weighted + 0.3 * crf_nll + 0.2 * smoothed
    assert torch.equal(model.loss(emissions, labels, word_mask), expected)

    parts = [(slice(0, 1), 1), (slice(1, 4), 6)]  # 1 row of 1 word, 3 of 11: each padded to its own longest
    terms = [
        model.loss_terms(emissions[rows, :width], labels[rows, :width], word_mask[rows, :width])
        for rows, width in parts
    ]
    whole = sum(a.weight * (a.value + b.value) / (a.denominator + b.denominator) for a, b in zip(*terms))
    torch.testing.assert_close(whole, expected)
    halves = [
        model.loss(emissions[rows, :width], labels[rows, :width], word_mask[rows, :width]) for rows, width in parts
    ]
    assert not torch.allclose(sum(halves) / 2, expected, rtol=1e-3)
