"""Figures of the nbdiag reports.

Every ``plot_*`` function takes values read from a run record (docs/record.md) or the
design DataFrame, draws them (no statistics are computed here) and returns the
matplotlib :class:`~matplotlib.figure.Figure`. ``figure_to_svg`` / ``figure_to_png_uri``
turn a figure into something that can be inlined in a self-contained HTML page.

Colours follow the Okabe–Ito colour-blind-safe palette.
"""

from __future__ import annotations

import base64
import io
import re
from typing import Any, Iterable, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

__all__ = [
    "OKABE_ITO",
    "CLASS_COLORS",
    "class_color",
    "class_label",
    "figure_to_svg",
    "figure_to_png_uri",
    "plot_design",
    "plot_correlation",
    "plot_vif",
    "plot_contrast_weights",
    "plot_baseline_composition",
    "plot_drift_overlap",
    "plot_spectra",
    "plot_confound_r2",
]

#: Okabe & Ito (2008) colour-blind-safe palette.
OKABE_ITO = {
    "orange": "#E69F00",
    "skyblue": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
    "black": "#000000",
    "grey": "#999999",
}

from nbdiag.core.labels import class_label as _label  # noqa: E402
from nbdiag.report.palette import CLASS_COLORS, SEVERITY_COLORS  # noqa: E402
from nbdiag.report.palette import class_color as _palette_class_color  # noqa: E402

_RC = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.fonttype": "none",
    "figure.dpi": 100,
}


def _style() -> Any:
    return plt.rc_context(_RC)


def _condition_names(classes: Iterable[str]) -> list[str]:
    """Sorted condition names in ``classes`` (sorted so colours agree across figures)."""
    return sorted({c[len("condition:"):] for c in classes if c.startswith("condition:")})


def class_color(cls: str, conditions: Sequence[str] = ()) -> str:
    """Colour of a scan class; ``condition:<name>`` get the report palette's colour of that
    name (:func:`nbdiag.report.palette.condition_color`), the same in every figure.
    ``conditions`` is accepted for backward compatibility and ignored."""
    return _palette_class_color(cls)


def class_label(cls: str) -> str:
    """Human label of a scan class."""
    if cls.startswith("condition:"):
        return f"condition {cls[len('condition:'):]}"
    return _label(cls)


def _short(name: str, n: int = 28) -> str:
    name = str(name)
    return name if len(name) <= n else name[: n - 1] + "…"


_COMMENT = re.compile(r"<!--.*?-->", re.S)
_METADATA = re.compile(r"<metadata>.*?</metadata>", re.S)
_XMLNS = re.compile(r'\s+xmlns(:\w+)?="[^"]*"')


def figure_to_svg(fig: Figure, close: bool = True, tight: bool = False) -> str:
    """Return ``fig`` as an inline ``<svg>`` element (no XML header, no comments).

    Text is kept as SVG ``<text>`` (escaped by matplotlib), so names from input files
    can never become markup. Comments, which matplotlib fills with raw label text,
    are removed.
    """
    buf = io.StringIO()
    with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": None}):
        fig.savefig(buf, format="svg", bbox_inches="tight" if tight else None)
    if close:
        plt.close(fig)
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = _COMMENT.sub("", svg)
    # inline SVG in HTML needs no namespaces; drop them and the RDF metadata so the
    # page holds no URL at all
    svg = _METADATA.sub("", svg)
    svg = _XMLNS.sub("", svg)
    # responsive: keep viewBox, let CSS choose the width
    svg = re.sub(r'<svg([^>]*?) width="([\d.]+)pt" height="([\d.]+)pt"',
                 r'<svg\1 class="fig" style="max-width:\2pt"', svg, count=1)
    return svg


