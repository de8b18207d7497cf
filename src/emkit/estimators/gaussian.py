"""Temporary: GaussianMixture moves here from emkit.models.gaussian."""
from emkit.models.gaussian import GaussianMixture  # noqa: F401
