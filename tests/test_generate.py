"""Generation: the pipeline with a fake generator, resume, errors before generation, and real batched decoding."""

import json

import pytest

from conftest import DATA
from instruct_ner.config import ConfigError
from instruct_ner.examples import DataError
from instruct_ner.inference import generate as generate_module
from instruct_ner.inference.generate import (
    DecodeOptions,
    GenerateConfig,
    Generated,
    Generator,
    HFGenerator,
    RunawayGuard,
    generate,
    runaway_line,
)
from instruct_ner.inference.generate import run_generation as run_file
from instruct_ner.inference.predictor import GenerativePredictor, RunOptions
from instruct_ner.prompts.formats import get_format
from instruct_ner.prompts.readers import load_examples
from instruct_ner.prompts.templates import PromptBuilder, load_template
from instruct_ner.sft.models import ModelError

TEST_FILE = DATA / "conll_en" / "test.txt"


class FakeGenerator(Generator):
    """Answers each prompt with a canned response (the gold one unless told otherwise) and counts calls."""

    def __init__(self, answers: dict[str, str]):
        self.answers, self.calls, self.batches = answers, 0, []

    def generate(self, prompts, limits, examples=None):
        self.examples = examples
        self.calls += len(prompts)
        self.batches.append(len(prompts))
        return [Generated(self.answer(p), 3, 10, False) for p in prompts]

    def answer(self, prompt):
        return next((answer for text, answer in self.answers.items() if f"### Input:\n{text}\n" in prompt), "none")


def setup(limit=None):
    examples, _ = load_examples(TEST_FILE)
    examples = examples[:limit] if limit else examples
    builder = PromptBuilder(load_template("ner-list.en"), ["LOC", "MISC", "ORG", "PER"])
    gold = {e.text: get_format("entity_list").render(e) for e in examples}
    return [e.to_record() for e in examples], examples, builder, gold


def run_generation(records, examples, builder, generator, out, resume=False, on_chunk=None, **options):
    predictor = GenerativePredictor(builder, generator)
    return run_file(predictor, records, examples, out, RunOptions(on_chunk=on_chunk, **options), resume)


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def without_timing(records):
    return [{k: v for k, v in r.items() if k != "timing"} for r in records]


def test_records_out_equal_records_in_in_input_order(tmp_path):
    records, examples, builder, gold = setup()
    answers = dict(gold)
    answers[examples[3].text] = "Atlantis | LOC\nsomething odd"  # a hallucination and a malformed line
    generator = FakeGenerator(answers)
    figures = run_generation(records, examples, builder, generator, tmp_path / "p.jsonl", batch_size=5)
    out = read(tmp_path / "p.jsonl")
    assert [r["id"] for r in out] == [r["id"] for r in records] and figures["records"] == len(records)
    assert generator.calls == len(records) and max(generator.batches) == 5
    assert all(r["pred_tags"] == r["tags"] for k, r in enumerate(out) if k != 3)
    assert out[3]["parse"]["hallucinated"] == 1 and out[3]["parse"]["malformed"] == 1  # ended normally: not truncated
    assert set(out[0]) >= {"generation", "entities", "pred_tags", "parse", "timing", "prompt", "labels"}


def test_resume_after_an_interruption_equals_an_uninterrupted_run(tmp_path):
    records, examples, builder, gold = setup()
    run_generation(records, examples, builder, FakeGenerator(gold), tmp_path / "full.jsonl", batch_size=2)

    def interrupt(written):
        raise KeyboardInterrupt

    partial = tmp_path / "partial.jsonl"
    with pytest.raises(KeyboardInterrupt):
        run_generation(records, examples, builder, FakeGenerator(gold), partial, batch_size=2, on_chunk=interrupt)
    assert len(read(partial)) == 2  # written batch by batch: an interrupt loses at most the batch in flight
    with open(partial, "a") as handle:
        handle.write('{"id": "torn')  # a line cut by the crash
    resumed = FakeGenerator(gold)
    run_generation(records, examples, builder, resumed, partial, batch_size=2, resume=True)
    assert resumed.calls == len(records) - 2
    assert without_timing(read(partial)) == without_timing(read(tmp_path / "full.jsonl"))


def test_resume_refuses_an_output_of_another_input(tmp_path):
    records, examples, builder, gold = setup(limit=4)
    out = tmp_path / "p.jsonl"
    out.write_text(json.dumps({"id": "other"}) + "\n")
    with pytest.raises(DataError, match=rf"{out}:1: --resume: this output does not match the input"):
        run_generation(records, examples, builder, FakeGenerator(gold), out, resume=True)


