"""benchmarks/learning_curve.py and benchmarks/curves/ without training: cell names, the learning-rate policy, the
report's tables, a sweep cell's model reused, a cut-off cell's seconds kept."""

import json
import sys
from pathlib import Path

import pytest

from benchmarks import learning_curve
from benchmarks.curves import grid, report, results, runner, selector
from benchmarks.curves.grid import Cell

ROOT = Path(__file__).resolve().parents[1]


def result(system, size, f1, types=None, errors=None):
    per_type = {t: {"precision": v, "recall": v, "f1": v, "support": 10} for t, v in (types or {}).items()}
    test = {
        "test_sentences": 100,
        "test_is_subset": False,
        "sentences_per_second": 10.0,
        "scores": {"micro": {"precision": f1, "recall": f1, "f1": f1}, "per_type": per_type},
    }
    if errors:
        test["errors"] = errors
    return {
        "cell": f"conll2003/{system}/{size}",
        "corpus": "conll2003",
        "system": system,
        "train_sentences": size,
        "train": {"train_seconds": 120, "steps": 10, "best_step": 10},
        "test": test,
    }


def test_cell_names_round_trip():
    for text in (
        "conll2003/gen-list/500",
        "kind-wn/minilm/all",
        "conll2003/tagger-causal/500/lr=0.003",
        "conll2003/gen-list/5000/epochs=2",
        "conll2003/tagger-bidirectional/500/head=linear",
        "kind-wn/tagger-bidirectional/500/loss=ce",
    ):
        assert Cell.parse(text).name == text
    for bad in (
        "nowhere/gen-list/500",
        "conll2003/gen-list/500/lr=fast",
        "conll2003/gen-list/500/steps=3",
        "conll2003/gen-list/500/head=linear",  # a generative model has no head to sweep
        "conll2003/tagger-bidirectional/500/head=lstm",
        "conll2003/tagger-causal/500/head=linear",  # the sweep is the bidirectional tagger's (train-tagger's defaults)
    ):
        with pytest.raises(ValueError, match="--cell"):
            Cell.parse(bad)
    longer = Cell.parse("conll2003/gen-list/5000/epochs=2")
    assert (longer.epochs, longer.lr, longer.label) == (2, None, "gen-list (2 epochs)")
    assert grid.steps_for(5000, longer.epochs) == 2 * grid.steps_for(5000, grid.default_epochs(5000, 5000))


def test_a_whole_small_split_trains_as_long_as_a_subset_of_its_size():
    # the e-mails' `all` is 240 records: one epoch would give it fewer steps than the 120-record cell's 3 epochs
    assert grid.default_epochs("all", 240) == grid.default_epochs(500, 500) == 3
    assert grid.steps_for(240, grid.default_epochs("all", 240)) > grid.steps_for(120, grid.default_epochs(120, 120))
    assert grid.default_epochs("all", 4847) == grid.default_epochs(5000, 5000) == 1  # KIND-ADG's whole pool
    assert grid.default_epochs("all", 14041) == 1  # CoNLL-2003: past every listed size


def test_an_all_cell_whose_pool_fits_a_listed_size_is_that_cell_and_trains_nothing(tmp_path, monkeypatch):
    # KIND-ADG: 4,847 training sentences, so `.../all` would train the `.../5000` cell's sentences for its epochs
    monkeypatch.setattr(results, "RESULTS", tmp_path)
    monkeypatch.setattr(results, "pool_size", lambda corpus_name: {"kind-adg": 4847}.get(corpus_name, 20000))
    whole, listed = Cell.parse("kind-adg/minilm/all"), Cell.parse("kind-adg/minilm/5000")
    assert results.train_count("kind-adg", "all") == results.train_count("kind-adg", 5000)
    assert grid.default_epochs("all", 4847) == grid.default_epochs(5000, 4847)
    assert results.listed_twin(whole) == listed and results.done(whole) is None
    assert results.listed_twin(Cell.parse("kind-wn/minilm/all")) is None  # a pool past every listed size
    results.result_path(listed).write_text(json.dumps({"cell": listed.name, "learning_rate": 0.003}))
    assert results.done(whole) == results.result_path(listed)
    assert runner.run_cell(whole) == {
        "cell": listed.name,
        "learning_rate": 0.003,
    }  # the twin's result, nothing trained
    assert not (tmp_path / f"{whole.file_stem()}.json").exists()


def test_the_e_mails_whole_split_is_every_e_mail_of_the_training_file():
    import csv

    with open(ROOT / "data/emails_it_large/train.csv", encoding="utf-8", newline="") as handle:
        e_mails = {row["id"] for row in csv.DictReader(handle)}
    assert results.pool_size("emails-it") == len(e_mails) == 240


