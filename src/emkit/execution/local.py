"""The in-memory statistics pass: row chunks, summed, optionally on several threads.

Statistics of the model contract are additive over rows, so a pass over NumPy (or torch /
CuPy) data cuts the rows into chunks, computes each chunk's statistics with a *chunk function*
and sums them. The chunk function is the caller's: the engine passes the model's exact E-step
or its hard / stochastic variant; this layer only cuts, schedules and sums.

Two optional model hooks (duck-typed; a model without them is cut by ``chunk_rows`` alone):

* ``min_chunk_rows(data)``: the smallest chunk worth its own task (its fixed per-chunk cost
  small next to its work). Data the memory budget would take in one chunk are still split
  between the threads when every thread gets at least that many rows, and the threads' share
  of the budget never cuts chunks smaller than that.
* ``prepare_pass(data, params)``: per-parameter set-up done once per pass, on the calling
  thread, instead of once per thread inside the chunks (for wide data, whose fits keep BLAS's
  threads (:func:`blas_hold`), its large factorisations then use every core).
* ``large_products(data)``: True when the chunks' matrix products are large (wide data):
  the chunks then run one after another and BLAS keeps its threads, which use the cores
  better than chunks side by side (and hold one set of chunk temporaries, not one per thread).
* ``keep_chunk_work(data)``: a context manager for a span in which ``data`` stay as they are
  (one restart of the engine's loop, :func:`chunk_work_kept`): inside it the model may keep
  per-chunk work that depends on the data only from one pass to the next.

Otherwise BLAS is held at one thread for the chunks of every pass (:func:`single_threaded_blas`):
their products are small, and BLAS threads on them cost more than they gain.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Callable

import numpy as np

from emkit.core.arrays import tree_add
from emkit.execution.threads import blas_held, parallel_map, single_threaded_blas, usable_threads

#: ``chunk_function(model, chunk, params, rng) -> (stats, loglik)``
ChunkFunction = Callable[[Any, Any, dict, Any], tuple[Any, float]]


def e_step_chunk(model: Any, chunk: tuple, params: dict,
                 rng: np.random.Generator | None = None) -> tuple[Any, float]:
    """The model's exact E-step on one chunk of rows (the default chunk function)."""
    stats, loglik = model.e_step(chunk, params)
    return stats, float(loglik)


