"""mclust's fourteen covariance forms (issue 15): the ten of ``emkit.models.covariance_mclust``
(EII, EEI, VEI, EVI, EEV, VEV, EVV, VEE, EVE, VVE) and the four of ``covariance.py``
(VII = spherical, VVI = diag, EEE = tied, VVV = full) against R mclust's fits of Old Faithful
(``tests/data/mclust_reference.json``, made by ``benchmarks/mclust_reference.R``), the model
contract (``check_model``), the M-steps' monotonicity, the free coordinates, and the data paths
(missing values, weights, fixed groups, float32, torch, Dask, SQUAREM).

The models are built with a structure object, ``GaussianMixtureModel(k, covariance_type=EEV())``,
so nothing here depends on the structures being registered by name."""

from __future__ import annotations

import json
import math
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest

from emkit.core.data import Data
from emkit.core.params import ParamSpace
from emkit.datasets import load_faithful
from emkit.engine.em_map import EMMap
from emkit.engine.loop import em
from emkit.models import covariance_mclust as cm
from emkit.models import gaussian_compiled
from emkit.models.covariance import Diag, Full, Spherical, Tied, pack_sym
from emkit.models.covariance_mclust import MCLUST_ALIASES, MCLUST_NAMES, MCLUST_STRUCTURES, MclustCovariance
from emkit.models.gaussian import GaussianMixtureModel, data_center
from emkit.testing import CHECKS, check_model

REFERENCE = json.loads((Path(__file__).parents[1] / "data" / "mclust_reference.json").read_text())
NEW_FORMS = tuple(MCLUST_STRUCTURES)
ITERATIVE = ("VEI", "VEV", "VEE", "EVE", "VVE")
OLD_FORMS = {"VVV": Full(), "EEE": Tied(), "VVI": Diag(), "VII": Spherical()}


def structure(name: str):
    """The emkit structure of one of mclust's fourteen names."""
    return OLD_FORMS[name] if name in OLD_FORMS else MCLUST_STRUCTURES[name]


def covariances_from_mclust(name: str, sigma) -> np.ndarray:
    """mclust's (G, d, d) sigma in the shape of the emkit structure."""
    sigma = np.asarray(sigma, dtype=np.float64)
    if name == "EEE":
        return sigma[0].copy()
    if name == "VVI":
        return np.diagonal(sigma, axis1=1, axis2=2).copy()
    if name == "VII":
        return sigma[:, 0, 0].copy()
    return sigma


