"""One visual language for every report: condition, scan-class, variant and severity colours.

A condition's colour depends on its name only (``zlib.crc32`` of ``"nb:" + name`` indexes a
fixed qualitative palette), so the same condition has the same colour in every figure,
run, subject and on the group page, whatever other conditions a run has. Python's
``hash()`` is salted per process and must never be used for this.

Scan classes (keys and words: :mod:`nbdiag.core.labels`) and severities have fixed colours of
their own, chosen outside the condition palette.
"""

from __future__ import annotations

import zlib

from nbdiag.core.findings import SEVERITIES as FINDING_SEVERITIES

__all__ = [
    "CONDITION_PALETTE",
    "CLASS_COLORS",
    "SEVERITY_COLORS",
    "SEVERITIES",
    "condition_color",
    "variant_color",
    "class_color",
    "text_color_on",
]

#: Qualitative palette for conditions (Okabe-Ito blue, then Paul Tol's muted/bright hues),
#: free of the severity and scan-class hues (green, orange, vermillion, sky blue, pink, grey).
CONDITION_PALETTE = (
    "#0072B2",  # blue
    "#882255",  # wine
    "#999933",  # olive
    "#117733",  # dark green
    "#DDCC77",  # sand
    "#AA4499",  # magenta
    "#6699CC",  # steel blue
    "#44AA99",  # teal
    "#332288",  # indigo
    "#994F00",  # brown
)

#: Palette for model variants on the group page (distinct from the condition palette order).
VARIANT_PALETTE = ("#0072B2", "#994F00", "#44AA99", "#882255", "#999933", "#332288", "#AA4499", "#117733")

#: Fixed colour of each scan class that is not a condition.
CLASS_COLORS = {
    "nonsteady": "#D55E00",        # vermillion
    "unmodeled_event": "#CC79A7",  # reddish purple
    "short_gap": "#E69F00",        # orange
    "run_edge": "#666666",
    "fixation": "#BBBBBB",
    "scan": "#8FB4D3",
}

#: One severity scale for badges, shading, tables and figures: a run's ``pass`` and the findings' severities.
SEVERITIES = ("pass", *FINDING_SEVERITIES)
SEVERITY_COLORS = {"pass": "#009E73", "info": "#56B4E9", "warn": "#E69F00", "fail": "#D55E00", "error": "#000000"}


#: Salt of the colour hash (fixed: changing it recolours every report).
_SALT = "nb:"


def _index(name: str, n: int) -> int:
    return zlib.crc32((_SALT + str(name)).encode("utf-8")) % n


def condition_color(name: str) -> str:
    """Colour of condition ``name`` (the same in every figure and report)."""
    return CONDITION_PALETTE[_index(name, len(CONDITION_PALETTE))]


def variant_color(name: str) -> str:
    """Colour of model variant ``name`` on the group page."""
    return VARIANT_PALETTE[zlib.crc32(("v:" + str(name)).encode("utf-8")) % len(VARIANT_PALETTE)]


def class_color(cls: str) -> str:
    """Colour of a scan class; ``condition:<name>`` gets :func:`condition_color`."""
    cls = str(cls)
    if cls.startswith("condition:"):
        return condition_color(cls[len("condition:"):])
    return CLASS_COLORS.get(cls, "#999999")


def text_color_on(color: str) -> str:
    """Black or white, whichever reads better on ``color`` (``#RRGGBB``)."""
    try:
        r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    except (ValueError, IndexError):
        return "#000000"
    return "#000000" if 0.299 * r + 0.587 * g + 0.114 * b > 150 else "#ffffff"
