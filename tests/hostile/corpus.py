"""A seeded corpus of degenerate data sets for Gaussian mixtures, and how a fit of one is judged.

One generator serves the test suite (``tests/hostile/test_degenerate_corpus.py``) and the
benchmark that prints the corpus table (``benchmarks/degenerate_corpus.py``, which puts this
folder on ``sys.path``): the same cases, fitted and classified the same way, in both.

:func:`cases` gives at least 300 :class:`Case` objects: every *kind* of degenerate data
(:data:`KINDS`) for every covariance type and :data:`SEEDS_PER_KIND` seeds. A case is built
from its own seed only (``numpy.random.default_rng(seed)``), so any one of them can be rebuilt
alone (:func:`case`) and the corpus is the same on every machine.

:func:`fit_case` fits one case with emkit's or scikit-learn's ``GaussianMixture`` (same
``n_components``, ``covariance_type``, default ``reg_covar``, ``random_state``) and returns an
:class:`Outcome`: fitted, a clear error (a one-line ``ValueError`` whose message contains one
of :data:`CLEAR_ERRORS`), an unhelpful error (anything else), NaN parameters, whether the
log-likelihood trace decreased, and the time taken. :func:`table` summarises outcomes.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np

from emkit.models.gaussian import GaussianMixtureModel

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
#: seeds per (kind, covariance type)
SEEDS_PER_KIND = 5
#: a fit slower than this (CPU seconds of the fitting thread) fails the suite: the slowest case
#: (duplicates-and-noise/full/4: 30 rows that never meet tol=1e-14, so all max_iter=10,000
#: iterations run) takes 2.4-3.7 s alone and up to 6 s beside another test worker on 2 cores
MAX_SECONDS = 10.0
#: wall-clock seconds after which a fit is stopped whatever its CPU time (a loaded machine)
MAX_WALL_SECONDS = 6 * MAX_SECONDS

#: fragments of one-line error messages that name the cause of a failed fit (either library);
#: a message with none of them, several lines, or an exception other than ValueError is
#: "unhelpful"
CLEAR_ERRORS = (
    # emkit
    "distinct row",                      # more components than distinct rows
    "must be <= n_samples",              # more components than rows
    "n_samples >= n_components",         # the same, in scikit-learn's words
    "collapsed onto a single point",     # a degenerate (zero-variance) component
    "increase reg_covar",                # a covariance that is not positive definite
    "overflow",                          # values whose squares overflow
    "underflow",                         # values whose squares underflow
    # scikit-learn
    "ill-defined empirical covariance",  # its advice: fewer components, more reg_covar, rescale
    "should be >= n_components",
    "while a minimum of",                # "Found array with 1 sample(s) ... a minimum of 2 is required"
)


# =========================================================================== the cases
@dataclass(frozen=True, eq=False)
class Case:
    """One degenerate data set and the mixture to fit to it."""

    name: str
    kind: str
    covariance_type: str
    n_components: int
    seed: int
    X: np.ndarray = field(repr=False)

    @property
    def n_distinct(self) -> int:
        return int(np.unique(self.X, axis=0).shape[0])


def _blobs(rng: np.random.Generator, sizes: Iterable[int], d: int, separation: float = 8.0) -> np.ndarray:
    """Gaussian clusters of the given sizes, unit spread, centres ``separation`` apart."""
    sizes = list(sizes)
    centres = rng.normal(scale=separation, size=(len(sizes), d))
    return np.vstack([c + rng.normal(size=(m, d)) for c, m in zip(centres, sizes)])


def _duplicates(rng):
    """A few distinct points, each repeated many times (K below the number of points)."""
    d = int(rng.integers(1, 4))
    points = rng.normal(scale=5.0, size=(int(rng.integers(3, 7)), d))
    x = np.repeat(points, rng.integers(3, 15, size=len(points)), axis=0)
    return x, int(rng.integers(2, len(points)))


def _duplicates_and_noise(rng):
    """Half the rows one repeated point, the rest a cloud around it."""
    d = int(rng.integers(1, 4))
    n = int(rng.integers(30, 100))
    point = rng.normal(scale=3.0, size=d)
    x = np.vstack([np.repeat(point[None], n // 2, axis=0), point + rng.normal(size=(n - n // 2, d))])
    return x, int(rng.integers(2, 4))


def _constant_column(rng):
    """One column constant (at a random value), the others clustered."""
    d = int(rng.integers(2, 4))
    x = _blobs(rng, rng.integers(15, 40, size=2), d)
    x[:, int(rng.integers(d))] = rng.normal(scale=100.0)
    return x, 2


def _identical_columns(rng):
    """Two columns equal (or one a multiple of the other): a singular covariance."""
    d = int(rng.integers(2, 4))
    x = _blobs(rng, rng.integers(15, 40, size=3), d)
    x[:, 1] = x[:, 0] * (1.0 if rng.random() < 0.5 else rng.uniform(-3, 3))
    return x, int(rng.integers(2, 4))


def _one_point_clusters(rng):
    """A cloud plus one or two isolated single points far from it."""
    d = int(rng.integers(1, 4))
    lonely = int(rng.integers(1, 3))
    x = np.vstack([rng.normal(size=(int(rng.integers(30, 80)), d)), rng.normal(scale=1e3, size=(lonely, d))])
    return x, 1 + lonely


def _tiny_scale(rng):
    """Clusters at a scale of 1e-12 (variances far below reg_covar)."""
    d = int(rng.integers(1, 4))
    return _blobs(rng, rng.integers(15, 40, size=2), d) * 1e-12, int(rng.integers(1, 4))


def _huge_scale(rng):
    """Clusters at a scale of 1e12 (reg_covar negligible, sums of squares near 1e26)."""
    d = int(rng.integers(1, 4))
    return _blobs(rng, rng.integers(15, 40, size=2), d) * 1e12, int(rng.integers(1, 4))


def _float32_offset(rng):
    """float32 clusters of unit spread at an offset of 1e6 (a rounding unit of 0.06)."""
    d = int(rng.integers(1, 4))
    x = _blobs(rng, rng.integers(15, 40, size=2), d, separation=4.0) + 1e6
    return x.astype(np.float32), int(rng.integers(1, 4))


def _heavy_imbalance(rng):
    """A cluster of a few hundred rows and one of two to four rows."""
    d = int(rng.integers(1, 4))
    return _blobs(rng, [int(rng.integers(150, 300)), int(rng.integers(2, 5))], d), 2


def _k_equals_distinct(rng):
    """K equal to the number of distinct rows (each component gets one point)."""
    d = int(rng.integers(1, 4))
    points = rng.normal(scale=4.0, size=(int(rng.integers(2, 6)), d))
    x = np.repeat(points, rng.integers(1, 6, size=len(points)), axis=0)
    return x, len(points)


def _k_above_distinct(rng):
    """K one or two above the number of distinct rows (scikit-learn fits it; emkit's target is
    to fit it with a warning and empty or duplicate components)."""
    d = int(rng.integers(1, 4))
    points = rng.normal(scale=4.0, size=(int(rng.integers(1, 5)), d))
    x = np.repeat(points, rng.integers(3, 8, size=len(points)), axis=0)
    return x, len(points) + int(rng.integers(1, 3))


def _single_value(rng):
    """Every row the same point, one component."""
    d = int(rng.integers(1, 4))
    return np.repeat(rng.normal(scale=10.0, size=(1, d)), int(rng.integers(2, 40)), axis=0), 1


def _collinear(rng):
    """Rows on a line (rank one) in 2 or 3 dimensions."""
    d = int(rng.integers(2, 4))
    t = np.concatenate([rng.normal(size=int(rng.integers(15, 40))), 6 + rng.normal(size=int(rng.integers(15, 40)))])
    return rng.normal(size=d) + t[:, None] * rng.normal(size=d), int(rng.integers(1, 4))


def _lattice(rng):
    """Small integers: many tied rows and columns with few values."""
    d = int(rng.integers(1, 4))
    x = np.round(_blobs(rng, rng.integers(20, 60, size=2), d, separation=2.0) / 2.0)
    return x, int(rng.integers(2, 4))


def _as_many_rows_as_components(rng):
    """n = K: every component on its own row."""
    d = int(rng.integers(1, 4))
    k = int(rng.integers(1, 5))
    return rng.normal(scale=3.0, size=(k, d)), k


def _mixed_scales(rng):
    """Columns at scales 1e-6 and 1e6 together."""
    d = int(rng.integers(2, 4))
    x = _blobs(rng, rng.integers(15, 40, size=2), d)
    x *= np.logspace(-6, 6, d)
    return x, 2


#: kind -> generator ``rng -> (X, n_components)``
KINDS: dict[str, Callable] = {
    "duplicates": _duplicates,
    "duplicates-and-noise": _duplicates_and_noise,
    "constant-column": _constant_column,
    "identical-columns": _identical_columns,
    "one-point-clusters": _one_point_clusters,
    "scale-1e-12": _tiny_scale,
    "scale-1e12": _huge_scale,
    "float32-offset-1e6": _float32_offset,
    "heavy-imbalance": _heavy_imbalance,
    "k-equals-distinct": _k_equals_distinct,
    "k-above-distinct": _k_above_distinct,
    "single-value": _single_value,
    "collinear": _collinear,
    "lattice": _lattice,
    "n-equals-k": _as_many_rows_as_components,
    "mixed-scales": _mixed_scales,
}


def case(kind: str, covariance_type: str, index: int) -> Case:
    """Case ``index`` (0 .. SEEDS_PER_KIND - 1) of ``kind`` for ``covariance_type``; its seed
    depends on the three only, so it is rebuilt identically alone."""
    k_index = list(KINDS).index(kind)
    seed = 1000 * k_index + 100 * COVARIANCE_TYPES.index(covariance_type) + index
    x, k = KINDS[kind](np.random.default_rng(seed))
    return Case(f"{kind}/{covariance_type}/{index}", kind, covariance_type, int(k), seed, x)


def cases() -> list[Case]:
    """The whole corpus, in a fixed order."""
    return [case(kind, ct, i) for kind in KINDS for ct in COVARIANCE_TYPES for i in range(SEEDS_PER_KIND)]


# =========================================================================== fitting one case
@dataclass
class Outcome:
    """What one library did with one case."""

    case: Case
    library: str
    status: str            # "fitted", "clear", "unhelpful", "nan", "slow" (stopped after MAX_SECONDS)
    #: CPU seconds of the fitting thread (BLAS at one thread, so all of the fit's work): what
    #: the time limit applies to, since wall time depends on what else runs on the machine
    seconds: float
    message: str = ""
    wall_seconds: float = 0.0
    n_iter: int | None = None
    decreased: bool = False
    #: decreased beyond what the engine tolerates for this fit (rounding, or the regularised
    #: M-step's allowance: ``GaussianMixtureModel.REGULARISED_MONOTONE_RTOL`` with reg_covar > 0)
    beyond_tolerance: bool = False
    #: the largest decrease of the log-likelihood between two iterations, relative to max(1, |l|)
    worst_drop: float = 0.0
    warnings: tuple = ()
    loglik_trace: np.ndarray | None = field(default=None, repr=False)

    @property
    def fitted(self) -> bool:
        return self.status == "fitted"

    def describe(self) -> str:
        extra = f": {self.message}" if self.message else ""
        if self.decreased:
            extra += f" (log-likelihood decreased by {self.worst_drop:.2g} of its size)"
        if self.n_iter is not None:
            extra += f" [{self.n_iter} iterations, {self.seconds:.2f} s]"
        return (f"{self.case.name} (K={self.case.n_components}, n={len(self.case.X)}, distinct rows "
                f"{self.case.n_distinct}, {self.case.X.dtype}) {self.status}{extra}")


def is_clear_error(exc: BaseException) -> bool:
    """A one-line ValueError naming its cause (one of :data:`CLEAR_ERRORS`)."""
    message = str(exc)
    return (isinstance(exc, ValueError) and "\n" not in message
            and any(fragment in message for fragment in CLEAR_ERRORS))


class TooSlow(Exception):
    """Raised from emkit's per-iteration callback once a fit has run for MAX_SECONDS."""


