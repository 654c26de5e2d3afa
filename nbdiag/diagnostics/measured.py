"""Measured, not assumed: what the run's own signals say about each contrast.

fMRIPrep writes ``global_signal``, ``csf`` and ``white_matter`` for every
volume (mean signal inside each mask, scanner units). For each of these
series ``s`` this module computes, with no file access:

* ``steady_median`` — median of ``s`` over the volumes *not* flagged as
  non-steady-state, and ``percent_excess_nonsteady`` — each flagged volume's
  excess over its local steady level (:func:`local_excess`, the one definition;
  for ``global_signal`` the numbers of its transient listing, the conditions'
  response taken out), what the sensitivity library uses instead of the T1 model;
* ``residual_sd_percent`` — standard deviation of the residual of the scaled
  series (below) after an OLS fit of the design, on the steady-state rows only
  (``sqrt(RSS / (n_steady - rank))``; flagged volumes would otherwise inflate it),
  with the signal's own columns (``<signal>``, ``<signal>_derivative1``, …)
  left out of the design;
* per contrast: what nilearn's ``FirstLevelModel`` (``signal_scaling=0``)
  would estimate for a voxel with that time course. The series is scaled
  exactly as nilearn's ``mean_scaling`` does (``y = 100 (s / max(mean(s), 1) -
  1)``, the mean over the design rows), then

  - ``estimate_ols = wᵀy`` with ``w = pinv(X)ᵀc``,
  - ``by_class`` — ``Σ_{k in class} w_k (y_k − r)`` per scan class of
    :mod:`nbdiag.diagnostics.baseline` (``nonsteady``, ``unmodeled_event``,
    ``short_gap``, ``fixation``, ``run_edge``, ``condition:<name>``) plus the
    classes measured here (``transient``: unflagged volumes that stand out,
    :func:`detect_transients`; ``high_motion``: volumes scrubbing would censor,
    still in the model). ``r`` is the signal's *steady baseline level*
    (:func:`reference_rows`): the median of ``y − f`` (``f`` the conditions' fitted
    response, below; ``y`` itself without task columns) over the implicit-baseline
    (``fixation``) scans, i.e. scans whose task regressors are ~0, that are
    neither flagged non-steady, nor detected transients, nor high-motion; when
    fewer than ``MIN_REFERENCE_SCANS`` such scans exist, over every scan that is
    none of those (``reference.definition`` says which). Each part is then the
    signal's deviation from its steady level in that class, weighted as the
    contrast weighs it, and does not move when a constant is added to the
    signal. The parts sum to ``estimate_ols`` because ``Σ w_k = 0`` whenever the
    model has a constant the contrast does not weight; otherwise the remainder
    ``r Σ w_k`` is its own part, ``reference`` (and ``reference.remainder``
    says so),
  - a *cause* part is the deviation beyond the steady level **and** beyond the
    conditions' fitted response: ``Σ_{k∈class} w_k (y_k − r − f_k)``, ``f = X_T β̂_T``
    the OLS fit of the task columns (``task_columns``), so that a block's HRF
    tail reaching a gap is not read as a gap effect; what the conditions' response
    contributes in the cause scans, ``Σ_{k∈causes} w_k f_k``, is its own term part,
    ``condition_spillover``. The parts still sum to the estimate and are still
    invariant to a constant (``f`` does not depend on one),
  - ``by_class_se`` / ``by_class_t`` — standard error of each part from the
    signal's residual noise (``residual_sd_percent`` = σ) with its lag-1
    autocorrelation ρ (of the OLS residual on steady rows, clipped to [0, 0.95]):
    ``σ sqrt(vᵀ R v + (Σ_{class} w_k)² π (1 + ρ) / (2 n_ref (1 − ρ)))`` with
    ``v = w`` on the class's rows, ``R_jk = ρ^|j−k|`` (AR(1)); the second term is
    the uncertainty of ``r``, a median of ``n_ref`` scans; for cause classes of
    ``global_signal``, when larger, the
    *placebo* SE (:func:`_placebo_se`: the same weights applied to the signal
    circularly shifted by 39 lags, ``1.4826 × median |part|``), which holds for
    slow drift and random walks; and ``part / se``,
  - ``by_class_kind`` — ``cause`` (``CAUSE_CLASSES``: something in the design or
    the data that is not a condition: flagged or unflagged transients,
    unmodelled events, pre-block and short gaps, high-motion volumes, run-edge
    settling) or ``term`` (the model's own terms: the contrast's conditions,
    the implicit baseline, the ``reference`` remainder),
  - ``estimate``, ``se``, ``t`` — what nilearn's ``run_glm`` + ``compute_contrast``
    give for that one series under the run's ``noise_model`` (``"ar1"`` by default,
    as ``FirstLevelModel``). The steps are run_glm's own, with nilearn's Yule-Walker
    estimator and binning, but reuse the design's cached pseudo-inverse instead of
    refactoring it (``tests/test_measured.py`` checks equality with
    ``FirstLevelModel`` to 1e-8); ``by_class_estimate`` decomposes ``estimate`` the
    same way (the AR fit is linear in ``y`` once its coefficient is fixed:
    ``ĉ = cᵀ pinv(W X) W y``).

When the signal is itself a design column (e.g. ``global_signal`` in
``confounds_strategy``), ``wᵀy`` is zero by construction: the entry says
``in_model: true`` and its estimates are ``None`` rather than a misleading 0.
All values are in percent signal change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from nbdiag.core.compat import yule_walker
from nbdiag.core.labels import CAUSE_CLASSES, CLASS_ORDER, class_kind  # noqa: F401 - one definition; re-exported
from nbdiag.core.thresholds import DISTINCT_T  # noqa: F401 - one definition; re-exported for the diagnostics
from nbdiag.diagnostics._linalg import DesignAlgebra

#: fMRIPrep confound columns measured by default (in this order).
MEASURED_SIGNALS = ("global_signal", "csf", "white_matter")

# The scan-class order used in ``by_class`` (conditions follow, sorted) and the classes that are causes
# (not the model's own terms: conditions, implicit baseline, ``reference``): nbdiag.core.labels.

#: Name of the remainder part ``r Σ w`` (a model without a constant).
REFERENCE_PART = "reference"

#: Name of the term part holding the conditions' fitted response in the cause scans (HRF tails).
SPILL_PART = "condition_spillover"


#: Fewest implicit-baseline scans for the steady level ``r``; below it every steady scan is used.
MIN_REFERENCE_SCANS = 5

#: A volume is a transient when it departs from its local steady level by more than this many robust
#: standard deviations of the steady volumes' departures from their running level (:func:`_departure_noise`).
TRANSIENT_K = 5.0

#: Volumes on each side whose median is a volume's local steady level (transient detection).
LOCAL_WINDOW = 8

_NOISE = re.compile(r"^(ols|ar[1-9]\d*)$")


def check_noise_model(noise_model: str) -> str:
    """Validate a nilearn ``noise_model`` (``"ols"`` or ``"arN"``, e.g. ``"ar1"``).

    Raises
    ------
    ValueError
        Naming the parameter, the allowed values and what was given.
    """
    if not isinstance(noise_model, str) or not _NOISE.match(noise_model):
        raise ValueError(f"noise_model must be 'ols' or 'arN' (e.g. 'ar1'); got {noise_model!r}")
    return noise_model


def nilearn_scale(series: np.ndarray) -> np.ndarray:
    """Percent signal change as nilearn's ``mean_scaling`` (``signal_scaling=0``) computes it."""
    s = np.asarray(series, dtype=float)
    mean = max(float(s.mean()), 1.0) if s.size else 1.0
    return 100.0 * (s / mean - 1.0)


