"""Distribution families for the components of a finite mixture.

A family knows only the maths of one component distribution, evaluated for all K components
at once:

``make_data(X, ...) -> tuple``
    Validates the user's data and returns the family's row-aligned data arrays (with any
    data-only constants, such as ``-log x!`` for Poisson counts, computed once here).
``log_density(data, params) -> (n, K)``
    log f(x_i | component k).
``stats(data, resp) -> dict``
    Weighted sufficient statistics per component, additive over rows (``resp`` is the
    (n, K) responsibility matrix with row weights already multiplied in).
``m_step(stats, params, fixed=frozenset()) -> dict``
    The weighted maximum-likelihood estimate from those statistics (``stats["n"]`` holds the
    total responsibility of each component). It depends on the statistics only through
    ratios, so scaling all of them by a constant leaves it unchanged (online EM relies on it).
    ``fixed`` names the groups held at their value in ``params``; a family whose groups
    interact (the normal's variances are about its means) maximises the others given them.
``complete_loglik(stats, params) -> float``
    sum_k E[sum_i z_ik log f(x_i | k)], including data-only constants.
``n_parameters(params, fixed)``, ``param_spec``, ``sample(params, labels, rng)``,
``features(data)`` (a NumPy matrix whose Euclidean geometry seeds the initialisation),
``param_shape(group, n_components, data)``.

``fields`` names the arrays ``make_data`` returns (``"X"`` first: the observations), and
``inputs`` the named arguments it takes besides X (the binomial's ``trials``), each with a
short description; estimators accept those right after X.

Numeric kernels are written against the Python array API (``get_namespace``), so torch and
CuPy arrays go through the same code and float32 stays float32. SciPy is used only on NumPy
(and Dask, blockwise) paths.
"""

from __future__ import annotations

import numbers
from typing import Any, Sequence, cast

import numpy as np

from emkit.core.arrays import astype, device_of, get_namespace, lgamma, one_hot, to_numpy
from emkit.core.params import Positive, Real, Simplex, SymmetricPositiveDefinite, UnitInterval
from emkit.core.validation import _reduce_any, as_array, as_counts

__all__ = ["Family", "Normal", "MultivariateNormal", "Binomial", "Poisson", "ExponentialFamily",
           "Bernoulli", "Categorical", "FAMILIES", "get_family", "safe_log", "lgamma"]

LOG_2PI = float(np.log(2.0 * np.pi))


# --------------------------------------------------------------------------- array helpers
def safe_log(p: Any, xp: Any = None) -> Any:
    """log(p) with zeros mapped to log(smallest normal number) instead of -inf.

    A probability of exactly zero then gives a huge negative but finite log, so that
    ``0 * log(0)`` in a matrix product is 0 rather than NaN.
    """
    xp = xp or get_namespace(p)
    tiny = float(xp.finfo(p.dtype).smallest_normal)
    return xp.log(xp.clip(p, tiny, None))


def _as2d(a):
    return a[:, None] if a.ndim == 1 else a


def _per_component(n, like):
    """``n`` (K,) shaped to broadcast against ``like`` (K, ...)."""
    return n if like.ndim == 1 else n.reshape(tuple(n.shape) + (1,) * (like.ndim - 1))


def _probabilities(p):
    """``p`` clipped to [0, 1]: a ratio of sums can leave the interval by a rounding unit
    (1 + 2e-16), which would make the fit an invalid start; the maximiser itself is inside."""
    return get_namespace(p).clip(p, 0.0, 1.0)


def _eye(d: int, like):
    xp = get_namespace(like)
    if xp is np:
        return np.eye(d, dtype=like.dtype)
    return xp.eye(d, dtype=like.dtype, device=device_of(like))


def _check_no_zero_column(x, name: str, consequence: str) -> None:
    x2 = _as2d(x)
    zero = to_numpy(get_namespace(x2).all(x2 == 0, axis=0))
    if np.any(zero):
        raise ValueError(f"{name} column(s) {np.flatnonzero(zero).tolist()} are all zero "
                         f"(n_samples = {x2.shape[0]}): {consequence}")


