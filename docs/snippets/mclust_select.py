import emkit

X = emkit.datasets.load_faithful()
# mclust: BIC <- mclustBIC(faithful); summary(BIC); mod <- Mclust(faithful, x = BIC)
selection = emkit.select_mixture(X, n_components=range(1, 10), covariance_types="mclust")
print(selection.summary())                     # mclust's layout and sign: higher is better
best = selection.best_
print("best:", selection.best_params, " loglik:", round(best.loglik_, 4))

# mclust's numbers: parameters per column, classification (from 1), uncertainty
print("pro:", best.weights_.round(4))
print("mean (one column per component):\n", best.means_.T.round(3))
print("classification:", selection.classification_[:8] + 1, " uncertainty:", selection.uncertainty_[:3].round(4))

# mclustBootstrapLRT(faithful, modelName = "VVV", maxG = 2, nboot = 99)
lrt = emkit.bootstrap_lrt(X, "VVV", max_components=2, n_bootstrap=99, random_state=0)
print(lrt.summary())
