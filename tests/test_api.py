"""The Python API on folders trained from a tiny Llama: the README snippet, exact offsets, input order,
empty texts, agreement with the CLI (`generate`, `tag`, `score`), and a light `import instruct_ner`."""

import json
import subprocess
import sys

import pytest

from conftest import DATA
from instruct_ner import NER, Entity, score
from instruct_ner.inference.decoding import Generated, Generator
from instruct_ner.inference.predictor import GenerativePredictor
from instruct_ner.prompts.templates import PromptBuilder, load_template

TEST_FILE = DATA / "conll_en" / "test.txt"
TEXTS = [
    "EU rejects German call to boycott British lamb .",
    "",
    "Peter Blair visits  Rome,\tthen Paris.",
    "   ",
    "Rome and Paris",
]


def check_entities(texts, predicted):
    assert len(predicted) == len(texts)
    for text, entities in zip(texts, predicted):
        assert all(isinstance(e, Entity) for e in entities)
        assert all(text[e.start : e.end] == e.text for e in entities)  # offsets exact
        assert [e.start for e in entities] == sorted(e.start for e in entities)
        if not text.strip():
            assert entities == []


@pytest.mark.parametrize("kind", [pytest.param("generative", marks=pytest.mark.slow), "tagger"])
def test_the_readme_snippet_on_each_kind_of_folder(kind, adapter, tagger, capsys, tmp_path):
    from instruct_ner.cli import main

    folder = adapter if kind == "generative" else tagger
    ner = NER.from_pretrained(folder)
    assert ner.kind == kind and ner.labels == ["LOC", "MISC", "ORG", "PER"]
    predicted = ner.predict(TEXTS, batch_size=2)
    check_entities(TEXTS, predicted)
    assert predicted[2] == ner.predict_entities(TEXTS[2])  # input order kept, batching changes nothing
    assert ner.predict_entities("") == [] and ner.predict([]) == []
    # The API and the CLI run the same predictor: same entities, same scores.
    out = tmp_path / "cli.jsonl"
    command = "generate" if kind == "generative" else "tag"
    assert main([command, "--adapter", str(folder), "--data", str(TEST_FILE), "--limit", "3", "--out", str(out)]) == 0
    cli = [json.loads(line) for line in out.read_text().splitlines()]
    api = ner.predict([record["text"] for record in cli])
    assert [[e.to_dict() for e in entities] for entities in api] == [record["entities"] for record in cli]
    assert ner.evaluate(TEST_FILE, limit=3)["micro"] == score(out)["micro"]
    capsys.readouterr()


class Canned(Generator):
    """Answers every prompt about a text with the response given for that text."""

    def __init__(self, answers):
        self.answers = answers

    def generate(self, prompts, limits, examples=None):
        return [Generated(self.answers.get(e.text, "none"), 1, 1, False) for e in examples]


def test_offsets_are_exact_on_irregular_spacing_and_order_is_kept():
    builder = PromptBuilder(load_template("ner-list.en"), ["LOC", "PER"])
    answers = {TEXTS[2]: "Peter Blair | PER\nRome | LOC\nParis | LOC", TEXTS[4]: "Rome | LOC\nParis | LOC"}
    ner = NER(GenerativePredictor(builder, Canned(answers)), batch_size=1)
    predicted = ner.predict(TEXTS)
    check_entities(TEXTS, predicted)
    assert [(e.text, e.label, e.start, e.end) for e in predicted[2]] == [
        ("Peter Blair", "PER", 0, 11),
        ("Rome", "LOC", 20, 24),
        ("Paris", "LOC", 31, 36),
    ]
    assert [e.text for e in predicted[4]] == ["Rome", "Paris"] and predicted[0] == predicted[1] == []


def test_import_is_light():
    code = "import sys, instruct_ner; from instruct_ner import NER; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_score_of_tag_lists():
    assert score([["B-PER", "O"]], gold=[["B-PER", "O"]])["micro"]["f1"] == 1.0


