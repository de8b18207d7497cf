"""scikit-learn-style estimators on top of the engine.

An estimator keeps settings in its constructor, builds a :class:`~emkit.models.base.Model` in
``_make_model``, turns the user's arguments into the model's data tuple in ``_make_data``,
and lets :func:`emkit.em` do the rest. Fitted attributes end in ``_``:

``params_`` (dict), one attribute per parameter group (``weights_``, ``probs_``, ...),
``loglik_``, ``loglik_trace_``, ``n_iter_``, ``converged_``, ``n_em_evaluations_``,
``result_`` (the :class:`~emkit.engine.EMResult`).
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

import numpy as np

from emkit.engine import EMResult, em
from emkit.estimators.settings import ENGINE_SETTING_NAMES, Setting, build_init, settings_doc, validate_settings
from emkit.models.base import Model

def not_fitted_error(message: str) -> Exception:
    """scikit-learn's NotFittedError (a ValueError and an AttributeError) when scikit-learn is
    installed, so its tooling recognises it; otherwise an equivalent of emkit's own."""
    try:
        from sklearn.exceptions import NotFittedError
    except ImportError:  # pragma: no cover - scikit-learn is optional
        class NotFittedError(ValueError, AttributeError):
            pass
    return NotFittedError(message)


#: settings every estimator passes straight to :func:`emkit.em` (declared in
#: :mod:`emkit.estimators.settings`)
ENGINE_SETTINGS = ENGINE_SETTING_NAMES


@functools.lru_cache(maxsize=None)
def _param_names(init) -> tuple[str, ...]:
    """Constructor argument names, sorted (read once per class: inspect is slow)."""
    sig = inspect.signature(init)
    return tuple(sorted(p.name for p in sig.parameters.values()
                        if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)))


class EMEstimator:
    """Base class of the public estimators (fit / score / standard errors / save).

    A subclass declares its constructor arguments once, as ``_settings = declare(...)`` (see
    :mod:`emkit.estimators.settings`); its ``__init__`` is then written from them, and
    :meth:`_validate_settings` checks them when ``fit`` starts.
    """

    #: the constructor arguments, with defaults, constraints and documentation
    _settings: tuple[Setting, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "_settings" in cls.__dict__ and "__init__" not in cls.__dict__:
            cls.__init__ = build_init(cls._settings, cls.__qualname__)
        if cls.__doc__ and "{settings}" in cls.__doc__:
            cls.__doc__ = cls.__doc__.replace("{settings}", settings_doc(cls._settings))

    def _validate_settings(self) -> None:
        """Check every declared setting against its constraint (ValueError naming it)."""
        validate_settings(self, type(self)._settings)

    # ------------------------------------------------------------- sklearn parameter protocol
    @classmethod
    def _get_param_names(cls) -> list[str]:
        return list(_param_names(cls.__init__))

    def _init_settings(self, settings: dict[str, Any]) -> None:
        """Store every constructor argument unchanged (scikit-learn's convention); subclasses'
        ``__init__`` calls ``self._init_settings(locals())``."""
        for name in self._get_param_names():
            setattr(self, name, settings[name])

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params: Any) -> "EMEstimator":
        valid = self._get_param_names()
        for key, value in params.items():
            if key not in valid:
                raise ValueError(f"invalid parameter {key!r} for {type(self).__name__}; valid: {valid}")
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        defaults = {p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()}
        shown = []
        for k, v in self.get_params().items():
            d = defaults.get(k, inspect.Parameter.empty)
            try:
                same = v is d or (not isinstance(v, np.ndarray) and v == d)
            except Exception:
                same = False
            if not same:
                shown.append(f"{k}={v!r}")
        return f"{type(self).__name__}({', '.join(shown)})"

    def __sklearn_tags__(self):  # only called by scikit-learn, which is then importable
        from sklearn.base import BaseEstimator
        return BaseEstimator.__sklearn_tags__(self)

    # ------------------------------------------------------------- hooks for subclasses
    def _make_model(self) -> Model:
        raise NotImplementedError

    def _make_data(self, *args, **kwargs) -> tuple:
        raise NotImplementedError

    def _init_params(self, model: Model, data: tuple) -> dict | None:
        """Starting values from the ``*_init`` settings (None: the model's initialisation)."""
        return None

    def _engine_options(self) -> dict:
        return {k: getattr(self, k) for k in ENGINE_SETTINGS if hasattr(self, k)}

    def _publish(self, result: EMResult) -> None:
        """Copy the fitted parameters onto the estimator (``<group>_``); override to reshape."""
        for name, value in result.params.items():
            setattr(self, name + "_", value)

    # ------------------------------------------------------------- fitting
    def fit(self, *args, **kwargs) -> "EMEstimator":
        model = self._make_model()
        data = self._make_data(*args, **kwargs)
        options = self._engine_options()
        fixed = tuple(options.pop("fixed", ()) or ())
        result = em(model, data, init=self._init_params(model, data), fixed=fixed, **options)
        self._store(model, data, result)
        return self

    def _store(self, model: Model, data: tuple, result: EMResult) -> None:
        self.model_ = model
        self.result_ = result
        self.params_ = result.params
        self.loglik_ = result.loglik
        self.loglik_trace_ = result.loglik_trace
        self.n_iter_ = result.n_iter
        self.converged_ = result.converged
        self.n_em_evaluations_ = result.n_em_evaluations
        self._fit_data = data  # kept by reference for standard errors and bootstrap
        self._publish(result)

    def _check_fitted(self) -> None:
        if not hasattr(self, "result_"):
            raise not_fitted_error(f"this {type(self).__name__} is not fitted yet; call fit() first")

    # ------------------------------------------------------------- inference (emkit.inference)
    def standard_errors(self, method: str = "sem", **kwargs) -> dict[str, np.ndarray]:
        """Standard errors per parameter group (zeros for fixed groups).

        Parameters
        ----------
        method : {"sem", "hessian", "bootstrap"}
            Supplemented EM, numerical observed information, or bootstrap.
        """
        self._check_fitted()
        from emkit.inference import standard_errors
        return standard_errors(self, method=method, **kwargs)

    def covariance(self, method: str = "sem", **kwargs):
        """Asymptotic covariance of the fitted parameters; see :func:`emkit.inference.covariance`."""
        self._check_fitted()
        from emkit.inference import covariance
        return covariance(self, method=method, **kwargs)

    # ------------------------------------------------------------- online EM (emkit.online)
    def partial_fit(self, *args, **kwargs) -> "EMEstimator":
        """Update the fit with one batch of rows (online EM, Cappe & Moulines 2009)."""
        from emkit.online import partial_fit
        return partial_fit(self, *args, **kwargs)

    # ------------------------------------------------------------- persistence (emkit.io)
    def save(self, path):
        """Write the fitted estimator to ``path`` (JSON + NumPy arrays, no pickle); returns the path."""
        from emkit.io import save
        return save(self, path)
