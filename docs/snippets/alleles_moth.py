import emkit

counts = emkit.datasets.load_peppered_moth()      # phenotype -> number of moths
print(counts)

# Carbonaria (C) is dominant to insularia (I), which is dominant to typica (T).
moth = emkit.AlleleFrequencies.from_dominance(
    "C>I>T", names={"C": "carbonaria", "I": "insularia", "T": "typica"}).fit(counts)
print({allele: round(p, 5) for allele, p in moth.frequencies_.items()})
print("expected moths per genotype:", {g: round(n, 2) for g, n in moth.genotype_counts_.items()})
print("iterations:", moth.n_iter_)
