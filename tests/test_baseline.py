"""Baseline epochs and scan classes on hand-written events."""

import numpy as np
import pandas as pd
import pytest
from nilearn.glm.first_level import make_first_level_design_matrix

from nbdiag.design.context import DesignContext
from nbdiag.diagnostics.baseline import assess_baseline, classify_scans
from nbdiag.core.thresholds import Thresholds

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
    assert res.findings[-1].evidence["rule"] == {"FixCross": "name token 'fix'"}
    # never by elimination (issue 11): a tiling condition without a rest-like name is not called rest,
    # the run is said to have no implicit baseline left; the user can declare it rest-like
    ev2 = ev.replace({"FixCross": "Other"})
    X, roles, ctx = _setup(events=ev2)
    res2 = assess_baseline(X, roles, ctx)
    assert res2.modeled_rest == ()
    scarce = next(f for f in res2.findings if f.code == "baseline_scarce")
    assert res2.fraction < 0.05 and scarce.evidence["rule"] == "conditions_cover_the_run"
    assert "no implicit baseline is left" in scarce.message
    from dataclasses import replace
    res3 = assess_baseline(X, roles, replace(ctx, rest_conditions=("Other",)))
    assert res3.modeled_rest == ("Other",)
    rest = next(f for f in res3.findings if f.code == "baseline_modeled_rest")
    assert rest.evidence["rule"] == {"Other": "setting rest_conditions"}
    assert "setting rest_conditions" in rest.message


@pytest.mark.parametrize("name", ["control", "Baseline", "ITI", "null_event", "blank2", "cross", "Pause", "isi"])
def test_rest_words(name):
    from nbdiag.diagnostics.baseline import _rest_like_by_name
    assert _rest_like_by_name(name)
    assert not _rest_like_by_name("zero_back") and not _rest_like_by_name("INSTRUCTION")


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


# ---------------------------------------------------------------- vectorised classification
def _active_condition_reference(s, modeled, rt_name):
    """The per-scan loop the vectorised ``_active_conditions`` replaced."""
    best, best_on, rt_hit = None, -np.inf, None
    for a, b, tt in modeled:
        if a <= s < b:
            if rt_name is not None and tt == rt_name:
                rt_hit = tt
                continue
            if a > best_on:
                best, best_on = tt, a
    return best if best is not None else rt_hit


def _classify_reference(design, roles, context, thresholds):
    """Events path of ``_classify`` as a plain loop per scan (two timeline builds)."""
    from nbdiag.diagnostics import baseline as bl

    n = len(design)
    times = np.asarray(design.index, dtype=float)
    lag = bl.hrf_lag(context)
    ns_rows = bl.present_nonsteady(design, context)
    edge = bl._edge_rows(n, thresholds.edge_fraction)
    tl = bl._timeline(design, context, thresholds, with_nonsteady=False)
    rt_name = bl._rt_name(design, roles, context)
    classes, active = [], np.zeros(n, dtype=bool)
    for i, t in enumerate(times):
        s = t - lag
        cond = _active_condition_reference(s, tl.modeled, rt_name)
        active[i] = cond is not None
        if ns_rows[i]:
            classes.append("nonsteady")
        elif cond is not None:
            classes.append(f"condition:{cond}")
        elif s < 0:
            classes.append("run_edge")
        else:
            kind = "fixation"
            for p in tl.pieces:
                if p["start"] <= s < p["end"]:
                    kind = p["kind"]
                    break
            if kind == "fixation" and edge[i]:
                kind = "run_edge"
            classes.append(kind)
    pieces = bl._timeline(design, context, thresholds, with_nonsteady=True).pieces
    return tuple(classes), active, pieces


def _random_layout(rng):
    t_r = float(rng.choice([0.8, 1.5, 2.0]))
    n_tot = int(rng.integers(20, 90))
    run = n_tot * t_r
    n_ev = int(rng.integers(0, 25))
    types = ["A", "B", "fixation", "RTDur"]
    # onsets on a half-TR grid (exact boundary hits), some repeated (ties), durations incl. 0
    onsets = rng.integers(-4, int(2 * run / t_r), n_ev) * (t_r / 2)
    if n_ev > 3:
        onsets[1] = onsets[0]
    durs = rng.choice([0.0, t_r / 2, t_r, 3.0, 10.0, 25.0], n_ev)
    tts = rng.choice(types, n_ev)
    events = pd.DataFrame({"onset": onsets, "duration": durs, "trial_type": tts})
    n_un = int(rng.integers(0, 4))
    unmod = pd.DataFrame({"onset": rng.uniform(0, run, n_un), "duration": rng.choice([0.0, 2.0, 6.0], n_un),
                          "trial_type": rng.choice(["cue", "resp"], n_un), "reason": ["dropped"] * n_un})
    nonsteady = tuple(range(int(rng.integers(0, 4))))
    scan_index = None
    if rng.random() < 0.3 and nonsteady:
        scan_index = tuple(range(len(nonsteady) - 1, n_tot))  # a sample mask dropping some volumes
    rows = np.arange(n_tot) if scan_index is None else np.asarray(scan_index)
    cols = sorted(set(tts) | {"A"}) + ["constant"]
    design = pd.DataFrame(rng.random((rows.size, len(cols))), columns=cols, index=rows * t_r)
    roles = {c: ("constant" if c == "constant" else "task") for c in cols}
    hrf = str(rng.choice(["glover", "spm + derivative", "fir"]))
    ctx = DesignContext(t_r=t_r, hrf_model=hrf, events=events, unmodeled_events=unmod,
                        nonsteady_volumes=nonsteady, scan_index=scan_index, n_scans_total=n_tot,
                        rt_regressor="RTDur" if "RTDur" in cols and rng.random() < 0.5 else None)
    th = Thresholds(short_gap_seconds=float(rng.choice([4.0, 8.0, 15.0])),
                    pre_block_seconds=float(rng.choice([0.0, 3.0, 5.0])),
                    block_min_seconds=float(rng.choice([5.0, 20.0])))
    return design, roles, ctx, th


@pytest.mark.parametrize("seed", range(60))
def test_vectorised_classification_equals_reference_loop(seed):
    from nbdiag.diagnostics.baseline import _classify

    design, roles, ctx, th = _random_layout(np.random.default_rng(seed))
    classes, active, pieces = _classify(design, roles, ctx, th)
    ref_classes, ref_active, ref_pieces = _classify_reference(design, roles, ctx, th)
    assert classes == ref_classes
    assert np.array_equal(active, ref_active)
    assert pieces == ref_pieces


def test_active_conditions_ties_and_rt_fallback():
    from nbdiag.diagnostics.baseline import _active_conditions

    modeled = [(0.0, 10.0, "A"), (0.0, 10.0, "B"), (5.0, 8.0, "RTDur"), (12.0, 14.0, "RTDur"), (6.0, 7.0, "C")]
    s = np.array([-1.0, 0.0, 5.0, 6.0, 7.0, 9.999, 10.0, 12.0, 14.0])
    got = _active_conditions(s, modeled, "RTDur")
    assert got == [_active_condition_reference(x, modeled, "RTDur") for x in s]
    # equal onsets: the first event wins; latest onset wins; RT only when nothing else is active
    assert got == [None, "A", "A", "C", "A", "A", None, "RTDur", None]
    # without an RT regressor the RT-named condition is an ordinary condition
    assert _active_conditions(s, modeled, None) == [_active_condition_reference(x, modeled, None) for x in s]
    assert _active_conditions(np.array([1.0]), [], "RTDur") == [None]
