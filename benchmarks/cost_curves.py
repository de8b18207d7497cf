"""Cost curves: seconds per EM iteration against N, K and D, emkit beside scikit-learn.

Three sweeps of Gaussian-mixture fits (full covariances, float64), every point fitted by both
libraries from the same start for a fixed number of iterations (``tol=0``), exactly as
``benchmarks/run.py`` does (its data, start and fitting functions are reused):

* N from 10,000 to 10,000,000 rows (D = 16, K = 16),
* K from 1 to 256 components (N = 20,000, D = 16),
* D from 1 to 1,024 columns (N = 20,000, K = 4).

It prints one table per sweep (seconds per iteration, microseconds per row, the ratio) and the
growth exponent of each library on each sweep (the least-squares slope of log seconds per
iteration against log N, K or D over the sweep's upper half, where fixed costs no longer
dominate), writes the numbers to ``--json`` and draws ``--png`` (three log-log panels).

Usage::

    python benchmarks/cost_curves.py                       # the whole sweeps (about 15 minutes on 2 cores)
    python benchmarks/cost_curves.py --quick               # small sizes: checks the script
    python benchmarks/cost_curves.py --png benchmarks/cost_curves.png --json cost_curves.json

Nothing here asserts timings; benchmarks/README.md records runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402  (benchmarks/run.py: data, start, fitting functions, machine facts)

SWEEPS = {
    "N": dict(values=[10_000, 30_000, 100_000, 300_000, 1_000_000, 3_000_000, 10_000_000], fixed=dict(d=16, k=16)),
    "K": dict(values=[1, 2, 4, 8, 16, 32, 64, 128, 256], fixed=dict(n=20_000, d=16)),
    "D": dict(values=[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024], fixed=dict(n=20_000, k=4)),
}
QUICK = {
    "N": dict(values=[10_000, 30_000, 100_000], fixed=dict(d=8, k=4)),
    "K": dict(values=[1, 4, 16], fixed=dict(n=5_000, d=4)),
    "D": dict(values=[2, 8, 32], fixed=dict(n=5_000, k=2)),
}
#: each fit runs this many iterations ...
ITERATIONS = 3
#: ... and is repeated (best kept) until the repeats take this long, at most REPEATS times
MIN_SECONDS = 1.0
REPEATS = 3


def _point(sweep: str, value: int, fixed: dict) -> bench.Workload:
    shape = dict(fixed)
    shape[{"N": "n", "K": "k", "D": "d"}[sweep]] = value
    return bench.Workload(f"{sweep}={value}", shape["n"], shape["d"], shape["k"], "full", "float64")


#: "wall" (time.perf_counter) or "cpu" (time.process_time: CPU seconds of every thread of the
#: process, BLAS included; steadier on a shared machine, equal to wall time times the cores used)
CLOCK = "wall"


def _seconds_per_iteration(library: str, workload: bench.Workload, X: np.ndarray, init: dict) -> float:
    run, _, n_iter = bench.FITTERS[library](X, workload, init, "cpu")
    best, spent, repeats = float("inf"), 0.0, 0
    clock = time.process_time if CLOCK == "cpu" else time.perf_counter
    while repeats < REPEATS and (repeats == 0 or spent < MIN_SECONDS):
        start = clock()
        run()
        elapsed = clock() - start
        best, spent, repeats = min(best, elapsed / max(n_iter(), 1)), spent + elapsed, repeats + 1
    return best


def growth_exponent(xs, ys) -> float:
    """Least-squares slope of log y against log x over the upper half of the points."""
    xs, ys = np.log(np.asarray(xs, dtype=float)), np.log(np.asarray(ys, dtype=float))
    half = len(xs) // 2
    xs, ys = xs[half:], ys[half:]
    return float(np.polyfit(xs, ys, 1)[0]) if len(xs) >= 2 else float("nan")


def run_sweeps(sweeps: dict, libraries: list[str]) -> dict:
    bench.N_ITER = ITERATIONS
    warm = _point("N", 2_000, dict(d=4, k=2))  # imports, thread pools and caches before timing
    X = bench.make_data(warm)
    for library in libraries:
        _seconds_per_iteration(library, warm, X, bench.initial_parameters(X, warm))
    results: dict = {}
    for sweep, spec in sweeps.items():
        rows = []
        for value in spec["values"]:
            workload = _point(sweep, value, spec["fixed"])
            X = bench.make_data(workload)
            init = bench.initial_parameters(X, workload)
            row = {"value": value, "n": workload.n_samples, "d": workload.n_features, "k": workload.n_components}
            for library in libraries:
                row[library] = _seconds_per_iteration(library, workload, X, init)
            rows.append(row)
            print(f"  {sweep}={value}: " + ", ".join(f"{lib} {row[lib]:.4g} s/iter" for lib in libraries), flush=True)
            del X
        results[sweep] = {"rows": rows, "fixed": spec["fixed"],
                          "exponents": {lib: growth_exponent([r["value"] for r in rows], [r[lib] for r in rows])
                                        for lib in libraries}}
    return results


def format_tables(results: dict, libraries: list[str]) -> str:
    lines = []
    for sweep, res in results.items():
        fixed = ", ".join(f"{k.upper()} = {v:,}" for k, v in res["fixed"].items())
        lines.append(f"\n### {sweep} sweep ({fixed}, full covariances, float64)\n")
        head = "| " + sweep + " | " + " | ".join(f"{lib} s/iter | {lib} us/row" for lib in libraries)
        if "sklearn" in libraries and "emkit" in libraries:
            head += " | emkit vs sklearn"
        lines.append(head + " |")
        lines.append("|" + "---|" * (1 + 2 * len(libraries) + ("sklearn" in libraries and "emkit" in libraries)))
        for r in res["rows"]:
            cells = [f"{r['value']:,}"]
            for lib in libraries:
                cells += [f"{r[lib]:.4g}", f"{r[lib] / r['n'] * 1e6:.3g}"]
            if "sklearn" in libraries and "emkit" in libraries:
                cells.append(f"{r['sklearn'] / r['emkit']:.2f}x")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("\ngrowth exponent (upper half): " + ", ".join(
            f"{lib} {res['exponents'][lib]:.2f}" for lib in libraries))
    return "\n".join(lines)


def plot(results: dict, libraries: list[str], path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 3.6))
    for ax, (sweep, res) in zip(np.atleast_1d(axes), results.items()):
        xs = [r["value"] for r in res["rows"]]
        for lib, style in zip(libraries, ("o-", "s--", "^:")):
            ax.loglog(xs, [r[lib] for r in res["rows"]], style,
                      label=f"{lib} (exponent {res['exponents'][lib]:.2f})")
        fixed = ", ".join(f"{k.upper()}={v:,}" for k, v in res["fixed"].items())
        ax.set_xlabel(sweep)
        ax.set_ylabel("seconds per iteration")
        ax.set_title(f"{sweep} ({fixed})", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Gaussian mixture EM, full covariances, float64: cost per iteration", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a check of the script)")
    parser.add_argument("--sweeps", default="N,K,D", help="comma-separated subset of N,K,D")
    parser.add_argument("--libraries", default="emkit,sklearn")
    parser.add_argument("--json", help="write the results and machine facts here")
    parser.add_argument("--png", help="draw the three panels here")
    parser.add_argument("--no-avx512", action="store_true", help="as on a CPU without AVX-512 (see run.py)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall time, or CPU time of the process (steadier on a shared machine)")
    parser.add_argument("--max-n", type=int, help="leave out N sweep points above this")
    parser.add_argument("--max-d", type=int, help="leave out D sweep points above this")
    args = parser.parse_args(argv)
    global CLOCK
    CLOCK = args.clock
    if args.no_avx512 and "NPY_DISABLE_CPU_FEATURES" not in os.environ:  # NumPy reads it at import
        bench.emulate_no_avx512()
        os.execv(sys.executable, [sys.executable, *sys.argv])
    libraries = [lib for lib in args.libraries.split(",") if bench._available(lib)]
    chosen = {name: spec for name, spec in (QUICK if args.quick else SWEEPS).items()
              if name in args.sweeps.split(",")}
    if args.max_n and "N" in chosen:
        chosen["N"] = dict(chosen["N"], values=[v for v in chosen["N"]["values"] if v <= args.max_n])
    if args.max_d and "D" in chosen:
        chosen["D"] = dict(chosen["D"], values=[v for v in chosen["D"]["values"] if v <= args.max_d])
    facts = bench.machine_facts()
    facts["clock"] = args.clock
    print("machine:", json.dumps(facts))
    results = run_sweeps(chosen, libraries)
    print(format_tables(results, libraries))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": facts, "results": results}, indent=1))
    if args.png:
        plot(results, libraries, args.png)
        print("wrote", args.png)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
