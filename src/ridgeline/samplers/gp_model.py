"""Gaussian-process regression for the GP sampler: NumPy and SciPy only.

A Matern-5/2 kernel with one lengthscale per *group* of features (a numeric parameter is one
feature; a categorical parameter is a one-hot block sharing one lengthscale, which makes its
kernel a Hamming-distance kernel). Hyperparameters are MAP estimates (log marginal likelihood
plus weak priors) found with L-BFGS-B from a few starts, with exact gradients. Outputs are
warped by ``warp_outputs`` first so that heavy tails do not flatten the model where it matters.

Everything here minimises: the sampler flips maximised objectives before calling in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.linalg.lapack
import scipy.optimize
import scipy.special

__all__ = [
    "GP",
    "MIN_NOISE",
    "Hyper",
    "InputWarp",
    "acquisition",
    "acquisition_grad",
    "choose_warp",
    "default_theta",
    "fit_hyper",
    "log_h",
    "warp_outputs",
]

_SQRT5 = math.sqrt(5.0)
_LOG_2PI = math.log(2.0 * math.pi)
MIN_NOISE = 1e-6  # in standardised output units: keeps the Cholesky factor well conditioned
_LOG_LS_BOUNDS = (math.log(0.01), math.log(30.0))
_LOG_SF2_BOUNDS = (math.log(0.05), math.log(20.0))
_LOG_SN2_BOUNDS = (math.log(1e-9), math.log(2.0))


# -- output warping ------------------------------------------------------------------------


def warp_outputs(y: np.ndarray) -> np.ndarray:
    """Standardised, tail-compressed copy of ``y`` (lower is better).

    Minimisation only needs the good end modelled well; a few huge values (diverged runs,
    Rosenbrock's walls) would otherwise dominate the fitted signal variance and make every good
    point look alike. Values above the median are compressed logarithmically in units of the
    spread of the better half, then a Yeo-Johnson power transform whose exponent maximises the
    Gaussian likelihood evens out what is left; the result is standardised.
    """
    y = np.asarray(y, dtype=float)
    if y.size == 0:
        return y.copy()
    med = float(np.median(y))
    lower = y[y <= med]
    scale = float(med - lower.min()) if lower.size else 0.0
    if not scale > 0.0:
        scale = float(np.std(y))
    if not scale > 0.0:
        return np.zeros_like(y)
    with np.errstate(over="ignore", invalid="ignore"):
        z = (y - med) / scale  # >= -1 by construction; may overflow upwards only
    z = np.where(np.isfinite(z), z, 1e300)
    z = np.where(z > 0.0, np.log1p(np.maximum(z, 0.0)), z)
    z = (z - z.mean()) / max(float(z.std()), 1e-12)
    z = _yeo_johnson(z)
    sd = float(z.std())
    if not sd > 0.0 or not np.all(np.isfinite(z)):
        return np.zeros_like(y)
    return (z - z.mean()) / sd


def _yj(z: np.ndarray, lam: float) -> np.ndarray:
    pos = z >= 0.0
    out = np.empty_like(z)
    zp, zn = z[pos], z[~pos]
    if abs(lam) < 1e-8:
        out[pos] = np.log1p(zp)
    else:
        out[pos] = np.expm1(lam * np.log1p(zp)) / lam
    if abs(lam - 2.0) < 1e-8:
        out[~pos] = -np.log1p(-zn)
    else:
        out[~pos] = -np.expm1((2.0 - lam) * np.log1p(-zn)) / (2.0 - lam)
    return out


def _yeo_johnson(z: np.ndarray) -> np.ndarray:
    """Yeo-Johnson transform with the maximum-likelihood exponent in [0, 2] (0..2 keeps order
    and never expands the good tail)."""
    if z.size < 4:
        return z
    log_terms = np.sign(z) * np.log1p(np.abs(z))

    def nll(lam: float) -> float:
        t = _yj(z, lam)
        var = float(t.var())
        if not var > 0.0 or not math.isfinite(var):
            return math.inf
        return 0.5 * z.size * math.log(var) - (lam - 1.0) * float(log_terms.sum())

    res = scipy.optimize.minimize_scalar(
        nll, bounds=(0.0, 2.0), method="bounded", options={"xatol": 1e-3}
    )
    lam = float(res.x) if math.isfinite(float(res.fun)) else 1.0
    return _yj(z, lam)


# -- kernel --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hyper:
    """Kernel hyperparameters: per-group lengthscales, signal and noise variance."""

    lengthscales: np.ndarray
    signal: float
    noise: float

    def to_theta(self) -> np.ndarray:
        return np.concatenate(
            [np.log(self.lengthscales), [math.log(self.signal), math.log(self.noise)]]
        )

    @staticmethod
    def from_theta(theta: np.ndarray, groups: int) -> Hyper:
        return Hyper(
            np.exp(theta[:groups]), float(np.exp(theta[groups])), float(np.exp(theta[groups + 1]))
        )


def _matern(r2: np.ndarray, signal: float) -> tuple[np.ndarray, np.ndarray]:
    """Kernel values and ``-dk/d(r^2)`` (both scaled by the signal variance).

    Written with in-place operations on ``s = sqrt(5) r``: this runs on every kernel matrix
    of the fit and on every candidate block of the acquisition search, where temporaries
    cost as much as the arithmetic."""
    s = np.multiply(r2, 5.0)
    np.maximum(s, 0.0, out=s)
    np.sqrt(s, out=s)
    e = np.negative(s)
    np.exp(e, out=e)
    dk = s + 1.0  # 1 + sqrt(5) r
    k = np.square(s, out=s)
    k *= 1.0 / 3.0  # (5/3) r^2
    k += dk
    k *= e
    k *= signal
    dk *= e
    dk *= signal * (5.0 / 6.0)
    return k, dk


def _sqdist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d, 0.0)


class _Features:
    """Maps features to lengthscale groups; one-hot features count half (Hamming distance)."""

    def __init__(self, group_of: Sequence[int], onehot: Sequence[bool]) -> None:
        self.group_of = np.asarray(group_of, dtype=int)
        self.groups = int(self.group_of.max()) + 1 if self.group_of.size else 0
        self.base = np.where(np.asarray(onehot, dtype=bool), math.sqrt(0.5), 1.0)

    def weights(self, lengthscales: np.ndarray) -> np.ndarray:
        return self.base / lengthscales[self.group_of]


# -- fitting -------------------------------------------------------------------------------

# Priors (inputs in the unit cube, outputs standardised). Lengthscales: log-normal around 0.5
# up to 6 groups and around 0.5 * 6 / groups beyond (see ``ls_prior_centre``), plus a barrier
# ``a / l^2`` against lengthscales far below 0.1 -- without it, ragged objectives
# (cross-validation error moves in steps) are fitted as noise-free and wiggly, and the search
# stalls around the first good points. Signal variance: log-normal around 1. Noise: small
# values favoured (most objectives are nearly deterministic), larger ones possible.
_LS_PRIOR_CENTRE = 0.5
_LS_PRIOR_FULL_UP_TO = 6  # groups; beyond, the prior's centre shrinks in proportion
_LS_PRIOR_SD = 1.0
_LS_BARRIER = 0.1
_SF2_PRIOR_SD = 1.0
_SN2_PRIOR_RATE = 20.0


def ls_prior_centre(groups: int) -> float:
    """Where the lengthscale prior is centred: 0.5 up to 6 groups, 0.5 * 6 / groups beyond.

    With a few dozen results in many dimensions the data barely pin the lengthscales down,
    and the prior decides how far the model generalises. A long one fits a smooth surface
    across the whole cube that the few points cannot support, and the search follows that
    surface's guesses far from anything seen; a shorter one keeps the model's confidence near
    the observed points, so expected improvement searches around the best ones. Measured on
    functions outside the benchmark (Ackley, Levy, Rastrigin, Rosenbrock, rotated ellipsoid
    and Styblinski-Tang, Hartmann-6 among dummy coordinates; 30 seeds x 60 evaluations) the
    mean score rose by 3.7 points in 9 dimensions, 4.7 in 12 and 0.8 in 20, while a shorter
    prior in 6 changed nothing (benchmarks/many_dims.py; docs/search-quality.md).
    """
    return _LS_PRIOR_CENTRE * min(1.0, _LS_PRIOR_FULL_UP_TO / max(groups, 1))


def _prior(theta: np.ndarray, groups: int) -> tuple[float, np.ndarray]:
    """Negative log prior density (up to a constant) and its gradient in ``theta``."""
    g = np.zeros_like(theta)
    log_ls = theta[:groups]
    inv_l2 = np.exp(-2.0 * log_ls)
    mu = math.log(ls_prior_centre(groups))
    val = 0.5 * float(((log_ls - mu) ** 2).sum()) / _LS_PRIOR_SD**2
    val += _LS_BARRIER * float(inv_l2.sum())
    g[:groups] = (log_ls - mu) / _LS_PRIOR_SD**2 - 2.0 * _LS_BARRIER * inv_l2
    val += 0.5 * theta[groups] ** 2 / _SF2_PRIOR_SD**2
    g[groups] = theta[groups] / _SF2_PRIOR_SD**2
    sn2 = math.exp(theta[groups + 1])
    val += _SN2_PRIOR_RATE * sn2 - 0.1 * theta[groups + 1]
    g[groups + 1] = _SN2_PRIOR_RATE * sn2 - 0.1
    return float(val), g


class _Objective:
    """Negative log posterior of the hyperparameters with its exact gradient.

    One evaluation costs a Cholesky factorisation and an inverse from it (LAPACK's potrf and
    potri: a third of the work of solving for the identity); the per-group squared distances
    are computed once, flattened, so the kernel's argument and the lengthscale gradient are
    one matrix-vector product each."""

    def __init__(self, x: np.ndarray, y: np.ndarray, feats: _Features) -> None:
        self.y = y
        self.n = y.size
        self.feats = feats
        g = feats.groups
        dist = np.zeros((g, self.n, self.n))  # squared distances per group
        for f, grp in enumerate(feats.group_of):
            col = x[:, f] * feats.base[f]
            dist[grp] += (col[:, None] - col[None, :]) ** 2
        self.dist = dist.reshape(g, self.n * self.n)
        self.diag = np.arange(self.n) * (self.n + 1)  # flat indices of the diagonal
        # Sums over a symmetric matrix from its lower triangle: 2 below the diagonal, 1 on it.
        self.lower = np.tril(np.full((self.n, self.n), 2.0), -1).reshape(-1)
        self.lower[self.diag] = 1.0

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        g = self.feats.groups
        n = self.n
        ls2 = np.exp(2.0 * theta[:g])
        signal = math.exp(theta[g])
        noise_free = math.exp(theta[g + 1])
        noise = noise_free + MIN_NOISE
        r2 = (1.0 / ls2) @ self.dist
        k, dk = _matern(r2, signal)
        kn = k.copy()
        kn[self.diag] += noise
        # the transpose (the same symmetric matrix) is in Fortran order: factorised in place
        chol, info = _potrf(kn.reshape(n, n).T, lower=True, overwrite_a=True, clean=False)
        if info != 0:
            return 1e25, np.zeros_like(theta)
        alpha, _ = _potrs(chol, self.y, lower=True)
        nll = (
            0.5 * float(self.y @ alpha)
            + float(np.log(np.diagonal(chol)).sum())
            + 0.5 * n * _LOG_2PI
        )
        kinv, info = _potri(chol, lower=True, overwrite_c=True)
        if info != 0:
            return 1e25, np.zeros_like(theta)
        w = np.outer(alpha, alpha)
        w -= kinv  # dLML/dK = W / 2; right in the lower triangle (potri fills only that)
        w = w.reshape(-1)
        w *= self.lower  # every sum below is over W times a symmetric matrix
        grad = np.empty_like(theta)
        # dK/dlog(l_g) = -dk/d(r^2) * d(r^2)/dlog(l_g) = dk_neg * 2 * D_g / l_g^2
        dk *= w
        grad[:g] = -(self.dist @ dk) / ls2
        grad[g] = -0.5 * float(w @ k)
        grad[g + 1] = -0.5 * noise_free * float(w[self.diag].sum())
        pv, pg = _prior(theta, g)
        return nll + pv, grad + pg


_potrf = scipy.linalg.lapack.dpotrf
_potrs = scipy.linalg.lapack.dpotrs
_potri = scipy.linalg.lapack.dpotri
_trtrs = scipy.linalg.lapack.dtrtrs


def default_theta(groups: int) -> np.ndarray:
    """Where fitting starts without a previous fit: the prior's centre, little noise."""
    log_ls = math.log(ls_prior_centre(groups))
    return np.concatenate([np.full(groups, log_ls), [0.0, math.log(1e-3)]])


def _bounds(groups: int) -> list[tuple[float, float]]:
    return [_LOG_LS_BOUNDS] * groups + [_LOG_SF2_BOUNDS, _LOG_SN2_BOUNDS]


def fit_hyper(
    x: np.ndarray,
    y: np.ndarray,
    group_of: Sequence[int],
    onehot: Sequence[bool],
    starts: Sequence[np.ndarray],
    maxiter: int = 200,
    ftol: float | None = None,
) -> np.ndarray:
    """MAP hyperparameters (as ``theta``: log lengthscales, log signal, log noise) from the
    best of L-BFGS-B runs from ``starts``; a run stops when an iteration gains less than
    ``ftol`` of the objective (None: SciPy's default, 2.2e-9)."""
    feats = _Features(group_of, onehot)
    obj = _Objective(x, y, feats)
    bounds = _bounds(feats.groups)
    lo = np.array([b[0] for b in bounds])
    hi = np.array([b[1] for b in bounds])
    best_val, best_theta = math.inf, np.clip(default_theta(feats.groups), lo, hi)
    options: dict[str, float] = {"maxiter": maxiter, "gtol": 1e-4}
    if ftol is not None:
        options["ftol"] = ftol
    for start in starts:
        t0 = np.clip(np.asarray(start, dtype=float), lo, hi)
        try:
            res = scipy.optimize.minimize(
                obj,
                t0,
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                options=options,
            )
        except (ValueError, FloatingPointError, np.linalg.LinAlgError):
            continue
        val = float(res.fun)
        if math.isfinite(val) and val < best_val:
            best_val, best_theta = val, np.asarray(res.x, dtype=float)
    return best_theta


# -- input warping -------------------------------------------------------------------------

# Kumaraswamy CDFs u = 1 - (1 - x^a)^b a feature may be warped by: u = sqrt(x) gives more
# resolution near 0, u = 1 - sqrt(1 - x) near 1. A stationary kernel assumes the objective
# changes equally fast everywhere along a feature; a parameter whose interesting part sits at
# one end of its range does not. (Four more shapes and a penalty of 1.5 nats chose warps by
# chance too often: worse on 9 of the benchmark's 15 problems, better on 3.)
_WARPS = ((1.0, 1.0), (0.5, 1.0), (1.0, 0.5))
_WARP_PENALTY = 3.0  # nats of log likelihood a warp must gain over the unwarped feature
_WARP_EPS = 1e-9


@dataclass(frozen=True)
class InputWarp:
    """Per-feature Kumaraswamy CDFs on the unit interval (``a = b = 1``: left as it is)."""

    a: np.ndarray
    b: np.ndarray

    @property
    def cols(self) -> np.ndarray:
        return np.flatnonzero((self.a != 1.0) | (self.b != 1.0))

    def apply(self, x: np.ndarray) -> np.ndarray:
        cols = self.cols
        u = np.array(x, dtype=float, copy=True)
        xc = np.clip(u[:, cols], 0.0, 1.0)
        u[:, cols] = 1.0 - (1.0 - xc ** self.a[cols]) ** self.b[cols]
        return u

    def slope(self, x: np.ndarray, free: np.ndarray) -> np.ndarray:
        """``du/dx`` along the ``free`` columns (1 where a column is not warped)."""
        a, b = self.a[free], self.b[free]
        xc = np.clip(x[:, free], _WARP_EPS, 1.0 - _WARP_EPS)
        xa = xc**a
        return a * b * xa / xc * (1.0 - xa) ** (b - 1.0)


def choose_warp(
    x: np.ndarray,
    y: np.ndarray,
    theta: np.ndarray,
    group_of: Sequence[int],
    onehot: Sequence[bool],
    numeric: Sequence[int],
) -> InputWarp | None:
    """The warps of the ``numeric`` features that raise the marginal likelihood (at the
    hyperparameters ``theta``) by more than ``_WARP_PENALTY`` each, one feature at a time;
    None when no feature gains that much."""
    feats = _Features(group_of, onehot)
    groups = feats.groups
    inv_ls2 = np.exp(-2.0 * theta[:groups])[feats.group_of] * feats.base**2
    signal = math.exp(theta[groups])
    noise = math.exp(theta[groups + 1]) + MIN_NOISE
    diag = np.diag_indices(len(y))

    def term(col: np.ndarray, f: int) -> np.ndarray:
        return inv_ls2[f] * (col[:, None] - col[None, :]) ** 2

    def nll(r2: np.ndarray) -> float:
        # the data term of the marginal likelihood: the prior is the same for every warp
        k, _ = _matern(r2, signal)
        k[diag] += noise
        chol, info = _potrf(k, lower=True, overwrite_a=True, clean=False)
        if info != 0:
            return math.inf
        alpha, _ = _potrs(chol, y, lower=True)
        return 0.5 * float(y @ alpha) + float(np.log(np.diagonal(chol)).sum())

    r2 = sum((term(x[:, f], f) for f in range(x.shape[1])), np.zeros((len(y), len(y))))
    best = nll(r2)
    a = np.ones(x.shape[1])
    b = np.ones(x.shape[1])
    for f in numeric:
        current = term(x[:, f], f)
        base = r2 - current
        choice, chosen = (1.0, 1.0), current
        for wa, wb in _WARPS[1:]:
            col = 1.0 - (1.0 - np.clip(x[:, f], 0.0, 1.0) ** wa) ** wb
            trial = term(col, f)
            value = nll(base + trial) + _WARP_PENALTY
            if value < best:
                best, choice, chosen = value, (wa, wb), trial
        a[f], b[f] = choice
        r2 = base + chosen
    if np.all(a == 1.0) and np.all(b == 1.0):
        return None
    return InputWarp(a, b)


# -- the posterior -------------------------------------------------------------------------


class GP:
    """A Gaussian process conditioned on ``(x, y)`` with fixed hyperparameters (zero mean)."""

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        theta: np.ndarray,
        group_of: Sequence[int],
        onehot: Sequence[bool],
        warp: InputWarp | None = None,
    ) -> None:
        self.feats = _Features(group_of, onehot)
        self.warp = warp
        self.hyper = Hyper.from_theta(np.asarray(theta, dtype=float), self.feats.groups)
        self.w = self.feats.weights(self.hyper.lengthscales)
        self.signal = self.hyper.signal
        self.noise = self.hyper.noise + MIN_NOISE
        self.theta = np.asarray(theta, dtype=float)
        self.group_of = list(group_of)
        self.onehot = list(onehot)
        self._set(np.asarray(x, dtype=float), np.asarray(y, dtype=float))

    def warped(self, x: np.ndarray) -> np.ndarray:
        """Features as the kernel sees them before scaling (input warping applied)."""
        return x if self.warp is None else self.warp.apply(x)

    def scale(self, x: np.ndarray) -> np.ndarray:
        """Features warped and divided by their lengthscales: distances here are the
        kernel's."""
        return self.warped(x) * self.w

    def _set(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x = x
        self.y = y
        self.u = self.warped(x)
        self.xs = self.u * self.w
        k, _ = _matern(_sqdist(self.xs, self.xs), self.signal)
        k[np.diag_indices_from(k)] += self.noise
        jitter = 0.0
        for _ in range(6):
            try:
                chol = scipy.linalg.cholesky(k, lower=True, check_finite=False)
                break
            except np.linalg.LinAlgError:
                jitter = max(jitter * 10.0, 1e-8)
                k[np.diag_indices_from(k)] += jitter
        else:  # pragma: no cover - a noise floor makes this unreachable in practice
            raise np.linalg.LinAlgError("kernel matrix is not positive definite")
        self.chol = chol
        self.alpha = scipy.linalg.cho_solve((chol, True), y, check_finite=False)

    def _solve(self, kq: np.ndarray) -> np.ndarray:
        """``L^-1 kq^T``: variances from triangular solves stay accurate where an explicit
        inverse would lose them to rounding (long lengthscales, tiny noise)."""
        return _trtrs(self.chol, kq.T, lower=1)[0]  # LAPACK directly: called thousands of times

    def with_data(self, x_new: np.ndarray, y_new: np.ndarray) -> GP:
        """The same model conditioned on extra (fantasised) points too."""
        out = GP.__new__(GP)
        out.__dict__.update(self.__dict__)
        out._set(np.vstack([self.x, x_new]), np.concatenate([self.y, y_new]))
        return out

    def predict(self, xq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and variance of the latent function at rows of ``xq``.

        Thousands of candidates go through here at once; in blocks of ``_BLOCK`` rows the
        kernel block and its temporaries stay in the CPU cache (about twice as fast)."""
        if len(xq) > _BLOCK:
            parts = [self.predict(xq[i : i + _BLOCK]) for i in range(0, len(xq), _BLOCK)]
            return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        kq, _ = _matern(_sqdist(self.scale(xq), self.xs), self.signal)
        mu = kq @ self.alpha
        v = self._solve(kq)
        var = self.signal - np.einsum("ij,ij->j", v, v)
        return mu, np.maximum(var, 1e-12)

    def predict_grad(
        self, xq: np.ndarray, free: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Mean, variance and their gradients along the ``free`` feature columns."""
        uq = self.warped(xq)
        kq, dk = _matern(_sqdist(uq * self.w, self.xs), self.signal)
        mu = kq @ self.alpha
        s = self._solve(kq)
        var = self.signal - np.einsum("ij,ij->j", s, s)
        v = _trtrs(self.chol, s, lower=1, trans=1)[0].T  # K^-1 kq^T, transposed
        w2 = self.w[free] ** 2
        # d k(x, X_j) / d x_f = -dk_neg * 2 * w_f^2 * (x_f - X_jf)
        ga = dk * self.alpha
        gv = dk * v
        uf = uq[:, free]
        utr = self.u[:, free]
        dmu = -2.0 * w2 * (uf * ga.sum(1)[:, None] - ga @ utr)
        dvar = 4.0 * w2 * (uf * gv.sum(1)[:, None] - gv @ utr)
        if self.warp is not None:
            slope = self.warp.slope(xq, free)
            dmu *= slope
            dvar *= slope
        small = var < 1e-12
        var = np.maximum(var, 1e-12)
        dvar[small] = 0.0
        return mu, var, dmu, dvar

    def crowding(
        self, xq: np.ndarray, xp: np.ndarray, free: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``sum_p log(1 - rho_p(x)^2)`` over points ``xp`` (rho: the kernel correlation), and
        its gradient along ``free``: a smooth penalty, zero far away and -23 on top of a point,
        that keeps a batch of suggestions from piling up where the fantasies leave the mean
        low."""
        uq, up = self.warped(xq), self.warped(xp)
        kq, dk = _matern(_sqdist(uq * self.w, up * self.w), 1.0)
        rho2 = np.minimum(kq * kq, 1.0)
        val = np.log(1.0 - rho2 + _CROWD_EPS).sum(1)
        if free is None:
            return val, None
        c = 4.0 * kq * dk / (1.0 - rho2 + _CROWD_EPS)
        w2 = self.w[free] ** 2
        grad = w2 * (uq[:, free] * c.sum(1)[:, None] - c @ up[:, free])
        if self.warp is not None:
            grad *= self.warp.slope(xq, free)
        return val, grad


_CROWD_EPS = 1e-10
_BLOCK = 256  # candidates per block in ``GP.predict``

# -- acquisition functions -----------------------------------------------------------------

_LOG_SQRT_2PI = 0.5 * _LOG_2PI
_LOG_PI_2 = 0.5 * math.log(math.pi / 2.0)


def log_h(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``log(phi(z) + z * Phi(z))`` and its derivative, stable for very negative ``z``
    (Ament et al., 2023, "Unexpected improvements to expected improvement")."""
    z = np.asarray(z, dtype=float)
    out = np.empty_like(z)
    big = z > -1.0
    zb = z[big]
    out[big] = np.log(np.exp(-0.5 * zb * zb - _LOG_SQRT_2PI) + zb * scipy.special.ndtr(zb))
    zs = z[~big]
    t = np.log(scipy.special.erfcx(-zs / math.sqrt(2.0)) * np.abs(zs)) + _LOG_PI_2
    # log1mexp(t) for t < 0
    l1 = np.where(
        t > -math.log(2.0), np.log(-np.expm1(np.minimum(t, -1e-300))), np.log1p(-np.exp(t))
    )
    out[~big] = -0.5 * zs * zs - _LOG_SQRT_2PI + l1
    # d/dz log h = Phi(z) / h(z)
    deriv = np.exp(scipy.special.log_ndtr(z) - out)
    return out, deriv


def acquisition(
    kind: str, mu: np.ndarray, var: np.ndarray, best: float, kappa: float
) -> np.ndarray:
    """Acquisition values to maximise: log EI, log PI or negative LCB."""
    sd = np.sqrt(var)
    if kind == "lcb":
        return -(mu - kappa * sd)
    z = (best - mu) / sd
    if kind == "pi":
        return np.asarray(scipy.special.log_ndtr(z))
    lh, _ = log_h(z)
    return np.log(sd) + lh


def acquisition_grad(
    kind: str,
    mu: np.ndarray,
    var: np.ndarray,
    dmu: np.ndarray,
    dvar: np.ndarray,
    best: float,
    kappa: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Acquisition values and gradients from the posterior and its gradients."""
    sd = np.sqrt(var)
    dsd = dvar / (2.0 * sd[:, None])
    if kind == "lcb":
        return -(mu - kappa * sd), -(dmu - kappa * dsd)
    z = (best - mu) / sd
    dz = -(dmu + z[:, None] * dsd) / sd[:, None]
    if kind == "pi":
        lp = np.asarray(scipy.special.log_ndtr(z))
        ratio = np.exp(-0.5 * z * z - _LOG_SQRT_2PI - lp)
        return lp, ratio[:, None] * dz
    lh, dlh = log_h(z)
    return np.log(sd) + lh, dsd / sd[:, None] + dlh[:, None] * dz
