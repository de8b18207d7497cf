"""Shared fixtures: one real Dask cluster (worker processes) for the whole test session, and
emkit's statistics passes on two threads."""

from __future__ import annotations

import logging

import pytest


@pytest.fixture(scope="session")
def dask_cluster():
    """A ``LocalCluster`` of 2 worker processes with 1 thread each, each under a nanny (which
    restarts a worker that dies). Started on first use only: it takes a few seconds."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=logging.CRITICAL,
                                       memory_limit="2GiB")
    # Not the process-wide default: tests that do not ask for the cluster keep Dask's local
    # scheduler even when they run after these ones in the same process.
    client = distributed.Client(cluster, set_as_default=False)
    yield cluster, client
    client.close()
    cluster.close()


@pytest.fixture
def dask_client(dask_cluster):
    """The session's ``dask.distributed.Client``, current for the duration of one test, so
    every ``compute()`` in the test (the EM engine's included) runs on the cluster."""
    _, client = dask_cluster
    with client.as_current():
        yield client


@pytest.fixture
def two_threads():
    """emkit's statistics passes on two threads for one test (the previous count after it)."""
    import emkit

    before = emkit.get_num_threads()
    emkit.set_num_threads(2)
    yield
    emkit.set_num_threads(before)


# --------------------------------------------------------------------------- estimator cases
#: every public estimator, fitted from a fixed start for exactly 6 iterations
ESTIMATOR_CASES = ("GaussianMixture-full", "GaussianMixture-diag", "GaussianMixture-tied",
                   "GaussianMixture-spherical", "GaussianMixture-weighted", "PoissonMixture",
                   "BinomialMixture", "ExponentialMixture", "NormalMixture",
                   "MultivariateNormalMixture", "BernoulliMixture", "CategoricalMixture", "Exponential")


def pytest_generate_tests(metafunc):
    if "estimator_case" in metafunc.fixturenames:
        metafunc.parametrize("estimator_case", ESTIMATOR_CASES, indirect=True)


@pytest.fixture
def estimator_case(request):
    """``(factory, arrays, fit_kwargs)`` for one public estimator: NumPy float64 data (1200
    rows, two groups) that a test converts to Dask / torch / CuPy before ``fit``."""
    import numpy as np

    import emkit

    rng = np.random.default_rng(7)
    n = 1200
    group = rng.random(n) < 0.4
    X = np.where(group[:, None], rng.normal([3.0, -1.0], [1.0, 0.5], (n, 2)), rng.normal(0.0, 1.0, (n, 2)))
    lifetimes = rng.exponential(2.0, n)
    censored = (rng.random(n) < 0.3).astype(float)
    lifetimes[(rng.random(n) < 0.1) & (censored == 0)] = np.nan  # missing values
    settings = dict(tol=0, max_iter=6, random_state=0)
    name = request.param
    if name.startswith("GaussianMixture"):
        cov = name.split("-")[1] if name != "GaussianMixture-weighted" else "full"
        kwargs = {"sample_weight": rng.integers(1, 4, n).astype(float)} if name.endswith("weighted") else {}
        case = (lambda: emkit.GaussianMixture(2, covariance_type=cov, **settings), (X,), kwargs)
    elif name == "PoissonMixture":
        counts = np.where(group, rng.poisson(9.0, n), rng.poisson(2.0, n)).astype(float)
        case = (lambda: emkit.PoissonMixture(2, **settings), (counts,),
                {"sample_weight": rng.integers(1, 4, n).astype(float)})
    elif name == "BinomialMixture":
        successes = rng.binomial(12, np.where(group, 0.8, 0.3)).astype(float)
        case = (lambda: emkit.BinomialMixture(2, **settings), (successes,), {"trials": 12})
    elif name == "ExponentialMixture":
        waits = np.where(group, rng.exponential(5.0, n), rng.exponential(1.0, n))
        case = (lambda: emkit.ExponentialMixture(2, **settings), (waits,), {})
    elif name == "NormalMixture":
        case = (lambda: emkit.NormalMixture(2, **settings), (X[:, 0],), {})
    elif name == "MultivariateNormalMixture":
        case = (lambda: emkit.MultivariateNormalMixture(2, **settings), (X,), {})
    elif name == "BernoulliMixture":
        items = (rng.random((n, 5)) < np.where(group[:, None], 0.8, 0.2)).astype(float)
        case = (lambda: emkit.BernoulliMixture(2, **settings), (items,), {})
    elif name == "CategoricalMixture":
        answers = np.where(group[:, None], rng.integers(0, 3, (n, 4)), rng.integers(1, 3, (n, 4))).astype(float)
        case = (lambda: emkit.CategoricalMixture(2, **settings), (answers,), {})
    else:
        case = (lambda: emkit.Exponential(tol=0, max_iter=6), (lifetimes,), {"censored": censored})
    try:
        case[0]()
    except (ImportError, AttributeError) as exc:  # an estimator not written yet
        pytest.skip(f"{name} is not available: {exc}")
    return case
