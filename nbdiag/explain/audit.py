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

from nbdiag.core.jsonio import jsonable
from nbdiag.design.context import DesignContext
from nbdiag.core.findings import Finding, rank_findings, status_from_findings, worst_severity
from nbdiag.core.thresholds import Thresholds
from nbdiag.design.contrasts import parse_contrasts
from nbdiag.diagnostics._linalg import DesignAlgebra
from nbdiag.diagnostics.censoring import assess_censoring, prepare
from nbdiag.diagnostics.collinearity import assess_collinearity
from nbdiag.diagnostics.confounds import assess_confounds
from nbdiag.diagnostics.drift import assess_drift
from nbdiag.diagnostics.estimability import assess_contrast
from nbdiag.diagnostics.measured import DISTINCT_T, measure_signals, nilearn_scale, noise_level
from nbdiag.diagnostics.motion import assess_motion
from nbdiag.diagnostics.rt import assess_rt
from nbdiag.diagnostics.sensitivity import (MeasuredSizes, core_signals, footprints, sensitivity_by_contrast,
                                            settling_head, without_volumes)
from nbdiag.diagnostics.weights import baseline_composition, composition_findings, contrast_weights
from nbdiag.explain.attribution import ContrastInputs, explain_contrasts
from nbdiag.explain.whatif import whatif_fixes
from nbdiag.core import codes


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
    reviewer = _reviewer_numbers(design, roles, context, th, coll.rank)  # AFNI/FSL reviewers' numbers (issue 23)
    measured = _measure(design, roles, context, vectors, base.scan_classes, alg)
    noise = noise_level(design, context, measured=measured)
    absorbed: list[int] = []   # run-start volumes that are a slow settling's head: no longer transients
    sizes = _measured_sizes(measured, vectors, alg, design, context, signals, absorbed)
    if absorbed:   # a settling's head is counted once: in its run_edge part, not also as a transient part
        measured = _measure(design, roles, context, vectors, base.scan_classes, alg, absorbed)
        signals = without_volumes(signals, "transient", absorbed, context)
        sizes = _measured_sizes(measured, vectors, alg, design, context, signals)
    sens = sensitivity_by_contrast(design, vectors, signals, th, context,
                                   extra_families=_extra_families(design, roles, vectors, drift, base, th),
                                   algebra=alg, noise=noise, measured=sizes)
    all_found: list[Finding] = (list(cset.findings) + list(coll.findings) + list(conf.findings)
                                + list(drift.findings) + list(base.findings) + list(rt.findings)
                                + [f for r in reviewer.values() for f in r.findings])
    unmod_types = tuple(sorted(set(context.unmodeled_events["trial_type"].astype(str)))) \
        if context.unmodeled_events is not None and len(context.unmodeled_events) else ()
    inputs, contrast_sec = _contrast_sections(design, roles, cset, alg, base, drift, sens, measured, all_found,
                                              unmod_types, measured_global, th)
    run_level = _measured_run_severity([f for f in all_found if f.contrast is None], sens, measured, th, absorbed)
    run_level += _unmodeled_run_findings(inputs, unmod_types)
    # the run's measured global-signal estimate of each contrast (contrasts.<c>.measured.global_signal, issue 12),
    # quoted by the explanation when no cause reaches the warn size
    inputs = [replace(ci, measured_global=_measured_global(contrast_sec.get(ci.name, {})))
              if ci.measured_global is None else ci for ci in inputs]
    inputs = [replace(ci, measured_gs=((contrast_sec.get(ci.name) or {}).get("measured") or {}).get("global_signal"))
              for ci in inputs]
    expl = explain_contrasts(inputs, run_level + [f for f in input_findings if f.contrast is None], th,
                             sample_mask_dropped=not context.sample_mask_applied)
    findings = _explained_findings(expl, run_level, cset, contrast_sec)
    whatif = whatif_fixes(design, roles, context, vectors, run_level, th, sens,
                          recommended_cutoff_s=getattr(drift, "recommended_cutoff_s", None), signals=signals)
    diagnostics = {"collinearity": jsonable(coll.to_dict()), "drift": jsonable(drift.to_dict()),
                   "confounds": jsonable(conf.to_dict()), "baseline": jsonable(base.to_dict()),
                   "rt": jsonable(rt.to_dict()), **{k: jsonable(r.to_dict()) for k, r in reviewer.items()}}
    measured_sec = None if measured is None else _measured_section(measured, context, noise)
    return DesignAudit(diagnostics=diagnostics, contrasts=jsonable(contrast_sec), whatif=whatif,
                       findings=findings, status=status_from_findings(findings), measured=measured_sec)

