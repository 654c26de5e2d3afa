"""Drift diagnostics: cosine periods, R² on drift, cutoff rules, findings."""

import numpy as np
import pandas as pd
import pytest
from nilearn.glm.first_level import make_first_level_design_matrix
from scipy.fft import dct

from nbdiag.design.context import DesignContext
from nbdiag.diagnostics.drift import assess_drift, fsl_cutoffcalc, fsl_highpass

T_R = 2.0
N = 150
FT = np.arange(N) * T_R


def _roles(X):
    return {c: "constant" if c == "constant" else "drift" if c.startswith("drift") else
            "confound" if c.startswith("cosine") else "task" for c in X.columns}


def _blocks(period_s, name="task", start=0.0):
    on = np.arange(start, N * T_R, period_s)
    return pd.DataFrame({"onset": on, "duration": period_s / 2, "trial_type": name})


def _dct_r2(x, k):
    """R² of x on the constant + DCT-II cosines 1..k, via scipy's orthonormal DCT."""
    coef = dct(x, norm="ortho")
    return float(np.sum(coef[1:k + 1] ** 2) / np.sum(coef[1:] ** 2))


def test_periods_and_r2_match_hand_computation_on_pure_block_design():
    hp = 1 / 128
    X = make_first_level_design_matrix(FT, _blocks(120.0), hrf_model=None, drift_model="cosine", high_pass=hp)
    roles = _roles(X)
    res = assess_drift(X, roles, DesignContext(t_r=T_R, high_pass=hp), {"task": (X.columns == "task").astype(float)})
    K = len(res.drift_columns)
    assert K == int(np.floor(2 * N * hp * T_R))
    for k in range(1, K + 1):
        period = res.periods_s[f"drift_{k}"]
        assert period == pytest.approx(2 * N * T_R / k)
        # the column is a cosine of that period (phase at the middle of a frame)
        ref = np.cos(2 * np.pi * (FT + T_R / 2) / period)
        assert abs(np.corrcoef(ref, X[f"drift_{k}"])[0, 1]) == pytest.approx(1.0)
    x = X["task"].to_numpy()
    assert res.r2_task["task"] == pytest.approx(_dct_r2(x, K), abs=1e-10)
    assert res.r2_contrast["task"] == pytest.approx(res.r2_task["task"])
    assert res.variance_kept["task"] == pytest.approx(1 - _dct_r2(x, K), abs=1e-10)
    assert res.current_cutoff_s == pytest.approx(128.0)
    d = res.to_dict()
    assert len(d["spectra"]["freqs_hz"]) <= 256 and len(d["spectra"]["power"]["task"]) == len(d["spectra"]["freqs_hz"])


def test_recommended_cutoff_is_shortest_keeping_90_percent_and_resolves_finding():
    # slow blocks (150 s cycle) with a 100 s cutoff: the high-pass eats the design
    hp = 0.01
    X = make_first_level_design_matrix(FT, _blocks(150.0, start=37.5), hrf_model="glover", drift_model="cosine", high_pass=hp)
    res = assess_drift(X, _roles(X), DesignContext(t_r=T_R, high_pass=hp), {})
    cut = [f for f in res.findings if f.code == "highpass_cuts_design"]
    assert cut and cut[0].severity == "warn"
    assert cut[0].evidence["recommended_cutoff_s"] == pytest.approx(res.recommended_cutoff_s)
    x = X["task"].to_numpy()
    # hand computation: largest number of cosines keeping >= 90 %, period >= 90 s
    best = 0
    for k in range(1, N):
        if 2 * N * T_R / k < 90 or 1 - _dct_r2(x, k) < 0.9:
            break
        best = k
    assert best >= 1
    assert res.recommended_cutoff_s == pytest.approx(2 * N * T_R / best)
    assert res.recommended_high_pass_hz == pytest.approx(best / (2 * N * T_R))
    # applying the recommendation in nilearn keeps exactly `best` cosines and clears the finding
    X2 = make_first_level_design_matrix(FT, _blocks(150.0, start=37.5), hrf_model="glover", drift_model="cosine",
                                        high_pass=res.recommended_high_pass_hz)
    assert sum(c.startswith("drift_") for c in X2.columns) == best
    res2 = assess_drift(X2, _roles(X2), DesignContext(t_r=T_R, high_pass=res.recommended_high_pass_hz), {})
    assert not any(f.code == "highpass_cuts_design" for f in res2.findings)
    assert res2.variance_kept["task"] >= 0.9


