"""What a trial's process exit means: every case of ``exit_status`` without processes."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ridgeline.engine.runtime import ExitFacts, TrialRuntime, describe_exit, exit_status
from ridgeline.schedulers.base import Job
from ridgeline.store.records import ExperimentState, TrialState

RAN = ExitFacts(
    exit_code=0,
    experiment_state=ExperimentState.ACTIVE,
    stopping=False,
    invalid_hp=False,
    has_metrics=True,
    closed=False,
    final=False,
    released=False,
    preempt_acked=False,
)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, TrialState.COMPLETED),
        ({"exit_code": 1}, TrialState.FAILED),
        ({"exit_code": -9}, TrialState.FAILED),
        ({"exit_code": -9, "has_metrics": False}, TrialState.FAILED),
        # A re-attached process left no status: its metrics are the only evidence.
        ({"exit_code": None}, TrialState.COMPLETED),
        ({"exit_code": None, "has_metrics": False}, TrialState.FAILED),
        # The coordinator ended it: stopped, whatever the code.
        ({"stopping": True, "exit_code": -15}, TrialState.STOPPED),
        ({"experiment_state": ExperimentState.CANCELED, "exit_code": -9}, TrialState.CANCELED),
        ({"invalid_hp": True, "exit_code": 0}, TrialState.INVALID_HP),
        # The searcher closed it: done for good, or paused with its checkpoint.
        ({"closed": True, "final": True}, TrialState.COMPLETED),
        ({"closed": True}, TrialState.PAUSED),
        ({"closed": True, "exit_code": 2}, TrialState.FAILED),
        ({"released": True}, TrialState.PAUSED),
        ({"preempt_acked": True}, TrialState.PAUSED),
        ({"experiment_state": ExperimentState.PAUSED}, TrialState.PAUSED),
        ({"experiment_state": ExperimentState.PAUSED, "exit_code": 3}, TrialState.FAILED),
    ],
)
def test_exit_status(changes: dict[str, object], expected: TrialState) -> None:
    assert exit_status(replace(RAN, **changes)) == expected  # type: ignore[arg-type]


def test_a_new_attempt_forgets_what_the_last_process_was_told() -> None:
    runtime = TrialRuntime()
    runtime.new_attempt(Job("trial_1", {"pid": 1}))
    runtime.stop_reason, runtime.released, runtime.invalid_hp = "x", True, True
    runtime.preempt_acked, runtime.resubmission = True, True
    runtime.new_attempt(Job("trial_1", {"pid": 2}))
    assert runtime.attempt == 2 and runtime.job is not None and runtime.job.info["pid"] == 2
    assert runtime.stop_reason is None and not runtime.released and not runtime.invalid_hp
    assert not runtime.preempt_acked
    assert runtime.resubmission  # a property of the trial, not of the attempt


def test_describe_exit() -> None:
    assert describe_exit(3) == "exit code 3"
    assert describe_exit(-9) == "killed by signal 9"
    assert "unknown" in describe_exit(None)
