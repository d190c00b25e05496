"""A Core-API trial that starts its own workers, the way Determined's tutorial (stage 4) does:
``python3 ranks_trial.py launcher`` starts one ``python3 -m determined.launch.wrap_rank RANK --
python3 ranks_trial.py worker RANK`` per slot; the workers sum every rank's increment with
``allgather``, the chief reports and checkpoints, and all stop together when preempted."""

import pathlib
import subprocess
import sys
import time

import ridgeline as det

info = det.get_cluster_info()
slots = len(info.slot_ids)


def launcher() -> int:
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "determined.launch.wrap_rank",
                str(rank),
                "--",
                sys.executable,
                __file__,
                "worker",
                str(rank),
            ]
        )
        for rank in range(slots)
    ]
    codes = [w.wait() for w in workers]
    return next((c for c in codes if c), 0)


def worker(rank: int) -> None:
    distributed = det.core.DistributedContext(
        rank=rank,
        size=slots * len(info.container_addrs),
        local_rank=rank,
        local_size=slots,
        cross_rank=info.container_rank,
        cross_size=len(info.container_addrs),
        chief_ip=info.container_addrs[0],
    )
    hparams = info.trial.hparams
    print(f"worker {rank} of {distributed.size} starting", flush=True)
    with det.core.init(distributed=distributed) as core:
        x, steps = 0, 0
        if info.latest_checkpoint is not None:
            with core.checkpoint.restore_path(info.latest_checkpoint) as path:
                x, steps = (int(v) for v in (path / "state").read_text().split(","))
            pathlib.Path(f"resumed_rank{rank}_{steps}").touch()
        for op in core.searcher.operations():
            while steps < op.length:
                x += sum(distributed.allgather(hparams["increment_by"]))
                steps += 1
                time.sleep(hparams.get("sleep", 0))
                if steps % 5 == 0:
                    if rank == 0:
                        core.train.report_validation_metrics(steps, {"x": x})
                        with core.checkpoint.store_path({"steps_completed": steps}) as (p, _):
                            (p / "state").write_text(f"{x},{steps}")
                    if core.preempt.should_preempt():
                        return
            if rank == 0:
                op.report_completed(x)


if __name__ == "__main__":
    if sys.argv[1] == "launcher":
        sys.exit(launcher())
    worker(int(sys.argv[2]))
