"""The EM engine: one loop for every model.

:func:`em` runs Expectation-Maximization on any :class:`emkit.models.base.Model`. It owns the loop,
the stopping rules, restarts, fixed parameters, the log-likelihood trace and its monotonicity
check, chunked and distributed statistics passes, acceleration and the hard / stochastic
variants. Models only give their maths (see :mod:`emkit.models.base`).

Stopping rules (``stop=``), checked after every iteration t >= 1, where l_t is the observed
log-likelihood at the parameters after t iterations and theta_t those parameters (non-fixed
groups, all entries, flattened):

======================  =====================================================================
``"loglik"``            ``|l_t - l_{t-1}| < tol``
``"loglik_mean"``       ``|l_t - l_{t-1}| / n < tol``, n = number of observations (scikit-learn's)
``"loglik_rel"``        ``|l_t - l_{t-1}| < tol * |l_t|``
``"params"``            ``sum((theta_t - theta_{t-1})**2) < tol``   (squared Euclidean change)
``"params_maxabs"``     ``max|theta_t - theta_{t-1}| < tol``
======================  =====================================================================

The comparison is strict, so ``tol=0`` always runs exactly ``max_iter`` iterations. For
``"loglik_rel"`` a positive ``tol`` is raised to :data:`LOGLIK_REL_FLOOR_EPS` machine epsilons
of the data's dtype when below it (float32 data cannot show a smaller relative change).

Checkpoints (``checkpoint=``, ``checkpoint_every=``): the whole state of the loop is written
atomically every so many iterations or seconds; a fit restarted with the same model, data and
settings resumes from it and ends bit-identical to an uninterrupted fit; the file is removed
after a successful fit. See :mod:`emkit.engine.checkpoint`.
"""

from __future__ import annotations

import math
import numbers
import os
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence, cast

import numpy as np

from emkit.core.arrays import asarray_like, float_eps, to_numpy
from emkit.core.params import copy_params, flatten_full
from emkit.core.sklearn_twins import sklearn_twin, twin_module_getattr
from emkit.core.validation import check_fixed_groups, check_random_state
from emkit.engine.accelerate import AndersonAccelerator, SquaremAccelerator, get_accelerator
from emkit.engine.checkpoint import (Checkpoint, check_checkpoint_settings, data_fingerprint, describe_value,
                                     model_fingerprint)
from emkit.engine.em_map import EMMap, log_prior, statistics_pass
from emkit.engine.variants import ALGORITHMS
from emkit.execution.local import blas_hold, chunk_work_kept
from emkit.models.base import DiscreteLatentModel, Model

STOP_RULES = ("loglik", "loglik_mean", "loglik_rel", "params", "params_maxabs")
#: the rules that compare log-likelihoods only (the loop need not keep the previous parameters)
LOGLIK_RULES = ("loglik", "loglik_mean", "loglik_rel")
#: ``"loglik_rel"`` never uses a tolerance below this many machine epsilons of the data's dtype
#: (the log-likelihood's own rounding): float64 1.1e-14, float32 6.0e-6
LOGLIK_REL_FLOOR_EPS = 50
MONOTONE_CHECKS = ("warn", "raise", "off")


class MonotonicityWarning(UserWarning):
    """The observed log-likelihood decreased between two EM iterations."""


class MonotonicityError(RuntimeError):
    """Raised instead of :class:`MonotonicityWarning` when ``check_monotone="raise"``."""


class ConvergenceWarning(UserWarning):
    """EM stopped at ``max_iter`` before the stopping rule was met.

    When scikit-learn is imported in the process, the warning emkit issues is of class
    ``SklearnConvergenceWarning``, a subclass of both this class and
    ``sklearn.exceptions.ConvergenceWarning`` (see :func:`convergence_warning_category`), so
    that filters and ``pytest.warns`` with either class, and scikit-learn's tools such as
    ``GridSearchCV``, treat it as their own. emkit never imports scikit-learn itself (that
    takes seconds); a program that names scikit-learn's class has imported it.
    """


