"""The ``emkit`` command line (needs the ``cli`` extra: click, rich, pyarrow).

::

    emkit fit DATA --model MODEL [options]        # MODEL: every estimator of the registry
    emkit select DATA --components 1-9
    emkit predict MODEL DATA [--output FILE]
    emkit demo [--plots DIR]

DATA is a CSV or TSV file with a header row (or none, when the first row is all numbers:
columns are then named ``1``, ``2``, ...) or a Parquet file, read with pyarrow: only the
columns a command uses are parsed. Without ``--columns`` every numeric column is used and the
others (text, such as iris's species, and a row index) are named on stderr. ``--sep``,
``--decimal``, ``--na-values`` and ``--index-col`` read European CSVs, other missing-value
markers and a pandas ``to_csv()`` index (an unnamed first column is taken as the row index by
itself). Empty fields and ``NA`` / ``NaN`` / ``N/A`` / ``null`` are missing values. Row
numbers in messages are line numbers in the file (row numbers in a Parquet file).

Every constructor setting an estimator declares (:mod:`emkit.estimators.settings`) is an
option of ``emkit fit``: ``--weights-init 0.3,0.7``, ``--means-init "2,54;4.3,80"``,
``--probs-init @start.json``, ``--reg-covar 1e-4``...; ``--init FILE.json`` gives starting
values by parameter group (the ``--json`` output of an earlier fit works).

Exit codes: 0 success, 1 a problem with the data or the fit (one line naming the file, row
and column), 2 a usage error (unknown option, bad value), 130 interrupted (Ctrl-C / SIGINT).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NoReturn, Sequence

import numpy as np

import emkit
from emkit import plot
from emkit.core.arrays import to_numpy
from emkit.core.validation import check_fixed_groups
from emkit.demo import main as demo_main
from emkit.estimators.registry import ESTIMATORS, estimator_class, registry_name
from emkit.estimators.selection import COVARIANCE_GRIDS, degenerate_components
from emkit.execution.processes import resolve_n_jobs
from emkit.io import load as load_model
from emkit.models.families import get_family
from emkit.models.gaussian import COVARIANCE_TYPES
from emkit.progress import FitProgress

try:
    import click
except ImportError:  # pragma: no cover - exercised only without the extra
    click = None  # type: ignore[assignment]

try:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pa_csv
except ImportError:  # pragma: no cover - exercised only without the extra
    pa = pc = pa_csv = None

#: missing-value markers: a field that is one of these (whitespace trimmed, any letter case)
MISSING = ("", "na", "nan", "n/a", "null")
#: exit code of an interrupted command (Ctrl-C / SIGINT): 128 + SIGINT, as shells report it
INTERRUPTED = 130


# --------------------------------------------------------------------------- what the CLI knows of estimators
@dataclass(frozen=True)
class Feeding:
    """How the command line feeds data to one estimator class (see :data:`FEEDING`)."""

    #: NaN entries are missing values that EM fills in (otherwise every value is required)
    missing_values: bool = False
    #: one selected column goes in as a 1-D array
    vector: bool = False
    #: successes out of trials: the data methods take ``trials=`` (and the first column)
    trials: bool = False
    #: ``fit`` takes ``sample_weight=``
    weights: bool = True


#: the one table of per-estimator facts, by registry name (other estimators: the defaults;
#: a ``FiniteMixture`` is fed as its family asks)
FEEDING: dict[str, Feeding] = {
    "GaussianMixture": Feeding(missing_values=True),
    "PoissonMixture": Feeding(vector=True),
    "BinomialMixture": Feeding(vector=True, trials=True),
    "ExponentialMixture": Feeding(vector=True),
    "NormalMixture": Feeding(vector=True),
    "CategoricalMixture": Feeding(vector=True),
    "Exponential": Feeding(missing_values=True, vector=True, weights=False),
    "AlleleFrequencies": Feeding(weights=False),
}


@dataclass(frozen=True)
class CliModel:
    """One choice of ``--model``."""

    #: registry name of the estimator fitted
    estimator: str
    #: registry name of the estimator for ``--components 1`` (None: ``estimator``)
    single: str | None = None
    #: default ``--components``
    components: int = 2
    #: the data is exactly one column
    one_column: bool = False
    #: ``--covariance-type`` applies
    covariance_type: bool = False
    #: ``--plot`` also draws snapshots of the fit (2-D data), which needs the parameter history
    snapshots: bool = False
    #: the data are counts of labelled rows (a text column and a count column), not a matrix
    counts: bool = False


#: what differs from the defaults of :class:`CliModel`, by registry name; the ``--model``
#: name of an estimator is its registry name in lower case, without "Mixture", words joined
#: by "-" (MultivariateNormalMixture: ``multivariate-normal``), unless given here
MODEL_FACTS: dict[str, dict] = {
    "GaussianMixture": {"covariance_type": True, "snapshots": True},
    "ExponentialMixture": {"single": "Exponential", "components": 1, "one_column": True},
    "FiniteMixture": {"name": "finite"},
    "AlleleFrequencies": {"name": "alleles", "counts": True},
}


def _model_name(estimator: str) -> str:
    facts = MODEL_FACTS.get(estimator, {})
    if "name" in facts:
        return facts["name"]
    base = estimator[:-len("Mixture")] if estimator.endswith("Mixture") and estimator != "Mixture" else estimator
    return re.sub(r"(?<!^)(?=[A-Z])", "-", base).lower()


def _cli_models() -> dict[str, CliModel]:
    """The ``--model`` choices: every estimator of the registry (one that is the one-component
    form of another, as ``Exponential`` of ``ExponentialMixture``, is reached through it)."""
    singles = {facts["single"] for facts in MODEL_FACTS.values() if "single" in facts}
    models = {}
    for name in ESTIMATORS:
        if name in singles:
            continue
        facts = {k: v for k, v in MODEL_FACTS.get(name, {}).items() if k != "name"}
        models[_model_name(name)] = CliModel(name, **facts)
    return models


#: the ``--model`` choices, from the estimator registry
MODELS: dict[str, CliModel] = _cli_models()


def feeding(estimator: Any) -> Feeding:
    """The :class:`Feeding` of an estimator (by its registry name; a ``FiniteMixture`` by its
    family: 1-D data when the family takes it, ``trials`` when it asks for them)."""
    name = registry_name(type(estimator)) or ""
    if name in FEEDING:
        return FEEDING[name]
    family = getattr(estimator, "family", None)
    if family is not None:
        try:
            fam = get_family(family, **(getattr(estimator, "family_options", None) or {}))
        except (TypeError, ValueError):
            return Feeding()
        return Feeding(vector=1 in tuple(getattr(fam, "ndim", ())), trials="trials" in fam.inputs)
    return Feeding()


# --------------------------------------------------------------------------- errors
if click is not None:
    class DataError(click.ClickException):
        """A problem with the input data or the fit: exit code 1, one line."""

        exit_code = 1

        def show(self, file=None) -> None:
            click.echo(f"emkit: error: {self.format_message()}", err=True)
else:  # pragma: no cover
    class DataError(Exception):  # type: ignore[no-redef]
        def __init__(self, message: str) -> None:
            super().__init__(message)
            self.message = message


# --------------------------------------------------------------------------- reading data
class Table:
    """Numeric columns read from a file: ``names`` and a float matrix ``values`` (NaN = missing).

    ``lines[i]`` is the file line of data row i, for messages (worked out when first asked for:
    only messages need it).
    """

    def __init__(self, path: str, names: list[str], values: np.ndarray,
                 lines: np.ndarray | Callable[[], np.ndarray]) -> None:
        self.path = path
        self.names = names
        self.values = values
        self._lines = lines

    @property
    def lines(self) -> np.ndarray:
        if callable(self._lines):
            self._lines = np.asarray(self._lines())
        return self._lines

    def column(self, name: str) -> np.ndarray:
        return self.values[:, self.index(name)]

    def index(self, name: str) -> int:
        if name in self.names:
            return self.names.index(name)
        raise DataError(f"{self.path}: column {name!r} not found; columns are {', '.join(map(repr, self.names))}")

    def select(self, names: Sequence[str]) -> np.ndarray:
        return self.values[:, [self.index(n) for n in names]]

    def require_some(self, names: Sequence[str]) -> None:
        """A clear error at the first row whose every value among ``names`` is missing."""
        empty = np.isnan(self.select(names)).all(axis=1)
        if len(names) > 1 and empty.any():
            row = int(np.argmax(empty))
            raise DataError(f"{self.path}: row {self.lines[row]}: every column ({', '.join(names)}) is missing")

    def require_complete(self, names: Sequence[str]) -> None:
        """A clear error at the first missing value among ``names``."""
        cols = [self.index(n) for n in names]
        missing = np.isnan(self.values[:, cols])
        if missing.any():
            row, col = np.argwhere(missing)[0]
            raise DataError(f"{self.path}: row {self.lines[row]}, column {names[col]!r}: missing value "
                            f"(this model needs every value)")


def _number_pattern(decimal: str) -> str:
    """A finite number as text (RE2 and Python syntax), with ``decimal`` as the decimal mark."""
    d = re.escape(decimal)
    return rf"^[+-]?(?:\d+(?:{d}\d*)?|{d}\d+)(?:[eE][+-]?\d+)?$"


#: inf and NaN spelled out (they parse as floats, so a column holding them is numeric)
_SPECIAL_NUMBER = r"(?i)^[+-]?(?:inf|infinity|nan)$"
#: markers of a missing value besides MISSING, in lower case (``float`` reads them as NaN)
_NAN_SIGNS = ("-nan", "+nan")
#: MISSING as pyarrow matches null values (exactly): the usual spellings
_MISSING_SPELLINGS = tuple(sorted({s for m in MISSING for s in (m, m.upper(), m.capitalize(), m.title())}
                                  | {"NaN"}))
_UTF8_BOM = b"\xef\xbb\xbf"
#: a line of spaces and tabs only: a blank line (as the csv module reads it)
_WHITESPACE_LINE = re.compile(rb"(?m)^[ \t]+(?=\r?$)")
_BLANK = re.compile(rb"\s*")


def _blank_edges(data: bytes) -> bytes:
    """``data`` without the spaces and tabs of its blank lines before the first row and after
    the last (the same line breaks, so the same line numbers). Blank lines between rows are
    dropped only when pyarrow cannot parse the file with them (``CsvFile._arrow``): looking
    for them costs as much as a third of the parsing."""
    head = re.match(rb"[ \t\r\n]*", data).group()  # type: ignore[union-attr]  # always matches
    head = head[:max(head.rfind(b"\n"), head.rfind(b"\r")) + 1]
    if b" " in head or b"\t" in head:
        data = head.translate(None, b" \t") + data[len(head):]
    tail = re.search(rb"[ \t\r\n]*\Z", data[-4096:]).group()  # type: ignore[union-attr]  # always matches
    breaks = [i for i in (tail.find(b"\n"), tail.find(b"\r")) if i >= 0]
    tail = tail[min(breaks):] if breaks else b""
    if b" " in tail or b"\t" in tail:
        data = data[:len(data) - len(tail)] + tail.translate(None, b" \t")
    return data


@dataclass(frozen=True)
class ReadOptions:
    """How to read a CSV file: ``--sep``, ``--decimal``, ``--na-values``, ``--index-col``."""

    #: field separator (None: ``\\t`` for .tsv / .tab files, else the most frequent of
    #: ``,`` ``;`` tab ``|`` in the first line, ``,`` excluded when it is the decimal mark)
    sep: str | None = None
    #: decimal mark of the numbers: "." or ","
    decimal: str = "."
    #: more missing-value markers (exact, after trimming whitespace), e.g. ``(".", "-999")``
    na_values: tuple[str, ...] = ()
    #: a column that is the row index, left out (name, or position: 1 is the first column);
    #: None: an unnamed first column (as pandas' ``to_csv()`` writes) is the index
    index_col: str | None = None

    def __post_init__(self) -> None:
        if self.sep is not None and len(self.sep) != 1:
            raise ValueError(f"the separator must be one character, got {self.sep!r}")
        if len(self.decimal) != 1 or self.decimal in "0123456789+-eE\"\r\n":
            raise ValueError(f"the decimal mark must be one character such as '.' or ',', got {self.decimal!r}")
        if self.sep is not None and self.sep == self.decimal:
            raise ValueError(f"the separator and the decimal mark are both {self.sep!r}")
        if self.sep is not None and self.sep in "\"\r\n":
            raise ValueError(f"{self.sep!r} cannot be the separator")


def _parse_number(text: str, options: ReadOptions = ReadOptions()) -> float:
    stripped = text.strip()
    if stripped.lower() in MISSING + _NAN_SIGNS or stripped in options.na_values:
        return math.nan
    if not re.fullmatch(_number_pattern(options.decimal), stripped):
        raise ValueError(stripped)
    return float(stripped.replace(options.decimal, "."))


def _looks_numeric(fields: list[str], options: ReadOptions = ReadOptions()) -> bool:
    for f in fields:
        try:
            _parse_number(f, options)
        except ValueError:
            return False
    return any(f.strip().lower() not in MISSING and f.strip() not in options.na_values for f in fields)


#: a number with a decimal comma (when the decimal mark is "."): a hint in messages
_DECIMAL_COMMA = r"^[+-]?\d*,\d+(?:[eE][+-]?\d+)?$"


def _not_a_number(path: str, line: int, name: str, text: str, options: ReadOptions) -> DataError:
    hint = ""
    if options.decimal == "." and re.fullmatch(_DECIMAL_COMMA, text):
        hint = " (a decimal comma? read it with --decimal ,)"
    elif text and not re.search(r"\w", text) or text.lower() in ("#n/a", "missing", "none", "nil"):
        hint = f" (a missing-value marker? read it with --na-values {text})"
    return DataError(f"{path}: row {line}, column {name!r}: not a number {text!r}{hint}")


def _first(mask: np.ndarray) -> int | None:
    hits = np.flatnonzero(mask)
    return int(hits[0]) if hits.size else None


# pyarrow arrays become NumPy arrays through their buffers: pyarrow's own conversions (and any
# Python scalar handed to pyarrow.compute) import pandas when it is installed, a third of a
# second at every start of the command line
def _chunks(values) -> list:
    return [c for c in (values.chunks if isinstance(values, pa.ChunkedArray) else [values]) if len(c)]


def _bits(buffer, offset: int, n: int) -> np.ndarray:
    return np.unpackbits(np.frombuffer(buffer, dtype=np.uint8), bitorder="little")[offset:offset + n].astype(bool)


def _floats(values) -> np.ndarray:
    """A float64 pyarrow (chunked) array as NumPy, NaN where null."""
    parts = [np.empty(0)]
    for c in _chunks(values):
        validity, data = c.buffers()[:2]
        part = np.frombuffer(data, dtype=np.float64, count=c.offset + len(c))[c.offset:].copy()
        if c.null_count:
            part[~_bits(validity, c.offset, len(c))] = np.nan
        parts.append(part)
    return np.concatenate(parts)


def _bools(values) -> np.ndarray:
    """A boolean pyarrow (chunked) array as NumPy, False where null."""
    parts = [np.zeros(0, dtype=bool)]
    for c in _chunks(values):
        validity, data = c.buffers()[:2]
        part = _bits(data, c.offset, len(c))
        if c.null_count:
            part &= _bits(validity, c.offset, len(c))
        parts.append(part)
    return np.concatenate(parts)


class DataFile:
    """A data file opened for reading: its column ``names`` (the row index left out) are
    known, its numbers are parsed by :meth:`read` for the columns asked for only."""

    path: str
    names: list[str]
    #: (name, why) of the columns left out: not numeric (why: "text", or the Parquet type) or
    #: the row index (why: "row index") found by itself
    left_out: list[tuple[str, str]]

    def index(self, name: str) -> int:
        """Position of column ``name`` in :attr:`names` (a one-line error naming the columns)."""
        if name in self.names:
            return self.names.index(name)
        raise DataError(f"{self.path}: column {name!r} not found; columns are {', '.join(map(repr, self.names))}")

    def numeric_names(self) -> list[str]:
        """The numeric columns, in file order."""
        raise NotImplementedError

    def text_names(self) -> list[str]:
        """The columns that are not numeric (text), in file order."""
        numeric = set(self.numeric_names())
        return [n for n in self.names if n not in numeric]

    def read(self, names: Sequence[str]) -> Table:
        """The columns ``names`` as numbers (NaN where missing)."""
        raise NotImplementedError

    def read_text(self, name: str) -> tuple[list[str | None], Callable[[], np.ndarray]]:
        """Column ``name`` as text (whitespace trimmed; None where a Parquet value is null)
        and the file lines of its rows."""
        raise NotImplementedError

    def all_numeric(self) -> Table:
        """Every numeric column (an error when there is none)."""
        names = self.numeric_names()
        if not names:
            reasons = "; ".join(f"column {n!r} is not numeric ({why})" for n, why in self.left_out
                                if why != "row index")
            raise DataError(f"{self.path}: no numeric column ({reasons or 'no columns'})")
        return self.read(names)


class CsvFile(DataFile):
    """A CSV / TSV file read by pyarrow's CSV reader: only the columns asked for are parsed,
    straight into floats; the messages of a file that does not parse come from Python's csv
    module, which finds the row at fault."""

    def __init__(self, p: Path, shown: str, options: ReadOptions) -> None:
        self.path = shown
        self.options = options
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise DataError(f"{shown}: cannot be read ({exc.strerror or exc})") from None
        if data.startswith(_UTF8_BOM):
            data = data[len(_UTF8_BOM):]
        if not data.isascii():
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(f"{shown}: not a text file (byte {exc.start} is not UTF-8)") from None
        if _BLANK.fullmatch(data):
            raise DataError(f"{shown}: empty file")
        self.data = _blank_edges(data)
        self._blank_lines_dropped = False
        self.quoted = b'"' in self.data  # a quoted field may hold a line break
        self.delimiter = options.sep or self._sniff(p)
        self.number = _number_pattern(options.decimal)
        self.null_values = sorted(set(_MISSING_SPELLINGS) | set(options.na_values))
        self.missing_pattern = "(?i)^(?:" + "|".join(re.escape(m) for m in MISSING + _NAN_SIGNS) + ")$"
        self.na_pattern = "^(?:" + "|".join(re.escape(m) for m in options.na_values) + ")$"
        self._numeric: dict[str, bool] | None = None
        self._record_lines: np.ndarray | None = None
        self._header()

    # ------------------------------------------------------------------ the layout
    def _sniff(self, p: Path) -> str:
        if p.suffix.lower() in (".tsv", ".tab"):
            return "\t"
        head = self.data[:1 << 16].decode("utf-8", errors="replace")
        first = next((line for line in head.splitlines() if line.strip()), "")
        candidates = [c for c in (",", "\t", ";", "|") if c != self.options.decimal]
        best = max(candidates, key=first.count)  # the first of the most frequent
        if not first.count(best) and self.options.decimal in first:
            # "a,b" read with --decimal , would be one column, and "1,5" the number 1.5
            raise DataError(f"{self.path}: the first line has no separator but {self.options.decimal!r}, which "
                            f"--decimal makes the decimal mark; give the separator with --sep")
        return best if first.count(best) else candidates[0]

    def _parse_options(self):
        return pa_csv.ParseOptions(delimiter=self.delimiter, newlines_in_values=self.quoted)

    def _read_options(self, **extra):
        if self.has_header:
            return pa_csv.ReadOptions(**extra)
        return pa_csv.ReadOptions(column_names=self.all_names, **extra)

    def _header(self) -> None:
        """Column names (from the first row, or ``1``, ``2``, ... when it is all numbers), the
        index column, and the first block of rows as text (to tell numeric columns)."""
        options = pa_csv.ConvertOptions(default_column_type=pa.string(), strings_can_be_null=False,
                                        quoted_strings_can_be_null=False)

        def first_block():
            for block in (1 << 18, 1 << 26):  # the first 256 kB are enough, unless a row is longer
                try:
                    return pa_csv.open_csv(pa.BufferReader(self.data),
                                           read_options=pa_csv.ReadOptions(autogenerate_column_names=True,
                                                                           block_size=block),
                                           parse_options=self._parse_options(), convert_options=options
                                           ).read_next_batch()
                except pa.ArrowInvalid as exc:
                    if "straddl" not in str(exc) or block > 1 << 18:
                        raise
                except StopIteration:
                    raise DataError(f"{self.path}: empty file") from None

        first = self._arrow(first_block)
        fields = [first.column(j)[0].as_py() for j in range(first.num_columns)]
        # a header of numbers after an unnamed index column (pandas' to_csv() of a frame with
        # columns 0, 1, ...) is still a header: the rows below have an index value there
        index_header = (len(fields) > 1 and not fields[0].strip() and first.num_rows > 1
                        and [f.strip() for f in fields[1:]] == [str(j) for j in range(len(fields) - 1)]
                        and bool(first.column(0)[1].as_py().strip()))
        self.has_header = index_header or not _looks_numeric(fields, self.options)
        if self.has_header:
            names = [f.strip() for f in fields]
            self.sample = first.slice(1)
        else:
            names = [str(j + 1) for j in range(len(fields))]
            self.sample = first
        self.all_names = names
        self.raw = dict(zip(names, fields if self.has_header else names))
        self.left_out = []
        index = self._index_position(names)
        if self.has_header:
            empty = [j for j, n in enumerate(names) if not n and j != index]
            dupes = sorted({n for n in names if names.count(n) > 1 and n})
            if dupes:
                raise DataError(f"{self.path}: duplicate column name(s) {', '.join(map(repr, dupes))} in the header")
            if empty:
                raise DataError(f"{self.path}: row {self._header_line()}: the header has an empty column name")
        self.index_position = index
        self.names = [n for j, n in enumerate(names) if j != index]
        self.positions = {n: j for j, n in enumerate(names) if j != index}

    def _index_position(self, names: list[str]) -> int | None:
        wanted = self.options.index_col
        if wanted is None:
            if self.has_header and len(names) > 1 and names[0] == "":
                self.left_out.append(("", "row index"))
                return 0
            return None
        if wanted in names:
            return names.index(wanted)
        if wanted.strip().isdigit() and 1 <= int(wanted) <= len(names):
            return int(wanted) - 1
        raise DataError(f"{self.path}: --index-col {wanted!r} not found; columns are "
                        f"{', '.join(map(repr, names))} (or a position, 1 to {len(names)})")

    def _header_line(self) -> int:
        stripped = self.data.lstrip(b"\r\n")
        skipped = self.data[:len(self.data) - len(stripped)]
        return skipped.count(b"\n") + skipped.replace(b"\r\n", b"").count(b"\r") + 1

    # ------------------------------------------------------------------ numeric columns
    def _missing(self, text):
        """Where trimmed text ``text`` is a missing-value marker (pyarrow boolean array; a
        regular expression rather than ``is_in``, whose options make pyarrow import pandas)."""
        marks = pc.match_substring_regex(text, self.missing_pattern)
        if self.options.na_values:
            marks = pc.or_(marks, pc.match_substring_regex(text, self.na_pattern))
        return marks

    def numeric_names(self) -> list[str]:
        if self._numeric is None:
            self._numeric = {}
            for name in self.names:
                text = pc.utf8_trim_whitespace(self.sample.column(self.positions[name]))
                present = pc.invert(self._missing(text))
                number = pc.or_(pc.match_substring_regex(text, self.number),
                                pc.match_substring_regex(text, _SPECIAL_NUMBER))
                if self.options.decimal == ".":  # numbers with a decimal comma: an error that says so
                    number = pc.or_(number, pc.match_substring_regex(text, _DECIMAL_COMMA))
                # numeric: some value of the first block is a number, or none is given there
                self._numeric[name] = (not pc.any(present).as_py()) or bool(pc.any(pc.and_(present, number)).as_py())
            self.left_out += [(n, "text") for n in self.names if not self._numeric[n]]
        return [n for n in self.names if self._numeric[n]]

    # ------------------------------------------------------------------ reading
    def _arrow(self, read: Callable[[], Any], conversion_errors: bool = False) -> Any:
        """``read()``, a pyarrow read of the file. A file that does not parse is read again
        without its lines of spaces (blank lines, which are no rows), then explained by
        :meth:`_diagnose`; with ``conversion_errors``, a value pyarrow cannot convert raises
        ``pyarrow.ArrowInvalid`` to the caller."""
        while True:
            try:
                return read()
            except pa.ArrowInvalid as exc:
                if conversion_errors and "conversion error" in str(exc).lower():
                    raise
                if not self._drop_blank_lines():
                    self._diagnose(exc)

    def _drop_blank_lines(self) -> bool:
        if self._blank_lines_dropped or not _WHITESPACE_LINE.search(self.data):
            return False
        self.data = _WHITESPACE_LINE.sub(b"", self.data)  # the same line numbers
        self._blank_lines_dropped = True
        return True

    def _read_csv(self, names: Sequence[str], column_type, conversion_errors: bool = False, **convert) -> Any:
        raws = [self.raw[n] for n in names]
        options = pa_csv.ConvertOptions(include_columns=raws, column_types={r: column_type for r in raws},
                                        **convert)
        return self._arrow(lambda: pa_csv.read_csv(pa.BufferReader(self.data), read_options=self._read_options(),
                                                   parse_options=self._parse_options(), convert_options=options),
                           conversion_errors)

    def _strings(self, names: Sequence[str]) -> dict:
        """Columns ``names`` as trimmed text."""
        table = self._read_csv(names, pa.string(), strings_can_be_null=False, quoted_strings_can_be_null=False)
        return {n: pc.utf8_trim_whitespace(table.column(self.raw[n])) for n in names}

    def read(self, names: Sequence[str]) -> Table:
        for n in names:
            self.index(n)
        wanted = list(dict.fromkeys(names))
        try:  # the fast path: pyarrow parses the numbers
            table = self._read_csv(wanted, pa.float64(), conversion_errors=True, null_values=self.null_values,
                                   strings_can_be_null=False, decimal_point=self.options.decimal)
        except pa.ArrowInvalid:
            columns = self._convert(wanted)  # text that pyarrow does not read: find it or read it
        else:
            if table.num_rows == 0:
                self._no_rows()
            columns = {n: _floats(table.column(self.raw[n])) for n in wanted}
        n_rows = len(next(iter(columns.values()))) if columns else 0
        if n_rows == 0:
            self._no_rows()
        values = np.empty((n_rows, len(wanted)))
        for j, n in enumerate(wanted):
            values[:, j] = columns[n]
        inf = np.isinf(values)
        if inf.any():
            row, col = np.argwhere(inf)[0]
            text = self._strings([wanted[col]])[wanted[col]][int(row)].as_py()
            raise _not_a_number(self.path, int(self.data_lines()[row]), wanted[col], text, self.options)
        return Table(self.path, wanted, values, self.data_lines)

    def _convert(self, names: list[str]) -> dict:
        """Numbers from text with whitespace around them, markers in other letter cases, or a
        bad value: the first bad value (by row, then column) is an error naming both."""
        texts = self._strings(names)
        if self.options.decimal == ".":  # a strict cast reads every value, or fails
            try:
                return {n: _floats(pc.cast(self._marked_nan(texts[n]), pa.float64())) for n in names}
            except pa.ArrowInvalid:
                pass
        first_bad: tuple[int, int, str] | None = None
        for j, n in enumerate(names):
            good = pc.or_(self._missing(texts[n]), pc.match_substring_regex(texts[n], self.number))
            row = _first(~_bools(good))
            if row is not None and (first_bad is None or row < first_bad[0]):
                first_bad = (row, j, n)
        if first_bad is not None:
            row, _, n = first_bad
            raise _not_a_number(self.path, int(self.data_lines()[row]), n, texts[n][row].as_py(), self.options)
        # every value is a number with the decimal mark (never a "." when it is ",") or missing
        return {n: _floats(pc.cast(pc.replace_substring(self._marked_nan(texts[n]), self.options.decimal, "."),
                                   pa.float64())) for n in names}

    def _marked_nan(self, text):
        """Trimmed text with each missing-value marker replaced by "nan"."""
        text = pc.replace_substring_regex(text, self.missing_pattern, "nan")
        if self.options.na_values:
            text = pc.replace_substring_regex(text, self.na_pattern, "nan")
        return text

    def read_text(self, name: str) -> tuple[list[str | None], Callable[[], np.ndarray]]:
        self.index(name)
        text = self._strings([name])[name].to_pylist()
        if not text:
            self._no_rows()
        return text, self.data_lines

    def _no_rows(self) -> NoReturn:
        raise DataError(f"{self.path}: no data rows (only a header: {', '.join(self.all_names)})")

    # ------------------------------------------------------------------ line numbers, messages
    def data_lines(self) -> np.ndarray:
        """File line of each data row: only messages need it, so it is worked out on demand."""
        if self._record_lines is None:
            self._record_lines = self._line_starts()
        return self._record_lines[1:] if self.has_header else self._record_lines

    def _line_starts(self) -> np.ndarray:
        """The line on which each row (the header included) starts; blank lines are no rows."""
        if self.quoted:  # a quoted field may span lines: let the csv module count them
            reader = csv.reader(io.StringIO(self.data.decode("utf-8"), newline=""), delimiter=self.delimiter)
            first_lines, last = [], 0
            for fields in reader:
                if fields:
                    first_lines.append(last + 1)
                last = reader.line_num
            return np.asarray(first_lines, dtype=int)
        b = np.frombuffer(self.data, dtype=np.uint8)
        breaks = np.flatnonzero(b == 10)
        cr = np.flatnonzero(b == 13)
        if cr.size:  # "\r\n" is one line break, a lone "\r" another
            nxt = np.minimum(cr + 1, len(b) - 1)
            lone = cr[(cr + 1 >= len(b)) | (b[nxt] != 10)]
            breaks = np.sort(np.concatenate([breaks, lone]))
        starts = np.concatenate([[0], breaks + 1])
        ends = np.concatenate([breaks, [len(b)]])
        length = ends - starts
        blank = (length == 0) | ((length == 1) & (b[np.minimum(starts, len(b) - 1)] == 13))
        return np.flatnonzero(~blank) + 1

    def _diagnose(self, exc: Exception) -> NoReturn:
        """pyarrow could not parse the file: Python's csv module finds the row at fault."""
        reader = csv.reader(io.StringIO(self.data.decode("utf-8"), newline=""), delimiter=self.delimiter)
        rows: list[tuple[int, list[str]]] = []
        last_line = 0
        try:
            for r in reader:
                rows.append((last_line + 1, r))
                last_line = reader.line_num
        except csv.Error as err:
            raise DataError(f"{self.path}: row {reader.line_num}: {err}") from None
        rows = [(n, r) for n, r in rows if any(f.strip() for f in r)]
        if rows:
            header = rows[0][1]
            names = [h.strip() for h in header] if not _looks_numeric(header, self.options) else \
                [str(j + 1) for j in range(len(header))]
            for line, fields in rows[1:]:
                if len(fields) != len(header):
                    raise DataError(f"{self.path}: row {line} has {len(fields)} field(s), expected {len(header)} "
                                    f"(columns are {', '.join(names)})")
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{self.path}: cannot be read as a table ({reason})") from None


