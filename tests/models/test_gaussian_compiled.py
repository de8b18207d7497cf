"""The compiled loops of the Gaussian E-step (``emkit.models.gaussian_compiled``, Numba) against
the NumPy steps they replace and against direct references.

* Missing values, against the direct per-row reference of ``test_missing_batched``: the
  products form's per-row corrections and moments, and the per-pattern factorisations, for one
  to many missing entries per row, float64 and float32, row weights, one shared covariance
  (K' = 1), components far from the centre, ``log_joint``, and the errors.
* The float64 posterior where NumPy's exp is scalar: responsibilities and log-likelihoods
  against scipy's ``logsumexp``, with weights, per-row log-likelihoods, rows impossible under
  every component, and few to all terms live.
* The whole E-step of small complete data, every structure (``small_prepare``,
  ``small_e_step``): statistics and log-likelihood against the NumPy E-step, with row weights,
  a component far from the centre, every form that stores full covariances, the error for a
  covariance that is not positive definite, and whole fits.

``EMKIT_COMPILED=0`` selects the NumPy steps."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from emkit.models import gaussian_compiled as compiled
from emkit.models import gaussian_kernels as kern

from test_missing_batched import _assert_stats, _model_for, _problem, _reference

pytest.importorskip("numba")


def _stats(model, x, w, params, monkeypatch, use_compiled):
    monkeypatch.setenv("EMKIT_COMPILED", "1" if use_compiled else "0")
    assert compiled.available() is use_compiled
    return model.e_step((x, w), params)


def _wide_problem(seed=0, frac=0.35, far=False, shared=False, dtype=np.float64):
    # D = 12 (above the dense moments' limit, so the products form's per-pattern moments run),
    # 35 % missing: rows with 1 to 9 missing entries, the written-out loops (1, 2, 3) and the
    # general ones (4 and more)
    x, params = _problem("full", n=900, d=12, k=4, frac=frac, seed=seed, far=far)
    if shared:  # every component the same covariance: the precisions are stored once (K' = 1)
        params = dict(params, covariances=np.repeat(params["covariances"][:1], 4, axis=0))
    return x.astype(dtype), params


def test_the_problem_has_rows_with_one_to_many_missing_entries():
    x, _ = _wide_problem()
    counts = set(np.isnan(x).sum(axis=1).tolist())
    assert {0, 1, 2, 3, 4, 5, 6} <= counts


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("far", [False, True])
@pytest.mark.parametrize("shared", [False, True])
def test_compiled_statistics_equal_numpy_and_the_direct_reference(weighted, far, shared, monkeypatch):
    x, params = _wide_problem(far=far, shared=shared)
    model = _model_for(x, "full", 4)
    w = np.random.default_rng(2).uniform(0.5, 2.0, len(x)) if weighted else None
    got, got_ll = _stats(model, x, w, params, monkeypatch, True)
    numpy_path, numpy_ll = _stats(model, x, w, params, monkeypatch, False)
    _assert_stats(got, numpy_path, 1e-12)
    # (a component 5,000 from the centre: its log joints are differences of large terms, whose
    # rounding the two paths' different order of additions shows)
    assert got_ll == pytest.approx(numpy_ll, rel=1e-11 if far else 1e-13)
    anchors = model._prepared(params, x)[2]
    *_, want, ll = _reference(x, params, model.structure, anchors, w)
    _assert_stats(got, want, 1e-9)
    assert got_ll == pytest.approx(ll, rel=1e-9 if far else 1e-11)  # as test_missing_batched's far test


def test_compiled_float32_statistics_equal_numpy(monkeypatch):
    x, params = _wide_problem(dtype=np.float32)
    model = _model_for(x, "full", 4)
    assert model._missing_prepared(params, x).dtype == np.float32  # the per-row work runs in float32
    got, got_ll = _stats(model, x, None, params, monkeypatch, True)
    numpy_path, numpy_ll = _stats(model, x, None, params, monkeypatch, False)
    _assert_stats(got, numpy_path, 2e-5)
    assert got_ll == pytest.approx(numpy_ll, rel=1e-6)


def test_compiled_log_joint_equals_numpy_and_the_reference(monkeypatch):
    x, params = _wide_problem()
    model = _model_for(x, "full", 4)
    monkeypatch.setenv("EMKIT_COMPILED", "1")
    got = model.log_joint((x,), params)
    monkeypatch.setenv("EMKIT_COMPILED", "0")
    numpy_path = model.log_joint((x,), params)
    np.testing.assert_allclose(got, numpy_path, rtol=1e-12, atol=1e-10)
    anchors = model._prepared(params, x)[2]
    want = _reference(x, params, model.structure, anchors)[0]
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-8)


def test_blocks_that_split_patterns_give_the_same_statistics(monkeypatch):
    # small blocks cut the runs of a pattern's rows: the compiled moments add a pattern's sums
    # from each block it appears in
    x, params = _wide_problem(frac=0.15)
    model = _model_for(x, "full", 4)
    monkeypatch.setenv("EMKIT_COMPILED", "1")
    mp = model._missing_prepared(params, x)
    center = model._center(x.shape[1])
    rows = np.flatnonzero(np.isnan(x).any(axis=1))
    whole = kern.missing_pass(x, mp, center, kern.Scratch(), rows=rows)
    split = kern.missing_pass(x, mp, center, kern.Scratch(), rows=rows, block_rows=64)
    for a, b in zip(whole[:3], split[:3]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * np.abs(a).max())
    assert whole[3] == pytest.approx(split[3], rel=1e-13)


@pytest.mark.parametrize("scale", [1e-100, 1e-30, 1.0, 1e30, 1e100])
def test_pattern_factorisations_equal_numpy_at_extreme_scales(scale, monkeypatch):
    # log det of the precisions' missing blocks: one log of the product of the pivots, or one
    # per pivot where the product would leave the normal range
    x, params = _wide_problem()
    params = dict(params, covariances=params["covariances"] * scale, means=params["means"] * np.sqrt(scale))
    x = x * np.sqrt(scale)
    model = _model_for(x, "full", 4)
    mp = model._missing_prepared(params, x)
    pats = kern.MissingPatterns(np.isnan(x[np.isnan(x).any(axis=1)]))
    monkeypatch.setenv("EMKIT_COMPILED", "1")
    const, groups = kern._pattern_terms(mp, pats, products=True, packed=True)
    monkeypatch.setenv("EMKIT_COMPILED", "0")
    const_np, groups_np = kern._pattern_terms(mp, pats, products=True, packed=True)
    assert np.all(np.isfinite(const))
    np.testing.assert_allclose(const, const_np, rtol=1e-12, atol=1e-9)
    for got, want in zip(groups, groups_np):
        if want is None:
            continue
        for a, b in zip(got, want):  # inverses, means' missing entries, shifts
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12 * np.abs(b).max())


def test_a_missing_block_that_is_not_positive_definite_is_the_same_clear_error(monkeypatch):
    x, params = _wide_problem()
    model = _model_for(x, "full", 4)
    pats = kern.MissingPatterns(np.isnan(x[np.isnan(x).any(axis=1)]))
    for flag in ("1", "0"):
        monkeypatch.setenv("EMKIT_COMPILED", flag)
        mp = kern.missing_prepare(params, model.structure, model._center(12), np.float64)
        mp.prec = mp.prec.copy()
        mp.prec[1, 3, 3] = -1.0  # every pattern missing feature 3 has a block that is not positive definite
        with pytest.raises(ValueError, match="numerically singular for a missingness pattern"):
            kern._pattern_terms(mp, pats, products=True, packed=True)


def test_without_numba_the_numpy_steps_run(monkeypatch):
    monkeypatch.setattr(compiled, "_KERNELS", None)
    monkeypatch.setattr(compiled, "_FAILED", False)
    monkeypatch.setitem(sys.modules, "numba", None)  # import numba now fails
    monkeypatch.delenv("EMKIT_COMPILED", raising=False)
    assert not compiled.available()
    x, params = _wide_problem()
    model = _model_for(x, "full", 4)
    got, ll = model.e_step((x, None), params)
    anchors = model._prepared(params, x)[2]
    *_, want, want_ll = _reference(x, params, model.structure, anchors)
    _assert_stats(got, want, 1e-9)
    assert ll == pytest.approx(want_ll, rel=1e-11)


def test_a_fit_with_missing_values_is_the_same_with_and_without_the_compiled_loops(monkeypatch):
    import emkit

    x, _ = _wide_problem(frac=0.15)
    fits = {}
    for flag in ("1", "0"):
        monkeypatch.setenv("EMKIT_COMPILED", flag)
        fits[flag] = emkit.GaussianMixture(4, covariance_type="full", random_state=0, tol=1e-10, max_iter=40).fit(x)
    assert fits["1"].n_iter_ == fits["0"].n_iter_
    assert fits["1"].loglik_ == pytest.approx(fits["0"].loglik_, rel=1e-12)
    np.testing.assert_allclose(fits["1"].means_, fits["0"].means_, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(fits["1"].covariances_, fits["0"].covariances_, rtol=1e-8, atol=1e-8)


# --------------------------------------------------------------------------- posterior
def _posterior(lj, weights, row_loglik, monkeypatch, use_compiled):
    monkeypatch.setattr(kern, "VECTOR_EXP64", False)  # the compiled posterior is for scalar exp
    monkeypatch.setenv("EMKIT_COMPILED", "1" if use_compiled else "0")
    return kern.posterior_by_component(np, lj.copy(), kern.Scratch(), weights, row_loglik=row_loglik)


@pytest.mark.parametrize("k", [1, 2, 3, 16])
@pytest.mark.parametrize("spread", [0.5, 30.0])  # nearly every term live / few live
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("row_loglik", [False, True])
def test_compiled_posterior_equals_logsumexp_and_numpy(k, spread, weighted, row_loglik, monkeypatch):
    rng = np.random.default_rng(k)
    n = 1000
    lj = rng.normal(scale=spread, size=(k, n)) - 50.0
    w = rng.uniform(0.5, 2.0, n) if weighted else None
    resp, ll = _posterior(lj, w, row_loglik, monkeypatch, True)
    resp_np, ll_np = _posterior(lj, w, row_loglik, monkeypatch, False)
    rows = logsumexp(lj, axis=0)
    want = np.exp(lj - rows) * (1.0 if w is None else w)
    dead = np.exp(lj - lj.max(axis=0)) < np.finfo(np.float64).eps / (16 * k)
    assert np.all(resp[dead] == 0.0)  # terms below eps / (16 K) of their row's top: exactly 0
    np.testing.assert_allclose(resp, want, rtol=1e-13, atol=1e-15)
    # (NumPy's dense form keeps the dead terms' tiny values for K <= 3: below eps / (16 K))
    dead_at_most = np.finfo(np.float64).eps / (16 * k) * (1.0 if w is None else w.max())
    np.testing.assert_allclose(resp, resp_np, rtol=1e-14, atol=dead_at_most)
    want_ll = rows * (1.0 if w is None else w)
    if row_loglik:
        np.testing.assert_allclose(ll, want_ll, rtol=1e-13)
        np.testing.assert_allclose(ll, ll_np, rtol=1e-14)
    else:
        assert ll == pytest.approx(want_ll.sum(), rel=1e-13)
        assert ll == pytest.approx(ll_np, rel=1e-13)


def test_compiled_posterior_of_a_row_impossible_under_every_component(monkeypatch):
    lj = np.random.default_rng(0).normal(size=(4, 300))
    lj[:, 7] = -np.inf
    for row_loglik in (False, True):
        resp, ll = _posterior(lj, None, row_loglik, monkeypatch, True)
        assert np.all(resp[:, 7] == 0.0) and np.all(np.isfinite(resp))
        np.testing.assert_allclose(resp[:, 8], np.exp(lj[:, 8] - logsumexp(lj[:, 8])), rtol=1e-13)
        if row_loglik:
            assert ll[7] == -np.inf and np.all(np.isfinite(np.delete(ll, 7)))
        else:
            assert ll == -np.inf


def test_compiled_posterior_fit_is_the_numpy_fit(monkeypatch):
    import emkit

    monkeypatch.setattr(kern, "VECTOR_EXP64", False)
    rng = np.random.default_rng(4)
    x = np.concatenate([rng.normal(c, 1.0, size=(400, 3)) for c in (-4.0, 0.0, 5.0)])
    fits = {}
    for flag in ("1", "0"):
        monkeypatch.setenv("EMKIT_COMPILED", flag)
        fits[flag] = emkit.GaussianMixture(3, covariance_type="diag", random_state=0, tol=1e-10).fit(x)
    assert fits["1"].n_iter_ == fits["0"].n_iter_
    assert fits["1"].loglik_ == pytest.approx(fits["0"].loglik_, rel=1e-13)
    np.testing.assert_allclose(fits["1"].means_, fits["0"].means_, rtol=1e-10)


@pytest.mark.parametrize("spread", [0.5, 5.0, 30.0])  # every term live / some / few
@pytest.mark.parametrize("weighted", [False, True])
def test_float32_posterior_equals_logsumexp(spread, weighted, monkeypatch):
    rng = np.random.default_rng(7)
    k, n = 16, 2000
    lj = (rng.normal(scale=spread, size=(k, n)) - 50.0).astype(np.float32)
    w = rng.uniform(0.5, 2.0, n).astype(np.float32) if weighted else None
    dead = lj - lj.max(axis=0) <= np.log(np.finfo(np.float32).eps / (16 * k))
    resp, ll = _posterior(lj, w, False, monkeypatch, True)
    assert np.all(resp[dead] == 0.0) and np.all(resp[~dead] > 0.0)
    assert resp.dtype == np.float32
    rows = logsumexp(lj.astype(np.float64), axis=0)
    want = np.exp(lj - rows) * (1.0 if w is None else w)
    np.testing.assert_allclose(resp, want, rtol=2e-6, atol=np.finfo(np.float32).eps / (16 * k) * 2)
    assert ll == pytest.approx(float(np.sum(rows * (1.0 if w is None else w))), rel=1e-7)
    resp_np, ll_np = _posterior(lj, w, False, monkeypatch, False)
    np.testing.assert_allclose(resp, resp_np, rtol=2e-6, atol=np.finfo(np.float32).eps / (16 * k) * 2)
    assert ll == pytest.approx(ll_np, rel=1e-7)
    row_resp, row_ll = _posterior(lj, w, True, monkeypatch, True)
    np.testing.assert_allclose(row_ll, rows * (1.0 if w is None else w), rtol=1e-6, atol=1e-5)


def test_float32_compiled_exp_is_within_one_ulp_over_its_whole_range(monkeypatch):
    # two components: the second's responsibility is exp(d) / (1 + exp(d)) for d <= 0, over
    # the whole live range of the vectorised exp (down to the dead threshold, log(eps / 32) =
    # -19.41; below it, exactly 0)
    d = np.linspace(-19.2, 0.0, 200_001).astype(np.float32)
    lj = np.stack([np.zeros_like(d), d]).astype(np.float32)
    resp, row_ll = _posterior(lj, None, True, monkeypatch, True)
    # the arguments as the loop forms them in float32: less the top, which carries the shift
    top = np.float32(2.0**-20)
    e0, e = np.exp(np.float64(np.float32(0.0) - top)), np.exp((d - top).astype(np.float64))
    want = e / (e0 + e)
    ulp = np.spacing(want.astype(np.float32)).astype(np.float64)
    # exp within 1 ulp, then a sum, a reciprocal and a product (half an ulp each)
    assert np.max(np.abs(resp[1] - want) / ulp) <= 3.5
    np.testing.assert_allclose(row_ll, np.logaddexp(0.0, d.astype(np.float64)), rtol=2e-7, atol=2e-7)
    below = np.array([[0.0, 0.0], [-19.5, -30.0]], dtype=np.float32)
    assert np.all(_posterior(below, None, False, monkeypatch, True)[0][1] == 0.0)


def test_float32_compiled_posterior_of_an_impossible_row(monkeypatch):
    lj = np.random.default_rng(1).normal(size=(3, 257)).astype(np.float32)
    lj[:, 5] = -np.inf
    resp, ll = _posterior(lj, None, True, monkeypatch, True)
    assert np.all(resp[:, 5] == 0.0) and np.all(np.isfinite(resp))
    assert ll[5] == -np.inf and np.all(np.isfinite(np.delete(ll, 5)))
    np.testing.assert_allclose(resp[:, 6], np.exp(lj[:, 6] - logsumexp(lj[:, 6].astype(np.float64))), rtol=3e-7)
    assert _posterior(lj, None, False, monkeypatch, True)[1] == -np.inf


# --------------------------------------------------------------------------- small complete data
def _small_problem(k=4, d=3, n=300, far=False, seed=3):
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=4.0, size=(k, d))
    a = rng.normal(size=(k, d, d))
    covs = a @ np.swapaxes(a, 1, 2) / d + 0.3 * np.eye(d)
    if far:  # a tight component far from the data centre: its statistics about its own mean
        means[0] += 3e4
        covs[0] *= 1e-4
    labels = rng.integers(0, k, n)
    z = rng.normal(size=(n, d))
    x = means[labels] + np.einsum("nij,nj->ni", np.linalg.cholesky(covs)[labels], z)
    return x, {"weights": rng.dirichlet(np.full(k, 3.0)), "means": means, "covariances": covs}


def _small_pass(x, w, params, monkeypatch, use_compiled, form="full"):
    from emkit.engine import statistics_pass
    from emkit.models.gaussian import GaussianMixtureModel, data_center

    monkeypatch.setenv("EMKIT_COMPILED", "1" if use_compiled else "0")
    model = GaussianMixtureModel(len(params["weights"]), form, center=data_center(x), has_missing=False)
    taken = []  # the compiled E-step's answers (None: it left the pass to NumPy)
    small_e_step = model._small_e_step
    monkeypatch.setattr(model, "_small_e_step", lambda *args: taken.append(small_e_step(*args)) or taken[-1])
    stats, ll = statistics_pass(model, (x,) if w is None else (x, w), params)
    return stats, ll, any(result is not None for result in taken)


@pytest.mark.parametrize("far", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("k,d", [(1, 1), (3, 2), (4, 3), (9, 2)])
def test_small_data_e_step_equals_numpy(far, weighted, k, d, monkeypatch):
    x, params = _small_problem(k=k, d=d, far=far and k > 1)
    w = np.random.default_rng(1).uniform(0.0, 2.0, len(x)) if weighted else None
    got, ll, taken = _small_pass(x, w, params, monkeypatch, True)
    want, want_ll, numpy_taken = _small_pass(x, w, params, monkeypatch, False)
    assert taken and not numpy_taken
    # (NumPy's expanded quadratic form rounds at about eps |m_k - centre|^2 a row; the loop's
    # whitened form does not)
    assert ll == pytest.approx(want_ll, rel=1e-10)
    # the same reference points (the centre; a far component's rounded mean), so the same sums
    np.testing.assert_allclose(got["ref"] / got["n"][:, None], want["ref"] / want["n"][:, None], rtol=1e-15)
    # (sums that cancel to near 0, as s1 about the centre, agree to rounding of their terms' size)
    spread = np.abs(x - x.mean(axis=0)).max()
    for power, key in enumerate(("n", "s1", "s2")):
        np.testing.assert_allclose(got[key], want[key], rtol=1e-10, atol=1e-12 * len(x) * spread**power,
                                   err_msg=key)
    if far and k > 1:  # the far component's sums are about its own (rounded) mean, 3e4 away
        assert np.abs(got["s1"][0] / got["n"][0]).max() < 1.0


def test_small_data_e_step_for_every_form_that_stores_full_covariances(monkeypatch):
    from emkit.models.covariance import Full
    from emkit.models.gaussian import COVARIANCE_STRUCTURES

    x, params = _small_problem(k=3, d=2)
    forms = [name for name, s in COVARIANCE_STRUCTURES.items() if isinstance(s, Full) and name != "full"]
    assert {"EII", "EEI", "VEI", "EVI", "VEE", "EVE", "VVE", "EEV", "VEV", "EVV", "VVV"} <= set(forms)
    want, want_ll, _ = _small_pass(x, None, params, monkeypatch, False)
    for form in forms:
        got, ll, taken = _small_pass(x, None, params, monkeypatch, True, form)
        assert taken and ll == pytest.approx(want_ll, rel=1e-12), form
        np.testing.assert_allclose(got["s2"], want["s2"], rtol=1e-10, err_msg=form)


@pytest.mark.parametrize("form", ["tied", "diag", "spherical"])
@pytest.mark.parametrize("far", [False, True])
def test_small_data_e_step_of_the_other_structures_equals_numpy(form, far, monkeypatch):
    """tied, diag and spherical take the same loop (their covariances as full matrices); their
    statistics come back in their own layouts (tied: the second moments summed over the
    components, each about its own reference point; diag and spherical: per coordinate)."""
    from emkit.models.covariance import COVARIANCE_STRUCTURES

    x, params = _small_problem(k=3, d=3, far=far)
    covs = params["covariances"]
    params["covariances"] = {"tied": covs[1], "diag": np.diagonal(covs, axis1=1, axis2=2).copy(),
                             "spherical": np.trace(covs, axis1=1, axis2=2) / 3}[form]
    w = np.random.default_rng(2).uniform(0.0, 2.0, len(x))
    got, ll, taken = _small_pass(x, w, params, monkeypatch, True, form)
    want, want_ll, numpy_taken = _small_pass(x, w, params, monkeypatch, False, form)
    assert taken and not numpy_taken
    full = COVARIANCE_STRUCTURES[form].full_matrices(params["covariances"], 3, 3)
    log_joint = np.stack([np.log(params["weights"][k]) + multivariate_normal(params["means"][k], full[k]).logpdf(x)
                          for k in range(3)], axis=1)
    assert ll == pytest.approx(float(np.sum(w * logsumexp(log_joint, axis=1))), rel=1e-10)
    # (far: NumPy's diagonal E-step takes the whitened form there too, see Diag.prepare)
    assert ll == pytest.approx(want_ll, rel=1e-10)
    assert got["s2"].shape == want["s2"].shape == COVARIANCE_STRUCTURES[form].pack_second(np.zeros((3, 3, 3))).shape
    spread = np.abs(x - x.mean(axis=0)).max()
    np.testing.assert_allclose(got["ref"] / got["n"][:, None], want["ref"] / want["n"][:, None], rtol=1e-15)
    for power, key in enumerate(("n", "s1", "s2")):
        np.testing.assert_allclose(got[key], want[key], rtol=1e-10, atol=1e-12 * len(x) * spread**power,
                                   err_msg=key)


def test_small_data_e_step_is_not_taken_for_larger_data(monkeypatch):
    from emkit.models import gaussian

    x, params = _small_problem(k=4, d=3, n=gaussian.SMALL_E_STEP_WORK // (4 * (9 + gaussian.SMALL_E_STEP_TERM)) + 1)
    assert not _small_pass(x, None, params, monkeypatch, True)[2]
    assert _small_pass(x[:-1], None, params, monkeypatch, True)[2]


def test_small_data_e_step_reports_a_covariance_that_is_not_positive_definite(monkeypatch):
    x, params = _small_problem(k=3, d=2)
    params["covariances"][1] = np.array([[1.0, 2.0], [2.0, 1.0]])
    messages = []
    for flag in (True, False):
        with pytest.raises(ValueError, match="covariance of component 1 is not positive definite") as info:
            _small_pass(x, None, params, monkeypatch, flag)
        messages.append(str(info.value))
    assert messages[0] == messages[1]


@pytest.mark.parametrize("form", ["VVV", "EEE", "VEE", "EVE", "VEV", "EEI"])
def test_small_data_fit_is_the_numpy_fit(form, monkeypatch):
    import emkit

    x = emkit.datasets.load_faithful()
    fits = {}
    for flag in ("1", "0"):
        monkeypatch.setenv("EMKIT_COMPILED", flag)
        fits[flag] = emkit.GaussianMixture(3, covariance_type=form, init_params="hc", tol=1e-10).fit(x)
    assert fits["1"].n_iter_ == fits["0"].n_iter_
    assert fits["1"].loglik_ == pytest.approx(fits["0"].loglik_, rel=1e-12)
    np.testing.assert_allclose(fits["1"].means_, fits["0"].means_, rtol=1e-8)
    np.testing.assert_allclose(fits["1"].covariances_, fits["0"].covariances_, rtol=1e-7)


# --------------------------------------------------------------------------- small M-steps
@pytest.mark.parametrize("k,d", [(1, 1), (3, 2), (4, 5), (2, 40)])
def test_small_full_m_step_equals_numpy(k, d, monkeypatch):
    """Full's M-step on small stacks (``scatter_covariances``) gives NumPy's covariances, both
    triangles, the regularisation on the diagonal."""
    from emkit.models.covariance import SMALL_M_STEP_ENTRIES, Full, pack_sym

    rng = np.random.default_rng(k * d)
    a = rng.normal(size=(k, d, d + 2))
    second = a @ np.swapaxes(a, 1, 2) + 5.0
    n = rng.uniform(1.0, 50.0, k)
    s1, about = rng.normal(size=(k, d)), rng.normal(size=(k, d))
    args = (n, n + 1e-15, s1, pack_sym(second), about, 1e-6, d)
    monkeypatch.setenv("EMKIT_COMPILED", "1")
    if not compiled.available():
        pytest.skip("Numba is not installed")
    got = Full().m_step(*args)
    monkeypatch.setenv("EMKIT_COMPILED", "0")
    want = Full().m_step(*args)
    assert k * d * d <= SMALL_M_STEP_ENTRIES
    np.testing.assert_array_equal(got, np.swapaxes(got, 1, 2))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())


def test_objective_pair_equals_numpy():
    """The guard of the iterative mclust M-steps: ``objective_pair`` is ``_objective`` of each
    stack, inf for a stack with a matrix that is not positive definite."""
    from emkit.models import covariance_mclust as cm

    kernels = compiled.kernels()
    if kernels is None:
        pytest.skip("Numba is not installed")
    rng = np.random.default_rng(5)
    for k, d in ((1, 1), (3, 2), (4, 4)):
        a = rng.normal(size=(3, k, d, d))
        s, first, second = (m @ np.swapaxes(m, 1, 2) + 0.1 * np.eye(d) for m in a)
        w = rng.uniform(1.0, 9.0, k)
        out = np.empty(2)
        kernels["mclust_objective_pair"](w, s, first, second, out)
        assert out == pytest.approx([cm._objective(w, s, first), cm._objective(w, s, second)], rel=1e-12)
        second[-1] = -np.eye(d)
        kernels["mclust_objective_pair"](w, s, first, second, out)
        assert out[1] == np.inf == cm._objective(w, s, second)


@pytest.mark.parametrize("structure", ["full", "tied", "diag", "VEE"])
def test_small_m_step_start_equals_numpy(structure, monkeypatch):
    """``m_step_start`` (reference points, weights and steps of a small M-step) gives the NumPy
    M-step's results, with a component at the centre, one about its own far reference point,
    and an empty one (kept out, reported)."""
    from emkit.models.gaussian import COVARIANCE_STRUCTURES

    if not compiled.available():
        pytest.skip("Numba is not installed")
    rng = np.random.default_rng(8)
    k, d = 3, 2
    center = np.array([3.5, 70.0])
    anchors = np.array(center[None].repeat(k, axis=0))
    anchors[1] = [1024.0, -2048.0]  # a far component's rounded mean
    n = np.array([40.0, 25.0, 0.0])  # the third: no responsibility
    s1 = rng.normal(size=(k, d)) * n[:, None] / 10
    a = rng.normal(size=(k, d, d + 3))
    second = (a @ np.swapaxes(a, 1, 2)) * n[:, None, None] / 5 + 1e-3 * np.eye(d)
    st = COVARIANCE_STRUCTURES[structure]
    s2 = st.pack_second(second) if structure != "VEE" else kern.pack_sym(second)
    stats = {"n": n, "s1": s1, "s2": s2, "ref": n[:, None] * anchors}
    current = np.repeat(np.eye(d)[None], k, axis=0)
    results = {}
    for flag in ("1", "0"):
        monkeypatch.setenv("EMKIT_COMPILED", flag)
        results[flag] = kern.m_step_numpy(stats, st, 1e-6, d, center=center,
                                          current=current if structure == "VEE" else None)
    (w1, m1, c1, e1), (w0, m0, c0, e0) = results["1"], results["0"]
    np.testing.assert_array_equal(e1, [2])
    np.testing.assert_array_equal(e1, e0)
    np.testing.assert_allclose(w1, w0, rtol=1e-15)
    np.testing.assert_array_equal(m1[0], m0[0])  # about the centre, exactly (the centre itself)
    np.testing.assert_allclose(m1, m0, rtol=1e-15)
    np.testing.assert_allclose(c1, c0, rtol=1e-10)


@pytest.mark.parametrize("form", ["full", "tied", "diag", "spherical", "VEE"])
def test_small_data_log_joint_equals_numpy(form, monkeypatch):
    """The log joint densities of small data (predictions, scores, the model search's criteria)
    from one compiled call equal NumPy's, and a covariance that is not positive definite still
    gets NumPy's error."""
    from emkit.models.covariance import COVARIANCE_STRUCTURES as FOUR
    from emkit.models.gaussian import COVARIANCE_STRUCTURES, GaussianMixtureModel, data_center

    monkeypatch.setenv("EMKIT_COMPILED", "1")
    if not compiled.available():
        pytest.skip("Numba is not installed")
    x, params = _small_problem(k=3, d=3)
    if form in FOUR and form != "full":
        covs = params["covariances"]
        params["covariances"] = {"tied": covs[1], "diag": np.diagonal(covs, axis1=1, axis2=2).copy(),
                                 "spherical": np.trace(covs, axis1=1, axis2=2) / 3}[form]
    elif form == "VEE":
        params["covariances"] = COVARIANCE_STRUCTURES["VEE"].project(params["covariances"])
    got = {}
    for flag in ("1", "0"):
        monkeypatch.setenv("EMKIT_COMPILED", flag)
        model = GaussianMixtureModel(3, form, center=data_center(x), has_missing=False)
        got[flag] = model.log_joint((x,), params)
    np.testing.assert_allclose(got["1"], got["0"], rtol=1e-10, atol=1e-10)
    if form == "full":
        params["covariances"][1] = np.diag([1.0, -1.0, 1.0])
        for flag in ("1", "0"):
            monkeypatch.setenv("EMKIT_COMPILED", flag)
            model = GaussianMixtureModel(3, form, center=data_center(x), has_missing=False)
            with pytest.raises(ValueError, match="component 1 is not positive definite"):
                model.log_joint((x,), params)
