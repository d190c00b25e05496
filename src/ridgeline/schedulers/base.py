"""The scheduler interface: where trial processes run."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

    from ridgeline.engine.coordinator import Coordinator


@dataclass
class Job:
    """A submitted trial process. ``info`` is what the store keeps to find it again."""

    name: str
    info: dict[str, Any] = field(default_factory=dict)
    handle: Any = None  # scheduler-private (e.g. a Popen); None after re-attaching


class Scheduler:
    """Runs commands. Subclasses: local processes, SLURM, Grid Engine, ...

    A subclass implements ``submit``, ``wait`` and ``kill``; one written to SHERPA's interface
    (``submit_job``, ``get_status``, ``kill_job``) instead runs through
    ``schedulers.polling.PollingScheduler``, which ``optimize`` applies by itself.
    """

    output_dir: str = ""
    #: Its trials run inside the coordinator's event loop, on the simulated clock that
    #: ``loop_factory`` makes: the coordinator then computes suggestions inline (they take no
    #: simulated time and come in a reproducible order) instead of on a worker thread.
    virtual_time: bool = False

    def capacity(self) -> int | None:
        """How many jobs may run at once (None: no limit of the scheduler's own)."""
        return None

    def callback_host(self) -> str:
        """The address of this machine that the scheduler's trials reach it on: loopback
        for trials on this machine; a cluster backend's nodes may need another."""
        return "127.0.0.1"

    def check(self) -> None:  # noqa: B027 - optional hook
        """Raise ``SchedulerError`` for a bad configuration before anything runs."""

    def loop_factory(self) -> Callable[[], asyncio.AbstractEventLoop] | None:
        """What makes the event loop the coordinator runs on (None: asyncio's default)."""
        return None

    def attach(self, coordinator: Coordinator) -> None:  # noqa: B027 - optional hook
        """The coordinator whose trials this scheduler runs, before its first ``submit``.
        Trials that run inside this process (the simulated scheduler's) call it directly,
        as the HTTP API does for trial processes."""

    def detach(self, abandon: bool) -> None:  # noqa: B027 - optional hook
        """The coordinator's run is over (``abandon``: it stops while trials run on, for a
        later coordinator to re-attach to)."""

    def submit(
        self, command: Sequence[str], env: Mapping[str, str], name: str, cwd: str | None = None
    ) -> Job:
        """Start ``command`` with exactly ``env``, in ``cwd`` (None: the current directory)."""
        raise NotImplementedError(f"{type(self).__name__} must implement submit")

    async def wait(self, job: Job) -> int | None:
        """Wait for the job to end; its exit code (negative: killed by that signal), or None
        when it cannot be known (a re-attached process whose end was never recorded)."""
        raise NotImplementedError(f"{type(self).__name__} must implement wait")

    def kill(self, job: Job, force: bool = False) -> None:
        """Ask the job to end (SIGTERM or the scheduler's equivalent); ``force``: SIGKILL."""
        raise NotImplementedError(f"{type(self).__name__} must implement kill")

    async def exited(self, job: Job, status: int) -> None:  # noqa: B027 - optional hook
        """The job's own word (through the coordinator) that its process ended with the
        shell's ``status``; a scheduler that learns of ends by polling may stop waiting."""

    def reattach(self, info: Mapping[str, Any], name: str) -> Job | None:
        """The job described by ``info`` if it still runs, else None."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the scheduler holds."""
