"""The model contract: what a latent-variable model tells the EM engine.

A model holds only its maths. The engine (:func:`emkit.em`) owns the loop, stopping rules,
restarts, chunking, Dask, acceleration, variants and standard errors.

Data
    A model's data is a tuple of arrays that share their first axis (the *rows*): for example
    ``(X, sample_weight)`` or ``(successes, trials)``. The built-in models take
    :class:`emkit.core.data.Data`, a tuple whose arrays have names (``X``, ``sample_weight``,
    ``trials``, ``censored``), so that tools outside the model find, say, the row weights by
    name; a plain tuple works for any model that does not need names. The engine may cut the
    data into row chunks or Dask blocks, so everything a row needs must be on that row. The
    model only ever sees in-memory arrays (NumPy, torch or CuPy) in its E-step: Dask data is
    cut into blocks by the execution layer before the model is called.

Required methods
    ``initialize(data, rng) -> params``
        Starting parameters (a dict: group name -> array). ``rng`` is a
        :class:`numpy.random.Generator`; restarts call it again with the same generator.
    ``e_step(data, params) -> (stats, loglik)``
        The expected complete-data sufficient statistics given the observed data at
        ``params``, and the observed-data log-likelihood at ``params``. Statistics are a dict
        (or tuple) of arrays that is **additive over rows**: the statistics of a data set are
        the sum of those of its parts. This is what makes chunked, distributed and online EM
        work for every model with no extra code.
    ``m_step(stats, params) -> params`` or ``m_step(stats, params, fixed=frozenset()) -> params``
        The maximiser of the expected complete-data log-likelihood given ``stats``.
        ``params`` are the current values (for groups held fixed, or for models whose M-step
        needs them). The engine restores fixed groups after the M-step; an M-step in which
        groups interact (covariances about fixed means, say) takes the ``fixed`` argument,
        the names of the groups held fixed, and uses their values from ``params``. For online
        EM the M-step must depend on ``stats`` only through ratios (scaling all statistics by
        a constant must not change the result), which holds for every maximum-likelihood
        M-step of an exponential family.

A model is complete when constructed: nothing (the engine included) writes onto it
afterwards, so one model may serve several fits, threads and Dask workers at once.

Class attribute
    ``param_spec``: ordered dict group name -> :class:`emkit.core.params.Constraint`.

Optional methods (features that need them say so when they are missing)
    ``complete_loglik(stats, params)``: the expected complete-data log-likelihood
    Q(params | params') from statistics computed at params' (supplemented EM uses it for the
    complete-data information). ``loglik(data, params)``: observed log-likelihood without the
    statistics (defaults to ``e_step``). ``sample(params, n, rng)``: draw data (parametric
    bootstrap, ``sample``). ``validate_params(params)``: raise ValueError for bad starting values.
    ``log_prior(params)``: the log prior density (up to a constant) of a model fitted by MAP EM;
    the engine adds it to the log-likelihood, so that EM climbs (and its trace, stopping rule
    and monotonicity check follow) the log posterior, and its M-step must maximise Q plus it.

Discrete latent variables
    Subclass :class:`DiscreteLatentModel` and give ``log_joint`` (log p(x_i, z_i = k)) and
    ``stats_from_responsibilities``; ``e_step`` then comes for free, and so do hard
    (classification) and stochastic EM.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from emkit.core.arrays import get_namespace
from emkit.core.data import row_weights, take_rows
from emkit.core.params import Constraint, check_param_values

Data = tuple  # or emkit.core.data.Data, a tuple with field names
Params = dict
Stats = Any


class Model:
    """Base class of every EM model. See the module docstring for the contract."""

    #: group name -> constraint, in a fixed order
    param_spec: dict[str, Constraint] = {}
    #: short name used in messages ("BinomialMixture", "linkage", ...)
    name: str | None = None
    #: chunks may run in parallel threads (e_step keeps no shared mutable state)
    thread_safe: bool = False
    #: relative decrease of the observed log-likelihood (times ``max(1, |l|)``) that this model's
    #: M-step may cause although its E- and M-steps are right: 0 for an exact maximiser; a
    #: regularised M-step (the Gaussian's ``reg_covar``) is not one, and the engine's
    #: monotonicity check tolerates this much on top of rounding
    monotone_rtol: float = 0.0

    # ------------------------------------------------------------------ required
    def initialize(self, data: Data, rng: np.random.Generator) -> Params:
        raise NotImplementedError(f"{self.display_name} does not implement initialize(); pass init=")

    def e_step(self, data: Data, params: Params) -> tuple[Stats, float]:
        raise NotImplementedError

    def m_step(self, stats: Stats, params: Params) -> Params:
        raise NotImplementedError

    # ------------------------------------------------------------------ optional
    def loglik(self, data: Data, params: Params) -> float:
        """Observed-data log-likelihood at ``params``."""
        return float(self.e_step(data, params)[1])

    def complete_loglik(self, stats: Stats, params: Params) -> float:
        raise NotImplementedError(f"{self.display_name} does not implement complete_loglik(), "
                                  "which supplemented EM needs for the complete-data information")

    def sample(self, params: Params, n: int, rng: np.random.Generator) -> Data:
        raise NotImplementedError(f"{self.display_name} does not implement sample()")

    def validate_params(self, params: Params, where: str = "initial parameters") -> None:
        check_param_values(params, self.param_spec, where)

    # ------------------------------------------------------------------ rows
    def n_rows(self, data: Data) -> int:
        """Number of rows (the axis along which statistics add up)."""
        return int(data[0].shape[0])

    def n_samples(self, data: Data) -> float:
        """Number of observations (sum of row weights); used by the per-sample stopping rule."""
        return float(self.n_rows(data))

    def take_rows(self, data: Data, rows: Any) -> Data:
        """The rows ``rows`` (a slice or an integer index array) of every array in ``data``."""
        return take_rows(data, rows)

    def chunk_rows(self, data: Data) -> int | None:
        """Default rows per chunk for the statistics pass (None: one pass over everything)."""
        return None

    # ------------------------------------------------------------------ construction
    @classmethod
    def constructor_arguments(cls) -> tuple[str, ...]:
        """Names of the constructor's arguments (each stored under the same attribute name)."""
        parameters = inspect.signature(cls.__init__).parameters
        return tuple(name for name, p in parameters.items()
                     if name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))

    def replace(self, **changes: Any) -> "Model":
        """A new model like this one with some constructor arguments changed; this one is left
        unchanged (a model is complete when constructed, so a change means a new model)."""
        names = self.constructor_arguments()
        unknown = set(changes) - set(names)
        if unknown:
            raise TypeError(f"{self.display_name} has no constructor argument(s) {sorted(unknown)}")
        arguments = {n: changes[n] if n in changes else getattr(self, n) for n in names
                     if n in changes or hasattr(self, n)}
        return type(self)(**arguments)

    @property
    def display_name(self) -> str:
        return self.name or type(self).__name__


