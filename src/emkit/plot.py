"""Pictures of EM at work (needs the ``plot`` extra: matplotlib, pillow).

Every function draws on a Matplotlib ``Axes`` you pass, or on a new
:class:`matplotlib.figure.Figure` rendered by the Agg backend when ``ax`` is None. No pyplot
state is touched, so this works headless (servers, CI, ``emkit fit --plot``) and leaves an
interactive session's backend alone. Save with ``ax.figure.savefig(path)``.

* :func:`trace` - observed log-likelihood per iteration, restarts overlaid.
* :func:`snapshots` - a 2-D Gaussian mixture at chosen iterations: points coloured by
  responsibility, covariance ellipses (the "after the n-th iteration" slides).
* :func:`bic` - BIC / ICL against the number of components (``select_mixture``'s table), one
  line per covariance type (mclust's fourteen forms too; ``mclust_sign=True`` for mclust's plot).
* :func:`uncertainty` - classification uncertainty of each row (mclust's uncertainty plot).
* :func:`posterior` - membership probabilities of each row (coins) or along x (1-D data).
* :func:`animate` - an animated GIF of the snapshots.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Sequence, cast

import numpy as np

from emkit.core.arrays import to_numpy
from emkit.models.gaussian import COVARIANCE_STRUCTURES, COVARIANCE_TYPES, GaussianMixtureModel, data_center

__all__ = ["trace", "snapshots", "bic", "posterior", "uncertainty", "animate",
           "full_covariances"]

#: component colours (colour-blind safe, Okabe & Ito)
COLORS = np.array([[0.000, 0.447, 0.698], [0.835, 0.369, 0.000], [0.000, 0.620, 0.451],
                   [0.800, 0.475, 0.655], [0.902, 0.624, 0.000], [0.337, 0.706, 0.914],
                   [0.941, 0.894, 0.259], [0.0, 0.0, 0.0]])


def _mpl():
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise ImportError("emkit.plot needs matplotlib: pip install 'emkit[plot]'") from None
    return matplotlib, Figure


def _new_axes(ax=None, figsize=(6.0, 4.0)):
    return ax if ax is not None else _new_figure(figsize).add_subplot()


def _new_figure(figsize):
    _, Figure = _mpl()
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = Figure(figsize=figsize, dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _result_of(fit: Any):
    """The EMResult of an EMResult or a fitted estimator."""
    if hasattr(fit, "loglik_trace") and hasattr(fit, "restarts"):
        return fit
    result = getattr(fit, "result_", None)
    if result is None:
        raise ValueError(f"expected an EMResult or a fitted emkit estimator, got {type(fit).__name__}")
    return result


# --------------------------------------------------------------------------- trace
def trace(fit_or_estimator: Any, ax: Any = None, *, title: str | None = None) -> Any:
    """Observed log-likelihood after each iteration; every restart drawn, the best one bold.

    Parameters
    ----------
    fit_or_estimator : EMResult or fitted estimator
        Restarts come from ``result.restarts`` (each keeps its ``loglik_trace``).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
    """
    result = _result_of(fit_or_estimator)
    ax = _new_axes(ax)
    restarts = list(getattr(result, "restarts", []) or [])
    best = int(getattr(result, "best_restart", 0) or 0)
    if len(restarts) > 1:
        for i, r in enumerate(restarts):
            if i == best:
                continue
            values = np.asarray(r.loglik_trace, dtype=float)
            ax.plot(np.arange(values.size), values, color="0.6", lw=1, marker=".", ms=3,
                    label="other restarts" if i == (1 if best == 0 else 0) else None)
    values = np.asarray(result.loglik_trace, dtype=float)
    ax.plot(np.arange(values.size), values, color=COLORS[0], lw=2, marker="o", ms=3,
            label=f"best run (restart {best})" if len(restarts) > 1 else "EM")
    ax.set_xlabel("iteration")
    ax.set_ylabel("observed log-likelihood")
    name = getattr(getattr(result, "model", None), "display_name", "EM")
    ax.set_title(title or f"{name}: log-likelihood {result.loglik:.4f}, {result.n_iter} iterations",
                 fontsize="medium")
    ax.grid(alpha=0.3)
    if len(restarts) > 1:
        ax.legend(loc="lower right", fontsize="small")
    return ax


# --------------------------------------------------------------------------- Gaussian snapshots
def full_covariances(covariances: Any, n_components: int, n_features: int,
                     covariance_type: str | None = None) -> np.ndarray:
    """Covariances of any scikit-learn covariance type as a (K, D, D) array.

    ``"full"`` (K, D, D), ``"tied"`` (D, D), ``"diag"`` (K, D), ``"spherical"`` (K,). When
    ``covariance_type`` is None it is inferred from the shape (ambiguous only if K == D, when a
    (D, D) array is read as diag).
    """
    cov = np.asarray(to_numpy(covariances), dtype=float)
    k, d = n_components, n_features
    if covariance_type is None:
        matches = [name for name, s in COVARIANCE_STRUCTURES.items() if s.shape(k, d) == cov.shape]
        if not matches:
            raise ValueError(f"covariances of shape {cov.shape} do not fit {k} components in {d} dimensions")
        covariance_type = matches[-1]
    structure = COVARIANCE_STRUCTURES.get(covariance_type) if isinstance(covariance_type, str) else None
    if structure is None:
        raise ValueError(f"unknown covariance_type {covariance_type!r}; choose one of {COVARIANCE_TYPES}")
    expected = structure.shape(k, d)
    if cov.shape != expected:
        raise ValueError(f"{covariance_type} covariances must have shape {expected}, got {cov.shape}")
    return structure.full_matrices(cov, k, d)


def _gaussian_responsibilities(X: np.ndarray, weights, means, covs) -> np.ndarray:
    """p(component k | x_i) for a Gaussian mixture with (K, D, D) covariances ``covs``: the
    model's own posterior (for colouring the points)."""
    model = GaussianMixtureModel(len(weights), "full", center=data_center(X))
    params = {"weights": np.asarray(weights, dtype=float), "means": np.asarray(means, dtype=float),
              "covariances": np.asarray(covs, dtype=float)}
    resp, _ = model.posterior((X,), params)
    return np.asarray(resp)


