"""Finite mixtures of one distribution family, and their scikit-learn-style estimators.

:class:`FiniteMixtureModel` is the model (mixing weights plus a :mod:`~emkit.models.families`
family); the engine runs EM on it. The estimators

========================== ===================== ==============================================
estimator                  family                fitted component parameters
========================== ===================== ==============================================
BinomialMixture            Binomial              ``probs_`` (K,)
PoissonMixture             Poisson               ``rates_`` (K,) or (K, d)
ExponentialMixture         Exponential           ``rates_`` (K,) or (K, d)
NormalMixture              Normal                ``means_``, ``variances_`` (K,) or (K, d)
MultivariateNormalMixture  MultivariateNormal    ``means_`` (K, d), ``covariances_`` (K, d, d)
BernoulliMixture           Bernoulli             ``probs_`` (K, d)
CategoricalMixture         Categorical           ``probs_`` (K, d, C)
FiniteMixture              any (by name)         the family's groups
========================== ===================== ==============================================

all fit ``weights_`` (K,) too, take the engine settings as constructor arguments and share
``predict``, ``predict_proba``, ``score``, ``score_samples``, ``sample``, ``bic``, ``aic`` and
``icl`` with :class:`~emkit.estimators.mixture_base.MixtureEstimator`.

Data of the model: the family's row-aligned arrays followed by the row weights
(``sample_weight``, or None).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from emkit.core.arrays import asarray_like, get_namespace, host_rows, is_dask, to_numpy
from emkit.core.validation import as_array, as_counts, check_n_components, check_probabilities, check_sample_weight
from emkit.core.validation import check_random_state
from emkit.models.base import DiscreteLatentModel
from emkit.core.params import Simplex, SymmetricPositiveDefinite, UnitInterval, Positive
from emkit.estimators.mixture_base import MixtureEstimator
from emkit.models.families import (Bernoulli, Binomial, Categorical, Exponential, Family, MultivariateNormal,
                       Normal, Poisson, get_family, safe_log)

__all__ = ["FiniteMixtureModel", "FiniteMixture", "BinomialMixture", "PoissonMixture",
           "ExponentialMixture", "NormalMixture", "BernoulliMixture", "CategoricalMixture",
           "MultivariateNormalMixture", "MixtureEstimator"]

#: rows of a large data set used to seed the initialisation
INIT_ROWS = 2000
#: default rows per chunk of the statistics pass
CHUNK_ROWS = 65536
#: share of each row's responsibility spread evenly over the components at initialisation,
#: so that no starting probability is exactly 0 or 1
INIT_SMOOTHING = 0.1


# =========================================================================== the model
class FiniteMixtureModel(DiscreteLatentModel):
    """A K-component mixture of one family: p(x) = sum_k weights[k] f(x | component k).

    Parameters
    ----------
    family : Family
        The component distribution (see :mod:`emkit.models.families`).
    n_components : int
        K.
    name : str, optional
        Name used in messages (default ``"<Family>Mixture"``).
    """

    def __init__(self, family: Family, n_components: int, name: str | None = None):
        self.family = family
        self.n_components = int(n_components)
        self.param_spec = {"weights": Simplex(), **family.param_spec}
        self.name = name or f"{family.name}Mixture"

    # ------------------------------------------------------------------ rows
    def row_weights(self, data):
        return data[-1]

    def n_rows(self, data) -> int:
        return int(data[0].shape[0])

    def chunk_rows(self, data) -> int | None:
        """Rows per chunk of the E-step: bounds the (rows x K x d) temporaries of the
        multivariate normal and keeps every family's memory linear in K, not in n."""
        return CHUNK_ROWS

    # ------------------------------------------------------------------ maths
    def log_joint(self, data, params):
        xp = get_namespace(data[0])
        log_w = safe_log(params["weights"], xp)
        return self.family.log_density(data[:-1], params) + log_w[None, :]

    def stats_from_responsibilities(self, data, resp):
        xp = get_namespace(resp)
        return {"n": xp.sum(resp, axis=0), **self.family.stats(data[:-1], resp)}

    def m_step(self, stats, params):
        n = stats["n"]
        xp = get_namespace(n)
        new = {"weights": n / xp.sum(n)}
        with np.errstate(divide="ignore", invalid="ignore"):  # empty components are handled below
            new.update(self.family.m_step(stats, params))
        empty = ~(n > 0)
        if params is not None and bool(to_numpy(xp.any(empty))):
            # A component with no responsibility has no estimate: keep its parameters.
            for group in self.family.param_spec:
                old, value = params[group], new[group]
                mask = xp.reshape(empty, (-1,) + (1,) * (value.ndim - 1))
                new[group] = xp.where(mask, xp.asarray(old, dtype=value.dtype), value)
        return new

    def complete_loglik(self, stats, params):
        """E[log p(x, z | params)] given statistics computed at some params' (exact, with the
        data-only constants)."""
        xp = get_namespace(stats["n"])
        log_w = safe_log(xp.asarray(params["weights"], dtype=stats["n"].dtype), xp)
        return float(to_numpy(xp.sum(stats["n"] * log_w))) + float(self.family.complete_loglik(stats, params))

    def n_parameters(self, params, fixed: Sequence[str] = ()) -> int:
        """Free parameters: K - 1 weights plus the family's (groups in ``fixed`` excluded)."""
        n_weights = 0 if "weights" in fixed else self.n_components - 1
        return int(n_weights + self.family.n_parameters(params, fixed))

    # ------------------------------------------------------------------ initialisation
    def initialize(self, data, rng):
        """k-means++ seeding and a few Lloyd steps on (a sample of) the rows, then one M-step
        from the resulting smoothed hard assignment."""
        fam_data, weights = data[:-1], data[-1]
        seed = int(rng.integers(2**62))
        host = tuple(np.asarray(host_rows(a, INIT_ROWS, np.random.default_rng(seed)), dtype=float)
                     for a in fam_data)
        host_w = (np.ones(host[0].shape[0]) if weights is None
                  else np.asarray(host_rows(weights, INIT_ROWS, np.random.default_rng(seed)), dtype=float))
        labels = _seed_labels(self.family.features(host), host_w, self.n_components, rng)
        k = self.n_components
        resp = np.full((len(labels), k), INIT_SMOOTHING / k)
        resp[np.arange(len(labels)), labels] += 1.0 - INIT_SMOOTHING
        resp *= host_w[:, None]
        stats = self.stats_from_responsibilities(host + (None,), resp)
        params = self.m_step(stats, None)
        like = data[0]
        if is_dask(like):
            return {g: np.asarray(v, dtype=like.dtype) for g, v in params.items()}
        return {g: asarray_like(v, like) for g, v in params.items()}

    # ------------------------------------------------------------------ sampling
    def sample(self, params, n: int, rng, **extra):
        """Draw ``n`` rows: ``(data tuple in this model's layout, component labels)``."""
        public, labels = self.sample_public(params, n, rng, **extra)
        data = self.family.make_data(*public[:1], **_extra_from_public(self.family, public))
        return data + (None,), labels

    def sample_public(self, params, n: int, rng, **extra):
        """Draw ``n`` rows as the user passes them to ``fit``: ``(arrays, labels)``."""
        w = np.asarray(to_numpy(params["weights"]), dtype=float)
        labels = rng.choice(self.n_components, size=int(n), p=w / w.sum())
        host = {g: to_numpy(v) for g, v in params.items()}
        return self.family.sample(host, labels, rng, **extra), labels


