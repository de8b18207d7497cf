import numpy as np
import emkit


class Linkage(emkit.Model):
    """197 animals in four cells with probabilities 1/2 + p/4, (1-p)/4, (1-p)/4, p/4."""

    param_spec = {"p": emkit.UnitInterval()}

    def initialize(self, data, rng):
        return {"p": np.array(0.5)}

    def e_step(self, data, params):
        (y,), p = data, params["p"]                       # y: (rows, 4) counts
        hidden = y[:, 0] * (p / 4) / (0.5 + p / 4)        # expected count of the p/4 part
        stats = np.array([(hidden + y[:, 3]).sum(), (y[:, 1] + y[:, 2]).sum()])
        probs = np.array([0.5 + p / 4, (1 - p) / 4, (1 - p) / 4, p / 4])
        return stats, float((y * np.log(probs)).sum())

    def m_step(self, stats, params):
        return {"p": np.array(stats[0] / stats.sum())}

    def complete_loglik(self, stats, params):             # optional: for supplemented EM
        p = params["p"]
        return stats[0] * np.log(p) + stats[1] * np.log(1 - p)


data = (np.array([[125, 18, 20, 34]]),)
fit = emkit.em(Linkage(), data, stop="params_maxabs", tol=1e-12)
print(fit)
print("p =", round(float(fit.params["p"]), 9), "after", fit.n_iter, "iterations")
print("standard error:", emkit.inference.standard_errors(fit, data=data)["p"].round(4))
