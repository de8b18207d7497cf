"""Online EM (Cappe & Moulines 2009) through partial_fit, for built-in and user-defined estimators."""

from __future__ import annotations

import numpy as np
import pytest

import emkit

from contract_models import TwoPoisson
from emkit import online
from emkit.estimators.base import EMEstimator


class TwoPoissonEstimator(EMEstimator):
    """A user-defined estimator: counts x with multiplicities."""

    def __init__(self, tol=1e-10, stop="params_maxabs", max_iter=2000, random_state=None, fixed=()):
        self.tol = tol
        self.stop = stop
        self.max_iter = max_iter
        self.random_state = random_state
        self.fixed = fixed

    def _make_model(self):
        return TwoPoisson()

    def _make_data(self, x, counts=None):
        x = np.asarray(x, dtype=float)
        if x.ndim != 1 or x.size == 0:
            raise ValueError(f"x must be a non-empty 1-D array, got shape {x.shape}")
        counts = np.ones_like(x) if counts is None else np.asarray(counts, dtype=float)
        return (x, counts)


def poisson_stream(seed, n, weight=0.4, rates=(2.0, 7.0)):
    rng = np.random.default_rng(seed)
    z = rng.random(n) < weight
    return np.where(z, rng.poisson(rates[0], n), rng.poisson(rates[1], n)).astype(float)


def test_recursion_is_stepwise_averaging_of_per_row_statistics():
    """Two batches of different sizes: the second update is exactly
    s2 = (1 - g) s1 + g S(batch2) / n2 with g = (1 + k0)^(-alpha), theta2 = M(s2)."""
    x = poisson_stream(0, 3000)
    first, second = x[:2000], x[2000:2300]
    est = TwoPoissonEstimator()
    est.partial_fit(first)
    assert est.n_batches_seen_ == 1 and est.n_rows_seen_ == 2000
    # the first batch is an ordinary EM fit, and its statistics are a fixed point
    ref = TwoPoissonEstimator().fit(first)
    np.testing.assert_allclose(est.rates_, ref.rates_, rtol=1e-8)
    model = TwoPoisson()
    s1 = model.e_step((first, np.ones(2000)), ref.params_)[0]
    np.testing.assert_allclose(est.online_stats_["sx"], s1["sx"] / 2000, rtol=1e-8)

    theta1 = est.params_
    est.partial_fit(second, step_decay=0.75, step_offset=2.0)
    g = (1 + 2.0) ** -0.75
    s_batch = model.e_step((second, np.ones(300)), theta1)[0]
    expected = {k: (1 - g) * np.asarray(s1[k]) / 2000 + g * np.asarray(s_batch[k]) / 300 for k in s1}
    np.testing.assert_allclose(est.online_stats_["n"], expected["n"], rtol=1e-10)
    np.testing.assert_allclose(est.rates_, expected["sx"] / expected["n"], rtol=1e-10)
    np.testing.assert_allclose(est.weights_, expected["n"] / expected["n"].sum(), rtol=1e-10)
    assert est.online_step_size_ == pytest.approx(g)
    assert est.n_batches_seen_ == 2 and est.n_rows_seen_ == 2300
    # the schedule is remembered by the stream
    est.partial_fit(x[2300:2400])
    assert est.online_step_size_ == pytest.approx((2 + 2.0) ** -0.75)
    assert est.online_step_decay_ == 0.75 and est.online_step_offset_ == 2.0
    assert est.result_.algorithm == "online" and est.n_iter_ == 3 and not est.converged_
    assert len(est.loglik_trace_) == 3


def test_weighted_rows_count_as_observations():
    """Rows with multiplicities normalise by the summed weights, not the number of rows:
    a batch given as (value, count) pairs updates exactly like the expanded batch."""
    x = poisson_stream(1, 4000)
    a = TwoPoissonEstimator().partial_fit(x[:2000]).partial_fit(x[2000:])
    values, counts = np.unique(x[2000:], return_counts=True)
    b = TwoPoissonEstimator().partial_fit(x[:2000]).partial_fit(values, counts)
    np.testing.assert_allclose(b.rates_, a.rates_, rtol=1e-10)
    assert b.n_rows_seen_ == 4000


