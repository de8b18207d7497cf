"""Finite mixtures of one distribution family: one estimator for any family, and its named faces.

:class:`FamilyMixture` is the one implementation (as pomegranate's ``GeneralMixtureModel`` is
one class for every distribution): it turns the user's arguments into the data of a
:class:`~emkit.models.mixture.FiniteMixtureModel`, checks starting values and runs the engine.
:class:`FiniteMixture` takes the family as a setting; the named faces declare their family,
their settings and their scikit-learn tags, and nothing else:

========================== ===================== ==============================================
estimator                  family                fitted component parameters
========================== ===================== ==============================================
BinomialMixture            Binomial              ``probs_`` (K,)
PoissonMixture             Poisson               ``rates_`` (K,) or (K, d)
ExponentialMixture         Exponential           ``rates_`` (K,) or (K, d)
NormalMixture              Normal                ``means_``, ``covariances_`` (K,) or (K, d)
MultivariateNormalMixture  MultivariateNormal    ``means_`` (K, d), ``covariances_`` (K, d, d)
BernoulliMixture           Bernoulli             ``probs_`` (K, d)
CategoricalMixture         Categorical           ``probs_`` (K, d, C)
FiniteMixture              any (by name)         the family's groups
========================== ===================== ==============================================

All fit ``weights_`` (K,) too, take ``n_components`` first (default 1, as every emkit
mixture and scikit-learn's), take the engine settings as constructor arguments (one default
stopping rule for every estimator, see :mod:`emkit.estimators.settings`) and share
``fit``, ``partial_fit``, ``predict``, ``predict_proba``, ``score``, ``score_samples``,
``sample``, ``bic``, ``aic`` and ``icl`` with
:class:`~emkit.estimators.mixture_base.MixtureEstimator`; a family's named inputs (the
binomial's ``trials``) follow X in every one of them.
"""

from __future__ import annotations

import numbers
from typing import Any, Iterator, Sequence

import numpy as np

from emkit.core.arrays import asarray_like, get_namespace, is_dask, to_numpy
from emkit.core.data import Data
from emkit.core.params import Positive, Simplex, SymmetricPositiveDefinite, UnitInterval
from emkit.core.validation import (PROBABILITY_ROUNDING, as_counts, check_magnitude, check_n_components,
                                   check_probabilities, check_sample_weight, is_symmetric_positive_definite)
from emkit.estimators.mixture_base import MixtureEstimator
from emkit.estimators.settings import Setting, any_of, declare, instance_of, interval
from emkit.models.families import (Bernoulli, Binomial, Categorical, ExponentialFamily, Family, MultivariateNormal,
                                   Normal, Poisson, get_family)
from emkit.models.mixture import FiniteMixtureModel, mixture_data

__all__ = ["FamilyMixture", "FiniteMixture", "BinomialMixture", "PoissonMixture", "ExponentialMixture",
           "NormalMixture", "MultivariateNormalMixture", "BernoulliMixture", "CategoricalMixture"]


def _components(default: int) -> Setting:
    return Setting("n_components", default, interval(numbers.Integral, 1), "Number of components K.",
                   positional=True)


def _init(name: str, doc: str) -> Setting:
    return Setting(name, None, None, doc)


WEIGHTS_INIT = _init("weights_init", "Starting mixing weights (K,), summing to 1.")
REG_COVAR = Setting("reg_covar", 1e-6, interval(numbers.Real, 0),
                    "Added to the variances (the diagonal of the covariances) in every M-step.")


def _ndim_and_features(X) -> tuple[int, int]:
    """(number of dimensions, number of features) of the user's X, without converting it."""
    shape = getattr(X, "shape", None)
    if shape is None:
        try:
            shape = np.asarray(X).shape
        except (TypeError, ValueError):
            return 0, 0  # make_data reports what cannot be read
    return len(shape), (1 if len(shape) < 2 else int(shape[1]))


def _distinct_rows(arrays: Sequence[Any]) -> int:
    cols = [np.asarray(to_numpy(a), dtype=float).reshape(int(a.shape[0]), -1) for a in arrays]
    return int(np.unique(np.concatenate(cols, axis=1), axis=0).shape[0])


