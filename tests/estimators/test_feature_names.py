"""Column names of data frames, as scikit-learn records and checks them, for every registered
estimator; pandas (nullable columns: ``pd.NA`` is a missing value) and polars input."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

import emkit
from emkit.estimators.registry import ESTIMATORS, estimator_class

pd = pytest.importorskip("pandas")

#: estimators whose data is never a frame with columns, and why (a new estimator must be listed
#: here or get a case below)
NO_COLUMNS = {
    "BinomialMixture": "takes 1-D successes (a Series has a name, not columns)",
    "Exponential": "takes 1-D values (a Series has a name, not columns)",
    "AlleleFrequencies": "takes a mapping phenotype -> count",
}

MISMATCH = "The feature names should match those that were passed during fit."
NO_NAMES = "X does not have valid feature names, but {name} was fitted with feature names"
UNEXPECTED_NAMES = "X has feature names, but {name} was fitted without feature names"


def _frame_case(name: str):
    """(estimator, DataFrame with string column names) for an estimator that takes 2-D X."""
    rng = np.random.default_rng(3)
    n = 120
    group = rng.random(n) < 0.4
    if name in ("PoissonMixture", "FiniteMixture"):
        x = np.where(group[:, None], rng.poisson(9.0, (n, 3)), rng.poisson(2.0, (n, 3))).astype(float)
    elif name == "ExponentialMixture":
        x = np.where(group[:, None], rng.exponential(5.0, (n, 3)), rng.exponential(1.0, (n, 3)))
    elif name == "BernoulliMixture":
        x = (rng.random((n, 3)) < np.where(group[:, None], 0.8, 0.2)).astype(float)
    elif name == "CategoricalMixture":
        x = np.where(group[:, None], rng.integers(0, 3, (n, 3)), rng.integers(1, 3, (n, 3))).astype(float)
    else:
        x = np.where(group[:, None], rng.normal([3.0, -1.0, 2.0], 1.0, (n, 3)), rng.normal(0.0, 1.0, (n, 3)))
    settings = dict(random_state=0, max_iter=20, tol=1e-6)
    if name == "FiniteMixture":
        est = estimator_class(name)(2, family="poisson", **settings)
    else:
        est = estimator_class(name)(2, **settings)
    return est, pd.DataFrame(x, columns=["alpha", "beta", "gamma"])


FRAME_ESTIMATORS = sorted(set(ESTIMATORS) - set(NO_COLUMNS))


def test_every_registered_estimator_is_covered():
    assert set(FRAME_ESTIMATORS) | set(NO_COLUMNS) == set(ESTIMATORS)


@pytest.mark.parametrize("name", FRAME_ESTIMATORS)
def test_fit_on_a_frame_records_the_names_and_checks_them(name):
    est, df = _frame_case(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emkit.ConvergenceWarning)
        est.fit(df)
    assert est.feature_names_in_.dtype == object
    assert est.feature_names_in_.tolist() == ["alpha", "beta", "gamma"]
    assert est.n_features_in_ == 3
    expected = est.predict(df)

    # the same columns in another order: an error, not other labels
    reordered = df[["beta", "alpha", "gamma"]]
    for method in (est.predict, est.predict_proba, est.score_samples, est.score, est.bic):
        with pytest.raises(ValueError, match=MISMATCH) as info:
            method(reordered)
        assert "Feature names must be in the same order as they were in fit." in str(info.value)

    # renamed columns: the unseen and the missing names are listed
    with pytest.raises(ValueError, match=MISMATCH) as info:
        est.predict(df.rename(columns={"beta": "delta"}))
    assert "Feature names unseen at fit time:\n- delta\n" in str(info.value)
    assert "Feature names seen at fit time, yet now missing:\n- beta\n" in str(info.value)

    # an array after a fit on a frame: scikit-learn's warning, the same result
    with pytest.warns(UserWarning, match=NO_NAMES.format(name=type(est).__name__)):
        labels = est.predict(df.to_numpy())
    np.testing.assert_array_equal(labels, expected)

    # names survive pickling
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(est)).feature_names_in_, est.feature_names_in_)


@pytest.mark.parametrize("name", FRAME_ESTIMATORS)
def test_fit_on_an_array_records_no_names_and_warns_for_a_frame(name):
    est, df = _frame_case(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", emkit.ConvergenceWarning)
        est.fit(df)
        est.fit(df.to_numpy())  # a refit on an array forgets the names
    assert not hasattr(est, "feature_names_in_")
    with pytest.warns(UserWarning, match=UNEXPECTED_NAMES.format(name=type(est).__name__)):
        est.predict(df)


def test_names_that_are_not_all_strings():
    x = np.random.default_rng(0).normal(size=(50, 2))
    g = emkit.GaussianMixture(2, random_state=0)
    g.fit(pd.DataFrame(x))  # pandas' default names 0, 1: no feature names, as in scikit-learn
    assert not hasattr(g, "feature_names_in_")
    with pytest.raises(TypeError, match="Feature names are only supported if all input features have string"):
        g.fit(pd.DataFrame(x, columns=["a", 1]))


def test_partial_fit_and_impute_check_the_names():
    x = emkit.datasets.load_faithful()
    df = pd.DataFrame(x, columns=["eruptions", "waiting"])
    g = emkit.GaussianMixture(2, random_state=0).partial_fit(df[:100])
    assert g.feature_names_in_.tolist() == ["eruptions", "waiting"]
    g.partial_fit(df[100:200])
    with pytest.raises(ValueError, match=MISMATCH):
        g.partial_fit(df[200:][["waiting", "eruptions"]])
    with pytest.raises(ValueError, match=MISMATCH):
        g.impute(df[["waiting", "eruptions"]])


def test_the_reported_case_reordered_faithful_raises():
    x = emkit.datasets.load_faithful()
    df = pd.DataFrame(x, columns=["eruptions", "waiting"])
    g = emkit.GaussianMixture(2, random_state=0).fit(df)
    with pytest.raises(ValueError, match=MISMATCH):
        g.predict(df[["waiting", "eruptions"]])


# --------------------------------------------------------------------------- pandas and polars input
def _faithful_with_holes():
    x = emkit.datasets.load_faithful().copy()
    x[[3, 40, 41], 0] = np.nan
    x[[10, 200], 1] = np.nan
    return x


def test_nullable_pandas_columns_are_missing_values():
    x = _faithful_with_holes()
    df = pd.DataFrame(x, columns=["eruptions", "waiting"]).astype("Float64")  # NaN becomes pd.NA
    assert df.isna().to_numpy().sum() == 5 and df.iloc[3, 0] is pd.NA
    ours = emkit.GaussianMixture(2, random_state=0).fit(df)
    ref = emkit.GaussianMixture(2, random_state=0).fit(x)
    for attr in ("weights_", "means_", "covariances_"):
        np.testing.assert_array_equal(getattr(ours, attr), getattr(ref, attr))
    assert ours.lower_bound_ == ref.lower_bound_
    np.testing.assert_array_equal(ours.predict(df), ref.predict(x))
    np.testing.assert_array_equal(ours.impute(df), ref.impute(x))


def test_nullable_integer_columns():
    rng = np.random.default_rng(0)
    counts = np.where(rng.random(200) < 0.4, rng.poisson(9.0, 200), rng.poisson(2.0, 200)).astype(float)
    df = pd.DataFrame({"n": pd.array(counts.astype(int), dtype="Int64")})
    ours = emkit.PoissonMixture(2, random_state=0).fit(df)
    ref = emkit.PoissonMixture(2, random_state=0).fit(counts[:, None])
    np.testing.assert_array_equal(ours.rates_, ref.rates_)
    assert ours.feature_names_in_.tolist() == ["n"]


def test_polars_input_equals_numpy_input():
    pl = pytest.importorskip("polars")
    x = _faithful_with_holes()
    frame = pl.DataFrame({"eruptions": x[:, 0], "waiting": x[:, 1]}).with_columns(
        pl.col("eruptions").fill_nan(None))  # polars nulls are missing values too
    assert frame["eruptions"].null_count() == 3
    ours = emkit.GaussianMixture(2, random_state=0).fit(frame)
    ref = emkit.GaussianMixture(2, random_state=0).fit(x)
    assert ours.feature_names_in_.tolist() == ["eruptions", "waiting"]
    for attr in ("weights_", "means_", "covariances_"):
        np.testing.assert_array_equal(getattr(ours, attr), getattr(ref, attr))
    np.testing.assert_array_equal(ours.predict(frame), ref.predict(x))
    with pytest.raises(ValueError, match=MISMATCH):
        ours.predict(frame.select(["waiting", "eruptions"]))


def test_feature_names_survive_a_model_file(tmp_path):
    pd = pytest.importorskip("pandas")
    df = pd.read_csv(emkit.datasets.data_path("faithful.csv"))
    fitted = emkit.GaussianMixture(2, random_state=0).fit(df)
    path = tmp_path / "faithful.emkit"
    fitted.save(path)
    loaded = emkit.load(path)
    assert loaded.feature_names_in_.dtype == object
    assert list(loaded.feature_names_in_) == ["eruptions", "waiting"]
    np.testing.assert_array_equal(loaded.predict(df), fitted.predict(df))
    with pytest.raises(ValueError, match="The feature names should match those that were passed during fit"):
        loaded.predict(df[["waiting", "eruptions"]])
