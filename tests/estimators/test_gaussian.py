"""emkit.GaussianMixture: fixed groups (seed 002's known-variance example), sample weights,
torch / float32, chunking and memory, degenerate data, variants, bad input."""

from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import pytest
from scipy import optimize, stats

import emkit
from emkit.models.covariance import triu_pairs
from emkit.models.gaussian import EmptyComponentWarning, GaussianMixtureModel
from emkit.models.kmeans import kmeans

TYPES = ("full", "tied", "diag", "spherical")
FAITHFUL = emkit.datasets.load_faithful()


def _blobs(n=400, seed=0, d=2):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0] * d, [6.0] + [0.0] * (d - 1), [0.0, 6.0] + [0.0] * (d - 2)])
    labels = rng.integers(0, 3, n)
    return centres[labels] + rng.normal(size=(n, d)) * np.array([1.0, 0.5, 0.8])[labels, None], labels


# ----------------------------------------------------------------------------- seed 002, example 3
def test_known_equal_variance_matches_scipy_maximisation():
    """Two 1-D Gaussians with known equal variance sigma^2 = 1; unknown mu1, mu2 and pi."""
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.normal(-1.0, 1.0, 120), rng.normal(2.0, 1.0, 80)])

    def neg_loglik(theta):
        mu1, mu2, pi = theta
        return -np.sum(np.log(pi * stats.norm.pdf(x, mu1, 1.0) + (1 - pi) * stats.norm.pdf(x, mu2, 1.0)))

    ref = optimize.minimize(neg_loglik, [-0.5, 1.5, 0.5], method="L-BFGS-B",
                            bounds=[(None, None), (None, None), (1e-6, 1 - 1e-6)],
                            options={"ftol": 1e-15, "gtol": 1e-10})
    for cov_type, cov in (("tied", [[1.0]]), ("spherical", [1.0, 1.0])):
        gmm = emkit.GaussianMixture(2, covariance_type=cov_type, covariances_init=cov, fixed=["covariances"],
                                    means_init=[[-0.5], [1.5]], weights_init=[0.5, 0.5], reg_covar=0.0,
                                    tol=1e-14, stop="loglik", max_iter=5000).fit(x[:, None])
        assert gmm.converged_
        np.testing.assert_allclose(gmm.covariances_, np.asarray(cov))  # held fixed
        got = [gmm.means_[0, 0], gmm.means_[1, 0], gmm.weights_[0]]
        np.testing.assert_allclose(got, ref.x, atol=2e-5)
        assert gmm.loglik_ == pytest.approx(-ref.fun, abs=1e-8)
        assert gmm.loglik_ >= -ref.fun - 1e-9  # EM's point is at least as good as the optimiser's
        assert gmm._n_parameters() == 3  # mu1, mu2, pi


def test_fixed_weights_and_means_stay_put():
    x, _ = _blobs()
    means = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
    opts = dict(weights_init=[0.2, 0.3, 0.5], means_init=means, precisions_init=np.repeat(np.eye(2)[None], 3, 0),
                fixed=["weights", "means"], tol=0)
    gmm = emkit.GaussianMixture(3, max_iter=200, check_monotone="raise", **opts).fit(x)
    np.testing.assert_array_equal(gmm.weights_, [0.2, 0.3, 0.5])
    np.testing.assert_array_equal(gmm.means_, means)
    assert gmm._n_parameters() == 3 * 3  # only the three 2x2 covariances are free
    # one iteration: the covariance update is the scatter about the FIXED means (the maximiser of
    # Q when the means cannot move), with responsibilities at the starting parameters
    start = emkit.GaussianMixture(3, max_iter=0, **opts).fit(x)
    one = emkit.GaussianMixture(3, max_iter=1, **opts).fit(x)
    resp = start.predict_proba(x)
    for k in range(3):
        diff = x - means[k]
        expected = (resp[:, k, None] * diff).T @ diff / resp[:, k].sum() + 1e-6 * np.eye(2)
        np.testing.assert_allclose(one.covariances_[k], expected, rtol=1e-10)


