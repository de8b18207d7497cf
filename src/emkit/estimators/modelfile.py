"""Model files: writing and reading fitted estimators without pickle.

This is the implementation behind :meth:`EMEstimator.save <emkit.estimators.base.EMEstimator.save>`,
:func:`emkit.io.save` and :func:`emkit.io.load` (``emkit.io`` is the public face; the code
lives with the estimators so that ``EMEstimator.save`` can call it without importing
:mod:`emkit.io`).

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

Checks at load
--------------
Every failure is a one-line ``ValueError`` naming the file and the field
(``"model.emkit: means_ has shape (3, 2), expected (2, 2) for n_components=2 and
n_features_in_=2"``); nothing else escapes :func:`load`.

* The archive: no encrypted member (central or local header), no member twice, no member that
  ``emkit.json`` does not name; ``emkit.json`` at most :data:`MAX_JSON_BYTES`.
* Expansion, before any array is decompressed: each ``.npy`` header is read alone and its
  shape and dtype must account for the member's size exactly (a header claiming terabytes is
  refused, not allocated); the parameters' declared shapes are checked against the settings;
  all arrays together may expand to at most :data:`ARRAY_ALLOWANCE_BYTES` plus
  ``PARAMETER_COPIES + number of restarts`` times the bytes of ``params_``.
* Dtypes: arrays hold numbers (settings may hold text, e.g. allele names); parameter groups
  are float64 or float32.
* Parameters (``params_`` and each public copy such as ``means_``), against the settings:
  exactly the model's groups; shapes from ``n_components``, ``covariance_type``,
  ``n_features_in_`` (inferred from the parameters when absent) and ``n_categories_``;
  finite values inside each group's constraint (:mod:`emkit.core.params`): a simplex within
  :class:`~emkit.core.params.Simplex`'s tolerance, probabilities in [0, 1] (a few ulps of
  rounding accepted), positive rates and variances, symmetric positive definite covariances
  (:func:`~emkit.core.validation.is_symmetric_positive_definite`).
* One source of truth: ``params_`` is what ``predict`` uses. A public copy of a group
  (``means_``) must hold exactly the same numbers; the attributes the estimator derives from
  its parameters (``_publish``: ``precisions_``, ``frequencies_``, ``rate_``...) are derived
  again from ``params_``, and a stored value that differs beyond rounding is refused. A file
  without them (each group stored once, in ``params_``) loads with them rebuilt.
* The rest: counts, flags, traces and statistics have their types and finite values; the
  stored model state must agree with the model the settings build (a centring vector of the
  data is a finite vector of ``n_features_in_`` entries); the restart summaries are
  well-formed.
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
from typing import Any, Mapping, cast

import numpy as np

from emkit._version import __version__
from emkit.core.arrays import to_numpy
from emkit.core.params import Positive, Simplex, SymmetricPositiveDefinite, UnitInterval
from emkit.core.validation import is_symmetric, is_symmetric_positive_definite
from emkit.engine import EMResult, RestartSummary
from emkit.estimators.registry import estimator_class, known_names, registry_name
from emkit.models.alleles import AlleleModel
from emkit.models.exponential import ExponentialModel
from emkit.models.families import Categorical
from emkit.models.gaussian import GaussianMixtureModel
from emkit.models.mixture import FiniteMixtureModel

FORMAT_NAME = "emkit-model"
FORMAT_VERSION = 1
JSON_NAME = "emkit.json"

#: largest total uncompressed size of a model file's members (a guard against zip bombs)
MAX_UNCOMPRESSED_BYTES = 4 * 2**30
#: largest uncompressed ``emkit.json``
MAX_JSON_BYTES = 64 * 2**20
#: what a file's arrays may expand to: this allowance (traces, settings) plus
#: ``PARAMETER_COPIES + number of restarts`` times the bytes of its parameters (``params_``)
ARRAY_ALLOWANCE_BYTES = 64 * 2**20
PARAMETER_COPIES = 16

# the general-purpose flags of an encrypted member (traditional and strong encryption)
_ENCRYPTED_FLAGS = 0x1 | 0x40
# bytes of an .npy member read to learn its shape and dtype (NumPy's largest header)
_NPY_HEAD_BYTES = 10_000 + 16
# a probability may be this many ulps outside [0, 1] (EM's rounding) and still load
_ULP_SLACK = 8

# fitted attributes rebuilt on load rather than stored
_REBUILT = ("model_", "result_")

# a ZIP local file header: signature, version, flags (byte 6), then (at byte 26) the name and
# extra-field lengths
_LOCAL_HEADER = struct.Struct("<4s2xH18xHH")
_LOCAL_SIGNATURE = b"PK\x03\x04"


#: constructor settings renamed since format version 1 was written: estimator -> {old: new}
#: (a file written before the rename loads under the new name)
_RENAMED_SETTINGS = {"NormalMixture": {"variances_init": "covariances_init"}}


def _renamed_settings(estimator_name: Any, params: Any) -> Any:
    renames = _RENAMED_SETTINGS.get(estimator_name) if isinstance(estimator_name, str) else None
    if not renames or not isinstance(params, dict):
        return params
    return {renames.get(k, k) if renames.get(k, k) not in params else k: v for k, v in params.items()}


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


class _Stub:
    """An array of the file not yet decompressed: what its ``.npy`` header declares."""

    __slots__ = ("member", "shape", "dtype", "nbytes", "where")

    def __init__(self, member: str, shape: tuple, dtype: np.dtype, nbytes: int, where: str) -> None:
        self.member, self.shape, self.dtype, self.nbytes, self.where = member, shape, dtype, nbytes, where

    @property
    def ndim(self) -> int:
        return len(self.shape)


class _Decoder:
    """Turns the tagged JSON back into values; ``members`` maps member names to their bytes
    (or is an open :class:`zipfile.ZipFile`), or is an :class:`_Archive`, whose arrays then
    come back as :class:`_Stub` (shape and dtype read from the ``.npy`` header only) until
    :meth:`materialize` decompresses them."""

    def __init__(self, members: Mapping[str, bytes] | zipfile.ZipFile | "_Archive", path: str) -> None:
        if isinstance(members, zipfile.ZipFile):
            members = {name: members.read(name) for name in members.namelist()}
        self.members = members
        self.lazy = isinstance(members, _Archive)
        self.path = path
        self.referenced: set[str] = set()
        self._loaded: dict[str, np.ndarray] = {}

    def decode(self, value: Any, where: str = "", text_ok: bool = False) -> Any:
        """``where`` names the field in messages; ``text_ok``: string arrays are allowed
        (settings such as allele names), else arrays must hold numbers."""
        if isinstance(value, list):
            return [self.decode(v, f"{where}[{i}]", text_ok) for i, v in enumerate(value)]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (tag, inner), = value.items()
            if tag == "__ndarray__":
                return self._array(inner, where, text_ok)
            if tag == "__tuple__":
                return tuple(self.decode(v, f"{where}[{i}]", text_ok) for i, v in enumerate(self._list(inner, tag)))
            if tag == "__float__":
                if inner not in ("nan", "inf", "-inf"):
                    raise ValueError(f"{self.path}: bad special float {inner!r}")
                return float(inner)
            if tag == "__dict__":
                return {self._key(self.decode(k, where, text_ok)): self.decode(v, _child(where, k), text_ok)
                        for k, v in self._pairs(inner)}
        return {k: self.decode(v, _child(where, k), text_ok) for k, v in value.items()}

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

    def _array(self, name: Any, where: str, text_ok: bool) -> np.ndarray | _Stub:
        if not isinstance(name, str) or name == JSON_NAME or name not in self.members:
            raise ValueError(f"{self.path}: array {name!r} named in {JSON_NAME} is missing from the file")
        self.referenced.add(name)
        if not self.lazy:
            try:
                return np.load(_io.BytesIO(cast(Mapping[str, bytes], self.members)[name]), allow_pickle=False)
            except (EOFError, OSError, ValueError) as exc:
                raise ValueError(f"{self.path}: array {name} is corrupted ({exc})") from None
        return self._stub(name, where or name, text_ok)

    def _stub(self, name: str, where: str, text_ok: bool) -> _Stub:
        """The shape and dtype an ``.npy`` member declares, checked against its size before
        anything but the header is decompressed (a header may claim terabytes)."""
        archive = cast(_Archive, self.members)  # stubs only come from a lazy decoder (an _Archive)
        head = _io.BytesIO(archive.head(name, _NPY_HEAD_BYTES))
        try:
            version = np.lib.format.read_magic(head)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(head, max_header_size=_NPY_HEAD_BYTES)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(head, max_header_size=_NPY_HEAD_BYTES)
            else:
                raise ValueError(f"unsupported .npy version {version}")
        except Exception as exc:  # NumPy's header parser raises many kinds (tokenize, ast, ...)
            raise ValueError(f"{self.path}: array {name} is corrupted ({type(exc).__name__}: {exc})") from None
        if dtype.hasobject:
            raise ValueError(f"{self.path}: array {name} is corrupted ({where} holds Python objects, which a "
                             f"model file never does: pickled data is refused)")
        kinds = "biufcUS" if text_ok else "biuf"
        if dtype.kind not in kinds or dtype.fields is not None or dtype.subdtype is not None:
            raise ValueError(f"{self.path}: {where} has dtype {dtype}, expected "
                             f"{'numbers or text' if text_ok else 'numbers'}")
        nbytes = math.prod(shape) * dtype.itemsize
        held = archive.size(name) - head.tell()
        if held != nbytes:
            raise ValueError(f"{self.path}: {where} (array {name}) declares shape {shape} of {dtype}, "
                             f"{nbytes} bytes, but the file holds {max(held, 0)} bytes for it")
        return _Stub(name, tuple(shape), dtype, nbytes, where)

    def materialize(self, value: Any) -> Any:
        """``value`` with every :class:`_Stub` replaced by its array (decompressed and checked)."""
        if isinstance(value, _Stub):
            if value.member not in self._loaded:
                data = cast(_Archive, self.members).read(value.member)  # stubs: a lazy decoder's
                try:
                    self._loaded[value.member] = np.load(_io.BytesIO(data), allow_pickle=False)
                except (EOFError, OSError, ValueError) as exc:
                    raise ValueError(f"{self.path}: array {value.member} is corrupted ({exc})") from None
            return self._loaded[value.member]
        if isinstance(value, list):
            return [self.materialize(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self.materialize(v) for v in value)
        if isinstance(value, dict):
            return {k: self.materialize(v) for k, v in value.items()}
        return value


def _child(where: str, key: Any) -> str:
    """The name of entry ``key`` of the field ``where`` in messages (``params_['means']``)."""
    return str(key) if not where else f"{where}[{key!r}]"


def _stubs(value: Any):
    """Every :class:`_Stub` inside ``value``."""
    if isinstance(value, _Stub):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _stubs(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _stubs(v)


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


def save(estimator: Any, path: str | os.PathLike) -> Path:
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
        if key == "feature_names_in_":  # an object array of column names: stored as a list
            value = [str(v) for v in value]
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
class _Archive:
    """The members of an open model file, read on demand and checked: no encrypted or
    duplicated member, a cap on what they expand to, and for every member read its local
    header, compressed stream, size and CRC."""

    def __init__(self, archive: zipfile.ZipFile, fh, shown: str) -> None:
        self.archive, self.fh, self.shown = archive, fh, shown
        infos = archive.infolist()
        self.infos: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            if info.filename in self.infos:
                raise ValueError(f"{shown}: member {info.filename} appears twice")
            if info.flag_bits & _ENCRYPTED_FLAGS:
                raise ValueError(f"{shown}: member {info.filename} is encrypted; model files never are")
            self.infos[info.filename] = info
        total = sum(info.file_size for info in infos)
        if total > MAX_UNCOMPRESSED_BYTES:
            raise ValueError(f"{shown}: members would expand to {total} bytes, more than the "
                             f"{MAX_UNCOMPRESSED_BYTES} a model file may hold")

    def __contains__(self, name: object) -> bool:
        return name in self.infos

    def names(self) -> list[str]:
        return list(self.infos)

    def size(self, name: str) -> int:
        return self.infos[name].file_size

    def _raw(self, info: zipfile.ZipInfo) -> bytes:
        """The member's stored (compressed) bytes, after checking its local header."""
        bad = f"{self.shown}: member {info.filename} is corrupted"
        fh = self.fh
        fh.seek(info.header_offset)
        head = fh.read(_LOCAL_HEADER.size)
        if len(head) != _LOCAL_HEADER.size:
            raise ValueError(f"{bad} (truncated header)")
        signature, flags, name_length, extra_length = _LOCAL_HEADER.unpack(head)
        stored_name = fh.read(name_length)
        expected_name = info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437")
        if signature != _LOCAL_SIGNATURE or stored_name != expected_name:
            raise ValueError(f"{bad} (bad local header)")
        if flags & _ENCRYPTED_FLAGS:
            raise ValueError(f"{self.shown}: member {info.filename} is encrypted; model files never are")
        fh.seek(extra_length, os.SEEK_CUR)
        raw = fh.read(info.compress_size)
        if len(raw) != info.compress_size:
            raise ValueError(f"{bad} (truncated data)")
        return raw

    def head(self, name: str, n: int) -> bytes:
        """The first ``n`` uncompressed bytes of member ``name`` (at most n are produced)."""
        info = self.infos[name]
        if info.compress_type == zipfile.ZIP_STORED:
            return self._raw(info)[:n]
        if info.compress_type == zipfile.ZIP_DEFLATED:
            return zlib.decompressobj(-zlib.MAX_WBITS).decompress(self._raw(info), n)
        self._raw(info)  # the local header checks
        with self.archive.open(info) as stream:  # bzip2, lzma: zipfile's reader, bounded
            return stream.read(n)

    def read(self, name: str) -> bytes:
        """Member ``name``'s bytes, checked: local header, compressed stream, size and CRC."""
        info = self.infos[name]
        bad = f"{self.shown}: member {info.filename} is corrupted"
        raw = self._raw(info)
        if info.compress_type == zipfile.ZIP_STORED:
            data = raw
        elif info.compress_type == zipfile.ZIP_DEFLATED:
            stream = zlib.decompressobj(-zlib.MAX_WBITS)
            data = stream.decompress(raw, info.file_size + 1)
            if not stream.eof or stream.unused_data or stream.unconsumed_tail:
                raise ValueError(f"{bad} (the compressed stream does not end where the archive says)")
        else:  # other methods (bzip2, lzma): zipfile's own reader checks the CRC
            data = self.archive.read(info)
        if len(data) != info.file_size or zlib.crc32(data) != info.CRC:
            raise ValueError(f"{bad} (CRC mismatch)")
        return data


