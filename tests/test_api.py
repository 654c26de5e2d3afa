"""Python API: ``nbdiag.audit_models`` / ``nbdiag.audit_model`` on nilearn objects.

References: the command line's records for the same settings (the forum post's script
on the demo dataset, header-only images, no fit), and nilearn's own
``FirstLevelModel.fit(...).design_matrices_`` (tiny real images).
"""

from __future__ import annotations

import dataclasses

import json
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn.glm.first_level import FirstLevelModel, first_level_from_bids

import nbdiag
from nbdiag.cli import main
from record_schema import validate_record



def forum_script_with_one_line(bids_root: Path, derivatives_folder: str, sub_id: str) -> dict:
    """The forum post's first-level script up to the fit, its ``first_level_from_bids``
    call unchanged, plus one ``nbdiag.audit_models`` line (and no fit: header-only images)."""
    sub_labels = [sub_id]
    task_label = "nback"
    space_label = "MNI152NLin6Asym"
    deriv_root = Path(derivatives_folder)
    mask_pattern = (
        f"sub-{sub_id}/ses-*/func/"
        f"sub-{sub_id}_ses-*_task-{task_label}*"
        f"_space-{space_label}_res-2_desc-brain_mask.nii.gz"
    )
    mask_candidates = sorted(deriv_root.glob(mask_pattern))
    mask_img = None if len(mask_candidates) == 0 else str(mask_candidates[0])
    audits = {}
    MODEL_TYPES = ["rtdur", "nortdur"]
    for model_type in MODEL_TYPES:
        (
            models,
            models_run_imgs,
            models_events,
            models_confounds,
        ) = first_level_from_bids(
            dataset_path=bids_root,
            task_label=task_label,
            space_label=space_label,
            sub_labels=sub_labels,
            derivatives_folder=derivatives_folder,
            img_filters=[("desc", "preproc")],
            smoothing_fwhm=5.0,
            n_jobs=4,
            verbose=0,
            drift_model="cosine",
            high_pass=0.005,
            confounds_strategy=("motion", "non_steady_state"),
            confounds_motion="basic",
            mask_img=mask_img,
        )
        model = models[0]
        run_imgs = models_run_imgs[0]
        events_list = models_events[0]
        confounds_list = models_confounds[0]

        updated_events_list = []
        for events in events_list:
            events = events.copy()
            if "trial_type" in events.columns:
                events["trial_type"] = events["trial_type"].replace(
                    {"0BACK": "zero_back", "2BACK": "two_back"}
                )
            if model_type == "rtdur":
                response_events = events.loc[~np.isnan(events["response_time"])].copy()
                response_events.loc[:, "duration"] = response_events.loc[:, "response_time"]
                response_events.loc[:, "trial_type"] = "RTDur"
                events = pd.concat((events, response_events))
                events = events.sort_values(by="onset")
            updated_events_list.append(events)

        # the one added line
        audits[model_type] = nbdiag.audit_models(
            [model], [run_imgs], [updated_events_list], [confounds_list],
            contrasts=["two_back - zero_back", "two_back", "zero_back"], variant=model_type)
    return audits


@pytest.fixture(scope="module")
def cli_demo(demo_bids, tmp_path_factory, forum_toml) -> Path:
    base = tmp_path_factory.mktemp("api_cli")
    toml = base / "forum.toml"
    toml.write_text(forum_toml())
    out = base / "out"
    code = main([str(demo_bids), str(out), "participant", "--config", str(toml), "--no-reports",
                 "--participant-label", "01", "02"])
    assert code == 0
    return out


def _cli_files(out: Path, record: dict, variant: str) -> tuple[dict, pd.DataFrame]:
    run = record["run"]
    folder = out / f"sub-{run['subject']}" / (f"ses-{run['session']}" if run["session"] else "") / "func"
    stem = f"{run['prefix']}_desc-{variant}"
    return (json.loads((folder / f"{stem}_nbdiag.json").read_text()),
            pd.read_csv(folder / f"{stem}_design.tsv", sep="\t"))


