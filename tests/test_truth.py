"""Issue 11: explanations that stay true on designs nbdiag has never seen.

Each scenario simulates BOLD with one known flaw, fits nilearn's FirstLevelModel on the flawed and the
fixed design (or data), and checks (a) the first warn/fail finding of the affected contrast names the true
cause (or that a clean design stays quiet) and (b) the predicted bias (``bias_percent`` of the cause's
sensitivity entry) equals nilearn's measured change within 15 % where the signal has the shape nbdiag
assumes. Forum-shaped runs: TR 0.8 s, 522 volumes, six 48-s blocks with 9.6-s instruction screens,
10.4-s fixation between blocks, cosine drift with high_pass 0.005 Hz.
"""

import json
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from nback_scenarios import T_R, build, fit_effects, layout, truth, white_motion  # noqa: E402

from nbdiag.design.context import DesignContext
from nbdiag.diagnostics.sensitivity import signal_library
from nbdiag.explain.audit import audit_design

C = {"zero_back": "zero_back", "two_back": "two_back", "two_back - zero_back": "two_back - zero_back"}
NF = 522
HP = 0.005
FEV, _ = layout(NF, between_fix=10.4)
FKEEP = FEV[FEV.trial_type != "fixation"].reset_index(drop=True)
SIGN_FLIP = ("baseline_", "sensitive_unmodeled_signal", "nonsteady_unhandled", "confound_", "tr_", "rt_",
             "drift_overlap", "scrub_")
TOL = 0.15


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _first_flag(audit, name):
    """First warn/fail finding of a contrast (the audit's per-contrast order), or None."""
    flagged = [f for f in audit.findings if f.contrast == name and f.severity in ("warn", "fail")]
    return flagged[0] if flagged else None


def _entry(audit, name, source):
    return next(e for e in audit.contrasts[name]["sensitivity"] if e["source"] == source)


def _close(predicted, measured):
    assert abs(predicted - measured) <= TOL * abs(measured), (predicted, measured)


def test_task_locked_confound_absorbs_one_condition():
    """trans_z follows the zero_back blocks (activation-driven apparent motion, 0.3 mm); the voxel carries the
    real motion at 1 % per mm. Regressing trans_z out removes its task-locked part from zero_back."""
    x0 = build(FKEEP, NF, high_pass=HP)[0]["zero_back"].to_numpy()
    real = white_motion(NF, seed=4, scale=0.1)
    flawed = real.assign(trans_z=real["trans_z"] + 0.3 * x0)
    X, roles = build(FKEEP, NF, high_pass=HP, confounds=flawed)
    Xfix, _ = build(FKEEP, NF, high_pass=HP, confounds=real)
    y = truth(Xfix, zero=0.2) + 1.0 * real["trans_z"].to_numpy()
    flaw, fixed = fit_effects(X, y, list(C)), fit_effects(Xfix, y, list(C))
    assert fixed["zero_back"] > 0 > flaw["zero_back"]            # the flaw flips zero_back in nilearn's fit
    audit = audit_design(X, roles, DesignContext(t_r=T_R, events=FKEEP, high_pass=HP), C)
    top = _first_flag(audit, "zero_back")
    # issue 20: the motion size is assumed and no global signal is measured: a hypothesis ("would lower")
    assert top.code == "confound_task_correlated" and "would lower zero_back" in top.message
    assert top.evidence["source"] == "confound:trans_z" and top.evidence["magnitude_source"] == "assumed"
    for name in ("zero_back", "two_back - zero_back"):
        _close(_entry(audit, name, "confound:trans_z")["bias_percent"], flaw[name] - fixed[name])
    assert "would inflate two_back - zero_back" in _first_flag(audit, "two_back - zero_back").message
    # the run-level finding is there too, and no contrast says that nothing explains it
    assert any(f.code == "confound_task_correlated" and f.contrast is None for f in audit.findings)
    assert "No measured cause in this design" not in audit.contrasts["zero_back"]["explanation"]


