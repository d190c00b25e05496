"""Gaussian-process Bayesian optimisation: the sampler behind ``BayesianOptimization`` and
``GPyOpt``. NumPy and SciPy only; the model lives in ``gp_model``.

How a suggestion is made:

1. **Data.** Trials that are COMPLETED, STOPPED or PAUSED with a finite objective are
   observations (a stopped trial's best partial result is still evidence about its region).
   FAILED and INVALID_HP trials, and COMPLETED ones without a finite objective, are failed
   evaluations: they enter the model at the worst observed value, so the search steers away.
   PENDING/RUNNING trials and ``pending`` are fantasised one posterior sd above their mean (a
   slightly pessimistic kriging believer) and the acquisition is damped near them, so a batch
   of suggestions spreads out instead of piling up.
2. **Initial design.** Until ``num_initial`` trials have results (default: number of searched
   parameters + 1, at least 5), points of one scrambled Halton sequence; trials already in the
   history count, so a warm-started history skips it.
3. **Model.** Continuous, Discrete and Ordinal parameters map to [0, 1] (log scales in log
   space); Choice parameters are one-hot with one lengthscale each; Constants are left out. A
   Matern-5/2 ARD kernel with MAP-fitted lengthscales (their prior centred shorter beyond six
   parameters, so that in many dimensions the search stays near its best points), signal and
   noise on warped outputs (and, with ``input_warping=True``, numeric inputs warped where
   that fits markedly better). Beyond ``_MAX_POINTS`` results the best half and a random
   sample of the rest are kept.
4. **Acquisition** (log EI by default; log PI or LCB), maximised over random candidates and
   perturbations of the best points, the best few refined with L-BFGS-B over the numeric
   coordinates, then rounded to legal values and improved by trying neighbouring integers and
   other categories; the best candidate of every category is refined too, so a category whose
   own optimum lies elsewhere is judged at its best. The best candidate not equal to an
   observed or pending one wins; one that nearly repeats a point is asked again of a model
   with shorter lengthscales. When the fitted noise exceeds 30% of the signal, EI improves on
   the best predicted value at the observed points rather than on the lowest (lucky) result.
   On a plateau (at least three results exactly at the best: a parameter that stopped
   mattering, as the weighting with one neighbour), candidates whose value the model already
   knows (posterior sd under 2% of the signal's) come last, so the budget is not spent on
   points certain to tie.
5. **Stepping out.** When the best result has stopped improving for a while (max(4, half the
   searched parameters) results without a real gain), every other suggestion explores (every
   fourth when the fitted noise is more than 0.1% of the signal: there a stall is partly the
   noise floor, better averaged out near the best): the best point with one to three parameters
   drawn anew, outside its neighbourhood, chosen by the acquisition. A search that settled in
   the first good category (or basin) gets to try the others with what it learned about the
   remaining parameters. Every other step out, a point in another category counts as outside
   the neighbourhood however alike the model finds the categories, and once the stall has
   outlasted one step out of each kind, such a step first tries the best point with one
   category switched and every number kept (the switch the acquisition likes best, until each
   has been tried), so a category is tried alone at the numbers that work (where categories
   share their good region); the steps between must move numbers too (where a category's
   optimum lies elsewhere).
"""

from __future__ import annotations

import contextlib
import importlib
import math
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.optimize

from ridgeline.errors import ConfigError
from ridgeline.samplers import gp_model
from ridgeline.samplers.base import History, Sampler
from ridgeline.samplers.encoding import Column, Encoding
from ridgeline.space import Ordinal
from ridgeline.store.records import COMPLETED, FAILED, INVALID_HP, PAUSED, PENDING, RUNNING, STOPPED

if TYPE_CHECKING:
    from ridgeline.space import SearchSpace

__all__ = ["GPSampler"]

_ACQUISITIONS = ("ei", "pi", "lcb")
_OBSERVED = frozenset({COMPLETED, STOPPED, PAUSED})
_FAILED = frozenset({FAILED, INVALID_HP})
_RUNNING = frozenset({PENDING, RUNNING})
_MAX_GRID = 4096  # integer/ordinal parameters with more values are rounded only at the end
_MAX_POINTS = 400  # results kept in the model (best half + random others)
_MAX_FIT_POINTS = 250  # results used to fit the hyperparameters
_LCB_KAPPA = 2.0
_RANDOM_MAX = 2000  # random candidates for the acquisition (500 + 100 per feature, capped)
_STARTS = 8  # candidates refined with L-BFGS-B
_XI = 0.0  # improvement (in standardised units) that EI and PI ask for beyond the best
_DUP_GAP = 0.01  # a suggestion closer than this (in lengthscales) to a point is a near-repeat
_LIAR_SD = 1.0  # pending points are fantasised this many posterior sds above their mean
_STALL_MIN = 4  # results without real progress before every other suggestion explores
_STALL_TOL = 1e-3  # progress smaller than this share of (median - best) is no progress
_EXPLORE_RADIUS = 1.0  # an exploring suggestion keeps this many lengthscales from the best
_PLATEAU_TIES = 3  # this many results exactly at the best: a plateau
_KNOWN_SD = 0.02  # on a plateau, candidates with a posterior sd below this share of the
_KNOWN_CHECK = 512  # signal's go after the others among the best this many candidates
_WARP_MIN = 12  # input warping from this many results (and twice the searched parameters)
_WARP_MAX = 100  # up to this many (beyond, the kernel's inputs stay as they are)
_SWITCH_FROM_STEP = 3  # exploring steps before those that try a category switched alone
_NOISY = 0.3  # fitted noise above this share of the signal: EI aims past the best prediction
_QUIET_NOISE = 1e-3  # fitted noise below this share of the signal variance: a near-exact fit
# Beyond 100 results the fit starts from the last one alone, which one more result barely moves:
# stop L-BFGS-B once an iteration gains less than this share of the log posterior (about 1e-3
# nats at 200 results). Tighter tolerances spend their iterations creeping along the flat noise
# direction once the lengthscales have settled (1e-7 made a suggestion at 200 results about a
# quarter slower, for the same best points in 180-result runs of Hartmann-6, Levy-6, mixed7).
_WARM_FTOL = 1e-5