@pytest.fixture
def no_generation(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("generation started before the inputs were checked")

    monkeypatch.setattr(generate_module, "load_predictor", refuse)
    monkeypatch.setattr(generate_module, "run_generation", refuse)


def fake_adapter(tmp_path, labels=("LOC", "MISC", "ORG", "PER"), template="ner-list.en"):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    builder = PromptBuilder(load_template(template), list(labels))
    saved = {"prompt": builder.to_dict(), "labels": list(labels), "base_model": "embedded"}
    (adapter / "instruct_ner.json").write_text(json.dumps(saved))
    return adapter


def test_missing_model_path_fails_before_generation(tmp_path, no_generation):
    with pytest.raises(ModelError, match="nowhere/model: model folder not found"):
        generate(GenerateConfig(data=str(TEST_FILE), out=str(tmp_path / "o.jsonl"), model="./nowhere/model"))


def test_missing_adapter_fails_before_generation(tmp_path, no_generation):
    with pytest.raises(ModelError, match="no-adapter: adapter folder not found"):
        generate(
            GenerateConfig(data=str(TEST_FILE), out=str(tmp_path / "o.jsonl"), adapter=str(tmp_path / "no-adapter"))
        )


def test_adapter_with_another_label_set_fails_before_generation(tmp_path, no_generation):
    adapter = fake_adapter(tmp_path, labels=["PER", "LOC"])
    with pytest.raises(ConfigError, match=r"trained with labels \['PER', 'LOC'\]; the data .* has \['MISC', 'ORG'\]"):
        generate(GenerateConfig(data=str(TEST_FILE), out=str(tmp_path / "o.jsonl"), adapter=str(adapter)))


def test_adapter_with_another_template_fails_before_generation(tmp_path, no_generation):
    adapter = fake_adapter(tmp_path, template="ner-inline.en")
    with pytest.raises(ConfigError, match="trained with template ner-inline.en.v1, not ner-list.it.v1"):
        generate(
            GenerateConfig(
                data=str(TEST_FILE), out=str(tmp_path / "o.jsonl"), adapter=str(adapter), template="ner-list.it"
            )
        )


def test_empty_input_fails_before_generation(tmp_path, no_generation):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    with pytest.raises(DataError, match=rf"{empty}: no records to predict for \(empty input\)"):
        generate(GenerateConfig(data=str(empty), out=str(tmp_path / "o.jsonl")))


def test_few_shot_needs_a_separate_pool(tmp_path, no_generation):
    with pytest.raises(ConfigError, match="--few_shot needs --few_shot_from"):
        generate(GenerateConfig(data=str(TEST_FILE), out=str(tmp_path / "o.jsonl"), few_shot=2))


@pytest.mark.parametrize("style", ["instruction", "chat"])
def test_batched_greedy_equals_one_at_a_time(tiny_llama, style):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_llama).eval()
    generator = HFGenerator(model, AutoTokenizer.from_pretrained(tiny_llama), style, share_prefix=False)
    _, examples, _, _ = setup(limit=5)
    builder = PromptBuilder(load_template("ner-list.en"), ["LOC", "MISC", "ORG", "PER"], style=style)
    prompts = [p.get("prompt", p.get("messages")) for p in map(builder.build, examples)]
    assert len({generator.prompt_length(p) for p in prompts}) > 1  # left padding is exercised
    batched = generator.generate(prompts, [12] * len(prompts))
    single = [generator.generate([p], [12])[0] for p in prompts]
    assert [b.text for b in batched] == [s.text for s in single]
    assert [b.new_tokens for b in batched] == [s.new_tokens for s in single]


@pytest.mark.parametrize("style", ["instruction", "chat"])
def test_shared_prefix_cache_gives_the_same_output(tiny_llama, style):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_llama).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    _, examples, _, _ = setup(limit=6)
    builder = PromptBuilder(load_template("ner-list.en"), ["LOC", "MISC", "ORG", "PER"], style=style)
    prompts = [p.get("prompt", p.get("messages")) for p in map(builder.build, examples)]
    plain = HFGenerator(model, tokenizer, style, share_prefix=False).generate(prompts, [12] * 6)
    shared = HFGenerator(model, tokenizer, style, share_prefix=True)
    shared.prepare(prompts)
    assert shared.prefix_ids is not None and len(shared.prefix_ids) > 100  # the whole instruction is shared
    assert [g.text for g in shared.generate(prompts[:4], [12] * 4)] == [g.text for g in plain[:4]]
    assert [g.text for g in shared.generate(prompts[4:], [12] * 2)] == [g.text for g in plain[4:]]


