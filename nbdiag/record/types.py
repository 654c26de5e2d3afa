"""Typed summaries of run records: what the participant level keeps of a run × variant.

Once a record (``*_nbdiag.json``) is written, the participant level keeps only a summary of
it in memory (progress lines, ``-v`` details, ``ParticipantResult.audits``), and ``--work-dir``
stands a summary in for a run it skips. :class:`RunSummary` is that one summary type, with
one ``to_json`` / ``from_json`` pair; ``to_json`` has the shape of a record restricted to these
fields (docs/record.md), so code that reads a record reads a summary the same way, and
``tests/test_record_types.py`` checks every field name and type against
``docs/record.schema.json``.

It replaces three hand-written partial shapes (``RunAudit.slim``, ``pipeline._summary`` and
the ``--work-dir`` stub), and is derived from the typed record
(:class:`nbdiag.record.model.RunRecord`, :meth:`RunSummary.from_record`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from nbdiag.record.model import ABSENT, RunRecord

__all__ = ["ContrastSummary", "FindingSummary", "RunSummary"]


def _present(value: Any) -> Any:
    return None if value is ABSENT else value


def _opt_float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class FindingSummary:
    """One finding without its evidence (``code``, ``severity``, ``title``, ``message``, ``contrast``)."""

    code: str
    severity: str
    title: str = ""
    message: str = ""
    contrast: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "severity": self.severity, "title": self.title, "message": self.message,
                "contrast": self.contrast}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FindingSummary:
        contrast = data.get("contrast")
        return cls(code=str(data.get("code")), severity=str(data.get("severity")), title=str(data.get("title") or ""),
                   message=str(data.get("message") or ""), contrast=None if contrast is None else str(contrast))


@dataclass(frozen=True)
class ContrastSummary:
    """A contrast's headline numbers and its ranked finding codes (no per-scan arrays)."""

    estimable: bool | None = None
    variance: float | None = None
    efficiency: float | None = None
    cvif: float | None = None
    findings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"estimable": self.estimable, "variance": self.variance, "efficiency": self.efficiency,
                "cvif": self.cvif, "findings": list(self.findings)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ContrastSummary:
        estimable = data.get("estimable")
        return cls(estimable=None if estimable is None else bool(estimable), variance=_opt_float(data.get("variance")),
                   efficiency=_opt_float(data.get("efficiency")), cvif=_opt_float(data.get("cvif")),
                   findings=tuple(str(c) for c in data.get("findings") or ()))


@dataclass(frozen=True)
class RunSummary:
    """What is kept of one run × variant once its record is written.

    Attributes
    ----------
    run : mapping
        The record's ``run`` object (subject, session, task, run, entities, prefix, files).
    variant, status : str
    findings : tuple of FindingSummary
        In the record's (ranked) order.
    contrasts : mapping of str to ContrastSummary
    error : mapping or None
        The record's ``error`` object (message, code, file ...), as written.
    notes, nilearn_warnings : tuple of str
        The record's ``notes`` and ``design.nilearn_warnings``.
    nbdiag_version, nilearn_version : str or None
    on_disk : bool
        True for a run × variant ``--work-dir`` skipped: only its status is known here, the
        record on disk holds the rest.
    """

    run: Mapping[str, Any]
    variant: str
    status: str
    findings: tuple[FindingSummary, ...] = ()
    contrasts: Mapping[str, ContrastSummary] = field(default_factory=dict)
    error: Mapping[str, Any] | None = None
    notes: tuple[str, ...] = ()
    nilearn_warnings: tuple[str, ...] = ()
    nbdiag_version: str | None = None
    nilearn_version: str | None = None
    on_disk: bool = False

    def to_json(self) -> dict[str, Any]:
        """A record restricted to the summary's fields (the shape of docs/record.md)."""
        out: dict[str, Any] = {
            **{k: v for k, v in (("nbdiag_version", self.nbdiag_version), ("nilearn_version", self.nilearn_version))
               if v is not None},  # a stub does not know them
            "run": dict(self.run), "variant": self.variant, "status": self.status,
            "error": None if self.error is None else dict(self.error), "notes": list(self.notes),
            "design": {"nilearn_warnings": list(self.nilearn_warnings)},
            "contrasts": {name: c.to_json() for name, c in self.contrasts.items()},
            "findings": [f.to_json() for f in self.findings],
        }
        if self.on_disk:
            out["_on_disk"] = True
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunSummary:
        """The summary of a record (or of :meth:`to_json`'s output: the round trip is exact)."""
        found = data.get("design")
        design: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        error = data.get("error")
        return cls(
            run=dict(data.get("run") or {}), variant=str(data.get("variant")), status=str(data.get("status")),
            findings=tuple(FindingSummary.from_json(f) for f in data.get("findings") or () if isinstance(f, Mapping)),
            contrasts={str(name): ContrastSummary.from_json(c) for name, c in (data.get("contrasts") or {}).items()
                       if isinstance(c, Mapping)},
            error=dict(error) if isinstance(error, Mapping) else None,
            notes=tuple(str(n) for n in data.get("notes") or ()),
            nilearn_warnings=tuple(str(w) for w in design.get("nilearn_warnings") or ()),
            nbdiag_version=data.get("nbdiag_version"), nilearn_version=data.get("nilearn_version"),
            on_disk=bool(data.get("_on_disk", False)),
        )

    @classmethod
    def from_record(cls, record: RunRecord) -> RunSummary:
        """The summary of a typed record (equal to ``from_json(record.to_json())``, without the JSON)."""
        contrasts = {}
        for name, c in (record.contrasts if record.contrasts is not ABSENT else {}).items():
            contrasts[name] = ContrastSummary(
                estimable=c.estimable, variance=_opt_float(_present(c.variance)),
                efficiency=_opt_float(_present(c.efficiency)), cvif=_opt_float(_present(c.cvif)),
                findings=tuple(c.findings))
        error = record.error.to_json() if record.error is not ABSENT and record.error is not None else None
        warnings: tuple[str, ...] = ()
        if record.design is not ABSENT and record.design.nilearn_warnings is not ABSENT:
            warnings = tuple(record.design.nilearn_warnings)
        return cls(
            run=record.run.to_json(), variant=record.variant, status=record.status,
            findings=tuple(FindingSummary(code=f.code, severity=f.severity, title=f.title or "",
                                          message=f.message or "", contrast=f.contrast) for f in record.findings),
            contrasts=contrasts, error=error, notes=tuple(record.notes),
            nilearn_warnings=warnings,
            nbdiag_version=record.nbdiag_version, nilearn_version=record.nilearn_version)

    @classmethod
    def of(cls, record: RunRecord | RunSummary) -> RunSummary:
        """``record`` itself when it is a summary, else :meth:`from_record`."""
        return record if isinstance(record, RunSummary) else cls.from_record(record)

    @classmethod
    def stub(cls, run: Mapping[str, Any], variant: str, status: str) -> RunSummary:
        """A run × variant ``--work-dir`` skipped as unchanged: its status, the record is on disk."""
        error = None
        if status == "error":
            error = {"message": "unchanged since the previous run (--work-dir); see its _nbdiag.json"}
        return cls(run=dict(run), variant=variant, status=status, error=error, on_disk=True)
