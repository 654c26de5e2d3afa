"""A fast slice of the verdict battery (``benchmarks/verdict_battery.py``, issue 20).

Each case is a randomized simulated study (TR, blocked vs event-related, block and gap lengths, runs,
noise, confound set drawn from its seed) whose truth is proved by nilearn's ``FirstLevelModel`` (flaw in
place vs fixed). The case is right when (a) the first warn/fail finding on every contrast the flaw moves by
at least 1 SE names the true cause, and nothing is flagged where nothing moves; (b) the measured size is
within 15 % of nilearn's change; (c) the run fails only for an effect at the fail size. The whole battery
(README: "How often the verdicts are right") is slower; these seeds keep every family under test.
"""

import io
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import verdict_battery as vb  # noqa: E402

from nbdiag.explain.audit import audit_design  # noqa: E402
from nbdiag.core.thresholds import Thresholds  # noqa: E402

CASES = [
    ("cue_present", 201), ("cue_present", 202),
    ("cue_absent", 200), ("cue_absent", 201),
    ("nss_flagged", 200), ("nss_flagged", 201),
    ("nss_unflagged", 200), ("nss_unflagged", 202),
    ("motion_chance", 200), ("motion_chance", 201),
    ("motion_locked", 201), ("motion_locked", 204),
    ("spikes_harmless", 200), ("spikes_harmless", 203),
    ("spikes_harmful", 200), ("spikes_harmful", 203),
    ("true_deactivation", 200), ("true_deactivation", 201),
    ("settling", 200), ("settling", 100003), ("settling", 200096),
    ("tiled", 200), ("tiled", 201),
    ("forum", 201), ("forum", 202),
    ("clean", 201), ("clean", 202),
]


@pytest.mark.parametrize("family,seed", CASES)
def test_verdict_is_right(family, seed):
    th = Thresholds()
    study = vb.make_study(family, seed)
    for run in study.runs:
        audit = audit_design(run.design, run.roles, run.context, vb.CONTRASTS, th)
        right, expected, got, why, _ = vb.score_run(family, run, audit, th)
        assert right, (family, seed, study.params, expected, got, why)


def test_every_family_is_in_the_slice_and_the_truth_is_nilearns():
    assert {f for f, _ in CASES} == set(vb.FAMILIES)
    # the proof is a nilearn fit: a flaw that is in the data moves the contrasts it biases; a clean study's
    # 'fixed' fit is the same fit (no change)
    nss = vb.make_study("nss_flagged", 200).runs[0]
    assert abs(nss.proved["zero_back"]) > nss.se["zero_back"]
    clean = vb.make_study("clean", 201).runs[0]
    assert all(abs(v) < 1e-9 for v in clean.proved.values())


def test_scoring_catches_a_wrong_verdict():
    """The scorer is not vacuous: a flaw the audit is not shown (measured signals removed) is missed."""
    from dataclasses import replace

    th = Thresholds()
    run = vb.make_study("nss_unflagged", 200).runs[0]
    blind = replace(run.context, measured_signals=None)
    audit = audit_design(run.design, run.roles, blind, vb.CONTRASTS, th)
    right, _, _, why, quiet = vb.score_run("nss_unflagged", run, audit, th)
    assert not right and not quiet and any("expected transient" in w for w in why)


def test_battery_table_and_totals():
    out = io.StringIO()
    res = vb.run_battery(2, 3, families=("clean", "forum"), out=out)
    text = out.getvalue()
    assert res["n"] == 2 and "right:" in text and text.count("\n") >= 5
    assert {r["family"] for r in res["rows"]} == {"clean", "forum"}


# ---------------------------------------------------------------- the rules the battery decided, one by one
def test_event_related_designs_need_no_long_rest_epochs():
    """baseline_scarce's few-long-epochs rule is for block designs: trials back to back form a block
    (episodes merged across gaps < 1 s); jittered short events are event-related."""
    import numpy as np
    import pandas as pd

    from nbdiag.design.context import DesignContext
    from nbdiag.diagnostics.baseline import _event_related

    th = Thresholds()
    trials = pd.DataFrame({"onset": np.arange(0, 48, 2.4), "duration": 2.4, "trial_type": "zero_back"})
    assert not _event_related(DesignContext(t_r=1.0, events=trials), th)          # one 48-s block
    jitter = pd.DataFrame({"onset": np.arange(0, 300, 6.0), "duration": 1.5, "trial_type": "zero_back"})
    assert _event_related(DesignContext(t_r=1.0, events=jitter), th)
    assert not _event_related(DesignContext(t_r=1.0, events=None), th)
    bad = pd.DataFrame({"onset": [np.nan], "duration": [np.nan], "trial_type": ["a"]})
    assert not _event_related(DesignContext(t_r=1.0, events=bad), th)