def _extra_from_public(family: Family, public: tuple) -> dict:
    return {"trials": public[1]} if isinstance(family, Binomial) else {}


def _seed_labels(features: np.ndarray, weights: np.ndarray, k: int, rng: np.random.Generator,
                 n_lloyd: int = 5) -> np.ndarray:
    """Cluster labels from weighted k-means++ seeding and ``n_lloyd`` Lloyd iterations on
    standardised features."""
    f = np.asarray(features, dtype=float)
    scale = f.std(axis=0)
    f = (f - f.mean(axis=0)) / np.where(scale > 0, scale, 1.0)
    n = f.shape[0]
    w = np.clip(weights, 0.0, None)
    p = w / w.sum() if w.sum() > 0 else np.full(n, 1.0 / n)
    centers = [f[rng.choice(n, p=p)]]
    d2 = np.sum((f - centers[0]) ** 2, axis=1)
    for _ in range(1, k):
        mass = d2 * w
        probs = mass / mass.sum() if mass.sum() > 0 else p
        centers.append(f[rng.choice(n, p=probs)])
        d2 = np.minimum(d2, np.sum((f - centers[-1]) ** 2, axis=1))
    c = np.stack(centers)
    for _ in range(n_lloyd):
        labels = np.argmin(((f[:, None, :] - c[None]) ** 2).sum(axis=2), axis=1)
        for j in range(k):
            rows = (labels == j) & (w > 0)
            if rows.any():
                c[j] = np.average(f[rows], axis=0, weights=w[rows])
    return np.argmin(((f[:, None, :] - c[None]) ** 2).sum(axis=2), axis=1)


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


