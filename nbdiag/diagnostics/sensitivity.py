"""How much would plausible unmodelled signals move each contrast?

For an unmodelled signal ``m`` (one value per design row), nilearn's OLS
contrast estimate moves by exactly ``bias = w @ m`` (``w`` from
``contrast_weights``). ``bias_sd = bias / (σ sqrt(c (X'X)^+ c'))`` expresses it in
contrast standard deviations, with ``σ`` the noise per scan in percent signal
that matches the scale of the signal's size (:func:`noise_for`): for a size
measured from ``global_signal``, the residual SD of ``global_signal`` after the
design (:func:`nbdiag.diagnostics.measured.noise_level`); for an assumed
(voxel-level) size, the assumed voxel noise of 1 %. Every entry records
``noise_sd_percent`` and ``sd_source``. Drift and
confound columns are part of ``X``, so ``w`` already projects them out.

Sizes: the non-steady-state excess is **measured** from ``global_signal``
(its excess over the local steady level, :func:`nbdiag.diagnostics.measured.local_excess`) when the column exists; every
other size below is **assumed**. Each entry's ``magnitude_source`` says which
(``"measured:global_signal"`` or ``"assumed"``) and the label gives the value.

The signal library, each at a plausible (deliberately modest) size given in its
label; only signals that exist for the run are built. Sizes below supersede
the per-source notes: non-steady-state from the T1 approach to steady state
(``nss_excess``), unmodelled events
0.5 % HRF response, short gaps 0.25 %, run-start settling 1 %, slow drift
0.25 %, HRF latency/dispersion 0.25 % x derivative, RT activity 0.5 %:

``nonsteady``
    Excess signal in the flagged non-steady-state volumes still in the
    design: measured from ``global_signal`` when present; otherwise (assumed)
    from the longitudinal magnetisation's approach to steady state
    (``nss_excess``): full magnetisation at the first volume, then
    ``Mz[k+1] = Mz[k] cos(a) E1 + (1 - E1)``, ``E1 = exp(-t_r / T1)``,
    grey-matter ``T1 = NSS_T1_S`` (1.4 s at 3 T) and the Ernst angle
    ``cos(a) = E1``; the excess of volume ``k`` is ``Mz[k] / Mss - 1`` (TR
    0.8 s: 56, 18, 6, 2 %; TR 2 s: 12, 2 %). fMRIPrep flags a volume only
    when it stands out, so this is the right order of size. Typical 1.
``unmodeled:<type>``
    HRF-convolved (nilearn ``compute_regressor``, the run's HRF) response of
    unit amplitude during each listed-but-unmodelled event type. Typical 1.
``pre_block``
    0.5 % HRF-convolved response during the pre-block seconds (``short_gap``
    epochs with ``position: "pre_block"``: unmodelled time right before a
    block onset, where a cue/instruction screen sits when it is missing from
    events.tsv). Typical 1.
``short_gaps``
    0.25 % HRF-convolved response during the transition gaps (``short_gap``
    epochs with ``position: "transition"``). Typical 0.5.
``scrub``
    2 % spikes at the volumes scrubbing would censor, when they stay in the
    design (scrubbing asked for, sample mask dropped). Typical 1.
``run_start``
    Slow settling at the run start: ``exp(-(t - t0) / RUN_START_TAU_S)`` with
    ``RUN_START_TAU_S = 20 s``, 1 % at the first acquired scan. Typical 1.
``slow_drift``
    1 % cosine at the first DCT frequency the drift model does *not*
    contain (for ``cosine``: the next cosine, just faster than the cut-off, so
    the high-pass does not remove it). Typical 0.5.
``hrf_derivative:<cond>`` / ``hrf_dispersion:<cond>``
    HRF shape mismatch: nilearn time / dispersion derivative regressors of
    each modelled condition (a unit response shifted by ~1 s / widened).
    Skipped when the design already models them. Typical 0.5.
``rt``
    RT-proportional activity (responded trials, ``duration`` = RT, unit
    amplitude) when there is no RT regressor in the design. Typical 0.5.
``rt:<cond>``
    With an RT-duration regressor in the design: RT-proportional activity in
    one condition only, which the shared regressor cannot fit. Typical 0.5.
``confound:<column>``
    A task-locked confound in the model (``confound_signals``): what
    regressing it out removes from a voxel that carries its non-task
    fluctuation. ``global_signal`` / ``csf`` / ``white_matter``: size measured
    from the column (``magnitude_source: "measured:<column>"``); motion 1 %
    per mm and others 0.5 % per sd, assumed. Typical 1.
``tr:<seconds>``
    A 1 % response to every condition acquired at another TR a source of the
    run states (``tr_signals``), fitted at the model's t_r. Typical 1.

``typical`` scales per-unit bias to a plausible size; ``score`` =
``|bias_sd| * typical`` ranks causes. Every entry also says where the sizes
come from: ``magnitude_source`` (the signal) and ``sd_source`` (σ: the noise
level: the residual of ``global_signal`` when measured, else 1 % per scan assumed).

Which sources can raise a warning (the structural-cause rule)
-------------------------------------------------------------
Every source's bias is recorded in ``contrasts.<name>.sensitivity``. A
``sensitive_unmodeled_signal`` finding reaches ``warn`` (``|bias_sd| >=
sensitivity_warn``) or ``fail`` (``>= sensitivity_fail``) only when the
source's *structural cause is present in the run* — something in this design
puts the signal where the contrast reads it:

* ``nonsteady`` — flagged non-steady-state volumes are left in the model;
* ``unmodeled:<type>`` — events listed in events.tsv are not modelled;
* ``pre_block`` / ``short_gaps`` — pre-block (cue-like) or transition gaps exist;
* ``scrub`` — scrubbed volumes are not masked;
* ``confound:<column>`` — a task-locked confound is in the model;
* ``tr:<seconds>`` — a source of the run states another TR;
* ``run_start`` — when the contrast's baseline weight is edge-concentrated
  (``edge_share >= edge_weight_warn``; share of its negative weight in the
  first/last ``edge_fraction`` of the rows), or when the run's global signal
  shows the settling: its fitted footprint (:func:`footprints`, time constant
  fitted) is distinguishable from zero and positive;
* ``rt:<cond>`` (RT-duration regressor in the model) — only for contrasts with
  zero weight on ``<cond>``: the shared RT regressor moves ``<cond>``'s
  RT-scaled activity into them. A contrast that includes ``<cond>`` is meant
  to measure that activity;
* families a cause of the run makes structural for the contrast
  (``extra_families``): ``slow_drift`` when the drift model overlaps it
  (``drift_overlap``), slow drift, HRF shape and settling for contrasts
  against the implicit baseline when no implicit baseline is left.

Both directions count: a bias that inflates a contrast misleads a reader as
much as one that lowers it, so warn/fail applies to ``|bias_sd|`` and the
message says "lowers" or "inflates".

Generic sources — ``slow_drift``, ``hrf_derivative:*``, ``hrf_dispersion:*``
and ``rt`` (RT-proportional activity with no RT regressor in the model) —
exist in every run and are no design-specific cause: they yield at most an
``info`` finding and stay in ``contrasts.<name>.sensitivity`` as numbers.
"""

from __future__ import annotations

import math
import re
from functools import cached_property, partial
from dataclasses import replace, dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from nbdiag.design.context import DesignContext
from nbdiag.diagnostics.baseline import (
    _rt_name,
    assess_baseline,
    n_scans_total,
    original_index,
)
from nbdiag.diagnostics._linalg import DesignAlgebra
from nbdiag.diagnostics.measured import (
    DISTINCT_T,
    TRANSIENT_K,
    NoiseLevel,
    detect_transients,
    task_columns_full,
    nonsteady_excess_both,
    nilearn_scale,
    PLACEBO_SHIFTS,
    _ar_coef,
    _whiten,
)
from nbdiag.core.findings import Finding
from nbdiag.design.hrf import compute_regressor_fast
from nbdiag.core.thresholds import Thresholds
from nbdiag.core import codes
from nbdiag.core.labels import SCAN_CLASS_TABLE

RUN_START_TAU_S = 20.0
#: Settling time constants (s) over which a measured global signal fits its own (:func:`footprints`): a
#: log-spaced grid from 4 s to 64 s (ratio sqrt 2), so the best-fitting shape is the least-squares time
#: constant to within ±19 %.
RUN_START_ALT_TAU_S = tuple(float(round(4.0 * 2.0 ** (k / 2.0), 2)) for k in range(9))
#: Cue lengths (s, ending at the block onset) whose fit a measured global signal may prefer to the whole
#: pre-block gap (:func:`footprints`).
CUE_LENGTHS_S = (2.0, 4.0, 6.0)

#: Grey-matter T1 (s) at 3 T used for the non-steady-state excess.
NSS_T1_S = 1.4


def nss_excess(t_r: float, n: int, t1: float = NSS_T1_S) -> np.ndarray:
    """Excess signal (%) of the first ``n`` volumes over steady state (Ernst-angle spoiled GRE)."""
    e1 = float(np.exp(-float(t_r) / t1))
    cos_a = e1
    mss = (1.0 - e1) / (1.0 - cos_a * e1)
    mz, out = 1.0, []
    for _ in range(int(n)):
        out.append(100.0 * (mz / mss - 1.0))
        mz = mz * cos_a * e1 + (1.0 - e1)
    return np.asarray(out)

