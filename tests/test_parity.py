"""Parity: nbdiag's rebuilt designs equal nilearn's fitted ``design_matrices_``.

The reference is nilearn itself: ``first_level_from_bids`` + the forum post's
event handling + ``FirstLevelModel.fit`` on a dataset from nilearn's own
test-data generator (sessions, several runs, ``acq-`` entities, 4D images of a
few voxels). Every variant must match column names, order and values to 1e-8.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn._utils.data_gen import create_fake_bids_dataset
from nilearn.glm.first_level import first_level_from_bids

from nbdiag.core import compat
from nbdiag.record.build import prepare_run
from nbdiag.inputs.bids import discover_runs
from nbdiag.config import Settings, apply_overrides


@pytest.fixture(scope="module")
def fake_bids(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("nilearn_fake")
    root = create_fake_bids_dataset(base_dir=base, n_sub=2, n_ses=2, tasks=["main"], n_runs=[2],
                                     entities={"acq": ["A", "B"]}, n_voxels=2)
    # add a response_time column (for rtdur) to every events file, deterministically
    for i, events_file in enumerate(sorted(root.rglob("*_events.tsv"))):
        table = pd.read_csv(events_file, sep="\t")
        rt = 0.4 + 0.05 * ((np.arange(len(table)) + i) % 7)
        rt[::5] = np.nan
        table["response_time"] = rt
        table.to_csv(events_file, sep="\t", index=False)
    return root


def _nilearn_designs(root: Path, model_kwargs: dict, rename: dict | None = None, rtdur: bool = False) -> dict:
    """Designs from nilearn's own pipeline, keyed by image file name."""
    first = nib.load(sorted(root.rglob("*_space-MNI_desc-preproc_bold.nii.gz"))[0])
    mask = nib.Nifti1Image(np.ones(first.shape[:3], dtype="uint8"), first.affine)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models, imgs, events, confounds = first_level_from_bids(
            root, "main", space_label="MNI", img_filters=[("desc", "preproc"), ("acq", "A")],
            derivatives_folder="derivatives", mask_img=mask, **model_kwargs)
        out = {}
        for model, run_imgs, run_events, run_confounds in zip(models, imgs, events, confounds):
            updated = []
            for ev in run_events:
                ev = ev.copy()
                if rename:
                    ev["trial_type"] = ev["trial_type"].replace(rename)
                if rtdur:  # the forum post's ConsDurRTDur code, verbatim
                    response_events = ev.loc[~np.isnan(ev["response_time"])].copy()
                    response_events.loc[:, "duration"] = response_events.loc[:, "response_time"]
                    response_events.loc[:, "trial_type"] = "RTDur"
                    ev = pd.concat((ev, response_events))
                    ev = ev.sort_values(by="onset")
                updated.append(ev)
            model.fit(run_imgs, events=updated, confounds=run_confounds)
            for img, design in zip(run_imgs, model.design_matrices_):
                out[Path(img).name] = design
    return out


def _nbdiag_designs(root: Path, table: dict) -> dict:
    settings = apply_overrides(Settings(), table, "test")
    runs, _ = discover_runs(root, settings.model)
    out = {}
    for run in runs:
        assert run.error is None, run.error
        out[run.bold.name] = prepare_run(run, settings).built.design
    return out


BASE = {"task_label": "main", "space_label": "MNI", "derivatives_folder": "derivatives",
        "img_filters": [["desc", "preproc"], ["acq", "A"]]}