# =========================================================================== estimators
class _FamilyMixture(MixtureEstimator):
    """Shared machinery of the mixture estimators (not public).

    Subclasses define ``_family()`` and ``_init_groups`` (group name -> constructor
    attribute holding its starting values).
    """

    _init_groups: dict[str, str] = {}

    def _family(self) -> Family:
        raise NotImplementedError

    def _make_model(self) -> FiniteMixtureModel:
        k = check_n_components(self.n_components)
        return FiniteMixtureModel(self._family(), k, name=type(self).__name__)

    def _make_data(self, X, sample_weight=None, fitting: bool = True, **extra) -> tuple:
        family = self._family() if fitting or not hasattr(self, "model_") else self.model_.family
        x_ndim, n_features = _ndim_and_features(X)
        if not fitting and hasattr(self, "n_features_in_"):
            if getattr(self, "_fit_ndim", x_ndim) != x_ndim:
                raise ValueError(f"X has {x_ndim} dimension(s) but the fit used {self._fit_ndim}-D data. Reshape "
                                 f"your data: X.reshape(-1, 1) if it has a single feature, X.reshape(1, -1) if "
                                 f"it is a single row")
            if n_features != self.n_features_in_:
                raise ValueError(f"X has {n_features} features, but {type(self).__name__} is expecting "
                                 f"{self.n_features_in_} features as input")
        data = family.make_data(X, **extra)
        n = int(data[0].shape[0])
        try:
            w = check_sample_weight(sample_weight, n)
        except ValueError as exc:
            if "positive sum" in str(exc):
                raise ValueError("sample_weight must have a positive sum; all weights are zero") from None
            raise
        if w is not None and not is_dask(w) and not is_dask(data[0]):
            # same library, device and dtype as the data (float32 stays float32)
            w = asarray_like(to_numpy(w), data[0])
        if fitting:
            family.check_fit_data(data)
            self._fit_ndim = x_ndim
            k = check_n_components(self.n_components)
            if not any(is_dask(a) for a in data):
                distinct = _distinct_rows(data[:1] if not isinstance(family, Binomial) else data[:2])
                if k > distinct:
                    raise ValueError(f"n_components={k} is more than the number of distinct rows "
                                     f"({distinct}) of the data")
            self.n_features_in_ = n_features
        return data + (w,)

    def _init_params(self, model, data) -> dict | None:
        # Whole-number sample weights are counts of identical rows (grouped data such as
        # Hasselblad's days per number of deaths): stochastic EM then draws a component per
        # individual, not one per row. Fractional weights keep one draw per row.
        weights = data[-1]
        model.row_counts_are_integers = bool(
            weights is not None and not is_dask(weights)
            and np.all(np.asarray(to_numpy(weights)) == np.round(np.asarray(to_numpy(weights)))))
        k = model.n_components
        given = {}
        if getattr(self, "weights_init", None) is not None:
            w = check_probabilities(self.weights_init, "weights_init", simplex=True)
            if w.shape != (k,):
                raise ValueError(f"weights_init must have shape ({k},), got {w.shape}")
            given["weights"] = w
        for group, attr in self._init_groups.items():
            value = getattr(self, attr, None)
            if value is None:
                continue
            given[group] = self._check_init(group, attr, value, model, data)
        if not given:
            return None
        like = data[0]
        if is_dask(like):
            return {g: np.asarray(v, dtype=like.dtype) for g, v in given.items()}
        return {g: asarray_like(v, like) for g, v in given.items()}

    def _check_init(self, group: str, attr: str, value, model, data) -> np.ndarray:
        constraint = model.param_spec[group]
        if isinstance(constraint, UnitInterval):
            arr = check_probabilities(value, attr)
        elif isinstance(constraint, Simplex):
            arr = check_probabilities(value, attr, simplex=True)
        else:
            try:
                arr = np.asarray(value, dtype=float)
            except (TypeError, ValueError):
                raise ValueError(f"{attr} must be numeric, got {value!r}") from None
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{attr} contains NaN or inf")
            if isinstance(constraint, Positive) and np.any(arr <= 0):
                raise ValueError(f"{attr} must be positive, got {arr.tolist()}")
            if isinstance(constraint, SymmetricPositiveDefinite) and not constraint.is_valid(arr):
                raise ValueError(f"{attr} must be symmetric positive definite matrices")
        expected = self._expected_shape(group, model, data)
        if arr.shape != expected:
            raise ValueError(f"{attr} must have shape {expected}, got {arr.shape}")
        return arr

    def _expected_shape(self, group: str, model, data) -> tuple:
        k = model.n_components
        x = data[0]
        if isinstance(model.family, MultivariateNormal):
            d = int(x.shape[1])
            return (k, d, d) if group == "covariances" else (k, d)
        if isinstance(model.family, Categorical):
            return (k, model.family.n_features(data), model.family.width)
        return (k,) if x.ndim == 1 else (k, int(x.shape[1]))

    def _check_fitted(self) -> None:
        if not hasattr(self, "result_"):
            message = f"this {type(self).__name__} is not fitted yet; call fit() first"
            try:  # scikit-learn's error (a ValueError and AttributeError) when it is installed
                from sklearn.exceptions import NotFittedError
            except ImportError:  # pragma: no cover - scikit-learn is optional
                raise AttributeError(message) from None
            raise NotFittedError(message)

    def partial_fit(self, X, y=None, sample_weight=None, **online_options):
        """Update the fit with one batch of rows (online EM, :mod:`emkit.online`); ``y`` is
        ignored; ``online_options`` (``step_decay``, ``step_offset``) go to the online update."""
        from emkit.online import partial_fit
        return partial_fit(self, X, sample_weight=sample_weight, **online_options)

    def _online_data(self, X, sample_weight=None, **extra) -> tuple:
        """Data of one online batch: checked against the fit's features once fitted."""
        return self._make_data(X, sample_weight=sample_weight, fitting=not hasattr(self, "result_"), **extra)

    def sample(self, n_samples: int = 1, random_state=None):
        """Draw ``n_samples`` rows from the fitted mixture: ``(X, labels)``."""
        self._check_fitted()
        if not (isinstance(n_samples, (int, np.integer)) and n_samples >= 1):
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
        rng = check_random_state(self.random_state if random_state is None else random_state)
        public, labels = self.model_.sample_public(self.params_, int(n_samples), rng)
        return public[0], labels

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags


_ENGINE_DOC = """
    tol : float
        Tolerance of the stopping rule (see :func:`emkit.em`).
    stop : str
        Stopping rule: ``"loglik_rel"`` (default), ``"loglik"``, ``"loglik_mean"``,
        ``"params"`` or ``"params_maxabs"``.
    max_iter : int
        Largest number of EM iterations per restart.
    n_init : int
        Number of restarts; the one with the highest log-likelihood is kept.
    random_state : None, int or Generator
        Seeds the initialisation (and stochastic EM).
    fixed : sequence of str
        Parameter groups held at their starting value, e.g. ``["weights"]``.
    accelerate, algorithm, burn_in, check_monotone, chunk_size, callback, keep_history
        Passed to :func:`emkit.em`.
"""


def _doc(text: str) -> str:
    return text.replace("{engine}", _ENGINE_DOC.strip("\n"))


class FiniteMixture(_FamilyMixture):
    __doc__ = _doc("""Finite mixture of any family, chosen by name.

    Parameters
    ----------
    family : str or Family
        ``"normal"``, ``"multivariate_normal"``, ``"poisson"``, ``"exponential"``,
        ``"bernoulli"``, ``"categorical"``, ``"binomial"``, or a Family instance.
    n_components : int
        Number of components.
    weights_init : array-like, optional
        Starting mixing weights (K,), summing to 1.
    params_init : dict, optional
        Starting values of the family's parameter groups (e.g. ``{"rates": [1, 3]}``).
    family_options : dict, optional
        Keyword arguments of the family's constructor (e.g. ``{"reg_covar": 1e-6}``).
{engine}
    """)

    def __init__(self, family: Any = "normal", n_components: int = 1, *, weights_init=None,
                 params_init: dict | None = None, family_options: dict | None = None,
                 tol: float = 1e-10, stop: str = "loglik_rel", max_iter: int = 1000, n_init: int = 1,
                 random_state=None, fixed: Sequence[str] = (), accelerate=None, algorithm: str = "em",
                 burn_in: int | None = None, check_monotone: str = "warn", chunk_size: int | None = None,
                 callback: Callable | None = None, keep_history: bool = False):
        self._init_settings(locals())

    def _family(self) -> Family:
        return get_family(self.family, **(self.family_options or {}))

    def _init_params(self, model, data):
        given = super()._init_params(model, data) or {}
        init = self.params_init or {}
        unknown = set(init) - set(model.family.param_spec)
        if unknown:
            raise ValueError(f"params_init has unknown group(s) {sorted(unknown)}; "
                             f"{model.family.name} has {list(model.family.param_spec)}")
        for group, value in init.items():
            arr = self._check_init(group, f"params_init[{group!r}]", value, model, data)
            given[group] = np.asarray(arr, dtype=data[0].dtype) if is_dask(data[0]) else asarray_like(arr, data[0])
        return given or None


