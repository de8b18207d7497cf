"""Covariance structures of Gaussian mixtures: one small class per structure.

Everything that differs between scikit-learn's four covariance types lives here, in one class
each: :class:`Full`, :class:`Tied`, :class:`Diag` and :class:`Spherical`. The Gaussian model
(:mod:`emkit.models.gaussian`) and its kernels (:mod:`emkit.models.gaussian_kernels`) look the
structure up once, ``COVARIANCE_STRUCTURES[covariance_type]``, and call it; they never compare
the type's name. Adding a structure (one of mclust's fourteen forms, say) is one class here and
one line in :data:`COVARIANCE_STRUCTURES`.

A structure holds no state; its methods take NumPy float64 parameters, except the per-chunk
E-step pieces (``fill_products``, ``stacked_xp``, ``log_joint_whitened``, ``stats``), which
run in the data's array library and dtype.

What a structure gives
    Parameters: ``shape(k, d)``, ``constraint()``, ``n_parameters(k, d)``,
    ``full_matrices(cov, k, d)`` (a (K, D, D) stack), ``precision_cholesky(cov)`` and
    ``precisions(prec_chol)`` (scikit-learn's attributes), ``from_covariance(cov, k, d)`` (every
    component starting at one (D, D) covariance), ``covariances_from_init(arr, name)`` (checked
    user starting values), ``check_positive_definite(cov, where)``.
    E-step: the stacked-rows layout (``stacked_extra``, ``fill_products``, ``stacked_xp``,
    ``use_products``),
    ``prepare`` (the per-parameter precomputation), ``log_joint_whitened`` and ``stats``.
    Missing values: ``missing_s2``, ``pack_second`` (full second moments to the layout of
    ``s2``; the default uses ``missing_s2``), ``missing_variances`` (diagonal structures: the
    cheap diagonal form of the missing-value E-step; the default None takes the dense form).
    M-step: ``m_step`` (the covariances from the statistics),
    ``per_component``, and ``complete_loglik``. Memory: ``product_columns`` and
    ``whitened_columns`` (per-row temporaries, for the chunk size).

Statistics format: ``{"n": (K,), "s1": (K, D), "s2": ...}`` with ``s2`` the centred second
moments: ``full`` (K, T) packed upper triangles (T = D(D+1)/2, row-major order of
``numpy.triu_indices``), ``tied`` (T,) summed over components, ``diag`` and ``spherical``
(K, D) per-coordinate sums of squares.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable

import numpy as np
from scipy.linalg import blas, lapack, solve_triangular

from emkit.core.params import Constraint, Positive, SymmetricPositiveDefinite
from emkit.core.validation import check_symmetric_positive_definite
from emkit.models import gaussian_compiled as _compiled

__all__ = ["COVARIANCE_STRUCTURES", "COVARIANCE_TYPES", "CovarianceStructure", "Diag", "FULL_PRODUCTS_MAX_D", "Full",
           "Spherical", "Tied", "cholesky_or_raise", "lower_inverse", "pack_sym", "triu_pairs", "unpack_sym"]

LOG_2PI = math.log(2.0 * math.pi)

#: rows per block of the whitened full-covariance form (its (K D, rows) temporary stays small) ...
WHITENED_BLOCK = 512
#: ... and at most this many bytes (wide data: fewer rows per block)
WHITENED_BLOCK_BYTES = 2 * 2**20
#: the full structure's E-step takes the per-row products of the features (T = D (D + 1) / 2 of
#: them; one product with all components gives log densities and second moments) when its cost
#: model says so (:meth:`Full.use_products`), else the whitened form for the log densities and
#: one weighted Gram product X' diag(r_k) X per component for the second moments (per row about
#: 2 D instead of T temporaries, and D x D matrix products). Nanoseconds per row, fitted on a
#: 2-core AVX-512 machine (float64, one thread): products ``T (a + b K) + c K``, Gram
#: ``K (alpha D^2 + beta D + gamma)``; products are never taken beyond FULL_PRODUCTS_MAX_D features
FULL_PRODUCTS_COST = (1.23, 0.089, 2.6)
FULL_GRAM_COST = (0.069, 1.83, 1.0)
FULL_PRODUCTS_MAX_D = 256
#: from this many features the full structure bounds each component's smallest variance from
#: below by 1 / tr(precision) (``Prepared.min_variance``) instead of an eigen-decomposition
MIN_VARIANCE_BOUND_D = 128
#: packing and unpacking symmetric matrices beyond this size goes row by row (no index arrays
#: of D^2 / 2 entries)
PACK_INDEX_MAX_D = 512
#: up to this many features, :func:`lower_inverse` inverts a stack of three or more factors in
#: one batched call (measured: K = 9, D = 4, 9.5 us against 19 us for one LAPACK ``trtri`` per
#: component; from D = 16 the per-component calls are faster)
BATCHED_INVERSE_MAX_D = 8
#: the full M-step updates the (K, D, D) covariances in place (one BLAS rank-2 update per
#: component) once they take this many bytes: the whole-array form holds about five (K, D, D)
#: temporaries, which then set the fit's memory peak
INPLACE_M_STEP_BYTES = 2**20
#: up to this many covariance entries (K D^2) the full M-step is one compiled loop when Numba is
#: there (:mod:`emkit.models.gaussian_compiled`): NumPy's per-call costs, not arithmetic, set
#: the time of its dozen whole-array steps (Old Faithful, K = 3: 1 us against 9)
SMALL_M_STEP_ENTRIES = 4096


# --------------------------------------------------------------------------- small helpers
@functools.lru_cache(maxsize=64)
def triu_pairs(d: int, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the upper triangle of a d x d matrix, row-major, from the
    diagonal ``offset`` on (0: diagonal included, 1: strictly above it), as
    ``numpy.triu_indices`` (cached; read-only arrays)."""
    rows, cols = np.triu_indices(d, offset)
    rows.flags.writeable = False
    cols.flags.writeable = False
    return rows, cols


@functools.lru_cache(maxsize=64)
def _offdiag_factor(d: int) -> np.ndarray:
    rows, cols = triu_pairs(d)
    out = np.where(rows == cols, -0.5, -1.0)
    out.flags.writeable = False
    return out


