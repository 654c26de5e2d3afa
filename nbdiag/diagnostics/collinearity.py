"""Collinearity of the design: correlations, VIF, condition number, rank.

Definitions (nbdiag's own, documented here)
-----------------------------------------------------
VIF
    For every column ``j`` that is neither the constant nor a drift column,
    ``VIF_j = 1 / (1 - R²_j)`` where ``R²_j`` is the centred coefficient of
    determination of the least-squares regression of column ``j`` on **all
    other design columns** (drifts, confounds, spikes, other task columns),
    with the constant present: nilearn always adds a ``constant`` column; if a
    design has none, an intercept is added for the regression. This equals
    ``statsmodels.stats.outliers_influence.variance_inflation_factor`` applied
    to the design with its constant (tested). An exactly collinear column gets
    ``inf`` (written ``null`` in JSON).

    Computation: with ``Z`` the non-constant columns, centred and scaled to unit
    norm (centring is the intercept), ``1 / (1 - R²_j) = [(ZᵀZ)⁻¹]_jj``, the
    diagonal of the inverse correlation matrix (e.g. Belsley, Kuh & Welsch
    1980) — one SVD of ``Z`` gives every column's VIF. Columns for which that
    route is not reliable (VIF above ``1e6``, no variance, or near-constant
    columns acting as the intercept) get the per-column least-squares fit of
    the definition instead; both agree to ~1e-12 relative (tested).
Correlation
    Pearson r between every pair of task and confound columns (the record's
    ``correlation`` matrix).
Correlation tiers (AFNI ``1d_tool.py -show_cormat_warnings``)
    Every pair of a task column with any other non-constant column (task,
    confound, spike **and drift**: nilearn's ``plot_design_matrix_correlation``
    leaves the drift columns out, so task × drift overlap never shows there) is
    rated by AFNI's tiers: ``identical`` (|r| ≥ 1 − 1e-10, or cosine ≥ 1 − 1e-10:
    the same column up to scale), ``high`` (|r| ≥ ``corr_warn``, 0.7) and
    ``medium`` (|r| ≥ ``corr_info``, 0.4). Each pair carries its Pearson r and its
    cosine (uncentred: x·y / (‖x‖‖y‖), which AFNI also reports). A pair at a tier
    raises ``correlation_high`` with severity info (medium), warn (high) or fail
    (identical); the pair is named in the evidence (``pair``: task×task,
    task×confound, task×spike, task×drift). Pairs without a task column
    (confound × confound, confound × drift) are never flagged, as before.
Condition number
    ``numpy.linalg.cond`` (ratio of largest to smallest singular value) of the
    full design with every column scaled to unit Euclidean norm, not centred
    (Belsley, Kuh & Welsch 1980 scaling), so column units never decide it.
Scaled condition indices (Belsley, Kuh & Welsch 1980, ch. 3)
    With ``Z = X / ||X||`` columnwise and ``Z = U S Vᵀ``: index
    ``η_k = s_max / s_k`` and variance-decomposition proportions
    ``π_jk = (v_jk² / s_k²) / Σ_k (v_jk² / s_k²)`` (the share of coefficient
    ``j``'s variance that near-dependency ``k`` causes). A near-dependency
    matters when ``η_k`` exceeds the threshold *and* at least two columns
    have ``π_jk > 0.5`` (Belsley's rule); ``design_ill_conditioned`` is
    ``warn``/``fail`` only when one of those columns is a task regressor
    (a near-dependency among drifts, motion and the constant leaves every
    task contrast unaffected: ``info``, with the columns named).
Condition numbers by block (AFNI 3dDeconvolve / 3dREMLfit, FSL feat_model)
    For the whole design, its task part, its baseline part (drift + constant +
    confounds + spikes) and its drift part (drift + constant, AFNI's
    "polort-only"): ``condition_number`` is ``numpy.linalg.cond`` of the block
    with every column scaled to unit length (nbdiag's Belsley scaling, the same
    number as the whole design's ``condition_number``), and
    ``condition_number_unscaled`` (``numpy.linalg.cond`` of the columns as nilearn
    builds them, units included); AFNI's
    ``check_matrix_condition`` computes the eigenvalues ``e`` of the column-
    normalised ``XᵀX``, counts as near zero those below ``1e-7·e_max``
    (singular values below ``sqrt(1e-7)·s_max``), and rates
    ``sqrt(e_max / e_min)`` over the others (``afni_condition``): VERY GOOD < 20,
    GOOD < 400, OK < 8000, A LITTLE BIG < 160000, BEWARE otherwise, UNDEFINED
    when nothing is left. AFNI's number therefore ignores near-zero singular
    values that nbdiag's includes. FSL's ``feat_model`` check: smallest / largest
    singular value of the block as nilearn fits it (columns unscaled) < 1e-7
    (``fsl_sv_ratio``, ``fsl_rank_deficient``); FSL's own EVs are demeaned and
    have no constant column, nilearn's are not. ``condition_block_beware``
    reports a BEWARE / UNDEFINED block, near-zero singular values or the FSL
    check (warn for the task block, info for the others: ``design_ill_conditioned``
    and ``design_rank_deficient`` judge the whole design).
Rank
    ``numpy.linalg.matrix_rank`` with its default tolerance
    (``S.max() * max(M, N) * eps``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd

from nbdiag.diagnostics._linalg import (
    column_values,
    DesignAlgebra,
    check_design as _check_design,
    constant_columns as _constant_columns,
    is_constant_column as _is_constant_column,
    json_float as _json_float,
    json_map as _json_map,
    r2_on as _r2_on,
    threshold_source as _source,
)
from nbdiag.core.findings import Finding
from nbdiag.core.thresholds import Thresholds
from nbdiag.core import codes


def _severity(value: float, warn: float, fail: float, strict: bool = False) -> str | None:
    if strict:
        return "fail" if value > fail else "warn" if value > warn else None
    return "fail" if value >= fail else "warn" if value >= warn else None


# --------------------------------------------------------------------------
@dataclass(frozen=True)
class CollinearityResult:
    """Collinearity measures of one design (see module docstring).

    Parameters
    ----------
    vif : dict of str to float
        VIF of every non-constant, non-drift column (``inf`` when exactly collinear).
    correlation : DataFrame
        Pearson r among task and confound columns.
    condition_number : float
    rank, n_columns : int
    regularized : bool
        nilearn's ``full_rank`` changed the design.
    findings : tuple of Finding
    correlation_pairs : list of dict
        Pairs at an AFNI tier (module docstring), strongest first.
    condition_blocks : dict
        Condition numbers by block (module docstring).
    """

    vif: dict[str, float]
    correlation: pd.DataFrame
    condition_number: float
    rank: int
    n_columns: int
    regularized: bool
    findings: tuple[Finding, ...] = field(default=())
    correlation_pairs: tuple[dict[str, Any], ...] = field(default=())
    condition_blocks: dict[str, Any] = field(default_factory=dict)
    correlation_tiers: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The record's ``diagnostics.collinearity`` section."""
        return {
            "vif": _json_map(self.vif),
            "correlation": {
                "columns": [str(c) for c in self.correlation.columns],
                "matrix": [[_json_float(v) for v in row] for row in self.correlation.to_numpy()],
            },
            "condition_number": _json_float(self.condition_number),
            "rank": int(self.rank),
            "n_columns": int(self.n_columns),
            "regularized": bool(self.regularized),
            "correlation_pairs": [dict(p) for p in self.correlation_pairs],
            "correlation_tiers": dict(self.correlation_tiers),
            "condition_blocks": self.condition_blocks,
        }