def test_fixed_needs_matching_init():
    with pytest.raises(ValueError, match="means_init must be given"):
        emkit.GaussianMixture(2, fixed=["means"]).fit(FAITHFUL)
    with pytest.raises(ValueError, match="unknown parameter group"):
        emkit.GaussianMixture(2, fixed=["precisions"], precisions_init=np.ones(2),
                              covariance_type="spherical").fit(FAITHFUL)


# ----------------------------------------------------------------------------- weights, restarts
@pytest.mark.parametrize("cov_type", TYPES)
def test_integer_sample_weights_equal_repeated_rows(cov_type):
    rng = np.random.default_rng(3)
    w = rng.integers(0, 4, len(FAITHFUL))
    # the same iterates, so compare after a fixed number of iterations
    cov = {"full": [np.eye(2), np.eye(2) * 30], "tied": np.diag([1.0, 30.0]), "diag": [[1.0, 30.0]] * 2,
           "spherical": [10.0, 10.0]}[cov_type]
    opts = dict(covariance_type=cov_type, means_init=[[2.0, 55.0], [4.5, 80.0]], weights_init=[0.4, 0.6],
                covariances_init=np.array(cov, dtype=float), tol=0, max_iter=40)
    weighted = emkit.GaussianMixture(2, **opts).fit(FAITHFUL, sample_weight=w.astype(float))
    repeated = emkit.GaussianMixture(2, **opts).fit(np.repeat(FAITHFUL, w, axis=0))
    assert weighted.loglik_ == pytest.approx(repeated.loglik_, rel=1e-10)
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(weighted, name), getattr(repeated, name), rtol=1e-9, atol=1e-12)


def test_restarts_keep_best_trace_monotone_and_reproducible():
    a = emkit.GaussianMixture(3, n_init=4, random_state=7, init_params="random").fit(FAITHFUL)
    b = emkit.GaussianMixture(3, n_init=4, random_state=7, init_params="random").fit(FAITHFUL)
    np.testing.assert_array_equal(a.means_, b.means_)
    assert a.loglik_ == max(r.loglik for r in a.result_.restarts)
    assert np.all(np.diff(a.loglik_trace_) >= -1e-9 * abs(a.loglik_))
    assert a.lower_bound_ == pytest.approx(a.score(FAITHFUL), rel=1e-12)
    np.testing.assert_allclose(a.lower_bounds_ * len(FAITHFUL), a.loglik_trace_)


@pytest.mark.parametrize("init", ["kmeans", "k-means++", "random", "random_from_data"])
def test_every_init_method_finds_the_three_blobs(init):
    x, labels = _blobs(n=600)
    gmm = emkit.GaussianMixture(3, init_params=init, n_init=3, random_state=0).fit(x)
    pred = gmm.predict(x)
    # the same partition up to relabelling: each true cluster maps to one predicted label
    agree = max(np.mean(pred[labels == k] == np.bincount(pred[labels == k]).argmax()) for k in range(3))
    assert agree > 0.97
    assert len(np.unique(pred)) == 3


def test_own_kmeans_recovers_separated_centres():
    x, labels = _blobs(n=600)
    found = kmeans(x, 3, np.random.default_rng(0))
    for k in range(3):
        assert np.bincount(found[labels == k]).max() / np.sum(labels == k) > 0.97


def test_warm_start_continues_from_previous_fit():
    gmm = emkit.GaussianMixture(2, warm_start=True, random_state=0, tol=1e-8, max_iter=500).fit(FAITHFUL)
    first = gmm.loglik_
    gmm.fit(FAITHFUL)
    assert gmm.n_iter_ <= 2 and gmm.loglik_ == pytest.approx(first, abs=1e-6)


