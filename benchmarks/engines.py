"""Both engines on the same CPU, model, adapter and sentences: `generate --engine hf` (our loop) and
`--engine vllm` (vLLM's engine), each with the constraint on and off. Reports throughput (sentences/s, decoding
only: model loading excluded, as `generate` prints it), F1 (seqeval, `inference.score`), the parser's
diagnostics summed, and how many generations are identical between engines. Run it in the vLLM venv
(.venv-vllm/bin/python benchmarks/engines.py), which has both engines.

Resumable: each (engine, constraint) run is a `generate` output under `benchmarks/results/engines/` continued with
`--resume`, and a finished run is not redone; the summary is `benchmarks/results/engines/summary.json`.

With an adapter, also a load test of `instruct-ner serve` on loopback (bounded: `--server_requests` requests, each
`--server_timeout` seconds at most): `--clients` concurrent clients (`NER.from_server`), each sending its share of
the first sentences one request at a time; every answer must parse and equal the `--engine vllm` constrained
record of the same sentence. Reported: requests answered, identical, latency percentiles (p50/p90/p99), requests/s.

Example:
    .venv-vllm/bin/python benchmarks/engines.py --data ../shared/data/conll2003/test.txt --limit 50
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

OUT = Path(__file__).resolve().parent / "results" / "engines"


def cpu() -> dict:
    flags = set()
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags") and not flags:
            flags = set(line.split(":", 1)[1].split())
        if line.startswith("model name") and not model:
            model = line.split(":", 1)[1].strip()
    import os

    return {"model": model, "cores": os.cpu_count(), "avx512_bf16": "avx512_bf16" in flags, "machine": platform.node()}


def run(engine: str, constrain: bool, args) -> dict:
    from instruct_ner.config import make_config
    from instruct_ner.inference.generate import GenerateConfig, generate
    from instruct_ner.inference.score import score_file

    out = OUT / f"{engine}-{'constrained' if constrain else 'free'}.jsonl"
    figures_file = out.with_suffix(".figures.json")
    if figures_file.exists():
        return json.loads(figures_file.read_text())
    values = dict(data=args.data, limit=args.limit, out=str(out), engine=engine, constrain=constrain)
    values.update(precision=args.precision, batch_size=args.batch_size, progress=False, resume=out.exists())
    if args.adapter:
        values["adapter"] = args.adapter
    figures = generate(make_config(GenerateConfig, values))
    records = [json.loads(line) for line in out.read_text().splitlines()]
    keys = ("hallucinated", "malformed", "unknown_label", "truncated", "out_of_order", "stopped_runaway")
    figures["parse"] = {k: sum(int(r["parse"].get(k, 0)) for r in records) for k in keys}
    figures["f1"] = score_file(out)["micro"]["f1"]
    figures_file.write_text(json.dumps(figures, indent=1))
    return figures


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between order statistics (numpy's default).

    Example: percentile([1.0, 2.0, 3.0, 4.0], 50) -> 2.5
    """
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def server_load(args) -> dict:
    import socket
    import subprocess
    import sys
    import time
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    from instruct_ner.api import NER
    from instruct_ner.prompts.readers import ReaderOptions, load_examples

    figures_file = OUT / "server.figures.json"
    if figures_file.exists():
        return json.loads(figures_file.read_text())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "instruct_ner.cli", "serve", "--adapter", args.adapter]
    command += ["--precision", args.precision, "--port", str(port)]
    log = (OUT / "server.log").open("w")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        while True:
            if server.poll() is not None:
                return {"error": f"the server exited ({server.returncode}); see {OUT / 'server.log'}"}
            if time.monotonic() - started > args.server_timeout:
                return {"error": f"the server did not come up in {args.server_timeout} s"}
            try:
                urllib.request.urlopen(f"{url}/health", timeout=5)
                break
            except OSError:
                time.sleep(2)
        startup = time.monotonic() - started
        examples = load_examples(args.data, ReaderOptions(limit=min(args.server_requests, args.limit)))[0]
        engine = [json.loads(line) for line in (OUT / "vllm-constrained.jsonl").read_text().splitlines()]
        ner = NER.from_server(url, adapter=args.adapter, batch_size=1, concurrency=1)
        ner.predictor.generator.timeout = args.server_timeout

        def one(text: str) -> tuple[float, list]:
            began = time.perf_counter()
            entities = ner.predict_entities(text)
            return time.perf_counter() - began, entities

        began = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            answers = list(pool.map(one, [e.text for e in examples]))
        seconds = time.perf_counter() - began
    finally:
        server.terminate()
        server.wait(timeout=120)
        log.close()
    spans = [[(e["start"], e["end"], e["label"]) for e in record["entities"]] for record in engine]
    same = sum([(e.start, e.end, e.label) for e in entities] == span for (_, entities), span in zip(answers, spans))
    latencies = [latency for latency, _ in answers]
    figures = {
        "clients": args.clients,
        "requests": len(examples),
        "answered": len(answers),
        "identical_to_engine": same,
        "startup_s": startup,
        "seconds": seconds,
        "requests_per_s": len(answers) / seconds,
        "latency_s": {f"p{q}": percentile(latencies, q) for q in (50, 90, 99)},
    }
    figures_file.write_text(json.dumps(figures, indent=1))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/conll2003/test.txt"))
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--adapter", default=None, help="adapter folder; none = zero-shot prompting")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients of the server's load test")
    parser.add_argument("--server_requests", type=int, default=100, help="requests in the load test (0 = none)")
    parser.add_argument("--server_timeout", type=float, default=900, help="seconds: server start, each request")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    summary = {"cpu": cpu(), "data": args.data, "limit": args.limit, "adapter": args.adapter, "runs": {}}
    for constrain in (False, True):
        for engine in ("hf", "vllm"):
            summary["runs"][f"{engine}-{'constrained' if constrain else 'free'}"] = run(engine, constrain, args)
        pair = [
            [
                json.loads(line)["generation"]
                for line in (OUT / f"{e}-{'constrained' if constrain else 'free'}.jsonl").read_text().splitlines()
            ]
            for e in ("hf", "vllm")
        ]
        same = sum(a == b for a, b in zip(*pair))
        summary[f"identical_{'constrained' if constrain else 'free'}"] = f"{same}/{len(pair[0])}"
    if args.adapter and args.server_requests:
        summary["server"] = server_load(args)
    (OUT / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
