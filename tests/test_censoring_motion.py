"""Censoring and motion per condition (issue 23) against hand counts and numpy."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from nbdiag.core import codes
from nbdiag.config import ModelSettings
from nbdiag.design.context import DesignContext
from nbdiag.design.matrix import build_design
from nbdiag.diagnostics.censoring import activity, assess_censoring, condition_columns, full_task
from nbdiag.diagnostics.motion import assess_motion
from nbdiag.core.thresholds import Thresholds

T_R = 2.0
N = 100
# boxcar conditions (hrf_model=None): a scan is in a condition exactly while its event lasts
EVENTS = pd.DataFrame({"onset": [10.0, 50.0, 90.0, 130.0], "duration": [20.0, 20.0, 20.0, 20.0],
                       "trial_type": ["a", "b", "a", "b"]})


def _in(name):
    times = np.arange(N) * T_R
    ev = EVENTS[EVENTS.trial_type == name]
    return np.array([any(o <= t < o + d for o, d in zip(ev.onset, ev.duration)) for t in times])


def _run(removed, hrf_model=None, nonsteady=(), scrub=(), motion=None, strategy=("motion",)):
    mask = [i for i in range(N) if i not in set(removed)] if removed is not None else None
    built = build_design(EVENTS, None, N, T_R, 0.0, ModelSettings(hrf_model=hrf_model), sample_mask=mask)
    ctx = DesignContext(t_r=T_R, hrf_model=hrf_model, events=EVENTS, scan_index=built.scan_index, n_scans_total=N,
                        unmasked_task=built.unmasked_task, nonsteady_volumes=tuple(nonsteady),
                        scrub_volumes=tuple(scrub), confounds_strategy=strategy, motion=motion,
                        sample_mask_applied=mask is not None)
    return built, ctx


def test_censoring_per_condition_matches_a_hand_count():
    in_a, in_b = _in("a"), _in("b")
    # remove 4 scans of a (5, 6, 7, 45), 9 scans of b (25..33) and 2 baseline scans (0, 1)
    a_scans = [5, 6, 7, 45]
    b_scans = list(range(25, 34))
    removed = [0, 1] + a_scans + b_scans
    assert in_a[a_scans].all() and in_b[b_scans].all() and not (in_a | in_b)[[0, 1]].any()
    built, ctx = _run(removed, nonsteady=(0, 1))
    res = assess_censoring(built.design, built.roles, ctx)
    m = res.section["masks"]["applied"]
    assert m["conditions"]["a"] == {"n_scans": int(in_a.sum()), "n_censored": 4, "fraction": 4 / in_a.sum()}
    assert m["conditions"]["b"] == {"n_scans": int(in_b.sum()), "n_censored": 9, "fraction": 9 / in_b.sum()}
    base = ~(in_a | in_b)
    assert m["baseline"] == {"n_scans": int(base.sum()), "n_censored": 2, "fraction": 2 / base.sum()}
    assert m["run"] == {"n_scans": N, "n_censored": 15, "fraction": 0.15}
    X = built.design.to_numpy()
    assert m["dof_left"] == X.shape[0] - np.linalg.matrix_rank(X) == N - 15 - m["rank_kept"]
    # load_confounds' mask (the non-steady volumes) is inside the applied mask
    assert res.section["masks"]["load_confounds"]["removed_volumes"] == [0, 1]
    # b loses 9/20 = 0.45 (warn at AFNI's 0.4), a 4/20 = 0.2 (info at 0.2), run 0.15 (info at 0.1)
    sev = {(f.code, f.evidence.get("condition")): f.severity for f in res.findings}
    assert sev == {("censored_condition", "a"): "info", ("censored_condition", "b"): "warn",
                   ("censored_run", None): "info"}


@pytest.mark.parametrize("n_b, expected", [(3, None), (4, "info"), (7, None), (8, "warn"), (11, None), (12, "fail")])
def test_condition_fraction_fires_at_afni_levels(n_b, expected):
    # b has 20 scans: 4/20 = 0.2, 8/20 = 0.4, 12/20 = 0.6 are AFNI's levels; one scan fewer is below
    b_scans = list(range(25, 25 + min(n_b, 10))) + list(range(65, 65 + max(n_b - 10, 0)))
    built, ctx = _run(b_scans)
    res = assess_censoring(built.design, built.roles, ctx)
    found = [f for f in res.findings if f.code == codes.CENSORED_CONDITION.code]
    frac = res.section["masks"]["applied"]["conditions"]["b"]["fraction"]
    assert frac == n_b / 20
    below = {3: "none", 7: "info", 11: "warn"}
    if expected is None:
        assert [f.severity for f in found] == ([] if below[n_b] == "none" else [below[n_b]])
    else:
        assert [f.severity for f in found] == [expected]


def test_run_fraction_levels_and_overridable_thresholds():
    for n_removed, expected in ((9, []), (10, ["info"]), (20, ["warn"]), (50, ["fail"])):
        removed = list(range(N - n_removed, N))
        built, ctx = _run(removed)
        res = assess_censoring(built.design, built.roles, ctx)
        assert [f.severity for f in res.findings if f.code == "censored_run"] == expected, n_removed
    th = Thresholds.from_mapping({"censor_run_info": 0.05})
    built, ctx = _run(list(range(94, 100)))
    res = assess_censoring(built.design, built.roles, ctx, th)
    assert [f.severity for f in res.findings if f.code == "censored_run"] == ["info"]


def test_load_confounds_mask_not_applied_is_info_and_counted():
    # first_level_from_bids: the mask is dropped, so nothing is censored in the fit; the scrubbed scans are counted
    in_b = _in("b")
    scrub = list(range(25, 40))
    built, ctx = _run(None, scrub=scrub)
    res = assess_censoring(built.design, built.roles, ctx)
    assert res.section["masks"]["applied"] is None
    m = res.section["masks"]["load_confounds"]
    assert m["applied"] is False
    assert m["conditions"]["b"]["n_censored"] == int(in_b[scrub].sum())
    assert m["dof_left"] == N - 15 - np.linalg.matrix_rank(built.design.to_numpy()[[i not in scrub for i in range(N)]])
    assert res.findings and all(f.severity == "info" for f in res.findings)
    assert {f.evidence["level"] for f in res.findings} == {"info", "warn"}  # b: 10/20 = 0.5 -> warn level, run 0.15 info
    # no volume flagged: no load_confounds entry
    built, ctx = _run(None)
    assert assess_censoring(built.design, built.roles, ctx).section["masks"]["load_confounds"] is None


def test_activity_with_glover_counts_the_response_not_the_undershoot():
    built, ctx = _run(None, hrf_model="glover")
    task = full_task(built.design, built.roles, ctx)
    act = activity(task, condition_columns(task, ctx))
    x = task["a"].to_numpy()
    assert np.array_equal(act["a"], x > 0.01 * x.max())
    assert (x < 0).any() and not act["a"][x < 0].any()
    # derivative columns are not conditions
    built, ctx = _run(None, hrf_model="glover + derivative")
    task = full_task(built.design, built.roles, replace(ctx, hrf_model="glover + derivative"))
    assert condition_columns(task, ctx) == {"a": ["a"], "b": ["b"]}
    # without events (a saved design) every non-derivative task column is a condition
    assert list(condition_columns(task, replace(ctx, events=None))) == ["a", "b"]


def test_activity_reads_all_negative_modulation_and_fir():
    task = pd.DataFrame({"neg": -np.r_[0, 1.0, 2, 0.5, 0], "c_delay_0": [0, 1.0, 0, 0, 0],
                         "c_delay_1": [0, 0, 1.0, 0, 0]})
    act = activity(task, {"neg": ["neg"], "c": ["c_delay_0", "c_delay_1"]})
    assert act["neg"].tolist() == [False, True, True, True, False]
    assert act["c"].tolist() == [False, True, True, False, False]
    ctx = DesignContext(t_r=2.0, events=pd.DataFrame({"onset": [0], "duration": [1], "trial_type": ["c"]}))
    assert condition_columns(task, ctx) == {"c": ["c_delay_0", "c_delay_1"]}


def _motion():
    rng = np.random.default_rng(3)
    fd = 0.1 + 0.02 * rng.random(N)
    fd[_in("b")] += 0.5  # raised during b
    fd[0] = np.nan
    dv = 1.0 + 0.1 * rng.random(N)
    dv[0] = np.nan
    return {"framewise_displacement": fd, "std_dvars": dv}


def test_motion_per_condition_against_numpy():
    mot = _motion()
    removed = [30, 31]
    built, ctx = _run(removed, motion=mot, hrf_model="glover")
    res = assess_motion(built.design, built.roles, ctx)
    task = full_task(built.design, built.roles, ctx)
    act = activity(task, condition_columns(task, ctx))
    fd = mot["framewise_displacement"]
    s = res.section["series"]["framewise_displacement"]
    for name in ("a", "b"):
        assert s["mean"]["conditions"][name] == pytest.approx(np.nanmean(fd[act[name]]), rel=1e-12)
    base = ~(act["a"] | act["b"])
    assert s["mean"]["baseline"] == pytest.approx(np.nanmean(fd[base]), rel=1e-12)
    assert s["mean"]["run"] == pytest.approx(np.nanmean(fd), rel=1e-12)
    kept = np.ones(N, bool)
    kept[removed] = False
    assert s["mean_kept"]["conditions"]["b"] == pytest.approx(np.nanmean(fd[act["b"] & kept]), rel=1e-12)
    assert s["mean"]["conditions"]["b"] > s["mean"]["conditions"]["a"] + 0.3
    # Pearson r against numpy over the finite rows, on the regressors before the mask
    ok = np.isfinite(fd)
    for col in ("a", "b"):
        ref = np.corrcoef(fd[ok], task[col].to_numpy()[ok])[0, 1]
        assert s["r"][col] == pytest.approx(ref, abs=1e-12)
    assert res.section["missing"] == ["dvars"]
    by_code = {}
    for f in res.findings:
        by_code.setdefault(f.code, []).append(f)
    assert [f.evidence["regressor"] for f in by_code["motion_task_correlated"]] == ["b"]
    assert by_code["motion_task_correlated"][0].severity == ("fail" if s["r"]["b"] >= 0.7 else "warn")
    assert by_code["motion_columns_missing"][0].evidence["missing"] == ["dvars"]
    assert "dvars" in by_code["motion_columns_missing"][0].message


def test_motion_without_confounds_file_says_so():
    built, ctx = _run(None)
    res = assess_motion(built.design, built.roles, ctx)
    assert res.section["source"] is None and "not computed" in res.section["note"] and not res.findings


def test_audit_models_with_user_sample_masks_counts_censoring_per_condition(small_bids):
    """End to end: sample_masks passed to nbdiag.audit_models (as to FirstLevelModel.fit); the censoring
    section is checked against a hand count on nilearn's own unmasked design."""
    import warnings

    import nibabel as nib
    from nilearn.glm.first_level import first_level_from_bids

    import nbdiag
    from nbdiag.report.subject import reviewer_keynums
    from record_schema import validate_record

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models, imgs, events, confounds = first_level_from_bids(
            small_bids, "nback", space_label="MNI152NLin6Asym", img_filters=[("desc", "preproc")],
            derivatives_folder="derivatives/fmriprep", high_pass=0.005,
            confounds_strategy=("motion", "non_steady_state"), confounds_motion="basic")
        confounds = [c if isinstance(c, list) else [c] for c in confounds]
        plain = nbdiag.audit_models(models[:1], imgs[:1], events[:1], confounds[:1])
        design = plain.designs[0]
        n = nib.load(imgs[0][0]).shape[3]
        conds = [c for c in design.columns if c in set(events[0][0]["trial_type"].astype(str))]
        x = {c: design[c].to_numpy() for c in conds}
        in_cond = {c: x[c] > 0.01 * x[c].max() for c in conds}
        # remove the first 6 scans where the first condition is in, and scans 0-2
        first = np.flatnonzero(in_cond[conds[0]])[:6]
        removed = sorted(set(first) | {0, 1, 2})
        mask = np.array([i for i in range(n) if i not in removed])
        masked = nbdiag.audit_models(models[:1], [imgs[0][:1]], [events[0][:1]], [confounds[0][:1]],
                                     sample_masks=[[mask]])
    record = masked.records[0]
    validate_record(record)
    applied = record["diagnostics"]["censoring"]["masks"]["applied"]
    assert applied["removed_volumes"] == removed
    for c in conds:
        assert applied["conditions"][c]["n_scans"] == int(in_cond[c].sum())
        assert applied["conditions"][c]["n_censored"] == int(in_cond[c][removed].sum())
    assert applied["run"]["n_censored"] == len(removed)
    assert applied["dof_left"] == record["diagnostics"]["confounds"]["dof"]
    assert any(k.startswith("censored per condition (mask applied)") for k, _ in reviewer_keynums(record))
    motion = record["diagnostics"]["motion"]
    assert motion["source"] == "confounds" and "framewise_displacement" in motion["columns"]


