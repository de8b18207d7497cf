import emkit
from emkit import plot

# Five runs of 10 tosses; which of two coins was tossed in each run is hidden.
coins = emkit.datasets.load_two_coins()
print(coins["heads"], coins["tosses"])

model = emkit.BinomialMixture(2, probs_init=[0.6, 0.5], weights_init=[0.5, 0.5], fixed=["weights"])
model.fit(coins["heads"], trials=10)
print("heads probability of each coin:", model.probs_.round(4))
print("iterations:", model.n_iter_, "converged:", model.converged_)
print("which coin made each run:\n", model.predict_proba(coins["heads"]).round(3))

ax = plot.trace(model)              # the log-likelihood never decreases
ax.figure.savefig("quickstart_trace.png")