#: above this VIF the inverse-correlation route hands the column to the least-squares definition
_VIF_FAST_MAX = 1e6


def _vif_lstsq(X: np.ndarray, j: int) -> float:
    """VIF of column ``j`` by its definition: R² of column j on all other columns + intercept."""
    r2 = _r2_on(X[:, j], np.delete(X, j, axis=1))
    if not np.isfinite(r2):
        return float("nan")
    if r2 >= 1.0 - 1e-13:
        return float("inf")
    return 1.0 / (1.0 - r2)


def _vif_inverse_correlation(X: np.ndarray, constant: np.ndarray,
                             algebra: DesignAlgebra | None = None) -> np.ndarray | None:
    """``diag((ZᵀZ)⁻¹)`` for the centred, unit-norm non-constant columns (NaN elsewhere).

    ``Z`` is :attr:`DesignAlgebra.centred`, the matrix
    :func:`nbdiag.diagnostics.estimability.contrast_vif` uses, so the VIF of a
    column equals, to the last bit, the cVIF of the contrast weighting that
    column alone (mathematically they are the same number; equal scores keep
    the findings' order stable). ``None`` when a near-constant (but not exactly
    constant) column would act as the intercept: then only the definition
    reproduces the reference.
    """
    vif = np.full(X.shape[1], np.nan)
    if not np.all(np.isfinite(X)):
        return None
    for j in np.flatnonzero(constant):
        if np.ptp(X[:, j]) != 0:
            return None
    keep, za = DesignAlgebra.for_design(X, algebra).centred
    if za is None:
        return vif
    s = za.s
    if s[-1] <= s[0] * 1e-7:  # near-singular: the definition decides (inf / huge values)
        vif[keep] = np.inf
        return vif
    for k, j in enumerate(np.flatnonzero(keep)):
        e = np.zeros(za.shape[1])
        e[k] = 1.0
        w = za.weights(e)
        vif[j] = float(w @ w)
    return vif


