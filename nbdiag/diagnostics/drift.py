"""Drift model and high-pass filtering versus the task design.

Definitions
-----------
Drift subspace
    The design's ``drift`` columns, plus fMRIPrep cosine confounds
    (``cosine\\d+`` columns, role ``drift`` or ``confound``: they are a DCT
    high-pass basis too), plus the constant (an intercept is added if absent).
Cosine periods
    nilearn's ``create_cosine_drift`` builds ``drift_k = sqrt(2/N) cos(pi k (n + 0.5) / N)``
    (n = 0..N-1), frequency ``k / (2 N dt)`` Hz, so ``drift_k`` covers a period
    of ``2 N dt / k`` seconds (``dt`` = mean frame interval). With a cosine
    drift model nilearn keeps ``K = min(N - 1, floor(2 N high_pass dt))``
    cosines; the current cutoff period is ``1 / high_pass`` seconds.
R² on drift
    Centred R² of the least-squares fit of a regressor on the drift subspace.
    For a contrast, the regressor is its *effective regressor* ``X c`` (the
    weighted sum of the design columns it weights: ``zero_back`` itself for
    ``zero_back``, ``two_back - zero_back`` for the difference), i.e. the
    time course whose amplitude the contrast compares against baseline.
Variance kept
    ``1 - R²`` of each task regressor on the drift subspace: the fraction of its
    (mean-removed) variance the current drift model leaves for estimation.
Recommended cutoff (nilearn cosine basis)
    FSL cutoffcalc's rule applied to the filter nilearn actually uses: the
    shortest cutoff period whose cosine set keeps at least
    ``1 - highpass_variance_lost`` (90 %) of *every* task regressor's variance,
    never shorter than ``highpass_min_cutoff_s`` (90 s). With K cosines allowed,
    the period is ``2 N dt / K`` and ``high_pass = K / (2 N dt)`` Hz (nilearn
    then keeps exactly K cosines). ``None`` if even one cosine removes too much.
FSL cutoffcalc (faithful)
    :func:`fsl_cutoffcalc` reproduces FSL's ``cutoffcalc`` (v1.1, Jenkinson &
    Webster 2009) exactly: regressors are demeaned, filtered with FSL's
    ``bandpass_temporal_filter`` high-pass (Gaussian-weighted running-line fit,
    sigma in volumes, window ``int(3 sigma)``), and the criterion is the
    minimum over regressors of ``std(filtered)/std(original)`` compared with the
    threshold (0.9) — note FSL compares **standard deviations**, so "90 %" there
    keeps 81 % of the variance. The search is FSL's: sigma between
    ``limit / (2 TR)`` (the 90-s floor) and ``3 N``, bisection on integers
    (``hsig = round((lsig + usig) / 2)``), answer ``usig * 2 TR`` seconds.
"""

from __future__ import annotations

import re
from functools import lru_cache
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd
from scipy.fft import next_fast_len
from scipy.signal import fftconvolve, periodogram

from nbdiag.design.context import DesignContext
from nbdiag.diagnostics._linalg import (
    check_design as _check_design,
    json_float as _json_float,
    json_map as _json_map,
    r2_on as _r2_on,
    threshold_source as _source,
)
from nbdiag.core.findings import Finding
from nbdiag.core.thresholds import Thresholds
from nbdiag.core import codes

_COSINE_CONFOUND = re.compile(r"^cosine\d+$")
MAX_SPECTRUM_POINTS = 256


def _dt(design: pd.DataFrame, context: DesignContext) -> float:
    ft = np.asarray(design.index, dtype=float)
    n = len(ft)
    if n > 1 and np.all(np.isfinite(ft)) and ft[-1] > ft[0]:
        return float((ft[-1] - ft[0]) / (n - 1))
    return float(context.t_r)


