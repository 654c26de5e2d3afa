"""Group report ``OUTPUT_DIR/group.html``: renders the group tables only."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from markupsafe import Markup

from nbdiag.core.findings import SEVERITIES, severity_rank
from nbdiag.record.model import ABSENT, RunRecord, as_run_record
from nbdiag.report.palette import variant_color
from nbdiag.report.subject import section_id

__all__ = ["render_group_report", "plot_metric_distributions", "plot_findings_heatmap", "plot_check_counts"]

_LABEL_OK = re.compile(r"^[A-Za-z0-9]+$")
_SEV_LEVELS = ["none", *SEVERITIES]
#: Most rows drawn in the runs × findings heatmap.
MAX_HEATMAP_ROWS = 120


def _run_label(row: Mapping[str, Any]) -> str:
    parts = [f"sub-{row.get('subject')}"]
    for key, ent in (("session", "ses"), ("task", "task"), ("acq", "acq"), ("run", "run")):
        v = row.get(key)
        if v is not None and not (isinstance(v, float) and np.isnan(v)) and v != "":
            parts.append(f"{ent}-{v}")
    return "_".join(parts) + f" [{row.get('variant')}]"


def findings_matrix(records: Sequence[RunRecord | Mapping[str, Any]], rt: pd.DataFrame) -> pd.DataFrame:
    """Runs × finding codes: worst severity rank (0 none, 1 info, 2 warn, 3 fail, 4 error).

    ``rt`` is the group runs table of the same records, in the same order.
    """
    typed = [as_run_record(r) for r in records]
    labels = [_run_label(r) for r in rt.to_dict("records")]
    codes: list[str] = []
    for rec in typed:
        for f in rec.findings:
            if f.code not in codes:
                codes.append(str(f.code))
    m = np.zeros((len(typed), len(codes)), dtype=int)
    for i, rec in enumerate(typed):
        for f in rec.findings:
            try:
                r = severity_rank(f.severity) + 1
            except ValueError:
                continue
            j = codes.index(str(f.code))
            m[i, j] = max(m[i, j], r)
    return pd.DataFrame(m, index=labels, columns=codes)


def plot_findings_heatmap(matrix: pd.DataFrame, links: Sequence[str | None] | None = None) -> str:
    """Inline SVG: runs × finding codes coloured by the worst severity (tooltip per cell)."""
    from nbdiag.report.palette import SEVERITY_COLORS
    from nbdiag.report.svgplot import heatmap

    fill = {0: "#f2f2f2", 1: SEVERITY_COLORS["info"], 2: SEVERITY_COLORS["warn"], 3: SEVERITY_COLORS["fail"],
            4: SEVERITY_COLORS["error"]}
    from nbdiag.report.words import code_words

    rows, cols = [str(i) for i in matrix.index], [str(c) for c in matrix.columns]
    words = {c: code_words(c) for c in cols}
    vals = matrix.to_numpy()
    return heatmap(rows, cols, [[fill[int(v)] for v in row] for row in vals],
                   titles=[[f"{r}: {words[c]} ({c}) = {_SEV_LEVELS[int(v)]}" for c, v in zip(cols, row)]
                           for r, row in zip(rows, vals)],
                   legend=[(lvl, fill[i], lvl) for i, lvl in enumerate(_SEV_LEVELS)], label="runs × findings",
                   row_links=links, label_chars=max([60, *(len(r) for r in rows)]))


def _tip(row: Mapping[str, Any], value: Any, label: str) -> str:
    from nbdiag.report.svgplot import fmt_value

    return f"{_run_label(row)}: {label} = {fmt_value(value)}"


def plot_metric_distributions(table: pd.DataFrame, metrics: Sequence[tuple[str, str, float | None]]) -> str:
    """Inline SVG small multiples: each metric across runs, one column per variant, a tooltip per dot.

    Parameters
    ----------
    table : DataFrame
        ``nbdiag_runs.tsv`` rows.
    metrics : sequence of (column, label, threshold)
        Threshold, when given, is drawn as a dashed line.
    """
    from nbdiag.report.svgplot import strip_plot

    metrics = [m for m in metrics if m[0] in table and pd.to_numeric(table[m[0]], errors="coerce").notna().any()]
    variants = sorted(table["variant"].astype(str).unique())
    records = table.to_dict("records")
    panels = []
    for col, label, thr in metrics:
        pts = []
        for row in records:
            v = pd.to_numeric(pd.Series([row.get(col)]), errors="coerce").iloc[0]
            if pd.notna(v):
                pts.append((str(row.get("variant")), float(v), _tip(row, v, label)))
        panels.append((label, thr, pts))
    return strip_plot(panels, variants, {v: variant_color(v) for v in variants}, label="key metrics across runs")


def plot_check_counts(counts: pd.DataFrame) -> str:
    """Inline SVG: stacked bars of run × variants per finding code by worst severity."""
    from nbdiag.report.palette import SEVERITY_COLORS
    from nbdiag.report.svgplot import Svg, text_width

    names = [str(i) for i in counts.index]
    lab = max((text_width(n, 10) for n in names), default=40) + 8
    total = max(1, int(counts[[c for c in SEVERITIES if c in counts]].sum(axis=1).max()))
    plot_w, row = 420.0, 18
    svg = Svg(lab + plot_w + 120, 20 + row * len(names) + 24, "checks")
    for i, n in enumerate(names):
        y = 10 + i * row
        svg.text(lab - 6, y + row / 2, n, size=10, anchor="end")
        left = 0.0
        for sev in SEVERITIES:
            if sev not in counts:
                continue
            v = float(counts.iloc[i][sev])
            if v:
                svg.rect(lab + plot_w * left / total, y + 3, plot_w * v / total, row - 6, SEVERITY_COLORS[sev],
                         title=f"{n}: {int(v)} run × variant(s) {sev}", key=sev)
            left += v
    for k, sev in enumerate(SEVERITIES):
        svg.rect(lab + plot_w + 16, 10 + k * 16, 10, 10, SEVERITY_COLORS[sev], key=sev)
        svg.text(lab + plot_w + 31, 15 + k * 16, sev, size=10)
    svg.text(lab + plot_w / 2, 20 + row * len(names) + 14, f"run × variants (of {int(counts.iloc[0].sum())})"
             if len(counts) else "run × variants", size=10, anchor="middle")
    return str(svg)


def _outliers(table: pd.DataFrame, cols: Sequence[str]) -> dict[int, list[str]]:
    """Rows whose metric lies beyond Q3 + 1.5 IQR (upper tail: bigger is worse)."""
    out: dict[int, list[str]] = {}
    for col in cols:
        if col not in table:
            continue
        v = pd.to_numeric(table[col], errors="coerce")
        if v.notna().sum() < 4:
            continue
        q1, q3 = np.nanpercentile(v, [25, 75])
        hi = q3 + 1.5 * (q3 - q1)
        for i in np.where(v > hi)[0]:
            label = f"contrast VIF of {col[:-5]}" if col.endswith(":cvif") else col.replace("_", " ")
            out.setdefault(int(i), []).append(f"{label} = {v.iloc[i]:.3g} (dataset outlier: > {hi:.3g})")
    return out


def _median(values: Sequence[Any]) -> float | None:
    v = pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce").dropna()
    return float(v.median()) if len(v) else None


def _reason_codes(reasons: str) -> list[str]:
    """``code (contrast); code`` -> distinct codes; ``error: <message>`` -> ``["error"]`` (the message
    is one reason, whatever commas, semicolons or parentheses it holds)."""
    text = str(reasons or "")
    if text.startswith("error:"):
        return ["error"]
    out: list[str] = []
    for part in text.split("; "):
        code = part.split(" (")[0].strip()
        if code.startswith("error:"):
            code = "error"
        if code and code not in out:
            out.append(code)
    return out


def _collapse(items: Sequence[tuple[str, str]], messages: Mapping[str, Sequence[str]] | None = None
              ) -> list[dict[str, Any]]:
    """(reason, run label) pairs -> one entry per reason with its runs (repeated reasons collapsed),
    its words and, for ``error``, the distinct error messages, each whole."""
    from nbdiag.report.words import code_words

    by: dict[str, list[str]] = {}
    for reason, label in items:
        by.setdefault(reason, [])
        if label not in by[reason]:
            by[reason].append(label)
    out = []
    for r, v in sorted(by.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        words = "could not be audited (error)" if r == "error" else code_words(r) if r.isidentifier() else r
        out.append({"reason": r, "n": len(v), "runs": v, "words": words,
                    "messages": list((messages or {}).get(r, []))})
    return out


def _error_message(reasons: str) -> str | None:
    text = str(reasons or "")
    return text[len("error:"):].strip() if text.startswith("error:") else None


def _contrast_number(rec: RunRecord, contrast: str, name: str) -> Any:
    """``contrasts.<contrast>.<name>`` (efficiency, cvif) of a record, None when it has none."""
    entry = (rec.contrasts or {}).get(contrast)
    value = getattr(entry, name) if entry is not None else None
    return None if value is ABSENT else value


def _variant_summary(v: str, recs: Sequence[RunRecord], d: pd.DataFrame, vso: pd.DataFrame,
                     contrasts: Sequence[str], bias: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Per variant, across runs: medians, DoF on confounds, failures and why, predicted bias per cause."""
    eff = {c: _median([_contrast_number(r, c, "efficiency") for r in recs]) for c in contrasts}
    cvif = {c: _median([_contrast_number(r, c, "cvif") for r in recs]) for c in contrasts}
    nconf = [sum(1 for col in (r.design.columns if r.design is not ABSENT else ()) if col.role in ("confound", "spike"))
             for r in recs if r.status != "error"]
    dof = _median(d["dof"]) if "dof" in d else None
    failing = vso[vso["final"] == "fail"] if len(vso) else vso
    reasons = []
    messages: dict[str, list[str]] = {}
    for row in failing.to_dict("records"):
        label = _run_label(row)
        for code in _reason_codes(row.get("reasons")) or ["reviewer: exclude" if row.get("rating") == "exclude"
                                                           else "status"]:
            reasons.append((code, label))
        message = _error_message(row.get("reasons"))
        if message and message not in messages.setdefault("error", []):
            messages["error"].append(message)
    bias = dict(bias or {})
    return {"variant": v, "n": len(d),
            **{s: int((d["status"] == s).sum()) for s in ("pass", "warn", "fail", "error")},
            "signoff_pass": int((vso["signoff"] == "pass").sum()) if len(vso) else 0,
            "final_fail": int((vso["final"] == "fail").sum()) if len(vso) else 0,
            "efficiency": eff, "cvif": cvif, "n_confounds": _median(nconf), "dof": dof,
            "fail_reasons": _collapse(reasons, messages), "fail_codes": sorted({c for c, _ in reasons}),
            "bias": bias}