def test_resume_refuses_an_adapter_retrained_in_place(adapter, tmp_path, capsys):
    """Same path, other weights: `generate --resume` must not append the new model's predictions to the old's."""
    import shutil

    from safetensors.torch import load_file, save_file

    from instruct_ner.cli import main

    folder = tmp_path / "adapter"
    shutil.copytree(adapter, folder)
    out = tmp_path / "out.jsonl"
    args = ["generate", "--adapter", str(folder), "--data", str(TEST_FILE), "--out", str(out), "--limit", "3"]
    assert main(args) == 0
    full = out.read_text()
    assert main([*args, "--resume", "true"]) == 0 and out.read_text() == full  # the same weights resume
    weights = folder / "adapter_model.safetensors"
    save_file({k: v + 1e-3 for k, v in load_file(weights).items()}, weights)  # "retrained" in place
    capsys.readouterr()
    assert main([*args, "--resume", "true"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert "adapter_fingerprint was" in error[-1] and "--resume" in error[-1]
    assert out.read_text() == full


def test_evaluate_out_writes_input_order_and_compare_takes_it_beside_generate(tiny_llama, tmp_path, capsys):
    """A prompted tiny Llama: `NER.evaluate(out=F)` and `instruct-ner generate` on the same data give files
    `compare` accepts (the same records in the same order), though generation runs in length order."""
    from instruct_ner.cli import main
    from instruct_ner.inference.predictor import RunOptions
    from instruct_ner.jsonl import read_records
    from instruct_ner.prompts.readers import load_examples

    labels, limit = ["LOC", "MISC", "ORG", "PER"], 8
    ner = NER.zero_shot(labels, model=str(tiny_llama), template="ner-list.en", style="instruction", batch_size=2)
    examples = load_examples(TEST_FILE)[0][:limit]
    run = ner.predictor.start([e.to_record() for e in examples], examples, RunOptions(batch_size=2))
    assert run.order != sorted(run.order)  # length order differs from input order: the test can fail
    api_out, cli_out = tmp_path / "api.jsonl", tmp_path / "cli.jsonl"
    ner.evaluate(TEST_FILE, out=api_out, limit=limit)
    argv = ["generate", "--model", str(tiny_llama), "--data", str(TEST_FILE), "--limit", str(limit)]
    argv += ["--labels", *labels, "--template", "ner-list.en", "--style", "instruction", "--batch_size", "2"]
    assert main([*argv, "--out", str(cli_out), "--progress", "false"]) == 0
    ids = [e.id for e in examples]
    assert [r["id"] for r in read_records(api_out)] == [r["id"] for r in read_records(cli_out)] == ids
    assert main(["compare", str(api_out), str(cli_out), "--output_dir", str(tmp_path / "report")]) == 0
    capsys.readouterr()


def test_entities_are_entity_objects_and_dicts_only_in_files(tmp_path):
    """Results and output records hold `Entity` objects; a file written by `evaluate` holds their dicts."""
    from instruct_ner.inference.predictor import input_records
    from instruct_ner.prompts.readers import ReaderOptions

    builder = PromptBuilder(load_template("ner-list.en"), ["LOC", "MISC", "ORG", "PER"])
    texts = ["EU rejects German call"]
    answers = {texts[0]: "EU | ORG\nGerman | MISC"}
    predictor = GenerativePredictor(builder, Canned(answers))
    ner = NER(predictor, batch_size=1)
    predicted = ner.predict(texts)[0]
    assert predicted == [Entity("ORG", 0, 1, 0, 2, "EU"), Entity("MISC", 2, 3, 11, 17, "German")]
    data = tmp_path / "data.jsonl"
    record = {"id": "a", "tokens": texts[0].split(), "tags": ["B-ORG", "O", "B-MISC", "O"]}
    data.write_text(json.dumps(record) + "\n")
    records, examples = input_records(data, ReaderOptions())
    outputs = predictor.predict(examples, records=records)
    assert all(isinstance(e, Entity) for output in outputs for e in output["entities"])
    out = tmp_path / "out.jsonl"
    ner.evaluate(data, out=out)
    written = json.loads(out.read_text().splitlines()[0])["entities"]
    assert written == [e.to_dict() for e in predicted] and all(isinstance(e, dict) for e in written)
    assert [Entity.from_dict(e) for e in written] == predicted
