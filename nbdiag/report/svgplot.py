"""Small, fast inline-SVG charts: the one chart stack of nbdiag.

The reports draw many small figures (one set per run × variant); matplotlib takes
~0.1 s per figure, these take ~1 ms. The same charts serve files and notebooks:
:func:`save` writes one as an ``.svg`` file (the README figures), :func:`show` displays
one in Jupyter. Every chart:

* is plain SVG text with a ``viewBox`` (scales with the page, never clipped: label
  widths are measured before the axes are placed);
* escapes every name it writes (names come from input files);
* has a ``<title>`` tooltip on every plotted mark (hover shows the exact value);
* uses the report palette (:mod:`nbdiag.report.palette`) and writes the colour key of
  each mark as ``data-key`` (tests check that a condition has one colour everywhere);
* is deterministic: no ids, no random salt, numbers rounded to 2 decimals.

No statistics are computed here: values come from run records.
"""

from __future__ import annotations

import base64
import math
import struct
import os
import zlib
from html import escape
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from nbdiag.core.labels import class_label
from nbdiag.report.palette import SEVERITY_COLORS, class_color, condition_color, text_color_on
from nbdiag.core.jsonio import finite_number as _num

__all__ = [
    "text_width",
    "Svg",
    "hbars",
    "save",
    "show",
    "standalone",
    "heatmap",
    "lines",
    "weights_figure",
    "design_image",
    "strip_plot",
    "fmt_value",
]

FONT = 11.0
FONT_FAMILY = "DejaVu Sans, Verdana, Arial, sans-serif"


def text_width(s: Any, size: float = FONT) -> float:
    """Generous width estimate (px) of ``s`` set in DejaVu Sans at ``size`` px."""
    w = 0.0
    for ch in str(s):
        if ch in "il.,:;'|!":
            w += 0.32
        elif ch in "mwMW@%":
            w += 0.92
        elif ch.isupper() or ch.isdigit():
            w += 0.70
        else:
            w += 0.62
    return w * size + 2


def _e(s: Any) -> str:
    return escape(str(s), quote=True)


