"""Pictures render headlessly to real, non-blank PNG / GIF files of the expected size."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
from scipy.stats import multivariate_normal

pytest.importorskip("matplotlib")
PIL = pytest.importorskip("PIL.Image")

import emkit
from emkit import plot
from emkit.models.base import DiscreteLatentModel


class _FullGaussianMixture(DiscreteLatentModel):
    """A 2-component full-covariance Gaussian mixture, written here so the tests stand alone."""

    param_spec = {"weights": emkit.Simplex(), "means": emkit.Real(),
                  "covariances": emkit.SymmetricPositiveDefinite()}

    def initialize(self, data, rng):
        x = data[0]
        rows = rng.choice(len(x), 2, replace=False)
        return {"weights": np.full(2, 0.5), "means": x[rows].copy(), "covariances": np.stack([np.cov(x.T)] * 2)}

    def log_joint(self, data, params):
        x = data[0]
        return np.stack([np.log(w) + multivariate_normal(m, c).logpdf(x)
                         for w, m, c in zip(params["weights"], params["means"], params["covariances"])], axis=1)

    def stats_from_responsibilities(self, data, resp):
        x = data[0]
        return {"n": resp.sum(0), "sx": resp.T @ x, "sxx": np.einsum("nk,ni,nj->kij", resp, x, x)}

    def m_step(self, stats, params):
        n = stats["n"]
        means = stats["sx"] / n[:, None]
        covs = stats["sxx"] / n[:, None, None] - np.einsum("ki,kj->kij", means, means)
        return {"weights": n / n.sum(), "means": means, "covariances": covs + 1e-6 * np.eye(2)}


FAITHFUL = emkit.datasets.load_faithful()


@pytest.fixture(scope="module")
def gmm_fit():
    return emkit.em(_FullGaussianMixture(), (FAITHFUL,), n_init=3, random_state=0, keep_history=True, tol=1e-6)


def _check_png(path, size):
    img = PIL.open(path)
    img.load()
    assert img.format == "PNG"
    assert img.size == size
    pixels = np.asarray(img.convert("RGB"), dtype=float)
    assert pixels.var() > 100.0                       # not a blank canvas
    distinct = np.unique(pixels.reshape(-1, 3), axis=0)
    assert len(distinct) > 20                          # lines, points, text in several colours
    return pixels


def test_fixture_reaches_the_published_faithful_fit(gmm_fit):
    # two-component full GMM on Old Faithful: log-likelihood -1130.264 (mclust, VVV, G=2)
    assert gmm_fit.loglik == pytest.approx(-1130.264, abs=1e-2)
    assert np.all(np.diff(gmm_fit.loglik_trace) > -1e-9)


def test_trace_png(gmm_fit, tmp_path):
    ax = plot.trace(gmm_fit)
    lines = ax.get_lines()
    # one line per restart; the bold one is the best restart's trace, point for point
    assert len(lines) == 3
    np.testing.assert_array_equal(lines[-1].get_ydata(), gmm_fit.loglik_trace)
    ax.figure.savefig(tmp_path / "trace.png")
    _check_png(tmp_path / "trace.png", (600, 400))


def test_trace_of_estimator_like_object(gmm_fit, tmp_path):
    class Fitted:  # what an estimator exposes: result_
        result_ = gmm_fit

    ax = plot.trace(Fitted())
    assert ax.get_xlabel() == "iteration"
    with pytest.raises(ValueError, match="EMResult or a fitted emkit estimator"):
        plot.trace(object())


def test_snapshots_png(gmm_fit, tmp_path):
    fig = plot.snapshots(FAITHFUL, gmm_fit, iterations=(0, 1, 3, 5, 10, 1000))
    axes = [a for a in fig.axes if a.get_visible()]
    assert len(axes) == 6
    assert axes[0].get_title() == "start"
    assert axes[-1].get_title() == f"iteration 1000 (converged at {gmm_fit.n_iter})"
    # two components x (1 sd and 2 sd) ellipses per panel
    assert all(len(a.patches) == 4 for a in axes)
    fig.savefig(tmp_path / "snap.png")
    pixels = _check_png(tmp_path / "snap.png", (1020, 600))
    assert pixels.shape == (600, 1020, 3)


def test_snapshots_accept_every_covariance_type(gmm_fit):
    final = gmm_fit.params
    k, d = final["means"].shape
    full = final["covariances"]
    diag = np.stack([np.diag(c) for c in full])
    for cov, cov_type, expected in [
        (full, "full", full),
        (full[0], "tied", np.stack([full[0], full[0]])),
        (diag, "diag", np.stack([np.diag(v) for v in diag])),
        (np.array([1.0, 4.0]), "spherical", np.stack([np.eye(2), 4 * np.eye(2)])),
    ]:
        np.testing.assert_array_equal(plot.full_covariances(cov, k, d, cov_type), expected)
        history = [{"weights": final["weights"], "means": final["means"], "covariances": cov}]
        fig = plot.snapshots(FAITHFUL, history, iterations=(0,), covariance_type=cov_type)
        assert len(fig.axes[0].patches) == 4
    with pytest.raises(ValueError, match="spherical covariances must have shape"):
        plot.full_covariances(full, k, d, "spherical")
    with pytest.raises(ValueError, match="unknown covariance_type"):
        plot.full_covariances(full, k, d, "banana")


def test_snapshots_bad_input(gmm_fit):
    with pytest.raises(ValueError, match="at least 2 columns"):
        plot.snapshots(FAITHFUL[:, 0], gmm_fit)
    with pytest.raises(ValueError, match="non-negative"):
        plot.snapshots(FAITHFUL, gmm_fit, iterations=(-1,))
    with pytest.raises(ValueError, match="keep_history=True"):
        plot.snapshots(FAITHFUL, object())
    with pytest.raises(ValueError, match="lacks"):
        plot.snapshots(FAITHFUL, [{"p": np.array(0.5)}], iterations=(0,))


def test_responsibility_colours_match_scipy(gmm_fit):
    p = gmm_fit.params
    resp = plot._gaussian_responsibilities(FAITHFUL, p["weights"], p["means"], p["covariances"])
    joint = np.stack([w * multivariate_normal(m, c).pdf(FAITHFUL)
                      for w, m, c in zip(p["weights"], p["means"], p["covariances"])], axis=1)
    np.testing.assert_allclose(resp, joint / joint.sum(1, keepdims=True), rtol=1e-10, atol=1e-14)


def test_animated_gif(gmm_fit, tmp_path):
    path = plot.animate(FAITHFUL, gmm_fit, tmp_path / "em.gif", iterations=(0, 2, 5), figsize=(3, 3))
    img = PIL.open(path)
    assert img.format == "GIF" and img.n_frames == 3 and img.size == (300, 300)
    frames = []
    for i in range(3):
        img.seek(i)
        frames.append(np.asarray(img.convert("RGB"), dtype=float))
    assert frames[0].var() > 100 and np.abs(frames[0] - frames[2]).sum() > 0  # the fit moves


TABLE = [
    {"n_components": 1, "covariance_type": "full", "bic": 2322.2, "icl": 2322.2},
    {"n_components": 2, "covariance_type": "full", "bic": 2314.4, "icl": 2320.1},
    {"n_components": 3, "covariance_type": "full", "bic": 2330.9, "icl": 2360.0},
    {"n_components": 1, "covariance_type": "diag", "bic": 2740.1, "icl": 2740.1},
    {"n_components": 2, "covariance_type": "diag", "bic": 2360.2, "icl": 2365.0},
    {"n_components": 3, "covariance_type": "diag", "bic": 2338.0, "icl": 2380.0},
]


def test_bic_png(tmp_path):
    ax = plot.bic(TABLE)
    assert len([l for l in ax.get_lines() if l.get_marker() != "*"]) == 4  # BIC, ICL x 2 types
    assert "best BIC: K=2 full" in [t.get_text() for t in ax.texts]
    ax.figure.savefig(tmp_path / "bic.png")
    _check_png(tmp_path / "bic.png", (600, 400))
    columns = {key: [r[key] for r in TABLE] for key in TABLE[0]}
    assert "best ICL: K=2 full" in [t.get_text() for t in plot.bic(columns).texts]
    with pytest.raises(ValueError, match="no 'icl' column"):
        plot.bic([{"n_components": 1, "bic": 3.0}])
    with pytest.raises(ValueError, match="empty"):
        plot.bic([])


class _FakeCoins:
    """predict_proba of the two-coin example at the published fit (0.80, 0.52)."""

    def predict_proba(self, X, trials):
        from scipy.stats import binom
        like = np.stack([binom.pmf(X, trials, 0.80), binom.pmf(X, trials, 0.52)], axis=1)
        return like / like.sum(1, keepdims=True)


def test_posterior_bars_and_lines(tmp_path):
    heads = np.array([5, 9, 8, 4, 7])
    ax = plot.posterior(_FakeCoins(), heads, trials=10, labels=["coin A", "coin B"])
    assert len(ax.patches) == 10  # 5 rows x 2 stacked bars
    widths = np.array([p.get_width() for p in ax.patches]).reshape(2, 5)
    np.testing.assert_allclose(widths.sum(0), 1.0)
    assert ax.get_yticklabels()[1].get_text() == "row 2: 9/10"
    ax.figure.savefig(tmp_path / "coins.png")
    _check_png(tmp_path / "coins.png", (600, 400))
    x = np.repeat(np.arange(11.0), 3)  # 33 rows: drawn as lines
    ax = plot.posterior(_FakeCoins(), x, trials=10)
    assert len(ax.get_lines()) == 2
    with pytest.raises(ValueError, match="unknown kind"):
        plot.posterior(_FakeCoins(), heads, kind="pie", trials=10)


def test_plot_does_not_import_pyplot():
    import subprocess
    code = ("import numpy as np, emkit.plot as p, sys; "
            "p.trace(type('R', (), {'result_': None})) if False else None; "
            "ax = p.bic([{'n_components': 1, 'bic': 1.0, 'icl': 1.0}]); "
            "print('matplotlib.pyplot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


@pytest.mark.skipif(importlib.util.find_spec("emkit.models.gaussian") is None
                    or importlib.util.find_spec("emkit.models.mixture") is None,
                    reason="GaussianMixture / BinomialMixture not written yet")
def test_write_demo_pictures(tmp_path):
    from emkit.demo import write_demo_pictures
    paths = write_demo_pictures(tmp_path / "demo")
    assert sorted(p.name for p in paths) == ["coins_posterior.png", "coins_trace.png", "faithful_bic.png",
                                             "faithful_snapshots.png", "faithful_trace.png"]
    for p in paths:
        img = PIL.open(p)
        assert img.format == "PNG" and np.asarray(img.convert("RGB"), dtype=float).var() > 100


def _gaussian_mixture():
    try:
        return emkit.GaussianMixture
    except (ImportError, AttributeError):
        pytest.skip("GaussianMixture not written yet")


def test_snapshots_refit_a_copy_of_an_estimator_without_history():
    gm = _gaussian_mixture()(2, covariance_type="spherical", random_state=0).fit(FAITHFUL)
    before = (gm.n_iter_, gm.get_params()["keep_history"], gm.loglik_)
    fig = plot.snapshots(FAITHFUL, gm, iterations=(0, 2, 400))
    assert (gm.n_iter_, gm.get_params()["keep_history"], gm.loglik_) == before  # untouched
    # spherical covariances (K,) were expanded to circles: equal ellipse axes in every panel
    for ax in fig.axes[:3]:
        assert len(ax.patches) == 4
        assert all(p.width == pytest.approx(p.height) for p in ax.patches)
    # the refit copy starts where the estimator started: same seed, same first panel
    start = gm.result_.restarts[0].init_params
    centres = sorted(tuple(np.round(p.center, 9)) for p in fig.axes[0].patches[::2])
    assert centres == sorted(tuple(np.round(m, 9)) for m in np.asarray(start["means"]))


def test_posterior_of_a_fitted_binomial_mixture():
    try:
        mixture = emkit.BinomialMixture
    except (ImportError, AttributeError):
        pytest.skip("BinomialMixture not written yet")
    coins = emkit.datasets.load_two_coins()
    fit = mixture(2, probs_init=[0.6, 0.5], weights_init=[0.5, 0.5], fixed=["weights"]).fit(
        coins["heads"], trials=coins["tosses"])
    ax = plot.posterior(fit, coins["heads"], trials=coins["tosses"])
    widths = np.array([p.get_width() for p in ax.patches]).reshape(2, 5).T
    np.testing.assert_allclose(widths, fit.predict_proba(coins["heads"], trials=coins["tosses"]))
    # Do & Batzoglou's converged fit: run 2 (9 heads) is almost surely coin A (0.80)
    assert widths[1, 0] > 0.9
    ax = plot.trace(fit)
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), fit.loglik_trace_)
