"""Across-subject numbers of the group page (the report only renders them).

* :func:`contributing_subjects`: for each (variant, contrast, attribution source), the number of
  subjects in which the part is not zero, and the number of subjects measured;
* :func:`bias_across_subjects`: the predicted bias of each unmodelled signal on each contrast
  (σ), a subject's runs averaged, then mean ± SEM across the subjects where it is predicted.

Both read run records only (as :mod:`nbdiag.group.attribution`, whose per-run values they use).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from nbdiag.core.jsonio import finite_number as _num
from nbdiag.group.attribution import audited_runs, subject_of
from nbdiag.record.model import RunRecord, as_run_record

__all__ = ["bias_across_subjects", "contributing_subjects", "summarise"]

#: A part smaller than this (percent) is zero: the class has no scan in that subject's runs.
_TINY = 1e-12


def _subject(rec: RunRecord) -> str | None:
    subject = subject_of(rec)
    return None if subject is None else str(subject)


def contributing_subjects(records: Sequence[RunRecord | Mapping[str, Any]]) -> dict[tuple[str, str, str], tuple[int, int]]:
    """(variant, contrast, source) -> (subjects whose part is non-zero, subjects with the signal)."""
    per: dict[tuple[str, str, str], dict[str, list[float]]] = {}
    families: dict[tuple[str, str, str], set[str]] = {}
    for variant, subject, vals in audited_runs(records):
        for (contrast, source), value in vals.items():
            per.setdefault((variant, contrast, source), {}).setdefault(str(subject), []).append(float(value))
            if source.startswith("measured:") and source.endswith(":total"):
                families.setdefault((variant, contrast, source.rsplit(":", 1)[0]), set()).add(str(subject))
    out = {}
    for key, by_subject in per.items():
        n_nonzero = sum(abs(sum(v) / len(v)) > _TINY for v in by_subject.values())
        family = families.get((key[0], key[1], key[2].rsplit(":", 1)[0]), set())
        out[key] = (n_nonzero, max(len(family), len(by_subject)))
    return out


def bias_across_subjects(recs: Sequence[RunRecord | Mapping[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Predicted bias (σ) per unmodelled signal and contrast, across subjects.

    Each run's bias of a source on a contrast (``sensitivity[].bias_sd``); a subject's runs are
    averaged; then ``{source: {contrast: {"mean", "sem", "n"}}}`` over the ``n`` subjects in
    which the source was predicted (``sem`` None for n < 2). Never one run's value alone
    unless n says 1.
    """
    per: dict[str, dict[str, dict[str, list[float]]]] = {}
    for r in map(as_run_record, recs):
        if r.status == "error":
            continue
        subject = _subject(r) or str(r.run.prefix)
        for cname, c in (r.contrasts or {}).items():
            for e in c.sensitivity or ():
                b = _num(e.bias_sd)
                if b is not None:
                    cause = str(e.source or "?")
                    per.setdefault(cause, {}).setdefault(cname, {}).setdefault(subject, []).append(b)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for cause, by_c in per.items():
        for cname, by_s in by_c.items():
            x = np.array([float(np.mean(v)) for _, v in sorted(by_s.items())])
            sem = float(x.std(ddof=1) / np.sqrt(x.size)) if x.size >= 2 else None
            out.setdefault(cause, {})[cname] = {"mean": float(x.mean()), "sem": sem, "n": int(x.size)}
    return out


def summarise(records: Sequence[RunRecord | Mapping[str, Any]]) -> dict[str, Any]:
    """Everything the group page shows across subjects: ``{"contributing": ..., "bias": {variant: ...}}``
    (typed records; a record's JSON is read once with ``RunRecord.from_json``)."""
    typed = [as_run_record(r) for r in records]
    variants = sorted({r.variant for r in typed})
    return {"contributing": contributing_subjects(typed),
            "bias": {v: bias_across_subjects([r for r in typed if r.variant == v]) for v in variants}}
