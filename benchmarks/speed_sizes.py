"""Speed of emkit's Gaussian mixture across sizes, against scikit-learn, and on wide data.

Three parts (issue 14, items 1-3); nothing here asserts anything, it prints tables:

``sizes``   seconds per iteration per row of emkit from 10,000 to 1,000,000 (10,000,000 with
            ``--big``) rows, D = 16, K = 16, full and diag, and each size's figure divided by
            the largest size's (target: within 1.5x).
``ratios``  emkit against scikit-learn from the same start (tol=0, fixed max_iter, the same
            weights, means and precisions): full and diag at 200,000 x 16, K = 16 (targets 8x
            and 6x), emkit float32 against emkit float64 (2x), 10,000 x 2, K = 3 (5x).
``wide``    D = 256 and 1,024 (N = 10 D, K = 4, full) and D = 5,000 with K = 1: s/iter and peak
            memory above the data, each fit in a fresh process (target: at least as fast as
            scikit-learn, peak memory no higher).

Usage::

    .venv/bin/python benchmarks/speed_sizes.py sizes [--big] [--rounds 3]
    .venv/bin/python benchmarks/speed_sizes.py ratios [--rounds 3]
    .venv/bin/python benchmarks/speed_sizes.py wide
    .venv/bin/python benchmarks/speed_sizes.py all

The machine is shared: every table interleaves the things it compares and repeats them
(``--rounds``), and shows the best round of each (the least disturbed one) and ratios taken
from those.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings

import numpy as np

REG_COVAR = 1e-6
#: the clock of the per-iteration timings (``--clock cpu``: CPU seconds of the process, one thread)
CLOCK = time.perf_counter


# --------------------------------------------------------------------------- machine
def cpu_facts() -> str:
    model, flags = "?", []
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
        for line in text.splitlines():
            if line.startswith("model name") and model == "?":
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = line.split(":", 1)[1].split()
    except OSError:
        pass
    simd = [f for f in ("avx2", "fma", "avx512f", "avx512dq", "avx512bw", "avx512vl") if f in flags]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    import numpy

    from emkit.models.gaussian_kernels import VECTOR_EXP64
    disabled = os.environ.get("NPY_DISABLE_CPU_FEATURES")
    return (f"CPU: {model}, {os.cpu_count()} cores, avx512f={'avx512f' in flags}, flags {' '.join(simd)}; "
            f"numpy {numpy.__version__} (float64 exp vectorised: {VECTOR_EXP64}"
            f"{'; disabled: ' + disabled if disabled else ''}); load {load:.2f}")


# --------------------------------------------------------------------------- data and start
def make_data(n: int, d: int, k: int, dtype="float64", seed: int = 0) -> np.ndarray:
    """K clusters with per-feature scales (as benchmarks/run.py), written block by block."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    centers = rng.uniform(-6.0, 6.0, size=(k, d)).astype(dtype)
    scales = rng.uniform(0.5, 1.5, size=(k, d)).astype(dtype)
    x = np.empty((n, d), dtype=dtype)
    block = 100_000
    for start in range(0, n, block):
        stop = min(start + block, n)
        labels = rng.integers(0, k, size=stop - start)
        x[start:stop] = rng.standard_normal((stop - start, d), dtype=dtype)
        x[start:stop] *= scales[labels]
        x[start:stop] += centers[labels]
    return x


def start(x: np.ndarray, k: int, cov_type: str, seed: int = 1) -> dict:
    """Uniform weights, K distinct rows as means, the per-feature variance as every covariance."""
    rng = np.random.default_rng(seed)
    d = x.shape[1]
    rows = rng.choice(x.shape[0], size=min(10_000, x.shape[0]), replace=False)
    sample = x[np.sort(rows)].astype(np.float64)
    means = sample[rng.choice(sample.shape[0], size=k, replace=False)]
    var = np.maximum(np.nanvar(sample, axis=0), 1e-3)
    if cov_type == "full":
        prec = np.repeat(np.diag(1.0 / var)[None], k, axis=0)
    elif cov_type == "tied":
        prec = np.diag(1.0 / var)
    elif cov_type == "diag":
        prec = np.tile(1.0 / var, (k, 1))
    else:
        prec = np.full(k, 1.0 / var.mean())
    return {"weights_init": np.full(k, 1.0 / k), "means_init": means, "precisions_init": prec}


