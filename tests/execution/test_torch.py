"""torch (CPU, float64) through the array-API kernels: the same fit as NumPy, in torch.

Each public estimator fits a torch tensor from the same start as its NumPy fit; the fit must
stay in torch (fitted parameters and the public ``<group>_`` attributes are tensors) and agree
with NumPy to 1e-8. The engine itself is checked with a model written against the array API.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("array_api_compat")

import emkit  # noqa: E402
from emkit.core.arrays import to_numpy  # noqa: E402
from contract_models import ArrayAPIPoissonMixture  # noqa: E402
from emkit.estimators.mixture_base import MixtureEstimator  # noqa: E402


def as_torch(value, device="cpu"):
    return torch.as_tensor(value, device=device) if isinstance(value, np.ndarray) else value


def assert_fit_in_torch_equals_numpy(got, expected, device="cpu"):
    """Shared by the CPU and CUDA tests: same iterations, torch parameters on ``device``,
    equal to NumPy's to 1e-8 (float64)."""
    assert got.n_iter_ == expected.n_iter_
    np.testing.assert_allclose(np.asarray(got.loglik_trace_), expected.loglik_trace_, rtol=1e-8)
    for name, value in expected.params_.items():
        fitted = got.params_[name]
        assert isinstance(fitted, torch.Tensor), f"params_[{name!r}] is {type(fitted).__name__}, not a torch tensor"
        assert fitted.device.type == device and fitted.dtype == torch.float64
        np.testing.assert_allclose(to_numpy(fitted), to_numpy(value), rtol=1e-8, atol=1e-10, err_msg=name)
        public = getattr(got, name + "_", None)
        if public is None:  # the estimator publishes the group under another name
            continue
        if fitted.ndim == 0 and isinstance(public, float):  # a scalar (Exponential.rate_) is a float
            assert public == pytest.approx(float(to_numpy(value)), rel=1e-8)
        else:
            assert isinstance(public, torch.Tensor), f"{name}_ is {type(public).__name__}, not a torch tensor"


def test_every_estimator_fits_torch_tensors_in_torch(estimator_case):
    factory, arrays, fit_kwargs = estimator_case
    expected = factory().fit(*arrays, **fit_kwargs)
    got = factory().fit(*[as_torch(a) for a in arrays], **{k: as_torch(v) for k, v in fit_kwargs.items()})
    assert_fit_in_torch_equals_numpy(got, expected)
    if isinstance(got, MixtureEstimator):
        # Predictions on torch input stay in torch and match NumPy's.
        proba = got.predict_proba(as_torch(arrays[0]))
        assert isinstance(proba, torch.Tensor)
        np.testing.assert_allclose(to_numpy(proba), to_numpy(expected.predict_proba(arrays[0])), rtol=1e-8, atol=1e-12)


def test_gaussian_mixture_keeps_float32_tensors_in_float32():
    rng = np.random.default_rng(3)
    X = np.concatenate([rng.normal(0, 1, (500, 3)), rng.normal(4, 1, (500, 3))]).astype(np.float32)
    fit64 = emkit.GaussianMixture(2, tol=0, max_iter=10, random_state=0).fit(X.astype(np.float64))
    fit32 = emkit.GaussianMixture(2, tol=0, max_iter=10, random_state=0).fit(torch.as_tensor(X))
    assert isinstance(fit32.means_, torch.Tensor) and fit32.means_.dtype == torch.float32
    # float32 rounding (eps 1.2e-7) over 10 iterations on well-separated clusters: 1e-4 relative.
    np.testing.assert_allclose(to_numpy(fit32.means_), fit64.means_, rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------- the engine alone
def test_engine_runs_an_array_api_model_in_torch_and_matches_numpy():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.poisson(2.0, 700), rng.poisson(8.0, 300)]).astype(float)
    init = {"weights": np.array([0.5, 0.5]), "rates": np.array([1.0, 4.0])}
    options = dict(tol=1e-12, stop="params_maxabs", max_iter=5000)
    expected = emkit.em(ArrayAPIPoissonMixture(), (x,), init=init, **options)
    got = emkit.em(ArrayAPIPoissonMixture(), (torch.as_tensor(x),),
                   init={k: torch.as_tensor(v) for k, v in init.items()},
                   chunk_size=256, **options)  # chunked statistics pass on torch too
    assert got.converged and got.n_iter == expected.n_iter
    for name in init:
        assert isinstance(got.params[name], torch.Tensor)
        np.testing.assert_allclose(to_numpy(got.params[name]), expected.params[name], rtol=1e-10)
    np.testing.assert_allclose(got.loglik_trace, expected.loglik_trace, rtol=1e-10)
    # The fixed point is the mixture MLE: the score in each rate is zero there.
    w, lam = expected.params["weights"], expected.params["rates"]
    dens = w * lam**x[:, None] * np.exp(-lam)
    post = dens / dens.sum(1, keepdims=True)
    np.testing.assert_allclose((post * (x[:, None] / lam - 1)).sum(0), 0, atol=1e-6)


@pytest.mark.parametrize("algorithm", ["hard", "stochastic"])
def test_hard_and_stochastic_em_run_in_torch(algorithm):
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.poisson(2.0, 700), rng.poisson(8.0, 300)]).astype(float)
    init = {"weights": np.array([0.5, 0.5]), "rates": np.array([1.0, 4.0])}
    options = dict(tol=0, max_iter=12, algorithm=algorithm, random_state=5)
    expected = emkit.em(ArrayAPIPoissonMixture(), (x,), init=init, **options)
    got = emkit.em(ArrayAPIPoissonMixture(), (torch.as_tensor(x),),
                   init={k: torch.as_tensor(v) for k, v in init.items()}, **options)
    # Same generator, same draws: the torch run repeats the NumPy run.
    for name in init:
        assert isinstance(got.params[name], torch.Tensor)
        np.testing.assert_allclose(to_numpy(got.params[name]), expected.params[name], rtol=1e-10)
    if algorithm == "hard":
        # Hard EM's fixed point: each rate is the mean of the counts assigned to it.
        lam = expected.params["rates"]
        w = expected.params["weights"]
        labels = np.argmax(np.log(w) + x[:, None] * np.log(lam) - lam, axis=1)
        np.testing.assert_allclose(lam, [x[labels == k].mean() for k in range(2)], rtol=1e-12)
