"""ridgeline's GP in many dimensions, on functions that are not in search_quality.py's set.

    python benchmarks/many_dims.py --dims 9 12 20 --seeds 30
    python benchmarks/many_dims.py --quick              # 2 seeds, 8 dimensions, 20 evaluations

A check of the GP's lengthscale prior (``gp_model.ls_prior_centre``): its centre shrinks with
the number of parameters beyond 6, and a rule tuned on the one 20-dimensional problem of the
recorded benchmark could be tuned to that problem alone. Here seven shifted or rotated
functions in ``d`` dimensions (Ackley, Levy, Rastrigin, Rosenbrock, a rotated ellipsoid, a
rotated Styblinski-Tang and Hartmann-6 among ``d - 6`` coordinates that do not matter), each
searched with 60 evaluations (``--budget``) by random search, by the GP as it is (``gp``)
and by the GP with the prior centred at 0.5 in every dimension (``gp-flat-prior``, the rule
before), on the same seeds. Scores are Bayesmark's (0 = random search's mean, 100 = the
optimum), per function and averaged over the seven.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import search_quality as sq  # noqa: E402

BUDGET = 60
VARIANTS = ("ridgeline-random", "gp", "gp-flat-prior")
FLAT = 10**6  # ``_LS_PRIOR_FULL_UP_TO`` for a prior centred at 0.5 in any dimension

Vector = Callable[[np.ndarray], float]


def _shift(d: int, amplitude: float) -> np.ndarray:
    """An optimum off the centre and off any round grid."""
    return amplitude * np.sin(1.7 * np.arange(d) + 0.3)


def _rotation(d: int, seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q


def ackley(d: int) -> Vector:
    s = _shift(d, 11.3)

    def f(x: np.ndarray) -> float:
        z = x - s
        a = -20.0 * math.exp(-0.2 * math.sqrt(float((z * z).mean())))
        return a - math.exp(float(np.cos(2 * math.pi * z).mean())) + 20.0 + math.e

    return f


def levy(d: int) -> Vector:
    s = _shift(d, 3.1)

    def f(x: np.ndarray) -> float:
        w = 1.0 + (x - s - 1.0) / 4.0
        head = math.sin(math.pi * w[0]) ** 2
        mid = ((w[:-1] - 1) ** 2 * (1 + 10 * np.sin(math.pi * w[:-1] + 1) ** 2)).sum()
        tail = (w[-1] - 1) ** 2 * (1 + math.sin(2 * math.pi * w[-1]) ** 2)
        return float(head + mid + tail)

    return f


def rastrigin(d: int) -> Vector:
    s = _shift(d, 1.9)

    def f(x: np.ndarray) -> float:
        z = x - s
        return float(10 * d + (z * z - 10 * np.cos(2 * math.pi * z)).sum())

    return f


def rosenbrock(d: int) -> Vector:
    def f(x: np.ndarray) -> float:
        return float((100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum())

    return f


def rotated_ellipsoid(d: int) -> Vector:
    """Condition number 1,000 along rotated axes: no coordinate can be tuned alone."""
    q, w, s = _rotation(d, 7), np.logspace(0, 3, d), _shift(d, 2.2)

    def f(x: np.ndarray) -> float:
        z = q @ (x - s)
        return math.log1p(float((w * z * z).sum()))

    return f


_ST_BEST = -2.903534  # Styblinski-Tang's best coordinate


def rotated_styblinski(d: int) -> Vector:
    """Styblinski-Tang in rotated coordinates, its optimum (-39.166) at ``_shift(d, 1.3)``."""
    q, s = _rotation(d, 11), _shift(d, 1.3)

    def f(x: np.ndarray) -> float:
        z = _ST_BEST + q @ (x - s)
        return float((z**4 - 16 * z**2 + 5 * z).sum() / (2 * d))

    return f


def hartmann_among_dummies(d: int) -> Vector:
    def f(x: np.ndarray) -> float:
        return sq.hartmann6({f"x{j}": float(x[j]) for j in range(6)})

    return f


#: name: (function, bounds, optimum)
FUNCTIONS: dict[str, tuple[Callable[[int], Vector], tuple[float, float], float]] = {
    "ackley": (ackley, (-32.768, 32.768), 0.0),
    "levy": (levy, (-10.0, 10.0), 0.0),
    "rastrigin": (rastrigin, (-5.12, 5.12), 0.0),
    "rosenbrock": (rosenbrock, (-2.048, 2.048), 0.0),
    "rotated-ellipsoid": (rotated_ellipsoid, (-5.0, 5.0), 0.0),
    "rotated-styblinski": (
        rotated_styblinski,
        (-5.0, 5.0),
        (_ST_BEST**4 - 16 * _ST_BEST**2 + 5 * _ST_BEST) / 2,
    ),
    "hartmann6-among-dummies": (hartmann_among_dummies, (0.0, 1.0), -3.32237),
}


def _objective(vector: Vector, d: int, p: Mapping[str, Any]) -> float:
    return vector(np.array([float(p[f"x{j}"]) for j in range(d)]))


def problem(name: str, d: int, budget: int) -> sq.Problem:
    make, (lo, hi), optimum = FUNCTIONS[name]

    def space() -> list[Any]:
        import ridgeline as rl

        return [rl.Continuous(f"x{j}", [lo, hi]) for j in range(d)]

    return sq.Problem(
        name=f"{name}-{d}d",
        group="many-dims",
        budget=budget,
        quick_budget=budget,
        parameters=space,
        objective=partial(_objective, make(d), d),
        optimum=optimum,
    )


def run(name: str, d: int, variant: str, seed: int, budget: int) -> float:
    """The best value one variant finds with one seed."""
    from ridgeline.samplers import gp_model

    rule = gp_model._LS_PRIOR_FULL_UP_TO
    if variant == "gp-flat-prior":
        gp_model._LS_PRIOR_FULL_UP_TO = FLAT  # a worker runs one task at a time
    prob = problem(name, d, budget)
    sq.PROBLEMS[prob.name] = prob
    optimizer = "ridgeline-random" if variant == "ridgeline-random" else "ridgeline-gp"
    try:
        return float(sq.run_one(prob.name, optimizer, seed, budget)["best"])
    finally:
        gp_model._LS_PRIOR_FULL_UP_TO = rule


def scores(
    best: Mapping[tuple[str, int, str, int], float], d: int, seeds: Sequence[int], budget: int
) -> str:
    """A Markdown table: mean score (median, worst seed) per function and variant."""
    lines = [f"**{d} dimensions** ({len(seeds)} seeds x {budget} evaluations)", ""]
    lines += ["| function | " + " | ".join(VARIANTS[1:]) + " |", "|---|" + "---:|" * 2]
    means: dict[str, list[float]] = {v: [] for v in VARIANTS[1:]}
    for name, (_, _, optimum) in FUNCTIONS.items():
        random_mean = statistics.fmean(best[(name, d, VARIANTS[0], s)] for s in seeds)
        cells = []
        for variant in VARIANTS[1:]:
            sc = [
                100 * (random_mean - best[(name, d, variant, s)]) / (random_mean - optimum)
                for s in seeds
            ]
            means[variant].append(statistics.fmean(sc))
            cells.append(f"{statistics.fmean(sc):.1f} ({statistics.median(sc):.1f}, {min(sc):.1f})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append(
        "| **mean** | "
        + " | ".join(f"**{statistics.fmean(means[v]):.1f}**" for v in VARIANTS[1:])
        + " |"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[9, 12, 20])
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--budget", type=int, default=BUDGET, help="evaluations per search")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="2 seeds, 8 dimensions, budget 20")
    args = parser.parse_args(argv)
    dims = [8] if args.quick else args.dims
    seeds = list(range(2 if args.quick else args.seeds))
    budget = 20 if args.quick else args.budget
    if min(dims) < 6:
        parser.error("--dims: at least 6 (Hartmann-6 needs six coordinates)")
    if budget < 2 or not seeds:
        parser.error("--budget needs at least 2 evaluations and --seeds at least 1")
    tasks = [(n, d, v, s) for d in dims for n in FUNCTIONS for v in VARIANTS for s in seeds]
    with sq._pool(args.jobs) as pool:
        found = list(pool.map(partial(run, budget=budget), *zip(*tasks, strict=True)))
    best = dict(zip(tasks, found, strict=True))
    for d in dims:
        print(scores(best, d, seeds, budget), end="\n\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
