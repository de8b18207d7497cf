"""Standard errors (supplemented EM, observed information, bootstrap) checked against
closed forms, published values and observed-data likelihoods written independently here."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.optimize import minimize

import emkit
from emkit import inference
from emkit.core.data import Data

from contract_models import LINKAGE, Y_LINKAGE, Linkage, TwoPoisson

# --------------------------------------------------------------------------- models written here
class LinkageNoQ(Linkage):
    """The same model without complete_loglik (supplemented EM cannot run)."""

    complete_loglik = emkit.Model.complete_loglik


def poisson_mixture_loglik(free, x, w):
    """Observed log-likelihood of a 2-Poisson mixture in (weight_0, rate_0, rate_1), written
    independently of emkit (log-sum-exp by hand)."""
    from scipy.special import gammaln
    a, r0, r1 = free
    l0 = np.log(a) + x * np.log(r0) - r0 - gammaln(x + 1)
    l1 = np.log(1 - a) + x * np.log(r1) - r1 - gammaln(x + 1)
    m = np.maximum(l0, l1)
    return float(w @ (m + np.log(np.exp(l0 - m) + np.exp(l1 - m))))


def numerical_hessian(fun, x, rel=1e-4):
    """Central-difference Hessian, written here independently of emkit."""
    x = np.asarray(x, dtype=float)
    h = rel * np.maximum(np.abs(x), 1e-3)
    q = len(x)
    out = np.zeros((q, q))
    for i in range(q):
        for j in range(q):
            ei, ej = np.eye(q)[i] * h[i], np.eye(q)[j] * h[j]
            out[i, j] = (fun(x + ei + ej) - fun(x + ei - ej) - fun(x - ei + ej) + fun(x - ei - ej)) / (4 * h[i] * h[j])
    return 0.5 * (out + out.T)


# --------------------------------------------------------------------------- DLR linkage
def linkage_closed_forms():
    y1, y2, y3, y4 = Y_LINKAGE
    p = (15 + np.sqrt(15**2 + 4 * 197 * 68)) / (2 * 197)           # root of 197p^2 - 15p - 68
    i_obs = y1 / (2 + p) ** 2 + (y2 + y3) / (1 - p) ** 2 + y4 / p**2
    hidden = y1 * p / (2 + p)
    i_oc = (hidden + y4) / p**2 + (y2 + y3) / (1 - p) ** 2
    return p, i_obs, i_oc


def test_linkage_sem_matches_closed_form_and_published_rate():
    p_hat, i_obs, i_oc = linkage_closed_forms()
    fit = emkit.em(Linkage(), LINKAGE, init={"p": np.array(0.5)}, tol=1e-6, stop="params_maxabs")
    res = inference.sem(fit, LINKAGE)
    # Meng & Rubin (1991) / DLR (1977): EM's rate at the MLE is 0.1328
    assert res.fraction_missing_information == pytest.approx(0.1328, abs=5e-5)
    assert res.fraction_missing_information == pytest.approx(1 - i_obs / i_oc, rel=1e-6)
    assert res.rate_of_convergence == res.fraction_missing_information
    assert res.complete_information[0, 0] == pytest.approx(i_oc, rel=1e-6)
    assert res.params["p"] == pytest.approx(p_hat, abs=1e-10)          # refined from tol=1e-6
    assert res.standard_errors["p"] == pytest.approx(1 / np.sqrt(i_obs), rel=1e-6)
    assert res.standard_errors["p"] == pytest.approx(0.0515, abs=5e-5)
    assert res.labels == ["p"] and res.matrix.shape == (1, 1)
    # the three spellings of the call agree
    by_model = inference.sem(Linkage(), LINKAGE, fit)
    by_params = inference.standard_errors(Linkage(), LINKAGE, {"p": np.array(p_hat)}, method="sem")
    assert by_model.standard_errors["p"] == pytest.approx(res.standard_errors["p"], rel=1e-9)
    assert by_params["p"] == pytest.approx(res.standard_errors["p"], rel=1e-6)


def test_linkage_hessian_matches_closed_form():
    p_hat, i_obs, _ = linkage_closed_forms()
    fit = emkit.em(Linkage(), LINKAGE, init={"p": np.array(0.5)}, tol=1e-12, stop="params_maxabs")
    res = inference.covariance(fit, LINKAGE, method="hessian")
    assert res.observed_information[0, 0] == pytest.approx(i_obs, rel=1e-6)
    assert res.matrix[0, 0] == pytest.approx(1 / i_obs, rel=1e-6)
    assert res.fraction_missing_information is None


# --------------------------------------------------------------------------- peppered moth
MOTH = {"carbonaria": 85, "insularia": 196, "typica": 341}
MOTH_NAMES = {"C": "carbonaria", "I": "insularia", "T": "typica"}


def moth_information(pc, pi, n=(85, 196, 341)):
    """Observed information of the phenotype multinomial in (pC, pI), analytic.

    P_C = 2pC - pC^2, P_I = 2pI - 2pI pC - pI^2, P_T = (1 - pC - pI)^2."""
    pt = 1 - pc - pi
    probs = [2 * pc - pc**2, 2 * pi - 2 * pi * pc - pi**2, pt**2]
    grads = [np.array([2 - 2 * pc, 0.0]), np.array([-2 * pi, 2 - 2 * pc - 2 * pi]), np.array([-2 * pt, -2 * pt])]
    hess = [np.array([[-2.0, 0], [0, 0]]), np.array([[0, -2.0], [-2, -2]]), np.array([[2.0, 2], [2, 2]])]
    info = np.zeros((2, 2))
    for k, P, g, H in zip(n, probs, grads, hess):
        info -= k * (H / P - np.outer(g, g) / P**2)
    return info


def moth_mle():
    """MLE of (pC, pI) by scipy maximisation of the phenotype log-likelihood."""
    n = np.array([85.0, 196.0, 341.0])

    def negll(v):
        pc, pi = v
        pt = 1 - pc - pi
        return -float(n @ np.log([2 * pc - pc**2, 2 * pi - 2 * pi * pc - pi**2, pt**2]))
    out = minimize(negll, [0.1, 0.2], method="Nelder-Mead", options={"xatol": 1e-12, "fatol": 1e-14, "maxiter": 5000})
    return out.x


@pytest.fixture(scope="module")
def moth():
    return emkit.AlleleFrequencies.from_dominance("C>I>T", names=MOTH_NAMES).fit(MOTH)


def test_moth_sem_equals_inverse_observed_information(moth):
    pc, pi = moth_mle()
    assert moth.frequencies_["C"] == pytest.approx(pc, abs=1e-6)
    assert moth.frequencies_["I"] == pytest.approx(pi, abs=1e-6)
    cov2 = np.linalg.inv(moth_information(pc, pi))
    a = np.array([-1.0, -1.0])                                        # pT = 1 - pC - pI
    expected = np.sqrt([cov2[0, 0], cov2[1, 1], a @ cov2 @ a])
    se = moth.standard_errors("sem")["frequencies"]
    np.testing.assert_allclose(se, expected, rtol=1e-3)
    hes = moth.standard_errors("hessian")["frequencies"]
    np.testing.assert_allclose(hes, expected, rtol=1e-3)
    res = moth.covariance("sem")
    assert res.labels == ["frequencies[0]", "frequencies[1]", "frequencies[2]"]
    assert res.matrix[0, 1] == pytest.approx(cov2[0, 1], rel=1e-3)
    # the rows of a simplex's covariance sum to zero (the frequencies sum to one)
    np.testing.assert_allclose(res.matrix.sum(axis=1), 0.0, atol=1e-12)
    assert 0 < res.fraction_missing_information < 1


def test_moth_with_coarse_group_has_more_missing_information(moth):
    """Givens & Hoeting's exercise: 578 more moths known only to be insularia or typica."""
    phenotypes = {"carbonaria": ["CC", "CI", "CT"], "insularia": ["II", "IT"], "typica": ["TT"],
                  "insularia or typica": ["II", "IT", "TT"]}
    coarse = emkit.AlleleFrequencies(["C", "I", "T"], phenotypes).fit({**MOTH, "insularia or typica": 578})
    plain = moth.covariance("sem").fraction_missing_information
    more = coarse.covariance("sem")
    assert more.fraction_missing_information > plain + 0.1
    # and its SEM covariance is still the inverse observed information, computed here:
    # the coarse group adds 578 * log(P_I + P_T) = 578 * log((1 - pC)^2)
    pc, pi, _ = (coarse.frequencies_[a] for a in "CIT")
    info = moth_information(pc, pi) + 578 * np.array([[2 / (1 - pc) ** 2, 0], [0, 0]])
    cov2 = np.linalg.inv(info)
    se = coarse.standard_errors("sem")["frequencies"]
    np.testing.assert_allclose(se[:2], np.sqrt(np.diag(cov2)), rtol=1e-3)


