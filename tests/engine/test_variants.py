"""Hard (classification) EM and stochastic EM, the engine's variants for discrete latent models."""

from __future__ import annotations

import numpy as np
import pytest

import emkit

from contract_models import TwoPoisson
from emkit import inference


def test_hard_em_two_coins_gives_complete_data_answer():
    """Seed 000: from 0.6 / 0.5, hard assignment puts runs 2, 3, 5 on coin A and 1, 4 on coin B,
    which is the complete-data answer 24/30 = 0.80 and 9/20 = 0.45."""
    coins = emkit.BinomialMixture(2, probs_init=[0.6, 0.5], weights_init=[0.5, 0.5], fixed=["weights"],
                                  algorithm="hard").fit([5, 9, 8, 4, 7], trials=10)
    np.testing.assert_allclose(np.ravel(coins.probs_), [0.80, 0.45], atol=1e-12)
    np.testing.assert_array_equal(coins.weights_, [0.5, 0.5])
    assert coins.converged_
    # soft EM from the same start lands elsewhere (0.80 / 0.52 in seed 000)
    soft = emkit.BinomialMixture(2, probs_init=[0.6, 0.5], weights_init=[0.5, 0.5], fixed=["weights"],
                                 tol=1e-12, stop="params_maxabs").fit([5, 9, 8, 4, 7], trials=10)
    assert np.ravel(soft.probs_)[1] == pytest.approx(0.52, abs=0.01)


def test_hard_em_is_a_fixed_point_of_classify_then_maximise():
    """At convergence, classifying every individual by its largest log p(x, z) and taking the
    complete-data MLE of those classes returns the same parameters (computed here by hand)."""
    rng = np.random.default_rng(2)
    raw = np.concatenate([rng.poisson(1.5, 700), rng.poisson(7.0, 300)]).astype(float)
    x, w = np.unique(raw, return_counts=True)
    data = (x, w.astype(float))
    fit = emkit.em(TwoPoisson(), data, init={"weights": np.array([0.5, 0.5]), "rates": np.array([1.0, 5.0])},
                   algorithm="hard", stop="params_maxabs", tol=1e-12, max_iter=100)
    assert fit.converged
    lj = TwoPoisson().log_joint(data, fit.params)
    first = np.argmax(lj, axis=1) == 0
    n0, n1 = w[first].sum(), w[~first].sum()
    np.testing.assert_allclose(fit.params["weights"], [n0 / 1000, n1 / 1000], atol=1e-12)
    np.testing.assert_allclose(fit.params["rates"], [x[first] @ w[first] / n0, x[~first] @ w[~first] / n1],
                               rtol=1e-12)


def stochastic_tolerance(sem_result, n_avg):
    """Sampling error of the stochastic-EM average around the MLE.

    Linearised, stochastic EM is the AR(1) chain e_{t+1} = J e_t + eps_t, J the EM map's Jacobian
    and Var(eps) = I_oc^-1 I_mis I_oc^-1 (the spread of the complete-data MLE over imputations).
    In one dimension its stationary variance is V_mle * J / (1 + J) and the mean of T draws has
    variance V_mle * J / ((1 - J) T). With J = the largest eigenvalue (the worst direction),
    SD(average) <= SE_mle * sqrt(J / ((1 - J) T)); we allow 4 of those, plus 0.1 SE_mle for the
    O(1/n) offset between the chain's centre and the MLE.
    """
    lam = sem_result.fraction_missing_information
    factor = 4 * np.sqrt(lam / ((1 - lam) * n_avg)) + 0.1
    return {g: factor * se for g, se in sem_result.standard_errors.items()}