# ----------------------------------------------------------------------------- array libraries
@pytest.mark.parametrize("cov_type", TYPES)
def test_torch_cpu_equals_numpy(cov_type):
    torch = pytest.importorskip("torch")
    pytest.importorskip("array_api_compat")
    opts = dict(covariance_type=cov_type, random_state=0, tol=1e-10, max_iter=300, n_init=2)
    ref = emkit.GaussianMixture(2, **opts).fit(FAITHFUL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        got = emkit.GaussianMixture(2, **opts).fit(torch.from_numpy(FAITHFUL))
        proba = got.predict_proba(torch.from_numpy(FAITHFUL))
    assert isinstance(got.means_, torch.Tensor) and got.means_.dtype == torch.float64
    assert isinstance(proba, torch.Tensor)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_allclose(getattr(got, name).numpy(), getattr(ref, name), rtol=1e-8, atol=1e-10)
    assert got.loglik_ == pytest.approx(ref.loglik_, rel=1e-10)
    np.testing.assert_allclose(proba.numpy(), ref.predict_proba(FAITHFUL), atol=1e-8)


@pytest.mark.parametrize("cov_type", TYPES)
def test_float32_stays_float32_and_agrees_with_float64(cov_type):
    x, _ = _blobs(n=2000, d=3)
    x = x + 1000.0  # far from the origin: centring must keep float32 sound
    init = dict(means_init=np.array([[0, 0, 0], [6, 0, 0], [0, 6, 0]]) + 1000.5, weights_init=[1 / 3] * 3)
    ref = emkit.GaussianMixture(3, covariance_type=cov_type, tol=0, max_iter=30, **init).fit(x)
    got = emkit.GaussianMixture(3, covariance_type=cov_type, tol=0, max_iter=30, **init).fit(x.astype(np.float32))
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        value = getattr(got, name)
        assert value.dtype == np.float32, name
        assert np.all(np.isfinite(value))
    assert got.predict_proba(x.astype(np.float32)).dtype == np.float32
    # float32 rounding of data ~1000 is 6e-5; the fit moves by the same order
    np.testing.assert_allclose(got.means_, ref.means_, atol=2e-3)
    np.testing.assert_allclose(got.covariances_, ref.covariances_, rtol=2e-3, atol=2e-3)
    assert got.loglik_ == pytest.approx(ref.loglik_, rel=1e-5)


@pytest.mark.parametrize("cov_type", TYPES)
def test_chunking_does_not_change_the_fit(cov_type):
    opts = dict(covariance_type=cov_type, random_state=0, tol=0, max_iter=25)
    whole = emkit.GaussianMixture(3, **opts).fit(FAITHFUL)
    chunked = emkit.GaussianMixture(3, chunk_size=37, **opts).fit(FAITHFUL)
    assert chunked.loglik_ == pytest.approx(whole.loglik_, rel=1e-12)
    np.testing.assert_allclose(chunked.covariances_, whole.covariances_, rtol=1e-10)


def test_default_chunks_bound_memory_for_large_data():
    model = GaussianMixtureModel(16, "full")
    x = np.empty((1_000_000, 16))
    rows = model.chunk_rows((x, None))
    t = 16 * 17 // 2
    # a pass's temporaries: (D + T + K, rows) in the data's dtype, the float64 exp workspace
    # and its boolean mask (K, rows), three per-row vectors; shared by the pass's threads
    assert rows * (8 * (16 + t + 16 + 3) + 9 * 16) <= 16 * 2**20
    assert rows >= 4096


def _fit_peak_bytes(x: np.ndarray, k: int) -> int:
    emkit.GaussianMixture(k, max_iter=2, random_state=0).fit(x[:500])  # imports outside the measurement
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        emkit.GaussianMixture(k, max_iter=3, tol=0, random_state=0).fit(x)
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("k", [4, 16])
def test_peak_memory_above_large_data_is_below_a_quarter_of_it(k):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600_000, 16)) + 3.0 * rng.integers(0, 4, (600_000, 1))  # 73 MiB
    assert _fit_peak_bytes(x, k) <= 0.25 * x.nbytes


