"""How much would plausible unmodelled signals move each contrast?

For an unmodelled signal ``m`` (one value per design row), nilearn's OLS
contrast estimate moves by exactly ``bias = w @ m`` (``w`` from
``contrast_weights``). ``bias_sd = bias / sqrt(c (X'X)^+ c')`` expresses it in
contrast standard deviations for unit noise (1 % signal noise per scan when the
data are in percent signal change). Drift and confound columns are part of
``X``, so ``w`` already projects them out.

The signal library, each at a plausible (deliberately modest) size given in its
label; only signals that exist for the run are built. Sizes below supersede
the per-source notes: non-steady-state 10 % (``NSS_PCT``), unmodelled events
0.5 % HRF response, short gaps 0.25 %, run-start settling 1 %, slow drift
0.25 %, HRF latency/dispersion 0.25 % x derivative, RT activity 0.5 %:

``nonsteady``
    Excess signal in the flagged non-steady-state volumes still in the
    design: 1 % at the first flagged volume, ``exp(-2 k / K)`` at the k-th of
    K flagged volumes (decays to ~e^-2 over the flagged ones).
    Typical size 5 (T1 saturation excess is several %).
``unmodeled:<type>``
    HRF-convolved (nilearn ``compute_regressor``, the run's HRF) response of
    unit amplitude during each listed-but-unmodelled event type. Typical 1.
``short_gaps``
    HRF-convolved unit response during the short gaps next to blocks
    (transition/cue activity). Typical 0.5.
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
``|bias_sd| * typical`` ranks causes. Severities use per-unit ``|bias_sd|``
against ``sensitivity_warn`` / ``sensitivity_fail``.
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
from nbdiag.diagnostics.weights import contrast_variance, contrast_weights
from nbdiag.findings import Finding
from nbdiag.thresholds import Thresholds

RUN_START_TAU_S = 20.0

#: Excess signal (%) at the first flagged non-steady-state volume: T1
#: saturation makes those volumes tens of percent brighter; 10 % is a low guess.
NSS_PCT = 10.0

#: finding code that owns each source family (the explanation engine's causes)
CAUSE_OF_SOURCE = {
    "nonsteady": "nonsteady_unhandled",
    "unmodeled": "baseline_unmodeled_events",
    "short_gaps": "baseline_short_gaps",
    "run_start": "baseline_edge_concentrated",
    "slow_drift": "drift_overlap",
    "hrf_derivative": "sensitive_unmodeled_signal",
    "hrf_dispersion": "sensitive_unmodeled_signal",
    "rt": "rt_regressor_overlap",
}


@dataclass(frozen=True)
class Signal:
    """One plausible unmodelled signal, sampled at the design rows."""

    source: str
    label: str
    unit: str
    values: np.ndarray
    typical: float = 1.0

    @property
    def family(self) -> str:
        return self.source.split(":", 1)[0]


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
    cond = np.vstack([events["onset"].to_numpy(float), events["duration"].to_numpy(float),
                      np.ones(len(events))])
    reg, _ = compute_regressor_fast(cond, hrf or _base_hrf(context), full)
    return reg[idx, column]


def signal_library(design: pd.DataFrame, roles: dict[str, str], context: DesignContext,
                   scan_classes: tuple[str, ...] | None = None,
                   epochs: tuple[dict[str, Any], ...] | None = None) -> list[Signal]:
    """Build the plausible unmodelled signals that exist for this run (see module doc)."""
    n = len(design)
    full, idx = _full_times(design, context)
    t_r = float(context.t_r)
    out: list[Signal] = []
    flagged = sorted(int(v) for v in context.nonsteady_volumes)
    present = [v for v in flagged if v in set(idx.tolist())]
    if present:
        k = len(flagged)
        m = np.zeros(n)
        pos = {v: i for i, v in enumerate(idx.tolist())}
        for rank, v in enumerate(flagged):
            if v in pos:
                m[pos[v]] = NSS_PCT * np.exp(-2.0 * rank / k)
        out.append(Signal("nonsteady", f"{NSS_PCT:g} % extra signal decaying over the {k} flagged volumes",
                          "% signal", m, typical=1.0))
    unmod = context.unmodeled_events
    if unmod is not None and len(unmod):
        for tt in sorted(set(unmod["trial_type"].astype(str))):
            rows = unmod[unmod["trial_type"].astype(str) == tt]
            m = 0.5 * _convolved(rows, context, design)
            if np.any(m):
                out.append(Signal(f"unmodeled:{tt}", f"a 0.5 % HRF response to each unmodelled {tt} event",
                                  "% signal", m, typical=1.0))
    if epochs:
        gaps = [e for e in epochs if e["kind"] == "short_gap"]
        if gaps:
            ev = pd.DataFrame({"onset": [g["start"] for g in gaps], "duration": [g["duration"] for g in gaps]})
            m = 0.25 * _convolved(ev, context, design)
            if np.any(m):
                out.append(Signal("short_gaps", f"a 0.25 % HRF response during the {len(gaps)} short gaps next to blocks",
                                  "% signal", m, typical=0.5))
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
    if context.events is not None and len(context.events):
        cols = set(design.columns)
        ev = context.events
        for cond in sorted(set(ev["trial_type"].astype(str))):
            if cond not in cols or cond == rt_name:
                continue
            rows = ev[ev["trial_type"].astype(str) == cond]
            full_cond = np.vstack([rows["onset"].to_numpy(float), rows["duration"].to_numpy(float),
                                   rows["modulation"].to_numpy(float) if "modulation" in rows
                                   else np.ones(len(rows))])
            regs, _ = compute_regressor_fast(full_cond, _base_hrf(context) + " + derivative + dispersion", full)
            if f"{cond}_derivative" not in cols:
                out.append(Signal(f"hrf_derivative:{cond}", f"a 0.25 % {cond} response 1 s earlier than the canonical HRF",
                                  "% signal", 0.25 * regs[idx, 1], typical=1.0))
            if f"{cond}_dispersion" not in cols:
                out.append(Signal(f"hrf_dispersion:{cond}", f"a 0.25 % {cond} response with a wider HRF (unit dispersion derivative)",
                                  "% signal", 0.25 * regs[idx, 2], typical=1.0))
    rt_ev = context.rt_events
    if rt_ev is None and context.events is not None and rt_name is not None:
        ev = context.events
        rt_rows = ev[ev["trial_type"].astype(str) == rt_name]
        other = ev[ev["trial_type"].astype(str) != rt_name]
        if len(rt_rows):
            lookup = {round(float(o), 6): str(t) for o, t in zip(other["onset"], other["trial_type"])}
            rt_ev = pd.DataFrame({"onset": rt_rows["onset"].to_numpy(float),
                                  "duration": rt_rows["duration"].to_numpy(float),
                                  "trial_type": [lookup.get(round(float(o), 6), rt_name) for o in rt_rows["onset"]]})
    if rt_ev is not None and len(rt_ev):
        if rt_name is None:
            out.append(Signal("rt", "0.5 % RT-proportional activity (duration = response time)",
                              "% signal", 0.5 * _convolved(rt_ev, context, design), typical=1.0))
        else:
            for cond in sorted(set(rt_ev["trial_type"].astype(str))):
                if cond == rt_name:
                    continue
                rows = rt_ev[rt_ev["trial_type"].astype(str) == cond]
                out.append(Signal(f"rt:{cond}", f"0.5 % RT-proportional activity in {cond} trials only",
                                  "% signal", 0.5 * _convolved(rows, context, design), typical=1.0))
    return out


@dataclass(frozen=True)
class SensitivityResult:
    """Bias of one contrast under each plausible signal."""

    contrast: str
    variance: float
    entries: tuple[dict[str, Any], ...]
    findings: tuple[Finding, ...] = field(default_factory=tuple)

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


def assess_sensitivity(design: pd.DataFrame, name: str, vector: np.ndarray, signals: list[Signal],
                       thresholds: Thresholds | None = None, weights: np.ndarray | None = None) -> SensitivityResult:
    """``bias = w @ m`` and ``bias_sd`` for every signal; ``sensitive_unmodeled_signal`` findings.

    A finding (warn at ``|bias_sd| >= sensitivity_warn``, fail at
    ``sensitivity_fail``) is raised per source; the explanation engine folds it
    into a more specific cause when one exists.
    """
    thresholds = thresholds or Thresholds()
    w = contrast_weights(design, vector) if weights is None else np.asarray(weights, float)
    var = contrast_variance(design, vector)
    sd = np.sqrt(var) if var > 0 else np.nan
    entries, findings = [], []
    for sig in signals:
        if sig.values.shape[0] != w.shape[0]:
            raise ValueError(f"signal {sig.source!r} has {sig.values.shape[0]} values; design has {w.shape[0]} rows")
        bias = float(w @ sig.values)
        bias_sd = float(bias / sd) if np.isfinite(sd) and sd > 0 else float("nan")
        if abs(bias) < 1e-12 * max(1.0, float(np.abs(sig.values).max())):
            bias, bias_sd = 0.0, 0.0
        entries.append({"source": sig.source, "label": sig.label, "bias": bias, "bias_sd": bias_sd,
                        "unit": sig.unit, "typical": sig.typical,
                        "cause": CAUSE_OF_SOURCE.get(sig.family, "sensitive_unmodeled_signal")})
        a = abs(bias_sd) if np.isfinite(bias_sd) else 0.0
        if a >= thresholds.sensitivity_warn:
            sev = "fail" if a >= thresholds.sensitivity_fail else "warn"
            direction = "lowers" if bias < 0 else "raises"
            findings.append(Finding(
                code="sensitive_unmodeled_signal", severity=sev, contrast=name,
                title=f"{name} is sensitive to an unmodelled signal ({sig.source})",
                message=f"{sig.label[0].upper() + sig.label[1:]} {direction} {name} by "
                        f"{abs(bias_sd):.2f} σ.",
                evidence={"source": sig.source, "label": sig.label, "bias": bias, "bias_sd": bias_sd,
                          "unit": sig.unit, "typical": sig.typical},
                score=float(a * sig.typical),
                fix=_fix_for(sig.family),
            ))
    return SensitivityResult(contrast=name, variance=float(var), entries=tuple(entries), findings=tuple(findings))


def _fix_for(family: str) -> str:
    return {
        "nonsteady": "Pass sample_masks from load_confounds to FirstLevelModel.fit, or add the "
                     "non_steady_state_outlier* columns as confounds.",
        "unmodeled": "Model the unmodelled event type as its own condition.",
        "short_gaps": "Model cue/transition periods, or lengthen fixation between blocks.",
        "run_start": "Discard the first volumes (sample mask) and put fixation inside the run.",
        "slow_drift": "Lower high_pass only as far as the task allows; check drift_overlap.",
        "hrf_derivative": "Use hrf_model='glover + derivative' (or '+ derivative + dispersion').",
        "hrf_dispersion": "Use hrf_model='glover + derivative + dispersion'.",
        "rt": "Model RT-proportional activity per condition, or drop the shared RT regressor.",
    }.get(family, "Model the signal or interpret a differential contrast.")
