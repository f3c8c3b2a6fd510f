"""One run in several processes (`accelerate launch`, torchrun): which process writes, and where they all wait.

Under data parallelism every process runs the same command: each checks the output folder, reads the data and
trains its share of every batch, but only the main one (`is_main()`, rank 0) writes the output folder (its
marker, the saved model, `instruct_ner.json`, `train_results.json`, dev-F1 state); checkpoints are staged by all
and renamed by the main process (sft/checkpoints.py). The order at the start (`claim_after_checks`): every process
checks the folder as the user left it, they all wait, the main process claims it (marker, stale checkpoints
cleared), and they all wait again, so that no process checks a folder another has already claimed.

The rank comes from the launcher's environment (`RANK`, `WORLD_SIZE`), so a single-process run imports nothing
here; `barrier` starts the process group (accelerate's `PartialState`, the one the Trainer then uses) when it is
the first to need it.
"""

from __future__ import annotations

import os
from collections.abc import Callable


def world_size() -> int:
    """How many processes run this training (1 unless launched by accelerate or torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    """Whether this process writes the outputs: the only process, or rank 0 of several."""
    return rank() == 0


def barrier() -> None:
    """Wait until every process gets here (nothing to wait for in a single process)."""
    if world_size() > 1:
        from accelerate import PartialState

        PartialState().wait_for_everyone()


def broadcast(value):
    """The main process's `value` in every process (a picklable object; itself in a single process)."""
    if world_size() == 1:
        return value
    from accelerate.utils import broadcast_object_list

    barrier()  # the process group exists
    return broadcast_object_list([value], from_process=0)[0]


def claim_after_checks(claim: Callable[[], object]) -> None:
    """Run `claim` (which writes the output folder) on the main process only, after every process has passed its
    checks and before any goes on."""
    barrier()
    if is_main():
        claim()
    barrier()