def _sum_all(a) -> float:
    xp = get_namespace(a)
    return float(to_numpy(xp.sum(a)))


# --------------------------------------------------------------------------- base class
class Family:
    """Base class of component families. See the module docstring for the interface."""

    name: str = "family"
    param_spec: dict = {}
    #: input dimensions accepted for X
    ndim: tuple = (1, 2)
    #: names of the arrays that ``make_data`` returns, the observations ("X") first
    fields: tuple = ("X",)
    #: named arguments of ``make_data`` besides X -> what they are (e.g. the binomial's trials)
    inputs: dict = {}

    def make_data(self, X: Any, *, name: str = "X", **extra: Any) -> tuple:
        if extra and any(v is not None for v in extra.values()):
            raise ValueError(f"unexpected argument(s) for a {self.name} mixture: {sorted(extra)}")
        return (as_array(X, name, ndim=self.ndim),)

    def log_density(self, data: tuple, params: dict) -> Any:
        raise NotImplementedError

    def stats(self, data: tuple, resp: Any) -> dict:
        raise NotImplementedError

    def m_step(self, stats: dict, params: dict | None, fixed: frozenset = frozenset()) -> dict:
        raise NotImplementedError

    def complete_loglik(self, stats: dict, params: dict) -> float:
        raise NotImplementedError

    def n_parameters(self, params: dict, fixed: Sequence[str] = ()) -> int:
        return int(sum(self.param_spec[g].n_free(tuple(np.shape(to_numpy(params[g]))))
                       for g in self.param_spec if g not in fixed))

    def sample(self, params: dict, labels: np.ndarray, rng: np.random.Generator, **extra: Any) -> tuple:
        raise NotImplementedError

    def check_fit_data(self, data: tuple, name: str = "X") -> None:
        """Raise ValueError for data whose maximum-likelihood estimate does not exist (in-memory
        data only: it reads every row)."""

    def features(self, data: tuple) -> np.ndarray:
        """NumPy (n, p) matrix used to seed the initialisation (k-means++ on these rows)."""
        return np.asarray(_as2d(to_numpy(data[0])), dtype=float)

    def n_features(self, data: tuple) -> int:
        x = data[0]
        return 1 if x.ndim == 1 else int(x.shape[1])

    def param_shape(self, group: str, n_components: int, data: tuple) -> tuple:
        """Shape of parameter group ``group`` for ``n_components`` components on ``data``."""
        x = data[0]
        return (n_components,) if x.ndim == 1 else (n_components, int(x.shape[1]))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


# --------------------------------------------------------------------------- Normal
class Normal(Family):
    """Normal components; for 2-D X the columns are independent given the component
    (diagonal covariance). Parameters ``means`` and ``variances``: (K,) or (K, d).

    Parameters
    ----------
    reg_covar : float
        Added to every variance in the M-step (as scikit-learn does) so that a component on
        a single point keeps a positive variance.
    """

    name = "Normal"
    param_spec = {"means": Real(), "variances": Positive()}

    def __init__(self, reg_covar: float = 1e-6):
        self.reg_covar = reg_covar

    def log_density(self, data: tuple, params: dict) -> Any:
        x = _as2d(data[0])
        xp = get_namespace(x)
        mu, var = _as2d(params["means"]), _as2d(params["variances"])
        prec = 1.0 / var
        # sum_j -(x_j - mu_j)^2 / (2 var_j), expanded so it is three matrix products
        quad = (x * x) @ prec.T - 2.0 * (x @ (mu * prec).T) + xp.sum(mu * mu * prec, axis=1)[None, :]
        return -0.5 * (quad + xp.sum(xp.log(var), axis=1)[None, :] + x.shape[1] * LOG_2PI)

    def stats(self, data: tuple, resp: Any) -> dict:
        x = data[0]
        return {"sx": resp.T @ x, "sxx": resp.T @ (x * x)}

    def m_step(self, stats: Any, params: dict | None, fixed: frozenset = frozenset()) -> dict:
        xp = get_namespace(stats["sx"])
        n = _per_component(stats["n"], stats["sx"])
        if "means" in fixed:  # the variances about the fixed means maximise Q given them
            mean = xp.asarray(cast(dict, params)["means"], dtype=stats["sx"].dtype)  # given with fixed
            var = xp.clip(_squared_deviations(stats, mean, n) / n, 0.0, None) + self.reg_covar
        else:
            mean = stats["sx"] / n
            var = xp.clip(stats["sxx"] / n - mean * mean, 0.0, None) + self.reg_covar
        return {"means": mean, "variances": var}

    def complete_loglik(self, stats: Any, params: dict) -> float:
        xp = get_namespace(stats["sx"])
        mu, var = params["means"], params["variances"]
        n = _per_component(stats["n"], stats["sx"])
        quad = _squared_deviations(stats, mu, n) / var
        return -0.5 * _sum_all(quad + n * (xp.log(var) + LOG_2PI))

    def sample(self, params: dict, labels: np.ndarray, rng: np.random.Generator, **extra: Any) -> tuple:
        mu, var = to_numpy(params["means"]), to_numpy(params["variances"])
        mu_l, sd_l = mu[labels], np.sqrt(var[labels])
        return (rng.normal(mu_l, sd_l),)


