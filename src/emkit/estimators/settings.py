"""Estimator settings, declared once: names, defaults, constraints and documentation.

Every estimator takes the engine settings (``tol``, ``stop``, ``max_iter``, ...) as keyword
arguments of its constructor. They are declared here once, in :data:`ENGINE_SETTINGS`; an
estimator declares only its own settings (``n_components``, ``rates_init``...) and, where it
has reason to, other defaults for engine settings (``GaussianMixture``: ``fixed=None``, as
scikit-learn), never for the stopping rule, tolerance and ``max_iter`` (below). :func:`build_init` writes the constructor
from the declarations (a real function with a real signature, as :mod:`dataclasses` does),
so scikit-learn's ``get_params`` / ``set_params`` / ``clone`` see ordinary arguments, and
:func:`validate_settings` checks every value against its declared constraint when ``fit``
starts (scikit-learn's ``_parameter_constraints`` idea).

Constraints
    A constraint is a callable ``check(value) -> bool`` with a ``describe`` text, built by
    :func:`options`, :func:`interval`, :func:`instance_of` or :func:`any_of`; ``None`` means
    "anything".

Default stopping rule, tolerance and iterations (every estimator)
    Every estimator stops the same way unless told otherwise: ``stop="loglik_rel"``,
    ``tol=1e-14``, ``max_iter=10000`` (:data:`DEFAULT_STOP`, :data:`DEFAULT_TOL`,
    :data:`DEFAULT_MAX_ITER`). EM stops after iteration t when
    ``|l_t - l_{t-1}| < 1e-14 * |l_t|``, l_t the observed-data log-likelihood, so it stops
    only when the log-likelihood no longer changes in its 14th significant digit
    (about 45 float64 rounding units). Why this rule and these numbers:

    * The same for every estimator and model, whatever the number of rows (the rule is
      relative) and whatever the dimension: the rounding of a sum of n log-densities is
      relative to the sum, so a relative tolerance stays above rounding where a per-row one
      (``"loglik_mean"``) falls below it for data of many dimensions (|l| / n of 100 and
      more), and a parameter rule (``"params_maxabs"``) depends on the units of the data (a
      covariance of 1e8 cannot change by less than 1e-8 in float64).
    * Tight enough for the worked examples to reach their published values with these
      defaults, on the command line too: Hasselblad's deaths (weight 0.3599, rates 1.256 /
      2.663; a flat likelihood where EM converges at rate 0.99 and a looser tolerance stops
      at 0.3586), Old Faithful (log-likelihood -1130.264, and BIC 2314.296 for 3 components
      with one shared covariance, where scikit-learn's rule and ``tol=1e-3`` give 2315.986),
      the two coins, the peppered moths, ABO and the exponential with a missing value.
    * ``max_iter=10000``: slow fits such as Hasselblad's need about 2,500 iterations to this
      tolerance; fast ones stop after tens.

    A log-likelihood rule fixes the parameters less tightly than the log-likelihood (near the
    maximum the log-likelihood is quadratic in them): the exponential with one value missing
    reaches 0.2 within 1e-7. For parameters to a given number of digits use
    ``stop="params_maxabs"`` (an absolute change, in the units of the parameters). float32
    data give a log-likelihood of about 7 significant digits, so the default rule either
    stops when rounding hides the change or runs to ``max_iter``: give float32 fits a
    tolerance of their own (``tol=1e-6``, or ``stop="params_maxabs"``). The stopping rules
    are defined in :mod:`emkit.engine.loop`; scikit-learn's quicker defaults for
    ``GaussianMixture`` are ``stop="loglik_mean", tol=1e-3, max_iter=100``.
"""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from emkit.engine.loop import MONOTONE_CHECKS, STOP_RULES
from emkit.engine.variants import ALGORITHMS


# --------------------------------------------------------------------------- constraints
@dataclass(frozen=True)
class Constraint:
    """A named test of a setting's value."""

    test: Callable[[Any], bool]
    describe: str

    def __call__(self, value: Any) -> bool:
        try:
            return bool(self.test(value))
        except Exception:
            return False


def options(*values: Any) -> Constraint:
    """One of ``values`` (compared with ``==``)."""
    return Constraint(lambda v: any(v is o or (type(v) is type(o) and v == o) for o in values),
                      "one of " + ", ".join(repr(v) for v in values))


