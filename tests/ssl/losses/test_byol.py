import math

import torch

from projects.ssl.losses.byol import byol_loss


def literal_byol(p: torch.Tensor, z: torch.Tensor) -> float:
    """BYOL eq. 2, per sample: || p/||p|| - z/||z|| ||^2, averaged over the batch."""
    total = 0.0
    for a, b in zip(p, z, strict=True):
        diff = [float(x) / float(a.norm()) - float(y) / float(b.norm()) for x, y in zip(a, b, strict=True)]
        total += sum(d * d for d in diff)
    return total / len(p)


def test_matches_the_papers_formula():
    torch.manual_seed(0)
    for n, dim in [(1, 3), (4, 8), (9, 16)]:
        p, z = torch.randn(n, dim, dtype=torch.float64), torch.randn(n, dim, dtype=torch.float64)
        assert math.isclose(float(byol_loss(p, z)), literal_byol(p, z), rel_tol=1e-6)


def test_bounds_and_no_gradient_into_the_target():
    torch.manual_seed(0)
    p = torch.randn(8, 16, requires_grad=True)
    z = torch.randn(8, 16, requires_grad=True)
    assert float(byol_loss(p, 3 * p.detach())) < 1e-6  # scale-invariant: same direction -> 0
    assert math.isclose(float(byol_loss(p, -p.detach())), 4.0, rel_tol=1e-6)  # opposite -> 4
    byol_loss(p, z).backward()
    assert p.grad is not None and torch.isfinite(p.grad).all() and z.grad is None