def _deadline(seconds: float, wall_seconds: float) -> Callable:
    """An emkit callback that stops the fit once it has used ``seconds`` of CPU time (or
    ``wall_seconds`` of wall time): a fit that would run for minutes must not hold up the
    suite; it is reported as "slow"."""
    cpu, wall = time.thread_time(), time.perf_counter()

    def callback(iteration, params, loglik):
        if time.thread_time() - cpu > seconds or time.perf_counter() - wall > wall_seconds:
            raise TooSlow(f"still running after {seconds:g} s, at iteration {iteration}")
    return callback


def _estimator(library: str, case: Case):
    """The library's estimator with its default settings except the case's K, covariance
    type and random_state (emkit's: with a deadline callback, which changes nothing else)."""
    settings = dict(n_components=case.n_components, covariance_type=case.covariance_type, random_state=case.seed)
    if library == "emkit":
        import emkit
        return emkit.GaussianMixture(callback=_deadline(MAX_SECONDS, MAX_WALL_SECONDS), **settings)
    from sklearn.mixture import GaussianMixture
    return GaussianMixture(**settings)


def _parameters_finite(est) -> bool:
    return all(np.all(np.isfinite(np.asarray(getattr(est, name), dtype=float)))
               for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"))


#: a decrease of the log-likelihood counted as rounding, in machine epsilons of the data's dtype
#: relative to max(1, |loglik|): the engine's rule (beyond it, emkit warns MonotonicityWarning)
ROUNDING_EPS = 1e4
#: the relative decrease a regularised Gaussian M-step may cause (it is not an exact maximiser)
REGULARISED_MONOTONE_RTOL = GaussianMixtureModel.REGULARISED_MONOTONE_RTOL


def _worst_drop(trace: np.ndarray) -> float:
    """The largest decrease between consecutive values, relative to max(1, |value|) (0: none)."""
    trace = np.asarray(trace, dtype=float)
    if trace.size < 2:
        return 0.0
    drops = (trace[:-1] - trace[1:]) / np.maximum(1.0, np.abs(trace[:-1]))
    return max(0.0, float(np.max(drops)))


def fit_case(case: Case, library: str) -> Outcome:
    """Fit ``case`` with ``library`` ("emkit" or "sklearn") and judge the result."""
    est = _estimator(library, case)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cpu, wall = time.thread_time(), time.perf_counter()
        try:
            est.fit(case.X)
        except TooSlow as exc:
            return Outcome(case, library, "slow", time.thread_time() - cpu, str(exc),
                           wall_seconds=time.perf_counter() - wall)
        except Exception as exc:  # noqa: BLE001 - every failure is classified, none is hidden
            seconds, wall = time.thread_time() - cpu, time.perf_counter() - wall
            status = "clear" if is_clear_error(exc) else "unhelpful"
            return Outcome(case, library, status, seconds, f"{type(exc).__name__}: {exc}", wall_seconds=wall)
        seconds, wall = time.thread_time() - cpu, time.perf_counter() - wall
    names = tuple(sorted({type(w.message).__name__ for w in caught}))
    n_iter = int(est.n_iter_)
    if not _parameters_finite(est):
        return Outcome(case, library, "nan", seconds, "non-finite fitted parameters", warnings=names,
                       wall_seconds=wall, n_iter=n_iter)
    # emkit records the log-likelihood at the start and after every iteration; scikit-learn
    # its mean per iteration (lower_bounds_)
    # (times n: the same scale)
    trace = np.asarray(est.loglik_trace_ if library == "emkit" else getattr(est, "lower_bounds_", []), dtype=float)
    if library != "emkit":
        trace = trace * len(case.X)
    drop = _worst_drop(trace)
    rounding = ROUNDING_EPS * float(np.finfo(case.X.dtype).eps)
    decreased = drop > rounding
    beyond = drop > max(rounding, REGULARISED_MONOTONE_RTOL)  # default reg_covar > 0 in both libraries
    return Outcome(case, library, "fitted", seconds, decreased=decreased, beyond_tolerance=beyond,
                   worst_drop=drop, warnings=names,
                   loglik_trace=trace, wall_seconds=wall, n_iter=n_iter)


def run(corpus: Iterable[Case], libraries: Iterable[str] = ("emkit", "sklearn"),
        blas_threads: int | None = 1) -> dict[str, list[Outcome]]:
    """Every case fitted with every library: library -> outcomes, in corpus order.

    ``blas_threads``: BLAS and OpenMP threads during the fits (None: as configured). One by
    default: on data this small extra threads only add start-up and spinning costs (scikit-learn
    is 20 times slower with two threads on a 2-core machine), and the timings stay comparable
    when other processes share the machine."""
    corpus = list(corpus)
    if blas_threads is None:
        return {lib: [fit_case(c, lib) for c in corpus] for lib in libraries}
    from threadpoolctl import threadpool_limits
    # every BLAS the fits use must be loaded before the limit is set: scipy.linalg brings its
    # own OpenBLAS, which a limit set earlier does not reach (and whose triangular solves on
    # 2 x 2 matrices take 25 ms with two threads on a 2-core machine)
    import scipy.linalg  # noqa: F401
    import emkit  # noqa: F401
    if "sklearn" in libraries:
        import sklearn.mixture  # noqa: F401
    with threadpool_limits(limits=int(blas_threads)):
        return {lib: [fit_case(c, lib) for c in corpus] for lib in libraries}


# =========================================================================== the table
COLUMNS = ("fitted", "clear errors", "unhelpful errors", "NaN parameters", "decreases", "over 10 s",
           "slowest fit (CPU s)")


def summary(outcomes: list[Outcome]) -> dict[str, float]:
    return {"fitted": sum(o.status == "fitted" for o in outcomes),
            "clear errors": sum(o.status == "clear" for o in outcomes),
            "unhelpful errors": sum(o.status == "unhelpful" for o in outcomes),
            "NaN parameters": sum(o.status == "nan" for o in outcomes),
            "decreases": sum(o.decreased for o in outcomes),
            "over 10 s": sum(o.status == "slow" or o.seconds > MAX_SECONDS for o in outcomes),
            "slowest fit (CPU s)": max((o.seconds for o in outcomes), default=0.0)}


def table(results: dict[str, list[Outcome]]) -> str:
    """The corpus table as Markdown: one row per library."""
    n = len(next(iter(results.values()), []))
    lines = [f"| {n} cases | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for lib, outcomes in results.items():
        s = summary(outcomes)
        cells = [f"{s[c]:.2f}" if c.startswith("slowest") else str(int(s[c])) for c in COLUMNS]
        lines.append(f"| {'scikit-learn' if lib == 'sklearn' else lib} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
