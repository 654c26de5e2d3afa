"""Issue 20: verdicts decided by what the run's own files show (simulated runs with known components).

Each run is a small 4D image (voxels with their own baselines, the task response, noise); its
``global_signal`` is the mean over the voxels per volume, as fMRIPrep computes it. The bias a
component causes is proved by nilearn's own ``FirstLevelModel`` fit (``signal_scaling=0``, the
scaling nbdiag measures in) of the global signal with and without the component.
"""

import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from nback_scenarios import T_R, build, one_voxel_contrasts, short_layout, white_motion  # noqa: E402

from nbdiag.design.context import DesignContext
from nbdiag.explain.audit import audit_design

N = 300
EV, KEEP = short_layout(N)
HP = 0.004
C = {"zero_back": "zero_back", "two_back - zero_back": "two_back - zero_back"}


def _image(X, bright=None, seed=5, shape=(3, 3, 2)):
    """Voxels: baseline × (1 + task response + noise) × (1 + bright[k]) for the bright volumes."""
    rng = np.random.default_rng(seed)
    nv = int(np.prod(shape))
    base = 800.0 + 200.0 * rng.random(nv)
    resp = 0.2 * X["zero_back"].to_numpy() + 0.6 * X["two_back"].to_numpy()   # percent
    data = base[:, None] * (1 + resp[None, :] / 100 + 0.01 * rng.standard_normal((nv, N)))
    if bright is not None:
        data = data * (1 + np.asarray(bright)[None, :] / 100)
    img = nib.Nifti1Image(data.reshape(*shape, N).astype(np.float64), np.eye(4))
    return img


def _global_signal(img):
    """fMRIPrep's global_signal: the mean over the (brain) voxels of each volume."""
    d = np.asarray(img.dataobj, dtype=float)
    return d.reshape(-1, d.shape[-1]).mean(axis=0)


_nilearn = one_voxel_contrasts  # nilearn's OLS estimate of each contrast for a voxel holding the series


def _first_flag(audit, name):
    flagged = [f for f in audit.findings if f.contrast == name and f.severity in ("warn", "fail")]
    return flagged[0] if flagged else None


def _bright(excess):
    b = np.zeros(N)
    b[: len(excess)] = excess
    return b


def test_unflagged_bright_first_volumes_named_first_with_the_nilearn_proved_bias():
    X, roles = build(KEEP, N, high_pass=HP, confounds=white_motion(N))
    clean_img = _image(X)
    img = _image(X, bright=_bright([40.0, 8.0]))
    gs, gs_clean = _global_signal(img), _global_signal(clean_img)
    proved = {k: v - _nilearn(X, gs_clean, list(C))[k] for k, v in _nilearn(X, gs, list(C)).items()}
    # the bright volumes read as baseline: zero_back is lowered (by far more than its noise); the
    # differential barely moves (both conditions share the same baseline)
    assert proved["zero_back"] < -0.1 and abs(proved["two_back - zero_back"]) < 0.01
    ctx = DesignContext(t_r=T_R, events=KEEP, high_pass=HP, measured_signals={"global_signal": gs})
    audit = audit_design(X, roles, ctx, C)
    run = [f for f in audit.findings if f.code == "transient_unflagged" and f.contrast is None]
    assert len(run) == 1 and [v["volume"] for v in run[0].evidence["volumes"]] == [0, 1]
    assert "fMRIPrep flagged none of them" in run[0].message
    diff = _first_flag(audit, "two_back - zero_back")
    assert diff is None or diff.code != "transient_unflagged"      # it does not move the differential
    for name in ("zero_back",):
        top = _first_flag(audit, name)
        assert top is not None and top.code == "transient_unflagged", (name, top)
        assert top.evidence["magnitude_source"] == "measured:global_signal"
        # the measured size is within 15 % of the bias nilearn's fit proves
        assert abs(top.evidence["bias_percent"] - proved[name]) <= 0.15 * abs(proved[name]), (top.evidence, proved)
        # and the measured decomposition names the same cause first
        m = audit.contrasts[name]["measured"]["global_signal"]
        causes = sorted(((abs(v), k) for k, v in m["by_class"].items() if m["by_class_kind"][k] == "cause"
                         and m["by_class_t"][k] is not None and abs(m["by_class_t"][k]) >= 2), reverse=True)
        assert causes[0][1] == "transient"
        assert abs(m["by_class"]["transient"] - proved[name]) <= 0.15 * abs(proved[name])
    # the same layout without the bright volumes: quiet
    quiet = audit_design(X, roles, DesignContext(t_r=T_R, events=KEEP, high_pass=HP,
                                                 measured_signals={"global_signal": gs_clean}), C)
    assert not [f for f in quiet.findings if f.code == "transient_unflagged"]
    for name in C:
        assert _first_flag(quiet, name) is None, _first_flag(quiet, name)
    assert quiet.status == "pass"
    assert quiet.measured["signals"]["global_signal"]["transients"]["volumes"] == []


