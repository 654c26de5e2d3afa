"""Reading run records for the reports: nested look-ups that tolerate missing parts, finite numbers,
and the thresholds a record was audited with. No statistics."""

from __future__ import annotations

import math
from typing import Any, Mapping

from nbdiag.core.thresholds import Thresholds

__all__ = ["finite", "get", "thresholds_of"]


def get(d: Any, *keys: Any, default: Any = None) -> Any:
    """``d[k1][k2]...`` or ``default`` when a key is missing or the value is None."""
    for k in keys:
        if isinstance(d, Mapping) and k in d:
            d = d[k]
        elif isinstance(d, list) and isinstance(k, int) and -len(d) <= k < len(d):
            d = d[k]
        else:
            return default
    return default if d is None else d


def finite(v: Any) -> float | None:
    """``float(v)`` when it is a finite number, else None."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def thresholds_of(record: Mapping[str, Any]) -> Thresholds:
    """Thresholds used for the record (defaults + ``settings.thresholds``)."""
    values = get(record, "settings", "thresholds", default={}) or {}
    try:
        return Thresholds().updated({k: v for k, v in values.items()
                                     if k in Thresholds().to_dict() and isinstance(v, (int, float))})
    except ValueError:
        return Thresholds()
