"""Issue 12: real corpora, data loss, hostile input and safe loading. One test per case, each asserting the
message (file, line or record, what was expected) or the exact output."""

import json
import re
import sys
import unicodedata
from pathlib import Path

import pytest

from instruct_ner.cli import main
from instruct_ner.examples import DataError, Example
from instruct_ner.inference.grounding import parse_response
from instruct_ner.jsonl import atomic_folder, check_run_settings, write_jsonl
from instruct_ner.prompts.formats import FORMATS
from instruct_ner.prompts.readers import ReaderOptions, load_examples
from instruct_ner.prompts.templates import MAX_OUTPUT_CHARS, MAX_RANGE_ITEMS

ROOT = Path(__file__).resolve().parents[1]


def write(path, text, encoding="utf-8"):
    path.write_text(text, encoding=encoding, newline="")
    return path


def load(path, **options):
    return load_examples(path, ReaderOptions(**options))


def cli(capsys, *argv):
    """(exit code, stdout, stderr) of `instruct-ner ARGV`."""
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(capsys, *argv) -> str:
    code, _, err = cli(capsys, *argv)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def jsonl(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------- real corpora


def test_sentence_starting_with_inside_tag_is_repaired_and_reported_with_file_and_line(tmp_path):
    path = write(tmp_path / "test.txt", "EU B-ORG\nrejects O\n\nBlair I-PER\nsaid O\nin O\nLondon I-LOC\n")
    examples, report = load(path)
    assert examples[1].tags == ["B-PER", "O", "O", "B-LOC"]
    assert report.notes["repaired_tags"] == 2
    assert report.repairs == [
        f"{path}:4: I-PER starts the sentence: read as B-PER",
        f"{path}:7: I-LOC starts an entity: read as B-LOC",
    ]
    assert f"repaired {path}:4: I-PER starts the sentence: read as B-PER" in report.summary()


def test_strict_mode_refuses_the_inside_tag_with_file_and_line(tmp_path):
    path = write(tmp_path / "test.txt", "EU B-ORG\n\nBlair I-PER\n")
    with pytest.raises(
        DataError, match=rf"^{re.escape(str(path))}:3: I-PER starts the sentence; expected B-PER or O$"
    ):
        load(path, repair_tags=False)


def test_strict_mode_from_the_command_line(tmp_path, capsys):
    path = write(tmp_path / "test.txt", "EU B-ORG\n\nBlair I-PER\n")
    line = one_line_error(capsys, "prepare", "--data", path, "--out", tmp_path / "p.jsonl", "--repair_tags", "false")
    assert line == f"instruct-ner prepare: error: {path}:3: I-PER starts the sentence; expected B-PER or O"
    code, _, err = cli(capsys, "prepare", "--data", path, "--out", tmp_path / "p.jsonl")
    assert code == 0 and f"repaired {path}:3: I-PER starts the sentence: read as B-PER" in err


def test_inside_tag_repair_in_long_csv_and_jsonl(tmp_path):
    csv_path = write(
        tmp_path / "long.csv", "sentence_id,word,entity_group\n1,Mario,I-PER\n1,Rossi,I-PER\n2,Anna,B-PER\n"
    )
    (example, _), report = load(csv_path)  # B- opens entities elsewhere: IOB2 with a stray I-
    assert example.tags == ["B-PER", "I-PER"]
    assert report.repairs == [f"{csv_path}:2 (row 1): I-PER starts the sentence: read as B-PER"]
    path = jsonl(tmp_path / "a.jsonl", [{"id": "1", "tokens": ["a", "Rossi"], "tags": ["O", "I-PER"]}])
    (example,), report = load(path)
    assert example.tags == ["O", "B-PER"] and report.repairs == [
        f"{path}:1: tags[1]: I-PER starts an entity: read as B-PER"
    ]


LONG_EMAILS = (
    "email_id,sentence_id,word,entity_group\n"
    "e1,1,Gentile,O\ne1,1,Rossi,PER\ne1,2,Saluti,O\n"
    "e2,1,Buongiorno,O\ne2,1,Bianchi,PER\ne2,2,Grazie,O\n"
)


def test_long_csv_with_document_and_sentence_ids_is_grouped_by_both(tmp_path):
    path = write(tmp_path / "emails.csv", LONG_EMAILS)
    examples, _ = load(path)
    assert [(e.id, e.tokens, e.tags) for e in examples] == [
        ("e1-1", ["Gentile", "Rossi"], ["O", "B-PER"]),
        ("e1-2", ["Saluti"], ["O"]),
        ("e2-1", ["Buongiorno", "Bianchi"], ["O", "B-PER"]),
        ("e2-2", ["Grazie"], ["O"]),
    ]
    assert [e.id for e in load(path, id_column=["email_id", "sentence_id"])[0]] == ["e1-1", "e1-2", "e2-1", "e2-2"]
    assert [e.id for e in load(path, id_column=["email_id"])[0]] == ["e1", "e2"]  # one text per e-mail


def test_id_columns_from_the_command_line(tmp_path, capsys):
    path = write(tmp_path / "emails.csv", LONG_EMAILS.replace("email_id", "mail"))
    out = tmp_path / "p.jsonl"
    assert cli(capsys, "prepare", "--data", path, "--out", out, "--id_column", "mail", "sentence_id")[0] == 0
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["e1-1", "e1-2", "e2-1", "e2-2"]


def test_a_key_that_comes_back_after_other_texts_is_still_an_error(tmp_path):
    path = write(tmp_path / "emails.csv", "email_id,sentence_id,word,entity_group\ne1,1,a,O\ne2,1,b,O\ne1,1,c,O\n")
    with pytest.raises(
        DataError, match=rf"{re.escape(str(path))}:4 \(row 3\): email_id sentence_id \('e1', '1'\) appears again"
    ):
        load(path)


# -------------------------------------------------------------------------------------- data loss


@pytest.mark.parametrize("stage", ["prepare", "parse", "generate", "tag"])
def test_out_equal_to_the_input_is_refused_and_the_input_kept(tmp_path, capsys, stage):
    data = jsonl(tmp_path / "data.jsonl", [{"id": str(i), "tokens": ["EU"], "tags": ["B-ORG"]} for i in range(5)])
    before = data.read_bytes()
    flags = {
        "prepare": ["--data", data, "--out", data],
        "parse": ["--data", data, "--field", "response", "--out", tmp_path / "." / "data.jsonl"],
        "generate": ["--data", data, "--out", data],
        "tag": ["--adapter", tmp_path, "--data", data, "--out", data],
    }[stage]
    line = one_line_error(capsys, stage, *flags)
    assert line.endswith(f"--out is also an input ({data if stage != 'parse' else data}); it would be overwritten")
    assert data.read_bytes() == before


def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path):
    out = jsonl(tmp_path / "out.jsonl", [{"id": "old"}])

    def records():
        yield {"id": "new-1"}
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_jsonl(out, records())
    assert out.read_text() == '{"id": "old"}\n' and sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def whole(folder):
    return (folder / "a.txt").exists() and (folder / "b.txt").exists()


