"""Wide data in the full covariance structure: the whitened form and one weighted Gram product
per component (``Full.use_products`` False) give the statistics of the per-row products form;
symmetric packing, the triangular inverse and the M-step for many features."""

from __future__ import annotations

import numpy as np
import pytest

import emkit
from emkit.engine import statistics_pass
from emkit.models import covariance as cv
from emkit.models.gaussian import GaussianMixtureModel, data_center


def _params(rng, k, d, far=False):
    means = rng.normal(scale=3.0, size=(k, d))
    if far:
        means[0] += 1e4
    a = rng.normal(size=(k, d, d))
    covs = a @ np.swapaxes(a, 1, 2) / d + 0.5 * np.eye(d)
    return {"weights": rng.dirichlet(np.full(k, 2.0)), "means": means, "covariances": covs}


def _data(rng, params, n):
    k = len(params["weights"])
    labels = rng.choice(k, size=n, p=params["weights"])
    # one Cholesky factor per component (rng.multivariate_normal factorises per row: minutes at D = 520)
    z = rng.normal(size=(n, len(params["means"][0])))
    for j, cov in enumerate(params["covariances"]):
        z[labels == j] = z[labels == j] @ np.linalg.cholesky(cov).T
    return params["means"][labels] + z


@pytest.mark.parametrize("far", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gram_form_equals_products_form(monkeypatch, far, dtype):
    rng = np.random.default_rng(0)
    params = _params(rng, 3, 9, far=far)
    x = _data(rng, params, 3000).astype(dtype)
    model = GaussianMixtureModel(3, "full", center=data_center(x), has_missing=False)
    monkeypatch.setattr(cv, "FULL_PRODUCTS_COST", (0.0, 0.0, 0.0))  # products always
    assert model.structure.use_products(9, 3)
    want, ll = statistics_pass(model, (x,), params, chunk_size=700)
    monkeypatch.setattr(cv, "FULL_PRODUCTS_MAX_D", 0)  # Gram always
    gram_model = model.replace()
    assert not gram_model.structure.use_products(9, 3)
    got, got_ll = statistics_pass(gram_model, (x,), params, chunk_size=700)
    # (a far component: the products form's expanded quadratic form rounds at ~eps * |m|^2_P)
    rtol = (1e-8 if far else 1e-11) if dtype == np.float64 else 2e-5
    assert got_ll == pytest.approx(ll, rel=rtol)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=rtol, atol=rtol * np.abs(want[key]).max(), err_msg=key)


def test_cost_model_takes_products_for_many_components_and_gram_for_wide_data():
    full = cv.COVARIANCE_STRUCTURES["full"]
    assert full.use_products(16, 16) and full.use_products(2, 3)
    assert not full.use_products(256, 4) and not full.use_products(5000, 1)
    assert not full.use_products(cv.FULL_PRODUCTS_MAX_D + 1, 1000)


def test_row_by_row_packing_equals_index_packing():
    rng = np.random.default_rng(1)
    d = cv.PACK_INDEX_MAX_D + 3
    a = rng.normal(size=(2, d, d))
    sym = a + np.swapaxes(a, 1, 2)
    packed = cv.pack_sym(sym)
    rows, cols = np.triu_indices(d)
    np.testing.assert_array_equal(packed, sym[:, rows, cols])
    np.testing.assert_array_equal(cv.unpack_sym(packed, d), sym)


@pytest.mark.parametrize("mask_max_d", [cv.LOWER_MASK_MAX_D, 3])
def test_lower_inverse(monkeypatch, mask_max_d):
    # (3: wide factors' upper triangles cleared row by row, no (d, d) mask)
    monkeypatch.setattr(cv, "LOWER_MASK_MAX_D", mask_max_d)
    rng = np.random.default_rng(2)
    for d in (1, 5, 40):
        low = np.tril(rng.normal(size=(3, d, d))) + 3 * np.eye(d)
        inv = cv.lower_inverse(low)
        np.testing.assert_allclose(inv @ low, np.broadcast_to(np.eye(d), low.shape), atol=1e-12)
        assert np.all(np.triu(inv, 1) == 0)
        in_place = low.copy()
        out = cv.lower_inverse(in_place, overwrite=True)  # the inverses take the factors' place
        assert np.shares_memory(out, in_place)
        np.testing.assert_array_equal(out, inv)