def _clip_rounding(params: dict, spec: dict) -> None:
    """Probabilities (and weights) that rounding pushed at most ``PROBABILITY_ROUNDING`` (1e-12)
    outside [0, 1] (an M-step's ``sx / n`` giving 1.0000000000000002) are clipped into it, in
    place, so ``probs_`` / ``weights_`` lie in [0, 1] exactly and are accepted back as
    ``probs_init`` / ``weights_init``. Values farther outside are left as they are."""
    for group, value in params.items():
        if not isinstance(spec.get(group), (UnitInterval, Simplex)) or is_dask(value):
            continue
        xp = get_namespace(value)
        low = (value < 0) & (value >= -PROBABILITY_ROUNDING)
        high = (value > 1) & (value <= 1 + PROBABILITY_ROUNDING)
        if bool(to_numpy(xp.any(low))) or bool(to_numpy(xp.any(high))):
            value = xp.where(low, xp.zeros_like(value), value)
            params[group] = xp.where(high, xp.ones_like(value), value)


def _whole_numbers(weights) -> bool:
    """Row weights that count identical observations (in-memory, all whole numbers)."""
    if weights is None or is_dask(weights):
        return False
    w = np.asarray(to_numpy(weights))
    return bool(np.all(w == np.round(w)))


# =========================================================================== the implementation
class FamilyMixture(MixtureEstimator):
    """A mixture of one :mod:`~emkit.models.families` family: the one implementation behind
    :class:`FiniteMixture` and the named faces (not registered itself).

    A face declares ``_family_class`` (the family), ``_family_options`` (settings passed to the
    family's constructor), ``_init_groups`` (parameter group -> setting holding its starting
    values), ``_settings`` and ``_input_tags`` (scikit-learn input tags).

    Probabilities stay in [0, 1] exactly: fitted ``probs_`` / ``weights_`` that rounding pushed
    at most 1e-12 outside it (``sx / n`` = 1.0000000000000002) are clipped into it, and such
    starting values (``probs_init=fit.probs_``) are clipped, not rejected.
    """

    _family_class: type[Family] | None = None
    _family_options: tuple[str, ...] = ()
    _init_groups: dict[str, str] = {}
    _input_tags: dict[str, bool] = {}

    # settings every face declares (see emkit.estimators.base.EMEstimator for why annotated)
    n_components: int
    weights_init: Any

    # fitted attributes
    model_: FiniteMixtureModel
    n_features_in_: int
    _fit_ndim: int
    _weights_are_counts: bool

    def __init_subclass__(cls, **kwargs: Any) -> None:
        family_class = cls.__dict__.get("_family_class")
        if family_class is not None:
            cls._inputs = dict(family_class.inputs)
        super().__init_subclass__(**kwargs)

    # ------------------------------------------------------------------ the family and the model
    def _make_family(self) -> Family:
        assert self._family_class is not None  # a face declares its family (FiniteMixture overrides this)
        return self._family_class(**{name: getattr(self, name) for name in self._family_options})

    def _family_for(self, fitting: bool) -> Family:
        return self._make_family() if fitting or not hasattr(self, "model_") else self.model_.family

    def _input_fields(self, fitting: bool) -> dict[str, str]:
        return dict(self._family_for(fitting).inputs)

    def _make_model(self) -> FiniteMixtureModel:
        # Whole-number sample weights of fit's data are counts of identical rows (grouped data
        # such as Hasselblad's days per number of deaths): stochastic EM then draws a component
        # per individual, not one per row. Fractional weights keep one draw per row.
        return FiniteMixtureModel(self._make_family(), check_n_components(self.n_components),
                                  name=type(self).__name__,
                                  row_counts_are_integers=getattr(self, "_weights_are_counts", False))

    # ------------------------------------------------------------------ data
    def _make_data(self, X: Any, sample_weight: Any = None, fitting: bool = True, **inputs: Any) -> Data:
        family = self._family_for(fitting)
        x_ndim, n_features = _ndim_and_features(X)
        if not fitting and hasattr(self, "n_features_in_"):
            if getattr(self, "_fit_ndim", x_ndim) != x_ndim:
                raise ValueError(f"X has {x_ndim} dimension(s) but the fit used {self._fit_ndim}-D data. Reshape "
                                 f"your data: X.reshape(-1, 1) if it has a single feature, X.reshape(1, -1) if "
                                 f"it is a single row")
            if n_features != self.n_features_in_:
                raise ValueError(f"X has {n_features} features, but {type(self).__name__} is expecting "
                                 f"{self.n_features_in_} features as input")
        arrays = family.make_data(X, **inputs)
        n = int(arrays[0].shape[0])
        try:
            w = check_sample_weight(sample_weight, n)
        except ValueError as exc:
            if "positive sum" in str(exc):
                raise ValueError("sample_weight must have a positive sum; all weights are zero") from None
            raise
        lazy = any(is_dask(a) for a in arrays)
        if w is not None and not is_dask(w) and not lazy:
            # same library, device and dtype as the data (float32 stays float32)
            w = asarray_like(to_numpy(w), arrays[0])
        if fitting:
            self._check_fit_data(family, arrays, lazy)
            self._fit_ndim = x_ndim
            self._weights_are_counts = _whole_numbers(w)
            self.n_features_in_ = n_features
        return mixture_data(family, arrays, w)

    def _check_fit_data(self, family: Family, arrays: tuple, lazy: bool) -> None:
        """Data whose maximum-likelihood estimate does not exist, and more components than
        distinct rows (in-memory data only: both read every row); values whose squares the
        initialisation cannot compute (one reduction, lazy for Dask)."""
        x = arrays[family.fields.index("X")]
        if isinstance(family, (Poisson, Binomial)):
            check_magnitude(x, "X", what="counts",
                            advice=f"a {family.name} mixture cannot be fitted to counts this large")
        else:
            check_magnitude(x, "X")
        if lazy:
            return
        family.check_fit_data(arrays)
        k = check_n_components(self.n_components)
        observed = [arrays[family.fields.index(name)] for name in ("X", *family.inputs)]
        distinct = _distinct_rows(observed)
        if k > distinct:
            raise ValueError(f"n_components={k} is more than the number of distinct rows ({distinct}) of the data")

    # ------------------------------------------------------------------ starting values
    def _init_values(self, model: FiniteMixtureModel) -> Iterator[tuple[str, str, Any]]:
        """(group, name in messages, value) of each parameter group given a starting value."""
        for group, attr in self._init_groups.items():
            value = getattr(self, attr, None)
            if value is not None:
                yield group, attr, value

    def _init_params(self, model: FiniteMixtureModel, data: Any) -> dict | None:
        k = model.n_components
        given = {}
        if self.weights_init is not None:
            w = check_probabilities(self.weights_init, "weights_init", simplex=True)
            if w.shape != (k,):
                raise ValueError(f"weights_init must have shape ({k},), got {w.shape}")
            given["weights"] = w
        for group, label, value in self._init_values(model):
            given[group] = self._check_init(group, label, value, model, data)
        return {g: asarray_like(v, data[0]) for g, v in given.items()} or None

    def _check_init(self, group: str, label: str, value: Any, model: FiniteMixtureModel, data: Any) -> np.ndarray:
        constraint = model.param_spec[group]
        if isinstance(constraint, (UnitInterval, Simplex)):
            arr = check_probabilities(value, label, simplex=isinstance(constraint, Simplex))
        else:
            try:
                arr = np.asarray(value, dtype=float)
            except (TypeError, ValueError):
                raise ValueError(f"{label} must be numeric, got {value!r}") from None
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{label} contains NaN or inf")
            if isinstance(constraint, Positive) and np.any(arr <= 0):
                raise ValueError(f"{label} must be positive, got {arr.tolist()}")
            if isinstance(constraint, SymmetricPositiveDefinite) and not is_symmetric_positive_definite(arr):
                raise ValueError(f"{label} must be symmetric positive definite matrices")
        expected = model.family.param_shape(group, model.n_components, data[:-1])
        if arr.shape != expected:
            raise ValueError(f"{label} must have shape {expected}, got {arr.shape}")
        return arr

    # ------------------------------------------------------------------ results
    def _store(self, model: FiniteMixtureModel, data: Any, result: Any) -> None:
        _clip_rounding(result.params, model.param_spec)
        super()._store(model, data, result)

    def _draw(self, n: int, rng: np.random.Generator, inputs: dict) -> Any:
        public, labels = self.model_.sample_public(self.params_, n, rng, **inputs)
        return public[0], labels

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        for name, value in self._input_tags.items():
            setattr(tags.input_tags, name, value)
        return tags


