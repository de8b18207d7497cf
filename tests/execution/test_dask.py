"""Dask execution: one distributed statistics pass per EM iteration, for any model.

Runs on a real ``LocalCluster`` of worker processes (``conftest.dask_cluster``). Results must
equal the in-memory NumPy fit from the same start to 1e-10, survive a worker killed mid-fit,
and fit on-disk data (Zarr, Parquet) with the client's memory bounded as the data grows 10x.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import tracemalloc

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
pytest.importorskip("distributed")
cloudpickle = pytest.importorskip("cloudpickle")

import contract_models  # noqa: E402
import emkit  # noqa: E402
from contract_models import TwoPoisson  # noqa: E402
from emkit.execution.dask import dask_statistics_pass, row_blocks  # noqa: E402

# Worker processes cannot import the test modules, so their model classes travel by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])
cloudpickle.register_pickle_by_value(contract_models)


# --------------------------------------------------------------------------- test models
class DiagonalGaussianMixture(emkit.DiscreteLatentModel):
    """K-component Gaussian mixture with diagonal covariances (statistics: counts, sums,
    sums of squares per component). ``chunk_rows`` keeps one task's memory small."""

    param_spec = {"weights": emkit.Simplex(), "means": emkit.Real(), "variances": emkit.Positive()}

    def __init__(self, n_components=2):
        self.n_components = n_components

    def initialize(self, data, rng):
        from emkit.core.arrays import host_rows
        sample = host_rows(data[0], 500, rng)
        k = self.n_components
        return {"weights": np.full(k, 1.0 / k),
                "means": sample[rng.choice(len(sample), k, replace=False)],
                "variances": np.tile(sample.var(axis=0), (k, 1))}

    def log_joint(self, data, params):
        x = data[0]
        mu, var = params["means"], params["variances"]
        quad = ((x[:, None, :] - mu[None]) ** 2 / var[None]).sum(-1)
        return np.log(params["weights"]) - 0.5 * (quad + np.log(2 * np.pi * var).sum(-1))

    def stats_from_responsibilities(self, data, resp):
        x = data[0]
        return {"n": resp.sum(0), "sx": resp.T @ x, "sxx": resp.T @ (x * x)}

    def m_step(self, stats, params):
        n = stats["n"]
        means = stats["sx"] / n[:, None]
        return {"weights": n / n.sum(), "means": means,
                "variances": stats["sxx"] / n[:, None] - means**2}

    def chunk_rows(self, data):
        return 20_000


