"""Exact and stable Gaussian M-steps (issue 12, item 1): statistics about each component's
current mean, so a component far from the data centre, a one-point component and float32 data
get the right variances."""

import warnings

import numpy as np
import pytest

import emkit
from emkit.models import gaussian_kernels as kern
from emkit.models.gaussian import GaussianMixtureModel

TYPES = ("full", "tied", "diag", "spherical")


def _far_data(offset=1e9):
    r = np.random.default_rng(2)
    return np.vstack([r.normal(size=(100, 1)), [[offset]], [[offset]], [[offset + 1]]])


def test_far_cluster_variance_is_exact():
    """The issue's reproducer: 170.67 with sums about one centre; 2/9 (+ reg_covar) exactly."""
    gmm = emkit.GaussianMixture(2, random_state=2).fit(_far_data())
    far = int(np.argmax(gmm.means_[:, 0]))
    assert gmm.means_[far, 0] == pytest.approx(1e9 + 1 / 3, rel=1e-15)
    np.testing.assert_allclose(gmm.covariances_[far].ravel(), [2 / 9 + 1e-6], rtol=1e-6)
    near = 1 - far
    x = _far_data()[:100, 0]
    assert gmm.covariances_[near, 0, 0] == pytest.approx(x.var() + 1e-6, rel=1e-6)


def _two_clusters(offset, rng, d=2):
    a = rng.normal(size=(200, d))
    b = offset + rng.normal(scale=0.5, size=(60, d)) * np.linspace(1, 2, d)
    return np.vstack([a, b]), np.r_[np.zeros(200, int), np.ones(60, int)]


def _two_pass(x, labels, w=None):
    """Exact weighted means and covariances of the labelled clusters (two passes)."""
    w = np.ones(len(x)) if w is None else w
    means, covs = [], []
    for k in range(2):
        xs, ws = x[labels == k], w[labels == k]
        m = ws @ xs / ws.sum()
        c = (xs - m).T @ ((xs - m) * ws[:, None]) / ws.sum()
        means.append(m)
        covs.append(c)
    return np.array(means), np.array(covs)


def _expected_cov(covs, weights, covariance_type, reg):
    d = covs.shape[1]
    if covariance_type == "full":
        return covs + reg * np.eye(d)
    if covariance_type == "tied":
        return np.einsum("k,kde->de", weights, covs) + reg * np.eye(d)
    if covariance_type == "diag":
        return np.diagonal(covs, axis1=1, axis2=2) + reg
    return np.diagonal(covs, axis1=1, axis2=2).mean(axis=1) + reg


