"""The nilearn-object adapter's error branches and fallbacks (nbdiag.inputs.nilearn_objects).

Expectations are written by hand from what ``FirstLevelModel.fit`` accepts.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn.glm.first_level import FirstLevelModel

from nbdiag.core.errors import InputError, SettingsError
from nbdiag.inputs import nilearn_objects as no

EVENTS = pd.DataFrame({"onset": [0.0, 10.0], "duration": [1.0, 1.0], "trial_type": ["a", "b"]})


def test_model_settings_reads_attributes_and_refuses_bad_models():
    s = no.model_settings(FirstLevelModel(t_r=2.0, hrf_model="glover", drift_model="polynomial",
                                          drift_order=2, fir_delays=np.array([0, 1])))
    assert (s.t_r, s.hrf_model, s.drift_model, s.drift_order, s.confounds_strategy) == \
        (2.0, "glover", "polynomial", 2, None)
    with pytest.raises(SettingsError, match=r"expected a nilearn FirstLevelModel; got SimpleNamespace without "
                                            r"attribute\(s\) t_r, slice_time_ref"):
        no.model_settings(SimpleNamespace(hrf_model="spm", drift_model=None, high_pass=None, drift_order=1,
                                          fir_delays=[0], min_onset=-24))
    with pytest.raises(SettingsError, match=r"model\.t_r: expected the repetition time in seconds.*got None"):
        no.model_settings(FirstLevelModel())
    with pytest.raises(SettingsError, match=r"model\.hrf_model: nbdiag audits nilearn's named HRF models"):
        no.model_settings(FirstLevelModel(t_r=2.0, hrf_model=lambda tr, ov: np.ones(3)))
    with pytest.raises(SettingsError, match=r"\(read from the FirstLevelModel object\)$"):
        no.model_settings(FirstLevelModel(t_r=2.0, drift_model="wiggly"))


def test_model_info_plain_values():
    info = no.model_info(FirstLevelModel(t_r=np.float64(2.0), fir_delays=np.array([0, 2]), subject_label="01"))
    assert info["t_r"] == 2.0 and type(info["t_r"]) is float
    assert info["fir_delays"] == [0, 2] and info["subject_label"] == "01"
    assert no._plain(object) == repr(object)


def test_as_table_variants(tmp_path):
    assert no._as_table(None, "events", 0) is None
    arr = no._as_table(np.arange(3.0), "confounds", 0)
    assert list(arr.columns) == ["confound_0"] and arr["confound_0"].tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(InputError, match="events for run 2 is an array"):
        no._as_table(np.zeros((2, 2)), "events", 2)
    csv = tmp_path / "ev.csv"
    EVENTS.to_csv(csv, index=False)
    pd.testing.assert_frame_equal(no._as_table(str(csv), "events", 0), EVENTS)
    with pytest.raises(InputError) as exc:
        no._as_table(tmp_path / "missing.tsv", "confounds", 0)
    assert exc.value.file == str(tmp_path / "missing.tsv") and "cannot read confounds file" in str(exc.value)
    with pytest.raises(InputError) as exc:
        no._as_table({"onset": [1]}, "events", 1)
    assert exc.value.found == "dict" and "events for run 1 has an unsupported type" in str(exc.value)


@pytest.mark.parametrize("events, column, row, found", [
    (pd.DataFrame({"onset": [1.0]}), "duration", None, "onset"),
    (pd.DataFrame({"onset": [1.0, "x"], "duration": [1, 1]}), "onset", 1, "'x'"),
    (pd.DataFrame({"onset": [1.0], "duration": [np.nan]}), "duration", 0, "nan"),
])
def test_check_events_frame_names_column_row_found(events, column, row, found):
    with pytest.raises(InputError) as exc:
        no.check_events_frame(events, "events of run 0")
    assert (exc.value.file, exc.value.column, exc.value.row, exc.value.found) == \
        ("events of run 0", column, row, found)


def test_check_events_frame_empty():
    with pytest.raises(InputError, match="events have no rows"):
        no.check_events_frame(pd.DataFrame({"onset": [], "duration": []}), "run 0")


def test_detect_rtdur():
    base = pd.DataFrame({"onset": [0.0, 10.0], "duration": [2.0, 2.0], "trial_type": ["go", "go"],
                         "response_time": [0.5, 0.7]})
    rt = base.assign(trial_type="rt", duration=base["response_time"])
    assert no.detect_rtdur(pd.concat([base, rt], ignore_index=True)) == "rt"
    assert no.detect_rtdur(base) is None                     # one trial type only
    assert no.detect_rtdur(base.drop(columns="response_time")) is None
    shifted = rt.assign(onset=[1.0, 11.0])
    assert no.detect_rtdur(pd.concat([base, shifted], ignore_index=True)) is None


def test_dataset_root_and_entities(tmp_path):
    assert no.dataset_root(tmp_path / "ds" / "derivatives" / "fmriprep" / "sub-01" / "func" / "x.nii.gz") == \
        tmp_path / "ds"
    assert no.dataset_root(tmp_path / "ds" / "sub-01" / "func" / "x.nii.gz") == tmp_path / "ds"
    assert no.dataset_root(Path("x.nii.gz").absolute()) is None or "sub-" not in str(Path.cwd())
    model = FirstLevelModel(t_r=2.0, subject_label="p-1")
    assert no._run_entities("plain.nii.gz", model, None, 0) == ("p1", {"sub": "p1", "run": "01"},
                                                               Path("plain.nii.gz"))
    subj, ents, _ = no._run_entities(np.zeros(1), FirstLevelModel(t_r=2.0), 1, 2)
    assert (subj, ents) == ("02", {"sub": "02", "run": "03"})
    subj, ents, _ = no._run_entities("sub-07_task-x_bold.nii.gz", model, None, 4)
    assert subj == "07" and ents["run"] == "05" and ents["task"] == "x"


def test_n_scans_sources(tmp_path):
    assert no._n_scans(SimpleNamespace(shape=(2, 2, 2, 7)), Path("x"), None, "run 0").value == 7
    surf = no._n_scans(SimpleNamespace(shape=(100, 9)), Path("x"), None, "run 0")
    assert (surf.value, surf.source) == (9, "surface image shape")
    with pytest.raises(InputError, match=r"run 0: the image is 3D") as exc:
        no._n_scans(SimpleNamespace(shape=(2, 2, 2)), Path("x"), None, "run 0")
    assert exc.value.found == "(2, 2, 2)"
    missing = tmp_path / "sub-01_bold.nii.gz"
    got = no._n_scans(str(missing), missing, pd.DataFrame({"a": range(12)}), "run 0")
    assert got.value == 12 and got.source.startswith("confounds row count (the confounds given for this run); ")
    with pytest.raises(InputError, match="cannot tell the number of volumes") as exc:
        no._n_scans(str(missing), missing, None, "run 0")
    assert exc.value.file == str(missing)


def test_given_runs_length_mismatch_and_missing_events():
    model = FirstLevelModel(t_r=2.0)
    imgs = [SimpleNamespace(shape=(2, 2, 2, 10))] * 2
    with pytest.raises(SettingsError, match=r"events: expected one events table per run image"):
        no.given_runs(model, imgs, None)
    with pytest.raises(SettingsError, match=r"events for model 3: expected one entry per run image \(2\); got 1"):
        no.given_runs(model, imgs, EVENTS, model_index=3)
    with pytest.raises(SettingsError, match=r"confounds for model: expected one entry per run image \(2\); got 3"):
        no.given_runs(model, imgs, [EVENTS, EVENTS], confounds=[None] * 3)
    with pytest.raises(SettingsError, match=r"models: expected one entry per model \(2\); got 1"):
        no.as_list([1], 2, "models")
    assert list(no.as_list(None, 2, "models")) == [None, None]


def test_given_runs_errors_are_per_run_and_masks(tmp_path):
    model = FirstLevelModel(t_r=2.0)
    img = SimpleNamespace(shape=(2, 2, 2, 10))
    runs = no.given_runs(model, [img, img], [EVENTS, EVENTS.drop(columns="duration")],
                         sample_masks=[np.array([True] * 8 + [False] * 2), np.arange(10)])
    assert runs[0].run.error is None and runs[0].sample_mask.tolist() == list(range(8))
    assert runs[0].run.n_scans.value == 10
    assert isinstance(runs[1].run.error, InputError) and runs[1].run.error.column == "duration"
    assert no.event_settings(runs[0]).transforms == ()


def test_given_runs_reads_fmriprep_confounds_next_to_image(tmp_path):
    func = tmp_path / "derivatives" / "fmriprep" / "sub-01" / "func"
    func.mkdir(parents=True)
    img_path = func / "sub-01_task-nback_space-MNI_desc-preproc_bold.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2, 6), dtype=np.float32), np.eye(4)), img_path)
    conf = pd.DataFrame({"non_steady_state_outlier00": [1, 0, 0, 0, 0, 0], "global_signal": np.arange(6.0),
                         "trans_x": np.zeros(6)})
    conf.to_csv(func / "sub-01_task-nback_desc-confounds_timeseries.tsv", sep="\t", index=False)
    base = pd.DataFrame({"onset": [0.0, 6.0], "duration": [2.0, 2.0], "trial_type": ["go", "go"],
                         "response_time": [0.5, 0.7]})
    events = pd.concat([base, base.assign(trial_type="rt", duration=base["response_time"])], ignore_index=True)
    (run,) = no.given_runs(FirstLevelModel(t_r=2.0), str(img_path), events)
    assert run.run.error is None
    assert run.nonsteady_volumes == (0,)
    assert run.raw_confound_columns == ("non_steady_state_outlier00", "global_signal", "trans_x")
    assert run.run.root == tmp_path and run.run.n_scans.value == 6
    assert run.rt_regressor == "rt"
    assert any("flags volumes [0] as non-steady-state" in n for n in run.notes)
    assert no.event_settings(run).transforms == ("rtdur",) and no.event_settings(run).rtdur_name == "rt"
    np.testing.assert_array_equal(run.raw_signals["global_signal"], np.arange(6.0))
