"""Inputs that EM cannot fit give one-line errors naming the real cause (issue 12, item 3):
values whose squares overflow or underflow, a column missing in every row, all-zero exponential
data, counts too large for a Poisson mixture, more components than distinct rows (whatever the
offset), and probabilities that rounding pushed outside [0, 1]."""

from __future__ import annotations

import numpy as np
import pytest

import emkit
from emkit.core.validation import (check_magnitude, check_probabilities, column_max_abs,
                                   count_distinct_rows)

X50 = np.random.default_rng(0).normal(size=(50, 2))
OVERFLOW = r"X has values as large as .*, whose squares \(summed over the rows\) overflow float64; rescale X"
UNDERFLOW = r"X has values no larger than .* in magnitude.*, so small that their squares underflow to 0 in float64"


def _one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message
    return message


# --------------------------------------------------------------------------- magnitudes
@pytest.mark.parametrize("x", [X50 * 1e200, X50 / np.abs(X50).max() * 1e308], ids=["1e200", "1e308"])
def test_values_whose_squares_overflow(x):
    with pytest.raises(ValueError, match=OVERFLOW) as err:
        emkit.GaussianMixture(2, random_state=0).fit(x)
    assert "distinct row" not in _one_line(err)


def test_overflow_message_names_the_value_and_column():
    x = X50.copy()
    x[:, 1] *= 1e200
    with pytest.raises(ValueError) as err:
        emkit.GaussianMixture(2, random_state=0).fit(x)
    peak = np.abs(x[:, 1]).max()
    assert _one_line(err) == (f"X has values as large as {peak:.3g} (column 1), whose squares (summed over the "
                              f"rows) overflow float64; rescale X")


def test_subnormal_values_whose_squares_underflow():
    with pytest.raises(ValueError, match=UNDERFLOW) as err:
        emkit.GaussianMixture(2, random_state=0).fit(X50 * 1e-320)
    assert "distinct row" not in _one_line(err)


def test_float32_limits_are_float32s():
    with pytest.raises(ValueError, match="overflow float32"):
        emkit.GaussianMixture(2, random_state=0).fit((X50 * 1e30).astype(np.float32))


def test_large_and_small_but_representable_scales_still_fit():
    for scale in (1e150, 1e-150):
        gm = emkit.GaussianMixture(2, random_state=0).fit(X50 * scale)
        assert np.all(np.isfinite(gm.means_)) and np.all(np.isfinite(gm.covariances_))
    gm = emkit.GaussianMixture(2, random_state=0).fit(np.column_stack([X50[:, 0], np.zeros(50)]))
    assert np.all(np.isfinite(gm.means_))  # a column of zeros is constant, not subnormal


def test_column_missing_in_every_row():
    x = X50.copy()
    x[:, 1] = np.nan
    with pytest.raises(ValueError) as err:
        emkit.GaussianMixture(2, random_state=0).fit(x)
    assert _one_line(err) == "column 1 of X is missing (NaN) in every row; drop it (it carries no information)"


def test_dask_input_gets_the_same_messages_lazily():
    da = pytest.importorskip("dask.array")
    with pytest.raises(ValueError, match=OVERFLOW):
        emkit.GaussianMixture(2, random_state=0).fit(da.from_array(X50 * 1e200, chunks=(10, 2)))
    x = X50.copy()
    x[:, 0] = np.nan
    with pytest.raises(ValueError, match=r"column 0 of X is missing \(NaN\) in every row"):
        emkit.GaussianMixture(2, random_state=0).fit(da.from_array(x, chunks=(10, 2)))


@pytest.mark.parametrize("cls", [emkit.NormalMixture, emkit.ExponentialMixture])
def test_family_mixtures_check_magnitudes_too(cls):
    x = np.abs(X50[:, 0])
    with pytest.raises(ValueError, match=OVERFLOW.replace(r"X has", r"^X has")):
        cls(2, random_state=0).fit(x * 1e200)
    with pytest.raises(ValueError, match=UNDERFLOW):
        cls(2, random_state=0).fit(x * 1e-320)


