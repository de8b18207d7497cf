"""Numerical kernels of :class:`emkit.GaussianMixture` (E-step, statistics, M-step, missing data).

Design (why it is fast and memory-bounded):

* Everything per row is computed on one chunk of rows at a time (the engine's
  ``statistics_pass`` cuts the data with the model's ``chunk_rows``); the E-step returns the
  M-step's sufficient statistics directly, so responsibilities never exist for all rows.
* Data are centred by a fixed vector ``center`` (the data mean, chosen once per fit) before
  any quadratic statistic is formed, so ``sum r x x^T / n - m m^T`` loses no precision to
  cancellation when the data sit far from the origin.
* ``full``: all components' Mahalanobis terms come from ONE matrix product
  ``Xc @ [L_1 ... L_K]`` (L_k the precision Cholesky factor, as scikit-learn), and the M-step
  scatter ``sum_i r_ik x_i x_i^T`` of all components from ONE product ``R^T @ Z`` with ``Z`` the
  per-row outer products' upper triangles (D(D+1)/2 columns).
  ``diag`` / ``spherical``: two (rows, D) x (D, K) products on the centred data and its squares.
  ``tied``: one whitening product, then a (rows, K, D) chunk-local difference.
* Statistics are accumulated in float64 whatever the data type; per-chunk products run in the
  data's own dtype (float32 stays float32 and takes the fast single-precision BLAS path).
* Kernels use only Python-array-API functions (``xp.matmul``, ``xp.take``, ``xp.exp``...) so a
  torch tensor (CPU or CUDA) or a CuPy array runs through the same code; small per-parameter
  precomputations (Cholesky factors, K x D x D) are done once per parameter value in NumPy
  float64 and cached.
* What differs between covariance structures (the stacked-rows layout, the precomputation,
  the whitened form, the statistics, the M-step...) is a
  :class:`~emkit.models.covariance.CovarianceStructure`; the functions here take the structure
  object and call it, and never look at the structure's name.
* Scratch memory (reused chunk temporaries and the per-parameter precomputation) belongs to
  one :class:`Scratch` per model instance, one set per thread: nothing here is module state.

Statistics format (additive over rows; the M-step depends on ratios only):
``{"n": (K,), "s1": (K, D), "s2": ..., "ref": (K, D)}`` with ``s1 = sum_i r_ik (x_i - a_k)``
and ``s2`` the second moments about a reference point ``a_k`` in the structure's layout (see
:mod:`emkit.models.covariance`), ``ref = sum_i r_ik a_k`` (so ``a_k = ref_k / n_k``; additive
because every chunk and Dask block of a pass uses the same reference points). ``a_k`` is the
common ``center`` for a component whose statistics about it lose nothing to cancellation
(``eps * |m_k - center|^2 <= far_tolerance(eps) * smallest variance of k``): one product gives
all those components' statistics. Any other ("far", :func:`far_components`) component takes its
own product on ``x - a_k`` with ``a_k`` its CURRENT mean rounded to a power-of-two grid below
its standard deviation (:func:`reference_points`): the new mean is close to ``a_k``, so
``s2 / n - (s1 / n)(s1 / n)^T`` does not cancel (exact and stable M-steps however far a
component lies from the centre), and near convergence successive passes share ``a_k`` exactly,
so a fixed point of EM is one bit for bit.
With missing values the conditional expectations E[x x^T | observed, k] enter ``s2``
(conditional covariances included).
"""

from __future__ import annotations

import math
import threading

import numpy as np
from scipy.linalg import solve_triangular

from emkit.core.arrays import to_numpy
from emkit.models.covariance import (COVARIANCE_STRUCTURES, COVARIANCE_TYPES, LOG_2PI, WHITENED_BLOCK,
                                     CovarianceStructure, cholesky_or_raise, pack_sym, triu_pairs, unpack_sym)

