"""JSONL in and out: the one file format every stage reads and writes, and the rules every output obeys.

Readers report the file and line of a malformed record (a UTF-8 BOM is stripped, bytes that are not
UTF-8 are an error naming the line). Outputs never destroy input (`outputs.check_outputs` checks
every output path first), and `write_jsonl` writes a new file to a temporary file beside
it, renamed into place only when every record is written (an interrupted stage leaves the old file, or
none, never half of one). Appending (`append=True`, used by `generate --resume`) writes in place and
flushes each record, so an interrupted run leaves a valid file up to its last complete line. A folder
(an imported model, a cache) is published the same way by `atomic_folder`: each writer fills a staging folder
of its own, renamed into place at the end, so two processes that build the same folder at once never write
into one another's files. It lives in the core (`instruct_ner/`), below every stage, so that readers, trainers
and predictors import it downwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from instruct_ner.examples import DataError
from instruct_ner.textio import read_text, split_lines


def iter_jsonl(path: str | Path) -> Iterator[tuple[str, dict]]:
    """Yield ("file:line", record) for each non-blank line; a malformed line raises DataError."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    for line_number, line in enumerate(split_lines(read_text(path, "JSONL file")), start=1):
        if not line.strip():
            continue
        where = f"{path}:{line_number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(
                where, f"not valid JSON ({error.msg}); expected one JSON object per line", "bad_json"
            ) from None
        except RecursionError:
            raise DataError(where, "JSON nested too deeply; expected one flat record per line", "bad_json") from None
        if not isinstance(record, dict):
            raise DataError(where, f"expected a JSON object, found {type(record).__name__}", "bad_json")
        yield where, record


