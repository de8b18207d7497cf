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

The estimator (:class:`emkit.Exponential`) is in :mod:`emkit.estimators.exponential`.
"""

from __future__ import annotations

import math

from typing import Any

import numpy as np

from emkit.core.arrays import asarray_like, get_namespace, to_numpy
from emkit.core.params import Positive
from emkit.models.base import Model

__all__ = ["ExponentialModel"]


class ExponentialModel(Model):
    """I.i.d. Exp(rate) values, some missing (NaN), some right-censored.

    Data: ``Data(("X", "censored"), (x, censored))`` (or the plain tuple ``(x, censored)``),
    x (n,) float with NaN for missing values, ``censored`` (n,) 0/1 (1: x is a lower bound)
    or None. The estimator :class:`emkit.Exponential` builds it from the user's arguments.
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

    def e_step(self, data: tuple, params: dict) -> tuple[Any, float]:
        xp, value, observed, cens, missing = self._split(data)
        rate = params["rate"]
        n = xp.sum(xp.ones_like(value))
        expected_sum = xp.sum(value * (observed + cens)) + (xp.sum(cens) + xp.sum(missing)) / rate
        loglik = xp.sum(observed) * xp.log(rate) - rate * xp.sum(value * (observed + cens))
        return {"n": n, "sum": expected_sum}, float(to_numpy(loglik))

    def m_step(self, stats: Any, params: dict) -> dict:
        return {"rate": stats["n"] / stats["sum"]}

    def complete_loglik(self, stats: Any, params: dict) -> float:
        rate = params["rate"]
        xp = get_namespace(rate)
        return float(to_numpy(stats["n"] * xp.log(rate) - rate * stats["sum"]))

    def initialize(self, data: tuple, rng: np.random.Generator) -> dict:
        # The rate from the observed and censored values as if all were exact: a start on
        # the right scale (the log-likelihood is concave in log-rate, so restarts agree).
        xp, value, observed, cens, _ = self._split(data)
        known = float(to_numpy(xp.sum(observed + cens)))
        with np.errstate(over="ignore"):  # an overflowing sum is reported below
            total = float(to_numpy(xp.sum(value * (observed + cens))))
        rate = known / total if known > 0 and total > 0 else 1.0
        if not (math.isfinite(total) and 0.0 < rate < math.inf and math.isfinite(float(rate * total))):
            # values near the float64 limits: their sum overflows (rate 0) or the rate does (1e-320)
            raise ValueError(f"x has {int(known)} observed or censored values summing to {total:.3g}, so the rate "
                             f"(values / sum) is {rate:.3g}, outside the positive {value.dtype} numbers; rescale x")
        return {"rate": asarray_like(rate, data[0])}

    def sample(self, params: dict, n: int, rng: np.random.Generator) -> tuple:
        rate = float(to_numpy(params["rate"]))
        return (rng.exponential(1.0 / rate, size=int(n)), None)

    def n_samples(self, data: tuple) -> float:
        return float(self.n_rows(data))