def test_two_writers_of_one_folder_each_write_their_own_and_one_whole_folder_is_published(tmp_path):
    # two processes importing the embedded model at once: the second runs from start to end while the first is
    # half-way; with one shared staging folder the second would wipe the first's files and the first's rename fail
    target = tmp_path / "model"
    with atomic_folder(target, whole) as first:
        (first / "a.txt").write_text("first")
        with atomic_folder(target, whole) as second:
            assert second != first and not any(second.iterdir())
            (second / "a.txt").write_text("second")
            (second / "b.txt").write_text("second")
        assert (first / "a.txt").read_text() == "first" and whole(target)
        (first / "b.txt").write_text("first")
    assert (target / "a.txt").read_text() == (target / "b.txt").read_text() == "second"  # the first kept, whole
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no staging folder left behind


def test_an_interrupted_folder_write_leaves_nothing_and_an_incomplete_folder_is_replaced(tmp_path):
    target = tmp_path / "model"
    with pytest.raises(KeyboardInterrupt), atomic_folder(target, whole) as staging:
        (staging / "a.txt").write_text("half")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    target.mkdir()
    (target / "a.txt").write_text("left by an old import that wrote in place")
    with atomic_folder(target, whole) as staging:
        for name in ("a.txt", "b.txt"):
            (staging / name).write_text("new")
    assert (target / "a.txt").read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["model"]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"id": "1", "tokens": ["a", "b"]}, "record has no 'tags' field"),
        ({"id": "1", "tokens": ["a", "b"], "tags": None}, "record has no 'tags' field"),
        ({"id": "1", "tokens": "ab", "tags": ["O", "O"]}, "'tokens' must be a list of strings, found str"),
        ({"id": "1", "tokens": ["a", "b"], "tags": "OO"}, "'tags' must be a list of strings, found str"),
        ({"id": "1", "tokens": ["a", 2], "tags": ["O", "O"]}, "'tokens' must be a list of strings, found a list with"),
        ({"id": "1", "tokens": ["a", "b"], "tags": ["O"], "source": "x.csv:9"}, "2 tokens but 1 tags"),
        ({"id": "1", "tokens": ["a"], "tags": ["O"], "text": "a", "offsets": [[0, 5]]}, "'offsets' must be one"),
    ],
)
def test_jsonl_records_are_type_checked_and_name_the_jsonl_line(tmp_path, record, message):
    path = jsonl(tmp_path / "a.jsonl", [{"id": "0", "tokens": ["x"], "tags": ["O"]}, record])
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}:2: {re.escape(message)}"):
        load(path)


