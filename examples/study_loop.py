"""In-process search: SHERPA's ``for trial in study`` loop on the Branin function."""

from __future__ import annotations

import math

import ridgeline as sherpa


def branin(x1: float, x2: float) -> float:
    a, b, c = 1.0, 5.1 / (4 * math.pi**2), 5 / math.pi
    return a * (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10


def main(max_trials: int = 200, seed: int = 0) -> dict:
    parameters = [sherpa.Continuous("x1", [-5, 10]), sherpa.Continuous("x2", [0, 15])]
    study = sherpa.Study(
        parameters=parameters,
        algorithm=sherpa.algorithms.RandomSearch(max_num_trials=max_trials),
        lower_is_better=True,
        disable_dashboard=True,
        seed=seed,
    )
    for trial in study:
        value = branin(trial.parameters["x1"], trial.parameters["x2"])
        study.add_observation(trial, iteration=1, objective=value)
        study.finalize(trial)
    return study.get_best_result()


if __name__ == "__main__":
    best = main()
    print(
        f"Best of {200} trials: {best['Objective']:.4f} at x1={best['x1']:.3f}, x2={best['x2']:.3f}"
    )
