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

import functools
import math
import threading

import numpy as np
from scipy.linalg import solve_triangular

from emkit.core.arrays import to_numpy

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
LOG_2PI = math.log(2.0 * math.pi)


# --------------------------------------------------------------------------- workspaces
#: thread id -> {(name, dtype): flat array}; each thread only ever touches its own entry
_WORKSPACES: dict[int, dict] = {}
WORKSPACE_MAX_BYTES = 24 * 2**20


def release_workspaces() -> None:
    """Free the scratch arrays of every thread (called after initialisation and at the end of
    a fit; an array still in use stays alive through its user's reference)."""
    _WORKSPACES.clear()


def workspace(name: str, shape: tuple, dtype) -> np.ndarray:
    """A per-thread scratch NumPy array reused across chunks and iterations.

    Chunk temporaries are a few MiB; allocating them afresh every chunk means fresh pages from
    the operating system (page faults) each time, which costs more than the arithmetic for
    small data. Per thread, so parallel chunks and threaded Dask workers never share one."""
    size = math.prod(shape)
    dtype = np.dtype(dtype)
    if size * dtype.itemsize > WORKSPACE_MAX_BYTES:  # never keep a huge buffer alive
        return np.empty(shape, dtype=dtype)
    store = _WORKSPACES.get(threading.get_ident())
    if store is None:
        store = _WORKSPACES[threading.get_ident()] = {}
    key = (name, dtype.str)
    arr = store.get(key)
    if arr is None or arr.size < size:
        arr = store[key] = np.empty(size, dtype=dtype)
    return arr[:size].reshape(shape)


# --------------------------------------------------------------------------- small helpers
@functools.lru_cache(maxsize=64)
def _offdiag_factor(d: int) -> np.ndarray:
    rows, cols = triu_pairs(d)
    out = np.where(rows == cols, -0.5, -1.0)
    out.flags.writeable = False
    return out


