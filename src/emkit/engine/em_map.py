"""The EM map, public: one E-step plus one M-step, with fixed groups and checks, in one place.

Every algorithm that moves parameters by EM steps goes through :class:`EMMap`: the plain loop,
SQUAREM and Anderson acceleration, supplemented EM's Jacobian, the numerical Hessian, the
bootstrap and online EM. So "run the M-step, restore the fixed groups, check the result is
finite" exists once, here.
"""

from __future__ import annotations

import functools
import inspect
import math
from typing import Any, Sequence

import numpy as np

from emkit.core.arrays import is_dask, to_numpy
from emkit.core.params import ParamSpace
from emkit.core.validation import check_fixed_groups
from emkit.execution.dask import dask_statistics_pass
from emkit.execution.local import local_statistics_pass
from emkit.engine.variants import ALGORITHMS, CHUNK_FUNCTIONS


def statistics_pass(model: Any, data: tuple, params: dict, *, algorithm: str = "em",
                    rng: np.random.Generator | None = None, chunk_size: int | None = None,
                    n_threads: int | None = None) -> tuple[Any, float]:
    """Expected sufficient statistics and observed log-likelihood over all rows of ``data``.

    NumPy / torch / CuPy data is processed in chunks of ``chunk_size`` rows (the model's default
    when None) by :func:`emkit.execution.local.local_statistics_pass`, Dask data block by block
    on the cluster by :func:`emkit.execution.dask.dask_statistics_pass`; either way the additive
    statistics are summed, so every model gets memory-bounded and distributed E-steps for free.
    ``algorithm`` picks the chunk function (exact, hard or stochastic EM; see
    :mod:`emkit.engine.variants`). Chunks of NumPy data run on ``n_threads`` threads (default
    :func:`emkit.get_num_threads`) for exact EM on a ``thread_safe`` model.
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r}; choose one of {ALGORITHMS}")
    chunk_function = CHUNK_FUNCTIONS[algorithm]
    exact = algorithm == "em"
    if any(is_dask(a) for a in data if a is not None):
        return dask_statistics_pass(model, data, params, chunk_function=chunk_function,
                                    rng=None if exact else rng, chunk_size=chunk_size)
    return local_statistics_pass(model, data, params, chunk_function=chunk_function,
                                 rng=None if exact else rng, chunk_size=chunk_size,
                                 n_threads=n_threads, threaded=exact)


@functools.lru_cache(maxsize=None)
def _m_step_takes_fixed(m_step_function) -> bool:
    try:
        parameters = inspect.signature(m_step_function).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return False
    return "fixed" in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def m_step(model: Any, stats: Any, params: dict, fixed: Sequence[str] = ()) -> dict:
    """``model.m_step`` with the fixed groups passed in (when the model takes them) and
    restored afterwards (dynamax's convention: fixed parameters reach the M-step explicitly).

    A model's ``m_step(stats, params, fixed=frozenset())`` may read ``fixed`` when its groups
    interact (covariances about fixed means, say); a model whose M-step has no ``fixed``
    argument is called as ``m_step(stats, params)``.
    """
    function = type(model).m_step
    held = frozenset(fixed)
    if held and _m_step_takes_fixed(function):
        new = dict(model.m_step(stats, params, fixed=held))
    else:
        new = dict(model.m_step(stats, params))
    for name in held:
        new[name] = params[name]
    return new


class EMMap:
    """theta -> M(E(theta)) for one model and one data set, and its pieces.

    Parameters
    ----------
    model : Model
        Any model following the contract of :mod:`emkit.models.base`.
    data : Data or tuple of arrays
        Row-aligned arrays (NumPy, torch, CuPy or Dask).
    fixed : sequence of str
        Parameter groups held at their current value by every M-step.
    algorithm : {"em", "hard", "stochastic"}
        Which E-step: exact, classification or stochastic (see :mod:`emkit.engine.variants`).
    rng : numpy.random.Generator, optional
        Draws of stochastic EM.
    chunk_size : int, optional
        Rows per chunk of the statistics pass (default: the model's choice).

    Attributes
    ----------
    n_evaluations : int
        M-steps run so far (accelerators also count E-steps spent on rejected points).
    space : ParamSpace or None
        Free parameterisation of the non-fixed groups, once :meth:`start` has been called.

    Examples
    --------
    >>> em_map = EMMap(model, data, fixed=["weights"])           # doctest: +SKIP
    >>> new_params, stats, loglik = em_map(params)                # doctest: +SKIP
    """

    def __init__(self, model, data, *, fixed: Sequence[str] = (), algorithm: str = "em",
                 rng: np.random.Generator | None = None, chunk_size: int | None = None):
        self.model = model
        self.data = data
        self.fixed = check_fixed_groups(fixed, model.param_spec, model.display_name)
        if algorithm not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {algorithm!r}; choose one of {ALGORITHMS}")
        self.algorithm = algorithm
        self.rng = rng
        self.chunk_size = chunk_size
        self.space: ParamSpace | None = None
        self.n_evaluations = 0

    def start(self, params: dict) -> ParamSpace:
        """Fix the free parameterisation at ``params`` (shapes of the non-fixed groups)."""
        self.space = ParamSpace(self.model.param_spec, params, self.fixed)
        return self.space

    # ------------------------------------------------------------------ the two steps
    def e_step(self, params: dict) -> tuple[Any, float]:
        """Statistics and objective at ``params`` (one pass over the data): the observed
        log-likelihood, plus the model's ``log_prior(params)`` for a model with a prior (MAP
        EM climbs their sum)."""
        stats, loglik = statistics_pass(self.model, self.data, params, algorithm=self.algorithm,
                                        rng=self.rng, chunk_size=self.chunk_size)
        return stats, loglik + log_prior(self.model, params)

    def loglik(self, params: dict) -> float:
        """The objective at ``params`` (an exact E-step pass): the observed-data log-likelihood,
        plus the log prior for a model with one."""
        return float(statistics_pass(self.model, self.data, params, chunk_size=self.chunk_size)[1]) + \
            log_prior(self.model, params)

    def m_step(self, params: dict, stats: Any) -> dict:
        """The M-step from ``stats`` with fixed groups restored; raises ValueError when it gives
        non-finite values (a NaN would otherwise run silently to ``max_iter``)."""
        new = m_step(self.model, stats, params, self.fixed)
        self.count_evaluation()
        if not all_finite(new):  # (the message names the group)
            check_finite_params(new, self.model, f"the M-step at evaluation {self.n_evaluations}")
        return new

    def count_evaluation(self) -> None:
        """Count one EM-map evaluation."""
        self.n_evaluations += 1

    def __call__(self, params: dict) -> tuple[dict, Any, float]:
        """``(M(E(params)), statistics at params, log-likelihood at params)``."""
        stats, loglik = self.e_step(params)
        return self.m_step(params, stats), stats, loglik

    # ------------------------------------------------------------------ vectors
    def on_vector(self, vec: np.ndarray, space: ParamSpace | None = None) -> np.ndarray:
        """The EM map over free coordinates: vector in, vector out (supplemented EM's Jacobian)."""
        space = space or self.space
        assert space is not None, "EMMap.on_vector: call start(params) first, or pass space="
        params = space.from_vector(vec)
        new, _, _ = self(params)
        return space.to_vector(new)


def log_prior(model: Any, params: dict) -> float:
    """``model.log_prior(params)`` for a model with a prior (MAP EM), else 0."""
    fn = getattr(model, "log_prior", None)
    return 0.0 if fn is None else float(fn(params))


def _finite(value: Any) -> bool:
    # NumPy arrays (the usual case) without the generic wrappers' overhead; a finite sum of
    # floats is a sum of finite values: one reduction, the usual answer
    if type(value) is np.ndarray and value.dtype.kind == "f":
        return math.isfinite(value.sum()) or bool(np.isfinite(value).all())
    return bool(np.all(np.isfinite(to_numpy(value))))


def all_finite(params: dict) -> bool:
    """Whether every group of ``params`` is free of NaN and inf."""
    return all(_finite(value) for value in params.values())


def check_finite_params(params: dict, model: Any, where: str) -> None:
    """Raise ValueError naming the group when ``params`` holds NaN or inf."""
    for name, value in params.items():
        if not _finite(value):
            raise ValueError(f"{model.display_name}: {where} gave non-finite values for {name!r} (a "
                             f"component with no data, or a degenerate statistic); try other starting "
                             f"values, n_init > 1, or algorithm='em'")
