"""The batched missing-value E-step (``gaussian_kernels.missing_pass``) against a direct per-row
reference written here with scipy: for every row and component, the density of the observed
coordinates (``scipy.stats.multivariate_normal``), the conditional mean and covariance of the
missing ones, and from them the statistics about the model's reference points.

Every covariance structure and each of the kernel's forms (products, shared, diagonal, the
(K, rows, D) dense fallback, components far from the centre), float64 and float32, row weights,
``log_joint`` and ``impute``, and torch / Dask giving the same as NumPy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps
from scipy.special import logsumexp

import emkit
from emkit.core.arrays import to_numpy
from emkit.engine import statistics_pass
from emkit.models import gaussian_kernels as kern
from emkit.models.gaussian import GaussianMixtureModel, data_center

TYPES = ("full", "tied", "diag", "spherical")


def _problem(cov_type, n=700, d=5, k=4, frac=0.25, seed=0, far=False):
    """Data with ``frac`` of the entries missing (rows keep one observed entry), and parameters
    of the requested structure with correlated covariances (full, tied)."""
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=4.0, size=(k, d))
    if far:  # one component thousands of standard deviations from the centre
        means[0] += 5e3
    a = rng.normal(size=(k, d, d))
    full = a @ np.swapaxes(a, 1, 2) / d + 0.3 * np.eye(d)
    cov = {"full": full, "tied": full[0], "diag": np.stack([np.diag(c) for c in full]),
           "spherical": np.array([np.trace(c) / d for c in full])}[cov_type]
    weights = rng.dirichlet(np.full(k, 3.0))
    labels = rng.choice(k, size=n, p=weights)
    model = GaussianMixtureModel(k, cov_type)
    covs = model.structure.full_matrices(cov, k, d)
    x = np.stack([rng.multivariate_normal(means[c], covs[c]) for c in labels])
    mask = rng.random(x.shape) < frac
    mask[mask.all(axis=1), 0] = False
    mask[: n // 10] = False  # some complete rows too
    x[mask] = np.nan
    params = {"weights": weights, "means": means, "covariances": cov}
    return x, params


def _reference(x, params, structure, anchors, w=None):
    """Per-row log joints (r, K), conditional means (r, K, D) and covariances (r, K, D, D), and
    the statistics about ``anchors`` (K, D), the direct way."""
    weights, means = params["weights"], params["means"]
    k, d = means.shape
    covs = structure.full_matrices(params["covariances"], k, d)
    r = x.shape[0]
    lj = np.empty((r, k))
    xhat = np.empty((r, k, d))
    cond = np.zeros((r, k, d, d))
    for i in range(r):
        o = ~np.isnan(x[i])
        m = ~o
        for c in range(k):
            s = covs[c]
            lj[i, c] = np.log(weights[c]) + sps.multivariate_normal(means[c][o], s[np.ix_(o, o)]).logpdf(x[i, o])
            xhat[i, c, o] = x[i, o]
            if m.any():
                gain = s[np.ix_(m, o)] @ np.linalg.inv(s[np.ix_(o, o)])
                xhat[i, c, m] = means[c][m] + gain @ (x[i, o] - means[c][o])
                cond[i, c][np.ix_(m, m)] = s[np.ix_(m, m)] - gain @ s[np.ix_(o, m)]
    row_ll = logsumexp(lj, axis=1)
    resp = np.exp(lj - row_ll[:, None])
    if w is not None:
        resp = resp * w[:, None]
        row_ll = row_ll * w
    diff = xhat - anchors[None]
    n = resp.sum(axis=0)
    s1 = np.einsum("rk,rkd->kd", resp, diff)
    second = np.einsum("rk,rkd,rke->kde", resp, diff, diff) + np.einsum("rk,rkde->kde", resp, cond)
    st = {"n": n, "s1": s1, "s2": structure.pack_second(second), "ref": n[:, None] * anchors}
    return lj, xhat, resp, st, float(row_ll.sum())


def _model_for(x, cov_type, k):
    return GaussianMixtureModel(k, cov_type, center=data_center(x), has_missing=True)


def _assert_stats(got, want, rtol):
    for key in ("n", "s1", "s2", "ref"):
        g, e = np.asarray(to_numpy(got[key]), dtype=np.float64), np.asarray(want[key])
        scale = max(np.abs(e).max(), 1e-300)
        np.testing.assert_allclose(g, e, rtol=rtol, atol=rtol * scale, err_msg=key)


@pytest.mark.parametrize("cov_type", TYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_statistics_and_loglik_equal_the_direct_reference(cov_type, weighted):
    x, params = _problem(cov_type)
    k = len(params["weights"])
    model = _model_for(x, cov_type, k)
    w = np.random.default_rng(1).uniform(0.5, 2.0, len(x)) if weighted else None
    anchors = model._prepared(params, x)[2]
    *_, want, ll = _reference(x, params, model.structure, anchors, w)
    got, got_ll = model.e_step((x, w), params)
    assert got_ll == pytest.approx(ll, rel=1e-11)
    _assert_stats(got, want, 1e-9)


@pytest.mark.parametrize("cov_type", ["full", "diag"])
def test_per_pattern_outer_products_equal_the_dense_blocks(cov_type, monkeypatch):
    # few features take the missing entries' moments from dense blocks; many features, per
    # pattern: both against the direct reference
    from emkit.models import gaussian_kernels as kern

    monkeypatch.setattr(kern, "DENSE_MISSING_MOMENTS_MAX_D", 0)
    x, params = _problem(cov_type)
    model = _model_for(x, cov_type, len(params["weights"]))
    anchors = model._prepared(params, x)[2]
    *_, want, ll = _reference(x, params, model.structure, anchors, None)
    got, got_ll = model.e_step((x, None), params)
    assert got_ll == pytest.approx(ll, rel=1e-11)
    _assert_stats(got, want, 1e-9)


@pytest.mark.parametrize("cov_type", TYPES)
def test_float32_agrees_with_float64_to_1e4(cov_type):
    x, params = _problem(cov_type, seed=2)
    k = len(params["weights"])
    model = _model_for(x, cov_type, k)
    x32 = x.astype(np.float32)
    anchors = model._prepared(params, x32)[2]
    *_, want, ll = _reference(x32.astype(np.float64), params, model.structure, anchors)
    got, got_ll = model.e_step((x32, None), params)
    assert got_ll == pytest.approx(ll, rel=1e-4)
    _assert_stats(got, want, 1e-4)


@pytest.mark.parametrize("cov_type", ["full", "tied"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_component_far_from_the_centre_takes_its_own_reference_point(cov_type, dtype):
    x, params = _problem(cov_type, seed=3, far=True)
    k = len(params["weights"])
    x = x.astype(dtype)
    model = _model_for(x, cov_type, k)
    _, _, anchors, far = model._prepared(params, x)
    assert 0 in far.tolist()
    *_, want, ll = _reference(x.astype(np.float64), params, model.structure, anchors)
    got, got_ll = model.e_step((x, None), params)
    rtol = 1e-9 if dtype == np.float64 else 1e-4
    assert got_ll == pytest.approx(ll, rel=rtol)
    _assert_stats(got, want, rtol)


@pytest.mark.parametrize("cov_type", ["full", "tied"])
def test_the_dense_fallback_equals_the_products_form(cov_type, monkeypatch):
    x, params = _problem(cov_type, seed=4)
    k = len(params["weights"])
    model = _model_for(x, cov_type, k)
    fast, fast_ll = model.e_step((x, None), params)
    mp = kern.missing_prepare(params, model.structure, model.center, np.float64)
    assert mp.expanded
    monkeypatch.setattr(kern, "MISSING_PRODUCTS_MAX_D", 0)
    slow_model = _model_for(x, cov_type, k)
    assert not kern.missing_prepare(params, slow_model.structure, slow_model.center, np.float64).expanded
    slow, slow_ll = slow_model.e_step((x, None), params)
    assert slow_ll == pytest.approx(fast_ll, rel=1e-12)
    _assert_stats(slow, fast, 1e-10)


@pytest.mark.parametrize("cov_type", TYPES)
def test_log_joint_and_impute_equal_the_reference(cov_type):
    x, params = _problem(cov_type, n=150, seed=5)
    k = len(params["weights"])
    model = _model_for(x, cov_type, k)
    lj, xhat, _, _, _ = _reference(x, params, model.structure, np.zeros((k, x.shape[1])))
    np.testing.assert_allclose(to_numpy(model.log_joint((x,), params)), lj, rtol=1e-11, atol=1e-11)
    post = np.exp(lj - logsumexp(lj, axis=1, keepdims=True))
    np.testing.assert_allclose(model.impute(x, params), np.einsum("rk,rkd->rd", post, xhat), rtol=1e-10, atol=1e-10)


def test_many_patterns_one_chunk_and_many_chunks_agree():
    # 12 features, half the entries missing: hundreds of patterns with up to 11 missing entries
    # (beyond the entry-by-entry factorisation, SMALL_SPD), in one chunk and in chunks of 37 rows
    x, params = _problem("full", n=900, d=12, k=3, frac=0.5, seed=6)
    model = _model_for(x, "full", 3)
    assert len(np.unique(np.isnan(x), axis=0)) > 300
    assert np.isnan(x).sum(axis=1).max() > kern.SMALL_SPD
    whole, ll = statistics_pass(model, (x,), params, chunk_size=len(x))
    parts, ll_parts = statistics_pass(model, (x,), params, chunk_size=37)
    assert ll_parts == pytest.approx(ll, rel=1e-12)
    _assert_stats(parts, whole, 1e-10)
    anchors = model._prepared(params, x)[2]
    *_, want, ll_ref = _reference(x, params, model.structure, anchors)
    assert ll == pytest.approx(ll_ref, rel=1e-11)
    _assert_stats(whole, want, 1e-9)


#: stack shapes of the two ways spd_inverse_entries works: LAPACK per matrix (a few matrices)
#: and entry by entry (a batch of 16 (j + 2) or more, j <= SMALL_SPD)
SPD_BATCHES = [(3, 4), (20, 12)]


@pytest.mark.parametrize("batch", SPD_BATCHES)
def test_spd_inverse_entries_matches_numpy(batch):
    rng = np.random.default_rng(7)
    for j in range(1, kern.SMALL_SPD + 3):
        a = rng.normal(size=batch + (j, j))
        spd = a @ np.swapaxes(a, -1, -2) + 0.1 * np.eye(j)
        inv, logdet = kern.spd_inverse_logdet(spd)
        np.testing.assert_allclose(inv, np.linalg.inv(spd), rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(logdet, np.linalg.slogdet(spd)[1], rtol=1e-12, atol=1e-12)
    with pytest.raises(np.linalg.LinAlgError):
        kern.spd_inverse_logdet(-np.eye(3)[None])


@pytest.mark.parametrize("batch", SPD_BATCHES)
@pytest.mark.parametrize("scale", [1e-120, 1e-30, 1.0, 1e30, 1e120])
def test_spd_inverse_entries_log_determinant_at_extreme_scales(scale, batch):
    # the log-determinant is one log of the pivots' product unless it under- or overflows
    rng = np.random.default_rng(3)
    for j in (2, 4, 6):
        a = rng.normal(size=batch + (j, j))
        spd = (a @ np.swapaxes(a, -1, -2) + 0.5 * np.eye(j)) * scale
        inv, logdet = kern.spd_inverse_logdet(spd)
        want = np.linalg.slogdet(spd)[1]
        assert np.all(np.isfinite(logdet))
        np.testing.assert_allclose(logdet, want, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(inv * scale, np.linalg.inv(spd / scale), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("copies", [1, 100])
def test_spd_inverse_entries_rejects_one_bad_matrix_in_a_stack(copies):
    spd = np.stack([np.eye(3), np.eye(3), np.diag([1.0, -1.0, 1.0]), np.full((3, 3), np.nan)])
    good = np.repeat(np.eye(3)[None], copies, axis=0)  # 100 copies: the entry-by-entry way
    with pytest.raises(np.linalg.LinAlgError, match="not positive definite"):
        kern.spd_inverse_logdet(np.concatenate([good, spd[:3]]))
    with pytest.raises(np.linalg.LinAlgError, match="not positive definite"):
        kern.spd_inverse_logdet(np.concatenate([good, spd[[0, 3]]]))


def test_spd_inverse_entries_packed_is_the_upper_triangle():
    rng = np.random.default_rng(5)
    for batch in SPD_BATCHES:
        for j in (1, 3, 5, kern.SMALL_SPD + 1):
            a = rng.normal(size=batch + (j, j))
            spd = a @ np.swapaxes(a, -1, -2) + 0.1 * np.eye(j)
            entries = np.moveaxis(np.moveaxis(spd, -1, 0), -1, 0)
            full, logdet = kern.spd_inverse_entries(entries)
            packed, logdet_packed = kern.spd_inverse_entries(entries, packed=True)
            np.testing.assert_array_equal(packed, full[np.triu_indices(j)])
            np.testing.assert_array_equal(logdet_packed, logdet)


@pytest.mark.parametrize("cov_type", TYPES)
def test_torch_gives_the_numpy_statistics(cov_type):
    torch = pytest.importorskip("torch")
    pytest.importorskip("array_api_compat")
    x, params = _problem(cov_type, seed=8)
    model = _model_for(x, cov_type, len(params["weights"]))
    want, ll = model.e_step((x, None), params)
    tparams = {name: torch.as_tensor(v) for name, v in params.items()}
    got, got_ll = model.e_step((torch.as_tensor(x), None), tparams)
    assert got_ll == pytest.approx(ll, rel=1e-12)
    _assert_stats(got, want, 1e-12)


@pytest.mark.parametrize("cov_type", ["full", "diag"])
def test_dask_gives_the_numpy_statistics(cov_type):
    da = pytest.importorskip("dask.array")
    dask = pytest.importorskip("dask")
    x, params = _problem(cov_type, seed=9)
    model = _model_for(x, cov_type, len(params["weights"]))
    want, ll = statistics_pass(model, (x,), params)
    with dask.config.set(scheduler="threads"):
        got, got_ll = statistics_pass(model, (da.from_array(x, chunks=173),), params)
    assert got_ll == pytest.approx(ll, rel=1e-12)
    _assert_stats(got, want, 1e-11)


@pytest.mark.parametrize("cov_type", TYPES)
def test_fit_with_missing_values_in_float32_stays_close_to_float64(cov_type):
    x, _ = _problem(cov_type, n=600, seed=10, frac=0.1)
    opts = dict(covariance_type=cov_type, tol=0, max_iter=8, random_state=0)
    f64 = emkit.GaussianMixture(4, **opts).fit(x)
    f32 = emkit.GaussianMixture(4, **opts).fit(x.astype(np.float32))
    assert f32.means_.dtype == np.float32
    assert f32.loglik_ == pytest.approx(f64.loglik_, rel=1e-4)


def test_grouping_by_pattern_is_kept_per_chunk_and_redone_when_the_nans_move():
    """The E-step keeps each chunk's grouping by missingness pattern between iterations, and
    makes a new one when the chunk's NaN positions are no longer those it was made from."""
    x, params = _problem("full", seed=3)
    model = _model_for(x, "full", len(params["weights"]))
    first, ll_first = model.e_step((x, None), params)
    cached = model._scratch.shared["missing_layout"]
    (layout,) = cached.values()
    again, ll_again = model.e_step((x, None), params)
    (layout_again,) = cached.values()
    assert layout_again[2] is layout[2]  # the same MissingPatterns object: reused
    assert ll_again == ll_first
    row = int(np.flatnonzero(np.isnan(x).any(axis=1))[0])
    col = int(np.flatnonzero(np.isnan(x[row]))[0])
    x[row, col] = params["means"][0, col]  # a missing entry filled in, in place
    x[row - 1 if row else row + 1, 0] = np.nan
    got, ll = model.e_step((x, None), params)
    want, ll_want = model.replace().e_step((x.copy(), None), params)  # same centre, nothing kept
    assert ll == pytest.approx(ll_want, rel=1e-13)
    _assert_stats(got, want, 1e-12)
    assert ll != pytest.approx(ll_first, rel=1e-9)


