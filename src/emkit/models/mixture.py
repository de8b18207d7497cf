"""Finite mixtures of one distribution family: the model.

:class:`FiniteMixtureModel` is a K-component mixture of one :mod:`~emkit.models.families`
family: mixing weights plus the family's parameter groups. The estimators that fit it
(``PoissonMixture``, ``BinomialMixture``, ..., ``FiniteMixture``) live in
:mod:`emkit.estimators.mixture`.

Data of the model (:func:`mixture_data`): the family's named arrays (``family.fields``:
``X`` first, then e.g. ``trials`` and data-only constants) followed by the row weights,
``sample_weight`` (None for unweighted rows).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from emkit.core.arrays import get_namespace, host_rows, asarray_like, to_numpy
from emkit.core.data import ROW_WEIGHTS, Data, row_weights
from emkit.core.params import Simplex
from emkit.models.kmeans import kmeans
from emkit.models.base import DiscreteLatentModel
from emkit.models.families import Family, safe_log

__all__ = ["FiniteMixtureModel", "mixture_data"]

#: rows of a large data set used to seed the initialisation
INIT_ROWS = 2000
#: default rows per chunk of the statistics pass
CHUNK_ROWS = 65536
#: share of each row's responsibility spread evenly over the components at initialisation,
#: so that no starting probability is exactly 0 or 1
INIT_SMOOTHING = 0.1


def mixture_data(family: Family, arrays: tuple, sample_weight: Any = None) -> Data:
    """The data of a mixture of ``family``: its arrays (as ``family.make_data`` returns them)
    and the row weights, with their names."""
    return Data(tuple(family.fields) + (ROW_WEIGHTS,), tuple(arrays) + (sample_weight,))


# =========================================================================== the model
class FiniteMixtureModel(DiscreteLatentModel):
    """A K-component mixture of one family: p(x) = sum_k weights[k] f(x | component k).

    Parameters
    ----------
    family : Family
        The component distribution (see :mod:`emkit.models.families`).
    n_components : int
        K.
    name : str, optional
        Name used in messages (default ``"<Family>Mixture"``).
    row_counts_are_integers : bool
        The row weights count identical observations (grouped data such as Hasselblad's
        days per number of deaths): stochastic EM then draws a component per individual, and
        the bootstrap resamples individuals. False: one draw per row.
    """

    def __init__(self, family: Family, n_components: int, name: str | None = None,
                 row_counts_are_integers: bool = False):
        self.family = family
        self.n_components = int(n_components)
        self.param_spec = {"weights": Simplex(), **family.param_spec}
        self.name = name or f"{family.name}Mixture"
        self.row_counts_are_integers = bool(row_counts_are_integers)

    # ------------------------------------------------------------------ rows
    def row_weights(self, data: tuple) -> Any:
        """The ``sample_weight`` field (by name; the last array of a plain tuple)."""
        return row_weights(data) if isinstance(data, Data) else data[-1]

    def n_rows(self, data: tuple) -> int:
        return int(data[0].shape[0])

    def chunk_rows(self, data: tuple) -> int | None:
        """Rows per chunk of the E-step: bounds the (rows x K x d) temporaries of the
        multivariate normal and keeps every family's memory linear in K, not in n."""
        return CHUNK_ROWS

    # ------------------------------------------------------------------ maths
    def log_joint(self, data: tuple, params: dict) -> Any:
        xp = get_namespace(data[0])
        log_w = safe_log(params["weights"], xp)
        return self.family.log_density(data[:-1], params) + log_w[None, :]

    def stats_from_responsibilities(self, data: tuple, resp: Any) -> Any:
        xp = get_namespace(resp)
        return {"n": xp.sum(resp, axis=0), **self.family.stats(data[:-1], resp)}

    def m_step(self, stats: Any, params: dict | None, fixed: frozenset = frozenset()) -> dict:
        """Weights from the responsibilities, the components from the family's M-step (given
        the groups in ``fixed``, held at their value in ``params``)."""
        n = stats["n"]
        xp = get_namespace(n)
        new = {"weights": n / xp.sum(n)}
        with np.errstate(divide="ignore", invalid="ignore"):  # empty components are handled below
            new.update(self.family.m_step(stats, params, fixed=fixed))
        empty = ~(n > 0)
        if params is not None and bool(to_numpy(xp.any(empty))):
            # A component with no responsibility has no estimate: keep its parameters.
            for group in self.family.param_spec:
                old, value = params[group], new[group]
                mask = xp.reshape(empty, (-1,) + (1,) * (value.ndim - 1))
                new[group] = xp.where(mask, xp.asarray(old, dtype=value.dtype), value)
        return new

    def complete_loglik(self, stats: Any, params: dict) -> float:
        """E[log p(x, z | params)] given statistics computed at some params' (exact, with the
        data-only constants)."""
        xp = get_namespace(stats["n"])
        log_w = safe_log(xp.asarray(params["weights"], dtype=stats["n"].dtype), xp)
        return float(to_numpy(xp.sum(stats["n"] * log_w))) + float(self.family.complete_loglik(stats, params))

    def n_parameters(self, params: dict, fixed: Sequence[str] = ()) -> int:
        """Free parameters: K - 1 weights plus the family's (groups in ``fixed`` excluded)."""
        n_weights = 0 if "weights" in fixed else self.n_components - 1
        return int(n_weights + self.family.n_parameters(params, fixed))

    # ------------------------------------------------------------------ initialisation
    def initialize(self, data: tuple, rng: np.random.Generator) -> dict:
        """k-means++ seeding and a few Lloyd steps on (a sample of) the rows, then one M-step
        from the resulting smoothed hard assignment."""
        fam_data, weights = data[:-1], self.row_weights(data)
        seed = int(rng.integers(2**62))
        host = tuple(np.asarray(host_rows(a, INIT_ROWS, np.random.default_rng(seed)), dtype=float)
                     for a in fam_data)
        host_w = (np.ones(host[0].shape[0]) if weights is None
                  else np.asarray(host_rows(weights, INIT_ROWS, np.random.default_rng(seed)), dtype=float))
        labels = _seed_labels(self.family.features(host), host_w, self.n_components, rng)
        k = self.n_components
        resp = np.full((len(labels), k), INIT_SMOOTHING / k)
        resp[np.arange(len(labels)), labels] += 1.0 - INIT_SMOOTHING
        resp *= host_w[:, None]
        stats = self.stats_from_responsibilities(host + (None,), resp)
        params = self.m_step(stats, None)
        return {g: asarray_like(v, data[0]) for g, v in params.items()}

    # ------------------------------------------------------------------ sampling
    def sample(self, params: dict, n: int, rng: np.random.Generator, **inputs: Any) -> tuple:
        """Draw ``n`` rows: ``(data in this model's layout, component labels)``; ``inputs`` are
        the family's named inputs (the binomial's ``trials``)."""
        public, labels = self.sample_public(params, n, rng, **inputs)
        drawn = dict(zip(self.family.inputs, public[1:]))
        return mixture_data(self.family, self.family.make_data(public[0], **drawn)), labels

    def sample_public(self, params: dict, n: int, rng: np.random.Generator, **inputs: Any) -> tuple:
        """Draw ``n`` rows as the user passes them to ``fit``: ``((X, *inputs), labels)``."""
        w = np.asarray(to_numpy(params["weights"]), dtype=float)
        labels = rng.choice(self.n_components, size=int(n), p=w / w.sum())
        host = {g: to_numpy(v) for g, v in params.items()}
        return self.family.sample(host, labels, rng, **inputs), labels


def _seed_labels(features: np.ndarray, weights: np.ndarray, k: int, rng: np.random.Generator,
                 n_lloyd: int = 5) -> np.ndarray:
    """Cluster labels from emkit's k-means (:func:`emkit.models.kmeans.kmeans`: k-means++
    seeding and ``n_lloyd`` Lloyd iterations) on standardised features; rows of zero weight
    take part in no centre."""
    f = np.asarray(features, dtype=float)
    scale = f.std(axis=0)
    f = (f - f.mean(axis=0)) / np.where(scale > 0, scale, 1.0)
    w = np.clip(np.asarray(weights, dtype=float), 0.0, None)
    if not w.sum() > 0:
        w = np.ones(len(f))
    try:
        return kmeans(f, k, rng, max_iter=n_lloyd, sample_weight=w)
    except ValueError:
        # the initialisation sample of a large data set holds fewer than k distinct rows (the
        # estimator has checked the whole data set): random labels are still a valid start
        return rng.integers(0, k, size=len(f))