def test_inline_format_escapes_pipes_and_brackets_exactly():
    example = Example("1", ["AT|T", "buys", "[Foo]", "and", "x]"], ["B-ORG", "O", "B-ORG", "O", "B-MISC"])
    response = FORMATS["inline"].render(example)
    assert response == r"[AT\|T | ORG] buys [\[Foo\] | ORG] and [x\] | MISC]"
    assert parse_response(response, example, ["MISC", "ORG"], "inline").pred_tags == example.tags
    plain = Example("2", ["see", "[1", "|", "LOC]", "here"], ["O", "O", "O", "O", "B-LOC"])
    response = FORMATS["inline"].render(plain)
    assert response == r"see \[1 | LOC] [here | LOC]"  # text that looks like markup is escaped
    result = parse_response(response, plain, ["LOC"], "inline")
    assert result.pred_tags == plain.tags and result.diagnostics.malformed == 0


def test_entity_list_keeps_pipes_and_brackets_in_entity_text():
    example = Example("1", ["AT|T", "buys", "[Foo]"], ["B-ORG", "O", "B-ORG"])
    response = FORMATS["entity_list"].render(example)
    assert response == "AT|T | ORG\n[Foo] | ORG"
    assert parse_response(response, example, ["ORG"]).pred_tags == example.tags


def test_resume_refuses_other_settings_and_accepts_the_same(tmp_path):
    out = jsonl(tmp_path / "p.jsonl", [{"id": "1"}])
    settings = {"template": "ner-list.en.v1", "labels": ["PER"], "model": "embedded", "adapter": None}
    check_run_settings(out, settings, resume=False)
    assert not out.exists()  # a new run clears the old output before it records its settings (issue 43, item 5)
    assert json.loads((tmp_path / "p.jsonl.settings.json").read_text()) == settings
    jsonl(out, [{"id": "1"}])  # the run writes its first record
    check_run_settings(out, settings, resume=True)  # same settings: fine
    with pytest.raises(
        DataError,
        match=re.escape(
            f"{out}.settings.json: --resume: the output was made with other settings "
            '(template was "ner-list.en.v1", now "ner-inline.en.v1")'
        ),
    ):
        check_run_settings(out, {**settings, "template": "ner-inline.en.v1"}, resume=True)
    (tmp_path / "p.jsonl.settings.json").unlink()
    with pytest.raises(DataError, match=r"--resume: no p.jsonl.settings.json beside it"):
        check_run_settings(out, settings, resume=True)


def test_generate_resume_with_another_template_is_refused(tmp_path, capsys, tiny_llama):
    data = write(tmp_path / "d.txt", "EU B-ORG\nrejects O\n\nPeter B-PER\n")
    out = tmp_path / "p.jsonl"
    common = ["--data", data, "--out", out, "--model", tiny_llama, "--precision", "fp32", "--progress", "false"]
    assert cli(capsys, "generate", *common, "--max_new_tokens", "2")[0] == 0
    line = one_line_error(
        capsys, "generate", *common, "--max_new_tokens", "2", "--template", "ner-inline.en", "--resume"
    )
    assert "--resume: the output was made with other settings" in line and "ner-inline.en.v1" in line


