"""Group attribution: how much of each contrast comes from what, across subjects.

``attribution_table(records)`` reads run records only (no files, no fitting)
and returns ``group/nbdiag_attribution.tsv``: one row per variant × contrast
× source, with columns ``variant, contrast, source, n_subjects, mean, sem, t,
share, kind, distinct``.

Sources
-------
``measured:<signal>:total``
    The signal's OLS estimate for the contrast (``contrasts.<c>.measured.<signal>.estimate_ols``,
    percent), i.e. what nilearn estimates for a voxel with that time course.
``measured:<signal>:<class>``
    Its part from one scan class (``by_class``: ``Σ_{k∈class} w_k (y_k − r)``, relative to the
    run's steady baseline level ``r``; the classes sum to the total).
``predicted:<cause>``
    The sum of the contrast's sensitivity biases (``bias``, percent) whose
    ``cause`` is ``<cause>`` (e.g. ``nonsteady_unhandled``), i.e. nbdiag's
    prediction from the design and the measured or assumed sizes.

Statistics
----------
Runs of one subject (sessions, runs) are averaged first, so ``n_subjects``
counts subjects. A class with no scans in a run (e.g. no flagged volumes) or a cause
absent from a run contributes 0 for that run, so every row of a contrast averages over the
same runs. ``mean`` is the mean over subjects, ``sem = sd / sqrt(n)``
(``ddof=1``), ``t = mean / sem`` (one-sample t against 0; ``None`` for n < 2
or sem 0). ``share`` is ``mean`` divided by the mean of
``measured:<signal>:total`` for measured rows of that signal, and by the mean
of ``measured:global_signal:total`` for predicted rows; it is empty (``None``)
when that total is absent, 0, or not itself distinguishable from zero (a share
of a total that may be 0 means nothing).

``kind`` is ``total`` (``measured:<signal>:total``), ``cause`` (a measured part
of a cause class — flagged or unflagged transients, high-motion volumes,
unmodelled events, short gaps, run edges — or a ``predicted:`` row) or
``term`` (a part of the model's own terms: a condition, the implicit baseline,
the ``reference`` remainder). The record's ``by_class_kind`` decides when given.

``distinct`` says whether the row is distinguishable from zero across
subjects: ``n ≥ 2`` and ``|t| ≥ max(3, t_{0.975, n−1})`` (two-sided 5 % level of
the one-sample t test, never below the run-level rule ``|t| ≥ 3``, which allows for the
several cause parts tested per contrast). Predicted
rows are never ``distinct``: they are nbdiag's predictions (sizes measured or
assumed), not measurements, and an assumed size is the same in every subject.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Iterator, Mapping

import numpy as np
import pandas as pd
from scipy import stats

from nbdiag.core.jsonio import finite_number as _num
from nbdiag.core.labels import CAUSE_CLASSES, CLASS_ORDER
from nbdiag.core.thresholds import DISTINCT_T
from nbdiag.record.model import ContrastMeasuredSignal, RunRecord, as_run_record

# Scan classes in display order (conditions follow, sorted) and the classes that are causes: one
# definition in nbdiag.core.labels (CLASS_ORDER, CAUSE_CLASSES).

#: Columns of ``nbdiag_attribution.tsv``, in order (DESIGN §9; ``kind``, ``distinct``: §10).
COLUMNS = ["variant", "contrast", "source", "n_subjects", "mean", "sem", "t", "share", "kind", "distinct"]



def distinct_threshold(n: int) -> float:
    """``max(3, t_{0.975, n-1})``: the |t| a mean over ``n`` subjects must reach (inf for n < 2)."""
    if n < 2:
        return math.inf
    return max(DISTINCT_T, float(stats.t.ppf(0.975, n - 1)))


def subject_of(rec: RunRecord | Mapping[str, Any]) -> Any:
    """The record's subject label (``run.subject``, else the ``sub`` entity), or None."""
    run = as_run_record(rec).run
    return run.subject or run.entities.get("sub")


def audited_runs(records: Iterable[RunRecord | Mapping[str, Any]],
                 kinds: dict[str, str] | None = None) -> Iterator[tuple[str, Any, dict[tuple[str, str], float]]]:
    """``(variant, subject, run_values(rec))`` of every run record that was audited and names a
    subject (records with status ``error`` or no subject are skipped); ``kinds`` as in
    :func:`run_values`. The one loop of the group tables over the records (typed; a record's JSON
    is read once with ``RunRecord.from_json``)."""
    for rec in map(as_run_record, records):
        if rec.status == "error":
            continue
        subject = subject_of(rec)
        if subject is None:
            continue
        yield rec.variant, subject, run_values(rec, kinds)


def _measured_values(cname: str, measured: Mapping[str, ContrastMeasuredSignal], out: dict[tuple[str, str], float],
                     kinds: dict[str, str] | None) -> None:
    """A contrast's measured totals and class parts (percent) into ``out``; ``kinds`` as in :func:`run_values`."""
    for signal, m in measured.items():
        if m.in_model:
            continue
        total = _num(m.estimate_ols)
        if total is None:
            continue
        out[(cname, f"measured:{signal}:total")] = total
        kind_of = m.by_class_kind or {}
        for cls, v in (m.by_class or {}).items():
            if _num(v) is not None:
                out[(cname, f"measured:{signal}:{cls}")] = float(v)
                if kinds is not None and kind_of.get(cls) in ("cause", "term"):
                    kinds.setdefault(cls, str(kind_of[cls]))