def _arrow_numeric(type_) -> bool:
    if pa.types.is_dictionary(type_):
        type_ = type_.value_type
    return (pa.types.is_integer(type_) or pa.types.is_floating(type_) or pa.types.is_boolean(type_)
            or pa.types.is_decimal(type_))


class ParquetFile(DataFile):
    """A Parquet file: its column types say which columns are numeric; only the columns asked
    for are read. Row numbers in messages count data rows from 1."""

    def __init__(self, p: Path, shown: str, options: ReadOptions) -> None:
        import pyarrow.parquet as pq  # noqa: PLC0415 - pyarrow's Parquet module loads its own libraries

        self.pq = pq
        self.file = p
        self.path = shown
        try:
            schema = pq.read_schema(p)
            self.num_rows = pq.ParquetFile(p).metadata.num_rows
        except Exception as exc:  # pyarrow raises its own error types for damaged files
            raise DataError(f"{shown}: not a readable Parquet file ({exc})") from None
        names = [str(n) for n in schema.names]
        self.types = {str(f.name): f.type for f in schema}
        index = []
        if options.index_col is not None:
            wanted = options.index_col
            if wanted in names:
                index = [wanted]
            elif wanted.strip().isdigit() and 1 <= int(wanted) <= len(names):
                index = [names[int(wanted) - 1]]
            else:
                raise DataError(f"{shown}: --index-col {wanted!r} not found; columns are "
                                f"{', '.join(map(repr, names))}")
        self.left_out = []
        pandas_index = [c for c in ((schema.pandas_metadata or {}).get("index_columns") or []) if isinstance(c, str)]
        for c in pandas_index:
            if c in names and c not in index:
                index.append(c)
                self.left_out.append((c, "row index"))
        self.names = [n for n in names if n not in index]
        self.left_out += [(n, str(self.types[n])) for n in self.names
                          if not _arrow_numeric(self.types[n])]

    def numeric_names(self) -> list[str]:
        return [n for n in self.names if _arrow_numeric(self.types[n])]

    def _lines(self) -> np.ndarray:
        return np.arange(1, self.num_rows + 1)

    def _columns(self, names: list[str]):
        if self.num_rows == 0:
            raise DataError(f"{self.path}: no data rows")
        try:
            return self.pq.read_table(self.file, columns=names)
        except Exception as exc:
            raise DataError(f"{self.path}: not a readable Parquet file ({exc})") from None

    def read(self, names: Sequence[str]) -> Table:
        for n in names:
            self.index(n)
        wanted = list(dict.fromkeys(names))
        for n in wanted:
            if not _arrow_numeric(self.types[n]):
                raise DataError(f"{self.path}: column {n!r} is not numeric ({self.types[n]})")
        table = self._columns(wanted)
        values = np.empty((table.num_rows, len(wanted)))
        for j, n in enumerate(wanted):
            column = table.column(n)
            if pa.types.is_dictionary(column.type):
                column = pa.chunked_array([c.dictionary_decode() for c in column.chunks])
            values[:, j] = _floats(pc.cast(column, pa.float64()))
        inf = np.isinf(values)
        if inf.any():
            row, col = np.argwhere(inf)[0]
            raise DataError(f"{self.path}: row {row + 1}, column {wanted[col]!r}: not a number "
                            f"{str(values[row, col])!r}")
        return Table(self.path, wanted, values, self._lines)

    def read_text(self, name: str) -> tuple[list[str | None], Callable[[], np.ndarray]]:
        self.index(name)
        column = self._columns([name]).column(name).to_pylist()
        return [None if v is None else str(v).strip() for v in column], self._lines