def test_stochastic_em_average_is_within_sampling_error_of_the_mle():
    rng = np.random.default_rng(0)
    raw = np.concatenate([rng.poisson(2.0, 12000), rng.poisson(6.0, 8000)]).astype(float)
    x, w = np.unique(raw, return_counts=True)
    data = (x, w.astype(float))
    start = {"weights": np.array([0.5, 0.5]), "rates": np.array([1.0, 5.0])}
    mle = emkit.em(TwoPoisson(), data, init=start, stop="params_maxabs", tol=1e-11, accelerate="squarem",
                   max_iter=1000)
    sem = inference.sem(mle, data)
    tol = stochastic_tolerance(sem, n_avg=400)
    sto = emkit.em(TwoPoisson(), data, init=start, algorithm="stochastic", max_iter=600, burn_in=200,
                   random_state=42)
    assert sto.converged and sto.n_iter == 600
    for group in ("weights", "rates"):
        assert np.all(np.abs(sto.params[group] - mle.params[group]) < tol[group]), group
    # the log-likelihood drop is about (1/2) d' I_obs d for the offset d; with |d| below the
    # tolerance (0.37 SE per coordinate here) that is at most 3 * 0.37^2 / 2 = 0.2
    assert mle.loglik - 0.25 < sto.loglik <= mle.loglik + 1e-9
    # reproducible with random_state, different with another seed
    again = emkit.em(TwoPoisson(), data, init=start, algorithm="stochastic", max_iter=600, burn_in=200,
                     random_state=42)
    np.testing.assert_array_equal(again.params["rates"], sto.params["rates"])
    other = emkit.em(TwoPoisson(), data, init=start, algorithm="stochastic", max_iter=600, burn_in=200,
                     random_state=43)
    assert not np.array_equal(other.params["rates"], sto.params["rates"])


def test_stochastic_em_with_a_builtin_mixture_on_raw_rows():
    """PoissonMixture on 20,000 unweighted rows (one latent draw per row)."""
    rng = np.random.default_rng(1)
    X = np.concatenate([rng.poisson(2.0, 12000), rng.poisson(6.0, 8000)]).astype(float)
    common = dict(weights_init=[0.5, 0.5], rates_init=[1.0, 5.0])
    mle = emkit.PoissonMixture(2, **common, stop="params_maxabs", tol=1e-11, accelerate="squarem").fit(X)
    tol = stochastic_tolerance(mle.covariance("sem"), n_avg=150)
    sto = emkit.PoissonMixture(2, **common, algorithm="stochastic", max_iter=300, burn_in=150,
                               random_state=7).fit(X)
    assert np.all(np.abs(sto.rates_ - mle.rates_) < tol["rates"])
    assert np.all(np.abs(sto.weights_ - mle.weights_) < tol["weights"])


def test_variants_reject_models_without_discrete_latent_variables():
    class Plain(emkit.Model):
        param_spec = {"p": emkit.UnitInterval()}

    with pytest.raises(ValueError, match="discrete latent"):
        emkit.em(Plain(), (np.zeros(3),), init={"p": np.array(0.5)}, algorithm="hard")
    with pytest.raises(ValueError, match="unknown algorithm"):
        emkit.em(TwoPoisson(), (np.ones(3), np.ones(3)), algorithm="gibbs")
    with pytest.raises(ValueError, match="plain EM only"):
        emkit.em(TwoPoisson(), (np.ones(3), np.ones(3)), algorithm="stochastic", accelerate="squarem")


def test_stochastic_em_on_grouped_counts_draws_per_individual():
    """Hasselblad's 1,096 days as 10 grouped rows: stochastic EM must draw a label per day, so
    its average stays near the MLE instead of collapsing into one component (found in review,
    fixed in models/mixture.py: whole-number sample weights are counts)."""
    d = emkit.datasets.load_hasselblad_deaths()
    est = emkit.PoissonMixture(2, weights_init=[0.3, 0.7], rates_init=[1.0, 2.5], algorithm="stochastic",
                               max_iter=200, random_state=0).fit(d["deaths"], sample_weight=d["freq"])
    assert 0.05 < est.weights_[0] < 0.95


# --------------------------------------------------------------------------- degenerate runs
def test_hard_em_emptying_a_component_raises_a_clear_error():
    x, w = np.array([0.0, 1, 2, 10, 11, 12]), np.ones(6)
    with np.errstate(all="ignore"):
        with pytest.raises(ValueError, match="non-finite values for 'rates'"):
            emkit.em(TwoPoisson(), (x, w), init={"weights": np.array([0.5, 0.5]), "rates": np.array([100.0, 5.0])},
                     algorithm="hard", max_iter=20)


def test_stochastic_em_rejects_burn_in_past_max_iter():
    x, w = np.array([0.0, 1, 2, 10, 11, 12]), np.ones(6)
    with pytest.raises(ValueError, match="burn_in"):
        emkit.em(TwoPoisson(), (x, w), init={"weights": np.array([0.5, 0.5]), "rates": np.array([1.0, 5.0])},
                 algorithm="stochastic", max_iter=20, burn_in=500, random_state=0)
