"""emkit.select_mixture: mclust-style search over n_components x covariance_type."""

from __future__ import annotations

import math

import numpy as np
import pytest

import emkit

FAITHFUL = emkit.datasets.load_faithful()
KEYS = {"n_components", "covariance_type", "loglik", "n_parameters", "bic", "aic", "icl", "converged", "error"}


@pytest.fixture(scope="module")
def faithful_search():
    return emkit.select_mixture(FAITHFUL, n_components=range(1, 5), n_init=5, random_state=0, tol=1e-8,
                                max_iter=1000)


def test_table_records_and_criteria(faithful_search):
    sel = faithful_search
    assert len(sel.table) == 4 * 4
    assert all(set(r) == KEYS for r in sel.table)
    n = len(FAITHFUL)
    for r in sel.table:
        # the criteria follow from the record's own log-likelihood and parameter count
        assert r["bic"] == pytest.approx(-2 * r["loglik"] + r["n_parameters"] * math.log(n), rel=1e-12)
        assert r["aic"] == pytest.approx(-2 * r["loglik"] + 2 * r["n_parameters"], rel=1e-12)
        assert r["icl"] >= r["bic"] - 1e-9
        gmm = sel.models[(r["n_components"], r["covariance_type"])]
        assert r["loglik"] == pytest.approx(gmm.loglik_)
    k, d = 3, 2
    record = next(r for r in sel.table if r["n_components"] == k and r["covariance_type"] == "full")
    assert record["n_parameters"] == (k - 1) + k * d + k * d * (d + 1) // 2


def test_best_is_the_lowest_bic_and_matches_mclust_on_faithful(faithful_search):
    sel = faithful_search
    best = min(sel.table, key=lambda r: r["bic"])
    assert sel.best_params == {"n_components": best["n_components"], "covariance_type": best["covariance_type"]}
    assert sel.best_.bic(FAITHFUL) == pytest.approx(best["bic"])
    # R mclust on faithful chooses EEE (tied, full) with 3 components; its VVV,2 (full, K=2)
    # fit has log-likelihood -1130.264 (mclust reports BIC with the opposite sign)
    assert sel.best_params == {"n_components": 3, "covariance_type": "tied"}
    vvv2 = next(r for r in sel.table if r["n_components"] == 2 and r["covariance_type"] == "full")
    assert vvv2["loglik"] == pytest.approx(-1130.264, abs=5e-4)
    table, best_model = sel  # tuple unpacking
    assert best_model is sel.best_ and table is sel.table


def test_other_criteria_and_single_type():
    sel = emkit.select_mixture(FAITHFUL, n_components=[1, 2], covariance_types="diag", criterion="aic",
                               random_state=0)
    assert [r["covariance_type"] for r in sel.table] == ["diag", "diag"]
    assert sel.best_params["n_components"] == min(sel.table, key=lambda r: r["aic"])["n_components"] == 2


def test_unfittable_grid_points_are_recorded_not_fatal():
    x = np.repeat([[0.0, 1.0], [2.0, 3.0], [5.0, 1.0]], 5, axis=0)
    sel = emkit.select_mixture(x, n_components=[1, 2, 4], covariance_types=["spherical"], random_state=0)
    failed = [r for r in sel.table if r["error"] is not None]
    assert [r["n_components"] for r in failed] == [4]
    assert "distinct row" in failed[0]["error"] and math.isnan(failed[0]["bic"])
    assert sel.best_params["n_components"] in (1, 2)


@pytest.mark.parametrize("kwargs, match", [
    (dict(criterion="bogus"), "unknown criterion 'bogus'"),
    (dict(covariance_types=["full", "banana"]), "unknown covariance_type 'banana'"),
    (dict(n_components=[0, 1]), "n_components must be an integer >= 1"),
    (dict(n_components=[]), "at least one n_components"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        emkit.select_mixture(FAITHFUL, **kwargs)


def test_nothing_fits_is_a_clear_error():
    with pytest.raises(ValueError, match="no model in the grid could be fitted"):
        emkit.select_mixture(np.ones((3, 2)), n_components=[5], covariance_types=["full"])