class PoissonMixture(_FamilyMixture):
    __doc__ = _doc("""Mixture of Poisson distributions for counts.

    ``fit(counts, sample_weight=None)``: counts (n,) or (n, d) of non-negative whole numbers
    (columns independent given the component); ``sample_weight`` for grouped data (e.g. the
    number of days with each count).

    Parameters
    ----------
    n_components : int
    rates_init, weights_init : array-like, optional
        Starting rates (K,) or (K, d) and mixing weights (K,).
{engine}

    Attributes
    ----------
    weights_, rates_ : ndarray
    """)

    _init_groups = {"rates": "rates_init"}

    def __init__(self, n_components: int = 1, *, rates_init=None, weights_init=None,
                 tol: float = 1e-10, stop: str = "loglik_rel", max_iter: int = 5000, n_init: int = 1,
                 random_state=None, fixed: Sequence[str] = (), accelerate=None, algorithm: str = "em",
                 burn_in: int | None = None, check_monotone: str = "warn", chunk_size: int | None = None,
                 callback: Callable | None = None, keep_history: bool = False):
        self._init_settings(locals())

    def _family(self) -> Family:
        return Poisson()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        tags.input_tags.categorical = True  # whole numbers (counts)
        return tags


class ExponentialMixture(_FamilyMixture):
    __doc__ = _doc("""Mixture of exponential distributions for non-negative data.

    Parameters
    ----------
    n_components : int
    rates_init, weights_init : array-like, optional
{engine}

    Attributes
    ----------
    weights_, rates_ : ndarray
    """)

    _init_groups = {"rates": "rates_init"}

    def __init__(self, n_components: int = 1, *, rates_init=None, weights_init=None,
                 tol: float = 1e-10, stop: str = "loglik_rel", max_iter: int = 5000, n_init: int = 1,
                 random_state=None, fixed: Sequence[str] = (), accelerate=None, algorithm: str = "em",
                 burn_in: int | None = None, check_monotone: str = "warn", chunk_size: int | None = None,
                 callback: Callable | None = None, keep_history: bool = False):
        self._init_settings(locals())

    def _family(self) -> Family:
        return Exponential()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        return tags


