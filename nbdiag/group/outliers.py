"""The group outlier table (``group/nbdiag_outliers.tsv``): AFNI's ``gen_ss_review_table.py -report_outliers``.

AFNI lists, per review metric and threshold, the subjects whose value exceeds it. nbdiag
does the same from the records' key numbers, one row per run × variant × item that
exceeds its threshold (an empty table, with its header, when none does):

``censor_fraction_condition``
    fraction of a condition's scans censored (item: the condition); ``censor_condition_info`` ≥
``censor_fraction_run``
    fraction of the run's scans censored; ``censor_run_info`` ≥
``motion_fd_condition``
    mean framewise_displacement (mm) over the condition's scans (item: the condition); ``outlier_fd_mean`` ≥
``motion_task_r``
    largest |r| of FD / std_dvars / dvars with a task regressor (item: the regressor); ``motion_corr_warn`` ≥
``contrast_vif``
    contrast VIF (item: the contrast); ``cvif_warn`` ≥
``efficiency``
    efficiency ÷ the median of the same variant and contrast over all run × variants (item: the
    contrast); ``outlier_efficiency_fraction`` <
``measured_bias``
    largest cause part of a measured signal's estimate on the contrast (global_signal, csf,
    white_matter not in the model; only parts of a cause class, distinguishable from zero:
    ``|t| >= DISTINCT_T``), in standard errors of that estimate, i.e. the σ the run-level
    severity uses (item: the contrast); ``sensitivity_fail`` ≥. A contrast whose measured
    estimate no cause explains has no row, whatever its own t.

Censoring uses the mask the fit applies, else load_confounds' mask (column ``mask``).
Thresholds are read from each record's ``settings.thresholds`` (the ``[thresholds]`` table
of the config the participant level ran with: set ``outlier_fd_mean = 0.5`` there), so the
group level needs no config; a record without a key uses the default.

Columns: ``metric``, ``item``, ``value``, ``comparison``, ``threshold``, ``threshold_key``,
``subject``, ``session``, ``run``, ``variant``, ``prefix``, ``mask``.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from nbdiag.core.jsonio import finite_number as _num
from nbdiag.core.thresholds import DISTINCT_T, THRESHOLD_TABLE
from nbdiag.record.model import ABSENT, ContrastMeasuredSignal, Diagnostics, RunRecord, as_run_record

OUTLIER_COLUMNS = ["metric", "item", "value", "comparison", "threshold", "threshold_key", "subject", "session", "run",
                   "variant", "prefix", "mask"]

#: metric -> (threshold key, comparison, what the value is)
METRICS = {
    "censor_fraction_condition": ("censor_condition_info", "≥", "fraction of the condition's scans censored"),
    "censor_fraction_run": ("censor_run_info", "≥", "fraction of the run's scans censored"),
    "motion_fd_condition": ("outlier_fd_mean", "≥", "mean framewise_displacement (mm) over the condition's scans"),
    "motion_task_r": ("motion_corr_warn", "≥",
                      "largest |r| of framewise_displacement / std_dvars / dvars with the task regressor"),
    "contrast_vif": ("cvif_warn", "≥", "contrast VIF"),
    "efficiency": ("outlier_efficiency_fraction", "<", "efficiency ÷ median efficiency of the contrast (same variant)"),
    "measured_bias": ("sensitivity_fail", "≥", "largest cause part (|t| ≥ 3) of a measured signal's estimate on the "
                                               "contrast, in SE of that estimate (σ)"),
}


def _threshold(rec: RunRecord, key: str) -> float:
    value = _num(rec.settings.thresholds.get(key))
    return THRESHOLD_TABLE[key][0] if value is None else value


def _censoring_values(diag: Diagnostics) -> Iterable[tuple[str, str, float, str]]:
    """Censored fraction per condition and of the run, under the mask applied (else load_confounds')."""
    if diag.censoring is ABSENT:
        return
    masks = diag.censoring.masks
    mask, key = (masks.applied, "applied") if masks.applied is not None else (masks.load_confounds, "load_confounds")
    if mask is None:
        return
    for name, c in mask.conditions.items():
        v = _num(c.fraction)
        if v is not None:
            yield "censor_fraction_condition", str(name), v, key
    v = _num(mask.run.fraction)
    if v is not None:
        yield "censor_fraction_run", "", v, key


def _motion_values(diag: Diagnostics) -> Iterable[tuple[str, str, float, str]]:
    """Mean framewise displacement per condition, largest |r| of a motion series with each task regressor
    (``diagnostics.motion.series``: per-column detail, free-form in the record's schema)."""
    series = (diag.motion.series or {}) if diag.motion is not ABSENT else {}
    fd = series.get("framewise_displacement") or {}
    for name, v in ((fd.get("mean") or {}).get("conditions") or {}).items():
        if _num(v) is not None:
            yield "motion_fd_condition", str(name), float(v), ""
    best: dict[str, float] = {}
    for s in series.values():
        for reg, r in (s.get("r") or {}).items():
            if _num(r) is not None:
                best[str(reg)] = max(best.get(str(reg), 0.0), abs(float(r)))
    for reg, r in best.items():
        yield "motion_task_r", reg, r, ""


def _values(rec: RunRecord) -> Iterable[tuple[str, str, float, str]]:
    """(metric, item, value, mask) of one record, every item (exceeding or not)."""
    if rec.diagnostics is not ABSENT:
        yield from _censoring_values(rec.diagnostics)
        yield from _motion_values(rec.diagnostics)
    for name, c in (rec.contrasts or {}).items():
        v = _num(c.cvif)
        if v is not None:
            yield "contrast_vif", str(name), v, ""
        sizes = [size for m in (c.measured or {}).values() for size in [_largest_cause(m)] if size is not None]
        if sizes:
            yield "measured_bias", str(name), max(sizes), ""


def _largest_cause(m: ContrastMeasuredSignal) -> float | None:
    """Largest |cause part| / SE of one measured signal's estimate; None when no cause part is distinct."""
    se = _num(m.se)
    if m.in_model or se is None or se <= 0:
        return None
    kinds, ts = m.by_class_kind or {}, m.by_class_t or {}
    parts = []
    for k, raw in (m.by_class or {}).items():
        v, t = _num(raw), _num(ts.get(k))
        if kinds.get(k) == "cause" and v is not None and t is not None and abs(t) >= DISTINCT_T:
            parts.append(abs(v) / se)
    return max(parts) if parts else None


def outlier_table(records: Iterable[RunRecord | Mapping[str, Any]]) -> pd.DataFrame:
    """``group/nbdiag_outliers.tsv`` (module docstring), rows in metric order, then run order.
    ``records``: typed records (a record's JSON is read once with ``RunRecord.from_json``)."""
    typed = [r for r in map(as_run_record, records) if r.status != "error"]
    rows: list[dict[str, Any]] = []
    # efficiency is judged against the group: median of each (variant, contrast)
    eff: dict[tuple[str, str], list[float]] = {}
    for rec in typed:
        for name, c in (rec.contrasts or {}).items():
            v = _num(c.efficiency)
            if v is not None:
                eff.setdefault((rec.variant, str(name)), []).append(v)
    median = {k: float(np.median(v)) for k, v in eff.items()}
    for rec in typed:
        run = rec.run
        ident = {"subject": run.subject, "session": run.session, "run": run.run,
                 "variant": rec.variant, "prefix": run.prefix}
        items = list(_values(rec))
        for name, c in (rec.contrasts or {}).items():
            v = _num(c.efficiency)
            med = median.get((rec.variant, str(name)))
            if v is not None and med:
                items.append(("efficiency", str(name), v / med, ""))
        for metric, item, value, mask in items:
            key, cmp, _ = METRICS[metric]
            limit = _threshold(rec, key)
            if (value >= limit) if cmp == "≥" else (value < limit):
                rows.append({"metric": metric, "item": item, "value": value, "comparison": cmp, "threshold": limit,
                             "threshold_key": key, **ident, "mask": mask})
    order = {m: i for i, m in enumerate(METRICS)}
    rows.sort(key=lambda r: (order[r["metric"]], str(r["item"]), str(r["subject"]), str(r["session"]),
                             str(r["run"]), str(r["variant"]), str(r["prefix"])))
    return pd.DataFrame(rows, columns=OUTLIER_COLUMNS)


def outlier_sections(table: pd.DataFrame) -> list[dict[str, Any]]:
    """The group page's view: per metric, its threshold and the runs that exceed it."""
    out = []
    for metric, (key, cmp, what) in METRICS.items():
        part = table[table["metric"] == metric] if len(table) else table
        out.append({"metric": metric, "what": what, "key": key, "comparison": cmp,
                    "thresholds": (sorted({float(t) for t in part["threshold"]}) if len(part)
                                   else [THRESHOLD_TABLE[key][0]]),
                    "rows": part.fillna("").to_dict("records")})
    return out
