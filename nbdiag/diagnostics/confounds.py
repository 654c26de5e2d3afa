"""Confounds versus the task design: overlap, non-steady state, scrubbing, dof.

Definitions
-----------
R² on confounds
    Centred R² of each task regressor on the ``confound`` and ``spike`` columns
    plus the constant (an intercept is added if absent).
Non-steady-state handling
    Flagged volumes are ``context.nonsteady_volumes`` (from fMRIPrep's
    ``non_steady_state_outlier\\d+`` columns). A flagged volume is

    * *masked* when it is not among the fitted scans: absent from
      ``context.scan_index`` when that is given, otherwise when
      ``context.sample_mask_applied`` is true;
    * *modelled* when the design has a column that is nonzero on that volume's
      row and zero on every other row (a spike / one-hot regressor, e.g. the
      ``non_steady_state_outlier00`` column kept as a confound).

    Handled = every flagged volume masked or modelled.
Scrubbing
    ``scrub_not_applied`` when ``context.scrub_requested``, scrub volumes exist
    and some of them are neither masked nor modelled.
Residual degrees of freedom
    ``n_scans - rank(X)``, with rank computed as nilearn's ``OLSModel``
    (``matrix_rank(X, tol=sum(abs(X)) * eps)``), so ``dof`` equals the
    ``df_residuals`` nilearn uses for its t statistics.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd

from nbdiag.design.context import DesignContext
from nbdiag.diagnostics._linalg import (
    check_design as _check_design,
    json_map as _json_map,
    r2_on as _r2_on,
    threshold_source as _source,
)
from nbdiag.core.findings import Finding
from nbdiag.core.thresholds import Thresholds
from nbdiag.core import codes

_NSS = re.compile(r"^non_steady_state_outlier\d+$")


def nilearn_rank(X: np.ndarray) -> int:
    """Rank as nilearn's OLSModel computes ``df_model``."""
    X = np.asarray(X, dtype=float)
    eps = np.abs(X).sum() * np.finfo(np.float64).eps
    return int(np.linalg.matrix_rank(X, eps))


