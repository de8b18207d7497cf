import emkit
from matplotlib.figure import Figure

days = emkit.datasets.load_hasselblad_deaths()
fig = Figure(figsize=(6, 3.2), layout="constrained")
ax = fig.add_subplot()
best = None
fits = {}
for accelerate in (None, "squarem", "anderson"):
    fits[accelerate] = emkit.PoissonMixture(
        2, weights_init=[0.3, 0.7], rates_init=[1.0, 2.5], stop="params_maxabs", tol=1e-8,
        max_iter=10_000, accelerate=accelerate).fit(days["deaths"], sample_weight=days["freq"])
best = max(f.loglik_ for f in fits.values())
for accelerate, fit in fits.items():
    print(f"{str(accelerate):>8}: {fit.n_em_evaluations_:5d} EM evaluations, rates {fit.rates_.round(5)}")
    ax.loglog(range(1, fit.n_iter_ + 1), best - fit.loglik_trace_[1:] + 1e-12, label=str(accelerate))
ax.set_xlabel("iteration")
ax.set_ylabel("log-likelihood below the best")
ax.legend(title="accelerate")
fig.savefig("accelerate.png")
