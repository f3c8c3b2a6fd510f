"""The learning-curve report from the saved results: the grid table, the best system per size, per-type scores and
error counts, the sweep table, three matplotlib figures, and BENCHMARKS.md's answer-first tables (`tables`, written
between its markers by `write_tables`: the document's only copy of them).

It reads result dicts (`results.load_results`) and writes Markdown and PNGs; it runs nothing and chooses nothing
(a row's stale note is `results.stale`).
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from benchmarks.curves.grid import CORPORA, LATER_SWEEPS, LR_SWEEP, ROOT, SYSTEMS, Cell, size_key
from benchmarks.curves.results import shown, stale


def label_of(result: dict) -> str:
    """`Cell.label` of a result (results written before labels existed: the system)."""
    return result.get("label", result["system"])


def f1_of(result: dict) -> float:
    return result["test"]["scores"]["micro"]["f1"]


def markdown(results: list[dict]) -> str:
    rows = [
        "| corpus | system | train sentences | lr | steps (best) | train s | test sentences | micro P | micro R "
        "| micro F1 | sentences/s | hallucinated + malformed + truncated | measured (UTC) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    # a main cell that took a tested sweep point's result (`tested_sweep`) is its row: the point is not listed again
    taken = {r["result_of"] for r in results if "result_of" in r}
    for r in sorted(
        (r for r in results if "test" in r and r["cell"] not in taken),
        key=lambda r: (r["corpus"], label_of(r), r["train_sentences"]),
    ):
        micro, train, test = r["test"]["scores"]["micro"], r.get("train", {}), r["test"]
        subset = " (subset)" if test["test_is_subset"] else " (full)"
        parse = test["scores"].get("parse")  # generate's parse diagnostics, summed by `score` (taggers have none)
        bad = "-" if parse is None else str(sum(parse.get(k, 0) for k in ("hallucinated", "malformed", "truncated")))
        when = r.get("date", "-").removesuffix(" UTC")  # when the cell finished
        lr = f"{r['learning_rate']} ({note})" if (note := stale(r)) else r.get("learning_rate")
        rows.append(
            f"| {r['corpus']} | {label_of(r)} | {r['train_sentences']} | {lr or '-'} | "
            f"{train.get('steps', '-')} ({train.get('best_step', '-')}) | {train.get('train_seconds', 0):.0f} | "
            f"{test['test_sentences']}{subset} | {micro['precision']:.4f} | {micro['recall']:.4f} | "
            f"**{micro['f1']:.4f}** | {test['sentences_per_second']:.2f} | {bad} | {when} |"
        )
    rows += winners(results) + details(results)
    # a sweep point is a sweep cell's result (tested too when it was once a main cell, then superseded)
    sweeps = {r["cell"]: r for r in results if "test" not in r or is_sweep_point(r)}
    swept = {(r["corpus"], r["system"], Cell.parse(r["cell"]).size) for r in sweeps.values() if is_sweep_point(r)}
    for r in results:  # a main cell that did a sweep point's training (`same_training`) stands for it
        kind, size = SYSTEMS[r["system"]]["kind"], Cell.parse(r["cell"]).size
        if (
            (r["corpus"], r["system"], size) not in swept
            or "test" not in r
            or is_sweep_point(r)
            or label_of(r) != r["system"]
        ):
            continue
        if r.get("learning_rate") in LR_SWEEP.get(kind, ()):
            name = Cell(r["corpus"], r["system"], size, r["learning_rate"]).name
            sweeps.setdefault(name, {"cell": f"{name} (its main cell)", "train": r["train"]})
    sweeps = list(sweeps.values())
    if sweeps:
        rows += [
            "",
            "Sweeps at the smallest size (MiniLM's at every size"
            + "".join(
                f", {system}'s also at {size} {corpus}" for (corpus, system), at in LATER_SWEEPS.items() for size in at
            )
            + "; dev F1, best step): learning rates with each system's head and loss; "
            "then `head=linear` (cross-entropy) and `loss=ce` (CRF NLL alone) at the chosen rate, against the CRF "
            "head + compound loss:",
            "",
            "| cell | lr | dev F1 | best step | steps |",
            "|---|---|---|---|---|",
        ]
        for r in sorted(sweeps, key=lambda r: r["cell"]):
            train = r["train"]
            lr = r.get("learning_rate") or train["learning_rate"]
            rows.append(
                f"| {r['cell']} | {lr:g} | {train['best_dev_f1']:.4f} | {train['best_step']} | {train['steps']} |"
            )
    return "\n".join(rows) + "\n"


def is_sweep_point(result: dict) -> bool:
    """Whether a saved result is a sweep cell's (its name carries `lr=`), whether or not it was tested."""
    return Cell.parse(result["cell"]).lr is not None