@pytest.mark.parametrize("sub_id", ["01", "02"])
def test_forum_script_plus_audit_models_equals_cli(demo_bids, cli_demo, sub_id):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        audits = forum_script_with_one_line(demo_bids, str((demo_bids / "derivatives" / "fmriprep").absolute()),
                                            sub_id)
    n_runs = {"01": 1, "02": 2}[sub_id]
    for variant, audit in audits.items():
        assert len(audit.records) == n_runs
        for record, design in zip(audit.records, audit.designs):
            cli, cli_design = _cli_files(cli_demo, record, variant)
            assert list(design.columns) == list(cli_design.columns)
            np.testing.assert_allclose(design.to_numpy(), cli_design.to_numpy(), atol=1e-8, rtol=0)
            assert record["design"]["frame_times"] == cli["design"]["frame_times"]
            assert record["contrasts"] == cli["contrasts"]
            assert record["diagnostics"] == cli["diagnostics"]
            assert record["whatif"] == cli["whatif"]
            ours = [(f["code"], f["severity"], f["contrast"]) for f in record["findings"]]
            theirs = [(f["code"], f["severity"], f["contrast"]) for f in cli["findings"]]
            assert ours == theirs
            assert record["status"] == cli["status"]
            validate_record(json.loads(json.dumps(record)), record["run"]["prefix"])
            assert record["settings"]["t_r"]["value"] == cli["settings"]["t_r"]["value"]
            assert record["settings"]["n_scans"]["value"] == cli["settings"]["n_scans"]["value"]
            assert record["run"]["files"]["bold"] == cli["run"]["files"]["bold"]  # bids::derivatives/...
            assert record["run"]["prefix"] == cli["run"]["prefix"]
    if sub_id == "01":  # the dropped sample mask is found from the fMRIPrep file next to the image
        codes = {f["code"] for f in audits["nortdur"].records[0]["findings"]}
        assert "nonsteady_unhandled" in codes
        assert any("RTDur" in n for n in audits["rtdur"].records[0]["notes"])


def _forum_events(events: pd.DataFrame, rtdur: bool) -> pd.DataFrame:
    events = events.copy()
    events["trial_type"] = events["trial_type"].replace({"0BACK": "zero_back", "2BACK": "two_back"})
    if rtdur:
        response_events = events.loc[~np.isnan(events["response_time"])].copy()
        response_events.loc[:, "duration"] = response_events.loc[:, "response_time"]
        response_events.loc[:, "trial_type"] = "RTDur"
        events = pd.concat((events, response_events)).sort_values(by="onset")
    return events


@pytest.mark.parametrize("rtdur", [False, True])
def test_audit_models_designs_equal_nilearn_fit(small_bids, rtdur):
    """Tiny real images: the audit's designs equal ``fit(...).design_matrices_``, before the fit
    (nothing read from voxel data) and with the sample masks of ``load_confounds``."""
    from nilearn.interfaces.fmriprep import load_confounds

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models, imgs, events, confounds = first_level_from_bids(
            small_bids, "nback", space_label="MNI152NLin6Asym", img_filters=[("desc", "preproc")],
            derivatives_folder="derivatives/fmriprep", high_pass=0.005, hrf_model="spm + derivative",
            confounds_strategy=("motion", "non_steady_state"), confounds_motion="basic")
        events = [[_forum_events(e, rtdur) for e in evs] for evs in events]
        confounds = [c if isinstance(c, list) else [c] for c in confounds]
        audit = nbdiag.audit_models(models, imgs, events, confounds)
        masks = [[load_confounds(img, strategy=("motion", "non_steady_state"), motion="basic")[1] for img in run_imgs]
                 for run_imgs in imgs]
        # nilearn's fit takes no None inside the list: keep every scan of runs without flagged volumes
        masks = [[np.arange(nib.load(img).shape[3]) if m is None else m for img, m in zip(run_imgs, mks)]
                 for run_imgs, mks in zip(imgs, masks)]
        masked = nbdiag.audit_models(models, imgs, events, confounds, sample_masks=masks)
        expected, expected_masked = [], []
        for model, run_imgs, evs, confs, mks in zip(models, imgs, events, confounds, masks):
            mask_img = nib.Nifti1Image(np.ones(nib.load(run_imgs[0]).shape[:3], dtype="uint8"),
                                       nib.load(run_imgs[0]).affine)
            model.set_params(mask_img=mask_img, smoothing_fwhm=None)
            expected += list(model.fit(run_imgs, events=evs, confounds=confs).design_matrices_)
            expected_masked += list(model.fit(run_imgs, events=evs, confounds=confs,
                                              sample_masks=mks).design_matrices_)
    assert len(audit.designs) == len(expected) == 5
    for ours, theirs in zip(audit.designs + masked.designs, expected + expected_masked):
        assert list(ours.columns) == list(theirs.columns)
        np.testing.assert_allclose(ours.index.to_numpy(), theirs.index.to_numpy(), atol=1e-8, rtol=0)
        np.testing.assert_allclose(ours.to_numpy(), theirs.to_numpy(), atol=1e-8, rtol=0)
    assert all(r["status"] != "error" for r in audit.records + masked.records)
    # with the masks applied, no flagged volume stays in the model
    assert not any(f["code"] == "nonsteady_unhandled" for r in masked.records for f in r["findings"])
    assert any(f["code"] == "nonsteady_unhandled" for r in audit.records for f in r["findings"])
    # a fitted model: its design_matrices_ are compared with the rebuilt designs
    again = nbdiag.audit_models(models, imgs, events, confounds, sample_masks=masks)
    assert any("equal the design rebuilt" in n for n in again.records[0]["notes"])


