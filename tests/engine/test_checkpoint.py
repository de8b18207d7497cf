"""Checkpoints of long fits: SIGKILL and resume ends bit-identical, mismatches are refused,
files are written atomically and removed after success (emkit.engine.checkpoint)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

import emkit
from emkit.engine import checkpoint as ckpt
from emkit.models.families import Normal
from emkit.models.mixture import FiniteMixtureModel as FiniteMixture

from contract_models import LINKAGE, Linkage, kill_when_checkpoint_ready, raise_at_call

SRC = str(Path(emkit.__file__).resolve().parents[1])


class _Interrupt(Exception):
    """Stands for a crash: raised from a callback, it leaves the checkpoint behind."""


def _interrupt_after(n_calls: int):
    return raise_at_call(n_calls, _Interrupt)


def _counts(n=1500, seed=3):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(0.0, 1.0, n // 3), rng.normal(2.0, 0.7, n // 3),
                           rng.normal(5.0, 1.5, n - 2 * (n // 3))])


def _same_fit(a, b) -> None:
    """Every number of two EMResults, bit for bit."""
    assert a.params.keys() == b.params.keys()
    for k in a.params:
        assert np.array_equal(np.asarray(a.params[k]), np.asarray(b.params[k])), k
    assert np.array_equal(a.loglik_trace, b.loglik_trace)
    assert (a.loglik, a.n_iter, a.converged, a.n_em_evaluations, a.best_restart) == \
        (b.loglik, b.n_iter, b.converged, b.n_em_evaluations, b.best_restart)
    assert len(a.restarts) == len(b.restarts)
    for ra, rb in zip(a.restarts, b.restarts):
        assert np.array_equal(ra.loglik_trace, rb.loglik_trace) and ra.loglik == rb.loglik
        for k in ra.init_params:
            assert np.array_equal(np.asarray(ra.init_params[k]), np.asarray(rb.init_params[k]))
    if a.params_history is not None:
        assert len(a.params_history) == len(b.params_history)
        for ha, hb in zip(a.params_history, b.params_history):
            assert all(np.array_equal(np.asarray(ha[k]), np.asarray(hb[k])) for k in ha)


# --------------------------------------------------------------------------- SIGKILL and resume
_SCRIPT = """
import sys, warnings
sys.path.insert(0, {src!r})
import numpy as np
import emkit
from emkit.models.families import Normal
from emkit.models.mixture import FiniteMixtureModel as FiniteMixture
warnings.simplefilter("ignore")
case, checkpoint, out = sys.argv[1], sys.argv[2], sys.argv[3]
checkpoint = None if checkpoint == "-" else checkpoint
if case.startswith("em"):
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(0.0, 1.0, 3000), rng.normal(2.0, 0.7, 3000), rng.normal(5.0, 1.5, 3000)])
    fit = emkit.em(FiniteMixture(Normal(), 3), (x, None), tol=0, max_iter=200, random_state=5,
                   algorithm="stochastic" if case == "em-stochastic" else "em",
                   checkpoint=checkpoint, checkpoint_every=1 if checkpoint else None)
    params, trace, n_iter, n_eval = fit.params, fit.loglik_trace, fit.n_iter, fit.n_em_evaluations
    restarts = [r.loglik_trace for r in fit.restarts]
else:
    X = emkit.datasets.load_faithful()
    gm = emkit.GaussianMixture(2, n_init=2, tol=0, max_iter=100, random_state=0,
                               checkpoint=checkpoint, checkpoint_every=1 if checkpoint else None).fit(X)
    params, trace, n_iter, n_eval = gm.params_, gm.loglik_trace_, gm.n_iter_, gm.n_em_evaluations_
    restarts = [r.loglik_trace for r in gm.result_.restarts]
np.savez(out, n_iter=n_iter, n_eval=n_eval, trace=trace, **{{"param_" + k: np.asarray(v) for k, v in params.items()}},
         **{{f"restart_{{i}}": t for i, t in enumerate(restarts)}})
