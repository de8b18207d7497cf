import numpy as np
import emkit
from matplotlib.figure import Figure

# A stream of 200 batches of 500 rows from a known two-component mixture.
rng = np.random.default_rng(0)
true_means = np.array([[0.0, 0.0], [4.0, 3.0]])

def batch(n=500):
    z = rng.random(n) < 0.3
    return true_means[z.astype(int)] + rng.standard_normal((n, 2))

gmm = emkit.GaussianMixture(2, random_state=0)
errors = []
for k in range(200):
    gmm.partial_fit(batch())
    errors.append(np.abs(np.sort(gmm.means_, axis=0) - true_means).max())

print("batches:", gmm.n_batches_seen_, " rows:", int(gmm.n_rows_seen_))
print("weights:", np.sort(gmm.weights_).round(3), " means:\n", gmm.means_[np.argsort(gmm.means_[:, 0])].round(3))

fig = Figure(figsize=(6, 3.2), layout="constrained")
ax = fig.add_subplot()
ax.loglog(range(1, 201), errors)
ax.set_xlabel("batches seen")
ax.set_ylabel("largest error of the means")
fig.savefig("online.png")