# --------------------------------------------------------------------------- data
@pytest.fixture(scope="module")
def counts():
    """Poisson(2) / Poisson(9) mixture, 5000 rows, with integer multiplicities 1-2."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.poisson(2.0, 3000), rng.poisson(9.0, 2000)]).astype(float)
    w = rng.integers(1, 3, x.size).astype(float)
    return x, w


POISSON_INIT = {"weights": np.array([0.5, 0.5]), "rates": np.array([1.0, 5.0])}


def assert_same_fit(got, expected, rtol=1e-10):
    assert got.n_iter == expected.n_iter
    np.testing.assert_allclose(got.loglik_trace, expected.loglik_trace, rtol=rtol, atol=0)
    for name, value in expected.params.items():
        np.testing.assert_allclose(np.asarray(got.params[name]), value, rtol=rtol, atol=1e-13)


# --------------------------------------------------------------------------- equality with NumPy
def test_cluster_fit_equals_numpy_fit(dask_client, counts):
    x, w = counts
    expected = emkit.em(TwoPoisson(), (x, w), init=POISSON_INIT, tol=0, max_iter=12)
    # Rows chunked differently in the two arrays, one of them NumPy: all are aligned.
    data = (da.from_array(x, chunks=700), da.from_array(w, chunks=1100))
    got = emkit.em(TwoPoisson(), data, init=POISSON_INIT, tol=0, max_iter=12)
    assert_same_fit(got, expected)
    mixed = emkit.em(TwoPoisson(), (da.from_array(x, chunks=900), w), init=POISSON_INIT, tol=0, max_iter=12)
    assert_same_fit(mixed, expected)
    # Sanity on the numbers themselves: the fit is near the generating rates 2 and 9.
    assert got.params["rates"] == pytest.approx([2.0, 9.0], abs=0.25)


def test_one_pass_statistics_equal_in_memory_statistics(dask_client, counts):
    x, w = counts
    params = {"weights": np.array([0.3, 0.7]), "rates": np.array([2.5, 7.0])}
    stats, ll = dask_statistics_pass(TwoPoisson(), (da.from_array(x, chunks=313), da.from_array(w, chunks=313)),
                                     params)
    expected_stats, expected_ll = TwoPoisson().e_step((x, w), params)
    assert ll == pytest.approx(expected_ll, rel=1e-12)
    for key in expected_stats:
        np.testing.assert_allclose(stats[key], expected_stats[key], rtol=1e-12)
    # 16 blocks reduced in a tree of fan-in 8: still the plain sum.
    assert len(row_blocks((da.from_array(x, chunks=313),))) == 16


def test_local_threaded_scheduler_gives_the_same_fit(counts):
    x, w = counts
    expected = emkit.em(TwoPoisson(), (x, w), init=POISSON_INIT, tol=1e-10, max_iter=500)
    with dask.config.set(scheduler="threads"):
        got = emkit.em(TwoPoisson(), (da.from_array(x, chunks=1000), da.from_array(w, chunks=1000)),
                       init=POISSON_INIT, tol=1e-10, max_iter=500)
    assert got.converged and expected.converged
    assert_same_fit(got, expected)


class _ThreadRecordingPoisson(TwoPoisson):
    """TwoPoisson that names the threads its E-step ran on, with a given smallest task."""

    def __init__(self, min_rows):
        self.min_rows = min_rows
        self.threads = set()

    def min_chunk_rows(self, data):
        return self.min_rows

    def e_step(self, data, params):
        self.threads.add(threading.current_thread().name)
        return super().e_step(data, params)


def test_small_blocks_on_the_local_thread_pool_run_in_turn_on_the_calling_thread(counts):
    x, w = counts
    params = {"weights": np.array([0.3, 0.7]), "rates": np.array([2.5, 7.0])}
    data = (da.from_array(x, chunks=500), da.from_array(w, chunks=500))
    expected_stats, expected_ll = TwoPoisson().e_step((x, w), params)
    small = _ThreadRecordingPoisson(min_rows=10_000)  # blocks of 500 < half of 10,000
    large = _ThreadRecordingPoisson(min_rows=100)
    with dask.config.set(scheduler="threads", num_workers=2):
        for model in (small, large):
            stats, ll = dask_statistics_pass(model, data, params)
            assert ll == pytest.approx(expected_ll, rel=1e-12)
            for key in expected_stats:
                np.testing.assert_allclose(stats[key], expected_stats[key], rtol=1e-12)
    assert small.threads == {threading.current_thread().name}
    assert threading.current_thread().name not in large.threads


def test_initialisation_and_restarts_match_numpy(dask_client):
    """The model's initialisation draws from the same generator (host_rows) and the plain
    pass consumes no random numbers, so restarts pick the same starts as the NumPy fit."""
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.normal(0, 1, (1500, 2)), rng.normal(4, 1, (1000, 2))])
    expected = emkit.em(DiagonalGaussianMixture(), (x,), n_init=2, random_state=11, tol=0, max_iter=8)
    got = emkit.em(DiagonalGaussianMixture(), (da.from_array(x, chunks=(400, 2)),), n_init=2,
                   random_state=11, tol=0, max_iter=8)
    assert got.best_restart == expected.best_restart
    assert_same_fit(got, expected)


def test_hard_em_on_the_cluster_equals_numpy(dask_client, counts):
    x, w = counts
    expected = emkit.em(TwoPoisson(), (x, w), init=POISSON_INIT, tol=0, max_iter=10, algorithm="hard")
    got = emkit.em(TwoPoisson(), (da.from_array(x, chunks=800), da.from_array(w, chunks=800)),
                   init=POISSON_INIT, tol=0, max_iter=10, algorithm="hard")
    assert_same_fit(got, expected)


def test_stochastic_em_draws_per_block_so_any_scheduler_gives_the_same_fit(dask_client, counts):
    x, w = counts[0][::5], counts[1][::5]  # 1000 rows: stochastic EM draws row by row
    data = (da.from_array(x, chunks=250), da.from_array(w, chunks=250))
    options = dict(init=POISSON_INIT, max_iter=20, algorithm="stochastic", random_state=3)
    on_cluster = emkit.em(TwoPoisson(), data, **options)
    with dask.config.set(scheduler="sync"):
        in_process = emkit.em(TwoPoisson(), data, **options)
    assert_same_fit(on_cluster, in_process, rtol=0)
    other_seed = emkit.em(TwoPoisson(), data, **{**options, "random_state": 4})
    assert not np.array_equal(other_seed.params["rates"], on_cluster.params["rates"])
    # The averaged stochastic iterate estimates the MLE: each rate's standard error is about
    # sqrt(rate / n_k) <= sqrt(9 / 600) = 0.12 here; the draws add at most as much again
    # after averaging 10 iterates, so 0.5 is > 3 combined standard errors.
    mle = emkit.em(TwoPoisson(), (x, w), init=POISSON_INIT, tol=1e-10, max_iter=500)
    np.testing.assert_allclose(on_cluster.params["rates"], mle.params["rates"], atol=0.5)


# --------------------------------------------------------------------------- fault tolerance
def test_worker_killed_mid_fit_changes_nothing(dask_cluster, dask_client, counts):
    x, w = counts
    expected = emkit.em(TwoPoisson(), (x, w), init=POISSON_INIT, tol=0, max_iter=12)
    # Data held in the workers' memory: the killed worker's blocks are lost and recomputed.
    X, W = dask_client.persist([da.from_array(x, chunks=500), da.from_array(w, chunks=500)])
    killed = []

    def kill_a_worker(iteration, params, loglik):
        if iteration == 4:
            address, pid = sorted(dask_client.run(os.getpid).items())[0]
            os.kill(pid, signal.SIGKILL)
            killed.append(address)

    got = emkit.em(TwoPoisson(), (X, W), init=POISSON_INIT, tol=0, max_iter=12, callback=kill_a_worker)
    assert killed
    assert_same_fit(got, expected)
    # The nanny brings the worker back.
    dask_client.wait_for_workers(2, timeout=60)
    assert len(dask_client.scheduler_info()["workers"]) == 2


class SlowTwoPoisson(TwoPoisson):
    """TwoPoisson whose E-step takes 0.1 s per block, so a pass lasts long enough to kill a
    worker while it is computing."""

    def e_step(self, data, params):
        time.sleep(0.1)
        return super().e_step(data, params)


def test_worker_killed_during_a_statistics_pass_changes_nothing(dask_client, counts):
    x, w = counts
    expected = emkit.em(TwoPoisson(), (x, w), init=POISSON_INIT, tol=0, max_iter=4)
    data = (da.from_array(x, chunks=625), da.from_array(w, chunks=625))  # 8 blocks: a 0.4 s pass
    pid_of = dict(dask_client.run(os.getpid))
    killed = []

    def kill_soon(iteration, params, loglik):
        if iteration == 2:  # the pass of iteration 3 starts right after this callback
            address, pid = sorted(pid_of.items())[0]
            timer = threading.Timer(0.15, lambda: (os.kill(pid, signal.SIGKILL), killed.append(address)))
            timer.start()

    got = emkit.em(SlowTwoPoisson(), data, init=POISSON_INIT, tol=0, max_iter=4, callback=kill_soon)
    assert killed
    assert_same_fit(got, expected)
    dask_client.wait_for_workers(2, timeout=60)
    assert set(dict(dask_client.run(os.getpid)).values()).isdisjoint({pid_of[killed[0]]})


# --------------------------------------------------------------------------- out of core
def _write_zarr_mixture(path, n_rows, seed, chunk_rows=50_000):
    """A 3-column two-cluster data set written to Zarr by the workers (never in the client)."""
    rng = da.random.default_rng(seed)
    labels = rng.integers(0, 2, size=n_rows, chunks=chunk_rows)
    noise = rng.normal(size=(n_rows, 3), chunks=(chunk_rows, 3))
    X = noise + da.where(labels[:, None] == 1, 3.0, 0.0)
    X.to_zarr(str(path))
    return da.from_zarr(str(path))


GAUSS_INIT = {"weights": np.array([0.5, 0.5]),
              "means": np.array([[-1.0, 0.0, 0.5], [2.0, 2.5, 4.0]]),
              "variances": np.ones((2, 3))}


def _client_peak_while_fitting(X):
    """Peak bytes allocated in the client process (all threads, the LocalCluster's scheduler
    included, which makes the bound conservative) above its level at the start of the fit,
    and the fit."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    fit = emkit.em(DiagonalGaussianMixture(), (X,), init=GAUSS_INIT, tol=0, max_iter=3)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak, fit