def _read_header(members: Mapping[str, bytes] | _Archive, path: str) -> dict:
    if JSON_NAME not in members:
        raise ValueError(f"{path}: not an emkit model file ({JSON_NAME} is missing)")
    if isinstance(members, _Archive):
        if members.size(JSON_NAME) > MAX_JSON_BYTES:
            raise ValueError(f"{path}: {JSON_NAME} would expand to {members.size(JSON_NAME)} bytes, more than "
                             f"the {MAX_JSON_BYTES} a model file's {JSON_NAME} may hold")
        text = members.read(JSON_NAME)
    else:
        text = members[JSON_NAME]
    try:
        header = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: {JSON_NAME} is not valid JSON ({exc})") from None
    except RecursionError:
        raise ValueError(f"{path}: {JSON_NAME} is nested too deeply") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise ValueError(f"{path}: {JSON_NAME} is not valid JSON ({exc})") from None
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
    for key in ("result", "model_state"):
        if not isinstance(header.get(key) or {}, dict):
            raise ValueError(f"{path}: {JSON_NAME} has no valid {key!r} entry")
    return header


def load(path: str | os.PathLike) -> Any:
    """Read an estimator written by :func:`save` (or ``estimator.save``).

    Rebuilds the estimator from its constructor settings, restores the fitted attributes,
    ``model_`` (from ``_make_model()``) and a ``result_`` with the log-likelihood trace and
    restarts, so that ``predict``, ``score``, ``sample`` and plots work as before saving.
    Methods that need the training data (standard errors) take it as an argument.

    Everything read is checked before it is used (see "Checks at load" in the module
    docstring): the archive, what its arrays declare and expand to, and every fitted
    parameter's shape, dtype and domain against the estimator's settings.

    Raises
    ------
    ValueError
        Naming the file and the field, for a missing, truncated, corrupted, foreign or
        inconsistent file (``"model.emkit: means_ has shape (3, 2), expected (2, 2) for
        n_components=2 and n_features_in_=2"``).
    """
    try:
        return _load(os.fspath(path))
    except ValueError as exc:
        message = str(exc)
        if "\n" not in message:
            raise
        raise ValueError(" ".join(message.split())) from None  # one line (a setting's repr may have more)