# --------------------------------------------------------------------------- MultivariateNormal
class MultivariateNormal(Family):
    """Multivariate normal components with full covariance matrices (``means`` (K, d),
    ``covariances`` (K, d, d)). A direct implementation; :class:`emkit.GaussianMixture` is
    the fast one."""

    name = "MultivariateNormal"
    param_spec = {"means": Real(), "covariances": SymmetricPositiveDefinite()}
    ndim = (2,)

    def __init__(self, reg_covar: float = 1e-6):
        self.reg_covar = reg_covar

    def log_density(self, data: tuple, params: dict) -> Any:
        x = data[0]
        mu, cov = params["means"], params["covariances"]
        xp = get_namespace(cov)  # the parameters' library: on Dask blocks x may be lazy
        prec = xp.linalg.inv(cov)                                  # (K, d, d)
        _, logdet = xp.linalg.slogdet(cov)                         # (K,)
        diff = x[None, :, :] - mu[:, None, :]                      # (K, n, d)
        maha = xp.sum((diff @ prec) * diff, axis=2)                # (K, n)
        return -0.5 * (maha.T + logdet[None, :] + x.shape[1] * LOG_2PI)

    def stats(self, data: tuple, resp: Any) -> dict:
        x = data[0]
        n, d = x.shape
        outer = xp_reshape(x[:, :, None] * x[:, None, :], (n, d * d))
        k = resp.shape[1]
        return {"sx": resp.T @ x, "sxx": xp_reshape(resp.T @ outer, (k, d, d))}

    def m_step(self, stats: Any, params: dict | None, fixed: frozenset = frozenset()) -> dict:
        sx, sxx, n = stats["sx"], stats["sxx"], stats["n"]
        if "means" in fixed:  # the covariances about the fixed means maximise Q given them
            mean = get_namespace(sx).asarray(cast(dict, params)["means"], dtype=sx.dtype)  # given with fixed
            cov = _scatter(stats, mean) / n[:, None, None]
        else:
            mean = sx / n[:, None]
            cov = sxx / n[:, None, None] - mean[:, :, None] * mean[:, None, :]
        cov = 0.5 * (cov + cov.mT) + self.reg_covar * _eye(sx.shape[1], sx)[None, :, :]
        return {"means": mean, "covariances": cov}

    def complete_loglik(self, stats: Any, params: dict) -> float:
        xp = get_namespace(stats["sx"])
        mu, cov = params["means"], params["covariances"]
        n, sx = stats["n"], stats["sx"]
        prec = xp.linalg.inv(cov)
        _, logdet = xp.linalg.slogdet(cov)
        trace = xp.sum(prec * _scatter(stats, mu), axis=(1, 2))
        d = sx.shape[1]
        return -0.5 * _sum_all(trace + n * (logdet + d * LOG_2PI))

    def sample(self, params: dict, labels: np.ndarray, rng: np.random.Generator, **extra: Any) -> tuple:
        mu, cov = to_numpy(params["means"]), to_numpy(params["covariances"])
        out = np.empty((len(labels), mu.shape[1]))
        for k in range(mu.shape[0]):
            rows = labels == k
            out[rows] = rng.multivariate_normal(mu[k], cov[k], size=int(rows.sum()))
        return (out,)

    def param_shape(self, group: str, n_components: int, data: tuple) -> tuple:
        d = int(data[0].shape[1])
        return (n_components, d, d) if group == "covariances" else (n_components, d)