def convergence_warning_category() -> type:
    """The class of the convergence warnings emkit issues: :class:`ConvergenceWarning`, or,
    once scikit-learn is imported, ``SklearnConvergenceWarning`` (a subclass of it and of
    ``sklearn.exceptions.ConvergenceWarning``; see :mod:`emkit.core.sklearn_twins`)."""
    return sklearn_twin(ConvergenceWarning, "ConvergenceWarning", __name__)


__getattr__ = twin_module_getattr(__name__, ConvergenceWarning, "ConvergenceWarning")


class IdentifiabilityWarning(UserWarning):
    """The observed information at the fit is singular or nearly so: the optimum is a flat
    ridge of equally good parameters (a non-identifiable model, e.g. two identical mixture
    components), so the parameters along it depend on the start, the accelerator, the chunk
    size or the row order, and have no standard errors. Issued by :mod:`emkit.inference`
    (``flat_directions``, ``hessian``, ``sem``), where the observed information is computed."""


@dataclass
class RestartSummary:
    """What one restart (one run from one starting point) reached."""

    loglik: float
    loglik_trace: np.ndarray
    n_iter: int
    converged: bool
    init_params: dict


@dataclass
class EMResult:
    """Outcome of :func:`em` (the best restart).

    Attributes
    ----------
    params : dict
        Fitted parameters, group name -> array (same array library as the data).
    loglik : float
        Observed-data log-likelihood at ``params``.
    loglik_trace : ndarray
        Observed log-likelihood at the starting parameters, then after each iteration
        (``n_iter + 1`` values; its last value is ``loglik`` except for stochastic EM, whose
        ``loglik`` is that of the averaged iterates). For a model with a prior (MAP EM) the
        trace, the stopping rule and the restarts' comparison use the log posterior, ``loglik
        + log_prior``, which is what EM never decreases then.
    log_prior : float
        The model's log prior density at ``params`` (0 without a prior).
    n_iter : int
        Iterations run (for SQUAREM/Anderson, accelerated steps plus the plain EM step(s) that
        end every accelerated run: see :func:`em`).
    converged : bool
        Whether the stopping rule was met before ``max_iter``. For stochastic EM, whether the
        fixed schedule ran to the end.
    n_em_evaluations : int
        Number of evaluations of the EM map (one E-step plus one M-step each).
    params_history : list of dict or None
        Parameters at the start and after each iteration, when ``keep_history=True``.
    restarts : list of RestartSummary
        One entry per restart, in order.
    best_restart : int
        Index of the restart returned.
    """

    params: dict
    loglik: float
    loglik_trace: np.ndarray
    n_iter: int
    converged: bool
    n_em_evaluations: int
    params_history: list | None
    restarts: list
    best_restart: int
    model: Model
    stop: str
    tol: float
    max_iter: int
    fixed: tuple = ()
    algorithm: str = "em"
    accelerate: str | None = None
    options: dict = field(default_factory=dict)
    log_prior: float = 0.0

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={np.array2string(to_numpy(v), precision=6)}" for k, v in self.params.items())
        return (f"EMResult({self.model.display_name}: loglik={self.loglik:.6f}, n_iter={self.n_iter}, "
                f"converged={self.converged}, {params})")


# --------------------------------------------------------------------------- the loop
def _plain_step(em_map: EMMap, params, stats, loglik):
    new = em_map.m_step(params, stats)
    new_stats, new_ll = em_map.e_step(new)
    return new, new_stats, new_ll


