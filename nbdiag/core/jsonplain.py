"""The fast paths the two JSON writers share, in plain Python (no numpy or pandas here, so the
typed record's codec, which group and report import, stays free of them).

:func:`nbdiag.core.jsonio.jsonable` (numpy/pandas values) and :func:`nbdiag.record.codec.to_json`
(typed record values) both take a list of plain scalars (per-scan series) through
:func:`plain_list`, and recurse with their own rules only for anything else. The rule is theirs
too: NaN and ±inf become ``None``. (Their one-scalar fast path stays inline in each: it runs for
every leaf, about 3000 a record, where a call would cost more than the check.)
"""

from __future__ import annotations

import math

_isfinite = math.isfinite
#: element types a list keeps unchanged
PLAIN = frozenset({str, int, bool, type(None)})


def plain_list(value: list | tuple) -> list | None:
    """A list or tuple whose items are all plain (``str``/``int``/``bool``/``None``) or all
    ``float`` (non-finite -> ``None``) as a JSON list, without recursion; ``None`` otherwise."""
    kinds = set(map(type, value))
    if kinds <= PLAIN:
        return list(value)
    if kinds == {float}:
        return list(value) if all(map(_isfinite, value)) else [v if _isfinite(v) else None for v in value]
    return None