def read_records(path: str | Path) -> list[dict]:
    """Every record of a JSONL file, as dicts (see `prompts.readers.read_jsonl` for Examples)."""
    return [record for _, record in iter_jsonl(path)]


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name one file (symlinks and relative paths resolved).

    Example: same_file("runs/a.jsonl", "./runs/../runs/a.jsonl") -> True
    """
    a, b = Path(a), Path(b)
    with contextlib.suppress(OSError):
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def records_fingerprint(records: Iterable[dict]) -> str:
    """SHA-256 over the records' ids and words (`id`, `tokens`, `text`), in order: what a resumed output was made of.

    `generate --resume` compares it, so that a file with the same ids but other texts is never continued.
    Example: records_fingerprint([{"id": "a", "tokens": ["EU"]}]) differs from that of [{"id": "a", "tokens": ["UE"]}]
    """
    import hashlib

    digest = hashlib.sha256()
    for record in records:
        key = [record.get("id"), record.get("tokens"), record.get("text")]
        digest.update(json.dumps(key, ensure_ascii=False, default=str).encode() + b"\n")
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside `path`; on success it is renamed onto `path`, on failure removed."""
    path = Path(path)
    if path.is_dir():
        raise DataError(str(path), "is a folder; expected a file path", "out_is_folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        yield Path(temporary)
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


@contextlib.contextmanager
def atomic_folder(path: str | Path, complete: Callable[[Path], bool] = Path.exists):
    """Yield a new, empty staging folder of this writer's own beside `path`; on success it becomes `path` by one
    rename, on failure it is removed. Where another writer published a `complete` folder at `path` meanwhile
    (two processes importing the same model at once), that one is kept and this copy dropped: both built the
    same thing. An incomplete folder left at `path` by older code is replaced.

    Example: with atomic_folder("cache/model") as staging: (staging / "config.json").write_text("{}")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
    staging.mkdir()  # unlike mkdtemp's 0700, the folder gets the umask's permissions, as a plain mkdir would
    try:
        yield staging
        if path.exists() and not complete(path):  # not ours to share: move it aside, then replace it
            old = path.with_name(f".{path.name}.{uuid.uuid4().hex}.old")
            with contextlib.suppress(FileNotFoundError):
                path.rename(old)
            shutil.rmtree(old, ignore_errors=True)
        try:
            staging.rename(path)
        except OSError:
            if not (path.exists() and complete(path)):  # a complete folder got there first: keep it
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write a whole text file through a temporary file renamed into place."""
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def write_jsonl(path: str | Path, records: Iterable[dict], append: bool = False) -> int:
    """Write records one per line (UTF-8, not ASCII-escaped); returns how many were written.

    A new file is written atomically (temporary file, renamed at the end); `append=True` adds to the file
    in place, one flushed line per record.
    """
    path = Path(path)
    if append:
        path.parent.mkdir(parents=True, exist_ok=True)
        return _write_lines(path, records, "a")
    with atomic_path(path) as temporary:
        return _write_lines(temporary, records, "w")


def _write_lines(path: Path, records: Iterable[dict], mode: str) -> int:
    count = 0
    with open(path, mode, encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.flush()
            count += 1
    return count


@contextlib.contextmanager
def output_lock(out: str | Path):
    """Hold an exclusive lock on an output (and its settings file) for a run; a second run is refused at once.

    The lock is an advisory `flock` on `.NAME.lock` beside the output, released when the run ends or its process
    dies (the kernel drops it), so a killed run never leaves the output locked. The lock file stays (removing it
    would let a third run lock a new file while the second still holds the old one).
    Example: with output_lock("p.jsonl"): ...  # a second `with output_lock("p.jsonl")` raises DataError
    """
    import fcntl

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    lock = out.with_name(f".{out.name}.lock")
    handle = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(handle, 64, 0).decode("ascii", "replace").strip() or "unknown"
            raise DataError(
                str(out),
                f"another run (process {holder}) is writing this output; wait for it or choose another path",
                "out_locked",
            ) from None
        os.ftruncate(handle, 0)
        os.pwrite(handle, f"{os.getpid()}\n".encode(), 0)
        yield out
    finally:
        os.close(handle)  # closing releases the lock


def settings_path(out: str | Path) -> Path:
    """The sidecar that records a resumable output's run settings. Example: "p.jsonl" -> "p.jsonl.settings.json"."""
    out = Path(out)
    return out.with_name(out.name + ".settings.json")


def check_run_settings(out: str | Path, settings: dict, resume: bool) -> None:
    """Record a run's settings beside its output; with `resume`, refuse a partial output made with other settings.

    Example: a partial output of template ner-list.en.v1 resumed with ner-inline.en.v1 raises
        DataError("p.jsonl.settings.json: --resume: template was 'ner-list.en.v1', now 'ner-inline.en.v1'; ...")
    """
    sidecar = settings_path(out)
    settings = json.loads(json.dumps(settings, ensure_ascii=False))  # as it reads back from JSON
    if resume and Path(out).exists() and Path(out).stat().st_size > 0:
        if not sidecar.exists():
            raise DataError(
                str(out),
                f"--resume: no {sidecar.name} beside it, so the settings it was made with are unknown; "
                "start a new output (without --resume)",
                "resume_mismatch",
            )
        try:
            saved = json.loads(read_text(sidecar, "settings file"))
        except json.JSONDecodeError as error:
            raise DataError(f"{sidecar}:{error.lineno}", f"not valid JSON ({error.msg})", "bad_json") from None
        if not isinstance(saved, dict):
            raise DataError(str(sidecar), "expected a JSON object of run settings", "bad_json")
        differences = [key for key in sorted(set(saved) | set(settings)) if saved.get(key) != settings.get(key)]
        if differences:
            shown = "; ".join(
                f"{key} was {_short(saved.get(key))}, now {_short(settings.get(key))}" for key in differences[:3]
            )
            raise DataError(
                str(sidecar),
                f"--resume: the output was made with other settings ({shown}); resume with the same settings "
                "or start a new output",
                "resume_mismatch",
            )
        return
    # A new run: the old output goes first, then the settings are written, so that a run cut off in between leaves
    # either the old output with its own settings or no output at all, never an old output under new settings.
    Path(out).unlink(missing_ok=True)
    write_text_atomic(sidecar, json.dumps(settings, indent=2, ensure_ascii=False))


def _short(value) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."
