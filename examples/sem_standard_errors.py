"""Standard errors from EM: supplemented EM against the exact observed information.

Dempster, Laird & Rubin's genetic-linkage data (197 animals in four cells with probabilities
1/2 + p/4, (1-p)/4, (1-p)/4, p/4). The observed information has a closed form,
I(p) = y1 / (2 + p)^2 + (y2 + y3) / (1 - p)^2 + y4 / p^2, so the supplemented-EM standard
error (Meng & Rubin 1991) can be checked exactly: both give 0.0515 at p = 0.6268. The
same call works for every built-in estimator (here also the peppered moths).

Run: python examples/sem_standard_errors.py
"""

import numpy as np

import emkit
from emkit.inference import standard_errors
# the README's user-defined model, as shipped in emkit.models.linkage (read it there)
from emkit.models.linkage import GeneticLinkage as Linkage


y = np.array([[125.0, 18.0, 20.0, 34.0]])
fit = emkit.em(Linkage(), (y,), stop="params_maxabs", tol=1e-12)
p = float(fit.params["p"])
exact = 1 / np.sqrt(y[0, 0] / (2 + p) ** 2 + (y[0, 1] + y[0, 2]) / (1 - p) ** 2 + y[0, 3] / p ** 2)
sem = float(np.ravel(standard_errors(fit, data=(y,), method="sem")["p"])[0])
hess = float(np.ravel(standard_errors(fit, data=(y,), method="hessian")["p"])[0])
print(f"p = {p:.6f}")
print(f"standard error: exact {exact:.6f}, supplemented EM {sem:.6f}, numerical Hessian {hess:.6f}")

moths = emkit.AlleleFrequencies.from_dominance("C>I>T", names={"C": "carbonaria", "I": "insularia",
                                                                "T": "typica"})
moths.fit(emkit.datasets.load_peppered_moth())
se = moths.standard_errors("sem")["frequencies"]
for allele, p_hat, s in zip(moths.frequencies_, moths.params_["frequencies"], np.ravel(se)):
    print(f"moths: p_{allele} = {p_hat:.5f} +- {s:.5f}")