def emkit_fit(x, k, cov_type, init, max_iter):
    import emkit
    stamps = []
    g = emkit.GaussianMixture(k, covariance_type=cov_type, tol=0.0, max_iter=max_iter, reg_covar=REG_COVAR,
                              callback=lambda it, p, ll: stamps.append(CLOCK()), **init)
    t0 = CLOCK()
    g.fit(x)
    total = CLOCK() - t0
    per_iter = float(np.median(np.diff(stamps))) if len(stamps) > 2 else total / max_iter
    return total, per_iter, float(g.loglik_trace_[-1]) / x.shape[0]


def sklearn_fit(x, k, cov_type, init, max_iter):
    from sklearn.mixture import GaussianMixture
    g = GaussianMixture(k, covariance_type=cov_type, tol=0.0, max_iter=max_iter, reg_covar=REG_COVAR,
                        init_params="random_from_data", random_state=0, **init)
    t0 = CLOCK()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g.fit(x)
    total = CLOCK() - t0
    return total, total / max_iter, float(g.score(x))


# --------------------------------------------------------------------------- item 1: sizes
#: EM iterations of every fit of the sizes table (its figure: their median)
SIZES_ITERATIONS = 8


def part_sizes(rounds: int, big: bool) -> None:
    sizes = [10_000, 50_000, 200_000, 1_000_000] + ([10_000_000] if big else [])
    d, k = 16, 16
    print(f"\n== sizes: emkit seconds per iteration per row, D={d}, K={k} (median iteration of a fit of "
          f"{SIZES_ITERATIONS} iterations, best of several fits where one is short, and of {rounds} interleaved "
          f"rounds; clock: {'CPU, one thread' if CLOCK is time.process_time else 'wall'})")
    data = {n: make_data(n, d, k) for n in sizes}
    best: dict = {}
    warnings.simplefilter("ignore")
    for cov in ("full", "diag"):  # warm-up: imports, thread pool
        emkit_fit(data[sizes[0]], k, cov, start(data[sizes[0]], k, cov), 3)
    for r in range(rounds):
        for cov in ("full", "diag"):
            for n in sizes:
                x = data[n]
                # the same iterations at every size (later iterations cost more: components
                # drift from the centre and take their own products), the best of several fits
                # where a fit is short
                iters = SIZES_ITERATIONS
                per = min(emkit_fit(x, k, cov, start(x, k, cov), iters)[1]
                          for _ in range(max(1, int(2.0e6 / (n * iters)))))
                key = (cov, n)
                best[key] = min(best.get(key, np.inf), per)
                print(f"  round {r + 1}: {cov:<5} N={n:>10,}  {per:.5f} s/iter  {per / n * 1e9:8.1f} ns/row", flush=True)
    print(f"\n{'cov':<6}{'N':>12}{'s/iter':>12}{'ns/iter/row':>14}{'vs largest N':>14}")
    for cov in ("full", "diag"):
        ref = best[(cov, sizes[-1])] / sizes[-1]
        for n in sizes:
            per_row = best[(cov, n)] / n
            print(f"{cov:<6}{n:>12,}{best[(cov, n)]:>12.5f}{per_row * 1e9:>14.1f}{per_row / ref:>13.2f}x")


# --------------------------------------------------------------------------- item 2: ratios
RATIO_CASES = [  # name, N, D, K, cov, dtype, max_iter
    ("full-f64", 200_000, 16, 16, "full", "float64", 10),
    ("full-f32", 200_000, 16, 16, "full", "float32", 10),
    ("diag-f64", 200_000, 16, 16, "diag", "float64", 10),
    ("small-full-f64", 10_000, 2, 3, "full", "float64", 20),
]