@pytest.mark.parametrize("covariance_type", TYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_far_component_exact_for_every_covariance_type(covariance_type, weighted):
    rng = np.random.default_rng(5)
    x, labels = _two_clusters(1e9, rng)
    w = rng.uniform(0.5, 2.0, len(x)) if weighted else None
    gmm = emkit.GaussianMixture(2, covariance_type=covariance_type, random_state=0, tol=1e-12,
                                max_iter=50).fit(x, sample_weight=w)
    order = np.argsort(gmm.means_[:, 0])
    means, covs = _two_pass(x, labels, w)
    wk = np.array([(w if w is not None else np.ones(len(x)))[labels == k].sum() for k in range(2)])
    expected = _expected_cov(covs, wk / wk.sum(), covariance_type, 1e-6)
    got = gmm.covariances_ if covariance_type == "tied" else gmm.covariances_[order]
    np.testing.assert_allclose(gmm.means_[order], means, rtol=1e-14, atol=1e-12)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_far_component_with_missing_values(covariance_type):
    rng = np.random.default_rng(7)
    x, labels = _two_clusters(1e8, rng)
    complete = emkit.GaussianMixture(2, covariance_type=covariance_type, random_state=0, tol=1e-12,
                                     max_iter=50).fit(x)
    holes = x.copy()
    holes[::17, 1] = np.nan
    gmm = emkit.GaussianMixture(2, covariance_type=covariance_type, random_state=0, tol=1e-12,
                                max_iter=100).fit(holes)
    o1, o2 = np.argsort(complete.means_[:, 0]), np.argsort(gmm.means_[:, 0])
    # the far cluster's variances are of order 0.25..1, not 1e16 * eps
    c1 = complete.covariances_ if covariance_type == "tied" else complete.covariances_[o1]
    c2 = gmm.covariances_ if covariance_type == "tied" else gmm.covariances_[o2]
    np.testing.assert_allclose(c2, c1, rtol=0.3, atol=0.05)
    np.testing.assert_allclose(gmm.means_[o2], complete.means_[o1], rtol=1e-9, atol=0.3)


def test_fixed_means_scatter_about_the_fixed_means_far_away():
    rng = np.random.default_rng(3)
    x, labels = _two_clusters(1e9, rng)
    means, _ = _two_pass(x, labels)
    fixed_means = means + np.array([[0.1, -0.1], [0.25, 0.0]])
    gmm = emkit.GaussianMixture(2, means_init=fixed_means, fixed=["means"], random_state=0, tol=1e-12,
                                max_iter=20).fit(x)
    np.testing.assert_array_equal(gmm.means_, fixed_means)
    for k in range(2):
        xs = x[labels == k] - fixed_means[k]
        np.testing.assert_allclose(gmm.covariances_[k], xs.T @ xs / len(xs) + 1e-6 * np.eye(2), rtol=1e-6)


def test_one_point_component_is_zero_variance_not_negative():
    """A one-point component's variance is 0 up to rounding: clipped to 0 before reg_covar;
    with reg_covar = 0 the fit is degenerate and the error says so (scikit-learn 1.9.1 happens
    to fit here, with a variance of 5e-14 that is rounding noise)."""
    x = [[0.0], [0.1], [0.2], [5.0]]
    kw = dict(covariance_type="spherical", max_iter=1, weights_init=[.75, .25], means_init=[[0.1], [5.0]],
              precisions_init=[1, 1e6])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="collapsed onto a single point") as err:
            emkit.GaussianMixture(2, reg_covar=0, **kw).fit(x)
        assert "not positive" not in str(err.value) and "\n" not in str(err.value)
        gmm = emkit.GaussianMixture(2, reg_covar=1e-12, **kw).fit(x)
    assert gmm.covariances_[1] == pytest.approx(1e-12, rel=1e-3)
    assert gmm.covariances_[0] == pytest.approx(np.var([0.0, 0.1, 0.2]), rel=1e-4)


@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
def test_m_step_clips_rounding_negatives_only(covariance_type):
    model = GaussianMixtureModel(1, covariance_type, reg_covar=0.0)
    structure = model.structure
    # statistics about the centre (ref 0) of one point at 3.675: s2/n - (s1/n)^2 is 0 up to rounding
    x = 3.675
    stats = {"n": np.array([1.0]), "s1": np.array([[x]]), "s2": np.array([[x * x * (1 + 2e-16)]]),
             "ref": np.zeros((1, 1))}
    _, _, cov, _ = kern.m_step_numpy(stats, structure, 0.0, 1)
    assert np.all(cov >= 0)
    stats["s2"] = np.array([[x * x * (1 - 1e-16)]])  # negative by rounding: clipped to 0
    _, _, cov, _ = kern.m_step_numpy(stats, structure, 0.0, 1)
    assert np.all(cov == 0)
    stats["s2"] = np.array([[x * x * 0.5]])  # negative beyond rounding: left for the check to reject
    _, _, cov, _ = kern.m_step_numpy(stats, structure, 0.0, 1)
    assert np.all(cov < 0)


def test_m_step_takes_the_centre_back_exactly_as_the_reference_point():
    # statistics about a centre far from 0 carry ref = n c, and (n c) / n is c only to an ulp
    # (1.2e-4 at 1e12, a fair part of a tight component's spread): the M-step uses c itself
    model = GaussianMixtureModel(2, "full", reg_covar=0.0)
    center = np.array([1e12 + 0.5, -3e11 + 0.25])
    rng = np.random.default_rng(0)
    n = next(v for v in rng.uniform(1.0, 3.0, 1000) if np.any((v * center) / v != center))
    counts = np.array([n, 2.0])
    s1 = np.array([[1e-3, -2e-3], [0.5, 0.25]])
    s2 = np.array([[1e-2, 1e-3, 1e-2], [1.0, 0.1, 1.0]])
    far = np.array([5e11, 7.0])  # a component with its own reference point keeps it
    stats = {"n": counts, "s1": s1, "s2": s2, "ref": counts[:, None] * np.stack([center, far])}
    _, means, _, _ = kern.m_step_numpy(stats, model.structure, 0.0, 2, center=center)
    nk = counts + kern.COUNT_FLOOR
    np.testing.assert_array_equal(means[0], center + s1[0] / nk[0])
    np.testing.assert_array_equal(means[1], stats["ref"][1] / counts[1] + s1[1] / nk[1])