def _named(codes_: Sequence[str]) -> str:
    """Finding codes in words (their titles), ``"; "``-separated; ``error`` as runs not audited."""
    from nbdiag.report.words import code_words

    return "; ".join("runs that could not be audited (error)" if c == "error" else
                     code_words(c).rstrip(".") if c.isidentifier() else c for c in codes_)


def recommend_variant(summaries: Sequence[Mapping[str, Any]], contrasts: Sequence[str]) -> str | None:
    """One line naming the variant that handles every failing cause at the least cost in efficiency.

    A cause is *failing* when it fails sign-off for some run under some variant; a variant
    *handles* it when no run fails for it under that variant. Cost: the variant's median
    efficiency per contrast as a share of the best variant's (higher is cheaper).
    """
    if len(summaries) < 2:
        return None
    causes = sorted({c for s in summaries for c in s["fail_codes"]})
    if not causes:
        return "No run fails sign-off under any variant; compare efficiencies below."
    best_eff = {c: max((s["efficiency"].get(c) or 0.0) for s in summaries) for c in contrasts}

    def cost(s: Mapping[str, Any]) -> float:
        ratios = [(s["efficiency"].get(c) or 0.0) / best_eff[c] for c in contrasts if best_eff.get(c)]
        return float(np.mean(ratios)) if ratios else 0.0

    ranked = sorted(summaries, key=lambda s: (len(s["fail_codes"]), s["final_fail"], -cost(s), s["variant"]))
    top = ranked[0]
    ratios = {c: (top["efficiency"].get(c) or 0) / best_eff[c] for c in contrasts
              if best_eff.get(c) and top["efficiency"].get(c) is not None}
    eff_txt = ("the best median efficiency for every contrast" if ratios and min(ratios.values()) >= 0.995 else
               ", ".join(f"{c} {r:.0%}" for c, r in ratios.items()) + " of the best median efficiency per contrast")
    handled = [c for c in causes if c not in top["fail_codes"]]
    if not top["fail_codes"]:
        return (f"{top['variant']} handles every failing cause ({_named(causes)}) with 0 of {top['n']} runs "
                f"failing, at {eff_txt}.")
    everywhere = [c for c in causes if all(c in s["fail_codes"] for s in summaries)]
    return ("No variant handles every failing cause"
            + (f" ({_named(everywhere)} fail under every variant)" if everywhere else "")
            + f"; {top['variant']} leaves the fewest ({len(top['fail_codes'])}: {_named(top['fail_codes'])}; "
            f"{top['final_fail']} of {top['n']} runs fail)"
            + (f" and handles {_named(handled)}" if handled else "")
            + f", at {eff_txt}.")


