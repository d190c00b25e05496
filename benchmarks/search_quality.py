"""Search quality of ridgeline's samplers beside those of other libraries, in Bayesmark's style.

    python benchmarks/search_quality.py                  # every problem and optimizer, 10 seeds
    python benchmarks/search_quality.py --quick          # 2 seeds, small budgets: a smoke check
    python benchmarks/search_quality.py --optimizers ridgeline-gp optuna-gp --problems branin
    python benchmarks/search_quality.py --markdown       # only print the tables of the saved JSON

Why: a sampler is worth its cost only if it finds better configurations than random search
for the same number of trials; and a suggestion must stay cheap next to a trial. So this
measures, for each optimizer (ridgeline's ``BayesianOptimization``, ``TPE``, ``Auto`` and
``RandomSearch`` through the public ``Study`` loop; Optuna's multivariate and univariate
``TPESampler`` and its ``GPSampler`` through ask/tell; Hyperopt's TPE through ``fmin``;
scikit-optimize's ``Optimizer(base_estimator="GP")`` and SMAC3's
``HyperparameterOptimizationFacade`` (random forest) and ``BlackBoxFacade`` (GP) through
ask/tell, each with its library's defaults):

1. **Quality**: the best objective found within a fixed budget of sequential trials on
   synthetic functions (Branin, Hartmann-6, Rosenbrock-4; budget 60) and on small
   scikit-learn tuning tasks (SVC, random forest, MLP with 3-fold cross-validation; budget 40),
   each over ``--seeds`` seeds. The score is Bayesmark's normalised score,
   ``100 * (mean_random_best - best) / (mean_random_best - optimum)``: random search
   (``ridgeline-random``) scores about 0 and the optimum 100. The optimum is the known one for
   the synthetic functions and, for the scikit-learn tasks, the best value any optimizer
   reached on any seed among the runs saved in the JSON (so adding an optimizer that finds a
   better value lowers everyone's scikit-learn scores a little). Means are over seeds with
   their standard error; a group's score is the mean over its problems per seed first.
2. **Cost**: wall time of one suggestion (ask only, not the objective) once 100, 200 and 1,000
   observations exist, on a 6-d unit cube with Hartmann-6 values at random points. Each
   repetition builds the state from n-1 observations, makes one untimed suggestion (warm-up:
   imports, caches, JIT), tells its value, and then times the n-th suggestion; the median of
   ``--timing-reps`` repetitions is reported. What is timed, per library:
   ridgeline: ``sampler.propose(space, history, [], rng)`` on the sampler that the algorithm
   builds (``Algorithm.make_sampler()``), with a ``History`` of ``TrialView`` records, i.e.
   without the Study's bookkeeping. Optuna: ``study.ask(distributions)`` after
   ``study.add_trials`` (Optuna's storage work is part of its ask). Hyperopt: what
   ``fmin`` does before each evaluation, ``trials.refresh()`` plus ``tpe.suggest``, on
   ``Trials`` holding finished documents of the same points (the warm-up is one ``fmin``
   step). scikit-optimize: ``tell`` of the last result plus ``ask`` (it fits its GP and
   searches the acquisition in ``tell``). SMAC: the first ``ask`` of a facade told all the
   observations, without an initial design, so that it fits its model and searches the
   acquisition (its HPO facade then serves 7 more suggestions from that search, so its mean
   cost per suggestion is lower). Timings run after the quality runs, one at a time, each in
   a fresh process.

Every BLAS/OpenMP/torch pool is pinned to one thread (set before NumPy loads) so that the
``--jobs`` worker processes do not oversubscribe the cores and the libraries are timed alike.
Optuna's GPSampler optimises its acquisition faster with the optional ``greenlet`` package;
the timings say which way it ran (see the JSON's ``meta``).

Results (best per run, raw values and best-so-far trace) go to ``--out`` as JSON (gzipped
when the name ends in ``.gz``), written after every finished run; a later call skips the
runs and timings already there, so the benchmark can run in pieces (``--fresh`` redoes the
selected ones). Each run records the code it came from (the optimizer's package version, or a
hash of ridgeline's sampler sources, with NumPy's, SciPy's and scikit-learn's versions); on
loading, runs of other code are set aside, so a file is always one side-by-side run of the
code as it is: after a change to a sampler only that optimizer's runs are redone. The
repository keeps such a file, ``benchmarks/recorded/search_quality.json.gz`` (``make
bench-search-quality`` completes and prints it): the peers' runs take hours, ridgeline's own
minutes. Run one instance per JSON file at a time. Optional libraries (Optuna, Hyperopt,
scikit-optimize, SMAC3, scikit-learn; ``pip install -e .[bench]``) and ridgeline samplers
that do not exist yet are skipped with a message. Add an optimizer by adding an entry to
``OPTIMIZERS`` (name -> ``OptimizerSpec``), e.g. ``ridgeline_optimizer("ridgeline-auto",
"Auto")`` for ``ridgeline.algorithms.Auto(max_num_trials=budget)``.
"""

from __future__ import annotations

import argparse
import ast
import gzip
import hashlib
import importlib
import importlib.util
import json
import logging
import math
import os
import random
import statistics
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

_THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)

BASELINE = "ridgeline-random"
DEFAULT_OUT = Path("benchmarks/results/search_quality.json")
QUICK_OUT = Path("benchmarks/results/search_quality_quick.json")
TIMING_SIZES = (100, 200, 1000)
QUICK_TIMING_SIZES = (30, 60)
FORMAT_VERSION = 1
_SHARED_PACKAGES = ("numpy", "scipy", "scikit-learn")

Params = dict[str, Any]
Objective = Callable[[Mapping[str, Any]], float]


def pin_threads() -> None:
    """One thread per BLAS/OpenMP pool; must run before NumPy, SciPy or torch load."""
    for var in _THREAD_VARIABLES:
        os.environ.setdefault(var, "1")


def quiet_libraries() -> None:
    """Silence the progress and convergence chatter of the optional libraries."""
    warnings.filterwarnings("ignore", message=".*[Ee]xperimental.*")
    warnings.filterwarnings("ignore", category=FutureWarning)
    try:
        from sklearn.exceptions import ConvergenceWarning

        warnings.filterwarnings("ignore", category=ConvergenceWarning)
    except ImportError:
        pass
    logging.getLogger("hyperopt").setLevel(logging.ERROR)
    try:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.ERROR)
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    except ImportError:
        pass


# --------------------------------------------------------------------------------------------
# Problems
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """A minimisation problem: a ridgeline search space, an objective and a trial budget.

    ``optimum`` is the known minimum, or None when it is unknown (the best value seen in the
    saved runs then stands in). ``version`` is part of every run's key: bump it when the
    space or objective changes, so old runs are not scored against the new problem.
    ``cached``: the objective is deterministic and costly, so repeated parameter sets are
    looked up instead of evaluated again (within one worker process). ``noise``: the
    optimizers see the objective plus Gaussian noise of this sd; a run is scored by the true
    value of its best observation (the point it would pick).
    """

    name: str
    group: str
    budget: int
    quick_budget: int
    parameters: Callable[[], list[Any]]
    objective: Objective
    optimum: float | None = None
    needs: str | None = None
    cached: bool = False
    version: int = 1
    noise: float = 0.0  # sd of Gaussian noise added to each observation (scored noise-free)

    def key(self) -> str:
        return f"{self.name}@v{self.version}"


def branin(p: Mapping[str, Any]) -> float:
    x1, x2 = float(p["x1"]), float(p["x2"])
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


_H6_ALPHA = (1.0, 1.2, 3.0, 3.2)
_H6_A = (
    (10, 3, 17, 3.5, 1.7, 8),
    (0.05, 10, 17, 0.1, 8, 14),
    (3, 3.5, 1.7, 10, 17, 8),
    (17, 8, 0.05, 10, 0.1, 14),
)
_H6_P = (
    (1312, 1696, 5569, 124, 8283, 5886),
    (2329, 4135, 8307, 3736, 1004, 9991),
    (2348, 1451, 3522, 2883, 3047, 6650),
    (4047, 8828, 8732, 5743, 1091, 381),
)


