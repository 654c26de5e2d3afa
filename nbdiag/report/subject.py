"""Subject report: one self-contained HTML file per subject (README: "Outputs").

The report renders run records (docs/record.md) and the design TSVs written next to
them; it computes no statistics. Every name coming from input files is escaped by
Jinja2's autoescape; figures are inline SVG (text kept as escaped ``<text>``) or
base64 PNG.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import re
from pathlib import Path
from typing import Any, Hashable, Iterable, Mapping, Sequence

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from nbdiag.outputs.files import atomic_write_text
from nbdiag.core.labels import class_label
from nbdiag.record.model import (ABSENT, Baseline, CensorMask, ContrastEntry, FindingRecord, RunRecord,
                                 RunSettings)
from nbdiag.report.access import Record, opt, present_fields, thresholds_of, typed
from nbdiag.report.measured import measured_view
from nbdiag.report.palette import SEVERITIES
from nbdiag.report.run_figures import run_figures

__all__ = ["render_subject_report", "get_env", "subject_label", "section_id"]

_STATUS_ORDER = ("pass", "warn", "fail", "error")


# --------------------------------------------------------------------------- helpers
@functools.lru_cache(maxsize=1)
def get_env() -> Environment:
    """Jinja2 environment with autoescape on and the report filters (cached: templates
    are compiled once per process)."""
    env = Environment(
        loader=PackageLoader("nbdiag.report", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = fmt_num
    env.filters["pct"] = fmt_pct
    env.filters["short"] = lambda v, n=160: v if len(str(v)) <= n else str(v)[: n - 1] + "…"
    env.filters["sev"] = lambda s: s if s in SEVERITIES else "unknown"
    env.globals["static"] = _static
    return env


@functools.lru_cache(maxsize=None)
def _static(name: str) -> Markup:
    """Contents of a shipped CSS/JS file, to be inlined."""
    text = (Path(__file__).parent / "templates" / name).read_text(encoding="utf-8")
    # never allow the inlined text to close its element early
    return Markup(text.replace("</", "<\\/") if name.endswith(".js") else text.replace("</style", ""))


def _baseline_epochs(record: Record, base: Baseline | None) -> tuple[str, str]:
    """The design facts' baseline-epoch count, with the definition the ``baseline_scarce`` finding uses:
    fixation or run-edge epochs of at least ``baseline_epoch_seconds`` (all unmodelled epochs in brackets)."""
    label = f"baseline epochs ≥ {thresholds_of(record).baseline_epoch_seconds:g} s"
    if base is None:
        return label, "n/a"
    return label, f"{fmt_num(base.n_long_epochs)} (of {fmt_num(len(base.epochs))} unmodelled)"


def fmt_num(value: Any, digits: int = 3) -> str:
    """Format a number for tables (``n/a`` for null/NaN)."""
    if value is None or isinstance(value, str):
        return "n/a" if value is None else value
    if isinstance(value, bool):
        return "yes" if value else "no"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(v):
        return "n/a"
    if v == 0:
        return "0"
    if abs(v) >= 1000 or abs(v) < 10 ** -(digits):
        return f"{v:.{digits}g}" if abs(v) < 1e6 else f"{v:.2e}"
    return f"{v:.{digits}g}" if abs(v) < 1 else f"{v:.{max(1, digits - len(str(int(abs(v)))))}f}".rstrip("0").rstrip(".")


def fmt_pct(value: Any) -> str:
    """Format a fraction as a percentage."""
    if value is None:
        return "n/a"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    return "n/a" if not math.isfinite(v) else f"{v:.0%}"


def subject_label(record: Record | Mapping[str, Any]) -> str:
    """Subject label (without ``sub-``) of a record."""
    run = typed(record).run
    s = str(run.subject or run.entities.get("sub") or "unknown")
    return s[4:] if s.startswith("sub-") else s


def run_prefix(record: Record | Mapping[str, Any]) -> str:
    """BIDS prefix of the run (``sub-01_task-nback_run-01``)."""
    run = typed(record).run
    if run.prefix:
        return str(run.prefix)
    return "_".join(f"{k}-{v}" for k, v in run.entities.items() if v) or "unknown-run"


def _find_design(record: Record, designs: Mapping[Hashable, pd.DataFrame] | None) -> pd.DataFrame | None:
    if not designs:
        return None
    prefix, variant = run_prefix(record), record.variant
    tsv = opt(record.design.tsv) if isinstance(record, RunRecord) and record.design is not ABSENT else None
    for key in ((prefix, variant), f"{prefix}_desc-{variant}", tsv, Path(str(tsv)).name if tsv else None):
        if key is not None and key in designs:
            return designs[key]
    return None


# --------------------------------------------------------------------------- view model
def _findings_for(record: Record, contrast: str | None) -> list[FindingRecord]:
    if contrast is None:
        return [f for f in record.findings if f.contrast is None]
    mine = [f for f in record.findings if f.contrast == contrast]
    entry = (opt(record.contrasts) or {}).get(contrast)
    pos = {code: i for i, code in enumerate(entry.findings if entry is not None else ())}
    return sorted(mine, key=lambda f: pos.get(f.code, len(pos)))


def _status(record: Record) -> str:
    return record.status if record.status in _STATUS_ORDER else "error"


def _censor_text(mask: CensorMask) -> str:
    parts = [f"{name} {fmt_pct(c.fraction)}" for name, c in mask.conditions.items()]
    parts.append(f"baseline {fmt_pct(mask.baseline.fraction)}")
    parts.append(f"run {fmt_pct(mask.run.fraction)} ({fmt_num(mask.run.n_censored)} scans)")
    return ", ".join(parts) + f"; dof left {fmt_num(mask.dof_left)}"


def reviewer_keynums(record: Record | Mapping[str, Any]) -> list[tuple[str, str]]:
    """Key-number rows with AFNI/FSL reviewers' numbers (censoring and motion per condition,
    correlation tiers, condition numbers by block); empty for records without them."""
    diag = opt(typed(record).diagnostics)
    if diag is None:
        return []
    rows: list[tuple[str, str]] = []
    censoring = opt(diag.censoring)
    if censoring is not None:
        masks = censoring.masks
        if masks.applied is not None:
            rows.append(("censored per condition (mask applied)", _censor_text(masks.applied)))
        if masks.load_confounds is not None and not masks.load_confounds.applied:
            rows.append(("censored per condition if load_confounds' mask were applied",
                         _censor_text(masks.load_confounds)))
    motion = opt(diag.motion)
    if motion is not None:
        rows += _motion_rows(opt(motion.series) or {})
        if motion.missing and motion.source:
            rows.append(("motion columns missing", ", ".join(map(str, motion.missing))))
    coll = opt(diag.collinearity)
    if coll is not None:
        rows += _collinearity_rows(coll)
    return rows


def _motion_rows(series: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, str]]:
    """Mean of each motion column per condition and its largest correlation with a task regressor
    (``diagnostics.motion.series`` is per-column detail, free-form in the schema)."""
    rows = []
    for col, s in series.items():
        means = s.get("mean") or {}
        parts = [f"{k} {fmt_num(v)}" for k, v in (means.get("conditions") or {}).items()]
        parts.append(f"baseline {fmt_num(means.get('baseline'))}")
        r = {k: v for k, v in (s.get("r") or {}).items() if isinstance(v, (int, float))}
        if r:
            top = max(r, key=lambda k: abs(r[k]))
            parts.append(f"largest |r| with a task regressor {fmt_num(r[top])} ({top})")
        rows.append((f"mean {col} per condition", ", ".join(parts)))
    return rows


def _collinearity_rows(coll: Any) -> list[tuple[str, str]]:
    """AFNI's correlation tiers and condition numbers by block, FSL's singular-value ratio."""
    pairs = coll.correlation_pairs
    tiers = {t: sum(p.tier == t for p in pairs) for t in ("identical", "high", "medium")}
    drift = [p for p in pairs if p.pair == "task×drift"]
    text = ", ".join(f"{n} {t}" for t, n in tiers.items() if n) or "none ≥ medium"
    if drift:
        text += "; task×drift: " + ", ".join(f"{'×'.join(p.columns)} {fmt_num(p.r)}" for p in drift[:3])
    rows = [("correlation tiers (AFNI)", text)]
    blocks = [(f.name, getattr(coll.condition_blocks, f.name)) for f in dataclasses.fields(coll.condition_blocks)]
    blocks = [(name, b) for name, b in blocks if b is not ABSENT]
    if blocks:
        parts = [f"{name} {fmt_num(b.afni_condition)} {b.afni_rating or ''}".strip()
                 + (f" ({b.n_near_zero} near-zero)" if b.n_near_zero else "")
                 for name, b in blocks if b.n_columns]
        whole = opt(coll.condition_blocks.whole)
        fsl = None if whole is None else whole.fsl_sv_ratio
        rows.append(("condition number by block (AFNI)", ", ".join(parts)
                     + f"; FSL s_min/s_max {fmt_num(fsl)}"
                     + (" < 1e-7" if whole is not None and whole.fsl_rank_deficient else "")))
    return rows


def _contrast_row(record: Record, name: str, c: ContrastEntry) -> dict[str, Any]:
    """A contrast's row: its numbers, main negative weight, findings and sensitivity entries."""
    from nbdiag.report.summary import contrast_status

    comp = opt(c.baseline_composition)
    neg = comp.negative if comp is not None else {}
    top_neg = sorted(((k, v) for k, v in neg.items() if v is not None and not str(k).startswith("condition:")),
                     key=lambda kv: -kv[1])[:3]
    sens = list(opt(c.sensitivity) or ())
    bias_sd = [abs(s.bias_sd) for s in sens if s.bias_sd is not None]
    fnd = _findings_for(record, name)
    return {
        "name": name, "expression": c.expression, "kind": opt(c.kind),
        "estimable": c.estimable, "variance": opt(c.variance),
        "efficiency": opt(c.efficiency), "cvif": opt(c.cvif), "drift_r2": opt(c.drift_r2),
        "effect_required_pct": opt(c.effect_required_pct),
        "edge_share": comp.edge_share if comp is not None else None,
        "top_negative": [{"label": class_label(k), "share": v} for k, v in top_neg],
        "max_bias_sd": max(bias_sd) if bias_sd else None,
        "explanation": opt(c.explanation),
        "findings": fnd,
        "top_finding": fnd[0] if fnd else None,
        "worst": contrast_status(record, name),
        "sensitivity": sens,
    }


