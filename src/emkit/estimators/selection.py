"""mclust-style model search: a Gaussian mixture for every number of components and
covariance type, the best one picked by an information criterion (:func:`select_mixture`),
and the test of a degenerate fit that the search and ``emkit fit`` share
(:func:`degenerate_components`).

Reproducible and converged
    Every grid point starts from the same seed (``random_state=0`` unless given): ``n_init=5``
    short runs from k-means starts, then the best of them run to the estimators' one default
    stopping rule (the log-likelihood stable to 14 significant digits,
    :mod:`emkit.estimators.settings`). So the same data give the same table and the same
    winner on every run, and the table's numbers are the converged ones (Old Faithful: 3
    components with one shared covariance, BIC 2314.296, where a fit stopped at scikit-learn's
    ``tol=1e-3`` reports 2315.986).

Degenerate fits
    A fit is degenerate when a component has fewer effective points than it needs, or when a
    covariance sits at the ``reg_covar`` floor: the likelihood of such a fit grows without
    bound as the component collapses, and only the regularisation stops it, so its criteria
    say nothing about the data. A degenerate fit is kept in the table, marked
    (``degenerate=True`` and ``degenerate_reason``), and never chosen. ``emkit fit`` warns
    about such a fit (:func:`warn_if_degenerate`, :class:`DegenerateFitWarning`).
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from emkit.core.arrays import get_namespace, to_numpy
from emkit.core.validation import as_array, check_n_components
from emkit.engine.loop import ConvergenceWarning, MonotonicityWarning
from emkit.execution.processes import process_map, resolve_n_jobs
from emkit.estimators.gaussian import GaussianMixture
from emkit.models.base import logsumexp_rows
from emkit.models.covariance import COVARIANCE_TYPES as SKLEARN_TYPES  # the default grid
from emkit.models.covariance_mclust import MCLUST_NAMES
from emkit.models.gaussian import COVARIANCE_TYPES, EmptyComponentWarning, covariance_structure
from emkit.models.hierarchical import HC_INIT_METHODS

__all__ = ["DegenerateFitWarning", "MixtureSelection", "degenerate_components", "select_mixture",
           "warn_if_degenerate"]

#: a variance (covariance eigenvalue) at most this many times ``reg_covar`` is "at the floor":
#: the data's own variance in that direction is no larger than the regularisation added to it
FLOOR_FACTOR = 2.0
#: with ``reg_covar=0``: a covariance whose smallest eigenvalue is below this fraction of its
#: largest is numerically singular
SINGULAR_RTOL = 1e-12
#: the seed of every fit of :func:`select_mixture` when the caller gives none
SELECT_RANDOM_STATE = 0
#: short runs (k-means starts) per grid point of :func:`select_mixture` when the caller gives none
SELECT_N_INIT = 5
#: the short runs' stopping rule: scikit-learn's (mean log-likelihood change below 1e-3)
SCREEN_STOP, SCREEN_TOL, SCREEN_MAX_ITER = "loglik_mean", 1e-3, 100
#: named grids of covariance types: ``covariance_types="mclust"`` is mclust's fourteen forms
#: in mclust's order (and then mclust's hierarchical start by default)
COVARIANCE_GRIDS = {"mclust": MCLUST_NAMES, "sklearn": SKLEARN_TYPES}
#: the estimator of the search (its constructor is written from its declared settings, which
#: static type checkers do not see)
_GAUSSIAN: Any = GaussianMixture


class DegenerateFitWarning(UserWarning):
    """A fitted mixture has a component with too few effective points or a covariance at the
    ``reg_covar`` floor (see :func:`degenerate_components`)."""


# --------------------------------------------------------------------------- degenerate fits
def _variance_group(estimator) -> tuple[str | None, Any]:
    """(structure, covariances) of a fitted Gaussian-type mixture, else (None, None).

    structure is a scikit-learn covariance type: "full" (K, D, D), "tied" (D, D), "diag"
    (K, D) or "spherical" (K,)."""
    params = getattr(estimator, "params_", None)
    if not isinstance(params, dict):
        return None, None
    if "covariances" in params:
        cov = np.asarray(to_numpy(params["covariances"]), dtype=np.float64)
        kind = getattr(estimator, "covariance_type", None)
        # mclust's names map to their storage: VVV is "full", EEE "tied"...; the other ten
        # forms are stored as full (K, D, D) matrices
        kind = covariance_structure(kind).name if kind in COVARIANCE_TYPES else None
        if kind not in SKLEARN_TYPES:
            kind = "full" if cov.ndim == 3 else "diag" if cov.ndim == 2 else "spherical"
        return kind, cov
    if "variances" in params:  # the normal family: (K,) or (K, d) variances
        var = np.asarray(to_numpy(params["variances"]), dtype=np.float64)
        return ("diag" if var.ndim == 2 else "spherical"), var
    return None, None


def _reg_covar(estimator) -> float:
    reg = getattr(estimator, "reg_covar", None)
    if reg is None:  # FiniteMixture: the family's setting
        reg = getattr(getattr(getattr(estimator, "model_", None), "family", None), "reg_covar", 0.0)
    try:
        return max(float(reg or 0.0), 0.0)
    except (TypeError, ValueError):
        return 0.0


def _smallest_variances(kind: str, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(smallest, largest) variance in any direction, per component (one entry for "tied")."""
    if kind == "full":
        eig = np.linalg.eigvalsh(cov)
        return eig[:, 0], eig[:, -1]
    if kind == "tied":
        eig = np.linalg.eigvalsh(cov)
        return eig[:1], eig[-1:]
    if kind == "diag":
        return cov.min(axis=1), cov.max(axis=1)
    return cov.reshape(-1), cov.reshape(-1)