def class_order(scan_classes: Sequence[str]) -> list[str]:
    """Classes present in ``scan_classes``, fixed ones first, then conditions (sorted)."""
    present = set(scan_classes)
    fixed = [c for c in CLASS_ORDER if c in present]
    return fixed + sorted(present - set(fixed))


def own_columns(signal: str, columns: Sequence[str]) -> list[str]:
    """Design columns that are the signal itself or its fMRIPrep expansions."""
    pat = re.compile(rf"^{re.escape(signal)}(_derivative1)?(_power2)?$")
    return [c for c in columns if pat.match(str(c))]


@dataclass(frozen=True)
class Transients:
    """Volumes whose measured signal departs from its steady level (:func:`detect_transients`)."""

    signal: str
    level: float
    noise_percent: float
    threshold_percent: float
    volumes: tuple[dict[str, Any], ...] = ()
    #: each listed volume's local steady level (scanner units; :func:`local_levels`), not recorded
    levels: tuple[float, ...] = ()

    def of_mean(self, mean: float) -> dict[int, float]:
        """volume -> its excess in % of ``mean`` (nilearn's scaling: ``excess × L_v / mean``), the unit a
        bias ``wᵀm`` is read in."""
        return {int(v["volume"]): float(v["excess_percent"]) * lev / mean
                for v, lev in zip(self.volumes, self.levels) if mean}

    def unflagged(self) -> list[int]:
        """Volumes that stand out and that fMRIPrep flagged neither as non-steady nor as motion outliers."""
        return [int(v["volume"]) for v in self.volumes if not v["flagged_by"]]

    def to_dict(self) -> dict[str, Any]:
        return {"signal": self.signal, "noise_percent": self.noise_percent,
                "threshold_percent": self.threshold_percent, "k": TRANSIENT_K,
                "volumes": [dict(v) for v in self.volumes]}


_TRANSIENT_MEMO: dict[tuple, Transients | None] = {}


def detect_transients(name: str, series: np.ndarray, nonsteady: Sequence[int] = (),
                      motion_flagged: Sequence[int] = (), k: float = TRANSIENT_K,
                      task: np.ndarray | None = None) -> Transients | None:
    """Memoised :func:`_detect_transients` (the audit and the signal library ask for the same series;
    keyed by the series' bytes, so a changed series is never served a stale answer)."""
    arr = np.ascontiguousarray(series, dtype=float)
    tk = None if task is None else np.ascontiguousarray(task, dtype=float)
    key = (name, arr.tobytes(), tuple(sorted(int(v) for v in nonsteady)),
           tuple(sorted(int(v) for v in motion_flagged)), float(k), None if tk is None else (tk.shape, tk.tobytes()))
    if key not in _TRANSIENT_MEMO:
        if len(_TRANSIENT_MEMO) >= 8:
            _TRANSIENT_MEMO.clear()
        _TRANSIENT_MEMO[key] = _detect_transients(name, arr, nonsteady, motion_flagged, k, tk)
    return _TRANSIENT_MEMO[key]


def task_columns_full(design: pd.DataFrame, task_columns: Sequence[str], rows: Sequence[int] | np.ndarray | None,
                      n_total: int) -> np.ndarray | None:
    """The conditions' design columns at every acquired volume (0 where a volume has no design row), for
    :func:`detect_transients`; None when the design has no condition column."""
    wanted = set(map(str, task_columns))
    at = [j for j, c in enumerate(design.columns) if str(c) in wanted]
    if not at:
        return None
    r = np.arange(len(design)) if rows is None else np.asarray(rows, dtype=int)
    out = np.zeros((max(int(n_total), int(r.max()) + 1 if r.size else 0), len(at)))
    out[r] = design.to_numpy(dtype=float)[:, at]  # positional: no pandas column selection
    return out


def _without_task(dev: np.ndarray, task: np.ndarray, steady: np.ndarray, k: float) -> np.ndarray:
    """``dev`` minus the conditions' fitted response (OLS on the task columns + a constant over the steady
    volumes, refitted once without the volumes the first fit leaves far out), so a task response is never
    read as a transient."""
    T = np.column_stack([task, np.ones(dev.size)])
    ok = steady & np.isfinite(dev)
    for _ in range(2):
        if ok.sum() <= T.shape[1]:
            return dev
        b = np.linalg.lstsq(T[ok], dev[ok], rcond=None)[0]
        r = dev - T @ b
        rs = r[ok]
        sd = 1.4826 * float(np.median(np.abs(rs - np.median(rs))))
        if not sd > 0:
            break
        ok = ok & (np.abs(r - np.median(rs)) <= k * sd)
    return dev - task @ b[:-1]


def _detect_transients(name: str, series: np.ndarray, nonsteady: Sequence[int] = (),
                       motion_flagged: Sequence[int] = (), k: float = TRANSIENT_K,
                       task: np.ndarray | None = None) -> Transients | None:
    """Volumes whose signal departs from the steady level by more than the signal's own noise allows.

    ``dev = 100 (s / median_steady - 1)`` (percent of the median over the volumes not
    flagged non-steady); the noise is the robust SD of the same volumes' departures from their
    running level (:func:`_departure_noise`: ``1.4826 MAD(dev − running median)``, the running
    median over ``2 LOCAL_WINDOW + 1`` volumes), the spread of the very statistic a volume is judged
    by, so autocorrelated noise does not make ordinary volumes stand out (the spread of first
    differences understates it by ``sqrt(1 − ρ)``); a volume stands out when it departs from its local
    steady level (the median of the steady volumes within ``LOCAL_WINDOW`` = 8 volumes on
    each side, itself left out) by more than ``k × noise``. Slow drift and random walks
    move neither the noise nor the local level much, so they are not read as transients. Every flagged non-steady
    volume is listed too, with its measured excess and whether it stands out (so a
    flagged volume that is only ~1 % brighter is seen as such). ``position`` is
    ``run_start`` for the volumes before the first one that does not stand out (the run's
    first volumes), ``spike`` for the others; ``flagged_by`` names the fMRIPrep columns
    that flagged the volume (``non_steady_state_outlier``, ``motion_outlier``) or is empty.
    None when the signal has no finite steady value or no spread (no noise to compare with).
    """
    s = np.asarray(series, dtype=float)
    ns = set(int(v) for v in nonsteady if 0 <= int(v) < s.size)
    mo = set(int(v) for v in motion_flagged if 0 <= int(v) < s.size)
    steady = np.ones(s.size, dtype=bool)
    steady[sorted(ns)] = False
    steady &= np.isfinite(s)
    if not steady.any():
        return None
    med = float(np.median(s[steady]))
    if med == 0:
        return None
    dev = 100.0 * (s / med - 1.0)
    if task is not None and task.shape[0] == s.size and task.shape[1]:
        dev = _without_task(dev, task, steady, float(k))
    rough = _running_level(dev, steady)
    noise = _departure_noise(dev, steady, rough)
    if noise is None:
        return None
    thr = float(k) * noise
    stands, local_of = _standing_out(dev, steady, ns, thr, rough)
    lead = 0
    while lead < s.size and (stands[lead] or lead in ns):
        lead += 1
    _drop_smooth_excursions(dev, stands, ns, lead, thr)
    vols = []
    listed = np.flatnonzero(stands | np.isin(np.arange(s.size), sorted(ns))).tolist()
    # the excess over the local steady level (slow drift around the volume is not part of it), of the series the
    # volumes are detected on (the conditions' response taken out), over the neighbours that do not stand out
    x_series = med * (1.0 + dev / 100.0)
    levels = local_levels(x_series, listed, steady & ~stands)
    excess = local_excess(x_series, listed, steady & ~stands, levels)
    for v, x in zip(listed, excess.tolist()):
        flagged_by = [c for c, on in (("non_steady_state_outlier", v in ns), ("motion_outlier", v in mo)) if on]
        vols.append({"volume": int(v), "excess_percent": float(x), "stands_out": bool(stands[v]),
                     "position": "run_start" if v < lead else "spike", "flagged_by": flagged_by})
    return Transients(name, med, noise, thr, tuple(vols), tuple(float(v) for v in levels))


