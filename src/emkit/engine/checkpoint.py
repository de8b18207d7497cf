"""Checkpoints of long EM fits: written atomically, resumed bit for bit.

:func:`emkit.em` (and so every estimator, and ``emkit fit --checkpoint FILE``) takes
``checkpoint=PATH`` and ``checkpoint_every=``. While the fit runs, the engine writes the whole
state of its loop to ``PATH`` every ``checkpoint_every`` iterations (an ``int``) or seconds (a
``float``); a fit started with the same model, data and settings while ``PATH`` exists resumes
from it, and ends with exactly the numbers (every bit) that an uninterrupted fit gives. After a
successful fit the file is removed.

What a checkpoint holds
    The restart under way and the starting parameters of each restart; the current parameters
    (exact bits, as ``.npy``); the iteration count; the log-likelihood trace; the number of
    EM-map evaluations; the summaries of the finished restarts and the best restart so far
    (parameters, trace, history); the random generator's state
    (``Generator.bit_generator.state``) now and before the E-step at the current parameters
    (so that stochastic EM redraws the same latent values); the accelerator's state (SQUAREM's
    step cap, Anderson's memory); stochastic EM's running average; with ``keep_history=True``,
    the parameter history. The E-step statistics at the current parameters are not stored:
    they are recomputed on resume (the statistics pass is deterministic), and their
    log-likelihood is checked against the saved one.

A fingerprint of the fit
    The settings that determine the numbers (model class and constructor arguments, ``init``,
    ``fixed``, ``tol``, ``stop``, ``max_iter``, ``n_init``, an integer ``random_state``,
    ``accelerate`` and its options, ``algorithm``, ``burn_in``, ``chunk_size``,
    ``keep_history``) and of the data (for each array its shape, dtype and a SHA-256 of its
    first, middle and last 8 rows) are stored with the state; resuming with anything else raises
    a ValueError naming what differs, never a silent resume. ``callback``, ``check_monotone``
    and ``monotone_rtol`` do not change the numbers and are not part of it. A ``random_state``
    given as a Generator (or None) is not fingerprinted: its state is restored from the file.

File format (``format_version`` 1)
    A ZIP archive (no pickle) of ``checkpoint.json`` (UTF-8 JSON; floats as ``float.hex``
    strings so that every bit survives, arrays as ``{"__ndarray__": "arrays/<i>.npy"}``) and
    NumPy ``.npy`` members read with ``allow_pickle=False``.

Atomic writing
    Each checkpoint is written to a temporary file in the same directory
    (``.<name>.<random>.tmp``), flushed and ``fsync``-ed, then renamed over ``PATH`` with
    :func:`os.replace` (and the directory ``fsync``-ed where the platform allows), so the file
    under the real name is always a complete checkpoint: the previous one or the new one. A
    process killed while writing may leave such a temporary file; the successful fit that
    removes the checkpoint removes those too.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import numbers
import os
import tempfile
import time
import zipfile
from glob import escape as glob_escape
from pathlib import Path
from typing import Any, cast

import numpy as np

from emkit.core.arrays import device_of, get_namespace, is_dask, to_numpy

__all__ = ["Checkpoint", "check_checkpoint_settings", "data_fingerprint", "describe_mismatch", "describe_value",
           "model_fingerprint", "read_checkpoint", "write_atomically"]

FORMAT_NAME = "emkit-checkpoint"
FORMAT_VERSION = 1
JSON_NAME = "checkpoint.json"
#: default ``checkpoint_every``: seconds between checkpoints
DEFAULT_EVERY_SECONDS = 60.0
#: rows hashed at each end and in the middle of every data array
FINGERPRINT_ROWS = 8


# --------------------------------------------------------------------------- settings
def check_checkpoint_settings(checkpoint: Any, checkpoint_every: Any) -> tuple[Path | None, Any]:
    """Validate ``checkpoint`` and ``checkpoint_every``; returns ``(path or None, every)``.

    ``every`` is an int (iterations) or a float (seconds); None means
    :data:`DEFAULT_EVERY_SECONDS` seconds.
    """
    if checkpoint is None:
        if checkpoint_every is not None:
            raise ValueError("checkpoint_every needs checkpoint= (the file to write checkpoints to)")
        return None, None
    if not isinstance(checkpoint, (str, os.PathLike)) or str(checkpoint) == "":
        raise ValueError(f"checkpoint must be a file path (str or os.PathLike), got {checkpoint!r}")
    path = Path(checkpoint)
    if path.is_dir():
        raise ValueError(f"checkpoint={str(path)!r} is a directory; give a file path")
    every = checkpoint_every
    if every is None:
        every = DEFAULT_EVERY_SECONDS
    elif isinstance(every, (bool, np.bool_)):
        raise ValueError(f"checkpoint_every must be an int (iterations) or a float (seconds), got {every!r}")
    elif isinstance(every, numbers.Integral):
        if every < 1:
            raise ValueError(f"checkpoint_every must be >= 1 iterations, got {every!r}")
        every = int(every)
    elif isinstance(every, numbers.Real):
        # cast: typeshed's numbers.Real does not declare the comparisons every real number has
        if not (math.isfinite(every) and cast(float, every) > 0):
            raise ValueError(f"checkpoint_every must be a positive number of seconds, got {every!r}")
        every = float(every)
    else:
        raise ValueError(f"checkpoint_every must be an int (iterations) or a float (seconds), got {every!r}")
    return path, every


# --------------------------------------------------------------------------- fingerprints
def _digest(arr: np.ndarray) -> str:
    arr = np.array(arr, order="C", copy=True)
    h = hashlib.sha256(f"{arr.dtype.str}{arr.shape}".encode())
    h.update(arr.tobytes())
    return h.hexdigest()[:32]


def describe_value(value: Any, depth: int = 0) -> Any:
    """A JSON value that identifies ``value`` across processes (no memory addresses)."""
    if value is None or isinstance(value, (bool, np.bool_, str)):
        return value if not isinstance(value, np.bool_) else bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value).hex()
    if isinstance(value, np.ndarray) or hasattr(value, "__array__") or hasattr(value, "shape"):
        try:
            arr = to_numpy(value)
        except Exception:
            return type(value).__qualname__
        return {"array": list(arr.shape), "dtype": str(arr.dtype), "sha256": _digest(arr)}
    if isinstance(value, (list, tuple)):
        return [describe_value(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {str(k): describe_value(v, depth + 1) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (set, frozenset)):
        return sorted(str(v) for v in value)
    out: dict[str, Any] = {"type": f"{type(value).__module__}.{type(value).__qualname__}"}
    if depth < 2 and hasattr(value, "__dict__"):
        out["attributes"] = {k: describe_value(v, depth + 1) for k, v in sorted(vars(value).items())
                             if not k.startswith("_") and not callable(v)}
    return out


def model_fingerprint(model: Any) -> dict:
    """The model's class and constructor arguments (arrays by shape, dtype and hash)."""
    out: dict[str, Any] = {"class": f"{type(model).__module__}.{type(model).__qualname__}"}
    try:
        names = model.constructor_arguments()
    except Exception:
        names = ()
    out["arguments"] = {n: describe_value(getattr(model, n)) for n in names if hasattr(model, n)}
    return out


