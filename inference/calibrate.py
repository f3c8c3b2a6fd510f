"""`instruct-ner calibrate`: fit a calibration of entity scores on dev predictions and save it with the model.

Reads predictions (`generate` / `tag` output with gold `tags`) made by the folder as it is now, each record checked
(a bad one is an error naming its line; a file whose gold tags hold no entity, unannotated text tagged O, is
refused) and fits, on the score's logit, the calibration that minimises the log loss of "this entity is right"
(`inference.confidence.fit_calibration`): `--method platt` a temperature and a shift, `temperature` the temperature
alone, `auto` (the default) whichever of the two, or none, has the lowest expected calibration error on the half of
the records it was not fitted on (`choose_calibration`; none: the scores are left as they are and nothing is
written). A fit is composed with the folder's current calibration (the scores in the file were made with it) and
written into the folder's `instruct_ner.json`; every later prediction applies it.
Prints the expected calibration error before and after (in-sample), and with `auto` the cross-fitted ones it chose by.

Example (runs/dev.jsonl: that adapter's `generate` output on dev data):
    instruct-ner calibrate --adapter runs/smollm2-conll2003 --data runs/dev.jsonl
"""

from __future__ import annotations

from dataclasses import dataclass, field

from instruct_ner.config import Config, ConfigError, parse_config
from instruct_ner.examples import DataError
from instruct_ner.inference.confidence import (
    CALIBRATION_CHOICES,
    DEFAULT_CALIBRATION,
    Calibration,
    check_entities,
    choose_calibration,
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
        default=DEFAULT_CALIBRATION,
        metadata={
            "help": "auto (whichever of the others calibrates held-out halves best), none, platt (a temperature and a "
            "shift) or temperature (alone)"
        },
    )

    def __post_init__(self) -> None:
        if not self.adapter or not self.data:
            raise ConfigError("calibrate needs --adapter DIR and --data PREDICTIONS.jsonl")
        if self.method not in CALIBRATION_CHOICES:
            raise ConfigError(f"method must be one of {CALIBRATION_CHOICES}, not {self.method!r}")


def compose(first: Calibration | None, then: Calibration) -> Calibration:
    """`then` applied after `first`, as one calibration. Example: compose(Calibration("temperature", 2.0),
    Calibration("temperature", 0.5)).a -> 1.0"""
    if first is None:
        return then
    method = "platt" if "platt" in (first.method, then.method) else "temperature"
    return Calibration(method, then.a * first.a, then.a * first.b + then.b)


def read_predictions(path: str) -> list[dict]:
    """Predictions on labelled data with scored entities, each record checked first (`tags`, `pred_tags`,
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
    return records


def calibrate(config: CalibrateConfig) -> dict:
    artifact = Artifact.load(config.adapter)
    records = read_predictions(config.data)
    scored = scored_entities(records)
    method, cross_fitted = config.method, None
    if method == "auto":
        method, cross_fitted = choose_calibration(records, config.data)
    result = {
        "entities": len(scored.scores),
        "method": method,
        "cross_fitted": cross_fitted,
        "ece_before": expected_calibration_error(scored.scores, scored.correct),
        "calibration": artifact.calibration,  # the folder's, unchanged with none
    }
    if method == "none":
        return {**result, "ece_after": result["ece_before"]}
    fitted = fit_calibration(scored.scores, scored.correct, method)
    artifact.calibration = compose(Calibration.from_dict(artifact.calibration), fitted).to_dict()
    artifact.save(config.adapter)
    after = expected_calibration_error([fitted(s) for s in scored.scores], scored.correct)
    return {**result, "ece_after": after, "calibration": artifact.calibration}


def main(argv: list[str] | None = None) -> int:
    config = parse_config(CalibrateConfig, argv, prog="instruct-ner calibrate", description=__doc__)
    result = calibrate(config)
    if result["cross_fitted"]:
        table = ", ".join(f"{method} {ece:.4f}" for method, ece in result["cross_fitted"].items())
        print(f"auto: ECE on held-out halves {table} -> {result['method']}")
    if result["method"] == "none":
        print(f"scores left as they are ({result['entities']} entities, ECE {result['ece_before']:.4f}); "
              f"{config.adapter} unchanged")  # fmt: skip
        return 0
    print(
        f"calibrated on {result['entities']} entities: ECE {result['ece_before']:.4f} -> {result['ece_after']:.4f} "
        f"(in-sample); saved {result['calibration']} to {config.adapter}"
    )
    return 0
