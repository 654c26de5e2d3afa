"""Motion per condition and stimulus-correlated motion (AFNI's "ave mot per sresp", MRIQC's request).

From fMRIPrep's confounds file (the table already read for the run, nothing is
re-read): ``framewise_displacement`` (Power et al. 2012, mm), ``std_dvars``
(standardised DVARS) and ``dvars`` (raw DVARS). For each present column:

``mean``
    per condition (scans where the condition's response is "in": the
    definition of :mod:`nbdiag.diagnostics.censoring`), in the baseline (scans in
    no condition) and over the run; non-finite values (fMRIPrep writes the first
    row as n/a) are skipped. AFNI's "ave mot per sresp (orig)" is the same mean of
    its motion enorm over a class's response TRs.
``mean_kept``
    the same over the scans the fit keeps (AFNI's "(cens)" version); equal to
    ``mean`` when no sample mask is applied.
``mean_by_events``
    the same means over the scans acquired while an event of the condition is on
    (:func:`nbdiag.diagnostics.censoring.event_activity`), and over scans with no event.
``r``
    Pearson r between the column and every task regressor over all acquired
    scans with a finite value (the regressors before any sample mask): the
    stimulus-correlated-motion metric MRIQC users asked for (events convolved,
    correlated with FD/DVARS).

``motion_task_correlated`` fires when |r| ≥ ``motion_corr_warn`` (warn) or
``motion_corr_fail`` (fail); ``motion_columns_missing`` (info) names the columns
a confounds file lacks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd

from nbdiag.core import codes
from nbdiag.design.context import DesignContext
from nbdiag.diagnostics.censoring import Prepared, prepare
from nbdiag.core.findings import Finding
from nbdiag.core.thresholds import Thresholds

#: the columns read, in the order reported
MOTION_COLUMNS = ("framewise_displacement", "std_dvars", "dvars")


@dataclass(frozen=True)
class MotionResult:
    """Record section ``diagnostics.motion`` and its findings."""

    section: dict[str, Any]
    findings: tuple[Finding, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return self.section


def _mean(values: np.ndarray, where: np.ndarray) -> float | None:
    v = values[where & np.isfinite(values)]
    return float(v.mean()) if v.size else None


def _pearson(y: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Pearson r of ``y`` with every column of ``X`` over the rows where ``y`` is finite (NaN when constant)."""
    ok = np.isfinite(y)
    yc = y[ok] - y[ok].mean()
    Xc = X[ok] - X[ok].mean(axis=0)
    den = np.linalg.norm(Xc, axis=0) * np.linalg.norm(yc)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (Xc.T @ yc) / den
    return np.where(den > 0, np.clip(r, -1, 1), np.nan)


def assess_motion(design: pd.DataFrame, roles: Mapping[str, str], context: DesignContext,
                  thresholds: Thresholds | None = None,
                  prepared: Prepared | None = None,
                  ) -> MotionResult:
    """Motion per condition, baseline and run, and its correlation with the task regressors (module docstring).

    ``prepared``: :func:`nbdiag.diagnostics.censoring.prepare`'s result, when the caller has it.
    """
    th = thresholds or Thresholds()
    if context.motion is None:
        return MotionResult(section={"source": None, "columns": [], "missing": [],
                                     "note": "no fMRIPrep confounds file read for this run (confounds_strategy none, "
                                             "a saved design, or no file next to the image): motion per condition "
                                             "not computed"})
    task, _, act, by_events = prepared or prepare(design, roles, context)
    n = len(task)
    present = [c for c in MOTION_COLUMNS if c in context.motion and len(context.motion[c]) == n]
    missing = [c for c in MOTION_COLUMNS if c not in present]
    baseline = np.ones(n, dtype=bool)
    for a in act.values():
        baseline &= ~a
    kept = np.ones(n, dtype=bool)
    if context.scan_index is not None:
        kept[:] = False
        kept[np.asarray(context.scan_index, dtype=int)] = True
    T = task.to_numpy(dtype=float)
    tcols = [str(c) for c in task.columns]
    columns: dict[str, Any] = {}
    findings: list[Finding] = []
    for col in present:
        y = np.asarray(context.motion[col], dtype=float)
        r = _pearson(y, T) if T.shape[1] and np.isfinite(y).sum() > 2 else np.full(T.shape[1], np.nan)
        columns[col] = {
            "mean": {"run": _mean(y, np.ones(n, dtype=bool)), "baseline": _mean(y, baseline),
                     "conditions": {k: _mean(y, a) for k, a in act.items()}},
            "mean_kept": {"run": _mean(y, kept), "baseline": _mean(y, baseline & kept),
                          "conditions": {k: _mean(y, a & kept) for k, a in act.items()}},
            "mean_by_events": None if by_events is None else {
                "baseline": _mean(y, ~np.any(np.array(list(by_events.values()) or [np.zeros(n, bool)]), axis=0)),
                "conditions": {k: _mean(y, a) for k, a in by_events.items()}},
            "r": {c: (float(v) if np.isfinite(v) else None) for c, v in zip(tcols, r)},
        }
        for c, v in zip(tcols, r):
            if not np.isfinite(v) or abs(v) < th.motion_corr_warn:
                continue
            sev = "fail" if abs(v) >= th.motion_corr_fail else "warn"
            limit = th.motion_corr_fail if sev == "fail" else th.motion_corr_warn
            findings.append(codes.MOTION_TASK_CORRELATED.finding(
                severity=sev, title=f"{col} is correlated with {c} (r = {v:.2f})",
                message=(f"Pearson r between the confounds file's {col} and task regressor {c} is {v:.3f} "
                         f"(|r| ≥ {limit:g}): the participant moved with the task. Motion artefacts then load on "
                         f"{c}'s beta, and motion confounds remove part of its signal."),
                evidence={"column": col, "regressor": c, "r": float(v), "threshold": limit,
                          "motion_corr_warn": th.motion_corr_warn, "motion_corr_fail": th.motion_corr_fail,
                          "threshold_source": "AFNI 1d_tool.py tiers (0.4 medium, 0.7 high)"},
                score=abs(float(v)) / max(th.motion_corr_warn, 1e-9)))
    if missing:
        findings.append(codes.MOTION_COLUMNS_MISSING.finding(
            message=(f"The confounds file has no {', '.join(missing)} column"
                     + ("s" if len(missing) > 1 else "") + ": motion per condition and its correlation with the "
                     "task are reported for " + (", ".join(present) if present else "no column") + "."),
            evidence={"missing": missing, "present": present}))
    section = {"source": "confounds", "columns": present, "missing": missing, "in_fraction_rule": "censoring",
               "kept_scans": int(kept.sum()), "series": columns}
    return MotionResult(section=section, findings=tuple(findings))
