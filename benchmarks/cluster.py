"""Report how each scheduler backend carries short trials, printed as a table.

    python benchmarks/cluster.py                      # every backend below
    python benchmarks/cluster.py --markdown           # the same as a Markdown table
    python benchmarks/cluster.py --backends local,slurm --trials 40

Each backend runs one ``ridgeline.optimize`` (SHERPA door, ``RandomSearch``,
``MedianStoppingRule(min_iterations=1)``, ``max_concurrent=--slots``) over ``--trials`` trials
that take their hyperparameters, sleep 1 s and report one good objective, then ``--kills``
trials that report a bad objective and wait: the stopping rule stops each of them through
the backend (``kill`` of the job: SIGTERM, ``scancel``, ``qdel``, dask task cancel).

``slurm-workers`` and ``sge-workers`` run worker jobs (``worker_jobs=True``): --slots jobs
that each run trial after trial, so a freed slot is taken without a new job.

``slurm-alone`` is the floor of one SLURM job per trial, without ridgeline: ``--trials`` jobs
that run the same 1 s of Python (no ``import ridgeline``, no calls), all submitted at the
start, each asking for the node's CPUs / ``--slots`` so that ``--slots`` run at once and
SLURM starts a queued one the moment a job ends. Its "slots busy" is what SLURM itself
allows on the machine; its "submit -> process start" includes the wait in the queue.

Measured, from what the coordinator stores (the events table) and what each trial notes:

* submit -> hyperparameters: from the ``trial_created`` event (the coordinator decides to run
  the trial and submits it) to ``Client().get_trial()`` returning in the trial (median, max).
* of it, submit -> process start: the part before the trial script's first line runs (the
  backend's submission, scheduling and job start); the rest is Python start-up,
  ``import ridgeline`` and the call for the trial.
* slots busy: the trial processes' lifetimes (first line of the script to its exit) over
  ``slots x`` the run's span (the first ``trial_created`` to the last 1 s trial's
  ``trial_exited``); the share of slot time a process held. 1 s of the lifetime is the sleep;
  the rest is Python start-up, ``import ridgeline`` and the two calls to the coordinator.
* exit -> recorded: from a 1 s trial's last line to its ``trial_exited`` event (median): how
  soon the coordinator learns that a slot is free (process wait, ``squeue``/``qstat`` polls,
  the dask task's end).
* kill -> exit: from the ``stop_requested`` event to that trial's ``trial_exited`` event
  (median, max over the ``--kills`` trials).
* coordinator CPU per trial: the coordinator's own CPU time (user + system) spent inside
  ``optimize`` over all trials. It runs in its own process (this script, re-invoked), so the
  figure is its own; commands it runs (``sbatch``, ``squeue``, ``qstat``) are not in it.

The SLURM and Grid Engine rows need the daemons (``scripts/ensure-slurm.sh``,
``scripts/ensure-sge.sh``); dask needs ``distributed`` (a ``dask scheduler`` and a
``dask worker --nworkers <slots> --nthreads 1`` are started on 127.0.0.1 for the run and
stopped afterwards). A backend that is not available gets a row that says so.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from pathlib import Path
from typing import Any

SRC = Path(__file__).resolve().parents[1] / "src"

TRIAL = """\
import json, os, time
born = time.time()
import ridgeline

client = ridgeline.Client()
trial = client.get_trial()
got = time.time()
note = os.path.join(os.environ["BENCH_OUT"], f"{trial.id}.json")
with open(note, "w") as handle:
    json.dump({"born": born, "got": got}, handle)
if trial.id <= int(os.environ["BENCH_SHORT"]):
    time.sleep(1.0)
    client.send_metrics(trial=trial, iteration=1, objective=0.0)
else:  # a trial the stopping rule stops: it waits to be killed
    client.send_metrics(trial=trial, iteration=1, objective=10.0)
    time.sleep(120)
with open(note, "w") as handle:
    json.dump({"born": born, "got": got, "end": time.time()}, handle)
"""

BACKENDS = ("local", "slurm", "slurm-workers", "slurm-alone", "sge", "sge-workers", "dask")

#: The floor of one SLURM job per trial, without ridgeline: the same 1 s work in a job of
#: its own, every job queued at the start, at most ``--slots`` running (each asks for the
#: node's CPUs / slots), so SLURM starts the next one the moment a slot frees.
ALONE = """\
import json, sys, time
born = time.time()
time.sleep(1.0)
with open(sys.argv[1], "w") as handle:
    json.dump({"born": born, "end": time.time()}, handle)
