"""Model-based hierarchical agglomeration, as R mclust's ``hc`` / ``hclass`` (NumPy only).

mclust starts EM (``Mclust``, ``mclustBIC``) from a hierarchical clustering: every row starts
as its own cluster and the pair of clusters whose merge costs least classification likelihood
is merged, n - 1 times (Fraley 1998, "Algorithms for model-based Gaussian hierarchical
clustering", SIAM J. Sci. Comput. 20:270-281; Banfield & Raftery 1993). The tree is cut into G
groups (``hclass``) and EM starts with the M-step of that hard classification. This module
reproduces mclust 6.0's Fortran (``hcvvv``, ``hcvii``, ``hceii``) and R (``hc``, ``hclass``,
``qclass``) code:

* :func:`hc_transform` -- the data transforms of ``hc(use=...)`` / ``mclust.options("hcUse")``:
  ``"SVD"`` (mclust 6's default: scaled SVD, ``Z = X_s V diag(1/sqrt(d))`` of the standardised
  data ``X_s = U diag(d) V'``), ``"VARS"`` (the data as they are), ``"STD"`` (standardised),
  ``"SPH"`` (sphered: centred, then ``V diag(1/sqrt(d))`` of the eigen-decomposition of the ML
  covariance), ``"PCS"`` (principal components of the centred data), ``"PCR"`` (principal
  components of the standardised data).
* :func:`hc` -- the merge sequence for the criteria ``"VVV"`` (mclust's default,
  ``mclust.options("hcModelName")``), ``"VII"`` and ``"EII"`` (Ward's sum of squares, which
  mclust uses when there are no more rows than columns). ``"EEE"`` (whose criterion is a
  determinant of the pooled scatter, not a sum over clusters) is not implemented.
* :func:`hclass` -- the partition into G groups, labelled 0..G-1 in order of first appearance.
* :func:`hc_labels` -- what a Gaussian mixture's ``init_params="hc"`` uses: transform, subset
  of at most :data:`HC_SUBSET` rows, tree, cut (and mclust's quantile classes, ``qclass``, for
  one column, where mclust uses no tree).

The VVV criterion (``hcvvv``) of a cluster of ``l`` rows with scatter matrix ``W`` (sum of
squares about its mean, p columns) is, with ``a = alpha * tr(W_all) / (n p)`` (the data's
total sum of squares about the mean per entry, ``alpha = 1``) and ``beta = 1``::

    l log(beta (tr W + a) / l)                                   if l <= p (or l == 2)
    l log(alpha beta / l)                                        if tr W == 0
    l log(det(W / l) + beta (tr W + a) / l)                      otherwise

and a merge costs ``term(i + j) - term(i) - term(j)``. mclust's ``hcvvv`` keeps only the
first row of a merged cluster's triangular scatter factor for its later merges (see
:func:`_stored_gram`); emkit reproduces that by default (``hc(..., exact_scatter=False)``),
since without it three of the six Old Faithful trees differ from mclust's. VII's term is
``l log((tr W + a) / l)``, EII's merge cost Ward's ``n_i n_j / (n_i + n_j) |m_i - m_j|^2``.

The agglomeration keeps clusters in *slots* exactly as the Fortran does (the merged cluster
takes the smaller slot, the last slot moves into the larger one) and picks, among equal costs,
the pair the Fortran picks (the last in its packed order), so that ties -- duplicated rows
cost exactly the same to merge -- are broken as in mclust. Instead of mclust's full rescan of
the n(n-1)/2 costs after each merge, it keeps each slot's cheapest partner among the lower
slots and updates only what the merge changed, and it computes the costs of the merged cluster
against all others at once (vectorised scatter updates and a batched log-determinant): O(n^2)
memory and about O(n^2 p^3 / 3) work in the worst case, a second or two for 2,000 rows.

Large data, as mclust: above :data:`HC_SUBSET` (2,000, ``mclust.options("subset")``) rows the
tree is built on a subset of that many rows (mclust: ``initialization = list(subset =
sample(n, 2000))``, then an M-step on the subset's classification, an E-step on all rows and
EM). emkit's subset is a stratified sample (one row from each of 2,000 consecutive strata)
drawn with a fixed seed (:data:`HC_SEED`), so the start is deterministic without a
``random_state``; the M-step on the subset's classification gives the starting parameters of
EM on all rows, exactly mclust's path.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["HC_INIT_METHODS", "HC_MODELS", "HC_SEED", "HC_SUBSET", "HC_USES", "hc", "hc_labels",
           "hc_transform", "hclass", "qclass"]

#: the data transforms of mclust's ``hc(use=...)``; the first is mclust 6's default
HC_USES = ("SVD", "VARS", "STD", "SPH", "PCS", "PCR")
#: the agglomeration criteria implemented (mclust's default first)
HC_MODELS = ("VVV", "VII", "EII")
#: ``init_params`` values of a Gaussian mixture that start from the hierarchical clustering:
#: "hc" (= "hc:SVD", mclust's default) or "hc:<use>" for another transform
HC_INIT_METHODS = ("hc",) + tuple(f"hc:{use}" for use in HC_USES)
#: the tree is built on at most this many rows (mclust.options("subset") in mclust 6)
HC_SUBSET = 2000
#: seed of the fixed stratified subset of larger data (deterministic starts)
HC_SEED = 0
_EPS = float(np.finfo(np.float64).eps)
_RTHALF = 0.7071067811865476  # the Fortran's sqrt(1/2), to round a pair's trace as it does


# =========================================================================== transforms
def _scale(x: np.ndarray, scale: bool) -> np.ndarray:
    """R's ``scale(x, center=TRUE, scale=scale)`` (standard deviations with n - 1)."""
    x = x - x.mean(axis=0)
    if scale:
        with np.errstate(divide="ignore", invalid="ignore"):
            x = x / x.std(axis=0, ddof=1)
    return x


