"""Multivariate tree-structured Parzen estimator (TPE), vectorised with NumPy.

The model is refit from ``history`` on every call, so the sampler keeps no state and a
restarted run continues exactly. Observations are split by objective into a *good* group (the
best ``gamma(n)``) and a *bad* group (the rest, failures and the pending trials). Each group
gets a joint Parzen estimator in the unit cube, ``l(x)`` and ``g(x)``: truncated Gaussians for
numeric parameters (log scales via the space's unit mapping; Discrete and Ordinal values are
bins of [0, 1] that get the Gaussian's mass over the bin), Aitchison-Aitken kernels for
``Choice``, and a uniform prior component so that neither density is ever zero. Candidates are
drawn from ``l`` and the one with the largest ``l(x) / g(x)`` is proposed (Bergstra et al.
2011; joint kernels as in Falkner et al. 2018, BOHB, and Optuna's ``multivariate=True``).

Which trials it uses (``TrialView.status``):

- ``COMPLETED``, ``STOPPED`` and ``PAUSED`` trials with a finite objective are observations;
- ``FAILED`` and ``INVALID_HP`` trials, and finished trials without a finite objective, join
  the bad group: their region is avoided, never called good;
- ``PENDING`` and ``RUNNING`` trials come through ``pending`` instead, and each pending point
  joins the bad group (a constant liar), which keeps parallel suggestions apart;
  ``CANCELED`` trials never ran and are ignored.

Multi-fidelity (ASHA or Hyperband with this sampler is BOHB): when trials ended early
(``STOPPED``/``PAUSED``) at different steps, trials are compared at the largest step that
enough of them reached, by their best value up to that step (``history.curves``); the trials
that ended below it were judged worse by the searcher and join the bad group.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr, ndtri

from ridgeline.errors import ConfigError
from ridgeline.samplers.base import History, Sampler, TrialView
from ridgeline.samplers.encoding import Encoding
from ridgeline.space import SearchSpace
from ridgeline.store.records import CANCELED, COMPLETED, PAUSED, PENDING, RUNNING, STOPPED
from ridgeline.values import whole_number

__all__ = ["TPESampler"]

Array = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Statuses whose objective is an observation (STOPPED/PAUSED: ended early by a searcher).
_OBSERVED = frozenset({COMPLETED, STOPPED, PAUSED})
#: Statuses of trials that run now (they come through ``pending``) or never ran.
_IGNORED = frozenset({PENDING, RUNNING, CANCELED})

#: Random configurations before the model is used, when ``num_initial`` is None.
DEFAULT_NUM_INITIAL = 10
#: Candidates drawn from l(x) per suggestion. More candidates exploit harder; 24 (Optuna's
#: default too) did as well as any other count on our benchmarks.
DEFAULT_NUM_CANDIDATES = 24

# Model constants, chosen on Branin, Hartmann-6, Rosenbrock-4 (60 trials) and the
# scikit-learn tasks of benchmarks/search_quality.py (40 trials).
_GAMMA_FRACTION = 0.1  # default good group: min(ceil(0.1 n), 25), as Optuna
_GAMMA_CAP = 25
_BW_FACTOR = 0.6  # Scott's rule factor: narrower than Scott's 1.06 exploits more
_BW_PSEUDO = 2.0  # pseudo-observations with the uniform's spread, for small groups
_BW_MIN = 0.01  # narrowest kernel, in unit-cube widths
_PRIOR_WEIGHT = 1.0  # the uniform prior component weighs as much as one observation

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_UNIFORM_VAR = 1.0 / 12.0
_TINY = 1e-300


def _logsumexp(x: Array, axis: int) -> Array:
    top = np.max(x, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    return np.asarray(np.log(np.sum(np.exp(x - top), axis=axis)) + np.squeeze(top, axis=axis))


class _Rows:
    """Model coordinates of the history's trials by position, kept between calls.

    A row is encoded again only when its trial's ``params`` is no longer the same object
    (the engine never edits parameters in place), so a suggestion with thousands of
    observations encodes one new trial, not all of them.
    """

    def __init__(self, layout: Encoding) -> None:
        self.layout = layout
        self.params: list[Mapping[str, Any]] = []
        self.u = np.empty((0, len(layout.numeric)))
        self.c = np.empty((0, len(layout.choices)), dtype=np.int64)
        self.ok = np.empty(0, dtype=bool)

    def update(self, trials: Sequence[TrialView]) -> None:
        n = len(trials)
        known = min(n, len(self.params))
        redo = [i for i in range(known) if trials[i].params is not self.params[i]]
        redo.extend(range(known, n))
        del self.params[n:]
        self.u, self.c, self.ok = self.u[:n], self.c[:n], self.ok[:n]
        if not redo:
            return
        if n > len(self.ok):
            more = n - len(self.ok)
            self.u = np.concatenate([self.u, np.empty((more, self.u.shape[1]))])
            self.c = np.concatenate([self.c, np.empty((more, self.c.shape[1]), dtype=np.int64)])
            self.ok = np.concatenate([self.ok, np.zeros(more, dtype=bool)])
            self.params.extend([{}] * more)
        u, c, ok = self.layout.encode([trials[i].params for i in redo])
        self.u[redo], self.c[redo], self.ok[redo] = u, c, ok
        for i in redo:
            self.params[i] = trials[i].params


@dataclass
class _Parzen:
    """A mixture of product kernels plus a uniform prior component (weight ``log_w[-1]``).

    One bandwidth per numeric column, shared by all kernels: it makes the joint density a
    matrix product (fast for thousands of observations) and is what Scott's rule gives.
    """

    mu: Array  # (K, dn) kernel centres in [0, 1]
    sigma: Array  # (dn,) bandwidths
    log_z: Array  # (K, dn) log mass of each truncated Gaussian inside [0, 1]
    cat_p: list[Array]  # per Choice column, (K, m) category probabilities
    log_w: Array  # (K + 1,) log mixture weights, prior last

    @classmethod
    def fit(cls, layout: Encoding, u: Array, c: IntArray) -> _Parzen:
        n = len(u)
        sigma = _bandwidth(u, layout.dims)
        with np.errstate(divide="ignore"):
            log_z = np.log(ndtr((1.0 - u) / sigma) - ndtr(-u / sigma))
        cat_p = []
        for j, m in enumerate(layout.sizes):
            # Aitchison-Aitken: the observed category, plus a share for every other one that
            # fades as the group grows (Optuna's rule)
            p = np.full((n, m), _PRIOR_WEIGHT / (n + 1))
            p[np.arange(n), c[:, j]] += 1.0
            cat_p.append(p / p.sum(axis=1, keepdims=True))
        w = np.append(np.ones(n), _PRIOR_WEIGHT)
        return cls(u, sigma, log_z, cat_p, np.log(w / w.sum()))

    def sample(
        self, layout: Encoding, size: int, joint: bool, rng: np.random.Generator
    ) -> tuple[Array, IntArray]:
        """``size`` draws: one component per draw (``joint``) or per draw and column."""
        k = len(self.mu)
        dn, dc = len(layout.numeric), len(layout.choices)
        w = np.exp(self.log_w)
        w /= w.sum()
        if joint:
            comp = np.repeat(rng.choice(k + 1, size=(size, 1), p=w), dn + dc, axis=1)
        else:
            comp = rng.choice(k + 1, size=(size, dn + dc), p=w)
        prior = comp == k
        idx = np.minimum(comp, max(k - 1, 0))
        u = rng.random((size, dn))
        if k and dn:  # inverse CDF of the truncated Gaussians; the prior keeps ``u``
            mu = self.mu[idx[:, :dn], np.arange(dn)]
            lo = ndtr(-mu / self.sigma)
            hi = ndtr((1.0 - mu) / self.sigma)
            x = mu + self.sigma * ndtri(lo + u * (hi - lo))
            u = np.where(prior[:, :dn], u, np.clip(np.nan_to_num(x, nan=0.5), 0.0, 1.0))
        c = np.empty((size, dc), dtype=np.int64)
        for j, m in enumerate(layout.sizes):
            r = rng.random(size)
            uniform = np.minimum((r * m).astype(np.int64), m - 1)
            if k:
                cum = np.cumsum(self.cat_p[j][idx[:, dn + j]], axis=1)
                drawn = np.minimum((r[:, None] >= cum).sum(axis=1), m - 1)
                c[:, j] = np.where(prior[:, dn + j], uniform, drawn)
            else:
                c[:, j] = uniform
        return u, c

    def log_pdf(
        self, layout: Encoding, u: Array, lower: Array, upper: Array, c: IntArray, joint: bool
    ) -> Array:
        """Log density at ``u, c`` (probability for binned and categorical columns).

        ``joint``: of the mixture of product kernels; else the sum over columns of each
        column's own mixture (the independent TPE).
        """
        k = len(self.mu)
        size = len(u)
        # prior: uniform density on smooth columns, bin width on binned ones, 1/m on choices
        prior = np.zeros((size, layout.dims))
        if len(layout.bins):
            prior[:, layout.bins] = np.log(
                np.maximum(upper[:, layout.bins] - lower[:, layout.bins], _TINY)
            )
        prior[:, len(layout.numeric) :] = -np.log(np.asarray(layout.sizes, dtype=float))
        if k == 0:
            return np.asarray(prior.sum(axis=1))
        log_w = self.log_w
        if joint:
            total = self._joint_terms(layout, u, lower, upper, c) + log_w[None, :k]
            both = np.concatenate([total, (prior.sum(axis=1) + log_w[k])[:, None]], axis=1)
            return _logsumexp(both, axis=1)
        terms = self._column_terms(layout, u, lower, upper, c) + log_w[None, :k, None]
        both = np.concatenate([terms, (prior + log_w[k])[:, None, :]], axis=1)
        return np.asarray(_logsumexp(both, axis=1).sum(axis=1))

    def _joint_terms(
        self, layout: Encoding, u: Array, lower: Array, upper: Array, c: IntArray
    ) -> Array:
        """``(C, K)`` log kernel values, summed over columns."""
        smooth, bins = layout.smooth, layout.bins
        const = -self.log_z.sum(axis=1)
        out = np.zeros((len(u), len(self.mu)))
        if len(smooth):
            # squared scaled distances as a matrix product: O(C K), not O(C K d) temporaries
            sd = self.sigma[smooth]
            a = u[:, smooth] / sd
            b = self.mu[:, smooth] / sd
            sq = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2.0 * (a @ b.T)
            out -= 0.5 * np.maximum(sq, 0.0)
            const = const - np.log(sd).sum() - len(smooth) * _LOG_SQRT_2PI
        if len(bins):
            out += self._bin_log_mass(u, lower, upper, bins).sum(axis=2)
        for j in range(len(layout.choices)):
            out += np.log(self.cat_p[j][:, c[:, j]]).T
        return out + const[None, :]

    def _column_terms(
        self, layout: Encoding, u: Array, lower: Array, upper: Array, c: IntArray
    ) -> Array:
        """``(C, K, columns)`` log kernel values, one per column."""
        dn = len(layout.numeric)
        out = np.empty((len(u), len(self.mu), layout.dims))
        if dn:
            z = (u[:, None, :] - self.mu[None, :, :]) / self.sigma
            dens = -0.5 * z * z - np.log(self.sigma) - _LOG_SQRT_2PI
            if len(layout.bins):
                dens[:, :, layout.bins] = self._bin_log_mass(u, lower, upper, layout.bins)
            out[:, :, :dn] = dens - self.log_z[None, :, :]
        for j in range(len(layout.choices)):
            out[:, :, dn + j] = np.log(self.cat_p[j][:, c[:, j]]).T
        return out

    def _bin_log_mass(self, u: Array, lower: Array, upper: Array, bins: IntArray) -> Array:
        """``(C, K, bins)`` log Gaussian mass of each candidate's bin (before truncation)."""
        mu = self.mu[None, :, bins]
        sd = self.sigma[bins]
        zl = (lower[:, None, bins] - mu) / sd
        zu = (upper[:, None, bins] - mu) / sd
        # right of the centre, difference the upper tails: no cancellation near 1
        mass = np.where(zl > 0, ndtr(-zl) - ndtr(-zu), ndtr(zu) - ndtr(zl))
        return np.asarray(np.log(np.maximum(mass, _TINY)))


