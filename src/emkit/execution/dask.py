"""Dask execution of the EM statistics pass: every model runs on a cluster for free.

The model contract makes the E-step's statistics *additive over rows*, so one EM iteration on
Dask data is a single distributed pass: each block of rows computes its statistics with the
model's own ``e_step`` (or the hard / stochastic variant), the per-block results are summed
in a tree, and only the small total comes back to the client, which runs the M-step. Nothing
here knows about any particular model.

:func:`emkit.engine.statistics_pass` calls :func:`dask_statistics_pass` whenever an array of
the data is a Dask array, so ``emkit.em(model, (dask_X,))`` and every estimator's
``fit(dask_X)`` work unchanged, on

* the active ``dask.distributed.Client`` when there is one (worker processes, a cluster),
* otherwise Dask's default local scheduler (threads; blocks under half the model's
  ``min_chunk_rows`` run in turn on the calling thread instead, see
  :func:`_small_blocks_on_local_threads`).

Data that lives on disk (Zarr via :func:`dask.array.from_zarr`, Parquet via
:func:`dask.dataframe.read_parquet`) is read block by block on the workers in every
iteration, so a data set larger than the client's memory is fitted without loading it whole.
Because each iteration's graph is rebuilt from the data's own lineage, a worker that dies
mid-fit costs only a recomputation of its blocks: the result does not change.

Notes
-----
Every array of the data tuple must have the same number of rows; they are rechunked to the
row blocks of the first Dask array (other axes become one chunk), and NumPy arrays mixed in
are cut into the same blocks. Row chunk sizes must be known: convert a Dask DataFrame with
``to_dask_array(lengths=True)`` (the estimators do) or call ``compute_chunk_sizes()``.

Within a block the statistics pass is the engine's own, so the model's ``chunk_rows`` still
bounds the memory of one task. Hard and stochastic EM draw with one
:class:`numpy.random.Generator` per block, seeded from the engine's generator, so a fit is
reproducible for a fixed ``random_state`` and fixed row blocks (but draws differ from the
in-memory path, which uses one generator for all rows).
"""

from __future__ import annotations

import math
import weakref
from typing import Any, Sequence

import numpy as np

from emkit.core.arrays import is_dask, to_numpy, tree_add
from emkit.core.data import Data
from emkit.execution.local import ChunkFunction, e_step_chunk, local_statistics_pass

#: how many partial results one task of the reduction tree adds together
SPLIT_EVERY = 8

# Row blocks of recently used all-Dask data tuples: the engine calls the pass with the same
# arrays every iteration, and rebuilding the blocks (a rechunk plus graph optimisation) each
# time is wasted client work. Entries hold the arrays only weakly and vanish with them, so the
# cache never keeps a data set (or data persisted on a cluster) alive after a fit.
_BLOCK_CACHE: dict[int, tuple[list, list]] = {}
_BLOCK_CACHE_SIZE = 8


def dask_statistics_pass(model: Any, data: Sequence[Any], params: dict, *,
                         chunk_function: ChunkFunction = e_step_chunk,
                         rng: np.random.Generator | None = None,
                         chunk_size: int | None = None) -> tuple[Any, float]:
    """Sum of the model's statistics and observed log-likelihood over all blocks of Dask data.

    Parameters
    ----------
    model : emkit.models.base.Model
        Any model following the contract; it is sent to the workers (it must pickle).
    data : tuple of arrays
        Row-aligned arrays; at least one is a Dask array. ``None`` entries are kept as None.
    params : dict
        Current parameters (NumPy arrays); embedded once in the graph of this pass.
    chunk_function : callable
        ``chunk_function(model, chunk, params, rng) -> (stats, loglik)`` (module-level, so that
        it pickles): the model's E-step or the engine's hard / stochastic variant.
    rng : numpy.random.Generator, optional
        When given, seeds one generator per block for chunk functions that draw (None for
        exact EM, so restarts draw the same starting points as the in-memory path).
    chunk_size : int, optional
        Rows per chunk inside each block (default: the model's ``chunk_rows``).

    Returns
    -------
    stats, loglik
        The statistics container (NumPy arrays, as the model's ``e_step`` returns them) and
        the observed log-likelihood, computed in one distributed pass.
    """
    import dask

    blocks = row_blocks(data)
    if not blocks:
        raise ValueError(f"{model.display_name}: the data has no rows")
    if rng is None:
        seeds: list = [None] * len(blocks)
    else:
        entropy = int(rng.integers(0, 2**63 - 1))
        seeds = np.random.SeedSequence(entropy).spawn(len(blocks))
    # One graph key each for the model and the parameters: workers fetch them once per pass.
    model_key = dask.delayed(model, traverse=False)
    params_key = dask.delayed(_host_params(params), traverse=False)
    block_stats = dask.delayed(_block_statistics, pure=True)
    # blocks travel as plain tuples (Dask looks for its tasks inside plain tuples only); the
    # field names go alongside
    fields = data.fields if isinstance(data, Data) else None
    parts = [block_stats(model_key, block, fields, params_key, chunk_function, seed, chunk_size)
             for block, seed in zip(blocks, seeds)]
    total = _tree_reduce(parts)
    scheduler = "synchronous" if _small_blocks_on_local_threads(model, data, total) else None
    (stats, loglik), = dask.compute(total, scheduler=scheduler)
    return stats, float(loglik)