def test_out_of_core_zarr_fit_keeps_client_memory_bounded(dask_client, tmp_path):
    small = _write_zarr_mixture(tmp_path / "small.zarr", 200_000, seed=1)
    large = _write_zarr_mixture(tmp_path / "large.zarr", 2_000_000, seed=2)
    large_bytes = large.nbytes  # 48 MB
    peak_small, fit_small = _client_peak_while_fitting(small)
    peak_large, fit_large = _client_peak_while_fitting(large)
    # Loading the data whole would cost the client >= 48 MB; ten times the rows must cost
    # far less than ten times the memory: only the per-block graph and the scheduler's task
    # records grow, with the number of blocks (measured: 1.3 MB for N, 3.3 MB for 10 N).
    assert peak_large < 0.15 * large_bytes, (peak_small, peak_large)
    assert peak_large < 3 * peak_small + 2_000_000, (peak_small, peak_large)
    # And the on-disk fit is the in-memory fit.
    expected = emkit.em(DiagonalGaussianMixture(), (np.asarray(small),), init=GAUSS_INIT, tol=0, max_iter=3)
    assert_same_fit(fit_small, expected)
    # Three iterations from this start already separate the clusters at 0 and 3.
    np.testing.assert_allclose(fit_large.params["weights"], [0.5, 0.5], atol=0.01)