def _bandwidth(u: Array, dims: int) -> Array:
    """Scott's rule per numeric column, ``factor * spread * n ** (-1 / (d + 4))``.

    The spread is the group's standard deviation shrunk towards the uniform's with a couple
    of pseudo-observations, so one or two points do not collapse it and thousands give narrow
    kernels; clipped to [0.01, 1].
    """
    n = len(u)
    if n == 0:
        return np.full(u.shape[1], 0.5)
    var = ((u - u.mean(axis=0)) ** 2).sum(axis=0)
    spread = np.sqrt((var + _BW_PSEUDO * _UNIFORM_VAR) / (n + _BW_PSEUDO))
    return np.asarray(np.clip(_BW_FACTOR * spread * n ** (-1.0 / (dims + 4)), _BW_MIN, 1.0))


@dataclass
class _Data:
    """The groups in model coordinates, and everything tried or pending (to avoid repeats)."""

    good_u: Array
    good_c: IntArray
    bad_u: Array
    bad_c: IntArray
    seen_u: Array
    seen_c: IntArray
    finished: int  # trials that ended, failures included
    scored: int  # trials in the comparison (a finite objective at the chosen step)


class TPESampler(Sampler):
    """Tree-structured Parzen estimator with joint (multivariate) kernels.

    ``num_initial``: random configurations before the model takes over, counting the trials
    that already ended in the history (so a warm-started history skips them); ``None``: 10.
    ``num_candidates``: draws from ``l(x)`` scored per suggestion (24: more exploit harder).
    ``multivariate``: joint kernels that capture interactions between parameters; ``False``
    models every parameter on its own, as the original TPE.
    ``gamma``: the share of the observations in the good group (at least one); ``None``:
    ``min(ceil(0.1 n), 25)``, which keeps the good group small and focused as ``n`` grows.
    It keeps no state of its own: the model is refit from the history on every call.
    """

    def __init__(
        self,
        num_initial: int | None = None,
        num_candidates: int = DEFAULT_NUM_CANDIDATES,
        multivariate: bool = True,
        gamma: float | None = None,
    ) -> None:
        self.num_initial = None if num_initial is None else whole_number("num_initial", num_initial)
        self.num_candidates = whole_number("num_candidates", num_candidates)
        if not isinstance(multivariate, bool):
            raise ConfigError(f"multivariate must be True or False, got {multivariate!r}")
        self.multivariate = multivariate
        if gamma is not None and (
            isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not 0.0 < gamma <= 1.0
        ):
            raise ConfigError(
                f"gamma must be a number in (0, 1] (the share of observations called good), "
                f"or None for the default min(ceil(0.1 n), 25); got {gamma!r}"
            )
        self.gamma = None if gamma is None else float(gamma)
        self._layout: Encoding | None = None
        self._rows: _Rows | None = None

    def propose(
        self,
        space: SearchSpace,
        history: History,
        pending: Sequence[Mapping[str, Any]],
        rng: random.Random,
    ) -> dict[str, Any]:
        if self._layout is None or self._layout.space is not space:
            self._layout = Encoding(space)
        layout = self._layout
        np_rng = np.random.default_rng(rng.getrandbits(64))
        if layout.dims == 0:
            return layout.decode(np.zeros(0), np.zeros(0, dtype=np.int64))
        data = self._collect(layout, history, pending)
        num_initial = DEFAULT_NUM_INITIAL if self.num_initial is None else self.num_initial
        if data.finished < num_initial or data.scored == 0:
            return self._random(layout, data, np_rng)
        joint = self.multivariate
        good = _Parzen.fit(layout, data.good_u, data.good_c)
        bad = _Parzen.fit(layout, data.bad_u, data.bad_c)
        u, c = good.sample(layout, self.num_candidates, joint, np_rng)
        u, lower, upper = layout.snap(u)
        score = good.log_pdf(layout, u, lower, upper, c, joint)
        score -= bad.log_pdf(layout, u, lower, upper, c, joint)
        repeat = _repeats(layout, u, c, data)
        if repeat.all():  # every candidate was tried: a random new point, if one is found
            return self._random(layout, data, np_rng)
        best = int(np.argmax(np.where(repeat, -np.inf, score)))
        return layout.decode(u[best], c[best])

    def _random(self, layout: Encoding, data: _Data, rng: np.random.Generator) -> dict[str, Any]:
        """A draw from the space's own distribution, a new one where a few tries find it."""
        tries = 8
        u = rng.random((tries, len(layout.numeric)))
        c = np.zeros((tries, len(layout.choices)), dtype=np.int64)
        for j, m in enumerate(layout.sizes):
            c[:, j] = rng.integers(m, size=tries)
        u, _, _ = layout.snap(u)
        repeat = _repeats(layout, u, c, data)
        best = int(np.argmin(repeat))  # the first new one, else the first
        return layout.decode(u[best], c[best])

    def _collect(
        self, layout: Encoding, history: History, pending: Sequence[Mapping[str, Any]]
    ) -> _Data:
        """Split the history into the good and bad groups (see the module docstring)."""
        if self._rows is None or self._rows.layout is not layout:
            self._rows = _Rows(layout)
        rows = self._rows
        rows.update(history.trials)
        trials = history.trials
        picked = [i for i, t in enumerate(trials) if t.params and t.status not in _IGNORED]
        active = history.active
        if active:  # running trials come through ``pending``; paused ones with a value stay
            running = {n for n, t in active.items() if t.status != PAUSED or t.objective is None}
            picked = [i for i in picked if trials[i].number not in running]
        picked = [i for i in picked if rows.ok[i]] if not rows.ok.all() else picked
        views = [history.trials[i] for i in picked]
        u, c = rows.u[picked], rows.c[picked]
        pu, pc, pok = layout.encode(pending)
        if not pok.all():
            pu, pc = pu[pok], pc[pok]
        paused = [i for i, t in enumerate(views) if t.number in active]
        if paused and len(pu):  # a searcher's paused trials may be pending too: count once
            known = {_key(u[i], c[i]) for i in paused}
            keep = np.array([_key(pu[i], pc[i]) not in known for i in range(len(pu))])
            pu, pc = pu[keep], pc[keep]
        values = _compared_values(views, history, max(layout.dims + 2, 5))
        sign = 1.0 if history.lower_is_better else -1.0
        scored = np.flatnonzero(np.isfinite(values))
        order = scored[np.argsort(sign * values[scored], kind="stable")]
        good = order[: self._num_good(len(order))] if len(order) else order
        is_good = np.zeros(len(views), dtype=bool)
        is_good[good] = True
        return _Data(
            good_u=u[good],
            good_c=c[good],
            bad_u=np.concatenate([u[~is_good], pu]),
            bad_c=np.concatenate([c[~is_good], pc]),
            seen_u=np.concatenate([u, pu]),
            seen_c=np.concatenate([c, pc]),
            finished=len(views),
            scored=len(order),
        )

    def _num_good(self, n: int) -> int:
        if self.gamma is None:
            k = min(math.ceil(_GAMMA_FRACTION * n), _GAMMA_CAP)
        else:
            k = math.ceil(self.gamma * n - 1e-9)
        return max(1, min(k, n))


