"""Profile-fit diameter kernel: a blurred top-hat fitted to each binned line (Levenberg-Marquardt).

Model (x in pixels): ``f(x) = b + a/2 * (erf((x-l)/(sqrt2 s)) - erf((x-r)/(sqrt2 s)))``,
a lumen ``[l, r]`` of level ``a`` above background ``b`` seen through a Gaussian PSF of
sigma ``s``; the fit starts from the half-maximum edges of the same profile. The public
wrapper is :func:`hpcacq.kernels.diameter.fit_edges`.
"""

import math

import numpy as np
from numba import njit

from ._jit import JIT_OPTIONS
from .diameter_profile import (
    FIT_NOT_CONVERGED,
    FIT_POOR,
    LEFT_EDGE_MISSING,
    RIGHT_EDGE_MISSING,
    _halfmax_profile,
)

_SQRT2 = math.sqrt(2.0)
_TWO_OVER_SQRTPI = 2.0 / math.sqrt(math.pi)
_MIN_SIGMA = 0.05  # px: smallest PSF sigma the fit may take
_N_PARAMS = 5  # b, a, l, r, s


@njit(**JIT_OPTIONS)
def _model_normal_eq(prof, p, jtj, jtr):
    """Sum of squared residuals of the top-hat * Gaussian model at p; fills J^T J and J^T r.

    Model: f(x) = b + a/2 * (erf((x - l) / (sqrt2 s)) - erf((x - r) / (sqrt2 s))).
    """
    b, a, l, r, s = p[0], p[1], p[2], p[3], p[4]
    inv = 1.0 / (_SQRT2 * s)
    jtj[:, :] = 0.0
    jtr[:] = 0.0
    cost = 0.0
    row = np.empty(_N_PARAMS)
    for x in range(prof.shape[0]):
        zl = (x - l) * inv
        zr = (x - r) * inv
        half_step = 0.5 * (math.erf(zl) - math.erf(zr))
        res = prof[x] - (b + a * half_step)
        gl = _TWO_OVER_SQRTPI * math.exp(-zl * zl)
        gr = _TWO_OVER_SQRTPI * math.exp(-zr * zr)
        row[0] = 1.0
        row[1] = half_step
        row[2] = -0.5 * a * gl * inv
        row[3] = 0.5 * a * gr * inv
        row[4] = 0.5 * a * (zr * gr - zl * gl) / s
        cost += res * res
        for u in range(_N_PARAMS):
            jtr[u] += row[u] * res
            for v in range(u + 1):
                jtj[u, v] += row[u] * row[v]
    return cost


@njit(**JIT_OPTIONS)
def _damped_step(jtj, jtr, lam, step, chol):
    """Solve (J^T J + lam * diag(J^T J)) step = J^T r by Cholesky; False if not positive."""
    for u in range(_N_PARAMS):
        for v in range(u + 1):
            val = jtj[u, v]
            if u == v:
                val += lam * max(jtj[u, u], 1e-12)
            for w in range(v):
                val -= chol[u, w] * chol[v, w]
            if u == v:
                if not val > 0.0:
                    return False
                chol[u, u] = math.sqrt(val)
            else:
                chol[u, v] = val / chol[v, v]
    for u in range(_N_PARAMS):  # forward then back substitution
        val = jtr[u]
        for w in range(u):
            val -= chol[u, w] * step[w]
        step[u] = val / chol[u, u]
    for u in range(_N_PARAMS - 1, -1, -1):
        val = step[u]
        for w in range(u + 1, _N_PARAMS):
            val -= chol[w, u] * step[w]
        step[u] = val / chol[u, u]
    return True


@njit(**JIT_OPTIONS)
def _levenberg_marquardt(prof, p, max_iter, ws_mat, ws_vec):
    """Fit the model to prof from p (updated in place); returns (converged, cost)."""
    jtj, jtj_t, chol = ws_mat[0], ws_mat[1], ws_mat[2]
    jtr, jtr_t, step, trial = ws_vec[0], ws_vec[1], ws_vec[2], ws_vec[3]
    cost = _model_normal_eq(prof, p, jtj, jtr)
    lam = 1e-3
    new_cost = cost
    for _ in range(max_iter):
        accepted = False
        while not accepted:
            if lam > 1e12:  # no step lowers the cost: at the minimum to machine precision
                return True, cost
            if _damped_step(jtj, jtr, lam, step, chol):
                for u in range(_N_PARAMS):
                    trial[u] = p[u] + step[u]
                if trial[4] > _MIN_SIGMA and trial[3] > trial[2] and trial[1] > 0.0:
                    new_cost = _model_normal_eq(prof, trial, jtj_t, jtr_t)
                    if new_cost <= cost:
                        accepted = True
                        break
            lam *= 10.0
        small = abs(step[2]) < 1e-7 and abs(step[3]) < 1e-7 and abs(step[4]) < 1e-7
        flat = cost - new_cost <= 1e-12 * cost
        p[:] = trial
        jtj[:, :] = jtj_t
        jtr[:] = jtr_t
        cost = new_cost
        lam = max(lam * 0.1, 1e-12)
        if small or flat:
            return True, cost
    return False, cost


@njit(**JIT_OPTIONS)
def _fit_profile(prof, scratch, q_lo, q_hi, max_iter, min_r2, p, ws_mat, ws_vec):
    """Top-hat * Gaussian fit of one profile: (left, right, r2, flags); p holds the fit."""
    n = prof.shape[0]
    l0, r0, flags, base, peak = _halfmax_profile(prof, scratch, q_lo, q_hi)
    if flags != 0:
        return np.nan, np.nan, np.nan, flags
    j = int(math.floor(l0)) + 1  # slope of the left edge -> PSF sigma guess
    slope = max(prof[j] - prof[j - 1], 1e-12 * (peak - base))
    p[0] = base
    p[1] = peak - base
    p[2] = l0
    p[3] = r0
    p[4] = min(max((peak - base) / (math.sqrt(2.0 * math.pi) * slope), 0.3), 0.25 * n)
    converged, cost = _levenberg_marquardt(prof, p, max_iter, ws_mat, ws_vec)
    mean = 0.0
    for x in range(n):
        mean += prof[x]
    mean /= n
    total = 0.0
    for x in range(n):
        total += (prof[x] - mean) ** 2
    r2 = 1.0 - cost / total
    if not converged or not math.isfinite(cost):
        return np.nan, np.nan, r2, FIT_NOT_CONVERGED
    left, right = p[2], p[3]
    if left < -0.5:
        flags |= LEFT_EDGE_MISSING
        left = np.nan
    if right > n - 0.5:
        flags |= RIGHT_EDGE_MISSING
        right = np.nan
    if not r2 >= min_r2:
        flags |= FIT_POOR
    return left, right, r2, flags
