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

Statistics format (additive over rows; the M-step depends on ratios only):
``{"n": (K,), "s1": (K, D), "s2": ...}`` with ``s1 = sum_i r_ik (x_i - center)`` and ``s2``
the centred second moments: ``full`` (K, T) packed upper triangles (T = D(D+1)/2, row-major
order of ``numpy.triu_indices``), ``tied`` (T,) summed over components, ``diag`` and
``spherical`` (K, D) per-coordinate sums of squares. With missing values the conditional
expectations E[x x^T | observed, k] enter ``s2`` (conditional covariances included).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg import solve_triangular

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
LOG_2PI = math.log(2.0 * math.pi)


# --------------------------------------------------------------------------- small helpers
def triu_pairs(d: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the upper triangle (diagonal included) of a d x d matrix."""
    return np.triu_indices(d)


def unpack_sym(packed: np.ndarray, d: int) -> np.ndarray:
    """(..., T) packed upper triangles -> (..., d, d) symmetric matrices (NumPy)."""
    rows, cols = triu_pairs(d)
    out = np.zeros(packed.shape[:-1] + (d, d))
    out[..., rows, cols] = packed
    out[..., cols, rows] = packed
    return out


def pack_sym(mats: np.ndarray) -> np.ndarray:
    """(..., d, d) -> (..., T) upper triangles (NumPy)."""
    rows, cols = triu_pairs(mats.shape[-1])
    return mats[..., rows, cols]


def full_covariances(covariances: np.ndarray, covariance_type: str, k: int, d: int) -> np.ndarray:
    """Any covariance representation as a (K, D, D) stack of matrices (NumPy float64)."""
    cov = np.asarray(covariances, dtype=np.float64)
    if covariance_type == "full":
        return cov
    if covariance_type == "tied":
        return np.broadcast_to(cov, (k, d, d)).copy()
    if covariance_type == "diag":
        return np.stack([np.diag(c) for c in cov])
    return np.stack([np.eye(d) * c for c in cov])


def cholesky_or_raise(cov: np.ndarray, what: str) -> np.ndarray:
    """Lower Cholesky factor(s) of ``cov`` (d, d) or (K, d, d); a ValueError naming the first
    component that is not positive definite otherwise."""
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        pass
    stack = cov[None] if cov.ndim == 2 else cov
    for k, c in enumerate(stack):
        try:
            np.linalg.cholesky(c)
        except np.linalg.LinAlgError:
            where = what if cov.ndim == 2 else f"{what} of component {k}"
            raise ValueError(
                f"{where} is not positive definite (a component collapsed onto a single point or a "
                f"constant feature?); increase reg_covar, reduce n_components or rescale the data"
            ) from None
    raise ValueError(f"{what}: Cholesky factorisation failed")  # pragma: no cover


def precision_cholesky(covariances: np.ndarray, covariance_type: str) -> np.ndarray:
    """scikit-learn's ``precisions_cholesky_``: upper-triangular U with precision = U U^T for
    full / tied, 1 / sqrt(variance) for diag / spherical (NumPy float64)."""
    cov = np.asarray(covariances, dtype=np.float64)
    if covariance_type in ("diag", "spherical"):
        bad = np.argwhere(~(cov > 0))
        if bad.size:
            raise ValueError(f"variance of component {int(bad[0][0])} is not positive; increase reg_covar")
        return 1.0 / np.sqrt(cov)
    chol = cholesky_or_raise(cov, "covariance" if covariance_type == "tied" else "covariance")
    eye = np.eye(cov.shape[-1])
    if covariance_type == "tied":
        return solve_triangular(chol, eye, lower=True).T
    return np.stack([solve_triangular(c, eye, lower=True).T for c in chol])


# --------------------------------------------------------------------------- per-parameter prep
class Prepared:
    """What the E-step needs from one parameter value, in the data's library, dtype and device.

    Built once per parameter value (the engine passes the same dict for every chunk)."""

    __slots__ = ("log_norm", "whiten", "shift", "prec", "lin", "const", "center", "means_c",
                 "cov_full", "weights")

    def __init__(self):
        for s in self.__slots__:
            setattr(self, s, None)


def prepare(params: dict, covariance_type: str, center: np.ndarray, to_xp) -> Prepared:
    """Precompute whitening matrices and normalising constants for ``params`` (NumPy float64
    arithmetic; ``to_xp`` converts a NumPy array to the data's library and dtype)."""
    weights = np.asarray(_np(params["weights"]), dtype=np.float64)
    means_c = np.asarray(_np(params["means"]), dtype=np.float64) - center
    cov = _np(params["covariances"])
    k, d = means_c.shape
    prec_chol = precision_cholesky(cov, covariance_type)
    with np.errstate(divide="ignore"):
        log_w = np.log(weights)
    p = Prepared()
    p.center = to_xp(center)
    p.weights = weights
    p.means_c = means_c
    if covariance_type == "full":
        log_det = np.log(np.diagonal(prec_chol, axis1=1, axis2=2)).sum(axis=1)
        # Xc @ [U_1 ... U_K] - [m_1 U_1 ... m_K U_K]: all Mahalanobis terms in one product
        p.whiten = to_xp(np.concatenate(list(prec_chol), axis=1))
        p.shift = to_xp(np.einsum("kd,kde->ke", means_c, prec_chol).reshape(-1))
    elif covariance_type == "tied":
        log_det = np.full(k, np.log(np.diagonal(prec_chol)).sum())
        p.whiten = to_xp(prec_chol)
        p.shift = to_xp(means_c @ prec_chol)
    else:
        prec = prec_chol ** 2 if covariance_type == "diag" else np.repeat((prec_chol ** 2)[:, None], d, axis=1)
        log_det = np.log(prec_chol).sum(axis=1) if covariance_type == "diag" else d * np.log(prec_chol)
        # expanded quadratic form on centred data: x^2 . p - 2 x . (m p) + m^2 . p
        p.prec = to_xp(prec.T.copy())
        p.lin = to_xp((-2.0 * means_c * prec).T.copy())
        p.const = (means_c ** 2 * prec).sum(axis=1)
    p.log_norm = to_xp(log_w - 0.5 * d * LOG_2PI + log_det - 0.5 * (p.const if p.const is not None else 0.0))
    return p


def _np(x) -> np.ndarray:
    from .._array import to_numpy
    return to_numpy(x)


# --------------------------------------------------------------------------- complete-data kernels
def log_joint_complete(xp, X, prep: Prepared, covariance_type: str, xc=None, xsq=None):
    """log p(x_i, z_i = k) for rows without missing values: (rows, K) in the data's dtype.

    Returns ``(log_joint, xc, xsq)`` so the statistics reuse the centred data (and its squares
    for diag / spherical)."""
    n = X.shape[0]
    if xc is None:
        xc = X - prep.center
    if covariance_type == "full":
        y = xc @ prep.whiten
        y = y - prep.shift
        y = y * y
        k = prep.log_norm.shape[0]
        maha = xp.sum(xp.reshape(y, (n, k, -1)), axis=2)
    elif covariance_type == "tied":
        y = xc @ prep.whiten
        diff = y[:, None, :] - prep.shift[None, :, :]
        maha = xp.sum(diff * diff, axis=2)
    else:
        if xsq is None:
            xsq = xc * xc
        maha = xsq @ prep.prec + xc @ prep.lin
    return prep.log_norm - 0.5 * maha, xc, xsq


def logsumexp_posterior(xp, log_joint):
    """Responsibilities and per-row log-likelihood from (rows, K) log joint, in one fused pass."""
    top = xp.max(log_joint, axis=1, keepdims=True)
    top = xp.where(xp.isfinite(top), top, xp.zeros_like(top))
    e = xp.exp(log_joint - top)
    total = xp.sum(e, axis=1, keepdims=True)
    resp = e / total
    row_ll = xp.log(total[:, 0]) + top[:, 0]
    return resp, row_ll


def complete_stats(xp, xc, resp, covariance_type: str, pairs, xsq=None, weights=None):
    """Sufficient statistics (float64) of centred complete rows ``xc`` with responsibilities
    ``resp`` (row weights already multiplied in). ``pairs`` = (rows, cols) of the upper triangle
    as index arrays of the data's library; ``weights`` (row weights or None) for ``tied``."""
    f64 = xp.float64
    n_k = xp.sum(xp.astype(resp, f64), axis=0)
    rt = xp.matrix_transpose(resp) if hasattr(xp, "matrix_transpose") else resp.T
    s1 = xp.astype(rt @ xc, f64)
    if covariance_type == "full":
        z = xp.take(xc, pairs[0], axis=1) * xp.take(xc, pairs[1], axis=1)
        s2 = xp.astype(rt @ z, f64)
    elif covariance_type == "tied":
        xw = xc if weights is None else xc * weights[:, None]
        d = xc.shape[1]
        scatter = xp.astype(xp.matrix_transpose(xw) @ xc, f64) if hasattr(xp, "matrix_transpose") \
            else xp.astype(xw.T @ xc, f64)
        s2 = xp.take(xp.reshape(scatter, (d * d,)), pairs[0] * d + pairs[1], axis=0)
    else:
        if xsq is None:
            xsq = xc * xc
        s2 = xp.astype(rt @ xsq, f64)
    return {"n": n_k, "s1": s1, "s2": s2}


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


def missing_parts(x: np.ndarray, params: dict, covariance_type: str, center: np.ndarray):
    """For rows with NaNs (NumPy, any dtype; computed in float64): per missingness pattern,
    the log joint of the observed coordinates, the conditional means of all coordinates
    (centred) and the conditional covariances, per component.

    Yields ``(rows, log_joint (r, K), xhat (K, r, D), cond_cov (K, D, D))``."""
    x = np.asarray(x, dtype=np.float64) - center
    weights = np.asarray(_np(params["weights"]), dtype=np.float64)
    means_c = np.asarray(_np(params["means"]), dtype=np.float64) - center
    k, d = means_c.shape
    covs = full_covariances(_np(params["covariances"]), covariance_type, k, d)
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


def missing_stats(rows_resp: np.ndarray, xhat: np.ndarray, cond: np.ndarray, covariance_type: str) -> dict:
    """Statistics of one missingness pattern group given responsibilities (r, K) (float64)."""
    k, _, d = xhat.shape
    rows, cols = triu_pairs(d)
    n_k = rows_resp.sum(axis=0)
    s1 = np.einsum("rk,krd->kd", rows_resp, xhat)
    if covariance_type in ("full", "tied"):
        second = np.einsum("rk,krd,kre->kde", rows_resp, xhat, xhat) + n_k[:, None, None] * cond
        s2 = second[:, rows, cols]
        if covariance_type == "tied":
            s2 = s2.sum(axis=0)
    else:
        s2 = np.einsum("rk,krd->kd", rows_resp, xhat * xhat) + n_k[:, None] * np.diagonal(cond, axis1=1, axis2=2)
    return {"n": n_k, "s1": s1, "s2": s2}


# --------------------------------------------------------------------------- M-step
def m_step_numpy(stats: dict, covariance_type: str, reg_covar: float, d: int, old: dict | None = None):
    """Maximiser of the expected complete-data log-likelihood from float64 statistics.

    Matches scikit-learn's M-step: weights = n_k / sum n_k, means = s1 / n_k, covariances the
    responsibility-weighted scatter about the NEW means divided by n_k, plus ``reg_covar`` on the
    diagonal (n_k carries scikit-learn's + 10 eps so an empty component divides by a positive
    number). Returns (weights, centred means, covariances, empty component indices)."""
    n = np.asarray(stats["n"], dtype=np.float64)
    s1 = np.asarray(stats["s1"], dtype=np.float64)
    s2 = np.asarray(stats["s2"], dtype=np.float64)
    nk = n + 10 * np.finfo(np.float64).eps
    weights = nk / nk.sum()
    means = s1 / nk[:, None]
    # empty: no responsibility at all (relative to the data); such a component keeps its mean and
    # covariance (any value maximises Q for it) and gets weight ~ 0
    empty = np.flatnonzero(n <= 1e-12 * max(n.sum(), 1e-300))
    if covariance_type == "full":
        second = unpack_sym(s2, d)
        cross = s1[:, :, None] * means[:, None, :]
        scatter = second - cross - np.swapaxes(cross, 1, 2) + n[:, None, None] * means[:, :, None] * means[:, None, :]
        cov = scatter / nk[:, None, None]
        cov = 0.5 * (cov + np.swapaxes(cov, 1, 2))
        cov[:, np.arange(d), np.arange(d)] += reg_covar
    elif covariance_type == "tied":
        second = unpack_sym(s2, d)
        cross = s1.T @ means
        scatter = second - cross - cross.T + (means.T * n) @ means
        cov = scatter / nk.sum()
        cov = 0.5 * (cov + cov.T)
        cov[np.arange(d), np.arange(d)] += reg_covar
    else:
        var = (s2 - 2.0 * s1 * means + n[:, None] * means * means) / nk[:, None] + reg_covar
        cov = var if covariance_type == "diag" else var.mean(axis=1)
    return weights, means, cov, empty


def expected_complete_loglik(stats: dict, weights, means_c, covariances, covariance_type: str) -> float:
    """Q(theta | theta') = E[log p(X, Z | theta)] from statistics computed at theta' (float)."""
    n = np.asarray(stats["n"], dtype=np.float64)
    s1 = np.asarray(stats["s1"], dtype=np.float64)
    s2 = np.asarray(stats["s2"], dtype=np.float64)
    k, d = means_c.shape
    with np.errstate(divide="ignore", invalid="ignore"):
        total = float(np.sum(np.where(n > 0, n * np.log(weights), 0.0)))
    if covariance_type in ("full", "tied"):
        second = unpack_sym(s2, d)
        covs = full_covariances(covariances, covariance_type, k, d)
        for j in range(k):
            prec = np.linalg.inv(covs[j])
            _, logdet = np.linalg.slogdet(covs[j])
            m = means_c[j]
            if covariance_type == "full":
                sj = second[j] - np.outer(s1[j], m) - np.outer(m, s1[j]) + n[j] * np.outer(m, m)
                total += -0.5 * (n[j] * (d * LOG_2PI + logdet) + np.sum(prec * sj))
            else:  # tied: second holds the sum over components
                sj = -np.outer(s1[j], m) - np.outer(m, s1[j]) + n[j] * np.outer(m, m)
                total += -0.5 * (n[j] * (d * LOG_2PI + logdet) + np.sum(prec * sj))
        if covariance_type == "tied":
            total += -0.5 * np.sum(np.linalg.inv(covs[0]) * second)
    else:
        var = np.asarray(covariances, dtype=np.float64)
        var = var if covariance_type == "diag" else np.repeat(var[:, None], d, axis=1)
        quad = (s2 - 2.0 * s1 * means_c + n[:, None] * means_c ** 2) / var
        total += float(-0.5 * np.sum(n * (d * LOG_2PI) + n * np.log(var).sum(axis=1) + quad.sum(axis=1)))
    return float(total)