# =========================================================================== any family
class FiniteMixture(FamilyMixture):
    """Finite mixture of any family, chosen by name.

    ``n_components`` comes first, as in every emkit mixture: ``FiniteMixture(2, "poisson")``
    or ``FiniteMixture(2, family="poisson")``. A family's named inputs (the binomial's
    ``trials``) are passed by name: ``FiniteMixture(2, "binomial").fit(successes, trials=10)``.

{settings}
    """

    n_components: int
    family: str | Family
    weights_init: Any
    params_init: dict[str, Any] | None
    family_options: dict[str, Any] | None

    _settings = declare(
        _components(1),
        Setting("family", "normal", None, '``"normal"``, ``"multivariate_normal"``, ``"poisson"``, '
                '``"exponential"``, ``"bernoulli"``, ``"categorical"``, ``"binomial"``, or a Family '
                'instance.', positional=True),
        WEIGHTS_INIT,
        Setting("params_init", None, any_of(None, instance_of(dict, describe="a dict")),
                'Starting values of the family\'s parameter groups (e.g. ``{"rates": [1, 3]}``).'),
        Setting("family_options", None, any_of(None, instance_of(dict, describe="a dict")),
                'Keyword arguments of the family\'s constructor (e.g. ``{"reg_covar": 1e-6}``).'))

    def _validate_settings(self) -> None:
        if isinstance(self.n_components, (str, Family)):  # the old order, (family, K)
            k = self.family if isinstance(self.family, numbers.Integral) else 1
            raise ValueError(f"FiniteMixture takes n_components first and the family second: "
                             f"FiniteMixture({k}, family={self.n_components!r}), not "
                             f"FiniteMixture({self.n_components!r}, ...)")
        super()._validate_settings()

    def _make_family(self) -> Family:
        return get_family(self.family, **(self.family_options or {}))

    def _init_values(self, model: FiniteMixtureModel) -> Iterator[tuple[str, str, Any]]:
        init = self.params_init or {}
        unknown = set(init) - set(model.family.param_spec)
        if unknown:
            raise ValueError(f"params_init has unknown group(s) {sorted(unknown)}; "
                             f"{model.family.name} has {list(model.family.param_spec)}")
        for group, value in init.items():
            yield group, f"params_init[{group!r}]", value


