"""A bootstrap likelihood-ratio test for the number of components of a Gaussian mixture, as
R mclust's ``mclustBootstrapLRT`` (McLachlan 1987; McLachlan & Rathnayake 2014).

For G = 1, 2, ... the null hypothesis "G components" is tested against "G + 1": the observed
statistic is ``LRTS = 2 (loglik_{G+1} - loglik_G)`` of the two fits to the data; its null
distribution is the parametric bootstrap: ``n_bootstrap`` samples of the data's size are drawn
from the fitted G-component model, and each is fitted with G components (EM from the fitted
G-component parameters) and with G + 1 (EM from the fitted (G + 1)-component parameters), as
mclust does. The p-value is ``(1 + #{LRTS_b >= LRTS}) / (n_bootstrap + 1)``; the sequence stops
at the first G whose p-value is above ``level`` unless ``max_components`` asks for every G.

Reproducible and parallel
    Replicate b of step G draws its sample from its own seed, spawned from ``random_state``
    (:class:`numpy.random.SeedSequence`), so the result does not depend on where or in which
    order the replicates run: the same on one core and on a Dask cluster. With a
    ``dask.distributed`` client (``client=``, or the active one with ``client="auto"``) the
    replicates of each step are Dask tasks.
"""

from __future__ import annotations

import math
import sys
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from emkit.core.arrays import to_numpy
from emkit.core.validation import as_array
from emkit.engine.loop import ConvergenceWarning, MonotonicityWarning
from emkit.estimators.gaussian import GaussianMixture
from emkit.estimators.selection import start_settings
from emkit.models.gaussian import COVARIANCE_TYPES, EmptyComponentWarning, GaussianMixtureModel

__all__ = ["BootstrapLRT", "bootstrap_lrt"]

#: mclust's default number of bootstrap samples
DEFAULT_N_BOOTSTRAP = 999
#: the largest G tested when ``max_components`` is None (mclust: G = 1..9 fitted, 1..8 tested)
SEQUENTIAL_MAX_COMPONENTS = 8
#: a replicate whose fit fails is drawn again with a fresh seed at most this many times
MAX_REDRAWS = 10
#: the fits' settings unless the caller gives others: mclust's EM tolerance (relative change
#: of the log-likelihood below 1e-5) and its hierarchical start for the fits to the data
FIT_DEFAULTS = {"stop": "loglik_rel", "tol": 1e-5, "init_params": "hc"}
_GAUSSIAN: Any = GaussianMixture


@dataclass
class BootstrapLRT:
    """Result of :func:`bootstrap_lrt` (mclust's ``mclustBootstrapLRT`` object).

    Attributes
    ----------
    covariance_type : str
    n_components : ndarray of int
        The null hypotheses tested: G (against G + 1), 1, 2, ...
    statistic : ndarray
        Observed ``LRTS = 2 (loglik_{G+1} - loglik_G)`` per G (mclust's ``obs``).
    p_value : ndarray
        ``(1 + #{bootstrap LRTS >= observed}) / (n_bootstrap + 1)`` per G.
    bootstrap : ndarray of shape (n_bootstrap, len(n_components))
        The bootstrap statistics (mclust's ``boot``).
    loglik : ndarray
        Log-likelihood of the fits to the data with G = 1 .. last G + 1 components.
    level : float
    """

    covariance_type: str
    n_components: np.ndarray
    statistic: np.ndarray
    p_value: np.ndarray
    bootstrap: np.ndarray
    loglik: np.ndarray
    level: float
    models: dict = field(default_factory=dict, repr=False)

    @property
    def selected_n_components(self) -> int:
        """The first G whose test does not reject G components at ``level`` (the last G
        tested + 1 if every test rejects)."""
        for g, p in zip(self.n_components, self.p_value):
            if p > self.level:
                return int(g)
        return int(self.n_components[-1]) + 1

    def summary(self) -> str:
        """A text report in mclust's layout."""
        lines = ["Bootstrap sequential LRT for the number of mixture components",
                 f"Model        = {self.covariance_type}",
                 f"Replications = {self.bootstrap.shape[0]}",
                 f"{'':>10}{'LRTS':>14}{'bootstrap p-value':>20}"]
        for g, s, p in zip(self.n_components, self.statistic, self.p_value):
            lines.append(f"{f'{g} vs {g + 1}':>10}{s:>14.6f}{p:>20.3f}")
        return "\n".join(lines)


def _fit(k: int, covariance_type: str, x: np.ndarray, settings: dict, start: dict | None = None) -> Any:
    """A fitted GaussianMixture, quietly (the test reports what matters); ``start``: parameters
    EM starts from."""
    gmm = _GAUSSIAN(k, covariance_type=covariance_type, **settings, **(start_settings(start) if start else {}))
    with warnings.catch_warnings():
        for category in (ConvergenceWarning, MonotonicityWarning, EmptyComponentWarning, RuntimeWarning):
            warnings.simplefilter("ignore", category)
        return gmm.fit(x)


def _replicate(seed: np.random.SeedSequence, null: dict, alternative: dict, covariance_type: str, n: int,
               settings: dict) -> float:
    """One bootstrap statistic: a sample from the null fit, fitted with G and G + 1 components
    from the null and alternative fits' parameters (a failed fit draws again)."""
    k0, k1 = len(null["weights"]), len(alternative["weights"])
    model = GaussianMixtureModel(k0, covariance_type)
    for child in seed.spawn(MAX_REDRAWS):
        x, _ = model.sample(null, n, np.random.default_rng(child))
        try:
            l0 = float(_fit(k0, covariance_type, x, settings, null).loglik_)
            l1 = float(_fit(k1, covariance_type, x, settings, alternative).loglik_)
        except (ValueError, np.linalg.LinAlgError):
            continue
        if math.isfinite(l0) and math.isfinite(l1):
            return 2.0 * (l1 - l0)
    return math.nan


