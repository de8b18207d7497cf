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
  per-row outer products' upper triangles (D(D+1)/2 columns). Wide data (a cost model,
  ``Full.use_products``) take the whitened form and one weighted Gram product
  ``X^T diag(r_k) X`` per component instead (D x D products; D, not D^2 / 2, temporaries per row).
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
(conditional covariances included). They are computed for all missingness patterns at once
(:func:`missing_pass`): rows grouped by pattern, the precision's small missing blocks factorised
per (pattern, component) in stacked operations, one loop iteration per NUMBER of missing
entries, never per pattern.
"""

from __future__ import annotations

import functools
import math
import os
import threading
from typing import Any, Callable

import numpy as np

from emkit.core.arrays import to_numpy
from emkit.models import gaussian_compiled as _compiled
from emkit.models.covariance import (COVARIANCE_STRUCTURES, COVARIANCE_TYPES, LOG_2PI, WHITENED_BLOCK,
                                     SMALL_M_STEP_ENTRIES, CovarianceStructure, cholesky_or_raise, component_counts,
                                     pack_sym, triu_pairs, unpack_sym)

__all__ = ["COVARIANCE_STRUCTURES", "COVARIANCE_TYPES", "EXPANDED_MAX_ERROR", "LOG_2PI", "Prepared", "Scratch",
           "WHITENED_BLOCK", "MISSING_BLOCK_BYTES", "MISSING_STACKED_BLOCK_BYTES", "MissingPatterns", "MissingPrepared", "SMALL_SPD", "cholesky_or_raise",
           "expected_complete_loglik", "far_components", "log_joint_by_component", "m_step_numpy", "missing_pass",
           "missing_prepare", "pack_sym", "posterior_by_component", "spd_inverse_entries", "spd_inverse_logdet", "prepare", "reference_offsets", "reference_points",
           "stacked_rows", "triu_pairs", "unpack_sym"]

#: scalar float64 exp (no AVX-512): the E-step exponentiates only the live terms of the log
#: joint when fewer than this fraction of them are live (gather + exp + scatter against exp of
#: everything: 3.4 against 5.4 ns a value at 34 % live, 1.0 against 6.1 at 7 %)
SPARSE_EXP_MAX_LIVE = 0.5
#: ... and the log joint is taken less its row's largest term plus this (a power of two: no
#: argument of the exponential is 0, see ``posterior_by_component``)
SCALAR_EXP_SHIFT = 2.0**-20
#: a scratch array larger than this is allocated afresh each time (never kept alive)
WORKSPACE_MAX_BYTES = 24 * 2**20


def _vector_exp64() -> bool:
    """Whether numpy's float64 ``exp`` runs vectorised here (its AVX-512 kernel is dispatched;
    elsewhere it is scalar, ~10-30 ns a value). ``NPY_DISABLE_CPU_FEATURES`` is honoured."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:  # pragma: no cover - older or other numpy layouts
        try:
            from numpy.core._multiarray_umath import __cpu_features__ as features  # type: ignore[no-redef]
        except ImportError:
            return False
    if "X86_V4" in features:  # NumPy >= 2.4 dispatches by x86-64 level; a disabled level reads False
        return bool(features["X86_V4"])
    disabled = os.environ.get("NPY_DISABLE_CPU_FEATURES", "").replace(",", " ").split()
    if "AVX512F" in disabled or "AVX512_SKX" in disabled:
        return False
    return bool(features.get("AVX512F")) and bool(features.get("AVX512_SKX"))


#: numpy's float64 exp is vectorised on this CPU (see :func:`posterior_by_component`)
VECTOR_EXP64 = _vector_exp64()

def far_components(maha_means: np.ndarray, eps: float) -> np.ndarray:
    """Indices of the components whose statistics about the common centre would lose more
    than :func:`far_tolerance` of their variance to cancellation. ``maha_means`` (K,) is
    ``|m_k - center|^2`` in component k's metric, ``delta' Sigma_k^{-1} delta``: by
    Cauchy-Schwarz it is the largest ``(v . delta)^2 / v' Sigma_k v`` over directions ``v``, so
    ``eps * maha_means`` bounds the relative rounding error of every variance computed about
    the centre (a zero variance away from the centre gives infinity: far)."""
    maha = np.asarray(maha_means, dtype=np.float64)
    tolerance = far_tolerance(eps)
    if maha.size and eps * float(maha.max()) <= tolerance:  # the usual case: none (NaN fails this test)
        return _NO_FAR
    return np.flatnonzero(~(eps * maha <= tolerance))


#: no far component (the usual answer of :func:`far_components`)
_NO_FAR = np.zeros(0, dtype=np.intp)
_NO_FAR.flags.writeable = False


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


_CENTER_TOLERANCES: dict[bytes, np.ndarray] = {}


def _center_tolerance(center: np.ndarray) -> np.ndarray:
    """``4 ulp(|center|)``, the distance within which a reference point is the centre (see
    :func:`reference_offsets`), remembered for a few centres (a fit asks every iteration)."""
    key = center.tobytes()
    tol = _CENTER_TOLERANCES.get(key)
    if tol is None:
        if len(_CENTER_TOLERANCES) >= 64:
            _CENTER_TOLERANCES.clear()
        tol = _CENTER_TOLERANCES[key] = 4.0 * np.spacing(np.abs(center))
    return tol


def reference_offsets(stats: dict, center: np.ndarray | None = None) -> np.ndarray:
    """The reference points of statistics, ``ref / n`` (0 where n = 0).

    With ``center`` (D,), the centre of the E-step's common product, a component whose
    statistics were taken about it (every near one) gets it back exactly: ``(n c) / n``
    recovers it only to an ulp, and an ulp of a centre far from 0 can be a fair part of a
    tight component's spread (data at 1e12: 1.2e-4), which then moved its mean by that from
    one iteration to the next."""
    n = np.asarray(stats["n"], dtype=np.float64)
    ref = np.asarray(stats["ref"], dtype=np.float64)
    if n.size and n.min() > 0:  # the usual case: a plain division
        ref = ref / n[:, None]
    else:
        ref = np.divide(ref, n[:, None], out=np.zeros_like(ref), where=(n > 0)[:, None])
    if center is not None and ref.size:
        c = np.asarray(center, dtype=np.float64)
        at_center = np.asarray((np.abs(ref - c) <= _center_tolerance(c)).all(axis=1))
        if at_center.all():  # (ref is this function's own array: the division made it)
            ref[...] = c
        elif at_center.any():
            ref = np.where(at_center[:, None], c, ref)
    return ref


#: the expanded quadratic form is used when eps(dtype) * max_k |m_k - center|^2_{P_k} is below
#: this (its rounding error in a Mahalanobis term is about that much for rows near m_k)
EXPANDED_MAX_ERROR = 1e-4