@functools.lru_cache(maxsize=64)
def triu_pairs(d: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the upper triangle (diagonal included) of a d x d matrix
    (cached; read-only arrays)."""
    rows, cols = np.triu_indices(d)
    rows.flags.writeable = False
    cols.flags.writeable = False
    return rows, cols


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
    chol = cholesky_or_raise(cov, "covariance")
    if covariance_type == "tied":
        return solve_triangular(chol, np.eye(cov.shape[-1]), lower=True).T
    # batched inverse of the lower factors; the strict upper part is rounding noise, zeroed
    inv = np.tril(np.linalg.inv(chol))
    return np.swapaxes(inv, 1, 2)


# --------------------------------------------------------------------------- per-parameter prep
class Prepared:
    """What the E-step needs from one parameter value, in the data's library, dtype and device.

    Built once per parameter value (the engine passes the same dict for every chunk). Matrices
    are stored for the component-major layout used by the kernels: a chunk is processed as
    ``Xc^T`` of shape (D, rows), so every reduction over components runs along contiguous rows.

    ``coef`` (K, D + extra) gives ``log_norm + coef @ stacked`` = log p(x, z = k) directly for
    the expanded quadratic forms (float64 full, diag, spherical); ``whiten_t`` / ``shift`` hold
    the precision Cholesky factors for the whitened form (float32 full, tied)."""

    __slots__ = ("log_norm", "whiten_t", "shift", "coef", "center", "expanded")

    def __init__(self):
        for s in self.__slots__:
            setattr(self, s, None)


#: rows per block of the whitened full-covariance form (its (K D, rows) temporary stays small)
WHITENED_BLOCK = 1024

#: the expanded quadratic form is used when eps(dtype) * max_k |m_k - center|^2_{P_k} is below
#: this (its rounding error in a Mahalanobis term is about that much for rows near m_k)
EXPANDED_MAX_ERROR = 1e-4


def prepare(params: dict, covariance_type: str, center: np.ndarray, to_xp, eps: float = 2.2e-16) -> Prepared:
    """Precompute whitening matrices and normalising constants for ``params`` (NumPy float64
    arithmetic; ``to_xp`` converts a NumPy array to the data's library and dtype).

    Full covariance: the expanded quadratic form x'Px - 2 m'Px + m'Pm on centred data is one
    product on the same stacked rows as the M-step statistics, but it cancels: its rounding
    error near m_k is about ``eps * |m_k - center|^2_{P_k}``. It is used when that is below
    ``EXPANDED_MAX_ERROR`` (always in practice for float64; for float32 when every component
    mean lies within ~30 of its own standard deviations of the data centre), otherwise the
    whitened form |U'(x - m)|^2, which does not cancel (``eps``: machine epsilon of the data)."""
    weights = np.asarray(_np(params["weights"]), dtype=np.float64)
    means_c = np.asarray(_np(params["means"]), dtype=np.float64) - center
    cov = _np(params["covariances"])
    k, d = means_c.shape
    if weights.min() > 0:
        log_w = np.log(weights)
    else:  # an empty component: log weight -inf, never chosen
        with np.errstate(divide="ignore"):
            log_w = np.log(weights)
    p = Prepared()
    p.center = to_xp(center.reshape(d, 1))
    const = 0.0
    p.expanded = covariance_type in ("diag", "spherical")
    if covariance_type == "full":
        chol = cholesky_or_raise(np.asarray(cov, dtype=np.float64), "covariance")
        inv_chol = np.tril(np.linalg.inv(chol))  # L^{-1}; precision = L^{-T} L^{-1}
        log_det = -np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
        prec = np.swapaxes(inv_chol, 1, 2) @ inv_chol
        lin = (prec @ means_c[:, :, None])[:, :, 0]
        maha_means = np.sum(lin * means_c, axis=1)  # |m_k - center|^2 in component k's metric
        p.expanded = float(eps * maha_means.max()) <= EXPANDED_MAX_ERROR
        if p.expanded:
            rows, cols = triu_pairs(d)
            quad = prec[:, rows, cols] * _offdiag_factor(d)  # -0.5 diagonal, -1 off-diagonal
            p.coef = to_xp(np.concatenate([lin, quad], axis=1))
            const = maha_means
        else:
            # [U_1 ... U_K]^T Xc^T - [U_k^T m_k] with U_k = L_k^{-T}: all terms from one product
            p.whiten_t = to_xp(inv_chol.reshape(k * d, d))
            p.shift = to_xp((inv_chol @ means_c[:, :, None]).reshape(k * d, 1))
    elif covariance_type == "tied":
        prec_chol = precision_cholesky(cov, covariance_type)
        log_det = np.full(k, np.log(np.diagonal(prec_chol)).sum())
        p.whiten_t = to_xp(prec_chol.T.copy())
        p.shift = to_xp((means_c @ prec_chol)[:, :, None])
    else:
        prec_chol = precision_cholesky(cov, covariance_type)
        prec = prec_chol ** 2 if covariance_type == "diag" else np.repeat((prec_chol ** 2)[:, None], d, axis=1)
        log_det = np.log(prec_chol).sum(axis=1) if covariance_type == "diag" else d * np.log(prec_chol)
        # -0.5 (p . x^2 - 2 (m p) . x) with the stacked rows [Xc; Xc^2]: one product
        p.coef = to_xp(np.concatenate([means_c * prec, -0.5 * prec], axis=1))
        const = (means_c ** 2 * prec).sum(axis=1)
    p.log_norm = to_xp((log_w - 0.5 * d * LOG_2PI + log_det - 0.5 * const).reshape(k, 1))
    return p


def _np(x) -> np.ndarray:
    return x if type(x) is np.ndarray else to_numpy(x)


# --------------------------------------------------------------------------- complete-data kernels
def stacked_rows(xp, X, center_col, covariance_type: str, pairs, products: bool = True):
    """The chunk in component-major layout, with the per-row products the statistics need:
    (D + T, rows) = [Xc^T; upper-triangle products] for full, (2D, rows) = [Xc^T; (Xc^2)^T] for
    diag / spherical, (D, rows) = Xc^T for tied. ``Xc = X - center`` (``center_col`` (D, 1));
    ``products=False`` leaves out the full-covariance products (log densities only)."""
    d, n = int(X.shape[1]), int(X.shape[0])
    if xp is np:
        # NumPy: write everything into one C-ordered buffer (rows contiguous), no concatenation
        extra = 0 if covariance_type == "tied" or (covariance_type == "full" and not products) else \
            (len(pairs[0]) if covariance_type == "full" else d)
        buf = workspace("stacked", (d + extra, n), X.dtype)
        np.subtract(X.T, center_col, out=buf[:d])
        if covariance_type in ("diag", "spherical"):
            np.multiply(buf[:d], buf[:d], out=buf[d:])
        elif extra:
            # row i of the upper triangle: x_i * x_j for j >= i, written in place (no copies)
            pos = d
            for i in range(d):
                np.multiply(buf[i], buf[i:d], out=buf[pos:pos + d - i])
                pos += d - i
        return buf
    xct = (xp.matrix_transpose(X) if hasattr(xp, "matrix_transpose") else X.T) - center_col
    if covariance_type == "full":
        if not products:
            return xct
        prod = xp.take(xct, pairs[0], axis=0) * xp.take(xct, pairs[1], axis=0)
        return xp.concat([xct, prod], axis=0)
    if covariance_type == "tied":
        return xct
    return xp.concat([xct, xct * xct], axis=0)


def log_joint_t(xp, stacked, prep: Prepared, covariance_type: str, d: int):
    """log p(x_i, z_i = k) of complete rows, component-major: (K, rows), data dtype."""
    if prep.expanded:
        if xp is np:
            out = np.matmul(prep.coef, stacked, out=workspace("log_joint", (prep.coef.shape[0], stacked.shape[1]),
                                                              stacked.dtype))
            out += prep.log_norm
            return out
        return prep.coef @ stacked + prep.log_norm
    xct = stacked[:d]
    k = prep.log_norm.shape[0]
    if covariance_type == "full" and xp is np:
        # (K D, rows) whitened values, a block of WHITENED_BLOCK rows at a time in a reused
        # workspace: bounded memory, and fresh temporaries would cost more in page faults than
        # the arithmetic
        n = xct.shape[1]
        out = workspace("log_joint", (k, n), xct.dtype)
        for start in range(0, n, WHITENED_BLOCK):
            stop = min(n, start + WHITENED_BLOCK)
            y = np.matmul(prep.whiten_t, xct[:, start:stop],
                          out=workspace("whitened", (k * d, stop - start), xct.dtype))
            np.subtract(y, prep.shift, out=y)
            np.square(y, out=y)
            np.add.reduce(y.reshape(k, d, stop - start), axis=1, out=out[:, start:stop])
        out *= -0.5
        out += prep.log_norm
        return out
    if covariance_type == "full":
        y = prep.whiten_t @ xct - prep.shift
        y = y * y
        maha = xp.sum(xp.reshape(y, (k, d, -1)), axis=1)
    else:  # tied
        y = prep.whiten_t @ xct
        diff = y[None, :, :] - prep.shift
        maha = xp.sum(diff * diff, axis=1)
    return prep.log_norm - 0.5 * maha


def posterior_t(xp, log_joint, weights=None, row_loglik: bool = True):
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
            e = workspace("exp", log_joint.shape, log_joint.dtype)
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


def stats_t(xp, stacked, resp_t, covariance_type: str, d: int, pairs, weights=None):
    """Sufficient statistics (float64) from component-major responsibilities (K, rows) with row
    weights already multiplied in; ``weights`` (rows,) or None is needed for ``tied`` only."""
    f64 = xp.float64
    n_k = xp.sum(resp_t, axis=1, dtype=f64)  # accumulated in float64, no float64 copy
    if covariance_type == "tied":
        xct = stacked
        s1 = xp.astype(resp_t @ xp.matrix_transpose(xct), f64) if hasattr(xp, "matrix_transpose") \
            else (resp_t @ xct.T).astype(f64)
        xw = xct if weights is None else xct * weights
        xwt = xp.matrix_transpose(xw) if hasattr(xp, "matrix_transpose") else xw.T
        scatter = xp.astype(xct @ xwt, f64)
        s2 = xp.take(xp.reshape(scatter, (d * d,)), pairs[0] * d + pairs[1], axis=0)
        return {"n": n_k, "s1": s1, "s2": s2}
    st = xp.matrix_transpose(stacked) if hasattr(xp, "matrix_transpose") else stacked.T
    both = xp.astype(resp_t @ st, f64)  # ONE product gives first and second moments
    return {"n": n_k, "s1": both[:, :d], "s2": both[:, d:]}


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
def m_step_numpy(stats: dict, covariance_type: str, reg_covar: float, d: int, fixed_means_c=None):
    """Maximiser of the expected complete-data log-likelihood from float64 statistics.

    Matches scikit-learn's M-step: weights = n_k / sum n_k, means = s1 / n_k, covariances the
    responsibility-weighted scatter about the NEW means divided by n_k, plus ``reg_covar`` on the
    diagonal (n_k carries scikit-learn's + 10 eps so an empty component divides by a positive
    number). With ``fixed_means_c`` (centred means held fixed) the covariances are the scatter
    about those means, which is then the maximiser. Returns (weights, centred means,
    covariances, empty component indices)."""
    n = np.asarray(stats["n"], dtype=np.float64)
    s1 = np.asarray(stats["s1"], dtype=np.float64)
    s2 = np.asarray(stats["s2"], dtype=np.float64)
    nk = n + 10 * np.finfo(np.float64).eps
    weights = nk / nk.sum()
    means = s1 / nk[:, None]
    about = means if fixed_means_c is None else np.asarray(fixed_means_c, dtype=np.float64)
    # empty: no responsibility at all (relative to the data); such a component keeps its mean and
    # covariance (any value maximises Q for it) and gets weight ~ 0
    empty = np.flatnonzero(n <= 1e-12 * max(n.sum(), 1e-300))
    if covariance_type == "full":
        second = unpack_sym(s2, d)
        cross = s1[:, :, None] * about[:, None, :]
        scatter = second - cross - np.swapaxes(cross, 1, 2) + n[:, None, None] * about[:, :, None] * about[:, None, :]
        cov = scatter / nk[:, None, None]
        cov = 0.5 * (cov + np.swapaxes(cov, 1, 2))
        cov[:, np.arange(d), np.arange(d)] += reg_covar
    elif covariance_type == "tied":
        second = unpack_sym(s2, d)
        cross = s1.T @ about
        scatter = second - cross - cross.T + (about.T * n) @ about
        cov = scatter / nk.sum()
        cov = 0.5 * (cov + cov.T)
        cov[np.arange(d), np.arange(d)] += reg_covar
    else:
        var = (s2 - 2.0 * s1 * about + n[:, None] * about * about) / nk[:, None] + reg_covar
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
