"""Confidence: what an entity's score is, how a threshold drops entities, and how well scores are calibrated.

What is measured, and why:

- Generative (`mention_score`): the decoder records, for every token it writes, its log-probability under the
  model's next-token distribution renormalised over the tokens the row's constraint allowed at that step (the
  whole vocabulary when unconstrained; `inference.decoding`). The format says which response characters state a
  mention (`Mention.at`: an entity-list line with the newline or end token that closes it; an inline bracket)
  and which are its label (`Mention.label_at`). Two definitions are computed from the same numbers:
  `sequence` (the default), the probability of the whole line or bracket, the product over the tokens that write
  any of its characters: the span, the label and, since the alternatives at each step include ending the
  response or (inline) copying the word on unbracketed, the choice of writing this entity rather than its
  absence; `label`, the probability of the label's tokens given the span already written, which says whether
  the type is right but not whether there is an entity at all. Renormalising over the allowed set is what the
  greedy choice sees: mass the model puts on tokens the constraint forbids (a hallucinated span, an unknown
  label) is not evidence against the allowed choice. Which definition is better calibrated is measured by
  `benchmarks/confidence.py` (expected calibration error of each on CoNLL-2003 test).
- Tagger: the marginal probability of the span with its label over every tag path (`sft.crf.span_marginals`).

A threshold (`apply_threshold`) drops the entities scored below it and turns their tags to O; an entity with no
score is kept; threshold 0 changes nothing. A `Calibration` (temperature or Platt scaling on the score's logit,
fitted on dev predictions with gold tags by `fit_calibration`; `choose_calibration` says which, or none, calibrates
held-out records best) is saved in a folder's description and applied to every score at prediction, before the
threshold. `expected_calibration_error`, `reliability` and `pr_curve`
measure scored predictions against gold tags: a predicted entity is correct when its label and token span equal a
gold entity's (seqeval's exact match). This module does not plot (see `inference.compare`) or predict.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from instruct_ner.examples import DataError, Entity, spans_to_tags, tags_to_spans

SCORE_METHODS = ("sequence", "label")
CALIBRATION_METHODS = ("temperature", "platt")  # what a saved `Calibration` is
# what `calibrate --method` takes: `auto` chooses among the others by their cross-fitted ECE (`choose_calibration`)
CALIBRATION_CHOICES = ("auto", "none", *CALIBRATION_METHODS)
# auto by default: no one method was best for every system on CoNLL-2003 test (benchmarks/confidence.py,
# BENCHMARKS.md): Platt took the tagger from ECE 0.100 to 0.046 (a temperature: 0.071), but moved the inline
# format's near-calibrated 0.045 to 0.050 and the entity list's 0.027 to 0.041.
DEFAULT_CALIBRATION = "auto"


# --- the generative score -------------------------------------------------------------------------------------


def token_intervals(ends: Sequence[int]) -> list[tuple[int, int]]:
    """Each token's characters [start, end) from where each ends. Example: token_intervals([2, 5, 6]) ->
    [(0, 2), (2, 5), (5, 6)]"""
    return [(ends[k - 1] if k else 0, end) for k, end in enumerate(ends)]


def chars_probability(where: tuple[int, int] | None, logprobs: Sequence[float], ends: Sequence[int]) -> float | None:
    """The probability of the tokens that write any character of [start, end) (a token that writes no character
    of its own, part of a split character, counts where it stands); None without `where` or such tokens.

    Example: chars_probability((2, 5), [math.log(0.5), math.log(0.8), 0.0], [2, 5, 6]) -> 0.8
    """
    if where is None:
        return None
    start, end = where
    total, found = 0.0, False
    for (a, b), logprob in zip(token_intervals(ends), logprobs):
        if (b > start and a < end) or (a == b and start <= a < end):
            total, found = total + logprob, True
    return min(1.0, math.exp(total)) if found else None


def mention_score(mention, logprobs: Sequence[float], ends: Sequence[int], method: str = "sequence") -> float | None:
    """A mention's confidence by `method` (`sequence`: its line or bracket; `label`: its label's tokens)."""
    if method not in SCORE_METHODS:
        raise DataError("score_method", f"unknown score method {method!r}; expected one of {SCORE_METHODS}")
    return chars_probability(mention.at if method == "sequence" else mention.label_at, logprobs, ends)


# --- calibration and threshold ---------------------------------------------------------------------------------


def logit(p: float, eps: float = 1e-6) -> float:
    """Example: logit(0.5) -> 0.0"""
    p = min(max(p, eps), 1 - eps)
    return math.log(p / (1 - p))


def sigmoid(x: float) -> float:
    """Example: sigmoid(0.0) -> 0.5"""
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


@dataclass(frozen=True)
class Calibration:
    """score -> sigmoid(a * logit(score) + b); temperature scaling is a = 1 / T, b = 0."""

    method: str = "temperature"
    a: float = 1.0
    b: float = 0.0

    def __call__(self, score: float) -> float:
        """Example: Calibration("temperature", 0.5)(0.9) -> 0.75"""
        return sigmoid(self.a * logit(score) + self.b)

    def to_dict(self) -> dict:
        return {"method": self.method, "a": self.a, "b": self.b}

    @classmethod
    def from_dict(cls, saved: dict | None) -> Calibration | None:
        """The calibration a folder's description saved (None for none); bad values are a DataError."""
        if not saved:
            return None
        method, a, b = saved.get("method"), saved.get("a"), saved.get("b", 0.0)
        numbers = all(type(x) in (int, float) and math.isfinite(x) for x in (a, b))
        if method not in CALIBRATION_METHODS or not numbers or a <= 0:
            raise DataError("calibration", f"expected a method in {CALIBRATION_METHODS} and a > 0, b numbers: {saved}")
        return cls(method, float(a), float(b))