def part_ratios(rounds: int) -> None:
    print(f"\n== ratios: emkit vs scikit-learn, same start, tol=0, fixed max_iter; whole-fit seconds / "
          f"iterations, best of 25 fits (10,000 rows) or 3 (200,000) in each of {rounds} interleaved rounds; clock: "
          f"{'CPU, one thread each' if CLOCK is time.process_time else 'wall'}")
    warnings.simplefilter("ignore")
    data = {}
    for name, n, d, k, cov, dtype, it in RATIO_CASES:
        x = make_data(n, d, k, dtype)
        data[name] = (x, start(x, k, cov))
    x0 = make_data(2000, 16, 16)
    emkit_fit(x0, 16, "full", start(x0, 16, "full"), 2)
    sklearn_fit(x0, 16, "full", start(x0, 16, "full"), 2)
    best: dict = {}
    lls: dict = {}
    for r in range(rounds):
        for name, n, d, k, cov, dtype, it in RATIO_CASES:
            x, init = data[name]
            # short fits: best of several (a 0.15-0.5 s fit timed once is at the mercy of the
            # machine's slow spells, the same for both libraries)
            reps = 25 if n <= 10_000 else 3
            for lib, fit in (("emkit", emkit_fit), ("sklearn", sklearn_fit)):
                per = min(fit(x, k, cov, init, it)[0] for _ in range(reps)) / it
                ll = fit(x, k, cov, init, it)[2] if r == 0 and reps > 1 else None
                best[(name, lib)] = min(best.get((name, lib), np.inf), per)
                if ll is not None:
                    lls[(name, lib)] = ll
                print(f"  round {r + 1}: {name:<15}{lib:<8}{per:.6f} s/iter", flush=True)
    print(f"\n{'workload':<16}{'emkit s/iter':>14}{'sklearn s/iter':>16}{'ratio':>9}{'target':>8}")
    targets = {"full-f64": 8, "diag-f64": 6, "small-full-f64": 5, "full-f32": None}
    for name, *_ in RATIO_CASES:
        e, s = best[(name, "emkit")], best[(name, "sklearn")]
        t = targets[name]
        print(f"{name:<16}{e:>14.6f}{s:>16.6f}{s / e:>8.2f}x{('>= %dx' % t) if t else '':>8}")
    f64, f32 = best[("full-f64", "emkit")], best[("full-f32", "emkit")]
    print(f"emkit float32 vs emkit float64 (full, 200,000 rows): {f64 / f32:.2f}x faster (target >= 2x)")


# --------------------------------------------------------------------------- item 3: wide data
WIDE_CASES = [  # name, N, D, K
    ("D=256", 2_560, 256, 4),
    ("D=1024", 10_240, 1_024, 4),
    ("D=5000 K=1 N=1", 1, 5_000, 1),
    ("D=5000 K=1 N=10000", 10_000, 5_000, 1),
]


def _wide_worker(spec: dict) -> dict:
    """One fit in this (fresh) process: s/iter and peak RSS above the data."""
    lib, n, d, k, it = spec["lib"], spec["n"], spec["d"], spec["k"], spec["iter"]
    warnings.simplefilter("ignore")
    if lib == "emkit":
        import emkit  # noqa: F401
        fit = emkit_fit
    else:
        import sklearn.mixture  # noqa: F401
        fit = sklearn_fit
    if n <= 1:  # one row: a covariance from one row is degenerate; start from the identity
        x = make_data(max(n, 1), d, k)
        init = {"weights_init": np.full(k, 1.0 / k), "means_init": x[:1] + 0.1,
                "precisions_init": np.repeat(np.eye(d)[None], k, axis=0)}
        warm = make_data(3, 8, 1)
        fit(warm, 1, "full", {"weights_init": np.ones(1), "means_init": warm[:1],
                              "precisions_init": np.eye(8)[None]}, 1)
    else:
        warm = make_data(200, 8, k)
        fit(warm, k, "full", start(warm, k, "full"), 1)
        x = make_data(n, d, k)
        init = start(x, k, "full")
    import ctypes
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    with open("/proc/self/statm") as f:
        rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    t0 = time.perf_counter()
    total, per, ll = fit(x, k, "full", init, it)
    wall = time.perf_counter() - t0
    with open("/proc/self/status") as f:
        peak = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
    return {"s_per_iter": wall / it, "peak_above": max(peak - rss, 0), "data": x.nbytes, "ll": ll}


