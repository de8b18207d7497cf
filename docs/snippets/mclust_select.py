import emkit

X = emkit.datasets.load_faithful()
# mclust: Mclust(faithful, G = 1:5, modelNames = c("VVV", "EEE", "VVI", "VII"))
selection = emkit.select_mixture(X, n_components=range(1, 6), random_state=0,
                                  covariance_types=("full", "tied", "diag", "spherical"))
best, row = selection.best_, min(selection.table, key=lambda r: r["bic"])
print("best:", selection.best_params)

# mclust's numbers: BIC with the opposite sign, parameters per column, classification, uncertainty
print("BIC as mclust reports it:", round(-row["bic"], 2), " parameters (df):", row["n_parameters"])
print("pro:", best.weights_.round(4))
print("mean (one column per component):\n", best.means_.T.round(3))
z = best.predict_proba(X)
print("classification:", best.predict(X[:8]) + 1, " uncertainty:", (1 - z.max(axis=1))[:3].round(4))
