"""Findings: the unit of everything nbdiag reports.

A finding is ``{"code", "severity", "contrast", "title", "message",
"evidence", "score", "fix"}`` (docs/record.md). ``severity`` is one of
``info < warn < fail < error``. ``score`` is the estimated impact used to rank
findings inside a contrast (larger = more likely to explain the contrast's
behaviour); it is comparable only between findings of the same run.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Iterable

from nbdiag.core.jsonio import jsonable

SEVERITIES = ("info", "warn", "fail", "error")
_RANK = {name: i for i, name in enumerate(SEVERITIES)}

STATUS_BY_SEVERITY = {None: "pass", "info": "pass", "warn": "warn", "fail": "fail", "error": "error"}
#: Run statuses, best to worst (a run's status is its worst finding's, info counting as pass).
STATUSES = ("pass", "warn", "fail", "error")


def status_rank(status: str) -> int:
    """Order of a run status (``pass`` < ``warn`` < ``fail`` < ``error``)."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}; got {status!r}")
    return STATUSES.index(status)


def severity_rank(severity: str | None) -> int:
    """Return the order of a severity (``None`` ranks below ``info``)."""
    if severity is None:
        return -1
    if severity not in _RANK:
        raise ValueError(
            f"severity must be one of {SEVERITIES}; got {severity!r}"
        )
    return _RANK[severity]


def worst_severity(severities: Iterable[str | None]) -> str | None:
    """Return the worst of ``severities`` (``None`` when empty)."""
    worst = None
    for sev in severities:
        if severity_rank(sev) > severity_rank(worst):
            worst = sev
    return worst


@dataclass(frozen=True)
class Finding:
    """One thing nbdiag found about a run, optionally tied to a contrast.

    Parameters
    ----------
    code : str
        Stable finding code (README findings table), e.g. ``"vif_high"``.
    severity : {"info", "warn", "fail", "error"}
    title : str
        Short heading, no trailing period.
    message : str
        Plain-language sentence(s); every number in it is also in ``evidence``.
    evidence : dict
        JSON-serialisable numbers behind the message.
    contrast : str or None
        Contrast the finding is about; ``None`` for run-level findings.
    score : float
        Estimated impact, used for ranking within a contrast.
    fix : str or None
        Concrete remedy in nilearn terms.
    """

    code: str
    severity: str
    title: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    contrast: str | None = None
    score: float = 0.0
    fix: str | None = None

    def __post_init__(self) -> None:
        severity_rank(self.severity)

    def for_contrast(self, contrast: str, **changes: Any) -> "Finding":
        """Return a copy attached to ``contrast`` (with optional changes)."""
        return replace(self, contrast=contrast, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with the contract's keys (a new dict; ``evidence`` converted by ``jsonable``)."""
        return {"code": self.code, "severity": self.severity, "title": self.title, "message": self.message,
                "evidence": jsonable(self.evidence), "contrast": self.contrast, "score": jsonable(self.score),
                "fix": self.fix}


def _rank_key(f: Finding) -> tuple:
    score = float(f.score)
    # scores equal up to floating-point noise (last bits) tie; NaN ranks last within its severity
    s = round(score, 9) if score == score else float("-inf")
    return (-severity_rank(f.severity), -s, f.code, f.contrast or "")


def rank_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Order findings deterministically.

    Sort key: worst severity first, then decreasing score rounded to 9 decimals
    (scores that are mathematically equal but differ in the last bits tie), then
    ``code``, then ``contrast`` (``None`` as ``""``). The sort is stable, so
    findings equal on the whole key keep their input order.
    """
    return sorted(findings, key=_rank_key)


def status_from_findings(findings: Iterable[Finding]) -> str:
    """Run status: ``pass``/``warn``/``fail``/``error`` from the worst finding."""
    return STATUS_BY_SEVERITY[worst_severity(f.severity for f in findings)]
