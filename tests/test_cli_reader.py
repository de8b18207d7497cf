"""The command line on real files (issue 13, item 3): iris with its species column, European
CSVs, a pandas index column, other missing-value markers, Parquet; every estimator of the
registry through ``--model``; starting values and fixed groups; ``emkit select`` with the
data ``fit`` accepts."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

click_testing = pytest.importorskip("click.testing")
pytest.importorskip("rich")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

import emkit
from emkit import cli
from emkit.estimators.registry import ESTIMATORS

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def run(*args):
    runner = click_testing.CliRunner()
    return runner.invoke(cli.cli, [str(a) for a in args], catch_exceptions=False)


def ok(*args) -> dict:
    result = run(*args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.fixture(scope="module")
def iris():
    """Fisher's iris: 150 x 4 measurements and the species (scikit-learn ships the file)."""
    datasets = pytest.importorskip("sklearn.datasets")
    data = datasets.load_iris()
    return data.data, np.asarray(data.target_names)[data.target]


def iris_csv(path, iris, sep=",", decimal=".", index=None, na=None):
    x, species = iris
    lines = [sep.join(([index] if index is not None else []) + FEATURES + ["species"])]
    for i, (row, s) in enumerate(zip(x, species)):
        cells = [repr(float(v)).replace(".", decimal) for v in row]
        if na is not None and i == 3:
            cells[1] = na
        lines.append(sep.join(([str(i)] if index is not None else []) + cells + [s]))
    path.write_text("\n".join(lines) + "\n")
    return path


def gaussian_reference(x, k=3):
    return emkit.GaussianMixture(k, random_state=0).fit(x)


