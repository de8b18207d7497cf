"""emkit.testing.check_model: every built-in model passes the contract suite, and deliberately
broken models fail it with a message that names what broke."""

from __future__ import annotations

import pickle
import threading
import time

import numpy as np
import pytest
from scipy.special import gammaln

import emkit
from emkit.core.data import Data
from emkit.execution.threads import usable_threads
from emkit.models import families
from emkit.models.alleles import AlleleModel
from emkit.models.exponential import ExponentialModel
from emkit.models.gaussian import GaussianMixtureModel
from emkit.models.linkage import LINKAGE_COUNTS, GeneticLinkage
from emkit.models.mixture import FiniteMixtureModel
from emkit.testing import CHECKS, CheckReport, ModelCheckError, check_model

ALL_CHECKS = list(CHECKS)
#: the README's 197 animals as one row, and split into three batches (same column sums)
LINKAGE_ONE_ROW = (LINKAGE_COUNTS[None, :],)
LINKAGE_ROWS = (np.array([[60.0, 9, 11, 16], [40, 5, 4, 10], [25, 4, 5, 8]]),)


# --------------------------------------------------------------------------- data
def two_groups(n: int = 90, seed: int = 1):
    """A boolean group label and a 2-D normal sample whose groups differ."""
    rng = np.random.default_rng(seed)
    group = rng.random(n) < 0.4
    X = np.where(group[:, None], rng.normal([3.0, -1.0], [1.0, 0.5], (n, 2)), rng.normal(0.0, 1.0, (n, 2)))
    return rng, group, X


def gaussian_data(with_nan: bool = False, weights: bool = False) -> Data:
    rng, _, X = two_groups(100, seed=2)
    if with_nan:
        X = X.copy()
        X[rng.random(X.shape) < 0.1] = np.nan
        X[3] = np.nan                                       # one row with nothing observed
    w = rng.integers(1, 4, len(X)).astype(float) if weights else None
    return Data(("X", "sample_weight"), (X, w))


def family_data(name: str):
    """(family, data) of a FiniteMixtureModel: the family's arrays followed by the row weights."""
    rng, group, X = two_groups()
    n = len(group)
    if name == "normal":
        family, arrays, extra = families.Normal(), (X[:, 0],), {}
    elif name == "normal-2d":
        family, arrays, extra = families.Normal(), (X,), {}
    elif name == "multivariate_normal":
        family, arrays, extra = families.MultivariateNormal(), (X,), {}
    elif name == "poisson":
        counts = np.where(group, rng.poisson(9.0, n), rng.poisson(2.0, n)).astype(float)
        family, arrays, extra = families.Poisson(), (counts,), {}
    elif name == "exponential":
        waits = np.where(group, rng.exponential(5.0, n), rng.exponential(1.0, n))
        family, arrays, extra = families.ExponentialFamily(), (waits,), {}
    elif name == "bernoulli":
        items = (rng.random((n, 5)) < np.where(group[:, None], 0.8, 0.2)).astype(float)
        family, arrays, extra = families.Bernoulli(), (items,), {}
    elif name == "categorical":
        answers = np.where(group[:, None], rng.integers(0, 3, (n, 4)), rng.integers(1, 3, (n, 4))).astype(float)
        family, arrays, extra = families.Categorical(3), (answers,), {}
    elif name == "binomial":
        trials = rng.integers(5, 15, n).astype(float)      # any number of trials per row
        successes = rng.binomial(trials.astype(int), np.where(group, 0.8, 0.3)).astype(float)
        family, arrays, extra = families.Binomial(), (successes,), {"trials": trials}
    else:  # pragma: no cover
        raise ValueError(name)
    weights = rng.integers(1, 4, n).astype(float) if name == "poisson" else None
    return family, family.make_data(*arrays, **extra) + (weights,)


def lifetimes():
    """Exponential lifetimes, 30 % right-censored, 10 % of the others missing (NaN)."""
    rng = np.random.default_rng(3)
    x = rng.exponential(2.0, 120)
    censored = (rng.random(120) < 0.3).astype(float)
    x[(rng.random(120) < 0.1) & (censored == 0)] = np.nan
    return (x, censored)


