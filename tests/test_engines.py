"""The engine choice without vLLM installed: the vLLM engine's rules for finishing a row (the same as our loop's,
checked on hand-made token ids), its one-line refusal where vLLM is missing, and `serve`'s command line. The tests
that run vLLM itself are tests/test_vllm.py (marker `vllm`, `make test-vllm`)."""

import importlib.util
import json

import pytest

from instruct_ner.cli import main
from instruct_ner.examples import Example
from instruct_ner.inference.decoding import DecodeOptions, TokenizedGenerator
from instruct_ner.inference.server import ServeConfig, adapter_name, repeated_flags, server_command
from instruct_ner.inference.vllm_engine import finish, lora_slot_rank, row_regex
from instruct_ner.sft.artifact import Artifact

HAS_VLLM = importlib.util.find_spec("vllm") is not None


@pytest.fixture(scope="module")
def generator(tokenizer_dir):
    from instruct_ner.sft.models import load_tokenizer

    options = DecodeOptions("entity_list", ["LOC", "PER"], stop_runaway=True, constrain=False)
    return TokenizedGenerator(load_tokenizer(str(tokenizer_dir)), "chat", options)


def ids(generator, text: str) -> list[int]:
    return generator.tokenizer(text, add_special_tokens=False)["input_ids"]


EXAMPLE = Example("1", ["Rome", "and", "Paris"], ["B-LOC", "O", "B-LOC"])


def test_a_row_ends_at_its_first_end_of_turn_token(generator):
    tokens = ids(generator, "Rome | LOC") + [generator.eos_ids[0]] + ids(generator, "junk")
    assert finish(generator, tokens, EXAMPLE, 50, True) == (
        "Rome | LOC",
        len(ids(generator, "Rome | LOC")),
        False,
        False,
    )


def test_a_row_at_its_bound_says_so(generator):
    tokens = ids(generator, "Rome | LOC\nParis | LOC")
    text, new, hit_limit, _ = finish(generator, tokens, EXAMPLE, 3, True)
    assert (new, hit_limit) == (3, True) and text == generator.tokenizer.decode(tokens[:3]).strip()


@pytest.mark.parametrize("constrain", [False, True])
def test_the_runaway_line_is_kept_unconstrained_and_dropped_constrained(generator, constrain):
    """Unconstrained, as our loop: stop after the line listing Rome a second time (kept for the parser to count);
    constrained: before it, since our constraint would never have written it."""
    generator.options.constrain = constrain
    try:
        tokens = ids(generator, "Rome | LOC\nRome | PER\nParis | LOC")
        text, _, hit_limit, stopped = finish(generator, tokens, EXAMPLE, 100, True)
    finally:
        generator.options.constrain = False
    assert stopped and not hit_limit
    assert text == ("Rome | LOC" if constrain else "Rome | LOC\nRome | PER")


def test_the_instruction_style_ends_its_regex_like_its_stop_string():
    import re

    options = DecodeOptions("entity_list", ["LOC"])
    assert re.fullmatch(row_regex(options, "instruction", EXAMPLE), "Rome | LOC\n###")
    assert not re.fullmatch(row_regex(options, "chat", EXAMPLE), "Rome | LOC\n###")


def test_lora_slots_and_repeated_adapter_flags():
    assert [lora_slot_rank(r) for r in ([], [4], [8, 16], [17])] == [8, 8, 16, 32]
    argv = ["--adapter", "a", "--port", "9", "--adapter", "b", "c"]
    assert repeated_flags(argv) == ["--adapter", "a", "b", "c", "--port", "9"]


@pytest.mark.skipif(HAS_VLLM, reason="vLLM is installed here; the refusal is for installs without it")
def test_engine_vllm_without_vllm_is_one_line(conll_file, tmp_path, capsys):
    out = tmp_path / "p.jsonl"
    code = main(["generate", "--data", str(conll_file), "--out", str(out), "--engine", "vllm", "--model", "x/y"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "make install-vllm" in err and not out.exists()


def fake_adapter(folder, rank: int, model: str):
    from instruct_ner.prompts.templates import PromptBuilder, load_template
    from instruct_ner.sft.models import model_reference

    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"r": rank}), encoding="utf-8")
    builder = PromptBuilder(load_template("ner-list-compact.en"), ["LOC", "PER"], "chat", {})
    Artifact("generative", ["LOC", "PER"], model_reference(model), "fp32", prompt=builder.to_dict()).save(folder)
    return folder


def test_serve_command_names_each_adapter_by_its_folder(tiny_llama, tmp_path):
    one, two = (
        fake_adapter(tmp_path / "conll", 4, str(tiny_llama)),
        fake_adapter(tmp_path / "mail", 16, str(tiny_llama)),
    )
    command = server_command(ServeConfig(adapter=[str(one), str(two)], precision="fp32"), python="py")
    assert command[:3] == ["py", "-m", "vllm.entrypoints.openai.api_server"]
    assert command[command.index("--lora-modules") + 1 :] == [f"conll={one.resolve()}", f"mail={two.resolve()}"]
    assert (
        command[command.index("--max-lora-rank") + 1] == "16" and command[command.index("--host") + 1] == "127.0.0.1"
    )
    assert command[command.index("--dtype") + 1] == "float32" and adapter_name(f"{one}/") == "conll"


def test_on_a_cpu_vllm_gets_a_bounded_kv_cache_unless_the_user_sizes_it(tiny_llama, tmp_path, monkeypatch):
    """vLLM's CPU backend would otherwise reserve 92% of memory and refuse to start beside other processes."""
    one = fake_adapter(tmp_path / "conll", 4, str(tiny_llama))
    config = ServeConfig(adapter=[str(one)], precision="fp32")
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    command = server_command(config, python="py")
    assert command[command.index("--kv-cache-memory-bytes") + 1] == str(2 * 2**30)
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "4")  # the user's own setting: vLLM reads it, we add nothing
    assert "--kv-cache-memory-bytes" not in server_command(config, python="py")