def test_task_response_is_not_a_transient_but_a_spike_is():
    """A large block response in global_signal is taken out before transients are sought; a lone spike
    stands out; a volume whose neighbours both stand out is not a spike (the middle of an excursion)."""
    import numpy as np

    from nbdiag.diagnostics.measured import _without_task, detect_transients
    from nbdiag.design.hrf import compute_regressor_fast

    n, t_r = 200, 2.0
    ft = np.arange(n) * t_r
    on = np.arange(20.0, 380.0, 60.0)
    reg, _ = compute_regressor_fast(np.vstack([on, np.full(on.size, 30.0), np.ones(on.size)]), "glover", ft)
    rng = np.random.default_rng(0)
    s = 500.0 * (1 + (3.0 * reg[:, 0] + rng.normal(0, 0.1, n)) / 100)
    assert detect_transients("global_signal", s).unflagged() != []                 # read as transients
    assert detect_transients("global_signal", s, task=reg).unflagged() == []       # not once taken out
    spiky = s.copy()
    spiky[100] *= 1.2
    assert detect_transients("global_signal", spiky, task=reg).unflagged() == [100]
    # a 3-volume plateau: its middle volume (both neighbours stand out) is inside a smooth excursion
    plateau = s.copy()
    plateau[[60, 61, 62]] *= np.array([1.03, 1.05, 1.03])
    found = detect_transients("global_signal", plateau, task=reg).unflagged()
    assert 61 not in found and {60, 62} <= set(found)
    # too few steady rows to fit: the series is returned as it is
    dev = np.arange(3.0)
    assert _without_task(dev, np.ones((3, 2)), np.ones(3, bool), 5.0) is dev


def test_random_walks_leave_no_footprint_on_first_differences():
    import numpy as np

    from nbdiag.diagnostics.sensitivity import _difference_t

    rng = np.random.default_rng(1)
    n = 300
    pair = np.ones(n - 1, bool)
    walk_a, walk_b = np.cumsum(rng.normal(size=n)), np.cumsum(rng.normal(size=n))
    levels_t = np.corrcoef(walk_a, walk_b)[0, 1]
    assert abs(levels_t) > 0.2                                  # two independent walks 'correlate'
    assert abs(_difference_t(walk_a, walk_b, pair)) < 3        # their changes do not
    box = np.repeat([0.0, 1.0] * 10, 15)
    assert abs(_difference_t(box, 0.5 * box + rng.normal(0, 0.05, n), pair)) > 3
    assert _difference_t(np.zeros(n), walk_b, pair) == 0.0


def test_variance_cause_and_run_edge_corroboration():
    from nbdiag.core import codes
    from nbdiag.explain.attribution import distinct_causes, uncorroborated
    from nbdiag.explain.audit import _variance_cause

    f = codes.VIF_HIGH.finding(severity="fail", message="VIF 40.", evidence={"vif": 40.0})
    v = _variance_cause(f)
    assert v.severity == "warn" and v.evidence["own_severity"] == "fail" and "not a bias" in v.message
    w = codes.VIF_HIGH.finding(severity="warn", message="VIF 6.")
    assert _variance_cause(w) is w
    gs = {"estimate_ols": 0.1, "t": 1.0, "se": 0.1, "by_class": {"run_edge": 0.3, "fixation": 0.2},
          "by_class_kind": {"run_edge": "cause", "fixation": "term"}, "by_class_t": {"run_edge": 8.0}}
    assert uncorroborated([{"source": "run_start", "measured_t": 1.2}]) == ("run_edge",)
    assert uncorroborated([{"source": "run_start", "measured_t": -4.0}]) == ()
    assert distinct_causes(gs) == [("run_edge", 0.3)]
    assert distinct_causes(gs, exclude=("run_edge",)) == []
    assert distinct_causes(None) == []


