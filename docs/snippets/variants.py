import numpy as np
import emkit
from matplotlib.figure import Figure

X = emkit.datasets.load_faithful()
start = dict(random_state=0)                       # the same k-means start for all three
fits = {
    "em": emkit.GaussianMixture(2, tol=1e-8, **start).fit(X),
    "hard": emkit.GaussianMixture(2, algorithm="hard", tol=1e-8, **start).fit(X),
    "stochastic": emkit.GaussianMixture(2, algorithm="stochastic", max_iter=200, burn_in=100, **start).fit(X),
}
for name, gmm in fits.items():
    order = np.argsort(gmm.means_[:, 0])
    print(f"{name:>10}: log-likelihood {gmm.loglik_:9.3f}  weights {gmm.weights_[order].round(3)}"
          f"  iterations {gmm.n_iter_}")

fig = Figure(figsize=(6, 3.2), layout="constrained")
ax = fig.add_subplot()
for name, gmm in fits.items():
    ax.plot(gmm.loglik_trace_[:60], ".-", label=name)
ax.set_ylim(-1131.2, -1130.1)
ax.set_xlabel("iteration")
ax.set_ylabel("observed log-likelihood")
ax.legend()
fig.savefig("variants.png")
