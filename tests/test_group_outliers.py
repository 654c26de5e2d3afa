"""group/nbdiag_outliers.tsv (issue 23): AFNI's -report_outliers from the records' key numbers."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from nbdiag.group.pipeline import run_group
from nbdiag.group.outliers import METRICS, OUTLIER_COLUMNS, outlier_sections, outlier_table
from report_examples import example_run


def _counts(frac, n=20):
    return {"n_scans": n, "n_censored": round(frac * n), "fraction": frac}


def _neutral(rec: dict, sub: str) -> dict:
    rec = json.loads(json.dumps(rec))
    rec["run"].update(subject=sub, prefix=f"sub-{sub}_ses-1_task-nback_run-01")
    rec["run"]["entities"]["sub"] = sub
    mask = {"removed_volumes": [0], "applied": True, "run": _counts(0.05, 100),
            "conditions": {"zero_back": _counts(0.05), "two_back": _counts(0.1)}, "baseline": _counts(0.0),
            "conditions_by_events": None, "baseline_by_events": None,
            "n_kept": 95, "rank_kept": 10, "dof_left": 85, "n_regressors": 10}
    rec["diagnostics"]["censoring"] = {"in_fraction": 0.5, "conditions": {}, "n_scans_total": 100,
                                       "masks": {"applied": mask, "load_confounds": None}}
    rec["diagnostics"]["motion"] = {"source": "confounds", "columns": ["framewise_displacement"], "missing": [],
                                    "series": {"framewise_displacement": {
                                        "mean": {"run": 0.1, "baseline": 0.1,
                                                 "conditions": {"zero_back": 0.1, "two_back": 0.12}},
                                        "r": {"zero_back": 0.05, "two_back": -0.1}}}}
    for c in rec["contrasts"].values():
        c["cvif"], c["efficiency"] = 1.5, 10.0
        c["measured"] = {"global_signal": {"t": 0.5, "in_model": False}, "csf": {"t": 9.0, "in_model": True}}
    return rec


@pytest.fixture(scope="module")
def study():
    base, _ = example_run("01", "nortdur")
    recs = {s: _neutral(base, s) for s in ("01", "02", "03", "04")}
    # sub-02: 12 of two_back's 20 scans censored (0.6 >= censor_condition_info 0.2), run 0.15 (>= 0.1)
    m = recs["02"]["diagnostics"]["censoring"]["masks"]["applied"]
    m["conditions"]["two_back"] = _counts(0.6)
    m["run"] = _counts(0.15, 100)
    # sub-03: mean FD 0.4 mm during zero_back (>= outlier_fd_mean 0.25) and |r| 0.55 with zero_back (>= 0.4)
    s = recs["03"]["diagnostics"]["motion"]["series"]["framewise_displacement"]
    s["mean"]["conditions"]["zero_back"] = 0.4
    s["r"]["zero_back"] = -0.55
    return recs


def test_outlier_table_lists_the_two_subjects_that_exceed(study):
    table = outlier_table(study.values())
    assert list(table.columns) == OUTLIER_COLUMNS
    got = [(r.metric, r.item, r.subject, r.comparison, r.threshold, r.threshold_key) for r in table.itertuples()]
    assert got == [
        ("censor_fraction_condition", "two_back", "02", "≥", 0.2, "censor_condition_info"),
        ("censor_fraction_run", "", "02", "≥", 0.1, "censor_run_info"),
        ("motion_fd_condition", "zero_back", "03", "≥", 0.25, "outlier_fd_mean"),
        ("motion_task_r", "zero_back", "03", "≥", 0.4, "motion_corr_warn"),
    ]
    assert table["value"].tolist() == [0.6, 0.15, 0.4, 0.55]
    assert table["mask"].tolist() == ["applied", "applied", "", ""]


def test_outlier_thresholds_come_from_the_records_settings(study):
    recs = json.loads(json.dumps(list(study.values())))
    for r in recs:
        r["settings"]["thresholds"]["outlier_fd_mean"] = 0.11  # as [thresholds] outlier_fd_mean = 0.11
        r["settings"]["thresholds"].pop("censor_run_info", None)  # an older record: the default is used
    table = outlier_table(recs)
    fd = table[table.metric == "motion_fd_condition"]
    assert sorted(zip(fd.subject, fd.item)) == [("01", "two_back"), ("02", "two_back"), ("03", "two_back"),
                                                ("03", "zero_back"), ("04", "two_back")]
    assert set(table[table.metric == "censor_fraction_run"].threshold) == {0.1}


def test_efficiency_vif_and_measured_bias_rows(study):
    recs = json.loads(json.dumps(list(study.values())))
    name = next(iter(recs[0]["contrasts"]))
    recs[3]["contrasts"][name]["efficiency"] = 4.0  # 0.4 of the median (10): < 0.5
    recs[3]["contrasts"][name]["cvif"] = 7.0
    gs = recs[3]["contrasts"][name]["measured"]["global_signal"]
    gs.update(t=-9.0, se=0.1, by_class={"nonsteady": -0.25, "short_gap": -0.6, "condition:x": 0.4},
              by_class_t={"nonsteady": -4.0, "short_gap": -1.0, "condition:x": 8.0},
              by_class_kind={"nonsteady": "cause", "short_gap": "cause", "condition:x": "term"})
    # subject 02: a large estimate that no cause explains (only a term part is distinct): no row
    other = recs[1]["contrasts"][name]["measured"]["global_signal"]
    other.update(t=-12.0, se=0.1, by_class={"condition:x": -1.2}, by_class_t={"condition:x": -12.0},
                 by_class_kind={"condition:x": "term"})
    recs.append({**recs[0], "status": "error"})  # error records are left out
    table = outlier_table(recs)
    rows = table[table.subject == "04"]
    assert sorted(zip(rows.metric, rows.value)) == [("contrast_vif", 7.0), ("efficiency", 0.4),
                                                    ("measured_bias", 2.5)]  # nonsteady: 0.25 / 0.1 SE
    assert "02" not in set(table[table.metric == "measured_bias"].subject)
    sections = outlier_sections(table)
    assert [s["metric"] for s in sections] == list(METRICS)
    assert sections[0]["rows"] and sections[0]["thresholds"] == [0.2]
    empty = outlier_sections(outlier_table([]))
    assert all(s["rows"] == [] for s in empty) and empty[2]["thresholds"] == [0.25]


def test_run_group_writes_the_table_and_the_page_section(tmp_path, study):
    from test_group import _write

    for rec in study.values():
        _write(tmp_path, rec)
    run_group(tmp_path, "fail")
    table = pd.read_csv(tmp_path / "group" / "nbdiag_outliers.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert list(table.columns) == OUTLIER_COLUMNS
    assert sorted(set(table.subject)) == ["02", "03"]
    html = (tmp_path / "group.html").read_text()
    assert 'id="reviewer-outliers"' in html and "<details>" in html
    assert "sub-02_ses-1_task-nback_run-01" in html.split('id="reviewer-outliers"')[1]
