"""Collinearity: VIF vs statsmodels, correlations, condition number, rank."""

import numpy as np
import pandas as pd
import pytest
from nilearn.glm.first_level import make_first_level_design_matrix
from statsmodels.stats.outliers_influence import variance_inflation_factor

from nbdiag.diagnostics.collinearity import assess_collinearity
from nbdiag.core.thresholds import Thresholds

FT = np.arange(120) * 2.0
EVENTS = pd.DataFrame({
    "onset": [10.0, 40.0, 70.0, 100.0, 130.0, 160.0, 190.0],
    "duration": [20.0] * 7,
    "trial_type": ["zero_back", "two_back"] * 3 + ["zero_back"],
})


def _design(add_reg=None, drift_model="cosine"):
    rng = np.random.default_rng(0)
    regs = rng.standard_normal((len(FT), 3)).cumsum(axis=0)
    names = ["conf_a", "conf_b", "conf_c"]
    if add_reg is not None:
        regs = np.column_stack([regs, add_reg])
        names = names + ["conf_task"]
    X = make_first_level_design_matrix(FT, EVENTS, hrf_model="glover", drift_model=drift_model,
                                       high_pass=0.01, add_regs=regs, add_reg_names=names)
    roles = {c: "constant" if c == "constant" else "drift" if c.startswith("drift") else
             "confound" if c.startswith("conf") else "task" for c in X.columns}
    return X, roles


def test_vif_equals_statsmodels_with_constant():
    X, roles = _design()
    res = assess_collinearity(X, roles)
    exog = X.to_numpy()
    for j, col in enumerate(X.columns):
        if roles[col] in ("constant", "drift"):
            assert col not in res.vif
            continue
        assert res.vif[col] == pytest.approx(variance_inflation_factor(exog, j), rel=1e-6)


def test_vif_adds_intercept_when_design_has_none():
    X, roles = _design(drift_model=None)
    X = X.drop(columns="constant")
    roles.pop("constant")
    res = assess_collinearity(X, roles)
    exog = np.column_stack([X.to_numpy(), np.ones(len(X))])
    for j, col in enumerate(X.columns):
        assert res.vif[col] == pytest.approx(variance_inflation_factor(exog, j), rel=1e-6)


def test_correlation_condition_number_rank():
    X, roles = _design()
    res = assess_collinearity(X, roles)
    cols = [c for c in X.columns if roles[c] in ("task", "confound")]
    np.testing.assert_allclose(res.correlation.loc[cols, cols].to_numpy(),
                               np.corrcoef(X[cols].to_numpy(), rowvar=False), atol=1e-12)
    s = np.linalg.svd(X.to_numpy() / np.linalg.norm(X.to_numpy(), axis=0), compute_uv=False)
    assert res.condition_number == pytest.approx(s[0] / s[-1], rel=1e-8)
    assert res.rank == X.shape[1] == res.n_columns
    d = res.to_dict()
    assert d["correlation"]["columns"] == cols and d["rank"] == X.shape[1]
    assert not any(f.code == "design_rank_deficient" for f in res.findings)


def test_task_confound_correlation_flagged_confound_pairs_not():
    X0, _ = _design()
    rng = np.random.default_rng(1)
    X, roles = _design(add_reg=X0["zero_back"].to_numpy() + 0.05 * rng.standard_normal(len(FT)))
    X["conf_b"] = X["conf_a"] + 1e-3 * rng.standard_normal(len(X))  # confound x confound r ~ 1
    res = assess_collinearity(X, roles)
    corr = [f for f in res.findings if f.code == "correlation_high"]
    pairs = {tuple(f.evidence["columns"]) for f in corr}
    assert ("zero_back", "conf_task") in pairs
    assert all("task" in (roles[a], roles[b]) for a, b in pairs)
    f = next(f for f in corr if f.evidence["columns"] == ["zero_back", "conf_task"])
    assert f.severity == "warn" and f.evidence["r"] == pytest.approx(np.corrcoef(X["zero_back"], X["conf_task"])[0, 1])
    vif = [f for f in res.findings if f.code == "vif_high"]
    assert {f.evidence["column"] for f in vif} <= {"zero_back", "two_back"}
    assert any(f.evidence["column"] == "zero_back" and f.severity == "fail" for f in vif)