CASES = {
    "cosine_default": ({}, {}),
    "cosine_hp005_motion_basic_nss": (
        {"high_pass": 0.005, "confounds_strategy": ["motion", "non_steady_state"], "confounds_motion": "basic"},
        {"high_pass": 0.005, "confounds_strategy": ("motion", "non_steady_state"), "confounds_motion": "basic"}),
    "cosine_hp02_motion_full": (
        {"high_pass": 0.02, "confounds_strategy": ["motion"], "confounds_motion": "full"},
        {"high_pass": 0.02, "confounds_strategy": ("motion",), "confounds_motion": "full"}),
    "polynomial_wm_csf": (
        {"drift_model": "polynomial", "drift_order": 3, "confounds_strategy": ["wm_csf"]},
        {"drift_model": "polynomial", "drift_order": 3, "confounds_strategy": ("wm_csf",)}),
    "no_drift_no_confounds": (
        {"drift_model": "none", "confounds_strategy": "none"},
        {"drift_model": None, "confounds_strategy": None}),
    "spm_derivative_scrub": (
        {"hrf_model": "spm + derivative", "confounds_strategy": ["motion", "scrub"], "confounds_scrub": 0,
         "confounds_fd_threshold": 0.3},
        {"hrf_model": "spm + derivative", "confounds_strategy": ("motion", "scrub"), "confounds_scrub": 0,
         "confounds_fd_threshold": 0.3}),
    "spm_compcor": (
        {"hrf_model": "spm", "confounds_strategy": ["high_pass", "compcor"], "confounds_compcor": "anat_combined",
         "confounds_n_compcor": 2},
        {"hrf_model": "spm", "confounds_strategy": ("high_pass", "compcor"), "confounds_compcor": "anat_combined",
         "confounds_n_compcor": 2}),
    "fir": (
        {"hrf_model": "fir", "fir_delays": [0, 1, 2], "confounds_strategy": ["motion"], "confounds_motion": "basic"},
        {"hrf_model": "fir", "fir_delays": [0, 1, 2], "confounds_strategy": ("motion",), "confounds_motion": "basic"}),
    "whole_confounds_file": ({"high_pass": 0.008}, {"high_pass": 0.008}),
}


#: Cases nilearn 0.12 itself cannot fit (README "nilearn versions"); CI runs this file on 0.12.1 too.
NILEARN_012_CANNOT = {
    "cosine_default": "nilearn 0.12 passes the confounds file's first-row NaNs to the fit, which fails",
    "whole_confounds_file": "nilearn 0.12 passes the confounds file's first-row NaNs to the fit, which fails",
    "no_drift_no_confounds": "nilearn 0.12's first_level_from_bids refuses confounds_strategy=None",
}
OLD_NILEARN = compat.nilearn_version() < (0, 13)


@pytest.mark.parametrize("case", sorted(CASES))
def test_design_equals_nilearn_fit(fake_bids, case):
    if OLD_NILEARN and case in NILEARN_012_CANNOT:
        pytest.skip(NILEARN_012_CANNOT[case])
    ours_table, nilearn_kwargs = CASES[case]
    expected = _nilearn_designs(fake_bids, nilearn_kwargs)
    ours = _nbdiag_designs(fake_bids, {"model": {**BASE, **ours_table}})
    assert sorted(ours) == sorted(expected)
    assert len(ours) == 8  # 2 subjects x 2 sessions x 2 runs of acq-A
    for name, design in expected.items():
        mine = ours[name]
        assert list(mine.columns) == list(design.columns), name
        np.testing.assert_allclose(mine.index.to_numpy(), design.index.to_numpy(), atol=1e-8, rtol=0)
        np.testing.assert_allclose(mine.to_numpy(), design.to_numpy(), atol=1e-8, rtol=0, err_msg=name)


def test_rename_and_rtdur_equal_forum_code(fake_bids):
    rename = {"c0": "zero_back", "c1": "two_back"}
    kwargs = {"high_pass": 0.005, "confounds_strategy": ("motion", "non_steady_state"), "confounds_motion": "basic"}
    expected = _nilearn_designs(fake_bids, kwargs, rename=rename, rtdur=True)
    ours = _nbdiag_designs(fake_bids, {
        "model": {**BASE, "high_pass": 0.005, "confounds_strategy": ["motion", "non_steady_state"],
                  "confounds_motion": "basic"},
        "events": {"rename": rename, "transform": ["rtdur"]},
    })
    assert sorted(ours) == sorted(expected)
    for name, design in expected.items():
        assert "RTDur" in design.columns
        assert list(ours[name].columns) == list(design.columns)
        np.testing.assert_allclose(ours[name].to_numpy(), design.to_numpy(), atol=1e-8, rtol=0)


def test_events_in_fake_dataset_use_renamed_conditions(fake_bids):
    events = sorted(fake_bids.rglob("*_events.tsv"))[0]
    assert {"c0", "c1"} <= set(pd.read_csv(events, sep="\t")["trial_type"])