def test_byte_order_marks_are_stripped_in_every_reader(tmp_path):
    bom = "\ufeff"
    conll = write(tmp_path / "a.txt", bom + "-DOCSTART- O\n\nEU B-ORG\n\nPeter B-PER\n")
    examples, _ = load(conll)
    assert [e.tokens for e in examples] == [["EU"], ["Peter"]]  # 2 sentences in, 2 records out
    conll = write(tmp_path / "b.txt", bom + "EU B-ORG\n")
    assert load(conll)[0][0].tokens == ["EU"]
    csv_path = write(
        tmp_path / "a.csv", bom + 'id,text,entities\n1,EU vota,"[{""word"": ""EU"", ""entity_group"": ""ORG""}]"\n'
    )
    assert load(csv_path, id_column="id")[0][0].tokens == ["EU", "vota"]
    path = write(tmp_path / "a.jsonl", bom + '{"id": "1", "tokens": ["EU"], "tags": ["B-ORG"]}\n')
    assert load(path)[0][0].tokens == ["EU"]
    from instruct_ner.prompts.labels import load_definitions
    from instruct_ner.prompts.templates import load_template

    assert load_definitions(write(tmp_path / "d.yaml", bom + "ORG: enti\n")) == {"ORG": "enti"}
    source = (ROOT / "prompts" / "templates" / "ner-list.en.v1.jinja").read_text(encoding="utf-8")
    assert load_template(str(write(tmp_path / "t.jinja", bom + source))).response_format == "entity_list"


def test_an_entity_group_with_a_space_is_an_error_at_read_time(tmp_path):
    wide = write(
        tmp_path / "w.csv", 'text,entities\nRoma e Milano,"[{""word"": ""Roma"", ""entity_group"": ""LOC X""}]"\n'
    )
    with pytest.raises(
        DataError, match=rf"^{re.escape(str(wide))}:2 \(row 1\): invalid entity type 'LOC X'; expected one word"
    ):
        load(wide)
    long = write(tmp_path / "l.csv", "sentence_id,word,entity_group\n1,Roma,LOC X\n")
    with pytest.raises(DataError, match=rf"^{re.escape(str(long))}:2 \(row 1\): invalid tag 'LOC X'"):
        load(long)


def score_file(tmp_path, pred_tags, labels=None):
    record = {"id": "1", "tokens": ["EU", "votes"], "tags": ["B-ORG", "O"], "pred_tags": pred_tags}
    if labels:
        record["labels"] = labels
    return jsonl(tmp_path / "pred.jsonl", [record])


@pytest.mark.parametrize(
    ("pred_tags", "labels", "message"),
    [
        (["X-FOO", "O"], None, "pred_tags[0] is 'X-FOO'; expected O, B-TYPE or I-TYPE"),
        ([1, 0], None, "pred_tags[0] is 1; expected O, B-TYPE or I-TYPE"),
        (["B-FOO", "O"], ["ORG"], "pred_tags[0] is 'B-FOO'; 'FOO' is not in the labels ['ORG']"),
    ],
)
def test_score_refuses_invalid_predicted_tags(tmp_path, capsys, pred_tags, labels, message):
    path = score_file(tmp_path, pred_tags, labels)
    assert one_line_error(capsys, "score", path) == f"instruct-ner score: error: {path}:1: {message}"


@pytest.mark.parametrize(
    ("entities", "message"),
    [
        ([{"label": "ORG"}], "entities[0] is not an entity (['label']); expected the keys of generate or tag output"),
        ("ORG", "'entities' must be a list, not str"),
    ],
)
@pytest.mark.parametrize("command", ["score", "compare"])
def test_score_and_compare_refuse_entities_that_are_not_entities(tmp_path, capsys, entities, message, command):
    """A hand-edited prediction file once reached `score` as a TypeError traceback from the confidence report."""
    path = score_file(tmp_path, ["B-ORG", "O"])
    record = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps({**record, "entities": entities}) + "\n", encoding="utf-8")
    other = jsonl(tmp_path / "other.jsonl", [record])
    args = [path] if command == "score" else [path, other, "--output_dir", str(tmp_path / "cmp")]
    assert one_line_error(capsys, command, *args) == f"instruct-ner {command}: error: {path}:1: {message}"


def test_score_strict_before_the_file_works(tmp_path, capsys):
    path = score_file(tmp_path, ["B-ORG", "O"])
    code, out, _ = cli(capsys, "score", "--strict", path)
    assert code == 0 and "(strict mode)" in out and "micro F1 = 1.0000" in out
    assert cli(capsys, "score", path, "--strict")[1] == out


