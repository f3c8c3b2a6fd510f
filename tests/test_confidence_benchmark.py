"""The confidence benchmark's threshold sweep and its noise rule (benchmarks/confidence.py), and the training
options of its adapters without dev selection (benchmarks/curves/runner.py)."""

import math
import random

import pytest

from benchmarks.confidence import SWEEP, falls_beyond_noise, precision_drops, threshold_sweep


def test_the_sweep_counts_what_each_threshold_keeps():
    scores, correct = [0.95, 0.85, 0.5, 0.3], [True, True, False, True]
    points = {p["threshold"]: p for p in threshold_sweep(scores, correct, gold=5, thresholds=[0.0, 0.4, 0.9, 0.99])}
    assert points[0.0]["kept"] == 4 and points[0.0]["precision"] == pytest.approx(3 / 4)
    assert points[0.4]["kept"] == 3 and points[0.4]["recall"] == pytest.approx(2 / 5)
    assert points[0.4]["precision_se"] == pytest.approx(math.sqrt((2 / 3) * (1 / 3) / 3))
    assert points[0.9]["precision"] == 1.0 and points[0.9]["precision_se"] == 0.0
    assert points[0.99]["kept"] == 0 and points[0.99]["precision"] == 1.0  # nothing kept: nothing wrong


def test_well_ordered_scores_have_no_fall_and_inverted_ones_do():
    rng = random.Random(0)
    scores = [rng.random() for _ in range(4000)]
    calibrated = [rng.random() < s for s in scores]  # correct with probability = score
    assert falls_beyond_noise(threshold_sweep(scores, calibrated, gold=3000)) == []
    inverted = [rng.random() < 1 - s for s in scores]  # the higher the score, the likelier wrong
    falls = falls_beyond_noise(threshold_sweep(scores, inverted, gold=3000))
    assert falls and set(falls) <= set(SWEEP) and 0.0 not in falls


def test_a_small_fall_on_few_entities_is_noise():
    points = [
        {"threshold": 0.0, "kept": 1000, "precision": 0.80, "precision_se": 0.0126},
        {"threshold": 0.9, "kept": 10, "precision": 0.70, "precision_se": 0.145},  # 0.10 below, se 0.145
        {"threshold": 0.95, "kept": 900, "precision": 0.70, "precision_se": 0.0153},  # 0.10 below, se 0.015
    ]
    assert falls_beyond_noise(points) == [0.95]


def test_precision_drops_is_the_largest_fall_to_a_higher_threshold():
    points = [{"precision": p} for p in (0.5, 0.8, 0.6, 0.9, 0.85)]
    assert precision_drops(points) == pytest.approx(0.2)
    assert precision_drops([{"precision": p} for p in (0.1, 0.2, 0.3)]) == 0.0


def test_adapters_without_dev_selection_get_no_dev_options(tmp_path):
    from benchmarks.curves.runner import common_options

    data = {"train": tmp_path / "t.txt", "limit": 16, "epochs": 2, "dev_file": tmp_path / "dev.jsonl", "reader": []}
    with_dev = common_options(data, 1e-3, tmp_path / "model", "fp32")
    without = common_options(data, 1e-3, tmp_path / "model", "fp32", dev=False)
    assert with_dev["eval_f1_data"] == str(data["dev_file"]) and "eval_f1_data" not in without
    assert {k: v for k, v in with_dev.items() if not k.startswith(("eval_f1", "early_stopping"))} == without


def test_the_report_gives_each_fold_and_the_mean_triage_gain():
    from benchmarks.confidence import report

    def fold(gain):
        cell = {"folder": "f", "emails": 38, "reviewed": 8, "f1_all": 0.5, "f1_rest": 0.5 + gain, "gain": gain}
        return {"cells": {"emails-tagger": cell}}

    lines = report([fold(0.1), fold(0.3)]).splitlines()
    assert sum(line.startswith("| emails-tagger (f)") for line in lines) == 2
    assert lines[-1].startswith("| emails-tagger, mean of 2 |") and "**+0.200**" in lines[-1]
