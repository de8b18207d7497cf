"""Input checks that give one clear ValueError naming the problem.

They accept NumPy arrays, Python sequences, torch / CuPy arrays (kept in their library) and
Dask arrays (checked lazily with one reduction each, never loaded whole).
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any, Callable, Iterable, cast

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


def as_array(x: Any, name: str, *, ndim: int | tuple = (1, 2), dtype: Any = None, allow_nan: bool = False,
             min_rows: int = 1, check_values: bool = True) -> Any:
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
    check_values : bool
        False leaves the NaN and inf checks to the caller (:func:`scan_values` does them
        in the same pass as the column magnitudes).
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
            x = _frame_to_numpy(x)
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
    if check_values and _any_value(x, "isinf"):
        raise ValueError(f"{name} contains inf")
    if check_values and not allow_nan and _any_value(x, "isnan"):
        raise ValueError(f"{name} contains NaN (missing values are not supported here)")
    return x


def _frame_to_numpy(x: Any) -> Any:
    """A pandas or polars frame or series as a NumPy array. pandas' nullable columns (``Float64``,
    ``Int64``, ``boolean``...) become float64 with NaN where they hold ``pd.NA`` (a missing
    value), as polars' nulls do in its own conversion; columns that are not numbers are left
    to the checks that follow (which name them). Row-major, as an array of the same values
    would be: the fit does not depend on how a frame stores its columns."""
    out = None
    if type(x).__module__.startswith("pandas"):
        dtypes = list(x.dtypes) if hasattr(x, "columns") else [x.dtype]
        if any(not isinstance(d, np.dtype) for d in dtypes):  # an extension (nullable) dtype
            try:
                out = x.to_numpy(dtype=np.float64, na_value=np.nan)
            except (TypeError, ValueError):
                pass
    if out is None:
        out = x.to_numpy()
    return np.ascontiguousarray(out) if isinstance(out, np.ndarray) and out.ndim == 2 else out


def _any_value(x, test: str, block_rows: int = 65536) -> bool:
    """Whether ``test`` ("isinf" / "isnan") holds anywhere in ``x``: lazily for Dask, in row
    blocks for NumPy (no full-size boolean temporary), in one reduction otherwise."""
    if is_dask(x):  # NumPy's ufuncs stay lazy on Dask arrays (__array_ufunc__)
        return _reduce_any(getattr(np, test)(x))
    xp = get_namespace(x)
    if isinstance(x, np.ndarray) and x.dtype.kind == "f" and x.size and np.isfinite(np.sum(x, dtype=np.float64)):
        return False  # a finite sum: no NaN and no inf, from one cheap reduction (the usual case)
    if xp is np and x.ndim and x.shape[0] > block_rows:
        return any(bool(getattr(np, test)(x[i:i + block_rows]).any()) for i in range(0, x.shape[0], block_rows))
    return _reduce_any(getattr(xp, test)(x))


def _float_info(x: Any) -> np.finfo:
    """``np.finfo`` of ``x``'s floating dtype (float64's for integer or unknown data)."""
    name = str(getattr(x, "dtype", "float64"))
    for kind in ("float16", "float32"):
        if kind in name:
            return np.finfo(kind)
    return np.finfo(np.float64)


#: numbers per block of rows in the checks that read every row block by block (1 MiB in float64)
BLOCK_VALUES = 1 << 17


def _block_rows(x: Any, block_rows: int | None) -> int:
    """Rows per block: ``block_rows``, or as many as hold :data:`BLOCK_VALUES` numbers."""
    if block_rows is not None:
        return max(1, int(block_rows))
    d = 1 if x.ndim == 1 else max(1, int(x.shape[1]))
    return max(1, BLOCK_VALUES // d)


def _column_fmax(a: np.ndarray) -> np.ndarray:
    """``np.fmax.reduce(a, axis=0)`` (NaN skipped) of a 2-D (rows, D) array by pairwise halving:
    each step is one element-wise, vectorised ``fmax`` of two halves, where numpy's reduction
    along the rows of a row-major array runs a scalar loop (about 4x slower for D = 16)."""
    if a.ndim != 2 or a.shape[0] < 2:
        return np.fmax.reduce(a, axis=0)
    rows = a.shape[0]
    while rows > 1:
        half = rows // 2
        head = np.fmax(a[:half], a[half:2 * half])  # a new array: the input is never written
        if rows % 2:
            np.fmax(head[0], a[rows - 1], out=head[0])
        a, rows = head, half
    return a[0]


def column_max_abs(x: Any, block_rows: int | None = None) -> np.ndarray:
    """The largest absolute value of each column of ``x`` (a 1-D ``x`` is one column), NaN
    skipped; NaN for a column with no number. One reduction: lazy for Dask, in row blocks of
    about 1 MiB otherwise (no full-size temporary). A float64 NumPy array of length
    ``x.shape[1]``."""
    if is_dask(x):  # NumPy's functions stay lazy on Dask arrays (__array_function__)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns give NaN
            out = np.nanmax(abs(x), axis=0)
            return np.atleast_1d(np.asarray(out.compute(), dtype=np.float64))
    return _column_peaks(x, block_rows)


def _column_peaks(x: Any, block_rows: int | None, inspect: Callable[[Any, Any], None] | None = None) -> np.ndarray:
    """:func:`column_max_abs` of an in-memory ``x``, block by block; ``inspect(block, abs
    block)`` sees each NumPy block on the way (:func:`scan_values`' checks)."""
    xp = get_namespace(x)
    n = int(x.shape[0])
    d = 1 if x.ndim == 1 else int(x.shape[1])
    block_rows = _block_rows(x, block_rows)
    out = np.full(d, np.nan)
    for start in range(0, n, block_rows):
        block = x[start:start + block_rows]
        if xp is np:
            a = np.abs(block)
            if inspect is not None:
                inspect(block, a)
            part = _column_fmax(a)
        else:
            a = xp.abs(block)
            part = to_numpy(xp.max(xp.where(xp.isnan(a), xp.zeros_like(a) - 1, a), axis=0))
            part = np.where(np.asarray(part) < 0, np.nan, part)  # -1: no number in the block
        out = np.fmax(out, np.atleast_1d(np.asarray(part, dtype=np.float64)))
    return out


def scan_values(x: Any, name: str, *, allow_nan: bool = False, peaks: bool = True) -> tuple[np.ndarray | None, bool]:
    """The value checks of :func:`as_array` (inf refused; NaN refused unless ``allow_nan``)
    and, with ``peaks``, :func:`column_max_abs`, in one pass over ``x``: for a NumPy float
    array, block by block (about 1 MiB), one ``abs`` whose sum says whether the block holds
    NaN or inf at all (finite: it does not; the usual case) and whose column maxima are the
    peaks; a block whose sum is not finite is examined further. Other arrays: the separate
    checks. Returns ``(peaks or None, whether x has NaN)``."""
    if not (isinstance(x, np.ndarray) and x.dtype.kind == "f" and x.ndim in (1, 2)):
        has_nan = _value_checks(x, name, allow_nan)
        return (column_max_abs(x) if peaks else None), has_nan
    if not peaks:
        if not x.size or np.isfinite(np.sum(x, dtype=np.float64)):
            return None, False
        return None, _value_checks(x, name, allow_nan)
    has_nan = False

    def inspect(block: np.ndarray, a: np.ndarray) -> None:
        nonlocal has_nan
        if not np.isfinite(np.sum(a, dtype=np.float64)):  # NaN, inf, or a sum past the largest float
            has_nan = _value_checks(block, name, allow_nan) or has_nan

    return _column_peaks(x, None, inspect), has_nan


def _value_checks(x: Any, name: str, allow_nan: bool) -> bool:
    """Whether ``x`` has NaN; raises for inf, and for NaN unless ``allow_nan``."""
    if _any_value(x, "isinf"):
        raise ValueError(f"{name} contains inf")
    has_nan = bool(_any_value(x, "isnan"))
    if has_nan and not allow_nan:
        raise ValueError(f"{name} contains NaN (missing values are not supported here)")
    return has_nan


def check_magnitude(x: Any, name: str, *, what: str = "values", advice: str | None = None,
                    missing_columns: bool = False, peak: np.ndarray | None = None) -> None:
    """One clear ValueError for data whose numbers EM cannot square in ``x``'s dtype.

    Fits compute sums of squares (variances, k-means distances, the standardisation of the
    initialisation). This raises when the largest |value| of a column is so large that its
    square summed over the rows overflows (> sqrt(max / (4 n d))), or so small (but not 0)
    that its square underflows (< sqrt of the smallest normal number: subnormal squares), and,
    with ``missing_columns=True``, when a column is missing (NaN) in every row. One reduction
    over ``x`` (:func:`column_max_abs`), or none when ``peak`` (its result) is given."""
    if peak is None:
        peak = column_max_abs(x)
    n = max(int(x.shape[0]), 1)
    d = peak.shape[0]
    where = (lambda j: f" (column {j})") if d > 1 else (lambda j: "")
    advice = advice or f"rescale {name}"
    if missing_columns and np.isnan(peak).any():
        j = int(np.flatnonzero(np.isnan(peak))[0])
        raise ValueError(f"column {j} of {name} is missing (NaN) in every row; drop it (it carries no information)"
                         if d > 1 else f"{name} is missing (NaN) in every row")
    info = _float_info(x)
    dtype = info.dtype.name
    too_big = np.flatnonzero(peak > np.sqrt(float(info.max) / (4.0 * n * d)))
    if too_big.size:
        j = int(too_big[0])
        raise ValueError(f"{name} has {what} as large as {peak[j]:.3g}{where(j)}, whose squares (summed over "
                         f"the rows) overflow {dtype}; {advice}")
    too_small = np.flatnonzero((peak > 0) & (peak < np.sqrt(float(info.tiny))))
    if too_small.size:
        j = int(too_small[0])
        raise ValueError(f"{name} has {what} no larger than {peak[j]:.3g} in magnitude{where(j)}, so small that "
                         f"their squares underflow to 0 in {dtype}; {advice}")


def count_distinct_rows(x: Any, at_least: int | None = None, weights: Any = None,
                        block_rows: int | None = None) -> int:
    """The number of distinct rows of ``x`` (a 1-D ``x`` is one column), compared exactly as
    stored (no centring or other rounding transformation; -0.0 equals 0.0 and NaN equals NaN),
    among the rows of positive weight when ``weights`` is given.

    With ``at_least``, stop once that many distinct rows are found (the count returned is then
    ``at_least`` or more): usually the first block of rows settles it. In-memory arrays only
    (rows are copied to the host in blocks of about 1 MiB; with ``at_least`` the distinct rows
    kept between blocks stay fewer than ``at_least``)."""
    n = int(x.shape[0])
    block_rows = _block_rows(x, block_rows)
    w = None if weights is None else np.asarray(to_numpy(weights), dtype=np.float64).reshape(-1)
    # the first block small when a few distinct rows settle it (the usual case), then full blocks
    first = block_rows if at_least is None else min(block_rows, max(64, 8 * int(at_least)))
    bounds = [0, *range(first, n, block_rows), n] if n > first else [0, n]
    seen = None
    for start, stop in zip(bounds[:-1], bounds[1:]):
        block = np.asarray(to_numpy(x[start:stop]), dtype=np.float64)
        block = block[:, None] if block.ndim == 1 else block
        if w is not None:
            block = block[w[start:stop] > 0]
        block = block + 0.0  # a copy, with -0.0 made 0.0
        block[np.isnan(block)] = np.nan  # one NaN bit pattern
        rows = np.ascontiguousarray(block).view(np.dtype((np.void, block.dtype.itemsize * block.shape[1])))
        rows = np.unique(rows.reshape(-1)) if seen is None else np.unique(np.concatenate([seen, rows.reshape(-1)]))
        seen = rows
        if at_least is not None and seen.shape[0] >= at_least:
            break
    return 0 if seen is None else int(seen.shape[0])


def as_counts(x: Any, name: str, *, ndim: int | tuple = 1) -> Any:
    """Non-negative whole numbers (float dtype), kept in their array library."""
    arr = as_array(x, name, ndim=ndim)
    mod = np if is_dask(arr) else get_namespace(arr)  # np.round stays lazy on Dask (__array_function__)
    if _reduce_any(arr < 0):
        raise ValueError(f"{name} must be non-negative counts; Negative values in data")
    if _reduce_any(arr != mod.round(arr)):
        raise ValueError(f"{name} must be whole numbers (counts); found non-integer values")
    return arr


def check_sample_weight(sample_weight: Any, n: int, name: str = "sample_weight") -> Any:
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


#: how far outside [0, 1] rounding may push a probability (1.0000000000000002 from a sum of
#: floating-point numbers): such values are clipped into [0, 1], not rejected
PROBABILITY_ROUNDING = 1e-12


def check_probabilities(p: Any, name: str, *, simplex: bool = False) -> np.ndarray:
    """Probabilities in [0, 1]; with ``simplex=True`` also summing to 1 along the last axis.

    Values at most :data:`PROBABILITY_ROUNDING` (1e-12) outside [0, 1] are rounding (a fitted
    ``probs_`` of 1.0000000000000002 given back as a starting value): they are clipped into
    [0, 1]; anything farther outside is an error."""
    arr = np.asarray(p, dtype=float)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    if np.any(arr < -PROBABILITY_ROUNDING) or np.any(arr > 1 + PROBABILITY_ROUNDING):
        raise ValueError(f"{name} must lie in [0, 1], got {arr.tolist()}")
    arr = np.clip(arr, 0.0, 1.0)
    if simplex and not np.allclose(arr.sum(axis=-1), 1.0, atol=1e-6):
        raise ValueError(f"{name} must sum to 1, got sum {arr.sum(axis=-1).tolist()}")
    return arr


def check_choice(value: Any, name: str, choices: Iterable[Any]) -> Any:
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
    return _symmetric_stack(m[None])


def _symmetric_stack(stack: np.ndarray) -> bool:
    """:func:`is_symmetric` for every matrix of an (m, d, d) stack, in whole-stack operations."""
    transposed = np.swapaxes(stack, -1, -2)
    scale = np.maximum(1.0, np.abs(stack).max(axis=(-2, -1), initial=0.0))[:, None, None]
    return bool((np.abs(stack - transposed) <= 1e-12 * scale + 1e-8 * np.abs(transposed)).all())


def check_symmetric_positive_definite(matrices: Any, describe: Any, factorise: bool = True) -> None:
    """Raise ValueError for the first matrix of the stack ``matrices`` (..., d, d) that is not
    finite, not symmetric or has no Cholesky factor. ``describe(j, problem)`` names matrix j
    in the message ("covariances_init[1] is not symmetric"). ``factorise=False`` leaves the
    Cholesky factorisation to the caller (who factorises anyway and reports a failure with
    ``describe(j, "positive definite")``)."""
    arr = np.asarray(matrices, dtype=float)
    stack = arr.reshape((-1,) + arr.shape[-2:])
    if _stack_is_symmetric_positive_definite(stack, factorise):  # the usual case: whole-stack checks
        return
    for j, m in enumerate(stack):  # which one, and why
        if not np.all(np.isfinite(m)):
            raise ValueError(f"{describe(j, 'finite')} contains NaN or inf")
        if not is_symmetric(m):
            raise ValueError(f"{describe(j, 'symmetric')} is not symmetric")
        if not factorise:
            continue
        try:
            np.linalg.cholesky(m)
        except np.linalg.LinAlgError:
            raise ValueError(f"{describe(j, 'positive definite')} is not positive definite") from None


def _stack_is_symmetric_positive_definite(stack: np.ndarray, factorise: bool) -> bool:
    """Every matrix of the (m, d, d) stack passes :func:`check_symmetric_positive_definite`'s
    tests, checked with whole-stack operations (no Python loop over the matrices)."""
    if not np.isfinite(stack).all() or not _symmetric_stack(stack):
        return False
    if factorise:
        try:
            np.linalg.cholesky(stack)
        except np.linalg.LinAlgError:
            return False
    return True


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
        return np.random.default_rng(cast(Any, random_state))  # numpy's stubs do not list numbers.Integral
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**31 - 1))
    raise ValueError(f"random_state must be None, an int, a numpy Generator or RandomState; "
                     f"got {random_state!r}")