def _squared_deviations(stats, mu, n):
    """E[sum_i z_ik (x_ij - mu_kj)^2] = sxx - 2 mu sx + n mu^2 (per component and column)."""
    return stats["sxx"] - 2.0 * mu * stats["sx"] + n * mu * mu


def _scatter(stats, mu):
    """E[sum_i z_ik (x_i - mu_k)(x_i - mu_k)^T] = sxx - mu sx^T - sx mu^T + n mu mu^T, (K, d, d)."""
    sx, n = stats["sx"], stats["n"]
    return (stats["sxx"] - mu[:, :, None] * sx[:, None, :] - sx[:, :, None] * mu[:, None, :]
            + n[:, None, None] * mu[:, :, None] * mu[:, None, :])


def xp_reshape(a: Any, shape: tuple) -> Any:
    xp = get_namespace(a)
    return xp.reshape(a, shape)


# --------------------------------------------------------------------------- Binomial
class Binomial(Family):
    """Binomial components: ``successes`` out of ``trials`` (one count per row, any number of
    trials per row); parameter ``probs`` (K,)."""

    name = "Binomial"
    param_spec = {"probs": UnitInterval()}
    ndim = (1,)
    fields = ("X", "trials", "log_coef")
    inputs = {"trials": "the number of trials of each run"}

    def make_data(self, X: Any, *, name: str = "successes", trials: Any = None, **extra: Any) -> tuple:
        if extra:
            raise ValueError(f"unexpected argument(s) for a Binomial mixture: {sorted(extra)}")
        s = as_counts(X, name)
        if trials is None:
            raise ValueError("trials is required: the number of trials of each row (or one number for all)")
        if isinstance(trials, numbers.Number) and not isinstance(trials, bool):
            number: Any = trials  # typeshed's numbers.Number declares no arithmetic or comparison
            if not (np.isfinite(number) and number >= 0 and float(number) == round(float(number))):
                raise ValueError(f"trials must be a non-negative whole number, got {trials!r}")
            t = s * 0 + float(number)  # the same number on every row, in the library and dtype of s
        else:
            t = as_counts(trials, "trials")
            if int(t.shape[0]) != int(s.shape[0]):
                raise ValueError(f"trials has {t.shape[0]} entries but {name} has {s.shape[0]}")
        if _reduce_any(s > t):
            raise ValueError(f"{name} exceed trials in some rows (successes must be <= trials)")
        log_coef = lgamma(t + 1.0) - lgamma(s + 1.0) - lgamma(t - s + 1.0)
        return (s, t, log_coef)

    def log_density(self, data: tuple, params: dict) -> Any:
        s, t, log_coef = data
        xp = get_namespace(s)
        p = params["probs"]
        return (log_coef[:, None] + s[:, None] * safe_log(p, xp)[None, :]
                + (t - s)[:, None] * safe_log(1.0 - p, xp)[None, :])

    def stats(self, data: tuple, resp: Any) -> dict:
        s, t, log_coef = data
        return {"successes": resp.T @ s, "trials": resp.T @ t, "log_coef": resp.T @ log_coef}

    def m_step(self, stats: Any, params: dict | None, fixed: frozenset = frozenset()) -> dict:
        return {"probs": _probabilities(stats["successes"] / stats["trials"])}

    def complete_loglik(self, stats: Any, params: dict) -> float:
        xp = get_namespace(stats["successes"])
        p = params["probs"]
        return _sum_all(stats["log_coef"] + stats["successes"] * safe_log(p, xp)
                        + (stats["trials"] - stats["successes"]) * safe_log(1.0 - p, xp))

    def sample(self, params: dict, labels: np.ndarray, rng: np.random.Generator, trials: Any = None,
               **extra: Any) -> tuple:
        if trials is None:
            raise ValueError("sampling a Binomial mixture needs trials (one number or one per row)")
        t = np.broadcast_to(np.asarray(trials, dtype=np.int64), labels.shape)
        p = to_numpy(params["probs"])
        return (rng.binomial(t, p[labels]).astype(float), t.astype(float))

    def features(self, data: tuple) -> np.ndarray:
        s, t = to_numpy(data[0]), to_numpy(data[1])
        return (s / np.where(t > 0, t, 1.0))[:, None]


