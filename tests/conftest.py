"""Shared fixtures: one real Dask cluster (worker processes) for the whole test session."""

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