def test_global_signal_regression_with_task_driven_global_signal():
    """global_signal (scanner units) = 800 x (1 + its task response + global noise); the voxel carries the global
    noise one for one. Regressing global_signal out subtracts the global task response (measured from the
    column) from every contrast."""
    base = build(FKEEP, NF, high_pass=HP)[0]
    rng = np.random.default_rng(7)
    noise = 0.3 * rng.normal(size=NF)                       # % signal, shared by the voxel
    gtask = 0.5 * base["zero_back"].to_numpy() + 0.8 * base["two_back"].to_numpy()
    flawed = white_motion(NF).assign(global_signal=800.0 * (1 + 0.01 * (gtask + noise)))
    fixed_c = white_motion(NF).assign(global_signal=800.0 * (1 + 0.01 * noise))
    X, roles = build(FKEEP, NF, high_pass=HP, confounds=flawed)
    Xfix, _ = build(FKEEP, NF, high_pass=HP, confounds=fixed_c)
    y = truth(Xfix, zero=0.3) + noise
    flaw, fixed = fit_effects(X, y, list(C)), fit_effects(Xfix, y, list(C))
    assert fixed["zero_back"] > 0 > flaw["zero_back"]
    audit = audit_design(X, roles, DesignContext(t_r=T_R, events=FKEEP, high_pass=HP), C)
    top = _first_flag(audit, "zero_back")
    assert top.code == "confound_task_correlated" and top.evidence["source"] == "confound:global_signal"
    assert top.evidence["magnitude_source"] == "measured:global_signal"
    for name in C:
        entry = _entry(audit, name, "confound:global_signal")
        _close(entry["bias_percent"], flaw[name] - fixed[name])
        assert entry["sd_source"].startswith("assumed")


def _tr_dataset(tmp_path):
    from nbdiag.demo.synth import DatasetSpec, RunSpec, run_paths, write_dataset

    spec = DatasetSpec([RunSpec("01", session="1", run=1, n_scans=240, t_r=1.5, image="header")])
    root = write_dataset(tmp_path / "bids", spec)
    paths = run_paths(root, spec, spec.runs[0])
    side = json.loads(paths.bold_sidecar.read_text())
    side["RepetitionTime"] = 2.0                     # every derivative sidecar says 2.0 s
    paths.bold_sidecar.write_text(json.dumps(side))
    return root


def test_tr_differs_between_header_and_derivative_sidecar(tmp_path):
    """Header and raw sidecar say 1.5 s, the derivative sidecar 2.0 s (nilearn uses 2.0 s)."""
    from nilearn.glm.first_level import make_first_level_design_matrix

    from nbdiag.config import load_config
    from nbdiag.demo.run import CONFIG
    from nbdiag.inputs.bids import discover_runs
    from nbdiag.record.build import audit_run, prepare_run

    root = _tr_dataset(tmp_path)
    settings = {s.variant: s for s in load_config(CONFIG).all_variants()}["nortdur"]
    run = discover_runs(root, settings.model)[0][0]
    record = audit_run(run, settings).record.to_json()
    assert record["settings"]["t_r"]["value"] == 2.0
    tr = next(f for f in record["findings"] if f["code"] == "tr_mismatch" and f["contrast"] is None)
    sources = {s["source"]: s["value"] for s in tr["evidence"]["sources"]}
    assert sources == {"image header (pixdim[4])": 1.5, "raw image header (pixdim[4])": 1.5,
                       "raw sidecar (BIDS inheritance)": 1.5, "derivative sidecar": 2.0}
    for kind in sources:
        assert kind in tr["message"]
    assert "task-nback_bold.json" in tr["message"]    # the raw TR comes from the root sidecar (inheritance)
    first = [f for f in record["findings"] if f["contrast"] == "zero_back" and f["severity"] in ("warn", "fail")][0]
    assert first["code"] == "tr_mismatch" and first["evidence"]["source"] == "tr:1.5"
    # nilearn: data acquired at 1.5 s (a 1 % response to every condition), fitted with the 2.0-s design
    prep = prepare_run(run, settings)
    X, roles = prep.built.design, prep.built.roles
    conds = [c for c in X.columns if roles[c] == "task"]
    acquired = make_first_level_design_matrix(np.arange(len(X)) * 1.5, prep.context.events, hrf_model="glover",
                                              drift_model=None)
    y = acquired[conds].sum(axis=1).to_numpy() + 100.0
    est = fit_effects(X, y, list(C))
    for name in C:
        should = sum(record["contrasts"][name]["vector"].get(c, 0.0) for c in conds)
        entry = next(e for e in record["contrasts"][name]["sensitivity"] if e["source"] == "tr:1.5")
        _close(entry["bias_percent"], est[name] - should)