def test_flagged_volume_with_one_percent_excess_never_fails_the_run():
    X, roles = build(KEEP, N, high_pass=HP, confounds=white_motion(N))
    gs = _global_signal(_image(X, bright=_bright([1.0])))
    ctx = DesignContext(t_r=T_R, events=KEEP, high_pass=HP, nonsteady_volumes=(0,),
                        raw_confound_columns=("non_steady_state_outlier00",),
                        confounds_strategy=("motion", "non_steady_state"),
                        measured_signals={"global_signal": gs})
    audit = audit_design(X, roles, ctx, C)
    run = next(f for f in audit.findings if f.code == "nonsteady_unhandled" and f.contrast is None)
    assert run.severity == "warn" and "Harmless here" in run.message
    assert run.evidence["measured_max_bias_sd"] < 0.5
    assert audit.status != "fail"
    assert not [f for f in audit.findings if f.severity == "fail"]
    # 8 % brighter: a measured effect between the warn and the fail size -> warn, and it says so
    gs8 = _global_signal(_image(X, bright=_bright([8.0])))
    mid = audit_design(X, roles, DesignContext(t_r=T_R, events=KEEP, high_pass=HP, nonsteady_volumes=(0,),
                                               raw_confound_columns=("non_steady_state_outlier00",),
                                               confounds_strategy=("motion", "non_steady_state"),
                                               measured_signals={"global_signal": gs8}), C)
    run8 = next(f for f in mid.findings if f.code == "nonsteady_unhandled" and f.contrast is None)
    assert run8.severity == "warn" and "below the fail size" in run8.message
    assert 0.5 <= run8.evidence["measured_max_bias_sd"] < 2.0
    # the same volume 40 % brighter does fail, by its measured effect
    gs40 = _global_signal(_image(X, bright=_bright([40.0])))
    loud = audit_design(X, roles, DesignContext(t_r=T_R, events=KEEP, high_pass=HP, nonsteady_volumes=(0,),
                                                raw_confound_columns=("non_steady_state_outlier00",),
                                                confounds_strategy=("motion", "non_steady_state"),
                                                measured_signals={"global_signal": gs40}), C)
    run40 = next(f for f in loud.findings if f.code == "nonsteady_unhandled" and f.contrast is None)
    assert run40.severity == "fail" and run40.evidence["measured_max_bias_sd"] >= 1.0
    assert "Measured:" in run40.message


def test_assumed_sizes_are_hypotheses_that_never_fail():
    """A pre-block gap's assumed cue response: with a measured global signal holding no cue response,
    the gap is no cause (info at most); without a measurement it is a hypothesis (warn at most)."""
    ev, keep = short_layout(N, between_fix=10.4)   # the INSTRUCTION screens are missing
    X, roles = build(keep, N, high_pass=HP)
    gs = _global_signal(_image(X))
    measured = audit_design(X, roles, DesignContext(t_r=T_R, events=keep, high_pass=HP,
                                                    measured_signals={"global_signal": gs}), C)
    for name in C:
        e = next(e for e in measured.contrasts[name]["sensitivity"] if e["source"] == "pre_block")
        assert e["severity_basis"] == "measured_part" and e["severity"] in (None, "info")
        f = _first_flag(measured, name)
        assert f is None or f.code != "baseline_short_gaps", f
    assumed = audit_design(X, roles, DesignContext(t_r=T_R, events=keep, high_pass=HP), C)
    for f in assumed.findings:
        ev_ = f.evidence
        if ev_.get("hypothesis"):
            assert f.severity != "fail"
    sens = [e for name in C for e in assumed.contrasts[name]["sensitivity"]
            if e["magnitude_source"] == "assumed" and not e["source"].startswith("tr:")]
    assert sens and all(e["severity"] != "fail" for e in sens)
    assert any(e["hypothesis"] for e in sens)


