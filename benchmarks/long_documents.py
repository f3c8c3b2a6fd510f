"""Long documents: the window policy (inference/windows.py) against one prompt per sentence or e-mail.

Cells (each written to the JSON as soon as it is done; a rerun skips the cells already there unless --redo):
- `conll-{sentences,documents}-{generative,tagger}`: CoNLL-2003 test as its 3,453 sentences and as its 231
  `-DOCSTART-` documents (`--unit document`), with one trained adapter (`--adapter`) and one tagger (`--tagger`):
  micro F1 (seqeval, as `score`) and seconds per input token. Acceptance: F1 of documents within 0.01 of
  sentences, time per input token within 1.3x.
- `emails-{single,threads}`: the e-mail test set one by one, and concatenated into threads of 10 with
  `Il giorno ... ha scritto:` quote headers (scored on the e-mails' own words only). Acceptance: F1 within 0.02.
- `memory-1mb`: a 1 MB text through `NER.predict_entities` in a child process: its peak resident memory and
  seconds. Acceptance: < 4 GB.

    .venv/bin/python benchmarks/long_documents.py --adapter runs/sft-conll --tagger runs/tagger-conll \\
        --email_adapter runs/sft-emails --out benchmarks/results/long_documents.json
    .venv/bin/python benchmarks/long_documents.py --cells memory-1mb --adapter runs/sft-conll

The long cells (the full test sets on CPU) take long; run them on a GPU machine or with --limit for a smoke run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the repository root, for `benchmarks.*`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.cells import load, save  # noqa: E402

CONLL_TEST = "../shared/data/conll2003/test.txt"
EMAILS_TEST = "data/emails_it_large/test.csv"
CELLS = [
    "conll-sentences-generative",
    "conll-documents-generative",
    "conll-sentences-tagger",
    "conll-documents-tagger",
    "emails-single",
    "emails-threads",
    "memory-1mb",
]
HEADER = "\n\nIl giorno {day:02d}/03/2025 alle ore 10:{minute:02d} ha scritto:\n\n"


def run_cell(predictor, examples, batch_size: int) -> tuple[list[dict], float]:
    from instruct_ner.inference.predictor import RunOptions

    started = time.perf_counter()
    outputs = predictor.predict(examples, options=RunOptions(batch_size=batch_size))
    return outputs, time.perf_counter() - started


def input_tokens(predictor, examples) -> int:
    tokenizer = getattr(getattr(predictor, "generator", None), "tokenizer", None) or predictor.tokenizer
    return sum(len(tokenizer(e.text, add_special_tokens=False)["input_ids"]) for e in examples)


def conll_cell(name: str, args) -> dict:
    from instruct_ner.inference.predictor import load_predictor
    from instruct_ner.inference.score import score_tags
    from instruct_ner.prompts.readers import ReaderOptions, load_examples

    unit = "document" if "documents" in name else "sentence"
    folder = args.tagger if name.endswith("tagger") else args.adapter
    if not folder:
        return {"skipped": "no --tagger" if name.endswith("tagger") else "no --adapter"}
    examples, _ = load_examples(args.conll, ReaderOptions(unit=unit, limit=args.limit))
    predictor = load_predictor(folder)
    outputs, seconds = run_cell(predictor, examples, args.batch_size)
    scores = score_tags([e.tags for e in examples], [o["pred_tags"] for o in outputs])
    tokens = input_tokens(predictor, examples)
    return {
        "unit": unit,
        "inputs": len(examples),
        "windows": sum(o.get("windows", 1) for o in outputs),
        "window_conflicts": sum(o.get("parse", o).get("window_conflicts", 0) for o in outputs),
        "f1": scores["micro"]["f1"],
        "entities": sum(len(o["entities"]) for o in outputs),
        "offsets_exact": exact_offsets(examples, outputs),
        "seconds": seconds,
        "input_tokens": tokens,
        "seconds_per_input_token": seconds / tokens,
    }


def exact_offsets(examples, outputs) -> bool:
    """Whether every predicted entity's offsets slice its own text out of the input (`text[start:end] == text`)."""
    return all(e.text[x.start : x.end] == x.text for e, o in zip(examples, outputs) for x in o["entities"])


def threads(emails, size: int = 10):
    """Threads of `size` e-mails joined by quote headers, and for each thread the word ranges of its e-mails.

    Example: a thread's text is e1 + HEADER + e2 + ...; the header's words are tagged O and not scored.
    """
    from instruct_ner.examples import Example
    from instruct_ner.prompts.tokenize import tokenize_with_offsets

    for first in range(0, len(emails), size):
        text, tokens, tags, offsets, ranges = "", [], [], [], []
        for k, email in enumerate(emails[first : first + size]):
            if k:
                header = HEADER.format(day=1 + k, minute=k)
                for word, start, end in tokenize_with_offsets(header):
                    tokens.append(word)
                    tags.append("O")
                    offsets.append((len(text) + start, len(text) + end))
                text += header
            ranges.append((len(tokens), len(tokens) + len(email.tokens)))
            tokens += email.tokens
            tags += email.tags
            offsets += [(len(text) + s, len(text) + e) for s, e in email.offsets]
            text += email.text
        yield Example(f"thread-{first // size}", tokens, tags, text, offsets), ranges


