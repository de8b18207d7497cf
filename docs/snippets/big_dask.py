# needs: dask
import dask.array as da
import numpy as np
import emkit

rng = np.random.default_rng(0)
X = np.concatenate([rng.normal(0, 1, (60_000, 3)), rng.normal(4, 1, (40_000, 3))])
lazy = da.from_array(X, chunks=(25_000, 3))        # 4 blocks; on a cluster, blocks live on workers

gmm = emkit.GaussianMixture(2, random_state=0).fit(lazy)   # one pass over the blocks per iteration
print("weights:", np.sort(gmm.weights_).round(4))

labels = gmm.predict(lazy)                          # lazy too: a Dask array
print(type(labels).__name__, labels[:5].compute(), " agrees with NumPy:",
      bool((labels == emkit.GaussianMixture(2, random_state=0).fit(X).predict(X)).all().compute()))
