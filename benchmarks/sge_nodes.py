"""Launch-to-first-operation latency of a 2-rank trial as one Grid Engine job: on one host vs
across two.

    sudo python benchmarks/sge_nodes.py --runs 3 --markdown

Needs root and the Grid Engine of ``scripts/ensure-sge.sh``. Two ``sge_execd``s run in two
network namespaces on a bridge, each under its own host name (``tests/cluster/sgenodes.py``),
serving a queue of one slot per host and a parallel environment with ``allocation_rule 1``.
The trial of ``benchmarks/rank_launch.py`` (gloo, a small DDP model, Determined's launcher
line, ``resources.slots_per_trial: 2``, ``sge: {slot_type: cpu}``) runs on one host
(``slots_per_node: 2``: a plain job, both ranks there) and across both (``slots_per_node: 1``:
``qsub -pe``, ``qrsh -inherit`` per host). The coordinator listens on the bridge. Everything
made is removed at the end.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(1, str(REPO))  # the tests' namespace and Grid Engine host helpers

from rank_launch import node_cases, print_rows  # noqa: E402
from tests.cluster.sgenodes import SgeNodes  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    # the namespaces share this machine's /tmp, which create warns about for real clusters
    warnings.filterwarnings("ignore", message=".*local to this machine")
    with tempfile.TemporaryDirectory() as tmp:
        hosts = SgeNodes(Path(tmp))
        try:
            queue = {"slot_type": "cpu", "qsub_args": ["-q", hosts.queue]}
            cases = {
                "2 ranks on one host": {"sge": {**queue, "slots_per_node": 2}},
                "2 ranks across two hosts": {
                    "sge": {**queue, "slots_per_node": 1, "parallel_environment": hosts.pe}
                },
            }
            rows = node_cases(Path(tmp), cases, args.runs, hosts.nodes.host)
        finally:
            hosts.remove()
    print_rows("trial (Grid Engine)", rows, args.runs, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
