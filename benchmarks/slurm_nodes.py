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
import sys
import tempfile
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(1, str(REPO))  # the tests' namespace and SLURM node helpers

from rank_launch import node_cases, print_rows  # noqa: E402
from tests.cluster.slurmnodes import SlurmNodes  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    # the namespaces share this machine's /tmp, which create warns about for real clusters
    warnings.filterwarnings("ignore", message=".*local to this machine")
    with tempfile.TemporaryDirectory() as tmp:
        nodes = SlurmNodes(Path(tmp), cpus=(2, 1))
        try:
            cases = {
                f"2 ranks {where}": {
                    "slurm": {
                        "slots_per_node": per_node,
                        "slot_type": "cpu",
                        "sbatch_args": ["--partition=nodes"],
                    }
                }
                for where, per_node in (("on one node", 2), ("across two nodes", 1))
            }
            rows = node_cases(Path(tmp), cases, args.runs, nodes.nodes.host)
        finally:
            nodes.remove()
    print_rows("trial (SLURM)", rows, args.runs, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
