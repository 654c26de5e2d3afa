"""The column-subset confounds reader gives nilearn's ``load_confounds`` output bit for bit."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import nilearn.interfaces.fmriprep as fmriprep_pkg
import numpy as np
import pandas as pd
import pytest
from nilearn.interfaces.fmriprep import load_confounds

from nbdiag.config import ModelSettings, update_model
from nbdiag.demo.synth import DatasetSpec, RunSpec, run_paths, write_dataset
from nbdiag.inputs.fmriprep import load_run_confounds

DATA = Path(fmriprep_pkg.__file__).parent / "data"
STRATEGIES = {
    "forum": {"confounds_strategy": ["motion", "non_steady_state"], "confounds_motion": "basic"},
    "full": {"confounds_strategy": ["motion", "wm_csf", "global_signal", "high_pass"], "confounds_motion": "full",
             "confounds_wm_csf": "full", "confounds_global_signal": "derivatives"},
    "compcor": {"confounds_strategy": ["motion", "high_pass", "compcor"], "confounds_compcor": "anat_combined",
                "confounds_n_compcor": 5},
    "compcor_all": {"confounds_strategy": ["high_pass", "compcor"], "confounds_compcor": "temporal_anat_separated"},
    "scrub": {"confounds_strategy": ["motion", "scrub"], "confounds_scrub": 5, "confounds_fd_threshold": 1.5,
              "confounds_std_dvars_threshold": 2.0},
}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> list[tuple[Path, Path]]:
    tmp = tmp_path_factory.mktemp("conf")
    out = []
    src = DATA / "test-v21_desc-confounds_timeseries"
    conf = tmp / "v21" / "sub-01_task-nback_desc-confounds_timeseries.tsv"
    conf.parent.mkdir()
    shutil.copy(src.with_suffix(".tsv"), conf)
    shutil.copy(src.with_suffix(".json"), conf.with_suffix(".json"))
    out.append((conf.parent / "sub-01_task-nback_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz", conf))
    spec = DatasetSpec(runs=[RunSpec("01", run=1, n_scans=150, t_r=2.0, image="header", n_nonsteady=3,
                                     motion_outliers=(60, 61, 100), n_acompcor=40)])
    root = write_dataset(tmp / "synth", spec)
    paths = run_paths(root, spec, spec.runs[0])
    out.append((paths.bold, paths.confounds))
    return out


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_fast_confounds_bit_identical(files, name):
    model = update_model(ModelSettings(task_label="nback"), STRATEGIES[name])
    for bold, conf in files:
        n = len(pd.read_csv(conf, sep="\t"))
        fast = load_run_confounds(bold, conf, model, n)
        slow = load_run_confounds(bold, conf, model, n, fast=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected, mask = load_confounds(str(bold), **model.load_confounds_kwargs())
        pd.testing.assert_frame_equal(fast.confounds, expected, check_exact=True)
        pd.testing.assert_frame_equal(slow.confounds, expected, check_exact=True)
        if mask is None:
            assert fast.sample_mask is None
        else:
            np.testing.assert_array_equal(fast.sample_mask, mask)
        assert fast.to_dict() == slow.to_dict()
        assert fast.raw_columns == tuple(pd.read_csv(conf, sep="\t", nrows=0).columns)


def test_fast_confounds_missing_column_same_error(files, tmp_path):
    bold, conf = files[1]
    table = pd.read_csv(conf, sep="\t").drop(columns=["trans_x"])
    broken = tmp_path / conf.name
    table.to_csv(broken, sep="\t", index=False, na_rep="n/a")
    shutil.copy(conf.with_suffix(".json"), broken.with_suffix(".json"))
    model = update_model(ModelSettings(task_label="nback"), STRATEGIES["forum"])
    from nbdiag.core.errors import InputError

    messages = []
    for fast in (True, False):
        with pytest.raises(InputError) as info:
            load_run_confounds(tmp_path / bold.name, broken, model, len(table), fast=fast)
        messages.append(str(info.value))
    assert messages[0] == messages[1] and "trans_x" in messages[0]


def test_design_tsv_text_equals_pandas():
    from nbdiag.outputs.files import design_tsv_text

    rng = np.random.default_rng(3)
    design = pd.DataFrame(rng.normal(size=(50, 4)) * 10.0 ** rng.integers(-20, 20, (50, 4)),
                          columns=["a", "b_c", "drift_1", "constant"])
    design.iloc[0] = [0.0, -0.0, 1e16, 1e-5]
    assert design_tsv_text(design) == design.to_csv(sep="\t", index=False)
    odd = design.rename(columns={"a": 'we"ird'})
    assert design_tsv_text(odd) == odd.to_csv(sep="\t", index=False)


@pytest.mark.parametrize("with_nan", [False, True])
def test_masked_demean_equals_nilearn_bit_for_bit(with_nan, monkeypatch):
    """The sample-mask demeaning equals nilearn's ``_demean_confounds`` (pandas' mean), NaN included;
    with bottleneck in use (pandas then means differently) nilearn's own function runs."""
    from nilearn.interfaces.fmriprep.load_confounds_utils import _demean_confounds

    from nbdiag.inputs import fmriprep

    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(0, 1, (300, 7)) * 10.0 ** rng.integers(-3, 4, 7),
                         columns=[f"c{i}" for i in range(7)])
    if with_nan:
        frame.iloc[[0, 5, 40], 2] = np.nan
    mask = np.setdiff1d(np.arange(300), [3, 4, 5, 120, 121])
    ours = fmriprep._demean_masked(frame.copy(), mask, _demean_confounds)
    theirs = _demean_confounds(frame.copy(), mask)
    pd.testing.assert_frame_equal(ours, theirs, check_exact=True)
    np.testing.assert_array_equal(ours.to_numpy(), theirs.to_numpy())
    called = []
    monkeypatch.setattr(fmriprep, "_pandas_uses_bottleneck", lambda: True)
    fmriprep._demean_masked(frame.copy(), mask, lambda c, m: called.append(1) or c)
    assert called