def test_vif_thresholds_warn_and_fail():
    X, roles = _design()
    res = assess_collinearity(X, roles)
    v = res.vif["zero_back"]
    warn = assess_collinearity(X, roles, Thresholds(vif_warn=v * 0.9, vif_fail=v * 2))
    fail = assess_collinearity(X, roles, Thresholds(vif_warn=v * 0.5, vif_fail=v * 0.9))
    none = assess_collinearity(X, roles, Thresholds(vif_warn=v * 1.1, vif_fail=v * 2))
    sev = lambda r: [f.severity for f in r.findings if f.code == "vif_high" and f.evidence["column"] == "zero_back"]
    assert sev(warn) == ["warn"] and sev(fail) == ["fail"] and sev(none) == []
    f = next(f for f in warn.findings if f.code == "vif_high" and f.evidence["column"] == "zero_back")
    assert f.score == pytest.approx(1 / 0.9) and f.evidence["vif"] == pytest.approx(v)


def test_rank_deficient_and_regularized():
    X, roles = _design()
    X["copy"] = X["zero_back"]
    roles["copy"] = "task"
    res = assess_collinearity(X, roles)
    assert res.rank == X.shape[1] - 1
    assert np.isinf(res.vif["copy"]) and res.to_dict()["vif"]["copy"] is None
    codes = {f.code: f.severity for f in res.findings}
    assert codes["design_rank_deficient"] == "fail"
    assert codes["design_ill_conditioned"] == "fail"
    X2, roles2 = _design()
    res2 = assess_collinearity(X2, roles2, regularized=True)
    assert [f.severity for f in res2.findings if f.code == "design_rank_deficient"] == ["fail"]


def test_errors_name_the_parameter():
    X, roles = _design()
    with pytest.raises(TypeError, match="design"):
        assess_collinearity(X.to_numpy(), roles)
    with pytest.raises(ValueError, match="roles"):
        assess_collinearity(X, {"zero_back": "task"})


def test_vif_one_svd_equals_per_column_r2_definition():
    """compute_vif (diagonal of the inverse correlation matrix, one SVD) equals the R² definition
    (least squares of each column on all the others + intercept) column by column."""
    from nbdiag.diagnostics import collinearity as coll

    rng = np.random.default_rng(1)
    designs = []
    for drift_model in ("cosine", None):
        X, roles = _design(drift_model=drift_model)
        designs.append((X, roles))
        designs.append((X.drop(columns="constant"), {c: r for c, r in roles.items() if c != "constant"}))
    X, roles = _design(add_reg=None)
    near = X["zero_back"].to_numpy() + 1e-3 * rng.standard_normal(len(X))  # VIF ~ 1e5: fast route
    nearer = X["two_back"].to_numpy() + 1e-6 * rng.standard_normal(len(X))  # VIF > 1e6: definition
    exact = X["conf_a"].to_numpy() * 2 - X["conf_b"].to_numpy()  # exactly collinear: inf
    for name, col in (("near", near), ("nearer", nearer), ("exact", exact)):
        X2 = X.assign(**{name: col})
        designs.append((X2, {**roles, name: "confound"}))
    X3 = X.assign(zero=np.zeros(len(X)))  # no variance: NaN
    designs.append((X3, {**roles, "zero": "confound"}))
    for X, roles in designs:
        got = coll.compute_vif(X, roles)
        arr = X.to_numpy(dtype=float)
        for j, col in enumerate(X.columns):
            if col not in got:
                continue
            ref = coll._vif_lstsq(arr, j)
            if np.isnan(ref) or np.isinf(ref):
                assert (np.isnan(got[col]) and np.isnan(ref)) or got[col] == ref, col
            else:
                assert got[col] == pytest.approx(ref, rel=1e-9), col
    assert np.isinf(coll.compute_vif(designs[-2][0], designs[-2][1])["exact"])


# --- issue 23: AFNI tiers incl. drift, identical columns, condition numbers by block ----------------
def _with_r(target: float, ref: np.ndarray, seed: int) -> np.ndarray:
    """A column whose Pearson r with ``ref`` is exactly ``target`` (up to rounding)."""
    rng = np.random.default_rng(seed)
    d = ref - ref.mean()
    d /= np.linalg.norm(d)
    e = rng.standard_normal(ref.size)
    e -= e.mean()
    e -= (e @ d) * d
    e /= np.linalg.norm(e)
    return 3.0 + target * d + np.sqrt(1 - target ** 2) * e


