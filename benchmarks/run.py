"""Gaussian-mixture EM benchmark: emkit against scikit-learn and pomegranate.

Every library fits the same data from the same initial parameters for exactly 20 EM
iterations (no early stop), each in a fresh subprocess, and the script reports

* seconds per iteration (wall time of ``fit`` divided by 20; each library's fixed overhead,
  such as a final E-step, is included),
* peak memory above the data: peak resident set size during the fit minus the resident
  set size once the data exist (the data are generated block by block straight into their
  final array, so generating them leaves no higher peak behind),
* the mean log-likelihood per row at the fitted parameters (a sanity check that every
  library ran the same iterations),
* speed ratios against scikit-learn in the same run, and emkit float64 / float32.

Usage::

    python benchmarks/run.py                 # the full workloads (several minutes)
    python benchmarks/run.py --quick         # small sizes, a smoke test of the harness
    python benchmarks/run.py --json out.json --device cuda --libraries emkit,sklearn

scikit-learn and pomegranate are optional: a library that is not installed is skipped with
a message. Nothing here asserts timings; see benchmarks/README.md for recorded runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np

N_ITER = 20
#: added to covariance diagonals by scikit-learn and emkit (scikit-learn's default)
REG_COVAR = 1e-6
LIBRARIES = ("emkit", "sklearn", "pomegranate")
#: a fit shorter than this is repeated until the fits add up to it (median fit reported) ...
MIN_SECONDS = 2.0
#: ... but never more than this many fits
MAX_REPEATS = 50


@dataclass(frozen=True)
class Workload:
    """One benchmark case: data shape, mixture size, covariance type and dtype."""

    name: str
    n_samples: int
    n_features: int
    n_components: int
    covariance_type: str  # "full" or "diag"
    dtype: str  # "float64" or "float32"


FULL_WORKLOADS = (
    Workload("full-f64", 1_000_000, 16, 16, "full", "float64"),
    Workload("full-f32", 1_000_000, 16, 16, "full", "float32"),
    Workload("diag-f64", 1_000_000, 16, 16, "diag", "float64"),
    Workload("small-full-f64", 10_000, 2, 3, "full", "float64"),
)
QUICK_WORKLOADS = (
    Workload("full-f64", 50_000, 16, 16, "full", "float64"),
    Workload("full-f32", 50_000, 16, 16, "full", "float32"),
    Workload("diag-f64", 50_000, 16, 16, "diag", "float64"),
    Workload("small-full-f64", 10_000, 2, 3, "full", "float64"),
)
#: scikit-learn seconds per iteration measured on the reference 2-core machine
SKLEARN_REFERENCE_S_PER_ITER = {"full-f64": 5.0, "diag-f64": 0.88, "small-full-f64": 0.0038}


# --------------------------------------------------------------------------- data and start
def make_data(workload: Workload, seed: int = 0) -> np.ndarray:
    """A well-separated K-cluster sample, written block by block into its final array so the
    process's peak memory is the data itself."""
    rng = np.random.default_rng(seed)
    d, k = workload.n_features, workload.n_components
    dtype = np.dtype(workload.dtype)
    centers = rng.uniform(-6.0, 6.0, size=(k, d)).astype(dtype)
    scales = rng.uniform(0.5, 1.5, size=(k, d)).astype(dtype)
    X = np.empty((workload.n_samples, d), dtype=dtype)
    block = 100_000
    for start in range(0, workload.n_samples, block):
        stop = min(start + block, workload.n_samples)
        labels = rng.integers(0, k, size=stop - start)
        X[start:stop] = rng.standard_normal((stop - start, d), dtype=dtype)
        X[start:stop] *= scales[labels]
        X[start:stop] += centers[labels]
    return X