def figure_to_png_uri(fig: Figure, dpi: int = 80, close: bool = True, tight: bool = True) -> str:
    """Return ``fig`` as a ``data:image/png;base64,...`` URI."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    if close:
        plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _margins(fig: Figure, left: float = 0.6, right: float = 0.2, bottom: float = 0.5, top: float = 0.3) -> None:
    """Set subplot margins in inches (cheaper than ``bbox_inches='tight'``)."""
    w, h = fig.get_size_inches()
    fig.subplots_adjust(left=min(0.6, left / w), right=max(0.4, 1 - right / w),
                        bottom=min(0.6, bottom / h), top=max(0.4, 1 - top / h))


def _label_in(names: Iterable[str], n: int = 26, per_char: float = 0.068) -> float:
    """Width in inches needed by tick labels ``names`` (truncated to ``n``)."""
    longest = max((len(_short(x, n)) for x in names), default=4)
    return 0.25 + per_char * longest


def _new(ax: Axes | None, size: tuple[float, float], **margins: float) -> tuple[Figure, Axes]:
    if ax is None:
        fig, ax = plt.subplots(figsize=size)
        _margins(fig, **margins)
        return fig, ax
    return ax.figure, ax


# --------------------------------------------------------------------------- design
def plot_design(design: pd.DataFrame, ax: Axes | None = None) -> Figure:
    """Design matrix drawn by :func:`nilearn.plotting.plot_design_matrix`.

    Parameters
    ----------
    design : DataFrame
        Design matrix indexed by frame times, nilearn column names.
    ax : Axes, optional
    """
    from nilearn.plotting import plot_design_matrix

    with _style():
        n = design.shape[1]
        if ax is None:
            top = 0.3 + 0.062 * 0.87 * max((len(_short(c, 24)) for c in design.columns), default=4)
            fig, ax = plt.subplots(figsize=(min(14, max(5, 0.3 * n + 1.0)), 4.6 + top))
            _margins(fig, left=0.75, right=0.6, bottom=0.15, top=top)
        shown = design.copy()
        shown.columns = [_short(c, 24) for c in shown.columns]
        plot_design_matrix(shown, axes=ax)
        ax.set_ylabel("scan")
        ax.tick_params(axis="x", labelsize=8)
        return ax.figure


def plot_correlation(columns: Sequence[str], matrix: Sequence[Sequence[float | None]],
                     ax: Axes | None = None, info: float = 0.4, warn: float = 0.7) -> Figure:
    """Pearson correlation between task and confound regressors.

    Cells with ``|r| >= warn`` are annotated.
    """
    m = np.array([[np.nan if v is None else v for v in row] for row in matrix], dtype=float)
    n = len(columns)
    with _style():
        size = min(9.0, max(3.8, 0.38 * n + 1.8))
        lab = _label_in(columns, 20, 0.062)
        fig, ax = _new(ax, (size + lab + 1.4, size + lab), left=lab, bottom=lab, right=1.5, top=0.15)
        im = ax.imshow(m, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
        ax.set_xticks(range(n))
        ax.set_yticks(range(n))
        ax.set_xticklabels([_short(c, 20) for c in columns], rotation=60, ha="right")
        ax.set_yticklabels([_short(c, 20) for c in columns])
        for i in range(n):
            for j in range(n):
                v = m[i, j]
                if i != j and np.isfinite(v) and abs(v) >= info:
                    ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7.5,
                            color="white" if abs(v) >= warn else "black",
                            fontweight="bold" if abs(v) >= warn else "normal")
        ax.spines[:].set_visible(False)
        fig.colorbar(im, ax=ax, shrink=0.7, label="Pearson r")
        return fig


def _hbar(values: Mapping[str, float | None], ax: Axes, xlabel: str,
          warn: float | None, fail: float | None, xmax: float | None = None,
          fmt: str = "{:.2f}", highlight: Sequence[str] = ()) -> None:
    names = list(values)
    vals = np.array([np.nan if values[k] is None else float(values[k]) for k in names])
    colors = []
    for k, v in zip(names, vals):
        if not np.isfinite(v):
            colors.append("#dddddd")
        elif fail is not None and v >= fail:
            colors.append(SEVERITY_COLORS["fail"])
        elif warn is not None and v >= warn:
            colors.append(SEVERITY_COLORS["warn"])
        else:
            colors.append(OKABE_ITO["blue"] if k in highlight else "#8fb4d3")
    y = np.arange(len(names))
    ax.barh(y, np.nan_to_num(vals), color=colors, height=0.7)
    ax.set_yticks(y)
    ax.set_yticklabels([_short(n, 34) for n in names])
    ax.invert_yaxis()
    finite = vals[np.isfinite(vals)]
    top = max([1e-9, *(finite.tolist()), *(t for t in (warn, fail) if t is not None)]) * 1.15
    if xmax is not None:
        top = min(top, xmax) if finite.size and finite.max() <= xmax else top
    ax.set_xlim(0, top)
    for t, lab, col in ((warn, "warn", SEVERITY_COLORS["warn"]), (fail, "fail", SEVERITY_COLORS["fail"])):
        if t is not None:
            ax.axvline(t, color=col, ls="--", lw=1.2)
            ax.text(t, -0.75, f" {lab} {t:g}", color=col, fontsize=8, va="bottom", ha="left")
    for yi, v in zip(y, vals):
        ax.text(v if np.isfinite(v) else 0, yi, " " + (fmt.format(v) if np.isfinite(v) else "n/a"),
                va="center", fontsize=8)
    ax.set_xlabel(xlabel)


def plot_vif(vif: Mapping[str, float | None], warn: float = 5.0, fail: float = 10.0,
             task: Sequence[str] = (), ax: Axes | None = None) -> Figure:
    """Variance inflation factor of each regressor with warn/fail lines.

    Parameters
    ----------
    vif : mapping
        Column name -> VIF (``record.diagnostics.collinearity.vif``).
    warn, fail : float
        Thresholds drawn as dashed lines.
    task : sequence of str
        Regressors of interest, drawn in a darker colour.
    """
    with _style():
        lab = _label_in(vif, 34)
        fig, ax = _new(ax, (4.6 + lab, 0.28 * len(vif) + 1.2), left=lab, top=0.4, bottom=0.55, right=0.3)
        _hbar(vif, ax, "VIF (1 = no shared variance)", warn, fail, fmt="{:.1f}", highlight=task)
        return fig


def _spans(times: np.ndarray, mask: np.ndarray, t_r: float) -> list[tuple[float, float]]:
    out = []
    i = 0
    n = len(mask)
    while i < n:
        if mask[i]:
            j = i
            while j < n and mask[j]:
                j += 1
            out.append((times[i] - t_r / 2, (j - i) * t_r))
            i = j
        else:
            i += 1
    return out


def _timeline_rows(t: np.ndarray, t_r: float, conds: Sequence[str], modeled: Sequence[Mapping[str, Any]],
                   unmodeled: Sequence[Mapping[str, Any]], nonsteady: Sequence[int]) -> list[tuple[str, list, str]]:
    rows: list[tuple[str, list, str]] = []
    for c in conds:
        spans = [(float(e["onset"]), float(e.get("duration") or 0) or t_r / 2) for e in modeled
                 if str(e.get("trial_type")) == c and e.get("onset") is not None]
        rows.append((_short(c, 24), spans, class_color("condition:" + c, conds)))
    unm_types: list[str] = []
    for e in unmodeled:
        if str(e.get("trial_type")) not in unm_types:
            unm_types.append(str(e.get("trial_type")))
    for u in unm_types:
        spans = [(float(e["onset"]), max(float(e.get("duration") or 0), t_r / 2)) for e in unmodeled
                 if str(e.get("trial_type")) == u and e.get("onset") is not None]
        rows.append((_short(u, 20) + " (unmodelled)", spans, CLASS_COLORS["unmodeled_event"]))
    n = len(t)
    nss = [int(i) for i in nonsteady if 0 <= int(i) < n]
    if nss:
        mask = np.zeros(n, bool)
        mask[nss] = True
        rows.append(("non-steady volumes", _spans(t, mask, t_r), CLASS_COLORS["nonsteady"]))
    return rows


def _draw_timeline(axt: Axes, rows: list[tuple[str, list, str]]) -> None:
    for k, (_, spans, col) in enumerate(rows):
        axt.broken_barh(spans, (k - 0.4, 0.8), facecolors=col, edgecolors="none")
    axt.set_yticks(range(len(rows)))
    axt.set_yticklabels([r[0] for r in rows], fontsize=8)
    axt.set_ylim(max(len(rows), 1) - 0.5, -0.5)
    axt.spines[["left", "bottom"]].set_visible(False)
    axt.tick_params(axis="x", bottom=False, labelbottom=False)
    axt.tick_params(axis="y", length=0)


def _draw_weights(ax: Axes, t: np.ndarray, w: np.ndarray, classes: Sequence[str], conds: Sequence[str],
                  share: Mapping[str, float | None], title: str | None) -> None:
    from matplotlib.collections import PolyCollection

    present = list(dict.fromkeys(classes))
    wz = np.nan_to_num(w)
    half = (np.median(np.diff(t)) / 2) if len(t) > 1 else 0.5
    # one step-shaped polygon per run of consecutive scans of the same class, all in a
    # single collection (fast to draw, small SVG)
    verts, colors = [], []
    i, n = 0, len(t)
    while i < n:
        j = i
        while j < n and classes[j] == classes[i]:
            j += 1
        xs = np.repeat(t[i:j], 2) + np.tile([-half, half], j - i)
        ys = np.repeat(wz[i:j], 2)
        verts.append(np.column_stack([np.r_[xs[0], xs, xs[-1]], np.r_[0.0, ys, 0.0]]))
        colors.append(class_color(classes[i], conds))
        i = j
    # one bar per scan: rasterised inside the SVG (keeps axes and text as vectors, ~5x smaller)
    ax.add_collection(PolyCollection(verts, facecolors=colors, edgecolors="none", linewidths=0, rasterized=True))
    if n:
        lo, hi = float(np.nanmin(wz)), float(np.nanmax(wz))
        pad = 0.06 * max(hi - lo, 1e-12)
        ax.set_ylim(min(lo, 0) - pad, max(hi, 0) + pad)
        ax.set_xlim(t[0] - 2 * half, t[-1] + 2 * half)
    ax.axhline(0, color="black", lw=0.8)
    ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(4, symmetric=True))
    ax.set_ylabel("weight")
    if title:
        ax.set_title(title, loc="left", fontsize=10, fontweight="bold", pad=3)

    def _key(cls: str) -> float:
        return -(share.get(cls) or 0.0)

    handles = []
    for cls in sorted(present, key=_key):
        v = share.get(cls)
        lab = class_label(cls)
        if v is not None and np.isfinite(v):
            lab = f"{max(v, 0.0):>4.0%}  {lab}"
        handles.append(Patch(color=class_color(cls, conds), label=_short(lab, 46)))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.005, 1.05), frameon=False,
              title="share of negative weight", title_fontsize=8, fontsize=8,
              handlelength=1.0, borderaxespad=0.2, labelspacing=0.25, alignment="left")


def plot_contrast_weights(
    frame_times: Sequence[float],
    weights: Sequence[float | None] | Mapping[str, Sequence[float | None]],
    scan_classes: Sequence[str] | None = None,
    modeled: Sequence[Mapping[str, Any]] = (),
    unmodeled: Sequence[Mapping[str, Any]] = (),
    epochs: Sequence[Mapping[str, Any]] = (),
    nonsteady: Sequence[int] = (),
    negative_share: Mapping[str, Any] | None = None,
    title: str | Mapping[str, str] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Contrast weight time course ``w = pinv(X)ᵀ c``, coloured by what each scan is.

    The estimate is ``ĉ = wᵀ y``: scans with negative weight are what the contrast
    subtracts. Each scan's weight is filled with the colour of its class (a modelled
    condition, fixation, unmodelled event, short gap, run edge, non-steady volume), so
    where the negative weight goes — the usual explanation of a sign flip — is visible
    at once. A timeline strip on top shows the modelled blocks, unmodelled events and
    flagged volumes; the legend of each panel gives the share of the contrast's
    negative weight per class.

    Parameters
    ----------
    frame_times : sequence of float
        Time of each scan (s), ``record.design.frame_times``.
    weights : sequence of float, or mapping name -> sequence
        ``record.contrasts[c].weights``; a mapping draws one panel per contrast under a
        shared timeline.
    scan_classes : sequence of str, optional
        ``record.diagnostics.baseline.scan_classes`` (one per scan).
    modeled, unmodeled : sequence of dict
        ``record.events.modeled`` / ``record.events.unmodeled`` (onset, duration, trial_type).
    epochs : sequence of dict
        ``record.diagnostics.baseline.epochs`` (their kinds are already in ``scan_classes``).
    nonsteady : sequence of int
        Indices of non-steady-state volumes left in the model.
    negative_share : mapping, optional
        ``baseline_composition.negative`` (class -> share), or, when ``weights`` is a
        mapping, contrast name -> such a mapping.
    title : str or mapping, optional
        Panel title(s).
    ax : Axes, optional
        Draw a single contrast's weights (no timeline strip) into this axes.
    """
    t = np.asarray(frame_times, dtype=float)
    panels: dict[str, Sequence[float | None]]
    multi = isinstance(weights, Mapping)
    panels = dict(weights) if multi else {"": weights}  # type: ignore[arg-type]
    shares: dict[str, Mapping[str, Any]] = {}
    titles: dict[str, str | None] = {}
    for name in panels:
        shares[name] = dict((negative_share or {}).get(name) or {}) if multi else dict(negative_share or {})
        titles[name] = (title or {}).get(name, name) if isinstance(title, Mapping) else (title if not multi else name)
    n = len(t)
    t_r = float(np.median(np.diff(t))) if n > 1 else 1.0
    classes = list(scan_classes)[:n] if scan_classes is not None and len(scan_classes) >= n else ["scan"] * n
    conds = _condition_names(classes)
    conds = sorted(set(conds) | {str(e.get("trial_type")) for e in modeled})

    def arr(w: Sequence[float | None]) -> np.ndarray:
        a = np.array([np.nan if v is None else v for v in w], dtype=float)[:n]
        return np.pad(a, (0, n - len(a)), constant_values=np.nan)

    with _style():
        if ax is not None:
            name = next(iter(panels))
            _draw_weights(ax, t, arr(panels[name]), classes, conds, shares[name], titles[name])
            return ax.figure
        rows = _timeline_rows(t, t_r, conds, modeled, unmodeled, nonsteady)
        lab = _label_in([r[0] for r in rows], 40, 0.062)
        k = len(panels)
        heights = [0.22 * len(rows) + 0.2] + [1.9] * k
        fig, axes = plt.subplots(1 + k, 1, figsize=(8.5 + lab + 2.6, sum(heights) + 0.35 * k + 0.8),
                                 sharex=True, gridspec_kw={"height_ratios": heights, "hspace": 0.35})
        _margins(fig, left=lab, right=2.7, bottom=0.5, top=0.15)
        _draw_timeline(axes[0], rows)
        for axw, name in zip(axes[1:], panels):
            _draw_weights(axw, t, arr(panels[name]), classes, conds, shares[name], titles[name])
            axw.tick_params(axis="x", labelbottom=False)
        axes[-1].tick_params(axis="x", labelbottom=True)
        axes[-1].set_xlabel("time (s)")
        if n:
            axes[-1].set_xlim(t[0] - t_r, t[-1] + t_r)
        return fig