# --------------------------------------------------------------------------- scratch memory
class Scratch:
    """Scratch memory of one model instance: reused chunk temporaries (one set per thread) and
    the cached per-parameter precomputations (shared by the threads: they are read-only).

    Chunk temporaries are a few MiB; allocating them afresh every chunk means fresh pages from
    the operating system (page faults) each time, which costs more than the arithmetic for
    small data. One set per thread (a :class:`threading.local`), so parallel chunks and
    threaded Dask workers never share one. A copy or an unpickled one starts empty.
    """

    __slots__ = ("local", "shared")

    def __init__(self) -> None:
        #: this thread's ``arrays`` (dict) live here
        self.local = threading.local()
        #: read-only things every thread may use: the per-parameter precomputations (name ->
        #: (key..., value)), built once per pass whichever thread needs them first
        self.shared: dict[str, Any] = {}

    def array(self, name: str, shape: tuple, dtype: Any, keep: bool = False) -> np.ndarray:
        """A NumPy array of ``shape`` and ``dtype`` reused across chunks and iterations by
        this thread (its contents are whatever the last user left). Beyond
        :data:`WORKSPACE_MAX_BYTES` a fresh array, unless ``keep`` (a buffer the size of the
        parameters, say, that every chunk would otherwise fault in afresh)."""
        size = math.prod(shape)
        dtype = np.dtype(dtype)
        if size * dtype.itemsize > WORKSPACE_MAX_BYTES and not keep:  # never keep a huge buffer alive
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
        self.shared = {}

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
    the precision Cholesky factors for the whitened form (float32 full, tied; diag and
    spherical with a tight component far from the centre: per coordinate, (K, D, 1))."""

    __slots__ = ("log_norm", "whiten_t", "shift", "coef", "center", "expanded", "maha_means", "products",
                 "min_variance")

    log_norm: Any
    whiten_t: Any
    shift: Any
    coef: Any
    center: Any
    expanded: Any
    maha_means: Any
    products: Any
    min_variance: Any

    def __init__(self):
        for s in self.__slots__:
            setattr(self, s, None)


def prepare(params: dict, structure: CovarianceStructure | str, center: np.ndarray, to_xp: Callable[[np.ndarray], Any],
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
    p.products = structure.use_products(d, k)  # the stacked rows carry the per-row products
    p.center = to_xp(center.reshape(d, 1))
    log_det, const = structure.prepare(p, _np(params["covariances"]), means_c, to_xp, eps, EXPANDED_MAX_ERROR)
    # p.maha_means: |m_k - center|^2 in component k's metric (NumPy (K,)), set by the structure
    p.log_norm = to_xp((log_w - 0.5 * d * LOG_2PI + log_det - 0.5 * const).reshape(k, 1))
    return p


def _np(x) -> np.ndarray:
    return x if type(x) is np.ndarray else to_numpy(x)


# --------------------------------------------------------------------------- complete-data kernels
def stacked_rows(xp: Any, X: Any, center_col: Any, structure: CovarianceStructure, pairs: Any, scratch: Scratch,
                 products: bool = True, out: np.ndarray | None = None) -> Any:
    """The chunk in component-major layout, with the per-row products the statistics need
    (the structure's layout: (D + T, rows) = [Xc^T; upper-triangle products] for full,
    (2D, rows) = [Xc^T; (Xc^2)^T] for diag / spherical, (D, rows) = Xc^T for tied).
    ``Xc = X - center`` (``center_col`` (D, 1)); ``products=False`` leaves out products that
    only the statistics need (log densities only). ``out`` (NumPy): the array to write them
    into, of the layout's shape, instead of this thread's reused workspace."""
    if xp is np:
        # NumPy: write everything into one C-ordered buffer (rows contiguous), no concatenation
        d = X.shape[1]
        extra = structure.stacked_extra(d, products)
        buf = scratch.array("stacked", (d + extra, X.shape[0]), X.dtype) if out is None else out
        np.subtract(X.T, center_col, out=buf[:d])
        if extra:
            structure.fill_products(buf, d)
        return buf
    xct = (xp.matrix_transpose(X) if hasattr(xp, "matrix_transpose") else X.T) - center_col
    return structure.stacked_xp(xp, xct, pairs, products)


def log_joint_by_component(xp: Any, stacked: Any, prep: Prepared, structure: CovarianceStructure, d: int,
                           scratch: Scratch) -> Any:
    """log p(x_i, z_i = k) of complete rows, component-major: (K, rows), data dtype."""
    if prep.expanded:
        if xp is np:
            out = np.matmul(prep.coef, stacked, out=scratch.array("log_joint", (prep.coef.shape[0], stacked.shape[1]),
                                                                  stacked.dtype))
            out += prep.log_norm
            return out
        return prep.coef @ stacked + prep.log_norm
    return structure.log_joint_whitened(xp, stacked[:d], prep, scratch)


_EMPTY = np.empty(0)


def posterior_by_component(xp: Any, log_joint: Any, scratch: Scratch, weights: Any = None,
                           row_loglik: bool = True) -> tuple[Any, Any]:
    """Responsibilities (K, rows) times the row weights, and the per-row log-likelihood (rows,)
    times the row weights, from a component-major log joint, by a fused, overflow-safe
    log-sum-exp. NumPy input is overwritten (it is a temporary of the caller).

    With ``row_loglik=False`` (NumPy, no weights) the second result is only the SUM of the
    per-row log-likelihoods, a float: computed as sum(top) + sum(log(prod of blocks of the
    per-row totals)), one log per 32 rows. Each total lies in [1, K] (from just below 1 with
    :data:`SCALAR_EXP_SHIFT`) so a block's product cannot overflow or underflow for K < 2**30
    in float64 (and the E-step only needs the sum).

    With Numba, NumPy input of two components or more goes through a compiled loop (of
    :mod:`emkit.models.gaussian_compiled`) where exp is scalar (float64 without AVX-512:
    ``posterior``, exp of the live terms only) and for float32 (``posterior_single``, a
    vectorised exp of every term, within 1 ulp of the exact one): the same result (dead terms
    exactly 0 for every K), in one fused pass per step."""
    # (one component: every responsibility is 1 and NumPy's few operations cost less than a
    # call; the compiled loop there also raised the peak memory of a wide fit, D = 5,000, by
    # 32 MiB, through the heap's layout)
    compiled_form = xp is np and log_joint.flags.c_contiguous and log_joint.shape[0] > 1 and (
        (log_joint.dtype == np.float64 and not VECTOR_EXP64) or log_joint.dtype == np.float32)
    compiled = _compiled.kernels() if compiled_form else None
    if xp is np:
        # Terms below eps / (16 K) of their row's largest add nothing representable to the row's
        # sum: they are left at exactly 0 (their responsibilities become 0 instead of
        # < eps / (16 K)); see below
        dead_below = math.log(np.finfo(log_joint.dtype).eps / (16 * log_joint.shape[0]))
    if compiled is not None:  # the same steps fused in one compiled loop per step
        n = log_joint.shape[1]
        top, total = (scratch.array(name, (n,), log_joint.dtype) for name in ("post_top", "post_total"))
        w = _EMPTY if weights is None else np.ascontiguousarray(weights, dtype=np.float64)
        row_ll = np.empty(n) if row_loglik else _EMPTY
        if log_joint.dtype == np.float32:
            loglik = compiled["posterior_single"](log_joint, top, total, scratch.array("post_bits", (n,), np.int32),
                                                  np.float32(dead_below), SCALAR_EXP_SHIFT, w, row_ll)
            return log_joint, (row_ll.astype(np.float32) if row_loglik else loglik)
        # the live terms' positions and arguments
        at, args = scratch.array("post_at", (n + 1,), np.intp), scratch.array("post_args", (n + 1,), log_joint.dtype)
        loglik = compiled["posterior"](log_joint, top, total, at, args, dead_below, SCALAR_EXP_SHIFT, w, row_ll)
        return log_joint, (row_ll if row_loglik else loglik)
    top = xp.max(log_joint, axis=0)
    if xp is np and log_joint.dtype == np.float64 and not VECTOR_EXP64:
        # scalar exp: the exact zeros (each row's largest term, at random positions) take
        # libm's branch for tiny arguments and are mispredicted (K = 3: 1.6 times the exp's
        # time); every argument is shifted below zero by a power of two instead
        top += SCALAR_EXP_SHIFT
    total_of_tops = float(xp.sum(top))
    top_sum: float | None = total_of_tops
    if not math.isfinite(total_of_tops):  # rows impossible under every component (-inf)
        top = xp.where(xp.isfinite(top), top, xp.zeros_like(top))
        top_sum = None
    if xp is np:
        k = log_joint.shape[0]
        # Dead terms (below ``dead_below``) stay exactly 0. Where numpy's float64 exp is scalar
        # (CPUs without AVX-512: ~4-7 ns a value) and most terms are such, only the live terms
        # are gathered, exponentiated and scattered back into zeros (then summed per row and
        # scaled as dense arrays): exp of the live terms only. Where it is vectorised
        # (AVX-512), exp of everything and a multiply by the mask cost less than any gather:
        # same result, the dead terms exactly 0. float32's exp is vectorised everywhere: no mask.
        # the exponentials' arguments, log p(x, k) less the row's top, for every term (one
        # broadcast subtraction, which runs without the interpreter lock, rather than a
        # gather of each live term's top by row, which holds it)
        log_joint -= top
        if log_joint.dtype == np.float64 and k >= 3 and not VECTOR_EXP64:
            live = log_joint > dead_below
            # counted first: the positions are only worth finding when few are live
            if np.count_nonzero(live) < SPARSE_EXP_MAX_LIVE * live.size:
                at = np.flatnonzero(live)  # C order (component-major), as log_joint's entries
                values = np.take(log_joint.reshape(-1), at)
                np.exp(values, out=values)
                e = log_joint if log_joint.flags.c_contiguous else scratch.array("exp", log_joint.shape, log_joint.dtype)
                e.fill(0.0)
                np.put(e.reshape(-1), at, values)
                # the per-row totals and scaling on the dense array: reductions over the
                # components and a broadcast product run without the interpreter lock (a
                # bincount and a gather by row hold it: two chunks on two threads wait on each
                # other); the same sums, in the same order (components in turn, zeros exact)
                total = e.sum(axis=0)
                with np.errstate(divide="ignore"):  # rows impossible under every component
                    scale = 1.0 / total if weights is None else weights / total
                if top_sum is None:  # such rows keep responsibilities 0, not 0 * inf
                    scale[total == 0] = 0.0
                e *= scale
                return e, _log_total(total, top, weights, row_loglik, top_sum)
        mask = log_joint > dead_below if k >= 4 and VECTOR_EXP64 and log_joint.dtype == np.float64 else None
        e = np.exp(log_joint, out=log_joint)
        if mask is not None:
            np.multiply(e, mask, out=e)
        total = e.sum(axis=0)
        loglik = _log_total(total, top, weights, row_loglik, top_sum)
        # one division per row, not per term
        np.multiply(e, np.reciprocal(total) if weights is None else weights / total, out=e)
        return e, loglik
    e = xp.exp(log_joint - top)
    total = xp.sum(e, axis=0)
    row_ll = xp.log(total) + top
    if weights is not None:
        e, row_ll = e * (weights / total), row_ll * weights
    else:
        e = e / total
    return e, (row_ll if row_loglik else float(xp.sum(row_ll, dtype=xp.float64)))


def _log_total(total: np.ndarray, top: np.ndarray, weights: Any, row_loglik: bool, top_sum: float | None = None) -> Any:
    """The per-row log-likelihoods log(total) + top (times the row weights), or their sum
    (``row_loglik=False``; ``top_sum``, top's sum when the caller has it): without weights, in
    float64, one log per 32 rows. Each total lies in [1, K] (from just below 1 with
    :data:`SCALAR_EXP_SHIFT`), so a product of 32 of them cannot overflow for K < 2**30; they
    are multiplied by halving the array five times (contiguous products of halves: a reduction
    along 32-element rows costs several times more)."""
    if not row_loglik and weights is None and total.dtype == np.float64:
        products, rest = total, []
        for _ in range(5):
            half = products.shape[0] // 2
            if half == 0:
                break
            if products.shape[0] % 2:  # the odd one out is logged on its own
                rest.append(products[-1])
            products = products[:half] * products[half:2 * half]
        logged = float(np.log(products).sum()) + (float(np.log(rest).sum()) if rest else 0.0)
        return logged + (float(top.sum()) if top_sum is None else top_sum)
    row_ll = np.log(total)
    row_ll += top
    if weights is not None:
        row_ll *= weights
    return row_ll if row_loglik else float(np.sum(row_ll, dtype=np.float64))


# --------------------------------------------------------------------------- missing values
#: the batched missing-value E-step works on blocks of rows whose (K, rows, D) temporaries
#: take at most about this many bytes each (the general dense form)
MISSING_BLOCK_BYTES = 2 * 2**20
#: ... and the forms on stacked rows (products, shared covariance, diagonal) on blocks of this
#: many bytes of stacked rows: per block they run a few hundred small operations (per group of
#: patterns, per missing column) whose fixed cost and hold on the interpreter limit two threads
#: side by side (products form, 200,000 x 16, K = 16, float32, two chunks on two threads:
#: 2 MiB blocks 0.197 s a pass, 8 MiB 0.141-0.150 s)
MISSING_STACKED_BLOCK_BYTES = 4 * MISSING_BLOCK_BYTES
#: the products form of the dense missing-value E-step is used up to this many features
MISSING_PRODUCTS_MAX_D = 64


class MissingPatterns:
    """The rows of a chunk that have missing values, grouped by missingness pattern.

    Rows are sorted by (number of missing entries, pattern), so that the rows of a pattern, and
    the patterns with the same number ``j`` of missing entries, are contiguous:

    * ``order`` (r,): the chunk row at each sorted position;
    * ``row_pattern`` (r,): the pattern of each sorted row (patterns numbered in sorted order);
    * ``starts`` (P + 1,): where each pattern's rows begin in the sorted order;
    * ``n_observed`` (P,): the observed entries of each pattern;
    * ``groups``: one ``(j, p0, p1, missing)`` per distinct ``j``: patterns ``p0:p1``, whose
      missing columns are the rows of ``missing`` (P_j, j), ascending.

    Nothing here loops over patterns in Python: the loop is over the distinct counts ``j``.
    """

    __slots__ = ("order", "row_pattern", "starts", "n_observed", "groups", "mask", "plans")

    def __init__(self, mask: np.ndarray):
        mask = np.asarray(mask, dtype=bool)
        r, d = mask.shape
        n_missing = np.count_nonzero(mask, axis=1)
        if d <= 56:  # one sort on (number missing, pattern bits) packed into an integer
            packed = np.packbits(mask, axis=1, bitorder="little")
            wide = np.zeros((r, 8), dtype=np.uint8)
            wide[:, :packed.shape[1]] = packed
            key = wide.view("<u8").ravel() | (n_missing.astype(np.uint64) << np.uint64(d))
            self.order = np.argsort(key, kind="stable")
            sorted_key = key[self.order]
            first = np.concatenate([[0], np.flatnonzero(sorted_key[1:] != sorted_key[:-1]) + 1]) if r else \
                np.zeros(0, dtype=np.intp)
        else:
            packed = np.packbits(mask, axis=1)
            _, inverse = np.unique(packed, axis=0, return_inverse=True)
            inverse = np.asarray(inverse).ravel()
            self.order = np.lexsort((inverse, n_missing))
            sorted_inverse = inverse[self.order]
            first = np.concatenate([[0], np.flatnonzero(sorted_inverse[1:] != sorted_inverse[:-1]) + 1]) if r else \
                np.zeros(0, dtype=np.intp)
        flags = np.zeros(r, dtype=np.intp)
        flags[first[1:]] = 1
        self.row_pattern = np.cumsum(flags)
        self.starts = np.concatenate([first, [r]])
        self.mask = mask[self.order[first]]
        n_missing = n_missing[self.order[first]]
        self.n_observed = d - n_missing
        edges = np.concatenate([[0], np.flatnonzero(np.diff(n_missing)) + 1, [len(n_missing)]])
        #: index work of the E-step that depends on the missingness pattern only (the block
        #: layouts of :func:`_block_plan`, keyed by their rows, and the scatter positions of
        #: :func:`_upper_positions`, under "upper"), kept for the next pass over the same rows
        self.plans: dict = {}
        self.groups = []
        for p0, p1 in zip(edges[:-1].tolist(), edges[1:].tolist()):
            j = int(n_missing[p0])
            missing = np.nonzero(self.mask[p0:p1])[1].reshape(p1 - p0, j)
            self.groups.append((j, p0, p1, missing))


class MissingPrepared:
    """What the batched missing-value E-step needs from one parameter value (NumPy).

    ``diagonal``: the structure's covariances are diagonal (``missing_variances`` gave the
    variances ``var`` (K, D)): coordinates are independent given the component, and the
    log-density of the observed coordinates is one product on the stacked rows
    ``[x_0; x_0^2; o]`` (``coef`` (K, 3D), ``x_0`` the centred row with 0 for a missing entry,
    ``o`` the observed indicator). Otherwise ``prec`` (K', D, D) the precision matrices (K' = 1
    when every component has the same covariance) and ``log_det_cov`` (K',), float64, and
    ``prec_w`` / ``means_w`` in the working dtype ``dtype`` of the per-row arithmetic.
    ``expanded``: the dense form takes the products of the observed entries (the layout of the
    complete rows, ``coef`` (K, D + T)) and corrects for the few missing entries per row, instead
    of (K, rows, D) temporaries; used when its rounding error, ``eps * max_k m_k' Lambda_k m_k``,
    is at most :data:`EXPANDED_MAX_ERROR` and D <= :data:`MISSING_PRODUCTS_MAX_D`.
    ``shared``: one covariance for all components whose statistics are summed over them (the
    structure's ``per_component`` is False): ``coef`` (K, D) is then the linear part only."""

    __slots__ = ("diagonal", "expanded", "shared", "log_w", "means_c", "dtype", "var", "coef", "prec", "prec_w",
                 "means_w", "log_det_cov", "prec_means", "maha_means")

    diagonal: Any
    expanded: Any
    shared: Any
    log_w: Any
    means_c: Any
    dtype: Any
    var: Any
    coef: Any
    prec: Any
    prec_w: Any
    means_w: Any
    log_det_cov: Any
    prec_means: Any
    maha_means: Any

    def __init__(self):
        for s in self.__slots__:
            setattr(self, s, None)


def missing_prepare(params: dict, structure: CovarianceStructure, center: np.ndarray, dtype: Any) -> MissingPrepared:
    """The per-parameter precomputation of :func:`missing_pass` for data of ``dtype``.

    Per-row arithmetic runs in the data's dtype when its rounding allows: float32 is used for
    the dense form when ``eps32 * cond(Sigma_k)`` is at most :data:`EXPANDED_MAX_ERROR` for every
    component (the Mahalanobis term of the observed coordinates is a difference of two terms
    at most ``cond`` times larger), float64 otherwise."""
    dtype = np.dtype(dtype)
    if dtype.kind != "f" or dtype.itemsize < 4:
        dtype = np.dtype(np.float64)
    weights = np.asarray(_np(params["weights"]), dtype=np.float64)
    means_c = np.asarray(_np(params["means"]), dtype=np.float64) - center
    cov = _np(params["covariances"])
    k, d = means_c.shape
    p = MissingPrepared()
    with np.errstate(divide="ignore"):
        p.log_w = np.log(weights)
    p.means_c = means_c
    var = structure.missing_variances(cov, k, d)
    if var is not None:
        var = np.asarray(var, dtype=np.float64)
        if not np.all(var > 0):
            structure.precision_cholesky(cov)  # the structure's own message
            raise ValueError("a variance is not positive; increase reg_covar")
        prec = 1.0 / var
        p.diagonal, p.var, p.dtype = True, var, dtype
        p.coef = np.concatenate([means_c * prec, -0.5 * prec, -0.5 * (LOG_2PI + np.log(var) + means_c ** 2 * prec)],
                                axis=1).astype(dtype)
        return p
    covs = np.asarray(structure.full_matrices(cov, k, d), dtype=np.float64)
    if k > 1 and np.array_equal(covs, np.broadcast_to(covs[:1], covs.shape)):
        covs = covs[:1]  # one covariance for all (tied): the per-pattern work is done once
    chol = cholesky_or_raise(covs, "covariance")
    inv_chol = np.tril(np.linalg.inv(chol))
    prec = np.swapaxes(inv_chol, 1, 2) @ inv_chol
    prec = 0.5 * (prec + np.swapaxes(prec, 1, 2))
    p.diagonal, p.prec = False, prec
    p.log_det_cov = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
    if dtype.itemsize < 8:
        if d <= 64:
            ev = np.linalg.eigvalsh(covs)
            cond = float(np.max(ev[:, -1] / ev[:, 0]))
        else:  # an upper bound: lambda_max <= trace, 1 / lambda_min <= trace of the precision
            cond = float(np.max(np.trace(covs, axis1=1, axis2=2) * np.trace(prec, axis1=1, axis2=2)))
        if not float(np.finfo(dtype).eps) * cond <= EXPANDED_MAX_ERROR:
            dtype = np.dtype(np.float64)
    p.dtype = dtype
    p.prec_w = prec.astype(dtype)
    p.means_w = means_c.astype(dtype)
    p.prec_means = (prec @ means_c[:, :, None])[:, :, 0]  # (K, D) (broadcast over K' = 1)
    p.maha_means = np.sum(p.prec_means * means_c, axis=1)
    p.expanded = d <= MISSING_PRODUCTS_MAX_D and \
        float(np.finfo(dtype).eps) * float(np.max(p.maha_means, initial=0.0)) <= EXPANDED_MAX_ERROR
    p.shared = not structure.per_component and prec.shape[0] == 1
    if p.expanded and p.shared:
        p.coef = np.ascontiguousarray(p.prec_means.astype(dtype))
    elif p.expanded:
        rows, cols = triu_pairs(d)
        quad = np.broadcast_to(prec[:, rows, cols] * np.where(rows == cols, -0.5, -1.0), (k, len(rows)))
        p.coef = np.concatenate([p.prec_means, quad], axis=1).astype(dtype)
    return p


#: stacks of SPD matrices up to this size are factorised by vectorised formulas (one NumPy call
#: per matrix entry for the whole stack); larger ones by numpy.linalg (one LAPACK call each)
SMALL_SPD = 8


def spd_inverse_logdet(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverses and log-determinants of a stack ``a`` (..., j, j) of symmetric positive definite
    matrices (float64); see :func:`spd_inverse_entries`, which this wraps."""
    j = a.shape[-1]
    entries = np.moveaxis(np.moveaxis(a, -1, 0), -1, 0)  # (j, j, ...)
    inv, logdet = spd_inverse_entries(entries)
    return np.moveaxis(np.moveaxis(inv, 0, -1), 0, -1) if j else inv, logdet


def spd_inverse_entries(a: np.ndarray, packed: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Inverses and log-determinants of symmetric positive definite matrices stored entry-major:
    ``a`` (j, j, ...) holds entry (p, q) of every matrix of the stack in ``a[p, q]`` (float64);
    returns ``(inverses (j, j, ...), log-determinants (...))``, or with ``packed`` the inverses'
    upper triangles ``(T, ...)``, T = j (j + 1) / 2, in ``triu_pairs(j)``'s order.

    numpy.linalg calls LAPACK once per matrix, about a microsecond each: for the many tiny
    matrices of the missing-value E-step the Cholesky factor and its inverse are written out
    entry by entry instead (up to :data:`SMALL_SPD`, and from a batch of ``16 (j + 2)``
    matrices, where that is measured to be faster), each entry one contiguous operation on the
    whole stack. Raises ``numpy.linalg.LinAlgError`` when a matrix is not positive definite."""
    j = a.shape[0]
    batch = a.shape[2:]
    if j == 0:
        return np.zeros((0,) + batch if packed else (0, 0) + batch), np.zeros(batch)
    if j > SMALL_SPD or (j > 1 and math.prod(batch) < 16 * (j + 2)):
        # LAPACK, one call per matrix (~1 us): for large matrices, and for a few small ones,
        # where the entry-by-entry formulas (~j^3 / 2 NumPy calls whatever the batch) cost more
        stack = np.moveaxis(np.moveaxis(a, 0, -1), 0, -1)  # (..., j, j)
        chol = np.linalg.cholesky(stack)
        if not np.all(np.isfinite(chol)):  # LAPACK lets NaN through
            raise np.linalg.LinAlgError("not positive definite")
        logdet = 2.0 * np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(axis=-1)
        inv = np.linalg.inv(stack)
        inv = 0.5 * (inv + np.swapaxes(inv, -1, -2))
        inv = np.moveaxis(np.moveaxis(inv, -1, 0), -1, 0)
        return (inv[triu_pairs(j)] if packed else inv), logdet
    if j == 1:
        v = a[0, 0]
        if not np.all(v > 0):
            raise np.linalg.LinAlgError("not positive definite")
        return (1.0 / v)[None] if packed else (1.0 / v)[None, None], np.log(v)
    low: list[list[Any]] = [[None] * j for _ in range(j)]  # the Cholesky factor L, entry by entry
    inv_low: list[list[Any]] = [[None] * j for _ in range(j)]  # M = L^{-1}, lower triangular
    pivots = np.empty((j,) + batch)  # the squared diagonal of L
    tmp = np.empty(batch)
    # a matrix that is not positive definite gives a pivot <= 0 (or NaN) and NaN after it: the
    # pivots are checked once at the end instead of after every column
    with np.errstate(invalid="ignore", divide="ignore"):
        for c in range(j):
            s = pivots[c]
            s[...] = a[c, c]
            for t in range(c):
                s -= np.multiply(low[c][t], low[c][t], out=tmp)
            low[c][c] = np.sqrt(s)
            inv_low[c][c] = inv_diag = 1.0 / low[c][c]
            for r in range(c + 1, j):
                v = a[r, c].copy()
                for t in range(c):
                    v -= np.multiply(low[r][t], low[c][t], out=tmp)
                v *= inv_diag
                low[r][c] = v
        if not np.all(pivots > 0):
            raise np.linalg.LinAlgError("not positive definite")
        for c in range(j):
            for r in range(c + 1, j):
                v = low[r][c] * inv_low[c][c]
                for t in range(c + 1, r):
                    v += np.multiply(low[r][t], inv_low[t][c], out=tmp)
                v *= -inv_low[r][r]
                inv_low[r][c] = v
    # one log of the product of the pivots instead of j logs (a float64 log is scalar code on
    # CPUs without AVX-512), unless the product leaves the normal range
    product = pivots[0].copy()
    with np.errstate(over="ignore", under="ignore"):
        for c in range(1, j):
            product *= pivots[c]
    if np.all(product >= np.finfo(np.float64).tiny) and np.all(product <= np.finfo(np.float64).max):
        logdet = np.log(product)
    else:
        logdet = np.log(pivots).sum(axis=0)
    out = np.empty((j * (j + 1) // 2,) + batch if packed else a.shape)
    pos = 0
    for p in range(j):  # A^{-1} = M' M: entry (p, q) = sum over t >= max(p, q) of M[t, p] M[t, q]
        for q in range(p, j):
            v = np.multiply(inv_low[q][p], inv_low[q][q], out=out[pos] if packed else out[p, q])
            for t in range(q + 1, j):
                v += np.multiply(inv_low[t][p], inv_low[t][q], out=tmp)
            if packed:
                pos += 1
            else:
                out[q, p] = v
    return out, logdet


#: a stack of matrices whose entries hold at most this many numbers each is multiplied by
#: broadcasting (three NumPy calls) rather than entry by entry (2 j^2 calls): the few patterns
#: with many missing entries (D = 16, 10 % missing: j = 6, 57 rows, K = 16: 16 us against 39)
BROADCAST_MATVEC_MAX = 2048


def _matvec_entries(h: np.ndarray, y: np.ndarray, packed: bool = False, out: np.ndarray | None = None) -> np.ndarray:
    """``w[a] = sum_b h[a, b] y[b]`` for entry-major stacks ``h`` (j, j, ...) (with ``packed``,
    symmetric ones as their upper triangles (T, ...) in ``triu_pairs(j)``'s order) and ``y``
    (j, ...), into ``out`` (j, ...) when given."""
    j = y.shape[0]
    if j > SMALL_SPD and not packed:
        return np.einsum("ab...,b...->a...", h, y, out=out)
    entry_shape = h.shape[1:] if packed else h.shape[2:]
    shape = np.broadcast_shapes(entry_shape, y.shape[1:])
    if j >= 3 and math.prod(shape) <= BROADCAST_MATVEC_MAX:
        full = h[_full_index(j)].reshape((j, j) + entry_shape) if packed else h
        return np.sum(full * y[None], axis=1, out=out)
    w = np.empty((j,) + shape, dtype=y.dtype) if out is None else out
    tmp = np.empty(w.shape[1:], dtype=np.result_type(h.dtype, y.dtype)) if j > 1 else None
    # where entry (a, b) of each matrix is in h
    at = _packed_index(j) if packed else [[(a, b) for b in range(j)] for a in range(j)]
    for a in range(j):
        np.multiply(h[at[a][0]], y[0], out=w[a])
        for b in range(1, j):
            w[a] += np.multiply(h[at[a][b]], y[b], out=tmp)  # no new array per term
    return w


@functools.lru_cache(maxsize=32)
def _full_index(j: int) -> np.ndarray:
    """(j * j,): where entry (a, b) of a symmetric j x j matrix (row-major) sits in its upper
    triangle packed in ``triu_pairs(j)``'s order."""
    at = _packed_index(j)
    return np.array([at[a][b] for a in range(j) for b in range(j)], dtype=np.intp)


@functools.lru_cache(maxsize=32)
def _packed_index(j: int) -> tuple[tuple[int, ...], ...]:
    """``at[a][b]``: where entry (a, b) of a symmetric j x j matrix sits in its upper triangle
    packed in ``triu_pairs(j)``'s order."""
    at = [[0] * j for _ in range(j)]
    for t, (a, b) in enumerate(zip(*(idx.tolist() for idx in triu_pairs(j)))):
        at[a][b] = at[b][a] = t
    return tuple(tuple(row) for row in at)


def _pattern_terms(mp: MissingPrepared, pats: MissingPatterns, products: bool = False, packed: bool = False):
    """Per (component, pattern) constants of the observed log-density, (K, P) float64, and per
    group of patterns (j missing entries, P_j patterns): the inverses of the precisions'
    missing blocks ``(Lambda_k,mm)^{-1}``, the conditional covariances of the missing entries,
    entry-major (j, j, K', P_j) (see :func:`spd_inverse_entries`), or with ``packed`` their
    upper triangles (T, K', P_j) in ``triu_pairs(j)``'s order.

    With ``products`` (the products form) the constant also holds ``-(m*o)' Lambda (m*o) / 2``
    (``m*o`` the mean with its missing entries set to 0) and each group's entry is
    ``(inverses, means_m, shift_m)`` with ``means_m`` (K, j, P_j) the means' missing entries and
    ``shift_m = (Lambda (m*o))_m`` (K, j, P_j), so that ``y_m = (Lambda x_0)_m - shift_m``."""
    k = len(mp.log_w)
    kk = mp.prec.shape[0]
    log_det_mm = np.zeros((kk, len(pats.n_observed)))
    const = np.zeros((k, len(pats.n_observed)))
    d = mp.prec.shape[1]
    prec_flat = mp.prec.reshape(kk, d * d)
    groups: list[Any] = []
    compiled = _compiled.kernels() if (products and packed) else None
    prec_means = np.ascontiguousarray(mp.prec_means) if compiled is not None else None  # (K, D)
    for j, p0, p1, missing in pats.groups:
        if j == 0:
            groups.append(None)
            if products:
                const[:, p0:p1] = -0.5 * mp.maha_means[:, None]
            continue
        if compiled is not None:
            p_j = p1 - p0
            inv = np.empty((j * (j + 1) // 2, kk, p_j))
            means_m, shift_m, c2 = np.empty((k, j, p_j)), np.empty((k, j, p_j)), np.empty((k, p_j))
            log_det = np.empty((kk, p_j))
            if not compiled["pattern_terms"](mp.prec, mp.means_c, prec_means, np.ascontiguousarray(missing), inv,
                                             log_det, means_m, shift_m, c2):
                raise ValueError("a covariance is numerically singular for a missingness pattern; increase "
                                 "reg_covar or rescale the data")
            log_det_mm[:, p0:p1] = log_det
            const[:, p0:p1] = -0.5 * (mp.maha_means[:, None] + c2)
            groups.append((inv, means_m, shift_m))
            continue
        cols = missing.T  # (j, P_j)
        entries = _block_entries(cols, d)
        # (j, j, K', P_j), a view of a (K', j, j, P_j) gather: every entry (K', P_j) contiguous in P_j
        block = np.take(prec_flat, entries, axis=1).transpose(1, 2, 0, 3)
        try:
            inv, log_det_mm[:, p0:p1] = spd_inverse_entries(block, packed)  # (j, j, K', P_j) or (T, K', P_j)
        except np.linalg.LinAlgError:
            raise ValueError("a covariance is numerically singular for a missingness pattern; increase "
                             "reg_covar or rescale the data") from None
        if not products:
            groups.append(inv)
            continue
        means_m = np.take(mp.means_c, cols, axis=1)  # (K, j, P_j)
        prec_means_m = np.take(mp.prec_means, cols, axis=1)
        lam_mu = _matvec_entries(block, np.moveaxis(means_m, 1, 0)).swapaxes(0, 1)  # Lambda_mm m_m, (K, j, P_j)
        # (m*o)' Lambda (m*o) = m' Lambda m - 2 m_m' (Lambda m)_m + m_m' Lambda_mm m_m
        c2 = mp.maha_means[:, None] + np.sum(means_m * (lam_mu - 2.0 * prec_means_m), axis=1)
        const[:, p0:p1] = -0.5 * c2
        groups.append((inv, means_m, prec_means_m - lam_mu))
    # log det Sigma_oo = log det Sigma + log det Lambda_mm
    const += mp.log_w[:, None] - 0.5 * (pats.n_observed[None, :] * LOG_2PI + mp.log_det_cov[:, None] + log_det_mm)
    return const, groups


def missing_pass(x: np.ndarray, mp: MissingPrepared, center: np.ndarray, scratch: Scratch, *,
                 weights: np.ndarray | None = None, offsets: np.ndarray | None = None,
                 far: np.ndarray | None = None, mode: str = "stats", block_rows: int | None = None,
                 rows: np.ndarray | None = None, patterns: MissingPatterns | None = None) -> Any:
    """The E-step of rows with missing values (NumPy, NaN = missing), all patterns at once.

    Rows are grouped by pattern (:class:`MissingPatterns`). Dense covariances use the precision
    matrix Lambda_k: with ``z = (x - m_k)`` set to 0 at the missing entries and ``y = Lambda_k z``,
    the Mahalanobis term of the observed coordinates is ``z'y - y_m' (Lambda_k,mm)^{-1} y_m``,
    ``log det Sigma_k,oo = log det Sigma_k + log det Lambda_k,mm``, the conditional mean of the
    missing entries is ``m_k,m - (Lambda_k,mm)^{-1} y_m`` and their conditional covariance
    ``(Lambda_k,mm)^{-1}``: only the small missing blocks are factorised, per (pattern,
    component), in one stacked computation per number of missing entries; the per-row work is
    stacked products over blocks of rows (:func:`_missing_products`, or :func:`_missing_dense`
    when the products form would round too much). Diagonal covariances need no factorisation
    at all (:func:`_missing_diagonal`).

    ``mode``: ``"stats"`` returns ``(n (K,), s1 (K, D), second (K, D, D), loglik)``, float64,
    the statistics about the reference points ``center + offsets`` (K, D) (``second`` the
    second moments with the conditional covariances, to be packed by the structure's
    ``pack_second``; ``far``: the components whose offsets are not 0);
    ``"log_joint"`` returns log p(x_o, z = k), (r, K); ``"impute"`` returns the centred
    conditional expectations E[x | x_o], (r, D) float64. ``block_rows`` caps the rows of a
    block (by default blocks hold about :data:`MISSING_BLOCK_BYTES` of temporaries each).
    ``rows``: the rows of ``x`` (and ``weights``) to take (default all); results are in
    their order. ``patterns``: the :class:`MissingPatterns` of those rows, when the caller has
    them already."""
    r, d = x.shape if rows is None else (len(rows), x.shape[1])
    k = len(mp.log_w)
    wd = mp.dtype
    pats = patterns if patterns is not None else MissingPatterns(np.isnan(x if rows is None else x[rows]))
    order = pats.order if rows is None else np.asarray(rows)[pats.order]
    xs = np.subtract(np.take(x, order, axis=0), center.astype(x.dtype), dtype=wd)
    missing = np.isnan(xs)
    np.copyto(xs, 0.0, where=missing)
    obs = ~missing
    ws = None if weights is None else np.asarray(np.take(weights, order), dtype=wd)
    if offsets is None:
        offsets = np.zeros((k, d))
    far = np.zeros(0, dtype=int) if far is None else np.asarray(far, dtype=int)
    cap = r if block_rows is None else max(64, int(block_rows))
    if mp.diagonal:
        out = _missing_diagonal(xs, obs, mp, scratch, ws, offsets, far, mode, cap)
    elif mp.expanded and mp.shared:
        out = _missing_shared(xs, obs, mp, pats, scratch, ws, offsets, far, mode, cap)
    elif mp.expanded:
        out = _missing_products(xs, obs, mp, pats, scratch, ws, offsets, far, mode, cap)
    else:
        out = _missing_dense(xs, obs, mp, pats, scratch, ws, offsets, mode, cap)
    if mode == "stats":
        return out
    back = np.empty_like(out)
    back[pats.order] = out
    return back


def _block_entries(cols: np.ndarray, d: int) -> np.ndarray:
    """(j, j, P): the flat position in a D x D matrix of entry (a, b) of each pattern's block
    at rows and columns ``cols`` (j, P) (its missing entries)."""
    return cols[:, None, :] * d + cols[None, :, :]


def _scatter_positions(k: int, d: int, pos: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(K, D, D): ``weights[c]`` (any shape, raveled) summed at the flat positions ``pos`` of
    component c's matrix (one ``bincount`` per component: a few times faster than one over all
    components, whose bins do not stay in the first-level cache)."""
    out = np.empty((k, d * d))
    for c in range(k):
        out[c] = np.bincount(pos, weights=weights[c].ravel(), minlength=d * d)
    return out.reshape(k, d, d)


def _scatter_blocks(k: int, d: int, cols: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(K, D, D): blocks ``weights`` (K, j, j, P) added at rows and columns ``cols`` (j, P) of
    each component's matrix."""
    return _scatter_positions(k, d, _block_entries(cols, d).ravel(), weights)


def _upper_positions(pats: MissingPatterns, d: int) -> tuple[np.ndarray, dict]:
    """Where the upper triangles of every pattern's missing block go in a D x D matrix:
    ``(pos, at)``, ``pos`` the flat positions of all groups' entries one after another (group
    by group, (T_j, P_j) each, entries ``triu_pairs(j)`` of each pattern's block at its
    missing rows and columns, a <= b) and ``at[group] = (start, T_j, P_j)``. Kept on ``pats``."""
    got = pats.plans.get("upper")
    if got is not None:
        return got
    parts, at, start = [], {}, 0
    for gi, (j, p0, p1, missing) in enumerate(pats.groups):
        if j == 0:
            continue
        a_idx, b_idx = triu_pairs(j)
        cols = missing.T  # (j, P_j), ascending per pattern: cols[a] <= cols[b] for a <= b
        parts.append((cols[a_idx] * d + cols[b_idx]).ravel())
        at[gi] = (start, len(a_idx), p1 - p0)
        start += parts[-1].size
    got = (np.concatenate(parts) if parts else np.zeros(0, dtype=np.intp)), at
    pats.plans["upper"] = got
    return got


def _segment(buf: np.ndarray, start: int, t: int, p: int) -> np.ndarray:
    """The columns ``start:start + t p`` of a C-ordered (K, total) ``buf`` as a writeable
    (K, t, p) view."""
    size = buf.itemsize
    return np.lib.stride_tricks.as_strided(buf[:, start:], shape=(buf.shape[0], t, p),
                                           strides=(buf.strides[0], p * size, size))


def _mirror_upper(half: np.ndarray) -> np.ndarray:
    """(K, D, D) symmetric matrices from sums ``half`` of upper-triangle entries (a <= b)."""
    out = half + np.swapaxes(half, 1, 2)
    diag = np.arange(half.shape[1])
    out[:, diag, diag] -= half[:, diag, diag]  # the diagonal entries were counted twice
    return out


def _missing_dense(xs, obs, mp: MissingPrepared, pats: MissingPatterns, scratch: Scratch, ws, offsets, mode, cap):
    """The dense form with (K, rows, D) temporaries: ``z``, ``y = Lambda_k z`` and the conditional
    means per component (used when the products form would round too much, or D is large)."""
    r, d = xs.shape
    k = len(mp.log_w)
    wd = mp.dtype
    f64 = np.float64
    const, inverses = _pattern_terms(mp, pats)
    obs_w = obs.astype(wd)
    shift = (mp.means_c - offsets).astype(wd)[:, None, :]
    step = min(cap, max(64, MISSING_BLOCK_BYTES // (k * d * wd.itemsize)))
    n, s1 = np.zeros(k), np.zeros((k, d))
    second = np.zeros((k, d, d))
    per_pattern = np.zeros((k, len(pats.n_observed)))
    loglik = 0.0
    out: Any = np.empty((r, k) if mode == "log_joint" else (r, d)) if mode != "stats" else None
    starts = pats.starts
    for b0 in range(0, r, step):
        b1 = min(r, b0 + step)
        m = b1 - b0
        z = np.subtract(xs[None, b0:b1], mp.means_w[:, None, :], out=scratch.array("miss_z", (k, m, d), wd))
        z *= obs_w[None, b0:b1]
        y = np.matmul(z, mp.prec_w, out=scratch.array("miss_y", (k, m, d), wd))
        yf = y.reshape(k, m * d)
        parts = []
        for (j, p0, p1, missing), inv in zip(pats.groups, inverses):
            l0, l1 = max(int(starts[p0]), b0), min(int(starts[p1]), b1)
            if j == 0 or l0 >= l1:
                continue
            span = _row_span(pats, p0, l0, l1)
            flat = _per_row(missing.T, span) + np.arange(l0 - b0, l1 - b0) * d  # (j, rows) in (m, d)
            y_m = yf[:, flat].transpose(1, 0, 2)  # (j, K, rows)
            h = _per_row(inv, span).astype(wd, copy=False)  # (j, j, K', rows)
            w = _matvec_entries(h, y_m)
            parts.append((l0 - b0, l1 - b0, flat, w, np.sum(w * y_m, axis=0)))
        q = np.einsum("kmd,kmd->km", z, y)  # z' Lambda z, (K, m)
        for a0, a1, _, _, corr in parts:
            q[:, a0:a1] -= corr
        block_span = _row_span(pats, 0, b0, b1)
        lj = _per_row(const, block_span).astype(wd)  # a copy: const may be a view
        q *= 0.5
        lj -= q
        if mode == "log_joint":
            out[b0:b1] = lj.T
            continue
        resp, ll = posterior_by_component(np, lj, scratch, None if ws is None else ws[b0:b1], row_loglik=False)
        loglik += ll
        # conditional expectations about the reference points: x_o - a at the observed entries,
        # m_m - a_m - (Lambda_mm)^{-1} y_m at the missing ones
        z += shift
        zf = z.reshape(k, m * d)
        for _, _, flat, w, _ in parts:
            zf[:, flat] -= w.transpose(1, 0, 2)
        if mode == "impute":
            out[b0:b1] = np.einsum("km,kmd->md", resp, z)
            continue
        n += component_counts(np, resp)
        s1 += np.matmul(resp[:, None, :], z)[:, 0].astype(f64)
        zr = np.multiply(z, resp[:, :, None], out=y)
        second += np.matmul(np.swapaxes(zr, 1, 2), z).astype(f64)
        per_pattern[:, block_span[0]:block_span[1]] += _sum_per_pattern(resp, block_span)
    if mode != "stats":
        return out
    # the conditional covariances: sum over patterns of (their responsibilities) x (Lambda_mm)^{-1}
    for (j, p0, p1, missing), inv in zip(pats.groups, inverses):
        if j:
            second += _scatter_blocks(k, d, missing.T, per_pattern[:, None, None, p0:p1] * np.moveaxis(inv, 2, 0))
    return n, s1, second, loglik


#: up to this many features the products form of the missing-value E-step takes the missing
#: entries' moments from dense (K, rows, D) blocks (cost ~ D^2 per row) rather than per-row
#: (K, j, j) outer products summed per pattern (cost ~ j^2 per row, but many small operations)
DENSE_MISSING_MOMENTS_MAX_D = 8  # D = 16, K = 16, 10 % missing: per pattern 43 ms a pass, dense 52 (20,000 rows)


def _row_span(pats: MissingPatterns, p0: int, l0: int, l1: int) -> tuple[int, int, np.ndarray | None]:
    """Where the sorted rows ``l0:l1`` take their per-pattern values: ``(lo, hi, counts)``, the
    patterns ``p0 + lo .. p0 + hi - 1`` and the rows of each (None: one row each). Every pattern
    between the first and the last row's has rows there (rows are sorted by pattern)."""
    lo, hi = int(pats.row_pattern[l0]) - p0, int(pats.row_pattern[l1 - 1]) - p0 + 1
    if hi - lo == l1 - l0:
        return lo, hi, None
    return lo, hi, np.diff(np.clip(pats.starts[p0 + lo:p0 + hi + 1], l0, l1))


def _per_row(arr: np.ndarray, span: tuple[int, int, np.ndarray | None]) -> np.ndarray:
    """``arr[..., rp]`` (per-pattern values for each row of a :func:`_row_span`): a view when
    there is one row per pattern (the common case for patterns with several missing entries;
    not to be written to), else one ``np.repeat`` (rows are sorted by pattern; 2-4x faster
    than ``np.take`` on the last axis, even into reused memory)."""
    lo, hi, counts = span
    if counts is None:
        return arr[..., lo:hi]
    return np.repeat(arr[..., lo:hi], counts, axis=-1)


def _sum_per_pattern(values: np.ndarray, span: tuple[int, int, np.ndarray | None]) -> np.ndarray:
    """``values`` (..., rows) summed over the rows of each pattern of a :func:`_row_span`
    (..., hi - lo)."""
    counts = span[2]
    if counts is None:
        return values
    first = np.zeros(len(counts), dtype=np.intp)
    np.cumsum(counts[:-1], out=first[1:])
    return np.add.reduceat(values, first, axis=-1)


class _BlockPlan:
    """Where the missing entries of the sorted rows ``b0:b1`` are (they depend on the
    missingness patterns only, so :func:`_block_plan` keeps them for the next pass):

    * ``span``: the block's :func:`_row_span`; ``parts``: one ``(group, j, a0, a1, q0, span)``
      per group of patterns in the block (its rows ``a0:a1`` of the block, its first pair
      ``q0``), and ``patterns``, per part, the pattern of each of its rows (numbered within
      its group); ``n_pairs``: the block's missing entries ("pairs": a row and a column), in
      group, row, slot order;
    * ``by_col``: the pairs ordered by column (stable), ``row_by_col`` their block rows;
      ``col_ranges``: ``(c, c0, c1)`` for each column missing in the block, its pairs
      ``c0:c1`` of that order; ``present`` those columns and ``present_starts`` where their
      pairs start.

    They stay alive between passes: 16 bytes a missing entry (the index arrays are intp:
    NumPy converts int32 indices to intp on every ``take``, which cost more than it saved)."""

    __slots__ = ("span", "parts", "patterns", "n_pairs", "by_col", "row_by_col", "col_ranges", "present",
                 "present_starts")

    span: tuple[int, int, np.ndarray | None]
    parts: list[tuple[int, int, int, int, int, tuple[int, int, np.ndarray | None]]]
    patterns: list[np.ndarray]
    n_pairs: int
    by_col: np.ndarray
    row_by_col: np.ndarray
    col_ranges: list[tuple[int, int, int]]
    present: np.ndarray
    present_starts: np.ndarray

    def in_row_order(self) -> np.ndarray:
        """The inverse of ``by_col``: where each pair (in row order) is in column order."""
        inverse = np.empty(self.n_pairs, dtype=np.intp)
        inverse[self.by_col] = np.arange(self.n_pairs)
        return inverse

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """``(pair_row, pair_col)``: the block row and the column of each pair, in row order."""
        col_by_col = np.repeat(self.present, [c1 - c0 for _, c0, c1 in self.col_ranges])
        inverse = self.in_row_order()
        return self.row_by_col[inverse], col_by_col[inverse]


def _block_plan(pats: MissingPatterns, b0: int, b1: int, d: int) -> _BlockPlan:
    """The :class:`_BlockPlan` of the sorted rows ``b0:b1``, made once per block and kept on
    ``pats`` (a pass over the same rows in the same blocks finds it there)."""
    plan = pats.plans.get((b0, b1))
    if plan is not None:
        return plan
    plan = _BlockPlan()
    plan.span = _row_span(pats, 0, b0, b1)
    starts = pats.starts
    parts, patterns, pair_rows, pair_cols = [], [], [], []
    n_pairs = 0
    for gi, (j, p0, p1, missing) in enumerate(pats.groups):
        l0, l1 = max(int(starts[p0]), b0), min(int(starts[p1]), b1)
        if j == 0 or l0 >= l1:
            continue
        span = _row_span(pats, p0, l0, l1)
        cols = _per_row(missing.T, span)  # (j, rows)
        pair_cols.append(cols.ravel())
        pair_rows.append(np.broadcast_to(np.arange(l0 - b0, l1 - b0), cols.shape).ravel())
        parts.append((gi, j, l0 - b0, l1 - b0, n_pairs, span))
        patterns.append(pats.row_pattern[l0:l1] - p0)
        n_pairs += cols.size
    plan.parts, plan.patterns, plan.n_pairs = parts, patterns, n_pairs
    pair_row = np.concatenate(pair_rows) if pair_rows else np.zeros(0, dtype=np.intp)
    pair_col = np.concatenate(pair_cols) if pair_cols else np.zeros(0, dtype=np.intp)
    plan.by_col = np.argsort(pair_col, kind="stable")
    plan.row_by_col = pair_row[plan.by_col]
    col_start = np.concatenate([[0], np.cumsum(np.bincount(pair_col, minlength=d))])
    plan.present = np.flatnonzero(np.diff(col_start))
    plan.present_starts = col_start[plan.present]
    plan.col_ranges = [(c, int(col_start[c]), int(col_start[c + 1])) for c in plan.present.tolist()]
    pats.plans[(b0, b1)] = plan
    return plan


def _missing_products(xs, obs, mp: MissingPrepared, pats: MissingPatterns, scratch: Scratch, ws, offsets, far, mode,
                      cap):
    """The dense form on the products of the observed entries (``mp.expanded``): per row the
    complete rows' layout ``[x_0; upper-triangle products of x_0]`` (``x_0`` the centred row,
    0 at its missing entries) gives, in one product each, ``x_0' Lambda_k m_k - x_0' Lambda_k x_0 / 2``
    and the moments of the observed entries; the missing entries (j per row) add
    ``(Lambda_k x_0)_m``, computed column by column for the rows that miss that column, and
    small (K, j, rows) corrections, a group of patterns at a time. With ``z = x_0 - m*o``
    (``o`` the observed indicator)::

        z' Lambda z = x_0' Lambda x_0 - 2 x_0' Lambda m + 2 m_m' (Lambda x_0)_m + (m*o)' Lambda (m*o)
        y_m = (Lambda z)_m = (Lambda x_0)_m - (Lambda (m*o))_m

    The conditional mean of the row is ``x_0 + e`` with ``e = m_m - (Lambda_mm)^{-1} y_m`` on the
    missing entries, so its second moments are ``x_0 x_0'`` (the products), ``x_0 e' + e x_0'``
    (column by column again) and ``e e'`` plus the conditional covariance (summed per pattern,
    scattered once per group of patterns)."""
    r, d = xs.shape
    k = len(mp.log_w)
    wd = mp.dtype
    f64 = np.float64
    t = d * (d + 1) // 2
    const, groups = _pattern_terms(mp, pats, products=True, packed=True)
    groups_w: list[Any] = [None if g is None else tuple(a.astype(wd, copy=False) for a in g) for g in groups]
    const_w = const.astype(wd)
    step = min(cap, max(256, MISSING_STACKED_BLOCK_BYTES // ((d + t + k) * wd.itemsize)))
    n = np.zeros(k)
    moments = np.zeros((k, d + t))
    s1_m = np.zeros((k, d))
    cross = np.zeros((k, d, d))
    # per group of patterns: the sum over each pattern's rows of e e' (K, j, j, P_j); and the
    # responsibilities per pattern (for the conditional covariances)
    # few features: the missing entries' moments from dense (K, rows, D) blocks, two small
    # products per block, instead of per-row (K, j, j) outer products summed per pattern
    dense = d <= DENSE_MISSING_MOMENTS_MAX_D
    # (e e' is symmetric: its upper triangles, (K, j (j + 1) / 2, P_j), row-major pairs (a <= b))
    outer: list[Any] = [None if (g is None or dense) else
                        np.zeros((k, g[1].shape[1] * (g[1].shape[1] + 1) // 2, g[1].shape[2])) for g in groups]
    ee_dense = np.zeros((k, d, d)) if dense else None
    per_pattern = np.zeros((k, len(pats.n_observed)))
    far_s1, far_second = np.zeros((len(far), d)), np.zeros((len(far), d, d))
    loglik = 0.0
    out: Any = np.empty((r, k) if mode == "log_joint" else (r, d)) if mode != "stats" else None
    prec_rows = np.ascontiguousarray(np.swapaxes(mp.prec_w, 0, 1))  # (D, K', D): row c of every Lambda_k
    # the per-row corrections and moments of the missing entries in compiled loops, when Numba
    # is there (the dense moments and imputation keep the NumPy steps below, which the tests
    # compare them with)
    compiled = _compiled.kernels() if mode == "log_joint" or (mode == "stats" and not dense) else None
    for b0 in range(0, r, step):
        b1 = min(r, b0 + step)
        m = b1 - b0
        xb = xs[b0:b1]
        st = scratch.array("miss_products", (d + t, m), wd)
        st[:d] = xb.T
        pos = d
        for i in range(d):
            np.multiply(st[i], st[i:d], out=st[pos:pos + d - i])
            pos += d - i
        lj = np.matmul(mp.coef, st, out=scratch.array("miss_log_joint", (k, m), wd))
        plan = _block_plan(pats, b0, b1, d)
        block_span, parts, n_pairs = plan.span, plan.parts, plan.n_pairs
        col_ranges = plan.col_ranges
        # the row and column of each pair, for the forms that place the pairs in (rows, D) arrays
        pair_row, pair_col = plan.pairs() if n_pairs and (mode == "impute" or far.size or dense) else (None, None)
        lj += _per_row(const_w, block_span)
        if n_pairs:  # (Lambda_k x_0)_c, column by column for the rows that miss column c
            x_pairs = np.take(xb, plan.row_by_col, axis=0, out=scratch.array("miss_x_pairs", (n_pairs, d), wd),
                              mode="clip")  # (pairs, D), grouped by missing column
            lam_by_col = scratch.array("miss_lam_by_col", (mp.prec_w.shape[0], n_pairs), wd)
            for c, c0, c1 in col_ranges:
                np.matmul(prec_rows[c], x_pairs[c0:c1].T, out=lam_by_col[:, c0:c1])
            lam_x = np.take(lam_by_col, plan.in_row_order(), axis=1,
                            out=scratch.array("miss_lam_x", lam_by_col.shape, wd), mode="clip")
            # per pair (K, pairs) buffers, a slice per group (the compiled loops need w only)
            w_all = scratch.array("miss_w", (k, n_pairs), wd)
            if compiled is None:
                y_all = scratch.array("miss_y", (k, n_pairs), wd)
                tmp_all = scratch.array("miss_tmp", (k, n_pairs), wd)
        done = []
        for pi, (gi, j, a0, a1, q0, span) in enumerate(parts):
            inv, means_m, shift_m = groups_w[gi]
            if compiled is not None:  # the same in one compiled loop (w into w_all)
                compiled["corrections"](lam_x, q0, j, a1 - a0, plan.patterns[pi], inv, means_m, shift_m, lj, a0,
                                        w_all)
                continue
            rows = a1 - a0
            q1 = q0 + j * rows
            lx = lam_x[:, q0:q1].reshape(-1, j, rows)  # (K', j, rows)
            # per-pattern values row by row: views of them where every row has its own pattern
            # (read only: a pattern cut by the block's end is read again by the next block)
            mu = _per_row(means_m, span)  # (K, j, rows)
            h = _per_row(inv, span)  # (T, K', rows), packed
            y_m = np.subtract(lx, _per_row(shift_m, span), out=y_all[:, q0:q1].reshape(k, j, rows))
            w = w_all[:, q0:q1].reshape(k, j, rows)
            tmp = tmp_all[:, q0:q1].reshape(k, j, rows)
            # w = Lambda_mm^{-1} y_m per row and component (slot-major views of the (K, j, rows) arrays)
            _matvec_entries(h, np.moveaxis(y_m, 1, 0), packed=True, out=np.moveaxis(w, 1, 0))
            corr = np.multiply(w, y_m, out=tmp)
            corr *= 0.5
            corr -= np.multiply(mu, lx, out=y_m)  # y_m is not needed after this
            lj[:, a0:a1] += np.sum(corr, axis=1)
            done.append((gi, j, a0, a1, q0, span, mu, w))
        if mode == "log_joint":
            out[b0:b1] = lj.T
            continue
        resp, ll = posterior_by_component(np, lj, scratch, None if ws is None else ws[b0:b1], row_loglik=False)
        loglik += ll
        # conditional means of the missing entries (centred) e = m_m - w, pair by pair
        need_e = mode == "impute" or far.size or dense
        f_pairs = scratch.array("miss_f_pairs", (k, n_pairs), wd)
        e_pairs: Any = None
        if compiled is not None:  # e (over w_all), f = r e and the per-pattern sums of r e e'
            for pi, (gi, j, a0, a1, q0, span) in enumerate(parts):
                compiled["moments"](w_all, q0, j, a1 - a0, plan.patterns[pi], groups_w[gi][1], resp, a0, f_pairs,
                                    outer[gi])
            if need_e:
                e_pairs = w_all if n_pairs else np.zeros((k, 0), dtype=wd)
        elif need_e:
            e_pairs = scratch.array("miss_e_pairs", (k, n_pairs), wd)
        for gi, j, a0, a1, q0, span, mu, w in done:
            rows = a1 - a0
            e = np.subtract(mu, w, out=w)  # (K, j, rows)
            if e_pairs is not None:
                e_pairs[:, q0:q0 + j * rows] = e.reshape(k, -1)
            if mode != "stats" or dense:
                continue
            fe = np.multiply(e, resp[:, None, a0:a1], out=f_pairs[:, q0:q0 + j * rows].reshape(k, j, rows))
            prod = scratch.array("miss_prod", (k, j * (j + 1) // 2, rows), wd)  # r e_a e_b, a <= b (triu_pairs(j))
            t0 = 0
            for a in range(j):
                np.multiply(fe[:, a:a + 1], e[:, a:], out=prod[:, t0:t0 + j - a])
                t0 += j - a
            outer[gi][..., span[0]:span[1]] += _sum_per_pattern(prod, span)  # a pattern's rows are contiguous
        if mode == "impute":
            filled = scratch.array("miss_filled", (k, m, d), wd)
            filled[:] = xb[None]
            if n_pairs:
                filled[:, pair_row, pair_col] = e_pairs
            out[b0:b1] = np.einsum("km,kmd->md", resp, filled)
            continue
        n += component_counts(np, resp)
        moments += (resp @ st.T).astype(f64)
        per_pattern[:, block_span[0]:block_span[1]] += _sum_per_pattern(resp, block_span)
        if n_pairs and dense:  # e (K, rows, D), 0 at the observed entries; f = r e
            e_dense = scratch.array("miss_e_dense", (k, m, d), wd)
            e_dense.fill(0)
            e_dense[:, pair_row, pair_col] = e_pairs
            f_dense = np.multiply(e_dense, resp[:, :, None], out=scratch.array("miss_f_dense", (k, m, d), wd))
            f_t = np.swapaxes(f_dense, 1, 2)
            # a product with ones: a reduction with dtype=float64 would cast every entry first
            s1_m += (f_t @ np.ones(m, dtype=wd)).astype(f64)
            cross += (f_t @ xb).astype(f64)  # x_0 e' + e x_0' (cross and its transpose)
            ee_dense += (f_t @ e_dense).astype(f64)  # e e'
        elif n_pairs:  # x_0 e' + e x_0', column by column of the missing entries
            f_by_col = np.take(f_pairs, plan.by_col, axis=1, out=scratch.array("miss_f_by_col", f_pairs.shape, wd),
                               mode="clip")
            s1_m[:, plan.present] += np.add.reduceat(f_by_col, plan.present_starts, axis=1)
            for c, c0, c1 in col_ranges:
                cross[:, c, :] += (f_by_col[:, c0:c1] @ x_pairs[c0:c1]).astype(f64)
        for i, j in enumerate(far.tolist()):  # own product about the component's reference point
            xh = xb - offsets[j].astype(wd)
            if n_pairs:
                xh[pair_row, pair_col] = e_pairs[j] - offsets[j][pair_col].astype(wd)
            far_s1[i] += (resp[j] @ xh).astype(f64)
            far_second[i] += ((xh * resp[j][:, None]).T @ xh).astype(f64)
    if mode != "stats":
        return out
    s1 = moments[:, :d] + s1_m
    second = cross + np.swapaxes(cross, 1, 2) + unpack_sym(moments[:, d:], d)
    # upper triangles (a <= b) of the symmetric blocks, (K, j (j + 1) / 2, P_j) per group, side
    # by side in one (K, total) array: the conditional covariances times each pattern's
    # responsibilities, plus the sums of r e e'; scattered in one bincount per component
    pos, at = _upper_positions(pats, d)
    upper = np.empty((k, pos.size))
    cond: Any = np.empty((k, pos.size)) if far.size else None  # the conditional covariances alone
    for gi, ((j, p0, p1, _), g, ee) in enumerate(zip(pats.groups, groups, outer)):
        if j == 0:
            continue
        start, t_j, p_j = at[gi]
        weighted = np.multiply(per_pattern[:, None, p0:p1], np.moveaxis(g[0], 1, 0),  # g[0]: packed (T, K', P_j)
                               out=_segment(upper, start, t_j, p_j))
        if cond is not None:
            cond[:, start:start + t_j * p_j] = upper[:, start:start + t_j * p_j]
        if ee is not None:
            weighted += ee
    second += _mirror_upper(_scatter_positions(k, d, pos, upper))
    if cond is not None:
        cond = _mirror_upper(_scatter_positions(k, d, pos, cond))
    if ee_dense is not None:
        second += ee_dense
    if far.size:  # about their own reference points; the conditional covariances do not move
        s1[far] = far_s1
        second[far] = far_second + cond[far]
    return n, s1, second, loglik


def _missing_shared(xs, obs, mp: MissingPrepared, pats: MissingPatterns, scratch: Scratch, ws, offsets, far, mode,
                    cap):
    """The dense form for one covariance shared by all components whose statistics are summed
    over them (``mp.shared``, tied): ``Lambda x_0`` (one D x D product per row, ``x_0`` the
    centred row with 0 at its missing entries) gives ``x_0' Lambda x_0`` and ``l = (Lambda x_0)_m``,
    the same for every component. With ``s_k = (Lambda (m_k*o))_m``, ``H = (Lambda_mm)^{-1}`` and
    ``V_k = -(H s_k + m_k,m)`` (per pattern), the log joint's correction for the missing entries is
    ``l' H l / 2 + l' V_k + s_k' H s_k / 2`` and the conditional mean of the missing entries is
    ``e_k = -(V_k + H l)``: per row and component only ``j`` products (no ``j x j`` work, no
    products of the observed entries); the summed second moments take one weighted D x D
    product, and their ``e e'`` part is ``sum_k r_k V_k V_k'`` (per pattern) plus row terms in
    ``H l``."""
    r, d = xs.shape
    k = len(mp.log_w)
    wd = mp.dtype
    f64 = np.float64
    const, groups = _pattern_terms(mp, pats, products=True)
    extra: list[Any] = []
    for g in groups:
        if g is None:
            extra.append(None)
            continue
        inv, means_m, shift_m = g
        h = inv[:, :, 0]  # (j, j, P_j)
        hs = np.einsum("abp,kbp->kap", h, shift_m)
        extra.append((h, -(hs + means_m)))
    for (j, p0, p1, _), g, ex in zip(pats.groups, groups, extra):
        if j:
            const[:, p0:p1] += 0.5 * np.sum(g[2] * (-ex[1] - g[1]), axis=1)  # s' H s / 2
    const_w = const.astype(wd)
    extra_w: list[Any] = [None if e is None else (e[0].astype(wd), e[1].astype(wd)) for e in extra]
    near = np.setdiff1d(np.arange(k), far)
    step = min(cap, max(256, MISSING_STACKED_BLOCK_BYTES // ((2 * d + 2 * k) * wd.itemsize)))
    n = np.zeros(k)
    s1 = np.zeros((k, d))
    total = np.zeros((d, d))  # second moments summed over the near components
    cross = np.zeros((d, d))
    outer = np.zeros(d * d)
    per_pattern = np.zeros((k, len(pats.n_observed)))
    far_s1, far_second = np.zeros((len(far), d)), np.zeros((len(far), d, d))
    loglik = 0.0
    out: Any = np.empty((r, k) if mode == "log_joint" else (r, d)) if mode != "stats" else None
    starts = pats.starts
    for b0 in range(0, r, step):
        b1 = min(r, b0 + step)
        m = b1 - b0
        xb = xs[b0:b1]
        st = scratch.array("miss_rows", (d, m), wd)
        st[:] = xb.T
        lam_all = np.matmul(mp.prec_w[0], st, out=scratch.array("miss_lam_x", (d, m), wd))
        quad = np.einsum("dm,dm->m", lam_all, st)
        quad *= -0.5
        lj = np.matmul(mp.coef, st, out=scratch.array("miss_log_joint", (k, m), wd))
        lj += quad
        block_span = _row_span(pats, 0, b0, b1)
        lj += _per_row(const_w, block_span)
        parts = []
        for gi, (j, p0, p1, missing) in enumerate(pats.groups):
            l0, l1 = max(int(starts[p0]), b0), min(int(starts[p1]), b1)
            if j == 0 or l0 >= l1:
                continue
            a0, a1 = l0 - b0, l1 - b0
            span = _row_span(pats, p0, l0, l1)
            cols = _per_row(missing.T, span)  # (j, rows)
            lx = lam_all[cols, np.arange(a0, a1)]  # (j, rows)
            h, v = extra_w[gi]
            hr = _per_row(h, span)  # (j, j, rows)
            vr = _per_row(v, span)  # (K, j, rows)
            u = _matvec_entries(hr, lx)  # H l
            row_term = 0.5 * np.sum(lx * u, axis=0)  # (rows,)
            lin = vr[:, 0] * lx[0]
            for a in range(1, j):
                lin += vr[:, a] * lx[a]
            lin += row_term
            lj[:, a0:a1] += lin
            parts.append((gi, j, a0, a1, cols, u, vr))
        if mode == "log_joint":
            out[b0:b1] = lj.T
            continue
        resp, ll = posterior_by_component(np, lj, scratch, None if ws is None else ws[b0:b1], row_loglik=False)
        loglik += ll
        if mode == "impute":
            filled = np.array(xb, dtype=f64)
            for gi, j, a0, a1, cols, u, vr in parts:  # sum_k r_k e_k = -(sum_k r_k V_k + H l)
                filled[np.arange(a0, a1), cols] = -(np.einsum("kr,kjr->jr", resp[:, a0:a1], vr) + u)
            out[b0:b1] = filled
            continue
        n += component_counts(np, resp)
        s1 += (resp @ xb).astype(f64)
        resp_near = resp if not far.size else resp * np.isin(np.arange(k), near)[:, None]
        weight = np.sum(resp_near, axis=0)
        total += ((st * weight) @ xb).astype(f64)
        per_pattern[:, block_span[0]:block_span[1]] += _sum_per_pattern(resp, block_span)
        for gi, j, a0, a1, cols, u, vr in parts:
            resp_g = resp[:, a0:a1]
            # per component: the missing entries' first moments, sum_r r_k e_k
            e = vr + u  # -e, (K, j, rows)
            e *= resp_g[:, None, :]
            onehot = scratch.array("miss_onehot", (cols.size, d), wd)  # scatters the missing entries by column
            onehot.fill(0)
            onehot[np.arange(cols.size), cols.ravel()] = 1.0
            s1 -= (e.reshape(k, -1) @ onehot).astype(f64)
            # summed over the near components: x_0 e' (row by row, scattered by column) and the
            # row terms of e e' (the r_k V_k V_k' part is per pattern, below)
            rv = np.einsum("kr,kjr->jr", resp_near[:, a0:a1], vr)  # sum_k r_k V_k
            w_g = weight[a0:a1]
            fsum = -(rv + w_g * u)  # sum_k r_k e_k, (j, rows)
            spread = scratch.array("miss_spread", (a1 - a0, d), wd)  # fsum at each row's missing columns
            spread.fill(0)
            spread[np.arange(a1 - a0), cols] = fsum
            cross += (spread.T @ xb[a0:a1]).astype(f64)
            rows_term = rv[:, None] * u[None, :] + u[:, None] * rv[None, :] + w_g * (u[:, None] * u[None, :])
            outer += np.bincount(_block_entries(cols, d).ravel(), weights=rows_term.ravel(), minlength=d * d)
        for i, j in enumerate(far.tolist()):  # own product about the component's reference point
            xh = xb - offsets[j].astype(wd)
            for gi, jj, a0, a1, cols, u, vr in parts:
                xh[np.arange(a0, a1), cols] = -(vr[j] + u) - offsets[j][cols].astype(wd)
            far_s1[i] += (resp[j] @ xh).astype(f64)
            far_second[i] += ((xh * resp[j][:, None]).T @ xh).astype(f64)
    if mode != "stats":
        return out
    # per pattern: sum_k R_pk V_pk V_pk' (near components) and the conditional covariances
    r_near = per_pattern[near]
    cond = np.zeros((k, d, d))
    for (j, p0, p1, missing), ex in zip(pats.groups, extra):
        if not j:
            continue
        h, v = ex
        v_near = v[near]
        vv = np.einsum("kap,kbp->abp", r_near[:, None, p0:p1] * v_near, v_near)
        # sum over patterns of R_pk H_p: the patterns' blocks scattered once each, then one
        # product with the responsibilities per pattern (not K scatters of K x j x j x P_j)
        entries = _block_entries(missing.T, d)  # (j, j, P_j)
        step = max(1, 2**19 // (d * d))
        for q0 in range(0, p1 - p0, step):
            q1 = min(p1 - p0, q0 + step)
            spread = np.zeros((q1 - q0, d * d))
            spread[np.arange(q1 - q0), entries[..., q0:q1]] = h[..., q0:q1]
            cond += (per_pattern[:, p0 + q0:p0 + q1] @ spread).reshape(k, d, d)
        outer += _scatter_blocks(1, d, missing.T, vv[None]).ravel()
    second = np.zeros((k, d, d))
    second[0] = total + cross + cross.T + outer.reshape(d, d) + cond[near].sum(axis=0)
    if far.size:
        s1[far] = far_s1
        second[far] = far_second + cond[far]
    return n, s1, second, loglik


def _missing_diagonal(xs, obs, mp: MissingPrepared, scratch: Scratch, ws, offsets, far, mode, cap):
    r, d = xs.shape
    k = len(mp.log_w)
    wd = xs.dtype
    f64 = np.float64
    step = min(cap, max(256, MISSING_STACKED_BLOCK_BYTES // (3 * d * wd.itemsize)))
    log_w = mp.log_w.astype(wd)[:, None]
    far = np.zeros(0, dtype=int) if far is None else np.asarray(far, dtype=int)
    moments = np.zeros((k, 3 * d))
    far_moments = np.zeros((len(far), 2 * d))
    n = np.zeros(k)
    loglik = 0.0
    out: Any = np.empty((r, k) if mode == "log_joint" else (r, d)) if mode != "stats" else None
    for b0 in range(0, r, step):
        b1 = min(r, b0 + step)
        m = b1 - b0
        st = scratch.array("miss_stacked", (3 * d, m), wd)
        st[:d] = xs[b0:b1].T
        np.square(st[:d], out=st[d:2 * d])
        st[2 * d:] = obs[b0:b1].T
        lj = np.matmul(mp.coef, st, out=scratch.array("miss_log_joint", (k, m), wd))
        lj += log_w
        if mode == "log_joint":
            out[b0:b1] = lj.T
            continue
        resp, ll = posterior_by_component(np, lj, scratch, None if ws is None else ws[b0:b1], row_loglik=False)
        loglik += ll
        if mode == "impute":
            out[b0:b1] = xs[b0:b1] + (~obs[b0:b1]) * (resp.T @ mp.means_c)
            continue
        n += component_counts(np, resp)
        moments += (resp @ st.T).astype(f64)
        for i, j in enumerate(far.tolist()):  # own product about the component's reference point
            u = np.subtract(st[:d], offsets[j].astype(wd)[:, None])
            u *= st[2 * d:]
            far_moments[i] += np.concatenate([u @ resp[j], (u * u) @ resp[j]]).astype(f64)
    if mode != "stats":
        return out
    a1, a2, seen = moments[:, :d], moments[:, d:2 * d], moments[:, 2 * d:]
    unseen = n[:, None] - seen  # responsibility of the rows where each coordinate is missing
    o = np.asarray(offsets, dtype=f64)
    mu = mp.means_c - o
    s1 = a1 - seen * o + unseen * mu
    s2 = a2 - 2.0 * o * a1 + o * o * seen + unseen * (mu * mu + mp.var)
    if far.size:
        s1[far] = far_moments[:, :d] + unseen[far] * mu[far]
        s2[far] = far_moments[:, d:] + unseen[far] * (mu[far] ** 2 + mp.var[far])
    second = np.zeros((k, d, d))
    second[:, np.arange(d), np.arange(d)] = s2
    return n, s1, second, loglik


# --------------------------------------------------------------------------- M-step
#: scikit-learn's 10 eps added to every component's count (its weight and the covariances'
#: divisor): an empty component divides by a positive number
COUNT_FLOOR = 10 * np.finfo(np.float64).eps
#: no empty component (the usual M-step)
_NO_COMPONENTS = np.zeros(0, dtype=np.intp)
_NO_COMPONENTS.flags.writeable = False


def mixing_weights(n: np.ndarray) -> np.ndarray:
    """Weights ``n_k / sum n`` from the responsibilities' sums, with scikit-learn's 10 eps per
    component (an empty component gets a positive weight, not 0)."""
    nk = np.asarray(n, dtype=np.float64) + COUNT_FLOOR
    return nk / nk.sum()


def m_step_numpy(stats: dict, structure: CovarianceStructure, reg_covar: float, d: int,
                 fixed_means_c: np.ndarray | None = None,
                 eps: float = 2.2e-16, center: np.ndarray | None = None, current: np.ndarray | None = None,
                 divisor: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any]:
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
    as its magnitude allows however far it lies from the centre. ``divisor`` (K,) replaces
    ``n_k`` as the covariances' divisor (the MAP M-step's ``a_k``,
    :mod:`emkit.models.gaussian_prior`; with the same 10 eps). Returns (weights, means,
    covariances, empty component indices)."""
    n = np.asarray(stats["n"], dtype=np.float64)
    s1 = np.asarray(stats["s1"], dtype=np.float64)
    s2 = np.asarray(stats["s2"], dtype=np.float64)
    floor = 1e-12 * max(float(n.sum()), 1e-300)
    nk = n + COUNT_FLOOR
    kernels = _compiled.kernels() if center is not None and s1.size <= SMALL_M_STEP_ENTRIES else None
    if kernels is not None:  # small: reference points, weights and steps in one compiled loop
        c = np.asarray(center, dtype=np.float64)
        ref, weights, step = np.empty(s1.shape), np.empty(n.shape), np.empty(s1.shape)
        any_empty = kernels["m_step_start"](np.ascontiguousarray(n), np.ascontiguousarray(stats["ref"], dtype=np.float64),
                                            np.ascontiguousarray(s1), c, _center_tolerance(c), COUNT_FLOOR, ref,
                                            weights, step)
        empty = np.flatnonzero(n <= floor) if any_empty else _NO_COMPONENTS
    else:
        ref = reference_offsets(stats, center)
        weights = mixing_weights(n)
        step = s1 / nk[:, None]
        # empty: no responsibility at all (relative to the data); such a component keeps its mean
        # and covariance (any value maximises Q for it) and gets weight ~ 0
        empty = np.flatnonzero(n <= floor) if n.size and float(n.min()) <= floor else _NO_COMPONENTS
    anchor = ref  # the reference points
    about = step if fixed_means_c is None else np.asarray(fixed_means_c, dtype=np.float64) - anchor
    slack = None
    if s2.shape == s1.shape:  # per-coordinate second moments (diag, spherical)
        offset = ref if center is None else ref - np.asarray(center, dtype=np.float64)
        slack = 64.0 * max(eps, np.finfo(np.float64).eps) * (
            np.abs(s2) / nk[:, None] + offset * offset + about * about + step * step)
    # the MAP divisor a_k = n_k + delta_k carries the same 10 eps: with delta_k = 0 (VEV's prior, as
    # mclust's) a component the E-step gives exactly no responsibility still divides by a positive number
    divisor_k = nk if divisor is None else np.asarray(divisor, dtype=np.float64) + COUNT_FLOOR
    cov = structure.m_step(n, divisor_k, s1, s2, about,
                           reg_covar, d, slack=slack, current=current)
    return weights, anchor + step, cov, empty


def expected_complete_loglik(stats: dict, weights: Any, means: np.ndarray, covariances: np.ndarray,
                             structure: CovarianceStructure) -> float:
    """Q(theta | theta') = E[log p(X, Z | theta)] from statistics computed at theta' (float)."""
    n = np.asarray(stats["n"], dtype=np.float64)
    s1 = np.asarray(stats["s1"], dtype=np.float64)
    s2 = np.asarray(stats["s2"], dtype=np.float64)
    means_c = np.asarray(means, dtype=np.float64) - reference_offsets(stats)  # about the references
    d = means_c.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        total = float(np.sum(np.where(n > 0, n * np.log(weights), 0.0)))
    return float(structure.complete_loglik(total, n, s1, s2, means_c, covariances, d))