@pytest.mark.parametrize("k", [4, 16])
def test_peak_memory_above_smaller_data_is_a_quarter_plus_one_chunk_per_thread(k):
    # each thread's chunk is never cut below MIN_TASK_BYTES of temporaries (smaller chunks are
    # slower): a few MiB in all, beside the quarter of the data
    from emkit.execution.threads import usable_threads
    from emkit.models.gaussian import MIN_TASK_BYTES
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120_000, 16)) + 3.0 * rng.integers(0, 4, (120_000, 1))  # 15 MiB
    assert _fit_peak_bytes(x, k) <= 0.25 * x.nbytes + usable_threads() * MIN_TASK_BYTES


# ----------------------------------------------------------------------------- degenerate data
def test_constant_column_and_collapsed_component_give_finite_parameters():
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.normal(size=200), np.full(200, 3.0)])  # second column constant
    x[:5] = [10.0, 3.0]  # five identical rows: a component can collapse onto them
    for cov_type in TYPES:
        gmm = emkit.GaussianMixture(3, covariance_type=cov_type, random_state=0, n_init=3).fit(x)
        for name in ("weights_", "means_", "covariances_", "precisions_"):
            assert np.all(np.isfinite(getattr(gmm, name))), (cov_type, name)
        assert np.isfinite(gmm.loglik_)
    full = emkit.GaussianMixture(3, random_state=0).fit(x)
    # the constant column's variance is exactly reg_covar
    np.testing.assert_allclose(full.covariances_[:, 1, 1], 1e-6, rtol=1e-6)


def test_collapse_without_regularisation_names_the_component():
    x = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [5.0, 1.0], [6.0, 2.0], [7.0, 1.5]])
    # a valid start; the first M-step puts component 0 on the three identical rows
    with pytest.raises(ValueError, match="component 0 is not positive definite.*reg_covar"):
        emkit.GaussianMixture(2, reg_covar=0.0, means_init=[[0, 0], [6, 1.5]], precisions_init=np.array([np.eye(2)] * 2),
                              tol=0, max_iter=3).fit(x)
    with pytest.raises(ValueError, match=r"covariances_init\[1\] \(component 1\) is not positive definite"):
        emkit.GaussianMixture(2, covariances_init=np.array([np.eye(2), np.zeros((2, 2))])).fit(x)
    # k-means puts the three identical rows in one cluster: a singular starting covariance
    with pytest.raises(ValueError, match=r"initial parameters: covariances of component \d is not positive definite"):
        emkit.GaussianMixture(2, reg_covar=0.0, random_state=0).fit(x)


def test_empty_component_keeps_its_parameters_and_warns_by_name():
    x, _ = _blobs(n=300)
    far = [[1e3, 1e3]]
    with pytest.warns(EmptyComponentWarning, match=r"component\(s\) \[2\]"):
        gmm = emkit.GaussianMixture(3, means_init=[[0, 0], [6, 0], far[0]], precisions_init=np.ones(3),
                                    covariance_type="spherical", weights_init=[0.4, 0.4, 0.2],
                                    tol=0, max_iter=3).fit(x)
    np.testing.assert_array_equal(gmm.means_[2], far[0])
    assert gmm.weights_[2] < 1e-12 and np.all(np.isfinite(gmm.covariances_))


