"""compare on small hand-made prediction files whose error counts are worked out here."""

import json

import pytest

from instruct_ner.cli import main
from instruct_ner.examples import DataError, spans_to_tags
from instruct_ner.inference.compare import CompareConfig, classify_errors, compare


def record(i, n, gold, pred, parse=None, timing=None):
    r = {
        "id": str(i),
        "tokens": [f"w{k}" for k in range(n)],
        "tags": spans_to_tags(gold, n),
        "pred_tags": spans_to_tags(pred, n),
    }
    if parse is not None:
        r["parse"] = parse
    if timing is not None:
        r["timing"] = timing
    return r


# Sentence 1: PER right, LOC predicted as ORG (wrong type), ORG missed.
# Sentence 2: ORG cut short (boundary), a spurious MISC.   Sentence 3: LOC(1,3) predicted as PER(1,2).
GENERATIVE = [
    record(
        1,
        6,
        [("PER", 0, 2), ("LOC", 3, 4), ("ORG", 5, 6)],
        [("PER", 0, 2), ("ORG", 3, 4)],
        {"hallucinated": 1, "malformed": 1, "truncated": 0, "mentions": 4},
        {"batch_seconds": 2.0, "batch_size": 2},
    ),
    record(
        2,
        5,
        [("ORG", 0, 3)],
        [("ORG", 0, 2), ("MISC", 4, 5)],
        {"hallucinated": 0, "malformed": 0, "truncated": 1, "mentions": 2},
        {"batch_seconds": 2.0, "batch_size": 2},
    ),
    record(3, 4, [("LOC", 1, 3)], [("PER", 1, 2)], {"mentions": 1}, {"batch_seconds": 1.0, "batch_size": 1}),
]
TAGGER = [  # perfect, 0.1 s per sentence
    record(
        1,
        6,
        [("PER", 0, 2), ("LOC", 3, 4), ("ORG", 5, 6)],
        [("PER", 0, 2), ("LOC", 3, 4), ("ORG", 5, 6)],
        timing={"seconds": 0.1},
    ),
    record(2, 5, [("ORG", 0, 3)], [("ORG", 0, 3)], timing={"seconds": 0.1}),
    record(3, 4, [("LOC", 1, 3)], [("LOC", 1, 3)], timing={"seconds": 0.1}),
]


def write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


def test_error_classes_on_single_sentences():
    assert classify_errors([("PER", 0, 2)], [("PER", 0, 2)])[0] == {"correct": 1}
    assert classify_errors([("PER", 0, 2)], [("ORG", 0, 2)])[0] == {"wrong_type": 1}
    assert classify_errors([("PER", 0, 2)], [("PER", 0, 1)])[0] == {"boundary": 1}
    assert classify_errors([("PER", 0, 2)], [("LOC", 1, 3)])[0] == {"boundary_and_type": 1}
    assert classify_errors([], [("PER", 0, 1)])[0] == {"spurious": 1}
    assert classify_errors([("PER", 0, 1)], [])[0] == {"missed": 1}


def test_report_counts_match_the_worked_case(tmp_path):
    config = CompareConfig(
        data=[write(tmp_path / "gen.jsonl", GENERATIVE), write(tmp_path / "tag.jsonl", TAGGER)],
        names=["generative", "tagger"],
        output_dir=str(tmp_path / "report"),
    )
    systems = compare(config)
    generative, tagger = systems["generative"], systems["tagger"]
    assert generative["errors"] == {
        "correct": 1,
        "wrong_type": 1,
        "boundary": 1,
        "boundary_and_type": 1,
        "spurious": 1,
        "missed": 1,
    }
    assert generative["diagnostics"]["hallucinated"] == 1 and generative["diagnostics"]["parse_failures"] == 2
    assert generative["micro"]["precision"] == pytest.approx(1 / 5) and generative["micro"]["recall"] == pytest.approx(
        1 / 5
    )
    assert generative["failure_rate"] == pytest.approx(3 / 7)
    assert generative["sentences_per_second"] == pytest.approx(3 / (1.0 + 1.0 + 1.0))
    assert tagger["micro"]["f1"] == 1.0 and tagger["errors"]["correct"] == 5
    assert tagger["sentences_per_second"] == pytest.approx(1 / 0.1)
    assert ["LOC", "ORG", 1] in generative["confusion"] and ["ORG", "(none)", 1] in generative["confusion"]
    report = (tmp_path / "report" / "report.md").read_text()
    assert "| generative |" in report and "| tagger |" in report and "**1.0000**" in report
    for name in ("f1_per_type.png", "confusion_generative.png", "confusion_tagger.png", "report.json"):
        assert (tmp_path / "report" / name).stat().st_size > 0


def test_cli_and_bad_input(tmp_path, capsys):
    gen = write(tmp_path / "gen.jsonl", GENERATIVE)
    assert main(["compare", gen, "--output_dir", str(tmp_path / "r")]) == 0
    assert "| gen |" in capsys.readouterr().out
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "1", "tags": ["O"]}) + "\n")
    with pytest.raises(DataError, match=rf"{bad}:1: record has no 'pred_tags' list"):
        compare(CompareConfig(data=[str(bad)], output_dir=str(tmp_path / "r2")))