def interval(kind: type[Any], low: float | None = None, high: float | None = None, *,
             closed: str = "both") -> Constraint:
    """A number of ``kind`` (``numbers.Integral`` or ``numbers.Real``, never a bool) between
    ``low`` and ``high``; ``closed`` is "both", "left", "right" or "neither"."""
    def test(v: Any) -> bool:
        if isinstance(v, bool) or not isinstance(v, kind):
            return False
        if isinstance(v, float) and not np.isfinite(v):
            return False
        if low is not None and (v < low or (v == low and closed in ("right", "neither"))):
            return False
        if high is not None and (v > high or (v == high and closed in ("left", "neither"))):
            return False
        return True
    word = "an integer" if kind is numbers.Integral else "a number"
    lo = "" if low is None else f"{'>=' if closed in ('both', 'left') else '>'} {low}"
    hi = "" if high is None else f"{'<=' if closed in ('both', 'right') else '<'} {high}"
    bounds = " and ".join(b for b in (lo, hi) if b)
    return Constraint(test, f"{word}{' ' + bounds if bounds else ''}")


def instance_of(*types: type, describe: str | None = None) -> Constraint:
    """An instance of one of ``types``."""
    return Constraint(lambda v: isinstance(v, types), describe or "an instance of " +
                      " or ".join(t.__name__ for t in types))


def any_of(*constraints: Constraint | None) -> Constraint:
    """Passes when any of ``constraints`` passes (``None`` in the list accepts ``None``)."""
    parts = [c for c in constraints if c is not None]
    allow_none = any(c is None for c in constraints)
    return Constraint(lambda v: (allow_none and v is None) or any(c(v) for c in parts),
                      " or ".join((["None"] if allow_none else []) + [c.describe for c in parts]))


#: "a callable"
CALLABLE = Constraint(callable, "a callable")


# --------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class Setting:
    """One constructor argument of an estimator.

    Parameters
    ----------
    name : str
    default : Any
        Immutable default (None, a number, a string, a tuple).
    constraint : Constraint or None
        Checked by :func:`validate_settings` when ``fit`` starts; None accepts anything.
    doc : str
        One-paragraph description for the docstring.
    positional : bool
        May be given by position (before the ``*``); otherwise keyword-only.
    """

    name: str
    default: Any = None
    constraint: Constraint | None = None
    doc: str = ""
    positional: bool = False


_fixed_constraint = Constraint(lambda v: v is None or isinstance(v, (str, list, tuple, set, frozenset)),
                               "None, a group name or a sequence of group names")

#: the default stopping rule of every estimator (see the module docstring for why)
DEFAULT_STOP = "loglik_rel"
#: the default tolerance of every estimator: the log-likelihood stable to 14 significant digits
DEFAULT_TOL = 1e-14
#: the default largest number of iterations per restart of every estimator
DEFAULT_MAX_ITER = 10000

#: the settings every estimator passes to :func:`emkit.em`, with their defaults
ENGINE_SETTINGS: tuple[Setting, ...] = (
    Setting("tol", DEFAULT_TOL, interval(numbers.Real, 0),
            "Tolerance of the stopping rule (see :func:`emkit.em`); the default stops when the "
            "log-likelihood no longer changes in its 14th significant digit."),
    Setting("stop", DEFAULT_STOP, options(*STOP_RULES),
            "Stopping rule: " + ", ".join(f'``"{s}"``' for s in STOP_RULES) + " (the same default for "
            "every estimator: see :mod:`emkit.estimators.settings`)."),
    Setting("max_iter", DEFAULT_MAX_ITER, interval(numbers.Integral, 0),
            "Largest number of EM iterations per restart."),
    Setting("n_init", 1, interval(numbers.Integral, 1),
            "Number of restarts; the one with the highest log-likelihood is kept."),
    Setting("random_state", None, any_of(None, interval(numbers.Integral, 0), instance_of(
        np.random.Generator, np.random.RandomState)), "Seeds the initialisation (and stochastic EM)."),
    Setting("fixed", (), _fixed_constraint,
            'Parameter groups held at their starting value, e.g. ``["weights"]``.'),
    Setting("accelerate", None, None, 'None, ``"squarem"`` or ``"anderson"``: extrapolation of the EM map.'),
    Setting("algorithm", "em", options(*ALGORITHMS), 'Plain (``"em"``), classification (``"hard"``) or '
            'stochastic EM.'),
    Setting("burn_in", None, any_of(None, interval(numbers.Integral, 0)),
            "Stochastic EM: iterations before averaging starts (default ``max_iter // 2``)."),
    Setting("check_monotone", "warn", options(*MONOTONE_CHECKS),
            "What a decrease of the log-likelihood does: warn, raise or nothing."),
    Setting("chunk_size", None, any_of(None, interval(numbers.Integral, 1)),
            "Rows per chunk of the statistics pass (default: the model's choice)."),
    Setting("callback", None, any_of(None, CALLABLE),
            "``callback(iteration, params, loglik)`` after the start and every iteration."),
    Setting("keep_history", False, instance_of(bool, np.bool_, describe="a bool"),
            "Keep the parameters of every iteration in ``result_.params_history``."),
    Setting("checkpoint", None, any_of(None, instance_of(str, os.PathLike, describe="a file path")),
            "File for checkpoints of a long fit: written atomically while the fit runs, resumed from when "
            "``fit`` starts and it exists (the same data and settings give a bit-identical result; "
            "others raise ValueError), removed after a successful fit. See :func:`emkit.em`."),
    Setting("checkpoint_every", None, any_of(None, interval(numbers.Integral, 1),
                                             interval(numbers.Real, 0, closed="neither")),
            "How often to write ``checkpoint``: an int counts iterations, a float seconds "
            "(default: every 60 seconds)."),
)
ENGINE_SETTING_NAMES = tuple(s.name for s in ENGINE_SETTINGS)


