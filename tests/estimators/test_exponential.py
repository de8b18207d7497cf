"""Exponential data with missing and censored values: seed 002 example 1 and closed forms."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

import emkit
from emkit.models.exponential import ExponentialModel

NAN = float("nan")
#: a parameter rule, for the tests of exact closed forms (the default rule is on the
#: log-likelihood, which fixes the parameters to about the square root of its tolerance)
EXACT = dict(stop="params_maxabs", tol=1e-13)


def test_seed_002_example_1_with_defaults_reaches_0_2():
    est = emkit.Exponential(rate_init=5.0).fit([5.0, NAN])
    assert est.converged_ and est.rate_ == pytest.approx(0.2, abs=1e-7)


def test_seed_002_example_1_iterates_follow_the_published_map_and_reach_0_2():
    est = emkit.Exponential(rate_init=5.0, keep_history=True, **EXACT).fit([5.0, NAN])
    rates = [float(h["rate"]) for h in est.result_.params_history]
    assert rates[0] == 5.0
    for old, new in zip(rates[:-1], rates[1:]):
        assert new == pytest.approx(2 * old / (5 * old + 1), rel=1e-14)
    assert rates[1] == pytest.approx(10 / 26, rel=1e-15)
    assert est.converged_ and est.rate_ == pytest.approx(0.2, abs=1e-11)
    # linear convergence with rate g'(0.2) = 2 / (5 * 0.2 + 1)^2 = 1/2
    errors = np.abs(np.array(rates) - 0.2)
    assert errors[20] / errors[19] == pytest.approx(0.5, rel=1e-4)


def test_callback_sees_each_iterate():
    seen = []
    emkit.Exponential(rate_init=5.0, max_iter=4, tol=0,
                      callback=lambda it, params, ll: seen.append(float(params["rate"]))).fit([5.0, NAN])
    expected = [5.0]
    for _ in range(4):
        expected.append(2 * expected[-1] / (5 * expected[-1] + 1))
    np.testing.assert_allclose(seen, expected, rtol=1e-14)


def test_missing_only_data_gives_the_complete_case_mle():
    x = np.array([0.5, 2.0, NAN, 1.5, NAN, 4.0])
    est = emkit.Exponential().fit(x)
    assert est.rate_ == pytest.approx(4 / 8.0, rel=1e-10)
    assert est.loglik_ == pytest.approx(4 * np.log(0.5) - 0.5 * 8.0, rel=1e-12)


def test_censored_fit_is_the_closed_form_events_over_total_time():
    rng = np.random.default_rng(0)
    t = rng.exponential(1 / 0.7, size=500)
    c = rng.exponential(1 / 0.3, size=500)
    x = np.minimum(t, c)
    censored = t > c
    x[::50] = NAN           # some values missing as well (MCAR)
    censored[::50] = False
    default = emkit.Exponential().fit(x, censored=censored)
    est = emkit.Exponential(**EXACT).fit(x, censored=censored)
    observed = ~np.isnan(x)
    events = np.sum(observed & ~censored)
    total_time = np.nansum(x)
    assert default.converged_ and default.rate_ == pytest.approx(events / total_time, rel=1e-6)
    assert est.rate_ == pytest.approx(events / total_time, rel=1e-10)
    assert est.loglik_ == pytest.approx(events * np.log(est.rate_) - est.rate_ * total_time, rel=1e-10)
    assert abs(est.rate_ - 0.7) < 4 * 0.7 / np.sqrt(events)  # consistent for the true rate
    assert est.score(x, censored) == pytest.approx(est.loglik_, rel=1e-12)


def test_m_step_maximises_the_complete_loglik_and_identity_with_the_observed_one():
    model = ExponentialModel()
    data = (np.array([1.0, NAN, 3.0, 2.0]), np.array([0.0, 0.0, 1.0, 0.0]))
    params = {"rate": np.array(0.8)}
    stats, ll = model.e_step(data, params)
    new = model.m_step(stats, params)
    best = minimize_scalar(lambda r: -model.complete_loglik(stats, {"rate": np.array(r)}),
                           bounds=(1e-3, 10), method="bounded", options={"xatol": 1e-10})
    assert float(new["rate"]) == pytest.approx(best.x, rel=1e-6)
    # Q(theta | theta) minus H(theta | theta) is the observed loglik: for the missing value,
    # H = E[log f(X)] = log rate - 1, for the censored one E[log f(X | X > c)] = log rate - 1.
    q = model.complete_loglik(stats, params)
    assert q - 2 * (np.log(0.8) - 1) == pytest.approx(ll, rel=1e-12)


def test_torch_float32_is_kept():
    torch = pytest.importorskip("torch")
    est = emkit.Exponential(rate_init=5.0, stop="params_maxabs", tol=1e-6).fit(
        torch.tensor([5.0, NAN], dtype=torch.float32))
    assert est.params_["rate"].dtype == torch.float32
    assert est.rate_ == pytest.approx(0.2, abs=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    ({"x": [1.0, -2.0]}, "non-negative"),
    ({"x": [NAN, NAN]}, "no observed or censored value"),
    ({"x": []}, "empty"),
    ({"x": [1.0, np.inf]}, "inf"),
    ({"x": [[1.0, 2.0]]}, "dimension"),
    ({"x": [1.0, 2.0], "censored": [True]}, "censored has 1 entries"),
    ({"x": [1.0, 2.0], "censored": [0, 2]}, "boolean mask"),
    ({"x": [1.0, NAN], "censored": [False, True]}, "censoring time"),
    ({"x": [1.0, 2.0], "censored": [True, True]}, "no uncensored"),
])
def test_bad_data_gives_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        emkit.Exponential().fit(**kwargs)


@pytest.mark.parametrize("rate_init", [0.0, -1.0, "fast", NAN])
def test_bad_rate_init(rate_init):
    with pytest.raises(ValueError, match="rate_init must be a positive number"):
        emkit.Exponential(rate_init=rate_init).fit([1.0, 2.0])


def test_supplemented_em_standard_error_is_the_closed_form():
    # censored exponential: l = d log(rate) - rate * T, so the observed information is d / rate^2
    x = np.array([0.5, 2.0, 1.0, 3.0, NAN, 4.0, 0.7])
    censored = np.array([False, True, False, False, False, True, False])
    est = emkit.Exponential().fit(x, censored=censored)
    events = 4
    se = est.standard_errors("sem")["rate"]
    assert float(se) == pytest.approx(est.rate_ / np.sqrt(events), rel=1e-4)


def test_dask_data_gives_the_same_fit():
    da = pytest.importorskip("dask.array")
    x = np.array([1.0, 2.0, NAN, 4.0, 0.5])
    c = np.array([0.0, 1.0, 0.0, 0.0, 0.0])
    est = emkit.Exponential(**EXACT).fit(da.from_array(x, chunks=2), censored=da.from_array(c, chunks=2))
    assert est.rate_ == pytest.approx(3 / 7.5, rel=1e-10)
