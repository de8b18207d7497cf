"""Saving and loading: exact round trips, no pickle, clear errors on bad files."""

from __future__ import annotations

import copy
import importlib
import json
import pickle
import zipfile

import numpy as np
import pytest

import emkit
from emkit import io as emio
from emkit.estimators import modelfile
from emkit.estimators.mixture_base import MixtureEstimator

from contract_models import TwoPoisson


# --------------------------------------------------------------------------- a tiny estimator
class _PoissonMixModel(TwoPoisson):
    """The shared Poisson mixture with K components and a deterministic start."""

    def __init__(self, k: int):
        self.k = k

    def initialize(self, data, rng):
        x = data[0]
        return {"weights": np.full(self.k, 1 / self.k), "rates": np.quantile(x, np.linspace(0.2, 0.8, self.k)) + 0.5}

    def n_parameters(self, params, fixed=()):
        return 2 * self.k - 1

    def sample(self, params, n, rng):
        z = rng.choice(self.k, size=n, p=params["weights"])
        return (rng.poisson(params["rates"][z]).astype(float), None), z


@emio.register_estimator
class TinyPoissonMixture(MixtureEstimator):
    def __init__(self, n_components=2, *, tol=1e-9, max_iter=5000, n_init=1, random_state=None,
                 fixed=None, rates_init=None, callback=None, keep_history=False):
        self.n_components = n_components
        self.tol = tol
        self.max_iter = max_iter
        self.n_init = n_init
        self.random_state = random_state
        self.fixed = fixed
        self.rates_init = rates_init
        self.callback = callback
        self.keep_history = keep_history

    def _make_model(self):
        return _PoissonMixModel(self.n_components)

    def _make_data(self, X, sample_weight=None, fitting=True):
        x = np.asarray(X, dtype=float).ravel()
        return (x, None if sample_weight is None else np.asarray(sample_weight, dtype=float))

    def _init_params(self, model, data):
        if self.rates_init is None:
            return None
        return {"rates": np.asarray(self.rates_init, dtype=float)}


HASSELBLAD = emkit.datasets.load_hasselblad_deaths()


@pytest.fixture
def tiny_fit():
    est = TinyPoissonMixture(2, rates_init=np.array([1.0, 2.5]), n_init=2, random_state=3,
                             callback=lambda *a: None)
    return est.fit(HASSELBLAD["deaths"], sample_weight=HASSELBLAD["freq"])


def _assert_same_fit(a, b):
    assert type(a) is type(b)
    for key, value in vars(a).items():
        if not key.endswith("_") or key.startswith("_") or key in ("model_", "result_"):
            continue
        other = getattr(b, key)
        if isinstance(value, dict):
            assert value.keys() == other.keys()
            for k in value:
                np.testing.assert_array_equal(np.asarray(value[k]), np.asarray(other[k]), strict=True)
        else:
            np.testing.assert_array_equal(np.asarray(value), np.asarray(other), strict=True)


def test_round_trip_is_exact(tiny_fit, tmp_path):
    # Hasselblad's (1969) two-Poisson fit of the London death counts: rates near 1.26 and 2.66
    rates = np.sort(tiny_fit.rates_)
    np.testing.assert_allclose(rates, [1.2561, 2.6634], atol=2e-3)
    path = tiny_fit.save(tmp_path / "tiny.emkit") or tmp_path / "tiny.emkit"
    loaded = emkit.load(path)
    _assert_same_fit(tiny_fit, loaded)
    x = np.arange(10.0)
    np.testing.assert_array_equal(loaded.predict_proba(x), tiny_fit.predict_proba(x))
    np.testing.assert_array_equal(loaded.predict(x), tiny_fit.predict(x))
    assert loaded.score(x) == tiny_fit.score(x)
    assert loaded.bic(x) == tiny_fit.bic(x)
    # sampling with the same seed gives the same draws
    np.testing.assert_array_equal(loaded.sample(50, random_state=1)[0][0], tiny_fit.sample(50, random_state=1)[0][0])
    # constructor settings come back unchanged; the callback cannot be stored
    assert loaded.n_init == 2 and loaded.random_state == 3 and loaded.callback is None
    np.testing.assert_array_equal(loaded.rates_init, [1.0, 2.5], strict=True)
    # the result keeps each restart's trace for plotting
    assert len(loaded.result_.restarts) == 2
    for r_loaded, r_orig in zip(loaded.result_.restarts, tiny_fit.result_.restarts):
        np.testing.assert_array_equal(r_loaded.loglik_trace, r_orig.loglik_trace)
    assert loaded.result_.loglik == tiny_fit.loglik_
    # a loaded model can be fitted again and reaches the same optimum
    refit = loaded.fit(HASSELBLAD["deaths"], sample_weight=HASSELBLAD["freq"])
    assert refit.loglik_ == pytest.approx(tiny_fit.loglik_, abs=1e-8)