def compute_vif(design: pd.DataFrame, roles: Mapping[str, str],
                algebra: DesignAlgebra | None = None) -> dict[str, float]:
    """VIF of every non-constant, non-drift column (module docstring for the policy).

    ``algebra`` is the design's factorisation when the caller already has it.
    """
    X = design.to_numpy(dtype=float)
    cols = list(design.columns)
    constant = _constant_columns(X) if X.shape[0] else \
        np.array([_is_constant_column(X[:, j]) for j in range(X.shape[1])], dtype=bool)
    fast = _vif_inverse_correlation(X, constant, algebra) if X.shape[1] else None
    out: dict[str, float] = {}
    for j, col in enumerate(cols):
        if roles.get(col) in ("constant", "drift") or constant[j]:
            continue
        v = float(fast[j]) if fast is not None else float("nan")
        if fast is None or not np.isfinite(v) or v > _VIF_FAST_MAX:
            v = _vif_lstsq(X, j)
        out[col] = v
    return out


def condition_number(design: pd.DataFrame) -> float:
    """Condition number of the design with columns scaled to unit norm."""
    X = design.to_numpy(dtype=float)
    norms = np.linalg.norm(X, axis=0)
    if np.any(norms == 0):
        return float("inf")
    return float(np.linalg.cond(X / norms))


#: Belsley's variance-decomposition proportion above which a column takes part in a near-dependency.
VDP_CUT = 0.5


def condition_indices(design: pd.DataFrame) -> list[dict[str, Any]]:
    """Belsley scaled condition indices with the columns involved (module docstring).

    Returns
    -------
    list of dict
        ``{"index": η_k, "columns": {column: π_jk for π_jk > VDP_CUT}}``,
        largest index first; ``[]`` when a column is all zeros.
    """
    X = design.to_numpy(dtype=float)
    norms = np.linalg.norm(X, axis=0)
    if X.size == 0 or np.any(norms == 0):
        return []
    _, S, Vt = np.linalg.svd(X / norms, full_matrices=False)
    if S[-1] <= 0:
        S = np.where(S > 0, S, np.finfo(float).tiny)
    phi = (Vt.T ** 2) / S ** 2
    pi = phi / phi.sum(axis=1, keepdims=True)
    cols = [str(c) for c in design.columns]
    out = []
    for k in np.argsort(-(S.max() / S)):
        involved = {cols[j]: float(pi[j, k]) for j in range(len(cols)) if pi[j, k] > VDP_CUT}
        out.append({"index": float(S.max() / S[k]), "columns": involved})
    return out


