"""Bad input: clear messages, other runs still audited, exit codes, inputs untouched."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nbdiag.cli import main
from nbdiag.demo.synth import run_paths, small_spec, write_dataset
from record_schema import validate_record

FORUM = ["--task", "nback", "--space", "MNI152NLin6Asym", "--derivatives", "derivatives/fmriprep",
         "--img-filter", "desc", "preproc", "--high-pass", "0.005",
         "--confounds-strategy", "motion", "non_steady_state", "--confounds-motion", "basic", "--no-reports"]


def _tree_digest(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_symlink():
            out[str(p.relative_to(root))] = "link:" + str(p.readlink())
        elif p.is_file():
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture()
def dataset(tmp_path):
    spec = small_spec()
    root = write_dataset(tmp_path / "bids", spec)
    return root, spec


def _paths(root, spec, index):
    return run_paths(root, spec, spec.runs[index])


def _records(out: Path) -> dict[str, dict]:
    """Every record written, each checked against docs/record.schema.json (error records included)."""
    return {p.name: validate_record(json.loads(p.read_text()), p.name) for p in out.rglob("*_nbdiag.json")}


def _run(root, out, capsys, *extra):
    code = main([str(root), str(out), "participant", *FORUM, *extra])
    return code, capsys.readouterr().err


def _error_of(records: dict, prefix: str) -> dict:
    matches = [r for name, r in records.items() if name.startswith(prefix)]
    assert matches, f"no record for {prefix}: {sorted(records)}"
    assert matches[0]["status"] == "error", matches[0]["status"]
    return matches[0]["error"]


def test_clean_dataset_exit_0_and_inputs_unchanged(dataset, tmp_path, capsys):
    root, spec = dataset
    before = _tree_digest(root)
    code, err = _run(root, tmp_path / "out", capsys)
    assert code == 0, err
    assert "[5/5]" in err  # one progress line per run
    records = _records(tmp_path / "out")
    assert len(records) == 5
    assert all(r["status"] != "error" for r in records.values())
    assert _tree_digest(root) == before
    assert "Traceback" not in err


def _break(case: str, root: Path, spec) -> tuple[int, str, str]:
    """Break run 1 of sub-01 ses-1 in one way; return (run index, expected text, column)."""
    p = _paths(root, spec, 1)
    events = pd.read_csv(p.events, sep="\t")
    if case == "missing_events":
        p.events.unlink()
        return 1, "no events.tsv", None
    if case == "nan_onset":
        events.loc[3, "onset"] = np.nan
        events.to_csv(p.events, sep="\t", index=False, na_rep="n/a")
        return 1, "non-numeric 'onset'", "onset"
    if case == "text_duration":
        events["duration"] = events["duration"].astype(object)
        events.loc[2, "duration"] = "long"
        events.to_csv(p.events, sep="\t", index=False)
        return 1, "non-numeric 'duration'", "duration"
    if case == "negative_duration":
        events.loc[5, "duration"] = -1.0
        events.to_csv(p.events, sep="\t", index=False)
        return 1, "negative duration", "duration"
    if case == "missing_onset_column":
        events.drop(columns="onset").to_csv(p.events, sep="\t", index=False)
        return 1, "no 'onset' column", "onset"
    if case == "confounds_rows":
        conf = pd.read_csv(p.confounds, sep="\t")
        conf.iloc[:-5].to_csv(p.confounds, sep="\t", index=False, na_rep="n/a")
        return 1, "row count differs", None
    if case == "confounds_nan":
        conf = pd.read_csv(p.confounds, sep="\t")
        conf.loc[40, "trans_x"] = np.nan
        conf.to_csv(p.confounds, sep="\t", index=False, na_rep="n/a")
        return 1, "NaN", "trans_x"
    if case == "confounds_missing_column":
        conf = pd.read_csv(p.confounds, sep="\t")
        conf.drop(columns=["rot_z"]).to_csv(p.confounds, sep="\t", index=False, na_rep="n/a")
        return 1, "load_confounds refused", None
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["missing_events", "nan_onset", "text_duration", "negative_duration",
                                  "missing_onset_column", "confounds_rows", "confounds_nan",
                                  "confounds_missing_column"])
def test_one_broken_run_others_audited(dataset, tmp_path, capsys, case):
    root, spec = dataset
    index, text, column = _break(case, root, spec)
    before = _tree_digest(root)
    code, err = _run(root, tmp_path / "out", capsys)
    assert code == 1
    assert "Traceback" not in err
    records = _records(tmp_path / "out")
    assert len(records) == 5
    error = _error_of(records, spec.runs[index].prefix)
    assert text in error["message"], error
    assert error["file"], error  # names the file
    if column:
        assert error["column"] == column
    assert error["message"] in err or error["message"].split(" (")[0] in err
    others = [r for n, r in records.items() if not n.startswith(spec.runs[index].prefix)]
    assert all(r["status"] != "error" for r in others)
    assert _tree_digest(root) == before


def test_missing_tr(dataset, tmp_path, capsys):
    root, spec = dataset
    for sidecar in list(root.rglob("*_bold.json")):
        data = json.loads(sidecar.read_text())
        data.pop("RepetitionTime", None)
        sidecar.write_text(json.dumps(data))
    code, err = _run(root, tmp_path / "out", capsys)
    assert code == 1
    record = next(iter(_records(tmp_path / "out").values()))
    assert "no repetition time" in record["error"]["message"]
    assert "RepetitionTime" == record["error"]["column"]
    # --t-r fixes it
    code, err = _run(root, tmp_path / "out2", capsys, "--t-r", "2.0")
    assert code == 0, err


def test_onsets_past_end_flagged(dataset, tmp_path, capsys):
    root, spec = dataset
    p = _paths(root, spec, 0)
    events = pd.read_csv(p.events, sep="\t")
    events.loc[len(events)] = {**events.iloc[0].to_dict(), "onset": 500.0}
    events.to_csv(p.events, sep="\t", index=False, na_rep="n/a")
    code, _ = _run(root, tmp_path / "out", capsys)
    assert code == 0
    record = [r for n, r in _records(tmp_path / "out").items() if n.startswith(spec.runs[0].prefix)][0]
    codes = {f["code"]: f for f in record["findings"]}
    assert "events_outside_run" in codes
    assert codes["events_outside_run"]["evidence"]["n_after_end"] == 1


def test_trial_types_not_identifiers(dataset, tmp_path, capsys):
    root, spec = dataset
    code, _ = _run(root, tmp_path / "out", capsys)  # no rename: 0BACK / 2BACK stay
    assert code == 0
    record = next(iter(_records(tmp_path / "out").values()))
    finding = [f for f in record["findings"] if f["code"] == "trial_type_not_identifier"][0]
    assert "0BACK" in finding["evidence"]["trial_types"]
    code, _ = _run(root, tmp_path / "out2", capsys, "--events-rename", "0BACK=zero_back",
                   "--events-rename", "2BACK=two_back")
    record = next(iter(_records(tmp_path / "out2").values()))
    assert not [f for f in record["findings"] if f["code"] == "trial_type_not_identifier"]


@pytest.mark.parametrize("mode", ["missing", "broken"])
def test_unreadable_image_uses_confounds_rows(dataset, tmp_path, capsys, mode):
    root, spec = dataset
    p = _paths(root, spec, 0)
    p.bold.unlink()
    if mode == "missing":  # an unfetched DataLad annex file: a dangling symlink
        p.bold.symlink_to("../../../../.git/annex/objects/XX/YY/MD5E-s1--abc.nii.gz")
    else:
        p.bold.write_bytes(b"not a nifti file")
    code, err = _run(root, tmp_path / "out", capsys)
    assert code == 0, err
    record = [r for n, r in _records(tmp_path / "out").items() if n.startswith(spec.runs[0].prefix)][0]
    assert record["settings"]["n_scans"]["value"] == spec.runs[0].n_scans
    assert "confounds row count" in record["settings"]["n_scans"]["source"]
    # without confounds either: a clear error for that run only
    p.confounds.unlink()
    code, err = _run(root, tmp_path / "out2", capsys)
    assert code == 1
    error = _error_of(_records(tmp_path / "out2"), spec.runs[0].prefix)
    assert "cannot tell the number of volumes" in error["message"]


def test_header_only_image_is_enough(tmp_path, capsys):
    spec = small_spec()
    from dataclasses import replace

    spec = replace(spec, runs=[replace(r, image="header") for r in spec.runs])
    root = write_dataset(tmp_path / "bids", spec)
    code, err = _run(root, tmp_path / "out", capsys)
    assert code == 0, err
    for name, record in _records(tmp_path / "out").items():
        assert record["settings"]["n_scans"]["source"].startswith("image header"), name


def test_empty_dataset(tmp_path, capsys):
    root = tmp_path / "empty"
    (root / "derivatives" / "fmriprep").mkdir(parents=True)
    code, err = _run(root, tmp_path / "out", capsys)
    assert code == 2  # nothing matched: nothing audited
    assert "no subject to audit" in err
    assert "Traceback" not in err


def test_unknown_participant_label(dataset, tmp_path, capsys):
    root, spec = dataset
    code, err = _run(root, tmp_path / "out", capsys, "--participant-label", "sub-02", "99")
    assert code == 1
    assert "participant label '99' not found" in err
    assert len(_records(tmp_path / "out")) == 1  # sub-02 still audited
    code, err = _run(root, tmp_path / "out2", capsys, "--participant-label", "99")
    assert code == 2
    assert "no subject to audit" in err


def test_output_inside_input_refused(dataset, capsys):
    root, spec = dataset
    before = _tree_digest(root)
    code, err = _run(root, root / "nbdiag_out", capsys)
    assert code == 2
    assert "inside BIDS_DIR" in err
    code, err = _run(root, root / "derivatives" / "fmriprep" / "nbdiag", capsys)
    assert code == 2
    assert "derivatives" in err
    assert _tree_digest(root) == before


def test_bad_settings_exit_2(dataset, tmp_path, capsys):
    root, _ = dataset
    code = main([str(root), str(tmp_path / "o"), "participant", "--task", "nback", "--hrf-model", "gloverr"])
    err = capsys.readouterr().err
    assert code == 2
    assert "hrf_model" in err and "'gloverr'" in err and "glover" in err
    code = main([str(root), str(tmp_path / "o"), "participant"])
    assert code == 2
    assert "task_label" in capsys.readouterr().err
    code = main([str(root), str(tmp_path / "o"), "nonsense"])
    assert code == 2


def test_tr_mismatch_flagged_like_nilearn_uses_first_sidecar(dataset, tmp_path, capsys):
    root, spec = dataset
    p = _paths(root, spec, 4)  # sub-02: nilearn takes t_r from sub-01's sidecar (sorted first)
    data = json.loads(p.bold_sidecar.read_text())
    data["RepetitionTime"] = 1.5
    p.bold_sidecar.write_text(json.dumps(data))
    code, _ = _run(root, tmp_path / "out", capsys)
    assert code == 0
    record = [r for n, r in _records(tmp_path / "out").items() if n.startswith(spec.runs[4].prefix)][0]
    assert record["settings"]["t_r"]["value"] == 2.0  # what nilearn would use
    finding = [f for f in record["findings"] if f["code"] == "tr_mismatch" and f["contrast"] is None][0]
    assert finding["evidence"]["sidecar_t_r"] == 1.5 and finding["evidence"]["model_t_r"] == 2.0
    # issue 11: every source is named, and the cause is carried to the contrasts with its what-if bias
    by_source = {s["source"]: s["value"] for s in finding["evidence"]["sources"]}
    assert by_source["derivative sidecar"] == 1.5 and "derivative sidecar" in finding["message"]
    copies = [f for f in record["findings"] if f["code"] == "tr_mismatch" and f["contrast"] is not None]
    assert copies and all(f["evidence"]["source"] == "tr:1.5" for f in copies)
