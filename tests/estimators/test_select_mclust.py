"""Model selection as R mclust does it (issue 15, item 4): the fourteen forms x G = 1..9 on Old
Faithful from mclust's hierarchical start, against mclust 6.0's own numbers
(``tests/data/mclust_select.json``, made by ``benchmarks/mclust_reference_select.R``), and the
bootstrap likelihood-ratio test against ``mclustBootstrapLRT``.

mclust stops EM at a relative change of 1e-5 (its default); emkit runs to its tight default,
so each cell's log-likelihood is mclust's or higher, never lower by more than mclust's own
stopping error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import emkit
from emkit.datasets import load_faithful
from emkit.estimators.lrt import bootstrap_lrt
from emkit.estimators.selection import MixtureSelection, select_mixture
from emkit.models.covariance_mclust import MCLUST_NAMES

REFERENCE = json.loads((Path(__file__).resolve().parents[1] / "data" / "mclust_select.json").read_text())
TIGHT = json.loads((Path(__file__).resolve().parents[1] / "data" / "mclust_reference.json").read_text())
#: how far mclust's default stopping (relative change 1e-5) leaves its log-likelihood short of
#: the maximum it is climbing to, at most, on these data
MCLUST_STOPPING_ERROR = 0.05


@pytest.fixture(scope="module")
def faithful() -> np.ndarray:
    return load_faithful()


@pytest.fixture(scope="module")
def selection(faithful) -> MixtureSelection:
    return select_mixture(faithful, range(1, 10), covariance_types="mclust")


def _reference(name: str) -> np.ndarray:
    """mclust's table by model (rows G = 1..9, columns mclust's order), NaN where mclust fitted nothing."""
    return np.array([[np.nan if v is None else float(v) for v in REFERENCE[name][m]] for m in REFERENCE["models"]]).T


def test_the_grid_is_mclusts_fourteen_forms_by_nine(selection):
    ks, types, bic = selection.criterion_table(mclust_sign=True)
    assert ks == list(range(1, 10))
    assert types == list(MCLUST_NAMES) == REFERENCE["models"]
    assert bic.shape == (9, 14)
    assert np.isfinite(bic).all(), "every cell is fitted, as in mclust's table"


def test_every_cell_reaches_mclusts_loglik_or_higher(selection):
    ks, types, _ = selection.criterion_table()
    ours = np.full((9, 14), np.nan)
    for r in selection.table:
        ours[ks.index(r["n_components"]), types.index(r["covariance_type"])] = r["loglik"]
    theirs = _reference("loglik")
    assert (ours >= theirs - MCLUST_STOPPING_ERROR).all()
    # and the same parameter counts as nMclustParams
    n_params = {(r["n_components"], r["covariance_type"]): r["n_parameters"] for r in selection.table}
    assert all(n_params[(g, m)] == REFERENCE["n_params"][m][g - 1] for g in ks for m in types)


def test_the_winner_is_eee_3_with_mclusts_tight_loglik(selection):
    assert selection.best_params == {"n_components": 3, "covariance_type": "EEE"}
    assert selection.best_.covariance_type == "EEE"
    assert selection.best_.loglik_ == pytest.approx(TIGHT["fits"]["EEE,3"]["loglik"], abs=1e-6)
    top = selection.top(3)
    assert [(r["covariance_type"], r["n_components"]) for r in top][0] == ("EEE", 3)
    # mclust's top three are EEE,3 VVE,2 VEE,3; emkit's second is EEE,4 because EM from the same
    # hierarchical start, run to convergence, climbs far above where mclust stops (its 1e-5 rule)
    mclust_top = [(t["model"], t["G"]) for t in REFERENCE["top3"]]
    assert mclust_top == [("EEE", 3), ("VVE", 2), ("VEE", 3)]
    ours = [(r["covariance_type"], r["n_components"]) for r in top]
    assert ours == [("EEE", 3), ("EEE", 4), ("VVE", 2)]
    eee4 = next(r for r in selection.table if (r["covariance_type"], r["n_components"]) == ("EEE", 4))
    assert eee4["loglik"] > REFERENCE["loglik"]["EEE"][3] + 5.0
    assert -eee4["bic"] > REFERENCE["bic"]["VVE"][1]  # so it passes mclust's second place
    # where the log-likelihoods agree, so do the BICs (mclust's sign is the negative)
    vve2 = next(r for r in selection.table if (r["covariance_type"], r["n_components"]) == ("VVE", 2))
    assert -vve2["bic"] == pytest.approx(REFERENCE["bic"]["VVE"][1] + 2 * (vve2["loglik"] - REFERENCE["loglik"]["VVE"][1]),
                                         abs=1e-6)


def test_icl_is_mclusts_where_the_fits_agree(selection):
    ks, types, icl = selection.criterion_table("icl", mclust_sign=True)
    ours = np.full((9, 14), np.nan)
    for r in selection.table:
        ours[ks.index(r["n_components"]), types.index(r["covariance_type"])] = r["loglik"]
    _, _, bic = selection.criterion_table("bic", mclust_sign=True)
    same_fit = np.abs(ours - _reference("loglik")) < 1e-2
    assert same_fit.sum() >= 26
    # the classification cost, ICL - BIC, is mclust's (the hard MAP classification)
    cost, mclust_cost = (bic - icl)[same_fit], (_reference("bic") - _reference("icl"))[same_fit]
    assert cost.max() > 10
    np.testing.assert_allclose(cost, mclust_cost, rtol=0.02, atol=0.05)


def test_uncertainty_and_classification_are_mclusts(selection):
    ref = REFERENCE["EEE_3"]
    np.testing.assert_allclose(selection.uncertainty_, ref["uncertainty_estep"], atol=1e-3)
    # mclust numbers its components in its own order: compare the partitions
    ours, theirs = selection.classification_, np.asarray(ref["classification"])
    pairs = {(int(a), int(b)) for a, b in zip(ours, theirs)}
    assert len(pairs) == 3
    assert selection.uncertainty_.shape == (272,) and (selection.uncertainty_ >= 0).all()


def test_summary_prints_mclusts_layout(selection):
    text = selection.summary()
    assert "Top 3 models based on the BIC criterion" in text
    assert "EEE,3" in text and "-2314.296" in text
    assert text.count("EII") == 1 and text.count("VVV") == 1


def test_bic_plot_draws_all_fourteen_forms(selection):
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    ax = emkit.plot.bic(selection, mclust_sign=True, criteria=("bic",))
    labels = [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")]
    assert len(labels) == 14
    assert "higher is better" in ax.get_ylabel()
    ax2 = emkit.plot.uncertainty(selection.best_, load_faithful())
    assert ax2.collections


def test_unknown_grid_name_is_refused(faithful):
    with pytest.raises(ValueError, match="unknown covariance_type 'mclus'"):
        select_mixture(faithful, [1], covariance_types="mclus")


# --------------------------------------------------------------------------- bootstrap LRT
def test_bootstrap_lrt_matches_mclust(faithful):
    ref = REFERENCE["bootstrap_lrt"]
    result = bootstrap_lrt(faithful, "VVV", max_components=4, n_bootstrap=39, random_state=7)
    np.testing.assert_array_equal(result.n_components, [1, 2, 3, 4])
    # the observed statistics: 2 (loglik_{G+1} - loglik_G) of fits from mclust's start and tolerance
    np.testing.assert_allclose(result.statistic, ref["obs"], atol=0.01)
    np.testing.assert_allclose(result.loglik, ref["loglik"], atol=0.005)
    # the decisions at 5 %: 1 vs 2 and 3 vs 4 reject, 2 vs 3 and 4 vs 5 do not (mclust, 199 draws:
    # p = 0.005, 0.505, 0.010, 0.415); with 39 draws the smallest p-value is 1/40
    assert result.p_value[0] == pytest.approx(1 / 40)
    assert result.p_value[1] > 0.2 and result.p_value[3] > 0.15
    assert result.p_value[2] <= 0.05
    assert result.bootstrap.shape == (39, 4)
    assert "1 vs 2" in result.summary()


def test_bootstrap_lrt_is_seeded_and_stops_sequentially(faithful):
    seen = []
    a = bootstrap_lrt(faithful, "VVV", n_bootstrap=19, random_state=3, progress=lambda d, t: seen.append(d))
    b = bootstrap_lrt(faithful, "VVV", n_bootstrap=19, random_state=3, client=None)
    np.testing.assert_array_equal(a.bootstrap, b.bootstrap)
    # without max_components it stops at the first G that is not rejected: 2 vs 3 here
    np.testing.assert_array_equal(a.n_components, [1, 2])
    assert a.selected_n_components == 2
    assert seen == list(range(1, 39))


def test_bootstrap_lrt_on_a_dask_cluster_gives_the_same_statistics(faithful):
    distributed = pytest.importorskip("distributed")
    local = bootstrap_lrt(faithful, "VVI", max_components=1, n_bootstrap=6, random_state=5, client=None)
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as client:
        remote = bootstrap_lrt(faithful, "VVI", max_components=1, n_bootstrap=6, random_state=5, client=client)
    np.testing.assert_allclose(remote.bootstrap, local.bootstrap, rtol=0, atol=1e-9)


@pytest.mark.parametrize("kwargs, match", [
    ({"covariance_type": "VVX"}, "unknown covariance_type"),
    ({"n_bootstrap": 0}, "n_bootstrap"),
    ({"level": 1.5}, "level"),
    ({"max_components": 0}, "max_components"),
])
def test_bootstrap_lrt_refuses_bad_arguments(faithful, kwargs, match):
    with pytest.raises(ValueError, match=match):
        bootstrap_lrt(faithful, **kwargs)


def test_worker_processes_give_the_same_table_and_winner(faithful, selection):
    """n_jobs=2 fits the grid points on two forked workers: every record, the winner and its
    fitted parameters are those of the serial search, to the bit."""
    parallel = select_mixture(faithful, range(1, 10), covariance_types="mclust", n_jobs=2)
    assert [(r["covariance_type"], r["n_components"]) for r in parallel.table] == \
        [(r["covariance_type"], r["n_components"]) for r in selection.table]
    same = lambda a, b: a == b or (isinstance(a, float) and np.isnan(a) and np.isnan(b))  # noqa: E731
    for mine, theirs in zip(parallel.table, selection.table):
        assert mine.keys() == theirs.keys()
        assert all(same(mine[key], theirs[key]) for key in mine), (mine, theirs)
    assert parallel.best_params == selection.best_params == {"n_components": 3, "covariance_type": "EEE"}
    for name, value in selection.best_.params_.items():
        np.testing.assert_array_equal(parallel.best_.params_[name], value)
    np.testing.assert_array_equal(parallel.uncertainty_, selection.uncertainty_)
