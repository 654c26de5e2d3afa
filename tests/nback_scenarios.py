"""n-back-like scenario designs built with nilearn (TR 0.8 s, six 48-s blocks)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
from nilearn.glm.first_level import FirstLevelModel, make_first_level_design_matrix


T_R = 0.8


def layout(n_scans=520, start_fix=8.0, between_fix=10.4, instr=9.6, block=48.0, fix_only_start=None):
    """Events of an n-back run: [fixation] then 6 x (instruction, block, fixation)."""
    rows = []
    t = start_fix if fix_only_start is None else fix_only_start
    if t > 0:
        rows.append((0.0, t, "fixation"))
    for i in range(6):
        rows.append((t, instr, "INSTRUCTION"))
        t += instr
        rows.append((t, block, "zero_back" if i % 2 == 0 else "two_back"))
        t += block
        gap = between_fix if fix_only_start is None else 0.0
        if gap > 0:
            rows.append((t, gap, "fixation"))
        t += gap
    end = n_scans * T_R
    if end - t > 0:
        rows.append((t, end - t, "fixation"))
    ev = pd.DataFrame(rows, columns=["onset", "duration", "trial_type"])
    rng = np.random.default_rng(1)
    return ev, rng


def build(events_modeled: pd.DataFrame, n_scans: int, high_pass=0.008, confounds: pd.DataFrame | None = None,
          hrf_model="glover"):
    ft = np.arange(n_scans) * T_R
    X = make_first_level_design_matrix(ft, events_modeled, hrf_model=hrf_model, drift_model="cosine",
                                       high_pass=high_pass, add_regs=confounds)
    return X, roles_by_name(X.columns, () if confounds is None else confounds.columns)


def roles_by_name(columns, confound_columns=()) -> dict[str, str]:
    """Column roles of a nilearn design, by hand: ``constant``, ``drift_*``, the confounds given
    (``non_steady*`` ones are spikes), every other column a task regressor."""
    roles = {}
    for c in columns:
        if c == "constant":
            roles[c] = "constant"
        elif c.startswith("drift_"):
            roles[c] = "drift"
        elif c in confound_columns:
            roles[c] = "spike" if c.startswith("non_steady") else "confound"
        else:
            roles[c] = "task"
    return roles


def split(ev: pd.DataFrame, drop=("fixation",)):
    keep = ev[~ev["trial_type"].isin(drop)].reset_index(drop=True)
    un = ev[ev["trial_type"].isin(drop) & (ev["trial_type"] != "fixation")]
    un = un.assign(reason="dropped").reset_index(drop=True)[["onset", "duration", "trial_type", "reason"]]
    return keep, un


def motion(n, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(scale=0.05, size=(n, 6)).cumsum(0) * 0.1,
                        columns=["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"])


def fit_effects(design: pd.DataFrame, y: np.ndarray, contrasts: list[str]) -> dict[str, float]:
    """Fit nilearn's FirstLevelModel on a 2x2x2 image of identical voxels ``y``."""
    data = np.tile(y, (2, 2, 2, 1)).astype(float)
    img = nib.Nifti1Image(data, np.eye(4))
    mask = nib.Nifti1Image(np.ones((2, 2, 2), dtype=np.int8), np.eye(4))
    model = FirstLevelModel(mask_img=mask, signal_scaling=False, noise_model="ols", minimize_memory=False)
    model.fit(img, design_matrices=[design])
    return {c: float(model.compute_contrast(c, output_type="effect_size").get_fdata()[0, 0, 0]) for c in contrasts}


def truth(design: pd.DataFrame, zero=0.3, two=1.0) -> np.ndarray:
    """Noise-free data: 0-back slightly, 2-back clearly above rest, + 100 baseline."""
    return zero * design["zero_back"].to_numpy() + two * design["two_back"].to_numpy() + 100.0


def trials(ev: pd.DataFrame, trial_s=2.4, seed=3, rt_mean=None):
    """Split 48-s blocks into 2.4-s trials with a ``response_time`` column (2-back slower)."""
    rt_mean = rt_mean or {"zero_back": 0.55, "two_back": 0.85}
    rng = np.random.default_rng(seed)
    rows = []
    for o, d, t in zip(ev.onset, ev.duration, ev.trial_type):
        if t in rt_mean:
            for k in range(int(round(d / trial_s))):
                rows.append((o + k * trial_s, trial_s, t, float(np.clip(rng.normal(rt_mean[t], 0.15), 0.2, 2.0))))
        else:
            rows.append((o, d, t, np.nan))
    return pd.DataFrame(rows, columns=["onset", "duration", "trial_type", "response_time"])


def rtdur(ev: pd.DataFrame) -> pd.DataFrame:
    """The forum's ConsDurRTDur transform: add RTDur events of duration = response time."""
    resp = ev.loc[~np.isnan(ev["response_time"])].copy()
    resp["duration"] = resp["response_time"]
    resp["trial_type"] = "RTDur"
    return pd.concat((ev, resp)).sort_values(by="onset").reset_index(drop=True)


def white_motion(n, seed=0, scale=0.02):
    """Six motion parameters that jitter around the reference volume (a still participant)."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(scale=scale, size=(n, 6)),
                        columns=["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"])


def short_layout(n_scans=300, between_fix=21.0):
    """The short n-back layout of the measured-verdict tests: ``(events, the 0-back/2-back events)``,
    every event starting at least 20 s before the run ends."""
    ev, _ = layout(n_scans, between_fix=between_fix)
    ev = ev[ev.onset < n_scans * T_R - 20]
    return ev, ev[ev.trial_type.isin(["zero_back", "two_back"])]


def one_voxel_contrasts(design: pd.DataFrame, series: np.ndarray, names, noise_model="ols",
                        stat=False) -> dict[str, float]:
    """nilearn's ``FirstLevelModel`` on a one-voxel image of ``series`` (t_r ``T_R``, nilearn's own
    signal scaling): each contrast's effect size, or its t with ``stat``."""
    import warnings

    img = nib.Nifti1Image(np.asarray(series, dtype=float).reshape(1, 1, 1, -1), np.eye(4))
    mask = nib.Nifti1Image(np.ones((1, 1, 1), dtype=np.int8), np.eye(4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = FirstLevelModel(mask_img=mask, noise_model=noise_model, minimize_memory=False, t_r=T_R)
        model.fit(img, design_matrices=[design])
        kind = "stat" if stat else "effect_size"
        return {c: float(model.compute_contrast(c, stat_type="t", output_type=kind).get_fdata().ravel()[0])
                for c in names}
