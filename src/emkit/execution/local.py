"""The in-memory statistics pass: row chunks, summed, optionally on several threads.

Statistics of the model contract are additive over rows, so a pass over NumPy (or torch /
CuPy) data cuts the rows into chunks, computes each chunk's statistics with a *chunk function*
and sums them. The chunk function is the caller's: the engine passes the model's exact E-step
or its hard / stochastic variant; this layer only cuts, schedules and sums.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from emkit.core.arrays import tree_add
from emkit.execution.threads import parallel_map, usable_threads

#: ``chunk_function(model, chunk, params, rng) -> (stats, loglik)``
ChunkFunction = Callable[[Any, Any, dict, Any], tuple[Any, float]]


def e_step_chunk(model, chunk, params: dict, rng=None) -> tuple[Any, float]:
    """The model's exact E-step on one chunk of rows (the default chunk function)."""
    stats, loglik = model.e_step(chunk, params)
    return stats, float(loglik)


def local_statistics_pass(model, data, params: dict, *, chunk_function: ChunkFunction = e_step_chunk,
                          rng: np.random.Generator | None = None, chunk_size: int | None = None,
                          n_threads: int | None = None, threaded: bool = True) -> tuple[Any, float]:
    """Sum of ``chunk_function`` over row chunks of in-memory ``data``.

    Parameters
    ----------
    model : Model
        The model; its ``chunk_rows(data)`` is the default chunk size and ``thread_safe``
        says whether chunks may run at the same time.
    data : Data or tuple of arrays
        Row-aligned arrays (NumPy, torch or CuPy).
    params : dict
        Current parameters.
    chunk_function : callable
        ``chunk_function(model, chunk, params, rng) -> (stats, loglik)``.
    rng : numpy.random.Generator, optional
        Passed to the chunk function; chunks that draw from it run one after another, in order.
    chunk_size : int, optional
        Rows per chunk (default: the model's ``chunk_rows``; shared between threads, since it
        is the model's memory budget for the whole pass).
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
    if threaded and rng is None and model.thread_safe and type(data[0]) is np.ndarray:
        threads = usable_threads(n_threads)
    if chunk_size is None:
        chunk_size = model.chunk_rows(data)
        if chunk_size and threads > 1 and n > chunk_size:
            chunk_size = max(256, chunk_size // threads)
    if not chunk_size or n <= chunk_size:
        return chunk_function(model, data, params, rng)
    step = int(chunk_size)
    results = parallel_map(
        lambda start: chunk_function(model, model.take_rows(data, slice(start, start + step)), params, rng),
        range(0, n, step), n_threads=threads)
    total, loglik = None, 0.0
    for stats, ll in results:
        total = stats if total is None else tree_add(total, stats)
        loglik += ll
    return total, loglik
