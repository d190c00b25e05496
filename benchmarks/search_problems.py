"""Problem classes for benchmarks/search_quality.py beyond its smooth functions and first
scikit-learn tasks: where model-based search is known to struggle.

* **multimodal**: Ackley (10-d) and Levy (6-d), optima moved away from the centre and from any
  round grid (a search that favours the centre or the corners gains nothing);
* **mixed**: continuous, log-scaled, integer, log-integer and categorical parameters with
  interactions (the best value of one parameter depends on a category) and a categorical trap
  (a broad, shallow basin next to a narrow, deep one);
* **noisy**: Hartmann-6 observed with Gaussian noise (sd 0.1, a third of its range near the
  optimum); a run is scored by the true value of the point it would pick (its best observation);
* **high-dim**: a shifted Styblinski-Tang in 20 dimensions;
* **sklearn-int**: integer-dominated model tuning with log-scaled integers, three model families
  on scikit-learn's bundled data (histogram gradient boosting, k-nearest neighbours, a decision
  tree).

Every function is a minimisation with a known optimum, except the scikit-learn tasks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

# Shifts: irrational-looking values, none on a 1/2, 1/4 or 1/10 grid of the domain.
_ACKLEY_SHIFT = (13.71, -21.37, 7.93, -3.61, 18.29, -11.83, 24.07, -16.49, 5.27, -27.13)
_LEVY_SHIFT = (3.37, -6.71, 2.19, -4.43, 7.61, -1.87)
_ST_SHIFT = tuple(0.731 * math.sin(2.3 * j + 0.7) for j in range(20))
_ST_OPT = -2.903534  # Styblinski-Tang's optimum in each coordinate (before the shift)


def _xs(p: Mapping[str, Any], d: int) -> list[float]:
    return [float(p[f"x{j}"]) for j in range(d)]


def ackley10(p: Mapping[str, Any]) -> float:
    """Ackley on [-32.768, 32.768]^10, minimum 0 at ``_ACKLEY_SHIFT``."""
    z = [x - s for x, s in zip(_xs(p, 10), _ACKLEY_SHIFT, strict=True)]
    d = len(z)
    a = -20.0 * math.exp(-0.2 * math.sqrt(sum(v * v for v in z) / d))
    b = -math.exp(sum(math.cos(2 * math.pi * v) for v in z) / d)
    return a + b + 20.0 + math.e


def levy6(p: Mapping[str, Any]) -> float:
    """Levy on [-10, 10]^6, minimum 0 at ``1 + _LEVY_SHIFT``."""
    w = [1.0 + (x - s - 1.0) / 4.0 for x, s in zip(_xs(p, 6), _LEVY_SHIFT, strict=True)]
    head = math.sin(math.pi * w[0]) ** 2
    mid = sum((v - 1) ** 2 * (1 + 10 * math.sin(math.pi * v + 1) ** 2) for v in w[:-1])
    tail = (w[-1] - 1) ** 2 * (1 + math.sin(2 * math.pi * w[-1]) ** 2)
    return head + mid + tail


def styblinski20(p: Mapping[str, Any]) -> float:
    """Styblinski-Tang on [-5, 5]^20 shifted by ``_ST_SHIFT``, divided by the dimension;
    minimum -39.16617 (inside the domain for every shift)."""
    z = [x - s for x, s in zip(_xs(p, 20), _ST_SHIFT, strict=True)]
    return sum(v**4 - 16 * v**2 + 5 * v for v in z) / (2 * len(z))


STYBLINSKI_OPTIMUM = (_ST_OPT**4 - 16 * _ST_OPT**2 + 5 * _ST_OPT) / 2

# -- mixed spaces ----------------------------------------------------------------------------

#: Per optimizer choice: where ``x`` is best and the depth of its basin.
_OPTIMIZER_BASINS = {"sgd": (-2.17, 0.0), "adam": (1.63, -0.6), "rmsprop": (3.41, -0.25)}
_ACTIVATION_COST = {"relu": 0.0, "tanh": 0.35, "gelu": 0.12, "sigmoid": 0.9}


def mixed7(p: Mapping[str, Any]) -> float:
    """Seven parameters of five kinds, minimum 0 (adam, relu, x=1.63, lr=10^-2.71,
    width=42, depth 3, dropout 0.137):

    * ``optimizer`` (categorical) moves the best ``x`` and sets the basin's depth;
    * ``x`` continuous in [-5, 5]; ``lr`` log in [1e-5, 1]; ``dropout`` in [0, 0.8];
    * ``width`` log-integer in [4, 1024], ``depth`` integer in [1, 8];
    * ``activation`` (categorical) adds a fixed cost; the best learning rate depends on depth.
    """
    x0, depth_gain = _OPTIMIZER_BASINS[str(p["optimizer"])]
    x = float(p["x"])
    depth = int(p["depth"])
    lr_best = -2.71 - 0.15 * (depth - 3)
    value = 0.6 + depth_gain
    value += 0.25 * (x - x0) ** 2
    value += 0.5 * (math.log10(float(p["lr"])) - lr_best) ** 2
    value += 0.3 * (math.log2(int(p["width"])) - 5.4) ** 2
    value += 0.2 * abs(depth - 3)
    value += 2.0 * (float(p["dropout"]) - 0.137) ** 2
    value += _ACTIVATION_COST[str(p["activation"])]
    return value - _MIXED7_WIDTH_FLOOR


_MIXED7_WIDTH_FLOOR = 0.3 * (math.log2(42) - 5.4) ** 2  # 42 is the integer nearest 2^5.4


#: kind -> (centre, depth, width) of its basin; outside every basin the value is _PLATEAU.
_TRAP = {"a": (0.31, 0.0, 0.6), "b": (0.72, -1.0, 0.12), "c": (0.5, -0.3, 0.25)}
_PLATEAU = 0.3


def trap5(p: Mapping[str, Any]) -> float:
    """A categorical trap: ``kind`` "a" opens a broad, shallow basin (depth 0), "b" a narrow,
    deep one (depth -1) and "c" a medium one; ``u, v`` continuous in [0, 1], ``n`` log-integer
    in [1, 512], ``k`` integer in [0, 20]. Minimum -1 at kind "b", u = v = 0.72, n = 181,
    k = 13."""
    centre, depth, width = _TRAP[str(p["kind"])]
    u, v = float(p["u"]), float(p["v"])
    r2 = ((u - centre) ** 2 + (v - centre) ** 2) / (2 * width * width)
    value = _PLATEAU + (depth - _PLATEAU) * math.exp(-r2)
    value += 0.05 * (math.log2(int(p["n"])) - math.log2(181)) ** 2
    value += 0.01 * (int(p["k"]) - 13) ** 2
    return value


def _mixed7_space() -> list[Any]:
    import ridgeline as rl

    return [
        rl.Choice("optimizer", ["sgd", "adam", "rmsprop"]),
        rl.Continuous("x", [-5.0, 5.0]),
        rl.Continuous("lr", [1e-5, 1.0], scale="log"),
        rl.Discrete("width", [4, 1024], scale="log"),
        rl.Discrete("depth", [1, 8]),
        rl.Continuous("dropout", [0.0, 0.8]),
        rl.Choice("activation", ["relu", "tanh", "gelu", "sigmoid"]),
    ]


def _trap5_space() -> list[Any]:
    import ridgeline as rl

    return [
        rl.Choice("kind", ["a", "b", "c"]),
        rl.Continuous("u", [0.0, 1.0]),
        rl.Continuous("v", [0.0, 1.0]),
        rl.Discrete("n", [1, 512], scale="log"),
        rl.Discrete("k", [0, 20]),
    ]


def _cube(d: int, lo: float, hi: float) -> Any:
    def space() -> list[Any]:
        import ridgeline as rl

        return [rl.Continuous(f"x{j}", [lo, hi]) for j in range(d)]

    return space


# -- integer-dominated scikit-learn tasks ----------------------------------------------------


def _hgb_space() -> list[Any]:
    import ridgeline as rl

    return [
        rl.Discrete("max_iter", [5, 300], scale="log"),
        rl.Discrete("max_leaf_nodes", [2, 128], scale="log"),
        rl.Discrete("min_samples_leaf", [1, 200], scale="log"),
        rl.Continuous("learning_rate", [1e-3, 1.0], scale="log"),
    ]


def hgb_cancer(p: Mapping[str, Any], cv_error: Any) -> float:
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(
        max_iter=int(p["max_iter"]),
        max_leaf_nodes=int(p["max_leaf_nodes"]),
        min_samples_leaf=int(p["min_samples_leaf"]),
        learning_rate=float(p["learning_rate"]),
        early_stopping=False,
        random_state=0,
    )
    return float(cv_error(model, "breast_cancer"))


def _knn_space() -> list[Any]:
    import ridgeline as rl

    return [
        rl.Discrete("n_neighbors", [1, 200], scale="log"),
        rl.Choice("weights", ["uniform", "distance"]),
        rl.Discrete("p", [1, 4]),
        rl.Discrete("pca_components", [2, 64], scale="log"),
    ]


def knn_digits(p: Mapping[str, Any], cv_error: Any) -> float:
    from sklearn.decomposition import PCA
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(
        PCA(n_components=int(p["pca_components"]), random_state=0),
        KNeighborsClassifier(
            n_neighbors=int(p["n_neighbors"]), weights=str(p["weights"]), p=int(p["p"])
        ),
    )
    return float(cv_error(model, "digits"))


def _tree_space() -> list[Any]:
    import ridgeline as rl

    return [
        rl.Discrete("max_depth", [1, 30]),
        rl.Discrete("min_samples_split", [2, 128], scale="log"),
        rl.Discrete("min_samples_leaf", [1, 64], scale="log"),
        rl.Discrete("max_leaf_nodes", [2, 256], scale="log"),
        rl.Choice("criterion", ["gini", "entropy", "log_loss"]),
        rl.Continuous("max_features", [0.1, 1.0]),
    ]


def tree_wine(p: Mapping[str, Any], cv_error: Any) -> float:
    from sklearn.tree import DecisionTreeClassifier

    model = DecisionTreeClassifier(
        max_depth=int(p["max_depth"]),
        min_samples_split=int(p["min_samples_split"]),
        min_samples_leaf=int(p["min_samples_leaf"]),
        max_leaf_nodes=int(p["max_leaf_nodes"]),
        criterion=str(p["criterion"]),
        max_features=float(p["max_features"]),
        random_state=0,
    )
    return float(cv_error(model, "wine"))


def problem_table() -> list[dict[str, Any]]:
    """The problems as keyword arguments of search_quality's ``Problem`` (``objective_cv``:
    a scikit-learn objective that takes the benchmark's cross-validation function)."""
    return [
        dict(name="ackley10", group="multimodal", parameters=_cube(10, -32.768, 32.768),
             objective=ackley10, optimum=0.0),
        dict(name="levy6", group="multimodal", parameters=_cube(6, -10.0, 10.0),
             objective=levy6, optimum=0.0),
        dict(name="mixed7", group="mixed", parameters=_mixed7_space, objective=mixed7,
             optimum=0.0),
        dict(name="trap5", group="mixed", parameters=_trap5_space, objective=trap5,
             optimum=-1.0),
        dict(name="hartmann6-noisy", group="noisy", parameters=_cube(6, 0.0, 1.0),
             objective=None, optimum=-3.32237, noise=0.1),
        dict(name="styblinski20", group="high-dim", parameters=_cube(20, -5.0, 5.0),
             objective=styblinski20, optimum=STYBLINSKI_OPTIMUM),
        dict(name="hgb-cancer", group="sklearn-int", parameters=_hgb_space,
             objective_cv=hgb_cancer),
        dict(name="knn-digits", group="sklearn-int", parameters=_knn_space,
             objective_cv=knn_digits),
        dict(name="tree-wine", group="sklearn-int", parameters=_tree_space,
             objective_cv=tree_wine),
    ]  # fmt: skip
