"""Gaussian mixtures: a drop-in replacement for scikit-learn's ``GaussianMixture`` on the EM
engine, with missing values, sample weights, fixed parameters, hard / stochastic EM, chunked
memory-bounded E-steps and any array library; plus :func:`select_mixture` (mclust-style
model search over numbers of components and covariance types).

The model (:class:`GaussianMixtureModel`) holds only the maths; the numerical kernels live in
:mod:`emkit.models.gaussian_kernels`.
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from emkit.core.arrays import asarray_like, device_of, float_eps, get_namespace, host_rows, is_dask, to_numpy
from emkit.core.validation import _any_value, as_array, check_n_components, check_sample_weight
from emkit.engine import em
from emkit.models.base import DiscreteLatentModel
from emkit.core.params import Positive, Real, Simplex, SymmetricPositiveDefinite
from emkit.models import gaussian_kernels as kern
from emkit.models.gaussian_kernels import COVARIANCE_TYPES
from emkit.estimators.mixture_base import MixtureEstimator

INIT_METHODS = ("kmeans", "k-means++", "random", "random_from_data")
#: initialisation uses all rows up to this many, else a random sample of
#: min(INIT_MAX_ROWS, max(5000, n * itemsize / 128)) rows (``host_rows``): k-means on more rows adds little,
#: and the copy stays small next to a large data set
INIT_MAX_ROWS = 20_000
#: per-chunk temporaries of the statistics pass: at most this many bytes ...
CHUNK_BYTES = 16 * 2**20
#: ... and at most this fraction of the data's size, but never below MIN_CHUNK_BYTES
CHUNK_FRACTION = 0.125
MIN_CHUNK_BYTES = 3 * 2**19


class EmptyComponentWarning(UserWarning):
    """A mixture component received no responsibility in an M-step."""


# =========================================================================== the model
class GaussianMixtureModel(DiscreteLatentModel):
    """Finite mixture of multivariate normals (the maths only; see the module docstring of
    :mod:`emkit.models.gaussian_kernels` for the statistics format).

    Parameters
    ----------
    n_components : int
    covariance_type : {"full", "tied", "diag", "spherical"}
    reg_covar : float
        Added to the diagonal of every covariance in the M-step (scikit-learn's meaning).
    init_params : {"kmeans", "k-means++", "random", "random_from_data"}
    fixed : sequence of str
        Parameter groups the engine holds fixed (pass the same list as ``em(fixed=...)``):
        with ``"means"`` fixed the covariance update is the scatter about the fixed means.
    center : array of shape (n_features,), optional
        Fixed centring vector for the quadratic statistics (chosen by :meth:`prepare_data`;
        zero when None). Any value gives the same mathematics; a value near the data mean
        avoids cancellation.

    Data is the tuple ``(X, sample_weight)`` with ``X`` of shape (n, D) (NaN = missing) and
    ``sample_weight`` None or (n,). Parameters: ``weights`` (K,), ``means`` (K, D),
    ``covariances`` (K, D, D) full, (D, D) tied, (K, D) diag, (K,) spherical.
    """

    name = "GaussianMixture"

    def __init__(self, n_components: int, covariance_type: str = "full", reg_covar: float = 1e-6,
                 init_params: str = "kmeans", center=None, fixed: Sequence[str] = ()):
        self.n_components = int(n_components)
        #: groups the engine holds fixed; the covariance M-step must then use the fixed means
        self.fixed = tuple(fixed)
        self.covariance_type = covariance_type
        self.reg_covar = float(reg_covar)
        self.init_params = init_params
        self.center = None if center is None else np.asarray(center, dtype=np.float64)
        #: None: check each chunk for NaN; False / True: known for the fitted data
        self.has_missing: bool | None = None
        cov_constraint = SymmetricPositiveDefinite() if covariance_type in ("full", "tied") else Positive()
        self.param_spec = {"weights": Simplex(), "means": Real(), "covariances": cov_constraint}
        self._cache: tuple | None = None

    # ------------------------------------------------------------------ data helpers
    def prepare_data(self, data: tuple, rng: np.random.Generator) -> None:
        """Fix the centring vector: the mean of every m-th row, about 4,096 rows (plenty to
        centre; the copy stays small and no random numbers are used)."""
        x = data[0]
        sample = x[::max(1, int(x.shape[0]) // 4096)]
        sample = np.asarray(sample.compute() if is_dask(sample) else to_numpy(sample), dtype=np.float64)
        center = sample.mean(axis=0)
        if not np.all(np.isfinite(center)):  # missing values: mean of the observed entries
            center = np.nanmean(sample, axis=0)
        self.center = np.where(np.isfinite(center), center, 0.0)

    def _center(self, d: int) -> np.ndarray:
        return np.zeros(d) if self.center is None else self.center

    def row_weights(self, data):
        return data[1] if len(data) > 1 else None

    thread_safe = True

    def chunk_rows(self, data) -> int:
        """Rows per chunk: the temporaries of a whole statistics pass (all its threads) stay
        below min(16 MiB, data size / 8) (but 1.5 MiB are always allowed, so small data sets
        take one pass)."""
        x = data[0]
        n, d = int(x.shape[0]), int(x.shape[1])
        k = self.n_components
        itemsize = int(getattr(getattr(x, "dtype", None), "itemsize", 8) or 8)
        extra = d * (d + 1) // 2 if self.covariance_type == "full" else d
        # per row: the stacked products and the log joint (data dtype), the exp workspace and
        # its mask (float64 only), a few per-row vectors; tied's whitened form holds (K, D)
        # per row (full's whitened fallback works in blocks of kern.WHITENED_BLOCK rows)
        per_row = itemsize * (d + extra + k + 3 + (k * d if self.covariance_type == "tied" else 0))
        if itemsize >= 8:
            per_row += 9 * k
        budget = min(CHUNK_BYTES, max(MIN_CHUNK_BYTES, int(CHUNK_FRACTION * n * d * itemsize)))
        return max(256, budget // per_row)

    def _prepared(self, params: dict, x) -> kern.Prepared:
        """Whitening matrices etc. for ``params``, cached by the identity of the arrays (the
        engine passes the same parameter arrays to every chunk of one pass)."""
        w, m, c = params["weights"], params["means"], params["covariances"]
        key_like = (type(x), x.dtype, getattr(x, "device", None))
        cache = self._cache
        if cache is not None and cache[0] is w and cache[1] is m and cache[2] is c and cache[3] == key_like:
            return cache[4]
        d = int(to_numpy(m).shape[1])
        xp = get_namespace(x)
        if xp is np:
            dtype = x.dtype
            to_xp = lambda a: np.asarray(a, dtype=dtype)  # noqa: E731
        else:
            to_xp = lambda a: asarray_like(np.asarray(a), x)  # noqa: E731
        prep = kern.prepare(params, self.covariance_type, self._center(d), to_xp, eps=float_eps(x))
        if xp is np:
            pairs = triu_pairs_cached(d)
        else:
            pairs = tuple(xp.asarray(p, device=device_of(x)) for p in kern.triu_pairs(d))
        prep_pairs = (prep, pairs)
        self._cache = (w, m, c, key_like, prep_pairs)
        return prep_pairs

    def __getstate__(self):  # the cache holds device arrays; rebuild it after unpickling
        state = dict(self.__dict__)
        state["_cache"] = None
        return state

    # ------------------------------------------------------------------ E-step
    def _nan_rows(self, x):
        xp = get_namespace(x)
        return to_numpy(xp.any(xp.isnan(x), axis=1))

    def e_step(self, data, params):
        """Statistics and observed log-likelihood of one chunk, in one fused pass."""
        x, w = data[0], self.row_weights(data)
        xp = get_namespace(x)
        nan_rows = None
        if self.has_missing is not False:
            nan_rows = self._nan_rows(x)
            if not nan_rows.any():
                nan_rows = None
        if nan_rows is None:
            return self._e_step_complete(xp, x, w, params)
        keep = np.flatnonzero(~nan_rows)
        stats, ll = None, 0.0
        if keep.size:
            idx = keep if xp is np else xp.asarray(keep, device=device_of(x))
            sub_w = None if w is None else (w[idx] if xp is np else xp.take(w, idx, axis=0))
            stats, ll = self._e_step_complete(xp, x[idx] if xp is np else xp.take(x, idx, axis=0), sub_w, params)
        stats_m, ll_m = self._e_step_missing(x, w, params, np.flatnonzero(nan_rows))
        if stats is None:
            stats = {k: asarray_like(v, x, dtype=xp.float64) if xp is not np else v for k, v in stats_m.items()}
        else:
            stats = {k: stats[k] + (v if xp is np else asarray_like(v, x, dtype=xp.float64))
                     for k, v in stats_m.items()}
        return stats, ll + ll_m

    def _e_step_complete(self, xp, x, w, params):
        prep, pairs = self._prepared(params, x)
        d = int(x.shape[1])
        stacked = kern.stacked_rows(xp, x, prep.center, self.covariance_type, pairs)
        lj = kern.log_joint_t(xp, stacked, prep, self.covariance_type, d)
        resp, loglik = kern.posterior_t(xp, lj, w, row_loglik=False)
        stats = kern.stats_t(xp, stacked, resp, self.covariance_type, d, pairs, weights=w)
        return stats, loglik

    def _log_joint_complete(self, xp, x, params):
        prep, pairs = self._prepared(params, x)
        stacked = kern.stacked_rows(xp, x, prep.center, self.covariance_type, pairs, products=prep.expanded)
        lj = kern.log_joint_t(xp, stacked, prep, self.covariance_type, int(x.shape[1]))
        if xp is np:
            return np.ascontiguousarray(lj.T)  # a copy: lj lives in a reused workspace
        return xp.matrix_transpose(lj)

    def _e_step_missing(self, x, w, params, rows):
        x_np = to_numpy(x)[rows]
        w_np = None if w is None else to_numpy(w)[rows].astype(np.float64)
        d = x_np.shape[1]
        stats = None
        loglik = 0.0
        for group_rows, lj, xhat, cond in kern.missing_parts(x_np, params, self.covariance_type, self._center(d)):
            from emkit.models.base import logsumexp_rows
            row_ll = logsumexp_rows(lj)
            resp = np.exp(lj - row_ll[:, None])
            if w_np is not None:
                resp *= w_np[group_rows, None]
                row_ll = row_ll * w_np[group_rows]
            loglik += float(row_ll.sum())
            part = kern.missing_stats(resp, xhat, cond, self.covariance_type)
            stats = part if stats is None else {k: stats[k] + part[k] for k in part}
        return stats, loglik

    # ------------------------------------------------------------------ discrete-latent API
    def log_joint(self, data, params):
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
        for group_rows, lj, _, _ in kern.missing_parts(to_numpy(x)[miss], params, self.covariance_type,
                                                       self._center(d)):
            out[miss[group_rows]] = lj
        return asarray_like(out, x)

    def stats_from_responsibilities(self, data, resp):
        """Statistics when row i belongs to component k with weight ``resp[i, k]``."""
        x, w = data[0], self.row_weights(data)
        xp = get_namespace(x)
        d = int(x.shape[1])
        nan_rows = self._nan_rows(x)
        center = self._center(d)
        if not nan_rows.any():
            return _stats_from_resp(xp, x, resp, w, center, self.covariance_type)
        raise NotImplementedError("hard / stochastic EM with missing values is not supported; "
                                  "use algorithm='em'")

    # ------------------------------------------------------------------ M-step
    def m_step(self, stats, params):
        """scikit-learn's M-step (see :func:`_gaussian_kernels.m_step_numpy`), computed in
        float64 and returned in the library and dtype of the current parameters."""
        template = params["means"]
        d = int(template.shape[1])
        stats_np = {k: to_numpy(v) for k, v in stats.items()}
        fixed_means_c = None
        if "means" in self.fixed:
            fixed_means_c = np.asarray(to_numpy(template), dtype=np.float64) - self._center(d)
        weights, means_c, cov, empty = kern.m_step_numpy(stats_np, self.covariance_type, self.reg_covar, d,
                                                         fixed_means_c)
        means = means_c + self._center(d)
        if empty.size:
            old_means = to_numpy(params["means"])
            means[empty] = old_means[empty]
            if self.covariance_type != "tied":
                cov[empty] = to_numpy(params["covariances"])[empty]
            warnings.warn(f"GaussianMixture: component(s) {empty.tolist()} received no responsibility; "
                          f"they keep their mean and covariance and get weight ~0 (reduce n_components "
                          f"or try another initialisation)", EmptyComponentWarning, stacklevel=2)
        return {"weights": _like(weights, params["weights"]), "means": _like(means, template),
                "covariances": _like(cov, params["covariances"])}

    def complete_loglik(self, stats, params) -> float:
        """Expected complete-data log-likelihood Q(params | params') from statistics at params'."""
        d = int(params["means"].shape[1])
        stats_np = {k: to_numpy(v) for k, v in stats.items()}
        means_c = np.asarray(to_numpy(params["means"]), dtype=np.float64) - self._center(d)
        return kern.expected_complete_loglik(stats_np, np.asarray(to_numpy(params["weights"]), dtype=np.float64),
                                             means_c, to_numpy(params["covariances"]), self.covariance_type)

    # ------------------------------------------------------------------ initialisation
    def initialize(self, data, rng):
        """Starting values from ``init_params`` on up to 100,000 rows drawn with ``host_rows``.

        * ``"kmeans"``: k-means++ seeding then Lloyd iterations; responsibilities = the
          k-means labels, then one M-step (scikit-learn's scheme).
        * ``"k-means++"``: k-means++ seeds only, each row assigned to its nearest seed, one M-step.
        * ``"random"``: responsibilities uniform at random and normalised, one M-step.
        * ``"random_from_data"``: means at K distinct random rows, the data's covariance for
          every component, equal weights (scikit-learn instead starts with covariance
          ``reg_covar * I``, which is degenerate).
        NaN entries are replaced by column means for initialisation only.
        """
        x = data[0]
        n_total = int(x.shape[0])
        # all rows of small data; for large data a sample that stays a small fraction of it
        itemsize = int(getattr(getattr(x, "dtype", None), "itemsize", 8) or 8)
        n_max = n_total if n_total <= INIT_MAX_ROWS else \
            min(INIT_MAX_ROWS, max(5000, n_total * itemsize // 128))  # float64 copy <= 1/16 of X
        sample = np.asarray(host_rows(x, n_max, rng), dtype=np.float64)
        w = data[1] if len(data) > 1 else None
        w_sample = None
        if w is not None and n_max >= n_total:
            w_sample = np.asarray(to_numpy(w), dtype=np.float64) if not is_dask(w) else np.asarray(w.compute())
        if np.isnan(sample).any():
            sample = np.where(np.isnan(sample), np.nanmean(sample, axis=0), sample)
        k = self.n_components
        d = sample.shape[1]
        if w_sample is not None and np.any(w_sample == 0):  # zero-weight rows carry no information
            keep = w_sample > 0
            sample, w_sample = sample[keep], w_sample[keep]
        n = sample.shape[0]
        if self.init_params == "random_from_data":
            distinct = _distinct_rows(sample, k)
            rows = rng.choice(distinct, size=k, replace=False)
            means = sample[rows]
            cov = _weighted_cov(sample, w_sample) + self.reg_covar * np.eye(d)
            covs = {"full": lambda: np.repeat(cov[None], k, axis=0), "tied": lambda: cov,
                    "diag": lambda: np.repeat(np.diag(cov)[None], k, axis=0),
                    "spherical": lambda: np.full(k, np.trace(cov) / d)}[self.covariance_type]()
            params = {"weights": np.full(k, 1.0 / k), "means": means, "covariances": covs}
        else:
            if self.init_params == "random":
                resp = rng.uniform(size=(n, k))
                resp /= resp.sum(axis=1, keepdims=True)
            else:
                lloyd = 300 if self.init_params == "kmeans" else 0
                labels = kmeans(sample, k, rng, max_iter=lloyd, sample_weight=w_sample)
                resp = np.zeros((n, k))
                resp[np.arange(n), labels] = 1.0
            if w_sample is not None:
                resp *= w_sample[:, None]
            center = self._center(d)
            stats = _stats_from_resp(np, sample, resp, w_sample, center, self.covariance_type)
            weights, means_c, cov, empty = kern.m_step_numpy(stats, self.covariance_type, self.reg_covar, d)
            params = {"weights": weights, "means": means_c + center, "covariances": cov}
        kern.release_workspaces()  # the initialisation's scratch arrays are not needed again
        dtype = _float_dtype(x)
        return {name: _from_host(np.asarray(v, dtype=np.float64), x, dtype) for name, v in params.items()}

    # ------------------------------------------------------------------ misc
    def n_parameters(self, params, fixed: Sequence[str] = ()) -> int:
        """Free parameters: K - 1 weights, K D means, covariances by type (minus fixed groups)."""
        k = self.n_components
        d = int(to_numpy(params["means"]).shape[1])
        cov = {"full": k * d * (d + 1) // 2, "tied": d * (d + 1) // 2, "diag": k * d, "spherical": k}
        counts = {"weights": k - 1, "means": k * d, "covariances": cov[self.covariance_type]}
        return int(sum(v for name, v in counts.items() if name not in fixed))

    def sample(self, params, n: int, rng: np.random.Generator):
        """Draw ``n`` rows: returns ``(X, labels)`` (X in the parameters' library and dtype)."""
        weights = np.asarray(to_numpy(params["weights"]), dtype=np.float64)
        means = np.asarray(to_numpy(params["means"]), dtype=np.float64)
        k, d = means.shape
        covs = kern.full_covariances(to_numpy(params["covariances"]), self.covariance_type, k, d)
        labels = rng.choice(k, size=n, p=weights / weights.sum())
        chol = np.linalg.cholesky(covs)
        z = rng.standard_normal((n, d))
        x = means[labels] + np.einsum("nij,nj->ni", chol[labels], z)
        return _like(x, params["means"]), labels

    def validate_params(self, params, where: str = "initial parameters") -> None:
        if self.covariance_type in ("full", "tied"):  # name the component before the generic check
            cov = np.asarray(to_numpy(params.get("covariances", np.eye(1))), dtype=np.float64)
            if np.all(np.isfinite(cov)):
                kern.cholesky_or_raise(cov, f"{where}: covariances")
        super().validate_params(params, where)
        k = self.n_components
        means = to_numpy(params["means"])
        if np.shape(to_numpy(params["weights"])) != (k,):
            raise ValueError(f"{where}: weights must have shape ({k},), got {np.shape(to_numpy(params['weights']))}")
        if means.ndim != 2 or means.shape[0] != k:
            raise ValueError(f"{where}: means must have shape ({k}, n_features), got {means.shape}")
        expected = _cov_shape(self.covariance_type, k, means.shape[1])
        got = np.shape(to_numpy(params["covariances"]))
        if got != expected:
            raise ValueError(f"{where}: covariances for covariance_type={self.covariance_type!r} must have "
                             f"shape {expected}, got {got}")


# --------------------------------------------------------------------------- module helpers
_PAIRS: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def triu_pairs_cached(d: int):
    if d not in _PAIRS:
        _PAIRS[d] = kern.triu_pairs(d)
    return _PAIRS[d]


def _stats_from_resp(xp, x, resp, w, center: np.ndarray, covariance_type: str, chunk: int | None = None) -> dict:
    """Statistics of complete rows ``x`` (rows, D) given responsibilities (rows, K) that already
    include the row weights ``w`` (needed again for tied); NumPy input in chunks of rows whose
    stacked products take about 1 MiB."""
    n = int(x.shape[0])
    if chunk is None:
        d = int(x.shape[1])
        width = d + (d * (d + 1) // 2 if covariance_type == "full" else d)
        chunk = max(64, 2**20 // (8 * width))
    if xp is np and n > chunk:
        total = None
        for s in range(0, n, chunk):
            part = _stats_from_resp(np, x[s:s + chunk], resp[s:s + chunk], None if w is None else w[s:s + chunk],
                                    center, covariance_type, chunk)
            total = part if total is None else {k: total[k] + part[k] for k in part}
        return total
    d = int(x.shape[1])
    if xp is np:
        center_col = center.astype(x.dtype).reshape(d, 1)
        pairs = triu_pairs_cached(d)
        resp = np.asarray(resp, dtype=x.dtype)
    else:
        center_col = asarray_like(center.reshape(d, 1), x)
        pairs = tuple(xp.asarray(p, device=device_of(x)) for p in kern.triu_pairs(d))
        resp = asarray_like(to_numpy(resp), x)
    stacked = kern.stacked_rows(xp, x, center_col, covariance_type, pairs)
    resp_t = xp.matrix_transpose(resp) if hasattr(xp, "matrix_transpose") else resp.T
    return kern.stats_t(xp, stacked, resp_t, covariance_type, d, pairs, weights=w)


def _cov_shape(covariance_type: str, k: int, d: int) -> tuple:
    return {"full": (k, d, d), "tied": (d, d), "diag": (k, d), "spherical": (k,)}[covariance_type]


def _like(value: np.ndarray, template):
    """``value`` in the library, device and dtype of ``template``."""
    if isinstance(template, np.ndarray):
        return np.asarray(value, dtype=template.dtype)
    return asarray_like(np.asarray(value), template)


def _from_host(value: np.ndarray, x, dtype):
    if is_dask(x) or get_namespace(x) is np:
        return np.asarray(value, dtype=dtype)
    return asarray_like(value, x)


def _weighted_cov(x: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    w = np.ones(len(x)) if w is None else w
    mean = w @ x / w.sum()
    xc = x - mean
    cov = (xc * w[:, None]).T @ xc / w.sum()
    return np.atleast_2d(cov)


def _distinct_rows(x: np.ndarray, k: int) -> np.ndarray:
    """Indices of distinct rows of ``x``; a ValueError when there are fewer than ``k``."""
    _, first = np.unique(x, axis=0, return_index=True)
    if len(first) < k:
        raise ValueError(f"n_components={k} but X has only {len(first)} distinct row(s); "
                         f"reduce n_components")
    return np.sort(first)


def kmeans(x: np.ndarray, k: int, rng: np.random.Generator, *, max_iter: int = 300,
           tol: float = 1e-4, sample_weight: np.ndarray | None = None) -> np.ndarray:
    """Labels of a small k-means: k-means++ seeding (greedy, 2 + log k candidates per seed, as
    scikit-learn) then Lloyd iterations until no centre moves more than ``tol`` times the mean
    per-feature variance. NumPy only (initialisation runs on host rows).

    Raises ValueError when ``x`` has fewer than ``k`` distinct rows."""
    n, d = x.shape
    w = np.ones(n) if sample_weight is None else sample_weight
    sq = np.einsum("ij,ij->i", x, x)

    def sq_dist(centres):
        out = sq[:, None] - 2.0 * x @ centres.T + np.einsum("ij,ij->i", centres, centres)[None, :]
        return np.maximum(out, 0.0)

    n_trials = 2 + int(np.log(k))
    first = rng.choice(n, p=w / w.sum())
    centres = [x[first]]
    closest = sq_dist(x[first][None])[:, 0]
    for _ in range(1, k):
        pot = closest * w
        total = pot.sum()
        if not total > 0:
            n_distinct = len(np.unique(x, axis=0))
            raise ValueError(f"n_components={k} but X has only {n_distinct} distinct row(s) "
                             f"(with positive weight); reduce n_components")
        cand = np.searchsorted(np.cumsum(pot), rng.uniform(size=n_trials) * total)
        cand = np.minimum(cand, n - 1)
        cand_d = np.minimum(closest[:, None], sq_dist(x[cand]))
        best = int(np.argmin((cand_d * w[:, None]).sum(axis=0)))
        centres.append(x[cand[best]])
        closest = cand_d[:, best]
    centres = np.array(centres)
    mean = w @ x / w.sum()
    scale = tol * max(float(w @ sq / w.sum() - mean @ mean) / d, 0.0)  # mean per-feature variance
    labels = np.argmin(sq_dist(centres), axis=1)
    for _ in range(max_iter):
        new = np.empty_like(centres)
        for j in range(k):
            members = labels == j
            if members.any():
                new[j] = w[members] @ x[members] / w[members].sum()
            else:  # empty cluster: re-seed it at the row farthest from its centre
                far = int(np.argmax(sq_dist(centres)[np.arange(n), labels]))
                new[j] = x[far]
        shift = float(np.sum((new - centres) ** 2, axis=1).max())
        centres = new
        labels = np.argmin(sq_dist(centres), axis=1)
        if shift <= scale:
            break
    return labels


# =========================================================================== the estimator
class GaussianMixture(MixtureEstimator):
    """Gaussian mixture fitted by EM: a drop-in replacement for scikit-learn's
    :class:`sklearn.mixture.GaussianMixture`, faster, and with missing values (NaN), sample
    weights, fixed parameter groups, acceleration, hard / stochastic EM and torch / CuPy / Dask
    input.

    Parameters
    ----------
    n_components : int, default=1
    covariance_type : {"full", "tied", "diag", "spherical"}, default="full"
    tol : float, default=1e-3
        Stopping tolerance. With the default ``stop="loglik_mean"`` EM stops after iteration t
        when ``|l_t - l_{t-1}| / n < tol``, l_t the observed-data log-likelihood at the
        parameters after t iterations and n the number of rows (sum of sample weights). This is
        scikit-learn's rule, except that emkit evaluates the log-likelihood at the NEW
        parameters (scikit-learn at the parameters before the last M-step), so emkit may run
        one iteration fewer and its ``lower_bound_`` is exactly the mean log-likelihood of the
        returned parameters.
    reg_covar : float, default=1e-6
        Added to the diagonal of every covariance in each M-step (scikit-learn's meaning).
    max_iter : int, default=100
    n_init : int, default=1
        Restarts; the one with the highest log-likelihood is kept.
    init_params : {"kmeans", "k-means++", "random", "random_from_data"}, default="kmeans"
        See :meth:`GaussianMixtureModel.initialize` (emkit's own k-means, no scikit-learn).
    weights_init, means_init, precisions_init, covariances_init : array-like, optional
        Starting values (give precisions or covariances, not both). Shapes as scikit-learn.
    random_state : None, int, Generator or RandomState
    warm_start : bool, default=False
        Refit from the previous solution (``n_init`` is then ignored).
    verbose, verbose_interval : int
        Print the mean log-likelihood every ``verbose_interval`` iterations when verbose >= 1.
    fixed : sequence of {"weights", "means", "covariances"}, optional
        Groups held at their ``*_init`` value (e.g. a known shared variance).
    stop : str, default="loglik_mean"
        Engine stopping rule (see :mod:`emkit.engine`).
    accelerate : None, "squarem", "anderson"
    algorithm : {"em", "hard", "stochastic"}
    burn_in, check_monotone, chunk_size, callback, keep_history
        Engine settings (see :func:`emkit.em`).

    Attributes
    ----------
    weights_, means_, covariances_, precisions_, precisions_cholesky_
        As scikit-learn (same shapes, same library and dtype as ``X``).
    converged_, n_iter_ : bool, int
    lower_bound_ : float
        Mean (per unit sample weight) observed log-likelihood at the returned parameters.
    lower_bounds_ : ndarray
        ``loglik_trace_`` divided by n.
    loglik_, loglik_trace_, n_em_evaluations_, result_, params_, model_, n_features_in_

    Notes
    -----
    ``bic`` / ``aic`` / ``icl`` use scikit-learn's sign (lower is better); R mclust reports
    BIC with the opposite sign (higher is better).
    """

    def __init__(self, n_components: int = 1, *, covariance_type: str = "full", tol: float = 1e-3,
                 reg_covar: float = 1e-6, max_iter: int = 100, n_init: int = 1, init_params: str = "kmeans",
                 weights_init=None, means_init=None, precisions_init=None, covariances_init=None,
                 random_state=None, warm_start: bool = False, verbose: int = 0, verbose_interval: int = 10,
                 fixed=None, stop: str = "loglik_mean", accelerate=None, algorithm: str = "em",
                 burn_in=None, check_monotone: str = "warn", chunk_size=None, callback=None,
                 keep_history: bool = False):
        self._init_settings(locals())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.estimator_type = "density_estimator"
        tags.input_tags.allow_nan = True
        return tags

    # ------------------------------------------------------------------ checks
    def _check_settings(self) -> None:
        check_n_components(self.n_components)
        if self.covariance_type not in COVARIANCE_TYPES:
            raise ValueError(f"unknown covariance_type {self.covariance_type!r}; choose one of {COVARIANCE_TYPES}")
        if self.init_params not in INIT_METHODS:
            raise ValueError(f"unknown init_params {self.init_params!r}; choose one of {INIT_METHODS}")
        if not (isinstance(self.reg_covar, numbers.Real) and self.reg_covar >= 0 and math.isfinite(self.reg_covar)):
            raise ValueError(f"reg_covar must be a finite number >= 0, got {self.reg_covar!r}")
        if not (isinstance(self.verbose_interval, numbers.Integral) and self.verbose_interval >= 1):
            raise ValueError(f"verbose_interval must be a positive integer, got {self.verbose_interval!r}")
        if self.precisions_init is not None and self.covariances_init is not None:
            raise ValueError("give precisions_init or covariances_init, not both")
        fixed = self._fixed()
        unknown = set(fixed) - {"weights", "means", "covariances"}
        if unknown:
            raise ValueError(f"unknown parameter group(s) in fixed: {sorted(unknown)}; "
                             f"choose from ['weights', 'means', 'covariances']")
        needs = {"weights": self.weights_init is not None, "means": self.means_init is not None,
                 "covariances": self.precisions_init is not None or self.covariances_init is not None}
        for name in fixed:
            if not needs[name]:
                init_name = "precisions_init or covariances_init" if name == "covariances" else f"{name}_init"
                raise ValueError(f"fixed={list(fixed)} holds {name} fixed, so {init_name} must be given")

    def _fixed(self) -> tuple:
        if self.fixed is None:
            return ()
        if isinstance(self.fixed, str):
            return (self.fixed,)
        return tuple(self.fixed)

    def _make_model(self) -> GaussianMixtureModel:
        return GaussianMixtureModel(self.n_components, self.covariance_type, self.reg_covar, self.init_params,
                                    fixed=self._fixed())

    def _check_fitted(self) -> None:
        if not hasattr(self, "result_"):
            raise _not_fitted_error(f"this {type(self).__name__} is not fitted yet; call fit() first")

    def _make_data(self, X, sample_weight=None, fitting: bool = True) -> tuple:
        X = as_array(X, "X", ndim=2, allow_nan=True)
        if not fitting:
            self._check_fitted()
            d_fit = getattr(self, "n_features_in_", None)
            if d_fit is not None and int(X.shape[1]) != d_fit:
                raise ValueError(f"X has {int(X.shape[1])} features, but GaussianMixture is expecting "
                                 f"{d_fit} features as input")
        all_nan = _all_nan_rows(X)
        if all_nan.size:
            raise ValueError(f"X has rows with every entry missing (NaN): rows {all_nan[:10].tolist()}"
                             f"{' ...' if all_nan.size > 10 else ''}; drop them (they carry no information)")
        if sample_weight is not None and not is_dask(sample_weight):
            sw = to_numpy(sample_weight) if hasattr(sample_weight, "__array_namespace__") else sample_weight
            sw = np.asarray(sw, dtype=np.float64) if not is_dask(X) else sw
            if isinstance(sw, np.ndarray) and sw.size and np.all(sw == 0):
                raise ValueError("sample_weight: all weights are zero; at least one must be positive")
        w = check_sample_weight(sample_weight, int(X.shape[0]))
        if w is not None and not is_dask(w) and not is_dask(X):
            xp = get_namespace(X)
            if xp is np:
                w = np.asarray(to_numpy(w), dtype=X.dtype)
            elif get_namespace(w) is np:
                w = asarray_like(np.asarray(w), X)
        return (X, w)

    def _init_params(self, model: GaussianMixtureModel, data: tuple) -> dict | None:
        """Starting values from the ``*_init`` settings, checked and converted."""
        x = data[0]
        k, d = self.n_components, int(x.shape[1])
        dtype = _float_dtype(x)
        init = {}
        if self.weights_init is not None:
            w = np.asarray(self.weights_init, dtype=np.float64)
            if w.shape != (k,):
                raise ValueError(f"weights_init must have shape ({k},), got {w.shape}")
            if not np.all(np.isfinite(w)) or np.any(w < 0) or np.any(w > 1):
                raise ValueError(f"weights_init must lie in [0, 1], got {w.tolist()}")
            if not np.isclose(w.sum(), 1.0, atol=1e-6):
                raise ValueError(f"weights_init must sum to 1, got sum {w.sum()}")
            init["weights"] = w
        if self.means_init is not None:
            m = np.asarray(self.means_init, dtype=np.float64)
            if m.shape != (k, d):
                raise ValueError(f"means_init must have shape ({k}, {d}), got {m.shape}")
            if not np.all(np.isfinite(m)):
                raise ValueError("means_init contains NaN or inf")
            init["means"] = m
        if self.precisions_init is not None or self.covariances_init is not None:
            name = "precisions_init" if self.precisions_init is not None else "covariances_init"
            value = self.precisions_init if self.precisions_init is not None else self.covariances_init
            init["covariances"] = _check_cov_init(value, name, self.covariance_type, k, d)
        if not init:
            return None
        return {name: _from_host(v, x, dtype) for name, v in init.items()}

    def _engine_options(self) -> dict:
        return {"tol": self.tol, "stop": self.stop, "max_iter": self.max_iter, "n_init": self.n_init,
                "random_state": self.random_state, "accelerate": self.accelerate, "algorithm": self.algorithm,
                "burn_in": self.burn_in, "check_monotone": self.check_monotone, "chunk_size": self.chunk_size,
                "callback": self.callback, "keep_history": self.keep_history}

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y=None, sample_weight=None) -> "GaussianMixture":
        """Estimate the parameters by EM (``y`` is ignored).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            NumPy, torch, CuPy or Dask; NaN entries are missing values (missing at random).
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights (frequency weights: a weight of 2 counts a row twice).

        Returns
        -------
        self
        """
        self._check_settings()
        data = self._make_data(X, sample_weight)
        n_rows = int(data[0].shape[0])
        if n_rows < self.n_components:
            raise ValueError(f"n_components={self.n_components} must be <= n_samples={n_rows}")
        model = self._make_model()
        from emkit.core.validation import check_random_state
        rng = check_random_state(self.random_state)
        model.prepare_data(data, np.random.default_rng(0))
        model.has_missing = bool(_any_value(data[0], "isnan"))
        if model.has_missing and self.algorithm != "em":
            raise ValueError(f"algorithm={self.algorithm!r} does not support missing values; use 'em'")
        options = self._engine_options()
        options["random_state"] = rng
        init = self._init_params(model, data)
        if self.warm_start and hasattr(self, "params_"):
            prev = self.params_
            if int(to_numpy(prev["means"]).shape[1]) != int(data[0].shape[1]):
                raise ValueError("warm_start: X has a different number of features than the previous fit")
            init = {name: _from_host(np.asarray(to_numpy(v), dtype=np.float64), data[0], _float_dtype(data[0]))
                    for name, v in prev.items()}
            options["n_init"] = 1
        if self.verbose:
            options["callback"] = self._verbose_callback(model.n_samples(data), self.callback)
        try:
            result = em(model, data, init=init, fixed=self._fixed(), **options)
        finally:
            kern.release_workspaces()
        self._store(model, data, result)
        return self

    def _verbose_callback(self, n: float, user: Callable | None):
        def report(iteration, params, loglik):
            if iteration == 0:
                print("Initialization")
            elif iteration % self.verbose_interval == 0:
                print(f"  Iteration {iteration}\t mean log-likelihood {loglik / n:.6f}")
            if user is not None:
                user(iteration, params, loglik)
        return report

    def _publish(self, result) -> None:
        params = result.params
        self.weights_ = params["weights"]
        self.means_ = params["means"]
        self.covariances_ = params["covariances"]
        prec_chol = kern.precision_cholesky(to_numpy(params["covariances"]), self.covariance_type)
        if self.covariance_type == "full":
            prec = prec_chol @ np.swapaxes(prec_chol, 1, 2)
        elif self.covariance_type == "tied":
            prec = prec_chol @ prec_chol.T
        else:
            prec = prec_chol ** 2
        self.precisions_cholesky_ = _like(prec_chol, params["covariances"])
        self.precisions_ = _like(prec, params["covariances"])
        n = self.model_.n_samples(self._fit_data)
        self.lower_bound_ = float(result.loglik / n)
        self.lower_bounds_ = np.asarray(result.loglik_trace) / n
        self.n_features_in_ = int(self._fit_data[0].shape[1])

    # ------------------------------------------------------------------ online EM
    def partial_fit(self, X, y=None, sample_weight=None, **kwargs) -> "GaussianMixture":
        """Update the fit with one batch of rows by online EM (see :mod:`emkit.online`);
        ``y`` is ignored. The first batch (when not fitted yet) is fitted by batch EM."""
        return super().partial_fit(X, sample_weight=sample_weight, **kwargs)

    def _online_data(self, X, sample_weight=None) -> tuple:
        self._check_settings()
        data = self._make_data(X, sample_weight)
        d_fit = getattr(self, "n_features_in_", None)
        if d_fit is not None and int(data[0].shape[1]) != d_fit:
            raise ValueError(f"X has {int(data[0].shape[1])} features, but GaussianMixture is expecting "
                             f"{d_fit} features as input")
        return data

    # ------------------------------------------------------------------ prediction extras
    def sample(self, n_samples: int = 1, random_state=None):
        """Draw ``n_samples`` rows from the fitted mixture: returns ``(X, labels)``."""
        return super().sample(n_samples, random_state)

    def impute(self, X):
        """``X`` with each NaN replaced by its conditional expectation given the row's observed
        coordinates, E[x_m | x_o] = sum_k p(k | x_o) (mu_km + S_k,mo S_k,oo^{-1} (x_o - mu_ko)).

        Returns a NumPy array (float64) for NumPy input, else the input's library."""
        self._check_fitted()
        x = self._make_data(X, fitting=False)[0]
        out = np.array(to_numpy(x), dtype=np.float64)
        d = out.shape[1]
        miss = np.flatnonzero(np.isnan(out).any(axis=1))
        model = self.model_
        center = model._center(d)
        for rows, lj, xhat, _ in kern.missing_parts(out[miss], self.params_, self.covariance_type, center):
            from emkit.models.base import logsumexp_rows
            post = np.exp(lj - logsumexp_rows(lj)[:, None])
            filled = np.einsum("rk,krd->rd", post, xhat) + center
            target = miss[rows]
            block = out[target]
            nan = np.isnan(block)
            block[nan] = filled[nan]
            out[target] = block
        return out if get_namespace(x) is np else asarray_like(out, x)


def _not_fitted_error(message: str) -> Exception:
    """scikit-learn's NotFittedError (a ValueError and AttributeError) when scikit-learn is
    installed, so its tooling recognises it; otherwise emkit's own equivalent."""
    try:
        from sklearn.exceptions import NotFittedError
    except ImportError:  # pragma: no cover - scikit-learn is optional
        class NotFittedError(ValueError, AttributeError):
            pass
    return NotFittedError(message)


def _float_dtype(x):
    if is_dask(x) or get_namespace(x) is np:
        return x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64
    return None


def _all_nan_rows(x) -> np.ndarray:
    """Indices of rows whose entries are all NaN (one pass; lazy for Dask)."""
    if is_dask(x):
        import dask.array as da
        all_nan = da.isnan(x).all(axis=1)
        if not bool(all_nan.any().compute()):  # the usual case: no per-row array to the client
            return np.zeros(0, dtype=int)
        return np.flatnonzero(np.asarray(all_nan.compute()))
    xp = get_namespace(x)
    if xp is np:
        if np.isfinite(np.sum(x, dtype=np.float64)):  # no NaN at all: one cheap reduction
            return np.zeros(0, dtype=int)
        # in row blocks: no full-size boolean temporary
        found = [start + np.flatnonzero(np.isnan(x[start:start + 65536]).all(axis=1))
                 for start in range(0, x.shape[0], 65536)]
        return np.concatenate(found) if found else np.zeros(0, dtype=int)
    return np.flatnonzero(to_numpy(xp.all(xp.isnan(x), axis=1)))


def _check_cov_init(value, name: str, covariance_type: str, k: int, d: int) -> np.ndarray:
    """Covariances from ``precisions_init`` / ``covariances_init`` (inverting precisions), with
    the shape and positive definiteness of each component checked."""
    arr = np.asarray(value, dtype=np.float64)
    expected = _cov_shape(covariance_type, k, d)
    if arr.shape != expected:
        raise ValueError(f"{name} for covariance_type={covariance_type!r} must have shape {expected}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    if covariance_type in ("diag", "spherical"):
        bad = np.argwhere(~(arr > 0))
        if bad.size:
            raise ValueError(f"{name} must be positive; component {int(bad[0][0])} is not")
        return 1.0 / arr if name == "precisions_init" else arr
    stack = arr[None] if covariance_type == "tied" else arr
    for j, m in enumerate(stack):
        # np.allclose(m, m.T, rtol=1e-8, atol=...) without its per-call overhead (m is finite)
        if not np.all(np.abs(m - m.T) <= 1e-12 * max(1.0, np.abs(m).max()) + 1e-8 * np.abs(m.T)):
            where = name if covariance_type == "tied" else f"{name}[{j}]"
            raise ValueError(f"{where} is not symmetric")
        try:
            np.linalg.cholesky(m)
        except np.linalg.LinAlgError:
            where = name if covariance_type == "tied" else f"{name}[{j}] (component {j})"
            raise ValueError(f"{where} is not positive definite") from None
    if name == "precisions_init":
        arr = np.linalg.inv(arr)
        arr = 0.5 * (arr + np.swapaxes(arr, -1, -2))
    return arr


# =========================================================================== model search
@dataclass
class MixtureSelection:
    """Result of :func:`select_mixture`.

    Attributes
    ----------
    table : list of dict
        One record per (n_components, covariance_type): ``n_components``, ``covariance_type``,
        ``loglik`` (total observed log-likelihood), ``n_parameters``, ``bic``, ``aic``, ``icl``
        (all lower-is-better, scikit-learn's sign), ``converged``, and ``error`` (None, or why
        the fit failed, e.g. more components than distinct rows; its numbers are then NaN).
    best_ : GaussianMixture
        The fitted model with the lowest criterion.
    best_params : dict
        ``{"n_components": K, "covariance_type": type}`` of ``best_``.
    criterion : str
    """

    table: list
    best_: GaussianMixture
    best_params: dict
    criterion: str
    models: dict = field(default_factory=dict, repr=False)

    def __iter__(self):  # allows ``table, best = select_mixture(...)``
        return iter((self.table, self.best_))


def select_mixture(X, n_components: Sequence[int] = range(1, 10),
                   covariance_types: Sequence[str] = ("full", "tied", "diag", "spherical"),
                   criterion: str = "bic", sample_weight=None, **gmm_kwargs: Any) -> MixtureSelection:
    """Fit a Gaussian mixture for every (n_components, covariance_type) and pick the best by an
    information criterion (mclust-style model search).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    n_components : iterable of int
    covariance_types : iterable of {"full", "tied", "diag", "spherical"}
    criterion : {"bic", "aic", "icl"}
        Lower is better (scikit-learn's sign; mclust's BIC is the negative).
    sample_weight : array-like, optional
    **gmm_kwargs
        Passed to every :class:`GaussianMixture` (``n_init``, ``random_state``, ``tol``...).

    Returns
    -------
    MixtureSelection
        ``.table`` (list of dict records), ``.best_`` (fitted model), ``.best_params``;
        iterating gives ``(table, best_)``.
    """
    if criterion not in ("bic", "aic", "icl"):
        raise ValueError(f"unknown criterion {criterion!r}; choose 'bic', 'aic' or 'icl'")
    ks = [check_n_components(int(k)) if isinstance(k, (numbers.Integral, np.integer)) else check_n_components(k)
          for k in n_components]
    types = [covariance_types] if isinstance(covariance_types, str) else list(covariance_types)
    if not ks or not types:
        raise ValueError("select_mixture needs at least one n_components and one covariance_type")
    for t in types:
        if t not in COVARIANCE_TYPES:
            raise ValueError(f"unknown covariance_type {t!r}; choose from {COVARIANCE_TYPES}")
    X = as_array(X, "X", ndim=2, allow_nan=True)
    table, models = [], {}
    best, best_value = None, math.inf
    for cov_type in types:
        for k in ks:
            gmm = GaussianMixture(k, covariance_type=cov_type, **gmm_kwargs)
            record = {"n_components": k, "covariance_type": cov_type}
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", EmptyComponentWarning)
                    gmm.fit(X, sample_weight=sample_weight)
            except ValueError as exc:
                record.update(loglik=math.nan, n_parameters=math.nan, bic=math.nan, aic=math.nan,
                              icl=math.nan, converged=False, error=str(exc))
                table.append(record)
                continue
            record.update(loglik=float(gmm.loglik_), n_parameters=gmm._n_parameters(),
                          bic=float(gmm.bic(X, sample_weight)), aic=float(gmm.aic(X, sample_weight)),
                          icl=float(gmm.icl(X, sample_weight)), converged=bool(gmm.converged_), error=None)
            table.append(record)
            models[(k, cov_type)] = gmm
            if record[criterion] < best_value:
                best, best_value = gmm, record[criterion]
    if best is None:
        raise ValueError("no model in the grid could be fitted: " + "; ".join(r["error"] for r in table))
    return MixtureSelection(table=table, best_=best,
                            best_params={"n_components": best.n_components, "covariance_type": best.covariance_type},
                            criterion=criterion, models=models)
