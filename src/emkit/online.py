"""Online EM (Cappe & Moulines 2009) for every estimator: ``est.partial_fit(batch)``.

Each batch of rows updates a running average of the *per-observation* expected sufficient
statistics and the parameters follow from one M-step:

    s_k = (1 - g_k) s_{k-1} + g_k S(batch_k; theta_{k-1}) / n_k,     theta_k = M(s_k),

where S is the model's (additive) E-step statistics, n_k the number of observations in batch k
(the sum of its row weights) and g_k = (k + k0)^(-alpha) the step size, alpha in (0.5, 1].
Because a maximum-likelihood M-step depends on the statistics only through ratios, M(s) on
normalised statistics is the usual M-step. Nothing here is model-specific: it works for any
estimator whose model follows :mod:`emkit.models.base`.

Start
    The first batch is fitted by ordinary (batch) EM with the estimator's own settings and
    initialisation (``*_init``, ``n_init``, ``random_state``, ``fixed``...), so the stream
    starts from a sensible point; its normalised statistics at that fit are s_1. If the
    estimator was already fitted with ``fit``, the stream starts from those parameters.

State (fitted attributes)
    ``n_batches_seen_``, ``n_rows_seen_`` (observations, i.e. summed row weights),
    ``online_stats_`` (s_k), ``online_step_size_`` (the last g_k), ``online_step_decay_``
    (alpha), ``online_step_offset_`` (k0). The usual fitted attributes are updated after every
    batch: ``params_``, each ``<group>_``, ``n_iter_`` (= batches), ``n_em_evaluations_``
    (E-steps, each followed by an M-step), ``loglik_`` (log-likelihood of the latest batch at
    the parameters it was processed with), ``loglik_trace_`` (that value per batch),
    ``converged_`` (False: a stream has no end), ``result_`` (an EMResult with
    ``algorithm="online"``).

Estimators whose ``fit`` prepares arguments before ``_make_data`` may define
``_online_data(*args, **kwargs) -> data tuple``; it is used instead of ``_make_data``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from emkit.core.arrays import to_numpy, tree_add, tree_map
from emkit.engine import EMResult, em, statistics_pass

#: default step-size exponent alpha and offset k0 of g_k = (k + k0)^(-alpha)
DEFAULT_STEP_DECAY = 0.6
DEFAULT_STEP_OFFSET = 1.0

__all__ = ["partial_fit", "step_size", "DEFAULT_STEP_DECAY", "DEFAULT_STEP_OFFSET"]


def step_size(k: int, decay: float = DEFAULT_STEP_DECAY, offset: float = DEFAULT_STEP_OFFSET) -> float:
    """g_k = (k + offset)^(-decay) for batch number k >= 1 after the first."""
    return float((k + offset) ** (-decay))


def _check_schedule(decay: Any, offset: Any) -> tuple[float, float]:
    if isinstance(decay, bool) or not isinstance(decay, numbers.Real) or not (0.5 < decay <= 1.0):
        raise ValueError(f"step_decay (alpha) must be in (0.5, 1], got {decay!r}")
    if isinstance(offset, bool) or not isinstance(offset, numbers.Real) or not (offset >= 0 and math.isfinite(offset)):
        raise ValueError(f"step_offset (k0) must be a finite number >= 0, got {offset!r}")
    return float(decay), float(offset)


def _batch_data(estimator, args, kwargs) -> tuple:
    hook = getattr(estimator, "_online_data", None)
    data = hook(*args, **kwargs) if callable(hook) else estimator._make_data(*args, **kwargs)
    return data if isinstance(data, tuple) else (data,)


def _engine_options(estimator) -> dict:
    options = estimator._engine_options()
    options.pop("fixed", None)
    return options


def partial_fit(estimator, *args: Any, step_decay: float | None = None, step_offset: float | None = None,
                **kwargs: Any):
    """Update ``estimator`` with one batch of rows by online EM; returns the estimator.

    Parameters
    ----------
    estimator : EMEstimator
        Any emkit estimator (built-in or user-defined).
    *args, **kwargs
        The batch, exactly as ``estimator.fit`` takes data (``X``, ``sample_weight=``, ...).
    step_decay : float in (0.5, 1], optional
        alpha of g_k = (k + k0)^(-alpha); default 0.6, or the value in use by this stream.
        Smaller values forget the start faster; 1 averages all batches equally.
    step_offset : float >= 0, optional
        k0; default 1, or the value in use by this stream.

    Notes
    -----
    Per-batch cost is one E-step and one M-step (the first batch: a batch EM fit). The
    estimate's noise shrinks like g_k / n_batch, so a long stream of large batches approaches
    the full-data maximum-likelihood estimate.
    """
    decay = getattr(estimator, "online_step_decay_", DEFAULT_STEP_DECAY) if step_decay is None else step_decay
    offset = getattr(estimator, "online_step_offset_", DEFAULT_STEP_OFFSET) if step_offset is None else step_offset
    decay, offset = _check_schedule(decay, offset)
    options = _engine_options(estimator)
    fixed = tuple(getattr(estimator, "fixed", ()) or ())
    # a stream is under way when the last fit was ours (fit() since then starts a new one)
    streaming = (hasattr(estimator, "online_stats_") and hasattr(estimator, "result_")
                 and getattr(estimator.result_, "algorithm", None) == "online")
    model = estimator.model_ if hasattr(estimator, "result_") else estimator._make_model()
    if options.get("algorithm", "em") != "em":
        raise ValueError(f"partial_fit runs online EM; algorithm={options['algorithm']!r} is not supported")
    data = _batch_data(estimator, args, kwargs)
    n_batch = float(model.n_samples(data))
    if not n_batch > 0:
        raise ValueError("the batch has no observations (zero rows or zero total weight)")
    chunk_size = options.get("chunk_size")

    if streaming:
        params = estimator.params_
        k = int(estimator.n_batches_seen_)                 # batches already in the average
        stats, batch_ll = statistics_pass(model, data, params, chunk_size=chunk_size)
        gain = step_size(k, decay, offset)
        scaled = tree_map(lambda a: a * (gain / n_batch), stats)
        running = tree_add(tree_map(lambda a: a * (1.0 - gain), estimator.online_stats_), scaled)
        n_rows, evaluations, trace = estimator.n_rows_seen_ + n_batch, estimator.n_em_evaluations_ + 1, \
            list(estimator.loglik_trace_)
    elif hasattr(estimator, "result_"):
        # continue from an ordinary fit: its parameters start the stream
        params = estimator.params_
        stats, batch_ll = statistics_pass(model, data, params, chunk_size=chunk_size)
        gain = 1.0
        running = tree_map(lambda a: a / n_batch, stats)
        n_rows, evaluations, trace = n_batch, int(estimator.n_em_evaluations_) + 1, []
    else:
        # first batch: a batch EM fit with the estimator's own settings and initialisation
        first = em(model, data, init=estimator._init_params(model, data), fixed=fixed, **options)
        params = first.params
        stats, batch_ll = statistics_pass(model, data, params, chunk_size=chunk_size)
        gain = 1.0
        running = tree_map(lambda a: a / n_batch, stats)
        n_rows, evaluations, trace = n_batch, first.n_em_evaluations + 1, []

    new = dict(model.m_step(running, params))
    for name in fixed:
        new[name] = params[name]
    _check_finite(new, model)
    trace.append(float(batch_ll))
    result = EMResult(params=new, loglik=float(batch_ll), loglik_trace=np.asarray(trace, dtype=float),
                      n_iter=len(trace), converged=False, n_em_evaluations=int(evaluations),
                      params_history=None, restarts=[], best_restart=0, model=model, stop="online",
                      tol=0.0, max_iter=0, fixed=fixed, algorithm="online", accelerate=None,
                      options={"chunk_size": chunk_size, "step_decay": decay, "step_offset": offset})
    estimator._store(model, data, result)
    estimator.online_stats_ = running
    estimator.online_step_size_ = gain
    estimator.online_step_decay_ = decay
    estimator.online_step_offset_ = offset
    estimator.n_batches_seen_ = len(trace)
    estimator.n_rows_seen_ = n_rows
    return estimator


def _check_finite(params: dict, model) -> None:
    for name, value in params.items():
        if not np.all(np.isfinite(to_numpy(value))):
            raise ValueError(f"{model.display_name}: online EM produced non-finite {name}; the batch may "
                             "leave a component without data (use larger batches or a smaller step size)")
