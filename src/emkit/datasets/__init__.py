"""The public data sets of the worked examples, shipped inside the package (sources in
``data/SOURCES.md``).

Each loader returns plain NumPy arrays or dicts, so no pandas is needed.
"""

from __future__ import annotations

import csv
import difflib
from importlib import resources
from typing import TYPE_CHECKING, Any, cast

import numpy as np

if TYPE_CHECKING:  # importlib.resources.abc is Python 3.11+
    from importlib.resources.abc import Traversable

__all__ = ["load_two_coins", "load_peppered_moth", "load_abo", "load_faithful",
           "load_hasselblad_deaths", "data_path", "available", "SOURCES"]

SOURCES = {
    "two_coins": "Do & Batzoglou (2008), What is the expectation maximization algorithm? "
                 "Nat. Biotechnol. 26:897-899; seeds 000/001/003",
    "peppered_moth": "Givens & Hoeting, Computational Statistics, Example 4.2; seed 002",
    "abo": "Clarke et al. (1959), BMJ 1:603",
    "faithful": "R datasets::faithful (Azzalini & Bowman 1990; Hardle 1991)",
    "hasselblad_deaths": "Hasselblad (1969), JASA 64:1459-1471",
}


def available() -> list[str]:
    """Names of the bundled CSV files (what :func:`data_path` accepts), sorted."""
    folder = resources.files(__name__).joinpath("data")
    return sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(".csv"))


def data_path(name: str) -> Traversable:
    """Path (a Traversable) of the bundled CSV file ``name`` (e.g. ``"faithful.csv"``).

    Raises
    ------
    FileNotFoundError
        When no bundled file has that name; the message lists the ones there are.
    """
    names = available()
    if name not in names:
        close = difflib.get_close_matches(str(name), names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise FileNotFoundError(f"emkit.datasets has no file {name!r}{hint}; the bundled files are "
                                f"{', '.join(repr(n) for n in names)}")
    return resources.files(__name__).joinpath("data", name)


def _rows(name: str) -> tuple[list[str], list[list[str]]]:
    # cast: the stubs of Traversable.open omit newline=, which the bundled files (paths) take
    with cast(Any, data_path(name)).open("r", newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def load_two_coins() -> dict[str, np.ndarray]:
    """Five runs of 10 tosses of one of two coins: ``{"heads": (5,), "tosses": (5,)}``."""
    _, rows = _rows("two_coins.csv")
    return {"heads": np.array([int(r[1]) for r in rows]), "tosses": np.array([int(r[2]) for r in rows])}


def _counts(name: str) -> dict[str, int]:
    _, rows = _rows(name)
    return {r[0]: int(r[1]) for r in rows}


def load_peppered_moth() -> dict[str, int]:
    """Phenotype counts of peppered moths: carbonaria 85, insularia 196, typica 341."""
    return _counts("peppered_moth_counts.csv")


def load_abo() -> dict[str, int]:
    """ABO blood-group phenotype counts (A, B, AB, O) of Clarke et al. (1959)."""
    return _counts("abo_counts.csv")


def load_faithful() -> np.ndarray:
    """Old Faithful: (272, 2) array of eruption time (min) and waiting time (min)."""
    _, rows = _rows("faithful.csv")
    return np.array([[float(v) for v in r] for r in rows])


def load_hasselblad_deaths() -> dict[str, np.ndarray]:
    """Days with 0..9 deaths: ``{"deaths": (10,), "freq": (10,)}`` (1,096 days in all)."""
    _, rows = _rows("hasselblad_deaths.csv")
    return {"deaths": np.array([int(r[0]) for r in rows]), "freq": np.array([int(r[1]) for r in rows])}
