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
    ``correlation`` matrix). Only task×task and task×confound pairs can raise
    ``correlation_high``; confound×confound pairs are never flagged.
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
    DesignAlgebra,
    check_design as _check_design,
    is_constant_column as _is_constant_column,
    json_float as _json_float,
    json_map as _json_map,
    r2_on as _r2_on,
    threshold_source as _source,
)
from nbdiag.findings import Finding
from nbdiag.thresholds import Thresholds
from nbdiag import codes


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
    """

    vif: dict[str, float]
    correlation: pd.DataFrame
    condition_number: float
    rank: int
    n_columns: int
    regularized: bool
    findings: tuple[Finding, ...] = field(default=())

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
    constant = np.array([_is_constant_column(X[:, j]) for j in range(X.shape[1])], dtype=bool)
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
    X = design[cols].to_numpy(dtype=float)
    Xc = X - X.mean(axis=0)
    norms = np.linalg.norm(Xc, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        R = (Xc.T @ Xc) / np.outer(norms, norms)
    R[:, norms == 0] = np.nan
    R[norms == 0, :] = np.nan
    np.fill_diagonal(R, np.where(norms == 0, np.nan, 1.0))
    return pd.DataFrame(np.clip(R, -1, 1), index=cols, columns=cols)


def assess_collinearity(  # noqa: C901
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
    cond = condition_number(design)
    rank = int(np.linalg.matrix_rank(X))
    n_cols = X.shape[1]
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

    in_corr = {c: j for j, c in enumerate(corr.columns)}
    R = corr.to_numpy()
    for i, a in enumerate(cols):
        if a not in in_corr:
            continue
        for b in cols[i + 1:]:
            if b not in in_corr:
                continue
            if roles[a] != "task" and roles[b] != "task":
                continue  # confound x confound pairs are never flagged
            r = float(R[in_corr[a], in_corr[b]])
            if not np.isfinite(r):
                continue
            sev = "warn" if abs(r) >= th.corr_warn else "info" if abs(r) >= th.corr_info else None
            if sev is None:
                continue
            limit = th.corr_warn if sev == "warn" else th.corr_info
            pair = "task×task" if roles[a] == roles[b] == "task" else "task×confound"
            findings.append(codes.CORRELATION_HIGH.finding(
                severity=sev,
                title=f"{a} and {b} are correlated (r = {r:.2f})",
                message=(
                    f"Pearson r between {a} and {b} is {r:.3f} ({pair}); |r| ≥ {limit:g} "
                    f"gives {sev}. Variance they share cannot be attributed to either one."
                ),
                evidence={
                    "columns": [a, b], "r": r, "pair": pair, "threshold": limit,
                    "corr_info": th.corr_info, "corr_warn": th.corr_warn,
                    "threshold_source": _source("corr_warn"),
                },
                score=abs(r) / th.corr_warn if th.corr_warn else abs(r),
                fix=(
                    "Jitter or reorder conditions in the task design, or, for a task×confound "
                    "pair, reconsider that confound in confounds_strategy (task-locked motion "
                    "removes task signal)."
                    if pair == "task×confound" else
                    "Correlated conditions are fine for differential contrasts between them; for "
                    "single-condition contrasts check the cVIF of the contrast."
                ),
            ))

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

    return CollinearityResult(
        vif=vif, correlation=corr, condition_number=cond, rank=rank,
        n_columns=n_cols, regularized=bool(regularized), findings=tuple(findings),
    )