def test_column_max_abs_and_check_magnitude():
    x = np.array([[1.0, np.nan], [-3.0, np.nan], [0.0, np.nan]])
    np.testing.assert_array_equal(column_max_abs(x), [3.0, np.nan])
    np.testing.assert_array_equal(column_max_abs(x, block_rows=1), [3.0, np.nan])
    np.testing.assert_array_equal(column_max_abs(x[:, 0]), [3.0])
    check_magnitude(x[:, :1], "X")  # ordinary numbers pass
    with pytest.raises(ValueError, match=r"^column 1 of X is missing \(NaN\) in every row"):
        check_magnitude(x, "X", missing_columns=True)


# --------------------------------------------------------------------------- exponential, Poisson
@pytest.mark.parametrize("x", [[0, 0, 0], [0.0, np.nan, 0.0]])
def test_exponential_of_zeros_names_the_infinite_rate(x):
    with pytest.raises(ValueError) as err:
        emkit.Exponential().fit(x)
    message = _one_line(err)
    assert message == ("every observed value of x is 0, so the rate's maximum-likelihood estimate is infinite "
                       "(it does not exist)")
    assert "n_init" not in message


def test_exponential_zeros_with_a_positive_censoring_time_fit():
    est = emkit.Exponential().fit([0.0, 0.0, 2.0], censored=[False, False, True])
    assert est.rate_ == pytest.approx(1.0)  # 2 events over a total time of 2
    assert emkit.Exponential().fit([1.0, 2.0]).score([0.0, 0.0]) == pytest.approx(2 * np.log(1 / 1.5))


def test_poisson_counts_too_large_are_rejected_by_value():
    with pytest.raises(ValueError) as err:
        emkit.PoissonMixture(2, random_state=0).fit([1e300, 2e300, 3, 4])
    assert _one_line(err) == ("X has counts as large as 2e+300, whose squares (summed over the rows) overflow "
                              "float64; a Poisson mixture cannot be fitted to counts this large")


# --------------------------------------------------------------------------- K above the distinct rows
@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
@pytest.mark.parametrize("seed", range(5))
def test_more_components_than_distinct_rows_one_rule_at_every_offset(seed, init_params):
    """As scikit-learn: with reg_covar > 0 the fit goes on with a warning (the extra components
    start empty or repeat a row); with reg_covar = 0 it is an error. Whatever the offset."""
    points = np.random.default_rng(seed).normal(size=(5, 2))
    x = np.vstack([points, points])
    messages, errors = set(), set()
    for offset in (0.0, 1e6, 1e12):
        with pytest.warns(emkit.EmptyComponentWarning) as record:
            gm = emkit.GaussianMixture(6, init_params=init_params, max_iter=50, random_state=0).fit(x + offset)
        messages |= {str(w.message) for w in record if "distinct" in str(w.message)}
        assert np.all(np.isfinite(gm.means_)) and np.all(np.isfinite(gm.covariances_))
        np.testing.assert_allclose(gm.weights_.sum(), 1.0)
        if init_params in ("kmeans", "k-means++"):  # one component per distinct point, one empty
            np.testing.assert_allclose(np.sort(gm.weights_), [0.0] + [0.2] * 5, atol=1e-9)
            on_points = np.sort(gm.means_[gm.weights_ > 0.1] - offset, axis=0)
            np.testing.assert_allclose(on_points, np.sort(points, axis=0), atol=1e-6 * max(1.0, offset))
        with pytest.raises(ValueError) as err:
            emkit.GaussianMixture(6, init_params=init_params, reg_covar=0.0, random_state=0).fit(x + offset)
        errors.add(_one_line(err))
    assert messages == {"n_components=6 but X has only 5 distinct row(s): 1 component(s) start empty "
                        "(weight ~0, covariance reg_covar * I); reduce n_components"}
    assert errors == {"Fitting the mixture model failed because some components have ill-defined empirical "
                      "covariance (for instance caused by singleton or collapsed samples). Try to decrease the number "
                      "of components, increase reg_covar, or scale the input data. (n_components=6 but X has only 5 "
                      "distinct row(s): with reg_covar=0 the extra components would have singular covariances.)"}


