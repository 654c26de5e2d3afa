"""Sensitivity: bias = w'm is exactly what nilearn's fit moves by; signals exist only when due."""

import sys
import warnings
from pathlib import Path

import numpy as np
from nilearn.glm.regression import OLSModel
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from nback_scenarios import T_R, build, fit_effects, layout, split  # noqa: E402

from nbdiag.design.context import DesignContext
from nbdiag.diagnostics.sensitivity import assess_sensitivity, signal_library


def test_bias_matches_nilearn_fit_for_every_signal():
    warnings.simplefilter("ignore")
    ev, _ = layout(300, between_fix=21.0)
    ev = ev[ev.onset < 230]
    keep, un = split(ev, drop=("fixation", "INSTRUCTION"))
    X, roles = build(keep, 300)
    ctx = DesignContext(t_r=T_R, events=keep, unmodeled_events=un, high_pass=0.008, nonsteady_volumes=(0, 1))
    sigs = signal_library(X, roles, ctx)
    assert {"nonsteady", "unmodeled:INSTRUCTION", "run_start", "slow_drift"} <= {s.source for s in sigs}
    y = 0.5 * X["zero_back"].to_numpy() + 100
    base = fit_effects(X, y, ["zero_back", "two_back - zero_back"])
    for name, c in {"zero_back": {"zero_back": 1.0}, "two_back - zero_back": {"two_back": 1.0, "zero_back": -1.0}}.items():
        vec = np.array([c.get(col, 0.0) for col in X.columns])
        res = assess_sensitivity(X, name, vec, sigs)
        ols = OLSModel(X.to_numpy())  # nilearn's own c (X'X)^+ c'
        assert res.variance == pytest.approx(float(vec @ ols.normalized_cov_beta @ vec), rel=1e-10)
        for s in sigs[:4]:
            moved = fit_effects(X, y + s.values, [name])[name] - base[name]
            np.testing.assert_allclose(moved, res.entry(s.source)["bias"], rtol=1e-6, atol=1e-9)


def test_signals_only_when_they_exist():
    ev, _ = layout(300, between_fix=21.0)
    keep = ev[ev.trial_type != "fixation"]
    X, roles = build(keep, 300)
    sources = {s.source for s in signal_library(X, roles, DesignContext(t_r=T_R, events=keep))}
    assert "nonsteady" not in sources and not any(s.startswith("unmodeled") for s in sources)
    # masked-out flagged volumes give no nonsteady signal
    Xm = X.iloc[4:]
    ctx = DesignContext(t_r=T_R, events=keep, nonsteady_volumes=(0, 1, 2, 3), scan_index=tuple(range(4, 300)),
                        n_scans_total=300, sample_mask_applied=True)
    assert "nonsteady" not in {s.source for s in signal_library(Xm, roles, ctx)}
