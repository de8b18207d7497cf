"""The one list of emkit's public estimators: name -> module that defines it.

``emkit.<Name>`` (lazy attributes of the package), :func:`emkit.io.load` and the command
line all read this table, so adding an estimator is one line here.
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
    "MixtureEstimator": "emkit.estimators.mixture_base",
}


def estimator_class(name: str) -> type:
    """The estimator class called ``name`` (KeyError when there is none)."""
    return getattr(importlib.import_module(ESTIMATORS[name]), name)
