"""scikit-learn-style estimators on top of the engine.

An estimator keeps settings in its constructor, builds a :class:`~emkit.models.base.Model` in
``_make_model``, turns the user's arguments into the model's data in ``_make_data``, and lets
:func:`emkit.em` do the rest. Fitted attributes end in ``_``:

``params_`` (dict), one attribute per parameter group (``weights_``, ``probs_``, ...),
``loglik_``, ``loglik_trace_``, ``n_iter_``, ``converged_``, ``n_em_evaluations_``,
``result_`` (the :class:`~emkit.engine.EMResult`), ``model_``.

Column names (scikit-learn's rule)
    ``fit`` on a pandas or polars data frame whose column names are all strings records them
    as ``feature_names_in_``; afterwards a frame with other names, or the same names in another
    order, is a ValueError ("The feature names should match those that were passed during
    fit."), and an array after a fit on a frame (or a frame after a fit on an array) a
    UserWarning, with scikit-learn's messages (:meth:`EMEstimator._check_feature_names`).
    pandas' nullable columns read ``pd.NA`` as a missing value (NaN), as polars' nulls are.

Settings and parameters only
    Pickle, joblib and :meth:`EMEstimator.save` carry the settings and the fitted
    parameters, never the training data. After ``fit`` the estimator keeps a *transient*
    reference to the data it was fitted on, so that ``standard_errors()`` and ``covariance()``
    work without arguments in the same session; that reference is dropped by pickling,
    copying and saving. A loaded or unpickled estimator predicts, scores and samples exactly
    as before; the methods that need the training data take it as ``data=`` and say so when
    it is missing.

Checkpoints
    Every estimator takes the engine's ``checkpoint=PATH`` and ``checkpoint_every=`` (an int:
    iterations; a float: seconds; default 60 s) and passes them to :func:`emkit.em` with the
    other engine settings: a long ``fit`` writes its state to ``PATH`` atomically, a ``fit``
    with the same data and settings started while ``PATH`` exists resumes from it and gives
    bit-identical fitted attributes, and ``PATH`` is removed after a successful fit (see
    :mod:`emkit.engine.checkpoint`).

Hooks for subclasses
    ``_make_model()``, ``_make_data(*args, **kwargs)``, ``_init_params(model, data)``,
    ``_engine_options()``, ``_publish(result)``, ``_store(model, data, result)`` and
    ``_online_data(*args, **kwargs)`` (the data of one ``partial_fit`` batch; default
    ``_make_data``).
"""

from __future__ import annotations

import functools
import inspect
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Collection

import numpy as np

from emkit import inference, online
from emkit.core.sklearn_twins import sklearn_twin, twin_module_getattr
from emkit.core.validation import check_fixed_groups
from emkit.engine import EMResult, em
from emkit.engine.loop import convergence_warning_category
from emkit.estimators import modelfile
from emkit.estimators.settings import ENGINE_SETTING_NAMES, Setting, build_init, settings_doc, validate_settings
from emkit.models.base import Model

if TYPE_CHECKING:  # typing.Self is Python 3.11+; emkit supports 3.10
    from typing import Self


class NotFittedError(ValueError, AttributeError):
    """A method that needs a fitted estimator was called before ``fit``.

    When scikit-learn is imported in the process, emkit raises ``SklearnNotFittedError``, a
    subclass of both this class and ``sklearn.exceptions.NotFittedError``, so that ``except``
    with either class catches it and scikit-learn's tools (``check_is_fitted``, its estimator
    checks) recognise it; the message is scikit-learn's. emkit never imports scikit-learn
    itself (that takes seconds); a program that names scikit-learn's class has imported it.
    Both are a ValueError and an AttributeError.
    """


def not_fitted_error_class() -> type:
    """The class of emkit's not-fitted errors: :class:`NotFittedError`, or, once scikit-learn
    is imported, ``SklearnNotFittedError`` (a subclass of it and of scikit-learn's; see
    :mod:`emkit.core.sklearn_twins`)."""
    return sklearn_twin(NotFittedError, "NotFittedError", __name__)


__getattr__ = twin_module_getattr(__name__, NotFittedError, "NotFittedError")


#: attributes that live only in memory: never pickled, copied or saved
_TRANSIENT = ("_fit_data",)

#: the data-frame libraries whose column names are feature names (scikit-learn's convention)
_FRAME_LIBRARIES = ("pandas", "polars", "modin", "cudf", "dask")