# ----------------------------------------------------------------------------- model contract
@pytest.mark.parametrize("cov_type", TYPES)
def test_complete_loglik_is_maximised_by_the_m_step(cov_type):
    gmm = emkit.GaussianMixture(2, covariance_type=cov_type, random_state=0, reg_covar=0.0, max_iter=3,
                                tol=0).fit(FAITHFUL)
    model, params = gmm.model_, gmm.params_
    st, _ = model.e_step((FAITHFUL, None), params)
    best = model.m_step(st, params)
    q_best = model.complete_loglik(st, best)
    assert q_best >= model.complete_loglik(st, params)
    rng = np.random.default_rng(0)
    for _ in range(20):  # random small valid perturbations never increase Q
        pert = {k: v.copy() for k, v in best.items()}
        pert["means"] = pert["means"] + rng.normal(scale=1e-3, size=pert["means"].shape)
        pert["covariances"] = pert["covariances"] * (1 + rng.uniform(-1e-3, 1e-3))
        w = pert["weights"] + rng.normal(scale=1e-3, size=2)
        pert["weights"] = w / w.sum()
        assert model.complete_loglik(st, pert) <= q_best + 1e-9


def test_complete_loglik_of_one_component_is_the_loglik():
    gmm = emkit.GaussianMixture(1, tol=0, max_iter=2).fit(FAITHFUL)
    model = gmm.model_
    st, ll = model.e_step((FAITHFUL, None), gmm.params_)
    assert model.complete_loglik(st, gmm.params_) == pytest.approx(ll, rel=1e-12)
    assert ll == pytest.approx(stats.multivariate_normal(gmm.means_[0], gmm.covariances_[0]).logpdf(FAITHFUL).sum())


def test_stats_from_responsibilities_matches_the_fused_e_step():
    gmm = emkit.GaussianMixture(3, random_state=0, max_iter=5, tol=0).fit(FAITHFUL)
    model = gmm.model_
    fused, _ = model.e_step((FAITHFUL, None), gmm.params_)
    resp = np.asarray(gmm.predict_proba(FAITHFUL))
    # the fused E-step's statistics are about its reference points; stats_from_responsibilities
    # (no parameters) gives them about the centre: the same after shifting there
    sep = model.rebase_stats(model.stats_from_responsibilities((FAITHFUL, None), resp), gmm.params_)
    for key in fused:
        np.testing.assert_allclose(sep[key], fused[key], rtol=1e-10, atol=1e-9)
    rows, cols = triu_pairs(2)
    refs = fused["ref"] / fused["n"][:, None]  # the centre here: no component is far from it
    np.testing.assert_allclose(refs, np.broadcast_to(model.center, refs.shape), rtol=1e-12)
    xm = FAITHFUL[:, None, :] - refs[None, :, :]
    expected = np.einsum("nk,nkd,nke->kde", resp, xm, xm)[:, rows, cols]
    np.testing.assert_allclose(fused["s2"], expected, rtol=1e-10)
    np.testing.assert_allclose(fused["s1"], np.einsum("nk,nkd->kd", resp, xm), rtol=1e-8, atol=1e-9)


def test_sample_moments_and_labels():
    gmm = emkit.GaussianMixture(2, random_state=0).fit(FAITHFUL)
    x, labels = gmm.sample(20000, random_state=1)
    assert x.shape == (20000, 2) and labels.shape == (20000,)
    for k in range(2):
        xs = x[labels == k]
        se = np.sqrt(np.diag(gmm.covariances_[k]) / len(xs))
        assert np.all(np.abs(xs.mean(axis=0) - gmm.means_[k]) < 4.5 * se)
    assert abs(np.mean(labels == 0) - gmm.weights_[0]) < 4.5 * np.sqrt(0.25 / 20000)


def test_n_parameters_per_type():
    model = GaussianMixtureModel(3, "full")
    params = {"means": np.zeros((3, 4))}
    assert model.n_parameters(params) == 2 + 12 + 30
    assert GaussianMixtureModel(3, "tied").n_parameters(params) == 2 + 12 + 10
    assert GaussianMixtureModel(3, "diag").n_parameters(params) == 2 + 12 + 12
    assert GaussianMixtureModel(3, "spherical").n_parameters(params, fixed=("weights",)) == 12 + 3


