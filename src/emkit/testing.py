"""The model contract as a test suite: :func:`check_model` runs a model through every promise
of :mod:`emkit.models.base` that the engine relies on.

Every built-in model passes it (``tests/test_testing.py``); run it on your own model before
you trust a fit::

    from emkit.testing import check_model
    report = check_model(MyModel(), data)      # raises ModelCheckError naming what broke
    print(report)

The checks, by name (pass a subset as ``checks=``):

``statistics_add_up``
    The statistics (and the log-likelihood) of a data set are the sums of those of its parts:
    over random splits of the rows into 2 and 3 parts, over the row chunks of the in-memory
    statistics pass (chunk sizes from 1 to all rows), and for the rows stacked twice. Chunked,
    threaded, Dask and online EM all add statistics up.
``m_step_scale_invariant``
    Scaling every statistic by a constant (0.37 and 3) leaves the M-step unchanged; online EM
    and weighted data rely on it.
``loglik_never_decreases``
    The observed log-likelihood never decreases over ``n_iter`` EM iterations from ``n_starts``
    random starts (``model.initialize(data, rng)`` with different generators), up to rounding;
    for a model with a prior (``log_prior(params)``, MAP EM) the log posterior, their sum.
``m_step_maximises``
    For a model with the optional ``complete_loglik(stats, params)``: the M-step does not
    lower Q(. | stats) (plus the log prior of a MAP model) below its value at the parameters
    the statistics came from, and moving
    any free coordinate of its result a little either way does not raise it (skipped for a
    model without ``complete_loglik``). This catches M-steps that climb but overshoot.
``params_stay_valid``
    Every parameter group of ``initialize`` and of every M-step satisfies its ``param_spec``
    constraint (finite, positive, on the simplex, symmetric positive definite...) and keeps
    its shape.
``fixed_groups``
    For each parameter group in turn, moved a little away from the start and then held fixed
    (``EMMap(model, data, fixed=[group])``): it stays bit-identical (nothing writes into the
    parameter arrays), the other groups stay valid, the log-likelihood never decreases and,
    with ``complete_loglik``, the other groups maximise Q given the fixed one (an M-step whose
    groups interact, a covariance about the means say, must take the ``fixed`` argument).
``threads_agree``
    For a model marked ``thread_safe``: the statistics pass over small chunks on 1 and on 2
    threads agrees to rounding, pass after pass.
``pickle_keeps_fit``
    The model and parameters after a round trip through :mod:`pickle` give the same
    statistics, log-likelihood and M-step.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence, cast

import numpy as np

from emkit.core.arrays import float_eps, get_namespace, is_dask, is_numpy, to_numpy, tree_add, tree_map
from emkit.core.data import same_fields
from emkit.core.params import ParamSpace, copy_params
from emkit.engine.em_map import EMMap, log_prior, m_step
from emkit.execution.local import local_statistics_pass
from emkit.execution.threads import usable_threads

__all__ = ["check_model", "CheckReport", "ModelCheckError", "CHECKS"]

#: check name -> what it promises (in the order the checks run)
CHECKS: dict[str, str] = {
    "statistics_add_up": "statistics add up over any split of the rows and any chunk size",
    "m_step_scale_invariant": "the M-step is unchanged when all statistics are scaled",
    "loglik_never_decreases": "the observed log-likelihood never decreases",
    "m_step_maximises": "the M-step maximises the expected complete-data log-likelihood",
    "params_stay_valid": "parameters satisfy their param_spec constraints",
    "fixed_groups": "fixed groups stay untouched and the M-step respects them",
    "threads_agree": "1 and 2 threads agree",
    "pickle_keeps_fit": "a round trip through pickle keeps the fit",
}

#: constants the M-step check scales the statistics by
SCALES = (0.37, 3.0)
#: the chunk-size check makes at most about this many chunks (chunk size 1 for small data)
MAX_CHUNKS = 256
#: iterations with one group fixed (each group in turn)
FIXED_ITERATIONS = 5
#: the maximiser check moves each free coordinate by this much (relative to its size) both ways
STEP = 1e-4
#: ... for at most this many free coordinates (drawn at random beyond it)
MAX_COORDINATES = 40

EM_INCREASES = ("EM never decreases it: the M-step does not maximise the expected complete-data "
                "log-likelihood given the statistics, or the E-step's statistics or log-likelihood are "
                "wrong.")
FIXED_HINT = ("An M-step whose groups interact (a covariance about the means, say) must take the `fixed` "
              "argument, m_step(stats, params, fixed=frozenset()), and maximise the free groups given the "
              "fixed groups' values in params.")
FIXED_INCREASES = "With groups held fixed EM still never decreases it. " + FIXED_HINT


class ModelCheckError(AssertionError):
    """A model broke a promise of the model contract.

    Attributes
    ----------
    check : str
        The name of the check that failed (a key of :data:`CHECKS`).
    model : str
        The model's display name.
    detail : str
        What was seen, and what the contract asks for.
    """

    def __init__(self, check: str, model: str, detail: str):
        self.check, self.model, self.detail = check, model, detail
        super().__init__(f"{model} fails check {check!r} ({CHECKS.get(check, check)}): {detail}")

    def __reduce__(self):
        return (type(self), (self.check, self.model, self.detail))


@dataclass
class CheckReport:
    """What :func:`check_model` verified.

    Attributes
    ----------
    model : str
        The model's display name.
    passed : list of str
        Names of the checks that ran and passed, in order.
    skipped : dict of str to str
        Check name -> why it did not apply (e.g. a model not marked ``thread_safe``).
    notes : dict of str to str
        Check name -> what it covered (splits, chunk sizes, starts, groups...).
    """

    model: str
    passed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        width = max(len(name) for name in CHECKS)
        lines = [f"{self.model}: {len(self.passed)} checks passed, {len(self.skipped)} skipped"]
        for name in CHECKS:
            if name in self.passed:
                lines.append(f"  passed   {name:<{width}}  {self.notes.get(name, '')}".rstrip())
            elif name in self.skipped:
                lines.append(f"  skipped  {name:<{width}}  {self.skipped[name]}".rstrip())
        return "\n".join(lines)


# =========================================================================== the suite
def check_model(model: Any, data: tuple, *, n_starts: int = 3, n_iter: int = 20, random_state: Any = 0,
                params: dict | None = None, checks: Iterable[str] | None = None,
                rtol: float | None = None, loglik_rtol: float | None = None,
                chunk_sizes: Sequence[int] | None = None, n_splits: int = 3) -> CheckReport:
    """Check that ``model`` keeps the model contract on ``data``.

    Parameters
    ----------
    model : Model
        Any model following :mod:`emkit.models.base` (built-in or your own).
    data : Data or tuple of arrays
        Row-aligned in-memory arrays (NumPy, torch or CuPy) that the model accepts, with a
        few dozen rows or more so that the splits mean something; a few hundred rows keep
        the whole suite well under a second for the built-in models.
    n_starts : int, default 3
        Random starts of the monotonicity check (``model.initialize(data, rng)``, one
        generator per start).
    n_iter : int, default 20
        EM iterations from each start.
    random_state : int, numpy.random.Generator or None, default 0
        Seeds the starts and the random splits of the rows.
    params : dict, optional
        Parameters at which the statistics, M-step, thread and pickle checks run (default:
        ``model.initialize`` with the first start's generator).
    checks : iterable of str, optional
        Names of the checks to run (default all; see :data:`CHECKS`).
    rtol : float, optional
        Relative tolerance of statistics and parameter comparisons, relative to the size of
        the terms summed (default 1e-9 for float64 data, looser for float32).
    loglik_rtol : float, optional
        Decrease of the log-likelihood, relative to its size, allowed as rounding (default
        1e-10 for float64 data, looser for float32).
    chunk_sizes : sequence of int, optional
        Chunk sizes of the statistics pass to compare with the whole (default: 1 (or the
        size that makes about 256 chunks), a few small odd sizes, half and all the rows).
    n_splits : int, default 3
        Random splits of the rows (the first into 2 parts, the others into 3).

    Returns
    -------
    CheckReport
        The checks passed, those skipped (with the reason) and what each covered.

    Raises
    ------
    ModelCheckError
        (an :class:`AssertionError`) naming the first check that failed, the model, and
        what was seen: the statistic or parameter entry that differs, the start and iteration
        at which the log-likelihood fell, the group that moved while fixed...
    ValueError
        For an unknown check name, or data the suite cannot use (Dask arrays, no rows).

    Examples
    --------
    >>> import numpy as np
    >>> from emkit.models.linkage import GeneticLinkage
    >>> rows = np.array([[60.0, 9, 11, 16], [40, 5, 4, 10], [25, 4, 5, 8]])
    >>> report = check_model(GeneticLinkage(), (rows,))
    >>> report.passed[:3]
    ['statistics_add_up', 'm_step_scale_invariant', 'loglik_never_decreases']
    """
    selected = list(CHECKS) if checks is None else list(checks)
    unknown = [c for c in selected if c not in CHECKS]
    if unknown:
        raise ValueError(f"unknown check(s) {unknown}; choose from {list(CHECKS)}")
    if any(is_dask(a) for a in data if a is not None):
        raise ValueError("check_model needs in-memory data (NumPy, torch or CuPy arrays), not Dask "
                         "arrays: pass a sample, e.g. dask_array[:1000].compute()")
    if int(n_starts) < 1 or int(n_iter) < 1:
        raise ValueError(f"n_starts and n_iter must be at least 1, got {n_starts} and {n_iter}")
    run = _Run(model, data, selected, int(n_starts), int(n_iter), random_state, rtol, loglik_rtol)
    if run.n_rows < 1:
        raise ValueError("check_model needs data with at least one row")
    run.user_params = params is not None
    run.start = run.guard("params_stay_valid", "initialize(data, rng) (pass params= to start elsewhere)",
                          lambda: model.initialize(data, run.generator(0))) if params is None else params
    if run.wants("params_stay_valid"):
        run.check_valid(run.start, "initialize() gave", reference=None)
    if run.wants("statistics_add_up"):
        run.statistics_add_up(chunk_sizes, n_splits)
    if run.wants("m_step_scale_invariant"):
        run.m_step_scale_invariant()
    if run.wants("loglik_never_decreases") or run.wants("params_stay_valid"):
        run.trajectories()
    if run.wants("m_step_maximises"):
        run.m_step_maximises()
    if run.wants("fixed_groups"):
        run.fixed_groups()
    if run.wants("threads_agree"):
        run.threads_agree()
    if run.wants("pickle_keeps_fit"):
        run.pickle_keeps_fit()
    report = run.report
    report.passed = [name for name in CHECKS if name in report.passed]
    return report


# =========================================================================== internals
class _Run:
    """One run of the suite: the model, its data, the tolerances and the report so far."""

    def __init__(self, model, data, selected, n_starts, n_iter, random_state, rtol, loglik_rtol):
        self.model, self.data, self.selected = model, data, selected
        self.n_starts, self.n_iter = n_starts, n_iter
        self.name = getattr(model, "display_name", None) or type(model).__name__
        self.n_rows = int(model.n_rows(data))
        eps = float_eps(data[0])
        self.rtol = max(1e-9, 1e4 * eps) if rtol is None else float(rtol)
        self.loglik_rtol = max(1e-10, 1e3 * eps) if loglik_rtol is None else float(loglik_rtol)
        base = random_state if isinstance(random_state, np.random.Generator) \
            else np.random.default_rng(random_state)
        self.seeds = [int(s) for s in base.integers(0, 2**63 - 1, size=n_starts + 1)]
        self.split_rng = np.random.default_rng(self.seeds[-1])
        self.report = CheckReport(self.name)
        self.start: dict = {}
        self.user_params = False
        self.end: dict | None = None       # parameters after the first start's iterations
        self._magnitude: dict[int, tuple] = {}
        self._has_q: bool | None = None    # whether the model gives complete_loglik (asked once)

    # ------------------------------------------------------------------ plumbing
    def wants(self, check: str) -> bool:
        return check in self.selected

    def points(self) -> list[dict]:
        """The starting parameters, and those after the first start's iterations once run."""
        return [self.start] + ([self.end] if self.end is not None else [])

    def generator(self, start: int) -> np.random.Generator:
        return np.random.default_rng(self.seeds[start])

    def fail(self, check: str, detail: str):
        raise ModelCheckError(check, self.name, detail)

    def passed(self, check: str, note: str = "") -> None:
        if check not in self.report.passed:
            self.report.passed.append(check)
        if note:
            self.report.notes[check] = note

    def guard(self, check: str, what: str, fn: Callable[[], Any]) -> Any:
        """``fn()``; an exception from the model becomes a failure of ``check`` naming ``what``."""
        try:
            return fn()
        except ModelCheckError:
            raise
        except Exception as exc:
            raise ModelCheckError(check, self.name, f"{what} raised {type(exc).__name__}: {exc}") from exc

    def e_step(self, check: str, data, params, what: str = "e_step(data, params)"):
        stats, loglik = self.guard(check, what, lambda: self.model.e_step(data, params))
        return stats, float(loglik)

    def pass_stats(self, check: str, params, chunk_size: int, n_threads: int = 1):
        return self.guard(check, f"the statistics pass in chunks of {chunk_size} rows on {n_threads} thread(s)",
                          lambda: local_statistics_pass(self.model, self.data, params, chunk_size=chunk_size,
                                                        n_threads=n_threads))

    def magnitude(self, check: str, params) -> tuple:
        """Sums over small chunks of |statistics| and |log-likelihood|: the size of the terms
        whose sum is compared, hence the scale of its rounding error."""
        key = id(params)
        if key not in self._magnitude:
            def abs_chunk(model, chunk, p, rng=None):
                stats, loglik = model.e_step(chunk, p)
                return tree_map(_abs_leaf, stats), abs(float(loglik))
            size = _smallest_chunk(self.n_rows)
            self._magnitude[key] = (params, self.guard(
                check, f"the statistics pass in chunks of {size} rows",
                lambda: local_statistics_pass(self.model, self.data, params, chunk_function=abs_chunk,
                                              chunk_size=size, n_threads=1)))
        return self._magnitude[key][1]

    def compare_stats(self, check: str, params, expected, got, labels: tuple[str, str], what: str,
                      hint: str = "") -> None:
        """Fail ``check`` unless the (stats, loglik) pairs ``expected`` and ``got`` agree."""
        scale_stats, scale_ll = self.magnitude(check, params)
        problem = _tree_mismatch(expected[0], got[0], self.rtol, scale_stats, "stats", labels)
        if problem:
            self.fail(check, f"{what}: {problem}. {hint}".rstrip())
        ll_a, ll_b = expected[1], got[1]
        if not _close(ll_a, ll_b, self.rtol * max(scale_ll, abs(ll_a), abs(ll_b))):
            problem = (f"the log-likelihood is {ll_a!r} for {labels[0]} but {ll_b!r} for {labels[1]} "
                       f"(difference {abs(ll_a - ll_b):.3g})")
            self.fail(check, f"{what}: {problem}. {hint}".rstrip())

    def check_valid(self, params, what: str, reference: dict | None, check: str = "params_stay_valid",
                    groups: Iterable[str] | None = None) -> None:
        spec = self.model.param_spec
        if not isinstance(params, dict):
            self.fail(check, f"{what} a {type(params).__name__}, not a dict of parameter groups")
        for group in (spec if groups is None else groups):
            if group not in params:
                self.fail(check, f"{what} no group {group!r} (param_spec has {list(spec)})")
            value: Any = to_numpy(params[group])  # replaced by a description when unreadable
            if reference is not None and group in reference:
                shape = np.shape(to_numpy(reference[group]))
                if np.shape(value) != shape:
                    self.fail(check, f"{what} {group!r} of shape {np.shape(value)}, but it started with "
                                     f"shape {shape}")
            try:
                ok = spec[group].is_valid(value)
            except Exception as exc:  # a value the constraint cannot even read
                ok, value = False, f"{value!r} ({type(exc).__name__}: {exc})"
            if not ok:
                self.fail(check, f"{what} {group!r} = {_short(value)}, which breaks its constraint "
                                 f"{spec[group]!r}")

    # ------------------------------------------------------------------ 1. additivity
    def statistics_add_up(self, chunk_sizes, n_splits: int) -> None:
        check, n, params = "statistics_add_up", self.n_rows, self.start
        whole = self.e_step(check, self.data, params)
        if not np.isfinite(whole[1]) and not np.isneginf(whole[1]):
            self.fail(check, f"the log-likelihood at the starting parameters is {whole[1]!r}")
        hint = ("Statistics must be sums over rows (sums, not means or other ratios: ratios belong in "
                "the M-step); chunked, threaded, Dask and online EM add them up.")
        splits = 0
        for s in range(int(n_splits) if n >= 2 else 0):
            parts = 2 if (s == 0 or n < 3) else 3
            order = self.split_rng.permutation(n)
            cuts = np.sort(self.split_rng.choice(np.arange(1, n), size=parts - 1, replace=False))
            pieces = np.split(order, cuts)
            total = None
            for rows in pieces:
                chunk = self.guard(check, "take_rows(data, rows)", lambda: self.model.take_rows(self.data, rows))
                stats, ll = self.e_step(check, chunk, params, f"e_step on {len(rows)} of the {n} rows")
                total = (stats, ll) if total is None else (tree_add(total[0], stats), total[1] + ll)
            piece_sizes = " + ".join(str(len(p)) for p in pieces)
            self.compare_stats(check, params, whole, total, ("all rows", f"the {parts} parts summed"),
                               f"the rows split at random into {piece_sizes} rows (split {s + 1}) do not add up",
                               hint)
            splits += 1
        twice = _stack_twice(self.data)
        if twice is not None:
            stats2, ll2 = self.e_step(check, twice, params, "e_step on the rows stacked twice")
            doubled = (tree_map(lambda a: a * 2, whole[0]), 2 * whole[1])
            self.compare_stats(check, params, doubled, (stats2, ll2), ("twice the rows' statistics",
                                                                       "the rows stacked twice"),
                               f"the {n} rows stacked twice do not have twice their statistics", hint)
        sizes = sorted({int(c) for c in chunk_sizes} if chunk_sizes is not None else _default_chunk_sizes(n))
        for size in sizes:
            if size < 1:
                raise ValueError(f"chunk sizes must be positive, got {size}")
            chunked = self.pass_stats(check, params, size)
            self.compare_stats(check, params, whole, chunked,
                               ("one E-step on all rows", f"the pass in chunks of {size} rows"),
                               f"the statistics pass in chunks of {size} rows does not add up", hint)
        self.passed(check, (f"{splits} random splits, " if splits else "one row (no splits), ")
                    + ("rows stacked twice, " if twice is not None else "")
                    + f"chunk sizes {', '.join(map(str, sizes))}")

    # ------------------------------------------------------------------ 2. scaled statistics
    def m_step_scale_invariant(self) -> None:
        check, params = "m_step_scale_invariant", self.start
        stats, _ = self.e_step(check, self.data, params)
        base = self.guard(check, "m_step(stats, params)",
                          lambda: m_step(self.model, tree_map(_copy_leaf, stats), params))
        for c in SCALES:
            scaled = tree_map(lambda a: a * c, stats)
            new = self.guard(check, f"m_step({c:g} * stats, params)", lambda: m_step(self.model, scaled, params))
            problem = _tree_mismatch(base, new, self.rtol, None, "params",
                                     ("the statistics", f"{c:g} x the statistics"))
            if problem:
                self.fail(check, f"scaling every statistic by {c:g} changed the M-step: {problem}. The M-step "
                                 f"must depend on the statistics only through ratios (online EM and row "
                                 f"weights rely on it), as every maximum-likelihood M-step does.")
        self.passed(check, "statistics x " + ", x ".join(f"{c:g}" for c in SCALES))

    # ------------------------------------------------------------------ 3 and 5. trajectories
    def trajectories(self) -> None:
        monotone, valid = self.wants("loglik_never_decreases"), self.wants("params_stay_valid")
        em_map = EMMap(self.model, self.data)
        starts = self.n_starts
        for start in range(self.n_starts):
            if start == 0:
                params = copy_params(self.start)
            else:
                try:
                    params = self.model.initialize(self.data, self.generator(start))
                except NotImplementedError as exc:
                    if not self.user_params:
                        raise ModelCheckError("params_stay_valid", self.name, f"initialize(data, rng) raised "
                                              f"NotImplementedError: {exc}") from exc
                    starts = 1      # no initialize(): the given params are the only start
                    break
                except Exception as exc:
                    raise ModelCheckError("params_stay_valid", self.name, f"initialize(data, rng) for start "
                                          f"{start + 1} raised {type(exc).__name__}: {exc}") from exc
                if valid:
                    self.check_valid(params, f"initialize() for start {start + 1} gave", reference=None)
            where = f"start {start + 1} of {self.n_starts}"
            stats, loglik = self.guard("loglik_never_decreases", f"the E-step at {where}",
                                       lambda: em_map.e_step(params))
            for it in range(1, self.n_iter + 1):
                new = self.guard("loglik_never_decreases", f"the M-step at iteration {it} from {where}",
                                 lambda: m_step(self.model, stats, params))
                if valid:
                    self.check_valid(new, f"iteration {it} from {where} gave", reference=params)
                new_stats, new_loglik = self.guard("loglik_never_decreases",
                                                   f"the E-step after iteration {it} from {where}",
                                                   lambda: em_map.e_step(new))
                new_loglik = float(new_loglik)
                if monotone:
                    self.check_increase(loglik, new_loglik, it, where, "loglik_never_decreases")
                params, stats, loglik = new, new_stats, new_loglik
            if start == 0:
                self.end = params
        if monotone:
            self.passed("loglik_never_decreases", f"{starts} start{'s' if starts > 1 else ''} x {self.n_iter} "
                                                  f"iterations")
        if valid:
            self.passed("params_stay_valid", f"{'initialize' if not self.user_params else 'the given params'} "
                                             f"and {starts * self.n_iter} M-steps")

    def check_increase(self, before: float, after: float, it: int, where: str, check: str,
                       why: str = EM_INCREASES) -> float:
        """Fail unless ``after >= before`` up to rounding; returns the decrease (0 if none)."""
        if np.isnan(after):
            self.fail(check, f"the log-likelihood after iteration {it} from {where} is NaN")
        if after >= before or (np.isneginf(before)):
            return 0.0
        allowed = self.loglik_rtol * max(abs(before), abs(after))
        drop = before - after
        if not drop <= allowed:
            self.fail(check, f"the observed log-likelihood decreased at iteration {it} from {where}: "
                             f"{before!r} -> {after!r} (by {drop:.6g}; rounding allows {allowed:.2g}). {why}")
        return drop

    # ------------------------------------------------------------------ 4. fixed groups
    def fixed_groups(self) -> None:
        check = "fixed_groups"
        groups = list(self.model.param_spec)
        n_iter = min(self.n_iter, FIXED_ITERATIONS)
        for group in groups:
            em_map = self.guard(check, f"EMMap(model, data, fixed=[{group!r}])",
                                lambda: EMMap(self.model, self.data, fixed=[group]))
            params = self.moved(copy_params(self.start), group)
            reference = np.array(to_numpy(params[group]), copy=True)
            others = [g for g in groups if g != group]
            where = f"start 1 with {group!r} moved and fixed"
            loglik = None
            for it in range(1, n_iter + 1):
                new, stats, ll = self.guard(check, f"the EM map at iteration {it} from {where}",
                                            lambda: em_map(params))
                ll = float(ll)
                if it == 1 and others and self.has_complete_loglik(stats, params):
                    problem = self.maximiser_problem(check, stats, params, new, [group])
                    if problem:
                        self.fail(check, f"with {group!r} fixed, {problem}. {FIXED_HINT}")
                if loglik is not None:
                    self.check_increase(loglik, ll, it - 1, where, check, FIXED_INCREASES)
                value = to_numpy(new[group])
                if value.dtype != reference.dtype or value.shape != reference.shape \
                        or value.tobytes() != reference.tobytes():
                    self.fail(check, f"the fixed group {group!r} changed at iteration {it}: it was "
                                     f"{_short(reference)}, it is now {_short(value)}. Nothing may write "
                                     f"into the parameter arrays it is given (copy before updating in "
                                     f"place).")
                self.check_valid(new, f"iteration {it} from {where} gave", reference=params, check=check,
                                 groups=others)
                params, loglik = new, ll
            final = float(self.guard(check, f"the E-step after {n_iter} iterations from {where}",
                                     lambda: em_map.loglik(params)))
            self.check_increase(cast(float, loglik), final, n_iter, where, check, FIXED_INCREASES)  # set by the loop
        self.passed(check, f"each group moved and fixed in turn ({', '.join(groups)}), {n_iter} iterations"
                           + (", the free groups maximise Q" if self._has_q and len(groups) > 1 else ""))

    def moved(self, params: dict, group: str) -> dict:
        """``params`` with ``group`` moved to another valid value nearby (so that a fixed group
        differs from what the M-step would choose, and an M-step that ignores ``fixed`` shows)."""
        space = ParamSpace({group: self.model.param_spec[group]}, params)
        vec = space.to_vector(params)
        if vec.size == 0:
            return params
        rng = np.random.default_rng(self.seeds[0] + 1)
        size = np.abs(vec) + max(float(np.mean(np.abs(vec))), 1e-3)
        noise = rng.standard_normal(vec.shape)
        for shrink in (0.2, 0.1, 0.05, 0.02, 0.01):
            candidate = space.from_vector(vec + shrink * size * noise)
            if space.is_valid(candidate):
                return candidate
        return params

    # ------------------------------------------------------------------ M-step maximises Q
    def has_complete_loglik(self, stats, params) -> bool:
        """Whether the model gives the optional ``complete_loglik(stats, params)`` (asked once)."""
        if self._has_q is None:
            try:
                self.model.complete_loglik(stats, params)
                self._has_q = True
            except NotImplementedError:
                self._has_q = False
            except Exception as exc:
                raise ModelCheckError("m_step_maximises", self.name, f"complete_loglik(stats, params) raised "
                                                                     f"{type(exc).__name__}: {exc}") from exc
        return self._has_q

    def q(self, check: str, stats, params) -> float:
        """Q(params | stats), plus the log prior for a model with one (its M-step maximises
        their sum)."""
        value = float(to_numpy(self.guard(check, "complete_loglik(stats, params)",
                                          lambda: self.model.complete_loglik(stats, params))))
        return value + self.guard(check, "log_prior(params)", lambda: log_prior(self.model, params))

    def maximiser_problem(self, check: str, stats, old: dict, new: dict, fixed: Sequence[str]) -> str | None:
        """Move each free coordinate of ``new`` a little both ways; describe the first move that
        raises Q(. | stats) beyond rounding (None when ``new`` is a local maximiser)."""
        q_new, q_old = self.q(check, stats, new), self.q(check, stats, old)
        if q_new < q_old - self.loglik_rtol * max(abs(q_new), abs(q_old)):
            return (f"the M-step lowered the expected complete-data log-likelihood Q from {q_old!r} (at the "
                    f"parameters the statistics were computed at) to {q_new!r}")
        space = ParamSpace(self.model.param_spec, new, fixed)
        vec = space.to_vector(new)
        owner: list[str] = []
        position: list[int] = []
        scale: list[float] = []
        for name in space.free_names:
            part = vec[len(owner):len(owner) + space.sizes[name]]
            size = max(float(np.mean(np.abs(part))), 1e-8) if part.size else 1.0
            owner += [name] * part.size
            position += list(range(part.size))
            scale += [size] * part.size
        coords = np.arange(vec.size)
        if vec.size > MAX_COORDINATES:
            coords = np.sort(np.random.default_rng(self.seeds[0]).choice(vec.size, MAX_COORDINATES, replace=False))
        for j in coords:
            h = STEP * max(abs(float(vec[j])), scale[j])
            for sign in (1.0, -1.0):
                moved = vec.copy()
                moved[j] += sign * h
                candidate = space.from_vector(moved)
                if not space.is_valid(candidate):
                    continue
                q_moved = self.q(check, stats, candidate)
                if q_moved > q_new + self.loglik_rtol * max(abs(q_new), abs(q_moved)):
                    return (f"the M-step does not maximise the expected complete-data log-likelihood Q given "
                            f"the statistics: moving free coordinate {position[j]} of {owner[j]!r} by "
                            f"{sign * h:+.3g} raises Q from {q_new!r} to {q_moved!r} (or complete_loglik "
                            f"does not match the M-step)")
        return None

    def m_step_maximises(self) -> None:
        check = "m_step_maximises"
        points = self.points()
        for i, params in enumerate(points):
            stats, _ = self.e_step(check, self.data, params)
            if not self.has_complete_loglik(stats, params):
                self.report.skipped[check] = "the model has no complete_loglik (optional)"
                return
            new = self.guard(check, "m_step(stats, params)", lambda: m_step(self.model, stats, params))
            problem = self.maximiser_problem(check, stats, params, new, ())
            if problem:
                label = "the starting parameters" if i == 0 else f"the parameters after {self.n_iter} iterations"
                self.fail(check, f"from the statistics at {label}, {problem}")
        self.passed(check, "every free coordinate moved both ways, at the start"
                           + (" and after EM" if len(points) > 1 else ""))

    # ------------------------------------------------------------------ 6. threads
    def threads_agree(self) -> None:
        check = "threads_agree"
        if not getattr(self.model, "thread_safe", False):
            self.report.skipped[check] = "the model is not marked thread_safe"
            return
        if not all(a is None or isinstance(a, np.ndarray) for a in self.data):
            self.report.skipped[check] = "the statistics pass uses threads for NumPy data only"
            return
        if self.n_rows < 2:
            self.report.skipped[check] = "one row makes one chunk"
            return
        if usable_threads(2) < 2:
            self.report.skipped[check] = "threadpoolctl is not installed, so the pass never uses threads"
            return
        size = max(1, -(-self.n_rows // 8))
        points = self.points()
        one = [self.pass_stats(check, p, size, n_threads=1) for p in points]
        for repeat in range(3):
            for p, expected in zip(points, one):
                got = self.pass_stats(check, p, size, n_threads=2)
                self.compare_stats(check, p, expected, got, ("1 thread", "2 threads"),
                                   f"the statistics pass in chunks of {size} rows differs between 1 and 2 "
                                   f"threads (pass {repeat + 1})",
                                   "A thread_safe model's E-step must keep no shared mutable state (caches, "
                                   "workspaces) between threads; otherwise set thread_safe = False.")
        self.passed(check, f"{-(-self.n_rows // size)} chunks of {size} rows, 3 passes on 2 threads")

    # ------------------------------------------------------------------ 7. pickle
    def pickle_keeps_fit(self) -> None:
        check = "pickle_keeps_fit"
        points = self.points()
        try:
            blob = pickle.dumps((self.model, points))
        except Exception as exc:
            self.fail(check, f"pickle.dumps(model) raised {type(exc).__name__}: {exc}. A model must pickle "
                             f"(joblib, multiprocessing and Dask workers send it to other processes); "
                             f"drop caches, locks and open files in __getstate__")
        try:
            model2, points2 = pickle.loads(blob)
        except Exception as exc:
            self.fail(check, f"pickle.loads of the pickled model raised {type(exc).__name__}: {exc}")
        for i, (p, p2) in enumerate(zip(points, points2)):
            label = "the starting parameters" if i == 0 else "the parameters after EM"
            expected = self.e_step(check, self.data, p)
            got = self.guard(check, "the unpickled model's e_step", lambda: model2.e_step(self.data, p2))
            got = (got[0], float(got[1]))
            self.compare_stats(check, p, expected, got, ("the model", "the unpickled model"),
                               f"the unpickled model's E-step at {label} differs from the original's")
            new = self.guard(check, "m_step(stats, params)", lambda: m_step(self.model, expected[0], p))
            new2 = self.guard(check, "the unpickled model's m_step", lambda: m_step(model2, got[0], p2))
            problem = _tree_mismatch(new, new2, self.rtol, None, "params", ("the model", "the unpickled model"))
            if problem:
                self.fail(check, f"the unpickled model's M-step at {label} differs from the original's: "
                                 f"{problem}")
        self.passed(check, "statistics, log-likelihood and M-step at the start"
                           + (" and after EM" if len(points) > 1 else ""))


# --------------------------------------------------------------------------- helpers
def _smallest_chunk(n: int) -> int:
    return max(1, -(-n // MAX_CHUNKS))


def _default_chunk_sizes(n: int) -> list[int]:
    base = _smallest_chunk(n)
    return sorted({s for s in (base, 3 * base, 7 * base + 2, n // 2 + 1, n) if 1 <= s <= n})


def _abs_leaf(a):
    if a is None:
        return None
    return np.abs(np.asarray(to_numpy(a), dtype=np.float64))


def _copy_leaf(a):
    if hasattr(a, "copy"):
        return a.copy()
    return a.clone() if hasattr(a, "clone") else a


def _stack_twice(data):
    """The rows of ``data`` followed by the same rows again (None when the arrays cannot be joined)."""
    out: list[Any] = []
    try:
        for a in data:
            if a is None:
                out.append(None)
            elif is_numpy(a):
                out.append(np.concatenate([a, a], axis=0))
            else:
                xp = get_namespace(a)
                out.append(xp.concat([a, a], axis=0))
    except Exception:
        return None
    return same_fields(data, out)


def _close(a: float, b: float, tol: float) -> bool:
    if np.isnan(a) or np.isnan(b):
        return bool(np.isnan(a) and np.isnan(b))
    if np.isinf(a) or np.isinf(b):
        return a == b
    return abs(a - b) <= tol


def _short(value) -> str:
    with np.printoptions(precision=6, threshold=12, edgeitems=3, linewidth=120):
        text = repr(value) if isinstance(value, str) else np.array2string(np.asarray(value), separator=", ")
    return text if len(text) <= 200 else text[:197] + "..."


def _path(path: str, key) -> str:
    return f"{path}[{key!r}]"


def _tree_mismatch(a, b, rtol: float, scale, path: str, labels: tuple[str, str] = ("one", "the other")) -> str | None:
    """A description of the first leaf where ``a`` and ``b`` differ beyond ``rtol`` (None when
    they agree). ``scale`` is a tree like ``a`` of magnitudes (|terms| summed); without it each
    leaf's largest absolute entry sets the scale."""
    one, other = labels
    if isinstance(a, dict) or isinstance(b, dict):
        if not (isinstance(a, dict) and isinstance(b, dict)):
            return f"{path} is a {type(a).__name__} for {one} but a {type(b).__name__} for {other}"
        if set(a) != set(b):
            return f"{path} has keys {sorted(map(str, a))} for {one} but {sorted(map(str, b))} for {other}"
        for key in a:
            problem = _tree_mismatch(a[key], b[key], rtol, None if scale is None else scale[key],
                                     _path(path, key), labels)
            if problem:
                return problem
        return None
    if isinstance(a, (tuple, list)) or isinstance(b, (tuple, list)):
        if not (isinstance(a, (tuple, list)) and isinstance(b, (tuple, list))) or len(a) != len(b):
            return (f"{path} is a {type(a).__name__} of {_len(a)} for {one} but a {type(b).__name__} of "
                    f"{_len(b)} for {other}")
        for i, (x, y) in enumerate(zip(a, b)):
            problem = _tree_mismatch(x, y, rtol, None if scale is None else scale[i], _path(path, i), labels)
            if problem:
                return problem
        return None
    if a is None or b is None:
        return None if a is None and b is None else f"{path} is {a!r} for {one} but {b!r} for {other}"
    try:
        x = np.asarray(to_numpy(a), dtype=np.float64)
        y = np.asarray(to_numpy(b), dtype=np.float64)
    except (TypeError, ValueError):
        return None if a == b else f"{path} is {a!r} for {one} but {b!r} for {other}"
    if x.shape != y.shape:
        return f"{path} has shape {x.shape} for {one} but {y.shape} for {other}"
    nan_x, nan_y = np.isnan(x), np.isnan(y)
    if np.any(nan_x != nan_y):
        idx = np.unravel_index(int(np.argmax(nan_x != nan_y)), x.shape) if x.ndim else ()
        return f"{path}{_index(idx)} is {x[idx]!r} for {one} but {y[idx]!r} for {other}"
    if x.size == 0:
        return None
    x, y = np.where(nan_x, 0.0, x), np.where(nan_y, 0.0, y)
    inf = np.isinf(x) | np.isinf(y)
    if np.any(inf & (x != y)):
        idx = np.unravel_index(int(np.argmax(inf & (x != y))), x.shape) if x.ndim else ()
        return f"{path}{_index(idx)} is {x[idx]!r} for {one} but {y[idx]!r} for {other}"
    diff = np.where(inf, 0.0, np.abs(x - y))
    finite_x, finite_y = np.where(inf, 0.0, x), np.where(inf, 0.0, y)
    size = max(float(np.max(np.abs(finite_x))), float(np.max(np.abs(finite_y))))
    if scale is not None:
        s = np.asarray(scale, dtype=np.float64)
        size = max(size, float(np.max(np.where(np.isfinite(s), s, 0.0))) if s.size else 0.0)
    tol = rtol * size
    if float(np.max(diff)) <= tol:
        return None
    idx = np.unravel_index(int(np.argmax(diff)), x.shape) if x.ndim else ()
    rel = float(diff[idx]) / size if size > 0 else float("inf")
    return (f"{path}{_index(idx)} is {x[idx]!r} for {one} but {y[idx]!r} for {other} (difference "
            f"{float(diff[idx]):.3g}, {rel:.2g} of the largest entry; tolerance {rtol:.0e})")


def _len(a) -> str:
    return f"{len(a)} items" if isinstance(a, (tuple, list)) else "one array"


def _index(idx) -> str:
    return "" if idx == () else "[" + ", ".join(str(int(i)) for i in idx) + "]"