def _history_of(estimator_or_history: Any, iterations: Sequence[int], X) -> tuple[list[dict], str | None]:
    """Per-iteration parameter dicts and the covariance type, from whatever the user has."""
    if isinstance(estimator_or_history, (list, tuple)):
        return list(estimator_or_history), None
    result = getattr(estimator_or_history, "result_", estimator_or_history)
    cov_type = getattr(estimator_or_history, "covariance_type", None)
    history = getattr(result, "params_history", None)
    if history:
        return list(history), cov_type
    if hasattr(estimator_or_history, "get_params") and hasattr(estimator_or_history, "fit"):
        # refit a copy with the same settings, keeping every iteration up to the last one shown
        est = type(estimator_or_history)(**estimator_or_history.get_params())
        settings = est.get_params()
        updates = {"keep_history": True, "max_iter": max(iterations), "tol": 0.0}
        est.set_params(**{k: v for k, v in updates.items() if k in settings})
        if "callback" in settings:
            est.set_params(callback=None)
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X)
        return list(est.result_.params_history), cov_type
    raise ValueError("snapshots needs an estimator, an EMResult with params_history "
                     "(fit with keep_history=True) or a list of parameter dicts")


def _two_column_data(X: Any, caller: str) -> np.ndarray:
    """``X`` as a float NumPy matrix with at least two columns (what a scatter plot needs)."""
    x = np.asarray(to_numpy(X), dtype=float)
    if x.ndim != 2 or x.shape[1] < 2:
        raise ValueError(f"{caller} needs 2-D data with at least 2 columns, got shape {x.shape}")
    return x


def _draw_ellipses(ax, means: np.ndarray, covs: np.ndarray, palette: np.ndarray, dims=(0, 1),
                   widths=(2.0, 1.0)) -> None:
    """The 1- and 2-sd ellipses of each component's margin on columns ``dims`` (solid, dashed)."""
    from matplotlib.patches import Ellipse

    i, j = dims
    for c in range(len(means)):
        vals, vecs = np.linalg.eigh(covs[c][np.ix_([i, j], [i, j])])
        angle = float(np.degrees(np.arctan2(vecs[1, -1], vecs[0, -1])))
        for n_sd, lw, ls in ((1.0, widths[0], "-"), (2.0, widths[1], "--")):
            width, height = 2 * n_sd * np.sqrt(np.maximum(vals[::-1], 0))
            # cast: matplotlib's stubs ask a tuple for the centre; it takes any pair
            ax.add_patch(Ellipse(cast(Any, means[c, [i, j]]), width, height, angle=angle, fill=False,
                                 edgecolor=palette[c], lw=lw, ls=ls))