def _load(shown: str):
    if not Path(shown).is_file():
        raise ValueError(f"{shown}: no such model file")
    try:
        with open(shown, "rb") as fh, zipfile.ZipFile(fh) as archive:
            members = _Archive(archive, fh, shown)
            header = _read_header(members, shown)
            dec = _Decoder(members, shown)
            params = dec.decode(header["params"], "", text_ok=True)
            # the public attributes first, so that a problem is reported under the name users see
            stored = header["fitted"]
            decoded = {k: dec.decode(stored[k], _child("", k)) for k in sorted(stored, key=lambda k: k == "params_")}
            fitted = {k: decoded[k] for k in stored}
            result = dec.decode(header.get("result") or {}, "result")
            model_state = dec.decode(header.get("model_state") or {}, "model_state")
            unnamed = sorted(set(members.names()) - dec.referenced - {JSON_NAME})
            if unnamed:
                raise ValueError(f"{shown}: member {unnamed[0]} is not named in {JSON_NAME}")
            cls = _loadable_class(header["estimator"], shown)
            params = _renamed_settings(header["estimator"], params)
            _check_expansion(cls, params, fitted, result, model_state, shown)
            params, fitted, result, model_state = (dec.materialize(v) for v in (params, fitted, result, model_state))
    except RecursionError:
        raise ValueError(f"{shown}: {JSON_NAME} is nested too deeply") from None
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{shown}: not an emkit model file or truncated ({exc})") from None
    except (EOFError, OSError, NotImplementedError, RuntimeError, zlib.error) as exc:  # damaged streams
        raise ValueError(f"{shown}: corrupted model file ({exc})") from None
    try:
        estimator = cls(**params)
    except TypeError as exc:
        raise ValueError(f"{shown}: settings do not match {cls.__name__} ({exc})") from None
    _check_names(estimator, fitted, shown)
    if "feature_names_in_" in fitted:
        fitted["feature_names_in_"] = _feature_names(fitted["feature_names_in_"], fitted.get("n_features_in_"), shown)
    for key, value in fitted.items():
        setattr(estimator, key, value)
    if "params_" in fitted:
        _rebuild_fit(estimator, fitted, result, model_state, shown)
    return estimator