def test_the_report_ranks_systems_per_size_and_details_the_largest():
    finished = [
        result("minilm", 500, 0.68),
        result("gen-list", 500, 0.71),
        result("gen-list", 2000, 0.80, {"PER": 0.9, "LOC": 0.7}, {"correct": 8, "missed": 2}),
        result("minilm", 2000, 0.75, {"PER": 0.85}),
    ]
    lines = report.winners(finished)
    ranked = [line for line in lines if line.startswith("- conll2003")]
    assert ranked[0].startswith("- conll2003, 500 sentences: gen-list 0.710") and "> minilm 0.680" in ranked[0]
    assert ranked[1].startswith("- conll2003, 2000 sentences: gen-list 0.800")
    table = "\n".join(report.details(finished))
    assert "2000 training sentences: P / R / F1 per type" in table and "500 training" not in table
    assert "| gen-list | 0.70 / 0.70 / 0.70 | 0.90 / 0.90 / 0.90 |" in table  # LOC, PER columns
    assert "| minilm | - | 0.85 / 0.85 / 0.85 |" in table
    assert "| gen-list | 8 | 2 |" in table  # only analysed cells in the error table
    # a larger size with fewer systems measured does not hide the comparison at the size where most ran
    fewer = [*finished, result("tagger-bidirectional", 500, 0.66), result("minilm", 5000, 0.82)]
    assert "500 training sentences: P / R / F1 per type" in "\n".join(report.details(fewer))
    superseded = result("gen-list", 2000, 0.5, {"PER": 0.5}) | {"cell": "conll2003/gen-list/2000/lr=0.003"}
    assert "\n".join(report.details([*finished, superseded])).count("| gen-list |") == 2  # once per table, not twice
    longer = result("gen-list", 2000, 0.83) | {"label": "gen-list (2 epochs)"}  # a longer run is a row of its own
    ranked = [line for line in report.winners([*finished, longer]) if line.startswith("- conll2003, 2000")]
    assert ranked[0].startswith("- conll2003, 2000 sentences: gen-list (2 epochs) 0.830")
    assert "> gen-list 0.800" in ranked[0]


def test_a_main_cell_reuses_the_winning_sweep_model_only(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "RUNS", tmp_path)
    sweep = Cell("conll2003", "tagger-causal", 500, 0.001)
    (tmp_path / sweep.file_stem() / "model").mkdir(parents=True)
    (tmp_path / sweep.file_stem() / "train.json").write_text(json.dumps({"steps": 3}))
    main = Cell("conll2003", "tagger-causal", 500)
    folder = tmp_path / main.file_stem()
    runner.reuse_sweep(main, 0.001, {"source": "default (no sweep cell finished)"}, folder)
    assert not (folder / "train.json").exists()
    runner.reuse_sweep(main, 0.003, {"source": "sweep at 500 sentences (dev F1)"}, folder)  # no such sweep cell
    assert not (folder / "train.json").exists()
    runner.reuse_sweep(main, 0.001, {"source": "sweep at 500 sentences (dev F1)"}, folder)
    assert json.loads((folder / "train.json").read_text()) == {"steps": 3} and (folder / "model").is_dir()


def test_the_learning_rate_comes_from_the_corpus_sweep_then_another_corpus_then_the_default(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "RESULTS", tmp_path)

    def finish_sweep(corpus, lr, dev_f1):
        cell = Cell(corpus, "tagger-causal", grid.CORPORA[corpus].sizes[0], lr)
        results.result_path(cell).write_text(json.dumps({"train": {"best_dev_f1": dev_f1}}))

    kind = Cell("kind-wn", "tagger-causal", 2000)
    # no sweep anywhere: the system's default from grid.yaml, and a choice that says so and lists no candidate
    assert results.chosen_lr(kind) == (0.001, {"source": "default (no sweep cell finished)", "candidates": {}})
    finish_sweep("conll2003", 0.0003, 0.5)
    finish_sweep("conll2003", 0.003, 0.7)
    lr, choice = results.chosen_lr(kind)
    assert lr == 0.003 and choice["source"].startswith("transferred: conll2003's sweep")
    finish_sweep("kind-wn", 0.0003, 0.6)
    finish_sweep("kind-wn", 0.001, 0.4)
    lr, choice = results.chosen_lr(kind)
    assert lr == 0.0003 and choice["source"] == "sweep at 500 sentences (dev F1)"