def hartmann6(p: Mapping[str, Any]) -> float:
    x = [float(p[f"x{j}"]) for j in range(6)]
    total = 0.0
    for alpha, a_row, p_row in zip(_H6_ALPHA, _H6_A, _H6_P, strict=True):
        inner = sum(a * (xj - pj * 1e-4) ** 2 for a, xj, pj in zip(a_row, x, p_row, strict=True))
        total -= alpha * math.exp(-inner)
    return total


def rosenbrock4(p: Mapping[str, Any]) -> float:
    x = [float(p[f"x{j}"]) for j in range(4)]
    return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(3))


def _branin_space() -> list[Any]:
    import ridgeline as rl

    return [rl.Continuous("x1", [-5.0, 10.0]), rl.Continuous("x2", [0.0, 15.0])]


def _unit_space(d: int) -> list[Any]:
    import ridgeline as rl

    return [rl.Continuous(f"x{j}", [0.0, 1.0]) for j in range(d)]


def _rosenbrock_space() -> list[Any]:
    import ridgeline as rl

    return [rl.Continuous(f"x{j}", [-5.0, 10.0]) for j in range(4)]


@cache
def _dataset(name: str) -> tuple[Any, Any]:
    """A bundled scikit-learn data set (no download), loaded once per process."""
    from sklearn import datasets

    if name == "breast_cancer":
        return datasets.load_breast_cancer(return_X_y=True)
    if name == "wine":
        return datasets.load_wine(return_X_y=True)
    from sklearn.model_selection import train_test_split

    # a fixed stratified 1,000 of the 1,797 digits: halves the cost of every MLP fit
    x, y = datasets.load_digits(return_X_y=True)
    x, _, y, _ = train_test_split(x / 16.0, y, train_size=1000, stratify=y, random_state=0)
    return x, y


