"""Standard errors for every EM model: supplemented EM, observed information, bootstrap.

All three methods work on any model written against :mod:`emkit.models.base`, built-in or your own,
because they only call the model's E- and M-steps (through the engine's statistics pass, so
chunked and Dask data work too), ``complete_loglik`` (supplemented EM), ``loglik``
(Hessian) and ``sample`` (parametric bootstrap).

What to pass
    Each function takes the *fit* first, in one of three forms:

    * a model, its data and a result or a parameter dict: ``sem(model, data, result)``;
    * an :class:`~emkit.engine.EMResult` and its data: ``standard_errors(result, data=data)``;
    * a fitted estimator: ``standard_errors(coins, method="sem")``. This module does not look
      inside estimators: it asks the estimator, whose ``covariance(method, data=...)`` method
      passes its model, data and result back here (the same as
      ``coins.standard_errors("sem")``).

    The EM map, its Jacobian, the Hessian, the refinement of the MLE and the bootstrap refits
    all run on the engine's public :class:`~emkit.engine.EMMap` and :func:`~emkit.engine.em`.

Methods
    ``"sem"``
        Supplemented EM (Meng & Rubin 1991). The EM map M is differentiated numerically at
        the MLE (central differences, step relative to each parameter's scale) to give its
        Jacobian J = dM/dtheta, whose eigenvalues are the fractions of missing information;
        the largest is EM's linear rate of convergence. With the complete-data information
        I_oc (minus the Hessian of ``complete_loglik`` at the MLE's statistics, or the model's
        ``complete_information``), the observed information is I_obs = I_oc (I - J) and
        V = I_obs^{-1}, i.e. Meng & Rubin's V = I_oc^{-1} + I_oc^{-1} DM (I - DM)^{-1} with
        DM = J^T.
    ``"hessian"``
        Minus the numerical Hessian of the observed-data log-likelihood (or the model's
        ``observed_information(data, params)``; ``via="score"`` differentiates the score of
        Fisher's identity instead), inverted.
    ``"bootstrap"``
        Refits, started at the fit, on resampled data: rows drawn with replacement
        (``kind="nonparametric"``; for rows that carry frequencies, i.e. models with
        ``DiscreteLatentModel.row_counts_are_integers`` or ``resample="individuals"``, the
        individuals are resampled: new counts ~ Multinomial(N, counts / N)), or data drawn
        from the fitted model (``kind="parametric"``, needs ``model.sample``).

Coordinates
    Supplemented EM and the Hessian work in the free parameterisation
    :class:`~emkit.core.params.ParamSpace` (a simplex drops its last coordinate, a covariance
    matrix keeps its lower triangle); the covariance of all entries follows exactly from the
    delta method with the constant Jacobian ``space.jacobian()``. Groups held fixed have no
    free coordinates and standard error zero.

Analytic hooks a model may offer (optional)
    ``complete_information(stats, params)`` and ``observed_information(data, params)``: a
    square matrix over all entries of all parameter groups, flattened in C order and
    concatenated in ``param_spec`` order, equal to minus the Hessian of the complete-data
    (resp. observed-data) log-likelihood with the entries treated as unconstrained
    coordinates. ``bootstrap_resample(data, rng)``: a resampled data tuple.

Fraction of missing information in one call
    ``est.covariance("sem").fraction_missing_information`` (or
    ``emkit.inference.sem(est).fraction_missing_information``); the eigenvalues of J are in
    ``.missing_information``.
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence, Union, cast

import numpy as np

from emkit.core.validation import check_fixed_groups
from emkit.core.arrays import asarray_like, to_numpy
from emkit.core.data import ROW_WEIGHTS, Data
from emkit.core.params import ParamSpace, flatten_full
from emkit.engine import EMMap, EMResult, IdentifiabilityWarning, check_random_state, em
from emkit.models.base import DiscreteLatentModel, Model

METHODS = ("sem", "hessian", "bootstrap")
BOOTSTRAP_KINDS = ("nonparametric", "parametric")

__all__ = ["CovarianceResult", "covariance", "standard_errors", "sem", "hessian", "bootstrap",
           "observed_information", "complete_information", "em_jacobian", "flat_directions",
           "IdentifiabilityWarning", "FLAT_RTOL", "METHODS"]

#: an eigenvalue of the observed information in relative units (see ``flat_directions``) at or
#: below this fraction of the largest one is a flat direction
FLAT_RTOL = 1e-6


@dataclass
class CovarianceResult:
    """Asymptotic covariance of fitted EM parameters.

    Attributes
    ----------
    matrix : ndarray, shape (p, p)
        Covariance of the flattened entries of the non-fixed groups (all entries, including
        those dropped by the free parameterisation), in ``param_spec`` order.
    labels : list of str
        Name of each row/column of ``matrix``, e.g. ``"weights[0]"``, ``"cov[1,0]"``, ``"p"``.
    standard_errors : dict of str to ndarray
        Square roots of the diagonal, reshaped per group (zeros for fixed groups).
    method : str
        ``"sem"``, ``"hessian"`` or ``"bootstrap"``.
    params : dict
        The parameters at which the covariance was computed (for SEM and Hessian the tightly
        converged MLE, which may differ from the fitted values by the fit's tolerance).
    free_matrix : ndarray, shape (q, q)
        Covariance of the free coordinates (``space.to_vector``).
    space : ParamSpace
        The free parameterisation used.
    observed_information : ndarray or None
        Observed information over the free coordinates (SEM and Hessian).
    complete_information : ndarray or None
        Complete-data information I_oc over the free coordinates (SEM only).
    em_jacobian : ndarray or None
        Jacobian J = dM/dtheta of the EM map at the MLE over the free coordinates (SEM only;
        Meng & Rubin's DM is its transpose).
    missing_information : ndarray or None
        Eigenvalues of J, largest first: the fractions of missing information (SEM only).
    fraction_missing_information : float or None
        Largest eigenvalue of J, which is also EM's linear rate of convergence (SEM only).
    replicates : ndarray or None
        Bootstrap estimates, shape (n_successful, p) (bootstrap only).
    flat_directions : ndarray, shape (k, q)
        Unit vectors over the free coordinates along which the observed information is
        singular or nearly so (see :func:`flat_directions`); empty (k = 0) for an identified fit.
    n_failed : int
        Bootstrap replicates whose refit failed or gave non-finite values (dropped).
    """

    matrix: np.ndarray
    labels: list
    standard_errors: dict
    method: str
    params: dict
    free_matrix: np.ndarray
    space: ParamSpace
    observed_information: np.ndarray | None = None
    complete_information: np.ndarray | None = None
    em_jacobian: np.ndarray | None = None
    missing_information: np.ndarray | None = None
    fraction_missing_information: float | None = None
    replicates: np.ndarray | None = None
    n_failed: int = 0
    details: dict = field(default_factory=dict)
    flat_directions: np.ndarray | None = None

    @property
    def rate_of_convergence(self) -> float | None:
        """EM's linear rate of convergence at the MLE (= ``fraction_missing_information``)."""
        return self.fraction_missing_information

    def __repr__(self) -> str:
        ses = ", ".join(f"{k}={np.array2string(np.asarray(v), precision=4)}"
                        for k, v in self.standard_errors.items())
        extra = ("" if self.fraction_missing_information is None
                 else f", fraction_missing_information={self.fraction_missing_information:.4f}")
        return f"CovarianceResult(method={self.method!r}, standard errors: {ses}{extra})"


#: parameter groups held fixed: one name or several
_Fixed = Union[str, Sequence[str]]

# --------------------------------------------------------------------------- resolving the fit
@dataclass
class _Fit:
    model: Model
    data: tuple
    params: dict
    fixed: tuple
    result: EMResult | None
    chunk_size: int | None


def _is_estimator(fit: Any) -> bool:
    """An estimator-like object (it answers ``covariance(method, data=...)`` itself)."""
    return (not isinstance(fit, (EMResult, Model)) and callable(getattr(fit, "covariance", None))
            and callable(getattr(fit, "get_params", None)))


def _ask_estimator(fit: Any, method: str, data: Any, result: Any, **kwargs: Any) -> CovarianceResult:
    """A fitted estimator computes its own covariance (it passes its model, data and result
    back to this module); nothing here reads an estimator's attributes."""
    if result is not None:
        raise ValueError(f"with a fitted {type(fit).__name__}, pass no result: the estimator holds its fit")
    return fit.covariance(method, data=data, **kwargs)


def _resolve(fit: Any, data: Any = None, result: Any = None, fixed: Any = None) -> _Fit:
    """Turn an EMResult / (model, data, result-or-params) into one description."""
    res: EMResult | None
    if isinstance(fit, EMResult):
        if data is None:
            raise ValueError("an EMResult does not keep its data: pass data=(the data tuple given to em())")
        res, model = fit, fit.model
    elif isinstance(fit, Model):
        if data is None or result is None:
            raise ValueError("with a model, pass its data and the fitted result (an EMResult or a "
                             "parameter dict): sem(model, data, result)")
        model = fit
        res = result if isinstance(result, EMResult) else None
        if res is None and not isinstance(result, Mapping):
            raise ValueError(f"result must be an EMResult or a dict of parameters, got {type(result).__name__}")
    else:
        raise ValueError(f"expected a fitted estimator, an EMResult or a Model, got {type(fit).__name__}")
    if res is not None and res.algorithm == "online":
        raise ValueError(f"{model.display_name} was fitted by partial_fit (online EM); standard errors "
                         "need a batch fit: call fit() on the data")
    if not isinstance(data, tuple):
        data = (data,)
    if res is not None and res.algorithm in ("hard", "stochastic"):
        warnings.warn(f"{model.display_name} was fitted by {res.algorithm} EM, whose estimate is not the "
                      "maximum-likelihood one; the standard errors are those of the MLE that plain EM "
                      "reaches from the fitted values (see .params of the result)", UserWarning, stacklevel=4)
    if res is not None:
        params = dict(res.params)
        fixed_groups = tuple(res.fixed) if fixed is None else fixed
        chunk = (res.options or {}).get("chunk_size")
    else:
        params = dict(result)
        fixed_groups = fixed
        chunk = None
    missing = set(model.param_spec) - set(params)
    if missing:
        raise ValueError(f"the parameters lack group(s) {sorted(missing)} of {model.display_name}")
    fixed_groups = check_fixed_groups(fixed_groups, model.param_spec, model.display_name)
    return _Fit(model, data, params, fixed_groups, res, chunk)


def _labels(space: ParamSpace) -> list[str]:
    out = []
    for name, idx in space.full_labels():
        out.append(name if idx == () else f"{name}[{','.join(str(i) for i in idx)}]")
    return out


def _finish(fit: _Fit, space: ParamSpace, params: dict, free_cov: np.ndarray, method: str,
            **extra: Any) -> CovarianceResult:
    """Full covariance by the delta method, standard errors per group, labels."""
    jac = space.jacobian()
    full = jac @ free_cov @ jac.T
    full = 0.5 * (full + full.T)
    return _package(fit, space, params, full, free_cov, method, **extra)


def _package(fit: _Fit, space: ParamSpace, params: dict, full: np.ndarray, free_cov: np.ndarray,
             method: str, **extra: Any) -> CovarianceResult:
    diag = np.diag(full)
    if np.any(diag < -1e-12 * max(1.0, float(np.max(np.abs(diag))) if diag.size else 1.0)):
        warnings.warn(f"{fit.model.display_name}: the {method} covariance has negative variances; "
                      "the fit is probably not at a maximum (or at a boundary of the parameter space)",
                      RuntimeWarning, stacklevel=3)
    se_flat = np.sqrt(np.clip(diag, 0.0, None))
    ses, pos = {}, 0
    for name in fit.model.param_spec:
        shape = space.shapes[name]
        if name in space.fixed:
            ses[name] = np.zeros(shape)
            continue
        size = int(np.prod(shape, dtype=int))
        ses[name] = se_flat[pos:pos + size].reshape(shape)
        pos += size
    return CovarianceResult(matrix=full, labels=_labels(space), standard_errors=ses, method=method,
                            params=params, free_matrix=free_cov, space=space, **extra)


def _flat_directions(info: np.ndarray, space: ParamSpace, params: dict, rtol: float = FLAT_RTOL) -> np.ndarray:
    """Rows: unit vectors over the free coordinates along which ``info`` is singular, nearly so
    or not positive (no maximum there). The information is first put in relative units,
    S info S with S = diag(scale of each coordinate) (its size, or a tenth of its group's size
    when near zero, as for the finite-difference steps), so the test does not depend on the
    units of the parameters; an eigenvalue at most ``rtol`` times the largest is flat."""
    info = np.asarray(info, dtype=float)
    info = 0.5 * (info + info.T)
    q = info.shape[0]
    if q == 0 or not np.all(np.isfinite(info)):
        return np.zeros((0, q))
    scale = _steps(space, space.to_vector(params), 1.0)
    values, vectors = np.linalg.eigh(info * scale[:, None] * scale[None, :])
    top = float(np.max(np.abs(values)))
    if top == 0.0:
        return np.eye(q)
    dirs = (scale[:, None] * vectors[:, values <= rtol * top]).T
    return dirs / np.linalg.norm(dirs, axis=1, keepdims=True) if len(dirs) else np.zeros((0, q))


def _warn_flat(dirs: np.ndarray, space: ParamSpace, model: Model | _NamedFit, what: str,
               stacklevel: int = 3) -> None:
    if len(dirs) == 0:
        return
    labels = _labels(space)
    # the free coordinates that move most along the flattest direction
    free_labels = [lab for lab in labels if lab.split("[")[0] in space.free_names]
    top = np.argsort(-np.abs(dirs[0]))[:4]
    names = ", ".join(free_labels[i] if i < len(free_labels) else f"free coordinate {i}" for i in top
                      if abs(dirs[0][i]) > 1e-3)
    warnings.warn(f"{model.display_name}: the {what} at the fit is singular or nearly so in {len(dirs)} "
                  f"direction(s) (moving {names}): the optimum is a flat ridge of equally good parameters "
                  "(a non-identifiable model, e.g. two identical components, or more components than the "
                  "data support), so these parameters are not determined by the data: they depend on the "
                  "start, the accelerator, the chunk size or the row order, and their standard errors are "
                  "meaningless", IdentifiabilityWarning, stacklevel=stacklevel)


def _invert_information(info: np.ndarray, what: str, model: Model) -> np.ndarray:
    info = 0.5 * (info + info.T)
    if not np.all(np.isfinite(info)):
        raise ValueError(f"{model.display_name}: the {what} contains NaN or inf; is the fit at a "
                         "boundary of the parameter space (a probability of 0 or 1, an empty component)?")
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        raise ValueError(f"{model.display_name}: the {what} is singular, so the parameters are not "
                         "identified at this fit (e.g. two identical components); no standard errors") from None
    return 0.5 * (cov + cov.T)


# --------------------------------------------------------------------------- numerical tools
def _steps(space: ParamSpace, vec: np.ndarray, rel_step: float) -> np.ndarray:
    """Finite-difference steps relative to each coordinate's scale (its own size, or a tenth
    of its group's size when it is near zero, e.g. an off-diagonal covariance)."""
    scale = np.abs(vec).astype(float)
    pos = 0
    for name in space.free_names:
        k = space.sizes[name]
        block = scale[pos:pos + k]
        group_scale = float(np.sqrt(np.mean(block**2))) if k else 0.0
        scale[pos:pos + k] = np.maximum(block, 0.1 * group_scale)
        pos += k
    scale = np.where(scale > 0, scale, 1.0)
    return rel_step * scale


def _valid(space: ParamSpace, vec: np.ndarray) -> bool:
    try:
        return space.is_valid(space.from_vector(vec))
    except (ValueError, FloatingPointError):
        return False


def _fit_steps_inside(space: ParamSpace, vec: np.ndarray, steps: np.ndarray, model: Model) -> np.ndarray:
    """Shrink steps so that vec +- step (and +- 2 step) stay valid parameters."""
    steps = steps.copy()
    for i in range(len(vec)):
        for _ in range(40):
            e = np.zeros_like(vec)
            e[i] = 2 * steps[i]
            if _valid(space, vec + e) and _valid(space, vec - e):
                break
            steps[i] /= 2
        else:
            raise ValueError(f"{model.display_name}: free coordinate {i} of the fit lies on the boundary "
                             "of the parameter space, where standard errors are not defined")
    return steps


def _hessian(fun: Callable[[np.ndarray], float], vec: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Central-difference Hessian (second-order accurate)."""
    q = len(vec)
    hess = np.zeros((q, q))
    f0 = fun(vec)
    for i in range(q):
        ei = np.zeros(q)
        ei[i] = steps[i]
        hess[i, i] = (fun(vec + 2 * ei) - 2 * f0 + fun(vec - 2 * ei)) / (4 * steps[i] ** 2)
        for j in range(i):
            ej = np.zeros(q)
            ej[j] = steps[j]
            hess[i, j] = hess[j, i] = (fun(vec + ei + ej) - fun(vec + ei - ej)
                                       - fun(vec - ei + ej) + fun(vec - ei - ej)) / (4 * steps[i] * steps[j])
    return hess


def _full_to_free_info(info_full: np.ndarray, model: Model, space: ParamSpace) -> np.ndarray:
    """A model's information over all entries of all groups -> the free coordinates."""
    sizes = [int(np.prod(space.shapes[n], dtype=int)) for n in model.param_spec]
    info_full = np.asarray(info_full, dtype=float)
    total = sum(sizes)
    if info_full.shape != (total, total):
        raise ValueError(f"{model.display_name}: an information matrix must be ({total}, {total}) over "
                         f"all parameter entries, got {info_full.shape}")
    keep: list[int] = []
    pos = 0
    for name, size in zip(model.param_spec, sizes):
        if name in space.free_names:
            keep.extend(range(pos, pos + size))
        pos += size
    sub = info_full[np.ix_(keep, keep)]
    jac = space.jacobian()
    return jac.T @ sub @ jac


def _refine(fit: _Fit, tol: float | None, max_iter: int) -> dict:
    """Converge the MLE tightly from the fitted values (SQUAREM-accelerated, monotone)."""
    with np.errstate(all="ignore"):
        loglik = EMMap(fit.model, fit.data, fixed=fit.fixed, chunk_size=fit.chunk_size).loglik(fit.params)
    if not math.isfinite(loglik):
        raise ValueError(f"{fit.model.display_name}: the log-likelihood at the fitted parameters is "
                         f"{loglik}; the fit is on the boundary of the parameter space (a probability "
                         "of 0 or 1, an empty component), where standard errors are not defined")
    if tol is None:
        return fit.params
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = em(fit.model, fit.data, init=fit.params, fixed=fit.fixed, stop="params_maxabs", tol=tol,
                 max_iter=max_iter, accelerate="squarem", chunk_size=fit.chunk_size,
                 check_monotone="off", warn_not_converged=False)
    return res.params


# --------------------------------------------------------------------------- building blocks
def em_jacobian(model: Model, data: tuple, params: dict, fixed: _Fixed = (), *, rel_step: float = 1e-5,
                chunk_size: int | None = None) -> tuple[np.ndarray, ParamSpace]:
    """Jacobian J[i, j] = dM_i/dtheta_j of the EM map at ``params`` over the free coordinates.

    Central differences with steps ``rel_step`` times each coordinate's scale. Returns
    ``(J, space)``. At the MLE, J = I_oc^{-1} I_mis and its eigenvalues are the fractions of
    missing information.
    """
    em_map = EMMap(model, data, fixed=fixed, chunk_size=chunk_size)
    space = em_map.start(params)
    vec = space.to_vector(params)
    steps = _fit_steps_inside(space, vec, _steps(space, vec, rel_step), model)
    q = len(vec)
    jac = np.zeros((q, q))
    for j in range(q):
        e = np.zeros(q)
        e[j] = steps[j]
        jac[:, j] = (em_map.on_vector(vec + e) - em_map.on_vector(vec - e)) / (2 * steps[j])
    return jac, space


def complete_information(model: Model, data: tuple, params: dict, fixed: _Fixed = (), *,
                         rel_step: float = 1e-4, chunk_size: int | None = None) -> tuple[np.ndarray, ParamSpace]:
    """Complete-data information I_oc at ``params`` over the free coordinates.

    Minus the Hessian of ``model.complete_loglik(stats, theta)`` in theta, with ``stats`` the
    expected statistics at ``params``; the model's ``complete_information(stats, params)`` is
    used when it has one. Returns ``(I_oc, space)``.
    """
    space = ParamSpace(model.param_spec, params, fixed)
    stats, _ = EMMap(model, data, fixed=fixed, chunk_size=chunk_size).e_step(params)
    analytic = getattr(model, "complete_information", None)
    if callable(analytic):
        return _full_to_free_info(analytic(stats, params), model, space), space
    vec = space.to_vector(params)
    steps = _fit_steps_inside(space, vec, _steps(space, vec, rel_step), model)
    try:
        model.complete_loglik(stats, params)
    except NotImplementedError as exc:
        raise ValueError(f"supplemented EM needs the complete-data log-likelihood: {exc}; use "
                         "method='hessian' or 'bootstrap' instead") from None
    return -_hessian(lambda v: float(model.complete_loglik(stats, space.from_vector(v))), vec, steps), space


def observed_information(model: Model, data: tuple, params: dict, fixed: _Fixed = (), *,
                         rel_step: float = 1e-4, chunk_size: int | None = None,
                         via: str = "auto") -> tuple[np.ndarray, ParamSpace]:
    """Observed information (minus the Hessian of the observed log-likelihood) over the free
    coordinates. Returns ``(I_obs, space)``.

    Parameters
    ----------
    via : {"auto", "score", "loglik"}
        ``"loglik"``: second differences of the observed log-likelihood (about 2 q^2 E-steps
        for q free coordinates). ``"score"``: central differences of the observed score, which
        by Fisher's identity is the gradient of ``complete_loglik(stats(theta), .)`` at theta
        (2 q E-steps plus 4 q^2 evaluations of ``complete_loglik``; faster on large data, but it
        shares ``complete_loglik`` with supplemented EM, so it is no independent check of it).
        ``"auto"``: the model's analytic ``observed_information(data, params)`` if it has one,
        else ``"loglik"``.
    """
    if via not in ("auto", "score", "loglik"):
        raise ValueError(f"via must be 'auto', 'score' or 'loglik', got {via!r}")
    space = ParamSpace(model.param_spec, params, fixed)
    analytic = getattr(model, "observed_information", None)
    if via == "auto" and callable(analytic):
        return _full_to_free_info(analytic(data, params), model, space), space
    em_map = EMMap(model, data, fixed=fixed, chunk_size=chunk_size)
    vec = space.to_vector(params)
    steps = _fit_steps_inside(space, vec, _steps(space, vec, rel_step), model)
    if via == "score":
        inner = 0.1 * steps   # the score's own differences: well inside the outer steps

        def score(v):
            at = space.from_vector(v)
            stats, _ = em_map.e_step(at)
            grad = np.zeros(len(v))
            for i in range(len(v)):
                e = np.zeros(len(v))
                e[i] = inner[i]
                grad[i] = (float(model.complete_loglik(stats, space.from_vector(v + e)))
                           - float(model.complete_loglik(stats, space.from_vector(v - e)))) / (2 * inner[i])
            return grad

        q = len(vec)
        hess = np.zeros((q, q))
        for j in range(q):
            e = np.zeros(q)
            e[j] = steps[j]
            hess[:, j] = (score(vec + e) - score(vec - e)) / (2 * steps[j])
        return -0.5 * (hess + hess.T), space

    def loglik(v):
        return em_map.loglik(space.from_vector(v))

    return -_hessian(loglik, vec, steps), space


# --------------------------------------------------------------------------- the three methods
def sem(fit: Any, data: Any = None, result: Any = None, *, fixed: _Fixed | None = None,
        refine_tol: float | None = 1e-11, refine_max_iter: int = 10_000, rel_step: float = 1e-5) -> CovarianceResult:
    """Supplemented EM (Meng & Rubin 1991): covariance and fraction of missing information.

    Parameters
    ----------
    fit : fitted estimator, EMResult or Model
        See the module docstring; ``sem(est)``, ``sem(result, data)`` or
        ``sem(model, data, result_or_params)``.
    data : tuple, optional
        The data (required with an EMResult or a Model).
    result : EMResult or dict, optional
        With a Model: the fit (or its parameters).
    fixed : sequence of str, optional
        Groups held fixed (default: those of the fit).
    refine_tol : float or None
        EM is first re-run from the fitted values until max|change| < refine_tol, since the
        numerical derivatives need the exact MLE; None skips this.
    refine_max_iter : int
        Iteration limit of that refinement.
    rel_step : float
        Central-difference step of the EM map, relative to each coordinate's scale.

    Returns
    -------
    CovarianceResult
        With ``em_jacobian``, ``complete_information``, ``observed_information``,
        ``missing_information`` and ``fraction_missing_information`` set.
    """
    if _is_estimator(fit):
        return _ask_estimator(fit, "sem", data, result, fixed=fixed, refine_tol=refine_tol,
                              refine_max_iter=refine_max_iter, rel_step=rel_step)
    f = _resolve(fit, data, result, fixed)
    params = _refine(f, refine_tol, refine_max_iter)
    jac, space = em_jacobian(f.model, f.data, params, f.fixed, rel_step=rel_step, chunk_size=f.chunk_size)
    i_oc, _ = complete_information(f.model, f.data, params, f.fixed, chunk_size=f.chunk_size)
    # I_obs = I_oc - I_mis = I_oc (I - J), since J = I_oc^{-1} I_mis at the MLE
    i_obs = i_oc @ (np.eye(len(jac)) - jac)
    flat = _flat_directions(i_obs, space, params)
    _warn_flat(flat, space, f.model, "SEM observed information")
    cov = _invert_information(i_obs, "SEM observed information", f.model)
    eig = np.sort(np.real(np.linalg.eigvals(jac)))[::-1] if len(jac) else np.zeros(0)
    asym = float(np.max(np.abs(i_obs - i_obs.T))) if i_obs.size else 0.0
    return _finish(f, space, params, cov, "sem", observed_information=0.5 * (i_obs + i_obs.T),
                   complete_information=i_oc, em_jacobian=jac, missing_information=eig,
                   fraction_missing_information=float(eig[0]) if eig.size else 0.0,
                   details={"asymmetry": asym}, flat_directions=flat)


def hessian(fit: Any, data: Any = None, result: Any = None, *, fixed: _Fixed | None = None,
            refine_tol: float | None = 1e-11, refine_max_iter: int = 10_000, rel_step: float = 1e-4,
            via: str = "auto") -> CovarianceResult:
    """Covariance as the inverse observed information: numerical derivatives of the observed
    log-likelihood or score (``via``, see :func:`observed_information`), or the model's analytic
    ``observed_information``. Other arguments as in :func:`sem`."""
    if _is_estimator(fit):
        return _ask_estimator(fit, "hessian", data, result, fixed=fixed, refine_tol=refine_tol,
                              refine_max_iter=refine_max_iter, rel_step=rel_step, via=via)
    f = _resolve(fit, data, result, fixed)
    params = _refine(f, refine_tol, refine_max_iter)
    info, space = observed_information(f.model, f.data, params, f.fixed, rel_step=rel_step,
                                       chunk_size=f.chunk_size, via=via)
    flat = _flat_directions(info, space, params)
    _warn_flat(flat, space, f.model, "observed information")
    cov = _invert_information(info, "observed information", f.model)
    return _finish(f, space, params, cov, "hessian", observed_information=info, flat_directions=flat)


def flat_directions(fit: Any, data: Any = None, result: Any = None, *, fixed: _Fixed | None = None,
                    rtol: float = FLAT_RTOL, refine_tol: float | None = 1e-11, refine_max_iter: int = 10_000,
                    rel_step: float = 1e-4, via: str = "auto", warn: bool = True) -> np.ndarray:
    """Directions of a flat ridge at the fit: where the observed information is singular.

    Computed on demand (ordinary fits pay nothing): the observed information at the
    (refined) fit, as in :func:`hessian`, in relative units (each free coordinate scaled by its
    size); each eigenvalue at most ``rtol`` times the largest (or negative) gives one flat
    direction. A non-empty answer means the optimum is a
    ridge of equally good parameters (a non-identifiable model such as a two-component
    mixture of data from one component): the log-likelihood is reproducible, but the
    parameters along the ridge depend on the start, the accelerator, the chunk size and the
    row order. ``warn=True`` issues an :class:`~emkit.IdentifiabilityWarning` then.

    Parameters as in :func:`hessian`; ``fit`` may be a fitted estimator (its ``covariance``
    computes the observed information), an EMResult with ``data``, or a model, data and result.

    Returns
    -------
    ndarray, shape (k, q)
        Unit vectors over the free coordinates (``ParamSpace`` of the fit); k = 0 for an
        identified fit.
    """
    if _is_estimator(fit):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", IdentifiabilityWarning)
            cov = _ask_estimator(fit, "hessian", data, result, fixed=fixed, refine_tol=refine_tol,
                                 refine_max_iter=refine_max_iter, rel_step=rel_step, via=via)
        # "hessian" always sets the observed information
        dirs = _flat_directions(cast(np.ndarray, cov.observed_information), cov.space, cov.params, rtol)
        if warn:
            _warn_flat(dirs, cov.space, _NamedFit(fit), "observed information", stacklevel=2)
        return dirs
    f = _resolve(fit, data, result, fixed)
    params = _refine(f, refine_tol, refine_max_iter)
    info, space = observed_information(f.model, f.data, params, f.fixed, rel_step=rel_step,
                                       chunk_size=f.chunk_size, via=via)
    dirs = _flat_directions(info, space, params, rtol)
    if warn:
        _warn_flat(dirs, space, f.model, "observed information", stacklevel=2)
    return dirs


class _NamedFit:
    def __init__(self, fit: Any) -> None:
        self.display_name = type(fit).__name__


def bootstrap(fit: Any, data: Any = None, result: Any = None, *, fixed: _Fixed | None = None, n_boot: int = 200,
              kind: str = "nonparametric", random_state: Any = None, n_samples: int | None = None,
              progress: Callable[[int, int], Any] | None = None, resample: str = "auto",
              tol: float | None = None, stop: str | None = None, max_iter: int | None = None,
              accelerate: Any = "fit") -> CovarianceResult:
    """Bootstrap covariance: refit on ``n_boot`` resampled data sets, starting from the fit.

    Parameters
    ----------
    kind : {"nonparametric", "parametric"}
        Resample rows with replacement (individuals, for integer-count rows), or draw new data
        of the same size from the fitted model (``model.sample``).
    n_boot : int
        Number of replicates (at least 2).
    random_state : None, int or Generator
        Seeds the resampling; the same value gives the same result.
    n_samples : int, optional
        Size of each parametric sample (default: the number of observations of the data).
    progress : callable, optional
        ``progress(done, n_boot)`` after each replicate.
    resample : {"auto", "rows", "individuals"}
        Non-parametric only. ``"rows"`` draws rows with replacement (a row keeps its weight);
        ``"individuals"`` treats the row weights as frequencies of identical observations and
        draws new frequencies ~ Multinomial(N, weights / N); ``"auto"`` picks
        ``"individuals"`` for models with ``row_counts_are_integers`` and ``"rows"`` otherwise.
        Grouped data (``sample_weight`` = number of identical observations, as in Hasselblad's
        deaths per day) need ``"individuals"``.
    tol, stop, max_iter : optional
        Stopping rule of the refits (default: the fit's).
    accelerate : "fit", None, "squarem" or "anderson"
        Acceleration of the refits (default: the fit's).

    Returns
    -------
    CovarianceResult
        ``replicates`` holds the estimates; replicates whose refit failed are dropped and
        counted in ``n_failed``.
    """
    if _is_estimator(fit):
        return _ask_estimator(fit, "bootstrap", data, result, fixed=fixed, n_boot=n_boot, kind=kind,
                              random_state=random_state, n_samples=n_samples, progress=progress,
                              resample=resample, tol=tol, stop=stop, max_iter=max_iter, accelerate=accelerate)
    f = _resolve(fit, data, result, fixed)
    if kind not in BOOTSTRAP_KINDS:
        raise ValueError(f"unknown bootstrap kind {kind!r}; choose one of {BOOTSTRAP_KINDS}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, numbers.Integral) or n_boot < 2:
        raise ValueError(f"n_boot must be an integer >= 2, got {n_boot!r}")
    rng = check_random_state(random_state)
    model, params = f.model, f.params
    res = f.result
    options = {"tol": tol if tol is not None else (res.tol if res is not None else 1e-8),
               "stop": stop if stop is not None else (res.stop if res is not None else "loglik"),
               "max_iter": max_iter if max_iter is not None else (res.max_iter if res is not None else 1000)}
    space = ParamSpace(model.param_spec, params, f.fixed)
    names = space.free_names
    if resample not in ("auto", "rows", "individuals"):
        raise ValueError(f"resample must be 'auto', 'rows' or 'individuals', got {resample!r}")
    options["accelerate"] = (res.accelerate if res is not None else None) if accelerate == "fit" else accelerate
    draw = _resampler(model, f.data, params, kind, n_samples, resample)
    estimates, failed = [], 0
    for b in range(int(n_boot)):
        sample = draw(rng)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                refit = em(model, sample, init=params, fixed=f.fixed, check_monotone="off",
                           warn_not_converged=False, chunk_size=f.chunk_size, **options)
            vec = flatten_full(refit.params, names)
            if np.all(np.isfinite(vec)):
                estimates.append(vec)
            else:
                failed += 1
        except (ValueError, FloatingPointError, np.linalg.LinAlgError, ZeroDivisionError):
            failed += 1
        if progress is not None:
            progress(b + 1, int(n_boot))
    if len(estimates) < 2:
        raise ValueError(f"{model.display_name}: only {len(estimates)} of {n_boot} bootstrap refits "
                         "succeeded; no bootstrap covariance")
    if failed:
        warnings.warn(f"{model.display_name}: {failed} of {n_boot} bootstrap refits failed and were "
                      "dropped", RuntimeWarning, stacklevel=2)
    reps = np.asarray(estimates)
    full = np.atleast_2d(np.cov(reps, rowvar=False, ddof=1))
    pinv = np.linalg.pinv(space.jacobian())
    free = pinv @ full @ pinv.T
    return _package(f, space, params, full, free, "bootstrap", replicates=reps, n_failed=failed,
                    details={"kind": kind, "n_boot": int(n_boot)})


def _resampler(model: Model, data: tuple, params: dict, kind: str, n_samples: int | None,
               resample: str = "auto"):
    """A function rng -> resampled data tuple."""
    if kind == "parametric" and callable(getattr(model, "sample_like", None)) and n_samples is None:
        # the model knows its sampling design (e.g. coarse phenotype groups): keep it
        return lambda rng: cast(Any, model).sample_like(data, params, rng)  # optional method, checked above
    if kind == "parametric":
        n = n_samples if n_samples is not None else int(round(model.n_samples(data)))
        if n < 1:
            raise ValueError(f"n_samples must be a positive integer, got {n}")
        try:
            model.sample(params, 1, np.random.default_rng(0))
        except NotImplementedError as exc:
            raise ValueError(f"a parametric bootstrap needs model.sample(): {exc}") from None

        def draw_parametric(rng):
            out = model.sample(params, n, rng)
            # mixture models return (data tuple, labels)
            if isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], tuple):
                out = out[0]
            return out if isinstance(out, tuple) else (out,)
        return draw_parametric

    custom = getattr(model, "bootstrap_resample", None)
    if callable(custom):
        return lambda rng: custom(data, rng)
    n_rows = model.n_rows(data)
    weights = model.row_weights(data) if isinstance(model, DiscreteLatentModel) else None
    if resample == "individuals" and weights is None:
        raise ValueError(f"resample='individuals' needs row weights (frequencies); "
                         f"{model.display_name}'s data has none")
    # row weights come only from a DiscreteLatentModel, which has row_counts_are_integers
    individuals = resample == "individuals" or (resample == "auto" and weights is not None
                                                and cast(DiscreteLatentModel, model).row_counts_are_integers)
    if individuals:
        counts = to_numpy(weights).astype(float)
        if np.any(counts < 0) or np.any(counts != np.rint(counts)):
            raise ValueError("resample='individuals' needs whole-number row weights (frequencies)")
        if not (isinstance(data, Data) and data.get(ROW_WEIGHTS) is not None):
            raise ValueError(f"{model.display_name}: resampling individuals replaces the row counts, which "
                             f"are found by name: pass data with a {ROW_WEIGHTS!r} field "
                             "(emkit.core.data.Data), or give the model a bootstrap_resample(data, rng) method")
        template = data.get(ROW_WEIGHTS)
        total = int(counts.sum())
        probs = counts / total

        def draw_individuals(rng):
            new = rng.multinomial(total, probs).astype(float)
            return data.replace(**{ROW_WEIGHTS: new if type(template) is np.ndarray else asarray_like(new, template)})
        return draw_individuals
    if n_rows < 2:
        raise ValueError(f"{model.display_name}: the data has a single row, so resampling rows cannot "
                         "estimate sampling error; use kind='parametric'")

    if resample == "auto" and weights is not None:
        w = to_numpy(weights)
        if np.all(w == np.rint(w)) and np.any(w > 1):
            warnings.warn(f"{model.display_name}: resampling rows that carry whole-number weights; if the "
                          "weights count identical observations, pass resample='individuals'",
                          UserWarning, stacklevel=3)

    def draw_rows(rng):
        return model.take_rows(data, np.sort(rng.integers(0, n_rows, n_rows)))
    return draw_rows


# --------------------------------------------------------------------------- dispatch
def covariance(fit: Any, data: Any = None, result: Any = None, *, method: str = "sem",
               **kwargs: Any) -> CovarianceResult:
    """Covariance of the fitted parameters by ``method`` ("sem", "hessian" or "bootstrap").

    ``fit`` is a fitted estimator, an EMResult (with ``data``) or a Model (with ``data`` and
    ``result``); ``kwargs`` go to :func:`sem`, :func:`hessian` or :func:`bootstrap`.
    """
    if method not in METHODS:
        raise ValueError(f"unknown standard-error method {method!r}; choose one of {METHODS}")
    functions: dict[str, Callable[..., CovarianceResult]] = {"sem": sem, "hessian": hessian, "bootstrap": bootstrap}
    func = functions[method]
    return func(fit, data, result, **kwargs)


def standard_errors(fit: Any, data: Any = None, result: Any = None, *, method: str = "sem",
                    **kwargs: Any) -> dict[str, np.ndarray]:
    """Standard errors per parameter group (same shapes as the groups; zeros for fixed groups).

    See :func:`covariance` for the arguments.
    """
    return covariance(fit, data, result, method=method, **kwargs).standard_errors