@pytest.mark.parametrize("cov_type", TYPES)
@pytest.mark.parametrize("far", [False, True])
def test_blocks_that_split_a_pattern_agree_with_one_block(cov_type, far):
    # 8 features, a quarter missing: ~2 rows per pattern, so 64-row blocks cut patterns in two,
    # often one row on each side (a pattern's per-pattern values are then read, not copied)
    x, params = _problem(cov_type, n=900, d=8, k=3, frac=0.25, seed=11, far=far)
    model = _model_for(x, cov_type, 3)
    mp = kern.missing_prepare(params, model.structure, model.center, np.float64)
    rows = np.flatnonzero(np.isnan(x).any(axis=1))
    pats = kern.MissingPatterns(np.isnan(x[rows]))
    assert len(pats.n_observed) > 100
    far_idx = np.array([0]) if far else None
    offsets = np.zeros((3, 8))
    if far:
        offsets[0] = 1e3
    want = kern.missing_pass(x, mp, model.center, kern.Scratch(), rows=rows, patterns=pats, far=far_idx,
                             offsets=offsets)
    got = kern.missing_pass(x, mp, model.center, kern.Scratch(), rows=rows, patterns=pats, far=far_idx,
                            offsets=offsets, block_rows=64)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-10 * np.max(np.abs(w)))
    for mode in ("log_joint", "impute"):
        one = kern.missing_pass(x, mp, model.center, kern.Scratch(), rows=rows, patterns=pats, mode=mode)
        np.testing.assert_allclose(
            kern.missing_pass(x, mp, model.center, kern.Scratch(), rows=rows, patterns=pats, mode=mode, block_rows=64),
            one, rtol=1e-10, atol=1e-10 * np.max(np.abs(one)))


