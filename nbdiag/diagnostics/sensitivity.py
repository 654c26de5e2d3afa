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
(``global_signal[k] / steady-state median - 1``) when the column exists; every
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

``typical`` scales per-unit bias to a plausible size; ``score`` =
``|bias_sd| * typical`` ranks causes.

Which sources can raise a warning (the structural-cause rule)
-------------------------------------------------------------
Every source's bias is recorded in ``contrasts.<name>.sensitivity``. A
``sensitive_unmodeled_signal`` finding reaches ``warn`` (``|bias_sd| >=
sensitivity_warn``) or ``fail`` (``>= sensitivity_fail``) only when the
source's *structural cause is present in the run* — something in this design
puts the signal where the contrast reads its baseline:

* ``nonsteady`` — flagged non-steady-state volumes are left in the model;
* ``unmodeled:<type>`` — events listed in events.tsv are not modelled;
* ``pre_block`` / ``short_gaps`` — pre-block (cue-like) or transition gaps exist;
* ``scrub`` — scrubbed volumes are not masked;
* ``run_start`` — only when the contrast's baseline weight is edge-concentrated
  (``edge_share >= edge_weight_warn``; share of its negative weight in the
  first/last ``edge_fraction`` of the rows);
* ``rt:<cond>`` (RT-duration regressor in the model) — only for contrasts with
  zero weight on ``<cond>``: the shared RT regressor moves ``<cond>``'s
  RT-scaled activity into them. A contrast that includes ``<cond>`` is meant
  to measure that activity.

Every structural signal except ``scrub`` is excess signal (brighter volumes,
responses, settling from above), so it can only push a contrast *down* where
the contrast reads it as baseline. A sign-flip finding is about what can make
an estimate come out below its true value: for these sources warn/fail needs
``bias_sd <= -sensitivity_warn``; a source that only *raises* a contrast is
``info`` (its number is kept). ``scrub`` spikes have no known sign (``|bias_sd|``).

Generic sources — ``slow_drift``, ``hrf_derivative:*``, ``hrf_dispersion:*``
and ``rt`` (RT-proportional activity with no RT regressor in the model) —
exist in every run and are no design-specific cause: they yield at most an
``info`` finding and stay in ``contrasts.<name>.sensitivity`` as numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from nbdiag.diagnostics._hrf import compute_regressor_fast

from nbdiag.context import DesignContext
from nbdiag.diagnostics.baseline import (
    _condition_columns,
    _rt_name,
    n_scans_total,
    original_index,
)
from nbdiag.diagnostics._linalg import DesignAlgebra
from nbdiag.diagnostics.measured import NoiseLevel, measured_nonsteady_excess, noise_level
from nbdiag.findings import Finding
from nbdiag.thresholds import Thresholds
from nbdiag import codes

RUN_START_TAU_S = 20.0

#: Excess signal (%) at the first flagged non-steady-state volume: T1
#: saturation makes those volumes tens of percent brighter; 10 % is a low guess.
NSS_PCT = 10.0  # kept for backward compatibility; the library uses ``nss_excess``

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
    "unmodeled": codes.BASELINE_UNMODELED_EVENTS.code,
    "short_gaps": codes.BASELINE_SHORT_GAPS.code,
    "pre_block": codes.BASELINE_SHORT_GAPS.code,
    "scrub": codes.SCRUB_NOT_APPLIED.code,
    "run_start": codes.BASELINE_EDGE_CONCENTRATED.code,
    "slow_drift": codes.DRIFT_OVERLAP.code,
    "hrf_derivative": codes.SENSITIVE_UNMODELED_SIGNAL.code,
    "hrf_dispersion": codes.SENSITIVE_UNMODELED_SIGNAL.code,
    "rt": codes.RT_REGRESSOR_OVERLAP.code,
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

    @property
    def family(self) -> str:
        return self.source.split(":", 1)[0]


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


