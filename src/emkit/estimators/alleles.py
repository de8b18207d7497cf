"""Temporary: AlleleFrequencies moves here from emkit.models.alleles."""
from emkit.models.alleles import AlleleFrequencies  # noqa: F401