"""


def _run_script(script: Path, case: str, checkpoint: str, out: Path) -> dict:
    proc = subprocess.run([sys.executable, str(script), case, checkpoint, str(out)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    with np.load(out, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


@pytest.mark.parametrize("case", ["em", "em-stochastic", "gaussian-n_init-2"])
def test_sigkill_then_rerun_resumes_bit_identical(tmp_path, case):
    script = tmp_path / "fit.py"
    script.write_text(_SCRIPT.format(src=SRC))
    reference = _run_script(script, case, "-", tmp_path / "reference.npz")
    path = tmp_path / "fit.ckpt"
    if case.startswith("gaussian"):  # killed in the second restart: the first one's summary is resumed too
        ready = lambda h: h["state"]["restart"] == 1 and h["state"]["current"]["n_iter"] >= 5  # noqa: E731
    else:
        ready = lambda h: h["state"]["current"]["n_iter"] >= 5  # noqa: E731
    cmd = [sys.executable, str(script), case, str(path), str(tmp_path / "killed.npz")]
    header = kill_when_checkpoint_ready(cmd, path, ready)
    killed_at = header["state"]["current"]["n_iter"]
    assert killed_at < (100 if case.startswith("gaussian") else 200)  # really mid-fit
    resumed = _run_script(script, case, str(path), tmp_path / "resumed.npz")
    assert not path.exists()  # removed after the successful fit
    assert not list(tmp_path.glob(".fit.ckpt.*"))  # no temporary file left behind
    assert resumed.keys() == reference.keys()
    for key in reference:
        assert np.array_equal(resumed[key], reference[key]), key
    assert int(resumed["n_iter"]) == int(reference["n_iter"])


# --------------------------------------------------------------------------- in-process resume, every variant
@pytest.mark.parametrize("options", [
    dict(n_init=3),
    dict(n_init=2, accelerate="squarem"),
    dict(n_init=2, accelerate="anderson"),
    dict(n_init=2, algorithm="hard", keep_history=True),
    dict(n_init=2, algorithm="stochastic", burn_in=10),
    dict(n_init=2, chunk_size=100, keep_history=True, checkpoint_every=3),
    dict(n_init=2, random_state=None),
], ids=["n_init", "squarem", "anderson", "hard-history", "stochastic", "chunks-every-3", "seed-none"])
@pytest.mark.parametrize("interrupt_at", [6, 31, 45])
def test_interrupted_fit_resumes_bit_identical(tmp_path, options, interrupt_at):
    x = _counts()
    model = FiniteMixture(Normal(), 3)
    settings = dict(tol=0, max_iter=25, random_state=11, checkpoint_every=1)
    settings.update(options)
    path = tmp_path / "fit.ckpt"
    if settings["random_state"] is None:  # the same fresh generator on both runs, as a seed would give
        settings["random_state"] = np.random.default_rng(99)
        reference = emkit.em(model, (x, None), **{k: v for k, v in settings.items() if k != "checkpoint_every"})
        settings["random_state"] = np.random.default_rng(99)
        with pytest.raises(_Interrupt):
            emkit.em(model, (x, None), checkpoint=path, callback=_interrupt_after(interrupt_at), **settings)
        settings["random_state"] = np.random.default_rng(12345)  # not the same: restored from the file
    else:
        reference = emkit.em(model, (x, None), **{k: v for k, v in settings.items() if k != "checkpoint_every"})
        with pytest.raises(_Interrupt):
            emkit.em(model, (x, None), checkpoint=path, callback=_interrupt_after(interrupt_at), **settings)
    assert path.exists()
    resumed = emkit.em(model, (x, None), checkpoint=path, **settings)
    _same_fit(reference, resumed)
    assert not path.exists()


def test_every_estimator_resumes_bit_identical(tmp_path, estimator_case):
    make, arrays, kwargs = estimator_case
    reference = make().set_params(n_init=2).fit(*arrays, **kwargs)
    path = tmp_path / "est.ckpt"
    est = make().set_params(n_init=2, checkpoint=str(path), checkpoint_every=1, callback=_interrupt_after(9))
    with pytest.raises(_Interrupt):
        est.fit(*arrays, **kwargs)
    assert path.exists()
    resumed = make().set_params(n_init=2, checkpoint=str(path), checkpoint_every=1).fit(*arrays, **kwargs)
    _same_fit(reference.result_, resumed.result_)
    assert not path.exists()


def test_resume_from_a_finished_last_iteration(tmp_path):
    """Killed after the checkpoint of the very last iteration, before the file was removed."""
    path = tmp_path / "fit.ckpt"
    reference = emkit.em(Linkage(), LINKAGE, init={"p": np.array(0.5)}, tol=1e-13, stop="params_maxabs")
    real_remove = ckpt.Checkpoint.remove
    ckpt.Checkpoint.remove = lambda self: None
    try:
        emkit.em(Linkage(), LINKAGE, init={"p": np.array(0.5)}, tol=1e-13, stop="params_maxabs",
                 checkpoint=path, checkpoint_every=1)
    finally:
        ckpt.Checkpoint.remove = real_remove
    assert path.exists()
    calls = []
    resumed = emkit.em(Linkage(), LINKAGE, init={"p": np.array(0.5)}, tol=1e-13, stop="params_maxabs",
                       checkpoint=path, checkpoint_every=1, callback=lambda *a: calls.append(a))
    assert calls == []  # nothing left to iterate
    _same_fit(reference, resumed)
    assert not path.exists()


def test_seconds_between_checkpoints(tmp_path, monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(ckpt.time, "monotonic", lambda: clock[0])
    path = tmp_path / "fit.ckpt"
    written = []
    real_save = ckpt.Checkpoint.save
    monkeypatch.setattr(ckpt.Checkpoint, "save", lambda self, state: (written.append(state["current"]["n_iter"]),
                                                                       real_save(self, state)))

    def tick(iteration, params, loglik):
        clock[0] += 0.4  # each iteration "takes" 0.4 s

    emkit.em(FiniteMixture(Normal(), 2), (_counts(300), None), tol=0, max_iter=10, random_state=0,
             checkpoint=path, checkpoint_every=1.0, callback=tick)
    # 0.4 s per iteration (the start's callback counts too): a checkpoint once 1 s has passed
    # since the last one (at 1.2 s, 2.4 s and 3.6 s)
    assert written == [2, 5, 8]
    assert not path.exists()


# --------------------------------------------------------------------------- refusing a different fit
def _leave_checkpoint(path, x, **settings):
    settings = {"tol": 0, "max_iter": 30, "random_state": 1, **settings}
    with pytest.raises(_Interrupt):
        emkit.em(FiniteMixture(Normal(), 2), (x, None), checkpoint=path, checkpoint_every=1,
                 callback=_interrupt_after(6), **settings)


@pytest.mark.parametrize("change, message", [
    (dict(max_iter=31), r"setting 'max_iter' differs \(checkpoint: 30; now: 31\)"),
    (dict(tol=1e-9), r"setting 'tol' differs"),
    (dict(random_state=2), r"setting 'random_state' differs \(checkpoint: 1; now: 2\)"),
    (dict(n_init=2), r"setting 'n_init' differs"),
    (dict(accelerate="squarem"), r"setting 'accelerate' differs"),
    (dict(algorithm="hard"), r"setting 'algorithm' differs"),
    (dict(chunk_size=7), r"setting 'chunk_size' differs"),
    (dict(fixed=["weights"]), r"setting 'fixed' differs"),
    (dict(n_components=3), r"setting 'model' differs in n_components \(checkpoint: 2; now: 3\)"),
])
def test_resuming_with_other_settings_is_refused(tmp_path, change, message):
    x = _counts(600)
    path = tmp_path / "fit.ckpt"
    _leave_checkpoint(path, x)
    settings = {"tol": 0, "max_iter": 30, "random_state": 1, **change}
    k = settings.pop("n_components", 2)
    with pytest.raises(ValueError, match=message) as info:
        emkit.em(FiniteMixture(Normal(), k), (x, None), checkpoint=path, checkpoint_every=1, **settings)
    assert "different fit" in str(info.value) and "fit.ckpt" in str(info.value)
    assert "\n" not in str(info.value)
    assert path.exists()  # kept: the right command can still resume from it


def test_resuming_with_other_data_is_refused(tmp_path):
    x = _counts(600)
    path = tmp_path / "fit.ckpt"
    _leave_checkpoint(path, x)
    fit = dict(tol=0, max_iter=30, random_state=1, checkpoint=path, checkpoint_every=1)
    model = FiniteMixture(Normal(), 2)
    with pytest.raises(ValueError, match=r"the data differ: array 0 has shape \(600,\) and dtype float64 in the "
                                         r"checkpoint, shape \(599,\) and dtype float64 now"):
        emkit.em(model, (x[:-1], None), **fit)
    with pytest.raises(ValueError, match=r"array 0 has .* dtype float64 in the checkpoint, .* dtype float32 now"):
        emkit.em(model, (x.astype(np.float32), None), **fit)
    changed = x.copy()
    changed[0] += 1  # a hashed row
    with pytest.raises(ValueError, match=r"array 0 has the same shape \(600,\) and dtype but different values"):
        emkit.em(model, (changed, None), **fit)
    with pytest.raises(ValueError, match=r"array 1 is absent in the checkpoint and present now"):
        emkit.em(model, (x, np.ones_like(x)), **fit)
    resumed = emkit.em(model, (x, None), **fit)  # the right data still resumes
    _same_fit(emkit.em(model, (x, None), tol=0, max_iter=30, random_state=1), resumed)


def test_estimator_with_other_settings_is_refused(tmp_path):
    X = emkit.datasets.load_faithful()
    path = str(tmp_path / "gm.ckpt")
    with pytest.raises(_Interrupt):
        emkit.GaussianMixture(2, tol=0, max_iter=50, random_state=0, checkpoint=path, checkpoint_every=1,
                              callback=_interrupt_after(5)).fit(X)
    with pytest.raises(ValueError, match=r"setting 'model' differs in covariance_type \(checkpoint: \"full\"; now: \"diag\"\)"):
        emkit.GaussianMixture(2, covariance_type="diag", tol=0, max_iter=50, random_state=0, checkpoint=path,
                              checkpoint_every=1).fit(X)
    with pytest.raises(ValueError, match=r"the data differ: array 0 has shape \(272, 2\)"):
        emkit.GaussianMixture(2, tol=0, max_iter=50, random_state=0, checkpoint=path,
                              checkpoint_every=1).fit(X[:200])


def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path):
    path = tmp_path / "fit.ckpt"
    path.write_bytes(b"not a zip at all")
    with pytest.raises(ValueError, match=r"fit.ckpt: not a readable emkit checkpoint .* delete it"):
        emkit.em(Linkage(), LINKAGE, init={"p": np.array(0.5)}, checkpoint=path)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("checkpoint.json", json.dumps({"format": "emkit-model"}))
    with pytest.raises(ValueError, match="not an emkit checkpoint"):
        emkit.em(Linkage(), LINKAGE, init={"p": np.array(0.5)}, checkpoint=path)


def test_bad_checkpoint_settings(tmp_path):
    run = lambda **kw: emkit.em(Linkage(), LINKAGE, init={"p": np.array(0.5)}, **kw)  # noqa: E731
    with pytest.raises(ValueError, match="checkpoint_every needs checkpoint="):
        run(checkpoint_every=5)
    for bad in (0, -1, 0.0, float("nan"), True, "10"):
        with pytest.raises(ValueError, match="checkpoint_every must be"):
            run(checkpoint=tmp_path / "c", checkpoint_every=bad)
    with pytest.raises(ValueError, match="checkpoint must be a file path"):
        run(checkpoint=3)
    with pytest.raises(ValueError, match="is a directory"):
        run(checkpoint=tmp_path)

    class Custom:
        def step(self, em_map, params, stats, loglik):
            return emkit.engine.loop._plain_step(em_map, params, stats, loglik)
    with pytest.raises(ValueError, match=r"checkpoint= works with accelerate=None, 'squarem' or 'anderson'"):
        run(checkpoint=tmp_path / "c", accelerate=Custom())
    for bad in (0, 2.0 * 0 - 1, True, "5"):
        with pytest.raises(ValueError, match="checkpoint_every must be"):
            emkit.GaussianMixture(2, checkpoint=str(tmp_path / "c"), checkpoint_every=bad).fit(
                emkit.datasets.load_faithful())
    with pytest.raises(ValueError, match="checkpoint must be"):
        emkit.GaussianMixture(2, checkpoint=5).fit(emkit.datasets.load_faithful())


def test_data_that_is_not_arrays_is_a_one_line_value_error():
    for bad, shown in ((None, "got None"), ((None, None), "at least one array"), ([1.0, 2.0], "got list")):
        with pytest.raises(ValueError, match="data must be an array or a tuple of row-aligned arrays") as info:
            emkit.em(Linkage(), bad, init={"p": np.array(0.5)})
        assert shown in str(info.value) and "\n" not in str(info.value)


# --------------------------------------------------------------------------- atomic writing, removal
def test_checkpoint_is_written_atomically_and_never_partial(tmp_path, monkeypatch):
    path = tmp_path / "fit.ckpt"
    seen = []
    real_replace = os.replace

    def replace(src, dst):
        # at the moment of the rename, the temporary file is complete, in the same directory,
        # and the real name holds either nothing or the previous complete checkpoint
        assert Path(src).parent == Path(dst).parent == tmp_path and Path(src).name.startswith(".fit.ckpt.")
        seen.append(ckpt.read_checkpoint(src)["state"]["current"]["n_iter"])
        if path.exists():
            assert ckpt.read_checkpoint(path)["state"]["current"]["n_iter"] == seen[-2]
        if len(seen) == 4:
            raise OSError("disk full")  # a failed write leaves the previous checkpoint alone
        real_replace(src, dst)

    monkeypatch.setattr(ckpt.os, "replace", replace)
    with pytest.raises(OSError, match="disk full"):
        emkit.em(FiniteMixture(Normal(), 2), (_counts(300), None), tol=0, max_iter=10, random_state=0,
                 checkpoint=path, checkpoint_every=2)
    assert seen == [2, 4, 6, 8]
    assert ckpt.read_checkpoint(path)["state"]["current"]["n_iter"] == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit.ckpt"]  # the temporary file is gone


def test_checkpoint_is_fsynced_before_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(ckpt.os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd)))
    monkeypatch.setattr(ckpt.os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b)))
    ckpt.write_atomically(tmp_path / "x", b"data")
    assert events[:2] == ["fsync", "replace"] and (tmp_path / "x").read_bytes() == b"data"


def test_checkpoint_holds_no_pickle_and_is_removed_after_success(tmp_path):
    path = tmp_path / "fit.ckpt"
    with pytest.raises(_Interrupt):
        emkit.em(FiniteMixture(Normal(), 2), (_counts(300), None), tol=0, max_iter=10, random_state=0,
                 accelerate="anderson", checkpoint=path, checkpoint_every=1, callback=_interrupt_after(5))
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        assert names[0] == "checkpoint.json"
        assert all(n.startswith("arrays/") and n.endswith(".npy") for n in names[1:])
        for n in names[1:]:
            np.load(z.open(n), allow_pickle=False)
        header = json.loads(z.read("checkpoint.json"))
    assert header["format"] == "emkit-checkpoint" and header["format_version"] == 1
    state = ckpt.read_checkpoint(path)["state"]
    assert state["restart"] == 0 and state["current"]["n_iter"] == 3
    assert state["current"]["accelerator"]["name"] == "anderson"
    assert state["current"]["rng_now"]["bit_generator"] == "PCG64"
    assert header["fingerprint"]["data"][0]["shape"] == [300]
    emkit.em(FiniteMixture(Normal(), 2), (_counts(300), None), tol=0, max_iter=10, random_state=0,
             accelerate="anderson", checkpoint=path, checkpoint_every=1)
    assert not path.exists()
    # a fit that never reached a checkpoint leaves nothing behind either
    emkit.em(FiniteMixture(Normal(), 2), (_counts(300), None), tol=0, max_iter=3, random_state=0,
             checkpoint=path, checkpoint_every=100)
    assert list(tmp_path.iterdir()) == []


def test_checkpointing_does_not_change_the_numbers(tmp_path):
    x = _counts(600)
    plain = emkit.em(FiniteMixture(Normal(), 3), (x, None), tol=0, max_iter=20, random_state=4, n_init=2,
                     algorithm="stochastic")
    saved = emkit.em(FiniteMixture(Normal(), 3), (x, None), tol=0, max_iter=20, random_state=4, n_init=2,
                     algorithm="stochastic", checkpoint=tmp_path / "c", checkpoint_every=1)
    _same_fit(plain, saved)
