"""Our own small samples, installed with the package as `instruct_ner.data` (the demo's inputs).

`sample_path("conll_en/train.txt")` gives the path of a shipped file in a checkout or an installed wheel.
The real corpora are never here: they are read from `../shared/data/`.
"""

from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent


def sample_path(relative: str) -> Path:
    """The path of a shipped sample file. Example: sample_path("conll_en/test.txt").name -> "test.txt" """
    return DATA_DIR / relative