# --------------------------------------------------------------------------- ABO blood groups
def abo_free_loglik(v, n):
    pa, pb = v
    po = 1 - pa - pb
    return float(n @ np.log([pa**2 + 2 * pa * po, pb**2 + 2 * pb * po, 2 * pa * pb, po**2]))


def test_abo_sem_and_hessian_equal_independent_observed_information():
    counts = emkit.datasets.load_abo()
    n = np.array([counts[k] for k in ("A", "B", "AB", "O")], dtype=float)
    est = emkit.AlleleFrequencies.abo().fit(counts)
    out = minimize(lambda v: -abo_free_loglik(v, n), [0.3, 0.1], method="Nelder-Mead",
                   options={"xatol": 1e-12, "fatol": 1e-14, "maxiter": 5000})
    np.testing.assert_allclose([est.frequencies_["A"], est.frequencies_["B"]], out.x, atol=1e-6)
    cov2 = np.linalg.inv(-numerical_hessian(lambda v: abo_free_loglik(v, n), out.x))
    a = np.array([-1.0, -1.0])
    expected = np.sqrt([cov2[0, 0], cov2[1, 1], a @ cov2 @ a])
    np.testing.assert_allclose(est.standard_errors("sem")["frequencies"], expected, rtol=1e-3)
    np.testing.assert_allclose(est.standard_errors("hessian")["frequencies"], expected, rtol=1e-3)