def test_parquet_dataframe_fit_equals_numpy_fit(dask_client, tmp_path):
    dd = pytest.importorskip("dask.dataframe")
    pytest.importorskip("pyarrow")
    X = _write_zarr_mixture(tmp_path / "x.zarr", 30_000, seed=3, chunk_rows=7_500)
    dd.from_dask_array(X, columns=["a", "b", "c"]).to_parquet(str(tmp_path / "x.parquet"))
    frame = dd.read_parquet(str(tmp_path / "x.parquet"))
    got = emkit.em(DiagonalGaussianMixture(), (frame.to_dask_array(lengths=True),), init=GAUSS_INIT,
                   tol=0, max_iter=3)
    expected = emkit.em(DiagonalGaussianMixture(), (np.asarray(X),), init=GAUSS_INIT, tol=0, max_iter=3)
    assert_same_fit(got, expected)


# --------------------------------------------------------------------------- bad input
def test_misaligned_row_counts_are_a_clear_error(counts):
    x, w = counts
    with pytest.raises(ValueError, match="same number of rows.*5000.*4999"):
        row_blocks((da.from_array(x, chunks=1000), w[:-1]))


def test_unknown_chunk_sizes_are_a_clear_error(counts):
    x, _ = counts
    filtered = da.from_array(x, chunks=1000)
    filtered = filtered[filtered > 3]  # row count unknown until computed
    with pytest.raises(ValueError, match="unknown row chunk sizes.*compute_chunk_sizes"):
        emkit.em(TwoPoisson(), (filtered, filtered), init=POISSON_INIT, max_iter=2)


def test_scalar_in_the_data_tuple_is_a_clear_error(counts):
    x, _ = counts
    with pytest.raises(ValueError, match="data array 1 is a scalar"):
        row_blocks((da.from_array(x, chunks=1000), np.float64(3.0)))


def test_row_blocks_needs_a_dask_array(counts):
    with pytest.raises(ValueError, match="at least one Dask array"):
        row_blocks(counts)


# --------------------------------------------------------------------------- the estimators
def test_every_estimator_fits_dask_arrays_on_the_cluster(dask_client, estimator_case):
    factory, arrays, fit_kwargs = estimator_case
    expected = factory().fit(*arrays, **fit_kwargs)
    to_dask = {k: da.from_array(v, chunks=250) if isinstance(v, np.ndarray) else v for k, v in fit_kwargs.items()}
    got = factory().fit(*[da.from_array(a, chunks=300) for a in arrays], **to_dask)
    assert got.n_iter_ == expected.n_iter_ == 6
    np.testing.assert_allclose(got.loglik_trace_, expected.loglik_trace_, rtol=1e-10)
    for name, value in expected.params_.items():
        np.testing.assert_allclose(np.asarray(got.params_[name]), value, rtol=1e-10, atol=1e-12, err_msg=name)


