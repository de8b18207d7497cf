"""Speed of emkit's hierarchical initialisation (``init_params="hc"``, issue 15 item 3).

Usage (from the repository root)::

    python benchmarks/hc_speed.py [n_rows ...]

For each size (default 2,000 and 10,000 rows x 5 columns, three Gaussian groups): the time of
``hc`` itself on min(n, 2000) rows (mclust's subset size: larger data are agglomerated on a
fixed stratified subset of 2,000 rows, see ``emkit.models.hierarchical``), of the whole start
(``GaussianMixtureModel.initialize``: subset, transform, tree, cut, M-step) and of a full
``GaussianMixture(3, init_params="hc").fit``. Prints seconds; asserts nothing.
"""

from __future__ import annotations

import sys
import time

import numpy as np

import emkit
from emkit.core.data import ROW_WEIGHTS, Data
from emkit.models.gaussian import GaussianMixtureModel
from emkit.models.hierarchical import HC_SUBSET, hc


def data(n: int, d: int = 5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(3, d))
    return centres[rng.integers(0, 3, size=n)] + rng.normal(size=(n, d))


def main(sizes: list[int]) -> None:
    print(f"{'rows':>8} {'hc tree (s)':>12} {'initialize (s)':>15} {'fit, tree cached (s)':>21}")
    for n in sizes:
        x = data(n)
        t0 = time.perf_counter()
        hc(x[: min(n, HC_SUBSET)])
        t_tree = time.perf_counter() - t0
        model = GaussianMixtureModel(3, "full", init_params="hc")
        model = model.prepare_data(Data(("X", ROW_WEIGHTS), (x, None)))
        t0 = time.perf_counter()
        model.initialize(Data(("X", ROW_WEIGHTS), (x, None)), np.random.default_rng(0))
        t_init = time.perf_counter() - t0
        t0 = time.perf_counter()
        emkit.GaussianMixture(3, init_params="hc").fit(x)
        t_fit = time.perf_counter() - t0
        print(f"{n:>8} {t_tree:>12.2f} {t_init:>15.2f} {t_fit:>21.2f}")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [2000, 10_000])