__all__ = ["COVARIANCE_STRUCTURES", "COVARIANCE_TYPES", "EXPANDED_MAX_ERROR", "LOG_2PI", "Prepared", "Scratch",
           "WHITENED_BLOCK", "cholesky_or_raise", "expected_complete_loglik", "far_components", "log_joint_by_component", "m_step_numpy",
           "missing_parts", "missing_stats", "pack_sym", "pattern_groups", "posterior_by_component", "prepare", "reference_offsets", "reference_points",
           "stacked_rows", "triu_pairs", "unpack_sym"]

#: a scratch array larger than this is allocated afresh each time (never kept alive)
WORKSPACE_MAX_BYTES = 24 * 2**20

def far_components(maha_means: np.ndarray, eps: float) -> np.ndarray:
    """Indices of the components whose statistics about the common centre would lose more
    than :func:`far_tolerance` of their variance to cancellation. ``maha_means`` (K,) is
    ``|m_k - center|^2`` in component k's metric, ``delta' Sigma_k^{-1} delta``: by
    Cauchy-Schwarz it is the largest ``(v . delta)^2 / v' Sigma_k v`` over directions ``v``, so
    ``eps * maha_means`` bounds the relative rounding error of every variance computed about
    the centre (a zero variance away from the centre gives infinity: far)."""
    maha = np.asarray(maha_means, dtype=np.float64)
    return np.flatnonzero(~(eps * maha <= far_tolerance(eps)))


def far_tolerance(eps: float) -> float:
    """The relative error of a variance accepted from statistics about the common centre:
    1e6 eps in float64 (2.2e-10, components within ~670 standard deviations of the centre),
    sqrt(eps) in float32 (3.5e-4, ~54 standard deviations)."""
    return min(math.sqrt(eps), 1e6 * eps)


def reference_points(means_c: np.ndarray, min_var: np.ndarray) -> np.ndarray:
    """The reference points for statistics at means ``means_c``: each mean rounded to
    a multiple of the power of two just below its component's smallest standard deviation. A
    reference within half a standard deviation of the mean loses nothing to cancellation, and
    near convergence, when the means move by far less than that, successive passes use the
    very same references: the statistics then depend on the responsibilities only, and a fixed
    point of EM is one bit for bit (no rounding-level wandering of the parameters)."""
    sd = np.sqrt(np.maximum(np.asarray(min_var, dtype=np.float64), 0.0))
    _, exponent = np.frexp(sd)  # sd = f 2**e with f in [0.5, 1): the grid is 2**(e - 1)
    grid = np.ldexp(1.0, exponent - 1)[:, None]
    usable = (sd > 0) & np.isfinite(sd)
    if not usable.all() or not np.all(grid > 0):
        grid = np.where(usable[:, None] & (grid > 0), grid, 1.0)
        rounded = np.round(means_c / grid) * grid
        return np.where(usable[:, None] & np.isfinite(rounded), rounded, means_c)
    rounded = np.round(means_c / grid) * grid
    return np.where(np.isfinite(rounded), rounded, means_c)


def reference_offsets(stats: dict) -> np.ndarray:
    """The reference points of statistics, ``ref / n`` (0 where n = 0)."""
    n = np.asarray(stats["n"], dtype=np.float64)
    ref = np.asarray(stats["ref"], dtype=np.float64)
    return np.divide(ref, n[:, None], out=np.zeros_like(ref), where=(n > 0)[:, None])


#: the expanded quadratic form is used when eps(dtype) * max_k |m_k - center|^2_{P_k} is below
#: this (its rounding error in a Mahalanobis term is about that much for rows near m_k)
EXPANDED_MAX_ERROR = 1e-4