def compare_records(ids, tokens=("EU",)):
    return [{"id": i, "tokens": list(tokens), "tags": ["B-ORG"], "pred_tags": ["B-ORG"]} for i in ids]


@pytest.mark.parametrize(
    ("b_ids", "message"),
    [
        (
            ["2", "1"],
            "b.jsonl:1: record id '2' where {a}:1 has id '1'; compare needs the same records in the same order",
        ),
        (["1"], "b.jsonl: 1 records but {a} has 2; compare needs the same records"),
        (["1", "3"], "b.jsonl:2: record id '3' where {a}:2 has id '2'"),
    ],
)
def test_compare_refuses_files_with_other_records(tmp_path, capsys, b_ids, message):
    a = jsonl(tmp_path / "a.jsonl", compare_records(["1", "2"]))
    b = jsonl(tmp_path / "b.jsonl", compare_records(b_ids))
    line = one_line_error(capsys, "compare", a, b, "--output_dir", tmp_path / "report")
    assert f"{tmp_path}/" + message.format(a=a) in line


def test_compare_refuses_other_tokens_under_the_same_id(tmp_path, capsys):
    a = jsonl(tmp_path / "a.jsonl", compare_records(["1"]))
    b = jsonl(tmp_path / "b.jsonl", compare_records(["1"], tokens=("UE",)))
    line = one_line_error(capsys, "compare", a, b, "--output_dir", tmp_path / "report")
    assert f"{b}:1: record id '1' with other tokens where {a}:1 has id '1'" in line


def test_a_partial_word_is_not_credited_by_default(tmp_path, capsys):
    example = Example("1", ["Milano", "e", "Roma"], ["B-LOC", "O", "B-LOC"])
    result = parse_response("ilan | LOC\nRoma | LOC", example, ["LOC"])
    assert result.pred_tags == ["O", "O", "B-LOC"] and result.diagnostics.partial_word == 1
    snapped = parse_response("ilan | LOC\nRoma | LOC", example, ["LOC"], snap_partial=True)
    assert snapped.pred_tags == ["B-LOC", "O", "B-LOC"] and snapped.diagnostics.snapped == 1
    record = {**example.to_record(), "labels": ["LOC"], "response_format": "entity_list", "generation": "ilan | LOC"}
    path, out = jsonl(tmp_path / "g.jsonl", [record]), tmp_path / "o.jsonl"
    code, _, err = cli(capsys, "parse", "--data", path, "--out", out)
    assert code == 0 and "partial_word 1" in err
    assert json.loads(out.read_text())["pred_tags"] == ["O", "O", "O"]
    code, _, err = cli(capsys, "parse", "--data", path, "--out", out, "--snap_partial_words")
    assert code == 0 and "snapped 1" in err and json.loads(out.read_text())["pred_tags"] == ["B-LOC", "O", "O"]


@pytest.mark.parametrize("limit", [0, -1])
def test_limit_below_one_is_an_error(tmp_path, capsys, limit):
    data = write(tmp_path / "a.txt", "EU B-ORG\n\nPeter B-PER\n")
    line = one_line_error(capsys, "prepare", "--data", data, "--out", tmp_path / "p.jsonl", "--limit", limit)
    assert line == f"instruct-ner prepare: error: --limit: expected a number of records of at least 1, got {limit}"
    assert len(load(data, limit=1)[0]) == 1


def test_generate_writes_each_batch_as_it_finishes(tmp_path):
    from test_generate import FakeGenerator, read, run_generation, setup, without_timing

    records, examples, builder, gold = setup(limit=12)
    run_generation(
        records, examples, builder, FakeGenerator(gold), tmp_path / "full.jsonl", batch_size=2, progress=False
    )

    class Interrupted(FakeGenerator):
        def generate(self, prompts, limits, examples=None):
            if len(self.batches) == 3:
                raise KeyboardInterrupt
            return super().generate(prompts, limits, examples)

    partial = tmp_path / "partial.jsonl"
    with pytest.raises(KeyboardInterrupt):
        run_generation(records, examples, builder, Interrupted(gold), partial, batch_size=2, progress=False)
    assert len(read(partial)) == 6  # the three finished batches, nothing more lost
    resumed = FakeGenerator(gold)
    run_generation(records, examples, builder, resumed, partial, batch_size=2, resume=True, progress=False)
    assert resumed.calls == len(records) - 6
    assert without_timing(read(partial)) == without_timing(read(tmp_path / "full.jsonl"))  # input order again


