"""RT-duration regressor (ConsDurRTDur) diagnostics.

With an ``RTDur`` column (events of duration = response time, Mumford et al.
2024) a condition's beta is the part of its response *not* explained by
RT-scaled activity. ``rt_regressor_overlap`` reports the Pearson r between the
RT regressor and each condition regressor (warn at ``|r| >= rt_corr_warn``)
and, as info, what a single-condition contrast now means.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd

from nbdiag.design.context import DesignContext
from nbdiag.diagnostics.baseline import _condition_columns, _rt_name
from nbdiag.core.findings import Finding
from nbdiag.core.thresholds import Thresholds
from nbdiag.core import codes


@dataclass(frozen=True)
class RTResult:
    """Correlation of the RT-duration regressor with the condition regressors."""

    regressor: str | None
    correlation: dict[str, float]
    findings: tuple[Finding, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {"regressor": self.regressor,
                "correlation": {k: (None if not np.isfinite(v) else float(v)) for k, v in self.correlation.items()}}


def assess_rt(design: pd.DataFrame, roles: Mapping[str, str], context: DesignContext,
              contrasts: Mapping[str, np.ndarray] | None = None,
              thresholds: Thresholds | None = None) -> RTResult:
    """Find the RT-duration regressor and say how it changes condition betas.

    Parameters
    ----------
    design, roles, context
        As everywhere in ``nbdiag.diagnostics``.
    contrasts : mapping name -> vector, optional
        Single-condition contrasts get an info finding naming what they now mean.
    thresholds : Thresholds, optional
        ``rt_corr_warn``.
    """
    th = thresholds or Thresholds()
    rt = _rt_name(design, dict(roles), context)
    if rt is None or rt not in design.columns:
        return RTResult(regressor=None, correlation={})
    conds = [c for c in _condition_columns(design, dict(roles)) if c != rt]
    x = design[rt].to_numpy(float)
    corr: dict[str, float] = {}
    for c in conds:
        y = design[c].to_numpy(float)
        corr[c] = float(np.corrcoef(x, y)[0, 1]) if x.std() > 0 and y.std() > 0 else float("nan")
    findings: list[Finding] = []
    high = {c: r for c, r in corr.items() if np.isfinite(r) and abs(r) >= th.rt_corr_warn}
    if high:
        worst = max(high, key=lambda c: abs(high[c]))
        findings.append(codes.RT_REGRESSOR_OVERLAP.finding(
            severity="warn", title="RT-duration regressor overlaps conditions",
            message=f"The RT-duration regressor {rt} correlates with "
                    + ", ".join(f"{c} (r = {r:.2f})" for c, r in high.items())
                    + "; each condition beta is what remains after RT-scaled activity, and its variance grows.",
            evidence={"regressor": rt, "correlation": corr, "warn_at": th.rt_corr_warn},
            score=float(abs(high[worst])),
            fix=f"Report {rt} alongside the condition betas, compare with the model without {rt} "
                f"(variant 'nortdur'), and interpret differential contrasts.",
        ))
    col_index = {c: i for i, c in enumerate(design.columns)}
    for name, vec in (contrasts or {}).items():
        vec = np.asarray(vec, float)
        used = [c for c in conds if abs(vec[col_index[c]]) > 0]
        if len(used) == 1 and abs(vec[col_index[rt]]) == 0 and abs(vec.sum()) > 0:
            c = used[0]
            findings.append(codes.RT_REGRESSOR_OVERLAP.finding(
                severity="info", contrast=name,
                title=f"{name} now excludes RT-scaled activity",
                message=f"With {rt} in the model, {name} is the {c} response that is not explained by "
                        f"activity proportional to response time (r = {corr[c]:.2f} between {c} and {rt}), "
                        f"measured against the implicit baseline — not the total {c} response.",
                evidence={"regressor": rt, "condition": c, "r": corr[c]},
                score=float(abs(corr[c])) if np.isfinite(corr[c]) else 0.0,
                fix=f"Compare with the model without {rt}; interpret '{c}' together with '{rt}'.",
            ))
    return RTResult(regressor=rt, correlation=corr, findings=tuple(findings))