def feature_names(X: Any) -> np.ndarray | None:
    """The column names of a data frame (pandas, polars, modin, cuDF, Dask) as an object array,
    when all of them are strings; None for arrays, for frames without columns and for frames
    whose names are all non-strings (pandas' default ``0, 1, ...``). A frame that mixes string
    and non-string names is a TypeError. This is scikit-learn's rule
    (``sklearn.utils.validation._get_feature_names``), with its message."""
    if not (hasattr(X, "columns") and hasattr(X, "shape")
            and type(X).__module__.partition(".")[0] in _FRAME_LIBRARIES):
        return None
    names = np.asarray(list(X.columns), dtype=object)
    if names.size == 0:
        return None
    types = sorted(t.__qualname__ for t in {type(v) for v in names})
    if len(types) > 1 and "str" in types:
        raise TypeError(
            "Feature names are only supported if all input features have string names, "
            f"but your input has {types} as feature name / column name types. "
            "If you want feature names to be stored and validated, you must convert "
            "them all to strings, by using X.columns = X.columns.astype(str) for "
            "example. Otherwise you can remove feature / column names from your input "
            "data, or convert them all to a non-string data type.")
    return names if types == ["str"] else None


def _list_names(names) -> str:
    shown = "".join(f"- {name}\n" for name in names[:5])
    return shown + ("- ...\n" if len(names) > 5 else "")


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

    # The engine settings (declared in emkit.estimators.settings.ENGINE_SETTINGS), annotated
    # for type checkers: ``__init__`` is written at run time from the declarations, so they
    # cannot see these attributes otherwise. Each estimator annotates its own settings the
    # same way (tests/test_typing.py checks that every declared setting is annotated).
    tol: float
    stop: str
    max_iter: int
    n_init: int
    random_state: int | np.random.Generator | np.random.RandomState | None
    fixed: str | Collection[str] | None
    accelerate: str | None
    algorithm: str
    burn_in: int | None
    check_monotone: str
    chunk_size: int | None
    callback: Callable[..., Any] | None
    keep_history: bool
    checkpoint: str | os.PathLike[str] | None
    checkpoint_every: float | None

    # fitted attributes (set by ``fit`` / ``partial_fit``)
    model_: Model
    result_: EMResult
    params_: dict[str, Any]
    loglik_: float
    loglik_trace_: np.ndarray
    n_iter_: int
    converged_: bool
    n_em_evaluations_: int
    feature_names_in_: np.ndarray
    online_stats_: Any
    online_step_size_: float
    online_step_decay_: float
    online_step_offset_: float
    n_batches_seen_: int
    n_rows_seen_: float

    if TYPE_CHECKING:
        # The constructor is written from ``_settings`` when the subclass is created (see
        # __init_subclass__ and emkit.estimators.settings.build_init); for type checkers it
        # takes the declared settings, by position or by name.
        def __init__(self, *args: Any, **kwargs: Any) -> None: ...

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "_settings" in cls.__dict__ and "__init__" not in cls.__dict__:
            setattr(cls, "__init__", build_init(cls._settings, cls.__qualname__))
        if cls.__doc__ and "{settings}" in cls.__doc__:
            cls.__doc__ = cls.__doc__.replace(
                "{settings}", "    Parameters\n    ----------\n" + settings_doc(cls._settings))

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

    def set_params(self, **params: Any) -> Self:
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
    # (``model`` and ``data`` are typed Any in the hooks: each subclass takes its own model
    # class and data, which a narrower override could not declare without breaking the
    # substitution rule type checkers apply)
    def _make_model(self) -> Model:
        raise NotImplementedError

    def _make_data(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def _init_params(self, model: Any, data: Any) -> dict | None:
        """Starting values from the ``*_init`` settings (None: the model's initialisation)."""
        return None

    def _engine_options(self) -> dict:
        return {k: getattr(self, k) for k in ENGINE_SETTINGS if hasattr(self, k)}

    def _publish(self, result: EMResult) -> None:
        """Copy the fitted parameters onto the estimator (``<group>_``); override to reshape."""
        for name, value in result.params.items():
            setattr(self, name + "_", value)

    def _online_data(self, *args: Any, **kwargs: Any) -> Any:
        """The data of one ``partial_fit`` batch (default: built as ``fit`` builds it)."""
        return self._make_data(*args, **kwargs)

    # ------------------------------------------------------------- fitting
    def fit(self, *args: Any, **kwargs: Any) -> Self:
        if args:
            self._check_feature_names(args[0], reset=True)
        model = self._make_model()
        data = self._make_data(*args, **kwargs)
        self._store(model, data, self._run_em(model, data))
        return self

    def _fixed_and_options(self) -> tuple[Any, dict]:
        """The groups held fixed and the other settings :func:`emkit.em` takes."""
        options = self._engine_options()
        fixed = options.pop("fixed") if "fixed" in options else getattr(self, "fixed", ())
        return fixed or (), options

    def _run_em(self, model: Any, data: Any) -> EMResult:
        """A batch EM fit of ``model`` to ``data`` with this estimator's settings and starting values."""
        fixed, options = self._fixed_and_options()
        result = em(model, data, init=self._init_params(model, data), fixed=fixed, warn_not_converged=False,
                    **options)
        self._warn_not_converged(result)
        return result

    def _not_converged_message(self, result: EMResult) -> str:
        return (f"{result.model.display_name}: EM did not meet the stopping rule ({result.stop} < {result.tol}) "
                f"in {result.max_iter} iterations; raise max_iter or tol")

    def _warn_not_converged(self, result: EMResult) -> None:
        """The engine's rule: a ConvergenceWarning when a fit with ``tol > 0`` and ``max_iter > 0``
        stopped at ``max_iter`` (not for stochastic EM, which always runs ``max_iter``); of
        scikit-learn's class too once scikit-learn is imported (see
        :func:`emkit.engine.loop.convergence_warning_category`)."""
        if result.converged or result.algorithm == "stochastic" or not result.tol > 0 or result.max_iter <= 0:
            return
        warnings.warn(self._not_converged_message(result), convergence_warning_category(), stacklevel=4)

    def _store(self, model: Any, data: Any, result: EMResult) -> None:
        self.model_ = model
        self.result_ = result
        self.params_ = result.params
        self.loglik_ = result.loglik
        self.loglik_trace_ = result.loglik_trace
        self.n_iter_ = result.n_iter
        self.converged_ = result.converged
        self.n_em_evaluations_ = result.n_em_evaluations
        self._fit_data = data  # transient (see _TRANSIENT): for standard errors in this session
        self._publish(result)

    def __getstate__(self) -> dict:
        """Settings and fitted attributes; the transient reference to the training data is
        dropped, so a pickled (or joblib-dumped, or copied) estimator never carries it."""
        state = self.__dict__.copy()
        for name in _TRANSIENT:
            state.pop(name, None)
        return state

    def _check_feature_names(self, X: Any, *, reset: bool) -> None:
        """Record (``reset=True``, in ``fit``) or check (``reset=False``, in every method that
        takes data afterwards) the column names of ``X``, as scikit-learn does.

        ``fit`` on a data frame whose column names are all strings sets ``feature_names_in_``
        (an object array of the names); ``fit`` on anything else removes it. Afterwards a
        frame whose names differ from ``feature_names_in_``, or come in another order, is a
        ValueError listing them (a reordered frame would silently give other results); an
        array after a fit on a frame, or a frame after a fit on an array, is a UserWarning.
        """
        names = feature_names(X)
        if reset:
            if names is not None:
                self.feature_names_in_ = names
            elif "feature_names_in_" in self.__dict__:
                del self.feature_names_in_
            return
        fitted = getattr(self, "feature_names_in_", None)
        who = type(self).__name__
        if fitted is None and names is None:
            return
        if fitted is None:
            warnings.warn(f"X has feature names, but {who} was fitted without feature names", UserWarning,
                          stacklevel=3)
            return
        if names is None:
            warnings.warn(f"X does not have valid feature names, but {who} was fitted with feature names",
                          UserWarning, stacklevel=3)
            return
        if len(fitted) == len(names) and not np.any(fitted != names):
            return
        message = "The feature names should match those that were passed during fit.\n"
        unexpected = sorted(set(names) - set(fitted))
        missing = sorted(set(fitted) - set(names))
        if unexpected:
            message += "Feature names unseen at fit time:\n" + _list_names(unexpected)
        if missing:
            message += "Feature names seen at fit time, yet now missing:\n" + _list_names(missing)
        if not unexpected and not missing:
            message += "Feature names must be in the same order as they were in fit.\n"
        raise ValueError(message)

    def __sklearn_is_fitted__(self) -> bool:
        """Whether ``fit`` (or ``partial_fit``) has run (scikit-learn's protocol)."""
        return hasattr(self, "result_")

    def _check_fitted(self) -> None:
        """The one not-fitted check of every emkit estimator (see :class:`NotFittedError`)."""
        if not self.__sklearn_is_fitted__():
            raise not_fitted_error_class()(f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                                 f"appropriate arguments before using this estimator.")

    # ------------------------------------------------------------- data for the methods that need it
    def model_data(self, *args: Any, **kwargs: Any) -> tuple:
        """The model's data built from ``fit``'s data arguments, exactly as ``fit`` builds it.

        For methods that need the training data after :func:`emkit.load` or unpickling when
        ``fit`` took more than one data argument, e.g.
        ``est.standard_errors("sem", data=est.model_data(x, sample_weight=w))``.
        """
        data = self._make_data(*args, **kwargs)
        return data if isinstance(data, tuple) else (data,)

    def param_groups(self) -> tuple[str, ...]:
        """Names of the parameter groups of this estimator's model (what ``fixed`` may name)."""
        return tuple(self._make_model().param_spec)

    def _training_data(self, data: Any, method: str) -> tuple:
        """``data`` as the model's data: a tuple (or :class:`~emkit.core.data.Data`) is taken
        as it is, anything else as ``fit``'s one data argument; None means the data of the last
        ``fit`` in this session."""
        if data is None:
            data = getattr(self, "_fit_data", None)
            if data is None:
                raise ValueError(
                    f"{type(self).__name__}.{method}() needs the training data, which this estimator does "
                    f"not hold (it was loaded from a file or unpickled, and estimators never store their "
                    f"data): pass data=, the data given to fit() (e.g. data=X), or "
                    f"data=est.model_data(...) when fit() took several data arguments")
            return data
        return data if isinstance(data, tuple) else self.model_data(data)

    # ------------------------------------------------------------- inference (emkit.inference)
    def standard_errors(self, method: str = "sem", *, data: Any = None, **kwargs: Any) -> dict[str, np.ndarray]:
        """Standard errors per parameter group (zeros for fixed groups).

        Parameters
        ----------
        method : {"sem", "hessian", "bootstrap"}
            Supplemented EM, numerical observed information, or bootstrap.
        data : array-like or tuple, optional
            The training data: what ``fit`` was given (``X``), or the model's data from
            :meth:`model_data`. Defaults to the data of the last ``fit`` in this session;
            required after :func:`emkit.load` or unpickling (estimators never store data).
        **kwargs
            Options of :func:`emkit.inference.sem`, :func:`~emkit.inference.hessian` or
            :func:`~emkit.inference.bootstrap`.
        """
        return self._covariance(method, data, "standard_errors", kwargs).standard_errors

    def covariance(self, method: str = "sem", *, data: Any = None, **kwargs: Any) -> inference.CovarianceResult:
        """Asymptotic covariance of the fitted parameters; see :func:`emkit.inference.covariance`.
        ``data`` as in :meth:`standard_errors`."""
        return self._covariance(method, data, "covariance", kwargs)

    def _covariance(self, method: str, data: Any, caller: str, options: dict) -> inference.CovarianceResult:
        """The model, data and result passed to :func:`emkit.inference.covariance` explicitly."""
        self._check_fitted()
        return inference.covariance(self.model_, self._training_data(data, caller), self.result_,
                                    method=method, **options)

    # ------------------------------------------------------------- online EM (emkit.online)
    def partial_fit(self, *args: Any, step_decay: float | None = None, step_offset: float | None = None,
                    **kwargs: Any) -> Self:
        """Update the fit with one batch of rows by online EM (Cappe & Moulines 2009; see
        :mod:`emkit.online`); returns the estimator.

        Parameters
        ----------
        *args, **kwargs
            The batch, exactly as ``fit`` takes data (``X``, ``sample_weight=``, ...).
        step_decay : float in (0.5, 1], optional
            alpha of the step size g_k = (k + k0)^(-alpha); default 0.6, or the value in use by
            this stream. Smaller values forget the start faster; 1 averages all batches equally.
        step_offset : float >= 0, optional
            k0; default 1, or the value in use by this stream.

        Notes
        -----
        The first batch is fitted by ordinary (batch) EM with the estimator's own settings and
        initialisation (``*_init``, ``n_init``, ``random_state``, ``fixed``...), and its
        normalised statistics at that fit start the running average; if the estimator was
        fitted with ``fit``, the stream starts from those parameters instead. A later ``fit``
        ends the stream. Per-batch cost is one E-step and one M-step.

        Fitted attributes: ``n_batches_seen_``, ``n_rows_seen_`` (observations, i.e. summed
        row weights), ``online_stats_`` (the running statistics), ``online_step_size_`` (the
        last g_k), ``online_step_decay_``, ``online_step_offset_``, and the usual ones after
        every batch: ``params_``, each ``<group>_``, ``n_iter_`` (= batches),
        ``n_em_evaluations_``, ``loglik_`` (log-likelihood of the latest batch at the
        parameters it was processed with), ``loglik_trace_`` (that value per batch),
        ``converged_`` (False: a stream has no end), ``result_`` (``algorithm="online"``).
        """
        decay, offset = online.check_schedule(
            getattr(self, "online_step_decay_", online.DEFAULT_STEP_DECAY) if step_decay is None else step_decay,
            getattr(self, "online_step_offset_", online.DEFAULT_STEP_OFFSET) if step_offset is None else step_offset)
        fixed, options = self._fixed_and_options()
        fitted = self.__sklearn_is_fitted__()
        # a stream is under way when the last fit was ours (fit() since then starts a new one)
        streaming = fitted and hasattr(self, "online_stats_") and getattr(self.result_, "algorithm", None) == "online"
        model = self.model_ if fitted else self._make_model()
        if getattr(model, "prior", None) is not None:
            raise ValueError("partial_fit runs online EM, which has no MAP version: the prior's pull does not "
                             "scale with the running statistics; fit with prior=None, or use fit()")
        if options.get("algorithm", "em") != "em":
            raise ValueError(f"partial_fit runs online EM; algorithm={options['algorithm']!r} is not supported")
        if args:
            self._check_feature_names(args[0], reset=not fitted)
        data = self._online_data(*args, **kwargs)
        data = data if isinstance(data, tuple) else (data,)
        online.batch_observations(model, data)
        fixed = check_fixed_groups(fixed, model.param_spec, model.display_name)
        if streaming:
            params, running, k = self.params_, self.online_stats_, int(self.n_batches_seen_)
            n_rows, evaluations, trace = float(self.n_rows_seen_), int(self.n_em_evaluations_), list(self.loglik_trace_)
        elif fitted:  # continue from an ordinary fit: its parameters start the stream
            params, running, k = self.params_, None, 0
            n_rows, evaluations, trace = 0.0, int(self.n_em_evaluations_), []
        else:  # first batch: a batch EM fit with the estimator's own settings and initialisation
            first = self._run_em(model, data)
            params, running, k = first.params, None, 0
            n_rows, evaluations, trace = 0.0, int(first.n_em_evaluations), []
        chunk_size = options.get("chunk_size")
        step = online.update(model, data, params, running, n_batches=k, fixed=fixed, step_decay=decay,
                             step_offset=offset, chunk_size=chunk_size)
        trace.append(step.loglik)
        result = EMResult(params=step.params, loglik=step.loglik, loglik_trace=np.asarray(trace, dtype=float),
                          n_iter=len(trace), converged=False, n_em_evaluations=evaluations + 1,
                          params_history=None, restarts=[], best_restart=0, model=model, stop="online",
                          tol=0.0, max_iter=0, fixed=fixed, algorithm="online", accelerate=None,
                          options={"chunk_size": chunk_size, "step_decay": decay, "step_offset": offset})
        self._store(model, data, result)
        self.online_stats_ = step.stats
        self.online_step_size_ = step.step_size
        self.online_step_decay_ = decay
        self.online_step_offset_ = offset
        self.n_batches_seen_ = len(trace)
        self.n_rows_seen_ = n_rows + step.n_observations
        return self

    # ------------------------------------------------------------- persistence (model files)
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the estimator's settings and fitted parameters (never its training data) to
        ``path`` (JSON + NumPy arrays in a ZIP archive, no pickle); returns the path. Read it
        back with :func:`emkit.load`. See :mod:`emkit.estimators.modelfile` for the format."""
        return modelfile.save(self, path)
