"""Accelerated EM as reproducible as it can be (issue 12, item 4).

From the same start, SQUAREM and Anderson reach the log-likelihood of plain EM and, on
identifiable models, its parameters to the stopping tolerance, whatever the chunk size, the
thread count, the row order, or whether repeated rows are given as duplicates or as weights.
Where the optimum is a flat ridge (a non-identifiable mixture), the parameters along it are not
determined by the data; :func:`emkit.inference.flat_directions` says so with an
:class:`emkit.IdentifiabilityWarning`, and identifiable fits get no warning.

Tolerances follow from the stopping rule ``params_maxabs`` with ``tol = TOL``: plain EM stops
when its step is below TOL, i.e. within TOL * rate / (1 - rate) of the fixed point (rate: EM's
linear rate, about 1/2 or less on these well-separated mixtures), and every accelerated run
ends on a plain EM step that meets the same rule; so all fits lie within a few TOL of each
other, and their log-likelihoods (flat at the optimum) agree to rounding.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import emkit
from emkit import inference
from emkit.engine import EMMap
from emkit.models.linkage import GeneticLinkage

from contract_models import TwoPoisson

TOL = 1e-9
PARAM_ATOL = 20 * TOL        # a few stopping tolerances (see the module docstring)
METHODS = (None, "squarem", "anderson")

RNG = np.random.default_rng(0)
N = 300
POISSON_X = np.where(RNG.random(N) < 0.4, RNG.poisson(2.0, N), RNG.poisson(12.0, N)).astype(float)
GAUSS_X = np.vstack([RNG.normal(0, 1, (120, 2)), RNG.normal(3.5, 1, (180, 2))]) @ np.array([[1, .3], [0, 1]])
PERM = RNG.permutation(N)
LINKAGE_ROWS = np.array([[60.0, 8.0, 11.0, 15.0], [40.0, 6.0, 5.0, 10.0], [25.0, 4.0, 4.0, 9.0]])


def poisson(**kw):
    return emkit.PoissonMixture(2, weights_init=[.5, .5], rates_init=[1.0, 10.0], **kw)


def gaussian(covariance_type):
    precisions = {"full": [np.eye(2), np.eye(2)], "diag": [[1.0, 1.0], [1.0, 1.0]]}[covariance_type]

    def make(**kw):
        return emkit.GaussianMixture(2, covariance_type=covariance_type, weights_init=[.5, .5],
                                     means_init=[[-1.0, 0.0], [3.0, 3.0]], precisions_init=precisions,
                                     random_state=0, **kw)
    return make


ESTIMATORS = {"poisson": (poisson, POISSON_X), "gaussian-full": (gaussian("full"), GAUSS_X),
              "gaussian-diag": (gaussian("diag"), GAUSS_X)}


def vector(params: dict) -> np.ndarray:
    return np.concatenate([np.ravel(np.asarray(params[k], dtype=float)) for k in sorted(params)])


def fit_variants(make, X, accelerate):
    """The same fit under every chunk size, thread count, row order, duplicates and weights."""
    settings = dict(accelerate=accelerate, stop="params_maxabs", tol=TOL, max_iter=5000, check_monotone="raise")
    out = {}
    for chunk in (7, 64, None):
        out[f"chunk={chunk}"] = make(chunk_size=chunk, **settings).fit(X).result_
    threads = emkit.get_num_threads()
    emkit.set_num_threads(2)
    try:
        out["threads=2"] = make(chunk_size=7, **settings).fit(X).result_
    finally:
        emkit.set_num_threads(threads)
    out["permuted"] = make(**settings).fit(X[PERM]).result_
    weights = np.ones(len(X))
    weights[:50] = 3.0
    out["duplicates"] = make(**settings).fit(np.concatenate([X, X[:50], X[:50]])).result_
    out["weights"] = make(**settings).fit(X, sample_weight=weights).result_
    return out


@pytest.fixture(scope="module", params=sorted(ESTIMATORS))
def fits(request):
    make, X = ESTIMATORS[request.param]
    return {method: fit_variants(make, X, method) for method in METHODS}


@pytest.mark.parametrize("method", METHODS)
def test_same_fit_whatever_chunks_threads_order_and_weights(fits, method):
    runs = fits[method]
    assert all(r.converged for r in runs.values())
    reference = runs["chunk=64"]
    for name, r in runs.items():
        if name in ("duplicates", "weights"):
            continue
        np.testing.assert_allclose(vector(r.params), vector(reference.params), rtol=0, atol=PARAM_ATOL,
                                   err_msg=f"{method}: {name}")
        assert r.loglik == pytest.approx(reference.loglik, rel=1e-12, abs=1e-9), name
    np.testing.assert_allclose(vector(runs["duplicates"].params), vector(runs["weights"].params), rtol=0,
                               atol=PARAM_ATOL, err_msg=f"{method}: duplicates vs weights")
    assert runs["duplicates"].loglik == pytest.approx(runs["weights"].loglik, rel=1e-12, abs=1e-9)


@pytest.mark.parametrize("method", ["squarem", "anderson"])
def test_accelerated_reaches_plain_em(fits, method):
    """Same log-likelihood as plain EM, and the same parameters to the stopping tolerance."""
    for name, r in fits[method].items():
        plain = fits[None][name]
        np.testing.assert_allclose(vector(r.params), vector(plain.params), rtol=0, atol=PARAM_ATOL,
                                   err_msg=f"{method} vs plain EM: {name}")
        assert r.loglik == pytest.approx(plain.loglik, rel=1e-12, abs=1e-9), name
        assert r.n_em_evaluations < plain.n_em_evaluations + 5   # no slower than plain EM


@pytest.mark.parametrize("method", METHODS)
def test_linkage_model_whatever_chunks_order_and_duplicates(method):
    """The README's model on its counts split into rows: chunks, order, duplicated rows."""
    start = {"p": np.array(0.1)}
    settings = dict(init=start, stop="params_maxabs", tol=TOL, accelerate=method, check_monotone="raise")
    runs = [emkit.em(GeneticLinkage(), (LINKAGE_ROWS,), chunk_size=c, **settings) for c in (1, 2, None)]
    runs.append(emkit.em(GeneticLinkage(), (LINKAGE_ROWS[::-1],), **settings))
    runs.append(emkit.em(GeneticLinkage(), (np.repeat(LINKAGE_ROWS / 2, 2, axis=0),), chunk_size=3, **settings))
    plain = emkit.em(GeneticLinkage(), (LINKAGE_ROWS.sum(0, keepdims=True),), **{**settings, "accelerate": None})
    for r in runs:
        assert r.converged
        assert float(r.params["p"]) == pytest.approx(float(plain.params["p"]), abs=PARAM_ATOL)
        assert r.loglik == pytest.approx(plain.loglik, rel=1e-12)


