"""``ridgeline.sklearn.SearchCV`` against scikit-learn's own ``GridSearchCV``, on its bundled
datasets and real estimators."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_digits, load_iris  # noqa: E402
from sklearn.exceptions import FitFailedWarning  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import GridSearchCV, KFold  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.svm import SVC  # noqa: E402
from sklearn.tree import DecisionTreeClassifier  # noqa: E402

import ridgeline  # noqa: E402
from ridgeline.errors import ConfigError  # noqa: E402
from ridgeline.sklearn import SearchCV  # noqa: E402


def _by_params(results: dict, key: str) -> dict[str, float]:
    return {
        repr(sorted(p.items())): v for p, v in zip(results["params"], results[key], strict=True)
    }


def test_grid_matches_gridsearchcv_on_iris() -> None:
    X, y = load_iris(return_X_y=True)
    grid = {"C": [0.01, 0.1, 1.0, 10.0], "kernel": ["linear", "rbf"], "gamma": ["scale", 0.01]}
    ours = SearchCV(SVC(), grid, cv=5).fit(X, y)
    theirs = GridSearchCV(SVC(), grid, cv=5).fit(X, y)

    assert ours.best_params_ == theirs.best_params_
    assert ours.best_score_ == pytest.approx(theirs.best_score_)
    assert len(ours.cv_results_["params"]) == 16 == len(theirs.cv_results_["params"])
    for key in ["mean_test_score", "std_test_score", "rank_test_score"] + [
        f"split{k}_test_score" for k in range(5)
    ]:
        assert _by_params(ours.cv_results_, key) == pytest.approx(
            _by_params(theirs.cv_results_, key)
        ), key
    assert set(ours.cv_results_["status"]) == {"COMPLETED"}
    assert list(ours.cv_results_["param_kernel"]) == [
        p["kernel"] for p in ours.cv_results_["params"]
    ]
    # the refitted best estimator answers as GridSearchCV's does
    assert (ours.predict(X) == theirs.predict(X)).all()
    assert ours.score(X, y) == pytest.approx(theirs.score(X, y))
    assert ours.decision_function(X) == pytest.approx(theirs.decision_function(X))
    assert list(ours.classes_) == [0, 1, 2]
    assert ours.n_splits_ == 5 and ours.refit_time_ > 0
    assert not hasattr(ours, "predict_proba")  # SVC() has none: delegation follows the estimator
    # every fold was one iteration of its configuration's trial in the study
    results = ours.study_.results
    assert sorted(set(results["Iteration"])) == [1, 2, 3, 4, 5]
    assert len(results[results["Status"] == "INTERMEDIATE"]) == 16 * 5


def test_stopping_rule_cuts_poor_configurations_after_a_few_folds() -> None:
    X, y = load_digits(return_X_y=True)
    X, y = X[::3], y[::3]  # 599 images: quick, still 10 classes
    name = "logisticregression__C"
    search = SearchCV(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)),
        {name: ridgeline.Continuous(name, [1e-5, 10.0], scale="log")},
        ridgeline.algorithms.RandomSearch(max_num_trials=12),
        stopping_rule=ridgeline.MedianStoppingRule(min_iterations=2, min_trials=2),
        cv=KFold(5, shuffle=True, random_state=0),
        n_jobs=2,
        random_state=3,
    ).fit(X, y)
    res = search.cv_results_
    stopped = res["status"] == "STOPPED"
    assert 1 <= stopped.sum() < 12, res["status"]
    assert (res["n_folds_run"][stopped] < 5).all() and (res["n_folds_run"][~stopped] == 5).all()
    assert np.isnan(res["split4_test_score"][stopped]).all()
    # a stopped configuration never ranks above a completed one
    assert res["rank_test_score"][stopped].min() > res["rank_test_score"][~stopped].max()
    best = search.best_index_
    assert res["status"][best] == "COMPLETED" and res["rank_test_score"][best] == 1
    assert search.best_score_ == res["mean_test_score"][~stopped].max()
    statuses = search.study_.results.groupby("Trial-ID")["Status"].last()
    assert (statuses == "STOPPED").sum() == stopped.sum()
    assert search.score(X, y) > 0.9


def test_failing_fits_take_error_score_or_raise() -> None:
    X, y = load_breast_cancer(return_X_y=True)
    grid = {"max_depth": [2, 4], "min_samples_leaf": [1, -3]}  # -3 is refused by the tree
    with pytest.warns(FitFailedWarning, match="min_samples_leaf"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Trial .* has only NaN", RuntimeWarning)
        search = SearchCV(DecisionTreeClassifier(random_state=0), grid, cv=3).fit(X, y)
    res = search.cv_results_
    bad = [p["min_samples_leaf"] == -3 for p in res["params"]]
    assert np.isnan(res["mean_test_score"][bad]).all()
    assert list(res["status"][bad]) == ["FAILED", "FAILED"]
    assert search.best_params_["min_samples_leaf"] == 1
    assert res["rank_test_score"][bad].min() > res["rank_test_score"][np.logical_not(bad)].max()
    with pytest.raises(ValueError, match="min_samples_leaf"):
        SearchCV(DecisionTreeClassifier(), grid, cv=3, error_score="raise").fit(X, y)


def test_refit_false_clone_and_bad_input() -> None:
    X, y = load_iris(return_X_y=True)
    search = SearchCV(LogisticRegression(max_iter=500), {"C": [0.1, 1.0]}, cv=3, refit=False)
    assert clone(search).get_params()["space"] == {"C": [0.1, 1.0]}
    search.fit(X, y)
    assert search.best_params_ in search.cv_results_["params"]
    with pytest.raises(AttributeError, match="refit=False"):
        search.predict(X)
    with pytest.raises(ConfigError, match="list of grids"):
        SearchCV(SVC(), [{"C": [1]}, {"C": [2]}]).fit(X, y)
    with pytest.raises(ConfigError, match="one scorer"):
        SearchCV(SVC(), {"C": [1]}, scoring=["accuracy", "f1_macro"]).fit(X, y)
    with pytest.raises(ConfigError, match="empty"):
        SearchCV(SVC(), {"C": []}).fit(X, y)
