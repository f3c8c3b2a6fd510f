from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
DATA = ROOT / "data"


def shared_files() -> list[Path]:
    return sorted(p for p in SHARED_DATA.glob("*/*") if p.suffix in (".txt", ".tsv"))


needs_shared_data = pytest.mark.skipif(not SHARED_DATA.exists(), reason="../shared/data is not beside the checkout")