def counted_work(counts_file, function, *arguments) -> tuple[object, int, int]:
    """(what `function(*arguments)` returned, line events, characters yielded) in the frames whose code file
    `counts_file` accepts.

    Work counted instead of timed: the same on a loaded machine as on an idle one. The tracer in place before (a
    coverage tool's) is put back. Example: counted_work(lambda name: name.endswith("x.py"), f, 3)
    """
    lines, characters = [0], [0]

    def local(frame, event, arg):
        if event == "line":
            lines[0] += 1
        elif event == "return" and isinstance(arg, str):  # a generator's yield is a return event too
            characters[0] += len(arg)
        return local

    def tracer(frame, event, arg):
        return local if counts_file(frame.f_code.co_filename) else None

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        return function(*arguments), lines[0], characters[0]
    finally:
        sys.settrace(previous)


def in_package(filename: str) -> bool:
    return filename.startswith(str(ROOT)) and f"{ROOT.name}/.venv" not in filename and "/tests/" not in filename


def test_parser_work_grows_linearly_with_a_long_text_and_a_long_response():
    """A quadratic parser (a search from the text's start per line, views rebuilt per mention) does 16x the work
    on 4x the lines; this one does 4x. Python lines are counted, not seconds (the C scans of str.find are not)."""
    work = {}
    for n in (500, 2000):
        words = [f"W{(i * 7919) % 800}" for i in range(n)]
        example = Example("long", words, ["O"] * n)
        response = "\n".join(f"{word} | PER" for word in words)
        result, found, _ = counted_work(in_package, parse_response, response, example, ["PER"])
        assert result.pred_tags == ["B-PER"] * n  # every line on its own occurrence, in order
        hallucinated = "\n".join(f"Z{word} | PER" for word in words)
        result, missed, _ = counted_work(in_package, parse_response, hallucinated, example, ["PER"])
        assert result.diagnostics.hallucinated == n
        work[n] = (found, missed)
    assert work[2000][0] < 6 * work[500][0] and work[2000][1] < 6 * work[500][1], work
    assert work[500][0] > 500 and work[500][1] > 500  # the tracer saw the parser


# ----------------------------------------------------------------------------------------- security


def test_checkpoint_weights_are_safetensors_and_foreign_names_are_refused(tmp_path):
    """A tagger checkpoint's and dev-F1 selection's weights are safetensors (tensors only, nothing unpickled); a file
    with names the model lacks is a ModelError, not a silent partial load."""
    import torch
    from safetensors.torch import save_file

    from instruct_ner.sft.models import ModelError
    from instruct_ner.sft.selection import load_trainable, save_trainable

    layer = torch.nn.Linear(3, 2)
    save_trainable(layer, tmp_path / "w.safetensors")
    assert (tmp_path / "w.safetensors").read_bytes()[8:9] == b"{"  # a safetensors header, not a pickle
    other = torch.nn.Linear(3, 2)
    load_trainable(other, tmp_path / "w.safetensors")
    assert torch.equal(other.weight, layer.weight)
    save_file({"evil.weight": torch.zeros(1)}, str(tmp_path / "x.safetensors"))
    with pytest.raises(ModelError, match=r"weights this model does not have: \['evil.weight'\]"):
        load_trainable(other, tmp_path / "x.safetensors")


def test_no_unsafe_loading_in_the_package():
    sources = [p for folder in ("prompts", "sft", "inference", "instruct_ner") for p in (ROOT / folder).rglob("*.py")]
    offenders = [
        str(p)
        for p in sources
        if re.search(r"weights_only\s*=\s*False|pickle\.loads?\(", p.read_text(encoding="utf-8"))
    ]
    assert offenders == []
    assert re.search(r'"torch>=2\.(6|[7-9]|\d\d)', (ROOT / "pyproject.toml").read_text())


