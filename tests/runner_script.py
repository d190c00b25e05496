"""One SHERPA-style runner script for the tests that run a search as its own process (to kill
it, race it or resume it): ``python runner.py TRIAL OUT [SPEC] [--resume]``.

SPEC (JSON, in argv or ``$RUNNER_SPEC``): ``params`` "x" (default), "x_kind" or "lr";
``algorithm`` "random" (default), "grid" or "median" (random with the median stopping rule);
``trials`` (6), ``seed`` (5). With ``$GO_FILE`` set, it waits for that file before starting,
so that two runners start together. It prints ``BEST <trial id>`` at the end.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

RUNNER = """
import json, os, sys, time
import ridgeline as sherpa

specs = [a for a in sys.argv[3:] if a.startswith("{")]
spec = json.loads(specs[0] if specs else os.environ.get("RUNNER_SPEC", "{}"))
params = {
    "x": [sherpa.Continuous("x", [0.0, 1.0])],
    "x_kind": [sherpa.Continuous("x", [0.0, 1.0]), sherpa.Choice("kind", ["a", "b"])],
    "lr": [sherpa.Continuous("lr", [0.0, 1.0])],
}[spec.get("params", "x")]
trials = spec.get("trials", 6)
algorithm = sherpa.algorithms.RandomSearch(max_num_trials=trials)
rule = None
if spec.get("algorithm") == "grid":
    params = [sherpa.Choice("lr", [0.1, 0.5, 0.9])]
    algorithm = sherpa.algorithms.GridSearch()
elif spec.get("algorithm") == "median":
    rule = sherpa.algorithms.MedianStoppingRule(min_iterations=2, min_trials=1)
go = os.environ.get("GO_FILE")
if go:
    open(f"{go}.{os.getpid()}.ready", "w").close()
    while not os.path.exists(go):
        time.sleep(0.0005)
best = sherpa.optimize(
    parameters=params,
    algorithm=algorithm,
    stopping_rule=rule,
    lower_is_better=True,
    scheduler=sherpa.schedulers.LocalScheduler(),
    filename=sys.argv[1],
    output_dir=sys.argv[2],
    max_concurrent=2,
    seed=spec.get("seed", 5),
    verbose=0,
    resume="--resume" in sys.argv,
)
print("BEST", best.get("Trial-ID"), flush=True)
"""


def write_runner(folder: Path) -> Path:
    """The runner script, written into ``folder``."""
    path = folder / "runner.py"
    path.write_text(textwrap.dedent(RUNNER))
    return path