def degenerate_components(estimator: Any, X: Any, sample_weight: Any = None, *, proba: Any = None,
                          **inputs: Any) -> list[str]:
    """Why a fitted mixture is degenerate: one line per degenerate component, empty when it
    is not.

    A component is degenerate when

    * it has fewer than D + 1 effective points (D the number of features), for a Gaussian
      mixture (a D-dimensional covariance needs D + 1 points to be non-singular), or fewer
      than one for any other family; the effective points of component k are
      ``sum_i sample_weight_i * p(k | x_i)`` (not with a conjugate prior, ``prior=``: the
      posterior mode of a component with few points is proper); or
    * its covariance is at the ``reg_covar`` floor: its smallest eigenvalue (smallest
      variance for "diag" and the normal family, the variance for "spherical") is at most
      :data:`FLOOR_FACTOR` (2) times ``reg_covar``, so the data's own variance in some
      direction is no larger than the regularisation (with ``reg_covar=0``: below
      :data:`SINGULAR_RTOL` times its largest eigenvalue). A "tied" covariance is reported
      once, as the shared covariance.

    Parameters
    ----------
    estimator : fitted mixture estimator
        Anything with ``weights_`` and ``predict_proba`` (:class:`GaussianMixture`, the
        family mixtures); other estimators have no components and give ``[]``.
    X, sample_weight, **inputs
        The data of the fit, as given to ``fit`` (``trials=`` for a binomial mixture).
    proba : array-like of shape (n_samples, n_components), optional
        ``estimator.predict_proba(X)``, when the caller has it already.

    Returns
    -------
    list of str
        E.g. ``["component 4: 1.9 effective points, fewer than D + 1 = 3",
        "component 7: covariance at the reg_covar floor (smallest eigenvalue 1e-06, reg_covar 1e-06)"]``.
    """
    if not (hasattr(estimator, "weights_") and hasattr(estimator, "predict_proba")):
        return []
    reasons: dict[int, list[str]] = {}
    if proba is None:
        proba = estimator.predict_proba(X, **inputs)
    proba = np.asarray(to_numpy(proba), dtype=np.float64)
    if sample_weight is None:
        n_k = proba.sum(axis=0)
    else:
        w = np.asarray(to_numpy(sample_weight), dtype=np.float64).reshape(-1)
        n_k = w @ proba
    kind, cov = _variance_group(estimator)
    d = int(getattr(estimator, "n_features_in_", None) or 1)
    need = d + 1 if kind is not None else 1
    what = f"D + 1 = {need}" if kind is not None else "one"
    # with a conjugate prior (``prior=``) a component with few points still has a proper
    # posterior-mode covariance, as in mclust: only the floor test below applies
    few = np.flatnonzero(n_k < need) if getattr(estimator, "prior", None) is None else np.array([], dtype=int)
    for k in (int(i) for i in few):
        reasons.setdefault(k, []).append(f"{_points(n_k[k])} effective points, fewer than {what}")
    shared = None
    if kind is not None:
        reg = _reg_covar(estimator)
        small, large = _smallest_variances(kind, cov)
        floor = FLOOR_FACTOR * reg if reg > 0 else None
        word = "variance" if kind in ("diag", "spherical") else "eigenvalue"
        for j in range(small.size):
            at_floor = (small[j] <= floor) if floor is not None else (small[j] <= SINGULAR_RTOL * large[j])
            if not at_floor:
                continue
            text = (f"covariance at the reg_covar floor (smallest {word} {small[j]:.3g}, reg_covar {reg:.3g})"
                    if floor is not None else f"singular covariance (smallest {word} {small[j]:.3g})")
            if kind == "tied":
                shared = "the shared " + text
            else:
                reasons.setdefault(j, []).append(text)
    out = [f"component {k}: {', '.join(r)}" for k, r in sorted(reasons.items())]
    return out + ([shared] if shared else [])