def _six_points(seed=20):
    # seed 20: with statistics about one centre, the float32 spherical fit raised
    # "variance of component 1 is not positive" where float64 (and scikit-learn) fit
    r = np.random.default_rng(seed)
    d = int(r.integers(1, 4))
    k = int(r.integers(2, 4))
    x = r.normal(size=(6, d)) * 10.0 ** r.integers(-3, 4) + 10.0 ** r.integers(0, 5)
    return x, k


def test_float32_spherical_few_points_fits_like_float64():
    x, k = _six_points()
    kw = dict(covariance_type="spherical", random_state=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g32 = emkit.GaussianMixture(k, **kw).fit(x.astype(np.float32))
        g64 = emkit.GaussianMixture(k, **kw).fit(x)
    assert g32.covariances_.dtype == np.float32
    assert np.all(g32.covariances_ > 0)
    np.testing.assert_allclose(np.sort(g32.covariances_), np.sort(g64.covariances_), rtol=1e-4)
    # the log-likelihood of a component with variance 1e-6 evaluated in float32: ~0.5 % apart
    np.testing.assert_allclose(g32.lower_bound_, g64.lower_bound_, rtol=1e-2)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_float32_far_component(covariance_type):
    rng = np.random.default_rng(11)
    x, labels = _two_clusters(3e4, rng)
    gmm = emkit.GaussianMixture(2, covariance_type=covariance_type, random_state=0, tol=1e-9,
                                max_iter=50).fit(x.astype(np.float32))
    order = np.argsort(gmm.means_[:, 0])
    x32 = x.astype(np.float32).astype(np.float64)
    means, covs = _two_pass(x32, labels)
    expected = _expected_cov(covs, np.array([200, 60]) / 260, covariance_type, 1e-6)
    got = gmm.covariances_ if covariance_type == "tied" else gmm.covariances_[order]
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_chunks_and_dask_blocks_give_the_same_far_fit(covariance_type):
    da = pytest.importorskip("dask.array")
    rng = np.random.default_rng(13)
    x, _ = _two_clusters(1e9, rng)
    rng.shuffle(x)
    kw = dict(covariance_type=covariance_type, random_state=0, tol=0, max_iter=8)
    whole = emkit.GaussianMixture(2, **kw).fit(x)
    chunked = emkit.GaussianMixture(2, chunk_size=37, **kw).fit(x)
    blocks = emkit.GaussianMixture(2, **kw).fit(da.from_array(x, chunks=(50, 2)))
    for other in (chunked, blocks):
        np.testing.assert_allclose(other.means_, whole.means_, rtol=1e-12)
        np.testing.assert_allclose(np.asarray(other.covariances_), whole.covariances_, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_torch_far_fit_matches_numpy(covariance_type):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(17)
    x, _ = _two_clusters(1e9, rng)
    kw = dict(covariance_type=covariance_type, random_state=0, tol=0, max_iter=8)
    ref = emkit.GaussianMixture(2, **kw).fit(x)
    got = emkit.GaussianMixture(2, **kw).fit(torch.as_tensor(x))
    np.testing.assert_allclose(np.asarray(got.means_), ref.means_, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(got.covariances_), ref.covariances_, rtol=1e-8, atol=1e-12)


def test_online_running_statistics_share_references():
    """Online EM shifts its running statistics to the batch's reference points: the same
    result as the statistics taken about the centre (rebase_stats is exact algebra)."""
    rng = np.random.default_rng(19)
    x, _ = _two_clusters(1e6, rng)
    gmm = emkit.GaussianMixture(2, random_state=0, max_iter=5).fit(x)
    model, params = gmm.model_, gmm.params_
    stats, _ = model.e_step((x, None), params)
    moved = {k: v + (0.01 if k == "means" else 0) for k, v in params.items()}
    there = model.rebase_stats(stats, moved)
    back = model.rebase_stats(there, params)
    for key in stats:
        np.testing.assert_allclose(back[key], stats[key], rtol=1e-9, atol=1e-6)
    a = model.m_step(stats, params)
    b = model.m_step(there, params)
    for key in a:
        np.testing.assert_allclose(b[key], a[key], rtol=1e-9)


@pytest.mark.parametrize("k", [3, 16])
@pytest.mark.parametrize("weighted", [False, True])
def test_sparse_exp_gives_the_exp_of_everything(monkeypatch, k, weighted):
    """Without AVX-512 the E-step exponentiates only the live terms of the log joint (gather,
    exp, scatter); the responsibilities and log-likelihood are those of exp of everything, with
    the dead terms (below eps / (16 K) of their row's largest) exactly 0."""
    rng = np.random.default_rng(5)
    rows = 3000
    log_joint = rng.normal(scale=200.0, size=(k, rows))  # most terms far below their row's top
    log_joint[:, :7] = -np.inf  # a row impossible under every component but one
    log_joint[0, :7] = 0.0
    weights = rng.uniform(0.5, 2.0, rows) if weighted else None
    results = {}
    for vector, sparse_max in ((True, 0.5), (False, 0.0), (False, 0.5)):
        monkeypatch.setattr(kern, "VECTOR_EXP64", vector)
        monkeypatch.setattr(kern, "SPARSE_EXP_MAX_LIVE", sparse_max)
        resp, ll = kern.posterior_by_component(np, log_joint.copy(), kern.Scratch(), weights, row_loglik=False)
        results[(vector, sparse_max)] = (resp.copy(), ll)
    live = log_joint - log_joint.max(axis=0) > np.log(np.finfo(float).eps / (16 * k))
    assert live.mean() < 0.5  # the sparse branch ran
    reference, ref_ll = results[(True, 0.5)]
    for key, (resp, ll) in results.items():
        np.testing.assert_allclose(resp, reference, rtol=1e-14, atol=1e-16)  # dead terms < eps / (16 K)
        assert ll == pytest.approx(ref_ll, rel=1e-14)
    assert np.all(results[(False, 0.5)][0][~live] == 0.0)


@pytest.mark.parametrize("weighted", [False, True])
def test_sparse_exp_leaves_a_row_impossible_under_every_component_at_zero(monkeypatch, weighted):
    """The sparse branch scales the dense responsibilities by 1 / (row total): a row with no
    live term at all (log p(x, k) = -inf for every k) keeps responsibilities 0, not 0 * inf =
    NaN, and the log-likelihood is -inf (the caller reports it)."""
    rng = np.random.default_rng(6)
    k, rows = 16, 2000
    log_joint = rng.normal(scale=200.0, size=(k, rows))
    log_joint[:, 11] = -np.inf
    weights = rng.uniform(0.5, 2.0, rows) if weighted else None
    monkeypatch.setattr(kern, "VECTOR_EXP64", False)
    monkeypatch.setattr(kern, "SPARSE_EXP_MAX_LIVE", 0.5)
    resp, ll = kern.posterior_by_component(np, log_joint.copy(), kern.Scratch(), weights, row_loglik=False)
    assert np.all(resp[:, 11] == 0.0)
    assert np.isfinite(resp).all()
    assert ll == -np.inf
    others = np.delete(resp, 11, axis=1)
    expected = 1.0 if weights is None else np.delete(weights, 11)
    np.testing.assert_allclose(others.sum(axis=0), expected, rtol=1e-14)


@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
@pytest.mark.parametrize("compiled", ["1", "0"])
def test_far_tight_component_log_density_is_exact(covariance_type, compiled, monkeypatch):
    """A tight component far from the data centre: the expanded quadratic form would round at
    eps |m - c|^2 / var a row (here about 1e3: log densities off by hundreds), so diag and
    spherical take the whitened form there, as full does; every row's log density is scipy's.
    7,800 rows: the NumPy path, not the small data's compiled loop (which is exact too)."""
    from scipy.stats import multivariate_normal

    monkeypatch.setenv("EMKIT_COMPILED", compiled)
    rng = np.random.default_rng(11)
    x, labels = _two_clusters(1e9, rng)
    x = np.vstack([x] * 30)
    gmm = emkit.GaussianMixture(2, covariance_type=covariance_type, random_state=0, max_iter=5).fit(x)
    var = gmm.covariances_ if covariance_type == "diag" else np.repeat(gmm.covariances_[:, None], 2, axis=1)
    dens = np.stack([np.log(gmm.weights_[k]) + multivariate_normal(gmm.means_[k], np.diag(var[k])).logpdf(x)
                     for k in range(2)], axis=1)
    expected = np.logaddexp(dens[:, 0], dens[:, 1])
    np.testing.assert_allclose(gmm.score_samples(x), expected, rtol=1e-9, atol=1e-6)