def fit_calibration(
    scores: Sequence[float], correct: Sequence[bool], method: str = DEFAULT_CALIBRATION
) -> Calibration:
    """The calibration minimising the log loss of `correct` given the scores (Newton's method on the logistic
    regression of correct on logit(score): a alone for `temperature`, a and b for `platt`).

    Example: fit_calibration([0.9] * 4, [True, True, True, False], "temperature").a -> about 0.5 (0.9 -> 0.75)
    """
    if method not in CALIBRATION_METHODS:
        raise DataError("method", f"unknown calibration {method!r}; expected one of {CALIBRATION_METHODS}")
    if not scores:
        raise DataError("calibration", "no scored entities to fit a calibration on", "empty")
    xs, ys = [logit(s) for s in scores], [1.0 if c else 0.0 for c in correct]
    a, b, platt = 1.0, 0.0, method == "platt"
    for _ in range(100):
        ga = gb = haa = hab = hbb = 0.0
        for x, y in zip(xs, ys):
            p = sigmoid(a * x + b)
            w = p * (1 - p) + 1e-9
            ga, gb = ga + (p - y) * x, gb + (p - y)
            haa, hab, hbb = haa + w * x * x, hab + w * x, hbb + w
        haa, hbb = haa + 1e-6, hbb + 1e-6  # a little ridge: all-correct data has no finite optimum
        if platt:
            det = haa * hbb - hab * hab
            da, db = (hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det
        else:
            da, db = ga / haa, 0.0
        da, db = max(-5.0, min(5.0, da)), max(-5.0, min(5.0, db))  # damped: separable data has no finite optimum
        a, b = min(max(a - da, 1e-3), 1e3), b - db
        if abs(da) < 1e-9 and abs(db) < 1e-9:
            break
    return Calibration(method, a, b)


def check_threshold(threshold: float) -> None:
    """A threshold is a probability. Example: check_threshold(1.5) raises ConfigError"""
    from instruct_ner.config import ConfigError

    if not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"threshold must be between 0 and 1, got {threshold}")


def rescore(entities: Iterable[Entity], calibration: Calibration | None) -> list[Entity]:
    """The entities with calibrated scores (unchanged without a calibration or a score)."""
    if calibration is None:
        return list(entities)
    return [e if e.score is None else replace(e, score=calibration(e.score)) for e in entities]


def apply_threshold(output: dict, threshold: float = 0.0, calibration: Calibration | None = None) -> dict:
    """An output record with calibrated scores and without the entities scored below `threshold` (their tags O).

    Entities with no score are kept; at threshold 0 nothing is dropped and `pred_tags` are untouched.
    """
    entities = rescore(output.get("entities", []), calibration)
    kept = [e for e in entities if e.score is None or e.score >= threshold]
    output = {**output, "entities": kept}
    if len(kept) < len(entities):
        dropped = {(e.label, e.token_start, e.token_end) for e in entities} - {
            (e.label, e.token_start, e.token_end) for e in kept
        }
        spans = [span for span in tags_to_spans(output["pred_tags"]) if span not in dropped]
        output["pred_tags"] = spans_to_tags(spans, len(output["pred_tags"]))
        output["below_threshold"] = len(entities) - len(kept)
    return output


# --- measuring scores against gold tags ------------------------------------------------------------------------


@dataclass
class Scored:
    """Every scored predicted entity of some records as (score, correct), and how many gold entities there are."""

    scores: list[float]
    correct: list[bool]
    gold: int
    unscored: int = 0