def _cv_error(model: Any, data: str) -> float:
    """1 - mean accuracy over fixed 3-fold splits: deterministic for a given model."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    x, y = _dataset(data)
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    scores = cross_val_score(model, x, y, cv=folds, n_jobs=1)  # warnings: quiet_libraries()
    return float(1.0 - scores.mean())


def _svc_space() -> list[Any]:
    import ridgeline as rl

    return [
        rl.Continuous("C", [1e-2, 1e3], scale="log"),
        rl.Continuous("gamma", [1e-5, 1e1], scale="log"),
        rl.Choice("class_weight", ["none", "balanced"]),
    ]


def svc_breast_cancer(p: Mapping[str, Any]) -> float:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    weight = None if p["class_weight"] == "none" else p["class_weight"]
    model = make_pipeline(
        StandardScaler(), SVC(C=float(p["C"]), gamma=float(p["gamma"]), class_weight=weight)
    )
    return _cv_error(model, "breast_cancer")


def _rf_space() -> list[Any]:
    import ridgeline as rl

    return [
        rl.Discrete("n_estimators", [5, 50]),
        rl.Discrete("max_depth", [1, 12]),
        rl.Continuous("max_features", [0.05, 1.0]),
        rl.Discrete("min_samples_split", [2, 30]),
        rl.Choice("criterion", ["gini", "entropy"]),
    ]


def rf_wine(p: Mapping[str, Any]) -> float:
    from sklearn.ensemble import RandomForestClassifier

    model = RandomForestClassifier(
        n_estimators=int(p["n_estimators"]),
        max_depth=int(p["max_depth"]),
        max_features=float(p["max_features"]),
        min_samples_split=int(p["min_samples_split"]),
        criterion=str(p["criterion"]),
        random_state=0,
        n_jobs=1,
    )
    return _cv_error(model, "wine")


def _mlp_space() -> list[Any]:
    import ridgeline as rl

    return [
        rl.Discrete("hidden_units", [8, 64], scale="log"),
        rl.Continuous("alpha", [1e-6, 1e-1], scale="log"),
        rl.Continuous("learning_rate_init", [1e-4, 1e-1], scale="log"),
        rl.Choice("activation", ["relu", "tanh", "logistic"]),
        rl.Ordinal("batch_size", [64, 128, 256, 512]),
    ]


def mlp_digits(p: Mapping[str, Any]) -> float:
    from sklearn.neural_network import MLPClassifier

    model = MLPClassifier(
        hidden_layer_sizes=(int(p["hidden_units"]),),
        alpha=float(p["alpha"]),
        learning_rate_init=float(p["learning_rate_init"]),
        activation=str(p["activation"]),
        batch_size=int(p["batch_size"]),
        max_iter=25,
        random_state=0,
    )
    return _cv_error(model, "digits")


def _wider_problems() -> list[Problem]:
    """The problem classes of benchmarks/search_problems.py."""
    from functools import partial

    import search_problems

    out = []
    for spec in search_problems.problem_table():
        spec = dict(spec)
        real = spec.pop("objective_cv", None)
        if real is not None:
            spec.update(objective=partial(real, cv_error=_cv_error), needs="sklearn", cached=True)
            out.append(Problem(budget=40, quick_budget=8, **spec))
            continue
        if spec["objective"] is None:  # noisy Hartmann-6
            spec["objective"] = hartmann6
        out.append(Problem(budget=60, quick_budget=15, **spec))
    return out


PROBLEMS: dict[str, Problem] = {
    p.name: p
    for p in (
        Problem("branin", "synthetic", 60, 15, _branin_space, branin, optimum=0.397887),
        Problem("hartmann6", "synthetic", 60, 15, lambda: _unit_space(6), hartmann6, -3.32237),
        Problem("rosenbrock4", "synthetic", 60, 15, _rosenbrock_space, rosenbrock4, 0.0),
        Problem(
            "svc-cancer",
            "sklearn",
            40,
            8,
            _svc_space,
            svc_breast_cancer,
            needs="sklearn",
            cached=True,
        ),
        Problem("rf-wine", "sklearn", 40, 8, _rf_space, rf_wine, needs="sklearn", cached=True),
        Problem(
            "mlp-digits", "sklearn", 40, 8, _mlp_space, mlp_digits, needs="sklearn", cached=True
        ),
        *_wider_problems(),
    )
}
GROUPS = ("synthetic", "multimodal", "mixed", "noisy", "high-dim", "sklearn", "sklearn-int")


# --------------------------------------------------------------------------------------------
# Evaluations
# --------------------------------------------------------------------------------------------

_CACHE: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}


class BudgetExhausted(Exception):
    """An optimizer asked for more evaluations than its budget."""


@dataclass
class Evaluator:
    """The objective as the optimizers see it: counts calls, keeps values, times itself.

    The optimizers' own time is the run's wall time minus the time spent in here.
    """

    problem: Problem
    budget: int
    seed: int = 0
    values: list[float] = field(default_factory=list)
    truths: list[float] = field(default_factory=list)  # noise-free values (= values unless noisy)
    seconds: float = 0.0

    def __call__(self, params: Mapping[str, Any]) -> float:
        if len(self.values) >= self.budget:
            raise BudgetExhausted(f"more than {self.budget} evaluations")
        start = time.perf_counter()
        if self.problem.cached:
            table = _CACHE.setdefault(self.problem.key(), {})
            key = tuple(sorted((k, repr(v)) for k, v in params.items()))
            if key not in table:
                table[key] = float(self.problem.objective(params))
            value = table[key]
        else:
            value = float(self.problem.objective(params))
        self.truths.append(value)
        if self.problem.noise:
            # one noise stream per (run seed, evaluation index): optimizers see the same draws
            draw = random.Random(self.seed * 1_000_003 + len(self.values)).gauss(0.0, 1.0)
            value += self.problem.noise * draw
        self.seconds += time.perf_counter() - start
        self.values.append(value)
        return value

    def incumbent_trace(self) -> list[float]:
        """After each evaluation, the true value of the best observation so far."""
        trace, best_seen, best_true = [], math.inf, math.inf
        for seen, true in zip(self.values, self.truths, strict=True):
            if seen < best_seen:
                best_seen, best_true = seen, true
            trace.append(best_true)
        return trace


# --------------------------------------------------------------------------------------------
# Optimizers
# --------------------------------------------------------------------------------------------

#: run(problem parameters, evaluate, budget, seed): evaluates ``budget`` points.
RunFn = Callable[[list[Any], Evaluator, int, int], None]
#: time_ask(parameters, points, values, objective, seed): seconds for one suggestion once
#: ``len(points) + 1`` observations exist (the +1 is the warm-up suggestion).
TimeFn = Callable[[list[Any], list[Params], list[float], Objective, int], float]


@dataclass(frozen=True)
class OptimizerSpec:
    """How to check, run and time one optimizer. ``check`` returns None when usable, else
    the reason it is skipped (missing package or sampler); ``code`` names what its results
    depend on (package versions, a hash of ridgeline's sampler source)."""

    name: str
    check: Callable[[], str | None]
    run: RunFn
    time_ask: TimeFn
    code: Callable[[], str]


def _import_check(*modules: str) -> str | None:
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as exc:  # a module being written may fail with any error
            return f"cannot import {module} ({type(exc).__name__}: {exc})"
    return None


def _source_hash(*modules: str) -> str:
    """A short hash of the modules' source files and of every ``ridgeline/samplers/*.py``
    (their helpers change with them), to tell which version of the code produced a run."""
    files: list[Path] = []
    for module in modules:
        try:
            spec = importlib.util.find_spec(module)
        except Exception:
            spec = None
        if spec is not None and spec.origin and os.path.exists(spec.origin):
            files.append(Path(spec.origin))
    samplers = importlib.util.find_spec("ridgeline.samplers")
    if samplers is not None and samplers.origin:
        files += sorted(Path(samplers.origin).parent.glob("*.py"))
    digest = hashlib.sha256()
    for path in dict.fromkeys(files):
        digest.update(path.name.encode() + b"\0" + _code_only(path.read_bytes()))
    return digest.hexdigest()[:12]


def _code_only(source: bytes) -> bytes:
    """The source's syntax tree without docstrings (comments are never in it), so that
    editing a sampler's prose does not set aside its recorded runs; the bytes themselves
    when the file does not parse."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return source
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree).encode()


def _package_version(name: str) -> str:
    try:
        from importlib.metadata import version

        return f"{name} {version(name)}"
    except Exception:
        return f"{name} ?"


# -- ridgeline ---------------------------------------------------------------------------------


def _ridgeline_algorithm(algorithm: str, budget: int | None, options: Mapping[str, Any]) -> Any:
    from ridgeline import algorithms

    return getattr(algorithms, algorithm)(max_num_trials=budget, **options)


def ridgeline_optimizer(
    name: str,
    algorithm: str,
    modules: Sequence[str] = (),
    options: Mapping[str, Any] | None = None,
) -> OptimizerSpec:
    """A ridgeline algorithm by its name in ``ridgeline.algorithms``, driven through the
    public ``Study`` loop; ``modules`` are the sampler modules it needs (checked, hashed)."""
    opts = dict(options or {})
    needed = ("ridgeline.algorithms", *modules)

    def check() -> str | None:
        missing = _import_check(*needed)
        if missing:
            return missing
        from ridgeline import algorithms

        if not hasattr(algorithms, algorithm):
            return f"ridgeline.algorithms has no {algorithm}"
        return None

    def run(parameters: list[Any], evaluate: Evaluator, budget: int, seed: int) -> None:
        import ridgeline as rl

        study = rl.Study(
            parameters=parameters,
            algorithm=_ridgeline_algorithm(algorithm, budget, opts),
            lower_is_better=True,
            seed=seed,
            disable_dashboard=True,
        )
        for trial in study:
            study.add_observation(trial, iteration=1, objective=evaluate(trial.parameters))
            study.finalize(trial)
            if len(evaluate.values) >= budget:
                break

    def time_ask(
        parameters: list[Any],
        points: list[Params],
        values: list[float],
        objective: Objective,
        seed: int,
    ) -> float:
        from ridgeline.samplers.base import History, TrialView
        from ridgeline.space import SearchSpace

        space = SearchSpace(parameters)
        sampler = _ridgeline_algorithm(algorithm, None, opts).make_sampler()
        history = History(lower_is_better=True)

        def observe(params: Params, value: float) -> None:
            number = len(history.trials) + 1
            view = TrialView(number, dict(params), "COMPLETED", objective=value, last_step=1)
            history.trials.append(view)
            history.curves[number] = [(1, value)]

        for params, value in zip(points, values, strict=True):
            observe(params, value)
        rng = random.Random(seed)
        warm = sampler.propose(space, history, [], rng)
        if not isinstance(warm, dict):
            raise RuntimeError(f"{algorithm} proposed {warm!r} instead of parameters")
        observe(warm, objective(warm))
        start = time.perf_counter()
        out = sampler.propose(space, history, [], rng)
        seconds = time.perf_counter() - start
        if not isinstance(out, dict):  # e.g. WAIT from a sampler handing work to a thread
            raise RuntimeError(f"{algorithm} proposed {out!r}: the timing would be meaningless")
        return seconds

    return OptimizerSpec(
        name,
        check,
        run,
        time_ask,
        lambda: f"ridgeline {algorithm} src {_source_hash(*needed)}",
    )


# -- Optuna ------------------------------------------------------------------------------------


def _optuna_distributions(parameters: list[Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Optuna distributions equivalent to ridgeline's parameters, and the constants.

    Ordinal becomes an integer index (Optuna has no ordered categorical), so its order is
    kept; Choice stays categorical.
    """
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    from ridgeline.space import Choice, Constant, Continuous, Discrete, Ordinal

    dists: dict[str, Any] = {}
    constants: dict[str, Any] = {}
    for p in parameters:
        if isinstance(p, Continuous):
            lo, hi = p.range
            dists[p.name] = FloatDistribution(float(lo), float(hi), log=p.scale == "log")
        elif isinstance(p, Discrete):
            lo, hi = p.range
            dists[p.name] = IntDistribution(int(lo), int(hi), log=p.scale == "log")
        elif isinstance(p, Ordinal):
            dists[p.name] = IntDistribution(0, len(p.range) - 1)
        elif isinstance(p, Choice):
            dists[p.name] = CategoricalDistribution(list(p.range))
        elif isinstance(p, Constant):
            constants[p.name] = p.range[0]
        else:
            raise TypeError(f"no Optuna equivalent for {type(p).__name__} {p.name!r}")
    return dists, constants


def _ordinals(parameters: list[Any]) -> dict[str, list[Any]]:
    from ridgeline.space import Ordinal

    return {p.name: list(p.range) for p in parameters if isinstance(p, Ordinal)}


def _from_indexed(
    params: Mapping[str, Any], ordinals: Mapping[str, list[Any]], constants: Mapping[str, Any]
) -> Params:
    out = {k: (ordinals[k][int(v)] if k in ordinals else v) for k, v in params.items()}
    out.update(constants)
    return out


def _to_indexed(
    params: Mapping[str, Any], ordinals: Mapping[str, list[Any]], dists: Mapping[str, Any]
) -> Params:
    return {
        k: (ordinals[k].index(v) if k in ordinals else v) for k, v in params.items() if k in dists
    }


def optuna_optimizer(
    name: str, make_sampler: Callable[[Any, int], Any], what: str
) -> OptimizerSpec:
    """An Optuna sampler (``make_sampler(optuna, seed)``) through ``study.ask``/``tell``."""

    def check() -> str | None:
        missing = _import_check("optuna")
        if missing:
            return f"{missing}; pip install optuna"
        import optuna

        try:
            make_sampler(optuna, 0)
        except Exception as exc:
            return f"{what} unavailable in optuna {optuna.__version__} ({exc})"
        return None

    def new_study(seed: int) -> Any:
        import optuna

        quiet_libraries()
        return optuna.create_study(direction="minimize", sampler=make_sampler(optuna, seed))

    def run(parameters: list[Any], evaluate: Evaluator, budget: int, seed: int) -> None:
        dists, constants = _optuna_distributions(parameters)
        ordinals = _ordinals(parameters)
        study = new_study(seed)
        for _ in range(budget):
            trial = study.ask(dists)
            value = evaluate(_from_indexed(trial.params, ordinals, constants))
            study.tell(trial, value)

    def time_ask(
        parameters: list[Any],
        points: list[Params],
        values: list[float],
        objective: Objective,
        seed: int,
    ) -> float:
        import optuna

        dists, constants = _optuna_distributions(parameters)
        ordinals = _ordinals(parameters)
        study = new_study(seed)
        study.add_trials(
            [
                optuna.trial.create_trial(
                    params=_to_indexed(x, ordinals, dists), distributions=dists, value=y
                )
                for x, y in zip(points, values, strict=True)
            ]
        )
        warm = study.ask(dists)
        study.tell(warm, objective(_from_indexed(warm.params, ordinals, constants)))
        start = time.perf_counter()
        study.ask(dists)
        return time.perf_counter() - start

    return OptimizerSpec(name, check, run, time_ask, lambda: _package_version("optuna"))


# -- Hyperopt ----------------------------------------------------------------------------------


def _hyperopt_space(parameters: list[Any]) -> dict[str, Any]:
    """Hyperopt expressions equivalent to ridgeline's parameters.

    Discrete [lo, hi] is ``quniform(lo - 0.5, hi + 0.5, 1)`` (every integer equally likely,
    rounded and clamped in ``_from_hyperopt``); Ordinal is such an integer index.
    """
    from hyperopt import hp

    from ridgeline.space import Choice, Constant, Continuous, Discrete, Ordinal

    space: dict[str, Any] = {}
    for p in parameters:
        if isinstance(p, Continuous):
            lo, hi = float(p.range[0]), float(p.range[1])
            if p.scale == "log":
                space[p.name] = hp.loguniform(p.name, math.log(lo), math.log(hi))
            else:
                space[p.name] = hp.uniform(p.name, lo, hi)
        elif isinstance(p, Discrete):
            lo, hi = int(p.range[0]), int(p.range[1])
            if p.scale == "log":
                space[p.name] = hp.qloguniform(p.name, math.log(lo - 0.5), math.log(hi + 0.5), 1)
            else:
                space[p.name] = hp.quniform(p.name, lo - 0.5, hi + 0.5, 1)
        elif isinstance(p, Ordinal):
            space[p.name] = hp.quniform(p.name, -0.5, len(p.range) - 0.5, 1)
        elif isinstance(p, Choice):
            space[p.name] = hp.choice(p.name, list(p.range))
        elif isinstance(p, Constant):
            space[p.name] = p.range[0]
        else:
            raise TypeError(f"no Hyperopt equivalent for {type(p).__name__} {p.name!r}")
    return space


def _from_hyperopt(parameters: list[Any], sample: Mapping[str, Any]) -> Params:
    from ridgeline.space import Discrete, Ordinal

    out: Params = {}
    for p in parameters:
        v = sample[p.name]
        if isinstance(p, Discrete):
            out[p.name] = min(max(int(round(v)), int(p.range[0])), int(p.range[1]))
        elif isinstance(p, Ordinal):
            out[p.name] = p.range[min(max(int(round(v)), 0), len(p.range) - 1)]
        else:
            out[p.name] = v
    return out


def _indexed_point(parameters: list[Any], params: Mapping[str, Any]) -> Params:
    """A point as Hyperopt's trial documents, scikit-optimize and SMAC hold it: Choice and
    Ordinal as indices into their values, constants left out."""
    from ridgeline.space import Choice, Constant, Ordinal

    out: Params = {}
    for p in parameters:
        if isinstance(p, Constant):
            continue
        v = params[p.name]
        out[p.name] = list(p.range).index(v) if isinstance(p, (Choice, Ordinal)) else v
    return out


def hyperopt_optimizer(name: str) -> OptimizerSpec:
    """Hyperopt's TPE through ``fmin`` (it drives the loop itself)."""

    def check() -> str | None:
        missing = _import_check("hyperopt")
        return f"{missing}; pip install hyperopt" if missing else None

    def run(parameters: list[Any], evaluate: Evaluator, budget: int, seed: int) -> None:
        import numpy as np
        from hyperopt import STATUS_OK, Trials, fmin, tpe

        def fn(sample: Mapping[str, Any]) -> dict[str, Any]:
            return {"loss": evaluate(_from_hyperopt(parameters, sample)), "status": STATUS_OK}

        quiet_libraries()
        fmin(
            fn,
            _hyperopt_space(parameters),
            algo=tpe.suggest,
            max_evals=budget,
            trials=Trials(),
            rstate=np.random.default_rng(seed),
            show_progressbar=False,
            verbose=False,
        )

    def time_ask(
        parameters: list[Any],
        points: list[Params],
        values: list[float],
        objective: Objective,
        seed: int,
    ) -> float:
        import numpy as np
        from hyperopt import JOB_STATE_DONE, STATUS_OK, Trials, fmin, tpe
        from hyperopt.base import Domain

        fmin_module = sys.modules["hyperopt.fmin"]  # the module, not the function

        def fn(sample: Mapping[str, Any]) -> dict[str, Any]:
            # ``values`` are ``objective(points)``: evaluating again gives the same numbers
            return {"loss": objective(_from_hyperopt(parameters, sample)), "status": STATUS_OK}

        quiet_libraries()
        space = _hyperopt_space(parameters)
        docs = []
        for tid, (x, y) in enumerate(zip(points, values, strict=True)):
            doc = fmin_module.generate_trial(tid, _indexed_point(parameters, x))
            doc["state"] = JOB_STATE_DONE
            doc["result"] = {"loss": y, "status": STATUS_OK}
            docs.append(doc)
        trials = Trials()
        trials.insert_trial_docs(docs)
        trials.refresh()
        rstate = np.random.default_rng(seed)
        common = {"trials": trials, "rstate": rstate, "show_progressbar": False, "verbose": False}
        fmin(fn, space, algo=tpe.suggest, max_evals=len(points) + 1, **common)  # warm-up
        if len(trials.trials) != len(points) + 1:
            raise RuntimeError(f"expected {len(points) + 1} trials, got {len(trials.trials)}")
        domain = Domain(fn, space)
        new_ids = trials.new_trial_ids(1)
        start = time.perf_counter()
        trials.refresh()
        tpe.suggest(new_ids, domain, trials, int(rstate.integers(2**31 - 1)))
        return time.perf_counter() - start

    return OptimizerSpec(name, check, run, time_ask, lambda: _package_version("hyperopt"))


# -- scikit-optimize and SMAC: shared mapping -------------------------------------------------


def _from_indexed_point(parameters: list[Any], sample: Mapping[str, Any]) -> Params:
    """ridgeline parameters from a point in index form (see ``_indexed_point``), with plain
    Python types (the libraries return NumPy scalars) and the constants added back."""
    from ridgeline.space import Choice, Constant, Continuous, Discrete, Ordinal

    out: Params = {}
    for p in parameters:
        if isinstance(p, Constant):
            out[p.name] = p.range[0]
        elif isinstance(p, Continuous):
            out[p.name] = float(sample[p.name])
        elif isinstance(p, Discrete):
            out[p.name] = int(sample[p.name])
        elif isinstance(p, (Choice, Ordinal)):
            out[p.name] = list(p.range)[int(sample[p.name])]
        else:
            raise TypeError(f"no index form for {type(p).__name__} {p.name!r}")
    return out


# -- scikit-optimize ---------------------------------------------------------------------------


def _skopt_dimensions(parameters: list[Any]) -> list[Any]:
    """scikit-optimize dimensions equivalent to ridgeline's parameters (constants left out).

    Log scales are ``prior="log-uniform"``; Ordinal is an integer index (as for Optuna), so
    its order is kept; Choice is a ``Categorical`` of indices (one-hot encoded in the GP, so
    the labels do not matter, and values of any type work).
    """
    from skopt.space import Categorical, Integer, Real

    from ridgeline.space import Choice, Constant, Continuous, Discrete, Ordinal

    dims: list[Any] = []
    for p in parameters:
        prior = "log-uniform" if getattr(p, "scale", None) == "log" else "uniform"
        if isinstance(p, Continuous):
            dims.append(Real(float(p.range[0]), float(p.range[1]), prior=prior, name=p.name))
        elif isinstance(p, Discrete):
            dims.append(Integer(int(p.range[0]), int(p.range[1]), prior=prior, name=p.name))
        elif isinstance(p, Ordinal):
            dims.append(Integer(0, len(p.range) - 1, name=p.name))
        elif isinstance(p, Choice):
            dims.append(Categorical(list(range(len(p.range))), name=p.name))
        elif not isinstance(p, Constant):
            raise TypeError(f"no scikit-optimize equivalent for {type(p).__name__} {p.name!r}")
    return dims


def skopt_optimizer(name: str) -> OptimizerSpec:
    """scikit-optimize's ``Optimizer(base_estimator="GP")`` with its defaults (``gp_hedge``
    acquisition, 10 random initial points) through ``ask``/``tell``.

    scikit-optimize fits its GP and optimises the acquisition in ``tell``; ``ask`` returns
    the point computed there. So a suggestion's cost is ``tell`` of the last result plus
    ``ask``, and that is what ``time_ask`` times.
    """

    def check() -> str | None:
        missing = _import_check("skopt")
        return f"{missing}; pip install scikit-optimize" if missing else None

    def new_optimizer(dims: list[Any], seed: int) -> Any:
        from skopt import Optimizer

        quiet_libraries()
        # a repeated point (likely on small discrete spaces) is allowed; do not warn on each
        warnings.filterwarnings("ignore", message=".*has been evaluated at point.*")
        return Optimizer(dims, base_estimator="GP", random_state=seed)

    def run(parameters: list[Any], evaluate: Evaluator, budget: int, seed: int) -> None:
        dims = _skopt_dimensions(parameters)
        names = [d.name for d in dims]
        opt = new_optimizer(dims, seed)
        for _ in range(budget):
            x = opt.ask()
            opt.tell(x, evaluate(_from_indexed_point(parameters, dict(zip(names, x, strict=True)))))

    def time_ask(
        parameters: list[Any],
        points: list[Params],
        values: list[float],
        objective: Objective,
        seed: int,
    ) -> float:
        dims = _skopt_dimensions(parameters)
        names = [d.name for d in dims]
        opt = new_optimizer(dims, seed)
        xs = [[_indexed_point(parameters, p)[n] for n in names] for p in points]
        opt.tell(xs, list(values))  # one fit and acquisition search (the warm-up)
        warm = opt.ask()
        y = objective(_from_indexed_point(parameters, dict(zip(names, warm, strict=True))))
        start = time.perf_counter()
        opt.tell(warm, y)  # the GP fit on all observations and the acquisition search
        opt.ask()
        return time.perf_counter() - start

    return OptimizerSpec(name, check, run, time_ask, lambda: _package_version("scikit-optimize"))


# -- SMAC3 -------------------------------------------------------------------------------------


def _smac_space(parameters: list[Any], seed: int) -> Any:
    """A ConfigSpace equivalent to ridgeline's parameters (constants left out); Ordinal is an
    integer index and Choice a categorical of indices, as for scikit-optimize."""
    from ConfigSpace import Categorical, ConfigurationSpace, Float, Integer

    from ridgeline.space import Choice, Constant, Continuous, Discrete, Ordinal

    space = ConfigurationSpace(seed=seed)
    for p in parameters:
        log = getattr(p, "scale", None) == "log"
        if isinstance(p, Continuous):
            space.add(Float(p.name, (float(p.range[0]), float(p.range[1])), log=log))
        elif isinstance(p, Discrete):
            space.add(Integer(p.name, (int(p.range[0]), int(p.range[1])), log=log))
        elif isinstance(p, Ordinal):
            space.add(Integer(p.name, (0, len(p.range) - 1)))
        elif isinstance(p, Choice):
            space.add(Categorical(p.name, list(range(len(p.range)))))
        elif not isinstance(p, Constant):
            raise TypeError(f"no ConfigSpace equivalent for {type(p).__name__} {p.name!r}")
    return space


def smac_optimizer(name: str, facade: str) -> OptimizerSpec:
    """A SMAC3 facade by its name in ``smac`` (``HyperparameterOptimizationFacade``: random
    forest, ``BlackBoxFacade``: GP), with its defaults for a deterministic objective and
    ``n_trials`` = the budget, through ``ask``/``tell``.

    SMAC writes its run history under a temporary ``output_directory``; ``tell`` is called
    with ``save=False`` (that file is bookkeeping, not search). The HPO facade refits its
    forest once per 8 suggestions (``retrain_after=8``) and serves the other 7 from the same
    acquisition search; ``time_ask`` times a suggestion that refits (a fresh facade told all
    observations, without an initial design, so its first ``ask`` is model-based).
    """

    def check() -> str | None:
        missing = _import_check("smac", "ConfigSpace")
        if missing:
            return f"{missing}; pip install smac"
        import smac

        if not hasattr(smac, facade):
            return f"{_package_version('smac')} has no {facade}"
        return None

    def new_facade(
        parameters: list[Any], n_trials: int, seed: int, folder: str, initial_design: bool
    ) -> Any:
        import smac

        quiet_libraries()
        cls = getattr(smac, facade)
        scenario = smac.Scenario(
            _smac_space(parameters, seed),
            deterministic=True,
            n_trials=n_trials,
            seed=seed,
            output_directory=Path(folder) / "smac",
        )
        extra = (
            {}
            if initial_design
            else {"initial_design": cls.get_initial_design(scenario, n_configs=0)}
        )
        return cls(
            scenario,
            target_function=_smac_unused_target,
            overwrite=True,
            logging_level=logging.ERROR,
            **extra,
        )

    def run(parameters: list[Any], evaluate: Evaluator, budget: int, seed: int) -> None:
        import tempfile

        from smac.runhistory.dataclasses import TrialValue

        with tempfile.TemporaryDirectory() as folder:
            opt = new_facade(parameters, budget, seed, folder, initial_design=True)
            for _ in range(budget):
                info = opt.ask()
                value = evaluate(_from_indexed_point(parameters, dict(info.config)))
                opt.tell(info, TrialValue(cost=value), save=False)

    def told(
        parameters: list[Any], points: list[Params], values: list[float], seed: int, folder: str
    ) -> Any:
        from ConfigSpace import Configuration
        from smac.runhistory.dataclasses import TrialInfo, TrialValue

        opt = new_facade(parameters, len(points) + 10, seed, folder, initial_design=False)
        space = opt.scenario.configspace
        for x, y in zip(points, values, strict=True):
            config = Configuration(space, values=_indexed_point(parameters, x))
            # a deterministic objective: one seed for all (the intensifier adopts it)
            info = TrialInfo(config, seed=seed)
            opt.tell(info, TrialValue(cost=y), save=False)
        return opt

    def time_ask(
        parameters: list[Any],
        points: list[Params],
        values: list[float],
        objective: Objective,
        seed: int,
    ) -> float:
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            warm = told(parameters, points, values, seed, folder + "/warm").ask()
            x = _from_indexed_point(parameters, dict(warm.config))
            opt = told(parameters, [*points, x], [*values, objective(x)], seed, folder)
            start = time.perf_counter()
            info = opt.ask()
            seconds = time.perf_counter() - start
        origin = info.config.origin or "Custom"  # "Custom": a told configuration again
        if origin == "Custom" or "Initial" in origin:
            raise RuntimeError(f"{facade} proposed {origin!r}, not a model-based suggestion")
        return seconds

    return OptimizerSpec(name, check, run, time_ask, lambda: _package_version("smac"))


def _smac_unused_target(config: Any, seed: int = 0) -> float:
    """SMAC's facades require a target function; ask/tell never calls it."""
    raise RuntimeError("SMAC called its target function in ask/tell mode")


OPTIMIZERS: dict[str, OptimizerSpec] = {
    spec.name: spec
    for spec in (
        ridgeline_optimizer("ridgeline-gp", "BayesianOptimization", ["ridgeline.samplers.gp"]),
        ridgeline_optimizer("ridgeline-tpe", "TPE", ["ridgeline.samplers.tpe"]),
        ridgeline_optimizer(BASELINE, "RandomSearch", ["ridgeline.samplers.random"]),
        # GP while it is the better tool (small spaces, < 200 results), TPE beyond
        ridgeline_optimizer("ridgeline-auto", "Auto", ["ridgeline.samplers.auto"]),
        optuna_optimizer(
            "optuna-tpe",
            lambda optuna, seed: optuna.samplers.TPESampler(seed=seed, multivariate=True),
            "TPESampler(multivariate=True)",
        ),
        optuna_optimizer(
            "optuna-tpe-uni",
            # explicit: since Optuna 5, multivariate=None means multivariate for one objective
            lambda optuna, seed: optuna.samplers.TPESampler(seed=seed, multivariate=False),
            "TPESampler(multivariate=False)",
        ),
        optuna_optimizer(
            "optuna-gp", lambda optuna, seed: optuna.samplers.GPSampler(seed=seed), "GPSampler"
        ),
        hyperopt_optimizer("hyperopt-tpe"),
        skopt_optimizer("skopt-gp"),
        smac_optimizer("smac-hpo", "HyperparameterOptimizationFacade"),
        smac_optimizer("smac-bb", "BlackBoxFacade"),
    )
}


# --------------------------------------------------------------------------------------------
# Work items (run in worker processes)
# --------------------------------------------------------------------------------------------


_LOADED_CODE: dict[str, str] = {}


def loaded_code(spec: OptimizerSpec) -> str:
    """``spec.code()`` as of this process's first use of the optimizer, with the versions of
    the libraries every problem and adapter runs on (a new scikit-learn changes the tasks).

    A worker keeps the modules it imported first, so while ridgeline's samplers are being
    edited, the hash must describe the code that runs, not the file as it is at the end.
    """
    if spec.name not in _LOADED_CODE:
        spec.check()  # imports the modules now
        shared = ", ".join(_package_version(n) for n in _SHARED_PACKAGES)
        _LOADED_CODE[spec.name] = f"{spec.code()}; {shared}"
    return _LOADED_CODE[spec.name]


def set_aside_stale(data: dict[str, Any]) -> int:
    """Drop the runs and timings that other code produced, so that every figure in the
    report, and every run a call skips, comes from the optimizers and libraries as they are
    now: a saved file is a cache of one side-by-side run, never a mix of versions. Runs of an
    optimizer that cannot run here (its package missing) are kept as they are: they cannot be
    checked, and dropping them would lose hours of another machine's work."""
    # the code of each optimizer that runs here, worked out once (not once per saved run)
    current = {name: loaded_code(spec) for name, spec in OPTIMIZERS.items() if not spec.check()}
    stale = 0
    for section in ("runs", "timing"):
        for key, record in list(data[section].items()):
            code = current.get(record.get("optimizer", ""))
            if code is not None and record.get("code") != code:
                del data[section][key]
                stale += 1
    return stale


def run_key(problem: Problem, optimizer: str, seed: int, budget: int) -> str:
    return f"{problem.key()}|{optimizer}|{seed}|{budget}"


def run_one(problem_name: str, optimizer_name: str, seed: int, budget: int) -> dict[str, Any]:
    """One optimizer on one problem with one seed; every generator seeded from ``seed``."""
    import numpy as np

    quiet_libraries()
    random.seed(seed)
    np.random.seed(seed)
    problem = PROBLEMS[problem_name]
    spec = OPTIMIZERS[optimizer_name]
    code = loaded_code(spec)
    evaluate = Evaluator(problem, budget, seed)
    start = time.perf_counter()
    spec.run(problem.parameters(), evaluate, budget, seed)
    wall = time.perf_counter() - start
    if not evaluate.values:
        raise RuntimeError(f"{optimizer_name} evaluated nothing on {problem_name}")
    trace = evaluate.incumbent_trace()
    best = trace[-1]
    return {
        "problem": problem.name,
        "problem_version": problem.version,
        "optimizer": optimizer_name,
        "seed": seed,
        "budget": budget,
        "n_evals": len(evaluate.values),
        "best": best,
        "trace": trace,
        "values": evaluate.values,
        "truths": evaluate.truths if problem.noise else None,
        "wall_s": wall,
        "objective_s": evaluate.seconds,
        "optimizer_s_per_trial": (wall - evaluate.seconds) / len(evaluate.values),
        "load_avg_1min": os.getloadavg()[0],
        "code": code,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def timing_points(n: int, seed: int) -> tuple[list[Any], list[Params], list[float]]:
    """``n`` uniform points of the 6-d unit cube with their Hartmann-6 values."""
    rng = random.Random(seed)
    parameters = _unit_space(6)
    points = [{f"x{j}": rng.random() for j in range(6)} for _ in range(n)]
    return parameters, points, [hartmann6(x) for x in points]


def time_one(optimizer_name: str, n: int, reps: int) -> dict[str, Any]:
    """Median seconds of one suggestion with ``n`` observations over ``reps`` repetitions
    (fewer when one suggestion takes over a minute)."""
    import numpy as np

    quiet_libraries()
    spec = OPTIMIZERS[optimizer_name]
    code = loaded_code(spec)
    seconds: list[float] = []
    for rep in range(reps):
        random.seed(rep)
        np.random.seed(rep)
        parameters, points, values = timing_points(n - 1, seed=1000 + rep)
        seconds.append(spec.time_ask(parameters, points, values, hartmann6, rep))
        if seconds[-1] > 60:
            break
    return {
        "optimizer": optimizer_name,
        "n": n,
        "seconds": seconds,
        "median_s": statistics.median(seconds),
        "load_avg_1min": os.getloadavg()[0],  # the machine may be shared: timings are noisy
        "code": code,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


# --------------------------------------------------------------------------------------------
# Results file
# --------------------------------------------------------------------------------------------


def load_results(path: Path) -> dict[str, Any]:
    if path.exists():
        raw = path.read_bytes()
        try:
            data = json.loads(gzip.decompress(raw) if path.suffix == ".gz" else raw)
        except (OSError, EOFError, ValueError) as exc:  # not gzip, cut short, not JSON
            raise SystemExit(
                f"{path}: not a results file ({exc}); move it away or pick --out"
            ) from None
        if not isinstance(data, dict) or data.get("format") != FORMAT_VERSION:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise SystemExit(f"{path}: format {found!r}, expected {FORMAT_VERSION}")
        return data
    return {"format": FORMAT_VERSION, "meta": {}, "runs": {}, "timing": {}, "errors": {}}


def save_results(path: Path, data: dict[str, Any]) -> None:
    """Write atomically, so an interrupted run never leaves a truncated file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    text = json.dumps(data, indent=1, sort_keys=True, allow_nan=True).encode()
    try:
        # mtime=0: the same results give the same bytes, so a recorded file changes only with them
        tmp.write_bytes(gzip.compress(text, mtime=0) if path.suffix == ".gz" else text)
        os.replace(tmp, path)
    except OSError as exc:  # a full disk: the file keeps the runs it had, nothing half-written
        tmp.unlink(missing_ok=True)
        raise SystemExit(
            f"{path}: could not save the results ({exc.strerror or exc}); it keeps the runs it "
            "had, and a rerun does only the rest"
        ) from None


def environment() -> dict[str, Any]:
    import platform

    try:
        import greenlet  # noqa: F401

        has_greenlet = True
    except ImportError:
        has_greenlet = False
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "packages": [
            _package_version(n)
            for n in ("optuna", "hyperopt", "scikit-optimize", "smac", *_SHARED_PACKAGES)
        ],
        "greenlet": has_greenlet,
        "threads": {v: os.environ.get(v) for v in _THREAD_VARIABLES[:3]},
        "blas": _blas_kernels(),
    }


def _blas_kernels() -> list[str]:
    """The BLAS builds and the CPU kernels they chose: runs of the same code on CPUs whose
    kernels differ (AVX2 or AVX-512) round differently, and a GP search can end elsewhere."""
    try:
        import numpy  # noqa: F401  (loads the BLAS libraries to describe)
        import scipy.linalg  # noqa: F401
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [
        f"{lib.get('internal_api')} {lib.get('version')} {lib.get('architecture')}"
        for lib in threadpool_info()
        if lib.get("user_api") == "blas"
    ]


# --------------------------------------------------------------------------------------------
# Scores and tables
# --------------------------------------------------------------------------------------------


def _mean_se(xs: Sequence[float]) -> tuple[float, float]:
    xs = [x for x in xs if not math.isnan(x)]
    if not xs:
        return math.nan, math.nan
    if len(xs) == 1:
        return xs[0], math.nan
    return statistics.fmean(xs), statistics.stdev(xs) / math.sqrt(len(xs))


def _cell(mean: float, se: float, digits: int = 1) -> str:
    if math.isnan(mean):
        return "–"
    if math.isnan(se):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {se:.{digits}f}"


def _num(x: float, digits: int = 4) -> str:
    if math.isnan(x):
        return "–"
    return f"{x:.{digits}g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.{digits - 2}e}"


@dataclass
class Scores:
    """Per optimizer and problem: score per seed; per problem: the reference values."""

    per_seed: dict[tuple[str, str], dict[int, float]]
    best: dict[tuple[str, str], dict[int, float]]
    random_mean: dict[str, float]
    optimum: dict[str, float]


def compute_scores(
    data: dict[str, Any],
    problems: Sequence[Problem],
    optimizers: Sequence[str],
    seeds: Sequence[int],
    budgets: Mapping[str, int],
) -> Scores:
    """Bayesmark's normalised score of every (optimizer, problem, seed) run found."""
    runs = data["runs"]
    scores = Scores({}, {}, {}, {})
    for problem in problems:
        budget = budgets[problem.name]
        prefix = problem.key() + "|"
        here = [r for k, r in runs.items() if k.startswith(prefix) and r["budget"] == budget]
        for opt in optimizers:
            scores.best[(opt, problem.name)] = {
                r["seed"]: r["best"] for r in here if r["optimizer"] == opt and r["seed"] in seeds
            }
        baseline = [r["best"] for r in here if r["optimizer"] == BASELINE and r["seed"] in seeds]
        observed = min((r["best"] for r in here), default=math.nan)
        optimum = problem.optimum if problem.optimum is not None else observed
        random_mean = statistics.fmean(baseline) if baseline else math.nan
        scores.random_mean[problem.name] = random_mean
        scores.optimum[problem.name] = optimum
        span = random_mean - optimum
        for opt in optimizers:
            scores.per_seed[(opt, problem.name)] = {
                seed: (100 * (random_mean - best) / span if span > 1e-12 else math.nan)
                for seed, best in scores.best[(opt, problem.name)].items()
            }
    return scores


def score_table(
    scores: Scores, problems: Sequence[Problem], optimizers: Sequence[str], seeds: Sequence[int]
) -> str:
    groups = [g for g in GROUPS if any(p.group == g for p in problems)]
    head = ["optimizer", *[p.name for p in problems], *[f"**{g}**" for g in groups]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for opt in optimizers:
        if not any(scores.per_seed.get((opt, p.name)) for p in problems):
            continue
        cells = [opt]
        for p in problems:
            cells.append(_cell(*_mean_se(list(scores.per_seed[(opt, p.name)].values()))))
        for g in groups:
            per_seed = group_seed_scores(scores, problems, opt, g, seeds)
            cells.append("**" + _cell(*_mean_se(per_seed)) + "**" if per_seed else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def group_seed_scores(
    scores: Scores, problems: Sequence[Problem], opt: str, group: str, seeds: Sequence[int]
) -> list[float]:
    """One score per seed for a group: the mean over the group's problems (a seed counts only
    when it ran on all of them)."""
    members = [p.name for p in problems if p.group == group]
    per_seed = []
    for seed in seeds:
        vals = [scores.per_seed.get((opt, name), {}).get(seed) for name in members]
        if members and all(v is not None for v in vals):
            per_seed.append(statistics.fmean(vals))  # type: ignore[arg-type]
    return per_seed


def class_table(
    scores: Scores, problems: Sequence[Problem], optimizers: Sequence[str], seeds: Sequence[int]
) -> str:
    """Per problem class: mean, median run and worst seed of the score; and, over all
    problems, how many runs ended worse than random search's median run of that problem."""
    groups = [g for g in GROUPS if any(p.group == g for p in problems)]
    head = ["optimizer", *[f"{g}: mean / median / worst" for g in groups], "runs < random median"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    random_median = {
        p.name: statistics.median(b)
        for p in problems
        if (b := list(scores.best.get((BASELINE, p.name), {}).values()))
    }
    for opt in optimizers:
        if not any(scores.per_seed.get((opt, p.name)) for p in problems):
            continue
        cells = [opt]
        for g in groups:
            xs = group_seed_scores(scores, problems, opt, g, seeds)
            cells.append(
                f"{statistics.fmean(xs):.1f} / {statistics.median(xs):.1f} / {min(xs):.1f}"
                if xs
                else "–"
            )
        below = total = 0
        for p in problems:
            for best in scores.best.get((opt, p.name), {}).values():
                if p.name in random_median:
                    total += 1
                    below += best > random_median[p.name]
        cells.append(f"{below} of {total}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def best_table(
    data: dict[str, Any],
    scores: Scores,
    problems: Sequence[Problem],
    optimizers: Sequence[str],
) -> str:
    head = ["optimizer", *[p.name for p in problems]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for opt in optimizers:
        bests = [list(scores.best.get((opt, p.name), {}).values()) for p in problems]
        if not any(bests):
            continue
        cells = [opt]
        for b in bests:
            mean, se = _mean_se(b)
            cells.append("–" if not b else f"{_num(mean)} ± {_num(se, 2)}")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append(
        "| *optimum used* | " + " | ".join(_num(scores.optimum[p.name]) for p in problems) + " |"
    )
    return "\n".join(lines)


def timing_table(
    data: dict[str, Any],
    optimizers: Sequence[str],
    sizes: Sequence[int],
    problems: Sequence[Problem],
    budgets: Mapping[str, int],
) -> str:
    head = ["optimizer", *[f"{n:,} obs" for n in sizes], "in the runs (mean)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    keys = {f"{p.key()}|" for p in problems}
    for opt in optimizers:
        cells = [opt]
        for n in sizes:
            t = data["timing"].get(f"{opt}|{n}")
            cells.append("–" if t is None else _seconds(t["median_s"]))
        per_trial = [
            r["optimizer_s_per_trial"]
            for k, r in data["runs"].items()
            if r["optimizer"] == opt
            and any(k.startswith(p) for p in keys)
            and r["budget"] == budgets[r["problem"]]
        ]
        cells.append(_seconds(statistics.fmean(per_trial)) if per_trial else "–")
        if all(c == "–" for c in cells[1:]):
            continue
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _seconds(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:.0f} µs"
    if s < 1:
        return f"{s * 1e3:.1f} ms"
    return f"{s:.2f} s"


def report(
    data: dict[str, Any],
    problems: Sequence[Problem],
    optimizers: Sequence[str],
    seeds: Sequence[int],
    budgets: Mapping[str, int],
    sizes: Sequence[int],
) -> str:
    scores = compute_scores(data, problems, optimizers, seeds, budgets)
    n_seeds = {len(v) for v in scores.best.values() if v}
    budget_text = ", ".join(f"{p.name} {budgets[p.name]}" for p in problems)
    out = [
        "### Search quality (normalised score: random search 0, optimum 100; higher is better)",
        "",
        score_table(scores, problems, optimizers, seeds),
        "",
        f"Mean ± standard error over seeds ({'/'.join(str(n) for n in sorted(n_seeds))} per "
        f"cell). Budgets: {budget_text}. Score = 100 × (mean random best − best) / (mean "
        f"random best − optimum), random search = `{BASELINE}`. Optimum: known for the "
        f"synthetic functions, best value seen in any run for the scikit-learn tasks "
        f"(objective = 1 − mean 3-fold CV accuracy). Group columns average each seed's "
        f"scores over the group's problems first.",
        "",
        "### Per problem class: mean, median run and worst seed of the score",
        "",
        class_table(scores, problems, optimizers, seeds),
        "",
        "Last column: runs (problem x seed) whose best value is worse than the median of "
        f"random search's runs on the same problem (`{BASELINE}`).",
        "",
        "### Best objective found (mean ± standard error over seeds; lower is better)",
        "",
        best_table(data, scores, problems, optimizers),
        "",
        "### Time per suggestion (ask only; 6-d unit cube, Hartmann-6 values)",
        "",
        timing_table(data, optimizers, sizes, problems, budgets),
        "",
        "Median of the repetitions of one suggestion with n observations (after an untimed "
        "warm-up suggestion). Last column: the optimizer's mean time per trial during the "
        "quality runs above (wall time minus the objective; includes ridgeline's Study and "
        "Optuna's study bookkeeping, two runs in parallel).",
    ]
    loads = [t["load_avg_1min"] for t in data["timing"].values() if "load_avg_1min" in t]
    if loads:
        out[-1] += (
            f" Load average (1 min) of the machine during the timings: {min(loads):.1f} to "
            f"{max(loads):.1f} on {os.cpu_count()} CPUs."
        )
    meta = data.get("meta", {})
    if meta:
        env = meta.get("environment", {})
        out += [
            "",
            f"Environment: Python {env.get('python')}, {env.get('cpus')} CPUs, one thread per "
            f"process; {', '.join(env.get('packages', []))}; greenlet for Optuna's GP: "
            f"{'yes' if env.get('greenlet') else 'no'}.",
        ]
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default 10)")
    parser.add_argument("--problems", nargs="+", default=None, choices=sorted(PROBLEMS))
    parser.add_argument("--optimizers", nargs="+", default=None, choices=list(OPTIMIZERS))
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--out", type=Path, default=None, help=f"JSON (default {DEFAULT_OUT})")
    parser.add_argument(
        "--markdown", action="store_true", help="run nothing; print the tables of --out"
    )
    parser.add_argument("--quick", action="store_true", help="2 seeds, small budgets")
    parser.add_argument("--no-timing", action="store_true", help="skip the suggestion timings")
    parser.add_argument("--timing-only", action="store_true", help="only the timings")
    parser.add_argument("--timing-reps", type=int, default=3)
    parser.add_argument(
        "--fresh", action="store_true", help="redo the selected runs/timings already in --out"
    )
    args = parser.parse_args(argv)
    if args.seeds is None:
        args.seeds = 2 if args.quick else 10
    if args.out is None:
        args.out = QUICK_OUT if args.quick else DEFAULT_OUT
    if args.seeds < 1 or args.jobs < 1 or args.timing_reps < 1:
        parser.error("--seeds, --jobs and --timing-reps must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    pin_threads()
    quiet_libraries()
    args = parse_args(argv)
    problems = [PROBLEMS[n] for n in (args.problems or PROBLEMS)]
    optimizers = list(args.optimizers or OPTIMIZERS)
    if BASELINE not in optimizers:
        print(f"note: scores need {BASELINE} runs (the baseline) in {args.out}", file=sys.stderr)
    seeds = list(range(args.seeds))
    budgets = {p.name: (p.quick_budget if args.quick else p.budget) for p in problems}
    sizes = QUICK_TIMING_SIZES if args.quick else TIMING_SIZES
    data = load_results(args.out)
    stale = set_aside_stale(data)
    if stale:
        print(f"set aside {stale} saved runs/timings of other code or versions", file=sys.stderr)

    if not args.markdown:
        data["meta"]["environment"] = environment()
        usable: list[str] = []
        for name in optimizers:
            why = OPTIMIZERS[name].check()
            if why:
                print(f"skipping {name}: {why}", file=sys.stderr)
            else:
                usable.append(name)
        runnable: list[Problem] = []
        for p in problems:
            why = _import_check(p.needs) if p.needs else None
            if why:
                print(f"skipping problem {p.name}: {why}", file=sys.stderr)
            else:
                runnable.append(p)
        start = time.perf_counter()
        if not args.timing_only:
            run_all(data, args, runnable, usable, seeds, budgets)
        if not args.no_timing:
            time_all(data, args, usable, sizes)
        print(
            f"done in {time.perf_counter() - start:.0f} s; results in {args.out}", file=sys.stderr
        )
    print(report(data, problems, optimizers, seeds, budgets, sizes))
    return 0


def _worker_start(benchmark: int) -> None:
    """Pool initializer: a worker dies with the benchmark, even a killed one, instead of
    finishing (for minutes, with SMAC3) a run that nobody will save."""
    from ridgeline.launch.wrap_rank import die_with_parent

    die_with_parent()
    if os.getppid() != benchmark:  # the benchmark ended before the request took effect
        os._exit(1)


def _pool(jobs: int, **options: Any) -> ProcessPoolExecutor:
    """Worker processes started afresh (no inherited imports or thread pools) that end with
    this process."""
    import multiprocessing

    return ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_worker_start,
        initargs=(os.getpid(),),
        **options,
    )


def run_all(
    data: dict[str, Any],
    args: argparse.Namespace,
    problems: Sequence[Problem],
    optimizers: Sequence[str],
    seeds: Sequence[int],
    budgets: Mapping[str, int],
) -> None:
    """Every missing (problem, optimizer, seed) run, ``--jobs`` at a time, saved as they end.

    Cheap synthetic runs are interleaved with costly ones; the slowest problems go first so
    the pool does not end on one long straggler.
    """
    tasks = []
    order = {"mlp-digits": 0, "rf-wine": 1}
    for p in sorted(problems, key=lambda p: order.get(p.name, 2)):
        for seed in seeds:
            for opt in optimizers:
                key = run_key(p, opt, seed, budgets[p.name])
                if args.fresh:
                    data["runs"].pop(key, None)
                if key not in data["runs"]:
                    tasks.append((key, p.name, opt, seed, budgets[p.name]))
    if not tasks:
        return
    print(f"{len(tasks)} runs to do, {args.jobs} at a time", file=sys.stderr)
    with _pool(args.jobs) as pool:
        futures: dict[Future[dict[str, Any]], tuple[Any, ...]] = {
            pool.submit(run_one, *task[1:]): task for task in tasks
        }
        for done, future in enumerate(as_completed(futures), 1):
            key, problem, opt, seed, _ = futures[future]
            try:
                result = future.result()
            except Exception as exc:
                detail = "".join(traceback.format_exception(exc))
                data["errors"][key] = detail
                print(f"[{done}/{len(tasks)}] {key} FAILED: {exc!r}", file=sys.stderr)
            else:
                data["runs"][key] = result
                data["errors"].pop(key, None)
                print(
                    f"[{done}/{len(tasks)}] {problem} {opt} seed {seed}: best "
                    f"{result['best']:.6g} in {result['wall_s']:.1f} s",
                    file=sys.stderr,
                )
            try:
                save_results(args.out, data)
            except SystemExit:
                pool.shutdown(wait=False, cancel_futures=True)  # no more runs that cannot be saved
                raise


def time_all(
    data: dict[str, Any],
    args: argparse.Namespace,
    optimizers: Sequence[str],
    sizes: Sequence[int],
) -> None:
    """Suggestion timings, one at a time in one fresh worker (nothing else runs meanwhile)."""
    todo = []
    for opt in optimizers:
        for n in sizes:
            key = f"{opt}|{n}"
            if args.fresh:
                data["timing"].pop(key, None)
            if key not in data["timing"]:
                todo.append((key, opt, n))
    if not todo:
        return
    # a fresh process per timing: no optimizer runs with another's imports or threads
    with _pool(1, max_tasks_per_child=1) as pool:
        for key, opt, n in todo:
            try:
                result = pool.submit(time_one, opt, n, args.timing_reps).result()
            except Exception as exc:
                data["errors"][f"timing|{key}"] = "".join(traceback.format_exception(exc))
                print(f"timing {key} FAILED: {exc!r}", file=sys.stderr)
                continue
            data["timing"][key] = result
            data["errors"].pop(f"timing|{key}", None)
            print(f"timing {opt} at {n}: {_seconds(result['median_s'])}", file=sys.stderr)
            save_results(args.out, data)


if __name__ == "__main__":
    sys.exit(main())
