"""Temporary: select_mixture moves here from emkit.models.gaussian."""
from emkit.models.gaussian import select_mixture  # noqa: F401
