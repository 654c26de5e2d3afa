"""One JSON converter for diagnostics and records (nbdiag.core.jsonio.jsonable)."""

import math

import numpy as np
import pytest
import pandas as pd

from nbdiag.core.jsonio import jsonable
from nbdiag.core.findings import Finding


def _reference(value):
    """The recursive converter jsonable replaced (audit.jsonable before the move)."""
    if isinstance(value, dict):
        return {str(k): _reference(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_reference(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_reference(v) for v in value.tolist()]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, Finding):
        return _reference(value.to_dict())
    if hasattr(value, "to_dict") and not isinstance(value, pd.DataFrame):
        return _reference(value.to_dict())
    if isinstance(value, pd.DataFrame):
        return _reference(value.to_dict(orient="records"))
    if value is None or isinstance(value, (str, int)):
        return value
    return str(value)


def test_matches_reference_and_types():
    f = Finding(code="x", severity="warn", title="t", message="m", evidence={"v": np.float64(np.nan)})
    value = {
        1: np.array([1.0, np.nan, np.inf, -np.inf, -0.0]),
        "m": np.array([[1.5, np.nan], [np.inf, 2.0]]),
        "ok": np.arange(3, dtype=float),
        "ints": np.arange(3), "bools": np.array([True, False]), "f32": np.array([0.1, np.nan], dtype=np.float32),
        "obj": np.array([1, "a", None, np.float64(np.inf)], dtype=object),
        "scalars": (np.float32(0.5), np.int16(3), np.bool_(True), np.float64(-np.inf), float("nan"), 2, "s", None),
        "finding": f, "frame": pd.DataFrame({"a": [1.0, np.nan], "b": ["x", "y"]}),
        "nested": [[np.float64(1.0), [np.nan]], {"k": (np.int64(7),)}],
        "other": complex(1, 2), "flag": True,
        "plain": {"nan": float("nan"), "inf": -math.inf, "f": 0.25, 3: None, "b": False, "i": 4, "s": "x"},
    }
    out = jsonable(value)
    assert out == _reference(value)
    assert out["1"] == [1.0, None, None, None, -0.0]
    assert out["m"] == [[1.5, None], [None, 2.0]]
    assert out["scalars"] == [0.5, 3, True, None, None, 2, "s", None]
    assert type(out["scalars"][0]) is float and type(out["scalars"][1]) is int and type(out["scalars"][2]) is bool
    assert out["finding"]["evidence"] == {"v": None}
    assert out["frame"] == [{"a": 1.0, "b": "x"}, {"a": None, "b": "y"}]
    assert out["other"] == "(1+2j)"
    assert out["plain"] == {"nan": None, "inf": None, "f": 0.25, "3": None, "b": False, "i": 4, "s": "x"}
    assert all(type(x) is float for x in out["ok"]) and all(type(x) is int for x in out["ints"])


def test_zero_d_arrays_subclasses_and_the_report_namespace():
    from collections import OrderedDict

    import nbdiag.report as report

    assert jsonable(np.array(2.5)) == 2.5 and jsonable(np.array(np.nan)) is None
    assert jsonable(OrderedDict(a=np.float32(1.5))) == {"a": 1.5}
    assert callable(report.render_subject_report) and callable(report.render_group_report)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        report.nope  # noqa: B018


def test_finite_number_is_the_one_reader_of_numbers_in_records():
    """core.jsonio.finite_number: a JSON number (int, float, numpy scalar) that is finite, else None;
    text, booleans, null, NaN and inf are no numbers (report.access.finite and group.outliers._num are gone)."""
    import numpy as np

    from nbdiag.core.jsonio import finite_number
    from nbdiag.group import outliers
    from nbdiag.report import access, group_verdict, run_figures, summary

    assert [finite_number(v) for v in (1, 2.5, np.float32(0.5), np.int64(3), -0.0)] == [1.0, 2.5, 0.5, 3.0, 0.0]
    assert [finite_number(v) for v in (None, True, False, np.bool_(True), "1.5", "nan", float("nan"),
                                       float("inf"), -np.inf, [1], {"a": 1})] == [None] * 11
    assert not hasattr(access, "finite") and outliers._num is finite_number
    assert group_verdict._num is summary._num is run_figures._finite is finite_number


def test_the_record_codec_and_jsonable_share_the_plain_list_path():
    """core.jsonplain.plain_list is the one fast path of both writers: plain or all-float lists
    convert without recursion (non-finite -> None); anything mixed is left to the caller."""
    from nbdiag.core.jsonplain import plain_list
    from nbdiag.record.codec import to_json

    for values in ([1, 2], [1.0, float("nan"), float("-inf")], ("a", None, True), [], (0.5,)):
        expected = [None if isinstance(v, float) and v != v or v in (float("inf"), float("-inf")) else v
                    for v in values]
        assert plain_list(values) == expected
        assert jsonable(values) == to_json(values) == expected
    assert plain_list([1, 2.5]) is None and plain_list([[1.0]]) is None
    assert jsonable([1, float("nan")]) == to_json([1, float("nan")]) == [1, None]


def test_records_of_named_columns_equal_the_selection():
    from nbdiag.core.jsonio import records

    frame = pd.DataFrame({"onset": [1.0, np.nan, 3.5], "duration": [2, 0, 1], "trial_type": ["a", "b", "c"],
                          "extra": [0, 1, 2]})
    want = jsonable(frame[["trial_type", "onset", "duration"]])
    assert records(frame, ["trial_type", "onset", "duration"]) == want
    assert want[1] == {"trial_type": "b", "onset": None, "duration": 0}
    twice = pd.DataFrame([[1.0, 2.0, "x"]], columns=["a", "a", "b"])
    assert records(twice, ["b"]) == jsonable(twice[["b"]])
    assert records(frame, []) == [{}, {}, {}]
