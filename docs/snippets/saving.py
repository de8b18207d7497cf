import numpy as np
import emkit

X = emkit.datasets.load_faithful()
gmm = emkit.GaussianMixture(2, random_state=0).fit(X)
gmm.save("faithful.emkit")                          # settings and parameters, never the data

again = emkit.load("faithful.emkit")                # no pickle: loading runs no code from the file
print(again)
print("same predictions:", np.array_equal(again.predict_proba(X), gmm.predict_proba(X)))

# Standard errors need the training data, which a loaded model does not hold: pass it.
print(again.standard_errors("sem", data=X)["weights"].round(4))