def open_data(path: str | Path, options: ReadOptions | None = None) -> DataFile:
    """Open a CSV / TSV or Parquet file (``.parquet``, ``.pq``) for reading.

    Raises
    ------
    DataError
        Naming the file, and the row (file line) and column at fault: missing or empty file,
        ragged rows, duplicate or empty column names.
    """
    options = options or ReadOptions()
    shown = str(path)
    p = Path(path)
    if not p.exists():
        raise DataError(f"{shown}: no such file")
    if p.is_dir():
        raise DataError(f"{shown}: is a directory, not a data file")
    if pa is None:  # pragma: no cover - the cli extra brings pyarrow
        raise DataError(f"{shown}: reading data needs pyarrow (pip install 'emkit[cli]')")
    if p.suffix.lower() in (".parquet", ".pq"):
        return ParquetFile(p, shown, options)
    return CsvFile(p, shown, options)


def read_table(path: str | Path, columns: Sequence[str] | None = None,
               options: ReadOptions | None = None) -> Table:
    """Read the numeric columns of a CSV / TSV or Parquet file with clear errors: ``columns``
    (default: every numeric column).

    Raises
    ------
    DataError
        Naming the file, and the row (file line) and column at fault: missing or empty file,
        ragged rows, text where a number belongs, inf, duplicate column names.
    """
    source = open_data(path, options)
    return source.read(list(columns)) if columns else source.all_numeric()


