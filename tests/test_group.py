"""Group tables, sign-off and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from nbdiag.group.pipeline import collect_records, run_group, signoff_table, write_group_tables
from report_examples import example_error_record, example_run


def _write(out: Path, rec: dict) -> None:
    ses = rec["run"].get("session")
    d = out / f"sub-{rec['run']['subject']}" / (f"ses-{ses}" if ses else "") / "func"
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{rec['run']['prefix']}_desc-{rec['variant']}_nbdiag.json").write_text(json.dumps(rec))


def _set_status(rec: dict, status: str) -> dict:
    rec["status"] = status
    if status == "pass":
        rec["findings"] = []
    elif status == "warn":
        rec["findings"] = [f for f in rec["findings"] if f["severity"] != "fail"]
    return rec


@pytest.fixture(scope="module")
def base_record():
    rec, _ = example_run("01", "nortdur")
    return rec


def _dataset(tmp_path: Path, base: dict, statuses: dict[str, str]) -> Path:
    for sub, status in statuses.items():
        rec = json.loads(json.dumps(base))
        rec["run"].update(subject=sub, prefix=f"sub-{sub}_ses-1_task-nback_run-01")
        rec["run"]["entities"]["sub"] = sub
        if status == "error":
            rec = example_error_record(sub)
        else:
            _set_status(rec, status)
        _write(tmp_path, rec)
    return tmp_path


def test_all_pass_exit_0(tmp_path, base_record):
    out = _dataset(tmp_path, base_record, {"01": "pass", "02": "pass"})
    assert run_group(out, "fail", report=False) == 0
    inc = pd.read_csv(out / "group" / "include.tsv", sep="\t", dtype=str)
    assert list(inc["subject"]) == ["01", "02"]
    assert inc["events"].str.endswith("_events.tsv").all()


def test_fail_exit_3_and_tables(tmp_path, base_record):
    out = _dataset(tmp_path, base_record, {"01": "pass", "02": "fail", "03": "warn", "04": "error"})
    # a run that could not be audited: exit 1, not 3 (3 is for QC only)
    assert run_group(out, "fail") == 1
    so = pd.read_csv(out / "group" / "signoff.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert list(so.columns[:6]) == ["subject", "session", "run", "variant", "status", "reasons"]
    by = dict(zip(so["subject"], so["signoff"]))
    assert by == {"01": "pass", "02": "fail", "03": "pass", "04": "fail"}
    reasons = dict(zip(so["subject"], so["reasons"]))
    assert "nonsteady_unhandled" in reasons["02"]
    assert reasons["04"].startswith("error: column 'onset' must be numeric")
    runs = pd.read_csv(out / "group" / "nbdiag_runs.tsv", sep="\t", dtype=str)
    assert len(runs) == 4
    for col in ("subject", "session", "task", "acq", "run", "variant", "status", "n_scans", "t_r", "rank",
                "condition_number", "max_task_vif", "baseline_fraction", "zero_back:estimable",
                "zero_back:variance", "zero_back:cvif", "zero_back:top_finding", "n_fail", "n_warn"):
        assert col in runs.columns, col
    inc = pd.read_csv(out / "group" / "include.tsv", sep="\t", dtype=str)
    assert sorted(inc["subject"]) == ["01", "03"]
    html = (out / "group.html").read_text()
    assert "href=\"sub-02.html#sub-02_ses-1_task-nback_run-01--nortdur\"" in html and "http://" not in html and "https://" not in html


def test_fail_on_warn(tmp_path, base_record):
    out = _dataset(tmp_path, base_record, {"01": "pass", "03": "warn"})
    assert run_group(out, "fail", report=False) == 0
    assert run_group(out, "warn", report=False) == 3
    so = pd.read_csv(out / "group" / "signoff.tsv", sep="\t", dtype=str)
    assert dict(zip(so["subject"], so["signoff"])) == {"01": "pass", "03": "fail"}
    assert "vif_high" in so.loc[so["subject"] == "03", "reasons"].item()


def test_bad_fail_on_and_empty_dir(tmp_path, base_record):
    with pytest.raises(ValueError, match="fail_on must be one of"):
        run_group(tmp_path, "error")
    assert run_group(tmp_path, "fail") == 2
    with pytest.raises(ValueError, match="fail_on"):
        signoff_table([base_record], "bad")


def test_broken_json_is_error_row(tmp_path, base_record):
    out = _dataset(tmp_path, base_record, {"01": "pass"})
    bad = out / "sub-02" / "func"
    bad.mkdir(parents=True)
    (bad / "sub-02_task-nback_run-01_desc-nortdur_nbdiag.json").write_text("{not json")
    recs = collect_records(out)
    assert [r["status"] for r in recs] == ["pass", "error"]
    assert recs[1]["run"]["subject"] == "02" and recs[1]["variant"] == "nortdur"
    paths = write_group_tables(recs, out)
    so = pd.read_csv(paths["signoff"], sep="\t", dtype=str)
    assert so.loc[1, "signoff"] == "fail" and "could not read" in so.loc[1, "reasons"]
    assert run_group(out) == 2  # a partial record is refused, nothing signed off
    assert not (out / "group" / "signoff.tsv").exists()
    assert run_group(out, allow_incomplete=True) == 1


def test_hostile_names_in_group_html(tmp_path):
    rec, _ = example_run("05", "nortdur", hostile=True)
    _write(tmp_path, rec)
    run_group(tmp_path, "fail")
    html = (tmp_path / "group.html").read_text()
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_large_dataset_group_report(tmp_path, base_record):
    n = 150
    for i in range(n):
        rec = json.loads(json.dumps(base_record))
        sub = f"{i:03d}"
        rec["run"].update(subject=sub, prefix=f"sub-{sub}_ses-1_task-nback_run-01")
        for key in ("weights",):
            for c in rec["contrasts"].values():
                c.pop(key, None)
        _set_status(rec, ["pass", "warn", "fail"][i % 3])
        _write(tmp_path, rec)
    assert run_group(tmp_path, "fail") == 3  # timing: benchmarks/, not tests
    html = (tmp_path / "group.html").read_text()
    assert "run × variants shown" in html
    assert len(html) < 3e6
    so = pd.read_csv(tmp_path / "group" / "signoff.tsv", sep="\t", dtype=str)
    assert (so["signoff"] == "fail").sum() == n // 3


def test_signoff_lists_warnings_of_passing_runs():
    from nbdiag.group.pipeline import signoff_table

    from report_examples import finding, minimal_record

    rec = minimal_record("sub-01_task-t_run-1", "default", "warn",
                         findings=[finding("baseline_short_gaps", "warn", "zero_back"),
                                   finding("correlation_high", "info")])
    row = signoff_table([rec], fail_on="fail").iloc[0]
    assert row["signoff"] == "pass" and row["reasons"] == ""
    assert row["warnings"] == "baseline_short_gaps (zero_back)"
    row = signoff_table([rec], fail_on="warn").iloc[0]
    assert row["signoff"] == "fail" and row["reasons"] == "baseline_short_gaps (zero_back)" and row["warnings"] == ""


def test_group_tables_read_typed_records_json_only_at_the_boundary(base_record):
    """runs_table / signoff_table take the typed record, a StoredRecord or the record's JSON (read once
    with RunRecord.from_json): the same rows; JSON that does not fit the type names the field."""
    from nbdiag.group.pipeline import StoredRecord, read_stored, runs_table
    from nbdiag.record.model import RecordFormatError, RunRecord

    typed = RunRecord.from_json(base_record)
    as_json = dict(base_record, _path="sub-01/func/x_nbdiag.json")
    stored = read_stored(as_json)
    assert stored == StoredRecord(typed, "sub-01/func/x_nbdiag.json") and read_stored(stored) is stored
    assert read_stored(typed) == StoredRecord(typed, "")
    a, b = runs_table([typed]), runs_table([as_json])
    assert a.drop(columns="record").equals(b.drop(columns="record"))
    assert list(b["record"]) == ["sub-01/func/x_nbdiag.json"] and list(a["record"]) == [""]
    assert signoff_table([typed]).equals(signoff_table([base_record]))
    with pytest.raises(RecordFormatError, match=r"record\.status: expected a string"):
        runs_table([dict(base_record, status=3)])