def _f(v: float) -> str:
    """Coordinate with 2 decimals, no trailing zeros (stable, small)."""
    s = f"{v:.2f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def fmt_value(v: Any, digits: int = 3) -> str:
    """Number to ``digits`` significant digits (``n/a`` for null/NaN)."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "n/a"
    if not math.isfinite(f):
        return "n/a"
    if f == 0:
        return "0"
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool) and abs(f) < 1e6:
        return str(int(v))  # counts stay counts; measured values keep 3 significant digits
    if abs(f) >= 10 ** digits or abs(f) < 1e-3:
        return f"{f:.{digits - 1}e}"
    return f"{f:#.{digits}g}".rstrip(".")


def _short(name: Any, n: int = 32) -> str:
    s = str(name)
    return s if len(s) <= n else s[: n - 1] + "…"


class Svg:
    """Accumulates SVG elements; ``str()`` gives the ``<svg>`` element."""

    def __init__(self, width: float, height: float, label: str = "") -> None:
        self.width, self.height, self.label = width, height, label
        self.parts: list[str] = []

    def add(self, s: str) -> None:
        self.parts.append(s)

    def text(self, x: float, y: float, s: Any, size: float = FONT, anchor: str = "start", color: str = "#1d2330",
             bold: bool = False, rotate: float | None = None, baseline: str = "middle") -> None:
        attrs = f'x="{_f(x)}" y="{_f(y)}" font-size="{_f(size)}" text-anchor="{anchor}" dominant-baseline="{baseline}"'
        if color != "#1d2330":
            attrs += f' fill="{color}"'
        if bold:
            attrs += ' font-weight="bold"'
        if rotate is not None:
            attrs += f' transform="rotate({_f(rotate)} {_f(x)} {_f(y)})"'
        self.add(f"<text {attrs}>{_e(s)}</text>")

    def rect(self, x: float, y: float, w: float, h: float, fill: str, title: str | None = None,
             key: str | None = None, stroke: str | None = None) -> None:
        extra = f' data-key="{_e(key)}"' if key else ""
        extra += f' stroke="{stroke}" stroke-width="0.5"' if stroke else ""
        body = f"<title>{_e(title)}</title>" if title else ""
        self.add(f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(max(w, 0))}" height="{_f(max(h, 0))}" '
                 f'fill="{fill}"{extra}>{body}</rect>' if body else
                 f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(max(w, 0))}" height="{_f(max(h, 0))}" fill="{fill}"{extra}/>')

    def line(self, x1: float, y1: float, x2: float, y2: float, color: str = "#1d2330", width: float = 1,
             dash: str | None = None) -> None:
        d = f' stroke-dasharray="{dash}"' if dash else ""
        self.add(f'<line x1="{_f(x1)}" y1="{_f(y1)}" x2="{_f(x2)}" y2="{_f(y2)}" stroke="{color}" '
                 f'stroke-width="{_f(width)}"{d}/>')

    def __str__(self) -> str:
        label = f' aria-label="{_e(self.label)}"' if self.label else ""
        return (f'<svg class="fig" role="img"{label} viewBox="0 0 {_f(self.width)} {_f(self.height)}" '
                f'width="{_f(self.width)}" height="{_f(self.height)}" font-family="{FONT_FAMILY}">'
                + "".join(self.parts) + "</svg>")


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(n - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step - 1e-9) * step
    out = []
    v = start
    while v <= hi + 1e-9 * step:
        out.append(round(v, 10))
        v += step
    return out


def _tick_label(v: float, pct: bool = False) -> str:
    if pct:
        return f"{v * 100:.0f} %"
    return f"{v:g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.1e}"


def _legend(svg: Svg, x: float, y: float, items: Sequence[tuple[str, str, str]]) -> float:
    """Swatch + label rows at (x, y); items are (key, colour, label). Returns the bottom."""
    for i, (key, color, label) in enumerate(items):
        yy = y + i * 16
        svg.rect(x, yy - 5, 10, 10, color, key=key)
        svg.text(x + 15, yy, label, size=10)
    return y + 16 * len(items)


# --------------------------------------------------------------------------- bars
def hbars(values: Mapping[str, Any], xlabel: str, warn: float | None = None, fail: float | None = None,
          xmax: float | None = None, highlight: Iterable[str] = (), unit: str = "", width: float = 520,
          label: str = "") -> str:
    """Horizontal bars with warn/fail lines; a bar crossing a threshold takes its severity colour."""
    names = list(values)
    vals = [_num(values[k]) for k in names]
    hl = set(highlight)
    lab_w = max((text_width(_short(n, 34), 10) for n in names), default=40) + 8
    finite = [v for v in vals if v is not None]
    top = max([1e-9, *finite, *(t for t in (warn, fail) if t is not None)]) * 1.12
    if xmax is not None and (not finite or max(finite) <= xmax):
        top = min(top, xmax)
    val_w = 44
    plot_w = max(160.0, width - lab_w - val_w - 12)
    row = 18
    top_pad = 18
    h = top_pad + row * len(names) + 40
    svg = Svg(lab_w + plot_w + val_w + 12, h, label or xlabel)
    x0 = lab_w

    def X(v: float) -> float:
        return x0 + plot_w * max(0.0, min(v, top)) / top

    for t in _ticks(0, top):
        svg.line(X(t), top_pad - 4, X(t), top_pad + row * len(names), "#e3e6eb")
        svg.text(X(t), top_pad + row * len(names) + 11, _tick_label(t), size=9, anchor="middle")
    for i, (n, v) in enumerate(zip(names, vals)):
        y = top_pad + i * row
        if v is None:
            color, sev = "#dddddd", "n/a"
        elif fail is not None and v >= fail:
            color, sev = SEVERITY_COLORS["fail"], "fail"
        elif warn is not None and v >= warn:
            color, sev = SEVERITY_COLORS["warn"], "warn"
        else:
            color, sev = ("#0072B2" if n in hl else "#8fb4d3"), "below warn"
        svg.rect(x0, y + 3, (X(v) - x0) if v is not None else 0, row - 6, color,
                 title=f"{n}: {fmt_value(v)}{(' ' + unit) if unit else ''} ({sev})")
        svg.text(x0 - 6, y + row / 2, _short(n, 34), size=10, anchor="end")
        svg.text((X(v) if v is not None else x0) + 4, y + row / 2, fmt_value(v), size=9)
    for t, name in ((warn, "warn"), (fail, "fail")):
        if t is not None and t <= top:
            svg.line(X(t), top_pad - 6, X(t), top_pad + row * len(names), SEVERITY_COLORS[name], 1.2, "4 3")
            svg.text(X(t) + (2 if name == "fail" else -2), 8, f"{name} {t:g}", size=9,
                     anchor="start" if name == "fail" else "end", color=SEVERITY_COLORS[name])
    svg.text(x0 + plot_w / 2, h - 8, xlabel, size=10, anchor="middle")
    return str(svg)


# --------------------------------------------------------------------------- heatmap
def heatmap(rows: Sequence[str], cols: Sequence[str], colors: Sequence[Sequence[str]],
            titles: Sequence[Sequence[str]] | None = None, annot: Sequence[Sequence[str]] | None = None,
            cell: float = 16, legend: Sequence[tuple[str, str, str]] = (), label: str = "",
            row_links: Sequence[str | None] | None = None, label_chars: int = 60) -> str:
    """Grid of coloured cells with row labels left (up to ``label_chars`` characters), column labels
    rotated on top."""
    lab_w = max((text_width(_short(r, label_chars), 10) for r in rows), default=40) + 8
    top_h = max((text_width(_short(c, 30), 10) for c in cols), default=20) * 0.72 + 14
    leg_w = (max((text_width(lbl, 10) for _, _, lbl in legend), default=0) + 30) if legend else 0
    reach = max((cell * (j + 0.5) + 0.72 * text_width(_short(c, 30), 10) for j, c in enumerate(cols)), default=0.0)
    w = lab_w + max(cell * len(cols) + 12 + leg_w, reach + 8)
    h = max(top_h + cell * len(rows) + 8, top_h + 16 * len(legend) + 12)
    svg = Svg(w, h, label)
    for j, c in enumerate(cols):
        x = lab_w + cell * (j + 0.5)
        svg.text(x, top_h - 4, _short(c, 30), size=10, rotate=-45, baseline="auto")
    for i, r in enumerate(rows):
        y = top_h + i * cell
        link = row_links[i] if row_links else None
        if link:
            svg.add(f'<a href="{_e(link)}">')
        svg.text(lab_w - 6, y + cell / 2, _short(r, label_chars), size=10, anchor="end", color="#0072B2" if link else "#1d2330")
        if link:
            svg.add("</a>")
        for j in range(len(cols)):
            svg.rect(lab_w + cell * j, y, cell - 1, cell - 1, colors[i][j],
                     title=titles[i][j] if titles else None)
            if annot and annot[i][j]:
                svg.text(lab_w + cell * (j + 0.5), y + cell / 2, annot[i][j], size=7.5, anchor="middle",
                         color=text_color_on(colors[i][j]))
    if legend:  # below the rotated column labels, right of the grid
        _legend(svg, lab_w + cell * len(cols) + 18, top_h + 6, legend)
    return str(svg)


# --------------------------------------------------------------------------- lines
def lines(x: Sequence[float], series: Mapping[str, Sequence[Any]], xlabel: str, ylabel: str,
          vlines: Sequence[tuple[float, str, str, str]] = (), xmax: float | None = None,
          width: float = 560, height: float = 220, label: str = "") -> str:
    """Line chart, one line per condition (condition colours), legend once, vertical markers."""
    xa = np.asarray(x, dtype=float)
    keep = np.isfinite(xa) & ((xa <= xmax) if xmax is not None else True)
    names = list(series)
    leg_items = [(f"condition:{n}", condition_color(n), _short(n, 26)) for n in names]
    leg_items += [(f"marker:{i}", col, lab) for i, (_, col, lab, _) in enumerate(vlines)]
    leg_w = max((text_width(lbl, 10) for _, _, lbl in leg_items), default=0) + 30
    left, bottom, top = 48, 34, 10
    plot_w = max(200.0, width - left - leg_w - 10)
    plot_h = height - bottom - top
    svg = Svg(left + plot_w + leg_w + 10, height, label or ylabel)
    ys = []
    for n in names:
        ys.append(np.array([np.nan if v is None else float(v) for v in series[n]], dtype=float)[: len(xa)])
    x_hi = float(xa[keep].max()) if keep.any() else 1.0
    y_hi = max([float(np.nanmax(y[keep[: len(y)]])) for y in ys if np.isfinite(y[keep[: len(y)]]).any()] or [1.0])
    y_hi = y_hi * 1.08 if y_hi > 0 else 1.0

    def X(v: float) -> float:
        return left + plot_w * v / x_hi if x_hi > 0 else left

    def Y(v: float) -> float:
        return top + plot_h * (1 - v / y_hi)

    for t in _ticks(0, x_hi):
        svg.line(X(t), top, X(t), top + plot_h, "#eef0f3")
        svg.text(X(t), top + plot_h + 11, _tick_label(t), size=9, anchor="middle")
    for t in _ticks(0, y_hi, 4):
        svg.text(left - 4, Y(t), _tick_label(t), size=9, anchor="end")
    svg.line(left, top + plot_h, left + plot_w, top + plot_h, "#1d2330")
    svg.line(left, top, left, top + plot_h, "#1d2330")
    for n, y in zip(names, ys):
        pts = [(X(xa[i]), Y(y[i])) for i in range(len(y)) if keep[i] and np.isfinite(y[i])]
        if pts:
            d = " ".join(f"{_f(a)},{_f(b)}" for a, b in pts)
            svg.add(f'<polyline points="{d}" fill="none" stroke="{condition_color(n)}" stroke-width="1.6" '
                    f'data-key="condition:{_e(n)}"><title>{_e(n)}</title></polyline>')
    for i, (xv, col, lab, dash) in enumerate(vlines):
        if xv is not None and 0 <= xv <= x_hi:
            svg.line(X(xv), top, X(xv), top + plot_h, col, 1.4, dash or None)
    _legend(svg, left + plot_w + 14, top + 6, leg_items)
    svg.text(left + plot_w / 2, height - 6, xlabel, size=10, anchor="middle")
    svg.text(10, top + plot_h / 2, ylabel, size=10, anchor="middle", rotate=-90)
    return str(svg)


# --------------------------------------------------------------------------- weights
def _runs_of(seq: Sequence[str]) -> list[tuple[int, int, str]]:
    out, i, n = [], 0, len(seq)
    while i < n:
        j = i
        while j < n and seq[j] == seq[i]:
            j += 1
        out.append((i, j, seq[i]))
        i = j
    return out


class _WeightsLayout:
    """Sizes and scales of the weights figure: label widths are measured before the axes are placed."""

    def __init__(self, t: np.ndarray, names: list[str], present: list[str],
                 timeline: Sequence[tuple[str, str, str, list[tuple[float, float]]]], width: float) -> None:
        self.col_w = [max(46.0, text_width(_short(c, 16), 9) + 6) for c in names]
        self.leg_lab_w = max((text_width(_short(class_label(k), 30), 10) for k in present), default=40) + 18
        self.leg_w = self.leg_lab_w + sum(self.col_w) + 8
        tl_lab_w = max((text_width(_short(r[2], 36), 10) for r in timeline), default=40)
        self.left = max(tl_lab_w + 10, 56.0)
        self.plot_w = max(360.0, width - self.left - self.leg_w - 16)
        self.tl_h = 14 * len(timeline) + 6
        self.panel_h, self.gap, self.top = 92.0, 22.0, 8.0
        h_panels = self.top + self.tl_h + self.gap + len(names) * (self.panel_h + self.gap) + 16
        h_leg = 30 + 16 * len(present) + 10
        self.h = max(h_panels, h_leg)
        n = len(t)
        self.half = float(np.median(np.diff(t)) / 2) if n > 1 else 0.5
        self.x_lo, self.x_hi = (float(t[0] - self.half), float(t[-1] + self.half)) if n else (0.0, 0.0)

    def X(self, v: float) -> float:
        return self.left + self.plot_w * (v - self.x_lo) / (self.x_hi - self.x_lo) if self.x_hi > self.x_lo \
            else self.left


def _weights_timeline(svg: Svg, lay: _WeightsLayout,
                      timeline: Sequence[tuple[str, str, str, list[tuple[float, float]]]]) -> None:
    X = lay.X
    for k, (key, color, lab, spans) in enumerate(timeline):
        y = lay.top + k * 14
        svg.text(lay.left - 6, y + 6, _short(lab, 36), size=10, anchor="end")
        segs = "".join(f"M{_f(X(a))} {_f(y + 1)}h{_f(max(X(a + d) - X(a), 0.8))}v11h-{_f(max(X(a + d) - X(a), 0.8))}z"
                       for a, d in spans if a is not None)
        if segs:
            svg.add(f'<path d="{segs}" fill="{color}" data-key="{_e(key)}"><title>{_e(lab)}: '
                    f'{len(spans)} event(s)</title></path>')


def _weights_panel(svg: Svg, lay: _WeightsLayout, py: float, t: np.ndarray, w: np.ndarray, cls: list[str],
                   name: str, title: str, share: Any) -> None:
    """One contrast's weights: a filled step path per scan class (all runs of scans of that class)."""
    X, left, half = lay.X, lay.left, lay.half
    wz = np.nan_to_num(w)
    lo, hi = min(float(wz.min()), 0.0), max(float(wz.max()), 0.0)
    span = (hi - lo) or 1.0

    def Y(v: float) -> float:
        return py + lay.panel_h * (1 - (v - lo) / span)

    svg.text(left, py - 7, _short(title, 80), size=10.5, bold=True)
    svg.text(left - 4, Y(hi), fmt_value(hi, 2), size=9, anchor="end")
    svg.text(left - 4, Y(lo), fmt_value(lo, 2), size=9, anchor="end")
    svg.text(left - 4, Y(0), "0", size=9, anchor="end")
    by_class: dict[str, list[str]] = {}
    for i, j, c in _runs_of(cls):
        d = [f"M{_f(X(t[i] - half))} {_f(Y(0))}"]
        for k in range(i, j):
            d.append(f"V{_f(Y(wz[k]))}H{_f(X(t[k] + half))}")
        d.append(f"V{_f(Y(0))}z")
        by_class.setdefault(c, []).append("".join(d))
    for c, ds in by_class.items():
        svg.add(f'<path d="{"".join(ds)}" fill="{class_color(c)}" data-key="{_e(c)}">'
                f'<title>{_e(name)}: {_e(class_label(c))}, {share(name, c):.0%} of the negative weight</title></path>')
    svg.line(left, Y(0), left + lay.plot_w, Y(0), "#1d2330", 0.8)
    svg.line(left, py, left, py + lay.panel_h, "#1d2330", 0.8)


