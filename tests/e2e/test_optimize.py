"""Runner mode end to end: real trial processes, a real SQLite file, a real HTTP coordinator."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from tests.runner_script import write_runner

import ridgeline as sherpa
from ridgeline.errors import ConfigError, SchedulerError, SearchFailed
from ridgeline.store import open_store

PARAMS = [sherpa.Continuous("x", [0.0, 1.0]), sherpa.Choice("kind", ["a", "b"])]


def script(path: Path, body: str) -> Path:
    path.write_text(textwrap.dedent(body))
    return path


def run(workdir: Path, trial: Path, n: int = 3, **kwargs) -> dict:
    kwargs.setdefault("max_concurrent", 2)
    kwargs.setdefault("verbose", 0)
    return sherpa.optimize(
        parameters=kwargs.pop("parameters", PARAMS),
        algorithm=kwargs.pop("algorithm", sherpa.algorithms.RandomSearch(max_num_trials=n)),
        lower_is_better=kwargs.pop("lower_is_better", True),
        scheduler=kwargs.pop("scheduler", sherpa.schedulers.LocalScheduler()),
        filename=str(trial),
        output_dir=str(workdir / "out"),
        seed=kwargs.pop("seed", 1),
        **kwargs,
    )


def rows(workdir: Path) -> list[dict]:
    with open(workdir / "out" / "results.csv") as handle:
        return list(csv.DictReader(handle))


def trial_states(workdir: Path) -> dict[int, tuple[str, int | None]]:
    store = open_store(workdir / "out" / "ridgeline.db")
    try:
        (experiment,) = store.list_experiments()
        return {t.number: (t.state, t.exit_code) for t in store.list_trials(experiment.id)}
    finally:
        store.close()


GOOD = """
    import json, os, sys
    import ridgeline as sherpa
    client = sherpa.Client()
    trial = client.get_trial()
    env = {k: v for k, v in os.environ.items() if k.startswith(("SHERPA_", "RIDGELINE_", "CUDA"))}
    with open(os.path.join(env["SHERPA_OUTPUT_DIR"], f"env_{trial.id}.json"), "w") as f:
        json.dump(env, f)
    for i in range(3):
        client.send_metrics(trial=trial, iteration=i, objective=trial.parameters["x"] + i,
                            context={"double": 2 * i})