def _stop_rule_met(rule: str, tol: float, ll_old: float, ll_new: float, p_old, p_new, names, n_obs) -> bool:
    if rule == "loglik":
        return abs(ll_new - ll_old) < tol
    if rule == "loglik_mean":
        return abs(ll_new - ll_old) / max(n_obs, 1.0) < tol
    if rule == "loglik_rel":
        return abs(ll_new - ll_old) < tol * max(abs(ll_new), np.finfo(np.float64).tiny)
    diff = flatten_full(p_new, names) - flatten_full(p_old, names)
    if rule == "params":
        return float(diff @ diff) < tol
    return (float(np.max(np.abs(diff))) if diff.size else 0.0) < tol


def _check_monotone(mode, model, iteration, ll_old, ll_new, rtol, restart):
    if mode == "off" or not (math.isfinite(ll_old) and math.isfinite(ll_new)):
        return
    if ll_new < ll_old - rtol * max(1.0, abs(ll_old)):
        msg = (f"{model.display_name}: observed log-likelihood decreased at iteration {iteration}"
               f"{'' if restart is None else f' of restart {restart}'} from {ll_old:.12g} to {ll_new:.12g} "
               f"(by {ll_old - ll_new:.3g}); exact EM never decreases it, so the E- or M-step is wrong or "
               f"the M-step is not an exact maximiser (a regularised covariance such as reg_covar)")
        if mode == "raise":
            raise MonotonicityError(msg)
        warnings.warn(msg, MonotonicityWarning, stacklevel=4)


def _run_from(em_map: EMMap, params, *, stop, tol, max_iter, callback, check_monotone,
              monotone_rtol, keep_history, accelerator, burn_in, restart_index, resume=None, save=None):
    """One restart from ``params``; ``resume`` (a saved "current" state) continues one that a
    checkpoint interrupted; ``save(iteration, state)``, when given, is called after every
    iteration with a function that builds the loop's state (``save`` decides whether a
    checkpoint is due, and only then builds it)."""
    model = em_map.model
    names = list(em_map.start(params).free_names)
    n_obs = model.n_samples(em_map.data) if stop == "loglik_mean" else 1.0
    rng = em_map.rng
    stochastic = em_map.algorithm == "stochastic"
    if resume is None:
        stats, loglik = em_map.e_step(params)
        if not math.isfinite(loglik):
            raise ValueError(f"{model.display_name}: the log-likelihood at the starting parameters is "
                             f"{loglik}; the starting values give zero probability to some observation")
        trace = [loglik]
        history = [copy_params(params)] if keep_history else None
        if callback is not None:
            callback(0, params, loglik)
        converged = False
        running_sum, n_avg = None, 0
        n_iter = 0
    else:
        params, stats, loglik, trace, history, converged, running_sum, n_avg, n_iter = _resume_run(
            em_map, resume, accelerator, keep_history)
    step = accelerator.step if accelerator is not None else _plain_step
    # An accelerated run ends on a plain EM step: once an accelerated step meets the stopping
    # rule, the next step is plain EM, and the run stops only when that step meets the rule too
    # (otherwise acceleration resumes). So "converged" certifies the same thing with or without
    # acceleration (the EM map moved less than tol) and the end point is M(theta), not an
    # extrapolated point whose exact position depends on rounding noise.
    finishing = bool(resume.get("finishing", False)) if resume is not None else False
    for it in range(n_iter + 1, max_iter + 1) if not converged else ():
        rng_before = rng.bit_generator.state if (save is not None and rng is not None) else None
        plain_now = accelerator is None or finishing
        if plain_now:
            new = em_map.m_step(params, stats)
            # neither the old statistics nor (unless a parameter rule compares them) the old
            # parameters are needed again: let them go before the E-step, which is where the
            # memory peaks (wide data: (K, D, D) covariances and (K, D (D + 1) / 2) statistics)
            stats = new_stats = None
            if stop in LOGLIK_RULES:
                params = None
            new_stats, new_ll = em_map.e_step(new)
        else:
            new, new_stats, new_ll = step(em_map, params, stats, loglik)
        n_iter = it
        trace.append(new_ll)
        if keep_history:
            cast(list, history).append(copy_params(new))  # a list whenever keep_history
        if em_map.algorithm == "em":
            _check_monotone(check_monotone, model, it, loglik, new_ll, monotone_rtol, restart_index)
        if callback is not None:
            callback(it, new, new_ll)
        met = (not stochastic) and _stop_rule_met(stop, tol, loglik, new_ll, params, new, names, n_obs)
        done = met and plain_now
        finishing = met and not plain_now
        params, stats, loglik = new, new_stats, new_ll
        if stochastic and it > burn_in:
            vec = {n: to_numpy(params[n]).astype(float) for n in names}
            running_sum = vec if running_sum is None else {n: running_sum[n] + vec[n] for n in names}
            n_avg += 1
        if done:
            converged = True
        if save is not None:
            save(it, lambda: {"params": params, "trace": np.asarray(trace, dtype=float), "n_iter": n_iter,
                              "converged": converged, "history": history, "running_sum": running_sum, "n_avg": n_avg,
                              "n_evaluations": em_map.n_evaluations, "rng_before_stats": rng_before,
                              "rng_now": None if rng is None else rng.bit_generator.state,
                              "accelerator": _accelerator_state(accelerator), "finishing": finishing})
        if done:
            break
    final_ll = loglik
    if stochastic:
        converged = n_iter == max_iter
        if n_avg:
            params = dict(params)
            for n in names:
                params[n] = asarray_like(cast(dict, running_sum)[n] / n_avg, params[n])  # a dict once n_avg > 0
        # the averaged iterate's observed log-likelihood, from a plain E-step
        final_ll = em_map.loglik(params)
    return params, final_ll, np.asarray(trace, dtype=float), n_iter, converged, history


