"""Scenario designs with a known cause: bias exists in nilearn's fit, cause ranked first."""

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from nback_scenarios import T_R, build, fit_effects, layout, motion, rtdur, split, trials, truth, white_motion  # noqa: E402

from nbdiag.design.context import DesignContext
from nbdiag.explain.audit import audit_design
from nbdiag.diagnostics.sensitivity import signal_library

N = 600
HP = 0.005   # the forum setting; 0.008 would cut the 157-s block cycle (drift_overlap fail)
C = {"zero_back": "zero_back", "two_back": "two_back", "two_back - zero_back": "two_back - zero_back"}
SIGN_FLIP = ("baseline_", "sensitive_unmodeled_signal", "nonsteady_unhandled")
EV, _ = layout(N, between_fix=21.0)


def _first(audit, name):
    return [f for f in audit.findings if f.contrast == name][0]


def _flagged(audit, name, code):
    return [f for f in audit.findings if f.contrast == name and f.code == code and f.severity in ("warn", "fail")]


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _signal(design, roles, ctx, source):
    return next(s for s in signal_library(design, roles, ctx) if s.source == source).values


def test_clean_design_has_no_sign_flip_finding():
    keep = EV[EV.trial_type != "fixation"]
    X, roles = build(keep, N, high_pass=HP, confounds=motion(N))
    audit = audit_design(X, roles, DesignContext(t_r=T_R, events=keep, high_pass=HP), C)
    bad = [f for f in audit.findings if f.code.startswith(SIGN_FLIP) and f.severity in ("warn", "fail")]
    assert bad == []
    text = audit.contrasts["zero_back"]["explanation"]
    assert "No measured cause in this design moves zero_back by the warn size (0.5 σ)" in text


def test_unhandled_nonsteady_ranked_first():
    keep = EV[EV.trial_type != "fixation"]
    X, roles = build(keep, N, high_pass=HP, confounds=motion(N))
    ctx = DesignContext(t_r=T_R, events=keep, high_pass=HP, nonsteady_volumes=(0, 1, 2, 3),
                        raw_confound_columns=tuple(f"non_steady_state_outlier0{i}" for i in range(4)),
                        confounds_strategy=("motion", "non_steady_state"))
    audit = audit_design(X, roles, ctx, C)
    # the bias exists in nilearn's own fit: bright first volumes flip zero_back
    m = _signal(X, roles, ctx, "nonsteady")                      # the T1 excess itself (56 % at volume 0)
    y = truth(X, zero=0.1)
    e0, e1 = fit_effects(X, y, list(C)), fit_effects(X, y + m, list(C))
    assert e0["zero_back"] > 0 > e1["zero_back"]
    assert e1["two_back - zero_back"] > 0
    assert _first(audit, "zero_back").code == "nonsteady_unhandled"
    # with these (random-walk) motion regressors the first volumes also pull the differential
    # down; it is flagged only on its own numbers, which are what nilearn's fit moves by
    flagged = _flagged(audit, "two_back - zero_back", "nonsteady_unhandled")
    e = next(x for x in audit.contrasts["two_back - zero_back"]["sensitivity"] if x["source"] == "nonsteady")
    np.testing.assert_allclose(e1["two_back - zero_back"] - e0["two_back - zero_back"], e["bias"], rtol=1e-6)
    assert e["bias_sd"] <= -0.5
    assert len(flagged) == 1 and flagged[0].evidence["bias_sd"] == pytest.approx(e["bias_sd"])
    assert "first_level_from_bids drops the sample mask" in audit.contrasts["zero_back"]["explanation"]
    fix = next(w for w in audit.whatif if w["fix"] == "apply sample mask")
    z = fix["contrasts"]["zero_back"]
    assert z["max_abs_bias_sd_after"] < z["max_abs_bias_sd_before"]