def _active_client(client: Any) -> Any:
    if client is None or client is False:
        return None
    if client == "auto":
        try:
            from distributed import get_client
            return get_client()
        except (ImportError, ValueError):
            return None
    return client


def _text_progress(done: int, total: int) -> None:
    print(f"\rbootstrap LRT: {done}/{total} replicates", end="" if done < total else "\n", file=sys.stderr,
          flush=True)


def bootstrap_lrt(X: Any, covariance_type: str = "VVV", *, max_components: int | None = None,
                  n_bootstrap: int = DEFAULT_N_BOOTSTRAP, level: float = 0.05, random_state: Any = None,
                  progress: bool | Callable[[int, int], None] = False, client: Any = "auto",
                  **gmm_kwargs: Any) -> BootstrapLRT:
    """Bootstrap likelihood-ratio test of G against G + 1 components, G = 1, 2, ... (mclust's
    ``mclustBootstrapLRT``; see the module docstring for the method).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    covariance_type : str, default "VVV"
        Any covariance type of :class:`GaussianMixture` (mclust's names or scikit-learn's).
    max_components : int, optional
        Test every G = 1 .. max_components (mclust's ``maxG``). None: stop at the first G whose
        p-value exceeds ``level`` (at most G = :data:`SEQUENTIAL_MAX_COMPONENTS`).
    n_bootstrap : int, default 999
    level : float, default 0.05
    random_state : int, SeedSequence or None
        Seed of the bootstrap samples: the same seed gives the same statistics wherever the
        replicates run.
    progress : bool or callable, default False
        True prints ``bootstrap LRT: done/total`` on stderr; a callable is called as
        ``progress(done, total)`` after each replicate (each finished Dask task).
    client : "auto", None or dask.distributed.Client
        Where the replicates run: ``"auto"`` uses the active Dask client when there is one,
        else this process; None always this process.
    **gmm_kwargs
        Settings of every fit (:class:`GaussianMixture`); by default mclust's: hierarchical
        start for the fits to the data and EM to a relative log-likelihood change of 1e-5.

    Returns
    -------
    BootstrapLRT
    """
    if covariance_type not in COVARIANCE_TYPES:
        raise ValueError(f"unknown covariance_type {covariance_type!r}; choose one of {COVARIANCE_TYPES}")
    if not isinstance(n_bootstrap, (int, np.integer)) or n_bootstrap < 1:
        raise ValueError(f"n_bootstrap must be a positive integer, got {n_bootstrap!r}")
    if not (0.0 < float(level) < 1.0):
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    if max_components is not None and (not isinstance(max_components, (int, np.integer)) or max_components < 1):
        raise ValueError(f"max_components must be a positive integer or None, got {max_components!r}")
    x = np.asarray(to_numpy(as_array(X, "X", ndim=2)), dtype=np.float64)
    n = x.shape[0]
    settings = {**FIT_DEFAULTS, **gmm_kwargs}
    replicate_settings = {k: v for k, v in settings.items() if k != "init_params"}
    last = int(max_components) if max_components is not None else SEQUENTIAL_MAX_COMPONENTS
    seeds = (random_state if isinstance(random_state, np.random.SeedSequence)
             else np.random.SeedSequence(random_state)).spawn(last)
    report = _text_progress if progress is True else (progress or None)
    dask_client = _active_client(client)
    total = last * n_bootstrap if max_components is not None else None
    done = 0
    fits = {1: _fit(1, covariance_type, x, settings)}
    tested, statistic, p_value, boot = [], [], [], []
    for g in range(1, last + 1):
        fits[g + 1] = _fit(g + 1, covariance_type, x, settings)
        obs = 2.0 * (float(fits[g + 1].loglik_) - float(fits[g].loglik_))
        null, alternative = fits[g].params_, fits[g + 1].params_
        step_seeds = seeds[g - 1].spawn(n_bootstrap)
        if dask_client is not None:
            futures = dask_client.map(_replicate, step_seeds, null=null, alternative=alternative,
                                      covariance_type=covariance_type, n=n, settings=replicate_settings,
                                      pure=False)
            from distributed import as_completed
            for _ in as_completed(futures):
                done += 1
                if report:
                    report(done, total or done)
            values = np.array(dask_client.gather(futures), dtype=np.float64)
        else:
            values = np.empty(n_bootstrap)
            for b, seed in enumerate(step_seeds):
                values[b] = _replicate(seed, null, alternative, covariance_type, n, replicate_settings)
                done += 1
                if report:
                    report(done, total or done)
        kept = values[np.isfinite(values)]
        p = (1.0 + float(np.sum(kept >= obs))) / (kept.size + 1.0)
        tested.append(g)
        statistic.append(obs)
        p_value.append(p)
        boot.append(values)
        if max_components is None and p > level:
            break
    loglik = np.array([float(fits[g].loglik_) for g in range(1, tested[-1] + 2)])
    return BootstrapLRT(covariance_type=covariance_type, n_components=np.array(tested), statistic=np.array(statistic),
                        p_value=np.array(p_value), bootstrap=np.column_stack(boot), loglik=loglik, level=float(level),
                        models=fits)