def winners(results: list[dict]) -> list[str]:
    """One line per corpus and training size: the best test F1, the runner-up, and what each cost."""
    lines = ["", "Best system per corpus and training size (test micro F1; train minutes, test sentences/s):", ""]
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        if "test" in r and not is_sweep_point(r):  # main cells only, not a tested sweep point
            groups.setdefault((r["corpus"], r["train_sentences"]), []).append(r)
    for (corpus, size), group in sorted(groups.items(), key=lambda item: (item[0][0], size_key(item[0][1]))):
        ranked = sorted(group, key=f1_of, reverse=True)
        described = [
            f"{label_of(r)} {f1_of(r):.3f} ({r.get('train', {}).get('train_seconds', 0) / 60:.0f} min, "
            f"{r['test']['sentences_per_second']:.1f}/s{', subset' if r['test']['test_is_subset'] else ''})"
            for r in ranked
        ]
        lines.append(f"- {corpus}, {size} {unit_of(corpus)}: " + " > ".join(described))
    return lines


def unit_of(corpus: str) -> str:
    return CORPORA[corpus].unit if corpus in CORPORA else "sentences"


def details(results: list[dict]) -> list[str]:
    """Per-type P/R/F1 and the error analysis of `compare` for each corpus at the training size where the most
    systems were scored (the largest such size: a larger size with only the cheap systems measured would hide the
    comparison the table is for)."""
    lines: list[str] = []
    for corpus in sorted({r["corpus"] for r in results if "test" in r}):
        scored = [  # main cells only: a tested sweep point (a superseded main cell) is not a system of its own
            r
            for r in results
            if "test" in r and r["corpus"] == corpus and r["train_sentences"] and not is_sweep_point(r)
        ]
        if not scored:
            continue
        systems = {
            n: {label_of(r) for r in scored if r["train_sentences"] == n}
            for n in {r["train_sentences"] for r in scored}
        }
        size = max(systems, key=lambda n: (len(systems[n]), n))
        cells = sorted((r for r in scored if r["train_sentences"] == size), key=f1_of, reverse=True)
        types = sorted({t for r in cells for t in r["test"]["scores"]["per_type"]})
        lines += ["", f"{corpus}, {size} training {unit_of(corpus)}: P / R / F1 per type", ""]
        lines.append("| system | " + " | ".join(types) + " |")
        lines.append("|---" * (len(types) + 1) + "|")
        for r in cells:
            per_type = r["test"]["scores"]["per_type"]
            values = [
                "{precision:.2f} / {recall:.2f} / {f1:.2f}".format(**per_type[t]) if t in per_type else "-"
                for t in types
            ]
            lines.append(f"| {label_of(r)} | " + " | ".join(values) + " |")
        analysed = [r for r in cells if "errors" in r["test"]]
        if analysed:
            kinds = list(analysed[0]["test"]["errors"])
            title = f"{corpus}, {size} training {unit_of(corpus)}: errors over entity spans (`instruct-ner compare`)"
            lines += ["", title, ""]
            lines.append("| system | " + " | ".join(kinds) + " |")
            lines.append("|---" * (len(kinds) + 1) + "|")
            for r in analysed:
                counts = " | ".join(str(r["test"]["errors"][k]) for k in kinds)
                lines.append(f"| {label_of(r)} | {counts} |")
    return lines


def system_color(system: str) -> str:
    """One matplotlib colour per system, the same in every panel and figure.

    Example: system_color("gen-list") == "C0"
    """
    return f"C{list(SYSTEMS).index(system) % 10}"


