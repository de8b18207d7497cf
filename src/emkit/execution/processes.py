"""Independent tasks on several worker processes: the grid points of a model search.

A model search fits many small models that share nothing but the data. Their work is mostly
the interpreter's (small arrays: per-call costs, not arithmetic), so threads would wait on each
other for the interpreter lock; processes do not. :func:`process_map` runs the tasks on
``n_jobs`` *forked* workers: a fork copies the parent as it is (imported modules, compiled
loops, caches such as the hierarchical tree the parent built), so a worker starts in a few
milliseconds instead of the second an imported-afresh one takes, and the task needs no
pickling (only its arguments and results travel). Where the platform has no ``fork`` (Windows)
or one job is asked for, the tasks run one after another in this process.

Warnings a task raises in a worker are recorded there and raised again here, in task order,
so that the caller's filters see them as they would in a serial run; an exception in a task
is raised here. Results come back in the order of the tasks, whichever worker ran them, so a
parallel run gives exactly the serial run's results.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import warnings
from typing import Any, Callable, Iterable

from emkit.execution.threads import set_num_threads, single_threaded_blas

#: the task of the current :func:`process_map` call (the forked workers inherit it)
_TASK: Callable[[Any], Any] | None = None


def resolve_n_jobs(n_jobs: int | None) -> int:
    """Worker processes for ``n_jobs`` (scikit-learn's convention): None or 1 is one (no
    workers), a positive number that many, -1 every CPU this process may run on, -2 all but
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
    """Whether worker processes can be forked here."""
    return "fork" in multiprocessing.get_all_start_methods()


def _start_worker() -> None:
    """A worker runs on one core: BLAS held at one thread for its whole life (a forked child's
    BLAS would otherwise start its threads afresh at every hold's end, ~100 us each time) and
    the statistics passes on one thread (the workers are the parallelism)."""
    _WORKER_HOLD.append(single_threaded_blas())
    _WORKER_HOLD[-1].__enter__()
    set_num_threads(1)


#: the worker's BLAS hold (entered once, never left: the worker's end lets it go)
_WORKER_HOLD: list = []


def _run_task(item: Any) -> tuple[Any, list]:
    """One task in a worker: its result and the warnings it raised."""
    assert _TASK is not None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = _TASK(item)
    return result, [(w.message, w.category, w.filename, w.lineno) for w in caught]


def process_map(function: Callable[[Any], Any], items: Iterable[Any], n_jobs: int | None = None) -> list:
    """``[function(item) for item in items]`` on up to ``n_jobs`` forked worker processes.

    Parameters
    ----------
    function : callable
        Any callable (a closure too: the workers inherit it); its results must pickle.
    items : iterable
        The tasks' arguments (each pickled to a worker); handed out one at a time, in order,
        to whichever worker is free (put the longest first for the best balance).
    n_jobs : int, optional
        See :func:`resolve_n_jobs`; never more workers than items.

    Returns
    -------
    list
        The results in the order of ``items``.
    """
    global _TASK
    items = list(items)
    jobs = min(resolve_n_jobs(n_jobs), len(items))
    if jobs <= 1 or not can_fork():
        return [function(item) for item in items]
    _TASK = function
    # the garbage collector's passes in a worker would write to every object the parent made
    # (their headers), copying the pages they share with the parent: freeze them first
    gc.freeze()
    try:
        with multiprocessing.get_context("fork").Pool(jobs, initializer=_start_worker) as pool:
            outcomes = pool.map(_run_task, items, chunksize=1)
    finally:
        _TASK = None
        gc.unfreeze()
    results = []
    for result, caught in outcomes:
        for message, category, filename, lineno in caught:
            warnings.warn_explicit(message, category, filename, lineno)
        results.append(result)
    return results