def initial_parameters(X: np.ndarray, workload: Workload, seed: int = 1) -> dict:
    """The start every library uses: uniform weights, K distinct data rows as means, and the
    data's per-feature variance (from a 10,000-row subsample) as every covariance."""
    rng = np.random.default_rng(seed)
    k, d = workload.n_components, workload.n_features
    rows = rng.choice(X.shape[0], size=min(10_000, X.shape[0]), replace=False)
    sample = X[np.sort(rows)].astype(np.float64)
    means = sample[rng.choice(sample.shape[0], size=k, replace=False)]
    variances = np.tile(sample.var(axis=0), (k, 1))
    if workload.covariance_type == "full":
        covariances = np.stack([np.diag(v) for v in variances])
        precisions = np.stack([np.diag(1.0 / v) for v in variances])
    else:
        covariances, precisions = variances, 1.0 / variances
    return {"weights": np.full(k, 1.0 / k), "means": means, "covariances": covariances,
            "precisions": precisions}


# --------------------------------------------------------------------------- one library
def _fit_emkit(X, workload, init, device):
    import emkit

    import inspect
    names = inspect.signature(emkit.GaussianMixture.__init__).parameters
    options = dict(n_components=workload.n_components, covariance_type=workload.covariance_type,
                   tol=0.0, max_iter=N_ITER, weights_init=init["weights"], means_init=init["means"])
    if "precisions_init" in names:
        options["precisions_init"] = init["precisions"]
    else:
        options["covariances_init"] = init["covariances"]
    if "reg_covar" in names:
        options["reg_covar"] = REG_COVAR
    data = X
    if device != "cpu":
        import torch
        data = torch.as_tensor(X, device=device)
    model = emkit.GaussianMixture(**options)

    def run():
        model.fit(data)
        _sync(device)
        return model

    def mean_loglik():
        return float(model.loglik_trace_[-1]) / X.shape[0]

    return run, mean_loglik, lambda: int(model.n_iter_)


def _fit_sklearn(X, workload, init, device):
    from sklearn.mixture import GaussianMixture

    # init_params="random_from_data" only avoids a k-means run: weights, means and precisions
    # all come from the *_init arguments.
    model = GaussianMixture(n_components=workload.n_components, covariance_type=workload.covariance_type,
                            tol=0.0, max_iter=N_ITER, reg_covar=REG_COVAR, init_params="random_from_data",
                            weights_init=init["weights"], means_init=init["means"],
                            precisions_init=init["precisions"], random_state=0)

    def run():
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "did not converge": intended, tol=0
            model.fit(X)
        return model

    return run, lambda: float(model.score(X)), lambda: int(model.n_iter_)


def _fit_pomegranate(X, workload, init, device):
    import torch
    from pomegranate.distributions import Normal
    from pomegranate.gmm import GeneralMixtureModel

    dtype = torch.float32 if workload.dtype == "float32" else torch.float64
    dev = device if device != "cpu" else "cpu"
    covs = init["covariances"]
    components = [Normal(means=torch.tensor(init["means"][j], dtype=dtype, device=dev),  # copies: pomegranate updates in place
                         covs=torch.tensor(covs[j], dtype=dtype, device=dev),
                         covariance_type=workload.covariance_type)
                  for j in range(workload.n_components)]
    # tol=-inf: pomegranate stops when the improvement is below tol, so this runs max_iter.
    model = GeneralMixtureModel(components, priors=torch.tensor(init["weights"], dtype=dtype, device=dev),
                                max_iter=N_ITER, tol=-float("inf"))
    data = torch.as_tensor(X, device=dev)

    def run():
        with torch.no_grad():
            model.fit(data)
        _sync(device)
        return model

    def mean_loglik():
        with torch.no_grad():
            return float(model.log_probability(data).double().mean())

    return run, mean_loglik, lambda: N_ITER


FITTERS = {"emkit": _fit_emkit, "sklearn": _fit_sklearn, "pomegranate": _fit_pomegranate}
MODULES = {"emkit": "emkit", "sklearn": "sklearn", "pomegranate": "pomegranate"}


