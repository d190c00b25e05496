"""Multi-fidelity search on real learning curves: ridgeline's searchers beside Optuna's pruners.

    python benchmarks/multifidelity.py                  # 5 seeds, the default methods, 2 jobs
    python benchmarks/multifidelity.py --quick          # smaller runs, 2 seeds (a smoke test)
    python benchmarks/multifidelity.py --methods random,adaptive_asha --seeds 0-9 --jobs 1
    python benchmarks/multifidelity.py --methods random,adaptive_asha,variants   # ASHA settings
    python benchmarks/multifidelity.py --report-only    # tables from the stored results
    python benchmarks/multifidelity.py --quick --engine # ridgeline's searchers on the engine

The task: scikit-learn's ``MLPClassifier`` (SGD with momentum) trained epoch by epoch with
``partial_fit`` on the bundled digits set (8x8 images, 10 classes), split once into fixed
train / validation / test parts (720 / 720 / 357). One epoch is one unit of length, max_length
81; the objective is the validation error. Learning rate, momentum, L2 penalty, batch size and
width are searched; slow learning rates start badly and finish well, so learning curves cross
and stopping early is not free of risk.

Every method gets the same budget: ``B = 32 trials x 81 epochs = 2592`` epochs (what random
search with full training spends). The ridgeline searchers run through
``ridgeline.testing.simulate.run_searcher`` (4 trial processes on a virtual clock, models kept
in memory, pauses and clones by ``copy.deepcopy``); with ``--engine`` through the real engine
instead (``ridgeline.testing.engine_run.run_on_engine``: coordinator, SQLite store, trials on
a ``SimulatedScheduler`` whose checkpoints hold copies of the models; simultaneous reports in
trial order). Their ``max_trials`` is set by a dry run on a synthetic objective so that a run
spends about ``B`` (PBT: population_size x rounds x round length = B). Optuna's trials run
one at a time, report every epoch and stop when pruned, until ``B`` epochs are spent. Only a
run's first ``B`` epochs count in the tables.

Every epoch any method trains is evaluated on the validation and the test split, so all methods
are measured the same way: a method's best validation error after E epochs is the lowest
validation error of any epoch among the first E epochs it trained (in completion order on the
virtual clock). Reported:

(a) epochs until each method first reaches the best validation error that random search
    reaches with its whole budget (same seed), mean and median over seeds; a run that does
    not get there within B counts as B (shown as ">=").
(b) at equal budgets (B/9, B/3, and the epochs adaptive ASHA used capped at B) the best
    validation error of each method, and the test error of the checkpoint chosen there.

Raw results go to ``benchmarks/results/multifidelity[-engine][-quick]/<method>-seed<k>.json``
and the tables to ``summary.md`` there (``summary-custom.md`` when ``--methods`` is given); a
finished (method, seed) is not run again unless its settings changed (``--force`` reruns).
Searchers the installed ridgeline cannot build, and Optuna when it is missing, are listed and
skipped with the reason.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core per run; --jobs decides the parallelism

import argparse  # noqa: E402
import copy  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from concurrent.futures import ProcessPoolExecutor, as_completed  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

BENCH_VERSION = 1  # bump when a change makes stored results incomparable
RESULTS = Path(__file__).resolve().parent / "results"
DIVERGED_ERROR = 0.9  # a model whose weights blew up predicts no better than chance

HYPERPARAMETERS: dict[str, Any] = {
    "learning_rate": {"type": "log", "base": 10, "minval": -3.0, "maxval": 0.0},
    "momentum": {"type": "double", "minval": 0.0, "maxval": 0.95},
    "alpha": {"type": "log", "base": 10, "minval": -6.0, "maxval": -1.0},
    "batch_size": {"type": "categorical", "vals": [16, 32, 64, 128, 256]},
    "hidden_units": {"type": "categorical", "vals": [16, 32, 64, 128]},
}


@dataclass(frozen=True)
class Settings:
    """Everything that makes two runs comparable."""

    max_length: int = 81
    random_trials: int = 32
    divisor: int = 3
    capacity: int = 4  # trial processes at once for the ridgeline searchers
    pbt_rounds: int = 9
    n_train: int = 720
    n_val: int = 720  # the rest of the 1,797 digits is the test split
    split_seed: int = 0

    @property
    def budget(self) -> int:
        return self.random_trials * self.max_length

    @property
    def rungs(self) -> int:
        """Rungs from 1 epoch to max_length with the divisor (5 for 81 and 3)."""
        return int(round(math.log(self.max_length) / math.log(self.divisor))) + 1


QUICK = Settings(max_length=27, random_trials=16, pbt_rounds=9)


# -- the task ---------------------------------------------------------------------------------
class Digits:
    """The digits set, standardized on the training part, split once and for all."""

    _cache: dict[tuple[int, int, int], Digits] = {}

    def __init__(self, n_train: int, n_val: int, split_seed: int) -> None:
        import sklearn
        from sklearn.datasets import load_digits

        # The data are clean and the parameters built here: skip per-call validation.
        sklearn.set_config(assume_finite=True, skip_parameter_validation=True)

        x, y = load_digits(return_X_y=True)
        order = np.random.RandomState(split_seed).permutation(len(y))
        x, y = x[order], y[order]
        mean, std = x[:n_train].mean(axis=0), x[:n_train].std(axis=0) + 1e-6
        x = (x - mean) / std
        self.x_train, self.y_train = x[:n_train], y[:n_train]
        self.x_val, self.y_val = x[n_train : n_train + n_val], y[n_train : n_train + n_val]
        self.x_test, self.y_test = x[n_train + n_val :], y[n_train + n_val :]
        self.classes = np.arange(10)

    @classmethod
    def get(cls, settings: Settings) -> Digits:
        key = (settings.n_train, settings.n_val, settings.split_seed)
        if key not in cls._cache:
            cls._cache[key] = cls(*key)
        return cls._cache[key]


class Model:
    """One trial's network and how far it has trained."""

    def __init__(self, params: dict[str, Any], seed: int) -> None:
        from sklearn.neural_network import MLPClassifier

        self.net = MLPClassifier(
            hidden_layer_sizes=(int(params["hidden_units"]),),
            solver="sgd",
            learning_rate_init=float(params["learning_rate"]),
            momentum=float(params["momentum"]),
            alpha=float(params["alpha"]),
            batch_size=int(params["batch_size"]),
            random_state=seed,
        )
        self.length = 0
        self.diverged = False
        self.errors = (DIVERGED_ERROR, DIVERGED_ERROR)

    def set_params(self, params: dict[str, Any]) -> None:
        """New hyperparameters for a clone (PBT explore): the weights stay."""
        self.net.set_params(
            learning_rate_init=float(params["learning_rate"]),
            momentum=float(params["momentum"]),
            alpha=float(params["alpha"]),
            batch_size=int(params["batch_size"]),
        )
        optimizer = getattr(self.net, "_optimizer", None)
        if optimizer is not None:  # sklearn keeps the rate and momentum in its optimizer
            optimizer.learning_rate = optimizer.learning_rate_init = float(params["learning_rate"])
            optimizer.momentum = float(params["momentum"])

    def error(self, x: np.ndarray, y: np.ndarray) -> float:
        """Classification error; the forward pass without sklearn's input checks (same
        predictions as ``predict``, a third of the time per epoch)."""
        try:
            scores = self.net._forward_pass_fast(x, check_input=False)
        except (AttributeError, TypeError):  # another scikit-learn: the public way
            return 1.0 - float(self.net.score(x, y))
        predicted = self.net.classes_[np.argmax(scores, axis=1)]
        return float(np.mean(predicted != y))

    def epoch(self, data: Digits) -> tuple[float, float]:
        """Train one epoch; (validation error, test error) afterwards."""
        self.length += 1
        if not self.diverged:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                try:
                    self.net.partial_fit(data.x_train, data.y_train, classes=data.classes)
                    self.errors = (
                        self.error(data.x_val, data.y_val),
                        self.error(data.x_test, data.y_test),
                    )
                except ValueError:  # "Solver produced non-finite parameter weights"
                    self.diverged = True
                    self.errors = (DIVERGED_ERROR, DIVERGED_ERROR)
        return self.errors


