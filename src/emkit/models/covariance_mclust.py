"""mclust's parsimonious covariance structures: the ten that scikit-learn's four do not cover.

Banfield & Raftery (1993) and Celeux & Govaert (1995) write each component's covariance as

    Sigma_k = lambda_k D_k A_k D_k^T

with ``lambda_k = |Sigma_k|^(1/D)`` its *volume*, ``A_k`` diagonal with ``|A_k| = 1`` its
*shape* and ``D_k`` orthogonal its *orientation*. Each of the three is Equal across the
components, Variable, or (shape and orientation) the Identity; mclust names a structure by the
three letters. The fourteen forms, with the structures that implement them:

    EII, EEI, VEI, EVI, EEV, VEV, EVV, VEE, EVE, VVE    here
    VII = ``spherical``, VVI = ``diag``, EEE = ``tied``, VVV = ``full``   in covariance.py

Every structure here stores its covariances as a full (K, D, D) stack, exactly as
:class:`~emkit.models.covariance.Full` does, and inherits everything of Full except what the
constraint changes: the M-step, the number of free parameters, the constraint (the free
coordinates of the curved parameter space), ``from_covariance`` and ``covariances_from_init``.
The E-step, missing values, sampling, float32, torch and Dask are Full's, unchanged.

The M-steps (``S_k`` = the scatter about the means divided by ``n_k``, plus ``reg_covar`` on its
diagonal; they maximise ``-1/2 sum_k n_k (log|Sigma_k| + tr(Sigma_k^{-1} S_k))`` over the form):

* closed forms (Celeux & Govaert 1995, Table 1): EII, EEI, EVI, EEV, EVV;
* VEI and VEV: the profile over the volumes is convex in ``log A`` (VEV: on the eigenvalues of
  ``S_k``, paired in decreasing order, von Neumann's trace inequality), solved by Newton's method
  with a line search: the global maximiser;
* VEE (proportional covariances, Flury 1986): Celeux & Govaert's alternation between the volumes
  and the common matrix ``C``, each step exact, from the current ``C``;
* EVE and VVE (VVE is Flury's common principal components): Jacobi sweeps over the pairs of
  columns of the common orientation (Flury & Gautschi 1986), each pair rotated to the minimum
  of the objective profiled over the volumes and shapes (a function of one angle) by Newton's
  method, safeguarded by the exact rotation given the shapes (closed form; with the exact shapes
  given the orientation it is a monotone block coordinate step, as the MM steps of Browne &
  McNicholas 2014), every accepted step lowering the objective; from the current orientation
  (without it, a few sweeps from the pooled scatter's and each S_k's eigenvectors, then on from
  the best).

With Numba installed the iterative solvers (and, on two features, EVE and VVE's whole solve
with its warm start) run as compiled loops that take the same steps
(``emkit.models._mclust_loops``); the NumPy functions here stay the reference and the path
without Numba (``EMKIT_COMPILED=0``), and the tests compare the two.

Every accepted step of the iterative ones lowers the objective; they iterate until no
parameter moves by more than 1e-13 (relative), warm-started from the current covariances
(``m_step(..., current=...)``), and the result is never worse than those (a final comparison
guards against rounding), so Q never decreases (generalised EM) and the result is the
maximiser to rounding (VEI, VEV and VEE: the global one). A component with no responsibility
(``n_k = 0``) keeps its own parts (volume, shape, orientation where Variable) from ``current``
(without it, the pooled scatter's) and shares the others, so the covariances stay of the form:
the model must not put its old covariance back (``restore_empty = False``).

``reg_covar`` is added to the diagonal of each ``S_k`` before the constrained M-step; for EII and
EEI, as for scikit-learn's four, that is the same as adding it to the result's diagonal, and
the result always keeps the form.

Free parameters (``n_parameters``, mclust's ``nMclustParams`` less means and weights): volume 1
(E) or K (V); shape 0 (I), D - 1 (E) or K (D - 1) (V); orientation 0 (I), D (D - 1) / 2 (E) or
K D (D - 1) / 2 (V). The constraint's free coordinates are exactly these: ``log lambda``,
``log A`` (all but the last entry of each), the skew-symmetric logarithm of each orientation
(upper triangle), and for VEE and EVV the Cholesky factor of the det-one matrix ``C``
(log-diagonal less its last entry, then the strict lower triangle). For EII and EEI they are
linear (``lambda``, the common diagonal), for the others a smooth chart of a curved manifold, so
standard errors by the delta method (a constant Jacobian) are not available for those.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.linalg import schur

from emkit.core.params import Constraint, SymmetricPositiveDefinite
from emkit.core.validation import is_symmetric_positive_definite
from emkit.models import gaussian_compiled as _compiled
from emkit.models.covariance import CovarianceStructure, Full, triu_pairs

__all__ = ["EEI", "EEV", "EII", "EVE", "EVI", "EVV", "MCLUST_ALIASES", "MCLUST_NAMES", "MCLUST_STRUCTURES",
           "MclustCovariance", "MclustStructure", "VEE", "VEI", "VEV", "VVE"]

#: mclust's fourteen names, in mclust's order
MCLUST_NAMES = ("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE", "EVE", "VVE", "EEV", "VEV", "EVV", "VVV")
#: mclust name -> scikit-learn name of the four forms that covariance.py implements
MCLUST_ALIASES = {"VII": "spherical", "VVI": "diag", "EEE": "tied", "VVV": "full"}

#: the iterative M-steps stop when no parameter moves by more than this, relative (angles:
#: absolute), ...
PARAM_RTOL = 1e-13
#: ... or after this many iterations (sweeps)
M_STEP_MAX_ITER = 10000
#: the Jacobi sweeps of a common orientation stop after this many pair rotations in all (a sweep
#: turns D (D - 1) / 2 pairs: with many features, fewer sweeps; every sweep lowers the objective,
#: so EM stays monotone when the solve stops early, a generalised EM step)
ORIENTATION_MAX_ROTATIONS = 5_000
#: Newton's method on the whole orientation (a finite-difference Hessian over all pairs) only up
#: to this many pairs of columns (D <= 12); beyond, the sweeps alone
NEWTON_MAX_PAIRS = 66
#: distance of a matrix from the form (relative to its largest entry) accepted as rounding
FORM_RTOL = {np.dtype(np.float64): 1e-6}
FORM_RTOL_LOW_PRECISION = 1e-3


# =========================================================================== small helpers
def _sym(m: np.ndarray) -> np.ndarray:
    return 0.5 * (m + np.swapaxes(m, -1, -2))


def _geomean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.exp(np.mean(np.log(x), axis=axis))


def _eigh_desc(s: np.ndarray):
    """Eigenvalues (K, D) in decreasing order and the eigenvectors (K, D, D) as columns."""
    vals, vecs = np.linalg.eigh(_sym(s))
    return vals[..., ::-1], vecs[..., ::-1]


def _orient(o: np.ndarray) -> np.ndarray:
    """The same directions with signs chosen so that the diagonal is non-negative and the
    determinant +1 (flipping the column with the smallest diagonal entry when needed)."""
    o = np.array(o, dtype=np.float64)
    stack = o.reshape((-1,) + o.shape[-2:])
    for m in stack:
        diag = np.diagonal(m)
        m *= np.where(diag < 0, -1.0, 1.0)
        if np.linalg.det(m) < 0:
            m[:, int(np.argmin(np.abs(np.diagonal(m))))] *= -1.0
    return stack.reshape(o.shape)


def _rotation_log(o: np.ndarray) -> np.ndarray:
    """A real skew-symmetric logarithm of a rotation ``o`` (det +1), eigenvalue -1 included
    (from the real Schur form: a 2 x 2 block per plane of rotation)."""
    d = o.shape[0]
    t, q = schur(o, output="real")
    log_t = np.zeros((d, d))
    minus = []
    i = 0
    while i < d:
        if i + 1 < d and t[i + 1, i] != 0.0:
            theta = math.atan2(0.5 * (t[i + 1, i] - t[i, i + 1]), 0.5 * (t[i, i] + t[i + 1, i + 1]))
            log_t[i + 1, i], log_t[i, i + 1] = theta, -theta
            i += 2
        else:
            if t[i, i] < 0:
                minus.append(i)
            i += 1
    for p, r in zip(minus[0::2], minus[1::2]):  # -1 twice: a rotation by pi in that plane
        log_t[r, p], log_t[p, r] = math.pi, -math.pi
    s = q @ log_t @ q.T
    return 0.5 * (s - s.T)


def _rotation_exp(s: np.ndarray) -> np.ndarray:
    """exp of skew-symmetric matrices (..., D, D): a rotation, from the eigen-decomposition of the
    Hermitian ``i S`` (orthogonal to rounding, and batched)."""
    mu, u = np.linalg.eigh(1j * s)
    return np.real((u * np.exp(-1j * mu)[..., None, :]) @ np.conj(np.swapaxes(u, -1, -2)))


def _compose(lam: np.ndarray, a: np.ndarray, o: np.ndarray) -> np.ndarray:
    """lambda_k O_k diag(a_k) O_k^T, (K, D, D)."""
    scaled = o * (lam[:, None] * a)[:, None, :]
    return _sym(scaled @ np.swapaxes(o, 1, 2))


def _diagonal_stack(diag: np.ndarray) -> np.ndarray:
    """Diagonal matrices (K, D, D) with the rows of ``diag`` (K, D) on their diagonals."""
    k, d = diag.shape
    out = np.zeros((k, d, d))
    out.reshape(k, d * d)[:, ::d + 1] = diag
    return out


def _det_root(s: np.ndarray) -> np.ndarray:
    """|S_k|^(1/D) of a (K, D, D) stack (0 for a singular matrix, NaN for an indefinite one)."""
    sign, logdet = np.linalg.slogdet(s)
    with np.errstate(invalid="ignore"):
        return np.where(sign > 0, np.exp(logdet / s.shape[-1]), np.where(sign == 0, 0.0, np.nan))


def _objective_terms(s: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """``log|Sigma_k| + tr(Sigma_k^{-1} S_k)`` per matrix of the stacks (raises
    ``LinAlgError`` when a covariance is not positive definite)."""
    chol = np.linalg.cholesky(cov)
    logdet = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
    return logdet + np.einsum("kii->k", np.linalg.solve(cov, s))


def _objective(w: np.ndarray, s: np.ndarray, cov: np.ndarray) -> float:
    """sum_k w_k (log|Sigma_k| + tr(Sigma_k^{-1} S_k)): the M-step minimises it (inf when a
    covariance is not positive definite)."""
    try:
        return float(np.sum(w * _objective_terms(s, cov)))
    except np.linalg.LinAlgError:
        return math.inf


def _better_than(w: np.ndarray, s: np.ndarray, first: np.ndarray, second: np.ndarray) -> bool:
    """Whether ``first`` has a lower :func:`_objective` than ``second`` (both (K, D, D)): the
    two stacks factorised in one call (the guard of every iterative M-step)."""
    kernels = _compiled.kernels()
    if kernels is not None:  # the same sums in one compiled call (see _mclust_loops)
        values = np.empty(2)
        kernels["mclust_objective_pair"](np.ascontiguousarray(w, dtype=np.float64),
                                         np.ascontiguousarray(s, dtype=np.float64),
                                         np.ascontiguousarray(first, dtype=np.float64),
                                         np.ascontiguousarray(second, dtype=np.float64), values)
        if not np.isnan(values).any():
            return bool(values[0] < values[1])
    try:
        terms = _objective_terms(np.concatenate([s, s]), np.concatenate([first, second]))
    except np.linalg.LinAlgError:  # one of them is not positive definite: each on its own
        return _objective(w, s, first) < _objective(w, s, second)
    values = terms.reshape(2, -1) @ w
    return bool(values[0] < values[1])


def _skew_to_free(s: np.ndarray) -> np.ndarray:
    rows, cols = triu_pairs(s.shape[-1], 1)
    return s[..., rows, cols]


def _skew_from_free(vec: np.ndarray, d: int) -> np.ndarray:
    rows, cols = triu_pairs(d, 1)
    s = np.zeros(vec.shape[:-1] + (d, d))
    s[..., rows, cols] = vec
    s[..., cols, rows] = -vec
    return s


def _unit_det_to_free(c: np.ndarray) -> np.ndarray:
    """Free coordinates of a det-one SPD matrix (..., D, D): log-diagonal of its Cholesky factor
    less the last entry, then the strict lower triangle."""
    d = c.shape[-1]
    chol = np.linalg.cholesky(c / _det_root(c.reshape((-1, d, d))).reshape(c.shape[:-2] + (1, 1)))
    rows, cols = np.tril_indices(d, -1)
    log_diag = np.log(np.diagonal(chol, axis1=-2, axis2=-1))
    return np.concatenate([log_diag[..., :-1], chol[..., rows, cols]], axis=-1)


def _unit_det_from_free(vec: np.ndarray, d: int) -> np.ndarray:
    head = vec[..., :d - 1]
    log_diag = np.concatenate([head, -head.sum(axis=-1, keepdims=True)], axis=-1)
    chol = np.zeros(vec.shape[:-1] + (d, d))
    rows, cols = np.tril_indices(d, -1)
    chol[..., rows, cols] = vec[..., d - 1:]
    idx = np.arange(d)
    chol[..., idx, idx] = np.exp(log_diag)
    return _sym(chol @ np.swapaxes(chol, -1, -2))


def _log_shape_free(a: np.ndarray) -> np.ndarray:
    return np.log(a[..., :-1])


def _shape_from_free(vec: np.ndarray) -> np.ndarray:
    return np.exp(np.concatenate([vec, -vec.sum(axis=-1, keepdims=True)], axis=-1))


# =========================================================================== the iterative M-steps
def _solve_common_shape(w: np.ndarray, b: np.ndarray, v0: np.ndarray | None = None):
    """Minimise ``sum_k w_k (D log lambda_k + sum_j b_kj / (lambda_k a_j))`` over volumes
    ``lambda`` (K,) and a common shape ``a`` (D,) with ``prod a = 1`` (VEI on the diagonals,
    VEV on the sorted eigenvalues).

    Profiled over the volumes (``lambda_k = sum_j b_kj / a_j / D``) the objective in
    ``v = log a`` is ``D sum_k w_k log(sum_j b_kj exp(-v_j)) + n sum_j v_j`` (up to a constant),
    convex and invariant to ``v + c``: Newton's method with a backtracking line search gives
    its minimiser. Returns ``(lambda, a)``."""
    k, d = b.shape
    n = float(w.sum())
    with np.errstate(divide="ignore"):
        log_b = np.log(b)

    def profile(v):
        z = log_b - v
        top = z.max(axis=1, keepdims=True)
        e = np.exp(z - top)
        tot = e.sum(axis=1, keepdims=True)
        value = d * float(np.sum(w * (np.log(tot[:, 0]) + top[:, 0]))) + n * float(v.sum())
        return value, e / tot

    v = np.zeros(d) if v0 is None else np.array(v0, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        v = np.zeros(d)
    v -= v.mean()
    kernels = _compiled.kernels()
    if kernels is not None:  # the same steps in one compiled call (see _mclust_loops)
        lam, a = np.empty(k), np.empty(d)
        if kernels["mclust_common_shape"](np.ascontiguousarray(w, dtype=np.float64),
                                          np.ascontiguousarray(b, dtype=np.float64), v.copy(), lam, a) == 0:
            return lam, a
    value, p = profile(v)
    ones = np.full((d, d), 1.0 / d)
    for _ in range(100):
        grad = n - d * (w @ p)
        hess = d * (np.diag(w @ p) - np.einsum("k,ki,kj->ij", w, p, p))
        try:
            step = -np.linalg.solve(hess + n * ones, grad)
        except np.linalg.LinAlgError:
            step = -np.linalg.lstsq(hess + n * ones, grad, rcond=None)[0]
        step -= step.mean()
        decrement = -float(grad @ step)
        scale = abs(value) + n
        if not decrement > 1e-28 * scale or not np.all(np.isfinite(step)):
            break
        if decrement < 1e-12 * scale:  # the quadratic regime: the full step, past rounding in the value
            v = v + step
            value, p = profile(v)
            continue
        t = 1.0
        while t > 1e-10:
            cand = v + t * step
            cand_value, cand_p = profile(cand)
            if cand_value <= value - 0.25 * t * decrement:
                break
            t *= 0.5
        else:
            break
        v, value, p = cand, cand_value, cand_p
    v -= v.mean()
    a = np.exp(v)
    lam = (b / a).sum(axis=1) / d
    return lam, a / _geomean(a)


def _solve_proportional(w: np.ndarray, s: np.ndarray, c0: np.ndarray, max_iter: int = M_STEP_MAX_ITER):
    """Minimise ``sum_k w_k (log|lambda_k C| + tr(C^{-1} S_k) / lambda_k)`` with ``|C| = 1``
    (VEE; Celeux & Govaert 1995): alternate the exact volumes given ``C`` and the exact ``C``
    given the volumes, from ``c0``. Returns ``(lambda, C)``."""
    d = s.shape[-1]
    kernels = _compiled.kernels()
    if kernels is not None:  # the same steps in one compiled call (see _mclust_loops)
        lam, c = np.empty(len(w)), np.empty((d, d))
        if kernels["mclust_proportional"](np.ascontiguousarray(w, dtype=np.float64),
                                          np.ascontiguousarray(s, dtype=np.float64),
                                          np.array(c0, dtype=np.float64), int(max_iter), PARAM_RTOL, lam, c) == 0:
            return lam, c
    c = c0 / _det_root(c0[None])[0]
    lam_old = None
    for _ in range(max_iter):
        lam = np.einsum("kij,ji->k", s, np.linalg.inv(c)) / d
        m = np.einsum("k,kij->ij", w / lam, s)
        c = _sym(m / _det_root(m[None])[0])
        if not np.all(np.isfinite(c)):
            break
        if lam_old is not None and np.max(np.abs(lam - lam_old) / lam) < PARAM_RTOL:
            break
        lam_old = lam
    inv = np.linalg.inv(c)
    lam = np.einsum("kij,ji->k", s, inv) / d
    return lam, c


def _pair_profile(w, a, r2, psi, scale, d, u, order):
    """The objective of one pair of columns, profiled over the shapes, at twice its rotation
    angle ``u``, and its first two derivatives in ``u`` when ``order`` is 2. Component k's two
    variances are ``a_k +- r_k cos(u - psi_k)``; their product is
    ``q_k = a_k^2 - r_k^2 cos^2(u - psi_k)`` (``r2`` = r^2). VVE (``scale`` None):
    ``sum_k w_k log q_k``; EVE: ``n d log sum_k w_k scale_k q_k^(1/d)`` (``scale_k`` the other
    columns' part of the geometric mean)."""
    x = u - psi
    cos_x = np.cos(x)
    q = a * a - r2 * cos_x * cos_x
    if not q.min() > 0:
        return math.inf, 0.0, 0.0
    if scale is None:
        value = float(w @ np.log(q))
        if order == 0:
            return value, 0.0, 0.0
        ratio = r2 * np.sin(2.0 * x) / q
        return value, float(w @ ratio), float(w @ (2.0 * r2 * np.cos(2.0 * x) / q - ratio * ratio))
    n = float(w.sum())
    g = w * scale * q ** (1.0 / d)
    total = float(g.sum())
    value = n * d * math.log(total)
    if order == 0:
        return value, 0.0, 0.0
    ratio = r2 * np.sin(2.0 * x) / q
    first = float(g @ ratio) / (d * total)
    second = float(g @ (2.0 * r2 * np.cos(2.0 * x) / q / d + (1.0 / d) * (1.0 / d - 1.0) * ratio * ratio)) / total
    return value, n * d * first, n * d * (second - first * first)


def _rotate_pair(t: np.ndarray, i: int, j: int, phi: float) -> np.ndarray:
    """``R^T T_k R`` for the rotation ``R`` of columns i, j by ``phi`` (a copy)."""
    cs, sn = math.cos(phi), math.sin(phi)
    rot = np.array([[cs, -sn], [sn, cs]])
    idx = [i, j]
    t = t.copy()
    t[:, :, idx] = t[:, :, idx] @ rot
    t[:, idx, :] = np.einsum("ba,kbc->kac", rot, t[:, idx, :])
    return t


def _solve_common_orientation(w: np.ndarray, s: np.ndarray, o0: np.ndarray, equal_volume: bool,
                              max_sweeps: int = M_STEP_MAX_ITER):
    """Minimise ``sum_k w_k (log|Sigma_k| + tr(Sigma_k^{-1} S_k))`` over ``Sigma_k = O L_k O^T``
    with one orientation ``O`` and diagonal ``L_k`` (VVE; EVE with ``|L_k|`` equal) from
    ``o0``: Jacobi sweeps over the pairs of columns of ``O`` (Flury & Gautschi 1986), each pair
    rotated to the minimum of the objective profiled over ``L`` (a function of one angle) by
    Newton's method, safeguarded by the exact rotation given ``L`` (closed form; with the exact
    ``L`` given ``O`` it never raises the objective); near the minimum, Newton's method on the
    whole orientation (``O exp(A)``, ``A`` skew-symmetric; the Hessian from differences of the
    exact gradient) with a line search. Every accepted step lowers the objective. Returns
    ``(O, L)``."""
    k, d = s.shape[:2]
    n = float(w.sum())
    o = np.array(o0, dtype=np.float64)
    t = _sym(np.swapaxes(o, 0, 1)[None] @ s @ o[None])  # O^T S_k O

    def shapes(diag):
        if not equal_volume:
            return diag
        g = np.exp(np.log(diag).mean(axis=1))
        return diag * ((w @ g) / n / g)[:, None]

    pairs = [(i, j) for i in range(d) for j in range(i + 1, d)]
    rows, cols = triu_pairs(d, 1)

    def sweep(o, t) -> tuple[float, bool]:
        """One Jacobi sweep (in place); returns the largest angle turned and whether every
        pair's one-angle search ended at its minimum (not at its iteration limit)."""
        largest, settled = 0.0, True
        for i, j in pairs:
            a = 0.5 * (t[:, i, i] + t[:, j, j])
            b = 0.5 * (t[:, i, i] - t[:, j, j])
            c = t[:, i, j]
            r, psi = np.hypot(b, c), np.arctan2(c, b)
            r2 = r * r
            scale = None
            if equal_volume:
                logs = np.log(np.diagonal(t, axis1=1, axis2=2))
                scale = np.exp((logs.sum(axis=1) - logs[:, i] - logs[:, j]) / d)
            u = 0.0
            pair_value, first, second = _pair_profile(w, a, r2, psi, scale, d, u, 2)
            for _ in range(100):
                if first == 0.0 or not math.isfinite(first):
                    break
                steps = []
                if second > 0:
                    newton_step = -first / second
                    if abs(newton_step) < 1e-6:  # the quadratic regime: below rounding in the value
                        u += newton_step
                        if abs(newton_step) < PARAM_RTOL:
                            break
                        pair_value, first, second = _pair_profile(w, a, r2, psi, scale, d, u, 2)
                        continue
                    steps.append(max(-0.5 * math.pi, min(0.5 * math.pi, newton_step)))
                # the exact rotation given the shapes at u (never raises the objective)
                x = u - psi
                alpha, gamma = a + r * np.cos(x), a - r * np.cos(x)
                beta = -r * np.sin(x)
                diag = np.diagonal(t, axis1=1, axis2=2).copy()
                diag[:, i], diag[:, j] = alpha, gamma
                lmat = shapes(diag)
                dp = w * (1.0 / lmat[:, i] - 1.0 / lmat[:, j])
                steps.append(math.atan2(-float(dp @ beta), -0.5 * float(dp @ (alpha - gamma))))
                for step in steps:
                    cand = _pair_profile(w, a, r2, psi, scale, d, u + step, 2)
                    if cand[0] < pair_value:
                        u = u + step
                        pair_value, first, second = cand
                        break
                else:
                    break
                if abs(step) < PARAM_RTOL:
                    break
            else:
                settled = False
            phi = 0.5 * math.remainder(u, 2.0 * math.pi)
            if phi == 0.0:
                continue
            cs, sn = math.cos(phi), math.sin(phi)
            rot = np.array([[cs, -sn], [sn, cs]])  # new columns: c o_i + s o_j, -s o_i + c o_j
            idx = [i, j]
            o[:, idx] = o[:, idx] @ rot
            t[:, :, idx] = t[:, :, idx] @ rot
            t[:, idx, :] = np.einsum("ba,kbc->kac", rot, t[:, idx, :])
            largest = max(largest, abs(phi))
        return largest, settled

    def value(t):
        diag = np.diagonal(t, axis1=1, axis2=2)
        lmat = shapes(diag)
        return float(np.sum(w[:, None] * (np.log(lmat) + diag / lmat)))

    def gradient(t):
        """d/dtheta of the profiled objective at O exp(A(theta)), theta = 0 (one entry per
        pair i < j, A[j, i] = theta_ij = -A[i, j])."""
        p = 1.0 / shapes(np.diagonal(t, axis1=1, axis2=2))
        g = 2.0 * np.einsum("k,kij,kij->ij", w, t, p[:, :, None] - p[:, None, :])
        return g[rows, cols]

    def newton(o, t):
        """Newton's method on the whole orientation; ``(o, t, converged)``."""
        current = value(t)
        h = 1e-5
        for _ in range(50):
            grad = gradient(t)
            hess = np.empty((len(pairs), len(pairs)))
            for m, (i, j) in enumerate(pairs):
                hess[:, m] = (gradient(_rotate_pair(t, i, j, h)) - gradient(_rotate_pair(t, i, j, -h))) / (2 * h)
            hess = 0.5 * (hess + hess.T)
            try:
                chol = np.linalg.cholesky(hess)
            except np.linalg.LinAlgError:
                return o, t, False  # not (yet) in a convex neighbourhood
            step = -np.linalg.solve(chol.T, np.linalg.solve(chol, grad))
            if not np.all(np.isfinite(step)):
                return o, t, False
            size = float(np.max(np.abs(step)))
            scale = 1.0
            while True:
                skew = np.zeros((d, d))
                skew[cols, rows] = scale * step
                skew[rows, cols] = -scale * step
                rot = _rotation_exp(skew)
                new_t = _sym(rot.T[None] @ t @ rot[None])
                new_value = value(new_t)
                if new_value < current or size * scale < 1e-6:  # below 1e-6: the quadratic regime
                    break
                scale *= 0.5
                if scale < 1e-6:
                    return o, t, False
            o, t, current = o @ rot, new_t, min(current, new_value)
            if size * scale < PARAM_RTOL:
                return o, t, True
        return o, t, False

    kernels = _compiled.kernels()
    if kernels is not None:  # each sweep in one compiled call (see _mclust_loops)
        compiled_sweep, outcome = kernels["mclust_orientation_sweep"], np.empty(2)
        w_c = np.ascontiguousarray(w, dtype=np.float64)

        def sweep(o, t) -> tuple[float, bool]:  # noqa: F811  (the compiled twin of the one above)
            compiled_sweep(w_c, o, t, equal_volume, PARAM_RTOL, outcome)
            return float(outcome[0]), bool(outcome[1])

    max_sweeps = min(max_sweeps, max(20, ORIENTATION_MAX_ROTATIONS // max(len(pairs), 1)))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        next_newton = 1e-1
        for _ in range(max_sweeps):
            largest, settled = sweep(o, t)
            # one pair of columns (D = 2): its settled search is the minimum over the whole
            # orientation, so a second sweep would only confirm it
            if largest < PARAM_RTOL or (settled and len(pairs) == 1):
                break
            if 2 < d and len(pairs) <= NEWTON_MAX_PAIRS and largest < next_newton:
                o, t, converged = newton(o, t)
                if converged:
                    break
                next_newton = largest / 10.0
        diag = np.diagonal(t, axis1=1, axis2=2).copy()
        return o, shapes(diag)


# =========================================================================== the constraint
class MclustCovariance(SymmetricPositiveDefinite):
    """The covariances (K, D, D) of one mclust form: symmetric positive definite and of the
    form; the free coordinates are the form's own (see the module docstring), so a move of a
    free coordinate (SQUAREM, the model checks) stays in the form."""

    def __init__(self, structure: "MclustStructure"):
        self.structure = structure

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.structure.name!r})"

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other.structure.name == self.structure.name

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.structure.name))

    def to_free(self, value: Any) -> np.ndarray:
        return self.structure.to_free(np.asarray(value, dtype=np.float64))

    def from_free(self, vec: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        return self.structure.from_free(np.asarray(vec, dtype=np.float64), int(shape[0]), int(shape[-1]))

    def n_free(self, shape: tuple[int, ...]) -> int:
        return self.structure.n_parameters(int(shape[0]), int(shape[-1]))

    def is_valid(self, value: Any) -> bool:
        value = np.asarray(value)
        if value.ndim != 3 or value.shape[1] != value.shape[2] or not is_symmetric_positive_definite(value):
            return False
        return self.structure.in_form(value)

    def jacobian(self, shape: tuple[int, ...]) -> np.ndarray:
        if self.structure.linear_chart:
            return super(SymmetricPositiveDefinite, self).jacobian(shape)
        raise NotImplementedError(
            f"covariance_type={self.structure.name!r} has a curved parameter space (volume, shape and "
            f"orientation): standard errors by the delta method are not available for it")


# =========================================================================== the structures
class MclustStructure(Full):
    """One of mclust's forms, stored as full (K, D, D) matrices (see the module docstring).

    ``volume``, ``shape_kind`` and ``orientation`` are the three letters of ``name``."""

    volume = "V"
    shape_kind = "V"
    orientation = "V"
    #: the free coordinates are linear in the matrices (EII, EEI)
    linear_chart = False
    #: the M-step keeps an empty component in the form (its own parts from ``current``), so the
    #: model must not put the old covariance back
    restore_empty = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if len(cls.__name__) == 3 and not cls.__name__.startswith("_"):  # a form: its three letters
            cls.name = cls.__name__
            cls.volume, cls.shape_kind, cls.orientation = cls.__name__[0], cls.__name__[1], cls.__name__[2]

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __reduce__(self):
        return (type(self), ())

    # ------------------------------------------------------------------ parameters
    def constraint(self) -> Constraint:
        return MclustCovariance(self)

    def n_parameters(self, k: int, d: int) -> int:
        volume = 1 if self.volume == "E" else k
        shape = {"I": 0, "E": d - 1, "V": k * (d - 1)}[self.shape_kind]
        orientation = {"I": 0, "E": d * (d - 1) // 2, "V": k * d * (d - 1) // 2}[self.orientation]
        return volume + shape + orientation

    def from_covariance(self, cov: np.ndarray, k: int, d: int) -> np.ndarray:
        return self.project(np.repeat(_sym(np.asarray(cov, dtype=np.float64))[None], k, axis=0))

    def covariances_from_init(self, arr: np.ndarray, name: str) -> np.ndarray:
        arr = super().covariances_from_init(arr, name)  # symmetric positive definite, precisions inverted
        arr = np.asarray(arr, dtype=np.float64)
        if not self.in_form(arr):
            raise ValueError(f"{name} must be of the form {self.name} ({self.describe()}); the matrices given "
                             f"are not")
        return self.project(arr)

    def describe(self) -> str:
        words = {"E": "equal", "V": "variable", "I": "identity"}
        return (f"{words[self.volume]} volume, {words[self.shape_kind]} shape, "
                f"{words[self.orientation]} orientation")

    # ------------------------------------------------------------------ the form
    def parts(self, cov: np.ndarray) -> tuple[Any, Any, Any]:
        """``(lambda (K,), A (K, D), O (K, D, D))`` of covariances of the form (the E parts
        averaged, so ``compose`` of them is the projection onto the form)."""
        cov = _sym(np.asarray(cov, dtype=np.float64))
        k, d = cov.shape[:2]
        if self.orientation == "I":
            b = np.diagonal(cov, axis1=1, axis2=2).copy()
            o = np.broadcast_to(np.eye(d), (k, d, d)).copy()
        elif self.orientation == "V":
            b, o = _eigh_desc(cov)
            o = _orient(o)
        else:
            o = np.broadcast_to(_common_orientation(cov), (k, d, d)).copy()
            b = np.einsum("kji,kjl,kli->ki", o, cov, o)
        if self.shape_kind == "I":  # the nearest spherical matrix in likelihood: tr / D
            lam, a = b.mean(axis=1), np.ones_like(b)
        else:
            lam = _geomean(b)
            a = b / lam[:, None]
        if self.volume == "E":
            lam = np.full(k, _geomean(lam, axis=0))
        if self.shape_kind == "E":
            common = _geomean(a.T)
            a = np.broadcast_to(common / _geomean(common), (k, d)).copy()
        return lam, a, o

    def project(self, cov: np.ndarray) -> np.ndarray:
        """The covariances of the form nearest ``cov`` in this chart (``cov`` itself, to
        rounding, when it is of the form)."""
        return _compose(*self.parts(cov))

    def in_form(self, cov: np.ndarray) -> bool:
        """Whether symmetric positive definite ``cov`` (K, D, D) is of the form (to rounding)."""
        dtype = np.asarray(cov).dtype
        rtol = FORM_RTOL.get(dtype, FORM_RTOL_LOW_PRECISION)
        cov = np.asarray(cov, dtype=np.float64)
        with np.errstate(all="ignore"):
            proj = self.project(cov)
        scale = np.abs(cov).max(axis=(1, 2))
        err = np.abs(proj - cov).max(axis=(1, 2))
        return bool(np.all(np.isfinite(proj)) and np.all(err <= rtol * scale))

    # ------------------------------------------------------------------ free coordinates
    def to_free(self, cov: np.ndarray) -> np.ndarray:
        lam, a, o = self.parts(cov)
        out = [np.log(lam[:1] if self.volume == "E" else lam)]
        if self.shape_kind == "E":
            out.append(_log_shape_free(a[0]))
        elif self.shape_kind == "V":
            out.append(_log_shape_free(a).ravel())
        if self.orientation == "E":
            out.append(_skew_to_free(_rotation_log(o[0])))
        elif self.orientation == "V":
            out.append(np.concatenate([_skew_to_free(_rotation_log(m)) for m in o]))
        return np.concatenate(out)

    def from_free(self, vec: np.ndarray, k: int, d: int) -> np.ndarray:
        pos = 0

        def take(size):
            nonlocal pos
            part = vec[pos:pos + size]
            pos += size
            return part

        lam = np.exp(take(1 if self.volume == "E" else k))
        lam = np.broadcast_to(lam, (k,)).copy()
        if self.shape_kind == "I":
            a = np.ones((k, d))
        elif self.shape_kind == "E":
            a = np.broadcast_to(_shape_from_free(take(d - 1)), (k, d)).copy()
        else:
            a = _shape_from_free(take(k * (d - 1)).reshape(k, d - 1))
        m = d * (d - 1) // 2
        if self.orientation == "I":
            o = np.broadcast_to(np.eye(d), (k, d, d)).copy()
        elif self.orientation == "E":
            o = np.broadcast_to(_rotation_exp(_skew_from_free(take(m), d)), (k, d, d)).copy()
        else:
            o = _rotation_exp(_skew_from_free(take(k * m).reshape(k, m), d))
        return _compose(lam, a, o)

    # ------------------------------------------------------------------ M-step
    def m_step(self, n: Any, nk: np.ndarray, s1: np.ndarray, s2: np.ndarray, about: np.ndarray, reg_covar: float,
               d: int, slack: Any = None, current: np.ndarray | None = None) -> np.ndarray:
        """The covariances of the form maximising Q (see the module docstring); ``current``
        (K, D, D), the covariances the statistics were computed at, warm-starts the
        iterative M-steps and keeps the result at least as good as them."""
        s = super().m_step(n, nk, s1, s2, about, reg_covar, d)  # S_k + reg_covar I
        w = np.asarray(nk, dtype=np.float64)
        n = np.asarray(n, dtype=np.float64)
        cur = None
        if current is not None:
            cur = np.asarray(current, dtype=np.float64)
            if cur.shape != s.shape or not np.isfinite(cur).all():
                cur = None
        floor = 1e-12 * max(float(n.sum()), 1e-300)
        empty = np.flatnonzero(n <= floor) if n.size and float(n.min()) <= floor else np.zeros(0, dtype=np.intp)
        if len(empty):  # no data: its own parts stay (current) or follow the pooled scatter
            if len(empty) == len(n):  # no data at all: nothing to fit
                return self.project(s) if cur is None else cur
            pooled = np.einsum("k,kij->ij", w, s) / w.sum()
            s[empty] = pooled if cur is None else cur[empty]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            cov = self._fit(w, s, cur)
        if cur is not None and not self._closed_form:
            # generalised EM: never below the current parameters (rounding in an iterative solve)
            if _better_than(w, s, cur, cov):
                cov = cur.copy()
        return cov

    _closed_form = True

    def _fit(self, w, s, current):  # pragma: no cover - every form overrides it
        raise NotImplementedError


def _common_orientation(cov: np.ndarray) -> np.ndarray:
    """The common eigenvectors of covariances that share them: those of a combination with
    distinct weights (a tie there that the matrices do not share is then a coincidence)."""
    k, d = cov.shape[:2]
    scale = _det_root(cov)
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, np.abs(np.einsum("kii->k", cov)) / d + 1e-300)
    weights = 1.0 / (1.0 + math.sqrt(2.0) * np.arange(k))
    _, vecs = _eigh_desc(np.einsum("k,kij->ij", weights / scale, cov)[None])
    return _orient(vecs[0])


class _LinearChart(MclustStructure):
    linear_chart = True


class EII(_LinearChart):
    """Equal spherical covariances, ``lambda I`` (free: lambda)."""

    def to_free(self, cov: np.ndarray) -> np.ndarray:
        d = cov.shape[-1]
        return np.array([float(np.mean(np.einsum("kii->k", cov))) / d])

    def from_free(self, vec: np.ndarray, k: int, d: int) -> np.ndarray:
        return np.broadcast_to(vec[0] * np.eye(d), (k, d, d)).copy()

    def _fit(self, w, s, current):
        k, d = s.shape[0], s.shape[-1]
        lam = float(w @ np.trace(s, axis1=1, axis2=2)) / (float(w.sum()) * d)
        return _diagonal_stack(np.full((k, d), lam))


class EEI(_LinearChart):
    """Equal diagonal covariances, ``lambda A`` (free: the common diagonal)."""

    def to_free(self, cov: np.ndarray) -> np.ndarray:
        return np.diagonal(cov, axis1=1, axis2=2).mean(axis=0)

    def from_free(self, vec: np.ndarray, k: int, d: int) -> np.ndarray:
        return np.broadcast_to(np.diag(vec), (k, d, d)).copy()

    def _fit(self, w, s, current):
        diag = (w @ np.diagonal(s, axis1=1, axis2=2)) / w.sum()
        return _diagonal_stack(np.broadcast_to(diag, (s.shape[0], s.shape[-1])))


class EVI(MclustStructure):
    """Diagonal covariances of equal volume, ``lambda A_k`` (closed form)."""

    def _fit(self, w, s, current):
        b = np.diagonal(s, axis1=1, axis2=2)
        g = _geomean(b)
        lam = float(np.sum(w * g)) / float(w.sum())
        return _diagonal_stack(b * (lam / g)[:, None])


class VEI(MclustStructure):
    """Diagonal covariances of one shape, ``lambda_k A`` (Newton on the convex profile)."""

    _closed_form = False

    def _fit(self, w, s, current):
        b = np.diagonal(s, axis1=1, axis2=2)
        # the common shape up to scale (the solve centres log a): any component's diagonal
        v0 = None if current is None else np.log(np.diagonal(current[0]))
        lam, a = _solve_common_shape(w, b, v0)
        return _diagonal_stack(lam[:, None] * a)


class EEV(MclustStructure):
    """Equal volume and shape, orientations free, ``lambda D_k A D_k^T`` (closed form)."""

    def _fit(self, w, s, current):
        vals, vecs = _eigh_desc(s)
        common = (w @ vals) / w.sum()
        return _compose(np.ones(len(w)), np.broadcast_to(common, vals.shape), vecs)


class VEV(MclustStructure):
    """One shape, volumes and orientations free, ``lambda_k D_k A D_k^T`` (Newton on the
    convex profile over the eigenvalues of each S_k)."""

    _closed_form = False

    def _fit(self, w, s, current):
        vals, vecs = _eigh_desc(s)
        # the common shape up to scale: any component's eigenvalues, in decreasing order
        v0 = None if current is None else np.log(np.linalg.eigvalsh(current[0])[::-1])
        lam, a = _solve_common_shape(w, vals, v0)
        return _compose(lam, np.broadcast_to(a, vals.shape), vecs)


class EVV(MclustStructure):
    """Equal volumes, ``lambda C_k`` with ``|C_k| = 1`` (closed form)."""

    def parts(self, cov: np.ndarray) -> tuple[Any, Any, Any]:
        raise NotImplementedError  # EVV uses its own chart (below)

    def project(self, cov: np.ndarray) -> np.ndarray:
        cov = _sym(np.asarray(cov, dtype=np.float64))
        g = _det_root(cov)
        return cov * (_geomean(g, axis=0) / g)[:, None, None]

    def to_free(self, cov: np.ndarray) -> np.ndarray:
        g = _det_root(cov)
        return np.concatenate([[math.log(_geomean(g, axis=0))], _unit_det_to_free(cov).ravel()])

    def from_free(self, vec: np.ndarray, k: int, d: int) -> np.ndarray:
        c = _unit_det_from_free(vec[1:].reshape(k, -1), d)
        return math.exp(vec[0]) * c

    def _fit(self, w, s, current):
        g = _det_root(s)
        lam = float(np.sum(w * g)) / float(w.sum())
        return _sym(s * (lam / g)[:, None, None])


class VEE(MclustStructure):
    """Proportional covariances, ``lambda_k C`` with ``|C| = 1`` (Celeux & Govaert's
    alternation)."""

    _closed_form = False

    def parts(self, cov: np.ndarray) -> tuple[Any, Any, Any]:
        raise NotImplementedError  # VEE uses its own chart (below)

    def _split(self, cov):
        cov = _sym(np.asarray(cov, dtype=np.float64))
        g = _det_root(cov)
        c = np.mean(cov / g[:, None, None], axis=0)
        return g, c / _det_root(c[None])[0]

    def project(self, cov: np.ndarray) -> np.ndarray:
        g, c = self._split(cov)
        return g[:, None, None] * c[None]

    def to_free(self, cov: np.ndarray) -> np.ndarray:
        g, c = self._split(cov)
        return np.concatenate([np.log(g), _unit_det_to_free(c)])

    def from_free(self, vec: np.ndarray, k: int, d: int) -> np.ndarray:
        return np.exp(vec[:k])[:, None, None] * _unit_det_from_free(vec[k:], d)[None]

    def _fit(self, w, s, current):
        # C up to scale (the solve normalises it): any component's covariance
        c0 = np.einsum("k,kij->ij", w, s) / w.sum() if current is None else current[0]
        lam, c = _solve_proportional(w, s, c0)
        return _sym(lam[:, None, None] * c[None])


class _CommonOrientation(MclustStructure):
    _closed_form = False

    def _fit(self, w, s, current):
        equal = self.volume == "E"
        kernels = _compiled.kernels()
        if current is not None and kernels is not None and s.shape[-1] == 2:
            # two features (one pair of columns): the whole solve in compiled loops (see _mclust_loops)
            o = np.empty((2, 2))
            if kernels["mclust_common_orientation"](np.ascontiguousarray(current), o) == 0:
                cov, outcome = np.empty(s.shape), np.empty(2)
                max_sweeps = min(M_STEP_MAX_ITER, max(20, ORIENTATION_MAX_ROTATIONS))
                kernels["mclust_orientation_fit"](np.ascontiguousarray(w, dtype=np.float64),
                                                  np.ascontiguousarray(s, dtype=np.float64), o, equal, PARAM_RTOL,
                                                  max_sweeps, outcome, cov)
                return cov
        if current is not None:
            starts = [_common_orientation(current)]
        else:  # deterministic starts: the pooled scatter's eigenvectors and each component's
            pooled = np.einsum("k,kij->ij", w, s) / w.sum()
            starts = [_eigh_desc(pooled[None])[1][0]] + list(_eigh_desc(s)[1])
        if len(starts) > 1:  # a few sweeps from each, then on from the best
            screened = []
            for o0 in starts:
                o, lmat = _solve_common_orientation(w, s, o0, equal, max_sweeps=3)
                cov = _compose(np.ones(len(w)), lmat, np.broadcast_to(o, s.shape))
                screened.append((_objective(w, s, cov), o))
            starts = [min(screened, key=lambda item: item[0])[1]]
        o, lmat = _solve_common_orientation(w, s, starts[0], equal)
        return _compose(np.ones(len(w)), lmat, np.broadcast_to(o, s.shape))


class EVE(_CommonOrientation):
    """Equal volume, one orientation, shapes free, ``lambda D A_k D^T`` (block coordinate
    ascent with Jacobi rotations)."""


class VVE(_CommonOrientation):
    """One orientation, volumes and shapes free, ``lambda_k D A_k D^T`` (common principal
    components; block coordinate ascent with Jacobi rotations)."""


#: mclust name -> structure, for the ten forms that covariance.py does not implement
MCLUST_STRUCTURES: dict[str, CovarianceStructure] = {
    s.name: s for s in (EII(), EEI(), VEI(), EVI(), EEV(), VEV(), EVV(), VEE(), EVE(), VVE())
}