def _running_level(dev: np.ndarray, steady: np.ndarray) -> np.ndarray:
    """Running median of ``dev`` over ``2 LOCAL_WINDOW + 1`` volumes (the volume itself included; volumes
    that are not steady read as the steady median, and so does the outside of the run)."""
    from scipy.ndimage import median_filter  # scipy.ndimage loads only when a signal is measured

    level = float(np.median(dev[steady]))
    return median_filter(np.where(steady, dev, level), size=2 * LOCAL_WINDOW + 1, mode="constant", cval=level)


def _departure_noise(dev: np.ndarray, steady: np.ndarray, rough: np.ndarray) -> float | None:
    """Robust SD of the steady volumes' departures from their running level (``1.4826 MAD(dev − rough)``):
    the spread of the very statistic a transient is judged by, whatever the noise's autocorrelation
    (scan-to-scan differences understate it by ``sqrt(1 − ρ)`` for AR(1) noise) and however the level
    wanders (the running median follows slow drift). None with fewer than 3 steady volumes or no spread."""
    r = (dev - rough)[steady & np.isfinite(dev)]
    if r.size < 3:
        return None
    noise = 1.4826 * float(np.median(np.abs(r - np.median(r))))
    if not np.isfinite(noise) or noise <= 0:
        return None
    return noise


def _standing_out(dev: np.ndarray, steady: np.ndarray, ns: set[int], thr: float,
                  rough: np.ndarray | None = None) -> tuple[np.ndarray, dict[int, float]]:
    """Which volumes depart from their local steady level by more than ``thr``, and each one's level.

    The local level is the median of the steady neighbours within ``LOCAL_WINDOW`` volumes on each
    side (the volume itself left out), so a slowly wandering level is not read as a transient. A
    running median screens the volumes first (the volume itself included; flagged volumes read as
    the steady median), then the exact rule is applied to the few the screen lets through and to
    the flagged ones. The level a standing-out volume departs from is then its neighbours that do
    not stand out themselves.
    """
    steady_dev = np.where(steady, dev, np.nan)
    if rough is None:
        rough = _running_level(dev, steady)
    cand = np.flatnonzero(np.isfinite(dev) & (np.abs(dev - rough) > 0.5 * thr))
    stands = np.zeros(dev.size, dtype=bool)
    vols = np.array(sorted(set(cand.tolist()) | ns), dtype=np.int64)
    if not vols.size:
        return stands, {}
    med, count = _neighbour_medians(steady_dev, vols, LOCAL_WINDOW)
    local = np.where(count > 0, med, 0.0)
    stands[vols] = np.abs(dev[vols] - local) > thr
    med, count = _neighbour_medians(np.where(stands, np.nan, steady_dev), vols, LOCAL_WINDOW)
    local_of = dict(zip(vols.tolist(), np.where(count > 0, med, local).tolist()))
    return stands, local_of