@dataclass(frozen=True)
class ConfoundsResult:
    """Confound diagnostics of one design (module docstring).

    Parameters
    ----------
    r2_task : dict of str to float
    nonsteady_columns : tuple of str
        ``non_steady_state_outlier*`` columns of the raw confounds file.
    nonsteady_volumes : tuple of int
    nonsteady_modeled, nonsteady_masked, nonsteady_handled : bool
    scrub_requested : bool
    scrub_volumes : tuple of int
    scrub_applied : bool
    dof : int
    findings : tuple of Finding
    """

    r2_task: dict[str, float]
    nonsteady_columns: tuple[str, ...]
    nonsteady_volumes: tuple[int, ...]
    nonsteady_modeled: bool
    nonsteady_masked: bool
    nonsteady_handled: bool
    scrub_requested: bool
    scrub_volumes: tuple[int, ...]
    scrub_applied: bool
    dof: int
    findings: tuple[Finding, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """The record's ``diagnostics.confounds`` section."""
        return {
            "r2_task": _json_map(self.r2_task),
            "nonsteady": {
                "columns_in_file": list(self.nonsteady_columns),
                "volumes": [int(v) for v in self.nonsteady_volumes],
                "modeled_as_regressors": bool(self.nonsteady_modeled),
                "masked": bool(self.nonsteady_masked),
                "handled": bool(self.nonsteady_handled),
            },
            "scrub": {
                "requested": bool(self.scrub_requested),
                "volumes": [int(v) for v in self.scrub_volumes],
                "applied": bool(self.scrub_applied),
            },
            "dof": int(self.dof),
        }


def _volume_status(design: pd.DataFrame, context: DesignContext, volumes: tuple[int, ...]) -> tuple[set[int], set[int]]:
    """(masked, modelled) subsets of ``volumes``."""
    n = design.shape[0]
    rows = list(context.scan_index) if context.scan_index is not None else list(range(n))
    row_of = {scan: r for r, scan in enumerate(rows)}
    X = design.to_numpy(dtype=float)
    nz = np.abs(X) > 1e-12
    masked: set[int] = set()
    modelled: set[int] = set()
    for v in volumes:
        if context.scan_index is not None:
            if v not in row_of:
                masked.add(v)
                continue
        elif context.sample_mask_applied:
            masked.add(v)
            continue
        r = row_of.get(v)
        if r is None or r >= n:
            continue
        one_hot = nz[r] & (nz.sum(axis=0) == 1)
        if one_hot.any():
            modelled.add(v)
    return masked, modelled


def assess_confounds(
    design: pd.DataFrame,
    roles: Mapping[str, str],
    context: DesignContext,
    thresholds: Thresholds | None = None,
) -> ConfoundsResult:
    """Confound overlap, non-steady-state and scrubbing handling, residual dof.

    Parameters
    ----------
    design : DataFrame
        Design matrix indexed by frame times.
    roles : mapping of str to str
    context : DesignContext
        Uses ``raw_confound_columns``, ``nonsteady_volumes``, ``scrub_volumes``,
        ``scrub_requested``, ``sample_mask_applied``, ``scan_index``,
        ``confounds_strategy``.
    thresholds : Thresholds, optional

    Returns
    -------
    ConfoundsResult
        Findings ``confound_task_correlated``, ``nonsteady_unhandled``,
        ``scrub_not_applied`` and ``dof_low``.
    """
    _check_design(design, roles)
    if not isinstance(context, DesignContext):
        raise TypeError(f"context must be a DesignContext; got {type(context).__name__}")
    th = thresholds or Thresholds()
    cols = [str(c) for c in design.columns]
    task = [c for c in cols if roles[c] == "task"]
    conf = [c for c in cols if roles[c] in ("confound", "spike")]
    X = design.to_numpy(dtype=float)
    n = X.shape[0]
    C = design[conf].to_numpy(dtype=float) if conf else np.zeros((n, 0))
    r2 = {c: (_r2_on(design[c].to_numpy(dtype=float), C) if conf else 0.0) for c in task}

    findings = _task_confound_findings(design, task, conf, C, r2, th)

    nss_cols = tuple(c for c in context.raw_confound_columns if _NSS.match(c))
    nss_vols = tuple(int(v) for v in context.nonsteady_volumes)
    masked, modelled = _volume_status(design, context, nss_vols)
    unhandled = [v for v in nss_vols if v not in masked and v not in modelled]
    nss_masked = bool(nss_vols) and all(v in masked for v in nss_vols)
    nss_modelled = bool(nss_vols) and all(v in modelled for v in nss_vols)
    handled = not unhandled
    if unhandled:
        findings.append(_nonsteady_finding(context, nss_cols, nss_vols, unhandled, masked, modelled))

    scrub_vols = tuple(int(v) for v in context.scrub_volumes)
    s_masked, s_modelled = _volume_status(design, context, scrub_vols)
    s_unhandled = [v for v in scrub_vols if v not in s_masked and v not in s_modelled]
    scrub_applied = bool(scrub_vols) and not s_unhandled
    if context.scrub_requested and s_unhandled:
        findings.append(_scrub_finding(context, scrub_vols, s_unhandled))

    dof = n - nilearn_rank(X)
    dof_finding = _dof_finding(n, dof, th)
    if dof_finding is not None:
        findings.append(dof_finding)

    return ConfoundsResult(
        r2_task=r2, nonsteady_columns=nss_cols, nonsteady_volumes=nss_vols,
        nonsteady_modeled=nss_modelled, nonsteady_masked=nss_masked, nonsteady_handled=handled,
        scrub_requested=bool(context.scrub_requested), scrub_volumes=scrub_vols,
        scrub_applied=scrub_applied, dof=int(dof), findings=tuple(findings),
    )


def _task_confound_findings(design: pd.DataFrame, task: list[str], conf: list[str], C: np.ndarray,
                            r2: Mapping[str, float], th: Thresholds) -> list[Finding]:
    """``confound_task_correlated`` for each task regressor whose R² on the confounds (+ constant) reaches
    ``confound_r2_warn`` (fail at ``confound_r2_fail``), naming the three most correlated confounds."""
    findings: list[Finding] = []
    for c in task:
        v = r2[c]
        if not np.isfinite(v):
            continue
        sev = "fail" if v >= th.confound_r2_fail else "warn" if v >= th.confound_r2_warn else None
        if sev is None:
            continue
        limit = th.confound_r2_fail if sev == "fail" else th.confound_r2_warn
        Cc = C - C.mean(axis=0)
        y = design[c].to_numpy(dtype=float)
        yc = y - y.mean()
        with np.errstate(invalid="ignore", divide="ignore"):
            rs = (Cc.T @ yc) / (np.linalg.norm(Cc, axis=0) * np.linalg.norm(yc))
        rs = np.nan_to_num(rs)
        top = [conf[i] for i in np.argsort(-np.abs(rs))[:3]]
        findings.append(codes.CONFOUND_TASK_CORRELATED.finding(
            severity=sev,
            title=f"Confounds explain {v:.0%} of {c}",
            message=(f"R² of task regressor {c} on the {len(conf)} confound/spike columns + "
                     f"constant is {v:.3f} (≥ {limit:g} gives {sev}); most related: "
                     f"{', '.join(top)}. Task signal shared with confounds is removed with them."),
            evidence={"regressor": c, "r2": v, "top_confounds": top,
                      "top_r": [float(rs[conf.index(t)]) for t in top], "threshold": limit,
                      "confound_r2_warn": th.confound_r2_warn, "confound_r2_fail": th.confound_r2_fail,
                      "threshold_source": _source("confound_r2_warn")},
            score=v / th.confound_r2_warn if th.confound_r2_warn else v,
            fix=("Use a smaller confounds_strategy (e.g. motion='basic' instead of 'full'), drop "
                 "task-locked confounds, or check whether the task causes the motion."),
        ))
    return findings


def _nonsteady_finding(context: DesignContext, nss_cols: tuple[str, ...], nss_vols: tuple[int, ...],
                       unhandled: list[int], masked: set[int], modelled: set[int]) -> Finding:
    """``nonsteady_unhandled`` (fail): flagged non-steady-state volumes neither masked nor modelled."""
    strategy = list(context.confounds_strategy) if context.confounds_strategy else None
    return codes.NONSTEADY_UNHANDLED.finding(
        severity="fail",
        title="Non-steady-state volumes stay in the model",
        message=(
            f"fMRIPrep flagged {len(nss_vols)} non-steady-state volume(s) {list(nss_vols)}; "
            f"{len(unhandled)} of them ({unhandled}) are neither removed by a sample mask nor "
            f"modelled by a regressor. With confounds_strategy containing 'non_steady_state', "
            f"load_confounds does not return these as confound columns: it returns a sample "
            f"mask instead, and first_level_from_bids keeps only the confounds and drops that "
            f"mask. The bright first volumes then sit unmodelled in the implicit baseline and "
            f"bias every condition-vs-baseline contrast."
        ),
        evidence={"volumes": list(nss_vols), "unhandled_volumes": unhandled,
                  "columns_in_file": list(nss_cols), "masked_volumes": sorted(masked),
                  "modeled_volumes": sorted(modelled), "confounds_strategy": strategy,
                  "sample_mask_applied": bool(context.sample_mask_applied),
                  "threshold": "every flagged volume masked or modelled",
                  "threshold_source": "nbdiag rule (fail)"},
        score=10.0 * len(unhandled),
        fix=("pass sample_masks from load_confounds to FirstLevelModel.fit or add the "
             "non_steady_state_outlier* columns as confounds"),
    )


def _scrub_finding(context: DesignContext, scrub_vols: tuple[int, ...], s_unhandled: list[int]) -> Finding:
    """``scrub_not_applied`` (fail): scrubbing requested, but marked volumes stay in the fit."""
    return codes.SCRUB_NOT_APPLIED.finding(
        severity="fail",
        title="Scrubbing was requested but not applied",
        message=(
            f"confounds_strategy asks for scrubbing and load_confounds marks "
            f"{len(scrub_vols)} volume(s) for censoring, but {len(s_unhandled)} of them stay in "
            f"the fit: load_confounds returns scrubbing as a sample mask, which "
            f"first_level_from_bids drops."
        ),
        evidence={"volumes": list(scrub_vols), "unhandled_volumes": s_unhandled,
                  "sample_mask_applied": bool(context.sample_mask_applied),
                  "threshold": "every scrub volume masked", "threshold_source": "nbdiag rule (fail)"},
        score=5.0 * len(s_unhandled),
        fix=("pass sample_masks from load_confounds to FirstLevelModel.fit (fit the runs "
             "yourself instead of relying on first_level_from_bids' confound handling)"),
    )


def _dof_finding(n: int, dof: int, th: Thresholds) -> Finding | None:
    """``dof_low`` (warn below ``dof_warn``, fail below ``dof_fail`` residual degrees of freedom), or ``None``."""
    sev = "fail" if dof < th.dof_fail else "warn" if dof < th.dof_warn else None
    if not sev:
        return None
    limit = th.dof_fail if sev == "fail" else th.dof_warn
    return codes.DOF_LOW.finding(
        severity=sev,
        title=f"Only {dof} residual degrees of freedom",
        message=(f"{n} scans minus a design rank of {n - dof} leaves {dof} residual degrees "
                 f"of freedom (< {limit:g} gives {sev}): noise and autocorrelation estimates "
                 f"are unstable."),
        evidence={"dof": dof, "n_scans": n, "rank": n - dof, "threshold": limit,
                  "dof_warn": th.dof_warn, "dof_fail": th.dof_fail,
                  "threshold_source": _source("dof_warn")},
        score=(th.dof_warn - dof) / th.dof_warn if th.dof_warn else 1.0,
        fix=("Use fewer confounds (e.g. compcor with fewer components, motion='basic'), a "
             "longer high-pass cutoff (fewer drift cosines), or fewer spike regressors."),
    )
