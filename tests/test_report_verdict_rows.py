"""Verdict rows for records without contrasts, errors, and the largest-bias sentence (report.summary)."""

from __future__ import annotations

from report_examples import finding, minimal_record

from nbdiag.record.model import FindingRecord
from nbdiag.report import summary as sm


def _anchor(prefix, variant):
    return f"{prefix}--{variant}"


def test_verdict_rows_without_contrasts_and_errors():
    no_prefix = minimal_record("", status="weird")
    no_prefix["run"]["entities"] = {}
    recs = [
        minimal_record("sub-01_run-01", status="warn", contrasts={},
                       findings=[finding("a", "info", title="Info only"),
                                 finding("b", "warn", title="Something to check", evidence={"bias_sd": 0.42})]),
        minimal_record("sub-01_run-02", status="pass"),
        no_prefix,
    ]
    rows = sm.verdict_rows(recs, _anchor)
    assert [r["prefix"] for r in rows] == ["sub-01_run-01", "sub-01_run-02", "unknown-run"]
    assert rows[0]["sentence"] == "Something to check: +0.420 σ" and rows[0]["code"] == "b"
    assert rows[0]["anchor"] == "sub-01_run-01--v" and rows[0]["contrast"] == "—"
    assert rows[1]["sentence"] == "No contrast requested." and rows[1]["code"] is None
    assert rows[2]["status"] == "error" and rows[2]["sentence"] == "Could not be audited: the run could not be audited"


def test_key_number_from_sensitivity_list_and_empty():
    def f(evidence):
        return FindingRecord.from_json(finding("x", "warn", evidence=evidence))

    assert sm.key_number(f({"sensitivity": [{"bias_sd": -1.5}]})) == "-1.50 σ"
    assert sm.key_number(f({})) == ""
