"""Launch-to-first-operation latency of a 2-rank trial as one SLURM job: on one node vs across
two.

    sudo python benchmarks/slurm_nodes.py --runs 3 --markdown

Needs root and the SLURM of ``scripts/ensure-slurm.sh``. Two slurmds register themselves as
dynamic nodes from two network namespaces on a bridge (``tests/cluster/slurmnodes.py``): one
with 2 CPUs, one with 1, in the partition ``nodes``. The trial of ``benchmarks/rank_launch.py``
(gloo, a small DDP model, Determined's launcher line, ``resources.slots_per_trial: 2``,
``slurm: {slot_type: cpu}``) runs on one node (``slots_per_node: 2``: only the 2-CPU node holds
it) and across both (``slots_per_node: 1``: ``sbatch --nodes=2``, ``srun`` per node). The
coordinator listens on the bridge. Everything made is removed at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(1, str(REPO))  # the tests' namespace and SLURM node helpers

from rank_launch import one_run, print_rows  # noqa: E402
from tests.cluster.slurmnodes import SlurmNodes  # noqa: E402

LAUNCH = "python3 -m determined.launch.torch_distributed python3 train.py"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    # the namespaces share this machine's /tmp, which create warns about for real clusters
    warnings.filterwarnings("ignore", message=".*local to this machine")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        nodes = SlurmNodes(Path(tmp), cpus=(2, 1))
        try:
            os.environ["RIDGELINE_DATA_DIR"] = str(Path(tmp) / "data")
            os.environ["RIDGELINE_STORAGE"] = str(Path(tmp) / "data" / "store.db")
            cases = {"2 ranks on one node": 2, "2 ranks across two nodes": 1}
            for case, per_node in cases.items():
                slurm = {
                    "slots_per_node": per_node,
                    "slot_type": "cpu",
                    "sbatch_args": ["--partition=nodes"],
                }
                times = []
                for run in range(args.runs):
                    folder = Path(tmp) / f"{len(rows)}-{run}"
                    folder.mkdir()
                    times.append(one_run(folder, LAUNCH, 2, bind=nodes.nodes.host, slurm=slurm))
                rows.append((case, statistics.median(times), max(times)))
        finally:
            nodes.remove()
    print_rows("trial (SLURM)", rows, args.runs, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
