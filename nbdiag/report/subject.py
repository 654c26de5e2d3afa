"""Subject report: one self-contained HTML file per subject (README: "Outputs").

The report renders run records (docs/record.md) and the design TSVs written next to
them; it computes no statistics. Every name coming from input files is escaped by
Jinja2's autoescape; figures are inline SVG (text kept as escaped ``<text>``) or
base64 PNG.
"""

from __future__ import annotations

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
from nbdiag.core.thresholds import Thresholds
from nbdiag.report.access import get as _get
from nbdiag.report.access import thresholds_of  # noqa: F401 - part of this module's API
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


def _baseline_epochs(record: Mapping[str, Any], base: Mapping[str, Any]) -> tuple[str, str]:
    """The design facts' baseline-epoch count, with the definition the ``baseline_scarce`` finding uses:
    fixation or run-edge epochs of at least ``baseline_epoch_seconds`` (all unmodelled epochs in brackets)."""
    seconds = _get(record, "settings", "thresholds", "baseline_epoch_seconds", default=None)
    seconds = Thresholds().baseline_epoch_seconds if not isinstance(seconds, (int, float)) else seconds
    label = f"baseline epochs ≥ {seconds:g} s"
    if "n_long_epochs" not in base:
        return label, "n/a"
    return label, f"{fmt_num(base.get('n_long_epochs'))} (of {fmt_num(len(base.get('epochs') or []))} unmodelled)"


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


def subject_label(record: Mapping[str, Any]) -> str:
    """Subject label (without ``sub-``) of a record."""
    s = _get(record, "run", "subject") or _get(record, "run", "entities", "sub") or "unknown"
    s = str(s)
    return s[4:] if s.startswith("sub-") else s


def run_prefix(record: Mapping[str, Any]) -> str:
    """BIDS prefix of the run (``sub-01_task-nback_run-01``)."""
    p = _get(record, "run", "prefix")
    if p:
        return str(p)
    ent = _get(record, "run", "entities", default={}) or {}
    return "_".join(f"{k}-{v}" for k, v in ent.items() if v) or "unknown-run"


def _find_design(record: Mapping[str, Any], designs: Mapping[Hashable, pd.DataFrame] | None) -> pd.DataFrame | None:
    if not designs:
        return None
    prefix, variant = run_prefix(record), record.get("variant")
    tsv = _get(record, "design", "tsv")
    for key in ((prefix, variant), f"{prefix}_desc-{variant}", tsv, Path(str(tsv)).name if tsv else None):
        if key is not None and key in designs:
            return designs[key]
    return None


# --------------------------------------------------------------------------- view model
def _findings_for(record: Mapping[str, Any], contrast: str | None) -> list[dict[str, Any]]:
    allf = [f for f in (record.get("findings") or []) if isinstance(f, Mapping)]
    if contrast is None:
        return [f for f in allf if f.get("contrast") is None]
    mine = [f for f in allf if f.get("contrast") == contrast]
    order = (_get(record, "contrasts", contrast, "findings", default=[]) or [])
    pos = {code: i for i, code in enumerate(order)}
    return sorted(mine, key=lambda f: pos.get(f.get("code"), len(pos)))


def _status(record: Mapping[str, Any]) -> str:
    s = record.get("status")
    return s if s in _STATUS_ORDER else "error"


def _censor_text(mask: Mapping[str, Any]) -> str:
    parts = [f"{name} {fmt_pct(c.get('fraction'))}" for name, c in (mask.get("conditions") or {}).items()]
    parts.append(f"baseline {fmt_pct(_get(mask, 'baseline', 'fraction'))}")
    parts.append(f"run {fmt_pct(_get(mask, 'run', 'fraction'))} ({fmt_num(_get(mask, 'run', 'n_censored'))} scans)")
    return ", ".join(parts) + f"; dof left {fmt_num(mask.get('dof_left'))}"