def model_seed(seed: int, number: int) -> int:
    return (seed * 1_000_003 + number) % (1 << 31)


class Trainer:
    """The ``train_fn`` and ``fork_fn`` for ``run_searcher``: models in memory, per trial."""

    def __init__(self, data: Digits, seed: int) -> None:
        self.data = data
        self.seed = seed
        self.models: dict[int, Model] = {}
        self.errors: dict[int, dict[int, tuple[float, float]]] = {}  # trial -> length -> errors

    def fork(self, child: int, parent: int, length: int) -> None:
        model = self.models.get(parent)
        if model is None:  # the parent never trained: the child starts afresh
            return
        assert model.length == length, (child, parent, model.length, length)
        self.models[child] = copy.deepcopy(model)

    def __call__(
        self, trial: int, params: dict[str, Any], parent: int | None, start: int, stop: int
    ) -> float:
        model = self.models.get(trial)
        if model is None:  # a new trial (or a clone of a parent that never trained)
            model = self.models[trial] = Model(params, model_seed(self.seed, trial))
        elif parent is not None:  # a clone: the parent's weights, its own hyperparameters
            model.set_params(params)  # (the width stays the parent's: weights fix it)
        assert model.length == start, (trial, model.length, start)
        record = self.errors.setdefault(trial, {})
        for _ in range(start, stop):
            errors = model.epoch(self.data)
            record[model.length] = errors
        return model.errors[0]


