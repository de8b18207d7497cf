"""Bad inputs, each refused with one clear line (issue 12, item 7).

Every case calls the public API with one thing wrong and checks the exception's class, that
its message names the problem (``match``) and that the message is one line. The cases add to
the ones of ``tests/core/test_input_errors.py``, ``tests/estimators/test_model_errors.py``,
``tests/estimators/test_gaussian.py`` and ``tests/engine/test_engine.py`` (none is repeated):
data of the wrong kind or shape, NaN / inf where they are not allowed, values at the limits
of float64, settings out of range, starting values of the wrong shape or outside their
domain, bad row weights, bad calls of :func:`emkit.em`, and bad data at prediction time.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import emkit
from emkit.models.linkage import GeneticLinkage

NAN, INF = float("nan"), float("inf")
X = np.random.default_rng(0).normal(size=(40, 2))
COUNTS = np.array([0.0, 1.0, 3.0, 2.0, 5.0, 1.0, 4.0, 2.0])
LINKAGE = (np.array([[125.0, 18.0, 20.0, 34.0]]),)
FREE_NAN = np.where(np.eye(40, 2) > 0, NAN, X)  # a NaN in two rows: missing values


def gm(**settings):
    return emkit.GaussianMixture(2, random_state=0, **settings)


def fitted_gm():
    return gm().fit(X)


def expect(error, match: str, call):
    """Run ``call``; it must raise ``error`` whose one-line message matches ``match``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(error, match=match) as info:
            call()
    message = str(info.value)
    assert "\n" not in message, f"a message of {message.count(chr(10)) + 1} lines: {message!r}"
    assert len(message) < 400, f"a message of {len(message)} characters: {message!r}"
    return message


