"""Reports under load: big and concurrent requests are committed off the event loop, once each.

Real trial processes, a real SQLite file, real HTTP.
"""

from __future__ import annotations

import csv
import json
import textwrap
from collections import Counter
from pathlib import Path

import ridgeline as sherpa
from ridgeline.store import open_store

# The bound on a health check while 100,000 reports are committed. Committed on the loop they
# froze it for tens of seconds; off the loop the longest pause left is decoding the 8 MB body
# (about 0.2 s on an idle machine). Loose enough for a loaded test machine, far below the freeze.
HEALTH_BOUND_S = 2.0

BIG_REPORT = """
    import json, os, threading, time
    from ridgeline.trial.client import TrialClient
    from ridgeline.trial.http import Connection

    client = TrialClient()
    trial = client.get_trial()
    host, port = client.master.removeprefix("http://").rsplit(":", 1)
    reports = [{"step": i, "objective": 1.0 / i, "context": {"i": i}} for i in range(1, 100_001)]
    # The most one request may carry; encoded before the clock starts (it holds the GIL).
    bodies = [
        json.dumps({"reports": reports[k : k + 10_000]}).encode()
        for k in range(0, len(reports), 10_000)
    ]
    whole = json.dumps({"reports": reports}).encode()
    headers = {"Authorization": f"Bearer {client.token}", "Content-Type": "application/json"}
    latencies, asked, done = [], [], threading.Event()

    def poll():
        health = Connection(host, int(port))
        while not done.is_set():
            start = time.perf_counter()
            asked.append(start)
            status, _ = health.request("GET", "/api/v1/health", None, {})
            assert status == 200
            latencies.append(time.perf_counter() - start)
            time.sleep(0.01)

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.2)
    path = f"/api/v1/trials/{trial['id']}/metrics"
    sender = Connection(host, int(port))
    too_many, _ = sender.request("POST", path, whole, headers)  # over the per-request limit
    started = time.perf_counter()
    accepted = 0
    for body in bodies:
        status, answer = sender.request("POST", path, body, headers)
        accepted += json.loads(answer)["accepted"]
    took = time.perf_counter() - started
    during = sum(1 for t in asked if started < t < started + took)
    time.sleep(0.1)
    done.set()
    poller.join()
    with open(os.path.join(os.environ["SHERPA_OUTPUT_DIR"], "big.json"), "w") as f:
        json.dump(
            {"accepted": accepted, "too_many": too_many, "latencies": latencies, "during": during},
            f,
        )
"""


def _script(path: Path, body: str) -> Path:
    path.write_text(textwrap.dedent(body))
    return path


def _optimize(workdir: Path, trial: Path, n: int, **kwargs: object) -> dict:
    return sherpa.optimize(
        parameters=[sherpa.Continuous("x", [0.0, 1.0])],
        algorithm=sherpa.algorithms.RandomSearch(max_num_trials=n),
        lower_is_better=True,
        scheduler=sherpa.schedulers.LocalScheduler(),
        filename=str(trial),
        output_dir=str(workdir / "out"),
        verbose=0,
        seed=0,
        **kwargs,  # type: ignore[arg-type]
    )


def _stored_steps(workdir: Path) -> Counter[tuple[int, int]]:
    store = open_store(workdir / "out" / "ridgeline.db")
    try:
        (experiment,) = store.list_experiments()
        return Counter((m.trial_id, m.step) for m in store.read_metrics(experiment.id))
    finally:
        store.close()


