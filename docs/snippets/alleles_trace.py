import numpy as np
import emkit
from matplotlib.figure import Figure

moth = emkit.AlleleFrequencies.from_dominance(
    "C>I>T", names={"C": "carbonaria", "I": "insularia", "T": "typica"},
    frequencies_init=[1 / 3, 1 / 3, 1 / 3], keep_history=True).fit(emkit.datasets.load_peppered_moth())
history = np.array([p["frequencies"] for p in moth.result_.params_history])

fig = Figure(figsize=(6, 3.2), layout="constrained")
ax = fig.add_subplot()
for j, allele in enumerate(moth.alleles):
    ax.plot(history[:12, j], "o-", label=f"p_{allele}")
ax.set_xlabel("iteration")
ax.set_ylabel("allele frequency")
ax.legend()
fig.savefig("alleles_trace.png")
print(history[:4].round(4))