def _pearson(design: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    X = column_values(design, cols)
    Xc = X - X.mean(axis=0)
    norms = np.linalg.norm(Xc, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        R = (Xc.T @ Xc) / np.outer(norms, norms)
    R[:, norms == 0] = np.nan
    R[norms == 0, :] = np.nan
    np.fill_diagonal(R, np.where(norms == 0, np.nan, 1.0))
    return pd.DataFrame(np.clip(R, -1, 1), index=cols, columns=cols)


#: |r| (or cosine) this close to 1 makes two columns "identical" (AFNI's IDENTICAL tier)
IDENTICAL_TOL = 1e-10

_TIER_SEVERITY = {"medium": "info", "high": "warn", "identical": "fail"}


def _pair_kind(ra: str, rb: str) -> str:
    other = rb if ra == "task" else ra
    return f"task×{other}"


def correlation_pairs(design: pd.DataFrame, roles: Mapping[str, str], medium: float, high: float) -> list[dict[str, Any]]:
    """Pairs (task × any non-constant column, drifts included) at an AFNI tier (module docstring).

    Returns
    -------
    list of dict
        ``{"columns": [a, b], "pair": "task×drift", "r", "cosine", "tier"}`` in design
        order of the pair; ``tier`` is ``identical`` / ``high`` / ``medium``.
    """
    cols = [str(c) for c in design.columns]
    X = design.to_numpy(dtype=float)
    use = [j for j, c in enumerate(cols) if roles.get(c) != "constant" and np.ptp(X[:, j]) > 0]
    if not any(roles.get(cols[j]) == "task" for j in use):
        return []
    Z = X[:, use]
    Zc = Z - Z.mean(axis=0)
    nc = np.linalg.norm(Zc, axis=0)
    nu = np.linalg.norm(Z, axis=0)
    R = np.clip((Zc.T @ Zc) / np.outer(nc, nc), -1, 1)
    C = np.clip((Z.T @ Z) / np.outer(nu, nu), -1, 1)
    is_task = np.array([roles.get(cols[j]) == "task" for j in use])
    hit = (np.abs(R) >= min(medium, 1 - IDENTICAL_TOL)) | (C >= 1 - IDENTICAL_TOL)
    hit &= is_task[:, None] | is_task[None, :]
    out = []
    for i, k in zip(*np.nonzero(np.triu(hit, 1))):
        a, b = cols[use[i]], cols[use[k]]
        r, cos = float(R[i, k]), float(C[i, k])
        if abs(r) >= 1 - IDENTICAL_TOL or cos >= 1 - IDENTICAL_TOL:
            tier = "identical"
        elif abs(r) >= high:
            tier = "high"
        else:  # a hit below "identical" and "high" is at least medium
            tier = "medium"
        ra, rb = roles.get(a, "task"), roles.get(b, "task")
        out.append({"columns": [a, b], "pair": _pair_kind(ra, rb) if ra == "task" else _pair_kind(rb, ra),
                    "r": r, "cosine": cos, "tier": tier})
    return out


#: AFNI's condition-number scale (3dREMLfit.c / 3dDeconvolve.c check_matrix_condition: CN_VERYGOOD ... CN_BEWARE)
AFNI_CONDITION_SCALE = ((20.0, "VERY GOOD"), (400.0, "GOOD"), (8000.0, "OK"), (160000.0, "A LITTLE BIG"))
#: AFNI's near-zero cut on the eigenvalues of the column-normalised XᵀX: e < sqrt(PSINV_EPS)·e_max, PSINV_EPS = 1e-14
AFNI_NEAR_ZERO = 1e-7
#: FSL feat_model: smallest / largest singular value below this = rank deficient
FSL_SV_RATIO = 1e-7


def afni_rating(cond: float | None) -> str:
    """AFNI's label for a condition number (``UNDEFINED`` when it cannot be computed)."""
    if cond is None or not np.isfinite(cond):
        return "UNDEFINED"
    for limit, label in AFNI_CONDITION_SCALE:
        if cond < limit:
            return label
    return "BEWARE"


def block_condition(X: np.ndarray, s_raw: np.ndarray | None = None) -> dict[str, Any]:
    """Condition numbers of one block of columns (module docstring).

    ``s_raw``: the singular values of ``X`` when the caller has them (one SVD saved).
    """
    n_cols = int(X.shape[1])
    if n_cols == 0:
        return {"n_columns": 0, "condition_number": None, "afni_condition": None, "afni_rating": None,
                "n_near_zero": 0, "fsl_sv_ratio": None, "fsl_rank_deficient": None, "condition_number_unscaled": None}
    norms = np.linalg.norm(X, axis=0)
    s_raw = np.linalg.svd(X, compute_uv=False) if s_raw is None else s_raw
    fsl = float(s_raw[-1] / s_raw[0]) if s_raw[0] > 0 else 0.0
    unscaled = float(s_raw[0] / s_raw[-1]) if s_raw[-1] > 0 else None  # numpy.linalg.cond of the block as is
    if np.any(norms == 0):
        return {"n_columns": n_cols, "condition_number": None, "afni_condition": None, "afni_rating": "UNDEFINED",
                "n_near_zero": int(np.sum(norms == 0)), "fsl_sv_ratio": fsl, "fsl_rank_deficient": fsl < FSL_SV_RATIO,
                "condition_number_unscaled": unscaled}
    s = np.linalg.svd(X / norms, compute_uv=False)
    ev = s ** 2
    ebot = AFNI_NEAR_ZERO * ev[0]
    ok = ev >= ebot
    n_small = int(np.sum(~ok))
    afni = float(np.sqrt(ev[0] / ev[ok].min())) if ev[0] > 0 and ok.any() else None
    cond = float(s[0] / s[-1]) if s[-1] > 0 else None
    return {"n_columns": n_cols, "condition_number": cond, "afni_condition": afni, "afni_rating": afni_rating(afni),
            "n_near_zero": n_small, "fsl_sv_ratio": fsl, "fsl_rank_deficient": bool(fsl < FSL_SV_RATIO),
            "condition_number_unscaled": unscaled}


#: design blocks AFNI rates separately, in nilearn roles (AFNI's names in the docstring)
BLOCKS = {"whole": ("task", "confound", "spike", "drift", "constant"), "task": ("task",),
          "baseline": ("confound", "spike", "drift", "constant"), "drift": ("drift", "constant")}


def condition_blocks(design: pd.DataFrame, roles: Mapping[str, str],
                     s_whole: np.ndarray | None = None) -> dict[str, Any]:
    """Condition numbers of the whole design and of its task, baseline and drift blocks.

    ``s_whole``: singular values of the whole (unscaled) design, when the caller has them.
    """
    cols = [str(c) for c in design.columns]
    X = design.to_numpy(dtype=float)
    out = {}
    for name, wanted in BLOCKS.items():
        idx = [j for j, c in enumerate(cols) if roles.get(c) in wanted]
        whole = len(idx) == len(cols)
        out[name] = {"columns": [cols[j] for j in idx],
                     **block_condition(X[:, idx], s_whole if whole and s_whole is not None and s_whole.size else None)}
    return out


def assess_collinearity(
    design: pd.DataFrame,
    roles: Mapping[str, str],
    thresholds: Thresholds | None = None,
    regularized: bool = False,
    algebra: DesignAlgebra | None = None,
) -> CollinearityResult:
    """Measure collinearity of ``design`` and raise the design findings.

    Parameters
    ----------
    design : DataFrame
        Design matrix indexed by frame times, nilearn column names.
    roles : mapping of str to str
        Column -> role (``task``, ``confound``, ``spike``, ``drift``, ``constant``).
    thresholds : Thresholds, optional
        Defaults to ``Thresholds()``.
    regularized : bool
        Whether nilearn's ``full_rank`` regularised the design (its
        "Matrix is singular at working precision" warning).
    algebra : DesignAlgebra, optional
        The design's factorisation (built here when not given).

    Returns
    -------
    CollinearityResult
        With findings ``vif_high`` (task columns only), ``correlation_high``
        (task×task, task×confound), ``design_ill_conditioned`` and
        ``design_rank_deficient``.
    """
    _check_design(design, roles)
    th = thresholds or Thresholds()
    cols = [str(c) for c in design.columns]
    task = [c for c in cols if roles[c] == "task"]
    confound = [c for c in cols if roles[c] == "confound"]
    X = design.to_numpy(dtype=float)
    vif = compute_vif(design, roles, algebra)
    corr = _pearson(design, task + confound)
    # one SVD of the design serves its rank (numpy.linalg.matrix_rank's rule) and FSL's check
    s_whole = np.linalg.svd(X, compute_uv=False) if X.size and np.all(np.isfinite(X)) else np.zeros(0)
    blocks = condition_blocks(design, roles, s_whole)
    # the whole block's unit-length condition number is numpy.linalg.cond of the same matrix (same bits)
    cond = blocks["whole"]["condition_number"]
    cond = condition_number(design) if cond is None else float(cond)
    rank = (int(np.sum(s_whole > s_whole.max() * max(X.shape) * np.finfo(float).eps)) if s_whole.size
            else int(np.linalg.matrix_rank(X)))
    n_cols = X.shape[1]
    pairs = correlation_pairs(design, roles, th.corr_info, th.corr_warn)
    findings = (_vif_findings(task, vif, th) + _correlation_findings(pairs, th) + _block_findings(blocks)
                + _ill_conditioned_findings(design, roles, cond, th) + _rank_findings(rank, n_cols, regularized))
    return CollinearityResult(
        vif=vif, correlation=corr, condition_number=cond, rank=rank,
        n_columns=n_cols, regularized=bool(regularized), findings=tuple(findings),
        correlation_pairs=tuple(pairs), condition_blocks=blocks,
        correlation_tiers={"medium": th.corr_info, "high": th.corr_warn, "identical": 1 - IDENTICAL_TOL},
    )


def _vif_findings(task: list[str], vif: Mapping[str, float], th: Thresholds) -> list[Finding]:
    """``vif_high`` for each task column whose VIF reaches ``vif_warn`` (fail at ``vif_fail``)."""
    findings: list[Finding] = []
    for col in task:
        v = vif.get(col)
        if v is None or np.isnan(v):
            continue
        sev = _severity(v, th.vif_warn, th.vif_fail)
        if sev is None:
            continue
        limit = th.vif_fail if sev == "fail" else th.vif_warn
        vtxt = "infinite (exactly collinear)" if np.isinf(v) else f"{v:.2f}"
        findings.append(codes.VIF_HIGH.finding(
            severity=sev,
            title=f"Regressor {col} is largely explained by the other regressors",
            message=(
                f"The VIF of {col} is {vtxt} (R² on all other columns incl. the constant = "
                f"{1 - 1 / v if np.isfinite(v) else 1.0:.3f}); threshold {limit:g} "
                f"({'fail' if sev == 'fail' else 'warn'}). Its beta's variance is inflated "
                f"{vtxt if np.isinf(v) else f'{v:.1f}'}-fold compared with an orthogonal design."
            ),
            evidence={
                "column": col, "vif": _json_float(v),
                "r2": _json_float(1 - 1 / v) if np.isfinite(v) else 1.0,
                "threshold": limit, "vif_warn": th.vif_warn, "vif_fail": th.vif_fail,
                "threshold_source": _source("vif_warn"),
            },
            score=float(v / th.vif_warn) if np.isfinite(v) else 1e6,
            fix=(
                "Check which regressors explain it (correlation matrix); model the implicit "
                "baseline explicitly (leave rest/fixation unmodelled), drop or merge redundant "
                "conditions in events.tsv, or remove task-locked confounds from "
                "confounds_strategy; judge the contrasts you test (cVIF) rather than single betas."
            ),
        ))
    return findings


def _correlation_findings(pairs: list[dict[str, Any]], th: Thresholds) -> list[Finding]:
    """``correlation_high`` for each listed pair: info (medium tier), warn (high), fail (identical)."""
    findings: list[Finding] = []
    for p in pairs:
        a, b = p["columns"]
        r, tier, pair = p["r"], p["tier"], p["pair"]
        sev = _TIER_SEVERITY[tier]
        limit = {"medium": th.corr_info, "high": th.corr_warn, "identical": 1 - IDENTICAL_TOL}[tier]
        what = ("are the same column up to scale (AFNI: IDENTICAL)" if tier == "identical" else
                f"have |r| ≥ {limit:g} (AFNI's {tier} tier)")
        findings.append(codes.CORRELATION_HIGH.finding(
            severity=sev,
            title=(f"{a} and {b} are identical" if tier == "identical" else
                   f"{a} and {b} are correlated (r = {r:.2f})"),
            message=(
                f"Pearson r between {a} and {b} is {r:.3f}, cosine {p['cosine']:.3f} ({pair}): they {what}, "
                f"which gives {sev}. Variance they share cannot be attributed to either one"
                + (" (nilearn's plot_design_matrix_correlation does not show drift columns)." if pair == "task×drift"
                   else ".")
            ),
            evidence={
                "columns": [a, b], "r": r, "cosine": p["cosine"], "pair": pair, "tier": tier, "threshold": limit,
                "corr_info": th.corr_info, "corr_warn": th.corr_warn,
                "threshold_source": _source("corr_warn"),
            },
            score=(10.0 if tier == "identical" else abs(r) / th.corr_warn if th.corr_warn else abs(r)),
            fix=(
                "Remove one of the two identical columns (a duplicated confound, or a condition copied under "
                "two names in events.tsv)."
                if tier == "identical" else
                "Lower high_pass (longer cutoff) or shorten/interleave blocks so the condition alternates faster "
                "than the drift cosines." if pair == "task×drift" else
                "Jitter or reorder conditions in the task design, or, for a task×confound "
                "pair, reconsider that confound in confounds_strategy (task-locked motion "
                "removes task signal)."
                if pair in ("task×confound", "task×spike") else
                "Correlated conditions are fine for differential contrasts between them; for "
                "single-condition contrasts check the cVIF of the contrast."
            ),
        ))
    return findings


def _block_findings(blocks: Mapping[str, dict[str, Any]]) -> list[Finding]:
    """``condition_block_beware`` for each non-empty block that AFNI or FSL rates ill-conditioned (warn for
    the task block, info otherwise)."""
    findings: list[Finding] = []
    for name, blk in blocks.items():
        bad = []
        if blk["afni_rating"] in ("BEWARE", "UNDEFINED"):
            bad.append(f"AFNI rates its condition number {blk['afni_rating']}"
                       + (f" ({blk['afni_condition']:.0f})" if blk["afni_condition"] else ""))
        if blk["n_near_zero"]:
            bad.append(f"{blk['n_near_zero']} near-zero singular value(s) (AFNI's cut)")
        if blk["fsl_rank_deficient"]:
            bad.append(f"smallest/largest singular value {blk['fsl_sv_ratio']:.2g} < {FSL_SV_RATIO:g} (FSL feat_model)")
        if not bad or not blk["n_columns"]:
            continue
        findings.append(codes.CONDITION_BLOCK_BEWARE.finding(
            severity="warn" if name == "task" else "info",
            title=f"The {name} block of the design is ill-conditioned",
            message=(f"The {name} block ({blk['n_columns']} columns: {', '.join(blk['columns'][:6])}"
                     + (", ..." if blk["n_columns"] > 6 else "") + "): " + "; ".join(bad) + "."),
            evidence={"block": name, **{k: v for k, v in blk.items() if k != "columns"},
                      "threshold": AFNI_CONDITION_SCALE[-1][0], "fsl_threshold": FSL_SV_RATIO,
                      "threshold_source": "AFNI 3dDeconvolve/3dREMLfit check_matrix_condition; FSL feat_model"},
            score=5.0 if name == "task" else 0.5))
    return findings


def _ill_conditioned_findings(design: pd.DataFrame, roles: Mapping[str, str], cond: float,
                              th: Thresholds) -> list[Finding]:
    """``design_ill_conditioned`` when the scaled condition number exceeds ``cond_warn`` (fail above
    ``cond_fail`` or when infinite; info when no near-dependency involves a task regressor)."""
    cols = [str(c) for c in design.columns]
    findings: list[Finding] = []
    if np.isfinite(cond):
        sev = _severity(cond, th.cond_warn, th.cond_fail, strict=True)
    else:
        sev = "fail"
    if sev is not None:
        limit = th.cond_fail if sev == "fail" else th.cond_warn
        indices = condition_indices(design) if np.isfinite(cond) else []
        high = [d for d in indices if d["index"] > th.cond_warn and len(d["columns"]) >= 2]
        involved = sorted({c for d in high for c in d["columns"]}, key=cols.index)
        task_involved = [c for c in involved if roles[c] == "task"]
        if np.isfinite(cond) and not task_involved:
            sev = "info"
        if not high and np.isfinite(cond):
            what = "no near-dependency involves two or more columns (Belsley's rule), so no coefficient is affected"
        elif not task_involved and np.isfinite(cond):
            what = (f"the near-dependency involves only {', '.join(involved)} (variance-decomposition proportions "
                    f"> {VDP_CUT:g}), none of them a task regressor, so no task contrast is affected")
        else:
            what = (f"the near-dependency involves {', '.join(involved) or 'all columns'}"
                    + (f", including task regressor(s) {', '.join(task_involved)}" if task_involved else "")
                    + ": some contrasts have very large variance")
        findings.append(Finding(
            code=codes.DESIGN_ILL_CONDITIONED.code, severity=sev,
            title="The design matrix is ill-conditioned",
            message=(
                f"The scaled condition index of the design (columns scaled to unit length, Belsley) is "
                f"{cond:.1f} (> {limit:g}); {what}."
            ),
            evidence={
                "condition_number": _json_float(cond), "threshold": limit,
                "cond_warn": th.cond_warn, "cond_fail": th.cond_fail,
                "condition_indices": [{"index": _json_float(d["index"]), "columns": d["columns"]} for d in high],
                "columns_involved": involved, "task_columns_involved": task_involved,
                "vdp_cut": VDP_CUT,
                "threshold_source": _source("cond_warn"),
            },
            score=float(cond / th.cond_warn) if np.isfinite(cond) else 1e6,
            fix=(
                "Look at the columns involved: typically conditions that tile "
                "the run together with the constant, many drift cosines (raise 1/high_pass), "
                "or a slowly drifting confound that duplicates a drift cosine."
            ),
        ))
    return findings


def _rank_findings(rank: int, n_cols: int, regularized: bool) -> list[Finding]:
    """``design_rank_deficient`` (fail) when the rank is below the column count or nilearn regularised."""
    findings: list[Finding] = []
    if rank < n_cols or regularized:
        deficit = n_cols - rank
        why = []
        if rank < n_cols:
            why.append(f"its rank is {rank} for {n_cols} columns")
        if regularized:
            why.append("nilearn's full_rank regularised it (singular at working precision)")
        findings.append(codes.DESIGN_RANK_DEFICIENT.finding(
            severity="fail",
            title="The design matrix is rank deficient",
            message=(
                "The design cannot separate all its regressors: " + " and ".join(why) + ". "
                "Betas of the redundant columns are arbitrary; only contrasts in the row space "
                "of the design are estimable."
            ),
            evidence={"rank": rank, "n_columns": n_cols, "rank_deficit": deficit,
                      "regularized": bool(regularized), "threshold": "rank == n_columns",
                      "threshold_source": "nbdiag rule (fail)"},
            score=float(max(deficit, 1)) * 10.0,
            fix=(
                "Remove the redundant column(s): a condition that with the others sums to the "
                "constant, duplicated confounds (e.g. cosine confounds with drift_model='cosine'), "
                "or spike regressors for volumes with no other data."
            ),
        ))
    return findings