# --------------------------------------------------------------------------- settings from the command line
#: declared settings with an option of their own (--components, --tol, --fixed, ...)
_OWN_OPTIONS = frozenset({"n_components", "covariance_type", "tol", "max_iter", "n_init", "random_state", "fixed",
                          "algorithm", "accelerate", "checkpoint", "checkpoint_every"})
#: declared settings without a meaning on the command line (the CLI shows progress itself)
_NOT_ON_THE_COMMAND_LINE = frozenset({"callback", "keep_history", "warm_start", "verbose", "verbose_interval"})


def _plain(doc: str) -> str:
    """A setting's documentation as plain text for ``--help``."""
    text = re.sub(r":\w+:`~?([^`]+)`", r"\1", doc).replace("``", "")
    return " ".join(text.split())


def _estimator_classes(choice: CliModel) -> list[type]:
    classes = []
    for name in (choice.estimator, choice.single):
        if name:
            try:
                classes.append(estimator_class(name))
            except (ImportError, AttributeError, KeyError):  # pragma: no cover - a partial installation
                pass
    return classes


def _declared_settings() -> dict[str, dict]:
    """Every setting the estimators of ``--model`` declare, but those with an option of their
    own: name -> {"doc": first declaration's text, "models": the --model names declaring it}."""
    table: dict[str, dict] = {}
    for model, choice in MODELS.items():
        for cls in _estimator_classes(choice):
            for s in getattr(cls, "_settings", ()):
                if s.name in _OWN_OPTIONS or s.name in _NOT_ON_THE_COMMAND_LINE:
                    continue
                doc = _plain(s.doc)
                choices = re.findall(r"'([^']*)'", s.constraint.describe) if s.constraint is not None else []
                if s.constraint is not None and s.constraint.describe.startswith("one of") and \
                        not all(c in doc for c in choices):
                    doc += f" ({s.constraint.describe})"
                entry = table.setdefault(s.name, {"doc": doc, "models": []})
                if model not in entry["models"]:
                    entry["models"].append(model)
    return table


#: the setting options of ``emkit fit`` (``--weights-init``, ``--reg-covar``, ...), read from
#: the estimators' declarations: name -> {"doc", "models"}
SETTINGS: dict[str, dict] = _declared_settings()


def _option_name(setting: str) -> str:
    return "--" + setting.replace("_", "-")


def _scalar(text: str) -> Any:
    t = text.strip()
    if t.lower() in ("none", "null"):
        return None
    try:
        return json.loads(t)
    except ValueError:
        return t


def parse_setting(text: str) -> Any:
    """A setting's value as given on the command line.

    JSON (``[0.3, 0.7]``, ``{"rates": [1, 3]}``, ``2``, ``true``); numbers separated by commas
    (``0.3,0.7``) and rows by semicolons (``2,54;4.3,80``); ``@FILE``: a JSON file, a ``.npy``
    file or a CSV of numbers (one row or one column: a vector); ``none``; else the text itself
    (``loglik_abs``, ``poisson``).
    """
    t = text.strip()
    if t.startswith("@"):
        return _value_file(Path(t[1:]))
    if t.lower() in ("none", "null"):
        return None
    try:
        return json.loads(t)
    except ValueError:
        pass
    if ";" in t:
        return [[_scalar(v) for v in row.split(",") if v.strip()] for row in t.split(";") if row.strip()]
    if "," in t:
        return [_scalar(v) for v in t.split(",") if v.strip()]
    return t


