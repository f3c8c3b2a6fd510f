"""Train the adapters the confidence benchmark scores: the CoNLL-2003 learning-curve cells at 2,000 sentences.

The entity list, the inline format and the bidirectional LoRA + CRF tagger, each by its learning-curve recipe
(`benchmarks/curves`: the first 2,000 training sentences, 2 epochs, batch 8, the cell's swept learning rate), at
`--precision` (default auto) and, by default, without dev-F1 selection: in the fp32 learning curve each of the three
was best on dev at its last step, so the selection's six dev decodings (~20 minutes on a 2-core CPU) would save the
same weights. Folders: `runs/confidence/<cell>/model` (resumable: a cut-off cell resumes from its checkpoint, a
finished one is skipped). It does not test: `benchmarks/confidence.py` does.

    python benchmarks/confidence_adapters.py && python benchmarks/confidence.py \\
        --list_adapter runs/confidence/conll2003__gen-list__2000/model \\
        --inline_adapter runs/confidence/conll2003__gen-inline__2000/model \\
        --tagger runs/confidence/conll2003__tagger-bidirectional__2000/model
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the repository root, for `benchmarks.*`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.curves import results  # noqa: E402
from benchmarks.curves.grid import CORPORA, SYSTEMS, Cell, default_epochs  # noqa: E402
from benchmarks.curves.runner import split_data, template_name, train_gen_cell, train_tagger_cell  # noqa: E402

CELLS = ["conll2003/gen-list/2000", "conll2003/gen-inline/2000", "conll2003/tagger-bidirectional/2000"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", nargs="+", default=CELLS)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--select_on_dev", action="store_true", help="dev-F1 selection as in the learning curve")
    parser.add_argument("--runs", default="runs/confidence")
    args = parser.parse_args()
    for name in args.cells:
        cell = Cell.parse(name)
        spec, corpus = SYSTEMS[cell.system], CORPORA[cell.corpus]
        folder = Path(args.runs) / cell.file_stem()
        folder.mkdir(parents=True, exist_ok=True)
        data = split_data(corpus, cell.size, folder)
        data["size"], data["epochs"] = cell.size, cell.epochs or default_epochs(cell.size, data["limit"])
        lr = results.chosen_lr(cell)[0]
        print(f"=== {name}: lr {lr}, {data['epochs']} epochs, {args.precision}", file=sys.stderr, flush=True)
        if spec["kind"] == "tagger":
            summary = train_tagger_cell(spec, data, lr, folder, args.precision, args.select_on_dev)
        else:
            template = template_name(spec, corpus.language)
            summary = train_gen_cell(spec, data, lr, folder, args.precision, template, args.select_on_dev)
        print(json.dumps({"cell": name, **summary}), flush=True)


if __name__ == "__main__":
    main()