# --------------------------------------------------------------------------- the data
DATA_CASES = [
    ("3-D X", lambda: gm().fit(np.zeros((4, 3, 2))), r"X must have 2 dimension\(s\), got shape \(4, 3, 2\)"),
    ("1-D X", lambda: gm().fit(X[:, 0]), r"X must have 2 dimension\(s\).*Reshape your data"),
    ("scalar X", lambda: gm().fit(3.0), r"X must have 2 dimension\(s\), got shape \(\)"),
    ("X is None", lambda: gm().fit(None), r"^X is required$"),
    ("strings", lambda: gm().fit([["a", "b"], ["c", "d"]]), r"X must be numeric, got dtype <U1"),
    ("object array", lambda: gm().fit(np.array([[1.0, {}], [2.0, 3.0]], dtype=object)),
     r"X must be numeric, got dtype object"),
    ("complex numbers", lambda: gm().fit(X + 1j), r"X has complex values: Complex data not supported"),
    ("ragged rows", lambda: gm().fit([[1.0, 2.0], [3.0]]), r"X could not be read as a numeric array"),
    ("float32 overflow", lambda: gm().fit((X * 1e20).astype(np.float32)),
     r"X has values as large as .* overflow float32; rescale X"),
    ("multivariate normal underflow", lambda: emkit.MultivariateNormalMixture(2).fit(X * 1e-320),
     r"X has values no larger than .* underflow to 0 in float64; rescale X"),
    ("multivariate normal overflow", lambda: emkit.MultivariateNormalMixture(2).fit(X * 1e200),
     r"X has values as large as 2.33e\+200 \(column 0\), whose squares .* overflow float64"),
    ("binomial counts too large", lambda: emkit.BinomialMixture(2).fit([1e300, 2.0], trials=1e301),
     r"X has counts as large as 1e\+300.*a Binomial mixture cannot be fitted to counts this large"),
    ("Poisson complex counts", lambda: emkit.PoissonMixture(2).fit(np.array([1.0, 2j, 2.0])),
     r"Complex data not supported"),
    ("Bernoulli NaN", lambda: emkit.BernoulliMixture(2).fit([[0, NAN], [1, 1]]), r"X contains NaN"),
    ("categorical fractions", lambda: emkit.CategoricalMixture(2).fit([[0, 1.5], [1, 1]]),
     r"X must be whole numbers \(counts\)"),
    ("categorical code above its column's n_categories",
     lambda: emkit.CategoricalMixture(2, n_categories=[2, 1]).fit([[0, 1], [1, 0], [1, 1]]),
     r"X column 1 has category codes >= 1 \(its n_categories\)"),
    ("categorical n_categories of the wrong length",
     lambda: emkit.CategoricalMixture(2, n_categories=[2, 2, 2]).fit([[0, 1], [1, 0], [1, 1]]),
     r"n_categories has 3 entries but X has 2 columns"),
    ("exponential mixture NaN", lambda: emkit.ExponentialMixture(2).fit([1.0, NAN, 2.0]), r"X contains NaN"),
    ("exponential mixture of zeros", lambda: emkit.ExponentialMixture(2).fit([0.0, 0.0, 0.0]),
     r"X column\(s\) \[0\] are all zero .* rate's maximum-likelihood estimate would be infinite"),
    ("normal mixture 3-D", lambda: emkit.NormalMixture(2).fit(np.ones((3, 3, 3))),
     r"X must have 1 or 2 dimension\(s\), got shape \(3, 3, 3\)"),
    ("multivariate normal 1-D", lambda: emkit.MultivariateNormalMixture(2).fit(X[:, 0]),
     r"X must have 2 dimension\(s\).*Reshape your data"),
    ("exponential inf", lambda: emkit.Exponential().fit([1.0, INF]), r"^x contains inf$"),
    ("exponential strings", lambda: emkit.Exponential().fit(["a", "b"]), r"x must be numeric"),
    ("exponential empty", lambda: emkit.Exponential().fit([]), r"x is empty: need at least 1 row"),
    ("exponential all missing", lambda: emkit.Exponential().fit([NAN, NAN]), r"every entry is NaN"),
    ("exponential NaN censoring flag", lambda: emkit.Exponential().fit([1.0, 2.0], censored=[NAN, 0.0]),
     r"censored contains NaN"),
    ("exponential sum overflows", lambda: emkit.Exponential().fit([1e308, 1e308, 2.0]),
     r"x has 3 observed or censored values summing to inf, so the rate .* is 0.*; rescale x"),
    ("exponential rate overflows", lambda: emkit.Exponential().fit([1e-320, 2e-320]),
     r"x has 2 observed or censored values summing to 3e-320, so the rate .* is inf.*; rescale x"),
    ("allele count NaN", lambda: emkit.AlleleFrequencies.abo().fit({"A": NAN, "O": 3}),
     r"count of 'A' must be a non-negative whole number, got nan"),
    ("allele count inf", lambda: emkit.AlleleFrequencies.abo().fit({"A": INF, "O": 3}),
     r"count of 'A' must be a non-negative whole number, got inf"),
    ("allele counts None", lambda: emkit.AlleleFrequencies.abo().fit(None),
     r"counts must be a mapping phenotype -> count, got NoneType"),
    ("one allele", lambda: emkit.AlleleFrequencies(["A"], {"a": ["AA"]}).fit({"a": 3}), r"need at least two alleles"),
]


@pytest.mark.parametrize("call, match", [c[1:] for c in DATA_CASES], ids=[c[0] for c in DATA_CASES])
def test_bad_data(call, match):
    expect(ValueError, match, call)


def test_non_numeric_data_is_also_a_type_error():
    """scikit-learn's estimator checks expect a TypeError for strings; emkit's error is both."""
    message = expect(TypeError, r"X must be numeric", lambda: gm().fit([["a", "b"], ["c", "d"]]))
    assert "could not convert string to float" in message


