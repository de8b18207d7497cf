"""The one registry of emkit's estimators: name -> class.

``emkit.<Name>`` (lazy attributes of the package), model files (:func:`emkit.io.save` and
:func:`emkit.io.load`) and the command line all read this module, so adding a built-in
estimator is one line in :data:`ESTIMATORS`, and a user's own estimator class becomes
loadable with :func:`register_estimator`.

The built-in table maps a name to the module that defines the class; nothing is imported
until a class is asked for (``import emkit`` stays light), and nothing is ever imported by a
name read from a file: a name that is not in this registry is refused.
"""

from __future__ import annotations

import importlib

#: estimator class name -> module that defines it (fixed in code, never read from a file)
ESTIMATORS: dict[str, str] = {
    "GaussianMixture": "emkit.estimators.gaussian",
    "FiniteMixture": "emkit.estimators.mixture",
    "PoissonMixture": "emkit.estimators.mixture",
    "BinomialMixture": "emkit.estimators.mixture",
    "ExponentialMixture": "emkit.estimators.mixture",
    "NormalMixture": "emkit.estimators.mixture",
    "MultivariateNormalMixture": "emkit.estimators.mixture",
    "BernoulliMixture": "emkit.estimators.mixture",
    "CategoricalMixture": "emkit.estimators.mixture",
    "Exponential": "emkit.estimators.exponential",
    "AlleleFrequencies": "emkit.estimators.alleles",
}

#: other public functions and classes of the estimator floor
FUNCTIONS: dict[str, str] = {
    "select_mixture": "emkit.estimators.selection",
    "degenerate_components": "emkit.estimators.selection",
    "DegenerateFitWarning": "emkit.estimators.selection",
    "MixtureSelection": "emkit.estimators.selection",
    "bootstrap_lrt": "emkit.estimators.lrt",
    "BootstrapLRT": "emkit.estimators.lrt",
    "MixtureEstimator": "emkit.estimators.mixture_base",
}

# classes added at run time by code (a user's own estimator), by name
_REGISTERED: dict[str, type] = {}

# what model files need of a class: build it from its settings, list them, rebuild its model
_REQUIRED_METHODS = ("get_params", "fit", "_make_model")


def register_estimator(cls: type, name: str | None = None) -> type:
    """Make estimators of class ``cls`` loadable from model files (usable as a decorator).

    Parameters
    ----------
    cls : type
        A subclass of :class:`emkit.estimators.base.EMEstimator`.
    name : str, optional
        Name written in model files (default: the class name).
    """
    if not (isinstance(cls, type) and all(callable(getattr(cls, m, None)) for m in _REQUIRED_METHODS)):
        raise ValueError(f"register_estimator needs an EMEstimator subclass, got {cls!r}")
    _REGISTERED[name or cls.__name__] = cls
    return cls


def known_names() -> list[str]:
    """Every name the registry can resolve (built-in and registered), sorted."""
    return sorted(set(ESTIMATORS) | set(_REGISTERED))


def estimator_class(name: str) -> type:
    """The estimator class called ``name``: a registered class, else a built-in one.

    Raises
    ------
    KeyError
        When no estimator has that name.
    ImportError, AttributeError
        When the module of a built-in name does not (yet) define the class.
    """
    if name in _REGISTERED:
        return _REGISTERED[name]
    return getattr(importlib.import_module(ESTIMATORS[name]), name)


def registry_name(cls: type) -> str | None:
    """The name under which class ``cls`` is registered (None when it is not)."""
    for name, registered in _REGISTERED.items():
        if registered is cls:
            return name
    name = cls.__name__
    if name in ESTIMATORS:
        try:
            if estimator_class(name) is cls:
                return name
        except (ImportError, AttributeError):
            return None
    return None