def chunk_plan(model: Any, data: tuple, n: int, threads: int, chunk_size: int | None = None) -> int:
    """Rows per chunk of a pass over ``n`` rows on ``threads`` threads (``n`` or more: one
    chunk). An explicit ``chunk_size`` is used as it is. Otherwise the model's ``chunk_rows``
    (the memory budget of a whole pass) is shared between the threads, and the chunks are
    balanced: as many as needed, rounded up to a multiple of the threads, of (nearly) equal
    size. Data within the budget are one chunk, or one per thread when each gets at least the
    model's ``min_chunk_rows``; a thread's share of the budget is at least ``min_chunk_rows``
    (smaller chunks cost more in per-chunk work and slower products than they save in memory)."""
    if chunk_size is not None:
        return int(chunk_size) if chunk_size else n
    budget = model.chunk_rows(data)
    minimum = getattr(model, "min_chunk_rows", None)
    minimum = int(minimum(data)) if minimum is not None else None
    if not budget:
        if minimum is None or threads <= 1:
            return n
        budget = n
    step = int(budget)
    if n <= step:  # one chunk, unless it is worth splitting between the threads
        # (from half the smallest task: two threads on halves of a small pass beat one thread
        # on all of it, the fixed cost is paid once per thread)
        if threads <= 1 or minimum is None or 2 * n < threads * minimum:
            return n
        return math.ceil(n / threads)
    if threads > 1:
        step = max(256, step // threads, minimum or 0)
    count = math.ceil(n / step)
    if threads > 1:
        count = math.ceil(count / threads) * threads
    return math.ceil(n / count)


def blas_hold(model: Any, data: tuple) -> contextlib.AbstractContextManager:
    """The BLAS thread setting of a whole fit of ``model`` on ``data``: held at one thread
    (:func:`single_threaded_blas`, entered once, so that every pass and M-step inside it costs
    a counter instead of resetting the BLAS libraries' thread counts, ~20 us each), except for
    models whose products are large (``large_products``: wide data), whose passes keep BLAS's
    threads."""
    large = getattr(model, "large_products", None)
    return contextlib.nullcontext() if large is not None and large(data) else single_threaded_blas()


def chunk_work_kept(model: Any, data: tuple) -> contextlib.AbstractContextManager:
    """The span of one run of passes over ``data`` that do not change between them (a restart
    of the engine's loop): the model's ``keep_chunk_work(data)`` when it has one, so that it
    may keep work that depends on the data only (and not on the parameters) from one pass to
    the next; nothing otherwise. Outside such a span (predictions, online EM on batches that
    may reuse one buffer) a model keeps nothing."""
    keep = getattr(model, "keep_chunk_work", None)
    return contextlib.nullcontext() if keep is None else keep(data)


def local_statistics_pass(model: Any, data: tuple, params: dict, *, chunk_function: ChunkFunction = e_step_chunk,
                          rng: np.random.Generator | None = None, chunk_size: int | None = None,
                          n_threads: int | None = None, threaded: bool = True) -> tuple[Any, float]:
    """Sum of ``chunk_function`` over row chunks of in-memory ``data``.

    Parameters
    ----------
    model : Model
        The model; its ``chunk_rows(data)`` is the memory budget of a pass (rows),
        ``thread_safe`` says whether chunks may run at the same time, and the optional hooks of
        the module docstring refine the cut and the set-up.
    data : Data or tuple of arrays
        Row-aligned arrays (NumPy, torch or CuPy).
    params : dict
        Current parameters.
    chunk_function : callable
        ``chunk_function(model, chunk, params, rng) -> (stats, loglik)``.
    rng : numpy.random.Generator, optional
        Passed to the chunk function; chunks that draw from it run one after another, in order.
    chunk_size : int, optional
        Rows per chunk (default: :func:`chunk_plan`).
    n_threads : int, optional
        Threads for NumPy data (default :func:`emkit.get_num_threads`).
    threaded : bool
        False keeps every chunk on the calling thread.

    Returns
    -------
    stats, loglik
        Statistics summed in chunk order (a given thread count always gives the same bits)
        and the summed observed log-likelihood.
    """
    n = model.n_rows(data)
    threads = 1
    large = getattr(model, "large_products", None)
    large = bool(large(data)) if large is not None else False
    if threaded and rng is None and model.thread_safe and type(data[0]) is np.ndarray and not large:
        threads = usable_threads(n_threads)
    step = chunk_plan(model, data, n, threads, chunk_size)
    prepare = getattr(model, "prepare_pass", None)
    if prepare is not None:
        prepare(data, params)
    # (held already, around a whole fit: no need to enter the hold again every pass)
    with (contextlib.nullcontext() if large or blas_held() else single_threaded_blas()):
        if n <= step:
            return chunk_function(model, data, params, rng)
        results = parallel_map(
            lambda start: chunk_function(model, model.take_rows(data, slice(start, start + step)), params, rng),
            range(0, n, step), n_threads=threads)
        total, loglik, owned = None, 0.0, False
        for stats, ll in results:
            if total is None:
                total = stats
            elif owned:  # arrays this pass made: add in place (no new (K, T) array per chunk)
                total = _add_into(total, stats)
            else:
                total, owned = tree_add(total, stats), True
            # (not kept while the next chunk works: wide data's statistics are D^2 arrays)
            del stats
            loglik += ll
    return total, loglik


def _add_into(total, stats):
    """``tree_add(total, stats)``, adding into ``total``'s NumPy arrays where it can."""
    if isinstance(total, dict):
        return {key: _add_into(total[key], stats[key]) for key in total}
    if isinstance(total, (tuple, list)):
        return type(total)(_add_into(a, b) for a, b in zip(total, stats))
    if type(total) is np.ndarray and total.flags.writeable and \
            np.result_type(total, stats) == total.dtype and np.shape(stats) == total.shape:
        total += stats
        return total
    return total + stats