def test_task_locked_confound_with_a_footprint_is_a_measured_cause_and_without_none():
    """trans_z in the model follows the zero_back blocks (+0.3 mm apparent motion). When the global signal
    carries the real motion (1 % per mm), regressing trans_z out removes its task-locked part from zero_back:
    a cause with a measured size (its loading in the global signal), within 15 % of nilearn's proof. When the
    signal carries no motion, the same design leaves no footprint: not a cause."""
    from nback_scenarios import fit_effects, truth

    x0 = build(KEEP, N, high_pass=HP)[0]["zero_back"].to_numpy()
    real = white_motion(N, seed=4, scale=0.1)
    flawed = real.assign(trans_z=real["trans_z"] + 0.3 * x0)
    X, roles = build(KEEP, N, high_pass=HP, confounds=flawed)
    Xfix, _ = build(KEEP, N, high_pass=HP, confounds=real)
    rng = np.random.default_rng(2)
    noise = 0.05 * rng.standard_normal(N)
    for carries, expect_cause in ((1.0, True), (0.0, False)):
        y = truth(Xfix, zero=0.2) + carries * real["trans_z"].to_numpy() + noise     # percent around 100
        gs = 5.0 * y                                                                  # scanner units
        flaw, fixed = fit_effects(X, gs, list(C)), fit_effects(Xfix, gs, list(C))
        ctx = DesignContext(t_r=T_R, events=KEEP, high_pass=HP, measured_signals={"global_signal": gs})
        audit = audit_design(X, roles, ctx, C)
        e = next(e for e in audit.contrasts["zero_back"]["sensitivity"] if e["source"] == "confound:trans_z")
        assert e["severity_basis"] == "measured_part"
        scale = 100.0 / gs.mean()   # nilearn's signal_scaling=0: percent of the mean
        proved = (flaw["zero_back"] - fixed["zero_back"]) * scale
        top = _first_flag(audit, "zero_back")
        if expect_cause:
            assert abs(e["measured_t"]) >= 3 and e["severity"] in ("warn", "fail")
            assert abs(e["measured_bias_percent"] - proved) <= 0.15 * abs(proved), (e, proved)
            assert top is not None and top.code == "confound_task_correlated"
            assert "Measured in this run" in top.message
        else:
            assert abs(e["measured_t"]) < 3 and e["severity"] in (None, "info")
            assert top is None or top.code != "confound_task_correlated", top
        run = next(f for f in audit.findings if f.code == "confound_task_correlated" and f.contrast is None)
        assert run.evidence["severity_rule"] == "measured effect"
        if expect_cause:
            assert "Measured:" in run.message
        else:   # R² on the task is high, but the signal carries none of it: no cause, context only
            assert run.severity == "info" and "Not a cause here" in run.message


def test_scrubbed_volumes_left_in_are_graded_by_their_measured_part():
    """Scrubbing asked for, sample mask dropped: the censored volumes form the high_motion class; quiet
    spikes make scrub_not_applied a warning ("harmless here"), loud ones fail by their measured part."""
    X, roles = build(KEEP, N, high_pass=HP, confounds=white_motion(N))
    vols = tuple(range(60, 240, 12))                    # 15 volumes, spread over blocks and baseline
    x0 = X["zero_back"].to_numpy()
    base = (x0 < 0.1 * x0.max())                       # spikes only where zero_back's baseline sits
    results = {}
    for size in (0.0, 30.0):
        spikes = np.zeros(N)
        for v in vols:
            spikes[v] = size if base[v] else 0.0
        gs = _global_signal(_image(X, bright=spikes))
        ctx = DesignContext(t_r=T_R, events=KEEP, high_pass=HP, scrub_volumes=vols, scrub_requested=True,
                            confounds_strategy=("motion", "scrub"), measured_signals={"global_signal": gs})
        audit = audit_design(X, roles, ctx, C)
        run = next(f for f in audit.findings if f.code == "scrub_not_applied" and f.contrast is None)
        m = audit.contrasts["zero_back"]["measured"]["global_signal"]
        assert m["by_class_kind"]["high_motion"] == "cause"
        results[size] = (run, m, audit)
    quiet, loud = results[0.0][0], results[30.0][0]
    assert quiet.severity == "warn" and "Harmless here" in quiet.message
    assert loud.severity == "fail" and loud.evidence["measured_max_bias_sd"] >= 2.0
    assert abs(results[30.0][1]["by_class_t"]["high_motion"]) >= 3
    # the spikes are spikes (not the run start) and, flagged by motion_outlier, not 'transient'
    tr = results[30.0][2].measured["signals"]["global_signal"]["transients"]
    assert {v["position"] for v in tr["volumes"]} == {"spike"}
    assert all(v["flagged_by"] == ["motion_outlier"] for v in tr["volumes"])


