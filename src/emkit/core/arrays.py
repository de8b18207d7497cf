"""Array-library plumbing: one place that knows about NumPy, PyTorch, CuPy and Dask.

Numeric kernels call :func:`get_namespace` and write against the Python array API, so a
torch tensor or a CuPy array goes through the same code as a NumPy array. When
array-api-compat is not installed everything is NumPy.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

try:  # optional: only needed for non-NumPy arrays
    import array_api_compat as _compat
except ImportError:  # pragma: no cover - exercised when the extra is absent
    _compat = None  # type: ignore[assignment]  # the optional extra is absent: no module


def is_dask(x: Any) -> bool:
    """True for a dask array (checked by module name so dask need not be imported)."""
    return type(x).__module__.startswith("dask.")


def is_numpy(x: Any) -> bool:
    return isinstance(x, (np.ndarray, np.generic))


def get_namespace(*arrays: Any) -> Any:
    """The array namespace of ``arrays`` (NumPy's for NumPy arrays and plain Python data)."""
    if len(arrays) == 1 and type(arrays[0]) is np.ndarray:  # the common case, asked every pass
        return np
    present = [a for a in arrays if a is not None and not isinstance(a, (int, float, bool))]
    if not present or all(is_numpy(a) for a in present) or _compat is None:
        return np
    xp = _compat.array_namespace(*present)
    if _compat.is_numpy_namespace(xp):
        return np
    return xp


def to_numpy(x: Any) -> np.ndarray:
    """Copy any array (torch on any device, cupy, numpy, scalars) to a NumPy array on the host."""
    if type(x) is np.ndarray:  # the common case, asked many times an iteration
        return x
    if is_numpy(x):
        return np.asarray(x)
    if _compat is not None:
        if _compat.is_torch_array(x):
            return x.detach().cpu().numpy()
        if _compat.is_cupy_array(x):
            return x.get()
    return np.asarray(x)


def device_of(x: Any) -> Any:
    if _compat is None or is_numpy(x):
        return None
    return _compat.device(x)


def asarray_like(values: Any, like: Any, dtype: Any = None) -> Any:
    """``values`` as an array of the same library, device and (by default) dtype as ``like``
    (the one "array like this one" of emkit). Dask ``like`` gives NumPy: parameters and
    statistics always live in memory, only data is lazy."""
    if type(like) is np.ndarray:  # the common case, without the namespace look-up
        return np.asarray(values, dtype=dtype if dtype is not None else like.dtype)
    if is_dask(like):
        return np.asarray(values, dtype=dtype if dtype is not None else like.dtype)
    xp = get_namespace(like)
    if xp is np:
        return np.asarray(values, dtype=dtype if dtype is not None else getattr(like, "dtype", None))
    dtype = dtype if dtype is not None else like.dtype
    return xp.asarray(np.asarray(values), dtype=dtype, device=device_of(like))


_EPS_BY_DTYPE: dict = {}


def float_eps(x: Any) -> float:
    """Machine epsilon of ``x``'s floating dtype (float64's for integer or unknown data)."""
    dtype = getattr(x, "dtype", None)
    try:
        return _EPS_BY_DTYPE[dtype]
    except (KeyError, TypeError):  # first time for this dtype (or an unhashable one)
        pass
    name = str(dtype if dtype is not None else "float64")
    if "float32" in name:
        eps = float(np.finfo(np.float32).eps)
    elif "float16" in name:
        eps = float(np.finfo(np.float16).eps)
    else:
        eps = float(np.finfo(np.float64).eps)
    try:
        _EPS_BY_DTYPE[dtype] = eps
    except TypeError:
        pass
    return eps


def tree_add(a: Any, b: Any) -> Any:
    """Elementwise sum of two statistics containers (dicts, tuples, lists of arrays or numbers)."""
    if isinstance(a, dict):
        return {k: tree_add(a[k], b[k]) for k in a}
    if isinstance(a, (tuple, list)):
        return type(a)(tree_add(x, y) for x, y in zip(a, b))
    return a + b


def tree_map(fn: Callable[[Any], Any], a: Any) -> Any:
    """Apply ``fn`` to every leaf of a statistics container."""
    if isinstance(a, dict):
        return {k: tree_map(fn, v) for k, v in a.items()}
    if isinstance(a, (tuple, list)):
        return type(a)(tree_map(fn, x) for x in a)
    return fn(a)


def tree_nbytes(a: Any) -> int:
    """Bytes of the arrays in a statistics container (leaves without ``nbytes`` count 0)."""
    if isinstance(a, dict):
        return sum(tree_nbytes(v) for v in a.values())
    if isinstance(a, (tuple, list)):
        return sum(tree_nbytes(x) for x in a)
    return int(getattr(a, "nbytes", 0) or 0)


def host_rows(x: Any, n_max: int, rng: np.random.Generator) -> np.ndarray:
    """Up to ``n_max`` rows of ``x`` as a NumPy array on the host, drawn at random without
    replacement (all rows, in order, when there are at most ``n_max``).

    Stratified: the rows are cut into ``n_max`` consecutive strata of (nearly) equal size and
    one row is drawn uniformly from each, so every row has (nearly, strata differ by at most
    one row) the same chance and the index arrays stay of size ``n_max``
    (``rng.choice(n, replace=False)`` permutes all n indices).
    Initialisation (k-means, random starts) uses this so that it works the same for NumPy,
    torch, CuPy and Dask data without loading a large data set whole.
    """
    n = int(x.shape[0])
    if n <= n_max:
        rows = None
    else:
        edges = (np.arange(n_max + 1, dtype=np.int64) * n) // n_max
        rows = edges[:-1] + (rng.random(n_max) * np.diff(edges)).astype(np.int64)
    if is_dask(x):
        out = x if rows is None else x[rows]
        return np.asarray(out.compute())
    out = to_numpy(x)
    return out if rows is None else out[rows]


# --- array helpers for the family models
def lgamma(x: Any) -> Any:
    """log Gamma(x) elementwise, in the array library of ``x`` (SciPy for NumPy, blockwise for
    Dask, torch's own for torch tensors, cupyx for CuPy); the dtype is kept."""
    if is_dask(x):
        from scipy.special import gammaln
        return x.map_blocks(gammaln, dtype=x.dtype)
    if get_namespace(x) is np:
        from scipy.special import gammaln
        return gammaln(x).astype(x.dtype, copy=False)
    if _compat.is_torch_array(x):
        return x.lgamma()
    from cupyx.scipy.special import gammaln as cupy_gammaln  # pragma: no cover - needs a GPU
    return cupy_gammaln(x)


def astype(x: Any, dtype: Any) -> Any:
    """``x`` converted to ``dtype`` in its own library (NumPy, Dask, torch, CuPy)."""
    if is_dask(x) or is_numpy(x):
        return x.astype(dtype)
    return get_namespace(x).astype(x, dtype)


def one_hot(codes: Any, width: int) -> Any:
    """Integer codes (n, d) as one-hot indicators (n, d * width) of the codes' dtype, in the
    codes' library (a Dask array stays lazy)."""
    n, d = codes.shape
    if is_dask(codes):
        onehot = (codes[:, :, None] == np.arange(width)[None, None, :]).astype(codes.dtype)
        return onehot.reshape((n, d * width))
    xp = get_namespace(codes)
    levels = (np.arange(width, dtype=codes.dtype) if xp is np
              else xp.arange(width, dtype=codes.dtype, device=device_of(codes)))
    return xp.reshape(xp.astype(codes[:, :, None] == levels[None, None, :], codes.dtype), (n, d * width))
