"""Temporary: the family-mixture estimators move here from emkit.models.mixture."""
from emkit.models.mixture import (BernoulliMixture, BinomialMixture, CategoricalMixture,  # noqa: F401
                                  ExponentialMixture, FiniteMixture, MultivariateNormalMixture,
                                  NormalMixture, PoissonMixture)