def _value_file(path: Path) -> Any:
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            return json.loads(path.read_text(encoding="utf-8-sig"))
        if suffix == ".npy":
            return np.load(path, allow_pickle=False).tolist()
        rows = [line for line in path.read_text(encoding="utf-8-sig").splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
        table = [[float(v) for v in re.split(r"[,;\t ]+", row.strip()) if v] for row in rows]
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a JSON, .npy or CSV file of numbers ({exc})") from None
    if len(table) == 1:
        return table[0]
    if all(len(row) == 1 for row in table):
        return [row[0] for row in table]
    return table


def _init_file(path: str, cls: type[Any]) -> dict:
    """The settings of ``--init FILE.json``: an object of parameter groups (``{"weights":
    [...], "rates": [...]}``), of settings (``{"weights_init": [...]}``), or the ``--json``
    output of ``emkit fit`` (its ``params``)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as exc:
        raise click.BadParameter(f"{path}: not a readable JSON file ({exc})", param_hint="--init") from None
    if isinstance(data, dict) and isinstance(data.get("params"), dict):
        data = data["params"]
    if not isinstance(data, dict):
        raise click.BadParameter(f"{path}: expected a JSON object of starting values", param_hint="--init")
    declared = {s.name for s in getattr(cls, "_settings", ())}
    settings: dict[str, Any] = {}
    groups: dict[str, Any] = {}
    for key, value in data.items():
        if key in declared and key not in _OWN_OPTIONS and key not in _NOT_ON_THE_COMMAND_LINE:
            settings[key] = value
        elif getattr(cls, "_init_groups", {}).get(key) in declared:  # e.g. NormalMixture's variances
            settings[cls._init_groups[key]] = value
        elif f"{key}_init" in declared:
            settings[f"{key}_init"] = value
        elif "params_init" in declared:
            groups[key] = value
        else:
            raise click.BadParameter(f"{path}: {key!r} is not a parameter group or setting of {cls.__name__}",
                                     param_hint="--init")
    if groups:
        settings["params_init"] = {**(settings.get("params_init") or {}), **groups}
    return settings


def _with_option_names(message: str) -> str:
    """The first setting named in an estimator's message, followed by its option:
    ``weights_init`` becomes ``weights_init (--weights-init)``."""
    match = next((m for m in re.finditer(r"\b[a-z]+(?:_[a-z]+)*\b(?!=)", message) if m.group() in SETTINGS), None)
    if match is None or message[match.end():].startswith(" ("):
        return message
    return f"{message[:match.end()]} ({_option_name(match.group())}){message[match.end():]}"


def _validate(estimator) -> None:
    """The estimator's checks of its settings, as a usage error (exit code 2)."""
    check = getattr(estimator, "_validate_settings", None)
    if check is None:
        return
    try:
        check()
    except ValueError as exc:
        raise click.UsageError(_with_option_names(str(exc))) from None


def _declared_values(opts: dict, cls: type, where: str, allowed: Sequence[str] | None = None) -> dict:
    """The setting options given on the command line that ``cls`` declares; a usage error for
    one it does not."""
    declared = {s.name for s in getattr(cls, "_settings", ())}
    values = {}
    for name in SETTINGS if allowed is None else allowed:
        text = opts.get(name)
        if text is None:
            continue
        if name not in declared:
            takers = ", ".join(SETTINGS[name]["models"])
            raise click.UsageError(f"{_option_name(name)} does not apply to {where} (it applies to --model {takers})")
        try:
            values[name] = parse_setting(text)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint=_option_name(name)) from None
    return values


# --------------------------------------------------------------------------- building fits
def _parse_components(text: str) -> list[int]:
    """``"3"`` -> [3]; ``"1-9"`` -> [1..9]; ``"1,2,5"`` -> [1, 2, 5]."""
    out: list[int] = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m:
            raise click.BadParameter(f"{text!r} is not a number, a range like 1-9 or a list like 1,2,5")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if lo < 1 or hi < lo:
            raise click.BadParameter(f"{part.strip()!r}: need 1 <= first <= last")
        out.extend(range(lo, hi + 1))
    return sorted(set(out))


def _split_names(values: Sequence[str]) -> list[str]:
    return [n.strip() for v in values for n in v.split(",") if n.strip()]


def _engine_settings(opts: dict) -> dict:
    settings = {k: opts[k] for k in ("tol", "max_iter", "n_init", "random_state") if opts.get(k) is not None}
    if opts.get("fixed"):
        settings["fixed"] = _split_names(opts["fixed"])
    if opts.get("algorithm") and opts["algorithm"] != "em":
        settings["algorithm"] = opts["algorithm"]
    if opts.get("accelerate"):
        settings["accelerate"] = opts["accelerate"]
    if opts.get("checkpoint"):
        settings["checkpoint"] = opts["checkpoint"]
    if opts.get("checkpoint_every") is not None:
        settings["checkpoint_every"] = opts["checkpoint_every"]
    return settings


def _parse_checkpoint_every(ctx: Any, param: Any, value: str | None) -> int | float | None:
    """--checkpoint-every: "10" is 10 iterations; "30s" or "2.5" are seconds."""
    if value is None:
        return None
    text = value.strip().lower()
    try:
        if text.endswith("s"):
            every: int | float = float(text[:-1])
        elif text.isdigit():
            every = int(text)
        else:
            every = float(text)
    except ValueError:
        every = -1
    if not (every > 0 and math.isfinite(every)) or (isinstance(every, int) and every < 1):
        raise click.BadParameter(f"{value!r}: give a number of iterations (10) or of seconds (30s, 2.5)")
    return every


_SEPARATORS = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|", "space": " "}


def _read_options(opts: dict) -> ReadOptions:
    """--sep, --decimal, --na-values and --index-col as :class:`ReadOptions` (usage errors)."""
    sep = opts.get("sep")
    if sep is not None:
        sep = _SEPARATORS.get(sep.lower(), sep)
    try:
        return ReadOptions(sep=sep, decimal=opts.get("decimal") or ".",
                           na_values=tuple(_split_names(opts.get("na_values") or ())), index_col=opts.get("index_col"))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


def _note_left_out(source: DataFile, quiet: bool) -> None:
    """Name on stderr the columns that a command without --columns left out."""
    if quiet or not source.left_out:
        return
    parts = []
    for name, why in source.left_out:
        if why == "row index":
            parts.append(f"{name!r} (row index)" if name else "the unnamed first column (row index)")
        else:
            parts.append(f"{name!r} (not numeric: {why})")
    click.echo(f"emkit: note: left out {', '.join(parts)}; choose columns with --columns", err=True)


def _numeric_columns(source: DataFile, exclude: Sequence[str | None] = ()) -> list[str]:
    names = [n for n in source.numeric_names() if n not in exclude]
    if not names:
        reasons = "; ".join(f"column {n!r} is not numeric ({why})" for n, why in source.left_out if why != "row index")
        raise DataError(f"{source.path}: no numeric column to use ({reasons or 'no columns'})")
    return names


def _data_columns(source: DataFile, model: str, opts: dict, estimator) -> dict:
    """Which columns feed the model: {"X": [...], "successes": c, "trials": c or number,
    "weights": c, "auto": whether X was chosen by type}; for counts of labelled rows
    {"X": [label, count], "label": ..., "count": ...}."""
    spec: dict[str, Any] = {"weights": opts.get("weights")}
    if spec["weights"] is not None:
        source.index(spec["weights"])
    named = _split_names(opts.get("columns") or ())
    if MODELS[model].counts:
        return _count_columns(source, model, named, spec)
    if feeding(estimator).trials:
        trials = opts.get("trials")
        if trials is None:
            raise click.UsageError(f"--model {model} needs --trials COLUMN or --trials NUMBER")
        try:
            number = float(trials)
        except ValueError:
            source.index(trials)
            spec["trials"] = trials
        else:
            if not (number >= 1 and number == int(number)):
                raise click.BadParameter(f"--trials must be a column or a whole number >= 1, got {trials!r}")
            spec["trials"] = number
        successes = opts.get("successes") or (named[0] if named else None)
        if successes is None:
            trials_column = spec["trials"] if isinstance(spec["trials"], str) else None
            successes = _numeric_columns(source, (spec["weights"], trials_column))[0]
        source.index(successes)
        spec["X"] = [successes]
        return spec
    if named:
        for n in named:
            source.index(n)
        columns = named
    else:
        columns = _numeric_columns(source, (spec["weights"],))
        spec["auto"] = True
    if MODELS[model].one_column and len(columns) != 1:
        raise click.UsageError(f"--model {model} takes one column; {source.path} has "
                               f"{', '.join(columns)}: choose one with --columns")
    spec["X"] = columns
    return spec


def _count_columns(source: DataFile, model: str, named: list[str], spec: dict) -> dict:
    """--model alleles: a column of labels (phenotypes) and, optionally, one of counts."""
    if len(named) > 2:
        raise click.UsageError(f"--model {model} takes --columns LABEL or --columns LABEL,COUNT")
    label = named[0] if named else None
    count = named[1] if len(named) == 2 else spec.pop("weights", None)
    if label is None:
        text = source.text_names()
        if not text:
            raise DataError(f"{source.path}: --model {model} needs a column of phenotype names (text); "
                            f"choose it with --columns LABEL,COUNT")
        label = text[0]
        if count is None:
            numeric = [n for n in source.numeric_names() if n != label]
            if len(numeric) > 1:
                raise click.UsageError(f"{source.path} has several numeric columns ({', '.join(numeric)}): "
                                       f"name the counts with --columns {label},COUNT")
            count = numeric[0] if numeric else None
    source.index(label)
    if count is not None:
        source.index(count)
    return {"X": [label] + ([count] if count else []), "label": label, "count": count, "weights": None}


def _make_estimator(model: str, components: int, opts: dict, callback, components_given: bool = False):
    try:
        return _build_estimator(model, components, opts, callback, components_given)
    except (ImportError, AttributeError) as exc:
        raise DataError(f"--model {model} is not available in this installation of emkit ({exc})") from None