@pytest.mark.parametrize("target, tier", [(0.399, None), (0.401, "medium"), (0.699, "medium"), (0.701, "high"),
                                          (-0.701, "high")])
def test_correlation_tiers_task_by_drift(target, tier):
    from nbdiag.diagnostics.collinearity import assess_collinearity

    n = 120
    drift = np.cos(np.pi * (np.arange(n) + 0.5) / n)  # nilearn's first cosine
    task = _with_r(target, drift, seed=1)
    X = pd.DataFrame({"a": task, "drift_1": drift, "constant": np.ones(n)})
    roles = {"a": "task", "drift_1": "drift", "constant": "constant"}
    res = assess_collinearity(X, roles)
    assert np.corrcoef(task, drift)[0, 1] == pytest.approx(target, abs=1e-12)
    pairs = res.to_dict()["correlation_pairs"]
    found = [f for f in res.findings if f.code == "correlation_high"]
    if tier is None:
        assert pairs == [] and found == []
        return
    assert [(p["columns"], p["pair"], p["tier"]) for p in pairs] == [(["a", "drift_1"], "task×drift", tier)]
    assert pairs[0]["r"] == pytest.approx(target, abs=1e-12)
    cos = task @ drift / (np.linalg.norm(task) * np.linalg.norm(drift))
    assert pairs[0]["cosine"] == pytest.approx(cos, abs=1e-12)
    assert [f.severity for f in found] == [{"medium": "info", "high": "warn"}[tier]]
    assert found[0].evidence["pair"] == "task×drift" and found[0].evidence["columns"] == ["a", "drift_1"]
    assert "drift_1" in found[0].title


@pytest.mark.parametrize("target, tier", [(0.399, None), (0.401, "medium"), (0.699, "medium"), (0.701, "high")])
def test_correlation_tiers_task_by_task_and_confound(target, tier):
    from nbdiag.diagnostics.collinearity import assess_collinearity

    n = 150
    a = np.random.default_rng(5).standard_normal(n)
    X = pd.DataFrame({"a": a, "b": _with_r(target, a, 2), "trans_x": _with_r(target, a, 3), "constant": np.ones(n)})
    roles = {"a": "task", "b": "task", "trans_x": "confound", "constant": "constant"}
    res = assess_collinearity(X, roles)
    got = {tuple(p["columns"]): (p["pair"], p["tier"]) for p in res.correlation_pairs}
    if tier is None:
        assert ("a", "b") not in got and ("a", "trans_x") not in got
    else:
        assert got[("a", "b")] == ("task×task", tier)
        assert got[("a", "trans_x")] == ("task×confound", tier)
    # confound × task-free pairs are never rated: b × trans_x only appears because b is a task column
    assert all("task" in p["pair"] for p in res.correlation_pairs)


def test_identical_columns_are_reported_as_identical():
    from nbdiag.diagnostics.collinearity import assess_collinearity

    n = 80
    a = np.random.default_rng(0).standard_normal(n)
    X = pd.DataFrame({"a": a, "a_copy": a.copy(), "a_scaled": 2.5 * a, "constant": np.ones(n)})
    roles = {"a": "task", "a_copy": "task", "a_scaled": "confound", "constant": "constant"}
    res = assess_collinearity(X, roles)
    tiers = {tuple(p["columns"]): p["tier"] for p in res.correlation_pairs}
    assert tiers == {("a", "a_copy"): "identical", ("a", "a_scaled"): "identical", ("a_copy", "a_scaled"): "identical"}
    found = [f for f in res.findings if f.code == "correlation_high"]
    assert {f.severity for f in found} == {"fail"} and all("identical" in f.title for f in found)