def _convolved(events: pd.DataFrame, context: DesignContext, design: pd.DataFrame,
               hrf: str | None = None, column: int = 0) -> np.ndarray:
    full, idx = _full_times(design, context)
    return _convolved_arrays(events["onset"].to_numpy(float), events["duration"].to_numpy(float),
                             context, full, idx, hrf, column)


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


def signal_library(design: pd.DataFrame, roles: dict[str, str], context: DesignContext,
                   scan_classes: tuple[str, ...] | None = None,
                   epochs: tuple[dict[str, Any], ...] | None = None) -> list[Signal]:
    """Build the plausible unmodelled signals that exist for this run (see module doc).

    The event tables are read into arrays once (onset, duration, trial type)
    and filtered with boolean masks per condition.
    """
    n = len(design)
    full, idx = _full_times(design, context)
    idx_list = idx.tolist()
    idx_set = set(idx_list)
    t_r = float(context.t_r)
    out: list[Signal] = []
    flagged = sorted(int(v) for v in context.nonsteady_volumes)
    present = [v for v in flagged if v in idx_set]
    if present:
        k = len(flagged)
        m = np.zeros(n)
        pos = {v: i for i, v in enumerate(idx_list)}
        measured = measured_nonsteady_excess(context, flagged)
        if measured is not None:
            exc = dict(zip(flagged, measured.tolist()))
            label = (f"the measured excess of the {k} flagged volumes (global_signal: {exc[flagged[0]]:.1f} % "
                     f"at volume {flagged[0]} over its steady-state median)")
            source = "measured:global_signal"
        else:
            t1 = nss_excess(t_r, max(flagged) + 1)
            exc = {v: float(t1[v]) for v in flagged}
            label = (f"the T1 excess of the {k} flagged volumes ({exc[flagged[0]]:.0f} % at volume {flagged[0]}, "
                     f"steady state after that; assumed: {_nss_reason(context)})")
            source = "assumed"
        for v in flagged:
            if v in pos:
                m[pos[v]] = exc[v]
        out.append(Signal("nonsteady", label, "% signal", m, typical=1.0, magnitude_source=source))
    unmod = context.unmodeled_events
    if unmod is not None and len(unmod):
        u_on, u_du, u_tt = _event_arrays(unmod)
        for tt in sorted(set(u_tt.tolist())):
            sel = u_tt == tt
            m = 0.5 * _convolved_arrays(u_on[sel], u_du[sel], context, full, idx)
            if np.any(m):
                out.append(Signal(f"unmodeled:{tt}", f"a 0.5 % HRF response to each unmodelled {tt} event",
                                  "% signal", m, typical=1.0))
    if epochs:
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
        gaps = [e for e in epochs if e["kind"] == "short_gap" and e.get("position") != "pre_block"]
        gap_signal(gaps, 0.25, "short_gaps", f"a 0.25 % HRF response during the {len(gaps)} short transition "
                   f"gaps between events", 0.5)
    scrub = [v for v in sorted(int(v) for v in context.scrub_volumes)
             if not context.sample_mask_applied and v in idx_set]
    if scrub:
        m = np.zeros(n)
        pos = {v: i for i, v in enumerate(idx_list)}
        for v in scrub:
            m[pos[v]] = 2.0
        out.append(Signal("scrub", f"a 2 % spike at each of the {len(scrub)} volumes scrubbing would censor",
                          "% signal", m, typical=1.0))
    t0 = full[idx[0]] if n else 0.0
    times = full[idx]
    out.append(Signal("run_start", f"1 % signal settling at the run start (time constant {RUN_START_TAU_S:g} s)",
                      "% signal", np.exp(-(times - t0) / RUN_START_TAU_S), typical=1.0))
    n_tot = full.size
    n_drift = sum(1 for c in design.columns if roles.get(c) == "drift")
    k = n_drift + 1 if (context.drift_model or "").lower() in ("cosine", "polynomial") else 1
    m = 0.25 * np.cos(np.pi * k * (np.arange(n_tot) + 0.5) / n_tot)[idx]
    period = 2.0 * n_tot * t_r / k
    out.append(Signal("slow_drift", f"0.25 % drift with period {period:.0f} s, just inside the pass band of the drift model",
                      "% signal", m, typical=0.5))
    rt_name = _rt_name(design, roles, context)
    ev = context.events
    has_events = ev is not None and len(ev) > 0
    if has_events:
        e_on, e_du, e_tt = _event_arrays(ev)
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
    rt_arrays = None  # (onsets, durations, trial types)
    if context.rt_events is not None:
        if len(context.rt_events):
            rt_arrays = _event_arrays(context.rt_events)
    elif ev is not None and rt_name is not None:
        if not has_events:
            e_on, e_du, e_tt = _event_arrays(ev)
        is_rt = e_tt == rt_name
        if is_rt.any():
            other_on, other_tt = e_on[~is_rt].tolist(), e_tt[~is_rt].tolist()
            lookup = {round(float(o), 6): str(t) for o, t in zip(other_on, other_tt)}
            rt_on = e_on[is_rt]
            rt_arrays = (rt_on, e_du[is_rt],
                         np.array([lookup.get(round(float(o), 6), rt_name) for o in rt_on.tolist()], dtype=object))
    if rt_arrays is not None:
        r_on, r_du, r_tt = rt_arrays
        if rt_name is None:
            out.append(Signal("rt", "0.5 % RT-proportional activity (duration = response time)",
                              "% signal", 0.5 * _convolved_arrays(r_on, r_du, context, full, idx), typical=1.0))
        else:
            for cond in sorted(set(r_tt.tolist())):
                if cond == rt_name:
                    continue
                sel = r_tt == cond
                out.append(Signal(f"rt:{cond}", f"0.5 % RT-proportional activity in {cond} trials only",
                                  "% signal", 0.5 * _convolved_arrays(r_on[sel], r_du[sel], context, full, idx),
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
        def clean(v):
            return None if isinstance(v, float) and not np.isfinite(v) else v
        return [{k: clean(v) for k, v in e.items()} for e in self.entries]

    def max_abs_bias_sd(self) -> float:
        vals = [abs(e["bias_sd"]) for e in self.entries if e["bias_sd"] is not None and np.isfinite(e["bias_sd"])]
        return float(max(vals)) if vals else 0.0

    def entry(self, source: str) -> dict[str, Any] | None:
        for e in self.entries:
            if e["source"] == source:
                return e
        return None


#: Source families whose structural cause is present whenever the signal exists.
STRUCTURAL = ("nonsteady", "unmodeled", "pre_block", "short_gaps", "scrub")
#: Structural families whose signal is positive (only a lowering bias is a sign-flip cause).
SIGNED = ("nonsteady", "unmodeled", "pre_block", "short_gaps", "run_start", "rt")
#: Source families that exist in every run (at most ``info``).
GENERIC = ("slow_drift", "hrf_derivative", "hrf_dispersion")


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
                  thresholds: Thresholds) -> bool:
    """Whether ``source``'s structural cause is present for this contrast (module doc)."""
    fam = source.split(":", 1)[0]
    if fam in STRUCTURAL:
        return True
    if fam == "run_start":
        return edge_share(weights, thresholds.edge_fraction) >= thresholds.edge_weight_warn
    if fam == "rt" and ":" in source:
        cond = source.split(":", 1)[1]
        cols = list(design.columns)
        return cond in cols and abs(float(vector[cols.index(cond)])) == 0.0
    return False


def assess_sensitivity(design: pd.DataFrame, name: str, vector: np.ndarray, signals: list[Signal],
                       thresholds: Thresholds | None = None, weights: np.ndarray | None = None,
                       algebra: DesignAlgebra | None = None, noise: NoiseLevel | None = None) -> SensitivityResult:
    """``bias = w @ m`` and ``bias_sd`` for every signal; ``sensitive_unmodeled_signal`` findings.

    Per source with ``|bias_sd| >= sensitivity_warn``: a ``warn`` finding
    (``fail`` at ``sensitivity_fail``) when its structural cause is present
    (``is_structural``), else an ``info`` finding. Each entry records
    ``structural``. The explanation engine folds a finding into a more
    specific cause when one exists.

    ``noise`` is the per-scan noise σ in percent (:func:`nbdiag.diagnostics.measured.noise_level`:
    the residual of ``global_signal`` after the design when measured, else 1 % assumed);
    ``bias_sd = bias / (σ sqrt(c (X'X)^+ c'))``. Each entry records
    ``magnitude_source`` (``"measured:<column>"`` or ``"assumed"``), ``noise_sd_percent`` and
    ``sd_source``.
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
        nz = noise_for(sig, noise)
        sd = np.sqrt(var) * nz.sd if var > 0 else np.nan
        bias = float(w @ sig.values)
        bias_sd = float(bias / sd) if np.isfinite(sd) and sd > 0 else float("nan")
        if abs(bias) < 1e-12 * max(1.0, float(np.abs(sig.values).max())):
            bias, bias_sd = 0.0, 0.0
        structural = is_structural(sig.source, design, vector, w, thresholds)
        a = abs(bias_sd) if np.isfinite(bias_sd) else 0.0
        sev = None
        if a >= thresholds.sensitivity_warn:
            towards_flip = sig.family not in SIGNED or bias_sd < 0
            sev = ("fail" if a >= thresholds.sensitivity_fail else "warn") if structural and towards_flip \
                else "info"
        entries.append({"source": sig.source, "label": sig.label, "bias": bias, "bias_sd": bias_sd,
                        "unit": sig.unit, "typical": sig.typical,
                        "cause": CAUSE_OF_SOURCE.get(sig.family, codes.SENSITIVE_UNMODELED_SIGNAL.code),
                        "structural": structural, "severity": sev,
                        "magnitude_source": sig.magnitude_source, "noise_sd_percent": nz.sd,
                        "sd_source": nz.source})
        if sev is not None:
            direction = "lowers" if bias < 0 else "raises"
            findings.append(codes.SENSITIVE_UNMODELED_SIGNAL.finding(
                severity=sev, contrast=name,
                title=f"{name} is sensitive to an unmodelled signal ({sig.source})",
                message=f"{sig.label[0].upper() + sig.label[1:]} {direction} {name} by "
                        f"{abs(bias):.3g} % = {abs(bias_sd):.2f} σ ({_size_words(sig, nz)})"
                        + ("." if sev != "info" else
                           " (a generic signal present in every run, not a cause specific to this design)."
                           if not structural else " (it raises the contrast, so it cannot explain a negative "
                           "estimate)."),
                evidence={"source": sig.source, "label": sig.label, "bias": bias, "bias_sd": bias_sd,
                          "unit": sig.unit, "typical": sig.typical, "structural": structural,
                          "magnitude_source": sig.magnitude_source, "noise_sd_percent": nz.sd,
                          "sd_source": nz.source},
                score=float(a * sig.typical) if sev in ("warn", "fail") else 0.0,
                fix=_fix_for(sig.family),
            ))
    return SensitivityResult(contrast=name, variance=float(var), entries=tuple(entries), findings=tuple(findings),
                             noise=noise)


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
    }.get(family, "Model the signal or interpret a differential contrast.")


def core_signals(design, roles, context, th):
    """Baseline assessment and the signal library of one design (shared by the audit and the what-ifs)."""
    from nbdiag.diagnostics.baseline import assess_baseline
    base = assess_baseline(design, roles, context, th)
    signals = signal_library(design, roles, context, base.scan_classes, base.epochs)
    return base, signals


def sensitivity_by_contrast(design, vectors, signals, th, algebra: DesignAlgebra | None = None,
                            noise: NoiseLevel | None = None):
    """``assess_sensitivity`` for every contrast vector (one factorisation of ``design``; ``noise``:
    see ``assess_sensitivity``)."""
    alg = DesignAlgebra.for_design(design, algebra)
    return {name: assess_sensitivity(design, name, vec, signals, th, algebra=alg, noise=noise)
            for name, vec in vectors.items()}
