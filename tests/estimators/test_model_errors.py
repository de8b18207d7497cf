"""Bad input to the mixture estimators: one clear ValueError naming the problem, each checked."""

from __future__ import annotations

import numpy as np
import pytest

import emkit

NAN = float("nan")
COUNTS = [0.0, 1.0, 3.0, 2.0, 5.0, 1.0]


def binomial(**kw):
    return emkit.BinomialMixture(2, **kw)


@pytest.mark.parametrize("successes, trials, message", [
    ([5, -1, 3], 10, "successes must be non-negative counts"),
    ([5, 2.5, 3], 10, "successes must be whole numbers"),
    ([5, 12, 3], 10, r"successes exceed trials"),
    ([5, 4, 3], [10, 3, 10], r"successes exceed trials"),
    ([5, 4, 3], [10, -10, 10], "trials must be non-negative counts"),
    ([5, 4, 3], 10.5, "trials must be a non-negative whole number"),
    ([5, 4, 3], [10, 10], "trials has 2 entries but successes has 3"),
    ([5, 4, 3], None, "trials is required"),
    ([], 10, "successes is empty"),
    ([5, NAN, 3], 10, "successes contains NaN"),
    ([[5, 4]], 10, "dimension"),
])
def test_binomial_data_errors(successes, trials, message):
    with pytest.raises(ValueError, match=message):
        binomial().fit(successes, trials=trials)


@pytest.mark.parametrize("kwargs, message", [
    ({"probs_init": [0.6, 1.5]}, r"probs_init must lie in \[0, 1\]"),
    ({"probs_init": [-0.1, 0.5]}, r"probs_init must lie in \[0, 1\]"),
    ({"probs_init": [0.6, NAN]}, "probs_init contains NaN"),
    ({"probs_init": [0.6, 0.5, 0.4]}, r"probs_init must have shape \(2,\)"),
    ({"weights_init": [0.6, 0.6]}, "weights_init must sum to 1"),
    ({"weights_init": [1.2, -0.2]}, r"weights_init must lie in \[0, 1\]"),
    ({"weights_init": [1.0]}, r"weights_init must have shape \(2,\)"),
    ({"fixed": ["coins"]}, r"unknown parameter group.*coins"),
])
def test_binomial_init_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        binomial(**kwargs).fit([5, 9, 8, 4, 7], 10)


@pytest.mark.parametrize("n_components", [0, -1, 1.5, "two", True])
def test_n_components_must_be_a_positive_integer(n_components):
    with pytest.raises(ValueError, match="n_components must be an integer >= 1"):
        emkit.PoissonMixture(n_components).fit(COUNTS)


def test_more_components_than_distinct_rows():
    with pytest.raises(ValueError, match=r"n_components=3 is more than the number of distinct rows \(2\)"):
        emkit.PoissonMixture(3).fit([1.0, 1.0, 4.0, 4.0])
    with pytest.raises(ValueError, match="distinct rows"):
        emkit.NormalMixture(3).fit([[1.0, 2.0], [1.0, 2.0]])


@pytest.mark.parametrize("X, message", [
    ([1.0, -2.0, 3.0], "non-negative counts"),
    ([1.0, 2.5, 3.0], "whole numbers"),
    ([1.0, NAN, 3.0], "contains NaN"),
    ([1.0, np.inf, 3.0], "contains inf"),
    ([], "is empty"),
    ([0.0, 0.0, 0.0], "all zero"),
    (np.zeros((3, 0)), r"0 feature\(s\)"),
    (np.ones((2, 2, 2)), "dimension"),
    (["a", "b"], "numeric"),
])
def test_poisson_data_errors(X, message):
    with pytest.raises(ValueError, match=message):
        emkit.PoissonMixture(1).fit(X)


@pytest.mark.parametrize("sample_weight, message", [
    ([1, 1, -1, 1, 1, 1], "sample_weight must be non-negative"),
    ([0, 0, 0, 0, 0, 0], "all weights are zero"),
    ([1, 1, 1], "sample_weight has 3 entries but the data has 6 rows"),
    ([1, 1, NAN, 1, 1, 1], "sample_weight contains NaN"),
])
def test_sample_weight_errors(sample_weight, message):
    with pytest.raises(ValueError, match=message):
        emkit.PoissonMixture(2).fit(COUNTS, sample_weight=sample_weight)