def test_fsl_cutoffcalc_rule():
    x = make_first_level_design_matrix(FT, _blocks(200.0), hrf_model="glover", drift_model=None)["task"].to_numpy()
    # the running-line high-pass removes straight lines exactly
    line = 3.0 + 0.5 * np.arange(N)
    np.testing.assert_allclose(fsl_highpass(line, 10.0), np.full(N, line[0]), atol=1e-8)
    out = fsl_cutoffcalc(x[:, None], T_R)
    sig = out / (2 * T_R)
    ratio = lambda s: np.std(fsl_highpass(x - x.mean(), s), ddof=1) / np.std(x, ddof=1)
    assert out >= 90.0
    assert ratio(sig) > 0.9 and ratio(sig - 1) <= 0.9  # bisection end point: usig passes, lsig fails
    fast = make_first_level_design_matrix(FT, _blocks(40.0), hrf_model="glover", drift_model=None)["task"].to_numpy()
    assert fsl_cutoffcalc(fast[:, None], T_R) == pytest.approx(90.0)  # the 90-s floor


def test_drift_overlap_single_vs_difference_and_duplicated_highpass():
    ev = pd.concat([_blocks(60.0, "two_back"), _blocks(60.0, "zero_back", start=30.0)])
    ev = ev[ev.onset < 140]  # all task in the first half of the run: slow single-condition regressors
    X = make_first_level_design_matrix(FT, ev, hrf_model="glover", drift_model="cosine", high_pass=0.01)
    roles = _roles(X)
    cols = list(X.columns)
    vec = lambda **w: np.array([w.get(c, 0.0) for c in cols])
    con = {"zero_back": vec(zero_back=1), "two_back - zero_back": vec(two_back=1, zero_back=-1)}
    res = assess_drift(X, roles, DesignContext(t_r=T_R, high_pass=0.01), con)
    D = X[[c for c in cols if roles[c] in ("drift", "constant")]].to_numpy()
    for name, c in con.items():
        y = X.to_numpy() @ c
        beta = np.linalg.lstsq(D, y, rcond=None)[0]
        ref = 1 - np.sum((y - D @ beta) ** 2) / np.sum((y - y.mean()) ** 2)
        assert res.r2_contrast[name] == pytest.approx(ref, abs=1e-10)
    assert res.r2_contrast["zero_back"] >= 0.2 > res.r2_contrast["two_back - zero_back"]
    over = {f.contrast: f.severity for f in res.findings if f.code == "drift_overlap" and f.contrast}
    assert over == {"zero_back": "warn"}
    strict = assess_drift(X, roles, DesignContext(t_r=T_R, high_pass=0.01), con,
                          __import__("nbdiag.core.thresholds").core.thresholds.Thresholds(drift_r2_fail=0.25))
    assert {f.contrast: f.severity for f in strict.findings if f.code == "drift_overlap" and f.contrast} == {"zero_back": "fail"}
    assert not any(f.code == "highpass_duplicated" for f in res.findings)
    X["cosine00"] = X["drift_1"].to_numpy()[::-1]
    dup = assess_drift(X, _roles(X), DesignContext(t_r=T_R, high_pass=0.01), {})
    assert dup.cosine_confounds == ("cosine00",)
    assert [f.severity for f in dup.findings if f.code == "highpass_duplicated"] == ["warn"]