def _sample_rows(a: Any) -> np.ndarray:
    n = int(a.shape[0])
    k = FINGERPRINT_ROWS
    if n <= 3 * k:
        return to_numpy(a)
    mid = n // 2 - k // 2
    parts = [a[:k], a[mid:mid + k], a[n - k:]]
    if is_dask(a):
        parts = [p.compute() for p in parts]
    return np.concatenate([to_numpy(p) for p in parts], axis=0)


def data_fingerprint(data: tuple) -> list:
    """For each array of ``data``: None, or its shape (hence n_rows), dtype and a SHA-256 of a
    few rows (the first, middle and last 8)."""
    out: list[dict[str, Any] | None] = []
    for a in data:
        if a is None:
            out.append(None)
            continue
        if not hasattr(a, "shape") or len(getattr(a, "shape")) == 0:
            arr = np.asarray(to_numpy(a))
            out.append({"shape": list(arr.shape), "dtype": str(arr.dtype), "rows": _digest(arr)})
            continue
        rows = np.asarray(_sample_rows(a))
        out.append({"shape": [int(s) for s in a.shape], "dtype": str(getattr(a, "dtype", rows.dtype)),
                    "rows": _digest(rows)})
    return out


def _normalise(value: Any) -> Any:
    return json.loads(json.dumps(value))


