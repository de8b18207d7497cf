"""Gaussian mixtures: a drop-in replacement for scikit-learn's ``GaussianMixture`` on the EM
engine, with missing values, sample weights, fixed parameters, hard / stochastic EM, chunked
memory-bounded E-steps and any array library.

The estimator turns the user's arguments into a
:class:`~emkit.models.gaussian.GaussianMixtureModel` (the maths) and its
:class:`~emkit.core.data.Data` ``(X, sample_weight)``, runs the engine and publishes
scikit-learn's fitted attributes.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any, Callable

import numpy as np

from emkit.core.arrays import asarray_like, get_namespace, is_dask, to_numpy
from emkit.core.data import ROW_WEIGHTS, Data
from emkit.core.validation import (PROBABILITY_ROUNDING, _any_value, as_array, check_fixed_groups, check_magnitude,
                                   check_random_state, check_sample_weight, count_distinct_rows, scan_values)
from emkit.engine import em
from emkit.estimators.mixture_base import MixtureEstimator
from emkit.estimators.settings import Setting, any_of, declare, instance_of, interval, options
from emkit.models.gaussian import (COVARIANCE_TYPES, INIT_METHODS, EmptyComponentWarning, GaussianMixtureModel,
                                   covariance_structure)
from emkit.models.gaussian_prior import GaussianPrior

__all__ = ["EmptyComponentWarning", "GaussianMixture"]

#: the parameter groups of a Gaussian mixture (what ``fixed`` may name)
GROUPS = ("weights", "means", "covariances")


def _init_setting(name: str, doc: str) -> Setting:
    return Setting(name, None, None, doc)


class GaussianMixture(MixtureEstimator):
    """Gaussian mixture fitted by EM: a drop-in replacement for scikit-learn's
    :class:`sklearn.mixture.GaussianMixture`, faster, and with missing values (NaN), sample
    weights, fixed parameter groups, acceleration, hard / stochastic EM and torch / CuPy / Dask
    input.