def _compared_values(views: list[TrialView], history: History, enough: int) -> Array:
    """Each trial's objective at the step the trials are compared at; NaN puts it in the bad
    group (failed, no finite objective, or ended before that step)."""
    values = np.array(
        [
            t.objective if t.objective is not None and t.status in _OBSERVED else math.nan
            for t in views
        ],
        dtype=float,
    )
    values[~np.isfinite(values)] = np.nan
    early = [i for i, t in enumerate(views) if t.status != COMPLETED and values[i] == values[i]]
    if not early:
        return values
    # how far each scored trial got: a completed trial reached the end
    reach = np.full(len(views), -math.inf)
    for i, t in enumerate(views):
        if np.isfinite(values[i]):
            reach[i] = math.inf if t.status == COMPLETED else float(t.last_step or 0)
    levels = sorted({float(reach[i]) for i in early} | {math.inf}, reverse=True)
    step = next((s for s in levels if (reach >= s).sum() >= enough), levels[-1])
    if math.isinf(step):
        values[early] = np.nan
        return values
    lower_is_better = history.lower_is_better
    for i, t in enumerate(views):
        if reach[i] < step:
            values[i] = np.nan
            continue
        best: float | None = None
        for s, v in history.curves.get(t.number, ()):
            if (
                s <= step
                and math.isfinite(v)
                and (best is None or (v < best if lower_is_better else v > best))
            ):
                best = v
        if best is not None:
            values[i] = best
    return values


def _key(u: Array, c: IntArray) -> tuple[float | int, ...]:
    return (*u.tolist(), *c.tolist())


def _repeats(layout: Encoding, u: Array, c: IntArray, data: _Data) -> BoolArray:
    """Which candidates equal a configuration already tried or pending.

    Only spaces without continuous parameters can repeat a point; their candidates sit on
    bin centres computed exactly as the tried points' coordinates.
    """
    seen_u, seen_c = data.seen_u, data.seen_c
    if len(layout.smooth) or len(seen_u) == 0:
        return np.zeros(len(u), dtype=bool)
    same = np.ones((len(u), len(seen_u)), dtype=bool)
    for j in range(u.shape[1]):
        same &= u[:, j, None] == seen_u[None, :, j]
    for j in range(c.shape[1]):
        same &= c[:, j, None] == seen_c[None, :, j]
    return np.asarray(same.any(axis=1))