def _contrast_rows(record: Record) -> list[dict[str, Any]]:
    """One row per contrast (:func:`_contrast_row`)."""
    return [_contrast_row(record, name, c) for name, c in (opt(record.contrasts) or {}).items()]


def _facts(record: Record) -> list[tuple[str, str, Any]]:
    """The design facts: ``(name, value, where the value came from)``."""
    settings = record.settings
    run_settings = settings if isinstance(settings, RunSettings) else None
    resolved = {"t_r": settings.t_r} if run_settings is None else {
        "t_r": run_settings.t_r, "slice_time_ref": run_settings.slice_time_ref, "n_scans": run_settings.n_scans}
    value = {k: (None, None) if r is None else (r.value, r.source) for k, r in resolved.items()}
    t_r, stref, n_scans = (value.get(k, (None, None)) for k in ("t_r", "slice_time_ref", "n_scans"))
    facts = [
        ("TR", f"{fmt_num(t_r[0])} s", t_r[1]),
        ("slice_time_ref", fmt_num(stref[0]), stref[1]),
        ("scans", fmt_num(n_scans[0]), n_scans[1]),
    ]
    # model and events settings are nbdiag.config's, free-form in the record's schema
    model = run_settings.model if run_settings is not None else {}
    ev = run_settings.events if run_settings is not None else {}
    for key in ("hrf_model", "drift_model", "high_pass", "drift_order", "confounds_strategy", "confounds_motion",
                "noise_model"):
        if key in model:
            v = model[key]
            facts.append((key, ", ".join(map(str, v)) if isinstance(v, list) else fmt_num(v), None))
    if ev.get("drop"):
        facts.append(("events dropped", ", ".join(map(str, ev["drop"])), None))
    if ev.get("rename"):
        facts.append(("events renamed", ", ".join(f"{k}→{v}" for k, v in ev["rename"].items()), None))
    if ev.get("transform"):
        facts.append(("events transform", str(ev["transform"]), None))
    return facts


