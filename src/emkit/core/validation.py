"""Input checks that give one clear ValueError naming the problem.

They accept NumPy arrays, Python sequences, torch / CuPy arrays (kept in their library) and
Dask arrays (checked lazily with one reduction each, never loaded whole).
"""

from __future__ import annotations

import numbers
from typing import Any, Iterable

import numpy as np

from emkit.core.arrays import get_namespace, is_dask, is_numpy, to_numpy


class NonNumericDataError(ValueError, TypeError):
    """Data that cannot be read as numbers (a ValueError, and a TypeError for scikit-learn's checks)."""


def _reduce_any(mask) -> bool:
    """bool(any(mask)) for any array library, computing Dask lazily."""
    if is_dask(mask):
        return bool(mask.any().compute())
    xp = get_namespace(mask)
    return bool(to_numpy(xp.any(mask)))


def _is_device_array(x: Any) -> bool:
    """torch / CuPy arrays, which stay in their own library (and on their device)."""
    try:
        import array_api_compat as compat
    except ImportError:  # pragma: no cover - without the extra every array is NumPy
        return False
    return bool(compat.is_torch_array(x) or compat.is_cupy_array(x))


def _is_complex(x: Any) -> bool:
    if _is_device_array(x):
        return bool(get_namespace(x).isdtype(x.dtype, "complex floating"))
    dtype = getattr(x, "dtype", None)
    try:
        return dtype is not None and np.dtype(dtype).kind == "c"
    except TypeError:  # pandas extension dtypes
        return False


def as_array(x: Any, name: str, *, ndim: int | tuple = (1, 2), dtype=None, allow_nan: bool = False,
             min_rows: int = 1) -> Any:
    """``x`` as an array of its own library (NumPy for lists and pandas), checked.

    NumPy, torch and CuPy arrays stay in their library and on their device; Dask arrays stay
    lazy (each check is one reduction); a Dask DataFrame becomes a Dask array. Integer input
    becomes float64, float32 stays float32.

    Parameters
    ----------
    name : str
        Used in messages ("X", "successes", ...).
    ndim : int or tuple of int
        Accepted numbers of dimensions.
    dtype : NumPy dtype, optional
        Convert NumPy input to this dtype.
    allow_nan : bool
        NaN marks missing values for this input; inf is never allowed.
    """
    if x is None:
        raise ValueError(f"{name} is required")
    if hasattr(x, "tocsr") or type(x).__module__.startswith("scipy.sparse"):
        raise ValueError(f"{name} is a sparse matrix; sparse input is not supported, pass a dense "
                         f"array (e.g. {name}.toarray())")
    if hasattr(x, "to_dask_array"):  # a Dask DataFrame or Series: row lengths are needed for chunking
        x = x.to_dask_array(lengths=True)
    if not (is_dask(x) or _is_device_array(x) or is_numpy(x)):
        if hasattr(x, "to_numpy"):  # pandas / polars
            x = x.to_numpy()
        if not is_dask(x):
            try:
                x = np.asarray(x)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{name} could not be read as a numeric array: {exc}") from None
    if _is_complex(x):
        raise ValueError(f"{name} has complex values: Complex data not supported; real numbers are required")
    ndims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if x.ndim not in ndims:
        hint = ""
        if x.ndim == 1 and 2 in ndims:
            hint = (f". Reshape your data: {name}.reshape(-1, 1) if it has a single feature, "
                    f"{name}.reshape(1, -1) if it is a single row")
        raise ValueError(f"{name} must have {' or '.join(map(str, ndims))} dimension(s), "
                         f"got shape {tuple(x.shape)}{hint}")
    if x.ndim == 2 and x.shape[1] == 0:
        raise ValueError(f"{name} has 0 feature(s) (shape={tuple(x.shape)}) while a minimum of 1 is required.")
    if is_numpy(x):
        if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
            try:
                x = x.astype(np.float64)
            except (TypeError, ValueError) as exc:
                raise NonNumericDataError(f"{name} must be numeric, got dtype {x.dtype}: {exc}") from None
        if dtype is not None:
            x = x.astype(dtype, copy=False)
        elif not np.issubdtype(x.dtype, np.floating):
            x = x.astype(np.float64)
    elif is_dask(x):
        if not np.issubdtype(x.dtype, np.floating):
            x = x.astype(np.float64)
    else:
        xp = get_namespace(x)
        if not xp.isdtype(x.dtype, "real floating"):
            x = xp.astype(x, xp.float64)
    n = x.shape[0] if x.ndim else 0
    if n is not None and not (isinstance(n, float) and np.isnan(n)) and n < min_rows:
        raise ValueError(f"{name} is empty: need at least {min_rows} row(s), got {n}")
    if _any_value(x, "isinf"):
        raise ValueError(f"{name} contains inf")
    if not allow_nan and _any_value(x, "isnan"):
        raise ValueError(f"{name} contains NaN (missing values are not supported here)")
    return x