def _neighbour_medians(x: np.ndarray, vols: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Per volume ``v`` of ``vols``: ``np.median`` of the finite values of ``x`` within ``w`` volumes on
    each side (``v`` itself left out), and how many there are (the median is NaN where none).

    All volumes at once: the neighbours as rows, sorted with NaN last; the middle value, or the mean
    of the two middle values, of each row's finite part (``np.median``'s own rule, the same bits).
    """
    x = np.where(np.isfinite(x), x, np.nan)
    offsets = np.concatenate([np.arange(-w, 0), np.arange(1, w + 1)])
    at = vols[:, None] + offsets[None, :]
    inside = (at >= 0) & (at < x.size)
    rows = np.where(inside, x[np.clip(at, 0, x.size - 1)], np.nan)
    rows.sort(axis=1)
    count = np.isfinite(rows).sum(axis=1)
    lo, hi = np.maximum((count - 1) // 2, 0), np.maximum(count // 2, 0)
    r = np.arange(rows.shape[0])
    a, b = rows[r, lo], rows[r, np.minimum(hi, rows.shape[1] - 1)]
    with np.errstate(invalid="ignore"):
        med = np.where(count % 2 == 1, a, (a + b) / 2.0)
    return np.where(count > 0, med, np.nan), count


def _drop_smooth_excursions(dev: np.ndarray, stands: np.ndarray, ns: set[int], lead: int, thr: float) -> None:
    """After the run start, keep a spike only if it also departs by more than ``thr`` from the mean of
    its immediate neighbours that do not stand out themselves (a pair of spikes is two spikes).

    A volume whose two neighbours both stand out sits inside a smooth excursion: a hemodynamic
    response (e.g. to an unmodelled cue) rises and falls over several volumes and is not a
    transient. ``stands`` is updated in place.
    """
    first = stands.copy()
    for v in np.flatnonzero(first).tolist():
        if v < lead or v in ns:
            continue
        nbv = [dev[u] for u in (v - 1, v + 1) if 0 <= u < dev.size and np.isfinite(dev[u]) and not first[u]]
        if not nbv or abs(dev[v] - float(np.mean(nbv))) <= thr:
            stands[v] = False


@dataclass(frozen=True)
class SignalSummary:
    """Run-level summary of one measured signal (``measured.signals.<name>``)."""

    name: str
    steady_median: float
    nonsteady_volumes: tuple[int, ...]
    percent_excess_nonsteady: tuple[float, ...]
    residual_sd_percent: float | None
    in_model: bool
    reference: Mapping[str, Any] | None = None
    transients: Transients | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"steady_median": self.steady_median, "nonsteady_volumes": list(self.nonsteady_volumes),
                "percent_excess_nonsteady": list(self.percent_excess_nonsteady),
                "residual_sd_percent": self.residual_sd_percent, "in_model": self.in_model,
                "reference": None if self.reference is None else dict(self.reference),
                "transients": None if self.transients is None else self.transients.to_dict()}


@dataclass(frozen=True)
class ContrastMeasure:
    """One contrast's estimate for one measured signal (``contrasts.<c>.measured.<signal>``)."""

    signal: str
    noise_model: str
    in_model: bool = False
    estimate_ols: float | None = None
    estimate: float | None = None
    se: float | None = None
    t: float | None = None
    by_class: Mapping[str, float] | None = None
    by_class_estimate: Mapping[str, float] | None = None
    note: str | None = None
    by_class_se: Mapping[str, float | None] | None = None
    by_class_t: Mapping[str, float | None] | None = None
    by_class_kind: Mapping[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        def opt(m):
            return None if m is None else dict(m)
        return {"estimate_ols": self.estimate_ols, "estimate": self.estimate, "se": self.se, "t": self.t,
                "noise_model": self.noise_model, "in_model": self.in_model,
                "by_class": opt(self.by_class), "by_class_estimate": opt(self.by_class_estimate),
                "by_class_se": opt(self.by_class_se), "by_class_t": opt(self.by_class_t),
                "by_class_kind": opt(self.by_class_kind), "note": self.note}

    def causes(self) -> list[tuple[str, float, float | None, float | None]]:
        """``(class, part, se, t)`` of the cause parts distinguishable from zero (``|t| >= DISTINCT_T``, 3),
        largest ``|part|`` first."""
        out = []
        for k, v in (self.by_class or {}).items():
            t = (self.by_class_t or {}).get(k)
            if (self.by_class_kind or {}).get(k) == "cause" and t is not None and np.isfinite(t) \
                    and abs(t) >= DISTINCT_T:
                out.append((k, float(v), (self.by_class_se or {}).get(k), float(t)))
        return sorted(out, key=lambda x: (-abs(x[1]), x[0]))


@dataclass(frozen=True)
class MeasuredResult:
    """Everything measured from the confound signals of one run."""

    signals: Mapping[str, SignalSummary] = field(default_factory=dict)
    contrasts: Mapping[str, Mapping[str, ContrastMeasure]] = field(default_factory=dict)
    missing: tuple[str, ...] = ()
    #: signal -> design column -> (OLS coefficient of the column in the signal, its SE), % per unit
    loadings: Mapping[str, Mapping[str, tuple[float, float]]] = field(default_factory=dict)

    def signals_dict(self) -> dict[str, Any]:
        return {"signals": {k: v.to_dict() for k, v in self.signals.items()}, "missing": list(self.missing)}

    def contrast_dict(self, name: str) -> dict[str, Any]:
        return {k: v.to_dict() for k, v in (self.contrasts.get(name) or {}).items()}


def local_levels(series: np.ndarray, volumes: Sequence[int], steady: np.ndarray) -> np.ndarray:
    """Each volume's *local steady level*: the median of ``series`` over the ``steady`` volumes within
    ``LOCAL_WINDOW`` on each side (the volume itself left out); the median of every steady volume when none
    is that close (:func:`local_excess`)."""
    s = np.asarray(series, dtype=float)
    ok = np.asarray(steady, dtype=bool) & np.isfinite(s)
    whole = float(np.median(s[ok])) if ok.any() else float("nan")
    if not len(volumes) or not s.size:
        return np.full(len(volumes), whole)
    med, count = _neighbour_medians(np.where(ok, s, np.nan), np.asarray([int(v) for v in volumes], dtype=np.int64),
                                    LOCAL_WINDOW)
    return np.where(count > 0, med, whole)


def local_excess(series: np.ndarray, volumes: Sequence[int], steady: np.ndarray,
                 levels: np.ndarray | None = None) -> np.ndarray:
    """The one definition of a volume's measured excess (issue 20): ``100 (s[v] / L_v − 1)``, ``L_v`` the
    volume's local steady level (:func:`local_levels`, or ``levels`` when given). Used for flagged
    non-steady volumes (``percent_excess_nonsteady``, the ``nonsteady`` signal) and for transients
    (``excess_percent``) alike. NaN where the level is 0 or the value is not finite. (As a bias, nilearn's
    scaling reads it in % of the run's mean: ``excess × L_v / mean``, :func:`measured_nonsteady_excess`.)"""
    s = np.asarray(series, dtype=float)
    lev = local_levels(s, volumes, steady) if levels is None else np.asarray(levels, dtype=float)
    val = s[np.asarray(list(volumes), dtype=int)] if len(volumes) else np.zeros(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where((lev != 0) & np.isfinite(lev) & np.isfinite(val), 100.0 * (val / lev - 1.0), np.nan)
    return np.asarray(out, dtype=float)


def summarize_signal(name: str, series: np.ndarray, nonsteady: Sequence[int]) -> tuple[float, tuple[float, ...]]:
    """``steady_median`` (over the volumes not flagged non-steady) and the excess of each flagged volume over
    its local steady level (:func:`local_excess`)."""
    s = np.asarray(series, dtype=float)
    flagged = sorted(int(v) for v in nonsteady if 0 <= int(v) < s.size)
    steady = np.ones(s.size, dtype=bool)
    steady[flagged] = False
    vals = s[steady & np.isfinite(s)]
    if vals.size == 0:
        raise ValueError(f"signal {name!r}: no finite steady-state value")
    med = float(np.median(vals))
    return med, tuple(float(x) for x in local_excess(s, flagged, steady))


def design_rank(X: np.ndarray) -> int:
    """Rank of ``X`` as nilearn's regression models count it (``matrix_rank(X, |X|.sum() * eps)``),
    from the cached SVD."""
    X = np.asarray(X, dtype=float)
    s = DesignAlgebra.of(X).s if not isinstance(X, DesignAlgebra) else X.s
    tol = float(np.abs(X).sum()) * np.finfo(np.float64).eps
    return int(np.sum(s > tol))


def residual_sd(y: np.ndarray, X: np.ndarray, steady_rows: np.ndarray, pinv: np.ndarray | None = None,
                rank: int | None = None) -> float | None:
    """Residual SD of ``y`` after OLS on ``X``, fitted and measured on ``steady_rows`` only.

    Uses the full-data pseudo-inverse and the row-deletion identity
    ``e_R(-S) = e_R + H_RS (I - H_SS)⁻¹ e_S`` (``H = X pinv(X)``, ``S`` the removed rows),
    which equals refitting without those rows; falls back to a refit when
    ``I - H_SS`` is singular (removing the rows lowers the rank). ``pinv`` and ``rank``
    (:func:`design_rank`) of ``X`` when the caller already has them.
    """
    X = np.asarray(X, dtype=float)
    P = DesignAlgebra.of(X).pinv if pinv is None else pinv
    e = y - X @ (P @ y)
    removed = np.flatnonzero(~steady_rows)
    keep = np.flatnonzero(steady_rows)
    rank = design_rank(X) if rank is None else int(rank)
    if removed.size:
        M = np.eye(removed.size) - X[removed] @ P[:, removed]
        if np.linalg.cond(M) < 1e8:
            e_keep = e[keep] + (X[keep] @ P[:, removed]) @ np.linalg.solve(M, e[removed])
        else:  # the removed rows carry rank: refit on the kept rows
            Xs = X[keep]
            beta, *_ = np.linalg.lstsq(Xs, y[keep], rcond=None)
            e_keep = y[keep] - Xs @ beta
            rank = int(np.linalg.matrix_rank(Xs))
    else:
        e_keep = e
    dof = keep.size - rank
    if dof <= 0:
        return None
    return float(np.sqrt(float(e_keep @ e_keep) / dof))


def _whiten(A: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """nilearn ``ARModel.whiten``: ``A[t] - Σ_i rho_i A[t-1-i]`` (first rows kept)."""
    A = np.asarray(A, np.float64)
    out = A.copy()
    for i in range(rho.size):
        out[(i + 1):] = out[(i + 1):] - rho[i] * A[: -(i + 1)]
    return out


def _whiten_rows(V: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """:func:`_whiten` of every row of ``V`` (series as rows) at once: the same element-wise steps,
    and each row stays contiguous (so dot products with it are the ones of the single series)."""
    V = np.asarray(V, np.float64)
    if V.size == 0:
        return V
    out = V.copy()
    for i in range(rho.size):
        out[:, (i + 1):] = out[:, (i + 1):] - rho[i] * V[:, : -(i + 1)]
    return out


def _ar_coef(resid: np.ndarray, order: int, bins: int = 100) -> np.ndarray:
    """AR coefficients of one residual series exactly as nilearn's ``run_glm`` estimates them
    (``_yule_walker``; AR(1) binned to ``1 / bins``; one series is its own k-means centre)."""
    rho = np.asarray(yule_walker(resid[None, :], order), dtype=np.float64)[0]
    if order == 1:
        rho = (rho * bins).astype(int) * 1.0 / bins
    return rho


def _fit_noise_model(y: np.ndarray, X: np.ndarray, P: np.ndarray, rank: int, vectors: Mapping[str, np.ndarray],
                     noise_model: str, masks: Mapping[str, np.ndarray], ref: float = 0.0,
                     remainder: Mapping[str, bool] | None = None,
                     spill: np.ndarray | None = None) -> dict[str, tuple[float, float, float, dict]]:
    """Per contrast ``(estimate, se, t, by_class)`` of nilearn's ``run_glm`` + ``compute_contrast``
    on one series: the same steps (OLS residuals -> Yule-Walker AR coefficient, binned as
    ``run_glm`` bins it -> ``ARModel`` whitening, ``pinv`` of the whitened design, dispersion
    ``RSS / (n - n_columns)`` as nilearn's ``OLSModel.fit`` divides, even for a rank-deficient design, t = effect / sqrt(c cov c' dispersion)), reusing the cached
    pseudo-inverses. ``tests/test_measured.py`` checks them against ``FirstLevelModel``."""
    if noise_model == "ols":
        WX, WP, wy = X, P, y
        whiten = None
    else:
        resid = y - X @ (P @ y)
        rho = _ar_coef(resid, int(noise_model[2:]))
        WX = _whiten(X, rho)
        wy = _whiten(y, rho)
        whiten = rho
        if rank == X.shape[1]:
            # full column rank: pinv(WX) = R⁻¹Qᵀ (thin QR), the same numbers as the SVD route
            # to rounding, at a fraction of its cost
            Q, R = np.linalg.qr(WX)
            WP = None
        else:
            WP = DesignAlgebra.of(WX).pinv
    if WP is None:
        beta = np.linalg.solve(R, Q.T @ wy)
    else:
        beta = WP @ wy
    wres = wy - WX @ beta
    dof = X.shape[0] - X.shape[1]  # nilearn's OLSModel.fit: n - columns, not n - rank
    yr = y - ref
    f = np.zeros_like(y) if spill is None else spill
    cause_rows = np.zeros(y.shape, dtype=bool)
    for k, m in masks.items():
        if k in CAUSE_CLASSES:
            cause_rows |= m
    vals = {k: np.where(m, yr - f if k in CAUSE_CLASSES else yr, 0.0) for k, m in masks.items()}
    if spill is not None and cause_rows.any():
        vals[SPILL_PART] = np.where(cause_rows, f, 0.0)
    P_y = vals if whiten is None else dict(zip(vals, _whiten_rows(np.array(list(vals.values())), whiten)))
    ones = np.ones_like(y) if whiten is None else _whiten(np.ones_like(y), whiten)
    dispersion = float(wres @ wres) / dof if dof > 0 else float("nan")
    out = {}
    for name, vec in vectors.items():
        c = np.asarray(vec, float)
        row = c @ WP if WP is not None else Q @ np.linalg.solve(R.T, c)
        est = float(c @ beta)
        var = float(row @ row) * dispersion
        se = float(np.sqrt(var)) if var >= 0 else float("nan")
        t = est / max(se, np.finfo(float).tiny) if np.isfinite(se) else float("nan")
        parts = {k: float(row @ v) for k, v in P_y.items()}
        if (remainder or {}).get(name):
            parts[REFERENCE_PART] = float(ref * (row @ ones))
        out[name] = (est, se, float(t), parts)
    return out


def reference_rows(classes: np.ndarray) -> tuple[np.ndarray, str]:
    """Rows that define the steady level ``r``, and the definition used (module doc)."""
    ref = classes == "fixation"
    if int(ref.sum()) >= MIN_REFERENCE_SCANS:
        return ref, ("median over the implicit-baseline scans (task regressors ~0), excluding flagged "
                     "non-steady, transient and high-motion volumes")
    ref = ~np.isin(classes, ("nonsteady", "transient", "high_motion"))
    return ref, (f"median over every steady scan (fewer than {MIN_REFERENCE_SCANS} implicit-baseline scans): "
                 "all scans except flagged non-steady, transient and high-motion volumes")


def measure_signals(signals: Mapping[str, np.ndarray], design: pd.DataFrame,
                    vectors: Mapping[str, np.ndarray], scan_classes: Sequence[str],
                    rows: Sequence[int] | None = None, nonsteady_volumes: Sequence[int] = (),
                    noise_model: str = "ar1", algebra=None, scrub_volumes: Sequence[int] = (),
                    task_columns: Sequence[str] = (), settling_head: Sequence[int] = ()) -> MeasuredResult:
    """Measure every signal against every contrast (see the module doc).

    Parameters
    ----------
    signals : mapping name -> array
        Full-length series (one value per acquired volume), e.g. from the
        confounds file. Names not present are listed in ``missing``.
    design : DataFrame
        The design matrix (rows = modelled volumes).
    vectors : mapping contrast name -> vector
        Contrast vectors over the design columns.
    scan_classes : sequence of str
        One class per design row (:func:`nbdiag.diagnostics.baseline.classify_scans`).
    rows : sequence of int, optional
        Original volume index of each design row (default ``0..n-1``).
    nonsteady_volumes : sequence of int
        Volumes flagged by ``non_steady_state_outlier*`` (original indices).
    noise_model : str
        nilearn's ``noise_model`` for ``estimate`` (``"ar1"`` or ``"ols"``, ``"arN"``).
    algebra : DesignAlgebra, optional
        The design's factorisation, when the caller already has it.
    scrub_volumes : sequence of int
        Volumes scrubbing / ``motion_outlier*`` columns would censor (original indices); those
        still in the design are the ``high_motion`` class.
    task_columns : sequence of str
        The conditions' design columns: their fitted response is taken out of the cause parts
        (``condition_spillover``; none when empty).
    settling_head : sequence of int
        Run-start volumes that stand out but are the head of a slow settling (original indices; found by
        the audit): class ``run_edge``, not ``transient``, and still left out of the noise and of ``r``.

    Returns
    -------
    MeasuredResult

    Raises
    ------
    ValueError
        For a bad ``noise_model``, or lengths that do not match.
    """
    check_noise_model(noise_model)
    n = len(design)
    rows_arr = np.arange(n) if rows is None else np.asarray(rows, dtype=int)
    if rows_arr.size != n:
        raise ValueError(f"rows must have one entry per design row ({n}); got {rows_arr.size}")
    if len(scan_classes) != n:
        raise ValueError(f"scan_classes must have one entry per design row ({n}); got {len(scan_classes)}")
    run = _RunArrays.build(signals, design, vectors, scan_classes, rows_arr, nonsteady_volumes, scrub_volumes,
                           task_columns, algebra, settling_head)
    summaries: dict[str, SignalSummary] = {}
    per_contrast: dict[str, dict[str, ContrastMeasure]] = {name: {} for name in vectors}
    missing = []
    loadings: dict[str, dict[str, tuple[float, float]]] = {}
    for sig in MEASURED_SIGNALS:
        if sig not in signals or signals[sig] is None:
            missing.append(sig)
            continue
        full = np.asarray(signals[sig], dtype=float)
        if rows_arr.size and int(rows_arr.max()) >= full.size:
            raise ValueError(f"signal {sig!r} has {full.size} values; the design needs volume {int(rows_arr.max())}")
        summaries[sig], measures, sig_loadings = _measure_signal(sig, full, run, vectors, noise_model)
        for name, measure in measures.items():
            per_contrast[name][sig] = measure
        if sig_loadings is not None:
            loadings[sig] = sig_loadings
    return MeasuredResult(signals=summaries, contrasts=per_contrast, missing=tuple(missing), loadings=loadings)


@dataclass(frozen=True)
class _RunArrays:
    """What :func:`measure_signals` computes once per run and every signal reuses: the design, its rows
    and scan classes (with transients and high-motion volumes), the factorisation, the contrasts'
    weights and their sums per class."""

    X: np.ndarray
    cols: list[str]
    #: original volume index of each design row
    rows: np.ndarray
    task_idx: list[int]
    flagged: set[int]
    steady_rows: np.ndarray
    #: steady rows without a transient cause (flagged, unflagged, high-motion): where the noise is measured
    quiet_rows: np.ndarray
    classes: np.ndarray
    transients: Transients | None
    order: list[str]
    ref_rows: np.ndarray
    ref_def: str
    pinv: np.ndarray
    rank: int
    names: list[str]
    W: np.ndarray
    #: one column per class of ``order`` (float 0/1)
    M: np.ndarray
    sum_w: np.ndarray
    sum_w2: np.ndarray
    #: per contrast: whether its weights leave a remainder (Σ w ≠ 0)
    remainder: dict[str, bool]
    masks: dict[str, np.ndarray]
    #: rows whose own excess is what a part measures, not noise: flagged, transient and high-motion
    #: volumes, and a settling's head (left out of the noise, the placebo series, the loadings and ``r``)
    out_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    @classmethod
    def build(cls, signals: Mapping[str, np.ndarray], design: pd.DataFrame, vectors: Mapping[str, np.ndarray],
              scan_classes: Sequence[str], rows_arr: np.ndarray, nonsteady_volumes: Sequence[int],
              scrub_volumes: Sequence[int], task_columns: Sequence[str], algebra: Any,
              settling_head: Sequence[int] = ()) -> "_RunArrays":
        n = len(design)
        X = design.to_numpy(dtype=float)
        cols = [str(c) for c in design.columns]
        task_idx = [i for i, c in enumerate(cols) if c in set(map(str, task_columns))]
        flagged = set(int(v) for v in nonsteady_volumes)
        scrubbed = set(int(v) for v in scrub_volumes) - flagged
        steady_rows = np.array([int(r) not in flagged for r in rows_arr], dtype=bool)
        classes, transients = _classes_with_causes(signals, design, scan_classes, rows_arr, flagged, scrubbed,
                                                   task_columns, settling_head)
        # the noise is measured on the scans without a transient cause (flagged, unflagged, high-motion, a
        # settling's head): a spike left in the model is a cause to grade, not noise that would hide it
        out_rows = np.isin(classes, _EXCLUDED) | (np.isin(rows_arr, [int(v) for v in settling_head])
                                                  & (classes != "nonsteady"))
        quiet_rows = steady_rows & ~out_rows
        order = class_order(classes.tolist())
        masks = {k: classes == k for k in order}
        ref_rows, ref_def = reference_rows(classes)
        ref_rows = ref_rows & ~out_rows
        alg = DesignAlgebra.for_design(X, algebra)
        pinv = alg.pinv
        rank = int(np.sum(alg.s > float(np.abs(X).sum()) * np.finfo(np.float64).eps))
        names = list(vectors)
        # matrix products of recorded numbers use einsum (no BLAS threading: identical bytes whatever the thread count)
        W = np.column_stack([pinv.T @ np.asarray(vectors[k], float) for k in names]) if names else np.zeros((n, 0))
        # per contrast and class: Σ w and Σ w² (the parts' SE), and whether Σ w leaves a remainder
        M = np.column_stack([masks[k] for k in order]).astype(float) if order else np.zeros((n, 0))
        sum_w = np.einsum("nc,np->cp", M, W)
        sum_w2 = np.einsum("nc,np->cp", M, W ** 2)
        remainder = {name: bool(abs(float(W[:, j].sum())) > 1e-9 * max(float(np.abs(W[:, j]).sum()), 1e-300))
                     for j, name in enumerate(names)}
        return cls(X=X, cols=cols, rows=rows_arr, task_idx=task_idx, flagged=flagged, steady_rows=steady_rows,
                   quiet_rows=quiet_rows, classes=classes, transients=transients, order=order, ref_rows=ref_rows,
                   ref_def=ref_def, pinv=pinv, rank=rank, names=names, W=W, M=M, sum_w=sum_w, sum_w2=sum_w2,
                   remainder=remainder, masks=masks, out_rows=out_rows)


def _classes_with_causes(signals: Mapping[str, np.ndarray], design: pd.DataFrame, scan_classes: Sequence[str],
                         rows_arr: np.ndarray, flagged: set[int], scrubbed: set[int], task_columns: Sequence[str],
                         settling_head: Sequence[int] = ()) -> tuple[np.ndarray, Transients | None]:
    """The scan classes with the volumes scrubbing would censor as ``high_motion`` and the global signal's
    unflagged transients (detected here: the brain-wide average is what every voxel shares) as
    ``transient``; and those transients (None without a global signal). Transients that are a slow
    settling's head (``settling_head``, found by the audit: :func:`nbdiag.diagnostics.sensitivity.settling_head`)
    are ``run_edge`` instead: the settling is their cause, counted once."""
    classes = np.asarray(list(scan_classes), dtype=object)
    gs = signals.get("global_signal") if "global_signal" in signals else None
    transients = None
    if gs is not None:
        full_gs = np.asarray(gs, dtype=float)
        transients = detect_transients("global_signal", full_gs, sorted(flagged), sorted(scrubbed),
                                       task=task_columns_full(design, task_columns, rows_arr, full_gs.size))
    if scrubbed:
        classes = classes.copy()
        classes[np.isin(rows_arr, sorted(scrubbed)) & (classes != "nonsteady")] = "high_motion"
    if transients is not None and transients.unflagged():
        classes = classes.copy()
        head = set(int(v) for v in settling_head)
        classes[np.isin(rows_arr, [v for v in transients.unflagged() if v not in head])
                & (classes != "nonsteady")] = "transient"
        classes[np.isin(rows_arr, sorted(head & set(transients.unflagged()))) & (classes != "nonsteady")] = "run_edge"
    return classes, transients


def _measure_signal(sig: str, full: np.ndarray, run: _RunArrays, vectors: Mapping[str, np.ndarray],
                    noise_model: str) -> tuple[SignalSummary, dict[str, ContrastMeasure],
                                               dict[str, tuple[float, float]] | None]:
    """One signal: its summary, its measure on every contrast (a note when it is in the model or has
    missing values) and, for the global signal, the design columns' loadings in it."""
    X, cols = run.X, run.cols
    med, excess = summarize_signal(sig, full, sorted(run.flagged))
    if sig == "global_signal" and run.transients is not None:   # one number per volume (:func:`local_excess`)
        listed = {int(v["volume"]): float(v["excess_percent"]) for v in run.transients.volumes}
        excess = tuple(listed.get(v, x) for v, x in zip(sorted(run.flagged), excess))
    own = own_columns(sig, cols)
    y = nilearn_scale(full[run.rows])
    keep = [i for i, c in enumerate(cols) if c not in own]
    rsd = None
    ref = None
    spill = None
    if np.isfinite(y).all():
        rsd = (residual_sd(y, X, run.quiet_rows, run.pinv, run.rank) if not own
               else residual_sd(y, X[:, keep], run.steady_rows))
        if run.task_idx and not own:
            spill = X[:, run.task_idx] @ (run.pinv[run.task_idx] @ y)   # the conditions' fitted response at every row
        if run.ref_rows.any():
            ref = float(np.median((y if spill is None else y - spill)[run.ref_rows]))
    reference = None if ref is None else {
        "value": ref, "definition": run.ref_def, "n_scans": int(run.ref_rows.sum()),
        "remainder": sorted(k for k, on in run.remainder.items() if on)}
    summary = SignalSummary(sig, med, tuple(sorted(run.flagged)), excess, rsd, bool(own), reference,
                            run.transients if sig == "global_signal" else None)
    if own:
        note = (f"{sig} is in the model ({', '.join(own)}): its estimate is zero by construction, "
                "so it says nothing about the contrast")
        return summary, {name: ContrastMeasure(sig, noise_model, in_model=True, note=note) for name in vectors}, None
    if not np.isfinite(y).all() or ref is None:
        return summary, {name: ContrastMeasure(sig, noise_model, note=f"{sig} has missing values")
                         for name in vectors}, None
    fits = _fit_noise_model(y, X, run.pinv, run.rank, vectors, noise_model, run.masks, ref, run.remainder, spill)
    loadings = _loadings(y, float(rsd), run) if sig == "global_signal" and rsd is not None else None
    return summary, _class_measures(sig, y, ref, spill, rsd, fits, run, noise_model), loadings


def _loadings(y: np.ndarray, rsd: float, run: _RunArrays) -> dict[str, tuple[float, float]]:
    """``{column: (β, SE)}``: each design column's loading in the signal, from the scans without a transient
    cause (flagged, unflagged, high-motion: a bright volume is not read as the loading of a confound that
    happens to be large there)."""
    X, pinv, steady_rows = run.X, run.pinv, run.steady_rows
    out_rows = run.out_rows
    pl = pinv if not out_rows.any() else np.linalg.pinv(np.where(out_rows[:, None], 0.0, X))
    beta = pl @ np.where(out_rows, 0.0, y)
    rho_b = _lag1(y - X @ beta, steady_rows & ~out_rows)
    # two autocorrelated series: inflate the white-noise SE as for AR(1) noise
    se_b = rsd * np.sqrt((pl ** 2).sum(axis=1) * (1.0 + rho_b) / (1.0 - rho_b))
    # and the loading must hold scan to scan: two slowly wandering series (a random-walk head
    # position, a drifting global signal) correlate by chance; the SE is widened to the first-
    # difference fit's when that gives a smaller |t| (Frisch-Waugh: column j after the others is
    # pl[j] / ||pl[j]||², the signal after the others is the residual plus β_j times it)
    se_b = np.maximum(se_b, _difference_se(pl, beta, np.where(out_rows, 0.0, y - X @ beta),
                                           steady_rows & ~out_rows))
    return {c: (float(beta[i]), float(se_b[i])) for i, c in enumerate(run.cols)}


def _class_measures(sig: str, y: np.ndarray, ref: float, spill: np.ndarray | None, rsd: float | None,
                    fits: Mapping[str, Any], run: _RunArrays, noise_model: str) -> dict[str, ContrastMeasure]:
    """Every contrast's measure of the signal: the fitted estimate (``fits``) and its parts per scan class,
    with their SE (AR(1), widened by the placebo SE for the global signal's cause classes) and t."""
    X, M, W, order, names = run.X, run.M, run.W, run.order, run.names
    yr = y - ref
    # cause classes: the deviation beyond the steady level *and* beyond the conditions' fitted response
    # (an HRF tail reaching a gap is the condition's, not the gap's); terms: the deviation itself
    is_cause = np.array([k in CAUSE_CLASSES for k in order], dtype=bool)
    parts_all = np.einsum("nc,np->cp", M, W * yr[:, None]) if order else np.zeros((0, len(names)))
    spill_part = None
    if spill is not None and is_cause.any():
        cause_rows = M[:, is_cause].sum(axis=1) > 0
        sw = np.einsum("nc,np->cp", M, W * spill[:, None])
        parts_all = parts_all - np.where(is_cause[:, None], sw, 0.0)
        spill_part = (W * np.where(cause_rows, spill, 0.0)[:, None]).sum(axis=0)
    sigma = rsd if rsd is not None and np.isfinite(rsd) else float("nan")
    rho = _lag1(y - X @ (run.pinv @ y), run.quiet_rows)
    quad = _ar1_quadratic(M, W, rho) if order else run.sum_w2
    n_ref = max(int(run.ref_rows.sum()), 1)
    se_all = sigma * np.sqrt(quad + run.sum_w ** 2 * (np.pi / (2.0 * n_ref)) * (1.0 + rho) / (1.0 - rho))
    # the placebo SE: for the causes only (terms are never an answer) and for the global signal only (the
    # signal answers and severities read; csf / white_matter parts keep the AR(1) SE)
    if order and is_cause.any() and sig == "global_signal":
        u = yr - (spill if spill is not None else 0.0)
        se_all[is_cause] = np.maximum(se_all[is_cause],
                                      _placebo_se(u, M[:, is_cause], W, run.out_rows))
    out: dict[str, ContrastMeasure] = {}
    for j, name in enumerate(names):
        w = W[:, j]
        by_class = {k: float(parts_all[i, j]) for i, k in enumerate(order)}
        by_se = {k: _finite(se_all[i, j]) for i, k in enumerate(order)}
        if spill_part is not None:
            by_class[SPILL_PART] = float(spill_part[j])
            by_se[SPILL_PART] = None
        if run.remainder[name]:
            by_class[REFERENCE_PART] = float(ref * w.sum())
            by_se[REFERENCE_PART] = None
        by_t = {k: (_finite(by_class[k] / by_se[k]) if by_se.get(k) else None) for k in by_class}
        est, se, t, parts = fits[name]
        out[name] = ContrastMeasure(
            sig, noise_model, estimate_ols=float(w @ y), estimate=est, se=se, t=t,
            by_class=by_class, by_class_estimate=parts, by_class_se=by_se, by_class_t=by_t,
            by_class_kind={k: class_kind(k) for k in by_class})
    return out


def _difference_se(pl: np.ndarray, beta: np.ndarray, e: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Per design column, the SE that gives its coefficient the |t| of a fit on first differences.

    ``pl``: the design's pseudo-inverse (p × n); column j after the others is ``x̃ = pl[j] / ||pl[j]||²``
    and the signal after the others is ``e + β_j x̃``; both are differenced over consecutive ``rows``
    and ``|β_j| / |t_diff|`` is returned (0 where the difference fit is not defined).
    """
    pair = rows[1:] & rows[:-1]
    nrm = np.einsum("pn,pn->p", pl, pl)
    out = np.zeros(pl.shape[0])
    if pair.sum() < 3:
        return out
    for j in range(pl.shape[0]):
        if not nrm[j] > 0:
            continue
        xt = pl[j] / nrm[j]
        r = e + beta[j] * xt
        dz, de = (xt[1:] - xt[:-1])[pair], (r[1:] - r[:-1])[pair]
        ss = float(dz @ dz)
        if ss <= 0:
            continue
        b = float(dz @ de) / ss
        res = de - b * dz
        sd = float(np.sqrt(res @ res / (dz.size - 1)))
        t = b / (sd / np.sqrt(ss)) if sd > 0 else 0.0
        out[j] = abs(float(beta[j])) / abs(t) if t else np.inf
    return out


def _lag1(e: np.ndarray, rows: np.ndarray) -> float:
    """Lag-1 autocorrelation of the residual ``e`` over consecutive steady rows, clipped to [0, 0.95]
    (a negative value is taken as 0: the SE is never made smaller than the white-noise one)."""
    ok = rows[1:] & rows[:-1]
    a, b = e[1:][ok], e[:-1][ok]
    den = float(np.sqrt((a @ a) * (b @ b)))
    rho = float(a @ b) / den if den > 0 else 0.0
    return float(min(max(rho, 0.0), 0.95))


#: Classes left out of the placebo series (their own excess is what a part measures, not noise).
_EXCLUDED = ("nonsteady", "transient", "high_motion")

#: Number of circular shifts of the placebo null (lags spread over the middle 90 % of the run).
PLACEBO_SHIFTS = 39


def _placebo_se(u: np.ndarray, M: np.ndarray, W: np.ndarray, excluded: np.ndarray) -> np.ndarray:
    """Robust SE of every class × contrast part from the signal's own fluctuations.

    The parts ``Σ_k v_k u_k`` (``v = w`` on the class's rows) are recomputed with ``u``
    circularly shifted by ``PLACEBO_SHIFTS`` lags between 5 % and 95 % of the run (the rows of
    flagged, transient and high-motion volumes set to 0 first); the SE is ``1.4826 ×
    median |placebo part|``. Unlike the AR(1) formula this holds for slow drift and random
    walks, which put large, spurious parts in edge and gap classes.
    """
    n = u.size
    if n < 20:
        return np.zeros((M.shape[1], W.shape[1]))
    base = np.where(excluded, 0.0, u)
    lags = np.unique(np.linspace(0.05 * n, 0.95 * n, PLACEBO_SHIFTS).astype(int))
    idx = (np.arange(n)[None, :] - lags[:, None]) % n
    U = base[idx]                                        # shifts × rows
    V = (M[:, :, None] * W[:, None, :]).reshape(n, -1)   # rows × (classes · contrasts)
    placebo = np.einsum("kn,nc->kc", U, V)
    return (1.4826 * np.median(np.abs(placebo), axis=0)).reshape(M.shape[1], W.shape[1])


def _ar1_quadratic(M: np.ndarray, W: np.ndarray, rho: float) -> np.ndarray:
    """``vᵀ R v`` for every class × contrast, ``v = w · mask``, ``R_jk = ρ^|j−k|`` (AR(1) correlation),
    by one forward and one backward recursive filter (``R v = a + b − v``)."""
    V = M[:, :, None] * W[:, None, :]            # rows × classes × contrasts
    if rho <= 0.0:
        return (V ** 2).sum(axis=0)
    from scipy.signal import lfilter  # lazy: scipy.signal is slow to import; only a positive AR(1) needs it

    a = lfilter([1.0], [1.0, -rho], V, axis=0)
    b = lfilter([1.0], [1.0, -rho], V[::-1], axis=0)[::-1]
    return (V * (a + b - V)).sum(axis=0)


def _finite(v: float) -> float | None:
    v = float(v)
    return v if np.isfinite(v) else None


#: Noise level (percent signal per scan) assumed when none can be measured.
ASSUMED_NOISE_PERCENT = 1.0


@dataclass(frozen=True)
class NoiseLevel:
    """The noise σ (percent signal per scan) that turns a bias into contrast standard deviations.

    ``source`` is ``"measured:global_signal"`` or ``"assumed"``; ``reason`` says
    why an assumed value was used.
    """

    sd: float = ASSUMED_NOISE_PERCENT
    source: str = "assumed"
    reason: str = "nothing measured"

    def describe(self) -> str:
        """``σ = 0.23 % (measured: residual of global_signal)`` / ``σ = 1 % (assumed: …)``."""
        if self.source.startswith("measured:"):
            return f"σ = {self.sd:.3g} % (measured: residual of {self.source.split(':', 1)[1]} after the design)"
        return f"σ = {self.sd:.3g} % (assumed: {self.reason})"


def measured_nonsteady_excess(context, volumes: Sequence[int], signal: str = "global_signal",
                              task: np.ndarray | None = None, of_mean_over: Sequence[int] | None = None
                              ) -> np.ndarray | None:
    """Excess of ``volumes`` over their local steady level (:func:`local_excess`), or None if ``signal`` is not
    measured. For ``global_signal`` these are the numbers :func:`detect_transients` lists for the flagged
    volumes (``task``: the conditions' columns at every volume, as for the transients), so the label, the
    sensitivity size and the record quote one value. With ``of_mean_over`` (the design rows), the same
    excess in % of the signal's mean over those rows (``excess × L_v / mean``: nilearn's scaling, the unit
    of a bias)."""
    both = nonsteady_excess_both(context, volumes, signal, task, of_mean_over)
    return None if both is None else both[0] if of_mean_over is None else both[1]


def nonsteady_excess_both(context, volumes: Sequence[int], signal: str = "global_signal",
                          task: np.ndarray | None = None, of_mean_over: Sequence[int] | None = None
                          ) -> tuple[np.ndarray | None, np.ndarray | None] | None:
    """:func:`measured_nonsteady_excess` without and with ``of_mean_over`` from one pass (None when
    ``signal`` is not measured; either element None when its values are not all finite)."""
    series = (context.measured_signals or {}).get(signal)
    if series is None:
        return None
    s = np.asarray(series, dtype=float)
    if s.size <= max(volumes, default=-1) or not np.isfinite(s[list(volumes)]).all():
        return None
    flagged = sorted(int(v) for v in context.nonsteady_volumes if 0 <= int(v) < s.size)
    steady = ~np.isin(np.arange(s.size), flagged)
    if not (steady & np.isfinite(s)).any():  # no steady level to measure against (summarize_signal's refusal)
        return None
    levels = local_levels(s, flagged, steady)  # once: the excess and its level in % of the run mean
    by_volume = dict(zip(flagged, local_excess(s, flagged, steady, levels).tolist()))
    level = dict(zip(flagged, levels.tolist()))
    if signal == "global_signal":
        found = detect_transients(signal, s, context.nonsteady_volumes,
                                  () if context.sample_mask_applied else context.scrub_volumes, task=task)
        if found is not None:
            by_volume.update({int(v["volume"]): float(v["excess_percent"]) for v in found.volumes})
            level.update({int(v["volume"]): lev for v, lev in zip(found.volumes, found.levels)})
    arr = np.asarray([by_volume.get(int(v), np.nan) for v in volumes], dtype=float)
    in_mean = None
    if of_mean_over is not None:
        mean = max(float(s[np.asarray(of_mean_over, dtype=int)].mean()), 1.0)
        in_mean = arr * np.asarray([level.get(int(v), np.nan) for v in volumes], dtype=float) / mean
        in_mean = in_mean if np.isfinite(in_mean).all() else None
    return (arr if np.isfinite(arr).all() else None), in_mean


def noise_level(design: pd.DataFrame, context, signal: str = "global_signal",
                measured: "MeasuredResult | None" = None) -> NoiseLevel:
    """Residual SD of ``signal`` after the design (steady rows), or the assumed 1 % with the reason.

    ``measured`` (from :func:`measure_signals` on the same design) is reused when given.
    """
    if measured is not None and signal in measured.signals:
        sd = measured.signals[signal].residual_sd_percent
        if sd is not None and np.isfinite(sd) and sd > 0:
            return NoiseLevel(sd=float(sd), source=f"measured:{signal}", reason="")
    signals = context.measured_signals
    if signals is None:
        return NoiseLevel(reason="nothing measured from the run (--measure none or no confounds file)")
    series = signals.get(signal)
    if series is None:
        return NoiseLevel(reason=f"no {signal} column in the confounds file")
    s = np.asarray(series, dtype=float)
    n = len(design)
    rows = np.arange(n) if context.scan_index is None else np.asarray(context.scan_index, dtype=int)
    if rows.size != n or s.size <= int(rows.max(initial=0)):
        return NoiseLevel(reason=f"{signal} has {s.size} values, the design needs {int(rows.max(initial=0)) + 1}")
    y = nilearn_scale(s[rows])
    if not np.isfinite(y).all():
        return NoiseLevel(reason=f"{signal} has missing values")
    cols = [str(c) for c in design.columns]
    own = own_columns(signal, cols)
    keep = [i for i, c in enumerate(cols) if c not in own]
    flagged = set(int(v) for v in context.nonsteady_volumes)
    steady = np.array([int(r) not in flagged for r in rows], dtype=bool)
    sd = residual_sd(y, np.ascontiguousarray(design.to_numpy(dtype=float)[:, keep]), steady)
    if sd is None or not np.isfinite(sd) or sd <= 0:
        return NoiseLevel(reason=f"the residual of {signal} after the design has no degrees of freedom")
    return NoiseLevel(sd=float(sd), source=f"measured:{signal}", reason="")
