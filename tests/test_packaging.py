"""The wheel: one top-level import package, `instruct_ner`, holding every stage module, the templates, the
recipes and the demo samples (compared with the checkout's own files, not with a list kept here)."""

import shutil
import subprocess
import sys
import zipfile

import pytest

from conftest import ROOT

STAGES = {"instruct_ner": "instruct_ner", "prompts": "instruct_ner/prompts", "sft": "instruct_ner/sft"}
STAGES |= {"inference": "instruct_ner/inference", "data": "instruct_ner/data"}
SHIPPED = ["prompts/templates/*.jinja", "sft/recipes/*.yaml", "data/conll_en/*.txt", "data/emails_it/*.csv"]


@pytest.mark.slow
def test_the_wheel_holds_one_package_with_its_data(tmp_path):
    source = tmp_path / "source"  # a copy, so that the build leaves no build/ folder in the checkout
    shutil.copytree(
        ROOT, source, ignore=shutil.ignore_patterns(".venv", ".git", "runs", "build", "*.egg-info", "__pycache__")
    )
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "w")],
        cwd=source,
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp_path / "w").glob("instruct_ner-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    top_level = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top_level == {"instruct_ner"}
    expected = {f"{STAGES[p.parent.name]}/{p.name}" for stage in STAGES for p in (ROOT / stage).glob("*.py")}
    expected |= {
        f"{STAGES[p.relative_to(ROOT).parts[0]]}/{p.relative_to(ROOT / p.relative_to(ROOT).parts[0]).as_posix()}"
        for pattern in SHIPPED
        for p in ROOT.glob(pattern)
    }
    assert len(expected) > 40 and expected <= names, sorted(expected - names)
    (entry_points,) = [n for n in names if n.endswith("entry_points.txt")]
    assert "instruct-ner = instruct_ner.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