# ---------------------------------------------------------------- slow settling (issue 20: "slow settling")
def _settling_run(amp: float, tau: float, seed: int = 0, t_r: float = 1.5, n: int = 240, head: np.ndarray | None = None,
                  drift_sd: float = 0.0):
    """A blocked run whose global signal holds ``amp`` % settling with time constant ``tau`` (s) and, optionally,
    extra excess ``head`` (%) on its first volumes; returns (design, roles, context, y_flawed %, y_fixed %)."""
    import pandas as pd
    from nilearn.glm.first_level import make_first_level_design_matrix

    from nbdiag.design.context import DesignContext

    rng = np.random.default_rng(seed)
    ons = np.arange(20.0, n * t_r - 40.0, 50.0)
    ev = pd.DataFrame({"onset": ons, "duration": 25.0,
                       "trial_type": ["zero_back" if i % 2 == 0 else "two_back" for i in range(ons.size)]})
    ft = np.arange(n) * t_r
    design = make_first_level_design_matrix(ft, ev, hrf_model="glover", drift_model="cosine", high_pass=0.008)
    roles = {c: "constant" if c == "constant" else "drift" if c.startswith("drift_") else "task" for c in design}
    clean = 100.0 + 0.5 * design["zero_back"].to_numpy() + 1.0 * design["two_back"].to_numpy() \
        + rng.normal(0.0, 0.15, n) + np.cumsum(rng.normal(0.0, drift_sd, n))
    flaw = amp * np.exp(-ft / tau)
    if head is not None:
        flaw[:head.size] += head
    gs, fixed = 6.0 * (clean + flaw), 6.0 * clean
    ctx = DesignContext(t_r=t_r, events=ev, high_pass=0.008, drift_model="cosine",
                        measured_signals={"global_signal": gs}, noise_model="ar1", n_scans_total=n)
    return design, roles, ctx, gs, fixed



def test_settling_time_constant_is_fitted_and_its_bias_is_nilearns():
    """The settling shape is fitted from the run's own global signal over a time-constant grid (least squares),
    and the measured bias on every contrast equals nilearn's change (flawed − fixed fit) within 15 %."""
    from nbdiag.explain.audit import audit_design as audit
    from nbdiag.diagnostics.sensitivity import RUN_START_ALT_TAU_S

    assert RUN_START_ALT_TAU_S[0] == 4.0 and RUN_START_ALT_TAU_S[-1] == 64.0 and len(RUN_START_ALT_TAU_S) == 9
    design, roles, ctx, gs, fixed = _settling_run(3.0, 15.0, seed=1)
    a = audit(design, roles, ctx, vb.CONTRASTS, Thresholds())
    est, se = vb._fit(design, gs, list(vb.CONTRASTS), ctx.t_r)
    fix, _ = vb._fit(design, fixed, list(vb.CONTRASTS), ctx.t_r)
    for name in vb.CONTRASTS:
        e = next(x for x in a.contrasts[name]["sensitivity"] if x["source"] == "run_start")
        assert "time constant 16 s" in e["measured_what"]           # the grid value nearest 15 s
        proved = est[name] - fix[name]
        assert abs(e["measured_bias_percent"] - proved) <= 0.15 * abs(proved), (name, e["measured_bias_percent"], proved)
        assert e["structural"] and abs(e["measured_t"]) >= 3
        if abs(proved) >= se[name]:                                  # affected: settling is named first
            first = next(f for f in a.findings if f.contrast == name and f.severity in ("warn", "fail"))
            assert vb.cause_of(first) == "settling", first.title


def test_settling_footprint_se_holds_for_a_wandering_signal():
    """The settling footprint's SE is at least its placebo SE (β refitted on the circularly shifted residual,
    checked against np.roll), so a random walk alone is no settling cause."""
    from nbdiag.diagnostics.sensitivity import FOOTPRINT_PLACEBO_SHIFTS, _placebo_beta_se

    rng = np.random.default_rng(3)
    n = 200
    e, m = np.cumsum(rng.normal(size=n)), np.exp(-np.arange(n) / 10.0)
    ss = float(m @ m)
    lags = np.unique(np.linspace(0.05 * n, 0.95 * n, FOOTPRINT_PLACEBO_SHIFTS).astype(int))
    hand = 1.4826 * np.median([abs(np.roll(e, k) @ m / ss) for k in lags])
    assert abs(_placebo_beta_se(m, e, ss) - hand) < 1e-12
    assert _placebo_beta_se(m[:10], e[:10], float(m[:10] @ m[:10])) == 0.0
    # clean runs with a random-walk drift: no settling is made a cause
    from nbdiag.explain.audit import audit_design as audit

    for seed in range(4):
        design, roles, ctx, _, _ = _settling_run(0.0, 15.0, seed=seed, drift_sd=0.02)
        a = audit(design, roles, ctx, vb.CONTRASTS, Thresholds())
        assert not [f for f in a.findings if f.severity in ("warn", "fail") and vb.cause_of(f) == "settling"], seed