def describe_mismatch(saved: dict, now: dict) -> str | None:
    """A sentence naming what differs between two fingerprints (None when they agree)."""
    saved, now = _normalise(saved), _normalise(now)
    problems = []
    saved_settings, now_settings = saved.get("settings", {}), now.get("settings", {})
    for key in sorted(set(saved_settings) | set(now_settings)):
        a, b = saved_settings.get(key), now_settings.get(key)
        if a == b:
            continue
        leaves = _differences(a, b)
        if len(leaves) == 1 and leaves[0][0]:
            where, a, b = leaves[0]
            problems.append(f"setting {key!r} differs in {where} (checkpoint: {_short(a)}; now: {_short(b)})")
        elif leaves and all(where for where, _, _ in leaves):
            problems.append(f"setting {key!r} differs in " + ", ".join(where for where, _, _ in leaves[:4]))
        else:
            problems.append(f"setting {key!r} differs (checkpoint: {_short(a)}; now: {_short(b)})")
    saved_data, now_data = saved.get("data", []), now.get("data", [])
    if len(saved_data) != len(now_data):
        problems.append(f"the data differ: the checkpoint was written for {len(saved_data)} array(s), "
                        f"now {len(now_data)}")
    else:
        for i, (a, b) in enumerate(zip(saved_data, now_data)):
            if a == b:
                continue
            if a is None or b is None:
                problems.append(f"the data differ: array {i} is {'absent' if a is None else 'present'} in the "
                                f"checkpoint and {'absent' if b is None else 'present'} now")
            elif a["shape"] != b["shape"] or a["dtype"] != b["dtype"]:
                problems.append(f"the data differ: array {i} has shape {tuple(a['shape'])} and dtype {a['dtype']} "
                                f"in the checkpoint, shape {tuple(b['shape'])} and dtype {b['dtype']} now")
            else:
                problems.append(f"the data differ: array {i} has the same shape {tuple(a['shape'])} and dtype "
                                f"but different values")
    return "; ".join(problems) if problems else None


def _differences(a: Any, b: Any, where: str = "") -> list[tuple[str, Any, Any]]:
    """The leaves (path, a, b) at which two JSON values differ."""
    if isinstance(a, dict) and isinstance(b, dict) and not ({"array", "sha256"} & set(a)):
        out = []
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                path = key if key in ("arguments", "attributes") else f"{where}.{key}" if where else key
                out += _differences(a.get(key), b.get(key), where if key in ("arguments", "attributes") else path)
        return out
    return [(where, a, b)] if a != b else []


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 120 else text[:117] + "..."