def _weights_share_table(svg: Svg, lay: _WeightsLayout, names: list[str], present: list[str], share: Any) -> None:
    """The figure's legend: one row per class, one column per contrast (share of its negative weight)."""
    lx = lay.left + lay.plot_w + 14
    svg.text(lx, 8, "share of negative weight", size=9.5, bold=True, baseline="hanging")
    cx = lx + lay.leg_lab_w
    for c, cw in zip(names, lay.col_w):
        svg.text(cx + cw - 2, 28, _short(c, 16), size=9, anchor="end")
        cx += cw
    for r, k in enumerate(present):
        y = 44 + r * 16
        svg.rect(lx, y - 5, 10, 10, class_color(k), key=k)
        svg.text(lx + 14, y, _short(class_label(k), 30), size=10)
        cx = lx + lay.leg_lab_w
        for c, cw in zip(names, lay.col_w):
            v = share(c, k)
            svg.text(cx + cw - 2, y, f"{v:.0%}" if v else "–", size=9.5, anchor="end")
            cx += cw


def weights_figure(frame_times: Sequence[float], weights: Mapping[str, Sequence[Any]],
                   classes: Sequence[str] | None, timeline: Sequence[tuple[str, str, str, list[tuple[float, float]]]],
                   shares: Mapping[str, Mapping[str, Any]], titles: Mapping[str, str] | None = None,
                   width: float = 1040, label: str = "contrast weights") -> str:
    """Timeline strip + one weight panel per contrast; one legend (a share table) for the figure.

    Parameters
    ----------
    frame_times : sequence of float
    weights : mapping contrast -> per-scan weights
    classes : per-scan class names (``record.diagnostics.baseline.scan_classes``)
    timeline : rows of (key, colour, label, [(onset, duration), ...])
    shares : contrast -> class -> share of negative weight (legend columns)
    """
    t = np.asarray(frame_times, dtype=float)
    n = len(t)
    cls = list(classes)[:n] if classes is not None and len(classes) >= n else ["scan"] * n
    names = list(weights)
    present = list(dict.fromkeys(cls))

    def share_of(c: str, k: str) -> float:
        return _num((shares.get(c) or {}).get(k)) or 0.0

    present.sort(key=lambda k: -max((share_of(c, k) for c in names), default=0.0))
    lay = _WeightsLayout(t, names, present, timeline, width)
    svg = Svg(lay.left + lay.plot_w + lay.leg_w + 16, lay.h, label)
    if n == 0:
        return str(svg)
    _weights_timeline(svg, lay, timeline)
    y0 = lay.top + lay.tl_h + lay.gap
    for p, name in enumerate(names):
        w = np.array([np.nan if v is None else float(v) for v in weights[name]], dtype=float)[:n]
        w = np.pad(w, (0, n - len(w)), constant_values=np.nan)
        _weights_panel(svg, lay, y0 + p * (lay.panel_h + lay.gap), t, w, cls, name, (titles or {}).get(name, name),
                       share_of)
    # time axis under the last panel
    yb = y0 + len(names) * (lay.panel_h + lay.gap) - lay.gap + 2
    for tv in _ticks(lay.x_lo, lay.x_hi, 8):
        svg.line(lay.X(tv), yb, lay.X(tv), yb + 3, "#1d2330")
        svg.text(lay.X(tv), yb + 10, _tick_label(tv), size=9, anchor="middle")
    svg.text(lay.left + lay.plot_w / 2 + 60, yb + 10, "", size=9)
    svg.text(lay.left + lay.plot_w, yb + 22 if lay.h - yb > 24 else yb + 10, "time (s)", size=9.5, anchor="end")
    _weights_share_table(svg, lay, names, present, share_of)
    return str(svg)