def run_values(rec: RunRecord, kinds: dict[str, str] | None = None) -> dict[tuple[str, str], float]:
    """``{(contrast, source): value}`` for one run record (percent); ``kinds`` (when given) collects
    each measured class's ``by_class_kind``."""
    out: dict[tuple[str, str], float] = {}
    for cname, c in (rec.contrasts or {}).items():
        _measured_values(cname, c.measured or {}, out, kinds)
        causes: dict[str, float] = {}
        for e in c.sensitivity or ():
            b = _num(e.bias)
            if b is None:
                continue
            cause = str(e.cause or e.source)
            causes[cause] = causes.get(cause, 0.0) + b
        for cause, b in causes.items():
            out[(cname, f"predicted:{cause}")] = b
    return out


def _order(source: str) -> tuple:
    kind, _, rest = source.partition(":")
    sig, _, cls = rest.partition(":")
    if kind == "measured":
        rank = -1 if cls == "total" else CLASS_ORDER.index(cls) if cls in CLASS_ORDER else len(CLASS_ORDER)
        return (0, sig != "global_signal", sig, rank, cls)
    return (1, False, rest, 0, "")


def _kind(source: str, kinds: Mapping[str, str]) -> str:
    kind, _, rest = source.partition(":")
    if kind != "measured":
        return "cause"
    cls = rest.partition(":")[2]
    if cls == "total":
        return "total"
    return kinds.get(cls) or ("cause" if cls in CAUSE_CLASSES else "term")


def attribution_table(records: Iterable[RunRecord | Mapping[str, Any]]) -> pd.DataFrame:
    """The group attribution table (see the module doc); records with status ``error`` are skipped.

    Parameters
    ----------
    records : iterable of RunRecord (or a record's JSON, read once)
        Run records (the group level's trusted records).

    Returns
    -------
    DataFrame
        Columns ``COLUMNS``; rows sorted by variant, contrast (first-seen
        order), then measured (global signal first, total first) before predicted.
    """
    # per run: (variant, subject, {(contrast, source): value}); then every source seen for a
    # (variant, contrast) is filled with 0 in the runs that measured that signal (or predicted
    # any cause) without it: a class with no scans, or a cause absent from a run, contributes 0
    kinds: dict[str, str] = {}
    runs = list(audited_runs(records, kinds))
    contrast_order: dict[str, int] = {}
    seen: dict[tuple[str, str], set[str]] = {}
    for variant, _, vals in runs:
        for cname, source in vals:
            contrast_order.setdefault(cname, len(contrast_order))
            seen.setdefault((variant, cname), set()).add(source)
    df = pd.DataFrame(_summary_rows(_values_by_subject(runs, seen)), columns=COLUMNS)
    if df.empty:
        return df
    df["distinct"] = [bool(r.source.startswith("measured:") and r.t is not None and np.isfinite(r.t)
                           and abs(r.t) >= distinct_threshold(int(r.n_subjects))) for r in df.itertuples()]
    df["share"] = _shares(df)
    df["kind"] = [_kind(src, kinds) for src in df["source"]]
    df = df[COLUMNS]
    keys = [(v, contrast_order[c], _order(s)) for v, c, s in zip(df.variant, df.contrast, df.source)]
    df = df.iloc[sorted(range(len(df)), key=keys.__getitem__)].reset_index(drop=True)
    df["n_subjects"] = df["n_subjects"].astype(int)
    return df


def _values_by_subject(runs: list[tuple[str, Any, dict[tuple[str, str], float]]],
                       seen: Mapping[tuple[str, str], set[str]]) -> dict[tuple[str, str, str], dict[Any, list[float]]]:
    """``{(variant, contrast, source): {subject: [value per run]}}``, a source a run lacks counted 0
    where the run measured that signal (predicted rows: where it predicted any cause)."""
    values: dict[tuple[str, str, str], dict[Any, list[float]]] = {}
    for variant, subject, vals in runs:
        for (v, cname), sources in seen.items():
            if v != variant:
                continue
            for source in sources:
                if (cname, source) in vals:
                    x = vals[(cname, source)]
                else:
                    kind, _, rest = source.partition(":")
                    family = f"measured:{rest.split(':')[0]}:total" if kind == "measured" else None
                    has = (cname, family) in vals if family else any(
                        c == cname and s.startswith("predicted:") for c, s in vals)
                    if not has:
                        continue
                    x = 0.0
                values.setdefault((variant, cname, source), {}).setdefault(subject, []).append(x)
    return values


def _summary_rows(values: Mapping[tuple[str, str, str], Mapping[Any, list[float]]]) -> list[dict[str, Any]]:
    """One row per (variant, contrast, source): a subject's runs averaged, then n, mean, sem, t."""
    rows = []
    for (variant, cname, source), by_sub in values.items():
        x = np.array([float(np.mean(v)) for _, v in sorted(by_sub.items())])
        n = int(x.size)
        mean = float(x.mean())
        sem = float(x.std(ddof=1) / math.sqrt(n)) if n >= 2 else None
        t = float(mean / sem) if sem else None
        rows.append({"variant": variant, "contrast": cname, "source": source, "n_subjects": n,
                     "mean": mean, "sem": sem, "t": t, "share": None})
    return rows


def _shares(df: pd.DataFrame) -> list[float | None]:
    """Each row's mean over its total's (the signal's total; the global signal's for predicted
    rows), None where that total is absent, 0 or not distinct."""
    totals = {(r.variant, r.contrast, r.source): (r.mean, r.distinct) for r in df.itertuples()}
    shares = []
    for r in df.itertuples():
        if r.source.startswith("measured:"):
            sig = r.source.split(":")[1]
            tot, ok = totals.get((r.variant, r.contrast, f"measured:{sig}:total"), (None, False))
        else:
            tot, ok = totals.get((r.variant, r.contrast, "measured:global_signal:total"), (None, False))
        shares.append(float(r.mean / tot) if tot and ok else None)
    return shares
