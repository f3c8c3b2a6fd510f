"""The results file of a resumable benchmark script: one JSON object with the machine it ran on and its `cells`.

`load` starts a new file's object with `machine` (CPU with its native-bf16 flag and cores, or the GPU: what every
figure must be recorded with); `save` writes the whole object atomically after each cell, so a script killed
between cells keeps every finished one. `timed` runs one `instruct-ner` command as a user would (a subprocess of
this environment's CLI) and returns its wall seconds.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

CLI = Path(sys.executable).parent / "instruct-ner"


def load(path: Path) -> dict:
    """The results so far, or a new object naming this machine. Example: load(Path("none.json"))["cells"] -> {}"""
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    from benchmarks.curves.runner import machine

    return {"machine": machine(), "cells": {}}


def save(path: Path, results: dict) -> None:
    """Write the results through a temporary file renamed into place."""
    from instruct_ner.jsonl import write_text_atomic

    write_text_atomic(path, json.dumps(results, indent=2) + "\n")


def timed(argv: list[str]) -> float:
    """Wall seconds of `instruct-ner ARGV` (model loading included); a failing command raises CalledProcessError."""
    started = time.perf_counter()
    subprocess.run([str(CLI), *argv], check=True)
    return time.perf_counter() - started