def warn_if_degenerate(estimator: Any, X: Any, sample_weight: Any = None, **inputs: Any) -> list[str]:
    """Issue a :class:`DegenerateFitWarning` when :func:`degenerate_components` finds
    anything; return what it found (``emkit fit`` calls this after every fit)."""
    reasons = degenerate_components(estimator, X, sample_weight, **inputs)
    if reasons:
        shown = "; ".join(reasons[:3]) + (f"; and {len(reasons) - 3} more" if len(reasons) > 3 else "")
        warnings.warn(f"{type(estimator).__name__}: degenerate fit ({shown}); its log-likelihood and criteria "
                      f"reflect the collapse of a component, not the data: use fewer components",
                      DegenerateFitWarning, stacklevel=2)
    return reasons


# --------------------------------------------------------------------------- the search
@dataclass
class MixtureSelection:
    """Result of :func:`select_mixture`.

    Attributes
    ----------
    table : list of dict
        One record per (n_components, covariance_type): ``n_components``, ``covariance_type``,
        ``loglik`` (total observed log-likelihood), ``n_parameters``, ``bic``, ``aic``, ``icl``
        (all lower-is-better, scikit-learn's sign), ``converged``, ``degenerate`` (bool: a
        component with fewer than D + 1 effective points or a covariance at the ``reg_covar``
        floor, see :func:`degenerate_components`; never chosen, and its numbers are those of
        the short runs, which found it degenerate), ``degenerate_reason`` (None or why), and
        ``error`` (None, or why the fit failed, e.g. more components than distinct rows; its
        numbers are then NaN).
    best_ : GaussianMixture
        The fitted model with the lowest criterion among the non-degenerate ones.
    best_params : dict
        ``{"n_components": K, "covariance_type": type}`` of ``best_``.
    criterion : str
    classification_ : ndarray of shape (n_samples,)
        The most probable component of each row under ``best_`` (mclust's ``classification``).
    uncertainty_ : ndarray of shape (n_samples,)
        Classification uncertainty of each row under ``best_``: 1 - max_k p(k | x_i)
        (mclust's ``uncertainty``; see :func:`emkit.plot.uncertainty`).
    """

    table: list
    best_: GaussianMixture
    best_params: dict
    criterion: str
    models: dict = field(default_factory=dict, repr=False)
    classification_: Any = field(default=None, repr=False)
    uncertainty_: Any = field(default=None, repr=False)

    def __iter__(self):  # allows ``table, best = select_mixture(...)``
        return iter((self.table, self.best_))

    def top(self, n: int = 3, criterion: str | None = None) -> list[dict]:
        """The ``n`` best records by ``criterion`` (default: the one of the search), degenerate
        and failed fits left out, best first (mclust's "Top 3 models based on the BIC
        criterion")."""
        criterion = criterion or self.criterion
        usable = [r for r in self.table if not r["degenerate"] and r["error"] is None
                  and math.isfinite(float(r[criterion]))]
        return sorted(usable, key=lambda r: float(r[criterion]))[:n]

    def criterion_table(self, criterion: str | None = None, *, mclust_sign: bool = False
                        ) -> tuple[list[int], list[str], np.ndarray]:
        """The criterion as a matrix in mclust's layout: rows the numbers of components,
        columns the covariance types (in the order searched).

        Returns ``(n_components, covariance_types, values)`` with ``values`` of shape
        (len(n_components), len(covariance_types)); NaN where a fit failed or was degenerate
        (mclust prints NA where it fits nothing). ``mclust_sign=True`` gives mclust's sign
        (``-criterion``, higher is better)."""
        criterion = criterion or self.criterion
        ks = sorted({int(r["n_components"]) for r in self.table})
        types = list(dict.fromkeys(str(r["covariance_type"]) for r in self.table))
        values = np.full((len(ks), len(types)), np.nan)
        for r in self.table:
            if r["degenerate"] or r["error"] is not None:
                continue
            values[ks.index(int(r["n_components"])), types.index(str(r["covariance_type"]))] = float(r[criterion])
        return ks, types, (-values if mclust_sign else values)

    def summary(self, criterion: str | None = None, *, mclust_sign: bool = True, n_top: int = 3,
                width: int = 7) -> str:
        """A text report like R's ``print(mclustBIC(...))`` then ``summary()``: the criterion
        table (``width`` columns per block; mclust's sign by default, higher is better) and
        the top ``n_top`` models ("EEE,3 VVE,2 VEE,3")."""
        criterion = criterion or self.criterion
        ks, types, values = self.criterion_table(criterion, mclust_sign=mclust_sign)
        sign = "mclust's sign: higher is better" if mclust_sign else "lower is better"
        lines = [f"{criterion.upper()} ({sign}; NA: not fitted or degenerate)"]
        for c0 in range(0, len(types), width):
            block = types[c0:c0 + width]
            lines.append("   " + "".join(f"{t:>11}" for t in block))
            for i, k in enumerate(ks):
                cells = (f"{'NA':>11}" if not np.isfinite(v) else f"{v:>11.3f}" for v in values[i, c0:c0 + width])
                lines.append(f"{k:>3}" + "".join(cells))
        top = self.top(n_top, criterion)
        factor = -1.0 if mclust_sign else 1.0
        lines.append(f"Top {len(top)} models based on the {criterion.upper()} criterion:")
        lines.append("   " + "".join(f"{r['covariance_type'] + ',' + str(r['n_components']):>11}" for r in top))
        lines.append("   " + "".join(f"{factor * float(r[criterion]):>11.3f}" for r in top))
        return "\n".join(lines)