def _png_gray(a: np.ndarray) -> bytes:
    """Encode an 8-bit greyscale array as PNG (no dependency, deterministic)."""
    h, w = a.shape
    raw = b"".join(b"\x00" + a[i].tobytes() for i in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def design_image(values: np.ndarray, columns: Sequence[str], roles: Mapping[str, str] | None = None,
                 col_w: float = 14, height: float = 300, label: str = "design matrix") -> str:
    """Design matrix as nilearn draws it (each column scaled to its max |value|, grey scale)."""
    a = np.asarray(values, dtype=float)
    n, k = a.shape if a.ndim == 2 else (0, 0)
    top_h = max((text_width(_short(c, 24), 9) for c in columns), default=20) * 0.72 + 12
    left = 40
    # rotated labels lean right: the last ones may reach past the last column
    reach = max((col_w * (j + 0.5) + 3 + 0.72 * text_width(_short(c, 24), 9) for j, c in enumerate(columns)),
                default=0.0)
    w = left + max(col_w * k + 10, reach + 6)
    svg = Svg(max(w, 120), top_h + height + 20, label)
    if n == 0 or k == 0:
        return str(svg)
    m = np.nanmax(np.abs(a), axis=0)
    m[~np.isfinite(m) | (m == 0)] = 1.0
    scaled = np.nan_to_num(a / m)
    img = np.clip((scaled + 1) / 2 * 255, 0, 255).astype(np.uint8)  # nilearn: gray, vmin=-1, vmax=1
    uri = "data:image/png;base64," + base64.b64encode(_png_gray(img)).decode("ascii")
    svg.add(f'<image x="{left}" y="{_f(top_h)}" width="{_f(col_w * k)}" height="{_f(height)}" '
            f'preserveAspectRatio="none" style="image-rendering:pixelated" href="{uri}"/>')
    for j, c in enumerate(columns):
        role = (roles or {}).get(c, "")
        svg.add(f'<rect x="{_f(left + col_w * j)}" y="{_f(top_h)}" width="{_f(col_w)}" height="{_f(height)}" '
                f'fill="transparent"><title>{_e(c)} ({_e(role)})</title></rect>' if role else "")
        svg.text(left + col_w * (j + 0.5) + 3, top_h - 4, _short(c, 24), size=9, rotate=-45, baseline="auto")
    for tv in _ticks(0, n - 1, 5):
        svg.text(left - 4, top_h + height * (tv + 0.5) / n, f"{tv:g}", size=9, anchor="end")
    svg.text(left - 4, top_h + height + 12, "scan", size=9, anchor="end")
    return str(svg)


# --------------------------------------------------------------------------- group strip plot
def strip_plot(panels: Sequence[tuple[str, float | None, list[tuple[str, float, str]]]],
               groups: Sequence[str], colors: Mapping[str, str], panel_w: float = 300, panel_h: float = 170,
               ncol: int = 3, label: str = "") -> str:
    """Small multiples: per panel (title, threshold, [(group, value, tooltip)]), one column per group.

    Every dot has a ``<title>`` tooltip (subject, run, variant, value).
    """
    nrow = max(1, math.ceil(len(panels) / ncol))
    left, bottom, top = 46, 40, 24
    cw = panel_w + left + 12
    ch = panel_h + bottom + top
    svg = Svg(cw * min(ncol, max(len(panels), 1)), ch * nrow, label)
    for p, (title, thr, pts) in enumerate(panels):
        ox = (p % ncol) * cw + left
        oy = (p // ncol) * ch + top
        vals = [v for _, v, _ in pts if v is not None and math.isfinite(v)]
        log = bool(vals) and min(vals) > 0 and max(vals) / min(vals) > 100
        tr = (lambda v: math.log10(v)) if log else (lambda v: v)
        lo_v = min(vals + ([thr] if thr is not None else [])) if vals else 0.0
        hi_v = max(vals + ([thr] if thr is not None else [])) if vals else 1.0
        lo, hi = (tr(lo_v), tr(hi_v)) if log else (min(0.0, lo_v), hi_v)
        if hi <= lo:
            hi = lo + 1.0
        pad = 0.06 * (hi - lo)
        lo, hi = lo - (pad if log or lo < 0 else 0), hi + pad

        def Y(v: float, oy: float = oy, lo: float = lo, hi: float = hi) -> float:
            return oy + panel_h * (1 - (tr(v) - lo) / (hi - lo))  # noqa: B023 - used within the iteration

        svg.text(ox, oy - 12, title + (" (log scale)" if log else ""), size=10.5, bold=True)
        ticks = [float(k) for k in range(math.ceil(lo), math.floor(hi) + 1)] if log else _ticks(lo, hi, 4)
        for tv in ticks:
            yy = oy + panel_h * (1 - (tv - lo) / (hi - lo))
            svg.line(ox, yy, ox + panel_w, yy, "#eef0f3")
            svg.text(ox - 4, yy, _tick_label(10 ** tv if log else tv), size=9, anchor="end")
        svg.line(ox, oy, ox, oy + panel_h, "#1d2330", 0.8)
        svg.line(ox, oy + panel_h, ox + panel_w, oy + panel_h, "#1d2330", 0.8)
        gw = panel_w / max(len(groups), 1)
        for g_i, g in enumerate(groups):
            gx = ox + gw * (g_i + 0.5)
            svg.text(gx, oy + panel_h + 12, _short(g, int(gw / 6.5)), size=9.5, anchor="middle")
            mine = [(v, tip) for gg, v, tip in pts if gg == g and v is not None and math.isfinite(v)]
            for k, (v, tip) in enumerate(mine):
                jitter = ((k * 37) % 11 - 5) / 5 * gw * 0.22
                svg.add(f'<circle cx="{_f(gx + jitter)}" cy="{_f(Y(v))}" r="4" fill="{colors.get(g, "#0072B2")}" '
                        f'fill-opacity="0.85" data-key="variant:{_e(g)}"><title>{_e(tip)}</title></circle>')
        if thr is not None:
            svg.line(ox, Y(thr), ox + panel_w, Y(thr), SEVERITY_COLORS["warn"], 1.2, "4 3")
            svg.text(ox + panel_w, Y(thr) - 5, f"warn {thr:g}", size=9, anchor="end", color="#8a5a00")
    return str(svg)


# --------------------------------------------------------------------------- files and notebooks
_SVG_NS = 'xmlns="http://www.w3.org/2000/svg"'


def standalone(svg: str, background: str = "#ffffff") -> str:
    """A chart as the text of an ``.svg`` file: with the SVG namespace (inline SVG in HTML needs none,
    a file does) and an opaque background, so its dark text reads on a dark page too."""
    head, sep, rest = str(svg).partition(">")
    if not head.startswith("<svg") or not sep:
        raise ValueError("standalone: not an <svg> element")
    if _SVG_NS in head:   # already standalone
        return str(svg).rstrip("\n") + "\n"
    head = head.replace("<svg", f"<svg {_SVG_NS}", 1)
    return f'{head}><rect width="100%" height="100%" fill="{background}"/>{rest.rstrip()}\n'


def save(svg: str, path: str | os.PathLike) -> Path:
    """Write a chart to ``path`` as a standalone ``.svg`` file (UTF-8); returns the path."""
    out = Path(path)
    out.write_text(standalone(svg), encoding="utf-8")
    return out


class _Shown:
    """What :func:`show` returns: Jupyter and IPython display it as the SVG image."""

    def __init__(self, svg: str) -> None:
        self.svg = standalone(svg)

    def _repr_svg_(self) -> str:
        return self.svg


def show(svg: str) -> _Shown:
    """Display a chart in a notebook (``show(weights_svg(record))`` as the last line of a cell)."""
    return _Shown(svg)