def reviewer_keynums(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Key-number rows with AFNI/FSL reviewers' numbers (censoring and motion per condition,
    correlation tiers, condition numbers by block); empty for records without them."""
    diag = record.get("diagnostics") or {}
    rows: list[tuple[str, str]] = []
    masks = _get(diag, "censoring", "masks", default={}) or {}
    if masks.get("applied"):
        rows.append(("censored per condition (mask applied)", _censor_text(masks["applied"])))
    if masks.get("load_confounds") and not masks["load_confounds"].get("applied"):
        rows.append(("censored per condition if load_confounds' mask were applied",
                     _censor_text(masks["load_confounds"])))
    motion = diag.get("motion") or {}
    for col, s in (motion.get("series") or {}).items():
        means = s.get("mean") or {}
        parts = [f"{k} {fmt_num(v)}" for k, v in (means.get("conditions") or {}).items()]
        parts.append(f"baseline {fmt_num(means.get('baseline'))}")
        r = {k: v for k, v in (s.get("r") or {}).items() if isinstance(v, (int, float))}
        if r:
            top = max(r, key=lambda k: abs(r[k]))
            parts.append(f"largest |r| with a task regressor {fmt_num(r[top])} ({top})")
        rows.append((f"mean {col} per condition", ", ".join(parts)))
    if motion.get("missing") and motion.get("source"):
        rows.append(("motion columns missing", ", ".join(map(str, motion["missing"]))))
    coll = diag.get("collinearity") or {}
    pairs = [p for p in coll.get("correlation_pairs") or [] if isinstance(p, Mapping)]
    if "correlation_pairs" in coll:
        tiers = {t: sum(p.get("tier") == t for p in pairs) for t in ("identical", "high", "medium")}
        drift = [p for p in pairs if p.get("pair") == "task×drift"]
        text = ", ".join(f"{n} {t}" for t, n in tiers.items() if n) or "none ≥ medium"
        if drift:
            text += "; task×drift: " + ", ".join(f"{'×'.join(p['columns'])} {fmt_num(p.get('r'))}" for p in drift[:3])
        rows.append(("correlation tiers (AFNI)", text))
    blocks = coll.get("condition_blocks") or {}
    if blocks:
        parts = [f"{name} {fmt_num(b.get('afni_condition'))} {b.get('afni_rating') or ''}".strip()
                 + (f" ({b['n_near_zero']} near-zero)" if b.get("n_near_zero") else "")
                 for name, b in blocks.items() if b.get("n_columns")]
        fsl = _get(blocks, "whole", "fsl_sv_ratio")
        rows.append(("condition number by block (AFNI)", ", ".join(parts)
                     + f"; FSL s_min/s_max {fmt_num(fsl)}" + (" < 1e-7" if _get(blocks, "whole", "fsl_rank_deficient")
                                                               else "")))
    return rows


def _contrast_rows(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per contrast: its numbers, main negative weight, findings and sensitivity entries."""
    from nbdiag.report.summary import contrast_status

    crow = []
    for name, c in (_get(record, "contrasts", default={}) or {}).items():
        neg = _get(c, "baseline_composition", "negative", default={}) or {}
        top_neg = sorted(((k, v) for k, v in neg.items() if v is not None and not str(k).startswith("condition:")),
                         key=lambda kv: -kv[1])[:3]
        sens = [s for s in (c.get("sensitivity") or []) if isinstance(s, Mapping)]
        bias_sd = [abs(s["bias_sd"]) for s in sens if isinstance(s.get("bias_sd"), (int, float))]
        fnd = _findings_for(record, name)
        crow.append({
            "name": name, "expression": c.get("expression", name), "kind": c.get("kind"),
            "estimable": c.get("estimable"), "variance": c.get("variance"),
            "efficiency": c.get("efficiency"), "cvif": c.get("cvif"), "drift_r2": c.get("drift_r2"),
            "effect_required_pct": c.get("effect_required_pct"),
            "edge_share": _get(c, "baseline_composition", "edge_share"),
            "top_negative": [{"label": class_label(k), "share": v} for k, v in top_neg],
            "max_bias_sd": max(bias_sd) if bias_sd else None,
            "explanation": c.get("explanation"),
            "findings": fnd,
            "top_finding": fnd[0] if fnd else None,
            "worst": contrast_status(record, name),
            "sensitivity": sens,
        })
    return crow


def _facts(record: Mapping[str, Any]) -> list[tuple[str, str, Any]]:
    """The design facts: ``(name, value, where the value came from)``."""
    settings = record.get("settings") or {}
    model = settings.get("model") or {}
    ev = settings.get("events") or {}
    facts = [
        ("TR", f"{fmt_num(_get(settings, 't_r', 'value'))} s", _get(settings, "t_r", "source")),
        ("slice_time_ref", fmt_num(_get(settings, "slice_time_ref", "value")), _get(settings, "slice_time_ref", "source")),
        ("scans", fmt_num(_get(settings, "n_scans", "value")), _get(settings, "n_scans", "source")),
    ]
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