def _small_blocks_on_local_threads(model: Any, data: Sequence[Any], total: Any) -> bool:
    """Whether the blocks should run one after another: on Dask's local thread pool (no
    distributed client, no other scheduler configured) when every block is under half the
    model's smallest chunk worth a thread of its own (its ``min_chunk_rows``, the rule of the
    in-memory pass). The E-step of such a block is many small NumPy operations that hold the
    interpreter lock, and blocks side by side then run slower than in turn (missing values,
    20,000 x 16 in four blocks, float32: 66 ms a pass on two threads)."""
    import dask.base
    import dask.threaded

    minimum = getattr(model, "min_chunk_rows", None)
    if minimum is None or dask.base.get_scheduler(collections=[total]) is not dask.threaded.get:
        return False
    reference = next(a for a in data if is_dask(a))
    return 2 * max(int(c) for c in reference.chunks[0]) < int(minimum(tuple(data)))


def row_blocks(data: Sequence[Any]) -> list[tuple]:
    """The data tuple cut into aligned row blocks: one tuple of ``dask.delayed`` per block.

    Every Dask array is rechunked to the row chunks of the first Dask array (and to a single
    chunk along its other axes); NumPy (or torch / CuPy, copied to the host) arrays are cut
    into the same blocks. Empty blocks are dropped.

    Raises
    ------
    ValueError
        When there is no Dask array, when the arrays disagree on the number of rows, when an
        array has no row axis, or when row chunk sizes are unknown.
    """
    data = tuple(data)
    cached = _cache_lookup(data)
    if cached is not None:
        return cached

    import dask.array as da

    reference = next((a for a in data if is_dask(a)), None)
    if reference is None:
        raise ValueError("row_blocks needs at least one Dask array in the data tuple")
    for position, array in enumerate(data):
        if array is not None and getattr(array, "ndim", 0) == 0:
            raise ValueError(f"data array {position} is a scalar; every array of the data tuple "
                             "needs a row axis")
        if is_dask(array) and any(math.isnan(c) for c in array.chunks[0]):
            raise ValueError(
                f"data array {position} is a Dask array with unknown row chunk sizes; call "
                "`.compute_chunk_sizes()` on it, or convert a Dask DataFrame with "
                "`.to_dask_array(lengths=True)`")
    n_rows = int(reference.shape[0])
    for position, array in enumerate(data):
        if array is not None and int(array.shape[0]) != n_rows:
            raise ValueError(f"the data arrays must have the same number of rows: the first Dask "
                             f"array has {n_rows}, data array {position} has {int(array.shape[0])}")
    row_chunks = tuple(int(c) for c in reference.chunks[0])

    columns: list = []
    for array in data:
        if array is None:
            columns.append(None)
            continue
        if not is_dask(array):
            array = da.from_array(to_numpy(array), chunks=(row_chunks,) + tuple(array.shape[1:]))
        aligned = array.rechunk((row_chunks,) + tuple(-1 for _ in array.shape[1:]))
        columns.append(aligned.to_delayed().reshape(-1))
    blocks = [tuple(None if col is None else col[b] for col in columns)
              for b, size in enumerate(row_chunks) if size > 0]

    _cache_store(data, blocks)
    return blocks


def _cache_lookup(data: tuple) -> list | None:
    first = next((a for a in data if a is not None), None)
    entry = _BLOCK_CACHE.get(id(first))
    if entry is None or len(entry[0]) != len(data):
        return None
    refs, blocks = entry
    same = all((ref is None and a is None) or (ref is not None and ref() is a) for ref, a in zip(refs, data))
    return blocks if same else None


def _cache_store(data: tuple, blocks: list) -> None:
    if not all(a is None or is_dask(a) for a in data):
        return  # NumPy arrays cut into blocks: their identity is not a safe key
    key = id(next(a for a in data if a is not None))

    def forget(_ref, key=key):
        _BLOCK_CACHE.pop(key, None)

    while len(_BLOCK_CACHE) >= _BLOCK_CACHE_SIZE:
        _BLOCK_CACHE.pop(next(iter(_BLOCK_CACHE)))
    _BLOCK_CACHE[key] = ([None if a is None else weakref.ref(a, forget) for a in data], blocks)


# --------------------------------------------------------------------------- worker side
def _block_statistics(model, block: tuple, fields: tuple | None, params: dict, chunk_function: ChunkFunction,
                      seed: np.random.SeedSequence | None, chunk_size: int | None = None) -> tuple[Any, float]:
    """Statistics and log-likelihood of one block of rows (runs on a worker)."""
    block = tuple(block) if fields is None else Data(fields, block)
    rng = None if seed is None else np.random.default_rng(seed)
    # The in-memory pass, chunked by the model's chunk_rows; one thread per block, since Dask
    # already runs the blocks in parallel.
    stats, loglik = local_statistics_pass(model, block, params, chunk_function=chunk_function, rng=rng,
                                          chunk_size=chunk_size, n_threads=1)
    return stats, float(loglik)


def _sum_parts(*parts: tuple[Any, float]) -> tuple[Any, float]:
    """Add several (stats, loglik) pairs: one node of the reduction tree."""
    stats, loglik = parts[0]
    for more_stats, more_loglik in parts[1:]:
        stats = tree_add(stats, more_stats)
        loglik = loglik + more_loglik
    return stats, loglik


def _tree_reduce(parts: list, split_every: int = SPLIT_EVERY):
    """A tree of delayed :func:`_sum_parts` over ``parts`` (depth log_split_every(len))."""
    import dask

    add = dask.delayed(_sum_parts, pure=True)
    while len(parts) > 1:
        parts = [add(*parts[i:i + split_every]) if len(parts[i:i + split_every]) > 1 else parts[i]
                 for i in range(0, len(parts), split_every)]
    return parts[0]


def _host_params(params: dict) -> dict:
    """Parameters as NumPy arrays (workers compute on NumPy blocks)."""
    return {name: (value if isinstance(value, (np.ndarray, np.generic)) else to_numpy(value))
            for name, value in params.items()}