def test_hard_em_is_classification_em():
    gmm = emkit.GaussianMixture(2, algorithm="hard", random_state=0, max_iter=100, tol=1e-10).fit(FAITHFUL)
    model = gmm.model_
    labels = np.argmax(model.log_joint((FAITHFUL, None), gmm.result_.params_history[-1]
                                       if gmm.result_.params_history else gmm.params_), axis=1)
    # at a fixed point of classification EM each mean is the mean of its own class
    for k in range(2):
        np.testing.assert_allclose(gmm.means_[k], FAITHFUL[labels == k].mean(axis=0), rtol=1e-8)


def test_stochastic_em_lands_near_the_mle():
    mle = emkit.GaussianMixture(2, random_state=0, tol=1e-10, max_iter=500).fit(FAITHFUL)
    sem = emkit.GaussianMixture(2, algorithm="stochastic", random_state=0, max_iter=200).fit(FAITHFUL)
    order = np.argsort(sem.means_[:, 0])
    np.testing.assert_allclose(sem.means_[order], mle.means_[np.argsort(mle.means_[:, 0])], rtol=0.02)


def test_squarem_reaches_the_same_optimum():
    pytest.importorskip("emkit.engine.accelerate")
    init = dict(means_init=[[2.0, 55.0], [4.5, 80.0]], random_state=0)
    plain = emkit.GaussianMixture(2, tol=1e-12, stop="loglik", max_iter=5000, **init).fit(FAITHFUL)
    fast = emkit.GaussianMixture(2, tol=1e-12, stop="loglik", max_iter=5000, accelerate="squarem", **init).fit(FAITHFUL)
    assert fast.loglik_ == pytest.approx(plain.loglik_, abs=1e-7)


def test_verbose_prints_progress(capsys):
    emkit.GaussianMixture(2, verbose=1, verbose_interval=1, random_state=0, max_iter=3, tol=0).fit(FAITHFUL)
    out = capsys.readouterr().out
    assert "Initialization" in out and "Iteration 3" in out


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs, fit_x, match", [
    (dict(covariance_type="bogus"), FAITHFUL, "unknown covariance_type 'bogus'"),
    (dict(init_params="kmeans2"), FAITHFUL, "unknown init_params 'kmeans2'"),
    (dict(n_components=0), FAITHFUL, "n_components must be an integer >= 1"),
    (dict(reg_covar=-1.0), FAITHFUL, "reg_covar must be"),
    (dict(n_components=5, reg_covar=0.0), np.repeat([[1.0, 2.0], [3.0, 4.0]], 10, axis=0), "only 2 distinct row"),
    (dict(n_components=30), FAITHFUL[:10],
     "Expected n_samples >= n_components but got n_components = 30, n_samples = 10"),
    (dict(), np.array([[1.0, np.inf], [2.0, 3.0]]), "X contains inf"),
    (dict(), np.zeros((0, 2)), "empty"),
    (dict(n_components=2, weights_init=[0.7, 0.7]), FAITHFUL,
     r"The parameter 'weights' should be normalized, but got sum\(weights\) = 1.40000"),
    (dict(n_components=2, weights_init=[1.5, -0.5]), FAITHFUL,
     r"The parameter 'weights' should be in the range \[0, 1\]"),
    (dict(n_components=2, means_init=np.zeros((3, 2))), FAITHFUL,
     r"The parameter 'means' should have the shape of \(2, 2\), but got \(3, 2\)"),
    (dict(n_components=2, precisions_init=np.array([np.eye(2), [[1.0, 2.0], [2.0, 1.0]]])), FAITHFUL,
     r"'full precision' should be symmetric, positive-definite: precisions_init\[1\] \(component 1\) is not"),
    (dict(n_components=2, covariance_type="diag", precisions_init=np.array([[1.0, 1.0], [1.0, -1.0]])),
     FAITHFUL, "'diag precision' should be positive: precisions_init must be positive; component 1"),
    (dict(n_components=2, precisions_init=np.ones((2, 3, 3))), FAITHFUL,
     r"The parameter 'full precision' should have the shape of \(2, 2, 2\), but got \(2, 3, 3\)"),
])
def test_bad_settings_and_data_raise_clear_errors(kwargs, fit_x, match):
    with pytest.raises(ValueError, match=match):
        emkit.GaussianMixture(**kwargs).fit(fit_x)