def test_mixture_predictions_on_dask_input_stay_lazy_and_equal_numpy(estimator_case):
    from emkit.estimators.mixture_base import MixtureEstimator

    factory, arrays, fit_kwargs = estimator_case
    fitted = factory().fit(*arrays, **fit_kwargs)
    if not isinstance(fitted, MixtureEstimator):
        pytest.skip("not a mixture estimator")
    X = da.from_array(arrays[0], chunks=300)
    with dask.config.set(scheduler="sync"):
        proba = fitted.predict_proba(X)
        assert isinstance(proba, da.Array)  # lazy: nothing loaded until asked
        np.testing.assert_allclose(proba.compute(), fitted.predict_proba(arrays[0]), rtol=1e-12, atol=1e-15)
        np.testing.assert_array_equal(np.asarray(fitted.predict(X)), fitted.predict(arrays[0]))
        assert fitted.score(X) == pytest.approx(fitted.score(arrays[0]), rel=1e-12)


def test_gaussian_mixture_fits_a_dask_dataframe_from_parquet(dask_client, tmp_path):
    dd = pytest.importorskip("dask.dataframe")
    pytest.importorskip("pyarrow")
    X = np.random.default_rng(8).normal(size=(1000, 2)) + np.repeat([[0.0, 0.0], [3.0, 1.0]], 500, axis=0)
    factory = lambda: emkit.GaussianMixture(2, tol=0, max_iter=10, random_state=0)  # noqa: E731
    expected = factory().fit(X)
    dd.from_dask_array(da.from_array(X, chunks=400), columns=["a", "b"]).to_parquet(str(tmp_path / "x.parquet"))
    got = factory().fit(dd.read_parquet(str(tmp_path / "x.parquet")))
    np.testing.assert_allclose(got.means_, expected.means_, rtol=1e-10)
    np.testing.assert_allclose(got.covariances_, expected.covariances_, rtol=1e-10)
    assert got.loglik_ == pytest.approx(expected.loglik_, rel=1e-12)


def test_block_cache_does_not_keep_the_data_alive(counts):
    import gc
    import weakref

    x, w = counts
    X = da.from_array(x.copy(), chunks=1000)
    alive = weakref.ref(X)
    with dask.config.set(scheduler="sync"):
        emkit.em(TwoPoisson(), (X, w), init=POISSON_INIT, tol=0, max_iter=2)
        assert row_blocks((X, w)) is not row_blocks((X, w))  # NumPy in the tuple: never cached
        assert row_blocks((X, None)) is row_blocks((X, None))  # all Dask: built once per fit
    del X
    gc.collect()
    assert alive() is None


# --------------------------------------------------------------------------- engine features on Dask
@pytest.mark.parametrize("accelerate", ["squarem", "anderson"])
def test_accelerated_em_on_dask_equals_numpy(counts, accelerate):
    x, w = counts
    expected = emkit.em(TwoPoisson(), (x, w), init=POISSON_INIT, tol=1e-10, accelerate=accelerate)
    with dask.config.set(scheduler="sync"):
        got = emkit.em(TwoPoisson(), (da.from_array(x, chunks=1000), da.from_array(w, chunks=1000)),
                       init=POISSON_INIT, tol=1e-10, accelerate=accelerate)
    assert got.n_em_evaluations == expected.n_em_evaluations
    assert_same_fit(got, expected)


def test_standard_errors_from_dask_data_equal_numpy():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.poisson(2.0, 600), rng.poisson(9.0, 400)]).astype(float)
    expected = emkit.PoissonMixture(2, random_state=0).fit(x)
    with dask.config.set(scheduler="sync"):
        got = emkit.PoissonMixture(2, random_state=0).fit(da.from_array(x, chunks=300))
        got_se = got.standard_errors(method="sem")
    expected_se = expected.standard_errors(method="sem")
    # Supplemented EM differentiates the EM map numerically, which turns the 1e-14 rounding
    # differences of the blockwise sums into ~1e-9 relative differences.
    for name, value in expected_se.items():
        np.testing.assert_allclose(got_se[name], value, rtol=1e-6)
    # Closed-form check of the scale: a rate's SE is near sqrt(rate / n_k) (complete-data
    # information), inflated by the missing labels; here n_k is about 600 and 400.
    np.testing.assert_allclose(expected_se["rates"], np.sqrt(expected.rates_ / (expected.weights_ * 1000)), rtol=0.5)


def test_empty_dask_data_is_a_clear_error():
    empty = da.zeros((0,), chunks=10)
    with pytest.raises(ValueError, match="TwoPoisson: the data has no rows"):
        dask_statistics_pass(TwoPoisson(), (empty, empty), POISSON_INIT)
