"""Text of many floats at once, the same characters as Python's ``repr``.

The participant level writes about 10,000 floats a run (the design TSV's columns, the record's
per-scan weights). Python's shortest round-trip ``repr`` costs about half a microsecond each;
``orjson`` (Ryu) writes the same shortest digits many times faster. Its layout equals ``repr``'s
for ``1e-4 <= |x| < 1e16`` (and zeros); outside that range ``repr`` writes an exponent
(``1e-05``, ``1e+16``) where orjson writes ``0.00001`` / ``1e16``. :func:`float_texts` takes
orjson's text and ``repr`` for the values outside that range, so the result is ``repr``'s
text character for character (tests/test_floattext.py: every magnitude, the range's edges and
millions of random bit patterns). Without orjson installed, or with a non-finite value, it is
``repr`` itself.

The range is exact: a float below ``1e-4`` cannot have ``0.0001`` as its shortest text (that
text reads back as the float ``1e-4``), and likewise at ``1e16``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

try:  # a declared dependency; the fallback keeps the results identical without it
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised by monkeypatching _orjson in the tests
    _orjson = None  # type: ignore[assignment]

#: ``repr`` and orjson write the same text for finite floats with ``LOW <= |x| < HIGH`` (and zeros)
LOW, HIGH = 1e-4, 1e16


def float_texts(values: Sequence[float]) -> list[str] | None:
    """``list(map(repr, values))`` for a list of Python floats; ``None`` when a value is not finite
    (what to write then is the caller's rule)."""
    if not values:
        return []
    a = np.asarray(values, dtype=np.float64)
    if not np.isfinite(a).all():
        return None
    if _orjson is None:
        return list(map(repr, values))
    texts = _orjson.dumps(values).decode()[1:-1].split(",")
    m = np.abs(a)
    for i in np.flatnonzero(((m < LOW) & (m != 0.0)) | (m >= HIGH)).tolist():
        texts[i] = repr(values[i])
    return texts

