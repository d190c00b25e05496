"""DaskScheduler on a real dask cluster (``dask scheduler`` and a ``dask worker`` with two
worker processes, on 127.0.0.1): trials run as tasks, their ends are told apart (completed,
failed with its code, stopped, killed, lost with their worker), the processes a kill ends are
really gone, and the token stays off command lines."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytest.importorskip("distributed", reason="dask.distributed is not installed (pip install .[dask])")

import ridgeline as sherpa  # noqa: E402
from ridgeline.engine.run import process_alive  # noqa: E402
from ridgeline.errors import SchedulerError, SearchFailed  # noqa: E402
from ridgeline.schedulers import DaskScheduler  # noqa: E402
from ridgeline.schedulers.local import process_start_time  # noqa: E402
from ridgeline.store import open_store  # noqa: E402

SRC = Path(__file__).resolve().parents[2] / "src"


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def start_cluster(
    folder: Path, worker_args: tuple[str, ...] = ()
) -> tuple[str, list[subprocess.Popen[bytes]]]:
    """``dask scheduler`` and ``dask worker --nworkers 2`` (plus ``worker_args``) on free
    loopback ports."""
    folder.mkdir(parents=True, exist_ok=True)
    scheduler_file = folder / "scheduler.json"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    common = ["--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(scheduler_file)]
    log = open(folder / "cluster.log", "ab")
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
         "--port", "0", *common],
        env=env, stdout=log, stderr=log, start_new_session=True,
    )  # fmt: skip
    processes = [scheduler]
    try:
        wait_for(lambda: scheduler_file.exists() and scheduler_file.stat().st_size > 0, "dask")
        worker = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", "--host", "127.0.0.1",
             "--nworkers", "2", "--nthreads", "1", *worker_args, *common],
            env=env, stdout=log, stderr=log, start_new_session=True,
        )  # fmt: skip
        processes.append(worker)
        from distributed import Client

        address = json.loads(scheduler_file.read_text())["address"]
        with Client(address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=30)
    except BaseException:
        stop_cluster(processes)
        raise
    return address, processes


def stop_cluster(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in reversed(processes):  # the worker (nanny) first, then the scheduler
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    address, processes = start_cluster(tmp_path_factory.mktemp("dask"))
    yield address
    stop_cluster(processes)


# Trials 1 and 2 complete, 3 reports badly and is stopped by the median rule, 4 exits with
# code 3. Each notes its pid and whether its token was on any process's command line.
TRIAL = """
import os, signal, sys, time
import ridgeline as sherpa
client = sherpa.Client()
trial = client.get_trial()
out = os.environ["SHERPA_OUTPUT_DIR"]
token = os.environ["RIDGELINE_TOKEN"]
on_argv = False
for pid in os.listdir("/proc"):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            on_argv = on_argv or token.encode() in f.read()
    except OSError:
        pass
with open(os.path.join(out, f"seen_{trial.id}"), "w") as f:
    f.write(f"{os.getpid()} {len(token)} {on_argv}")
if trial.id == 4:
    sys.exit(3)
def on_term(signum, frame):
    open(os.path.join(out, f"terminated_{trial.id}"), "w").close()
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
for i in range(1, 100):
    client.send_metrics(trial=trial, iteration=i, objective=10.0 if trial.id == 3 else 1.0 / i)
    time.sleep(0.2 if trial.id == 3 else 0.02)
    if trial.id != 3 and i == 3:
        break