def plot_baseline_composition(compositions: Mapping[str, Mapping[str, float | None]],
                              ax: Axes | None = None) -> Figure:
    """Stacked bar per contrast: where its negative weight falls (share per scan class).

    Parameters
    ----------
    compositions : mapping
        Contrast name -> ``baseline_composition.negative`` mapping.
    """
    names = list(compositions)
    classes: list[str] = []
    for comp in compositions.values():
        for k in comp:
            if k not in classes:
                classes.append(k)
    order = [c for c in ("nonsteady", "unmodeled_event", "short_gap", "run_edge", "fixation") if c in classes]
    order += [c for c in classes if c not in order]
    conds = _condition_names(order)
    with _style():
        lab = _label_in(names, 30)
        fig, ax = _new(ax, (7.5 + lab, 0.55 * len(names) + 1.3), left=lab, right=2.4, bottom=0.6, top=0.15)
        left = np.zeros(len(names))
        for cls in order:
            vals = np.array([float(compositions[n].get(cls) or 0.0) for n in names])
            ax.barh(range(len(names)), vals, left=left, color=class_color(cls, conds),
                    label=class_label(cls), height=0.65, edgecolor="white", lw=0.5)
            for i, (l, v) in enumerate(zip(left, vals)):  # noqa: E741
                if v >= 0.06:
                    ax.text(l + v / 2, i, f"{v:.0%}", ha="center", va="center", fontsize=8,
                            color="black" if cls in ("fixation", "short_gap") or class_color(cls, conds) in ("#DDCC77", "#999933")
                            else "white")
            left += vals
        ax.set_yticks(range(len(names)))
        ax.set_yticklabels([_short(n, 30) for n in names])
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
        ax.set_xlabel("share of the contrast's negative weight")
        ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), frameon=False, fontsize=8)
        return fig