def _draw_gaussian_state(ax, X, params: dict, cov_type, *, dims=(0, 1), point_size=12):
    weights = np.asarray(to_numpy(params["weights"]), dtype=float)
    means = np.asarray(to_numpy(params["means"]), dtype=float)
    k, d = means.shape
    covs = full_covariances(params["covariances"], k, d, cov_type)
    resp = _gaussian_responsibilities(X, weights, means, covs)
    palette = COLORS[np.arange(k) % len(COLORS)]
    colours = np.clip(resp @ palette, 0, 1)  # a point half in each cluster gets the mixed colour
    i, j = dims
    ax.scatter(X[:, i], X[:, j], c=colours, s=point_size, edgecolors="none", alpha=0.85)
    _draw_ellipses(ax, means, covs, palette, dims)
    for c in range(k):
        ax.plot(*means[c, [i, j]], marker="x", color="k", ms=8, mew=2)


def snapshots(X: Any, estimator_or_history: Any, iterations: Iterable[int] = (1, 3, 5, 10, 15, 25), *,
              ncols: int = 3, dims: tuple[int, int] = (0, 1), covariance_type: str | None = None,
              feature_names: Sequence[str] | None = None, figsize: tuple[float, float] | None = None) -> Any:
    """A grid of a Gaussian-mixture fit after chosen iterations.

    Parameters
    ----------
    X : array of shape (n, D), D >= 2
        The data (columns ``dims`` are drawn).
    estimator_or_history : GaussianMixture, EMResult or list of dict
        A fit made with ``keep_history=True`` (its ``params_history``), a list of parameter
        dicts with ``"weights"``, ``"means"``, ``"covariances"``, or an estimator to refit
        (a copy is refitted with ``keep_history=True``; the estimator itself is untouched).
    iterations : iterable of int
        Iterations to show; 0 is the starting point. Those beyond convergence show the final fit.
    covariance_type : str, optional
        ``"full"``, ``"tied"``, ``"diag"`` or ``"spherical"``; read from the estimator when it
        has one, else inferred from the shapes.

    Returns
    -------
    matplotlib Figure
    """
    X = _two_column_data(X, "snapshots")
    iterations = [int(i) for i in iterations]
    if not iterations or min(iterations) < 0:
        raise ValueError(f"iterations must be non-negative integers, got {iterations}")
    history, cov_type = _history_of(estimator_or_history, iterations, X)
    cov_type = covariance_type or cov_type
    missing = {"weights", "means", "covariances"} - set(history[0])
    if missing:
        raise ValueError(f"parameter history lacks {sorted(missing)}; snapshots draws Gaussian mixtures")
    ncols = max(1, min(ncols, len(iterations)))
    nrows = -(-len(iterations) // ncols)
    fig = _new_figure(figsize or (3.4 * ncols, 3.0 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True)
    last = len(history) - 1
    for ax, it in zip(axes.ravel(), iterations):
        shown = min(it, last)
        _draw_gaussian_state(ax, X, history[shown], cov_type, dims=dims)
        label = f"iteration {it}" if it <= last else f"iteration {it} (converged at {last})"
        ax.set_title("start" if it == 0 else label, fontsize="medium")
    for ax in axes.ravel()[len(iterations):]:
        ax.set_visible(False)
    if feature_names is not None:
        for ax in axes[-1]:
            ax.set_xlabel(feature_names[dims[0]])
        for ax in axes[:, 0]:
            ax.set_ylabel(feature_names[dims[1]])
    return fig


def animate(X: Any, estimator_or_history: Any, path: str | os.PathLike, *,
            iterations: Iterable[int] | None = None, fps: float = 2.0,
            covariance_type: str | None = None, figsize: tuple[float, float] = (4.5, 4.0)) -> Path:
    """Write an animated GIF (pillow) of a 2-D Gaussian-mixture fit, one frame per iteration."""
    from PIL import Image

    X = np.asarray(to_numpy(X), dtype=float)
    iters = list(iterations) if iterations is not None else list(range(0, 26))
    history, cov_type = _history_of(estimator_or_history, iters or [1], X)
    cov_type = covariance_type or cov_type
    frames = []
    for it in iters:
        fig = _new_figure(figsize)
        ax = fig.add_subplot()
        _draw_gaussian_state(ax, X, history[min(it, len(history) - 1)], cov_type)
        ax.set_title(f"iteration {it}")
        fig.canvas.draw()
        frames.append(Image.fromarray(np.asarray(fig.canvas.buffer_rgba())).convert("RGB"))
    path = Path(path)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=int(1000 / fps), loop=0)
    return path


# --------------------------------------------------------------------------- model selection
def _records(table: Any) -> list[dict]:
    table = getattr(table, "table", getattr(table, "table_", table))
    if isinstance(table, dict) and all(isinstance(v, (list, tuple, np.ndarray)) for v in table.values()):
        keys = list(table)
        return [dict(zip(keys, row)) for row in zip(*table.values())]
    records = [dict(r) for r in table]
    if not records:
        raise ValueError("the selection table is empty")
    return records


#: line markers of the covariance types, so that fourteen lines stay apart beside the colours
MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "<", ">", "h", "p", "d", "8")