#: genotype columns of 3 alleles in AlleleModel's order: 00, 01, 02, 11, 12, 22
MOTH = np.array([[1, 1, 1, 0, 0, 0],      # carbonaria: CC, CI, CT
                 [0, 0, 0, 1, 1, 0],      # insularia: II, IT
                 [0, 0, 0, 0, 0, 1.0]])   # typica: TT
ABO = np.array([[1, 0, 1, 0, 0, 0],       # A: AA, AO
                [0, 0, 0, 1, 1, 0],       # B: BB, BO
                [0, 1, 0, 0, 0, 0],       # AB
                [0, 0, 0, 0, 0, 1.0]])    # O: OO


# --------------------------------------------------------------------------- built-in models
BUILT_IN = {
    **{f"gaussian-{cov}": (lambda cov=cov: (GaussianMixtureModel(2, covariance_type=cov), gaussian_data()))
       for cov in ("full", "tied", "diag", "spherical")},
    "gaussian-full-missing": lambda: (GaussianMixtureModel(2, covariance_type="full"), gaussian_data(True)),
    "gaussian-diag-missing-weighted": lambda: (GaussianMixtureModel(2, covariance_type="diag"),
                                               gaussian_data(True, True)),
    **{f"mixture-{name}": (lambda name=name: (lambda f, d: (FiniteMixtureModel(f, 2), d))(*family_data(name)))
       for name in ("normal", "normal-2d", "multivariate_normal", "poisson", "exponential", "bernoulli",
                    "categorical", "binomial")},
    "exponential-missing-censored": lambda: (ExponentialModel(), lifetimes()),
    "alleles-moth": lambda: (AlleleModel(3), (np.array([85.0, 196, 341]), MOTH)),
    "alleles-moth-coarse": lambda: (AlleleModel(3), (np.array([85.0, 196, 341, 40]),
                                                     np.vstack([MOTH, MOTH[1] + MOTH[2]]))),
    "alleles-abo": lambda: (AlleleModel(3), (np.array([186.0, 38, 13, 284]), ABO)),
    "linkage": lambda: (GeneticLinkage(), LINKAGE_ROWS),
    "linkage-one-row": lambda: (GeneticLinkage(), LINKAGE_ONE_ROW),
}

@pytest.mark.parametrize("case", list(BUILT_IN))
def test_every_built_in_model_passes(case):
    model, data = BUILT_IN[case]()
    report = check_model(model, data)
    assert isinstance(report, CheckReport)
    expected = [c for c in ALL_CHECKS if not (c == "threads_agree" and not model.thread_safe)]
    assert report.passed == expected, str(report)
    if not model.thread_safe:
        assert report.skipped == {"threads_agree": "the model is not marked thread_safe"}


def test_torch_data():
    torch = pytest.importorskip("torch")
    pytest.importorskip("array_api_compat")
    family, data = family_data("poisson")
    data = tuple(None if a is None else torch.asarray(a) for a in data)
    report = check_model(FiniteMixtureModel(family, 2), data, n_starts=2, n_iter=10)
    assert report.passed == [c for c in ALL_CHECKS if c != "threads_agree"]


# --------------------------------------------------------------------------- the report and options
def test_report_lists_the_checks_and_prints_them():
    report = check_model(GeneticLinkage(), LINKAGE_ROWS)
    assert report.model == "GeneticLinkage"
    assert report.passed == [c for c in ALL_CHECKS if c != "threads_agree"]
    text = str(report)
    assert text.splitlines()[0] == "GeneticLinkage: 7 checks passed, 1 skipped"
    for name in ALL_CHECKS:
        assert name in text
    assert "chunk sizes 1, 2, 3" in report.notes["statistics_add_up"]


