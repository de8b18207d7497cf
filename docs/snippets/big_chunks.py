import time
import numpy as np
import emkit

rng = np.random.default_rng(0)
centres = rng.normal(0, 4, size=(5, 10))
X = centres[rng.integers(0, 5, 400_000)] + rng.standard_normal((400_000, 10))   # 32 MB

print("threads:", emkit.get_num_threads())
start = time.perf_counter()
gmm = emkit.GaussianMixture(5, random_state=0).fit(X)
print(f"float64: {gmm.n_iter_} iterations in {time.perf_counter() - start:.1f} s")

# The statistics pass works on chunks of rows: memory stays bounded whatever the number of rows.
small = emkit.GaussianMixture(5, random_state=0, chunk_size=10_000).fit(X)
print("same fit with 10,000-row chunks:", np.isclose(small.loglik_, gmm.loglik_, rtol=1e-10))

# float32 data stays float32 (half the memory, faster on most hardware); its log-likelihood is
# rounded at about 1e-7, so the tolerance is looser.
gmm32 = emkit.GaussianMixture(5, random_state=0, tol=1e-6).fit(X.astype(np.float32))
print("float32 means:", gmm32.means_.dtype, " largest difference:",
      float(np.abs(np.sort(gmm32.means_, axis=0) - np.sort(gmm.means_, axis=0)).max().round(5)))