# --------------------------------------------------------------------------- mixtures
def hasselblad():
    d = emkit.datasets.load_hasselblad_deaths()
    return d["deaths"].astype(float), d["freq"].astype(float)


def test_two_poisson_sem_matches_independent_hessian_despite_slow_em():
    """Hasselblad's data: EM's rate is ~0.996, so I - J is nearly singular; SEM must still
    agree with the inverse observed information."""
    x, w = hasselblad()
    fit = emkit.em(TwoPoisson(), (x, w), init={"weights": np.array([0.3, 0.7]), "rates": np.array([1.0, 2.5])},
                   accelerate="squarem", stop="params_maxabs", tol=1e-10, max_iter=1000)
    res = inference.sem(fit, (x, w))
    assert res.fraction_missing_information == pytest.approx(0.9957, abs=1e-3)
    v = np.array([fit.params["weights"][0], *fit.params["rates"]])
    cov = np.linalg.inv(-numerical_hessian(lambda u: poisson_mixture_loglik(u, x, w), v))
    expected = np.sqrt([cov[0, 0], cov[0, 0], cov[1, 1], cov[2, 2]])
    got = np.concatenate([res.standard_errors["weights"], res.standard_errors["rates"]])
    np.testing.assert_allclose(got, expected, rtol=2e-3)
    np.testing.assert_allclose(res.free_matrix, cov, rtol=5e-3)


def test_poisson_mixture_estimator_sem_equals_hessian():
    x, w = hasselblad()
    est = emkit.PoissonMixture(2, weights_init=[0.3, 0.7], rates_init=[1.0, 2.5], stop="params_maxabs",
                               tol=1e-9, accelerate="squarem").fit(x, sample_weight=w)
    se_sem = est.standard_errors("sem")
    se_hes = est.standard_errors("hessian")
    assert set(se_sem) == {"weights", "rates"} and se_sem["rates"].shape == (2,)
    for group in se_sem:
        np.testing.assert_allclose(se_sem[group], se_hes[group], rtol=2e-3)


def test_fixed_groups_get_zero_standard_errors():
    """Two coins with the mixing weights held at 1/2: SEs of the probs only, by the
    observed information of the two-coin likelihood computed here."""
    heads = np.array([5.0, 9, 8, 4, 7])
    est = emkit.BinomialMixture(2, probs_init=[0.6, 0.5], weights_init=[0.5, 0.5], fixed=["weights"],
                                tol=1e-12, stop="params_maxabs").fit(heads, trials=10)
    res = est.covariance("sem")
    assert np.all(res.standard_errors["weights"] == 0)
    assert res.standard_errors["weights"].shape == (2,)
    assert res.labels == ["probs[0]", "probs[1]"]

    def loglik(v):
        a, b = v
        la = heads * np.log(a) + (10 - heads) * np.log(1 - a)
        lb = heads * np.log(b) + (10 - heads) * np.log(1 - b)
        return float(np.sum(np.log(0.5 * np.exp(la) + 0.5 * np.exp(lb))))
    cov = np.linalg.inv(-numerical_hessian(loglik, np.ravel(est.probs_)))
    np.testing.assert_allclose(np.ravel(res.standard_errors["probs"]), np.sqrt(np.diag(cov)), rtol=1e-3)


