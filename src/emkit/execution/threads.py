"""Chunks of one statistics pass on several CPU cores.

The E-step of a chunk is mostly element-wise NumPy work (exp, log, products), which runs on one
core, plus small matrix products, which BLAS spreads over all cores. Running whole chunks in
parallel threads (NumPy releases the GIL) uses every core for both; BLAS is held at one thread
per chunk meanwhile (through threadpoolctl) so the cores are not oversubscribed. Results are
summed in chunk order by the caller, so a given number of threads always gives identical
statistics.

The number of threads is ``EMKIT_NUM_THREADS`` from the environment, else the CPUs this process
may run on; :func:`set_num_threads` changes it. Without threadpoolctl (``pip install
emkit[fast]``) the chunks run one after another.
"""

from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, TypeVar

from emkit.core.arrays import tree_nbytes

T = TypeVar("T")
R = TypeVar("R")

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_controller = None  # threadpoolctl.ThreadpoolController, found once (it scans loaded libraries)


def _default_threads() -> int:
    env = os.environ.get("EMKIT_NUM_THREADS")
    if env:
        try:
            value = int(env)
        except ValueError:
            raise ValueError(f"EMKIT_NUM_THREADS must be a positive integer, got {env!r}") from None
        if value < 1:
            raise ValueError(f"EMKIT_NUM_THREADS must be a positive integer, got {env!r}")
        return value
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


#: None until first asked for: a bad EMKIT_NUM_THREADS is reported when threads are first used,
#: not at ``import emkit``
_num_threads: int | None = None


def get_num_threads() -> int:
    """Threads a statistics pass over NumPy data may use (see :func:`set_num_threads`).

    Raises
    ------
    ValueError
        When ``EMKIT_NUM_THREADS`` is set to anything but a positive integer.
    """
    global _num_threads
    if _num_threads is None:
        _num_threads = _default_threads()
    return _num_threads


def set_num_threads(n: int) -> None:
    """Set how many threads process the chunks of a statistics pass over NumPy data.

    Parameters
    ----------
    n : int
        1 runs the chunks one after another; the default is the number of CPUs available
        (or ``EMKIT_NUM_THREADS``). A given number always gives the same fitted numbers;
        different numbers agree to rounding (the model's chunk is shared between threads).
    """
    global _num_threads
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"the number of threads must be a positive integer, got {n!r}")
    with _lock:
        _num_threads = n


def _blas_controller():
    global _controller
    if _controller is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _controller = False
        else:
            _controller = ThreadpoolController()
    return _controller


_hold_lock = threading.Lock()
_hold_count = 0
_hold_saved: list = []  # (library controller, its thread count before the hold)


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Hold BLAS at one thread for the duration (process-wide, re-entrant and shared: nested
    or concurrent holders, such as the threads of a Dask worker, keep it held until the last
    one leaves; then the previous thread counts come back).

    A statistics pass runs many small matrix products; BLAS threads on them cost more than
    they gain (3 to 20 times slower on a busy machine), and the pass's own threads already use
    the cores. This sets the thread count of each BLAS library directly (a few microseconds;
    ``threadpoolctl``'s ``limit`` re-reads every library's state, ~60 microseconds)."""
    global _hold_count, _hold_saved
    controller = _blas_controller()
    if not controller:
        yield
        return
    with _hold_lock:
        if _hold_count == 0:
            saved = []
            for lib in controller.lib_controllers:
                if lib.user_api != "blas":
                    continue
                before = lib.get_num_threads()
                if before != 1:
                    lib.set_num_threads(1)
                    saved.append((lib, before))
            _hold_saved = saved
        _hold_count += 1
    try:
        yield
    finally:
        with _hold_lock:
            _hold_count -= 1
            if _hold_count == 0:
                for lib, before in _hold_saved:
                    lib.set_num_threads(before)
                _hold_saved = []


def blas_held() -> bool:
    """Whether BLAS is held at one thread now (:func:`single_threaded_blas` entered and not
    yet left, e.g. around a whole fit)."""
    return _hold_count > 0


def _after_fork_in_child() -> None:
    """A forked child (:mod:`emkit.execution.processes`, or the user's own multiprocessing)
    has only the thread that forked: the parent's pool workers are dead there (a pass would run
    every chunk on the calling thread), so the child starts a pool of its own when it needs one,
    and the locks (which another thread may have held at the fork) are new. The BLAS hold's
    count and saved settings stay the parent's, consistent with the BLAS state inherited."""
    global _pool, _pool_size, _lock, _hold_lock
    _pool, _pool_size = None, 0
    _lock, _hold_lock = threading.Lock(), threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def usable_threads(n_threads: int | None = None) -> int:
    """Threads :func:`parallel_map` would use: ``n_threads`` (default :func:`get_num_threads`),
    or 1 when BLAS cannot be held at one thread per chunk (threadpoolctl missing)."""
    threads = get_num_threads() if n_threads is None else n_threads
    return threads if threads > 1 and _blas_controller() else 1


