"""emkit.GaussianMixture against scikit-learn's GaussianMixture (scikit-learn is test-only)."""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pytest

sklearn_mixture = pytest.importorskip("sklearn.mixture")
from sklearn.exceptions import ConvergenceWarning as SkConvergenceWarning  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import emkit  # noqa: E402

TYPES = ("full", "tied", "diag", "spherical")


def _three_blobs(n=300, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0, 0.0], [4.0, 1.0, -2.0], [-3.0, 5.0, 2.0]])
    covs = [np.eye(3), [[2.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 0.5]], np.diag([0.5, 2.0, 1.0])]
    labels = rng.integers(0, 3, n)
    x = np.stack([rng.multivariate_normal(centres[k], covs[k]) for k in labels])
    return x + 100.0  # far from the origin: the centring must keep the M-step exact


def _precisions_init(cov_type, k, d, rng):
    a = rng.normal(size=(k, d, d))
    full = np.einsum("kij,klj->kil", a, a) + d * np.eye(d)
    return {"full": full, "tied": full[0], "diag": np.abs(rng.normal(size=(k, d))) + 0.5,
            "spherical": np.abs(rng.normal(size=k)) + 0.5}[cov_type]


def _rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize("cov_type", TYPES)
@pytest.mark.parametrize("n_iter", [1, 10, 100])
def test_same_parameters_as_sklearn_from_same_start(cov_type, n_iter):
    x = _three_blobs()
    rng = np.random.default_rng(1)
    k, d = 3, x.shape[1]
    init = dict(weights_init=np.array([0.2, 0.3, 0.5]), means_init=x[rng.choice(len(x), k, replace=False)],
                precisions_init=_precisions_init(cov_type, k, d, rng) / 4.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkConvergenceWarning)
        ref = sklearn_mixture.GaussianMixture(k, covariance_type=cov_type, tol=0, max_iter=n_iter, **init).fit(x)
    ours = emkit.GaussianMixture(k, covariance_type=cov_type, tol=0, max_iter=n_iter, **init).fit(x)
    assert ours.n_iter_ == n_iter
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        assert _rel(getattr(ours, name), getattr(ref, name)) <= 1e-8, name
    # scikit-learn's lower_bound_ is the mean log-likelihood before its last M-step; ours is at
    # the returned parameters, which is what score() gives for both
    assert ours.lower_bound_ == pytest.approx(ref.score(x), rel=1e-10)
    assert np.allclose(ours.score_samples(x), ref.score_samples(x), rtol=1e-9, atol=1e-9)
    assert np.allclose(ours.predict_proba(x), ref.predict_proba(x), atol=1e-9)
    assert ours.bic(x) == pytest.approx(ref.bic(x), rel=1e-10)
    assert ours.aic(x) == pytest.approx(ref.aic(x), rel=1e-10)
    # ICL: the BIC plus twice each row's classification cost -log max_k p(k | x)
    cost = -np.log(ref.predict_proba(x).max(axis=1)).sum()
    assert ours.icl(x) == pytest.approx(ref.bic(x) + 2 * cost, rel=1e-10)
    crit = ours.criteria(x)
    assert crit["loglik"] == pytest.approx(ref.score(x) * len(x), rel=1e-10)
    assert (crit["bic"], crit["aic"]) == (ours.bic(x), ours.aic(x))


@pytest.mark.parametrize("cov_type", TYPES)
@pytest.mark.parametrize("k", [2, 3])
def test_faithful_best_of_20_at_least_sklearns(cov_type, k):
    x = emkit.datasets.load_faithful()
    # Same stopping tolerance for both, tight enough that the comparison is about which mode the
    # restarts find, not about where each stopping rule happens to stop (emkit's rule checks
    # the log-likelihood at the new parameters, so at tol=1e-3 it stops one iteration earlier).
    opts = dict(covariance_type=cov_type, n_init=20, random_state=0, tol=1e-7, max_iter=2000)
    ref = sklearn_mixture.GaussianMixture(k, **opts).fit(x)
    ours = emkit.GaussianMixture(k, **opts).fit(x)
    ref_ll = ref.score(x)  # mean log-likelihood of scikit-learn's returned parameters
    assert ours.lower_bound_ >= ref_ll - 1e-6 * abs(ref_ll)
    assert ours.lower_bound_ == pytest.approx(ours.score(x), rel=1e-12)


