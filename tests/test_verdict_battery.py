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
    ("settling", 200),
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
