import numpy as np
import emkit

# Y1 = 5 is observed, Y2 is missing; both exponential with rate theta.
y = np.array([5.0, np.nan])
fit = emkit.Exponential(rate_init=1.0, keep_history=True).fit(y)
print("rate:", round(fit.rate_, 6), "after", fit.n_iter_, "iterations")

# The EM map is theta <- 2 theta / (5 theta + 1): each iteration halves the distance to 1/5.
rates = np.array([float(p["rate"]) for p in fit.result_.params_history])
print("first iterates:", rates[:5].round(6))
print("error ratios:", (np.abs(rates[1:6] - 0.2) / np.abs(rates[:5] - 0.2)).round(4))
