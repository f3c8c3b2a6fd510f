"""`instruct-ner calibrate`: fit a calibration of entity scores on dev predictions and save it with the model.

Reads predictions (`generate` / `tag` output with gold `tags`) made by the folder as it is now, each record checked
(a bad one is an error naming its line; a file whose gold tags hold no entity, unannotated text tagged O, is
refused), fits Platt scaling on the score's logit (a temperature and a shift; `--method temperature`: the
temperature alone) that minimises the log loss of "this entity is right" (`inference.confidence.fit_calibration`),
composes it with the folder's current calibration (the scores in the file were made with it) and writes it into the
folder's `instruct_ner.json`; every later prediction applies it.
Prints the expected calibration error before and after (in-sample: `compare` reports a cross-fitted one).

Example (runs/dev.jsonl: that adapter's `generate` output on dev data):
    instruct-ner calibrate --adapter runs/smollm2-conll2003 --data runs/dev.jsonl
"""

from __future__ import annotations

from dataclasses import dataclass, field

from instruct_ner.config import Config, ConfigError, parse_config
from instruct_ner.examples import DataError
from instruct_ner.inference.confidence import (
    CALIBRATION_METHODS,
    DEFAULT_CALIBRATION,
    Calibration,
    Scored,
    check_entities,
    expected_calibration_error,
    fit_calibration,
    scored_entities,
)
from instruct_ner.inference.score import check_tag_record
from instruct_ner.jsonl import iter_jsonl
from instruct_ner.sft.artifact import Artifact


@dataclass
class CalibrateConfig(Config):
    adapter: str | None = field(default=None, metadata={"help": "folder from train or train-tagger (required)"})
    data: str | None = field(default=None, metadata={"help": "its predictions on dev data, with gold tags (required)"})
    method: str = field(
        default=DEFAULT_CALIBRATION, metadata={"help": "platt (a temperature and a shift) or temperature (alone)"}
    )

    def __post_init__(self) -> None:
        if not self.adapter or not self.data:
            raise ConfigError("calibrate needs --adapter DIR and --data PREDICTIONS.jsonl")
        if self.method not in CALIBRATION_METHODS:
            raise ConfigError(f"method must be one of {CALIBRATION_METHODS}, not {self.method!r}")


def compose(first: Calibration | None, then: Calibration) -> Calibration:
    """`then` applied after `first`, as one calibration. Example: compose(Calibration("temperature", 2.0),
    Calibration("temperature", 0.5)).a -> 1.0"""
    if first is None:
        return then
    method = "platt" if "platt" in (first.method, then.method) else "temperature"
    return Calibration(method, then.a * first.a, then.a * first.b + then.b)


def read_predictions(path: str) -> Scored:
    """The scored entities of predictions on labelled data, each record checked first (`tags`, `pred_tags`,
    `entities`): a bad one is a DataError naming its line, never a fit on what could be read of it.

    Predictions whose gold tags hold no entity at all are refused: unannotated text is tagged O, and a fit on it
    would take every predicted entity for a wrong one and flatten every score towards nothing.
    """
    records = []
    for where, record in iter_jsonl(path):
        check_tag_record(record, where)
        check_entities(record, where)
        records.append(record)
    if not records:
        raise DataError(
            path, "no records (an empty file); expected generate or tag output on labelled dev data", "empty"
        )
    scored = scored_entities(records)
    if not scored.scores:
        raise DataError(path, "no scored entities (predictions from before entity scores?)", "empty")
    if not scored.gold:
        raise DataError(
            path,
            f"no gold entity in the tags of its {len(records)} records; calibrate needs predictions on labelled "
            "dev data (the tags of unannotated text are all O)",
            "no_gold",
        )
    return scored


def calibrate(config: CalibrateConfig) -> dict:
    artifact = Artifact.load(config.adapter)
    scored = read_predictions(config.data)
    fitted = fit_calibration(scored.scores, scored.correct, config.method)
    combined = compose(Calibration.from_dict(artifact.calibration), fitted)
    artifact.calibration = combined.to_dict()
    artifact.save(config.adapter)
    after = [fitted(s) for s in scored.scores]
    return {
        "entities": len(scored.scores),
        "ece_before": expected_calibration_error(scored.scores, scored.correct),
        "ece_after": expected_calibration_error(after, scored.correct),
        "calibration": combined.to_dict(),
    }


def main(argv: list[str] | None = None) -> int:
    config = parse_config(CalibrateConfig, argv, prog="instruct-ner calibrate", description=__doc__)
    result = calibrate(config)
    print(
        f"calibrated on {result['entities']} entities: ECE {result['ece_before']:.4f} -> {result['ece_after']:.4f} "
        f"(in-sample); saved {result['calibration']} to {config.adapter}"
    )
    return 0
