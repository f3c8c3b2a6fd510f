"""Confidence: span marginals against brute-force enumeration of tag paths, and the scores' plumbing."""

import itertools
import math

import pytest
import torch

from instruct_ner.sft.crf import CRF, constrained_marginals

TEXTS = ["EU rejects German call to boycott British lamb .", "Peter Blair visits Rome , then Paris ."] * 2
TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def path_scores(transitions, start, end, emissions, length):
    scores = {}
    for path in itertools.product(range(len(TAGS)), repeat=length):
        score = start[path[0]] + emissions[0, path[0]] + end[path[-1]]
        for t in range(1, length):
            score = score + transitions[path[t - 1], path[t]] + emissions[t, path[t]]
        scores[path] = score.double()
    return scores


def brute_marginal(scores, b, i, s, e, length):
    """Summed probability of the paths with tag b at s, i at s+1..e-1 and not i at e."""
    log_z = torch.logsumexp(torch.stack(list(scores.values())), 0)
    total = 0.0
    for path, score in scores.items():
        if path[s] == b and all(path[t] == i for t in range(s + 1, e)) and (e == length or path[e] != i):
            total += math.exp(float(score - log_z))
    return total


def all_spans(length):
    return [(b, b + 1, s, e) for b in (1, 3) for s in range(length) for e in range(s + 1, length + 1)]


def test_crf_span_marginals_equal_brute_force():
    torch.manual_seed(1)
    crf = CRF(TAGS)
    with torch.no_grad():
        crf.transitions.normal_()
        crf.start.normal_()
        crf.end.normal_()
    emissions = torch.randn(2, 4, len(TAGS)) * 2
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]], dtype=torch.bool)
    lengths = [4, 3]
    spans = [all_spans(n) for n in lengths]
    marginals = crf.span_marginals(emissions, mask, spans)
    transitions, start, end = crf._scores()
    for row, length in enumerate(lengths):
        scores = path_scores(transitions.detach(), start.detach(), end.detach(), emissions[row], length)
        for (b, i, s, e), found in zip(spans[row], marginals[row]):
            assert found == pytest.approx(brute_marginal(scores, b, i, s, e, length), abs=1e-6)
            assert 0.0 <= found <= 1.0


def test_softmax_head_marginals_equal_brute_force_under_iob2_constraints():
    torch.manual_seed(2)
    log_probs = torch.randn(1, 3, len(TAGS)).log_softmax(-1)
    mask = torch.ones(1, 3, dtype=torch.bool)
    spans = [all_spans(3)]
    marginals = constrained_marginals(log_probs, mask, TAGS, spans)
    from instruct_ner.sft.crf import NEG_INF, iob2_allowed

    allowed, start_allowed = iob2_allowed(TAGS)
    transitions, start = (~allowed).float() * NEG_INF, (~start_allowed).float() * NEG_INF
    scores = path_scores(transitions, start, torch.zeros(len(TAGS)), log_probs[0], 3)
    for (b, i, s, e), found in zip(spans[0], marginals[0]):
        assert found == pytest.approx(brute_marginal(scores, b, i, s, e, 3), abs=1e-6)


def test_tagger_entities_carry_their_marginal_and_tags_are_unchanged(tiny_llama):
    from instruct_ner.examples import Example, tags_to_spans
    from instruct_ner.inference.tagging import predict, predict_windows
    from instruct_ner.sft.models import load_tokenizer
    from instruct_ner.sft.tagger import TokenTagger, load_backbone

    tokenizer = load_tokenizer(str(tiny_llama))
    examples = [Example(str(k), text.split(), ["O"] * len(text.split())) for k, text in enumerate(TEXTS)]
    for head in ("crf", "linear"):
        torch.manual_seed(3)
        model = TokenTagger(load_backbone(str(tiny_llama), "fp32", "bidirectional"), ["PER", "LOC"], head=head)
        with torch.no_grad():
            model.classifier.weight.normal_(0, 0.5)
        tags = predict(model, examples, tokenizer, 64)
        results = predict_windows(model, examples, tokenizer, 64)
        assert [r[0] for r in results] == tags  # scoring changes no prediction
        spans = [span for r in results for span in tags_to_spans(r[0])]
        assert spans, "the random head should predict some entities"
        for r in results:
            for span in tags_to_spans(r[0]):
                assert 0.0 <= r[2].scores[span] <= 1.0