def bic(table: Any, ax: Any = None, *, criteria: Sequence[str] = ("bic", "icl"), zoom: bool = True,
        mclust_sign: bool = False) -> Any:
    """BIC and ICL against the number of components, one line per covariance type.

    Parameters
    ----------
    table : list of dict, dict of columns, or an object with ``.table``
        Records with ``n_components``, ``covariance_type`` (optional), ``bic``, ``icl``, as
        :func:`emkit.select_mixture` returns. Lower is better (scikit-learn's sign).
    zoom : bool
        Limit the y axis to the better part of the values (a poor covariance type's values can
        be far above and would flatten the interesting region near the minimum).
    mclust_sign : bool
        Plot mclust's sign (the negative: higher is better), as R's ``plot(mclustBIC(...))``:
        one line per covariance type in the table's order (mclust's fourteen forms), the best
        value starred. Degenerate and failed fits are left out (mclust's NA).

    Returns
    -------
    matplotlib Axes
    """
    records = _records(table)
    for crit in criteria:
        if not any(crit in r for r in records):
            raise ValueError(f"the selection table has no {crit!r} column; it has {sorted(records[0])}")
    ax = _new_axes(ax, figsize=(7.0, 4.5) if mclust_sign else (6.0, 4.0))
    types = list(dict.fromkeys(str(r.get("covariance_type", "")) for r in records))
    if not mclust_sign:
        types = sorted(types)
    factor = -1.0 if mclust_sign else 1.0
    styles = {"bic": "-", "icl": "--", "aic": ":"}
    best: dict[str, tuple[float, int, str]] = {}
    for t_index, cov_type in enumerate(types):
        rows = sorted((r for r in records if str(r.get("covariance_type", "")) == cov_type
                       and not r.get("degenerate") and not r.get("error")),
                      key=lambda r: r["n_components"])
        ks = [int(r["n_components"]) for r in rows]
        for crit in criteria:
            values = [factor * float(r.get(crit, np.nan)) for r in rows]
            label = cov_type if (mclust_sign and len(criteria) == 1) else f"{crit.upper()} {cov_type}".strip()
            ax.plot(ks, values, ls=styles.get(crit, "-"), marker=MARKERS[t_index % len(MARKERS)],
                    color=COLORS[t_index % len(COLORS)], label=label, ms=5)
            for k, v in zip(ks, values):
                if np.isfinite(v) and (crit not in best or factor * v < factor * best[crit][0]):
                    best[crit] = (v, k, cov_type)
    finite = np.array([factor * float(r.get(c, np.nan)) for r in records for c in criteria
                       if not r.get("degenerate") and not r.get("error")], dtype=float)
    finite = finite[np.isfinite(finite)]
    if zoom and finite.size > 4:
        low, upper = (finite.min(), np.quantile(finite, 0.6)) if not mclust_sign else \
            (np.quantile(finite, 0.4), finite.max())
        if upper > low:
            pad = 0.05 * (upper - low)
            ax.set_ylim(low - pad, upper + pad)
    for crit, (v, k, cov_type) in best.items():
        ax.plot([k], [v], marker="*", ms=16, color="k", ls="none")
        ax.annotate(f"best {crit.upper()}: K={k} {cov_type}".strip(), (k, v), textcoords="offset points",
                    xytext=(6, -14 if crit == "bic" else 10), fontsize="small")
    ax.set_xlabel("number of components")
    if mclust_sign:
        ax.set_ylabel(f"{'/'.join(c.upper() for c in criteria)} (mclust's sign: higher is better)")
        ax.legend(fontsize="x-small", ncol=2, loc="lower right")
    else:
        ax.set_ylabel("criterion (lower is better)")
        ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return ax


