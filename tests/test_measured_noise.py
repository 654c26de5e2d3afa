"""noise_level: residual SD of the global signal after the design vs statsmodels OLS; every fallback reason."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from nbdiag.diagnostics.measured import noise_level


def _ctx(signals, scan_index=None, nonsteady=()):
    return SimpleNamespace(measured_signals=signals, scan_index=scan_index, nonsteady_volumes=tuple(nonsteady))


def _design(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"task": rng.normal(size=n), "global_signal": rng.normal(size=n),
                         "constant": np.ones(n)})


def test_noise_level_matches_statsmodels_on_steady_rows():
    n = 40
    design = _design(n)
    rng = np.random.default_rng(1)
    gs = 1000 + 5 * design["task"].to_numpy() + rng.normal(size=n)
    gs[0] = 1400.0  # non-steady volume: excluded from the fit
    got = noise_level(design, _ctx({"global_signal": gs}, nonsteady=[0]))
    y = 100 * (gs / gs.mean() - 1)
    X = design[["task", "constant"]].to_numpy()  # the signal's own column is left out
    fit = sm.OLS(y[1:], X[1:]).fit()
    assert got.source == "measured:global_signal" and got.reason == ""
    assert got.sd == pytest.approx(np.sqrt(fit.scale), rel=1e-9)


@pytest.mark.parametrize("signals, kwargs, reason", [
    (None, {}, "nothing measured from the run (--measure none or no confounds file)"),
    ({"csf": np.ones(40)}, {}, "no global_signal column in the confounds file"),
    ({"global_signal": np.ones(10)}, {}, "global_signal has 10 values, the design needs 40"),
    ({"global_signal": np.r_[np.nan, np.ones(39) * 1000]}, {}, "global_signal has missing values"),
])
def test_noise_level_assumed_with_reason(signals, kwargs, reason):
    got = noise_level(_design(), _ctx(signals, **kwargs))
    assert (got.source, got.reason, got.sd) == ("assumed", reason, 1.0)


def test_noise_level_no_degrees_of_freedom():
    design = pd.DataFrame(np.eye(3), columns=["a", "b", "c"])
    got = noise_level(design, _ctx({"global_signal": np.array([990.0, 1000.0, 1010.0])}))
    assert got.reason == "the residual of global_signal after the design has no degrees of freedom"