def _keynums(record: Record) -> list[tuple[str, str]]:
    """The key-number rows (design, baseline, dof, sample mask, then the reviewers' numbers)."""
    design = opt(record.design)
    sm = opt(design.sample_mask) if isinstance(record, RunRecord) and design is not None else None
    diag = opt(record.diagnostics)
    coll = opt(diag.collinearity) if diag is not None else None
    base = opt(diag.baseline) if diag is not None else None
    confounds = opt(diag.confounds) if diag is not None else None
    roles = [c.role for c in design.columns] if design is not None else []
    return [
        ("design rank / columns", f"{fmt_num(design.rank if design is not None else None)} / "
                                  f"{fmt_num(design.n_columns if design is not None else None)}"),
        ("confound + spike columns", fmt_num(sum(r in ("confound", "spike") for r in roles)) if roles else "n/a"),
        ("condition number", fmt_num(coll.condition_number if coll is not None else None)),
        ("baseline fraction", fmt_pct(base.fraction if base is not None else None)),
        _baseline_epochs(record, base),
        ("residual dof", fmt_num(opt(confounds.dof) if confounds is not None else None)),
        ("sample mask applied", "n/a" if sm is None else "yes" if sm.applied else "no"),
    ] + reviewer_keynums(record)


def _whatif_rows(record: Record) -> list[dict[str, Any]]:
    whatif = []
    for wi in opt(record.whatif) or ():
        for cname, v in wi.contrasts.items():
            whatif.append({"fix": wi.fix, "code": wi.code, "contrast": cname, **present_fields(v),
                           "worse": cname in (opt(wi.worse) or ())})
    return whatif


