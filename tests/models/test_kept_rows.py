"""Stacked rows kept between the passes of a fit (GaussianMixtureModel.keep_chunk_work): the
same numbers bit for bit, built once per chunk inside a fit, never outside it or from stale data."""

from __future__ import annotations

import numpy as np
import pytest

import emkit
from emkit.models import gaussian as gaussian_module
from emkit.models.gaussian import GaussianMixtureModel


@pytest.fixture
def builds(monkeypatch):
    """Counts the stacked rows the model builds (calls of the kernel)."""
    calls = {"n": 0}
    original = gaussian_module.kern.stacked_rows

    def counting(*args, **kwargs):
        calls["n"] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(gaussian_module.kern, "stacked_rows", counting)
    return calls


def _data(n=12_000, d=4, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) * rng.uniform(0.5, 2.0, d) + 5.0 * rng.integers(0, 3, (n, 1))
    return x.astype(dtype)


def _fit(x, cov, **kwargs):
    settings = {"tol": 0.0, "max_iter": 6, "random_state": 0, **kwargs}
    return emkit.GaussianMixture(3, covariance_type=cov, **settings).fit(x)


def _same(a, b):
    for name in ("weights_", "means_", "covariances_", "loglik_trace_"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


@pytest.mark.parametrize("cov, dtype", [("full", np.float64), ("diag", np.float64), ("spherical", np.float32),
                                        ("spherical", np.float64), ("VEE", np.float64)])
def test_kept_rows_give_the_same_fit_bit_for_bit(two_threads, builds, monkeypatch, cov, dtype):
    x = _data(dtype=dtype)
    kept = _fit(x, cov, n_init=2)
    kept_builds = builds["n"]
    monkeypatch.setattr(gaussian_module, "KEPT_ROWS_BYTES", 0)
    builds["n"] = 0
    rebuilt = _fit(x, cov, n_init=2)
    _same(kept, rebuilt)
    # kept: once per chunk and restart; rebuilt: once per chunk and pass (two restarts of six
    # iterations: at least 12 fewer; the initialisation's passes run outside the span, alike)
    assert builds["n"] - kept_builds >= 12


def test_a_view_of_larger_data_is_kept(two_threads, builds, monkeypatch):
    wide = _data(d=7)
    x = wide[1000:, 2:6]  # neither C-contiguous nor the owner of its memory
    kept = _fit(x, "diag")
    kept_builds = builds["n"]
    monkeypatch.setattr(gaussian_module, "KEPT_ROWS_BYTES", 0)
    builds["n"] = 0
    _same(kept, _fit(np.ascontiguousarray(x), "diag"))
    assert builds["n"] - kept_builds >= 6


def test_data_over_the_budget_with_missing_values_or_without_products_keep_nothing(builds, monkeypatch):
    x = _data()
    monkeypatch.setattr(gaussian_module, "KEPT_ROWS_BYTES", x.nbytes)  # diag's rows need twice that
    _fit(x, "diag", max_iter=5)
    over_budget = builds["n"]
    monkeypatch.setattr(gaussian_module, "KEPT_ROWS_BYTES", 2 * x.nbytes)
    builds["n"] = 0
    _fit(x, "diag", max_iter=5)
    assert over_budget - builds["n"] >= 5
    holed = x.copy()
    holed[::7, 1] = np.nan
    builds["n"] = 0
    _fit(holed, "diag", max_iter=5)
    assert builds["n"] >= 5  # the complete rows' stacked rows rebuilt every pass
    builds["n"] = 0
    _fit(x, "tied", max_iter=5)  # the centred rows alone: one copy to rebuild, not kept
    assert builds["n"] >= 5


def test_nothing_is_kept_outside_a_fit_or_after_it(builds):
    x = _data(n=3000)
    model = GaussianMixtureModel(3, "diag", has_missing=False).prepare_data((x,))
    params = {"weights": np.full(3, 1 / 3), "means": x[:3].copy(), "covariances": np.ones((3, 4))}
    for _ in range(3):
        model.e_step((x,), params)
    assert builds["n"] == 3
    result = emkit.em(model, (x,), init=params, max_iter=4, tol=0.0)
    assert np.isfinite(result.loglik)
    assert not model._scratch.shared.get("kept_rows")  # let go when the fit ended
    builds["n"] = 0
    model.e_step((x,), params)
    assert builds["n"] == 1


def test_data_changed_between_fits_give_the_new_fit(builds):
    """The same model and the same array, changed in place between two fits: the second fit
    sees the new values (the kept rows live for one run of the engine only)."""
    x = _data(n=3000)
    model = GaussianMixtureModel(3, "diag", has_missing=False).prepare_data((x,))
    params = {"weights": np.full(3, 1 / 3), "means": x[:3].copy(), "covariances": np.ones((3, 4))}
    emkit.em(model, (x,), init=params, max_iter=4, tol=0.0)
    x *= 1.5
    again = emkit.em(model, (x,), init=params, max_iter=4, tol=0.0)
    fresh = emkit.em(model.replace(), (x.copy(),), init=params, max_iter=4, tol=0.0)  # a new model, the same centre
    np.testing.assert_array_equal(again.params["means"], fresh.params["means"])
    assert again.loglik == fresh.loglik