def _sync(device):
    if device != "cpu":
        import torch
        torch.cuda.synchronize()


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _release_free_heap() -> None:
    """Hand memory freed so far back to the OS (glibc), so that the fit cannot reuse pages the
    warm-up left resident without them counting as growth."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (Linux >= 4.0) so that imports and the warm-up, which
    may have peaked higher than the data, do not hide the fit's own peak."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_bytes() -> int:
    """Peak RSS since the last reset (VmHWM), or the lifetime peak where that is unavailable."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return usage if sys.platform == "darwin" else usage * 1024  # Linux reports KiB


def measure(library: str, workload: Workload, device: str, min_seconds: float = MIN_SECONDS) -> dict:
    """Fit one library on one workload in this process and measure it (the worker mode).

    A fit shorter than ``min_seconds`` is repeated, each time from a freshly built model with
    the same start, until the fits add up to ``min_seconds`` (at most ``MAX_REPEATS`` fits):
    a 10 ms fit timed once is at the mercy of one scheduler hiccup. The reported seconds per
    iteration are those of the median fit; the memory peak covers every fit."""
    import importlib
    importlib.import_module(MODULES[library])
    fitter = FITTERS[library]
    # Warm-up on a tiny copy of the workload: lazy imports, thread pools and kernels are
    # loaded before the data exist, so they do not count as memory above the data.
    tiny = Workload(workload.name, 2_000, workload.n_features, workload.n_components,
                    workload.covariance_type, workload.dtype)
    X_tiny = make_data(tiny, seed=5)
    fitter(X_tiny, tiny, initial_parameters(X_tiny, tiny), device)[0]()
    del X_tiny

    X = make_data(workload)
    init = initial_parameters(X, workload)
    run, mean_loglik, n_iter = fitter(X, workload, init, device)
    _release_free_heap()
    _reset_peak_rss()
    rss_data = _rss_bytes()
    peak_before = _peak_rss_bytes()
    if device != "cpu":
        import torch
        torch.cuda.reset_peak_memory_stats()
        gpu_base = torch.cuda.memory_allocated()
    fit_seconds = []
    while True:
        start = time.perf_counter()
        run()
        fit_seconds.append(time.perf_counter() - start)
        if sum(fit_seconds) >= min_seconds or len(fit_seconds) >= MAX_REPEATS:
            break
        run, mean_loglik, n_iter = fitter(X, workload, init, device)  # the same start again
    peak_after = _peak_rss_bytes()
    seconds = float(np.median(fit_seconds))
    result = {
        "library": library, "workload": workload.name, "device": device,
        "seconds": seconds, "n_iter": n_iter(), "s_per_iter": seconds / max(n_iter(), 1),
        "n_fits": len(fit_seconds), "fit_seconds": fit_seconds,
        "data_bytes": int(X.nbytes), "peak_above_data_bytes": max(peak_after - rss_data, 0),
        # > 0 when something before the fit already peaked higher (then the number above
        # is a lower bound); expected 0
        "peak_slack_bytes": max(peak_before - rss_data, 0),
    }
    if device != "cpu":
        import torch
        result["gpu_peak_above_data_bytes"] = int(torch.cuda.max_memory_allocated() - gpu_base)
    result["mean_loglik"] = mean_loglik()
    return result


# --------------------------------------------------------------------------- driver
def _run_in_subprocess(library: str, workload: Workload, device: str, timeout: float,
                       min_seconds: float = MIN_SECONDS) -> dict:
    spec = json.dumps({"library": library, "workload": asdict(workload), "device": device,
                       "min_seconds": min_seconds})
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", spec]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"library": library, "workload": workload.name, "error": f"timed out after {timeout:.0f} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"library": library, "workload": workload.name, "error": " | ".join(tail)}
    return json.loads(lines[-1])


