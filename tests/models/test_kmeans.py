"""emkit's one k-means (initialisation of the Gaussian and family mixtures)."""

from __future__ import annotations

import numpy as np
import pytest

from emkit.models.families import Bernoulli
from emkit.models.kmeans import kmeans


@pytest.mark.parametrize("offset", [0.0, 1e8])
def test_two_tight_clusters_far_from_the_origin_are_separated(offset):
    # uncentred distances |x|^2 - 2 x.c + |c|^2 cancel at 1e8 and merged these clusters
    rng = np.random.default_rng(0)
    x = np.r_[rng.normal(0.0, 0.01, size=(50, 1)), rng.normal(1.0, 0.01, size=(50, 1))] + offset
    labels = kmeans(x, 2, np.random.default_rng(0))
    assert len(set(labels[:50])) == 1 and len(set(labels[50:])) == 1 and labels[0] != labels[-1]


def test_bernoulli_m_step_stays_inside_the_unit_interval():
    # a ratio of sums can round to 1 + 2e-16; the M-step result must be a valid start
    n = np.array([3.0 * (1 + 2**-52)])
    probs = Bernoulli().m_step({"sx": np.array([[3.0 * (1 + 2**-51)]]), "n": n}, None)["probs"]
    assert probs.max() <= 1.0