# --------------------------------------------------------------------------- Poisson
class Poisson(Family):
    """Poisson components; for 2-D X the columns are independent given the component.
    Parameter ``rates``: (K,) or (K, d)."""

    name = "Poisson"
    param_spec = {"rates": Positive()}
    fields = ("X", "row_const")

    def make_data(self, X: Any, *, name: str = "X", **extra: Any) -> tuple:
        if extra and any(v is not None for v in extra.values()):
            raise ValueError(f"unexpected argument(s) for a Poisson mixture: {sorted(extra)}")
        x = as_counts(X, name, ndim=(1, 2))
        log_fact = lgamma(x + 1.0)
        row_const = -(log_fact if x.ndim == 1 else get_namespace(log_fact).sum(log_fact, axis=1))
        return (x, row_const)

    def check_fit_data(self, data: tuple, name: str = "X") -> None:
        _check_no_zero_column(data[0], name, "the Poisson rate's maximum-likelihood estimate would be "
                                             "0, outside the open parameter space")

    def log_density(self, data: tuple, params: dict) -> Any:
        x, row_const = data
        x2 = _as2d(x)
        xp = get_namespace(x2)
        lam = _as2d(params["rates"])
        return x2 @ safe_log(lam, xp).T - xp.sum(lam, axis=1)[None, :] + row_const[:, None]

    def stats(self, data: tuple, resp: Any) -> dict:
        x, row_const = data
        return {"sx": resp.T @ x, "row_const": resp.T @ row_const}

    def m_step(self, stats: Any, params: dict | None, fixed: frozenset = frozenset()) -> dict:
        return {"rates": stats["sx"] / _per_component(stats["n"], stats["sx"])}

    def complete_loglik(self, stats: Any, params: dict) -> float:
        xp = get_namespace(stats["sx"])
        lam = params["rates"]
        n = _per_component(stats["n"], stats["sx"])
        return _sum_all(stats["sx"] * safe_log(lam, xp) - n * lam) + _sum_all(stats["row_const"])

    def sample(self, params: dict, labels: np.ndarray, rng: np.random.Generator, **extra: Any) -> tuple:
        return (rng.poisson(to_numpy(params["rates"])[labels]).astype(float),)


# --------------------------------------------------------------------------- Exponential (the family; emkit.Exponential is the i.i.d. estimator)
class ExponentialFamily(Family):
    """Exponential components f(x) = rate * exp(-rate * x); for 2-D X the columns are
    independent given the component. Parameter ``rates``: (K,) or (K, d)."""

    name = "Exponential"
    param_spec = {"rates": Positive()}

    def make_data(self, X: Any, *, name: str = "X", **extra: Any) -> tuple:
        if extra and any(v is not None for v in extra.values()):
            raise ValueError(f"unexpected argument(s) for an Exponential mixture: {sorted(extra)}")
        x = as_array(X, name, ndim=(1, 2))
        if _reduce_any(x < 0):
            raise ValueError(f"{name} must be non-negative for an exponential distribution; "
                             f"Negative values in data")
        return (x,)

    def check_fit_data(self, data: tuple, name: str = "X") -> None:
        _check_no_zero_column(data[0], name, "the exponential rate's maximum-likelihood estimate "
                                             "would be infinite")

    def log_density(self, data: tuple, params: dict) -> Any:
        x2 = _as2d(data[0])
        xp = get_namespace(x2)
        lam = _as2d(params["rates"])
        return xp.sum(safe_log(lam, xp), axis=1)[None, :] - x2 @ lam.T

    def stats(self, data: tuple, resp: Any) -> dict:
        return {"sx": resp.T @ data[0]}

    def m_step(self, stats: Any, params: dict | None, fixed: frozenset = frozenset()) -> dict:
        return {"rates": _per_component(stats["n"], stats["sx"]) / stats["sx"]}

    def complete_loglik(self, stats: Any, params: dict) -> float:
        xp = get_namespace(stats["sx"])
        lam = params["rates"]
        n = _per_component(stats["n"], stats["sx"])
        return _sum_all(n * safe_log(lam, xp) - lam * stats["sx"])

    def sample(self, params: dict, labels: np.ndarray, rng: np.random.Generator, **extra: Any) -> tuple:
        return (rng.exponential(1.0 / to_numpy(params["rates"])[labels]),)