# -- methods ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Method:
    """A benchmarked method: a ridgeline searcher config, or an Optuna sampler and pruner."""

    name: str
    kind: str  # "ridgeline" or "optuna"
    label: str
    searcher: str = ""  # ridgeline searcher name
    sampler: str = ""  # optuna: random | tpe
    pruner: str = ""  # optuna: sha | hyperband
    overrides: tuple[tuple[str, Any], ...] = ()  # searcher fields changed (variants)
    capacity: int = 0  # trial processes at once; 0: the settings' capacity
    default: bool = True  # run by --methods all; the others are sensitivity variants

    def key(self) -> dict[str, Any]:
        """What identifies its results (fields at their defaults are left out)."""
        data = asdict(self)
        for name, value in (("overrides", ()), ("capacity", 0), ("default", True)):
            if data[name] == value or (name == "overrides" and not data[name]):
                del data[name]
        return data

    def processes(self, settings: Settings) -> int:
        return self.capacity or settings.capacity


METHODS: dict[str, Method] = {
    m.name: m
    for m in [
        Method("random", "ridgeline", "ridgeline random (full training)", searcher="random"),
        Method("adaptive_asha", "ridgeline", "ridgeline adaptive_asha", "adaptive_asha"),
        Method("async_halving", "ridgeline", "ridgeline async_halving (ASHA)", "async_halving"),
        Method("hyperband", "ridgeline", "ridgeline hyperband", "hyperband"),
        Method("sync_halving", "ridgeline", "ridgeline sync_halving", "sync_halving"),
        Method("pbt", "ridgeline", "ridgeline pbt", "pbt"),
        Method(
            "optuna_sha", "optuna", "Optuna SHA pruner + random", sampler="random", pruner="sha"
        ),
        Method(
            "optuna_hyperband",
            "optuna",
            "Optuna Hyperband pruner + random",
            sampler="random",
            pruner="hyperband",
        ),
        Method("optuna_sha_tpe", "optuna", "Optuna SHA pruner + TPE", sampler="tpe", pruner="sha"),
        Method(
            "optuna_hyperband_tpe",
            "optuna",
            "Optuna Hyperband pruner + TPE",
            sampler="tpe",
            pruner="hyperband",
        ),
        # Sensitivity variants of ASHA (--methods variants): settings other than the defaults.
        Method(
            "adaptive_asha_seq",
            "ridgeline",
            "variant: adaptive_asha, 1 trial at a time",
            "adaptive_asha",
            capacity=1,
            default=False,
        ),
        Method(
            "adaptive_asha_d4",
            "ridgeline",
            "variant: adaptive_asha, divisor 4",
            "adaptive_asha",
            overrides=(("divisor", 4),),
            default=False,
        ),
        Method(
            "adaptive_asha_aggressive",
            "ridgeline",
            "variant: adaptive_asha, mode aggressive",
            "adaptive_asha",
            overrides=(("mode", "aggressive"),),
            default=False,
        ),
        Method(
            "adaptive_asha_conservative",
            "ridgeline",
            "variant: adaptive_asha, mode conservative",
            "adaptive_asha",
            overrides=(("mode", "conservative"),),
            default=False,
        ),
        Method(
            "async_halving_r3",
            "ridgeline",
            "variant: async_halving, 3 rungs (9, 27, 81)",
            "async_halving",
            overrides=(("num_rungs", 3),),
            default=False,
        ),
        Method(
            "async_halving_seq",
            "ridgeline",
            "variant: async_halving, 1 trial at a time",
            "async_halving",
            capacity=1,
            default=False,
        ),
    ]
}
ASHA = "adaptive_asha"  # the method the targets are about
RIVAL = "optuna_hyperband"


def searcher_config(method: Method, settings: Settings, max_trials: int) -> dict[str, Any]:
    """The ``searcher:`` section for a ridgeline method (``max_trials`` where it applies)."""
    config = _searcher_config(method, settings, max_trials)
    config.update(dict(method.overrides))
    if method.capacity and "max_concurrent_trials" in config:
        config["max_concurrent_trials"] = method.capacity
    return config


def _searcher_config(method: Method, settings: Settings, max_trials: int) -> dict[str, Any]:
    common: dict[str, Any] = {
        "name": method.searcher,
        "metric": "validation_error",
        "smaller_is_better": True,
    }
    length, d, cap = settings.max_length, settings.divisor, settings.capacity
    if method.searcher == "pbt":
        per_round = length // settings.pbt_rounds
        return {
            **common,
            "population_size": settings.budget // (per_round * settings.pbt_rounds),
            "num_rounds": settings.pbt_rounds,
            "length_per_round": per_round,
            "replace_function": {"truncate_fraction": 0.25},
            "explore_function": {"resample_probability": 0.2, "perturb_factor": 0.2},
            "max_concurrent_trials": cap,
        }
    # Fields beyond the trial budget and length; sync_halving runs a rung at once (no cap).
    extra: dict[str, dict[str, Any]] = {
        "random": {"max_concurrent_trials": cap},
        "adaptive_asha": {"divisor": d, "max_rungs": settings.rungs, "max_concurrent_trials": cap},
        "async_halving": {"divisor": d, "num_rungs": settings.rungs, "max_concurrent_trials": cap},
        "hyperband": {"divisor": d, "max_rungs": settings.rungs, "max_concurrent_trials": cap},
        "sync_halving": {"divisor": d, "num_rungs": settings.rungs},
    }
    if method.searcher not in extra:
        raise ValueError(f"unknown ridgeline searcher {method.searcher!r}")
    if method.searcher == "async_halving":  # Determined's schema takes no bare integer here
        return {
            **common,
            "max_trials": max_trials,
            "max_length": {"epochs": length},
            **extra[method.searcher],
        }
    return {**common, "max_trials": max_trials, "max_length": length, **extra[method.searcher]}


