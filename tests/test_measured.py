"""Measured signals: estimates equal nilearn's own fit on a voxel holding the series."""

import sys
import warnings
from pathlib import Path

import nibabel as nib
import json

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from nback_scenarios import T_R, build, layout, split  # noqa: E402

from nbdiag.design.context import DesignContext
from nbdiag.diagnostics.baseline import assess_baseline
from nbdiag.diagnostics.measured import measure_signals, nilearn_scale, check_noise_model
from nbdiag.core.thresholds import Thresholds

N = 300
NSS = (0, 1, 2)
NSS_EXCESS = np.array([40.0, 12.0, 4.0])  # % over steady state


def _simulated(seed=3):
    """Global signal with known components: bright first volumes, INSTRUCTION response, noise."""
    ev, _ = layout(N, between_fix=21.0)
    ev = ev[ev.onset < N * T_R - 20]
    keep, un = split(ev, drop=("fixation", "INSTRUCTION"))
    X, roles = build(keep, N, high_pass=0.008)
    rng = np.random.default_rng(seed)
    instr, _r = build(ev[ev.trial_type == "INSTRUCTION"], N)
    base = 500.0
    s = base * (1 + 0.004 * instr["INSTRUCTION"].to_numpy() + 0.002 * rng.standard_normal(N))
    # AR(1) component so the ar1 fit differs from OLS
    e = np.zeros(N)
    for i in range(1, N):
        e[i] = 0.5 * e[i - 1] + rng.standard_normal()
    s = s + 0.6 * e
    # each flagged volume NSS_EXCESS above its local steady level: the median of the unflagged volumes
    # within 8 on each side (volumes 3..v+8)
    for v, x in zip(NSS, NSS_EXCESS):
        s[v] = float(np.median(s[3:v + 9])) * (1 + x / 100.0)
    ctx = DesignContext(t_r=T_R, events=keep, unmodeled_events=un, high_pass=0.008, nonsteady_volumes=NSS)
    return X, roles, ctx, s


