"""The figures of one run × variant, drawn from its record with :mod:`nbdiag.report.svgplot`.

The subject report inlines them; the README figures (``reports/make_figures.py``) and notebooks
use the same functions (:func:`weights_svg` gives the contrast-weight figure of a record as SVG
text; :func:`nbdiag.report.svgplot.show` displays any of them in Jupyter). One chart stack: there
is no matplotlib version of these figures. No statistics are computed here.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import pandas as pd
from markupsafe import Markup

from nbdiag.core.labels import class_label
from nbdiag.core.thresholds import Thresholds
from nbdiag.report import svgplot as S
from nbdiag.record.model import Diagnostics, Drift, EventsInfo, RunRecord
from nbdiag.core.jsonio import finite_number as _finite
from nbdiag.report.access import Record, opt, thresholds_of, typed
from nbdiag.report.palette import CLASS_COLORS, condition_color

__all__ = ["MAX_BARS", "MAX_MATRIX_COLUMNS", "run_figures", "timeline_rows", "weights_svg"]

#: Largest correlation matrix / bar chart drawn in full (bigger ones show a selection).
MAX_MATRIX_COLUMNS = 30
MAX_BARS = 30

Timeline = list[tuple[str, str, str, list]]


def _top_correlation(cols: list[str], matrix: Sequence[Sequence[Any]], tasks: Sequence[str],
                     limit: int) -> tuple[list[str], list[list[Any]]]:
    """Task columns plus the columns most correlated with them (no new statistics)."""
    if len(cols) <= limit:
        return cols, [list(r) for r in matrix]
    task_idx = [i for i, c in enumerate(cols) if c in tasks] or list(range(min(limit, len(cols))))

    def strength(j: int) -> float:
        return max((abs(_finite(matrix[i][j]) or 0.0) for i in task_idx if i != j), default=0.0)

    others = sorted((j for j in range(len(cols)) if j not in task_idx), key=lambda j: -strength(j))
    keep = sorted(task_idx + others[: max(0, limit - len(task_idx))])
    return [cols[j] for j in keep], [[matrix[i][j] for j in keep] for i in keep]


def _corr_color(v: float | None) -> str:
    """RdBu_r-like diverging colour for r in [-1, 1]."""
    if v is None:
        return "#eeeeee"
    v = max(-1.0, min(1.0, v))
    hot, cold, mid = (178, 24, 43), (33, 102, 172), (247, 247, 247)
    end = hot if v > 0 else cold
    a = abs(v)
    r, g, b = (round(m + (e - m) * a) for m, e in zip(mid, end))
    return f"#{r:02x}{g:02x}{b:02x}"


def _events(record: Record) -> EventsInfo | None:
    return opt(record.events) if isinstance(record, RunRecord) else None


def _diagnostics(record: Record) -> Diagnostics | None:
    return opt(record.diagnostics)


def timeline_rows(record: Record | Mapping[str, Any], conds: Sequence[str], t_r: float, n: int,
                  frame_times: Sequence[float], nss: Sequence[int]) -> Timeline:
    """Rows ``(key, colour, label, [(onset, duration), ...])`` of the weights figure's timeline strip:
    the modelled conditions, the unmodelled event types and the flagged non-steady volumes left in.
    (Event rows are the events.tsv's own columns: free-form in the record's schema.)"""
    rows: Timeline = []
    events = _events(typed(record))
    modeled = (events.modeled or ()) if events is not None else ()
    unmodeled = (events.unmodeled or ()) if events is not None else ()
    for c in conds:
        spans = [(float(e["onset"]), float(e.get("duration") or 0) or t_r / 2) for e in modeled
                 if str(e.get("trial_type")) == c and _finite(e.get("onset")) is not None]
        if spans:
            rows.append((f"condition:{c}", condition_color(c), c, spans))
    types = list(dict.fromkeys(str(e.get("trial_type")) for e in unmodeled))
    for u in types:
        spans = [(float(e["onset"]), max(float(e.get("duration") or 0), t_r / 2)) for e in unmodeled
                 if str(e.get("trial_type")) == u and _finite(e.get("onset")) is not None]
        rows.append(("unmodeled_event", CLASS_COLORS["unmodeled_event"], f"{u} (unmodelled)", spans))
    idx = [int(i) for i in nss if 0 <= int(i) < n]
    if idx:
        rows.append(("nonsteady", CLASS_COLORS["nonsteady"], class_label("nonsteady"),
                     [(float(frame_times[i]) - t_r / 2, t_r) for i in idx]))
    return rows


def weights_svg(record: Record | Mapping[str, Any], contrasts: Sequence[str] | None = None) -> str | None:
    """The contrast-weight figure of a record (timeline, one weight panel per contrast, share
    table) as SVG text, or None when the record has no weights. ``contrasts``: the ones to
    draw, in this order (default: every contrast with weights)."""
    record = typed(record)
    design, diag = opt(record.design), _diagnostics(record)
    frame_times = list(opt(design.frame_times) or ()) if design is not None else []
    baseline = opt(diag.baseline) if diag is not None else None
    classes = list(baseline.scan_classes) if baseline is not None else None
    confounds = opt(diag.confounds) if diag is not None else None
    nss_info = opt(confounds.nonsteady) if confounds is not None else None
    nss = [] if nss_info is None or nss_info.handled else list(nss_info.volumes)
    all_c = opt(record.contrasts) or {}
    weights: dict[str, Any] = {}
    shares: dict[str, Any] = {}
    titles: dict[str, str] = {}
    for cname in (all_c if contrasts is None else contrasts):
        c = all_c.get(cname)
        w = opt(c.weights) if c is not None else None
        if w:
            weights[cname] = list(w)
            comp = opt(c.baseline_composition)
            shares[cname] = comp.negative if comp is not None else {}
            titles[cname] = cname if c.expression == cname else f"{cname}   ({c.expression})"
    if not weights:
        return None
    n = len(next(iter(weights.values())))
    ft = frame_times if frame_times and len(frame_times) == n else [float(i) for i in range(n)]
    t_r = float(pd.Series(ft).diff().median()) if n > 1 else 1.0
    events = _events(record)
    modeled = (events.modeled or ()) if events is not None else ()
    conds = sorted({str(e.get("trial_type")) for e in modeled}
                   | {str(k)[len("condition:"):] for k in (classes or []) if str(k).startswith("condition:")})
    return S.weights_figure(ft, weights, classes, timeline_rows(record, conds, t_r, n, ft, nss), shares, titles)


# --------------------------------------------------------------------------- the report's figures
Figures = dict[str, Any]


def _attempt(out: Figures, name: str, fn: Callable[[], str | None]) -> None:
    """``out[name]`` = the figure, or a caption saying why it could not be drawn (never a crash)."""
    try:
        svg = fn()
        if svg:
            out[name] = {"kind": "svg", "content": Markup(svg)}
    except Exception as exc:  # a broken figure must not hide the rest of the report
        out[name] = {"kind": "error", "content": f"figure could not be drawn: {type(exc).__name__}: {exc}"}


def _correlation(out: Figures, diag: Diagnostics | None, tasks: Sequence[str], th: Thresholds) -> None:
    coll = opt(diag.collinearity) if diag is not None else None
    if coll is None or not (coll.correlation.columns and coll.correlation.matrix):
        return
    columns = list(coll.correlation.columns)
    cols, mat = _top_correlation(columns, coll.correlation.matrix, tasks, MAX_MATRIX_COLUMNS)
    out["correlation_note"] = (f"{len(cols)} of {len(columns)} regressors shown: the task regressors "
                               "and the confounds most correlated with them."
                               if len(cols) < len(columns) else None)

    def draw() -> str:
        vals = [[_finite(v) for v in row] for row in mat]
        return S.heatmap(cols, cols, [[_corr_color(v) for v in row] for row in vals],
                         titles=[[f"{a} × {b}: r = {S.fmt_value(v)}" for b, v in zip(cols, row)]
                                 for a, row in zip(cols, vals)],
                         annot=[[f"{v:.2f}" if v is not None and i != j and abs(v) >= th.corr_info else ""
                                 for j, v in enumerate(row)] for i, row in enumerate(vals)],
                         cell=22 if len(cols) <= 16 else 16,
                         legend=[("r+", _corr_color(1.0), "r = +1"), ("r0", _corr_color(0.0), "r = 0"),
                                 ("r-", _corr_color(-1.0), "r = −1")], label="correlation")
    _attempt(out, "correlation", draw)


def _vif(out: Figures, diag: Diagnostics | None, tasks: Sequence[str], th: Thresholds) -> None:
    coll = opt(diag.collinearity) if diag is not None else None
    vif = coll.vif if coll is not None else {}
    if not vif:
        return
    shown = vif
    if len(vif) > MAX_BARS:
        keep = [k for k in vif if k in tasks]
        rest = sorted((k for k in vif if k not in tasks), key=lambda k: -(_finite(vif[k]) or 0.0))
        keep += rest[: max(0, MAX_BARS - len(keep))]
        shown = {k: vif[k] for k in vif if k in keep}
        out["vif_note"] = f"{len(shown)} of {len(vif)} regressors shown: task regressors and the highest VIFs."
    _attempt(out, "vif", lambda: S.hbars(shown, "VIF (1 = no shared variance)", th.vif_warn, th.vif_fail,
                                         highlight=tasks, width=480))


def _spectra_svg(drift: Drift) -> str:
    spectra = opt(drift.spectra) or {}  # freqs_hz and power per column: free-form in the schema
    power = {}
    for name in sorted(spectra["power"]):
        p = [(_finite(v) or 0.0) for v in spectra["power"][name]]
        tot = sum(p) or 1.0
        power[name] = [v / tot for v in p]
    cut, rec = drift.current_cutoff_s, drift.recommended_cutoff_s
    marks = []
    if cut:
        marks.append((1.0 / cut, "#D55E00", f"current cut-off ({cut:.0f} s)", "4 3"))
    if rec:
        marks.append((1.0 / rec, "#009E73", f"keeps 90 % ({rec:.0f} s)", "2 2"))
    return S.lines(spectra["freqs_hz"], power, "frequency (Hz)", "share of power", marks, xmax=0.1,
                   width=480, label="regressor spectra")


def _drift(out: Figures, record: Record, th: Thresholds) -> None:
    diag = _diagnostics(record)
    drift = opt(diag.drift) if diag is not None else None
    if drift is None:
        return
    if drift.r2_task:
        r2 = dict(drift.r2_task)
        for n_, c in (opt(record.contrasts) or {}).items():
            if opt(c.drift_r2) is not None:
                r2[f"contrast {n_}"] = c.drift_r2
        _attempt(out, "drift", lambda: S.hbars(r2, "R² on drift + constant", th.drift_r2_warn, th.drift_r2_fail,
                                               xmax=1.0, width=480))
    spectra = opt(drift.spectra) or {}
    if spectra.get("freqs_hz") and spectra.get("power"):
        _attempt(out, "spectra", lambda: _spectra_svg(drift))


def run_figures(record: Record | Mapping[str, Any], design: pd.DataFrame | None) -> Figures:
    """Inline-SVG figures of one run × variant, keyed by name (errors become captions, not crashes)."""
    record = typed(record)
    th = thresholds_of(record)
    out: Figures = {}
    diag = _diagnostics(record)
    columns = opt(record.design)
    roles = {c.name: c.role for c in columns.columns} if columns is not None else {}
    tasks = [k for k, r in roles.items() if r == "task"]
    if design is not None and not design.empty:
        _attempt(out, "design", lambda: S.design_image(design.to_numpy(dtype=float),
                                                       [str(c) for c in design.columns], roles))
    _correlation(out, diag, tasks, th)
    _vif(out, diag, tasks, th)
    _attempt(out, "weights", lambda: weights_svg(record))
    _drift(out, record, th)
    confounds = opt(diag.confounds) if diag is not None else None
    cr2 = confounds.r2_task if confounds is not None else {}
    if cr2:
        _attempt(out, "confounds", lambda: S.hbars(cr2, "R² on confounds", th.confound_r2_warn, th.confound_r2_fail,
                                                   xmax=1.0, width=480))
    return out
