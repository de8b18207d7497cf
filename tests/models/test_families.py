"""Component families: log-densities against scipy.stats, additive statistics, weighted MLEs in
closed form, scale invariance of the M-step, and the same numbers through torch."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as st

from emkit.models import families as fam

RNG = np.random.default_rng(0)
N = 40


def _cases():
    x_norm = RNG.normal(size=(N, 2))
    x_count = RNG.poisson(3.0, size=(N, 2)).astype(float)
    x_exp = RNG.exponential(2.0, size=(N, 2))
    x_bin = (RNG.random((N, 3)) < 0.4).astype(float)
    codes = RNG.integers(0, 3, size=(N, 2)).astype(float)
    succ = RNG.binomial(np.arange(N) % 7 + 1, 0.3).astype(float)
    trials = (np.arange(N) % 7 + 1).astype(float)
    cov = np.array([[[1.0, 0.3], [0.3, 2.0]], [[0.5, -0.1], [-0.1, 0.4]]])
    return {
        "normal": (fam.Normal(), (x_norm,), {"means": np.array([[0.0, 1.0], [-1.0, 0.5]]),
                                             "variances": np.array([[1.0, 2.0], [0.5, 0.3]])}),
        "mvn": (fam.MultivariateNormal(), (x_norm,), {"means": np.array([[0.0, 1.0], [-1.0, 0.5]]),
                                                      "covariances": cov}),
        "poisson": (fam.Poisson(), fam.Poisson().make_data(x_count), {"rates": np.array([[1.0, 4.0], [2.5, 0.5]])}),
        "exponential": (fam.ExponentialFamily(), (x_exp,), {"rates": np.array([[0.5, 1.0], [2.0, 0.3]])}),
        "bernoulli": (fam.Bernoulli(), (x_bin,), {"probs": np.array([[0.2, 0.5, 0.9], [0.6, 0.1, 0.4]])}),
        "categorical": (fam.Categorical(3), fam.Categorical(3).make_data(codes),
                        {"probs": np.array([[[0.2, 0.3, 0.5], [0.6, 0.2, 0.2]], [[0.1, 0.1, 0.8], [0.3, 0.3, 0.4]]])}),
        "binomial": (fam.Binomial(), fam.Binomial().make_data(succ, trials=trials), {"probs": np.array([0.2, 0.6])}),
    }


CASES = _cases()


def scipy_log_density(name, data, params):
    x = data[0]
    if name == "normal":
        return np.stack([st.norm.logpdf(x, params["means"][k], np.sqrt(params["variances"][k])).sum(1)
                         for k in range(2)], axis=1)
    if name == "mvn":
        return np.stack([st.multivariate_normal.logpdf(x, params["means"][k], params["covariances"][k])
                         for k in range(2)], axis=1)
    if name == "poisson":
        return np.stack([st.poisson.logpmf(x, params["rates"][k]).sum(1) for k in range(2)], axis=1)
    if name == "exponential":
        return np.stack([st.expon.logpdf(x, scale=1 / params["rates"][k]).sum(1) for k in range(2)], axis=1)
    if name == "bernoulli":
        return np.stack([st.bernoulli.logpmf(x, params["probs"][k]).sum(1) for k in range(2)], axis=1)
    if name == "categorical":
        codes = x.reshape(N, 2, 3).argmax(axis=2)
        p = params["probs"]
        return np.stack([np.log(p[k, 0, codes[:, 0]]) + np.log(p[k, 1, codes[:, 1]]) for k in range(2)], axis=1)
    if name == "binomial":
        s, t = data[0], data[1]
        return np.stack([st.binom.logpmf(s, t, params["probs"][k]) for k in range(2)], axis=1)
    raise AssertionError(name)


@pytest.mark.parametrize("name", list(CASES))
def test_log_density_matches_scipy(name):
    family, data, params = CASES[name]
    np.testing.assert_allclose(family.log_density(data, params), scipy_log_density(name, data, params),
                               rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", list(CASES))
def test_statistics_are_additive_and_m_step_is_scale_invariant(name):
    family, data, params = CASES[name]
    resp = RNG.dirichlet([1.0, 1.0], size=N)
    whole = family.stats(data, resp)
    first = family.stats(tuple(a[:15] for a in data), resp[:15])
    rest = family.stats(tuple(a[15:] for a in data), resp[15:])
    for key in whole:
        np.testing.assert_allclose(first[key] + rest[key], whole[key], rtol=1e-12)
    whole["n"] = resp.sum(0)
    scaled = {k: 7.5 * v for k, v in whole.items()}
    a, b = family.m_step(whole, params), family.m_step(scaled, params)
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-12)


@pytest.mark.parametrize("name", list(CASES))
def test_weighted_mle_of_a_hard_assignment_is_the_per_group_closed_form(name):
    family, data, params = CASES[name]
    labels = np.arange(N) % 2
    resp = np.eye(2)[labels]
    stats = family.stats(data, resp)
    stats["n"] = resp.sum(0)
    est = family.m_step(stats, params)
    x = data[0]
    for k in range(2):
        rows = labels == k
        if name == "normal":
            np.testing.assert_allclose(est["means"][k], x[rows].mean(0), rtol=1e-12)
            np.testing.assert_allclose(est["variances"][k], x[rows].var(0) + 1e-6, rtol=1e-10)
        elif name == "mvn":
            np.testing.assert_allclose(est["covariances"][k], np.cov(x[rows].T, bias=True) + 1e-6 * np.eye(2),
                                       rtol=1e-10)
        elif name == "poisson":
            np.testing.assert_allclose(est["rates"][k], x[rows].mean(0), rtol=1e-12)
        elif name == "exponential":
            np.testing.assert_allclose(est["rates"][k], 1 / x[rows].mean(0), rtol=1e-12)
        elif name == "bernoulli":
            np.testing.assert_allclose(est["probs"][k], x[rows].mean(0), rtol=1e-12)
        elif name == "categorical":
            np.testing.assert_allclose(est["probs"][k], x[rows].mean(0).reshape(2, 3), rtol=1e-12)
        elif name == "binomial":
            assert est["probs"][k] == pytest.approx(data[0][rows].sum() / data[1][rows].sum(), rel=1e-12)


@pytest.mark.parametrize("name", list(CASES))
def test_complete_loglik_equals_responsibility_weighted_log_density(name):
    family, data, params = CASES[name]
    resp = RNG.dirichlet([1.0, 1.0], size=N)
    stats = family.stats(data, resp)
    stats["n"] = resp.sum(0)
    expected = float(np.sum(resp * scipy_log_density(name, data, params)))
    assert family.complete_loglik(stats, params) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("name", list(CASES))
def test_torch_gives_the_same_numbers_and_keeps_float32(name):
    torch = pytest.importorskip("torch")
    family, data, params = CASES[name]
    t_data = tuple(torch.tensor(a) for a in data)
    t_params = {k: torch.tensor(v) for k, v in params.items()}
    np.testing.assert_allclose(family.log_density(t_data, t_params).numpy(), family.log_density(data, params),
                               rtol=1e-12, atol=1e-12)
    f32 = family.log_density(tuple(a.float() for a in t_data), {k: v.float() for k, v in t_params.items()})
    assert f32.dtype == torch.float32
    np.testing.assert_allclose(f32.numpy(), family.log_density(data, params), rtol=1e-4, atol=1e-3)


def test_make_data_keeps_torch_tensors_and_computes_constants_in_their_library():
    torch = pytest.importorskip("torch")
    x = torch.tensor([0.0, 1.0, 4.0], dtype=torch.float32)
    data = fam.Poisson().make_data(x)
    assert all(isinstance(a, torch.Tensor) and a.dtype == torch.float32 for a in data)
    np.testing.assert_allclose(data[1].numpy(), -np.log([1.0, 1.0, 24.0]), rtol=1e-6)
    s, t, log_coef = fam.Binomial().make_data(torch.tensor([2.0, 3.0]), trials=5)
    np.testing.assert_allclose(log_coef.numpy(), np.log([10.0, 10.0]), rtol=1e-6)


def test_helpers_on_dask():
    da = pytest.importorskip("dask.array")
    x = da.from_array(np.array([0.0, 1.0, 4.0]), chunks=2)
    np.testing.assert_allclose(fam.lgamma(x + 1).compute(), np.log([1.0, 1.0, 24.0]))
    assert fam.safe_log(np.array([0.0, 1.0]))[0] == pytest.approx(np.log(np.finfo(float).tiny))


def test_categorical_parameter_count_uses_each_column_categories():
    family = fam.Categorical([2, 4])
    probs = np.full((3, 2, 4), 0.25)
    assert family.n_parameters({"probs": probs}) == 3 * (1 + 3)
    assert family.n_parameters({"probs": probs}, fixed=("probs",)) == 0


def test_unknown_family():
    with pytest.raises(ValueError, match="unknown family 'gamma'"):
        fam.get_family("gamma")
    assert isinstance(fam.get_family("Poisson"), fam.Poisson)


@pytest.mark.gpu
@pytest.mark.parametrize("name", list(CASES))
def test_cuda_tensors_give_the_same_numbers(name):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    family, data, params = CASES[name]
    t_data = tuple(torch.tensor(a, device="cuda") for a in data)
    t_params = {k: torch.tensor(v, device="cuda") for k, v in params.items()}
    out = family.log_density(t_data, t_params)
    assert out.device.type == "cuda"
    np.testing.assert_allclose(out.cpu().numpy(), family.log_density(data, params), rtol=1e-10, atol=1e-10)