def test_reviewer_keynums_rows():
    from nbdiag.report.subject import reviewer_keynums

    from report_examples import example_run, minimal_record

    assert reviewer_keynums(minimal_record()) == []

    def counts(fraction, n_censored=0):
        return {"n_scans": 10, "n_censored": n_censored, "fraction": fraction}

    def block(n_columns, **numbers):
        return {"columns": [], "n_columns": n_columns, "condition_number": None, "afni_condition": None,
                "afni_rating": None, "n_near_zero": 0, "fsl_sv_ratio": None, "fsl_rank_deficient": None,
                "condition_number_unscaled": None, **numbers}

    mask = {"removed_volumes": [], "applied": False, "run": counts(0.1, 10), "conditions": {"a": counts(0.5)},
            "baseline": counts(0.0), "conditions_by_events": None, "baseline_by_events": None, "n_kept": 90,
            "rank_kept": 10, "dof_left": 80, "n_regressors": 10}
    record, _ = example_run()
    diag = record["diagnostics"]
    diag["censoring"] = {"in_fraction": 0.5, "conditions": {}, "n_scans_total": 100,
                         "masks": {"applied": None, "load_confounds": mask}}
    diag["motion"] = {"source": "confounds", "columns": ["framewise_displacement"], "missing": ["dvars"],
                      "series": {"framewise_displacement": {"mean": {"conditions": {"a": 0.3}, "baseline": 0.1},
                                                            "r": {"a": 0.45, "b": None}}}}
    diag["collinearity"]["correlation_pairs"] = [{"columns": ["a", "drift_1"], "pair": "task×drift", "r": 0.5,
                                                  "cosine": None, "tier": "medium"}]
    diag["collinearity"]["condition_blocks"] = {
        "whole": block(3, afni_condition=25.0, afni_rating="GOOD", n_near_zero=1, fsl_sv_ratio=1e-8,
                       fsl_rank_deficient=True),
        "drift": block(0)}
    rows = dict(reviewer_keynums(record))
    assert rows["censored per condition if load_confounds' mask were applied"].startswith("a 50")
    assert "largest |r| with a task regressor 0.45 (a)" in rows["mean framewise_displacement per condition"]
    assert rows["motion columns missing"] == "dvars"
    assert rows["correlation tiers (AFNI)"] == "1 medium; task×drift: a×drift_1 0.5"
    assert rows["condition number by block (AFNI)"].startswith("whole 25 GOOD (1 near-zero)")
    assert rows["condition number by block (AFNI)"].endswith("< 1e-7")