def _expected_failed_checks(estimator):
    failures = {}
    if estimator.covariance_type in MCLUST_ONLY or estimator.prior is not None:
        # the check shuffles the weighted rows and repeats the others in order; emkit's k-means
        # start depends on the order of the rows, and on its data (30 features, 12 distinct
        # rows, two components) these forms reach different modes from the two starts. From
        # one start the weighted and the repeated fits agree (test_weights_equal_repeated_rows).
        failures["check_sample_weight_equivalence_on_dense_data"] = "the k-means start depends on the row order"
    if estimator.prior is not None:
        failures["check_n_features_in_after_fitting"] = "partial_fit (online EM) refuses a prior"
        failures["check_fit_score_takes_y"] = "partial_fit (online EM) refuses a prior"
    if estimator.covariance_type in ("EEI", "VEI") and estimator.prior is None:  # the same mode from both starts
        failures.pop("check_sample_weight_equivalence_on_dense_data", None)
    if importlib.util.find_spec("emkit.online") is None:
        # partial_fit delegates to emkit.online (another module of the package); until that
        # module exists the call raises ModuleNotFoundError.
        failures["check_fit_score_takes_y"] = "emkit.online (partial_fit) is not available yet"
        failures["check_n_features_in_after_fitting"] = "its partial_fit part needs emkit.online"
    return failures


def test_weights_equal_repeated_rows():
    """What check_sample_weight_equivalence_on_dense_data asks, from one start: every mclust
    form and the prior, on that check's data."""
    rng = np.random.RandomState(42)
    x = rng.rand(15, 6)
    sw = rng.randint(0, 5, size=15)
    for name, prior in [(n, None) for n in MCLUST_ONLY] + [(n, "default") for n in PRIOR_CHECKED]:
        start = emkit.GaussianMixture(2, covariance_type=name, random_state=0, max_iter=1, tol=0).fit(x)
        init = {"weights_init": start.weights_, "means_init": start.means_, "covariances_init": start.covariances_}
        kwargs = dict(covariance_type=name, prior=prior, max_iter=20, tol=0, **init)
        weighted = emkit.GaussianMixture(2, **kwargs).fit(x, sample_weight=sw)
        repeated = emkit.GaussianMixture(2, **kwargs).fit(x.repeat(sw, axis=0))
        np.testing.assert_allclose(weighted.predict_proba(x), repeated.predict_proba(x), atol=1e-7, err_msg=name)


#: mclust's forms that are not scikit-learn's four (those run above), and one with the conjugate
#: prior, each from k-means starts
MCLUST_ONLY = ("EII", "EEI", "VEI", "EVI", "EEV", "VEV", "EVV", "VEE", "EVE", "VVE")
#: forms checked with the conjugate prior (the prior's own code is shared by all: one ellipsoidal
#: form, and the three of mclust's forms that are not scikit-learn's)
PRIOR_CHECKED = ("EEE", "VEI", "EVI", "VEV")


@parametrize_with_checks([emkit.GaussianMixture(n_components=1, random_state=0, max_iter=20),
                          emkit.GaussianMixture(n_components=2, covariance_type="diag", random_state=0,
                                                max_iter=20)]
                         + [emkit.GaussianMixture(n_components=2, covariance_type=name, random_state=0,
                                                  max_iter=20) for name in MCLUST_ONLY]
                         + [emkit.GaussianMixture(n_components=2, covariance_type=name, prior="default",
                                                  max_iter=20) for name in PRIOR_CHECKED],
                         expected_failed_checks=_expected_failed_checks)
def test_sklearn_check_estimator(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(estimator)
