"""The integrator ``audit_design``: every diagnostic on one design, explained.

``audit_design`` runs every diagnostic on one run's design, attaches run-level
causes to the contrasts they bias (:mod:`nbdiag.explain.attribution`), and re-audits the
design after the fixes that can be applied to the design itself
(:mod:`nbdiag.explain.whatif`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from nbdiag._json import jsonable
from nbdiag.context import DesignContext
from nbdiag.findings import Finding, rank_findings, status_from_findings, worst_severity
from nbdiag.thresholds import Thresholds
from nbdiag.diagnostics._linalg import DesignAlgebra
from nbdiag.diagnostics.measured import measure_signals, noise_level
from nbdiag.diagnostics.sensitivity import core_signals, sensitivity_by_contrast
from nbdiag.explain.whatif import whatif_fixes
from nbdiag import codes


@dataclass(frozen=True)
class DesignAudit:
    """Everything measured on one design (record sections ``diagnostics``,
    ``contrasts``, ``whatif``, ``findings``, ``status``)."""

    diagnostics: dict[str, Any]
    contrasts: dict[str, Any]
    whatif: list[dict[str, Any]]
    findings: list[Finding] = field(default_factory=list)
    status: str = "pass"
    measured: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"diagnostics": self.diagnostics, "contrasts": self.contrasts, "whatif": self.whatif,
                "findings": [f.to_dict() for f in self.findings], "status": self.status}


def audit_design(design: pd.DataFrame, roles: Mapping[str, str], context: DesignContext,
                 contrasts: Mapping[str, Any] | None, thresholds: Thresholds | None = None,
                 input_findings: Sequence[Finding] = (),
                 measured_global: Mapping[str, float] | None = None) -> DesignAudit:
    """Run all diagnostics on one design and explain every contrast.

    Parameters
    ----------
    design : DataFrame
        Design matrix indexed by frame times (nilearn column names).
    roles : mapping
        Column -> role.
    context : DesignContext
    contrasts : mapping name -> expression (or vector), or None for defaults
    thresholds : Thresholds, optional
    input_findings : sequence of Finding, optional
        Run-level findings about the inputs (e.g. ``tr_mismatch``) to attribute
        to the contrasts they bias; they are not repeated in the result's
        run-level findings (the caller holds them).
    measured_global : mapping contrast -> float, optional
        The run's measured global-signal estimate of each contrast (% signal),
        quoted when no cause reaches the warn size.

    Returns
    -------
    DesignAudit
    """
    from nbdiag.contrasts import parse_contrasts
    from nbdiag.diagnostics.collinearity import assess_collinearity
    from nbdiag.diagnostics.confounds import assess_confounds
    from nbdiag.diagnostics.drift import assess_drift
    from nbdiag.diagnostics.estimability import assess_contrast
    from nbdiag.diagnostics.rt import assess_rt
    from nbdiag.diagnostics.weights import baseline_composition, composition_findings, contrast_weights
    from nbdiag.explain.attribution import ContrastInputs, explain_contrasts

    th = thresholds or Thresholds()
    roles = dict(roles)
    cset = parse_contrasts(contrasts, design, roles)
    vectors = dict(cset.vectors)
    alg = DesignAlgebra.of(design)  # one factorisation of the design, shared by every diagnostic
    coll = assess_collinearity(design, roles, th, regularized=context.nilearn_regularized, algebra=alg)
    conf = assess_confounds(design, roles, context, th)
    drift = assess_drift(design, roles, context, vectors, th)
    base, signals = core_signals(design, roles, context, th)
    rt = assess_rt(design, roles, context, vectors, th)
    measured = None
    if context.measured_signals is not None:
        measured = measure_signals(context.measured_signals, design, vectors, base.scan_classes,
                                   rows=context.scan_index, nonsteady_volumes=context.nonsteady_volumes,
                                   noise_model=context.noise_model, algebra=alg,
                                   scrub_volumes=() if context.sample_mask_applied else context.scrub_volumes)
    noise = noise_level(design, context, measured=measured)
    sens = sensitivity_by_contrast(design, vectors, signals, th, context,
                                   extra_families=_extra_families(design, roles, vectors, drift, base, th),
                                   algebra=alg, noise=noise)
    all_found: list[Finding] = (list(cset.findings) + list(coll.findings) + list(conf.findings)
                                + list(drift.findings) + list(base.findings) + list(rt.findings))
    unmod_types = tuple(sorted(set(context.unmodeled_events["trial_type"].astype(str)))) \
        if context.unmodeled_events is not None and len(context.unmodeled_events) else ()
    task_cols = [i for i, c in enumerate(design.columns) if roles.get(c) == "task"]
    contrast_sec: dict[str, Any] = {}
    inputs = []
    for name, vec in vectors.items():
        stats = assess_contrast(design, name, vec, cset.kinds[name], th, algebra=alg)
        w = contrast_weights(design, vec, algebra=alg)
        comp = baseline_composition(w, base.scan_classes, edge_fraction=th.edge_fraction)
        own = list(stats.findings) + composition_findings(name, comp, th, unmod_types) + list(sens[name].findings)
        own += [f for f in all_found if f.contrast == name]
        inputs.append(ContrastInputs(name=name, kind=cset.kinds[name], task_sum=float(np.sum(vec[task_cols])),
                                     composition=comp, sensitivity=list(sens[name].entries), findings=own,
                                     unmodeled_types=unmod_types,
                                     n_nonsteady=int(sum(c == "nonsteady" for c in base.scan_classes)),
                                     measured_global=(measured_global or {}).get(name)))
        sd = stats.to_dict()
        contrast_sec[name] = {
            "expression": cset.expressions[name],
            "vector": {c: float(x) for c, x in zip(design.columns, vec)},
            "kind": cset.kinds[name], **{k: v for k, v in sd.items() if k not in ("findings",)},
            "drift_r2": getattr(drift, "r2_contrast", {}).get(name) if hasattr(drift, "r2_contrast") else None,
            "weights": w,
            "baseline_composition": comp,
            "sensitivity": sens[name].to_dict(),
        }
        if measured is not None:
            contrast_sec[name]["measured"] = jsonable(measured.contrast_dict(name))
    run_level = [f for f in all_found if f.contrast is None]
    # run-level copy of contrast-specific unmodelled-events evidence
    unmod_f = [f for i in inputs for f in i.findings if f.code == codes.BASELINE_UNMODELED_EVENTS.code]
    if unmod_f:
        run_level.append(codes.BASELINE_UNMODELED_EVENTS.finding(
            severity=worst_severity(f.severity for f in unmod_f),
            title="Unmodelled events sit in the baseline",
            message=f"{', '.join(unmod_types)} listed in events.tsv but not modelled, so they are part of "
                    f"the implicit baseline of every condition-vs-baseline contrast.",
            evidence={"event_types": list(unmod_types),
                      "negative_weight_share": {f.contrast: f.evidence.get("negative_weight_share") for f in unmod_f}},
            score=max(f.score for f in unmod_f), fix=unmod_f[0].fix))
    # the run's measured global-signal estimate of each contrast (contrasts.<c>.measured.global_signal, issue 12),
    # quoted by the explanation when no cause reaches the warn size
    inputs = [replace(ci, measured_global=_measured_global(contrast_sec.get(ci.name, {})))
              if ci.measured_global is None else ci for ci in inputs]
    expl = explain_contrasts(inputs, run_level + [f for f in input_findings if f.contrast is None], th,
                             sample_mask_dropped=not context.sample_mask_applied)
    findings: list[Finding] = rank_findings(run_level)
    for name in vectors:
        e = expl[name]
        contrast_sec[name]["explanation"] = e.explanation
        contrast_sec[name]["findings"] = e.codes()
        findings.extend(e.findings)
    for name in cset.expressions:
        if name not in contrast_sec:
            contrast_sec[name] = {"expression": cset.expressions[name], "estimable": False,
                                  "findings": [f.code for f in cset.findings if f.contrast == name]}
    seen_ids = {id(f) for f in findings}
    findings.extend(f for f in cset.findings if f.contrast is not None and id(f) not in seen_ids
                    and f.contrast not in vectors)
    whatif = whatif_fixes(design, roles, context, vectors, run_level, th, sens,
                          recommended_cutoff_s=getattr(drift, "recommended_cutoff_s", None), signals=signals)
    diagnostics = {"collinearity": jsonable(coll.to_dict()), "drift": jsonable(drift.to_dict()),
                   "confounds": jsonable(conf.to_dict()), "baseline": jsonable(base.to_dict()),
                   "rt": jsonable(rt.to_dict())}
    measured_sec = None
    if measured is not None:
        measured_sec = jsonable({**measured.signals_dict(), "noise_model": context.noise_model,
                                 "noise": {"sd_percent": noise.sd, "source": noise.source,
                                           "reason": noise.reason or None}})
    return DesignAudit(diagnostics=diagnostics, contrasts=jsonable(contrast_sec), whatif=whatif,
                       findings=findings, status=status_from_findings(findings), measured=measured_sec)


def _measured_global(section: Mapping[str, Any]) -> float | None:
    """``measured.global_signal.estimate`` of a contrast section (None when absent or the signal is in the model)."""
    gs = ((section or {}).get("measured") or {}).get("global_signal") or {}
    if not isinstance(gs, Mapping) or gs.get("in_model"):
        return None
    value = gs.get("estimate")
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) else None


def _extra_families(design: pd.DataFrame, roles: Mapping[str, str], vectors: Mapping[str, np.ndarray],
                    drift: Any, base: Any, th: Thresholds) -> dict[str, tuple[str, ...]]:
    """Generic signal families a cause of this run makes structural, per contrast.

    ``slow_drift`` when the drift model overlaps the contrast (its regressor's
    R² on drift + constant >= ``drift_r2_warn``: ``drift_overlap``); the slow
    and HRF-shape families and run-start settling for contrasts against the
    implicit baseline when no implicit baseline is left (baseline fraction <
    ``baseline_none_fraction``: only slow signal and shape errors decide them).
    """
    task_cols = np.array([roles.get(c) == "task" for c in design.columns])
    r2c = getattr(drift, "r2_contrast", {}) or {}
    tiled = float(base.fraction) < th.baseline_none_fraction
    out: dict[str, tuple[str, ...]] = {}
    for name, vec in vectors.items():
        fams: list[str] = []
        r2 = r2c.get(name)
        if r2 is not None and np.isfinite(r2) and r2 >= th.drift_r2_warn:
            fams.append("slow_drift")
        if tiled and abs(float(np.sum(np.asarray(vec)[task_cols]))) > 1e-8:
            fams += ["slow_drift", "hrf_derivative", "hrf_dispersion", "run_start"]
        out[name] = tuple(dict.fromkeys(fams))
    return out