# --------------------------------------------------------------------------- checks at load
def _check_names(estimator, fitted: dict, shown: str) -> None:
    for key in fitted:
        if not (isinstance(key, str) and key.endswith("_") and not key.startswith("_")):
            raise ValueError(f"{shown}: {key!r} is not a fitted attribute name")
        if key in _REBUILT:
            raise ValueError(f"{shown}: {key} is rebuilt at load and is never stored")
    if "params_" not in fitted:  # an unfitted estimator: no parameter group may appear alone
        try:
            groups = estimator.param_groups()
        except Exception:  # settings that build no model: nothing to compare with
            groups = ()
        for group in groups:
            if f"{group}_" in fitted:
                raise ValueError(f"{shown}: {group}_ is stored without params_")


def _shape_dtype(value: Any) -> tuple[tuple, np.dtype] | None:
    """(shape, dtype) of an array, a stub or a number; None for anything else."""
    if isinstance(value, (_Stub, np.ndarray, np.generic)):
        return tuple(value.shape), np.dtype(value.dtype)
    if isinstance(value, bool):
        return (), np.dtype(bool)
    if isinstance(value, (int, float)):
        return (), np.dtype(type(value))
    return None


def _describe_shapes(shapes: list[tuple]) -> str:
    return " or ".join(str(s) for s in dict.fromkeys(shapes))


class _Expected:
    """What the estimator's settings say each parameter group must be: its constraint, and
    its accepted shapes (one dict per way the data may have been shaped; None: unknown)."""

    def __init__(self, spec: Mapping[str, Any], candidates: list[dict[str, tuple]] | None, context: str) -> None:
        self.spec, self.candidates, self.context = dict(spec), candidates, context

    def nbytes(self) -> int | None:
        if not self.candidates:
            return None
        return max(sum(math.prod(s) * 8 for s in c.values()) for c in self.candidates)