def test_unmodeled_cues_ranked_first():
    keep, un = split(EV, drop=("fixation", "INSTRUCTION"))
    X, roles = build(keep, N, high_pass=HP, confounds=motion(N))
    ctx = DesignContext(t_r=T_R, events=keep, unmodeled_events=un, high_pass=HP)
    audit = audit_design(X, roles, ctx, C)
    m = 2.0 * _signal(X, roles, ctx, "unmodeled:INSTRUCTION")   # 1 % response to each cue screen
    y = truth(X, zero=0.3)
    e0, e1 = fit_effects(X, y, list(C)), fit_effects(X, y + m, list(C))
    assert e0["zero_back"] > 0 > e1["zero_back"]
    assert e1["two_back - zero_back"] > 0
    top = _first(audit, "zero_back")
    assert top.code == "baseline_unmodeled_events" and top.severity == "fail"
    assert not [f for f in _flagged(audit, "two_back - zero_back", "baseline_unmodeled_events") if f.severity == "fail"]
    assert any(w["fix"] == "model unmodelled events" for w in audit.whatif)


def test_modeled_fixation_tiling_ranked_first():
    X, roles = build(EV, N, high_pass=HP, confounds=motion(N))
    ctx = DesignContext(t_r=T_R, events=EV, high_pass=HP)
    audit = audit_design(X, roles, ctx, C)
    m = 2.0 * _signal(X, roles, ctx, "run_start")               # 2 % settling at run start
    y = truth(X, zero=0.2)
    e0, e1 = fit_effects(X, y, list(C)), fit_effects(X, y + m, list(C))
    assert e0["zero_back"] > 0 > e1["zero_back"]
    assert e1["two_back - zero_back"] > 0
    assert _first(audit, "zero_back").code == "baseline_modeled_rest"
    assert not _flagged(audit, "two_back - zero_back", "baseline_modeled_rest")


def _epoch_signal(design, roles, ctx, source):
    from nbdiag.diagnostics.baseline import assess_baseline
    epochs = assess_baseline(design, roles, ctx).epochs
    return next(s for s in signal_library(design, roles, ctx, epochs=epochs) if s.source == source).values


def _sign_flip_flags(audit, name):
    return [f for f in audit.findings if f.contrast == name and f.severity in ("warn", "fail")
            and f.code.startswith(SIGN_FLIP + ("rt_",))]


# Forum-shaped runs: TR 0.8 s, 522 volumes, six 48-s blocks with 9.6-s instruction screens, 10.4-s
# fixation between blocks, drift_model cosine, high_pass 0.005, 6 motion parameters (confounds_motion
# 'basic'); the non_steady_state columns become a sample mask that first_level_from_bids drops.
NF = 522
FEV, _ = layout(NF, between_fix=10.4)
FKEEP = FEV[FEV.trial_type != "fixation"]


def test_forum_shaped_nonsteady_first_and_clean_quiet():
    X, roles = build(FKEEP, NF, high_pass=0.005, confounds=white_motion(NF))
    nss = DesignContext(t_r=T_R, events=FKEEP, high_pass=0.005, nonsteady_volumes=(0, 1, 2, 3),
                        raw_confound_columns=tuple(f"non_steady_state_outlier0{i}" for i in range(4)),
                        confounds_strategy=("motion", "non_steady_state"))
    audit = audit_design(X, roles, nss, C)
    m = _signal(X, roles, nss, "nonsteady")          # the T1 excess of the 4 flagged volumes
    y = truth(X, zero=0.3, two=1.0)
    e0, e1 = fit_effects(X, y, list(C)), fit_effects(X, y + m, list(C))
    assert e0["zero_back"] > 0 > e1["zero_back"] and e1["two_back - zero_back"] > 0
    top = _first(audit, "zero_back")
    # issue 20: nothing is measured here (no global_signal), so the size is the assumed T1 excess: a
    # hypothesis, worded "if … then …", that never fails the contrast (the run-level finding still fails:
    # an unmeasurable risk)
    assert top.code == "nonsteady_unhandled" and top.severity == "warn"
    assert top.evidence["bias_sd"] <= -2.0 and "if the data held" in top.message
    assert next(f for f in audit.findings if f.code == "nonsteady_unhandled" and f.contrast is None).severity == "fail"
    # the differential is raised by the bright first volumes: issue 11 (both directions) flags that too,
    # worded for what it does, with the bias nilearn's fit moves by
    assert e1["two_back - zero_back"] > e0["two_back - zero_back"]
    diff = _first(audit, "two_back - zero_back")
    assert diff.code == "nonsteady_unhandled" and diff.evidence["bias_sd"] >= 0.5
    assert "would inflate two_back - zero_back" in diff.message
    np.testing.assert_allclose(diff.evidence["bias_percent"], e1["two_back - zero_back"] - e0["two_back - zero_back"],
                               rtol=1e-6)
    assert "first_level_from_bids drops the sample mask" in audit.contrasts["zero_back"]["explanation"]
    # clean: same run, nothing flagged -> no warn/fail sign-flip finding at all, none for zero_back
    clean = audit_design(X, roles, DesignContext(t_r=T_R, events=FKEEP, high_pass=0.005), C)
    for name in C:
        assert _sign_flip_flags(clean, name) == []
    assert [f for f in clean.findings if f.contrast == "zero_back" and f.severity in ("warn", "fail")] == []