def _fsl_highpass_loop(x, sigma):
    """Literal transcription of FSL newimagefns.h bandpass_temporal_filter (high-pass part)."""
    x = np.asarray(x, dtype=float)
    n = len(x)
    if sigma <= 0:
        return x.copy()
    half = int(sigma * 3)
    out = x.copy()
    c0 = 0.0
    first = True
    for t in range(n):
        A = B = C = D = Nw = 0.0
        for tt in range(max(t - half, 0), min(t + half, n - 1) + 1):
            dt = tt - t
            w = np.exp(-0.5 * dt * dt / sigma**2)
            A += w * dt
            B += w * x[tt]
            C += w * dt * dt
            D += w * dt * x[tt]
            Nw += w
        denom = C * Nw - A * A
        if denom != 0:
            c = (B * C - A * D) / denom
            if first:
                c0, first = c, False
            out[t] = c0 + x[t] - c
    return out


def _fsl_highpass_dense(x, sigma):
    """The previous O(n²) matrix implementation of fsl_highpass (kept as a reference)."""
    x = np.asarray(x, dtype=float)
    n = len(x)
    if sigma <= 0:
        return x.copy()
    half = int(sigma * 3)
    t = np.arange(n)
    dtm = t[None, :] - t[:, None]
    w = np.where(np.abs(dtm) <= half, np.exp(-0.5 * dtm.astype(float) ** 2 / sigma**2), 0.0)
    A, C, Nw = (w * dtm).sum(1), (w * dtm**2).sum(1), w.sum(1)
    B, D = w @ x, (w * dtm) @ x
    denom = C * Nw - A * A
    out = x.copy()
    ok = denom != 0
    c = np.where(ok, (B * C - A * D) / np.where(ok, denom, 1.0), 0.0)
    c0 = c[np.argmax(ok)] if ok.any() else 0.0
    out[ok] = c0 + x[ok] - c[ok]
    return out


def test_vectorised_fsl_highpass_equals_loop_and_dense_reference():
    rng = np.random.default_rng(0)
    cases = 0
    for n in [1, 2, 3, 7, 40, 151, 400]:
        for sigma in [0.0, 0.2, 0.34, 1.0, 2.5, 10.0, 33.3, 56.25, 3.0 * n, 1e4]:
            x = rng.normal(size=n).cumsum() + rng.normal() * 5
            got = fsl_highpass(x, sigma)
            dense = _fsl_highpass_dense(x, sigma)
            scale = max(1.0, np.abs(x).max())
            np.testing.assert_allclose(got, dense, rtol=1e-10, atol=1e-10 * scale)
            if n <= 151:
                np.testing.assert_allclose(got, _fsl_highpass_loop(x, sigma), rtol=1e-10, atol=1e-10 * scale)
            cases += 1
    assert cases == 70


def test_fsl_cutoffcalc_unchanged_on_random_designs():
    """Vectorised filter + column batching give the same cutoffcalc answers as the reference filter."""
    rng = np.random.default_rng(5)

    def reference(task, t_r, thresh=0.9, limit=90.0):
        dm = task - task.mean(axis=0)
        std0 = dm.std(axis=0, ddof=1)
        maxstd = std0.max()

        def ratio(s):
            return min(_fsl_highpass_dense(dm[:, j], s).std(ddof=1) / std0[j] if std0[j] > 1e-12 * maxstd
                       else 1.0 for j in range(dm.shape[1]))
        lsig, usig = limit / (2 * t_r), 3.0 * dm.shape[0]
        if ratio(usig) <= thresh:
            return usig * 2 * t_r
        if ratio(lsig) > thresh:
            return lsig * 2 * t_r
        while usig - lsig > 1:
            h = float(np.floor((lsig + usig) / 2 + 0.5))
            usig, lsig = (h, lsig) if ratio(h) > thresh else (usig, h)
        return usig * 2 * t_r

    for period in [30.0, 60.0, 120.0, 200.0, 280.0]:
        X = make_first_level_design_matrix(FT, pd.concat([_blocks(period), _blocks(period * 1.3, "b", 7.0)]),
                                           hrf_model="glover", drift_model=None)[["task", "b"]].to_numpy()
        X = np.column_stack([X, np.zeros(N)])  # a flat column counts as ratio 1
        assert fsl_cutoffcalc(X, T_R) == pytest.approx(reference(X, T_R), rel=1e-12)
    noise = rng.normal(size=(N, 2))
    assert fsl_cutoffcalc(noise, T_R) == pytest.approx(reference(noise, T_R), rel=1e-12)


