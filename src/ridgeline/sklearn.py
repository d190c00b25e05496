"""``SearchCV``: scikit-learn's ``GridSearchCV`` conventions on ridgeline's algorithms.

Each trial is one configuration and its cross-validation folds are the trial's iterations
(iteration k reports the mean test score of the first k folds). A stopping rule
(``MedianStoppingRule``) therefore cuts a poor configuration after a few folds instead of
fitting all of them, and a model-based algorithm learns from finished configurations. The
search runs on the in-process engine (``ridgeline.Study``): folds need the training data, which
lives in this process, so shipping it to trial processes would cost more than it gains. Up to
``n_jobs`` configurations run at once, their next folds fitted in parallel through joblib
(scikit-learn's own parallel backend), each round in step so stopping rules compare equals.

scikit-learn is an optional dependency: ``pip install ridgeline[sklearn]``.
"""

from __future__ import annotations

import numbers
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from ridgeline.sherpa.algorithms import GridSearch
from ridgeline.sherpa.study import Study

try:
    import numpy as np
    from joblib import Parallel, delayed, effective_n_jobs
    from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier
    from sklearn.exceptions import FitFailedWarning
    from sklearn.metrics import check_scoring
    from sklearn.model_selection import check_cv
    from sklearn.utils import _safe_indexing
    from sklearn.utils.metaestimators import available_if
    from sklearn.utils.validation import check_is_fitted, indexable
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "ridgeline.sklearn needs scikit-learn: pip install 'ridgeline[sklearn]'"
    ) from exc

from ridgeline.errors import ConfigError
from ridgeline.space import Choice, Parameter
from ridgeline.trial.records import Trial, TrialStatus


def _parameters(space: Any) -> list[Parameter]:
    """ridgeline parameters from ``{name: [values]}`` (a grid, as ``GridSearchCV``'s
    ``param_grid``), ``{name: Parameter}`` or a list of parameters."""
    if isinstance(space, Mapping):
        out: list[Parameter] = []
        for name, values in space.items():
            if isinstance(values, Parameter):
                if values.name != name:
                    raise ConfigError(
                        f"space[{name!r}] is a parameter named {values.name!r}; use the same name"
                    )
                out.append(values)
            elif isinstance(values, Sequence | np.ndarray) and not isinstance(values, str):
                if len(values) == 0:
                    raise ConfigError(f"space[{name!r}] is empty; give at least one value")
                out.append(Choice(str(name), [_plain(v) for v in values]))
            else:
                raise ConfigError(
                    f"space[{name!r}] must be a list of values or a ridgeline parameter, "
                    f"got {values!r}"
                )
        return out
    if isinstance(space, Sequence) and space and all(isinstance(p, Parameter) for p in space):
        return list(space)
    raise ConfigError(
        "space must be a dict {name: [values]} (one grid, as GridSearchCV's param_grid; a list "
        f"of grids is not supported) or a list of ridgeline parameters, got {space!r}"
    )


def _plain(value: Any) -> Any:
    """NumPy scalars as Python values: parameters are stored as JSON."""
    item = getattr(value, "item", None)
    return item() if isinstance(value, np.generic) and callable(item) else value


def _fit_and_score(
    estimator: Any,
    X: Any,
    y: Any,
    scorer: Any,
    train: Any,
    test: Any,
    fit_params: dict[str, Any],
    error_score: Any,
) -> tuple[float, float, float, str | None]:
    """One fold: (test score, fit seconds, score seconds, error text or None)."""
    n_samples = len(X)
    params = {
        k: _safe_indexing(v, train) if hasattr(v, "__len__") and len(v) == n_samples else v
        for k, v in fit_params.items()
    }
    X_train, X_test = _safe_indexing(X, train), _safe_indexing(X, test)
    y_train = None if y is None else _safe_indexing(y, train)
    y_test = None if y is None else _safe_indexing(y, test)
    start = time.perf_counter()
    try:
        estimator.fit(X_train, y_train, **params)
    except Exception as exc:
        if isinstance(error_score, str) and error_score == "raise":
            raise
        return float(error_score), time.perf_counter() - start, 0.0, f"{type(exc).__name__}: {exc}"
    fit_time = time.perf_counter() - start
    start = time.perf_counter()
    score = scorer(estimator, X_test, y_test)
    return float(score), fit_time, time.perf_counter() - start, None


class _Run:
    """A configuration being cross-validated: its trial and its folds' outcomes so far."""

    def __init__(self, trial: Trial) -> None:
        self.trial = trial
        self.scores: list[float] = []
        self.fit_times: list[float] = []
        self.score_times: list[float] = []
        self.failures = 0
        self.status = TrialStatus.COMPLETED


def _estimator_has(attr: str) -> Any:
    def check(self: SearchCV) -> bool:
        if hasattr(self, "best_estimator_"):
            return hasattr(self.best_estimator_, attr)
        return hasattr(self.estimator, attr)

    return check