class DiscreteLatentModel(Model):
    """A model whose latent variable per row takes one of K values (mixtures, genotypes...).

    Subclasses implement

    ``log_joint(data, params) -> (n_rows, K) array``
        log p(x_i, z_i = k | params); may be -inf where z_i = k is impossible.
    ``stats_from_responsibilities(data, resp) -> stats``
        The complete-data sufficient statistics when row i belongs to value k with weight
        ``resp[i, k]`` (row weights or counts are already multiplied in).
    ``row_weights(data)`` (optional)
        Weights (or integer multiplicities) of the rows; None means all ones.
    ``row_counts_are_integers`` (class attribute)
        True when row weights are counts of identical observations, so stochastic EM draws
        a multinomial number of each row's observations per latent value.
    """

    row_counts_are_integers = False

    def log_joint(self, data: Data, params: Params) -> Any:
        raise NotImplementedError

    def stats_from_responsibilities(self, data: Data, resp: Any) -> Stats:
        raise NotImplementedError

    def row_weights(self, data: Data) -> Any:
        """The ``sample_weight`` field of :class:`~emkit.core.data.Data` (None for a plain tuple)."""
        return row_weights(data)

    def n_samples(self, data: Data) -> float:
        w = self.row_weights(data)
        return float(self.n_rows(data)) if w is None else float(w.sum())

    def posterior(self, data: Data, params: Params) -> tuple[Any, Any]:
        """Posterior probabilities p(z_i = k | x_i) and the per-row log-likelihood."""
        log_joint = self.log_joint(data, params)
        xp = get_namespace(log_joint)
        row_ll = logsumexp_rows(log_joint, xp)
        return xp.exp(log_joint - row_ll[:, None]), row_ll

    def e_step(self, data: Data, params: Params) -> tuple[Any, float]:
        resp, row_ll = self.posterior(data, params)
        w = self.row_weights(data)
        if w is not None:
            resp = resp * w[:, None]
            row_ll = row_ll * w
        xp = get_namespace(row_ll)
        return self.stats_from_responsibilities(data, resp), float(xp.sum(row_ll))


def logsumexp_rows(a: Any, xp: Any = np) -> Any:
    """log(sum(exp(a), axis=1)) that is stable and handles rows that are all -inf."""
    amax = xp.max(a, axis=1)
    finite = xp.isfinite(amax)
    shift = xp.where(finite, amax, xp.zeros_like(amax))
    out = xp.log(xp.sum(xp.exp(a - shift[:, None]), axis=1)) + shift
    return out
