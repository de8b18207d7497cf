"""Conjugate prior of a Gaussian mixture and its MAP M-step, as R mclust's ``priorControl()``
(Fraley & Raftery 2007, "Bayesian regularization for normal mixture estimation and model-based
clustering", J. Classification 24).

The prior
    The means and covariances of the components have a normal-inverse-Wishart prior:
    ``mu_k | Sigma_k ~ N(mu_P, Sigma_k / kappa_P)`` and an inverse-Wishart (inverse-gamma for
    a variance) on the covariances with ``nu_P`` degrees of freedom and scale ``Lambda_P``; the
    mixing weights have none. mclust's defaults (``defaultPrior``), computed from the data:
    ``kappa_P = 0.01`` (``shrinkage``), ``mu_P`` the data mean, ``nu_P = D + 2`` and ``Lambda_P``
    ``var(X) / G^(2/D)`` for the ellipsoidal forms, ``sum_j var(X_j) / D / G^(2/D)`` (a scalar)
    for the spherical and diagonal ones (``var`` with the ``n - 1`` divisor, as R's).

The MAP M-step
    EM then climbs the log posterior, ``loglik + log prior``, and the M-step is mclust's: each
    mean is pulled towards ``mu_P``, ``(n_k xbar_k + kappa_P mu_P) / (n_k + kappa_P)``, and each
    covariance is ``(Lambda_k + W_k + c_k (xbar_k - mu_P)(xbar_k - mu_P)') / a_k`` with ``W_k``
    the weighted scatter about ``xbar_k`` and ``c_k = n_k kappa_P / (n_k + kappa_P)``; for the
    shared forms the numerators and denominators are summed over the components. The scale
    ``Lambda_k`` and the count ``a_k = n_k + delta_k`` of each form are those of mclust's EM
    (its Fortran ``me*p`` routines, which ``Mclust`` and ``mclustBIC`` run; ``s = 1`` when
    ``kappa_P > 0``, G components, D columns):

    ====== ===================== ===============================
    form   Lambda_k              delta_k
    ====== ===================== ===============================
    VVV    Lambda_P              nu_P + D + 1 + s
    EEE    Lambda_P / G          (nu_P + D + 1 + s G) / G
    EEV    Lambda_P              (nu_P + D + 1 + s) / G
    VEV    Lambda_P              0
    VVI    lambda_P I            nu_P + 2 + s
    VEI    lambda_P I            (nu_P + 2 + s) / D
    EVI    lambda_P I            (nu_P + 1 + s) / G
    EEI    lambda_P I / G        (nu_P + 1 + s) / G
    VII    lambda_P I / D        (nu_P + 2 + s D) / D
    EII    lambda_P I / D (G=1)  (nu_P + 2 + s G D) / (G D)
           0 (G > 1)
    ====== ===================== ===============================

    mclust's EII with more than one component (``meeiip``) leaves the prior scale out of the
    variance (its one-component fit, ``mnxiip``, keeps it); emkit follows mclust so that the
    numbers agree (the objective is still a proper MAP objective, with scale 0).

    Written this way the MAP M-step is the maximum-likelihood M-step of the form on
    pseudo-statistics: ``kappa_P`` extra observations at ``mu_P``, ``Lambda_k`` added to the
    scatter and ``a_k`` in place of ``n_k`` as the divisor, so every structure's own M-step
    serves (:func:`map_statistics`). The log prior the engine adds to the log-likelihood is the
    objective that M-step maximises (:func:`log_prior`), so EM never decreases their sum.

    (VEI's volumes divide by ``D n_k + nu_P + 2 + s`` in ``meveip``, EVI's common volume by
    ``n + nu_P + 1 + s`` in ``meevip``, EEI's by ``n + nu_P + 1 + s`` (``meeeip``), EEV's by
    ``n + nu_P + D + 1 + s`` (``meeevp``), and VEV's ``mevevp`` adds the prior scale to each
    scatter but no degrees of freedom. With one component mclust fits EEI, VEI and EVI as its
    diagonal model XXI and EEV and VEV as XXX: ``delta`` is then VVI's and VVV's.)

    One difference: mclust's EEI (``meeeip``) adds the shrinkage term to the scatter but leaves
    the means unshrunk, so its fixed point is no posterior mode; emkit's EEI shrinks them as
    every other form does (on Old Faithful its log-likelihoods lie within 1.3e-3 of mclust's,
    and its log posterior above the value at mclust's parameters).

mclust defines priors for ten forms; emkit implements all ten (scikit-learn's four: spherical
= VII, diag = VVI, tied = EEE, full = VVV, and EII, EEI, VEI, EVI, EEV, VEV) and refuses the
others with a clear message: mclust has none for VEE, EVE, VVE and EVV.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from emkit.models.gaussian_kernels import reference_offsets

__all__ = ["GaussianPrior", "PRIOR_FORMS", "ResolvedPrior", "log_prior", "map_statistics", "prior_form",
           "resolve_prior"]

#: covariance structure name -> mclust's name, for the forms with a conjugate prior
PRIOR_FORMS = {"full": "VVV", "tied": "EEE", "diag": "VVI", "spherical": "VII", "EII": "EII", "EEI": "EEI",
               "VEI": "VEI", "EVI": "EVI", "EEV": "EEV", "VEV": "VEV"}
#: mclust's default shrinkage (``kappa_P``)
DEFAULT_SHRINKAGE = 0.01


@dataclass(frozen=True)
class GaussianPrior:
    """Hyperparameters of the conjugate prior (mclust's ``priorControl(...)`` arguments);
    None takes mclust's data-dependent default (see the module docstring).

    Parameters
    ----------
    shrinkage : float, default 0.01
        ``kappa_P``: how many observations' worth of pull towards ``mean`` each mean gets
        (0: none, the means are the maximum-likelihood ones).
    mean : array of shape (n_features,), optional
        ``mu_P`` (default: the data mean).
    dof : float, optional
        ``nu_P`` (default: n_features + 2).
    scale : float or array of shape (n_features, n_features), optional
        ``Lambda_P``: a matrix for the ellipsoidal forms (VVV, EEE, EEV, VEV), a scalar for the
        spherical and diagonal ones (default: mclust's, from the data's variances and the number of
        components).
    """

    shrinkage: float = DEFAULT_SHRINKAGE
    mean: Any = None
    dof: float | None = None
    scale: Any = None

    def __post_init__(self) -> None:
        if not isinstance(self.shrinkage, numbers.Real) or not math.isfinite(self.shrinkage) or self.shrinkage < 0:
            raise ValueError(f"prior shrinkage must be a finite number >= 0, got {self.shrinkage!r}")
        if self.dof is not None and (not isinstance(self.dof, numbers.Real) or not self.dof > 0):
            raise ValueError(f"prior dof must be a positive number, got {self.dof!r}")


@dataclass(frozen=True)
class ResolvedPrior:
    """The prior of one model and data set, ready for the M-step: ``kappa`` (shrinkage),
    ``mean`` (D,), ``scales`` (K, D, D) the ``Lambda_k`` and ``extra`` (K,) the ``delta_k`` of
    the module docstring's table."""

    form: str
    kappa: float
    mean: np.ndarray
    dof: float
    scales: np.ndarray
    extra: np.ndarray


def _column_variances(x: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(column means, covariance with the n - 1 divisor) of the rows without missing values
    (all rows' observed entries for the means and variances when some are missing). Row
    ``weights`` count as repeated rows (a row of weight 2 is two rows): the weighted mean and
    the weighted scatter divided by the total weight minus 1."""
    w = np.ones(x.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    observed = ~np.isnan(x)
    filled = np.where(observed, x, 0.0)
    col_w = w @ observed  # total weight of each column's observed entries
    mean = (w @ filled) / col_w
    complete = observed.all(axis=1)
    if np.count_nonzero(complete) > x.shape[1]:
        wc, centred = w[complete], x[complete] - (w[complete] @ x[complete]) / w[complete].sum()
        cov = np.atleast_2d((centred * wc[:, None]).T @ centred / (wc.sum() - 1.0))
    else:
        centred = np.where(observed, x - mean, 0.0)
        cov = np.diag((w @ centred ** 2) / (col_w - 1.0))
    return mean, cov


def prior_form(structure_name: str) -> str:
    """mclust's name of a covariance structure that has a conjugate prior; ValueError for one
    that has none."""
    form = PRIOR_FORMS.get(structure_name)
    if form is None:
        raise ValueError(f"a conjugate prior is available for covariance types {sorted(PRIOR_FORMS)} "
                         f"(mclust's {sorted(set(PRIOR_FORMS.values()))}), not {structure_name!r}")
    return form


def resolve_prior(prior: GaussianPrior, x: np.ndarray | None, n_components: int, structure_name: str, *,
                  n_features: int | None = None, weights: np.ndarray | None = None) -> ResolvedPrior:
    """mclust's ``defaultPrior(data, G, modelName)`` with the user's hyperparameters, turned
    into the per-component scales and extra counts of the MAP M-step. ``x`` (n, D) may be None
    when the prior gives its mean and scale (then ``n_features`` is D); ``weights`` (n,), row
    weights that count as repeated rows in the default mean and scale."""
    form = prior_form(structure_name)
    g = int(n_components)
    if x is None:
        if prior.mean is None or prior.scale is None or n_features is None:
            raise ValueError("the prior's default mean and scale need the data")
        d = int(n_features)
        data_mean, data_cov = np.full(d, np.nan), np.full((d, d), np.nan)
    else:
        x = np.asarray(x, dtype=np.float64)
        d = x.shape[1]
        if x.shape[0] < 2:
            raise ValueError(f"the prior's default scale is made from the data's variances, which need at least 2 "
                             f"rows: got n_samples = {x.shape[0]} (give the prior a mean and a scale)")
        data_mean, data_cov = _column_variances(x, weights)
    mean = data_mean if prior.mean is None else np.asarray(prior.mean, dtype=np.float64).reshape(-1)
    if mean.shape != (d,) or not np.all(np.isfinite(mean)):
        raise ValueError(f"prior mean must be {d} finite numbers, got {prior.mean!r}")
    dof = float(d + 2) if prior.dof is None else float(prior.dof)
    kappa = float(prior.shrinkage)
    s = 1.0 if kappa > 0 else 0.0
    fac = (1.0 / g) ** (2.0 / d)
    eye = np.eye(d)
    if form in ("VVV", "EEE", "EEV", "VEV"):
        if prior.scale is None:
            lam = fac * data_cov
        else:
            lam = np.asarray(prior.scale, dtype=np.float64)
            if lam.ndim == 0:
                lam = float(lam) * eye
        if lam.shape != (d, d) or not np.allclose(lam, lam.T) or np.linalg.eigvalsh(lam).min() <= 0:
            raise ValueError(f"prior scale for {form} must be a symmetric positive definite {d} x {d} matrix")
        if form == "VVV":
            scales, extra = np.repeat(lam[None], g, axis=0), np.full(g, dof + d + 1 + s)
        elif form == "EEV":  # one component: mclust's XXX, as VVV
            scales, extra = np.repeat(lam[None], g, axis=0), np.full(g, (dof + d + 1 + s) / g)
        elif form == "VEV":  # one component: mclust's XXX, as VVV
            scales, extra = np.repeat(lam[None], g, axis=0), np.full(g, dof + d + 1 + s if g == 1 else 0.0)
        else:
            scales, extra = np.repeat(lam[None] / g, g, axis=0), np.full(g, (dof + d + 1 + s * g) / g)
    else:
        lam_value = fac * float(np.trace(data_cov)) / d if prior.scale is None else prior.scale
        if np.ndim(lam_value) != 0 or not float(lam_value) > 0:
            raise ValueError(f"prior scale for {form} must be one positive number, got {prior.scale!r}")
        lam_scalar = float(lam_value)
        per, extra_value = {"VVI": (lam_scalar, dof + 2 + s),
                            # one component: mclust's XXI, as VVI
                            "VEI": (lam_scalar, (dof + 2 + s) / d if g > 1 else dof + 2 + s),
                            "EVI": (lam_scalar, (dof + 1 + s) / g if g > 1 else dof + 2 + s),
                            "EEI": (lam_scalar / g, (dof + 1 + s) / g if g > 1 else dof + 2 + s),
                            "VII": (lam_scalar / d, (dof + 2 + s * d) / d),
                            "EII": (lam_scalar / d if g == 1 else 0.0, (dof + 2 + s * g * d) / (g * d))}[form]
        scales, extra = np.repeat((per * eye)[None], g, axis=0), np.full(g, extra_value)
    return ResolvedPrior(form=form, kappa=kappa, mean=mean, dof=dof, scales=scales, extra=extra)


def map_statistics(prior: ResolvedPrior, stats: dict, structure: Any,
                   center: np.ndarray | None = None) -> tuple[dict, np.ndarray]:
    """Pseudo-statistics whose maximum-likelihood M-step is the MAP M-step.

    ``stats`` are the model's float64 statistics (``n``, ``s1``, ``s2`` about the reference
    points ``ref / n``). Returns ``(stats', divisor)``: ``kappa`` observations at the prior
    mean added (``n' = n + kappa``, ``s1' = s1 + kappa (mu_P - ref)``, and ``kappa (mu_P -
    ref)(mu_P - ref)' + Lambda_k`` added to ``s2`` in the structure's layout), about the same
    reference points (``center``: the E-step's centre, see
    :func:`~emkit.models.gaussian_kernels.reference_offsets`), and the divisor
    ``a_k = n_k + delta_k`` of the covariances."""
    n = np.asarray(stats["n"], dtype=np.float64)
    refs = reference_offsets(stats, center)
    shift = prior.mean[None, :] - refs
    second = prior.kappa * shift[:, :, None] * shift[:, None, :] + prior.scales
    n_map = n + prior.kappa
    pseudo = {**stats, "n": n_map, "s1": np.asarray(stats["s1"], dtype=np.float64) + prior.kappa * shift,
              "s2": np.asarray(stats["s2"], dtype=np.float64) + structure.pack_second(second),
              "ref": n_map[:, None] * refs}
    return pseudo, n + prior.extra


def log_prior(prior: ResolvedPrior, means: np.ndarray, covariances: np.ndarray) -> float:
    """The log prior density at ``(means, covariances)`` (K, D) and (K, D, D), up to a
    constant: ``sum_k -delta_k / 2 log det Sigma_k - tr(Sigma_k^-1 (Lambda_k + kappa (mu_k -
    mu_P)(mu_k - mu_P)')) / 2``, the objective the MAP M-step adds to Q."""
    diff = means - prior.mean[None, :]
    inner = prior.scales + prior.kappa * diff[:, :, None] * diff[:, None, :]
    chol = np.linalg.cholesky(covariances)
    log_det = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
    solved = np.linalg.solve(covariances, inner)
    trace = np.trace(solved, axis1=1, axis2=2)
    return float(np.sum(-0.5 * prior.extra * log_det - 0.5 * trace))
