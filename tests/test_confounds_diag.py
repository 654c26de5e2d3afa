"""Confound diagnostics: non-steady state, scrubbing, confound overlap, dof."""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from nilearn.glm.first_level import make_first_level_design_matrix
from nilearn.glm.regression import OLSModel
from nilearn.interfaces.fmriprep import load_confounds

import nilearn
from nbdiag.design.context import DesignContext
from nbdiag.diagnostics.confounds import assess_confounds

DATA = Path(nilearn.__file__).parent / "interfaces" / "fmriprep" / "data"
T_R = 2.0


@pytest.fixture(scope="module")
def fmriprep_run(tmp_path_factory):
    """nilearn's shipped fMRIPrep confounds file laid out as a run (image is a stub)."""
    d = tmp_path_factory.mktemp("fmriprep")
    stem = "sub-01_task-nback"
    shutil.copy(DATA / "test_desc-confounds_regressors.tsv", d / f"{stem}_desc-confounds_timeseries.tsv")
    shutil.copy(DATA / "test_desc-confounds_regressors.json", d / f"{stem}_desc-confounds_timeseries.json")
    img = d / f"{stem}_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz"
    img.touch()
    raw = pd.read_csv(d / f"{stem}_desc-confounds_timeseries.tsv", sep="\t")
    return img, raw


def _roles(X, spikes=()):
    return {c: "constant" if c == "constant" else "drift" if c.startswith("drift") else
            "spike" if c in spikes else "task" if c in ("zero_back", "two_back") else "confound"
            for c in X.columns}


def _design(n, confounds, frame_times=None):
    ft = np.arange(n) * T_R if frame_times is None else frame_times
    ev = pd.DataFrame({"onset": [4.0, 24.0], "duration": [10.0, 10.0], "trial_type": ["zero_back", "two_back"]})
    return make_first_level_design_matrix(ft, ev, hrf_model="glover", drift_model="cosine", high_pass=0.01,
                                          add_regs=confounds.to_numpy(), add_reg_names=list(confounds.columns))


def _context(raw, **kw):
    nss_cols = [c for c in raw.columns if c.startswith("non_steady_state_outlier")]
    vols = tuple(int(i) for i in np.flatnonzero(raw[nss_cols].to_numpy().any(axis=1)))
    return DesignContext(t_r=T_R, raw_confound_columns=tuple(raw.columns), nonsteady_volumes=vols,
                         confounds_strategy=("motion", "non_steady_state"), **kw)


def test_forum_setting_raises_nonsteady_unhandled(fmriprep_run):
    img, raw = fmriprep_run
    conf, mask = load_confounds(str(img), strategy=("motion", "non_steady_state"), motion="basic")
    assert mask is not None and 0 not in mask  # load_confounds returns the NSS volume as a mask...
    assert not any(c.startswith("non_steady") for c in conf.columns)  # ...not as a confound
    X = _design(len(raw), conf)  # first_level_from_bids: confounds kept, mask dropped
    ctx = _context(raw, sample_mask_applied=False)
    assert ctx.nonsteady_volumes == (0,)
    res = assess_confounds(X, _roles(X), ctx)
    (f,) = [f for f in res.findings if f.code == "nonsteady_unhandled"]
    assert f.severity == "fail" and f.contrast is None
    assert "first_level_from_bids" in f.message and "sample mask" in f.message
    assert f.fix == ("pass sample_masks from load_confounds to FirstLevelModel.fit or add the "
                     "non_steady_state_outlier* columns as confounds")
    assert f.evidence["unhandled_volumes"] == [0]
    d = res.to_dict()["nonsteady"]
    assert d == {"columns_in_file": ["non_steady_state_outlier00"], "volumes": [0],
                 "modeled_as_regressors": False, "masked": False, "handled": False}


