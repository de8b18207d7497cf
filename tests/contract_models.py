"""Small models written against the public contract, shared by the engine's tests.

``Linkage`` is the README's model (Dempster, Laird & Rubin 1977, shipped as
``emkit.models.linkage.GeneticLinkage``); ``TwoPoisson`` is a two-component Poisson mixture
over distinct counts with multiplicities (a DiscreteLatentModel, so the hard / stochastic
variants apply).
"""

from __future__ import annotations

import signal
import subprocess
import time

import numpy as np
from scipy.special import gammaln

import emkit
from emkit.core.arrays import get_namespace
from emkit.engine import checkpoint as ckpt
from emkit.models.linkage import GeneticLinkage as Linkage  # noqa: F401  (the README's model)

Y_LINKAGE = np.array([125.0, 18.0, 20.0, 34.0])
LINKAGE = (Y_LINKAGE[None, :],)
#: root of the score equation 197 p^2 - 15 p - 68 = 0 (DLR 1977)
P_HAT = (15 + np.sqrt(15**2 + 4 * 197 * 68)) / (2 * 197)


def linkage_loglik(p: float) -> float:
    """Observed-data log-likelihood of the linkage counts, written directly."""
    return float(Y_LINKAGE @ np.log([0.5 + p / 4, (1 - p) / 4, (1 - p) / 4, p / 4]))


def linkage_em_map(p: float) -> float:
    """One EM step of the linkage model in closed form."""
    y = Y_LINKAGE
    hidden = y[0] * (p / 4) / (0.5 + p / 4)
    return (hidden + y[3]) / (hidden + y[1] + y[2] + y[3])


class TwoPoisson(emkit.DiscreteLatentModel):
    """Two-component Poisson mixture; data = (distinct counts x, multiplicities w)."""

    param_spec = {"weights": emkit.Simplex(), "rates": emkit.Positive()}
    row_counts_are_integers = True

    def initialize(self, data, rng):
        mean = float(np.average(data[0], weights=data[1]))
        return {"weights": np.array([0.5, 0.5]), "rates": np.sort(rng.uniform(0.5, 1.5, 2) * mean)}

    def log_joint(self, data, params):
        x = data[0][:, None]
        return np.log(params["weights"]) + x * np.log(params["rates"]) - params["rates"] - gammaln(x + 1)

    def row_weights(self, data):
        return data[1]

    def stats_from_responsibilities(self, data, resp):
        return {"n": resp.sum(0), "sx": resp.T @ data[0]}

    def m_step(self, stats, params):
        return {"weights": stats["n"] / stats["n"].sum(), "rates": stats["sx"] / stats["n"]}

    def complete_loglik(self, stats, params):
        w, r = params["weights"], params["rates"]
        return float(stats["n"] @ np.log(w) + stats["sx"] @ np.log(r) - stats["n"] @ r)

    def sample(self, params, n, rng):
        z = rng.choice(2, size=n, p=params["weights"])
        x = rng.poisson(params["rates"][z]).astype(float)
        values, counts = np.unique(x, return_counts=True)
        return (values, counts.astype(float))


class ArrayAPIPoissonMixture(emkit.DiscreteLatentModel):
    """Two-component Poisson mixture written against the array API only (no NumPy calls on
    data or parameters), so it runs wherever its arrays live (torch CPU / CUDA, CuPy)."""

    param_spec = {"weights": emkit.Simplex(), "rates": emkit.Positive()}

    def log_joint(self, data, params):
        x = data[0][:, None]
        xp = get_namespace(x)
        # log(x!) is left out: it is constant in the parameters (shifts the loglik only)
        return xp.log(params["weights"]) + x * xp.log(params["rates"]) - params["rates"]

    def stats_from_responsibilities(self, data, resp):
        xp = get_namespace(resp)
        return {"n": xp.sum(resp, axis=0), "sx": resp.T @ data[0]}

    def m_step(self, stats, params):
        return {"weights": stats["n"] / stats["n"].sum(), "rates": stats["sx"] / stats["n"]}


def raise_at_call(n_calls: int, exception: type[BaseException]):
    """A fit callback that raises ``exception`` at its ``n_calls``-th call: a crash (or a
    Ctrl-C) in the middle of a fit, which leaves the checkpoint behind."""
    calls = [0]

    def callback(iteration, params, loglik):
        calls[0] += 1
        if calls[0] == n_calls:
            raise exception
    return callback


def kill_when_checkpoint_ready(cmd, path, ready, timeout=60.0):
    """Start ``cmd``; while it runs, read every checkpoint that appears under ``path`` (each
    read must succeed: the file is never partial) and SIGKILL the process once ``ready(header)``."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    reads = 0
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if path.exists():
                try:
                    header = ckpt.read_checkpoint(path)
                except ValueError:
                    if not path.exists():  # removed after success between exists() and the read
                        continue
                    raise
                reads += 1
                if ready(header):
                    proc.send_signal(signal.SIGKILL)
                    break
            time.sleep(0.002)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, f"the fit was not killed mid-way (rc {proc.returncode}): {stderr}"
    assert path.exists() and reads >= 1
    return ckpt.read_checkpoint(path)