def _int_attr(fitted: Mapping[str, Any], name: str, shown: str, low: int = 0) -> int | None:
    if name not in fitted:
        return None
    value = fitted[name]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{shown}: {name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _features_from(value: Any) -> int | None:
    sd = _shape_dtype(value)
    if sd is None:
        return None
    shape = sd[0]
    return 1 if len(shape) < 2 else int(shape[1])


def _expected(estimator, model, fitted: Mapping[str, Any], shown: str) -> _Expected:
    """The shapes and constraints of the parameter groups of ``model`` for the estimator's
    settings and ``n_features_in_`` (inferred from the parameters when absent)."""
    spec = dict(model.param_spec)
    raw_params = fitted.get("params_")
    params: dict[str, Any] = raw_params if isinstance(raw_params, dict) else {}
    k: Any = getattr(model, "n_components", None)
    d = _int_attr(fitted, "n_features_in_", shown, low=1)
    inferred = d is None

    def context(features: int | None) -> str:
        parts = [f"n_components={k}"] if k is not None else []
        if features is not None:
            parts.append(f"n_features_in_={features}" if not inferred else f"{features} feature(s)")
        return "for " + " and ".join(parts) if parts else ""

    if isinstance(model, GaussianMixtureModel):
        if d is None:
            d = _features_from(fitted.get("means_", params.get("means")))
        if d is None:
            return _Expected(spec, None, context(None))
        return _Expected(spec, [{"weights": (k,), "means": (k, d),
                                 "covariances": tuple(model.structure.shape(k, d))}], context(d))
    if isinstance(model, FiniteMixtureModel):
        family = model.family
        groups = [g for g in spec if g != "weights"]
        if d is None and groups:
            d = _features_from(fitted.get(f"{groups[0]}_", params.get(groups[0])))
        if d is None:
            return _Expected(spec, None, context(None))
        if isinstance(family, Categorical):
            sizes = family._sizes
            if len(sizes) not in (1, d):
                raise ValueError(f"{shown}: n_categories_ has {len(sizes)} entries, expected 1 or {d} "
                                 f"(n_features_in_)")
            return _Expected(spec, [{"weights": (k,), "probs": (k, d, family.width)}], context(d))
        candidates = []
        for ndim in getattr(family, "ndim", (1, 2)):
            if ndim not in (1, 2) or (ndim == 1 and d != 1):
                continue
            dummy = np.broadcast_to(0.0, (1,) if ndim == 1 else (1, d))  # shapes only, no memory
            try:
                shapes = {g: tuple(family.param_shape(g, k, (dummy,))) for g in groups}
            except Exception:  # a user's family that needs more than the shape of X
                return _Expected(spec, None, context(d))
            candidates.append({"weights": (k,), **shapes})
        if not candidates:
            raise ValueError(f"{shown}: n_features_in_ is {d}, but a {family.name} mixture takes one feature")
        return _Expected(spec, candidates, context(d))
    if isinstance(model, AlleleModel):
        return _Expected(spec, [{"frequencies": (model.n_alleles,)}], f"for {model.n_alleles} alleles")
    if isinstance(model, ExponentialModel):
        return _Expected(spec, [{"rate": ()}], "")
    # a user's model: the weights' shape when it has components, the constraints always
    return _Expected(spec, [{"weights": (k,)}] if k is not None and "weights" in spec else None, context(None))


def _group_fields(spec: Mapping[str, Any], fitted: Mapping[str, Any]) -> list[tuple[str, str, Any]]:
    """(group, field name, value) of every stored copy of each parameter group: its public
    attribute (``means_``) when it is an array, and ``params_[group]``."""
    params = fitted["params_"]
    out = []
    for group in spec:
        public = fitted.get(f"{group}_")
        if public is not None and _shape_dtype(public) is not None:
            out.append((group, f"{group}_", public))
        out.append((group, f"params_[{group!r}]", params[group]))
    return out


def _check_shapes(expected: _Expected, fitted: Mapping[str, Any], shown: str) -> None:
    """Groups, dtypes and shapes of the stored parameters (arrays or stubs), against the settings."""
    params = fitted.get("params_")
    if not isinstance(params, dict):
        raise ValueError(f"{shown}: params_ must be a dict of parameter groups, got {type(params).__name__}")
    for group in params:
        if group not in expected.spec:
            raise ValueError(f"{shown}: params_ has unknown group {group!r}; the model has {list(expected.spec)}")
    for group in expected.spec:
        if group not in params:
            raise ValueError(f"{shown}: params_ lacks parameter group {group!r}")
    fields = _group_fields(expected.spec, fitted)
    for group, field, value in fields:
        sd = _shape_dtype(value)
        if sd is None:
            raise ValueError(f"{shown}: {field} must be an array of numbers, got {type(value).__name__}")
        shape, dtype = sd
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"{shown}: {field} has dtype {dtype}, expected float64 or float32")
        if expected.candidates is not None:
            accepted = [c[group] for c in expected.candidates if group in c]
            if accepted and shape not in accepted:
                raise ValueError(f"{shown}: {field} has shape {shape}, expected {_describe_shapes(accepted)}"
                                 f"{' ' + expected.context if expected.context else ''}")
    if expected.candidates and len(expected.candidates) > 1:
        # every field's (shape, dtype) is known here: the loop above raised for None
        shapes = {field: cast(tuple, _shape_dtype(value))[0] for _, field, value in fields}
        groups = {field: group for group, field, _ in fields}
        if not any(all(c.get(groups[f], s) == s for f, s in shapes.items()) for c in expected.candidates):
            raise ValueError(f"{shown}: the parameter groups have shapes {shapes} that no one data shape gives "
                             f"{expected.context}")
    for group, field, value in fields:  # the copies of a group: the same shape and dtype
        if field.startswith("params_"):
            continue
        if _shape_dtype(value) != _shape_dtype(params[group]):
            a, b = cast(tuple, _shape_dtype(value)), cast(tuple, _shape_dtype(params[group]))  # checked above
            raise ValueError(f"{shown}: params_[{group!r}] ({b[0]}, {b[1]}) disagrees with {field} ({a[0]}, {a[1]})")