# --------------------------------------------------------------------------- scratch memory
class Scratch:
    """Per-thread scratch memory of one model instance: reused chunk temporaries and the
    cached per-parameter precomputation.

    Chunk temporaries are a few MiB; allocating them afresh every chunk means fresh pages from
    the operating system (page faults) each time, which costs more than the arithmetic for
    small data. One set per thread (a :class:`threading.local`), so parallel chunks and
    threaded Dask workers never share one. A copy or an unpickled one starts empty.
    """

    __slots__ = ("local",)

    def __init__(self) -> None:
        #: this thread's ``arrays`` (dict) and ``prepared`` (tuple) live here
        self.local = threading.local()

    def array(self, name: str, shape: tuple, dtype) -> np.ndarray:
        """A NumPy array of ``shape`` and ``dtype`` reused across chunks and iterations by
        this thread (its contents are whatever the last user left)."""
        size = math.prod(shape)
        dtype = np.dtype(dtype)
        if size * dtype.itemsize > WORKSPACE_MAX_BYTES:  # never keep a huge buffer alive
            return np.empty(shape, dtype=dtype)
        local = self.local
        try:
            store = local.arrays
        except AttributeError:
            store = local.arrays = {}
        key = (name, dtype.str)
        arr = store.get(key)
        if arr is None or arr.size < size:
            arr = store[key] = np.empty(size, dtype=dtype)
        return arr[:size].reshape(shape)

    def clear(self) -> None:
        """Drop every thread's scratch (an array still in use stays alive through its user's
        reference)."""
        self.local = threading.local()

    def __reduce__(self):
        return (Scratch, ())

    def __deepcopy__(self, memo):
        return Scratch()

    def __repr__(self) -> str:
        return "Scratch()"


# --------------------------------------------------------------------------- per-parameter prep
class Prepared:
    """What the E-step needs from one parameter value, in the data's library, dtype and device.

    Built once per parameter value (the engine passes the same dict for every chunk). Matrices
    are stored for the component-major layout used by the kernels: a chunk is processed as
    ``Xc^T`` of shape (D, rows), so every reduction over components runs along contiguous rows.

    ``coef`` (K, D + extra) gives ``log_norm + coef @ stacked`` = log p(x, z = k) directly for
    the expanded quadratic forms (float64 full, diag, spherical); ``whiten_t`` / ``shift`` hold
    the precision Cholesky factors for the whitened form (float32 full, tied)."""

    __slots__ = ("log_norm", "whiten_t", "shift", "coef", "center", "expanded", "maha_means")

    def __init__(self):
        for s in self.__slots__:
            setattr(self, s, None)


def prepare(params: dict, structure: CovarianceStructure | str, center: np.ndarray, to_xp,
            eps: float = 2.2e-16) -> Prepared:
    """Precompute whitening matrices and normalising constants for ``params`` (NumPy float64
    arithmetic; ``to_xp`` converts a NumPy array to the data's library and dtype).

    ``structure`` is a :class:`~emkit.models.covariance.CovarianceStructure` (or its name). A
    structure may choose between the expanded quadratic form (one product on the stacked rows)
    and the whitened form by the rounding error the expanded form would have: ``eps`` is the
    machine epsilon of the data, :data:`EXPANDED_MAX_ERROR` the largest error accepted."""
    if isinstance(structure, str):
        structure = COVARIANCE_STRUCTURES[structure]
    weights = np.asarray(_np(params["weights"]), dtype=np.float64)
    means_c = np.asarray(_np(params["means"]), dtype=np.float64) - center
    k, d = means_c.shape
    if weights.min() > 0:
        log_w = np.log(weights)
    else:  # an empty component: log weight -inf, never chosen
        with np.errstate(divide="ignore"):
            log_w = np.log(weights)
    p = Prepared()
    p.center = to_xp(center.reshape(d, 1))
    log_det, const = structure.prepare(p, _np(params["covariances"]), means_c, to_xp, eps, EXPANDED_MAX_ERROR)
    # p.maha_means: |m_k - center|^2 in component k's metric (NumPy (K,)), set by the structure
    p.log_norm = to_xp((log_w - 0.5 * d * LOG_2PI + log_det - 0.5 * const).reshape(k, 1))
    return p