def check_entities(record: dict, where: str) -> None:
    """Raise DataError (naming `where`) unless the record's `entities` are entity dicts (`Entity.to_dict`'s keys), each
    with a label, whole-number token bounds and a score that is none or a number in [0, 1].

    Example: check_entities({"entities": [{..., "score": 1.5}]}, "p.jsonl:3") raises
        DataError("p.jsonl:3: entities[0] has score 1.5; expected a number between 0 and 1, or none")
    """
    entities = record.get("entities", [])
    if not isinstance(entities, list):
        raise DataError(where, f"'entities' must be a list, not {type(entities).__name__}", "bad_type")
    for i, saved in enumerate(entities):
        try:
            entity = Entity.from_dict(saved)
        except TypeError:
            keys = sorted(saved) if isinstance(saved, dict) else type(saved).__name__
            raise DataError(
                where,
                f"entities[{i}] is not an entity ({keys}); expected the keys of generate or tag output",
                "bad_type",
            ) from None
        bounds = (entity.token_start, entity.token_end)
        if not isinstance(entity.label, str) or not all(type(x) is int for x in bounds):
            raise DataError(where, f"entities[{i}]: expected a string label and whole-number token bounds", "bad_type")
        score = entity.score
        if score is not None and (type(score) not in (int, float) or not 0.0 <= score <= 1.0):
            raise DataError(
                where, f"entities[{i}] has score {score!r}; expected a number between 0 and 1, or none", "bad_score"
            )


def scored_entities(records: Iterable[dict]) -> Scored:
    """(score, correct) for every predicted entity of records holding `tags`, `pred_tags` and scored `entities`."""
    scores, correct, gold, unscored = [], [], 0, 0
    for record in records:
        truth = set(tags_to_spans(record["tags"]))
        gold += len(truth)
        for entity in record.get("entities", []):
            entity = entity if isinstance(entity, Entity) else Entity.from_dict(entity)
            if entity.score is None:
                unscored += 1
                continue
            scores.append(entity.score)
            correct.append((entity.label, entity.token_start, entity.token_end) in truth)
    return Scored(scores, correct, gold, unscored)


def reliability(scores: Sequence[float], correct: Sequence[bool], bins: int = 10) -> list[dict]:
    """Equal-width bins of [0, 1] (a score of 1 in the last): count, mean score and accuracy of each non-empty bin.

    Example: reliability([0.05, 0.95], [False, True], 2) -> [{"low": 0.0, "high": 0.5, "count": 1,
        "confidence": 0.05, "accuracy": 0.0}, {"low": 0.5, "high": 1.0, "count": 1, ...}]
    """
    table = []
    for k in range(bins):
        inside = [i for i, s in enumerate(scores) if min(int(s * bins), bins - 1) == k]
        if inside:
            table.append(
                {
                    "low": k / bins,
                    "high": (k + 1) / bins,
                    "count": len(inside),
                    "confidence": sum(scores[i] for i in inside) / len(inside),
                    "accuracy": sum(bool(correct[i]) for i in inside) / len(inside),
                }
            )
    return table


def expected_calibration_error(scores: Sequence[float], correct: Sequence[bool], bins: int = 10) -> float:
    """Sum over equal-width bins of (share of entities in the bin) * |accuracy - mean score| (0 when perfect).

    Example: expected_calibration_error([0.9, 0.9, 0.2], [True, False, False], 10) -> (2 * 0.4 + 1 * 0.2) / 3
    """
    if not scores:
        return 0.0
    return sum(
        row["count"] * abs(row["accuracy"] - row["confidence"]) for row in reliability(scores, correct, bins)
    ) / len(scores)


def pr_curve(scores: Sequence[float], correct: Sequence[bool], gold: int) -> list[dict]:
    """Precision, recall and F1 when only entities scored at least t are kept, for every distinct score t (and 0),
    lowest threshold first. Entities with no score are not in `scores` (a threshold keeps them).

    Example: pr_curve([0.9, 0.4], [True, False], 2) -> [{"threshold": 0.0, "precision": 0.5, "recall": 0.5, ...},
        {"threshold": 0.4, ...}, {"threshold": 0.9, "precision": 1.0, "recall": 0.5, "f1": 0.667, "kept": 1}]
    """
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    sorted_scores = [scores[i] for i in order]
    suffix_correct = [0] * (len(order) + 1)
    for position in range(len(order) - 1, -1, -1):
        suffix_correct[position] = suffix_correct[position + 1] + bool(correct[order[position]])
    points = []
    for threshold in [0.0] + sorted(set(scores)):
        first = bisect.bisect_left(sorted_scores, threshold)
        kept, right = len(order) - first, suffix_correct[first]
        precision = right / kept if kept else 1.0
        recall = right / gold if gold else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        points.append({"threshold": threshold, "precision": precision, "recall": recall, "f1": f1, "kept": kept})
    return points