def _check_domain(expected: _Expected, fitted: Mapping[str, Any], shown: str) -> None:
    """Finite values inside each group's constraint (simplex, [0, 1], positive, SPD), and one
    value per group: the public attribute and ``params_`` hold the same numbers."""
    params = fitted["params_"]
    for group, field, value in _group_fields(expected.spec, fitted):
        arr = np.asarray(value, dtype=np.float64)
        bad = _domain_problem(expected.spec[group], arr)
        if bad:
            raise ValueError(f"{shown}: {field}{'' if bad.startswith('[') else ' '}{bad}")
        if not field.startswith("params_") and not _same(value, params[group]):
            raise ValueError(f"{shown}: params_[{group!r}] disagrees with {field}; a model file holds one "
                             f"value per parameter group")


def _domain_problem(constraint: Any, arr: np.ndarray) -> str | None:
    """What is wrong with the values ``arr`` of a group under ``constraint`` (None: nothing)."""
    if np.isnan(arr).any():
        return "contains NaN"
    if np.isinf(arr).any():
        return "contains inf"
    if isinstance(constraint, Simplex):
        if (arr < 0).any():
            return f"has a negative value ({float(arr.min())!r}); it must be non-negative and sum to 1"
        if not constraint.is_valid(arr):
            sums = np.atleast_1d(arr.sum(axis=-1)).ravel()
            worst = sums[np.argmax(np.abs(sums - 1.0))] if sums.size else 0.0
            return f"must sum to 1 along its last axis (a sum is {float(worst)!r})"
    elif isinstance(constraint, UnitInterval):
        # EM's own rounding may leave a probability a few ulps outside [0, 1] (1.0000000000000002):
        # such files stay loadable (a probability is clipped where its log is taken)
        slack = _ULP_SLACK * np.finfo(np.float64).eps
        if (arr < -slack).any() or (arr > 1 + slack).any():
            return f"must lie in [0, 1], got values from {float(arr.min())!r} to {float(arr.max())!r}"
    elif isinstance(constraint, Positive):
        if (arr <= 0).any():
            return f"must be positive, got {float(arr.min())!r}"
    elif isinstance(constraint, SymmetricPositiveDefinite):
        if arr.ndim < 2 or arr.shape[-1] != arr.shape[-2]:
            return f"must hold square matrices, got shape {arr.shape}"
        stack = arr.reshape((-1,) + arr.shape[-2:])
        for j, m in enumerate(stack):
            where = f"[{j}]" if arr.ndim > 2 else ""
            if not is_symmetric(m):
                return f"{where} is not symmetric".lstrip()
            if not is_symmetric_positive_definite(m):
                return f"{where} is not positive definite".lstrip()
    elif not constraint.is_valid(arr):
        return f"breaks its constraint {constraint!r}"
    return None


def _same(a: Any, b: Any) -> bool:
    """Exactly the same values (and dtype, for arrays)."""
    if isinstance(a, dict) or isinstance(b, dict):
        return (isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys()
                and all(_same(a[k], b[k]) for k in a))
    try:
        x, y = np.asarray(a), np.asarray(b)
    except Exception:
        return False
    if x.dtype.kind not in "biuf" or y.dtype.kind not in "biuf":
        return bool(a == b) if type(a) is type(b) else False
    return x.shape == y.shape and x.dtype == y.dtype and bool(np.array_equal(x, y))


def _close(a: Any, b: Any) -> bool:
    """The same values to rounding (a derived attribute computed on another machine)."""
    if isinstance(a, dict) or isinstance(b, dict):
        return (isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys()
                and all(_close(a[k], b[k]) for k in a))
    try:
        x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    except (TypeError, ValueError):
        return _same(a, b)
    if x.shape != y.shape or not (np.isfinite(x).all() and np.isfinite(y).all()):
        return False
    scale = max(1.0, float(np.abs(y).max(initial=0.0)))
    return bool(np.all(np.abs(x - y) <= 1e-7 * np.abs(y) + 1e-12 * scale))


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _check_other_fitted(estimator, model, fitted: Mapping[str, Any], shown: str) -> None:
    """The fitted attributes besides the parameters: counts, flags, traces, statistics."""
    for name in ("n_iter_", "n_em_evaluations_", "n_batches_seen_"):
        _int_attr(fitted, name, shown)
    _int_attr(fitted, "n_features_in_", shown, low=1)
    for name in ("loglik_", "lower_bound_", "n_rows_seen_", "online_step_size_", "online_step_decay_",
                 "online_step_offset_"):
        if name in fitted and not (_is_real(fitted[name]) and math.isfinite(float(fitted[name]))):
            raise ValueError(f"{shown}: {name} must be a finite number, got {fitted[name]!r}")
    if "converged_" in fitted and not isinstance(fitted["converged_"], (bool, np.bool_)):
        raise ValueError(f"{shown}: converged_ must be true or false, got {fitted['converged_']!r}")
    for name in ("loglik_trace_", "lower_bounds_"):
        if name in fitted:
            value = fitted[name]
            if not (isinstance(value, np.ndarray) and value.ndim == 1 and value.dtype.kind in "iuf"):
                raise ValueError(f"{shown}: {name} must be a 1-D array of numbers")
            if not np.isfinite(value).all():
                raise ValueError(f"{shown}: {name} contains NaN or inf")
    stats = fitted.get("online_stats_")
    if stats is not None:
        if not isinstance(stats, dict):
            raise ValueError(f"{shown}: online_stats_ must be a dict of arrays")
        for key, value in stats.items():
            if not (_shape_dtype(value) is not None and np.isfinite(np.asarray(value, dtype=np.float64)).all()):
                raise ValueError(f"{shown}: online_stats_[{key!r}] must be finite numbers")
    family = getattr(model, "family", None)
    for name in getattr(family, "inputs", {}) or {}:
        value = fitted.get(f"{name}_")
        if value is not None and not (_is_real(value) and math.isfinite(float(value)) and value >= 0):
            raise ValueError(f"{shown}: {name}_ must be a non-negative number or null, got {value!r}")
    counts = fitted.get("genotype_counts_")
    if counts is not None:
        n_genotypes = len(getattr(model, "genotypes", ()) or ()) or None
        if not (isinstance(counts, dict) and all(isinstance(k, str) and _is_real(v) and math.isfinite(v) and v >= 0
                                                 for k, v in counts.items())):
            raise ValueError(f"{shown}: genotype_counts_ must map genotype names to non-negative numbers")
        if n_genotypes is not None and len(counts) != n_genotypes:
            raise ValueError(f"{shown}: genotype_counts_ has {len(counts)} genotypes, expected {n_genotypes}")


