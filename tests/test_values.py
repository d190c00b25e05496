"""Steps and objectives are checked alike everywhere: the Study, the trial client, the server."""

from __future__ import annotations

import math

import pytest

import ridgeline as sherpa
from ridgeline.errors import ObservationError
from ridgeline.values import MAX_STEP, check_iteration, check_objective


def study() -> sherpa.Study:
    return sherpa.Study(
        parameters=[sherpa.Continuous("x", [0.0, 1.0])],
        algorithm=sherpa.algorithms.RandomSearch(max_num_trials=1),
        lower_is_better=True,
        disable_dashboard=True,
    )


@pytest.mark.parametrize("step", [2**63, -1, 1e19, -1.0, 2**64 + 1])
def test_steps_outside_a_64_bit_integer_are_refused_by_the_study(step: float) -> None:
    s = study()
    trial = s.get_suggestion()
    with pytest.raises(ObservationError, match=r"between 0 and 2\*\*63-1"):
        s.add_observation(trial, objective=0.5, iteration=step)
    s.add_observation(trial, objective=0.5, iteration=MAX_STEP)  # the largest one is fine
    assert list(s.results.Iteration) == [MAX_STEP]


def test_iteration_limits_and_types() -> None:
    assert check_iteration(0, "here") == 0
    assert check_iteration(3.0, "here") == 3
    assert check_iteration(MAX_STEP, "here") == 2**63 - 1
    for bad in ("3", None, 1.5, math.nan, math.inf, True):
        with pytest.raises(ObservationError, match="here: iteration must be an integer"):
            check_iteration(bad, "here")


def test_objectives_too_large_for_a_float_are_refused_with_a_short_message() -> None:
    with pytest.raises(ObservationError, match="too large for a float") as caught:
        check_objective(10**400, "trial 1")
    assert len(str(caught.value)) < 200
    with pytest.raises(ObservationError, match="must be a number"):
        check_objective("0.5", "trial 1")
    assert math.isnan(check_objective(math.nan, "trial 1"))  # recorded, never chosen as best
    assert check_objective(10**300, "trial 1") == 1e300
