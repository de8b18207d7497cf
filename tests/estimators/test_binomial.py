"""BinomialMixture: the two-coin example of seeds 000/001/003 (Do & Batzoglou 2008), checked
against the seed's update formula written out here in NumPy and a direct scipy maximisation."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.stats import binom

import emkit

HEADS = np.array([5, 9, 8, 4, 7])
TRIALS = 10


def seed_update(p_a, p_b, heads, trials):
    """One EM iteration of the seed (weights 1/2 fixed): posterior of coin A per run, then
    theta_A = sum(P_A x) / sum(P_A n), theta_B likewise."""
    like_a = p_a**heads * (1 - p_a) ** (trials - heads)
    like_b = p_b**heads * (1 - p_b) ** (trials - heads)
    post_a = like_a / (like_a + like_b)
    post_b = 1 - post_a
    return (np.sum(post_a * heads) / np.sum(post_a * trials),
            np.sum(post_b * heads) / np.sum(post_b * trials))


def seed_iterates(n, heads=HEADS, trials=TRIALS, start=(0.6, 0.5)):
    out = [start]
    for _ in range(n):
        out.append(seed_update(*out[-1], heads, np.broadcast_to(trials, heads.shape)))
    return np.array(out)


def coins(max_iter, tol=0.0, **kw):
    est = emkit.BinomialMixture(2, probs_init=[0.6, 0.5], weights_init=[0.5, 0.5], fixed=["weights"],
                                tol=tol, max_iter=max_iter, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emkit.ConvergenceWarning)
        return est.fit(HEADS, trials=TRIALS)


def test_two_coins_after_one_and_ten_iterations_match_the_published_values():
    one, ten = coins(1), coins(10)
    # Published to two decimals (Do & Batzoglou 2008, Fig. 1b) ...
    np.testing.assert_allclose(one.probs_, [0.71, 0.58], atol=0.005)
    np.testing.assert_allclose(ten.probs_, [0.80, 0.52], atol=0.005)
    # ... and to 1e-8 from the seed's formula evaluated independently here.
    np.testing.assert_allclose(one.probs_, [0.71301224, 0.58133931], atol=1e-8)
    np.testing.assert_allclose(ten.probs_, [0.79674415, 0.51965866], atol=1e-8)
    np.testing.assert_allclose(ten.probs_, seed_iterates(10)[-1], rtol=1e-13)
    np.testing.assert_array_equal(ten.weights_, [0.5, 0.5])
    assert one.n_iter_ == 1 and ten.n_iter_ == 10


def test_every_iterate_is_the_seed_update_and_loglik_never_decreases():
    est = coins(1000, tol=1e-12, keep_history=True)
    assert est.converged_
    history = np.array([np.asarray(h["probs"]) for h in est.result_.params_history])
    np.testing.assert_allclose(history, seed_iterates(est.n_iter_), rtol=1e-12)
    assert np.all(np.diff(est.loglik_trace_) >= -1e-12)
    # the fixed point of the seed's map
    np.testing.assert_allclose(seed_update(*est.probs_, HEADS, TRIALS), est.probs_, atol=1e-7)
    np.testing.assert_allclose(est.probs_, [0.7968, 0.5196], atol=5e-5)


def loglik(weight_a, p_a, p_b, heads=HEADS, trials=TRIALS):
    return float(np.sum(np.log(weight_a * binom.pmf(heads, trials, p_a)
                               + (1 - weight_a) * binom.pmf(heads, trials, p_b))))


def test_predict_proba_is_the_hand_posterior_and_score_the_mixture_density():
    est = coins(10)
    p_a, p_b = est.probs_
    like_a = p_a**HEADS * (1 - p_a) ** (TRIALS - HEADS)
    like_b = p_b**HEADS * (1 - p_b) ** (TRIALS - HEADS)
    post = est.predict_proba(HEADS)
    np.testing.assert_allclose(post[:, 0], like_a / (like_a + like_b), rtol=1e-12)
    np.testing.assert_allclose(post.sum(axis=1), 1.0)
    np.testing.assert_array_equal(est.predict(HEADS), np.where(like_a > like_b, 0, 1))
    expected = np.log(0.5 * binom.pmf(HEADS, TRIALS, p_a) + 0.5 * binom.pmf(HEADS, TRIALS, p_b))
    np.testing.assert_allclose(est.score_samples(HEADS), expected, rtol=1e-12)
    assert est.score(HEADS) == pytest.approx(expected.mean(), rel=1e-12)
    assert est.loglik_trace_[-1] == pytest.approx(expected.sum(), rel=1e-12)


def test_learned_weights_reach_the_direct_maximiser():
    est = emkit.BinomialMixture(2, probs_init=[0.6, 0.5], weights_init=[0.5, 0.5], tol=1e-14, max_iter=20000)
    est.fit(HEADS, trials=TRIALS)

    def negll(z):
        w, a, b = 1 / (1 + np.exp(-z))
        return -loglik(w, a, b)

    start = np.log(np.array([0.5, 0.6, 0.5]) / (1 - np.array([0.5, 0.6, 0.5])))
    best = minimize(negll, start, method="BFGS", options={"gtol": 1e-10})
    w, a, b = 1 / (1 + np.exp(-best.x))
    assert est.loglik_ == pytest.approx(-best.fun, abs=1e-7)
    assert est.loglik_ >= -best.fun - 1e-9
    np.testing.assert_allclose([est.weights_[0], *est.probs_], [w, a, b], atol=2e-3)
    assert est.loglik_ > coins(1000, tol=1e-12).loglik_  # freeing the weights can only help


def test_any_number_of_flips_per_run():
    trials = np.array([10, 5, 20, 8, 12])
    heads = np.array([5, 4, 15, 2, 7])
    est = emkit.BinomialMixture(2, probs_init=[0.6, 0.5], weights_init=[0.5, 0.5], fixed=["weights"],
                                tol=0, max_iter=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emkit.ConvergenceWarning)
        est.fit(heads, trials)
    np.testing.assert_allclose(est.probs_, seed_iterates(4, heads, trials)[-1], rtol=1e-12)
    # predicting needs the trials of each run when they varied
    with pytest.raises(ValueError, match="trials is required"):
        est.predict_proba(heads)
    assert est.predict_proba(heads, trials).shape == (5, 2)


def test_sample_weight_equals_repeated_rows():
    kw = dict(probs_init=[0.6, 0.5], weights_init=[0.5, 0.5], tol=0, max_iter=6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emkit.ConvergenceWarning)
        weighted = emkit.BinomialMixture(2, **kw).fit(HEADS, 10, sample_weight=[1, 2, 1, 3, 1])
        repeated = emkit.BinomialMixture(2, **kw).fit(np.repeat(HEADS, [1, 2, 1, 3, 1]), 10)
    np.testing.assert_allclose(weighted.probs_, repeated.probs_, rtol=1e-12)
    np.testing.assert_allclose(weighted.weights_, repeated.weights_, rtol=1e-12)
    assert weighted.loglik_ == pytest.approx(repeated.loglik_, rel=1e-12)


def test_hard_em_fixed_point_assigns_each_run_to_its_best_coin():
    est = emkit.BinomialMixture(2, probs_init=[0.6, 0.5], weights_init=[0.5, 0.5], algorithm="hard",
                                tol=1e-12).fit(HEADS, TRIALS)
    labels = est.predict(HEADS)
    for k in range(2):
        assert est.probs_[k] == pytest.approx(HEADS[labels == k].sum() / (TRIALS * np.sum(labels == k)))


def test_information_criteria_and_sampling():
    est = coins(1000, tol=1e-12)
    ll = loglik(0.5, *est.probs_)
    assert est.bic(HEADS) == pytest.approx(-2 * ll + 2 * np.log(5), rel=1e-12)  # weights fixed: 2 params
    assert est.aic(HEADS) == pytest.approx(-2 * ll + 4, rel=1e-12)
    x, labels = est.sample(4000, random_state=0)
    assert x.shape == (4000,) and set(np.unique(labels)) <= {0, 1}
    assert np.all((x >= 0) & (x <= 10))
    mean = 10 * (0.5 * est.probs_[0] + 0.5 * est.probs_[1])
    assert abs(x.mean() - mean) < 4 * x.std() / np.sqrt(4000)


def test_torch_float32_goes_through_the_same_code():
    torch = pytest.importorskip("torch")
    est = coins(10)
    t = emkit.BinomialMixture(2, probs_init=[0.6, 0.5], weights_init=[0.5, 0.5], fixed=["weights"],
                              tol=0, max_iter=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emkit.ConvergenceWarning)
        t.fit(torch.tensor(HEADS, dtype=torch.float32), trials=TRIALS)
    assert isinstance(t.probs_, torch.Tensor) and t.probs_.dtype == torch.float32
    np.testing.assert_allclose(t.probs_.numpy(), est.probs_, atol=1e-5)
