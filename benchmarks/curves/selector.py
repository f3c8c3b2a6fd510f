"""The learning-rate policy of the learning-curve grid: which sweep rules a cell (`ruling_sweep`) and which rate it
takes (`chosen_lr`): its own corpus's sweep, else the same system's on another corpus (CoNLL-2003 first), else the
system's default.

Pure: the sweep points come in as a function (`results.sweep_points` reads them from disk; tests pass a table), and
nothing here reads a file, trains or writes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from benchmarks.curves.grid import CORPORA, SYSTEMS, Cell, size_key

# the dev F1 of each finished sweep point of one system on `corpus` at `size`, keyed by learning rate ("0.001")
Points = Callable[[str, int | str], Mapping[str, float]]


def ruling_sweep(points: Points, corpus_name: str, records: float) -> tuple[int | str, dict[str, float]] | None:
    """The sweep that chooses the rate for a run on `records` training records: the one at the largest size up to
    `records` where two rates finished (the longer run is the better evidence: MiniLM's 500-sentence winner
    collapsed on all of CoNLL-2003), else the smallest size's; None where neither ran.

    Example: ruling_sweep(lambda c, s: {500: {"0.001": 0.6, "0.003": 0.7}, 2000: {"0.001": 0.9, "0.003": 0.8}}
    .get(s, {}), "conll2003", 5000) == (2000, {"0.001": 0.9, "0.003": 0.8}); with records=1000, (500, {...})
    """
    sizes = CORPORA[corpus_name].sizes
    for size in sorted(sizes[1:], key=size_key, reverse=True):
        if size_key(size) <= records and len(here := points(corpus_name, size)) > 1:
            return size, dict(here)
    return (sizes[0], dict(here)) if (here := points(corpus_name, sizes[0])) else None


def chosen_lr(cell: Cell, points: Points, pool: Callable[[], int]) -> tuple[float | None, dict]:
    """The learning rate with the best dev F1 in the system's ruling sweep on the cell's corpus (`ruling_sweep`:
    the largest swept size up to the cell's own, else the smallest); without any, the same rule on another corpus
    (CoNLL-2003 first, sizes compared in training records: an `all` cell counts its corpus's `pool()`); else the
    system's default. Returns the rate and how it was chosen (the source, every candidate's dev F1).

    Example: chosen_lr(Cell("kind-wn", "minilm", 500), lambda c, s: {}, lambda: 0) ==
    (0.001, {"source": "default (no sweep cell finished)", "candidates": {}})
    """
    spec = SYSTEMS[cell.system]
    if spec["kind"] == "prompt":
        return None, {"source": "no training"}
    others = sorted((name for name in CORPORA if name != cell.corpus), key=lambda name: name != "conll2003")
    for corpus_name in (cell.corpus, *others):
        own = corpus_name == cell.corpus or cell.size != "all"
        records = size_key(cell.size) if own else pool()
        if found := ruling_sweep(points, corpus_name, records):
            size, candidates = found
            source = f"sweep at {size} {CORPORA[corpus_name].unit} (dev F1)"
            if corpus_name != cell.corpus:
                source = f"transferred: {corpus_name}'s {source}"
            return float(max(candidates, key=candidates.get)), {"source": source, "candidates": candidates}
    return spec["lr"], {"source": "default (no sweep cell finished)", "candidates": {}}