@pytest.mark.parametrize("make, message", [
    (lambda: emkit.PoissonMixture(2, rates_init=[1.0, -2.0]), "rates_init must be positive"),
    (lambda: emkit.PoissonMixture(2, rates_init=[[1.0], [2.0]]), r"rates_init must have shape \(2,\)"),
    (lambda: emkit.NormalMixture(2, covariances_init=[1.0, 0.0]), "covariances_init must be positive"),
    (lambda: emkit.NormalMixture(2, means_init=[1.0, "x"]), "means_init must be numeric"),
    (lambda: emkit.MultivariateNormalMixture(2, covariances_init=[[[1, 2], [2, 1]], [[1, 0], [0, 1]]]),
     "symmetric positive definite"),
    (lambda: emkit.BernoulliMixture(2, probs_init=[[0.5, 1.2], [0.1, 0.2]]), r"probs_init must lie in \[0, 1\]"),
    (lambda: emkit.CategoricalMixture(2, probs_init=np.full((2, 2, 2), 0.4)), "probs_init must sum to 1"),
    (lambda: emkit.FiniteMixture(2, "poisson", params_init={"lambdas": [1, 2]}), "unknown group"),
    (lambda: emkit.FiniteMixture(2, "gamma"), "unknown family 'gamma'"),
    # the order before n_components came first: a message with the call to write instead
    (lambda: emkit.FiniteMixture("poisson", 2), r"n_components first .* FiniteMixture\(2, family='poisson'\)"),
    (lambda: emkit.FiniteMixture("poisson"), r"FiniteMixture\(1, family='poisson'\)"),
])
def test_init_errors(make, message):
    X = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [1.0, 1.0]])
    with pytest.raises(ValueError, match=message):
        est = make()
        est.fit(X[:, 0] * 3 if isinstance(est, (emkit.PoissonMixture, emkit.FiniteMixture)) else
                X if not isinstance(est, emkit.NormalMixture) else X[:, 0])


def test_wrong_number_of_columns_at_predict_time():
    X = np.random.default_rng(0).normal(size=(30, 3))
    est = emkit.MultivariateNormalMixture(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="X has 2 features, but MultivariateNormalMixture is expecting 3"):
        est.predict(X[:, :2])
    with pytest.raises(ValueError, match="Reshape your data"):
        est.predict(X[0])
    normal = emkit.NormalMixture(2, random_state=0).fit(X[:, 0])
    with pytest.raises(ValueError, match="Reshape your data"):
        normal.predict_proba(X)


def test_unfitted_estimator_says_so():
    with pytest.raises(AttributeError, match="not fitted yet"):
        emkit.PoissonMixture(2).predict(COUNTS)


@pytest.mark.parametrize("make, X, message", [
    (lambda: emkit.BernoulliMixture(2), [[0, 1], [1, 2]], "only 0 and 1"),
    (lambda: emkit.CategoricalMixture(2, n_categories=2), [[0, 1], [1, 2]], "codes >= 2"),
    (lambda: emkit.CategoricalMixture(2), [[0, -1], [1, 2]], "non-negative"),
    (lambda: emkit.CategoricalMixture(2, n_categories=0), [[0, 1], [1, 0]], "n_categories must be positive"),
    (lambda: emkit.ExponentialMixture(2), [1.0, -1.0, 2.0], "Negative values"),
    (lambda: emkit.NormalMixture(2), [1.0, 2.0 + 1j], "Complex data not supported"),
])
def test_family_specific_data_errors(make, X, message):
    with pytest.raises(ValueError, match=message):
        make().fit(np.asarray(X))


def test_sparse_input_is_refused_clearly():
    sparse = pytest.importorskip("scipy.sparse")
    with pytest.raises(ValueError, match="sparse input is not supported"):
        emkit.NormalMixture(1).fit(sparse.csr_matrix(np.eye(3)))


def test_category_unseen_in_fit_is_an_error_at_predict_time():
    est = emkit.CategoricalMixture(2, random_state=0, max_iter=20, tol=1e-3).fit([[0, 1], [1, 0], [1, 1], [0, 0]])
    with pytest.raises(ValueError, match="codes >= 2"):
        est.predict([[0, 2]])


def test_sample_needs_a_positive_count():
    est = emkit.PoissonMixture(1).fit(COUNTS)
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        est.sample(0)
