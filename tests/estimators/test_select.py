"""emkit.select_mixture: mclust-style search over n_components x covariance_type."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import emkit
from emkit.estimators.selection import DegenerateFitWarning, degenerate_components, warn_if_degenerate

FAITHFUL = emkit.datasets.load_faithful()
KEYS = {"n_components", "covariance_type", "loglik", "n_parameters", "bic", "aic", "icl", "converged", "degenerate",
        "degenerate_reason", "error"}


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
    best = min((r for r in sel.table if not r["degenerate"]), key=lambda r: r["bic"])
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
    sel = emkit.select_mixture(x, n_components=[1, 2, 4], covariance_types=["spherical"], random_state=0,
                               reg_covar=0.0)
    failed = {r["n_components"]: r for r in sel.table if r["error"] is not None}
    assert 4 in failed and 1 not in failed
    assert "distinct row" in failed[4]["error"] and math.isnan(failed[4]["bic"])
    assert sel.best_params["n_components"] in (1, 2)


def test_components_on_repeated_rows_are_degenerate_and_never_chosen():
    # three distinct rows: with reg_covar > 0 the fits go on, their components collapse onto
    # the rows (variance = reg_covar) and their BIC is far below the honest K = 1 fit's
    x = np.repeat([[0.0, 1.0], [2.0, 3.0], [5.0, 1.0]], 5, axis=0)
    sel = emkit.select_mixture(x, n_components=[1, 2, 3, 4], covariance_types=["spherical"])
    by_k = {r["n_components"]: r for r in sel.table}
    assert not by_k[1]["degenerate"] and by_k[1]["degenerate_reason"] is None
    for k in (3, 4):
        assert by_k[k]["degenerate"] and "reg_covar floor" in by_k[k]["degenerate_reason"]
        assert by_k[k]["bic"] < by_k[1]["bic"]
    assert sel.best_params == {"n_components": 1, "covariance_type": "spherical"}


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


# --------------------------------------------------------------------------- issue 13, item 4
def test_five_runs_choose_the_same_winner_with_the_same_table():
    """No seed given: the search is still the same on every run (seeded short runs)."""
    # the runs split between 2 full and 3 tied: that part of the grid, five times
    runs = [emkit.select_mixture(FAITHFUL, n_components=[1, 2, 3], covariance_types=["full", "tied"])
            for _ in range(5)]
    assert all(r.best_params == {"n_components": 3, "covariance_type": "tied"} for r in runs)
    first = [(r["n_components"], r["covariance_type"], r["bic"]) for r in runs[0].table]
    for other in runs[1:]:
        assert [(r["n_components"], r["covariance_type"], r["bic"]) for r in other.table] == first


def test_the_table_holds_the_converged_values():
    """The default search reports the tight-tolerance optimum: Old Faithful, 3 components with
    one shared covariance, BIC 2314.296 (scikit-learn's tol=1e-3 stops at 2315.986)."""
    sel = emkit.select_mixture(FAITHFUL, n_components=[2, 3], covariance_types=["tied", "full"])
    tied3 = next(r for r in sel.table if (r["n_components"], r["covariance_type"]) == (3, "tied"))
    reference = emkit.GaussianMixture(3, covariance_type="tied", stop="loglik_mean", tol=1e-10, max_iter=100000,
                                      random_state=0).fit(FAITHFUL)
    assert round(tied3["bic"], 3) == round(reference.bic(FAITHFUL), 3) == 2314.296
    assert tied3["converged"]
    full2 = next(r for r in sel.table if (r["n_components"], r["covariance_type"]) == (2, "full"))
    assert round(full2["loglik"], 3) == -1130.264 and round(full2["bic"], 3) == 2322.192
    loose = emkit.GaussianMixture(3, covariance_type="tied", stop="loglik_mean", tol=1e-3, max_iter=100,
                                  random_state=0).fit(FAITHFUL)
    assert round(loose.bic(FAITHFUL), 3) != 2314.296  # what a loose rule would have reported


def test_many_components_degenerate_are_marked_and_never_chosen():
    """``-k 1-30 --covariance-type full`` once chose 30 components with zero covariances."""
    sel = emkit.select_mixture(FAITHFUL, n_components=range(1, 13), covariance_types="full")
    degenerate = [r for r in sel.table if r["degenerate"]]
    assert degenerate and all(r["degenerate_reason"] for r in degenerate)
    assert any("reg_covar floor" in r["degenerate_reason"] for r in degenerate)
    assert all(not r["degenerate"] and r["degenerate_reason"] is None for r in sel.table if r["n_components"] <= 3)
    assert sel.best_params == {"n_components": 2, "covariance_type": "full"}  # mclust's VVV choice
    assert degenerate_components(sel.best_, FAITHFUL) == []


def test_everything_degenerate_is_a_clear_error():
    x = np.repeat([[0.0, 1.0], [2.0, 3.0], [5.0, 1.0]], 5, axis=0)
    with pytest.raises(ValueError, match="without degenerating.*K=3 spherical: component"):
        emkit.select_mixture(x, n_components=[3, 4], covariance_types="spherical")


def test_degenerate_components_names_each_reason():
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(0, 1, size=(60, 2)), [[8.0, 8.0], [8.5, 8.0]]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gmm = emkit.GaussianMixture(2, weights_init=[0.95, 0.05], means_init=[[0.0, 0.0], [8.2, 8.0]],
                                    covariances_init=[np.eye(2), 0.1 * np.eye(2)]).fit(x)
    reasons = degenerate_components(gmm, x)
    assert len(reasons) == 1 and reasons[0].startswith("component 1: 2 effective points, fewer than D + 1 = 3")
    assert "reg_covar floor" in reasons[0]
    # sample weights count rows: the same rows weighted 2 have 4 effective points, still at the floor
    assert "effective points" not in degenerate_components(gmm, x, sample_weight=np.full(len(x), 2.0))[0]
    with pytest.warns(DegenerateFitWarning, match="GaussianMixture: degenerate fit .component 1"):
        assert warn_if_degenerate(gmm, x) == reasons
    # a sound fit: nothing, and no warning
    good = emkit.GaussianMixture(2, n_init=3, random_state=0).fit(FAITHFUL)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegenerateFitWarning)
        assert warn_if_degenerate(good, FAITHFUL) == []


