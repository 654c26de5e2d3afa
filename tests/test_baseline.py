"""Baseline epochs and scan classes on hand-written events."""

import numpy as np
import pandas as pd
import pytest
from nilearn.glm.first_level import make_first_level_design_matrix

from nbdiag.context import DesignContext
from nbdiag.diagnostics.baseline import assess_baseline, classify_scans
from nbdiag.thresholds import Thresholds

T_R, N = 2.0, 50
EVENTS = pd.DataFrame({"onset": [10.0, 40.0], "duration": [20.0, 20.0], "trial_type": ["A", "B"]})
UNMOD = pd.DataFrame({"onset": [70.0], "duration": [5.0], "trial_type": ["C"], "reason": ["dropped"]})


def _setup(events=EVENTS, **ctx):
    X = make_first_level_design_matrix(np.arange(N) * T_R, events, drift_model=None)
    roles = {c: ("constant" if c == "constant" else "task") for c in X}
    return X, roles, DesignContext(t_r=T_R, events=events, **ctx)


NOBLOCK = dict(block_min_seconds=25.0)   # the 20-s events A and B are not blocks


def test_epochs_exact():
    X, roles, ctx = _setup(unmodeled_events=UNMOD, nonsteady_volumes=(0, 1))
    # the 10-s gap between A and B is a transition gap only when short_gap_seconds > 10
    default = assess_baseline(X, roles, ctx, Thresholds(**NOBLOCK))
    assert default.epochs[2]["kind"] == "fixation" and Thresholds().short_gap_seconds < 10
    res = assess_baseline(X, roles, ctx, Thresholds(short_gap_seconds=15.0, **NOBLOCK))
    assert res.epochs == (
        {"start": 0.0, "duration": 4.0, "n_scans": 2, "kind": "nonsteady", "contains": [], "position": None},
        {"start": 4.0, "duration": 6.0, "n_scans": 3, "kind": "run_edge", "contains": [], "position": None},
        {"start": 30.0, "duration": 10.0, "n_scans": 5, "kind": "short_gap", "contains": [], "position": "transition"},
        {"start": 60.0, "duration": 10.0, "n_scans": 5, "kind": "fixation", "contains": [], "position": None},
        {"start": 70.0, "duration": 5.0, "n_scans": 3, "kind": "unmodeled_event", "contains": ["C"], "position": None},
        {"start": 75.0, "duration": 25.0, "n_scans": 12, "kind": "run_edge", "contains": [], "position": None},
    )
    # 2 long epochs (fixation 10 s, run_edge 25 s) < 3 -> scarce
    assert [f.code for f in res.findings] == ["baseline_scarce"]
    assert res.n_long_epochs == 2


def test_scan_classes_lagged_by_hrf():
    X, roles, ctx = _setup(unmodeled_events=UNMOD, nonsteady_volumes=(0, 1))
    classes = classify_scans(X, roles, ctx, Thresholds(short_gap_seconds=15.0, **NOBLOCK))
    assert len(classes) == N
    assert classes[:2] == ("nonsteady", "nonsteady")
    # block A: stimulus 10-30 s -> BOLD 14-34 s -> rows 7..16
    assert classes[6] == "run_edge" and classes[7] == "condition:A" and classes[16] == "condition:A"
    assert classes[17:22] == ("short_gap",) * 5           # 34-42 s BOLD = 30-38 s stimulus
    assert classes[37:40] == ("unmodeled_event",) * 3      # 74-78 s BOLD = 70-75 s stimulus
    assert classes[-1] == "run_edge"


def test_fallback_without_events_uses_regressors():
    X, roles, _ = _setup()
    classes = classify_scans(X, roles, DesignContext(t_r=T_R, events=None))
    assert "condition:A" in classes and "condition:B" in classes
    assert classes[0] == "run_edge" and classes[-1] == "run_edge"


def test_modeled_rest_by_name_and_by_tiling():
    ev = pd.concat([EVENTS, pd.DataFrame({"onset": [0.0, 30.0, 60.0], "duration": [10.0, 10.0, 40.0],
                                          "trial_type": ["FixCross", "FixCross", "FixCross"]})])
    X, roles, ctx = _setup(events=ev)
    res = assess_baseline(X, roles, ctx)
    assert res.modeled_rest == ("FixCross",)
    assert {f.code for f in res.findings} == {"baseline_modeled_rest", "baseline_scarce"}
    ev2 = ev.replace({"FixCross": "Other"})
    X, roles, ctx = _setup(events=ev2)
    assert assess_baseline(X, roles, ctx).modeled_rest == ("Other",)


def test_scan_index_must_match_rows():
    X, roles, _ = _setup()
    with pytest.raises(ValueError, match="scan_index"):
        classify_scans(X, roles, DesignContext(t_r=T_R, events=EVENTS, scan_index=(1, 2)))


def test_pre_block_time_is_short_gap_by_position():
    """Unmodelled time ending at a block onset: its last pre_block_seconds are cue-like (short_gap)."""
    X, roles, ctx = _setup(unmodeled_events=UNMOD, nonsteady_volumes=(0, 1))
    res = assess_baseline(X, roles, ctx, Thresholds(pre_block_seconds=6.0))
    kinds = [(e["start"], e["duration"], e["kind"], e["position"]) for e in res.epochs]
    assert kinds == [
        (0.0, 4.0, "nonsteady", None),           # flagged volumes keep priority
        (4.0, 6.0, "short_gap", "pre_block"),    # last 6 s before block A (10 s)
        (30.0, 4.0, "fixation", None),           # 10-s gap A -> B: first 4 s fixation ...
        (34.0, 6.0, "short_gap", "pre_block"),   # ... last 6 s before block B
        (60.0, 10.0, "fixation", None),          # after the last block: no block follows
        (70.0, 5.0, "unmodeled_event", None),
        (75.0, 25.0, "run_edge", None),
    ]
    # a modelled short event (a cue) right before each block turns the gaps back into fixation
    cue = pd.DataFrame({"onset": [6.0, 36.0], "duration": [4.0, 4.0], "trial_type": ["CUE", "CUE"]})
    X2, roles2, ctx2 = _setup(events=pd.concat([EVENTS, cue]), unmodeled_events=UNMOD)
    res2 = assess_baseline(X2, roles2, ctx2, Thresholds(pre_block_seconds=6.0))
    assert not [e for e in res2.epochs if e["kind"] == "short_gap"]
    assert [e["kind"] for e in res2.epochs if e["start"] == 30.0] == ["fixation"]


def test_block_onsets_runs_of_trials():
    from nbdiag.diagnostics.baseline import block_onsets
    trials = pd.DataFrame({"onset": [10.0 + 2.4 * i for i in range(10)] + [50.0 + 2.4 * i for i in range(5)],
                           "duration": [2.4] * 15, "trial_type": ["A"] * 10 + ["B"] * 5})
    # A: 10 trials = 24 s (a block); B: 5 trials = 12 s (not a block)
    assert block_onsets(DesignContext(t_r=T_R, events=trials), Thresholds()) == [10.0]
    assert block_onsets(DesignContext(t_r=T_R, events=trials), Thresholds(block_min_seconds=10.0)) == [10.0, 50.0]
