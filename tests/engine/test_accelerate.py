"""SQUAREM and Anderson acceleration: same optimum as EM in far fewer EM evaluations, monotone,
valid parameters at every iterate, honest evaluation counts."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import gammaln

import emkit
from emkit.engine.accelerate import AndersonAccelerator, SquaremAccelerator, get_accelerator
from emkit.core.params import ParamSpace

from contract_models import TwoPoisson


def hasselblad():
    d = emkit.datasets.load_hasselblad_deaths()
    return d["deaths"].astype(float), d["freq"].astype(float)


def hasselblad_mle():
    """Maximise the observed log-likelihood of the two-Poisson mixture with scipy (BFGS with
    the analytic score), written here independently of emkit, in (logit weight, log rates)."""
    x, w = hasselblad()

    def parts(u):
        a, r = 1 / (1 + np.exp(-u[0])), np.exp(u[1:])
        l0 = np.log(a) + x * np.log(r[0]) - r[0] - gammaln(x + 1)
        l1 = np.log(1 - a) + x * np.log(r[1]) - r[1] - gammaln(x + 1)
        return a, r, l0, l1

    def negll(u):
        _, _, l0, l1 = parts(u)
        return -float(w @ np.logaddexp(l0, l1))

    def score(u):
        a, r, l0, l1 = parts(u)
        t = 1 / (1 + np.exp(l1 - l0))                       # posterior of component 0
        return -np.array([w @ (t - a), w @ (t * (x - r[0])), w @ ((1 - t) * (x - r[1]))])
    out = minimize(negll, [np.log(0.3 / 0.7), 0.0, np.log(2.5)], jac=score, method="BFGS",
                   options={"gtol": 1e-11})
    assert np.max(np.abs(score(out.x))) < 1e-5
    a = 1 / (1 + np.exp(-out.x[0]))
    return np.array([a, 1 - a]), np.exp(out.x[1:]), -out.fun


START = dict(weights_init=[0.3, 0.7], rates_init=[1.0, 2.5], stop="params_maxabs", tol=1e-8)


def fit_hasselblad(**settings):
    x, w = hasselblad()
    return emkit.PoissonMixture(2, **{**START, **settings}).fit(x, sample_weight=w)


@pytest.fixture(scope="module")
def plain():
    return fit_hasselblad(max_iter=20000, check_monotone="raise")


def test_plain_em_needs_thousands_of_evaluations(plain):
    assert plain.converged_
    assert plain.n_em_evaluations_ == plain.n_iter_ > 2000
    weights, rates, loglik = hasselblad_mle()
    # EM's rate here is 0.9957 (test_inference), so stopping at a change of 1e-8 leaves
    # an error of up to 1e-8 * 0.9957 / 0.0043 = 2.3e-6
    np.testing.assert_allclose(plain.rates_, rates, atol=5e-6)
    np.testing.assert_allclose(plain.weights_, weights, atol=5e-6)


@pytest.mark.parametrize("method", ["squarem", "anderson"])
def test_accelerated_reaches_same_optimum_in_under_100_evaluations(plain, method):
    weights, rates, loglik = hasselblad_mle()
    fast = fit_hasselblad(accelerate=method, max_iter=500, check_monotone="raise")
    assert fast.converged_
    assert fast.n_em_evaluations_ < 100
    assert fast.n_em_evaluations_ < plain.n_em_evaluations_ / 20
    np.testing.assert_allclose(fast.rates_, rates, atol=5e-6)
    np.testing.assert_allclose(fast.weights_, weights, atol=5e-6)
    np.testing.assert_allclose(fast.rates_, plain.rates_, atol=5e-6)
    assert fast.loglik_ == pytest.approx(loglik, abs=1e-7)
    assert np.all(np.diff(fast.loglik_trace_) >= -1e-9)     # never decreases


class Counting(TwoPoisson):
    """The shared two-Poisson mixture, counting its E- and M-steps."""

    def __init__(self):
        self.e_calls = 0
        self.m_calls = 0

    def e_step(self, data, params):
        self.e_calls += 1
        return super().e_step(data, params)

    def m_step(self, stats, params):
        self.m_calls += 1
        return super().m_step(stats, params)


INIT = {"weights": np.array([0.3, 0.7]), "rates": np.array([1.0, 2.5])}


@pytest.mark.parametrize("method", [None, "squarem", "anderson"])
def test_evaluation_counts_are_honest(method):
    """n_em_evaluations counts every M-step, plus every E-step spent on a rejected
    extrapolation; it lies between the M-step and E-step counts."""
    model = Counting()
    res = emkit.em(model, hasselblad(), init=INIT, stop="params_maxabs", tol=1e-8, max_iter=5000,
                   accelerate=method)
    assert model.m_calls <= res.n_em_evaluations <= model.e_calls
    if method is None:
        assert res.n_em_evaluations == model.m_calls == res.n_iter == model.e_calls - 1


def test_constraints_hold_at_every_iterate():
    """Extrapolation must keep weights on the simplex, rates positive and covariances
    positive definite (checked on every accelerated iterate through the callback)."""
    seen = []
    X = emkit.datasets.load_faithful()
    for method in ("squarem", "anderson"):
        est = emkit.MultivariateNormalMixture(2, random_state=0, stop="params_maxabs", tol=1e-8, accelerate=method,
                                              check_monotone="raise",
                                              callback=lambda it, p, ll: seen.append(p)).fit(X)
        ref = emkit.MultivariateNormalMixture(2, random_state=0, stop="params_maxabs", tol=1e-8).fit(X)
        assert est.loglik_ == pytest.approx(ref.loglik_, abs=1e-6)
        assert est.n_em_evaluations_ < ref.n_em_evaluations_
    space = ParamSpace(est.model_.param_spec, est.params_)
    assert len(seen) > 10 and all(space.is_valid(p) for p in seen)


def test_extrapolation_near_a_boundary_is_pulled_back():
    """A component weight heading to ~0.02 and rates near 0: SQUAREM's long steps would leave
    the simplex / the positive rates, so they must be shortened; every iterate stays valid
    and the fit agrees with plain EM."""
    rng = np.random.default_rng(5)
    raw = np.concatenate([rng.poisson(0.05, 980), rng.poisson(8.0, 20)]).astype(float)
    x, w = np.unique(raw, return_counts=True)
    data = (x, w.astype(float))
    iterates = []
    start = {"weights": np.array([0.5, 0.5]), "rates": np.array([0.5, 3.0])}
    fast = emkit.em(Counting(), data, init=start, stop="params_maxabs", tol=1e-10, max_iter=2000,
                    accelerate="squarem", check_monotone="raise", callback=lambda i, p, ll: iterates.append(p))
    slow = emkit.em(Counting(), data, init=start, stop="params_maxabs", tol=1e-12, max_iter=100000)
    assert all(np.all(p["weights"] >= 0) and np.all(p["rates"] > 0) for p in iterates)
    np.testing.assert_allclose(fast.params["rates"], slow.params["rates"], rtol=1e-6)
    assert fast.loglik == pytest.approx(slow.loglik, abs=1e-8)


def test_fixed_groups_stay_fixed_and_restarts_reset_anderson():
    heads = np.array([5.0, 9, 8, 4, 7])
    coins = emkit.BinomialMixture(2, probs_init=[0.6, 0.5], weights_init=[0.5, 0.5], fixed=["weights"],
                                  accelerate="squarem", tol=1e-12, stop="params_maxabs").fit(heads, trials=10)
    ref = emkit.BinomialMixture(2, probs_init=[0.6, 0.5], weights_init=[0.5, 0.5], fixed=["weights"],
                                tol=1e-12, stop="params_maxabs").fit(heads, trials=10)
    np.testing.assert_array_equal(coins.weights_, [0.5, 0.5])
    np.testing.assert_allclose(coins.probs_, ref.probs_, atol=1e-9)
    # three restarts with one accelerator object: each restart reaches the optimum
    model = Counting()
    model.initialize = lambda data, rng: {"weights": np.array([0.5, 0.5]), "rates": np.sort(rng.uniform(0.5, 4, 2))}
    res = emkit.em(model, hasselblad(), n_init=3, random_state=0, stop="params_maxabs", tol=1e-9, max_iter=1000,
                   accelerate="anderson")
    _, _, loglik = hasselblad_mle()
    assert all(r.converged and r.loglik == pytest.approx(loglik, abs=1e-6) for r in res.restarts)


def test_get_accelerator_and_errors():
    assert isinstance(get_accelerator("squarem"), SquaremAccelerator)
    assert isinstance(get_accelerator("anderson", memory=3), AndersonAccelerator)
    assert get_accelerator("squarem") is not get_accelerator("squarem")
    with pytest.raises(ValueError, match="unknown accelerator"):
        get_accelerator("aitken")
    with pytest.raises(ValueError, match="unknown accelerator"):
        emkit.em(Counting(), hasselblad(), init=INIT, accelerate="aitken")
    with pytest.raises(ValueError, match="memory"):
        AndersonAccelerator(memory=0)
    with pytest.raises(ValueError, match="step_max0"):
        SquaremAccelerator(step_max0=0.5)
    # an accelerator object (with its own settings) is accepted by the engine
    res = emkit.em(Counting(), hasselblad(), init=INIT, stop="params_maxabs", tol=1e-8,
                   accelerate=SquaremAccelerator(step_max0=1.0, step_factor=4.0))
    assert res.converged and res.n_em_evaluations < 200


class CurvedMap(emkit.Model):
    """A one-parameter toy whose EM map M(p) = p* - 0.95 sign(d) |d|^1.5, d = p* - p, converges to p* = 0.999,
    just inside [0, 1], ever faster; its 'log-likelihood' -(p - p*)^2 rises along the map.
    SqS3's step from p = 0.5 lands far outside [0, 1]."""

    param_spec = {"p": emkit.UnitInterval()}
    target = 0.999

    def e_step(self, data, params):
        p = float(params["p"])
        return np.array(p), -(p - self.target) ** 2

    def m_step(self, stats, params):
        gap = self.target - float(stats)
        return {"p": np.array(self.target - 0.95 * np.sign(gap) * abs(gap) ** 1.5)}


@pytest.mark.parametrize("method", ["squarem", "anderson"])
def test_invalid_extrapolation_is_shortened(method):
    model = CurvedMap()
    m = lambda p: float(model.m_step(np.array(p), None)["p"])
    p0 = 0.5
    p1, p2 = m(p0), m(m(p0))
    r, v = p1 - p0, p2 - 2 * p1 + p0
    alpha = min(-abs(r) / abs(v), -1.0)
    assert p0 - 2 * alpha * r + alpha**2 * v > 1.0           # the raw SqS3 point is invalid
    seen = []
    res = emkit.em(model, (np.zeros(1),), init={"p": np.array(p0)}, stop="params_maxabs", tol=1e-12,
                   max_iter=200, accelerate=method, check_monotone="raise",
                   callback=lambda i, p, ll: seen.append(float(p["p"])))
    assert all(0.0 <= p <= 1.0 for p in seen)
    assert res.converged and float(res.params["p"]) == pytest.approx(0.999, abs=1e-9)