def best_threshold(points: Sequence[dict]) -> dict:
    """The point of a PR curve with the highest F1 (the lowest such threshold on ties)."""
    return max(points, key=lambda point: (point["f1"], -point["threshold"]))


def confidence_report(records: Sequence[dict], calibration: Calibration | None = None) -> dict | None:
    """ECE, the reliability table, the PR curve and the best threshold of scored records (None when no entity is
    scored); with a calibration, the ECE and table after it too."""
    scored = scored_entities(records)
    if not scored.scores:
        return None
    points = pr_curve(scored.scores, scored.correct, scored.gold)
    report = {
        "entities": len(scored.scores),
        "unscored": scored.unscored,
        "ece": expected_calibration_error(scored.scores, scored.correct),
        "reliability": reliability(scored.scores, scored.correct),
        "pr_curve": points,
        "best_threshold": best_threshold(points),
    }
    if calibration is not None:
        calibrated = [calibration(s) for s in scored.scores]
        report["calibration"] = calibration.to_dict()
        report["ece_calibrated"] = expected_calibration_error(calibrated, scored.correct)
        report["reliability_calibrated"] = reliability(calibrated, scored.correct)
    return report


def cross_fitted_ece(records: Sequence[dict], method: str = "platt") -> float | None:
    """ECE after a calibration fitted on the other half of the records (two folds: even and odd records), so the
    figure is not measured on the data the calibration was fitted on; None without scored entities in both."""
    folds = [records[0::2], records[1::2]]
    scored = [scored_entities(fold) for fold in folds]
    if not all(s.scores for s in scored):
        return None
    scores, correct = [], []
    for k in (0, 1):
        fitted = fit_calibration(scored[1 - k].scores, scored[1 - k].correct, method)
        scores += [fitted(s) for s in scored[k].scores]
        correct += scored[k].correct
    return expected_calibration_error(scores, correct)


def choose_calibration(records: Sequence[dict], where: str = "calibration") -> tuple[str, dict[str, float]]:
    """What `auto` calibration picks for labelled predictions: of leaving the scores as they are (`none`, their ECE),
    a temperature and Platt scaling (each its `cross_fitted_ece`: measured on records it was not fitted on), the
    one with the lowest ECE; a tie goes to fewer parameters. A calibration is only worth its parameters where it
    calibrates records it has not seen better than the scores already are. Returns (choice, {method: ECE}); a
    DataError without scored entities in both halves of the records.

    Example: choose_calibration(scores already calibrated) -> ("none", {"none": 0.02, "temperature": 0.03, ...})
    """
    scored = scored_entities(records)
    table = {"none": expected_calibration_error(scored.scores, scored.correct)} if scored.scores else {}
    for method in CALIBRATION_METHODS:
        ece = cross_fitted_ece(records, method)
        if ece is None:
            raise DataError(
                where,
                "too few scored entities to choose a calibration on held-out halves (none in one half); "
                "name one: --method platt or temperature",
                "too_few",
            )
        table[method] = ece
    return min(table, key=lambda method: (table[method], list(table).index(method))), table


def plot_pr_curves(curves: dict[str, list[dict]], path) -> None:
    """Precision against recall over thresholds, one line per system, each best-F1 point marked (a PNG)."""
    from matplotlib.figure import Figure  # the object API: no pyplot, the global backend is left alone

    fig = Figure(figsize=(5, 4))
    ax = fig.subplots()
    for name, points in curves.items():
        ax.plot([p["recall"] for p in points], [p["precision"] for p in points], marker=".", label=name)
        best = best_threshold(points)
        ax.annotate(f"t={best['threshold']:.2f}", (best["recall"], best["precision"]), fontsize=7)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title("precision-recall over score thresholds")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_reliability(name: str, table: list[dict], path) -> None:
    """Accuracy against mean score per bin, with the diagonal of perfect calibration (a PNG)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4, 4))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
    ax.bar([(r["low"] + r["high"]) / 2 for r in table], [r["accuracy"] for r in table], width=0.09, alpha=0.6)
    ax.plot([r["confidence"] for r in table], [r["accuracy"] for r in table], marker="o")
    ax.set_xlabel("score")
    ax.set_ylabel("share of entities correct")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(f"{name}: reliability")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
