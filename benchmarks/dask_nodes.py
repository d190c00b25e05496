"""Launch-to-first-operation latency of a 2-rank trial on one Dask node vs across two.

    sudo python benchmarks/dask_nodes.py --runs 3 --markdown

Makes two network namespaces on a bridge (``tests/cluster/netns.py``; needs root and ``ip``),
a dask scheduler on this machine's bridge address, a worker with ``slots=2`` in the first
namespace and one with ``slots=1`` in the second. The trial of ``benchmarks/rank_launch.py``
(gloo, a small DDP model, Determined's launcher line, ``resources.slots_per_trial: 2``) runs
on one node (the 2-slot worker holds it) and across both (``dask: {slots_per_node: 1}``).
Everything made is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(1, str(REPO))  # the tests' network-namespace helpers

from rank_launch import one_run, print_rows  # noqa: E402
from tests.cluster.netns import Nodes, _wait_for  # noqa: E402

LAUNCH = "python3 -m determined.launch.torch_distributed python3 train.py"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    # the namespaces share this machine's /tmp, which create warns about for real clusters
    warnings.filterwarnings("ignore", message=".*local to this machine")
    nodes = Nodes.make(2)
    processes: list[subprocess.Popen[bytes]] = []
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            scheduler_file = Path(tmp) / "scheduler.json"
            log = open(Path(tmp) / "cluster.log", "ab")
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", nodes.host,
                 "--port", "0", "--no-dashboard", "--scheduler-file", str(scheduler_file)],
                env=env, stdout=log, stderr=log, start_new_session=True,
            ))  # fmt: skip
            _wait_for(lambda: scheduler_file.exists() and scheduler_file.stat().st_size > 0, "dask")
            address = json.loads(scheduler_file.read_text())["address"]
            for name, host, slots in zip(nodes.names, nodes.addresses, (2, 1), strict=True):
                processes.append(subprocess.Popen(
                    ["ip", "netns", "exec", name, sys.executable, "-m",
                     "distributed.cli.dask_worker", address, "--host", host, "--nworkers", "1",
                     "--nthreads", "1", "--resources", f"slots={slots}", "--no-dashboard"],
                    env=env, stdout=log, stderr=log, start_new_session=True,
                ))  # fmt: skip
            time.sleep(3)
            os.environ["RIDGELINE_DATA_DIR"] = str(Path(tmp) / "data")
            os.environ["RIDGELINE_STORAGE"] = str(Path(tmp) / "data" / "store.db")
            cases = {
                "2 ranks on one node": {"address": address},
                "2 ranks across two nodes": {"address": address, "slots_per_node": 1},
            }
            for case, dask in cases.items():
                times = []
                for run in range(args.runs):
                    folder = Path(tmp) / f"{len(rows)}-{run}"
                    folder.mkdir()
                    times.append(one_run(folder, LAUNCH, 2, dask=dask))
                rows.append((case, statistics.median(times), max(times)))
    finally:
        for process in reversed(processes):
            os.killpg(process.pid, signal.SIGTERM)
            process.wait()
        nodes.remove()
    print_rows("trial (Dask)", rows, args.runs, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