def test_file_layout_is_json_and_npy_without_pickle(tiny_fit, tmp_path):
    path = tmp_path / "m.zip"
    emio.save(tiny_fit, path)
    with zipfile.ZipFile(path) as z:
        header = json.loads(z.read("emkit.json"))
        assert header["format"] == "emkit-model" and header["format_version"] == 1
        assert header["estimator"] == "TinyPoissonMixture"
        assert header["emkit_version"] == emkit.__version__
        assert header["dropped"] == ["callback"]
        assert header["params"]["n_components"] == 2
        assert header["fitted"]["n_iter_"] == tiny_fit.n_iter_
        for name in z.namelist():
            assert name == "emkit.json" or (name.startswith("arrays/") and name.endswith(".npy"))
            if name.endswith(".npy"):
                np.load(z.open(name), allow_pickle=False)  # would raise on a pickled object array


def test_unfitted_estimator_round_trips(tmp_path):
    est = TinyPoissonMixture(3, tol=1e-4)
    loaded = emkit.load(emio.save(est, tmp_path / "u.emkit"))
    assert loaded.get_params()["n_components"] == 3 and loaded.tol == 1e-4
    assert not hasattr(loaded, "result_")


def test_special_values_round_trip(tmp_path):
    enc = modelfile._Encoder()
    value = {"a": (1, 2.5, float("nan")), "b": [True, None, "x"], 3: np.float32(1.5),
             "__odd__": np.arange(3, dtype=np.int16)}
    encoded = enc.encode(value)
    json.dumps(encoded, allow_nan=False)
    path = tmp_path / "z.zip"
    with zipfile.ZipFile(path, "w") as z:
        for name, arr in enc.arrays.items():
            with z.open(name, "w") as fh:
                np.save(fh, arr)
    with zipfile.ZipFile(path) as z:
        out = modelfile._Decoder(z, str(path)).decode(encoded)
    assert out["a"][:2] == (1, 2.5) and np.isnan(out["a"][2]) and isinstance(out["a"], tuple)
    assert out["b"] == [True, None, "x"]
    assert out[3].dtype == np.float32 and out[3] == 1.5
    np.testing.assert_array_equal(out["__odd__"], np.arange(3, dtype=np.int16), strict=True)


# --------------------------------------------------------------------------- bad files
def _rewrite(path, out, *, header=None, drop=(), extra=None):
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            if name in drop:
                continue
            data = src.read(name)
            if name == "emkit.json" and header is not None:
                h = json.loads(data)
                header(h)
                data = json.dumps(h).encode()
            dst.writestr(name, data)
        for name, data in (extra or {}).items():
            dst.writestr(name, data)
    return out


@pytest.fixture
def saved(tiny_fit, tmp_path):
    return emio.save(tiny_fit, tmp_path / "good.emkit")


def test_missing_file(tmp_path):
    with pytest.raises(ValueError, match="no such model file"):
        emkit.load(tmp_path / "nope.emkit")


def test_foreign_file(tmp_path):
    p = tmp_path / "data.csv"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"data\.csv: not an emkit model file"):
        emkit.load(p)


