"""Code that the DDP tests run in ``torch.multiprocessing`` workers (importable by spawned processes)."""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from projects.core.loop import Callback, Trainer
from projects.core.pipeline import DeviceBatches
from projects.ssl.losses.mocov3 import mocov3_loss
from projects.ssl.losses.ntxent import nt_xent
from projects.ssl.methods import simclr
from projects.ssl.pretrain import ssl_step

IMAGES = 24


class TinyEncoder(nn.Module):
    """No BatchNorm: per-rank batch statistics would differ from one process's (SyncBN is CUDA-only)."""

    num_features = 8

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Record(Callback):
    def __init__(self) -> None:
        self.step_losses: list[float] = []
        self.first_grads: dict[str, torch.Tensor] = {}

    def on_optimizer_step(self, trainer: Trainer) -> None:
        if not self.first_grads:
            self.first_grads = {n: p.grad.clone() for n, p in trainer.model.named_parameters()}

    def on_step_end(self, trainer: Trainer, logs: dict[str, float]) -> None:
        self.step_losses.append(logs["train_loss_step"])


def two_views(batch):
    images, labels = batch
    x = images.float() / 255
    return (x, x.flip(3)), labels


def join(rank: int, world: int, port: int) -> None:
    if world > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        dist.init_process_group("gloo", rank=rank, world_size=world)


def simclr_fit(rank: int, world: int, batch_size: int, out: str) -> None:
    """Two epochs of SimCLR (SGD) on 24 fixed images; rank 0 saves losses, first gradients, weights."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    images = torch.randint(0, 256, (IMAGES, 3, 8, 8), generator=torch.Generator().manual_seed(1))
    labels = torch.arange(IMAGES) % 4
    loader = DeviceBatches(
        images, labels, batch_size, shuffle=True, drop_last=True, seed=0, rank=rank, world_size=world
    )
    cfg = simclr.Config(dataset="synthetic", head="mlp", proj_dim=16, temperature=0.5, device="cpu")
    model = simclr.SimCLR(TinyEncoder(), cfg)
    record = Record()
    trainer = Trainer(
        model,
        torch.optim.SGD(model.parameters(), lr=0.5),
        loader,
        ssl_step,
        epochs=2,
        callbacks=[record],
        precision="fp32",
        log_every_n_steps=1,
        progress=False,
        batch_transform=two_views,
    )
    trainer.fit()
    if rank == 0:
        torch.save(
            {
                "step_losses": record.step_losses,
                "first_grads": record.first_grads,
                "weights": model.state_dict(),
                "train_loss": [h["train_loss"] for h in trainer.history],
                "steps": trainer.global_step,
            },
            Path(out) / "fit.pt",
        )


def losses_of_shards(rank: int, world: int, out: str) -> None:
    """NT-Xent and MoCo v3's loss of this rank's shard of fixed projections, and their gradients."""
    z1, z2 = torch.randn(8, 5, generator=torch.Generator().manual_seed(2)).chunk(2)
    k = torch.randn(4, 5, generator=torch.Generator().manual_seed(3))
    n = len(z1) // world
    part = slice(rank * n, (rank + 1) * n)
    a, b = z1[part].clone().requires_grad_(), z2[part].clone().requires_grad_()
    ntxent = nt_xent(a, b, 0.5)
    ntxent.backward()
    q = z1[part].clone().requires_grad_()
    moco = mocov3_loss(q, k[part], 0.2)
    moco.backward()
    result = {
        "ntxent": ntxent.item(),
        "moco": moco.item(),
        "grad_a": a.grad,
        "grad_b": b.grad,
        "grad_q": q.grad,
    }
    torch.save(result, Path(out) / f"losses-rank{rank}.pt")


def one_and_many(rank: int, world: int, batch_size: int, port: int, out: str) -> None:
    """The loss check, then the training check, in one process group."""
    join(rank, world, port)
    losses_of_shards(rank, world, out)
    simclr_fit(rank, world, batch_size, out)
    if world > 1:
        dist.destroy_process_group()
