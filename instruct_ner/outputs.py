"""Where a command may write: every output path checked against every input, model folder and other output, before
anything is written.

A command declares what it reads (`inputs`: data files, label definitions; `models`: model, adapter and tagger
folders) and what it writes (`files`: output files by flag; `folders`: output folders by flag, with the names it
writes inside each when it knows them), and calls `check_outputs` once, before it writes anything. The rules:

- an output file is not a folder, not an input, not inside (or equal to) a model folder, and not another output;
- an output folder is not a file, not a model folder nor inside one, and holds no model folder; an input inside it
  is refused when the command writes that name there (or does not know which names it writes);
- an output folder that holds anything else is refused unless this same command wrote it (a marker file,
  `MARKER`, says which command did) and the command may replace its own output (`compare`'s report) or resumes it,
  or the user passed `--overwrite`. A folder with no marker is the user's: `train --output_dir data/` never
  replaces the README there.

`claim_folder` creates an output folder (or keeps an existing one) and writes its marker; commands call it after
`check_outputs` has passed. This module does not write outputs itself and does not lock them (see `jsonl`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from instruct_ner.errors import DataError
from instruct_ner.jsonl import same_file

MARKER = ".instruct-ner-output.json"
PathLike = str | Path


def _inside(path: Path, folder: Path) -> bool:
    """Whether `path` is `folder` or lies under it (symlinks resolved).

    Example: _inside(Path("a/b/c"), Path("a/b")) -> True; _inside(Path("a/bc"), Path("a/b")) -> False
    """
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def folder_owner(folder: PathLike) -> str | None:
    """The command that wrote `folder` (from its marker), or None for a folder this project did not write."""
    marker = Path(folder) / MARKER
    try:
        return json.loads(marker.read_text(encoding="utf-8")).get("command")
    except (OSError, ValueError, AttributeError):
        return None


def foreign_entries(folder: PathLike) -> list[str]:
    """The names in an existing folder other than the marker, sorted. Example: an empty folder -> []"""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(entry.name for entry in folder.iterdir() if entry.name != MARKER)


def check_outputs(
    command: str,
    *,
    files: Mapping[str, PathLike | None] | None = None,
    folders: Mapping[str, PathLike | None] | None = None,
    inputs: Iterable[PathLike | None] = (),
    models: Iterable[PathLike | None] = (),
    writes: Mapping[str, Iterable[str] | None] | None = None,
    replace_own: bool = False,
    resume: bool = False,
    overwrite: bool = False,
) -> None:
    """Raise DataError (naming the flag and path) unless every output may be written; writes nothing.

    `files` and `folders` map a flag (`--out`, `--output_dir`) to its path; `writes[flag]` lists the names the
    command writes in that folder (None: not known in advance, as for a trainer).
    Example: check_outputs("score", files={"--out": "a.jsonl"}, inputs=["a.jsonl"]) raises DataError
    """
    files = {flag: Path(p) for flag, p in (files or {}).items() if p not in (None, "")}
    folders = {flag: Path(p) for flag, p in (folders or {}).items() if p not in (None, "")}
    inputs = [Path(p) for p in inputs if p not in (None, "")]
    models = [Path(p) for p in models if p not in (None, "") and Path(p).is_dir()]
    writes = dict(writes or {})

    def refuse(path: Path, message: str, reason: str):
        raise DataError(str(path), message, reason)

    seen: list[tuple[str, Path]] = []
    for flag, out in files.items():
        if out.is_dir():
            refuse(out, f"{flag} is a folder; expected a file path", "out_is_folder")
        for source in inputs:
            if same_file(out, source):
                refuse(out, f"{flag} is also an input ({source}); it would be overwritten", "out_is_input")
        for model in models:
            if _inside(out, model):
                refuse(out, f"{flag} lies in the model folder {model}; write outside it", "out_in_model")
        for other_flag, other in seen:
            if same_file(out, other):
                refuse(out, f"{flag} is also {other_flag}; give each output its own path", "out_twice")
        for folder_flag, folder in folders.items():
            if _inside(out, folder):
                refuse(out, f"{flag} lies in {folder_flag} {folder}; write it elsewhere", "out_in_output")
        seen.append((flag, out))
    for flag, folder in folders.items():
        if folder.exists() and not folder.is_dir():
            refuse(folder, f"{flag} exists and is a file; expected a folder", "out_is_file")
        for model in models:
            if _inside(folder, model) or _inside(model, folder):
                refuse(folder, f"{flag} is, holds or lies in the model folder {model}; choose another", "out_in_model")
        names = writes.get(flag)
        names = None if names is None else set(names)
        for source in inputs:
            in_reach = names is None or (source.resolve().parent == folder.resolve() and source.name in names)
            if _inside(source, folder) and in_reach:
                refuse(folder, f"{flag} holds the input {source}, which the command could overwrite", "input_in_out")
        for other_flag, other in folders.items():
            if other_flag != flag and (_inside(folder, other) or _inside(other, folder)):
                refuse(folder, f"{flag} and {other_flag} overlap; give each output its own folder", "out_twice")
        entries = foreign_entries(folder)
        if not entries or overwrite:
            continue
        owner = folder_owner(folder)
        if owner == command and (replace_own or resume):
            continue
        shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
        if owner == command:
            hint = "it holds a finished run: pass --resume to continue it, or --overwrite to replace it"
        elif owner:
            hint = f"it holds the output of `instruct-ner {owner}`; choose another folder or pass --overwrite"
        else:
            hint = "it holds files this command did not write; choose an empty folder or pass --overwrite"
        refuse(folder, f"{flag} is not empty ({shown}): {hint}", "out_not_empty")


def claim_folder(folder: PathLike, command: str) -> Path:
    """Create `folder` (parents too) if needed and mark it as this command's output; call after check_outputs."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / MARKER
    if folder_owner(folder) != command:
        marker.write_text(json.dumps({"command": command, "version": 1}) + "\n", encoding="utf-8")
    return folder