# -------------------------------------------------------------------------- one-line errors, exit 2


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("a.txt", b"EU B-ORG\nK\xf6ln B-LOC\n"),
        ("a.csv", b"sentence_id,word,entity_group\n1,K\xf6ln,LOC\n"),
        ("a.jsonl", b'{"id": "1", "tokens": ["EU"], "tags": ["B-ORG"]}\n{"id": "K\xf6ln"}\n'),
    ],
)
def test_a_file_that_is_not_utf8_names_its_line(tmp_path, capsys, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    line = one_line_error(capsys, "prepare", "--data", path, "--out", tmp_path / "p.jsonl")
    assert re.fullmatch(rf"instruct-ner prepare: error: {re.escape(str(path))}:2: not UTF-8 \(byte 0xf6 .*\).*", line)


def test_all_o_data_without_labels(tmp_path, capsys):
    data = write(tmp_path / "a.txt", "nothing O\nhere O\n")
    line = one_line_error(capsys, "prepare", "--data", data, "--out", tmp_path / "p.jsonl")
    assert line == (
        "instruct-ner prepare: error: --labels: the data has no entity, so the label set is empty; "
        "name the labels, e.g. --labels PER ORG LOC"
    )
    assert cli(capsys, "prepare", "--data", data, "--out", tmp_path / "p.jsonl", "--labels", "PER")[0] == 0


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("d.yaml", "PER: people\nORG: [unclosed\n", "{path}:3: not valid YAML"),
        ("d.json", '{"PER": "people",\n"ORG": }', "{path}:2: not valid JSON"),
        ("d.yaml", "- PER\n- ORG\n", "{path}: found a list; expected a mapping of LABEL: short description"),
        ("d.yaml", "", "{path}: empty file; expected a mapping"),
        ("d.yaml", "PER: 3\n", "{path}: entry 'PER': 3; expected a mapping"),
    ],
)
def test_bad_label_definitions(tmp_path, capsys, name, content, message):
    data = write(tmp_path / "a.txt", "EU B-ORG\n")
    defs = write(tmp_path / name, content)
    args = ["prepare", "--data", data, "--out", tmp_path / "p.jsonl", "--label_definitions", defs]
    assert one_line_error(capsys, *args).startswith("instruct-ner prepare: error: " + message.format(path=defs))


def test_definitions_of_unknown_labels_are_warned_about(tmp_path, capsys):
    data = write(tmp_path / "a.txt", "EU B-ORG\n")
    defs = write(tmp_path / "d.yaml", "ORG: enti\nFOO: altro\n")
    code, _, err = cli(capsys, "prepare", "--data", data, "--out", tmp_path / "p.jsonl", "--label_definitions", defs)
    assert code == 0 and f"warning: {defs}: definitions for ['FOO'] ignored; the labels are ['ORG']" in err


HEADER = "{#- instruct-ner\nresponse_format: entity_list\nlanguage: en\n-#}\n"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "{#- instruct-ner\nresponse_format: [entity_list\nlanguage: en\n-#}\n{{ labels }}",
            "line 3: the header is not valid YAML",
        ),
        ("{#- instruct-ner\nresponse_format: xml\n-#}\n{{ labels }}", "response_format must be one of"),
        (HEADER + "{% for i in range(10**6) %}x{% endfor %}{{ labels }}", "ranges of more than 100000 items"),
        (HEADER + "{{ 2 ** 100000 }}{{ labels }}", "exponent 100000 exceeds 100"),
        (
            HEADER + "{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}{{ labels }}",
            "ranges of more than 100000 items in all",
        ),
        (HEADER + "{% for i in range(99999) %}{{ 'x' * 99 }}{% endfor %}{{ labels }}", "output longer than"),
        (HEADER + "{{ 'x' * 10000000000 }}{{ labels }}", "repetition by 10000000000 exceeds"),
    ],
)
def test_bad_or_runaway_templates(tmp_path, capsys, source, message):
    data = write(tmp_path / "a.txt", "EU B-ORG\n")
    template = write(tmp_path / "t.jinja", source)
    argv = ("prepare", "--data", data, "--out", tmp_path / "p.jsonl", "--template", template)
    line, lines, written = counted_work(lambda name: name == "<template>", one_line_error, capsys, *argv)
    assert line.startswith(f"instruct-ner prepare: error: template {template}") and message in line
    # stopped at the bounds, not after a runaway: the template's own lines (about 3 per loop step) and its output
    assert lines <= 4 * MAX_RANGE_ITEMS and written <= MAX_OUTPUT_CHARS + 99, (lines, written)


