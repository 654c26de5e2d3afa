"""The group page's first screen: ``<table id="verdict">``, one row per variant × contrast.

Each row answers from the group attribution table (``group/nbdiag_attribution.tsv``) and
the run records, with no new statistics:

* **group estimate**: the measured global-signal estimate of the contrast, mean ± SEM
  across subjects with its one-sample t and n (the ``measured:<signal>:total`` row);
* **causes**: the parts that are causes (not model terms) and distinguishable from zero,
  in words, with mean ± SEM, t and the number of subjects in which the part is non-zero
  (``contributing``). The table's ``kind`` (``cause`` | ``term`` | ``total``) and
  ``distinct`` columns decide when present; without them a measured class is a cause
  unless it is a condition or the implicit baseline (fixation), and it is distinguishable
  when ``|t| >= 3`` (``DISTINCT_T``) with at least 2 contributing subjects;
* **runs failing**: runs of the variant whose status is ``fail`` with a failing finding
  on that contrast or on the whole run; runs that could not be audited are counted
  apart, as errors;
* **fix**: the nilearn-terms fix of the largest distinguishable cause, else of the
  finding that fails the most runs.

Contrasts are ordered single-condition first (weights summing to a non-zero value: the
condition against the implicit baseline), then differential ones (weights summing to 0).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Mapping, Sequence

import pandas as pd

from nbdiag.core import codes
from nbdiag.core.labels import class_kind
from nbdiag.core.thresholds import DISTINCT_T
from nbdiag.record.model import ABSENT, ContrastEntry, FindingRecord, RunRecord, as_run_record
from nbdiag.core.jsonio import finite_number as _num

__all__ = ["DISTINCT_T", "contrast_kind", "pm", "tstat", "verdict_rows"]

#: Fallback rule when the attribution table has no ``distinct`` column: |t| at least
#: ``DISTINCT_T`` (3, the run-level rule, nbdiag.core.thresholds) ...
#: ... with at least this many contributing subjects.
DISTINCT_MIN_SUBJECTS = 2
#: Finding code that owns each measured cause class (its fix is the row's fix).
CODE_OF_CLASS = {"nonsteady": codes.NONSTEADY_UNHANDLED.code, "unmodeled_event": codes.BASELINE_UNMODELED_EVENTS.code,
                 "short_gap": codes.BASELINE_SHORT_GAPS.code, "run_edge": codes.BASELINE_EDGE_CONCENTRATED.code,
                 "high_motion": codes.SCRUB_NOT_APPLIED.code}


def pm(mean: float | None, sem: float | None, unit: str = " %") -> str:
    """``−0.67 ± 0.13 %`` (``n/a`` without a mean; no ``±`` without a SEM), with a true minus sign."""
    if mean is None:
        return "n/a"
    text = f"{mean:+.2f}" + (f" ± {sem:.2f}" if sem is not None else "") + unit
    return text.replace("-", "−")


def tstat(t: float | None) -> str:
    """``t = −1.0`` (``t n/a`` when there is no SEM: fewer than 2 subjects or no spread)."""
    return "t n/a" if t is None else f"t = {t:.1f}".replace("-", "−")


def contrast_kind(stats: ContrastEntry) -> str:
    """``single`` (weights sum to a non-zero value) or ``differential`` (they sum to 0)."""
    if stats.kind in ("single", "differential"):
        return str(stats.kind)
    total = sum(float(w) for w in (stats.vector or {}).values() if _num(w) is not None)
    return "differential" if abs(total) < 1e-9 else "single"


def _label(rec: RunRecord) -> str:
    return str(rec.run.prefix or "unknown-run")


def _is_cause(row: Mapping[str, Any], has_kind: bool) -> bool:
    if has_kind:
        return str(row.get("kind")) == "cause"
    source = str(row["source"])
    if source.endswith(":total"):
        return False
    if source.startswith("measured:"):
        cls = source.split(":", 2)[2]
        return class_kind(cls) == "cause"
    return True


def _distinct(row: Mapping[str, Any], has_distinct: bool, contributing: int) -> bool:
    if has_distinct:
        value = row.get("distinct")
        return bool(value) and str(value).lower() not in ("false", "0", "nan", "")
    t = _num(row.get("t"))
    return t is not None and abs(t) >= DISTINCT_T and contributing >= DISTINCT_MIN_SUBJECTS


#: The umbrella code of the sensitivity check: its fix is the cause's own, so a specific code is preferred.
_UMBRELLA = codes.SENSITIVE_UNMODELED_SIGNAL.code


#: a failing finding and the run it is about (its label)
Hit = tuple[str, FindingRecord]


def _failing(recs: Sequence[RunRecord], contrast: str) -> tuple[list[str], list[Hit]]:
    """Runs failing on ``contrast`` (status fail, a failing finding on it or on the whole run) and those findings."""
    labels: list[str] = []
    hits: list[Hit] = []
    for rec in recs:
        if rec.status != "fail":
            continue
        mine = [f for f in rec.findings if f.severity == "fail" and f.contrast in (contrast, None)]
        if mine:
            labels.append(_label(rec))
            hits += [(_label(rec), f) for f in mine]
    return labels, hits


def _size(f: FindingRecord) -> float:
    v = _num(f.evidence.get("bias_sd"))   # evidence: per-code detail, free-form in the record's schema
    return abs(v) if v is not None else 0.0


def _main_fix(hits: Sequence[Hit]) -> tuple[str | None, str | None]:
    """The code whose fix would remove most: the most failing runs, then the largest |bias| (σ)."""
    by_code: dict[str, list[Hit]] = {}
    for hit in hits:
        by_code.setdefault(str(hit[1].code), []).append(hit)
    specific = {c: v for c, v in by_code.items() if c != _UMBRELLA} or by_code
    code = min(specific, key=lambda c: (-len({run for run, _ in specific[c]}),
                                         -max(_size(f) for _, f in specific[c]), c))
    return code, _fix_of(code, [f for _, f in specific[code]])


def _fix_of(code: str, findings: Sequence[FindingRecord]) -> str | None:
    texts = Counter(str(f.fix) for f in findings if f.code == code and f.fix)
    if texts:
        return texts.most_common(1)[0][0]
    try:
        return codes.get(code).fix
    except (KeyError, ValueError):
        return None


def _contrast_order(records: Sequence[RunRecord]) -> tuple[list[str], dict[str, str]]:
    """Contrasts in display order (single ones first, then first seen) and the kind of each."""
    kinds: dict[str, str] = {}
    order: dict[str, int] = {}
    for rec in records:
        for name, stats in (rec.contrasts or {}).items():
            kinds.setdefault(name, contrast_kind(stats))
            order.setdefault(name, len(order))
    return sorted(order, key=lambda c: (kinds[c] != "single", order[c])), kinds


def _estimate(sub: pd.DataFrame, signal: str, has_distinct: bool) -> dict[str, Any] | None:
    """The measured total of ``signal`` for one variant × contrast, or None without one."""
    total_rows = sub[sub["source"] == f"measured:{signal}:total"] if len(sub) else sub
    if not len(total_rows):
        return None
    tr = total_rows.iloc[0]
    n = int(tr["n_subjects"])
    estimate = {"mean": _num(tr["mean"]), "sem": _num(tr["sem"]), "t": _num(tr["t"]), "n": n,
                "distinct": _distinct(tr, has_distinct, n), "signal": signal}
    estimate["text"] = pm(estimate["mean"], estimate["sem"])
    estimate["stat"] = f"{tstat(estimate['t'])}, n = {n}"
    return estimate


def _causes(sub: pd.DataFrame, signal: str, has_kind: bool, has_distinct: bool,
            counts: Mapping[tuple[str, str, str], tuple[int, int]], variant: str, contrast: str,
            estimate: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The cause rows distinguishable from zero (measured ones, else predicted ones), largest first."""
    from nbdiag.report.words import source_words

    measured = sub[sub["source"].astype(str).str.startswith(f"measured:{signal}:")] if len(sub) else sub
    pool = measured if len(measured) else (
        sub[sub["source"].astype(str).str.startswith("predicted:")] if len(sub) else sub)
    causes = []
    for row in pool.to_dict("records"):
        if not _is_cause(row, has_kind):
            continue
        contributing, of = counts.get((variant, contrast, str(row["source"])), (int(row["n_subjects"]),
                                                                                int(row["n_subjects"])))
        if not _distinct(row, has_distinct, contributing):
            continue
        source = str(row["source"])
        share = _num(row.get("share")) if estimate and estimate["distinct"] else None
        causes.append({"words": source_words(source), "source": source, "mean": _num(row["mean"]),
                       "sem": _num(row["sem"]), "t": _num(row["t"]), "n": contributing, "of": of,
                       "share": share,
                       "text": pm(_num(row["mean"]), _num(row["sem"])), "stat": tstat(_num(row["t"]))})
    causes.sort(key=lambda c: -abs(c["mean"] or 0.0))
    return causes