def start_settings(params: dict) -> dict:
    """The ``*_init`` settings of a :class:`GaussianMixture` that start EM at ``params``
    (``weights``, ``means``, ``covariances``, e.g. a fitted mixture's ``params_``)."""
    return {"weights_init": np.asarray(to_numpy(params["weights"]), dtype=np.float64),
            "means_init": np.asarray(to_numpy(params["means"]), dtype=np.float64),
            "covariances_init": np.asarray(to_numpy(params["covariances"]), dtype=np.float64),
            "precisions_init": None}


def _screen_settings(gmm_kwargs: dict) -> dict:
    """The short runs' settings: the caller's, less the stopping rule and acceleration."""
    return {k: v for k, v in gmm_kwargs.items() if k not in ("tol", "stop", "max_iter", "accelerate")}


def _record_fit(record: dict, gmm: GaussianMixture, X, sample_weight, reasons: list[str], crit: dict) -> None:
    record.update(loglik=float(gmm.loglik_), n_parameters=crit["n_parameters"], bic=crit["bic"], aic=crit["aic"],
                  icl=crit["icl"], converged=bool(gmm.converged_),
                  degenerate=bool(reasons), degenerate_reason="; ".join(reasons) or None, error=None)


def _fit_quietly(gmm: GaussianMixture, X, sample_weight, short: bool) -> GaussianMixture:
    """Fit without the warnings that the table says better: empty k-means clusters and the
    tiny log-likelihood decreases of a component near the ``reg_covar`` floor (the fit is
    marked degenerate or not on its merits) and, for the short runs, stopping at their
    ``max_iter`` (the final run's convergence is the record's ``converged``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EmptyComponentWarning)
        warnings.simplefilter("ignore", MonotonicityWarning)
        if short:
            warnings.simplefilter("ignore", ConvergenceWarning)
        return gmm.fit(X, sample_weight=sample_weight)


def _covariance_grid(covariance_types: str | Sequence[str]) -> list[str]:
    if isinstance(covariance_types, str):
        types = list(COVARIANCE_GRIDS.get(covariance_types, (covariance_types,)))
    else:
        types = list(covariance_types)
    for t in types:
        if t not in COVARIANCE_TYPES:
            raise ValueError(f"unknown covariance_type {t!r}; choose from {COVARIANCE_TYPES} or a grid name "
                             f"{tuple(COVARIANCE_GRIDS)}")
    return types


def _fit_grid_point(X: Any, sample_weight: Any, cov_type: str, k: int, *, hierarchical: bool, random_state: Any,
                    n_init: int, screen_settings: dict, final_settings: dict
                    ) -> tuple[dict, GaussianMixture | None]:
    """One grid point of :func:`select_mixture`: its table record and its fitted model (None
    when the fit failed; the record then says why)."""
    record: dict[str, Any] = {"n_components": k, "covariance_type": cov_type}
    if hierarchical:  # one deterministic start: no short runs to choose among
        screen = _GAUSSIAN(k, covariance_type=cov_type, random_state=random_state,
                           **{**screen_settings, **final_settings})
    else:
        screen = _GAUSSIAN(k, covariance_type=cov_type, random_state=random_state, n_init=n_init,
                           stop=SCREEN_STOP, tol=SCREEN_TOL, max_iter=SCREEN_MAX_ITER, **screen_settings)
    try:
        _fit_quietly(screen, X, sample_weight, short=not hierarchical)
    except (ValueError, np.linalg.LinAlgError) as exc:
        record.update(loglik=math.nan, n_parameters=math.nan, bic=math.nan, aic=math.nan,
                      icl=math.nan, converged=False, degenerate=False, degenerate_reason=None,
                      error=str(exc))
        return record, None
    gmm = screen
    reasons, crit = _assess(screen, X, sample_weight)
    if not reasons and not hierarchical:  # run the best short run to convergence
        final = _GAUSSIAN(k, covariance_type=cov_type, **{
            **screen_settings, **final_settings, "random_state": random_state,
            **start_settings(screen.params_)})
        try:
            gmm = _fit_quietly(final, X, sample_weight, short=False)
            reasons, crit = _assess(gmm, X, sample_weight)
        except ValueError:  # the short runs' fit stands
            pass
    _record_fit(record, gmm, X, sample_weight, reasons, crit)
    return record, gmm


def _assess(gmm: GaussianMixture, X: Any, sample_weight: Any) -> tuple[list[str], dict]:
    """:func:`degenerate_components` and the criteria of a fitted mixture, from one
    computation of the rows' log joint densities."""
    lj = gmm._log_joint(X, {})
    xp = get_namespace(lj)
    row_ll = logsumexp_rows(lj, xp)
    proba = xp.exp(lj - row_ll[:, None])
    return degenerate_components(gmm, X, sample_weight, proba=proba), gmm._criteria_of(lj, sample_weight, row_ll)


