"""Model files: writing and reading fitted estimators without pickle.

This is the implementation behind :meth:`EMEstimator.save <emkit.estimators.base.EMEstimator.save>`,
:func:`emkit.io.save` and :func:`emkit.io.load` (``emkit.io`` is the public face; the code
lives on the estimator floor so that ``EMEstimator.save`` can call it without importing a
floor above its own).

File format (``format_version`` 1)
----------------------------------
A model file is a ZIP archive holding

``emkit.json``
    UTF-8 JSON object::

        {"format": "emkit-model", "format_version": 1, "emkit_version": "0.1.0",
         "estimator": "BinomialMixture",          # a name of emkit.estimators.registry
         "params": {...},                          # constructor settings (get_params())
         "fitted": {...},                          # fitted attributes ending in "_"
         "result": {...},                          # restarts' traces, stop rule, ...
         "model_state": {...},                     # public plain-data attributes of model_
         "dropped": ["callback"]}                  # settings that cannot be stored

    Values are JSON numbers, strings, booleans, null, lists and objects, plus four tagged
    objects: ``{"__ndarray__": "arrays/3.npy"}`` (an array stored next to the JSON),
    ``{"__tuple__": [...]}``, ``{"__float__": "nan" | "inf" | "-inf"}`` and
    ``{"__dict__": [[key, value], ...]}`` for dicts whose keys are not all strings.
``arrays/<i>.npy``
    NumPy ``.npy`` files, read with ``allow_pickle=False`` (object arrays are refused when
    saving), so arrays round-trip bit for bit.

What is stored: settings and fitted parameters only. The training data never is (an
estimator does not keep it in anything that is saved or pickled), so a file's size does not
grow with the number of rows fitted.

Loading a file from someone else can never run code: there is no pickle, and the estimator
class is looked up in the registry of :mod:`emkit.estimators.registry` (built-in names, or
classes added with :func:`~emkit.estimators.registry.register_estimator`); nothing is
imported by a name read from the file. Arrays of any library (torch, CuPy) are stored as
NumPy arrays and come back as NumPy.

Integrity: every member is read back from its raw bytes; its CRC must match, and a
compressed member's stream must end exactly at the stored size (zipfile alone stops reading
at the uncompressed size and so misses damage to the last bytes of a stream).
"""

from __future__ import annotations

import io as _io
import json
import math
import os
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from emkit._version import __version__
from emkit.core.arrays import to_numpy
from emkit.engine import EMResult, RestartSummary
from emkit.estimators.registry import estimator_class, known_names, registry_name

FORMAT_NAME = "emkit-model"
FORMAT_VERSION = 1
JSON_NAME = "emkit.json"

#: largest total uncompressed size of a model file's members (a guard against zip bombs)
MAX_UNCOMPRESSED_BYTES = 4 * 2**30

# fitted attributes rebuilt on load rather than stored
_REBUILT = ("model_", "result_")

# a ZIP local file header: signature, versions and flags, then (at byte 26) the name and
# extra-field lengths
_LOCAL_HEADER = struct.Struct("<4s22xHH")
_LOCAL_SIGNATURE = b"PK\x03\x04"


def _class_name(estimator) -> str:
    cls = type(estimator)
    name = registry_name(cls)
    if name is None:
        raise ValueError(f"cannot save a {cls.__name__}: only emkit estimators and classes added with "
                         f"emkit.io.register_estimator can be saved and loaded")
    return name


def _loadable_class(name: str, path: str) -> type:
    try:
        return estimator_class(name)
    except KeyError:
        raise ValueError(f"{path}: unknown estimator {name!r}; this version of emkit can load "
                         f"{known_names()}") from None
    except (ImportError, AttributeError):
        raise ValueError(f"{path}: estimator {name!r} is not available in this version of emkit") from None


# --------------------------------------------------------------------------- encoding
class _Unstorable(Exception):
    """A value with no JSON / .npy form (functions, generators, arbitrary objects)."""


def _is_array(value: Any) -> bool:
    return isinstance(value, np.ndarray) or (
        hasattr(value, "__array_namespace__") or type(value).__module__.startswith(("torch", "cupy")))