@pytest.mark.parametrize("covariance_type", ["tied", "diag", "spherical"])
def test_degenerate_covariance_structures(covariance_type):
    x = np.vstack([np.random.default_rng(1).normal(0, 1, size=(80, 2)), [[9.0, 9.0]] * 4])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cov = {"tied": np.eye(2), "diag": np.ones((2, 2)), "spherical": np.ones(2)}[covariance_type]
        gmm = emkit.GaussianMixture(2, covariance_type=covariance_type, weights_init=[0.95, 0.05],
                                    means_init=[[0.0, 0.0], [9.0, 9.0]], covariances_init=cov).fit(x)
    reasons = degenerate_components(gmm, x)
    if covariance_type == "tied":  # the shared covariance holds the spread of the big cluster
        assert reasons == []
    else:
        assert reasons and reasons[0].startswith("component 1: covariance at the reg_covar floor")


def test_degenerate_components_of_family_mixtures():
    normal = emkit.NormalMixture(2, means_init=[0.0, 9.0], covariances_init=[1.0, 1.0]).fit(
        np.r_[np.random.default_rng(2).normal(0, 1, 50), [9.0, 9.0, 9.0]])
    assert degenerate_components(normal, np.r_[np.random.default_rng(2).normal(0, 1, 50), [9.0, 9.0, 9.0]]) == [
        "component 1: covariance at the reg_covar floor (smallest variance 1e-06, reg_covar 1e-06)"]
    counts = np.array([0, 1, 2, 1, 0, 3, 2, 1, 40])
    poisson = emkit.PoissonMixture(2, rates_init=[1.0, 40.0], random_state=0).fit(counts)
    assert degenerate_components(poisson, counts) == []  # one point is enough for a rate
    poisson3 = emkit.PoissonMixture(3, rates_init=[1.0, 2.0, 40.0], weights_init=[0.5, 0.4, 0.1],
                                    fixed=["weights"]).fit(counts)
    assert degenerate_components(poisson3, counts) == []
    assert degenerate_components(emkit.Exponential().fit([1.0, 2.0]), [1.0, 2.0]) == []  # no components
