"""Every script in examples/ runs as a subprocess and prints the published numbers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str, *args: str, cwd=None) -> str:
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True,
                          timeout=180, env=env, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def numbers_after(text: str, label: str) -> list[float]:
    line = next(l for l in text.splitlines() if label in l)
    return [float(v) for v in re.findall(r"-?\d+\.\d+", line.split(label, 1)[1])]


def test_every_example_has_a_test():
    tested = {"two_coins.py", "old_faithful_gmm.py", "exponential_missing.py", "peppered_moths.py",
              "sem_standard_errors.py", "hard_soft_stochastic.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


def test_two_coins():
    out = run_example("two_coins.py")
    # Do & Batzoglou (2008), Figure 1b: 0.71 / 0.58 after one iteration, 0.80 / 0.52 at convergence
    assert "after 1 iteration:  theta_A = 0.71, theta_B = 0.58" in out
    assert "converged:          theta_A = 0.80, theta_B = 0.52" in out
    assert "never decreases: True" in out


def test_old_faithful(tmp_path):
    out = run_example("old_faithful_gmm.py", "--plots", str(tmp_path))
    assert numbers_after(out, "log-likelihood")[0] == pytest.approx(-1130.264, abs=1e-3)  # mclust VVV, G=2
    assert numbers_after(out, "BIC")[0] == pytest.approx(2322.192, abs=1e-3)
    weights = [numbers_after(l, "weight")[0] for l in out.splitlines() if "weight" in l]
    assert weights == pytest.approx([0.356, 0.644], abs=1e-3)
    from PIL import Image
    for name in ("faithful_snapshots.png", "faithful_trace.png"):
        img = Image.open(tmp_path / name)
        assert img.format == "PNG" and np.asarray(img.convert("L"), dtype=float).var() > 100


def test_exponential_missing():
    out = run_example("exponential_missing.py")
    theta, rows = 1.0, [l.split() for l in out.splitlines() if re.match(r"\s+\d+\s+0\.", l)]
    assert len(rows) == 5
    for it, by_hand, by_emkit in rows:
        theta = 2 * theta / (5 * theta + 1)  # the seed's EM map
        assert float(by_hand) == pytest.approx(theta, abs=1e-10)
        assert float(by_emkit) == pytest.approx(theta, abs=1e-10)
    # with the default stopping rule (on the log-likelihood): 0.2 to about 1e-7
    assert numbers_after(out, "rate =")[0] == pytest.approx(0.2, abs=1e-7)
    ratios = numbers_after(out, "fraction of missing information):")
    assert ratios[-1] == pytest.approx(0.5, abs=0.01)


def test_peppered_moths():
    out = run_example("peppered_moths.py")
    # Givens & Hoeting, Computational Statistics, Example 4.2
    assert numbers_after(out, "p_C =") == [0.07084]
    assert numbers_after(out, "p_I =") == [0.18874]
    assert numbers_after(out, "p_T =") == [0.74043]


def test_sem_standard_errors():
    out = run_example("sem_standard_errors.py")
    p = numbers_after(out, "p =")[0]
    assert p == pytest.approx(0.626821, abs=1e-6)
    exact, sem, hess = numbers_after(out, "standard error:")
    y1, y23, y4 = 125, 38, 34
    closed_form = 1 / np.sqrt(y1 / (2 + p) ** 2 + y23 / (1 - p) ** 2 + y4 / p ** 2)
    assert exact == pytest.approx(closed_form, abs=1e-6)
    assert sem == pytest.approx(closed_form, abs=1e-5) and hess == pytest.approx(closed_form, abs=1e-5)
    moth_se = [numbers_after(l, "+-")[0] for l in out.splitlines() if l.startswith("moths:")]
    assert len(moth_se) == 3 and all(0.001 < s < 0.05 for s in moth_se)


def test_hard_soft_stochastic():
    out = run_example("hard_soft_stochastic.py")
    ll = {l.split()[0]: float(l.split()[1]) for l in out.splitlines()[1:]}
    assert ll["em"] == pytest.approx(-1130.264, abs=1e-3)
    # the observed likelihood's maximum is soft EM's; the other two sit just below it
    assert ll["hard"] <= ll["em"] + 1e-9 and ll["stochastic"] <= ll["em"] + 1e-9
    assert ll["hard"] > ll["em"] - 1.0 and ll["stochastic"] > ll["em"] - 1.0
