"""Allele frequencies under Hardy-Weinberg equilibrium from phenotype counts: the estimator of
:class:`~emkit.models.alleles.AlleleModel` (the maths, the peppered-moth example and
the consistency rules of a phenotype table are described in :mod:`emkit.models.alleles`)."""

from __future__ import annotations

import itertools
from typing import Any, Mapping, Sequence

import numpy as np

from emkit.core.arrays import to_numpy
from emkit.core.validation import check_probabilities
from emkit.estimators.base import EMEstimator
from emkit.estimators.settings import Constraint, Setting, declare
from emkit.models.alleles import AlleleModel, allele_data, genotype_name, parse_genotype

__all__ = ["AlleleFrequencies"]


def _required(what: str) -> Constraint:
    """A setting without a usable default: anything but None (checked in detail by ``fit``)."""
    return Constraint(lambda v: v is not None, f"{what} (required)")


class AlleleFrequencies(EMEstimator):
    """Allele frequencies under Hardy-Weinberg equilibrium from phenotype counts (EM gene counting).

{settings}

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

    alleles: Sequence[str]
    phenotypes: Mapping[str, Any]
    frequencies_init: Any

    frequencies_: dict[str, float]
    genotype_counts_: dict[str, float]

    _settings = declare(
        Setting("alleles", None, _required("a list of allele names"),
                'Allele names, e.g. ``["C", "I", "T"]``.', positional=True),
        Setting("phenotypes", None, _required("a mapping phenotype -> genotypes"),
                'Each phenotype\'s unordered genotypes, e.g. ``{"carbonaria": ["CC", "CI", '
                '"CT"], "insularia": ["II", "IT"], "typica": ["TT"]}``. Genotypes are two-character '
                'strings (``"CI"`` == ``"IC"``), ``"A1/A2"`` strings or pairs of allele names. A '
                'phenotype may be any union of genotypes; every genotype must belong to some '
                'phenotype, and any two phenotypes must be disjoint or nested.', positional=True),
        Setting("frequencies_init", None, None,
                "Starting frequencies (allele -> frequency, or a list in the order of ``alleles``). "
                "Default: equal frequencies (random ones for the restarts when ``n_init > 1``)."))

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_dominance(cls, order: str, names: Mapping[str, str] | None = None,
                       **settings: Any) -> "AlleleFrequencies":
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
    def abo(cls, **settings: Any) -> "AlleleFrequencies":
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
            raise ValueError(f"genotype {genotype_name(i, j, alleles)!r} belongs to no phenotype; "
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
        self._validate_settings()
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
        return allele_data(values, membership)

    def _init_params(self, model: Any, data: Any) -> dict | None:
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

    def _publish(self, result: Any) -> None:
        alleles, _, _ = self._table()
        p = np.asarray(to_numpy(result.params["frequencies"]), dtype=float)
        self.frequencies_ = {a: float(v) for a, v in zip(alleles, p)}

    def _store(self, model: Any, data: Any, result: Any) -> None:
        super()._store(model, data, result)
        # expected individuals per genotype at the fitted frequencies (needs the phenotype counts)
        resp, _ = model.posterior(data, result.params)
        expected = (np.nan_to_num(to_numpy(resp)) * to_numpy(model.row_weights(data))[:, None]).sum(axis=0)
        alleles = list(self.alleles)
        self.genotype_counts_ = {genotype_name(i, j, alleles): float(v)
                                 for (i, j), v in zip(model.genotypes, expected)}