class SearchCV(MetaEstimatorMixin, BaseEstimator):
    """Cross-validated search over ``space`` with a ridgeline ``algorithm``.

    Parameters follow ``GridSearchCV``: ``cv`` (folds or splitter), ``scoring`` (one scorer;
    higher is better), ``n_jobs`` (configurations cross-validated at once), ``refit``,
    ``error_score`` (``np.nan`` records a failing fit; ``"raise"`` raises it). ``algorithm``
    defaults to ``GridSearch()`` (every combination of the values in ``space``);
    ``stopping_rule`` (e.g. ``MedianStoppingRule(min_iterations=2)``) stops a configuration
    after any fold, ``storage`` makes the search durable, ``random_state`` seeds the algorithm.

    After ``fit``: ``best_params_``, ``best_score_``, ``best_index_``, ``best_estimator_``
    (with ``refit``), ``cv_results_``, ``n_splits_``, ``scorer_``, ``refit_time_`` and
    ``study_`` (the ridgeline Study: ``study_.results`` has every fold's report).
    ``cv_results_`` also has ``status`` (COMPLETED; STOPPED by the stopping rule; FAILED when
    every fold's fit failed), ``n_folds_run`` and ``trial_id``; the mean of a stopped
    configuration covers only its folds run, and it ranks after every completed one.
    """

    def __init__(
        self,
        estimator: Any,
        space: Any,
        algorithm: Any = None,
        *,
        stopping_rule: Any = None,
        scoring: Any = None,
        n_jobs: int | None = None,
        refit: bool = True,
        cv: Any = 5,
        error_score: Any = np.nan,
        random_state: int | None = None,
        storage: Any = None,
    ) -> None:
        self.estimator = estimator
        self.space = space
        self.algorithm = algorithm
        self.stopping_rule = stopping_rule
        self.scoring = scoring
        self.n_jobs = n_jobs
        self.refit = refit
        self.cv = cv
        self.error_score = error_score
        self.random_state = random_state
        self.storage = storage

    # -- fitting -----------------------------------------------------------------------------
    def _check_options(self) -> None:
        if not (isinstance(self.scoring, str | type(None)) or callable(self.scoring)):
            raise ConfigError(
                f"scoring must be one scorer (a name or a callable), got {self.scoring!r}; "
                "several metrics at once are not supported"
            )
        if not isinstance(self.refit, bool):
            raise ConfigError(f"refit must be True or False, got {self.refit!r}")
        if not (
            (isinstance(self.error_score, str) and self.error_score == "raise")
            or isinstance(self.error_score, numbers.Real)
        ):
            raise ConfigError(f"error_score must be 'raise' or a number, got {self.error_score!r}")

    def fit(self, X: Any, y: Any = None, groups: Any = None, **fit_params: Any) -> SearchCV:
        """Cross-validate the configurations the algorithm proposes; refit the best."""
        self._check_options()
        parameters = _parameters(self.space)
        X, y, groups = indexable(X, y, groups)
        splitter = check_cv(self.cv, y, classifier=is_classifier(self.estimator))
        folds = list(splitter.split(X, y, groups))
        self.n_splits_ = len(folds)
        self.scorer_ = check_scoring(self.estimator, scoring=self.scoring)
        study = Study(
            parameters,
            self.algorithm if self.algorithm is not None else GridSearch(),
            lower_is_better=False,
            stopping_rule=self.stopping_rule,
            seed=self.random_state,
            storage=self.storage,
        )
        width = max(1, effective_n_jobs(self.n_jobs))
        runs = self._search(study, X, y, folds, fit_params, width)
        self.study_ = study
        self._results(runs, parameters)
        if not any(r.status == TrialStatus.COMPLETED for r in runs):
            raise RuntimeError(
                "no configuration finished all its folds; loosen the stopping rule"
                if runs
                else "the algorithm proposed no configuration"
            )
        self.best_index_ = int(np.argmin(self.cv_results_["rank_test_score"]))
        self.best_params_ = dict(self.cv_results_["params"][self.best_index_])
        self.best_score_ = float(self.cv_results_["mean_test_score"][self.best_index_])
        if self.refit:
            self.best_estimator_ = clone(self.estimator).set_params(**self.best_params_)
            start = time.perf_counter()
            self.best_estimator_.fit(X, y, **fit_params)
            self.refit_time_ = time.perf_counter() - start
            if hasattr(self.best_estimator_, "feature_names_in_"):
                self.feature_names_in_ = self.best_estimator_.feature_names_in_
        self.multimetric_ = False
        return self

    def _search(
        self,
        study: Any,
        X: Any,
        y: Any,
        folds: list[tuple[Any, Any]],
        fit_params: dict[str, Any],
        width: int,
    ) -> list[_Run]:
        """Fold k of every active configuration per round; report, then stop or finish."""
        runs: list[_Run] = []
        active: list[_Run] = []
        with Parallel(n_jobs=width) as parallel:
            while True:
                while len(active) < width:
                    trial = study.get_suggestion()
                    if not isinstance(trial, Trial):
                        break
                    run = _Run(trial)
                    runs.append(run)
                    active.append(run)
                if not active:
                    return runs
                outcomes = parallel(
                    delayed(_fit_and_score)(
                        clone(self.estimator).set_params(**run.trial.parameters),
                        X,
                        y,
                        self.scorer_,
                        *folds[len(run.scores)],
                        fit_params,
                        self.error_score,
                    )
                    for run in active
                )
                for run, (score, fit_time, score_time, error) in zip(active, outcomes, strict=True):
                    if error is not None:
                        run.failures += 1
                        warnings.warn(
                            f"fitting {run.trial.parameters} on fold {len(run.scores)} failed "
                            f"({error}); its score is error_score={self.error_score}",
                            FitFailedWarning,
                            stacklevel=2,
                        )
                    run.scores.append(score)
                    run.fit_times.append(fit_time)
                    run.score_times.append(score_time)
                    study.add_observation(
                        run.trial,
                        objective=float(np.mean(run.scores)),
                        iteration=len(run.scores),
                        context={"fold_score": score},
                    )
                still: list[_Run] = []
                for run in active:
                    if len(run.scores) == len(folds):
                        if run.failures == len(folds):  # nothing fitted: honest FAILED
                            run.status = TrialStatus.FAILED
                        study.finalize(run.trial, run.status)
                    elif study.should_trial_stop(run.trial):
                        run.status = TrialStatus.STOPPED
                        study.finalize(run.trial, TrialStatus.STOPPED)
                    else:
                        still.append(run)
                active = still

    def _results(self, runs: list[_Run], parameters: list[Parameter]) -> None:
        """``cv_results_`` in GridSearchCV's layout, one entry per configuration."""
        n = len(runs)
        splits = np.full((n, self.n_splits_), np.nan)
        for i, run in enumerate(runs):
            splits[i, : len(run.scores)] = run.scores
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows
            means = np.nanmean(splits, axis=1) if n else np.zeros(0)
            stds = np.nanstd(splits, axis=1) if n else np.zeros(0)
        completed = np.array([r.status == TrialStatus.COMPLETED for r in runs], dtype=bool)
        # completed first, then by mean (NaN last), ties sharing the lowest rank (as sklearn)
        key = np.where(np.isnan(means), -np.inf, means)
        order = sorted(range(n), key=lambda i: (not completed[i], -key[i]))
        ranks = np.zeros(n, dtype=np.int32)
        for position, i in enumerate(order):
            previous = order[position - 1] if position else None
            same = previous is not None and (
                completed[previous] == completed[i] and key[previous] == key[i]
            )
            ranks[i] = ranks[previous] if same and previous is not None else position + 1
        results: dict[str, Any] = {
            "mean_fit_time": np.array([np.mean(r.fit_times) for r in runs]),
            "std_fit_time": np.array([np.std(r.fit_times) for r in runs]),
            "mean_score_time": np.array([np.mean(r.score_times) for r in runs]),
            "std_score_time": np.array([np.std(r.score_times) for r in runs]),
        }
        for p in parameters:
            column = np.ma.MaskedArray(np.empty(n, dtype=object), mask=False)
            for i, run in enumerate(runs):
                column[i] = run.trial.parameters.get(p.name)
            results[f"param_{p.name}"] = column
        results["params"] = [dict(r.trial.parameters) for r in runs]
        for k in range(self.n_splits_):
            results[f"split{k}_test_score"] = splits[:, k]
        results["mean_test_score"] = means
        results["std_test_score"] = stds
        results["rank_test_score"] = ranks
        results["status"] = np.array([str(r.status) for r in runs], dtype=object)
        results["n_folds_run"] = np.array([len(r.scores) for r in runs], dtype=np.int32)
        results["trial_id"] = np.array([r.trial.id for r in runs], dtype=np.int64)
        self.cv_results_ = results

    # -- the refitted best estimator ---------------------------------------------------------
    def _best(self) -> Any:
        if not self.refit:
            raise AttributeError(
                f"{type(self).__name__} was made with refit=False: no best_estimator_ to use; "
                "fit one with best_params_"
            )
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_

    def score(self, X: Any, y: Any = None) -> float:
        """The scorer's value for the refitted best estimator (as ``GridSearchCV.score``)."""
        return float(self.scorer_(self._best(), X, y))

    @available_if(_estimator_has("predict"))
    def predict(self, X: Any) -> Any:
        return self._best().predict(X)

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X: Any) -> Any:
        return self._best().predict_proba(X)

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X: Any) -> Any:
        return self._best().decision_function(X)

    @available_if(_estimator_has("transform"))
    def transform(self, X: Any) -> Any:
        return self._best().transform(X)

    @property
    def classes_(self) -> Any:
        return self._best().classes_


__all__ = ["SearchCV"]