# --------------------------------------------------------------------------- iris, its species column
def test_iris_with_its_species_column(tmp_path, iris):
    p = iris_csv(tmp_path / "iris.csv", iris)
    result = run("fit", p, "-m", "gaussian", "-k", "3", "--random-state", "0", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["columns"] == FEATURES
    assert out["loglik"] == pytest.approx(gaussian_reference(iris[0]).loglik_, abs=1e-9)
    # the column left out is named on stderr, in one line
    assert result.stderr == ("emkit: note: left out 'species' (not numeric: text); choose columns with "
                             "--columns\n")
    # --quiet: no note
    assert run("fit", p, "-m", "gaussian", "-k", "3", "--random-state", "0", "-q", "--json").stderr == ""
    # the species named on purpose is an error naming its row and column
    result = run("fit", p, "-m", "gaussian", "-c", "species")
    assert result.exit_code == 1
    assert result.stderr == f"emkit: error: {p}: row 2, column 'species': not a number 'setosa'\n"
    table = cli.read_table(p)
    assert table.names == FEATURES and table.values.shape == (150, 4)
    np.testing.assert_array_equal(table.values, iris[0])


def test_text_columns_are_never_parsed_when_left_out(tmp_path):
    # the notes column holds commas, quotes and line breaks; --columns a leaves it unparsed
    p = write(tmp_path, "notes.csv", 'a,notes,b\n1,"x, ""y""\nz",2\n3,plain,x\n')
    table = cli.read_table(p, ["a"])
    assert table.values.tolist() == [[1.0], [3.0]] and table.lines.tolist() == [2, 4]
    with pytest.raises(cli.DataError, match=r"row 4, column 'b': not a number 'x'"):
        cli.read_table(p, ["b"])


def test_a_numeric_column_with_text_far_down_is_an_error_not_left_out(tmp_path):
    # the type of a column is told from its first block of rows; text later is an error
    rows = [f"{i},{i % 7}" for i in range(60_000)]
    rows[54_321] = "54321,oops"
    p = write(tmp_path, "long.csv", "id,count\n" + "\n".join(rows) + "\n")
    with pytest.raises(cli.DataError) as err:
        cli.read_table(p)
    assert err.value.message == f"{p}: row 54323, column 'count': not a number 'oops'"


# --------------------------------------------------------------------------- European CSVs
def test_european_csv_semicolons_and_decimal_commas(tmp_path, iris):
    p = iris_csv(tmp_path / "iris_eu.csv", iris, sep=";", decimal=",")
    # the separator is found by itself; the decimal comma is an option
    np.testing.assert_array_equal(cli.read_table(p, options=cli.ReadOptions(decimal=",")).values, iris[0])
    np.testing.assert_array_equal(cli.read_table(p, options=cli.ReadOptions(sep=";", decimal=",")).values,
                                  iris[0])
    out = ok("fit", p, "-m", "gaussian", "-k", "3", "--random-state", "0", "--decimal", ",", "-q", "--json")
    assert out["columns"] == FEATURES
    assert out["loglik"] == pytest.approx(gaussian_reference(iris[0]).loglik_, abs=1e-9)
    # without --decimal: an error that says what to do (never a wrong number)
    result = run("fit", p, "-m", "gaussian", "-k", "3")
    assert result.exit_code == 1
    assert result.stderr.strip() == (f"emkit: error: {p}: row 2, column 'sepal_length': not a number '5,1' "
                                     f"(a decimal comma? read it with --decimal ,)")


def test_european_csv_with_missing_values_and_spaces(tmp_path):
    p = write(tmp_path, "eu.csv", "x;y\n1,5; 2,25\n-0,5;NA\n;3\n1e3;,5\n")
    table = cli.read_table(p, options=cli.ReadOptions(decimal=","))
    np.testing.assert_array_equal(table.values, [[1.5, 2.25], [-0.5, np.nan], [np.nan, 3.0], [1000.0, 0.5]])


def test_separator_and_decimal_options_are_checked(tmp_path):
    p = write(tmp_path, "d.csv", "a,b\n1,2\n")
    for args, message in [(["--sep", ",", "--decimal", ","], "both ','"), (["--sep", ";;"], "one character"),
                          (["--decimal", "1"], "decimal mark")]:
        result = run("fit", p, "-m", "poisson", *args)
        assert result.exit_code == 2 and message in result.stderr, result.output
    # named separators
    tsv = write(tmp_path, "d.txt", "a\tb\n1\t2\n")
    assert cli.read_table(tsv, options=cli.ReadOptions(sep="\t")).names == ["a", "b"]
    assert ok("fit", tsv, "-m", "poisson", "--sep", "tab", "-c", "a", "-k", "1", "--json")["columns"] == ["a"]
    pipes = write(tmp_path, "p.csv", "a|b\n1|2\n3|4\n")
    assert cli.read_table(pipes).values.tolist() == [[1, 2], [3, 4]]


# --------------------------------------------------------------------------- a pandas index column
def test_pandas_to_csv_index_column(tmp_path, iris):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(iris[0], columns=FEATURES)
    frame["species"] = iris[1]
    p = tmp_path / "pandas.csv"
    frame.to_csv(p)  # ",sepal_length,...,species" then "0,5.1,..."
    result = run("fit", p, "-m", "gaussian", "-k", "3", "--random-state", "0", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["loglik"] == pytest.approx(gaussian_reference(iris[0]).loglik_, abs=1e-9)
    assert result.stderr == ("emkit: note: left out the unnamed first column (row index), 'species' "
                             "(not numeric: text); choose columns with --columns\n")
    # a named index: --index-col by name or position (1 is the first column)
    frame.index.name = "id"
    frame.to_csv(p)
    assert cli.read_table(p).names == ["id"] + FEATURES
    for index in ("id", "1"):
        table = cli.read_table(p, options=cli.ReadOptions(index_col=index))
        assert table.names == FEATURES
        np.testing.assert_array_equal(table.values, iris[0])
    assert ok("fit", p, "-m", "gaussian", "-k", "3", "--index-col", "id", "-q", "--json")["columns"] == FEATURES
    result = run("fit", p, "-m", "gaussian", "--index-col", "nope")
    assert result.exit_code == 1 and "--index-col 'nope' not found" in result.stderr
    # an empty name elsewhere than first is still an error
    with pytest.raises(cli.DataError, match="row 1: the header has an empty column name"):
        cli.read_table(write(tmp_path, "e.csv", "a,,b\n1,2,3\n"))


def test_pandas_index_above_numbered_columns(tmp_path):
    # pandas' to_csv() of a frame whose columns are 0, 1: the first line is a header all the same
    p = write(tmp_path, "n.csv", ",0,1\n0,0.5,1.5\n1,2.5,3.5\n")
    table = cli.read_table(p)
    assert table.names == ["0", "1"] and table.values.tolist() == [[0.5, 1.5], [2.5, 3.5]]
    # a headerless file whose first value is missing stays headerless
    q = write(tmp_path, "h.csv", ",2\n3,4\n")
    table = cli.read_table(q)
    assert table.names == ["1", "2"] and np.isnan(table.values[0, 0]) and table.values[1].tolist() == [3, 4]


def test_decimal_comma_never_splits_a_comma_separated_file(tmp_path):
    p = write(tmp_path, "c.csv", "a,b\n1,5\n")
    with pytest.raises(cli.DataError, match="give the separator with --sep"):
        cli.read_table(p, options=cli.ReadOptions(decimal=","))
    one = write(tmp_path, "one.csv", "x\n1,5\n-2,25\n")
    assert cli.read_table(one, options=cli.ReadOptions(decimal=",")).values[:, 0].tolist() == [1.5, -2.25]


def test_r_write_csv_row_names(tmp_path):
    # R's write.csv: "" then quoted row names
    p = write(tmp_path, "r.csv", '"","x","y"\n"1",1.5,2\n"2",3,4.5\n')
    table = cli.read_table(p)
    assert table.names == ["x", "y"] and table.values.tolist() == [[1.5, 2], [3, 4.5]]


# --------------------------------------------------------------------------- missing-value markers
def test_na_values(tmp_path, iris):
    p = iris_csv(tmp_path / "dots.csv", iris, na=".")
    result = run("fit", p, "-m", "gaussian", "-k", "3")
    assert result.exit_code == 1
    assert result.stderr.strip() == (f"emkit: error: {p}: row 5, column 'sepal_width': not a number '.' "
                                     f"(a missing-value marker? read it with --na-values .)")
    x = iris[0].copy()
    x[3, 1] = np.nan
    out = ok("fit", p, "-m", "gaussian", "-k", "3", "--random-state", "0", "--na-values", ".", "-q", "--json")
    assert out["loglik"] == pytest.approx(gaussian_reference(x).loglik_, abs=1e-9)
    table = cli.read_table(p, options=cli.ReadOptions(na_values=(".",)))
    np.testing.assert_array_equal(table.values, x)
    # several markers, comma separated or repeated; the usual ones in any case and with spaces
    q = write(tmp_path, "q.csv", "a,b\n1,-999\n?,2\n null ,3\n4, nA \nNaN,N/A\n5,6\n")
    table = cli.read_table(q, options=cli.ReadOptions(na_values=("-999", "?")))
    assert np.isnan(table.values[:5]).sum() == 6 and table.values[5].tolist() == [5, 6]
    for args in (["--na-values", "-999,?"], ["--na-values", "-999", "--na-values", "?"]):
        result = run("fit", q, "-m", "gaussian", "-k", "1", "-q", "--json", *args)
        assert result.exit_code == 1  # a row without any value is named by its line
        assert result.stderr.strip() == f"emkit: error: {q}: row 6: every column (a, b) is missing"
        result = run("select", q, "-k", "1", "-q", "--json", *args)
        assert result.exit_code == 1 and result.stderr.strip().endswith("row 6: every column (a, b) is missing")
    # a marker is a whole field: -9990 is a number
    r = write(tmp_path, "r.csv", "a\n-999\n-9990\n")
    assert np.isnan(cli.read_table(r, options=cli.ReadOptions(na_values=("-999",))).values[:, 0]).tolist() == \
        [True, False]


# --------------------------------------------------------------------------- Parquet
def test_parquet_with_text_and_a_pandas_index(tmp_path, iris):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(iris[0], columns=FEATURES, index=pd.Index(np.arange(150) * 2, name="id"))
    frame["species"] = iris[1]
    p = tmp_path / "iris.parquet"
    frame.to_parquet(p)
    result = run("fit", p, "-m", "gaussian", "-k", "3", "--random-state", "0", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["columns"] == FEATURES
    assert json.loads(result.stdout)["loglik"] == pytest.approx(gaussian_reference(iris[0]).loglik_, abs=1e-9)
    assert "'id' (row index)" in result.stderr and "'species' (not numeric:" in result.stderr
    result = run("fit", p, "-m", "gaussian", "-c", "species")
    assert result.exit_code == 1 and "column 'species' is not numeric" in result.stderr
    # nulls are missing values; only the columns asked for are read
    pq.write_table(pa.table({"a": pa.array([1.0, None, 3.0]), "b": pa.array([1, 2, None], pa.int32()),
                             "flag": pa.array([True, False, True])}), tmp_path / "n.parquet")
    table = cli.read_table(tmp_path / "n.parquet", ["b", "flag"])
    np.testing.assert_array_equal(table.values, [[1, 1], [2, 0], [np.nan, 1]])
    with pytest.raises(cli.DataError, match=r"n.parquet: row 3, column 'b': missing value"):
        table.require_complete(["b"])


# --------------------------------------------------------------------------- line numbers and odd files
@pytest.mark.parametrize("text, message", [
    # blank lines (also of spaces), CRLF and lone CR line ends: rows are named by their file line
    ("a,b\r\n1,2\r\n\r\n  \r\n3,x\r\n", "row 5, column 'b': not a number 'x'"),
    ("a,b\n1,2\n \t \n3,4\n5,y\n", "row 5, column 'b': not a number 'y'"),
    ("a,b\r1,2\r\r3,z\r", "row 4, column 'b': not a number 'z'"),
    ('\n  \na,b\n"1",2\n3,"w"\n', "row 5, column 'b': not a number 'w'"),
    ("\ufeffa,b\n1,2\n3,v\n", "row 3, column 'b': not a number 'v'"),
    ("a,b\n1,2\n3,4\n   \n  \n5,6,7\n", "row 6 has 3 field(s), expected 2 (columns are a, b)"),
    ("a,b\n1,2\n3,1.5.2\n", "row 3, column 'b': not a number '1.5.2'"),
    ("a,b\n1,2\n3,-inf\n", "row 3, column 'b': not a number '-inf'"),
    ("a,b\n1,2\n3, Infinity\n", "row 3, column 'b': not a number 'Infinity'"),
    ("x\n1\n2\n", None),
])
def test_rows_are_file_lines(tmp_path, text, message):
    p = tmp_path / "d.csv"
    p.write_bytes(text.encode("utf-8"))
    if message is None:
        assert cli.read_table(p).values.tolist() == [[1], [2]]
        return
    with pytest.raises(cli.DataError) as err:
        cli.read_table(p)
    assert err.value.message == f"{p}: {message}"


def test_missing_value_rows_are_file_lines(tmp_path):
    p = write(tmp_path, "m.csv", 'a,b\n"1\n",2\n\n3,\n')
    table = cli.read_table(p)
    assert table.values[0].tolist() == [1, 2] and table.lines.tolist() == [2, 5]
    with pytest.raises(cli.DataError, match=r"row 5, column 'b': missing value"):
        table.require_complete(["a", "b"])


def test_no_numeric_column(tmp_path):
    p = write(tmp_path, "t.csv", "name,city\nann,rome\nbob,oslo\n")
    with pytest.raises(cli.DataError) as err:
        cli.read_table(p)
    assert err.value.message == (f"{p}: no numeric column (column 'name' is not numeric (text); column 'city' "
                                 f"is not numeric (text))")
    result = run("fit", p, "-m", "poisson")
    assert result.exit_code == 1 and "no numeric column to use" in result.stderr


# --------------------------------------------------------------------------- every estimator through --model
def test_every_registered_estimator_has_a_model_choice():
    reached = {c.estimator for c in cli.MODELS.values()} | {c.single for c in cli.MODELS.values() if c.single}
    assert reached == set(ESTIMATORS)
    result = run("fit", "--help")
    for model in cli.MODELS:
        assert model in result.stdout
    for name in cli.SETTINGS:  # every declared setting is an option
        assert cli._option_name(name) in result.stdout


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    counts = np.concatenate([rng.poisson(1.0, 60), rng.poisson(6.0, 40)])
    binary = np.concatenate([rng.random((50, 4)) < 0.85, rng.random((50, 4)) < 0.15]).astype(int)
    codes = np.concatenate([rng.integers(0, 2, (40, 2)), rng.integers(1, 3, (40, 2))])
    return {
        "counts": write(tmp_path, "counts.csv", "n\n" + "\n".join(map(str, counts)) + "\n"),
        "binary": write(tmp_path, "binary.csv", "q1,q2,q3,q4\n" + "\n".join(",".join(map(str, r)) for r in binary)
                        + "\n"),
        "codes": write(tmp_path, "codes.csv", "u,v\n" + "\n".join(",".join(map(str, r)) for r in codes) + "\n"),
        "faithful": str(emkit.datasets.data_path("faithful.csv")),
        "coins": str(emkit.datasets.data_path("two_coins.csv")),
        "moth": str(emkit.datasets.data_path("peppered_moth_counts.csv")),
        "arrays": (counts, binary, codes),
    }


@pytest.mark.parametrize("model, data, args, reference", [
    ("gaussian", "faithful", [], lambda x: emkit.GaussianMixture(2, random_state=0).fit(x)),
    ("finite", "counts", ["--family", "poisson"], lambda x: emkit.FiniteMixture(n_components=2, family="poisson", random_state=0).fit(x)),
    ("poisson", "counts", [], lambda x: emkit.PoissonMixture(2, random_state=0).fit(x)),
    ("binomial", "coins", ["--successes", "heads", "--trials", "10"],
     lambda x: emkit.BinomialMixture(2, random_state=0).fit(x, trials=10)),
    ("exponential", "faithful", ["-c", "waiting", "-k", "2"],
     lambda x: emkit.ExponentialMixture(2, random_state=0).fit(x)),
    ("normal", "faithful", ["-c", "waiting"], lambda x: emkit.NormalMixture(2, random_state=0).fit(x)),
    ("multivariate-normal", "faithful", [],
     lambda x: emkit.MultivariateNormalMixture(2, random_state=0).fit(x)),
    ("bernoulli", "binary", [], lambda x: emkit.BernoulliMixture(2, random_state=0).fit(x)),
    ("categorical", "codes", [], lambda x: emkit.CategoricalMixture(2, random_state=0).fit(x)),
])
def test_every_family_from_the_command_line(files, model, data, args, reference):
    out = ok("fit", files[data], "-m", model, "--random-state", "0", "-q", "--json", *args)
    assert out["estimator"] == cli.MODELS[model].estimator
    table = cli.read_table(files[data], out["columns"] if model != "binomial" else ["heads"])
    x = table.values[:, 0] if table.values.shape[1] == 1 and model != "multivariate-normal" else table.values
    if model in ("bernoulli", "categorical", "multivariate-normal"):
        x = table.values
    expected = reference(x)
    assert out["loglik"] == pytest.approx(expected.loglik_, abs=1e-8)


def test_finite_binomial_takes_trials(files):
    out = ok("fit", files["coins"], "-m", "finite", "--family", "binomial", "--successes", "heads", "--trials",
             "tosses", "--random-state", "1", "-q", "--json")
    direct = emkit.FiniteMixture(n_components=2, family="binomial", random_state=1).fit([5, 9, 8, 4, 7], trials=10)
    assert out["loglik"] == pytest.approx(direct.loglik_, abs=1e-9)


def test_allele_frequencies_from_phenotype_counts(files, tmp_path):
    out = ok("fit", files["moth"], "-m", "alleles", "--dominance", "C>I>T", "--phenotype-names",
             "C=carbonaria,I=insularia,T=typica", "--json")
    moth = emkit.AlleleFrequencies.from_dominance("C>I>T", names={"C": "carbonaria", "I": "insularia",
                                                                  "T": "typica"})
    moth.fit({"carbonaria": 85, "insularia": 196, "typica": 341})
    assert out["frequencies"] == pytest.approx(moth.frequencies_, abs=1e-12)
    assert out["columns"] == ["phenotype", "count"]
    # one row per individual (no count column) gives the same fit; the summary names the alleles
    rows = ["carbonaria"] * 85 + ["insularia"] * 196 + ["typica"] * 341
    p = write(tmp_path, "moths.csv", "phenotype\n" + "\n".join(rows) + "\n")
    result = run("fit", p, "-m", "alleles", "--dominance", "C>I>T", "--phenotype-names",
                 "C=carbonaria,I=insularia,T=typica")
    assert result.exit_code == 0, result.output
    assert re.search(r"│ C\s+│\s+0\.0708", result.stdout)
    # the generic settings reach the same model
    phenotypes = json.dumps({"carbonaria": ["CC", "CI", "CT"], "insularia": ["II", "IT"], "typica": ["TT"]})
    out2 = ok("fit", files["moth"], "-m", "alleles", "--alleles", "C,I,T", "--phenotypes", phenotypes, "--json")
    assert out2["frequencies"] == pytest.approx(moth.frequencies_, abs=1e-12)
    abo = ok("fit", str(emkit.datasets.data_path("abo_counts.csv")), "-m", "alleles", "--dominance", "A=B>O",
             "--json")
    assert set(abo["frequencies"]) == {"A", "B", "O"}
    for args, message in [([], "needs --dominance"), (["--dominance", "C>I>T", "-k", "2"], "--components does not"),
                          (["--dominance", "C>C"], "repeats an allele")]:
        result = run("fit", files["moth"], "-m", "alleles", *args)
        assert result.exit_code == 2 and message in result.stderr, result.output


# --------------------------------------------------------------------------- starting values, fixed groups
def test_weights_init_and_fixed_weights_as_the_quick_start(files):
    out = ok("fit", files["coins"], "-m", "binomial", "--successes", "heads", "--trials", "10",
             "--probs-init", "0.6,0.5", "--weights-init", "0.5,0.5", "--fixed", "weights", "--json")
    coins = emkit.BinomialMixture(2, probs_init=[0.6, 0.5], weights_init=[0.5, 0.5], fixed=["weights"])
    coins.fit([5, 9, 8, 4, 7], trials=10)
    assert out["params"]["weights"] == [0.5, 0.5]
    assert out["params"]["probs"] == pytest.approx(list(coins.probs_), abs=1e-12)
    assert out["loglik"] == pytest.approx(coins.loglik_, abs=1e-12)


def test_gaussian_fixed_weights_and_starting_values(files, tmp_path):
    faithful = files["faithful"]
    result = run("fit", faithful, "-m", "gaussian", "--fixed", "weights")
    assert result.exit_code == 2
    assert "weights_init (--weights-init) must be given" in result.stderr
    out = ok("fit", faithful, "-m", "gaussian", "--fixed", "weights", "--weights-init", "0.3,0.7",
             "--means-init", "2,54;4.3,80", "-q", "--json")
    x = emkit.datasets.load_faithful()
    direct = emkit.GaussianMixture(2, weights_init=[0.3, 0.7], means_init=[[2, 54], [4.3, 80]],
                                   fixed=["weights"]).fit(x)
    assert out["params"]["weights"] == [0.3, 0.7]
    assert out["loglik"] == pytest.approx(direct.loglik_, abs=1e-9)
    # values from files: JSON, .npy, CSV of numbers
    (tmp_path / "means.json").write_text("[[2, 54], [4.3, 80]]")
    np.save(tmp_path / "means.npy", np.array([[2, 54], [4.3, 80]]))
    (tmp_path / "means.csv").write_text("2,54\n4.3,80\n")
    for name in ("means.json", "means.npy", "means.csv"):
        again = ok("fit", faithful, "-m", "gaussian", "--fixed", "weights", "--weights-init", "0.3,0.7",
                   "--means-init", f"@{tmp_path / name}", "-q", "--json")
        # (the covariances start from a k-means run without a seed: equal to rounding)
        assert again["loglik"] == pytest.approx(out["loglik"], rel=1e-13)
        np.testing.assert_allclose(again["params"]["means"], out["params"]["means"], rtol=1e-9)
    # --init: the --json output of a fit starts another at its end
    (tmp_path / "fit.json").write_text(json.dumps(out))
    held = ok("fit", faithful, "-m", "gaussian", "--init", tmp_path / "fit.json", "--fixed",
              "weights,means,covariances", "-q", "--json")
    assert held["loglik"] == pytest.approx(out["loglik"], abs=1e-9) and held["params"] == out["params"]
    # settings that do not apply, bad values, unknown groups: usage errors
    (tmp_path / "bad.json").write_text('{"rates": [1, 2]}')
    for args, message in [(["--rates-init", "1,2"], "--rates-init does not apply to --model gaussian"),
                          (["--reg-covar", "-1"], "reg_covar (--reg-covar) must be a number >= 0"),
                          (["--stop", "bogus"], "stop (--stop) must be one of"),
                          (["--init", tmp_path / "bad.json"], "'rates' is not a parameter group"),
                          (["--means-init", "@nope.json"], "nope.json: no such file")]:
        result = run("fit", faithful, "-m", "gaussian", *args)
        assert result.exit_code == 2 and message in result.stderr, result.output
    # a value the fit refuses (weights that do not sum to 1): one line naming the file
    result = run("fit", faithful, "-m", "gaussian", "--weights-init", "0.5,0.3", "-q")
    assert result.exit_code == 1 and result.stderr.startswith(f"emkit: error: {faithful}: ")


def test_exponential_starting_rates(files):
    one = ok("fit", files["faithful"], "-m", "exponential", "-c", "waiting", "--rate-init", "0.5", "-q", "--json")
    assert one["estimator"] == "Exponential"
    two = ok("fit", files["faithful"], "-m", "exponential", "-c", "waiting", "-k", "2", "--rates-init",
             "0.1,0.01", "-q", "--json")
    direct = emkit.ExponentialMixture(2, rates_init=[0.1, 0.01]).fit(emkit.datasets.load_faithful()[:, 1])
    assert two["loglik"] == pytest.approx(direct.loglik_, abs=1e-9)
    result = run("fit", files["faithful"], "-m", "exponential", "-c", "waiting", "--rates-init", "0.1")
    assert result.exit_code == 2 and "with one component" in result.stderr


@pytest.mark.parametrize("text, value", [
    ("0.3,0.7", [0.3, 0.7]), ("2,54;4.3,80", [[2, 54], [4.3, 80]]), ("[[1, 0], [0, 1]]", [[1, 0], [0, 1]]),
    ('{"rates": [1, 3]}', {"rates": [1, 3]}), ("3", 3), ("1e-4", 1e-4), ("none", None), ("C,I,T", ["C", "I", "T"]),
    ("loglik_abs", "loglik_abs"), ("0.5,", [0.5]),
])
def test_parse_setting(text, value):
    assert cli.parse_setting(text) == value


# --------------------------------------------------------------------------- select accepts what fit accepts
def test_select_with_missing_values_weights_and_data_options(tmp_path):
    x = np.array([[1, 2], [1.5, np.nan], [5, 6], [5.5, 6.2], [1.2, 2.5], [np.nan, 6.1], [4.8, 5.7], [0.9, 2.2],
                  [5.2, 5.9], [1.1, 1.8]])
    w = np.array([1, 2, 1, 3, 1, 1, 2, 1, 1, 2.0])
    rows = [";".join("." if np.isnan(v) else repr(float(v)).replace(".", ",") for v in r) + f";{w[i]:g};g{i}"
            for i, r in enumerate(x)]
    p = write(tmp_path, "eu.csv", "x;y;w;label\n" + "\n".join(rows) + "\n")
    result = run("select", p, "-k", "1-2", "--covariance-type", "diag", "--weights", "w", "--decimal", ",",
                 "--na-values", ".", "--random-state", "0", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["columns"] == ["x", "y"]
    assert "'label' (not numeric: text)" in result.stderr
    direct = emkit.select_mixture(x, n_components=[1, 2], covariance_types=["diag"], sample_weight=w,
                                  random_state=0)
    assert [r["bic"] for r in out["table"]] == pytest.approx([r["bic"] for r in direct.table], abs=1e-9)
    # fit accepts the same file and options
    ok("fit", p, "-m", "gaussian", "--covariance-type", "diag", "--weights", "w", "--decimal", ",",
       "--na-values", ".", "-c", "x,y", "-q", "--json")
    # and the Gaussian settings that are not per component
    out = ok("select", p, "-k", "1", "--covariance-type", "full", "--decimal", ",", "--na-values", ".",
             "-c", "x,y", "--reg-covar", "0.01", "-q", "--json")
    direct = emkit.select_mixture(x, n_components=[1], covariance_types=["full"], reg_covar=0.01)
    assert out["table"][0]["loglik"] == pytest.approx(direct.table[0]["loglik"], abs=1e-9)
    result = run("select", p, "--decimal", ",", "--na-values", ".", "--means-init", "1,2")
    assert result.exit_code == 2 and "No such option" in result.stderr


def test_predict_reads_with_the_same_options(tmp_path, iris):
    model = tmp_path / "iris.emkit"
    p = iris_csv(tmp_path / "iris.csv", iris)
    ok("fit", p, "-m", "gaussian", "-k", "3", "--random-state", "0", "-q", "--save", model, "--json")
    plain = run("predict", model, p).stdout
    eu = iris_csv(tmp_path / "iris_eu.csv", iris, sep=";", decimal=",", index="")
    assert run("predict", model, eu, "--decimal", ",").stdout == plain