def _build_estimator(model: str, components: int, opts: dict, callback, components_given: bool = False):
    choice = MODELS[model]
    single = components == 1 and choice.single is not None
    cls = estimator_class(choice.single if single and choice.single else choice.estimator)
    declared = {s.name for s in getattr(cls, "_settings", ())}
    where = f"--model {model}" + (" with one component" if single else "")
    settings = _engine_settings(opts)
    if callback is not None:
        settings["callback"] = callback
    if opts.get("covariance_type"):
        if not choice.covariance_type:
            raise click.UsageError("--covariance-type applies to --model "
                                   + " | ".join(m for m, c in MODELS.items() if c.covariance_type) + " only")
        settings["covariance_type"] = opts["covariance_type"]
    if opts.get("plot") and choice.snapshots:
        settings["keep_history"] = True  # for the snapshots picture
    if single and "algorithm" in settings:  # e.g. the one-rate model handles NaN by EM
        raise click.UsageError(f"--algorithm {settings['algorithm']} needs a mixture; the one-component "
                               f"{model} model has no discrete latent variable")
    if opts.get("init"):
        settings.update(_init_file(opts["init"], cls))
    settings.update(_declared_values(opts, cls, where))
    if "n_components" in declared:
        settings["n_components"] = components
    elif components_given:
        raise click.UsageError(f"--components does not apply to {where}")
    if not choice.counts and (opts.get("dominance") or opts.get("phenotype_names")):
        raise click.UsageError(f"--dominance and --phenotype-names apply to --model "
                               + " | ".join(m for m, c in MODELS.items() if c.counts) + " only")
    if choice.counts and opts.get("dominance") and hasattr(cls, "from_dominance"):
        if settings.get("alleles") is not None or settings.get("phenotypes") is not None:
            raise click.UsageError("give --dominance, or --alleles with --phenotypes, not both")
        names = dict(_pair(p) for p in _split_names([opts.get("phenotype_names") or ""]))
        try:
            estimator = cls.from_dominance(opts["dominance"], names=names or None, **settings)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--dominance") from None
    else:
        if choice.counts and (settings.get("alleles") is None or settings.get("phenotypes") is None):
            raise click.UsageError(f"--model {model} needs --dominance ORDER (e.g. 'C>I>T'; 'A=B>O' when A and B "
                                   f"are codominant) or --alleles with --phenotypes")
        estimator = cls(**settings)
    _validate(estimator)
    return estimator


def _pair(text: str) -> tuple[str, str]:
    symbol, sep, name = text.partition("=")
    if not sep or not symbol.strip() or not name.strip():
        raise click.BadParameter(f"{text!r}: give SYMBOL=NAME pairs, e.g. C=carbonaria,I=insularia",
                                 param_hint="--phenotype-names")
    return symbol.strip(), name.strip()


def _check_fixed(estimator, opts: dict) -> None:
    """--fixed names must be parameter groups of the model: a usage error otherwise."""
    names = _split_names(opts.get("fixed") or ())
    if not names:
        return
    try:
        groups = list(estimator.param_groups())
    except Exception:  # the fit itself will report a model that cannot be built
        return
    try:
        check_fixed_groups(names, groups, "this model")
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--fixed") from None


def _fit_arguments(source: DataFile, spec: dict, estimator) -> tuple[tuple, dict]:
    """Read the columns of ``spec`` (those only) and turn them into ``fit``'s arguments."""
    if "label" in spec:
        return _count_arguments(source, spec)
    feed = feeding(estimator)
    needed = list(spec["X"])
    if spec.get("weights"):
        needed.append(spec["weights"])
    if isinstance(spec.get("trials"), str):
        needed.append(spec["trials"])
    table = source.read(needed)
    x = table.select(spec["X"])
    if feed.missing_values:
        table.require_some(spec["X"])
    needs_complete = [] if feed.missing_values else list(spec["X"])
    if spec.get("weights"):
        needs_complete.append(spec["weights"])
    if isinstance(spec.get("trials"), str):
        needs_complete.append(spec["trials"])
    table.require_complete(list(dict.fromkeys(needs_complete)))
    kwargs: dict[str, Any] = {}
    if feed.trials:
        trials = spec["trials"]
        kwargs["trials"] = table.column(trials) if isinstance(trials, str) else trials
        x = x[:, 0]
    elif feed.vector and x.shape[1] == 1:
        x = x[:, 0]
    if spec.get("weights"):
        if not feed.weights:
            raise click.UsageError(f"--weights is not supported by {type(estimator).__name__}")
        kwargs["sample_weight"] = table.column(spec["weights"])
    return (x,), kwargs


def _count_arguments(source: DataFile, spec: dict) -> tuple[tuple, dict]:
    """Labels and counts as a mapping label -> total count (rows without a count count 1)."""
    labels, lines = source.read_text(spec["label"])
    blank = [i for i, v in enumerate(labels) if v is None or v.lower() in MISSING]
    if blank:
        raise DataError(f"{source.path}: row {lines()[blank[0]]}, column {spec['label']!r}: missing value "
                        f"(this model needs every value)")
    if spec["count"] is not None:
        table = source.read([spec["count"]])
        table.require_complete([spec["count"]])
        counts = table.column(spec["count"]).tolist()
    else:
        counts = [1.0] * len(labels)
    totals: dict[str, float] = {}
    for label, count in zip(labels, counts):
        totals[str(label)] = totals.get(str(label), 0.0) + count
    return (totals,), {}


def _show_warnings(caught: Sequence[warnings.WarningMessage]) -> None:
    """Each warning once on stderr as ``emkit: warning: ...``; those that differ only in their
    numbers (one per restart or per model of a search) are counted, not repeated."""
    seen: dict[str, list] = {}
    for w in caught:
        entry = seen.setdefault(re.sub(r"[-+.\deE]+", "#", str(w.message)), [str(w.message), 0])
        entry[1] += 1
    for message, count in seen.values():
        more = f" (and {count - 1} more like it)" if count > 1 else ""
        click.echo(f"emkit: warning: {message}{more}", err=True)


def _run_fit(estimator, args, kwargs, path: str, quiet: bool):
    progress = estimator.callback if hasattr(estimator, "callback") else None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if isinstance(progress, FitProgress):
                with progress:
                    estimator.fit(*args, **kwargs)
            else:
                estimator.fit(*args, **kwargs)
    except ValueError as exc:
        raise DataError(f"{path}: {exc}") from None
    if not quiet:
        _show_warnings(caught)
    if hasattr(estimator, "callback"):
        estimator.set_params(callback=None)  # the display is closed; keep the saved model clean
    return estimator


# --------------------------------------------------------------------------- results
def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if hasattr(value, "shape"):
        return _jsonable(to_numpy(value).tolist())
    return value


def _criteria(estimator, args, kwargs) -> dict:
    out = {}
    for name in ("bic", "aic"):
        method = getattr(estimator, name, None)
        if method is None:
            continue
        extra = {"trials": kwargs["trials"]} if feeding(estimator).trials else {}
        try:
            out[name] = float(method(args[0], **extra, sample_weight=kwargs.get("sample_weight")))
        except (TypeError, ValueError, AttributeError, NotImplementedError):
            pass
    return out


def _named_results(estimator) -> dict:
    """Fitted results keyed by name (an allele's frequency, a genotype's expected count)."""
    return {name: getattr(estimator, f"{name}_") for name in ("frequencies", "genotype_counts")
            if isinstance(getattr(estimator, f"{name}_", None), dict)}


def _format_value(value: Any, se: Any = None) -> str:
    v = np.asarray(value, dtype=float)
    if v.ndim == 0:
        text = f"{float(v):.6g}"
        if se is not None:
            text += f" ± {float(np.asarray(se)):.3g}"
        return text
    if se is None:
        return np.array2string(v, precision=5, separator=", ", suppress_small=True)
    s = np.asarray(se, dtype=float)
    return "[" + ", ".join(f"{a:.5g} ± {b:.2g}" for a, b in zip(v.ravel(), s.ravel())) + "]"


def _print_summary(console, estimator, path: str, spec: dict, ses: dict | None, criteria: dict,
                   se_method: str | None = None) -> None:
    from rich.markup import escape
    from rich.table import Table as RichTable

    params = {k: to_numpy(v) for k, v in estimator.params_.items()}
    k = getattr(estimator, "n_components", None)
    console.print(f"[bold]{type(estimator).__name__}[/bold] fitted to {escape(path)} "
                  f"(columns: {escape(', '.join(spec['X']))})", highlight=False, soft_wrap=True)

    def se_of(name):
        return None if ses is None else np.asarray(to_numpy(ses[name]))

    # groups with one entry per component go in one table (a tied covariance is shared)
    shared = {"covariances"} if getattr(estimator, "covariance_type", None) == "tied" else set()
    per_component = [g for g, v in params.items()
                     if k is not None and v.ndim >= 1 and v.shape[0] == k and g not in shared]
    if per_component and k is not None:
        table = RichTable()
        table.add_column("component", justify="right")
        for name in per_component:
            table.add_column(name, justify="right")
        for c in range(int(k)):
            table.add_row(str(c), *[_format_value(params[g][c], None if ses is None else se_of(g)[c])
                                    for g in per_component])
        console.print(table)
    others = [g for g in params if g not in per_component]
    named = _named_results(estimator)
    if "frequencies" in named and "frequencies" in others:  # allele frequencies, by allele
        table = RichTable()
        table.add_column("allele")
        table.add_column("frequency", justify="right")
        se = se_of("frequencies")
        for i, (allele, value) in enumerate(named["frequencies"].items()):
            table.add_row(escape(str(allele)), _format_value(value, None if se is None else se[i]))
        console.print(table)
        others.remove("frequencies")
    if others:
        table = RichTable()
        table.add_column("parameter")
        table.add_column("estimate", justify="right")
        for name in others:
            table.add_row(name, _format_value(params[name], se_of(name)))
        console.print(table)
    facts = RichTable(show_header=False, box=None)
    facts.add_column(style="bold")
    facts.add_column(justify="right")
    facts.add_row("log-likelihood", f"{estimator.loglik_:.6f}")
    facts.add_row("iterations", str(estimator.n_iter_))
    facts.add_row("converged", "yes" if estimator.converged_ else "no")
    facts.add_row("EM evaluations", str(estimator.n_em_evaluations_))
    for name, value in criteria.items():
        facts.add_row(name.upper(), f"{value:.4f}")
    if ses is not None:
        facts.add_row("±", f"one standard error ({se_method})")
    console.print(facts)


def _write_plots(target: Path, estimator, model: str, args, kwargs, spec) -> list[Path]:
    target.parent.mkdir(parents=True, exist_ok=True)
    written = []
    ax = plot.trace(estimator)
    ax.figure.savefig(target)
    written.append(target)
    x = args[0]
    if MODELS[model].snapshots and np.ndim(x) == 2 and x.shape[1] >= 2:
        fig = plot.snapshots(x, estimator, feature_names=spec["X"])
        extra = target.with_name(f"{target.stem}_snapshots{target.suffix}")
        fig.savefig(extra)
        written.append(extra)
    elif hasattr(estimator, "predict_proba") and np.ndim(x) == 1:
        data_kwargs = {"trials": kwargs["trials"]} if feeding(estimator).trials else {}
        ax = plot.posterior(estimator, x, **data_kwargs)
        extra = target.with_name(f"{target.stem}_posterior{target.suffix}")
        ax.figure.savefig(extra)
        written.append(extra)
    return written




