"""The degenerate-data corpus table: emkit's GaussianMixture against scikit-learn's.

Fits every case of the seeded corpus (``tests/hostile/corpus.py``: at least 300 data sets with
duplicated rows, constant and identical columns, one-point clusters, scales of 1e-12 and 1e12,
float32 data at an offset of 1e6, heavy imbalance, K at and above the number of distinct rows,
...) with both libraries, default settings except the case's ``n_components``,
``covariance_type`` and ``random_state``, and prints one row per library:

    fitted | clear errors | unhelpful errors | NaN parameters | decreases | over 10 s | slowest fit

The generator and the judging of a fit are the test suite's own (this script puts
``tests/hostile`` on ``sys.path`` and imports ``corpus``), so the table describes exactly what
``tests/hostile/test_degenerate_corpus.py`` asserts.

Usage::

    .venv/bin/python benchmarks/degenerate_corpus.py               # the table
    .venv/bin/python benchmarks/degenerate_corpus.py --details     # and every case that is not a clean fit
    .venv/bin/python benchmarks/degenerate_corpus.py --kinds scale-1e12,lattice --blas-threads 0
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

# one generator for the suite and this script: it lives with the tests
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "hostile"))

import corpus  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kinds", help="comma-separated kinds to run (default: all): " + ", ".join(corpus.KINDS))
    parser.add_argument("--libraries", default="emkit,sklearn", help="comma-separated: emkit, sklearn")
    parser.add_argument("--blas-threads", type=int, default=1,
                        help="BLAS / OpenMP threads during the fits (0: leave as configured; default 1)")
    parser.add_argument("--details", action="store_true", help="list every case that is not a clean fit")
    args = parser.parse_args(argv)

    cases = corpus.cases()
    if args.kinds:
        wanted = set(args.kinds.split(","))
        unknown = wanted - set(corpus.KINDS)
        if unknown:
            parser.error(f"unknown kind(s) {sorted(unknown)}; choose from {list(corpus.KINDS)}")
        cases = [c for c in cases if c.kind in wanted]
    libraries = [lib.strip() for lib in args.libraries.split(",") if lib.strip()]
    start = time.perf_counter()
    results = corpus.run(cases, libraries, blas_threads=args.blas_threads or None)
    print(corpus.table(results))
    print(f"\n{len(cases)} cases x {len(libraries)} libraries in {time.perf_counter() - start:.1f} s "
          f"(fit times are CPU seconds of the fitting thread)")
    if args.details:
        for lib, outcomes in results.items():
            odd = [o for o in outcomes if not o.fitted or o.decreased or o.seconds > corpus.MAX_SECONDS]
            print(f"\n{lib}: {len(odd)} case(s) not fitted cleanly")
            for o in odd:
                print("  " + o.describe())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