#: finding code that owns each source family (the explanation engine's causes)
CAUSE_OF_SOURCE = {
    "nonsteady": codes.NONSTEADY_UNHANDLED.code,
    "transient": codes.TRANSIENT_UNFLAGGED.code,
    "unmodeled": codes.BASELINE_UNMODELED_EVENTS.code,
    "short_gaps": codes.BASELINE_SHORT_GAPS.code,
    "pre_block": codes.BASELINE_SHORT_GAPS.code,
    "scrub": codes.SCRUB_NOT_APPLIED.code,
    "run_start": codes.BASELINE_EDGE_CONCENTRATED.code,
    "slow_drift": codes.DRIFT_OVERLAP.code,
    "hrf_derivative": codes.SENSITIVE_UNMODELED_SIGNAL.code,
    "hrf_dispersion": codes.SENSITIVE_UNMODELED_SIGNAL.code,
    "rt": codes.RT_REGRESSOR_OVERLAP.code,
    "confound": codes.CONFOUND_TASK_CORRELATED.code,
    "tr": codes.TR_MISMATCH.code,
}


@dataclass(frozen=True)
class Signal:
    """One plausible unmodelled signal, sampled at the design rows."""

    source: str
    label: str
    unit: str
    values: np.ndarray
    typical: float = 1.0
    magnitude_source: str = "assumed"
    #: for ``confound:<column>`` with an assumed size: the design column, and the assumed loading per unit
    #: of the design column (``values`` = ``per_unit`` × the column's unit signal), so a loading measured
    #: in the global signal rescales the bias (:func:`assess_sensitivity`)
    column: str | None = None
    per_unit: float = 1.0
    #: other shapes of the same cause (label, values at the design rows) whose size a measured signal may
    #: fit better (:func:`footprints` keeps the best-fitting one): settling time constants, cue lengths
    alternatives: tuple[tuple[str, np.ndarray], ...] = ()

    @property
    def family(self) -> str:
        return self.source.split(":", 1)[0]

    @cached_property
    def max_abs(self) -> float:
        """Largest ``|value|`` (the scale below which a bias is a rounding zero)."""
        return float(np.abs(self.values).max(initial=0.0))


def _nss_reason(context: DesignContext) -> str:
    """Why the non-steady-state excess is the T1 model rather than measured."""
    if context.measured_signals is None:
        return "nothing measured from the run"
    if "global_signal" not in context.measured_signals:
        return "no global_signal column in the confounds file"
    return "global_signal unusable at the flagged volumes"


def _base_hrf(context: DesignContext) -> str:
    model = context.hrf_model if isinstance(context.hrf_model, str) else "glover"
    model = model.lower()
    if model.startswith("spm"):
        return "spm"
    return "glover"


def _full_times(design: pd.DataFrame, context: DesignContext) -> tuple[np.ndarray, np.ndarray]:
    n_tot = n_scans_total(design, context)
    return context.frame_times(n_tot), original_index(design, context)


def _convolved_arrays(onsets: np.ndarray, durations: np.ndarray, context: DesignContext, full: np.ndarray,
                      idx: np.ndarray, hrf: str | None = None, column: int = 0) -> np.ndarray:
    """Unit-amplitude HRF response to events (onsets, durations), at the design rows ``idx``."""
    cond = np.vstack([np.asarray(onsets, dtype=float), np.asarray(durations, dtype=float),
                      np.ones(len(onsets))])
    reg, _ = compute_regressor_fast(cond, hrf or _base_hrf(context), full)
    return reg[idx, column]