# --------------------------------------------------------------------------- commands
def _setting_help(name: str, models: bool = True) -> str:
    entry = SETTINGS[name]
    if not models:
        return entry["doc"]
    where = "every model" if len(entry["models"]) == len(MODELS) else "--model " + ", ".join(entry["models"])
    return f"{entry['doc']} [{where}]"


if click is not None:
    CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

    @click.group(context_settings=CONTEXT)
    @click.version_option(package_name="emkit", prog_name="emkit")
    def cli() -> None:
        """Expectation-Maximization from the command line."""

    def _apply(func, options):
        for option in reversed(options):
            func = option(func)
        return func

    def _engine_options(func):
        return _apply(func, [
            click.option("--tol", type=click.FloatRange(min=0), help="Stopping tolerance (estimator's default rule)."),
            click.option("--max-iter", type=click.IntRange(min=0), help="Largest number of iterations per restart."),
            click.option("--n-init", type=click.IntRange(min=1), help="Restarts; the best is kept."),
            click.option("--random-state", type=int, help="Seed for initialisation (same seed, same fit)."),
            click.option("--quiet", "-q", is_flag=True,
                         help="No progress display, notes or warnings on stderr."),
        ])

    def _variant_options(func):
        return _apply(func, [
            click.option("--algorithm", type=click.Choice(["em", "hard", "stochastic"]), default="em",
                         show_default=True),
            click.option("--accelerate", type=click.Choice(["squarem", "anderson"]), help="Extrapolate the EM map."),
        ])

    def _data_options(func):
        return _apply(func, [
            click.option("--sep", metavar="CHAR",
                         help="Field separator: ',', ';', tab (or 'tab'), '|' (default: the most frequent of "
                              "them in the first line; tab for .tsv)."),
            click.option("--decimal", metavar="CHAR", default=".", show_default=True,
                         help="Decimal mark of the numbers: ',' for European CSVs (the separator is then ';' "
                              "unless --sep says otherwise)."),
            click.option("--na-values", multiple=True, metavar="MARKERS",
                         help="More missing-value markers, comma separated or repeated (e.g. '.' or -999); "
                              "empty, NA, NaN, N/A and null always are."),
            click.option("--index-col", metavar="NAME|N",
                         help="Column that is the row index, left out (a name, or a position: 1 is the first). "
                              "An unnamed first column, as pandas' to_csv() writes, is the index by itself."),
        ])

    def _setting_options(names: Sequence[str], models: bool = True):
        def decorate(func):
            return _apply(func, [click.option(_option_name(n), n, metavar="VALUE", help=_setting_help(n, models))
                                 for n in sorted(names)])
        return decorate

    #: settings of a Gaussian mixture that `emkit select` passes on (not those per component)
    SELECT_SETTINGS = [n for n in SETTINGS if "gaussian" in SETTINGS[n]["models"]
                       and not n.endswith("_init") and n not in ("params_init",)]

    @cli.command(epilog="VALUE of a setting: a number or word; numbers separated by commas (0.3,0.7) and "
                        "rows by semicolons (2,54;4.3,80); JSON ([[1,0],[0,1]]); or @FILE (.json, .npy, or a "
                        "CSV of numbers).")
    @click.argument("data", type=click.Path(dir_okay=False))
    @click.option("--model", "-m", type=click.Choice(list(MODELS)), required=True,
                  help="Estimator: " + ", ".join(f"{m} ({c.estimator})" for m, c in MODELS.items()) + ".")
    @click.option("--components", "-k", type=click.IntRange(min=1), default=None,
                  help="Number of components (default 2; 1 for exponential).")
    @click.option("--covariance-type", type=click.Choice(list(COVARIANCE_TYPES)),
                  help="Gaussian covariance structure: scikit-learn's names (full, tied, diag, spherical) "
                       "or mclust's fourteen (EII ... VVV).")
    @_engine_options
    @click.option("--fixed", multiple=True,
                  help="Parameter group(s) held at their start, e.g. weights (give the start with "
                       "--weights-init or --init).")
    @click.option("--init", type=click.Path(dir_okay=False),
                  help="JSON file of starting values by parameter group ({\"weights\": [...], \"rates\": [...]}), "
                       "or the --json output of an earlier fit.")
    @click.option("--columns", "-c", multiple=True, help="Columns to use (comma separated or repeated; default: "
                                                         "every numeric column).")
    @click.option("--successes", help="Binomial: column of successes.")
    @click.option("--trials", help="Binomial: column of trials, or one number for all rows.")
    @click.option("--weights", help="Column of row frequencies (e.g. days with each count).")
    @_data_options
    @_variant_options
    @click.option("--dominance", metavar="ORDER",
                  help="Alleles: dominance order, e.g. 'C>I>T', or 'A=B>O' when A and B are codominant.")
    @click.option("--phenotype-names", metavar="SYMBOL=NAME,...",
                  help="Alleles with --dominance: phenotype names by allele symbol, e.g. "
                       "C=carbonaria,I=insularia,T=typica.")
    @_setting_options(list(SETTINGS))
    @click.option("--se", type=click.Choice(["sem", "hessian", "bootstrap"]), help="Standard errors method.")
    @click.option("--json", "as_json", is_flag=True, help="Print a machine-readable JSON result.")
    @click.option("--save", "save_path", type=click.Path(dir_okay=False), help="Write the fitted model here.")
    @click.option("--plot", type=click.Path(dir_okay=False), help="Write pictures (trace, snapshots or posterior) as PNG.")
    @click.option("--checkpoint", type=click.Path(dir_okay=False),
                  help="Checkpoint file: written while the fit runs, resumed from if it exists (same command, "
                       "bit-identical result), removed after success.")
    @click.option("--checkpoint-every", callback=_parse_checkpoint_every, metavar="N|SECONDS",
                  help="Checkpoint every N iterations (10) or seconds (30s, 2.5); default 60s.")
    def fit(data: str, model: str, components: int | None, **opts: Any) -> None:
        """Fit a mixture (or the exponential or allele-frequency model) to DATA (CSV, TSV or
        Parquet) by EM."""
        from rich.console import Console

        if opts.get("accelerate") and opts.get("algorithm") != "em":
            raise click.UsageError("--accelerate applies to --algorithm em only")
        if opts.get("checkpoint_every") is not None and not opts.get("checkpoint"):
            raise click.UsageError("--checkpoint-every needs --checkpoint FILE")
        if opts.get("plot") and Path(opts["plot"]).suffix.lower() != ".png":
            raise click.BadParameter(f"{opts['plot']!r} must end in .png", param_hint="--plot")
        components_given = components is not None
        components = components or MODELS[model].components
        read_options = _read_options(opts)
        source = open_data(data, read_options)
        try:
            estimator = _make_estimator(model, components, opts, None, components_given)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
        spec = _data_columns(source, model, opts, estimator)
        settings = estimator.get_params()
        progress = FitProgress(settings.get("n_init") or 1, settings.get("max_iter") or 1,
                               description=f"{model} K={components}", enabled=False if opts["quiet"] else None)
        if "callback" in settings:
            estimator.set_params(callback=progress)
        _check_fixed(estimator, opts)
        args, kwargs = _fit_arguments(source, spec, estimator)
        if spec.pop("auto", False):
            _note_left_out(source, opts["quiet"])
        _run_fit(estimator, args, kwargs, data, opts["quiet"])
        degenerate = _degenerate_reasons(estimator, args, kwargs)
        if degenerate and not opts["quiet"]:
            click.echo(f"emkit: warning: degenerate fit ({'; '.join(degenerate[:3])}"
                       f"{f'; and {len(degenerate) - 3} more' if len(degenerate) > 3 else ''}): its "
                       f"log-likelihood and criteria are not to be trusted", err=True)
        # which columns fed the fit, saved with the model so `emkit predict` reads the same ones
        estimator.cli_data_ = {k: v for k, v in spec.items() if v is not None}
        ses = None
        if opts.get("se"):
            try:
                ses = estimator.standard_errors(method=opts["se"])
            except (ValueError, NotImplementedError, np.linalg.LinAlgError) as exc:
                raise DataError(f"{data}: standard errors ({opts['se']}) failed: {exc}") from None
        criteria = _criteria(estimator, args, kwargs)
        written = []
        if opts.get("save_path"):
            estimator.save(opts["save_path"])
            written.append(Path(opts["save_path"]))
        if opts.get("plot"):
            written += _write_plots(Path(opts["plot"]), estimator, model, args, kwargs, spec)
        if opts["as_json"]:
            out = {"file": data, "model": model, "estimator": type(estimator).__name__,
                   "columns": spec["X"], "n_components": getattr(estimator, "n_components", None),
                   "params": estimator.params_, **_named_results(estimator),
                   "loglik": estimator.loglik_, "n_iter": estimator.n_iter_,
                   "converged": estimator.converged_, "n_em_evaluations": estimator.n_em_evaluations_,
                   "trace": estimator.loglik_trace_, **criteria, "degenerate": degenerate,
                   "standard_errors": ses, "files": [str(p) for p in written]}
            click.echo(json.dumps(_jsonable(out), indent=2))
            return
        console = Console(width=max(Console().width, 100))
        _print_summary(console, estimator, data, spec, ses, criteria, opts.get("se"))
        for p in written:
            console.print(f"wrote {p}")

    @cli.command()
    @click.argument("data", type=click.Path(dir_okay=False))
    @click.option("--components", "-k", default="1-9", show_default=True,
                  help="Numbers of components to compare: 3, 1-9 or 1,2,5.")
    @click.option("--covariance-type", "covariance_types", multiple=True,
                  type=click.Choice(list(COVARIANCE_GRIDS) + list(COVARIANCE_TYPES)),
                  help="Covariance structure(s) to compare (default: scikit-learn's four); 'mclust' "
                       "compares mclust's fourteen forms from its hierarchical start and prints "
                       "mclust's table (BIC with mclust's sign, the top three).")
    @click.option("--columns", "-c", multiple=True, help="Columns to use (comma separated or repeated; default: "
                                                         "every numeric column).")
    @click.option("--weights", help="Column of row frequencies.")
    @click.option("--criterion", type=click.Choice(["bic", "aic", "icl"]), default="bic", show_default=True,
                  help="Which criterion picks the winner (lower is better).")
    @click.option("--n-jobs", "n_jobs", type=int, default=None,
                  help="Processes that fit grid points side by side (-1: one per CPU; default one). The "
                       "table is the same.")
    @_engine_options
    @_data_options
    @_variant_options
    @_setting_options(SELECT_SETTINGS, models=False)
    @click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
    @click.option("--plot", type=click.Path(dir_okay=False), help="Write the BIC/ICL picture as PNG.")
    def select(data: str, components: str, covariance_types: tuple, columns: tuple, criterion: str,
               n_jobs: int | None, **opts: Any) -> None:
        """Compare Gaussian mixtures on DATA by BIC and ICL and name the winner (rows with
        missing values are used, as by `emkit fit --model gaussian`)."""
        from rich.console import Console
        from rich.table import Table as RichTable

        if opts.get("accelerate") and opts.get("algorithm") != "em":
            raise click.UsageError("--accelerate applies to --algorithm em only")
        try:
            resolve_n_jobs(n_jobs)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--n-jobs") from None
        ks = _parse_components(components)
        source = open_data(data, _read_options(opts))
        weights = opts.get("weights")
        if weights is not None:
            source.index(weights)
        names = _split_names(columns)
        for n in names:
            source.index(n)
        auto = not names
        if auto:
            names = _numeric_columns(source, (weights,))
        table = source.read(names + ([weights] if weights else []))
        if auto:
            _note_left_out(source, opts["quiet"])
        x = table.select(names)
        table.require_some(names)
        kwargs: dict[str, Any] = {"n_components": ks, "criterion": criterion, **_engine_settings(opts)}
        gaussian = estimator_class("GaussianMixture")
        kwargs.update(_declared_values(opts, gaussian, "emkit select", SELECT_SETTINGS))
        _validate(gaussian(**{k: v for k, v in kwargs.items() if k not in ("n_components", "criterion")}))
        if weights:
            table.require_complete([weights])
            kwargs["sample_weight"] = table.column(weights)
        grids = [t for t in covariance_types if t in COVARIANCE_GRIDS]
        if grids and len(covariance_types) > 1:
            raise click.UsageError(f"--covariance-type {grids[0]} names a whole grid: give it alone")
        mclust_layout = covariance_types == ("mclust",)
        if covariance_types:
            kwargs["covariance_types"] = grids[0] if grids else list(covariance_types)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                selection = emkit.select_mixture(x, n_jobs=n_jobs, **kwargs)
        except ValueError as exc:
            raise DataError(f"{data}: {exc}") from None
        if not opts["quiet"]:
            _show_warnings(caught)
        records = _selection_records(selection)
        best_params = getattr(selection, "best_params", None)
        finite = [r for r in records if isinstance(r.get(criterion), (int, float)) and math.isfinite(r[criterion])]
        if not finite:
            raise DataError(f"{data}: no Gaussian mixture could be fitted "
                            f"({'; '.join(str(r.get('error')) for r in records if r.get('error'))})")
        best = next((r for r in finite if best_params and all(r.get(k) == v for k, v in best_params.items())),
                    min(finite, key=lambda r: r[criterion]))
        if opts.get("plot"):
            plot.bic(records, mclust_sign=mclust_layout,
                     criteria=(criterion,) if mclust_layout else ("bic", "icl")).figure.savefig(opts["plot"])
        if opts["as_json"]:
            click.echo(json.dumps(_jsonable({"file": data, "columns": names, "criterion": criterion,
                                             "table": records, "best": best}), indent=2))
            return
        if mclust_layout and hasattr(selection, "summary"):
            click.echo(f"Gaussian mixtures on {data} (columns: {', '.join(names)}), mclust's forms")
            click.echo(selection.summary(criterion))
            click.echo(f"winner by {criterion.upper()}: {best['n_components']} component(s), "
                       f"{best.get('covariance_type')} covariance ({criterion.upper()} {best[criterion]:.3f}; "
                       f"mclust's sign {-best[criterion]:.3f})")
            return
        console = Console(width=max(Console().width, 100))
        console.print(f"Gaussian mixtures on {data} (columns: {', '.join(names)}); lower is better",
                      highlight=False, soft_wrap=True)
        out = RichTable()
        shown = ("n_components", "covariance_type", "loglik", "n_parameters", "bic", "aic", "icl")
        for col in shown:
            out.add_column(col, justify="right")
        for r in records:
            cells = []
            for col in shown:
                v = r.get(col)
                cells.append(f"{v:.3f}" if isinstance(v, float) else "-" if v is None else str(v))
            out.add_row(*cells, style="bold green" if r is best else "dim" if r.get("degenerate") else None)
        console.print(out)
        marked = [r for r in records if r.get("degenerate")]
        if marked:
            console.print(f"{len(marked)} degenerate fit(s), shown dim, are never chosen: "
                          + "; ".join(f"K={r['n_components']} {r.get('covariance_type')} "
                                      f"({r.get('degenerate_reason')})" for r in marked[:3])
                          + (f"; and {len(marked) - 3} more" if len(marked) > 3 else ""), highlight=False)
        for r in records:
            if r.get("error"):
                console.print(f"K={r['n_components']} {r.get('covariance_type')}: not fitted ({r['error']})",
                              highlight=False)
        console.print(f"winner by {criterion.upper()}: {best['n_components']} component(s), "
                      f"{best.get('covariance_type', 'full')} covariance ({criterion.upper()} {best[criterion]:.3f})",
                      highlight=False)

    @cli.command()
    @click.argument("model_file", metavar="MODEL", type=click.Path(dir_okay=False))
    @click.argument("data", type=click.Path(dir_okay=False))
    @click.option("--columns", "-c", multiple=True, help="Columns to use (default: those of the fit).")
    @click.option("--trials", help="Binomial: column of trials, or one number for all rows.")
    @_data_options
    @click.option("--output", "-o", type=click.Path(dir_okay=False), help="CSV file to write (default: stdout).")
    def predict(model_file: str, data: str, columns: tuple, trials: str | None, output: str | None,
                **opts: Any) -> None:
        """Write the most probable component and membership probabilities of each row of DATA."""
        try:
            estimator = load_model(model_file)
        except ValueError as exc:
            raise DataError(str(exc)) from None
        if not hasattr(estimator, "predict_proba"):
            raise DataError(f"{model_file}: a {type(estimator).__name__} has no components to predict")
        if not estimator.__sklearn_is_fitted__():
            raise DataError(f"{model_file}: the model is not fitted")
        source = open_data(data, _read_options(opts))
        stored = getattr(estimator, "cli_data_", {}) or {}
        names = _split_names(columns) or [str(n) for n in stored.get("X", [])] or _numeric_columns(source)
        feed = feeding(estimator)
        needed = list(names)
        spec = trials if trials is not None else stored.get("trials")
        trials_number = None
        if feed.trials:
            if spec is None:
                raise click.UsageError(f"this {type(estimator).__name__} model needs --trials COLUMN or NUMBER")
            try:
                trials_number = float(spec)
            except ValueError:
                needed.append(str(spec))
        table = source.read(needed)
        x = table.select(names)
        if not feed.missing_values:  # an estimator that fills in missing values predicts such rows too
            table.require_complete(names)
        kwargs: dict[str, Any] = {}
        if feed.trials:
            x = x[:, 0]
            if trials_number is not None:
                kwargs["trials"] = trials_number
            else:
                table.require_complete([str(spec)])
                kwargs["trials"] = table.column(str(spec))
        elif feed.vector and x.shape[1] == 1:
            x = x[:, 0]
        try:
            proba = np.asarray(estimator.predict_proba(x, **kwargs), dtype=float)
        except ValueError as exc:
            raise DataError(f"{data}: {exc}") from None
        labels = proba.argmax(axis=1)
        stream = open(output, "w", newline="") if output else sys.stdout
        try:
            writer = csv.writer(stream, lineterminator="\n")
            writer.writerow(["row", "label", *[f"p{k}" for k in range(proba.shape[1])]])
            for i, (label, p) in enumerate(zip(labels, proba)):
                writer.writerow([i + 1, int(label), *[repr(float(v)) for v in p]])
        finally:
            if output:
                stream.close()

    @cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                   "help_option_names": []})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def demo(args: tuple) -> None:
        """Run the classic worked examples (emkit demo [--plots DIR])."""
        code = demo_main(list(args))
        if code:
            raise SystemExit(code)