def test_tr_sources_units_and_inheritance(tmp_path):
    from nbdiag.inputs.bids import collect_t_r_sources, t_r_disagreement

    root = tmp_path / "ds"
    func = root / "sub-01" / "ses-1" / "func"
    func.mkdir(parents=True)
    (root / "task-x_bold.json").write_text(json.dumps({"RepetitionTime": 3.0}))
    (root / "sub-01" / "sub-01_task-x_bold.json").write_text(json.dumps({"RepetitionTime": 2.5}))
    (root / "sub-01" / "sub-01_task-y_bold.json").write_text(json.dumps({"RepetitionTime": 9.0}))  # other task
    img = nib.Nifti1Image(np.zeros((2, 2, 2, 5), dtype=np.float32), np.eye(4))
    img.header.set_xyzt_units("mm", "msec")
    img.header["pixdim"][4] = 2500.0
    bold = func / "sub-01_ses-1_task-x_run-1_bold.nii.gz"
    nib.save(img, bold)
    ents = {"sub": "01", "ses": "1", "task": "x", "run": "1"}
    out = collect_t_r_sources(bold, root, ents, None, 2.5)
    kinds = {s["source"]: (s["value"], s["file"]) for s in out}
    assert kinds["image header (pixdim[4], msec)"][0] == 2.5
    assert kinds["raw sidecar (BIDS inheritance)"] == (2.5, "sub-01/sub-01_task-x_bold.json")  # subject level wins
    assert not t_r_disagreement(out, 2.5) and t_r_disagreement(out, 2.0)
    # a header in ms labelled 'sec' is read as ms (and says so); an unset header (1, units unknown) is no source
    img.header.set_xyzt_units("mm", "sec")
    nib.save(img, bold)
    head = next(s for s in collect_t_r_sources(bold, root, ents, None, None) if s["source"].startswith("image"))
    assert head["value"] == 2.5 and "read as ms" in head["source"]
    img.header.set_xyzt_units("mm", "unknown")
    img.header["pixdim"][4] = 1.0
    nib.save(img, bold)
    assert not [s for s in collect_t_r_sources(bold, root, ents, None, None) if s["source"].startswith("image")]


def test_conditions_tile_the_run_under_a_non_rest_name_plus_slow_drift():
    """Fixation modelled as 'neutral' (not a rest word): no implicit baseline is left; a slow drift just inside
    the pass band moves the single-condition contrasts by exactly its predicted bias."""
    ev = FEV.replace({"fixation": "neutral"})
    X, roles = build(ev, NF, high_pass=HP, confounds=white_motion(NF))
    ctx = DesignContext(t_r=T_R, events=ev, high_pass=HP)
    audit = audit_design(X, roles, ctx, C)
    assert not [f for f in audit.findings if f.code == "baseline_modeled_rest"]   # never by elimination
    scarce = next(f for f in audit.findings if f.code == "baseline_scarce" and f.contrast is None)
    assert scarce.evidence["rule"] == "conditions_cover_the_run" and "no implicit baseline is left" in scarce.message
    for name in ("zero_back", "two_back"):
        top = _first_flag(audit, name)
        assert top.code == "baseline_scarce" and "no implicit baseline is left" in top.message
        assert abs(top.evidence["bias_sd"]) >= 0.5
    assert "Drop zero_back" not in " ".join(f.fix or "" for f in audit.findings)
    # issue 20: the variance cause is a warning on the contrasts it hits, worded for what it does
    for name in ("zero_back", "two_back"):
        cv = next(f for f in audit.findings if f.code == "contrast_variance_inflated" and f.contrast == name)
        assert cv.evidence["cvif"] >= 10 and cv.severity == "warn"
        assert f"The sign of {name}'s estimate is unreliable" in cv.message
        assert f"contrast VIF {cv.evidence['cvif']:.1f}" in cv.message
    drift = next(s for s in signal_library(X, roles, ctx) if s.source == "slow_drift").values
    y = truth(X, zero=0.3)
    e0, e1 = fit_effects(X, y, list(C)), fit_effects(X, y + 4.0 * drift, list(C))   # a 1 % drift (4 x 0.25 %)
    for name in C:
        _close(4.0 * _entry(audit, name, "slow_drift")["bias_percent"], e1[name] - e0[name])
    # the user can say the condition is rest-like: then the rule that fired is the setting
    audit2 = audit_design(X, roles, replace(ctx, rest_conditions=("neutral",)), C)
    rest = next(f for f in audit2.findings if f.code == "baseline_modeled_rest" and f.contrast is None)
    assert rest.evidence["rule"] == {"neutral": "setting rest_conditions"}
    assert _first_flag(audit2, "zero_back").code == "baseline_modeled_rest"


