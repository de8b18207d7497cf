"""emkit: Expectation-Maximization for latent-variable models.

One engine (:func:`em`) runs every model written against the small contract of
:mod:`emkit.models.base`; the public estimators are thin layers over it.
"""

from __future__ import annotations

import importlib

from emkit._version import __version__
from emkit.core.params import Positive, Real, Simplex, SymmetricPositiveDefinite, UnitInterval
from emkit.engine import (ConvergenceWarning, EMResult, IdentifiabilityWarning, MonotonicityError,
                          MonotonicityWarning, em)
from emkit.estimators.registry import ESTIMATORS, FUNCTIONS
from emkit.execution.threads import get_num_threads, set_num_threads
from emkit.models.base import DiscreteLatentModel, Model

# Public names defined in submodules, imported on first use so `import emkit` stays light; the
# estimators come from the one registry (emkit.estimators.registry).
_LAZY = {
    **ESTIMATORS,
    **FUNCTIONS,
    "load": "emkit.io",
    "io": "emkit.io",
    "progress": "emkit.progress",
    "online": "emkit.online",
    "datasets": "emkit.datasets",
    "plot": "emkit.plot",
    "inference": "emkit.inference",
    "accelerate": "emkit.engine.accelerate",
    "testing": "emkit.testing",
    "EmptyComponentWarning": "emkit.models.gaussian",
}

__all__ = ["em", "EMResult", "Model", "DiscreteLatentModel", "ConvergenceWarning", "IdentifiabilityWarning",
           "MonotonicityWarning", "MonotonicityError", "Real", "Positive", "UnitInterval",
           "Simplex", "SymmetricPositiveDefinite", "get_num_threads", "set_num_threads", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        value = module if module.__name__.endswith("." + name) else getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'emkit' has no attribute {name!r}")
