"""A dask task whose trial froze is still running for dask; the heartbeat tells: the trial is
declared lost, its process group killed on the worker, and the trial FAILED."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("distributed", reason="dask.distributed is not installed (pip install .[dask])")

from ridgeline.engine.run import process_alive  # noqa: E402
from ridgeline.schedulers import DaskScheduler  # noqa: E402

from .test_dask import start_cluster, stop_cluster  # noqa: E402
from .test_heartbeat_batch import frozen_search  # noqa: E402


def test_a_frozen_dask_trial_is_declared_lost_and_killed(workdir: Path) -> None:
    address, processes = start_cluster(workdir / "dask")
    try:
        _, pid = frozen_search(workdir, DaskScheduler(address))
        assert not process_alive(pid)
    finally:
        stop_cluster(processes)
