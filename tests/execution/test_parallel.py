"""Statistics passes on several threads: same numbers, bounded memory, clear settings errors."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import emkit
from emkit.execution import threads as _parallel
from emkit.engine import statistics_pass
from emkit.models.gaussian import GaussianMixtureModel

pytest.importorskip("threadpoolctl")


def _data(n=30_000, d=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) + 4.0 * rng.integers(0, 3, (n, 1))


def _params(x, k=3):
    rng = np.random.default_rng(1)
    d = x.shape[1]
    return {"weights": np.full(k, 1.0 / k), "means": x[rng.choice(len(x), k, replace=False)],
            "covariances": np.repeat(np.eye(d)[None], k, axis=0)}


def test_threaded_pass_equals_sequential_pass_bit_for_bit(two_threads):
    x = _data()
    model = GaussianMixtureModel(3, "full").prepare_data((x,))
    params = _params(x)
    seq_stats, seq_ll = statistics_pass(model, (x,), params, chunk_size=1000, n_threads=1)
    par_stats, par_ll = statistics_pass(model, (x,), params, chunk_size=1000, n_threads=2)
    assert par_ll == seq_ll  # summed in chunk order: identical, not merely close
    for key in seq_stats:
        np.testing.assert_array_equal(par_stats[key], seq_stats[key])


def test_chunks_run_on_the_pool_thread_and_the_calling_thread(two_threads, monkeypatch):
    x = _data(n=8_000)
    model = GaussianMixtureModel(3, "diag").prepare_data((x,))
    seen = set()
    original = model.e_step

    def spy(data, params):
        seen.add(threading.current_thread().name)
        threading.Event().wait(0.005)  # long enough for the worker to wake and claim a chunk
        return original(data, params)

    monkeypatch.setattr(model, "e_step", spy)
    params = _params(x)
    params["covariances"] = np.ones((3, x.shape[1]))
    statistics_pass(model, (x,), params, chunk_size=500)
    # two threads: one pool worker, and the calling thread takes its share instead of waiting
    assert seen == {"emkit_0", threading.current_thread().name}


def test_models_not_marked_thread_safe_stay_on_the_calling_thread(two_threads):
    seen = set()

    class Recorder(emkit.Model):
        param_spec = {"mu": emkit.Real()}

        def e_step(self, data, params):
            seen.add(threading.current_thread().name)
            return np.array([data[0].sum(), float(len(data[0]))]), 0.0

        def m_step(self, stats, params):
            return {"mu": np.array(stats[0] / stats[1])}

    statistics_pass(Recorder(), (np.arange(10_000.0),), {"mu": np.array(0.0)}, chunk_size=100)
    assert seen == {threading.current_thread().name}


def test_fit_with_one_or_two_threads_agrees(two_threads):
    x = _data()
    kwargs = dict(n_components=3, covariance_type="full", tol=0, max_iter=15, random_state=0)
    two = emkit.GaussianMixture(**kwargs).fit(x)
    emkit.set_num_threads(1)
    one = emkit.GaussianMixture(**kwargs).fit(x)
    # the default chunk is shared between threads, so the sums differ only by rounding
    np.testing.assert_allclose(two.means_, one.means_, rtol=1e-10)
    np.testing.assert_allclose(two.covariances_, one.covariances_, rtol=1e-10)
    np.testing.assert_allclose(two.loglik_trace_, one.loglik_trace_, rtol=1e-12)
    again = emkit.GaussianMixture(**kwargs)
    emkit.set_num_threads(2)
    again.fit(x)
    np.testing.assert_array_equal(again.means_, two.means_)  # same threads: same bits


def test_parallel_map_keeps_order_over_many_windows(two_threads):
    out = list(_parallel.parallel_map(lambda i: i * i, range(1000)))
    assert out == [i * i for i in range(1000)]


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "2", None])
def test_set_num_threads_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="positive integer"):
        emkit.set_num_threads(bad)


@pytest.mark.parametrize("bad", ["zero", "0", "-1"])
def test_bad_environment_variable_is_named(monkeypatch, bad):
    monkeypatch.setenv("EMKIT_NUM_THREADS", bad)
    with pytest.raises(ValueError, match="EMKIT_NUM_THREADS"):
        _parallel._default_threads()


def test_environment_variable_sets_the_default(monkeypatch):
    monkeypatch.setenv("EMKIT_NUM_THREADS", "3")
    assert _parallel._default_threads() == 3


def test_an_explicit_thread_count_runs_that_many_chunks_at_once(two_threads):
    emkit.set_num_threads(1)
    running, peak, lock = [0], [0], threading.Lock()

    def work(i):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        threading.Event().wait(0.02)  # long enough for the other worker to start
        with lock:
            running[0] -= 1
        return i

    assert list(_parallel.parallel_map(work, range(8), n_threads=2)) == list(range(8))
    assert peak[0] == 2


def test_a_pass_inside_a_chunk_does_not_wait_for_the_busy_pool(two_threads):
    # the pool's one worker runs an outer chunk that itself maps over inner items: the inner
    # helper cannot start, and the calling thread does the inner items alone instead of waiting
    def outer(i):
        return sum(_parallel.parallel_map(lambda j: i * j, range(4)))

    assert list(_parallel.parallel_map(outer, range(6))) == [6 * i for i in range(6)]


def test_results_ahead_of_the_consumer_stay_within_the_window(two_threads, monkeypatch):
    # large results: the window shrinks to WINDOW_BYTES worth of them (but two per thread);
    # the consumer is slow, so without the bound the helper would run through every item
    monkeypatch.setattr(_parallel, "WINDOW_BYTES", 3 * 8000)
    computed, lock = [0], threading.Lock()

    def work(i):
        with lock:
            computed[0] += 1
        return np.zeros(1000)  # 8,000 bytes

    ahead = []
    for i, _ in enumerate(_parallel.parallel_map(work, range(60))):
        threading.Event().wait(0.002)
        with lock:
            ahead.append(computed[0] - (i + 1))
    assert max(ahead) <= 4  # max(2 * threads, 24,000 // 8,000) = 4 results held, at most
    assert max(ahead) >= 1  # and the helper did work ahead


@pytest.mark.parametrize("failing", [0, 5, 39])
def test_a_failing_item_is_raised_whichever_thread_ran_it(two_threads, failing):
    def work(i):
        if i == failing:
            raise RuntimeError(f"item {i} failed")
        threading.Event().wait(0.001)
        return i

    with pytest.raises(RuntimeError, match=f"item {failing} failed"):
        list(_parallel.parallel_map(work, range(40)))
    assert list(_parallel.parallel_map(lambda i: i, range(10))) == list(range(10))  # the pool still works


def test_a_consumer_that_stops_early_releases_the_helpers(two_threads):
    started = []
    gen = _parallel.parallel_map(lambda i: started.append(i) or i, range(1000))
    assert [next(gen) for _ in range(3)] == [0, 1, 2]
    gen.close()  # the helper stops at its current item instead of running on or hanging
    count = len(started)
    threading.Event().wait(0.05)
    assert len(started) == count < 1000
    assert list(_parallel.parallel_map(lambda i: 2 * i, range(50))) == [2 * i for i in range(50)]
