"""Allele frequencies under Hardy-Weinberg equilibrium from phenotype counts.

A gene has alleles a_1..a_m with frequencies p (on the simplex). Under Hardy-Weinberg
equilibrium the unordered genotype {a_i, a_j} has probability p_i^2 (i = j) or 2 p_i p_j
(i != j). Only phenotypes are observed: a phenotype is a set of genotypes (e.g. peppered moth
carbonaria = {CC, CI, CT}); a coarser group (moths known only to be "insularia or typica")
is just another phenotype, the union of whole phenotypes.

EM treats the genotype as the latent variable of each observed individual:

* E-step: expected genotype counts, n_r * P(g) / P(phenotype r) for each genotype g of
  phenotype r (this is :class:`~emkit.models.base.DiscreteLatentModel`'s posterior with the
  phenotype counts as row weights);
* statistics: expected allele counts (each genotype contributes its two alleles);
* M-step: p = allele counts / (2 n), the gene-counting estimate.

The phenotype table must be consistent: every genotype of the alleles belongs to at least
one phenotype, and any two phenotypes are disjoint or nested (one contains the other).
Otherwise :class:`emkit.AlleleFrequencies` (in :mod:`emkit.estimators.alleles`) raises a
ValueError naming the genotype or the two phenotypes.

Seed 002 (Givens & Hoeting, Example 4.2): carbonaria 85, insularia 196, typica 341 with C > I > T
dominance; MLE p_C ~ 0.07084, p_I ~ 0.18874, p_T ~ 0.74043.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from emkit.core.arrays import asarray_like, get_namespace, to_numpy
from emkit.core.data import ROW_WEIGHTS, Data, row_weights, same_fields
from emkit.core.params import Simplex
from emkit.models.base import DiscreteLatentModel
from emkit.models.families import safe_log

__all__ = ["AlleleModel", "allele_data", "parse_genotype", "genotype_name"]

LOG2 = float(np.log(2.0))


def parse_genotype(genotype: Any, alleles: Sequence[str]) -> tuple[int, int]:
    """Indices (i <= j) of the two alleles of ``genotype``.

    A genotype is written as a two-character string when every allele is one character
    (``"CI"`` == ``"IC"``), as ``"A1/A2"``, or as a pair ``("A1", "A2")``.
    """
    index = {a: i for i, a in enumerate(alleles)}
    if isinstance(genotype, str):
        if "/" in genotype:
            parts = [p.strip() for p in genotype.split("/")]
        elif len(genotype) == 2:
            parts = [genotype[0], genotype[1]]
        else:
            raise ValueError(f"genotype {genotype!r} must be two allele symbols (\"CI\"), \"A1/A2\" "
                             f"or a pair of allele names")
    elif isinstance(genotype, (tuple, list)):
        parts = list(genotype)
    else:
        raise ValueError(f"genotype {genotype!r} must be a string or a pair of allele names")
    if len(parts) != 2:
        raise ValueError(f"genotype {genotype!r} must have exactly two alleles")
    for a in parts:
        if a not in index:
            raise ValueError(f"genotype {genotype!r} has allele {a!r}, which is not in alleles {list(alleles)}")
    i, j = sorted(index[a] for a in parts)
    return i, j


def genotype_name(i: int, j: int, alleles: Sequence[str]) -> str:
    """The genotype {alleles[i], alleles[j]} written as :func:`parse_genotype` reads it."""
    a, b = alleles[i], alleles[j]
    return a + b if len(a) == 1 and len(b) == 1 else f"{a}/{b}"


def allele_data(counts: Any, membership: Any) -> Data:
    """The data of :class:`AlleleModel`: phenotype counts (the row weights) and membership."""
    return Data((ROW_WEIGHTS, "membership"), (counts, membership))


class AlleleModel(DiscreteLatentModel):
    """Phenotype counts with hidden genotypes under Hardy-Weinberg equilibrium.

    Data: ``Data(("sample_weight", "membership"), (counts, membership))`` (or the plain tuple
    ``(counts, membership)``), one row per phenotype: ``counts`` (P,), the number of
    individuals of each phenotype (the row weights), and ``membership`` (P, G), 1 where
    genotype g belongs to the phenotype.

    Parameters
    ----------
    n_alleles : int
        m; the genotypes are all unordered pairs (i <= j) in lexicographic order.
    """

    param_spec = {"frequencies": Simplex()}
    row_counts_are_integers = True
    name = "AlleleFrequencies"

    def __init__(self, n_alleles: int):
        self.n_alleles = int(n_alleles)
        self.genotypes = [(i, j) for i in range(self.n_alleles) for j in range(i, self.n_alleles)]
        copies = np.zeros((len(self.genotypes), self.n_alleles))
        for g, (i, j) in enumerate(self.genotypes):
            copies[g, i] += 1.0
            copies[g, j] += 1.0
        self.allele_copies = copies                                   # (G, m)
        self.heterozygous = np.array([float(i != j) for i, j in self.genotypes])  # (G,)

    def row_weights(self, data: tuple) -> Any:
        """The phenotype counts: the ``sample_weight`` field (the first array of a plain tuple)."""
        return row_weights(data) if isinstance(data, Data) else data[0]

    def genotype_log_probs(self, frequencies: Any) -> Any:
        """log P(genotype) under Hardy-Weinberg equilibrium, shape (G,): log p_i + log p_j
        (+ log 2 for heterozygotes), as one product with the allele-copy matrix."""
        copies = asarray_like(self.allele_copies, frequencies)
        het = asarray_like(self.heterozygous, frequencies)
        # a zero frequency gives a huge negative (not -inf) log, so 0 * log 0 stays 0
        return copies @ safe_log(frequencies) + LOG2 * het

    def log_joint(self, data: tuple, params: dict) -> Any:
        counts, membership = data
        xp = get_namespace(membership)
        log_g = self.genotype_log_probs(params["frequencies"])
        impossible = xp.full_like(membership, -float("inf"))
        return xp.where(membership > 0, log_g[None, :] + xp.zeros_like(membership), impossible)

    def stats_from_responsibilities(self, data: tuple, resp: Any) -> Any:
        xp = get_namespace(resp)
        genotype_counts = xp.sum(resp, axis=0)                        # (G,)
        copies = self.allele_copies if xp is np else asarray_like(self.allele_copies, resp)
        het = self.heterozygous if xp is np else asarray_like(self.heterozygous, resp)
        return {"alleles": genotype_counts @ copies, "heterozygotes": xp.sum(genotype_counts * het)}

    def m_step(self, stats: Any, params: dict) -> dict:
        xp = get_namespace(stats["alleles"])
        return {"frequencies": stats["alleles"] / xp.sum(stats["alleles"])}

    def complete_loglik(self, stats: Any, params: dict) -> float:
        p = params["frequencies"]
        xp = get_namespace(p)
        terms = xp.where(stats["alleles"] > 0, stats["alleles"] * xp.log(p), xp.zeros_like(p))
        return float(to_numpy(xp.sum(terms))) + LOG2 * float(to_numpy(stats["heterozygotes"]))

    def initialize(self, data: tuple, rng: np.random.Generator) -> dict:
        return {"frequencies": asarray_like(rng.dirichlet(np.full(self.n_alleles, 5.0)), data[0])}

    def sample(self, params: dict, n: int, rng: np.random.Generator) -> tuple:
        """Genotypes of ``n`` individuals, returned as counts per genotype (rows = genotypes)."""
        p = np.asarray(to_numpy(params["frequencies"]), dtype=float)
        probs = np.exp(self.genotype_log_probs(p))
        counts = rng.multinomial(int(n), probs / probs.sum()).astype(float)
        return allele_data(counts, np.eye(len(self.genotypes))), None

    def sample_like(self, data: tuple, params: dict, rng: np.random.Generator) -> tuple:
        """A data set of the same design as ``data`` drawn at ``params`` (parametric bootstrap).

        Every individual gets a phenotype of the finest table; then, for a coarse group (one
        containing other phenotypes, such as 'insularia or typica'), the individuals of the
        phenotypes inside it are reported only as the group with the proportion observed
        (n_group / (n_group + counts of the phenotypes inside)): coarsening at random, the
        assumption under which the EM likelihood is the right one.
        """
        counts, membership = (np.asarray(to_numpy(a), dtype=float) for a in data)
        member = membership > 0
        size = member.sum(axis=1)
        inside = np.array([[j != i and size[j] < size[i] and bool(np.all(member[i] >= member[j]))
                            for j in range(len(member))] for i in range(len(member))])  # inside[i, j]: j in i
        coarse = inside.any(axis=1)
        p = np.asarray(to_numpy(params["frequencies"]), dtype=float)
        probs = member[~coarse].astype(float) @ np.exp(self.genotype_log_probs(p))
        new = np.zeros_like(counts)
        new[~coarse] = rng.multinomial(int(round(counts.sum())), probs / probs.sum())
        for group in np.flatnonzero(coarse)[np.argsort(-size[coarse])]:  # largest groups first
            parts = np.flatnonzero(inside[group] & ~coarse)
            share = counts[group] / (counts[group] + counts[parts].sum())
            moved = rng.binomial(new[parts].astype(np.int64), share)
            new[parts] -= moved
            new[group] += moved.sum()
        return same_fields(data, (asarray_like(new, data[0]), data[1]))
