"""``emkit fit --checkpoint FILE``: killed with SIGKILL and run again, the same command prints
exactly the JSON of an uninterrupted fit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import emkit
from emkit import cli
from emkit.engine import checkpoint as ckpt

from contract_models import kill_when_checkpoint_ready, raise_at_call

pytest.importorskip("click")

FAITHFUL = str(emkit.datasets.data_path("faithful.csv"))


def _script() -> Path:
    return Path(sys.executable).parent / "emkit"


def _fit_command(*extra: str) -> list[str]:
    return [str(_script()), "fit", FAITHFUL, "--model", "gaussian", "--components", "2", "--n-init", "2",
            "--tol", "0", "--max-iter", "100", "--random-state", "0", "--json", "--quiet", *extra]


def _json_of(cmd: list[str]) -> dict:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_cli_fit_killed_and_rerun_prints_the_uninterrupted_result(tmp_path):
    if not _script().exists():
        pytest.skip("the emkit script is not installed next to this Python")
    reference = _json_of(_fit_command())
    path = tmp_path / "fit.ckpt"
    cmd = _fit_command("--checkpoint", str(path), "--checkpoint-every", "1")
    # killed in the second restart; every checkpoint read on the way succeeds (never partial)
    kill_when_checkpoint_ready(
        cmd, path, lambda header: header["state"]["restart"] == 1 and header["state"]["current"]["n_iter"] >= 3)
    assert ckpt.read_checkpoint(path)["state"]["current"]["n_iter"] < 100
    resumed = _json_of(cmd)  # the same command again
    assert resumed == reference  # every number, as JSON prints it (repr: all the bits)
    assert resumed["n_iter"] == 100 and len(resumed["trace"]) == 101
    assert not path.exists() and not list(tmp_path.iterdir())  # removed after success, no temporary files


def test_cli_checkpoint_options(tmp_path):
    from click.testing import CliRunner

    runner = CliRunner()
    base = ["fit", FAITHFUL, "--model", "gaussian", "--max-iter", "5", "--tol", "0", "--random-state", "0",
            "--json", "--quiet"]
    result = runner.invoke(cli.cli, base + ["--checkpoint-every", "3"])
    assert result.exit_code == 2 and "--checkpoint-every needs --checkpoint FILE" in result.output
    for bad in ("0", "-2", "abc", "0s", "nan"):
        result = runner.invoke(cli.cli, base + ["--checkpoint", str(tmp_path / "c"), "--checkpoint-every", bad])
        assert result.exit_code == 2 and "give a number of iterations (10) or of seconds (30s, 2.5)" in result.output
    assert cli._parse_checkpoint_every(None, None, "10") == 10
    assert cli._parse_checkpoint_every(None, None, "30s") == 30.0
    assert cli._parse_checkpoint_every(None, None, "2.5") == 2.5
    plain = runner.invoke(cli.cli, base)
    with_checkpoint = runner.invoke(cli.cli, base + ["--checkpoint", str(tmp_path / "c"), "--checkpoint-every", "2"])
    assert plain.exit_code == with_checkpoint.exit_code == 0
    assert json.loads(plain.output) == json.loads(with_checkpoint.output)
    assert not (tmp_path / "c").exists()


def test_cli_resume_with_other_settings_is_a_data_error(tmp_path, capsys):
    path = tmp_path / "fit.ckpt"
    with pytest.raises(KeyboardInterrupt):  # stands for a crash after the third checkpoint
        emkit.GaussianMixture(2, n_init=2, tol=0, max_iter=100, random_state=0, checkpoint=str(path),
                              checkpoint_every=1, callback=_raise_at(5)).fit(emkit.datasets.load_faithful())
    code = cli.main(["fit", FAITHFUL, "--model", "gaussian", "--n-init", "2", "--tol", "0", "--max-iter", "50",
                     "--random-state", "0", "--json", "--quiet", "--checkpoint", str(path)])
    assert code == 1
    err = capsys.readouterr().err
    assert "setting 'max_iter' differs (checkpoint: 100; now: 50)" in err and "fit.ckpt" in err
    assert path.exists()


def _raise_at(n: int):
    return raise_at_call(n, KeyboardInterrupt)