def _attempt(figs: dict[str, Any], name: str, fn: Any) -> None:
    """``figs[name]`` = the figure, or a caption saying why it could not be drawn."""
    try:
        figs[name] = {"kind": "svg", "content": Markup(fn())}
    except Exception as exc:  # noqa: BLE001 - a figure must not break the report
        figs[name] = {"kind": "error", "content": f"figure could not be drawn: {type(exc).__name__}: {exc}"}


def _run_links(rt: pd.DataFrame) -> list[str | None]:
    """Link of each run × variant row to its section of the subject report (None for an unsafe label)."""
    links = []
    for row in rt.to_dict("records"):
        sub = str(row.get("subject"))
        links.append(f"sub-{sub}.html#{section_id(row.get('prefix'), row.get('variant'))}"
                     if _LABEL_OK.match(sub) else None)
    return links


def _check_overview(figs: dict[str, Any], records: Sequence[RunRecord], rt: pd.DataFrame,
                    links: list[str | None]) -> tuple[list[dict[str, Any]], str | None]:
    """Per-check counts (table and bar figure) and the findings heatmap; returns the rows and the
    heatmap's note when it shows a selection."""
    fm = findings_matrix(records, rt)
    counts = pd.DataFrame({sev: (fm == i + 1).sum(axis=0) for i, sev in enumerate(SEVERITIES)})
    counts["none"] = (fm == 0).sum(axis=0)
    counts = counts.sort_values(["error", "fail", "warn", "info"], ascending=False, kind="stable")
    check_rows = [{"code": code, **{k: int(v) for k, v in row.items()}} for code, row in counts.iterrows()]
    if len(counts):
        _attempt(figs, "checks", lambda: plot_check_counts(counts))
    heat_note = None
    if fm.size:
        shown, shown_links = fm, links
        if len(fm) > MAX_HEATMAP_ROWS:
            worst = fm.max(axis=1)
            order = fm.assign(_w=worst.to_numpy(), _n=(fm >= 3).sum(axis=1).to_numpy(), _i=np.arange(len(fm)))
            order = order.sort_values(["_w", "_n", "_i"], ascending=[False, False, True])
            keep = order["_i"].to_numpy()[: MAX_HEATMAP_ROWS]
            keep = [i for i in keep if fm.iloc[i].max() >= 3] or list(keep)
            shown, shown_links = fm.iloc[keep], [links[i] for i in keep]
            heat_note = (f"{len(shown)} of {len(fm)} run × variants shown: those with the most severe findings. "
                         "All rows are in group/nbdiag_runs.tsv.")
        _attempt(figs, "heatmap", lambda: plot_findings_heatmap(shown, shown_links))
    return check_rows, heat_note


