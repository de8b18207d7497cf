"""Where the remaining time goes: measurements behind the speed targets that sit at their limits
(issue 14 item 2, diag at 200,000 rows; item 4, missing values at 20,000 rows; issue 15 item 5,
the model search on Old Faithful). Nothing here asserts; each part prints what it measured.

``hardware``  how well the machine's two cores run two copies of a chunk's own work side by
              side, with no interpreter lock involved: a (16 x 32) @ (32 x 7,139) product
              (the diag E-step's log-density product on one chunk) and float64 ``exp`` on
              100,000 values, one thread alone against two threads at once.
``diag``      200,000 x 16, K = 16, diag, from the benchmark's start: the E-step pass with one
              thread and with two, each thread's busy share of a two-thread pass (the chunk
              timeline), and each step of a chunk with one thread and with two: what is lost
              is inside the chunks (every step, the products too, runs slower beside the other
              thread), not in hand-offs.
``missing``   20,000 x 16, K = 16, full, 10 % missing (the parameters after 10 iterations):
              the missing-value pass over all rows with missing entries in one call, against
              the same rows as two halves (in pattern order, so no pattern's terms are worked
              out twice) one after the other, and on two threads side by side.
``small``     Old Faithful, K = 5, full: emkit's E-step (new parameters each time, so its
              per-parameter set-up is included) against a 20-line NumPy E-step that gives the
              same statistics; and, over mclust's 14 forms x G = 1..9 from the hierarchical
              start (relative tolerance 1e-5), the EM iterations of all fits against the sum
              over the forms of the largest G's count (the iterations a search that ran the
              nine G of a form side by side, batched, would still run).

Usage::

    .venv/bin/python benchmarks/floors.py              # every part (about 2 minutes)
    .venv/bin/python benchmarks/floors.py hardware diag
    .venv/bin/python benchmarks/floors.py --no-avx512  # as on a CPU without AVX-512 (re-runs itself)
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import threading
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
NO_AVX512 = {"NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR", "OPENBLAS_CORETYPE": "Haswell",
             "NUMBA_CPU_NAME": "haswell"}


def _best(fn, number: int, repeat: int = 5) -> float:
    """Seconds per call: the best of ``repeat`` runs of ``number`` calls."""
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t0) / number)
    return best


def _side_by_side(fn_of_slot, number: int) -> float:
    """Seconds per call of each of two threads running ``fn_of_slot(slot)`` at once."""
    def run(slot):
        for _ in range(number):
            fn_of_slot(slot)
    best = math.inf
    for _ in range(3):
        threads = [threading.Thread(target=run, args=(s,)) for s in (0, 1)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        best = min(best, (time.perf_counter() - t0) / number)
    return best


def part_hardware() -> None:
    from threadpoolctl import threadpool_limits
    print("\n== hardware: one thread alone against two side by side (no interpreter lock involved)")
    rng = np.random.default_rng(0)
    coef = rng.random((16, 32))
    stacked = [rng.random((32, 7139)) for _ in range(2)]
    out = [np.empty((16, 7139)) for _ in range(2)]
    values = [rng.uniform(-40.0, 0.0, 100_000) for _ in range(2)]
    exps = [np.empty(100_000) for _ in range(2)]
    cases = [("product (16 x 32) @ (32 x 7,139)", lambda s: np.matmul(coef, stacked[s], out=out[s]), 2000),
             ("float64 exp, 100,000 values", lambda s: np.exp(values[s], out=exps[s]), 300)]
    with threadpool_limits(limits=1):
        for label, fn, number in cases:
            one = _best(lambda: fn(0), number, repeat=3)
            two = _side_by_side(fn, number)
            print(f"  {label:<36} alone {one * 1e6:8.1f} us   two at once {two * 1e6:8.1f} us each   "
                  f"scaling {2 * one / two:.2f} of 2")


def _diag_fit_parts():
    sys.path.insert(0, HERE)
    from speed_sizes import make_data, start
    x = make_data(200_000, 16, 16)
    return x, start(x, 16, "diag")


def part_diag() -> None:
    import inspect

    import emkit
    from emkit.engine import em_map
    from emkit.execution import threads as thread_module
    from emkit.models import gaussian as gaussian_module
    from emkit.models import gaussian_kernels as kern
    print("\n== diag: 200,000 x 16, K = 16, diag E-step passes (median of passes 3-11 of 10-iteration fits)")
    x, init = _diag_fit_parts()
    log: list = []
    passes: list = []
    steps: dict = {}
    lock = threading.Lock()
    model_class = next(c for _, c in inspect.getmembers(gaussian_module, inspect.isclass)
                       if hasattr(c, "_stats_about_means"))
    originals = [(thread_module, "_windowed"), (em_map.EMMap, "e_step"), (kern, "stacked_rows"),
                 (kern, "log_joint_by_component"), (kern, "posterior_by_component"),
                 (model_class, "_stats_about_means")]
    saved = [(owner, name, getattr(owner, name)) for owner, name in originals]

    def timed(owner, name):
        function = getattr(owner, name)

        def call(*args, **kwargs):
            t0 = time.perf_counter()
            value = function(*args, **kwargs)
            with lock:
                steps[name] = steps.get(name, 0.0) + time.perf_counter() - t0
            return value
        setattr(owner, name, call)

    def timed_windowed(pool, fn, items, window, threads):
        def chunk(item):
            t0 = time.perf_counter()
            value = fn(item)
            log.append((threading.get_ident(), t0, time.perf_counter()))
            return value
        return saved[0][2](pool, chunk, items, window, threads)

    def timed_e_step(self, params):
        t0 = time.perf_counter()
        value = saved[1][2](self, params)
        passes.append((t0, time.perf_counter()))
        return value

    thread_module._windowed, em_map.EMMap.e_step = timed_windowed, timed_e_step
    for owner, name in originals[2:]:
        timed(owner, name)
    threads_before = emkit.get_num_threads()
    pass_seconds: dict = {}
    step_seconds: dict = {}
    busy_shares = []
    try:
        for n_threads in (1, 2, 1, 2):
            emkit.set_num_threads(n_threads)
            for _ in range(2):
                log.clear()
                passes.clear()
                steps.clear()
                emkit.GaussianMixture(16, covariance_type="diag", tol=0.0, max_iter=10, reg_covar=1e-6,
                                      **init).fit(x)
                steady = passes[2:]
                pass_seconds.setdefault(n_threads, []).extend(p1 - p0 for p0, p1 in steady)
                for name, seconds in steps.items():
                    step_seconds.setdefault((n_threads, name), []).append(seconds)
                if n_threads == 2:
                    for p0, p1 in steady:
                        chunks = [c for c in log if p0 <= c[1] and c[2] <= p1]
                        for ident in {c[0] for c in chunks}:
                            busy_shares.append(sum(c[2] - c[1] for c in chunks if c[0] == ident) / (p1 - p0))
    finally:
        for owner, name, function in saved:
            setattr(owner, name, function)
        emkit.set_num_threads(threads_before)
    one, two = float(np.median(pass_seconds[1])), float(np.median(pass_seconds[2]))
    print(f"  one thread {one * 1e3:.2f} ms a pass, two threads {two * 1e3:.2f} ms: scaling {one / two:.2f} of 2")
    print(f"  each thread busy with chunks {np.median(busy_shares) * 100:.1f} % of a two-thread pass (median)")
    print("  the steps of a chunk, seconds of a whole fit summed over the threads (best fit), two threads / one:")
    for _, name in originals[2:]:
        a, b = min(step_seconds[(1, name)]), min(step_seconds[(2, name)])
        print(f"    {name:<24} one thread {a * 1e3:7.1f} ms   two threads {b * 1e3:7.1f} ms   x{b / a:.2f}")


def part_missing() -> None:
    import emkit
    from emkit.execution.threads import single_threaded_blas
    from emkit.models import gaussian_kernels as kern
    from emkit.models.gaussian import COVARIANCE_STRUCTURES
    sys.path.insert(0, HERE)
    from speed_missing import make_data, start
    print("\n== missing: 20,000 x 16, K = 16, full, 10 % missing: the missing-value pass")
    _, xm = make_data(20_000, 16, 16, "float64", 0.1)
    init = start(xm, 16, "full")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gmm = emkit.GaussianMixture(16, covariance_type="full", tol=0.0, max_iter=10, **init).fit(xm)
    params = {"weights": gmm.weights_, "means": gmm.means_, "covariances": gmm.covariances_}
    center = np.nanmean(xm, axis=0)
    prepared = kern.missing_prepare(params, COVARIANCE_STRUCTURES["full"], center, np.float64)
    rows = np.flatnonzero(np.isnan(xm).any(axis=1))
    patterns = kern.MissingPatterns(np.isnan(xm[rows]))
    in_order = rows[patterns.order]
    halves = [in_order[:len(in_order) // 2], in_order[len(in_order) // 2:]]
    half_patterns = [kern.MissingPatterns(np.isnan(xm[h])) for h in halves]
    scratch = [kern.Scratch(), kern.Scratch(), kern.Scratch()]

    def half(slot):
        return kern.missing_pass(xm, prepared, center, scratch[slot], rows=halves[slot], patterns=half_patterns[slot])

    whole = kern.missing_pass(xm, prepared, center, scratch[2], rows=rows, patterns=patterns)
    parts = [half(0), half(1)]
    assert np.allclose(whole[0], parts[0][0] + parts[1][0]) and math.isclose(whole[3], parts[0][3] + parts[1][3])
    with single_threaded_blas():
        one = _best(lambda: kern.missing_pass(xm, prepared, center, scratch[2], rows=rows, patterns=patterns), 5)
        seq = _best(lambda: (half(0), half(1)), 5)
        two = _side_by_side(half, 5)
    print(f"  {len(rows):,} rows, {len(patterns.n_observed):,} patterns: one call {one * 1e3:.2f} ms, two halves "
          f"one after the other {seq * 1e3:.2f} ms, two halves on two threads {two * 1e3:.2f} ms "
          f"(scaling {seq / two:.2f} of 2)")


def _plain_e_step(x, weights, means, covs):
    """A minimal NumPy E-step of a full-covariance mixture: (n_k, sum r x, sum r x x', loglik)."""
    chol = np.linalg.cholesky(covs)
    inv = np.linalg.inv(chol)
    log_det = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
    z = (x[None] - means[:, None]) @ np.swapaxes(inv, 1, 2)
    log_joint = -0.5 * (np.einsum("knd,knd->kn", z, z) + log_det[:, None] + x.shape[1] * math.log(2 * math.pi))
    log_joint += np.log(weights)[:, None]
    top = log_joint.max(axis=0)
    e = np.exp(log_joint - top)
    total = e.sum(axis=0)
    r = e / total
    return r.sum(axis=1), r @ x, np.einsum("kn,ni,nj->kij", r, x, x), float(np.log(total).sum() + top.sum())


def part_small() -> None:
    import emkit
    from emkit.engine import em_map
    from emkit.estimators.selection import _covariance_grid
    print("\n== small: Old Faithful (272 x 2)")
    x = np.asarray(emkit.datasets.load_faithful(), dtype=np.float64)
    captured: dict = {}
    e_step = em_map.EMMap.e_step

    def capture(self, params):
        captured["map"], captured["params"] = self, params
        return e_step(self, params)

    em_map.EMMap.e_step = capture
    try:
        emkit.GaussianMixture(5, covariance_type="full", init_params="hc", max_iter=5, tol=0.0).fit(x)
    finally:
        em_map.EMMap.e_step = e_step
    em, params = captured["map"], captured["params"]
    copies = [{k: np.array(v, copy=True) for k, v in params.items()} for _ in range(3000)]
    it = iter(copies * 10)
    ours = _best(lambda: em.e_step(next(it)), 500)
    w, m, c = (np.asarray(params[k], dtype=np.float64) for k in ("weights", "means", "covariances"))
    plain = _best(lambda: _plain_e_step(x, w, m, c), 500)
    print(f"  K = 5, full: emkit's E-step {ours * 1e6:.1f} us (new parameters each call), a minimal NumPy "
          f"E-step {plain * 1e6:.1f} us")
    total, batched = 0, 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for form in _covariance_grid("mclust"):
            counts = []
            for k in range(1, 10):
                gmm = emkit.GaussianMixture(k, covariance_type=form, init_params="hc", stop="loglik_rel", tol=1e-5)
                try:
                    counts.append(gmm.fit(x).n_iter_)
                except ValueError:
                    counts.append(0)
            total, batched = total + sum(counts), batched + max(counts)
    print(f"  14 forms x G = 1..9 (rel. 1e-5): {total:,} EM iterations in all; {batched:,} if the nine G of "
          f"each form ran side by side (the largest G count per form, summed)")


PARTS = {"hardware": part_hardware, "diag": part_diag, "missing": part_missing, "small": part_small}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("parts", nargs="*", choices=[*PARTS, []], default=[])
    parser.add_argument("--no-avx512", action="store_true", help="re-run with NumPy's AVX-512 dispatch off")
    args = parser.parse_args(argv)
    if args.no_avx512 and os.environ.get("NPY_DISABLE_CPU_FEATURES") != NO_AVX512["NPY_DISABLE_CPU_FEATURES"]:
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **NO_AVX512})
    sys.path.insert(0, HERE)
    from speed_sizes import cpu_facts
    print(cpu_facts())
    warnings.simplefilter("ignore")
    for name in args.parts or list(PARTS):
        PARTS[name]()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