def _nilearn_fit(X, y, vectors, noise_model):
    from nilearn.glm.first_level import FirstLevelModel

    img = nib.Nifti1Image(y.reshape(1, 1, 1, -1).astype(float), np.eye(4))
    mask = nib.Nifti1Image(np.ones((1, 1, 1), dtype=np.int8), np.eye(4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = FirstLevelModel(mask_img=mask, noise_model=noise_model, minimize_memory=False, t_r=T_R)
        model.fit(img, design_matrices=[X])
        out = {}
        for name, vec in vectors.items():
            maps = model.compute_contrast(vec, output_type="all")
            out[name] = {k: float(maps[k].get_fdata().ravel()[0]) for k in ("effect_size", "effect_variance", "stat")}
    return out


def _vectors(X):
    cols = list(X.columns)
    z = np.array([1.0 if c == "zero_back" else 0.0 for c in cols])
    d = np.array([1.0 if c == "two_back" else -1.0 if c == "zero_back" else 0.0 for c in cols])
    return {"zero_back": z, "two_back - zero_back": d}


@pytest.mark.parametrize("rank_deficient", [False, True])
def test_estimates_equal_nilearn_first_level_fit(rank_deficient):
    X, roles, ctx, s = _simulated()
    if rank_deficient:  # a duplicated task column: nilearn's pinv route, not the QR shortcut
        X = X.copy()
        X.insert(2, "zero_back_copy", X["zero_back"] + X["two_back"])
        roles = {"zero_back_copy": "task", **roles}
    classes = assess_baseline(X, roles, ctx, Thresholds()).scan_classes
    vectors = _vectors(X)
    res = measure_signals({"global_signal": s}, X, vectors, classes, nonsteady_volumes=NSS, noise_model="ar1")
    ols = _nilearn_fit(X, s, vectors, "ols")
    ar1 = _nilearn_fit(X, s, vectors, "ar1")
    for name in vectors:
        m = res.contrasts[name]["global_signal"]
        assert m.estimate_ols == pytest.approx(ols[name]["effect_size"], abs=1e-8)
        assert m.estimate == pytest.approx(ar1[name]["effect_size"], abs=1e-8)
        assert m.se == pytest.approx(np.sqrt(ar1[name]["effect_variance"]), abs=1e-8)
        assert m.t == pytest.approx(ar1[name]["stat"], abs=1e-6)
        assert m.estimate != pytest.approx(m.estimate_ols, abs=1e-6)  # the ar1 fit is a different number
        assert sum(m.by_class.values()) == pytest.approx(m.estimate_ols, abs=1e-8)
        assert sum(m.by_class_estimate.values()) == pytest.approx(m.estimate, abs=1e-8)
        assert "nonsteady" in m.by_class and "unmodeled_event" in m.by_class
    # the non-steady-state part is negative for zero_back (bright volumes read as baseline)
    assert res.contrasts["zero_back"]["global_signal"].by_class["nonsteady"] < 0
    assert set(res.missing) == {"csf", "white_matter"}


def test_measured_nonsteady_excess_equals_simulated():
    X, roles, ctx, s = _simulated()
    classes = assess_baseline(X, roles, ctx, Thresholds()).scan_classes
    res = measure_signals({"global_signal": s}, X, _vectors(X), classes, nonsteady_volumes=NSS, noise_model="ols")
    summ = res.signals["global_signal"]
    np.testing.assert_allclose(summ.percent_excess_nonsteady, NSS_EXCESS, atol=1e-9)
    assert summ.steady_median == pytest.approx(np.median(np.delete(s, NSS)))
    # residual sd measured on steady rows: the flagged volumes do not inflate it
    assert 0.1 < summ.residual_sd_percent < 0.6


def test_signal_in_the_model_says_so():
    X, roles, ctx, s = _simulated()
    X = X.copy()
    X.insert(0, "global_signal", s - s.mean())
    roles = {"global_signal": "confound", **roles}
    classes = assess_baseline(X, roles, ctx, Thresholds()).scan_classes
    res = measure_signals({"global_signal": s}, X, _vectors(X), classes, nonsteady_volumes=NSS)
    m = res.contrasts["zero_back"]["global_signal"]
    assert m.in_model is True and m.estimate is None and m.estimate_ols is None
    assert "in the model" in m.note
    assert res.signals["global_signal"].in_model


def test_nilearn_scale_and_noise_model_check():
    np.testing.assert_allclose(nilearn_scale(np.array([1.0, 3.0])), [-50.0, 50.0])
    np.testing.assert_allclose(nilearn_scale(np.array([0.2, 0.4])), 100 * (np.array([0.2, 0.4]) - 1))  # max(mean, 1)
    assert check_noise_model("ar2") == "ar2"
    with pytest.raises(ValueError, match="noise_model must be"):
        check_noise_model("gls")


def _study_records(n_subjects=20, seed=11, bright=True):
    """A simulated study: per subject, a global signal with bright first volumes (varying size) and noise."""
    from nbdiag.diagnostics.sensitivity import assess_sensitivity, signal_library
    from dataclasses import replace

    from report_examples import minimal_record

    X, roles, ctx, _ = _simulated()
    classes = assess_baseline(X, roles, ctx, Thresholds()).scan_classes
    vectors = _vectors(X)
    w = np.linalg.pinv(X.to_numpy()).T
    rng = np.random.default_rng(seed)
    records, true_nss, true_total = [], [], []
    for i in range(n_subjects):
        base = 500.0 + 20 * rng.standard_normal()
        excess = np.array([40.0, 12.0, 4.0]) * (1 + 0.3 * rng.standard_normal()) * (1.0 if bright else 0.0)
        s = base * (1 + 0.003 * rng.standard_normal(N))
        s[list(NSS)] = base * (1 + excess / 100.0)
        res = measure_signals({"global_signal": s}, X, vectors, classes, nonsteady_volumes=NSS, noise_model="ols")
        sigs = signal_library(X, roles, replace(ctx, measured_signals={"global_signal": s}))
        contrasts = {}
        for name, vec in vectors.items():
            contrasts[name] = {"expression": name, "estimable": True, "findings": [],
                               "measured": res.contrast_dict(name),
                               "sensitivity": assess_sensitivity(X, name, vec, sigs).to_dict()}
        records.append(json.loads(json.dumps(minimal_record(f"sub-{i:02d}", "default", "fail",
                                                            contrasts=contrasts))))  # JSON values only
        y = 100 * (s / s.mean() - 1)
        wz = w @ vectors["zero_back"]
        nss_rows = np.zeros(N, dtype=bool)
        nss_rows[list(NSS)] = True
        # truth: the simulated bright-volume excess (noise-free), in nilearn's scaling
        true_nss.append(float(wz[nss_rows] @ (100 * base * excess / 100.0 / s.mean())))
        true_total.append(float(wz @ y))
    return records, np.array(true_nss), np.array(true_total)


def test_group_attribution_recovers_simulated_nonsteady_share():
    from nbdiag.group.attribution import COLUMNS, attribution_table
    from nbdiag.report.attribution import attribution_sentences

    records, true_nss, true_total = _study_records()
    table = attribution_table(records)
    assert list(table.columns) == COLUMNS
    z = table[(table.contrast == "zero_back")].set_index("source")
    row = z.loc["measured:global_signal:nonsteady"]
    assert row.n_subjects == 20
    # mean/sem/t are the one-sample statistics of the per-subject parts
    parts = np.array([r["contrasts"]["zero_back"]["measured"]["global_signal"]["by_class"]["nonsteady"]
                      for r in records])
    assert row["mean"] == pytest.approx(parts.mean())
    assert row["sem"] == pytest.approx(parts.std(ddof=1) / np.sqrt(20))
    assert row["t"] == pytest.approx(parts.mean() / (parts.std(ddof=1) / np.sqrt(20)))
    # the non-steady-state share matches the simulated truth within its standard error
    total = z.loc["measured:global_signal:total"]
    true_share = true_nss.mean() / true_total.mean()
    share_se = row["sem"] / abs(total["mean"])
    assert abs(row["share"] - true_share) <= share_se
    assert row["share"] > 0.5 and row["mean"] < 0
    # predicted NSS bias (measured sizes) is in the table next to the measured part
    assert z.loc["predicted:nonsteady_unhandled", "mean"] == pytest.approx(row["mean"], rel=0.05)
    # the classes add up to the total, per subject and so in the mean
    classes = z[z.index.str.startswith("measured:global_signal:") & (z.index != "measured:global_signal:total")]
    assert classes["mean"].sum() == pytest.approx(total["mean"], abs=1e-9)
    sentence = attribution_sentences(table)["default"]
    assert sentence.startswith("Across 20 subjects the global signal's zero_back estimate is −")
    # the first (and only) cause named is the flagged volumes, with the mean and t of their part
    first = sentence.split(".")[0] + "." + sentence.split(".")[1]
    mean_txt = f"{row['mean']:+.2f} %".replace("-", "−")
    t_txt = f"t = {row['t']:.1f}".replace("-", "−")
    assert f"the flagged non-steady-state volumes contribute {mean_txt} ({t_txt}, {100 * row['share']:.0f} % of it)" \
        in sentence, sentence
    assert "fixation" not in sentence and "zero_back scans" not in first   # the model's own terms are no answer
    assert "two_back − zero_back:" in sentence
    assert z.loc["measured:global_signal:nonsteady", "kind"] == "cause"
    assert z.loc["measured:global_signal:nonsteady", "distinct"]
    assert z.loc["measured:global_signal:fixation", "kind"] == "term"
    assert z.loc["measured:global_signal:total", "kind"] == "total"


def test_group_attribution_clean_study_names_no_cause():
    from nbdiag.group.attribution import attribution_table
    from nbdiag.report.attribution import attribution_sentences

    records, _, _ = _study_records(bright=False)
    table = attribution_table(records)
    causes = table[(table.kind == "cause") & table.distinct]
    assert causes.empty, causes
    sentence = attribution_sentences(table)["default"]
    assert "contribute" not in sentence
    assert ("it comes from the conditions themselves" in sentence
            or "no cause in the design moves it" in sentence), sentence
    # not distinct totals: no share anywhere
    tot = table[table.kind == "total"]
    if not tot.distinct.any():
        assert table.share.isna().all()


def test_measure_and_noise_model_settings():
    from nbdiag.config import SettingsError, config_from_mapping, override_config

    cfg = config_from_mapping({"measure": "bold", "model": {"noise_model": "ols"},
                               "variants": {"a": {}, "b": {"measure": "none"}}})
    assert [(v.variant, v.measure, v.model.noise_model) for v in cfg.all_variants()] == \
        [("a", "bold", "ols"), ("b", "none", "ols")]
    assert override_config(cfg, measure="confounds").variants["b"].measure == "confounds"
    with pytest.raises(SettingsError, match="'measure'.*confounds"):
        config_from_mapping({"measure": "voxels"})
    with pytest.raises(SettingsError, match="noise_model"):
        config_from_mapping({"model": {"noise_model": "gls"}})


def test_measure_none_uses_assumed_sizes_and_says_so(small_bids, tmp_path):
    import json

    from nbdiag.cli import main

    out = tmp_path / "out"
    base = [str(small_bids), str(out), "participant", "--task", "nback", "--space", "MNI152NLin6Asym",
            "--derivatives", "derivatives/fmriprep", "--img-filter", "desc", "preproc", "--participant-label", "01",
            "--confounds-strategy", "motion", "--confounds-motion", "basic", "--no-reports"]
    assert main(base + ["--measure", "none"]) in (0, 1)
    rec = json.loads(next(out.rglob("*ses-1*run-01*_nbdiag.json")).read_text())
    assert rec["measured"]["mode"] == "none" and "assumed" in rec["measured"]["note"]
    entries = [e for c in rec["contrasts"].values() for e in c.get("sensitivity", [])]
    assert entries and {e["magnitude_source"] for e in entries} == {"assumed"}
    assert {e["sd_source"] for e in entries} == {"assumed"}
    nss = [e for e in entries if e["source"] == "nonsteady"]
    assert nss and "assumed" in nss[0]["label"] and "T1" in nss[0]["label"]
    out2 = tmp_path / "out2"
    assert main([a if a != str(out) else str(out2) for a in base]) in (0, 1)
    rec2 = json.loads(next(out2.rglob("*ses-1*run-01*_nbdiag.json")).read_text())
    nss2 = [e for c in rec2["contrasts"].values() for e in c["sensitivity"] if e["source"] == "nonsteady"]
    assert nss2[0]["magnitude_source"] == "measured:global_signal"
    # sigma matches the size's scale: measured global noise for the measured size, 1 % for assumed ones
    gs_sd = rec2["measured"]["signals"]["global_signal"]["residual_sd_percent"]
    assert nss2[0]["sd_source"] == "measured:global_signal" and nss2[0]["noise_sd_percent"] == gs_sd
    other = [e for c in rec2["contrasts"].values() for e in c["sensitivity"] if e["source"] == "run_start"]
    assert other[0]["sd_source"] == "assumed" and other[0]["noise_sd_percent"] == 1.0
    assert nss2[0]["bias_sd"] == pytest.approx(nss2[0]["bias"] / gs_sd / np.sqrt(
        rec2["contrasts"][next(iter(rec2["contrasts"]))]["variance"]), rel=1e-9)
    gs = rec2["measured"]["signals"]["global_signal"]
    assert len(gs["percent_excess_nonsteady"]) == len(gs["nonsteady_volumes"]) > 0


def test_parts_have_a_fixed_reference_invariant_to_a_constant(monkeypatch):
    """Parts Σ_class w (y − r): adding a constant to the signal moves none of them; they sum to the estimate."""
    import nbdiag.diagnostics.measured as measured_mod

    X, roles, ctx, s = _simulated()
    classes = assess_baseline(X, roles, ctx, Thresholds()).scan_classes
    vectors = _vectors(X)
    a = measure_signals({"global_signal": s}, X, vectors, classes, nonsteady_volumes=NSS, noise_model="ar1")
    # nilearn's scaling always centres y on its temporal mean; add a constant (3 %) to the scaled signal
    scale = measured_mod.nilearn_scale
    monkeypatch.setattr(measured_mod, "nilearn_scale", lambda x: scale(x) + 3.0)
    b = measure_signals({"global_signal": s}, X, vectors, classes, nonsteady_volumes=NSS, noise_model="ar1")
    monkeypatch.setattr(measured_mod, "nilearn_scale", scale)
    assert b.signals["global_signal"].reference["value"] == pytest.approx(
        a.signals["global_signal"].reference["value"] + 3.0)
    ref = a.signals["global_signal"].reference
    assert ref["n_scans"] == int(sum(c == "fixation" for c in classes)) and "implicit-baseline" in ref["definition"]
    y = nilearn_scale(s)
    fix = np.array([c == "fixation" for c in classes])
    assert ref["value"] == pytest.approx(float(np.median(y[fix])))
    w = np.linalg.pinv(X.to_numpy()).T
    for name, vec in vectors.items():
        ma, mb = a.contrasts[name]["global_signal"], b.contrasts[name]["global_signal"]
        for k in ma.by_class:
            # invariant (the old Σ w y parts moved with the temporal mean)
            assert mb.by_class[k] == pytest.approx(ma.by_class[k], abs=1e-6)
            assert mb.by_class_estimate[k] == pytest.approx(ma.by_class_estimate[k], abs=1e-6)
        assert sum(ma.by_class.values()) == pytest.approx(ma.estimate_ols, abs=1e-8)
        assert sum(ma.by_class_estimate.values()) == pytest.approx(ma.estimate, abs=1e-8)
        assert "reference" not in ma.by_class  # the model has a constant
        # the nonsteady part by hand: Σ w_k (y_k − r) over the flagged rows
        wv = w @ vec
        assert ma.by_class["nonsteady"] == pytest.approx(float(wv[list(NSS)] @ (y[list(NSS)] - ref["value"])))
        assert ma.by_class_kind["nonsteady"] == "cause" and ma.by_class_kind["fixation"] == "term"
        se = ma.by_class_se["nonsteady"]
        sig = a.signals["global_signal"].residual_sd_percent
        # independent: AR(1) correlation matrix built in full, ρ from the OLS residual (lstsq) on steady rows
        e = y - X.to_numpy() @ np.linalg.lstsq(X.to_numpy(), y, rcond=None)[0]
        ok = np.ones(N, dtype=bool)
        ok[list(NSS)] = False
        pair = ok[1:] & ok[:-1]
        a_, b_ = e[1:][pair], e[:-1][pair]
        rho = float(np.clip(a_ @ b_ / np.sqrt((a_ @ a_) * (b_ @ b_)), 0, 0.95))   # lag-1 autocorrelation
        R = rho ** np.abs(np.subtract.outer(np.arange(N), np.arange(N)))
        v = np.zeros(N)
        v[list(NSS)] = wv[list(NSS)]
        expect = sig * np.sqrt(v @ R @ v + wv[list(NSS)].sum() ** 2 * np.pi * (1 + rho)
                               / (2 * ref["n_scans"] * (1 - rho)))
        assert 0 < rho < 0.95 and se == pytest.approx(expect, rel=1e-6)
        assert ma.by_class_t["nonsteady"] == pytest.approx(ma.by_class["nonsteady"] / se)
    # bright first volumes are a distinct cause of zero_back, named first
    causes = a.contrasts["zero_back"]["global_signal"].causes()
    assert causes[0][0] == "nonsteady" and causes[0][1] < 0


def test_model_without_constant_records_the_reference_remainder():
    X, roles, ctx, s = _simulated()
    X = X.drop(columns=["constant"])
    roles = {k: v for k, v in roles.items() if k != "constant"}
    classes = assess_baseline(X, roles, ctx, Thresholds()).scan_classes
    res = measure_signals({"global_signal": s}, X, _vectors(X), classes, nonsteady_volumes=NSS, noise_model="ar1")
    m = res.contrasts["zero_back"]["global_signal"]
    ref = res.signals["global_signal"].reference
    assert "zero_back" in ref["remainder"]
    w = np.linalg.pinv(X.to_numpy()).T @ _vectors(X)["zero_back"]
    assert m.by_class["reference"] == pytest.approx(ref["value"] * w.sum())
    assert m.by_class_kind["reference"] == "term" and m.by_class_t["reference"] is None
    assert sum(m.by_class.values()) == pytest.approx(m.estimate_ols, abs=1e-8)
    assert sum(m.by_class_estimate.values()) == pytest.approx(m.estimate, abs=1e-8)


def test_unflagged_bright_first_volumes_found_from_global_signal():
    from nbdiag.diagnostics.measured import detect_transients

    X, roles, ctx, s = _simulated()
    s = s.copy()
    med = float(np.median(s[3:]))
    s[:3] = med * (1 + np.array([40.0, 10.0, 0.1]) / 100)  # bright first two volumes, not flagged
    t = detect_transients("global_signal", s)
    assert t.unflagged() == [0, 1]
    assert [v["position"] for v in t.volumes] == ["run_start", "run_start"]
    # the excess over the local steady level: the median of the 8 neighbours that do not stand out (2..8),
    # as a ratio (the one definition, as for flagged volumes)
    assert t.volumes[0]["excess_percent"] == pytest.approx(100 * (s[0] / np.median(s[2:9]) - 1))
    flagged = detect_transients("global_signal", s, nonsteady=[0])
    assert flagged.volumes[0]["excess_percent"] == pytest.approx(100 * (s[0] / np.median(s[2:9]) - 1))
    classes = assess_baseline(X, roles, ctx.__class__(t_r=T_R, events=ctx.events, unmodeled_events=ctx.unmodeled_events,
                                                       high_pass=0.008), Thresholds()).scan_classes
    res = measure_signals({"global_signal": s}, X, _vectors(X), classes, noise_model="ols")
    m = res.contrasts["zero_back"]["global_signal"]
    assert m.causes()[0][0] == "transient"
    # a spike in the middle, flagged as a motion outlier: found, flagged_by says so
    s2 = s.copy()
    s2[150] = med * 1.2
    t2 = detect_transients("global_signal", s2, motion_flagged=[150])
    spike = [v for v in t2.volumes if v["volume"] == 150][0]
    assert spike["position"] == "spike" and spike["flagged_by"] == ["motion_outlier"]
    assert 150 not in t2.unflagged()
    # a clean run (same noise, no bright volumes) is quiet
    rng = np.random.default_rng(0)
    clean = 500 * (1 + 0.002 * rng.standard_normal(N))
    assert detect_transients("global_signal", clean).volumes == ()
    res = measure_signals({"global_signal": clean}, X, _vectors(X), classes, noise_model="ols")
    assert all(not m.causes() or m.causes()[0][0] != "transient" for m in
               (res.contrasts[c]["global_signal"] for c in res.contrasts))
    assert "transient" not in res.contrasts["zero_back"]["global_signal"].by_class
    # no spread: nothing to compare with
    assert detect_transients("global_signal", np.full(N, 5.0)) is None
    assert detect_transients("global_signal", np.full(N, np.nan)) is None


def test_one_definition_of_a_flagged_volumes_excess():
    """The record's percent_excess_nonsteady, the nonsteady signal (its label and values) and the transient
    listing give one number per flagged volume: the excess over its local steady level (local_excess), checked
    by hand and against nilearn's change when the volumes are masked."""
    from nbdiag.diagnostics.measured import local_excess, measured_nonsteady_excess
    from nbdiag.diagnostics.sensitivity import signal_library
    from dataclasses import replace

    X, roles, ctx, s = _simulated()
    ctx = replace(ctx, measured_signals={"global_signal": s})
    classes = assess_baseline(X, roles, ctx, Thresholds()).scan_classes
    task = [c for c in X.columns if roles.get(c) == "task"]
    res = measure_signals({"global_signal": s}, X, _vectors(X), classes, nonsteady_volumes=NSS, noise_model="ols",
                          task_columns=task)
    summ = res.signals["global_signal"]
    listed = {v["volume"]: v["excess_percent"] for v in summ.transients.volumes}
    sig = next(g for g in signal_library(X, roles, ctx) if g.source == "nonsteady")
    for i, v in enumerate(NSS):
        assert summ.percent_excess_nonsteady[i] == pytest.approx(listed[v], abs=1e-12)
        # the signal holds it in % of the run's mean (nilearn's scaling): excess × level / mean
        level = s[v] / (1 + listed[v] / 100)
        assert sig.values[v] == pytest.approx(listed[v] * level / s.mean(), rel=1e-12)
    assert f"{listed[0]:.1f} % at volume 0 over its local steady level" in sig.label
    # by hand, without the task response taken out the same numbers within the response's size at the run start
    np.testing.assert_allclose(summ.percent_excess_nonsteady, NSS_EXCESS, atol=0.05)
    hand = [100 * (s[v] / np.median(s[3:v + 9]) - 1) for v in NSS]
    np.testing.assert_allclose(local_excess(s, NSS, ~np.isin(np.arange(s.size), NSS)), hand, atol=1e-12)
    assert measured_nonsteady_excess(replace(ctx, measured_signals=None), NSS) is None
    assert measured_nonsteady_excess(replace(ctx, measured_signals={"global_signal": s[:2]}), NSS) is None
    nan = np.full(s.size, np.nan)
    nan[list(NSS)] = 1.0
    assert measured_nonsteady_excess(replace(ctx, measured_signals={"global_signal": nan}), NSS) is None
    # the bias this excess predicts (wᵀm) is nilearn's change when each flagged volume is put back at its
    # local steady level (signal_scaling=0: % of the mean; the levels are within 0.1 % of the mean)
    fixed = s.copy()
    for i, v in enumerate(NSS):
        fixed[v] = s[v] / (1 + summ.percent_excess_nonsteady[i] / 100)
    vec = _vectors(X)
    a, b = _nilearn_fit(X, s, vec, "ols"), _nilearn_fit(X, fixed, vec, "ols")
    from nbdiag.diagnostics._linalg import DesignAlgebra

    for name, c in vec.items():
        w = DesignAlgebra.of(X).weights(c)
        change = a[name]["effect_size"] - b[name]["effect_size"]
        assert float(w @ sig.values) == pytest.approx(change, rel=0.01)
    # edge cases: no steady neighbour -> the whole steady median; zero level -> NaN
    far = np.r_[150.0, np.full(20, 100.0)]
    assert local_excess(far, [0], np.r_[False, np.zeros(9, bool), np.ones(11, bool)])[0] == pytest.approx(50.0)
    assert np.isnan(local_excess(np.r_[1.0, np.zeros(5)], [0], np.r_[False, np.ones(5, bool)])[0])