def _variant_sections(records: Sequence[RunRecord], rt: pd.DataFrame, so: pd.DataFrame,
                      all_variants: list[str], deciding: list[str], contrasts: list[str],
                      links: list[str | None], summary: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """One section per variant: its summary and one row per run."""
    variants = []
    for v in all_variants:
        d = rt[rt["variant"].astype(str) == v]
        vso = so[so["variant"].astype(str) == v]
        recs = [r for r in records if r.variant == v]
        entry = _variant_summary(v, recs, d, vso, contrasts, ((summary or {}).get("bias") or {}).get(v))
        entry["color"] = variant_color(v)
        entry["deciding"] = v in deciding
        entry["runs"] = []
        for (i, row), srow in zip(d.iterrows(), vso.to_dict("records")):
            entry["runs"].append({"label": _run_label(row).rsplit(" [", 1)[0], "link": links[i], "status": row["status"],
                                  "signoff": srow["signoff"], "final": srow["final"], "rating": srow.get("rating", ""),
                                  "cond": row.get("condition_number"), "vif": row.get("max_task_vif"),
                                  "cvif": [row.get(f"{c}:cvif") for c in contrasts],
                                  "reasons": srow.get("reasons", "")})
        variants.append(entry)
    return variants


def _cause_order(variants: list[dict[str, Any]]) -> list[str]:
    """Causes ordered by their largest median |bias| over variants and contrasts (biggest first)."""
    size: dict[str, float] = {}
    for e in variants:
        for cause, by_c in e["bias"].items():
            size[cause] = max([size.get(cause, 0.0), *(abs(b["mean"]) for b in by_c.values())])
    return sorted(size, key=lambda c: (-size[c], c))


def _disagreements(dec: pd.DataFrame) -> list[dict[str, Any]]:
    """Deciding runs whose reviewer rating overrides the sign-off."""
    out = []
    for row in dec.to_dict("records"):
        if row.get("rating") in ("include", "exclude") and row["final"] != row["signoff"]:
            out.append({"label": _run_label(row), "signoff": row["signoff"], "rating": row["rating"],
                        "reviewer": row.get("reviewer", ""), "comment": row.get("comment", ""),
                        "reasons": row.get("reasons", "")})
    return out


def build_group_context(records: Sequence[RunRecord | Mapping[str, Any]], rt: pd.DataFrame, so: pd.DataFrame,
                        fail_on: str = "fail", deciding: Sequence[str] | None = None,
                        summary: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Template context of ``group.html`` (exposed for tests).

    ``rt`` and ``so`` are the group runs and sign-off tables of ``records``
    (:mod:`nbdiag.group.pipeline`), row for row; ``deciding`` the variants that decide sign-off;
    ``summary`` the across-subject numbers (:func:`nbdiag.group.summary.summarise`).
    """
    records = [as_run_record(r) for r in records]   # a record's JSON is read once, here
    figs: dict[str, Any] = {}
    all_variants = sorted({str(v) for v in rt.get("variant", pd.Series(dtype=str))}) if len(rt) else []
    deciding = list(deciding) if deciding else all_variants
    links = _run_links(rt)
    check_rows, heat_note = _check_overview(figs, records, rt, links)
    contrast_cvif = [c for c in rt.columns if c.endswith(":cvif")]
    contrasts = [c[:-5] for c in contrast_cvif]
    metrics = [("condition_number", "condition number", 30.0), ("max_task_vif", "max task VIF", 5.0),
               ("baseline_fraction", "baseline fraction", 0.15)]
    metrics += [(c, f"contrast VIF: {c[:-5]}", 5.0) for c in contrast_cvif]
    if len(rt) and "variant" in rt:
        _attempt(figs, "metrics", lambda: plot_metric_distributions(rt, metrics))
    # outliers (dataset-wide), reasons collapsed
    out = _outliers(rt, ["condition_number", "max_task_vif"] + contrast_cvif)
    outlier_items = [(r.split(" = ")[0], _run_label(row)) for i, row in enumerate(rt.to_dict("records"))
                     for r in out.get(i, [])]
    variants = _variant_sections(records, rt, so, all_variants, deciding, contrasts, links, summary)
    dec = so[so["variant"].astype(str).isin(deciding)]
    subjects = sorted({str(s) for s in rt.get("subject", pd.Series(dtype=str)) if s is not None})
    return {
        "n_records": len(rt),
        "fail_on": fail_on,
        "deciding": deciding,
        "all_variants": all_variants,
        "status_counts": {s: int((rt["status"] == s).sum()) for s in ("pass", "warn", "fail", "error")} if len(rt) else {},
        "signoff_pass": int((dec["final"] == "pass").sum()), "signoff_fail": int((dec["final"] == "fail").sum()),
        "n_rated": int((dec["rating"].astype(str) != "").sum()) if "rating" in dec else 0,
        "disagreements": _disagreements(dec),
        "checks": check_rows, "figs": figs, "heat_note": heat_note, "outliers": _collapse(outlier_items),
        "variants": variants, "contrasts": contrasts, "causes": _cause_order(variants),
        "recommendation": recommend_variant(variants, contrasts),
        "metric_labels": [m[1] for m in metrics],
        "subjects": [{"label": s, "link": f"sub-{s}.html" if _LABEL_OK.match(s) else None} for s in subjects],
        "signoff": so.to_dict("records"),
        "versions": next(((r.nbdiag_version, r.nilearn_version) for r in records
                          if r.nbdiag_version), (None, None)),
    }


def render_group_report(records: Sequence[RunRecord | Mapping[str, Any]], runs: pd.DataFrame, signoff: pd.DataFrame,
                        output_path: str | Path, fail_on: str = "fail", deciding: Sequence[str] | None = None,
                        incomplete: pd.DataFrame | None = None, attribution: pd.DataFrame | None = None,
                        summary: Mapping[str, Any] | None = None,
                        reviewer_outliers: Sequence[Mapping[str, Any]] | None = None) -> Path:
    """Render ``group.html`` from run records.

    Parameters
    ----------
    records : sequence of RunRecord (or their JSON, read once with ``RunRecord.from_json``)
        Run records (the group level's trusted records).
    runs, signoff : DataFrame
        The group runs and sign-off tables of ``records`` (``nbdiag.group.pipeline``), row for row.
    output_path : path
        HTML file to write (atomically).
    fail_on : {"fail", "warn"}
        Sign-off level shown in the report.
    deciding : sequence of str, optional
        Variants that decide the sign-off (``--variant``; default all).
    incomplete : DataFrame, optional
        ``group/nbdiag_missing.tsv``: missing, refused and stale runs and skipped subjects,
        listed in their own section.
    attribution : DataFrame, optional
        ``group/nbdiag_attribution.tsv`` (:mod:`nbdiag.group.attribution`); the
        report opens with the verdict table and the sentence built from it.
    summary : dict, optional
        Across-subject numbers (:func:`nbdiag.group.summary.summarise` of ``records``): the
        subjects contributing to each part and the predicted bias per unmodelled signal.
    reviewer_outliers : sequence of dict, optional
        ``nbdiag.group.outliers.outlier_sections`` (group/nbdiag_outliers.tsv by metric), shown
        by the partial ``_outliers.j2``.

    Returns
    -------
    Path
    """
    from nbdiag.outputs.files import atomic_write_text
    from nbdiag.report.subject import get_env

    from nbdiag.report.attribution import attribution_sentences

    records = [as_run_record(r) for r in records]   # a record's JSON is read once, here
    ctx = build_group_context(records, runs, signoff, fail_on, deciding, summary)
    # runs the group level could not sign off (missing, refused, stale) and skipped subjects
    ctx["incomplete"] = [] if incomplete is None else incomplete.fillna("").to_dict("records")
    ctx["attribution_sentences"] = attribution_sentences(attribution) if attribution is not None else {}
    ctx["attribution_rows"] = [] if attribution is None else attribution.to_dict("records")
    ctx["reviewer_outliers"] = list(reviewer_outliers or [])
    from nbdiag.report.group_verdict import verdict_rows
    from nbdiag.report.words import code_words, source_words, term

    ctx["verdict_rows"] = verdict_rows(records, attribution, (summary or {}).get("contributing"))
    ctx["attribution_has_distinct"] = attribution is not None and "distinct" in attribution.columns
    env = get_env()
    env.filters["term"] = term
    env.filters["source_words"] = source_words
    env.filters["code_words"] = code_words
    html = env.get_template("group.html.j2").render(**ctx)
    return atomic_write_text(Path(output_path), html)
