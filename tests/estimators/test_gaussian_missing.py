"""Missing values (NaN) in emkit.GaussianMixture: exact EM under missing-at-random, checked
against the observed-data log-likelihood written independently here with scipy.stats."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

import emkit

TRUE_MEANS = np.array([[0.0, 0.0, 0.0], [5.0, 1.0, -2.0], [-3.0, 5.0, 2.0]])
TRUE_COVS = np.array([np.eye(3), [[2.0, 0.6, 0.0], [0.6, 1.0, 0.3], [0.0, 0.3, 0.5]], np.diag([0.5, 2.0, 1.0])])


def _data(n=300, frac=0.2, seed=0):
    """n rows from a known 3-component mixture in 3-D, 20 % of entries deleted at random
    (rows left with no observed entry get one back, so every row carries information)."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(3, n, p=[0.3, 0.3, 0.4])
    x = np.stack([rng.multivariate_normal(TRUE_MEANS[k], TRUE_COVS[k]) for k in labels])
    mask = rng.random(x.shape) < frac
    empty = mask.all(axis=1)
    mask[empty, rng.integers(0, 3, empty.sum())] = False
    xm = x.copy()
    xm[mask] = np.nan
    return xm


def _full_covs(cov, cov_type, k=3, d=3):
    cov = np.asarray(cov)
    return {"full": lambda: cov, "tied": lambda: np.repeat(cov[None], k, 0),
            "diag": lambda: np.stack([np.diag(c) for c in cov]),
            "spherical": lambda: np.stack([np.eye(d) * c for c in cov])}[cov_type]()


def observed_loglik_rows(x, weights, means, covs):
    """log sum_k w_k N(x_o; mu_k,o, S_k,oo) per row, with scipy on each row's observed coordinates."""
    out = np.empty(len(x))
    observed = ~np.isnan(x)
    for pattern in np.unique(observed, axis=0):  # rows sharing a pattern share the marginals
        rows = np.flatnonzero((observed == pattern).all(axis=1))
        o = pattern
        terms = [np.log(weights[k]) + np.atleast_1d(stats.multivariate_normal(
                 means[k][o], covs[k][np.ix_(o, o)]).logpdf(x[np.ix_(rows, o)])) for k in range(len(weights))]
        out[rows] = logsumexp(np.stack(terms), axis=0)
    return out


def observed_loglik(x, weights, means, covs):
    return float(observed_loglik_rows(x, weights, means, covs).sum())


def _fit(x, cov_type):
    return emkit.GaussianMixture(3, covariance_type=cov_type, reg_covar=0.0, means_init=TRUE_MEANS + 0.3, random_state=0,
                                 tol=1e-13, stop="loglik", max_iter=5000, check_monotone="raise").fit(x)


@pytest.mark.parametrize("cov_type", ["full", "diag"])
def test_fit_is_a_local_maximum_of_the_observed_loglik(cov_type):
    x = _data()
    assert 0.17 < np.isnan(x).mean() < 0.23
    gmm = _fit(x, cov_type)
    assert gmm.converged_
    weights, means = gmm.weights_, gmm.means_
    covs = _full_covs(gmm.covariances_, cov_type)
    best = observed_loglik(x, weights, means, covs)
    assert gmm.loglik_ == pytest.approx(best, rel=1e-11)
    h = 1e-4
    worse = 0
    # weights: move mass between each pair of components
    for i, j in [(0, 1), (0, 2), (1, 2)]:
        for sign in (1, -1):
            w = weights.copy()
            w[i] += sign * h
            w[j] -= sign * h
            assert observed_loglik(x, w, means, covs) <= best + 1e-9
            worse += 1
    for k in range(3):
        for dim in range(3):  # each mean coordinate
            for sign in (1, -1):
                m = means.copy()
                m[k, dim] += sign * h
                assert observed_loglik(x, weights, m, covs) <= best + 1e-9
                worse += 1
        pairs = [(a, b) for a in range(3) for b in range(a, 3)] if cov_type == "full" else [(a, a) for a in range(3)]
        for a, b in pairs:  # each free covariance entry (symmetric)
            for sign in (1, -1):
                c = covs.copy()
                c[k, a, b] += sign * h
                if a != b:
                    c[k, b, a] += sign * h
                assert observed_loglik(x, weights, means, c) <= best + 1e-9
                worse += 1
    assert worse == 2 * (3 + 9 + 3 * (6 if cov_type == "full" else 3))


