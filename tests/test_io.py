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


def test_zip_without_header(saved, tmp_path):
    p = _rewrite(saved, tmp_path / "x.emkit", drop=("emkit.json",))
    with pytest.raises(ValueError, match="emkit.json is missing"):
        emkit.load(p)


def test_wrong_format_name(saved, tmp_path):
    p = _rewrite(saved, tmp_path / "x.emkit", header=lambda h: h.update(format="other"))
    with pytest.raises(ValueError, match="not an emkit model file"):
        emkit.load(p)


def test_newer_format_version(saved, tmp_path):
    p = _rewrite(saved, tmp_path / "x.emkit", header=lambda h: h.update(format_version=99))
    with pytest.raises(ValueError, match="format version 99 is newer"):
        emkit.load(p)


def test_unknown_estimator_is_never_imported(saved, tmp_path):
    p = _rewrite(saved, tmp_path / "x.emkit", header=lambda h: h.update(estimator="os.system"))
    with pytest.raises(ValueError, match="unknown estimator 'os.system'"):
        emkit.load(p)


def test_missing_array(saved, tmp_path):
    p = _rewrite(saved, tmp_path / "x.emkit", drop=("arrays/0.npy",))
    with pytest.raises(ValueError, match="arrays/0.npy.*missing"):
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

    for est in (TinyPoissonMixture(), emkit.PoissonMixture(2), emkit.Exponential()):
        with pytest.raises((ValueError, AttributeError), match="not fitted yet") as info:
            est.standard_errors("sem")
        sklearn = pytest.importorskip("sklearn.exceptions")
        assert type(info.value) in (sklearn.NotFittedError, NotFittedError)
        assert isinstance(info.value, ValueError) and isinstance(info.value, AttributeError)
