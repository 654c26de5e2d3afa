"""Simulated fMRIPrep confounds: motion (task-correlated on request), CompCor, cosines, outliers.

Part of :mod:`nbdiag.demo.synth` (see its docstring for the determinism rules).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from nbdiag.demo.synth.specs import RunSpec

#: fMRIPrep's high-pass cutoff for its ``cosine*`` regressors (s).
_COSINE_PERIOD_S = 128.0


# --------------------------------------------------------------------------
# confounds
# --------------------------------------------------------------------------
_MOTION_ORDER: dict[str, tuple[str, ...]] = {
    # suffix order as written by fMRIPrep (taken from nilearn's v21 test file)
    "trans_x": ("_derivative1", "_power2", "_derivative1_power2"),
    "trans_y": ("_derivative1", "_derivative1_power2", "_power2"),
    "trans_z": ("_derivative1", "_power2", "_derivative1_power2"),
    "rot_x": ("_derivative1", "_power2", "_derivative1_power2"),
    "rot_y": ("_derivative1", "_power2", "_derivative1_power2"),
    "rot_z": ("_derivative1", "_power2", "_derivative1_power2"),
}


_SIGNAL_ORDER = ("_derivative1", "_derivative1_power2", "_power2")


_N_TCOMPCOR, _N_CCOMPCOR, _N_WCOMPCOR = 3, 3, 4


def _n_cosines(n_used: int, t_r: float) -> int:
    return int(np.floor(2 * n_used * t_r / _COSINE_PERIOD_S))


def confounds_columns(run: RunSpec) -> list[str]:
    """fMRIPrep confound column names, in fMRIPrep's order, for a run.

    Parameters
    ----------
    run : RunSpec

    Returns
    -------
    list of str
    """
    cols: list[str] = []
    for base in ("global_signal", "csf", "white_matter"):
        cols += [base] + [base + s for s in _SIGNAL_ORDER]
    cols += ["csf_wm", "tcompcor", "std_dvars", "dvars",
             "framewise_displacement", "rmsd"]
    cols += [f"t_comp_cor_{i:02d}" for i in range(_N_TCOMPCOR)]
    cols += [f"c_comp_cor_{i:02d}" for i in range(_N_CCOMPCOR)]
    cols += [f"w_comp_cor_{i:02d}" for i in range(_N_WCOMPCOR)]
    cols += [f"a_comp_cor_{i:02d}" for i in range(run.n_acompcor)]
    n_cos = _n_cosines(run.n_scans - run.n_nonsteady, run.t_r)
    cols += [f"cosine{i:02d}" for i in range(n_cos)]
    cols += [f"non_steady_state_outlier{i:02d}" for i in range(run.n_nonsteady)]
    for base, suffixes in _MOTION_ORDER.items():
        cols += [base] + [base + s for s in suffixes]
    cols += [f"motion_outlier{i:02d}" for i in range(len(run.motion_outliers))]
    return cols


def _block_indicator(events: pd.DataFrame, frame_times: np.ndarray, cond: str) -> np.ndarray:
    box = np.zeros(frame_times.size)
    for onset, dur in events.loc[events["trial_type"] == cond, ["onset", "duration"]].to_numpy():
        box[(frame_times >= onset) & (frame_times < onset + dur)] = 1.0
    # head motion follows the block with a little inertia
    return np.convolve(box, np.ones(3) / 3, mode="same")


def _fd(motion: np.ndarray) -> np.ndarray:
    """Power's framewise displacement (50 mm head radius); first value NaN."""
    d = np.abs(np.diff(motion, axis=0))
    fd = d[:, :3].sum(axis=1) + 50.0 * d[:, 3:].sum(axis=1)
    return np.concatenate([[np.nan], fd])


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def _make_motion(
    run: RunSpec, rng: np.random.Generator, box: np.ndarray
) -> np.ndarray:
    """Six rigid-body parameters (mm, rad): trans_x/y/z, rot_x/y/z."""
    n = run.n_scans
    # slow linear drift + short-memory AR(1) wobble: no random walk, whose
    # spurious correlation with slow block regressors would make every run
    # look task-correlated
    drift_sd = np.array([0.15, 0.2, 0.3, 2.0e-3, 1.5e-3, 1.5e-3])
    ar_sd = np.array([0.008, 0.01, 0.012, 1.5e-4, 1.0e-4, 1.0e-4])
    jit_sd = np.array([0.010, 0.012, 0.015, 2.0e-4, 1.2e-4, 1.2e-4])
    ramp = np.linspace(0.0, 1.0, n)[:, None]
    walk = ramp * rng.normal(0.0, 1.0, 6) * drift_sd
    innov = rng.normal(0.0, 1.0, (n, 6)) * ar_sd
    ar = np.zeros((n, 6))
    for t in range(1, n):
        ar[t] = 0.5 * ar[t - 1] + innov[t]
    walk = walk + ar
    noise = rng.normal(0.0, 1.0, (n, 6)) * jit_sd
    steps = np.zeros((n, 6))
    for v in run.motion_outliers:
        steps[v:, 0] += 0.6  # a 0.6 mm jerk that stays (FD ~ 0.6+ at v)
        steps[v:, 3] += 0.004  # and a 0.2 mm (at 50 mm) pitch
    r = float(run.task_motion_corr)
    if r == 0 or box.std() == 0:
        return walk + noise + steps

    x = (box - box.mean()) / box.std()
    locked = (2, 3)  # trans_z and rot_x: nodding with the button presses

    def compose(gain: float) -> np.ndarray:
        m = walk + noise * (1.0 + gain * box)[:, None]
        for j in locked:
            b = m[:, j] - m[:, j].mean()
            b = b - (b @ x) / (x @ x) * x  # orthogonal to the blocks
            a = r * b.std() / np.sqrt(1.0 - r**2)
            m[:, j] = m[:, j].mean() + b + a * x
        return m + steps

    lo, hi = 0.0, 20.0
    for _ in range(40):  # bisection on the jitter gain: corr(FD, 2BACK) ~ r
        mid = 0.5 * (lo + hi)
        if _corr(_fd(compose(mid)), box) < r:
            lo = mid
        else:
            hi = mid
    return compose(0.5 * (lo + hi))