# --------------------------------------------------------------------------- checkpoints
def _accelerator_state(accelerator) -> dict | None:
    """What SQUAREM or Anderson carry from one iteration to the next."""
    if accelerator is None:
        return None
    if isinstance(accelerator, SquaremAccelerator):
        return {"name": "squarem", "step_max": float(accelerator._step_max)}
    if isinstance(accelerator, AndersonAccelerator):
        return {"name": "anderson", "xs": list(accelerator._xs), "fs": list(accelerator._fs),
                "last": accelerator._last}
    raise ValueError(f"checkpoint= cannot save the state of accelerator {type(accelerator).__name__}")


def _restore_accelerator(accelerator, em_map: EMMap, state: dict | None) -> None:
    if accelerator is None:
        return
    state = cast(dict, state)  # saved with the accelerator's run: a dict whenever there is an accelerator
    if isinstance(accelerator, SquaremAccelerator):
        accelerator._em_map, accelerator._step_max = em_map, float(state["step_max"])
    else:
        accelerator._reset(em_map)
        accelerator._xs = [np.asarray(x) for x in state["xs"]]
        accelerator._fs = [np.asarray(f) for f in state["fs"]]
        accelerator._last = None if state["last"] is None else np.asarray(state["last"])


def _same_float(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def _resume_run(em_map: EMMap, state: dict, accelerator, keep_history: bool):
    """The loop state of a restart interrupted after a checkpoint: the statistics at the saved
    parameters are recomputed with the random generator as it was before they were first
    computed (stochastic EM redraws the same latent values), then checked."""
    params = dict(state["params"])
    trace = [float(v) for v in np.asarray(state["trace"], dtype=float)]
    rng = em_map.rng
    if rng is not None and state["rng_before_stats"] is not None:
        rng.bit_generator.state = state["rng_before_stats"]
    stats, loglik = em_map.e_step(params)
    if rng is not None and state["rng_now"] is not None:
        rng.bit_generator.state = state["rng_now"]  # where the interrupted fit had it
    if not _same_float(loglik, trace[-1]):
        raise ValueError(f"{em_map.model.display_name}: resuming from the checkpoint, the log-likelihood at the "
                         f"saved parameters is {loglik!r}, not the saved {trace[-1]!r}: the data or the model "
                         f"differ from the checkpointed fit (delete the checkpoint to start afresh)")
    em_map.n_evaluations = int(state["n_evaluations"])
    _restore_accelerator(accelerator, em_map, state["accelerator"])
    history = [dict(h) for h in state["history"]] if keep_history else None
    running_sum = None if state["running_sum"] is None else dict(state["running_sum"])
    return (params, stats, loglik, trace, history, bool(state["converged"]), running_sum,
            int(state["n_avg"]), int(state["n_iter"]))


def _random_state_fingerprint(random_state) -> Any:
    if random_state is None:
        return None
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return int(random_state)
    # a Generator (or RandomState) object: its state is restored from the checkpoint
    return type(random_state).__name__


def _accelerate_fingerprint(accelerate) -> Any:
    if accelerate is None or accelerate is False or accelerate == "none":
        return None
    accelerator = _resolve_accelerator(accelerate)
    if isinstance(accelerator, SquaremAccelerator):
        return {"name": "squarem", "step_max0": accelerator.step_max0.hex(),
                "step_factor": accelerator.step_factor.hex(), "max_backtracks": accelerator.max_backtracks}
    if isinstance(accelerator, AndersonAccelerator):
        return {"name": "anderson", "memory": accelerator.memory,
                "regularization": accelerator.regularization.hex()}
    raise ValueError(f"checkpoint= works with accelerate=None, 'squarem' or 'anderson'; the state of the "
                     f"custom accelerator {type(accelerate).__name__} cannot be saved (drop checkpoint= or "
                     f"accelerate=)")


def _fingerprint(model, data, *, init, fixed, tol, stop, max_iter, n_init, random_state, accelerate,
                 algorithm, burn_in, chunk_size, keep_history) -> dict:
    settings = {"model": model_fingerprint(model), "init": None if init is None else describe_value(dict(init)),
                "fixed": sorted(fixed), "tol": float(tol).hex(), "stop": stop, "max_iter": int(max_iter),
                "n_init": int(n_init), "random_state": _random_state_fingerprint(random_state),
                "accelerate": _accelerate_fingerprint(accelerate), "algorithm": algorithm,
                "burn_in": int(burn_in), "chunk_size": None if chunk_size is None else int(chunk_size),
                "keep_history": bool(keep_history)}
    return {"settings": settings, "data": data_fingerprint(data)}


def _summary_state(s: RestartSummary) -> dict:
    return {"loglik": float(s.loglik), "trace": np.asarray(s.loglik_trace, dtype=float), "n_iter": int(s.n_iter),
            "converged": bool(s.converged), "init_params": s.init_params}


def _best_state(best) -> dict | None:
    if best is None:
        return None
    params, ll, trace, n_iter, converged, history, n_eval, r = best
    return {"params": params, "loglik": float(ll), "trace": np.asarray(trace, dtype=float), "n_iter": int(n_iter),
            "converged": bool(converged), "history": history, "n_evaluations": int(n_eval), "restart": int(r)}


def _best_from_state(state: dict | None):
    if state is None:
        return None
    return (dict(state["params"]), float(state["loglik"]), np.asarray(state["trace"], dtype=float),
            int(state["n_iter"]), bool(state["converged"]),
            None if state["history"] is None else [dict(h) for h in state["history"]],
            int(state["n_evaluations"]), int(state["restart"]))


def _check_model(model) -> None:
    """A one-line ValueError for a ``model`` that does not follow the model contract (None, a
    class instead of an instance, an estimator), before anything reads its attributes."""
    missing = [name for name in ("param_spec", "initialize", "e_step", "m_step") if not hasattr(model, name)]
    if missing or isinstance(model, type):
        what = f"the class {model.__name__} (pass an instance)" if isinstance(model, type) else repr(model)[:80]
        raise ValueError(f"model must be an emkit model (param_spec, initialize, e_step and m_step, see "
                         f"emkit.Model), got {what}")


def _check_data(data) -> tuple:
    """``data`` as a tuple of arrays; a one-line ValueError for anything else."""
    if data is None:
        raise ValueError("data must be an array or a tuple of row-aligned arrays, got None")
    if not isinstance(data, tuple):
        data = (data,)
    arrays = [a for a in data if a is not None]
    if not arrays:
        raise ValueError("data must be an array or a tuple of row-aligned arrays with at least one array, "
                         f"got {data!r}")
    bad = next((a for a in arrays if not hasattr(a, "shape")), None)
    if bad is not None:
        raise ValueError(f"data must be an array or a tuple of row-aligned arrays (NumPy, torch, CuPy or Dask), "
                         f"got {type(bad).__name__}; convert it with numpy.asarray")
    return data


def _resolve_accelerator(accelerate):
    if accelerate is None or accelerate is False or accelerate == "none":
        return None
    if isinstance(accelerate, str):
        return get_accelerator(accelerate)
    if hasattr(accelerate, "step"):
        return accelerate
    raise ValueError(f"accelerate must be None, 'squarem', 'anderson' or an object with a step() method; "
                     f"got {accelerate!r}")


def em(model: Model, data: tuple, *, init: Mapping[str, Any] | None = None, fixed: Sequence[str] = (),
       tol: float = 1e-8, stop: str = "loglik", max_iter: int = 1000, n_init: int = 1,
       random_state: Any = None, callback: Callable[[int, dict, float], Any] | None = None,
       check_monotone: str = "warn", monotone_rtol: float | None = None, keep_history: bool = False,
       accelerate: Any = None, algorithm: str = "em", burn_in: int | None = None,
       chunk_size: int | None = None, warn_not_converged: bool = True,
       checkpoint: str | os.PathLike | None = None, checkpoint_every: int | float | None = None) -> EMResult:
    """Run EM on ``model`` and ``data``.

    Parameters
    ----------
    model : Model
        Any object following the contract of :mod:`emkit.models.base`.
    data : tuple of arrays
        Row-aligned arrays (NumPy, torch, CuPy or Dask). A single array is wrapped in a tuple.
    init : dict, optional
        Starting values for some or all parameter groups; the rest come from
        ``model.initialize``. When every group is given, all restarts start there.
    fixed : sequence of str
        Parameter groups held at their starting value (``fixed=["weights"]``).
    tol, stop : float, str
        Stopping rule; see the module docstring for the exact definitions. ``tol=0`` runs
        exactly ``max_iter`` iterations.
    max_iter : int
        Largest number of iterations per restart.
    n_init : int
        Restarts from fresh starting points; the one with the highest log-likelihood is kept.
    random_state : None, int, Generator or RandomState
        Seeds initialisation and stochastic EM; the same value gives the same fit.
    callback : callable, optional
        ``callback(iteration, params, loglik)`` after the start (iteration 0) and every iteration.
    check_monotone : {"warn", "raise", "off"}
        What to do when the observed log-likelihood decreases by more than rounding
        (``monotone_rtol`` times ``max(1, |l|)``; default 1e4 machine epsilons of the data's dtype,
        or the model's own ``monotone_rtol`` when larger: a regularised M-step is not an exact
        maximiser).
    keep_history : bool
        Keep the parameters of every iteration in ``result.params_history``.
    accelerate : None, "squarem", "anderson"
        Extrapolation of the EM map (see :mod:`emkit.engine.accelerate`). An accelerated run
        ends on a plain EM step: after an accelerated step meets the stopping rule, one plain
        EM step is taken, and the run stops when that step meets the rule too (otherwise the
        acceleration goes on). The fit is then a point of the EM map with the same
        convergence certificate as plain EM, reached whatever the chunk size, thread count or
        row order; where it still depends on them, the optimum is a flat ridge (see
        :func:`emkit.inference.flat_directions`).
    algorithm : {"em", "hard", "stochastic"}
        Plain EM, classification (hard) EM, or stochastic EM (needs a model with discrete
        latent variables). Stochastic EM runs ``max_iter`` iterations and returns the average
        of the iterates after ``burn_in`` (default ``max_iter // 2``).
    chunk_size : int, optional
        Rows per chunk of the statistics pass (default: the model's choice).
    checkpoint : str or os.PathLike, optional
        A file for checkpoints of this fit. If it exists when the fit starts, the fit resumes
        from it (it must have been written by a fit with the same model, data and settings,
        otherwise ValueError names what differs) and ends bit-identical to an uninterrupted
        fit; while the fit runs, the file is rewritten atomically; after a successful fit it is
        removed. Callbacks are not replayed for the iterations before the checkpoint. Not
        available with a custom accelerator object. See :mod:`emkit.engine.checkpoint`.
    checkpoint_every : int or float, optional
        How often to write the checkpoint: an ``int`` counts iterations (``10``: after
        iterations 10, 20, ... of each restart), a ``float`` counts seconds (``30.0``: after the
        first iteration that ends 30 s or more after the last checkpoint). Default: every 60
        seconds. Needs ``checkpoint``.

    Returns
    -------
    EMResult
    """
    _check_model(model)
    data = _check_data(data)
    checkpoint_path, checkpoint_every = check_checkpoint_settings(checkpoint, checkpoint_every)
    if stop not in STOP_RULES:
        raise ValueError(f"unknown stop rule {stop!r}; choose one of {STOP_RULES}")
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r}; choose one of {ALGORITHMS}")
    if check_monotone not in MONOTONE_CHECKS:
        raise ValueError(f"check_monotone must be one of {MONOTONE_CHECKS}, got {check_monotone!r}")
    # bool is an Integral too, but max_iter=True is a mistake, not 1
    if not (isinstance(max_iter, numbers.Integral) and not isinstance(max_iter, bool) and max_iter >= 0):
        raise ValueError(f"max_iter must be a non-negative integer, got {max_iter!r}")
    if not (isinstance(n_init, numbers.Integral) and not isinstance(n_init, bool) and n_init >= 1):
        raise ValueError(f"n_init must be a positive integer, got {n_init!r}")
    if not (isinstance(tol, numbers.Real) and tol >= 0 and math.isfinite(tol)):
        raise ValueError(f"tol must be a finite number >= 0, got {tol!r}")
    if chunk_size is not None and not (isinstance(chunk_size, numbers.Integral) and chunk_size >= 1):
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    if algorithm != "em" and not isinstance(model, DiscreteLatentModel):
        raise ValueError(f"algorithm={algorithm!r} needs a model with discrete latent variables; "
                         f"{model.display_name} has none")
    if algorithm != "em" and accelerate:
        raise ValueError("acceleration applies to plain EM only (algorithm='em')")
    fixed = check_fixed_groups(fixed, model.param_spec, model.display_name)
    if init is not None:
        bad = set(init) - set(model.param_spec)
        if bad:
            raise ValueError(f"unknown parameter group(s) in init: {sorted(bad)}; "
                             f"{model.display_name} has {list(model.param_spec)}")
    burn_in = max_iter // 2 if burn_in is None else burn_in
    if algorithm == "stochastic" and not (isinstance(burn_in, numbers.Integral) and 0 <= burn_in < max_iter):
        raise ValueError(f"burn_in must be an integer with 0 <= burn_in < max_iter ({max_iter}), got {burn_in!r}")
    _resolve_accelerator(accelerate)  # validate before any work
    rng = check_random_state(random_state)
    first = next((a for a in data if a is not None), None)
    if monotone_rtol is None:
        monotone_rtol = max(1e4 * float_eps(first), float(getattr(model, "monotone_rtol", 0.0)))
    if stop == "loglik_rel" and tol > 0:
        # a relative change below rounding cannot be seen: float32 data would never stop
        tol = max(tol, LOGLIK_REL_FLOOR_EPS * float_eps(first))

    full_init = init is not None and set(init) >= set(model.param_spec)
    best = None
    summaries = []
    first_restart, saved = 0, None
    store = None
    if checkpoint_path is not None:
        fingerprint = _fingerprint(model, data, init=init, fixed=fixed, tol=tol, stop=stop, max_iter=max_iter,
                                   n_init=n_init, random_state=random_state, accelerate=accelerate,
                                   algorithm=algorithm, burn_in=burn_in, chunk_size=chunk_size,
                                   keep_history=keep_history)
        store = Checkpoint(checkpoint_path, checkpoint_every, fingerprint)
        saved = store.load(like=next((a for a in data if a is not None), None))
        if saved is not None:
            first_restart = int(saved["restart"])
            summaries = [RestartSummary(float(d["loglik"]), np.asarray(d["trace"], dtype=float), int(d["n_iter"]),
                                        bool(d["converged"]), dict(d["init_params"])) for d in saved["completed"]]
            best = _best_from_state(saved["best"])
    for r in range(first_restart, n_init):
        resume = None
        if saved is not None and r == first_restart:
            start, resume = dict(saved["init_params"]), saved["current"]
        else:
            start = {} if full_init else dict(model.initialize(data, rng))
            if init is not None:
                start.update(init)
        model.validate_params(start)
        accelerator = _resolve_accelerator(accelerate)  # a fresh one per restart: it has state
        em_map = EMMap(model, data, fixed=fixed, algorithm=algorithm, rng=rng, chunk_size=chunk_size)
        save = None
        if store is not None:
            def save(iteration, current, r=r, start=start, best=best, done=tuple(summaries)):
                if store.due(iteration):
                    store.save({"restart": r, "init_params": start, "completed": [_summary_state(d) for d in done],
                                "best": _best_state(best), "current": current()})
        with blas_hold(model, data), chunk_work_kept(model, data):
            params, ll, trace, n_iter, converged, history = _run_from(
                em_map, start, stop=stop, tol=tol, max_iter=max_iter, callback=callback,
                check_monotone=check_monotone, monotone_rtol=monotone_rtol, keep_history=keep_history,
                accelerator=accelerator, burn_in=burn_in, restart_index=r if n_init > 1 else None,
                resume=resume, save=save)
        saved = None
        summaries.append(RestartSummary(ll, trace, n_iter, converged, start))
        if best is None or (math.isfinite(ll) and ll > best[1]):
            best = (params, ll, trace, n_iter, converged, history, em_map.n_evaluations, r)
    params, ll, trace, n_iter, converged, history, n_eval, best_r = best
    if store is not None:
        store.remove()  # the fit is done: a later run with the same settings starts afresh
    if warn_not_converged and not converged and tol > 0 and algorithm != "stochastic" and max_iter > 0:
        warnings.warn(f"{model.display_name}: EM did not meet the stopping rule ({stop} < {tol}) in "
                      f"{max_iter} iterations; raise max_iter or tol", convergence_warning_category(),
                      stacklevel=2)
    prior = log_prior(model, params)
    return EMResult(params=params, loglik=ll - prior, log_prior=prior, loglik_trace=trace, n_iter=n_iter,
                    converged=converged,
                    n_em_evaluations=n_eval, params_history=history, restarts=summaries,
                    best_restart=best_r, model=model, stop=stop, tol=float(tol), max_iter=int(max_iter),
                    fixed=tuple(fixed), algorithm=algorithm,
                    accelerate=accelerate if isinstance(accelerate, str) or accelerate is None
                    else type(accelerate).__name__,
                    options={"chunk_size": chunk_size, "burn_in": burn_in})
