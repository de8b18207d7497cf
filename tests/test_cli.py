"""The emkit command line: data reading errors, exit codes, fits checked against scipy.optimize."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import optimize, stats
from scipy.special import expit

click_testing = pytest.importorskip("click.testing")
pytest.importorskip("rich")

import emkit
from emkit import cli
from emkit.progress import FitProgress

DATA = Path(str(emkit.datasets.data_path("faithful.csv"))).parent


def run(*args, input=None):
    runner = click_testing.CliRunner()
    return runner.invoke(cli.cli, [str(a) for a in args], input=input, catch_exceptions=False)


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


# --------------------------------------------------------------------------- reading files
@pytest.mark.parametrize("text, message", [
    ("a,waiting\n1,2\n3,abc\n", "row 3, column 'waiting': not a number 'abc'"),
    ("", "empty file"),
    ("   \n\n", "empty file"),
    ("a,b\n", "no data rows"),
    ("a,b\n1,2\n3\n", "row 3 has 1 field(s), expected 2"),
    ("a,b\n1,2,3\n", "row 2 has 3 field(s), expected 2"),
    ("a,a\n1,2\n", "duplicate column name(s) 'a'"),
    ("a,b\n1,inf\n", "row 2, column 'b': not a number 'inf'"),
    ("a,\n1,2\n", "empty column name"),
])
def test_read_table_errors(tmp_path, text, message):
    p = write(tmp_path, "data.csv", text)
    with pytest.raises(cli.DataError) as err:
        cli.read_table(p)
    assert str(err.value.message) == f"{p}: {message}" or message in err.value.message
    assert err.value.message.startswith(f"{p}: ")
    assert err.value.exit_code == 1


def test_read_table_missing_and_binary_files(tmp_path):
    with pytest.raises(cli.DataError, match="nope.csv: no such file"):
        cli.read_table(tmp_path / "nope.csv")
    p = tmp_path / "bin.csv"
    p.write_bytes(b"a,b\n\xff\xfe,1\n")
    with pytest.raises(cli.DataError, match="not a text file"):
        cli.read_table(p)
    with pytest.raises(cli.DataError, match="is a directory"):
        cli.read_table(tmp_path)


def test_read_table_formats(tmp_path):
    t = cli.read_table(DATA / "faithful.csv")
    assert t.names == ["eruptions", "waiting"] and t.values.shape == (272, 2)
    np.testing.assert_array_equal(t.values, emkit.datasets.load_faithful())
    tsv = write(tmp_path, "d.tsv", "x\ty\n1\t2\n\n3\tNA\n")
    t = cli.read_table(tsv)
    assert t.names == ["x", "y"] and list(t.lines) == [2, 4]
    assert t.values[0].tolist() == [1.0, 2.0] and np.isnan(t.values[1, 1])
    with pytest.raises(cli.DataError, match=r"row 4, column 'y': missing value"):
        t.require_complete(["x", "y"])
    headerless = cli.read_table(write(tmp_path, "h.csv", "1,2\n3,4\n"))
    assert headerless.names == ["1", "2"] and headerless.values.tolist() == [[1, 2], [3, 4]]
    with pytest.raises(cli.DataError, match=r"column 'foo' not found; columns are 'x', 'y'"):
        t.index("foo")


def test_read_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "f.parquet"
    faithful = emkit.datasets.load_faithful()
    pq.write_table(pa.table({"eruptions": faithful[:, 0], "waiting": faithful[:, 1].astype(int)}), path)
    t = cli.read_table(path)
    assert t.names == ["eruptions", "waiting"]
    np.testing.assert_array_equal(t.values, faithful)
    pq.write_table(pa.table({"name": ["a", "b"]}), tmp_path / "s.parquet")
    with pytest.raises(cli.DataError, match="column 'name' is not numeric"):
        cli.read_table(tmp_path / "s.parquet")
    # the command line reads Parquet like CSV: the same fit
    h = emkit.datasets.load_hasselblad_deaths()
    pq.write_table(pa.table({"deaths": h["deaths"], "freq": h["freq"]}), tmp_path / "h.parquet")
    args = ["-m", "poisson", "-c", "deaths", "--weights", "freq", "--random-state", "0", "--json"]
    from_parquet = json.loads(run("fit", tmp_path / "h.parquet", *args).stdout)
    from_csv = json.loads(run("fit", DATA / "hasselblad_deaths.csv", *args).stdout)
    assert from_parquet["loglik"] == from_csv["loglik"] and from_parquet["params"] == from_csv["params"]
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(cli.DataError, match="bad.parquet: not a readable Parquet file"):
        cli.read_table(tmp_path / "bad.parquet")


@pytest.mark.parametrize("text, expected", [("3", [3]), ("1-4", [1, 2, 3, 4]), ("1,2,5", [1, 2, 5]),
                                            ("2-3,7", [2, 3, 7])])
def test_parse_components(text, expected):
    assert cli._parse_components(text) == expected


# --------------------------------------------------------------------------- fits, checked independently
def _two_poisson_mle(x, w):
    def nll(theta):
        p, l1, l2 = expit(theta[0]), np.exp(theta[1]), np.exp(theta[2])
        return -np.sum(w * np.log(p * stats.poisson.pmf(x, l1) + (1 - p) * stats.poisson.pmf(x, l2)))
    res = optimize.minimize(nll, [0.0, np.log(1.0), np.log(3.0)], method="Nelder-Mead",
                            options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000})
    return expit(res.x[0]), np.exp(res.x[1]), np.exp(res.x[2]), -res.fun


def test_fit_poisson_hasselblad_json_matches_scipy():
    result = run("fit", DATA / "hasselblad_deaths.csv", "--model", "poisson", "--columns", "deaths",
                 "--weights", "freq", "--random-state", "0", "--tol", "1e-14", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    h = emkit.datasets.load_hasselblad_deaths()
    p, l1, l2, ll = _two_poisson_mle(h["deaths"], h["freq"])
    order = np.argsort(out["params"]["rates"])
    np.testing.assert_allclose(np.array(out["params"]["rates"])[order], [l1, l2], atol=2e-4)
    np.testing.assert_allclose(np.array(out["params"]["weights"])[order][0], p, atol=2e-4)
    # Hasselblad (1969): 0.3599, 1.2561, 2.6634
    np.testing.assert_allclose(np.array(out["params"]["rates"])[order], [1.2561, 2.6634], atol=5e-4)
    assert out["loglik"] == pytest.approx(ll, abs=1e-6)
    assert out["converged"] is True and out["estimator"] == "PoissonMixture"
    assert len(out["trace"]) == out["n_iter"] + 1 and out["trace"][-1] == pytest.approx(out["loglik"])
    assert np.all(np.diff(out["trace"]) > -1e-9)
    assert out["bic"] == pytest.approx(-2 * ll + 3 * np.log(1096), abs=1e-4)


def test_fit_binomial_coins_trials_number_and_column_agree():
    heads = np.array([5, 9, 8, 4, 7])

    def nll(theta):
        w, a, b = expit(theta)
        return -np.sum(np.log(w * stats.binom.pmf(heads, 10, a) + (1 - w) * stats.binom.pmf(heads, 10, b)))
    best = optimize.minimize(nll, [0.0, 1.0, 0.0], method="Nelder-Mead",
                             options={"xatol": 1e-10, "fatol": 1e-13, "maxiter": 20000})
    outs = []
    for trials in ("tosses", "10"):
        result = run("fit", DATA / "two_coins.csv", "-m", "binomial", "--successes", "heads",
                     "--trials", trials, "--random-state", "1", "--json")
        assert result.exit_code == 0, result.output
        outs.append(json.loads(result.stdout))
    assert outs[0]["loglik"] == pytest.approx(outs[1]["loglik"], abs=1e-12)
    assert outs[0]["loglik"] == pytest.approx(-best.fun, abs=1e-6)
    np.testing.assert_allclose(sorted(outs[0]["params"]["probs"]), sorted(expit(best.x[1:])), atol=1e-3)


def test_fit_exponential_with_missing_values_closed_form(tmp_path):
    # missing completely at random: the MLE of the rate is (number observed) / (sum observed)
    values = [2.5, "NA", 0.7, 1.9, "", 3.3, 0.2]
    p = write(tmp_path, "life.csv", "hours\n" + "\n".join(map(str, values)) + "\n")
    result = run("fit", p, "-m", "exponential", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    observed = np.array([2.5, 0.7, 1.9, 3.3, 0.2])
    (rate,) = [np.ravel(v)[0] for v in out["params"].values()]
    assert rate == pytest.approx(len(observed) / observed.sum(), rel=1e-9)


def test_summary_table_and_standard_errors():
    result = run("fit", DATA / "hasselblad_deaths.csv", "-m", "poisson", "--columns", "deaths",
                 "--weights", "freq", "--random-state", "0", "--se", "hessian")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "PoissonMixture" in text and "log-likelihood" in text and "±" in text
    assert "-1989.94" in text  # Hasselblad's maximised log-likelihood


def test_save_predict_and_plot(tmp_path):
    model = tmp_path / "coins.emkit"
    picture = tmp_path / "pics" / "coins.png"
    result = run("fit", DATA / "two_coins.csv", "-m", "binomial", "--successes", "heads", "--trials", "tosses",
                 "--random-state", "1", "--save", model, "--plot", picture, "--quiet")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert model.exists() and picture.exists() and (tmp_path / "pics" / "coins_posterior.png").exists()
    from PIL import Image
    assert Image.open(picture).format == "PNG"
    # predict to stdout and to a file; probabilities equal the loaded model's
    result = run("predict", model, DATA / "two_coins.csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["row", "label", "p0", "p1"] and len(rows) == 6
    loaded = emkit.load(model)
    coins = emkit.datasets.load_two_coins()
    proba = loaded.predict_proba(coins["heads"], trials=coins["tosses"])
    np.testing.assert_array_equal(np.array([[float(v) for v in r[2:]] for r in rows[1:]]), proba)
    assert [int(r[1]) for r in rows[1:]] == proba.argmax(1).tolist()
    out = tmp_path / "labels.csv"
    assert run("predict", model, DATA / "two_coins.csv", "--output", out).exit_code == 0
    assert out.read_text() == result.stdout


def test_predict_errors(tmp_path):
    bogus = write(tmp_path, "m.emkit", "not a model")
    result = run("predict", bogus, DATA / "two_coins.csv")
    assert result.exit_code == 1 and "m.emkit: not an emkit model file" in result.stderr
    model = tmp_path / "p.emkit"
    assert run("fit", DATA / "hasselblad_deaths.csv", "-m", "poisson", "--columns", "deaths", "--weights", "freq",
               "--save", model, "-q").exit_code == 0
    result = run("predict", model, DATA / "two_coins.csv")
    assert result.exit_code == 1 and "column 'deaths' not found" in result.stderr


# --------------------------------------------------------------------------- exit codes and messages
@pytest.mark.parametrize("args, code, message", [
    (["fit", "{tmp}/bad.csv", "-m", "poisson"], 1, "bad.csv: row 3, column 'n': not a number 'abc'"),
    (["fit", "{tmp}/empty.csv", "-m", "poisson"], 1, "empty.csv: empty file"),
    (["fit", "{tmp}/ragged.csv", "-m", "poisson"], 1, "ragged.csv: row 3 has 1 field(s), expected 2"),
    (["fit", "{tmp}/good.csv", "-m", "poisson", "--columns", "foo"], 1,
     "good.csv: column 'foo' not found; columns are 'n', 'm'"),
    (["fit", "{tmp}/good.csv", "-m", "poisson", "-c", "n", "-k", "9"], 1, "more than the number of distinct rows"),
    (["fit", "{tmp}/missing.csv", "-m", "poisson"], 1, "missing.csv: row 3, column 'n': missing value"),
    (["fit", "{tmp}/nofile.csv", "-m", "poisson"], 1, "nofile.csv: no such file"),
    (["fit", "{tmp}/good.csv", "-m", "weibull"], 2, "Invalid value for '--model'"),
    (["fit", "{tmp}/good.csv"], 2, "Missing option '--model'"),
    (["fit", "{tmp}/good.csv", "-m", "poisson", "--tol", "-1"], 2, "--tol"),
    (["fit", "{tmp}/good.csv", "-m", "poisson", "--bogus"], 2, "No such option '--bogus'"),
    (["fit", "{tmp}/good.csv", "-m", "binomial"], 2, "needs --trials"),
    (["fit", "{tmp}/good.csv", "-m", "binomial", "--trials", "0.5"], 2, "whole number"),
    (["fit", "{tmp}/good.csv", "-m", "poisson", "--covariance-type", "full"], 2, "gaussian only"),
    (["fit", "{tmp}/good.csv", "-m", "poisson", "--plot", "x.jpg"], 2, "must end in .png"),
    (["fit", "{tmp}/good.csv", "-m", "poisson", "--algorithm", "hard", "--accelerate", "squarem"], 2,
     "--accelerate applies to --algorithm em only"),
    (["fit", "{tmp}/good.csv", "-m", "exponential"], 2, "takes one column"),
    (["select", "{tmp}/good.csv", "--components", "0-3"], 2, "need 1 <= first <= last"),
    (["select", "{tmp}/good.csv", "--components", "a"], 2, "not a number"),
    (["frobnicate"], 2, "No such command"),
])
def test_exit_codes_and_one_line_messages(tmp_path, args, code, message):
    write(tmp_path, "bad.csv", "n,m\n1,2\nabc,3\n")
    write(tmp_path, "empty.csv", "")
    write(tmp_path, "ragged.csv", "n,m\n1,2\n3\n")
    write(tmp_path, "good.csv", "n,m\n1,2\n3,4\n5,2\n")
    write(tmp_path, "missing.csv", "n,m\n1,2\nNA,4\n")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = run(*argv)
    assert result.exit_code == code, result.output
    assert message in result.stderr
    if code == 1:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("emkit: error: ")
    # main() (the script's entry point) returns the same codes instead of exiting
    assert cli.main(argv) == code


def test_main_help_and_version(capsys):
    assert cli.main(["--help"]) == 0
    assert "fit" in capsys.readouterr().out
    assert cli.main(["--version"]) == 0
    assert emkit.__version__ in capsys.readouterr().out


def test_demo_routes_to_emkit_demo(monkeypatch):
    seen = []
    monkeypatch.setattr(cli, "demo_main", lambda argv: seen.append(argv) or 0)
    assert cli.main(["demo", "--plots", "somewhere"]) == 0
    assert seen == [["--plots", "somewhere"]]
    monkeypatch.setattr(cli, "demo_main", lambda argv: 3)
    assert cli.main(["demo"]) == 3


# --------------------------------------------------------------------------- progress display
class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_counts_restarts_and_iterations():
    stream = _Tty()
    est = emkit.PoissonMixture(2, n_init=3, random_state=0, max_iter=50, tol=1e-6)
    h = emkit.datasets.load_hasselblad_deaths()
    progress = FitProgress(3, 50, stream=stream)
    est.set_params(callback=progress)
    with progress:
        est.fit(h["deaths"], sample_weight=h["freq"])
    assert progress.restart == 3
    assert progress.calls == sum(r.n_iter + 1 for r in est.result_.restarts)
    assert progress.loglik == est.result_.restarts[-1].loglik_trace[-1]
    assert progress.enabled and "restart" in stream.getvalue()


def test_progress_is_quiet_off_a_terminal():
    stream = io.StringIO()
    progress = FitProgress(1, 10, stream=stream)
    assert progress.enabled is False
    with progress:
        progress(0, {}, -3.0)
        progress(1, {}, -2.0)
    assert stream.getvalue() == "" and progress.calls == 2 and progress.iteration == 1


# --------------------------------------------------------------------------- the installed script
def _script() -> Path:
    path = Path(sys.executable).parent / "emkit"
    if not path.exists():
        pytest.skip("the emkit script is not installed next to this Python")
    return path


def test_installed_script_on_bundled_faithful(tmp_path):
    faithful = str(emkit.datasets.data_path("faithful.csv"))
    proc = subprocess.run([str(_script()), "fit", faithful, "--model", "exponential", "--columns", "waiting",
                           "--json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    waiting = emkit.datasets.load_faithful()[:, 1]
    (rate,) = [np.ravel(v)[0] for v in out["params"].values()]
    assert rate == pytest.approx(1 / waiting.mean(), rel=1e-9)  # exponential MLE: 1 / mean
    proc = subprocess.run([str(_script()), "fit", faithful, "--model", "poisson", "--columns", "nope"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"emkit: error: {faithful}: column 'nope' not found; "
                                   "columns are 'eruptions', 'waiting'")


def test_installed_script_gaussian_fit(tmp_path):
    try:
        emkit.GaussianMixture
    except (ImportError, AttributeError):
        pytest.skip("GaussianMixture not written yet")
    faithful = str(emkit.datasets.data_path("faithful.csv"))
    proc = subprocess.run([str(_script()), "fit", faithful, "--model", "gaussian", "--components", "2",
                           "--n-init", "3", "--random-state", "0", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["loglik"] == pytest.approx(-1130.264, abs=1e-2)  # mclust VVV, G=2
    assert sorted(out["params"]["weights"]) == pytest.approx([0.3559, 0.6441], abs=1e-3)


# --------------------------------------------------------------------------- select
def test_select_faithful_picks_two_full_components(tmp_path):
    picture = tmp_path / "bic.png"
    result = run("select", DATA / "faithful.csv", "--components", "1-3", "--covariance-type", "full",
                 "--n-init", "2", "--random-state", "0", "--tol", "1e-6", "--json", "--plot", picture)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert [r["n_components"] for r in out["table"]] == [1, 2, 3]
    assert (out["best"]["n_components"], out["best"]["covariance_type"]) == (2, "full")
    # mclust on faithful: VVV,2 has BIC 2322.192 (mclust prints it with the opposite sign)
    assert out["best"]["bic"] == pytest.approx(2322.192, abs=0.01)
    # one Gaussian: closed-form MLE, loglik = -n/2 (log det(2 pi S) + D) with S the ML covariance
    x = emkit.datasets.load_faithful()
    s = np.cov(x.T, bias=True)
    one = -0.5 * len(x) * (np.log(np.linalg.det(2 * np.pi * s)) + 2)
    assert out["table"][0]["loglik"] == pytest.approx(one, abs=1e-6)
    assert all(r["icl"] >= r["bic"] - 1e-9 for r in out["table"])
    from PIL import Image
    assert Image.open(picture).size == (600, 400)


def test_select_text_output_names_the_winner():
    result = run("select", DATA / "faithful.csv", "-k", "1", "--covariance-type", "full", "--columns", "waiting")
    assert result.exit_code == 0, result.output
    assert "winner by BIC: 1 component(s), full covariance" in result.stdout
    w = emkit.datasets.load_faithful()[:, 1]
    one = -0.5 * len(w) * (np.log(2 * np.pi * w.var()) + 1)
    assert f"{2 * -one + 2 * np.log(len(w)):.3f}" in result.stdout  # BIC of one normal, 2 parameters


def test_select_mclust_grid_prints_mclusts_table(tmp_path):
    """`--covariance-type mclust`: the fourteen forms from mclust's hierarchical start, mclust's
    table layout and sign (mclust 6.0 on faithful: EEE,3 BIC -2314.316 at its looser tolerance)."""
    picture = tmp_path / "bic.png"
    result = run("select", DATA / "faithful.csv", "-k", "1-3", "--covariance-type", "mclust", "--plot", picture)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    header = [line.split() for line in lines if line.strip().startswith("EII")][0]
    assert header == ["EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE"]
    assert "Top 3 models based on the BIC criterion:" in result.stdout
    assert "EEE,3" in result.stdout and "-2314.296" in result.stdout
    assert "winner by BIC: 3 component(s), EEE covariance" in result.stdout
    assert picture.stat().st_size > 0
    bad = run("select", DATA / "faithful.csv", "-k", "1", "--covariance-type", "mclust", "--covariance-type", "full")
    assert bad.exit_code == 2 and "names a whole grid" in bad.output
    # on two processes: the same table, to the printed digit
    parallel = run("select", DATA / "faithful.csv", "-k", "1-3", "--covariance-type", "mclust", "--n-jobs", "2")
    assert parallel.exit_code == 0, parallel.output
    assert parallel.stdout == result.stdout.replace(f"wrote {picture}\n", "")
    bad = run("select", DATA / "faithful.csv", "-k", "1", "--n-jobs", "0")
    assert bad.exit_code == 2 and "n_jobs must be" in bad.output


def test_fit_takes_mclust_names(tmp_path):
    result = run("fit", DATA / "faithful.csv", "-m", "gaussian", "-k", "3", "--covariance-type", "VVE",
                 "--init-params", "hc", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    reference = json.loads((Path(__file__).parent / "data" / "mclust_reference.json").read_text())
    assert out["loglik"] >= reference["fits"]["VVE,3"]["loglik"] - 1e-6


# --------------------------------------------------------------------------- engine options from the command line
def test_gaussian_fit_plots_and_predict(tmp_path):
    picture, model = tmp_path / "fit.png", tmp_path / "g.emkit"
    result = run("fit", DATA / "faithful.csv", "-m", "gaussian", "--covariance-type", "diag", "--n-init", "2",
                 "--random-state", "0", "--plot", picture, "--save", model, "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert np.shape(out["params"]["covariances"]) == (2, 2)  # diag: (K, D)
    from PIL import Image
    assert Image.open(picture).size == (600, 400)
    assert Image.open(tmp_path / "fit_snapshots.png").size == (1020, 600)
    result = run("predict", model, DATA / "faithful.csv")
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert len(rows) == 273 and rows[0] == ["row", "label", "p0", "p1"]
    proba = emkit.load(model).predict_proba(emkit.datasets.load_faithful())
    np.testing.assert_array_equal(np.array([[float(v) for v in r[2:]] for r in rows[1:]]), proba)


def test_accelerate_and_algorithms_reach_consistent_fits():
    base = ["fit", DATA / "hasselblad_deaths.csv", "-m", "poisson", "-c", "deaths", "--weights", "freq",
            "--random-state", "0", "--tol", "1e-13", "--json"]
    plain = json.loads(run(*base).stdout)
    fast = json.loads(run(*base, "--accelerate", "squarem").stdout)
    # the same maximum; the count of EM-map evaluations (not time) shows the acceleration
    assert fast["loglik"] == pytest.approx(plain["loglik"], abs=1e-7)
    assert fast["n_em_evaluations"] < plain["n_em_evaluations"]
    hard = json.loads(run(*base, "--algorithm", "hard", "-q").stdout)
    assert hard["loglik"] <= plain["loglik"] + 1e-9


def test_fixed_weights_stay_put():
    result = run("fit", DATA / "two_coins.csv", "-m", "binomial", "--successes", "heads", "--trials", "10",
                 "--fixed", "weights", "--random-state", "0", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    start = emkit.BinomialMixture(2, random_state=0, max_iter=0, tol=0).fit(
        np.array([5, 9, 8, 4, 7]), trials=10).weights_
    assert out["params"]["weights"] == list(start)
    result = run("fit", DATA / "two_coins.csv", "-m", "binomial", "--trials", "10", "--fixed", "banana")
    assert result.exit_code == 2 and "banana" in result.stderr


def test_gaussian_keeps_rows_with_missing_values(tmp_path):
    p = write(tmp_path, "nan.csv", "x,y\n1,2\n1.5,NA\n5,6\n5.5,6.2\n1.2,2.5\n,6.1\n4.8,5.7\n0.9,2.2\n")
    result = run("fit", p, "-m", "gaussian", "--covariance-type", "diag", "--random-state", "0", "--json")
    assert result.exit_code == 0, result.output
    x = np.array([[1, 2], [1.5, np.nan], [5, 6], [5.5, 6.2], [1.2, 2.5], [np.nan, 6.1], [4.8, 5.7], [0.9, 2.2]])
    direct = emkit.GaussianMixture(2, covariance_type="diag", random_state=0).fit(x)
    assert json.loads(result.stdout)["loglik"] == pytest.approx(direct.loglik_, abs=1e-9)
    # a Poisson mixture has no missing-value model: the first NA is reported by row and column
    result = run("fit", p, "-m", "poisson", "-c", "y")
    assert result.exit_code == 1 and f"{p}: row 3, column 'y': missing value" in result.stderr


def test_summary_of_a_tied_gaussian_and_exponential_standard_error():
    result = run("fit", DATA / "faithful.csv", "-m", "gaussian", "--covariance-type", "tied", "--random-state", "0")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    # the shared covariance is not split across the two component rows
    assert sum(1 for l in lines if re.match(r"│\s+[01] │", l)) == 2
    assert any(l.startswith("│ covariances") for l in lines)
    result = run("fit", DATA / "faithful.csv", "-m", "exponential", "-c", "waiting", "--se", "sem")
    waiting = emkit.datasets.load_faithful()[:, 1]
    rate = 1 / waiting.mean()
    # exponential: I(rate) = n / rate^2, so SE = rate / sqrt(n)
    assert f"{rate:.6g} ± {rate / np.sqrt(len(waiting)):.3g}" in result.stdout
    assert "one standard error (sem)" in result.stdout


# --------------------------------------------------------------------------- more bad input
def test_parquet_inf_and_empty(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table({"x": [1.0, np.inf]}), tmp_path / "inf.parquet")
    with pytest.raises(cli.DataError, match=r"inf.parquet: row 2, column 'x': not a number 'inf'"):
        cli.read_table(tmp_path / "inf.parquet")
    pq.write_table(pa.table({"x": pa.array([], type=pa.float64())}), tmp_path / "empty.parquet")
    with pytest.raises(cli.DataError, match="empty.parquet: no data rows"):
        cli.read_table(tmp_path / "empty.parquet")


@pytest.mark.parametrize("args, code, message", [
    (["-m", "poisson", "-c", "n", "--weights", "w"], 1, "column 'w' not found"),
    (["-m", "binomial", "--successes", "s", "--trials", "10"], 1, "column 's' not found"),
    (["-m", "binomial", "--successes", "n", "--trials", "t"], 1, "column 't' not found"),
    (["-m", "exponential", "-c", "n", "--algorithm", "hard"], 2, "needs a mixture"),
    (["-m", "exponential", "-c", "n", "--weights", "m"], 2, "--weights is not supported"),
])
def test_more_column_and_option_errors(tmp_path, args, code, message):
    p = write(tmp_path, "good.csv", "n,m\n1,2\n3,4\n5,2\n")
    result = run("fit", p, *args)
    assert result.exit_code == code, result.output
    assert message in result.stderr


def test_select_with_nothing_fittable(tmp_path):
    p = write(tmp_path, "two.csv", "x,y\n1,2\n3,4\n")
    result = run("select", p, "--components", "3-4", "--covariance-type", "full", "-q")
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"emkit: error: {p}: ") and re.search(r"n_components ?= ?3", result.stderr)


def test_predict_needs_a_mixture_and_trials(tmp_path):
    p = write(tmp_path, "life.csv", "hours\n2.5\n0.7\n1.9\n")
    model = tmp_path / "e.emkit"
    assert run("fit", p, "-m", "exponential", "--save", model).exit_code == 0
    result = run("predict", model, p)
    assert result.exit_code == 1 and "a Exponential has no components to predict" in result.stderr
    # a binomial model fitted in Python with a different number of trials per run
    coins = emkit.BinomialMixture(2, random_state=0).fit([5, 9, 8, 4, 7], trials=[10, 10, 10, 10, 12])
    coins.save(tmp_path / "c.emkit")
    data = write(tmp_path, "heads.csv", "heads\n5\n9\n")
    result = run("predict", tmp_path / "c.emkit", data)
    assert result.exit_code == 2 and "needs --trials" in result.stderr
    result = run("predict", tmp_path / "c.emkit", data, "--trials", "10")
    assert result.exit_code == 0
    rows = list(csv.reader(io.StringIO(result.stdout)))
    np.testing.assert_array_equal(np.array([[float(v) for v in r[2:]] for r in rows[1:]]),
                                  coins.predict_proba([5, 9], trials=10))
