"""Refuse early: contrast and event-setting typos stop the command before any run (exit 2);
``nbdiag design`` says which checks it could not run and never crashes on a bad contrast."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

import nbdiag
from nbdiag.cli import main
from nbdiag.demo.run import CONFIG
from nbdiag.participant.preflight import close_match, expression_names


def _participant(demo_bids, out, capsys, *extra):
    code = main([str(demo_bids), str(out), "participant", "--config", str(CONFIG), "--no-reports", *extra])
    return code, capsys.readouterr().err


def test_contrast_typo_refused_before_any_run(demo_bids, tmp_path, capsys):
    out = tmp_path / "out"
    code, err = _participant(demo_bids, out, capsys, "--contrast", "zero_bak - two_back")
    assert code == 2
    assert "'zero_bak'" in err and "did you mean 'zero_back'?" in err
    assert "Known conditions: INSTRUCTION, two_back, zero_back" in err
    assert "Traceback" not in err
    assert not out.exists()  # nothing written, no run audited
    assert "auditing" not in err


def test_event_setting_typo_refused(demo_bids, tmp_path, capsys):
    code, err = _participant(demo_bids, tmp_path / "out", capsys, "--events-drop", "INSTRUCTON")
    assert code == 2
    assert "'INSTRUCTON'" in err and "did you mean 'INSTRUCTION'?" in err
    code, err = _participant(demo_bids, tmp_path / "out2", capsys, "--events-rename", "0BAK=zero_back")
    assert code == 2 and "did you mean '0BACK'?" in err


def test_transform_problems_refused(demo_bids, tmp_path, capsys):
    code, err = _participant(demo_bids, tmp_path / "out", capsys, "--events-transform", "rtdur",
                             "--rt-column", "reaction_time")
    assert code == 2 and "'reaction_time'" in err and "did you mean 'response_time'?" in err
    code, err = _participant(demo_bids, tmp_path / "out2", capsys, "--events-transform", "nosuchpkg.mod:func")
    assert code == 2 and "cannot import events transform module 'nosuchpkg.mod'" in err


def test_valid_settings_pass_the_preflight(demo_bids, tmp_path, capsys):
    code, err = _participant(demo_bids, tmp_path / "out", capsys, "--participant-label", "05",
                             "--contrast", "two_back - zero_back")
    assert code == 0, err


def test_close_match_and_names():
    assert close_match("zero_bak", ["two_back", "zero_back", "constant"]) == "zero_back"
    assert close_match("ZERO_BACK", ["zero_back"]) == "zero_back"
    assert close_match("xyz", ["zero_back"]) is None
    assert expression_names("2 * two_back - zero_back") == ["two_back", "zero_back"]
    assert expression_names("zero_back -") is None


@pytest.fixture(scope="module")
def saved_design(demo_bids, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("preflight") / "out"
    assert main([str(demo_bids), str(out), "participant", "--config", str(CONFIG), "--no-reports",
                 "--participant-label", "01"]) == 0
    return next(out.rglob("*_desc-nortdur_design.tsv"))


@pytest.mark.parametrize("expr", ["typo", "zero_back -", "zero_back * two_back", "", "import os", "@",
                                  "two_back/0 - zero_back"])
def test_design_bad_contrast_is_a_clear_error(saved_design, capsys, expr):
    code = main(["design", str(saved_design), "--contrast", expr])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("nbdiag: error: contrast ")
    assert "Known conditions: INSTRUCTION, two_back, zero_back" in err
    assert "Traceback" not in err and "TypeError" not in err


def test_design_lists_skipped_checks_at_the_top(saved_design, tmp_path, capsys):
    out_json = tmp_path / "rec.json"
    report = tmp_path / "design.html"
    code = main(["design", str(saved_design), "--contrast", "zero_back", "--output", str(out_json),
                 "--report", str(report)])
    text = capsys.readouterr().out
    assert code == 0
    lines = text.splitlines()
    assert lines[1].startswith("  checks not run or approximated")
    assert any("nonsteady_unhandled" in ln and "no fMRIPrep confounds file" in ln for ln in lines[2:12])
    html = report.read_text()
    assert "Checks not run or approximated on this input" in html
    assert html.index("Checks not run or approximated") < html.index("checks_skipped")  # a box before the findings
    record = json.loads(out_json.read_text())
    skipped = {c for s in record["skipped_checks"] if s["effect"] == "not run" for c in s["checks"]}
    assert {"baseline_unmodeled_events", "nonsteady_unhandled", "events_outside_run"} <= skipped
    finding = next(f for f in record["findings"] if f["code"] == "checks_skipped")
    assert finding["severity"] == "info" and "nonsteady_unhandled" in finding["message"]
    # the same design audited from its BIDS inputs finds what the saved design cannot see
    bids_record = json.loads(Path(str(saved_design).replace("_design.tsv", "_nbdiag.json")).read_text())
    assert "nonsteady_unhandled" in {f["code"] for f in bids_record["findings"]}
    assert "nonsteady_unhandled" not in {f["code"] for f in record["findings"]}


def test_api_contrast_typo_refused(demo_bids):
    import os

    from nilearn.glm.first_level import first_level_from_bids

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models, imgs, events, confounds = first_level_from_bids(
            demo_bids, "nback", space_label="MNI152NLin6Asym", sub_labels=["05"], img_filters=[("desc", "preproc")],
            derivatives_folder=os.path.abspath(demo_bids / "derivatives" / "fmriprep"))
    with pytest.raises(nbdiag.SettingsError, match=r"did you mean 'INSTRUCTION'\?"):
        nbdiag.audit_models(models, imgs, events, confounds, contrasts=["INSTRUCTON"])