#: engine settings whose default is the same for every built-in estimator (the tests check it)
UNIFORM_SETTINGS = ("tol", "stop", "max_iter")


def declare(*own: Setting, engine: Sequence[str] = ENGINE_SETTING_NAMES, **engine_defaults: Any) -> tuple[Setting, ...]:
    """An estimator's settings: its own, then the engine's (those named in ``engine``), with
    other defaults for some engine settings given as keywords (``fixed=None``). The built-in
    estimators keep the one default stopping rule, tolerance and ``max_iter``
    (:data:`UNIFORM_SETTINGS`); a user's estimator may declare others."""
    unknown = set(engine_defaults) - set(ENGINE_SETTING_NAMES)
    if unknown:
        raise TypeError(f"not engine settings: {sorted(unknown)}")
    by_name = {s.name: s for s in ENGINE_SETTINGS}
    engine_part = tuple(replace(by_name[n], default=engine_defaults[n]) if n in engine_defaults else by_name[n]
                        for n in engine if n not in {s.name for s in own})
    return tuple(own) + engine_part


def build_init(settings: Sequence[Setting], qualname: str) -> Callable:
    """A constructor ``__init__(self, <positional>, *, <keyword-only>)`` that stores every
    argument unchanged under its own name (scikit-learn's convention)."""
    positional = [s for s in settings if s.positional]
    keyword = [s for s in settings if not s.positional]
    defaults = {f"_d_{s.name}": s.default for s in settings}
    args = ["self"] + [f"{s.name}=_d_{s.name}" for s in positional]
    if keyword:
        args += ["*"] + [f"{s.name}=_d_{s.name}" for s in keyword]
    body = "\n".join(f"    self.{s.name} = {s.name}" for s in settings) or "    pass"
    source = f"def __init__({', '.join(args)}):\n{body}\n"
    namespace: dict[str, Any] = {}
    exec(source, dict(defaults), namespace)  # noqa: S102 - source built from identifiers only
    init = namespace["__init__"]
    init.__qualname__ = f"{qualname}.__init__"
    return init


def settings_doc(settings: Iterable[Setting], indent: str = "    ") -> str:
    """The numpydoc "Parameters" entries of ``settings``."""
    lines = []
    for s in settings:
        lines.append(f"{indent}{s.name} : {s.constraint.describe if s.constraint else 'any'}, default={s.default!r}")
        lines.append(f"{indent}    {s.doc}")
    return "\n".join(lines)


def validate_settings(estimator: Any, settings: Sequence[Setting]) -> None:
    """Raise ValueError naming the first setting whose value breaks its constraint."""
    for s in settings:
        if s.constraint is None:
            continue
        value = getattr(estimator, s.name)
        if not s.constraint(value):
            raise ValueError(f"{type(estimator).__name__}: {s.name} must be {s.constraint.describe}, "
                             f"got {value!r}")
