"""How far nbdiag's ``--model`` event regressors are from FitLins' (pybids' ``Convolve`` + resampling).

Not part of the test suite. pybids is not a dependency, so its two steps are re-implemented
here from its source (pybids 0.22, ``bids/modeling/transformations/compute.py`` ``Convolve``
and ``bids/variables/variables.py`` ``_resample``):

1. convolve each event variable on ``linspace(0, n_vols * TR, ceil(n_vols * TR * 10))``
   (the collection's 10 Hz) with ``compute_regressor`` (pybids' ``hrf.py`` is nilearn's),
   ``min_onset=0`` and an oversampling chosen from the onsets' and durations' resolution;
2. resample to the TR: 5th-order Butterworth low-pass at the new Nyquist (``filtfilt``),
   then linear interpolation onto ``linspace(0, n - 1, n_vols)``.

nbdiag builds the same columns with nilearn at the frame times ``0, TR, ...`` (as
``FirstLevelModel.fit`` does with ``slice_time_ref=0``). Usage::

    python benchmarks/bsm_vs_fitlins.py            # demo runs, shipped model
"""

from __future__ import annotations

import math
import sys
from functools import reduce
from math import gcd
from pathlib import Path

import numpy as np
from nilearn.glm.first_level import compute_regressor
from scipy.interpolate import interp1d
from scipy.signal import butter, filtfilt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _fractional_gcd(vals, res=0.001):
    return reduce(gcd, (int(np.round(val / res)) for val in vals)) * res


def pybids_regressor(onsets, durations, amplitudes, hrf_model, t_r, n_vols, collection_sr=10.0):
    """One FitLins (pybids) event regressor sampled at the TR."""
    dur = n_vols * t_r
    frames = np.linspace(0, dur, int(math.ceil(dur * collection_sr)), endpoint=False)
    required = _fractional_gcd(np.concatenate((np.unique(onsets), np.unique(durations))), res=0.01)
    effective_sr = max(1, min(2 / required, 100))
    conv, _ = compute_regressor(np.vstack([onsets, durations, amplitudes]), hrf_model, frames,
                                oversampling=int(np.ceil(effective_sr / collection_sr)), min_onset=0)
    y = conv[:, 0]
    new_sr = 1.0 / t_r
    b, a = butter(5, (new_sr / 2.0) / (collection_sr / 2.0), btype="low", output="ba", analog=False)
    y = filtfilt(b, a, y)
    return interp1d(np.arange(len(y)), y, kind="linear")(np.linspace(0, len(y) - 1, num=n_vols))


def main() -> int:
    from nbdiag.config import resolve_settings
    from nbdiag.demo.run import DATA_DIR, DEMO_DIR
    from nbdiag.inputs.bids import discover_runs
    from nbdiag.inputs.bids_stats_model import load_stats_model
    from nbdiag.record.build import prepare_run

    node, _, _ = load_stats_model(DEMO_DIR / "model-nback_smdl.json")
    config = resolve_settings(model={"derivatives_folder": "derivatives/fmriprep", "img_filters": [["desc", "preproc"]]},
                              stats_model=node)
    settings = config.all_variants()[0]
    runs, _ = discover_runs(DATA_DIR, settings.model)
    worst_rel, worst_r = 0.0, 1.0
    for run in runs:
        try:
            prepared = prepare_run(run, settings)
        except Exception as exc:  # noqa: BLE001 - a run the model cannot build (reported by nbdiag too)
            print(f"{run.prefix}: skipped ({type(exc).__name__})")
            continue
        design, events = prepared.built.design, prepared.events.events
        t_r, n = float(run.t_r.value), len(design)
        for cond in sorted(events["trial_type"].unique()):
            rows = events[events["trial_type"] == cond]
            amp = rows["modulation"].to_numpy(float) if "modulation" in rows else np.ones(len(rows))
            ref = pybids_regressor(rows["onset"].to_numpy(float), rows["duration"].to_numpy(float), amp,
                                   settings.model.hrf_model, t_r, n)
            ours = design[cond].to_numpy(float)
            rel = float(np.max(np.abs(ours - ref)) / np.max(np.abs(ours)))
            r = float(np.corrcoef(ours, ref)[0, 1])
            worst_rel, worst_r = max(worst_rel, rel), min(worst_r, r)
            print(f"{run.prefix} {cond:12s} max|diff|/max = {rel:.4f}  r = {r:.6f}")
    print(f"worst: max|diff|/max = {worst_rel:.4f}, r = {worst_r:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