def test_missing_cue_rows_pre_block_gaps_first():
    keep = FEV[~FEV.trial_type.isin(["fixation", "INSTRUCTION"])]   # cue rows simply absent
    X, roles = build(keep, NF, high_pass=0.005, confounds=white_motion(NF))
    ctx = DesignContext(t_r=T_R, events=keep, high_pass=0.005)
    audit = audit_design(X, roles, ctx, C)
    m = 2.0 * _epoch_signal(X, roles, ctx, "pre_block")                 # a 1 % cue response
    y = truth(X, zero=0.3)
    e0, e1 = fit_effects(X, y, list(C)), fit_effects(X, y + m, list(C))
    assert e0["zero_back"] > 0 > e1["zero_back"] and e1["two_back - zero_back"] > 0
    assert _first(audit, "zero_back").code == "baseline_short_gaps"
    assert not _flagged(audit, "two_back - zero_back", "baseline_short_gaps")
    assert _sign_flip_flags(audit, "two_back - zero_back") == []
    # the pre-block seconds are exactly where the cues were: 9.6 s of each 20-s gap
    epochs = audit.diagnostics["baseline"]["epochs"]
    pre = [e for e in epochs if e["position"] == "pre_block"]
    assert len(pre) == 6 and all(abs(e["duration"] - 10.0) < 1e-6 for e in pre)


def test_settling_with_fixation_only_at_start_edge_first():
    n = 482                                          # 40 s fixation, then 6 x (cue, block), no gaps
    ev, _ = layout(n, fix_only_start=40.0)
    keep = ev[ev.trial_type != "fixation"]
    X, roles = build(keep, n, high_pass=0.005, confounds=white_motion(n))
    ctx = DesignContext(t_r=T_R, events=keep, high_pass=0.005)
    audit = audit_design(X, roles, ctx, C)
    m = 2.0 * _signal(X, roles, ctx, "run_start")    # 2 % settling, time constant 20 s
    y = truth(X, zero=0.2)
    e0, e1 = fit_effects(X, y, list(C)), fit_effects(X, y + m, list(C))
    assert e0["zero_back"] > 0 > e1["zero_back"] and e1["two_back - zero_back"] > 0
    assert _first(audit, "zero_back").code == "baseline_edge_concentrated"
    assert audit.contrasts["zero_back"]["baseline_composition"]["edge_share"] >= 0.3
    assert _sign_flip_flags(audit, "two_back - zero_back") == []


def test_rt_duration_regressor_first():
    tr = trials(FKEEP)
    ev = rtdur(tr)[["onset", "duration", "trial_type"]]
    X, roles = build(ev, NF, high_pass=0.005, confounds=white_motion(NF))
    ctx = DesignContext(t_r=T_R, events=ev, high_pass=0.005, rt_regressor="RTDur")
    audit = audit_design(X, roles, ctx, C)
    # RT-scaled activity only in 2-back trials: the shared RTDur regressor takes it and lowers zero_back
    rt2 = tr[tr.trial_type == "two_back"].assign(duration=lambda d: d.response_time)
    m = 2.0 * build(rt2[["onset", "duration", "trial_type"]], NF, high_pass=0.005)[0]["two_back"].to_numpy()
    y = truth(X, zero=0.1)
    e0, e1 = fit_effects(X, y, list(C)), fit_effects(X, y + m, list(C))
    assert e0["zero_back"] > 0 > e1["zero_back"] and e1["two_back - zero_back"] > e0["two_back - zero_back"] > 0
    entry = next(e for e in audit.contrasts["zero_back"]["sensitivity"] if e["source"] == "rt:two_back")
    assert entry["bias"] < 0 and entry["structural"]
    assert _first(audit, "zero_back").code == "rt_regressor_overlap"
    assert not [f for f in audit.findings if f.contrast == "two_back - zero_back"
                and f.code == "rt_regressor_overlap" and f.severity in ("warn", "fail")]
    assert _sign_flip_flags(audit, "two_back - zero_back") == []


