"""Learning curves: every system trained on 500 / 2,000 / 5,000 / all training sentences, dev-F1 early
stopping, scored on full test sets; resumable cell by cell.

A cell is `corpus/system/size` (a learning-rate sweep cell adds `/lr=X`; a tagger's head/loss sweep cell adds
`/head=linear` or `/loss=ce`; a cell trained for other than its default epochs adds `/epochs=N`). Each finished
cell is written to `benchmarks/results/learning_curve/<corpus>__<system>__<size>[__<that suffix>].json` and skipped
on re-run;
a cell cut off midway resumes from its training checkpoints and its partial test output.

    python benchmarks/learning_curve.py --list                     # the grid and what is done
    python benchmarks/learning_curve.py --cell conll2003/tagger-bidirectional/500
    python benchmarks/learning_curve.py --cell conll2003/gen-list/500/lr=1e-3   # one sweep cell (dev F1 only)
    python benchmarks/learning_curve.py --cell conll2003/tagger-bidirectional/500/head=linear  # head sweep (dev F1)
    python benchmarks/learning_curve.py --cell conll2003/gen-list/5000/epochs=2  # a longer run (extra_cells)
    python benchmarks/learning_curve.py --all                      # every cell not done (sweeps first)
    python benchmarks/learning_curve.py --report                   # figures, tables; BENCHMARKS.md's tables

Corpora (from ../shared/data, never copied in; e-mails from data/emails_it_large):
- `conll2003`: train.txt subsets (its first N sentences), dev = first 300 of valid.txt, test = all of test.txt.
- `kind-wn`, `kind-fic`, `kind-adg`: train on the first N of *_train.tsv after its last 300 sentences are set
  aside as dev; scored on the whole *_dev.tsv (the shared folder has no KIND test split).
- `emails-it`: our e-mail set, train/dev/test as written by data/make_emails_large.py (sizes 60, 120, all).

Systems: `gen-list`, `gen-inline` (LoRA SFT, compact instruction templates when present, constrained
decoding as `generate` does by default), `tagger-bidirectional`, `tagger-causal` (LoRA + CRF, compound
loss), `tagger-frozen-crf` (frozen backbone, CRF head, compound loss), `tagger-bilstm-crf` (frozen-embedding
BiLSTM-CRF), `minilm` (MiniLM-L6 BERT through `train-tagger --model`, `make bench-install`), `zero-shot` and
`few-shot` (3 examples from the training split; size 0: no training; the long `ner-list` instruction, whose
label definitions help where nothing is trained).

Training: fp32, batch 8 (the e-mails' generative cells: 4 micro-batches of 2), `epochs[size]` epochs (`all`:
those of the smallest listed size that holds the whole split; or the cell's `epochs=N`), dev-F1 (micro entity F1
on the dev sentences) every `eval_every` steps with patience 3 evaluations, best weights kept: the trainers' own
`--eval_f1_steps` (`instruct_ner/training.py`), as a user runs them. Each system's learning rate is chosen
on dev from its sweep cells (`lr_sweep`) at the smallest size, or at the largest swept size up to the cell's own
where two rates ran (`selector.ruling_sweep`: MiniLM, cheap, is swept at every size; `later_sweeps` adds points
where a smallest-size winner needed a longer run); a corpus without a sweep of its own takes the same system's
choice on another corpus (CoNLL-2003 first), else the system's default; the choice and the dev F1 of every candidate
go into the cell's JSON. Then, at the chosen rate, the head/loss sweep (`variants`, the
bidirectional tagger only: it carries `train-tagger`'s defaults) trains a linear head with cross-entropy and a CRF
head on its own NLL against the default CRF + compound loss; it informs `train-tagger`'s defaults and the report,
while the tagger systems keep their CRF heads (what their names say). Test predictions go through the CLI
(`instruct-ner generate` / `tag`, subprocesses) so a cell measures what a user runs.

`--test_limit N` scores on the first N test sentences: the cell is then named `...__testN` and marked as a
subset everywhere (never reported as the full test set).

This file is the command line only. The grid (the names in backquotes above) is data, `benchmarks/curves/grid.yaml`;
the rate policy is `benchmarks/curves/selector.py`, a cell's run `runner.py`, what is done `results.py`, the report
`report.py` (all in `benchmarks/curves/`).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the repository root, not benchmarks/, must be importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.curves import report  # noqa: E402
from benchmarks.curves.grid import Cell, grid  # noqa: E402
from benchmarks.curves.results import RESULTS, done, load_results, result_path, stale  # noqa: E402
from benchmarks.curves.runner import estimate, machine, run_cell  # noqa: E402

__all__ = ["machine", "main"]  # machine: what generate_speed.py and sft_speed.py import from here


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `timeout` cuts a cell: timers and files are kept
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--cell", action="append", help="corpus/system/size[/lr=X|/epochs=N|/head=linear|/loss=ce]")
    action.add_argument("--all", action="store_true", help="every cell not done yet (sweep cells first)")
    action.add_argument("--list", action="store_true", help="show the grid and each cell's status")
    action.add_argument(
        "--report", action="store_true", help="figures and tables from the saved cells (report/, BENCHMARKS.md's)"
    )
    parser.add_argument(
        "--precision",
        default="fp32",
        help="fp32 on CPU (default); on a GPU auto (8-bit training, bf16 tagging/generation), 8bit or bf16",
    )
    parser.add_argument("--test_limit", type=int, default=None, help="score on the first N test sentences (marked)")
    parser.add_argument(
        "--redo_stale",
        action="store_true",
        help="with --cell/--all: re-run a finished cell that is stale, keeping its result as a sweep point or in "
        "superseded/",
    )
    parser.add_argument("--corpus", action="append", help="with --all/--list: only these corpora")
    parser.add_argument("--system", action="append", help="with --all/--list: only these systems")
    parser.add_argument("--out", default=str(RESULTS / "report"), help="--report: folder for figures and table")
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    cells = grid()
    if args.corpus:
        cells = [c for c in cells if c.corpus in args.corpus]
    if args.system:
        cells = [c for c in cells if c.system in args.system]
    if args.list:
        for cell in cells:
            path = done(cell)
            status = f"done ({path.name})" if path else f"todo {estimate(cell)}"
            if path == result_path(cell) and (note := stale(json.loads(path.read_text()))):
                status += f", {note}"
            print(f"{cell.name:55s} {status}")
        return 0
    if args.report:
        try:
            paths = report.write(load_results(), Path(args.out))
        except ValueError as error:  # BENCHMARKS.md without its markers: nothing written
            print(f"--report: {error}", file=sys.stderr)
            return 2
        print(report.tables_in(paths[0]))
        print(Path(args.out, "learning_curve.md").read_text(encoding="utf-8"))
        print(f"tables: {paths[0]}; figures: " + ", ".join(str(p) for p in paths if p.suffix == ".png"))
        return 0
    try:
        todo = [Cell.parse(c) for c in args.cell] if args.cell else [c for c in cells if not done(c)]
        if args.all and args.redo_stale:
            todo += [c for c in cells if (path := done(c)) == result_path(c) and stale(json.loads(path.read_text()))]
    except ValueError as error:  # a bad --cell: one line and exit 2, like every other bad argument
        parser.error(str(error))
    if args.all:  # learning-rate sweeps, then head/loss sweeps (at the chosen rate), then the cells that use them
        todo.sort(key=lambda c: (c.lr is None, not c.variant))
    for cell in todo:
        print(f"\n=== {cell.name}", file=sys.stderr, flush=True)
        run_cell(cell, args.precision, args.test_limit, args.redo_stale)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
