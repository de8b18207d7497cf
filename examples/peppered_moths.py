"""Peppered moth allele frequencies by gene counting (seed 002; Givens & Hoeting, Example 4.2).

The colour gene has alleles C (carbonaria) > I (insularia) > T (typica) in order of
dominance. Only phenotypes are seen: 85 carbonaria, 196 insularia, 341 typica. EM treats the
genotype as hidden; the MLE is p_C = 0.07084, p_I = 0.18874, p_T = 0.74043.

Run: python examples/peppered_moths.py
"""

import emkit

counts = emkit.datasets.load_peppered_moth()
moths = emkit.AlleleFrequencies.from_dominance(
    "C>I>T", names={"C": "carbonaria", "I": "insularia", "T": "typica"})
moths.fit(counts)
print("phenotype counts:", counts)
for allele, p in moths.frequencies_.items():
    print(f"p_{allele} = {p:.5f}")
print(f"{moths.n_iter_} iterations, log-likelihood {moths.loglik_:.4f}")
print("expected genotype counts:", {g: round(float(n), 2) for g, n in moths.genotype_counts_.items()})
