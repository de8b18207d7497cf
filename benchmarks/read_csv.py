"""How fast the command line reads a CSV file: the pyarrow reader of ``emkit.cli`` against the
pure-Python reader it replaced (its CSV path is kept below, as it was, as the baseline).

The script writes a CSV of ``--rows`` rows (default 1,000,000) and 4 numeric columns (plus, with
``--text``, a species-like text column that the new reader skips) to a temporary folder, reads
it with both readers (best of ``--repeat`` runs each), checks that they return the same
numbers, and prints the times and their ratio (the target of issue 13 is at least 10x).
It also times the new reader with one column selected (only that column is parsed) and
with pandas and pyarrow themselves, for reference. Nothing is asserted.

Usage::

    .venv/bin/python benchmarks/read_csv.py                 # 1,000,000 x 4
    .venv/bin/python benchmarks/read_csv.py --rows 40000    # the size of the issue's report
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import tempfile
import time
from pathlib import Path

import numpy as np

from emkit import cli


# --------------------------------------------------------------------------- the old reader (baseline)
MISSING = {"", "na", "nan", "n/a", "null"}


class OldDataError(Exception):
    pass


def _parse_number(text: str) -> float:
    stripped = text.strip()
    if stripped.lower() in MISSING:
        return math.nan
    value = float(stripped)  # raises ValueError for text
    if math.isinf(value):
        raise ValueError("inf")
    return value


def _looks_numeric(fields: list[str]) -> bool:
    for f in fields:
        try:
            _parse_number(f)
        except ValueError:
            return False
    return any(f.strip().lower() not in MISSING for f in fields)


def old_read_table(path):
    """``emkit.cli.read_table`` before issue 13 (CSV part): the csv module and float()."""
    shown = str(path)
    p = Path(path)
    text = p.read_text(encoding="utf-8-sig")
    if not text.strip():
        raise OldDataError(f"{shown}: empty file")
    if p.suffix.lower() in (".tsv", ".tab"):
        delimiter = "\t"
    elif p.suffix.lower() == ".csv":
        delimiter = ","
    else:
        first = text.splitlines()[0]
        delimiter = "\t" if "\t" in first else ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[tuple[int, list[str]]] = []
    last_line = 0
    for r in reader:
        rows.append((last_line + 1, r))
        last_line = reader.line_num
    rows = [(n, r) for n, r in rows if any(f.strip() for f in r)]
    first_line, header = rows[0]
    if _looks_numeric(header):
        names = [str(i + 1) for i in range(len(header))]
        body = rows
    else:
        names = [h.strip() for h in header]
        body = rows[1:]
    values = np.empty((len(body), len(names)))
    lines = np.empty(len(body), dtype=int)
    for i, (line, fields) in enumerate(body):
        if len(fields) != len(names):
            raise OldDataError(f"{shown}: row {line} has {len(fields)} field(s), expected {len(names)}")
        lines[i] = line
        for j, field in enumerate(fields):
            try:
                values[i, j] = _parse_number(field)
            except ValueError:
                raise OldDataError(f"{shown}: row {line}, column {names[j]!r}: not a number {field.strip()!r}") from None
    return names, values, lines


# --------------------------------------------------------------------------- timing
def write_csv(path: Path, rows: int, text_column: bool, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(size=(rows, 4)) * [1, 10, 100, 0.1] + [5, 50, 500, 0], 6)
    x[rng.random(size=x.shape) < 0.001] = np.nan  # a few missing values
    with open(path, "w", newline="") as f:
        f.write("a,b,c,d" + (",species" if text_column else "") + "\n")
        species = np.array(["setosa", "versicolor", "virginica"])[rng.integers(0, 3, rows)]
        for i in range(rows):
            cells = ["" if math.isnan(v) else repr(float(v)) for v in x[i]]
            if text_column:
                cells.append(species[i])
            f.write(",".join(cells) + "\n")
    return x


def best_of(repeat: int, function):
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--text", action="store_true", help="add a text column (left out by the new reader)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.csv"
        start = time.perf_counter()
        x = write_csv(path, args.rows, args.text)
        print(f"wrote {args.rows:,} x 4{' + text' if args.text else ''} ({path.stat().st_size / 1e6:.1f} MB) "
              f"in {time.perf_counter() - start:.1f} s")
        new_s, table = best_of(args.repeat, lambda: cli.read_table(path))
        one_s, _ = best_of(args.repeat, lambda: cli.read_table(path, ["b"]))
        np.testing.assert_array_equal(table.values, x)
        results = [("emkit.cli.read_table (pyarrow)", new_s), ("  the same, one column (--columns b)", one_s)]
        if not args.text:
            old_s, (names, values, _) = best_of(1 if args.rows > 100_000 else args.repeat,
                                                 lambda: old_read_table(path))
            np.testing.assert_array_equal(values, x)
            results.insert(0, ("old reader (csv module + float)", old_s))
        try:
            import pandas as pd
            results.append(("pandas.read_csv (reference)", best_of(args.repeat, lambda: pd.read_csv(path))[0]))
        except ImportError:
            pass
        import pyarrow.csv as pa_csv
        results.append(("pyarrow.csv.read_csv (reference)", best_of(args.repeat, lambda: pa_csv.read_csv(path))[0]))
        for name, seconds in results:
            print(f"{name:<40} {seconds * 1000:9.1f} ms")
        if not args.text:
            print(f"speed-up of the new reader: {old_s / new_s:.1f}x (target >= 10x)")


if __name__ == "__main__":
    main()
