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
    from instruct_ner.inference.tagging import predict, predict_windows
    from instruct_ner.sft.models import load_tokenizer
    from instruct_ner.sft.tagger import TokenTagger, load_backbone

    from instruct_ner.examples import Example, tags_to_spans

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
