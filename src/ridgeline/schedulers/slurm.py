"""Trials as SLURM batch jobs, through ``sbatch``, ``squeue``, ``scancel`` and ``scontrol``.

The job script, exit record, job-id file and the one ``squeue`` poller come from
``schedulers/batch.py``. The trial's variables (its token among them) reach the job through
``sbatch``'s own environment, which SLURM hands to the job (``--export=ALL``): never on a
command line, never in a file of ours.

How a job ended: the wrapper's record first; without one, SLURM's final state: CANCELLED is
a kill (SIGTERM, or SIGKILL when this scheduler forced it), FAILED and the other end states
take ``scontrol``'s exit code, and a job that left ``squeue`` without any record vanished and
counts as killed: none of these is a success. COMPLETED without a record (the environment
script exited before the trial ran, or the record could not be written) is unknown, which
counts as a success only for a trial that reported metrics.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from ridgeline.schedulers import batch, exitnotice, exitstatus, jobfiles, slurmcli
from ridgeline.schedulers.base import Job
from ridgeline.schedulers.batch import BatchScheduler, _Submission, run_tool, run_tool_async
from ridgeline.schedulers.cluster import check_nodes, check_worker_jobs
from ridgeline.schedulers.workerpool import DEFAULT_IDLE_S
from ridgeline.trial import env as trial_env

__all__ = ["SLURMScheduler"]

log = logging.getLogger(__name__)

_TOOLS = ("sbatch", "squeue", "scancel", "scontrol")
#: How a job across nodes runs the trial's command: once per node, each told its rank; the
#: first failure ends the others.
SRUN_PER_NODE = [
    "srun",
    "--ntasks-per-node=1",
    "--kill-on-bad-exit=1",
    "bash",
    "-c",
    f'export {trial_env.CONTAINER_RANK}="$SLURM_NODEID"; exec "$@"',
    "node",
]


class SLURMScheduler(BatchScheduler):
    """SHERPA's SLURM scheduler, for real: each trial is one ``sbatch`` job.

    ``submit_options`` go to ``sbatch`` as they would on its command line (e.g.
    ``"-p gpu --time=10 --comment=search"``; they come after ridgeline's own options, so
    ``-J``/``--job-name`` or ``--error`` override them). ``environment`` is a script the job
    sources before the trial starts (e.g. one that loads modules or activates a virtualenv);
    "" for none. ``gpus_per_trial`` asks each job for that many GPUs (``--gres=gpu:N``).
    Output goes to ``<output_dir>/jobs/<name>.out``, as with ``LocalScheduler``; the folder
    must be one the compute nodes see.

    ``nodes`` > 1 makes each trial one job across that many nodes (``--nodes=N
    --ntasks-per-node=1``): the job runs the trial's command once per node through ``srun``,
    with the node's rank, every node's address, ports on the chief node for this attempt and
    the node's slots in the environment (``ridgeline.launch.slurm_nodes``), which is what
    ``ridgeline.launch.torch_distributed`` starts one worker per slot from. GPUs are asked
    per node (``--gres=gpu:<gpus_per_trial / nodes>``); without GPUs, ``slots_per_node`` logical
    slots. ``srun --kill-on-bad-exit`` ends every node when one fails, and ``scancel``
    reaches them all.
    """

    system = "SLURM"
    script_suffix = ".sbatch"

    def __init__(
        self,
        submit_options: str = "",
        environment: str = "",
        output_dir: str = "",
        gpus_per_trial: int = 0,
        nodes: int = 1,
        slots_per_node: int = 1,
        worker_jobs: bool = False,
        worker_idle_seconds: float = DEFAULT_IDLE_S,
    ) -> None:
        super().__init__(submit_options, environment, output_dir, gpus_per_trial)
        per_node = check_nodes("SLURMScheduler", self.gpus_per_trial, nodes, slots_per_node)
        self.nodes = nodes
        self.slots_per_node = per_node
        self.worker_jobs, self.worker_idle_seconds = check_worker_jobs(
            "SLURMScheduler", worker_jobs, worker_idle_seconds, nodes
        )

    # -- checks and the commands it builds ---------------------------------------------------

    def callback_host(self) -> str:
        """The local address that routes to the controller host (SlurmctldHost): the nodes'
        network. Loopback on a single-node cluster."""
        # lazy: keeps `import ridgeline.cli` light
        from ridgeline.schedulers.callback import slurm_controller, toward

        return toward(slurm_controller())

    def check(self) -> None:
        """SLURM's tools are on PATH, the environment script exists, and ``sbatch`` accepts
        the submit options (``sbatch --test-only``, which submits nothing)."""
        argv = ["sbatch", "--test-only", *self._gres(), *self._options, "--wrap=true"]
        self._check_setup(_TOOLS, "scripts/ensure-slurm.sh", argv, slurmcli.TIMEOUT_S)

    def _gres(self) -> list[str]:
        """GPUs (per node, as SLURM counts them) and, across nodes, the job's shape."""
        gres = [f"--gres=gpu:{self.gpus_per_trial // self.nodes}"] if self.gpus_per_trial else []
        if self.nodes > 1:
            gres += [f"--nodes={self.nodes}", "--ntasks-per-node=1"]
        return gres

    def sbatch_argv(
        self, name: str, script: str | os.PathLike[str], output: str, cwd: str
    ) -> list[str]:
        """The ``sbatch`` command line of one job (no variable values on it, only names)."""
        return [
            "sbatch",
            "--parsable",
            "--export=ALL",
            f"--job-name={name}",
            f"--output={output}",
            f"--chdir={cwd}",
            *self._gres(),
            *self._options,
            str(script),
        ]

    def batch_script(self, command: Sequence[str], exit_file: str | os.PathLike[str]) -> str:
        """The job's script: source ``environment``, run the trial under the exit wrapper,
        then tell the coordinator it ended (the script outlives the trial for that: it waits
        out SIGTERM, which ``scancel`` sends to the trial too)."""
        lines = ["#!/bin/bash", "# A ridgeline trial, submitted by SLURMScheduler."]
        lines += self._environment_line()
        lines.append("trap : HUP INT TERM")
        if self.nodes > 1:
            meet = [sys.executable, "-m", "ridgeline.launch.slurm_nodes", str(self.slots_per_node)]
            lines.append(f'exports=$({shlex.join(meet)}) && eval "$exports" || exit 1')
            command = [*SRUN_PER_NODE, *command]
        lines.append(shlex.join(exitstatus.wrap(list(command), exit_file)))
        lines += ["s=$?", *exitnotice.lines('"$s"'), "exit $s"]
        return "\n".join(lines) + "\n"

    # -- the hooks of BatchScheduler -----------------------------------------------------------

    def _prepare(
        self,
        command: Sequence[str],
        env: Mapping[str, str],
        jobs_dir: Path,
        name: str,
        cwd: str,
    ) -> tuple[list[str], dict[str, str], str]:
        script = jobs_dir / f"{name}{self.script_suffix}"
        self.write_script(script, self.batch_script(command, jobfiles.exit_path(jobs_dir, name)))
        output = str(jobfiles.output_path(jobs_dir, name))
        return self.sbatch_argv(name, script, output, cwd), _job_env(env), str(script)

    def _prepare_worker(
        self, env: Mapping[str, str], jobs_dir: Path, name: str
    ) -> tuple[list[str], dict[str, str]]:
        script = jobs_dir / f"{name}{self.script_suffix}"
        lines = ["#!/bin/bash", "# A ridgeline worker, submitted by SLURMScheduler."]
        lines += self._environment_line()
        lines.append(f"exec {shlex.quote(sys.executable)} -m ridgeline.launch.worker")
        self.write_script(script, "\n".join(lines) + "\n")
        output = str(jobfiles.output_path(jobs_dir, name))
        return self.sbatch_argv(name, script, output, str(jobs_dir)), _job_env(env)

    def _submit_now(self, argv: list[str], env: dict[str, str]) -> str:
        return batch.submit_job(argv, env, slurmcli.TIMEOUT_S, slurmcli.parse_sbatch)

    async def _states(self, job_ids: Sequence[str]) -> dict[str, str] | None:
        return await _squeue(job_ids)

    def _states_sync(self, job_ids: Sequence[str]) -> dict[str, str] | None:
        return _run_squeue_sync(job_ids)

    def _is_active(self, state: str) -> bool:
        return state in slurmcli.ACTIVE

    def _is_queued(self, state: str) -> bool:
        return state == "PENDING"

    def _cancel_now(self, job_id: str, force: bool) -> None:
        _scancel(job_id, force)

    def _end_code(
        self, job: Job, job_id: str, state: str | None, handle: _Submission | None
    ) -> int | None:
        """How a job without an exit record ended (see the module's docstring)."""
        killed = -int(signal.SIGKILL)
        if state is None:
            log.warning(
                "SLURM job %s (%s) vanished: it left squeue without recording an exit status; "
                "counted as killed",
                job_id,
                job.name,
            )
            return killed
        if state == "CANCELLED":
            return killed if handle is not None and handle.forced else -int(signal.SIGTERM)
        if state == "COMPLETED":
            log.warning(
                "SLURM job %s (%s) completed without recording the trial's exit status (did "
                "the environment script exit?); its outcome is unknown",
                job_id,
                job.name,
            )
            return None
        shown = _scontrol_exit(job_id)
        code = exitstatus.decode(shown[1]) if shown is not None and shown[1] != 0 else killed
        log.warning("SLURM job %s (%s) ended %s (exit code %s)", job_id, job.name, state, code)
        return code