class _Encoder:
    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def encode(self, value: Any) -> Any:
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, np.bool_):
            return bool(value)
        if isinstance(value, (int, np.integer)):
            return int(value)
        if isinstance(value, (float, np.floating)) and not isinstance(value, np.ndarray):
            if type(value) not in (float, np.float64):  # float32 / float16 scalars keep their dtype
                return self._array(np.asarray(value))
            value = float(value)
            return value if math.isfinite(value) else {"__float__": repr(value)}
        if _is_array(value):
            return self._array(to_numpy(value))
        if isinstance(value, tuple):
            return {"__tuple__": [self.encode(v) for v in value]}
        if isinstance(value, list):
            return [self.encode(v) for v in value]
        if isinstance(value, dict):
            if all(isinstance(k, str) for k in value):
                if any(k.startswith("__") and k.endswith("__") for k in value):
                    return {"__dict__": [[k, self.encode(v)] for k, v in value.items()]}
                return {k: self.encode(v) for k, v in value.items()}
            return {"__dict__": [[self.encode(k), self.encode(v)] for k, v in value.items()]}
        raise _Unstorable(type(value).__name__)

    def _array(self, arr: np.ndarray) -> dict:
        if arr.dtype.hasobject:
            raise _Unstorable("object array")
        name = f"arrays/{len(self.arrays)}.npy"
        self.arrays[name] = arr
        return {"__ndarray__": name}


