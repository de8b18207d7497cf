"""The command line on hostile input (issue 12): a quoted field with a line break is one field
and never a joined number; an interrupted fit exits with 130, not the data-error code 1."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

click_testing = pytest.importorskip("click.testing")
pytest.importorskip("rich")

import emkit
from emkit import cli


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


# --------------------------------------------------------------------------- quoted fields
def test_quoted_newline_in_a_number_is_an_error_not_a_joined_number(tmp_path, capsys):
    p = write(tmp_path, "data.csv", 'a,b\n1,"2\n3"\n4,5\n')
    with pytest.raises(cli.DataError) as err:
        cli.read_table(p)
    assert err.value.message == f"{p}: row 2, column 'b': not a number '2\\n3'"
    assert cli.main(["fit", str(p), "--model", "gaussian", "--components", "1", "--quiet"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"emkit: error: {p}: row 2, column 'b': not a number '2\\n3'"]


def test_quoted_fields_spanning_lines_keep_their_row_numbers(tmp_path):
    # a quoted text field over two lines, then a bad number: its row is the file line it starts on
    p = write(tmp_path, "data.csv", 'a,b\n1,2\n"3\n",4\n\n5,x\n')
    with pytest.raises(cli.DataError, match=r"row 6, column 'b': not a number 'x'"):
        cli.read_table(p)
    table = cli.read_table(write(tmp_path, "ok.csv", 'a,"b\nc"\n1,"2"\n3,4\r\n5,6\n'))
    assert table.names == ["a", "b\nc"]
    assert table.values.tolist() == [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    assert table.lines.tolist() == [3, 4, 5]


# --------------------------------------------------------------------------- interrupts
def test_keyboard_interrupt_during_a_fit_exits_130(tmp_path, monkeypatch, capsys):
    p = write(tmp_path, "data.csv", "a\n1\n2\n3\n4\n")

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(emkit.GaussianMixture, "fit", interrupted)
    assert cli.main(["fit", str(p), "--model", "gaussian", "--components", "1", "--quiet"]) == 130
    assert capsys.readouterr().err.strip() == "emkit: interrupted"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigint_to_a_running_emkit_fit_exits_130():
    faithful = str(emkit.datasets.data_path("faithful.csv"))
    # the emkit script's entry point, announcing on stderr when its imports are done
    launcher = ("import sys; from emkit.cli import main; sys.stderr.write('ready\\n'); sys.stderr.flush(); "
                "raise SystemExit(main(sys.argv[1:]))")
    proc = subprocess.Popen([sys.executable, "-c", launcher, "fit", faithful, "--model", "gaussian",
                             "--components", "3", "--n-init", "100000", "--tol", "0", "--max-iter", "1000",
                             "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stderr:  # (import-time warnings may come first)
            if line == "ready\n":
                break
        time.sleep(1.0)  # well inside the fit (100000 restarts of up to 1000 iterations)
        assert proc.poll() is None, "the fit ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert err.strip() == "emkit: interrupted"
    assert out == ""