"""


def test_runner_finishes_and_records_everything(workdir: Path) -> None:
    trial = script(workdir / "trial.py", GOOD)
    best = run(workdir, trial, n=4)
    states = trial_states(workdir)
    assert states == {i: ("COMPLETED", 0) for i in range(1, 5)}
    table = rows(workdir)
    assert list(table[0]) == ["Trial-ID", "Status", "Iteration", "kind", "x", "Objective", "double"]
    assert sum(r["Status"] == "INTERMEDIATE" for r in table) == 12
    assert sum(r["Status"] == "COMPLETED" for r in table) == 4
    finals = [r for r in table if r["Status"] == "COMPLETED"]
    assert best["Objective"] == min(float(r["Objective"]) for r in finals)
    assert set(best) == {"Trial-ID", "Iteration", "kind", "x", "Objective", "double"}
    out = workdir / "out"
    env = json.loads((out / "env_1.json").read_text())
    assert env["SHERPA_TRIAL_ID"] == "1" and env["RIDGELINE_TRIAL_ID"] == "1"
    assert env["SHERPA_OUTPUT_DIR"] == str(out)
    assert env["SHERPA_RESOURCE"] == "" and "CUDA_VISIBLE_DEVICES" not in env
    assert (out / "jobs" / "trial_1.out").exists()
    assert "Submitting Trial 4" in (out / "log.txt").read_text()
    store = open_store(out / "ridgeline.db")
    try:
        kinds = [e.kind for e in store.read_events(1)]
    finally:
        store.close()
    assert kinds[0] == "coordinator_started"
    for kind in ("trial_created", "trial_started", "trial_exited"):
        assert kinds.count(kind) == 4
    assert kinds.count("searcher_done") == 1


def test_resources_become_cuda_visible_devices_and_cap_concurrency(workdir: Path) -> None:
    trial = script(
        workdir / "trial.py",
        """
        import os, time
        import ridgeline as sherpa
        client = sherpa.Client()
        trial = client.get_trial()
        out = os.environ["SHERPA_OUTPUT_DIR"]
        with open(os.path.join(out, f"span_{trial.id}"), "w") as f:
            start = time.time(); time.sleep(0.3)
            cuda, res = os.environ["CUDA_VISIBLE_DEVICES"], os.environ["SHERPA_RESOURCE"]
            f.write(f"{start} {time.time()} {cuda} {res}")
        client.send_metrics(trial=trial, iteration=1, objective=1.0)
        """,
    )
    scheduler = sherpa.schedulers.LocalScheduler(resources=[0, 1])
    run(workdir, trial, n=5, max_concurrent=4, scheduler=scheduler)
    spans = []
    for path in (workdir / "out").glob("span_*"):
        start, end, cuda, resource = path.read_text().split()
        assert cuda == resource and cuda in {"0", "1"}
        spans.append((float(start), float(end), cuda))
    assert len(spans) == 5
    for t in sorted(s for s, _, _ in spans):
        overlapping = [c for s, e, c in spans if s <= t < e]
        assert len(overlapping) <= 2
        assert len(set(overlapping)) == len(overlapping)  # never two trials on one entry


def test_failed_trials_are_marked_with_exit_code_and_logged(workdir: Path) -> None:
    trial = script(
        workdir / "trial.py",
        """
        import sys
        import ridgeline as sherpa
        client = sherpa.Client()
        trial = client.get_trial()
        if trial.id == 2:
            print("about to fail: broken data loader", flush=True)
            sys.exit(3)
        client.send_metrics(trial=trial, iteration=1, objective=float(trial.id))
        """,
    )
    run(workdir, trial, n=3, max_concurrent=1)
    states = trial_states(workdir)
    assert states[2] == ("FAILED", 3)
    assert states[1][0] == states[3][0] == "COMPLETED"
    log = (workdir / "out" / "log.txt").read_text()
    assert "Trial 2 failed (exit code 3)" in log
    assert "about to fail: broken data loader" in log


def test_resubmit_failed_trials_reruns_them(workdir: Path) -> None:
    trial = script(
        workdir / "trial.py",
        """
        import os, sys
        import ridgeline as sherpa
        client = sherpa.Client()
        trial = client.get_trial()
        flag = os.path.join(os.environ["SHERPA_OUTPUT_DIR"], "failed_once")
        if not os.path.exists(flag):
            open(flag, "w").close()
            sys.exit(1)
        client.send_metrics(trial=trial, iteration=1, objective=trial.parameters["x"])
        """,
    )
    run(workdir, trial, n=2, max_concurrent=1, resubmit_failed_trials=True)
    states = trial_states(workdir)
    assert states[1] == ("FAILED", 1)
    assert [s for s, _ in states.values()].count("COMPLETED") == 2
    assert len(states) == 3


def test_crash_by_signal_is_failed(workdir: Path) -> None:
    trial = script(
        workdir / "trial.py",
        """
        import os, signal
        import ridgeline as sherpa
        trial = sherpa.Client().get_trial()
        os.kill(os.getpid(), signal.SIGSEGV)
        """,
    )
    with pytest.raises(SearchFailed, match="no trial succeeded"):
        run(workdir, trial, n=1)
    assert trial_states(workdir)[1] == ("FAILED", -signal.SIGSEGV)
    assert "killed by signal 11" in (workdir / "out" / "log.txt").read_text()


def test_stopping_rule_ends_trial_gracefully(workdir: Path) -> None:
    trial = script(
        workdir / "trial.py",
        """
        import os, signal, sys, time
        import ridgeline as sherpa
        client = sherpa.Client()
        trial = client.get_trial()
        out = os.environ["SHERPA_OUTPUT_DIR"]
        def on_term(signum, frame):
            open(os.path.join(out, f"terminated_{trial.id}"), "w").close()
            sys.exit(0)
        signal.signal(signal.SIGTERM, on_term)
        for i in range(1, 40):
            value = 10.0 if trial.id == 3 else 1.0 / i
            client.send_metrics(trial=trial, iteration=i, objective=value)
            if trial.id == 3 and client.should_stop():
                open(os.path.join(out, "saw_stop"), "w").close()
            time.sleep(0.02 if trial.id != 3 else 0.2)
        """,
    )
    rule = sherpa.algorithms.MedianStoppingRule(min_iterations=2, min_trials=2)
    run(workdir, trial, n=3, max_concurrent=1, stopping_rule=rule)
    states = trial_states(workdir)
    assert states[3][0] == "STOPPED"
    assert (workdir / "out" / "terminated_3").exists()
    table = rows(workdir)
    assert any(r["Trial-ID"] == "3" and r["Status"] == "STOPPED" for r in table)


def test_trial_ignoring_sigterm_is_killed_after_grace(workdir: Path) -> None:
    trial = script(
        workdir / "trial.py",
        """
        import signal, time
        import ridgeline as sherpa
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        client = sherpa.Client()
        trial = client.get_trial()
        for i in range(1, 1000):
            client.send_metrics(trial=trial, iteration=i, objective=100.0 if trial.id == 3 else 1.0)
            time.sleep(0.05)
            if trial.id != 3 and i == 3:
                break
        """,
    )
    rule = sherpa.algorithms.MedianStoppingRule(min_iterations=2, min_trials=2)
    start = time.monotonic()
    run(workdir, trial, n=3, max_concurrent=1, stopping_rule=rule, grace_period=0.5)
    assert time.monotonic() - start < 30
    assert trial_states(workdir)[3] == ("STOPPED", -signal.SIGKILL)


def test_bad_input_is_refused_before_anything_runs(workdir: Path) -> None:
    with pytest.raises(ConfigError, match="missing.py"):
        run(workdir, workdir / "missing.py")
    assert not (workdir / "out").exists()
    trial = script(workdir / "trial.py", GOOD)
    with pytest.raises(SchedulerError, match="no-such-program"):
        sherpa.schedulers.LocalScheduler(submit_options="no-such-program --x")
    with pytest.raises(SchedulerError, match="empty"):
        sherpa.schedulers.LocalScheduler(resources=[])
    with pytest.raises(ConfigError, match="command or filename"):
        sherpa.optimize(
            PARAMS, sherpa.algorithms.RandomSearch(1), True, sherpa.schedulers.LocalScheduler()
        )
    with pytest.raises(ConfigError, match="max_concurrent"):
        run(workdir, trial, max_concurrent=0)


def test_non_numeric_objective_refused_at_client_and_nan_recorded(workdir: Path) -> None:
    trial = script(
        workdir / "trial.py",
        """
        import math, os
        import ridgeline as sherpa
        from ridgeline.errors import ObservationError
        client = sherpa.Client()
        trial = client.get_trial()
        try:
            client.send_metrics(trial=trial, iteration=1, objective="0.5")
        except ObservationError as exc:
            open(os.path.join(os.environ["SHERPA_OUTPUT_DIR"], "refused"), "w").write(str(exc))
        client.send_metrics(trial=trial, iteration=1, objective=math.nan if trial.id == 1 else 2.0)
        """,
    )
    best = run(workdir, trial, n=2, max_concurrent=1)
    assert "'0.5'" in (workdir / "out" / "refused").read_text()
    assert best["Trial-ID"] == 2 and best["Objective"] == 2.0
    assert any(r["Objective"] == "nan" for r in rows(workdir))


def test_existing_output_dir_needs_resume(workdir: Path) -> None:
    trial = script(workdir / "trial.py", GOOD)
    run(workdir, trial, n=1)
    with pytest.raises(ConfigError, match="resume=True"):
        run(workdir, trial, n=1)


X_KIND = json.dumps({"params": "x_kind"})  # the runner script searches x and kind

SLOW = """
import os, time
import ridgeline as sherpa
client = sherpa.Client()
trial = client.get_trial()
out = os.environ["SHERPA_OUTPUT_DIR"]
open(os.path.join(out, f"started_{trial.id}_{os.getpid()}"), "w").close()
for i in range(1, 6):
    time.sleep(0.4 if trial.id <= 2 else 0.05)
    client.send_metrics(trial=trial, iteration=i, objective=trial.parameters["x"] * i)