# -- the tools, called from threads or as asyncio subprocesses ---------------------------------


def _job_env(env: Mapping[str, str]) -> dict[str, str]:
    """What ``sbatch`` runs with and hands to the job: the trial's variables, less the
    ``SLURM_*`` ones of a coordinator that itself runs inside a SLURM job (the trial's job
    gets its own; ``SLURM_CONF`` stays, it says which cluster to talk to)."""
    return {k: v for k, v in env.items() if not k.startswith("SLURM_") or k == "SLURM_CONF"}


def _scancel(job_id: str, force: bool) -> None:
    for argv in slurmcli.scancel_argv(job_id, force):
        result = run_tool(argv, slurmcli.TIMEOUT_S)
        if result is not None and result.returncode != 0:
            log.debug("%s: %s", shlex.join(argv), result.stderr.strip())


async def _squeue(job_ids: Sequence[str]) -> dict[str, str] | None:
    """``{id: state}`` of the jobs squeue still knows; None when squeue itself failed."""
    result = await run_tool_async(slurmcli.squeue_argv(job_ids), slurmcli.TIMEOUT_S)
    return None if result is None else _squeue_result(result)


def _run_squeue_sync(job_ids: Sequence[str]) -> dict[str, str] | None:
    result = run_tool(slurmcli.squeue_argv(job_ids), slurmcli.TIMEOUT_S)
    return None if result is None else _squeue_result(result)


def _squeue_result(result: subprocess.CompletedProcess[str]) -> dict[str, str] | None:
    if slurmcli.squeue_unknown_ids(result):
        return {}
    if result.returncode != 0:
        log.warning("squeue failed (exit code %d): %s", result.returncode, result.stderr.strip())
        return None
    return slurmcli.parse_squeue(result.stdout)


def _scontrol_exit(job_id: str) -> tuple[str, int] | None:
    result = run_tool(["scontrol", "show", "job", job_id], slurmcli.TIMEOUT_S)
    if result is None:
        return None
    return slurmcli.parse_exit_code(result.stdout) if result.returncode == 0 else None
