import math

import torch

from projects.ssl.losses.ntxent import nt_xent


def naive_nt_xent(z1: torch.Tensor, z2: torch.Tensor, tau: float) -> float:
    """Algorithm 1 of SimCLR, literally: views 2k-1, 2k are the pair; l(i,j) averaged over both orders."""
    views = []
    for a, b in zip(z1, z2, strict=True):
        views += [a, b]

    def sim(u, v):
        return float(u @ v / (u.norm() * v.norm()))

    def loss(i, j):
        denominator = sum(math.exp(sim(views[i], views[k]) / tau) for k in range(len(views)) if k != i)
        return -math.log(math.exp(sim(views[i], views[j]) / tau) / denominator)

    n = len(z1)
    return sum(loss(2 * k, 2 * k + 1) + loss(2 * k + 1, 2 * k) for k in range(n)) / (2 * n)


def test_matches_the_papers_double_loop():
    torch.manual_seed(0)
    for n, dim, tau in [(2, 3, 0.5), (5, 8, 0.1), (8, 16, 1.0)]:
        z1, z2 = torch.randn(n, dim, dtype=torch.float64), torch.randn(n, dim, dtype=torch.float64)
        assert math.isclose(float(nt_xent(z1, z2, tau)), naive_nt_xent(z1, z2, tau), rel_tol=1e-5)


def test_aligned_views_give_lower_loss_and_gradients_flow():
    torch.manual_seed(0)
    z = torch.randn(16, 32, requires_grad=True)
    aligned = nt_xent(z, z + 0.01 * torch.randn(16, 32), 0.5)
    shuffled = nt_xent(z, torch.randn(16, 32), 0.5)
    assert aligned < shuffled
    aligned.backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()