def test_whatif_evaluates_the_same_signals():
    X, roles = build(FKEEP, NF, high_pass=0.005, confounds=white_motion(NF))
    ctx = DesignContext(t_r=T_R, events=FKEEP, high_pass=0.005, nonsteady_volumes=(0, 1, 2, 3))
    audit = audit_design(X, roles, ctx, C)
    fix = next(w for w in audit.whatif if w["fix"] == "apply sample mask")
    z = fix["contrasts"]["zero_back"]
    assert z["max_structural_bias_sd_after"] < 0.5 < z["max_structural_bias_sd_before"]
    # 'after' of the run-start signal = what nilearn's fit on the masked design moves by (same m)
    m = _signal(X, roles, ctx, "run_start")
    Xm = X.iloc[4:]
    moved = fit_effects(Xm, 100.0 + m[4:], ["zero_back"])["zero_back"] - fit_effects(Xm, np.full(NF - 4, 100.0), ["zero_back"])["zero_back"]
    from nbdiag.diagnostics.weights import contrast_variance
    vec = np.array([1.0 if c == "zero_back" else 0.0 for c in Xm.columns])
    np.testing.assert_allclose(z["by_source"]["run_start"]["after"], moved / np.sqrt(contrast_variance(Xm, vec)),
                               rtol=1e-6)


def test_whatif_model_unmodelled_events_numbers_match_nilearn_fits():
    """Before/after of 'model unmodelled events' = what nilearn's fits on the original and on the
    fixed design (cue screens modelled, built by nilearn itself) move by for the same signal."""
    from nilearn.glm.regression import OLSModel

    keep, un = split(EV, drop=("fixation", "INSTRUCTION"))
    X, roles = build(keep, N, high_pass=HP, confounds=motion(N))
    ctx = DesignContext(t_r=T_R, events=keep, unmodeled_events=un, high_pass=HP)
    audit = audit_design(X, roles, ctx, C)
    fix = next(w for w in audit.whatif if w["fix"] == "model unmodelled events")
    m = _signal(X, roles, ctx, "unmodeled:INSTRUCTION")
    keep_all, _ = split(EV, drop=("fixation",))
    Xf, _ = build(keep_all, N, high_pass=HP, confounds=motion(N))
    assert "INSTRUCTION" in Xf.columns
    y = truth(X, zero=0.3)
    for name, design, side in ((("zero_back", X, "before"), ("zero_back", Xf, "after"),
                                ("two_back - zero_back", X, "before"), ("two_back - zero_back", Xf, "after"))):
        moved = fit_effects(design, y + m, [name])[name] - fit_effects(design, y, [name])[name]
        vec = np.zeros(design.shape[1])
        for term, w in (("two_back", 1.0), ("zero_back", -1.0)) if " - " in name else (("zero_back", 1.0),):
            vec[list(design.columns).index(term)] = w
        var = float(vec @ OLSModel(design.to_numpy()).normalized_cov_beta @ vec)
        got = fix["contrasts"][name]["by_source"]["unmodeled:INSTRUCTION"][side]
        np.testing.assert_allclose(got, moved / np.sqrt(var), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(fix["contrasts"][name][f"variance_{side}"], var, rtol=1e-6)
    # modelling the cues removes their bias: |after| is tiny next to |before|
    z = fix["contrasts"]["zero_back"]["by_source"]["unmodeled:INSTRUCTION"]
    assert abs(z["after"]) < 0.05 * abs(z["before"])
