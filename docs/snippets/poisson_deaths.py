import numpy as np
import emkit
from matplotlib.figure import Figure
from scipy.stats import poisson

# Deaths per day among women over 80 in London, 1910-1912: 1,096 days (Hasselblad 1969).
days = emkit.datasets.load_hasselblad_deaths()
deaths, freq = days["deaths"], days["freq"]

fit = emkit.PoissonMixture(2, accelerate="squarem", random_state=0).fit(deaths, sample_weight=freq)
print("weights:", fit.weights_.round(4), " rates:", fit.rates_.round(4))
print("log-likelihood:", round(fit.loglik_, 4), " EM evaluations:", fit.n_em_evaluations_)

fitted = sum(w * poisson.pmf(deaths, r) for w, r in zip(fit.weights_, fit.rates_)) * freq.sum()
fig = Figure(figsize=(6, 3.5), layout="constrained")
ax = fig.add_subplot()
ax.bar(deaths, freq, color="0.75", label="observed days")
ax.plot(deaths, fitted, "o-", label="two-component Poisson mixture")
ax.plot(deaths, poisson.pmf(deaths, np.average(deaths, weights=freq)) * freq.sum(), "s--",
        label="one Poisson")
ax.set_xlabel("deaths in a day")
ax.set_ylabel("days")
ax.legend()
fig.savefig("poisson_deaths.png")
