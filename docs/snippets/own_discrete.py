import numpy as np
import emkit
from emkit import plot
from emkit.testing import check_model
from scipy.special import gammaln


class ZeroInflatedPoisson(emkit.DiscreteLatentModel):
    """A count is 0 for sure with probability w[0] (a "structural" zero), else Poisson(rate)."""

    param_spec = {"weights": emkit.Simplex(), "rate": emkit.Positive()}

    def initialize(self, data, rng):
        (x,) = data
        return {"weights": np.array([0.5, 0.5]), "rate": np.array(x.mean() + rng.uniform(0.5, 1.5))}

    def log_joint(self, data, params):                # log p(x_i, z_i = k), shape (rows, 2)
        (x,), w, rate = data, params["weights"], params["rate"]
        zero = np.where(x == 0, 0.0, -np.inf)
        poisson = x * np.log(rate) - rate - gammaln(x + 1)
        return np.log(w) + np.stack([zero, poisson], axis=1)

    def stats_from_responsibilities(self, data, resp):
        (x,) = data                                   # additive over rows
        return {"n": resp.sum(axis=0), "sx": resp[:, 1] @ x}

    def m_step(self, stats, params):
        n = stats["n"]
        return {"weights": n / n.sum(), "rate": np.array(stats["sx"] / n[1])}


rng = np.random.default_rng(0)
counts = np.where(rng.random(2000) < 0.3, 0, rng.poisson(3.0, 2000)).astype(float)
model = ZeroInflatedPoisson()
fit = emkit.em(model, (counts,), n_init=3, random_state=0)
print("structural zeros:", fit.params["weights"][0].round(4), " rate:", fit.params["rate"].round(4))

# Hard and stochastic EM come for free with discrete latent variables.
hard = emkit.em(model, (counts,), algorithm="hard", random_state=0)
print("hard EM rate:", hard.params["rate"].round(4))
print(check_model(model, (counts[:300],)))
plot.trace(fit).figure.savefig("own_discrete_trace.png")