def test_all_nan_rows_are_named():
    x = FAITHFUL[:20].copy()
    x[[3, 7]] = np.nan
    with pytest.raises(ValueError, match=r"rows \[3, 7\]"):
        emkit.GaussianMixture(2).fit(x)


def test_negative_and_zero_sample_weights_rejected():
    with pytest.raises(ValueError, match="non-negative"):
        emkit.GaussianMixture(2).fit(FAITHFUL, sample_weight=-np.ones(len(FAITHFUL)))
    with pytest.raises(ValueError, match="all weights are zero"):
        emkit.GaussianMixture(2).fit(FAITHFUL, sample_weight=np.zeros(len(FAITHFUL)))
    with pytest.raises(ValueError, match="has 3 entries but the data has 272 rows"):
        emkit.GaussianMixture(2).fit(FAITHFUL, sample_weight=np.ones(3))


def test_predict_time_input_checks():
    gmm = emkit.GaussianMixture(2, random_state=0).fit(FAITHFUL)
    with pytest.raises(ValueError, match="X has 3 features, but GaussianMixture is expecting 2"):
        gmm.predict(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="Reshape your data"):
        gmm.predict(np.zeros(4))
    with pytest.raises(ValueError, match="inf"):
        gmm.score_samples(np.array([[np.inf, 1.0]]))
    with pytest.raises(ValueError, match="not fitted"):
        emkit.GaussianMixture(2).predict(FAITHFUL)


def test_float32_tight_components_far_from_the_centre_use_the_stable_form():
    """Components with standard deviation 1e-3 at +-1: |m - center|^2 in the components' metric
    is ~1e6, so the expanded quadratic form would lose ~0.1 in float32; the whitened form is used
    and float32 log-densities agree with float64 at the same parameters."""
    from emkit.models import gaussian_kernels as kern
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-1.0, 1e-3, (300, 2)), rng.normal(1.0, 1e-3, (300, 2))])
    gmm = emkit.GaussianMixture(2, means_init=[[-1, -1], [1, 1]], random_state=0, reg_covar=1e-9).fit(x)
    params32 = {k: v.astype(np.float32) for k, v in gmm.params_.items()}
    prep32 = kern.prepare(params32, "full", gmm.model_.center, lambda a: np.asarray(a, np.float32), eps=1.2e-7)
    prep64 = kern.prepare(gmm.params_, "full", gmm.model_.center, np.asarray)
    assert not prep32.expanded and prep64.expanded
    got = gmm.model_.log_joint((x.astype(np.float32), None), params32)
    ref = gmm.model_.log_joint((x, None), gmm.params_)
    assert got.dtype == np.float32
    # log-densities ~ +11 here: the whitened float32 form is within ~5e-4 of float64 (float32
    # rounding of x ~ 1 is 6e-8, i.e. 6e-5 standard deviations); the expanded form is off by ~0.4
    best = np.argmax(ref, axis=1)
    np.testing.assert_allclose(got[np.arange(len(x)), best], ref[np.arange(len(x)), best], atol=2e-3)
    forced_model = GaussianMixtureModel(2, "full", center=gmm.model_.center)
    monkey = pytest.MonkeyPatch()
    monkey.setattr(kern, "EXPANDED_MAX_ERROR", np.inf)
    try:
        expanded = forced_model.log_joint((x.astype(np.float32), None), params32)
    finally:
        monkey.undo()
    assert np.max(np.abs(expanded[np.arange(len(x)), best] - ref[np.arange(len(x)), best])) > 0.05


