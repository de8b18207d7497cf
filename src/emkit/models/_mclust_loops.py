"""The Numba loops of the iterative mclust M-steps (:mod:`emkit.models.covariance_mclust`).

Those M-steps (VEI, VEV, VEE, EVE, VVE) iterate small updates on (K, D) and (K, D, D) arrays:
Newton steps, alternations, one-angle searches of a pair of columns. In NumPy each update is a
dozen calls on arrays of a few numbers, so the calls' fixed costs, not arithmetic, set the time
(Old Faithful's model search runs about 2,000 such M-steps). Here each solve is one compiled
call. The loops do the same maths, step for step, as the NumPy functions of
``covariance_mclust``, which stay the reference (and the path taken without Numba or with
``EMKIT_COMPILED=0``); the tests compare the two. Where a loop meets something the reference
handles with an exception (a singular Newton matrix, a non-finite update) it returns a status
and the caller runs the NumPy function instead, so odd cases take exactly the reference path.

Imported through :mod:`emkit.models._gaussian_loops` (its ``KERNELS``), which
``gaussian_compiled.kernels`` loads on first use.
"""

from __future__ import annotations

import math

import numba
import numpy as np

jit = numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")
#: the small helpers, inlined into their callers (they run inside the solvers' loops)
inline_jit = numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy", inline="always")

#: statuses of the loops
DONE, FALL_BACK = 0, 1


@inline_jit
def _shape_profile(log_b, w, v, d, n, p_out):
    """The profiled VEI / VEV objective at ``v = log a`` and the row-normalised weights
    ``p_out`` (K, D) (``profile`` of ``covariance_mclust._solve_common_shape``)."""
    k_all = log_b.shape[0]
    value = 0.0
    for k in range(k_all):
        top = -np.inf
        for j in range(d):
            top = max(top, log_b[k, j] - v[j])
        tot = 0.0
        for j in range(d):
            e = math.exp(log_b[k, j] - v[j] - top)
            p_out[k, j] = e
            tot += e
        for j in range(d):
            p_out[k, j] /= tot
        value += w[k] * (math.log(tot) + top)
    total_v = 0.0
    for j in range(d):
        total_v += v[j]
    return d * value + n * total_v


@jit
def _common_shape(w, b, v, lam_out, a_out):
    """``covariance_mclust._solve_common_shape`` from ``v`` (D,), the centred start (changed
    in place): Newton's method with a backtracking line search on the convex profile. Writes
    the volumes ``lam_out`` (K,) and the shape ``a_out`` (D,); returns a status."""
    k_all, d = b.shape
    n = 0.0
    for k in range(k_all):
        n += w[k]
    log_b = np.log(b)
    p = np.empty((k_all, d))
    cand_p = np.empty((k_all, d))
    value = _shape_profile(log_b, w, v, d, n, p)
    grad = np.empty(d)
    hess = np.empty((d, d))
    step = np.empty(d)
    cand = np.empty(d)
    wp = np.empty(d)
    for _ in range(100):
        for j in range(d):
            acc = 0.0
            for k in range(k_all):
                acc += w[k] * p[k, j]
            wp[j] = acc
            grad[j] = n - d * acc
        for i in range(d):
            for j in range(d):
                acc = 0.0
                for k in range(k_all):
                    acc += w[k] * p[k, i] * p[k, j]
                hess[i, j] = d * ((wp[i] if i == j else 0.0) - acc) + n / d
        try:
            sol = np.linalg.solve(hess, grad)
        except Exception:  # singular: the reference takes the least-squares step
            return FALL_BACK
        mean = 0.0
        for j in range(d):
            step[j] = -sol[j]
            mean += step[j]
        mean /= d
        decrement = 0.0
        finite = True
        for j in range(d):
            step[j] -= mean
            decrement -= grad[j] * step[j]
            finite = finite and math.isfinite(step[j])
        scale = abs(value) + n
        if not decrement > 1e-28 * scale or not finite:
            break
        if decrement < 1e-12 * scale:  # the quadratic regime: the full step
            for j in range(d):
                v[j] += step[j]
            value = _shape_profile(log_b, w, v, d, n, p)
            continue
        t = 1.0
        accepted = False
        cand_value = 0.0
        while t > 1e-10:
            for j in range(d):
                cand[j] = v[j] + t * step[j]
            cand_value = _shape_profile(log_b, w, cand, d, n, cand_p)
            if cand_value <= value - 0.25 * t * decrement:
                accepted = True
                break
            t *= 0.5
        if not accepted:
            break
        v[:] = cand
        p[:, :] = cand_p
        value = cand_value
    mean = 0.0
    for j in range(d):
        mean += v[j]
    mean /= d
    log_geo = 0.0
    for j in range(d):
        a_out[j] = math.exp(v[j] - mean)
    for j in range(d):
        log_geo += math.log(a_out[j])
    geo = math.exp(log_geo / d)
    for k in range(k_all):
        acc = 0.0
        for j in range(d):
            acc += b[k, j] / a_out[j]
        lam_out[k] = acc / d
    for j in range(d):
        a_out[j] /= geo
    return DONE