def _derivative(x: np.ndarray) -> np.ndarray:
    return np.concatenate([[np.nan], np.diff(x)])


def _orthonormal(rng: np.random.Generator, n_rows: int, n_cols: int) -> np.ndarray:
    q, _ = np.linalg.qr(rng.normal(size=(n_rows, n_cols)))
    return q * np.sign(q[0])  # deterministic sign


def make_confounds(
    run: RunSpec, events: pd.DataFrame, rng: np.random.Generator
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Simulate an fMRIPrep ``desc-confounds_timeseries`` table and sidecar.

    Parameters
    ----------
    run : RunSpec
        The run (n_scans, t_r, non-steady volumes, outliers, task-locked
        motion).
    events : pandas.DataFrame
        Full events of the run (motion may be locked to its ``2BACK`` rows).
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    confounds : pandas.DataFrame
        Columns :func:`confounds_columns`; NaN in the first row of the
        derivative columns, ``framewise_displacement``, ``dvars``,
        ``std_dvars`` and ``rmsd``, as fMRIPrep writes them.  CompCor and
        cosine columns are 0 on non-steady-state volumes (fMRIPrep computes
        them on the steady-state volumes only).
    sidecar : dict
        The JSON sidecar: CompCor metadata (``Method``, ``Mask``,
        ``Retained``, ``SingularValue``, ``VarianceExplained``,
        ``CumulativeVarianceExplained``) and ``Method: Mean`` entries.
    """
    n, k = run.n_scans, run.n_nonsteady
    frame_times = np.arange(n) * run.t_r
    box = _block_indicator(events, frame_times, "2BACK")
    motion = _make_motion(run, rng, box)
    data: dict[str, np.ndarray] = {}
    # the random draws, in this order: mean signals, DVARS, CompCor (the demo's bytes depend on it)
    _mean_signals(data, rng, n, k)
    _motion_quality(data, rng, run, motion)
    json_side: dict[str, Any] = {}
    _compcor(data, json_side, rng, n, k, "t", _N_TCOMPCOR, "tCompCor", None)
    _compcor(data, json_side, rng, n, k, "c", _N_CCOMPCOR, "aCompCor", "CSF")
    _compcor(data, json_side, rng, n, k, "w", _N_WCOMPCOR, "aCompCor", "WM")
    _compcor(data, json_side, rng, n, k, "a", run.n_acompcor, "aCompCor", "combined")
    for name in ("csf", "csf_wm", "global_signal", "tcompcor", "white_matter"):
        json_side[name] = {"Method": "Mean"}
    _fixed_columns(data, run, motion)
    table = pd.DataFrame({c: data[c] for c in confounds_columns(run)})
    sidecar = {key: json_side[key] for key in sorted(json_side)}
    return table, sidecar


def _mean_signals(data: dict[str, np.ndarray], rng: np.random.Generator, n: int, k: int) -> None:
    """Global signal, CSF, white matter (with derivatives and powers), ``csf_wm``, ``tcompcor``:
    brighter on the ``k`` non-steady-state volumes, a shared slow drift plus noise."""
    excess = np.zeros(n)
    excess[:k] = 0.3 * np.exp(-np.arange(k) / 1.5)
    slow = np.cumsum(rng.normal(0.0, 0.05, n))
    for base, level, sd in (("global_signal", 520.0, 1.2), ("csf", 710.0, 4.0),
                            ("white_matter", 480.0, 1.0)):
        sig = level * (1.0 + excess) + level / 500.0 * slow + rng.normal(0, sd, n)
        d1 = _derivative(sig)
        data[base] = sig
        data[base + "_derivative1"] = d1
        data[base + "_derivative1_power2"] = d1**2
        data[base + "_power2"] = sig**2
    data["csf_wm"] = 0.5 * (data["csf"] + data["white_matter"]) + rng.normal(0, 0.5, n)
    data["tcompcor"] = 590.0 * (1.0 + excess) + rng.normal(0, 2.0, n)


def _motion_quality(data: dict[str, np.ndarray], rng: np.random.Generator, run: RunSpec,
                    motion: np.ndarray) -> None:
    """``std_dvars``, ``dvars``, ``framewise_displacement``, ``rmsd`` (NaN first row, as fMRIPrep):
    non-steady volumes bright but under nilearn's 1.5 threshold, motion outliers beyond it."""
    n, k = run.n_scans, run.n_nonsteady
    fd = _fd(motion)
    std_dvars = np.clip(1.0 + rng.normal(0.0, 0.06, n), 0.8, 1.3)
    std_dvars[1:k] = 1.35  # bright but not beyond nilearn's 1.5 threshold
    for v in run.motion_outliers:
        std_dvars[v] = 2.4
    std_dvars[0] = np.nan
    data["std_dvars"] = std_dvars
    data["dvars"] = std_dvars * 14.0 * (1.0 + 0.02 * rng.normal(size=n))
    data["framewise_displacement"] = fd
    data["rmsd"] = 0.45 * fd


def _compcor(data: dict[str, np.ndarray], json_side: dict[str, Any], rng: np.random.Generator, n: int, k: int,
             prefix: str, n_comp: int, method: str, mask: str | None) -> None:
    """``<prefix>_comp_cor_NN`` columns, orthonormal over the steady-state volumes, with their
    sidecar metadata (singular values, variance explained) as fMRIPrep writes it."""
    q = np.zeros((n, n_comp))
    q[k:] = _orthonormal(rng, n - k, n_comp)
    sv = np.sort(rng.uniform(40.0, 120.0, n_comp))[::-1]
    ve = sv**2 / (sv**2).sum() * rng.uniform(0.3, 0.6)
    cum = np.cumsum(ve)
    for i in range(n_comp):
        name = f"{prefix}_comp_cor_{i:02d}"
        data[name] = q[:, i]
        meta: dict[str, Any] = {
            "CumulativeVarianceExplained": round(float(cum[i]), 10),
        }
        if mask is not None:
            meta["Mask"] = mask
        meta.update({
            "Method": method,
            "Retained": True,
            "SingularValue": round(float(sv[i]), 10),
            "VarianceExplained": round(float(ve[i]), 10),
        })
        json_side[name] = meta


def _fixed_columns(data: dict[str, np.ndarray], run: RunSpec, motion: np.ndarray) -> None:
    """The columns without noise of their own: cosines over the steady-state volumes,
    non-steady-state and motion-outlier spikes, the six motion parameters with expansions."""
    n, k = run.n_scans, run.n_nonsteady
    n_used = n - k
    for i in range(_n_cosines(n_used, run.t_r)):
        c = np.zeros(n)
        c[k:] = np.sqrt(2.0 / n_used) * np.cos(
            np.pi / n_used * (np.arange(n_used) + 0.5) * (i + 1)
        )
        data[f"cosine{i:02d}"] = c
    for i in range(k):
        data[f"non_steady_state_outlier{i:02d}"] = (np.arange(n) == i).astype(float)
    for j, base in enumerate(_MOTION_ORDER):
        m = motion[:, j]
        d1 = _derivative(m)
        data[base] = m
        data[base + "_derivative1"] = d1
        data[base + "_power2"] = m**2
        data[base + "_derivative1_power2"] = d1**2
    for i, v in enumerate(run.motion_outliers):
        data[f"motion_outlier{i:02d}"] = (np.arange(n) == v).astype(float)