def test_reference_falls_back_to_every_steady_scan_when_the_baseline_is_tiny():
    from nbdiag.diagnostics.measured import reference_rows

    classes = np.array(["condition:a"] * 20 + ["fixation"] * 3 + ["nonsteady", "transient"], dtype=object)
    rows, definition = reference_rows(classes)
    assert rows.sum() == 23 and "every steady scan" in definition
    rows, definition = reference_rows(np.array(["fixation"] * 6 + ["nonsteady"], dtype=object))
    assert rows.sum() == 6 and "implicit-baseline" in definition


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_slow_random_walk_drift_is_no_cause(seed):
    """A global signal that wanders slowly (random walk, as the demo's) but holds no cause: the part SEs
    (placebo: the signal's own fluctuations shifted in time) keep edges and gaps from being named."""
    from nbdiag.diagnostics.measured import DISTINCT_T

    ev, keep = short_layout(N, between_fix=10.4)          # pre-block gaps exist
    X, roles = build(keep, N, high_pass=HP)
    rng = np.random.default_rng(seed)
    gs = 520.0 + 520.0 / 500.0 * np.cumsum(rng.normal(0.0, 0.05, N)) * 10 + rng.normal(0, 1.2, N)
    audit = audit_design(X, roles, DesignContext(t_r=T_R, events=keep, high_pass=HP,
                                                 measured_signals={"global_signal": gs}), C)
    for name in C:
        m = audit.contrasts[name]["measured"]["global_signal"]
        big = [k for k in ("short_gap", "run_edge") if k in m["by_class"] and abs(m["by_class_t"][k]) >= DISTINCT_T]
        # at most a part just over |t| = 3 that is too small to matter; the answer names no cause
        assert len(big) <= 1
        assert "contribute" not in audit.contrasts[name]["explanation"], audit.contrasts[name]["explanation"]
        measured_flags = [f for f in audit.findings if f.contrast == name and f.severity in ("warn", "fail")
                          and f.evidence.get("severity_basis") == "measured_part"]
        assert measured_flags == []
    assert not [f for f in audit.findings if f.code == "transient_unflagged"]


@pytest.mark.parametrize("amp", [0.0, 0.5])
def test_cue_response_in_the_gaps_measured_present_and_absent(amp):
    """The INSTRUCTION screens are missing from events.tsv. With a cue response in the data (every voxel,
    HRF-convolved), the gaps are the first cause of zero_back with their measured size (the assumed cue
    signal fitted beside the design in the global signal) within 15 % of nilearn's proof; without it,
    the same layout is quiet."""
    from nbdiag.design.hrf import compute_regressor_fast

    ev, keep = short_layout(N, between_fix=10.4)
    instr = ev[ev.trial_type == "INSTRUCTION"]
    X, roles = build(keep, N, high_pass=HP)
    reg, _ = compute_regressor_fast(np.vstack([instr.onset, instr.duration, np.ones(len(instr))]), "glover",
                                    np.arange(N) * T_R)
    img = _image(X)
    data = np.asarray(img.dataobj) * (1 + amp * reg[:, 0] / 100)[None, None, None, :]
    gs, gs0 = data.reshape(-1, N).mean(axis=0), _global_signal(img)
    audit = audit_design(X, roles, DesignContext(t_r=T_R, events=keep, high_pass=HP,
                                                 measured_signals={"global_signal": gs}), C)
    e = next(e for e in audit.contrasts["zero_back"]["sensitivity"] if e["source"] == "pre_block")
    assert e["severity_basis"] == "measured_part" and "fitted size" in e["measured_what"]
    top = _first_flag(audit, "zero_back")
    if amp:
        proved = _nilearn(X, gs, ["zero_back"])["zero_back"] - _nilearn(X, gs0, ["zero_back"])["zero_back"]
        assert top is not None and top.code == "baseline_short_gaps" and top.severity in ("warn", "fail")
        assert abs(e["measured_bias_percent"] - proved) <= 0.15 * abs(proved), (e["measured_bias_percent"], proved)
        assert abs(e["measured_t"]) >= 3
    else:
        assert top is None, top
        assert e["severity"] in (None, "info") and abs(e["measured_t"]) < 3
    assert _first_flag(audit, "two_back - zero_back") is None


