"""Temporary: the Exponential estimator moves here from emkit.models.exponential."""
from emkit.models.exponential import Exponential  # noqa: F401
