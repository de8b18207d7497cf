"""Online EM (Cappe & Moulines 2009) for every model: one batch of rows at a time.

Each batch of rows updates a running average of the *per-observation* expected sufficient
statistics and the parameters follow from one M-step:

    s_k = (1 - g_k) s_{k-1} + g_k S(batch_k; theta_{k-1}) / n_k,     theta_k = M(s_k),

where S is the model's (additive) E-step statistics, n_k the number of observations in batch k
(the sum of its row weights) and g_k = (k + k0)^(-alpha) the step size, alpha in (0.5, 1].
Because a maximum-likelihood M-step depends on the statistics only through ratios, M(s) on
normalised statistics is the usual M-step. Nothing here is model-specific, and nothing here
knows about estimators: :func:`update` works on a model, a batch of its data, the current
parameters and the running statistics, through the engine's public :class:`~emkit.engine.EMMap`
(statistics pass) and :func:`~emkit.engine.m_step` (M-step with the fixed groups restored).

Estimators drive it from ``partial_fit`` (see :meth:`emkit.estimators.base.EMEstimator.partial_fit`),
which also decides how a stream starts (a batch EM fit of the first batch, or the parameters
of an earlier ``fit``).

Example
-------
>>> state = online.update(model, first_batch, params)                 # doctest: +SKIP
>>> state = online.update(model, next_batch, state.params, state.stats,
...                       n_batches=1)                                 # doctest: +SKIP
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Sequence, cast

from emkit.core.arrays import tree_add, tree_map
from emkit.engine import EMMap, m_step
from emkit.engine.em_map import check_finite_params

#: default step-size exponent alpha and offset k0 of g_k = (k + k0)^(-alpha)
DEFAULT_STEP_DECAY = 0.6
DEFAULT_STEP_OFFSET = 1.0

__all__ = ["OnlineUpdate", "update", "batch_observations", "check_schedule", "step_size",
           "DEFAULT_STEP_DECAY", "DEFAULT_STEP_OFFSET"]


def step_size(k: int, decay: float = DEFAULT_STEP_DECAY, offset: float = DEFAULT_STEP_OFFSET) -> float:
    """g_k = (k + offset)^(-decay) for batch number k >= 1 after the first."""
    return float((k + offset) ** (-decay))


def check_schedule(decay: Any, offset: Any) -> tuple[float, float]:
    """``(alpha, k0)`` as floats; ValueError naming ``step_decay`` / ``step_offset`` when out of range."""
    # cast: typeshed's numbers.Real does not declare the comparisons every real number has
    if isinstance(decay, bool) or not isinstance(decay, numbers.Real) or not (0.5 < cast(float, decay) <= 1.0):
        raise ValueError(f"step_decay (alpha) must be in (0.5, 1], got {decay!r}")
    if (isinstance(offset, bool) or not isinstance(offset, numbers.Real)
            or not (cast(float, offset) >= 0 and math.isfinite(offset))):
        raise ValueError(f"step_offset (k0) must be a finite number >= 0, got {offset!r}")
    return float(decay), float(offset)


def batch_observations(model: Any, data: tuple) -> float:
    """n_k: the number of observations in a batch (its summed row weights); ValueError when none."""
    n_batch = float(model.n_samples(data))
    if not n_batch > 0:
        raise ValueError("the batch has no observations (zero rows or zero total weight)")
    return n_batch


@dataclass(frozen=True)
class OnlineUpdate:
    """The outcome of one online EM step.

    Attributes
    ----------
    params : dict
        theta_k = M(s_k), with the fixed groups unchanged.
    stats : statistics
        s_k, the running average of the per-observation statistics.
    step_size : float
        g_k (1 for the first batch of a stream, which starts the average).
    loglik : float
        Log-likelihood of the batch at the parameters it was processed with (theta_{k-1}).
    n_observations : float
        n_k, the observations of the batch (summed row weights).
    """

    params: dict
    stats: Any
    step_size: float
    loglik: float
    n_observations: float


def update(model: Any, data: tuple, params: dict, running: Any = None, *, n_batches: int = 0,
           fixed: Sequence[str] = (), step_decay: float = DEFAULT_STEP_DECAY,
           step_offset: float = DEFAULT_STEP_OFFSET, chunk_size: int | None = None) -> OnlineUpdate:
    """One online EM step of ``model`` on the batch ``data`` from ``params``.

    Parameters
    ----------
    model : Model
        Any model following :mod:`emkit.models.base`.
    data : Data or tuple
        The batch.
    params : dict
        theta_{k-1}: the parameters the batch is processed with.
    running : statistics, optional
        s_{k-1}. None starts a stream: s_1 = S(batch; params) / n_1 (step size 1).
    n_batches : int
        k - 1, the number of batches already in ``running`` (ignored when it is None).
    fixed : sequence of str
        Groups held at their value in ``params``.
    step_decay, step_offset : float
        alpha in (0.5, 1] and k0 >= 0 of g_k = (k + k0)^(-alpha).
    chunk_size : int, optional
        Rows per chunk of the statistics pass.

    Returns
    -------
    OnlineUpdate

    Raises
    ------
    ValueError
        For a batch without observations, a bad schedule, or an M-step that gives non-finite
        values (a batch that leaves a component without data).
    """
    decay, offset = check_schedule(step_decay, step_offset)
    n_batch = batch_observations(model, data)
    em_map = EMMap(model, data, fixed=fixed, chunk_size=chunk_size)
    stats, batch_ll = em_map.e_step(params)
    if running is None:
        gain = 1.0
        new_running = tree_map(lambda a: a / n_batch, stats)
    else:
        gain = step_size(int(n_batches), decay, offset)
        rebase = getattr(model, "rebase_stats", None)
        if rebase is not None:  # statistics about reference points (Gaussian): the batch's, first
            running = rebase(running, params)
        scaled = tree_map(lambda a: a * (gain / n_batch), stats)
        new_running = tree_add(tree_map(lambda a: a * (1.0 - gain), running), scaled)
    new = m_step(model, new_running, params, em_map.fixed)
    check_finite_params(new, model, f"online EM (batch {int(n_batches) + 1 if running is not None else 1}; "
                                    "a batch may leave a component without data: use larger batches or "
                                    "a smaller step size)")
    return OnlineUpdate(params=new, stats=new_running, step_size=gain, loglik=float(batch_ll),
                        n_observations=n_batch)
