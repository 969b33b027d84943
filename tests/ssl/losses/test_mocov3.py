import math

import torch

from projects.ssl.losses.mocov3 import mocov3_loss


def literal_ctr(q: torch.Tensor, k: torch.Tensor, tau: float) -> float:
    """MoCo v3 Algorithm 1, per query: -log exp(q_i.k_i / tau) / sum_j exp(q_i.k_j / tau), normalised
    vectors, mean over queries, times 2 tau."""

    def unit(v):
        norm = math.sqrt(sum(float(x) ** 2 for x in v))
        return [float(x) / norm for x in v]

    qs, ks = [unit(v) for v in q], [unit(v) for v in k]

    def dot(a, b):
        return sum(x * y for x, y in zip(a, b, strict=True))

    total = 0.0
    for i, qi in enumerate(qs):
        denominator = sum(math.exp(dot(qi, kj) / tau) for kj in ks)
        total += -math.log(math.exp(dot(qi, ks[i]) / tau) / denominator)
    return total / len(qs) * 2 * tau


def test_matches_the_papers_formula():
    torch.manual_seed(0)
    for n, dim, tau in [(2, 3, 0.2), (5, 8, 0.1), (8, 16, 1.0)]:
        q, k = torch.randn(n, dim, dtype=torch.float64), torch.randn(n, dim, dtype=torch.float64)
        assert math.isclose(float(mocov3_loss(q, k, tau)), literal_ctr(q, k, tau), rel_tol=1e-5)


def test_matching_keys_give_lower_loss_and_keys_get_no_gradient():
    torch.manual_seed(0)
    q = torch.randn(16, 32, requires_grad=True)
    k = torch.randn(16, 32, requires_grad=True)
    aligned = mocov3_loss(q, q.detach() + 0.01 * torch.randn(16, 32), 0.2)
    assert aligned < mocov3_loss(q, k, 0.2)
    mocov3_loss(q, k, 0.2).backward()
    assert q.grad is not None and torch.isfinite(q.grad).all() and k.grad is None
