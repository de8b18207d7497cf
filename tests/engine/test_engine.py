"""The engine on small models written against the public contract, checked against closed forms."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pytest

import emkit
from emkit.engine import statistics_pass
from emkit.engine.em_map import check_finite_params

from contract_models import LINKAGE, P_HAT, Linkage, TwoPoisson
from contract_models import linkage_em_map as em_map
from contract_models import linkage_loglik


def test_linkage_reaches_closed_form_and_published_rate():
    fit = emkit.em(Linkage(), LINKAGE, init={"p": np.array(0.5)}, tol=1e-13, stop="params_maxabs",
                   keep_history=True)
    assert fit.converged
    assert fit.params["p"] == pytest.approx(P_HAT, abs=1e-10)
    assert fit.loglik == pytest.approx(linkage_loglik(P_HAT), abs=1e-10)
    # The iterates are exactly the EM map applied again and again.
    ps = [float(h["p"]) for h in fit.params_history]
    assert ps[0] == 0.5
    for a, b in zip(ps[:-1], ps[1:]):
        assert b == pytest.approx(em_map(a), rel=1e-14)
    # Linear rate of convergence: DLR report 0.1328.
    rates = (np.array(ps[2:6]) - P_HAT) / (np.array(ps[1:5]) - P_HAT)
    assert rates[-1] == pytest.approx(0.1328, abs=5e-4)


def test_trace_has_start_plus_one_value_per_iteration_and_never_decreases():
    fit = emkit.em(Linkage(), LINKAGE, init={"p": np.array(0.1)}, tol=0, max_iter=7)
    assert fit.n_iter == 7 and len(fit.loglik_trace) == 8
    assert fit.loglik_trace[0] == pytest.approx(linkage_loglik(0.1))
    assert np.all(np.diff(fit.loglik_trace) >= 0)
    assert fit.loglik == fit.loglik_trace[-1]
    assert fit.n_em_evaluations == 7


def test_tol_zero_runs_exactly_max_iter_even_at_a_fixed_point():
    fit = emkit.em(Linkage(), LINKAGE, init={"p": np.array(P_HAT)}, tol=0, max_iter=25)
    assert fit.n_iter == 25 and not fit.converged


@pytest.mark.parametrize("stop, tol", [("loglik", 1e-6), ("loglik_rel", 1e-9), ("params", 1e-12),
                                       ("params_maxabs", 1e-6), ("loglik_mean", 1e-8)])
def test_each_stopping_rule_stops_exactly_where_its_definition_says(stop, tol):
    fit = emkit.em(Linkage(), LINKAGE, init={"p": np.array(0.5)}, tol=tol, stop=stop, keep_history=True)
    ps = np.array([float(h["p"]) for h in fit.params_history])
    ll = fit.loglik_trace

    def met(t):
        if stop == "loglik":
            return abs(ll[t] - ll[t - 1]) < tol
        if stop == "loglik_rel":
            return abs(ll[t] - ll[t - 1]) < tol * abs(ll[t])
        if stop == "loglik_mean":
            return abs(ll[t] - ll[t - 1]) / 1.0 < tol  # one row
        if stop == "params":
            return (ps[t] - ps[t - 1]) ** 2 < tol
        return abs(ps[t] - ps[t - 1]) < tol

    assert fit.converged
    assert met(fit.n_iter)
    assert not any(met(t) for t in range(1, fit.n_iter))


def test_seed_002_stopping_rule_on_squared_change():
    # Seed 002 stops when (theta_new - theta)^2 <= 2e-9; the engine's rule is strict.
    fit = emkit.em(Linkage(), LINKAGE, init={"p": np.array(0.5)}, tol=2e-9, stop="params")
    assert fit.converged and fit.params["p"] == pytest.approx(P_HAT, abs=1e-4)


class BrokenLinkage(Linkage):
    """An M-step that overshoots on iteration 3, so the log-likelihood drops."""

    def __init__(self):
        self.calls = 0

    def m_step(self, stats, params):
        self.calls += 1
        p = stats[0] / stats.sum()
        return {"p": np.array(0.05 if self.calls == 3 else p)}


def test_monotonicity_violation_warns_naming_model_and_iteration():
    with pytest.warns(emkit.MonotonicityWarning, match=r"BrokenLinkage.*iteration 3"):
        emkit.em(BrokenLinkage(), LINKAGE, init={"p": np.array(0.5)}, tol=1e-10)


def test_monotonicity_violation_can_be_an_error():
    with pytest.raises(emkit.MonotonicityError, match="iteration 3"):
        emkit.em(BrokenLinkage(), LINKAGE, init={"p": np.array(0.5)}, tol=1e-10, check_monotone="raise")


def test_correct_model_raises_no_monotonicity_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", emkit.MonotonicityWarning)
        emkit.em(Linkage(), LINKAGE, init={"p": np.array(0.01)}, tol=0, max_iter=200, check_monotone="raise")


def poisson_data(seed=0, n=3000):
    rng = np.random.default_rng(seed)
    z = rng.random(n) < 0.3
    x = np.where(z, rng.poisson(1.0, n), rng.poisson(6.0, n)).astype(float)
    values, counts = np.unique(x, return_counts=True)
    return values, counts.astype(float)


def test_fixed_group_is_held_and_others_maximise_the_likelihood():
    from scipy.optimize import minimize_scalar
    from scipy.stats import poisson
    x, w = poisson_data()
    fit = emkit.em(TwoPoisson(), (x, w), init={"weights": np.array([0.5, 0.5]), "rates": np.array([1.0, 5.0])},
                   fixed=["weights"], tol=1e-12)
    np.testing.assert_array_equal(fit.params["weights"], [0.5, 0.5])

    def negll(r1, r2):
        return -np.sum(w * np.log(0.5 * poisson.pmf(x, r1) + 0.5 * poisson.pmf(x, r2)))

    r1, r2 = fit.params["rates"]
    assert minimize_scalar(lambda r: negll(r, r2), bracket=(0.5, 2)).x == pytest.approx(r1, rel=1e-5)
    assert minimize_scalar(lambda r: negll(r1, r), bracket=(4, 8)).x == pytest.approx(r2, rel=1e-5)


def test_restarts_keep_the_best_and_random_state_reproduces():
    x, w = poisson_data(1)
    a = emkit.em(TwoPoisson(), (x, w), n_init=4, random_state=3, tol=1e-10)
    b = emkit.em(TwoPoisson(), (x, w), n_init=4, random_state=3, tol=1e-10)
    assert len(a.restarts) == 4
    assert a.loglik == max(r.loglik for r in a.restarts)
    assert a.loglik == a.restarts[a.best_restart].loglik
    np.testing.assert_array_equal(a.params["rates"], b.params["rates"])
    c = emkit.em(TwoPoisson(), (x, w), n_init=1, random_state=4, tol=1e-10, max_iter=3)
    assert not np.array_equal(c.restarts[0].init_params["rates"], a.restarts[0].init_params["rates"])


def test_callback_sees_every_iteration():
    seen = []
    fit = emkit.em(Linkage(), LINKAGE, init={"p": np.array(0.5)}, tol=0, max_iter=5,
                   callback=lambda it, params, ll: seen.append((it, float(params["p"]), ll)))
    assert [s[0] for s in seen] == list(range(6))
    assert [s[2] for s in seen] == list(fit.loglik_trace)


def test_chunked_statistics_equal_one_pass():
    x, w = poisson_data(2)
    params = {"weights": np.array([0.3, 0.7]), "rates": np.array([1.0, 5.0])}
    whole, ll = statistics_pass(TwoPoisson(), (x, w), params)
    chunked, ll_c = statistics_pass(TwoPoisson(), (x, w), params, chunk_size=3)
    np.testing.assert_allclose(chunked["sx"], whole["sx"], rtol=1e-13)
    np.testing.assert_allclose(chunked["n"], whole["n"], rtol=1e-13)
    assert ll_c == pytest.approx(ll, rel=1e-13)


def test_hard_em_on_row_counts_assigns_each_value_to_its_best_component():
    x, w = poisson_data(3)
    fit = emkit.em(TwoPoisson(), (x, w), algorithm="hard", init={"weights": np.array([0.5, 0.5]),
                   "rates": np.array([1.0, 6.0])}, tol=1e-12)
    # At a fixed point of hard EM each rate is the mean of the values assigned to it.
    lj = TwoPoisson().log_joint((x, w), fit.params)
    labels = lj.argmax(1)
    for k in range(2):
        assert fit.params["rates"][k] == pytest.approx(np.sum((w * x)[labels == k]) / np.sum(w[labels == k]))


@pytest.mark.parametrize("kwargs, message", [
    ({"stop": "nope"}, "unknown stop rule"),
    ({"algorithm": "magic"}, "unknown algorithm"),
    ({"tol": -1}, "tol must be"),
    ({"max_iter": -3}, "max_iter"),
    ({"n_init": 0}, "n_init"),
    ({"fixed": ["q"]}, r"unknown parameter group.*\['q'\]"),
    ({"init": {"q": 1}}, "unknown parameter group"),
    ({"init": {"p": np.array(1.5)}}, r"p must lie in \[0, 1\]"),
    ({"check_monotone": "maybe"}, "check_monotone"),
    ({"algorithm": "hard"}, "discrete latent"),
    ({"chunk_size": 0}, "chunk_size"),
    ({"accelerate": 3}, "accelerate must be"),
])
def test_bad_options_give_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        emkit.em(Linkage(), LINKAGE, **kwargs)


def test_random_state_types():
    from emkit.engine import check_random_state
    assert isinstance(check_random_state(np.random.RandomState(0)), np.random.Generator)
    with pytest.raises(ValueError, match="random_state"):
        check_random_state("seed")


def test_zero_probability_start_is_reported():
    with pytest.raises(ValueError, match="starting parameters"):
        emkit.em(Linkage(), LINKAGE, init={"p": np.array(0.0)})


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_finite_check_names_the_group_and_passes_huge_finite_values(bad):
    """The M-step's finiteness check: a NaN or infinity anywhere names its group; finite values
    whose sum overflows (the check's quick test) are still finite."""
    model = SimpleNamespace(display_name="M")
    huge = np.full(4, 1e308)
    check_finite_params({"a": huge, "b": np.arange(3)}, model, "here")
    with pytest.raises(ValueError, match="non-finite values for 'a'"):
        check_finite_params({"a": np.array([1.0, bad, 2.0]), "b": huge}, model, "here")
