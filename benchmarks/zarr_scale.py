"""Out of core at scale: a Gaussian mixture fitted through Dask on a Zarr store of several GB.

Writes (once) a Zarr store of ``--rows`` x 16 float64 rows (25,000,000 rows: 3.2 GB on disk,
uncompressed), block by block so that writing it never holds more than one block, then fits
``emkit.GaussianMixture(16, covariance_type="full")`` for ``--iterations`` EM iterations

* on the store through ``dask.array.from_zarr`` and a local ``dask.distributed`` cluster
  (worker processes, each with a memory limit): the client process never holds the data, and
  its peak resident memory is reported;
* in memory, on the first ``--in-memory-rows`` rows as a NumPy array (the same start),

and prints the seconds per iteration per row of both and their ratio (the target: Dask within
2x of in memory). Both fits start from the same
parameters (uniform weights, 16 rows of the first block as means, the per-feature variances);
the seconds per iteration are timed between the start-up E-step and the last iteration (the
fit's one-off passes over the data, such as its checks for missing values, are not counted).

Usage::

    python benchmarks/zarr_scale.py                          # 3.2 GB store under /tmp (about 10 minutes)
    python benchmarks/zarr_scale.py --rows 2000000 --path /tmp/small.zarr   # a quick check
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402  (machine facts, the data generator's recipe)

D, K = 16, 16
BLOCK_ROWS = 1_000_000


def write_store(path: Path, rows: int, seed: int = 0) -> None:
    """The store of ``rows`` x 16 float64 (K well-separated clusters), one block at a time."""
    import zarr

    if path.exists():
        shutil.rmtree(path)
    store = zarr.create_array(str(path), shape=(rows, D), chunks=(BLOCK_ROWS, D), dtype="f8",
                              compressors=None)
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-6.0, 6.0, size=(K, D))
    scales = rng.uniform(0.5, 1.5, size=(K, D))
    for start in range(0, rows, BLOCK_ROWS):
        stop = min(start + BLOCK_ROWS, rows)
        labels = rng.integers(0, K, size=stop - start)
        store[start:stop] = rng.standard_normal((stop - start, D)) * scales[labels] + centers[labels]


def start_parameters(first_block: np.ndarray, seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    means = first_block[rng.choice(first_block.shape[0], size=K, replace=False)]
    variances = first_block.var(axis=0)
    return {"weights_init": np.full(K, 1.0 / K), "means_init": means,
            "precisions_init": np.stack([np.diag(1.0 / variances)] * K)}


def _fit(X, init: dict, iterations: int) -> tuple[float, float]:
    """Seconds per EM iteration (between the start-up E-step and the last iteration, so the
    fit's one-off checks of the data are not counted) and the final log-likelihood."""
    import warnings

    import emkit
    stamps: list[float] = []
    gm = emkit.GaussianMixture(K, covariance_type="full", tol=0.0, max_iter=iterations,
                               callback=lambda *_: stamps.append(time.perf_counter()), **init)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "did not converge": intended, tol=0
        gm.fit(X)
    return (stamps[-1] - stamps[0]) / (len(stamps) - 1), float(gm.loglik_trace_[-1])


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=25_000_000)
    parser.add_argument("--path", default="/tmp/emkit-scale.zarr")
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--in-memory-rows", type=int, default=4_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-memory", default="3GB", help="memory limit of each Dask worker")
    parser.add_argument("--keep", action="store_true", help="keep the store afterwards")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)

    import dask.array as da
    import zarr
    from dask.distributed import Client, LocalCluster

    path = Path(args.path)
    facts = bench.machine_facts()
    if not (path.exists() and zarr.open_array(str(path), mode="r").shape == (args.rows, D)):
        t = time.perf_counter()
        write_store(path, args.rows)
        print(f"wrote {path} in {time.perf_counter() - t:.0f} s")
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    print(f"store: {args.rows:,} x {D} float64, {size / 1e9:.2f} GB on disk")

    # the Dask fit first, so that the client's peak resident memory is the Dask fit's own
    init = start_parameters(np.asarray(zarr.open_array(str(path), mode="r")[:100_000]))
    _fit(np.asarray(zarr.open_array(str(path), mode="r")[:5000]), init, 1)  # imports, thread pools
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, memory_limit=args.worker_memory,
                      processes=True, dashboard_address=None) as cluster, Client(cluster):
        X = da.from_zarr(str(path))
        dask_seconds, dask_ll = _fit(X, init, args.iterations)
    dask_per_row = dask_seconds / args.rows
    client_peak = _peak_rss_bytes()

    first = np.asarray(zarr.open_array(str(path), mode="r")[: min(args.in_memory_rows, args.rows)])
    n_mem = first.shape[0]
    mem_seconds, mem_ll = _fit(first, init, args.iterations)
    mem_per_row = mem_seconds / n_mem
    del first

    result = {
        "rows": args.rows, "store_gb": size / 1e9, "iterations": args.iterations,
        "in_memory_rows": n_mem, "in_memory_us_per_row_iter": mem_per_row * 1e6,
        "dask_us_per_row_iter": dask_per_row * 1e6, "dask_over_in_memory": dask_per_row / mem_per_row,
        "dask_seconds_per_iteration": dask_seconds, "client_peak_rss_gb": client_peak / 1e9,
        "mean_loglik_dask": dask_ll / args.rows, "mean_loglik_in_memory": mem_ll / n_mem,
        "workers": args.workers, "worker_memory_limit": args.worker_memory,
    }
    print(json.dumps({"machine": {k: facts.get(k) for k in ("cpu_model", "cpu_count", "avx512f", "memory_gib")}}))
    print(f"in memory ({n_mem:,} rows): {mem_per_row * 1e6:.3f} us per row per iteration")
    print(f"Dask on Zarr ({args.rows:,} rows, {args.workers} workers x {args.worker_memory}): "
          f"{dask_per_row * 1e6:.3f} us per row per iteration ({dask_seconds:.1f} s per iteration)")
    print(f"ratio Dask / in memory: {dask_per_row / mem_per_row:.2f}x (target <= 2x)")
    print(f"client peak RSS during the Dask fit: {client_peak / 1e9:.2f} GB (the store is {size / 1e9:.2f} GB)")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": facts, "result": result}, indent=1))
    if not args.keep:
        shutil.rmtree(path, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
