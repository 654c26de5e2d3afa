"""Scenario designs with a known cause: bias exists in nilearn's fit, cause ranked first."""

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from nback_scenarios import T_R, build, fit_effects, layout, motion, split, truth  # noqa: E402

from nbdiag.context import DesignContext
from nbdiag.diagnostics import audit_design
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
    assert "No design feature explains a sign change" in audit.contrasts["zero_back"]["explanation"] or \
        "drift" in audit.contrasts["zero_back"]["explanation"]


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
    for f in _flagged(audit, "two_back - zero_back", "nonsteady_unhandled"):
        assert f.evidence["bias_sd"] <= -0.5
        e = next(x for x in audit.contrasts["two_back - zero_back"]["sensitivity"] if x["source"] == "nonsteady")
        np.testing.assert_allclose(e1["two_back - zero_back"] - e0["two_back - zero_back"], e["bias"], rtol=1e-6)
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