# --- the generative score -------------------------------------------------------------------------------------

LABELS = ["LOC", "MISC", "ORG", "PER"]


@pytest.fixture(scope="module")
def model_and_tokenizer(tiny_llama):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_llama).eval(), AutoTokenizer.from_pretrained(tiny_llama)


def generator_for(model_and_tokenizer, response_format, constrain, scores=True):
    from instruct_ner.inference.decoding import DecodeOptions, HFGenerator

    model, tokenizer = model_and_tokenizer
    options = DecodeOptions(response_format, LABELS, constrain=constrain, scores=scores)
    return HFGenerator(model, tokenizer, "chat", share_prefix=True, options=options)


def predictor_for(model_and_tokenizer, response_format, constrain, scores=True):
    from instruct_ner.inference.predictor import GenerativePredictor
    from instruct_ner.prompts.templates import PromptBuilder, load_template

    name = "ner-list.en" if response_format == "entity_list" else "ner-inline.en"
    builder = PromptBuilder(load_template(name), LABELS, style="chat")
    return GenerativePredictor(builder, generator_for(model_and_tokenizer, response_format, constrain, scores))


def examples_of(texts):
    from instruct_ner.examples import Example

    return [Example(str(k), text.split(), ["O"] * len(text.split())) for k, text in enumerate(texts)]


@pytest.mark.parametrize(
    "response_format, constrain", [("entity_list", True), ("entity_list", False), ("inline", True)]
)
def test_scores_change_no_prediction_and_lie_in_0_1(model_and_tokenizer, response_format, constrain):
    from instruct_ner.inference.predictor import file_record

    examples = examples_of(TEXTS)
    scored = predictor_for(model_and_tokenizer, response_format, constrain).predict(examples, 2)
    plain = predictor_for(model_and_tokenizer, response_format, constrain, scores=False).predict(examples, 2)
    strip = lambda r: {**file_record(r), "timing": None}  # noqa: E731
    unscored = [
        {**strip(r), "entities": [{k: v for k, v in e.items() if k != "score"} for e in strip(r)["entities"]]}
        for r in scored
    ]
    assert unscored == [strip(r) for r in plain]
    entities = [e for r in scored for e in r["entities"]]
    if constrain:
        assert entities and all(e.score is not None and 0.0 <= e.score <= 1.0 for e in entities)
    assert all(e.score is None for r in plain for e in r["entities"])


@pytest.mark.parametrize("constrain", [False, True])
def test_token_logprobs_equal_a_manual_softmax_over_the_allowed_tokens(model_and_tokenizer, constrain):
    """Replayed without a cache: each chosen token's log-probability, renormalised over every token the constraint
    allows there (found by asking it about each token of the vocabulary), and where each token ends."""
    model, tokenizer = model_and_tokenizer
    generator = generator_for(model_and_tokenizer, "entity_list", constrain)
    generator.share_prefix = False
    example = examples_of(TEXTS[:1])[0]
    prompt = predictor_for(model_and_tokenizer, "entity_list", constrain).builder.build(example)["messages"]
    limit = min(10, generator.row_limit(example))
    generated = generator.generate([prompt], [limit], [example])[0]
    ids = tokenizer(generator.prompt_text(prompt), return_tensors="pt")["input_ids"]
    steps = len(generated.token_logprobs)
    assert steps == generated.new_tokens + (not generated.hit_limit)
    constraint = generator.constraint_factory().row(example) if constrain else None
    chosen = []
    for step in range(steps):
        with torch.no_grad():
            logits = model(torch.cat([ids, torch.tensor([chosen], dtype=torch.long)], 1)).logits[0, -1].double()
        if constraint is None:
            allowed = list(range(logits.shape[0]))
        else:
            budget = limit - step - 2
            allowed = [t for t in range(logits.shape[0]) if constraint.allows(t, budget) is not None]
        token = max(allowed, key=lambda t: logits[t].item())
        expected = (logits[token] - logits[allowed].logsumexp(0)).item()
        assert generated.token_logprobs[step] == pytest.approx(expected, abs=1e-4)
        chosen.append(token)
        if constraint is not None and token not in generator.eos_ids:
            constraint.advance(token)
    kept = [t for t in chosen if t not in generator.eos_ids]
    assert tokenizer.decode(kept, skip_special_tokens=True).strip() == generated.text
    ends = [len(tokenizer.decode(kept[: k + 1]).lstrip()) for k in range(len(kept))]
    assert generated.token_ends[: len(kept)] == [min(e, len(generated.text)) for e in ends]