# --------------------------------------------------------------------------- Bernoulli
class Bernoulli(Family):
    """Vectors of independent binary items given the component (latent class analysis).
    Parameter ``probs``: (K, d) (or (K,) for 1-D X), the probability of a 1.

    Parameters
    ----------
    binarize : float, optional
        Threshold: values above it count as 1, the others as 0 (as scikit-learn's
        ``BernoulliNB``). None (default): X must hold only 0 and 1.
    """

    name = "Bernoulli"
    param_spec = {"probs": UnitInterval()}

    def __init__(self, binarize: float | None = None):
        self.binarize = binarize

    def make_data(self, X: Any, *, name: str = "X", **extra: Any) -> tuple:
        if extra and any(v is not None for v in extra.values()):
            raise ValueError(f"unexpected argument(s) for a Bernoulli mixture: {sorted(extra)}")
        x = as_array(X, name, ndim=(1, 2))
        if self.binarize is not None:
            # as scikit-learn's BernoulliNB: values above the threshold are 1, the others 0
            x = astype(x > self.binarize, x.dtype)
        if _reduce_any((x != 0) & (x != 1)):
            raise ValueError(f"{name} must contain only 0 and 1 for a Bernoulli mixture")
        return (x,)

    def log_density(self, data: tuple, params: dict) -> Any:
        x2 = _as2d(data[0])
        xp = get_namespace(x2)
        p = _as2d(params["probs"])
        return x2 @ safe_log(p, xp).T + (1.0 - x2) @ safe_log(1.0 - p, xp).T

    def stats(self, data: tuple, resp: Any) -> dict:
        return {"sx": resp.T @ data[0]}

    def m_step(self, stats: Any, params: dict | None, fixed: frozenset = frozenset()) -> dict:
        return {"probs": _probabilities(stats["sx"] / _per_component(stats["n"], stats["sx"]))}

    def complete_loglik(self, stats: Any, params: dict) -> float:
        p = params["probs"]
        xp = get_namespace(p)
        n = _per_component(stats["n"], stats["sx"])
        return _sum_all(stats["sx"] * safe_log(p, xp) + (n - stats["sx"]) * safe_log(1.0 - p, xp))

    def sample(self, params: dict, labels: np.ndarray, rng: np.random.Generator, **extra: Any) -> tuple:
        p = to_numpy(params["probs"])[labels]
        return ((rng.random(p.shape) < p).astype(float),)

    def __repr__(self) -> str:
        return f"Bernoulli(binarize={self.binarize!r})"