def test_clean_design_with_genuine_deactivation_stays_quiet():
    X, roles = build(FKEEP, NF, high_pass=HP, confounds=white_motion(NF))
    audit = audit_design(X, roles, DesignContext(t_r=T_R, events=FKEEP, high_pass=HP), C)
    est = fit_effects(X, truth(X, zero=-0.3, two=1.0), list(C))
    assert est["zero_back"] < 0                     # a real deactivation, faithfully estimated
    np.testing.assert_allclose(est["zero_back"], -0.3, atol=1e-6)
    for name in C:
        flagged = [f for f in audit.findings if f.contrast == name and f.severity in ("warn", "fail")
                   and f.code.startswith(SIGN_FLIP)]
        assert flagged == [], name
        text = audit.contrasts[name]["explanation"]
        assert f"No measured cause in this design moves {name} by the warn size (0.5 σ)" in text
        assert "largest:" in text and " σ (" in text            # the largest predicted bias, with its number
    assert audit.status in ("pass", "warn")
    assert not [f for f in audit.findings if f.severity in ("warn", "fail")]


def test_nonsteady_volumes_raise_the_differential():
    X, roles = build(FKEEP, NF, high_pass=HP, confounds=white_motion(NF))
    ctx = DesignContext(t_r=T_R, events=FKEEP, high_pass=HP, nonsteady_volumes=(0, 1, 2, 3),
                        raw_confound_columns=tuple(f"non_steady_state_outlier0{i}" for i in range(4)),
                        confounds_strategy=("motion", "non_steady_state"))
    audit = audit_design(X, roles, ctx, C)
    m = next(s for s in signal_library(X, roles, ctx) if s.source == "nonsteady").values
    y = truth(X, zero=0.3, two=1.0)
    fixed, flaw = fit_effects(X, y, list(C)), fit_effects(X, y + m, list(C))
    name = "two_back - zero_back"
    assert flaw[name] > fixed[name]
    top = _first_flag(audit, name)
    assert top.code == "nonsteady_unhandled" and top.evidence["bias_sd"] >= 0.5
    assert f"would inflate {name} by" in top.message   # issue 20: assumed T1 size, worded as a hypothesis
    _close(top.evidence["bias_percent"], flaw[name] - fixed[name])
    assert _first_flag(audit, "zero_back").code == "nonsteady_unhandled"


def test_cliffs_become_context():
    """A precision property just over its threshold is info under the contrast, with its margin shown."""
    from nbdiag.explain.attribution import ContrastInputs, explain_contrasts
    from nbdiag.core.findings import Finding

    edge = Finding(code="baseline_edge_concentrated", severity="warn", contrast="zero_back",
                   title="Baseline weight concentrated at the run edges", message="31% of ...",
                   evidence={"edge_share": 0.31, "edge_fraction": 0.1, "warn_at": 0.3}, score=0.31)
    drift = Finding(code="drift_overlap", severity="warn", contrast="zero_back", title="drift",
                    message="R² 0.215", evidence={"r2": 0.215, "threshold": 0.2}, score=1.07)
    sens = [{"source": "run_start", "label": "1 % settling", "bias": -0.02, "bias_percent": -0.02, "bias_sd": -0.21,
             "structural": True, "typical": 1.0, "magnitude_source": "assumed", "sd_source": "assumed"},
            {"source": "slow_drift", "label": "0.25 % drift", "bias": 0.01, "bias_percent": 0.01, "bias_sd": 0.12,
             "structural": True, "typical": 0.5, "magnitude_source": "assumed", "sd_source": "assumed"}]
    ci = ContrastInputs(name="zero_back", kind="t", task_sum=1.0, composition={"negative": {}},
                        sensitivity=sens, findings=[edge, drift])
    out = explain_contrasts([ci], [])["zero_back"]
    got = {f.code: f for f in out.findings}
    assert got["baseline_edge_concentrated"].severity == "info" and "31 % vs 30 %" in \
        got["baseline_edge_concentrated"].message
    assert got["drift_overlap"].severity == "info" and "R² 0.215 vs 0.2" in got["drift_overlap"].message
    assert "No measured cause in this design moves zero_back by the warn size" in out.explanation
    assert "0.21 σ (-0.02 %" in out.explanation
    # measured global signal (issue 12) adds whether the run's overall signal has the same sign
    out2 = explain_contrasts([replace(ci, measured_global=-0.31)], [])["zero_back"]
    assert "global signal gives zero_back an estimate of -0.31 % (measured): negative" in out2.explanation


