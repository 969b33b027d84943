"""MoCo v3's contrastive loss (Chen, Xie, He 2021, Algorithm 1): InfoNCE of queries against the momentum
encoder's keys of the same batch, the positive on the diagonal, scaled by 2 tau as in the paper's code.
Under data-parallel training the keys of all ranks are the negatives (the paper's ``concat_all_gather``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from projects.core import distributed


def mocov3_loss(query: torch.Tensor, key: torch.Tensor, temperature: float) -> torch.Tensor:
    """ctr(q, k): cross-entropy of q_i against all k_j (target j = i) at temperature tau, times 2 tau.

    The 2 tau factor makes the gradient's scale independent of tau (the official implementation's
    choice); keys carry no gradient (they come from the momentum encoder).
    """
    q = F.normalize(query.float(), dim=1)  # fp32: exp(sim / tau) overflows in fp16/bf16
    k = distributed.all_gather_with_grad(F.normalize(key.detach().float(), dim=1))
    logits = q @ k.T / temperature
    labels = torch.arange(len(q), device=q.device) + distributed.rank() * len(q)
    return F.cross_entropy(logits, labels) * (2 * temperature)
