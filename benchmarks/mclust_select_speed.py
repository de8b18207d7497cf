"""emkit's mclust-style model search against R mclust's ``mclustBIC``, side by side (issue 15,
item 5): the fourteen covariance forms x G = 1..9, from the hierarchical start, in one call.

Data: Old Faithful (272 x 2, shipped) and 100,000 x 5 rows drawn from a four-component
Gaussian mixture (seed 0; written to a CSV that both sides read).

Settings compared, each side its own tolerance rule:

* ``mclust default``: mclust's ``emControl()`` (relative log-likelihood change 1e-5) against
  emkit with the same rule (``stop="loglik_rel", tol=1e-5``), in one process as mclust, and
  again with ``n_jobs=-1`` (the grid points on one forked worker per CPU; mclust's
  ``mclustBIC`` has no such option, so its time is the same one-process figure);
* ``tight`` (Old Faithful only): mclust with ``emControl(tol = c(1e-10, sqrt(eps)))`` against
  emkit's own default (EM to convergence: relative change 1e-14), plain and with SQUAREM.

Both sides include the hierarchical clustering (mclust's on a 2,000-row subset above 2,000
rows, as emkit's). Seconds are wall-clock, best of ``--repeats``; the ratio is mclust / emkit
(above 1: emkit faster). The winners (top three by BIC) are printed beside each time. R and
mclust come from Debian (``apt-get install r-base-core r-cran-mclust``); without ``Rscript`` the
mclust column is skipped. Nothing here asserts.

Usage::

    python benchmarks/mclust_select_speed.py                # both data sets (about 6 minutes on 2 cores)
    python benchmarks/mclust_select_speed.py --quick        # Old Faithful only
    python benchmarks/mclust_select_speed.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

import emkit
from emkit.datasets import data_path
from emkit.execution.processes import resolve_n_jobs

HERE = Path(__file__).resolve().parent
R_SCRIPT = HERE / "mclust_select_speed.R"


def mixture_data(n: int = 100_000, d: int = 5, k: int = 4, seed: int = 0) -> np.ndarray:
    """n rows from a k-component Gaussian mixture with random full covariances."""
    rng = np.random.default_rng(seed)
    means = rng.normal(0.0, 4.0, (k, d))
    a = rng.normal(size=(k, d, d))
    covs = a @ a.transpose(0, 2, 1) / d + 0.5 * np.eye(d)
    z = rng.choice(k, n, p=np.array([0.4, 0.3, 0.2, 0.1])[:k] / np.array([0.4, 0.3, 0.2, 0.1])[:k].sum())
    return np.einsum("nij,nj->ni", np.linalg.cholesky(covs)[z], rng.normal(size=(n, d))) + means[z]


def run_mclust(csv: Path, tol: str, repeats: int) -> dict | None:
    if shutil.which("Rscript") is None:
        return None
    out = subprocess.run(["Rscript", str(R_SCRIPT), str(csv), tol, str(repeats)], capture_output=True, text=True,
                         check=False)
    if out.returncode != 0:
        print("mclust failed:", out.stderr.strip()[-500:])
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_emkit(x: np.ndarray, settings: dict, repeats: int) -> dict:
    best_seconds, selection = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            selection = emkit.select_mixture(x, range(1, 10), covariance_types="mclust", **settings)
        best_seconds = min(best_seconds, time.perf_counter() - t0)
    assert selection is not None
    top = selection.top(3)
    return {"seconds": best_seconds, "top3": [f"{r['covariance_type']},{r['n_components']}" for r in top],
            "top3_bic": [-float(r["bic"]) for r in top]}


def machine() -> dict:
    facts = {"python": platform.python_version(), "cpu_count": os.cpu_count(), "numpy": np.__version__,
             "emkit": emkit.__version__}
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
        facts["cpu_model"] = next(line.split(":", 1)[1].strip() for line in text.splitlines()
                                  if line.startswith("model name"))
        flags = next(line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags"))
        facts["avx512f"] = "avx512f" in flags
        facts["cpu_simd_flags"] = sorted(f for f in flags if f.startswith(("avx", "fma")))
        facts["load_average_1min_before"] = os.getloadavg()[0]
    except (OSError, StopIteration):
        pass
    return facts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="Old Faithful only")
    parser.add_argument("--repeats", type=int, default=3, help="runs per cell on Old Faithful (best reported)")
    parser.add_argument("--json", metavar="PATH", help="write the rows and machine facts to PATH")
    args = parser.parse_args(argv)
    facts = machine()
    print("machine:", json.dumps(facts))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        faithful_csv = Path(str(data_path("faithful.csv")))
        cases = [("Old Faithful 272 x 2", faithful_csv, emkit.datasets.load_faithful(), args.repeats, True)]
        if not args.quick:
            x = mixture_data()
            big_csv = Path(tmp) / "mixture_100000x5.csv"
            np.savetxt(big_csv, x, delimiter=",", header="a,b,c,d,e", comments="", fmt="%.12g")
            cases.append(("mixture 100,000 x 5", big_csv, x, 1, False))
        for label, csv, x, repeats, tight in cases:
            plans = [("mclust default (rel. 1e-5)", "default", {"stop": "loglik_rel", "tol": 1e-5}),
                     (f"same, emkit n_jobs=-1 ({resolve_n_jobs(-1)} processes)", "default",
                      {"stop": "loglik_rel", "tol": 1e-5, "n_jobs": -1})]
            if tight:
                plans += [("tight (emkit default)", "tight", {}),
                          ("tight, emkit + SQUAREM", None, {"accelerate": "squarem"})]
            measured: dict = {}  # mclust's time per tolerance, measured once
            for setting, r_tol, settings in plans:
                ours = run_emkit(x, settings, repeats)
                if r_tol is not None and r_tol not in measured:
                    measured[r_tol] = run_mclust(csv, r_tol, repeats)
                theirs = measured.get(r_tol) if r_tol is not None else None
                row = {"data": label, "setting": setting, "emkit_s": ours["seconds"], "emkit_top3": ours["top3"],
                       "emkit_top3_bic": ours["top3_bic"],
                       "mclust_s": theirs["seconds"] if theirs else None,
                       "mclust_top3": theirs["top3"] if theirs else None,
                       "mclust_top3_bic": theirs["top3_bic"] if theirs else None}
                rows.append(row)
                ratio = f"{row['mclust_s'] / row['emkit_s']:.2f}x" if row["mclust_s"] else "-"
                mclust_s = f"{row['mclust_s']:.3f}" if row["mclust_s"] else "-"
                print(f"{label:<22} {setting:<36} emkit {row['emkit_s']:8.3f} s  mclust {mclust_s:>8} s  "
                      f"ratio {ratio:>7}  emkit top3 {' '.join(ours['top3'])}  "
                      f"mclust top3 {' '.join(theirs['top3']) if theirs else '-'}", flush=True)
    print()
    print("| data | setting | emkit s | mclust s | mclust / emkit | emkit top 3 (BIC, mclust's sign) | mclust top 3 |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        ours = ", ".join(f"{m} {b:.1f}" for m, b in zip(r["emkit_top3"], r["emkit_top3_bic"]))
        theirs = (", ".join(f"{m} {b:.1f}" for m, b in zip(r["mclust_top3"], r["mclust_top3_bic"]))
                  if r["mclust_top3"] else "-")
        mclust_s = f"{r['mclust_s']:.3f}" if r["mclust_s"] else "-"
        ratio = f"{r['mclust_s'] / r['emkit_s']:.2f}x" if r["mclust_s"] else "-"
        print(f"| {r['data']} | {r['setting']} | {r['emkit_s']:.3f} | {mclust_s} | {ratio} | {ours} | {theirs} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": facts, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