def dct_cosines(n_scans: int, n_cosines: int) -> np.ndarray:
    """nilearn's drift_1..drift_K: ``sqrt(2/N) cos(pi / N * (n + 0.5) * k)``, k = 1..K.

    The DCT-II basis (orthonormal, orthogonal to the constant), computed with
    nilearn's own operation order so the columns equal ``create_cosine_drift``'s
    bit for bit. Shape (n_scans, n_cosines).
    """
    n = np.arange(n_scans)
    cols = [np.sqrt(2.0 / n_scans) * np.cos(np.pi / n_scans * (n + 0.5) * k) for k in range(1, n_cosines + 1)]
    return np.column_stack(cols) if cols else np.zeros((n_scans, 0))


def nilearn_cosine_basis(n_scans: int, dt: float, high_pass: float) -> np.ndarray:
    """nilearn's cosine drift columns (without the constant) for ``high_pass`` Hz."""
    return dct_cosines(n_scans, int(min(n_scans - 1, np.floor(2 * n_scans * high_pass * dt))))


def _kept_fraction(x: np.ndarray, n_cos: int) -> float:
    """Fraction of centred variance of x left after removing DCT cosines 1..n_cos."""
    n = len(x)
    xc = x - x.mean()
    tot = float(xc @ xc)
    if tot <= 0:
        return 1.0
    if n_cos == 0:
        return 1.0
    C = dct_cosines(n, n_cos)
    proj = C.T @ xc  # DCT-II cosines are orthonormal and orthogonal to the constant
    return float(max(0.0, 1.0 - float(proj @ proj) / tot))


def recommended_cosine_cutoff(
    task: np.ndarray, dt: float, keep: float = 0.9, min_period_s: float = 90.0
) -> tuple[float | None, int]:
    """FSL cutoffcalc's rule on nilearn's cosine basis (module docstring).

    Returns
    -------
    period_s : float or None
        Shortest cutoff period (s) keeping ``keep`` of every regressor's variance.
    n_cosines : int
        Number of cosines nilearn keeps at that cutoff.
    """
    task = np.asarray(task, dtype=float).reshape(task.shape[0], -1)
    n = task.shape[0]
    k_floor = int(np.floor(2 * n * dt / min_period_s))  # most cosines the 90-s floor allows
    k_max = min(n - 1, k_floor)
    best = 0
    if k_max >= 1 and task.shape[1]:
        # _kept_fraction(x, k) for every k at once: the cosines are orthonormal, so the removed
        # variance is the running sum of squared projections
        tc = task - task.mean(axis=0)
        tot = np.einsum("ij,ij->j", tc, tc)
        C = dct_cosines(n, k_max)
        removed = np.cumsum((C.T @ tc) ** 2, axis=0)  # (k_max, n_regressors)
        with np.errstate(divide="ignore", invalid="ignore"):
            kept = np.where(tot > 0, np.maximum(0.0, 1.0 - removed / np.where(tot > 0, tot, 1.0)), 1.0)
        ok = np.all(kept >= keep, axis=1)
        best = k_max if ok.all() else int(np.argmin(ok))  # first failing k stops the search
    if best == 0:
        return None, 0
    return max(2.0 * n * dt / best, min_period_s), best