def test_nonsteady_handled_when_modelled_or_masked(fmriprep_run):
    img, raw = fmriprep_run
    conf, mask = load_confounds(str(img), strategy=("motion", "non_steady_state"), motion="basic")
    # 1) the non_steady_state_outlier columns added as confounds
    conf2 = pd.concat([conf, raw[["non_steady_state_outlier00"]]], axis=1)
    X = _design(len(raw), conf2)
    res = assess_confounds(X, _roles(X, spikes=("non_steady_state_outlier00",)), _context(raw))
    assert not any(f.code == "nonsteady_unhandled" for f in res.findings)
    assert res.nonsteady_modeled and res.nonsteady_handled
    # 2) the sample mask applied: rows removed, scan_index says which scans remain
    ft = (np.arange(len(raw)) * T_R)[mask]
    Xm = _design(len(mask), conf.iloc[mask].reset_index(drop=True), frame_times=ft)
    ctx = _context(raw, sample_mask_applied=True, scan_index=tuple(int(i) for i in mask))
    resm = assess_confounds(Xm, _roles(Xm), ctx)
    assert resm.nonsteady_masked and resm.nonsteady_handled
    assert not any(f.code == "nonsteady_unhandled" for f in resm.findings)


def test_scrub_not_applied():
    raw = pd.DataFrame({"trans_x": np.random.default_rng(0).standard_normal(60)})
    X = _design(60, raw)
    ctx = DesignContext(t_r=T_R, scrub_requested=True, scrub_volumes=(10, 11, 30))
    res = assess_confounds(X, _roles(X), ctx)
    assert [f.severity for f in res.findings if f.code == "scrub_not_applied"] == ["fail"]
    assert res.to_dict()["scrub"] == {"requested": True, "volumes": [10, 11, 30], "applied": False}
    keep = tuple(i for i in range(60) if i not in (10, 11, 30))
    Xm = X.iloc[list(keep)]
    ok = assess_confounds(Xm, _roles(Xm), DesignContext(t_r=T_R, scrub_requested=True, scrub_volumes=(10, 11, 30),
                                                        sample_mask_applied=True, scan_index=keep))
    assert not any(f.code == "scrub_not_applied" for f in ok.findings) and ok.scrub_applied


def test_confound_r2_matches_statsmodels_and_flags():
    rng = np.random.default_rng(1)
    n = 60
    base = _design(n, pd.DataFrame({"trans_x": rng.standard_normal(n)}))
    conf = pd.DataFrame({"trans_x": base["zero_back"] + 0.02 * rng.standard_normal(n),
                         "trans_y": rng.standard_normal(n)})
    X = _design(n, conf)
    roles = _roles(X)
    res = assess_confounds(X, roles, DesignContext(t_r=T_R))
    for task in ("zero_back", "two_back"):
        ref = sm.OLS(X[task], sm.add_constant(X[["trans_x", "trans_y"]])).fit().rsquared
        assert res.r2_task[task] == pytest.approx(ref, rel=1e-8)
    flagged = {f.evidence["regressor"]: f.severity for f in res.findings if f.code == "confound_task_correlated"}
    assert flagged.get("zero_back") == "fail"
    f = next(f for f in res.findings if f.code == "confound_task_correlated" and f.evidence["regressor"] == "zero_back")
    assert f.evidence["top_confounds"][0] == "trans_x" and f.evidence["r2"] == pytest.approx(res.r2_task["zero_back"])


def test_dof_equals_nilearn_df_residuals_and_dof_low():
    rng = np.random.default_rng(2)
    n = 40
    X = _design(n, pd.DataFrame(rng.standard_normal((n, 12)), columns=[f"c{i}" for i in range(12)]))
    res = assess_confounds(X, _roles(X), DesignContext(t_r=T_R))
    assert res.dof == OLSModel(X.to_numpy()).df_residuals
    assert res.dof == n - np.linalg.matrix_rank(X.to_numpy())
    assert [f.severity for f in res.findings if f.code == "dof_low"] == (["fail"] if res.dof < 20 else ["warn"])
    big = _design(200, pd.DataFrame(rng.standard_normal((200, 2)), columns=["a", "b"]))
    assert not any(f.code == "dof_low" for f in assess_confounds(big, _roles(big), DesignContext(t_r=T_R)).findings)
