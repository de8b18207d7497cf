"""Exponential data with a missing value (seed 002, example 1).

Y1 = 5 is observed and Y2 is missing; both are Exp(theta) with mean 1/theta. The E-step
fills in E[Y2] = 1/theta, the M-step sets theta = 2 / (5 + 1/theta), so the EM map is
theta <- 2 theta / (5 theta + 1), with fixed point 0.2 = 1/5 (the missing value carries no
information). EM converges linearly at rate 1/2: the fraction of missing information.

Run: python examples/exponential_missing.py
"""

import numpy as np

import emkit

y = np.array([5.0, np.nan])

theta = 1.0
print("iteration  theta (by hand)   theta (emkit)")
for it in range(1, 6):
    theta = 2 * theta / (5 * theta + 1)
    fit = emkit.Exponential(rate_init=1.0, max_iter=it, tol=0).fit(y)
    print(f"{it:9d}  {theta:.10f}      {float(fit.rate_):.10f}")

fit = emkit.Exponential(rate_init=1.0).fit(y)
print(f"converged: rate = {float(fit.rate_):.10f} after {fit.n_iter_} iterations")
errors = np.abs(np.array([float(p["rate"]) for p in
                          emkit.Exponential(rate_init=1.0, max_iter=8, tol=0, keep_history=True).fit(y)
                          .result_.params_history]) - 0.2)
print("error ratios (-> 1/2, the fraction of missing information):",
      np.array2string(errors[1:] / errors[:-1], precision=4))