def test_chars_probability_takes_the_tokens_that_write_the_characters():
    from instruct_ner.inference.confidence import chars_probability, mention_score
    from instruct_ner.prompts.formats import get_format

    response = "EU | ORG\nBonn | LOC"
    # tokens: "EU" " |" " ORG" "\n" "Bonn" " |" " LOC" <end>
    ends = [2, 4, 8, 9, 13, 15, 19, 20]
    probabilities = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]
    logprobs = [math.log(p) for p in probabilities]
    first, second = get_format("entity_list").read(response).mentions
    assert mention_score(first, logprobs, ends) == pytest.approx(0.9 * 0.8 * 0.7 * 0.6)
    assert mention_score(second, logprobs, ends) == pytest.approx(0.5 * 0.4 * 0.3 * 0.2)
    assert mention_score(first, logprobs, ends, "label") == pytest.approx(0.7)
    assert chars_probability((1, 2), [math.log(0.5), 0.0, math.log(0.25)], [0, 0, 2]) == pytest.approx(0.25)
    assert chars_probability((0, 2), [math.log(0.5), 0.0, math.log(0.25)], [0, 0, 2]) == pytest.approx(0.125)
    inline = "[EU | ORG] rejects"
    (mention,) = get_format("inline").read(inline, "EU rejects").mentions
    # tokens: "[" "EU" " |" " ORG" "]" " rejects" <end>
    ends = [1, 3, 5, 9, 10, 18, 19]
    assert mention_score(mention, [math.log(0.5)] * 7, ends) == pytest.approx(0.5**5)


# --- threshold, calibration, ECE, PR curve --------------------------------------------------------------------


def scored_record(tags, entities):
    from instruct_ner.examples import Example, spans_to_tags

    example = Example("r", [f"w{k}" for k in range(len(tags))], tags)
    made = [example.entity(label, s, e, score) for label, s, e, score in entities]
    pred = spans_to_tags([(label, s, e) for label, s, e, _ in entities], len(tags))
    return {**example.to_record(), "pred_tags": pred, "entities": made}


RECORDS = [
    scored_record(["B-PER", "O", "B-LOC", "I-LOC"], [("PER", 0, 1, 0.9), ("LOC", 2, 4, 0.6)]),
    scored_record(["B-ORG", "O", "O", "B-PER"], [("ORG", 0, 1, 0.3), ("LOC", 1, 2, 0.8), ("PER", 3, 4, 0.6)]),
    scored_record(["O", "B-MISC", "O"], [("PER", 0, 1, 0.2), ("MISC", 1, 2, 0.95)]),
]


def test_ece_equals_a_hand_computed_case():
    from instruct_ner.inference.confidence import expected_calibration_error, scored_entities

    scored = scored_entities(RECORDS)
    assert scored.scores == [0.9, 0.6, 0.3, 0.8, 0.6, 0.2, 0.95] and scored.gold == 5
    assert scored.correct == [True, True, True, False, True, False, True]
    # bins of width 0.1: [0.2]: 0 right of 1, |0 - 0.2|; [0.3]: |1 - 0.3|; [0.6, 0.6]: |1 - 0.6|; [0.8]: |0 - 0.8|;
    # [0.9, 0.95]: |1 - 0.925|
    by_hand = (1 * 0.2 + 1 * 0.7 + 2 * 0.4 + 1 * 0.8 + 2 * 0.075) / 7
    assert expected_calibration_error(scored.scores, scored.correct) == pytest.approx(by_hand)
    assert expected_calibration_error([1.0, 0.0], [True, False]) == 0.0


