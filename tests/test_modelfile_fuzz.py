"""Fuzzing the model-file loader: a few hundred seeded mutations of saved files.

Every mutated file must either be refused with a ValueError naming the file, or load as an
estimator whose parameters are valid (finite, inside their constraints) and that predicts
finite probabilities. Anything else (an IndexError, a MemoryError, NaN probabilities) is a
loader bug. A seeded NumPy loop (hypothesis is not a dependency of emkit's tests).
"""

from __future__ import annotations

import io
import json
import warnings
import zipfile

import numpy as np
import pytest

import emkit
from emkit.core.params import UnitInterval

N_MUTATIONS = 420
SEED = 20240612


def _cases():
    faithful = np.asarray(emkit.datasets.load_faithful(), dtype=float)
    coins = emkit.datasets.load_two_coins()
    deaths = emkit.datasets.load_hasselblad_deaths()
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 3, size=(60, 2)).astype(float)
    binary = (rng.random((60, 4)) < np.where(np.arange(60)[:, None] < 30, 0.8, 0.2)).astype(float)
    expo = rng.exponential(2.0, size=40)
    moths = emkit.datasets.load_peppered_moth()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [
            (emkit.GaussianMixture(2, random_state=0).fit(faithful), lambda e: e.predict_proba(faithful)),
            (emkit.GaussianMixture(3, covariance_type="diag", random_state=0).fit(faithful),
             lambda e: e.predict_proba(faithful)),
            (emkit.GaussianMixture(2, covariance_type="tied", random_state=0).fit(faithful),
             lambda e: e.predict_proba(faithful)),
            (emkit.PoissonMixture(2, random_state=0).fit(deaths["deaths"], sample_weight=deaths["freq"]),
             lambda e: e.predict_proba(deaths["deaths"])),
            (emkit.BinomialMixture(2, random_state=0).fit(coins["heads"], trials=coins["tosses"]),
             lambda e: e.predict_proba(coins["heads"], trials=coins["tosses"])),
            (emkit.BernoulliMixture(2, random_state=0).fit(binary), lambda e: e.predict_proba(binary)),
            (emkit.CategoricalMixture(2, random_state=0).fit(codes), lambda e: e.predict_proba(codes)),
            (emkit.NormalMixture(2, random_state=0).fit(faithful[:, 0]), lambda e: e.predict_proba(faithful[:, 0])),
            (emkit.Exponential().fit(expo), lambda e: np.exp([e.score(expo) / len(expo)])),
            (emkit.AlleleFrequencies.from_dominance("C>I>T", names={"C": "carbonaria", "I": "insularia",
                                                                   "T": "typica"}).fit(moths),
             lambda e: np.asarray(e.params_["frequencies"])),
        ]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    out = []
    for i, (est, predict) in enumerate(_cases()):
        path = est.save(folder / f"case{i}.emkit")
        with zipfile.ZipFile(path) as z:
            header = json.loads(z.read("emkit.json"))
            arrays = {n: np.load(io.BytesIO(z.read(n))) for n in z.namelist() if n.endswith(".npy")}
        out.append((header, arrays, predict))
    return out


# --------------------------------------------------------------------------- mutations
_JSON_VALUES = [None, True, False, 0, 1, -1, 3, 2**40, 0.5, -0.5, 1e308, "x", "", [], {}, [1, 2], {"a": 1},
                {"__float__": "nan"}, {"__float__": "inf"}, {"__tuple__": [1]}, {"__ndarray__": "arrays/0.npy"},
                {"__ndarray__": "arrays/999.npy"}, {"__dict__": [[1, 2]]}]