@pytest.mark.parametrize(
    "response, source, runaway",
    [
        ("Japan | LOC\nSyria | LOC\n", "Japan beat Syria .", False),
        ("Japan | LOC\nJapan | LOC\n", "Japan beat Syria .", True),  # listed more often than it occurs
        ("Japan | LOC\nJapan | LOC\n", "Japan beat Japan B .", False),
        ("Bolton | LOC\n", "Japan beat Syria .", True),  # not in the text: invented
        ("JAPAN|LOC\n", "Japan beat Syria .", False),  # case and spacing do not matter
        ("Japan | LOC\nBolt", "Japan beat Syria .", False),  # the line being written is not judged
        ("none\n", "Japan beat Syria .", False),
        ("", "Japan beat Syria .", False),
    ],
)
def test_runaway_line(response, source, runaway):
    assert runaway_line(response, source) is runaway


def test_runaway_guard_stops_a_looping_row_at_the_line_that_loops(tokenizer_dir):
    """The loop SmolLM2 fell into on CoNLL-2003 test: `Bolton` is nowhere in the text."""
    import torch
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    source = "China controlled most of the match until Uzbek striker Igor Shkvyrin scored ."
    response = "China | LOC\nIgor Shkvyrin | PER\nBolton | LOC\nIzmir | LOC\nBolton | LOC\n"
    prompt = tokenizer("Text: " + source + "\nAnswer:\n")["input_ids"]
    new = tokenizer(response, add_special_tokens=False)["input_ids"]
    guard = RunawayGuard(tokenizer, [source, source], len(prompt))
    fired = []
    for step in range(1, len(new) + 1):
        ids = torch.tensor([prompt + new[:step], prompt + [tokenizer.pad_token_id] * step])
        fired.append(bool(guard(ids, None)[0]))
    assert tokenizer.decode(new[: guard.stopped_at[0]]) == "China | LOC\nIgor Shkvyrin | PER\nBolton | LOC\n"
    assert fired.index(True) == guard.stopped_at[0] - 1 and all(fired[fired.index(True) :])
    assert guard.stopped_at[1] is None