def _settings_model(estimator, shown: str):
    """The model of the estimator's settings (ValueError naming the file when they build none)."""
    try:
        return estimator._make_model()
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError, MemoryError) as exc:
        raise ValueError(f"{shown}: the settings build no model ({type(exc).__name__}: {exc})") from None


def _check_expansion(cls, params: dict, fitted: dict, result: dict, model_state: dict, shown: str) -> None:
    """Before any array is decompressed: the parameters' declared shapes against the settings,
    and what all arrays expand to against what the parameters need (a guard against zip bombs:
    a 526 KB file must not expand to a gigabyte)."""
    every = [s for section in (params, fitted, result, model_state) for s in _stubs(section)]
    total = sum(s.nbytes for s in every)
    param_bytes = sum(s.nbytes for s in _stubs(fitted.get("params_")))
    if isinstance(fitted.get("params_"), dict):
        try:  # best effort on the declared shapes: the full check runs on the arrays afterwards
            estimator = cls(**params)
            for key, value in fitted.items():
                if isinstance(key, str) and key.endswith("_") and not key.startswith("_") and key not in _REBUILT:
                    setattr(estimator, key, value)
            expected = _expected(estimator, estimator._make_model(), fitted, shown)
        except Exception:  # settings that need their arrays (or are wrong): checked after decompressing
            expected = None
        if expected is not None:
            _check_shapes(expected, fitted, shown)
    restarts = result.get("restarts") if isinstance(result, dict) else None
    copies = PARAMETER_COPIES + (len(restarts) if isinstance(restarts, list) else 0)
    allowed = ARRAY_ALLOWANCE_BYTES + copies * param_bytes
    if total > allowed:
        largest = max(every, key=lambda s: s.nbytes)
        raise ValueError(f"{shown}: arrays would expand to {total} bytes ({largest.where}: shape {largest.shape}, "
                         f"{largest.nbytes} bytes), more than the {allowed} a model with {param_bytes} bytes of "
                         f"parameters may hold")


def _check_model_state(model, model_state: dict, d: int | None, shown: str) -> dict:
    """The stored constructor arguments of the fitted model that a fresh model of the settings
    has too: those the settings fix must agree with them; those chosen from the data (a
    centring vector, flags) must be plain, finite values."""
    names = model.constructor_arguments() if hasattr(model, "constructor_arguments") else ()
    state = {}
    for key, value in model_state.items():
        if not (isinstance(key, str) and key in names):
            continue
        field = f"model_state[{key!r}]"
        fresh = getattr(model, key, None)
        if isinstance(fresh, (bool, np.bool_)):
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"{shown}: {field} must be true or false, got {value!r}")
        elif fresh is None:
            if isinstance(value, np.ndarray):
                if value.dtype.kind not in "iuf" or not np.isfinite(value).all():
                    raise ValueError(f"{shown}: {field} must hold finite numbers")
                if key == "center" and d is not None and value.shape != (d,):
                    raise ValueError(f"{shown}: {field} has shape {value.shape}, expected ({d},)")
            elif not (value is None or isinstance(value, (bool, str)) or (_is_real(value) and math.isfinite(value))):
                raise ValueError(f"{shown}: {field} must be a plain value, got {type(value).__name__}")
        elif not _same(value, fresh):
            raise ValueError(f"{shown}: {field} is {value!r} but the settings give {fresh!r}")
        state[key] = value
    return state


def _restarts(result: dict, shown: str) -> list:
    restarts = result.get("restarts", [])
    if not isinstance(restarts, list):
        raise ValueError(f"{shown}: result['restarts'] must be a list")
    out = []
    for i, r in enumerate(restarts):
        where = f"result['restarts'][{i}]"
        if not isinstance(r, dict):
            raise ValueError(f"{shown}: {where} must be an object")
        loglik = r.get("loglik", np.nan)
        trace = r.get("loglik_trace", np.zeros(0))
        n_iter, converged = r.get("n_iter", 0), r.get("converged", False)
        if not _is_real(loglik):
            raise ValueError(f"{shown}: {where}['loglik'] must be a number, got {loglik!r}")
        if not (isinstance(trace, np.ndarray) and trace.ndim == 1 and trace.dtype.kind in "iuf"):
            raise ValueError(f"{shown}: {where}['loglik_trace'] must be a 1-D array of numbers")
        if not (isinstance(n_iter, int) and not isinstance(n_iter, bool) and n_iter >= 0):
            raise ValueError(f"{shown}: {where}['n_iter'] must be an integer >= 0, got {n_iter!r}")
        if not isinstance(converged, bool):
            raise ValueError(f"{shown}: {where}['converged'] must be true or false, got {converged!r}")
        out.append(RestartSummary(float(loglik), trace, n_iter, converged, r.get("init_params", {})))
    return out


