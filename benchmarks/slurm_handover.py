"""Where a SLURM slot's idle time goes between one 1 s trial and the next, as a table.

    python benchmarks/slurm_handover.py               # 40 trials, 4 at a time
    python benchmarks/slurm_handover.py --trials 80 --slots 4

Runs one ``optimize`` with ``SLURMScheduler`` (trials that take their hyperparameters, sleep
1 s and report) and times each hand-over of a slot: from a trial's last line to the first
line of the trial started in its place (the one created next after its end was stored). The
steps come from the trials' own clocks, the exit-status file's modification time, the store's
``trial_exited`` events, and slurmctld's and slurmd's logs (millisecond timestamps,
``LogTimeFormat=iso8601_ms``, the default): the submission (``_slurm_rpc_submit_batch_job``),
the allocation (``sched: Allocate`` by a main scheduling pass, ``backfill: Started`` by
backfill) and the launch (``Launching batch job``). Needs the single-node SLURM of
``scripts/ensure-slurm.sh`` and read access to /var/log/slurm.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import statistics
import sys
import tempfile
import warnings
from pathlib import Path

TRIAL = """\
import json, os, time
born = time.time()
import ridgeline
client = ridgeline.Client()
trial = client.get_trial()
time.sleep(1.0)
client.send_metrics(trial=trial, iteration=1, objective=0.0)
with open(os.path.join(os.environ["BENCH_OUT"], f"{trial.id}.json"), "w") as handle:
    json.dump({"born": born, "end": time.time()}, handle)
"""

LOGS = Path("/var/log/slurm")
STEPS = [
    ("trial's last line → its exit status recorded", "end", "recorded"),
    ("recorded → the coordinator stored the end", "recorded", "stored"),
    ("stored → the next job reached slurmctld (sbatch)", "stored", "submitted"),
    ("sbatch → allocated", "submitted", "allocated"),
    ("allocated → slurmd launches the batch job", "allocated", "launched"),
    ("launched → the next trial's first line", "launched", "born"),
]


def log_times(path: Path, pattern: str) -> dict[str, tuple[float, str]]:
    """``{job id: (time, matched text)}`` of the log lines matching ``pattern`` (group 1: the
    text, group 2: the job id)."""
    found: dict[str, tuple[float, str]] = {}
    regex = re.compile(r"^\[(\S+)\] .*?" + pattern)
    for line in path.read_text(errors="replace").splitlines():
        match = regex.match(line)
        if match:
            when = datetime.datetime.fromisoformat(match.group(1)).timestamp()
            found.setdefault(match.group(3), (when, match.group(2)))
    return found


def run(work: Path, trials: int, slots: int) -> tuple[list[dict[str, float | str]], float]:
    """The hand-overs' moments, and the median time a trial ran (first line to last)."""
    import ridgeline
    from ridgeline.schedulers import SLURMScheduler
    from ridgeline.store import open_store

    (work / "notes").mkdir()
    (work / "trial.py").write_text(TRIAL)
    os.environ["BENCH_OUT"] = str(work / "notes")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "output folder under /tmp": one node here
        ridgeline.optimize(
            [ridgeline.Continuous("x", [0.0, 1.0])],
            ridgeline.algorithms.RandomSearch(max_num_trials=trials),
            True,
            SLURMScheduler(),
            command=f"{sys.executable} {work / 'trial.py'}",
            output_dir=str(work / "out"),
            max_concurrent=slots,
            verbose=0,
        )
    store = open_store(work / "out" / "ridgeline.db")
    try:
        (experiment,) = store.list_experiments()
        events = store.read_events(experiment.id)
    finally:
        store.close()
    created: dict[int, float] = {}
    stored: dict[int, float] = {}
    for event in events:
        number = event.data.get("trial")
        if event.kind == "trial_created":
            created.setdefault(number, event.time)
        elif event.kind == "trial_exited":
            stored.setdefault(number, event.time)
    jobs = work / "out" / "jobs"
    notes = {n: json.loads((work / "notes" / f"{n}.json").read_text()) for n in created}
    job_id = {n: (jobs / f"trial_{n}.jobid").read_text().strip() for n in created}
    recorded = {n: (jobs / f"trial_{n}.exit").stat().st_mtime for n in created}
    submitted = log_times(LOGS / "slurmctld.log", r"(_slurm_rpc_submit_batch_job): JobId=(\d+)")
    allocated = log_times(LOGS / "slurmctld.log", r"(Allocate|Started) JobId=(\d+)")
    launched = log_times(LOGS / "slurmd.log", r"(Launching) batch job (\d+)")
    handovers = []
    for n in sorted(created):
        freed = [m for m in stored if stored[m] <= created[n]]
        if not freed:
            continue  # one of the first trials: no slot hand-over
        before = max(freed, key=lambda m: stored[m])
        job = job_id[n]
        handovers.append(
            {
                "end": notes[before]["end"],
                "recorded": recorded[before],
                "stored": stored[before],
                "submitted": submitted[job][0],
                "allocated": allocated[job][0],
                "by": allocated[job][1],
                "launched": launched[job][0],
                "born": notes[n]["born"],
            }
        )
    own = statistics.median(note["end"] - note["born"] for note in notes.values())
    return handovers, own


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--slots", type=int, default=4, help="max_concurrent")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ridgeline-handover-") as tmp:
        handovers, own = run(Path(tmp), args.trials, args.slots)
    print(f"{len(handovers)} hand-overs of a slot, {args.trials} trials, {args.slots} slots\n")
    print("| step | median ms | min | max |")
    print("| --- | --- | --- | --- |")
    for label, start, stop in [*STEPS, ("**idle per hand-over**", "end", "born")]:
        spans = sorted(1000 * (float(h[stop]) - float(h[start])) for h in handovers)
        median = statistics.median(spans)
        print(f"| {label} | {median:.0f} | {spans[0]:.0f} | {spans[-1]:.0f} |")
    by_pass = sum(1 for h in handovers if h["by"] == "Allocate")
    print(f"\nallocated by a main scheduling pass: {by_pass}, by backfill: "
          f"{len(handovers) - by_pass}")  # fmt: skip
    idle = statistics.median(float(h["born"]) - float(h["end"]) for h in handovers)
    print(f"a trial's own time (first line to last): median {own:.2f} s; with the median idle "
          f"time that keeps a slot {100 * own / (own + idle):.0f}% busy")  # fmt: skip


if __name__ == "__main__":
    main()
