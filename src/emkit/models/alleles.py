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
Otherwise :class:`AlleleFrequencies` raises a ValueError naming the genotype or the two
phenotypes.

Seed 002 (Givens & Hoeting, Example 4.2): carbonaria 85, insularia 196, typica 341 with C > I > T
dominance; MLE p_C ~ 0.07084, p_I ~ 0.18874, p_T ~ 0.74043.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from emkit.core.arrays import asarray_like, get_namespace, to_numpy
from emkit.core.validation import check_probabilities
from emkit.estimators.base import EMEstimator
from emkit.models.base import DiscreteLatentModel
from emkit.core.params import Simplex
from emkit.models.families import safe_log

__all__ = ["AlleleModel", "AlleleFrequencies", "parse_genotype"]

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


def _genotype_name(i: int, j: int, alleles: Sequence[str]) -> str:
    a, b = alleles[i], alleles[j]
    return a + b if len(a) == 1 and len(b) == 1 else f"{a}/{b}"


class AlleleModel(DiscreteLatentModel):
    """Phenotype counts with hidden genotypes under Hardy-Weinberg equilibrium.

    Data: ``(counts, membership)``, one row per phenotype: ``counts`` (P,) and
    ``membership`` (P, G), 1 where genotype g belongs to the phenotype.

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

    def row_weights(self, data):
        return data[0]

    def genotype_log_probs(self, frequencies):
        """log P(genotype) under Hardy-Weinberg equilibrium, shape (G,): log p_i + log p_j
        (+ log 2 for heterozygotes), as one product with the allele-copy matrix."""
        copies = asarray_like(self.allele_copies, frequencies)
        het = asarray_like(self.heterozygous, frequencies)
        # a zero frequency gives a huge negative (not -inf) log, so 0 * log 0 stays 0
        return copies @ safe_log(frequencies) + LOG2 * het

    def log_joint(self, data, params):
        counts, membership = data
        xp = get_namespace(membership)
        log_g = self.genotype_log_probs(params["frequencies"])
        impossible = xp.full_like(membership, -float("inf"))
        return xp.where(membership > 0, log_g[None, :] + xp.zeros_like(membership), impossible)

    def stats_from_responsibilities(self, data, resp):
        xp = get_namespace(resp)
        genotype_counts = xp.sum(resp, axis=0)                        # (G,)
        copies = self.allele_copies if xp is np else asarray_like(self.allele_copies, resp)
        het = self.heterozygous if xp is np else asarray_like(self.heterozygous, resp)
        return {"alleles": genotype_counts @ copies, "heterozygotes": xp.sum(genotype_counts * het)}

    def m_step(self, stats, params):
        xp = get_namespace(stats["alleles"])
        return {"frequencies": stats["alleles"] / xp.sum(stats["alleles"])}

    def complete_loglik(self, stats, params):
        p = params["frequencies"]
        xp = get_namespace(p)
        terms = xp.where(stats["alleles"] > 0, stats["alleles"] * xp.log(p), xp.zeros_like(p))
        return float(to_numpy(xp.sum(terms))) + LOG2 * float(to_numpy(stats["heterozygotes"]))

    def initialize(self, data, rng):
        return {"frequencies": asarray_like(rng.dirichlet(np.full(self.n_alleles, 5.0)), data[0])}

    def sample(self, params, n, rng):
        """Genotypes of ``n`` individuals, returned as counts per genotype (rows = genotypes)."""
        p = np.asarray(to_numpy(params["frequencies"]), dtype=float)
        probs = np.exp(self.genotype_log_probs(p))
        counts = rng.multinomial(int(n), probs / probs.sum()).astype(float)
        return (counts, np.eye(len(self.genotypes))), None

    def sample_like(self, data, params, rng):
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
        return (asarray_like(new, data[0]), data[1])


class AlleleFrequencies(EMEstimator):
    """Allele frequencies under Hardy-Weinberg equilibrium from phenotype counts (EM gene counting).

    Parameters
    ----------
    alleles : sequence of str
        Allele names, e.g. ``["C", "I", "T"]``.
    phenotypes : mapping of str to sequence of genotypes
        Each phenotype's unordered genotypes, e.g. ``{"carbonaria": ["CC", "CI", "CT"],
        "insularia": ["II", "IT"], "typica": ["TT"]}``. Genotypes are two-character strings
        (``"CI"`` == ``"IC"``), ``"A1/A2"`` strings or pairs of allele names. A phenotype may be
        any union of genotypes; every genotype must belong to some phenotype, and any two
        phenotypes must be disjoint or nested.
    frequencies_init : mapping or sequence, optional
        Starting frequencies (allele -> frequency, or a list in the order of ``alleles``).
        Default: equal frequencies (random ones for the restarts when ``n_init > 1``).
    tol, stop, max_iter, n_init, random_state, fixed, accelerate, algorithm, burn_in,
    check_monotone, chunk_size, callback, keep_history
        Passed to :func:`emkit.em` (default rule: max |p_t - p_{t-1}| < 1e-12).

    Attributes
    ----------
    frequencies_ : dict
        Allele -> maximum-likelihood frequency.
    genotype_counts_ : dict
        Genotype -> expected number of individuals at the fitted frequencies.
    params_ : dict
        ``{"frequencies": array in the order of alleles}``.
    loglik_ : float
        Observed-data log-likelihood sum_r n_r log P(phenotype r) (multinomial coefficient
        omitted).

    Examples
    --------
    >>> moth = AlleleFrequencies.from_dominance("C>I>T", names={"C": "carbonaria",
    ...     "I": "insularia", "T": "typica"})
    >>> moth.fit({"carbonaria": 85, "insularia": 196, "typica": 341}).frequencies_["C"]  # doctest: +ELLIPSIS
    0.0708...
    """

    def __init__(self, alleles: Sequence[str], phenotypes: Mapping[str, Sequence[Any]], *,
                 frequencies_init=None, tol: float = 1e-12, stop: str = "params_maxabs",
                 max_iter: int = 10000, n_init: int = 1, random_state=None, fixed: Sequence[str] = (),
                 accelerate=None, algorithm: str = "em", burn_in: int | None = None,
                 check_monotone: str = "warn", chunk_size: int | None = None,
                 callback: Callable | None = None, keep_history: bool = False):
        self._init_settings(locals())

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_dominance(cls, order: str, names: Mapping[str, str] | None = None, **settings) -> "AlleleFrequencies":
        """Phenotypes from a dominance order.

        ``"C>I>T"``: C dominant to I, I to T; a phenotype per allele (the genotypes whose
        most dominant allele it is). ``"A=B>O"``: A and B codominant, so a heterozygote AB is
        its own phenotype (ABO blood groups: A, B, AB, O). Allele symbols may be several
        characters long (``"A1=A2>O"``).

        Parameters
        ----------
        order : str
            Dominance levels separated by ``>``, codominant alleles within a level by ``=``.
        names : mapping, optional
            Phenotype names by allele symbol (or by joined symbols, "AB", for codominant
            heterozygotes), e.g. ``{"C": "carbonaria"}``.
        **settings
            Other constructor arguments.
        """
        if not isinstance(order, str) or not order.strip():
            raise ValueError(f"dominance order must be a string such as 'C>I>T', got {order!r}")
        levels = [[a.strip() for a in level.split("=")] for level in order.split(">")]
        alleles = [a for level in levels for a in level]
        if any(not a for a in alleles):
            raise ValueError(f"dominance order {order!r} has an empty allele symbol")
        if len(set(alleles)) != len(alleles):
            raise ValueError(f"dominance order {order!r} repeats an allele")
        rank = {a: r for r, level in enumerate(levels) for a in level}
        single = all(len(a) == 1 for a in alleles)
        names = dict(names or {})
        phenotypes: dict[str, list] = {}
        for i, j in itertools.combinations_with_replacement(range(len(alleles)), 2):
            a, b = alleles[i], alleles[j]
            if rank[a] < rank[b]:
                symbol = a
            elif rank[b] < rank[a]:
                symbol = b
            else:
                symbol = a if a == b else a + b
            genotype = a + b if single else [a, b]
            phenotypes.setdefault(names.get(symbol, symbol), []).append(genotype)
        return cls(alleles, phenotypes, **settings)

    @classmethod
    def abo(cls, **settings) -> "AlleleFrequencies":
        """The ABO blood-group system: alleles A, B, O with A and B codominant, O recessive
        (phenotypes A, B, AB, O)."""
        return cls.from_dominance("A=B>O", **settings)

    # ------------------------------------------------------------------ the table
    def _table(self) -> tuple[list[str], list[str], np.ndarray]:
        """(alleles, phenotype names, membership (P, G)) after checking consistency."""
        alleles = self.alleles
        if isinstance(alleles, str) or not all(isinstance(a, str) and a for a in alleles):
            raise ValueError(f"alleles must be a list of non-empty allele names, got {alleles!r}")
        alleles = list(alleles)
        if len(alleles) < 2:
            raise ValueError(f"need at least two alleles, got {alleles!r}")
        if len(set(alleles)) != len(alleles):
            raise ValueError(f"alleles has duplicates: {alleles!r}")
        if not isinstance(self.phenotypes, Mapping) or not self.phenotypes:
            raise ValueError("phenotypes must be a non-empty mapping: phenotype name -> list of genotypes")
        model = AlleleModel(len(alleles))
        column = {g: c for c, g in enumerate(model.genotypes)}
        names = list(self.phenotypes)
        membership = np.zeros((len(names), len(model.genotypes)))
        for r, name in enumerate(names):
            genotypes = self.phenotypes[name]
            if isinstance(genotypes, str) or not len(genotypes):
                raise ValueError(f"phenotype {name!r} must list its genotypes, got {genotypes!r}")
            for genotype in genotypes:
                membership[r, column[parse_genotype(genotype, alleles)]] = 1.0
        for c in np.flatnonzero(membership.sum(axis=0) == 0):
            i, j = model.genotypes[c]
            raise ValueError(f"genotype {_genotype_name(i, j, alleles)!r} belongs to no phenotype; "
                             f"every genotype of the alleles must belong to at least one")
        sets = [set(np.flatnonzero(row)) for row in membership]
        for r, s in itertools.combinations(range(len(names)), 2):
            a, b = sets[r], sets[s]
            if a & b and not (a <= b or b <= a):
                raise ValueError(f"phenotypes {names[r]!r} and {names[s]!r} overlap without one "
                                 f"containing the other; groups must be disjoint or nested")
        return alleles, names, membership

    # ------------------------------------------------------------------ estimator hooks
    def _make_model(self) -> AlleleModel:
        alleles, _, _ = self._table()
        return AlleleModel(len(alleles))

    def fit(self, counts: Mapping[str, Any]) -> "AlleleFrequencies":
        """Fit the allele frequencies by EM.

        Parameters
        ----------
        counts : mapping
            Phenotype name -> number of individuals; phenotypes of the table that are absent
            count 0.
        """
        return super().fit(counts)

    def _make_data(self, counts: Mapping[str, Any]) -> tuple:
        _, names, membership = self._table()
        if not isinstance(counts, Mapping):
            raise ValueError(f"counts must be a mapping phenotype -> count, got {type(counts).__name__}")
        unknown = [k for k in counts if k not in self.phenotypes]
        if unknown:
            raise ValueError(f"unknown phenotype(s) {unknown} in counts; the phenotypes are {names}")
        values = np.zeros(len(names))
        for r, name in enumerate(names):
            value = counts.get(name, 0)
            try:
                v = float(to_numpy(value))
            except (TypeError, ValueError):
                raise ValueError(f"count of {name!r} must be a number, got {value!r}") from None
            if not np.isfinite(v) or v < 0 or v != round(v):
                raise ValueError(f"count of {name!r} must be a non-negative whole number, got {value!r}")
            values[r] = v
        if values.sum() <= 0:
            raise ValueError("counts sum to zero: need at least one individual")
        return (values, membership)

    def _init_params(self, model, data) -> dict | None:
        alleles = list(self.alleles)
        init = self.frequencies_init
        if init is None:
            return {"frequencies": np.full(len(alleles), 1.0 / len(alleles))} if self.n_init == 1 else None
        if isinstance(init, Mapping):
            unknown = set(init) - set(alleles)
            if unknown:
                raise ValueError(f"frequencies_init has unknown allele(s) {sorted(unknown)}")
            missing = set(alleles) - set(init)
            if missing:
                raise ValueError(f"frequencies_init lacks allele(s) {sorted(missing)}")
            init = [init[a] for a in alleles]
        p = check_probabilities(init, "frequencies_init", simplex=True)
        if p.shape != (len(alleles),):
            raise ValueError(f"frequencies_init must have {len(alleles)} entries, got shape {p.shape}")
        return {"frequencies": p}

    def _publish(self, result) -> None:
        alleles, _, _ = self._table()
        p = np.asarray(to_numpy(result.params["frequencies"]), dtype=float)
        self.frequencies_ = {a: float(v) for a, v in zip(alleles, p)}
        model = result.model
        resp, _ = model.posterior(self._fit_data, result.params)
        expected = (np.nan_to_num(to_numpy(resp)) * self._fit_data[0][:, None]).sum(axis=0)
        self.genotype_counts_ = {_genotype_name(i, j, alleles): float(v)
                                 for (i, j), v in zip(model.genotypes, expected)}