def _result_field(result: dict, key: str, default: Any, kind: Any, shown: str) -> Any:
    value = result.get(key, default)
    if kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = _is_real(value)
    elif kind is str:
        ok = isinstance(value, str)
    else:
        ok = value is None or isinstance(value, kind)
    if not ok:
        raise ValueError(f"{shown}: result[{key!r}] has the wrong type ({type(value).__name__})")
    return value


def _rebuild_fit(estimator, fitted: dict, result: dict, model_state: dict, shown: str) -> None:
    """Check the fitted attributes against the settings, then build ``model_`` and a minimal
    ``result_`` for a loaded fitted estimator; the attributes derived from the parameters
    (``precisions_``, ``frequencies_``...) are those the parameters give."""
    try:
        estimator._validate_settings()
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{shown}: settings: {exc}") from None
    _int_attr(fitted, "n_features_in_", shown, low=1)
    if "n_categories_" in fitted:  # read by the model of a categorical mixture
        sizes = fitted["n_categories_"]
        if not (isinstance(sizes, list) and sizes and all(isinstance(v, int) and not isinstance(v, bool)
                                                          and v >= 1 for v in sizes)):
            raise ValueError(f"{shown}: n_categories_ must be a list of positive integers, got {sizes!r}")
    model = _settings_model(estimator, shown)
    expected = _expected(estimator, model, fitted, shown)
    _check_shapes(expected, fitted, shown)
    _check_domain(expected, fitted, shown)
    _check_other_fitted(estimator, model, fitted, shown)
    d = _int_attr(fitted, "n_features_in_", shown, low=1)
    if d is None and isinstance(model, GaussianMixtureModel):
        d = _features_from(fitted["params_"]["means"])
    # the stored constructor arguments that the freshly built model has too: a new model is
    # built with them (nothing is written onto a model, and nothing new is injected)
    state = _check_model_state(model, model_state, d, shown)
    if state and hasattr(model, "replace"):
        try:
            model = model.replace(**state)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{shown}: model_state: {exc}") from None
    estimator.model_ = model
    params = estimator.params_
    trace = np.asarray(getattr(estimator, "loglik_trace_", [getattr(estimator, "loglik_", np.nan)]))
    restarts = _restarts(result, shown)
    best = _result_field(result, "best_restart", 0, int, shown)
    if restarts and not 0 <= best < len(restarts):
        raise ValueError(f"{shown}: result['best_restart'] is {best}, but there are {len(restarts)} restart(s)")
    fixed = result.get("fixed", ())
    if not (isinstance(fixed, (tuple, list)) and all(isinstance(g, str) and g in model.param_spec for g in fixed)):
        raise ValueError(f"{shown}: result['fixed'] must list groups of the model, got {fixed!r}")
    result_ = EMResult(
        params=params, loglik=float(getattr(estimator, "loglik_", trace[-1] if trace.size else np.nan)),
        loglik_trace=trace, n_iter=int(getattr(estimator, "n_iter_", len(trace) - 1)),
        converged=bool(getattr(estimator, "converged_", False)),
        n_em_evaluations=int(getattr(estimator, "n_em_evaluations_", 0)), params_history=None,
        restarts=restarts, best_restart=best, model=model,
        stop=_result_field(result, "stop", str(getattr(estimator, "stop", "loglik")), str, shown),
        tol=float(_result_field(result, "tol", getattr(estimator, "tol", 0.0) or 0.0, float, shown)),
        max_iter=_result_field(result, "max_iter", int(getattr(estimator, "max_iter", 0) or 0), int, shown),
        fixed=tuple(fixed), algorithm=_result_field(result, "algorithm", "em", str, shown),
        accelerate=_result_field(result, "accelerate", None, (str,), shown))
    _republish(estimator, result_, fitted, shown)
    estimator.result_ = result_


def _republish(estimator, result, fitted: dict, shown: str) -> None:
    """The attributes the estimator derives from its parameters (``_publish``), from
    ``params_``: a stored copy that disagrees is refused, so that no hidden copy of a
    parameter can differ from the one ``predict`` uses."""
    before = dict(vars(estimator))
    try:
        estimator._publish(result)
    except (ValueError, TypeError, KeyError, IndexError, ArithmeticError, np.linalg.LinAlgError) as exc:
        raise ValueError(f"{shown}: params_: {exc}") from None
    for name, value in list(vars(estimator).items()):
        if name not in fitted or before.get(name) is not fitted[name] or value is fitted[name]:
            continue  # not stored (an older file): the value the parameters give stays
        stored = fitted[name]
        if _same(stored, value) or _close(stored, value):
            setattr(estimator, name, stored)  # the stored bits (equal, or equal to rounding)
        else:
            raise ValueError(f"{shown}: {name} disagrees with params_, from which it is derived")


def _feature_names(names: Any, n_features: Any, shown: str) -> np.ndarray:
    """The stored column names as scikit-learn keeps them (an object array of strings),
    checked: a list of ``n_features_in_`` distinct strings."""
    if not (isinstance(names, list) and names and all(isinstance(v, str) for v in names)):
        raise ValueError(f"{shown}: feature_names_in_ must be a list of column names (strings)")
    if n_features is not None and len(names) != n_features:
        raise ValueError(f"{shown}: feature_names_in_ has {len(names)} name(s) but n_features_in_ is {n_features}")
    if len(set(names)) != len(names):
        raise ValueError(f"{shown}: feature_names_in_ repeats a column name")
    return np.asarray(names, dtype=object)