def email_cell(name: str, args) -> dict:
    from instruct_ner.inference.predictor import load_predictor
    from instruct_ner.inference.score import score_tags
    from instruct_ner.prompts.readers import ReaderOptions, load_examples

    if not args.email_adapter:
        return {"skipped": "no --email_adapter"}
    emails, _ = load_examples(args.emails, ReaderOptions(limit=args.limit))
    predictor = load_predictor(args.email_adapter)
    if name == "emails-single":
        outputs, seconds = run_cell(predictor, emails, args.batch_size)
        predicted = [o["pred_tags"] for o in outputs]
    else:
        built = list(threads(emails))
        outputs, seconds = run_cell(predictor, [thread for thread, _ in built], args.batch_size)
        predicted = [o["pred_tags"][s:e] for o, (_, ranges) in zip(outputs, built) for s, e in ranges]
    windows = sum(o.get("windows", 1) for o in outputs)
    scores = score_tags([e.tags for e in emails], predicted)
    inputs = emails if name == "emails-single" else [thread for thread, _ in built]
    return {"inputs": len(outputs), "emails": len(emails), "windows": windows, "f1": scores["micro"]["f1"],
            "offsets_exact": exact_offsets(inputs, outputs), "seconds": seconds}  # fmt: skip


MEMORY_CHILD = """
import json, resource, sys, time
from instruct_ner import NER
folder, size = sys.argv[1], int(sys.argv[2])
ner = NER.from_pretrained(folder)
sentence = "Il Sig. Rossi della Acme S.p.A. ha scritto a Maria Bianchi da Milano il 3 marzo, n. 5. "
text = (sentence * (size // len(sentence) + 1))[:size]
started = time.perf_counter()
entities = ner.predict_entities(text)
seconds = time.perf_counter() - started
assert all(text[e.start : e.end] == e.text for e in entities)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"bytes": len(text.encode()), "entities": len(entities), "seconds": seconds, "peak_rss_bytes": peak}))
"""


def memory_cell(name: str, args) -> dict:
    folder = args.email_adapter or args.adapter
    if not folder:
        return {"skipped": "no --adapter or --email_adapter"}
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_CHILD, folder, str(args.memory_bytes)], capture_output=True, text=True
    )
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1:]}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["peak_rss_gib"] = result["peak_rss_bytes"] / 2**30
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adapter", help="a generative adapter trained on CoNLL-2003")
    parser.add_argument("--tagger", help="a tagger trained on CoNLL-2003")
    parser.add_argument("--email_adapter", help="a generative adapter trained on the e-mails")
    parser.add_argument("--conll", default=CONLL_TEST)
    parser.add_argument("--emails", default=EMAILS_TEST)
    parser.add_argument("--cells", nargs="+", default=CELLS, choices=CELLS)
    parser.add_argument("--limit", type=int, default=None, help="inputs per cell (a smoke run)")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--memory_bytes", type=int, default=1_000_000)
    parser.add_argument("--redo", action="store_true", help="recompute cells already in the results")
    parser.add_argument("--out", default="benchmarks/results/long_documents.json")
    args = parser.parse_args()
    out = Path(args.out)
    results = load(out)
    for name in args.cells:
        if name in results["cells"] and not args.redo:
            print(f"{name}: done already ({out})", file=sys.stderr)
            continue
        print(f"{name} ...", file=sys.stderr, flush=True)
        cell = conll_cell if name.startswith("conll") else email_cell if name.startswith("emails") else memory_cell
        results["cells"][name] = cell(name, args)
        save(out, results)
        print(f"{name}: {results['cells'][name]}", file=sys.stderr, flush=True)
    cells = results["cells"]
    checks = {}
    for kind in ("generative", "tagger"):
        s, d = cells.get(f"conll-sentences-{kind}", {}), cells.get(f"conll-documents-{kind}", {})
        if "f1" in s and "f1" in d:
            checks[f"conll-{kind}-f1-within-0.01"] = abs(s["f1"] - d["f1"]) <= 0.01
            ratio = d["seconds_per_input_token"] / s["seconds_per_input_token"]
            checks[f"conll-{kind}-time-per-token-within-1.3x"] = ratio <= 1.3
    if "f1" in cells.get("emails-single", {}) and "f1" in cells.get("emails-threads", {}):
        checks["emails-threads-f1-within-0.02"] = (
            abs(cells["emails-single"]["f1"] - cells["emails-threads"]["f1"]) <= 0.02
        )
    if "peak_rss_gib" in cells.get("memory-1mb", {}):
        checks["memory-1mb-under-4-gib"] = cells["memory-1mb"]["peak_rss_gib"] < 4
    results["checks"] = checks
    save(out, results)
    print(json.dumps(checks, indent=2))


if __name__ == "__main__":
    main()