def test_belsley_condition_indices_match_eigen_decomposition():
    """Scaled condition indices and variance-decomposition proportions from X'X's eigen-decomposition."""
    from nbdiag.diagnostics.collinearity import VDP_CUT, assess_collinearity, condition_indices

    rng = np.random.default_rng(0)
    X, roles = build(FKEEP, NF, high_pass=HP, confounds=white_motion(NF))
    X = X.copy()
    X["trans_z"] = 5.0 * X["drift_1"] + 0.002 * rng.normal(size=NF)      # a confound that duplicates a drift
    Z = X.to_numpy() / np.linalg.norm(X.to_numpy(), axis=0)
    lam, V = np.linalg.eigh(Z.T @ Z)
    eta = np.sqrt(lam.max() / lam)
    phi = V ** 2 / lam
    pi = phi / phi.sum(axis=1, keepdims=True)
    got = condition_indices(X)
    k = int(np.argmax(eta))
    np.testing.assert_allclose(got[0]["index"], eta[k], rtol=1e-6)
    assert got[0]["columns"].keys() == {c for j, c in enumerate(X.columns) if pi[j, k] > VDP_CUT}
    res = assess_collinearity(X, roles)
    f = next(f for f in res.findings if f.code == "design_ill_conditioned")
    assert f.severity == "info" and "trans_z" in f.evidence["columns_involved"] and not f.evidence["task_columns_involved"]
    # units never decide: rescaling a column leaves the indices unchanged
    X2 = X.assign(trans_z=1000.0 * X["trans_z"])
    np.testing.assert_allclose(condition_indices(X2)[0]["index"], got[0]["index"], rtol=1e-9)


def test_rest_conditions_setting_from_toml_and_cli(tmp_path):
    from nbdiag.cli import _load, build_parser
    from nbdiag.config import config_from_mapping
    from nbdiag.core.errors import SettingsError

    cfg = config_from_mapping({"events": {"rest_conditions": ["neutral", "hold"]}})
    assert cfg.base.events.rest_conditions == ("neutral", "hold")
    assert cfg.base.events.to_dict()["rest_conditions"] == ["neutral", "hold"]
    with pytest.raises(SettingsError, match="rest_conditions"):
        config_from_mapping({"events": {"rest_conditions": [3]}})
    args = build_parser().parse_args([str(tmp_path), str(tmp_path / "o"), "participant", "--task", "x",
                                      "--rest-conditions", "neutral"])
    assert _load(args)[0].all_variants()[0].events.rest_conditions == ("neutral",)


def test_drift_overlap_carries_the_bias_of_a_drift_beyond_the_cutoff():
    """high_pass 0.008 Hz cuts the block cycle: drift_overlap explains zero_back only with a predicted bias."""
    X, roles = build(FKEEP, NF, high_pass=0.008, confounds=white_motion(NF))
    ctx = DesignContext(t_r=T_R, events=FKEEP, high_pass=0.008)
    audit = audit_design(X, roles, ctx, C)
    drift = next(s for s in signal_library(X, roles, ctx) if s.source == "slow_drift").values
    y = truth(X, zero=0.3)
    e0, e1 = fit_effects(X, y, list(C)), fit_effects(X, y + drift, list(C))
    for name in C:
        top = _first_flag(audit, name)
        assert top.code == "drift_overlap" and abs(top.evidence["bias_sd"]) >= 0.5
        assert "gives" not in top.message and "threshold ≥" in top.message   # severity comes from the bias
        _close(top.evidence["bias_percent"], e1[name] - e0[name])


def test_scrub_signal_matches_nilearn_and_small_spikes_stay_context():
    X, roles = build(FKEEP, NF, high_pass=HP, confounds=white_motion(NF))
    ctx = DesignContext(t_r=T_R, events=FKEEP, high_pass=HP, scrub_volumes=(100, 101, 250, 400),
                        scrub_requested=True, confounds_strategy=("motion", "scrub"))
    audit = audit_design(X, roles, ctx, C)
    m = next(s for s in signal_library(X, roles, ctx) if s.source == "scrub").values
    y = truth(X)
    e0, e1 = fit_effects(X, y, list(C)), fit_effects(X, y + m, list(C))
    for name in C:
        entry = _entry(audit, name, "scrub")
        np.testing.assert_allclose(entry["bias_percent"], e1[name] - e0[name], rtol=1e-6)
        copy = next(f for f in audit.findings if f.contrast == name and f.code == "scrub_not_applied")
        assert copy.severity == "info" and "below the warn size" in copy.message   # 4 spikes of 2 %: < 0.5 σ
    assert any(f.code == "scrub_not_applied" and f.contrast is None and f.severity == "fail" for f in audit.findings)


