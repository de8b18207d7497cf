"""Dempster, Laird & Rubin's (1977) genetic-linkage model: the README's user-defined model.

197 animals fall into four cells with probabilities 1/2 + p/4, (1-p)/4, (1-p)/4, p/4. The
first cell mixes two hidden cells, 1/2 and p/4; the complete-data statistics are the counts
of p-type and (1-p)-type cells, so the M-step is a proportion. Written against the public
contract only (it is exactly what a user writes), and shipped so the demo, the examples and
the tests share one copy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from emkit.models.base import Model
from emkit.core.params import UnitInterval

#: the published counts (Rao 1973; Dempster, Laird & Rubin 1977)
LINKAGE_COUNTS = np.array([125.0, 18.0, 20.0, 34.0])


class GeneticLinkage(Model):
    """One row of four cell counts per data set; parameter ``p`` in (0, 1)."""

    param_spec = {"p": UnitInterval()}

    def initialize(self, data: tuple, rng: np.random.Generator) -> dict:
        return {"p": np.array(0.5)}

    def e_step(self, data: tuple, params: dict) -> tuple[Any, float]:
        (y,), p = data, params["p"]
        hidden = y[:, 0] * (p / 4) / (0.5 + p / 4)  # expected p/4-part of the first cell
        stats = np.array([(hidden + y[:, 3]).sum(), (y[:, 1] + y[:, 2]).sum()])
        probs = np.array([0.5 + p / 4, (1 - p) / 4, (1 - p) / 4, p / 4])
        return stats, float((y * np.log(probs)).sum())

    def m_step(self, stats: Any, params: dict) -> dict:
        return {"p": np.array(stats[0] / stats.sum())}

    def complete_loglik(self, stats: Any, params: dict) -> float:
        """Expected complete-data log-likelihood (what supplemented EM needs)."""
        p = params["p"]
        return stats[0] * np.log(p) + stats[1] * np.log(1 - p)