def _available(library: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(MODULES[library]) is not None


def machine_facts() -> dict:
    """CPU model, core count, memory, library versions and BLAS of this machine."""
    facts = {"python": platform.python_version(), "platform": platform.platform(),
             "cpu_count": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            facts["cpu_model"] = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
        with open("/proc/cpuinfo") as f:  # without AVX-512 NumPy's float64 exp is scalar
            flags = next(line.split(":", 1)[1].split() for line in f if line.startswith("flags"))
        facts["cpu_simd_flags"] = sorted(f for f in flags if f.startswith(("avx", "fma", "sse4")))
        facts["avx512f"] = "avx512f" in flags
        if os.environ.get("NPY_DISABLE_CPU_FEATURES"):
            facts["emulated"] = {k: os.environ.get(k) for k in NO_AVX512_ENV}
        facts.update(exp_probe())
        with open("/proc/meminfo") as f:
            facts["memory_gib"] = round(int(f.readline().split()[1]) / 2**20, 1)
        facts["load_average_1min_before"] = os.getloadavg()[0]
    except (OSError, StopIteration):
        pass
    import importlib
    for name in ("numpy", "scipy", "numba", "sklearn", "torch", "pomegranate", "emkit"):
        try:
            facts[name] = importlib.import_module(name).__version__
        except Exception:  # noqa: BLE001 - a missing optional library is just not listed
            pass
    try:
        from threadpoolctl import threadpool_info
        facts["blas"] = [{k: info.get(k) for k in ("internal_api", "version", "num_threads", "threading_layer")}
                         for info in threadpool_info()]
    except ImportError:
        pass
    return facts


def combine_rounds(results: list[dict]) -> dict:
    """(library, workload) -> one result: the median seconds per iteration over the rounds
    that succeeded, the largest memory peak; an error only when every round failed."""
    grouped: dict = {}
    for r in results:
        grouped.setdefault((r["library"], r["workload"]), []).append(r)
    combined = {}
    for key, runs in grouped.items():
        good = [r for r in runs if "error" not in r]
        if not good:
            combined[key] = runs[-1]
            continue
        merged = dict(good[0])
        merged["s_per_iter"] = float(np.median([r["s_per_iter"] for r in good]))
        merged["s_per_iter_rounds"] = [r["s_per_iter"] for r in good]
        for field in ("peak_above_data_bytes", "gpu_peak_above_data_bytes"):
            if field in merged:
                merged[field] = max(r[field] for r in good)
        combined[key] = merged
    return combined


def _format_table(results: list[dict], workloads) -> str:
    by_key = combine_rounds(results)
    header = (f"{'workload':<16}{'library':<13}{'s/iter':>10}{'vs sklearn':>12}"
              f"{'peak above data':>17}{'% of data':>10}{'mean loglik':>14}")
    lines = [header, "-" * len(header)]
    for w in workloads:
        reference = by_key.get(("sklearn", w.name), {}).get("s_per_iter")
        for lib in LIBRARIES:
            r = by_key.get((lib, w.name))
            if r is None:
                continue
            if "error" in r:
                lines.append(f"{w.name:<16}{lib:<13}  failed: {r['error'][:90]}")
                continue
            ratio = f"{reference / r['s_per_iter']:.2f}x" if reference else "-"
            # on a GPU the memory that matters is the device's
            peak = r.get("gpu_peak_above_data_bytes", r["peak_above_data_bytes"])
            where = "GPU" if "gpu_peak_above_data_bytes" in r else "MiB"
            share = 100.0 * peak / r["data_bytes"]
            lines.append(f"{w.name:<16}{lib:<13}{r['s_per_iter']:>10.4g}{ratio:>12}"
                         f"{peak / 2**20:>13.1f} {where}{share:>9.1f}%{r['mean_loglik']:>14.6f}")
    f64, f32 = by_key.get(("emkit", "full-f64")), by_key.get(("emkit", "full-f32"))
    if f64 and f32 and "error" not in f64 and "error" not in f32:
        lines.append(f"emkit float32 vs emkit float64 (full): {f64['s_per_iter'] / f32['s_per_iter']:.2f}x faster")
    return "\n".join(lines)


def _avx512_dispatch_targets() -> str:
    """NumPy's AVX-512 dispatch targets, by this NumPy's names: NumPy >= 2.4 groups them as
    ``X86_V4`` (plus ``AVX512_ICL``, ``AVX512_SPR``) and only warns about, and ignores, the older
    names (``AVX512F``, ``AVX512_SKX``, ...), so a fixed list silently disables nothing."""
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__
    except ImportError:  # NumPy 1.x
        from numpy.core._multiarray_umath import __cpu_dispatch__  # type: ignore[no-redef]
    return " ".join(name for name in __cpu_dispatch__ if "AVX512" in name or name == "X86_V4")


#: what --no-avx512 sets (inherited by every worker): NumPy's dispatch without AVX-512 (its
#: float64 exp then runs scalar, as on CPUs that lack it), OpenBLAS's Haswell (AVX2) kernels and
#: Numba's code for a Haswell CPU (emkit's compiled missing-value loops)
NO_AVX512_ENV = {"NPY_DISABLE_CPU_FEATURES": _avx512_dispatch_targets(), "OPENBLAS_CORETYPE": "Haswell",
                 "NUMBA_CPU_NAME": "haswell"}

#: run in a fresh interpreter (with the workers' environment): nanoseconds per value of NumPy's
#: float64 exp, and whether emkit takes it as vectorised; the record shows what the emulation did
EXP_PROBE = ("import timeit, numpy as np; from emkit.models.gaussian_kernels import VECTOR_EXP64; "
             "a = np.linspace(-30.0, 0.0, 65536); o = np.empty_like(a); "
             "t = min(timeit.repeat(lambda: np.exp(a, out=o), number=50, repeat=5)) / 50; "
             "print(round(t / a.size * 1e9, 2), VECTOR_EXP64)")


def exp_probe() -> dict:
    """NumPy's float64 exp speed and emkit's view of it, as the workers see them."""
    out = subprocess.run([sys.executable, "-c", EXP_PROBE], capture_output=True, text=True, check=False)
    try:
        ns, vector = out.stdout.split()
        return {"numpy_exp64_ns_per_value": float(ns), "emkit_vector_exp64": vector == "True"}
    except ValueError:
        return {"exp_probe_error": out.stderr.strip()[-300:]}


def emulate_no_avx512() -> None:
    """Run this process's workers as on a CPU without AVX-512 (see :data:`NO_AVX512_ENV`)."""
    os.environ.update(NO_AVX512_ENV)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test of the harness)")
    parser.add_argument("--json", metavar="PATH", help="write the results and machine facts to PATH")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                        help="run emkit (and pomegranate) on torch CUDA tensors")
    parser.add_argument("--libraries", default=",".join(LIBRARIES),
                        help="comma-separated subset of " + ",".join(LIBRARIES))
    parser.add_argument("--workloads", default=None, help="comma-separated subset of workload names")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per library and workload")
    parser.add_argument("--min-seconds", type=float, default=MIN_SECONDS,
                        help="repeat a shorter fit until the fits add up to this (median fit reported; "
                             "0 times every fit once)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run everything this many times, interleaved; the table shows the median round")
    parser.add_argument("--extended", action="store_true",
                        help="after the table, the size, wide-data and missing-value benchmarks "
                             "(speed_sizes.py all, speed_missing.py) with the same --rounds")
    parser.add_argument("--big", action="store_true",
                        help="with --extended: the sizes table also at 10,000,000 rows (1.3 GB)")
    parser.add_argument("--no-avx512", action="store_true",
                        help="run the workers as on a CPU without AVX-512 (NumPy dispatch and OpenBLAS kernels)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.no_avx512:
        emulate_no_avx512()

    if args.worker:  # child process: one library, one workload
        spec = json.loads(args.worker)
        print(json.dumps(measure(spec["library"], Workload(**spec["workload"]), spec["device"],
                                 spec.get("min_seconds", MIN_SECONDS))))
        return 0

    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    if not args.min_seconds >= 0:
        parser.error(f"--min-seconds must be >= 0, got {args.min_seconds}")
    libraries = [name.strip() for name in args.libraries.split(",") if name.strip()]
    unknown = sorted(set(libraries) - set(LIBRARIES))
    if unknown:
        parser.error(f"unknown libraries {unknown}; choose from {LIBRARIES}")
    workloads = QUICK_WORKLOADS if args.quick else FULL_WORKLOADS
    if args.workloads:
        wanted = {name.strip() for name in args.workloads.split(",")}
        bad = sorted(wanted - {w.name for w in workloads})
        if bad:
            parser.error(f"unknown workloads {bad}; choose from {[w.name for w in workloads]}")
        workloads = tuple(w for w in workloads if w.name in wanted)
    if args.device == "cuda":
        try:
            import torch
            cuda = torch.cuda.is_available()
        except ImportError:
            cuda = False
        if not cuda:
            print("--device cuda: no CUDA device available; running on the CPU")
            args.device = "cpu"

    facts = machine_facts()
    print("machine:", json.dumps(facts))
    results = []
    for lib in libraries:
        if not _available(lib):
            print(f"skipping {lib}: not installed")
            libraries = [x for x in libraries if x != lib]
    # rounds are interleaved (every library and workload once, then again) so that a slow
    # spell of a shared machine hits every library alike rather than one of them
    for round_index in range(args.rounds):
        for w in workloads:
            for lib in libraries:
                device = args.device if lib in ("emkit", "pomegranate") else "cpu"
                if args.rounds > 1:
                    print(f"[round {round_index + 1}/{args.rounds}] ", end="")
                print(f"running {lib:<12} {w.name} (N={w.n_samples:,}, D={w.n_features}, K={w.n_components}, "
                      f"{w.covariance_type}, {w.dtype}, {device}) ...", flush=True)
                r = _run_in_subprocess(lib, w, device, args.timeout, args.min_seconds)
                if "error" in r:
                    print(f"    failed: {r['error']}")
                else:
                    print(f"    {r['s_per_iter']:.4g} s/iter (median of {r['n_fits']} fit(s)), peak above data "
                          f"{r['peak_above_data_bytes'] / 2**20:.1f} MiB", flush=True)
                r["round"] = round_index
                results.append(r)
                if args.json:  # after every run, so an interrupted benchmark keeps what it measured
                    _write_json(args.json, facts, args.quick, results)
    print()
    print(_format_table(results, workloads))
    if args.json:
        print(f"wrote {args.json}")
    if args.extended:
        run_extended(args.rounds, big=args.big)
    return 0


def run_extended(rounds: int, big: bool = False) -> None:
    """The benchmarks of sizes, scikit-learn ratios at 200,000 rows, wide data and missing
    values (NumPy; torch and Dask at 20,000 rows), each in its own process (they inherit
    --no-avx512's environment); ``big`` adds 10,000,000 rows to the sizes."""
    here = os.path.dirname(os.path.abspath(__file__))
    for script, extra in (("speed_sizes.py", ["all"] + (["--big"] if big else [])), ("speed_missing.py", []),
                          ("speed_missing.py", ["--backends", "torch,dask", "--sizes", "20000"])):
        cmd = [sys.executable, os.path.join(here, script), *extra, "--rounds", str(max(rounds, 2))]
        print(f"\n$ {' '.join(os.path.basename(c) if c.endswith('.py') else c for c in cmd[1:])}", flush=True)
        subprocess.run(cmd, check=False)


def _write_json(path: str, facts: dict, quick: bool, results: list[dict]) -> None:
    with open(path, "w") as f:
        json.dump({"machine": facts, "quick": quick, "n_iter": N_ITER, "results": results,
                   "sklearn_reference_s_per_iter": SKLEARN_REFERENCE_S_PER_ITER}, f, indent=2)


if __name__ == "__main__":
    sys.exit(main())
