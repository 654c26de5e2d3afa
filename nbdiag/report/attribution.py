"""Words for the group attribution table (``group/nbdiag_attribution.tsv``).

Every number in a sentence is read from the table (no statistics here): the
measured global-signal estimate of a contrast with its t, the scan class that
contributes most with its mean, t and share.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

_CLASS_WORDS = {
    "nonsteady": "the non-steady-state volumes",
    "unmodeled_event": "the unmodelled events",
    "short_gap": "the short unmodelled gaps next to blocks",
    "fixation": "the fixation (implicit baseline) scans",
    "run_edge": "the baseline scans at the run edges",
}
_SIGNAL_WORDS = {"global_signal": "global signal", "csf": "CSF signal", "white_matter": "white-matter signal"}


def class_words(cls: str) -> str:
    """Plain words for a scan class (``condition:<name>`` -> ``the <name> scans``)."""
    if cls.startswith("condition:"):
        return f"the {cls.split(':', 1)[1]} scans"
    return _CLASS_WORDS.get(cls, cls)


def _pct(v: Any) -> str:
    return f"{float(v):+.2f} %".replace("-", "−")


def _t(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "t n/a"
    return f"t = {float(v):.1f}".replace("-", "−")


def _ok(v: Any) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


def attribution_sentences(table: pd.DataFrame, signal: str = "global_signal") -> dict[str, str]:
    """One sentence per variant answering "how much of each contrast comes from what".

    The contrast whose measured ``signal`` estimate has the most negative t (the
    question is usually a negative estimate; else the largest ``|t|``) comes first, with the scan class contributing most to it; every other contrast
    follows as ``name: estimate (t)``. Returns ``{variant: sentence}``; variants
    without a measured ``signal`` are left out.
    """
    out: dict[str, str] = {}
    if table is None or table.empty:
        return out
    for variant, vt in table.groupby("variant", sort=False):
        totals = vt[vt["source"] == f"measured:{signal}:total"]
        if totals.empty:
            continue
        tvals = [float(t) if _ok(t) else 0.0 for t in totals["t"]]
        pick = int(min(range(len(tvals)), key=tvals.__getitem__)) if min(tvals) < 0 \
            else int(max(range(len(tvals)), key=lambda i: abs(tvals[i])))
        first = totals.iloc[pick]
        n = int(first["n_subjects"])
        words = _SIGNAL_WORDS.get(signal, signal)
        text = (f"Across {n} subject{'s' if n != 1 else ''} the {words}'s {first['contrast']} estimate is "
                f"{_pct(first['mean'])} ({_t(first['t'])})")
        parts = vt[(vt["contrast"] == first["contrast"]) & vt["source"].str.startswith(f"measured:{signal}:")
                   & (vt["source"] != f"measured:{signal}:total")]
        if len(parts):
            top = parts.iloc[int(parts["mean"].abs().to_numpy().argmax())]
            share = f", {100 * float(top['share']):.0f} %" if _ok(top["share"]) else ""
            text += (f"; {class_words(top['source'].split(':', 2)[2])} contribute {_pct(top['mean'])} of it "
                     f"({_t(top['t'])}{share})")
        text += "."
        for _, row in totals.iterrows():
            if row["contrast"] == first["contrast"]:
                continue
            text += f" {row['contrast']}: {_pct(row['mean'])} ({_t(row['t'])})."
        out[str(variant)] = text.replace(" - ", " − ")
    return out