def select_mixture(X: Any, n_components: Sequence[int] = range(1, 10),
                   covariance_types: str | Sequence[str] = SKLEARN_TYPES,
                   criterion: str = "bic", sample_weight: Any = None, *, random_state: Any = SELECT_RANDOM_STATE,
                   n_init: int = SELECT_N_INIT, n_jobs: int | None = None, **gmm_kwargs: Any) -> MixtureSelection:
    """Fit a Gaussian mixture for every (n_components, covariance_type) and pick the best by an
    information criterion (mclust's ``mclustBIC`` + ``Mclust``).

    Every grid point is fitted in two stages (the "em-EM" strategy of Biernacki, Celeux &
    Govaert 2003): ``n_init`` short runs from k-means starts, stopped by scikit-learn's rule
    (mean log-likelihood change below :data:`SCREEN_TOL`); then one run from the best of them
    with the estimators' default stopping rule (the log-likelihood stable to 14 significant
    digits, :mod:`emkit.estimators.settings`), so that the table holds the converged values.
    A fit that is degenerate after the short runs (see :func:`degenerate_components`) is not
    run further: it is recorded as the short runs left it, marked, and never chosen.

    With mclust's hierarchical start (``init_params="hc"``, the default of
    ``covariance_types="mclust"``) the start is deterministic: each grid point is one run from
    the hierarchical clustering cut at its number of components (the tree is built once per
    data set), as ``mclustBIC`` does, to the tight default tolerance.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    n_components : iterable of int
    covariance_types : "mclust", "sklearn" or iterable of str
        Covariance types of :class:`GaussianMixture` (scikit-learn's four names and mclust's
        fourteen). ``"mclust"`` is mclust's fourteen forms in mclust's order (EII ... VVV),
        searched from mclust's hierarchical start unless ``init_params`` says otherwise;
        ``"sklearn"`` (the default) scikit-learn's four.
    criterion : {"bic", "aic", "icl"}
        Lower is better (scikit-learn's sign; mclust's BIC and ICL are the negatives:
        ``2 loglik - n_parameters log n``, higher is better). ICL is mclust's: the BIC plus
        twice the classification cost ``-sum_i log max_k p(k | x_i)``.
    sample_weight : array-like, optional
    random_state : int, Generator or None, default 0
        Seed of the short runs of every grid point, so the same data give the same table and
        winner on every run (each grid point starts from this seed afresh). None draws fresh
        starting points.
    n_init : int, default 5
        Short runs (k-means starts) per grid point; the one with the highest log-likelihood
        is run to convergence. Unused with the hierarchical start.
    n_jobs : int, optional
        Processes that fit grid points side by side (scikit-learn's convention: None is one,
        -1 one per CPU): this one and ``n_jobs - 1`` forked from it, each claiming the next
        grid point when free, on one core (:mod:`emkit.execution.processes`; where there is
        no ``fork``, as on Windows, the grid is fitted here one point after another). The
        table, winner and fitted models are exactly those of ``n_jobs=None``. For NumPy data;
        other data are fitted one point after another. With one process the statistics
        passes of large data use the cores instead (:func:`emkit.set_num_threads`).
    **gmm_kwargs
        Passed to every :class:`GaussianMixture` (``reg_covar``, ``init_params``...); ``tol``,
        ``stop``, ``max_iter`` and ``accelerate`` apply to the final run of each grid point.
        ``prior="default"`` is mclust's ``prior = priorControl()``: every fit is a posterior
        mode, ``reg_covar`` defaults to 0, the criteria use the observed log-likelihood there
        (as mclust's BIC), and the forms without a prior get an ``error`` (mclust's NA).

    Returns
    -------
    MixtureSelection
        ``.table`` (list of dict records, degenerate fits marked), ``.best_`` (fitted model,
        started from its best short run: its ``*_init`` settings hold that start),
        ``.best_params``, ``.top(3)``, ``.summary()`` (mclust's layout),
        ``.classification_`` and ``.uncertainty_`` of the rows under ``best_``; iterating
        gives ``(table, best_)``.

    Raises
    ------
    ValueError
        Bad arguments, or no model in the grid that could be fitted and is not degenerate.

    Examples
    --------
    mclust's ``Mclust(faithful)``::

        sel = emkit.select_mixture(X, range(1, 10), covariance_types="mclust")
        print(sel.summary())          # the BIC table, then "EEE,3 ..." (mclust's sign)
        sel.best_, sel.uncertainty_
    """
    if criterion not in ("bic", "aic", "icl"):
        raise ValueError(f"unknown criterion {criterion!r}; choose 'bic', 'aic' or 'icl'")
    ks = [check_n_components(int(k)) if isinstance(k, (numbers.Integral, np.integer)) else check_n_components(k)
          for k in n_components]
    types = _covariance_grid(covariance_types)
    if not ks or not types:
        raise ValueError("select_mixture needs at least one n_components and one covariance_type")
    if isinstance(covariance_types, str) and covariance_types == "mclust":
        gmm_kwargs.setdefault("init_params", "hc")
    if gmm_kwargs.get("prior") is not None:  # the prior regularises, as in mclust (no reg_covar there)
        gmm_kwargs.setdefault("reg_covar", 0.0)
    hierarchical = gmm_kwargs.get("init_params") in HC_INIT_METHODS
    X = as_array(X, "X", ndim=2, allow_nan=True)
    if isinstance(random_state, np.random.Generator):  # the same starting points for every grid point
        random_state = int(random_state.integers(2**31 - 1))
    final_settings = {k: v for k, v in gmm_kwargs.items() if k in ("tol", "stop", "max_iter", "accelerate")}
    screen_settings = _screen_settings(gmm_kwargs)

    def fit_point(point: tuple[str, int]) -> tuple[dict, GaussianMixture | None]:
        return _fit_grid_point(X, sample_weight, point[0], point[1], hierarchical=hierarchical,
                               random_state=random_state, n_init=n_init, screen_settings=screen_settings,
                               final_settings=final_settings)

    grid = [(cov_type, k) for cov_type in types for k in ks]
    jobs = resolve_n_jobs(n_jobs)
    if jobs > 1 and type(X) is np.ndarray and len(grid) > 1:
        # the hierarchical tree is built once, here, by the first fit that needs it: the forked
        # workers inherit it (see emkit.execution.processes)
        first = next((i for i, (_, k) in enumerate(grid) if k > 1), 0) if hierarchical else 0
        done = {first: fit_point(grid[first])}
        # the largest numbers of components first: the slowest fits do not end the run alone
        rest = sorted((i for i in range(len(grid)) if i != first), key=lambda i: -grid[i][1])
        done.update(zip(rest, process_map(fit_point, [grid[i] for i in rest], jobs)))
        outcomes = [done[i] for i in range(len(grid))]
    else:
        outcomes = [fit_point(point) for point in grid]
    table: list[dict] = []
    models: dict = {}
    best: GaussianMixture | None = None
    best_value, best_params = math.inf, {}
    for (cov_type, k), (record, gmm) in zip(grid, outcomes):
        table.append(record)
        if gmm is None:
            continue
        models[(k, cov_type)] = gmm
        value = float(record[criterion])
        if not record["degenerate"] and value < best_value:
            best, best_value, best_params = gmm, value, {"n_components": k, "covariance_type": cov_type}
    if best is None:
        failed = [f"K={r['n_components']} {r['covariance_type']}: {r['error'] or r['degenerate_reason']}"
                  for r in table]
        raise ValueError("no model in the grid could be fitted without degenerating (a component with fewer "
                         "than D + 1 effective points or a covariance at the reg_covar floor): "
                         + "; ".join(failed))
    proba = np.asarray(to_numpy(best.predict_proba(X)), dtype=np.float64)
    return MixtureSelection(table=table, best_=best, best_params=best_params, criterion=criterion, models=models,
                            classification_=proba.argmax(axis=1), uncertainty_=1.0 - proba.max(axis=1))


def _points(n: float) -> str:
    """An effective number of points for a message: 3 significant digits, but never rounded up
    to a whole number it does not reach (2.9996 is "2.9996", not "3")."""
    shown = f"{n:.3g}"
    return shown if float(shown) <= n else f"{n:.6g}"