# --------------------------------------------------------------------------- bootstrap
def test_moth_bootstrap_resamples_individuals_and_agrees_with_sem(moth):
    """Non-parametric bootstrap of 622 moths (multinomial on the phenotype counts).
    The relative Monte Carlo error of a bootstrap SD from B replicates is ~1/sqrt(2(B-1))
    (4.1% for B=300); the test allows 4 of those (plus O(1/n) bias: 1%)."""
    calls = []
    res = moth.covariance("bootstrap", n_boot=300, random_state=1, progress=lambda i, n: calls.append((i, n)))
    assert calls[0] == (1, 300) and calls[-1] == (300, 300) and len(calls) == 300
    assert res.replicates.shape == (300, 3) and res.n_failed == 0
    # every replicate keeps 622 moths: the frequencies still sum to one
    np.testing.assert_allclose(res.replicates.sum(axis=1), 1.0, atol=1e-9)
    sem_se = moth.standard_errors("sem")["frequencies"]
    np.testing.assert_allclose(res.standard_errors["frequencies"], sem_se, rtol=4 / np.sqrt(2 * 299) + 0.01)
    again = moth.standard_errors("bootstrap", n_boot=300, random_state=1)
    np.testing.assert_array_equal(again["frequencies"], res.standard_errors["frequencies"])


def test_parametric_bootstrap_agrees_with_sem_on_simulated_mixture():
    rng = np.random.default_rng(7)
    z = rng.random(600) < 0.4
    raw = np.where(z, rng.poisson(1.0, 600), rng.poisson(6.0, 600)).astype(float)
    x, w = np.unique(raw, return_counts=True)
    data = Data(("X", "sample_weight"), (x, w.astype(float)))   # the counts, found by name
    fit = emkit.em(TwoPoisson(), data, stop="params_maxabs", tol=1e-9, accelerate="squarem", max_iter=500)
    sem_se = inference.sem(fit, data).standard_errors
    boot = inference.bootstrap(fit, data, kind="parametric", n_boot=200, random_state=3)
    tol = 4 / np.sqrt(2 * 199) + 0.05      # Monte Carlo error, plus finite-sample bias at n=600
    for group in ("weights", "rates"):
        np.testing.assert_allclose(boot.standard_errors[group], sem_se[group], rtol=tol)
    rows = inference.bootstrap(fit, data, kind="nonparametric", n_boot=200, random_state=3)
    for group in ("weights", "rates"):
        np.testing.assert_allclose(rows.standard_errors[group], sem_se[group], rtol=tol)


def test_row_bootstrap_of_unweighted_rows():
    """Plain row resampling on a BinomialMixture (no weights): bootstrap SE of the
    probs near the SEM ones (Monte Carlo tolerance as above, plus 10% small-sample bias)."""
    rng = np.random.default_rng(11)
    z = rng.random(300) < 0.5
    heads = np.where(z, rng.binomial(20, 0.2, 300), rng.binomial(20, 0.7, 300)).astype(float)
    est = emkit.BinomialMixture(2, probs_init=[0.3, 0.6], weights_init=[0.5, 0.5], tol=1e-10,
                                stop="params_maxabs").fit(heads, trials=20)
    sem_se = est.standard_errors("sem")
    boot = est.standard_errors("bootstrap", n_boot=150, random_state=0)
    np.testing.assert_allclose(np.ravel(boot["probs"]), np.ravel(sem_se["probs"]), rtol=4 / np.sqrt(298) + 0.1)