def _hand_built(tmp_path: Path):
    rng = np.random.default_rng(0)
    n_scans, t_r = 80, 1.5
    data = rng.normal(100, 1, (3, 3, 3, n_scans)).astype("float32")
    img = nib.Nifti1Image(data, np.eye(4))
    path = tmp_path / "my_run.nii.gz"  # not a BIDS name
    nib.save(img, path)
    onsets = np.arange(6.0, 110.0, 16.0)
    events = pd.DataFrame({"onset": onsets, "duration": 6.0,
                           "trial_type": ["faces", "houses"] * (len(onsets) // 2) + ["faces"] * (len(onsets) % 2),
                           "response_time": np.linspace(0.5, 0.9, len(onsets))})
    confounds = pd.DataFrame(rng.normal(0, 1, (n_scans, 2)), columns=["motion_a", "motion_b"])
    model = FirstLevelModel(t_r=t_r, slice_time_ref=0.5, hrf_model="spm + derivative", drift_model="polynomial",
                            drift_order=2, min_onset=-12, noise_model="ols", signal_scaling=False,
                            mask_img=nib.Nifti1Image(np.ones((3, 3, 3), dtype="uint8"), np.eye(4)))
    return model, img, path, events, confounds


def test_audit_model_hand_built_model_equals_fit(tmp_path):
    model, img, path, events, confounds = _hand_built(tmp_path)
    contrasts = {"faces_vs_houses": "faces - houses", "faces": "faces"}
    before = nbdiag.audit_model(model, path, events=events, confounds=confounds, contrasts=contrasts)
    in_memory = nbdiag.audit_model(model, img, events=events, confounds=confounds, contrasts=contrasts)
    expected = model.fit(path, events=events, confounds=confounds).design_matrices_[0]
    for audit in (before, in_memory):
        design = audit.designs[0]
        assert list(design.columns) == list(expected.columns)
        np.testing.assert_allclose(design.to_numpy(), expected.to_numpy(), atol=1e-8, rtol=0)
        record = audit.records[0]
        assert record["status"] in ("pass", "warn", "fail")
        assert set(record["contrasts"]) == set(contrasts)
        obj = record["settings"]["model_object"]
        assert obj["noise_model"] == "ols" and obj["drift_order"] == 2 and obj["signal_scaling"] is False
        assert record["settings"]["n_scans"]["source"].startswith("image header")
    # contrast effect = wᵀy: the record's weights reproduce nilearn's effect size on this fit
    y = model.masker_.transform(path)
    w = np.asarray(before.records[0]["contrasts"]["faces_vs_houses"]["weights"], dtype=float)
    effect = model.compute_contrast("faces - houses", output_type="effect_size")
    np.testing.assert_allclose(w @ y, model.masker_.transform(effect).ravel(), rtol=1e-6, atol=1e-8)
    # fitted model now: same audit, and the note says the fitted designs match
    after = nbdiag.audit_model(model, path, events=events, confounds=confounds, contrasts=contrasts)
    assert after.records[0]["contrasts"] == before.records[0]["contrasts"]
    assert any("equal the design rebuilt" in n for n in after.records[0]["notes"])


def test_audit_model_unreadable_image_uses_confounds_or_refuses(tmp_path):
    model, _img, _path, events, confounds = _hand_built(tmp_path)
    missing = tmp_path / "not_fetched.nii.gz"
    audit = nbdiag.audit_model(model, missing, events=events, confounds=confounds)
    record = audit.records[0]
    assert record["status"] != "error"
    assert record["settings"]["n_scans"]["value"] == len(confounds)
    assert "confounds row count" in record["settings"]["n_scans"]["source"]
    # nothing mismatches: where n_scans came from is in settings.n_scans.source, not an n_scans_mismatch (issue 13)
    assert not any(f["code"] == "n_scans_mismatch" for f in record["findings"])
    refused = nbdiag.audit_model(model, missing, events=events).records[0]
    assert refused["status"] == "error"
    assert "no confounds were given" in refused["error"]["message"]
    assert "not_fetched.nii.gz" in refused["error"]["message"]


def test_audit_object_tables_save_and_html(tmp_path):
    model, img, path, events, confounds = _hand_built(tmp_path)
    events = events.copy()
    events.loc[0, "trial_type"] = "<script>x</script>"
    audit = nbdiag.audit_model(model, [path, path], events=[events, events], confounds=[confounds, confounds],
                               contrasts=["faces - houses"], variant="mine")
    findings = audit.findings
    assert list(findings.columns) == ["run", "variant", "contrast", "code", "severity", "title", "message"]
    assert len(findings) == sum(len(r["findings"]) for r in audit.records)
    frame = audit.to_frame()
    assert len(frame) == 2 and list(frame["status"]) == [r["status"] for r in audit.records]
    html = audit._repr_html_()
    assert "<script>" not in html
    assert html.count("<tr>") == 3
    out = audit.save(tmp_path / "out")
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert "dataset_description.json" in files
    assert "sub-01/func/sub-01_run-01_desc-mine_nbdiag.json" in files
    assert "sub-01/func/sub-01_run-02_desc-mine_design.tsv" in files
    assert "sub-01.html" in files
    saved = json.loads((out / "sub-01/func/sub-01_run-01_desc-mine_nbdiag.json").read_text())
    validate_record(saved, "api record")
    assert str(tmp_path) not in (out / "sub-01/func/sub-01_run-01_desc-mine_nbdiag.json").read_text()
    assert saved["contrasts"] == json.loads(json.dumps(audit.records[0]["contrasts"]))
    # Audit.save writes the record as built, provenance included (the image is a file; the tables are not)
    assert saved["provenance"]["inputs"]["bold"]["exists"] and set(saved["provenance"]["inputs"]) == {"bold"}
    assert saved == audit.records[0] and audit.typed_records[0].provenance.settings_hash
    bold = dataclasses.replace(audit.audits[0], record=dataclasses.replace(
        audit.typed_records[0], settings=dataclasses.replace(audit.typed_records[0].settings, measure="bold")))
    with pytest.raises(ValueError, match="cannot write BOLD mode's effect maps"):
        nbdiag.Audit([bold]).save(tmp_path / "bold")
    assert not (tmp_path / "bold").exists()


def test_audit_model_bad_inputs_are_named(tmp_path):
    model, img, path, events, confounds = _hand_built(tmp_path)
    with pytest.raises(nbdiag.SettingsError, match="events"):
        nbdiag.audit_model(model, [path, path], events=[events])
    no_tr = FirstLevelModel()
    with pytest.raises(nbdiag.SettingsError, match="t_r"):
        nbdiag.audit_model(no_tr, path, events=events)
    bad = events.drop(columns="duration")
    record = nbdiag.audit_model(model, path, events=bad).records[0]
    assert record["status"] == "error" and "duration" in record["error"]["message"]
    short = confounds.iloc[:-3]
    record = nbdiag.audit_model(model, path, events=events, confounds=short).records[0]
    assert record["status"] == "error" and "77 rows" in record["error"]["message"]