class NormalMixture(_FamilyMixture):
    __doc__ = _doc("""Mixture of normal distributions; for 2-D X the columns are independent
    given the component (scikit-learn's ``covariance_type="diag"``).

    Parameters
    ----------
    n_components : int
    means_init, variances_init, weights_init : array-like, optional
    reg_covar : float
        Added to the variances in every M-step.
{engine}

    Attributes
    ----------
    weights_ : (K,), means_, variances_ : (K,) or (K, d)
    """)

    _init_groups = {"means": "means_init", "variances": "variances_init"}

    def __init__(self, n_components: int = 1, *, means_init=None, variances_init=None, weights_init=None,
                 reg_covar: float = 1e-6, tol: float = 1e-10, stop: str = "loglik_rel",
                 max_iter: int = 1000, n_init: int = 1, random_state=None, fixed: Sequence[str] = (),
                 accelerate=None, algorithm: str = "em", burn_in: int | None = None,
                 check_monotone: str = "warn", chunk_size: int | None = None,
                 callback: Callable | None = None, keep_history: bool = False):
        self._init_settings(locals())

    def _family(self) -> Family:
        return Normal(reg_covar=self.reg_covar)


class MultivariateNormalMixture(_FamilyMixture):
    __doc__ = _doc("""Mixture of multivariate normal distributions with full covariances
    (a direct implementation; :class:`emkit.GaussianMixture` is the optimised one).

    Parameters
    ----------
    n_components : int
    means_init : (K, d), covariances_init : (K, d, d), weights_init : (K,), optional
    reg_covar : float
        Added to the diagonal of the covariances in every M-step.
{engine}

    Attributes
    ----------
    weights_, means_, covariances_ : ndarray
    """)

    _init_groups = {"means": "means_init", "covariances": "covariances_init"}

    def __init__(self, n_components: int = 1, *, means_init=None, covariances_init=None,
                 weights_init=None, reg_covar: float = 1e-6, tol: float = 1e-10,
                 stop: str = "loglik_rel", max_iter: int = 1000, n_init: int = 1, random_state=None,
                 fixed: Sequence[str] = (), accelerate=None, algorithm: str = "em",
                 burn_in: int | None = None, check_monotone: str = "warn", chunk_size: int | None = None,
                 callback: Callable | None = None, keep_history: bool = False):
        self._init_settings(locals())

    def _family(self) -> Family:
        return MultivariateNormal(reg_covar=self.reg_covar)


class BernoulliMixture(_FamilyMixture):
    __doc__ = _doc("""Mixture of independent Bernoulli vectors (latent class analysis).

    ``fit(X)``: X (n, d) of 0/1 answers.

    Parameters
    ----------
    n_components : int
    probs_init : (K, d), weights_init : (K,), optional
    binarize : float, optional
        Threshold: values above it count as 1, the others as 0 (as scikit-learn's
        ``BernoulliNB``). None (default): X must hold only 0 and 1.
{engine}

    Attributes
    ----------
    weights_ : (K,), probs_ : (K, d), probability of a 1 per component and item
    """)

    _init_groups = {"probs": "probs_init"}

    def __init__(self, n_components: int = 1, *, probs_init=None, weights_init=None,
                 binarize: float | None = None, tol: float = 1e-10, stop: str = "loglik_rel",
                 max_iter: int = 1000, n_init: int = 1, random_state=None, fixed: Sequence[str] = (),
                 accelerate=None, algorithm: str = "em", burn_in: int | None = None,
                 check_monotone: str = "warn", chunk_size: int | None = None,
                 callback: Callable | None = None, keep_history: bool = False):
        self._init_settings(locals())

    def _family(self) -> Family:
        return Bernoulli()

    def _make_data(self, X, sample_weight=None, fitting: bool = True, **extra) -> tuple:
        if self.binarize is not None:
            # as scikit-learn's BernoulliNB: values above the threshold are 1, the others 0
            x = as_array(X, "X", ndim=(1, 2))
            x = (x > self.binarize).astype(x.dtype) if is_dask(x) or get_namespace(x) is np \
                else get_namespace(x).astype(x > self.binarize, x.dtype)
            X = x
        return super()._make_data(X, sample_weight=sample_weight, fitting=fitting, **extra)