# --------------------------------------------------------------------------- settings
SETTING_CASES = [
    ("tol < 0", lambda: gm(tol=-1.0).fit(X), r"tol must be a number >= 0, got -1.0"),
    ("tol NaN", lambda: gm(tol=NAN).fit(X), r"tol must be a number >= 0, got nan"),
    ("max_iter < 0", lambda: gm(max_iter=-1).fit(X), r"max_iter must be an integer >= 0, got -1"),
    ("max_iter not an integer", lambda: gm(max_iter=1.5).fit(X), r"max_iter must be an integer >= 0, got 1.5"),
    ("n_init 0", lambda: gm(n_init=0).fit(X), r"n_init must be an integer >= 1, got 0"),
    ("unknown stop rule", lambda: gm(stop="never").fit(X), r"stop must be one of .*'loglik'.*got 'never'"),
    ("unknown algorithm", lambda: gm(algorithm="fast").fit(X), r"algorithm must be one of 'em', .*got 'fast'"),
    ("unknown accelerator", lambda: gm(accelerate="turbo").fit(X), r"unknown accelerator 'turbo'"),
    ("unknown check_monotone", lambda: gm(check_monotone="sometimes").fit(X),
     r"check_monotone must be one of .*got 'sometimes'"),
    ("random_state a string", lambda: emkit.GaussianMixture(2, random_state="seed").fit(X), r"random_state must be"),
    ("reg_covar NaN", lambda: gm(reg_covar=NAN).fit(X), r"reg_covar must be a number >= 0, got nan"),
    ("covariance_type None", lambda: gm(covariance_type=None).fit(X), r"unknown covariance_type None; choose one of"),
    ("covariance_type in capitals", lambda: gm(covariance_type="FULL").fit(X), r"unknown covariance_type 'FULL'"),
    ("init_params None", lambda: gm(init_params=None).fit(X), r"unknown init_params None"),
    ("chunk_size 0", lambda: gm(chunk_size=0).fit(X), r"chunk_size must be None or an integer >= 1, got 0"),
    ("callback not callable", lambda: gm(callback=3).fit(X), r"callback must be None or a callable, got 3"),
    ("warm_start a string", lambda: gm(warm_start="yes").fit(X), r"warm_start must be a bool, got 'yes'"),
    ("verbose_interval 0", lambda: gm(verbose_interval=0).fit(X), r"verbose_interval must be an integer >= 1"),
    ("burn_in < 0", lambda: gm(burn_in=-1).fit(X), r"burn_in must be None or an integer >= 0, got -1"),
    ("checkpoint not a path", lambda: gm(checkpoint=5).fit(X), r"checkpoint must be None or a file path, got 5"),
    ("fixed names a number", lambda: gm(fixed=[1]).fit(X), r"fixed must be a group name or a sequence of group names"),
    ("fixed names an unknown group", lambda: gm(fixed=["mean"]).fit(X),
     r"unknown parameter group\(s\) in fixed: \['mean'\]; GaussianMixture has \['weights', 'means', 'covariances'\]"),
    ("hard EM with missing values", lambda: gm(algorithm="hard").fit(FREE_NAN),
     r"algorithm='hard' does not support missing values; use 'em'"),
]


@pytest.mark.parametrize("call, match", [c[1:] for c in SETTING_CASES], ids=[c[0] for c in SETTING_CASES])
def test_bad_settings(call, match):
    expect(ValueError, match, call)


