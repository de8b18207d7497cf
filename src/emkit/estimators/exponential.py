"""The rate of i.i.d. exponential data with missing and right-censored values: the estimator
of :class:`~emkit.models.exponential.ExponentialModel`."""

from __future__ import annotations

from typing import Any

import numpy as np

from emkit.core.arrays import asarray_like, get_namespace, is_dask, to_numpy
from emkit.core.data import Data
from emkit.core.validation import _reduce_any, as_array
from emkit.estimators.base import EMEstimator
from emkit.estimators.settings import Constraint, Setting, declare
from emkit.models.exponential import ExponentialModel

__all__ = ["Exponential"]


class Exponential(EMEstimator):
    """Rate of i.i.d. exponential data with missing (NaN) and right-censored values.

{settings}

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

    rate_init: float | None

    rate_: Any  # a float for NumPy data, else a 0-d array of the data's library

    _settings = declare(
        Setting("rate_init", None, Constraint(lambda v: v is None or (np.isfinite(float(v)) and float(v) > 0),
                                              "a positive number"),
                "Starting rate (default: observed and censored values treated as exact).", positional=True))

    def fit(self, x: Any, censored: Any = None) -> "Exponential":
        """Fit the rate by EM.

        Parameters
        ----------
        x : array-like (n,)
            Non-negative values; NaN marks a missing value.
        censored : array-like of bool (n,), optional
            True where ``x`` is a right-censoring time (the value exceeds it).
        """
        self._validate_settings()
        return super().fit(x, censored=censored, fitting=True)

    def _make_model(self) -> ExponentialModel:
        return ExponentialModel()

    def _make_data(self, x: Any, censored: Any = None, fitting: bool = False) -> Data:
        x = as_array(x, "x", ndim=1, allow_nan=True)
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
            elif get_namespace(x) is np:
                censored = np.asarray(c, dtype=x.dtype)
            else:
                censored = get_namespace(x).astype(c, x.dtype)
        if not _reduce_any(~nan):
            raise ValueError("x has no observed or censored value: every entry is NaN")
        if censored is not None and not _reduce_any(~nan & (censored == 0)):
            raise ValueError("x has no uncensored observed value, so the rate's maximum-likelihood "
                             "estimate is 0 (it does not exist)")
        if fitting and not _reduce_any(~nan & (x != 0)):
            raise ValueError("every observed value of x is 0, so the rate's maximum-likelihood estimate is "
                             "infinite (it does not exist)")
        return Data(("X", "censored"), (x, censored))

    def _init_params(self, model: Any, data: Any) -> dict | None:
        if self.rate_init is None:
            return None
        try:
            rate = float(self.rate_init)
        except (TypeError, ValueError):
            raise ValueError(f"rate_init must be a positive number, got {self.rate_init!r}") from None
        if not (np.isfinite(rate) and rate > 0):
            raise ValueError(f"rate_init must be a positive number, got {self.rate_init!r}")
        return {"rate": asarray_like(rate, data[0])}

    def _publish(self, result: Any) -> None:
        rate = result.params["rate"]
        self.rate_ = float(to_numpy(rate)) if get_namespace(rate) is np else rate

    def score(self, x: Any, censored: Any = None) -> float:
        """Observed-data log-likelihood of ``x`` (and its censoring) at the fitted rate."""
        self._check_fitted()
        return self.model_.loglik(self._make_data(x, censored), self.params_)