class CategoricalMixture(_FamilyMixture):
    __doc__ = _doc("""Mixture of independent categorical vectors (latent class analysis with
    polytomous items).

    ``fit(X)``: X (n,) or (n, d) of integer codes 0, 1, ..., C_j - 1 per column j.

    Parameters
    ----------
    n_components : int
    n_categories : int, sequence of int or None
        Categories per column (one int for all); None: the largest code + 1 of each column
        in the data given to ``fit``.
    probs_init : (K, d, C), weights_init : (K,), optional
{engine}

    Attributes
    ----------
    weights_ : (K,), probs_ : (K, d, C), n_categories_ : list of int
    """)

    _init_groups = {"probs": "probs_init"}

    def __init__(self, n_components: int = 1, *, n_categories=None, probs_init=None, weights_init=None,
                 tol: float = 1e-10, stop: str = "loglik_rel", max_iter: int = 1000, n_init: int = 1,
                 random_state=None, fixed: Sequence[str] = (), accelerate=None, algorithm: str = "em",
                 burn_in: int | None = None, check_monotone: str = "warn", chunk_size: int | None = None,
                 callback: Callable | None = None, keep_history: bool = False):
        self._init_settings(locals())

    def fit(self, X, y=None, sample_weight=None):
        """Fit by EM; the categories of each column come from ``n_categories`` or the data."""
        self.n_categories_ = self._categories_of(X)
        return super().fit(X, sample_weight=sample_weight)

    def partial_fit(self, X, y=None, sample_weight=None, **online_options):
        """Online EM update; the first batch (or ``n_categories``) fixes the categories."""
        if not hasattr(self, "result_"):
            self.n_categories_ = self._categories_of(X)
        return super().partial_fit(X, sample_weight=sample_weight, **online_options)

    def _categories_of(self, X) -> list[int]:
        if self.n_categories is not None:
            c = self.n_categories
            sizes = [int(c)] if np.ndim(c) == 0 else [int(v) for v in c]
            if any(s < 1 for s in sizes):
                raise ValueError(f"n_categories must be positive integers, got {c!r}")
            return sizes
        codes = as_counts(X, "X", ndim=(1, 2))
        if is_dask(codes):
            top = np.asarray(codes.max(axis=0).compute())
        else:
            top = to_numpy(get_namespace(codes).max(codes, axis=0))
        return [int(v) + 1 for v in np.atleast_1d(top)]

    def _family(self) -> Family:
        sizes = getattr(self, "n_categories_", None)
        if sizes is None:
            raise AttributeError("CategoricalMixture: call fit() first")
        return Categorical(sizes[0] if len(sizes) == 1 else list(sizes))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        tags.input_tags.categorical = True  # integer codes
        return tags