@inline_jit
def _det_root(m):
    """|m|^(1/D) (0 when singular, NaN when indefinite), as ``covariance_mclust._det_root``."""
    sign, logdet = np.linalg.slogdet(m)
    if sign > 0:
        return math.exp(logdet / m.shape[0])
    if sign == 0:
        return 0.0
    return np.nan


@inline_jit
def _volumes(s, c, lam_out):
    """The volumes given ``C``: ``lam_out[k] = tr(C^-1 S_k) / D``; False when ``C`` is
    singular."""
    k_all, d = s.shape[0], s.shape[1]
    try:
        inv = np.linalg.inv(c)
    except Exception:  # singular
        return False
    for k in range(k_all):
        acc = 0.0
        for i in range(d):
            for j in range(d):
                acc += s[k, i, j] * inv[j, i]
        lam_out[k] = acc / d
    return True


@jit
def _proportional(w, s, c0, max_iter, rtol, lam_out, c_out):
    """``covariance_mclust._solve_proportional``: the alternation between the volumes and the
    common det-one matrix ``C`` from ``c0``. Writes ``lam_out`` (K,) and ``c_out`` (D, D);
    returns a status."""
    k_all, d = s.shape[0], s.shape[1]
    if not np.all(np.isfinite(c0)):
        return FALL_BACK
    root = _det_root(c0)
    if not root > 0:
        return FALL_BACK
    c = c0 / root
    lam = np.empty(k_all)
    lam_old = np.empty(k_all)
    have_old = False
    m = np.empty((d, d))
    for _ in range(max_iter):
        if not np.all(np.isfinite(c)):
            return FALL_BACK
        if not _volumes(s, c, lam):
            return FALL_BACK
        m[:, :] = 0.0
        for k in range(k_all):
            f = w[k] / lam[k]
            for i in range(d):
                for j in range(d):
                    m[i, j] += f * s[k, i, j]
        if not np.all(np.isfinite(m)):
            return FALL_BACK
        root = _det_root(m)
        for i in range(d):
            for j in range(d):
                c[i, j] = 0.5 * (m[i, j] + m[j, i]) / root
        if not np.all(np.isfinite(c)):
            return FALL_BACK
        if have_old:
            largest = 0.0
            for k in range(k_all):
                largest = max(largest, abs(lam[k] - lam_old[k]) / lam[k])
            if largest < rtol:
                break
        lam_old[:] = lam
        have_old = True
    if not _volumes(s, c, lam_out):
        return FALL_BACK
    c_out[:, :] = c
    return DONE


@inline_jit
def _pair_terms(a_k, r2_k, x):
    """One component's part of a pair's profile at ``x = u - psi_k``: the product of its two
    variances ``q``, ``d log q / du`` and ``2 r^2 cos(2x) / q``."""
    cx = math.cos(x)
    q = a_k * a_k - r2_k * cx * cx
    return q, r2_k * math.sin(2.0 * x) / q, 2.0 * r2_k * math.cos(2.0 * x) / q


