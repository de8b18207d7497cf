"""What every mixture-type estimator shares: fitting, prediction, scores and information criteria.

Subclasses (the family mixtures of :mod:`emkit.estimators.mixture`, ``GaussianMixture``, or a
user's) give ``_make_model``, ``_make_data(X, sample_weight=None, fitting=..., **inputs)`` and
``_init_params``; the model must be a :class:`~emkit.models.base.DiscreteLatentModel` with
``n_parameters(params, fixed)`` and ``sample(params, n, rng) -> (data, labels)``.

Named inputs
    Some families need more than X per row: a binomial run has its number of ``trials``. An
    estimator lists them in ``_inputs`` (name -> description); every data method (``fit``,
    ``partial_fit``, ``fit_predict``, ``predict``, ``predict_proba``, ``score``,
    ``score_samples``, ``bic``, ``aic``, ``icl``, ``sample``) then takes them right after its
    first argument (in place of scikit-learn's ignored ``y``), by position or by name, and
    passes them to ``_make_data``. An input given as one number at ``fit`` is remembered
    (``<name>_``) and is the default afterwards.
"""

from __future__ import annotations

import numbers

import functools
import inspect
from typing import TYPE_CHECKING, Any, Callable, cast

import numpy as np

from emkit.core.arrays import device_of, get_namespace, to_numpy
from emkit.core.validation import check_fixed_groups, check_random_state
from emkit.estimators.base import EMEstimator
from emkit.models.base import logsumexp_rows

if TYPE_CHECKING:  # typing.Self is Python 3.11+; emkit supports 3.10
    from typing import Self

#: the methods that take the estimator's named inputs after their first argument
DATA_METHODS = ("fit", "partial_fit", "fit_predict", "score_samples", "score", "predict_proba",
                "predict", "bic", "aic", "icl", "sample")


def _with_inputs(function: Callable[..., Any], inputs: tuple[str, ...]) -> Callable[..., Any]:
    """``function`` (written as ``f(self, first, y=None, ..., **inputs)``) as a method whose
    signature has the named ``inputs`` right after ``first``, in place of ``y``."""
    signature = inspect.signature(function)
    params = [p for p in signature.parameters.values()
              if p.name != "y" and not (p.kind is p.VAR_KEYWORD and p.name == "inputs")]
    named = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None) for n in inputs]
    signature = signature.replace(parameters=params[:2] + named + params[2:])
    var_keyword = next((p.name for p in params if p.kind is p.VAR_KEYWORD), None)

    @functools.wraps(function)
    def method(*args, **kwargs):
        arguments = dict(signature.bind(*args, **kwargs).arguments)
        extra = arguments.pop(var_keyword, {}) if var_keyword else {}
        return function(**arguments, **extra)

    cast(Any, method).__signature__ = signature
    cast(Any, method)._takes_inputs_of = function
    return method


