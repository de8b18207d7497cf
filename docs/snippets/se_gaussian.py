import emkit

X = emkit.datasets.load_faithful()
gmm = emkit.GaussianMixture(2, random_state=0, tol=1e-10).fit(X)
se = gmm.standard_errors("sem")
print("weights", gmm.weights_.round(4), "+-", se["weights"].round(4))
print("means\n", gmm.means_.round(3), "\n+-\n", se["means"].round(3))

cov = gmm.covariance("sem")
print("EM's rate of convergence here:", round(cov.fraction_missing_information, 4))
