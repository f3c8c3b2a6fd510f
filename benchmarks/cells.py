"""The results file of a resumable benchmark script: one JSON object with the machine it ran on and its `cells`.

`load` starts a new file's object with `machine` (CPU with its native-bf16 flag and cores, or the GPU: what every
figure must be recorded with); `save` writes the whole object atomically after each cell, so a script killed
between cells keeps every finished one. It runs nothing itself.
"""

from __future__ import annotations

import json
from pathlib import Path


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
