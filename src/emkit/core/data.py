"""Data with named fields: the row-aligned arrays a model works on.

A model's data is a tuple of arrays that share their first axis (the *rows*). :class:`Data`
is such a tuple whose arrays also have names (``X``, ``sample_weight``, ``trials``,
``censored``...), so that code outside the model (standard errors, the bootstrap, Dask, the
command line) finds, say, the row weights by name rather than by position. A plain tuple is
still accepted everywhere a model takes data; it simply has no names.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

#: the field that holds row weights (or integer multiplicities) in every built-in model
ROW_WEIGHTS = "sample_weight"


class Data(tuple):
    """A tuple of row-aligned arrays with a name for each position.

    Parameters
    ----------
    fields : sequence of str
        One name per array.
    arrays : sequence
        The arrays (``None`` for an absent optional array, e.g. no row weights).

    Examples
    --------
    >>> import numpy as np
    >>> d = Data(("X", "sample_weight"), (np.zeros((3, 2)), None))
    >>> d.X.shape, d.sample_weight, d.fields
    ((3, 2), None, ('X', 'sample_weight'))
    """

    _names: tuple[str, ...]

    def __new__(cls, fields: Sequence[str], arrays: Iterable[Any]) -> "Data":
        arrays = tuple(arrays)
        fields = tuple(fields)
        if len(fields) != len(arrays):
            raise ValueError(f"Data has {len(fields)} field name(s) {fields} but {len(arrays)} array(s)")
        self = super().__new__(cls, arrays)
        self._names = fields
        return self

    @property
    def fields(self) -> tuple[str, ...]:
        """The name of each array, in order."""
        return self._names

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "_names":
            raise AttributeError(name)
        try:
            return self[self.fields.index(name)]
        except ValueError:
            raise AttributeError(f"the data has no field {name!r}; its fields are {self.fields}") from None

    def get(self, name: str, default: Any = None) -> Any:
        """The array called ``name``, or ``default`` when there is no such field."""
        fields = self.fields
        return self[fields.index(name)] if name in fields else default

    def position(self, name: str) -> int | None:
        """Index of the field ``name`` (None when absent)."""
        fields = self.fields
        return fields.index(name) if name in fields else None

    def replace(self, **arrays: Any) -> "Data":
        """A copy with some arrays replaced by name."""
        unknown = set(arrays) - set(self.fields)
        if unknown:
            raise ValueError(f"the data has no field(s) {sorted(unknown)}; its fields are {self.fields}")
        return Data(self.fields, (arrays.get(f, a) for f, a in zip(self.fields, self)))

    def with_arrays(self, arrays: Iterable[Any]) -> "Data":
        """The same field names over other arrays (e.g. a block of rows)."""
        return Data(self.fields, arrays)

    def __reduce__(self):
        return (Data, (self.fields, tuple(self)))

    def __repr__(self) -> str:
        parts = ", ".join(f"{f}={_describe(a)}" for f, a in zip(self.fields, self))
        return f"Data({parts})"


def _describe(a: Any) -> str:
    if a is None:
        return "None"
    shape = getattr(a, "shape", None)
    return f"<{type(a).__name__} {tuple(shape)}>" if shape is not None else repr(a)


def same_fields(template: Any, arrays: Iterable[Any]) -> Any:
    """``arrays`` as the same kind of container as ``template`` (Data keeps its names)."""
    return template.with_arrays(arrays) if isinstance(template, Data) else tuple(arrays)


def take_rows(data: Any, rows: Any) -> Any:
    """The rows ``rows`` (a slice or an integer index array) of every array in ``data``."""
    return same_fields(data, (None if a is None else a[rows] for a in data))


def row_weights(data: Any) -> Any:
    """The row weights of ``data`` by name (None for a plain tuple or no weights)."""
    return data.get(ROW_WEIGHTS) if isinstance(data, Data) else None
