"""Gaussian mixtures, the maths: :class:`GaussianMixtureModel`.

The model holds statistics, M-step and initialisation only. What differs between covariance
structures lives in :mod:`emkit.models.covariance` (one class per structure), the numerical
kernels in :mod:`emkit.models.gaussian_kernels`, k-means in :mod:`emkit.models.kmeans`. The
scikit-learn face, :class:`emkit.GaussianMixture`, is in :mod:`emkit.estimators.gaussian`, and
the model search :func:`emkit.select_mixture` in :mod:`emkit.estimators.selection`.
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
import warnings
from typing import Any, Iterator, Sequence

import numpy as np

from emkit.core.arrays import asarray_like, device_of, float_eps, get_namespace, host_rows, to_numpy
from emkit.core.data import ROW_WEIGHTS, Data
from emkit.core.params import Real, Simplex
from emkit.models import gaussian_compiled as _compiled
from emkit.models import gaussian_kernels as kern
from emkit.models.base import DiscreteLatentModel
from emkit.models.covariance import COVARIANCE_STRUCTURES as _SKLEARN_STRUCTURES
from emkit.models.covariance import CovarianceStructure, Full, triu_pairs, unpack_sym
from emkit.models.covariance_mclust import MCLUST_ALIASES, MCLUST_STRUCTURES
from emkit.models.gaussian_prior import (GaussianPrior, ResolvedPrior, log_prior, map_statistics, prior_form,
                                         resolve_prior)
from emkit.models.hierarchical import HC_INIT_METHODS, HC_SEED, HC_SUBSET, hc_labels
from emkit.models.kmeans import kmeans

__all__ = ["COVARIANCE_TYPES", "EmptyComponentWarning", "GaussianMixtureModel", "INIT_METHODS",
           "covariance_structure", "data_center"]

#: "hc" / "hc:<transform>": mclust's model-based hierarchical start (emkit.models.hierarchical)
INIT_METHODS = ("kmeans", "k-means++", "random", "random_from_data") + HC_INIT_METHODS
#: covariance_type -> structure: scikit-learn's four, mclust's ten others, and mclust's names
#: of scikit-learn's four (VVV = full, EEE = tied, VVI = diag, VII = spherical)
COVARIANCE_STRUCTURES = {**_SKLEARN_STRUCTURES, **MCLUST_STRUCTURES,
                         **{m: _SKLEARN_STRUCTURES[s] for m, s in MCLUST_ALIASES.items()}}
COVARIANCE_TYPES = tuple(COVARIANCE_STRUCTURES)
#: initialisation uses all rows up to this many, else a random sample of
#: min(INIT_MAX_ROWS, max(5000, n * itemsize / 128)) rows (``host_rows``): k-means on more rows adds little,
#: and the copy stays small next to a large data set
INIT_MAX_ROWS = 20_000
#: per-chunk temporaries of the statistics pass: at most this many bytes ...
CHUNK_BYTES = 16 * 2**20
#: ... and at most this fraction of the data's size, but never below MIN_CHUNK_BYTES ...
CHUNK_FRACTION = 0.125
MIN_CHUNK_BYTES = 2 * 2**20
#: ... and small data may take up to SMALL_DATA_CHUNK_BYTES (SMALL_DATA_AREA / data size bytes,
#: 8 MiB for data up to 4 MiB, 2 MiB from 16 MiB): fewer, larger chunks, whose fixed cost
#: (Python, hand-offs) weighs less, for a few MiB that are a small amount in absolute terms
SMALL_DATA_CHUNK_BYTES = 8 * 2**20
SMALL_DATA_AREA = 32 * 2**40
#: a chunk is worth its own task (a thread of its own) from about this many bytes of temporaries:
#: its work is then many times its fixed cost (~0.05-0.2 ms of Python, set-up and hand-off) and
#: its BLAS products run at full speed. Threaded passes never cut smaller chunks than this, even
#: where the memory budget shared by the threads would (measured, 2 threads, D = K = 16: full
#: is fastest at 3,000-4,000 rows a chunk, diag at 6,000-12,000; 1,000-row chunks cost 1.4x
#: (full) and 2.4x (diag) more a row)
MIN_TASK_BYTES = 4 * 2**20
#: ... and with missing values this many times the rows: every chunk works out the terms of each
#: missingness pattern it holds, and with many patterns (D = 16, 10 % missing: thousands) most of
#: them occur in every chunk, so that work grows with the number of chunks (200,000 x 16, K = 16,
#: full, 2 threads: 5,000-row chunks 0.73 s a pass, 10,000 0.55 s, 50,000 0.34 s). A chunk's
#: own memory is its sorted copy of the rows (the E-step bounds the rest by blocks)
MISSING_TASK_FACTOR = 32
#: chunks of data with missing values hold this many times the rows (the missing rows are
#: processed in blocks of bounded size, the complete rows in sub-chunks of the usual size): the
#: per-chunk work on the missingness patterns is then spread over more rows
MISSING_CHUNK_FACTOR = 8
#: from this many features, wide data's chunk products use BLAS threads (``large_products``) and ...
#: (below it BLAS threads cost more than they gain: 2,560 x 256, K = 4 on 2 cores, 0.27 s an
#: iteration with BLAS threads against 0.10 s with chunks side by side, BLAS held at one thread;
#: 10,240 x 1,024: 2.98 s against 3.41 s)
WIDE_MIN_FEATURES = 512
#: ... a chunk of wide data holds as many rows as its two (rows, D) copies fit in this many bytes
#: (each chunk's Gram products write D x D per component: large chunks amortise that, and BLAS
#: runs its products at full speed only on many rows)
WIDE_CHUNK_BYTES = 64 * 2**20
#: complete NumPy float64 data (any covariance structure: the loop whitens by the factors of
#: its covariances as full matrices), in one chunk, whose rows x components x (features^2 + SMALL_E_STEP_TERM)
#: is at most this take the whole E-step, its set-up included, in one compiled call (``small_pass``
#: of :mod:`emkit.models.gaussian_compiled`): there NumPy's per-call costs, not
#: arithmetic, set the time. Measured (AVX-512 off, a pass with its set-up, compiled against
#: NumPy): 272 x 2, K = 9 (29,000) 53 against 107 us; 1,000 x 4, K = 4 (96,000) 114 against
#: 130; 64 x 16, K = 4 (68,000) 66 against 130; beyond, NumPy's products win: 2,000 x 2, K = 8
#: (192,000) 237 against 177 us
SMALL_E_STEP_WORK = 2**17
#: ... a term's exp and bookkeeping counted as this many multiply-adds of its whitening
SMALL_E_STEP_TERM = 8
_NO_WEIGHTS = np.empty(0)
_EPS64 = float(np.finfo(np.float64).eps)
#: a float64 component is far from the centre beyond this squared distance in its metric
#: (:func:`~emkit.models.gaussian_kernels.far_components`)
_FAR_MAHA64 = kern.far_tolerance(_EPS64) / _EPS64
#: the E-step keeps the grouping by missingness pattern of at most this many chunks
PATTERN_CACHE_CHUNKS = 4096
#: the centring vector is the mean of about this many evenly spaced rows
CENTER_ROWS = 4096
#: while the engine runs passes over unchanging data (:meth:`GaussianMixtureModel.keep_chunk_work`),
#: complete-data chunks of the fit's NumPy ``X`` of small data keep their stacked rows (the
#: centred rows and their squares or products: data only, no parameters) from one pass to the
#: next instead of rebuilding them, when all of them fit in this many bytes and in the small-data
#: allowance of the chunk temporaries (:data:`SMALL_DATA_AREA` / data size: 8 MiB for 4 MiB of
#: data, 2 MiB for 16 MiB; the peak memory above larger data stays a quarter of the data). They
#: are worth most while they stay in the processor's last-level cache between passes (2-core
#: EPYC, AVX-512 off, paired whole fits: 10,000 x 16, K = 16, full, 12 MB kept, 10 % less
#: time; diag, 2.6 MB, 6 %; 10,000 x 2, K = 3, 3 %); past the cache the gain is small (200,000
#: x 16 diag, 51 MB: 2-5 %, the first pass paying for the new memory)
KEPT_ROWS_BYTES = 16 * 2**20
#: guards the byte count of the kept rows (chunks on several threads)
_KEPT_LOCK = threading.Lock()


class EmptyComponentWarning(UserWarning):
    """A mixture component received no responsibility in an M-step."""


def data_center(x: Any) -> np.ndarray:
    """The centring vector for data ``x`` (n, D): the mean of every m-th row, about
    :data:`CENTER_ROWS` rows (plenty to centre; the copy stays small and no random numbers are
    used). Missing values (NaN) are skipped; a column with no observed entry there gets 0."""
    sample = x[::max(1, int(x.shape[0]) // CENTER_ROWS)]
    sample = np.asarray(to_numpy(sample), dtype=np.float64)
    # a product with ones: a reduction down the rows of a narrow array costs 20 times more
    center = (np.ones(sample.shape[0]) @ sample) / max(sample.shape[0], 1)
    if not np.all(np.isfinite(center)):  # missing values: mean of the observed entries
        center = np.nanmean(sample, axis=0)
    return np.where(np.isfinite(center), center, 0.0)


def covariance_structure(covariance_type: str | CovarianceStructure) -> CovarianceStructure:
    """The :class:`~emkit.models.covariance.CovarianceStructure` called ``covariance_type``
    (a structure object is returned as it is)."""
    if isinstance(covariance_type, CovarianceStructure):
        return covariance_type
    try:
        return COVARIANCE_STRUCTURES[covariance_type]
    except (KeyError, TypeError):
        raise ValueError(f"unknown covariance_type {covariance_type!r}; choose one of {COVARIANCE_TYPES}") from None


def _host_matrix(x: Any) -> np.ndarray:
    """``x`` as a NumPy float64 matrix, for the prior's data-dependent defaults (its mean and
    scale need every row once; a prior with both given never reads the data)."""
    return np.asarray(to_numpy(x), dtype=np.float64)


# =========================================================================== the model
class GaussianMixtureModel(DiscreteLatentModel):
    """Finite mixture of multivariate normals (the maths only; see the module docstring of
    :mod:`emkit.models.gaussian_kernels` for the statistics format).

    Parameters
    ----------
    n_components : int
    covariance_type : {"full", "tied", "diag", "spherical"} or CovarianceStructure
        The covariance structure (see :mod:`emkit.models.covariance`).
    reg_covar : float
        Added to the diagonal of every covariance in the M-step (scikit-learn's meaning).
    init_params : {"kmeans", "k-means++", "random", "random_from_data", "hc", "hc:<use>"}
        ``"hc"`` is mclust's default start (``"hc:SVD"``); ``"hc:VARS"``, ``"hc:STD"``,
        ``"hc:SPH"``, ``"hc:PCS"``, ``"hc:PCR"`` pick another transform of ``hcUse``.
    center : array of shape (n_features,), optional
        Fixed centring vector for the quadratic statistics (zero when None); the estimator
        passes :func:`data_center` of the data. Any value gives the same mathematics; a value
        near the data mean avoids cancellation.
    has_missing : bool, optional
        Whether the data has missing values (NaN): None checks each chunk, False skips the
        check (the data is known to be complete).
    prior : GaussianPrior, optional
        A conjugate prior (mclust's ``priorControl()``, see :mod:`emkit.models.gaussian_prior`):
        EM then maximises the log posterior (the engine adds :meth:`log_prior` to the
        log-likelihood) with the MAP M-step. Its data-dependent defaults are filled in by
        :meth:`prepare_data`.

    Data is :class:`~emkit.core.data.Data` ``(X, sample_weight)`` (or a plain tuple
    ``(X,)`` / ``(X, sample_weight)``) with ``X`` of shape (n, D) (NaN = missing) and
    ``sample_weight`` None or (n,). Parameters: ``weights`` (K,), ``means`` (K, D),
    ``covariances`` (K, D, D) full, (D, D) tied, (K, D) diag, (K,) spherical.

    Groups held fixed reach :meth:`m_step` as its ``fixed`` argument: with ``"means"`` fixed
    the covariance update is the scatter about the fixed means. Scratch memory (reused chunk
    temporaries, the per-parameter precomputation) is per instance and per thread, so one
    model serves several threads at once (``thread_safe``).
    """

    name = "GaussianMixture"
    thread_safe = True
    #: with reg_covar > 0 the M-step is not an exact maximiser of Q (the regularised covariance
    #: maximises a penalty that depends on the responsibilities), so the observed log-likelihood
    #: may fall a little (scikit-learn's fits do too): the engine tolerates this relative drop
    REGULARISED_MONOTONE_RTOL = 1e-6

    @property
    def monotone_rtol(self) -> float:  # type: ignore[override]  # a property over the class default
        """Relative log-likelihood decrease the regularised M-step may cause (0 without one)."""
        return self.REGULARISED_MONOTONE_RTOL if self.reg_covar > 0 else 0.0

    def __init__(self, n_components: int, covariance_type: str | CovarianceStructure = "full",
                 reg_covar: float = 1e-6, init_params: str = "kmeans", center=None,
                 has_missing: bool | None = None, prior: GaussianPrior | ResolvedPrior | None = None):
        self.n_components = int(n_components)
        #: the covariance structure: everything that differs by covariance type
        self.structure = covariance_structure(covariance_type)
        self.covariance_type = self.structure.name
        self.reg_covar = float(reg_covar)
        self.init_params = init_params
        self.center = None if center is None else np.asarray(center, dtype=np.float64)
        #: None: check each chunk for NaN; False / True: known for the data
        self.has_missing = None if has_missing is None else bool(has_missing)
        self.param_spec = {"weights": Simplex(), "means": Real(), "covariances": self.structure.constraint()}
        if isinstance(prior, GaussianPrior):  # refuse a form without a prior now, not at the first M-step
            prior_form(self.structure.name)
        #: the prior: None, a GaussianPrior still to be resolved for the data, or resolved
        self.prior = prior
        self._scratch = kern.Scratch()

    # ------------------------------------------------------------------ construction helpers
    def replace(self, **changes: Any) -> "GaussianMixtureModel":
        """A new model with some constructor arguments changed (this one is unchanged)."""
        settings: dict[str, Any] = {"n_components": self.n_components, "covariance_type": self.structure,
                    "reg_covar": self.reg_covar, "init_params": self.init_params, "center": self.center,
                    "has_missing": self.has_missing, "prior": self.prior}
        settings.update(changes)
        return type(self)(**settings)

    def prepare_data(self, data: tuple, rng: np.random.Generator | None = None) -> "GaussianMixtureModel":
        """A copy of this model centred for ``data`` (:func:`data_center` of its ``X``), with
        its prior's defaults computed from ``data``; this model is unchanged (a model is
        complete when constructed)."""
        changes: dict[str, Any] = {"center": data_center(data[0])}
        if isinstance(self.prior, GaussianPrior):
            x, w = data[0], self.row_weights(data)
            needs_data = self.prior.mean is None or self.prior.scale is None
            weights = None if w is None or not needs_data else np.asarray(to_numpy(w), dtype=np.float64).reshape(-1)
            changes["prior"] = resolve_prior(self.prior, _host_matrix(x) if needs_data else None, self.n_components,
                                             self.structure.name, n_features=int(x.shape[1]), weights=weights)
        return self.replace(**changes)

    def log_prior(self, params: dict) -> float:
        """Log prior density at ``params`` up to a constant (0 without a prior): the engine
        adds it to the log-likelihood, so that EM climbs the log posterior."""
        prior = self._resolved_prior()
        if prior is None:
            return 0.0
        means = np.asarray(to_numpy(params["means"]), dtype=np.float64)
        k, d = means.shape
        cov = self.structure.full_matrices(np.asarray(to_numpy(params["covariances"]), dtype=np.float64), k, d)
        return log_prior(prior, means, cov)

    def _resolved_prior(self) -> ResolvedPrior | None:
        """The prior ready for the M-step (None without one); ValueError for a prior whose
        data-dependent defaults :meth:`prepare_data` has not filled in."""
        if self.prior is not None and not isinstance(self.prior, ResolvedPrior):
            raise ValueError("GaussianMixtureModel: the prior's defaults depend on the data; call "
                             "prepare_data(data) first")
        return self.prior

    def release_scratch(self) -> None:
        """Free the scratch memory of every thread (after a fit or a prediction; an array still
        in use stays alive through its user's reference)."""
        self._scratch.clear()

    def __getstate__(self):  # scratch holds device arrays and thread-local state: never pickled
        state = dict(self.__dict__)
        state.pop("_scratch", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._scratch = kern.Scratch()

    # ------------------------------------------------------------------ data helpers
    def _center(self, d: int) -> np.ndarray:
        return np.zeros(d) if self.center is None else self.center

    def row_weights(self, data: tuple) -> Any:
        if isinstance(data, Data):
            return data.get(ROW_WEIGHTS)
        return data[1] if len(data) > 1 else None

    def _row_bytes(self, x) -> int:
        """Bytes of chunk temporaries per row of complete data (kept per width and dtype:
        every pass asks)."""
        d = int(x.shape[1])
        itemsize = int(getattr(getattr(x, "dtype", None), "itemsize", 8) or 8)
        known = self._scratch.shared.setdefault("row_bytes", {})
        per_row = known.get((d, itemsize))
        if per_row is None:
            per_row = known[(d, itemsize)] = self._row_bytes_of(d, itemsize)
        return per_row

    def _row_bytes_of(self, d: int, itemsize: int) -> int:
        k = self.n_components
        # per row: the stacked products and the log joint (data dtype), the exp workspace and
        # its mask (float64 only), a few per-row vectors; tied's whitened form holds (K, D)
        # per row (full's whitened fallback works in blocks of WHITENED_BLOCK rows)
        structure = self.structure
        products = structure.product_columns(d) if structure.use_products(d, k) else d  # Gram: a weighted copy
        per_row = itemsize * (d + products + k + 3 + structure.whitened_columns(k, d))
        if itemsize >= 8:
            per_row += 9 * k
        return per_row

    def _block_rows(self, x) -> int:
        """Rows of complete data whose temporaries fit the budget of one chunk (see
        :meth:`chunk_rows`)."""
        n, d = int(x.shape[0]), int(x.shape[1])
        itemsize = int(getattr(getattr(x, "dtype", None), "itemsize", 8) or 8)
        data_bytes = max(1, n * d * itemsize)
        small = min(SMALL_DATA_CHUNK_BYTES, SMALL_DATA_AREA // data_bytes)
        budget = min(CHUNK_BYTES, max(MIN_CHUNK_BYTES, small, int(CHUNK_FRACTION * data_bytes)))
        rows = max(256, budget // self._row_bytes(x))
        if d >= WIDE_MIN_FEATURES and not self.structure.use_products(d, self.n_components):
            # (but a quarter of the rows at most, D at least: the temporaries stay small beside the data)
            rows = max(rows, min(WIDE_CHUNK_BYTES // (2 * d * itemsize), max(d, n // 4)))
        return rows

    def chunk_rows(self, data: tuple) -> int:
        """Rows per chunk: the temporaries of a whole statistics pass (all its threads) stay
        below min(16 MiB, data size / 8), but 2 MiB are always allowed, and up to 8 MiB for
        small data (:data:`SMALL_DATA_AREA`; smaller chunks cost more in fixed per-chunk work
        than they save). Data with missing values take
        :data:`MISSING_CHUNK_FACTOR` times the rows (their E-step bounds its own temporaries)."""
        rows = self._block_rows(data[0])
        if self.has_missing:
            rows *= MISSING_CHUNK_FACTOR
        return rows

    def _sub_chunk_rows(self, x) -> int:
        """Rows a chunk with missing values works on at a time: the chunk's complete rows and
        the blocks of its missing rows (a chunk of data known to have missing values holds
        :data:`MISSING_CHUNK_FACTOR` sub-chunks)."""
        if self.has_missing:
            return max(1024, -(-int(x.shape[0]) // MISSING_CHUNK_FACTOR))
        return self._block_rows(x)

    def min_chunk_rows(self, data: tuple) -> int:
        """The smallest chunk worth a task of its own (:mod:`emkit.execution.local`): about
        :data:`MIN_TASK_BYTES` of temporaries, so that its work is a few times its fixed cost."""
        rows = max(512, MIN_TASK_BYTES // self._row_bytes(data[0]))
        if self.has_missing:
            rows *= MISSING_TASK_FACTOR
        return rows

    def large_products(self, data: tuple) -> bool:
        """Whether the chunks' matrix products are large enough for BLAS threads (wide data in
        the whitened and Gram form, :data:`WIDE_MIN_FEATURES` features or more): the statistics
        pass then runs its chunks one after another (:mod:`emkit.execution.local`)."""
        x = data[0]
        d = int(x.shape[1])
        return d >= WIDE_MIN_FEATURES and not self.structure.use_products(d, self.n_components)

    def prepare_pass(self, data: tuple, params: dict) -> None:
        """The per-parameter precomputation of a pass, once, before its chunks (they find it in
        the shared cache; see :mod:`emkit.execution.local`)."""
        x = data[0]
        if x is None or not hasattr(x, "dtype") or type(x).__module__.startswith("dask"):
            return
        if self._small_e_step_kernels(x) is not None:  # the compiled E-step prepares its own (one call)
            return
        self._prepared(params, x)

    def _small_e_step_kernels(self, x) -> dict | None:
        """The compiled loops when the data ``x`` of a pass take the compiled small-data
        E-step (see :data:`SMALL_E_STEP_WORK`), else None."""
        if type(x) is not np.ndarray or x.dtype != np.float64 or x.ndim != 2 or self.has_missing is not False:
            return None
        n, d = x.shape
        work = n * self.n_components * (d * d + SMALL_E_STEP_TERM)
        return _compiled.kernels() if 0 < work <= SMALL_E_STEP_WORK else None

    def _small_inputs(self, params: dict) -> tuple[np.ndarray, ...]:
        """The compiled small-data loops' inputs from ``params``: float64 weights, means and
        covariances, the covariances as full matrices (the loops whiten by their factors), the
        centre and the centred means."""
        weights = np.ascontiguousarray(to_numpy(params["weights"]), dtype=np.float64)
        means = np.asarray(to_numpy(params["means"]), dtype=np.float64)
        cov = np.ascontiguousarray(to_numpy(params["covariances"]), dtype=np.float64)
        k, d = means.shape
        full = cov if isinstance(self.structure, Full) else self.structure.full_matrices(cov, k, d)
        center = self._center(d)
        return weights, means, cov, full, center, np.ascontiguousarray(means - center)

    def _small_log_joint(self, x, params) -> np.ndarray | None:
        """The log joint densities (rows, K) of small complete data in one compiled call (as
        :meth:`_small_e_step`), else None."""
        kernels = self._small_e_step_kernels(x)
        if kernels is None:
            return None
        weights, means, cov, full, center, means_c = self._small_inputs(params)
        k, d = means.shape
        out = np.empty((int(x.shape[0]), k))
        if not kernels["small_log_joint"](x if x.flags.c_contiguous else np.ascontiguousarray(x), center, full,
                                          weights, means_c, kern.LOG_2PI, np.empty((k, d, d)), np.empty(k),
                                          np.empty(k), out):
            return None  # (the NumPy path says which covariance is not positive definite)
        return out

    def _small_e_step(self, x, w, params) -> tuple[dict, float] | None:
        """The compiled small-data E-step of the chunk ``x`` (the whole E-step, its set-up
        included, in one compiled call; see :data:`SMALL_E_STEP_WORK`), else None (also when a
        covariance is not positive definite: the NumPy path then says which)."""
        kernels = self._small_e_step_kernels(x)
        if kernels is None:
            return None
        weights, means, cov, full, center, means_c = self._small_inputs(params)
        k, d = means.shape
        inv_chol, log_norm, maha, anchors = np.empty((k, d, d)), np.empty(k), np.empty(k), np.empty((k, d))
        n, s1, s2 = np.zeros(k), np.zeros((k, d)), np.zeros((k, d * (d + 1) // 2))
        row_weights = _NO_WEIGHTS if w is None else np.ascontiguousarray(w, dtype=np.float64)
        dead_below = math.log(_EPS64 / (16 * k))
        x = x if x.flags.c_contiguous else np.ascontiguousarray(x)
        loglik = np.empty(1)
        status = kernels["small_pass"](x, center, full, weights, means_c, kern.LOG_2PI, _FAR_MAHA64, row_weights,
                                       dead_below, inv_chol, log_norm, maha, anchors, n, s1, s2, loglik)
        if status == 1:
            return None
        if status == 2:  # a component far from the centre: its statistics about its own reference point
            anchors = np.ascontiguousarray(self._anchors(means, cov, _EPS64, maha)[0])
            loglik[0] = kernels["small_e_step"](x, center, means_c, inv_chol, log_norm, anchors, row_weights,
                                                dead_below, n, s1, s2)
        if not isinstance(self.structure, Full):  # each component's second moments in the structure's layout
            s2 = self.structure.pack_second(unpack_sym(s2, d))
        return {"n": n, "s1": s1, "s2": s2, "ref": n[:, None] * anchors}, float(loglik[0])

    def _anchors(self, means, cov, eps: float, maha_means=None, min_var=None) -> tuple[np.ndarray, np.ndarray]:
        """The reference points of an E-step at these parameters, (K, D) absolute, and the far
        components: the centre for a component whose statistics about it lose nothing
        (:func:`~emkit.models.gaussian_kernels.far_components`, from ``maha_means``, the means'
        squared distances from the centre in their components' metrics, computed here when not
        given), else the mean rounded to a power-of-two grid below its standard deviation
        (representable in the data's dtype; ``min_var``, (K,), a lower bound of each component's
        smallest variance where the E-step's precomputation has one)."""
        means = np.asarray(to_numpy(means), dtype=np.float64)
        k, d = means.shape
        center = self._center(d)
        if maha_means is None:
            scratch_prep = kern.Prepared()
            self.structure.prepare(scratch_prep, to_numpy(cov), means - center, np.asarray, eps, 0.0)
            maha_means = scratch_prep.maha_means
        far = kern.far_components(maha_means, eps)
        anchors = np.empty((k, d))
        anchors[...] = center
        if far.size:  # their own product runs on x - a_k in the data's dtype: a_k representable there
            if min_var is None:
                min_var = self.structure.min_variance(to_numpy(cov), k, d)
            data_dtype = np.float32 if eps > 1e-10 else np.float64
            points = kern.reference_points(means[far], min_var[far])
            anchors[far] = np.asarray(points, dtype=data_dtype).astype(np.float64)
        return anchors, far

    def _prepared(self, params: dict, x) -> tuple:
        """Whitening matrices etc. for ``params`` and the triangle indices, cached (shared by
        the threads: read-only) by the identity of the arrays (the engine passes the same
        parameter arrays to every chunk of one pass)."""
        w, m, c = params["weights"], params["means"], params["covariances"]
        key_like = (type(x), x.dtype, getattr(x, "device", None))
        shared = self._scratch.shared
        cache = shared.get("prepared")
        if cache is not None and cache[0] is w and cache[1] is m and cache[2] is c and cache[3] == key_like:
            return cache[4]
        # the old one goes first (wide data's are (K, D, D)), with this frame's reference to it
        del cache
        shared.pop("prepared", None)
        d = int(to_numpy(m).shape[1])
        xp = get_namespace(x)
        if xp is np:  # NumPy kernels need no index arrays (they would hold D^2 entries)
            to_xp, pairs = functools.partial(np.asarray, dtype=x.dtype), None
        else:
            to_xp = functools.partial(asarray_like, like=x)
            pairs = tuple(xp.asarray(p, device=device_of(x)) for p in triu_pairs(d))
        eps = float_eps(x)
        prep = kern.prepare(params, self.structure, self._center(d), to_xp, eps=eps)
        # the statistics are taken about the current means (see gaussian_kernels): their offsets
        # from the centre, and the components too far from it for the one common product
        anchors, far = self._anchors(m, c, eps, prep.maha_means, getattr(prep, "min_variance", None))
        prep_pairs = (prep, pairs, anchors, far)
        shared["prepared"] = (w, m, c, key_like, prep_pairs)
        return prep_pairs

    # ------------------------------------------------------------------ E-step
    def _nan_rows(self, x):
        xp = get_namespace(x)
        return to_numpy(xp.any(xp.isnan(x), axis=1))

    def _missing_layout(self, x) -> tuple[np.ndarray | None, "kern.MissingPatterns | None"]:
        """The rows of chunk ``x`` with a missing value (None when there are none) and, for
        NumPy chunks, their :class:`~emkit.models.gaussian_kernels.MissingPatterns`.

        The grouping by pattern (a sort of the rows) is the same every iteration: it is kept
        per chunk (by the chunk's memory, shape and strides) in the shared scratch and reused
        while the chunk's NaN positions (compared bit-packed) are those it was made from."""
        if type(x) is not np.ndarray:
            nan_rows = self._nan_rows(x)
            return (np.flatnonzero(nan_rows) if nan_rows.any() else None), None
        mask = np.isnan(x)
        bits = np.packbits(mask, axis=None)
        key = (x.__array_interface__["data"][0], x.shape, x.strides)
        cache = self._scratch.shared.setdefault("missing_layout", {})
        hit = cache.get(key)
        if hit is not None and np.array_equal(hit[0], bits):
            return hit[1], hit[2]
        rows = np.flatnonzero(np.count_nonzero(mask, axis=1))
        layout = (rows, kern.MissingPatterns(mask[rows])) if rows.size else (None, None)
        if len(cache) >= PATTERN_CACHE_CHUNKS:  # new data every call (partial_fit): start afresh
            cache.clear()
        cache[key] = (bits, *layout)
        return layout

    def e_step(self, data: tuple, params: dict) -> tuple[dict, Any]:
        """Statistics and observed log-likelihood of one chunk, in one fused pass."""
        x, w = data[0], self.row_weights(data)
        xp = get_namespace(x)
        missing_rows, patterns = None, None
        if self.has_missing is not False:
            missing_rows, patterns = self._missing_layout(x)
        if missing_rows is None:
            return self._e_step_complete(xp, x, w, params)
        nan_rows = np.zeros(int(x.shape[0]), dtype=bool)
        nan_rows[missing_rows] = True
        keep = np.flatnonzero(~nan_rows)
        stats, ll = None, 0.0
        step = self._sub_chunk_rows(x)  # in sub-chunks of the usual size (see chunk_rows)
        for start in range(0, keep.size, step):
            rows = keep[start:start + step]
            idx = rows if xp is np else xp.asarray(rows, device=device_of(x))
            sub_w = None if w is None else (w[idx] if xp is np else xp.take(w, idx, axis=0))
            part, part_ll = self._e_step_complete(xp, x[idx] if xp is np else xp.take(x, idx, axis=0), sub_w, params)
            stats = part if stats is None else {key: stats[key] + part[key] for key in part}
            ll += part_ll
        stats_m, ll_m = self._e_step_missing(x, w, params, missing_rows, step, patterns)
        if stats is None:
            stats = {k: asarray_like(v, x, dtype=xp.float64) if xp is not np else v for k, v in stats_m.items()}
        else:
            stats = {k: stats[k] + (v if xp is np else asarray_like(v, x, dtype=xp.float64))
                     for k, v in stats_m.items()}
        return stats, ll + ll_m

    @contextlib.contextmanager
    def keep_chunk_work(self, data: tuple) -> Iterator[None]:
        """A span in which ``data`` do not change (the engine holds one around each restart):
        complete-data chunks of its NumPy ``X`` (views of it, as the statistics pass cuts them)
        keep their stacked rows from one pass to the next when they hold more than the centred
        rows (squares or products) and all of them fit in :data:`KEPT_ROWS_BYTES` and the
        small-data allowance (data without missing values); they are let go when the span ends."""
        x = data[0] if len(data) else None
        if type(x) is not np.ndarray or x.ndim != 2 or x.size == 0 or self.has_missing is not False:
            yield
            return
        n, d = int(x.shape[0]), int(x.shape[1])
        extra = self.structure.stacked_extra(d, self.structure.use_products(d, self.n_components))
        needed = (d + extra) * n * x.dtype.itemsize
        # a layout of the centred rows alone (tied, the whitened and Gram forms of wide data) is
        # one transposing copy to rebuild, small beside the pass's products: not worth memory
        # (D = 256, N = 2,560, K = 4, full: 5 MiB more at the peak, for nothing measurable)
        if not extra or needed > min(KEPT_ROWS_BYTES, SMALL_DATA_AREA // max(1, x.size * x.dtype.itemsize)):
            yield
            return
        # a chunk is a view of X: its base is X, or X's own base when X is a view
        owners = [x] + ([x.base] if isinstance(x.base, np.ndarray) else [])
        kept = self._scratch.shared.setdefault("kept_rows", {})
        with _KEPT_LOCK:
            state = kept.get(id(x))
            if state is None or state["owners"][0] is not x:
                # "slab": one array for the stacked rows of every chunk (one large allocation:
                # the system backs it with few, large pages; a chunk's own would fault in page
                # by page on the first pass), handed out in order as the chunks first need it
                state = {"owners": owners, "work": {}, "slab": np.empty((d + extra) * n, x.dtype), "used": 0,
                         "users": 0}
                for owner in owners:
                    kept[id(owner)] = state
            state["users"] += 1
        try:
            yield
        finally:
            with _KEPT_LOCK:
                state["users"] -= 1
                if state["users"] == 0:
                    for owner in owners:
                        if kept.get(id(owner)) is state:
                            del kept[id(owner)]

    def _kept_work(self, x) -> tuple[dict, tuple] | None:
        """``(record, key)`` of the kept work of chunk ``x`` inside :meth:`keep_chunk_work` (the
        record shared by the data's chunks, the chunk's own key), else None."""
        kept = self._scratch.shared.get("kept_rows")
        if not kept or type(x) is not np.ndarray:
            return None
        for candidate in (x, x.base):
            found = kept.get(id(candidate)) if candidate is not None else None
            if found is not None and any(owner is candidate for owner in found["owners"]):
                return found, (x.__array_interface__["data"][0], x.shape, x.strides, x.dtype.str)
        return None

    def _stacked_rows(self, xp, x, prep, pairs, kept: tuple[dict, tuple] | None = None):
        """The chunk's stacked rows (:func:`~emkit.models.gaussian_kernels.stacked_rows`): with
        ``kept`` (a :meth:`_kept_work` record and the key of these rows) kept from an earlier
        pass, or built into the record's slab and kept."""
        structure, scratch = self.structure, self._scratch
        if kept is not None:
            state, key = kept
            key = (key, prep.products)
            rows = state["work"].get(key)
            if rows is not None:
                return rows
            d = int(x.shape[1])
            height = d + structure.stacked_extra(d, prep.products)
            count = height * int(x.shape[0])
            slab = state["slab"]
            with _KEPT_LOCK:
                start = state["used"]
                fits = slab.dtype == x.dtype and start + count <= slab.size
                if fits:
                    state["used"] = start + count
            if fits:
                rows = kern.stacked_rows(np, x, prep.center, structure, pairs, scratch, products=prep.products,
                                         out=slab[start:start + count].reshape(height, int(x.shape[0])))
                state["work"][key] = rows
                return rows
        return kern.stacked_rows(xp, x, prep.center, structure, pairs, scratch, products=prep.products)

    def _e_step_complete(self, xp, x, w, params):
        small = self._small_e_step(x, w, params) if xp is np else None
        if small is not None:
            return small
        prep, pairs, anchors, far = self._prepared(params, x)
        structure, scratch = self.structure, self._scratch
        d = int(x.shape[1])
        stacked = self._stacked_rows(xp, x, prep, pairs, self._kept_work(x) if xp is np else None)
        lj = kern.log_joint_by_component(xp, stacked, prep, structure, d, scratch)
        resp, loglik = kern.posterior_by_component(xp, lj, scratch, w, row_loglik=False)
        return self._stats_about_means(xp, x, stacked, resp, w, pairs, anchors, far, prep.products), loglik

    def _stats_about_means(self, xp, x, stacked, resp_t, w, pairs, anchors, far, products: bool = True) -> dict:
        """Statistics about the reference points ``anchors`` (K, D), the current means: one
        product about the centre for every component, shifted to its mean, except the ``far``
        ones, which take their own product on ``x - m_k`` (``stacked`` is overwritten then)."""
        structure = self.structure
        d = int(x.shape[1])
        center = self._center(d)
        shared = not structure.per_component  # tied: one scatter summed over the components
        near_w = w
        if shared and far.size:
            keep = np.setdiff1d(np.arange(anchors.shape[0]), far)
            if xp is np:
                near_w = resp_t[keep].sum(axis=0)
            else:
                near_w = xp.sum(xp.take(resp_t, xp.asarray(keep, device=device_of(x)), axis=0), axis=0)
        if products:
            raw = structure.stats(xp, stacked, resp_t, d, pairs, weights=near_w)
        else:  # (the Gram form leaves out the far components: each takes its own product below)
            raw = structure.stats(xp, stacked, resp_t, d, pairs, weights=near_w,
                                  **self._gram_scratch(structure, skip=far))
        if not far.size:  # every component about the centre: the one product is all
            n_col = raw["n"][:, None]
            raw = dict(raw)
            raw["ref"] = n_col * (center.reshape(1, d) if xp is np else asarray_like(center.reshape(1, d), n_col))
            return raw
        # the structure's statistics are new arrays of this pass: NumPy float64 ones are updated
        # in place (wide data: no second (K, T) copy)
        n, s1, s2 = (np.asarray(to_numpy(raw[key]), dtype=np.float64) for key in ("n", "s1", "s2"))
        ref = n[:, None] * anchors
        if far.size:
            for j in far.tolist():
                ref_j = anchors[j].reshape(d, 1)
                col = ref_j.astype(x.dtype) if xp is np else asarray_like(ref_j, x)
                st = kern.stacked_rows(xp, x, col, structure, pairs, self._scratch, products=products)
                r_j = resp_t[j:j + 1]
                part = structure.stats(xp, st, r_j, d, pairs, weights=(r_j[0] if shared else None),
                                       **({} if products else self._gram_scratch(structure)))
                s1[j] = np.asarray(to_numpy(part["s1"]), dtype=np.float64)[0]
                part_s2 = np.asarray(to_numpy(part["s2"]), dtype=np.float64)
                if shared:
                    s2 = s2 + part_s2
                else:
                    s2[j] = part_s2[0]
        stats = {"n": n, "s1": s1, "s2": s2, "ref": ref}
        if xp is np:
            return stats
        out = {key: asarray_like(v, x, dtype=xp.float64) for key, v in stats.items() if key != "n"}
        out["n"] = raw["n"]
        return out

    def _gram_scratch(self, structure, skip: Any = ()) -> dict:
        """The scratch memory a structure's Gram-form statistics may reuse, and the components
        ``skip`` they may leave out (Full's ``stats`` takes both; other structures get nothing
        new)."""
        return {"scratch": self._scratch, "skip": skip} if isinstance(structure, Full) else {}

    def _log_joint_complete(self, xp, x, params):
        small = self._small_log_joint(x, params) if xp is np else None
        if small is not None:
            return small
        prep, pairs = self._prepared(params, x)[:2]
        structure, scratch = self.structure, self._scratch
        stacked = kern.stacked_rows(xp, x, prep.center, structure, pairs, scratch, products=prep.expanded)
        lj = kern.log_joint_by_component(xp, stacked, prep, structure, int(x.shape[1]), scratch)
        if xp is np:
            return lj.T.copy()  # a copy: lj lives in a reused workspace (ascontiguousarray does not copy when K = 1)
        return xp.matrix_transpose(lj)

    def _missing_prepared(self, params: dict, x) -> "kern.MissingPrepared":
        """The missing-value E-step's precomputation for ``params`` (NumPy), cached (shared by
        the threads) by the identity of the parameter arrays and the data's dtype."""
        w, m, c = params["weights"], params["means"], params["covariances"]
        dtype = np.dtype(np.float32 if float_eps(x) > 1e-10 else np.float64)
        shared = self._scratch.shared
        cache = shared.get("missing")
        if cache is not None and cache[0] is w and cache[1] is m and cache[2] is c and cache[3] == dtype:
            return cache[4]
        d = int(to_numpy(m).shape[1])
        prep = kern.missing_prepare(params, self.structure, self._center(d), dtype)
        shared["missing"] = (w, m, c, dtype, prep)
        return prep

    def _e_step_missing(self, x, w, params, rows, block_rows: int | None = None,
                        patterns: "kern.MissingPatterns | None" = None):
        """Statistics and log-likelihood of the rows ``rows`` of chunk ``x`` (rows with missing
        values), all missingness patterns at once (:func:`~emkit.models.gaussian_kernels.missing_pass`,
        NumPy on the host), about the same reference points as the complete rows."""
        x_np = to_numpy(x)
        w_np = None if w is None else to_numpy(w)
        d = x_np.shape[1]
        center = self._center(d)
        _, _, anchors, far = self._prepared(params, x)  # the complete rows' reference points
        mp = self._missing_prepared(params, x)
        n, s1, second, loglik = kern.missing_pass(x_np, mp, center, self._scratch, weights=w_np, rows=rows,
                                                  offsets=anchors - center, far=far, block_rows=block_rows,
                                                  patterns=patterns)
        stats = {"n": n, "s1": s1, "s2": self.structure.pack_second(second), "ref": n[:, None] * anchors}
        return stats, loglik

    # ------------------------------------------------------------------ discrete-latent API
    def log_joint(self, data: tuple, params: dict) -> Any:
        """log p(x_i (observed coordinates), z_i = k), shape (rows, K), chunked internally."""
        x = data[0]
        xp = get_namespace(x)
        n = int(x.shape[0])
        step = self.chunk_rows(data)
        if n > step:
            parts = [self.log_joint((x[s:s + step],), params) for s in range(0, n, step)]
            return xp.concat(parts, axis=0) if hasattr(xp, "concat") else np.concatenate(parts, axis=0)
        nan_rows = self._nan_rows(x)
        if not nan_rows.any():
            return self._log_joint_complete(xp, x, params)
        out = np.empty((n, self.n_components))
        keep = np.flatnonzero(~nan_rows)
        if keep.size:
            sub = x[keep] if xp is np else xp.take(x, xp.asarray(keep, device=device_of(x)), axis=0)
            out[keep] = to_numpy(self._log_joint_complete(xp, sub, params))
        miss = np.flatnonzero(nan_rows)
        d = int(x.shape[1])
        out[miss] = kern.missing_pass(to_numpy(x)[miss], self._missing_prepared(params, x), self._center(d),
                                      self._scratch, mode="log_joint")
        return asarray_like(out, x)

    def stats_from_responsibilities(self, data: tuple, resp: Any) -> dict:
        """Statistics when row i belongs to component k with weight ``resp[i, k]``."""
        x, w = data[0], self.row_weights(data)
        xp = get_namespace(x)
        if not self._nan_rows(x).any():
            return self._stats_from_resp(xp, x, resp, w)
        raise NotImplementedError("hard / stochastic EM with missing values is not supported; "
                                  "use algorithm='em'")

    def _stats_from_resp(self, xp, x, resp, w, chunk: int | None = None, center=None) -> dict:
        """Statistics of complete rows ``x`` (rows, D) given responsibilities (rows, K) that
        already include the row weights ``w`` (needed again by some structures); NumPy input in
        chunks of rows whose stacked products take about 1 MiB."""
        n = int(x.shape[0])
        d = int(x.shape[1])
        products = self.structure.use_products(d, self.n_components)
        if chunk is None:
            width = d + (self.structure.product_columns(d) if products else 2 * d)  # Gram: weighted copies
            chunk = max(64, 2**20 // (8 * width))
        if xp is np and n > chunk:
            total: dict = {}
            for s in range(0, n, chunk):
                part = self._stats_from_resp(np, x[s:s + chunk], resp[s:s + chunk],
                                             None if w is None else w[s:s + chunk], chunk, center)
                total = {k: total[k] + part[k] for k in part} if total else part
            return total
        center = self._center(d) if center is None else center
        if xp is np:
            center_col = center.astype(x.dtype).reshape(d, 1)
            pairs = None
            resp = np.asarray(resp, dtype=x.dtype)
        else:
            center_col = asarray_like(center.reshape(d, 1), x)
            pairs = tuple(xp.asarray(p, device=device_of(x)) for p in triu_pairs(d))
            resp = asarray_like(to_numpy(resp), x)
        stacked = kern.stacked_rows(xp, x, center_col, self.structure, pairs, self._scratch, products=products)
        resp_t = xp.matrix_transpose(resp) if hasattr(xp, "matrix_transpose") else resp.T
        stats = dict(self.structure.stats(xp, stacked, resp_t, d, pairs, weights=w))
        n_col = stats["n"][:, None]
        stats["ref"] = n_col * (center.reshape(1, d) if xp is np else asarray_like(center.reshape(1, d), n_col))
        return stats

    # ------------------------------------------------------------------ M-step
    def m_step(self, stats: dict, params: dict, fixed: frozenset = frozenset()) -> dict:
        """scikit-learn's M-step (see :func:`emkit.models.gaussian_kernels.m_step_numpy`),
        computed in float64 and returned in the library and dtype of the current parameters.
        With ``"means"`` in ``fixed`` the covariances are the scatter about the current (fixed)
        means, the maximiser when the means cannot move."""
        template = params["means"]
        d = int(template.shape[1])
        stats_np = {k: to_numpy(v) for k, v in stats.items()}
        fixed_means = None
        if "means" in fixed:
            fixed_means = np.asarray(to_numpy(template), dtype=np.float64)
        prior, divisor, data_counts = self._resolved_prior(), None, stats_np["n"]
        if prior is not None:  # MAP: the ML M-step on pseudo-statistics
            stats_np, divisor = map_statistics(prior, stats_np, self.structure, self._center(d))
        weights, means, cov, empty = kern.m_step_numpy(stats_np, self.structure, self.reg_covar, d, fixed_means,
                                                       eps=float_eps(template), center=self._center(d),
                                                       current=np.asarray(to_numpy(params["covariances"]), dtype=np.float64),
                                                       divisor=divisor)
        if prior is not None:  # no prior on the weights: n_k / n of the data, not of the pseudo-statistics
            weights = kern.mixing_weights(data_counts)
        if empty.size:
            old_means = to_numpy(params["means"])
            means[empty] = old_means[empty]
            if self.structure.per_component and self.structure.restore_empty:
                cov[empty] = to_numpy(params["covariances"])[empty]
            warnings.warn(f"GaussianMixture: component(s) {empty.tolist()} received no responsibility; "
                          f"they keep their mean and covariance and get weight ~0 (reduce n_components "
                          f"or try another initialisation)", EmptyComponentWarning, stacklevel=2)
        return {"weights": asarray_like(weights, params["weights"]), "means": asarray_like(means, template),
                "covariances": asarray_like(cov, params["covariances"])}

    def complete_loglik(self, stats: dict, params: dict) -> float:
        """Expected complete-data log-likelihood Q(params | params') from statistics at params'."""
        d = int(params["means"].shape[1])
        stats_np = {k: to_numpy(v) for k, v in stats.items()}
        means = np.asarray(to_numpy(params["means"]), dtype=np.float64)
        return kern.expected_complete_loglik(stats_np, np.asarray(to_numpy(params["weights"]), dtype=np.float64),
                                             means, to_numpy(params["covariances"]), self.structure)

    def rebase_stats(self, stats: dict, params: dict) -> dict:
        """The same statistics about the reference points of an E-step at ``params`` (online EM
        shifts its running statistics there before adding a batch's, so that every part of a sum
        shares its reference points)."""
        d = int(params["means"].shape[1])
        n, s1, s2 = (np.asarray(to_numpy(stats[key]), dtype=np.float64) for key in ("n", "s1", "s2"))
        new, _ = self._anchors(params["means"], params["covariances"], float_eps(params["means"]))
        move = new - kern.reference_offsets(stats, self._center(d))
        out = {"n": n, "s1": s1 - n[:, None] * move, "s2": self.structure.shift_s2(n, s1, s2, move),
               "ref": n[:, None] * new}
        return {key: asarray_like(v, stats[key]) for key, v in out.items()}

    # ------------------------------------------------------------------ initialisation
    def initialize(self, data: tuple, rng: np.random.Generator) -> dict:
        """Starting values from ``init_params`` on up to 20,000 rows drawn with ``host_rows``.

        * ``"kmeans"``: k-means++ seeding then Lloyd iterations; responsibilities = the
          k-means labels, then one M-step (scikit-learn's scheme).
        * ``"k-means++"``: k-means++ seeds only, each row assigned to its nearest seed, one M-step.
        * ``"random"``: responsibilities uniform at random and normalised, one M-step.
        * ``"random_from_data"``: means at K distinct random rows, the data's covariance for
          every component, equal weights (scikit-learn instead starts with covariance
          ``reg_covar * I``, which is degenerate).
        * ``"hc"`` / ``"hc:<use>"``: R mclust's default start, deterministic (``rng`` unused):
          model-based hierarchical agglomeration (VVV criterion, data transform ``<use>``,
          default ``"SVD"``) of at most 2,000 rows (a fixed stratified subset of larger data,
          as mclust's ``subset``), cut into K groups, then one M-step from that classification
          (see :mod:`emkit.models.hierarchical`).

        NaN entries are replaced by column means for initialisation only.
        """
        x = data[0]
        n_total = int(x.shape[0])
        # all rows of small data; for large data a sample that stays a small fraction of it
        itemsize = int(getattr(getattr(x, "dtype", None), "itemsize", 8) or 8)
        n_max = n_total if n_total <= INIT_MAX_ROWS else \
            min(INIT_MAX_ROWS, max(5000, n_total * itemsize // 128))  # float64 copy <= 1/16 of X
        hc_use = (self.init_params.partition(":")[2] or "SVD") if self.init_params in HC_INIT_METHODS else None
        if hc_use is not None:  # mclust's subset size; a fixed seed keeps the start deterministic
            n_max, rng = min(n_total, HC_SUBSET), np.random.default_rng(HC_SEED)
        sample = np.asarray(host_rows(x, n_max, rng), dtype=np.float64)
        w = self.row_weights(data)
        w_sample = None
        if w is not None and n_max >= n_total:
            w_sample = np.asarray(to_numpy(w), dtype=np.float64)
        if np.isnan(sample).any():
            sample = np.where(np.isnan(sample), np.nanmean(sample, axis=0), sample)
        k = self.n_components
        d = sample.shape[1]
        if w_sample is not None and np.any(w_sample == 0):  # zero-weight rows carry no information
            keep = w_sample > 0
            sample, w_sample = sample[keep], w_sample[keep]
        n = sample.shape[0]
        if self.init_params == "random_from_data":
            distinct = _distinct_rows(sample)
            if len(distinct) >= k:
                rows = rng.choice(distinct, size=k, replace=False)
            else:  # every distinct row, then repeats (those components share a start)
                rows = np.concatenate([distinct, rng.choice(distinct, size=k - len(distinct))])
            means = sample[rows]
            cov = _weighted_cov(sample, w_sample) + self.reg_covar * np.eye(d)
            params = {"weights": np.full(k, 1.0 / k), "means": means,
                      "covariances": self.structure.from_covariance(cov, k, d)}
        else:
            if self.init_params == "random":
                resp = rng.uniform(size=(n, k))
                resp /= resp.sum(axis=1, keepdims=True)
            else:
                if hc_use is not None:
                    labels = hc_labels(sample, k, use=hc_use)
                else:
                    lloyd = 300 if self.init_params == "kmeans" else 0
                    labels = kmeans(sample, k, rng, max_iter=lloyd, sample_weight=w_sample)
                resp = np.zeros((n, k))
                resp[np.arange(n), labels] = 1.0
            if w_sample is not None:
                resp *= w_sample[:, None]
            if self.init_params == "random":
                stats = self._stats_from_resp(np, sample, resp, w_sample)
            else:  # one cluster per row: statistics about each cluster's own mean (two passes)
                center = self._center(d)
                n_k = resp.sum(axis=0)
                with np.errstate(divide="ignore", invalid="ignore"):
                    offsets = (resp.T @ (sample - center)) / n_k[:, None]
                offsets = np.where((n_k > 0)[:, None], offsets, 0.0)
                stats = self._stats_from_resp(np, sample - offsets[labels], resp, w_sample, center=center)
                stats["ref"] = n_k[:, None] * (center + offsets)
            weights, means, cov, empty = kern.m_step_numpy(stats, self.structure, self.reg_covar, d,
                                                           center=self._center(d))
            means[empty] = self._center(d)  # an empty k-means cluster (fewer distinct rows than k)
            params = {"weights": weights, "means": means, "covariances": cov}
        self.release_scratch()  # the initialisation's scratch arrays are not needed again
        return {name: asarray_like(np.asarray(v, dtype=np.float64), x) for name, v in params.items()}

    # ------------------------------------------------------------------ misc
    def n_parameters(self, params: dict, fixed: Sequence[str] = ()) -> int:
        """Free parameters: K - 1 weights, K D means, covariances by type (minus fixed groups)."""
        k = self.n_components
        d = int(to_numpy(params["means"]).shape[1])
        counts = {"weights": k - 1, "means": k * d, "covariances": self.structure.n_parameters(k, d)}
        return int(sum(v for name, v in counts.items() if name not in fixed))

    def sample(self, params: dict, n: int, rng: np.random.Generator) -> tuple[Any, np.ndarray]:
        """Draw ``n`` rows: returns ``(X, labels)`` (X in the parameters' library and dtype)."""
        weights = np.asarray(to_numpy(params["weights"]), dtype=np.float64)
        means = np.asarray(to_numpy(params["means"]), dtype=np.float64)
        k, d = means.shape
        covs = self.structure.full_matrices(to_numpy(params["covariances"]), k, d)
        labels = rng.choice(k, size=n, p=weights / weights.sum())
        chol = np.linalg.cholesky(covs)
        z = rng.standard_normal((n, d))
        x = means[labels] + np.einsum("nij,nj->ni", chol[labels], z)
        return asarray_like(x, params["means"]), labels

    def impute(self, x: Any, params: dict) -> np.ndarray:
        """``x`` as a NumPy float64 copy with each NaN replaced by its conditional expectation
        given the row's observed coordinates,
        E[x_m | x_o] = sum_k p(k | x_o) (mu_km + S_k,mo S_k,oo^{-1} (x_o - mu_ko))."""
        out = np.array(to_numpy(x), dtype=np.float64)
        d = out.shape[1]
        miss = np.flatnonzero(np.isnan(out).any(axis=1))
        if miss.size:
            center = self._center(d)
            block = out[miss]
            mp = kern.missing_prepare(params, self.structure, center, np.float64)
            filled = kern.missing_pass(block, mp, center, self._scratch, mode="impute") + center
            nan = np.isnan(block)
            block[nan] = filled[nan]
            out[miss] = block
        return out

    def validate_params(self, params: dict, where: str = "initial parameters") -> None:
        cov = np.asarray(to_numpy(params.get("covariances", np.eye(1))), dtype=np.float64)
        if np.all(np.isfinite(cov)):  # name the component before the generic check
            self.structure.check_positive_definite(cov, where)
        super().validate_params(params, where)
        k = self.n_components
        means = to_numpy(params["means"])
        if np.shape(to_numpy(params["weights"])) != (k,):
            raise ValueError(f"{where}: weights must have shape ({k},), got {np.shape(to_numpy(params['weights']))}")
        if means.ndim != 2 or means.shape[0] != k:
            raise ValueError(f"{where}: means must have shape ({k}, n_features), got {means.shape}")
        expected = self.structure.shape(k, means.shape[1])
        got = np.shape(to_numpy(params["covariances"]))
        if got != expected:
            raise ValueError(f"{where}: covariances for covariance_type={self.covariance_type!r} must have "
                             f"shape {expected}, got {got}")


# --------------------------------------------------------------------------- module helpers
def _weighted_cov(x: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    w = np.ones(len(x)) if w is None else w
    mean = w @ x / w.sum()
    xc = x - mean
    cov = (xc * w[:, None]).T @ xc / w.sum()
    return np.atleast_2d(cov)


def _distinct_rows(x: np.ndarray) -> np.ndarray:
    """Indices of the distinct rows of ``x``, in order."""
    _, first = np.unique(x, axis=0, return_index=True)
    return np.sort(first)
