"""NT-Xent (normalised temperature-scaled cross-entropy), SimCLR's loss (Chen et al. 2020, Alg. 1).

Under data-parallel training every rank's projections are gathered (with their gradients), so each view
is contrasted with the 2 x global batch - 2 negatives of all ranks, as one process with the whole batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from projects.core import distributed


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """Mean over this rank's 2N views of -log softmax similarity of each view to its partner.

    ``z1[k]`` and ``z2[k]`` are the projections of two views of image k. Each row of the 2N x 2M cosine
    similarity matrix (M: the batch of all ranks) is a (2M-1)-way classification whose target is the
    partner view; the view itself is excluded, exactly as the 1[k != i] in the paper's denominator. The
    mean of the ranks' losses is the loss of one process on the concatenated batch.
    """
    n = z1.shape[0]
    q1 = F.normalize(z1.float(), dim=1)  # fp32: exp(sim / tau) overflows in fp16/bf16
    q2 = F.normalize(z2.float(), dim=1)
    k1, k2 = distributed.all_gather_with_grad(q1), distributed.all_gather_with_grad(q2)
    m, offset = k1.shape[0], distributed.rank() * n
    logits = torch.cat([q1, q2]) @ torch.cat([k1, k2]).T / temperature  # (2N, 2M)
    own = (
        torch.arange(n, device=q1.device) + offset
    )  # row i of z1 is key offset + i, of z2 key m + offset + i
    self_index = torch.cat([own, own + m])
    partner = torch.cat([own + m, own])
    rows = torch.arange(2 * n, device=q1.device)
    logits = logits.index_put(
        (rows, self_index), torch.tensor(float("-inf"), dtype=logits.dtype, device=q1.device)
    )
    return F.cross_entropy(logits, partner)