def uncertainty(estimator: Any, X: Any, ax: Any = None, *, dims: tuple[int, int] = (0, 1),
                feature_names: Sequence[str] | None = None, quantiles: tuple[float, float] = (0.75, 0.95)) -> Any:
    """Classification uncertainty of each row, as mclust's ``plot(fit, what = "uncertainty")``.

    Each row of ``X`` is drawn in the colour of its most probable component; the more uncertain
    its classification (``1 - max_k p(k | x)``), the larger the point: small below the
    ``quantiles[0]`` quantile of the uncertainties, medium up to ``quantiles[1]``, large above
    (mclust's three sizes). A Gaussian mixture's components get their 1- and 2-sd ellipses.

    Parameters
    ----------
    estimator : fitted mixture estimator with ``predict_proba``
    X : array-like of shape (n_samples, n_features)
    dims : pair of int
        The two columns drawn (the ellipses are the covariances' margins on them).
    feature_names : sequence of str, optional
        Axis labels (default the estimator's ``feature_names_in_`` or "x0", "x1"...).

    Returns
    -------
    matplotlib Axes
    """
    x = _two_column_data(X, "uncertainty")
    i, j = dims
    proba = np.asarray(to_numpy(estimator.predict_proba(X)), dtype=float)
    labels = proba.argmax(axis=1)
    unc = 1.0 - proba.max(axis=1)
    lo, hi = np.quantile(unc, quantiles)
    sizes = np.where(unc <= lo, 4.0, np.where(unc <= hi, 16.0, 48.0))
    ax = _new_axes(ax)
    k = proba.shape[1]
    palette = COLORS[np.arange(k) % len(COLORS)]
    ax.scatter(x[:, i], x[:, j], c=palette[labels], s=sizes, edgecolors="none", alpha=0.85)
    params = getattr(estimator, "params_", None)
    if isinstance(params, dict) and "covariances" in params and "means" in params:
        means = np.asarray(to_numpy(params["means"]), dtype=float)
        covs = full_covariances(params["covariances"], k, means.shape[1],
                                getattr(estimator, "covariance_type", None))
        _draw_ellipses(ax, means, covs, palette, dims, widths=(1.5, 0.8))
    names = list(feature_names) if feature_names is not None else \
        [str(v) for v in getattr(estimator, "feature_names_in_", [f"x{c}" for c in range(x.shape[1])])]
    ax.set_xlabel(names[i])
    ax.set_ylabel(names[j])
    ax.set_title(f"classification uncertainty (larger: above the {quantiles[0]:.0%} / {quantiles[1]:.0%} "
                 "quantiles)", fontsize="small")
    ax.grid(alpha=0.3)
    return ax


# --------------------------------------------------------------------------- posteriors
def posterior(estimator: Any, X: Any, ax: Any = None, *, kind: str = "auto", labels: Sequence[str] | None = None,
              **data_kwargs: Any) -> Any:
    """Membership probabilities ``estimator.predict_proba(X, **data_kwargs)``.

    ``kind="bars"`` draws one stacked bar per row (the coins: which coin made each run);
    ``kind="lines"`` draws each component's probability against x for 1-D data; ``"auto"``
    picks bars for at most 25 rows.

    Returns
    -------
    matplotlib Axes
    """
    if kind not in ("auto", "bars", "lines"):
        raise ValueError(f"unknown kind {kind!r}; choose one of ('auto', 'bars', 'lines')")
    proba = np.asarray(to_numpy(estimator.predict_proba(X, **data_kwargs)), dtype=float)
    x = np.asarray(to_numpy(X), dtype=float)
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    n, k = proba.shape
    if kind == "auto":
        kind = "bars" if n <= 25 or x.ndim != 1 else "lines"
    names = list(labels) if labels is not None else [f"component {c}" for c in range(k)]
    ax = _new_axes(ax)
    if kind == "bars":
        left = np.zeros(n)
        rows = np.arange(n)
        for c in range(k):
            ax.barh(rows, proba[:, c], left=left, color=COLORS[c % len(COLORS)], label=names[c])
            for r in rows:
                if proba[r, c] > 0.08:
                    ax.text(left[r] + proba[r, c] / 2, r, f"{proba[r, c]:.2f}", ha="center",
                            va="center", color="white", fontsize="small")
            left += proba[:, c]
        extra = data_kwargs.get("trials")
        ticks = [f"row {r + 1}: {x[r]:g}" + (f"/{np.broadcast_to(extra, (n,))[r]:g}" if extra is not None else "")
                 for r in rows] if x.ndim == 1 else [f"row {r + 1}" for r in rows]
        ax.set_yticks(rows, ticks)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel("posterior probability")
    else:
        if x.ndim != 1:
            raise ValueError(f"kind='lines' needs 1-D data, got shape {x.shape}")
        order = np.argsort(x, kind="stable")
        for c in range(k):
            ax.plot(x[order], proba[order, c], color=COLORS[c % len(COLORS)], marker=".", label=names[c])
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("x")
        ax.set_ylabel("posterior probability")
        ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="best")
    ax.set_title(f"{type(estimator).__name__}: membership probabilities")
    return ax
