"""CLI paths end to end, in-process: --events-drop, `nbdiag design --report`, `nbdiag demo`."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from nbdiag.cli import main

SPACE = ["--space", "MNI152NLin6Asym", "--task", "nback", "--derivatives", "derivatives/fmriprep",
         "--img-filter", "desc", "preproc"]


def _records(out):
    return {p.name: json.loads(p.read_text()) for p in sorted(out.rglob("*_nbdiag.json"))}


def test_events_drop_leaves_the_type_out_of_the_model_and_lists_it(small_bids, tmp_path, capsys):
    common = [str(small_bids), "", "participant", *SPACE, "--participant-label", "02", "--no-reports",
              "--events-rename", "0BACK=zero_back", "--events-rename", "2BACK=two_back",
              "--contrast", "two_back - zero_back", "--confounds-strategy", "motion"]
    kept, dropped = tmp_path / "kept", tmp_path / "dropped"
    assert main([str(small_bids), str(kept), *common[2:]]) == 0
    assert main([str(small_bids), str(dropped), *common[2:], "--events-drop", "INSTRUCTION"]) == 0
    capsys.readouterr()
    (rk,), (rd,) = _records(kept).values(), _records(dropped).values()
    cols_k = [c["name"] for c in rk["design"]["columns"]]
    cols_d = [c["name"] for c in rd["design"]["columns"]]
    assert "INSTRUCTION" in cols_k and "INSTRUCTION" not in cols_d
    assert sorted(set(cols_k) - set(cols_d)) == ["INSTRUCTION"]
    unmod = pd.DataFrame(rd["events"]["unmodeled"])
    n_instr = sum(e["trial_type"] == "INSTRUCTION" for e in rk["events"]["modeled"])
    assert n_instr > 0 and len(unmod) == n_instr
    assert set(unmod["trial_type"]) == {"INSTRUCTION"} and set(unmod["reason"]) == {"dropped by events drop setting"}
    assert not rk["events"]["unmodeled"]
    # the dropped cue screens now sit in the baseline: the audit says so
    assert "baseline_unmodeled_events" in {f["code"] for f in rd["findings"]}
    assert "baseline_unmodeled_events" not in {f["code"] for f in rk["findings"]}


def _saved_design(tmp_path):
    from nilearn.glm.first_level import make_first_level_design_matrix

    ft = np.arange(100) * 2.0
    events = pd.DataFrame({"onset": np.arange(10) * 20.0, "duration": 8.0,
                           "trial_type": ["a", "b"] * 5})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        design = make_first_level_design_matrix(ft, events, drift_model="cosine", high_pass=0.01)
    path = tmp_path / "sub-01_task-x_design.tsv"
    design.to_csv(path, sep="\t", index=False)
    (tmp_path / "sub-01_task-x_design.json").write_text(json.dumps({"RepetitionTime": 2.0}))
    return path, design


def test_design_report_writes_html_and_record(tmp_path, capsys):
    from nilearn.glm.regression import OLSModel

    path, design = _saved_design(tmp_path)
    report, record_path = tmp_path / "out" / "design.html", tmp_path / "out" / "design.json"
    code = main(["design", str(path), "--contrast", "a - b", "--contrast", "a",
                 "--report", str(report), "--output", str(record_path)])
    out = capsys.readouterr().out
    assert code == 0
    assert "100 scans x" in out and "contrast a - b: estimable=True" in out and f"report: {report}" in out
    html = report.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") or html.lstrip().lower().startswith("<!doctype html>")
    assert "a - b" in html and "sub-01_task-x_design" in html
    record = json.loads(record_path.read_text())
    vec = np.array([1.0 if c == "a" else -1.0 if c == "b" else 0.0 for c in design.columns])
    ref = float(vec @ OLSModel(design.to_numpy()).normalized_cov_beta @ vec)  # nilearn's own variance
    assert record["contrasts"]["a - b"]["variance"] == pytest.approx(ref, rel=1e-9)
    assert record["design"]["n_scans"] == 100


def test_design_bad_file_is_an_error_not_a_traceback(tmp_path, capsys):
    assert main(["design", str(tmp_path / "missing.tsv"), "--t-r", "2"]) == 1
    assert "design file not found" in capsys.readouterr().err


def test_demo_cli_writes_the_gallery(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", str(out), "--n-jobs", "2"]) == 0
    printed = capsys.readouterr().out
    assert "nbdiag demo:" in printed and "Group sign-off: some runs fail" in printed
    records = _records(out)
    assert len(records) >= 6 and all(r["status"] in ("pass", "warn", "fail") for r in records.values())
    assert (out / "group.html").exists() and (out / "group" / "signoff.tsv").exists()
    subjects = sorted(p.name for p in out.glob("sub-*.html"))
    assert subjects == sorted({f"sub-{r['run']['subject']}.html" for r in records.values()})
    assert str(tmp_path) not in "".join(p.read_text() for p in (out / "group").glob("*.tsv"))  # no absolute paths


def test_demo_without_its_dataset_says_so(tmp_path, monkeypatch, capsys):
    import nbdiag.demo.run as demo_run

    monkeypatch.setattr(demo_run, "DATA_DIR", tmp_path / "nowhere")
    assert main(["demo", str(tmp_path / "out")]) == 1
    assert "bundled dataset is missing" in capsys.readouterr().err