def _any_value(x, test: str, block_rows: int = 65536) -> bool:
    """Whether ``test`` ("isinf" / "isnan") holds anywhere in ``x``: lazily for Dask, in row
    blocks for NumPy (no full-size boolean temporary), in one reduction otherwise."""
    if is_dask(x):  # NumPy's ufuncs stay lazy on Dask arrays (__array_ufunc__)
        return _reduce_any(getattr(np, test)(x))
    xp = get_namespace(x)
    if xp is np and x.ndim and x.shape[0] > block_rows:
        return any(bool(getattr(np, test)(x[i:i + block_rows]).any()) for i in range(0, x.shape[0], block_rows))
    return _reduce_any(getattr(xp, test)(x))


def as_counts(x: Any, name: str, *, ndim: int | tuple = 1):
    """Non-negative whole numbers (float dtype), kept in their array library."""
    arr = as_array(x, name, ndim=ndim)
    mod = np if is_dask(arr) else get_namespace(arr)  # np.round stays lazy on Dask (__array_function__)
    if _reduce_any(arr < 0):
        raise ValueError(f"{name} must be non-negative counts; Negative values in data")
    if _reduce_any(arr != mod.round(arr)):
        raise ValueError(f"{name} must be whole numbers (counts); found non-integer values")
    return arr


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
        raise ValueError(f"{name} must have a positive sum (all weights are zero)")
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


def check_fixed_groups(fixed: Any, groups: Iterable[str], owner: str = "this model") -> tuple[str, ...]:
    """The parameter groups held fixed, as a tuple, checked against ``groups``.

    ``fixed`` may be None, one group name (``"weights"``) or a sequence of names. This is the
    one place that says which spellings are accepted and what an unknown group reports.
    """
    if fixed is None:
        return ()
    names = (fixed,) if isinstance(fixed, str) else tuple(fixed)
    groups = list(groups)
    bad_type = [n for n in names if not isinstance(n, str)]
    if bad_type:
        raise ValueError(f"fixed must be a group name or a sequence of group names, got {fixed!r}")
    unknown = [n for n in names if n not in groups]
    if unknown:
        raise ValueError(f"unknown parameter group(s) in fixed: {sorted(set(unknown))}; "
                         f"{owner} has {groups}")
    return tuple(dict.fromkeys(names))


def is_simplex(p: Any, axis: int = -1, atol: float = 1e-6) -> bool:
    """Entries in [0, 1] that sum to 1 along ``axis`` (within ``atol``)."""
    arr = np.asarray(p, dtype=float)
    return bool(np.all(np.isfinite(arr)) and np.all(arr >= 0) and np.all(arr <= 1)
                and np.allclose(arr.sum(axis=axis), 1.0, atol=atol))


def is_symmetric(m: Any) -> bool:
    """Whether the square matrix ``m`` (finite) equals its transpose, entry by entry, to
    rounding: |m - m^T| <= 1e-12 max(1, max|m|) + 1e-8 |m^T| (``np.allclose`` with rtol=1e-8)."""
    m = np.asarray(m, dtype=float)
    return bool(np.all(np.abs(m - m.T) <= 1e-12 * max(1.0, float(np.abs(m).max(initial=0.0))) + 1e-8 * np.abs(m.T)))


def check_symmetric_positive_definite(matrices: Any, describe: Any) -> None:
    """Raise ValueError for the first matrix of the stack ``matrices`` (..., d, d) that is not
    finite, not symmetric or has no Cholesky factor. ``describe(j, problem)`` names matrix j
    in the message ("covariances_init[1] is not symmetric")."""
    arr = np.asarray(matrices, dtype=float)
    stack = arr.reshape((-1,) + arr.shape[-2:])
    for j, m in enumerate(stack):
        if not np.all(np.isfinite(m)):
            raise ValueError(f"{describe(j, 'finite')} contains NaN or inf")
        if not is_symmetric(m):
            raise ValueError(f"{describe(j, 'symmetric')} is not symmetric")
        try:
            np.linalg.cholesky(m)
        except np.linalg.LinAlgError:
            raise ValueError(f"{describe(j, 'positive definite')} is not positive definite") from None


def is_symmetric_positive_definite(matrices: Any) -> bool:
    """Every matrix along the last two axes is finite, symmetric (:func:`is_symmetric`) and
    has a Cholesky factor. The one positive-definiteness test of emkit."""
    arr = np.asarray(matrices, dtype=float)
    if arr.ndim < 2 or arr.shape[-1] != arr.shape[-2]:
        return False
    try:
        check_symmetric_positive_definite(arr, lambda j, problem: "matrix")
    except ValueError:
        return False
    return True


def check_random_state(random_state: Any) -> np.random.Generator:
    """A NumPy Generator from None, an int, a Generator or a legacy RandomState."""
    if random_state is None or isinstance(random_state, (numbers.Integral, np.integer)):
        return np.random.default_rng(random_state)
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**31 - 1))
    raise ValueError(f"random_state must be None, an int, a numpy Generator or RandomState; "
                     f"got {random_state!r}")
