"""One converter from numpy/pandas values to JSON-safe Python.

Used by the diagnostics (``nbdiag.diagnostics``, their record sections) and by
the record writer (``nbdiag.record.build``); ``nbdiag.record.build.jsonable`` is this function.

Rules: dict keys become ``str``; lists, tuples and numpy arrays become lists
(nested for n-d arrays); numpy scalars become Python ``bool``/``int``/``float``;
NaN and ±inf become ``None``; a ``Finding`` or any object with ``to_dict``
(not a DataFrame) is converted through its dict; a DataFrame becomes a list of
row dicts (``orient="records"``); ``None``, ``str`` and ``int`` pass unchanged;
anything else becomes ``str(value)``.

Fast paths (same results): exact Python ``float``/``int``/``str``/``bool``/``None``
and lists of them are handled before the ``isinstance`` chain (:mod:`nbdiag.core.jsonplain`,
shared with the record codec), and a numeric array is converted with one ``tolist()``
(the non-finite scan only runs when the array has any).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import pandas as pd

from nbdiag.core.jsonplain import plain_list

_isfinite = math.isfinite


def _finite_list(values: list) -> list:
    """``values`` (nested lists of Python floats) with non-finite floats replaced by None."""
    return [(_finite_list(v) if type(v) is list else (v if _isfinite(v) else None)) for v in values]


def _array(value: np.ndarray) -> Any:
    kind = value.dtype.kind
    if kind == "f":
        out = value.tolist()
        if np.isfinite(value).all():
            return out
        return _finite_list(out)
    if kind in "iub":
        return value.tolist()
    return [jsonable(v) for v in value.tolist()]


def jsonable(value: Any) -> Any:
    """Convert numpy/pandas values to JSON-safe Python (NaN/inf -> None; module doc)."""
    t = type(value)
    if t is float:
        return value if _isfinite(value) else None
    if t is str or t is int or t is bool or value is None:
        return value
    if t is dict:
        return _dict(value)
    if t is list or t is tuple:
        return _sequence(value)
    return _generic(value)


def _dict(value: dict) -> dict:
    """A dict: keys made ``str``; plain values (most leaves) copied without a call per value."""
    out = {}
    for k, v in value.items():
        tv = type(v)
        if tv is float:
            if not _isfinite(v):
                v = None
        elif not (tv is str or tv is int or tv is bool or v is None):
            v = jsonable(v)
        out[k if type(k) is str else str(k)] = v
    return out


def _sequence(value: list | tuple) -> list:
    """A list or tuple; lists of plain numbers/strings (per-scan series) are converted without recursion."""
    out = plain_list(value)
    return out if out is not None else [jsonable(v) for v in value]


def _generic(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return jsonable(value.tolist())
        return _array(value)
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if _isfinite(value) else None
    if hasattr(value, "to_dict") and not isinstance(value, pd.DataFrame):
        return jsonable(value.to_dict())
    if isinstance(value, pd.DataFrame):
        return _records(value)
    if value is None or isinstance(value, (str, int)):
        return value
    return str(value)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """``frame.to_dict(orient="records")`` made JSON-safe, built column by column (no per-row pandas)."""
    columns = [jsonable(frame.iloc[:, i].tolist()) for i in range(frame.shape[1])]
    return _rows([str(c) for c in frame.columns], columns, len(frame))


def records(frame: pd.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
    """``jsonable(frame[columns])`` (rows as dicts) without building the selected frame first.

    ``columns`` are names of distinct columns of ``frame``; a frame with repeated names goes
    through the selection.
    """
    if not frame.columns.is_unique:
        return _records(frame[columns])
    return _rows([str(c) for c in columns], [jsonable(frame[c].tolist()) for c in columns], len(frame))


def _rows(names: list[str], columns: list[list[Any]], n_rows: int) -> list[dict[str, Any]]:
    """Rows as dicts from JSON-safe columns (``n_rows`` empty dicts when there is no column)."""
    return [dict(zip(names, row)) for row in zip(*columns)] if names else [{} for _ in range(n_rows)]


def finite_number(v: Any) -> float | None:
    """``v`` as a float when it is a finite number, else ``None``: the one reader of numbers in records.

    A number is a JSON number: an ``int`` or ``float`` (numpy scalars included). ``None`` (null,
    missing), NaN and ±inf, booleans (``true`` is no number) and strings (``"1.5"`` is text, never
    read as a number) all give ``None``. Readers of records (group tables, outliers, attribution,
    reports) use it for values that may be absent, null or of another kind in a record.
    """
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        return None
    f = float(v)
    return f if math.isfinite(f) else None
