import numpy as np
import emkit
from emkit import plot

coins = emkit.datasets.load_two_coins()
heads = coins["heads"]

# Do & Batzoglou (2008): start at 0.6 and 0.5, equal weights held fixed.
one_step = emkit.BinomialMixture(2, probs_init=[0.6, 0.5], weights_init=[0.5, 0.5], fixed=["weights"],
                                 max_iter=1, tol=0).fit(heads, trials=10)
print("after one iteration:", one_step.probs_.round(2))

fit = emkit.BinomialMixture(2, probs_init=[0.6, 0.5], weights_init=[0.5, 0.5],
                            fixed=["weights"]).fit(heads, trials=10)
print("at convergence:     ", fit.probs_.round(2))

# Runs of different lengths: one number of tosses per run.
tosses = np.array([10, 12, 8, 10, 20])
uneven = emkit.BinomialMixture(2, random_state=0).fit([5, 11, 6, 4, 13], trials=tosses)
print("uneven runs:", uneven.probs_.round(3), "weights", uneven.weights_.round(3))

ax = plot.posterior(fit, heads, trials=10, labels=["coin A", "coin B"])
ax.figure.savefig("coins_posterior.png")
