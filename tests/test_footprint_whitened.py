"""Issue 20: the footprint of a motion column the model leaves out, found by nilearn's AR(1)-whitened fit.

The first-difference fit (AR(1) whitening with ρ = 1) throws away the block-frequency information that
task-locked motion carries; the whitened fit (ρ estimated from the OLS residual, as ``run_glm`` does)
keeps it. Its t is checked against nilearn's own ``FirstLevelModel(noise_model="ar1")`` fit, the placebo
t against a hand loop over ``np.roll``, and the rule on simulated runs whose bias nilearn proves.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from nback_scenarios import T_R, build, one_voxel_contrasts, short_layout  # noqa: E402

from nbdiag.design.context import DesignContext
from nbdiag.diagnostics import sensitivity as S
from nbdiag.diagnostics.measured import PLACEBO_SHIFTS, nilearn_scale
from nbdiag.explain.audit import audit_design

N = 300
EV, KEEP = short_layout(N)
HP = 0.004
X, ROLES = build(KEEP, N, high_pass=HP)
FT = np.arange(N) * T_R
BOX = np.zeros(N)                                     # motion is instantaneous: no HRF
for _o, _d in zip(KEEP.onset[KEEP.trial_type == "two_back"], KEEP.duration[KEEP.trial_type == "two_back"]):
    BOX[(FT >= _o) & (FT < _o + _d)] = 1.0
C = {"zero_back": "zero_back", "two_back": "two_back", "two_back - zero_back": "two_back - zero_back"}


def _run(seed, locked):
    """Global signal (scanner units) and trans_z: task response, AR(1) noise (ρ 0.4, 0.3 %), a slow random-walk
    drift; ``locked``: trans_z follows the 2-back blocks (0.15 mm) and the signal carries 1 % per mm of it,
    else trans_z is a random walk that drifts with the blocks by chance and the signal carries none of it."""
    rng = np.random.default_rng(seed)
    noise, w = np.zeros(N), rng.normal(0.0, 0.3, N)
    for i in range(N):
        noise[i] = (0.4 * noise[i - 1] if i else 0.0) + w[i]
    drift = np.cumsum(rng.normal(0.0, 0.02, N))
    task = 0.2 * X["zero_back"].to_numpy() + 0.6 * X["two_back"].to_numpy()
    if locked:
        z, carried = 0.15 * BOX + 0.03 * rng.standard_normal(N), 1.0
    else:
        z, carried = np.cumsum(rng.normal(0.0, 0.02, N)) + 0.2 * BOX, 0.0
    return 700.0 * (100.0 + task + carried * z + noise + drift) / 100.0, z


_nilearn = one_voxel_contrasts


def _parts(gs, z):
    y = nilearn_scale(gs)
    Xn = X.to_numpy(dtype=float)
    P = np.linalg.pinv(Xn)
    e, zp = y - Xn @ (P @ y), z - Xn @ (P @ z)
    return y, Xn, e, zp, float(zp @ e) / float(zp @ zp)


@pytest.mark.parametrize("seed,locked", [(24, True), (38, False), (3, True)])
def test_whitened_t_is_nilearns_ar1_t(seed, locked):
    """The whitened t equals the t nilearn reports for the motion column added to the model with
    ``noise_model="ar1"`` (ρ from the OLS residual of the model with the column, binned as run_glm bins it)."""
    gs, z = _run(seed, locked)
    y, Xn, e, zp, beta = _parts(gs, z)
    mine = S._whitened_t(Xn, y, z, e - beta * zp)
    ref = _nilearn(X.assign(trans_z=z), gs, ["trans_z"], noise_model="ar1", stat=True)["trans_z"]
    assert mine == pytest.approx(ref, rel=1e-6, abs=1e-9)
    assert abs(ref) > 1.0          # a real test, not 0 == 0
    # degenerate inputs give 0: a column in the design's span, no residual degrees of freedom
    assert S._whitened_t(Xn, y, Xn[:, 0].copy(), e) == 0.0
    assert S._whitened_t(Xn[:5], y[:5], z[:5], e[:5]) == 0.0


def test_placebo_t_hand_loop():
    """Placebo t: β over 1.4826 × the median |β| of the residual circularly shifted (a hand loop with np.roll)."""
    gs, z = _run(24, True)
    _, _, e, zp, beta = _parts(gs, z)
    n = zp.size
    lags = sorted({int(v) for v in np.linspace(0.05 * n, 0.95 * n, PLACEBO_SHIFTS)})
    placebo = [float(zp @ np.roll(e, k)) / float(zp @ zp) for k in lags]
    assert S._placebo_t(zp, e) == pytest.approx(beta / (1.4826 * np.median(np.abs(placebo))), rel=1e-10)
    assert S._placebo_t(zp[:10], e[:10]) == 0.0
    assert S._placebo_t(np.zeros(n), e) == 0.0


def test_footprint_rule():
    """The whitened route is asked only when the first-difference fit is between FOOTPRINT_LEVEL_T and
    DISTINCT_T; it needs the whitened t at DISTINCT_T and the placebo t at FOOTPRINT_LEVEL_T, all one sign."""
    def boom():
        raise AssertionError("not needed")

    def k(v):
        return lambda: v

    assert S._footprint(2.5, 3.2, boom, boom)                 # the first-difference rule alone
    assert not S._footprint(1.9, 3.2, boom, boom)             # level too weak
    assert not S._footprint(2.5, -3.2, boom, boom)            # signs disagree
    assert not S._footprint(2.5, 1.9, boom, boom)             # differences too weak for either route
    assert S._footprint(2.5, 2.2, k(3.1), k(2.1))
    assert S._footprint(-2.5, -2.2, k(-3.1), k(-2.1))
    assert not S._footprint(2.5, 2.2, k(2.9), boom)           # whitened below DISTINCT_T
    assert not S._footprint(2.5, 2.2, k(-3.1), boom)          # whitened of the other sign
    assert not S._footprint(2.5, 2.2, k(3.1), k(1.9))         # placebo below FOOTPRINT_LEVEL_T
    assert not S._footprint(2.5, 2.2, k(3.1), k(-2.1))


def _entries(audit, name="two_back - zero_back"):
    return [e for e in audit.contrasts[name]["sensitivity"] if e["source"] == "confound_left_out:trans_z"]


def test_task_locked_motion_found_by_the_whitened_fit_with_its_measured_size():
    """Task-locked motion the signal carries, too weak scan to scan for the first-difference rule alone
    (|t_diff| < 3) but clear in nilearn's whitened fit: a cause, first, with nilearn's measured change."""
    gs, z = _run(24, True)
    y, Xn, e, zp, beta = _parts(gs, z)
    assert 2.0 <= S._difference_t(zp, e, np.ones(N - 1, bool)) < 3.0     # the old rule misses it
    audit = audit_design(X, ROLES, DesignContext(t_r=T_R, events=KEEP, high_pass=HP,
                                                 measured_signals={"global_signal": gs, "trans_z": z}), C)
    (e2,) = _entries(audit)
    name = "two_back - zero_back"
    proved = _nilearn(X, gs, [name])[name] - _nilearn(X.assign(trans_z=z), gs, [name])[name]
    assert abs(proved) > 0.1 and abs(e2["bias_percent"] - proved) <= 0.15 * abs(proved), (e2["bias_percent"], proved)
    assert e2["magnitude_source"] == "measured:global_signal"
    top = next((f for f in audit.findings if f.contrast == name and f.severity in ("warn", "fail")), None)
    assert top is not None and top.evidence.get("source") == "confound_left_out:trans_z"


def test_chance_correlated_random_walk_motion_without_signal_not_found():
    """Random-walk motion that drifts with the blocks by chance, with no trace in the signal: its whitened t
    alone passes DISTINCT_T (slow wandering), but its differences do not follow the signal: no cause."""
    gs, z = _run(38, False)
    y, Xn, e, zp, beta = _parts(gs, z)
    assert abs(S._whitened_t(Xn, y, z, e - beta * zp)) >= 3.0             # whitened alone would be fooled
    audit = audit_design(X, ROLES, DesignContext(t_r=T_R, events=KEEP, high_pass=HP,
                                                 measured_signals={"global_signal": gs, "trans_z": z}), C)
    for name in C:
        assert _entries(audit, name) == []
