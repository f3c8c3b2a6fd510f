"""What a reader did (`ReadReport`) and what it does with a bad record (`ErrorPolicy`: raise or skip and count).

This module reads nothing; every reader of the package fills one report per source.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from instruct_ner.examples import DataError

MAX_REPORTED_ERRORS = 5
MAX_LISTED_REPAIRS = 20  # also the most notices listed


@dataclass
class ReadReport:
    """What a reader did: records read, records skipped by reason, the first error messages, notes.

    `notes` counts what was read in an unusual way; `repairs` and `notices` list where (file:line) for the cases
    a user should look at: tags repaired, and input read in a way that may not be what was meant.
    """

    source: str
    read: int = 0
    skipped: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    repairs: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    def notice(self, kind: str, where: str, message: str) -> None:
        """Count an input read in an unusual way under `kind` and keep where it was."""
        self.notes[kind] += 1
        self.notices.append(f"{where}: {message}")

    def repair(self, where: str, message: str) -> None:
        """Count an I- tag read as B- (conlleval's reading) and keep where it was."""
        self.notes["repaired_tags"] += 1
        self.repairs.append(f"{where}: {message}")

    def skip(self, error: DataError) -> None:
        self.skipped[error.reason] += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(str(error))

    @property
    def n_skipped(self) -> int:
        return sum(self.skipped.values())

    def summary(self) -> str:
        line = f"{self.source}: read {self.read} examples"
        if self.skipped:
            line += f", skipped {self.n_skipped} ({', '.join(f'{k}: {v}' for k, v in sorted(self.skipped.items()))})"
        if self.notes:
            line += "; " + ", ".join(f"{k}: {v}" for k, v in sorted(self.notes.items()))
        line += "".join(f"\n  {message}" for message in self.errors)
        line += "".join(f"\n  repaired {message}" for message in self.repairs[:MAX_LISTED_REPAIRS])
        if len(self.repairs) > MAX_LISTED_REPAIRS:
            line += f"\n  ... and {len(self.repairs) - MAX_LISTED_REPAIRS} more repairs"
        line += "".join(f"\n  {message}" for message in self.notices[:MAX_LISTED_REPAIRS])
        if len(self.notices) > MAX_LISTED_REPAIRS:
            line += f"\n  ... and {len(self.notices) - MAX_LISTED_REPAIRS} more notices"
        return line

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "read": self.read,
            "skipped": dict(self.skipped),
            "notes": dict(self.notes),
            "repairs": list(self.repairs),
            "notices": list(self.notices),
        }


class ErrorPolicy:
    """Raise or count a DataError, as the user asked."""

    def __init__(self, on_error: str, report: ReadReport):
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
        self.on_error, self.report = on_error, report

    def handle(self, error: DataError) -> None:
        if self.on_error == "raise":
            raise error
        self.report.skip(error)