@pytest.mark.parametrize("locked", [True, False])
def test_motion_left_out_of_the_model_measured_footprint(locked):
    """The model leaves motion out. Task-locked motion that the global signal carries is a cause with its
    measured size (equal to what adding it to nilearn's model changes); random-walk motion that the signal
    does not carry leaves no footprint and is no cause, however it correlates with the task."""
    X, roles = build(KEEP, N, high_pass=HP)
    rng = np.random.default_rng(7)
    ft = np.arange(N) * T_R
    box = np.zeros(N)                                                      # motion is instantaneous: no HRF
    for o, d in zip(KEEP.onset[KEEP.trial_type == "two_back"], KEEP.duration[KEEP.trial_type == "two_back"]):
        box[(ft >= o) & (ft < o + d)] = 1.0
    if locked:
        trans_z = 0.3 * box + 0.05 * rng.standard_normal(N)                # mm, follows the 2-back blocks
        carried = 1.0                                                      # % per mm in every voxel
    else:
        trans_z = np.cumsum(0.02 * rng.standard_normal(N))                  # drifting head, no signal
        carried = 0.0
    img = _image(X)
    data = np.asarray(img.dataobj) * (1 + carried * trans_z / 100)[None, None, None, :]
    gs = data.reshape(-1, N).mean(axis=0)
    ctx = DesignContext(t_r=T_R, events=KEEP, high_pass=HP, measured_signals={"global_signal": gs, "trans_z": trans_z})
    audit = audit_design(X, roles, ctx, C)
    entries = [e for e in audit.contrasts["two_back - zero_back"]["sensitivity"]
               if e["source"] == "confound_left_out:trans_z"]
    if not locked:
        assert entries == []
        assert all(_first_flag(audit, n) is None or "trans_z" not in _first_flag(audit, n).message for n in C)
        return
    (e,) = entries
    with_motion = X.assign(trans_z=trans_z)
    proved = (_nilearn(X, gs, ["two_back - zero_back"])["two_back - zero_back"]
              - _nilearn(with_motion, gs, ["two_back - zero_back"])["two_back - zero_back"])
    assert abs(e["bias_percent"] - proved) <= 0.15 * abs(proved) and abs(proved) > 0.1, (e["bias_percent"], proved)
    assert e["magnitude_source"] == "measured:global_signal" and e["severity"] in ("warn", "fail")
    top = _first_flag(audit, "two_back - zero_back")
    assert top is not None and top.evidence.get("source") == "confound_left_out:trans_z"


def test_left_out_motion_guards():
    """No footprint is measured without a usable global signal, for columns the model has, for motion
    columns with missing values or too short, or for a motion column that is exactly in the design's span."""
    from nbdiag.diagnostics.sensitivity import left_out_confound_signals

    X, roles = build(KEEP, N, high_pass=HP)
    gs = _global_signal(_image(X))
    z = np.linspace(0, 1, N)
    base = dict(t_r=T_R, events=KEEP, high_pass=HP)
    assert left_out_confound_signals(X, DesignContext(**base, measured_signals={"trans_x": z})) == []
    assert left_out_confound_signals(X, DesignContext(**base, measured_signals={"global_signal": gs[:10],
                                                                                 "trans_x": z})) == []
    nan_gs = gs.copy()
    nan_gs[5] = np.nan
    assert left_out_confound_signals(X, DesignContext(**base, measured_signals={"global_signal": nan_gs,
                                                                                 "trans_x": z})) == []
    Xm = X.assign(trans_x=z)          # in the model: not left out
    assert left_out_confound_signals(Xm, DesignContext(**base, measured_signals={"global_signal": gs,
                                                                                  "trans_x": z})) == []
    bad = z.copy()
    bad[3] = np.nan
    spanned = X["zero_back"].to_numpy()          # exactly a design column: nothing left to fit
    ctx = DesignContext(**base, measured_signals={"global_signal": gs, "trans_x": bad, "trans_y": spanned,
                                                  "trans_z": z[:5]})
    assert left_out_confound_signals(X, ctx) == []
