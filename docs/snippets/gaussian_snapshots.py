import emkit
from emkit import plot

X = emkit.datasets.load_faithful()
gmm = emkit.GaussianMixture(2, init_params="random_from_data", random_state=3, keep_history=True,
                            tol=1e-6).fit(X)
fig = plot.snapshots(X, gmm, iterations=(0, 1, 3, 5, 10, 20),
                     feature_names=["eruption (min)", "waiting (min)"])
fig.savefig("gaussian_snapshots.png")