def _paths(value, prefix=()):
    """Every (path) into the JSON tree, containers included."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, prefix + (i,))


def _mutate_json(header, rng):
    sections = [s for s in ("params", "fitted", "result", "model_state") if header.get(s)]
    section = sections[rng.integers(len(sections))]
    paths = [p for p in _paths(header[section]) if p]
    path = paths[rng.integers(len(paths))]
    parent = header[section]
    for key in path[:-1]:
        parent = parent[key]
    if isinstance(parent, dict) and rng.random() < 0.15:
        del parent[path[-1]]
        return f"json del {section}{list(path)}"
    value = _JSON_VALUES[rng.integers(len(_JSON_VALUES))]
    parent[path[-1]] = json.loads(json.dumps(value))
    return f"json {section}{list(path)} = {value!r}"


def _mutate_array(arr, rng):
    try:
        return _change(np.array(arr, copy=True), rng.integers(14), rng)
    except (TypeError, ValueError, IndexError):  # e.g. NaN into an integer array, an empty one
        return arr


def _change(arr, kind, rng):
    if arr.size and kind == 0:
        arr.reshape(-1)[rng.integers(arr.size)] = np.nan
    elif arr.size and kind == 1:
        arr.reshape(-1)[rng.integers(arr.size)] = [np.inf, -np.inf][rng.integers(2)]
    elif arr.size and kind == 2:
        arr.reshape(-1)[rng.integers(arr.size)] *= -1.0
    elif arr.size and kind == 3:
        arr.reshape(-1)[rng.integers(arr.size)] = 0.0
    elif kind == 4:
        arr = arr * [2.0, 0.5, 1 + 1e-9, 1 + 1e-4, 1e-3][rng.integers(5)]
    elif kind == 5:
        arr = arr.ravel()
    elif kind == 6:
        arr = arr[:-1] if arr.ndim and len(arr) > 1 else arr[None]
    elif kind == 7:
        arr = np.concatenate([arr, arr[:1]]) if arr.ndim else np.stack([arr, arr])
    elif kind == 8:
        arr = arr.T.copy() if arr.ndim >= 2 else arr.reshape(-1, 1)
    elif kind == 9:
        arr = arr.astype([np.float32, np.int64, np.bool_, np.complex128, "U3", np.float16][rng.integers(6)])
    elif kind == 10 and arr.ndim >= 2 and arr.shape[-1] >= 2:
        arr[..., 0, 1] += 1.0  # a matrix no longer symmetric
    elif kind == 11 and arr.ndim >= 2 and arr.shape[-1] >= 2:
        arr[..., 0, 1] = arr[..., 1, 0] = 10 * np.abs(arr).max() + 1  # symmetric, not positive definite
    elif kind == 12:
        arr = np.zeros((0,) + arr.shape[1:])
    else:
        arr = arr + rng.normal(scale=0.1, size=arr.shape) if arr.dtype.kind == "f" else arr
    return arr


def _member(value):
    """The member an ``{"__ndarray__": name}`` entry names (None for anything else)."""
    if isinstance(value, dict) and len(value) == 1 and isinstance(value.get("__ndarray__"), str):
        return value["__ndarray__"]
    return None


def _members_of(value, out):
    if isinstance(value, dict):
        if _member(value) is not None:
            out.append(_member(value))
        for v in value.values():
            _members_of(v, out)
    elif isinstance(value, list):
        for v in value:
            _members_of(v, out)
    return out


def _mutate_arrays(header, arrays, rng):
    fitted = header["fitted"]
    params = fitted.get("params_") or {}
    if not isinstance(params, dict):
        params = {}
    groups = [g for g in params if _member(params[g]) in arrays]
    if groups and rng.random() < 0.6:
        # the same change to a group's public attribute and its params_ copy
        group = groups[rng.integers(len(groups))]
        new = _mutate_array(arrays[params[group]["__ndarray__"]], rng)
        arrays[params[group]["__ndarray__"]] = new
        public = _member(fitted.get(f"{group}_"))
        if public in arrays:
            arrays[public] = new
        return f"group {group}: {new.dtype} {new.shape}"
    names = [n for n in _members_of(header, []) if n in arrays]
    if not names:
        return "no array"
    name = names[rng.integers(len(names))]
    arrays[name] = _mutate_array(arrays[name], rng)
    return f"array {name}: {arrays[name].dtype} {arrays[name].shape}"


def _write(path, header, arrays):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("emkit.json", json.dumps(header))
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.save(buf, arr)
            z.writestr(name, buf.getvalue())


# --------------------------------------------------------------------------- what a loaded file must be
def _assert_valid(est, predict, what):
    model = est.model_
    for group, constraint in model.param_spec.items():
        value = np.asarray(est.params_[group], dtype=float)
        assert np.all(np.isfinite(value)), what
        if isinstance(constraint, UnitInterval):  # the loader accepts EM's rounding (a few ulps)
            assert np.all(value >= -1e-15) and np.all(value <= 1 + 1e-15), what
        else:
            assert constraint.is_valid(value), (what, group)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = np.asarray(predict(est), dtype=float)
    assert np.all(np.isfinite(out)), what


def test_fuzzed_model_files_load_valid_or_raise_value_error(saved, tmp_path):
    rng = np.random.default_rng(SEED)
    path = tmp_path / "fuzz.emkit"
    outcomes = {"refused": 0, "loaded": 0}
    for i in range(N_MUTATIONS):
        header, arrays, predict = saved[i % len(saved)]
        header, arrays = json.loads(json.dumps(header)), dict(arrays)
        what = [_mutate_json(header, rng) if rng.random() < 0.45 else _mutate_arrays(header, arrays, rng)
                for _ in range(1 + (rng.random() < 0.2))]
        _write(path, header, arrays)
        what = f"mutation {i} of case {i % len(saved)}: {what}"
        try:
            est = emkit.load(path)
        except ValueError as exc:
            assert str(exc).startswith(f"{path}: "), (what, str(exc))
            assert "\n" not in str(exc), (what, str(exc))
            outcomes["refused"] += 1
            continue
        outcomes["loaded"] += 1
        if hasattr(est, "params_"):
            _assert_valid(est, predict, what)
    # the mutations reach both outcomes: most files are refused, harmless changes load
    assert outcomes["refused"] > N_MUTATIONS // 2 and outcomes["loaded"] > 10, outcomes


def test_unmutated_files_load_and_predict(saved, tmp_path):
    for i, (header, arrays, predict) in enumerate(saved):
        path = tmp_path / f"same{i}.emkit"
        _write(path, header, arrays)
        _assert_valid(emkit.load(path), predict, f"case {i}")