def test_dask_array_input_gives_the_numpy_fit():
    da = pytest.importorskip("dask.array")
    opts = dict(tol=0, max_iter=10, means_init=[[2, 55], [4.5, 80]], weights_init=[0.5, 0.5],
                precisions_init=np.array([np.eye(2)] * 2))
    ref = emkit.GaussianMixture(2, **opts).fit(FAITHFUL)
    got = emkit.GaussianMixture(2, **opts).fit(da.from_array(FAITHFUL, chunks=50))
    assert got.loglik_ == pytest.approx(ref.loglik_, rel=1e-12)
    np.testing.assert_allclose(np.asarray(got.means_), ref.means_, rtol=1e-12)


# ----------------------------------------------------------------------------- scikit-learn's face
def test_not_fitted_error_is_emkits_and_scikit_learns():
    from emkit.estimators.base import NotFittedError
    sklearn_exceptions = pytest.importorskip("sklearn.exceptions")
    message = ("This GaussianMixture instance is not fitted yet. Call 'fit' with appropriate arguments before "
               "using this estimator.")
    for method in ("predict", "score_samples", "sample"):
        with pytest.raises(NotFittedError) as info:
            getattr(emkit.GaussianMixture(), method)(FAITHFUL if method != "sample" else 1)
        assert str(info.value) == message
        assert isinstance(info.value, sklearn_exceptions.NotFittedError)
        assert isinstance(info.value, ValueError) and isinstance(info.value, AttributeError)


def test_convergence_warning_is_emkits_and_scikit_learns():
    sklearn_exceptions = pytest.importorskip("sklearn.exceptions")
    g = emkit.GaussianMixture(2, max_iter=2, tol=1e-12, random_state=0)
    with pytest.warns(emkit.ConvergenceWarning, match="Best performing initialization did not converge") as seen:
        g.fit(FAITHFUL)
    assert any(isinstance(w.message, sklearn_exceptions.ConvergenceWarning) for w in seen)
    counts = np.arange(40.0) % 7
    with pytest.warns(sklearn_exceptions.ConvergenceWarning, match="PoissonMixture: EM did not meet"):
        emkit.PoissonMixture(2, max_iter=1, tol=1e-12, random_state=0).fit(counts)  # every estimator
    # scikit-learn's filter silences it (GridSearchCV, pytest marks, warnings.filterwarnings)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", sklearn_exceptions.ConvergenceWarning)
        g.fit(FAITHFUL)
        emkit.PoissonMixture(2, max_iter=1, tol=1e-12, random_state=0).fit(counts)
    assert not [w for w in caught if issubclass(w.category, emkit.ConvergenceWarning)]


def test_scikit_learns_messages_for_sample_and_small_data():
    g = emkit.GaussianMixture(2, random_state=0).fit(FAITHFUL)
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="Invalid value for 'n_samples'"):
            g.sample(bad)
    with pytest.raises(ValueError, match="Expected n_samples >= n_components but got n_components = 5, "
                                         "n_samples = 3"):
        emkit.GaussianMixture(5).fit(FAITHFUL[:3])


def test_sample_on_torch_returns_torch_samples_and_labels():
    torch = pytest.importorskip("torch")
    g = emkit.GaussianMixture(2, random_state=0).fit(torch.asarray(FAITHFUL.copy()))
    x, labels = g.sample(50)
    assert isinstance(x, torch.Tensor) and isinstance(labels, torch.Tensor)
    assert x.shape == (50, 2) and labels.shape == (50,) and labels.dtype == torch.int64
    assert x.device == labels.device
    ref_x, ref_labels = emkit.GaussianMixture(2, random_state=0).fit(FAITHFUL).sample(50)
    np.testing.assert_array_equal(labels.numpy(), ref_labels)
