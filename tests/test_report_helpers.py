"""Subject-report helpers: number formatting, record lookups with missing keys, thresholds fallback."""

from __future__ import annotations

import pandas as pd
import pytest

from nbdiag.report import subject as rs
from nbdiag.core.thresholds import Thresholds
from nbdiag.record.model import RunRecord


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


def _record(**parts):
    from report_examples import minimal_record

    return RunRecord.from_json(minimal_record(**parts))


def test_record_lookups():
    rec = _record().to_json()
    assert rs.subject_label({**rec, "run": {**rec["run"], "subject": "", "entities": {"sub": "sub-07"}}}) == "07"
    assert rs.subject_label({**rec, "run": {**rec["run"], "subject": "", "entities": {}}}) == "unknown"
    no_prefix = {**rec["run"], "prefix": "", "entities": {"sub": "01", "ses": "", "task": "x"}}
    assert rs.run_prefix({**rec, "run": no_prefix}) == "sub-01_task-x"
    assert rs.run_prefix({**rec, "run": {**no_prefix, "entities": {}}}) == "unknown-run"
    assert rs.run_prefix(_record(prefix="sub-02_task-y")) == "sub-02_task-y"   # typed records are read as they are


def test_thresholds_of_record():
    assert rs.thresholds_of(_record(thresholds={"vif_warn": 3, "nonsense": 1})) == Thresholds().updated({"vif_warn": 3})
    assert rs.thresholds_of(_record(thresholds={"vif_warn": -1})) == Thresholds()


def test_find_design_keys():
    d = pd.DataFrame({"a": [1.0]})
    rec = _record(prefix="sub-01_task-x", variant="v",
                  design={"n_scans": 1, "n_columns": 1, "rank": 1, "columns": [], "tsv": "sub-01/func/d.tsv"})
    assert rs._find_design(rec, None) is None
    assert rs._find_design(rec, {("sub-01_task-x", "v"): d}) is d
    assert rs._find_design(rec, {"sub-01_task-x_desc-v": d}) is d
    assert rs._find_design(rec, {"d.tsv": d}) is d
    assert rs._find_design(rec, {"other": d}) is None


def test_reports_read_typed_records_json_once_at_the_boundary():
    """report.access: JSON is read once (typed), absent parts are None (opt) and templates see only the
    fields a record has (present_fields); JSON that is not a record names the field."""
    from nbdiag.record.model import ABSENT, RecordFormatError, RunError
    from nbdiag.report import access

    rec = _record()
    assert access.typed(rec) is rec and access.typed(rec.to_json()) == rec
    assert access.opt(rec.design) is None and access.opt(rec.design, "x") == "x" and access.opt(0) == 0
    error = RunError(code=None, message="m", file="f.tsv")
    assert error.column is ABSENT and access.present_fields(error) == {"code": None, "message": "m", "file": "f.tsv"}
    assert access.settings_thresholds(rec) == {}
    with pytest.raises(RecordFormatError, match=r"record\.run\.prefix"):
        rs.render_subject_report("01", [{**rec.to_json(), "run": {**rec.to_json()["run"], "prefix": 3}}], None,
                                 "unused.html")