{settings}

    Attributes
    ----------
    weights_, means_, covariances_, precisions_, precisions_cholesky_
        As scikit-learn (same shapes, same library and dtype as ``X``).
    converged_, n_iter_ : bool, int
    lower_bound_ : float
        Mean (per unit sample weight) observed log-likelihood at the returned parameters.
    lower_bounds_ : ndarray
        ``loglik_trace_`` divided by n.
    loglik_, loglik_trace_, n_em_evaluations_, result_, params_, model_, n_features_in_
    feature_names_in_ : ndarray of str
        The column names of a pandas / polars ``X`` at ``fit`` (when all are strings), as in
        scikit-learn: a frame with other names or another column order is then refused.

    Notes
    -----
    Stopping: EM stops after iteration t when the stopping rule ``stop`` holds for the
    log-likelihoods l_t and l_{t-1} (see :mod:`emkit.engine.loop`; the default is emkit's, not
    scikit-learn's ``tol=1e-3, max_iter=100``; ``stop="loglik_mean"`` is scikit-learn's rule,
    ``|l_t - l_{t-1}| / n < tol``). emkit evaluates l_t at the NEW parameters; scikit-learn
    evaluates it in the E-step, at the parameters before its last M-step. So with the same start
    and rule, where emkit stops after T iterations scikit-learn stops after T + 1 and returns
    one more M-step; both report the same ``lower_bound_`` (l_T / n, which for emkit is the
    mean log-likelihood of the returned parameters). emkit can also report convergence after
    one iteration, which scikit-learn, having no earlier value to compare with, never does.

    ``bic`` / ``aic`` / ``icl`` use scikit-learn's sign (lower is better); R mclust reports
    BIC with the opposite sign (higher is better).
    """

    # the settings (see emkit.estimators.base.EMEstimator for why they are annotated)
    n_components: int
    covariance_type: str
    reg_covar: float
    init_params: str
    prior: Any
    weights_init: Any
    means_init: Any
    precisions_init: Any
    covariances_init: Any
    warm_start: bool
    verbose: int
    verbose_interval: int

    # fitted attributes (arrays of the library of X)
    model_: GaussianMixtureModel
    weights_: Any
    means_: Any
    covariances_: Any
    precisions_: Any
    precisions_cholesky_: Any
    lower_bound_: float
    lower_bounds_: np.ndarray
    n_features_in_: int

    _settings = declare(
        Setting("n_components", 1, interval(numbers.Integral, 1), "Number of mixture components K.",
                positional=True),
        Setting("covariance_type", "full", options(*COVARIANCE_TYPES),
                "Covariance structure (see :mod:`emkit.models.covariance`): a full matrix per component, "
                "one shared matrix, a diagonal per component or one variance per component."),
        Setting("reg_covar", 1e-6, interval(numbers.Real, 0),
                "Added to the diagonal of every covariance in each M-step (scikit-learn's meaning)."),
        Setting("init_params", "kmeans", options(*INIT_METHODS),
                "Initialisation, see :meth:`emkit.models.gaussian.GaussianMixtureModel.initialize` "
                "(emkit's own k-means, no scikit-learn; ``\"hc\"`` is R mclust's hierarchical start, "
                "``\"hc:VARS\"`` etc. with another ``hcUse`` transform)."),
        Setting("prior", None, any_of(None, options("default"), instance_of(dict, GaussianPrior,
                                                                            describe="a dict or GaussianPrior")),
                "Conjugate prior of the means and covariances, as R mclust's ``priorControl()``: "
                "``\"default\"`` is mclust's default (shrinkage 0.01 towards the data mean, D + 2 degrees "
                "of freedom, a scale from the data's variances), a dict sets some of its hyperparameters "
                "(``shrinkage``, ``mean``, ``dof``, ``scale``; see :class:`emkit.models.gaussian_prior."
                "GaussianPrior`). EM then finds the posterior mode (MAP); ``loglik_`` and the criteria "
                "use the observed log-likelihood there, as mclust's BIC does. Available for full, tied, "
                "diag, spherical and EII, EEI, VEI, EVI, EEV, VEV (every form mclust has one for, except "
                "VEE, EVE, VVE and EVV); set ``reg_covar=0`` to match mclust exactly."),
        _init_setting("weights_init", "Starting weights (K,), summing to 1."),
        _init_setting("means_init", "Starting means (K, D)."),
        _init_setting("precisions_init", "Starting precisions, shaped as the covariances (give precisions or "
                                         "covariances, not both)."),
        _init_setting("covariances_init", "Starting covariances: (K, D, D) full, (D, D) tied, (K, D) diag, "
                                          "(K,) spherical."),
        Setting("warm_start", False, instance_of(bool, np.bool_, describe="a bool"),
                "Refit from the previous solution (``n_init`` is then ignored)."),
        Setting("verbose", 0, instance_of(numbers.Integral, describe="an integer"),
                "Print the mean log-likelihood every ``verbose_interval`` iterations when >= 1."),
        Setting("verbose_interval", 10, interval(numbers.Integral, 1), "Iterations between two reports."),
        fixed=None)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.estimator_type = "density_estimator"
        tags.input_tags.allow_nan = True
        return tags

    # ------------------------------------------------------------------ checks
    def _validate_settings(self) -> None:
        """The declared constraints, plus what relates several settings."""
        if self.covariance_type not in COVARIANCE_TYPES:
            raise ValueError(f"unknown covariance_type {self.covariance_type!r}; choose one of {COVARIANCE_TYPES}")
        if self.init_params not in INIT_METHODS:
            raise ValueError(f"unknown init_params {self.init_params!r}; choose one of {INIT_METHODS}")
        super()._validate_settings()
        if self.precisions_init is not None and self.covariances_init is not None:
            raise ValueError("give precisions_init or covariances_init, not both")
        fixed = self._fixed()
        needs = {"weights": self.weights_init is not None, "means": self.means_init is not None,
                 "covariances": self.precisions_init is not None or self.covariances_init is not None}
        for name in fixed:
            if not needs[name]:
                init_name = "precisions_init or covariances_init" if name == "covariances" else f"{name}_init"
                raise ValueError(f"fixed={list(fixed)} holds {name} fixed, so {init_name} must be given")

    def _fixed(self) -> tuple:
        return check_fixed_groups(self.fixed, GROUPS, type(self).__name__)

    # ------------------------------------------------------------------ model and data
    def _make_model(self) -> GaussianMixtureModel:
        """The model of the settings (uncentred; :meth:`_model_for` builds the one for the data)."""
        return GaussianMixtureModel(self.n_components, self.covariance_type, self.reg_covar, self.init_params,
                                    prior=self._prior())

    def _prior(self) -> GaussianPrior | None:
        if self.prior is None:
            return None
        if isinstance(self.prior, GaussianPrior):
            return self.prior
        if isinstance(self.prior, str):
            return GaussianPrior()
        unknown = set(self.prior) - {"shrinkage", "mean", "dof", "scale"}
        if unknown:
            raise ValueError(f"unknown prior hyperparameter(s) {sorted(unknown)}; choose from shrinkage, mean, dof, "
                             f"scale")
        return GaussianPrior(**self.prior)

    def _model_for(self, data: Data, has_missing: bool | None = None) -> GaussianMixtureModel:
        """The model that fits ``data``: centred for it, and told whether it has missing values
        (``has_missing``, when the caller's checks found out; else looked up here)."""
        x = data[0]
        n_rows = int(x.shape[0])
        if n_rows < self.n_components:
            raise ValueError(f"Expected n_samples >= n_components but got n_components = {self.n_components}, "
                             f"n_samples = {n_rows}")
        if not is_dask(x):
            # counted exactly as stored, so the outcome does not depend on an offset or on how
            # an initialisation rounds distances (Dask data: the initialisation's own check)
            w = data[1]
            distinct = count_distinct_rows(x, at_least=self.n_components, weights=w)
            if distinct < self.n_components:
                _check_more_components_than_rows(self.n_components, distinct, self.reg_covar, w is not None)
        if has_missing is None:
            has_missing = bool(_any_value(x, "isnan"))
        if has_missing and self.algorithm != "em":
            raise ValueError(f"algorithm={self.algorithm!r} does not support missing values; use 'em'")
        # a new model, complete when constructed: centred for the data (see data_center), its
        # prior's defaults computed from the data
        return self._make_model().prepare_data(data).replace(has_missing=has_missing)

    def _make_data(self, X: Any, sample_weight: Any = None, fitting: bool = True) -> Data:
        return self._checked_data(X, sample_weight, fitting)[0]

    def _checked_data(self, X: Any, sample_weight: Any = None, fitting: bool = True) -> tuple[Data, bool]:
        """:meth:`_make_data`, and whether ``X`` has missing values (NaN)."""
        X = as_array(X, "X", ndim=2, allow_nan=True, check_values=False)
        # inf refused, NaN (missing) noted and, for a fit, each column's largest |value|: one pass
        peak, has_nan = scan_values(X, "X", allow_nan=True, peaks=fitting)
        if not fitting:
            self._check_fitted()
            d_fit = getattr(self, "n_features_in_", None)
            if d_fit is not None and int(X.shape[1]) != d_fit:
                raise ValueError(f"X has {int(X.shape[1])} features, but GaussianMixture is expecting "
                                 f"{d_fit} features as input")
        if fitting:  # values EM cannot square, and columns with no observed value
            check_magnitude(X, "X", missing_columns=True, peak=peak)
        all_nan = _all_nan_rows(X) if has_nan else np.zeros(0, dtype=int)
        if all_nan.size:
            raise ValueError(f"X has rows with every entry missing (NaN): rows {all_nan[:10].tolist()}"
                             f"{' ...' if all_nan.size > 10 else ''}; drop them (they carry no information)")
        if sample_weight is not None and not is_dask(sample_weight):
            sw = to_numpy(sample_weight) if hasattr(sample_weight, "__array_namespace__") else sample_weight
            try:
                sw = np.asarray(sw, dtype=np.float64) if not is_dask(X) else sw
            except (TypeError, ValueError) as exc:
                raise ValueError(f"sample_weight must be numeric: {exc}") from None
            if isinstance(sw, np.ndarray) and sw.size and np.all(sw == 0):
                raise ValueError("sample_weight: all weights are zero; at least one must be positive")
        w = check_sample_weight(sample_weight, int(X.shape[0]))
        if w is not None and not is_dask(w) and not is_dask(X):
            xp = get_namespace(X)
            if xp is np:
                w = np.asarray(to_numpy(w), dtype=X.dtype)
            elif get_namespace(w) is np:
                w = asarray_like(np.asarray(w), X)
        return Data(("X", ROW_WEIGHTS), (X, w)), has_nan

    def _online_data(self, X: Any, sample_weight: Any = None) -> Data:  # type: ignore[override]  # no named inputs
        self._validate_settings()
        return self._make_data(X, sample_weight, fitting=not self.__sklearn_is_fitted__())

    def _init_params(self, model: GaussianMixtureModel, data: Data) -> dict | None:
        """Starting values from the ``*_init`` settings, checked and converted."""
        x = data[0]
        k, d = self.n_components, int(x.shape[1])
        init = {}
        if self.weights_init is not None:
            w = _init_array(self.weights_init, "weights_init")
            _check_shape(w, (k,), "weights", "weights_init")
            rounding = PROBABILITY_ROUNDING
            if not np.all(np.isfinite(w)) or np.any(w < -rounding) or np.any(w > 1 + rounding):
                # scikit-learn's message, which swaps min and max: the text users' tests match
                raise ValueError(f"The parameter 'weights' should be in the range [0, 1], but got max value "
                                 f"{np.min(w):.5f}, min value {np.max(w):.5f} (weights_init: smallest "
                                 f"{np.min(w):.5f}, largest {np.max(w):.5f})")
            w = np.clip(w, 0.0, 1.0)  # rounding (a fitted weights_ given back) is clipped, not rejected
            if not np.isclose(w.sum(), 1.0, atol=1e-6):
                raise ValueError(f"The parameter 'weights' should be normalized, but got sum(weights) = "
                                 f"{w.sum():.5f} (weights_init must sum to 1)")
            init["weights"] = w
        if self.means_init is not None:
            m = _init_array(self.means_init, "means_init")
            _check_shape(m, (k, d), "means", "means_init")
            if not np.all(np.isfinite(m)):
                raise ValueError("means_init contains NaN or inf")
            init["means"] = m
        if self.precisions_init is not None or self.covariances_init is not None:
            name = "precisions_init" if self.precisions_init is not None else "covariances_init"
            value = self.precisions_init if self.precisions_init is not None else self.covariances_init
            init["covariances"] = _check_cov_init(value, name, self.covariance_type, k, d)
        if not init:
            return None
        return {name: asarray_like(v, x) for name, v in init.items()}

    # ------------------------------------------------------------------ fitting
    def fit(self, X: Any, y: Any = None,  # type: ignore[override]  # no named inputs (**inputs)
            sample_weight: Any = None) -> "GaussianMixture":
        """Estimate the parameters by EM (``y`` is ignored).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            NumPy, torch, CuPy or Dask; NaN entries are missing values (missing at random).
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights (frequency weights: a weight of 2 counts a row twice).

        Returns
        -------
        self
        """
        self._validate_settings()
        self._check_feature_names(X, reset=True)
        data, has_missing = self._checked_data(X, sample_weight)
        model = self._model_for(data, has_missing)
        self._store(model, data, self._run_em(model, data))
        return self

    def _run_em(self, model: GaussianMixtureModel, data: Data) -> Any:
        """EM with this estimator's settings; ``warm_start`` and ``verbose`` handled here."""
        options = self._engine_options()
        fixed = options.pop("fixed", None)
        options["random_state"] = check_random_state(self.random_state)
        init = self._init_params(model, data)
        if self.warm_start and hasattr(self, "params_"):
            prev = self.params_
            x = data[0]
            if int(to_numpy(prev["means"]).shape[1]) != int(x.shape[1]):
                raise ValueError("warm_start: X has a different number of features than the previous fit")
            init = {name: asarray_like(np.asarray(to_numpy(v), dtype=np.float64), x) for name, v in prev.items()}
            options["n_init"] = 1
        if self.verbose:
            options["callback"] = self._verbose_callback(model.n_samples(data), self.callback)
        try:
            result = em(model, data, init=init, fixed=fixed, warn_not_converged=False, **options)
        finally:
            model.release_scratch()
        self._warn_not_converged(result)
        return result

    def _not_converged_message(self, result: Any) -> str:
        # scikit-learn's message first: the text its users' filters and tests match
        return ("Best performing initialization did not converge. Try different init parameters, or increase "
                "max_iter, tol, or check for degenerate data. "
                f"(GaussianMixture: the stopping rule {result.stop} < {result.tol} was not met in "
                f"{result.max_iter} iterations.)")

    def _verbose_callback(self, n: float, user: Callable | None) -> Callable[[int, Any, float], None]:
        def report(iteration: int, params: Any, loglik: float) -> None:
            if iteration == 0:
                print("Initialization")
            elif iteration % self.verbose_interval == 0:
                print(f"  Iteration {iteration}\t mean log-likelihood {loglik / n:.6f}")
            if user is not None:
                user(iteration, params, loglik)
        return report

    def _store(self, model: GaussianMixtureModel, data: Data, result: Any) -> None:
        super()._store(model, data, result)
        n = model.n_samples(data)
        self.lower_bound_ = float(result.loglik / n)
        self.lower_bounds_ = np.asarray(result.loglik_trace) / n
        self.n_features_in_ = int(data[0].shape[1])

    def _publish(self, result: Any) -> None:
        params = result.params
        self.weights_ = params["weights"]
        self.means_ = params["means"]
        self.covariances_ = params["covariances"]
        structure = covariance_structure(self.covariance_type)
        prec_chol = structure.precision_cholesky(to_numpy(params["covariances"]))
        self.precisions_cholesky_ = asarray_like(prec_chol, params["covariances"])
        self.precisions_ = asarray_like(structure.precisions(prec_chol), params["covariances"])

    # ------------------------------------------------------------------ prediction
    def _log_joint(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super()._log_joint(*args, **kwargs)
        finally:  # a fitted estimator keeps no chunk temporaries between calls
            if hasattr(self, "model_"):
                self.model_.release_scratch()

    def impute(self, X: Any) -> Any:
        """``X`` with each NaN replaced by its conditional expectation given the row's observed
        coordinates, E[x_m | x_o] = sum_k p(k | x_o) (mu_km + S_k,mo S_k,oo^{-1} (x_o - mu_ko)).

        Returns a NumPy array (float64) for NumPy input, else the input's library."""
        self._check_fitted()
        self._check_feature_names(X, reset=False)
        x = self._make_data(X, fitting=False)[0]
        out = self.model_.impute(x, self.params_)
        return out if get_namespace(x) is np else asarray_like(out, x)


# --------------------------------------------------------------------------- helpers
def _all_nan_rows(x: Any) -> np.ndarray:
    """Indices of rows whose entries are all NaN (one pass; lazy for Dask)."""
    if is_dask(x):  # NumPy's ufuncs stay lazy on Dask arrays
        all_nan = np.isnan(x).all(axis=1)
        if not bool(all_nan.any().compute()):  # the usual case: no per-row array to the client
            return np.zeros(0, dtype=int)
        return np.flatnonzero(np.asarray(all_nan.compute()))
    xp = get_namespace(x)
    if xp is np:
        if np.isfinite(np.sum(x, dtype=np.float64)):  # no NaN at all: one cheap reduction
            return np.zeros(0, dtype=int)
        # in row blocks: no full-size boolean temporary
        found = [start + np.flatnonzero(np.isnan(x[start:start + 65536]).all(axis=1))
                 for start in range(0, x.shape[0], 65536)]
        return np.concatenate(found) if found else np.zeros(0, dtype=int)
    return np.flatnonzero(to_numpy(xp.all(xp.isnan(x), axis=1)))


def _check_cov_init(value: Any, name: str, covariance_type: str, k: int, d: int) -> np.ndarray:
    """Covariances from ``precisions_init`` / ``covariances_init`` (inverting precisions), with
    the shape and positive definiteness of each component checked."""
    structure = covariance_structure(covariance_type)
    arr = _init_array(value, name)
    expected = structure.shape(k, d)
    label = f"{covariance_type} {'precision' if name == 'precisions_init' else 'covariance'}"
    _check_shape(arr, expected, label, f"{name} for covariance_type={covariance_type!r}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    if name == "precisions_init":  # scikit-learn's messages (emkit's own name the component below)
        if covariance_type in ("full", "tied"):
            stack = arr.reshape((-1, d, d))
            bad = [] if _symmetric_positive_definite(stack) else \
                [j for j, a in enumerate(stack) if not _symmetric_positive_definite(a)]
            if bad:
                where = f"precisions_init[{bad[0]}] (component {bad[0]})" if covariance_type == "full" else name
                raise ValueError(f"'{label}' should be symmetric, positive-definite: {where} is not")
        elif np.any(arr <= 0):
            j = int(np.argwhere(arr <= 0)[0][0])
            raise ValueError(f"'{label}' should be positive: precisions_init must be positive; component {j} is not")
    return structure.covariances_from_init(arr, name)


def _symmetric_positive_definite(a: np.ndarray) -> bool:
    """scikit-learn's test of a precision matrix (symmetric to ``allclose``, positive
    eigenvalues of its symmetric part), by a Cholesky factorisation: a tenth of an eigenvalue
    decomposition's cost (seconds at D = 5,000). ``a`` is one matrix or a stack (..., d, d):
    True when every one passes."""
    transposed = np.swapaxes(a, -1, -2)
    if not np.allclose(a, transposed):
        return False
    try:
        np.linalg.cholesky(0.5 * (a + transposed))
    except np.linalg.LinAlgError:
        return False
    return True


def _init_array(value: Any, name: str) -> np.ndarray:
    """A user's starting value as a NumPy float64 array (from any array library)."""
    try:
        return np.asarray(to_numpy(value) if hasattr(value, "__array_namespace__") else value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numeric, got {value!r}") from None


def _check_shape(arr: np.ndarray, expected: tuple, label: str, name: str) -> None:
    """scikit-learn's message for a starting value of the wrong shape (what users' tests match)."""
    if arr.shape != tuple(expected):
        raise ValueError(f"The parameter '{label}' should have the shape of {tuple(expected)}, but got {arr.shape} "
                         f"({name})")


def _check_more_components_than_rows(k: int, distinct: int, reg_covar: float, weighted: bool) -> None:
    """The one rule for more components than distinct rows (as scikit-learn): with
    ``reg_covar > 0`` the fit goes on with a warning, the components beyond the distinct rows
    starting empty (weight ~0, covariance ``reg_covar`` I); with ``reg_covar = 0`` their
    covariances would be singular, so it is an error."""
    which = f"{distinct} distinct row(s){' with positive weight' if weighted else ''}"
    if not reg_covar > 0:
        # scikit-learn's message first: the text users' tests match
        raise ValueError(f"Fitting the mixture model failed because some components have ill-defined empirical "
                         f"covariance (for instance caused by singleton or collapsed samples). Try to decrease "
                         f"the number of components, increase reg_covar, or scale the input data. "
                         f"(n_components={k} but X has only {which}: with reg_covar=0 the extra components "
                         f"would have singular covariances.)")
    warnings.warn(f"n_components={k} but X has only {which}: {k - distinct} component(s) start empty "
                  f"(weight ~0, covariance reg_covar * I); reduce n_components", EmptyComponentWarning,
                  stacklevel=4)