def test_score_samples_is_the_marginal_density_of_observed_coordinates():
    x = _data(n=120, seed=1)
    gmm = emkit.GaussianMixture(3, means_init=TRUE_MEANS, random_state=0, tol=1e-6, max_iter=200).fit(x)
    expected = observed_loglik_rows(x, gmm.weights_, gmm.means_, gmm.covariances_)
    np.testing.assert_allclose(gmm.score_samples(x), expected, rtol=1e-11, atol=1e-11)
    proba = gmm.predict_proba(x)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)


def test_impute_is_the_posterior_weighted_conditional_mean():
    x = _data(n=80, seed=2)
    gmm = emkit.GaussianMixture(3, means_init=TRUE_MEANS, random_state=0, max_iter=50).fit(x)
    filled = gmm.impute(x)
    assert not np.isnan(filled).any()
    observed = ~np.isnan(x)
    np.testing.assert_array_equal(filled[observed], x[observed])
    for i in np.flatnonzero(np.isnan(x).any(axis=1))[:15]:
        o, m = observed[i], ~observed[i]
        logs, cond = [], []
        for k in range(3):
            s = gmm.covariances_[k]
            logs.append(np.log(gmm.weights_[k]) + stats.multivariate_normal(gmm.means_[k][o], s[np.ix_(o, o)]).logpdf(x[i, o]))
            cond.append(gmm.means_[k][m] + s[np.ix_(m, o)] @ np.linalg.solve(s[np.ix_(o, o)], x[i, o] - gmm.means_[k][o]))
        post = np.exp(np.array(logs) - logsumexp(logs))
        np.testing.assert_allclose(filled[i, m], post @ np.array(cond), rtol=1e-10)


def test_complete_rows_through_the_missing_path_change_nothing():
    x = _data(n=150, seed=3)
    complete = x[~np.isnan(x).any(axis=1)]
    opts = dict(means_init=TRUE_MEANS, tol=0, max_iter=10, random_state=0)
    ref = emkit.GaussianMixture(3, **opts).fit(complete)
    model = ref.model_
    stats_fast, ll_fast = model.e_step((complete, None), ref.params_)
    stats_slow, ll_slow = model._e_step_missing(complete, None, ref.params_, np.arange(len(complete)))
    assert ll_slow == pytest.approx(ll_fast, rel=1e-12)
    for key in stats_fast:
        np.testing.assert_allclose(stats_slow[key], stats_fast[key], rtol=1e-10, atol=1e-9)


@pytest.mark.parametrize("cov_type", ["full", "tied", "diag", "spherical"])
def test_missing_fit_is_chunk_invariant_and_monotone(cov_type):
    x = _data(n=200, seed=4)
    opts = dict(covariance_type=cov_type, means_init=TRUE_MEANS, tol=0, max_iter=15, check_monotone="raise",
                random_state=0)
    whole = emkit.GaussianMixture(3, **opts).fit(x)
    chunked = emkit.GaussianMixture(3, chunk_size=23, **opts).fit(x)
    assert chunked.loglik_ == pytest.approx(whole.loglik_, rel=1e-12)
    assert np.all(np.diff(whole.loglik_trace_) >= 0)
    covs = _full_covs(whole.covariances_, cov_type)
    assert whole.loglik_ == pytest.approx(observed_loglik(x, whole.weights_, whole.means_, covs), rel=1e-11)


def test_weighted_missing_rows_equal_repeated_rows():
    x = _data(n=100, seed=5)
    w = np.random.default_rng(5).integers(1, 4, len(x))
    opts = dict(means_init=TRUE_MEANS, weights_init=[0.3, 0.3, 0.4], covariances_init=TRUE_COVS, tol=0, max_iter=12)
    a = emkit.GaussianMixture(3, **opts).fit(x, sample_weight=w.astype(float))
    b = emkit.GaussianMixture(3, **opts).fit(np.repeat(x, w, axis=0))
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=1e-9)
    assert a.loglik_ == pytest.approx(b.loglik_, rel=1e-11)


def test_rows_entirely_missing_are_named_and_hard_em_refuses_nan():
    x = _data(n=30, seed=6)
    x[[4, 11]] = np.nan
    with pytest.raises(ValueError, match=r"every entry missing \(NaN\): rows \[4, 11\]"):
        emkit.GaussianMixture(2).fit(x)
    gmm = emkit.GaussianMixture(2, random_state=0).fit(_data(n=60, seed=7))
    with pytest.raises(ValueError, match=r"rows \[4, 11\]"):
        gmm.predict(x)
    with pytest.raises(ValueError, match="does not support missing values"):
        emkit.GaussianMixture(2, algorithm="hard").fit(_data(n=60, seed=7))
