"""mclust's fourteen covariance forms: emkit against R mclust on Old Faithful, and the cost of
each form's M-step.

1. For each form and G = 1..4, from mclust's fitted parameters (``tests/data/mclust_reference.json``,
   made by ``benchmarks/mclust_reference.R``): emkit's log-likelihood there (it must be
   mclust's), then EM to a relative change of 1e-13: the log-likelihood reached, its gain over
   mclust's (mclust stopped at a relative change of 1e-10; a gain of more than rounding means
   mclust's M-step is not exact), the iterations, the seconds per iteration, and the number of
   free parameters beside mclust's ``nMclustParams``.
2. Seconds per M-step of each form (the covariance part alone, from random scatter matrices)
   for D in 2, 5, 10, 20 and K in 3, 10: from scratch (``current=None``) and warm-started at
   covariances of the form near the answer (``current=``, what an EM iteration passes once the
   structures are wired in).

Usage::

    python benchmarks/mclust_bench.py                 # both parts (about a minute on 2 cores)
    python benchmarks/mclust_bench.py --quick         # part 1 for G <= 2, part 2 for D <= 5
    python benchmarks/mclust_bench.py --json mclust_bench.json

Nothing here asserts; ``tests/models/test_mclust_forms.py`` holds the checks.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from emkit.datasets import load_faithful
from emkit.engine.em_map import EMMap
from emkit.models.covariance import Diag, Full, Spherical, Tied, pack_sym
from emkit.models.covariance_mclust import MCLUST_NAMES, MCLUST_STRUCTURES
from emkit.models.gaussian import GaussianMixtureModel, data_center

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "data" / "mclust_reference.json"
OLD_FORMS = {"VVV": Full(), "EEE": Tied(), "VVI": Diag(), "VII": Spherical()}


def structure(name: str):
    return OLD_FORMS[name] if name in OLD_FORMS else MCLUST_STRUCTURES[name]


def covariances_from_mclust(name: str, sigma) -> np.ndarray:
    sigma = np.asarray(sigma, dtype=np.float64)
    return {"EEE": lambda: sigma[0].copy(), "VVI": lambda: np.diagonal(sigma, axis1=1, axis2=2).copy(),
            "VII": lambda: sigma[:, 0, 0].copy()}.get(name, lambda: sigma)()


def against_mclust(max_g: int) -> list[dict]:
    ref = json.loads(REFERENCE.read_text())
    x = load_faithful()
    rows = []
    print(f"R {ref['r_version']}, mclust {ref['mclust_version']}; Old Faithful, n = {len(x)}")
    print(f"{'model':7s} {'mclust loglik':>15s} {'emkit at it':>12s} {'emkit EM':>15s} {'gain':>10s} "
          f"{'iter':>5s} {'ms/iter':>8s} {'npar':>9s}")
    for name in MCLUST_NAMES:
        for g in range(1, max_g + 1):
            fit = ref["fits"][f"{name},{g}"]
            p = fit["params"]
            model = GaussianMixtureModel(g, covariance_type=structure(name), reg_covar=0.0, center=data_center(x))
            params = {"weights": np.asarray(p["pro"]), "means": np.asarray(p["mean"]),
                      "covariances": covariances_from_mclust(name, p["sigma"])}
            em_map = EMMap(model, (x,))
            at_mclust = em_map.loglik(params)
            loglik, iterations = at_mclust, 0
            start = time.perf_counter()
            for iterations in range(1, 5001):
                new, _, before = em_map(params)
                params, loglik = new, em_map.loglik(new)
                if loglik - before < 1e-13 * abs(loglik):
                    break
            seconds = time.perf_counter() - start
            npar = model.n_parameters(params)
            row = {"model": name, "G": g, "mclust_loglik": fit["loglik"], "emkit_at_mclust": at_mclust,
                   "emkit_loglik": loglik, "gain": loglik - fit["loglik"], "iterations": iterations,
                   "ms_per_iteration": 1e3 * seconds / max(iterations, 1), "n_params": npar,
                   "mclust_n_params": fit["n_params"]}
            rows.append(row)
            print(f"{name},{g:<5d} {fit['loglik']:15.8f} {at_mclust - fit['loglik']:+12.1e} {loglik:15.8f} "
                  f"{row['gain']:+10.2e} {iterations:5d} {row['ms_per_iteration']:8.2f} "
                  f"{npar:>4d}/{fit['n_params']:<4d}")
    return rows


def m_step_costs(dims, ks, repeats: int = 5) -> list[dict]:
    rng = np.random.default_rng(0)
    rows = []
    print(f"\nseconds per M-step (covariances only), cold / warm-started")
    print(f"{'form':5s} " + " ".join(f"{f'D={d},K={k}':>19s}" for d in dims for k in ks))
    for name, st in MCLUST_STRUCTURES.items():
        cells = []
        for d in dims:
            for k in ks:
                a = rng.normal(size=(k, d, d)) * rng.uniform(0.5, 2.0, size=(k, 1, d))
                s = a @ np.swapaxes(a, 1, 2) + 0.2 * np.eye(d)
                w = rng.uniform(50, 500, k)
                args = (w, w, np.zeros((k, d)), pack_sym(w[:, None, None] * s), np.zeros((k, d)), 0.0, d)
                start = time.perf_counter()
                answer = st.m_step(*args)
                cold = time.perf_counter() - start
                # warm: the answer for scatter matrices 1 % away (an EM iteration near convergence)
                near = st.m_step(w, w, np.zeros((k, d)), pack_sym(w[:, None, None] * s * rng.uniform(0.99, 1.01, (k, 1, 1))),
                                 np.zeros((k, d)), 0.0, d)
                start = time.perf_counter()
                for _ in range(repeats):
                    st.m_step(*args, current=near)
                warm = (time.perf_counter() - start) / repeats
                rows.append({"form": name, "d": d, "k": k, "cold_s": cold, "warm_s": warm,
                             "in_form": bool(st.in_form(answer))})
                cells.append(f"{cold:8.1e} / {warm:8.1e}")
        print(f"{name:5s} " + " ".join(f"{c:>19s}" for c in cells))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: checks the script")
    parser.add_argument("--json", type=Path, help="write the numbers here")
    args = parser.parse_args()
    rows = against_mclust(2 if args.quick else 4)
    costs = m_step_costs((2, 5) if args.quick else (2, 5, 10, 20), (3, 10))
    if args.json:
        args.json.write_text(json.dumps({"against_mclust": rows, "m_step_seconds": costs}, indent=1))


if __name__ == "__main__":
    main()
