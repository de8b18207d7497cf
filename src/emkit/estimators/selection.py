"""mclust-style model search: a Gaussian mixture for every number of components and
covariance type, the best one picked by an information criterion (:func:`select_mixture`)."""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from emkit.core.validation import as_array, check_n_components
from emkit.estimators.gaussian import GaussianMixture
from emkit.models.gaussian import COVARIANCE_TYPES, EmptyComponentWarning

__all__ = ["MixtureSelection", "select_mixture"]


@dataclass
class MixtureSelection:
    """Result of :func:`select_mixture`.

    Attributes
    ----------
    table : list of dict
        One record per (n_components, covariance_type): ``n_components``, ``covariance_type``,
        ``loglik`` (total observed log-likelihood), ``n_parameters``, ``bic``, ``aic``, ``icl``
        (all lower-is-better, scikit-learn's sign), ``converged``, and ``error`` (None, or why
        the fit failed, e.g. more components than distinct rows; its numbers are then NaN).
    best_ : GaussianMixture
        The fitted model with the lowest criterion.
    best_params : dict
        ``{"n_components": K, "covariance_type": type}`` of ``best_``.
    criterion : str
    """

    table: list
    best_: GaussianMixture
    best_params: dict
    criterion: str
    models: dict = field(default_factory=dict, repr=False)

    def __iter__(self):  # allows ``table, best = select_mixture(...)``
        return iter((self.table, self.best_))


def select_mixture(X, n_components: Sequence[int] = range(1, 10),
                   covariance_types: Sequence[str] = ("full", "tied", "diag", "spherical"),
                   criterion: str = "bic", sample_weight=None, **gmm_kwargs: Any) -> MixtureSelection:
    """Fit a Gaussian mixture for every (n_components, covariance_type) and pick the best by an
    information criterion (mclust-style model search).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    n_components : iterable of int
    covariance_types : iterable of {"full", "tied", "diag", "spherical"}
    criterion : {"bic", "aic", "icl"}
        Lower is better (scikit-learn's sign; mclust's BIC is the negative).
    sample_weight : array-like, optional
    **gmm_kwargs
        Passed to every :class:`GaussianMixture` (``n_init``, ``random_state``, ``tol``...).

    Returns
    -------
    MixtureSelection
        ``.table`` (list of dict records), ``.best_`` (fitted model), ``.best_params``;
        iterating gives ``(table, best_)``.
    """
    if criterion not in ("bic", "aic", "icl"):
        raise ValueError(f"unknown criterion {criterion!r}; choose 'bic', 'aic' or 'icl'")
    ks = [check_n_components(int(k)) if isinstance(k, (numbers.Integral, np.integer)) else check_n_components(k)
          for k in n_components]
    types = [covariance_types] if isinstance(covariance_types, str) else list(covariance_types)
    if not ks or not types:
        raise ValueError("select_mixture needs at least one n_components and one covariance_type")
    for t in types:
        if t not in COVARIANCE_TYPES:
            raise ValueError(f"unknown covariance_type {t!r}; choose from {COVARIANCE_TYPES}")
    X = as_array(X, "X", ndim=2, allow_nan=True)
    table, models = [], {}
    best, best_value = None, math.inf
    for cov_type in types:
        for k in ks:
            gmm = GaussianMixture(k, covariance_type=cov_type, **gmm_kwargs)
            record = {"n_components": k, "covariance_type": cov_type}
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", EmptyComponentWarning)
                    gmm.fit(X, sample_weight=sample_weight)
            except ValueError as exc:
                record.update(loglik=math.nan, n_parameters=math.nan, bic=math.nan, aic=math.nan,
                              icl=math.nan, converged=False, error=str(exc))
                table.append(record)
                continue
            record.update(loglik=float(gmm.loglik_), n_parameters=gmm._n_parameters(),
                          bic=float(gmm.bic(X, sample_weight)), aic=float(gmm.aic(X, sample_weight)),
                          icl=float(gmm.icl(X, sample_weight)), converged=bool(gmm.converged_), error=None)
            table.append(record)
            models[(k, cov_type)] = gmm
            if record[criterion] < best_value:
                best, best_value = gmm, record[criterion]
    if best is None:
        raise ValueError("no model in the grid could be fitted: " + "; ".join(r["error"] for r in table))
    return MixtureSelection(table=table, best_=best,
                            best_params={"n_components": best.n_components, "covariance_type": best.covariance_type},
                            criterion=criterion, models=models)