def _fix(causes: list[dict[str, Any]], hits: list[Hit],
         recs: Sequence[RunRecord]) -> tuple[str | None, str | None]:
    """``(fix code, fix text)``: the largest cause's code, else the code whose fix removes most."""
    if causes:
        src = causes[0]["source"]
        fix_code = (CODE_OF_CLASS.get(src.split(":", 2)[2]) if src.startswith("measured:")
                    else src.split(":", 1)[1])
        fix = None
        if fix_code:
            fix = _fix_of(fix_code, [f for _, f in hits if f.code == fix_code] or
                          [f for r in recs for f in r.findings])
        return fix_code, fix
    if hits:
        return _main_fix(hits)
    return None, None


def _error_message(rec: RunRecord) -> str:
    return str((rec.error.message if rec.error is not ABSENT and rec.error is not None else "") or "")


def verdict_rows(records: Sequence[RunRecord | Mapping[str, Any]], attribution: pd.DataFrame | None,
                 contributing: Mapping[tuple[str, str, str], tuple[int, int]] | None = None,
                 signal: str = "global_signal") -> list[dict[str, Any]]:
    """The rows of the group verdict table (see the module doc), in display order.

    ``contributing``: :func:`nbdiag.group.summary.contributing_subjects` of ``records``; without it
    every subject of a row counts as contributing. ``records``: typed (a record's JSON is read once
    with ``RunRecord.from_json``); the attribution table's rows are read by column name.
    """
    from nbdiag.report.words import code_words

    table = attribution if attribution is not None else pd.DataFrame()
    has_kind = "kind" in table.columns
    has_distinct = "distinct" in table.columns
    counts = contributing or {}
    typed = [as_run_record(r) for r in records]
    contrasts, kinds = _contrast_order(typed)
    variants = sorted({r.variant for r in typed})
    rows: list[dict[str, Any]] = []
    for variant in variants:
        recs = [r for r in typed if r.variant == variant]
        errors = [r for r in recs if r.status == "error"]
        part = table[(table["variant"].astype(str) == variant)] if len(table) else table
        for contrast in contrasts:
            sub = part[part["contrast"].astype(str) == contrast] if len(part) else part
            estimate = _estimate(sub, signal, has_distinct)
            causes = _causes(sub, signal, has_kind, has_distinct, counts, variant, contrast, estimate)
            failing, hits = _failing(recs, contrast)
            fix_code, fix = _fix(causes, hits, recs)
            rows.append({"variant": variant, "contrast": contrast, "kind": kinds[contrast], "estimate": estimate,
                         "causes": causes, "failing": failing, "n_runs": len(recs),
                         "errors": [(_label(r), _error_message(r)) for r in errors],
                         "fix": fix, "fix_code": fix_code, "fix_words": code_words(fix_code) if fix_code else None})
    return rows
