"""The k-fold split and report of the hand-written e-mail recipe search (benchmarks/emails_kfold.py)."""

import csv
import statistics

import pytest

from benchmarks import emails_kfold
from instruct_ner.data.make_emails_real import fold_of


def rows():
    with emails_kfold.EMAILS.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("fold", [0, 1, 2, 3])
def test_a_fold_is_tested_on_its_own_emails_and_trained_on_others(fold):
    every = rows()
    train, test = emails_kfold.kfold_split(every, fold, 40, seed=1)
    assert len(train) == 40 and len({r["id"] for r in train}) == 40
    assert {r["id"] for r in test} == {r["id"] for r in every if int(r["id"].split("-")[1]) % 4 == (fold + 1) % 4}
    assert not {r["id"] for r in train} & {r["id"] for r in test}
    assert all(fold_of(r["id"]) != fold for r in train)


def test_seeds_draw_different_training_sets_and_the_same_seed_the_same():
    every = rows()
    first, _ = emails_kfold.kfold_split(every, 0, 40, seed=1)
    again, _ = emails_kfold.kfold_split(every, 0, 40, seed=1)
    other, _ = emails_kfold.kfold_split(every, 0, 40, seed=2)
    assert first == again and first != other
    larger, _ = emails_kfold.kfold_split(every, 0, 80, seed=1)
    assert len(larger) == 80
    with pytest.raises(ValueError, match="other folds hold"):
        emails_kfold.kfold_split(every, 0, len(every), seed=1)


def test_the_report_gives_mean_and_sample_spread_per_candidate_and_size():
    def cell(f1, email):
        return {"candidate": "inline", "train_emails": 40, "micro_f1": f1, "per_type_f1": {"EMAIL": email},
                "train_seconds": 100.0, "precision": "bf16"}  # fmt: skip

    table = emails_kfold.report({"cells": {"a": cell(0.5, 0.2), "b": cell(0.7, 0.4), "c": cell(0.6, 0.0)}})
    row = next(line for line in table.splitlines() if line.startswith("| inline"))
    assert f"{statistics.mean([0.5, 0.7, 0.6]):.3f} +- {statistics.stdev([0.5, 0.7, 0.6]):.3f}" in row
    assert "| 3 |" in row and "0.000 +- 0.000" in row  # PHONE absent from every cell: 0