# --------------------------------------------------------------------------- errors
def test_clear_errors():
    fit = emkit.em(Linkage(), LINKAGE, init={"p": np.array(0.5)}, tol=1e-10, stop="params_maxabs")
    with pytest.raises(ValueError, match="unknown standard-error method"):
        inference.covariance(fit, LINKAGE, method="jackknife")
    with pytest.raises(ValueError, match="does not keep its data"):
        inference.sem(fit)
    with pytest.raises(ValueError, match="pass its data and the fitted result"):
        inference.sem(Linkage(), LINKAGE)
    with pytest.raises(ValueError, match="complete-data log-likelihood"):
        inference.sem(LinkageNoQ(), LINKAGE, fit)
    with pytest.raises(ValueError, match="single row"):
        inference.bootstrap(fit, LINKAGE, n_boot=10)
    with pytest.raises(ValueError, match="needs model.sample"):
        inference.bootstrap(fit, LINKAGE, kind="parametric", n_boot=10)
    with pytest.raises(ValueError, match="unknown bootstrap kind"):
        inference.bootstrap(fit, LINKAGE, kind="jackknife")
    with pytest.raises(ValueError, match="n_boot must be an integer"):
        inference.bootstrap(fit, LINKAGE, n_boot=1)
    with pytest.raises(ValueError, match="lack group"):
        inference.sem(Linkage(), LINKAGE, {"q": 0.5})
    with pytest.raises(ValueError, match="unknown parameter group"):
        inference.sem(fit, LINKAGE, fixed=["q"])
    with pytest.raises(ValueError, match="expected a fitted estimator"):
        inference.sem(42)
    with pytest.raises(ValueError, match="not fitted yet"):
        inference.sem(emkit.PoissonMixture(2))


def test_boundary_fit_raises_clear_error():
    """All animals in the first cell drive p to 1, the edge of [0, 1]: no standard errors."""
    data = (np.array([[10.0, 0.0, 0.0, 5.0]]),)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(divide="ignore", invalid="ignore"):
            with pytest.raises(ValueError, match="boundary"):
                inference.sem(Linkage(), data, {"p": np.array(1.0)})


def test_multivariate_normal_sem_matches_observed_information():
    """Old Faithful, two bivariate normals: SEM (EM map + complete-data information, covariances
    by their lower triangle) against the numerical observed information of the mixture
    likelihood; both through the delta method to all 14 entries."""
    X = emkit.datasets.load_faithful()
    est = emkit.MultivariateNormalMixture(2, random_state=0, stop="params_maxabs", tol=1e-9).fit(X)
    sem_res, hes_res = est.covariance("sem"), est.covariance("hessian")
    assert len(sem_res.labels) == 14 and sem_res.labels[7] == "covariances[0,0,1]"
    scale = np.sqrt(np.outer(np.diag(hes_res.matrix), np.diag(hes_res.matrix)))
    assert np.max(np.abs(sem_res.matrix - hes_res.matrix) / scale) < 1e-3
    cov_se = sem_res.standard_errors["covariances"]
    np.testing.assert_allclose(cov_se[:, 0, 1], cov_se[:, 1, 0], rtol=1e-12)   # symmetric entries
    assert 0 < sem_res.fraction_missing_information < 1


def test_torch_data_gives_the_same_standard_errors():
    torch = pytest.importorskip("torch")
    x = emkit.datasets.load_faithful()[:, 1]
    settings = dict(random_state=0, stop="params_maxabs", tol=1e-9)
    a = emkit.NormalMixture(2, **settings).fit(x).standard_errors("sem")
    b = emkit.NormalMixture(2, **settings).fit(torch.tensor(x)).standard_errors("sem")
    for group in a:
        np.testing.assert_allclose(b[group], a[group], rtol=1e-5)


def test_hessian_via_the_score_agrees():
    """Fisher's identity route (differences of the gradient of Q) gives the same information."""
    p_hat, i_obs, _ = linkage_closed_forms()
    res = inference.hessian(Linkage(), LINKAGE, {"p": np.array(p_hat)}, via="score")
    assert res.observed_information[0, 0] == pytest.approx(i_obs, rel=1e-6)
    moth = emkit.AlleleFrequencies.from_dominance("C>I>T", names=MOTH_NAMES).fit(MOTH)
    a = inference.covariance(moth, method="hessian", via="score").matrix
    b = inference.covariance(moth, method="hessian", via="loglik").matrix
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-12)
    with pytest.raises(ValueError, match="via must be"):
        inference.hessian(moth, via="magic")


