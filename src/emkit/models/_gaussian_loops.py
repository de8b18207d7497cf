"""The Numba loops of :mod:`emkit.models.gaussian_compiled`, at module level.

This module imports Numba; ``gaussian_compiled.kernels`` imports it on first use only. The loops
are module-level functions (not closures built at run time) so that Numba's on-disk cache finds
them again in a new process: a jitted closure that calls another one is keyed on that callee's
identity in the process, and was compiled afresh in every process (0.45 s on its first call).
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from emkit.models._mclust_loops import KERNELS as MCLUST_KERNELS

jit = numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")
#: a helper of the loops, inlined into its callers (a call per row and component costs ~1 ns)
inline_jit = numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy", inline="always")


@jit
def _corrections(lam_x, q0, j, rows, pattern, inv, means_m, shift_m, lj, a0, w_out):
    """For the rows of one group of patterns (j missing entries each) in a block: with
    ``y = (Lambda_k x_0)_m - shift_m`` and ``w = (Lambda_k,mm)^{-1} y``, adds
    ``sum_a (w_a y_a / 2 - m_a (Lambda_k x_0)_a)`` to the log joint ``lj[k, a0 + r]`` and
    writes ``w`` (pair ``q0 + a rows + r``) to ``w_out``. ``pattern[r]``: the row's
    pattern within the group; ``lam_x`` (K', pairs); ``inv`` packed (T, K', P_j) in
    ``triu_pairs(j)``'s order. One, two and three missing entries (most rows) are written
    out; more go through small loops."""
    k_all = lj.shape[0]
    k_prec = lam_x.shape[0]
    q1, q2 = q0 + rows, q0 + 2 * rows
    if j == 1:
        for k in range(k_all):
            kp = k if k_prec > 1 else 0
            for r in range(rows):
                p = pattern[r]
                lx0 = lam_x[kp, q0 + r]
                y0 = lx0 - shift_m[k, 0, p]
                w0 = inv[0, kp, p] * y0
                w_out[k, q0 + r] = w0
                lj[k, a0 + r] += 0.5 * w0 * y0 - means_m[k, 0, p] * lx0
    elif j == 2:
        for k in range(k_all):
            kp = k if k_prec > 1 else 0
            for r in range(rows):
                p = pattern[r]
                lx0, lx1 = lam_x[kp, q0 + r], lam_x[kp, q1 + r]
                y0, y1 = lx0 - shift_m[k, 0, p], lx1 - shift_m[k, 1, p]
                h01 = inv[1, kp, p]
                w0 = inv[0, kp, p] * y0 + h01 * y1
                w1 = h01 * y0 + inv[2, kp, p] * y1
                w_out[k, q0 + r] = w0
                w_out[k, q1 + r] = w1
                lj[k, a0 + r] += 0.5 * (w0 * y0 + w1 * y1) - means_m[k, 0, p] * lx0 - means_m[k, 1, p] * lx1
    elif j == 3:
        for k in range(k_all):
            kp = k if k_prec > 1 else 0
            for r in range(rows):
                p = pattern[r]
                lx0, lx1, lx2 = lam_x[kp, q0 + r], lam_x[kp, q1 + r], lam_x[kp, q2 + r]
                y0, y1, y2 = lx0 - shift_m[k, 0, p], lx1 - shift_m[k, 1, p], lx2 - shift_m[k, 2, p]
                h01, h02, h12 = inv[1, kp, p], inv[2, kp, p], inv[4, kp, p]
                w0 = inv[0, kp, p] * y0 + h01 * y1 + h02 * y2
                w1 = h01 * y0 + inv[3, kp, p] * y1 + h12 * y2
                w2 = h02 * y0 + h12 * y1 + inv[5, kp, p] * y2
                w_out[k, q0 + r] = w0
                w_out[k, q1 + r] = w1
                w_out[k, q2 + r] = w2
                lj[k, a0 + r] += 0.5 * (w0 * y0 + w1 * y1 + w2 * y2) - means_m[k, 0, p] * lx0 \
                    - means_m[k, 1, p] * lx1 - means_m[k, 2, p] * lx2
    else:
        at = np.empty((j, j), dtype=np.intp)
        t = 0
        for a in range(j):
            for b in range(a, j):
                at[a, b] = t
                at[b, a] = t
                t += 1
        y = np.empty(j, dtype=lj.dtype)
        for k in range(k_all):
            kp = k if k_prec > 1 else 0
            for r in range(rows):
                p = pattern[r]
                for a in range(j):
                    y[a] = lam_x[kp, q0 + a * rows + r] - shift_m[k, a, p]
                acc = 0.0
                for a in range(j):
                    wa = 0.0
                    for b in range(j):
                        wa += inv[at[a, b], kp, p] * y[b]
                    w_out[k, q0 + a * rows + r] = wa
                    acc += 0.5 * wa * y[a] - means_m[k, a, p] * lam_x[kp, q0 + a * rows + r]
                lj[k, a0 + r] += acc


@jit
def _moments(w, q0, j, rows, pattern, means_m, resp, a0, f_out, outer):
    """After the posterior, for the same rows: the centred conditional means of the missing
    entries ``e = m_m - w`` (written over ``w``), ``f = r e`` (to ``f_out``) and the sums of
    ``r e_a e_b`` (a <= b, in triu_pairs(j)'s order) per pattern added to ``outer``
    (K, T, P_j). A pattern's rows are contiguous: its sums are kept in registers until the
    next pattern begins (adding into memory row by row would wait on the last addition)."""
    if j > 3:
        _moments_loops(w, q0, j, rows, pattern, means_m, resp, a0, f_out, outer)
        return
    k_all = resp.shape[0]
    q1, q2 = q0 + rows, q0 + 2 * rows
    for k in range(k_all):
        current = pattern[0] if rows else 0
        s00 = s01 = s02 = s11 = s12 = s22 = 0.0
        for r in range(rows):
            p = pattern[r]
            if p != current:
                _flush(outer, k, current, j, s00, s01, s02, s11, s12, s22)
                s00 = s01 = s02 = s11 = s12 = s22 = 0.0
                current = p
            rr = resp[k, a0 + r]
            e0 = means_m[k, 0, p] - w[k, q0 + r]
            w[k, q0 + r] = e0
            f0 = rr * e0
            f_out[k, q0 + r] = f0
            s00 += f0 * e0
            if j >= 2:
                e1 = means_m[k, 1, p] - w[k, q1 + r]
                w[k, q1 + r] = e1
                f1 = rr * e1
                f_out[k, q1 + r] = f1
                s01 += f0 * e1
                s11 += f1 * e1
                if j == 3:
                    e2 = means_m[k, 2, p] - w[k, q2 + r]
                    w[k, q2 + r] = e2
                    f_out[k, q2 + r] = rr * e2
                    s02 += f0 * e2
                    s12 += f1 * e2
                    s22 += rr * e2 * e2
        if rows:
            _flush(outer, k, current, j, s00, s01, s02, s11, s12, s22)


@jit
def _flush(outer, k, p, j, s00, s01, s02, s11, s12, s22):
    # triu_pairs order: j = 1: (00); j = 2: (00, 01, 11); j = 3: (00, 01, 02, 11, 12, 22)
    outer[k, 0, p] += s00
    if j == 2:
        outer[k, 1, p] += s01
        outer[k, 2, p] += s11
    elif j == 3:
        outer[k, 1, p] += s01
        outer[k, 2, p] += s02
        outer[k, 3, p] += s11
        outer[k, 4, p] += s12
        outer[k, 5, p] += s22


@jit
def _moments_loops(w, q0, j, rows, pattern, means_m, resp, a0, f_out, outer):
    k_all = resp.shape[0]
    t_all = j * (j + 1) // 2
    e = np.empty(j, dtype=np.float64)
    acc = np.zeros(t_all, dtype=np.float64)
    for k in range(k_all):
        current = pattern[0] if rows else 0
        for r in range(rows):
            p = pattern[r]
            if p != current:
                for t in range(t_all):
                    outer[k, t, current] += acc[t]
                    acc[t] = 0.0
                current = p
            rr = resp[k, a0 + r]
            for a in range(j):
                at = q0 + a * rows + r
                ea = means_m[k, a, p] - w[k, at]
                w[k, at] = ea
                f_out[k, at] = rr * ea
                e[a] = ea
            t = 0
            for a in range(j):
                fa = rr * e[a]
                for b in range(a, j):
                    acc[t] += fa * e[b]
                    t += 1
        if rows:
            for t in range(t_all):
                outer[k, t, current] += acc[t]
                acc[t] = 0.0


@jit
def _pattern_terms(prec, means_c, prec_means, missing, inv, log_det_mm, means_m, shift_m, c2):
    """Per (component, pattern) of a group of patterns with the missing columns ``missing``
    (P_j, j): the inverse of the precision's missing block ``(Lambda_k,mm)^{-1}``, packed
    into ``inv`` (T, K', P_j) in triu_pairs(j)'s order, and its log-determinant
    ``log det Lambda_k,mm`` into ``log_det_mm`` (K', P_j), by a Cholesky factorisation;
    the means' missing entries ``means_m`` (K, j, P_j); ``shift_m = (Lambda_k (m_k*o))_m``
    (K, j, P_j) and ``c2 = (m*o)' Lambda (m*o) - m' Lambda m`` (K, P_j). Returns False when
    a block is not positive definite.

    Every step runs over all the patterns in its innermost loop (entry by entry, as
    :func:`~emkit.models.gaussian_kernels.spd_inverse_entries` does), so that the square
    roots and divisions of many small matrices are computed side by side in vector
    registers."""
    k_prec = prec.shape[0]
    k_all = means_c.shape[0]
    n_pat, j = missing.shape
    block = np.empty((j, j, n_pat), dtype=np.float64)  # Lambda_mm, then its Cholesky factor L
    inv_low = np.zeros((j, j, n_pat), dtype=np.float64)  # M = L^{-1}
    product = np.empty(n_pat, dtype=np.float64)
    ok = True
    for kp in range(k_prec):
        for a in range(j):
            for b in range(a + 1):
                for p in range(n_pat):
                    block[a, b, p] = prec[kp, missing[p, a], missing[p, b]]
        product[:] = 1.0
        for c in range(j):
            for t in range(c):
                for p in range(n_pat):
                    block[c, c, p] -= block[c, t, p] * block[c, t, p]
            for p in range(n_pat):
                s = block[c, c, p]
                ok &= s > 0.0
                product[p] *= s
                d = np.sqrt(s)
                block[c, c, p] = d
                inv_low[c, c, p] = 1.0 / d
            for r in range(c + 1, j):
                for t in range(c):
                    for p in range(n_pat):
                        block[r, c, p] -= block[r, t, p] * block[c, t, p]
                for p in range(n_pat):
                    block[r, c, p] *= inv_low[c, c, p]
        if not ok:
            return False
        for p in range(n_pat):
            if 1e-300 < product[p] < 1e300:
                log_det_mm[kp, p] = np.log(product[p])
            else:  # out of the normal range: a log per pivot (2 log of L's diagonal)
                total = 0.0
                for c in range(j):
                    total += 2.0 * np.log(block[c, c, p])
                log_det_mm[kp, p] = total
        for c in range(j):
            for r in range(c + 1, j):
                for p in range(n_pat):
                    inv_low[r, c, p] = block[r, c, p] * inv_low[c, c, p]
                for t in range(c + 1, r):
                    for p in range(n_pat):
                        inv_low[r, c, p] += block[r, t, p] * inv_low[t, c, p]
                for p in range(n_pat):
                    inv_low[r, c, p] *= -inv_low[r, r, p]
        pos = 0
        for a in range(j):  # A^{-1} = M' M
            for b in range(a, j):
                for p in range(n_pat):
                    inv[pos, kp, p] = inv_low[b, a, p] * inv_low[b, b, p]
                for t in range(b + 1, j):
                    for p in range(n_pat):
                        inv[pos, kp, p] += inv_low[t, a, p] * inv_low[t, b, p]
                pos += 1
    for k in range(k_all):
        kp = k if k_prec > 1 else 0
        for p in range(n_pat):
            c2[k, p] = 0.0
        for a in range(j):
            for p in range(n_pat):
                ma = missing[p, a]
                mu = means_c[k, ma]
                lam_mu = 0.0
                for b in range(j):
                    lam_mu += prec[kp, ma, missing[p, b]] * means_c[k, missing[p, b]]
                means_m[k, a, p] = mu
                shift_m[k, a, p] = prec_means[k, ma] - lam_mu
                # (m*o)' Lambda (m*o) - m' Lambda m = -2 m_m' (Lambda m)_m + m_m' Lambda_mm m_m
                c2[k, p] += mu * (lam_mu - 2.0 * prec_means[k, ma])
    return True


@jit
def _posterior(lj, top, total, at, args, dead_below, shift, weights, row_ll):
    """Responsibilities from a component-major log joint ``lj`` (K, n), in place, and the
    log-likelihood: each row's largest term ``top`` (plus ``shift``, so that no argument
    of exp is exactly 0), exp (float64, scalar) of the terms above ``dead_below`` (the
    others exactly 0, as NumPy's sparse form leaves them), the per-row totals and one
    scaling pass. ``weights`` (n,) multiply the responsibilities and the rows'
    log-likelihoods when not empty; ``row_ll`` (n,) receives those when not empty, else
    the sum is returned (one log per 32 rows: each total lies in [1, K]). ``top``, ``total``
    (n,) and ``args`` (n + 1,) are scratch of ``lj``'s dtype, ``at`` (n + 1,) intp scratch;
    the caller reuses them from chunk to chunk. Rows impossible under every component keep
    responsibilities 0 and make the log-likelihood -inf."""
    k_all, n = lj.shape
    _row_tops(lj, top, total, shift)
    # per component: the live terms' positions and arguments gathered without a branch
    # (a branch on "live" is mispredicted where live and dead terms mix), then exp of those
    for k in range(k_all):
        count = 0
        for r in range(n):
            v = lj[k, r] - top[r]
            lj[k, r] = 0.0
            at[count] = r
            args[count] = v
            count += v > dead_below
        for i in range(count):
            r = at[i]
            e = np.exp(args[i])
            lj[k, r] = e
            total[r] += e
    return _finish(lj, top, total, weights, row_ll)


@jit
def _posterior_single(lj, top, total, bits, dead_below, shift, weights, row_ll):
    """:func:`_posterior` for a float32 ``lj``, with a vectorised exp of every term: the
    terms at or below ``dead_below`` are exactly 0 as there, the others
    ``2^n p(x - n log 2)`` (Cephes' ``expf``: range reduction in two parts, a degree-7
    polynomial, the power of two added to the exponent bits; within 1 ulp of the exact
    exp on [-88, 0]). With 8 lanes a value (AVX2) this costs less than an exp of the live
    terms only (a scalar exp each, after a gather). ``bits`` (n,) int32 scratch."""
    k_all, n = lj.shape
    _row_tops(lj, top, total, shift)
    as_bits = lj.view(np.int32)
    for k in range(k_all):
        for r in range(n):
            v = lj[k, r] - top[r]
            live = v > dead_below
            x = v if live else np.float32(0.0)  # (dead: -inf or NaN in impossible rows)
            m = np.floor(x * np.float32(1.44269504088896341) + np.float32(0.5))
            x = x - m * np.float32(0.693359375) + m * np.float32(2.12194440e-4)
            p = np.float32(1.9875691500e-4)
            p = p * x + np.float32(1.3981999507e-3)
            p = p * x + np.float32(8.3334519073e-3)
            p = p * x + np.float32(4.1665795894e-2)
            p = p * x + np.float32(1.6666665459e-1)
            p = p * x + np.float32(5.0000001201e-1)
            p = p * x * x + x + np.float32(1.0)
            lj[k, r] = p if live else np.float32(0.0)
            bits[r] = (np.int32(m) << 23) if live else np.int32(0)
        for r in range(n):  # times 2^m: m added to the exponent (m in [-31, 0]: no underflow)
            as_bits[k, r] += bits[r]
        for r in range(n):
            total[r] += lj[k, r]
    return _finish(lj, top, total, weights, row_ll)


@jit
def _row_tops(lj, top, total, shift):
    """Each column's largest term plus ``shift`` into ``top``; ``total`` zeroed."""
    k_all, n = lj.shape
    for r in range(n):
        top[r] = lj[0, r]
        total[r] = 0.0
    for k in range(1, k_all):
        for r in range(n):
            top[r] = max(top[r], lj[k, r])
    for r in range(n):
        top[r] += shift


@jit
def _finish(lj, top, total, weights, row_ll):
    """The log-likelihood from the row totals and tops, and the scaling of ``lj``'s
    columns to responsibilities (see :func:`_posterior`)."""
    k_all, n = lj.shape
    weighted = weights.shape[0] > 0
    loglik = 0.0
    if row_ll.shape[0] > 0 or weighted:
        for r in range(n):
            ll = np.log(float(total[r])) + float(top[r]) if total[r] > 0.0 else -np.inf
            if weighted:
                ll *= weights[r]
            if row_ll.shape[0] > 0:
                row_ll[r] = ll
            loglik += ll
    else:
        product = 1.0
        for r in range(n):
            if total[r] > 0.0:
                loglik += float(top[r])
            else:
                loglik = -np.inf
            product *= float(total[r])
            if r % 32 == 31:
                loglik += np.log(product)
                product = 1.0
        loglik += np.log(product)
    for r in range(n):  # the scale of each row, one division per row
        t = total[r]
        scale = (weights[r] if weighted else 1.0) / t if t > 0.0 else 0.0
        total[r] = scale
    for k in range(k_all):
        for r in range(n):
            lj[k, r] *= total[r]
    return loglik


@jit
def _small_prepare(cov, weights, means_c, log_2pi, inv_chol, log_norm, maha):
    """For full covariances ``cov`` (K, D, D) (their lower triangles read, as LAPACK's
    Cholesky does): the inverses of their lower Cholesky factors ``inv_chol`` (K, D, D,
    lower), the log normalisers ``log w - D/2 log 2 pi + log|L^-1|`` (``-inf`` for a weight
    of 0: never chosen) and ``maha``, the
    centred means' squared lengths ``|L^-1 m_c|^2``. Returns False when a covariance is
    not positive definite (the caller then takes the NumPy path, which says which)."""
    k_all, d, _ = cov.shape
    low = np.empty((d, d))
    for k in range(k_all):
        for j in range(d):
            s = cov[k, j, j]
            for t in range(j):
                s -= low[j, t] * low[j, t]
            if not s > 0.0:
                return False
            low[j, j] = np.sqrt(s)
            for i in range(j + 1, d):
                s = cov[k, i, j]
                for t in range(j):
                    s -= low[i, t] * low[j, t]
                low[i, j] = s / low[j, j]
        for j in range(d):  # L^-1 by forward substitution, column by column
            for i in range(j):
                inv_chol[k, i, j] = 0.0
            inv_chol[k, j, j] = 1.0 / low[j, j]
            for i in range(j + 1, d):
                s = 0.0
                for t in range(j, i):
                    s -= low[i, t] * inv_chol[k, t, j]
                inv_chol[k, i, j] = s / low[i, i]
        log_det = 0.0
        length = 0.0
        for i in range(d):
            log_det += np.log(inv_chol[k, i, i])
            z = 0.0
            for j in range(i + 1):
                z += inv_chol[k, i, j] * means_c[k, j]
            length += z * z
        log_w = np.log(weights[k]) if weights[k] > 0.0 else -np.inf
        log_norm[k] = log_w - 0.5 * d * log_2pi + log_det
        maha[k] = length
    return True


@inline_jit
def _whitened_length(inv_chol, means_c, k, xc):
    """``|L_k^-1 (xc - m_k)|^2``: a centred row's squared distance from component k's centred
    mean in its metric (``inv_chol[k]`` lower triangular)."""
    d = xc.shape[0]
    length = 0.0
    for a in range(d):
        acc = 0.0
        for b in range(a + 1):
            acc += inv_chol[k, a, b] * (xc[b] - means_c[k, b])
        length += acc * acc
    return length


@jit
def _small_e_step(x, center, means_c, inv_chol, log_norm, anchors, weights, dead_below, n_out, s1_out,
                 s2_out):
    """A whole complete-data E-step of full covariances, row by row: each row's log joint
    in the whitened form ``log_norm_k - |L_k^-1 (x - c - m_k)|^2 / 2``, its
    responsibilities (terms at or below ``dead_below`` less the row's largest exactly 0,
    as in ``posterior_by_component``) times its weight (``weights`` (n,), or empty), and
    their sums ``n_out`` (K,), ``s1_out`` (K, D) and ``s2_out`` (K, T) (upper triangles,
    row-major) about the reference points ``anchors`` (K, D), added to what the arrays
    hold. Returns the (weighted) log-likelihood; -inf when a row of positive weight is
    impossible under every component."""
    n, d = x.shape
    k_all = means_c.shape[0]
    weighted = weights.shape[0] > 0
    lj = np.empty(k_all)
    xc = np.empty(d)
    z = np.empty(d)
    loglik = 0.0
    for i in range(n):
        w_i = weights[i] if weighted else 1.0
        for a in range(d):
            xc[a] = x[i, a] - center[a]
        top = -np.inf
        for k in range(k_all):
            v = log_norm[k] - 0.5 * _whitened_length(inv_chol, means_c, k, xc)
            lj[k] = v
            top = max(top, v)
        if not top > -np.inf:  # impossible under every component (or NaN)
            if w_i != 0.0:
                loglik = -np.inf
            continue
        total = 0.0
        for k in range(k_all):
            v = lj[k] - top
            e = np.exp(v) if v > dead_below else 0.0
            lj[k] = e
            total += e
        loglik += w_i * (np.log(total) + top)
        scale = w_i / total
        for k in range(k_all):
            r = lj[k] * scale
            if r == 0.0:
                continue
            n_out[k] += r
            for a in range(d):
                z[a] = x[i, a] - anchors[k, a]
                s1_out[k, a] += r * z[a]
            p = 0
            for a in range(d):
                ra = r * z[a]
                for b in range(a, d):
                    s2_out[k, p] += ra * z[b]
                    p += 1
    return loglik


@jit
def _small_pass(x, center, cov, weights, means_c, log_2pi, far_limit, row_weights, dead_below, inv_chol, log_norm,
                maha, anchors, n_out, s1_out, s2_out, loglik_out):
    """A whole small-data E-step in one call: ``_small_prepare``, then, when no component is
    far from the centre (every ``maha`` at most ``far_limit``), the statistics about the
    centre (``anchors`` set to it) by ``_small_e_step``, the log-likelihood into
    ``loglik_out[0]``. Returns 0 when done, 1 when a covariance is not positive definite,
    2 when a component is far (the caller then picks its reference point and runs
    ``_small_e_step`` on the prepared arrays)."""
    if not _small_prepare(cov, weights, means_c, log_2pi, inv_chol, log_norm, maha):
        return 1
    k_all, d = means_c.shape
    for k in range(k_all):
        if not maha[k] <= far_limit:
            return 2
    for k in range(k_all):
        for a in range(d):
            anchors[k, a] = center[a]
    loglik_out[0] = _small_e_step(x, center, means_c, inv_chol, log_norm, anchors, row_weights, dead_below, n_out,
                                  s1_out, s2_out)
    return 0


@jit
def _small_log_joint(x, center, cov, weights, means_c, log_2pi, inv_chol, log_norm, maha, out):
    """``log p(x_i, z_i = k)`` of small complete data into ``out`` (n, K), by the whitened
    form of ``_small_e_step`` after ``_small_prepare``. Returns False when a covariance is not
    positive definite."""
    if not _small_prepare(cov, weights, means_c, log_2pi, inv_chol, log_norm, maha):
        return False
    n, d = x.shape
    k_all = means_c.shape[0]
    xc = np.empty(d)
    for i in range(n):
        for a in range(d):
            xc[a] = x[i, a] - center[a]
        for k in range(k_all):
            out[i, k] = log_norm[k] - 0.5 * _whitened_length(inv_chol, means_c, k, xc)
    return True


@jit
def _scatter_covariances(n, nk, s1, s2, about, reg_covar, out):
    """Full covariances from the statistics (``covariance.Full.m_step``): the scatter about
    the means ``about`` (K, D), ``s2 - s1 a^T - a s1^T + n a a^T`` (``s2`` packed upper
    triangles, row-major), divided by ``nk``, plus ``reg_covar`` on the diagonal, into ``out``
    (K, D, D), both triangles."""
    k_all, d = about.shape
    for k in range(k_all):
        p = 0
        for a in range(d):
            for b in range(a, d):
                v = s2[k, p] - s1[k, a] * about[k, b] - about[k, a] * s1[k, b] + n[k] * about[k, a] * about[k, b]
                v /= nk[k]
                out[k, a, b] = v
                out[k, b, a] = v
                p += 1
            out[k, a, a] += reg_covar


@jit
def _m_step_start(n, ref_sum, s1, center, center_tol, count_floor, ref_out, weights_out, step_out):
    """The first part of every M-step (``gaussian_kernels.m_step_numpy``): the statistics'
    reference points ``ref_sum / n`` (0 where n = 0; the centre itself within ``center_tol``
    of it, as ``reference_offsets``), the weights ``(n + floor) / sum`` and the steps
    ``s1 / (n + floor)`` to the new means. Returns whether a component is empty (n at most
    1e-12 of the total)."""
    k_all, d = s1.shape
    total = 0.0
    for k in range(k_all):
        total += n[k]
    floor = 1e-12 * max(total, 1e-300)
    total_floor = 0.0
    empty = False
    for k in range(k_all):
        nk = n[k] + count_floor
        total_floor += nk
        empty = empty or n[k] <= floor
        at_center = True
        for a in range(d):
            r = ref_sum[k, a] / n[k] if n[k] > 0 else 0.0
            ref_out[k, a] = r
            at_center = at_center and abs(r - center[a]) <= center_tol[a]
            step_out[k, a] = s1[k, a] / nk
        if at_center:
            for a in range(d):
                ref_out[k, a] = center[a]
    for k in range(k_all):
        weights_out[k] = (n[k] + count_floor) / total_floor
    return empty


#: the loops by name (``gaussian_compiled.kernels``)
KERNELS: dict[str, Any] = {"corrections": _corrections, "moments": _moments, "pattern_terms": _pattern_terms,
                           "posterior": _posterior, "posterior_single": _posterior_single,
                           "small_prepare": _small_prepare, "small_e_step": _small_e_step, "small_pass": _small_pass,
                           "small_log_joint": _small_log_joint,
                           "scatter_covariances": _scatter_covariances, "m_step_start": _m_step_start,
                           **MCLUST_KERNELS}
