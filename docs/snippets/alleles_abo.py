import emkit

counts = emkit.datasets.load_abo()                 # phenotype counts: A, B, AB, O
abo = emkit.AlleleFrequencies.abo().fit(counts)    # A and B codominant, both dominant to O
print(counts)
print({allele: round(p, 4) for allele, p in abo.frequencies_.items()})
print("standard errors:", abo.standard_errors("sem")["frequencies"].round(4))

# Any table of phenotypes: each one lists its genotypes. Here only "dark" (C or I present)
# and typica are told apart.
coarse = emkit.AlleleFrequencies(
    ["C", "I", "T"],
    {"dark": ["CC", "CI", "CT", "II", "IT"], "typica": ["TT"]},
    frequencies_init={"C": 0.2, "I": 0.2, "T": 0.6},
).fit({"dark": 281, "typica": 341})
print("only p_T is identified:", round(coarse.frequencies_["T"], 4))
