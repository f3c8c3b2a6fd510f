"""`instruct-ner train --help` and `train-tagger --help` start without torch: run in a fresh interpreter where
importing torch (or transformers, TRL, peft, accelerate, bitsandbytes) fails, as in a venv without them."""

import subprocess
import sys

import pytest

HIDE = """
import sys

class Hidden:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"torch", "transformers", "trl", "peft", "accelerate", "bitsandbytes"}:
            raise ImportError(f"{name} is hidden")

sys.meta_path.insert(0, Hidden())
from instruct_ner.cli import main

try:
    code = main([COMMAND, "--help"])
except SystemExit as stop:
    code = stop.code
assert not [m for m in sys.modules if m.split(".")[0] in {"torch", "transformers", "trl", "peft"}]
sys.exit(code)
"""


@pytest.mark.parametrize(("command", "option"), [("train", "--max_batch_tokens"), ("train-tagger", "--head")])
def test_help_runs_with_torch_hidden(command, option):
    run = subprocess.run(
        [sys.executable, "-c", HIDE.replace("COMMAND", repr(command))], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert f"usage: instruct-ner {command}" in run.stdout and option in run.stdout and "--eval_f1_steps" in run.stdout


def test_the_hiding_works():
    """The same interpreter set-up fails once a command needs torch (so the test above can fail)."""
    script = HIDE.replace('main([COMMAND, "--help"])', "__import__('instruct_ner.sft.tagger')")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "torch is hidden" in run.stderr
