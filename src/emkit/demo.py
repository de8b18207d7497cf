"""``emkit demo``: the classic worked examples on the bundled data, in one table.

Each row shows the estimate, the value the source documents (or, where the source gives no
number, the maximiser of the observed-data likelihood found directly by ``scipy.optimize``),
the iterations and whether EM converged. :func:`main` returns 0 when every estimate matches
its documented value to the precision it is published with, 1 otherwise.
"""

from __future__ import annotations

import argparse
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

import emkit
from emkit import datasets, plot
from emkit.models.linkage import LINKAGE_COUNTS, GeneticLinkage

MOTH_NAMES = {"C": "carbonaria", "I": "insularia", "T": "typica"}
#: Givens & Hoeting's exercise: 578 further moths known only to be insularia or typica
MOTH_UNION_COUNT = 578


@dataclass
class Row:
    """One worked example: what EM found and what the source says."""

    example: str
    estimate: str
    documented: str
    n_iter: int | str
    converged: bool | str
    ok: bool


def _fmt(values: Iterable[float], digits: int) -> str:
    return " / ".join(f"{v:.{digits}f}" for v in values)


def _close(found: Iterable[float], expected: Iterable[float], tol: float) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(found, expected))


# --------------------------------------------------------------------------- the examples
def _two_coins() -> list[Row]:
    coins = datasets.load_two_coins()
    rows = []
    # Do & Batzoglou (2008): probs 0.71 / 0.58 after one iteration, 0.80 / 0.52 after ten;
    # at convergence with the default stopping rule (every example below uses the defaults)
    for label, steps, expected in (("1 iteration", {"max_iter": 1, "tol": 0.0}, (0.71, 0.58)),
                                   ("10 iterations", {"max_iter": 10, "tol": 0.0}, (0.80, 0.52)),
                                   ("at convergence", {}, (0.80, 0.52))):
        est = emkit.BinomialMixture(2, probs_init=[0.6, 0.5], weights_init=[0.5, 0.5], fixed=["weights"], **steps)
        est.fit(coins["heads"], trials=coins["tosses"])
        probs = [float(v) for v in est.probs_]
        rows.append(Row(f"two coins, {label}", _fmt(probs, 4), _fmt(expected, 2), est.n_iter_,
                        est.converged_ if not steps else "-", _close(probs, expected, 0.005)))
    return rows


def _exponential() -> Row:
    est = emkit.Exponential(rate_init=5.0).fit([5.0, float("nan")])
    # the default rule stops on the log-likelihood, which fixes the rate to about 1e-7 here
    return Row("exponential, Y1 = 5, Y2 missing", f"{est.rate_:.6f}", "0.2", est.n_iter_, est.converged_,
               abs(est.rate_ - 0.2) < 5e-7)


def _moth() -> Row:
    est = emkit.AlleleFrequencies.from_dominance("C>I>T", names=MOTH_NAMES).fit(datasets.load_peppered_moth())
    found = [est.frequencies_[a] for a in "CIT"]
    expected = (0.07084, 0.18874, 0.74043)  # Givens & Hoeting, Example 4.2
    return Row("peppered moth pC / pI / pT", _fmt(found, 5), _fmt(expected, 5), est.n_iter_, est.converged_,
               _close(found, expected, 5e-6))


def _direct_mle(negloglik: Callable[[np.ndarray], float], n_alleles: int) -> np.ndarray:
    """Maximiser of an allele-frequency likelihood over the simplex (softmax coordinates)."""
    from scipy.optimize import minimize

    def objective(z):
        p = np.exp(np.append(z, 0.0))
        return negloglik(p / p.sum())

    best = minimize(objective, np.zeros(n_alleles - 1), method="Nelder-Mead",
                    options={"xatol": 1e-12, "fatol": 1e-13, "maxiter": 20000})
    p = np.exp(np.append(best.x, 0.0))
    return p / p.sum()


