"""NT-Xent (normalised temperature-scaled cross-entropy), SimCLR's loss (Chen et al. 2020, Alg. 1)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """Mean over all 2N views of -log softmax similarity of each view to its partner.

    ``z1[k]`` and ``z2[k]`` are the projections of two views of image k. Each row of the 2N x 2N cosine
    similarity matrix is a (2N-1)-way classification whose target is the partner view; the diagonal
    (a view with itself) is excluded, exactly as the 1[k != i] in the paper's denominator.
    """
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)  # fp32: exp(sim / tau) overflows in fp16/bf16
    logits = z @ z.T / temperature
    self_mask = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(logits, partner)
