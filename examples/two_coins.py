"""Two coins, unknown coin per run (Do & Batzoglou 2008; seeds 000, 001, 003).

Five runs of ten tosses: 5, 9, 8, 4 and 7 heads. Which coin made each run is hidden. From
theta_A = 0.6, theta_B = 0.5 with the coin chosen at random (weights fixed at 1/2), EM's first
iteration gives 0.71 and 0.58 and it converges to 0.80 and 0.52.

Run: python examples/two_coins.py
"""

import numpy as np

import emkit

coins = emkit.datasets.load_two_coins()
heads, tosses = coins["heads"], coins["tosses"]
settings = dict(probs_init=[0.6, 0.5], weights_init=[0.5, 0.5], fixed=["weights"])

# one iteration: the E-step's expected heads/tails per coin, then the M-step's ratios
one = emkit.BinomialMixture(2, max_iter=1, tol=0, **settings).fit(heads, trials=tosses)
print("after 1 iteration:  theta_A = %.2f, theta_B = %.2f" % tuple(one.probs_))

fit = emkit.BinomialMixture(2, **settings).fit(heads, trials=tosses)
print("converged:          theta_A = %.2f, theta_B = %.2f after %d iterations" % (*fit.probs_, fit.n_iter_))
print("log-likelihood trace never decreases:", bool(np.all(np.diff(fit.loglik_trace_) >= -1e-12)))

# which coin made each run?
for run, (h, p) in enumerate(zip(heads, fit.predict_proba(heads, trials=tosses)), start=1):
    print(f"run {run}: {h:2d} heads  P(coin A) = {p[0]:.2f}")
