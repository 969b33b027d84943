"""Data-parallel training with ``torch.distributed`` under ``torchrun``: one process per GPU (or per CPU
process with gloo), each with its own shard of every epoch, gradients averaged by
``DistributedDataParallel``.

``torchrun`` sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``; :func:`init` joins the process group they
describe (NCCL for CUDA tensors, gloo for CPU tensors and for the small control messages: stop flags,
checkpoints, logged values). Rank 0 owns the MLflow run: it logs, checkpoints and registers; every rank
starts from the state rank 0 restored. Outside ``torchrun`` every helper here is the single-process
identity, so the training code has one path.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


def launched() -> bool:
    """Whether this process was started by ``torchrun`` (or another launcher setting its variables)."""
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0")) if active() else 0


def is_main() -> bool:
    """Rank 0: the process that tracks, checkpoints and registers."""
    return rank() == 0


def local_world_size() -> int:
    return int(os.environ.get("LOCAL_WORLD_SIZE", "1"))


def init(use_cuda: bool) -> None:
    """Join the ``torchrun`` process group (a no-op outside ``torchrun`` or once joined)."""
    if not launched() or dist.is_initialized():
        return
    if use_cuda:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    # CPU tensors (control messages, gloo training) go through gloo, CUDA tensors through NCCL.
    dist.init_process_group("cpu:gloo,cuda:nccl" if use_cuda else "gloo")


def backend() -> str:
    """The process group's backend (``gloo``, ``cpu:gloo,cuda:nccl``), ``none`` for a single process."""
    return str(dist.get_backend()) if active() else "none"


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def device_for(device: torch.device) -> torch.device:
    """Under ``torchrun`` each process trains on the GPU of its local rank."""
    if device.type == "cuda" and active():
        return torch.device("cuda", local_rank())
    return device


def rank_seed(seed: int) -> int:
    """A per-rank seed for augmentation: each rank draws its own crops and flips."""
    return seed + 1_000_003 * rank()


def broadcast(obj: T) -> T:
    """Rank 0's ``obj`` on every rank (pickled, through gloo)."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0, device=torch.device("cpu"))
    return box[0]


def gather_objects(obj: T) -> list[T]:
    """Every rank's ``obj``, in rank order, on every rank."""
    if not active():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def mean(value: torch.Tensor) -> torch.Tensor:
    """The mean of ``value`` over the ranks (a copy; the input is left alone)."""
    if not active():
        return value
    value = value.detach().clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / world_size()


def agree_on_stop(local: str | None) -> str | None:
    """The stop signal any rank received (by name), the same on every rank: all stop at the same step."""
    import signal

    if not active():
        return local
    code = torch.tensor([int(signal.Signals[local]) if local else 0])
    dist.all_reduce(code, op=dist.ReduceOp.MAX)
    return signal.Signals(int(code)).name if int(code) else None


def all_gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Every rank's ``x`` concatenated along dim 0, in rank order; gradients flow back to each rank's part
    (the sum over ranks of what each rank's loss sends it)."""
    if not active():
        return x
    from torch.distributed.nn.functional import all_gather

    with warnings.catch_warnings():  # deprecated in favour of a private API; the public one is kept
        warnings.simplefilter("ignore", FutureWarning)
        return torch.cat(all_gather(x), dim=0)


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``model`` in ``DistributedDataParallel`` (gradients averaged over the ranks), or itself alone."""
    if not active():
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)
