"""Real fMRIPrep confounds files (shipped with nilearn) load as nilearn loads them and get the right roles."""

from __future__ import annotations

import shutil
from pathlib import Path

import nilearn.interfaces.fmriprep as fmriprep_pkg
import numpy as np
import pandas as pd
import pytest
from nilearn.interfaces.fmriprep import load_confounds

from nbdiag.config import ModelSettings, update_model
from nbdiag.design.matrix import build_design
from nbdiag.inputs.fmriprep import load_run_confounds

DATA = Path(fmriprep_pkg.__file__).parent / "data"
FILES = {"v1": "test_desc-confounds_regressors", "v21": "test-v21_desc-confounds_timeseries"}


def _stage(tmp_path: Path, which: str) -> tuple[Path, Path, int]:
    src = DATA / FILES[which]
    suffix = "regressors" if which == "v1" else "timeseries"
    conf = tmp_path / f"sub-01_task-nback_desc-confounds_{suffix}.tsv"
    shutil.copy(src.with_suffix(".tsv"), conf)
    shutil.copy(src.with_suffix(".json"), conf.with_suffix(".json"))
    bold = tmp_path / "sub-01_task-nback_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz"  # never read
    return bold, conf, len(pd.read_csv(conf, sep="\t"))


STRATEGIES = {
    "motion_basic": {"confounds_strategy": ["motion"], "confounds_motion": "basic"},
    "motion_full_wm_csf": {"confounds_strategy": ["motion", "wm_csf"], "confounds_motion": "full"},
    "compcor": {"confounds_strategy": ["high_pass", "motion", "compcor"], "confounds_n_compcor": 3},
    "scrub": {"confounds_strategy": ["motion", "scrub"], "confounds_scrub": 0, "confounds_fd_threshold": 3.5},
    "forum": {"confounds_strategy": ["motion", "non_steady_state"], "confounds_motion": "basic"},
}


@pytest.mark.parametrize("which", sorted(FILES))
@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_confounds_equal_nilearn_and_roles(tmp_path, which, name):
    bold, conf, n = _stage(tmp_path, which)
    model = update_model(ModelSettings(task_label="nback"), STRATEGIES[name])
    ours = load_run_confounds(bold, conf, model, n)
    kwargs = model.load_confounds_kwargs()
    expected, mask = load_confounds(str(bold), **kwargs)
    assert list(ours.confounds.columns) == list(expected.columns)
    np.testing.assert_allclose(ours.confounds.to_numpy(), expected.to_numpy(), atol=1e-12)
    if mask is None:
        assert ours.sample_mask is None
    else:
        np.testing.assert_array_equal(ours.sample_mask, mask)
    raw = pd.read_csv(conf, sep="\t")
    nss_cols = [c for c in raw if c.startswith("non_steady_state_outlier")]
    flagged = sorted(int(i) for i in np.flatnonzero(raw[nss_cols].to_numpy().any(axis=1))) if nss_cols else []
    assert list(ours.nonsteady_volumes) == flagged
    # roles in a design built with them
    events = pd.DataFrame({"onset": [10.0], "duration": [20.0], "trial_type": ["task"]})
    built = build_design(events, ours.confounds, n, 2.0, 0.0, model)
    for col, role in built.roles.items():
        if col == "task":
            assert role == "task"
        elif col.startswith("cosine"):
            assert role == "drift" and built.sources[col] == "confounds"
        elif col.startswith(("trans_", "rot_", "a_comp_cor", "t_comp_cor", "csf", "white_matter")):
            assert role == "confound", col
        elif col.startswith(("motion_outlier", "non_steady_state_outlier")):
            assert role == "spike", col


def test_whole_file_when_no_strategy_given(tmp_path):
    """first_level_from_bids without confounds_strategy uses every column, first-row NaNs set to 0."""
    bold, conf, n = _stage(tmp_path, "v21")
    ours = load_run_confounds(bold, conf, ModelSettings(task_label="nback"), n)
    raw = pd.read_csv(conf, sep="\t")
    assert list(ours.confounds.columns) == list(raw.columns)
    assert not ours.confounds.iloc[0].isna().any()
    np.testing.assert_allclose(ours.confounds.iloc[1:].to_numpy(dtype=float), raw.iloc[1:].to_numpy(dtype=float))


def test_everything_scrubbed_is_a_clear_error(tmp_path):
    from nbdiag.core.errors import InputError

    bold, conf, n = _stage(tmp_path, "v21")
    model = update_model(ModelSettings(task_label="nback"), {
        "confounds_strategy": ["motion", "scrub"], "confounds_scrub": 0, "confounds_fd_threshold": 0.2})
    with pytest.raises(InputError) as info:
        load_run_confounds(bold, conf, model, n)
    assert "censors every volume" in str(info.value) and "0 of 30 volumes kept" in str(info.value)
