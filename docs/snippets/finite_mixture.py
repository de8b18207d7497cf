import numpy as np
import emkit

rng = np.random.default_rng(0)
x = np.concatenate([rng.exponential(1.0, 400), rng.exponential(10.0, 200)])

by_name = emkit.ExponentialMixture(2, random_state=0).fit(x)
print("rates:", np.sort(by_name.rates_).round(3), " weights:", by_name.weights_.round(3))

# Any family by name, with the same settings: this is the same fit.
generic = emkit.FiniteMixture(2, "exponential", random_state=0).fit(x)
print("same fit:", np.allclose(generic.rates_, by_name.rates_))

eruptions = emkit.datasets.load_faithful()[:, 0]
normal = emkit.NormalMixture(2, random_state=0).fit(eruptions)
print("eruption times: means", normal.means_.round(3), " variances", normal.variances_.round(3))