def test_subset_of_checks_and_explicit_params():
    report = check_model(GeneticLinkage(), LINKAGE_ROWS, checks=["m_step_scale_invariant", "pickle_keeps_fit"],
                         params={"p": np.array(0.3)})
    assert report.passed == ["m_step_scale_invariant", "pickle_keeps_fit"]


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown check"):
        check_model(GeneticLinkage(), LINKAGE_ROWS, checks=["statistics_add_up", "speed"])
    with pytest.raises(ValueError, match="at least 1"):
        check_model(GeneticLinkage(), LINKAGE_ROWS, n_iter=0)


def test_public_names():
    assert emkit.testing.check_model is check_model
    assert issubclass(ModelCheckError, AssertionError)


# --------------------------------------------------------------------------- broken models
class MeanPoisson(emkit.Model):
    """i.i.d. Poisson counts whose E-step returns the sample MEAN: not additive over rows."""

    param_spec = {"rate": emkit.Positive()}

    def initialize(self, data, rng):
        return {"rate": np.array(rng.uniform(1.0, 5.0))}

    def e_step(self, data, params):
        (x,), rate = data, params["rate"]
        loglik = float(np.sum(x * np.log(rate) - rate - gammaln(x + 1)))
        return {"mean": x.mean()}, loglik                       # wrong: should be {"n": len, "sum": sum}

    def m_step(self, stats, params):
        return {"rate": np.asarray(stats["mean"])}


class OverRelaxedLinkage(GeneticLinkage):
    """The linkage model with an over-relaxed update p + 2.5 (p_EM - p): not a maximiser."""

    def m_step(self, stats, params):
        p = params["p"]
        return {"p": p + 2.5 * (stats[0] / stats.sum() - p)}


class MapLinkage(GeneticLinkage):
    """A Beta(2, 2) posterior mode: the pseudo-counts do not scale with the statistics."""

    def m_step(self, stats, params):
        return {"p": np.array((stats[0] + 1.0) / (stats.sum() + 2.0))}


class OddsLinkage(GeneticLinkage):
    """Returns the odds instead of the probability: p leaves [0, 1]."""

    def m_step(self, stats, params):
        return {"p": np.array(stats[0] / stats[1])}


class InPlaceLinkage(GeneticLinkage):
    """Writes the new p into the array it was given: a fixed group moves."""

    def m_step(self, stats, params):
        p = params["p"]
        p[...] = stats[0] / stats.sum()
        return {"p": p}


class LockedLinkage(GeneticLinkage):
    """Keeps a lock, which cannot be pickled."""

    def __init__(self):
        self.lock = threading.Lock()


class RacyPoisson(MeanPoisson):
    """Claims thread_safe but keeps its chunk in an attribute that the threads share."""

    thread_safe = True

    def e_step(self, data, params):
        (x,), rate = data, params["rate"]
        self.scratch = x                                        # shared between threads
        time.sleep(0.003)
        x = self.scratch
        loglik = float(np.sum(x * np.log(rate) - rate - gammaln(x + 1)))
        return {"n": np.array(float(len(x))), "sum": x.sum()}, loglik

    def m_step(self, stats, params):
        return {"rate": np.asarray(stats["sum"] / stats["n"])}


def counts(n: int = 40):
    return (np.random.default_rng(4).poisson(3.0, n).astype(float),)


def failure(model, data, **kwargs) -> ModelCheckError:
    with pytest.raises(ModelCheckError) as info:
        check_model(model, data, **kwargs)
    return info.value


def test_non_additive_statistic_fails_statistics_add_up():
    error = failure(MeanPoisson(), counts())
    assert error.check == "statistics_add_up" and error.model == "MeanPoisson"
    message = str(error)
    assert message.startswith("MeanPoisson fails check 'statistics_add_up'")
    assert "stats['mean']" in message and "sums over rows" in message


def test_non_additive_statistic_fails_on_one_row_too():
    """One row cannot be split, but the rows stacked twice must have twice the statistics."""
    error = failure(MeanPoisson(), (np.array([4.0]),))
    assert error.check == "statistics_add_up" and "stacked twice" in str(error)


