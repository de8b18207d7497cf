"""k-means for initialisation: k-means++ seeding and weighted Lloyd iterations (NumPy only).

Initialisation runs on host rows (see :func:`emkit.core.arrays.host_rows`), so this works on
small NumPy arrays whatever library the data lives in. It is emkit's one k-means: Gaussian
mixtures (``init_params="kmeans"`` / ``"k-means++"``) and any other model that wants
k-means starting values use it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["kmeans", "kmeans_plusplus"]


def _squared_distances(x: np.ndarray, x_sq: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """|x_i - c_j|^2 for every row and centre, (n, k), clipped at 0 (``x_sq`` = |x_i|^2)."""
    out = x_sq[:, None] - 2.0 * x @ centres.T + np.einsum("ij,ij->i", centres, centres)[None, :]
    return np.maximum(out, 0.0)


def kmeans_plusplus(x: np.ndarray, k: int, rng: np.random.Generator,
                    sample_weight: np.ndarray | None = None) -> np.ndarray:
    """k-means++ seeds (k, D): greedy, 2 + log k candidates per seed (as scikit-learn), each
    row's chance proportional to its weight times its squared distance to the nearest seed.

    With fewer than ``k`` distinct rows (with positive weight) the seeds beyond them repeat the
    first seed (their clusters stay empty, as in scikit-learn)."""
    w = np.ones(x.shape[0]) if sample_weight is None else sample_weight
    return _seeds(x, np.einsum("ij,ij->i", x, x), w, k, rng)


def _seeds(x: np.ndarray, x_sq: np.ndarray, w: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    n = x.shape[0]
    n_trials = 2 + int(np.log(k))
    first = rng.choice(n, p=w / w.sum())
    centres = [x[first]]
    closest = _squared_distances(x, x_sq, x[first][None])[:, 0]
    for _ in range(1, k):
        pot = closest * w
        total = pot.sum()
        if not total > 0:  # every row with positive weight is a seed: the rest start empty
            centres.extend([centres[0]] * (k - len(centres)))
            break
        cand = np.searchsorted(np.cumsum(pot), rng.uniform(size=n_trials) * total)
        cand = np.minimum(cand, n - 1)
        cand_d = np.minimum(closest[:, None], _squared_distances(x, x_sq, x[cand]))
        best = int(np.argmin((cand_d * w[:, None]).sum(axis=0)))
        centres.append(x[cand[best]])
        closest = cand_d[:, best]
    return np.array(centres)


def kmeans(x: np.ndarray, k: int, rng: np.random.Generator, *, max_iter: int = 300,
           tol: float = 1e-4, sample_weight: np.ndarray | None = None) -> np.ndarray:
    """Labels of a small k-means: k-means++ seeding (greedy, 2 + log k candidates per seed, as
    scikit-learn) then Lloyd iterations until no centre moves more than ``tol`` times the mean
    per-feature variance (``max_iter=0``: each row labelled by its nearest seed). NumPy only
    (initialisation runs on host rows).

    With fewer than ``k`` distinct rows some clusters stay empty (no label points to them)."""
    n, d = x.shape
    w = np.ones(n) if sample_weight is None else sample_weight
    # distances are translation-invariant: centre first, so that |x|^2 - 2 x.c + |c|^2 does not
    # cancel catastrophically for data far from the origin (two clusters 1 apart at 1e8)
    x = x - (w @ x) / w.sum()
    sq = np.einsum("ij,ij->i", x, x)
    centres = _seeds(x, sq, w, k, rng)
    mean = w @ x / w.sum()
    scale = tol * max(float(w @ sq / w.sum() - mean @ mean) / d, 0.0)  # mean per-feature variance
    labels = np.argmin(_squared_distances(x, sq, centres), axis=1)
    for _ in range(max_iter):
        new = np.empty_like(centres)
        own = None  # each row's squared distance to its centre, computed once per iteration
        for j in range(k):
            members = labels == j
            if members.any():
                new[j] = w[members] @ x[members] / w[members].sum()
            else:  # empty cluster: re-seed it at the row farthest from its centre
                if own is None:
                    own = _squared_distances(x, sq, centres)[np.arange(n), labels]
                far = int(np.argmax(own))
                if own[far] > 0:
                    own[far] = -1.0  # the next empty cluster takes the next farthest row
                    new[j] = x[far]
                else:  # every row sits on a centre (fewer distinct rows than k): stays empty
                    new[j] = centres[j]
        shift = float(np.sum((new - centres) ** 2, axis=1).max())
        centres = new
        labels = np.argmin(_squared_distances(x, sq, centres), axis=1)
        if shift <= scale:
            break
    return labels
