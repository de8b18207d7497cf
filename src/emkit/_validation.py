"""Input checks that give one clear ValueError naming the problem.

They accept NumPy arrays, Python sequences, torch / CuPy arrays (kept in their library) and
Dask arrays (checked lazily with one reduction each, never loaded whole).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ._array import get_namespace, is_dask, is_numpy, to_numpy


def _reduce_any(mask) -> bool:
    """bool(any(mask)) for any array library, computing Dask lazily."""
    if is_dask(mask):
        return bool(mask.any().compute())
    xp = get_namespace(mask)
    return bool(to_numpy(xp.any(mask)))


def as_array(x: Any, name: str, *, ndim: int | tuple = (1, 2), dtype=None, allow_nan: bool = False,
             min_rows: int = 1) -> Any:
    """``x`` as an array of its own library (NumPy for lists), with shape and finiteness checked.

    Parameters
    ----------
    name : str
        Used in messages ("X", "successes", ...).
    ndim : int or tuple of int
        Accepted numbers of dimensions.
    dtype : NumPy dtype, optional
        Convert NumPy input to this dtype (float64 by default for non-float input; float32 kept).
    allow_nan : bool
        NaN marks missing values for this input; inf is never allowed.
    """
    if x is None:
        raise ValueError(f"{name} is required")
    if not (is_dask(x) or hasattr(x, "__array_namespace__") or is_numpy(x)):
        if hasattr(x, "to_dask_array"):  # dask DataFrame
            x = x.to_dask_array(lengths=True)
        elif hasattr(x, "to_numpy"):  # pandas / polars
            x = x.to_numpy()
        try:
            x = np.asarray(x)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} could not be read as a numeric array: {exc}") from None
    if is_numpy(x):
        x = np.asarray(x)
        if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
            try:
                x = x.astype(np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"{name} must be numeric, got dtype {x.dtype}") from None
        if dtype is not None:
            x = x.astype(dtype, copy=False)
        elif not np.issubdtype(x.dtype, np.floating):
            x = x.astype(np.float64)
    ndims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if x.ndim not in ndims:
        raise ValueError(f"{name} must have {' or '.join(map(str, ndims))} dimension(s), got shape {tuple(x.shape)}")
    n = x.shape[0] if x.ndim else 0
    if n is not None and not (isinstance(n, float) and np.isnan(n)) and n < min_rows:
        raise ValueError(f"{name} is empty: need at least {min_rows} row(s), got {n}")
    if x.ndim == 2 and x.shape[1] == 0:
        raise ValueError(f"{name} has no columns")
    xp = np if is_dask(x) else get_namespace(x)
    mod = _dask_array() if is_dask(x) else xp
    if _reduce_any(mod.isinf(x)):
        raise ValueError(f"{name} contains inf")
    if not allow_nan and _reduce_any(mod.isnan(x)):
        raise ValueError(f"{name} contains NaN (missing values are not supported here)")
    return x


def _dask_array():
    import dask.array as da
    return da


def as_counts(x: Any, name: str, *, ndim: int | tuple = 1) -> np.ndarray:
    """Non-negative integer counts (as float64 NumPy array)."""
    arr = as_array(x, name, ndim=ndim)
    a = to_numpy(arr) if not is_dask(arr) else arr
    if is_dask(a):
        return a
    if np.any(a < 0):
        raise ValueError(f"{name} must be non-negative counts; found {a[a < 0][:5].tolist()}")
    if np.any(a != np.round(a)):
        raise ValueError(f"{name} must be whole numbers (counts); found {a[a != np.round(a)][:5].tolist()}")
    return a.astype(np.float64)


def check_sample_weight(sample_weight: Any, n: int, name: str = "sample_weight"):
    """None, or a 1-D array of n non-negative finite weights with a positive sum."""
    if sample_weight is None:
        return None
    w = as_array(sample_weight, name, ndim=1)
    if w.shape[0] != n:
        raise ValueError(f"{name} has {w.shape[0]} entries but the data has {n} rows")
    if is_dask(w):
        return w
    xp = get_namespace(w)
    if bool(to_numpy(xp.any(w < 0))):
        raise ValueError(f"{name} must be non-negative")
    if not float(to_numpy(xp.sum(w))) > 0:
        raise ValueError(f"{name} must have a positive sum")
    return w


def check_n_components(n_components: Any, name: str = "n_components") -> int:
    if isinstance(n_components, bool) or not isinstance(n_components, numbers.Integral) or n_components < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {n_components!r}")
    return int(n_components)


def check_probabilities(p: Any, name: str, *, simplex: bool = False) -> np.ndarray:
    """Probabilities in [0, 1]; with ``simplex=True`` also summing to 1 along the last axis."""
    arr = np.asarray(p, dtype=float)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    if np.any(arr < 0) or np.any(arr > 1):
        raise ValueError(f"{name} must lie in [0, 1], got {arr.tolist()}")
    if simplex and not np.allclose(arr.sum(axis=-1), 1.0, atol=1e-6):
        raise ValueError(f"{name} must sum to 1, got sum {arr.sum(axis=-1).tolist()}")
    return arr


def check_choice(value: Any, name: str, choices) -> Any:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {tuple(choices)}")
    return value