def test_the_guard_only_cuts_generation_short(tiny_llama):
    """Greedy decoding with the guard gives a prefix of the unguarded output, ending at a runaway line."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_llama).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    free_generator = HFGenerator(model, tokenizer, "instruction", False, DecodeOptions(stop_runaway=False))
    generator = HFGenerator(model, tokenizer, "instruction", share_prefix=False)
    _, examples, _, _ = setup(limit=5)
    builder = PromptBuilder(load_template("ner-list.en"), ["LOC", "MISC", "ORG", "PER"])
    prompts = [builder.build(e)["prompt"] for e in examples]
    sources = [e.text for e in examples]
    free = free_generator.generate(prompts, [40] * 5, examples)
    guarded = generator.generate(prompts, [40] * 5, examples)
    for f, g, source in zip(free, guarded, sources):
        assert f.text.startswith(g.text) and g.new_tokens <= f.new_tokens
        if g.stopped_runaway:
            assert runaway_line(g.text + "\n", source) and not g.hit_limit


def test_the_guard_is_for_entity_lists_only():
    assert DecodeOptions("entity_list").guarded and not DecodeOptions("inline").guarded
    assert not DecodeOptions("entity_list", stop_runaway=False).guarded


def test_every_batch_gets_its_examples(tmp_path):
    records, examples, builder, _ = setup(limit=3)
    generator = FakeGenerator({})
    run_generation(records, examples, builder, generator, tmp_path / "o.jsonl")
    assert sorted(e.text for e in generator.examples) == sorted(e.text for e in examples)  # one batch


def saved_adapter(tmp_path, **saved):
    """A fake adapter folder whose description also holds `saved` (base_model, precision, ...)."""
    adapter = fake_adapter(tmp_path)
    description = json.loads((adapter / "instruct_ner.json").read_text())
    (adapter / "instruct_ner.json").write_text(json.dumps({**description, **saved}))
    return adapter


@pytest.mark.parametrize(
    "given, expected",
    [
        ({}, ("tiny/base", "fp32")),  # left out: the saved values
        ({"precision": "auto"}, ("tiny/base", "auto")),  # the default value, given explicitly: it wins
        ({"precision": "auto", "model": "other/model"}, ("other/model", "auto")),
        ({"precision": "bf16"}, ("tiny/base", "bf16")),
    ],
)
def test_explicit_options_win_over_the_adapter_alike_from_python_the_cli_and_the_api(
    tmp_path, monkeypatch, given, expected
):
    """`GenerateConfig(precision="auto")`, `--precision auto` and `NER.from_pretrained(precision="auto")` all
    load `auto` against an adapter saved at fp32; an option left out takes the saved value in all three."""
    from instruct_ner import NER
    from instruct_ner.config import parse_config
    from instruct_ner.sft.artifact import Artifact

    adapter = saved_adapter(tmp_path, base_model="tiny/base", precision="fp32")
    loaded = []

    def fake_load(builder, model, adapter, precision, *args, **kwargs):
        loaded.append((model, precision))

    monkeypatch.setattr(GenerativePredictor, "load", fake_load)
    base = {"data": str(TEST_FILE), "out": "o.jsonl", "adapter": str(adapter)}
    python = GenerateConfig(**base, **given)
    cli = parse_config(GenerateConfig, [f"--{name}={value}" for name, value in {**base, **given}.items()])
    artifact = Artifact.load(adapter)
    chosen = [generate_module.model_options(config, artifact) for config in (python, cli)]
    assert chosen[0] == chosen[1] == {"model": expected[0], "precision": expected[1]}
    builder = artifact.builder()
    generate_module.load_predictor(python, builder)
    generate_module.load_predictor(cli, builder, artifact)
    NER.from_pretrained(adapter, **given)
    assert loaded == [expected] * 3


@pytest.fixture
def fake_loading(monkeypatch):
    """GenerativePredictor.load gives a predictor with a FakeGenerator (gold answers for the test file)."""
    examples, _ = load_examples(TEST_FILE)
    gold = {e.text: get_format("entity_list").render(e) for e in examples}

    def fake_load(builder, model, adapter, precision, *args, **kwargs):
        return GenerativePredictor(builder, FakeGenerator(gold), adapter)

    monkeypatch.setattr(GenerativePredictor, "load", fake_load)


def test_generate_reads_the_adapters_description_once_per_run(tmp_path, monkeypatch, fake_loading):
    from instruct_ner.sft.artifact import Artifact

    adapter = saved_adapter(tmp_path, base_model="tiny/base", precision="fp32")
    loads = []
    original = Artifact.load.__func__

    def counted(cls, folder, kind=None):
        loads.append(str(folder))
        return original(cls, folder, kind)

    monkeypatch.setattr(Artifact, "load", classmethod(counted))
    out = tmp_path / "o.jsonl"
    config = GenerateConfig(data=str(TEST_FILE), out=str(out), adapter=str(adapter), limit=5, progress=False)
    assert generate(config)["records"] == 5
    assert loads == [str(adapter)]
    assert json.loads(out.with_name("o.jsonl.settings.json").read_text())["precision"] == "fp32"  # the saved one


@pytest.mark.parametrize("sort_by_length", [True, False])
def test_a_prompt_is_rendered_once_per_example_per_run(tmp_path, monkeypatch, sort_by_length):
    records, examples, builder, gold = setup()
    rendered = []
    original = PromptBuilder.build

    def counted(self, example):
        rendered.append(example.id)
        return original(self, example)

    monkeypatch.setattr(PromptBuilder, "build", counted)
    predictor = GenerativePredictor(builder, FakeGenerator(gold))
    options = RunOptions(batch_size=2, sort_by_length=sort_by_length)
    assert predictor.start(records, examples, options).order != sorted(range(len(examples))) or not sort_by_length
    rendered.clear()
    run_file(predictor, records, examples, tmp_path / "o.jsonl", options)
    assert sorted(rendered) == sorted(e.id for e in examples)  # each example once
    rendered.clear()
    assert [r["id"] for r in predictor.predict(examples, options=options)] == [e.id for e in examples]
    assert sorted(rendered) == sorted(e.id for e in examples)


def test_the_generator_leaves_the_callers_tokenizer_alone(tiny_llama):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    tokenizer.padding_side = "right"
    generator = HFGenerator(AutoModelForCausalLM.from_pretrained(tiny_llama).eval(), tokenizer, "instruction", False)
    generator.generate(["### Input:\nEU rejects\n", "### Input:\nPeter Blair visits Rome today\n"], [3, 3])
    assert tokenizer.padding_side == "right"