@lru_cache(maxsize=128)  # ~25 kB per entry at 522 volumes: bounded at a few MB
def _fsl_kernels(sigma: float, n: int) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Half width, kernels ``w``, ``w d`` and the window sums N, A, C per time point.

    Memoised (a pure function of ``sigma`` and ``n``; the arrays are read-only): the
    bisection of :func:`fsl_cutoffcalc` visits the same sigmas in runs of the same length.
    """
    h = min(int(sigma * 3), n - 1)  # weights further than n - 1 volumes never apply
    d = np.arange(-h, h + 1, dtype=float)
    k = np.exp(-0.5 * d ** 2 / sigma**2)
    kd = k * d
    t = np.arange(n)
    lo = np.maximum(-h, -t) + h  # window as kernel indices, inclusive
    hi = np.minimum(h, n - 1 - t) + h

    def window_sum(v: np.ndarray) -> np.ndarray:
        cs = np.concatenate(([0.0], np.cumsum(v)))
        return cs[hi + 1] - cs[lo]

    out = (k, kd, window_sum(k), window_sum(kd), window_sum(kd * d))
    for a in out:
        a.setflags(write=False)
    return (h, *out)


@lru_cache(maxsize=128)
def _fsl_kernel_spectrum(sigma: float, n: int, length: int) -> np.ndarray:
    """``rfft`` of the kernels ``w`` and ``w d`` (columns) at ``length`` (memoised like :func:`_fsl_kernels`)."""
    _, k, kd, _, _, _ = _fsl_kernels(sigma, n)
    kf = np.fft.rfft(np.stack([k, kd], axis=1), length, axis=0)
    kf.setflags(write=False)
    return kf


@lru_cache(maxsize=128)
def _fsl_denominator(sigma: float, n: int) -> tuple[np.ndarray, bool, np.ndarray, int]:
    """Where ``C N - A²`` is not 0, whether it is nowhere 0, the safe divisor (column) and the first
    such time point (memoised with :func:`_fsl_kernels`; read-only)."""
    _, _, _, N, A, C = _fsl_kernels(sigma, n)
    denom = C * N - A * A
    ok = denom != 0
    safe = np.where(ok, denom, 1.0)[:, None]
    ok.setflags(write=False)
    safe.setflags(write=False)
    return ok, bool(ok.all()), safe, int(np.argmax(ok))


def _fsl_combine(X: np.ndarray, B: np.ndarray, D: np.ndarray, sigma: float) -> np.ndarray:
    """``c0 + x - c`` where the local fit exists, ``x`` elsewhere (:func:`_fsl_highpass_cols`)."""
    n = X.shape[0]
    _, _, _, _, A, C = _fsl_kernels(sigma, n)
    ok, all_ok, safe, first = _fsl_denominator(sigma, n)
    if not ok.any():
        return X.copy()
    c = (B * C[:, None] - A[:, None] * D) / safe
    c0 = c[first]
    if all_ok:  # the same element-wise (c0 + x) - c, without the masked copies
        return c0 + X - c
    out = X.copy()
    out[ok] = c0 + X[ok] - c[ok]
    return out


class _FslHighpassPlan:
    """:func:`_fsl_highpass_cols` for many sigmas on the same regressors.

    The regressors' real FFT is taken once, at a length (>= 3 n) that holds the
    full linear convolution with any kernel (half width <= n - 1), so each
    sigma costs two short kernel FFTs and one inverse FFT.
    """

    def __init__(self, X: np.ndarray):
        self.X = np.asarray(X, dtype=float)
        n = self.X.shape[0]
        self.L = next_fast_len(3 * n, real=True)
        self.Xf = np.fft.rfft(self.X, self.L, axis=0)

    def __call__(self, sigma: float) -> np.ndarray:
        X = self.X
        n, p = X.shape
        if sigma <= 0 or n == 0:
            return X.copy()
        h, k, kd, *_ = _fsl_kernels(sigma, n)
        if h == 0:
            return _fsl_combine(X, X * k[0], np.zeros_like(X), sigma)
        kf = _fsl_kernel_spectrum(float(sigma), n, self.L)  # (L//2+1, 2)
        prod = np.concatenate([self.Xf * kf[:, :1], self.Xf * kf[:, 1:]], axis=1)
        full = np.fft.irfft(prod, self.L, axis=0)[h:h + n]
        return _fsl_combine(X, full[:, :p], -full[:, p:], sigma)


def _fsl_highpass_cols(X: np.ndarray, sigma: float) -> np.ndarray:
    """:func:`fsl_highpass` of every column of ``X`` (n_scans x n_columns).

    FSL's loop (newimagefns.h ``bandpass_temporal_filter``) computes, for each
    time point ``t`` and ``dt = tt - t`` over the window
    ``max(t - h, 0) <= tt <= min(t + h, n - 1)`` (``h = int(3 sigma)``) with
    ``w = exp(-dt² / (2 sigma²))``::

        N = Σ w, A = Σ w dt, C = Σ w dt², B = Σ w x[tt], D = Σ w dt x[tt]
        c = (B C - A D) / (C N - A²)

    Here ``B`` and ``D`` are convolutions of ``x`` with the kernels ``w(d)``
    and ``w(d) d`` (FFT, all columns at once; the window truncation at the run
    ends is what a 'full' convolution gives), and ``N``, ``A``, ``C`` are
    differences of cumulative sums of the kernel moments over each window.
    Cost O(n log n) per sigma instead of O(n²). Equal to the loop to ~1e-13.
    """
    X = np.asarray(X, dtype=float)
    n = X.shape[0]
    if sigma <= 0 or n == 0:
        return X.copy()
    h, k, kd, *_ = _fsl_kernels(sigma, n)
    if h == 0:
        return _fsl_combine(X, X * k[0], np.zeros_like(X), sigma)
    # B[t] = Σ_j x[j] w(j - t) = (x * w)[t + h]; D[t] = Σ_j x[j] w(j - t)(j - t) = -(x * (w d))[t + h]
    B = fftconvolve(X, k[:, None], axes=0)[h:h + n]
    D = -fftconvolve(X, kd[:, None], axes=0)[h:h + n]
    return _fsl_combine(X, B, D, sigma)


def fsl_highpass(x: np.ndarray, sigma: float) -> np.ndarray:
    """FSL ``bandpass_temporal_filter`` high-pass part (hp_sigma in volumes).

    Gaussian-weighted local straight-line fit within ``int(3 sigma)`` volumes;
    output ``c0 + x - c`` with ``c`` the local fit at each time point and ``c0``
    the first one (newimagefns.h). Vectorised as convolutions
    (:func:`_fsl_highpass_cols`).
    """
    x = np.asarray(x, dtype=float)
    return _fsl_highpass_cols(x[:, None], sigma)[:, 0]


def fsl_cutoffcalc(task: np.ndarray, t_r: float, thresh: float = 0.9, limit: float = 90.0) -> float:
    """FSL ``cutoffcalc`` output (seconds) for the regressors in ``task`` (module docstring)."""
    dm = np.asarray(task, dtype=float).reshape(np.shape(task)[0], -1)
    dm = dm - dm.mean(axis=0)
    std0 = dm.std(axis=0, ddof=1)
    maxstd = std0.max() if std0.size else 0.0
    live = std0 > 1e-12 * maxstd  # flat regressors count as ratio 1
    std_live = std0[live]
    plan = _FslHighpassPlan(dm[:, live]) if live.any() else None

    def min_std_ratio(sigma: float) -> float:
        if plan is None:
            return 1.0
        ratios = plan(sigma).std(axis=0, ddof=1) / std_live
        return float(min(1.0, ratios.min())) if not live.all() else float(ratios.min())

    sig2sec = t_r * 2.0
    lsig = limit / sig2sec
    usig = 3.0 * dm.shape[0]
    if min_std_ratio(usig) <= thresh:
        return usig * sig2sec
    if min_std_ratio(lsig) > thresh:
        return lsig * sig2sec
    while usig - lsig > 1:
        hsig = float(np.floor((lsig + usig) / 2 + 0.5))  # MISCMATHS::round
        if min_std_ratio(hsig) > thresh:
            usig = hsig
        else:
            lsig = hsig
    return usig * sig2sec


@dataclass(frozen=True)
class DriftResult:
    """Drift / high-pass diagnostics of one design (module docstring).

    Parameters
    ----------
    drift_columns, cosine_confounds : tuple of str
    periods_s : dict of str to float
        Period covered by each nilearn ``drift_k`` cosine column.
    r2_task, r2_contrast : dict of str to float
        R² on drift + constant of each task regressor / contrast effective regressor.
    variance_kept : dict of str to float
    current_cutoff_s, recommended_cutoff_s, recommended_high_pass_hz, fsl_cutoffcalc_s : float or None
    freqs_hz : ndarray
    power : dict of str to ndarray
    findings : tuple of Finding
    """

    drift_columns: tuple[str, ...]
    cosine_confounds: tuple[str, ...]
    periods_s: dict[str, float]
    r2_task: dict[str, float]
    r2_contrast: dict[str, float]
    variance_kept: dict[str, float]
    current_cutoff_s: float | None
    recommended_cutoff_s: float | None
    recommended_high_pass_hz: float | None
    fsl_cutoffcalc_s: float | None
    freqs_hz: np.ndarray
    power: dict[str, np.ndarray]
    findings: tuple[Finding, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """The record's ``diagnostics.drift`` section."""
        return {
            "drift_columns": list(self.drift_columns),
            "cosine_confounds": list(self.cosine_confounds),
            "periods_s": _json_map(self.periods_s),
            "r2_task": _json_map(self.r2_task),
            "r2_contrast": _json_map(self.r2_contrast),
            "recommended_cutoff_s": _json_float(self.recommended_cutoff_s),
            "recommended_high_pass_hz": _json_float(self.recommended_high_pass_hz),
            "fsl_cutoffcalc_s": _json_float(self.fsl_cutoffcalc_s),
            "current_cutoff_s": _json_float(self.current_cutoff_s),
            "variance_kept": _json_map(self.variance_kept),
            "spectra": {
                "freqs_hz": _json_floats(self.freqs_hz),
                "power": {k: _json_floats(v) for k, v in self.power.items()},
            },
        }


