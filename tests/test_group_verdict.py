"""The group verdict rows (report/group_verdict.py): estimates, causes distinguishable from zero with
the subjects that contribute, failing runs, errors and the fix, checked against hand counts."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from nbdiag.group.attribution import attribution_table
from nbdiag.group.summary import bias_across_subjects, contributing_subjects, summarise
from nbdiag.report.group_verdict import contrast_kind, pm, tstat
from nbdiag.report.group_verdict import verdict_rows as _verdict_rows
from nbdiag.record.model import ContrastEntry
from report_examples import contrast, finding, minimal_record, sensitivity


def verdict_rows(records, table):
    return _verdict_rows(records, table, contributing_subjects(records))


def _record(subject, by_class, status="pass", findings=(), variant="v", error=None):
    total = float(sum(by_class.values()))
    contrasts = {
        "zero_back": contrast("zero_back", vector={"zero_back": 1.0, "two_back": 0.0},
                              measured={"global_signal": {"estimate_ols": total, "by_class": dict(by_class)}}),
        "two_back - zero_back": contrast("two_back - zero_back", vector={"zero_back": -1.0, "two_back": 1.0},
                                         measured={"global_signal": {"estimate_ols": 0.0, "by_class": {}}}),
    }
    rec = minimal_record(f"sub-{subject}_task-x_run-01", variant, status, contrasts=contrasts,
                         findings=list(findings))
    if error:
        rec.update(status="error", error={"code": None, "message": error}, contrasts={})
    return rec


def _fail(code, contrast, bias_sd=0.0, fix=None):
    return finding(code, "fail", contrast, fix=fix or f"fix for {code}", evidence={"bias_sd": bias_sd})


@pytest.fixture
def records():
    # nonsteady only in sub-01 (1 contributing subject), short gaps in all 4 (distinguishable)
    gaps = [-0.30, -0.25, -0.35, -0.28]
    recs = [_record(f"0{i + 1}", {"short_gap": g, "condition:zero_back": 0.1 * i,
                                  **({"nonsteady": -0.9} if i == 0 else {})}) for i, g in enumerate(gaps)]
    recs[0]["status"] = "fail"
    recs[0]["findings"] = [_fail("nonsteady_unhandled", None, -25.0, "pass sample_masks"),
                           _fail("sensitive_unmodeled_signal", "zero_back", -25.0, "umbrella")]
    recs.append(_record("05", {}, error="CompCor columns missing (fMRIPrep < 1.4 did not write it); found no file)"))
    return recs


def test_contrast_kind_and_formatting():
    def entry(**fields):
        return ContrastEntry.from_json(contrast("c", **fields))

    assert contrast_kind(entry(vector={"a": 1.0, "b": 0.0})) == "single"
    assert contrast_kind(entry(vector={"a": 1.0, "b": -1.0})) == "differential"
    assert contrast_kind(entry(kind="differential", vector={"a": 1.0})) == "differential"
    assert pm(-0.674, 0.131) == "−0.67 ± 0.13 %" and pm(None, None) == "n/a" and pm(0.5, None) == "+0.50 %"
    assert tstat(-1.04) == "t = −1.0" and tstat(None) == "t n/a"


def test_rows_against_hand_counts(records):
    table = attribution_table(records)
    rows = verdict_rows(records, table)
    assert [r["contrast"] for r in rows] == ["zero_back", "two_back - zero_back"]  # single first
    row = rows[0]
    totals = np.array([sum(r["contrasts"]["zero_back"]["measured"]["global_signal"]["by_class"].values())
                       for r in records[:4]])
    assert row["estimate"]["n"] == 4
    assert math.isclose(row["estimate"]["mean"], totals.mean())
    assert math.isclose(row["estimate"]["sem"], totals.std(ddof=1) / 2.0)
    words = {c["source"]: c for c in row["causes"]}
    # short gaps: t = mean/sem over 4 subjects, far from 0; nonsteady: 1 contributing subject -> not shown;
    # condition:zero_back is a model term -> never a cause
    assert set(words) == {"measured:global_signal:short_gap"}
    gap = words["measured:global_signal:short_gap"]
    assert (gap["n"], gap["of"]) == (4, 4) and gap["words"] == "short gaps next to blocks"
    x = np.array([-0.30, -0.25, -0.35, -0.28])
    assert math.isclose(gap["t"], x.mean() / (x.std(ddof=1) / 2.0))
    assert row["failing"] == ["sub-01_task-x_run-01"]
    assert row["errors"] == [("sub-05_task-x_run-01",
                              "CompCor columns missing (fMRIPrep < 1.4 did not write it); found no file)")]
    assert row["fix_code"] == "baseline_short_gaps"  # the distinguishable cause decides the fix
    # share only when the total is distinguishable from zero: here t = -1.3, so no share
    t_total = totals.mean() / (totals.std(ddof=1) / 2.0)
    assert abs(t_total) < 2 and gap["share"] is None
    records[0]["contrasts"]["zero_back"]["measured"]["global_signal"]["by_class"]["nonsteady"] = 0.0
    for rec in records[:4]:
        m = rec["contrasts"]["zero_back"]["measured"]["global_signal"]
        m["by_class"]["condition:zero_back"] = 0.0
        m["estimate_ols"] = sum(m["by_class"].values())
    gap = next(c for c in verdict_rows(records, attribution_table(records))[0]["causes"]
               if c["source"].endswith(":short_gap"))
    assert math.isclose(gap["share"], 1.0)  # the whole (distinguishable) estimate is the gaps'
    assert "ratio" not in gap


def test_fix_without_distinct_cause_is_the_specific_failing_finding(records):
    for rec in records[:4]:  # no short gaps: nothing distinguishable
        rec["contrasts"]["zero_back"]["measured"]["global_signal"]["by_class"].pop("short_gap", None)
    rows = verdict_rows(records, attribution_table(records))
    assert rows[0]["causes"] == []
    assert rows[0]["fix_code"] == "nonsteady_unhandled" and rows[0]["fix"] == "pass sample_masks"


def test_i20_columns_decide_when_present(records):
    table = attribution_table(records)
    table["kind"] = ["total" if s.endswith(":total") else "term" if "condition:" in s else "cause"
                     for s in table["source"]]
    table["distinct"] = table["source"].str.endswith(":nonsteady")  # i20's rule says so: shown
    rows = verdict_rows(records, table)
    sources = [c["source"] for c in rows[0]["causes"]]
    assert sources == ["measured:global_signal:nonsteady"]
    assert (rows[0]["causes"][0]["n"], rows[0]["causes"][0]["of"]) == (1, 4)  # 1 subject contributes
    assert rows[0]["causes"][0]["share"] is None  # the total's distinct is False: no share


def test_without_attribution_rows_still_list_failing_runs(records):
    rows = _verdict_rows(records, None)
    assert rows[0]["estimate"] is None and rows[0]["failing"] == ["sub-01_task-x_run-01"]
    assert _verdict_rows([], pd.DataFrame()) == []
    # without contributing counts, a row's subjects all count
    table = attribution_table(records)
    table["distinct"] = table["source"].str.endswith(":nonsteady")
    assert _verdict_rows(records, table)[0]["causes"][0]["n"] == 4


def test_bias_across_subjects_is_mean_and_sem_over_subjects():
    def rec(subject, run, biases):
        return minimal_record(f"sub-{subject}_run-{run}", "v", "warn", contrasts={"c": contrast(
            "c", sensitivity=[sensitivity(s, bias_sd=b) for s, b in biases.items()])})

    recs = [rec("01", 1, {"slow_drift": 1.0, "nonsteady": -25.0}), rec("01", 2, {"slow_drift": 3.0}),
            rec("02", 1, {"slow_drift": 4.0}), rec("03", 1, {"slow_drift": 6.0}),
            minimal_record("sub-04", "v", "error")]
    out = bias_across_subjects(recs)
    x = np.array([2.0, 4.0, 6.0])  # sub-01's two runs averaged first
    assert out["slow_drift"]["c"]["n"] == 3
    assert math.isclose(out["slow_drift"]["c"]["mean"], x.mean())
    assert math.isclose(out["slow_drift"]["c"]["sem"], x.std(ddof=1) / math.sqrt(3))
    assert out["nonsteady"]["c"] == {"mean": -25.0, "sem": None, "n": 1}  # one subject: said so, no SEM
    assert summarise(recs)["bias"]["v"] == out


def test_heatmap_keeps_long_run_names_whole():
    from nbdiag.report.group_report import plot_findings_heatmap

    label = "sub-04_ses-2_task-nback_acq-VARIANTObliquityLongerName_run-01 [compcor]"
    assert len(label) > 60
    svg = plot_findings_heatmap(pd.DataFrame([[3, 0]], index=[label], columns=["nonsteady_unhandled", "vif_high"]))
    assert f">{label}</text>" in svg
    assert "Non-steady-state volumes stay in the model (nonsteady_unhandled) = fail" in svg  # words + code
