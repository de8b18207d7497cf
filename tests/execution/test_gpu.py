"""The torch / CuPy checks on a CUDA device: every estimator fits GPU arrays on the GPU and
agrees with NumPy to 1e-8 (float64). Skipped when no CUDA device is available (CI)."""

from __future__ import annotations

import numpy as np
import pytest

import emkit
from emkit.core.arrays import to_numpy
from contract_models import ArrayAPIPoissonMixture
from emkit.estimators.mixture_base import MixtureEstimator

torch = pytest.importorskip("torch")
pytest.importorskip("array_api_compat")

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device available")]


def _cupy_or_skip():
    cupy = pytest.importorskip("cupy")
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            pytest.skip("CuPy sees no CUDA device")
    except Exception as exc:  # noqa: BLE001 - a broken CUDA runtime means no device here
        pytest.skip(f"CuPy cannot reach a CUDA device: {exc}")
    return cupy


def _assert_same_fit(got, expected, is_device_array, describe):
    assert got.n_iter_ == expected.n_iter_
    np.testing.assert_allclose(np.asarray(got.loglik_trace_), expected.loglik_trace_, rtol=1e-8)
    for name, value in expected.params_.items():
        fitted = got.params_[name]
        assert is_device_array(fitted), f"params_[{name!r}] is {type(fitted).__name__}, not {describe}"
        np.testing.assert_allclose(to_numpy(fitted), to_numpy(value), rtol=1e-8, atol=1e-10, err_msg=name)
        public = getattr(got, name + "_", None)
        if public is not None and not (getattr(fitted, "ndim", 1) == 0 and isinstance(public, float)):
            assert is_device_array(public), f"{name}_ is {type(public).__name__}, not {describe}"


def _is_cuda_float64_tensor(x) -> bool:
    return isinstance(x, torch.Tensor) and x.device.type == "cuda" and x.dtype == torch.float64


def test_every_estimator_fits_cuda_tensors_on_the_gpu(estimator_case):
    factory, arrays, fit_kwargs = estimator_case

    def on_gpu(value):
        return torch.as_tensor(value, device="cuda") if isinstance(value, np.ndarray) else value

    expected = factory().fit(*arrays, **fit_kwargs)
    got = factory().fit(*[on_gpu(a) for a in arrays], **{k: on_gpu(v) for k, v in fit_kwargs.items()})
    _assert_same_fit(got, expected, _is_cuda_float64_tensor, "a float64 CUDA tensor")
    if isinstance(got, MixtureEstimator):
        proba = got.predict_proba(on_gpu(arrays[0]))
        assert isinstance(proba, torch.Tensor) and proba.device.type == "cuda"
        np.testing.assert_allclose(to_numpy(proba), to_numpy(expected.predict_proba(arrays[0])), rtol=1e-8, atol=1e-12)


def test_every_estimator_fits_cupy_arrays_on_the_gpu(estimator_case):
    cupy = _cupy_or_skip()
    factory, arrays, fit_kwargs = estimator_case

    def on_gpu(value):
        return cupy.asarray(value) if isinstance(value, np.ndarray) else value

    expected = factory().fit(*arrays, **fit_kwargs)
    got = factory().fit(*[on_gpu(a) for a in arrays], **{k: on_gpu(v) for k, v in fit_kwargs.items()})
    _assert_same_fit(got, expected, lambda x: isinstance(x, cupy.ndarray), "a CuPy array")


def test_gaussian_mixture_float32_stays_float32_on_the_gpu():
    rng = np.random.default_rng(3)
    X = np.concatenate([rng.normal(0, 1, (500, 3)), rng.normal(4, 1, (500, 3))]).astype(np.float32)
    fit64 = emkit.GaussianMixture(2, tol=0, max_iter=10, random_state=0).fit(X.astype(np.float64))
    fit32 = emkit.GaussianMixture(2, tol=0, max_iter=10, random_state=0).fit(torch.as_tensor(X, device="cuda"))
    assert isinstance(fit32.means_, torch.Tensor)
    assert fit32.means_.device.type == "cuda" and fit32.means_.dtype == torch.float32
    # float32 rounding (eps 1.2e-7) over 10 iterations on well-separated clusters: 1e-4 relative.
    np.testing.assert_allclose(to_numpy(fit32.means_), fit64.means_, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("algorithm", ["em", "hard", "stochastic"])
def test_engine_runs_every_algorithm_on_cuda(algorithm):
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.poisson(2.0, 700), rng.poisson(8.0, 300)]).astype(float)
    init = {"weights": np.array([0.5, 0.5]), "rates": np.array([1.0, 4.0])}
    options = dict(tol=0, max_iter=12, algorithm=algorithm, random_state=5, chunk_size=256)
    expected = emkit.em(ArrayAPIPoissonMixture(), (x,), init=init, **options)
    got = emkit.em(ArrayAPIPoissonMixture(), (torch.as_tensor(x, device="cuda"),),
                   init={k: torch.as_tensor(v, device="cuda") for k, v in init.items()}, **options)
    for name in init:
        assert _is_cuda_float64_tensor(got.params[name])
        np.testing.assert_allclose(to_numpy(got.params[name]), expected.params[name], rtol=1e-10)
    np.testing.assert_allclose(got.loglik_trace, expected.loglik_trace, rtol=1e-10)