def _moth_union() -> Row:
    base = emkit.AlleleFrequencies.from_dominance("C>I>T", names=MOTH_NAMES)
    phenotypes = dict(base.phenotypes)
    phenotypes["insularia or typica"] = phenotypes["insularia"] + phenotypes["typica"]
    counts = dict(datasets.load_peppered_moth(), **{"insularia or typica": MOTH_UNION_COUNT})
    est = emkit.AlleleFrequencies(["C", "I", "T"], phenotypes).fit(counts)
    found = [est.frequencies_[a] for a in "CIT"]

    def negloglik(p):
        c, i, t = p
        probs = [c * c + 2 * c * i + 2 * c * t, i * i + 2 * i * t, t * t, i * i + 2 * i * t + t * t]
        n = [counts["carbonaria"], counts["insularia"], counts["typica"], counts["insularia or typica"]]
        return -float(np.dot(n, np.log(probs)))

    expected = _direct_mle(negloglik, 3)
    return Row(f"moth + {MOTH_UNION_COUNT} 'insularia or typica'", _fmt(found, 5),
               _fmt(expected, 5) + " (direct MLE)", est.n_iter_, est.converged_, _close(found, expected, 1e-5))


def _abo() -> Row:
    counts = datasets.load_abo()
    est = emkit.AlleleFrequencies.abo().fit(counts)
    found = [est.frequencies_[a] for a in "ABO"]

    def negloglik(p):
        a, b, o = p
        probs = {"A": a * a + 2 * a * o, "B": b * b + 2 * b * o, "AB": 2 * a * b, "O": o * o}
        return -float(sum(counts[k] * np.log(v) for k, v in probs.items()))

    expected = _direct_mle(negloglik, 3)
    return Row("ABO blood groups pA / pB / pO", _fmt(found, 5), _fmt(expected, 5) + " (direct MLE)",
               est.n_iter_, est.converged_, _close(found, expected, 1e-5))


def _hasselblad() -> Row:
    data = datasets.load_hasselblad_deaths()
    est = emkit.PoissonMixture(2, rates_init=[1.0, 2.5], weights_init=[0.3, 0.7])
    est.fit(data["deaths"], sample_weight=data["freq"])
    order = np.argsort(est.rates_)
    found = [float(est.weights_[order[0]]), float(est.rates_[order[0]]), float(est.rates_[order[1]])]
    expected = (0.3599, 1.256, 2.663)  # Hasselblad (1969); Varadhan & Roland (2008)
    # to the digits published: the weight to 4 decimals, the rates to 3
    return Row("Hasselblad deaths: weight1 / rate1 / rate2", _fmt(found, 4), "0.3599 / 1.256 / 2.663",
               est.n_iter_, est.converged_, _close(found[:1], expected[:1], 5e-5) and _close(found[1:], expected[1:], 5e-4))


def _faithful() -> Row:
    try:
        gm_class = emkit.GaussianMixture
    except (ImportError, AttributeError):
        return Row("Old Faithful, 2 Gaussians (eruption means)", "GaussianMixture not available",
                   "2.036 / 4.290", "-", "-", True)
    X = datasets.load_faithful()
    est = gm_class(2, n_init=5, random_state=0).fit(X)
    means = np.sort(np.asarray(est.means_)[:, 0])
    expected = (2.036, 4.290)  # the MLE of R mclust / Azzalini & Bowman's data
    return Row("Old Faithful, 2 Gaussians (eruption means)", _fmt(means, 3), _fmt(expected, 3),
               est.n_iter_, est.converged_, _close(means, expected, 1e-3))


def _linkage() -> Row:
    fit = emkit.em(GeneticLinkage(), (LINKAGE_COUNTS[None, :],), stop="params_maxabs", tol=1e-12)
    p = float(fit.params["p"])
    expected = (15 + math.sqrt(15**2 + 4 * 197 * 68)) / (2 * 197)  # root of 197p^2 - 15p - 68
    return Row("DLR genetic linkage p (user model)", f"{p:.10f}", f"{expected:.10f}", fit.n_iter, fit.converged,
               abs(p - expected) < 1e-9)


EXAMPLES: list[Callable[[], Row | list[Row]]] = [_two_coins, _exponential, _moth, _moth_union, _abo,
                                                 _hasselblad, _faithful, _linkage]