"""


def trial_states(out: Path) -> dict[int, tuple[str, int | None]]:
    store = open_store(out / "ridgeline.db")
    try:
        (experiment,) = store.list_experiments()
        return {t.number: (t.state, t.exit_code) for t in store.list_trials(experiment.id)}
    finally:
        store.close()


def test_optimize_runs_trials_as_dask_tasks_and_tells_their_ends_apart(
    cluster: str, workdir: Path
) -> None:
    (workdir / "trial.py").write_text(textwrap.dedent(TRIAL))
    out = workdir / "out"
    with pytest.warns(RuntimeWarning, match="Trial 4 failed"):
        best = sherpa.optimize(
            parameters=[sherpa.Continuous("x", [0.0, 1.0])],
            algorithm=sherpa.algorithms.RandomSearch(max_num_trials=4),
            stopping_rule=sherpa.algorithms.MedianStoppingRule(min_iterations=2, min_trials=2),
            lower_is_better=True,
            scheduler=DaskScheduler(cluster),
            filename=str(workdir / "trial.py"),
            output_dir=str(out),
            max_concurrent=1,
            verbose=0,
        )
    states = trial_states(out)
    assert states[1] == ("COMPLETED", 0) and states[2] == ("COMPLETED", 0)
    assert states[3] == ("STOPPED", 0)
    assert states[4] == ("FAILED", 3)
    assert best["Trial-ID"] in (1, 2)
    assert (out / "terminated_3").exists()  # SIGTERM reached the trial on its worker
    for number in range(1, 5):
        pid, token_length, on_argv = (out / f"seen_{number}").read_text().split()
        assert int(token_length) >= 16
        assert on_argv == "False"  # the token was on no process's command line
        assert process_start_time(int(pid)) is None  # its process is gone
    assert (out / "jobs" / "trial_4.out").exists()


def test_kill_ends_running_and_queued_tasks(cluster: str, workdir: Path) -> None:
    scheduler = DaskScheduler(cluster, output_dir=str(workdir))
    scheduler.check()
    stubborn = [
        sys.executable,
        "-c",
        "import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print(os.getpid(), flush=True); time.sleep(60)",
    ]
    polite = [sys.executable, "-c", "import os, time; print(os.getpid(), flush=True); "
              "time.sleep(60)"]  # fmt: skip

    def pid_in(job_output: str) -> int:
        out = Path(job_output)
        wait_for(lambda: out.exists() and out.read_text().strip().isdigit(), "a trial to start")
        return int(out.read_text())

    async def scenario() -> tuple[list[int | None], list[int]]:
        jobs = [
            scheduler.submit(polite, dict(os.environ), "polite"),
            scheduler.submit(stubborn, dict(os.environ), "stubborn"),
        ]
        pids = [await asyncio.to_thread(pid_in, job.info["output"]) for job in jobs]
        queued = scheduler.submit(polite, dict(os.environ), "queued")  # both workers busy
        scheduler.kill(queued)  # first: ending the others frees a worker it could take
        scheduler.kill(jobs[0])
        scheduler.kill(jobs[1])  # ignored
        await asyncio.sleep(0.5)
        assert process_start_time(pids[1]) is not None
        scheduler.kill(jobs[1], force=True)
        codes = await asyncio.gather(*(scheduler.wait(j) for j in [*jobs, queued]))
        return list(codes), pids

    started = time.monotonic()
    codes, pids = asyncio.run(scenario())
    scheduler.close()
    assert codes == [-15, -9, -15]
    assert all(process_start_time(pid) is None for pid in pids)
    assert not (workdir / "jobs" / "queued.exit").exists()  # it never ran
    assert time.monotonic() - started < 20


def test_a_task_is_reattached_by_a_new_scheduler(cluster: str, workdir: Path) -> None:
    first = DaskScheduler(cluster, output_dir=str(workdir))
    command = [sys.executable, "-c", "import time, sys; time.sleep(1.5); sys.exit(4)"]
    job = first.submit(command, dict(os.environ), "again")
    first.close()  # the coordinator is gone; its task runs on
    second = DaskScheduler(cluster, output_dir=str(workdir))
    live = second.reattach(job.info, "again")
    assert live is not None
    assert asyncio.run(second.wait(live)) == 4
    ended = second.reattach(job.info, "again")  # after its end: known from the record
    assert ended is not None and asyncio.run(second.wait(ended)) == 4
    unknown = dict(job.info, key="ridgeline-never-submitted", exit_file=str(workdir / "x.exit"))
    assert second.reattach(unknown, "again") is None
    second.close()


def test_a_trial_whose_worker_dies_fails(workdir: Path) -> None:
    address, processes = start_cluster(workdir / "cluster")
    try:
        trial = textwrap.dedent("""
            import os, time
            import ridgeline as sherpa
            client = sherpa.Client()
            trial = client.get_trial()
            out = os.environ["SHERPA_OUTPUT_DIR"]
            with open(os.path.join(out, "pid.partial"), "w") as f:
                f.write(f"{os.getpid()} {os.getppid()}")
            os.replace(os.path.join(out, "pid.partial"), os.path.join(out, "pid"))
            while not os.path.exists(os.path.join(out, "release")):
                time.sleep(0.05)
            client.send_metrics(trial=trial, iteration=1, objective=1.0)
        """)
        (workdir / "trial.py").write_text(trial)
        out = workdir / "out"
        seen: dict[str, int] = {}

        def kill_the_worker() -> None:
            wait_for(lambda: (out / "pid").exists(), "the trial to start")
            pid, wrapper = map(int, (out / "pid").read_text().split())
            seen["trial"] = pid
            os.kill(parent_of(wrapper), signal.SIGKILL)  # the dask worker process
            time.sleep(1)
            (out / "release").write_text("")  # an orphan left running would now succeed

        killer = threading.Thread(target=kill_the_worker, daemon=True)
        killer.start()
        failed = pytest.warns(RuntimeWarning, match="Trial 1 failed")
        with pytest.raises(SearchFailed, match="no trial succeeded"), failed:
            sherpa.optimize(
                parameters=[sherpa.Continuous("x", [0.0, 1.0])],
                algorithm=sherpa.algorithms.RandomSearch(max_num_trials=1),
                lower_is_better=True,
                scheduler=DaskScheduler(address),
                filename=str(workdir / "trial.py"),
                output_dir=str(out),
                verbose=0,
            )
        killer.join(timeout=30)
        state, code = trial_states(out)[1]
        assert state == "FAILED" and code is not None and code < 0
        assert process_start_time(seen["trial"]) is None  # the orphan was ended too
        assert "died mid-trial" in (out / "jobs" / "trial_1.out").read_text()
    finally:
        stop_cluster(processes)


def test_gpus_are_asked_for_only_when_wanted() -> None:
    assert "resources" not in DaskScheduler("tcp://127.0.0.1:1").submit_options()
    options = DaskScheduler("tcp://127.0.0.1:1", gpus_per_trial=2).submit_options()
    assert options["resources"] == {"GPU": 2}


def test_bad_arguments_are_refused(cluster: str) -> None:
    with pytest.raises(SchedulerError, match="gpus_per_trial must be >= 0"):
        DaskScheduler(cluster, gpus_per_trial=-1)
    with pytest.raises(SchedulerError, match="address must be"):
        DaskScheduler("")
    with pytest.raises(SchedulerError, match="no dask worker offers a GPU or slots resource"):
        DaskScheduler(cluster, gpus_per_trial=1).check()


def test_importing_ridgeline_does_not_import_dask(python: str) -> None:
    code = (
        "import sys, ridgeline, ridgeline.schedulers; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    result = subprocess.run([python, "-c", code], capture_output=True, text=True, env=env)
    assert result.stdout.strip() == "[]", result.stderr


RUNNER = """
import sys
import ridgeline as sherpa
sherpa.optimize(
    parameters=[sherpa.Continuous("x", [0.0, 1.0])],
    algorithm=sherpa.algorithms.RandomSearch(max_num_trials=2),
    lower_is_better=True,
    scheduler=sherpa.schedulers.DaskScheduler(sys.argv[3]),
    filename=sys.argv[1],
    output_dir=sys.argv[2],
    max_concurrent=2,
    verbose=0,
    resume="--resume" in sys.argv,
)
"""

# Sends a metric, then waits for the test's word; trial 1 then fails with code 3.
WAITING = """
import os, sys, time
import ridgeline as sherpa
client = sherpa.Client()
trial = client.get_trial()
out = os.environ["SHERPA_OUTPUT_DIR"]
client.send_metrics(trial=trial, iteration=1, objective=trial.parameters["x"])
open(os.path.join(out, f"sent_{trial.id}_{os.getpid()}"), "w").close()
while not os.path.exists(os.path.join(out, "release")):
    time.sleep(0.05)
