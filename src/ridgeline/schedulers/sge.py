"""Trials as (Son of) Grid Engine jobs, through ``qsub``, ``qstat``, ``qdel`` and ``qacct``.

The job script, exit record, job-id file and the one ``qstat`` poller come from
``schedulers/batch.py``. The trial's variables (its token among them) must not reach
``qsub``'s ``-V``/``-v``: Grid Engine shows a job's variables to anyone who runs
``qstat -j``. So they go into ``jobs/<name>.env`` (0600, in the private jobs folder), which
the job script sources and deletes before anything else runs.

Stopping: every job is submitted with ``-notify``; ``qdel`` then sends the job SIGUSR2, which
its script turns into SIGTERM for the trial, and SIGKILL after the queue's ``notify`` time.
The trial itself ignores SIGUSR2. A forced kill is ``qdel -f`` (plain ``qdel`` for users who
are not Grid Engine managers: the SIGKILL then follows after the ``notify`` time).

How a job ended: the wrapper's record first; without one, ``qacct -j``'s exit status (the
environment script exited, or SIGKILL ended the job); a job this scheduler deleted counts as
killed; one in an error state (``Eqw``) is deleted and failed; one that left ``qstat`` without
any record vanished and counts as killed. None of these is a success. Exit status 0 without a
record (the environment script exited 0) is unknown.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from ridgeline.errors import SchedulerError
from ridgeline.schedulers import batch, exitnotice, exitstatus, jobfiles, sgecli
from ridgeline.schedulers.base import Job
from ridgeline.schedulers.batch import BatchScheduler, _Submission, run_tool, run_tool_async
from ridgeline.schedulers.cluster import check_nodes, check_worker_jobs
from ridgeline.schedulers.workerpool import DEFAULT_IDLE_S

__all__ = ["SGEScheduler"]

log = logging.getLogger(__name__)

_TOOLS = ("qsub", "qstat", "qdel", "qacct")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NAME_OR_DASH = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
# Variables Grid Engine sets for each job (or bash keeps read-only): a coordinator that itself
# runs in a job must not hand its own to the trial's job.
_JOB_OWN = frozenset(
    {
        "JOB_ID", "JOB_NAME", "JOB_SCRIPT", "NSLOTS", "NHOSTS", "NQUEUES", "QUEUE", "PE",
        "PE_HOSTFILE", "RESTARTED", "REQUEST", "ENVIRONMENT", "TMPDIR", "TMP", "HOSTNAME",
        "BASHOPTS", "SHELLOPTS", "BASH_VERSINFO", "EUID", "PPID", "UID", "_",
    }
)  # fmt: skip
QACCT_WAIT_S = 3.0  # how long qacct may lag behind a job's end


def _job_env_lines(env: Mapping[str, str]) -> list[str]:
    """``export`` lines for the trial's variables, less those Grid Engine sets per job
    (``SGE_ROOT``/``SGE_CELL`` stay: they say which cluster to talk to)."""
    lines = []
    for key, value in sorted(env.items()):
        if not _NAME.match(key) or key in _JOB_OWN:
            continue
        if key.startswith("SGE_") and key not in ("SGE_ROOT", "SGE_CELL"):
            continue
        lines.append(f"export {key}={shlex.quote(value)}")
    return lines


def _under_qdel_notice(command: str) -> list[str]:
    """The job script's lines that run ``command`` (a shell command line) in the background,
    turn ``qdel``'s SIGUSR2 into SIGTERM for the job's process group, and wait for it; its
    status in ``$s``."""
    return [
        "trap '' USR2  # the command (and what it starts) ignores qdel's notice...",
        f"{command} &",
        "child=$!",
        "trap : TERM",
        "trap 'kill -TERM 0' USR2  # ...which becomes SIGTERM for the whole job",
        "while :; do wait $child; s=$?; kill -0 $child 2>/dev/null || break; done",
    ]


class SGEScheduler(BatchScheduler):
    """SHERPA's Grid Engine scheduler, for real: each trial is one ``qsub`` job.

    ``submit_options`` go to ``qsub`` as they would on its command line (e.g.
    ``"-N example -P arcus.p -q arcus.q -l hostname='(arcus-1)'"``; they come after
    ridgeline's own options, so ``-N`` overrides the trial's job name). ``environment`` is a
    script the job sources before the trial starts; "" for none. ``gpus_per_trial`` asks each
    job for that many GPUs (``-l gpu=N``, the complex most clusters name so). Output goes to
    ``<output_dir>/jobs/<name>.out``; the folder must be one the execution hosts see.

    ``nodes`` > 1 makes each trial one parallel job across that many hosts: ``-pe
    <parallel_environment> <nodes>``, where the parallel environment places one slot per host
    (``allocation_rule 1``) and lets the job start tasks on them (``control_slaves TRUE``).
    The job runs the trial's command once per host through ``qrsh -inherit``
    (``ridgeline.launch.sge_nodes``), with the host's rank, every host's address, ports on the
    master for this attempt and ``slots_per_node`` slots (GPUs, ``-l gpu=`` per host, when
    ``gpus_per_trial`` is set) in its environment; the first host that fails ends the job.

    ``worker_jobs=True`` makes each job a worker that runs trials one after another
    (``schedulers/workerpool.py``), which spares each trial Grid Engine's scheduling interval
    and the job's start; see ``SLURMScheduler``. One host per trial.
    """

    system = "SGE"
    script_suffix = ".sge"

    def __init__(
        self,
        submit_options: str = "",
        environment: str = "",
        output_dir: str = "",
        gpus_per_trial: int = 0,
        nodes: int = 1,
        slots_per_node: int = 1,
        parallel_environment: str = "",
        worker_jobs: bool = False,
        worker_idle_seconds: float = DEFAULT_IDLE_S,
    ) -> None:
        super().__init__(submit_options, environment, output_dir, gpus_per_trial)
        per_node = check_nodes("SGEScheduler", self.gpus_per_trial, nodes, slots_per_node)
        self.worker_jobs, self.worker_idle_seconds = check_worker_jobs(
            "SGEScheduler", worker_jobs, worker_idle_seconds, nodes
        )
        if nodes > 1 and not (parallel_environment and _NAME_OR_DASH.match(parallel_environment)):
            raise SchedulerError(
                f"SGEScheduler with nodes={nodes} needs parallel_environment: the name of a "
                f"parallel environment with allocation_rule 1 and control_slaves TRUE (qconf "
                f"-spl lists them), got {parallel_environment!r}"
            )
        self.nodes = nodes
        self.slots_per_node = per_node
        self.parallel_environment = parallel_environment

    # -- checks and the commands it builds ---------------------------------------------------

    def callback_host(self) -> str:
        """The local address that routes to the controller host (act_qmaster): the nodes'
        network. Loopback on a single-node cluster."""
        # lazy: keeps `import ridgeline.cli` light
        from ridgeline.schedulers.callback import sge_master, toward

        return toward(sge_master())

    def check(self) -> None:
        """Grid Engine's tools are on PATH, the environment script exists, and ``qsub``
        accepts the submit options (``qsub -w v``, which verifies and submits nothing)."""
        if self.nodes > 1 and shutil.which("qconf") is not None:
            self._check_parallel_environment()  # before qsub, whose answer says less
        argv = ["qsub", "-w", "v", "-b", "y", *self._resources(), *self._options, "true"]
        self._check_setup(_TOOLS, "scripts/ensure-sge.sh", argv, sgecli.TIMEOUT_S)

    def _check_parallel_environment(self) -> None:
        """The parallel environment puts one slot on each host and lets the job start tasks
        there; any other settings would put two nodes' ranks on one host or refuse ``qrsh
        -inherit``."""
        name = self.parallel_environment
        shown = _run(["qconf", "-sp", name])
        if shown is None or shown.returncode != 0:
            said = "no answer" if shown is None else batch.said(shown)
            raise SchedulerError(f"Grid Engine has no parallel environment {name!r}: {said}")
        settings = sgecli.parse_settings(shown.stdout)
        wanted = {"allocation_rule": "1", "control_slaves": "TRUE"}
        wrong = {k: settings.get(k) for k, v in wanted.items() if settings.get(k, "").upper() != v}
        if wrong:
            found = ", ".join(f"{k} {v}" for k, v in wrong.items())
            raise SchedulerError(
                f"Grid Engine's parallel environment {name!r} has {found}; a trial across "
                f"{self.nodes} nodes needs allocation_rule 1 (one slot per host) and "
                f"control_slaves TRUE (qrsh -inherit starts each host's process)"
            )

    def _resources(self) -> list[str]:
        resources = ["-pe", self.parallel_environment, str(self.nodes)] if self.nodes > 1 else []
        if self.gpus_per_trial:  # per slot, and so per host with allocation_rule 1
            resources += ["-l", f"gpu={self.gpus_per_trial // self.nodes}"]
        return resources

    def qsub_argv(
        self, name: str, script: str | os.PathLike[str], output: str, cwd: str
    ) -> list[str]:
        """The ``qsub`` command line of one job (no variables on it at all)."""
        return [
            "qsub",
            "-terse",
            "-notify",
            "-S",
            "/bin/bash",
            "-N",
            name,
            "-wd",
            cwd,
            "-j",
            "y",
            "-o",
            output,
            *self._resources(),
            *self._options,
            str(script),
        ]

    def batch_script(
        self,
        command: Sequence[str],
        exit_file: str | os.PathLike[str],
        env_file: str | os.PathLike[str],
    ) -> str:
        """The job's script: take the trial's variables, source ``environment``, run the
        trial under the exit wrapper, turn ``qdel``'s SIGUSR2 into its SIGTERM, and tell the
        coordinator when the trial ended."""
        env = shlex.quote(str(env_file))
        lines = ["#!/bin/bash", "# A ridgeline trial, submitted by SGEScheduler."]
        ended = []
        if self.nodes > 1:  # every host sources the variables; the file goes when they end
            prelude = "; ".join([f". {env} || exit 1", *self._environment_line()])
            lines.append(prelude)
            ended.append(f"rm -f {env}")  # before the coordinator, told, writes the next one
            meet = [sys.executable, "-m", "ridgeline.launch.sge_nodes", str(self.slots_per_node)]
            command = [*meet, prelude, *command]
        else:
            lines += [f". {env}; rm -f {env}", *self._environment_line()]
        lines += [
            *_under_qdel_notice(shlex.join(exitstatus.wrap(list(command), exit_file))),
            *ended,
            *exitnotice.lines('"$s"'),
            "exit $s",
        ]
        return "\n".join(lines) + "\n"

    # -- the hooks of BatchScheduler -----------------------------------------------------------

    def _prepare_worker(
        self, env: Mapping[str, str], jobs_dir: Path, name: str
    ) -> tuple[list[str], dict[str, str]]:
        """A worker's script: its variables (its token among them) from a 0600 file it
        deletes first, ``environment``, then the worker, with ``qdel``'s SIGUSR2 turned into
        SIGTERM for the job's process group (the worker and the trial it runs)."""
        env_file = self._write_env_file(jobs_dir / f"{name}.env", env)
        worker = f"{shlex.quote(sys.executable)} -m ridgeline.launch.worker"
        script = jobs_dir / f"{name}{self.script_suffix}"
        lines = [
            "#!/bin/bash",
            "# A ridgeline worker, submitted by SGEScheduler.",
            f". {shlex.quote(str(env_file))}; rm -f {shlex.quote(str(env_file))}",
            *self._environment_line(),
            *_under_qdel_notice(worker),
            "exit $s",
        ]
        self.write_script(script, "\n".join(lines) + "\n")
        output = str(jobfiles.output_path(jobs_dir, name))
        return self.qsub_argv(name, script, output, str(jobs_dir)), dict(os.environ)

    def _prepare(
        self,
        command: Sequence[str],
        env: Mapping[str, str],
        jobs_dir: Path,
        name: str,
        cwd: str,
    ) -> tuple[list[str], dict[str, str], str]:
        env_file = self._write_env_file(jobs_dir / f"{name}.env", env)
        script = jobs_dir / f"{name}{self.script_suffix}"
        exit_file = jobfiles.exit_path(jobs_dir, name)
        self.write_script(script, self.batch_script(command, exit_file, env_file))
        output = str(jobfiles.output_path(jobs_dir, name))
        # qsub runs with the coordinator's own environment (which says where the cluster
        # is); without -V none of it reaches the job.
        return self.qsub_argv(name, script, output, cwd), dict(os.environ), str(script)

    def _write_env_file(self, env_file: Path, env: Mapping[str, str]) -> Path:
        """The job's variables as ``export`` lines, in a file only its owner reads."""
        fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("\n".join(_job_env_lines(env)) + "\n")
        os.chmod(env_file, 0o600)
        return env_file

    def _submit_now(self, argv: list[str], env: dict[str, str]) -> str:
        return batch.submit_job(argv, env, sgecli.TIMEOUT_S, sgecli.parse_qsub)

    async def _states(self, job_ids: Sequence[str]) -> dict[str, str] | None:
        result = await run_tool_async(sgecli.qstat_argv(), sgecli.TIMEOUT_S)
        if result is None:
            return None
        if result.returncode != 0:
            log.warning("qstat failed (exit code %s): %s", result.returncode, result.stderr)
            return None
        return sgecli.parse_qstat(result.stdout, job_ids)

    def _states_sync(self, job_ids: Sequence[str]) -> dict[str, str] | None:
        result = _run(sgecli.qstat_argv())
        if result is None or result.returncode != 0:
            log.warning("qstat failed: %s", "no answer" if result is None else result.stderr)
            return None
        return sgecli.parse_qstat(result.stdout, job_ids)

    def _is_active(self, state: str) -> bool:
        return sgecli.is_active(state)

    def _is_queued(self, state: str) -> bool:
        return sgecli.is_queued(state)

    def _cancel_now(self, job_id: str, force: bool) -> None:
        result = _run(sgecli.qdel_argv(job_id, force))
        if force and (result is None or result.returncode != 0):
            result = _run(sgecli.qdel_argv(job_id, False))  # not a manager: plain qdel
        if result is not None and result.returncode != 0:
            log.debug("qdel %s: %s", job_id, batch.said(result))

    def _exit_code(
        self, job: Job, job_id: str, state: str | None, handle: _Submission | None
    ) -> int | None:
        script = job.info.get("script")
        if script:  # the job never ran, or its script was killed before it took the file
            Path(script).with_suffix(".env").unlink(missing_ok=True)
        return super()._exit_code(job, job_id, state, handle)

    def _end_code(
        self, job: Job, job_id: str, state: str | None, handle: _Submission | None
    ) -> int | None:
        """How a job without an exit record ended (see the module's docstring)."""
        killed = -int(signal.SIGKILL)
        if state is not None:  # listed, but in an error state: it would never run
            shown = _run(["qstat", "-j", job_id])
            reason = "" if shown is None else _error_reason(shown.stdout)
            _run(sgecli.qdel_argv(job_id, False))
            log.warning(
                "Grid Engine job %s (%s) is in error state %s%s; deleted, counted as failed",
                job_id,
                job.name,
                state,
                f" ({reason})" if reason else "",
            )
            return 1
        if handle is not None and handle.forced:
            return killed
        if handle is not None and handle.killed:
            return -int(signal.SIGTERM)
        accounted = _qacct(job_id)
        if accounted is None:
            log.warning(
                "Grid Engine job %s (%s) vanished: it left qstat without recording an exit "
                "status, and qacct knows nothing of it; counted as killed",
                job_id,
                job.name,
            )
            return killed
        status, failed = accounted
        if status == 0 and failed.startswith("0"):
            log.warning(
                "Grid Engine job %s (%s) completed without recording the trial's exit status "
                "(did the environment script exit?); its outcome is unknown",
                job_id,
                job.name,
            )
            return None
        code = exitstatus.decode(status) if status else killed
        log.warning(
            "Grid Engine job %s (%s) ended with exit status %s (failed: %s)",
            job_id,
            job.name,
            status,
            failed,
        )
        return code


def _run(
    argv: list[str], env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str] | None:
    return run_tool(argv, sgecli.TIMEOUT_S, env)


def _qacct(job_id: str) -> tuple[int, str] | None:
    """``qacct -j``'s record of the job, waiting briefly for the accounting file's flush."""
    deadline = time.monotonic() + QACCT_WAIT_S
    while True:
        result = _run(["qacct", "-j", job_id])
        parsed = None if result is None else sgecli.parse_qacct(result.stdout)
        if parsed is not None or time.monotonic() > deadline:
            return parsed
        time.sleep(0.25)


def _error_reason(qstat_j: str) -> str:
    for line in qstat_j.splitlines():
        if line.startswith("error reason"):
            return line.partition(":")[2].strip()
    return ""