def run_examples() -> list[Row]:
    """Run every worked example; an example that fails with an exception is a failed row."""
    rows: list[Row] = []
    for example in EXAMPLES:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", emkit.ConvergenceWarning)
                out = example()
        except Exception as exc:  # a broken example must show in the table, not end the demo
            name = example.__name__.strip("_").replace("_", " ")
            out = Row(name, f"error: {type(exc).__name__}: {exc}", "-", "-", "-", False)
        rows.extend(out if isinstance(out, list) else [out])
    return rows


# --------------------------------------------------------------------------- output
HEADER = ("example", "estimate", "documented", "iterations", "converged", "match")


def _cells(row: Row) -> tuple[str, ...]:
    return (row.example, row.estimate, row.documented, str(row.n_iter), str(row.converged),
            "yes" if row.ok else "NO")


def render_plain(rows: Sequence[Row]) -> str:
    """The table as aligned plain text."""
    cells = [HEADER] + [_cells(r) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADER))]
    lines = ["  ".join(c[i].ljust(widths[i]) for i in range(len(HEADER))).rstrip() for c in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _print_table(rows: Sequence[Row], plain: bool) -> None:
    if not plain:
        try:
            from rich.console import Console
            from rich.table import Table
        except ImportError:
            plain = True
    if plain:
        print(render_plain(rows))
        return
    table = Table(title="emkit: the seeds' worked examples")
    for name in HEADER:
        table.add_column(name, justify="right" if name in ("iterations",) else "left")
    for row in rows:
        table.add_row(*_cells(row), style=None if row.ok else "bold red")
    Console(width=160).print(table)


def write_demo_pictures(directory: str | os.PathLike) -> list[Path]:
    """Fit the worked examples and write their pictures as PNG files into ``directory``.

    Old Faithful: Gaussian-mixture snapshots, log-likelihood trace (10 restarts), BIC/ICL
    table; two coins: membership probabilities and trace. Returns the paths written.
    """
    # the plotting functions raise ImportError (naming the `plot` extra) without matplotlib
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def save(fig, name):
        path = out / name
        fig.savefig(path)
        written.append(path)

    faithful = emkit.datasets.load_faithful()
    names = ["eruptions (min)", "waiting (min)"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short fits stop at max_iter on purpose
        # a start with both means in the upper cluster, so the pictures show EM moving them
        slow = emkit.GaussianMixture(2, init_params="random_from_data", random_state=0, tol=1e-8,
                                     keep_history=True).fit(faithful)
        save(plot.snapshots(faithful, slow, feature_names=names), "faithful_snapshots.png")
        restarts = emkit.GaussianMixture(2, init_params="random_from_data", n_init=5, random_state=0,
                                         tol=1e-8).fit(faithful)
        save(plot.trace(restarts).figure, "faithful_trace.png")
        table = emkit.select_mixture(faithful, n_components=range(1, 7), random_state=0)
        save(plot.bic(table).figure, "faithful_bic.png")
        coins = emkit.datasets.load_two_coins()
        coin_fit = emkit.BinomialMixture(2, probs_init=[0.6, 0.5], weights_init=[0.5, 0.5],
                                         fixed=["weights"]).fit(coins["heads"], trials=coins["tosses"])
        save(plot.posterior(coin_fit, coins["heads"], trials=coins["tosses"], labels=["coin A", "coin B"]).figure,
             "coins_posterior.png")
        save(plot.trace(coin_fit).figure, "coins_trace.png")
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``emkit demo [--plots DIR] [--plain]``; 0 when every example matches, else 1."""
    parser = argparse.ArgumentParser(prog="emkit demo", description=__doc__.splitlines()[0])
    parser.add_argument("--plots", metavar="DIR", help="also write the demo pictures into DIR")
    parser.add_argument("--plain", action="store_true", help="plain-text table (no rich)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    rows = run_examples()
    _print_table(rows, args.plain)
    if args.plots:
        try:  # matplotlib is optional: the pictures raise ImportError without it
            written = write_demo_pictures(args.plots)
            print(f"wrote {len(written)} picture(s) to {args.plots}")
        except ImportError as exc:
            print(f"pictures not written: {exc}")
    failed = [r.example for r in rows if not r.ok]
    if failed:
        print(f"{len(failed)} example(s) missed their documented value: {', '.join(failed)}")
        return 1
    print(f"all {len(rows)} examples match their documented values")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