@pytest.mark.parametrize("method", ["squarem", "anderson"])
def test_accelerated_run_ends_on_a_plain_em_step(method):
    """The last iterate is M(previous iterate), and that step met the stopping rule."""
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.poisson(2.0, 200), rng.poisson(9.0, 200)]).astype(float)
    data = (x, np.ones_like(x))
    res = emkit.em(TwoPoisson(), data, init={"weights": np.array([.5, .5]), "rates": np.array([1.0, 5.0])},
                   stop="params_maxabs", tol=1e-10, accelerate=method, keep_history=True)
    assert res.converged
    before, last = res.params_history[-2], res.params_history[-1]
    mapped, _, _ = EMMap(TwoPoisson(), data)(before)
    np.testing.assert_allclose(vector(mapped), vector(last), rtol=0, atol=1e-14)
    assert np.max(np.abs(vector(last) - vector(before))) < 1e-10


# --------------------------------------------------------------------------- flat ridges
def one_poisson(n=400, seed=1):
    return np.random.default_rng(seed).poisson(4.0, n).astype(float)


@pytest.mark.parametrize("rates_init", [[2.0, 6.0], [4.0, 4.0]], ids=["one-poisson", "identical-components"])
def test_flat_ridge_is_reported(rates_init):
    """Two components for data from one Poisson: a ridge of equally good fits; every method
    reaches the same log-likelihood, and flat_directions warns."""
    x = one_poisson()
    fits = {}
    for method in METHODS:
        for chunk in (7, None):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", emkit.ConvergenceWarning)
                fits[method, chunk] = emkit.PoissonMixture(
                    2, weights_init=[.3, .7], rates_init=rates_init, accelerate=method, chunk_size=chunk,
                    stop="params_maxabs", tol=1e-10, max_iter=100_000).fit(x)
    lls = np.array([f.loglik_ for f in fits.values()])
    # plain EM crawls along the ridge (rate near 1) and stops early, at most by its last
    # step times rate / (1 - rate); the one-Poisson log-likelihood bounds them all
    best = float(np.sum(x * np.log(x.mean()) - x.mean()) - np.sum([np.sum(np.log(np.arange(1, k + 1))) for k in x]))
    assert np.all(lls <= best + 1e-9)
    assert np.all(lls >= best - 1e-5)
    for method in ("squarem", "anderson"):
        assert fits[method, 7].loglik_ == pytest.approx(fits[method, None].loglik_, abs=1e-9)
    with pytest.warns(emkit.IdentifiabilityWarning, match="flat ridge"):
        dirs = inference.flat_directions(fits["squarem", None])
    assert dirs.shape[0] >= 1 and dirs.shape[1] == 3
    np.testing.assert_allclose(np.linalg.norm(dirs, axis=1), 1.0)


def test_flat_ridge_warns_from_the_hessian_standard_errors():
    x = one_poisson()
    est = emkit.PoissonMixture(2, weights_init=[.3, .7], rates_init=[2.0, 6.0], accelerate="squarem").fit(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # negative variances: also said
        with pytest.warns(emkit.IdentifiabilityWarning):
            cov = inference.hessian(est)
    assert cov.flat_directions.shape[0] >= 1


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_no_warning_on_identifiable_fits(name):
    make, X = ESTIMATORS[name]
    est = make(accelerate="squarem", stop="params_maxabs", tol=TOL).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", emkit.IdentifiabilityWarning)
        dirs = inference.flat_directions(est)
        cov = inference.hessian(est)
    assert dirs.shape[0] == 0 and cov.flat_directions.shape[0] == 0


def test_no_warning_on_the_linkage_model():
    res = emkit.em(GeneticLinkage(), (LINKAGE_ROWS,), stop="params_maxabs", tol=TOL)
    with warnings.catch_warnings():
        warnings.simplefilter("error", emkit.IdentifiabilityWarning)
        assert inference.flat_directions(res, data=(LINKAGE_ROWS,)).shape == (0, 1)


def test_identifiability_warning_is_exported():
    assert emkit.IdentifiabilityWarning is emkit.engine.IdentifiabilityWarning
    assert emkit.inference.IdentifiabilityWarning is emkit.IdentifiabilityWarning
    assert issubclass(emkit.IdentifiabilityWarning, UserWarning)
    assert "IdentifiabilityWarning" in emkit.__all__