def mclust_var_params(name: str, k: int, d: int) -> int:
    """mclust's nVarParams, written out from its source (mclust 6, R/mclust.R)."""
    return {"EII": 1, "VII": k, "EEI": d, "VEI": k + (d - 1), "EVI": 1 + k * (d - 1), "VVI": k * d,
            "EEE": d * (d + 1) // 2, "VEE": k + d * (d + 1) // 2 - 1, "EVE": 1 + k * (d - 1) + d * (d - 1) // 2,
            "VVE": k + k * (d - 1) + d * (d - 1) // 2, "EEV": 1 + (d - 1) + k * d * (d - 1) // 2,
            "VEV": k + (d - 1) + k * d * (d - 1) // 2, "EVV": 1 + k * (d * (d + 1) // 2 - 1),
            "VVV": k * d * (d + 1) // 2}[name]


def random_scatter(rng, k: int, d: int):
    """Weights (K,) and per-component covariances S_k (K, D, D) of different sizes and shapes."""
    a = rng.normal(size=(k, d, d)) * rng.uniform(0.5, 2.0, size=(k, 1, d))
    return rng.uniform(5, 50, k), a @ np.swapaxes(a, 1, 2) + 0.2 * np.eye(d)


def m_step(st, w, s, reg_covar=0.0, current=None, n=None):
    """The structure's M-step from scatter matrices w_k S_k about the means (statistics taken
    about the means: s1 = 0)."""
    k, d = w.shape[0], s.shape[-1]
    n = w if n is None else n
    return st.m_step(n, w, np.zeros((k, d)), pack_sym(w[:, None, None] * s), np.zeros((k, d)), reg_covar, d,
                     current=current)


def random_member(st, rng, k: int, d: int, spread: float = 0.4) -> np.ndarray:
    """Covariances of the form from random free coordinates."""
    size = st.n_parameters(k, d)
    vec = spread * rng.normal(size=size)
    if st.linear_chart:
        vec = np.abs(vec) + 0.5
    return st.from_free(vec, k, d)


def two_groups(n: int, d: int, seed: int = 2, with_nan: bool = False, weights: bool = False) -> Data:
    rng = np.random.default_rng(seed)
    group = rng.random(n) < 0.4
    mix = rng.normal(size=(d, d))
    x = np.where(group[:, None], rng.normal(0.0, 1.0, (n, d)) @ mix + 3.0,
                 rng.normal(0.0, 1.0, (n, d)) * np.arange(1, d + 1))
    if with_nan:
        x[rng.random(x.shape) < 0.1] = np.nan
        x[3] = np.nan  # a row with nothing observed
    w = rng.integers(1, 4, n).astype(float) if weights else None
    return Data(("X", "sample_weight"), (x, w))


# =========================================================================== the reference file
def test_reference_file_records_versions_and_every_fit():
    assert REFERENCE["mclust_version"] and REFERENCE["r_version"].startswith("R version")
    assert REFERENCE["data"]["n"] == 272 and REFERENCE["data"]["d"] == 2
    fits = REFERENCE["fits"]
    assert sorted(fits) == sorted(f"{m},{g}" for m in MCLUST_NAMES for g in range(1, 5))
    assert not [key for key, fit in fits.items() if "error" in fit]
    assert len(REFERENCE["mclustBIC_top3"]) == 3
    assert REFERENCE["prior_EEE_3"]["model"] == "EEE" and math.isfinite(REFERENCE["prior_EEE_3"]["loglik"])
    x = load_faithful()
    assert x.shape == (272, 2)


def test_names_and_aliases():
    assert set(MCLUST_STRUCTURES) | set(MCLUST_ALIASES) == set(MCLUST_NAMES)
    assert {name: OLD_FORMS[name].name for name in OLD_FORMS} == MCLUST_ALIASES
    for name, st in MCLUST_STRUCTURES.items():
        assert st.name == name and repr(st) == f"{name}()" and st.restore_empty is False
        assert GaussianMixtureModel(2, covariance_type=st).covariance_type == name


# =========================================================================== number of parameters
@pytest.mark.parametrize("name", MCLUST_NAMES)
def test_n_parameters_as_mclust(name):
    st = structure(name)
    for d in range(1, 7):
        for k in range(1, 6):
            assert st.n_parameters(k, d) == mclust_var_params(name, k, d), (name, k, d)
    x = load_faithful()
    for g in range(1, 5):
        fit = REFERENCE["fits"][f"{name},{g}"]
        model = GaussianMixtureModel(g, covariance_type=st)
        params = {"weights": np.full(g, 1.0 / g), "means": np.zeros((g, x.shape[1])),
                  "covariances": covariances_from_mclust(name, fit["params"]["sigma"])}
        assert st.n_parameters(g, 2) == fit["n_var_params"]
        assert model.n_parameters(params) == fit["n_params"] == fit["df"]
        # BIC as mclust's: 2 loglik - npar log n (mclust's sign, higher is better)
        assert 2 * fit["loglik"] - fit["n_params"] * math.log(272) == pytest.approx(fit["bic"], abs=1e-8)


# =========================================================================== against mclust
def converge(em_map: EMMap, params: dict, max_iter: int = 4000):
    loglik = em_map.loglik(params)
    for _ in range(max_iter):
        new, _, before = em_map(params)
        after = em_map.loglik(new)
        assert after >= before - 1e-9 * abs(before), "EM decreased the log-likelihood"
        params, loglik = new, after
        if after - before < 1e-13 * abs(after):
            break
    return params, loglik


def largest_relative_difference(a: dict, b: dict) -> float:
    """max over groups of max |a - b| / max |b| (each group relative to its own size)."""
    return max(float(np.max(np.abs(np.asarray(a[g]) - np.asarray(b[g])))) / float(np.max(np.abs(b[g])))
               for g in b)


@pytest.mark.parametrize("key", [f"{m},{g}" for m in MCLUST_NAMES for g in range(1, 5)])
def test_em_from_mclust_fit_reaches_at_least_its_loglik(key):
    """From mclust's fitted parameters (so initialisation does not matter): emkit's
    log-likelihood there is mclust's; EM goes on to at least mclust's log-likelihood; where the
    likelihood is the same, the parameters agree."""
    fit = REFERENCE["fits"][key]
    name, g = fit["model"], fit["G"]
    x = load_faithful()
    model = GaussianMixtureModel(g, covariance_type=structure(name), reg_covar=0.0, center=data_center(x))
    p = fit["params"]
    start = {"weights": np.asarray(p["pro"], dtype=np.float64), "means": np.asarray(p["mean"], dtype=np.float64),
             "covariances": covariances_from_mclust(name, p["sigma"])}
    em_map = EMMap(model, (x,))
    assert em_map.loglik(start) == pytest.approx(fit["loglik"], abs=1e-8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no empty component, nothing odd
        one_step, _, _ = em_map(start)
        final, loglik = converge(em_map, start)
    assert loglik >= fit["loglik"] - 1e-6
    if name in MCLUST_STRUCTURES:
        assert MCLUST_STRUCTURES[name].in_form(final["covariances"])
    gain = loglik - fit["loglik"]
    if gain > 1e-3:
        # mclust 6.0.0's VVE M-step (an MM from the identity orientation, stopped at sqrt(eps))
        # is not exact: emkit's exact one climbs further (mclust's own me() from emkit's
        # optimum goes back down to its value)
        assert name == "VVE" and g >= 2, f"{key}: emkit's log-likelihood exceeds mclust's by {gain}"
        return
    # one step from mclust's fixed point stays there (mclust stopped at 1e-10 relative change)
    assert largest_relative_difference(one_step, start) < 1e-4
    # at convergence: the same parameters, to 1e-4 where EM did not move on along a flat ridge
    tol = 1e-4 if gain < 1e-7 else 1e-3
    assert largest_relative_difference(final, start) < tol


# =========================================================================== the model contract
def torch_float32(n: int, d: int, seed: int) -> Data:
    torch = pytest.importorskip("torch")
    data = two_groups(n, d, seed=seed, weights=True)
    return Data(("X", "sample_weight"), (torch.asarray(data[0].astype(np.float32)),
                                         torch.asarray(data[1].astype(np.float32))))


CHECK_CASES = ([(name, case) for name in NEW_FORMS for case in ("d2", "d3", "d3-missing-weighted")]
               + [(name, "d3-float32") for name in ("VEI", "EEV", "VEE", "EVE", "VVE")]
               + [("VEV", "d2-torch-float32")])  # (check_model on torch is slow whatever the form)


@pytest.mark.parametrize(("name", "case"), CHECK_CASES)
def test_check_model(name, case):
    data = {"d2": lambda: two_groups(100, 2), "d3": lambda: two_groups(100, 3, seed=5),
            "d3-missing-weighted": lambda: two_groups(100, 3, seed=7, with_nan=True, weights=True),
            "d3-float32": lambda: Data(("X", "sample_weight"), (two_groups(150, 3, seed=9)[0].astype(np.float32), None)),
            "d2-torch-float32": lambda: torch_float32(80, 2, seed=8)}[case]()
    k = 3 if case in ("d2", "d3", "d3-float32") else 2
    report = check_model(GaussianMixtureModel(k, covariance_type=MCLUST_STRUCTURES[name]), data)
    expected = [c for c in CHECKS if not (case.endswith("torch-float32") and c == "threads_agree")]
    assert report.passed == expected, str(report)


# =========================================================================== the M-steps
@pytest.mark.parametrize("name", NEW_FORMS)
def test_m_step_is_of_the_form_and_maximises_q(name):
    st = MCLUST_STRUCTURES[name]
    rng = np.random.default_rng(11)
    for d in (2, 3, 4):
        for k in (1, 3):
            w, s = random_scatter(rng, k, d)
            cov = m_step(st, w, s)
            assert st.in_form(cov)
            best = cm._objective(w, s, cov)
            free = st.to_free(cov)
            np.testing.assert_allclose(st.from_free(free, k, d), cov, rtol=1e-12, atol=1e-12 * np.abs(cov).max())
            for j in range(free.size):  # no free coordinate improves it either way
                for h in (1e-4, -1e-4):
                    moved = free.copy()
                    moved[j] += h * max(1.0, abs(free[j]))
                    assert cm._objective(w, s, st.from_free(moved, k, d)) >= best - 1e-12 * abs(best)
            # any other member of the form is no better
            for _ in range(5):
                assert cm._objective(w, s, random_member(st, rng, k, d)) >= best - 1e-12 * abs(best)


@pytest.mark.parametrize("name", NEW_FORMS)
def test_warm_started_m_step_never_lowers_q(name):
    """Generalised EM: from any current covariances of the form, the M-step's Q is at least
    theirs (and, the iterative ones converging to the maximiser, the cold start's)."""
    st = MCLUST_STRUCTURES[name]
    rng = np.random.default_rng(12)
    for d in (2, 3):
        for k in (2, 4):
            w, s = random_scatter(rng, k, d)
            cold = cm._objective(w, s, m_step(st, w, s))
            for _ in range(3):
                current = random_member(st, rng, k, d)
                cov = m_step(st, w, s, current=current)
                assert st.in_form(cov)
                value = cm._objective(w, s, cov)
                assert value <= cm._objective(w, s, current)
                assert value == pytest.approx(cold, rel=1e-11)


@pytest.mark.parametrize("name", ["VEE", "EVE", "VVE"])
def test_each_iteration_of_an_iterative_m_step_lowers_the_objective(name):
    st = MCLUST_STRUCTURES[name]
    rng = np.random.default_rng(13)
    w, s = random_scatter(rng, 3, 4)
    current = random_member(st, rng, 3, 4, spread=1.0)
    values = []
    for iterations in range(1, 12):
        if name == "VEE":
            lam, c = cm._solve_proportional(w, s, st._split(current)[1], max_iter=iterations)
            cov = lam[:, None, None] * c[None]
        else:
            o, lmat = cm._solve_common_orientation(w, s, st.parts(current)[2][0], name == "EVE",
                                                   max_sweeps=iterations)
            cov = cm._compose(np.ones(3), lmat, np.broadcast_to(o, s.shape))
        values.append(cm._objective(w, s, cov))
    assert values[0] <= cm._objective(w, s, current)
    assert all(b <= a + 1e-12 * abs(a) for a, b in zip(values, values[1:]))


@pytest.mark.parametrize("name", ITERATIVE)
def test_compiled_m_step_solvers_equal_the_numpy_ones(name, monkeypatch):
    """The iterative M-steps' compiled loops (emkit.models._mclust_loops) take the NumPy
    functions' steps: the same covariances to rounding, from cold and warm starts, on sizes
    with one pair of columns and with several (EVE and VVE: the Jacobi sweeps; VEI and VEV:
    Newton on the common shape; VEE: the alternation)."""
    monkeypatch.setenv("EMKIT_COMPILED", "1")
    if not gaussian_compiled.available():
        pytest.skip("Numba is not installed")
    st = MCLUST_STRUCTURES[name]
    rng = np.random.default_rng(21)
    for k, d in ((1, 2), (3, 2), (4, 3), (2, 5)):
        w, s = random_scatter(rng, k, d)
        for current in (None, random_member(st, rng, k, d)):
            fits = {}
            for flag in ("1", "0"):
                monkeypatch.setenv("EMKIT_COMPILED", flag)
                fits[flag] = m_step(st, w, s, current=current)
            np.testing.assert_allclose(fits["1"], fits["0"], rtol=1e-9, atol=1e-12 * np.abs(fits["0"]).max())
            assert cm._objective(w, s, fits["1"]) <= cm._objective(w, s, fits["0"]) + 1e-12 * abs(
                cm._objective(w, s, fits["0"]))


@pytest.mark.parametrize("d", [2, 3, 5])
def test_compiled_common_orientation_equals_numpys(d):
    """The common orientation of covariances that share one (EVE and VVE's warm start): the
    compiled loop's eigenvectors, order and signs are ``_common_orientation``'s."""
    kernels = gaussian_compiled.kernels()
    if kernels is None:
        pytest.skip("Numba is not installed")
    rng = np.random.default_rng(d)
    for name in ("EVE", "VVE"):
        current = random_member(MCLUST_STRUCTURES[name], rng, 4, d, spread=1.0)
        o = np.empty((d, d))
        assert kernels["mclust_common_orientation"](current, o) == 0
        np.testing.assert_allclose(o, cm._common_orientation(current), atol=1e-10)
        assert np.linalg.det(o) > 0


def test_common_shape_solver_is_the_global_minimum():
    """VEI / VEV: Newton on the convex profile agrees with a brute-force minimisation."""
    scipy_optimize = pytest.importorskip("scipy.optimize")
    rng = np.random.default_rng(14)
    w = rng.uniform(1, 5, 4)
    b = rng.uniform(0.1, 10.0, (4, 3))
    lam, a = cm._solve_common_shape(w, b)

    def objective(theta):
        u, v = theta[:4], np.append(theta[4:], -theta[4:].sum())
        return float(np.sum(w * (3 * u + (b * np.exp(-u[:, None] - v[None])).sum(axis=1))))

    found = scipy_optimize.minimize(objective, np.zeros(6), method="BFGS", options={"gtol": 1e-10})
    assert objective(np.r_[np.log(lam), np.log(a)[:2]]) <= found.fun + 1e-10
    assert np.prod(a) == pytest.approx(1.0)


@pytest.mark.parametrize("name", NEW_FORMS)
def test_reg_covar_and_fixed_means(name):
    st = MCLUST_STRUCTURES[name]
    rng = np.random.default_rng(15)
    w, s = random_scatter(rng, 3, 3)
    base = m_step(st, w, s)
    reg = m_step(st, w, s, reg_covar=0.25)
    assert st.in_form(reg)
    # reg_covar enters as S_k + reg_covar I before the constrained M-step
    np.testing.assert_allclose(reg, m_step(st, w, s + 0.25 * np.eye(3)), rtol=1e-9)
    if name in ("EII", "EEI"):  # ... which is reg_covar on the result's diagonal for these
        np.testing.assert_allclose(reg, base + 0.25 * np.eye(3), rtol=1e-12)
    # a one-point component (zero scatter) is positive definite with reg_covar > 0
    s0 = s.copy()
    s0[1] = 0.0
    cov = m_step(st, w, s0, reg_covar=1e-3)
    assert np.all(np.linalg.eigvalsh(cov) > 0) and st.in_form(cov)


@pytest.mark.parametrize("name", NEW_FORMS)
def test_empty_component(name):
    """A component with no data keeps the form; the others are as if it were not there."""
    st = MCLUST_STRUCTURES[name]
    rng = np.random.default_rng(16)
    w, s = random_scatter(rng, 3, 3)
    n = w.copy()
    n[1] = 0.0
    nk = n + 10 * np.finfo(np.float64).eps
    current = random_member(st, rng, 3, 3)
    for cur in (None, current):
        cov = st.m_step(n, nk, np.zeros((3, 3)), pack_sym(nk[:, None, None] * s), np.zeros((3, 3)), 0.0, 3,
                        current=cur)
        assert np.all(np.isfinite(cov)) and st.in_form(cov)
        alone = m_step(st, w[[0, 2]], s[[0, 2]])
        np.testing.assert_allclose(cov[[0, 2]], alone, rtol=1e-7, atol=1e-9)


# =========================================================================== the free coordinates
@pytest.mark.parametrize("name", NEW_FORMS)
def test_constraint_free_coordinates(name):
    st = MCLUST_STRUCTURES[name]
    constraint = st.constraint()
    assert isinstance(constraint, MclustCovariance) and repr(constraint) == f"MclustCovariance({name!r})"
    assert constraint == MCLUST_STRUCTURES[name].constraint()
    rng = np.random.default_rng(17)
    for d in (2, 3, 4):
        for k in (1, 3):
            cov = random_member(st, rng, k, d, spread=1.5)
            assert constraint.is_valid(cov) and constraint.is_valid(cov.astype(np.float32))
            assert constraint.n_free(cov.shape) == st.n_parameters(k, d) == constraint.to_free(cov).size
            back = constraint.from_free(constraint.to_free(cov), cov.shape)
            np.testing.assert_allclose(back, cov, rtol=1e-10, atol=1e-10 * np.abs(cov).max())
    # a stack of unrelated full matrices is not of any of these forms
    a = rng.normal(size=(3, 3, 3))
    assert not constraint.is_valid(a @ np.swapaxes(a, 1, 2) + 0.1 * np.eye(3))
    assert not constraint.is_valid(-np.broadcast_to(np.eye(3), (3, 3, 3)))  # not positive definite
    if st.linear_chart:
        jac = constraint.jacobian((3, 3, 3))
        assert jac.shape == (27, st.n_parameters(3, 3))
    else:
        with pytest.raises(NotImplementedError, match="curved parameter space"):
            constraint.jacobian((3, 3, 3))
    assert pickle.loads(pickle.dumps(constraint)) == constraint
    assert pickle.loads(pickle.dumps(st)).name == name


def test_rotation_logarithm_at_half_turns():
    """Orientations whose eigenvalues include -1 (a half turn in a plane: sorting the
    eigenvectors of diag(1, 2, 3, 4) reverses the axes) still have a real logarithm."""
    o = np.eye(4)[::-1]
    np.testing.assert_allclose(cm._rotation_exp(cm._rotation_log(o)), o, atol=1e-14)
    rng = np.random.default_rng(18)
    for d in (2, 3, 5):
        skew = cm._skew_from_free(rng.normal(size=d * (d - 1) // 2), d)
        rot = cm._rotation_exp(skew)
        np.testing.assert_allclose(rot @ rot.T, np.eye(d), atol=1e-14)
        np.testing.assert_allclose(cm._rotation_exp(cm._rotation_log(rot)), rot, atol=1e-13)
    for name in ("EEV", "VEV"):
        st = MCLUST_STRUCTURES[name]
        cov = np.stack([np.diag([1.0, 2.0, 3.0, 4.0]), np.diag([2.0, 4.0, 6.0, 8.0])])
        if name == "EEV":
            cov[1] = cov[0][::-1, ::-1]
        np.testing.assert_allclose(st.from_free(st.to_free(cov), 2, 4), cov, atol=1e-13)


@pytest.mark.parametrize("name", NEW_FORMS)
def test_from_covariance_and_covariances_init(name):
    st = MCLUST_STRUCTURES[name]
    rng = np.random.default_rng(19)
    a = rng.normal(size=(3, 3))
    one = a @ a.T + np.eye(3)
    start = st.from_covariance(one, 4, 3)
    assert start.shape == (4, 3, 3) and st.in_form(start)
    if name == "EII":
        np.testing.assert_allclose(start[0], np.trace(one) / 3 * np.eye(3))
    elif name in ("EEI", "VEI", "EVI"):
        np.testing.assert_allclose(start[0], np.diag(np.diag(one)))
    else:
        np.testing.assert_allclose(start[2], one)
    member = random_member(st, rng, 4, 3)
    np.testing.assert_allclose(st.covariances_from_init(member, "covariances_init"), member, rtol=1e-10)
    np.testing.assert_allclose(st.covariances_from_init(np.linalg.inv(member), "precisions_init"), member,
                               rtol=1e-8)
    b = rng.normal(size=(4, 3, 3))
    with pytest.raises(ValueError, match=f"must be of the form {name}"):
        st.covariances_from_init(b @ np.swapaxes(b, 1, 2) + np.eye(3), "covariances_init")
    with pytest.raises(ValueError, match="positive definite"):
        st.covariances_from_init(-member, "covariances_init")


# =========================================================================== data paths
@pytest.mark.parametrize("name", NEW_FORMS)
def test_data_paths(name):
    """Weights, missing values, fixed groups, float32, torch, Dask and SQUAREM for the form:
    the same fit (float32: to its precision), the covariances of the form."""
    st = MCLUST_STRUCTURES[name]
    data = two_groups(300, 3, seed=21, weights=True)
    x, w = data[0], data[1]
    model = GaussianMixtureModel(2, covariance_type=st, center=data_center(x))
    ref = em(model, (x, w), tol=1e-10, random_state=0, check_monotone="raise")
    init = ref.params
    assert st.in_form(init["covariances"])
    kwargs = dict(init=init, tol=1e-10, max_iter=30, warn_not_converged=False, check_monotone="raise")

    single = em(model, (x.astype(np.float32), w.astype(np.float32)),
                **{**kwargs, "check_monotone": "warn", "init": {key: v.astype(np.float32) for key, v in init.items()}})
    assert single.params["covariances"].dtype == np.float32
    assert single.loglik == pytest.approx(ref.loglik, rel=1e-5)
    assert st.constraint().is_valid(single.params["covariances"])

    squarem = em(model, (x, w), accelerate="squarem", **kwargs)
    assert squarem.loglik == pytest.approx(ref.loglik, abs=1e-6)

    fixed = em(model, (x, w), **{**kwargs, "init": {**init, "means": init["means"] + 0.3}}, fixed=["means"])
    np.testing.assert_array_equal(fixed.params["means"], init["means"] + 0.3)
    assert st.in_form(fixed.params["covariances"])

    missing = x.copy()
    missing[np.random.default_rng(22).random(x.shape) < 0.1] = np.nan
    # (check_monotone off: near convergence the missing-value path of the E-step loses ~1e-11 of
    # the log-likelihood between iterations on this data for `full` as well)
    gappy = em(model.replace(center=data_center(missing)), (missing, w), **{**kwargs, "check_monotone": "off"})
    assert math.isfinite(gappy.loglik) and st.in_form(gappy.params["covariances"])

    torch = pytest.importorskip("torch")
    tensors = em(model, (torch.asarray(x), torch.asarray(w)),
                 **{**kwargs, "init": {key: torch.asarray(v) for key, v in init.items()}})
    assert isinstance(tensors.params["covariances"], torch.Tensor)
    assert tensors.loglik == pytest.approx(ref.loglik, abs=1e-6)

    dask_array = pytest.importorskip("dask.array")
    blocks = em(model, (dask_array.from_array(x, chunks=70), dask_array.from_array(w, chunks=70)), **kwargs)
    assert blocks.loglik == pytest.approx(ref.loglik, abs=1e-6)


def test_sampling_and_free_space_moves_stay_in_the_form():
    """Sampling uses the full matrices; a ParamSpace move (SQUAREM's extrapolation) stays in
    the form."""
    rng = np.random.default_rng(23)
    for name, st in MCLUST_STRUCTURES.items():
        model = GaussianMixtureModel(3, covariance_type=st)
        params = {"weights": np.array([0.2, 0.3, 0.5]), "means": rng.normal(size=(3, 3)) * 4,
                  "covariances": random_member(st, rng, 3, 3)}
        x, labels = model.sample(params, 50, rng)
        assert x.shape == (50, 3) and labels.shape == (50,)
        space = ParamSpace(model.param_spec, params)
        vec = space.to_vector(params)
        assert vec.size == model.n_parameters(params)
        moved = space.from_vector(vec + 0.05 * rng.normal(size=vec.size))
        assert space.is_valid(moved) and st.in_form(moved["covariances"])