def parallel_map(fn: Callable[[T], R], items: Iterable[T], n_threads: int | None = None) -> Iterator[R]:
    """``map(fn, items)`` over up to ``n_threads`` threads (default :func:`get_num_threads`),
    results in the order of ``items``; sequential when one thread is asked for, when there is
    one item, or when threadpoolctl is missing."""
    global _pool, _pool_size
    items = list(items)
    threads = usable_threads(n_threads)
    if threads <= 1 or len(items) <= 1:
        return map(fn, items)
    with _lock:
        # `threads - 1` workers: the calling thread takes its share of the chunks too (it would
        # only wait otherwise, and a hand-off to a sleeping worker costs ~50-100 us a pass)
        if _pool_size != threads - 1:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool, _pool_size = ThreadPoolExecutor(threads - 1, thread_name_prefix="emkit"), threads - 1
        pool = _pool
        assert pool is not None
    return _windowed(pool, fn, items, WINDOW_PER_THREAD * threads, threads)


#: a thread pass computes up to this many items per thread ahead of its consumer ...
WINDOW_PER_THREAD = 16
#: ... and fewer when the results waiting for the consumer would pass this many bytes (but
#: never fewer than two per thread)
WINDOW_BYTES = 64 * 2**20


def _windowed(pool: ThreadPoolExecutor, fn, items: list, window: int, threads: int) -> Iterator:
    """Results in order, with at most ``window`` of them computed ahead of the consumer (a
    pass over many chunks never holds every chunk's statistics at once; two per thread until
    the first result is in, and fewer than ``window`` when the first result shows they would
    pass :data:`WINDOW_BYTES`). Items are claimed one at a time, in order, by ``threads - 1``
    pool workers and the calling thread, which between its own items hands the finished ones
    to the consumer. The window slides: a thread waits only when it is ``window`` items ahead
    of the first unfinished one, never for a whole batch to finish (a barrier every 8 chunks
    left one core idle while the other finished the batch's last chunk: 5-6 % of a
    200,000-row fit on two cores)."""
    n = len(items)
    results: list = [None] * n
    done = [False] * n
    cond = threading.Condition()
    # two items per thread until the first result tells how large they are
    state = {"claimed": 0, "handed": 0, "stop": False, "window": min(window, 2 * threads)}
    failures: list[BaseException] = []

    def claim(wait: bool) -> int | None:
        """The next item to compute (None: nothing left, or a failure; with ``wait`` False,
        also None while the window is full)."""
        with cond:
            while True:
                i = state["claimed"]
                if i >= n or failures or state["stop"]:
                    return None
                if i < state["handed"] + state["window"]:
                    state["claimed"] = i + 1
                    return i
                if not wait:
                    return None
                cond.wait()

    def compute(i: int) -> bool:
        try:
            value = fn(items[i])
        except BaseException as exc:  # reported by the calling thread
            with cond:
                failures.append(exc)
                cond.notify_all()
            return False
        size = tree_nbytes(value) if i == 0 else 0
        with cond:
            results[i], done[i] = value, True
            if size:
                state["window"] = max(2 * threads, min(window, WINDOW_BYTES // size))
            cond.notify_all()
        return True

    def work() -> None:
        while True:
            i = claim(wait=True)
            if i is None or not compute(i):
                return

    with single_threaded_blas():
        helpers = [pool.submit(work) for _ in range(min(threads, n) - 1)]
        try:
            while True:
                with cond:
                    if failures:
                        raise failures[0]
                    h = state["handed"]
                    if h >= n:
                        break
                    ready = done[h]
                    if ready:
                        value, results[h] = results[h], None
                        state["handed"] = h + 1
                        cond.notify_all()  # a thread waiting on the window may go on
                if ready:
                    yield value
                    continue
                i = claim(wait=False)
                if i is not None:
                    compute(i)
                    continue
                with cond:  # nothing to claim: wait for the first unfinished item
                    while not done[state["handed"]] and not failures:
                        cond.wait()
        finally:
            with cond:
                state["stop"] = True
                cond.notify_all()
            for helper in helpers:
                # a helper that has not started by now has nothing left to claim: cancelled,
                # it is not waited for (nor is a pool whose workers are all busy, e.g. with
                # the chunk that called this pass)
                if not helper.cancel():
                    helper.result()
