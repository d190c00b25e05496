"""Launch-to-first-operation latency of a distributed trial, printed as a table.

    python benchmarks/rank_launch.py              # 1 and 2 ranks, 3 runs each
    python benchmarks/rank_launch.py --runs 5 --markdown

Each run is one Core-API experiment (``single`` searcher, ``max_length: 1``) whose trial
initialises torch.distributed (gloo, CPU), wraps a small model in DistributedDataParallel,
and notes the wall-clock time when ``searcher.operations()`` hands the chief its first
operation. Measured: from the ``trial_started`` event (the coordinator has submitted the
trial's process) to that moment. Rows:

* ``python3 train.py``: one process, no launcher (the floor: Python, ``import torch``,
  ``import ridgeline``, the process group of one).
* ``torch_distributed``, 1 and 2 slots: the entrypoint
  ``python3 -m determined.launch.torch_distributed python3 train.py`` with
  ``resources.slots_per_trial`` 1 or 2 (ridgeline's launcher, torchrun, ``wrap_rank``).

Needs torch (``pip install torch``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import yaml

TRIAL = """\
import json, os, time
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
import ridgeline as det

if "RANK" not in os.environ:  # run without a launcher: a process group of one
    port = str(29500 + os.getpid() % 1000)
    os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", LOCAL_WORLD_SIZE="1",
                      GROUP_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
dist.init_process_group("gloo")
distributed = det.core.DistributedContext.from_torch_distributed()
model = DistributedDataParallel(torch.nn.Linear(4, 1))
with det.core.init(distributed=distributed) as core:
    for op in core.searcher.operations():
        if distributed.rank == 0:
            with open(os.environ["FIRST_OP_FILE"], "w") as f:
                f.write(json.dumps(time.time()))
            op.report_completed(0.0)
dist.destroy_process_group()
"""

CASES = {
    "python3 train.py (1 process, no launcher)": ("python3 train.py", 1),
    "torch_distributed, 1 slot": (
        "python3 -m determined.launch.torch_distributed python3 train.py",
        1,
    ),
    "torch_distributed, 2 slots": (
        "python3 -m determined.launch.torch_distributed python3 train.py",
        2,
    ),
}


def one_run(
    folder: Path, entrypoint: str, slots: int, bind: str | None = None, **fields: object
) -> float:
    """One experiment's launch-to-first-op seconds; ``fields`` add to its config, ``bind``
    is the address the coordinator listens on (where other nodes reach it)."""
    import ridgeline
    from ridgeline.store import open_store

    (folder / "train.py").write_text(TRIAL)
    config = {
        "name": "latency",
        "entrypoint": entrypoint,
        "resources": {"slots_per_trial": slots},
        "hyperparameters": {"x": 1},
        "searcher": {"name": "single", "metric": "loss", "max_length": 1},
        "max_restarts": 0,
        **fields,
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    first = folder / "first_op.json"
    os.environ["FIRST_OP_FILE"] = str(first)
    exp = ridgeline.Experiment.from_yaml(folder / "config.yaml", folder)
    exp.create(bind=bind)
    exp.run(verbose=0)
    store = open_store(os.environ["RIDGELINE_STORAGE"])
    try:
        started = next(e.time for e in store.read_events(exp.id) if e.kind == "trial_started")
    finally:
        store.close()
    return float(json.loads(first.read_text())) - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["RIDGELINE_DATA_DIR"] = str(Path(tmp) / "data")
        os.environ["RIDGELINE_STORAGE"] = str(Path(tmp) / "data" / "store.db")
        for name, (entrypoint, slots) in CASES.items():
            times = []
            for run in range(args.runs):
                folder = Path(tmp) / f"{len(rows)}-{run}"
                folder.mkdir()
                times.append(one_run(folder, entrypoint, slots))
            rows.append((name, statistics.median(times), max(times)))
    print_rows("trial", rows, args.runs, args.markdown)


def node_cases(
    tmp: Path, cases: dict[str, dict[str, object]], runs: int, bind: str
) -> list[tuple[str, float, float]]:
    """(case, median, max) of ``runs`` 2-rank trials of Determined's launcher line per case,
    each case's fields (a ``slurm:`` or ``sge:`` section) added to the config; the
    coordinator listens on ``bind``, where the nodes reach it."""
    os.environ["RIDGELINE_DATA_DIR"] = str(tmp / "data")
    os.environ["RIDGELINE_STORAGE"] = str(tmp / "data" / "store.db")
    launch = "python3 -m determined.launch.torch_distributed python3 train.py"
    rows = []
    for case, fields in cases.items():
        times = []
        for run in range(runs):
            folder = tmp / f"{len(rows)}-{run}"
            folder.mkdir()
            times.append(one_run(folder, launch, 2, bind=bind, **fields))
        rows.append((case, statistics.median(times), max(times)))
    return rows


def print_rows(what: str, rows: list[tuple[str, float, float]], runs: int, markdown: bool) -> None:
    """The latency table: one row per case (name, median, max), as text or Markdown."""
    header = (what, "launch -> first op, median s", "max s")
    lines = [header] + [(n, f"{m:.2f}", f"{x:.2f}") for n, m, x in rows]
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + " --- |" * len(header))
        for line in lines[1:]:
            print("| " + " | ".join(line) + " |")
    else:
        for line in lines:
            print(f"{line[0]:<45} {line[1]:>30} {line[2]:>8}")
    print(f"({runs} runs each, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    sys.exit(main())
