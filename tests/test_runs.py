"""Issue 43, items 2 and 4-6: a run's output never lands on its model or data, never mixes two inputs, two settings
or two concurrent runs. Each case runs the real CLI on a tiny Llama (random weights, the real SmolLM2 tokenizer)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from instruct_ner.cli import main
from instruct_ner.jsonl import settings_path

SENTENCES = "EU B-ORG\nrejects O\n\nPeter B-PER\nBlair I-PER\n\nRome B-LOC\n\nParis B-LOC\nis O\n"


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.err


def snapshot(root):
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def common(tmp_path, tiny_llama):
    data = tmp_path / "d.txt"
    data.write_text(SENTENCES, encoding="utf-8")
    return data, ["--model", tiny_llama, "--precision", "fp32", "--progress", "false", "--max_new_tokens", "3"]


def test_generate_refuses_an_out_inside_the_model_folder(tmp_path, capsys, common, tiny_llama):
    data, flags = common
    before = snapshot(tiny_llama)
    for out in (tiny_llama / "config.json", tiny_llama / "new.jsonl"):
        code, err = run(capsys, "generate", "--data", data, "--out", out, *flags)
        assert code == 2 and "lies in the model folder" in err and len(err.strip().splitlines()) == 1
    assert snapshot(tiny_llama) == before


def test_evaluate_refuses_to_write_over_its_own_data(tmp_path, tiny_llama):
    from instruct_ner import NER
    from instruct_ner.errors import DataError

    data = tmp_path / "d.jsonl"
    records = [{"id": f"r{i}", "tokens": ["Rome"], "tags": ["B-LOC"]} for i in range(5)]
    data.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    before = data.read_bytes()
    ner = NER.zero_shot(labels=["LOC"], model=str(tiny_llama), precision="fp32")
    with pytest.raises(DataError, match="is also an input"):
        ner.evaluate(data, out=data)
    assert data.read_bytes() == before


def test_resume_with_another_file_whose_ids_match_is_refused(tmp_path, capsys, common):
    data, flags = common
    out = tmp_path / "p.jsonl"
    assert run(capsys, "generate", "--data", data, "--out", out, *flags, "--limit", "2")[0] == 0
    other = tmp_path / "other" / "d.txt"  # same file name, same ids (d-0, d-1, ...), other words
    other.parent.mkdir()
    other.write_text(SENTENCES.replace("EU", "UE").replace("Peter", "Pietro"), encoding="utf-8")
    code, err = run(capsys, "generate", "--data", other, "--out", out, *flags, "--limit", "2", "--resume")
    assert code == 2 and "data_fingerprint" in err


def test_new_settings_never_describe_an_old_output(tmp_path, capsys, common, monkeypatch):
    data, flags = common
    out = tmp_path / "p.jsonl"
    assert run(capsys, "generate", "--data", data, "--out", out, *flags)[0] == 0
    import instruct_ner.inference.generate as generate_module

    def interrupted(*args, **kwargs):  # the new run is cut off while its model loads
        raise KeyboardInterrupt

    monkeypatch.setattr(generate_module, "load_predictor", interrupted)
    assert run(capsys, "generate", "--data", data, "--out", out, *flags, "--template", "ner-inline.en")[0] == 130
    monkeypatch.undo()
    # Either the old output is gone (and --resume starts afresh) or it still has its own settings: resuming with
    # the new settings must never continue the old, entity-list file.
    if out.exists():
        assert json.loads(settings_path(out).read_text())["template"] != "ner-inline.en.v1"
    assert (
        run(capsys, "generate", "--data", data, "--out", out, *flags, "--template", "ner-inline.en", "--resume")[0]
        == 0
    )
    formats = {json.loads(line)["response_format"] for line in out.read_text().splitlines()}
    assert formats == {"inline"}


def test_two_runs_on_one_output_one_is_refused_and_the_file_is_one_runs(tmp_path, capsys, common):
    data, flags = common
    out = tmp_path / "p.jsonl"
    argv = ["generate", "--data", str(data), "--out", str(out), *map(str, flags)]
    script = "import sys\nfrom instruct_ner.cli import main\nsys.exit(main(sys.argv[1:]))"
    runs = [
        subprocess.Popen([sys.executable, "-c", script, *argv], stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    results = [(p.wait(), p.stderr.read()) for p in runs]
    codes = sorted(code for code, _ in results)
    refused = [err for code, err in results if code == 2]
    if codes == [0, 0]:  # the first finished before the second started: each file is one whole run
        pass
    else:
        assert codes == [0, 2] and "another run (process" in refused[0]
    assert run(capsys, "generate", "--data", data, "--out", tmp_path / "alone.jsonl", *flags)[0] == 0
    strip = lambda text: [{k: v for k, v in json.loads(l).items() if k != "timing"} for l in text.splitlines()]  # noqa: E731, E741
    assert strip(out.read_text()) == strip((tmp_path / "alone.jsonl").read_text())


@pytest.mark.parametrize(("sig", "seed"), [("SIGKILL", 1), ("SIGINT", 2)])
def test_generate_cut_at_a_random_record_resumes_to_the_uninterrupted_file(tmp_path, capsys, common, sig, seed):
    """Issue 43's resume acceptance: killed (SIGKILL) or interrupted (SIGINT) after a random number of records,
    `--resume` finishes a file equal to an uninterrupted run's (timings aside)."""
    import random
    import signal
    import time

    data, flags = common
    many = tmp_path / "many.txt"
    many.write_text("\n".join(f"Rome{i} B-LOC\nis O\n" for i in range(10)), encoding="utf-8")
    argv = ["generate", "--data", str(many), *map(str, flags), "--batch_size", "1", "--sort_by_length", "false"]
    alone = tmp_path / "alone.jsonl"
    assert run(capsys, *argv, "--out", alone)[0] == 0
    out = tmp_path / "p.jsonl"
    stop_after = random.Random(seed).randint(1, 8)
    script = "import sys\nfrom instruct_ner.cli import main\nsys.exit(main(sys.argv[1:]))"
    process = subprocess.Popen([sys.executable, "-c", script, *argv, "--out", str(out)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120  # a bound on the polling loop, not an assertion on time
    while time.monotonic() < deadline and process.poll() is None:
        if out.exists() and out.read_text(encoding="utf-8").count("\n") >= stop_after:
            process.send_signal(getattr(signal, sig))
            break
        time.sleep(0.05)
    process.wait()
    process.stderr.close()
    assert run(capsys, *argv, "--out", out, "--resume")[0] == 0

    def strip(path):
        return [{k: v for k, v in json.loads(line).items() if k != "timing"} for line in path.read_text().splitlines()]

    assert strip(out) == strip(alone)
