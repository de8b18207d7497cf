"""Scratch timing of emkit.GaussianMixture vs scikit-learn per EM iteration (not a test).

Usage: python benchmarks/scratch_gmm.py N D K cov_type dtype [iters]
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
    iters = int(sys.argv[6]) if len(sys.argv) > 6 else 3
    which = sys.argv[7] if len(sys.argv) > 7 else "both"
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=5, size=(k, d))
    x = (centres[rng.integers(0, k, n)] + rng.normal(size=(n, d))).astype(dtype)
    init = dict(weights_init=np.full(k, 1.0 / k), means_init=centres + 0.5,
                precisions_init={"full": np.repeat(np.eye(d)[None], k, 0), "tied": np.eye(d),
                                 "diag": np.ones((k, d)), "spherical": np.ones(k)}[cov_type])
    warnings.simplefilter("ignore")
    if which in ("both", "emkit"):
        def run(m):
            g = emkit.GaussianMixture(k, covariance_type=cov_type, tol=0, max_iter=m, **init)
            t = time.perf_counter(); g.fit(x); return time.perf_counter() - t, g
        per = []
        for _ in range(3):
            t1, _ = run(1)
            tm, g = run(1 + iters)
            per.append((tm - t1) / iters)
        print(f"emkit  {cov_type} {dtype} N={n} D={d} K={k}: {min(per):.5f} s/iter "
              f"(means dtype {g.means_.dtype})")
        tracemalloc.start()
        run(2)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"  peak traced memory during fit: {peak / 2**20:.1f} MiB (data {x.nbytes / 2**20:.1f} MiB)")
    if which in ("both", "sklearn"):
        from sklearn.mixture import GaussianMixture as SK
        def run_sk(m):
            g = SK(k, covariance_type=cov_type, tol=0, max_iter=m, **init)
            t = time.perf_counter(); g.fit(x); return time.perf_counter() - t
        per = []
        for _ in range(3):
            s1 = run_sk(1)
            sm = run_sk(1 + iters)
            per.append((sm - s1) / iters)
        print(f"sklearn {cov_type} {dtype}: {min(per):.5f} s/iter")


if __name__ == "__main__":
    main()