def _np(x) -> np.ndarray:
    return x if type(x) is np.ndarray else to_numpy(x)


# --------------------------------------------------------------------------- complete-data kernels
def stacked_rows(xp, X, center_col, structure: CovarianceStructure, pairs, scratch: Scratch,
                 products: bool = True):
    """The chunk in component-major layout, with the per-row products the statistics need
    (the structure's layout: (D + T, rows) = [Xc^T; upper-triangle products] for full,
    (2D, rows) = [Xc^T; (Xc^2)^T] for diag / spherical, (D, rows) = Xc^T for tied).
    ``Xc = X - center`` (``center_col`` (D, 1)); ``products=False`` leaves out products that
    only the statistics need (log densities only)."""
    if xp is np:
        # NumPy: write everything into one C-ordered buffer (rows contiguous), no concatenation
        d = X.shape[1]
        extra = structure.stacked_extra(d, products)
        buf = scratch.array("stacked", (d + extra, X.shape[0]), X.dtype)
        np.subtract(X.T, center_col, out=buf[:d])
        if extra:
            structure.fill_products(buf, d)
        return buf
    xct = (xp.matrix_transpose(X) if hasattr(xp, "matrix_transpose") else X.T) - center_col
    return structure.stacked_xp(xp, xct, pairs, products)


def log_joint_by_component(xp, stacked, prep: Prepared, structure: CovarianceStructure, d: int, scratch: Scratch):
    """log p(x_i, z_i = k) of complete rows, component-major: (K, rows), data dtype."""
    if prep.expanded:
        if xp is np:
            out = np.matmul(prep.coef, stacked, out=scratch.array("log_joint", (prep.coef.shape[0], stacked.shape[1]),
                                                                  stacked.dtype))
            out += prep.log_norm
            return out
        return prep.coef @ stacked + prep.log_norm
    return structure.log_joint_whitened(xp, stacked[:d], prep, scratch)


def posterior_by_component(xp, log_joint, scratch: Scratch, weights=None, row_loglik: bool = True):
    """Responsibilities (K, rows) times the row weights, and the per-row log-likelihood (rows,)
    times the row weights, from a component-major log joint, by a fused, overflow-safe
    log-sum-exp. NumPy input is overwritten (it is a temporary of the caller).

    With ``row_loglik=False`` (NumPy, no weights) the second result is only the SUM of the
    per-row log-likelihoods, a float: computed as sum(top) + sum(log(prod of blocks of the
    per-row totals)), one log per 32 rows. Each total lies in [1, K] so a block's product
    cannot overflow for K < 2**30 in float64 (and the E-step only needs the sum)."""
    top = xp.max(log_joint, axis=0)
    if not math.isfinite(float(xp.sum(top))):  # rows impossible under every component (-inf)
        top = xp.where(xp.isfinite(top), top, xp.zeros_like(top))
    if xp is np:
        log_joint -= top
        # Terms below eps / (16 K) of their row's largest add nothing representable to the row's
        # sum, so they are left at exactly 0 when they are the majority: numpy's float64 exp is
        # scalar on CPUs without AVX-512 (~10-30 ns, slowest for large negative arguments) and
        # with well-separated components most terms are such. Their responsibilities become 0
        # instead of < eps / (16 K). (float32 exp is vectorised and faster than any mask.)
        k = log_joint.shape[0]
        live = None
        if k >= 4 and log_joint.dtype == np.float64:  # K < 4: never 70 % below
            live = log_joint > math.log(np.finfo(log_joint.dtype).eps / (16 * k))
        if live is not None and np.count_nonzero(live) < 0.3 * live.size:
            e = scratch.array("exp", log_joint.shape, log_joint.dtype)
            e.fill(0.0)
            np.exp(log_joint, out=e, where=live)
        else:
            e = np.exp(log_joint, out=log_joint)
        total = e.sum(axis=0)
        if not row_loglik and weights is None and total.dtype == np.float64:
            n = total.shape[0]
            head = n - n % 32
            blocks = np.prod(total[:head].reshape(-1, 32), axis=1)
            loglik = float(np.log(blocks).sum() + np.log(total[head:]).sum() + top.sum())
            e /= total
            return e, loglik
        scale = 1.0 / total if weights is None else weights / total
        e *= scale
        row_ll = np.log(total)
        row_ll += top
        if weights is not None:
            row_ll *= weights
        return e, (row_ll if row_loglik else float(np.sum(row_ll, dtype=np.float64)))
    e = xp.exp(log_joint - top)
    total = xp.sum(e, axis=0)
    row_ll = xp.log(total) + top
    if weights is not None:
        e, row_ll = e * (weights / total), row_ll * weights
    else:
        e = e / total
    return e, (row_ll if row_loglik else float(xp.sum(row_ll, dtype=xp.float64)))


