# needs: sklearn
import numpy as np
import sklearn.mixture
import emkit

X = emkit.datasets.load_faithful()
theirs = sklearn.mixture.GaussianMixture(2, random_state=0).fit(X)
ours = emkit.GaussianMixture(2, random_state=0).fit(X)        # same arguments, same attributes
print("mean log-likelihood:", round(theirs.score(X), 6), round(ours.score(X), 6))
print("iterations:", theirs.n_iter_, ours.n_iter_, "(emkit runs to convergence by default)")

# scikit-learn's stopping rule: emkit stops one iteration earlier at the same values.
quick = emkit.GaussianMixture(2, random_state=0, stop="loglik_mean", tol=1e-3, max_iter=100).fit(X)
print("with scikit-learn's rule:", theirs.n_iter_, quick.n_iter_, " same lower bounds:",
      np.allclose(theirs.lower_bounds_, quick.lower_bounds_))
print("same labels:", bool((theirs.predict(X) == ours.predict(X)).all()))

# scikit-learn's tools take emkit's estimators: clone, pipelines, grid search.
from sklearn.model_selection import GridSearchCV
search = GridSearchCV(emkit.GaussianMixture(random_state=0), {"n_components": [1, 2, 3]}, cv=3).fit(X)
print("grid search picks:", search.best_params_)

# What scikit-learn refuses: missing values.
holes = X.copy()
holes[::10, 1] = np.nan
try:
    sklearn.mixture.GaussianMixture(2, random_state=0).fit(holes)
except ValueError as error:
    print("scikit-learn:", str(error).splitlines()[0])
print("emkit:", emkit.GaussianMixture(2, random_state=0).fit(holes).means_.round(2).tolist())
