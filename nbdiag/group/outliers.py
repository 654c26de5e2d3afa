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


def _get(d: Any, *keys: Any, default: Any = None) -> Any:
    for k in keys:
        if not isinstance(d, Mapping) or k not in d:
            return default
        d = d[k]
    return d


def _threshold(rec: Mapping[str, Any], key: str) -> float:
    value = _num(_get(rec, "settings", "thresholds", key))
    return THRESHOLD_TABLE[key][0] if value is None else value


def _values(rec: Mapping[str, Any]) -> Iterable[tuple[str, str, float, str]]:
    """(metric, item, value, mask) of one record, every item (exceeding or not)."""
    diag = rec.get("diagnostics") or {}
    masks = _get(diag, "censoring", "masks", default={}) or {}
    key = "applied" if masks.get("applied") else "load_confounds" if masks.get("load_confounds") else None
    if key:
        mask = masks[key]
        for name, c in (mask.get("conditions") or {}).items():
            v = _num(_get(c, "fraction"))
            if v is not None:
                yield "censor_fraction_condition", str(name), v, key
        v = _num(_get(mask, "run", "fraction"))
        if v is not None:
            yield "censor_fraction_run", "", v, key
    series = _get(diag, "motion", "series", default={}) or {}
    for name, v in (_get(series, "framewise_displacement", "mean", "conditions", default={}) or {}).items():
        if _num(v) is not None:
            yield "motion_fd_condition", str(name), float(v), ""
    best: dict[str, float] = {}
    for s in series.values():
        for reg, r in (_get(s, "r", default={}) or {}).items():
            if _num(r) is not None:
                best[str(reg)] = max(best.get(str(reg), 0.0), abs(float(r)))
    for reg, r in best.items():
        yield "motion_task_r", reg, r, ""
    for name, c in (rec.get("contrasts") or {}).items():
        if not isinstance(c, Mapping):
            continue
        v = _num(c.get("cvif"))
        if v is not None:
            yield "contrast_vif", str(name), v, ""
        sizes = [size for m in (c.get("measured") or {}).values() if isinstance(m, Mapping)
                 for size in [_largest_cause(m)] if size is not None]
        if sizes:
            yield "measured_bias", str(name), max(sizes), ""


def _largest_cause(m: Mapping[str, Any]) -> float | None:
    """Largest |cause part| / SE of one measured signal's estimate; None when no cause part is distinct."""
    se = _num(m.get("se"))
    if m.get("in_model") or se is None or se <= 0:
        return None
    kinds, ts = m.get("by_class_kind") or {}, m.get("by_class_t") or {}
    parts = []
    for k, raw in (m.get("by_class") or {}).items():
        v, t = _num(raw), _num(ts.get(k))
        if kinds.get(k) == "cause" and v is not None and t is not None and abs(t) >= DISTINCT_T:
            parts.append(abs(v) / se)
    return max(parts) if parts else None


def outlier_table(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """``group/nbdiag_outliers.tsv`` (module docstring), rows in metric order, then run order."""
    records = [r for r in records if isinstance(r, Mapping) and r.get("status") != "error"]
    rows: list[dict[str, Any]] = []
    # efficiency is judged against the group: median of each (variant, contrast)
    eff: dict[tuple[str, str], list[float]] = {}
    for rec in records:
        for name, c in (rec.get("contrasts") or {}).items():
            v = _num(_get(c, "efficiency"))
            if v is not None:
                eff.setdefault((str(rec.get("variant")), str(name)), []).append(v)
    median = {k: float(np.median(v)) for k, v in eff.items()}
    for rec in records:
        run = rec.get("run") or {}
        ident = {"subject": run.get("subject"), "session": run.get("session"), "run": run.get("run"),
                 "variant": rec.get("variant"), "prefix": run.get("prefix")}
        items = list(_values(rec))
        for name, c in (rec.get("contrasts") or {}).items():
            v = _num(_get(c, "efficiency"))
            med = median.get((str(rec.get("variant")), str(name)))
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
