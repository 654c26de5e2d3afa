"""Words for the group attribution table (``group/nbdiag_attribution.tsv``).

Every number in a sentence is read from the table (no statistics here): the
measured global-signal estimate of a contrast with its t, then the *cause*
parts (``kind == "cause"``) that are distinguishable from zero across subjects
(``distinct``), largest first, each with its mean, t and — only when the total
is itself distinguishable from zero — its share of the total. The model's own
terms (the conditions, the implicit baseline) are never named as an answer:
every contrast is made of them. When no cause part is distinguishable from
zero the sentence says that nothing in the design explains the estimate and
that it comes from the conditions themselves.

Tables without ``kind`` / ``distinct`` (older runs) are read with the same
rules: the cause classes by name, distinct when ``|t| >= 3`` with at least two subjects.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from nbdiag.core.labels import CAUSE_CLASSES, class_the, signal_words

def _pct(v: Any) -> str:
    return f"{float(v):+.2f} %".replace("-", "−")


def _t(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "t n/a"
    return f"t = {float(v):.1f}".replace("-", "−")


def _ok(v: Any) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


def _is_cause(row: Any) -> bool:
    kind = row.get("kind") if hasattr(row, "get") else None
    if isinstance(kind, str) and kind:
        return kind == "cause"
    return str(row["source"]).split(":", 2)[-1] in CAUSE_CLASSES


def _is_distinct(row: Any) -> bool:
    d = row.get("distinct") if hasattr(row, "get") else None
    if d is not None and not (isinstance(d, float) and math.isnan(d)):
        return str(d).lower() in ("true", "1", "1.0")
    return _ok(row["t"]) and abs(float(row["t"])) >= 3.0 and int(row["n_subjects"]) >= 2


def attribution_sentences(table: pd.DataFrame, signal: str = "global_signal") -> dict[str, str]:
    """One sentence per variant answering "how much of each contrast comes from what".

    The contrast whose measured ``signal`` estimate has the most negative t (the
    question is usually a negative estimate; else the largest ``|t|``) comes first, with
    the cause parts distinguishable from zero (module doc); every other contrast
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
        words = signal_words(signal)
        text = (f"Across {n} subject{'s' if n != 1 else ''} the {words}'s {first['contrast']} estimate is "
                f"{_pct(first['mean'])} ({_t(first['t'])})")
        total_ok = _is_distinct(first)
        parts = vt[(vt["contrast"] == first["contrast"]) & vt["source"].str.startswith(f"measured:{signal}:")
                   & (vt["source"] != f"measured:{signal}:total")]
        causes = [r for _, r in parts.iterrows() if _is_cause(r) and _is_distinct(r)]
        causes.sort(key=lambda r: -abs(float(r["mean"])))
        if causes:
            said = []
            for r in causes:
                share = f", {100 * float(r['share']):.0f} % of it" if total_ok and _ok(r["share"]) else ""
                said.append(f"{class_the(r['source'].split(':', 2)[2])} contribute {_pct(r['mean'])} "
                            f"({_t(r['t'])}{share})")
            text += "; " + "; ".join(said)
            if not total_ok:
                text += " (the estimate itself is not distinguishable from zero, so no share is given)"
        elif total_ok:
            text += ("; nothing in the design explains it (no transient, unmodelled-event, gap, high-motion "
                     "or run-edge part is distinguishable from zero): it comes from the conditions themselves")
        else:
            text += "; it is not distinguishable from zero, and no cause in the design moves it"
        text += "."
        for _, row in totals.iterrows():
            if row["contrast"] == first["contrast"]:
                continue
            text += f" {row['contrast']}: {_pct(row['mean'])} ({_t(row['t'])})."
        out[str(variant)] = text.replace(" - ", " − ")
    return out