_THREADS: Any = None  # threadpoolctl's controller, created on first use when installed


def _one_blas_thread() -> contextlib.AbstractContextManager[Any]:
    """Run BLAS single-threaded while we work: the GP issues thousands of small BLAS and
    LAPACK calls, and waking OpenBLAS worker threads for each costs far more than the arithmetic
    (several times slower on a busy 2-core machine). Uses threadpoolctl when it is installed,
    as SciPy itself does."""
    global _THREADS
    if _THREADS is None:
        try:
            module = importlib.import_module("threadpoolctl")
            _THREADS = module.ThreadpoolController()
        except Exception:  # not installed, or an unusual BLAS it cannot drive
            _THREADS = False
    if _THREADS is False:
        return contextlib.nullcontext()
    return _THREADS.limit(limits=1, user_api="blas")


class _Timeout(Exception):
    """Raised inside the acquisition optimiser when ``time_limit`` is spent."""


class _Encoder:
    """The GP's features of a search space, on the shared ``Encoding``.

    A numeric column is one feature; Discrete and Ordinal ones with at most ``_MAX_GRID``
    values (every Ordinal) also keep the bin centres of their legal values, so candidates can
    be rounded in bulk. A Choice column is a one-hot block. Constants and one-value
    categories are not features.
    """

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.encoding = Encoding(space)
        self.slots: list[tuple[Column, int, int]] = []  # (column, first feature, width)
        self.group_of: list[int] = []
        self.onehot: list[bool] = []
        self.numeric: list[int] = []
        self.grids: dict[int, np.ndarray] = {}
        self.blocks: list[tuple[int, int]] = []
        col = 0
        for column in self.encoding.columns:
            if column.size == 1:
                continue
            group = len(self.slots)
            if column.choice:
                k = column.size
                self.slots.append((column, col, k))
                self.group_of += [group] * k
                self.onehot += [True] * k
                self.blocks.append((col, k))
                col += k
                continue
            self.slots.append((column, col, 1))
            self.group_of.append(group)
            self.onehot.append(False)
            self.numeric.append(col)
            if column.size and (isinstance(column.param, Ordinal) or column.size <= _MAX_GRID):
                self.grids[col] = self.encoding.centres(column.index)
            col += 1
        self.dim = col
        self.free = len(self.slots)
        self.numeric_arr = np.array(self.numeric, dtype=int)
        self.cube_at = [column.at for column, _, _ in self.slots]

    def features(self, rows: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        """Features of ``rows``, and a mask of the rows that could be encoded."""
        u, c, ok = self.encoding.encode(rows)
        return self._assemble(u, c), ok

    def encode(self, params: Mapping[str, Any]) -> np.ndarray | None:
        """Features of ``params``, or None when a value is missing or not legal."""
        x, ok = self.features([params])
        return x[0] if ok[0] else None

    def _assemble(self, u: np.ndarray, c: np.ndarray) -> np.ndarray:
        x = np.zeros((len(u), self.dim))
        rows = np.arange(len(u))
        for column, col, _ in self.slots:
            if column.choice:
                x[rows, col + c[:, column.index]] = 1.0
            else:
                x[:, col] = u[:, column.index]
        return x

    def round(self, x: np.ndarray) -> np.ndarray:
        """Rows of ``x`` moved to legal values: nearest grid value, one-hot of the argmax."""
        x = np.clip(x, 0.0, 1.0)
        for col, centres in self.grids.items():
            x[:, col] = centres[_nearest(centres, x[:, col])]
        for col, k in self.blocks:
            idx = np.argmax(x[:, col : col + k], axis=1)
            x[:, col : col + k] = 0.0
            x[np.arange(len(x)), col + idx] = 1.0
        return x

    def decode(self, x: np.ndarray) -> dict[str, Any]:
        """Parameters at feature vector ``x`` (Constants and one-value categories included):
        grid features at their nearest legal value, a category by the argmax of its block."""
        u = np.full(len(self.encoding.numeric), 0.5)
        c = np.zeros(len(self.encoding.choices), dtype=np.int64)
        for column, col, width in self.slots:
            if column.choice:
                c[column.index] = int(np.argmax(x[col : col + width]))
            elif col in self.grids:
                centres = self.grids[col]
                u[column.index] = centres[_nearest(centres, x[col : col + 1])[0]]
            else:
                u[column.index] = x[col]
        return self.encoding.decode(u, c)

    def from_cube(self, u: np.ndarray) -> np.ndarray:
        """Features for rows of ``u`` in the unit cube with one column per free parameter
        (a Choice column picks a category uniformly)."""
        cube = np.full((len(u), len(self.space)), 0.5)
        cube[:, self.cube_at] = u
        return self.round(self._assemble(*self.encoding.from_cube(cube)))

    def key(self, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """A hashable identity of a configuration in feature space (None: not encodable)."""
        x = self.encode(params)
        return None if x is None else tuple(np.round(x, 9).tolist())


def _nearest(centres: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Index of the nearest of the sorted ``centres`` for each ``u``."""
    i = np.clip(np.searchsorted(centres, u), 1, len(centres) - 1)
    left = centres[i - 1]
    right = centres[i]
    return np.where(np.abs(u - left) <= np.abs(right - u), i - 1, i)


@dataclass(eq=False, repr=False)
class GPState:
    """What a restarted search needs: the initial design's sequence (its seed and how far it
    got) and the last fitted hyperparameters, which warm-start the next fit."""

    design_seed: int | None = None
    design_count: int = 0
    theta: list[float] | None = None


class GPSampler(Sampler, GPState):
    """Gaussian-process Bayesian optimisation for mixed spaces (see the module docstring).

    ``num_initial``: results before the model is used (None: searched parameters + 1, at least
    5). ``acquisition``: "ei" (log expected improvement), "pi" (log probability of improvement)
    or "lcb" (lower confidence bound, mean - 2 sd). ``log_objective``: model the logarithm of the
    objective (for positive objectives spanning orders of magnitude; a constant shift is added if
    some are <= 0). ``time_limit``: seconds after which the acquisition search stops and the best
    candidate found so far is returned (a safety net: normal suggestions take well under a second
    and do not depend on the clock). ``input_warping``: let the model stretch a numeric
    parameter towards one end of its range when that fits the results markedly better (from
    12 results and twice the parameters, up to 100; see ``gp_model.choose_warp``). Off by
    default: it finds an optimum packed into one end of a range that the plain model misses,
    but on the search-quality benchmark it helped three problems and hurt two (Rosenbrock's
    curved valley badly).

    State (JSON): the Sobol seed and position of the initial design and the last fitted
    hyperparameters, which seed the next fit; the model itself is refitted from the history.
    """

    def __init__(
        self,
        num_initial: int | None = None,
        acquisition: str = "ei",
        log_objective: bool = False,
        time_limit: float | None = None,
        input_warping: bool = False,
    ) -> None:
        if num_initial is not None and (
            isinstance(num_initial, bool) or not isinstance(num_initial, int) or num_initial < 1
        ):
            raise ConfigError(
                f"num_initial must be an integer >= 1 or None (automatic), got {num_initial!r}"
            )
        if acquisition not in _ACQUISITIONS:
            raise ConfigError(
                f"acquisition must be one of {', '.join(map(repr, _ACQUISITIONS))}, got "
                f"{acquisition!r}; use 'ei' unless you have a reason not to"
            )
        if not isinstance(log_objective, bool):
            raise ConfigError(f"log_objective must be True or False, got {log_objective!r}")
        if not isinstance(input_warping, bool):
            raise ConfigError(f"input_warping must be True or False, got {input_warping!r}")
        if time_limit is not None and (
            isinstance(time_limit, bool)
            or not isinstance(time_limit, (int, float))
            or not time_limit > 0
            or not math.isfinite(time_limit)
        ):
            raise ConfigError(
                f"time_limit must be a positive number of seconds or None, got {time_limit!r}"
            )
        self.num_initial = num_initial
        self.acquisition = acquisition
        self.log_objective = log_objective
        self.time_limit = None if time_limit is None else float(time_limit)
        self.warp_inputs = input_warping
        self._encoder: _Encoder | None = None
        self._deadline = math.inf

    # -- proposing ---------------------------------------------------------------------------

    def propose(
        self,
        space: SearchSpace,
        history: History,
        pending: Sequence[Mapping[str, Any]],
        rng: random.Random,
    ) -> dict[str, Any]:
        start = time.perf_counter() if self.time_limit is not None else 0.0
        self._deadline = start + self.time_limit if self.time_limit is not None else math.inf
        enc = self._encoder
        if enc is None or enc.space is not space:
            enc = self._encoder = _Encoder(space)
        gen = np.random.default_rng(rng.getrandbits(64))
        if enc.free == 0:
            return space.sample(rng)

        obs_x, obs_y, failed_x, pend_x, seen = _gather(enc, history, pending)

        num_initial = self.num_initial or max(enc.free + 1, 5)
        if len(obs_y) + len(failed_x) < num_initial or len(obs_y) < 2:
            return self._design(enc, seen, rng)
        with _one_blas_thread():
            return self._model_step(enc, history, obs_x, obs_y, failed_x, pend_x, seen, gen)

    def _model_step(
        self,
        enc: _Encoder,
        history: History,
        obs_x: list[np.ndarray],
        obs_y: list[float],
        failed_x: list[np.ndarray],
        pend_x: list[np.ndarray],
        seen: set[tuple[Any, ...]],
        gen: np.random.Generator,
    ) -> dict[str, Any]:
        """Fit the GP, fantasise the pending points and maximise the acquisition."""
        y = np.asarray(obs_y, dtype=float)
        if not history.lower_is_better:
            y = -y
        if self.log_objective:
            y = _log_transform(y, history.lower_is_better)
        x_all = np.vstack(obs_x + failed_x)
        y_w = gp_model.warp_outputs(y)
        # failures count as the worst result (one sd worse still when all results are equal)
        worst = float(y_w.max()) + (0.0 if y_w.std() > 0 else 1.0)
        y_all = np.concatenate([y_w, np.full(len(failed_x), worst)])
        x_all, y_all = _subsample(x_all, y_all, _MAX_POINTS, gen)

        model = self._fit(enc, x_all, y_all, gen)
        xp = None
        if pend_x:
            xp = np.vstack(pend_x)
            mu_p, var_p = model.predict(xp)
            model = model.with_data(xp, mu_p + _LIAR_SD * np.sqrt(var_p))
        plateau = int(np.count_nonzero(y == y.min())) >= _PLATEAU_TIES
        # Under noise, a stall is partly the noise floor: explore less often there.
        every = 2 if model.noise < _QUIET_NOISE * model.signal else 4
        step = _exploring(y, max(_STALL_MIN, (enc.free + 1) // 2), every)
        if step is not None:
            incumbent = obs_x[int(np.argmin(y))]
            acquisition = _Acquisition(
                self.acquisition,
                model,
                xp,
                model.scale(incumbent[None, :])[0],
                categories_apart=step % 2 == 1,
            )
            # in a long stall (past one step out of each kind), a step that keeps categories
            # apart first tries switching a category alone
            switch_first = step >= _SWITCH_FROM_STEP and step % 2 == 1
            x_next = self._explore(enc, acquisition, incumbent, seen, gen, switch_first)
            if x_next is not None:
                return enc.decode(x_next)
        x_next = self._maximise(
            enc, _Acquisition(self.acquisition, model, xp), seen, gen, skip_known=plateau
        )
        for _ in range(2):
            # A suggestion on top of an observed point means the model is sure that nothing
            # better lies near the best points; if it is wrong (a long lengthscale hiding a
            # narrow valley next to a boundary optimum) it stays stuck there, taking tiny steps.
            # Ask again with shorter lengthscales, which open up the unexplored surroundings.
            if _scaled_gap(model, x_next) >= _DUP_GAP or self._out_of_time():
                break
            theta = model.theta.copy()
            theta[: enc.free] -= math.log(2.0)
            model = gp_model.GP(model.x, model.y, theta, enc.group_of, enc.onehot, model.warp)
            x_next = self._maximise(
                enc, _Acquisition(self.acquisition, model, xp), seen, gen, skip_known=plateau
            )
        return enc.decode(x_next)

    def best_predicted(
        self, space: SearchSpace, history: History, rng: random.Random
    ) -> dict[str, Any] | None:
        """The point the model predicts best (lowest posterior mean of the objective, highest
        when higher is better), observed points included; None before ``num_initial``
        results (as SHERPA's ``GPyOpt.get_best_pred``)."""
        enc = self._encoder
        if enc is None or enc.space is not space:
            enc = self._encoder = _Encoder(space)
        self._deadline = math.inf
        obs_x, obs_y, failed_x, _, _ = _gather(enc, history, ())
        num_initial = self.num_initial or max(enc.free + 1, 5)
        if enc.free == 0 or len(obs_y) + len(failed_x) < num_initial or len(obs_y) < 2:
            return None
        gen = np.random.default_rng(rng.getrandbits(64))
        y = np.asarray(obs_y, dtype=float)
        if not history.lower_is_better:
            y = -y
        with _one_blas_thread():
            model = self._fit(enc, np.vstack(obs_x), gp_model.warp_outputs(y), gen)
            x_best = self._maximise(enc, _Acquisition("mean", model, None), set(), gen)
        return enc.decode(x_best)

    # -- initial design ----------------------------------------------------------------------

    def _design(
        self, enc: _Encoder, seen: set[tuple[Any, ...]], rng: random.Random
    ) -> dict[str, Any]:
        """The next unseen point of this run's scrambled Halton sequence."""
        if self.design_seed is None:
            self.design_seed = rng.getrandbits(32)
        first: dict[str, Any] | None = None
        for _ in range(64):
            u = _halton(self.design_count, enc.free, self.design_seed)
            self.design_count += 1
            params = enc.decode(enc.from_cube(u[None, :])[0])
            if first is None:
                first = params
            if enc.key(params) not in seen:
                return params
        for _ in range(256):  # a small discrete space: any unseen point
            params = enc.space.sample(rng)
            if enc.key(params) not in seen:
                return params
        assert first is not None
        return first

    # -- model -------------------------------------------------------------------------------

    def _fit(
        self, enc: _Encoder, x: np.ndarray, y: np.ndarray, gen: np.random.Generator
    ) -> gp_model.GP:
        """Fit hyperparameters (warm-started from the last fit) and condition on the data."""
        groups = enc.free
        starts: list[np.ndarray] = []
        if self.theta is not None and len(self.theta) == groups + 2:
            starts.append(np.asarray(self.theta))
        n = len(y)
        default = gp_model.default_theta(groups)
        if n <= 100 or not starts:
            starts.append(default)
        if n <= 40:
            for _ in range(2):
                t = default.copy()
                t[:groups] += gen.normal(0.0, 1.0, groups)
                starts.append(t)
        xf, yf = _subsample(x, y, _MAX_FIT_POINTS, gen)
        if n <= 100:
            theta = gp_model.fit_hyper(xf, yf, enc.group_of, enc.onehot, starts, maxiter=200)
        else:
            theta = gp_model.fit_hyper(
                xf, yf, enc.group_of, enc.onehot, starts, maxiter=60, ftol=_WARM_FTOL
            )
        warp = None
        if self.warp_inputs and enc.numeric and max(_WARP_MIN, 2 * enc.free) <= n <= _WARP_MAX:
            warp = gp_model.choose_warp(xf, yf, theta, enc.group_of, enc.onehot, enc.numeric)
            if warp is not None:
                theta = gp_model.fit_hyper(
                    warp.apply(xf), yf, enc.group_of, enc.onehot, [theta], 60, _WARM_FTOL
                )
        self.theta = [float(t) for t in theta]
        return gp_model.GP(x, y, theta, enc.group_of, enc.onehot, warp)

    # -- acquisition -----------------------------------------------------------------------

    def _maximise(
        self,
        enc: _Encoder,
        acquisition: _Acquisition,
        seen: set[tuple[Any, ...]],
        gen: np.random.Generator,
        skip_known: bool = False,
    ) -> np.ndarray:
        model = acquisition.model
        pool_x: list[np.ndarray] = []
        pool_a: list[np.ndarray] = []

        def score(xc: np.ndarray) -> np.ndarray:
            a = acquisition.values(xc)
            pool_x.append(xc)
            pool_a.append(a)
            return a

        try:
            # 1. Space-filling candidates and perturbations of the best points.
            n_rand = min(_RANDOM_MAX, 500 + 100 * enc.dim)
            score(enc.from_cube(gen.random((n_rand, enc.free))))
            score(self._local_candidates(enc, model, gen))
            self._check_time()
            # 2. Gradient refinement of the best few in the continuous relaxation.
            xs = np.vstack(pool_x)
            acq = np.concatenate(pool_a)
            order = np.argsort(-acq, kind="stable")
            starts = _distinct_rows(xs[order], _STARTS)
            if enc.blocks:
                # The best candidate of every category too: where the best numeric values
                # depend on a category, the top few may all share one, and a category whose
                # own optimum lies elsewhere would never be refined.
                starts = _distinct_rows(np.vstack([starts, _best_per_category(enc, xs, acq)]), 64)
            if enc.numeric and len(starts):
                refined = self._refine(enc, acquisition, starts)
                score(enc.round(refined))
            self._check_time()
            # 3. Discrete moves around the best rounded points.
            if enc.grids or enc.blocks:
                xs = np.vstack(pool_x)
                acq = np.concatenate(pool_a)
                order = np.argsort(-acq, kind="stable")
                current = _distinct_rows(xs[order], 4)
                for _ in range(4):
                    moves = self._neighbours(enc, current)
                    if not len(moves):
                        break
                    a = score(moves)
                    self._check_time()
                    better = False
                    nxt = []
                    base = acquisition.values(current)
                    per = len(moves) // len(current)
                    for i in range(len(current)):
                        seg = a[i * per : (i + 1) * per]
                        j = int(np.argmax(seg))
                        if seg[j] > base[i] + 1e-12:
                            nxt.append(moves[i * per + j])
                            better = True
                        else:
                            nxt.append(current[i])
                    if not better:
                        break
                    current = np.vstack(nxt)
        except _Timeout:
            pass
        xs = np.vstack(pool_x)
        acq = np.concatenate(pool_a)
        order = np.argsort(-acq, kind="stable")
        if skip_known:
            order = _known_last(model, xs, order)
        for i in order:
            params = enc.decode(xs[i])
            if enc.key(params) not in seen:
                return xs[i]
        for _ in range(256):
            xr = enc.from_cube(gen.random((1, enc.free)))[0]
            if enc.key(enc.decode(xr)) not in seen:
                return xr
        return xs[order[0]]

    def _explore(
        self,
        enc: _Encoder,
        acquisition: _Acquisition,
        incumbent: np.ndarray,
        seen: set[tuple[Any, ...]],
        gen: np.random.Generator,
        switch_first: bool = False,
    ) -> np.ndarray | None:
        """A step away from a best point that stopped improving: the incumbent with one to
        three parameters drawn anew (a category switched, a number anywhere in its range), the
        one the acquisition likes best outside the incumbent's neighbourhood (which, when
        ``acquisition`` keeps categories apart, no point in another category is in). Moving a
        few coordinates keeps what the search has learned about the others; moving all of them
        lands in the corners, where a GP is most uncertain and least useful."""
        if switch_first:
            # the incumbent with one category switched and every number kept: the cheapest
            # test of whether another category does better where this one works
            x_switch = _best_unseen(enc, acquisition, _category_switches(enc, incumbent), seen)
            if x_switch is not None:
                return x_switch
        m = 200 * max(enc.free, 1)
        out = np.repeat(incumbent[None, :], m, axis=0)
        cube = gen.random((m, enc.free))
        fresh = enc.from_cube(cube)
        count = gen.integers(1, 4, m)
        for i in range(m):
            for j in gen.choice(enc.free, size=min(int(count[i]), enc.free), replace=False):
                _, col, width = enc.slots[j]
                out[i, col : col + width] = fresh[i, col : col + width]
        return _best_unseen(enc, acquisition, out, seen)

    def _out_of_time(self) -> bool:
        return self._deadline < math.inf and time.perf_counter() > self._deadline

    def _check_time(self) -> None:
        if self._out_of_time():
            raise _Timeout

    def _local_candidates(
        self, enc: _Encoder, model: gp_model.GP, gen: np.random.Generator
    ) -> np.ndarray:
        """Perturbations of the best observed points at several scales (numeric features move
        by Gaussian steps on a random subset of coordinates; categories switch at random)."""
        n = len(model.y)
        top = np.argsort(model.y, kind="stable")[: min(5, n)]
        per = 100
        base = np.repeat(model.x[top], per, axis=0)
        m = len(base)
        out = base.copy()
        if enc.numeric:
            nn = len(enc.numeric)
            scales = np.array([0.002, 0.01, 0.05, 0.2])[gen.integers(0, 4, m)]
            mask = gen.random((m, nn)) < max(0.5, 1.0 / nn)
            none = ~mask.any(1)
            mask[none, gen.integers(0, nn, int(none.sum()))] = True
            step = gen.normal(0.0, 1.0, (m, nn)) * scales[:, None] * mask
            out[:, enc.numeric_arr] = np.clip(base[:, enc.numeric_arr] + step, 0.0, 1.0)
        for col, k in enc.blocks:
            flip = gen.random(m) < 1.0 / max(enc.free, 2)
            new = gen.integers(0, k, int(flip.sum()))
            out[flip, col : col + k] = 0.0
            out[np.flatnonzero(flip), col + new] = 1.0
        return enc.round(out)

    def _refine(self, enc: _Encoder, acquisition: _Acquisition, starts: np.ndarray) -> np.ndarray:
        """L-BFGS-B on the numeric coordinates of all starts at once (their sum is separable)."""
        free = enc.numeric_arr
        k, nf = len(starts), len(free)
        fixed = starts.copy()
        best_x = starts.copy()
        best_a = np.full(k, -np.inf)

        def f(z: np.ndarray) -> tuple[float, np.ndarray]:
            self._check_time()
            xq = fixed.copy()
            xq[:, free] = z.reshape(k, nf)
            a, g = acquisition.values_grad(xq, free)
            ok = np.isfinite(a)
            improved = ok & (a > best_a)
            best_a[improved] = a[improved]
            best_x[improved] = xq[improved]
            a = np.where(ok, a, -1e6)
            g = np.where(ok[:, None] & np.isfinite(g), g, 0.0)
            return -float(a.sum()), -g.ravel()

        try:
            scipy.optimize.minimize(
                f,
                starts[:, free].ravel(),
                jac=True,
                method="L-BFGS-B",
                bounds=[(0.0, 1.0)] * (k * nf),
                options={"maxiter": 200, "gtol": 1e-6},
            )
        except _Timeout:
            pass
        return best_x

    def _neighbours(self, enc: _Encoder, current: np.ndarray) -> np.ndarray:
        """For each row, the same number of moves: each grid coordinate one step down and up,
        each Choice set to each other category (padded by repeating the row)."""
        rows: list[list[np.ndarray]] = []
        for x in current:
            moves: list[np.ndarray] = []
            for col, centres in enc.grids.items():
                i = int(_nearest(centres, np.array([x[col]]))[0])
                for j in (i - 1, i + 1):
                    if 0 <= j < len(centres):
                        y = x.copy()
                        y[col] = centres[j]
                        moves.append(y)
            moves.extend(_category_switches(enc, x))
            rows.append(moves)
        width = max((len(r) for r in rows), default=0)
        if width == 0:
            return np.zeros((0, enc.dim))
        out = []
        for x, moves in zip(current, rows, strict=True):
            out.extend(moves + [x] * (width - len(moves)))
        return np.vstack(out)


def _gather(
    enc: _Encoder, history: History, pending: Sequence[Mapping[str, Any]]
) -> tuple[list[np.ndarray], list[float], list[np.ndarray], list[np.ndarray], set[tuple[Any, ...]]]:
    """Encoded observations, failures and pending points, and the keys of all of them."""
    obs_x: list[np.ndarray] = []
    obs_y: list[float] = []
    failed_x: list[np.ndarray] = []
    pend_x: list[np.ndarray] = []
    seen: set[tuple[Any, ...]] = set()
    xs, ok = enc.features([t.params for t in history.trials])
    for t, x, key, good in zip(history.trials, xs, np.round(xs, 9).tolist(), ok, strict=True):
        if not good:
            continue
        seen.add(tuple(key))
        value = t.objective
        finite = value is not None and math.isfinite(value)
        if t.status in _RUNNING:
            pend_x.append(x)
        elif t.status in _FAILED or (t.status == COMPLETED and not finite):
            failed_x.append(x)
        elif t.status in _OBSERVED and finite:
            obs_x.append(x)
            obs_y.append(float(value))  # type: ignore[arg-type]
    pend_keys = set()
    xs, ok = enc.features(pending)
    for x, key, good in zip(xs, np.round(xs, 9).tolist(), ok, strict=True):
        if not good:
            continue
        k = tuple(key)
        if k not in seen:
            pend_x.append(x)
        pend_keys.add(k)
    seen |= pend_keys
    return obs_x, obs_y, failed_x, pend_x, seen


def _primes(count: int) -> list[int]:
    out: list[int] = []
    k = 2
    while len(out) < count:
        if all(k % p for p in out if p * p <= k):
            out.append(k)
        k += 1
    return out


def _halton(index: int, dim: int, seed: int) -> np.ndarray:
    """Point ``index`` of a Halton sequence scrambled with random digit permutations per
    dimension and digit (seeded by ``seed``): low discrepancy for any number of points, so
    the design needs no size fixed in advance, and it costs no scipy.stats import."""
    gen = np.random.default_rng(seed)
    out = np.empty(dim)
    for j, base in enumerate(_primes(dim)):
        digits = max(1, math.ceil(40 * math.log(2) / math.log(base)))
        perms = np.argsort(gen.random((digits, base)), axis=1)
        u, scale, i = 0.0, 1.0 / base, index
        for level in range(digits):
            u += perms[level, i % base] * scale
            i //= base
            scale /= base
        out[j] = u
    return out


class _Acquisition:
    """The acquisition function to maximise: log EI, log PI or -LCB on the (fantasy-
    conditioned) model, plus a crowding penalty around pending points."""

    def __init__(
        self,
        kind: str,
        model: gp_model.GP,
        pending: np.ndarray | None,
        avoid: np.ndarray | None = None,
        categories_apart: bool = False,
    ) -> None:
        # "mean": the posterior mean alone (LCB without exploration), for the predicted best
        self.kind = "lcb" if kind == "mean" else kind
        # ``avoid``: a point (in scaled features) whose surroundings an exploring step leaves
        self.avoid = avoid
        # ``categories_apart``: a point in another category than ``avoid`` is outside its
        # surroundings, however alike the fitted lengthscales make the categories
        onehot = np.asarray(model.onehot, dtype=bool)
        self.apart = onehot if categories_apart and onehot.any() else None
        self.kappa = 0.0 if kind == "mean" else _LCB_KAPPA
        self.model = model
        # Under heavy noise the lowest result is partly luck, and improving on it looks hopeless
        # near the best region: improve on the best predicted value at the observed points
        # instead (the plug-in criterion for noisy expected improvement).
        best = float(model.y.min())
        if model.noise > _NOISY * model.signal:
            best = max(best, float(model.predict(model.x)[0].min()))
        self.best = best - _XI
        self.pending = pending
        # log EI/PI take the log penalty as is; LCB is in output units: scale it by the signal sd
        self.weight = math.sqrt(model.signal) if self.kind == "lcb" else 1.0

    def values(self, x: np.ndarray) -> np.ndarray:
        mu, var = self.model.predict(x)
        a = gp_model.acquisition(self.kind, mu, var, self.best, self.kappa)
        if self.pending is not None:
            a = a + self.weight * self.model.crowding(x, self.pending)[0]
        a = np.where(self._near_avoided(x), -np.inf, a)
        return np.where(np.isfinite(a), a, -np.inf)

    def _near_avoided(self, x: np.ndarray) -> np.ndarray:
        if self.avoid is None:
            return np.zeros(len(x), dtype=bool)
        xs = self.model.scale(x)
        near = ((xs - self.avoid) ** 2).sum(1) < _EXPLORE_RADIUS**2
        if self.apart is not None:
            near &= (np.abs(xs[:, self.apart] - self.avoid[self.apart]) < 1e-9).all(1)
        return near

    def values_grad(self, x: np.ndarray, free: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mu, var, dmu, dvar = self.model.predict_grad(x, free)
        a, g = gp_model.acquisition_grad(self.kind, mu, var, dmu, dvar, self.best, self.kappa)
        if self.pending is not None:
            pa, pg = self.model.crowding(x, self.pending, free)
            assert pg is not None
            a = a + self.weight * pa
            g = g + self.weight * pg
        near = self._near_avoided(x)
        return np.where(near, -np.inf, a), np.where(near[:, None], 0.0, g)


def _best_unseen(
    enc: _Encoder, acquisition: _Acquisition, xs: np.ndarray, seen: set[tuple[Any, ...]]
) -> np.ndarray | None:
    """The row of ``xs`` the acquisition likes best among those not yet tried, if any."""
    if len(xs) == 0:
        return None
    a = acquisition.values(xs)
    for i in np.argsort(-a, kind="stable"):
        if not np.isfinite(a[i]):
            break
        if enc.key(enc.decode(xs[i])) not in seen:
            return xs[i]
    return None


def _category_switches(enc: _Encoder, x: np.ndarray) -> np.ndarray:
    """``x`` with one Choice set to another of its categories, for each Choice and category."""
    rows = []
    for col, k in enc.blocks:
        current = int(np.argmax(x[col : col + k]))
        for c in range(k):
            if c != current:
                y = x.copy()
                y[col : col + k] = 0.0
                y[col + c] = 1.0
                rows.append(y)
    return np.vstack(rows) if rows else np.zeros((0, enc.dim))


def _exploring(y: np.ndarray, patience: int, every: int = 2) -> int | None:
    """Whether this suggestion should explore away from the best point, as the count of
    exploring suggestions before it in this stall (0 for the first), or None: the results
    (in the order they came, lower is better) have made no real progress (a gain above
    ``_STALL_TOL`` of the distance from the median to the best) for ``patience`` results, and
    every ``every``-th suggestion since then explores (the rest keep refining the best)."""
    n = len(y)
    if n <= patience:
        return None
    tol = _STALL_TOL * max(float(np.median(y) - y.min()), 1e-12)
    before = np.minimum.accumulate(y)[:-1]  # best before each result
    gains = np.flatnonzero(y[1:] < before - tol)
    last = int(gains[-1]) + 1 if len(gains) else 0
    stalled = n - 1 - last
    if stalled < patience or (stalled - patience) % every:
        return None
    return (stalled - patience) // every


def _known_last(model: gp_model.GP, xs: np.ndarray, order: np.ndarray) -> np.ndarray:
    """``order`` with the leading candidates whose value the model already knows (posterior
    sd below ``_KNOWN_SD`` of the signal's) moved to the end. On a plateau (many distinct
    points with exactly the best value: a parameter that stops mattering) EI keeps preferring
    one more point of it, each nearly certain to tie, and the search spends its budget there."""
    head = order[:_KNOWN_CHECK]
    _, var = model.predict(xs[head])
    known = np.sqrt(np.maximum(var, 0.0)) < _KNOWN_SD * math.sqrt(model.signal)
    return np.concatenate([head[~known], order[_KNOWN_CHECK:], head[known]])


def _scaled_gap(model: gp_model.GP, x: np.ndarray) -> float:
    """Distance from ``x`` to the nearest modelled point, in lengthscales."""
    d = ((model.xs - model.scale(x[None, :])) ** 2).sum(1)
    return float(np.sqrt(d.min())) if d.size else math.inf


def _log_transform(y: np.ndarray, lower_is_better: bool) -> np.ndarray:
    """Log of the objective in minimisation form (``y`` is already sign-flipped when the
    objective is maximised); values <= 0 get a shift so that the log exists."""
    raw = y if lower_is_better else -y
    low = float(raw.min())
    with np.errstate(over="ignore", invalid="ignore"):
        if low <= 0.0:
            span = float(raw.max() - low)
            raw = raw - low + (span * 1e-3 if math.isfinite(span) and span > 0 else 1.0)
        out = np.log(np.minimum(raw, np.finfo(float).max))
    return out if lower_is_better else -out


def _subsample(
    x: np.ndarray, y: np.ndarray, limit: int, gen: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """At most ``limit`` rows: the best half by ``y`` and a random sample of the rest."""
    n = len(y)
    if n <= limit:
        return x, y
    order = np.argsort(y, kind="stable")
    keep_best = order[: limit // 2]
    rest = order[limit // 2 :]
    pick = gen.choice(rest, size=limit - len(keep_best), replace=False)
    idx = np.sort(np.concatenate([keep_best, pick]))
    return x[idx], y[idx]


def _best_per_category(enc: _Encoder, xs: np.ndarray, acq: np.ndarray) -> np.ndarray:
    """For each value of each Choice parameter, the candidate with the highest acquisition
    among those that take it."""
    rows = []
    for col, k in enc.blocks:
        which = np.argmax(xs[:, col : col + k], axis=1)
        for c in range(k):
            idx = np.flatnonzero(which == c)
            if len(idx):
                rows.append(xs[idx[np.argmax(acq[idx])]])
    return np.vstack(rows) if rows else np.zeros((0, xs.shape[1]))


def _distinct_rows(x: np.ndarray, k: int) -> np.ndarray:
    """The first ``k`` distinct rows of ``x`` (in order)."""
    out: list[np.ndarray] = []
    keys: set[bytes] = set()
    for row in x:
        key = np.round(row, 9).tobytes()
        if key in keys:
            continue
        keys.add(key)
        out.append(row)
        if len(out) == k:
            break
    return np.vstack(out) if out else np.zeros((0, x.shape[1]))
