"""Parameter groups, their constraints, and a free (minimal) parameterisation.

A model declares ``param_spec = {"weights": Simplex(), "probs": UnitInterval(), ...}``.
The engine uses the spec to

* hold groups fixed (``fixed=["weights"]``),
* measure parameter change for the stopping rule,
* map parameters to a free vector and back (supplemented EM, numerical Hessians,
  SQUAREM / Anderson extrapolation) and check that an extrapolated point is valid.

Every free parameterisation here is *linear* in the natural parameters (a simplex drops its
last coordinate, a symmetric matrix keeps its lower triangle), so standard errors of the
dropped coordinates follow exactly from the delta method with a constant Jacobian.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from emkit.core.arrays import asarray_like, to_numpy
from emkit.core.validation import check_fixed_groups, is_simplex, is_symmetric_positive_definite

Params = dict  # name -> array


class Constraint:
    """Base class: an unconstrained real array (free coordinates = all entries)."""

    def to_free(self, value: np.ndarray) -> np.ndarray:
        return np.asarray(value, dtype=float).ravel()

    def from_free(self, vec: np.ndarray, shape: tuple) -> np.ndarray:
        return np.asarray(vec, dtype=float).reshape(shape)

    def n_free(self, shape: tuple) -> int:
        return int(np.prod(shape, dtype=int))

    def is_valid(self, value: np.ndarray) -> bool:
        return bool(np.all(np.isfinite(value)))

    def jacobian(self, shape: tuple) -> np.ndarray:
        """d(full flattened value) / d(free vector), constant because the map is linear."""
        n = self.n_free(shape)
        cols = [self.from_free(np.eye(n)[j], shape).ravel() - self.from_free(np.zeros(n), shape).ravel()
                for j in range(n)]
        return np.stack(cols, axis=1) if cols else np.zeros((int(np.prod(shape)), 0))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Real(Constraint):
    """Any finite real values (means, locations)."""


class Positive(Constraint):
    """Strictly positive values (rates, variances)."""

    def is_valid(self, value: np.ndarray) -> bool:
        return bool(np.all(np.isfinite(value)) and np.all(value > 0))


class UnitInterval(Constraint):
    """Probabilities in [0, 1] (each entry on its own)."""

    def is_valid(self, value: np.ndarray) -> bool:
        return bool(np.all(np.isfinite(value)) and np.all(value >= 0) and np.all(value <= 1))


class Simplex(Constraint):
    """Non-negative vectors summing to one along the last axis; the last coordinate is dropped."""

    def to_free(self, value: np.ndarray) -> np.ndarray:
        value = np.asarray(value, dtype=float)
        return value[..., :-1].ravel()

    def from_free(self, vec: np.ndarray, shape: tuple) -> np.ndarray:
        head = np.asarray(vec, dtype=float).reshape(shape[:-1] + (shape[-1] - 1,))
        last = 1.0 - head.sum(axis=-1, keepdims=True)
        return np.concatenate([head, last], axis=-1)

    def n_free(self, shape: tuple) -> int:
        return int(np.prod(shape[:-1], dtype=int)) * (shape[-1] - 1)

    def is_valid(self, value: np.ndarray) -> bool:
        value = np.asarray(value)
        return is_simplex(value, atol=1e-8)


class SymmetricPositiveDefinite(Constraint):
    """A matrix or a stack of matrices (..., d, d), symmetric positive definite; the lower
    triangle (diagonal included) is free."""

    def to_free(self, value: np.ndarray) -> np.ndarray:
        value = np.asarray(value, dtype=float)
        d = value.shape[-1]
        rows, cols = np.tril_indices(d)
        return value[..., rows, cols].ravel()

    def from_free(self, vec: np.ndarray, shape: tuple) -> np.ndarray:
        d = shape[-1]
        rows, cols = np.tril_indices(d)
        lead = shape[:-2]
        tri = np.asarray(vec, dtype=float).reshape(lead + (len(rows),))
        out = np.zeros(shape)
        out[..., rows, cols] = tri
        out[..., cols, rows] = tri
        return out

    def n_free(self, shape: tuple) -> int:
        d = shape[-1]
        return int(np.prod(shape[:-2], dtype=int)) * d * (d + 1) // 2

    def is_valid(self, value: np.ndarray) -> bool:
        return is_symmetric_positive_definite(value)


class ParamSpace:
    """The free coordinates of the non-fixed parameter groups of one model.

    Parameters
    ----------
    spec : mapping of group name to :class:`Constraint`
    template : Params
        Parameters giving the shapes (and the values of fixed groups).
    fixed : sequence of str
        Groups held at their template value; they have no free coordinates.
    """

    def __init__(self, spec: Mapping[str, Constraint], template: Params, fixed: Sequence[str] = ()):
        self.fixed = check_fixed_groups(fixed, spec)
        self.spec = dict(spec)
        self.template = template
        self.free_names = [n for n in spec if n not in self.fixed]
        self.shapes = {n: tuple(np.shape(to_numpy(template[n]))) for n in spec}
        self.sizes = {n: spec[n].n_free(self.shapes[n]) for n in self.free_names}
        self.n_free = int(sum(self.sizes.values()))

    def to_vector(self, params: Params) -> np.ndarray:
        parts = [self.spec[n].to_free(to_numpy(params[n])) for n in self.free_names]
        return np.concatenate(parts) if parts else np.zeros(0)

    def from_vector(self, vec: np.ndarray) -> Params:
        out = dict(self.template)
        pos = 0
        for n in self.free_names:
            k = self.sizes[n]
            value = self.spec[n].from_free(vec[pos:pos + k], self.shapes[n])
            out[n] = asarray_like(value, self.template[n])
            pos += k
        return out

    def is_valid(self, params: Params) -> bool:
        return all(self.spec[n].is_valid(to_numpy(params[n])) for n in self.free_names)

    def jacobian(self) -> np.ndarray:
        """Block-diagonal d(full flattened non-fixed params)/d(free vector)."""
        blocks = [self.spec[n].jacobian(self.shapes[n]) for n in self.free_names]
        rows = sum(b.shape[0] for b in blocks)
        out = np.zeros((rows, self.n_free))
        r = c = 0
        for b in blocks:
            out[r:r + b.shape[0], c:c + b.shape[1]] = b
            r += b.shape[0]
            c += b.shape[1]
        return out

    def full_labels(self) -> list[tuple[str, tuple]]:
        """(group, index) for each entry of the full flattened non-fixed params."""
        return [(n, idx) for n in self.free_names for idx in np.ndindex(*self.shapes[n])]


def flatten_full(params: Params, names: Sequence[str]) -> np.ndarray:
    """All entries of the named groups, flattened in order (NumPy, float64)."""
    parts = [np.asarray(to_numpy(params[n]), dtype=float).ravel() for n in names]
    return np.concatenate(parts) if parts else np.zeros(0)


def copy_params(params: Params) -> Params:
    out = {}
    for k, v in params.items():
        out[k] = v.copy() if hasattr(v, "copy") else (v.clone() if hasattr(v, "clone") else v)
    return out


def check_param_values(params: Params, spec: Mapping[str, Constraint], where: str = "initial parameters") -> None:
    """Raise a ValueError naming the first group that breaks its constraint."""
    for name, constraint in spec.items():
        if name not in params:
            raise ValueError(f"{where}: missing parameter group {name!r}")
        value = to_numpy(params[name])
        if not np.all(np.isfinite(value)):
            raise ValueError(f"{where}: {name} contains NaN or inf")
        if isinstance(constraint, Simplex):
            if np.any(value < 0) or not np.allclose(value.sum(axis=-1), 1.0, atol=1e-6):
                raise ValueError(f"{where}: {name} must be non-negative and sum to 1, got {_one_line(value)}")
        elif isinstance(constraint, UnitInterval):
            bad = (value < 0) | (value > 1)
            if np.any(bad):
                raise ValueError(f"{where}: {name} must lie in [0, 1]; {_first_bad(value, bad)}")
        elif isinstance(constraint, Positive):
            bad = ~(value > 0)
            if np.any(bad):
                hint = " (a zero variance: a component on a single point; a regulariser such as reg_covar > 0 " \
                       "keeps it positive)" if name in ("covariances", "variances") and np.any(value == 0) else ""
                raise ValueError(f"{where}: {name} must be positive; {_first_bad(value, bad)}{hint}")
        elif isinstance(constraint, SymmetricPositiveDefinite):
            if not constraint.is_valid(value):
                raise ValueError(f"{where}: {name} must be symmetric positive definite")


def _one_line(value: np.ndarray) -> str:
    """A short one-line rendering of an array for an error message."""
    return np.array2string(np.asarray(value), threshold=12, max_line_width=10**6, precision=6).replace("\n", "")


def _first_bad(value: np.ndarray, bad: np.ndarray) -> str:
    """``entry (i, j) is v`` for the first offending entry (one line)."""
    index = tuple(int(i) for i in np.argwhere(bad)[0])
    where = index[0] if len(index) == 1 else index
    return f"entry {where} is {float(value[index]):.6g}"
