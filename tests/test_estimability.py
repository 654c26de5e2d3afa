"""Estimability (SPM rule), variance (nilearn OLS), efficiency and cVIF."""

import numpy as np
import pandas as pd
import pytest
from nilearn.glm.first_level import make_first_level_design_matrix
from nilearn.glm.regression import OLSModel

from nbdiag.diagnostics.estimability import (
    assess_contrast, contrast_variance, contrast_vif, is_estimable,
)


def _rank_rule(X, c):
    """SPM 'allCon' alternative: c estimable iff rank([X; c]) == rank(X)."""
    return np.linalg.matrix_rank(np.vstack([X, c])) == np.linalg.matrix_rank(X)


def _tiling_boxcars(n=90):
    t = np.arange(n)
    b = [((t // 10) % 3 == k).astype(float) for k in range(3)]
    return np.column_stack(b + [np.ones(n)])


@pytest.mark.parametrize("c, expected", [
    ([1, 0, 0], False), ([0, 1, 0], False), ([1, 1, 0], True), ([1, -1, 0], False), ([0, 0, 1], True),
])
def test_estimability_exactly_collinear_columns(c, expected):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(50)
    X = np.column_stack([a, a, np.ones(50)])
    assert is_estimable(X, c) is expected
    assert _rank_rule(X, c) == expected


@pytest.mark.parametrize("c, expected", [
    ([1, 0, 0, 0], False), ([0, 0, 0, 1], False), ([1, -1, 0, 0], True),
    ([1, 0, -1, 0], True), ([1, 0, 0, 1], True), ([1, 1, 1, -1], False), ([1, 0, 0, -1], False),
])
def test_estimability_conditions_plus_constant_tile_the_run(c, expected):
    # null space of [b1 b2 b3 1] is (1, 1, 1, -1): estimable iff c is orthogonal to it
    X = _tiling_boxcars()
    assert (abs(np.dot(c, [1, 1, 1, -1])) < 1e-12) == expected
    assert is_estimable(X, c) is expected
    assert _rank_rule(X, c) == expected


def test_estimable_when_part_of_run_is_baseline():
    X = _tiling_boxcars()
    X = np.delete(X, 2, axis=1)  # third condition becomes implicit baseline
    assert is_estimable(X, [1, 0, 0]) and is_estimable(X, [1, -1, 0])


def test_variance_orthogonal_columns():
    n = 40
    t = np.arange(n)
    X = np.column_stack([np.cos(2 * np.pi * 3 * t / n) * 2.0, np.sin(2 * np.pi * 5 * t / n) * 0.5, np.ones(n)])
    norms2 = (X ** 2).sum(axis=0)
    for c in ([1, 0, 0], [0, 1, 0], [1, -1, 0], [2, 3, 1]):
        assert contrast_variance(X, c) == pytest.approx(np.sum(np.square(c) / norms2), rel=1e-10)
    assert contrast_vif(X, [1, 0, 0]) == pytest.approx(1.0)
    assert contrast_vif(X, [1, -1, 0]) == pytest.approx(1.0)


def _correlated_pair(n, r, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 2))
    z -= z.mean(axis=0)
    q, _ = np.linalg.qr(z)  # orthonormal, centred
    u, v = q[:, 0], q[:, 1]
    x1 = np.sqrt(n) * u
    x2 = np.sqrt(n) * (r * u + np.sqrt(1 - r * r) * v)  # centred, unit variance, corr exactly r
    return np.column_stack([x1, x2, np.ones(n)])


@pytest.mark.parametrize("r", [0.0, 0.3, 0.8, -0.6])
def test_variance_and_cvif_two_correlated_columns(r):
    n = 60
    X = _correlated_pair(n, r)
    assert np.corrcoef(X[:, 0], X[:, 1])[0, 1] == pytest.approx(r)
    assert contrast_variance(X, [1, 0, 0]) == pytest.approx(1 / (n * (1 - r * r)))
    assert contrast_variance(X, [1, -1, 0]) == pytest.approx(2 / (n * (1 - r)))
    assert contrast_variance(X, [1, 1, 0]) == pytest.approx(2 / (n * (1 + r)))
    assert contrast_vif(X, [1, 0, 0]) == pytest.approx(1 / (1 - r * r))
    assert contrast_vif(X, [1, -1, 0]) == pytest.approx(1 / (1 - r))
    st = assess_contrast(pd.DataFrame(X, columns=["a", "b", "constant"]), "a", [1, 0, 0], "single")
    assert st.efficiency == pytest.approx(n * (1 - r * r))


def test_variance_matches_nilearn_ols():
    ft = np.arange(80) * 2.0
    ev = pd.DataFrame({"onset": [0, 30, 60, 90, 120], "duration": [15] * 5,
                       "trial_type": ["a", "b", "a", "b", "a"]})
    X = make_first_level_design_matrix(ft, ev, hrf_model="glover", high_pass=0.01)
    y = np.random.default_rng(3).standard_normal((len(ft), 2))
    res = OLSModel(X.to_numpy()).fit(y)
    for expr in (["a"], ["a", "b"]):
        c = np.zeros(X.shape[1])
        c[list(X.columns).index("a")] = 1
        if len(expr) == 2:
            c[list(X.columns).index("b")] = -1
        ref = float(np.ravel(res.vcov(matrix=c[None, :], dispersion=1.0))[0])
        assert contrast_variance(X, c) == pytest.approx(ref, rel=1e-10)
        t = res.Tcontrast(c[None, :], dispersion=np.ones(2))
        assert float(np.ravel(t.sd)[0]) ** 2 == pytest.approx(contrast_variance(X, c), rel=1e-10)


def _mumford_reference(X, c):
    """Mumford's est_contrast_vifs, written out with np.linalg.inv."""
    keep = X.std(axis=0) > 0
    Z = X[:, keep] - X[:, keep].mean(axis=0)
    Z = Z / (np.sqrt(len(Z) - 1) * Z.std(axis=0, ddof=1))
    ck = np.asarray(c, float)[keep]
    num = ck @ np.linalg.inv(Z.T @ Z) @ ck
    den = ck @ np.linalg.inv((Z.T @ Z) * np.eye(Z.shape[1])) @ ck
    return num / den


def _nback_design(model_fixation, n_scans=240, t_r=2.0):
    ft = np.arange(n_scans) * t_r
    rows, t = [], 0.0
    while t < n_scans * t_r:
        for cond in ("zero_back", "two_back", "fixation"):
            rows.append((t, 30.0, cond))
            t += 30.0
    ev = pd.DataFrame(rows, columns=["onset", "duration", "trial_type"])
    if not model_fixation:
        ev = ev[ev.trial_type != "fixation"]
    return make_first_level_design_matrix(ft, ev, hrf_model="glover", drift_model="cosine", high_pass=0.005)


def test_cvif_large_for_single_small_for_difference_when_conditions_tile_the_run():
    X = _nback_design(model_fixation=True)
    cols = list(X.columns)

    def vec(**w):
        c = np.zeros(len(cols))
        for k, v in w.items():
            c[cols.index(k)] = v
        return c

    single = contrast_vif(X, vec(zero_back=1))
    diff = contrast_vif(X, vec(two_back=1, zero_back=-1))
    assert single == pytest.approx(_mumford_reference(X.to_numpy(), vec(zero_back=1)), rel=1e-6)
    assert diff == pytest.approx(_mumford_reference(X.to_numpy(), vec(two_back=1, zero_back=-1)), rel=1e-6)
    assert single >= 10 and diff < 5
    st = assess_contrast(X, "zero_back", vec(zero_back=1), "single")
    assert [f.severity for f in st.findings if f.code == "contrast_variance_inflated"] == ["fail"]
    assert st.findings[0].contrast == "zero_back" and st.findings[0].evidence["cvif"] == pytest.approx(single)
    assert assess_contrast(X, "d", vec(two_back=1, zero_back=-1), "differential").findings == ()
    # with fixation left as implicit baseline, the single-condition contrast is fine
    X2 = _nback_design(model_fixation=False)
    c2 = np.zeros(X2.shape[1])
    c2[list(X2.columns).index("zero_back")] = 1
    assert contrast_vif(X2, c2) < 5


def test_assess_contrast_not_estimable():
    X = pd.DataFrame(_tiling_boxcars(), columns=["a", "b", "c", "constant"])
    st = assess_contrast(X, "a", [1, 0, 0, 0], "single")
    assert st.estimable is False and np.isinf(st.cvif)
    codes = {f.code: f.severity for f in st.findings}
    assert codes == {"contrast_not_estimable": "fail", "contrast_variance_inflated": "fail"}
    assert st.to_dict()["cvif"] is None and st.to_dict()["effect_required_pct"] is None
    ok = assess_contrast(X, "a-b", [1, -1, 0, 0], "differential")
    assert ok.estimable and not any(f.code == "contrast_not_estimable" for f in ok.findings)


def test_bad_inputs_name_parameter():
    X = _tiling_boxcars()
    with pytest.raises(ValueError, match="c must have one weight per design column"):
        is_estimable(X, [1, 0])
    with pytest.raises(ValueError, match="kind must be one of"):
        assess_contrast(pd.DataFrame(X), "x", [1, 0, 0, 0], "simple")


def test_shared_svd_matches_scipy_pinv_and_numpy_svd_rule():
    """One SVD per matrix gives the same numbers as scipy's pinv / numpy's SVD per call."""
    import scipy.linalg as spl

    from nbdiag.diagnostics import estimability as est

    rng = np.random.default_rng(4)
    for trial in range(30):
        n, p = int(rng.integers(8, 80)), int(rng.integers(2, 7))
        X = rng.standard_normal((n, p))
        if trial % 3 == 1:
            X[:, -1] = X[:, 0] - 2 * X[:, 1]  # rank deficient
        if trial % 3 == 2:
            X[:, -1] = X[:, 0] + 1e-9 * rng.standard_normal(n)  # nearly
        X = np.column_stack([X, np.ones(n)])
        for _ in range(3):
            c = rng.integers(-1, 2, X.shape[1]).astype(float)
            w_ref = spl.pinv(X).T @ c
            np.testing.assert_allclose(est.contrast_weights(X, c), w_ref, rtol=1e-8,
                                       atol=1e-8 * np.abs(w_ref).max())
            assert contrast_variance(X, c) == pytest.approx(float(w_ref @ w_ref), rel=1e-8)
            _, s, vt = np.linalg.svd(X, full_matrices=False)
            tol = max(X.shape) * s.max() * np.finfo(float).eps
            v = vt[: int(np.sum(s > tol))].T
            assert is_estimable(X, c) == bool(np.all(np.abs(v @ (v.T @ c) - c) <= tol))
    # no hidden cache: an array changed in place gives the new numbers
    X = rng.standard_normal((30, 3))
    before = contrast_variance(X, [1, 0, 0])
    X[:, 0] *= 2
    assert contrast_variance(X, [1, 0, 0]) == pytest.approx(before / 4, rel=1e-10)