def test_recommended_cosine_cutoff_equals_per_k_loop():
    """The cumulative-projection search gives the old per-k _kept_fraction loop's answer."""
    from nbdiag.diagnostics.drift import _kept_fraction, recommended_cosine_cutoff

    def loop(task, dt, keep=0.9, min_period_s=90.0):
        n = task.shape[0]
        best = 0
        for k in range(1, min(n - 1, int(np.floor(2 * n * dt / min_period_s))) + 1):
            if all(_kept_fraction(task[:, j], k) >= keep for j in range(task.shape[1])):
                best = k
            else:
                break
        return (None, 0) if best == 0 else (max(2.0 * n * dt / best, min_period_s), best)

    for period in [20.0, 40.0, 90.0, 150.0, 250.0, 400.0]:
        X = make_first_level_design_matrix(FT, pd.concat([_blocks(period), _blocks(period * 0.7, "b", 3.0)]),
                                           hrf_model="glover", drift_model=None)[["task", "b"]].to_numpy()
        X = np.column_stack([X, np.ones(N)])  # a flat column keeps everything
        for keep in (0.5, 0.8, 0.9, 0.99):
            assert recommended_cosine_cutoff(X, T_R, keep) == loop(X, T_R, keep)


def test_highpass_cut_by_fmriprep_cosines_is_attributed_to_them():
    """fMRIPrep cosines (load_confounds 'high_pass') that cut the design: say so, not 'lower high_pass'."""
    import numpy as np
    import pandas as pd
    from nilearn.glm.first_level import make_first_level_design_matrix
    from nbdiag.core.compat import create_cosine_drift

    from nbdiag.design.context import DesignContext
    from nbdiag.diagnostics.drift import assess_drift

    t_r, n = 0.8, 520
    frame_times = np.arange(n) * t_r
    onsets = 10.0 + np.arange(3) * 138.0  # one condition every 138 s
    events = pd.DataFrame({"onset": onsets, "duration": 48.0, "trial_type": "zero_back"})
    fmriprep = create_cosine_drift(1 / 128.0, frame_times)[:, :-1]  # fMRIPrep's 128-s DCT basis
    names = [f"cosine{i:02d}" for i in range(fmriprep.shape[1])]
    design = make_first_level_design_matrix(frame_times, events, drift_model="cosine", high_pass=0.005,
                                            add_regs=fmriprep, add_reg_names=names)
    roles = {c: "task" if c == "zero_back" else "constant" if c == "constant" else "drift" for c in design}
    for strategy, text in ((("motion", "high_pass", "compcor"), "a_comp_cor_"), (("motion", "high_pass"), "Drop 'high_pass'")):
        context = DesignContext(t_r=t_r, drift_model="cosine", high_pass=0.005, confounds_strategy=strategy)
        result = assess_drift(design, roles, context)
        cut = [f for f in result.findings if f.code == "highpass_cuts_design"][0]
        assert cut.evidence["caused_by_cosine_confounds"] is True
        assert cut.evidence["variance_lost_drift_model_only"] < 0.1 < cut.evidence["variance_lost"]
        assert text in cut.fix
        # the two shares are R² on the two subspaces, recomputed by least squares
        y = design["zero_back"].to_numpy()
        D = design[[c for c in design if c.startswith("drift_")] + ["constant"]].to_numpy()
        resid = y - D @ np.linalg.lstsq(D, y, rcond=None)[0]
        r2 = 1 - resid @ resid / ((y - y.mean()) @ (y - y.mean()))
        assert cut.evidence["variance_lost_drift_model_only"] == pytest.approx(r2, rel=1e-8)
