"""What-if: re-audit a design after the fixes that can be applied to the design itself."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

import numpy as np
import pandas as pd

from nbdiag.core.jsonio import jsonable
from nbdiag.design.context import DesignContext
from nbdiag.core.findings import Finding
from nbdiag.core.thresholds import Thresholds
from nbdiag.core import codes
from nbdiag.core.compat import create_cosine_drift
from nbdiag.design.hrf import compute_regressor_fast
from nbdiag.diagnostics.baseline import modeled_rest_conditions, n_scans_total, original_index
from nbdiag.diagnostics.sensitivity import _base_hrf, core_signals, sensitivity_by_contrast


def _remap(vectors: Mapping[str, np.ndarray], old_cols, new_design: pd.DataFrame) -> dict[str, np.ndarray]:
    out = {}
    for name, vec in vectors.items():
        d = {c: float(w) for c, w in zip(old_cols, vec) if abs(w) > 0}
        if all(c in new_design.columns for c in d):
            out[name] = np.array([d.get(c, 0.0) for c in new_design.columns])
    return out


#: One what-if variant: (fix, code, design, roles, context, rows of the original design it keeps).
_Variant = tuple[str, str, pd.DataFrame, dict[str, str], DesignContext, np.ndarray]


def whatif_fixes(design: pd.DataFrame, roles: dict[str, str], context: DesignContext,
                 vectors: Mapping[str, np.ndarray], run_findings: list[Finding], th: Thresholds,
                 before: Mapping[str, Any], recommended_cutoff_s: float | None = None,
                 signals: list | None = None) -> list[dict[str, Any]]:
    """Apply design-level fixes, re-run weights + sensitivity, report before/after.

    The signal vectors ``m`` are built once, from the original run, and the
    same vectors (restricted to the rows the fixed design keeps) are
    evaluated on the fixed design, so before/after compare the same
    signals: ``bias_after = w_fixed @ m[rows]``. Each contrast reports
    ``max_abs_bias_sd_before/after`` (all sources),
    ``max_structural_bias_sd_before/after`` (sources whose structural cause is
    present in the original run) and ``by_source`` {source: {"before", "after"}}
    in contrast SDs.

    Fixes: ``apply sample mask`` (``design.iloc[keep]`` as nilearn does with
    ``sample_masks``) and ``add spike regressors`` for unhandled non-steady-state
    volumes; ``model unmodelled events`` (nilearn ``compute_regressor`` with the
    run's HRF); ``lower high_pass`` (cosine drift rebuilt with nilearn at the
    recommended cutoff); ``drop modelled rest condition``.
    """
    found = {f.code for f in run_findings}
    all_rows = np.arange(len(design))
    idx = original_index(design, context)
    variants = (_nonsteady_variants(design, roles, context, found, idx, all_rows)
                + _unmodeled_variants(design, roles, context, idx, all_rows)
                + _highpass_variants(design, roles, context, found, idx, all_rows, recommended_cutoff_s)
                + _rest_variants(design, roles, context, found, all_rows))
    if signals is None:
        _, signals = core_signals(design, roles, context, th)
    out = []
    for fix, code, d, r, ctx, rows in variants:
        vecs = _remap(vectors, design.columns, d)
        whole = rows.size == len(design) and bool(np.array_equal(rows, all_rows))  # the same rows in order
        same = list(signals) if whole else [replace(sg, values=np.asarray(sg.values)[rows]) for sg in signals]
        noise = next(iter(before.values())).noise if before else None
        sens = sensitivity_by_contrast(d, vecs, same, th, context, noise=noise)
        res = {name: _before_after(before[name], s) for name, s in sens.items()}
        worse = [n for n, v in res.items()
                 if v["max_structural_bias_sd_after"] > v["max_structural_bias_sd_before"] + 0.05
                 or (v["variance_after"] > 1.5 * v["variance_before"] > 0)]
        entry = {"fix": fix, "code": code, "contrasts": jsonable(res), "worse": worse}
        if worse:
            entry["note"] = ("This fix makes " + ", ".join(worse) + " worse: " + "; ".join(
                f"{n}: largest bias {res[n]['max_structural_bias_sd_before']:.2f} σ -> "
                f"{res[n]['max_structural_bias_sd_after']:.2f} σ, variance × "
                f"{res[n]['variance_after'] / res[n]['variance_before']:.2f}" if res[n]['variance_before'] else n
                for n in worse) + ".")
        out.append(entry)
    return out


def _max_abs(by_source: Mapping[str, Any], keys) -> float:
    """The largest finite ``|bias_sd|`` of ``by_source`` over the sources in ``keys`` (0 when none)."""
    vals = [abs(v) for k, v in by_source.items() if k in keys and v is not None and np.isfinite(v)]
    return float(max(vals)) if vals else 0.0


def _before_after(b: Any, s: Any) -> dict[str, Any]:
    """One contrast's sensitivity before (``b``) and after (``s``) a fix: largest biases (all and
    structural sources of the original run), per-source biases and variances."""
    bsd = {e["source"]: e["bias_sd"] for e in b.entries}
    struct = {e["source"] for e in b.entries if e.get("structural")}
    asd = {e["source"]: e["bias_sd"] for e in s.entries}
    return {"max_abs_bias_sd_before": _max_abs(bsd, bsd), "max_abs_bias_sd_after": _max_abs(asd, bsd),
            "max_structural_bias_sd_before": _max_abs(bsd, struct),
            "max_structural_bias_sd_after": _max_abs(asd, struct),
            "by_source": {k: {"before": bsd[k], "after": asd.get(k)} for k in bsd},
            "variance_before": b.variance, "variance_after": s.variance}


def _nonsteady_variants(design: pd.DataFrame, roles: dict[str, str], context: DesignContext, found: set[str],
                        idx: np.ndarray, all_rows: np.ndarray) -> list[_Variant]:
    """Unhandled non-steady-state volumes: ``apply sample mask`` (the flagged rows dropped, as nilearn
    does with ``sample_masks``) and ``add spike regressors`` (one per flagged volume in the model)."""
    flagged = set(int(v) for v in context.nonsteady_volumes)
    if not (codes.NONSTEADY_UNHANDLED.code in found and flagged & set(idx.tolist())):
        return []
    keep = np.array([i not in flagged for i in idx])
    d2 = design.iloc[np.flatnonzero(keep)]
    ctx2 = replace(context, scan_index=tuple(int(i) for i in idx[keep]),
                   n_scans_total=n_scans_total(design, context), sample_mask_applied=True)
    d3 = design.copy()
    roles3 = dict(roles)
    for v in sorted(flagged):
        rows = np.flatnonzero(idx == v)
        if rows.size:
            col = f"non_steady_state_outlier{v:02d}"
            d3.insert(0, col, 0.0)
            d3.iloc[rows[0], 0] = 1.0
            roles3 = {col: "spike", **roles3}
    return [("apply sample mask", codes.NONSTEADY_UNHANDLED.code, d2, roles, ctx2, np.flatnonzero(keep)),
            ("add spike regressors", codes.NONSTEADY_UNHANDLED.code, d3, roles3, context, all_rows)]


def _unmodeled_variants(design: pd.DataFrame, roles: dict[str, str], context: DesignContext,
                        idx: np.ndarray, all_rows: np.ndarray) -> list[_Variant]:
    """``model unmodelled events``: one task regressor per unmodelled trial type (the run's HRF)."""
    unmod = context.unmodeled_events
    if unmod is None or not len(unmod):
        return []
    d4 = design.copy()
    roles4 = dict(roles)
    full = context.frame_times(n_scans_total(design, context))
    for tt in sorted(set(unmod["trial_type"].astype(str))):
        rows = unmod[unmod["trial_type"].astype(str) == tt]
        cond = np.vstack([rows["onset"].to_numpy(float), rows["duration"].to_numpy(float), np.ones(len(rows))])
        reg, _ = compute_regressor_fast(cond, _base_hrf(context), full)
        d4.insert(0, tt, reg[idx, 0])
        roles4 = {tt: "task", **roles4}
    ev = unmod[["onset", "duration", "trial_type"]]
    ev4 = ev if context.events is None else pd.concat([context.events[["onset", "duration", "trial_type"]], ev])
    ctx4 = replace(context, events=ev4 if context.events is not None else None,
                   unmodeled_events=unmod.iloc[0:0])
    return [("model unmodelled events", codes.BASELINE_UNMODELED_EVENTS.code, d4, roles4, ctx4, all_rows)]


def _highpass_variants(design: pd.DataFrame, roles: dict[str, str], context: DesignContext, found: set[str],
                       idx: np.ndarray, all_rows: np.ndarray, recommended_cutoff_s: float | None) -> list[_Variant]:
    """``lower high_pass``: the cosine drift basis rebuilt (nilearn) at the recommended cutoff."""
    if not ((context.drift_model or "").lower() == "cosine" and recommended_cutoff_s and
            ({codes.HIGHPASS_CUTS_DESIGN.code, codes.DRIFT_OVERLAP.code} & found)):
        return []
    drift_cols = [c for c in design.columns if roles.get(c) == "drift"]
    full = context.frame_times(n_scans_total(design, context))
    basis = create_cosine_drift(1.0 / recommended_cutoff_s, full)[:, :-1][idx]
    d5 = design.drop(columns=drift_cols)
    roles5 = {c: r for c, r in roles.items() if c not in drift_cols}
    pos = len(d5.columns) - 1 if "constant" in d5.columns else len(d5.columns)
    for k in range(basis.shape[1]):
        d5.insert(pos + k, f"drift_{k + 1}", basis[:, k])
        roles5[f"drift_{k + 1}"] = "drift"
    roles5 = {c: roles5[c] for c in d5.columns}
    ctx5 = replace(context, high_pass=1.0 / recommended_cutoff_s)
    return [(f"lower high_pass to {1.0 / recommended_cutoff_s:.4g} Hz", codes.HIGHPASS_CUTS_DESIGN.code,
             d5, roles5, ctx5, all_rows)]


def _rest_variants(design: pd.DataFrame, roles: dict[str, str], context: DesignContext, found: set[str],
                   all_rows: np.ndarray) -> list[_Variant]:
    """``drop modelled rest``: the rest-like conditions' columns and events removed."""
    if codes.BASELINE_MODELED_REST.code not in found:
        return []
    rest = [c for c in modeled_rest_conditions(design, roles, context) if c in design.columns]
    if not rest:
        return []
    d6 = design.drop(columns=rest)
    roles6 = {c: r for c, r in roles.items() if c not in rest}
    ev6 = None if context.events is None else \
        context.events[~context.events["trial_type"].astype(str).isin(rest)]
    return [(f"drop modelled rest ({', '.join(rest)})", codes.BASELINE_MODELED_REST.code, d6, roles6,
             replace(context, events=ev6), all_rows)]