def test_condition_numbers_by_block_against_numpy():
    from nbdiag.diagnostics.collinearity import afni_rating, assess_collinearity

    n = 200
    rng = np.random.default_rng(7)
    ft = np.arange(n) * 2.0
    ev = pd.DataFrame({"onset": [10, 60, 110, 160, 210, 260, 310], "duration": [20] * 7,
                       "trial_type": ["a", "b", "a", "b", "a", "b", "a"]})
    conf = rng.standard_normal((n, 3))
    X = make_first_level_design_matrix(ft, ev, hrf_model="glover", drift_model="cosine", high_pass=0.01,
                                       add_regs=conf, add_reg_names=["trans_x", "trans_y", "rot_z"])
    roles = {c: "task" if c in ("a", "b") else "constant" if c == "constant" else
             "drift" if c.startswith("drift") else "confound" for c in X.columns}
    blocks = assess_collinearity(X, roles).condition_blocks

    def scaled(cols):
        M = X[cols].to_numpy()
        return M / np.linalg.norm(M, axis=0)

    task = ["a", "b"]
    base = [c for c in X.columns if c not in task]
    drift = [c for c in X.columns if c.startswith("drift") or c == "constant"]
    for name, cols in (("whole", list(X.columns)), ("task", task), ("baseline", base), ("drift", drift)):
        assert blocks[name]["columns"] == cols
        assert blocks[name]["condition_number"] == pytest.approx(np.linalg.cond(scaled(cols)), rel=1e-10)
        s = np.linalg.svd(X[cols].to_numpy(), compute_uv=False)
        assert blocks[name]["fsl_sv_ratio"] == pytest.approx(s[-1] / s[0], rel=1e-10)
        assert blocks[name]["condition_number_unscaled"] == pytest.approx(np.linalg.cond(X[cols].to_numpy()),
                                                                          rel=1e-10)
        assert blocks[name]["n_near_zero"] == 0
        assert blocks[name]["afni_condition"] == pytest.approx(np.linalg.cond(scaled(cols)), rel=1e-10)
        assert blocks[name]["afni_rating"] == afni_rating(blocks[name]["condition_number"])
    assert blocks["whole"]["condition_number"] == pytest.approx(
        assess_collinearity(X, roles).condition_number, rel=1e-12)
    # AFNI's scale boundaries
    assert [afni_rating(v) for v in (19.99, 20, 399, 400, 7999, 8000, 159999, 160000, float("inf"))] == [
        "VERY GOOD", "GOOD", "GOOD", "OK", "OK", "A LITTLE BIG", "A LITTLE BIG", "BEWARE", "UNDEFINED"]


def test_near_zero_singular_values_and_fsl_check():
    from nbdiag.diagnostics.collinearity import assess_collinearity

    n = 100
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal(n), rng.standard_normal(n)
    X = pd.DataFrame({"a": a, "b": b, "ab": a + b + 1e-9 * rng.standard_normal(n), "constant": np.ones(n)})
    roles = {"a": "task", "b": "task", "ab": "task", "constant": "constant"}
    res = assess_collinearity(X, roles)
    blk = res.condition_blocks["task"]
    s = np.linalg.svd(X[["a", "b", "ab"]].to_numpy() / np.linalg.norm(X[["a", "b", "ab"]].to_numpy(), axis=0),
                      compute_uv=False)
    assert blk["n_near_zero"] == int(np.sum(s ** 2 < 1e-7 * s[0] ** 2)) == 1
    assert blk["afni_condition"] == pytest.approx(s[0] / s[1], rel=1e-10)  # AFNI skips the near-zero one
    assert blk["fsl_rank_deficient"] is True
    found = {f.evidence["block"]: f.severity for f in res.findings if f.code == "condition_block_beware"}
    assert found["task"] == "warn" and found["whole"] == "info"
    assert "baseline" not in found
    # an empty block and a zero column
    res = assess_collinearity(pd.DataFrame({"a": a, "z": np.zeros(n)}), {"a": "task", "z": "confound"})
    assert res.condition_blocks["drift"]["n_columns"] == 0 and res.condition_blocks["drift"]["condition_number"] is None
    assert res.condition_blocks["baseline"]["afni_rating"] == "UNDEFINED"


def test_correlation_pairs_need_a_task_column():
    from nbdiag.diagnostics.collinearity import correlation_pairs

    n = 50
    x = np.arange(n, dtype=float)
    X = pd.DataFrame({"trans_x": x, "trans_y": 2 * x + 1, "constant": np.ones(n)})
    assert correlation_pairs(X, {"trans_x": "confound", "trans_y": "confound", "constant": "constant"}, 0.4, 0.7) == []