def _dry_train(trial: int, params: dict[str, Any], parent: int | None, a: int, b: int) -> float:
    """A synthetic learning curve for calibration: quality from the trial number, crossing."""
    quality = random.Random(trial).random()
    return (quality - 0.3) ** 2 + (1.0 - quality) / max(b, 1)


def dry_budget(method: Method, settings: Settings, max_trials: int) -> float:
    from ridgeline.testing.simulate import run_searcher, searcher_from_config

    config = searcher_config(method, settings, max_trials)
    searcher, space, lower = searcher_from_config(config, HYPERPARAMETERS)
    processes = method.processes(settings)
    result = run_searcher(searcher, space, _dry_train, processes, lower, seed=0)
    return result.total_length


def calibrate(method: Method, settings: Settings) -> dict[str, Any]:
    """The config whose dry run spends the most epochs without exceeding the budget."""
    budget = settings.budget
    if method.searcher == "random":
        return searcher_config(method, settings, settings.random_trials)
    if method.searcher == "pbt":
        config = searcher_config(method, settings, 0)
        dry_budget(method, settings, 0)  # raises if this version cannot build it
        return config
    low, high = 1, settings.random_trials
    while dry_budget(method, settings, high) <= budget:  # grow until over budget
        low, high = high, high * 2
    high -= 1
    while low < high:
        middle = (low + high + 1) // 2
        if dry_budget(method, settings, middle) <= budget:
            low = middle
        else:
            high = middle - 1
    return searcher_config(method, settings, low)


def availability(method: Method) -> str | None:
    """None when the method can run here, else why not."""
    if method.kind == "optuna":
        try:
            import optuna  # noqa: F401
        except ImportError:
            return "Optuna is not installed (pip install optuna)"
        return None
    from ridgeline.errors import ConfigError
    from ridgeline.testing.simulate import searcher_from_config

    try:
        searcher_from_config(searcher_config(method, QUICK, 8), HYPERPARAMETERS)
    except ConfigError as exc:
        first = str(exc).strip().splitlines()
        reason = first[-1].strip(" -") if first else repr(exc)
        return f"this ridgeline cannot build the {method.searcher!r} searcher ({reason})"
    return None


# -- runs -------------------------------------------------------------------------------------
def improvements(stream: Sequence[tuple[float, float] | None]) -> list[list[float]]:
    """[epochs trained, validation error, test error] each time the validation error improved."""
    out: list[list[float]] = []
    best = math.inf
    for index, errors in enumerate(stream, start=1):
        if errors is not None and errors[0] < best:
            best = errors[0]
            out.append([index, errors[0], errors[1]])
    return out


def run_ridgeline(
    method: Method, settings: Settings, seed: int, config: dict[str, Any]
) -> dict[str, Any]:
    from ridgeline.testing.simulate import run_searcher, searcher_from_config

    searcher, space, lower = searcher_from_config(config, HYPERPARAMETERS)
    trainer = Trainer(Digits.get(settings), seed)
    result = run_searcher(
        searcher,
        space,
        trainer,
        method.processes(settings),
        lower,
        seed=seed,
        fork_fn=trainer.fork,
    )
    # Every epoch in the order it finished on the virtual clock (ties: trial, then length).
    epochs: list[tuple[float, int, int, tuple[float, float] | None]] = []
    for op in result.operations:
        record = trainer.errors.get(op.trial, {})
        whole = int(op.trained)
        for k in range(1, whole + 1):
            length = op.from_length + k
            errors = record.get(length) if op.completed else None
            epochs.append((op.start + k, op.trial, length, errors))
    epochs.sort(key=lambda e: (e[0], e[1], e[2]))
    reported = [
        [p.length_used, p.objective] for p in result.curve if p.objective == p.best
    ]  # the searcher's own view: best reported objective vs epochs
    return {
        "total_epochs": result.total_length,
        "n_trials": len(result.trials),
        "makespan": result.makespan,
        "peak_running": result.peak_running,
        "stalled": result.stalled,
        "shutdown": result.shutdown,
        "improvements": improvements([e[3] for e in epochs]),
        "reported_improvements": reported,
        "trials": [
            {
                "id": t.id,
                "params": t.params,
                "parent": t.parent,
                "start": t.start_length,
                "length": t.length,
                "status": t.status,
                "launches": t.launches,
                "ops": [[o.from_length, o.to_length, int(o.completed)] for o in t.operations],
            }
            for t in result.trials.values()
        ],
    }


