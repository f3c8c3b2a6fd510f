"""`instruct-ner tag`: tag data with a trained token classifier; writes the same record schema as
`generate` (`pred_tags`, `entities` with token spans and character offsets, `timing`), so `score` and
`compare` treat both variants alike. Records out = records in, in input order; the output is always
valid IOB2 (constrained Viterbi). A text longer than the tagger's `max_length` is cut by the generative path's
window policy (`inference/windows.py`; `--window_tokens`, `--window_overlap`, `--window_sentences`) and its entities
merged.
Each entity's `score` is its marginal probability (`sft/crf.py`), calibrated when the folder was (`calibrate`);
`--threshold` drops the entities scored below it.
The work is done by `inference.predictor.TaggerPredictor`, the
object the Python API uses too, loaded by the same `load_predictor`: an explicit `--model` /
`--precision` wins over the saved one by the API's rule (`config.explicit_or_saved`).

Examples:
    instruct-ner tag --adapter runs/tagger --data ../shared/data/conll2003/test.txt --limit 500 --out runs/tagged.jsonl
    instruct-ner score --data runs/tagged.jsonl
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from instruct_ner.config import Config, ConfigError, parse_config
from instruct_ner.examples import labels_of
from instruct_ner.inference.confidence import check_threshold
from instruct_ner.inference.predictor import RunOptions, file_record, input_records, load_predictor
from instruct_ner.inference.windows import WindowOptions, check_window_options
from instruct_ner.jsonl import output_lock, write_jsonl
from instruct_ner.outputs import check_outputs
from instruct_ner.prompts.readers import ReaderOptions
from instruct_ner.sft.artifact import Artifact, check_labels
from instruct_ner.sft.options import ModelOptions


@dataclass
class TagConfig(Config, ModelOptions, ReaderOptions, WindowOptions):
    adapter: str | None = field(default=None, metadata={"help": "folder written by train-tagger (required)"})
    data: str | None = field(default=None, metadata={"help": "data source or JSONL records (required)"})
    out: str | None = field(default=None, metadata={"help": "output JSONL (required)"})
    batch_size: int = field(default=32, metadata={"help": "texts per forward pass"})
    threshold: float = field(
        default=0.0, metadata={"help": "drop entities whose (calibrated) score is below it; 0 keeps every one"}
    )

    def __post_init__(self) -> None:
        if not self.adapter or not self.data or not self.out:
            raise ConfigError("tag needs --adapter DIR, --data SRC and --out FILE.jsonl")
        check_window_options(self)
        check_threshold(self.threshold)


def tag(config: TagConfig) -> dict:
    """Tag `config.data` into `config.out`; an explicit --model / --precision wins over the saved ones."""
    check_outputs("tag", files={"--out": config.out}, inputs=[config.data], models=[config.adapter, config.model])
    artifact = Artifact.load(config.adapter, kind="tagger")
    records, examples = input_records(config.data, config)
    check_labels(artifact.labels, labels_of(e.tags for e in examples), config.adapter, config.data)
    predictor = load_predictor(config.adapter, config, artifact, trust_remote_code=config.trust_remote_code)
    predictor.threshold = config.threshold
    started = time.perf_counter()
    options = RunOptions(
        config.batch_size,
        window_tokens=config.window_tokens,
        window_overlap=config.window_overlap,
        window_sentences=config.window_sentences,
    )
    outputs = predictor.predict(examples, config.batch_size, records, options)
    seconds = time.perf_counter() - started
    with output_lock(config.out):
        write_jsonl(config.out, [file_record(output) for output in outputs])
    return {"records": len(outputs), "seconds": seconds, "sentences_per_second": len(outputs) / seconds}


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    config = parse_config(TagConfig, argv, prog="instruct-ner tag", description=__doc__)
    figures = tag(config)
    print(f"wrote {figures['records']} records to {config.out} ({figures['sentences_per_second']:.2f} sentences/s)")
    return 0