class MixtureEstimator(EMEstimator):
    """Base class of finite-mixture estimators (scikit-learn's mixture API on the EM engine)."""

    #: named data arrays besides X and ``sample_weight`` -> what they are (``{"trials": ...}``)
    _inputs: dict[str, str] = {}

    #: a DiscreteLatentModel with ``log_joint``, ``n_parameters`` and ``sample`` (see the
    #: module docstring); Any, as each estimator has its own model class
    model_: Any

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in DATA_METHODS:
            if name in cls.__dict__:  # the class writes this method itself
                continue
            inherited = getattr(cls, name)
            function = getattr(inherited, "_takes_inputs_of", inherited)
            if cls._inputs:
                setattr(cls, name, _with_inputs(function, tuple(cls._inputs)))
            elif function is not inherited:  # a parent had inputs; this class has none
                setattr(cls, name, function)

    # ------------------------------------------------------------- hooks
    def _input_fields(self, fitting: bool) -> dict[str, str]:
        """The named inputs of the data (default: the class's ``_inputs``)."""
        return dict(type(self)._inputs)

    def _before_fit(self, X: Any) -> None:
        """Fitted attributes read from the training data before the model is built (e.g. the
        categories of a categorical mixture); nothing by default."""

    def _draw(self, n: int, rng: np.random.Generator, inputs: dict) -> Any:
        """``(X, labels)`` drawn from the fitted model."""
        return self.model_.sample(self.params_, n, rng, **inputs)

    def _given_inputs(self, given: dict, fitting: bool) -> dict:
        """The named inputs: those given, else (after a fit) the one value the fit used for
        every row; other keywords are passed on unchanged (``_make_data`` reports them)."""
        given = dict(given)
        out = {}
        for name, description in self._input_fields(fitting).items():
            value = given.pop(name, None)
            if value is None and not fitting:
                value = getattr(self, name + "_", None)
                if value is None:
                    raise ValueError(f"{name} is required: {description} (the fit had one per row, "
                                     f"not one number for all)")
            if value is None:
                raise ValueError(f"{name} is required: {description} (or one number for all)")
            if np.ndim(value) == 0 and not hasattr(value, "shape"):  # one number for every row
                if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, str)):
                    raise ValueError(f"{name} must be a number or one per row, got {value!r}")
                try:
                    value = float(value)
                except ValueError:
                    raise ValueError(f"{name} must be a number or one per row, got {value!r}") from None
            out[name] = value
        return {**out, **given}

    def _remember_inputs(self, inputs: dict, first: bool = True) -> None:
        """``<name>_``: the value of each named input when it was one number for all rows."""
        for name in self._input_fields(fitting=False):
            if first or not hasattr(self, name + "_"):
                value: Any = inputs.get(name)
                setattr(self, name + "_", value if np.ndim(value) == 0 else None)

    # ------------------------------------------------------------- fitting
    def fit(self, X: Any, y: Any = None, sample_weight: Any = None, **inputs: Any) -> Self:
        """Fit by EM to the rows of ``X`` (weighted by ``sample_weight``; the estimator's named
        inputs, such as a binomial's ``trials``, follow X). ``y`` is ignored (scikit-learn's
        convention)."""
        self._validate_settings()
        self._check_feature_names(X, reset=True)
        self._before_fit(X)
        inputs = self._given_inputs(inputs, fitting=True)
        data = self._make_data(X, sample_weight=sample_weight, **inputs)
        model = self._make_model()  # after the data: it may depend on what fit's data is like
        self._store(model, data, self._run_em(model, data))
        self._remember_inputs(inputs)
        return self

    def partial_fit(self, X: Any, y: Any = None, sample_weight: Any = None,  # type: ignore[override]
                    **options: Any) -> Self:  # scikit-learn's (X, y, sample_weight), not the base's *args
        """Update the fit with one batch of rows (online EM, :mod:`emkit.online`); ``y`` is
        ignored; other keywords (``step_decay``, ``step_offset``) go to the online update."""
        first = not hasattr(self, "result_")
        if first:
            self._before_fit(X)
        options = self._given_inputs(options, fitting=first)
        super().partial_fit(X, sample_weight=sample_weight, **options)
        self._remember_inputs(options, first=False)
        return self

    def _online_data(self, X: Any, sample_weight: Any = None, **inputs: Any) -> Any:
        """Data of one online batch: checked against the fit's features once fitted."""
        return self._make_data(X, sample_weight=sample_weight, fitting=not hasattr(self, "result_"), **inputs)

    def fit_predict(self, X: Any, y: Any = None, sample_weight: Any = None, **inputs: Any) -> Any:
        """``fit`` then ``predict`` on the same rows."""
        return self.fit(X, sample_weight=sample_weight, **inputs).predict(X, **inputs)

    # ------------------------------------------------------------- prediction
    def _log_joint(self, X: Any, inputs: dict) -> Any:
        self._check_fitted()
        self._check_feature_names(X, reset=False)
        data = self._make_data(X, fitting=False, **self._given_inputs(inputs, fitting=False))
        return self.model_.log_joint(data, self.params_)

    def score_samples(self, X: Any, **inputs: Any) -> Any:
        """Log-likelihood of each row (marginal over the components)."""
        lj = self._log_joint(X, inputs)
        return logsumexp_rows(lj, get_namespace(lj))

    def score(self, X: Any, y: Any = None, sample_weight: Any = None, **inputs: Any) -> float:
        """Mean log-likelihood per row (weighted by ``sample_weight`` when given)."""
        ll, n = self._total_loglik(X, sample_weight, inputs)
        return ll / n

    def predict_proba(self, X: Any, **inputs: Any) -> Any:
        """Posterior probability of each component for each row, shape (n_rows, n_components)."""
        lj = self._log_joint(X, inputs)
        xp = get_namespace(lj)
        return xp.exp(lj - logsumexp_rows(lj, xp)[:, None])

    def predict(self, X: Any, **inputs: Any) -> Any:
        """Most probable component of each row."""
        lj = self._log_joint(X, inputs)
        return get_namespace(lj).argmax(lj, axis=1)

    def sample(self, n_samples: int = 1, random_state: Any = None, **inputs: Any) -> tuple[Any, Any]:
        """Draw from the fitted generative process: a component, then a value from it.

        Returns ``(X, labels)``.
        """
        self._check_fitted()
        if not (isinstance(n_samples, (int, np.integer)) and n_samples >= 1):
            raise ValueError(f"Invalid value for 'n_samples': {n_samples!r} . The sampling requires at least one "
                             f"sample (n_samples must be a positive integer).")
        inputs = self._given_inputs(inputs, fitting=False)
        rng = check_random_state(self.random_state if random_state is None else random_state)
        x, labels = self._draw(int(n_samples), rng, inputs)
        first = x[0] if isinstance(x, tuple) else x  # a family with inputs draws (X, *inputs)
        xp = get_namespace(first)
        if xp is not np and get_namespace(labels) is np:  # labels in the samples' library and device
            labels = xp.asarray(np.asarray(labels), device=device_of(first))
        return x, labels

    # ------------------------------------------------------------- information criteria
    def _n_parameters(self) -> int:
        """Free parameters of the fitted model, not counting groups held fixed."""
        model = self.model_
        fixed = check_fixed_groups(getattr(self, "fixed", None), model.param_spec, model.display_name)
        return int(model.n_parameters(self.params_, fixed=fixed))

    def _total_loglik(self, X: Any, sample_weight: Any, inputs: dict) -> tuple[float, float]:
        ll = to_numpy(self.score_samples(X, **inputs))
        if sample_weight is None:
            return float(np.sum(ll)), float(len(ll))
        w = np.asarray(sample_weight, dtype=float)
        return float(np.sum(w * ll)), float(np.sum(w))

    def criteria(self, X: Any, sample_weight: Any = None, **inputs: Any) -> dict:
        """The log-likelihood of ``X`` and the criteria of :meth:`bic`, :meth:`aic` and
        :meth:`icl` from one pass over the rows (model selection records all of them).

        Returns
        -------
        dict
            ``loglik`` (weighted by ``sample_weight`` when given), ``n_parameters``, ``bic``,
            ``aic`` and ``icl`` (lower is better).
        """
        return self._criteria_of(self._log_joint(X, inputs), sample_weight)

    def _criteria_of(self, lj: Any, sample_weight: Any = None, row_ll: Any = None) -> dict:
        """:meth:`criteria` from the rows' log joint densities ``lj`` (n, K) (and their
        log-sum-exp over the components ``row_ll``, when the caller has it)."""
        xp = get_namespace(lj)
        if row_ll is None:
            row_ll = logsumexp_rows(lj, xp)
        # -log max_k p(k | x_i) = log p(x_i) - max_k log p(x_i, k): the ICL's classification
        # cost, at least 0 and at most -log(1e-300) (a row no component explains)
        top = np.asarray(to_numpy(xp.max(lj, axis=1)), dtype=float)
        row_ll = np.asarray(to_numpy(row_ll), dtype=float)
        cost = np.clip(row_ll - top, 0.0, -np.log(1e-300))
        w = np.ones(len(row_ll)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        ll, n, p = float(np.sum(w * row_ll)), float(np.sum(w)), self._n_parameters()
        bic = -2.0 * ll + p * np.log(n)
        return {"loglik": ll, "n_parameters": p, "bic": float(bic), "aic": -2.0 * ll + 2.0 * p,
                "icl": float(bic + 2.0 * float(np.sum(w * cost)))}

    def bic(self, X: Any, sample_weight: Any = None, **inputs: Any) -> float:
        """Bayesian information criterion, -2 log L + p log n (lower is better; this is
        scikit-learn's sign, the opposite of R mclust's)."""
        return self.criteria(X, sample_weight, **inputs)["bic"]

    def aic(self, X: Any, sample_weight: Any = None, **inputs: Any) -> float:
        """Akaike information criterion, -2 log L + 2 p (lower is better)."""
        return self.criteria(X, sample_weight, **inputs)["aic"]

    def icl(self, X: Any, sample_weight: Any = None, **inputs: Any) -> float:
        """Integrated completed likelihood (Biernacki, Celeux & Govaert 2000) in BIC form, as
        R mclust's ``icl()``: BIC - 2 * sum_i log max_k p(k | x_i), the BIC plus twice the
        classification cost of each row's most probable component (lower is better; mclust's
        ICL is the negative)."""
        return self.criteria(X, sample_weight, **inputs)["icl"]
