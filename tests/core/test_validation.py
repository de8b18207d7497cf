"""One home each for the checks every estimator shares (issue: validation that disagreed)."""

from __future__ import annotations

import numpy as np
import pytest

import emkit
from emkit.core.params import Simplex, SymmetricPositiveDefinite
from emkit.core.validation import (check_fixed_groups, check_symmetric_positive_definite, column_max_abs, is_simplex,
                                   scan_values)
from emkit.estimators.registry import ESTIMATORS, estimator_class


def test_a_non_symmetric_matrix_is_not_symmetric_positive_definite():
    assert not SymmetricPositiveDefinite().is_valid([[1, 5], [0, 1]])
    assert SymmetricPositiveDefinite().is_valid([[2, 1], [1, 2]])
    assert not SymmetricPositiveDefinite().is_valid([[1, 2], [2, 1]])  # symmetric, indefinite
    with pytest.raises(ValueError, match=r"covariances_init\[0\] is not symmetric"):
        check_symmetric_positive_definite([[[1, 5], [0, 1]]], lambda j, problem: f"covariances_init[{j}]")


def test_the_simplex_check_is_the_constraints_own():
    assert Simplex().is_valid(np.array([0.25, 0.75])) and is_simplex([0.25, 0.75])
    assert not Simplex().is_valid(np.array([0.5, 0.6])) and not is_simplex([0.5, 0.6])
    assert not is_simplex([1.2, -0.2])


@pytest.mark.parametrize("fixed, expected", [(None, ()), ("weights", ("weights",)),
                                             (["weights", "rates"], ("weights", "rates"))])
def test_fixed_groups_accept_one_name_or_a_sequence(fixed, expected):
    assert check_fixed_groups(fixed, ["weights", "rates"]) == expected


def test_an_unknown_fixed_group_is_named_as_a_whole_word():
    with pytest.raises(ValueError, match=r"unknown parameter group\(s\) in fixed: \['weight'\]"):
        check_fixed_groups("weight", ["weights", "rates"], "PoissonMixture")


def test_fixed_as_one_string_works_for_every_mixture_estimator():
    x = np.random.default_rng(0).poisson(3, size=200).astype(float)
    p = emkit.PoissonMixture(2, fixed="weights", weights_init=[0.3, 0.7], random_state=0).fit(x)
    np.testing.assert_array_equal(p.weights_, [0.3, 0.7])
    X = np.random.default_rng(1).normal(size=(200, 2))
    g = emkit.GaussianMixture(2, fixed="weights", weights_init=[0.3, 0.7], random_state=0).fit(X)
    np.testing.assert_array_equal(g.weights_, [0.3, 0.7])


@pytest.mark.parametrize("name", sorted(set(ESTIMATORS) - {"AlleleFrequencies"}))
def test_every_estimator_raises_the_same_not_fitted_error(name):
    from sklearn.exceptions import NotFittedError

    est = estimator_class(name)()
    method = est.predict if hasattr(est, "predict") else est.score
    with pytest.raises(NotFittedError, match="is not fitted yet"):
        method(np.ones((4, 1)))


@pytest.mark.parametrize("shape", [(300_000, 3), (1000,), (5, 4)])
def test_scan_values_is_the_separate_checks_in_one_pass(shape):
    """scan_values gives column_max_abs's peaks and whether there is NaN, in blocks (300,000
    rows: several), refuses inf, and NaN unless allowed; a block whose |values| sum past the
    largest float without NaN or inf is not mistaken for one that has them."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=shape) * 10.0
    peak, has_nan = scan_values(x, "X")
    np.testing.assert_array_equal(peak, column_max_abs(x))
    assert not has_nan and scan_values(x, "X", peaks=False) == (None, False)
    with_nan = x.copy()
    with_nan.reshape(-1)[[7, x.size - 3]] = np.nan
    peak, has_nan = scan_values(with_nan, "X", allow_nan=True)
    np.testing.assert_array_equal(peak, column_max_abs(with_nan))
    assert has_nan and scan_values(with_nan, "X", allow_nan=True, peaks=False) == (None, True)
    with pytest.raises(ValueError, match="X contains NaN"):
        scan_values(with_nan, "X")
    with_inf = with_nan.copy()
    with_inf.reshape(-1)[x.size // 2] = -np.inf
    for peaks in (True, False):
        with pytest.raises(ValueError, match="X contains inf"):
            scan_values(with_inf, "X", allow_nan=True, peaks=peaks)
    huge = np.full(shape, 1e308)
    peak, has_nan = scan_values(huge, "X")
    assert not has_nan and np.all(peak == 1e308)