def test_m_step_that_is_not_a_maximiser_fails_loglik_never_decreases():
    error = failure(OverRelaxedLinkage(), LINKAGE_ROWS)
    assert error.check == "loglik_never_decreases" and error.model == "OverRelaxedLinkage"
    message = str(error)
    assert "decreased at iteration 1 from start 1" in message
    assert "does not maximise" in message


def test_m_step_that_overshoots_but_still_climbs_fails_m_step_maximises():
    """Over-relaxed by 1.5 the linkage EM still climbs (no decrease), but Q is not maximised."""
    class MildlyOverRelaxed(GeneticLinkage):
        def m_step(self, stats, params):
            p = params["p"]
            return {"p": p + 1.5 * (stats[0] / stats.sum() - p)}

    error = failure(MildlyOverRelaxed(), LINKAGE_ROWS)
    assert error.check == "m_step_maximises"
    assert "does not maximise" in str(error) and "'p'" in str(error)


def test_m_step_with_pseudo_counts_fails_scale_invariance():
    error = failure(MapLinkage(), LINKAGE_ROWS)
    assert error.check == "m_step_scale_invariant"
    assert "params['p']" in str(error) and "only through ratios" in str(error)


def test_invalid_parameters_fail_params_stay_valid():
    error = failure(OddsLinkage(), LINKAGE_ROWS)
    assert error.check == "params_stay_valid"
    assert "'p'" in str(error) and "UnitInterval()" in str(error)


def test_m_step_writing_into_its_params_fails_fixed_groups():
    error = failure(InPlaceLinkage(), LINKAGE_ROWS)
    assert error.check == "fixed_groups"
    assert "fixed group 'p' changed" in str(error)


class IgnoresFixed(FiniteMixtureModel):
    """A normal mixture whose M-step ignores the groups held fixed: with the means fixed, its
    variances are still the scatter about the unconstrained means."""

    def m_step(self, stats, params):
        return super().m_step(stats, params)


def test_m_step_that_ignores_fixed_groups_fails_fixed_groups():
    family, data = family_data("normal")
    error = failure(IgnoresFixed(family, 2), data)
    assert error.check == "fixed_groups"
    message = str(error)
    assert "with 'means' fixed" in message and "'variances'" in message and "`fixed` argument" in message


def test_unpicklable_model_fails_pickle_keeps_fit():
    with pytest.raises(TypeError):
        pickle.dumps(LockedLinkage())
    error = failure(LockedLinkage(), LINKAGE_ROWS)
    assert error.check == "pickle_keeps_fit" and "pickle.dumps(model) raised TypeError" in str(error)


@pytest.mark.skipif(usable_threads(2) < 2, reason="needs threadpoolctl: without it the pass uses no threads")
def test_shared_state_under_threads_fails_threads_agree():
    error = failure(RacyPoisson(), counts(64), checks=["threads_agree"])
    assert error.check == "threads_agree" and "1 thread" in str(error) and "thread_safe" in str(error)


def test_exception_in_the_model_names_the_check():
    class Crashing(GeneticLinkage):
        def m_step(self, stats, params):
            raise RuntimeError("boom")

    error = failure(Crashing(), LINKAGE_ROWS)
    assert error.check == "m_step_scale_invariant"
    assert "m_step(stats, params) raised RuntimeError: boom" in str(error)


class NoInit(GeneticLinkage):
    """A model without initialize(): check_model needs params=."""

    def initialize(self, data, rng):
        raise NotImplementedError("NoInit does not implement initialize(); pass init=")


def test_model_without_initialize_runs_from_the_given_params():
    report = check_model(NoInit(), LINKAGE_ROWS, params={"p": np.array(0.4)})
    assert report.notes["loglik_never_decreases"] == "1 start x 20 iterations"
    error = failure(NoInit(), LINKAGE_ROWS)
    assert error.check == "params_stay_valid" and "pass params=" in str(error)


def test_model_check_error_pickles():
    error = ModelCheckError("fixed_groups", "M", "moved")
    again = pickle.loads(pickle.dumps(error))
    assert (again.check, again.model, again.detail, str(again)) == ("fixed_groups", "M", "moved", str(error))