@pytest.mark.parametrize("cov_type", TYPES)
@pytest.mark.parametrize("form", ["products", "dense"])
def test_a_pattern_split_after_a_block_of_single_rows(cov_type, form, monkeypatch):
    # 63 rows of distinct two-missing patterns, then two rows of the pattern that sorts last
    # (columns 14 and 15 missing): the first 64-row block holds one row of every pattern (its
    # per-pattern values are read in place) and the second block the pattern's other row
    d = 16
    x, params = _problem(cov_type, n=65, d=d, k=3, frac=0.0, seed=12)
    pairs = [(a, b) for a in range(d) for b in range(a + 1, d) if (a, b) != (14, 15)]
    for row, (a, b) in enumerate(pairs[:63]):
        x[row, [a, b]] = np.nan
    x[63:, [14, 15]] = np.nan
    if form == "dense":
        monkeypatch.setattr(kern, "MISSING_PRODUCTS_MAX_D", 0)
    model = _model_for(x, cov_type, 3)
    mp = kern.missing_prepare(params, model.structure, model.center, np.float64)
    assert mp.diagonal or mp.expanded == (form == "products")
    want = kern.missing_pass(x, mp, model.center, kern.Scratch())
    got = kern.missing_pass(x, mp, model.center, kern.Scratch(), block_rows=64)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-10 * np.max(np.abs(w)))


