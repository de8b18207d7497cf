"""The EM engine: the loop, stopping rules, restarts, acceleration and the hard / stochastic
variants, for every model (see :mod:`emkit.engine.loop`)."""

from emkit.core.validation import check_random_state
from emkit.engine.em_map import EMMap, m_step, statistics_pass
from emkit.engine.loop import (ConvergenceWarning, EMResult, IdentifiabilityWarning, MonotonicityError,
                               MonotonicityWarning, RestartSummary, em)

__all__ = ["ConvergenceWarning", "EMMap", "EMResult", "IdentifiabilityWarning", "MonotonicityError",
           "MonotonicityWarning",
           "RestartSummary", "check_random_state", "em", "m_step", "statistics_pass"]
