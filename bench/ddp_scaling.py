"""Data-parallel scaling on this machine (not a test): images/s of SimCLR's training loop (the entry
point's data, views, model and step; no tracking, no kNN monitor) with one process using N threads vs
N processes of one thread each under ``torchrun`` (gloo on CPU, NCCL on GPUs), at the same global batch.
Configurations alternate (A B A B) so that both see the same machine; the ratio is reported per pair.

    python bench/ddp_scaling.py --procs 2 --batch_size 64 --steps 8 --repeats 2

Rows go to ``bench/results/<device>-ddp-scaling.jsonl``; efficiency = DDP images/s / single images/s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def worker(args: argparse.Namespace) -> None:
    """One configuration: train 2 epochs of ``steps`` global batches; print the second epoch's images/s."""
    import torch

    from projects.core import distributed
    from projects.core.config import from_dict
    from projects.core.loop import resolve_device
    from projects.core.trainer_factory import create_trainer
    from projects.ssl.methods.simclr import Config, SimCLR
    from projects.ssl.pretrain import build

    torch.set_num_threads(args.threads)
    distributed.init(use_cuda=torch.cuda.is_available())
    world = distributed.world_size()
    per_process = args.batch_size // world
    fraction = min(1.0, (args.steps * args.batch_size + args.batch_size // 2) / 4500 / 0.9)
    cfg = from_dict(
        Config,
        {
            "dataset": "synthetic",
            "batch_size": per_process,
            "epochs": 2,
            "fraction": fraction,
            "warmup_fraction": 0,
            "num_workers": 0,
            "precision": "fp32" if not torch.cuda.is_available() else "auto",
        },
    )
    device = resolve_device(cfg.device)
    setup = build(cfg, SimCLR, device)
    trainer_args = {**setup.trainer_args(), "evaluate": None, "monitor": None}
    trainer = create_trainer(cfg, setup.model, **trainer_args, device=device, progress=False)
    trainer.fit()
    if distributed.is_main():
        epoch = trainer.history[-1]
        print(
            json.dumps(
                {
                    "images_per_sec": epoch["images_per_sec"],
                    "steps": len(setup.train_loader),
                    "per_process_batch": per_process,
                }
            )
        )
    distributed.shutdown()


def measure(procs: int, args: argparse.Namespace) -> dict:
    common = ["--worker", "--batch_size", str(args.batch_size), "--steps", str(args.steps)]
    if procs == 1:
        cmd = [sys.executable, __file__, *common, "--threads", str(args.procs)]
    else:
        run = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={procs}"]
        cmd = [*run, __file__, *common, "--threads", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1" if procs > 1 else str(args.procs), "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        sys.exit(out.stderr[-3000:])
    row = json.loads(out.stdout.strip().splitlines()[-1])
    return {**row, "processes": procs, "wall_s": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--batch_size", type=int, default=64, help="global batch (split over processes)")
    parser.add_argument("--steps", type=int, default=8, help="steps per epoch")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--worker", action="store_true")
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    import torch

    kind = "gpu" if torch.cuda.is_available() else "cpu"
    out = ROOT / "bench" / "results" / f"{kind}-ddp-scaling.jsonl"
    rows = []
    for repeat in range(args.repeats):
        single, ddp = measure(1, args), measure(args.procs, args)
        efficiency = ddp["images_per_sec"] / single["images_per_sec"]
        rows += [{**r, "repeat": repeat, "global_batch": args.batch_size} for r in (single, ddp)]
        print(
            f"repeat {repeat}: 1 process x {args.procs} threads {single['images_per_sec']:.1f} img/s, "
            f"{args.procs} processes x 1 thread {ddp['images_per_sec']:.1f} img/s: efficiency {efficiency:.2f}"
        )
        rows[-1]["efficiency"] = efficiency
    with out.open("a") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    print(f"rows appended to {out}")


if __name__ == "__main__":
    main()