def test_condition_without_scans_has_no_fraction_and_no_finding():
    n = 40
    a = np.zeros(n)
    a[5:15] = 1.0
    design = pd.DataFrame({"a": a, "z": np.zeros(n), "constant": np.ones(n)})
    roles = {"a": "task", "z": "task", "constant": "constant"}
    events = pd.DataFrame({"onset": [10.0, 0.0], "duration": [20.0, 0.0], "trial_type": ["a", "z"]})
    ctx = DesignContext(t_r=T_R, events=events, nonsteady_volumes=tuple(range(12)), confounds_strategy=("motion",))
    res = assess_censoring(design, roles, ctx)
    m = res.section["masks"]["load_confounds"]
    assert m["conditions"]["z"] == {"n_scans": 0, "n_censored": 0, "fraction": None}
    assert m["conditions"]["a"] == {"n_scans": 10, "n_censored": 7, "fraction": 0.7}
    assert [f.evidence.get("condition") for f in res.findings if f.code == "censored_condition"] == ["a"]


def test_counts_by_event_timing_match_a_hand_count_with_glover():
    # the glover response lags the events: by response the first scans of a block are not "in" yet;
    # by event timing every scan acquired while the event is on is counted
    in_a, in_b = _in("a"), _in("b")
    a_scans, b_scans = [5, 6, 7, 45], list(range(25, 34))
    built, ctx = _run([0, 1] + a_scans + b_scans, hrf_model="glover")
    res = assess_censoring(built.design, built.roles, ctx)
    m = res.section["masks"]["applied"]
    assert m["conditions_by_events"]["a"] == {"n_scans": int(in_a.sum()), "n_censored": 4, "fraction": 0.2}
    assert m["conditions_by_events"]["b"] == {"n_scans": int(in_b.sum()), "n_censored": 9, "fraction": 0.45}
    assert m["baseline_by_events"]["n_censored"] == 2
    assert m["conditions"]["a"]["n_censored"] < 4  # scan 5 is the block's first: the response is not up yet
    # a zero-duration event marks the scan its onset falls in; events past the run are ignored
    from nbdiag.diagnostics.censoring import event_activity

    ev = pd.DataFrame({"onset": [3.0, 4.0, 999.0], "duration": [0.0, 2.5, 1.0], "trial_type": ["i", "j", "i"]})
    act = event_activity(DesignContext(t_r=2.0, events=ev), {"i": ["i"], "j": ["j"]}, 5)
    assert act["i"].tolist() == [False, True, False, False, False]
    assert act["j"].tolist() == [False, False, True, True, False]
    assert event_activity(DesignContext(t_r=2.0), {}, 5) is None


def test_motion_by_event_timing_against_numpy():
    mot = _motion()
    built, ctx = _run(None, motion=mot, hrf_model="glover")
    s = assess_motion(built.design, built.roles, ctx).section["series"]["framewise_displacement"]
    fd = mot["framewise_displacement"]
    assert s["mean_by_events"]["conditions"]["b"] == pytest.approx(np.nanmean(fd[_in("b")]), rel=1e-12)
    assert s["mean_by_events"]["baseline"] == pytest.approx(np.nanmean(fd[~(_in("a") | _in("b"))]), rel=1e-12)
    assert s["mean_by_events"]["conditions"]["b"] - 0.5 == pytest.approx(
        np.nanmean(fd[~(_in("a") | _in("b"))]), abs=0.02)  # FD raised by 0.5 mm during b