def _json_floats(values: Any) -> list[float | None]:
    """``[_json_float(v) for v in values]`` for a numeric series, in one conversion."""
    arr = np.asarray(values, dtype=float).ravel()
    finite = np.isfinite(arr)
    out = arr.tolist()
    if not finite.all():
        out = [v if ok else None for v, ok in zip(out, finite.tolist())]
    return out


def _r2_severity(r2: float, th: Thresholds) -> str | None:
    if not np.isfinite(r2):
        return None
    return "fail" if r2 >= th.drift_r2_fail else "warn" if r2 >= th.drift_r2_warn else None


@dataclass(frozen=True)
class _Cutoffs:
    """The cutoffs a high-pass finding states (s, Hz) and the variance it must keep."""

    keep: float
    current: float | None
    rec_s: float | None
    rec_hz: float | None
    fsl_s: float | None
    fmriprep_cutoff: float | None
    n_cos_conf: int


def _task_spectrum(T: np.ndarray, task: list[str], dt: float) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Periodogram of each task regressor, at most ``MAX_SPECTRUM_POINTS`` frequencies."""
    if not task or T.shape[0] <= 1:
        return np.zeros(0), {}
    f, P = periodogram(T, fs=1.0 / dt, axis=0, detrend="constant")
    if len(f) > MAX_SPECTRUM_POINTS:
        idx = np.unique(np.linspace(0, len(f) - 1, MAX_SPECTRUM_POINTS).round().astype(int))
        f, P = f[idx], P[idx]
    return f, {c: P[:, j] for j, c in enumerate(task)}


def _overlap_findings(r2_task: Mapping[str, float], r2_con: Mapping[str, float], drift_columns: list[str],
                      th: Thresholds, fix: str) -> list[Finding]:
    """``drift_overlap`` per task regressor and per contrast whose R² on the drifts crosses a threshold."""
    findings: list[Finding] = []
    for c, r2 in r2_task.items():
        sev = _r2_severity(r2, th)
        if sev:
            limit = th.drift_r2_fail if sev == "fail" else th.drift_r2_warn
            findings.append(codes.DRIFT_OVERLAP.finding(
                severity=sev,
                title=f"The drift model explains {r2:.0%} of {c}",
                message=(f"R² of task regressor {c} on the drift columns + constant is {r2:.3f} "
                         f"(≥ {limit:g} gives {sev}): that part of its signal is removed with the drifts."),
                evidence={"regressor": c, "r2": r2, "drift_columns": list(drift_columns),
                          "threshold": limit, "drift_r2_warn": th.drift_r2_warn,
                          "drift_r2_fail": th.drift_r2_fail, "threshold_source": _source("drift_r2_warn")},
                score=r2 / th.drift_r2_warn if th.drift_r2_warn else r2,
                fix=fix,
            ))
    for name, r2 in r2_con.items():
        sev = _r2_severity(r2, th)
        if sev:
            limit = th.drift_r2_fail if sev == "fail" else th.drift_r2_warn
            findings.append(codes.DRIFT_OVERLAP.finding(
                severity=sev, contrast=name,
                title=f"The drift model explains {r2:.0%} of contrast {name}'s regressor",
                message=(f"R² of the effective regressor of {name} (X·c) on the drift columns + "
                         f"constant is {r2:.3f} (≥ {limit:g} gives {sev}): slow signal changes and "
                         f"this contrast are hard to tell apart."),
                evidence={"contrast": name, "r2": r2, "threshold": limit,
                          "drift_r2_warn": th.drift_r2_warn, "drift_r2_fail": th.drift_r2_fail,
                          "threshold_source": _source("drift_r2_warn")},
                score=r2 / th.drift_r2_warn if th.drift_r2_warn else r2,
                fix=fix,
            ))
    return findings


def _highpass_finding(c: str, k: float, lost_model: float, cut: _Cutoffs, context: DesignContext,
                      th: Thresholds) -> Finding:
    """``highpass_cuts_design`` for task regressor ``c`` keeping only ``k`` of its variance."""
    by_confounds = bool(cut.n_cos_conf) and lost_model <= th.highpass_variance_lost
    keep, rec_s, rec_hz, current = cut.keep, cut.rec_s, cut.rec_hz, cut.current
    if by_confounds:
        message = (
            f"The fMRIPrep cosine confounds ({cut.n_cos_conf} columns, cutoff about "
            f"{cut.fmriprep_cutoff:.0f} s) and the drift model together remove {1 - k:.1%} of the "
            f"variance of {c}; the drift model alone removes {lost_model:.1%}. The cosines come "
            "from 'high_pass' in confounds_strategy, so changing high_pass does not help."
        )
        keep_text = f" with high_pass={rec_hz:.5g} (keeps ≥ {keep:.0%})" if rec_hz else ""
        if "compcor" in (context.confounds_strategy or ()):
            fix = ("load_confounds requires 'high_pass' together with 'compcor', so with this strategy "
                   "the cosines come along: select the a_comp_cor_* (and motion) columns yourself, pass "
                   f"that DataFrame as confounds to FirstLevelModel.fit and keep nilearn's drift model{keep_text}.")
        else:
            fix = ("Drop 'high_pass' from confounds_strategy (load_confounds) and let nilearn's drift "
                   f"model high-pass the data{keep_text}.")
    else:
        message = (
            f"The current drift model removes {1 - k:.1%} of the variance of {c} "
            f"(more than {th.highpass_variance_lost:.0%}; FSL cutoffcalc keeps 90 %). "
            + (f"The shortest cutoff keeping ≥ {keep:.0%} of every task regressor is "
               f"{rec_s:.1f} s, i.e. high_pass={rec_hz:.5g} Hz"
               if rec_s is not None else
               "Even the first cosine removes too much; use drift_model=None or 'polynomial'")
            + (f" (current cutoff {current:.1f} s)." if current else ".")
        )
        fix = (f"Set high_pass={rec_hz:.5g} (cutoff {rec_s:.0f} s) in FirstLevelModel / "
               "first_level_from_bids." if rec_hz else
               "Use drift_model=None or 'polynomial' with a low drift_order.")
    return codes.HIGHPASS_CUTS_DESIGN.finding(
        severity="warn",
        title=f"The high-pass filter removes {1 - k:.0%} of {c}",
        message=message,
        evidence={"regressor": c, "variance_kept": k, "variance_lost": 1 - k,
                  "variance_lost_drift_model_only": lost_model,
                  "cosine_confounds_cutoff_s": cut.fmriprep_cutoff, "caused_by_cosine_confounds": by_confounds,
                  "current_cutoff_s": current, "recommended_cutoff_s": rec_s,
                  "recommended_high_pass_hz": rec_hz, "fsl_cutoffcalc_s": cut.fsl_s,
                  "threshold": th.highpass_variance_lost,
                  "threshold_source": _source("highpass_variance_lost")},
        score=(1 - k) / th.highpass_variance_lost if th.highpass_variance_lost else 1 - k,
        fix=fix,
    )


def _duplicated_finding(cos_conf: tuple[str, ...], drift_cols: tuple[str, ...], context: DesignContext) -> Finding:
    """``highpass_duplicated``: fMRIPrep cosine confounds and a drift model in one design."""
    return codes.HIGHPASS_DUPLICATED.finding(
        severity="warn",
        title="High-pass filtering is applied twice",
        message=(f"The design has fMRIPrep cosine confounds ({', '.join(cos_conf)}) and a "
                 f"{context.drift_model} drift model ({len(drift_cols)} columns): both remove "
                 f"low frequencies, the duplicates cost degrees of freedom and make the design "
                 f"nearly rank deficient."),
        evidence={"cosine_confounds": list(cos_conf), "drift_columns": list(drift_cols),
                  "drift_model": context.drift_model, "high_pass": context.high_pass,
                  "threshold": "both present", "threshold_source": "nbdiag rule"},
        score=1.0,
        fix=("Keep one: drop 'high_pass' from confounds_strategy (load_confounds) or set "
             "drift_model=None in FirstLevelModel."),
    )


def assess_drift(
    design: pd.DataFrame,
    roles: Mapping[str, str],
    context: DesignContext,
    contrasts: Mapping[str, np.ndarray] | None = None,
    thresholds: Thresholds | None = None,
) -> DriftResult:
    """Measure how the drift model overlaps the task regressors and contrasts.

    Parameters
    ----------
    design : DataFrame
        Design matrix indexed by frame times.
    roles : mapping of str to str
    context : DesignContext
        Uses ``t_r``, ``drift_model`` and ``high_pass``.
    contrasts : mapping of str to ndarray, optional
        Contrast vectors (one weight per design column).
    thresholds : Thresholds, optional

    Returns
    -------
    DriftResult
        Findings ``drift_overlap`` (per task regressor and per contrast),
        ``highpass_cuts_design`` and ``highpass_duplicated``.
    """
    _check_design(design, roles)
    if not isinstance(context, DesignContext):
        raise TypeError(f"context must be a DesignContext; got {type(context).__name__}")
    th = thresholds or Thresholds()
    contrasts = dict(contrasts or {})
    cols = [str(c) for c in design.columns]
    X = design.to_numpy(dtype=float)
    n = X.shape[0]
    dt = _dt(design, context)
    drift_cols = tuple(c for c in cols if roles[c] == "drift" and not _COSINE_CONFOUND.match(c))
    cos_conf = tuple(c for c in cols if _COSINE_CONFOUND.match(c) and roles[c] in ("drift", "confound"))
    task = [c for c in cols if roles[c] == "task"]
    sub_cols = list(drift_cols) + list(cos_conf) + [c for c in cols if roles[c] == "constant"]
    at = {c: j for j, c in enumerate(cols)}

    def columns(names) -> np.ndarray:
        return X[:, [at[c] for c in names]]

    D = columns(sub_cols)

    cosine_model = (context.drift_model or "").lower() == "cosine"
    periods = _cosine_periods(drift_cols, cosine_model, n, dt)
    r2_task, kept, r2_con = _drift_r2(X, cols, task, contrasts, D)
    current = 1.0 / context.high_pass if cosine_model and context.high_pass else None
    keep = 1.0 - th.highpass_variance_lost
    T = columns(task)
    rec_s, rec_hz, fsl_s = _recommended_cutoffs(T, task, dt, keep, n, th)
    freqs, power = _task_spectrum(T, task, dt)
    fix_drift = _drift_fix(rec_hz, rec_s)
    findings = _overlap_findings(r2_task, r2_con, list(drift_cols) + list(cos_conf), th, fix_drift)
    # with fMRIPrep cosine confounds, tell their share apart from the drift model's own
    D_model = columns([c for c in sub_cols if c not in cos_conf])
    cut = _Cutoffs(keep=keep, current=current, rec_s=rec_s, rec_hz=rec_hz, fsl_s=fsl_s,
                   fmriprep_cutoff=2.0 * n * dt / len(cos_conf) if cos_conf else None, n_cos_conf=len(cos_conf))
    for c in task:
        k = kept[c]
        if np.isfinite(k) and k < keep:
            lost_model = _r2_on(X[:, at[c]], D_model) if cos_conf else 1 - k
            findings.append(_highpass_finding(c, k, lost_model, cut, context, th))
    if cos_conf and drift_cols:
        findings.append(_duplicated_finding(cos_conf, drift_cols, context))
    return DriftResult(
        drift_columns=drift_cols, cosine_confounds=cos_conf, periods_s=periods,
        r2_task=r2_task, r2_contrast=r2_con, variance_kept=kept,
        current_cutoff_s=current, recommended_cutoff_s=rec_s,
        recommended_high_pass_hz=rec_hz, fsl_cutoffcalc_s=fsl_s,
        freqs_hz=freqs, power=power, findings=tuple(findings),
    )


def _cosine_periods(drift_cols: tuple[str, ...], cosine_model: bool, n: int, dt: float) -> dict[str, float]:
    """Period (s) of each ``drift_<k>`` column of a cosine drift model (``2 n dt / k``)."""
    periods: dict[str, float] = {}
    for c in drift_cols:
        m = re.match(r"^drift_(\d+)$", c)
        if cosine_model and m:
            periods[c] = 2.0 * n * dt / int(m.group(1))
    return periods


def _drift_r2(X: np.ndarray, cols: list[str], task: list[str], contrasts: Mapping[str, np.ndarray],
              D: np.ndarray) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """``(R² of each task column on D, variance each keeps (1 - R²), R² of each contrast's regressor on D)``,
    ``D`` the drift + constant columns; a contrast without one weight per column raises ``ValueError``."""
    at = {c: j for j, c in enumerate(cols)}
    r2_task = {c: _r2_on(X[:, at[c]], D) for c in task}
    kept = {c: (1.0 - r if np.isfinite(r) else float("nan")) for c, r in r2_task.items()}
    r2_con: dict[str, float] = {}
    for name, vec in contrasts.items():
        vec = np.asarray(vec, dtype=float).ravel()
        if vec.size != len(cols):
            raise ValueError(
                f"contrasts[{name!r}] must have one weight per design column ({len(cols)}); got {vec.size}"
            )
        r2_con[name] = _r2_on(X @ vec, D)
    return r2_task, kept, r2_con


def _recommended_cutoffs(T: np.ndarray, task: list[str], dt: float, keep: float, n: int,
                         th: Thresholds) -> tuple[float | None, float | None, float | None]:
    """``(recommended cutoff s, its high_pass Hz, FSL cutoffcalc s)``: the shortest cosine cutoff that keeps
    ``keep`` of every task column's variance (None without task columns)."""
    rec_s, rec_k = (None, 0)
    fsl_s = None
    if task:
        rec_s, rec_k = recommended_cosine_cutoff(T, dt, keep, th.highpass_min_cutoff_s)
        fsl_s = fsl_cutoffcalc(T, dt, thresh=keep, limit=th.highpass_min_cutoff_s)
    # K / (2 N dt) Hz makes nilearn keep exactly K cosines (tiny nudge against floor() rounding)
    rec_hz = (rec_k / (2.0 * n * dt)) * (1 + 1e-9) if rec_s is not None else None
    return rec_s, rec_hz, fsl_s


def _drift_fix(rec_hz: float | None, rec_s: float | None) -> str:
    """The fix text of the drift findings (with the recommended high_pass when there is one)."""
    return (
        "Lower high_pass (longer cutoff period) so the drift cosines stay below the block "
        "frequency"
        + (f" (e.g. high_pass={rec_hz:.4g} Hz, cutoff {rec_s:.0f} s)" if rec_hz else "")
        + "; or shorten/interleave blocks so conditions alternate faster than the cutoff."
    )