def _event_arrays(events: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """onset, duration (float) and trial_type (str; "dummy" when absent) columns as arrays, read once."""
    types = events["trial_type"].astype(str).to_numpy() if "trial_type" in events else ["dummy"] * len(events)
    return (events["onset"].to_numpy(float), events["duration"].to_numpy(float), np.asarray(types, dtype=object))


def transient_signal(context: DesignContext, idx_list: list[int], design: pd.DataFrame | None = None,
                     roles: Mapping[str, str] | None = None) -> Signal | None:
    """``transient``: the measured excess of the volumes that stand out in ``global_signal`` and that no
    fMRIPrep column flags (:func:`nbdiag.diagnostics.measured.detect_transients`), at the design rows
    that keep them; None when there are none (or nothing is measured)."""
    gs = (context.measured_signals or {}).get("global_signal")
    if gs is None:
        return None
    task = None if design is None else task_columns_full(
        design, [c for c in design.columns if (roles or {}).get(c) == "task"], idx_list, len(gs))
    found = detect_transients("global_signal", np.asarray(gs, dtype=float), context.nonsteady_volumes,
                              () if context.sample_mask_applied else context.scrub_volumes, task=task)
    if found is None:
        return None
    pos = {v: i for i, v in enumerate(idx_list)}
    vols = [v for v in found.volumes if not v["flagged_by"] and v["volume"] in pos]
    if not vols:
        return None
    m = np.zeros(len(idx_list))
    # the excess over the local level, in % of the run's mean (nilearn's scaling: the unit of a bias)
    in_mean = found.of_mean(max(float(np.asarray(gs, dtype=float)[idx_list].mean()), 1.0))
    for v in vols:
        m[pos[v["volume"]]] = in_mean[v["volume"]]
    first = vols[0]
    label = (f"the measured excess of the {len(vols)} unflagged volume(s) that stand out in global_signal "
             f"({first['excess_percent']:+.1f} % at volume {first['volume']}, {first['position'].replace('_', ' ')}; "
             f"more than {TRANSIENT_K:g} robust SD of the departures from the running level = {found.threshold_percent:.2g} % from the local steady level)")
    return Signal("transient", label, "% signal", m, typical=1.0, magnitude_source="measured:global_signal")


def without_volumes(signals: list[Signal], source: str, volumes: Sequence[int], context: DesignContext) -> list[Signal]:
    """``signals`` with ``source``'s values set to 0 at the design rows of ``volumes`` (acquired volume
    indices); the signal is dropped when nothing is left of it."""
    out = []
    for sg in signals:
        if sg.source == source:
            rows = np.arange(sg.values.size) if context.scan_index is None else np.asarray(context.scan_index, int)
            at = np.isin(rows, list(volumes))
            values = np.where(at, 0.0, sg.values)
            if not np.any(values):
                continue
            sg = replace(sg, values=values)
        out.append(sg)
    return out


def signal_library(design: pd.DataFrame, roles: dict[str, str], context: DesignContext,
                   scan_classes: tuple[str, ...] | None = None,
                   epochs: tuple[dict[str, Any], ...] | None = None,
                   min_confound_r2: float = 0.2) -> list[Signal]:
    """Build the plausible unmodelled signals that exist for this run (see module doc).

    The event tables are read into arrays once (onset, duration, trial type)
    and filtered with boolean masks per condition. The signals come in a fixed order (the helpers
    below, one family each): non-steady-state, transients, unmodelled events, gaps, scrubbing, run
    start, slow drift, HRF shape, response time, confounds, left-out confounds, repetition time.
    """
    n = len(design)
    full, idx = _full_times(design, context)
    idx_list = idx.tolist()
    idx_set = set(idx_list)
    out: list[Signal] = []
    nss = _nonsteady_signal(context, idx_list, idx_set, n, design, roles)
    if nss is not None:
        out.append(nss)
    tr_sig = transient_signal(context, idx_list, design, roles)
    if tr_sig is not None:
        out.append(tr_sig)
    out += _unmodeled_signals(context, full, idx)
    if epochs:
        out += _gap_signals(epochs, context, full, idx)
    out += _scrub_signals(context, idx_list, idx_set, n)
    out += _slow_signals(design, roles, context, full, idx)
    rt_name = _rt_name(design, roles, context)
    ev = context.events
    has_events = ev is not None and len(ev) > 0
    # the event table as arrays, once, for the HRF-shape signals and (without rt_events) the RT signals
    ev_arrays = _event_arrays(ev) if ev is not None and (has_events or (context.rt_events is None
                                                                       and rt_name is not None)) else None
    if has_events and ev_arrays is not None:
        out += _hrf_shape_signals(ev, ev_arrays, design, context, full, idx, rt_name)
    out += _rt_signals(context, ev_arrays, full, idx, rt_name)
    out.extend(confound_signals(design, roles, context, min_r2=min_confound_r2))
    out.extend(left_out_confound_signals(design, context))
    out.extend(tr_signals(design, roles, context))
    return out


def _nonsteady_signal(context: DesignContext, idx_list: list[int], idx_set: set[int], n: int,
                      design: pd.DataFrame, roles: Mapping[str, str]) -> Signal | None:
    """``nonsteady``: the flagged volumes' measured excess over their local steady level (global signal; the
    one definition, :func:`nbdiag.diagnostics.measured.local_excess`: the label quotes it, the values hold it
    in % of the run's mean, nilearn's scaling) or, unmeasured, the T1 excess; None when no flagged volume is
    in the design."""
    flagged = sorted(int(v) for v in context.nonsteady_volumes)
    present = [v for v in flagged if v in idx_set]
    if not present:
        return None
    k = len(flagged)
    m = np.zeros(n)
    pos = {v: i for i, v in enumerate(idx_list)}
    gs = (context.measured_signals or {}).get("global_signal")
    task = None if gs is None else task_columns_full(
        design, [c for c in design.columns if roles.get(c) == "task"], idx_list, len(gs))
    measured, in_mean = nonsteady_excess_both(context, flagged, task=task, of_mean_over=idx_list) or (None, None)
    if measured is not None and in_mean is not None:
        exc = dict(zip(flagged, in_mean.tolist()))
        label = (f"the measured excess of the {k} flagged volumes (global_signal: {float(measured[0]):.1f} % "
                 f"at volume {flagged[0]} over its local steady level)")
        source = "measured:global_signal"
    else:
        t1 = nss_excess(float(context.t_r), max(flagged) + 1)
        exc = {v: float(t1[v]) for v in flagged}
        label = (f"the T1 excess of the {k} flagged volumes ({exc[flagged[0]]:.0f} % at volume {flagged[0]}, "
                 f"steady state after that; assumed: {_nss_reason(context)})")
        source = "assumed"
    for v in flagged:
        if v in pos:
            m[pos[v]] = exc[v]
    return Signal("nonsteady", label, "% signal", m, typical=1.0, magnitude_source=source)


def _unmodeled_signals(context: DesignContext, full: np.ndarray, idx: np.ndarray) -> list[Signal]:
    """``unmodeled:<type>``: a 0.5 % HRF response to each unmodelled event type."""
    out: list[Signal] = []
    unmod = context.unmodeled_events
    if unmod is not None and len(unmod):
        u_on, u_du, u_tt = _event_arrays(unmod)
        for tt in sorted(set(u_tt.tolist())):
            sel = u_tt == tt
            m = 0.5 * _convolved_arrays(u_on[sel], u_du[sel], context, full, idx)
            if np.any(m):
                out.append(Signal(f"unmodeled:{tt}", f"a 0.5 % HRF response to each unmodelled {tt} event",
                                  "% signal", m, typical=1.0))
    return out


def _gap_signals(epochs: tuple[dict[str, Any], ...], context: DesignContext, full: np.ndarray,
                 idx: np.ndarray) -> list[Signal]:
    """``pre_block`` (a 0.5 % response in the unmodelled time before each block, with shorter cues as
    alternatives) and ``short_gaps`` (0.25 % in the other short gaps)."""
    out: list[Signal] = []

    def gap_signal(gaps, height, source, label, typical):
        if gaps:
            m = height * _convolved_arrays(np.array([g["start"] for g in gaps], dtype=float),
                                           np.array([g["duration"] for g in gaps], dtype=float),
                                           context, full, idx)
            if np.any(m):
                out.append(Signal(source, label, "% signal", m, typical=typical))

    pre = [e for e in epochs if e["kind"] == "short_gap" and e.get("position") == "pre_block"]
    gap_signal(pre, 0.5, "pre_block", f"a 0.5 % HRF response during the unmodelled time right before "
               f"each of the {len(pre)} blocks (where a cue would be)", 1.0)
    if pre and out and out[-1].source == "pre_block":
        # shorter cues ending at the block onset: the measured signal picks the length it holds
        alts = []
        for d in CUE_LENGTHS_S:
            ends = np.array([g["start"] + g["duration"] for g in pre], dtype=float)
            du = np.minimum(np.array([g["duration"] for g in pre], dtype=float), d)
            m = 0.5 * _convolved_arrays(ends - du, du, context, full, idx)
            if np.any(m):
                alts.append((f"a {d:g}-s cue before each block", m))
        out[-1] = replace(out[-1], alternatives=tuple(alts))
    gaps = [e for e in epochs if e["kind"] == "short_gap" and e.get("position") != "pre_block"]
    gap_signal(gaps, 0.25, "short_gaps", f"a 0.25 % HRF response during the {len(gaps)} short transition "
               f"gaps between events", 0.5)
    return out


def _scrub_signals(context: DesignContext, idx_list: list[int], idx_set: set[int], n: int) -> list[Signal]:
    """``scrub``: a 2 % spike at each volume scrubbing would censor that is still in the design."""
    scrub = [v for v in sorted(int(v) for v in context.scrub_volumes)
             if not context.sample_mask_applied and v in idx_set]
    if not scrub:
        return []
    m = np.zeros(n)
    pos = {v: i for i, v in enumerate(idx_list)}
    for v in scrub:
        m[pos[v]] = 2.0
    return [Signal("scrub", f"a 2 % spike at each of the {len(scrub)} volumes scrubbing would censor",
                   "% signal", m, typical=1.0)]


def _slow_signals(design: pd.DataFrame, roles: dict[str, str], context: DesignContext, full: np.ndarray,
                  idx: np.ndarray) -> list[Signal]:
    """``run_start`` (1 % settling, with other time constants as alternatives) and ``slow_drift`` (0.25 %
    just inside the drift model's pass band)."""
    n = len(design)
    t0 = full[idx[0]] if n else 0.0
    times = full[idx]
    out = [Signal("run_start", f"1 % signal settling at the run start (time constant {RUN_START_TAU_S:g} s)",
                  "% signal", np.exp(-(times - t0) / RUN_START_TAU_S), typical=1.0,
                  alternatives=tuple((f"settling with time constant {tau:.3g} s", np.exp(-(times - t0) / tau))
                                     for tau in RUN_START_ALT_TAU_S))]
    n_tot = full.size
    n_drift = sum(1 for c in design.columns if roles.get(c) == "drift")
    k = n_drift + 1 if (context.drift_model or "").lower() in ("cosine", "polynomial") else 1
    m = 0.25 * np.cos(np.pi * k * (np.arange(n_tot) + 0.5) / n_tot)[idx]
    period = 2.0 * n_tot * float(context.t_r) / k
    out.append(Signal("slow_drift", f"0.25 % drift with period {period:.0f} s, just inside the pass band of the drift model",
                      "% signal", m, typical=0.5))
    return out


def _hrf_shape_signals(ev: pd.DataFrame, ev_arrays: tuple[np.ndarray, np.ndarray, np.ndarray], design: pd.DataFrame,
                       context: DesignContext, full: np.ndarray, idx: np.ndarray, rt_name: str | None) -> list[Signal]:
    """``hrf_derivative:<c>`` / ``hrf_dispersion:<c>``: a 0.25 % response of each modelled condition 1 s
    earlier / with a wider HRF, unless the model has that derivative already."""
    out: list[Signal] = []
    e_on, e_du, e_tt = ev_arrays
    e_mod = ev["modulation"].to_numpy(float) if "modulation" in ev else None
    cols = set(design.columns)
    hrf3 = _base_hrf(context) + " + derivative + dispersion"
    for cond in sorted(set(e_tt.tolist())):
        if cond not in cols or cond == rt_name:
            continue
        sel = e_tt == cond
        full_cond = np.vstack([e_on[sel], e_du[sel], e_mod[sel] if e_mod is not None else np.ones(int(sel.sum()))])
        regs, _ = compute_regressor_fast(full_cond, hrf3, full)
        if f"{cond}_derivative" not in cols:
            out.append(Signal(f"hrf_derivative:{cond}", f"a 0.25 % {cond} response 1 s earlier than the canonical HRF",
                              "% signal", 0.25 * regs[idx, 1], typical=1.0))
        if f"{cond}_dispersion" not in cols:
            out.append(Signal(f"hrf_dispersion:{cond}", f"a 0.25 % {cond} response with a wider HRF (unit dispersion derivative)",
                              "% signal", 0.25 * regs[idx, 2], typical=1.0))
    return out


def _rt_signals(context: DesignContext, ev_arrays: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
                full: np.ndarray, idx: np.ndarray, rt_name: str | None) -> list[Signal]:
    """``rt`` / ``rt:<condition>``: 0.5 % RT-proportional activity (duration = response time), from
    ``context.rt_events`` or else from the RT condition's events in the event table."""
    rt_arrays = None  # (onsets, durations, trial types)
    if context.rt_events is not None:
        if len(context.rt_events):
            rt_arrays = _event_arrays(context.rt_events)
    elif ev_arrays is not None and rt_name is not None:
        e_on, e_du, e_tt = ev_arrays
        is_rt = e_tt == rt_name
        if is_rt.any():
            other_on, other_tt = e_on[~is_rt].tolist(), e_tt[~is_rt].tolist()
            lookup = {round(float(o), 6): str(t) for o, t in zip(other_on, other_tt)}
            rt_on = e_on[is_rt]
            rt_arrays = (rt_on, e_du[is_rt],
                         np.array([lookup.get(round(float(o), 6), rt_name) for o in rt_on.tolist()], dtype=object))
    if rt_arrays is None:
        return []
    r_on, r_du, r_tt = rt_arrays
    if rt_name is None:
        return [Signal("rt", "0.5 % RT-proportional activity (duration = response time)",
                       "% signal", 0.5 * _convolved_arrays(r_on, r_du, context, full, idx), typical=1.0)]
    out: list[Signal] = []
    for cond in sorted(set(r_tt.tolist())):
        if cond == rt_name:
            continue
        sel = r_tt == cond
        out.append(Signal(f"rt:{cond}", f"0.5 % RT-proportional activity in {cond} trials only",
                          "% signal", 0.5 * _convolved_arrays(r_on[sel], r_du[sel], context, full, idx),
                          typical=1.0))
    return out


#: Confounds measured in scanner units whose % change a voxel carries one-for-one (mean signals).
MEAN_SIGNALS = ("global_signal", "csf", "white_matter")
#: Expansion suffixes of an fMRIPrep confound (its "family" with the base column).
_EXPANSIONS = ("_derivative1", "_power2", "_derivative1_power2")
_MOTION = re.compile(r"^(trans|rot)_[xyz]$")
#: Assumed motion artefact: 1 % signal per mm; rotations at 50 mm (framewise displacement convention).
MOTION_PCT_PER_MM = 1.0
ROT_RADIUS_MM = 50.0
#: Assumed size for other confounds: 0.5 % signal per standard deviation of the column.
OTHER_PCT_PER_SD = 0.5
#: Confounds whose R² on the task columns + constant is below this carry no task-locked part worth a signal.
CONFOUND_TASK_R2_FLOOR = 0.05


def _resid_ss(Y: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """Residual sum of squares of every column of ``Y`` after least squares on ``Z`` (rank-safe basis)."""
    U, sv, _ = np.linalg.svd(Z, full_matrices=False)
    tol = sv.max(initial=0.0) * max(Z.shape) * np.finfo(float).eps
    U = U[:, sv > tol]
    R = Y - U @ (U.T @ Y)
    return (R ** 2).sum(axis=0)


def confound_signals(design: pd.DataFrame, roles: dict[str, str], context: DesignContext,
                     min_r2: float = 0.2) -> list[Signal]:
    """``confound:<column>``: what regressing out a task-correlated confound does to a voxel.

    A confound ``z`` in the model that follows the task (``z = t + e``, ``t``
    its task-locked part, ``e`` the rest) removes ``t`` from every voxel that
    carries ``e`` (the fluctuation it is meant to remove) with loading ``λ``:
    nilearn's estimate moves by ``-λ cᵀγ``, ``γ = pinv(X₋)z`` with ``X₋`` the
    design without ``z``'s family (``z`` and its ``_derivative1`` /
    ``_power2`` expansions). As a signal: ``m = λ (z - X₋γ)``, so that
    ``wᵀm = -λ cᵀγ`` on the audited design.

    Sizes: mean signals (``global_signal``, ``csf``, ``white_matter``) in %
    of their median over the non-flagged rows with ``λ = 1`` (an average
    voxel carries the global fluctuation one for one; size measured from the
    column); ``trans_*`` / ``rot_*`` at ``MOTION_PCT_PER_MM`` % per mm
    (rotations at ``ROT_RADIUS_MM``), assumed; any other confound at
    ``OTHER_PCT_PER_SD`` % per standard deviation, assumed.

    Which confounds: those with a task-locked part, measured as the partial
    R² of the column on the task regressors beyond drift + constant — at
    least ``CONFOUND_TASK_R2_FLOOR`` for mean signals (their task-locked part
    is the brain's own response), at least ``min_r2`` (``confound_r2_warn``)
    for the others (below it, chance correlation of slow motion or a step
    with the blocks would be read as task-locked; a real motion artefact that
    the voxel carries in full is removed correctly and biases nothing).
    """
    cols = list(design.columns)
    conf = [c for c in cols if roles.get(c) == "confound"]
    task = [c for c in cols if roles.get(c) == "task"]
    if not conf or not task:
        return []
    X = design.to_numpy(dtype=float)
    Cm, finite, ss, partial = _confound_task_r2(X, cols, roles, conf, task)
    ns = present_nonsteady_rows(design, context)
    out: list[Signal] = []
    for j, base in enumerate(conf):
        if base.endswith(_EXPANSIONS) and base.rsplit("_", 1)[0] in conf:
            continue
        if not finite[j] or ss[j] <= 0:
            continue
        r2 = float(partial[j])
        floor = CONFOUND_TASK_R2_FLOOR if base in MEAN_SIGNALS else float(min_r2)
        if r2 < floor:
            continue
        z = Cm[:, j]
        steady = z[~ns] if (~ns).any() else z
        family = {base} | {base + e for e in _EXPANSIONS if base + e in conf}
        Xm = X[:, [k for k, c in enumerate(cols) if c not in family]]
        zp, lam, source, size = _confound_size(base, z, steady, context)
        gamma = np.linalg.pinv(Xm) @ zp
        m = lam * (zp - Xm @ gamma)
        per_unit = lam if source != "assumed" or _MOTION.match(base) else lam / float(np.std(z))
        out.append(Signal(f"confound:{base}", f"regressing out {base} (task-locked: partial R² {r2:.2f} on the "
                          f"task regressors beyond drift) for {size}", "% signal", m, typical=1.0, magnitude_source=source,
                          column=base if source == "assumed" else None, per_unit=float(per_unit)))
    return out


def _confound_task_r2(X: np.ndarray, cols: list, roles: dict[str, str], conf: list, task: list
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(confound columns, finite?, sum of squares, partial R²)``: the confound columns (non-finite
    values as 0) and, per column, whether it was finite, its centred sum of squares and its partial R²
    on the task regressors beyond drift + constant (from two orthonormal bases)."""
    at = {c: j for j, c in enumerate(cols)}
    nuis = [c for c in cols if roles.get(c) in ("drift", "constant")]
    D = np.column_stack([X[:, [at[c] for c in nuis]], np.ones(X.shape[0])])
    T = np.column_stack([X[:, [at[c] for c in task]], D])
    Cm = X[:, [at[c] for c in conf]]
    finite = np.all(np.isfinite(Cm), axis=0)
    Cm = np.where(np.isfinite(Cm), Cm, 0.0)
    ss = ((Cm - Cm.mean(axis=0)) ** 2).sum(axis=0)
    r2_full = 1.0 - _resid_ss(Cm, T) / np.where(ss > 0, ss, 1.0)
    r2_slow = 1.0 - _resid_ss(Cm, D) / np.where(ss > 0, ss, 1.0)
    partial = np.where(r2_slow < 1.0 - 1e-12, (r2_full - r2_slow) / np.maximum(1.0 - r2_slow, 1e-12), 0.0)
    return Cm, finite, ss, partial


def _confound_size(base: str, z: np.ndarray, steady: np.ndarray, context: DesignContext
                   ) -> tuple[np.ndarray, float, str, str]:
    """``(column in % signal units, loading λ, magnitude source, size words)`` of a confound: mean signals
    in % of their median, one for one (measured); motion at ``MOTION_PCT_PER_MM``; others at
    ``OTHER_PCT_PER_SD`` per SD (both assumed)."""
    if base in MEAN_SIGNALS:
        med, where = _mean_signal_median(base, context, steady)
        if med is not None:
            zp = 100.0 * z / med          # the constant in the design absorbs any offset (demeaned columns)
            size = f"a voxel that carries {base} one for one (measured: {base} in % of its {where})"
        else:
            zp = z
            size = (f"a voxel that carries {base} one for one ({base} is centred and its raw median unknown: "
                    f"its values read as % signal)")
        return zp, 1.0, f"measured:{base}", size
    if _MOTION.match(base):
        lam = MOTION_PCT_PER_MM * (ROT_RADIUS_MM if base.startswith("rot") else 1.0)
        size = (f"a voxel carrying {MOTION_PCT_PER_MM:g} % signal per mm of {base} motion"
                + (f" (rotations at {ROT_RADIUS_MM:g} mm)" if base.startswith("rot") else ""))
        return z, lam, "assumed", size
    sd = float(np.std(z))
    return z / sd, OTHER_PCT_PER_SD, "assumed", \
        f"a voxel carrying {OTHER_PCT_PER_SD:g} % signal per standard deviation of {base}"


def _difference_t(z: np.ndarray, e: np.ndarray, pair: np.ndarray) -> float:
    """t of ``z``'s coefficient in ``e`` fitted on first differences (consecutive kept scans, ``pair``).

    Two slowly wandering series (a random-walk head position and a drifting global signal) correlate by
    chance however long the run ("spurious regression"); their differences do not. A footprint is a
    cause only when it also holds scan to scan: task-locked motion changes with the blocks, and the
    signal changes with it.
    """
    dz, de = (z[1:] - z[:-1])[pair], (e[1:] - e[:-1])[pair]
    ss = float(dz @ dz)
    if dz.size < 3 or ss <= 0:
        return 0.0
    b = float(dz @ de) / ss
    r = de - b * dz
    sd = float(np.sqrt(r @ r / (dz.size - 1)))
    return b / (sd / np.sqrt(ss)) if sd > 0 else 0.0


#: Least ``|t|`` of a left-out confound's level fit (and, on the whitened route, of its first-difference fit)
#: beside a first-difference or AR(1)-whitened fit at ``DISTINCT_T`` (:func:`left_out_confound_signals`).
FOOTPRINT_LEVEL_T = 2.0


def _whitened_t(X: np.ndarray, y: np.ndarray, z: np.ndarray, resid: np.ndarray) -> float:
    """t of ``z``'s coefficient beside the design ``X`` in ``y`` as nilearn's ``run_glm`` fits it with
    ``noise_model="ar1"``: ρ by Yule-Walker from ``resid`` (the OLS residual of ``y`` on ``[X, z]``),
    binned to 1/100; ``ARModel`` whitening of ``X``, ``z`` and ``y``; OLS on the whitened series
    (Frisch-Waugh: ``z`` and ``y`` after the whitened design's span), dispersion ``RSS / (n − n_columns)``."""
    rho = _ar_coef(resid, 1)
    WX = _whiten(X, rho)
    U, s, _ = np.linalg.svd(WX, full_matrices=False)
    U = U[:, s > s.max(initial=0.0) * max(WX.shape) * np.finfo(np.float64).eps]
    wz, wy = _whiten(z, rho), _whiten(y, rho)
    wz = wz - U @ (U.T @ wz)
    wy = wy - U @ (U.T @ wy)
    ss, dof = float(wz @ wz), y.size - X.shape[1] - 1
    if ss <= 1e-12 * max(float(z @ z), 1e-300) or dof <= 0:
        return 0.0
    b = float(wz @ wy) / ss
    r = wy - b * wz
    s2 = float(r @ r) / dof
    return b / np.sqrt(s2 / ss) if s2 > 0 else 0.0


def _placebo_t(zp: np.ndarray, e: np.ndarray) -> float:
    """``β / SE`` of ``zp``'s coefficient in ``e`` (both after the design) with the placebo SE of
    :func:`_placebo_beta_se` (``β`` refitted on ``e`` circularly shifted; 0 for runs under 20 rows). It
    holds for slow wandering (a random walk shifted still wanders), which the AR(1) SE does not."""
    ss = float(zp @ zp)
    se = _placebo_beta_se(zp, e, ss)
    return float(zp @ e) / ss / se if se > 0 else 0.0


def _footprint(t: float, t_diff: float, t_white: Callable[[], float], t_placebo: Callable[[], float]) -> bool:
    """The footprint rule of :func:`left_out_confound_signals`. The level fit (``t``) and the first-difference
    fit agree in sign at ``|t| >= FOOTPRINT_LEVEL_T``, and either the first-difference fit reaches
    ``DISTINCT_T`` or nilearn's AR(1)-whitened fit (``t_white()``) does with the placebo-shift t
    (``t_placebo()``) of the same sign at ``FOOTPRINT_LEVEL_T`` (called only when needed)."""
    if abs(t) < FOOTPRINT_LEVEL_T or abs(t_diff) < FOOTPRINT_LEVEL_T or t * t_diff <= 0:
        return False
    if abs(t_diff) >= DISTINCT_T:
        return True
    tw = t_white()
    if abs(tw) < DISTINCT_T or tw * t <= 0:
        return False
    tp = t_placebo()
    return abs(tp) >= FOOTPRINT_LEVEL_T and tp * t > 0


def left_out_confound_signals(design: pd.DataFrame, context: DesignContext) -> list[Signal]:
    """``confound_left_out:<column>``: the measured footprint of a motion column the model leaves out.

    For each of ``trans_*`` / ``rot_*`` in ``context.measured_signals`` (read from the confounds file)
    that is not a design column (nor its expansions): ``z`` at the design rows is added beside the
    design in the scaled global signal ``y`` (OLS): ``β = z⊥ᵀ e / z⊥ᵀ z⊥`` (``z⊥`` = ``z`` after the
    design, ``e`` the residual of ``y``), ``SE = σ / ||z⊥|| · sqrt((1 + ρ) / (1 − ρ))`` (σ, ρ: the
    residual's SD and lag-1 autocorrelation). A footprint gives a signal, ``m = β z``, when it holds scan to
    scan (:func:`_footprint`): the level fit and the fit on first differences (:func:`_difference_t`) agree
    in sign at ``|t| >= FOOTPRINT_LEVEL_T`` — a random-walk head position and a drifting signal correlate
    by chance in level, not in their differences — and either the first-difference fit is distinguishable
    from zero (``|t_diff| >= DISTINCT_T``) or nilearn's AR(1)-whitened fit of the column beside the design
    is (:func:`_whitened_t`: first differences are whitening with ρ = 1 and throw away the block-frequency
    changes that task-locked motion mostly carries; ρ estimated as ``run_glm`` does keeps them), with its
    placebo-shift t (:func:`_placebo_t`, which holds for slow wandering) of the same sign at
    ``FOOTPRINT_LEVEL_T``. The level fit gives the size. A contrast's estimate then carries ``wᵀm = β wᵀz`` of that
    motion (size measured: nilearn's change when the column is added to the model, by Frisch-Waugh).
    Motion that leaves no trace in the signal, however it correlates with the task, gives none: it is
    not a cause.
    """
    sig = context.measured_signals or {}
    gs = sig.get("global_signal")
    cols = {str(c) for c in design.columns}
    names = [c for c in ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")
             if c in sig and not any(k == c or k.startswith(c + "_") for k in cols)]
    if gs is None or not names:
        return []
    idx = original_index(design, context)
    gs = np.asarray(gs, dtype=float)
    if gs.size <= int(idx.max(initial=0)):
        return []
    y = nilearn_scale(gs[idx])
    Z = np.column_stack([np.asarray(sig[c], dtype=float)[idx] if np.asarray(sig[c]).size > int(idx.max(initial=0))
                         else np.full(idx.size, np.nan) for c in names])
    if not np.isfinite(y).all():
        return []
    alg = DesignAlgebra.of(design)
    X = np.asarray(design.to_numpy(dtype=float))
    P = alg.pinv
    e = y - X @ (P @ y)
    keep = ~present_nonsteady_rows(design, context)
    n_keep = int(keep.sum())
    rank = int(np.sum(alg.s > float(np.abs(X).sum()) * np.finfo(np.float64).eps))
    if n_keep - rank <= 2:
        return []
    ek = np.where(keep, e, 0.0)
    sd = float(np.sqrt(ek @ ek / (n_keep - rank)))
    pair = keep[1:] & keep[:-1]
    a, b = e[1:][pair], e[:-1][pair]
    den = float(np.sqrt((a @ a) * (b @ b)))
    rho = min(max(float(a @ b) / den if den > 0 else 0.0, 0.0), 0.95)
    out: list[Signal] = []
    for j, c in enumerate(names):
        z = Z[:, j]
        if not np.isfinite(z).all():
            continue
        zp = np.where(keep, z - X @ (P @ z), 0.0)
        ss = float(zp @ zp)
        if ss <= 1e-12 * max(float(z @ z), 1e-300) or sd <= 0:
            continue
        beta = float(zp @ ek) / ss
        se = sd / np.sqrt(ss) * np.sqrt((1.0 + rho) / (1.0 - rho))
        t = beta / se
        t_diff = _difference_t(zp, ek, pair)
        if not _footprint(t, t_diff, partial(_whitened_t, X[keep], y[keep], z[keep], (ek - beta * zp)[keep]),
                          partial(_placebo_t, zp, ek)):
            continue
        out.append(Signal(f"confound_left_out:{c}",
                          f"{c}, left out of the model, whose footprint the global signal carries ({beta:+.3g} % "
                          f"per unit of {c}, t = {t:.1f}, fitted beside the design)", "% signal", beta * z,
                          typical=1.0, magnitude_source="measured:global_signal"))
    return out


def _mean_signal_median(base: str, context: DesignContext, steady_column: np.ndarray) -> tuple[float | None, str]:
    """Steady-state median of a mean-signal confound in scanner units, and where it came from.

    First the raw series (``context.measured_signals``, when the measured
    diagnostics provide it, or ``context.confound_medians`` from the raw
    confounds file), then the design column itself when it is not centred
    (``|median| > 3 sd``); None when only a centred column is known.
    """
    raw = (getattr(context, "measured_signals", None) or {}).get(base)
    if raw is not None:
        raw = np.asarray(raw, dtype=float)
        flagged = set(int(v) for v in context.nonsteady_volumes)
        keep = np.array([i not in flagged for i in range(raw.size)]) & np.isfinite(raw)
        if keep.any():
            med = float(np.median(raw[keep]))
            if med != 0:
                return med, "steady-state median in the confounds file"
    given = dict(getattr(context, "confound_medians", ()) or ())
    if base in given and given[base]:
        return float(given[base]), "steady-state median in the confounds file"
    med = float(np.median(steady_column))
    if med != 0 and abs(med) > 3.0 * float(np.std(steady_column)):
        return med, "median"
    return None, ""


def present_nonsteady_rows(design: pd.DataFrame, context: DesignContext) -> np.ndarray:
    """Boolean per row: flagged non-steady-state volume."""
    flagged = set(int(v) for v in context.nonsteady_volumes)
    return np.array([i in flagged for i in original_index(design, context).tolist()], dtype=bool)


#: Size of the unit response used for the TR what-if (% signal in every modelled condition).
TR_UNIT_PCT = 1.0


def tr_signals(design: pd.DataFrame, roles: dict[str, str], context: DesignContext) -> list[Signal]:
    """``tr:<seconds>``: a unit response acquired at another source's TR, fitted at ``t_r``.

    For each other repetition time ``t'`` in ``context.other_t_r``: a
    ``TR_UNIT_PCT`` % response in every modelled condition (not the RT
    regressor), built on the frame times nilearn would use at ``t'``
    (``linspace(str t', (n-1+str) t', n)``), minus the same response built at
    ``t_r`` (the audited design's own columns). ``wᵀm`` is then the
    contrast's estimate for that response on the audited design minus what it
    should be: the what-if "the data were acquired at ``t'``". Values outside
    0.05-30 s are no acquisition TR and give no signal (the finding still names them).
    """
    if not context.other_t_r or context.events is None or not len(context.events):
        return []
    full_n = n_scans_total(design, context)
    idx = original_index(design, context)
    rt_name = _rt_name(design, roles, context)
    cols = set(design.columns)
    e_on, e_du, e_tt = _event_arrays(context.events)
    e_mod = context.events["modulation"].to_numpy(float) if "modulation" in context.events else np.ones(len(e_on))
    conds = [c for c in sorted(set(e_tt.tolist())) if c in cols and c != rt_name and roles.get(c) == "task"]
    if not conds:
        return []
    here = sum(design[c].to_numpy(dtype=float) for c in conds)
    out: list[Signal] = []
    seen: set[float] = set()
    for src, other in context.other_t_r:
        other = float(other)
        if not 0.05 <= other <= 30.0 or abs(other - float(context.t_r)) < 1e-6 or round(other, 6) in seen:
            continue
        seen.add(round(other, 6))
        ft = np.linspace(context.slice_time_ref * other, (full_n - 1 + context.slice_time_ref) * other, full_n)
        there = np.zeros(full_n)
        for c in conds:
            sel = e_tt == c
            cond = np.vstack([e_on[sel], e_du[sel], e_mod[sel]])
            reg, _ = compute_regressor_fast(cond, _base_hrf(context), ft)
            there += reg[:, 0]
        m = TR_UNIT_PCT * (there[idx] - here)
        out.append(Signal(f"tr:{other:g}", f"a {TR_UNIT_PCT:g} % response to every condition acquired at TR "
                          f"{other:g} s ({src}) but modelled at TR {float(context.t_r):g} s", "% signal", m,
                          typical=1.0))
    return out


@dataclass(frozen=True)
class SensitivityResult:
    """Bias of one contrast under each plausible signal."""

    contrast: str
    variance: float
    entries: tuple[dict[str, Any], ...]
    findings: tuple[Finding, ...] = field(default_factory=tuple)
    noise: NoiseLevel = field(default_factory=NoiseLevel)

    def to_dict(self) -> list[dict[str, Any]]:
        """``contrasts.<name>.sensitivity`` list (NaN -> None)."""
        return [{k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in e.items()}
                for e in self.entries]

    def max_abs_bias_sd(self) -> float:
        vals = [abs(e["bias_sd"]) for e in self.entries if e["bias_sd"] is not None and np.isfinite(e["bias_sd"])]
        return float(max(vals)) if vals else 0.0

    def entry(self, source: str) -> dict[str, Any] | None:
        for e in self.entries:
            if e["source"] == source:
                return e
        return None


#: Source families whose structural cause is present whenever the signal exists.
STRUCTURAL = ("nonsteady", "transient", "confound_left_out", "unmodeled", "pre_block", "short_gaps", "scrub", "confound", "tr")

def edge_share(weights: np.ndarray, edge_fraction: float) -> float:
    """Share of the negative weight in the first/last ``ceil(edge_fraction * n)`` rows."""
    w = np.asarray(weights, float).ravel()
    n = w.size
    k = int(np.ceil(edge_fraction * n)) if n else 0
    neg = np.where(w < 0, -w, 0.0)
    tot = float(neg.sum())
    if tot <= 0 or k == 0:
        return 0.0
    edge = np.zeros(n, dtype=bool)
    edge[:k] = True
    edge[-k:] = True
    return float(neg[edge].sum() / tot)


def is_structural(source: str, design: pd.DataFrame, vector: np.ndarray, weights: np.ndarray,
                  thresholds: Thresholds, extra_families: tuple[str, ...] = ()) -> bool:
    """Whether ``source``'s structural cause is present for this contrast (module doc).

    ``extra_families``: families a cause of this run makes structural for
    this contrast (e.g. ``slow_drift`` when the drift model overlaps it, the
    generic families when no implicit baseline is left).
    """
    fam = source.split(":", 1)[0]
    if fam in STRUCTURAL or fam in extra_families:
        return True
    if fam == "run_start":
        return edge_share(weights, thresholds.edge_fraction) >= thresholds.edge_weight_warn
    if fam == "rt" and ":" in source:
        cond = source.split(":", 1)[1]
        cols = list(design.columns)
        return cond in cols and abs(float(vector[cols.index(cond)])) == 0.0
    return False


def direction_word(bias: float) -> str:
    """``lowers`` / ``inflates`` (what a bias does to the estimate)."""
    return "lowers" if bias < 0 else "inflates"


#: Families whose assumed size is checked against a measured class part of the global signal.
MEASURED_CLASS = {"unmodeled": "unmodeled_event", "short_gaps": "short_gap", "pre_block": "short_gap",
                  "scrub": "high_motion", "run_start": "run_edge"}
#: Families whose assumed size is a pure guess about the data (a cue response in every short gap): as a
#: hypothesis they are ``info`` at most; only a measured part can make them a warning.
INFO_UNLESS_MEASURED = ("short_gaps", "pre_block")
#: Families that are what-ifs about a model error (the model is wrong whatever the data), not an assumed
#: data size: their severity is not capped.
MODEL_ERROR_FAMILIES = ("tr",)

_CLASS_WORDS = {c.key: c.adjective for c in SCAN_CLASS_TABLE}


@dataclass(frozen=True)
class MeasuredSizes:
    """What one run's global signal measured for one contrast (:func:`assess_sensitivity`).

    ``parts``: scan class -> (part in %, its t) (``contrasts.<c>.measured.global_signal.by_class``);
    ``sd``: σ of the contrast estimate (residual SD of the global signal × sqrt(c (X'X)⁺ c'));
    ``loadings``: design column -> (coefficient in the global signal, its SE), % per unit of the column.
    """

    parts: Mapping[str, tuple[float, float | None]]
    sd: float
    loadings: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    #: source -> (multiple of the assumed size the global signal holds, its SE) (:func:`footprints`)
    footprints: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    #: source -> label of the shape the global signal fits better than the assumed one (:func:`footprints`)
    shapes: Mapping[str, str] = field(default_factory=dict)
    #: sources whose fitted footprint is below zero (``run_start``: a start below the steady level, which is
    #: no settling from above and is not made a cause by its fit)
    below_zero: tuple[str, ...] = ()


#: Families whose assumed-size signal is fitted beside the design in the global signal (a footprint).
FOOTPRINT_FAMILIES = ("unmodeled", "short_gaps", "pre_block", "run_start", "slow_drift")


def footprints(design: np.ndarray, pinv: np.ndarray, y: np.ndarray, sd: float, signals: list[Signal],
               excluded: np.ndarray, shapes: dict[str, tuple[str, np.ndarray]] | None = None,
               residuals: dict[str, np.ndarray] | None = None) -> dict[str, tuple[float, float]]:
    """How much of each assumed-size signal the measured series ``y`` holds, fitted beside the design.

    For a signal ``m`` (at its assumed size) of ``FOOTPRINT_FAMILIES``: ``m⊥ = m − X pinv(X) m``,
    ``β = m⊥ᵀ e / m⊥ᵀ m⊥`` (``e`` the OLS residual of ``y``; the OLS coefficient of ``m`` added to
    the design), ``SE = sd / ||m⊥|| · sqrt((1 + ρ) / (1 − ρ))`` with ``ρ`` the residual's lag-1
    autocorrelation (clipped to [0, 0.95]). Rows of flagged, transient and high-motion volumes
    (``excluded``) are left out of both. ``β = 1`` means the data hold the signal at its assumed
    size; the measured bias on a contrast is then ``β × bias``.

    A signal with ``alternatives`` (other shapes of the same cause) is fitted in each shape and the shape
    with the largest ``|β / SE|`` is kept; when that is an alternative, ``shapes[source]`` receives its
    ``(label, values)`` and the returned ``(β, SE)`` are for that shape (the caller rescales per contrast).
    The shapes compete by least squares (the largest ``|β| ||m⊥||``); for ``run_start`` (settling, fitted over
    ``RUN_START_ALT_TAU_S``) the SE is at least the placebo SE (:func:`_placebo_beta_se`) and the SE that
    caps its t at ``SETTLING_DIFF_RATIO`` × its first-difference t (:func:`_settling_difference_se`), and
    ``residuals["run_start"]`` (when given) receives ``e − β m⊥`` of the winning shape (0 on excluded rows).
    """
    out: dict[str, tuple[float, float]] = {}
    sel = [sg for sg in signals if sg.family in FOOTPRINT_FAMILIES and sg.magnitude_source == "assumed"]
    if not sel or not np.isfinite(sd) or sd <= 0:
        return out
    X = np.asarray(design, dtype=float)
    keep = ~np.asarray(excluded, dtype=bool)
    if not keep.all():   # the design fitted without the excluded scans (a bright volume must not bend the fit)
        pinv = np.linalg.pinv(np.where(keep[:, None], X, 0.0))
        y = np.where(keep, y, 0.0)
    e = y - X @ (pinv @ y)
    pair = keep[1:] & keep[:-1]
    a, b = e[1:][pair], e[:-1][pair]
    den = float(np.sqrt((a @ a) * (b @ b)))
    rho = min(max(float(a @ b) / den if den > 0 else 0.0, 0.0), 0.95)
    infl = np.sqrt((1.0 + rho) / (1.0 - rho))
    cands = [(sg.source, None, sg.values) for sg in sel] + [(sg.source, lab, v) for sg in sel
                                                             for lab, v in sg.alternatives]
    Mm = np.column_stack([v for _, _, v in cands])
    Mp = Mm - np.einsum("np,pk->nk", X, np.einsum("pn,nk->pk", pinv, Mm))
    Mp[~keep] = 0.0
    ek = np.where(keep, e, 0.0)
    ss = (Mp ** 2).sum(axis=0)
    best_t: dict[str, float] = {}
    best_j: dict[str, int] = {}
    for j, (src, lab, v) in enumerate(cands):
        if ss[j] <= 1e-12 * max(float((Mm[:, j] ** 2).sum()), 1e-300):
            continue
        beta, se = float(Mp[:, j] @ ek / ss[j]), float(sd / np.sqrt(ss[j]) * infl)
        t = abs(beta / se) if se > 0 else 0.0      # the shapes compete by least squares (the AR(1) t)
        if src in best_t and t <= best_t[src]:
            continue
        best_t[src], best_j[src] = t, j
        out[src] = (beta, se)
        if shapes is not None:
            if lab is None:
                shapes.pop(src, None)
            else:
                shapes[src] = (lab, v)
    j = best_j.get("run_start")
    if j is not None:
        # the settling's SE from the residual of the model with it (the design's residual still holds the
        # settling, which would inflate σ and ρ), and at least its placebo SE (a slowly wandering signal)
        beta = out["run_start"][0]
        rest = ek - beta * Mp[:, j]
        a, b = rest[1:][pair], rest[:-1][pair]
        den = float(np.sqrt((a @ a) * (b @ b)))
        rho_r = min(max(float(a @ b) / den if den > 0 else 0.0, 0.0), 0.95)
        scale = float(np.sqrt((rest @ rest) / (ek @ ek))) if float(ek @ ek) > 0 else 1.0
        se = sd * scale / np.sqrt(ss[j]) * np.sqrt((1.0 + rho_r) / (1.0 - rho_r))
        se = max(float(se), _placebo_beta_se(Mp[:, j], rest, float(ss[j])),
                 _settling_difference_se(beta, Mp[:, j], ek, pair))
        out["run_start"] = (beta, se)
        if residuals is not None:
            residuals["run_start"] = rest
    return out


#: The settling's level fit may be at most this many times as strong as its scan-to-scan evidence
#: (:func:`_settling_difference_se`): ``|t| <= SETTLING_DIFF_RATIO × t_diff``.
SETTLING_DIFF_RATIO = 3.0


def _settling_difference_se(beta: float, m: np.ndarray, e: np.ndarray, pair: np.ndarray) -> float:
    """The SE that caps a settling footprint's ``|t|`` at ``SETTLING_DIFF_RATIO × t_diff``.

    ``t_diff`` is the t of the same shape ``m`` fitted to the residual ``e`` on first differences
    (consecutive kept rows ``pair``; SE with the differenced residual's lag-1 autocovariance, which a
    white noise makes −½ of its variance), in the direction of ``β``. A settling decays: the signal falls
    scan after scan where the shape falls, so a real one shows on differences as well (with less power,
    hence the ratio). A random-walk drift wanders away from the run start by chance and fits a slow decay in
    level — the "spurious regression" of two slow series — but its differences do not follow the
    shape. ``t_diff <= 0`` (or undefined) gives an SE of ``|β| / (SETTLING_DIFF_RATIO × 1e-3)``: no settling.
    """
    dz, de = (m[1:] - m[:-1])[pair], (e[1:] - e[:-1])[pair]
    ss = float(dz @ dz)
    if dz.size < 4 or ss <= 0 or beta == 0:
        return 0.0
    b = float(dz @ de) / ss
    r = de - b * dz
    s2 = float(r @ r) / (r.size - 1)
    g1 = float(r[1:] @ r[:-1]) / (r.size - 1)
    var = (s2 * ss + 2.0 * g1 * float(dz[1:] @ dz[:-1])) / ss ** 2
    t_d = b / np.sqrt(var) if var > 0 else 0.0
    t_d = float(t_d * np.sign(beta))
    return abs(beta) / (SETTLING_DIFF_RATIO * max(t_d, 1e-3))


#: Settling is slow: its fitted shape keeps at least 1/e of its start over this many volumes. Volumes at the
#: run start that a faster decay would explain are transients (non-steady-state), not settling.
SETTLING_MIN_VOLUMES = 3


def settling_head(design: np.ndarray, pinv: np.ndarray, y: np.ndarray, sd: float, run_start: Signal,
                  excluded: np.ndarray, head: np.ndarray, threshold: float
                  ) -> tuple[tuple[float, float], tuple[str, np.ndarray] | None] | None:
    """Whether the run-start volumes that stand out (``head``: unflagged transients at the run start, rows
    of ``excluded``) are the head of a slow settling rather than transients.

    The settling footprint (:func:`footprints`) is refitted with the head rows kept; the head is settling
    when every head row then departs from the fitted settling by at most ``threshold`` (the transient
    rule's ``k ×`` noise, % signal) and the fitted shape is slow (``SETTLING_MIN_VOLUMES``). Returns the
    refit's ``(β, SE)`` and its shape (``(label, values)``, None for the default time constant), or None
    when the head is not settling.
    """
    head = np.asarray(head, dtype=bool)
    if not head.any() or not np.isfinite(threshold):
        return None
    shapes: dict[str, tuple[str, np.ndarray]] = {}
    resid: dict[str, np.ndarray] = {}
    foot = footprints(design, pinv, y, sd, [run_start], np.asarray(excluded, bool) & ~head, shapes, resid)
    if "run_start" not in foot or foot["run_start"][0] <= 0:
        return None
    shape = shapes.get("run_start")
    v = run_start.values if shape is None else shape[1]
    k = SETTLING_MIN_VOLUMES
    slow = v.size > k and v[0] > 0 and v[k] >= v[0] * np.exp(-1.0)
    if not slow or np.any(np.abs(resid["run_start"][head]) > threshold):
        return None
    return foot["run_start"], shape


#: Circular shifts of the residual for the placebo SE of a settling footprint (:func:`_placebo_beta_se`).
FOOTPRINT_PLACEBO_SHIFTS = PLACEBO_SHIFTS  # the same lags as the measured parts' placebo SE


def _placebo_beta_se(m: np.ndarray, e: np.ndarray, ss: float) -> float:
    """Placebo SE of a footprint ``β = mᵀe / ss``: ``β`` refitted on ``e`` (the residual without the fitted
    footprint) circularly shifted by ``FOOTPRINT_PLACEBO_SHIFTS`` lags between 5 % and 95 % of the run,
    ``1.4826 × median |β_placebo|``; 0 for runs under 20 rows. A slowly wandering residual (random-walk
    drift) departs most at the run edges, where a settling shape sits: the AR(1) SE understates how often
    it fits a settling shape by chance; the shifted residuals keep its wandering."""
    n = e.size
    if n < 20 or not ss > 0:
        return 0.0
    lags = np.unique(np.linspace(0.05 * n, 0.95 * n, FOOTPRINT_PLACEBO_SHIFTS).astype(int))
    beta = e[(np.arange(n)[None, :] - lags[:, None]) % n] @ m / ss      # shifts
    return float(1.4826 * np.median(np.abs(beta)))


def _measured_size(sig: Signal, bias: float, measured: MeasuredSizes | None) -> tuple[float, float | None, str] | None:
    """``(bias %, t, what)`` measured in the global signal for an assumed-size signal, or None."""
    if measured is None or sig.magnitude_source != "assumed":
        return None
    if sig.source in measured.footprints:
        beta, se = measured.footprints[sig.source]
        t = beta / se if se > 0 else None
        # the part's t has the sign of the part (beta × the assumed bias), not of beta alone
        t_part = None if t is None else float(t * np.sign(bias)) if bias != 0 else 0.0
        shape = measured.shapes.get(sig.source)
        how = f"as {shape}, " if shape else ""
        return float(beta * bias), t_part, (f"its fitted size in the global signal ({how}{beta:.2g} × the assumed "
                                            f"size, t = {t:.1f})" if t is not None else
                                            "its fitted size in the global signal")
    cls = MEASURED_CLASS.get(sig.family)
    if cls is not None:
        part, t = measured.parts.get(cls, (0.0, 0.0))
        return float(part), t, f"the {_CLASS_WORDS.get(cls, cls)} part of the global signal"
    if sig.family == "confound" and sig.column in measured.loadings and sig.per_unit:
        beta, se = measured.loadings[sig.column]
        t = beta / se if se > 0 else None
        t_part = None if t is None else float(t * np.sign(bias / sig.per_unit)) if bias != 0 else 0.0
        return float(beta * bias / sig.per_unit), t_part, (f"{sig.column}'s measured loading in the global signal "
                                                      f"({beta:+.3g} % per unit, t = {t:.1f})" if t is not None else
                                                      f"{sig.column}'s measured loading in the global signal")
    return None


def assess_sensitivity(design: pd.DataFrame, name: str, vector: np.ndarray, signals: list[Signal],
                       thresholds: Thresholds | None = None, weights: np.ndarray | None = None,
                       noise: NoiseLevel | None = None, extra_families: tuple[str, ...] = (),
                       algebra: DesignAlgebra | None = None, measured: MeasuredSizes | None = None) -> SensitivityResult:
    """``bias = w @ m`` and ``bias_sd`` for every signal; ``sensitive_unmodeled_signal`` findings.

    Every entry holds ``bias_percent`` (= ``bias``, % signal, at the size
    in its label), ``bias_sd`` (``bias / σ``, ``σ = noise_sd · sqrt(c(X'X)⁺c')``),
    ``sd_percent`` (σ), ``sd_source`` (where the noise level comes from:
    ``measured:global_signal`` or ``assumed``), ``magnitude_source``
    (``measured:<column>`` or ``assumed``) and ``direction``
    (``lowers``/``inflates``).

    Severity (issue 20), per source, only when its structural cause is present
    (``is_structural``; else at most ``info``), in either direction:

    * size measured (``magnitude_source: measured:…``): ``warn`` at ``|bias_sd| >=
      sensitivity_warn``, ``fail`` at ``sensitivity_fail``;
    * size assumed, but the run's global signal measures the same thing (``measured``:
      the class part of ``MEASURED_CLASS`` — unmodelled events, gaps, high-motion volumes,
      run edges — or, for ``confound:<column>``, the column's loading in the global signal
      times the per-unit bias): the *measured* bias decides, ``measured_bias_sd =
      measured_bias / measured.sd``, and only when it is distinguishable from zero
      (``|t| >= DISTINCT_T``); an assumed size the data do not bear out is ``info`` at most;
    * size assumed and nothing measured: a hypothesis — ``warn`` at most, never ``fail``,
      worded "if … then …" (``tr:*`` what-ifs about a wrong model are not capped); the gap
      families (``INFO_UNLESS_MEASURED``: an assumed cue response in every short gap) are
      ``info`` at most.

    Entries record ``severity_basis`` (``measured`` | ``measured_part`` | ``assumed``),
    ``hypothesis``, and for measured parts ``measured_bias_percent``, ``measured_t`` and
    ``measured_bias_sd``. ``noise`` is the per-scan noise σ in percent
    (:func:`nbdiag.diagnostics.measured.noise_level`); :func:`noise_for` picks, per signal,
    the σ on the same scale as its size. Each entry also records ``noise_sd_percent``.
    """
    thresholds = thresholds or Thresholds()
    noise = noise or NoiseLevel()
    vector = np.asarray(vector, float)
    alg = DesignAlgebra.for_design(design, algebra)
    w = alg.weights(vector) if weights is None else np.asarray(weights, float)
    var = alg.variance(vector)
    entries, findings = [], []
    for sig in signals:
        if sig.values.shape[0] != w.shape[0]:
            raise ValueError(f"signal {sig.source!r} has {sig.values.shape[0]} values; design has {w.shape[0]} rows")
    biases = (np.vstack([sig.values for sig in signals]) @ w).tolist() if signals else []
    for sig, bias in zip(signals, biases):
        nz = noise_for(sig, noise)
        sd = np.sqrt(var) * nz.sd if var > 0 else np.nan
        bias_sd = float(bias / sd) if np.isfinite(sd) and sd > 0 else float("nan")
        if abs(bias) < 1e-12 * max(1.0, sig.max_abs):
            bias, bias_sd = 0.0, 0.0
        structural = is_structural(sig.source, design, vector, w, thresholds, extra_families)
        a = abs(bias_sd) if np.isfinite(bias_sd) else 0.0
        # settling the run's own signal shows (a distinct, positive fitted footprint) is present in the run: its
        # measured bias on any contrast is a cause, edge-concentrated baseline or not
        structural = structural or _shows_settling(sig, measured)
        sev, basis, hypothesis, score_sd, extra = _grade_signal(sig, bias, a, structural, measured, thresholds)
        entries.append({"source": sig.source, "label": sig.label, "bias": bias, "bias_percent": bias,
                        "bias_sd": bias_sd, "sd_percent": float(sd) if np.isfinite(sd) else None,
                        "sd_source": nz.source, "noise_sd_percent": nz.sd,
                        "magnitude_source": sig.magnitude_source,
                        "direction": direction_word(bias) if bias else None,
                        "unit": sig.unit, "typical": sig.typical,
                        "cause": CAUSE_OF_SOURCE.get(sig.family, codes.SENSITIVE_UNMODELED_SIGNAL.code),
                        "structural": structural, "severity": sev, "severity_basis": basis,
                        "hypothesis": hypothesis, "rank_sd": score_sd, **extra})
        if sev is not None:
            findings.append(_signal_finding(sig, name, bias, bias_sd, nz, structural, sev, basis, hypothesis,
                                            score_sd, extra))
    return SensitivityResult(contrast=name, variance=float(var), entries=tuple(entries), findings=tuple(findings),
                             noise=noise)


def _grade(a: float, th: Thresholds) -> str | None:
    """``fail`` at ``sensitivity_fail`` σ, ``warn`` at ``sensitivity_warn`` σ, else None."""
    return "fail" if a >= th.sensitivity_fail else "warn" if a >= th.sensitivity_warn else None


def _shows_settling(sig: Signal, measured: MeasuredSizes | None) -> bool:
    """``run_start`` whose footprint fitted in the run's global signal is distinguishable from zero
    (``|β / SE| >= DISTINCT_T``) and positive (the run starts above its steady level)."""
    if sig.family != "run_start" or measured is None or sig.source not in measured.footprints \
            or sig.source in measured.below_zero:
        return False
    beta, se = measured.footprints[sig.source]
    return bool(se > 0 and abs(beta / se) >= DISTINCT_T)


def _grade_signal(sig: Signal, bias: float, a: float, structural: bool, measured: MeasuredSizes | None,
                  th: Thresholds) -> tuple[str | None, str, bool, float, dict[str, Any]]:
    """``(severity, severity_basis, hypothesis, rank σ, extra entry fields)`` of one signal's bias
    (``a`` = its ``|bias_sd|``), by the rules of :func:`assess_sensitivity`."""
    meas = _measured_size(sig, bias, measured)
    extra: dict[str, Any] = {}
    hypothesis = False
    if meas is not None and measured is not None and measured.sd > 0:
        mb, mt, what = meas
        msd = mb / measured.sd
        distinct = mt is not None and np.isfinite(mt) and abs(mt) >= DISTINCT_T
        am = abs(msd) if distinct else 0.0
        sev = _grade(am, th)
        if sev is not None and not structural:
            sev = "info"
        if sev is None and a >= th.sensitivity_warn:
            sev = "info"   # the assumed size is not borne out by the data
        basis = "measured_part"
        score_sd = am
        extra = {"measured_bias_percent": mb, "measured_t": mt, "measured_bias_sd": msd, "measured_what": what}
    elif sig.magnitude_source == "assumed" and sig.family not in MODEL_ERROR_FAMILIES:
        sev = _grade(a, th)
        if sev is not None:   # a hypothesis never fails; an assumed cue response in the gaps warns only when measured
            sev = "warn" if structural and sig.family not in INFO_UNLESS_MEASURED else "info"
        basis, hypothesis, score_sd = "assumed", True, a
    else:
        sev = _grade(a, th)
        if sev is not None and not structural:
            sev = "info"
        basis, score_sd = ("measured" if sig.magnitude_source.startswith("measured:") else "assumed"), a
    return sev, basis, hypothesis, score_sd, extra


def _signal_finding(sig: Signal, name: str, bias: float, bias_sd: float, nz: NoiseLevel, structural: bool,
                    sev: str, basis: str, hypothesis: bool, score_sd: float, extra: Mapping[str, Any]) -> Finding:
    """``sensitive_unmodeled_signal`` for one graded signal, worded by its basis (measured part,
    hypothesis, or measured size)."""
    a = abs(bias_sd) if np.isfinite(bias_sd) else 0.0
    direction = direction_word(bias)
    if basis == "measured_part":
        mb, mt = extra["measured_bias_percent"], extra["measured_t"]
        tt = f"t = {mt:.1f}" if mt is not None and np.isfinite(mt) else "t n/a"
        message = (f"Measured in this run: {extra['measured_what']} moves {name} by "
                   f"{mb:+.3g} % ({tt}; {abs(extra['measured_bias_sd']):.2f} σ, σ = residual of "
                   f"global_signal × the contrast's norm)"
                   + ("." if sev != "info" else
                      f", not distinguishable from zero or below the warn size; if the data held "
                      f"{sig.label}, it would {direction[:-1]} {name} by {a:.2f} σ ({bias:+.3g} %; "
                      f"size assumed).") )
    elif hypothesis:
        message = (f"Hypothesis (size assumed, not measured): if the data held {sig.label}, it would "
                   f"{direction[:-1]} {name} by {a:.2f} σ ({bias:+.3g} %; {_size_words(sig, nz)}).")
    else:
        message = (f"{sig.label[0].upper() + sig.label[1:]} {direction} {name} by "
                   f"{abs(bias_sd):.2f} σ ({bias:+.3g} %; {_size_words(sig, nz)})"
                   + ("." if structural else
                      " (a generic signal present in every run, not a cause specific to this design)."))
    return codes.SENSITIVE_UNMODELED_SIGNAL.finding(
        severity=sev, contrast=name,
        title=f"{name} is sensitive to an unmodelled signal ({sig.source})",
        message=message,
        evidence={"source": sig.source, "label": sig.label, "bias": bias, "bias_percent": bias,
                  "bias_sd": bias_sd, "sd_source": nz.source, "magnitude_source": sig.magnitude_source,
                  "noise_sd_percent": nz.sd, "direction": direction, "unit": sig.unit,
                  "typical": sig.typical, "structural": structural, "severity_basis": basis,
                  "hypothesis": hypothesis, **extra},
        score=float(score_sd * sig.typical) if sev in ("warn", "fail") else 0.0,
        fix=_fix_for(sig.family),
    )


#: σ for a signal whose size is assumed: an assumed voxel-level size is compared with the
#: assumed voxel-level noise, not with the (much smaller) noise of a whole-brain average.
ASSUMED_VOXEL_NOISE = NoiseLevel(reason="the signal's size is an assumed voxel-level amplitude, so σ is the "
                                        "assumed voxel noise of 1 % per scan")


def noise_for(sig: Signal, noise: NoiseLevel) -> NoiseLevel:
    """The σ that matches the scale of ``sig``'s size.

    A size measured from a column (``magnitude_source == "measured:global_signal"``) is
    compared with that column's own measured noise (``noise``, when it was measured from
    the same column): both are properties of the whole-brain average. An assumed size is a
    voxel-level amplitude and is compared with the assumed voxel noise (1 %): the global
    signal's residual noise (≈ 0.2 %) would overstate a voxel-level bias several-fold.
    """
    if noise.source.startswith("measured:") and sig.magnitude_source == noise.source:
        return noise
    if noise.source.startswith("measured:"):
        return ASSUMED_VOXEL_NOISE
    return noise


def _size_words(sig: Signal, noise: NoiseLevel) -> str:
    """Where the two sizes came from: the signal's (measured column or assumed value) and σ."""
    size = (f"size measured from {sig.magnitude_source.split(':', 1)[1]}"
            if sig.magnitude_source.startswith("measured:") else "size assumed, as labelled")
    return f"{size}; {noise.describe()}"


def _fix_for(family: str) -> str:
    return {
        "transient": "Discard the volumes with a sample mask (FirstLevelModel.fit(sample_masks=...)) or add one "
                     "spike regressor per volume.",
        "nonsteady": "Pass sample_masks from load_confounds to FirstLevelModel.fit, or add the "
                     "non_steady_state_outlier* columns as confounds.",
        "unmodeled": "Model the unmodelled event type as its own condition.",
        "short_gaps": "Model cue/transition periods, or lengthen fixation between blocks.",
        "pre_block": "Add the cue/instruction screens to events.tsv (their own condition) so they leave the "
                     "implicit baseline.",
        "scrub": "Pass sample_masks from load_confounds to FirstLevelModel.fit.",
        "run_start": "Discard the first volumes (sample mask) and put fixation inside the run.",
        "slow_drift": "Lower high_pass only as far as the task allows; check drift_overlap.",
        "hrf_derivative": "Use hrf_model='glover + derivative' (or '+ derivative + dispersion').",
        "hrf_dispersion": "Use hrf_model='glover + derivative + dispersion'.",
        "rt": "Model RT-proportional activity per condition, or drop the shared RT regressor.",
        "confound_left_out": "Add the motion parameters to the model (confounds_strategy with 'motion'), or check "
                             "whether the task itself drives the motion.",
        "confound": "Drop the task-locked confound from confounds_strategy (or orthogonalise it to the task "
                    "regressors), or check whether the task itself drives it.",
        "tr": "Fit with the repetition time the data were acquired with (FirstLevelModel(t_r=...) or --t-r).",
    }.get(family, "Model the signal or interpret a differential contrast.")


def core_signals(design, roles, context, th):
    """Baseline assessment and the signal library of one design (shared by the audit and the what-ifs)."""
    base = assess_baseline(design, roles, context, th)
    signals = signal_library(design, roles, context, base.scan_classes, base.epochs,
                             min_confound_r2=th.confound_r2_warn)
    return base, signals


def sensitivity_by_contrast(design, vectors, signals, th, context: DesignContext | None = None,
                            extra_families: dict[str, tuple[str, ...]] | None = None,
                            algebra: DesignAlgebra | None = None, noise: NoiseLevel | None = None,
                            measured: dict[str, MeasuredSizes] | None = None):
    """``assess_sensitivity`` for every contrast vector (one factorisation of ``design``; ``noise``:
    see ``assess_sensitivity``; ``extra_families``: per contrast, generic families a cause of this
    run makes structural)."""
    alg = DesignAlgebra.for_design(design, algebra)
    extra = extra_families or {}
    return {name: assess_sensitivity(design, name, vec, signals, th, noise=noise,
                                     extra_families=tuple(extra.get(name, ())), algebra=alg,
                                     measured=(measured or {}).get(name))
            for name, vec in vectors.items()}