def test_minilm_takes_each_sizes_own_sweep_winner_once_two_rates_ran_there(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "RESULTS", tmp_path)

    def finish(cell, dev, lr=None, tested=False):
        record = {"cell": cell.name, "learning_rate": lr or cell.lr, "train": {"best_dev_f1": dev}}
        results.result_path(cell).write_text(json.dumps(record | ({"test": {}} if tested else {})))

    for lr, dev in ((0.0003, 0.45), (0.001, 0.63), (0.003, 0.64)):  # the 500-sentence sweep: 3e-3 by a hair
        finish(Cell("conll2003", "minilm", 500, lr), dev)
    big = Cell("conll2003", "minilm", "all")
    assert results.chosen_lr(big)[0] == 0.003  # nothing run at this size: the smallest size's winner
    finish(big, 0.30, lr=0.003, tested=True)  # the main cell, trained at 3e-3, stands for that sweep point
    assert results.chosen_lr(big)[0] == 0.003 and not results.stale(json.loads(results.result_path(big).read_text()))
    finish(Cell("conll2003", "minilm", "all", 0.001), 0.92, tested=True)  # a former main cell, kept as a point
    lr, choice = results.chosen_lr(big)
    assert lr == 0.001 and choice == {
        "source": "sweep at all sentences (dev F1)",
        "candidates": {"0.001": 0.92, "0.003": 0.3},
    }
    assert (
        results.stale(json.loads(results.result_path(big).read_text()))
        == "stale: trained at lr=0.003, its sweeps now choose 0.001"
    )
    taken = runner.tested_sweep(big, lr, choice)  # re-running the stale cell takes that point's result, trains nothing
    assert (taken["cell"], taken["result_of"], taken["learning_rate"]) == (
        big.name,
        "conll2003/minilm/all/lr=0.001",
        lr,
    )
    assert taken["learning_rate_choice"] == choice and "test" in taken
    assert (
        runner.tested_sweep(Cell("conll2003", "minilm", 500), 0.003, choice) is None
    )  # dev only: its model is reused
    assert results.chosen_lr(Cell("conll2003", "minilm", 2000))[0] == 0.003  # other sizes keep the 500 winner
    finish(Cell("conll2003", "tagger-causal", "all", 0.003), 0.99)  # other systems: no sweep past the smallest
    assert results.chosen_lr(Cell("conll2003", "tagger-causal", "all"))[0] == grid.SYSTEMS["tagger-causal"]["lr"]
    assert Cell("conll2003", "minilm", 5000, 0.001) in grid.grid()
    assert Cell("conll2003", "tagger-causal", 5000, 0.001) not in grid.grid()