def _degenerate_reasons(estimator: Any, args: tuple, kwargs: dict) -> list[str]:
    """Why the fitted mixture is degenerate (one line per component; empty when it is not, or
    when the estimator is not a mixture)."""
    try:
        return list(degenerate_components(estimator, *args, **kwargs))
    except (TypeError, ValueError, AttributeError, NotImplementedError):
        return []


def _selection_records(selection: Any) -> list[dict]:
    records = []
    for r in selection.table:
        records.append({k: (v.item() if hasattr(v, "item") and np.ndim(v) == 0 else v) for k, v in r.items()})
    return records


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``emkit`` script; returns the exit code (0, 1 data error, 2 usage,
    130 interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if click is None:
        if argv[:1] == ["demo"]:
            return int(demo_main(argv[1:]) or 0)
        print("emkit: the command line needs click and rich: pip install 'emkit[cli]'", file=sys.stderr)
        return 2
    try:
        result = cli.main(args=argv, prog_name="emkit", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):  # click turns Ctrl-C / SIGINT into Abort
            click.echo("emkit: interrupted", err=True)
            return INTERRUPTED
        click.echo("Aborted!", err=True)
        return 1
    except KeyboardInterrupt:  # SIGINT outside click's own handling
        click.echo("\nemkit: interrupted", err=True)
        return INTERRUPTED
    except SystemExit as exc:
        return int(exc.code or 0) if isinstance(exc.code, (int, type(None))) else 1
    return int(result) if isinstance(result, int) else 0


if __name__ == "__main__":
    raise SystemExit(main())