@inline_jit
def _pair_profile(w, a, r2, psi, scale, use_scale, d, u, out):
    """``covariance_mclust._pair_profile`` at ``u`` with its first two derivatives, into
    ``out`` (3,); ``use_scale`` False is VVE (``scale`` unused)."""
    k_all = w.shape[0]
    q_min = np.inf
    for k in range(k_all):
        cx = math.cos(u - psi[k])
        q_min = min(q_min, a[k] * a[k] - r2[k] * cx * cx)
    if not q_min > 0:
        out[0], out[1], out[2] = np.inf, 0.0, 0.0
        return
    if not use_scale:
        value = 0.0
        first = 0.0
        second = 0.0
        for k in range(k_all):
            q, ratio, curve = _pair_terms(a[k], r2[k], u - psi[k])
            value += w[k] * math.log(q)
            first += w[k] * ratio
            second += w[k] * (curve - ratio * ratio)
        out[0], out[1], out[2] = value, first, second
        return
    n = 0.0
    total = 0.0
    g_ratio = 0.0
    g_second = 0.0
    for k in range(k_all):
        q, ratio, curve = _pair_terms(a[k], r2[k], u - psi[k])
        g = w[k] * scale[k] * q ** (1.0 / d)
        n += w[k]
        total += g
        g_ratio += g * ratio
        g_second += g * (curve / d + (1.0 / d) * (1.0 / d - 1.0) * ratio * ratio)
    first = g_ratio / (d * total)
    second = g_second / total
    out[0] = n * d * math.log(total)
    out[1] = n * d * first
    out[2] = n * d * (second - first * first)


@inline_jit
def _shapes(diag, w, n, equal_volume, out):
    """The shapes given the diagonals ``diag`` (K, D) (``shapes`` of
    ``_solve_common_orientation``), into ``out``."""
    k_all, d = diag.shape
    if not equal_volume:
        out[:, :] = diag
        return
    g = np.empty(k_all)
    wg = 0.0
    for k in range(k_all):
        acc = 0.0
        for j in range(d):
            acc += math.log(diag[k, j])
        g[k] = math.exp(acc / d)
        wg += w[k] * g[k]
    for k in range(k_all):
        f = wg / n / g[k]
        for j in range(d):
            out[k, j] = diag[k, j] * f


@jit
def _orientation_sweep(w, o, t, equal_volume, rtol, result):
    """One Jacobi sweep of ``covariance_mclust._solve_common_orientation`` over the pairs of
    columns of ``o`` (D, D), rotating ``o`` and ``t`` (K, D, D) = O^T S_k O in place. Writes
    the largest angle turned to ``result[0]`` and 1.0 / 0.0 (every pair's search settled or
    not) to ``result[1]``."""
    k_all, d = t.shape[0], t.shape[1]
    n = 0.0
    for k in range(k_all):
        n += w[k]
    a = np.empty(k_all)
    r = np.empty(k_all)
    r2 = np.empty(k_all)
    psi = np.empty(k_all)
    scale = np.ones(k_all)
    cur = np.empty(3)
    cand = np.empty(3)
    diag = np.empty((k_all, d))
    lmat = np.empty((k_all, d))
    alpha = np.empty(k_all)
    gamma = np.empty(k_all)
    beta = np.empty(k_all)
    steps = np.empty(2)
    largest = 0.0
    settled = True
    for i in range(d):
        for j in range(i + 1, d):
            for k in range(k_all):
                a[k] = 0.5 * (t[k, i, i] + t[k, j, j])
                bk = 0.5 * (t[k, i, i] - t[k, j, j])
                ck = t[k, i, j]
                r[k] = math.hypot(bk, ck)
                psi[k] = math.atan2(ck, bk)
                r2[k] = r[k] * r[k]
                if equal_volume:
                    acc = 0.0
                    for m in range(d):
                        acc += math.log(t[k, m, m])
                    acc -= math.log(t[k, i, i]) + math.log(t[k, j, j])
                    scale[k] = math.exp(acc / d)
            u = 0.0
            _pair_profile(w, a, r2, psi, scale, equal_volume, d, u, cur)
            finished = False
            for _ in range(100):
                first, second = cur[1], cur[2]
                if first == 0.0 or not math.isfinite(first):
                    finished = True
                    break
                n_steps = 0
                if second > 0:
                    newton_step = -first / second
                    if abs(newton_step) < 1e-6:  # the quadratic regime
                        u += newton_step
                        if abs(newton_step) < rtol:
                            finished = True
                            break
                        _pair_profile(w, a, r2, psi, scale, equal_volume, d, u, cur)
                        continue
                    steps[0] = max(-0.5 * math.pi, min(0.5 * math.pi, newton_step))
                    n_steps = 1
                # the exact rotation given the shapes at u
                for k in range(k_all):
                    x = u - psi[k]
                    alpha[k] = a[k] + r[k] * math.cos(x)
                    gamma[k] = a[k] - r[k] * math.cos(x)
                    beta[k] = -r[k] * math.sin(x)
                    for m in range(d):
                        diag[k, m] = t[k, m, m]
                    diag[k, i] = alpha[k]
                    diag[k, j] = gamma[k]
                _shapes(diag, w, n, equal_volume, lmat)
                num = 0.0
                den = 0.0
                for k in range(k_all):
                    dp = w[k] * (1.0 / lmat[k, i] - 1.0 / lmat[k, j])
                    num += dp * beta[k]
                    den += dp * (alpha[k] - gamma[k])
                steps[n_steps] = math.atan2(-num, -0.5 * den)
                n_steps += 1
                moved = False
                step = 0.0
                for s_i in range(n_steps):
                    step = steps[s_i]
                    _pair_profile(w, a, r2, psi, scale, equal_volume, d, u + step, cand)
                    if cand[0] < cur[0]:
                        u = u + step
                        cur[:] = cand
                        moved = True
                        break
                if not moved:
                    finished = True
                    break
                if abs(step) < rtol:
                    finished = True
                    break
            if not finished:
                settled = False
            phi = 0.5 * _remainder(u, 2.0 * math.pi)
            if phi == 0.0:
                continue
            cs, sn = math.cos(phi), math.sin(phi)
            for m in range(d):  # new columns: c o_i + s o_j, -s o_i + c o_j
                oi, oj = o[m, i], o[m, j]
                o[m, i] = oi * cs + oj * sn
                o[m, j] = -oi * sn + oj * cs
            for k in range(k_all):
                for m in range(d):
                    ti, tj = t[k, m, i], t[k, m, j]
                    t[k, m, i] = ti * cs + tj * sn
                    t[k, m, j] = -ti * sn + tj * cs
                for m in range(d):
                    ti, tj = t[k, i, m], t[k, j, m]
                    t[k, i, m] = cs * ti + sn * tj
                    t[k, j, m] = -sn * ti + cs * tj
            largest = max(largest, abs(phi))
    result[0] = largest
    result[1] = 1.0 if settled else 0.0
    return DONE


