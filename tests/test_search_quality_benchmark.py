"""The search-quality benchmark's results file is a cache of one side-by-side run: a saved run
counts only while the code that made it is the code installed."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "search_quality.py"


def bench_command(out: Path, seeds: int = 2) -> list[str]:
    return [
        sys.executable,
        str(SCRIPT),
        "--quick",
        "--problems",
        "branin",
        "--optimizers",
        "ridgeline-random",
        "--seeds",
        str(seeds),
        "--jobs",
        "1",
        "--no-timing",
        "--out",
        str(out),
    ]


def bench(out: Path, check: bool = True, seeds: int = 2) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        bench_command(out, seeds), capture_output=True, text=True, timeout=300, check=check
    )


def load(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(gzip.decompress(out.read_bytes()))
    return data


def test_runs_of_other_code_are_set_aside_and_redone(tmp_path: Path) -> None:
    out = tmp_path / "search_quality.json.gz"
    assert "2 runs to do" in bench(out).stderr
    data = load(out)
    runs = data["runs"]
    assert len(runs) == 2
    code = {r["code"] for r in runs.values()}
    assert len(code) == 1 and "ridgeline RandomSearch src" in code.pop()

    again = bench(out).stderr  # nothing changed: nothing to redo
    assert "runs to do" not in again and "set aside" not in again
    assert load(out)["runs"] == runs

    stale, kept = sorted(runs)
    runs[stale]["code"] = "ridgeline RandomSearch src 000000000000; numpy 0.0"
    out.write_bytes(gzip.compress(json.dumps(data).encode()))
    third = bench(out).stderr
    assert "set aside 1 saved runs" in third and "1 runs to do" in third
    after = load(out)["runs"]
    assert after[stale]["code"] == after[kept]["code"] == runs[kept]["code"]
    assert after[stale]["best"] == runs[stale]["best"]  # same seed, same code: same run


def test_a_damaged_results_file_is_refused_and_kept(tmp_path: Path) -> None:
    for name, content in [
        ("cut.json.gz", gzip.compress(b'{"format": 1, "runs": {')[:-4]),
        ("plain.json.gz", b'{"format": 1}'),
        ("list.json", b"[1, 2]"),
    ]:
        out = tmp_path / name
        out.write_bytes(content)
        done = bench(out, check=False)
        assert done.returncode != 0 and str(out) in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
        assert out.read_bytes() == content


def test_a_killed_benchmark_keeps_every_finished_run(tmp_path: Path) -> None:
    import os
    import signal
    import time

    out = tmp_path / "search_quality.json.gz"
    args = [sys.executable, str(SCRIPT), "--quick", "--problems", "branin", "hartmann6"]
    args += ["--optimizers", "ridgeline-random", "ridgeline-gp", "--seeds", "2", "--jobs", "1"]
    proc = subprocess.Popen(
        [*args, "--no-timing", "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while not out.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the benchmark and its worker, mid-run
    proc.wait()
    saved = load(out)["runs"]  # written atomically: readable, whatever the moment
    assert 1 <= len(saved) < 8

    rest = subprocess.run(
        [*args, "--no-timing", "--out", str(out)], capture_output=True, text=True, timeout=300
    )
    assert rest.returncode == 0, rest.stderr
    assert f"{8 - len(saved)} runs to do" in rest.stderr
    after = load(out)["runs"]
    assert len(after) == 8 and all(after[k] == saved[k] for k in saved)


def test_only_a_change_to_the_code_itself_sets_runs_aside(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    monkeypatch.syspath_prepend(str(SCRIPT.parent))  # its problem module sits beside it
    spec = importlib.util.spec_from_file_location("search_quality_under_test", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclasses look it up
    spec.loader.exec_module(module)
    code_only = module._code_only

    def source(doc: str, gap: str, why: str, comment: str) -> bytes:
        return f'"""{doc}"""\n_GAP = {gap}{comment}\n\n\ndef f(x):\n    {why}return x\n'.encode()

    before = source("A sampler.", "0.01", '"""Why."""\n    ', "  # a comment")
    prose = source("A sampler, said better.", "0.01", '"""Why not."""\n    ', "")
    layout = source("", "(\n    0.01\n)", "", "  # only code")
    changed = source("A sampler.", "0.02", '"""Why."""\n    ', "  # a comment")
    assert code_only(before) == code_only(prose) == code_only(layout)
    assert code_only(before) != code_only(changed)
    broken = b"def f(:\n"
    assert code_only(broken) == broken  # a file being edited: its bytes


def test_a_full_disk_stops_the_benchmark_and_keeps_the_saved_runs(tmp_path: Path) -> None:
    import resource

    out = tmp_path / "search_quality.json.gz"
    bench(out)  # two runs saved
    before = out.read_bytes()
    limit = len(before) + 16  # the next save, with more runs, no longer fits: EFBIG, as ENOSPC

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    command = bench_command(out, seeds=4)
    full = subprocess.run(
        command, capture_output=True, text=True, timeout=300, preexec_fn=small_files
    )
    assert full.returncode != 0
    assert f"{out}: could not save the results" in full.stderr
    assert "Traceback" not in full.stderr
    assert out.read_bytes() == before  # every run saved before is kept as it was
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # no half-written file
    assert "2 runs to do" in bench(out, seeds=4).stderr  # with room again: only the rest
    assert len(load(out)["runs"]) == 4


def _workers_of(pid: int) -> list[int]:
    """The benchmark's pool workers: its children started by multiprocessing's spawn."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid and b"spawn_main" in command:
            found.append(int(entry.name))
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_killed_benchmark_takes_its_workers_with_it(tmp_path: Path) -> None:
    import os
    import signal
    import time

    from ridgeline.engine.run import process_alive

    out = tmp_path / "out.json.gz"
    command = bench_command(out, seeds=50)
    command[command.index("ridgeline-random")] = "ridgeline-gp"  # about a second a run
    proc = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 120
        while not out.exists() and time.monotonic() < deadline:
            time.sleep(0.05)  # the first run saved: the worker is past its start
        workers = _workers_of(proc.pid)
        assert out.exists() and workers, "the benchmark started no worker"
        # a stopped worker would never notice on its own that the benchmark is gone
        os.kill(workers[0], signal.SIGSTOP)
        os.kill(proc.pid, signal.SIGKILL)  # the benchmark alone
        proc.wait()
        deadline = time.monotonic() + 30
        while process_alive(workers[0]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not process_alive(workers[0]), "the worker outlived the benchmark"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