def test_more_components_than_distinct_rows_is_fast():
    """k-means with empty clusters does not rebuild distances per empty cluster (was 592 s)."""
    rng = np.random.default_rng(0)
    base = rng.normal(size=(430, 3))
    x = base[rng.integers(0, 430, size=2952)]
    x[:430] = base  # every distinct row present
    with pytest.warns(emkit.EmptyComponentWarning):
        gm = emkit.GaussianMixture(432, max_iter=5, random_state=0).fit(x)
    assert np.sum(gm.weights_ < 1e-12) >= 2  # the two components beyond the distinct rows


def test_distinct_rows_with_zero_weights_and_missing_values():
    x = np.repeat([[0.0, 1.0], [2.0, np.nan], [5.0, 1.0]], 3, axis=0)
    w = np.ones(9)
    w[6:] = 0.0
    with pytest.warns(emkit.EmptyComponentWarning, match=r"only 2 distinct row\(s\) with positive weight"):
        emkit.GaussianMixture(3, random_state=0).fit(x, sample_weight=w)
    with pytest.raises(ValueError, match=r"only 2 distinct row\(s\) with positive weight: with reg_covar=0"):
        emkit.GaussianMixture(3, reg_covar=0.0, random_state=0).fit(x, sample_weight=w)
    gm = emkit.GaussianMixture(3, random_state=0).fit(x)  # 3 distinct rows, one with a NaN
    assert gm.means_.shape == (3, 2)


def test_count_distinct_rows_is_exact():
    points = np.random.default_rng(1).normal(size=(5, 2))
    x = np.vstack([points, points, [[np.nan, 1.0], [np.nan, 1.0], [-0.0, 0.0], [0.0, 0.0]]])
    for offset in (0.0, 1e6, 1e12):
        assert count_distinct_rows(x + offset) == 7
        assert count_distinct_rows(x + offset, block_rows=3) == 7
    assert count_distinct_rows(x, at_least=3, block_rows=4) >= 3
    assert count_distinct_rows(x, weights=np.r_[np.zeros(10), np.ones(4)]) == 2
    assert count_distinct_rows(np.array([1.0, 1.0 + 2e-16, 1.0])) == 2


# --------------------------------------------------------------------------- probabilities
def test_bernoulli_probabilities_stay_in_the_unit_interval_and_refit():
    # seed 9: the M-step's sx / n gives 1.0000000000000002 for one item of one component
    x = (np.random.default_rng(9).random((60, 5)) < 0.5).astype(float)
    fit = emkit.BernoulliMixture(3, random_state=486).fit(x)
    assert fit.probs_.max() <= 1.0 and fit.probs_.min() >= 0.0
    assert fit.params_["probs"] is fit.probs_  # one source of truth: the published value is the fit's
    again = emkit.BernoulliMixture(3, probs_init=fit.probs_, weights_init=fit.weights_).fit(x)
    assert again.probs_.max() <= 1.0


def test_probabilities_init_tolerates_rounding_only():
    x = (np.random.default_rng(9).random((60, 5)) < 0.5).astype(float)
    probs = np.full((3, 5), 0.5)
    probs[0, 0] = 1.0000000000000002
    probs[1, 1] = -1e-17
    emkit.BernoulliMixture(3, probs_init=probs, random_state=0).fit(x)
    probs[0, 0] = 1.000001
    with pytest.raises(ValueError, match=r"probs_init must lie in \[0, 1\]"):
        emkit.BernoulliMixture(3, probs_init=probs, random_state=0).fit(x)
    np.testing.assert_array_equal(check_probabilities([1 + 1e-13, -1e-13, 0.5], "p"), [1.0, 0.0, 0.5])
    with pytest.raises(ValueError, match=r"p must lie in \[0, 1\]"):
        check_probabilities([1 + 1e-9], "p")


def test_gaussian_weights_init_tolerates_rounding():
    gm = emkit.GaussianMixture(1, weights_init=[1.0000000000000002], random_state=0).fit(X50)
    assert gm.weights_[0] == pytest.approx(1.0)