def test_max_iter_zero_is_not_an_error_but_the_start():
    """max_iter=0 is allowed (the starting values, as scikit-learn): no iteration runs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = gm(max_iter=0).fit(X)
    assert est.n_iter_ == 0 and len(est.loglik_trace_) == 1
    np.testing.assert_array_equal(est.params_["means"], est.result_.restarts[0].init_params["means"])


# --------------------------------------------------------------------------- starting values
INIT_CASES = [
    ("weights_init NaN", lambda: gm(weights_init=[NAN, 1.0]).fit(X), r"weights_init"),
    ("weights_init strings", lambda: gm(weights_init=["a", "b"]).fit(X), r"weights_init must be numeric"),
    ("means_init NaN", lambda: gm(means_init=[[0.0, 0.0], [NAN, 1.0]]).fit(X), r"means_init contains NaN or inf"),
    ("means_init strings", lambda: gm(means_init=[["a", "b"], ["c", "d"]]).fit(X), r"means_init must be numeric"),
    ("precisions_init NaN", lambda: gm(precisions_init=np.array([[[1, NAN], [NAN, 1]], np.eye(2)])).fit(X),
     r"precisions_init contains NaN or inf"),
    ("precisions_init not symmetric", lambda: gm(precisions_init=np.array([[[1, 0.5], [0, 1]], np.eye(2)])).fit(X),
     r"'full precision' should be symmetric, positive-definite.*precisions_init"),
    ("tied precisions_init not positive definite",
     lambda: gm(covariance_type="tied", precisions_init=[[1.0, 2.0], [2.0, 1.0]]).fit(X),
     r"'tied precision' should be symmetric, positive-definite.*precisions_init"),
    ("tied precisions_init of the wrong shape",
     lambda: gm(covariance_type="tied", precisions_init=np.ones((2, 2, 2))).fit(X),
     r"should have the shape of \(2, 2\), but got \(2, 2, 2\)"),
    ("spherical precisions_init negative", lambda: gm(covariance_type="spherical", precisions_init=[1.0, -1.0]).fit(X),
     r"'spherical precision' should be positive"),
    ("diag covariances_init zero", lambda: gm(covariance_type="diag", covariances_init=[[1.0, 0.0], [1, 1]]).fit(X),
     r"(covariances_init.*positive|positive.*covariances_init)"),
    ("precisions and covariances both given",
     lambda: gm(precisions_init=np.array([np.eye(2)] * 2), covariances_init=np.array([np.eye(2)] * 2)).fit(X),
     r"give precisions_init or covariances_init, not both"),
    ("Poisson rates_init NaN", lambda: emkit.PoissonMixture(2, rates_init=[NAN, 1.0]).fit(COUNTS),
     r"rates_init contains NaN or inf"),
    ("Poisson rates_init zero", lambda: emkit.PoissonMixture(2, rates_init=[0.0, 1.0]).fit(COUNTS),
     r"rates_init must be positive, got \[0.0, 1.0\]"),
    ("Bernoulli probs_init of the wrong shape",
     lambda: emkit.BernoulliMixture(2, probs_init=[0.5, 0.5]).fit([[0, 1], [1, 1], [0, 0]]),
     r"probs_init must have shape \(2, 2\), got \(2,\)"),
    ("multivariate normal covariances_init NaN",
     lambda: emkit.MultivariateNormalMixture(2, covariances_init=np.full((2, 2, 2), NAN)).fit(X),
     r"covariances_init contains NaN or inf"),
    ("allele frequencies_init NaN",
     lambda: emkit.AlleleFrequencies.abo(frequencies_init=[NAN, 0.5, 0.5]).fit({"A": 3, "O": 3}),
     r"frequencies_init contains NaN or inf"),
    ("allele frequencies_init missing an allele",
     lambda: emkit.AlleleFrequencies.abo(frequencies_init={"A": 0.5, "B": 0.5}).fit({"A": 3, "O": 3}),
     r"frequencies_init lacks allele\(s\) \['O'\]"),
]


@pytest.mark.parametrize("call, match", [c[1:] for c in INIT_CASES], ids=[c[0] for c in INIT_CASES])
def test_bad_starting_values(call, match):
    expect(ValueError, match, call)


# --------------------------------------------------------------------------- row weights and trials
WEIGHT_CASES = [
    ("sample_weight NaN", lambda: gm().fit(X, sample_weight=np.r_[NAN, np.ones(39)]), r"sample_weight contains NaN"),
    ("sample_weight inf", lambda: gm().fit(X, sample_weight=np.r_[INF, np.ones(39)]), r"^sample_weight contains inf$"),
    ("sample_weight 2-D", lambda: gm().fit(X, sample_weight=np.ones((40, 1))),
     r"sample_weight must have 1 dimension\(s\), got shape \(40, 1\)"),
    ("sample_weight empty", lambda: gm().fit(X, sample_weight=[]), r"sample_weight is empty"),
    ("sample_weight negative zeros only", lambda: gm().fit(X, sample_weight=np.r_[-0.0, np.zeros(39)]),
     r"all weights are zero"),
    ("sample_weight strings", lambda: gm().fit(X, sample_weight=["a"] * 40), r"sample_weight"),
    ("binomial trials NaN", lambda: emkit.BinomialMixture(2).fit([1, 2, 3], trials=NAN),
     r"trials must be a non-negative whole number, got nan"),
    ("binomial trials inf", lambda: emkit.BinomialMixture(2).fit([1, 2, 3], trials=INF),
     r"trials must be a non-negative whole number, got inf"),
    ("binomial trials negative", lambda: emkit.BinomialMixture(2).fit([1, 2, 3], trials=-5),
     r"trials must be a non-negative whole number, got -5"),
    ("binomial trials not whole", lambda: emkit.BinomialMixture(2).fit([1, 2, 3], trials=[5, 5.5, 5]),
     r"trials must be whole numbers \(counts\)"),
    ("binomial trials a word", lambda: emkit.BinomialMixture(2).fit([1, 2, 3], trials="ten"), r"trials"),
]


@pytest.mark.parametrize("call, match", [c[1:] for c in WEIGHT_CASES], ids=[c[0] for c in WEIGHT_CASES])
def test_bad_weights_and_trials(call, match):
    expect(ValueError, match, call)


# --------------------------------------------------------------------------- emkit.em
EM_CASES = [
    ("data None", lambda: emkit.em(GeneticLinkage(), None),
     r"^data must be an array or a tuple of row-aligned arrays, got None$"),
    ("data a list", lambda: emkit.em(GeneticLinkage(), [[125, 18, 20, 34]]),
     r"got list; convert it with numpy.asarray"),
    ("data an empty tuple", lambda: emkit.em(GeneticLinkage(), ()), r"with at least one array, got \(\)"),
    ("model None", lambda: emkit.em(None, LINKAGE), r"^model must be an emkit model .* got None$"),
    ("model a class", lambda: emkit.em(GeneticLinkage, LINKAGE), r"got the class GeneticLinkage \(pass an instance\)"),
    ("model an estimator", lambda: emkit.em(emkit.PoissonMixture(2), LINKAGE), r"model must be an emkit model"),
    ("init NaN", lambda: emkit.em(GeneticLinkage(), LINKAGE, init={"p": np.array(NAN)}),
     r"initial parameters: p contains NaN or inf"),
    ("tol inf", lambda: emkit.em(GeneticLinkage(), LINKAGE, tol=INF), r"tol must be a finite number >= 0, got inf"),
    ("max_iter a float", lambda: emkit.em(GeneticLinkage(), LINKAGE, max_iter=2.0),
     r"max_iter must be a non-negative integer, got 2.0"),
    ("max_iter True", lambda: emkit.em(GeneticLinkage(), LINKAGE, max_iter=True),
     r"max_iter must be a non-negative integer, got True"),
    ("n_init True", lambda: emkit.em(GeneticLinkage(), LINKAGE, n_init=True),
     r"n_init must be a positive integer, got True"),
    ("fixed an unknown name as a string", lambda: emkit.em(GeneticLinkage(), LINKAGE, fixed="q"),
     r"unknown parameter group\(s\) in fixed: \['q'\]; GeneticLinkage has \['p'\]"),
]


@pytest.mark.parametrize("call, match", [c[1:] for c in EM_CASES], ids=[c[0] for c in EM_CASES])
def test_bad_calls_of_em(call, match):
    expect(ValueError, match, call)


# --------------------------------------------------------------------------- prediction
PREDICT_CASES = [
    ("predict with the wrong number of features", lambda: fitted_gm().predict(np.zeros((3, 5))),
     r"X has 5 features, but GaussianMixture is expecting 2 features as input"),
    ("predict a row with every entry missing", lambda: fitted_gm().predict(np.array([[NAN, NAN]])),
     r"X has rows with every entry missing \(NaN\): rows \[0\]"),
    ("predict_proba 3-D", lambda: fitted_gm().predict_proba(np.zeros((2, 2, 2))),
     r"X must have 2 dimension\(s\), got shape \(2, 2, 2\)"),
    ("predict strings", lambda: fitted_gm().predict([["a", "b"]]), r"X must be numeric"),
    ("score complex", lambda: fitted_gm().score(X + 1j), r"Complex data not supported"),
    ("predict -inf", lambda: fitted_gm().predict(np.array([[1.0, -INF]])), r"^X contains inf$"),
    ("score_samples of a 1-D row", lambda: fitted_gm().score_samples(X[0]), r"Reshape your data"),
    ("sample(0)", lambda: fitted_gm().sample(0), r"n_samples must be a positive integer"),
    ("sample(2.5)", lambda: fitted_gm().sample(2.5), r"n_samples must be a positive integer"),
    ("Poisson fractional counts", lambda: emkit.PoissonMixture(2, random_state=0).fit(COUNTS).predict([1.5]),
     r"X must be whole numbers \(counts\)"),
]


@pytest.mark.parametrize("call, match", [c[1:] for c in PREDICT_CASES], ids=[c[0] for c in PREDICT_CASES])
def test_bad_data_at_prediction_time(call, match):
    expect(ValueError, match, call)


def test_there_are_at_least_40_cases_and_no_two_alike():
    cases = DATA_CASES + SETTING_CASES + INIT_CASES + WEIGHT_CASES + EM_CASES + PREDICT_CASES
    assert len(cases) >= 40
    assert len({name for name, _, _ in cases}) == len(cases)