class BinomialMixture(_FamilyMixture):
    __doc__ = _doc("""Mixture of binomial distributions: the two-coin model (which coin was
    tossed in each run is hidden; any number of tosses per run).

    ``fit(successes, trials, sample_weight=None)``: ``trials`` is one number for all runs or
    one per run.

    Parameters
    ----------
    n_components : int
    probs_init : (K,), weights_init : (K,), optional
        Starting success probabilities and mixing weights; hold the weights with
        ``fixed=["weights"]``.
{engine}

    Attributes
    ----------
    weights_, probs_ : ndarray (K,)
    """)

    _init_groups = {"probs": "probs_init"}

    def __init__(self, n_components: int = 2, *, probs_init=None, weights_init=None,
                 tol: float = 1e-12, stop: str = "loglik_rel", max_iter: int = 1000, n_init: int = 1,
                 random_state=None, fixed: Sequence[str] = (), accelerate=None, algorithm: str = "em",
                 burn_in: int | None = None, check_monotone: str = "warn", chunk_size: int | None = None,
                 callback: Callable | None = None, keep_history: bool = False):
        self._init_settings(locals())

    def _family(self) -> Family:
        return Binomial()

    def fit(self, successes, trials=None, sample_weight=None):
        """Fit by EM to ``successes`` out of ``trials`` per run."""
        from emkit.estimators.base import EMEstimator
        trials = self._trials_or_default(trials, fitting=True)
        EMEstimator.fit(self, successes, trials=trials, sample_weight=sample_weight)
        self.trials_ = trials if np.ndim(trials) == 0 else None
        return self

    def partial_fit(self, successes, trials=None, sample_weight=None, **online_options):
        """Update the fit with one batch of runs (online EM, :mod:`emkit.online`)."""
        from emkit.online import partial_fit
        trials = self._trials_or_default(trials, fitting=not hasattr(self, "result_"))
        partial_fit(self, successes, trials=trials, sample_weight=sample_weight, **online_options)
        if not hasattr(self, "trials_"):
            self.trials_ = trials if np.ndim(trials) == 0 else None
        return self

    def _trials_or_default(self, trials, fitting: bool):
        if trials is None and not fitting:
            trials = getattr(self, "trials_", None)
            if trials is None:
                raise ValueError("trials is required (the fit used a different number of trials per run)")
        if trials is None:
            raise ValueError("trials is required: the number of trials of each run (or one number for all)")
        return float(trials) if np.ndim(trials) == 0 and not hasattr(trials, "shape") else trials

    def _log_joint(self, X, trials=None):
        self._check_fitted()
        data = self._make_data(X, fitting=False, trials=self._trials_or_default(trials, fitting=False))
        return self.model_.log_joint(data, self.params_), data

    def score_samples(self, successes, trials=None):
        """Log-likelihood of each run."""
        from emkit.models.base import logsumexp_rows
        lj, _ = self._log_joint(successes, trials)
        return logsumexp_rows(lj, get_namespace(lj))

    def score(self, successes, trials=None, sample_weight=None):
        """Mean log-likelihood per run (weighted by ``sample_weight`` when given)."""
        ll = to_numpy(self.score_samples(successes, trials))
        if sample_weight is None:
            return float(np.mean(ll))
        w = np.asarray(sample_weight, dtype=float)
        return float(np.sum(w * ll) / np.sum(w))

    def predict_proba(self, successes, trials=None):
        """Posterior probability of each coin (component) for each run."""
        from emkit.models.base import logsumexp_rows
        lj, _ = self._log_joint(successes, trials)
        xp = get_namespace(lj)
        return xp.exp(lj - logsumexp_rows(lj, xp)[:, None])

    def predict(self, successes, trials=None):
        """Most probable coin (component) of each run."""
        lj, _ = self._log_joint(successes, trials)
        return get_namespace(lj).argmax(lj, axis=1)

    def fit_predict(self, successes, trials=None, sample_weight=None):
        return self.fit(successes, trials, sample_weight=sample_weight).predict(successes, trials)

    def _total_loglik(self, X, sample_weight=None, trials=None):
        ll = to_numpy(self.score_samples(X, trials))
        w = np.ones_like(ll) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        return float(np.sum(w * ll)), float(np.sum(w))

    def bic(self, successes, trials=None, sample_weight=None) -> float:
        ll, n = self._total_loglik(successes, sample_weight, trials)
        return -2.0 * ll + self._n_parameters() * np.log(n)

    def aic(self, successes, trials=None, sample_weight=None) -> float:
        ll, _ = self._total_loglik(successes, sample_weight, trials)
        return -2.0 * ll + 2.0 * self._n_parameters()

    def icl(self, successes, trials=None, sample_weight=None) -> float:
        resp = np.clip(to_numpy(self.predict_proba(successes, trials)), 1e-300, 1.0)
        ent = -np.sum(resp * np.log(resp), axis=1)
        w = np.ones(len(ent)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        return self.bic(successes, trials, sample_weight) + 2.0 * float(np.sum(w * ent))

    def sample(self, n_samples: int = 1, trials=None, random_state=None):
        """Draw ``n_samples`` runs: ``(successes, labels)``; ``trials`` defaults to the
        fitted number of trials (when it was one number)."""
        self._check_fitted()
        if not (isinstance(n_samples, (int, np.integer)) and n_samples >= 1):
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
        trials = self._trials_or_default(trials, fitting=False)
        rng = check_random_state(self.random_state if random_state is None else random_state)
        public, labels = self.model_.sample_public(self.params_, int(n_samples), rng, trials=trials)
        return public[0], labels