class CheckpointTrainer:
    """The ``train_fn`` for ``run_on_engine``: the model travels in the trial's checkpoints,
    as ``(owner, model)``; a clone's first operation trains its parent's model on."""

    def __init__(self, data: Digits, seed: int) -> None:
        self.data = data
        self.seed = seed
        self.errors: dict[int, dict[int, tuple[float, float]]] = {}  # trial -> length -> errors

    def __call__(
        self, trial: int, params: dict[str, Any], state: Any, start: int, stop: int
    ) -> tuple[float, Any]:
        if state is None:
            model = Model(params, model_seed(self.seed, trial))
        else:
            owner, model = state
            if owner != trial:  # a clone: the parent's weights, its own hyperparameters
                model.set_params(params)
        assert model.length == start, (trial, model.length, start)
        record = self.errors.setdefault(trial, {})
        for _ in range(start, stop):
            errors = model.epoch(self.data)
            record[model.length] = errors
        return model.errors[0], (trial, model)


def run_ridgeline_engine(
    method: Method, settings: Settings, seed: int, config: dict[str, Any]
) -> dict[str, Any]:
    """``run_ridgeline`` through the real engine (coordinator, store, simulated trials)."""
    import tempfile

    from ridgeline.testing.engine_run import run_on_engine
    from ridgeline.testing.simulate import searcher_from_config

    searcher, space, lower = searcher_from_config(config, HYPERPARAMETERS)
    trainer = CheckpointTrainer(Digits.get(settings), seed)
    with tempfile.TemporaryDirectory(prefix="multifidelity-") as folder:
        run = run_on_engine(
            searcher, space, trainer, method.processes(settings), lower, seed=seed, folder=folder
        )
    # Every epoch in the order it finished on the simulated clock (ties: trial, then length).
    epochs: list[tuple[float, int, int, tuple[float, float] | None]] = []
    for op in run.operations:  # a process that died there left no errors of its own
        trained = op.outcome in ("completed", "preempted")
        record = trainer.errors.get(op.trial, {}) if trained else {}
        for k in range(1, op.trained + 1):
            length = op.from_length + k
            epochs.append((op.start + k, op.trial, length, record.get(length)))
    epochs.sort(key=lambda e: (e[0], e[1], e[2]))

    def used(moment: float) -> float:  # epochs trained by every trial until ``moment``
        return sum(min(max(moment - op.start, 0.0), op.end - op.start) for op in run.operations)

    best, reported = math.inf, []
    for report in run.reports:  # the searcher's own view: best reported objective vs epochs
        if report.objective <= best:
            best = report.objective
            reported.append([used(report.time), report.objective])
    return {
        "total_epochs": run.total_length(),
        "n_trials": len(run.trials),
        "makespan": run.makespan,
        "peak_running": run.peak_training(),
        "stalled": [],
        "shutdown": run.outcome == "COMPLETED",
        "wall_engine_s": run.wall_seconds,
        "improvements": improvements([e[3] for e in epochs]),
        "reported_improvements": reported,
        "trials": engine_trials(run),
    }


def engine_trials(run: Any) -> list[dict[str, Any]]:
    """``run_ridgeline``'s per-trial summary from an ``EngineRun``."""
    by_trial: dict[int, list[Any]] = {number: [] for number in run.trials}
    for op in run.operations:
        by_trial[op.trial].append(op)
    out = []
    for number, record in run.trials.items():
        ops = by_trial[number]
        done = [o for o in ops if o.outcome == "completed"]
        out.append(
            {
                "id": number,
                "params": record.params,
                "parent": run.parents[number],
                "start": ops[0].from_length if ops else 0,
                "length": max((o.reached for o in done), default=0),
                "status": record.state,
                "launches": max((o.attempt for o in ops), default=0),
                "ops": [[o.from_length, o.to_length, int(o.outcome == "completed")] for o in ops],
            }
        )
    return out


def suggest(trial: Any, hyperparameters: dict[str, Any]) -> dict[str, Any]:
    """The same space for Optuna (log: uniform in the exponent, as ridgeline samples it)."""
    params: dict[str, Any] = {}
    for name, hp in hyperparameters.items():
        if hp["type"] == "log":
            low, high = hp["base"] ** hp["minval"], hp["base"] ** hp["maxval"]
            params[name] = trial.suggest_float(name, low, high, log=True)
        elif hp["type"] == "double":
            params[name] = trial.suggest_float(name, hp["minval"], hp["maxval"])
        elif hp["type"] == "int":
            params[name] = trial.suggest_int(name, hp["minval"], hp["maxval"])
        else:
            params[name] = trial.suggest_categorical(name, hp["vals"])
    return params


