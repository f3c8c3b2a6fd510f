"""The learning-curve grid: `grid.yaml` read into constants, `Cell` (a cell's name, parsed and printed) and the
arithmetic every cell shares (epochs, optimizer steps, evaluation interval).

Pure: nothing here reads a result or a corpus (`results` does), trains (`runner`) or chooses a learning rate
(`selector`). The YAML is read once, at import.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"
GRID_FILE = Path(__file__).with_name("grid.yaml")


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


def _path(text: str) -> Path:
    """A `shared:` or `repo:` path of grid.yaml, resolved.

    Example: _path("repo:data/x.csv") == ROOT / "data/x.csv"
    """
    where, _, rest = text.partition(":")
    return {"shared": SHARED, "repo": ROOT}[where] / rest


def _corpus(name: str, spec: dict) -> Corpus:
    return Corpus(
        name,
        _path(spec["train"]),
        _path(spec["test"]),
        spec["language"],
        tuple(spec["sizes"]),
        _path(spec["dev"]) if "dev" in spec else None,
        tuple(spec.get("reader", ())),
        spec.get("micro_batch"),
        spec.get("unit", "sentences"),
    )


GRID = yaml.safe_load(GRID_FILE.read_text(encoding="utf-8"))
CORPORA = {name: _corpus(name, spec) for name, spec in GRID["corpora"].items()}
SYSTEMS: dict[str, dict] = {name: {k: v for k, v in s.items() if k != "note"} for name, s in GRID["systems"].items()}
MINILM = SYSTEMS["minilm"]["model"]
LR_SWEEP = {kind: tuple(rates) for kind, rates in GRID["lr_sweep"].items()}
VARIANTS: dict[str, dict] = GRID["variants"]
VARIANT_SYSTEMS = tuple(GRID["variant_systems"])
EPOCHS: dict = GRID["epochs"]
BATCH: int = GRID["batch"]
DEV_SENTENCES: int = GRID["dev_sentences"]
PATIENCE: int = GRID["patience"]
SAVE_EVERY: int = GRID["save_every"]
MAX_BATCH_TOKENS: int = GRID["max_batch_tokens"]
LATER_SWEEPS: dict[tuple[str, str], dict] = {}
for _later in GRID["later_sweeps"]:
    LATER_SWEEPS.setdefault((_later["corpus"], _later["system"]), {})[_later["size"]] = tuple(_later["rates"])
EXTRA_CELLS = tuple(extra["cell"] for extra in GRID["extra_cells"])


@dataclass(frozen=True)
class Cell:
    """`corpus/system/size`, a learning-rate sweep cell adding `/lr=X`, a head/loss sweep cell `/head=linear` or
    `/loss=ce` (a key of VARIANTS), a longer run `/epochs=N`."""

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


def grid(sweeps: bool = True) -> list[Cell]:
    """Every cell, each system's sweep cells (learning rates, later sweeps, head/loss variants) before its main
    cells, then EXTRA_CELLS."""
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


def size_key(size) -> float:
    """A training size as a number (`all` past every listed one).

    Example: sorted([5000, "all", 500], key=size_key) == [500, 5000, "all"]
    """
    return math.inf if size == "all" else float(size)


def default_epochs(size, count: int) -> int:
    """`EPOCHS[size]`; for `all`, the epochs of the smallest listed size that holds all `count` sentences, so that a
    small corpus's whole split trains as long as a subset of its size would (e-mails: 240 -> 3, CoNLL-2003: 1).

    Example: default_epochs("all", 240) == 3 and default_epochs("all", 14041) == 1
    """
    if size != "all":
        return EPOCHS[size]
    return next((EPOCHS[n] for n in sorted(k for k in EPOCHS if k != "all") if n >= count), EPOCHS["all"])


def steps_for(size_count: int, epochs: int) -> int:
    """Optimizer steps of `epochs` passes over `size_count` records in batches of BATCH.

    Example: steps_for(500, 3) == 189
    """
    return max(1, math.ceil(size_count / BATCH) * epochs)


def eval_every(total: int) -> int:
    """Steps between dev-F1 evaluations: about six per run, at least every 10 steps.

    Example: eval_every(189) == 31 and eval_every(20) == 10
    """
    return max(10, total // 6)