class _Decoder:
    """Turns the tagged JSON back into values; ``members`` maps member names to their bytes
    (or is an open :class:`zipfile.ZipFile`)."""

    def __init__(self, members: Mapping[str, bytes] | zipfile.ZipFile, path: str) -> None:
        if isinstance(members, zipfile.ZipFile):
            members = {name: members.read(name) for name in members.namelist()}
        self.members = members
        self.path = path

    def decode(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.decode(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (tag, inner), = value.items()
            if tag == "__ndarray__":
                return self._array(inner)
            if tag == "__tuple__":
                return tuple(self.decode(v) for v in self._list(inner, tag))
            if tag == "__float__":
                if inner not in ("nan", "inf", "-inf"):
                    raise ValueError(f"{self.path}: bad special float {inner!r}")
                return float(inner)
            if tag == "__dict__":
                return {self._key(self.decode(k)): self.decode(v) for k, v in self._pairs(inner)}
        return {k: self.decode(v) for k, v in value.items()}

    def _list(self, value, tag):
        if not isinstance(value, list):
            raise ValueError(f"{self.path}: malformed {tag} entry in {JSON_NAME}")
        return value

    def _pairs(self, value):
        pairs = self._list(value, "__dict__")
        if not all(isinstance(p, list) and len(p) == 2 for p in pairs):
            raise ValueError(f"{self.path}: malformed __dict__ entry in {JSON_NAME}")
        return pairs

    def _key(self, key):
        try:
            hash(key)
        except TypeError:
            raise ValueError(f"{self.path}: unhashable dict key in {JSON_NAME}") from None
        return key

    def _array(self, name: Any) -> np.ndarray:
        if not isinstance(name, str) or name not in self.members:
            raise ValueError(f"{self.path}: array {name!r} named in {JSON_NAME} is missing from the file")
        try:
            return np.load(_io.BytesIO(self.members[name]), allow_pickle=False)
        except (EOFError, OSError, ValueError) as exc:
            raise ValueError(f"{self.path}: array {name} is corrupted ({exc})") from None


# --------------------------------------------------------------------------- save
def _fitted_attributes(estimator) -> dict[str, Any]:
    return {k: v for k, v in vars(estimator).items()
            if k.endswith("_") and not k.startswith("_") and k not in _REBUILT}


def _result_summary(result) -> dict[str, Any]:
    if result is None:
        return {}
    return {
        "stop": result.stop, "tol": result.tol, "max_iter": result.max_iter,
        "fixed": tuple(result.fixed), "algorithm": result.algorithm, "accelerate": result.accelerate,
        "best_restart": result.best_restart,
        "restarts": [{"loglik": r.loglik, "loglik_trace": np.asarray(r.loglik_trace),
                      "n_iter": r.n_iter, "converged": r.converged, "init_params": r.init_params}
                     for r in result.restarts],
    }


def _model_state(model, enc: _Encoder) -> dict[str, Any]:
    """The fitted model's constructor arguments that have a plain stored form (e.g. a centring
    vector chosen from the data); scratch memory and caches are never stored."""
    state = {}
    names = model.constructor_arguments() if hasattr(model, "constructor_arguments") else ()
    for key in names:
        if not hasattr(model, key):
            continue
        value = getattr(model, key)
        try:
            state[key] = enc.encode(value)
        except _Unstorable:
            pass
    return state


def save(estimator, path: str | os.PathLike) -> Path:
    """Write a fitted (or unfitted) emkit estimator to ``path``; see the module docstring.

    Constructor settings that have no safe stored form (a ``callback`` function, a NumPy
    ``Generator`` as ``random_state``) are stored as ``None`` and listed under ``"dropped"``.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    name = _class_name(estimator)
    enc = _Encoder()
    dropped: list[str] = []
    params = {}
    for key, value in estimator.get_params().items():
        try:
            params[key] = enc.encode(value)
        except _Unstorable:
            params[key] = None
            dropped.append(key)
    fitted = {}
    for key, value in _fitted_attributes(estimator).items():
        try:
            fitted[key] = enc.encode(value)
        except _Unstorable:
            dropped.append(key)
    try:
        result = enc.encode(_result_summary(getattr(estimator, "result_", None)))
    except _Unstorable:
        result = {}
    model_state = _model_state(getattr(estimator, "model_", None), enc)
    header = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "emkit_version": __version__,
              "estimator": name, "params": params, "fitted": fitted, "result": result,
              "model_state": model_state, "dropped": dropped}
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(JSON_NAME, json.dumps(header, indent=1, allow_nan=False))
        for array_name, arr in enc.arrays.items():
            buf = _io.BytesIO()
            np.save(buf, arr, allow_pickle=False)
            archive.writestr(array_name, buf.getvalue())
    os.replace(tmp, path)  # never leave a half-written model file under the real name
    return path


# --------------------------------------------------------------------------- load
def _read_members(archive: zipfile.ZipFile, fh, shown: str) -> dict[str, bytes]:
    """Every member's bytes, checked: local header, compressed stream, size and CRC."""
    infos = archive.infolist()
    total = sum(info.file_size for info in infos)
    if total > MAX_UNCOMPRESSED_BYTES:
        raise ValueError(f"{shown}: members would expand to {total} bytes, more than the "
                         f"{MAX_UNCOMPRESSED_BYTES} a model file may hold")
    members = {}
    for info in infos:
        bad = f"{shown}: member {info.filename} is corrupted"
        if info.flag_bits & 0x1:
            raise ValueError(f"{shown}: member {info.filename} is encrypted")
        fh.seek(info.header_offset)
        head = fh.read(_LOCAL_HEADER.size)
        if len(head) != _LOCAL_HEADER.size:
            raise ValueError(f"{bad} (truncated header)")
        signature, name_length, extra_length = _LOCAL_HEADER.unpack(head)
        stored_name = fh.read(name_length)
        expected_name = info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437")
        if signature != _LOCAL_SIGNATURE or stored_name != expected_name:
            raise ValueError(f"{bad} (bad local header)")
        fh.seek(extra_length, os.SEEK_CUR)
        raw = fh.read(info.compress_size)
        if len(raw) != info.compress_size:
            raise ValueError(f"{bad} (truncated data)")
        if info.compress_type == zipfile.ZIP_STORED:
            data = raw
        elif info.compress_type == zipfile.ZIP_DEFLATED:
            stream = zlib.decompressobj(-zlib.MAX_WBITS)
            data = stream.decompress(raw, info.file_size + 1)
            if not stream.eof or stream.unused_data or stream.unconsumed_tail:
                raise ValueError(f"{bad} (the compressed stream does not end where the archive says)")
        else:  # other methods (bzip2, lzma): zipfile's own reader checks the CRC
            data = archive.read(info)
        if len(data) != info.file_size or zlib.crc32(data) != info.CRC:
            raise ValueError(f"{bad} (CRC mismatch)")
        members[info.filename] = data
    return members


def _read_header(members: Mapping[str, bytes], path: str) -> dict:
    if JSON_NAME not in members:
        raise ValueError(f"{path}: not an emkit model file ({JSON_NAME} is missing)")
    try:
        header = json.loads(members[JSON_NAME].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: {JSON_NAME} is not valid JSON ({exc})") from None
    except RecursionError:
        raise ValueError(f"{path}: {JSON_NAME} is nested too deeply") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise ValueError(f"{path}: not an emkit model file (format is "
                         f"{header.get('format') if isinstance(header, dict) else None!r})")
    version = header.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError(f"{path}: format_version missing or not an integer")
    if version > FORMAT_VERSION:
        raise ValueError(f"{path}: format version {version} is newer than this emkit reads "
                         f"({FORMAT_VERSION}); upgrade emkit")
    for key, kind in (("estimator", str), ("params", dict), ("fitted", dict)):
        if not isinstance(header.get(key), kind):
            raise ValueError(f"{path}: {JSON_NAME} has no valid {key!r} entry")
    return header


def load(path: str | os.PathLike):
    """Read an estimator written by :func:`save` (or ``estimator.save``).

    Rebuilds the estimator from its constructor settings, restores the fitted attributes,
    ``model_`` (from ``_make_model()``) and a ``result_`` with the log-likelihood trace and
    restarts, so that ``predict``, ``score``, ``sample`` and plots work as before saving.
    Methods that need the training data (standard errors) take it as an argument.

    Raises
    ------
    ValueError
        Naming the file and the problem, for a missing, truncated, corrupted or foreign file.
    """
    shown = os.fspath(path)
    if not Path(shown).is_file():
        raise ValueError(f"{shown}: no such model file")
    try:
        with open(shown, "rb") as fh, zipfile.ZipFile(fh) as archive:
            members = _read_members(archive, fh, shown)
        header = _read_header(members, shown)
        dec = _Decoder(members, shown)
        params = dec.decode(header["params"])
        fitted = dec.decode(header["fitted"])
        result = dec.decode(header.get("result") or {})
        model_state = dec.decode(header.get("model_state") or {})
    except RecursionError:
        raise ValueError(f"{shown}: {JSON_NAME} is nested too deeply") from None
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{shown}: not an emkit model file or truncated ({exc})") from None
    except (EOFError, OSError, NotImplementedError, zlib.error) as exc:  # damaged streams inside the zip
        raise ValueError(f"{shown}: corrupted model file ({exc})") from None
    cls = _loadable_class(header["estimator"], shown)
    try:
        estimator = cls(**params)
    except TypeError as exc:
        raise ValueError(f"{shown}: settings do not match {cls.__name__} ({exc})") from None
    for key, value in fitted.items():
        if not (isinstance(key, str) and key.endswith("_") and not key.startswith("_")):
            raise ValueError(f"{shown}: {key!r} is not a fitted attribute name")
        setattr(estimator, key, value)
    if "params_" in fitted:
        _rebuild_fit(estimator, result if isinstance(result, dict) else {},
                     model_state if isinstance(model_state, dict) else {})
    return estimator


def _rebuild_fit(estimator, result: dict, model_state: dict) -> None:
    """``model_`` and a minimal ``result_`` for a loaded fitted estimator."""
    model = estimator._make_model()
    # the stored constructor arguments that the freshly built model has too: a new model is
    # built with them (nothing is written onto a model, and nothing new is injected)
    names = model.constructor_arguments() if hasattr(model, "constructor_arguments") else ()
    state = {key: value for key, value in model_state.items() if isinstance(key, str) and key in names}
    if state and hasattr(model, "replace"):
        model = model.replace(**state)
    estimator.model_ = model
    params = estimator.params_
    trace = np.asarray(getattr(estimator, "loglik_trace_", [getattr(estimator, "loglik_", np.nan)]))
    restarts = [RestartSummary(r.get("loglik", np.nan), np.asarray(r.get("loglik_trace", [])),
                               r.get("n_iter", 0), r.get("converged", False), r.get("init_params", {}))
                for r in result.get("restarts", []) if isinstance(r, dict)]
    estimator.result_ = EMResult(
        params=params, loglik=float(getattr(estimator, "loglik_", trace[-1] if trace.size else np.nan)),
        loglik_trace=trace, n_iter=int(getattr(estimator, "n_iter_", len(trace) - 1)),
        converged=bool(getattr(estimator, "converged_", False)),
        n_em_evaluations=int(getattr(estimator, "n_em_evaluations_", 0)), params_history=None,
        restarts=restarts, best_restart=int(result.get("best_restart", 0)), model=model,
        stop=str(result.get("stop", getattr(estimator, "stop", "loglik"))),
        tol=float(result.get("tol", getattr(estimator, "tol", 0.0) or 0.0)),
        max_iter=int(result.get("max_iter", getattr(estimator, "max_iter", 0) or 0)),
        fixed=tuple(result.get("fixed", ())), algorithm=str(result.get("algorithm", "em")),
        accelerate=result.get("accelerate"))
