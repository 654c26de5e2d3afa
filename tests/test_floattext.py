"""The fast float text (nbdiag.core.floattext) and the record writer's compact values (outputs.files).

Reference: Python's own ``repr`` (design TSV, what pandas' ``to_csv`` writes) and ``json`` (record).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import nbdiag.core.floattext as ft
import nbdiag.outputs.files as files

pytest.importorskip("orjson")


def _samples() -> list[float]:
    rng = np.random.default_rng(7)
    bits = rng.integers(0, 2**63, 200_000, dtype=np.uint64)  # every exponent, both signs below
    vals = np.frombuffer(bits.tobytes(), dtype=np.float64)
    vals = np.concatenate([vals, -vals, 10.0 ** rng.uniform(-8, 18, 50_000)])
    edges = [0.0, -0.0, 1.0, 1e-4, 1e-5, 1e16, 1e15, 9999999999999998.0, 9.999999999999999e-05,
             np.nextafter(1e-4, 0), np.nextafter(1e16, 0), np.nextafter(1e16, 2e16), 5e-324,
             2.2250738585072014e-308, 1.7976931348623157e308, 0.1, 0.30000000000000004, 1e22, 1e-7, 123.0]
    out = [float(v) for v in np.concatenate([vals, edges, np.negative(edges)]) if np.isfinite(v)]
    return out


def test_float_texts_equal_repr_for_every_magnitude():
    values = _samples()
    assert ft.float_texts(values) == [repr(v) for v in values]


def test_float_texts_without_orjson_is_repr(monkeypatch):
    values = [1e-5, 0.25, 1e16, -0.0]
    monkeypatch.setattr(ft, "_orjson", None)
    assert ft.float_texts(values) == ["1e-05", "0.25", "1e+16", "-0.0"]


def test_float_texts_refuses_non_finite_and_takes_empty():
    assert ft.float_texts([1.0, float("nan")]) is None
    assert ft.float_texts([float("inf")]) is None
    assert ft.float_texts([]) == []


def test_design_tsv_text_is_pandas_to_csv():
    import pandas as pd

    rng = np.random.default_rng(3)
    X = rng.standard_normal((40, 4)) * 10.0 ** rng.uniform(-9, 17, (40, 4))
    X[0, 0], X[1, 1] = 1e-5, -0.0
    frame = pd.DataFrame(X, columns=["a", "b_derivative", "drift_1", "constant"])
    files._COLUMN_TEXT.clear()
    assert files.design_tsv_text(frame) == frame.to_csv(sep="\t", index=False)


def test_record_values_parse_back_to_the_same_data():
    data = {"design": {"frame_times": [0.5 * i for i in range(600)], "n": 3},
            "contrasts": {"c": {"weights": _samples()[:2000], "label": "σ ≥ 2 — 😀", "nested": {"k": [1, None, True]}}},
            "notes": ["a \"quoted\" \\ text\n"]}
    text = files.dumps_record(data)
    assert text.isascii()  # non-ASCII escaped as json.dumps escapes it
    assert json.loads(text) == data
    assert '"label":"\\u03c3 \\u2265 2 \\u2014 \\ud83d\\ude00"' in text


def test_record_writer_without_orjson_or_with_values_orjson_refuses(monkeypatch):
    data = {"a": {"big": 2**70, "x": [1e-5] * 3}, "b": {"1": 2}}
    text = files.dumps_record(data)  # the big integer goes through json
    assert json.loads(text) == data
    monkeypatch.setattr(files, "_orjson", None)
    plain = files.dumps_record(data)
    assert json.loads(plain) == data
    with pytest.raises(ValueError):
        files.dumps_record({"z": {"y": float("nan")}})  # the standard library keeps its guard


def test_record_writer_writes_non_finite_as_null_like_the_codec():
    text = files.dumps_record({"z": {"y": [float("nan"), float("inf"), 1.0]}})
    assert json.loads(text) == {"z": {"y": [None, None, 1.0]}}