def _keynums(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The key-number rows (design, baseline, dof, sample mask, then the reviewers' numbers)."""
    design_info = record.get("design") or {}
    sm = design_info.get("sample_mask") or {}
    coll = _get(record, "diagnostics", "collinearity", default={}) or {}
    base = _get(record, "diagnostics", "baseline", default={}) or {}
    roles = [c.get("role") for c in design_info.get("columns") or []]
    return [
        ("design rank / columns", f"{fmt_num(design_info.get('rank'))} / {fmt_num(design_info.get('n_columns'))}"),
        ("confound + spike columns", fmt_num(sum(r in ("confound", "spike") for r in roles)) if roles else "n/a"),
        ("condition number", fmt_num(coll.get("condition_number"))),
        ("baseline fraction", fmt_pct(base.get("fraction"))),
        _baseline_epochs(record, base),
        ("residual dof", fmt_num(_get(record, "diagnostics", "confounds", "dof"))),
        ("sample mask applied", "yes" if sm.get("applied") else ("no" if sm else "n/a")),
    ] + reviewer_keynums(record)


def _whatif_rows(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    whatif = []
    for wi in record.get("whatif") or []:
        for cname, v in (wi.get("contrasts") or {}).items():
            whatif.append({"fix": wi.get("fix"), "code": wi.get("code"), "contrast": cname, **v,
                           "worse": cname in (wi.get("worse") or [])})
    return whatif


def _sensitivity_rows(crow: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per unmodelled signal, one column per contrast, with where its size comes from."""
    from nbdiag.report.summary import size_basis

    sens_rows: dict[str, dict[str, Any]] = {}
    for c in crow:
        for srow in c["sensitivity"]:
            key = str(srow.get("source") or srow.get("label"))
            entry = sens_rows.setdefault(key, {"label": str(srow.get("label") or key), "source": srow.get("source"),
                                               "basis": size_basis(srow), "cells": {}})
            entry["cells"][c["name"]] = srow
    return list(sens_rows.values())


def _variant_view(record: Mapping[str, Any], idx: str, design: pd.DataFrame | None,
                  with_figures: bool, base_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    crow = _contrast_rows(record)
    design_info = record.get("design") or {}
    return {
        "id": idx,
        "variant": str(record.get("variant", "default")),
        "sensitivity": _sensitivity_rows(crow),
        "status": _status(record),
        "error": record.get("error"),
        "facts": _facts(record),
        "keynums": _keynums(record),
        "warnings": design_info.get("nilearn_warnings") or [],
        "contrasts": crow,
        "all_findings": [f for f in (record.get("findings") or []) if isinstance(f, Mapping)],
        "figs": run_figures(record, design) if with_figures and _status(record) != "error" else {},
        "whatif": _whatif_rows(record),
        "versions": (record.get("nbdiag_version"), record.get("nilearn_version")),
        "files": _get(record, "run", "files", default={}) or {},
        "measured": measured_view(record, base_dir),
        "notes": [str(n) for n in record.get("notes") or []],
        "skipped_checks": [c for c in (record.get("skipped_checks") or []) if isinstance(c, Mapping)],
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
            top = (cell or {}).get("top_finding") or {}
            tops.append(("n/a" if cell is None else (top.get("code") or "none"), "text"))
        rows.append({"label": "top finding", "values": tops})
        out.append({"name": name, "rows": rows})
    return out


def _short_run(prefix: str, subject: str) -> str:
    """Run prefix without the subject (the page is about one subject)."""
    p = str(prefix)
    head = f"sub-{subject}_"
    return p[len(head):] if p.startswith(head) else p


def build_subject_context(subject: str, records: Iterable[Mapping[str, Any]],
                          designs: Mapping[Hashable, pd.DataFrame] | None = None,
                          with_figures: bool = True, base_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Template context of a subject report (exposed for tests). ``base_dir``: the output folder the
    record paths are relative to (BOLD-mode class maps are read from there), None to read nothing."""
    from nbdiag.report.summary import merge_findings, verdict_rows

    records = list(records)
    runs: dict[str, list[Mapping[str, Any]]] = {}
    for r in records:
        runs.setdefault(run_prefix(r), []).append(r)
    run_views = []
    variants_all: list[str] = []
    ordered: list[Mapping[str, Any]] = []
    for i, (prefix, recs) in enumerate(sorted(runs.items())):
        ordered.extend(recs)
        views = []
        for j, r in enumerate(recs):
            sid = section_id(prefix, r.get("variant"))
            if any(v["id"] == sid for v in views):
                sid = f"{sid}-{j}"
            views.append(_variant_view(r, sid, _find_design(r, designs), with_figures, base_dir))
        for v in views:
            if v["variant"] not in variants_all:
                variants_all.append(v["variant"])
        ent = _get(recs[0], "run", "entities", default={}) or {}
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


def render_subject_report(subject: str, records: list[dict], designs: Mapping[Hashable, pd.DataFrame] | None,
                          output_path: str | os.PathLike) -> Path:
    """Render one self-contained HTML report for a subject.

    Parameters
    ----------
    subject : str
        Subject label, with or without ``sub-``.
    records : list of dict
        Run records (docs/record.md) of this subject, one per run × variant; error
        records (``status: "error"``) are shown with their error message.
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
