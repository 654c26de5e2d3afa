"""The subject report's "Measured from this run" section (issue 12): numbers from the record only.

``measured_view(record, base_dir)`` turns a typed record's ``measured`` and ``contrasts.<c>.measured``
into table rows, and, when BOLD mode wrote class maps, draws a nilearn glass
brain of the largest class map (read from ``base_dir``, the output folder the record's
paths are relative to, passed by the caller; drawing only, no statistics). The brain map
is the one figure that is not inline SVG: it needs nilearn's plotting, drawn on a
``matplotlib.figure.Figure`` with its own canvas (no pyplot, no backend switch).
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from nbdiag.core.labels import class_label
from nbdiag.record.model import BoldMeasurement, ContrastMeasuredSignal, RunRecord
from nbdiag.report.access import opt


def _png_uri(fig: Any, dpi: int) -> str:
    """``fig`` as a ``data:image/png;base64,...`` URI, drawn by its own Agg canvas (no pyplot state,
    no backend switch), without the PNG's software/date metadata so identical inputs give identical bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazy: matplotlib (~0.6 s), BOLD-mode figures only

    buf = io.BytesIO()
    FigureCanvasAgg(fig)   # the figure's own canvas
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def glass_brain_uri(path: Path, index: int, title: str) -> str | None:
    """PNG data URI of a glass brain of volume ``index`` of a 4D class map, or None if unreadable."""
    try:
        from matplotlib.figure import Figure  # lazy: matplotlib and nilearn.plotting, BOLD-mode figures only
        from nilearn import image, plotting

        vol = image.index_img(str(path), index)
        fig = Figure(figsize=(6.4, 2.4))
        plotting.plot_glass_brain(vol, figure=fig, colorbar=True, plot_abs=False, cmap="RdBu_r",
                                  symmetric_cbar=True, title=title)
        return _png_uri(fig, dpi=70)
    except Exception:  # noqa: BLE001 - a figure failure never loses the report
        return None


def _global_signal_row(name: str, gs: ContrastMeasuredSignal) -> dict[str, Any]:
    """A contrast's row: its global-signal estimate and the largest cause part distinguishable from zero."""
    if gs.in_model:
        return {"contrast": name, "in_model": True, "note": opt(gs.note)}
    parts = opt(gs.by_class) or {}
    kinds, ts = opt(gs.by_class_kind) or {}, opt(gs.by_class_t) or {}
    if kinds:   # issue 20: the largest cause part distinguishable from zero (|t| >= 3); terms are no answer
        parts = {k: v for k, v in parts.items() if kinds.get(k) == "cause" and v is not None
                 and ts.get(k) is not None and abs(float(ts[k])) >= 3.0}
    top = max(parts.items(), key=lambda kv: abs(kv[1]), default=(None, None))
    return {"contrast": name, "in_model": False, "estimate_ols": opt(gs.estimate_ols),
            "estimate": opt(gs.estimate), "se": opt(gs.se), "t": opt(gs.t),
            "noise_model": opt(gs.noise_model),
            "top_class": class_label(top[0]) if top[0] else None, "top_value": top[1]}


def _bold_rows(bold: BoldMeasurement, base_dir: str | Path | None) -> tuple[list[dict[str, Any]], Any]:
    """BOLD mode's rows (mask mean, negative tail, largest classes) and the glass brain of the largest
    class map (``measured.bold.contrasts`` is per-contrast detail, free-form in the schema)."""
    bold_rows: list[dict[str, Any]] = []
    best = None
    for name, s in (opt(bold.contrasts) or {}).items():
        by = s.get("by_class") or {}
        top = sorted(by.items(), key=lambda kv: -abs(kv[1].get("mask_mean") or 0))[:3]
        bold_rows.append({"contrast": name, "mask_mean": s.get("mask_mean"),
                          "tail_mean": (s.get("negative_tail") or {}).get("mean"),
                          "top": [{"label": class_label(k), "mask_share": v.get("mask_share"),
                                   "tail_share": v.get("tail_share")} for k, v in top]})
        if top and (best is None or abs(top[0][1].get("mask_mean") or 0) > best[0]):
            classes = list(by)
            best = (abs(top[0][1].get("mask_mean") or 0), name, top[0][0], classes.index(top[0][0]),
                    s.get("classes_map"))
    figure = None
    if best and best[4] and base_dir is not None:
        uri = glass_brain_uri(Path(base_dir) / best[4], best[3], f"{best[1]}: part from {class_label(best[2])} (%)")
        figure = {"uri": uri, "contrast": best[1], "class": class_label(best[2])} if uri else None
    return bold_rows, figure


def measured_view(record: RunRecord, base_dir: str | Path | None = None) -> dict[str, Any] | None:
    """Rows for the measured section of one run × variant, or None when nothing was measured."""
    measured = opt(record.measured)
    rows = []
    for name, c in (opt(record.contrasts) or {}).items():
        gs = (opt(c.measured) or {}).get("global_signal")
        if gs:
            rows.append(_global_signal_row(name, gs))
    signals = (opt(measured.signals) or {}) if measured is not None else {}
    gsum = signals.get("global_signal")
    noise = opt(measured.noise) if measured is not None else None
    bold = opt(measured.bold) if measured is not None else None
    bold_rows, figure = [], None
    if bold is not None and bold.status == "measured":
        bold_rows, figure = _bold_rows(bold, base_dir)
    if not rows and gsum is None and bold is None:
        return None
    return {"rows": rows, "excess": (opt(gsum.percent_excess_nonsteady) or []) if gsum is not None else [],
            "nss_volumes": (opt(gsum.nonsteady_volumes) or []) if gsum is not None else [],
            "steady_median": opt(gsum.steady_median) if gsum is not None else None,
            "noise": noise or {}, "bold": bold or {}, "bold_rows": bold_rows, "figure": figure,
            "note": opt(measured.note) if measured is not None else None}