def part_wide(rounds: int, timeout: float) -> None:
    print(f"\n== wide data: full covariance, each fit in a fresh process, wall time / iterations and peak "
          f"RSS above the data; best of {rounds} rounds")
    best: dict = {}
    for r in range(rounds):
        for name, n, d, k in WIDE_CASES:
            it = 5 if d <= 1024 else 2
            for lib in ("emkit", "sklearn"):
                spec = {"lib": lib, "n": n, "d": d, "k": k, "iter": it}
                cmd = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)]
                try:
                    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
                    line = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
                    res = json.loads(line[-1]) if line else {"error": (out.stderr.strip().splitlines() or ["?"])[-1]}
                except subprocess.TimeoutExpired:
                    res = {"error": f"timed out after {timeout:.0f} s"}
                if "error" in res:
                    print(f"  round {r + 1}: {name:<20}{lib:<8} failed: {res['error'][:100]}", flush=True)
                    best.setdefault((name, lib), res)
                    continue
                print(f"  round {r + 1}: {name:<20}{lib:<8}{res['s_per_iter']:.4f} s/iter, peak above data "
                      f"{res['peak_above'] / 2**20:.1f} MiB", flush=True)
                old = best.get((name, lib))
                if old is None or "error" in old or res["s_per_iter"] < old["s_per_iter"]:
                    if old is not None and "peak_above" in old:
                        res["peak_above"] = min(res["peak_above"], old["peak_above"])
                    best[(name, lib)] = res
    print(f"\n{'case':<22}{'emkit s/iter':>14}{'sklearn':>10}{'speed':>8}{'emkit peak':>12}{'sklearn peak':>14}"
          f"{'data':>10}")
    for name, n, d, k in WIDE_CASES:
        e, s = best.get((name, "emkit"), {}), best.get((name, "sklearn"), {})
        if "error" in e or "error" in s:
            print(f"{name:<22} emkit: {e.get('error', 'ok')[:40]}  sklearn: {s.get('error', 'ok')[:40]}")
            continue
        print(f"{name:<22}{e['s_per_iter']:>14.4f}{s['s_per_iter']:>10.4f}{s['s_per_iter'] / e['s_per_iter']:>7.2f}x"
              f"{e['peak_above'] / 2**20:>9.1f} MiB{s['peak_above'] / 2**20:>10.1f} MiB"
              f"{e['data'] / 2**20:>7.1f} MiB")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", nargs="?", default="all", choices=("sizes", "ratios", "wide", "all"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--big", action="store_true", help="sizes: also 10,000,000 rows (1.3 GB)")
    parser.add_argument("--timeout", type=float, default=600.0, help="wide: seconds per fit")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="sizes, ratios: cpu = one thread each, CPU seconds of this process (robust on a "
                             "busy machine)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    global CLOCK
    if args.clock == "cpu":  # one thread everywhere: BLAS, OpenMP (scikit-learn), emkit's chunks
        from threadpoolctl import threadpool_limits
        threadpool_limits(limits=1)
        os.environ["EMKIT_NUM_THREADS"] = "1"
        CLOCK = time.process_time
    if args.worker:
        print(json.dumps(_wide_worker(json.loads(args.worker))))
        return 0
    print(cpu_facts())
    if args.part in ("sizes", "all"):
        part_sizes(args.rounds, args.big)
    if args.part in ("ratios", "all"):
        part_ratios(args.rounds)
    if args.part in ("wide", "all"):
        part_wide(max(1, min(args.rounds, 2)), args.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