class LinkageAnalytic(Linkage):
    """Linkage with the optional analytic information hooks (over all parameter entries)."""

    calls = 0

    def complete_information(self, stats, params):
        LinkageAnalytic.calls += 1
        p = float(params["p"])
        return np.array([[stats[0] / p**2 + stats[1] / (1 - p) ** 2]])

    def observed_information(self, data, params):
        LinkageAnalytic.calls += 1
        p = float(params["p"])
        y1, y2, y3, y4 = data[0][0]
        return np.array([[y1 / (2 + p) ** 2 + (y2 + y3) / (1 - p) ** 2 + y4 / p**2]])


def test_analytic_information_hooks_are_used():
    p_hat, i_obs, i_oc = linkage_closed_forms()
    LinkageAnalytic.calls = 0
    res = inference.sem(LinkageAnalytic(), LINKAGE, {"p": np.array(p_hat)})
    assert LinkageAnalytic.calls == 1
    assert res.complete_information[0, 0] == pytest.approx(i_oc, rel=1e-12)
    assert res.standard_errors["p"] == pytest.approx(1 / np.sqrt(i_obs), rel=1e-6)
    hes = inference.hessian(LinkageAnalytic(), LINKAGE, {"p": np.array(p_hat)})
    assert LinkageAnalytic.calls == 2
    assert hes.observed_information[0, 0] == pytest.approx(i_obs, rel=1e-12)

    class WrongShape(Linkage):
        def complete_information(self, stats, params):
            return np.eye(2)
    with pytest.raises(ValueError, match=r"must be \(1, 1\)"):
        inference.sem(WrongShape(), LINKAGE, {"p": np.array(p_hat)})


def test_grouped_counts_bootstrap_resamples_individuals():
    """Hasselblad's 1,096 days as 10 (deaths, days) rows. Resampling individuals agrees with SEM
    within the bootstrap's Monte Carlo error (4 / sqrt(2 (B - 1)) relative, B = 150) plus 10% for
    the skewness of this weakly identified fit. PoissonMixture declares whole-number weights as
    counts, so "auto" does the same; a model that does not gets a warning."""
    x, w = hasselblad()
    est = emkit.PoissonMixture(2, weights_init=[0.3, 0.7], rates_init=[1.0, 2.5], stop="params_maxabs",
                               tol=1e-9, accelerate="squarem").fit(x, sample_weight=w)
    sem_se = est.standard_errors("sem")
    boot = est.covariance("bootstrap", n_boot=150, random_state=0, resample="individuals")
    np.testing.assert_allclose(boot.replicates[:, :2].sum(axis=1), 1.0, atol=1e-9)
    for group in ("weights", "rates"):
        np.testing.assert_allclose(boot.standard_errors[group], sem_se[group], rtol=4 / np.sqrt(298) + 0.1)
    auto = est.standard_errors("bootstrap", n_boot=150, random_state=0)
    np.testing.assert_array_equal(auto["rates"], boot.standard_errors["rates"])

    class RowsOnly(TwoPoisson):
        row_counts_are_integers = False
    fit = emkit.em(RowsOnly(), (x, w), init=est.params_, stop="params_maxabs", tol=1e-9, accelerate="squarem")
    with pytest.warns(UserWarning, match="resample='individuals'"):
        inference.bootstrap(fit, (x, w), n_boot=2, random_state=0)
    with pytest.raises(ValueError, match="resample must be"):
        est.standard_errors("bootstrap", resample="blocks")
    with pytest.raises(ValueError, match="whole-number"):
        inference.bootstrap(est.result_, (x, w + 0.5), resample="individuals", n_boot=2)


def test_hard_em_fit_gets_the_mle_standard_errors_with_a_warning():
    heads = np.array([5.0, 9, 8, 4, 7])
    hard = emkit.BinomialMixture(2, probs_init=[0.6, 0.5], weights_init=[0.5, 0.5], fixed=["weights"],
                                 algorithm="hard").fit(heads, trials=10)
    soft = emkit.BinomialMixture(2, probs_init=[0.6, 0.5], weights_init=[0.5, 0.5], fixed=["weights"],
                                 tol=1e-12, stop="params_maxabs").fit(heads, trials=10)
    with pytest.warns(UserWarning, match="hard EM"):
        res = hard.covariance("sem")
    np.testing.assert_allclose(np.ravel(res.params["probs"]), np.ravel(soft.probs_), atol=1e-8)
    np.testing.assert_allclose(np.ravel(res.standard_errors["probs"]),
                               np.ravel(soft.standard_errors("sem")["probs"]), rtol=1e-6)