def test_a_sweep_at_a_larger_size_chooses_for_that_size_and_above_on_every_corpus(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(results, "RUNS", tmp_path / "runs")
    results.RESULTS.mkdir()

    def finish(name, dev, lr=None, tested=False):
        record = {"cell": name, "learning_rate": lr or Cell.parse(name).lr, "train": {"best_dev_f1": dev}}
        results.result_path(Cell.parse(name)).write_text(json.dumps(record | ({"test": {}} if tested else {})))

    for lr, dev in ((0.0003, 0.57), (0.001, 0.665), (0.003, 0.674)):  # the inline format at 500: 3e-3 by a hair
        finish(f"conll2003/gen-inline/500/lr={lr}", dev)
    finish("conll2003/gen-inline/2000", 0.88, lr=0.001, tested=True)  # trained at 1e-3 before the sweep said 3e-3
    # one rate at 2,000 (the main cell's): no sweep there yet, the 500-sentence winner rules
    assert results.chosen_lr(Cell.parse("conll2003/gen-inline/2000"))[0] == 0.003
    assert results.chosen_lr(Cell.parse("kind-wn/gen-inline/5000"))[0] == 0.003
    assert results.stale(json.loads(results.result_path(Cell.parse("conll2003/gen-inline/2000")).read_text()))
    finish("conll2003/gen-inline/2000/lr=0.003", 0.80)  # the main cell stands for the 1e-3 point: two rates now
    expected = {
        "conll2003/gen-inline/500": (0.003, "sweep at 500 sentences (dev F1)"),
        "conll2003/gen-inline/2000": (0.001, "sweep at 2000 sentences (dev F1)"),
        "conll2003/gen-inline/all": (0.001, "sweep at 2000 sentences (dev F1)"),
        "kind-wn/gen-inline/500": (0.003, "transferred: conll2003's sweep at 500 sentences (dev F1)"),
        "kind-wn/gen-inline/5000": (0.001, "transferred: conll2003's sweep at 2000 sentences (dev F1)"),
        "emails-it/gen-inline/120": (0.003, "transferred: conll2003's sweep at 500 sentences (dev F1)"),
        "emails-it/gen-inline/all": (0.003, "transferred: conll2003's sweep at 500 sentences (dev F1)"),  # 240 e-mails
    }
    for name, (lr, source) in expected.items():
        chosen, choice = results.chosen_lr(Cell.parse(name))
        assert (chosen, choice["source"]) == (lr, source)
    assert results.chosen_lr(Cell.parse("conll2003/gen-inline/5000"))[1]["candidates"] == {
        "0.001": 0.88,
        "0.003": 0.8,
    }
    assert not results.stale(json.loads(results.result_path(Cell.parse("conll2003/gen-inline/2000")).read_text()))
    cells = grid.grid()  # listed, before the main cells they choose for, so that `--all` reproduces the choice
    points = [cells.index(Cell("conll2003", "gen-inline", 2000, lr)) for lr in (0.001, 0.003)]
    assert max(points) < cells.index(Cell("conll2003", "gen-inline", 2000))
    assert Cell("conll2003", "gen-inline", 2000, 0.0003) not in cells
    assert Cell("kind-fic", "gen-inline", 2000, 0.003) not in cells
    finish("conll2003/gen-inline/2000/lr=0.003", 0.95)  # had 3e-3 won there, the 1e-3 main cell would be stale
    main = Cell.parse("conll2003/gen-inline/2000")
    assert results.stale(json.loads(results.result_path(main).read_text())) == (
        "stale: trained at lr=0.001, its sweeps now choose 0.003"
    )
    assert runner.retire(  # its 1e-3 result goes to the sweep point of that rate at 2,000, not to superseded/
        main, json.loads(results.result_path(main).read_text())
    ) == results.result_path(Cell("conll2003", "gen-inline", 2000, 0.001))


def test_redoing_a_stale_cell_keeps_its_old_result_as_a_sweep_point_or_in_superseded(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(results, "RUNS", tmp_path / "runs")
    results.RESULTS.mkdir()
    old = {"learning_rate": 0.003, "train": {"best_dev_f1": 0.3}, "test": {"f1": 0.5}}
    for name in ("conll2003/minilm/all", "conll2003/tagger-causal/2000"):  # swept at its size, and not
        cell = Cell.parse(name)
        results.result_path(cell).write_text(json.dumps(old | {"cell": name}))
        (results.RUNS / cell.file_stem() / "model").mkdir(parents=True)
    minilm, causal = Cell.parse("conll2003/minilm/all"), Cell.parse("conll2003/tagger-causal/2000")
    point = results.result_path(Cell("conll2003", "minilm", "all", 0.003))
    assert runner.retire(minilm, json.loads(results.result_path(minilm).read_text())) == point
    kept = json.loads(point.read_text())
    assert (kept["cell"], kept["test"], kept["train"]) == ("conll2003/minilm/all/lr=0.003", old["test"], old["train"])
    assert kept["command"].endswith("--cell conll2003/minilm/all/lr=0.003")
    assert (
        not results.result_path(minilm).exists()
        and (results.RUNS / "conll2003__minilm__all__lr=0.003" / "model").is_dir()
    )
    assert results.done(Cell("conll2003", "minilm", "all", 0.003)) == point  # it still counts in the sweep
    moved = runner.retire(causal, json.loads(results.result_path(causal).read_text()))
    assert moved == results.RESULTS / "superseded" / "conll2003__tagger-causal__2000.json"
    assert json.loads(moved.read_text())["cell"] == causal.name and not results.result_path(causal).exists()
    assert (results.RUNS / "superseded" / causal.file_stem() / "model").is_dir()
    results.result_path(causal).write_text(json.dumps(old | {"cell": causal.name}))  # stale again: never overwrite
    with pytest.raises(SystemExit) as refused:
        runner.retire(causal, old | {"cell": causal.name})
    assert refused.value.code == 2 and results.result_path(causal).exists()


def test_a_main_cell_trained_at_a_sweep_rate_stands_for_that_sweep_point(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "RESULTS", tmp_path)
    sweep = {lr: Cell("conll2003", "gen-list", 500, lr) for lr in (0.0003, 0.001, 0.003)}
    main = results.result_path(Cell("conll2003", "gen-list", 500))
    main.write_text(json.dumps({"learning_rate": 0.001, "train": {"best_dev_f1": 0.9}, "test": {}}))
    lr, choice = results.chosen_lr(Cell("conll2003", "gen-list", 2000))
    assert choice["source"].startswith("default")  # a main cell alone is no sweep
    results.result_path(sweep[0.0003]).write_text(json.dumps({"train": {"best_dev_f1": 0.5}}))
    results.result_path(sweep[0.003]).write_text(json.dumps({"train": {"best_dev_f1": 0.6}}))
    main.write_text(json.dumps({"learning_rate": 0.002, "train": {"best_dev_f1": 0.9}, "test": {}}))
    assert results.done(sweep[0.001]) is None  # trained at a rate the sweep does not hold
    assert results.chosen_lr(Cell("conll2003", "gen-list", 2000))[0] == 0.003
    main.write_text(json.dumps({"learning_rate": 0.001, "train": {"best_dev_f1": 0.9}, "test": {}}))
    assert results.done(sweep[0.001]) == main and results.done(sweep[0.003]) == results.result_path(sweep[0.003])
    lr, choice = results.chosen_lr(Cell("conll2003", "gen-list", 2000))
    assert lr == 0.001 and choice["candidates"] == {"0.0003": 0.5, "0.001": 0.9, "0.003": 0.6}


def test_every_tagger_system_builds_a_valid_config(tmp_path, monkeypatch):
    """The bilstm-crf cell once crashed at start: it was handed freeze_backbone=False, which that head refuses."""
    from instruct_ner.sft.train_tagger import TaggerConfig

    monkeypatch.setattr(runner, "minilm_path", lambda: str(tmp_path / "minilm"))
    data = {"train": tmp_path / "train.txt", "dev_file": tmp_path / "dev.txt", "reader": ()}
    data.update(limit=500, size=500, epochs=3)
    for system, spec in grid.SYSTEMS.items():
        if spec["kind"] == "tagger":
            config = TaggerConfig(**runner.tagger_options(spec, data, 1e-3, tmp_path / system, "fp32"))
            assert bool(config.freeze_backbone) == (system in ("tagger-frozen-crf", "tagger-bilstm-crf")), system


def test_head_and_loss_sweep_cells_train_their_variant_on_dev_only_after_the_learning_rate(tmp_path):
    from instruct_ner.sft.train_tagger import TaggerConfig

    cells = [c for c in grid.grid() if c.corpus == "conll2003" and c.system == "tagger-bidirectional"]
    variants = [c for c in cells if c.variant]
    assert [c.name for c in variants] == [
        "conll2003/tagger-bidirectional/500/head=linear",
        "conll2003/tagger-bidirectional/500/loss=ce",
    ]
    assert all(c.sweep and c.lr is None for c in variants) and not Cell.parse("conll2003/gen-list/500").sweep
    assert variants[0].file_stem(test_limit=300) == "conll2003__tagger-bidirectional__500__head=linear"
    assert not [c for c in grid.grid() if c.variant and c.system != "tagger-bidirectional"]
    todo = sorted(cells, key=lambda c: (c.lr is None, not c.variant))  # main()'s --all order
    assert [bool(c.lr) for c in todo[:3]] == [True] * 3 and all(c.variant for c in todo[3:5])
    assert not any(c.sweep for c in todo[5:])

    data = {"train": tmp_path / "train.txt", "dev_file": tmp_path / "dev.txt", "reader": ()}
    data.update(limit=500, size=500, epochs=3)
    heads = {}
    for variant in (None, *grid.VARIANTS):
        spec = {**grid.SYSTEMS["tagger-bidirectional"], **grid.VARIANTS.get(variant, {})}
        config = TaggerConfig(**runner.tagger_options(spec, data, 1e-3, tmp_path / str(variant), "fp32"))
        heads[variant] = (config.head, config.loss, config.attention)
    assert heads == {
        None: ("crf", "compound", "bidirectional"),
        "head=linear": ("linear", "ce", "bidirectional"),
        "loss=ce": ("crf", "ce", "bidirectional"),
    }


def test_the_sweep_table_lists_head_and_loss_cells_with_their_rate():
    main = result("tagger-bidirectional", 500, 0.6) | {"size": 500, "learning_rate": 0.003}
    main["train"] |= {"best_dev_f1": 0.66, "learning_rate": 0.003}
    lr_cell = {
        "cell": "conll2003/tagger-bidirectional/500/lr=0.001",
        "corpus": "conll2003",
        "system": "tagger-bidirectional",
        "learning_rate": 0.001,
        "train": {"best_dev_f1": 0.64, "best_step": 124, "steps": 189},
    }
    linear = lr_cell | {"cell": "conll2003/tagger-bidirectional/500/head=linear", "learning_rate": 0.003}
    linear["train"] = {"best_dev_f1": 0.61, "best_step": 186, "steps": 189}
    table = report.markdown([main, lr_cell, linear])
    assert "| conll2003/tagger-bidirectional/500/head=linear | 0.003 | 0.6100 | 186 | 189 |" in table
    assert "| conll2003/tagger-bidirectional/500/lr=0.001 | 0.001 | 0.6400 | 124 | 189 |" in table
    assert "| conll2003/tagger-bidirectional/500/lr=0.003 (its main cell) | 0.003 | 0.6600 | 10 | 10 |" in table


def test_a_cell_trained_before_a_sweep_point_beat_its_rate_is_flagged_stale(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "RESULTS", tmp_path)
    main = result("minilm", 500, 0.7) | {"learning_rate": 0.001}  # ran at the default: no sweep point yet
    bigger = result("minilm", 2000, 0.8) | {"cell": "conll2003/minilm/2000", "learning_rate": 0.001}
    results.result_path(Cell("conll2003", "minilm", 500)).write_text(
        json.dumps(main | {"train": {"best_dev_f1": 0.6}})
    )
    assert results.stale(main) == results.stale(bigger) == ""
    sweep = Cell("conll2003", "minilm", 500, 0.003)
    results.result_path(sweep).write_text(json.dumps({"cell": sweep.name, "train": {"best_dev_f1": 0.5}}))
    assert results.stale(bigger) == ""  # the main cell's own point (1e-3) still wins
    results.result_path(sweep).write_text(json.dumps({"cell": sweep.name, "train": {"best_dev_f1": 0.65}}))
    note = "stale: trained at lr=0.001, its sweeps now choose 0.003"
    assert results.stale(main) == results.stale(bigger) == note
    assert results.stale({"cell": sweep.name, "learning_rate": 0.003}) == ""  # a sweep cell fixes its own rate
    row = next(r for r in report.markdown([bigger]).split("\n") if r.startswith("| conll2003 | minilm | 2000 |"))
    assert f"| 0.001 ({note}) |" in row


def test_the_grid_table_says_when_each_cell_finished():
    dated = result("minilm", 500, 0.7) | {"date": "2026-11-24 18:26 UTC"}
    rows = report.markdown([dated, result("gen-list", 500, 0.6)]).split("\n")
    assert rows[0].endswith("| measured (UTC) |")
    assert next(r for r in rows if r.startswith("| conll2003 | minilm |")).endswith("| - | 2026-11-24 18:26 |")
    assert next(r for r in rows if r.startswith("| conll2003 | gen-list |")).endswith("| - |")  # written before dates


def test_a_bad_cell_on_the_command_line_is_one_line_and_exit_2(capsys):
    with pytest.raises(SystemExit) as stopped:
        learning_curve.main(["--cell", "conll2003/gen-list/500/head=linear"])
    assert stopped.value.code == 2
    assert "--cell 'conll2003/gen-list/500/head=linear': expected" in capsys.readouterr().err


def test_the_sweep_table_names_a_main_cell_only_where_it_did_the_sweep_points_training():
    """A main cell trained at a swept rate stands for that sweep point; a superseded main cell kept as a tested
    sweep point (the e-mails' causal tagger at 1e-3, whose own sweep then chose 3e-3) is a plain sweep point."""

    def trained(cell, lr, dev, tested=True):
        parsed = Cell.parse(cell)
        r = result(parsed.system, parsed.size, 0.9) | {"cell": cell, "size": parsed.size, "learning_rate": lr}
        r["train"] |= {"best_dev_f1": dev, "learning_rate": lr}
        if not tested:
            del r["test"]
        return r

    finished = [
        trained("conll2003/tagger-causal/500", 0.003, 0.98),  # the main cell, at its sweep's winner
        trained("conll2003/tagger-causal/500/lr=0.003", 0.003, 0.98, tested=False),
        trained("conll2003/tagger-causal/500/lr=0.001", 0.001, 0.92),  # the old main cell, kept as a sweep point
        trained("conll2003/tagger-bidirectional/500", 0.001, 0.90),  # did the lr=0.001 sweep point's training
        trained("conll2003/tagger-bidirectional/500/lr=0.003", 0.003, 0.85, tested=False),
    ]
    rows = [line for line in report.markdown(finished).split("\n") if line.startswith("| conll2003/")]
    assert "| conll2003/tagger-causal/500/lr=0.001 | 0.001 | 0.9200 | 10 | 10 |" in rows
    assert "| conll2003/tagger-causal/500/lr=0.003 | 0.003 | 0.9800 | 10 | 10 |" in rows
    assert "| conll2003/tagger-bidirectional/500/lr=0.001 (its main cell) | 0.001 | 0.9000 | 10 | 10 |" in rows
    assert not any("tagger-causal" in row and "its main cell" in row for row in rows)
    ranked = next(line for line in report.winners(finished) if line.startswith("- conll2003, 500"))
    assert ranked.count("tagger-causal") == 1  # the tested sweep point is not ranked beside its main cell


def test_a_finished_training_keeps_its_best_model_and_drops_its_resume_checkpoints(tmp_path):
    model = tmp_path / "model"
    for step in (10, 20):
        (model / f"checkpoint-{step}").mkdir(parents=True)
        (model / f"checkpoint-{step}" / "training_state.pt").write_bytes(b"state")
    (model / "head.pt").write_bytes(b"best weights")
    trained = {"steps": 20, "seconds": 5.0, "best_step": 10, "best_dev_f1": 0.5, "dev_history": [], "eval_seconds": 1}
    watch = type("Watch", (), {"total": 6.0})()
    summary = runner.write_train_summary(tmp_path, trained, 20, watch, 1e-3)
    assert json.loads((tmp_path / "train.json").read_text()) == summary and summary["best_step"] == 10
    assert sorted(p.name for p in model.iterdir()) == ["head.pt"]


def test_a_main_cell_that_took_a_tested_sweep_points_result_is_one_row_in_the_grid_table():
    """MiniLM at 2,000: the main cell at 3e-3 was retired to its sweep point and the 1e-3 point, a former main cell
    with a test, became the main cell's result; the table once listed that 1e-3 result twice."""
    point = result("minilm", 2000, 0.81) | {"cell": "conll2003/minilm/2000/lr=0.001", "learning_rate": 0.001}
    main = point | {"cell": "conll2003/minilm/2000", "result_of": point["cell"]}
    retired = result("minilm", 2000, 0.73) | {"cell": "conll2003/minilm/2000/lr=0.003", "learning_rate": 0.003}
    for r, dev in ((point, 0.87), (retired, 0.82)):
        r["train"] = r["train"] | {"best_dev_f1": dev}
    rows = [r for r in report.markdown([main, point, retired]).split("\n") if r.startswith("| conll2003 | minilm |")]
    assert [r.split(" | ")[3:4] + r.split(" | ")[9:10] for r in rows] == [
        ["0.001", "**0.8100**"],
        ["0.003", "**0.7300**"],
    ]


def test_a_killed_training_keeps_its_seconds_up_to_its_last_checkpoint_and_resumes_the_count(tmp_path, monkeypatch):
    import time

    clock = [100.0]  # a fake clock: the seconds the Stopwatch sees are the ones the test sets
    monkeypatch.setattr(runner.time, "perf_counter", lambda: clock[0])
    model, saved = tmp_path / "model", tmp_path / "train_seconds_so_far.json"
    (model / "checkpoint-10").mkdir(parents=True)  # a resumed run: its old checkpoint is not news
    watch = runner.Stopwatch(tmp_path, checkpoints_in=model, poll=0.01).__enter__()
    clock[0] = 107.0
    time.sleep(0.1)
    assert not saved.exists()
    (model / "checkpoint-20").mkdir()  # the trainer saves at 7 s ...
    for _ in range(500):
        if saved.exists():
            break
        time.sleep(0.01)
    clock[0] = 112.0  # ... and the process is killed at 12 s, before the Stopwatch exits: no __exit__
    watch.stop.set()
    watch.thread.join()
    assert json.loads(saved.read_text())["seconds"] == 7.0  # the seconds up to the checkpoint, not those after it
    with runner.Stopwatch(tmp_path, checkpoints_in=model, poll=0.01) as resumed:  # the resumed process
        clock[0] = 115.0
    assert resumed.total == json.loads(saved.read_text())["seconds"] == 7.0 + 3.0


def test_a_test_cut_off_by_sigterm_keeps_its_seconds(tmp_path, monkeypatch):
    import time

    def cut_off(*args):  # the CLI's generation runs a while, then main()'s SIGTERM handler exits
        time.sleep(0.1)
        sys.exit(143)

    monkeypatch.setattr(runner, "cli", cut_off)
    data = {"test": tmp_path / "test.txt"}
    with pytest.raises(SystemExit):
        runner.test_cell(Cell.parse("conll2003/gen-list/500"), grid.SYSTEMS["gen-list"], data, tmp_path, "fp32", None)
    assert json.loads((tmp_path / "test_seconds_so_far.json").read_text())["seconds"] >= 0.1


def test_the_selector_is_a_pure_policy_over_the_sweep_points_it_is_given():
    """No file: the sweep points come from a table. Expected rates are read off the table by hand."""
    table = {
        ("conll2003", 500): {"0.0003": 0.50, "0.001": 0.66, "0.003": 0.67},  # 3e-3 by a hair at 500
        ("conll2003", 2000): {"0.001": 0.88, "0.003": 0.80},  # 1e-3 once two rates ran at 2,000
        ("kind-fic", 500): {"0.001": 0.41},  # one point: still the smallest size's sweep
    }

    def points(corpus, size):
        return table.get((corpus, size), {})

    def pool():
        return 9000

    assert selector.ruling_sweep(points, "conll2003", 1999) == (500, table["conll2003", 500])
    assert selector.ruling_sweep(points, "conll2003", 2000) == (2000, table["conll2003", 2000])
    assert selector.ruling_sweep(points, "kind-wn", 5000) is None
    expected = {
        Cell("conll2003", "gen-inline", 500): (0.003, "sweep at 500 sentences (dev F1)"),
        Cell("conll2003", "gen-inline", "all"): (0.001, "sweep at 2000 sentences (dev F1)"),
        Cell("kind-fic", "gen-inline", "all"): (0.001, "sweep at 500 sentences (dev F1)"),
        # no sweep of its own: CoNLL-2003's, at the size its 9,000-sentence pool reaches
        Cell("kind-wn", "gen-inline", "all"): (0.001, "transferred: conll2003's sweep at 2000 sentences (dev F1)"),
        Cell("kind-wn", "gen-inline", 500): (0.003, "transferred: conll2003's sweep at 500 sentences (dev F1)"),
    }
    for cell, (lr, source) in expected.items():
        chosen, choice = selector.chosen_lr(cell, points, pool)
        assert (chosen, choice["source"]) == (lr, source), cell.name
    assert selector.chosen_lr(Cell("kind-wn", "gen-inline", "all"), points, lambda: 1000)[0] == 0.003  # a small pool
    assert selector.chosen_lr(Cell("kind-wn", "tagger-frozen-crf", 500), lambda c, s: {}, pool) == (
        0.003,  # that system's default in grid.yaml
        {"source": "default (no sweep cell finished)", "candidates": {}},
    )
    assert selector.chosen_lr(Cell("kind-wn", "zero-shot", 0), points, pool) == (None, {"source": "no training"})


def test_the_grid_file_gives_every_later_sweep_and_extra_cell_a_reason():
    text = grid.GRID_FILE.read_text(encoding="utf-8")
    assert "LATER_SWEEPS" not in text and all(later["note"] for later in grid.GRID["later_sweeps"])
    assert all(extra["note"] for extra in grid.GRID["extra_cells"])
    assert grid.LATER_SWEEPS[("emails-it", "gen-inline")] == {120: (0.001, 0.003)}
    assert grid.EXTRA_CELLS == ("conll2003/gen-list/5000/epochs=2",)
    assert grid.LR_SWEEP["gen"] == (3e-4, 1e-3, 3e-3) and "note" not in grid.SYSTEMS["minilm"]


def test_the_tables_show_each_system_at_its_largest_size_and_minilm_at_5000():
    def cell(system, size, f1, count=None, **extra):
        r = result(system, count or size, f1) | {"cell": f"conll2003/{system}/{size}", "precision": "fp32"}
        return r | {"machine": "CPU x86_64, 2 cores, native bf16, torch threads 2"} | extra

    prompted = result("zero-shot", 0, 0.02) | {"cell": "conll2003/zero-shot/0"}
    del prompted["train"]
    subset = cell("gen-inline", "all", 0.95, 14041)
    subset["test"] = subset["test"] | {"test_is_subset": True}
    finished = [
        cell("minilm", 500, 0.60),
        cell("minilm", 5000, 0.80, machine="CPU x86_64, 2 cores, torch threads 2"),  # equal data: a row
        cell("minilm", "all", 0.86, 14041),
        cell("gen-list", 500, 0.70),
        cell("gen-list", 2000, 0.8604),  # its largest size: the same F1 as MiniLM's at three decimals
        cell("gen-list", 2000, 0.99) | {"cell": "conll2003/gen-list/2000/lr=0.003"},  # a sweep point, not a row
        cell("gen-inline", 2000, 0.75),
        subset,  # a test subset is no row: the 2,000 cell stands
        cell("tagger-causal", 5000, 0.50, 4847),  # a pool smaller than the size
        prompted,
    ]
    assert report.table_rows(finished, "kind-wn") == []
    text = report.tables(finished)
    assert text.startswith("### CoNLL-2003 (English news; test: all 100 sentences)\n")
    rows = [line for line in text.split("\n") if line.startswith("| ") and not line.startswith("| system")]
    assert rows == [
        "| generative, entity list | `conll2003/gen-list/2000` | **0.860** | 2 | 10.00 | B | fp32 |",
        "| MiniLM-L6 + CRF | `conll2003/minilm/all` (14,041) | **0.860** | 2 | 10.00 | B | fp32 |",
        "| MiniLM-L6 + CRF | `conll2003/minilm/5000` | 0.800 | 2 | 10.00 | A | fp32 |",
        "| generative, inline | `conll2003/gen-inline/2000` | 0.750 | 2 | 10.00 | B | fp32 |",
        "| causal LoRA + CRF tagger | `conll2003/tagger-causal/5000` (all 4,847) | 0.500 | 2 | 10.00 | B | fp32 |",
    ]
    assert report.machine_letter("CPU x86_64, 2 cores, native bf16, torch threads 1") == "B"
    assert report.machine_letter("GPU H100") == "GPU H100"
    assert report.fill("list {f1 conll2003/gen-list/2000} in {min conll2003/gen-list/2000} min", finished) == (
        "list 0.860 in 2 min"
    )
    with pytest.raises(ValueError, match="no full-test result of conll2003/gen-list/5000"):
        report.fill("{f1 conll2003/gen-list/5000}", finished)


def test_report_writes_the_tables_between_the_markers_only_and_refuses_without_them(tmp_path):
    finished = [result("minilm", 500, 0.6) | {"machine": "CPU x86_64, 2 cores", "precision": "fp32"}]
    document = tmp_path / "BENCHMARKS.md"
    document.write_text(f"# top\n{report.TABLES_BEGIN}\nold table\n{report.TABLES_END}\n\nbelow\n")
    report.write_tables(finished, document)
    assert (
        document.read_text()
        == f"# top\n{report.TABLES_BEGIN}\n{report.tables(finished)}{report.TABLES_END}\n\nbelow\n"
    )
    assert report.tables_in(document) == report.tables(finished)
    document.write_text(f"# top\n{report.TABLES_END}\n{report.TABLES_BEGIN}\n")  # the wrong order
    with pytest.raises(ValueError, match="markers .* are missing"):
        report.write(finished, tmp_path / "report", document)
    assert document.read_text() == f"# top\n{report.TABLES_END}\n{report.TABLES_BEGIN}\n"
    assert not (tmp_path / "report").exists()  # refused before anything was written


def test_benchmarks_md_tables_are_the_ones_the_results_give():
    """BENCHMARKS.md's tables cannot drift from the result files: `--report` writes them (run it after a cell)."""
    assert report.tables_in(ROOT / "BENCHMARKS.md") == report.tables(results.load_results())


def test_the_f1_figure_joins_a_systems_chosen_rate_only_and_marks_other_rates_apart():
    main = result("minilm", 2000, 0.81) | {"learning_rate": 0.001}
    other = result("minilm", 2000, 0.73) | {"cell": "conll2003/minilm/2000/lr=0.003", "learning_rate": 0.003}
    point = result("minilm", 500, 0.68) | {"cell": "conll2003/minilm/500/lr=0.001"}
    taken = result("minilm", 500, 0.68) | {"result_of": point["cell"]}  # the main cell took that point's result
    lines, others = report.series([main, other, point, taken], "conll2003", lambda r: r["train_sentences"])
    assert lines == {"minilm": [(500, 0.68), (2000, 0.81)]}  # one point per size: no vertical segment
    assert others == [(2000, 0.73, "minilm")]