def _csv_rows(workdir: Path) -> list[dict[str, str]]:
    with open(workdir / "out" / "results.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_huge_report_does_not_block_other_requests(workdir: Path) -> None:
    _optimize(workdir, _script(workdir / "trial.py", BIG_REPORT), 1)
    big = json.loads((workdir / "out" / "big.json").read_text())
    assert big["too_many"] == 413
    assert big["accepted"] == 100_000
    assert max(big["latencies"]) < HEALTH_BOUND_S, max(big["latencies"])
    assert big["during"] >= 3  # health was asked while the report was being committed
    stored = _stored_steps(workdir)
    assert len(stored) == 100_000 and set(stored.values()) == {1}
    table = _csv_rows(workdir)
    assert Counter(r["Status"] for r in table) == {"INTERMEDIATE": 100_000, "COMPLETED": 1}


MANY_REPORTS = """
    import csv, json, os, time
    import ridgeline as sherpa

    client = sherpa.Client()
    trial = client.get_trial()
    for i in range(1, 301):
        late = {"late": i} if i > 150 else {}  # a column that appears mid-run
        client.send_metrics(trial, i, trial.parameters["x"] + 1.0 / i, late)
    # results.csv shows this trial's reports soon after they were acknowledged.
    path = os.path.join(os.environ["SHERPA_OUTPUT_DIR"], "results.csv")
    start, seen = time.monotonic(), 0
    while time.monotonic() - start < 10 and seen < 300:
        time.sleep(0.05)
        with open(path, newline="") as f:
            seen = sum(1 for r in csv.DictReader(f) if r["Trial-ID"] == str(trial.id))
    with open(os.path.join(os.environ["SHERPA_OUTPUT_DIR"], f"seen_{trial.id}.json"), "w") as f:
        json.dump({"seen": seen, "waited": time.monotonic() - start}, f)
"""


def test_results_csv_is_current_during_the_run_and_complete_after(workdir: Path) -> None:
    _optimize(workdir, _script(workdir / "trial.py", MANY_REPORTS), 8, max_concurrent=8)
    for number in range(1, 9):
        seen = json.loads((workdir / "out" / f"seen_{number}.json").read_text())
        assert seen["seen"] >= 300, seen
        assert seen["waited"] < 5, seen  # written within about a second (a loaded machine)
    table = _csv_rows(workdir)
    assert list(table[0]) == ["Trial-ID", "Status", "Iteration", "x", "Objective", "late"]
    intermediate = Counter(
        (int(r["Trial-ID"]), int(r["Iteration"])) for r in table if r["Status"] == "INTERMEDIATE"
    )
    assert set(intermediate.values()) == {1}
    assert set(intermediate) == {(t, i) for t in range(1, 9) for i in range(1, 301)}
    assert sorted(int(r["Trial-ID"]) for r in table if r["Status"] == "COMPLETED") == list(
        range(1, 9)
    )
    late = [r["late"] for r in table if r["Status"] == "INTERMEDIATE"]
    assert sum(1 for v in late if v) == 8 * 150  # rows written before the column existed too
    assert len(_stored_steps(workdir)) == 8 * 300


RETRIES = """
    import json, os, threading
    from ridgeline.trial.client import TrialClient
    from ridgeline.trial.http import Connection

    def reports(first, last):
        return [{"step": i, "objective": 1.0 / i, "context": {}} for i in range(first, last + 1)]

    client = TrialClient()
    trial = client.get_trial()
    accepted = [client.report(reports(1, 50))["accepted"]]
    accepted.append(client.report(reports(1, 50))["accepted"])  # a retry: nothing new

    def send(first, last):  # overlapping requests in flight together, as retries can be
        accepted.append(TrialClient().report(reports(first, last))["accepted"])

    threads = [threading.Thread(target=send, args=r) for r in [(40, 100), (60, 120), (1, 120)]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # One bad report refuses its whole request: nothing of it is stored.
    host, port = client.master.removeprefix("http://").rsplit(":", 1)
    bad = reports(200, 210) + [{"step": "eleven", "objective": 1.0}]
    status, body = Connection(host, int(port)).request(
        "POST",
        f"/api/v1/trials/{trial['id']}/metrics",
        json.dumps({"reports": bad}).encode(),
        {"Authorization": f"Bearer {client.token}"},
    )
    with open(os.path.join(os.environ["SHERPA_OUTPUT_DIR"], "retries.json"), "w") as f:
        json.dump({"accepted": accepted, "bad": [status, body.decode()]}, f)
"""


def test_retried_and_racing_reports_are_stored_and_counted_once(workdir: Path) -> None:
    _optimize(workdir, _script(workdir / "trial.py", RETRIES), 1)
    result = json.loads((workdir / "out" / "retries.json").read_text())
    assert result["accepted"][:2] == [50, 0]
    assert sum(result["accepted"]) == 120  # every report acknowledged as new exactly once
    status, body = result["bad"]
    assert status == 400 and "eleven" in body
    stored = _stored_steps(workdir)
    assert sorted(step for _, step in stored) == list(range(1, 121))
    assert set(stored.values()) == {1}
    table = _csv_rows(workdir)
    steps = [int(r["Iteration"]) for r in table if r["Status"] == "INTERMEDIATE"]
    assert sorted(steps) == list(range(1, 121))