def _measure(design: pd.DataFrame, roles: Mapping[str, str], context: DesignContext,
             vectors: Mapping[str, np.ndarray], scan_classes: Sequence[str], alg: DesignAlgebra,
             settling_head: Sequence[int] = ()) -> Any:
    """The run's measured signals (:func:`measure_signals`) against every contrast, or None when the
    context holds none; ``settling_head``: run-start volumes that are a slow settling's head."""
    if context.measured_signals is None:
        return None
    return measure_signals(context.measured_signals, design, vectors, scan_classes,
                           rows=context.scan_index, nonsteady_volumes=context.nonsteady_volumes,
                           noise_model=context.noise_model, algebra=alg,
                           scrub_volumes=() if context.sample_mask_applied else context.scrub_volumes,
                           task_columns=[c for c in design.columns if roles.get(c) == "task"],
                           settling_head=settling_head)


def _contrast_sections(design: pd.DataFrame, roles: Mapping[str, str], cset: Any, alg: DesignAlgebra, base: Any,
                       drift: Any, sens: Mapping[str, Any], measured: Any, all_found: Sequence[Finding],
                       unmod_types: tuple[str, ...], measured_global: Mapping[str, float] | None,
                       th: Thresholds) -> tuple[list[ContrastInputs], dict[str, Any]]:
    """Per contrast: what the explanation needs (:class:`ContrastInputs`: its own findings, weights'
    composition, sensitivity) and its record section (estimability, weights, composition, sensitivity,
    measured)."""
    task_cols = [i for i, c in enumerate(design.columns) if roles.get(c) == "task"]
    contrast_sec: dict[str, Any] = {}
    inputs = []
    n_nonsteady = int(sum(c == "nonsteady" for c in base.scan_classes))
    for name, vec in cset.vectors.items():
        stats = assess_contrast(design, name, vec, cset.kinds[name], th, algebra=alg)
        w = contrast_weights(design, vec, algebra=alg)
        comp = baseline_composition(w, base.scan_classes, edge_fraction=th.edge_fraction)
        own = list(stats.findings) + composition_findings(name, comp, th, unmod_types) + list(sens[name].findings)
        own += [f for f in all_found if f.contrast == name]
        inputs.append(ContrastInputs(name=name, kind=cset.kinds[name], task_sum=float(np.sum(vec[task_cols])),
                                     composition=comp, sensitivity=list(sens[name].entries), findings=own,
                                     unmodeled_types=unmod_types,
                                     n_nonsteady=n_nonsteady,
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
    return inputs, contrast_sec


def _unmodeled_run_findings(inputs: Sequence[ContrastInputs], unmod_types: tuple[str, ...]) -> list[Finding]:
    """The run-level copy of the contrasts' ``baseline_unmodeled_events`` evidence (empty without any)."""
    unmod_f = [f for i in inputs for f in i.findings if f.code == codes.BASELINE_UNMODELED_EVENTS.code]
    if not unmod_f:
        return []
    return [codes.BASELINE_UNMODELED_EVENTS.finding(
        severity=worst_severity(f.severity for f in unmod_f),
        title="Unmodelled events sit in the baseline",
        message=f"{', '.join(unmod_types)} listed in events.tsv but not modelled, so they are part of "
                f"the implicit baseline of every condition-vs-baseline contrast.",
        evidence={"event_types": list(unmod_types),
                  "negative_weight_share": {f.contrast: f.evidence.get("negative_weight_share") for f in unmod_f}},
        score=max(f.score for f in unmod_f), fix=unmod_f[0].fix)]


def _explained_findings(expl: Mapping[str, Any], run_level: list[Finding], cset: Any,
                        contrast_sec: dict[str, Any]) -> list[Finding]:
    """The run's findings: run-level ones ranked, then each contrast's ranked explanation (whose paragraph
    and codes go into its section), then the parse findings of contrasts that have no vector (their
    section says they are not estimable)."""
    vectors = cset.vectors
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
    return findings


def _measured_section(measured: Any, context: DesignContext, noise: Any) -> Any:
    """The record's ``measured`` section: every signal's summary, the noise model and the noise level."""
    return jsonable({**measured.signals_dict(), "noise_model": context.noise_model,
                     "noise": {"sd_percent": noise.sd, "source": noise.source,
                               "reason": noise.reason or None}})



def _reviewer_numbers(design: pd.DataFrame, roles: Mapping[str, str], context: DesignContext,
                      th: Thresholds, rank: int | None = None) -> dict[str, Any]:
    """Censoring and motion per condition (record ``diagnostics.censoring`` / ``diagnostics.motion``)."""
    prepared = prepare(design, roles, context)
    return {"censoring": assess_censoring(design, roles, context, th, rank=rank, prepared=prepared),
            "motion": assess_motion(design, roles, context, th, prepared=prepared)}


def _measured_sizes(measured: Any, vectors: Mapping[str, np.ndarray], alg: DesignAlgebra, design: pd.DataFrame,
                    context: DesignContext, signals: Sequence[Any], absorbed: list[int] | None = None
                    ) -> dict[str, Any] | None:
    """Per contrast, what the global signal measured (``MeasuredSizes`` for the sensitivity severities).
    ``absorbed`` receives the run-start volumes found to be the head of a slow settling
    (:func:`nbdiag.diagnostics.sensitivity.settling_head`), no longer transients."""
    if measured is None or "global_signal" not in measured.signals:
        return None
    summ = measured.signals["global_signal"]
    rsd = summ.residual_sd_percent
    if rsd is None or not np.isfinite(rsd) or rsd <= 0 or summ.in_model:
        return None
    rows = np.arange(len(design)) if context.scan_index is None else np.asarray(context.scan_index, dtype=int)
    y = nilearn_scale(np.asarray((context.measured_signals or {})["global_signal"], dtype=float)[rows])
    skip = set(int(v) for v in context.nonsteady_volumes)
    if not context.sample_mask_applied:
        skip |= set(int(v) for v in context.scrub_volumes)
    if summ.transients is not None:
        skip |= set(summ.transients.unflagged())
    excluded = np.isin(rows, sorted(skip))
    shapes: dict[str, tuple[str, np.ndarray]] = {}
    X = alg.X if hasattr(alg, "X") else design.to_numpy(dtype=float)
    foot = footprints(X, alg.pinv, y, float(rsd), list(signals), excluded, shapes) if np.isfinite(y).all() else {}
    by_source = {sg.source: sg for sg in signals}
    if "run_start" in foot and summ.transients is not None:
        # bright run-start volumes that a slow settling explains are its head, not transients
        lead = [v["volume"] for v in summ.transients.volumes if not v["flagged_by"] and v["position"] == "run_start"]
        head = settling_head(X, alg.pinv, y, float(rsd), by_source["run_start"], excluded, np.isin(rows, lead),
                             summ.transients.threshold_percent) if lead else None
        if head is not None:
            foot["run_start"] = head[0]
            if head[1] is None:
                shapes.pop("run_start", None)
            else:
                shapes["run_start"] = head[1]
            if absorbed is not None:
                absorbed.extend(lead)
    out = {}
    for name, vec in vectors.items():
        m = (measured.contrasts.get(name) or {}).get("global_signal")
        if m is None or m.by_class is None:
            continue
        var = alg.variance(np.asarray(vec, float))
        if not var > 0:
            continue
        foot_c = dict(foot)
        if shapes:
            # a better-fitting shape: express its fitted size as a multiple of the assumed signal's bias on
            # this contrast, so that β × bias is the fitted shape's own bias (w · β m_shape)
            w = alg.weights(np.asarray(vec, float))
            for src, (_, v) in shapes.items():
                b0, b1 = float(w @ by_source[src].values), float(w @ v)
                beta, se = foot[src]
                if abs(b0) > 1e-12 * max(by_source[src].max_abs, 1e-300):
                    foot_c[src] = (beta * b1 / b0, se * abs(b1 / b0))
                else:
                    foot_c.pop(src, None)
        out[name] = MeasuredSizes(parts={k: (float(v), (m.by_class_t or {}).get(k)) for k, v in m.by_class.items()},
                                  sd=float(rsd * np.sqrt(var)), loadings=measured.loadings.get("global_signal", {}),
                                  footprints=foot_c, shapes={k: lab for k, (lab, _) in shapes.items()},
                                  below_zero=tuple(k for k, (b, _) in foot.items() if b < 0))
    return out


#: Run-level codes whose severity follows the measured effect of their signal on the contrasts.
_MEASURED_RUN = {codes.NONSTEADY_UNHANDLED.code: ("nonsteady", "the flagged volumes' measured excess"),
                 codes.SCRUB_NOT_APPLIED.code: ("scrub", "the censored volumes' measured part"),
                 codes.CONFOUND_TASK_CORRELATED.code: ("confound:", "regressing out the task-locked confounds "
                                                                    "(their measured loading in the global signal)"),
                 codes.DRIFT_OVERLAP.code: ("slow_drift", "the slow drift just inside the pass band (its fitted size "
                                                          "in the global signal)"),
                 codes.HIGHPASS_CUTS_DESIGN.code: ("slow_drift", "the slow drift just inside the pass band (its fitted "
                                                                 "size in the global signal)")}
#: Run-level codes that are no cause at all when their measured effect is below the warn size (no pipeline
#: error to fix): ``info``, "not a cause here".
_INFO_WHEN_HARMLESS = (codes.CONFOUND_TASK_CORRELATED.code, codes.DRIFT_OVERLAP.code, codes.HIGHPASS_CUTS_DESIGN.code)


def _variance_cause(f: Finding) -> Finding:
    """``vif_high`` at its fail size is a variance cause (issue 20): it widens a beta's spread but moves no
    estimate, so it warns and never fails the run; the contrasts it hits are graded by their own contrast
    VIF (``contrast_variance_inflated``). Any other finding is returned unchanged."""
    if f.code != codes.VIF_HIGH.code or f.severity != "fail":
        return f
    return replace(f, severity="warn", evidence={**f.evidence, "own_severity": f.severity, "rule": "variance cause"},
                   message=f.message + " A variance cause, not a bias: it does not fail the run; the contrasts it "
                                       "hits are graded by their contrast VIF.")


def _measured_run_severity(run_level: list[Finding], sens: Mapping[str, Any], measured: Any,
                           th: Thresholds, absorbed: Sequence[int] = ()) -> list[Finding]:
    """Severity of run-level pitfalls from their measured effect (issue 20), and ``transient_unflagged``.

    ``nonsteady_unhandled`` / ``scrub_not_applied`` / ``confound_task_correlated``: when every
    contrast's effect of the signal (for the confounds: of every task-locked confound) is measured, the run fails only if one contrast moves by ``sensitivity_fail`` σ or more; otherwise it
    is a warning, "harmless here, by this much" below ``sensitivity_warn`` σ. Unmeasured, they keep the
    registry's severity (an unmeasurable risk). ``transient_unflagged`` is added when unflagged transients
    stay in the model, with the worst per-contrast severity of their measured effect (info below warn).
    """
    gs_measured = _global_measured(measured)
    out = [_no_locked_confound(f, sens) if gs_measured else f for f in map(_variance_cause, run_level)]
    out = [_graded_by_measure(f, sens, th) for f in out]
    transient = _transient_finding(sens, measured, th, absorbed)
    if transient is not None:
        out.append(transient)
    return out


def _global_measured(measured: Any) -> bool:
    """Whether the run's ``global_signal`` was measured and is not itself a design column."""
    summ = None if measured is None else measured.signals.get("global_signal")
    return summ is not None and not summ.in_model and summ.residual_sd_percent is not None


def _no_locked_confound(f: Finding, sens: Mapping[str, Any]) -> Finding:
    """``confound_task_correlated`` when no confound of the model follows the task beyond the drift model.

    The finding's R² is the task regressor's on the confounds + constant; the signal library makes a
    ``confound:<column>`` cause only of a column with a task-locked part beyond drift (partial R² at least
    ``confound_r2_warn``, :func:`nbdiag.diagnostics.sensitivity.confound_signals`). With none, the overlap is
    slow wandering (random-walk motion beside slow blocks) that the measured signal's own fit weighs as
    noise: no estimate is moved by regressing it out beyond what the drift model does, so the finding is
    ``info`` (context), not a cause. Any other finding, or one with a ``confound:`` entry, is unchanged."""
    if f.code != codes.CONFOUND_TASK_CORRELATED.code or f.severity not in ("warn", "fail"):
        return f
    if any(x["source"].startswith("confound:") for res in sens.values() for x in res.entries):
        return f
    return replace(f, severity="info", evidence={**f.evidence, "own_severity": f.severity,
                                                 "severity_rule": "no task-locked confound"},
                   message=f.message + " Not a cause here: no confound column follows the task beyond the drift "
                                       "model (partial R² below the warn size on every one), so the overlap is "
                                       "slow wandering, not task-locked motion.")


def _entry_effect(e: Mapping[str, Any], name: str) -> tuple[float, str, float] | None:
    """(|measured bias| in σ, contrast, bias %) of one entry; None when its size is not measured."""
    if e.get("severity_basis") == "measured":
        sd = e.get("bias_sd")
        return (abs(float(sd)) if sd is not None and np.isfinite(sd) else 0.0, name,
                float(e.get("bias_percent") or 0.0))
    if e.get("severity_basis") == "measured_part":
        sd, t = e.get("measured_bias_sd"), e.get("measured_t")
        ok = sd is not None and t is not None and np.isfinite(t) and abs(t) >= DISTINCT_T
        return (abs(float(sd)) if ok and sd is not None else 0.0, name,
                float(e.get("measured_bias_percent") or 0.0))
    return None


def _source_effects(sens: Mapping[str, Any], source: str) -> list[tuple[float, str, float]] | None:
    """:func:`_entry_effect` of ``source`` (a family when it ends in ``:``) on every contrast; None when
    one of them is not measured or there is none."""
    out = []
    for name, res in sens.items():
        found = [x for x in res.entries if x["source"].startswith(source)] if source.endswith(":") \
            else [x for x in [res.entry(source)] if x is not None]
        for e in found:
            got = _entry_effect(e, name)
            if got is None:
                return None
            out.append(got)
    return out or None


def _graded_by_measure(f: Finding, sens: Mapping[str, Any], th: Thresholds) -> Finding:
    """A run-level finding of ``_MEASURED_RUN`` graded by its largest measured effect on a contrast
    (fail / warn / info or "harmless here" warn); unchanged when unmeasured or not such a finding."""
    spec = _MEASURED_RUN.get(f.code)
    eff = _source_effects(sens, spec[0]) if spec else None
    if spec is None or eff is None:
        return f
    a, name, pct = max(eff)
    if a >= th.sensitivity_fail:
        sev, words = "fail", (f" Measured: {spec[1]} moves {name} by {a:.2f} σ ({pct:+.3g} %), at or above the "
                              f"fail size of {th.sensitivity_fail:g} σ.")
    elif a >= th.sensitivity_warn:
        sev, words = "warn", (f" Measured: {spec[1]} moves {name} by {a:.2f} σ ({pct:+.3g} %), below the fail "
                              f"size of {th.sensitivity_fail:g} σ.")
    elif f.code in _INFO_WHEN_HARMLESS:
        # no pipeline error: a confound that follows the task by chance, or a drift overlap, that leaves no
        # measured footprint is no cause (issue 20), so it is context, not a warning
        sev, words = "info", (f" Not a cause here: {spec[1]} moves no contrast by more than {a:.2f} σ "
                              f"(largest: {name}, {pct:+.3g} %; warn size {th.sensitivity_warn:g} σ): the "
                              f"measured signal carries no footprint of it.")
    else:
        sev, words = "warn", (f" Harmless here: {spec[1]} moves no contrast by more than {a:.2f} σ (largest: "
                              f"{name}, {pct:+.3g} %; warn size {th.sensitivity_warn:g} σ), but the volumes "
                              f"should still be masked.")
    return replace(f, severity=sev, message=f.message + words,
                   evidence={**f.evidence, "measured_max_bias_sd": a, "measured_contrast": name,
                             "measured_bias_percent": pct, "severity_rule": "measured effect"})


def _transient_finding(sens: Mapping[str, Any], measured: Any, th: Thresholds,
                       absorbed: Sequence[int] = ()) -> Finding | None:
    """``transient_unflagged`` when global-signal transients no fMRIPrep column flags stay in the model and
    their effect is measured on every contrast (severity: the worst per-contrast one, info below warn)."""
    tr = None
    if measured is not None and "global_signal" in measured.signals:
        tr = measured.signals["global_signal"].transients
    eff = _source_effects(sens, "transient") if tr is not None else None
    if tr is None or eff is None:
        return None
    vols = [v for v in tr.volumes if not v["flagged_by"] and v["volume"] not in absorbed]
    sevs = [res.entry("transient").get("severity") for res in sens.values() if res.entry("transient")]
    sev = worst_severity([s for s in sevs if s in ("warn", "fail")] or ["info"]) or "info"
    a, name, pct = max(eff)
    listed = ", ".join(f"{v['volume']} ({v['excess_percent']:+.1f} %)" for v in vols[:8])
    more = f" and {len(vols) - 8} more" if len(vols) > 8 else ""
    where = ("at the run start" if all(v["position"] == "run_start" for v in vols) else
             "as spikes" if all(v["position"] == "spike" for v in vols) else "at the run start and as spikes")
    effect = (f"Measured effect: it moves {name} by {a:.2f} σ ({pct:+.3g} %)." if a >= th.sensitivity_warn else
              f"Harmless here: the measured effect on every contrast is below {th.sensitivity_warn:g} σ "
              f"(largest {a:.2f} σ, {name}).")
    return codes.TRANSIENT_UNFLAGGED.finding(
        severity=sev,
        message=(f"{len(vols)} volume(s) {where} stand out in global_signal — {listed}{more} — by more than "
                 f"{tr.threshold_percent:.2g} % ({tr.to_dict()['k']:g} robust SD of the departures from the running level) from their local "
                 f"steady level, and fMRIPrep flagged none of them (no non_steady_state_outlier* or "
                 f"motion_outlier* column); they stay in the model. {effect}"),
        evidence={"volumes": [dict(v) for v in vols], "threshold_percent": tr.threshold_percent,
                  "noise_percent": tr.noise_percent, "measured_max_bias_sd": a, "measured_contrast": name,
                  "measured_bias_percent": pct},
        score=float(a))


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
