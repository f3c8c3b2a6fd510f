"""A compact linear-chain CRF with IOB2-constrained Viterbi decoding.

`log_likelihood` is the exact log p(tags | emissions) by the forward algorithm; `decode` is Viterbi
restricted to valid IOB2 transitions (I-X only after B-X or I-X), so every decoded sequence is valid
IOB2. `span_marginals` is the confidence of decoded entities: the probability, summed over every tag path
(forward-backward), that the words [s, e) are exactly one entity of label X (B-X, then I-X up to e - 1, and
no I-X at e), not the Viterbi path's score. A head without a CRF is scored the same way with its
log-softmax as emissions and only the IOB2 constraints as transitions (`constrained_marginals`), the model
`constrained_decode` decodes. The tests check all three against brute-force enumeration on small cases.
We keep our own rather than depend on `pytorch-crf` because the constraint mask has to enter decoding.

Shapes: emissions (batch, length, tags), tags (batch, length), mask (batch, length) with each row's valid
positions first (right padding).
"""

from __future__ import annotations

import torch
from torch import nn

NEG_INF = -1e4  # large enough to forbid a transition, small enough to stay finite in fp32 sums


def iob2_allowed(labels: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(allowed transitions [from, to], allowed starts) for IOB2 tag names.

    Example: iob2_allowed(["O", "B-PER", "I-PER"])[0][0, 2] -> False (O cannot be followed by I-PER)
    """
    size = len(labels)
    allowed = torch.ones(size, size, dtype=torch.bool)
    start = torch.ones(size, dtype=torch.bool)
    for j, tag in enumerate(labels):
        if tag.startswith("I-"):
            start[j] = False
            for i, previous in enumerate(labels):
                allowed[i, j] = previous in (f"B-{tag[2:]}", f"I-{tag[2:]}")
    return allowed, start


class CRF(nn.Module):
    def __init__(self, labels: list[str]):
        super().__init__()
        size = len(labels)
        self.transitions = nn.Parameter(torch.zeros(size, size))
        self.start = nn.Parameter(torch.zeros(size))
        self.end = nn.Parameter(torch.zeros(size))
        allowed, start_allowed = iob2_allowed(labels)
        self.register_buffer("transition_penalty", (~allowed).float() * NEG_INF, persistent=False)
        self.register_buffer("start_penalty", (~start_allowed).float() * NEG_INF, persistent=False)

    def _scores(self):
        return self.transitions + self.transition_penalty, self.start + self.start_penalty, self.end

    def log_likelihood(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """log p(tags | emissions) per sequence (batch,)."""
        transitions, start, end = self._scores()
        mask = mask.bool()
        batch = torch.arange(emissions.shape[0], device=emissions.device)
        score = start[tags[:, 0]] + emissions[batch, 0, tags[:, 0]]
        for t in range(1, emissions.shape[1]):
            step = transitions[tags[:, t - 1], tags[:, t]] + emissions[batch, t, tags[:, t]]
            score = score + step * mask[:, t]
        lengths = mask.sum(1) - 1
        score = score + end[tags[batch, lengths]]
        return score - self._log_partition(emissions, mask, transitions, start, end)

    @staticmethod
    def _log_partition(emissions, mask, transitions, start, end) -> torch.Tensor:
        alpha = start + emissions[:, 0]
        for t in range(1, emissions.shape[1]):
            candidate = torch.logsumexp(alpha.unsqueeze(2) + transitions + emissions[:, t].unsqueeze(1), dim=1)
            alpha = torch.where(mask[:, t].unsqueeze(1), candidate, alpha)
        return torch.logsumexp(alpha + end, dim=1)

    def decode(self, emissions: torch.Tensor, mask: torch.Tensor) -> list[list[int]]:
        transitions, start, end = self._scores()
        return viterbi(emissions, mask, transitions, start, end)

    def span_marginals(
        self, emissions: torch.Tensor, mask: torch.Tensor, spans: list[list[tuple[int, int, int, int]]]
    ) -> list[list[float]]:
        """The marginal probability of each span (B tag, I tag, start, end-exclusive) of each row."""
        transitions, start, end = self._scores()
        return span_marginals(emissions, mask, transitions, start, end, spans)


def viterbi(emissions, mask, transitions, start, end) -> list[list[int]]:
    """Best tag sequence per row (only its valid positions)."""
    mask = mask.bool()
    score = start + emissions[:, 0]
    history = []
    for t in range(1, emissions.shape[1]):
        candidate = score.unsqueeze(2) + transitions
        best, index = candidate.max(dim=1)
        history.append(index)
        score = torch.where(mask[:, t].unsqueeze(1), best + emissions[:, t], score)
    score = score + end
    paths = []
    for row in range(emissions.shape[0]):
        length = int(mask[row].sum())
        tag = int(score[row].argmax())
        path = [tag]
        for t in range(length - 1, 0, -1):
            tag = int(history[t - 1][row, tag])
            path.append(tag)
        paths.append(path[::-1])
    return paths


def span_marginals(
    emissions, mask, transitions, start, end, spans: list[list[tuple[int, int, int, int]]]
) -> list[list[float]]:
    """For each row, the probability of each of its spans (b, i, s, e): tag b at word s, tag i at words s+1..e-1
    and not tag i at word e, summed over every path (forward-backward, in float64).

    exp(alpha_s(b) + sum_{t=s+1}^{e-1} (transition(prev, i) + emission_t(i)) + beta'_{e-1}(last) - log Z), where
    alpha includes the emission at s and beta' leaves out the paths that continue the span with i at e.
    """
    emissions, transitions = emissions.detach().double(), transitions.detach().double()
    start, end, mask = start.detach().double(), end.detach().double(), mask.bool()
    out = []
    for row in range(emissions.shape[0]):
        length = int(mask[row].sum())
        if not spans[row]:
            out.append([])
            continue
        em = emissions[row, :length]
        alpha = [start + em[0]]
        for t in range(1, length):
            alpha.append(torch.logsumexp(alpha[-1].unsqueeze(1) + transitions, dim=0) + em[t])
        beta = [None] * length
        beta[length - 1] = end
        for t in range(length - 2, -1, -1):
            beta[t] = torch.logsumexp(transitions + (em[t + 1] + beta[t + 1]).unsqueeze(0), dim=1)
        log_z = torch.logsumexp(alpha[-1] + end, dim=0)
        found = []
        for b, i, s, e in spans[row]:
            score, last = alpha[s][b], b
            for t in range(s + 1, e):
                score = score + transitions[last, i] + em[t, i]
                last = i
            if e == length:
                rest = end[last]
            else:
                following = transitions[last] + em[e] + beta[e]
                following[i] = -torch.inf  # an I- of the label at e would make the entity longer
                rest = torch.logsumexp(following, dim=0)
            found.append(float(torch.exp(score + rest - log_z).clamp(0.0, 1.0)))
        out.append(found)
    return out


def constrained_marginals(
    log_probs: torch.Tensor, mask: torch.Tensor, labels: list[str], spans: list[list[tuple[int, int, int, int]]]
) -> list[list[float]]:
    """`span_marginals` for a head without a CRF: per-word log-probabilities under only the IOB2 constraints."""
    allowed, start_allowed = iob2_allowed(labels)
    transitions = (~allowed).float().to(log_probs.device) * NEG_INF
    start = (~start_allowed).float().to(log_probs.device) * NEG_INF
    return span_marginals(log_probs, mask, transitions, start, torch.zeros_like(start), spans)


def constrained_decode(log_probs: torch.Tensor, mask: torch.Tensor, labels: list[str]) -> list[list[int]]:
    """Viterbi over per-token log-probabilities with only the IOB2 constraints (for heads without a CRF)."""
    allowed, start_allowed = iob2_allowed(labels)
    transitions = (~allowed).float().to(log_probs.device) * NEG_INF
    start = (~start_allowed).float().to(log_probs.device) * NEG_INF
    return viterbi(log_probs, mask, transitions, start, torch.zeros_like(start))