def _drop_cols(z: np.ndarray) -> np.ndarray:
    """mclust's ``dropCols``: the columns whose entries are all finite (constant columns
    standardise to NaN)."""
    return z[:, np.all(np.isfinite(z), axis=0)]


def _scaled_components(z: np.ndarray, vt: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``z V diag(1/sqrt(d))`` over the components with a positive value (a zero would divide
    by zero: those directions carry no variance)."""
    keep = d > d.max(initial=0.0) * _EPS * max(z.shape)
    return (z @ vt[keep].T) / np.sqrt(d[keep])


def hc_transform(x: ArrayLike, use: str = "SVD") -> np.ndarray:
    """The data that mclust's ``hc(data, use=use)`` agglomerates (n, q), as R computes it.

    Parameters
    ----------
    x : array of shape (n, p)
    use : {"SVD", "VARS", "STD", "SPH", "PCS", "PCR"}
        ``"SVD"`` (default, as mclust 6): standardise, then ``X_s V diag(1/sqrt(d))`` with
        ``X_s = U diag(d) V'``; ``"VARS"``: the data; ``"STD"``: standardised; ``"SPH"``:
        centred and sphered by the ML covariance ``V diag(d) V'`` (``X V diag(1/sqrt(d))``);
        ``"PCS"``: centred, on the principal axes (``X V``); ``"PCR"``: standardised, on its
        principal axes. Constant columns are dropped where mclust drops them.

    Signs of singular vectors differ between LAPACK builds; the criteria of :func:`hc` do not
    depend on them (they are invariant under orthogonal maps).
    """
    use = str(use).upper()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if use == "VARS":
        return x
    if use == "STD":
        return _drop_cols(_scale(x, True))
    if use == "PCR":
        z = _drop_cols(_scale(x, True))
        return z @ np.linalg.svd(z, full_matrices=False)[2].T
    if use == "PCS":
        z = _scale(x, False)
        return _drop_cols(z @ np.linalg.svd(z, full_matrices=False)[2].T)
    if use == "SPH":
        z = _scale(x, False)
        _, d, vt = np.linalg.svd(z.T @ z / z.shape[0])
        return _drop_cols(_scaled_components(z, vt, d))
    if use == "SVD":
        z = _drop_cols(_scale(x, True))
        _, d, vt = np.linalg.svd(z, full_matrices=False)
        return _scaled_components(z, vt, d)
    raise ValueError(f"unknown hc transform {use!r}; choose one of {HC_USES}")


# =========================================================================== criteria
class _Criterion:
    """A cluster's term (VVV, VII) or a merge cost (EII) from sizes, means, traces, scatters."""

    needs_scatter = False

    def __init__(self, p: int, alpha: float, beta: float):
        self.p, self.alpha, self.beta = p, alpha, beta
        self.singleton = 0.0

    def pair_costs(self, sq: np.ndarray) -> np.ndarray:
        """Cost of merging two single rows ``sq`` (their ``|x_i - x_j|^2 / 2``) apart."""
        raise NotImplementedError

    def terms(self, n: np.ndarray, tr: np.ndarray, scatter: np.ndarray | None) -> np.ndarray:
        raise NotImplementedError


class _VVV(_Criterion):
    needs_scatter = True

    def __init__(self, p: int, alpha: float, beta: float):
        super().__init__(p, alpha, beta)
        self.singleton = float(np.log(beta * alpha))  # the Fortran's ABLOG

    def pair_costs(self, tr):
        return 2.0 * np.log(self.beta * (tr + self.alpha) / 2.0) - (self.singleton + self.singleton)

    def terms(self, n, tr, scatter):
        # hcvvv's vvvtij; a cluster of at most p rows (or 2: a pair of single rows is always
        # costed by its trace in the Fortran) has a singular scatter: the trace term alone
        with np.errstate(divide="ignore", invalid="ignore"):
            base = self.beta * (tr + self.alpha) / n
            out = np.log(base)
            big = (n > max(self.p, 2)) & (tr != 0.0)
            out = np.where((n > max(self.p, 2)) & (tr == 0.0), np.log(self.alpha * self.beta / n), out)
            if big.any():
                idx = np.flatnonzero(big)
                sign, logdet = np.linalg.slogdet(scatter[idx])
                detlog = logdet - self.p * np.log(n[idx])  # log det(W / l) (det2mc)
                detlog = np.where(sign > 0, detlog, -np.inf)  # singular: the trace term alone
                b = base[idx]
                small = detlog <= 0.0
                val = np.where(small, np.log(np.exp(np.minimum(detlog, 0.0)) + b),
                               np.log1p(np.exp(-np.maximum(detlog, 0.0)) * b) + np.maximum(detlog, 0.0))
                out[idx] = val
        return n * out


class _VII(_Criterion):
    def __init__(self, p: int, alpha: float, beta: float):
        super().__init__(p, alpha, beta)
        self.singleton = float(np.log(alpha))  # the Fortran's ALFLOG

    def pair_costs(self, tr):
        return 2.0 * np.log((tr + self.alpha) / 2.0) - (self.singleton + self.singleton)

    def terms(self, n, tr, scatter):
        return n * np.log((tr + self.alpha) / n)


_CRITERIA = {"VVV": _VVV, "VII": _VII}


# =========================================================================== agglomeration
def _pair_traces(z: np.ndarray) -> np.ndarray:
    """|v|^2 with v = (z_i - z_j) sqrt(1/2) for every pair (n, n), by exact differences (so
    that duplicated rows give exactly 0, as in the Fortran), in blocks of bounded memory."""
    n, p = z.shape
    out = np.empty((n, n))
    block = max(1, (4 * 2**20) // max(1, n * p))
    for start in range(0, n, block):
        v = (z[start:start + block, None, :] - z[None, :, :]) * _RTHALF
        out[start:start + block] = np.einsum("ijk,ijk->ij", v, v)
    return out


def _last_argmin(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """Index of the LAST minimum along ``axis`` (the Fortran's ``.le.`` scan keeps the last)."""
    flipped = np.flip(values, axis=axis)
    return values.shape[axis] - 1 - np.argmin(flipped, axis=axis)


def _stored_gram(m: np.ndarray, q: int) -> np.ndarray:
    """The Gram matrix F'F of the factor that mclust's ``hcvvv`` stores for a merged cluster
    whose true factor R (upper triangular, R'R = ``m``) has ``q`` rows.

    After each merge, ``hcvvv`` copies the FIRST row of R into every one of the cluster's
    ``q`` factor rows (``dcopy(p, r(1,1), p, x(l,1), n)`` in its merge loop, mclust 5 and 6)
    and reads row t back from column t on: F_t = (0, ..., 0, r_1t, ..., r_1p). Later merges of
    that cluster use F in place of R. R's first row is m[0] / sqrt(m[0, 0]) (the Cholesky
    factor's, up to a sign that F'F does not see), so (F'F)_ab = min(a, b, q) r_1a r_1b
    (1-based a, b)."""
    p = m.shape[0]
    r1 = m[0] / np.sqrt(m[0, 0]) if m[0, 0] > 0 else np.zeros(p)
    t = np.minimum(np.arange(1, p + 1), q)
    return np.minimum(t[:, None], t[None, :]) * np.outer(r1, r1)


def hc(x: ArrayLike, model: str = "VVV", use: str | None = "SVD", *, alpha: float = 1.0, beta: float = 1.0,
       exact_scatter: bool = False, return_costs: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Model-based hierarchical agglomeration of every row of ``x``, as mclust's
    ``hc(x, modelName=model, use=use)`` (see the module docstring for the criteria).

    Parameters
    ----------
    x : array of shape (n, p)
        No missing values.
    model : {"VVV", "VII", "EII"}
    use : str or None
        Transform (:func:`hc_transform`) applied first; None agglomerates ``x`` as it is
        (mclust's ``hcVVV(x)``).
    alpha, beta : float
        mclust's regularisation of the VVV (``alpha``, ``beta``) and VII (``alpha``) criteria:
        ``alpha`` is scaled by the data's total sum of squares per entry.
    exact_scatter : bool
        VVV only. False (default) reproduces mclust's ``hcvvv`` exactly, including how it
        stores a merged cluster's scatter (only the first row of its triangular factor, see
        :func:`_stored_gram`): the determinants of clusters built from merged clusters are then
        not those of their scatter matrices. True uses the true scatter matrices (the
        criterion as published by Fraley 1998); the trees then differ from mclust's.

    Returns
    -------
    merges : int array of shape (n - 1, 2)
        The k-th merge joins the clusters named ``merges[k, 0] < merges[k, 1]``, each cluster
        named by its smallest row index (0-based; mclust's matrix is this transposed, plus 1).
    costs : array of shape (n - 1,)
        With ``return_costs``: the cost of each merge (mclust's Fortran returns them too).
    """
    model = str(model).upper()
    if model not in HC_MODELS:
        raise ValueError(f"unknown hc model {model!r}; choose one of {HC_MODELS}")
    z = np.asarray(x if use is None else hc_transform(x, use), dtype=np.float64)
    if z.ndim == 1:
        z = z[:, None]
    if not np.all(np.isfinite(z)):
        raise ValueError("hc: missing or infinite values are not allowed")
    n, p = z.shape
    if n < 2:
        empty = np.empty((0, 2), dtype=np.int64)
        return (empty, np.empty(0)) if return_costs else empty
    # alpha scaled as hcVVV / hcVII do: alpha * traceW(x / sqrt(n p)), at least machine epsilon
    total = float(np.sum((z - z.mean(axis=0)) ** 2))
    a = max(alpha * total / (n * p), _EPS)

    crit = None if model == "EII" else _CRITERIA[model](p, a, beta)
    inf = np.inf
    # D[i, j] (i < j, mirrored): the cost of merging the clusters in slots i and j
    tr_pairs = _pair_traces(z)
    D = tr_pairs if crit is None else crit.pair_costs(tr_pairs)  # EII: (1 * 1 / 2) |z_i - z_j|^2
    np.fill_diagonal(D, inf)
    del tr_pairs
    size = np.ones(n)
    mean = z.copy()
    trace = np.zeros(n)
    term = np.full(n, 0.0 if crit is None else crit.singleton)
    # VVV: each slot's (stored) scatter; the newest cluster's true one and its slot
    scatter = np.zeros((n, p, p)) if crit is not None and crit.needs_scatter else None
    newest: np.ndarray = np.zeros((p, p))  # never read before the first merge sets it
    iold = -1
    label = np.arange(n)
    # each slot's cheapest partner among the lower slots: value and (last) row
    rows = np.arange(n)
    colmin = np.full(n, inf)
    colarg = np.zeros(n, dtype=np.int64)
    lower = np.where(rows[:, None] < rows[None, :], D, inf)
    colarg[1:] = _last_argmin(lower[:, 1:], axis=0)
    colmin[1:] = lower[colarg[1:], np.arange(1, n)]
    del lower

    merges = np.empty((n - 1, 2), dtype=np.int64)
    costs_taken = np.empty(n - 1)
    g = n
    for step in range(n - 1):
        # the Fortran's choice: the last minimum in its packed order (by column, then row)
        live = colmin[:g]
        j_best = int(_last_argmin(live))
        a, b = int(colarg[j_best]), j_best
        merges[step] = sorted((label[a], label[b]))
        costs_taken[step] = colmin[b]
        if g == 2:
            break
        # the merged cluster's statistics (sizes, means, traces, scatters add up exactly)
        na, nb = size[a], size[b]
        nab = na + nb
        diff = mean[b] - mean[a]
        c = na * nb / nab
        new_mean = mean[a] + (nb / nab) * diff
        new_trace = trace[a] + trace[b] + c * float(diff @ diff)
        new_scatter: np.ndarray | None = None
        stored_new: np.ndarray | None = None
        if scatter is not None:
            # hcvvv updates a factor: the newest cluster's own (true) one, the others' stored
            # ones (see _stored_gram); the pair's costs were computed the same way
            fa = newest if a == iold else scatter[a]
            fb = newest if b == iold else scatter[b]
            new_scatter = fa + fb + c * np.outer(diff, diff)
            stored_new = new_scatter if exact_scatter else _stored_gram(new_scatter, min(int(nab) - 1, p))
        new_term = 0.0 if crit is None else float(D[a, b] + term[a] + term[b])
        new_label = min(label[a], label[b])
        last = g - 1
        if b != last:  # the last slot moves into the merged-away one (the Fortran's wardsw)
            size[b], mean[b], trace[b], term[b], label[b] = size[last], mean[last], trace[last], term[last], label[last]
            if scatter is not None:
                scatter[b] = scatter[last]
            D[b, :g] = D[last, :g]
            D[:g, b] = D[:g, last]
            D[b, b] = inf
        g -= 1
        size[a], mean[a], trace[a], term[a], label[a] = nab, new_mean, new_trace, new_term, new_label
        if scatter is not None and new_scatter is not None:
            scatter[a], newest, iold = stored_new, new_scatter, a
        # costs of the merged cluster against every other slot, all at once
        others = np.flatnonzero(np.arange(g) != a)
        dm = mean[others] - new_mean
        nj = size[others]
        n_new = nab + nj
        cj = nab * nj / n_new
        sq = np.einsum("ij,ij->i", dm, dm)
        if crit is None:
            costs = cj * sq
        else:
            tr_new = new_trace + trace[others] + cj * sq
            sc = None
            if scatter is not None and new_scatter is not None:
                sc = new_scatter + scatter[others] + cj[:, None, None] * (dm[:, :, None] * dm[:, None, :])
            costs = crit.terms(n_new, tr_new, sc) - (new_term + term[others])
        D[a, others] = costs
        D[others, a] = costs
        D[a, a] = inf
        colmin[g:] = inf
        # update the cheapest partners: rescan the columns whose partner changed or left,
        # offer the new entries of rows a and b to the others
        cols = np.arange(a + 1, g)
        cols = cols[cols != b]
        stale = (colarg[cols] == a) | (colarg[cols] == b)
        rescan_list = [a] + ([b] if b < g else []) + [int(j) for j in cols[stale]]
        keep = cols[~stale]
        for r in (a, b):
            if r >= g:
                continue
            ks = keep[keep > r]
            vals = D[r, ks]
            better = (vals < colmin[ks]) | ((vals == colmin[ks]) & (r > colarg[ks]))
            colmin[ks[better]] = vals[better]
            colarg[ks[better]] = r
        rescan = np.asarray([j for j in rescan_list if j > 0], dtype=np.int64)
        if rescan.size:
            sub = np.where(rows[:g, None] < rescan[None, :], D[:g][:, rescan], inf)
            arg = _last_argmin(sub, axis=0)
            colarg[rescan] = arg
            colmin[rescan] = sub[arg, np.arange(rescan.size)]
        if a == 0:
            colmin[0] = inf
    return (merges, costs_taken) if return_costs else merges


def hclass(merges: np.ndarray, n_groups: int, n: int | None = None) -> np.ndarray:
    """The partition into ``n_groups`` groups of a tree from :func:`hc` (mclust's
    ``hclass(tree, G)``): labels 0..G-1 in order of first appearance (mclust's, minus 1)."""
    merges = np.asarray(merges, dtype=np.int64)
    n = merges.shape[0] + 1 if n is None else int(n)
    if not 1 <= n_groups <= n:
        raise ValueError(f"cannot cut a tree of {n} rows into {n_groups} groups")
    # the first n - G merges, as hclass applies them: each cluster is named by its smallest row,
    # so merge (i, j) points j at i and no later merge names j again; every row's root is then
    # found by pointer jumping (O(n log n), where relabelling row by row was O(n^2))
    roots = np.arange(n)
    applied = merges[: n - n_groups]
    roots[applied[:, 1]] = applied[:, 0]
    while True:
        jumped = roots[roots]
        if np.array_equal(jumped, roots):
            break
        roots = jumped
    _, first, inverse = np.unique(roots, return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first)] = np.arange(first.size)
    return rank[inverse]


def qclass(x: ArrayLike, n_groups: int) -> np.ndarray:
    """mclust's ``qclass``: quantile classes of one variable (its start for one column),
    labels 0..G-1 from the smallest values up."""
    x = np.asarray(x, dtype=np.float64).ravel()
    k = int(n_groups)
    eps = float(np.std(x, ddof=1)) * np.sqrt(_EPS) if x.size > 1 else 0.0
    m = k
    q = np.array([])
    while q.size < k + 1:
        m += 1
        q = np.unique(np.quantile(x, np.linspace(0.0, 1.0, m)))
        if m > x.size + k + 1:  # fewer distinct values than groups
            break
    if q.size > k + 1:  # drop the cut points closest to their predecessors
        drop = np.argsort(np.diff(q), kind="stable")[: q.size - k - 1]
        q = np.delete(q, drop)
    q[0] = x.min() - eps
    q[-1] = x.max() + eps
    return np.clip(np.searchsorted(q, x, side="right") - 1, 0, q.size - 2)


# =========================================================================== for initialisation
_CACHE: "OrderedDict[tuple, np.ndarray]" = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 8


def _cached_hc(z: np.ndarray, model: str, use: str) -> np.ndarray:
    """:func:`hc` of ``z``, remembered for a few recent data sets: model selection fits every
    covariance form and number of components from the same tree."""
    key = (hashlib.sha1(np.ascontiguousarray(z).tobytes()).hexdigest(), z.shape, model, use)
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    out = hc(z, model=model, use=use)
    merges = out if isinstance(out, np.ndarray) else out[0]
    with _CACHE_LOCK:
        _CACHE[key] = merges
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return merges


def hc_labels(x: ArrayLike, n_groups: int, use: str = "SVD", model: str = "VVV") -> np.ndarray:
    """The hard classification that mclust's default initialisation gives ``x`` (n, p) for
    ``n_groups`` groups: ``hclass(hc(x, model, use), G)``; with one column mclust's quantile
    classes (:func:`qclass`); with no more rows than columns the EII criterion (as mclust).

    ``x`` should hold at most :data:`HC_SUBSET` rows (the caller subsets larger data, see the
    module docstring); the result is deterministic."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    n, p = x.shape
    k = min(int(n_groups), n)
    if k <= 1:
        return np.zeros(n, dtype=np.int64)
    if p == 1:
        return qclass(x[:, 0], k)
    merges = _cached_hc(x, model if n > p else "EII", str(use).upper())
    return hclass(merges, k, n)