def test_bright_run_start_is_a_settling_head_only_when_a_slow_decay_explains_it():
    """Run-start volumes that stand out are the head of a slow settling when the settling refitted with them
    explains each within the transient threshold (then they are no transient); a fast non-steady-state decay
    (halving per volume) stays a transient."""
    from nbdiag.explain.audit import audit_design as audit

    design, roles, ctx, gs, fixed = _settling_run(4.0, 8.0, seed=2, t_r=2.0, n=200)
    a = audit(design, roles, ctx, vb.CONTRASTS, Thresholds())
    assert a.measured["signals"]["global_signal"]["transients"]["volumes"]   # the start stands out ...
    assert not any(f.code == "transient_unflagged" for f in a.findings)      # ... and is settling
    assert not any(e["source"] == "transient" for e in a.contrasts["zero_back"]["sensitivity"])
    est, _ = vb._fit(design, gs, ["zero_back"], ctx.t_r)
    fix, _ = vb._fit(design, fixed, ["zero_back"], ctx.t_r)
    e = next(x for x in a.contrasts["zero_back"]["sensitivity"] if x["source"] == "run_start")
    assert abs(e["measured_bias_percent"] - (est["zero_back"] - fix["zero_back"])) <= 0.15 * abs(est["zero_back"] - fix["zero_back"])
    # the default time constant (20 s) as the head's settling: fitted size 6 × the assumed 1 %
    d20 = _settling_run(6.0, 20.0, seed=2, t_r=2.5, n=160)
    c = audit(*d20[:3], vb.CONTRASTS, Thresholds())
    e20 = next(x for x in c.contrasts["zero_back"]["sensitivity"] if x["source"] == "run_start")
    assert "time constant" not in e20["measured_what"] and not any(f.code == "transient_unflagged" for f in c.findings)
    est, _ = vb._fit(d20[0], d20[3], ["zero_back"], 2.5)
    fix, _ = vb._fit(d20[0], d20[4], ["zero_back"], 2.5)
    assert abs(e20["measured_bias_percent"] - (est["zero_back"] - fix["zero_back"])) <= 0.05 * abs(est["zero_back"] - fix["zero_back"])
    fast = _settling_run(0.0, 20.0, seed=2, t_r=2.0, n=200, head=20.0 * 0.5 ** np.arange(4))
    b = audit(*fast[:3], vb.CONTRASTS, Thresholds())
    assert any(f.code == "transient_unflagged" for f in b.findings)
    first = next(f for f in b.findings if f.contrast == "zero_back" and f.severity in ("warn", "fail"))
    assert vb.cause_of(first) == "transient"


def test_settling_rules_unit():
    """settling_head's guards, the negative-footprint rule, without_volumes and the attribution claim."""
    from nbdiag.diagnostics.sensitivity import Signal, settling_head, without_volumes
    from nbdiag.explain.attribution import SETTLING_CLAIMS, _measured_settling
    from nbdiag.core import codes

    n = 60
    X = np.ones((n, 1))
    v = np.exp(-np.arange(n) / 10.0)
    sig = Signal("run_start", "s", "% signal", v)
    y = 3.0 * v - (3.0 * v).mean()
    none = np.zeros(n, bool)
    assert settling_head(X, np.linalg.pinv(X), y, 0.1, sig, none, none, 1.0) is None          # no head
    head = np.zeros(n, bool)
    head[:2] = True
    assert settling_head(X, np.linalg.pinv(X), -y, 0.1, sig, head, head, 1.0) is None         # below steady
    got = settling_head(X, np.linalg.pinv(X), y, 0.1, sig, head, head, 1.0)
    assert got is not None and abs(got[0][0] - 3.0) < 1e-9
    tr = Signal("transient", "t", "% signal", np.r_[5.0, 2.0, np.zeros(n - 2)])
    from nbdiag.design.context import DesignContext
    ctx = DesignContext(t_r=1.0)
    assert without_volumes([tr, sig], "transient", [0, 1], ctx) == [sig]
    kept = without_volumes([tr], "transient", [0], ctx)[0]
    assert kept.values[0] == 0.0 and kept.values[1] == 2.0
    assert SETTLING_CLAIMS == (codes.BASELINE_EDGE_CONCENTRATED.code,)
    assert _measured_settling({"severity_basis": "measured_part", "measured_t": -3.5})
    assert not _measured_settling({"severity_basis": "measured_part", "measured_t": 2.0})
    assert not _measured_settling({"severity_basis": "assumed"})