def unpack_sym(packed: np.ndarray, d: int) -> np.ndarray:
    """(..., T) packed upper triangles -> (..., d, d) symmetric matrices (NumPy)."""
    if d > PACK_INDEX_MAX_D:  # row by row: no index arrays of T entries
        out = np.empty(packed.shape[:-1] + (d, d), dtype=np.result_type(packed.dtype, np.float64))
        pos = 0
        for i in range(d):
            seg = packed[..., pos:pos + d - i]
            out[..., i, i:] = seg
            out[..., i + 1:, i] = seg[..., 1:]
            pos += d - i
        return out
    rows, cols = triu_pairs(d)
    out = np.zeros(packed.shape[:-1] + (d, d))
    out[..., rows, cols] = packed
    out[..., cols, rows] = packed
    return out


def pack_sym(mats: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """(..., d, d) -> (..., T) upper triangles (NumPy), into ``out`` when given."""
    d = mats.shape[-1]
    if out is not None:
        out[...] = pack_sym(mats) if d <= PACK_INDEX_MAX_D else _pack_rows(mats, out)
        return out
    if d > PACK_INDEX_MAX_D:
        return _pack_rows(mats, np.empty(mats.shape[:-2] + (d * (d + 1) // 2,), dtype=mats.dtype))
    rows, cols = triu_pairs(d)
    return mats[..., rows, cols]


def _pack_rows(mats: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Row by row packing (no index arrays of T entries)."""
    d = mats.shape[-1]
    pos = 0
    for i in range(d):
        out[..., pos:pos + d - i] = mats[..., i, i:]
        pos += d - i
    return out


def lower_inverse(chol: np.ndarray, overwrite: bool = False) -> np.ndarray:
    """Inverses of lower triangular matrices (d, d) or (K, d, d) (LAPACK ``trtri``, about a
    third of a general inverse's work; a batched general inverse for a stack of small ones,
    see :data:`BATCHED_INVERSE_MAX_D`), float64, the strict upper part exactly 0. With
    ``overwrite`` (a float64 C-ordered ``chol`` that is not needed again) the inverses take its
    place: no (K, d, d) copy."""
    stack = chol[None] if chol.ndim == 2 else chol
    in_place = overwrite and stack.dtype == np.float64 and stack.flags.c_contiguous
    if stack.shape[0] >= 3 and stack.shape[-1] <= BATCHED_INVERSE_MAX_D:
        # few features: one batched call costs less than a LAPACK call per component
        inverses = np.linalg.inv(np.asarray(stack, dtype=np.float64))
        return _clear_upper(inverses, out=stack if in_place else inverses)
    out = stack if in_place else np.empty(stack.shape)
    trtri = lapack.dtrtri
    for k in range(stack.shape[0]):
        c = stack[k]
        # trtri works on Fortran order: c's transpose (upper triangular) is c in Fortran order
        inv, info = trtri(c.T if in_place else np.asarray(c, dtype=np.float64).T, lower=0,
                          overwrite_c=int(in_place))
        if info != 0:  # pragma: no cover - a Cholesky factor has a positive diagonal
            raise np.linalg.LinAlgError("singular triangular factor")
        if not in_place or not np.shares_memory(inv, out[k]):
            out[k] = inv.T
    # trtri leaves the other triangle as it found it
    _clear_upper(out, out=out)
    return out[0] if chol.ndim == 2 else out


#: from this many features the strict upper triangles are cleared row by row: a (d, d) mask
#: (kept for the next call) would be a D^2 array beside the covariances at D = 5,000
LOWER_MASK_MAX_D = 512


def _clear_upper(stack: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``stack`` (K, d, d) with its strict upper triangles set to 0, into ``out``."""
    d = stack.shape[-1]
    if d <= LOWER_MASK_MAX_D:
        return np.multiply(stack, _lower_mask(d), out=out)
    if out is not stack:
        out[...] = stack
    for i in range(d - 1):
        out[:, i, i + 1:] = 0.0
    return out


@functools.lru_cache(maxsize=64)
def _lower_mask(d: int) -> np.ndarray:
    mask = np.tri(d, dtype=bool)
    mask.flags.writeable = False
    return mask


#: from this many features Cholesky factors come from LAPACK's potrf on the matrices in place
#: (their C-ordered lower triangle is Fortran's upper one) rather than ``np.linalg.cholesky``,
#: which copies each into a Fortran-ordered workspace first: at D = 1,024 (a power of two,
#: whose copies alias in the cache) four factors took 64 ms against 25 ms (AVX-512 off)
LAPACK_CHOLESKY_MIN_D = 256


def _cholesky_lapack(cov: np.ndarray) -> np.ndarray:
    """``np.linalg.cholesky`` of float64 ``cov`` (d, d) or (K, d, d) by LAPACK ``potrf``
    (LinAlgError for a matrix that is not positive definite)."""
    out = np.array(cov, dtype=np.float64, order="C")
    stack = out[None] if out.ndim == 2 else out
    for k in range(stack.shape[0]):
        # C-ordered lower triangle = Fortran-ordered upper one of the transposed view
        factor, info = lapack.dpotrf(stack[k].T, lower=0, clean=1, overwrite_a=1)
        if info != 0:
            raise np.linalg.LinAlgError("Matrix is not positive definite")
        if not np.shares_memory(factor, stack[k]):  # pragma: no cover - in place on a Fortran-ordered array
            stack[k] = factor.T
    return out


def cholesky_or_raise(cov: np.ndarray, what: str) -> np.ndarray:
    """Lower Cholesky factor(s) of ``cov`` (d, d) or (K, d, d); a ValueError naming the first
    component that is not positive definite otherwise."""
    try:
        if cov.shape[-1] >= LAPACK_CHOLESKY_MIN_D and cov.dtype == np.float64:
            return _cholesky_lapack(cov)
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


# =========================================================================== the base class
def component_counts(xp: Any, resp_t: Any) -> Any:
    """Sum of each component's responsibilities, (K,) float64, from component-major ``resp_t``
    (K, rows). NumPy float64: BLAS's matrix-vector product with ones (``np.dot``: it runs
    without the interpreter lock, where ``@`` on a vector holds it and chunks on two threads
    wait on each other); otherwise a float64 sum (float32 responsibilities, no float64 copy)."""
    if xp is np and resp_t.dtype == np.float64:
        return np.dot(resp_t, np.ones(resp_t.shape[1]))
    return xp.sum(resp_t, axis=1, dtype=xp.float64)


class CovarianceStructure:
    """What one covariance structure of a Gaussian mixture changes (see the module docstring)."""

    #: the ``covariance_type`` name
    name: str = ""
    #: the M-step keeps an empty component's own covariance (False: one shared covariance)
    per_component: bool = True
    #: the model gives an empty component its old covariance back (False: the M-step keeps the
    #: structure's constraints for empty components itself)
    restore_empty: bool = True

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    # ------------------------------------------------------------------ parameters
    def shape(self, k: int, d: int) -> tuple:
        """Shape of the ``covariances`` parameter."""
        raise NotImplementedError

    def constraint(self) -> Constraint:
        """The constraint of the ``covariances`` parameter group."""
        raise NotImplementedError

    def n_parameters(self, k: int, d: int) -> int:
        """Free parameters of the covariances."""
        raise NotImplementedError

    def full_matrices(self, cov: np.ndarray, k: int, d: int) -> np.ndarray:
        """The covariances as a (K, D, D) stack of matrices (NumPy float64)."""
        raise NotImplementedError

    def precision_cholesky(self, cov: np.ndarray) -> np.ndarray:
        """scikit-learn's ``precisions_cholesky_`` (NumPy float64)."""
        raise NotImplementedError

    def precisions(self, prec_chol: np.ndarray) -> np.ndarray:
        """scikit-learn's ``precisions_`` from ``precisions_cholesky_``."""
        raise NotImplementedError

    def from_covariance(self, cov: np.ndarray, k: int, d: int) -> np.ndarray:
        """Covariances with every component starting at the (D, D) matrix ``cov``."""
        raise NotImplementedError

    def covariances_from_init(self, arr: np.ndarray, name: str) -> np.ndarray:
        """Covariances from a user's ``covariances_init`` or ``precisions_init`` (``name``),
        of the right shape and finite; a ValueError naming the bad component otherwise."""
        raise NotImplementedError

    def check_positive_definite(self, cov: np.ndarray, where: str) -> None:
        """Raise ValueError naming the first component whose covariance is not positive
        definite (structures whose parameters are variances rely on their constraint)."""

    # ------------------------------------------------------------------ E-step layout
    def stacked_extra(self, d: int, products: bool = True) -> int:
        """Rows of per-row products below the D rows of ``Xc^T`` in the stacked chunk."""
        raise NotImplementedError

    def fill_products(self, buf: np.ndarray, d: int) -> None:
        """Write the per-row products into ``buf[d:]`` from ``buf[:d]`` = ``Xc^T`` (NumPy)."""

    def stacked_xp(self, xp: Any, xct: Any, pairs: Any, products: bool = True) -> Any:
        """The stacked chunk from ``Xc^T`` (D, rows) in any array library."""
        raise NotImplementedError

    def use_products(self, d: int, k: int) -> bool:
        """Whether the E-step's stacked rows carry the per-row products (``stacked_extra(d,
        True)``) for ``d`` features and ``k`` components; with False, ``stats`` gets the stacked
        rows without them (``stacked_extra(d, False)``). The default: always."""
        return True

    def prepare(self, p: Any, cov: np.ndarray, means_c: np.ndarray, to_xp: Callable[[np.ndarray], Any], eps: float,
                max_error: float) -> tuple[Any, Any]:
        """Fill the E-step's precomputations on ``p`` (a ``Prepared``: ``expanded`` and
        ``coef``, or ``whiten_t`` and ``shift``; always ``maha_means``, the squared distance
        of each mean from the centre in its component's metric, NumPy (K,)); returns ``(log_det, const)``, (K,) each (the
        log-determinant of the precision Cholesky factor and the constant of the expanded
        quadratic form), from NumPy float64 parameters."""
        raise NotImplementedError

    def log_joint_whitened(self, xp: Any, xct: Any, prep: Any, scratch: Any) -> Any:
        """log p(x_i, z_i = k), (K, rows), by the whitened form (``prep.expanded`` False)."""
        raise NotImplementedError(f"covariance_type={self.name!r} always uses the expanded form")

    def stats(self, xp: Any, stacked: Any, resp_t: Any, d: int, pairs: Any, weights: Any = None) -> dict:
        """Sufficient statistics (float64) from component-major responsibilities (K, rows)
        with row weights multiplied in (``weights``, (rows,) or None, for structures that
        need them again)."""
        f64 = xp.float64
        n_k = component_counts(xp, resp_t)
        st = xp.matrix_transpose(stacked) if hasattr(xp, "matrix_transpose") else stacked.T
        both = xp.astype(resp_t @ st, f64)  # ONE product gives first and second moments
        return {"n": n_k, "s1": both[:, :d], "s2": both[:, d:]}

    def shift_s2(self, n: Any, s1: np.ndarray, s2: np.ndarray, delta: np.ndarray) -> np.ndarray:
        """``s2`` about references moved by ``delta`` (K, D) from second moments ``s2`` and first
        moments ``s1`` about the old references (NumPy float64):
        sum r (x - a - delta)(x - a - delta)^T = s2 - s1 delta^T - delta s1^T + n delta delta^T."""
        raise NotImplementedError

    def min_variance(self, cov: np.ndarray, k: int, d: int) -> np.ndarray:
        """The smallest variance (eigenvalue) of each component's covariance, (K,) float64."""
        return np.linalg.eigvalsh(self.full_matrices(cov, k, d)).min(axis=1)

    # ------------------------------------------------------------------ missing values
    def missing_s2(self, resp: np.ndarray, xhat: np.ndarray, cond: np.ndarray, n_k: np.ndarray) -> np.ndarray:
        """``s2`` of one missingness pattern: responsibilities (r, K), conditional means
        (K, r, D) and conditional covariances (K, D, D) (NumPy float64), i.e.
        ``sum_r resp[r, k] xhat[k, r] xhat[k, r]^T + n_k[k] cond[k]`` in the structure's layout.
        The default :meth:`pack_second` is built on it."""
        raise NotImplementedError

    def pack_second(self, second: np.ndarray) -> np.ndarray:
        """``s2`` in this structure's layout from full second moments ``second`` (K, D, D)
        (NumPy float64; the batched missing-value E-step accumulates those). The default goes
        through :meth:`missing_s2` (no rows, unit weights, ``cond = second``)."""
        k, d = second.shape[0], second.shape[1]
        return self.missing_s2(np.zeros((1, k)), np.zeros((k, 1, d)), second, np.ones(k))

    def missing_variances(self, cov: np.ndarray, k: int, d: int) -> np.ndarray | None:
        """Per-coordinate variances (K, D) float64 when every covariance is diagonal AND the
        statistics need only per-coordinate second moments (``s2`` from the diagonal of
        :meth:`pack_second`'s input): the missing-value E-step then takes its cheap diagonal
        form. None (the default) takes the dense form, which works for any structure from
        :meth:`full_matrices`."""
        return None

    # ------------------------------------------------------------------ M-step
    def m_step(self, n: Any, nk: np.ndarray, s1: np.ndarray, s2: np.ndarray, about: np.ndarray, reg_covar: float,
               d: int, slack: Any = None, current: np.ndarray | None = None) -> np.ndarray:
        """Covariances maximising Q: the scatter about the means ``about`` (K, D) from the
        statistics, divided by ``nk`` (``n`` plus scikit-learn's 10 eps), plus ``reg_covar``
        on the diagonal. ``slack`` (K, D), when given, is the rounding error the statistics
        may carry in each variance: a variance in [-slack, 0) is rounding, not data, and is
        clipped to 0 before ``reg_covar`` is added. ``current``: the covariances the statistics
        were computed at (NumPy float64, or None), where an iterative M-step starts."""
        raise NotImplementedError

    def complete_loglik(self, total: float, n: Any, s1: np.ndarray, s2: np.ndarray, means_c: np.ndarray,
                        cov: np.ndarray, d: int) -> float:
        """``total`` plus the Gaussian part of Q(theta | theta') from the statistics (the
        weights' part is the caller's)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ memory
    def product_columns(self, d: int) -> int:
        """Per-row product columns counted in the memory budgets of a chunk."""
        return d

    def whitened_columns(self, k: int, d: int) -> int:
        """Per-row entries of the whitened form's temporary (beyond the products)."""
        return 0


# =========================================================================== dense: full, tied
class _Dense(CovarianceStructure):
    """Structures whose covariances are matrices (full, tied)."""

    def constraint(self) -> Constraint:
        return SymmetricPositiveDefinite()

    def _stack(self, arr: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _where(self, name: str, j: int, named: bool) -> str:
        raise NotImplementedError

    def covariances_from_init(self, arr: np.ndarray, name: str) -> np.ndarray:
        def describe(j: int, problem: str) -> str:
            return self._where(name, j, problem == "positive definite")

        inverting = name == "precisions_init"
        # precisions: their own factorisation below is the positive-definiteness check
        check_symmetric_positive_definite(self._stack(arr), describe, factorise=not inverting)
        if inverting:  # inverted in place from the Cholesky factor (LAPACK potrf, potri)
            stack = np.array(self._stack(arr), dtype=np.float64)  # C order: Fortran sees each transposed
            for j in range(len(stack)):
                a = stack[j]
                c, info = lapack.dpotrf(a.T, lower=0, overwrite_a=1)  # Fortran upper = our lower
                if info != 0:
                    raise ValueError(f"{describe(j, 'positive definite')} is not positive definite")
                c, info = lapack.dpotri(c, lower=0, overwrite_c=1)
                if info != 0:  # pragma: no cover - a factor with a positive diagonal has an inverse
                    raise np.linalg.LinAlgError("precision not positive definite")
                if not np.shares_memory(c, a):  # pragma: no cover - overwrite honoured for F-ordered input
                    a[...] = c.T
                for i in range(a.shape[0] - 1):  # potri filled our lower triangle: mirror it
                    a[i, i + 1:] = a[i + 1:, i]
            arr = stack.reshape(np.shape(arr))
        return arr

    def check_positive_definite(self, cov: np.ndarray, where: str) -> None:
        cholesky_or_raise(cov, f"{where}: covariances")

    def _own_second(self, second: np.ndarray, j: int):
        """Component j's own second moments (None when they are shared)."""
        raise NotImplementedError

    def _shared_term(self, second: np.ndarray, covs: np.ndarray) -> float:
        """The part of Q from second moments shared by all components (0 when none are)."""
        return 0.0

    def complete_loglik(self, total, n, s1, s2, means_c, cov, d):
        second = unpack_sym(s2, d)
        covs = self.full_matrices(cov, len(n), d)
        for j in range(len(n)):
            prec = np.linalg.inv(covs[j])
            _, logdet = np.linalg.slogdet(covs[j])
            m = means_c[j]
            own = self._own_second(second, j)
            cross = -np.outer(s1[j], m) if own is None else own - np.outer(s1[j], m)
            sj = cross - np.outer(m, s1[j]) + n[j] * np.outer(m, m)
            total += -0.5 * (n[j] * (d * LOG_2PI + logdet) + np.sum(prec * sj))
        return total + self._shared_term(second, covs)

    def _shift_packed(self, n, s1, s2, delta):
        rows, cols = triu_pairs(s1.shape[1])
        return (s2 - s1[:, rows] * delta[:, cols] - delta[:, rows] * s1[:, cols]
                + n[:, None] * delta[:, rows] * delta[:, cols])

    def missing_s2(self, resp, xhat, cond, n_k):
        rows, cols = triu_pairs(xhat.shape[2])
        second = np.einsum("rk,krd,kre->kde", resp, xhat, xhat) + n_k[:, None, None] * cond
        return second[:, rows, cols]

    def pack_second(self, second):
        return pack_sym(second)


class Full(_Dense):
    """A covariance matrix per component: ``covariances`` (K, D, D).

    Up to :data:`FULL_PRODUCTS_MAX_D` features the E-step works on the per-row products of the
    features (the expanded quadratic form and the second moments of all components from one
    product each); beyond, on the whitened form and one weighted Gram product per component."""

    name = "full"

    def shape(self, k: int, d: int) -> tuple:
        return (k, d, d)

    def n_parameters(self, k: int, d: int) -> int:
        return k * d * (d + 1) // 2

    def full_matrices(self, cov: np.ndarray, k: int, d: int) -> np.ndarray:
        return np.asarray(cov, dtype=np.float64)

    def precision_cholesky(self, cov: np.ndarray) -> np.ndarray:
        chol = cholesky_or_raise(np.asarray(cov, dtype=np.float64), "covariance")
        return np.swapaxes(lower_inverse(chol), 1, 2)

    def precisions(self, prec_chol: np.ndarray) -> np.ndarray:
        return prec_chol @ np.swapaxes(prec_chol, 1, 2)

    def from_covariance(self, cov: np.ndarray, k: int, d: int) -> np.ndarray:
        return np.repeat(cov[None], k, axis=0)

    def _stack(self, arr):
        return arr

    def _where(self, name, j, named):
        return f"{name}[{j}] (component {j})" if named else f"{name}[{j}]"

    def use_products(self, d: int, k: int) -> bool:
        """Whether the E-step takes the per-row products of ``d`` features for ``k`` components
        (else the whitened form and the Gram products; see :data:`FULL_PRODUCTS_COST`)."""
        if d > FULL_PRODUCTS_MAX_D:
            return False
        a, b, c = FULL_PRODUCTS_COST
        alpha, beta, gamma = FULL_GRAM_COST
        t = d * (d + 1) // 2
        return t * (a + b * k) + c * k <= k * (alpha * d * d + beta * d + gamma)

    # ------------------------------------------------------------------ E-step
    def stacked_extra(self, d: int, products: bool = True) -> int:
        return d * (d + 1) // 2 if products else 0

    def fill_products(self, buf: np.ndarray, d: int) -> None:
        # row i of the upper triangle: x_i * x_j for j >= i, written in place (no copies)
        pos = d
        for i in range(d):
            np.multiply(buf[i], buf[i:d], out=buf[pos:pos + d - i])
            pos += d - i

    def stacked_xp(self, xp: Any, xct: Any, pairs: Any, products: bool = True) -> Any:
        if not products:
            return xct
        prod = xp.take(xct, pairs[0], axis=0) * xp.take(xct, pairs[1], axis=0)
        return xp.concat([xct, prod], axis=0)

    def prepare(self, p: Any, cov: np.ndarray, means_c: np.ndarray, to_xp: Callable[[np.ndarray], Any], eps: float,
                max_error: float) -> tuple[Any, Any]:
        """The expanded quadratic form x'Px - 2 m'Px + m'Pm on centred data is one product on
        the same stacked rows as the M-step statistics, but it cancels: its rounding error near
        m_k is about ``eps * |m_k - center|^2_{P_k}``. It is used when that is below
        ``max_error`` (always in practice for float64; for float32 when every component mean
        lies within ~30 of its own standard deviations of the data centre) and the products
        are worth taking (:meth:`use_products`), otherwise the whitened form |U'(x - m)|^2,
        which does not cancel."""
        k, d = means_c.shape
        chol = cholesky_or_raise(np.asarray(cov, dtype=np.float64), "covariance")
        inv_chol = lower_inverse(chol, overwrite=True)  # L^{-1}; precision = L^{-T} L^{-1}
        del chol
        log_det = np.log(np.diagonal(inv_chol, axis1=1, axis2=2)).sum(axis=1)
        shift = (inv_chol @ means_c[:, :, None])[:, :, 0]  # L^{-1} m
        maha_means = np.sum(shift * shift, axis=1)  # |m_k - center|^2 in component k's metric
        p.maha_means = maha_means
        if d >= MIN_VARIANCE_BOUND_D:
            # 1 / tr(Sigma^-1) <= smallest eigenvalue (within a factor D): O(D^2) from L^{-1},
            # where an eigen-decomposition would be O(D^3) every pass (reference points only
            # need a power of two at or below the smallest standard deviation)
            p.min_variance = 1.0 / np.einsum("kij,kij->k", inv_chol, inv_chol)
        p.expanded = self.use_products(d, k) and float(eps * maha_means.max()) <= max_error
        if p.expanded:
            prec = np.swapaxes(inv_chol, 1, 2) @ inv_chol
            lin = (prec @ means_c[:, :, None])[:, :, 0]
            rows, cols = triu_pairs(d)
            quad = prec[:, rows, cols] * _offdiag_factor(d)  # -0.5 diagonal, -1 off-diagonal
            p.coef = to_xp(np.concatenate([lin, quad], axis=1))
            return log_det, maha_means
        # [U_1 ... U_K]^T Xc^T - [U_k^T m_k] with U_k = L_k^{-T}: all terms from one product
        p.whiten_t = to_xp(inv_chol.reshape(k * d, d))
        p.shift = to_xp(shift.reshape(k * d, 1))
        return log_det, 0.0

    def log_joint_whitened(self, xp: Any, xct: Any, prep: Any, scratch: Any) -> Any:
        d = xct.shape[0]
        k = prep.log_norm.shape[0]
        if xp is np and k * d > WHITENED_BLOCK:
            # wide data: one component at a time over all the chunk's rows, one triangular
            # product L_k^{-1} Xc each (BLAS trmm, in place: half a general product's work; a
            # product over a block of few rows would read the (K D, D) whitening matrix again
            # for every block)
            n = xct.shape[1]
            out = scratch.array("log_joint", (k, n), xct.dtype)
            y = scratch.array("whitened", (d, n), xct.dtype)
            trmm = blas.get_blas_funcs("trmm", (y,))
            for j in range(k):
                np.copyto(y, xct)
                # C-ordered (D, rows) is Fortran's (rows, D) = Xc'; Xc' L' = (L Xc)', L' upper
                res = trmm(1.0, prep.whiten_t[j * d:(j + 1) * d].T, y.T, side=1, lower=0, overwrite_b=1)
                if not np.shares_memory(res, y):  # pragma: no cover - overwrite_b honoured for F-ordered b
                    y[...] = res.T
                np.subtract(y, prep.shift[j * d:(j + 1) * d], out=y)
                np.einsum("dn,dn->n", y, y, out=out[j])
            out *= -0.5
            out += prep.log_norm
            return out
        if xp is np:
            # (K D, rows) whitened values, a block of rows at a time in a reused workspace:
            # bounded memory, and fresh temporaries would cost more in page faults than the
            # arithmetic
            n = xct.shape[1]
            block = max(16, min(WHITENED_BLOCK, WHITENED_BLOCK_BYTES // (k * d * xct.dtype.itemsize)))
            out = scratch.array("log_joint", (k, n), xct.dtype)
            for start in range(0, n, block):
                stop = min(n, start + block)
                y = np.matmul(prep.whiten_t, xct[:, start:stop],
                              out=scratch.array("whitened", (k * d, stop - start), xct.dtype))
                np.subtract(y, prep.shift, out=y)
                np.square(y, out=y)
                np.add.reduce(y.reshape(k, d, stop - start), axis=1, out=out[:, start:stop])
            out *= -0.5
            out += prep.log_norm
            return out
        y = prep.whiten_t @ xct - prep.shift
        y = y * y
        maha = xp.sum(xp.reshape(y, (k, d, -1)), axis=1)
        return prep.log_norm - 0.5 * maha

    def stats(self, xp: Any, stacked: Any, resp_t: Any, d: int, pairs: Any, weights: Any = None,
              scratch: Any = None, skip: Any = ()) -> dict:
        # (``skip``: components whose scatter the caller takes about another point; the
        # NumPy Gram loop leaves them out, their rows of s2 are 0)
        if stacked.shape[0] != d:  # the products are there: one product gives everything
            return super().stats(xp, stacked, resp_t, d, pairs, weights)
        # the Gram form: s1 from one product, each component's scatter from X' diag(r_k) X
        f64 = xp.float64
        k = resp_t.shape[0]
        n_k = component_counts(xp, resp_t)
        st = xp.matrix_transpose(stacked) if hasattr(xp, "matrix_transpose") else stacked.T
        s1 = xp.astype(resp_t @ st, f64)
        if xp is np:
            # X' diag(r_k) X = (X sqrt(r_k))' (X sqrt(r_k)), one triangle (BLAS syrk: half a
            # general product's work). C-ordered (D, rows) is Fortran's (rows, D) = B: syrk
            # with trans gives B'B, whose Fortran lower triangle is our upper one
            s2 = np.empty((k, d * (d + 1) // 2))
            # reused buffers (wide data: (D, D) would be faulted in afresh for every chunk)
            if scratch is None:
                weighted, gram = np.empty_like(stacked), np.zeros((d, d), dtype=stacked.dtype, order="F")
            else:
                # the whitened values' buffer: the log densities are done with it
                weighted = scratch.array("whitened", stacked.shape, stacked.dtype, keep=True)
                gram = scratch.array("gram", (d, d), stacked.dtype, keep=True).T  # Fortran-ordered view
            root = np.sqrt(np.maximum(resp_t, 0))
            syrk = blas.get_blas_funcs("syrk", (weighted,))
            skipped = {int(j) for j in skip}
            for j in range(k):
                if j in skipped:  # (its caller takes it about another point)
                    s2[j] = 0.0
                    continue
                np.multiply(stacked, root[j:j + 1], out=weighted)  # (D, rows)
                out = syrk(1.0, weighted.T, beta=0.0, c=gram, trans=1, lower=1, overwrite_c=1)
                # Fortran (D, D) lower triangle = our (C-ordered) upper one
                pack_sym(out.T.astype(f64, copy=False), out=s2[j])
            return {"n": n_k, "s1": s1, "s2": s2}
        grams = []  # (every component: ``skip`` is a saving the NumPy loop takes)
        for j in range(k):
            gram = xp.astype((stacked * resp_t[j:j + 1]) @ st, f64)
            grams.append(xp.take(xp.reshape(gram, (d * d,)), pairs[0] * d + pairs[1], axis=0))
        return {"n": n_k, "s1": s1, "s2": xp.stack(grams)}

    # ------------------------------------------------------------------ M-step
    def shift_s2(self, n: Any, s1: np.ndarray, s2: np.ndarray, delta: np.ndarray) -> np.ndarray:
        return self._shift_packed(n, s1, s2, delta)

    def m_step(self, n: Any, nk: np.ndarray, s1: np.ndarray, s2: np.ndarray, about: np.ndarray, reg_covar: float,
               d: int, slack: Any = None, current: np.ndarray | None = None) -> np.ndarray:
        if d > PACK_INDEX_MAX_D or len(n) * d * d * 8 >= INPLACE_M_STEP_BYTES:
            # large: one (K, D, D) array, updated in place (no (K, D, D) temporaries)
            cov = unpack_sym(s2, d)
            for j in range(len(n)):
                # scatter = S - s1 a' - a s1' + n a a' = S - w a' - a w' with w = s1 - n a / 2: one
                # symmetric rank-2 update of a triangle (BLAS syr2; C order is Fortran's transpose,
                # so its "upper" triangle is our lower one), then the other triangle mirrored
                w = s1[j] - 0.5 * n[j] * about[j]
                c = cov[j]
                out = blas.dsyr2(-1.0, w, np.asarray(about[j], dtype=np.float64), lower=0, a=c.T, overwrite_a=1)
                if not np.shares_memory(out, c):  # pragma: no cover - overwrite_a honoured for F-ordered input
                    c[...] = out.T
                for i in range(d - 1):
                    c[i, i + 1:] = c[i + 1:, i]
                c /= nk[j]
                c.flat[::d + 1] += reg_covar
            return cov
        kernels = _compiled.kernels() if len(n) * d * d <= SMALL_M_STEP_ENTRIES else None
        if kernels is not None:  # small: the same sums in one compiled loop (NumPy's per-call costs dominate)
            cov = np.empty((len(n), d, d))
            c64 = np.ascontiguousarray
            kernels["scatter_covariances"](c64(n, dtype=np.float64), c64(nk, dtype=np.float64),
                                           c64(s1, dtype=np.float64), c64(s2, dtype=np.float64),
                                           c64(about, dtype=np.float64), float(reg_covar), cov)
            return cov
        second = unpack_sym(s2, d)
        cross = s1[:, :, None] * about[:, None, :]
        scatter = second - cross - np.swapaxes(cross, 1, 2) + n[:, None, None] * about[:, :, None] * about[:, None, :]
        cov = scatter / nk[:, None, None]
        cov = 0.5 * (cov + np.swapaxes(cov, 1, 2))
        cov.reshape(len(n), d * d)[:, ::d + 1] += reg_covar  # the diagonals (a view: cov is new)
        return cov

    def _own_second(self, second, j):
        return second[j]

    def product_columns(self, d: int) -> int:
        return d * (d + 1) // 2

    def whitened_columns(self, k: int, d: int) -> int:
        # the Gram form's whitened values: (K D, rows) in blocks of at most WHITENED_BLOCK rows,
        # or (D, rows) one component at a time (wide data)
        if self.use_products(d, k):
            return 0
        return d if k * d > WHITENED_BLOCK else k * d


class Tied(_Dense):
    """One covariance matrix shared by all components: ``covariances`` (D, D)."""

    name = "tied"
    per_component = False

    def shape(self, k: int, d: int) -> tuple:
        return (d, d)

    def n_parameters(self, k: int, d: int) -> int:
        return d * (d + 1) // 2

    def full_matrices(self, cov: np.ndarray, k: int, d: int) -> np.ndarray:
        return np.broadcast_to(np.asarray(cov, dtype=np.float64), (k, d, d)).copy()

    def precision_cholesky(self, cov: np.ndarray) -> np.ndarray:
        cov = np.asarray(cov, dtype=np.float64)
        chol = cholesky_or_raise(cov, "covariance")
        return solve_triangular(chol, np.eye(cov.shape[-1]), lower=True).T

    def precisions(self, prec_chol: np.ndarray) -> np.ndarray:
        return prec_chol @ prec_chol.T

    def from_covariance(self, cov: np.ndarray, k: int, d: int) -> np.ndarray:
        return cov

    def _stack(self, arr):
        return arr[None]

    def _where(self, name, j, named):
        return name

    # ------------------------------------------------------------------ E-step
    def stacked_extra(self, d: int, products: bool = True) -> int:
        return 0

    def stacked_xp(self, xp: Any, xct: Any, pairs: Any, products: bool = True) -> Any:
        return xct

    def prepare(self, p: Any, cov: np.ndarray, means_c: np.ndarray, to_xp: Callable[[np.ndarray], Any], eps: float,
                max_error: float) -> tuple[Any, Any]:
        k = means_c.shape[0]
        prec_chol = self.precision_cholesky(cov)
        log_det = np.full(k, np.log(np.diagonal(prec_chol)).sum())
        p.expanded = False
        p.whiten_t = to_xp(prec_chol.T.copy())
        whitened_means = means_c @ prec_chol
        p.maha_means = np.sum(whitened_means * whitened_means, axis=1)
        p.shift = to_xp(whitened_means[:, :, None])
        return log_det, 0.0

    def log_joint_whitened(self, xp: Any, xct: Any, prep: Any, scratch: Any) -> Any:
        y = prep.whiten_t @ xct
        if xp is np:  # the (K, D, rows) difference in reused memory (fresh pages fault in)
            k, d, rows = prep.shift.shape[0], y.shape[0], y.shape[1]
            diff = np.subtract(y[None, :, :], prep.shift, out=scratch.array("tied_diff", (k, d, rows), y.dtype))
            np.multiply(diff, diff, out=diff)
            return prep.log_norm - 0.5 * np.sum(diff, axis=1)
        diff = y[None, :, :] - prep.shift
        maha = xp.sum(diff * diff, axis=1)
        return prep.log_norm - 0.5 * maha

    def stats(self, xp: Any, stacked: Any, resp_t: Any, d: int, pairs: Any, weights: Any = None) -> dict:
        f64 = xp.float64
        n_k = component_counts(xp, resp_t)
        xct = stacked
        s1 = xp.astype(resp_t @ xp.matrix_transpose(xct), f64) if hasattr(xp, "matrix_transpose") \
            else (resp_t @ xct.T).astype(f64)
        xw = xct if weights is None else xct * weights
        xwt = xp.matrix_transpose(xw) if hasattr(xp, "matrix_transpose") else xw.T
        scatter = xp.astype(xct @ xwt, f64)
        if xp is np:
            return {"n": n_k, "s1": s1, "s2": pack_sym(scatter)}
        s2 = xp.take(xp.reshape(scatter, (d * d,)), pairs[0] * d + pairs[1], axis=0)
        return {"n": n_k, "s1": s1, "s2": s2}

    def missing_s2(self, resp: Any, xhat: np.ndarray, cond: np.ndarray, n_k: np.ndarray) -> np.ndarray:
        return super().missing_s2(resp, xhat, cond, n_k).sum(axis=0)

    def pack_second(self, second: np.ndarray) -> np.ndarray:
        return pack_sym(second.sum(axis=0))

    # ------------------------------------------------------------------ M-step
    def shift_s2(self, n: Any, s1: np.ndarray, s2: np.ndarray, delta: np.ndarray) -> np.ndarray:
        rows, cols = triu_pairs(s1.shape[1])
        return s2 + (self._shift_packed(n, s1, np.zeros((len(n), len(rows))), delta)).sum(axis=0)

    def min_variance(self, cov: np.ndarray, k: int, d: int) -> np.ndarray:
        return np.full(k, np.linalg.eigvalsh(np.asarray(cov, dtype=np.float64)).min())

    def m_step(self, n: Any, nk: np.ndarray, s1: np.ndarray, s2: np.ndarray, about: np.ndarray, reg_covar: float,
               d: int, slack: Any = None, current: np.ndarray | None = None) -> np.ndarray:
        second = unpack_sym(s2, d)
        cross = s1.T @ about
        scatter = second - cross - cross.T + (about.T * n) @ about
        cov = scatter / nk.sum()
        cov = 0.5 * (cov + cov.T)
        cov[np.arange(d), np.arange(d)] += reg_covar
        return cov

    def _own_second(self, second, j):
        return None  # second moments summed over the components: one shared term below

    def _shared_term(self, second, covs) -> float:
        return -0.5 * np.sum(np.linalg.inv(covs[0]) * second)

    def whitened_columns(self, k: int, d: int) -> int:
        return k * d


# =========================================================================== diagonal: diag, spherical
class Diag(CovarianceStructure):
    """A variance per component and coordinate: ``covariances`` (K, D)."""

    name = "diag"

    def shape(self, k: int, d: int) -> tuple:
        return (k, d)

    def constraint(self) -> Constraint:
        return Positive()

    def n_parameters(self, k: int, d: int) -> int:
        return k * d

    def full_matrices(self, cov: np.ndarray, k: int, d: int) -> np.ndarray:
        out = np.zeros((k, d, d))
        out.reshape(k, d * d)[:, ::d + 1] = self._per_coordinate(np.asarray(cov, dtype=np.float64), d)
        return out

    def precision_cholesky(self, cov: np.ndarray) -> np.ndarray:
        cov = np.asarray(cov, dtype=np.float64)
        positive = cov > 0
        if not positive.all():
            bad = np.argwhere(~positive)
            j = int(bad[0][0])
            if np.all(cov[tuple(bad[0])] == 0):
                raise ValueError(f"component {j} collapsed onto a single point (its variance is 0, a degenerate "
                                 f"fit); set reg_covar > 0")
            raise ValueError(f"variance of component {j} is not positive; increase reg_covar")
        return 1.0 / np.sqrt(cov)

    def precisions(self, prec_chol: np.ndarray) -> np.ndarray:
        return prec_chol ** 2

    def from_covariance(self, cov: np.ndarray, k: int, d: int) -> np.ndarray:
        return np.repeat(np.diag(cov)[None], k, axis=0)

    def covariances_from_init(self, arr: np.ndarray, name: str) -> np.ndarray:
        bad = np.argwhere(~(arr > 0))
        if bad.size:
            raise ValueError(f"{name} must be positive; component {int(bad[0][0])} is not")
        return 1.0 / arr if name == "precisions_init" else arr

    # ------------------------------------------------------------------ E-step
    def stacked_extra(self, d: int, products: bool = True) -> int:
        return d

    def fill_products(self, buf: np.ndarray, d: int) -> None:
        np.multiply(buf[:d], buf[:d], out=buf[d:])

    def stacked_xp(self, xp: Any, xct: Any, pairs: Any, products: bool = True) -> Any:
        return xp.concat([xct, xct * xct], axis=0)

    def _precision_terms(self, prec_chol, d):
        """Per-coordinate precisions (K, D) and the log-determinants (K,)."""
        return prec_chol ** 2, np.log(prec_chol).sum(axis=1)

    def prepare(self, p: Any, cov: np.ndarray, means_c: np.ndarray, to_xp: Callable[[np.ndarray], Any], eps: float,
                max_error: float) -> tuple[Any, Any]:
        """The expanded form -0.5 (p . x^2 - 2 (m p) . x) with the stacked rows [Xc; Xc^2] is
        one product, but it cancels: its rounding error near m_k is about ``eps * |m_k -
        center|^2_{P_k}``. Beyond ``max_error`` (a tight component very far from the centre),
        the whitened form sum_a p_ka (x_a - m_ka)^2, which does not cancel (as full's)."""
        prec, log_det = self._precision_terms(self.precision_cholesky(cov), means_c.shape[1])
        p.maha_means = (means_c ** 2 * prec).sum(axis=1)
        p.expanded = bool(eps * float(p.maha_means.max()) <= max_error)
        if p.expanded:
            p.coef = to_xp(np.concatenate([means_c * prec, -0.5 * prec], axis=1))
            return log_det, p.maha_means
        p.shift = to_xp(means_c[:, :, None])  # (K, D, 1)
        p.whiten_t = to_xp(np.sqrt(prec)[:, :, None])  # the per-coordinate whitening, 1 / sd
        return log_det, 0.0

    def log_joint_whitened(self, xp: Any, xct: Any, prep: Any, scratch: Any) -> Any:
        z = (xct[None, :, :] - prep.shift) * prep.whiten_t  # (K, D, rows)
        return prep.log_norm - 0.5 * xp.sum(z * z, axis=1)

    def missing_s2(self, resp: Any, xhat: np.ndarray, cond: np.ndarray, n_k: np.ndarray) -> np.ndarray:
        return np.einsum("rk,krd->kd", resp, xhat * xhat) + n_k[:, None] * np.diagonal(cond, axis1=1, axis2=2)

    def pack_second(self, second: np.ndarray) -> np.ndarray:
        return np.diagonal(second, axis1=1, axis2=2).copy()

    def missing_variances(self, cov: np.ndarray, k: int, d: int) -> np.ndarray | None:
        return self._per_coordinate(np.asarray(cov, dtype=np.float64), d)

    # ------------------------------------------------------------------ M-step
    def _variances(self, var):
        return var

    def shift_s2(self, n: Any, s1: np.ndarray, s2: np.ndarray, delta: np.ndarray) -> np.ndarray:
        return s2 - 2.0 * s1 * delta + n[:, None] * delta * delta

    def min_variance(self, cov: np.ndarray, k: int, d: int) -> np.ndarray:
        var = np.asarray(cov, dtype=np.float64)
        return var if var.ndim == 1 else var.min(axis=1)

    def m_step(self, n: Any, nk: np.ndarray, s1: np.ndarray, s2: np.ndarray, about: np.ndarray, reg_covar: float,
               d: int, slack: Any = None, current: np.ndarray | None = None) -> np.ndarray:
        var = (s2 - 2.0 * s1 * about + n[:, None] * about * about) / nk[:, None]
        if slack is not None:  # negative by rounding only: 0 (a one-point component's variance)
            var = np.where((var < 0) & (var >= -slack), 0.0, var)
        return self._variances(var + reg_covar)

    def complete_loglik(self, total: float, n: Any, s1: np.ndarray, s2: np.ndarray, means_c: np.ndarray,
                        cov: np.ndarray, d: int) -> float:
        var = np.asarray(cov, dtype=np.float64)
        var = self._per_coordinate(var, d)
        quad = (s2 - 2.0 * s1 * means_c + n[:, None] * means_c ** 2) / var
        total += float(-0.5 * np.sum(n * (d * LOG_2PI) + n * np.log(var).sum(axis=1) + quad.sum(axis=1)))
        return total

    def _per_coordinate(self, var, d):
        return var


class Spherical(Diag):
    """One variance per component: ``covariances`` (K,)."""

    name = "spherical"

    def shape(self, k: int, d: int) -> tuple:
        return (k,)

    def n_parameters(self, k: int, d: int) -> int:
        return k

    def from_covariance(self, cov: np.ndarray, k: int, d: int) -> np.ndarray:
        return np.full(k, np.trace(cov) / d)

    def _precision_terms(self, prec_chol, d):
        return np.repeat((prec_chol ** 2)[:, None], d, axis=1), d * np.log(prec_chol)

    def _variances(self, var):
        return var.mean(axis=1)

    def _per_coordinate(self, var, d):
        return np.repeat(var[:, None], d, axis=1)


#: covariance_type -> its structure (stateless instances)
COVARIANCE_STRUCTURES: dict[str, CovarianceStructure] = {
    s.name: s for s in (Full(), Tied(), Diag(), Spherical())
}
#: the names, in scikit-learn's order
COVARIANCE_TYPES = tuple(COVARIANCE_STRUCTURES)
