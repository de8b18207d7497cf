"""Tasks on forked worker processes (``emkit.execution.processes``): results in order, warnings and
errors brought back, scikit-learn's ``n_jobs`` convention, and a worker's own threaded passes."""

from __future__ import annotations

import os
import threading
import time
import warnings

import numpy as np
import pytest

from emkit.execution import threads
from emkit.execution.processes import can_fork, process_map, resolve_n_jobs
from emkit.engine import statistics_pass
from emkit.models.gaussian import GaussianMixtureModel

needs_fork = pytest.mark.skipif(not can_fork(), reason="no fork on this platform")


@needs_fork
def test_results_come_back_in_order_from_this_process_and_the_workers():
    def task(i):
        time.sleep(0.005)  # long enough that the other worker takes some
        return i * i, os.getpid()

    out = process_map(task, range(40), n_jobs=3)
    assert [value for value, _ in out] == [i * i for i in range(40)]
    # this process and two forked workers each took tasks (one at a time)
    pids = {pid for _, pid in out}
    assert len(pids) == 3 and os.getpid() in pids


@needs_fork
def test_warnings_of_a_worker_are_raised_here_and_errors_too():
    def task(i):
        if i == 3:
            warnings.warn(f"task {i} warns", RuntimeWarning)
        return i

    with pytest.warns(RuntimeWarning, match="task 3 warns"):
        assert process_map(task, range(6), n_jobs=2) == list(range(6))

    def failing(i):
        if i == 2:
            raise ValueError("task 2 failed")
        return i

    with pytest.raises(ValueError, match="task 2 failed"):
        process_map(failing, range(4), n_jobs=2)


def test_one_job_runs_here():
    assert process_map(lambda i: os.getpid(), range(3), n_jobs=None) == [os.getpid()] * 3


@pytest.mark.parametrize("n_jobs, expected", [(None, 1), (1, 1), (3, 3)])
def test_n_jobs_follows_scikit_learns_convention(n_jobs, expected):
    assert resolve_n_jobs(n_jobs) == expected
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert resolve_n_jobs(-1) == cpus


@pytest.mark.parametrize("n_jobs", [0, 1.5, True, "2", -10_000])
def test_bad_n_jobs_is_refused(n_jobs):
    with pytest.raises(ValueError, match="n_jobs"):
        resolve_n_jobs(n_jobs)


@needs_fork
def test_a_worker_runs_threaded_passes_after_the_parent_started_its_threads():
    """The parent's pool threads do not exist in a forked child: the child makes a pool of its
    own (an inherited one would run every chunk on the calling thread, its workers dead)."""
    pytest.importorskip("threadpoolctl")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40_000, 3))
    model = GaussianMixtureModel(2)
    params = {"weights": np.array([0.5, 0.5]), "means": np.array([[-1.0, 0, 0], [1.0, 0, 0]]),
              "covariances": np.repeat(np.eye(3)[None], 2, axis=0)}
    expected = statistics_pass(model, (x,), params, chunk_size=5_000, n_threads=2)[1]
    assert threads._pool is not None  # the parent's pool is running

    def task(_):
        threads.set_num_threads(2)  # the worker asks for threads of its own
        loglik = statistics_pass(model, (x,), params, chunk_size=5_000, n_threads=2)[1]
        workers = list(threads._pool._threads)  # (the parent's would be dead here: only the forking thread lives on)
        return loglik, bool(workers) and all(t.is_alive() for t in workers)

    assert process_map(task, range(2), n_jobs=2) == [(expected, True), (expected, True)]


@needs_fork
@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in /proc")
def test_a_worker_never_starts_blas_threads():
    """BLAS is held at one thread from before the fork, so a worker's products and its fits'
    own BLAS holds never start BLAS's threads (a forked OpenBLAS starts them afresh when its
    thread count is set, and they spin on the other processes' cores)."""
    pytest.importorskip("threadpoolctl")
    a = np.random.default_rng(0).normal(size=(300, 300))

    def task(_):
        with threads.single_threaded_blas():  # as every fit does
            a @ a
        a @ a
        time.sleep(0.05)  # (long enough that the worker takes some tasks)
        return os.getpid(), len(os.listdir("/proc/self/task"))

    counts = {pid: n for pid, n in process_map(task, range(6), n_jobs=2) if pid != os.getpid()}
    assert counts and all(n == 1 for n in counts.values())


@needs_fork
def test_calls_from_two_threads_each_get_their_own_results():
    """process_map holds its tasks in module state that the forked workers inherit: two calls
    at once (two threads each running a model search) take turns and do not mix tasks."""
    out: dict = {}

    def call(tag):
        def task(i):
            time.sleep(0.002)
            return tag, i

        out[tag] = process_map(task, range(20), n_jobs=2)

    runners = [threading.Thread(target=call, args=(tag,)) for tag in ("a", "b")]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join(timeout=60)
    assert out == {tag: [(tag, i) for i in range(20)] for tag in ("a", "b")}