def test_settling_level_fit_is_capped_by_its_scan_to_scan_evidence():
    """_settling_difference_se: the SE that caps a settling footprint's t at SETTLING_DIFF_RATIO × its
    first-difference t (hand: np.diff, OLS slope, lag-1 autocovariance of the differenced residual). A real
    decay is barely capped; a random walk that wanders away from the run start is (no settling cause)."""
    from nbdiag.diagnostics.sensitivity import SETTLING_DIFF_RATIO, _settling_difference_se

    rng = np.random.default_rng(5)
    n = 200
    m = np.exp(-np.arange(n) / 8.0)
    pair = np.ones(n - 1, bool)
    e = 2.0 * m + rng.normal(0.0, 0.1, n)
    beta = float(m @ e / (m @ m))
    dz, de = np.diff(m), np.diff(e)
    b = float(np.linalg.lstsq(dz[:, None], de, rcond=None)[0][0])
    r = de - b * dz
    s2, g1 = r @ r / (r.size - 1), r[1:] @ r[:-1] / (r.size - 1)
    t_d = b / np.sqrt((s2 * (dz @ dz) + 2 * g1 * (dz[1:] @ dz[:-1])) / (dz @ dz) ** 2)
    got = _settling_difference_se(beta, m, e, pair)
    assert abs(got - beta / (SETTLING_DIFF_RATIO * t_d)) < 1e-12 * beta
    assert beta / got > 10                                        # a real decay keeps a large t
    walk = np.cumsum(rng.normal(0.0, 0.05, n))
    walk = walk - walk[-50:].mean()
    bw = float(m @ walk / (m @ m))
    assert abs(bw / _settling_difference_se(bw, m, walk, pair)) < 3      # wandering: not distinguishable
    assert _settling_difference_se(1.0, m, -e, pair) > 1e2                # differences of the other sign
    assert _settling_difference_se(0.0, m, e, pair) == 0.0
    assert _settling_difference_se(1.0, m[:4], e[:4], pair[:3]) == 0.0


# the verdict battery's false alarms fixed by the rules above (seeds of the development battery, seeds 1 and 2)
REGRESSION_CASES = [
    ("motion_chance", 100031),   # random-walk drift read as a 64-s settling (level t 3.9, difference t 0.7)
    ("tiled", 200040),           # random-walk drift read as settling in a tiled design (level t 3.2)
    ("motion_chance", 100018),   # confound_task_correlated failed the run: no confound is task-locked
    ("clean", 200084),           # the same warned on a clean run
    ("motion_locked", 200008),   # task-locked motion: difference t 4.8, level t 2.4 (short, noisy run)
]


@pytest.mark.parametrize("family,seed", REGRESSION_CASES)
def test_verdict_battery_regressions(family, seed):
    test_verdict_is_right(family, seed)


def test_confound_overlap_without_a_task_locked_confound_is_context_when_measured():
    """confound_task_correlated (the task's R² on the confounds) is info when the global signal is measured
    and no confound has a task-locked part beyond drift; unmeasured it keeps its registry severity."""
    from dataclasses import replace

    th = Thresholds()
    run = vb.make_study("motion_chance", 100018).runs[1]
    a = audit_design(run.design, run.roles, run.context, vb.CONTRASTS, th)
    ctc = [f for f in a.findings if f.code == "confound_task_correlated" and f.contrast is None]
    assert ctc and all(f.severity == "info" for f in ctc)
    assert {f.evidence["own_severity"] for f in ctc} == {"warn", "fail"}
    assert all("Not a cause here" in f.message for f in ctc)
    blind = audit_design(run.design, run.roles, replace(run.context, measured_signals=None), vb.CONTRASTS, th)
    assert {f.severity for f in blind.findings if f.code == "confound_task_correlated"} == {"warn", "fail"}