def _r2_bars(r2: Mapping[str, float | None], xlabel: str, warn: float, fail: float,
             ax: Axes | None) -> Figure:
    """Horizontal R² bars (0-1) with the warn/fail lines."""
    with _style():
        lab = _label_in(r2, 34)
        fig, ax = _new(ax, (4.2 + lab, 0.3 * len(r2) + 1.2), left=lab, top=0.4, bottom=0.55, right=0.3)
        _hbar(r2, ax, xlabel, warn, fail, xmax=1.0)
        return fig


def plot_drift_overlap(r2: Mapping[str, float | None], warn: float = 0.2, fail: float = 0.5,
                       ax: Axes | None = None) -> Figure:
    """R² of each task regressor (or contrast) on the drift + constant columns."""
    return _r2_bars(r2, "R² on drift + constant", warn, fail, ax)


def plot_spectra(freqs_hz: Sequence[float], power: Mapping[str, Sequence[float | None]],
                 cutoff_s: float | None = None, recommended_s: float | None = None,
                 ax: Axes | None = None) -> Figure:
    """Power spectrum of each task regressor with the high-pass cut-off.

    Power left of the cut-off line is removed by the drift model.
    """
    f = np.asarray(freqs_hz, dtype=float)
    with _style():
        fig, ax = _new(ax, (6.0, 3.2), left=0.75, bottom=0.55, top=0.15, right=0.2)
        names = sorted(power)
        for name in names:
            p = power[name]
            pv = np.array([np.nan if v is None else v for v in p], dtype=float)[: len(f)]
            tot = np.nansum(pv)
            ax.plot(f[: len(pv)], pv / tot if tot else pv, color=class_color("condition:" + name, names),
                    lw=1.6, label=_short(name, 26))
        if cutoff_s:
            ax.axvline(1.0 / cutoff_s, color=SEVERITY_COLORS["fail"], ls="--", lw=1.2,
                       label=f"current cut-off ({cutoff_s:.0f} s)")
            ax.axvspan(0, 1.0 / cutoff_s, color=SEVERITY_COLORS["fail"], alpha=0.08)
        if recommended_s:
            ax.axvline(1.0 / recommended_s, color=OKABE_ITO["green"], ls=":", lw=1.5,
                       label=f"keeps 90 % ({recommended_s:.0f} s)")
        if f.size:
            ax.set_xlim(0, min(f.max(), 0.1))
        ax.set_xlabel("frequency (Hz)")
        ax.set_ylabel("share of power")
        ax.legend(frameon=False, fontsize=8)
        return fig


def plot_confound_r2(r2: Mapping[str, float | None], warn: float = 0.2, fail: float = 0.5,
                     ax: Axes | None = None) -> Figure:
    """R² of each task regressor on the confound regressors."""
    return _r2_bars(r2, "R² on confounds", warn, fail, ax)