def test_flagged_volumes_and_numeric_columns_equal_the_pandas_rules():
    """The numpy reading of outlier flags and measured columns equals ``fillna(0) != 0`` and ``to_numeric``."""
    import re

    from nbdiag.inputs import fmriprep

    raw = pd.DataFrame({
        "non_steady_state_outlier00": [1, 0, 0, 0, 0],
        "non_steady_state_outlier01": [0.0, np.nan, 1.0, 0.0, 0.0],
        "non_steady_state_outlier02": ["0", "n/a", 0, 0, "x"],
        "global_signal": [1.5, np.nan, 2.0, 3.0, 4.0],
        "csf": ["1.0", "n/a", "2", "x", "5"],
        "framewise_displacement": [np.nan, 0.1, 0.2, 0.3, 0.4],
    })
    pattern = re.compile(r"^non_steady_state_outlier\d+$")
    cols = [c for c in raw.columns if pattern.match(c)]
    want = tuple(int(i) for i in np.flatnonzero((raw[cols].fillna(0).to_numpy() != 0).any(axis=1)))
    assert fmriprep._flagged(raw, pattern) == want == (0, 1, 2, 4)  # the literal "n/a" is text, not missing
    got = fmriprep.raw_signals(raw)
    for col in ("global_signal", "csf"):
        np.testing.assert_array_equal(got[col], pd.to_numeric(raw[col], errors="coerce").to_numpy(dtype=float))
    got["global_signal"][0] = -1.0  # a copy: the table is not changed through it
    assert raw["global_signal"].iloc[0] == 1.5
    np.testing.assert_array_equal(fmriprep.raw_motion(raw)["framewise_displacement"],
                                  raw["framewise_displacement"].to_numpy())