# =========================================================================== the named faces
class PoissonMixture(FamilyMixture):
    """Mixture of Poisson distributions for counts.

    ``fit(counts, sample_weight=None)``: counts (n,) or (n, d) of non-negative whole numbers
    (columns independent given the component); ``sample_weight`` for grouped data (e.g. the
    number of days with each count).

{settings}

    Attributes
    ----------
    weights_ : ndarray of shape (K,)
        Mixing weights.
    rates_ : ndarray of shape (K,) or (K, d)
        The mean count of each component (and column).
    """

    n_components: int
    rates_init: Any
    weights_init: Any

    _family_class = Poisson
    _init_groups = {"rates": "rates_init"}
    _input_tags = {"positive_only": True, "categorical": True}  # whole numbers (counts)
    _settings = declare(_components(1), _init("rates_init", "Starting rates (K,) or (K, d)."), WEIGHTS_INIT)


class ExponentialMixture(FamilyMixture):
    """Mixture of exponential distributions for non-negative data.

{settings}

    Attributes
    ----------
    weights_ : ndarray of shape (K,)
        Mixing weights.
    rates_ : ndarray of shape (K,) or (K, d)
        The rate (1 / mean) of each component (and column).
    """

    n_components: int
    rates_init: Any
    weights_init: Any

    _family_class = ExponentialFamily
    _init_groups = {"rates": "rates_init"}
    _input_tags = {"positive_only": True}
    _settings = declare(_components(1), _init("rates_init", "Starting rates (K,) or (K, d)."), WEIGHTS_INIT)


class NormalMixture(FamilyMixture):
    """Mixture of normal distributions; for 2-D X the columns are independent given the
    component (scikit-learn's ``covariance_type="diag"``).

{settings}

    Attributes
    ----------
    weights_ : ndarray of shape (K,)
        Mixing weights.
    means_, covariances_ : ndarray of shape (K,) or (K, d)
        Mean and variance of each component (and column): ``covariances_`` as scikit-learn's
        ``GaussianMixture(covariance_type="diag")`` names them, and as every emkit Gaussian
        mixture does. ``variances_`` is the same array under its old name; the parameter group
        (in ``params_`` and ``fixed``) is ``"variances"``.
    """

    n_components: int
    means_init: Any
    covariances_init: Any
    weights_init: Any
    reg_covar: float

    weights_: Any
    means_: Any
    covariances_: Any

    _family_class = Normal
    _family_options = ("reg_covar",)
    _init_groups = {"means": "means_init", "variances": "covariances_init"}
    _settings = declare(_components(1), _init("means_init", "Starting means (K,) or (K, d)."),
                        _init("covariances_init", "Starting variances (K,) or (K, d)."), WEIGHTS_INIT, REG_COVAR)

    def _publish(self, result: Any) -> None:
        params = result.params
        self.weights_ = params["weights"]
        self.means_ = params["means"]
        self.covariances_ = params["variances"]

    @property
    def variances_(self) -> Any:
        """``covariances_`` under its old name (the variance of each component and column)."""
        return self.covariances_

    @variances_.setter
    def variances_(self, value: Any) -> None:  # a model file written before the rename
        self.covariances_ = value