def _ar1_series(seed: int, n: int, rho: float, sd: float = 0.3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    e = rng.normal(0.0, sd * np.sqrt(1 - rho ** 2), n)
    x = np.empty(n)
    x[0] = rng.normal(0.0, sd)
    for i in range(1, n):
        x[i] = rho * x[i - 1] + e[i]
    return 500.0 * (1.0 + x / 100.0)


def test_transient_noise_is_the_spread_of_departures_from_the_running_level():
    """The transient noise is 1.4826 MAD of the steady volumes' departures from their running median (hand:
    scipy's median_filter), so AR(1) noise makes no ordinary volume stand out; the spread of first
    differences / √2 (the rule before) understates it by √(1 − ρ) and flags ordinary volumes."""
    from scipy.ndimage import median_filter

    from nbdiag.diagnostics.measured import LOCAL_WINDOW, TRANSIENT_K, _detect_transients, _standing_out

    s = _ar1_series(0, 300, 0.6)
    dev = 100.0 * (s / np.median(s) - 1.0)
    rough = median_filter(dev, size=2 * LOCAL_WINDOW + 1, mode="constant", cval=float(np.median(dev)))
    r = dev - rough
    hand = 1.4826 * np.median(np.abs(r - np.median(r)))
    got = _detect_transients("global_signal", s)
    assert abs(got.noise_percent - hand) < 1e-12 and got.threshold_percent == TRANSIENT_K * got.noise_percent
    new = old = 0
    steady = np.ones(300, bool)
    for seed in range(60):
        s = _ar1_series(seed, 300, 0.7)
        new += len(_detect_transients("global_signal", s).unflagged())
        dev = 100.0 * (s / np.median(s) - 1.0)
        d = np.diff(dev)
        diff_noise = 1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(2.0)
        old += int(_standing_out(dev, steady, set(), TRANSIENT_K * diff_noise)[0].sum())
    assert new == 0 and old >= 10, (new, old)
    spiky = _ar1_series(1, 300, 0.7)
    spiky[150] *= 1.03                                            # a 3 % spike in 0.3 % AR(1) noise is found
    assert _detect_transients("global_signal", spiky).unflagged() == [150]
    assert _detect_transients("global_signal", np.full(50, 500.0)) is None       # no spread: no noise
    assert _detect_transients("global_signal", np.array([500.0, 501.0])) is None  # too few volumes


def test_a_settling_head_is_counted_once_in_the_class_parts():
    """Run-start volumes absorbed into a slow settling's head leave the ``transient`` class: their part moves
    to ``run_edge`` (the settling's class), exactly (same steady level r, same fitted response), the parts
    still sum to the estimate, and the head stays out of the noise."""
    from nbdiag.diagnostics.measured import measure_signals
    from nbdiag.diagnostics.baseline import assess_baseline
    from nbdiag.design.contrasts import parse_contrasts
    from nbdiag.explain.audit import audit_design as audit

    design, roles, ctx, gs, fixed = _settling_run(4.0, 8.0, seed=2, t_r=2.0, n=200)
    a = audit(design, roles, ctx, vb.CONTRASTS, Thresholds())
    head = [v["volume"] for v in a.measured["signals"]["global_signal"]["transients"]["volumes"]]
    assert head and not any(f.code == "transient_unflagged" for f in a.findings)
    m = a.contrasts["zero_back"]["measured"]["global_signal"]
    assert "transient" not in m["by_class"]
    assert abs(sum(m["by_class"].values()) - m["estimate_ols"]) < 1e-9
    th = Thresholds()
    classes = assess_baseline(design, roles, ctx, th).scan_classes
    vecs = parse_contrasts(vb.CONTRASTS, design, roles).vectors
    task = [c for c in design.columns if roles[c] == "task"]
    before = measure_signals(ctx.measured_signals, design, vecs, classes, task_columns=task)
    after = measure_signals(ctx.measured_signals, design, vecs, classes, task_columns=task, settling_head=head)
    for name in vb.CONTRASTS:
        b, c = before.contrasts[name]["global_signal"], after.contrasts[name]["global_signal"]
        assert "transient" in b.by_class and "transient" not in c.by_class
        assert abs(c.by_class["run_edge"] - (b.by_class["run_edge"] + b.by_class["transient"])) < 1e-10
        assert abs(c.estimate - b.estimate) < 1e-12
    assert before.signals["global_signal"].residual_sd_percent == after.signals["global_signal"].residual_sd_percent