sys.exit(3 if trial.id == 1 else 0)
"""


def test_a_resumed_search_reattaches_to_its_running_tasks(cluster: str, workdir: Path) -> None:
    (workdir / "runner.py").write_text(textwrap.dedent(RUNNER))
    (workdir / "trial.py").write_text(textwrap.dedent(WAITING))
    out = workdir / "out"
    argv = [sys.executable, str(workdir / "runner.py"), str(workdir / "trial.py"), str(out)]
    argv.append(cluster)
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    first = subprocess.Popen(argv, env=env)
    try:
        wait_for(lambda: len(list(out.glob("sent_*"))) == 2, "both trials to send a metric")
    finally:
        first.kill()  # the coordinator dies; its tasks run on
        first.wait()
    second = subprocess.Popen([*argv, "--resume"], env=env)
    try:
        wait_for(lambda: "Re-attached trial 2" in (out / "log.txt").read_text(), "the re-attach")
        (out / "release").write_text("")
        assert second.wait(timeout=30) == 0
    finally:
        if second.poll() is None:
            second.kill()
    states = trial_states(out)
    assert states == {1: ("FAILED", 3), 2: ("COMPLETED", 0)}
    assert len(list(out.glob("sent_*"))) == 2  # the same two processes: nothing ran again


def test_without_dask_the_scheduler_says_how_to_install_it(python: str) -> None:
    code = (
        "import sys; sys.modules['distributed'] = None\n"
        "from ridgeline.schedulers import DaskScheduler\n"
        "DaskScheduler('tcp://127.0.0.1:8786')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    result = subprocess.run([python, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode != 0
    assert "pip install ridgeline[dask]" in result.stderr


# A Core-API trial that notes its pid and sleeps until it is killed.
SLEEPING = """
import os, pathlib, time
number = os.environ["RIDGELINE_TRIAL_ID"]
pathlib.Path(os.environ["SEEN_DIR"], f"pid_{number}").write_text(str(os.getpid()))
time.sleep(600)
"""


def test_kill_with_a_frozen_coordinator_kills_the_trials_dask_tasks(
    cluster: str, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import yaml

    monkeypatch.setenv("RIDGELINE_DATA_DIR", str(workdir / "data"))
    monkeypatch.setenv("RIDGELINE_STORAGE", str(workdir / "data" / "store.db"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(workdir / "xdg"))
    seen = workdir / "seen"
    seen.mkdir()
    (workdir / "trial.py").write_text(textwrap.dedent(SLEEPING))
    config = {
        "name": "on-dask",
        "entrypoint": f"{sys.executable} trial.py",
        "hyperparameters": {"lr": {"type": "double", "minval": 0.1, "maxval": 1.0}},
        "searcher": {"name": "random", "metric": "x", "max_trials": 2,
                     "max_length": {"batches": 1}, "max_concurrent_trials": 2},
        "resources": {"slots_per_trial": 0},
        "environment": {"environment_variables": [f"SEEN_DIR={seen}"]},
        "dask": {"address": cluster},
    }  # fmt: skip
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))

    def cli(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "ridgeline.cli", *args],
            capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        assert result.returncode == 0, f"{args}:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    created = json.loads(cli("e", "create", str(workdir / "config.yaml"), str(workdir), "--json"))
    wait_for(lambda: len(list(seen.glob("pid_*"))) == 2, "the two trials to start", timeout=60)
    time.sleep(0.1)  # the pids are written whole by then
    pids = {int(p.name[4:]): int(p.read_text()) for p in seen.glob("pid_*")}
    store = open_store(os.environ["RIDGELINE_STORAGE"])
    coordinator = None
    try:
        coordinator = store.get_experiment(created["id"]).coordinator["pid"]
        os.kill(coordinator, signal.SIGSTOP)
        said = cli("e", "kill", str(created["id"]), "--timeout", "1")
        for number in pids:
            assert f"killed trial {number}'s dask task" in said, said
        wait_for(lambda: not any(process_alive(pid) for pid in pids.values()), "the trials to end")
        assert [t.state for t in store.list_trials(created["id"])] == ["CANCELED", "CANCELED"]
    finally:
        if coordinator is not None:
            try:
                os.kill(coordinator, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in pids.values():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        store.close()