def test_million_row_stream_reaches_the_batch_mle_within_sampling_error():
    """1,000,000 rows of a Poisson mixture (rates 2 and 7) in 100 batches of 10,000.

    Tolerance. Linearised in the statistics, online EM is e_k = (1 - g_k c) e_{k-1} + g_k xi_k,
    c = 1 - lambda (lambda = EM's rate, the fraction of missing information), Var(xi) = v / B.
    Its stationary variance is g_K v / (2 c B); the batch MLE's is v / (c^2 N). So
    SD(online) <= SE_mle * sqrt(c K g_K / 2) and SD(online - mle) <= SE_mle (1 + sqrt(c K g_K / 2)).
    The start (an EM fit to the first batch, error ~ sqrt(K) SE_mle) is forgotten by the factor
    exp(-c sum_k g_k). We allow 3 SD plus that remainder.
    """
    n_rows, batch = 1_000_000, 10_000
    X = poisson_stream(2, n_rows)
    values, counts = np.unique(X, return_counts=True)
    mle = emkit.PoissonMixture(2, weights_init=[0.4, 0.6], rates_init=[2.0, 7.0], stop="params_maxabs",
                               tol=1e-10, accelerate="squarem").fit(values, sample_weight=counts.astype(float))
    cov = mle.covariance("sem")
    c = 1 - cov.fraction_missing_information
    n_batches = n_rows // batch
    gains = [online.step_size(k) for k in range(1, n_batches)]
    sd_ratio = 1 + np.sqrt(c * n_batches * gains[-1] / 2)
    remainder = np.sqrt(n_batches) * np.exp(-c * np.sum(gains))
    factor = 3 * sd_ratio + remainder

    est = emkit.PoissonMixture(2, random_state=0)
    for k in range(n_batches):
        est.partial_fit(X[k * batch:(k + 1) * batch])
    assert est.n_batches_seen_ == n_batches and est.n_rows_seen_ == n_rows
    order = np.argsort(est.rates_)                          # components may come out swapped
    assert np.all(np.abs(est.rates_[order] - mle.rates_) < factor * cov.standard_errors["rates"])
    assert np.all(np.abs(est.weights_[order] - mle.weights_) < factor * cov.standard_errors["weights"])
    # and it is not simply the first batch's fit: that one is about sqrt(K) = 10 SE away
    first = emkit.PoissonMixture(2, random_state=0).fit(X[:batch])
    assert np.max(np.abs(est.rates_[order] - mle.rates_)) < np.max(np.abs(np.sort(first.rates_) - mle.rates_))


def test_partial_fit_continues_from_fit_and_fit_restarts_the_stream():
    x = poisson_stream(3, 6000)
    est = TwoPoissonEstimator().fit(x[:3000])
    fitted = est.params_
    est.partial_fit(x[3000:4000])
    assert est.n_batches_seen_ == 1
    model = TwoPoisson()
    s = model.e_step((x[3000:4000], np.ones(1000)), fitted)[0]
    np.testing.assert_allclose(est.rates_, s["sx"] / s["n"], rtol=1e-10)
    est.partial_fit(x[4000:5000])
    assert est.n_batches_seen_ == 2
    est.fit(x[:3000])                          # a new batch fit ends the stream
    est.partial_fit(x[5000:])
    assert est.n_batches_seen_ == 1


def test_fixed_groups_stay_fixed_online():
    x = poisson_stream(4, 4000, weight=0.5)
    est = TwoPoissonEstimator(fixed=("weights",))
    # fixed groups need a starting value: initialize gives [0.5, 0.5]
    for k in range(4):
        est.partial_fit(x[k * 1000:(k + 1) * 1000])
    np.testing.assert_array_equal(est.weights_, [0.5, 0.5])


def test_online_errors():
    x = poisson_stream(5, 100)
    with pytest.raises(ValueError, match="step_decay"):
        TwoPoissonEstimator().partial_fit(x, step_decay=0.5)
    with pytest.raises(ValueError, match="step_decay"):
        TwoPoissonEstimator().partial_fit(x, step_decay=1.5)
    with pytest.raises(ValueError, match="step_offset"):
        TwoPoissonEstimator().partial_fit(x, step_offset=-1)
    with pytest.raises(ValueError, match="non-empty"):
        TwoPoissonEstimator().partial_fit(np.array([]))
    with pytest.raises(ValueError, match="no observations"):
        TwoPoissonEstimator().partial_fit(x, np.zeros_like(x))
    with pytest.raises(ValueError, match="not supported"):
        emkit.PoissonMixture(2, algorithm="hard").partial_fit(x)
    est = emkit.PoissonMixture(2, random_state=0).partial_fit(x)
    with pytest.raises(ValueError, match="partial_fit"):
        est.standard_errors("sem")
    with pytest.raises(ValueError, match="contains NaN"):
        est.partial_fit(np.array([1.0, np.nan]))