# --------------------------------------------------------------------------- encoding
class _Encoder:
    """Python / NumPy values -> JSON with tagged floats and arrays (exact bits)."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def _array(self, arr: np.ndarray) -> str:
        if arr.dtype.hasobject:
            raise ValueError(f"cannot checkpoint an object array (dtype {arr.dtype})")
        name = f"arrays/{len(self.arrays)}.npy"
        self.arrays[name] = np.array(arr, order="C", copy=True)
        return name

    def encode(self, value: Any) -> Any:
        if value is None or isinstance(value, (str, bool)):
            return value
        if isinstance(value, np.ndarray):
            return {"__ndarray__": self._array(value)}
        if isinstance(value, np.generic):
            return {"__npscalar__": self._array(np.asarray(value))}
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            return {"__float__": value.hex()}
        if isinstance(value, tuple):
            return {"__tuple__": [self.encode(v) for v in value]}
        if isinstance(value, list):
            return [self.encode(v) for v in value]
        if isinstance(value, dict):
            if not all(isinstance(k, str) for k in value):
                raise ValueError("cannot checkpoint a dict with non-string keys")
            return {"__dict__": {k: self.encode(v) for k, v in value.items()}}
        if hasattr(value, "shape") and hasattr(value, "dtype"):  # torch, CuPy: back as that library
            return {"__foreign__": self._array(to_numpy(value))}
        raise ValueError(f"cannot checkpoint a value of type {type(value).__name__}")


class _Decoder:
    def __init__(self, arrays: dict[str, np.ndarray], like: Any) -> None:
        self.arrays = arrays
        self.like = like

    def decode(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.decode(v) for v in value]
        if not isinstance(value, dict):
            return value
        (tag, inner), = value.items()
        if tag == "__ndarray__":
            return self.arrays[inner]
        if tag == "__npscalar__":
            return self.arrays[inner][()]
        if tag == "__float__":
            return float.fromhex(inner)
        if tag == "__tuple__":
            return tuple(self.decode(v) for v in inner)
        if tag == "__dict__":
            return {k: self.decode(v) for k, v in inner.items()}
        if tag == "__foreign__":
            arr = self.arrays[inner]
            like = self.like
            if like is None or is_dask(like) or get_namespace(like) is np:
                return arr
            return get_namespace(like).asarray(arr, device=device_of(like))
        raise ValueError(f"unknown tag {tag!r}")


# --------------------------------------------------------------------------- files
def write_atomically(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` atomically: a temporary file in the same directory,
    flushed and fsync-ed, renamed over ``path`` with :func:`os.replace`."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable (POSIX); not possible everywhere
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def _pack(header: dict, arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(JSON_NAME, json.dumps(header, allow_nan=False))
        for name, arr in arrays.items():
            member = io.BytesIO()
            np.save(member, arr, allow_pickle=False)
            archive.writestr(name, member.getvalue())
    return buf.getvalue()


def read_checkpoint(path: str | os.PathLike, like: Any = None) -> dict:
    """The header of the checkpoint at ``path`` with its ``"fingerprint"`` and decoded
    ``"state"`` (arrays as NumPy, or as ``like``'s library where they were saved from one).
    Raises ValueError naming the file when it is not a readable emkit checkpoint."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            header = json.loads(archive.read(JSON_NAME).decode("utf-8"))
            if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
                raise ValueError("not an emkit checkpoint")
            if header.get("format_version") != FORMAT_VERSION:
                raise ValueError(f"format_version {header.get('format_version')!r}, this emkit reads "
                                 f"{FORMAT_VERSION}")
            arrays = {}
            for name in archive.namelist():
                if name.startswith("arrays/"):
                    arrays[name] = np.load(io.BytesIO(archive.read(name)), allow_pickle=False)
        state = _Decoder(arrays, like).decode(header["state"])
    except (OSError, zipfile.BadZipFile, KeyError, ValueError, UnicodeDecodeError, EOFError) as exc:
        raise ValueError(f"{path}: not a readable emkit checkpoint ({exc}); delete it to start the fit "
                         f"afresh") from None
    header["state"] = state
    return header


class Checkpoint:
    """Where and how often one fit writes its checkpoint.

    Parameters
    ----------
    path : path-like
        The checkpoint file.
    every : int or float
        Iterations (int) or seconds (float) between checkpoints.
    fingerprint : dict
        ``{"settings": ..., "data": ...}``, written with every checkpoint and compared on
        resume (:meth:`load`).
    """

    def __init__(self, path: str | os.PathLike, every: int | float, fingerprint: dict) -> None:
        self.path = Path(path)
        self.every = every
        self.fingerprint = _normalise(fingerprint)
        self._last = time.monotonic()
        self.n_written = 0

    def due(self, iteration: int) -> bool:
        """Whether a checkpoint is due after ``iteration`` (1, 2, ... within a restart)."""
        if isinstance(self.every, int):
            return iteration % self.every == 0
        return time.monotonic() - self._last >= self.every

    def load(self, like: Any = None) -> dict | None:
        """The saved state, or None when there is no checkpoint file; ValueError when the file
        was written for other settings or data."""
        if not self.path.exists():
            return None
        header = read_checkpoint(self.path, like)
        problem = describe_mismatch(header.get("fingerprint", {}), self.fingerprint)
        if problem:
            raise ValueError(f"checkpoint {str(self.path)!r} was written by a different fit: {problem}; resume "
                             f"with the same model, data and settings, or delete the file to start afresh")
        return header["state"]

    def save(self, state: dict) -> None:
        """Write ``state`` (with the fingerprint) atomically."""
        enc = _Encoder()
        header = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION,
                  "fingerprint": self.fingerprint, "state": enc.encode(state)}
        write_atomically(self.path, _pack(header, enc.arrays))
        self._last = time.monotonic()
        self.n_written += 1

    def remove(self) -> None:
        """Delete the checkpoint (after a successful fit), and any temporary file that a process
        killed while writing it left behind (``.<name>.*.tmp`` in the same directory)."""
        directory = self.path.parent if str(self.path.parent) else Path(".")
        for leftover in [self.path, *directory.glob(f".{glob_escape(self.path.name)}.*.tmp")]:
            try:
                leftover.unlink()
            except FileNotFoundError:
                pass