def test_unknown_response_format_in_a_record(tmp_path, capsys):
    path = jsonl(tmp_path / "g.jsonl", [{"id": "1", "tokens": ["EU"], "tags": ["O"], "labels": ["ORG"],
                                        "response_format": "xml", "generation": "EU | ORG"}])  # fmt: skip
    line = one_line_error(capsys, "parse", "--data", path, "--out", tmp_path / "o.jsonl")
    assert (
        line
        == f"instruct-ner parse: error: {path}:1: unknown response_format 'xml'; expected one of entity_list, inline"
    )


def test_csv_cells_over_128_kib_load_and_huge_cells_are_refused(tmp_path, monkeypatch):
    text = "Roma " + "a " * 100_000  # 200 KB in one cell
    path = write(
        tmp_path / "big.csv", f'text,entities\n"{text}","[{{""word"": ""Roma"", ""entity_group"": ""LOC""}}]"\n'
    )
    (example,), _ = load(path)
    assert example.tags[0] == "B-LOC" and len(example.tokens) == 100_001
    import instruct_ner.prompts.readers.csv as csv_reader

    monkeypatch.setattr(csv_reader, "MAX_CSV_CELL", 1000)
    with pytest.raises(
        DataError, match=rf"^{re.escape(str(path))}:2 \(row 1\): cell 'text' holds 200005 characters; at most 1000"
    ):
        load(path)


def test_deeply_nested_entity_lists_are_refused(tmp_path):
    cell = "[" * 100_000 + "]" * 100_000
    path = write(tmp_path / "deep.csv", f'text,entities\nRoma,"{cell}"\n')
    with pytest.raises(
        DataError, match=rf"^{re.escape(str(path))}:2 \(row 1\): entities cell is (nested too deeply|neither)"
    ):
        load(path)


@pytest.mark.parametrize("stage", ["prepare", "parse"])
def test_out_that_is_a_folder(tmp_path, capsys, stage):
    data = write(tmp_path / "a.txt", "EU B-ORG\n")
    pairs = tmp_path / "pairs.jsonl"
    assert cli(capsys, "prepare", "--data", data, "--out", pairs)[0] == 0
    folder = tmp_path / "folder"
    folder.mkdir()
    flags = ["--data", data] if stage == "prepare" else ["--data", pairs, "--field", "response"]
    line = one_line_error(capsys, stage, *flags, "--out", folder)
    assert line == f"instruct-ner {stage}: error: {folder}: --out is a folder; expected a file path"


def test_compare_out_over_an_existing_file(tmp_path, capsys):
    a = jsonl(tmp_path / "a.jsonl", compare_records(["1"]))
    existing = write(tmp_path / "report.md", "keep me")
    line = one_line_error(capsys, "compare", a, "--output_dir", existing)
    assert line == f"instruct-ner compare: error: {existing}: --output_dir exists and is a file; expected a folder"
    assert existing.read_text() == "keep me"


def test_a_hub_id_that_cannot_be_reached_offline(monkeypatch):
    from instruct_ner.sft.models import ModelError, load_tokenizer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelError) as error:
        load_tokenizer("no-such-org/no-such-model-xyz")
    message = str(error.value)
    assert "\n" not in message and "no-such-org/no-such-model-xyz" in message
    assert "hub could not provide it (offline, or no such model" in message and "pass --model DIR" in message


@pytest.mark.parametrize("separator", ["\u2028", "\u0085", "\u2029"])
def test_csv_text_with_unicode_line_separators_loads(tmp_path, separator):
    wide = write(
        tmp_path / "w.csv",
        f'text,entities\nRoma{separator}Milano,"[{{""word"": ""Milano"", ""entity_group"": ""LOC""}}]"\n',
    )
    (example,), _ = load(wide)
    assert example.text == f"Roma{separator}Milano" and example.entities[0].text == "Milano"
    long = write(tmp_path / "l.csv", f"sentence_id,word,entity_group\n1,a{separator}b,O\n1,Roma,LOC\n")
    (example,), _ = load(long)
    assert example.tokens == [f"a{separator}b", "Roma"]


def test_nfd_text_survives_reading_unchanged(tmp_path):
    text = unicodedata.normalize("NFD", "città")
    path = write(tmp_path / "a.txt", f"{text} B-LOC\n")
    assert load(path)[0][0].tokens == [text]  # readers never normalise; the parser does when matching
