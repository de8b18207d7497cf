"""Chunk functions of the three EM variants: exact, hard (classification) and stochastic EM.

Each has the signature the execution layer expects, ``(model, chunk, params, rng) ->
(stats, loglik)``, and is a module-level function so that a Dask pass can send it to workers.
Hard and stochastic EM need a model with discrete latent variables
(:class:`~emkit.models.base.DiscreteLatentModel`): they replace the posterior of each row by
a one-hot (or multinomial) draw before the model turns responsibilities into statistics.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from emkit.core.arrays import get_namespace, to_numpy
from emkit.execution.local import e_step_chunk
from emkit.models.base import logsumexp_rows

ALGORITHMS = ("em", "hard", "stochastic")


def _hard_or_stochastic(model, chunk, params: dict, rng, algorithm: str) -> tuple[Any, float]:
    log_joint = model.log_joint(chunk, params)
    xp = get_namespace(log_joint)
    row_ll = logsumexp_rows(log_joint, xp)
    weights = model.row_weights(chunk)
    n, k = log_joint.shape
    if algorithm == "hard":
        labels = to_numpy(xp.argmax(log_joint, axis=1))
        resp_np = np.zeros((n, k))
        resp_np[np.arange(n), labels] = 1.0
        if weights is not None:
            resp_np *= to_numpy(weights)[:, None]
    else:  # stochastic: draw each latent value from its posterior
        post = np.exp(to_numpy(log_joint) - to_numpy(row_ll)[:, None])
        post /= post.sum(axis=1, keepdims=True)
        if weights is not None and model.row_counts_are_integers:
            counts = np.rint(to_numpy(weights)).astype(np.int64)
            resp_np = np.stack([rng.multinomial(c, p) for c, p in zip(counts, post)]).astype(float)
        else:
            u = rng.random(n)[:, None]
            labels = (np.cumsum(post, axis=1) < u).sum(axis=1).clip(0, k - 1)
            resp_np = np.zeros((n, k))
            resp_np[np.arange(n), labels] = 1.0
            if weights is not None:
                resp_np *= to_numpy(weights)[:, None]
    resp = resp_np if xp is np else xp.asarray(resp_np, dtype=log_joint.dtype, device=log_joint.device)
    ll = row_ll * weights if weights is not None else row_ll
    return model.stats_from_responsibilities(chunk, resp), float(xp.sum(ll))


def hard_chunk(model: Any, chunk: tuple, params: dict, rng: np.random.Generator | None = None) -> tuple[Any, float]:
    """Classification EM: each row wholly in its most probable latent value."""
    return _hard_or_stochastic(model, chunk, params, rng, "hard")


def stochastic_chunk(model: Any, chunk: tuple, params: dict,
                     rng: np.random.Generator | None = None) -> tuple[Any, float]:
    """Stochastic EM: each row's latent value drawn from its posterior with ``rng``."""
    return _hard_or_stochastic(model, chunk, params, rng, "stochastic")


CHUNK_FUNCTIONS = {"em": e_step_chunk, "hard": hard_chunk, "stochastic": stochastic_chunk}
