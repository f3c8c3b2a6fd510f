"""vLLM against our own loop, on the embedded SmolLM2 and a fixed set (the bundled CoNLL test sample), with a LoRA
adapter of ours (fresh: B = 0, so it changes nothing but goes through vLLM's LoRA path): greedy generations
identical between engines with the constraint off, constrained vLLM outputs with no hallucinated, malformed or
unknown-label line, and `instruct-ner serve` answering concurrent clients with the engine's own records.

Marker `vllm`; skipped where vLLM is not installed. `make test-vllm` runs them in the vLLM venv (.venv-vllm).
"""

import socket
import subprocess
import sys
import time
import urllib.request

import pytest

pytestmark = [pytest.mark.vllm, pytest.mark.slow]
pytest.importorskip("vllm", reason="vLLM is not installed here (make install-vllm; make test-vllm)")

from conftest import DATA  # noqa: E402
from instruct_ner.inference.predictor import GenerativePredictor, RunOptions  # noqa: E402
from instruct_ner.prompts.readers import ReaderOptions, load_examples  # noqa: E402

N = 16
LABELS = ["LOC", "MISC", "ORG", "PER"]


@pytest.fixture(scope="module")
def examples():
    return load_examples(DATA / "conll_en" / "test.txt", ReaderOptions(limit=N))[0]


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    """A LoRA adapter of the embedded model as `train` saves one, untrained (peft's default init: B = 0)."""
    from peft import LoraConfig, get_peft_model

    from instruct_ner.prompts.templates import PromptBuilder, load_template
    from instruct_ner.sft.artifact import Artifact
    from instruct_ner.sft.models import EMBEDDED, load_causal_lm, resolve_model

    folder = tmp_path_factory.mktemp("vllm") / "conll"
    model = load_causal_lm(resolve_model(""), "fp32")
    peft = get_peft_model(model, LoraConfig(r=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    peft.save_pretrained(folder)
    builder = PromptBuilder(load_template("ner-list-compact.en"), LABELS, "chat", {})
    Artifact("generative", LABELS, EMBEDDED, "fp32", prompt=builder.to_dict()).save(folder)
    return folder


def predict(folder, examples, engine: str, constrain: bool) -> list[dict]:
    from instruct_ner.sft.artifact import Artifact

    builder = Artifact.load(folder).builder()
    predictor = GenerativePredictor.load(builder, "", folder, "fp32", constrain=constrain, engine=engine)
    return predictor.predict(examples, options=RunOptions(batch_size=N))


@pytest.fixture(scope="module")
def outputs(adapter, examples):
    return {
        (engine, constrain): predict(adapter, examples, engine, constrain)
        for engine in ("hf", "vllm")
        for constrain in (False, True)
    }


def test_greedy_generations_agree_between_engines(outputs):
    """fp32, constraint off: vLLM's kernels and its unmerged LoRA round differently from torch's, so a near tie
    may break the other way; on this set every generation agrees (measured 16/16; 15/16 tolerated)."""
    hf, vllm = outputs[("hf", False)], outputs[("vllm", False)]
    same = sum(a["generation"] == b["generation"] for a, b in zip(hf, vllm))
    assert same >= N - 1, [(a["generation"], b["generation"]) for a, b in zip(hf, vllm) if a != b]


def test_constrained_vllm_outputs_are_grounded(outputs):
    for engine in ("hf", "vllm"):
        for record in outputs[(engine, True)]:
            parse = record["parse"]
            assert parse["hallucinated"] == parse["malformed"] == parse["unknown_label"] == 0, (engine, record)
            assert all(record["text"][e.start : e.end] == e.text for e in record["entities"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_server_answers_concurrent_clients_with_the_engines_records(adapter, examples, outputs):
    from concurrent.futures import ThreadPoolExecutor

    from instruct_ner.api import NER

    port = free_port()
    command = [sys.executable, "-m", "instruct_ner.cli", "serve", "--adapter", str(adapter), "--precision", "fp32"]
    server = subprocess.Popen([*command, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while True:
            assert server.poll() is None, "the server exited before answering"
            assert time.monotonic() < deadline, "the server did not come up in 600 s"
            try:
                urllib.request.urlopen(f"{url}/health", timeout=5)
                break
            except OSError:
                time.sleep(2)
        ner = NER.from_server(url, adapter=adapter, batch_size=N)
        texts = [example.text for example in examples]
        with ThreadPoolExecutor(4) as pool:  # 4 clients, each the whole set
            answers = list(pool.map(lambda _: ner.predict(texts), range(4)))
        engine = [record["entities"] for record in outputs[("vllm", True)]]
        assert all(answer == engine for answer in answers)
        assert len(ner.predictor.generator.latencies) == 4 * N
    finally:
        server.terminate()
        server.wait(timeout=60)