def test_truncated_file(saved, tmp_path):
    raw = saved.read_bytes()
    for cut in (len(raw) // 2, len(raw) - 10, 30):
        p = tmp_path / f"cut{cut}.emkit"
        p.write_bytes(raw[:cut])
        with pytest.raises(ValueError, match=f"cut{cut}.emkit"):
            emkit.load(p)


def test_flipped_bytes_are_caught(tiny_fit, saved, tmp_path):
    raw = saved.read_bytes()
    with zipfile.ZipFile(saved) as z:
        data_spans = [(i.header_offset + 30 + len(i.filename),
                       i.header_offset + 30 + len(i.filename) + i.compress_size) for i in z.infolist()]
    # a damaged byte in any member's data must be reported (CRC check); a damaged byte
    # elsewhere (local-header fields zipfile ignores) may load, but then only to the same model
    for pos in range(0, len(raw), 23):
        bad = bytearray(raw)
        bad[pos] ^= 0xFF
        p = tmp_path / "bad.emkit"
        p.write_bytes(bytes(bad))
        if any(a <= pos < b for a, b in data_spans):
            with pytest.raises(ValueError, match="bad.emkit"):
                emkit.load(p)
        else:
            try:
                loaded = emkit.load(p)
            except ValueError as exc:
                assert "bad.emkit" in str(exc)
            else:
                _assert_same_fit(tiny_fit, loaded)


def test_damaged_end_of_a_compressed_member_is_caught(saved, tmp_path):
    # zipfile reads a member only up to its stated size and checks the CRC of those bytes, so
    # damage to the end-of-stream code in the last byte of a deflate stream (which then decodes
    # to the same bytes followed by more) used to load silently; the loader checks that every
    # stream ends exactly where the archive says
    raw = saved.read_bytes()
    with zipfile.ZipFile(saved) as z:
        ends = [i.header_offset + 30 + len(i.filename) + len(i.extra) + i.compress_size - 1
                for i in z.infolist() if i.compress_type == zipfile.ZIP_DEFLATED]
    assert ends
    for pos in ends:
        bad = bytearray(raw)
        bad[pos] ^= 0xFF
        p = tmp_path / "end.emkit"
        p.write_bytes(bytes(bad))
        with pytest.raises(ValueError, match="end.emkit: member .* is corrupted"):
            emkit.load(p)


@pytest.mark.parametrize("rewrite, message", [
    ({"drop": ("emkit.json",)}, "emkit.json is missing"),
    ({"header": lambda h: h.update(format="other")}, "not an emkit model file"),
    ({"header": lambda h: h.update(format_version=99)}, "format version 99 is newer"),
    ({"header": lambda h: h.update(estimator="os.system")}, "unknown estimator 'os.system'"),  # never imported
    ({"drop": ("arrays/0.npy",)}, "arrays/0.npy.*missing"),
], ids=["zip-without-header", "wrong-format-name", "newer-format-version", "unknown-estimator",
        "missing-array"])
def test_damaged_archive_is_refused_naming_the_problem(saved, tmp_path, rewrite, message):
    p = _rewrite(saved, tmp_path / "x.emkit", **rewrite)
    with pytest.raises(ValueError, match=message):
        emkit.load(p)


def test_pickled_array_is_refused(saved, tmp_path):
    import io as pyio
    buf = pyio.BytesIO()
    np.save(buf, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(saved) as z:
        names = [n for n in z.namelist() if n.endswith(".npy")]
    p = _rewrite(saved, tmp_path / "x.emkit", drop=(names[0],), extra={names[0]: buf.getvalue()})
    with pytest.raises(ValueError, match="corrupted"):
        emkit.load(p)


def test_bad_json(saved, tmp_path):
    p = tmp_path / "x.emkit"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("emkit.json", "{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        emkit.load(p)


def test_wrong_settings(saved, tmp_path):
    p = _rewrite(saved, tmp_path / "x.emkit", header=lambda h: h["params"].update(bogus=1))
    with pytest.raises(ValueError, match="settings do not match TinyPoissonMixture"):
        emkit.load(p)


def test_saving_unregistered_class_fails(tmp_path):
    class Local(TinyPoissonMixture):
        pass

    with pytest.raises(ValueError, match="cannot save a Local"):
        emio.save(Local(), tmp_path / "l.emkit")


# --------------------------------------------------------------------------- every emkit estimator
def _estimator_cases():
    coins = emkit.datasets.load_two_coins()
    faithful = emkit.datasets.load_faithful()
    moths = emkit.datasets.load_peppered_moth()
    rng = np.random.default_rng(0)
    expo = rng.exponential(2.0, size=40)
    expo[::7] = np.nan
    return [
        ("BinomialMixture", lambda cls: cls(2, random_state=0).fit(coins["heads"], trials=coins["tosses"]),
         lambda est: est.predict_proba(coins["heads"], trials=coins["tosses"])),
        ("PoissonMixture", lambda cls: cls(2, random_state=0).fit(HASSELBLAD["deaths"], sample_weight=HASSELBLAD["freq"]),
         lambda est: est.predict_proba(HASSELBLAD["deaths"])),
        ("GaussianMixture", lambda cls: cls(2, random_state=0).fit(faithful),
         lambda est: est.predict_proba(faithful)),
        ("Exponential", lambda cls: cls().fit(expo), None),
        ("AlleleFrequencies", lambda cls: cls.from_dominance("C>I>T", names={"C": "carbonaria", "I": "insularia",
                                                                           "T": "typica"}).fit(moths), None),
    ]


def _class(name):
    try:
        return getattr(importlib.import_module(emio.ESTIMATORS[name]), name)
    except (ImportError, AttributeError):
        return None


@pytest.mark.parametrize("name, fit, predict", _estimator_cases(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_estimator_round_trips(name, fit, predict, tmp_path):
    cls = _class(name)
    if cls is None:
        pytest.skip(f"{name} is not available yet")
    est = fit(cls)
    loaded = emkit.load(est.save(tmp_path / f"{name}.emkit") or tmp_path / f"{name}.emkit")
    _assert_same_fit(est, loaded)
    assert loaded.loglik_ == est.loglik_
    if predict is not None:
        np.testing.assert_array_equal(np.asarray(predict(loaded)), np.asarray(predict(est)))


def test_unstorable_settings_are_dropped_and_listed(tmp_path):
    est = TinyPoissonMixture(2, random_state=np.random.default_rng(0), callback=print)
    path = emio.save(est, tmp_path / "g.emkit")
    with zipfile.ZipFile(path) as z:
        assert json.loads(z.read("emkit.json"))["dropped"] == ["callback", "random_state"]
    loaded = emkit.load(path)
    assert loaded.random_state is None and loaded.callback is None and loaded.n_components == 2


def test_oversized_members_are_refused(saved, monkeypatch):
    monkeypatch.setattr(modelfile, "MAX_UNCOMPRESSED_BYTES", 100)
    with pytest.raises(ValueError, match="would expand to .* bytes"):
        emkit.load(saved)


def test_deeply_nested_json_is_refused(tmp_path):
    p = tmp_path / "deep.emkit"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("emkit.json", "[" * 100000 + "]" * 100000)
    with pytest.raises(ValueError, match="deep.emkit: emkit.json is (nested too deeply|not valid JSON)"):
        emkit.load(p)


# --------------------------------------------------------------------------- no training data in state
def _poisson_rows(n, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.random(n) < 0.4
    return np.where(z, rng.poisson(1.3, n), rng.poisson(2.7, n)).astype(float)


def test_pickles_and_files_do_not_grow_with_the_rows(tmp_path):
    sizes = {}
    for n in (2_000, 200_000):
        # the same number of iterations, so that the traces have the same length
        est = emkit.PoissonMixture(2, random_state=0, tol=0.0, max_iter=30).fit(_poisson_rows(n))
        sizes[n] = (len(pickle.dumps(est)), est.save(tmp_path / f"p{n}.emkit").stat().st_size)
        assert "_fit_data" not in vars(pickle.loads(pickle.dumps(est)))
        assert "_fit_data" not in vars(copy.deepcopy(est))
    # 200,000 rows are 1.6 MB of float64; the sizes differ only by the encoding of the numbers
    assert abs(sizes[200_000][0] - sizes[2_000][0]) < 200
    assert abs(sizes[200_000][1] - sizes[2_000][1]) < 200


def test_standard_errors_after_load_or_unpickle_take_the_data(tmp_path):
    x, w = HASSELBLAD["deaths"], HASSELBLAD["freq"]
    est = emkit.PoissonMixture(2, weights_init=[0.3, 0.7], rates_init=[1.0, 2.5], stop="params_maxabs",
                               tol=1e-10).fit(x, sample_weight=w)
    expected = est.standard_errors("sem")
    for again in (pickle.loads(pickle.dumps(est)), emkit.load(est.save(tmp_path / "h.emkit"))):
        with pytest.raises(ValueError, match=r"standard_errors\(\) needs the training data.*pass data="):
            again.standard_errors("sem")
        with pytest.raises(ValueError, match=r"covariance\(\) needs the training data.*pass data="):
            again.covariance("hessian")
        got = again.standard_errors("sem", data=again.model_data(x, sample_weight=w))
        for group in expected:
            np.testing.assert_array_equal(got[group], expected[group])
        # predictions need no training data
        np.testing.assert_array_equal(again.predict_proba(x), est.predict_proba(x))
    # one data argument: data= takes what fit took
    moths = emkit.datasets.load_peppered_moth()
    moth = emkit.AlleleFrequencies.from_dominance("C>I>T", names={"C": "carbonaria", "I": "insularia",
                                                                  "T": "typica"}).fit(moths)
    loaded = emkit.load(moth.save(tmp_path / "m.emkit"))
    np.testing.assert_array_equal(loaded.standard_errors("sem", data=moths)["frequencies"],
                                  moth.standard_errors("sem")["frequencies"])


def test_one_not_fitted_error():
    from emkit.estimators.base import NotFittedError

    # once scikit-learn is imported the error is also its NotFittedError
    sklearn = pytest.importorskip("sklearn.exceptions")
    for est in (TinyPoissonMixture(), emkit.PoissonMixture(2), emkit.Exponential()):
        with pytest.raises((ValueError, AttributeError), match="not fitted yet") as info:
            est.standard_errors("sem")
        assert isinstance(info.value, sklearn.NotFittedError) and isinstance(info.value, NotFittedError)
        assert isinstance(info.value, ValueError) and isinstance(info.value, AttributeError)


# --------------------------------------------------------------------------- crafted files (issue 12)
# Each file below used to load and then predict NaN or fail later with an IndexError, a
# broadcasting error, a MemoryError or a RuntimeError; each is now refused at load with a
# ValueError naming the file and the field.
FAITHFUL = emkit.datasets.load_faithful()


@pytest.fixture(scope="module")
def gm_file(tmp_path_factory):
    est = emkit.GaussianMixture(2, random_state=0).fit(FAITHFUL)
    return est.save(tmp_path_factory.mktemp("gm") / "gm.emkit")


def _member_of(header, field):
    """The .npy member holding fitted field ``field`` ("means_" or "params_/means")."""
    value = header["fitted"]
    for part in field.split("/"):
        value = value[part]
    return value["__ndarray__"]


def _npy(arr):
    import io as pyio
    buf = pyio.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def _craft(src, out, *, arrays=None, header=None):
    """``src`` with the arrays of the named fitted fields replaced (``{"means_": array}``;
    the same value goes to ``params_['means']`` unless that field is named too) and the
    JSON header changed by ``header(h)``."""
    arrays = dict(arrays or {})
    with zipfile.ZipFile(src) as z:
        h = json.loads(z.read("emkit.json"))
        data = {name: z.read(name) for name in z.namelist()}
    for field, arr in list(arrays.items()):
        if field.endswith("_") and field[:-1] in h["fitted"]["params_"]:
            arrays.setdefault(f"params_/{field[:-1]}", arr)
    for field, arr in arrays.items():
        data[_member_of(h, field)] = arr if isinstance(arr, bytes) else _npy(arr)
    if header is not None:
        header(h)
    data["emkit.json"] = json.dumps(h).encode()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, raw in data.items():
            z.writestr(name, raw)
    return out


def _loaded_array(path, field):
    with zipfile.ZipFile(path) as z:
        return np.load(pyio_bytes(z.read(_member_of(json.loads(z.read("emkit.json")), field))))


def pyio_bytes(raw):
    import io as pyio
    return pyio.BytesIO(raw)


def _refused(path, *fragments):
    with pytest.raises(ValueError) as info:
        emkit.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_nan_parameter_is_refused(gm_file, tmp_path):
    means = _loaded_array(gm_file, "means_")
    means[0, 0] = np.nan
    p = _craft(gm_file, tmp_path / "nan.emkit", arrays={"means_": means})
    _refused(p, "means_ contains NaN")


def test_infinite_parameter_is_refused(gm_file, tmp_path):
    cov = _loaded_array(gm_file, "covariances_")
    cov[1, 0, 0] = np.inf
    p = _craft(gm_file, tmp_path / "inf.emkit", arrays={"covariances_": cov})
    _refused(p, "covariances_ contains inf")


def test_negative_weight_is_refused(gm_file, tmp_path):
    p = _craft(gm_file, tmp_path / "neg.emkit", arrays={"weights_": np.array([1.5, -0.5])})
    _refused(p, "weights_ has a negative value")


def test_negative_rate_is_refused(tmp_path):
    est = emkit.PoissonMixture(2, random_state=0).fit(HASSELBLAD["deaths"], sample_weight=HASSELBLAD["freq"])
    p = _craft(est.save(tmp_path / "ok.emkit"), tmp_path / "rate.emkit", arrays={"rates_": np.array([-1.0, 2.0])})
    _refused(p, "rates_ must be positive")


@pytest.mark.parametrize("name, arrays, message", [
    ("sum.emkit", {"weights_": np.array([0.3, 0.3])}, "weights_ must sum to 1"),
    ("rows.emkit", {"means_": np.zeros((3, 2))}, "means_ has shape (3, 2), expected (2, 2) for n_components=2 and n_features_in_=2"),
    ("flat.emkit", {"means_": np.zeros(4)}, "means_ has shape (4,), expected (2, 2)"),
    ("cov.emkit", {"covariances_": np.stack([np.eye(3)] * 2)}, "covariances_ has shape (2, 3, 3), expected (2, 2, 2)"),
    ("text.emkit", {"means_": np.array([["a", "b"], ["c", "d"]])}, "means_ has dtype <U1, expected numbers"),
    ("int.emkit", {"weights_": np.array([1, 0])}, "weights_ has dtype int64, expected float64 or float32"),
], ids=["non-normalised-weights", "means-too-many-rows", "one-dimensional-means", "wrong-covariance-shape", "string-array", "integer-parameters"])
def test_crafted_gaussian_file_is_refused_naming_the_field(gm_file, tmp_path, name, arrays, message):
    p = _craft(gm_file, tmp_path / name, arrays=arrays)
    _refused(p, message)


def test_weights_normalised_to_rounding_load(gm_file, tmp_path):
    # within the tolerance of emkit's Simplex constraint: accepted as they are
    w = _loaded_array(gm_file, "weights_")
    p = _craft(gm_file, tmp_path / "round.emkit", arrays={"weights_": w * (1 + 1e-9)})
    assert np.all(np.isfinite(emkit.load(p).predict_proba(FAITHFUL)))


def test_probability_above_one_is_refused(tmp_path):
    coins = emkit.datasets.load_two_coins()
    est = emkit.BinomialMixture(2, random_state=0).fit(coins["heads"], trials=coins["tosses"])
    p = _craft(est.save(tmp_path / "ok.emkit"), tmp_path / "p.emkit", arrays={"probs_": np.array([0.5, 1.2])})
    _refused(p, "probs_ must lie in [0, 1]")


def test_non_positive_definite_covariance_is_refused(gm_file, tmp_path):
    cov = _loaded_array(gm_file, "covariances_")
    cov[1] = [[1.0, 2.0], [2.0, 1.0]]  # symmetric, eigenvalues 3 and -1
    p = _craft(gm_file, tmp_path / "spd.emkit", arrays={"covariances_": cov})
    _refused(p, "covariances_[1] is not positive definite")


def test_non_symmetric_covariance_is_refused(gm_file, tmp_path):
    cov = _loaded_array(gm_file, "covariances_")
    cov[0, 0, 1] += 1.0
    p = _craft(gm_file, tmp_path / "sym.emkit", arrays={"covariances_": cov})
    _refused(p, "covariances_[0] is not symmetric")


def test_disagreeing_n_features_in_is_refused(gm_file, tmp_path):
    p = _craft(gm_file, tmp_path / "nfeat.emkit", header=lambda h: h["fitted"].update(n_features_in_=3))
    _refused(p, "means_ has shape (2, 2), expected (2, 3)", "n_features_in_=3")


def test_disagreeing_n_features_in_of_a_family_mixture_is_refused(tmp_path):
    est = emkit.PoissonMixture(2, random_state=0).fit(HASSELBLAD["deaths"], sample_weight=HASSELBLAD["freq"])
    p = _craft(est.save(tmp_path / "ok.emkit"), tmp_path / "nf.emkit", header=lambda h: h["fitted"].update(n_features_in_=2))
    _refused(p, "rates_ has shape (2,), expected (2, 2)", "n_features_in_=2")


def test_disagreeing_n_components_setting_is_refused(gm_file, tmp_path):
    p = _craft(gm_file, tmp_path / "k.emkit", header=lambda h: h["params"].update(n_components=3))
    _refused(p, "weights_ has shape (2,), expected (3,) for n_components=3")


def test_hidden_params_disagreeing_with_means_are_refused(gm_file, tmp_path):
    # params_ is what predict uses; means_ what the user reads: they must be the same numbers
    means = _loaded_array(gm_file, "means_")
    p = _craft(gm_file, tmp_path / "hidden.emkit", arrays={"means_": means, "params_/means": means + 1.0})
    _refused(p, "params_['means'] disagrees with means_")


def test_derived_attribute_disagreeing_with_params_is_refused(gm_file, tmp_path):
    prec = _loaded_array(gm_file, "precisions_")
    p = _craft(gm_file, tmp_path / "prec.emkit", arrays={"precisions_": prec * 2.0})
    _refused(p, "precisions_ disagrees with params_")


def test_model_state_disagreeing_with_settings_is_refused(gm_file, tmp_path):
    p = _craft(gm_file, tmp_path / "state.emkit", header=lambda h: h["model_state"].update(n_components=3))
    _refused(p, "model_state['n_components'] is 3 but the settings give 2")


def test_old_files_without_derived_attributes_still_load(gm_file, tmp_path):
    # a file holding each group once (params_ only): the public attributes are rebuilt from it
    def strip(h):
        for key in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
            del h["fitted"][key]

    with zipfile.ZipFile(gm_file) as z:
        h = json.loads(z.read("emkit.json"))
        keep = {_member_of(h, f"params_/{g}") for g in ("weights", "means", "covariances")}
        keep |= {name for name in z.namelist() if name not in {_member_of(h, k) for k in (
            "weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_")}}
    dropped = [n for n in zipfile.ZipFile(gm_file).namelist() if n not in keep]
    p = _rewrite(gm_file, tmp_path / "once.emkit", header=strip, drop=dropped)
    loaded, original = emkit.load(p), emkit.load(gm_file)
    _assert_same_fit(original, loaded)


def _huge_zero_member(path, member, n):
    """Rewrite ``member`` of ``path`` as a float64 .npy of ``n`` zeros, streamed (never in memory)."""
    import io as pyio
    with zipfile.ZipFile(path) as z:
        data = {name: z.read(name) for name in z.namelist() if name != member}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for name, raw in data.items():
            z.writestr(name, raw)
        with z.open(member, "w", force_zip64=True) as fh:
            head = pyio.BytesIO()
            np.lib.format.write_array_header_1_0(head, {"descr": "<f8", "fortran_order": False, "shape": (n,)})
            fh.write(head.getvalue())
            chunk = bytes(2**22)
            left = 8 * n
            while left:
                fh.write(chunk[:min(left, len(chunk))])
                left -= min(left, len(chunk))


def test_huge_expansion_is_refused(gm_file, tmp_path):
    # a loglik_trace_ of 12.5 million zeros: about 100 KB in the file, 100 MB expanded, for a
    # model whose parameters take 112 bytes; refused before it is decompressed
    p = _craft(gm_file, tmp_path / "bomb.emkit")
    with zipfile.ZipFile(p) as z:
        member = _member_of(json.loads(z.read("emkit.json")), "loglik_trace_")
    _huge_zero_member(p, member, 12_500_000)
    assert p.stat().st_size < 1_000_000
    _refused(p, "arrays would expand to", "loglik_trace_")


def test_huge_npy_header_is_refused(gm_file, tmp_path):
    import io as pyio
    head = pyio.BytesIO()
    n = 10_000_000_000_000  # 72.8 TiB of float64
    np.lib.format.write_array_header_1_0(head, {"descr": "<f8", "fortran_order": False, "shape": (n,)})
    p = _craft(gm_file, tmp_path / "tib.emkit", arrays={"loglik_trace_": head.getvalue() + bytes(16)})
    _refused(p, "loglik_trace_", "declares shape (10000000000000,)")


def test_encrypted_member_is_refused(gm_file, tmp_path):
    raw = bytearray(gm_file.read_bytes())
    with zipfile.ZipFile(gm_file) as z:
        info = z.getinfo("arrays/1.npy")
    raw[info.header_offset + 6] |= 0x1  # the local header's encryption flag
    # and the central directory's (its record starts with PK\x01\x02; flags at byte 8)
    at = raw.index(b"PK\x01\x02" + bytes(raw[raw.index(b"PK\x01\x02") + 4:][:0]))
    while True:
        name_len = int.from_bytes(raw[at + 28:at + 30], "little")
        if raw[at + 46:at + 46 + name_len] == b"arrays/1.npy":
            raw[at + 8] |= 0x1
            break
        at = raw.index(b"PK\x01\x02", at + 4)
    p = tmp_path / "enc.emkit"
    p.write_bytes(bytes(raw))
    _refused(p, "member arrays/1.npy is encrypted")


def test_member_encrypted_in_its_local_header_only_is_refused(gm_file, tmp_path):
    raw = bytearray(gm_file.read_bytes())
    with zipfile.ZipFile(gm_file) as z:
        info = z.getinfo("arrays/2.npy")
    raw[info.header_offset + 6] |= 0x1
    p = tmp_path / "enc2.emkit"
    p.write_bytes(bytes(raw))
    _refused(p, "member arrays/2.npy is encrypted")


def test_member_not_named_in_the_header_is_refused(gm_file, tmp_path):
    p = _rewrite(gm_file, tmp_path / "extra.emkit", extra={"arrays/99.npy": _npy(np.zeros(3))})
    _refused(p, "member arrays/99.npy is not named in emkit.json")


def test_cli_predict_on_a_refused_file_exits_1_with_one_line(gm_file, tmp_path, capsys):
    cli = pytest.importorskip("emkit.cli")
    pytest.importorskip("click")
    means = _loaded_array(gm_file, "means_")
    means[1, 1] = np.nan
    p = _craft(gm_file, tmp_path / "nan.emkit", arrays={"means_": means})
    data = tmp_path / "x.csv"
    data.write_text("eruptions,waiting\n3.6,79\n1.8,54\n")
    capsys.readouterr()
    assert cli.main(["predict", str(p), str(data)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.strip() == f"emkit: error: {p}: means_ contains NaN", err
