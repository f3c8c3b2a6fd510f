"""What the learning-curve grid has on disk: each cell's result file (`RESULTS/<cell>.json`) and its `runs/` folder,
whether a cell is done (directly, through the main cell that did a sweep point's training, or through a listed
twin), the sweep points a learning-rate choice reads, and the corpora's training pools.

It reads results and corpora and never writes either (`runner` does); the choice itself is `selector`'s policy,
applied here to what is on disk (`chosen_lr`, `stale`).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from benchmarks.curves import selector
from benchmarks.curves.grid import CORPORA, DEV_SENTENCES, LR_SWEEP, ROOT, SYSTEMS, Cell, Corpus

RESULTS = ROOT / "benchmarks" / "results" / "learning_curve"
RUNS = ROOT / "runs" / "learning_curve"


def shown(path: Path) -> Path:
    """A path as messages print it: relative to the repository when inside it."""
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


# ------------------------------------------------------------------------------------------ corpora


def read(path: Path, corpus: Corpus, limit: int | None = None):
    from instruct_ner.prompts.readers import ReaderOptions, load_examples

    options = ReaderOptions(format="csv", id_column="id") if corpus.reader else ReaderOptions()
    options.limit = limit
    return load_examples(path, options)[0]


@functools.cache
def pool_size(corpus_name: str) -> int:
    """Training sentences a corpus offers (KIND: its training file less the dev sentences set aside)."""
    corpus = CORPORA[corpus_name]
    count = len(read(corpus.train, corpus))
    return count if corpus.dev is not None else count - DEV_SENTENCES


def train_count(corpus_name: str, size) -> int:
    """Training sentences a cell of this size uses: all of the pool, or the first `size` of it."""
    return pool_size(corpus_name) if size == "all" else min(int(size), pool_size(corpus_name))


# ------------------------------------------------------------------------------------------ finished cells


def result_path(cell: Cell, test_limit: int | None = None) -> Path:
    return RESULTS / f"{cell.file_stem(test_limit)}.json"


def load_results() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]


def same_training(cell: Cell) -> Path | None:
    """A sweep cell's training already done by the main cell of its size at its learning rate (that cell was
    trained before the sweep finished, with the same data, steps and dev set): its result stands for the
    sweep point, so nothing is trained twice."""
    main = result_path(Cell(cell.corpus, cell.system, cell.size))
    if cell.lr is None or not main.exists():
        return None
    trained = json.loads(main.read_text())
    return main if trained.get("learning_rate") == cell.lr and "train" in trained else None


def listed_twin(cell: Cell) -> Cell | None:
    """The listed size whose cell trains exactly what an `all` cell would, when the corpus's whole pool fits in
    it: the same sentences for the same epochs (`default_epochs`), so nothing is trained twice (KIND-ADG: 4,847
    sentences, its `.../5000` cell). None for any other cell, or a pool larger than every listed size."""
    if cell.size != "all" or cell.variant or cell.epochs:
        return None
    count = pool_size(cell.corpus)
    fits = sorted(n for n in CORPORA[cell.corpus].sizes if n != "all" and n >= count)
    return Cell(cell.corpus, cell.system, fits[0], cell.lr) if fits else None


def done(cell: Cell) -> Path | None:
    """The saved result of a cell (full test set preferred, else a test-subset one); for a sweep cell, the
    main cell that did its training (`same_training`); for an `all` cell, its listed twin's (`listed_twin`)."""
    full = result_path(cell)
    if full.exists():
        return full
    if found := same_training(cell):
        return found
    if (twin := listed_twin(cell)) and (found := done(twin)):
        return found
    subsets = sorted(RESULTS.glob(f"{cell.file_stem()}__test*.json"))
    return subsets[-1] if subsets else None


# ------------------------------------------------------------------------------------------ learning rates


def sweep_points(corpus: str, system: str, size) -> dict[str, float]:
    """Dev F1 of each finished sweep cell of `system` on `corpus` at `size`, keyed by learning rate (`{}` where no
    sweep cell of its own finished there: a main cell alone is no sweep)."""
    cells = [Cell(corpus, system, size, lr) for lr in LR_SWEEP.get(SYSTEMS[system]["kind"], ())]
    if not any(result_path(cell).exists() for cell in cells):
        return {}
    return {
        f"{cell.lr:g}": json.loads(path.read_text())["train"]["best_dev_f1"] for cell in cells if (path := done(cell))
    }


def chosen_lr(cell: Cell) -> tuple[float | None, dict]:
    """`selector.chosen_lr` on the sweep points on disk (each size's read only where the policy asks for it)."""
    return selector.chosen_lr(
        cell, lambda corpus, size: sweep_points(corpus, cell.system, size), lambda: train_count(cell.corpus, "all")
    )


def stale(result: dict) -> str:
    """Whether a finished cell trained at another learning rate than its sweeps choose now (a sweep point finished
    after it): "stale: trained at lr=X, its sweeps now choose Y", else "" (they agree, or the cell fixes its own
    rate, as a sweep cell does, or has none). Such a cell is not re-run by itself: `--list`, `--cell` and the report
    flag it, and `--redo_stale` re-runs it at the chosen rate (`runner.retire` keeps the old result).

    Example: stale({"cell": "conll2003/minilm/500", "learning_rate": 0.001}) -> "" while no sweep point beats 1e-3
    """
    cell, ran = Cell.parse(result["cell"]), result.get("learning_rate")
    if cell.lr is not None or ran is None or SYSTEMS[cell.system]["kind"] == "prompt":
        return ""
    now = chosen_lr(cell)[0]
    return f"stale: trained at lr={ran:g}, its sweeps now choose {now:g}" if ran != now else ""
