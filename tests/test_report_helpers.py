"""Subject-report helpers: number formatting, record lookups with missing keys, thresholds fallback."""

from __future__ import annotations

import pandas as pd
import pytest

from nbdiag.report import subject as rs
from nbdiag.core.thresholds import Thresholds


@pytest.mark.parametrize("value, expected", [
    (None, "n/a"), ("text", "text"), (True, "yes"), (False, "no"), (object, str(object)),
    (float("nan"), "n/a"), (0, "0"), (12345.0, "1.23e+04"), (2.5e7, "2.50e+07"), (0.0001234, "0.000123"),
    (0.5, "0.5"), (12.5, "12.5"), (3.14159, "3.14"),
])
def test_fmt_num(value, expected):
    assert rs.fmt_num(value) == expected


@pytest.mark.parametrize("value, expected", [(None, "n/a"), ("x", "x"), (float("inf"), "n/a"), (0.256, "26%")])
def test_fmt_pct(value, expected):
    assert rs.fmt_pct(value) == expected


def test_record_lookups():
    assert rs._get({"a": [1, {"b": 2}]}, "a", 1, "b") == 2
    assert rs._get({"a": [1]}, "a", 5, default="d") == "d"
    assert rs._get({"a": None}, "a", default="d") == "d"
    assert rs.subject_label({"run": {"entities": {"sub": "sub-07"}}}) == "07"
    assert rs.subject_label({}) == "unknown"
    assert rs.run_prefix({"run": {"entities": {"sub": "01", "ses": None, "task": "x"}}}) == "sub-01_task-x"
    assert rs.run_prefix({}) == "unknown-run"


def test_thresholds_of_record():
    rec = {"settings": {"thresholds": {"vif_warn": 3, "nonsense": 1, "vif_fail": "high"}}}
    assert rs.thresholds_of(rec) == Thresholds().updated({"vif_warn": 3})
    assert rs.thresholds_of({"settings": {"thresholds": {"vif_warn": -1}}}) == Thresholds()


def test_find_design_keys():
    d = pd.DataFrame({"a": [1.0]})
    rec = {"run": {"prefix": "sub-01_task-x"}, "variant": "v", "design": {"tsv": "sub-01/func/d.tsv"}}
    assert rs._find_design(rec, None) is None
    assert rs._find_design(rec, {("sub-01_task-x", "v"): d}) is d
    assert rs._find_design(rec, {"sub-01_task-x_desc-v": d}) is d
    assert rs._find_design(rec, {"d.tsv": d}) is d
    assert rs._find_design(rec, {"other": d}) is None
