"""What SLURMScheduler and SGEScheduler share (``schedulers/batch.py``), on the real daemons:
how a kill ends a running job, one that ignores SIGTERM, and one still pending."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest

from ridgeline.schedulers import SGEScheduler, SLURMScheduler
from ridgeline.schedulers.batch import BatchScheduler

from .test_slurm import wait_for

#: Each batch system: its scheduler, the submit option that keeps a job pending, its fixture.
SYSTEMS = {
    "slurm": (SLURMScheduler, "--begin=now+3600"),
    "sge": (SGEScheduler, "-h"),
}


@pytest.mark.parametrize("system", sorted(SYSTEMS))
def test_kill_ends_running_and_pending_jobs_as_killed(
    system: str, workdir: Path, request: pytest.FixtureRequest
) -> None:
    request.getfixturevalue(system)  # the daemons, brought up
    kind, hold = SYSTEMS[system]
    scheduler: BatchScheduler = kind(output_dir=str(workdir))
    scheduler.check()
    held: BatchScheduler = kind(hold, output_dir=str(workdir))  # stays pending
    sleep = [sys.executable, "-c", "import time; time.sleep(60)"]
    stubborn = [
        sys.executable,
        "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)",
    ]

    async def scenario() -> list[int | None]:
        polite = scheduler.submit(sleep, dict(os.environ), "polite")
        ignores = scheduler.submit(stubborn, dict(os.environ), "stubborn")
        out = Path(ignores.info["output"])
        await asyncio.to_thread(
            wait_for, lambda: out.exists() and "ready" in out.read_text(), "stubborn to start"
        )
        pending = held.submit(sleep, dict(os.environ), "pending")
        scheduler.kill(polite)
        scheduler.kill(ignores)  # ignored: SIGTERM does not end it
        await asyncio.sleep(0.5)
        scheduler.kill(ignores, force=True)
        held.kill(pending)
        return list(
            await asyncio.gather(
                scheduler.wait(polite), scheduler.wait(ignores), held.wait(pending)
            )
        )

    started = time.monotonic()
    codes = asyncio.run(scenario())
    scheduler.close()
    held.close()
    # SIGTERM, recorded by the exit wrapper; force-killed, no record left; cancelled or
    # deleted before it ran.
    assert codes == [-15, -9, -15]
    assert time.monotonic() - started < 30
