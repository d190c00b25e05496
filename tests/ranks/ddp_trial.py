"""A small torch DDP model trained by a Core-API trial of several processes (gloo, CPU).

Hyperparameters: ``lr``; ``crash_rank`` (that rank exits 3 mid-operation on the trial's first
attempt); ``early_is_better`` (the metric favours low trial numbers, so ASHA promotes a paused
trial); ``freeze_chief`` (rank 0 stops itself with SIGSTOP mid-operation, once). Every
rank writes its own shard of each checkpoint and reads it back on restore. Each rank notes
the node it runs on (its network namespace and node address); rank 0 notes when it got its
first operation (``first_op``, seconds since the epoch)."""

import json
import os
import pathlib
import signal
import sys
import time

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

import ridgeline as det

dist.init_process_group("gloo")
distributed = det.core.DistributedContext.from_torch_distributed()
info = det.get_cluster_info()
hparams = info.trial.hparams
rank = distributed.rank
torch.manual_seed(0)
model = DistributedDataParallel(torch.nn.Linear(4, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=hparams["lr"])
inputs = torch.randn(64, 4)
targets = inputs.sum(dim=1, keepdim=True)
mine = slice(rank, None, distributed.size)
note = pathlib.Path(f"rank{rank}.log")  # in the trial's folder: what this rank saw
with note.open("a") as f:
    node = info.container_addrs[info.container_rank]
    f.write(f"node {info.container_rank} {node} {os.readlink('/proc/self/ns/net')}\n")


def validate(steps: int) -> float:
    with torch.no_grad():
        total = torch.nn.functional.mse_loss(model(inputs), targets, reduction="sum")
    dist.all_reduce(total)
    value = float(total) / distributed.size
    if hparams.get("early_is_better"):
        value = info.trial.number * 1000.0 + value / (1 + steps)
    return value


def save(core: det.core.Context, steps: int) -> None:
    metadata = {"steps_completed": steps, "ranks": {str(rank): os.getpid()}}
    with core.checkpoint.store_path(metadata, shard=True) as (path, _):
        torch.save({"model": model.module.state_dict(), "steps": steps}, path / f"rank{rank}.pt")


with det.core.init(distributed=distributed) as core:
    steps = 0
    if info.latest_checkpoint is not None:
        with core.checkpoint.restore_path(info.latest_checkpoint) as path:
            state = torch.load(path / f"rank{rank}.pt")
            model.module.load_state_dict(state["model"])
            steps = state["steps"]
            meta = json.loads((path / "metadata.json").read_text())
        with note.open("a") as f:
            f.write(f"restored {steps} ranks={sorted(meta['ranks'])}\n")
    preempted = False
    for op in core.searcher.operations():
        first_op = pathlib.Path("first_op")
        if rank == 0 and not first_op.exists():
            first_op.write_text(str(time.time()))
        with note.open("a") as f:
            f.write(f"op {op.length} world={distributed.size} slots={info.slot_ids}\n")
        value = 0.0
        while steps < op.length:
            loss = torch.nn.functional.mse_loss(model(inputs[mine]), targets[mine])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
            time.sleep(hparams.get("step_sleep", 0))
            if hparams.get("freeze_chief") and rank == 0 and steps == 7:
                frozen = pathlib.Path("froze")
                if not frozen.exists():
                    frozen.write_text(str(os.getpid()))
                    os.kill(os.getpid(), signal.SIGSTOP)  # as a lost node: silent, not dead
            marker = pathlib.Path("crashed")
            if hparams.get("crash_rank") == rank and steps == 7 and not marker.exists():
                marker.write_text("once")
                sys.exit(3)
            if steps % hparams.get("checkpoint_every", 5) == 0 or steps == op.length:
                value = validate(steps)
                save(core, steps)
                if rank == 0:
                    core.train.report_validation_metrics(steps, {"loss": value})
                if core.preempt.should_preempt():
                    preempted = True
                    break
        if preempted:
            break
        if rank == 0:
            op.report_completed(value)
dist.destroy_process_group()
