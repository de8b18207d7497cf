import numpy as np
import emkit
from matplotlib.figure import Figure
from emkit.models.linkage import GeneticLinkage

data = (np.array([[125.0, 18.0, 20.0, 34.0]]),)
fit = emkit.em(GeneticLinkage(), data, init={"p": np.array(0.1)}, stop="params_maxabs", tol=1e-13,
               keep_history=True)
p = np.array([float(h["p"]) for h in fit.params_history])
error = np.abs(p - p[-1])[:-1]

cov = emkit.inference.sem(fit, data)
rate = cov.fraction_missing_information
print("fraction of missing information:", round(rate, 4))
print("error ratios of the iterates:", (error[3:8] / error[2:7]).round(4))

fig = Figure(figsize=(6, 3.2), layout="constrained")
ax = fig.add_subplot()
ax.semilogy(error, "o", label="|p_t - p*|")
ax.semilogy(error[2] * rate ** (np.arange(len(error)) - 2.0), "--",
            label=f"slope = fraction of missing information ({rate:.3f})")
ax.set_xlabel("iteration")
ax.legend()
fig.savefig("se_rate.png")