"""


def test_coordinator_killed_and_resumed_keeps_everything(workdir: Path) -> None:
    runner = write_runner(workdir)
    trial = script(workdir / "trial.py", SLOW)
    out = workdir / "out"
    proc = subprocess.Popen([sys.executable, str(runner), str(trial), str(out), X_KIND])
    # wait until trials 1 and 2 have sent some metrics, then kill the coordinator outright
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if (out / "results.csv").exists() and len(rows(workdir)) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {(r["Trial-ID"], r["Iteration"]): r for r in rows(workdir)}
    assert before
    subprocess.run(
        [sys.executable, str(runner), str(trial), str(out), X_KIND, "--resume"],
        check=True,
        timeout=120,
    )
    after = rows(workdir)
    keyed = {(r["Trial-ID"], r["Iteration"], r["Status"]): r for r in after}
    for (tid, it), row in before.items():
        assert keyed[(tid, it, "INTERMEDIATE")] == row  # byte for byte in the CSV
    states = trial_states(workdir)
    assert len(states) == 6  # the budget was not spent twice
    assert all(state == "COMPLETED" for state, _ in states.values())
    # every trial reported all 5 iterations exactly once
    inter = [(r["Trial-ID"], r["Iteration"]) for r in after if r["Status"] == "INTERMEDIATE"]
    assert len(inter) == len(set(inter)) == 30
    # trials 1 and 2 were running when the coordinator died: they were re-attached (one process)
    for number in (1, 2):
        assert len(list(out.glob(f"started_{number}_*"))) == 1


def test_resume_reruns_trials_whose_process_died_under_the_same_id(workdir: Path) -> None:
    runner = write_runner(workdir)
    trial = script(workdir / "trial.py", SLOW)
    out = workdir / "out"
    proc = subprocess.Popen([sys.executable, str(runner), str(trial), str(out), X_KIND])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(list(out.glob("started_*"))) < 2:
        time.sleep(0.05)
    time.sleep(0.5)  # let them report something
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    for path in out.glob("started_*"):  # the machine "lost" the running trials as well:
        # their whole process group, so no exit status was recorded either
        os.killpg(os.getpgid(int(path.name.split("_")[2])), signal.SIGKILL)
    subprocess.run(
        [sys.executable, str(runner), str(trial), str(out), X_KIND, "--resume"],
        check=True,
        timeout=120,
    )
    store = open_store(out / "ridgeline.db")
    try:
        (experiment,) = store.list_experiments()
        trials = store.list_trials(experiment.id)
    finally:
        store.close()
    assert [t.number for t in trials] == [1, 2, 3, 4, 5, 6]
    assert all(t.state == "COMPLETED" for t in trials)
    assert trials[0].restarts == 1 and trials[1].restarts == 1
    for number in (1, 2):  # run twice, under the same id
        assert len(list(out.glob(f"started_{number}_*"))) == 2
    inter = [
        (r["Trial-ID"], r["Iteration"]) for r in rows(workdir) if r["Status"] == "INTERMEDIATE"
    ]
    assert len(inter) == len(set(inter)) == 30


@pytest.mark.parametrize(
    "algorithm",
    [
        sherpa.algorithms.SuccessiveHalving(r=1, R=9, eta=3, max_finished_configs=1),
        sherpa.algorithms.Hyperband(r=1, R=3, eta=3),
    ],
    ids=["successive_halving", "hyperband"],
)
def test_halving_trials_load_their_parents(workdir: Path, algorithm: sherpa.Algorithm) -> None:
    trial = script(
        workdir / "trial.py",
        """
        import os
        import ridgeline as sherpa
        client = sherpa.Client()
        trial = client.get_trial()
        p = trial.parameters
        out = os.environ["SHERPA_OUTPUT_DIR"]
        epochs = 0
        if p["load_from"]:
            with open(os.path.join(out, p["load_from"])) as f:
                epochs = int(f.read())
        for i in range(int(p["resource"])):
            epochs += 1
            client.send_metrics(trial=trial, iteration=epochs, objective=p["x"] + 1 / epochs)
        with open(os.path.join(out, p["save_to"]), "w") as f:
            f.write(str(epochs))
        """,
    )
    run(
        workdir,
        trial,
        algorithm=algorithm,
        max_concurrent=2,
        parameters=[sherpa.Continuous("x", [0.0, 1.0])],
    )
    table = [r for r in rows(workdir) if r["Status"] == "COMPLETED"]
    saved = {r["save_to"]: int((workdir / "out" / r["save_to"]).read_text()) for r in table}
    top = "2" if isinstance(algorithm, sherpa.algorithms.SuccessiveHalving) else "1"
    assert any(r["rung"] == top for r in table)
    for r in table:
        expected = int(r["resource"])
        if r["load_from"]:
            expected += saved[r["load_from"]]  # trained on from the parent's weights
        assert saved[r["save_to"]] == expected