# --------------------------------------------------------------------------- missing values
def pattern_groups(mask: np.ndarray):
    """Group rows by missingness pattern: yields (row indices, observed columns, missing columns)."""
    if mask.shape[0] == 0:
        return
    packed = np.packbits(mask, axis=1)
    _, inverse = np.unique(packed, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    order = np.argsort(inverse, kind="stable")
    bounds = np.flatnonzero(np.diff(inverse[order])) + 1
    for rows in np.split(order, bounds):
        miss = mask[rows[0]]
        yield rows, np.flatnonzero(~miss), np.flatnonzero(miss)


def missing_parts(x: np.ndarray, params: dict, structure: CovarianceStructure, center: np.ndarray):
    """For rows with NaNs (NumPy, any dtype; computed in float64): per missingness pattern,
    the log joint of the observed coordinates, the conditional means of all coordinates
    (centred) and the conditional covariances, per component.

    Yields ``(rows, log_joint (r, K), xhat (K, r, D), cond_cov (K, D, D))``."""
    x = np.asarray(x, dtype=np.float64) - center
    weights = np.asarray(_np(params["weights"]), dtype=np.float64)
    means_c = np.asarray(_np(params["means"]), dtype=np.float64) - center
    k, d = means_c.shape
    covs = structure.full_matrices(_np(params["covariances"]), k, d)
    with np.errstate(divide="ignore"):
        log_w = np.log(weights)
    mask = np.isnan(x)
    for rows, obs, mis in pattern_groups(mask):
        xo = x[np.ix_(rows, obs)]
        r = len(rows)
        lj = np.empty((r, k))
        xhat = np.empty((k, r, d))
        cond = np.zeros((k, d, d))
        for j in range(k):
            s_oo = covs[j][np.ix_(obs, obs)]
            chol = cholesky_or_raise(s_oo, f"covariance of component {j} (observed block)")
            diff = xo - means_c[j, obs]
            white = solve_triangular(chol, diff.T, lower=True)  # (|o|, r)
            maha = np.sum(white * white, axis=0)
            log_det = 2.0 * np.log(np.diagonal(chol)).sum()
            lj[:, j] = log_w[j] - 0.5 * (len(obs) * LOG_2PI + log_det + maha)
            xhat[j][:, obs] = xo
            if mis.size:
                s_mo = covs[j][np.ix_(mis, obs)]
                # Sigma_mo Sigma_oo^{-1} via the Cholesky factor
                a = solve_triangular(chol, s_mo.T, lower=True)  # (|o|, |m|)
                xhat[j][:, mis] = means_c[j, mis] + (a.T @ white).T
                cond[j][np.ix_(mis, mis)] = covs[j][np.ix_(mis, mis)] - a.T @ a
        yield rows, lj, xhat, cond


def missing_stats(rows_resp: np.ndarray, xhat: np.ndarray, cond: np.ndarray, structure: CovarianceStructure,
                  offsets: np.ndarray, anchors: np.ndarray) -> dict:
    """Statistics of one missingness pattern group given responsibilities (r, K) (float64),
    about the reference points ``anchors`` (K, D), ``offsets = anchors - center`` (``xhat`` is
    centred)."""
    n_k = rows_resp.sum(axis=0)
    xhat = xhat - offsets[:, None, :]
    s1 = np.einsum("rk,krd->kd", rows_resp, xhat)
    return {"n": n_k, "s1": s1, "s2": structure.missing_s2(rows_resp, xhat, cond, n_k),
            "ref": n_k[:, None] * anchors}


# --------------------------------------------------------------------------- M-step
def m_step_numpy(stats: dict, structure: CovarianceStructure, reg_covar: float, d: int, fixed_means_c=None,
                 eps: float = 2.2e-16, center=None):
    """Maximiser of the expected complete-data log-likelihood from float64 statistics.

    Matches scikit-learn's M-step: weights = n_k / sum n_k, means = a_k + s1 / n_k (``a_k`` the
    statistics' reference points), covariances the responsibility-weighted scatter about the NEW
    means divided by n_k, plus ``reg_covar`` on the diagonal (n_k carries scikit-learn's + 10 eps
    so an empty component divides by a positive number). With ``fixed_means_c`` (centred means
    held fixed) the covariances are the scatter about those means, which is then the maximiser.
    A variance made negative by rounding only (within what the data's ``eps`` allows for the
    statistics, ``center`` (D,) being the centre of the product that gave them) is clipped to 0
    before ``reg_covar``. Means (``fixed_means_c`` and the result) are in the coordinates of the
    reference points (``ref / n``; absolute for the model's statistics), so a mean is as accurate
    as its magnitude allows however far it lies from the centre. Returns (weights, means,
    covariances, empty component indices)."""
    n = np.asarray(stats["n"], dtype=np.float64)
    s1 = np.asarray(stats["s1"], dtype=np.float64)
    s2 = np.asarray(stats["s2"], dtype=np.float64)
    ref = reference_offsets(stats)
    nk = n + 10 * np.finfo(np.float64).eps
    weights = nk / nk.sum()
    step = s1 / nk[:, None]
    anchor = ref  # the reference points
    about = step if fixed_means_c is None else np.asarray(fixed_means_c, dtype=np.float64) - anchor
    # empty: no responsibility at all (relative to the data); such a component keeps its mean and
    # covariance (any value maximises Q for it) and gets weight ~ 0
    empty = np.flatnonzero(n <= 1e-12 * max(n.sum(), 1e-300))
    slack = None
    if s2.shape == s1.shape:  # per-coordinate second moments (diag, spherical)
        offset = ref if center is None else ref - np.asarray(center, dtype=np.float64)
        slack = 64.0 * max(eps, np.finfo(np.float64).eps) * (
            np.abs(s2) / nk[:, None] + offset * offset + about * about + step * step)
    cov = structure.m_step(n, nk, s1, s2, about, reg_covar, d, slack=slack)
    return weights, anchor + step, cov, empty


def expected_complete_loglik(stats: dict, weights, means, covariances, structure: CovarianceStructure) -> float:
    """Q(theta | theta') = E[log p(X, Z | theta)] from statistics computed at theta' (float)."""
    n = np.asarray(stats["n"], dtype=np.float64)
    s1 = np.asarray(stats["s1"], dtype=np.float64)
    s2 = np.asarray(stats["s2"], dtype=np.float64)
    means_c = np.asarray(means, dtype=np.float64) - reference_offsets(stats)  # about the references
    d = means_c.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        total = float(np.sum(np.where(n > 0, n * np.log(weights), 0.0)))
    return float(structure.complete_loglik(total, n, s1, s2, means_c, covariances, d))