@jit
def _orientation_fit(w, s, o, equal_volume, rtol, max_sweeps, result, cov_out):
    """The whole ``covariance_mclust._solve_common_orientation`` for two features (one pair of
    columns, so no Newton step on the whole orientation) from ``o`` (2, 2, rotated in place),
    then the covariances ``O L_k O^T`` (``_compose``) into ``cov_out`` (K, 2, 2)."""
    k_all, d = s.shape[0], s.shape[1]
    t = np.empty((k_all, d, d))
    for k in range(k_all):  # O^T S_k O, symmetrised
        for a in range(d):
            for b in range(d):
                acc = 0.0
                for i in range(d):
                    for j in range(d):
                        acc += o[i, a] * s[k, i, j] * o[j, b]
                t[k, a, b] = acc
        for a in range(d):
            for b in range(a + 1, d):
                mean = 0.5 * (t[k, a, b] + t[k, b, a])
                t[k, a, b] = mean
                t[k, b, a] = mean
    for _ in range(max_sweeps):
        _orientation_sweep(w, o, t, equal_volume, rtol, result)
        if result[0] < rtol or result[1] == 1.0:  # one pair: a settled search is the minimum
            break
    n = 0.0
    for k in range(k_all):
        n += w[k]
    diag = np.empty((k_all, d))
    for k in range(k_all):
        for a in range(d):
            diag[k, a] = t[k, a, a]
    lmat = np.empty((k_all, d))
    _shapes(diag, w, n, equal_volume, lmat)
    for k in range(k_all):
        for a in range(d):
            for b in range(a, d):
                acc = 0.0
                for j in range(d):
                    acc += o[a, j] * lmat[k, j] * o[b, j]
                cov_out[k, a, b] = acc
                cov_out[k, b, a] = acc
    return DONE


