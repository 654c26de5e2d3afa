"""Reading run records for the reports: the typed record at the boundary, optional fields, and the
thresholds a record was audited with. No statistics.

The reports read :class:`nbdiag.record.model.RunRecord` (and :class:`~nbdiag.record.model.SavedDesignRecord`
for ``nbdiag design``) through their typed attributes. A record given as JSON (a dict, as read from a
``*_nbdiag.json``) is converted once, by :func:`typed`; a part that a record may lack is typed
``X | Absent`` and read with :func:`opt` (None when absent) or checked ``is ABSENT`` once.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, TypeVar, Union

from nbdiag.core.thresholds import Thresholds
from nbdiag.record.model import ABSENT, Absent, RunRecord, SavedDesignRecord, read_record

__all__ = ["Record", "opt", "present_fields", "thresholds_of", "typed", "settings_thresholds"]

#: a record the reports render: one run × variant, or a saved design (``nbdiag design``)
Record = Union[RunRecord, SavedDesignRecord]

T = TypeVar("T")


def typed(record: Record | Mapping[str, Any]) -> Record:
    """The typed record: JSON (a ``*_nbdiag.json``'s content) is read once with
    :func:`nbdiag.record.model.read_record`; a typed record is returned as it is.

    Raises
    ------
    nbdiag.record.model.RecordFormatError
        JSON that is not a record (the message names the field).
    """
    if isinstance(record, (RunRecord, SavedDesignRecord)):
        return record
    return read_record(record)


def opt(value: T | Absent, default: Any = None) -> T | Any:
    """``value``, or ``default`` when it is :data:`~nbdiag.record.model.ABSENT` (a key the record does not have)."""
    return default if value is ABSENT else value


def present_fields(value: Any) -> dict[str, Any]:
    """The fields of a record dataclass that the record has (ABSENT ones left out), in field order:
    the view a template reads (it shows what the JSON holds, never the ABSENT marker)."""
    return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)
            if getattr(value, f.name) is not ABSENT}


def settings_thresholds(record: Record) -> Mapping[str, float]:
    """``settings.thresholds`` as written in the record (empty for a saved design, which states none)."""
    return record.settings.thresholds if isinstance(record, RunRecord) else {}


def thresholds_of(record: Record) -> Thresholds:
    """Thresholds used for the record (defaults + ``settings.thresholds``)."""
    values = settings_thresholds(record)
    try:
        return Thresholds().updated({k: v for k, v in values.items()
                                     if k in Thresholds().to_dict() and isinstance(v, (int, float))})
    except ValueError:
        return Thresholds()