def run_optuna(method: Method, settings: Settings, seed: int) -> dict[str, Any]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler: Any = (
        optuna.samplers.TPESampler(seed=seed)
        if method.sampler == "tpe"
        else optuna.samplers.RandomSampler(seed=seed)
    )
    pruner: Any = (
        optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=settings.max_length, reduction_factor=settings.divisor
        )
        if method.pruner == "hyperband"
        else optuna.pruners.SuccessiveHalvingPruner(
            min_resource=1, reduction_factor=settings.divisor, min_early_stopping_rate=0
        )
    )
    study = optuna.create_study(
        study_name=f"multifidelity-{method.name}-{seed}",  # Hyperband brackets hash the name
        direction="minimize",
        sampler=sampler,
        pruner=pruner,
    )
    data = Digits.get(settings)
    stream: list[tuple[float, float] | None] = []
    trials: list[dict[str, Any]] = []
    budget = settings.budget
    while len(stream) < budget:
        trial = study.ask()
        params = suggest(trial, HYPERPARAMETERS)
        model = Model(params, model_seed(seed, trial.number + 1))
        state = optuna.trial.TrialState.COMPLETE
        for step in range(1, settings.max_length + 1):
            if len(stream) >= budget:
                state = optuna.trial.TrialState.FAIL  # cut by the budget
                break
            errors = model.epoch(data)
            stream.append(errors)
            trial.report(errors[0], step)
            if trial.should_prune():
                state = optuna.trial.TrialState.PRUNED
                break
        if state == optuna.trial.TrialState.COMPLETE:
            study.tell(trial, model.errors[0])
        else:
            study.tell(trial, state=state)
        trials.append(
            {"id": trial.number + 1, "params": params, "length": model.length, "status": state.name}
        )
    return {
        "total_epochs": len(stream),
        "n_trials": len(trials),
        "improvements": improvements(stream),
        "trials": trials,
    }


def run_key(
    method: Method, settings: Settings, config: dict[str, Any] | None, engine: bool = False
) -> str:
    parts = [BENCH_VERSION, asdict(settings), method.key(), config, HYPERPARAMETERS]
    if engine and method.kind == "ridgeline":
        parts.append("engine")
    payload = json.dumps(parts, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def run_one(
    name: str,
    seed: int,
    settings: Settings,
    config: dict[str, Any] | None,
    path: str,
    engine: bool = False,
) -> dict[str, Any]:
    """One (method, seed): run it and write its JSON; returns the record. ``engine``: the
    ridgeline searchers run through the real engine on simulated time."""
    method = METHODS[name]
    start = time.perf_counter()
    if method.kind == "optuna":
        body = run_optuna(method, settings, seed)
    else:
        assert config is not None
        ridgeline = run_ridgeline_engine if engine else run_ridgeline
        body = ridgeline(method, settings, seed, config)
    record = {
        "method": name,
        "seed": seed,
        "key": run_key(method, settings, config, engine),
        "settings": asdict(settings),
        "config": config,
        "wall_s": time.perf_counter() - start,
        **body,
    }
    tmp = Path(path).with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, separators=(",", ":")))
    os.replace(tmp, path)
    return record


# -- analysis ---------------------------------------------------------------------------------
def best_within(record: dict[str, Any], epochs: float) -> tuple[float, float] | None:
    """(validation error, test error) of the best checkpoint among the first ``epochs``."""
    best = None
    for k, val, test in record["improvements"]:
        if k > epochs:
            break
        best = (val, test)
    return best


def epochs_to_reach(record: dict[str, Any], target: float, limit: float) -> float | None:
    """Epochs trained when the validation error first got to ``target`` (None: not within
    ``limit`` epochs)."""
    for k, val, _ in record["improvements"]:
        if k > limit:
            break
        if val <= target:
            return float(k)
    return None


def _mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else math.nan


