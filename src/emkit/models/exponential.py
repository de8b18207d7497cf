"""I.i.d. exponential data with missing values and right censoring.

Each observation is X_i ~ Exp(rate) with density rate * exp(-rate * x). A NaN marks a value
that is missing completely at random (it is latent and carries no information); a row marked
``censored`` holds a lower bound c (the value is known only to exceed c). The complete-data
sufficient statistics are (number of values, sum of values); by memorylessness
E[X | X > c] = c + 1 / rate, and a missing value has expectation 1 / rate, so

    E-step:  s = sum(observed) + sum(c + 1/rate over censored) + (number missing) / rate
    M-step:  rate = n / s

Observed log-likelihood: sum over observed of (log rate - rate x) + sum over censored of
(-rate c); missing rows contribute 0.

Seed 002, example 1: Y1 = 5 observed, Y2 missing; the EM map is
theta <- 2 theta / (5 theta + 1), converging to 0.2.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from emkit.core.arrays import asarray_like, get_namespace, is_dask, to_numpy
from emkit.core.validation import _reduce_any, as_array
from emkit.estimators.base import EMEstimator
from emkit.models.base import Model
from emkit.core.params import Positive

__all__ = ["ExponentialModel", "Exponential"]


class ExponentialModel(Model):
    """I.i.d. Exp(rate) values, some missing (NaN), some right-censored.

    Data: ``(x, censored)``, x (n,) float with NaN for missing values, ``censored`` (n,)
    0/1 (1: x is a lower bound) or None.
    """

    param_spec = {"rate": Positive()}
    name = "Exponential"

    def _split(self, data):
        x, censored = data
        xp = get_namespace(x)
        missing = xp.isnan(x)
        value = xp.where(missing, xp.zeros_like(x), x)
        cens = xp.zeros_like(x) if censored is None else xp.astype(censored, x.dtype)
        observed = xp.astype(~missing, x.dtype) * (1.0 - cens)
        return xp, value, observed, cens, xp.astype(missing, x.dtype)

    def e_step(self, data, params):
        xp, value, observed, cens, missing = self._split(data)
        rate = params["rate"]
        n = xp.sum(xp.ones_like(value))
        expected_sum = xp.sum(value * (observed + cens)) + (xp.sum(cens) + xp.sum(missing)) / rate
        loglik = xp.sum(observed) * xp.log(rate) - rate * xp.sum(value * (observed + cens))
        return {"n": n, "sum": expected_sum}, float(to_numpy(loglik))

    def m_step(self, stats, params):
        return {"rate": stats["n"] / stats["sum"]}

    def complete_loglik(self, stats, params):
        rate = params["rate"]
        xp = get_namespace(rate)
        return float(to_numpy(stats["n"] * xp.log(rate) - rate * stats["sum"]))

    def initialize(self, data, rng):
        # The rate from the observed and censored values as if all were exact: a start on
        # the right scale (the log-likelihood is concave in log-rate, so restarts agree).
        xp, value, observed, cens, _ = self._split(data)
        known = float(to_numpy(xp.sum(observed + cens)))
        total = float(to_numpy(xp.sum(value * (observed + cens))))
        rate = known / total if known > 0 and total > 0 else 1.0
        return {"rate": asarray_like(rate, data[0])}

    def sample(self, params, n, rng):
        rate = float(to_numpy(params["rate"]))
        return (rng.exponential(1.0 / rate, size=int(n)), None)

    def n_samples(self, data) -> float:
        return float(self.n_rows(data))


class Exponential(EMEstimator):
    """Rate of i.i.d. exponential data with missing (NaN) and right-censored values.

    Parameters
    ----------
    rate_init : float, optional
        Starting rate (default: observed and censored values treated as exact).
    tol : float
        Tolerance of the stopping rule.
    stop : str
        Stopping rule (default ``"params_maxabs"``: |rate_t - rate_{t-1}| < tol).
    max_iter, n_init, random_state, fixed, accelerate, algorithm, burn_in, check_monotone,
    chunk_size, callback, keep_history
        Passed to :func:`emkit.em`.

    Attributes
    ----------
    rate_ : float or 0-d array
        Maximum-likelihood rate: a float for NumPy data, a 0-d array of the data's library
        (torch, CuPy) otherwise.
    params_, loglik_, loglik_trace_, n_iter_, converged_, result_
        As for every estimator.

    Examples
    --------
    >>> est = Exponential(rate_init=5.0).fit([5.0, float("nan")])
    >>> round(est.rate_, 6)
    0.2
    """

    def __init__(self, rate_init: float | None = None, *, tol: float = 1e-12, stop: str = "params_maxabs",
                 max_iter: int = 1000, n_init: int = 1, random_state=None, fixed: Sequence[str] = (),
                 accelerate=None, algorithm: str = "em", burn_in: int | None = None,
                 check_monotone: str = "warn", chunk_size: int | None = None,
                 callback: Callable | None = None, keep_history: bool = False):
        self._init_settings(locals())

    def fit(self, x, censored=None) -> "Exponential":
        """Fit the rate by EM.

        Parameters
        ----------
        x : array-like (n,)
            Non-negative values; NaN marks a missing value.
        censored : array-like of bool (n,), optional
            True where ``x`` is a right-censoring time (the value exceeds it).
        """
        return super().fit(x, censored=censored)

    def _make_model(self) -> ExponentialModel:
        return ExponentialModel()

    def _make_data(self, x, censored=None) -> tuple:
        x = as_array(x, "x", ndim=1, allow_nan=True)
        xp = get_namespace(x) if not is_dask(x) else None
        nan = x != x  # NaN test that works for every array library, Dask included
        if _reduce_any((x < 0) & ~nan):
            raise ValueError("x must be non-negative for an exponential distribution")
        if censored is not None:
            c = as_array(censored, "censored", ndim=1)
            if int(c.shape[0]) != int(x.shape[0]):
                raise ValueError(f"censored has {c.shape[0]} entries but x has {x.shape[0]}")
            if _reduce_any((c != 0) & (c != 1)):
                raise ValueError("censored must be a boolean mask (True/False or 1/0)")
            if _reduce_any((c != 0) & nan):
                raise ValueError("a censored row needs its censoring time: x is NaN where censored is True")
            if is_dask(c):
                censored = c.astype(x.dtype)
            elif xp is np:
                censored = np.asarray(c, dtype=x.dtype)
            else:
                censored = xp.astype(c, x.dtype)
        if not _reduce_any(~nan):
            raise ValueError("x has no observed or censored value: every entry is NaN")
        if censored is not None and not _reduce_any(~nan & (censored == 0)):
            raise ValueError("x has no uncensored observed value, so the rate's maximum-likelihood "
                             "estimate is 0 (it does not exist)")
        return (x, censored)

    def _init_params(self, model, data):
        if self.rate_init is None:
            return None
        try:
            rate = float(self.rate_init)
        except (TypeError, ValueError):
            raise ValueError(f"rate_init must be a positive number, got {self.rate_init!r}") from None
        if not (np.isfinite(rate) and rate > 0):
            raise ValueError(f"rate_init must be a positive number, got {self.rate_init!r}")
        return {"rate": asarray_like(rate, data[0])}

    def _publish(self, result) -> None:
        rate = result.params["rate"]
        self.rate_ = float(to_numpy(rate)) if get_namespace(rate) is np else rate

    def score(self, x, censored=None) -> float:
        """Observed-data log-likelihood of ``x`` (and its censoring) at the fitted rate."""
        self._check_fitted()
        return self.model_.loglik(self._make_data(x, censored), self.params_)