class MultivariateNormalMixture(FamilyMixture):
    """Mixture of multivariate normal distributions with full covariances
    (a direct implementation; :class:`emkit.GaussianMixture` is the optimised one).

{settings}

    Attributes
    ----------
    weights_, means_, covariances_ : ndarray of shape (K,), (K, d), (K, d, d)
        Mixing weights, means and covariance matrices.
    """

    n_components: int
    means_init: Any
    covariances_init: Any
    weights_init: Any
    reg_covar: float

    _family_class = MultivariateNormal
    _family_options = ("reg_covar",)
    _init_groups = {"means": "means_init", "covariances": "covariances_init"}
    _settings = declare(_components(1), _init("means_init", "Starting means (K, d)."),
                        _init("covariances_init", "Starting covariance matrices (K, d, d)."), WEIGHTS_INIT,
                        REG_COVAR)


class BernoulliMixture(FamilyMixture):
    """Mixture of independent Bernoulli vectors (latent class analysis).

    ``fit(X)``: X (n, d) of 0/1 answers.

{settings}

    Attributes
    ----------
    weights_ : ndarray of shape (K,)
        Mixing weights.
    probs_ : ndarray of shape (K, d)
        Probability of a 1 per component and item.
    """

    n_components: int
    probs_init: Any
    weights_init: Any
    binarize: float | None

    _family_class = Bernoulli
    _family_options = ("binarize",)
    _init_groups = {"probs": "probs_init"}
    _settings = declare(_components(1), _init("probs_init", "Starting probabilities of a 1 (K, d)."),
                        WEIGHTS_INIT,
                        Setting("binarize", None, any_of(None, interval(numbers.Real)),
                                "Threshold: values above it count as 1, the others as 0 (as scikit-learn's "
                                "``BernoulliNB``). None (default): X must hold only 0 and 1."))


class CategoricalMixture(FamilyMixture):
    """Mixture of independent categorical vectors (latent class analysis with
    polytomous items).

    ``fit(X)``: X (n,) or (n, d) of integer codes 0, 1, ..., C_j - 1 per column j.

{settings}

    Attributes
    ----------
    weights_ : ndarray of shape (K,)
        Mixing weights.
    probs_ : ndarray of shape (K, d, C)
        Probability of each category per component and column.
    n_categories_ : list of int
        Categories per column.
    """

    n_components: int
    n_categories: int | Sequence[int] | None
    probs_init: Any
    weights_init: Any

    n_categories_: list[int]

    _family_class = Categorical
    _init_groups = {"probs": "probs_init"}
    _input_tags = {"positive_only": True, "categorical": True}  # integer codes
    _settings = declare(_components(1),
                        Setting("n_categories", None, None,
                                "Categories per column (one int for all); None: the largest code + 1 of "
                                "each column in the data given to ``fit``."),
                        _init("probs_init", "Starting probabilities (K, d, C)."), WEIGHTS_INIT)

    def _before_fit(self, X: Any) -> None:
        """The categories of each column, from ``n_categories`` or the data (``n_categories_``)."""
        if self.n_categories is not None:
            c: Any = self.n_categories  # one int or one per column (np.ndim tells which)
            sizes = [int(c)] if np.ndim(c) == 0 else [int(v) for v in c]
            if any(s < 1 for s in sizes):
                raise ValueError(f"n_categories must be positive integers, got {c!r}")
        else:
            codes = as_counts(X, "X", ndim=(1, 2))
            sizes = [int(v) + 1 for v in np.atleast_1d(to_numpy(get_namespace(codes).max(codes, axis=0)))]
        self.n_categories_ = sizes

    def _make_family(self) -> Family:
        sizes = getattr(self, "n_categories_", None)
        if sizes is None:
            raise AttributeError("CategoricalMixture: call fit() first")
        return Categorical(sizes[0] if len(sizes) == 1 else list(sizes))


class BinomialMixture(FamilyMixture):
    """Mixture of binomial distributions: the two-coin model (which coin was tossed in each
    run is hidden; any number of tosses per run).

    ``fit(successes, trials, sample_weight=None)``: ``trials`` is one number for all runs or
    one per run; every other method takes ``trials`` after the successes too (default: the
    fitted number, when it was one number).

{settings}

    Attributes
    ----------
    weights_, probs_ : ndarray of shape (K,)
        Mixing weights and success probabilities.
    trials_ : float or None
        The number of trials of the fit when it was one number for all runs.
    """

    n_components: int
    probs_init: Any
    weights_init: Any

    _family_class = Binomial
    _init_groups = {"probs": "probs_init"}
    _settings = declare(_components(1),
                        _init("probs_init", "Starting success probabilities (K,)."),
                        Setting("weights_init", None, None, "Starting mixing weights (K,); hold them with "
                                                            '``fixed=["weights"]``.'))
