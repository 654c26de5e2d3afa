"""The FFT, memoised task part gives nilearn's design (columns, values, warnings)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from nilearn.glm.first_level import make_first_level_design_matrix

from nbdiag.design import taskpart
from nbdiag.config import ModelSettings, update_model
from nbdiag.design.matrix import build_design, frame_times


def _events(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    onsets = np.sort(rng.uniform(-30, 200, 40))
    return pd.DataFrame({
        "onset": onsets, "duration": rng.choice([0.0, 0.5, 2.4, 12.0], 40),
        "trial_type": rng.choice(["a", "b", "c"], 40), "modulation": rng.uniform(0.5, 1.5, 40),
        "response_time": rng.uniform(0.3, 1.0, 40),
    })


@pytest.mark.parametrize("hrf", ["glover", "spm", "spm + derivative", "glover + derivative + dispersion", "fir"])
@pytest.mark.parametrize("drift", ["cosine", "polynomial", None])
def test_design_equals_nilearn(hrf, drift):
    taskpart.clear_cache()
    events = _events()
    events = pd.concat([events, events.iloc[[3]]])  # a duplicate event: nilearn sums it and warns
    times = frame_times(120, 2.0, 0.5)
    confounds = pd.DataFrame(np.random.default_rng(1).normal(size=(120, 3)), columns=["x", "y", "z"])
    model = update_model(ModelSettings(task_label="t"), {"hrf_model": hrf, "drift_model": drift, "high_pass": 0.01,
                                                         "fir_delays": [0, 1, 2] if hrf == "fir" else None})
    fir = list(model.fir_delays) if model.fir_delays is not None else [0]
    for attempt in range(2):  # computed, then from the cache
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            expected = make_first_level_design_matrix(times, events, hrf, drift, 0.01, model.drift_order, fir,
                                                      confounds.to_numpy(), list(confounds.columns), model.min_onset)
        built = build_design(events, confounds, 120, 2.0, 0.5, model)
        assert list(built.design.columns) == list(expected.columns)
        np.testing.assert_allclose(built.design.to_numpy(), expected.to_numpy(), rtol=0, atol=1e-10)
        np.testing.assert_array_equal(built.design.index.to_numpy(), expected.index.to_numpy())
        nilearn_messages = list(dict.fromkeys(str(w.message).strip() for w in record))
        assert list(built.warnings) == nilearn_messages, attempt
        zero = expected.to_numpy() == 0  # exact zeros (before the first event) stay exact
        assert (built.design.to_numpy()[zero] == 0).all()


def test_variants_sharing_timing_build_the_task_part_once(monkeypatch):
    taskpart.clear_cache()
    calls = []
    original = taskpart._compute
    monkeypatch.setattr(taskpart, "_compute", lambda *a: calls.append(1) or original(*a))
    events = _events(2)
    model = ModelSettings(task_label="t")
    for high_pass in (0.01, 0.008):  # two variants differing only in the drift model
        build_design(events, None, 120, 2.0, 0.0, update_model(model, {"high_pass": high_pass}))
    assert len(calls) == 1
    shifted = events.assign(onset=events["onset"] + 0.1)
    build_design(shifted, None, 120, 2.0, 0.0, model)
    assert len(calls) == 2