def test_pr_curve_equals_brute_force_filtering_and_the_best_threshold_maximises_f1():
    from instruct_ner.inference.confidence import apply_threshold, best_threshold, pr_curve, scored_entities
    from instruct_ner.inference.score import score_tags

    scored = scored_entities(RECORDS)
    points = pr_curve(scored.scores, scored.correct, scored.gold)
    assert [p["threshold"] for p in points] == [0.0, 0.2, 0.3, 0.6, 0.8, 0.9, 0.95]
    for point in points:
        kept = [apply_threshold(r, point["threshold"]) for r in RECORDS]
        micro = score_tags([r["tags"] for r in kept], [r["pred_tags"] for r in kept])["micro"]
        assert point["precision"] == pytest.approx(micro["precision"]) or micro["precision"] == 0.0
        assert point["recall"] == pytest.approx(micro["recall"])
        assert point["f1"] == pytest.approx(micro["f1"])
    assert best_threshold(points)["f1"] == max(p["f1"] for p in points)


def test_threshold_filtering_is_monotone_and_zero_changes_nothing():
    from instruct_ner.inference.confidence import apply_threshold

    for record in RECORDS:
        assert apply_threshold(record, 0.0) == record
        previous = None
        for threshold in (0.0, 0.25, 0.5, 0.7, 0.9, 1.0):
            kept = apply_threshold(record, threshold)
            spans = {(e.label, e.token_start, e.token_end) for e in kept["entities"]}
            assert all(e.score >= threshold for e in kept["entities"])
            if previous is not None:
                assert spans <= previous
            previous = spans
            from instruct_ner.examples import tags_to_spans

            assert set(tags_to_spans(kept["pred_tags"])) == spans


def test_calibration_fits_the_obvious_temperature_and_composes():
    from instruct_ner.inference.calibrate import compose
    from instruct_ner.inference.confidence import Calibration, fit_calibration

    fitted = fit_calibration([0.9] * 4, [True, True, True, False], "temperature")
    assert fitted(0.9) == pytest.approx(0.75, abs=1e-4) and fitted.a == pytest.approx(0.5, abs=1e-3)
    platt = fit_calibration([0.9] * 4 + [0.1] * 4, [True, True, True, False, True, True, False, False], "platt")
    assert platt(0.9) == pytest.approx(0.75, abs=1e-3) and platt(0.1) == pytest.approx(0.5, abs=1e-3)
    first, then = Calibration("platt", 2.0, 0.5), Calibration("temperature", 0.5)
    assert compose(first, then)(0.7) == pytest.approx(then(first(0.7)))
    assert Calibration.from_dict(first.to_dict()) == first


def test_score_and_compare_report_confidence_and_draw_the_figures(tmp_path):
    from instruct_ner.config import make_config
    from instruct_ner.inference.compare import CompareConfig, compare
    from instruct_ner.inference.predictor import file_record
    from instruct_ner.inference.score import main as score_main
    from instruct_ner.jsonl import write_jsonl

    path = tmp_path / "pred.jsonl"
    write_jsonl(path, [file_record(r) for r in RECORDS * 2])
    assert score_main([str(path), "--pr_curve", str(tmp_path / "pr.png")]) == 0
    assert (tmp_path / "pr.png").stat().st_size > 0
    systems = compare(make_config(CompareConfig, {"data": [str(path)], "output_dir": str(tmp_path / "report")}))
    confidence = systems["pred"]["confidence"]
    assert confidence["entities"] == 14 and confidence["best_threshold"]["threshold"] == 0.3
    assert (tmp_path / "report" / "reliability_pred.png").exists() and (tmp_path / "report" / "pr_curve.png").exists()
    assert "## Confidence" in (tmp_path / "report" / "report.md").read_text()
