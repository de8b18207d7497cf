import numpy as np
import emkit

X = emkit.datasets.load_faithful()
rng = np.random.default_rng(0)
holes = X.copy()
holes[rng.random(X.shape) < 0.15] = np.nan          # 15 % of the entries missing at random
holes = holes[~np.isnan(holes).all(axis=1)]         # a row needs one observed value

gmm = emkit.GaussianMixture(2, n_init=5, random_state=0).fit(holes)
print("missing entries:", int(np.isnan(holes).sum()), "of", holes.size)
print("means with missing values:\n", gmm.means_.round(3))

filled = gmm.impute(holes)                          # E[missing | observed], per row
print("a row with a hole:", holes[np.isnan(holes).any(axis=1)][0], "->",
      filled[np.isnan(holes).any(axis=1)][0].round(3))
print("mean log-likelihood of complete rows:", round(gmm.score(X), 4))
