import emkit

moth = emkit.AlleleFrequencies.from_dominance(
    "C>I>T", names={"C": "carbonaria", "I": "insularia", "T": "typica"}).fit(
    emkit.datasets.load_peppered_moth())
print("frequencies:", moth.params_["frequencies"].round(5))

print("supplemented EM:", moth.standard_errors("sem")["frequencies"].round(5))
print("observed information:", moth.standard_errors("hessian")["frequencies"].round(5))
print("bootstrap:", moth.standard_errors("bootstrap", n_boot=200, random_state=0)["frequencies"].round(5))

cov = moth.covariance("sem")
print(cov.labels)
print("covariance matrix:\n", cov.matrix.round(7))
print("fractions of missing information:", cov.missing_information.round(4))
