import numpy as np
import emkit

X = emkit.datasets.load_faithful()

# Hold the mixing weights at 1/2 each; the means and covariances are estimated.
half = emkit.GaussianMixture(2, weights_init=[0.5, 0.5], fixed=["weights"], random_state=0).fit(X)
print("weights held:", half.weights_, " means:", half.means_[:, 0].round(3))

# Frequency weights: a row with weight 2 counts as two identical rows.
rows, counts = np.unique(X, axis=0, return_counts=True)
grouped = emkit.GaussianMixture(2, random_state=0, tol=1e-8).fit(rows, sample_weight=counts)
plain = emkit.GaussianMixture(2, random_state=0, tol=1e-8).fit(X)
print(len(rows), "distinct rows; log-likelihoods", round(grouped.loglik_, 6), round(plain.loglik_, 6))
print("same means (components in either order):",
      np.allclose(np.sort(grouped.means_, axis=0), np.sort(plain.means_, axis=0)))