# --------------------------------------------------------------------------- Categorical
class Categorical(Family):
    """Vectors of independent categorical items given the component. X holds integer codes
    0..C-1, shape (n,) or (n, d); internally one-hot of width d * C.

    Parameters
    ----------
    n_categories : int or sequence of int
        Number of categories of each column (one int for all columns). Columns with fewer
        categories than the largest have zero probability on the extra codes, and are
        counted with their own number of categories in :meth:`n_parameters`.

    Parameter ``probs``: (K, d, C), each (k, j) row on the simplex.
    """

    name = "Categorical"
    param_spec = {"probs": Simplex()}

    def __init__(self, n_categories: int | Sequence[int] = 2):
        self.n_categories = n_categories

    @property
    def _sizes(self) -> list[int]:
        c: Any = self.n_categories  # an int (numbers.Integral) or one per column
        return [int(c)] if isinstance(c, numbers.Integral) else [int(v) for v in c]

    @property
    def width(self) -> int:
        return max(self._sizes)

    def make_data(self, X: Any, *, name: str = "X", **extra: Any) -> tuple:
        if extra and any(v is not None for v in extra.values()):
            raise ValueError(f"unexpected argument(s) for a Categorical mixture: {sorted(extra)}")
        codes = as_counts(X, name, ndim=(1, 2))
        c = self.width
        if _reduce_any(codes >= c):
            raise ValueError(f"{name} has category codes >= {c}; codes must be 0..n_categories-1")
        codes2 = _as2d(codes)
        d = codes2.shape[1]
        sizes = self._sizes
        if len(sizes) > 1 and len(sizes) != d:
            raise ValueError(f"n_categories has {len(sizes)} entries but {name} has {d} columns")
        for j, size in enumerate(sizes if len(sizes) > 1 else ()):
            # a column with fewer categories than the widest: its extra codes have no parameter
            # (n_parameters does not count them), so they must not occur in the data
            if size < c and _reduce_any(codes2[:, j] >= size):
                raise ValueError(f"{name} column {j} has category codes >= {size} (its n_categories); "
                                 f"codes must be 0..n_categories-1")
        return (one_hot(codes2, c),)

    def log_density(self, data: tuple, params: dict) -> Any:
        onehot = data[0]
        xp = get_namespace(onehot)
        p = params["probs"]
        k = p.shape[0]
        return onehot @ xp.reshape(safe_log(p, xp), (k, -1)).T

    def stats(self, data: tuple, resp: Any) -> dict:
        return {"counts": resp.T @ data[0]}

    def m_step(self, stats: Any, params: dict | None, fixed: frozenset = frozenset()) -> dict:
        counts = stats["counts"]
        xp = get_namespace(counts)
        k = counts.shape[0]
        c = self.width
        counts = xp.reshape(counts, (k, -1, c))
        return {"probs": _probabilities(counts / stats["n"][:, None, None])}

    def complete_loglik(self, stats: Any, params: dict) -> float:
        xp = get_namespace(stats["counts"])
        p = params["probs"]
        return _sum_all(stats["counts"] * xp.reshape(safe_log(p, xp), (p.shape[0], -1)))

    def n_parameters(self, params: dict, fixed: Sequence[str] = ()) -> int:
        if "probs" in fixed:
            return 0
        k, d, _ = np.shape(to_numpy(params["probs"]))
        sizes = self._sizes * d if len(self._sizes) == 1 else self._sizes
        return int(k * sum(s - 1 for s in sizes))

    def sample(self, params: dict, labels: np.ndarray, rng: np.random.Generator, **extra: Any) -> tuple:
        p = to_numpy(params["probs"])[labels]                   # (n, d, C)
        u = rng.random(p.shape[:2])[:, :, None]
        codes = (np.cumsum(p, axis=2) < u).sum(axis=2).clip(0, p.shape[2] - 1)
        return (codes.astype(float),)

    def n_features(self, data: tuple) -> int:
        return int(data[0].shape[1]) // self.width

    def param_shape(self, group: str, n_components: int, data: tuple) -> tuple:
        return (n_components, self.n_features(data), self.width)

    def __repr__(self) -> str:
        return f"Categorical(n_categories={self.n_categories!r})"


FAMILIES = {"normal": Normal, "multivariate_normal": MultivariateNormal, "binomial": Binomial,
            "poisson": Poisson, "exponential": ExponentialFamily, "bernoulli": Bernoulli,
            "categorical": Categorical}


def get_family(family: Any, **options: Any) -> Family:
    """A :class:`Family` from an instance, a class or a name (``"poisson"``, ...)."""
    if isinstance(family, Family):
        return family
    if isinstance(family, type) and issubclass(family, Family):
        return family(**options)
    if isinstance(family, str) and family.lower() in FAMILIES:
        return FAMILIES[family.lower()](**options)
    raise ValueError(f"unknown family {family!r}; choose one of {sorted(FAMILIES)} or pass a Family")