def _sd(values: Sequence[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:.2f}"


def summarize(
    records: dict[str, dict[int, dict[str, Any]]], settings: Settings, skipped: dict[str, str]
) -> tuple[str, dict[str, Any]]:
    """The Markdown tables and the numbers behind them."""
    budget = settings.budget
    lines: list[str] = []
    numbers: dict[str, Any] = {"budget": budget, "methods": {}}
    randoms = records.get("random", {})
    seeds = sorted(randoms)
    lines.append(
        f"Task: MLP on digits ({settings.n_train} train / {settings.n_val} validation / "
        f"{1797 - settings.n_train - settings.n_val} test), max_length {settings.max_length} "
        f"epochs, budget B = {settings.random_trials} x {settings.max_length} = {budget} "
        f"epochs per run, divisor {settings.divisor}, {settings.capacity} ridgeline trials at "
        f"once (Optuna: one at a time). Seeds: {', '.join(map(str, seeds)) or 'none'}."
    )
    lines.append("")
    if not randoms:
        lines.append("(random search has no results: targets cannot be computed)")
        return "\n".join(lines), numbers
    targets = {s: randoms[s]["improvements"][-1][1] for s in seeds}
    random_reach = [epochs_to_reach(randoms[s], targets[s], budget) or budget for s in seeds]
    asha = records.get(ASHA, {})

    lines.append(
        "(a) Epochs to first reach the best validation error random search reaches with its "
        "whole budget B (same seed). Only the first B epochs of a run count; a run that does "
        "not get there within B counts as B (shown as >=). Mean and median over seeds."
    )
    lines.append("")
    lines.append(
        "| Method | Trials | Epochs run | Reached | Epochs to reach (mean) | median "
        "| mean vs random's | mean / B |"
    )
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    random_mean = _mean(random_reach)
    for name, method in METHODS.items():
        runs = records.get(name, {})
        common = [s for s in seeds if s in runs]
        if not common:
            continue
        reach = [epochs_to_reach(runs[s], targets[s], budget) for s in common]
        counted = [float(budget) if r is None else r for r in reach]
        hit = sum(r is not None for r in reach)
        mean, median = _mean(counted), statistics.median(counted)
        prefix = "" if hit == len(common) else ">="
        mid = ">=" if median >= budget and hit < len(common) else ""
        lines.append(
            f"| {method.label} | {_mean([runs[s]['n_trials'] for s in common]):.0f} "
            f"| {_mean([runs[s]['total_epochs'] for s in common]):.0f} | {hit}/{len(common)} "
            f"| {prefix}{mean:.0f} | {mid}{median:.0f} | {prefix}{mean / random_mean:.2f}x "
            f"| {prefix}{mean / budget:.2f} |"
        )
        numbers["methods"].setdefault(name, {}).update(
            {
                "seeds": common,
                "epochs_used": [runs[s]["total_epochs"] for s in common],
                "epochs_to_reach": reach,
                "epochs_to_reach_mean": mean,
                "epochs_to_reach_median": median,
                "reached": hit,
                "vs_random": mean / random_mean,
                "wall_s": [runs[s]["wall_s"] for s in common],
            }
        )
    numbers["random_target"] = targets
    numbers["random_epochs_to_reach_mean"] = random_mean
    lines.append("")

    # ASHA's budget, capped at B: no method may use more than B epochs.
    equal = {s: min(asha[s]["total_epochs"], budget) for s in asha} if asha else {}
    ninth, third = budget / 9, budget / 3
    lines.append(
        f"(b) Best validation error (%) at equal budgets: B/9 = {ninth:.0f} and B/3 = "
        f"{third:.0f} epochs, and the epochs adaptive ASHA used capped at B (mean "
        f"{_mean(list(equal.values())):.0f}), with the test error (%) of the checkpoint chosen "
        f"there. Mean +- sd over seeds."
    )
    lines.append("")
    lines.append("| Method | @ B/9 | @ B/3 | @ ASHA's budget | test there |")
    lines.append("|---|---:|---:|---:|---:|")
    for name, method in METHODS.items():
        runs = records.get(name, {})
        common = [s for s in seeds if s in runs]
        if not common:
            continue
        cells: list[str] = []
        stats: dict[str, Any] = {}
        limits: list[tuple[str, Callable[[int], float]]] = [
            ("b9", lambda s: ninth),
            ("b3", lambda s: third),
            ("asha", lambda s: equal.get(s, math.nan)),
        ]
        for label, limit in limits:
            vals, tests = [], []
            for s in common:
                limit_s = limit(s)
                found = None if math.isnan(limit_s) else best_within(runs[s], limit_s)
                if found is not None:
                    vals.append(found[0])
                    tests.append(found[1])
            stats[label] = vals
            stats[f"{label}_test"] = tests
            cells.append(f"{pct(_mean(vals))} +- {pct(_sd(vals))}" if vals else "n/a")
            if label == "asha":
                cells.append(pct(_mean(tests)) if tests else "n/a")
        lines.append(f"| {method.label} | " + " | ".join(cells) + " |")
        numbers["methods"].setdefault(name, {}).update({"best": stats})
    if skipped:
        lines.append("")
        lines.append("Not run:")
        for name, why in skipped.items():
            lines.append(f"- {name}: {why}")
    return "\n".join(lines), numbers


def verdict(numbers: dict[str, Any]) -> list[str]:
    """The two targets, stated plainly."""
    out: list[str] = []
    methods = numbers.get("methods", {})
    asha = methods.get(ASHA)
    random_mean = numbers.get("random_epochs_to_reach_mean")
    if asha and random_mean:
        ratio = asha["epochs_to_reach_mean"] / random_mean
        out.append(
            f"target (a): adaptive ASHA needs {ratio:.2f}x random's epochs to reach random's "
            f"best (target <= 0.33x): {'met' if ratio <= 1 / 3 else 'MISSED'}; reached in "
            f"{asha['reached']}/{len(asha['seeds'])} seeds; "
            f"{asha['epochs_to_reach_mean'] / numbers['budget']:.2f} of random's whole budget"
        )
    rival = methods.get(RIVAL)
    if asha and rival:
        a, r = asha["best"]["asha"], rival["best"]["asha"]
        if a and r:
            wins = sum(x <= y for x, y in zip(a, r, strict=False))
            ok = _mean(a) <= _mean(r)
            out.append(
                f"target (b): at ASHA's budget adaptive ASHA {pct(_mean(a))}% vs Optuna "
                f"Hyperband pruner {pct(_mean(r))}% validation error: "
                f"{'met' if ok else 'MISSED'} (ASHA at least as good in {wins}/{len(a)} seeds)"
            )
    return out


# -- command line -----------------------------------------------------------------------------
def parse_seeds(text: str) -> list[int]:
    """``5`` (seeds 0-4), ``0-9``, or ``1,3,7``."""
    if text.isdigit():
        return list(range(int(text)))
    seeds: list[int] = []
    for part in text.split(","):
        if "-" in part:
            a, b = part.split("-")
            seeds.extend(range(int(a), int(b) + 1))
        elif part:
            seeds.append(int(part))
    return seeds


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--seeds", default=None, help="5 (0-4, default; quick: 2), 0-9 or 1,3")
    parser.add_argument(
        "--methods",
        default="all",
        help=f"all (the default set), variants (ASHA settings), or comma-separated from: "
        f"{', '.join(METHODS)}",
    )
    parser.add_argument("--quick", action="store_true", help="27 epochs, B = 16 x 27, 2 seeds")
    parser.add_argument("--jobs", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--force", action="store_true", help="rerun finished (method, seed)s")
    parser.add_argument("--results", default=None, help="results folder")
    parser.add_argument("--report-only", action="store_true", help="only print stored results")
    parser.add_argument(
        "--engine",
        action="store_true",
        help="run ridgeline's searchers through the real engine (coordinator, store) on "
        "simulated time, instead of testing.simulate",
    )
    args = parser.parse_args(argv)

    settings = QUICK if args.quick else Settings()
    seeds = parse_seeds(args.seeds or ("2" if args.quick else "5"))
    names: list[str] = []
    for item in args.methods.split(","):
        if item == "all":
            names.extend(n for n, m in METHODS.items() if m.default)
        elif item == "variants":
            names.extend(n for n, m in METHODS.items() if not m.default)
        else:
            names.append(item)
    names = list(dict.fromkeys(names))
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        parser.error(f"unknown methods {unknown}; choose from {', '.join(METHODS)}")
    kind = "multifidelity" + ("-engine" if args.engine else "") + ("-quick" if args.quick else "")
    folder = Path(args.results) if args.results else RESULTS / kind
    folder.mkdir(parents=True, exist_ok=True)

    skipped: dict[str, str] = {}
    configs: dict[str, dict[str, Any] | None] = {}
    for name in names:
        method = METHODS[name]
        why = availability(method)
        if why is not None:
            skipped[name] = why
            print(f"skip {name}: {why}", flush=True)
            continue
        configs[name] = calibrate(method, settings) if method.kind == "ridgeline" else None
        if configs[name] is not None:
            print(f"{name}: {json.dumps(configs[name])}", flush=True)

    records: dict[str, dict[int, dict[str, Any]]] = {}
    todo: list[tuple[str, int, str]] = []
    for name, config in configs.items():
        key = run_key(METHODS[name], settings, config, args.engine)
        for seed in seeds:
            path = folder / f"{name}-seed{seed}.json"
            if path.exists() and not args.force:
                stored = json.loads(path.read_text())
                if stored.get("key") == key:
                    records.setdefault(name, {})[seed] = stored
                    continue
            todo.append((name, seed, str(path)))
    if args.report_only:
        todo = []
    # Long runs first so the pool ends together.
    todo.sort(key=lambda item: (METHODS[item[0]].kind != "ridgeline", item[0], item[1]))
    start = time.perf_counter()
    if todo:
        print(f"running {len(todo)} (method, seed) runs on {args.jobs} process(es)", flush=True)
        run = run_one
        if args.jobs <= 1:
            for name, seed, out in todo:
                record = run(name, seed, settings, configs[name], out, args.engine)
                records.setdefault(name, {})[seed] = record
                _progress(record)
        else:
            with ProcessPoolExecutor(max_workers=args.jobs) as pool:
                futures = [
                    pool.submit(run, name, seed, settings, configs[name], out, args.engine)
                    for name, seed, out in todo
                ]
                for future in as_completed(futures):
                    record = future.result()
                    records.setdefault(record["method"], {})[record["seed"]] = record
                    _progress(record)
        print(f"ran in {time.perf_counter() - start:.0f} s", flush=True)
    records = {n: {s: r for s, r in runs.items() if s in seeds} for n, runs in records.items()}
    table, numbers = summarize(records, settings, skipped)
    if args.engine:
        table = (
            "ridgeline's searchers ran through the real engine on simulated time (--engine).\n\n"
            + table
        )
    lines = verdict(numbers)
    print()
    print(table)
    print()
    for line in lines:
        print(line)
    numbers["verdict"] = lines
    numbers["skipped"] = skipped
    stem = "summary" if args.methods == "all" else "summary-custom"  # custom: --methods given
    (folder / f"{stem}.md").write_text(table + "\n\n" + "\n".join(lines) + "\n")
    (folder / f"{stem}.json").write_text(json.dumps(numbers, indent=1, default=str))
    return 0


def _progress(record: dict[str, Any]) -> None:
    best = record["improvements"][-1][1] if record["improvements"] else math.nan
    print(
        f"  {record['method']:<22} seed {record['seed']}: {record['n_trials']:>4} trials, "
        f"{record['total_epochs']:>6.0f} epochs, best val {pct(best)}%, "
        f"{record['wall_s']:.0f} s",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
