"""Scratch timing of emkit.GaussianMixture vs scikit-learn per EM iteration (not a test).

Usage: python benchmarks/scratch_gmm.py N D K cov_type dtype [iters] [emkit|sklearn|both]

Per-iteration times are medians over ``iters`` iterations, each timed on its own (emkit: between
consecutive engine callbacks; scikit-learn: one ``_e_step`` + ``_m_step``, what its ``fit`` loop
runs per iteration), so a burst of load from other processes on a shared machine moves the
median little. Peak memory above the data is measured with tracemalloc on a separate short fit.
"""
import sys
import time
import tracemalloc
import warnings

import numpy as np

import emkit


def main():
    n, d, k = map(int, sys.argv[1:4])
    cov_type, dtype = sys.argv[4], sys.argv[5]
    iters = int(sys.argv[6]) if len(sys.argv) > 6 else 5
    which = sys.argv[7] if len(sys.argv) > 7 else "both"
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=5, size=(k, d))
    x = (centres[rng.integers(0, k, n)] + rng.normal(size=(n, d))).astype(dtype)
    init = dict(weights_init=np.full(k, 1.0 / k), means_init=centres + 0.5,
                precisions_init={"full": np.repeat(np.eye(d)[None], k, 0), "tied": np.eye(d),
                                 "diag": np.ones((k, d)), "spherical": np.ones(k)}[cov_type])
    warnings.simplefilter("ignore")
    label = f"{cov_type} {dtype} N={n} D={d} K={k}"
    if which in ("both", "emkit"):
        stamps = []
        g = emkit.GaussianMixture(k, covariance_type=cov_type, tol=0, max_iter=iters,
                                  callback=lambda it, p, ll: stamps.append(time.perf_counter()), **init)
        g.fit(x)
        per = np.median(np.diff(stamps))
        print(f"emkit   {label}: {per:.5f} s/iter (median of {iters}); means_ dtype {g.means_.dtype}")
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        emkit.GaussianMixture(k, covariance_type=cov_type, tol=0, max_iter=2, **init).fit(x)
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
        print(f"        peak memory above the data: {peak / 2**20:.1f} MiB = {peak / x.nbytes:.1%} of the data")
    if which in ("both", "sklearn"):
        from sklearn.mixture import GaussianMixture as SK
        s = SK(k, covariance_type=cov_type, tol=0, max_iter=1, **init).fit(x)
        times = []
        for _ in range(iters):
            t = time.perf_counter()
            _, log_resp = s._e_step(x)
            s._m_step(x, log_resp)
            times.append(time.perf_counter() - t)
        print(f"sklearn {label}: {np.median(times):.5f} s/iter (median of {iters})")


if __name__ == "__main__":
    main()
