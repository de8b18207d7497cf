"""Cost of missing values in emkit's Gaussian mixture (issue 14, item 4).

For each covariance type and dtype, one EM iteration on the complete data and on the same data
with a fraction of the entries deleted at random (NaN), side by side in one process, repeated
in interleaved rounds; the table shows the best round of each and the ratio missing /
complete (target: at most 5x), and the number of missingness patterns. Optionally the same on
torch CPU tensors and on Dask arrays (``--backends numpy,torch,dask``).

Usage::

    .venv/bin/python benchmarks/speed_missing.py                       # 20,000 and 200,000 rows
    .venv/bin/python benchmarks/speed_missing.py --sizes 20000 --types full,diag --dtypes float64
    .venv/bin/python benchmarks/speed_missing.py --backends numpy,torch,dask --sizes 20000
    .venv/bin/python benchmarks/speed_missing.py --baseline /tmp/old/src  # an older emkit, same table

Seconds per iteration are the median time between consecutive iterations of a fit (the
engine's callback), so the fit's one-off costs are left out. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np


def make_data(n, d, k, dtype, frac, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-6.0, 6.0, size=(k, d))
    scales = rng.uniform(0.5, 1.5, size=(k, d))
    labels = rng.integers(0, k, size=n)
    x = (rng.standard_normal((n, d)) * scales[labels] + centers[labels]).astype(dtype)
    xm = x.copy()
    mask = rng.random(x.shape) < frac
    full = mask.all(axis=1)
    mask[full, 0] = False  # every row keeps an observed entry
    xm[mask] = np.nan
    return x, xm


def start(x, k, cov_type, seed=1):
    rng = np.random.default_rng(seed)
    d = x.shape[1]
    complete = x[~np.isnan(x).any(axis=1)]
    means = complete[rng.choice(len(complete), size=k, replace=False)].astype(np.float64)
    var = np.nanvar(x[:10_000].astype(np.float64), axis=0)
    prec = {"full": lambda: np.repeat(np.diag(1 / var)[None], k, 0), "tied": lambda: np.diag(1 / var),
            "diag": lambda: np.tile(1 / var, (k, 1)), "spherical": lambda: np.full(k, 1 / var.mean())}[cov_type]()
    return {"weights_init": np.full(k, 1.0 / k), "means_init": means, "precisions_init": prec}


def to_backend(x, backend):
    if backend == "torch":
        import torch
        return torch.as_tensor(x)
    if backend == "dask":
        import dask.array as da
        return da.from_array(x, chunks=(max(1, x.shape[0] // 4), x.shape[1]))
    return x


CLOCK = time.perf_counter


def per_iteration(x, k, cov_type, init, iters):
    import emkit
    stamps = []
    g = emkit.GaussianMixture(k, covariance_type=cov_type, tol=0.0, max_iter=iters,
                              callback=lambda it, p, ll: stamps.append(CLOCK()), **init)
    g.fit(x)
    return float(np.median(np.diff(stamps))), float(g.loglik_)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="20000,200000")
    parser.add_argument("--types", default="full,tied,diag,spherical")
    parser.add_argument("--dtypes", default="float64,float32")
    parser.add_argument("--backends", default="numpy")
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--components", type=int, default=16)
    parser.add_argument("--baseline", help="import emkit from this src directory instead")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="cpu: one thread, CPU seconds of this process (robust on a busy machine)")
    args = parser.parse_args(argv)
    global CLOCK
    if args.clock == "cpu":  # one thread everywhere: BLAS, OpenMP (scikit-learn), emkit's chunks
        from threadpoolctl import threadpool_limits
        threadpool_limits(limits=1)
        os.environ["EMKIT_NUM_THREADS"] = "1"
        CLOCK = time.process_time
    if args.baseline:
        sys.path.insert(0, args.baseline)
    import emkit
    warnings.simplefilter("ignore")
    with open("/proc/cpuinfo") as f:
        flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    from emkit.models.gaussian_kernels import VECTOR_EXP64
    print(f"emkit from {os.path.dirname(emkit.__file__)}; {os.cpu_count()} cores, avx512f={'avx512f' in flags}, "
          f"numpy float64 exp vectorised: {VECTOR_EXP64}; load {os.getloadavg()[0]:.2f}; clock: {args.clock}")
    d, k = args.features, args.components
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    cases = [(n, t, dt, b) for n in sizes for dt in args.dtypes.split(",") for t in args.types.split(",")
             for b in args.backends.split(",")]
    data = {(n, dt): make_data(n, d, k, dt, args.fraction) for n in sizes for dt in args.dtypes.split(",")}
    warm = make_data(3000, d, k, "float64", args.fraction)
    for t in args.types.split(","):
        per_iteration(warm[1], k, t, start(warm[1], k, t), 2)
    best: dict = {}
    for r in range(args.rounds):
        for n, t, dt, b in cases:
            x, xm = data[(n, dt)]
            init = start(xm, k, t)
            iters = int(min(30, max(10, 1e6 / n)))  # a median of at least 9 iterations
            for which, arr in (("complete", x), ("missing", xm)):
                per, ll = per_iteration(to_backend(arr, b), k, t, init, iters)
                key = (n, t, dt, b, which)
                if per < best.get(key, (np.inf,))[0]:
                    best[key] = (per, ll)
            c, m = best[(n, t, dt, b, "complete")][0], best[(n, t, dt, b, "missing")][0]
            print(f"  round {r + 1}: N={n:,} {t:<9} {dt:<7} {b:<5}  complete {c:.4f}  missing {m:.4f}  "
                  f"{m / c:.2f}x", flush=True)
    print(f"\n{'N':>9} {'type':<10}{'dtype':<8}{'backend':<8}{'patterns':>9}{'complete s/it':>15}"
          f"{'missing s/it':>14}{'ratio':>8}")
    for n, t, dt, b in cases:
        xm = data[(n, dt)][1]
        patterns = len(np.unique(np.packbits(np.isnan(xm), axis=1), axis=0))
        c, m = best[(n, t, dt, b, "complete")][0], best[(n, t, dt, b, "missing")][0]
        print(f"{n:>9,} {t:<10}{dt:<8}{b:<8}{patterns:>9,}{c:>15.4f}{m:>14.4f}{m / c:>7.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
