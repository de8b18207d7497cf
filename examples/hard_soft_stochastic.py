"""Soft, hard and stochastic EM on Old Faithful (seeds 001 and 004).

Soft EM weights every point by its membership probabilities; hard (classification) EM gives
each point wholly to its most probable component (k-means with covariances); stochastic EM
draws each point's component from its posterior and averages the iterates after a burn-in.
All three start from the same k-means seed. Hard EM maximises the classification
likelihood, so its observed log-likelihood is a little lower than soft EM's maximum.

Run: python examples/hard_soft_stochastic.py
"""

import warnings

import numpy as np

import emkit

X = emkit.datasets.load_faithful()
print(f"{'algorithm':<11} {'loglik':>10}  {'weights':<16} means (eruptions, waiting)")
for algorithm, settings in [("em", {"tol": 1e-8}), ("hard", {"tol": 1e-8}), ("stochastic", {"max_iter": 200})]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gmm = emkit.GaussianMixture(2, algorithm=algorithm, random_state=0, **settings).fit(X)
    order = np.argsort(gmm.means_[:, 0])
    weights = np.array2string(gmm.weights_[order], precision=3)
    means = "; ".join(f"({m[0]:.2f}, {m[1]:.1f})" for m in gmm.means_[order])
    print(f"{algorithm:<11} {gmm.loglik_:10.3f}  {weights:<16} {means}")