@jit
def _common_orientation(cov, o_out):
    """``covariance_mclust._common_orientation``: the eigenvectors (decreasing eigenvalues,
    signs as ``_orient``) of a combination of the covariances with distinct weights, each
    scaled by its volume; into ``o_out`` (D, D). Returns a status."""
    k_all, d = cov.shape[0], cov.shape[1]
    if not np.all(np.isfinite(cov)):
        return FALL_BACK
    m = np.zeros((d, d))
    for k in range(k_all):
        scale = _det_root(cov[k])
        if not (math.isfinite(scale) and scale > 0):
            trace = 0.0
            for a in range(d):
                trace += cov[k, a, a]
            scale = abs(trace) / d + 1e-300
        f = (1.0 / (1.0 + math.sqrt(2.0) * k)) / scale
        for a in range(d):
            for b in range(d):
                m[a, b] += f * cov[k, a, b]
    for a in range(d):
        for b in range(a + 1, d):
            mean = 0.5 * (m[a, b] + m[b, a])
            m[a, b] = mean
            m[b, a] = mean
    _, vecs = np.linalg.eigh(m)
    for j in range(d):  # decreasing order, columns with non-negative diagonal
        sign = -1.0 if vecs[j, d - 1 - j] < 0 else 1.0
        for i in range(d):
            o_out[i, j] = sign * vecs[i, d - 1 - j]
    if np.linalg.det(o_out) < 0:
        smallest = 0
        for j in range(1, d):
            if abs(o_out[j, j]) < abs(o_out[smallest, smallest]):
                smallest = j
        for i in range(d):
            o_out[i, smallest] = -o_out[i, smallest]
    return DONE


@inline_jit
def _remainder(x, y):
    """IEEE remainder (Python's ``math.remainder``): ``x - n y`` with ``n`` the integer
    nearest ``x / y``, ties to even."""
    q = x / y
    n = np.round(q)  # NumPy rounds half to even
    return x - n * y


@inline_jit
def _objective_term(s_k, c_k, chol, work):
    """``log|C| + tr(C^-1 S)`` of one pair of matrices (``covariance_mclust._objective_terms``),
    inf when ``C`` is not positive definite; ``chol`` and ``work`` (D, D) are scratch."""
    d = c_k.shape[0]
    log_det = 0.0
    for j in range(d):  # Cholesky, column by column
        acc = c_k[j, j]
        for m in range(j):
            acc -= chol[j, m] * chol[j, m]
        if not acc > 0:
            return np.inf
        root = math.sqrt(acc)
        chol[j, j] = root
        log_det += 2.0 * math.log(root)
        for i in range(j + 1, d):
            acc = c_k[i, j]
            for m in range(j):
                acc -= chol[i, m] * chol[j, m]
            chol[i, j] = acc / root
    # C^-1 S column by column: forward then back substitution; only the diagonal is summed
    trace = 0.0
    for col in range(d):
        for i in range(d):
            acc = s_k[i, col]
            for m in range(i):
                acc -= chol[i, m] * work[m, col]
            work[i, col] = acc / chol[i, i]
        for i in range(d - 1, -1, -1):
            acc = work[i, col]
            for m in range(i + 1, d):
                acc -= chol[m, i] * work[m, col]
            work[i, col] = acc / chol[i, i]
        trace += work[col, col]
    return log_det + trace


@jit
def _objective_pair(w, s, first, second, out):
    """``covariance_mclust._objective`` of the stacks ``first`` and ``second`` (K, D, D)
    against the scatter matrices ``s``, into ``out`` (2,) (inf for a stack with a matrix that
    is not positive definite)."""
    k_all, d = s.shape[0], s.shape[1]
    chol = np.zeros((d, d))
    work = np.empty((d, d))
    for which in range(2):
        stack = first if which == 0 else second
        total = 0.0
        for k in range(k_all):
            term = _objective_term(s[k], stack[k], chol, work)
            if term == np.inf:
                total = np.inf
                break
            total += w[k] * term
        out[which] = total


#: the loops by name (merged into ``_gaussian_loops.KERNELS``)
KERNELS = {"mclust_common_shape": _common_shape, "mclust_proportional": _proportional,
           "mclust_orientation_sweep": _orientation_sweep, "mclust_objective_pair": _objective_pair,
           "mclust_orientation_fit": _orientation_fit, "mclust_common_orientation": _common_orientation}