# --------------------------------------------------------------------------- #
# Parity on nbdiag's own synthetic fMRIPrep dataset: real fMRIPrep column names,
# flagged non-steady-state volumes, motion outliers (scrub), an acq- run, a
# subject without sessions and slice-timing metadata.
# --------------------------------------------------------------------------- #
SMALL_BASE = {"task_label": "nback", "space_label": "MNI152NLin6Asym", "derivatives_folder": "derivatives/fmriprep",
              "img_filters": [["desc", "preproc"]]}
SMALL_CASES = {
    "forum_settings": ({"high_pass": 0.005, "confounds_strategy": ["motion", "non_steady_state"],
                        "confounds_motion": "basic"}, False),
    "forum_settings_rtdur": ({"high_pass": 0.005, "confounds_strategy": ["motion", "non_steady_state"],
                              "confounds_motion": "basic"}, True),
    "scrub_full": ({"confounds_strategy": ["motion", "wm_csf", "scrub"], "confounds_motion": "full",
                    "confounds_scrub": 0, "confounds_fd_threshold": 0.5}, False),
    "compcor_highpass": ({"high_pass": 0.008, "confounds_strategy": ["high_pass", "motion", "compcor"],
                          "confounds_n_compcor": 5, "hrf_model": "spm + derivative"}, False),
}


def _nilearn_small(root: Path, kwargs: dict, rtdur: bool) -> dict:
    nilearn_kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    first = nib.load(sorted(root.rglob("*_desc-preproc_bold.nii.gz"))[0])
    mask = nib.Nifti1Image(np.ones(first.shape[:3], dtype="uint8"), first.affine)
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models, imgs, events, confounds = first_level_from_bids(
            root, "nback", space_label="MNI152NLin6Asym", img_filters=[("desc", "preproc")],
            derivatives_folder="derivatives/fmriprep", mask_img=mask, **nilearn_kwargs)
        for model, run_imgs, run_events, run_confounds in zip(models, imgs, events, confounds):
            if isinstance(run_confounds, pd.DataFrame):  # nilearn returns a frame, not a list, for one run
                run_confounds = [run_confounds]
            updated = []
            for ev in run_events:
                ev = ev.copy()
                ev["trial_type"] = ev["trial_type"].replace({"0BACK": "zero_back", "2BACK": "two_back"})
                if rtdur:
                    response_events = ev.loc[~np.isnan(ev["response_time"])].copy()
                    response_events.loc[:, "duration"] = response_events.loc[:, "response_time"]
                    response_events.loc[:, "trial_type"] = "RTDur"
                    ev = pd.concat((ev, response_events)).sort_values(by="onset")
                updated.append(ev)
            model.fit(run_imgs, events=updated, confounds=run_confounds)
            for img, design in zip(run_imgs, model.design_matrices_):
                out[Path(img).name] = design
    return out


@pytest.mark.parametrize("case", sorted(SMALL_CASES))
def test_parity_on_fmriprep_like_dataset(small_bids, case):
    if OLD_NILEARN:
        pytest.skip("mixed sessions (sub-02 has no ses- folder, sub-01 has): nilearn 0.12's get_bids_files "
                    "does not see sub-02, so first_level_from_bids itself fails (README 'nilearn versions')")
    model, rtdur = SMALL_CASES[case]
    expected = _nilearn_small(small_bids, model, rtdur)
    table = {"model": {**SMALL_BASE, **model},
             "events": {"rename": {"0BACK": "zero_back", "2BACK": "two_back"},
                        **({"transform": ["rtdur"]} if rtdur else {})}}
    ours = _nbdiag_designs(small_bids, table)
    assert sorted(ours) == sorted(expected) and len(ours) == 5
    for name, design in expected.items():
        assert list(ours[name].columns) == list(design.columns), name
        np.testing.assert_allclose(ours[name].index.to_numpy(), design.index.to_numpy(), atol=1e-8, rtol=0)
        np.testing.assert_allclose(ours[name].to_numpy(), design.to_numpy(), atol=1e-8, rtol=0, err_msg=name)
