"""The learning-curve benchmark behind `python benchmarks/learning_curve.py`, split by job:

- `grid`: the grid as data (`grid.yaml`: corpora, systems, sizes, epochs, sweeps, variants, extra cells) and
  `Cell`, a cell's name and defaults; pure.
- `results`: what is on disk: each cell's result file, whether a cell is done, the sweep points a rate
  selection reads, the corpora's training pools.
- `selector`: the learning-rate policy (`ruling_sweep`, `chosen_lr`, transfer from another corpus); pure.
- `runner`: one cell end to end (data, training, the CLI subprocesses for testing, resume, the `Stopwatch`) and
  the time estimate `--list` prints.
- `report`: the Markdown tables and matplotlib figures `--report` writes.

Nothing here trains at import; the package needs `instruct_ner` only inside the runner's and results' functions.
"""
