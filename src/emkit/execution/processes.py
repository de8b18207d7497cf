"""Independent tasks on several processes: the grid points of a model search.

A model search fits many small models that share nothing but the data. Their work is mostly
the interpreter's (small arrays: per-call costs, not arithmetic), so threads would wait on each
other for the interpreter lock; processes do not. :func:`process_map` runs the tasks on this
process and ``n_jobs - 1`` *forked* workers: a fork copies the parent as it is (imported
modules, compiled loops, caches such as the hierarchical tree the parent built), so a worker
starts in a few milliseconds instead of the second an imported-afresh one takes, and the task
needs no pickling (only the results travel). Every process claims the next task when it is
free. Where the platform has no ``fork`` (Windows) or one job is asked for, the tasks run one
after another in this process.

Every process runs its share on one core: BLAS is held at one thread from before the fork
(a forked child that calls into OpenBLAS's thread control starts its threads afresh, and they
spin on the other processes' cores), and the statistics passes run on one thread.

Calls take turns (a lock: the workers inherit the call's tasks from module state at the
fork), so two threads may each run a model search with ``n_jobs`` at once.

Warnings the tasks raise are recorded and raised again here, in task order, so that the
caller's filters see them as they would in a serial run; an exception in a task stops the
others from claiming more and is raised here. Results come back in the order of the tasks,
whichever process ran them, so a parallel run gives exactly the serial run's results.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
import warnings
from typing import Any, Callable, Iterable

from emkit.execution.threads import get_num_threads, set_num_threads, single_threaded_blas

def resolve_n_jobs(n_jobs: int | None) -> int:
    """Processes for ``n_jobs`` (scikit-learn's convention): None or 1 is one (this process
    alone), a positive number that many, -1 one per CPU this process may run on, -2 all but
    one, and so on.

    Raises
    ------
    ValueError
        For 0, a non-integer or a negative number beyond the CPU count.
    """
    if n_jobs is None:
        return 1
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0:
        raise ValueError(f"n_jobs must be None, a positive integer or a negative one (-1: every CPU), got "
                         f"{n_jobs!r}")
    if n_jobs > 0:
        return n_jobs
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if cpus + 1 + n_jobs < 1:
        raise ValueError(f"n_jobs={n_jobs} asks for {cpus + 1 + n_jobs} processes ({cpus} CPUs available)")
    return cpus + 1 + n_jobs


def can_fork() -> bool:
    """Whether processes can be forked here."""
    return "fork" in multiprocessing.get_all_start_methods()


def _start_worker() -> None:
    """A worker runs its share on one core: its statistics passes on one thread (the
    processes are the parallelism). BLAS is held at one thread before the fork (see
    :func:`process_map`), so the worker never calls into BLAS's thread control: in a forked
    child that call starts BLAS's threads afresh (OpenBLAS), which then spin on the other
    processes' cores (measured: the parent's share 50 % slower)."""
    set_num_threads(1)


#: the current call's tasks: (function, items, shared index of the next item to claim); the
#: forked workers inherit it
_SHARE: tuple | None = None
#: :func:`process_map` calls one at a time
_CALL_LOCK = threading.RLock()


def _run_share(share: tuple | None = None) -> list[tuple[int, Any, list]]:
    """Claim the next unclaimed item of ``share`` (a worker's: the one it inherited) and run
    it, until none is left: ``(index, result, warnings)`` of each item run here. A task that
    raises stops every share (nothing more is claimed) and the exception goes to the caller."""
    share = _SHARE if share is None else share
    assert share is not None
    function, items, next_item = share
    done: list[tuple[int, Any, list]] = []
    while True:
        with next_item.get_lock():
            i = next_item.value
            next_item.value = i + 1
        if i >= len(items):
            return done
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                result = function(items[i])
            except BaseException:
                with next_item.get_lock():
                    next_item.value = len(items)
                raise
        done.append((i, result, [(w.message, w.category, w.filename, w.lineno) for w in caught]))


def process_map(function: Callable[[Any], Any], items: Iterable[Any], n_jobs: int | None = None) -> list:
    """``[function(item) for item in items]`` on ``n_jobs`` processes: this one and
    ``n_jobs - 1`` forked workers.

    Parameters
    ----------
    function : callable
        Any callable (a closure too: the workers inherit it); its results must pickle.
    items : iterable
        The tasks' arguments (the workers inherit them). Every process claims the next
        unclaimed item when it is free, in order (put the longest first for the best balance).
        This process takes its share too: it is warm (a forked worker first copies the
        memory pages it writes to), and would only wait otherwise.
    n_jobs : int, optional
        See :func:`resolve_n_jobs`; never more processes than items.

    Returns
    -------
    list
        The results in the order of ``items``. The warnings the tasks raised are raised here
        afterwards, in the order of the items.
    """
    global _SHARE
    items = list(items)
    jobs = min(resolve_n_jobs(n_jobs), len(items))
    if jobs <= 1 or not can_fork():
        return [function(item) for item in items]
    context = multiprocessing.get_context("fork")
    share = (function, items, context.Value("q", 0))
    # one call at a time (the workers inherit the module's share at the fork, and this
    # process's thread setting is changed for the call; a task may call again, re-entrantly)
    with _CALL_LOCK:
        before = _SHARE
        # the garbage collector's passes in a worker would write to every object the parent
        # made (their headers), copying the pages they share with the parent: freeze them first
        gc.freeze()
        threads = get_num_threads()
        try:
            # every process on one core, BLAS included: held here, before the fork (see
            # _start_worker), for this process's share too (BLAS threads released between the
            # fits' own holds would spin on the workers' cores)
            with single_threaded_blas():
                _SHARE = share
                pool = context.Pool(jobs - 1, initializer=_start_worker)  # (the workers fork here)
                _SHARE = before
                with pool:
                    pending = [pool.apply_async(_run_share) for _ in range(jobs - 1)]
                    set_num_threads(1)
                    try:
                        outcomes = _run_share(share)
                    finally:
                        set_num_threads(threads)
                    for worker in pending:
                        outcomes += worker.get()
        finally:
            _SHARE = before
            gc.unfreeze()
    results: list = [None] * len(items)
    for i, result, caught in sorted(outcomes, key=lambda outcome: outcome[0]):
        for message, category, filename, lineno in caught:
            warnings.warn_explicit(message, category, filename, lineno)
        results[i] = result
    return results