def test_in_place_full_m_step_equals_the_whole_array_form(monkeypatch):
    # from INPLACE_M_STEP_BYTES of covariances on, one rank-2 update per component replaces the
    # whole-array form (whose (K, D, D) temporaries set the memory peak): same covariances
    rng = np.random.default_rng(6)
    d, k = 12, 3
    n = rng.uniform(5.0, 50.0, k)
    s1 = rng.normal(size=(k, d)) * n[:, None]
    a = rng.normal(size=(k, d, 2 * d))
    second = a @ np.swapaxes(a, 1, 2) + n[:, None, None] * np.eye(d)
    about = rng.normal(size=(k, d))
    full = cv.Full()
    whole = full.m_step(n, n, s1, cv.pack_sym(second), about, 1e-6, d)
    monkeypatch.setattr(cv, "INPLACE_M_STEP_BYTES", 0)
    in_place = full.m_step(n, n, s1, cv.pack_sym(second), about, 1e-6, d)
    np.testing.assert_allclose(in_place, whole, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(in_place, np.swapaxes(in_place, 1, 2))


def test_wide_m_step_equals_the_scatter_about_the_new_means():
    rng = np.random.default_rng(3)
    d, n = cv.PACK_INDEX_MAX_D + 8, 40
    x = rng.normal(size=(n, d)) * rng.uniform(0.5, 2.0, d) + 5.0
    r = rng.uniform(0.1, 1.0, size=(n, 2))
    model = GaussianMixtureModel(2, "full", center=data_center(x), reg_covar=1e-3)
    stats = model._stats_from_resp(np, x, r, None)
    new = model.m_step(stats, {"weights": np.full(2, 0.5), "means": np.zeros((2, d)),
                               "covariances": np.repeat(np.eye(d)[None], 2, 0)})
    for j in range(2):
        nk = r[:, j].sum() + 10 * np.finfo(float).eps
        mean = r[:, j] @ x / nk
        diff = x - mean
        cov = (diff * r[:, j, None]).T @ diff / nk + 1e-3 * np.eye(d)
        np.testing.assert_allclose(new["means"][j], mean, rtol=1e-10)
        np.testing.assert_allclose(new["covariances"][j], cov, rtol=1e-8, atol=1e-10)


def test_one_component_on_wide_data_fits_the_sample_covariance():
    rng = np.random.default_rng(4)
    d, n = 600, 900
    x = rng.normal(size=(n, d)) @ (np.eye(d) + 0.1 * rng.normal(size=(d, d)) / np.sqrt(d))
    g = emkit.GaussianMixture(1, tol=0, max_iter=2, reg_covar=1e-6).fit(x)
    np.testing.assert_allclose(g.means_[0], x.mean(axis=0), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(g.covariances_[0], np.cov(x.T, bias=True) + 1e-6 * np.eye(d), rtol=1e-7, atol=1e-10)
    sk = pytest.importorskip("sklearn.mixture")
    ref = sk.GaussianMixture(1, tol=0, max_iter=2, reg_covar=1e-6).fit(x)
    assert g.score(x) == pytest.approx(ref.score(x), rel=1e-9)


def test_one_component_log_joint_over_several_chunks_is_not_overwritten():
    # K = 1: the (rows, 1) transpose of the chunk's log joint is "contiguous", so it must be
    # copied explicitly out of the reused workspace before the next chunk overwrites it
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(5)
    x = rng.normal(size=(200_000, 3))
    g = emkit.GaussianMixture(1, tol=0, max_iter=2).fit(x)
    assert g.model_.chunk_rows((x,)) < len(x)
    expected = multivariate_normal(g.means_[0], g.covariances_[0]).logpdf(x)
    np.testing.assert_allclose(g.score_samples(x), expected, rtol=1e-10)


def test_wide_e_step_one_component_at_a_time_equals_the_direct_computation():
    # K D > WHITENED_BLOCK: the whitened form goes component by component (triangular products);
    # D >= WIDE_MIN_FEATURES: the pass runs its chunks one after another with BLAS threads
    from scipy.special import logsumexp
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(6)
    k, d, n = 2, 520, 600
    params = _params(rng, k, d)
    x = _data(rng, params, n)
    model = GaussianMixtureModel(k, "full", center=data_center(x), has_missing=False)
    assert k * d > cv.WHITENED_BLOCK and model.large_products((x,))
    stats, ll = statistics_pass(model, (x,), params)
    lj = np.stack([np.log(params["weights"][j]) + multivariate_normal(params["means"][j], params["covariances"][j]).logpdf(x)
                   for j in range(k)], axis=1)
    assert ll == pytest.approx(logsumexp(lj, axis=1).sum(), rel=1e-10)
    r = np.exp(lj - logsumexp(lj, axis=1, keepdims=True))
    xc = x - model.center
    np.testing.assert_allclose(stats["n"], r.sum(axis=0), rtol=1e-10)
    np.testing.assert_allclose(stats["s1"], r.T @ xc, rtol=1e-9, atol=1e-9)
    second = np.einsum("rk,rd,re->kde", r, xc, xc)
    np.testing.assert_allclose(stats["s2"], cv.pack_sym(second), rtol=1e-9, atol=1e-8)


@pytest.mark.parametrize("min_d", [cv.LAPACK_CHOLESKY_MIN_D, 2])
def test_cholesky_by_potrf_equals_numpy_and_names_the_bad_component(monkeypatch, min_d):
    # (2: every width takes LAPACK potrf in place; the default: D = 300 does)
    monkeypatch.setattr(cv, "LAPACK_CHOLESKY_MIN_D", min_d)
    rng = np.random.default_rng(8)
    for d in (3, 300):
        a = rng.normal(size=(3, d, 2 * d))
        cov = a @ np.swapaxes(a, 1, 2) / (2 * d) + 0.1 * np.eye(d)
        before = cov.copy()
        low = cv.cholesky_or_raise(cov, "covariance")
        np.testing.assert_array_equal(cov, before)  # the input is left as it was
        np.testing.assert_allclose(low, np.linalg.cholesky(cov), rtol=1e-10, atol=1e-12)
        assert np.all(np.triu(low, 1) == 0)
        np.testing.assert_allclose(cv.cholesky_or_raise(cov[1], "covariance"), low[1], rtol=1e-10, atol=1e-12)
        bad = cov.copy()
        bad[2, 0, 0] = -1.0
        with pytest.raises(ValueError, match="covariance of component 2 is not positive definite"):
            cv.cholesky_or_raise(bad, "covariance")