def test_global_signal_regression_through_the_pipeline(tmp_path):
    """first_level_from_bids-style settings with global_signal in confounds_strategy: load_confounds demeans
    the column, so its % scale comes from the raw file's steady-state median."""
    import pandas as pd

    from nbdiag.config import load_config, override_config
    from nbdiag.demo.run import CONFIG
    from nbdiag.demo.synth import DatasetSpec, RunSpec, run_paths, write_dataset
    from nbdiag.inputs.bids import discover_runs
    from nbdiag.record.build import audit_run, prepare_run

    spec = DatasetSpec([RunSpec("01", session="1", run=1, n_scans=300, t_r=1.5, image="header")])
    root = write_dataset(tmp_path / "bids", spec)
    config = override_config(load_config(CONFIG), model={"confounds_strategy": ["motion", "global_signal"],
                                                         "confounds_global_signal": "basic"})
    settings = {s.variant: s for s in config.all_variants()}["nortdur"]
    run = discover_runs(root, settings.model)[0][0]
    X0 = prepare_run(run, settings).built.design
    rng = np.random.default_rng(3)
    noise = 0.3 * rng.normal(size=len(X0))
    gtask = 0.5 * X0["zero_back"].to_numpy() + 0.8 * X0["two_back"].to_numpy()
    path = run_paths(root, spec, spec.runs[0]).confounds
    table = pd.read_csv(path, sep="\t")
    table["global_signal"] = 520.0 * (1 + 0.01 * (gtask + noise))
    table.to_csv(path, sep="\t", index=False, na_rep="n/a")
    record = audit_run(run, settings).record.to_json()
    X = prepare_run(run, settings).built.design
    assert abs(X["global_signal"].mean()) < 1e-6                    # demeaned by load_confounds
    fixed_gs = 520.0 * (1 + 0.01 * noise)
    Xfix = X.assign(global_signal=fixed_gs - fixed_gs.mean())
    y = 0.3 * X["zero_back"].to_numpy() + 1.0 * X["two_back"].to_numpy() + 100.0 + noise
    flaw, fixed = fit_effects(X, y, list(C)), fit_effects(Xfix, y, list(C))
    for name in C:
        entry = next(e for e in record["contrasts"][name]["sensitivity"] if e["source"] == "confound:global_signal")
        assert entry["magnitude_source"] == "measured:global_signal"
        assert "median in the confounds file" in entry["label"]
        _close(entry["bias_percent"], flaw[name] - fixed[name])
    top = [f for f in record["findings"] if f["contrast"] == "zero_back" and f["severity"] in ("warn", "fail")][0]
    assert top["code"] == "confound_task_correlated"


def test_share_just_below_its_threshold_still_names_the_cause():
    from nbdiag.explain.attribution import ContrastInputs, explain_contrasts

    sens = [{"source": "short_gaps", "label": "a 0.25 % HRF response during the 4 short transition gaps",
             "bias": -0.107, "bias_percent": -0.107, "bias_sd": -0.87, "structural": True, "typical": 0.5,
             "magnitude_source": "assumed", "sd_source": "assumed"}]
    ci = ContrastInputs(name="zero_back", kind="t", task_sum=1.0,
                        composition={"negative": {"short_gap": 0.246}}, sensitivity=sens, findings=[])
    top = explain_contrasts([ci], [])["zero_back"].findings[0]
    assert top.code == "baseline_short_gaps" and top.severity == "warn"
    assert "24.6 % of zero_back's negative weight falls in short unmodelled gaps next to blocks, below the 25 % share threshold" in top.message and "lowers zero_back by 0.87 σ" in top.message


def test_measured_global_estimate_is_read_from_the_contrast_section():
    from nbdiag.explain.audit import _measured_global

    assert _measured_global({"measured": {"global_signal": {"estimate": -0.31, "in_model": False}}}) == -0.31
    assert _measured_global({"measured": {"global_signal": {"estimate": 0.0, "in_model": True}}}) is None
    assert _measured_global({}) is None
