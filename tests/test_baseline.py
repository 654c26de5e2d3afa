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


def test_epochs_exact():
    X, roles, ctx = _setup(unmodeled_events=UNMOD, nonsteady_volumes=(0, 1))
    # the 10-s gap between A and B is a transition gap only when short_gap_seconds > 10
    default = assess_baseline(X, roles, ctx)
    assert default.epochs[2]["kind"] == "fixation" and Thresholds().short_gap_seconds < 10
    res = assess_baseline(X, roles, ctx, Thresholds(short_gap_seconds=15.0))
    assert res.epochs == (
        {"start": 0.0, "duration": 4.0, "n_scans": 2, "kind": "nonsteady", "contains": []},
        {"start": 4.0, "duration": 6.0, "n_scans": 3, "kind": "run_edge", "contains": []},
        {"start": 30.0, "duration": 10.0, "n_scans": 5, "kind": "short_gap", "contains": []},
        {"start": 60.0, "duration": 10.0, "n_scans": 5, "kind": "fixation", "contains": []},
        {"start": 70.0, "duration": 5.0, "n_scans": 3, "kind": "unmodeled_event", "contains": ["C"]},
        {"start": 75.0, "duration": 25.0, "n_scans": 12, "kind": "run_edge", "contains": []},
    )
    # 2 long epochs (fixation 10 s, run_edge 25 s) < 3 -> scarce
    assert [f.code for f in res.findings] == ["baseline_scarce"]
    assert res.n_long_epochs == 2


def test_scan_classes_lagged_by_hrf():
    X, roles, ctx = _setup(unmodeled_events=UNMOD, nonsteady_volumes=(0, 1))
    classes = classify_scans(X, roles, ctx, Thresholds(short_gap_seconds=15.0))
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
