"""AlleleFrequencies: peppered moth (seed 002, Givens & Hoeting Example 4.2), the moth with an
'insularia or typica' group, ABO blood groups; each checked against the maximiser of the
observed multinomial likelihood found here by scipy.optimize."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

import emkit
from emkit.datasets import load_abo, load_peppered_moth
from emkit.models.alleles import AlleleModel

MOTH_NAMES = {"C": "carbonaria", "I": "insularia", "T": "typica"}


def direct_mle(phenotype_probs, counts):
    """Maximise sum_r n_r log P_r(p) over the simplex (softmax coordinates, Nelder-Mead then BFGS)."""
    names = list(counts)
    n = np.array([counts[k] for k in names], dtype=float)

    def negll(z):
        p = np.exp(np.append(z, 0.0))
        p /= p.sum()
        probs = phenotype_probs(p)
        return -float(np.dot(n, np.log([probs[k] for k in names])))

    first = minimize(negll, np.zeros(2), method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12})
    best = minimize(negll, first.x, method="BFGS", options={"gtol": 1e-9})
    p = np.exp(np.append(best.x, 0.0))
    return p / p.sum(), -best.fun


def moth_probs(p):
    c, i, t = p
    insularia, typica = i * i + 2 * i * t, t * t
    return {"carbonaria": c * c + 2 * c * i + 2 * c * t, "insularia": insularia, "typica": typica,
            "insularia or typica": insularia + typica}


def abo_probs(p):
    a, b, o = p
    return {"A": a * a + 2 * a * o, "B": b * b + 2 * b * o, "AB": 2 * a * b, "O": o * o}


def moth():
    return emkit.AlleleFrequencies.from_dominance("C>I>T", names=MOTH_NAMES)


def test_dominance_tables():
    assert moth().phenotypes == {"carbonaria": ["CC", "CI", "CT"], "insularia": ["II", "IT"], "typica": ["TT"]}
    assert emkit.AlleleFrequencies.abo().phenotypes == {"A": ["AA", "AO"], "AB": ["AB"], "B": ["BB", "BO"],
                                                        "O": ["OO"]}
    multi = emkit.AlleleFrequencies.from_dominance("A1=A2>O")
    assert multi.alleles == ["A1", "A2", "O"]
    assert multi.phenotypes["A1A2"] == [["A1", "A2"]]


def test_peppered_moth_matches_published_mle_and_direct_maximiser():
    counts = load_peppered_moth()
    est = moth().fit(counts)
    p = np.array([est.frequencies_[a] for a in "CIT"])
    np.testing.assert_allclose(p, [0.07084, 0.18874, 0.74043], atol=5e-6)  # Givens & Hoeting
    expected, best_ll = direct_mle(moth_probs, counts)
    np.testing.assert_allclose(p, expected, atol=1e-7)
    assert est.loglik_ == pytest.approx(best_ll, abs=1e-8)
    np.testing.assert_allclose(est.params_["frequencies"], p)
    # expected genotype counts: the phenotype totals are kept, TT is typica itself
    g = est.genotype_counts_
    assert g["CC"] + g["CI"] + g["CT"] == pytest.approx(85)
    assert g["II"] + g["IT"] == pytest.approx(196)
    assert g["TT"] == pytest.approx(341)
    assert np.all(np.diff(est.loglik_trace_) >= -1e-10)


def test_first_iteration_is_the_gene_counting_update_by_hand():
    counts = load_peppered_moth()
    est = moth().set_params(max_iter=1, tol=0).fit(counts)
    c = i = t = 1 / 3
    n_c, n_i, n_t = counts["carbonaria"], counts["insularia"], counts["typica"]
    carb = c * c + 2 * c * i + 2 * c * t
    n_cc, n_ci, n_ct = n_c * c * c / carb, n_c * 2 * c * i / carb, n_c * 2 * c * t / carb
    n_ii, n_it = n_i * i * i / (i * i + 2 * i * t), n_i * 2 * i * t / (i * i + 2 * i * t)
    total = 2 * (n_c + n_i + n_t)
    p_c = (2 * n_cc + n_ci + n_ct) / total
    p_i = (2 * n_ii + n_it + n_ci) / total
    assert est.frequencies_["C"] == pytest.approx(p_c, rel=1e-13)
    assert est.frequencies_["I"] == pytest.approx(p_i, rel=1e-13)


def test_insularia_or_typica_group_reaches_the_direct_maximiser():
    base = moth().phenotypes
    phenotypes = dict(base, **{"insularia or typica": base["insularia"] + base["typica"]})
    # Givens & Hoeting's exercise: 578 more moths known only to be insularia or typica
    counts = dict(load_peppered_moth(), **{"insularia or typica": 578})
    est = emkit.AlleleFrequencies(["C", "I", "T"], phenotypes).fit(counts)
    p = np.array([est.frequencies_[a] for a in "CIT"])
    expected, best_ll = direct_mle(moth_probs, counts)
    np.testing.assert_allclose(p, expected, atol=1e-7)
    np.testing.assert_allclose(p, [0.03607, 0.19580, 0.76813], atol=5e-6)
    assert est.loglik_ == pytest.approx(best_ll, abs=1e-8)


def test_abo_reaches_the_direct_maximiser():
    counts = load_abo()
    est = emkit.AlleleFrequencies.abo().fit(counts)
    p = np.array([est.frequencies_[a] for a in "ABO"])
    expected, best_ll = direct_mle(abo_probs, counts)
    np.testing.assert_allclose(p, expected, atol=1e-7)
    assert est.loglik_ == pytest.approx(best_ll, abs=1e-8)
    assert est.genotype_counts_["AB"] == pytest.approx(13)


def test_multi_letter_alleles_and_written_orders_give_the_same_fit():
    counts = load_peppered_moth()
    tuples = emkit.AlleleFrequencies(["Cb", "In", "Ty"], {
        "carbonaria": [("Cb", "Cb"), ["In", "Cb"], "Cb/Ty"],
        "insularia": [("In", "In"), ("Ty", "In")], "typica": [("Ty", "Ty")]}).fit(counts)
    ref = moth().fit(counts)
    np.testing.assert_allclose([tuples.frequencies_[a] for a in ("Cb", "In", "Ty")],
                               [ref.frequencies_[a] for a in "CIT"], rtol=1e-12)


def test_hard_and_stochastic_em_run_on_phenotype_counts():
    counts = load_abo()
    mle = emkit.AlleleFrequencies.abo().fit(counts).frequencies_
    stochastic = emkit.AlleleFrequencies.abo(algorithm="stochastic", max_iter=200, random_state=0).fit(counts)
    # averaged iterates of stochastic EM: within a fraction of the MLE's standard error (~0.013)
    for a in "ABO":
        assert abs(stochastic.frequencies_[a] - mle[a]) < 0.005
    hard = emkit.AlleleFrequencies.abo(algorithm="hard").fit(counts)
    # hard EM puts every A (B) individual in its most probable genotype, AO (BO): p_A = (186 + 13) / 1042
    assert hard.frequencies_["A"] == pytest.approx((186 + 13) / (2 * 521), rel=1e-12)


def test_complete_loglik_is_maximised_by_the_m_step():
    model = AlleleModel(3)
    est = moth()
    data = est._make_data(load_peppered_moth())
    params = {"frequencies": np.array([0.2, 0.3, 0.5])}
    stats, _ = model.e_step(data, params)
    best = model.m_step(stats, params)["frequencies"]
    q_best = model.complete_loglik(stats, {"frequencies": best})
    rng = np.random.default_rng(0)
    for _ in range(20):
        other = rng.dirichlet(np.ones(3))
        assert model.complete_loglik(stats, {"frequencies": other}) < q_best
    # scaling all statistics leaves the M-step unchanged (online EM)
    scaled = {k: 3.0 * v for k, v in stats.items()}
    np.testing.assert_allclose(model.m_step(scaled, params)["frequencies"], best, rtol=1e-14)


def test_frequencies_init_as_mapping_and_restarts():
    counts = load_peppered_moth()
    a = moth().set_params(frequencies_init={"C": 0.5, "I": 0.25, "T": 0.25}).fit(counts)
    b = moth().set_params(n_init=3, random_state=1).fit(counts)
    np.testing.assert_allclose(list(a.frequencies_.values()), list(b.frequencies_.values()), atol=1e-9)


@pytest.mark.parametrize("alleles, phenotypes, counts, message", [
    ("CIT", {"carbonaria": ["CC"]}, {}, "alleles must be a list"),
    (["C", "C", "T"], {"x": ["CC"]}, {}, "duplicates"),
    (["C", "I", "T"], {"carbonaria": ["CC", "CI", "CX"], "insularia": ["II", "IT"], "typica": ["TT"]},
     {}, r"genotype 'CX' has allele 'X'"),
    (["C", "I", "T"], {"carbonaria": ["CC", "CI"], "insularia": ["II", "IT"], "typica": ["TT"]},
     {}, r"genotype 'CT' belongs to no phenotype"),
    (["C", "I", "T"], {"carbonaria": ["CC", "CI", "CT"], "insularia": ["II", "IT"], "typica": ["TT"],
                       "odd": ["IT", "TT"]}, {}, r"phenotypes 'insularia' and 'odd' overlap"),
    (["C", "I", "T"], {"carbonaria": ["CCC"], "rest": ["CI", "CT", "II", "IT", "TT"]}, {}, "two allele"),
])
def test_inconsistent_tables_are_rejected(alleles, phenotypes, counts, message):
    with pytest.raises(ValueError, match=message):
        emkit.AlleleFrequencies(alleles, phenotypes).fit(counts or {"rest": 1})


@pytest.mark.parametrize("counts, message", [
    ({"carbonaria": 85, "melanic": 3}, r"unknown phenotype\(s\) \['melanic'\]"),
    ({"carbonaria": -1, "typica": 5}, "non-negative whole number"),
    ({"carbonaria": 2.5, "typica": 5}, "non-negative whole number"),
    ({"carbonaria": 0, "typica": 0}, "sum to zero"),
    ({"carbonaria": "many"}, "must be a number"),
    ([85, 196, 341], "mapping"),
])
def test_bad_counts(counts, message):
    with pytest.raises(ValueError, match=message):
        moth().fit(counts)


@pytest.mark.parametrize("init, message", [
    ([0.5, 0.5, 0.5], "sum to 1"),
    ([1.5, -0.25, -0.25], r"\[0, 1\]"),
    ({"C": 0.5, "X": 0.5}, "unknown allele"),
    ([0.5, 0.5], "3 entries"),
])
def test_bad_frequencies_init(init, message):
    with pytest.raises(ValueError, match=message):
        moth().set_params(frequencies_init=init).fit(load_peppered_moth())


@pytest.mark.parametrize("order", ["", "C>>T", "C>C", 42])
def test_bad_dominance_orders(order):
    with pytest.raises(ValueError, match="dominance order"):
        emkit.AlleleFrequencies.from_dominance(order)


def test_supplemented_em_standard_errors_match_the_observed_information_computed_here():
    counts = load_peppered_moth()
    est = moth().fit(counts)
    p = np.array([est.frequencies_[a] for a in "CIT"])

    def loglik(free):
        c, i = free
        probs = moth_probs([c, i, 1 - c - i])
        return sum(counts[k] * np.log(probs[k]) for k in counts)

    h = 1e-5
    free = p[:2]
    hess = np.zeros((2, 2))
    for a in range(2):
        for b in range(2):
            ea, eb = np.eye(2)[a] * h, np.eye(2)[b] * h
            hess[a, b] = (loglik(free + ea + eb) - loglik(free + ea - eb) - loglik(free - ea + eb)
                          + loglik(free - ea - eb)) / (4 * h * h)
    cov = np.linalg.inv(-hess)
    expected = np.sqrt([cov[0, 0], cov[1, 1], cov[0, 0] + cov[1, 1] + 2 * cov[0, 1]])
    se = est.standard_errors("sem")["frequencies"]
    np.testing.assert_allclose(se, expected, rtol=1e-3)
    np.testing.assert_allclose(se, [0.0074, 0.0122, 0.0135], atol=1e-4)


def test_parametric_bootstrap_coarsens_at_random_like_the_data():
    """A parametric bootstrap of data with an 'insularia or typica' group redraws every moth's
    phenotype, then coarsens insularia and typica at random at the observed rate; its SEs then
    match supplemented EM's (Monte Carlo tolerance 4 / sqrt(2 (B - 1)) relative for B replicates)."""
    base = moth().phenotypes
    phenotypes = dict(base, **{"insularia or typica": base["insularia"] + base["typica"]})
    counts = dict(load_peppered_moth(), **{"insularia or typica": 578})
    est = emkit.AlleleFrequencies(["C", "I", "T"], phenotypes).fit(counts)
    model, data = est.model_, est._fit_data
    drawn = np.asarray(model.sample_like(data, est.params_, np.random.default_rng(0))[0])
    assert drawn.sum() == np.sum(data[0])
    assert np.any(drawn != np.asarray(data[0]))
    n_boot = 300
    sem = est.standard_errors("sem")["frequencies"]
    boot = est.standard_errors("bootstrap", kind="parametric", n_boot=n_boot, random_state=1)["frequencies"]
    np.testing.assert_allclose(boot, sem, rtol=4 / np.sqrt(2 * (n_boot - 1)))