def test_block_plans_are_kept_on_the_patterns_and_reused():
    # the pattern-only index work of each block (where the missing entries are, by row and by
    # column) is made on the first pass and found again by the next passes over the same rows
    x, params = _problem("full", n=900, d=8, k=3, frac=0.25, seed=11, far=True)
    model = _model_for(x, "full", 3)
    mp = kern.missing_prepare(params, model.structure, model.center, np.float64)
    rows = np.flatnonzero(np.isnan(x).any(axis=1))
    pats = kern.MissingPatterns(np.isnan(x[rows]))
    offsets = np.zeros((3, 8))
    offsets[0] = 1e3
    kwargs = dict(rows=rows, patterns=pats, far=np.array([0]), offsets=offsets, block_rows=64)
    first = kern.missing_pass(x, mp, model.center, kern.Scratch(), **kwargs)
    plans = dict(pats.plans)
    assert len(plans) > 5  # one per block, and the scatter positions
    kern.missing_pass(x, mp, model.center, kern.Scratch(), mode="impute", **kwargs)
    again = kern.missing_pass(x, mp, model.center, kern.Scratch(), **kwargs)
    assert pats.plans.keys() == plans.keys() and all(pats.plans[key] is plans[key] for key in plans)
    fresh = kern.missing_pass(x, mp, model.center, kern.Scratch(), **{**kwargs, "patterns": None})
    for a, b, c in zip(first, again, fresh):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("j", [3, 5, 8])
@pytest.mark.parametrize("packed", [False, True])
def test_matvec_by_broadcasting_equals_entry_by_entry(j, packed, monkeypatch):
    # small stacks are multiplied by broadcasting, large ones entry by entry: the same numbers
    rng = np.random.default_rng(j)
    a = rng.normal(size=(4, 7, j, j))
    sym = a @ np.swapaxes(a, -1, -2)  # (K', P, j, j) symmetric
    entries = np.moveaxis(np.moveaxis(sym, -1, 0), -1, 0)  # (j, j, K', P)
    h = entries[kern.triu_pairs(j)] if packed else entries
    y = rng.normal(size=(j, 4, 7))
    want = np.einsum("abkp,bkp->akp", entries, y)
    assert 4 * 7 <= kern.BROADCAST_MATVEC_MAX
    np.testing.assert_allclose(kern._matvec_entries(h, y, packed=packed), want, rtol=1e-13, atol=1e-12)
    monkeypatch.setattr(kern, "BROADCAST_MATVEC_MAX", 0)
    np.testing.assert_allclose(kern._matvec_entries(h, y, packed=packed), want, rtol=1e-13, atol=1e-12)