def series(scored: list[dict], corpus: str, x_of) -> tuple[dict[str, list[tuple]], list[tuple]]:
    """What an F1 panel of `corpus` draws: one line per label (a system, a longer run), through its main cells,
    trained at the rate the sweeps chose, `(x, F1)` sorted by x; and the tested sweep points at another rate,
    `(x, F1, system)`, to be drawn unconnected (a point a main cell took as its result is on the line already).
    Labels in SYSTEMS order, a longer run after its system."""
    here = [r for r in scored if r["corpus"] == corpus]
    main = [r for r in here if not is_sweep_point(r)]
    taken = {r["result_of"] for r in here if "result_of" in r}
    lines = {
        label: sorted((x_of(r), f1_of(r)) for r in main if label_of(r) == label)
        for system in SYSTEMS
        for label in sorted({label_of(r) for r in main if r["system"] == system}, key=len)
    }
    others = sorted((x_of(r), f1_of(r), r["system"]) for r in here if is_sweep_point(r) and r["cell"] not in taken)
    return lines, others


def figures(results: list[dict], out: Path) -> list[Path]:
    """F1 vs training sentences, F1 vs training time, test sentences/s: one PNG each, matplotlib's object API.

    The F1 figures draw one line per system (and per longer run) through its main cells, those trained at the rate
    its sweeps chose; a tested sweep point at another rate is a cross of the system's colour, joined to nothing.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    scored = [r for r in results if "test" in r]
    out.mkdir(parents=True, exist_ok=True)
    written = []
    corpora = sorted({r["corpus"] for r in scored})
    for name, x_of, xlabel in (
        ("f1_vs_sentences", lambda r: r["train_sentences"], "training sentences"),
        ("f1_vs_train_time", lambda r: r.get("train", {}).get("train_seconds", 0) / 60, "training time (min)"),
    ):
        figure = Figure(figsize=(5 * max(1, len(corpora)), 4))
        FigureCanvasAgg(figure)
        for k, corpus in enumerate(corpora):
            axes = figure.add_subplot(1, max(1, len(corpora)), k + 1)
            lines, others = series(scored, corpus, x_of)
            for label, points in lines.items():
                system = next(r["system"] for r in scored if r["corpus"] == corpus and label_of(r) == label)
                spec = SYSTEMS[system]
                if spec["kind"] == "prompt":  # nothing trained: a level, not a point on the x axis
                    style = ":" if spec["few_shot"] == 0 else "--"
                    axes.axhline(points[-1][1], linestyle=style, color="grey", label=label)
                else:  # one colour per system in every panel; a longer run of it dashed
                    color, style = system_color(system), "-" if label == system else "--"
                    axes.plot(*zip(*points), marker="o", label=label, color=color, linestyle=style)
            for x, f1, system in others:
                axes.plot([x], [f1], marker="x", linestyle="none", color=system_color(system), alpha=0.7)
            if others:
                axes.plot([], [], marker="x", linestyle="none", color="black", label="another rate (sweep point)")
            axes.set_xscale("log")  # sizes grow 4x and 2.5x; minutes span two orders of magnitude
            axes.xaxis.set_major_formatter(ScalarFormatter())
            axes.xaxis.set_minor_formatter(NullFormatter())  # minor labels of a log axis overlap
            axes.set_title(corpus)
            axes.set_xlabel(xlabel)
            axes.set_ylabel("micro F1 (test)")
            axes.set_ylim(0, 1)
            axes.grid(alpha=0.3)
            axes.legend(fontsize=7)
        figure.tight_layout()
        path = out / f"{name}.png"
        figure.savefig(path, dpi=110)
        written.append(path)
    figure = Figure(figsize=(7, 4))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    speed: dict[str, list[float]] = {}
    for r in scored:
        speed.setdefault(r["system"], []).append(r["test"]["sentences_per_second"])
    names = [s for s in SYSTEMS if s in speed]
    axes.barh(names, [sum(speed[s]) / len(speed[s]) for s in names])
    axes.set_xscale("log")
    axes.set_xlabel("test sentences/s (mean over cells)")
    figure.tight_layout()
    path = out / "inference_speed.png"
    figure.savefig(path, dpi=110)
    written.append(path)
    return written


# BENCHMARKS.md's answer-first tables (`tables`): `--report` writes them between these markers
TABLES_BEGIN = "<!-- learning-curve tables: begin -->"
TABLES_END = "<!-- learning-curve tables: end -->"
EQUAL_DATA = ("minilm", 5000)  # a row of its own beside its largest size: the BERT baseline on the Llama systems' data
NAMES = {  # a system as the tables name it (a longer run adds its epochs)
    "gen-inline": "generative, inline",
    "gen-list": "generative, entity list",
    "tagger-bidirectional": "bidirectional LoRA + CRF tagger",
    "tagger-causal": "causal LoRA + CRF tagger",
    "tagger-frozen-crf": "frozen backbone + CRF",
    "tagger-bilstm-crf": "BiLSTM-CRF on frozen features",
    "minilm": "MiniLM-L6 + CRF",
}
# per corpus, in BENCHMARKS.md's order: its heading (`{test}`: the test set's size, from the results) and a
# paragraph below its table ("" for none); a corpus not listed comes last, headed by its name
HEADINGS = {
    "conll2003": ("CoNLL-2003 (English news; test: all {test} sentences)", ""),
    "kind-wn": ("KIND Wikinews (Italian news; test: WN dev set, {test} sentences)", ""),
    "kind-adg": ("KIND De Gasperi (Italian, Alcide De Gasperi's writings; test: ADG dev set, {test} sentences)", ""),
    "kind-fic": (
        "KIND fiction (Italian novels; test: FIC dev set, {test} sentences)",
        "FIC's training pool is 81% PER in document order, its test set balanced: the taggers learn to answer PER "
        "only.",
    ),
    "emails-it": ("Italian e-mails (templated, not real mail; test: {test} e-mails; rates in e-mails/s)", ""),
}
# a footnote on one cell's training minutes: its mark ([a], [b], ... in this order) follows them, its text goes below
# the corpus's table (`{f1 CELL}`, `{min CELL}`: a cell's figures as its row prints them, see `fill`)
FOOTNOTES = {
    "emails-it/gen-inline/all": "About 24 of the {min emails-it/gen-inline/all} minutes are inflated: its first "
    "process shared the CPU with a CI install and its timer was hand-recorded (benchmarks/HISTORY.md). With 60 "
    "e-mails: tagger {f1 emails-it/tagger-bidirectional/60} ({min emails-it/tagger-bidirectional/60} min), inline "
    "{f1 emails-it/gen-inline/60} ({min emails-it/gen-inline/60} min), entity list {f1 emails-it/gen-list/60}, "
    "MiniLM {f1 emails-it/minilm/60}.",
}


def fill(text: str, results: list[dict]) -> str:
    """`text` with each `{f1 CELL}` and `{min CELL}` replaced by that cell's test micro F1 (three decimals) or
    training minutes (whole), so that a note's figures come from the results too; a cell without a full-test
    result is a ValueError.

    Example: fill("inline {f1 emails-it/gen-inline/60}", results) == "inline 0.928"
    """
    cells = {r["cell"]: r for r in results if "test" in r and not r["test"]["test_is_subset"]}

    def figure(match: re.Match) -> str:
        if (r := cells.get(match[2])) is None:
            raise ValueError(f"{match[0]}: no full-test result of {match[2]}")
        return f"{f1_of(r):.3f}" if match[1] == "f1" else f"{r['train']['train_seconds'] / 60:.0f}"

    return re.sub(r"\{(f1|min) ([^}]+)\}", figure, text)


def machine_letter(machine: str) -> str:
    """BENCHMARKS.md's machine letter of a result's `machine`: B the 2-core VMs with native bf16, A those without
    (bf16 support not recorded), else the string itself.

    Example: machine_letter("CPU x86_64, 2 cores, native bf16, torch threads 2") == "B"
    """
    if machine.startswith("CPU x86_64, 2 cores, native bf16"):
        return "B"
    return "A" if machine.startswith("CPU x86_64, 2 cores") else machine


def table_rows(results: list[dict], corpus: str) -> list[dict]:
    """The cells a corpus's table shows: each trained system (and longer run) at the largest training size it ran
    on the full test set, plus EQUAL_DATA's cell where that is not already its row; best F1 first (ties: SYSTEMS
    order). Main cells only: no sweep point, no prompted system, no test subset."""
    scored = [
        r
        for r in results
        if r["corpus"] == corpus
        and "test" in r
        and not r["test"]["test_is_subset"]
        and not is_sweep_point(r)
        and SYSTEMS[r["system"]]["kind"] != "prompt"
    ]
    largest: dict[str, dict] = {}
    for r in sorted(scored, key=lambda r: size_key(Cell.parse(r["cell"]).size)):
        largest[label_of(r)] = r
    rows = list(largest.values())
    system, size = EQUAL_DATA
    rows += [r for r in scored if label_of(r) == system and Cell.parse(r["cell"]).size == size and r not in rows]
    return sorted(rows, key=lambda r: (-f1_of(r), list(SYSTEMS).index(r["system"])))


def tables(results: list[dict]) -> str:
    """BENCHMARKS.md's answer-first tables, one per corpus (`table_rows`): system, cell (the result file and the
    `--cell` argument; its training records where the size does not say them), test micro F1 (bold: the best and
    any equal to it at three decimals), train minutes (`train.train_seconds` / 60), test sentences/s, machine
    letter (`machine_letter`), precision."""
    corpora = sorted(
        (c for c in {r["corpus"] for r in results} if table_rows(results, c)),
        key=lambda c: (list(HEADINGS).index(c) if c in HEADINGS else len(HEADINGS), c),
    )
    lines: list[str] = []
    for corpus in corpora:
        rows, unit = table_rows(results, corpus), unit_of(corpus)
        heading, after = HEADINGS.get(corpus, (corpus, ""))
        tests = sorted({r["test"]["test_sentences"] for r in rows})
        best = max(round(f1_of(r), 3) for r in rows)
        lines += [
            f"### {heading.format(test=', '.join(f'{n:,}' for n in tests))}",
            "",
            f"| system | cell | F1 | train min | test {unit}/s | machine | precision |",
            "|---|---|---|---|---|---|---|",
        ]
        notes = []
        for r in rows:
            size, count = Cell.parse(r["cell"]).size, r["train_sentences"]
            cell = f"`{r['cell']}`" + (
                f" ({count:,})" if size == "all" else f" (all {count:,})" if count < size else ""
            )
            f1 = f"{f1_of(r):.3f}"
            train = f"{r['train']['train_seconds'] / 60:.0f}"
            name = NAMES.get(r["system"], r["system"]) + label_of(r).removeprefix(r["system"])
            if r["cell"] in FOOTNOTES:
                mark = f"[{'abcdefghijklmnopqrstuvwxyz'[len(notes)]}]"
                notes.append(f"{mark} {FOOTNOTES[r['cell']]}")
                train += f" {mark}"
            lines.append(
                f"| {name} | {cell} | {f'**{f1}**' if float(f1) == best else f1} | {train} | "
                f"{r['test']['sentences_per_second']:.2f} | {machine_letter(r.get('machine', '-'))} | "
                f"{r.get('precision', '-')} |"
            )
        lines += [""] + [wrap(fill(text, results)) + "\n" for text in (*notes, after) if text]
    return "\n".join(lines).rstrip("\n") + "\n"


def wrap(text: str, width: int = 119) -> str:
    """A paragraph as BENCHMARKS.md writes it: lines up to `width` characters, broken at spaces."""
    return "\n".join(textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False))


def write_tables(results: list[dict], document: Path) -> None:
    """Replace what lies between TABLES_BEGIN and TABLES_END in `document` with `tables(results)`; a document
    without both markers, in that order, is refused (ValueError) and left as it was."""
    text = document.read_text(encoding="utf-8")
    begin, end = text.find(TABLES_BEGIN), text.find(TABLES_END)
    if begin < 0 or end < begin:
        raise ValueError(
            f"{shown(document)}: the markers {TABLES_BEGIN} and {TABLES_END} (in that order) are missing: "
            "put them where the learning-curve tables go"
        )
    head = text[: begin + len(TABLES_BEGIN)]
    document.write_text(f"{head}\n{tables(results)}{text[end:]}", encoding="utf-8")


def tables_in(document: Path) -> str:
    """What lies between the markers in `document` (as `tables` writes it)."""
    text = document.read_text(encoding="utf-8")
    return text.split(TABLES_BEGIN, 1)[1].split(TABLES_END, 1)[0].removeprefix("\n")


def write(results: list[dict], out: Path, document: Path = ROOT / "BENCHMARKS.md") -> list[Path]:
    """`--report`: the answer-first tables in `document` (`write_tables`: refused, before anything is written, where
    its markers are missing), then the figures and the full tables (`learning_curve.md`) in `out`."""
    write_tables(results, document)
    written = [document, *figures(results, out)]
    (out / "learning_curve.md").write_text(markdown(results), encoding="utf-8")
    return [*written, out / "learning_curve.md"]