"""


# -- the coordinator side (this script re-invoked) ----------------------------------------------
def make_scheduler(backend: str, work: Path, dask_address: str) -> Any:
    import ridgeline
    from ridgeline.schedulers import DaskScheduler, SGEScheduler, SLURMScheduler

    if backend == "local":
        return ridgeline.LocalScheduler()
    if backend in ("slurm", "slurm-workers"):
        return SLURMScheduler(output_dir=str(work / "jobs"), worker_jobs=backend != "slurm")
    if backend in ("sge", "sge-workers"):
        return SGEScheduler(output_dir=str(work / "jobs"), worker_jobs=backend != "sge")
    return DaskScheduler(dask_address)


def coordinator_main(args: argparse.Namespace) -> None:
    """Run one search in this process; write the coordinator's CPU and wall time to
    ``args.result``."""
    import ridgeline

    work = Path(args.work)
    script = work / "trial.py"
    script.write_text(TRIAL)
    os.environ["BENCH_OUT"] = str(work / "notes")
    os.environ["BENCH_SHORT"] = str(args.trials)
    scheduler = make_scheduler(args.backend, work, args.dask_address)
    before = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. "output folder under /tmp": one node here
        ridgeline.optimize(
            [ridgeline.Continuous("x", [0.0, 1.0])],
            ridgeline.algorithms.RandomSearch(max_num_trials=args.trials + args.kills),
            True,
            scheduler,
            command=f"{sys.executable} {script}",
            stopping_rule=ridgeline.algorithms.MedianStoppingRule(min_iterations=1),
            output_dir=str(work / "out"),
            max_concurrent=args.slots,
            verbose=0,
            seed=0,
        )
    wall = time.time() - wall
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    Path(args.result).write_text(json.dumps({"cpu_s": cpu, "wall_s": wall}))


# -- dask ---------------------------------------------------------------------------------------
def start_dask(folder: Path, workers: int) -> tuple[str, list[subprocess.Popen[bytes]]]:
    """``dask scheduler`` and ``dask worker --nworkers <workers>`` on free loopback ports."""
    from distributed import Client

    folder.mkdir(parents=True, exist_ok=True)
    scheduler_file = folder / "scheduler.json"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    common = ["--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(scheduler_file)]
    log = open(folder / "cluster.log", "ab")  # noqa: SIM115 - kept open for the processes
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
             "--port", "0", *common],
            env=env, stdout=log, stderr=log, start_new_session=True,
        )
    ]  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (scheduler_file.exists() and scheduler_file.stat().st_size > 0):
            if time.monotonic() > deadline or processes[0].poll() is not None:
                raise RuntimeError("the dask scheduler did not start")
            time.sleep(0.05)
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_worker", "--host", "127.0.0.1",
                 "--nworkers", str(workers), "--nthreads", "1", *common],
                env=env, stdout=log, stderr=log, start_new_session=True,
            )
        )  # fmt: skip
        address = json.loads(scheduler_file.read_text())["address"]
        with Client(address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(workers, timeout=60)
    except BaseException:
        stop_dask(processes)
        raise
    return address, processes


def stop_dask(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in reversed(processes):  # the worker (nanny) first, then the scheduler
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# -- one run ------------------------------------------------------------------------------------
def unavailable(backend: str) -> str | None:
    """Why ``backend`` cannot run here, or None."""
    if backend.startswith("slurm"):
        if shutil.which("sbatch") is None:
            return "not available: no sbatch (scripts/ensure-slurm.sh)"
        probe = subprocess.run(["sinfo", "-h"], capture_output=True, text=True, timeout=30)
        if probe.returncode != 0 or not probe.stdout.strip():
            return "not available: slurmctld does not answer (scripts/ensure-slurm.sh)"
    if backend.startswith("sge"):
        if shutil.which("qsub") is None:
            return "not available: no qsub (scripts/ensure-sge.sh)"
        probe = subprocess.run(["qstat"], capture_output=True, text=True, timeout=30)
        if probe.returncode != 0:
            return "not available: sge_qmaster does not answer (scripts/ensure-sge.sh)"
    if backend == "dask":
        try:
            import distributed  # noqa: F401
        except ImportError:
            return "not available: dask.distributed is not installed (pip install .[dask])"
    return None


def run_alone(trials: int, slots: int) -> dict[str, Any]:
    """SLURM without ridgeline: ``trials`` jobs of 1 s, all submitted at once, ``slots`` at a
    time; busy share and submit->process start measured as for the ridgeline rows."""
    shown = subprocess.run(["sinfo", "-h", "-o", "%P %c"], capture_output=True, text=True,
                           timeout=30)  # fmt: skip
    # the default partition (marked "*"), where the ridgeline row's jobs run too
    cpus = next(int(c) for p, c in (line.split() for line in shown.stdout.splitlines())
                if p.endswith("*"))  # fmt: skip
    if cpus % slots:
        raise RuntimeError(f"--slots {slots} does not divide the node's {cpus} CPUs")
    with tempfile.TemporaryDirectory(prefix="ridgeline-cluster-") as tmp:
        work = Path(tmp)
        script = work / "alone.py"
        script.write_text(ALONE)
        submitted: dict[int, float] = {}
        jobs = []
        for n in range(1, trials + 1):
            submitted[n] = time.time()
            done = subprocess.run(
                ["sbatch", "--parsable", f"--cpus-per-task={cpus // slots}",
                 f"--output={work}/{n}.out", f"--wrap={sys.executable} {script} {work}/{n}.json"],
                capture_output=True, text=True, timeout=30, check=True,
            )  # fmt: skip
            jobs.append(done.stdout.strip().split(";")[0])
        deadline = time.monotonic() + 60 + 5 * trials
        while any(not (work / f"{n}.json").exists() for n in submitted):
            if time.monotonic() > deadline:
                subprocess.run(["scancel", *jobs], check=False)
                raise RuntimeError("the SLURM jobs did not all finish")
            time.sleep(0.2)
        notes = {n: json.loads((work / f"{n}.json").read_text()) for n in submitted}
    start = min(submitted.values())
    end = max(note["end"] for note in notes.values())
    busy = sum(note["end"] - note["born"] for note in notes.values())
    return {
        "latency": [],
        "dispatch": sorted(notes[n]["born"] - submitted[n] for n in notes),
        "busy": busy / (slots * (end - start)),
        "span_s": end - start,
        "kill": [],
        "noticed": [],
        "completed": len(notes),
        "stopped": 0,
        "trials_total": len(notes),
        "cpu_s": None,
    }


def run(backend: str, trials: int, kills: int, slots: int) -> dict[str, Any]:
    if backend == "slurm-alone":
        return run_alone(trials, slots)
    with tempfile.TemporaryDirectory(prefix="ridgeline-cluster-") as tmp:
        work = Path(tmp)
        (work / "notes").mkdir()
        result = work / "result.json"
        dask: list[subprocess.Popen[bytes]] = []
        address = ""
        if backend == "dask":
            address, dask = start_dask(work / "dask", slots)
        try:
            env = {
                **os.environ,
                "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
            }
            for name in list(env):
                if name.startswith(("RIDGELINE_", "SHERPA_")):
                    del env[name]
            argv = [sys.executable, __file__, "--coordinator", "--backend", backend,
                    "--work", str(work), "--result", str(result), "--trials", str(trials),
                    "--kills", str(kills), "--slots", str(slots),
                    "--dask-address", address]  # fmt: skip
            code = subprocess.run(argv, env=env, cwd=work, timeout=1800).returncode
        finally:
            stop_dask(dask)
        if code != 0:
            raise RuntimeError(f"the coordinator exited with {code}")
        figures = json.loads(result.read_text())
        figures.update(measure(work, trials, slots))
        return figures


def measure(work: Path, trials: int, slots: int) -> dict[str, Any]:
    """The figures from the store's events and the trials' notes."""
    from ridgeline.store import open_store

    store = open_store(work / "out" / "ridgeline.db")
    try:
        (experiment,) = store.list_experiments()
        events = store.read_events(experiment.id)
        states = {t.number: t.state for t in store.list_trials(experiment.id)}
    finally:
        store.close()
    first: dict[str, dict[int, float]] = {}
    for event in events:
        number = event.data.get("trial")
        if isinstance(number, int):
            first.setdefault(event.kind, {}).setdefault(number, event.time)
    notes = {int(p.stem): json.loads(p.read_text()) for p in (work / "notes").glob("*.json")}
    created, exited = first.get("trial_created", {}), first.get("trial_exited", {})
    latency = sorted(notes[n]["got"] - created[n] for n in notes if n in created)
    dispatch = sorted(notes[n]["born"] - created[n] for n in notes if n in created)
    start = min(created.values())
    end = max(exited[n] for n in range(1, trials + 1) if n in exited)
    busy = sum(
        max(0.0, min(note.get("end", exited.get(n, end)), end) - max(note["born"], start))
        for n, note in notes.items()
    )
    kills = sorted(exited[n] - t for n, t in first.get("stop_requested", {}).items() if n in exited)
    noticed = sorted(exited[n] - note["end"] for n, note in notes.items() if "end" in note)
    return {
        "latency": latency,
        "dispatch": dispatch,
        "busy": busy / (slots * (end - start)),
        "span_s": end - start,
        "kill": kills,
        "noticed": noticed,
        "completed": sum(1 for s in states.values() if s == "COMPLETED"),
        "stopped": sum(1 for s in states.values() if s == "STOPPED"),
        "trials_total": len(states),
    }


HEADER = [
    "backend",
    "trials",
    "submit→params median s",
    "max s",
    "of it, submit→process start",
    "slots busy",
    "exit→recorded median s",
    "kill→exit median s",
    "max s",
    "coordinator CPU ms/trial",
    "run span s",
    "ends",
]


def row(backend: str, trials: int, kills: int, f: dict[str, Any]) -> list[str]:
    count = f"{trials}" if backend == "slurm-alone" else f"{trials} + {kills}"
    if "error" in f:
        return [backend, count, f["error"], *[""] * (len(HEADER) - 3)]
    lat, kill, noticed = f["latency"], f["kill"], f["noticed"]
    total = f["trials_total"]
    return [
        backend,
        count,
        f"{statistics.median(lat):.2f}" if lat else "-",
        f"{lat[-1]:.2f}" if lat else "-",
        f"{statistics.median(f['dispatch']):.2f}" if f["dispatch"] else "-",
        f"{100 * f['busy']:.0f}%",
        f"{statistics.median(noticed):.2f}" if noticed else "-",
        f"{statistics.median(kill):.2f}" if kill else "-",
        f"{kill[-1]:.2f}" if kill else "-",
        "-" if f["cpu_s"] is None else f"{1000 * f['cpu_s'] / max(1, total):.0f}",
        f"{f['span_s']:.1f}",
        f"{f['completed']} completed, {f['stopped']} stopped"
        if backend != "slurm-alone"
        else f"{f['completed']} jobs ended",
    ]


def print_table(rows: list[list[str]], markdown: bool) -> None:
    if markdown:
        print("| " + " | ".join(HEADER) + " |")
        print("|" + "|".join(" --- " for _ in HEADER) + "|")
        for r in rows:
            print("| " + " | ".join(r) + " |")
        return
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(HEADER)]
    for r in [HEADER, *rows]:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=textwrap.dedent(__doc__ or ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--trials", type=int, default=40, help="1 s trials per backend")
    parser.add_argument("--kills", type=int, default=4, help="trials stopped per backend")
    parser.add_argument("--slots", type=int, default=4, help="max_concurrent")
    # the coordinator process (internal)
    parser.add_argument("--coordinator", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--backend", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--dask-address", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.coordinator:
        coordinator_main(args)
        return
    backends = args.backends.split(",")
    for backend in backends:
        if backend not in BACKENDS:
            parser.error(f"--backends: unknown backend {backend!r} (known: {', '.join(BACKENDS)})")
    for name in ("trials", "kills", "slots"):
        if getattr(args, name) < (0 if name == "kills" else 1):
            parser.error(f"--{name} must be at least {0 if name == 'kills' else 1}")
    rows = []
    for backend in backends:
        reason = unavailable(backend)
        try:
            figures = (
                {"error": reason} if reason else run(backend, args.trials, args.kills, args.slots)
            )
        except Exception as exc:  # one failed backend still leaves the others' figures
            figures = {"error": f"failed: {exc}"}
        rows.append(row(backend, args.trials, args.kills, figures))
        print(" ".join(rows[-1]), file=sys.stderr, flush=True)
    print_table(rows, args.markdown)


if __name__ == "__main__":
    main()
