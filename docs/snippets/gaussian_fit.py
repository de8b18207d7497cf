import emkit

X = emkit.datasets.load_faithful()          # 272 eruptions: duration and waiting time (min)
gmm = emkit.GaussianMixture(2, n_init=5, random_state=0).fit(X)

print("weights:", gmm.weights_.round(4))
print("means:\n", gmm.means_.round(3))
print("log-likelihood:", round(gmm.loglik_, 3), "in", gmm.n_iter_, "iterations")
print("BIC:", round(gmm.bic(X), 3))
print("first rows' membership probabilities:\n", gmm.predict_proba(X[:3]).round(4))
print("labels:", gmm.predict(X[:10]))
