"""The ``emkit`` command line (needs the ``cli`` extra: click, rich).

::

    emkit fit DATA --model gaussian|poisson|binomial|exponential [options]
    emkit select DATA --components 1-9
    emkit predict MODEL DATA [--output FILE]
    emkit demo [--plots DIR]

DATA is a CSV or TSV file with a header row (or none, when the first row is all numbers:
columns are then named ``1``, ``2``, ...) or a Parquet file (needs pyarrow). Empty fields and
``NA`` / ``NaN`` are missing values. Row numbers in messages are line numbers in the file.

Exit codes: 0 success, 1 a problem with the data or the fit (one line naming the file, row
and column), 2 a usage error (unknown option, bad value), 130 interrupted (Ctrl-C / SIGINT).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

import emkit
from emkit import plot
from emkit.core.arrays import to_numpy
from emkit.core.validation import check_fixed_groups
from emkit.demo import main as demo_main
from emkit.estimators.registry import estimator_class, registry_name
from emkit.io import load as load_model
from emkit.progress import FitProgress

try:
    import click
except ImportError:  # pragma: no cover - exercised only without the extra
    click = None

MISSING = {"", "na", "nan", "n/a", "null"}
#: exit code of an interrupted command (Ctrl-C / SIGINT): 128 + SIGINT, as shells report it
INTERRUPTED = 130


# --------------------------------------------------------------------------- what the CLI knows of estimators
@dataclass(frozen=True)
class Feeding:
    """How the command line feeds data to one estimator class (see :data:`FEEDING`)."""

    #: NaN entries are missing values that EM fills in (otherwise every value is required)
    missing_values: bool = False
    #: one selected column goes in as a 1-D array
    vector: bool = False
    #: successes out of trials: the data methods take ``trials=`` (and the first column)
    trials: bool = False
    #: ``fit`` takes ``sample_weight=``
    weights: bool = True


#: the one table of per-estimator facts, by registry name (other estimators: the defaults)
FEEDING: dict[str, Feeding] = {
    "GaussianMixture": Feeding(missing_values=True),
    "PoissonMixture": Feeding(vector=True),
    "BinomialMixture": Feeding(vector=True, trials=True),
    "ExponentialMixture": Feeding(vector=True),
    "NormalMixture": Feeding(vector=True),
    "Exponential": Feeding(missing_values=True, vector=True, weights=False),
}


@dataclass(frozen=True)
class CliModel:
    """One choice of ``--model``."""

    #: registry name of the estimator fitted
    estimator: str
    #: registry name of the estimator for ``--components 1`` (None: ``estimator``)
    single: str | None = None
    #: default ``--components``
    components: int = 2
    #: the data is exactly one column
    one_column: bool = False
    #: ``--covariance-type`` applies
    covariance_type: bool = False
    #: ``--plot`` also draws snapshots of the fit (2-D data), which needs the parameter history
    snapshots: bool = False


#: the ``--model`` choices
MODELS: dict[str, CliModel] = {
    "gaussian": CliModel("GaussianMixture", covariance_type=True, snapshots=True),
    "poisson": CliModel("PoissonMixture"),
    "binomial": CliModel("BinomialMixture"),
    "exponential": CliModel("ExponentialMixture", single="Exponential", components=1, one_column=True),
}


def feeding(estimator) -> Feeding:
    """The :class:`Feeding` of an estimator (by its registry name)."""
    return FEEDING.get(registry_name(type(estimator)) or "", Feeding())


# --------------------------------------------------------------------------- errors
if click is not None:
    class DataError(click.ClickException):
        """A problem with the input data or the fit: exit code 1, one line."""

        exit_code = 1

        def show(self, file=None) -> None:
            click.echo(f"emkit: error: {self.format_message()}", err=True)
else:  # pragma: no cover
    class DataError(Exception):
        pass


# --------------------------------------------------------------------------- reading data
class Table:
    """Numeric columns read from a file: ``names`` and a float matrix ``values`` (NaN = missing).

    ``lines[i]`` is the file line of data row i, for messages.
    """

    def __init__(self, path: str, names: list[str], values: np.ndarray, lines: np.ndarray) -> None:
        self.path = path
        self.names = names
        self.values = values
        self.lines = lines

    def column(self, name: str) -> np.ndarray:
        return self.values[:, self.index(name)]

    def index(self, name: str) -> int:
        if name in self.names:
            return self.names.index(name)
        raise DataError(f"{self.path}: column {name!r} not found; columns are {', '.join(map(repr, self.names))}")

    def select(self, names: Sequence[str]) -> np.ndarray:
        return self.values[:, [self.index(n) for n in names]]

    def require_complete(self, names: Sequence[str]) -> None:
        """A clear error at the first missing value among ``names``."""
        cols = [self.index(n) for n in names]
        missing = np.isnan(self.values[:, cols])
        if missing.any():
            row, col = np.argwhere(missing)[0]
            raise DataError(f"{self.path}: row {self.lines[row]}, column {names[col]!r}: missing value "
                            f"(this model needs every value)")


def _parse_number(text: str) -> float:
    stripped = text.strip()
    if stripped.lower() in MISSING:
        return math.nan
    value = float(stripped)  # raises ValueError for text
    if math.isinf(value):
        raise ValueError("inf")
    return value


def _looks_numeric(fields: list[str]) -> bool:
    for f in fields:
        try:
            _parse_number(f)
        except ValueError:
            return False
    return any(f.strip().lower() not in MISSING for f in fields)


def read_table(path: str | Path) -> Table:
    """Read a CSV / TSV (or Parquet) file of numbers with clear errors.

    Raises
    ------
    DataError
        Naming the file, and the row (file line) and column at fault: missing or empty file,
        ragged rows, text where a number belongs, inf, duplicate column names.
    """
    shown = str(path)
    p = Path(path)
    if not p.exists():
        raise DataError(f"{shown}: no such file")
    if p.is_dir():
        raise DataError(f"{shown}: is a directory, not a data file")
    if p.suffix.lower() in (".parquet", ".pq"):
        return _read_parquet(p, shown)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{shown}: not a text file (byte {exc.start} is not UTF-8)") from None
    if not text.strip():
        raise DataError(f"{shown}: empty file")
    if p.suffix.lower() in (".tsv", ".tab"):
        delimiter = "\t"
    elif p.suffix.lower() == ".csv":
        delimiter = ","
    else:
        first = text.splitlines()[0]
        delimiter = "\t" if "\t" in first else ";" if first.count(";") > first.count(",") else ","
    # the csv module reads the whole text, so a quoted field may hold a newline (it is then one
    # field, reported whole); each row is numbered by the file line where it starts
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[tuple[int, list[str]]] = []
    last_line = 0
    try:
        for r in reader:
            rows.append((last_line + 1, r))
            last_line = reader.line_num
    except csv.Error as exc:
        raise DataError(f"{shown}: row {reader.line_num}: {exc}") from None
    rows = [(n, r) for n, r in rows if any(f.strip() for f in r)]  # blank lines are not rows
    first_line, header = rows[0]
    if _looks_numeric(header):
        names = [str(i + 1) for i in range(len(header))]
        body = rows
    else:
        names = [h.strip() for h in header]
        body = rows[1:]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise DataError(f"{shown}: duplicate column name(s) {', '.join(map(repr, dupes))} in the header")
        if any(not n for n in names):
            raise DataError(f"{shown}: row {first_line}: the header has an empty column name")
    if not body:
        raise DataError(f"{shown}: no data rows (only a header: {', '.join(names)})")
    values = np.empty((len(body), len(names)))
    lines = np.empty(len(body), dtype=int)
    for i, (line, fields) in enumerate(body):
        if len(fields) != len(names):
            raise DataError(f"{shown}: row {line} has {len(fields)} field(s), expected {len(names)} "
                            f"(columns are {', '.join(names)})")
        lines[i] = line
        for j, field in enumerate(fields):
            try:
                values[i, j] = _parse_number(field)
            except ValueError:
                raise DataError(f"{shown}: row {line}, column {names[j]!r}: not a number {field.strip()!r}") from None
    return Table(shown, names, values, lines)


def _read_parquet(p: Path, shown: str) -> Table:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{shown}: reading Parquet needs pyarrow (pip install 'emkit[parquet]')") from None
    try:
        table = pq.read_table(p)
    except Exception as exc:  # pyarrow raises its own error types for damaged files
        raise DataError(f"{shown}: not a readable Parquet file ({exc})") from None
    if table.num_rows == 0:
        raise DataError(f"{shown}: no data rows")
    names, cols = [], []
    for name, column in zip(table.column_names, table.columns):
        try:
            arr = np.asarray(column.to_numpy(zero_copy_only=False), dtype=float)
        except (TypeError, ValueError):
            raise DataError(f"{shown}: column {name!r} is not numeric ({column.type})") from None
        if np.isinf(arr).any():
            row = int(np.argmax(np.isinf(arr)))
            raise DataError(f"{shown}: row {row + 1}, column {name!r}: not a number 'inf'")
        names.append(str(name))
        cols.append(arr)
    return Table(shown, names, np.column_stack(cols), np.arange(1, table.num_rows + 1))


# --------------------------------------------------------------------------- building fits
def _parse_components(text: str) -> list[int]:
    """``"3"`` -> [3]; ``"1-9"`` -> [1..9]; ``"1,2,5"`` -> [1, 2, 5]."""
    out: list[int] = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m:
            raise click.BadParameter(f"{text!r} is not a number, a range like 1-9 or a list like 1,2,5")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if lo < 1 or hi < lo:
            raise click.BadParameter(f"{part.strip()!r}: need 1 <= first <= last")
        out.extend(range(lo, hi + 1))
    return sorted(set(out))


def _split_names(values: Sequence[str]) -> list[str]:
    return [n.strip() for v in values for n in v.split(",") if n.strip()]


def _engine_settings(opts: dict) -> dict:
    settings = {k: opts[k] for k in ("tol", "max_iter", "n_init", "random_state") if opts.get(k) is not None}
    if opts.get("fixed"):
        settings["fixed"] = _split_names(opts["fixed"])
    if opts.get("algorithm") and opts["algorithm"] != "em":
        settings["algorithm"] = opts["algorithm"]
    if opts.get("accelerate"):
        settings["accelerate"] = opts["accelerate"]
    if opts.get("checkpoint"):
        settings["checkpoint"] = opts["checkpoint"]
    if opts.get("checkpoint_every") is not None:
        settings["checkpoint_every"] = opts["checkpoint_every"]
    return settings


def _parse_checkpoint_every(ctx: Any, param: Any, value: str | None) -> int | float | None:
    """--checkpoint-every: "10" is 10 iterations; "30s" or "2.5" are seconds."""
    if value is None:
        return None
    text = value.strip().lower()
    try:
        if text.endswith("s"):
            every: int | float = float(text[:-1])
        elif text.isdigit():
            every = int(text)
        else:
            every = float(text)
    except ValueError:
        every = -1
    if not (every > 0 and math.isfinite(every)) or (isinstance(every, int) and every < 1):
        raise click.BadParameter(f"{value!r}: give a number of iterations (10) or of seconds (30s, 2.5)")
    return every


def _data_columns(table: Table, model: str, opts: dict) -> dict:
    """Which columns feed the model: {"X": [...], "successes": c, "trials": c or number, "weights": c}."""
    spec: dict[str, Any] = {"weights": opts.get("weights")}
    if spec["weights"] is not None:
        table.index(spec["weights"])
    if FEEDING[MODELS[model].estimator].trials:
        successes = opts.get("successes")
        if successes is None:
            named = _split_names(opts.get("columns") or ())
            successes = named[0] if named else table.names[0]
        table.index(successes)
        trials = opts.get("trials")
        if trials is None:
            raise click.UsageError(f"--model {model} needs --trials COLUMN or --trials NUMBER")
        try:
            number = float(trials)
        except ValueError:
            table.index(trials)
            spec["trials"] = trials
        else:
            if not (number >= 1 and number == int(number)):
                raise click.BadParameter(f"--trials must be a column or a whole number >= 1, got {trials!r}")
            spec["trials"] = number
        spec["X"] = [successes]
        return spec
    named = _split_names(opts.get("columns") or ())
    if named:
        for n in named:
            table.index(n)
        columns = named
    else:
        columns = [n for n in table.names if n != spec["weights"]]
    if MODELS[model].one_column and len(columns) != 1:
        raise click.UsageError(f"--model {model} takes one column; {table.path} has "
                               f"{', '.join(columns)}: choose one with --columns")
    spec["X"] = columns
    return spec


def _make_estimator(model: str, components: int, opts: dict, callback):
    try:
        return _build_estimator(model, components, opts, callback)
    except (ImportError, AttributeError) as exc:
        raise DataError(f"--model {model} is not available in this installation of emkit ({exc})") from None


def _build_estimator(model: str, components: int, opts: dict, callback):
    choice = MODELS[model]
    settings = _engine_settings(opts)
    if callback is not None:
        settings["callback"] = callback
    if opts.get("covariance_type"):
        if not choice.covariance_type:
            raise click.UsageError("--covariance-type applies to --model "
                                   + " | ".join(m for m, c in MODELS.items() if c.covariance_type) + " only")
        settings["covariance_type"] = opts["covariance_type"]
    if opts.get("plot") and choice.snapshots:
        settings["keep_history"] = True  # for the snapshots picture
    if components == 1 and choice.single is not None:  # e.g. the one-rate model handles NaN by EM
        if "algorithm" in settings:
            raise click.UsageError(f"--algorithm {settings['algorithm']} needs a mixture; the one-component "
                                   f"{model} model has no discrete latent variable")
        return estimator_class(choice.single)(**settings)
    return estimator_class(choice.estimator)(components, **settings)


def _check_fixed(estimator, opts: dict) -> None:
    """--fixed names must be parameter groups of the model: a usage error otherwise."""
    names = _split_names(opts.get("fixed") or ())
    if not names:
        return
    try:
        groups = list(estimator.param_groups())
    except Exception:  # the fit itself will report a model that cannot be built
        return
    try:
        check_fixed_groups(names, groups, "this model")
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--fixed") from None


def _fit_arguments(table: Table, spec: dict, estimator) -> tuple[tuple, dict]:
    x = table.select(spec["X"])
    feed = feeding(estimator)
    needs_complete = [] if feed.missing_values else list(spec["X"])
    if spec.get("weights"):
        needs_complete.append(spec["weights"])
    if isinstance(spec.get("trials"), str):
        needs_complete.append(spec["trials"])
    table.require_complete(needs_complete)
    kwargs: dict[str, Any] = {}
    if feed.trials:
        trials = spec["trials"]
        kwargs["trials"] = table.column(trials) if isinstance(trials, str) else trials
        x = x[:, 0]
    elif feed.vector and x.shape[1] == 1:
        x = x[:, 0]
    if spec.get("weights"):
        if not feed.weights:
            raise click.UsageError(f"--weights is not supported by {type(estimator).__name__}")
        kwargs["sample_weight"] = table.column(spec["weights"])
    return (x,), kwargs


def _run_fit(estimator, args, kwargs, path: str, quiet: bool):
    progress = estimator.callback if hasattr(estimator, "callback") else None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if isinstance(progress, FitProgress):
                with progress:
                    estimator.fit(*args, **kwargs)
            else:
                estimator.fit(*args, **kwargs)
    except ValueError as exc:
        raise DataError(f"{path}: {exc}") from None
    for w in caught:
        if not quiet:
            click.echo(f"emkit: warning: {w.message}", err=True)
    if hasattr(estimator, "callback"):
        estimator.set_params(callback=None)  # the display is closed; keep the saved model clean
    return estimator


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if hasattr(value, "shape"):
        return _jsonable(to_numpy(value).tolist())
    return value


def _criteria(estimator, args, kwargs) -> dict:
    out = {}
    for name in ("bic", "aic"):
        method = getattr(estimator, name, None)
        if method is None:
            continue
        extra = {"trials": kwargs["trials"]} if feeding(estimator).trials else {}
        try:
            out[name] = float(method(args[0], **extra, sample_weight=kwargs.get("sample_weight")))
        except (TypeError, ValueError, AttributeError, NotImplementedError):
            pass
    return out


def _format_value(value: Any, se: Any = None) -> str:
    v = np.asarray(value, dtype=float)
    if v.ndim == 0:
        text = f"{float(v):.6g}"
        if se is not None:
            text += f" ± {float(np.asarray(se)):.3g}"
        return text
    if se is None:
        return np.array2string(v, precision=5, separator=", ", suppress_small=True)
    s = np.asarray(se, dtype=float)
    return "[" + ", ".join(f"{a:.5g} ± {b:.2g}" for a, b in zip(v.ravel(), s.ravel())) + "]"


def _print_summary(console, estimator, path: str, spec: dict, ses: dict | None, criteria: dict,
                   se_method: str | None = None) -> None:
    from rich.markup import escape
    from rich.table import Table as RichTable

    params = {k: to_numpy(v) for k, v in estimator.params_.items()}
    k = getattr(estimator, "n_components", None)
    console.print(f"[bold]{type(estimator).__name__}[/bold] fitted to {escape(path)} "
                  f"(columns: {escape(', '.join(spec['X']))})", highlight=False, soft_wrap=True)

    def se_of(name):
        return None if ses is None else np.asarray(to_numpy(ses[name]))

    # groups with one entry per component go in one table (a tied covariance is shared)
    shared = {"covariances"} if getattr(estimator, "covariance_type", None) == "tied" else set()
    per_component = [g for g, v in params.items()
                     if k is not None and v.ndim >= 1 and v.shape[0] == k and g not in shared]
    if per_component:
        table = RichTable()
        table.add_column("component", justify="right")
        for name in per_component:
            table.add_column(name, justify="right")
        for c in range(k):
            table.add_row(str(c), *[_format_value(params[g][c], None if ses is None else se_of(g)[c])
                                    for g in per_component])
        console.print(table)
    others = [g for g in params if g not in per_component]
    if others:
        table = RichTable()
        table.add_column("parameter")
        table.add_column("estimate", justify="right")
        for name in others:
            table.add_row(name, _format_value(params[name], se_of(name)))
        console.print(table)
    facts = RichTable(show_header=False, box=None)
    facts.add_column(style="bold")
    facts.add_column(justify="right")
    facts.add_row("log-likelihood", f"{estimator.loglik_:.6f}")
    facts.add_row("iterations", str(estimator.n_iter_))
    facts.add_row("converged", "yes" if estimator.converged_ else "no")
    facts.add_row("EM evaluations", str(estimator.n_em_evaluations_))
    for name, value in criteria.items():
        facts.add_row(name.upper(), f"{value:.4f}")
    if ses is not None:
        facts.add_row("±", f"one standard error ({se_method})")
    console.print(facts)


def _write_plots(target: Path, estimator, model: str, args, kwargs, spec) -> list[Path]:
    target.parent.mkdir(parents=True, exist_ok=True)
    written = []
    ax = plot.trace(estimator)
    ax.figure.savefig(target)
    written.append(target)
    x = args[0]
    if MODELS[model].snapshots and np.ndim(x) == 2 and x.shape[1] >= 2:
        fig = plot.snapshots(x, estimator, feature_names=spec["X"])
        extra = target.with_name(f"{target.stem}_snapshots{target.suffix}")
        fig.savefig(extra)
        written.append(extra)
    elif hasattr(estimator, "predict_proba") and np.ndim(x) == 1:
        data_kwargs = {"trials": kwargs["trials"]} if feeding(estimator).trials else {}
        ax = plot.posterior(estimator, x, **data_kwargs)
        extra = target.with_name(f"{target.stem}_posterior{target.suffix}")
        ax.figure.savefig(extra)
        written.append(extra)
    return written


# --------------------------------------------------------------------------- commands
if click is not None:
    CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

    @click.group(context_settings=CONTEXT)
    @click.version_option(package_name="emkit", prog_name="emkit")
    def cli() -> None:
        """Expectation-Maximization from the command line."""

    def _engine_options(func):
        options = [
            click.option("--tol", type=click.FloatRange(min=0), help="Stopping tolerance (estimator's default rule)."),
            click.option("--max-iter", type=click.IntRange(min=0), help="Largest number of iterations per restart."),
            click.option("--n-init", type=click.IntRange(min=1), help="Restarts; the best is kept."),
            click.option("--random-state", type=int, help="Seed for initialisation (same seed, same fit)."),
            click.option("--quiet", "-q", is_flag=True, help="No progress display or warnings on stderr."),
        ]
        for option in reversed(options):
            func = option(func)
        return func

    @cli.command()
    @click.argument("data", type=click.Path(dir_okay=False))
    @click.option("--model", "-m", type=click.Choice(list(MODELS)), required=True, help="Component family.")
    @click.option("--components", "-k", type=click.IntRange(min=1), default=None,
                  help="Number of components (default 2; 1 for exponential).")
    @click.option("--covariance-type", type=click.Choice(["full", "tied", "diag", "spherical"]),
                  help="Gaussian covariance structure.")
    @_engine_options
    @click.option("--fixed", multiple=True, help="Parameter group(s) held at their start, e.g. weights.")
    @click.option("--columns", "-c", multiple=True, help="Columns to use (comma separated or repeated).")
    @click.option("--successes", help="Binomial: column of successes.")
    @click.option("--trials", help="Binomial: column of trials, or one number for all rows.")
    @click.option("--weights", help="Column of row frequencies (e.g. days with each count).")
    @click.option("--algorithm", type=click.Choice(["em", "hard", "stochastic"]), default="em", show_default=True)
    @click.option("--accelerate", type=click.Choice(["squarem", "anderson"]), help="Extrapolate the EM map.")
    @click.option("--se", type=click.Choice(["sem", "hessian", "bootstrap"]), help="Standard errors method.")
    @click.option("--json", "as_json", is_flag=True, help="Print a machine-readable JSON result.")
    @click.option("--save", "save_path", type=click.Path(dir_okay=False), help="Write the fitted model here.")
    @click.option("--plot", type=click.Path(dir_okay=False), help="Write pictures (trace, snapshots or posterior) as PNG.")
    @click.option("--checkpoint", type=click.Path(dir_okay=False),
                  help="Checkpoint file: written while the fit runs, resumed from if it exists (same command, "
                       "bit-identical result), removed after success.")
    @click.option("--checkpoint-every", callback=_parse_checkpoint_every, metavar="N|SECONDS",
                  help="Checkpoint every N iterations (10) or seconds (30s, 2.5); default 60s.")
    def fit(data: str, model: str, components: int | None, **opts: Any) -> None:
        """Fit a mixture (or the exponential model) to DATA (CSV, TSV or Parquet) by EM."""
        from rich.console import Console

        if opts.get("accelerate") and opts.get("algorithm") != "em":
            raise click.UsageError("--accelerate applies to --algorithm em only")
        if opts.get("checkpoint_every") is not None and not opts.get("checkpoint"):
            raise click.UsageError("--checkpoint-every needs --checkpoint FILE")
        if opts.get("plot") and Path(opts["plot"]).suffix.lower() != ".png":
            raise click.BadParameter(f"{opts['plot']!r} must end in .png", param_hint="--plot")
        components = components or MODELS[model].components
        table = read_table(data)
        spec = _data_columns(table, model, opts)
        try:
            estimator = _make_estimator(model, components, opts, None)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
        settings = estimator.get_params()
        progress = FitProgress(settings.get("n_init") or 1, settings.get("max_iter") or 1,
                               description=f"{model} K={components}", enabled=False if opts["quiet"] else None)
        if "callback" in settings:
            estimator.set_params(callback=progress)
        _check_fixed(estimator, opts)
        args, kwargs = _fit_arguments(table, spec, estimator)
        _run_fit(estimator, args, kwargs, data, opts["quiet"])
        # which columns fed the fit, saved with the model so `emkit predict` reads the same ones
        estimator.cli_data_ = {k: v for k, v in spec.items() if v is not None}
        ses = None
        if opts.get("se"):
            try:
                ses = estimator.standard_errors(method=opts["se"])
            except (ValueError, NotImplementedError, np.linalg.LinAlgError) as exc:
                raise DataError(f"{data}: standard errors ({opts['se']}) failed: {exc}") from None
        criteria = _criteria(estimator, args, kwargs)
        written = []
        if opts.get("save_path"):
            estimator.save(opts["save_path"])
            written.append(Path(opts["save_path"]))
        if opts.get("plot"):
            written += _write_plots(Path(opts["plot"]), estimator, model, args, kwargs, spec)
        if opts["as_json"]:
            out = {"file": data, "model": model, "estimator": type(estimator).__name__,
                   "columns": spec["X"], "n_components": components,
                   "params": estimator.params_, "loglik": estimator.loglik_, "n_iter": estimator.n_iter_,
                   "converged": estimator.converged_, "n_em_evaluations": estimator.n_em_evaluations_,
                   "trace": estimator.loglik_trace_, **criteria,
                   "standard_errors": ses, "files": [str(p) for p in written]}
            click.echo(json.dumps(_jsonable(out), indent=2))
            return
        console = Console(width=max(Console().width, 100))
        _print_summary(console, estimator, data, spec, ses, criteria, opts.get("se"))
        for p in written:
            console.print(f"wrote {p}")

    @cli.command()
    @click.argument("data", type=click.Path(dir_okay=False))
    @click.option("--components", "-k", default="1-9", show_default=True,
                  help="Numbers of components to compare: 3, 1-9 or 1,2,5.")
    @click.option("--covariance-type", "covariance_types", multiple=True,
                  type=click.Choice(["full", "tied", "diag", "spherical"]),
                  help="Covariance structure(s) to compare (default: all four).")
    @click.option("--columns", "-c", multiple=True, help="Columns to use (comma separated or repeated).")
    @click.option("--criterion", type=click.Choice(["bic", "aic", "icl"]), default="bic", show_default=True,
                  help="Which criterion picks the winner (lower is better).")
    @_engine_options
    @click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
    @click.option("--plot", type=click.Path(dir_okay=False), help="Write the BIC/ICL picture as PNG.")
    def select(data: str, components: str, covariance_types: tuple, columns: tuple, criterion: str,
               **opts: Any) -> None:
        """Compare Gaussian mixtures on DATA by BIC and ICL and name the winner."""
        from rich.console import Console
        from rich.table import Table as RichTable

        ks = _parse_components(components)
        table = read_table(data)
        names = _split_names(columns) or table.names
        x = table.select(names)
        table.require_complete(names)
        settings = _engine_settings(opts)
        kwargs: dict[str, Any] = {"n_components": ks, "criterion": criterion, **settings}
        if covariance_types:
            kwargs["covariance_types"] = list(covariance_types)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore" if opts["quiet"] else "default")
                selection = emkit.select_mixture(x, **kwargs)
        except ValueError as exc:
            raise DataError(f"{data}: {exc}") from None
        records = _selection_records(selection)
        best_params = getattr(selection, "best_params", None)
        finite = [r for r in records if isinstance(r.get(criterion), (int, float)) and math.isfinite(r[criterion])]
        if not finite:
            raise DataError(f"{data}: no Gaussian mixture could be fitted "
                            f"({'; '.join(str(r.get('error')) for r in records if r.get('error'))})")
        best = next((r for r in finite if best_params and all(r.get(k) == v for k, v in best_params.items())),
                    min(finite, key=lambda r: r[criterion]))
        if opts.get("plot"):
            plot.bic(records).figure.savefig(opts["plot"])
        if opts["as_json"]:
            click.echo(json.dumps(_jsonable({"file": data, "columns": names, "criterion": criterion,
                                             "table": records, "best": best}), indent=2))
            return
        console = Console(width=max(Console().width, 100))
        console.print(f"Gaussian mixtures on {data} (columns: {', '.join(names)}); lower is better",
                      highlight=False, soft_wrap=True)
        out = RichTable()
        shown = ("n_components", "covariance_type", "loglik", "n_parameters", "bic", "aic", "icl")
        for col in shown:
            out.add_column(col, justify="right")
        for r in records:
            cells = []
            for col in shown:
                v = r.get(col)
                cells.append(f"{v:.3f}" if isinstance(v, float) else "-" if v is None else str(v))
            out.add_row(*cells, style="bold green" if r is best else None)
        console.print(out)
        for r in records:
            if r.get("error"):
                console.print(f"K={r['n_components']} {r.get('covariance_type')}: not fitted ({r['error']})",
                              highlight=False)
        console.print(f"winner by {criterion.upper()}: {best['n_components']} component(s), "
                      f"{best.get('covariance_type', 'full')} covariance ({criterion.upper()} {best[criterion]:.3f})",
                      highlight=False)

    @cli.command()
    @click.argument("model_file", metavar="MODEL", type=click.Path(dir_okay=False))
    @click.argument("data", type=click.Path(dir_okay=False))
    @click.option("--columns", "-c", multiple=True, help="Columns to use (default: those of the fit).")
    @click.option("--trials", help="Binomial: column of trials, or one number for all rows.")
    @click.option("--output", "-o", type=click.Path(dir_okay=False), help="CSV file to write (default: stdout).")
    def predict(model_file: str, data: str, columns: tuple, trials: str | None, output: str | None) -> None:
        """Write the most probable component and membership probabilities of each row of DATA."""
        try:
            estimator = load_model(model_file)
        except ValueError as exc:
            raise DataError(str(exc)) from None
        if not hasattr(estimator, "predict_proba"):
            raise DataError(f"{model_file}: a {type(estimator).__name__} has no components to predict")
        if not estimator.__sklearn_is_fitted__():
            raise DataError(f"{model_file}: the model is not fitted")
        table = read_table(data)
        stored = getattr(estimator, "cli_data_", {}) or {}
        names = _split_names(columns) or [str(n) for n in stored.get("X", [])] or table.names
        x = table.select(names)
        feed = feeding(estimator)
        if not feed.missing_values:  # an estimator that fills in missing values predicts such rows too
            table.require_complete(names)
        kwargs: dict[str, Any] = {}
        if feed.trials:
            x = x[:, 0]
            spec = trials if trials is not None else stored.get("trials")
            if spec is None:
                raise click.UsageError(f"this {type(estimator).__name__} model needs --trials COLUMN or NUMBER")
            try:
                kwargs["trials"] = float(spec)
            except ValueError:
                kwargs["trials"] = table.column(str(spec))
                table.require_complete([str(spec)])
        elif feed.vector and x.shape[1] == 1:
            x = x[:, 0]
        try:
            proba = np.asarray(estimator.predict_proba(x, **kwargs), dtype=float)
        except ValueError as exc:
            raise DataError(f"{data}: {exc}") from None
        labels = proba.argmax(axis=1)
        stream = open(output, "w", newline="") if output else sys.stdout
        try:
            writer = csv.writer(stream, lineterminator="\n")
            writer.writerow(["row", "label", *[f"p{k}" for k in range(proba.shape[1])]])
            for i, (label, p) in enumerate(zip(labels, proba)):
                writer.writerow([i + 1, int(label), *[repr(float(v)) for v in p]])
        finally:
            if output:
                stream.close()

    @cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                   "help_option_names": []})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def demo(args: tuple) -> None:
        """Run the seeds' worked examples (emkit demo [--plots DIR])."""
        code = demo_main(list(args))
        if code:
            raise SystemExit(code)


def _selection_records(selection: Any) -> list[dict]:
    records = []
    for r in selection.table:
        records.append({k: (v.item() if hasattr(v, "item") and np.ndim(v) == 0 else v) for k, v in r.items()})
    return records


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``emkit`` script; returns the exit code (0, 1 data error, 2 usage,
    130 interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if click is None:
        if argv[:1] == ["demo"]:
            return int(demo_main(argv[1:]) or 0)
        print("emkit: the command line needs click and rich: pip install 'emkit[cli]'", file=sys.stderr)
        return 2
    try:
        result = cli.main(args=argv, prog_name="emkit", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):  # click turns Ctrl-C / SIGINT into Abort
            click.echo("emkit: interrupted", err=True)
            return INTERRUPTED
        click.echo("Aborted!", err=True)
        return 1
    except KeyboardInterrupt:  # SIGINT outside click's own handling
        click.echo("\nemkit: interrupted", err=True)
        return INTERRUPTED
    except SystemExit as exc:
        return int(exc.code or 0) if isinstance(exc.code, (int, type(None))) else 1
    return int(result) if isinstance(result, int) else 0


if __name__ == "__main__":
    raise SystemExit(main())
