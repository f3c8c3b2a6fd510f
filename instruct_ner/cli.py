"""The `instruct-ner` command: one subcommand per pipeline stage, each a module with its own `main(argv)`.

Stage modules are imported only when their subcommand runs, so `parse` and `score` start without
importing torch. Errors about the user's input (bad data, bad config) are printed as one clear line
and exit with status 2; anything else is a bug and keeps its traceback.

Examples:
    instruct-ner prepare --data ../shared/data/conll2003/valid.txt --out runs/valid.pairs.jsonl
    instruct-ner parse --data runs/valid.pairs.jsonl --field response --out runs/valid.parsed.jsonl
    instruct-ner score runs/valid.parsed.jsonl
"""

from __future__ import annotations

import errno
import importlib
import sys

SUBCOMMANDS = {
    "demo": ("instruct_ner.demo", "the whole pipeline on the embedded defaults (zero-shot, SFT, generate, score)"),
    "prepare": ("instruct_ner.prompts.prepare", "read data and write instruction/response pairs (JSONL)"),
    "parse": ("instruct_ner.inference.parse", "map responses or generations back to IOB2 tags"),
    "score": ("instruct_ner.inference.score", "seqeval precision/recall/F1 of pred_tags against tags"),
    "train": (
        "instruct_ner.training:train_main",
        "LoRA SFT of a causal LM on instruction/response pairs (TRL SFTTrainer)",
    ),
    "generate": ("instruct_ner.inference.generate", "batched generation, responses parsed into tags (JSONL)"),
    "train-tagger": (
        "instruct_ner.training:tagger_main",
        "train the token classifier (causal/bidirectional Llama, LoRA, CRF)",
    ),
    "compare": (
        "instruct_ner.inference.compare",
        "side-by-side report: scores, error analysis, figures (Markdown, JSON, PNG)",
    ),
    "serve": (
        "instruct_ner.inference.server",
        "vLLM's OpenAI-compatible server with adapters as LoRA modules (optional install: make install-vllm)",
    ),
    "tag": ("instruct_ner.inference.tag", "tag data with a trained token classifier (same records as generate)"),
    "review": (
        "instruct_ner.inference.review",
        "a self-contained HTML page to review predictions, least confident first",
    ),
    "export": (
        "instruct_ner.prompts.annotation_tools:export_main",
        "records as pre-annotations for Label Studio, Prodigy or Argilla",
    ),
    "import": (
        "instruct_ner.prompts.annotation_tools:import_main",
        "corrected annotations from Label Studio, Prodigy or Argilla as training records",
    ),
    "calibrate": (
        "instruct_ner.inference.calibrate",
        "fit a calibration of entity scores (temperature, Platt or none) on dev predictions; save it with the model",
    ),
}


# Errors of the user's machine, not of the program: a full disk, a read-only or forbidden target, a folder where a
# file was expected. Each is one line naming the file; any other OSError keeps its traceback (a bug).
USER_OS_ERRORS = {
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EROFS,
    errno.EACCES,
    errno.EPERM,
    errno.EISDIR,
    errno.ENOTDIR,
    errno.EEXIST,
    errno.ENAMETOOLONG,
}


def os_error_line(error: OSError) -> str:
    """One line for an OSError: the file it concerns and the system's reason.

    Example: os_error_line(OSError(28, "No space left on device", "out.jsonl")) -> "out.jsonl: No space left on device"
    """
    where = error.filename if error.filename is not None else "output"
    return f"{where}: {error.strerror or error} (nothing was overwritten; free space or choose another path)"


def usage() -> str:
    width = max(map(len, SUBCOMMANDS))
    lines = [f"  {name:<{width}}  {summary}" for name, (_, summary) in SUBCOMMANDS.items()]
    return "usage: instruct-ner SUBCOMMAND [options]   (instruct-ner SUBCOMMAND --help)\n\n" + "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from instruct_ner.errors import InstructNerError

    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in SUBCOMMANDS:
        print(usage(), file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    module_name, _, function = SUBCOMMANDS[argv[0]][0].partition(":")
    command = getattr(importlib.import_module(module_name), function or "main")
    try:
        return command(argv[1:]) or 0
    except (InstructNerError, FileNotFoundError) as error:
        print(f"instruct-ner {argv[0]}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        if error.errno not in USER_OS_ERRORS:
            raise
        print(f"instruct-ner {argv[0]}: error: {os_error_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"\ninstruct-ner {argv[0]}: interrupted; files written so far are valid "
            "(generate and train continue with --resume)",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