def _sensitivity_rows(crow: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per unmodelled signal, one column per contrast, with where its size comes from."""
    from nbdiag.report.summary import size_basis

    sens_rows: dict[str, dict[str, Any]] = {}
    for c in crow:
        for srow in c["sensitivity"]:
            key = str(srow.source or srow.label)
            entry = sens_rows.setdefault(key, {"label": str(srow.label or key), "source": srow.source,
                                               "basis": size_basis(srow), "cells": {}})
            entry["cells"][c["name"]] = srow
    return list(sens_rows.values())


def _error_view(record: Record) -> dict[str, Any] | None:
    """The error box's fields (those the record has), or None for a run that was audited."""
    error = opt(record.error) if isinstance(record, RunRecord) else None
    return None if error is None else present_fields(error)


def _variant_view(record: Record, idx: str, design: pd.DataFrame | None,
                  with_figures: bool, base_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    crow = _contrast_rows(record)
    run_record = record if isinstance(record, RunRecord) else None
    design_info = opt(run_record.design) if run_record is not None else None
    return {
        "id": idx,
        "variant": str(record.variant),
        "sensitivity": _sensitivity_rows(crow),
        "status": _status(record),
        "error": _error_view(record),
        "facts": _facts(record),
        "keynums": _keynums(record),
        "warnings": list(opt(design_info.nilearn_warnings) or ()) if design_info is not None else [],
        "contrasts": crow,
        "all_findings": list(record.findings),
        "figs": run_figures(record, design) if with_figures and _status(record) != "error" else {},
        "whatif": _whatif_rows(record),
        "versions": (record.nbdiag_version, record.nilearn_version),
        "files": record.run.files,
        "measured": measured_view(run_record, base_dir) if run_record is not None else None,
        "notes": [str(n) for n in run_record.notes] if run_record is not None else [],
        "skipped_checks": list(record.skipped_checks) if not isinstance(record, RunRecord) else [],
    }


def _comparison(variants: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per contrast: metric rows × variant columns."""
    names: list[str] = []
    for v in variants:
        for c in v["contrasts"]:
            if c["name"] not in names:
                names.append(c["name"])
    out = []
    metrics = [
        ("estimable", "estimable", "num"), ("variance", "variance (noise variance units)", "num"),
        ("efficiency", "efficiency (1/variance)", "num"), ("cvif", "contrast VIF", "num"),
        ("drift_r2", "R² on drift", "num"), ("edge_share", "negative weight at run edges", "pct"),
        ("max_bias_sd", "largest |predicted bias| (σ)", "num"),
    ]
    for name in names:
        cells = {v["id"]: next((c for c in v["contrasts"] if c["name"] == name), None) for v in variants}
        rows = []
        for key, label, kind in metrics:
            rows.append({"label": label, "values": [
                (None if cells[v["id"]] is None else cells[v["id"]].get(key), kind) for v in variants]})
        rows.append({"label": "main negative weight", "values": [
            ("; ".join(f"{t['label']} {fmt_pct(t['share'])}" for t in (cells[v['id']] or {}).get("top_negative", [])[:2])
             or "n/a", "text") for v in variants]})
        tops = []
        for v in variants:
            cell = cells[v["id"]]
            top = None if cell is None else cell["top_finding"]
            tops.append(("n/a" if cell is None else (top.code if top is not None else "none"), "text"))
        rows.append({"label": "top finding", "values": tops})
        out.append({"name": name, "rows": rows})
    return out


def _short_run(prefix: str, subject: str) -> str:
    """Run prefix without the subject (the page is about one subject)."""
    p = str(prefix)
    head = f"sub-{subject}_"
    return p[len(head):] if p.startswith(head) else p


def build_subject_context(subject: str, records: Iterable[Record | Mapping[str, Any]],
                          designs: Mapping[Hashable, pd.DataFrame] | None = None,
                          with_figures: bool = True, base_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Template context of a subject report (exposed for tests). ``base_dir``: the output folder the
    record paths are relative to (BOLD-mode class maps are read from there), None to read nothing."""
    from nbdiag.report.summary import merge_findings, verdict_rows

    runs: dict[str, list[Record]] = {}
    for r in map(typed, records):  # JSON records are read once, here
        runs.setdefault(run_prefix(r), []).append(r)
    run_views = []
    variants_all: list[str] = []
    ordered: list[Record] = []
    for i, (prefix, recs) in enumerate(sorted(runs.items())):
        ordered.extend(recs)
        views = []
        for j, r in enumerate(recs):
            sid = section_id(prefix, r.variant)
            if any(v["id"] == sid for v in views):
                sid = f"{sid}-{j}"
            views.append(_variant_view(r, sid, _find_design(r, designs), with_figures, base_dir))
        for v in views:
            if v["variant"] not in variants_all:
                variants_all.append(v["variant"])
        ent = recs[0].run.entities
        ok = [v for v in views if v["status"] != "error"]
        notes = list(dict.fromkeys(n for v in views for n in v["notes"]))
        run_views.append({"id": f"r{i}", "prefix": prefix, "short": _short_run(prefix, subject), "entities": ent,
                          "variants": views, "findings": merge_findings(recs),
                          "comparison": _comparison(ok), "ok_variants": ok, "notes": notes,
                          "files": views[0]["files"] if views else {}})
    counts = {s: 0 for s in _STATUS_ORDER}
    for rv in run_views:
        for v in rv["variants"]:
            counts[v["status"]] += 1
    versions = next((v["versions"] for rv in run_views for v in rv["variants"]), (None, None))
    verdict = verdict_rows(ordered, section_id)
    # rowspans: run and run × variant cells span their contrast rows
    for k, row in enumerate(verdict):
        row["short"] = _short_run(row["prefix"], subject)
        first_run = k == 0 or verdict[k - 1]["prefix"] != row["prefix"]
        first_var = first_run or verdict[k - 1]["variant"] != row["variant"]
        row["run_span"] = sum(1 for r in verdict if r["prefix"] == row["prefix"]) if first_run else 0
        row["var_span"] = sum(1 for r in verdict if r["prefix"] == row["prefix"] and r["variant"] == row["variant"]) \
            if first_var else 0
    return {
        "subject": subject, "runs": run_views, "variants": variants_all, "counts": counts, "verdict": verdict,
        "nbdiag_version": versions[0], "nilearn_version": versions[1],
    }


_LABEL_OK = re.compile(r"^[A-Za-z0-9]+$")


def section_id(prefix: Any, variant: Any) -> str:
    """HTML id of a run × variant section (``sub-01_task-nback_run-01--nortdur``).

    Characters outside ``[A-Za-z0-9_-]`` become ``_`` so the id is safe in a URL fragment.
    """
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"{prefix}--{variant}")


def render_subject_report(subject: str, records: Sequence[Record | Mapping[str, Any]],
                          designs: Mapping[Hashable, pd.DataFrame] | None,
                          output_path: str | os.PathLike) -> Path:
    """Render one self-contained HTML report for a subject.

    Parameters
    ----------
    subject : str
        Subject label, with or without ``sub-``.
    records : list of RunRecord (or SavedDesignRecord), or of their JSON (dict)
        Run records (docs/record.md) of this subject, one per run × variant; error
        records (``status: "error"``) are shown with their error message. A record given
        as JSON is read once with :func:`nbdiag.record.model.read_record`.
    designs : mapping, optional
        Design DataFrames (indexed by frame times), keyed by ``(prefix, variant)``, by
        ``"<prefix>_desc-<variant>"`` or by the record's ``design.tsv`` name.
        A run without a design simply has no design-matrix figure.
    output_path : path
        HTML file to write, or a directory (then ``<dir>/sub-<label>.html``).

    Returns
    -------
    Path
        The file written (atomically).
    """
    label = subject[4:] if str(subject).startswith("sub-") else str(subject)
    out = Path(output_path)
    if out.is_dir() or out.suffix.lower() != ".html":
        if not _LABEL_OK.match(label):
            raise ValueError(f"subject: BIDS label must be alphanumeric to be used in a file name; got {label!r}")
        out = out / f"sub-{label}.html"
    ctx = build_subject_context(label, records, designs, base_dir=out.parent)
    html = get_env().get_template("subject.html.j2").render(**ctx)
    return atomic_write_text(Path(out), html)
