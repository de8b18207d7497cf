"""Acceleration of the EM map for every model: SQUAREM and Anderson mixing.

The engine calls ``accelerator.step(em_map, params, stats, loglik)`` once per iteration, where
``stats, loglik`` are the E-step at ``params``; a step returns ``(new_params, stats, loglik)``
at the new point. Both schemes work in the free parameterisation ``em_map.space`` (a simplex
without its last coordinate, covariances by their lower triangle), check that an
extrapolated point is valid (``em_map.space.is_valid``) and never return a point with a lower
observed log-likelihood than the current one, so the engine's monotonicity check holds.

Counting: ``em_map.n_evaluations`` (reported as ``n_em_evaluations``) counts M-steps, each
preceded by its E-step; an E-step spent on an extrapolated point that is then rejected is
counted as one more evaluation, so the count is an honest measure of cost.

SQUAREM (Varadhan & Roland 2008, scheme SqS3)
    From theta0: theta1 = M(theta0), theta2 = M(theta1), r = theta1 - theta0,
    v = theta2 - 2 theta1 + theta0, alpha = -||r|| / ||v|| clamped to at most -1,
    theta' = theta0 - 2 alpha r + alpha^2 v, then one stabilising EM step M(theta').
    If theta' is invalid or its log-likelihood is below that of theta0, alpha is moved
    halfway toward -1 (alpha = -1 gives theta' = theta2, i.e. plain EM). When ||v|| is at the
    level of rounding noise, alpha = -1 (no extrapolation from noise).

Anderson mixing (Walker & Ni 2011; Henderson & Varadhan 2019 for EM)
    theta_{k+1} = M(theta_k) - (dX + dF) gamma, with f = M(theta) - theta, dX, dF the last
    ``memory`` differences of iterates and residuals, and gamma the least-squares solution of
    dF gamma = f_k. Safeguard: when the mixed point is invalid or lowers the log-likelihood,
    the plain EM point M(theta_k) is taken and the memory restarts; likewise when ||f_k|| is
    at the level of rounding noise.

Every accelerated run ends on a plain EM step that meets the stopping rule (the loop in
:mod:`emkit.engine.loop` takes it), so the fit does not depend on where an extrapolation
happened to land.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["SquaremAccelerator", "AndersonAccelerator", "get_accelerator", "ACCELERATORS"]


def _loglik_ok(new_ll: float, old_ll: float) -> bool:
    """Not lower than before, up to rounding of the log-likelihood sum."""
    return math.isfinite(new_ll) and new_ll >= old_ll - 1e-12 * max(1.0, abs(old_ll))


def _noise_floor(*vectors: np.ndarray) -> float:
    """Norm below which a difference of EM iterates is rounding noise: the M-step's output
    carries relative errors of a few hundred machine epsilons (sums over chunks and threads in
    another order), so a smaller step or curvature measures nothing. The accelerators then take
    the plain EM step instead of an extrapolation whose length and direction would depend on
    that noise (the chunk size, the thread count, the row order)."""
    scale = max((float(np.linalg.norm(v)) for v in vectors), default=0.0)
    return 1e3 * float(np.finfo(float).eps) * (scale + math.sqrt(max(len(vectors[0]), 1)))


def _point(em_map, vec: np.ndarray):
    """Parameters at a free vector, or None when they break a constraint."""
    if not np.all(np.isfinite(vec)):
        return None
    try:
        params = em_map.space.from_vector(vec)
    except (ValueError, FloatingPointError):
        return None
    return params if em_map.space.is_valid(params) else None


class SquaremAccelerator:
    """SQUAREM, scheme SqS3, with validity and monotonicity safeguards.

    By default the step is the plain SqS3 one, ``alpha = -||r|| / ||v||`` clamped to at most -1.
    Optionally ``|alpha|`` is capped by a ``step_max`` that starts at ``step_max0`` and is
    multiplied by ``step_factor`` each time the cap binds and the step is accepted (divided by
    it after a rejection), the step-length control of Varadhan & Roland's SQUAREM package
    (``step_max0=1, step_factor=4`` there).

    Parameters
    ----------
    step_max0 : float
        Initial cap on ``|alpha|``, >= 1 (default: no cap; 1 makes the first cycle plain EM).
    step_factor : float
        Factor by which the cap grows or shrinks (``mstep`` in the SQUAREM package).
    max_backtracks : int
        Halvings of ``(|alpha| - 1)`` on an invalid extrapolated point before taking plain EM.
    """

    name = "squarem"

    def __init__(self, step_max0: float = math.inf, step_factor: float = 4.0, max_backtracks: int = 20) -> None:
        if not (step_max0 >= 1.0 and step_factor > 1.0):
            raise ValueError("step_max0 must be >= 1 and step_factor > 1")
        self.step_max0 = float(step_max0)
        self.step_factor = float(step_factor)
        self.max_backtracks = int(max_backtracks)
        self._em_map: Any = None  # the EMMap of the run under way
        self._step_max = self.step_max0

    def step(self, em_map: Any, params: dict, stats: Any, loglik: float) -> tuple[dict, Any, float]:
        if em_map is not self._em_map:  # a new run or restart
            self._em_map, self._step_max = em_map, self.step_max0
        space = em_map.space
        theta1 = em_map.m_step(params, stats)
        stats1, _ = em_map.e_step(theta1)
        theta2 = em_map.m_step(theta1, stats1)
        x0, x1, x2 = space.to_vector(params), space.to_vector(theta1), space.to_vector(theta2)
        r = x1 - x0
        v = x2 - 2 * x1 + x0
        r_norm, v_norm = float(np.linalg.norm(r)), float(np.linalg.norm(v))
        if v_norm <= _noise_floor(x0, x1, x2) or not math.isfinite(r_norm / v_norm):
            wanted = 1.0  # the curvature is rounding noise: no extrapolation (plain EM)
        else:
            wanted = r_norm / v_norm
        step = max(1.0, min(self._step_max, wanted))        # step = -alpha >= 1
        capped = wanted > self._step_max
        candidate = None
        for _ in range(self.max_backtracks):
            if step <= 1.0:
                break
            candidate = _point(em_map, x0 + 2 * step * r + step**2 * v)
            if candidate is not None:
                break
            step = 1.0 + 0.5 * (step - 1.0)  # halfway toward plain EM
            step = 1.0 if step < 1.0 + 1e-8 else step
        if step > 1.0 and candidate is not None:
            cand_stats, _ = em_map.e_step(candidate)
            new = em_map.m_step(candidate, cand_stats)  # the stabilising EM step
            new_stats, new_ll = em_map.e_step(new)
            if _loglik_ok(new_ll, loglik):
                if capped:
                    self._step_max *= self.step_factor
                return new, new_stats, new_ll
            # rejected: its E-step at `new` was spent for nothing; shorter cap next time
            em_map.count_evaluation()
            self._step_max = max(self.step_max0, self._step_max / self.step_factor)
        elif capped:
            # the cap (e.g. step_max0 = 1) allowed plain EM only: allow more next time
            self._step_max *= self.step_factor
        # plain EM: theta2 plus the stabilising step (three EM steps, monotone)
        stats2, _ = em_map.e_step(theta2)
        new = em_map.m_step(theta2, stats2)
        new_stats, new_ll = em_map.e_step(new)
        return new, new_stats, new_ll


class AndersonAccelerator:
    """Anderson mixing of the EM map with a monotonicity and validity safeguard.

    Parameters
    ----------
    memory : int
        Number of past differences used (m).
    regularization : float
        Relative Tikhonov term of the least-squares problem (keeps it well posed when the
        residual differences are nearly collinear near convergence).
    """

    name = "anderson"

    def __init__(self, memory: int = 5, regularization: float = 1e-10) -> None:
        if int(memory) < 1:
            raise ValueError(f"memory must be a positive integer, got {memory!r}")
        self.memory = int(memory)
        self.regularization = float(regularization)
        self._reset(None)

    def _reset(self, em_map) -> None:
        self._em_map = em_map
        self._xs: list[np.ndarray] = []
        self._fs: list[np.ndarray] = []
        self._last: np.ndarray | None = None

    def step(self, em_map: Any, params: dict, stats: Any, loglik: float) -> tuple[dict, Any, float]:
        space = em_map.space
        x = space.to_vector(params)
        # a new run (restart) or parameters we did not produce: forget the memory
        if em_map is not self._em_map or self._last is None or not np.array_equal(x, self._last):
            self._reset(em_map)
        mapped = em_map.m_step(params, stats)
        fx = space.to_vector(mapped) - x
        self._xs.append(x)
        self._fs.append(fx)
        if len(self._xs) > self.memory + 1:
            self._xs.pop(0)
            self._fs.pop(0)
        if float(np.linalg.norm(fx)) <= _noise_floor(x, fx):
            # the residual is rounding noise: mixing would extrapolate noise; plain EM point
            self._xs, self._fs = [], []
        elif len(self._xs) >= 2:
            d_x = np.diff(np.stack(self._xs, axis=1), axis=1)
            d_f = np.diff(np.stack(self._fs, axis=1), axis=1)
            gram = d_f.T @ d_f
            gram += self.regularization * (np.trace(gram) + 1e-300) * np.eye(gram.shape[0])
            try:
                gamma = np.linalg.solve(gram, d_f.T @ fx)
            except np.linalg.LinAlgError:
                gamma = None
            if gamma is not None:
                candidate = _point(em_map, x + fx - (d_x + d_f) @ gamma)
                if candidate is not None:
                    cand_stats, cand_ll = em_map.e_step(candidate)
                    if _loglik_ok(cand_ll, loglik):
                        self._last = space.to_vector(candidate)
                        return candidate, cand_stats, cand_ll
                    em_map.count_evaluation()  # an E-step spent on a rejected point
            # safeguard: the plain EM point, memory restarted from it
            self._xs, self._fs = [], []
        new_stats, new_ll = em_map.e_step(mapped)
        self._last = space.to_vector(mapped)
        return mapped, new_stats, new_ll


ACCELERATORS = {"squarem": SquaremAccelerator, "anderson": AndersonAccelerator}


def get_accelerator(name: str, **options: Any) -> Any:
    """A fresh accelerator by name: ``"squarem"`` or ``"anderson"`` (options go to its constructor)."""
    try:
        cls = ACCELERATORS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown accelerator {name!r}; choose one of {tuple(ACCELERATORS)}") from None
    return cls(**options)
