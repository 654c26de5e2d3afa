"""Ranked, plain-language explanations per contrast (the sign-flip engine).

Inputs are the numbers the diagnostics already produced: each contrast's
weights, baseline composition and sensitivity entries, and the run's findings.

Attribution rules
-----------------
* A run-level *cause* is copied to a contrast, with the contrast's own
  numbers, only when those numbers support it:

  - ``nonsteady_unhandled``: the flagged volumes carry at least
    ``unmodeled_weight_warn`` of the contrast's negative weight, or the
    ``nonsteady`` signal lowers it by at least ``sensitivity_warn`` σ.
    Severity ``fail`` at ``bias_sd <= -sensitivity_fail`` or a share of at
    least ``unmodeled_weight_fail``, else ``warn``. (The run-level finding
    stays ``fail``.)
  - ``scrub_not_applied``: the ``scrub`` signal moves it by at least
    ``sensitivity_warn`` σ (same severity rule).
  - ``baseline_modeled_rest`` / ``baseline_scarce``: the contrast is measured
    against the implicit baseline (its task weights do not sum to 0).
  - ``rt_regressor_overlap``: an ``rt:<cond>`` signal whose severity is
    warn/fail for this contrast (structural for it and lowering it; see
    ``nbdiag.diagnostics.sensitivity``).
* Each sensitivity source is *claimed* by the most specific cause present for
  the contrast (``CLAIMS``). A cause's score is the largest claimed
  ``|bias_sd| × typical`` (plausible size) over claimed entries whose own
  severity is warn/fail; its severity is the worse of its own and those
  entries' severities (generic or raising entries never raise it).
* Causes that can *bias* the estimate (``BIAS_CODES``: the sign-flip
  families) at warn/fail get ``BIAS_TIER`` added to their score, so at equal
  severity they rank before findings that only cost precision
  (``drift_overlap``, ``highpass_cuts_design``, ``contrast_variance_inflated``,
  ...): a loss of precision cannot by itself turn a positive effect negative.
  Severity still ranks first (a ``fail`` precision finding stays above a
  ``warn`` cause), so the per-contrast order equals the run's global
  severity-then-score order.
* ``baseline_scarce`` follows ``baseline_modeled_rest`` (else
  ``baseline_edge_concentrated``) when present: the baseline is scarce
  *because* rest is modelled (or what is left of it sits at the run edge),
  and that is what to fix. ``contrast_variance_inflated`` follows
  ``rt_regressor_overlap`` when that is present for the contrast (the
  RT-duration regressor shares the condition's variance), else, for a
  contrast against the baseline, the same head as ``baseline_scarce``. A head's severity is the worst
  of its group.
* Findings of a contrast are grouped: a claimed ``sensitive_unmodeled_signal``
  or ``contrast_variance_inflated`` follows the cause that explains it. Groups
  are ranked by the head's severity, then score, so the first finding is the
  most likely explanation.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

import numpy as np

from nbdiag.findings import Finding, rank_findings, severity_rank, worst_severity
from nbdiag.thresholds import Thresholds
from nbdiag import codes

#: Which cause claims which sensitivity source family, in priority order.
CLAIMS: dict[str, tuple[str, ...]] = {
    "nonsteady": (codes.NONSTEADY_UNHANDLED.code,),
    "unmodeled": (codes.BASELINE_UNMODELED_EVENTS.code,),
    "short_gaps": (codes.BASELINE_SHORT_GAPS.code, codes.BASELINE_MODELED_REST.code),
    "pre_block": (codes.BASELINE_SHORT_GAPS.code,),
    "scrub": (codes.SCRUB_NOT_APPLIED.code,),
    "run_start": (codes.BASELINE_MODELED_REST.code, codes.BASELINE_EDGE_CONCENTRATED.code,
                  codes.BASELINE_SCARCE.code),
    "slow_drift": (codes.DRIFT_OVERLAP.code, codes.HIGHPASS_CUTS_DESIGN.code, codes.BASELINE_MODELED_REST.code),
    "hrf_derivative": (codes.BASELINE_MODELED_REST.code,),
    "hrf_dispersion": (codes.BASELINE_MODELED_REST.code,),
    "rt": (codes.RT_REGRESSOR_OVERLAP.code,),
}

#: Run-level codes that are copied to the contrasts they bias.
RUN_CAUSES = (codes.NONSTEADY_UNHANDLED.code, codes.SCRUB_NOT_APPLIED.code, codes.BASELINE_MODELED_REST.code,
              codes.BASELINE_SCARCE.code, codes.RT_REGRESSOR_OVERLAP.code, codes.HIGHPASS_CUTS_DESIGN.code,
              codes.DRIFT_OVERLAP.code)

#: Codes of the sign-flip families (causes that bias an estimate, not only its precision).
BIAS_CODES = (codes.NONSTEADY_UNHANDLED.code, codes.SCRUB_NOT_APPLIED.code, codes.BASELINE_UNMODELED_EVENTS.code,
              codes.BASELINE_SHORT_GAPS.code, codes.BASELINE_EDGE_CONCENTRATED.code, codes.BASELINE_MODELED_REST.code,
              codes.BASELINE_SCARCE.code, codes.RT_REGRESSOR_OVERLAP.code, codes.SENSITIVE_UNMODELED_SIGNAL.code)
#: More specific baseline causes that ``baseline_scarce`` follows (first present wins).
SCARCE_BECAUSE = (codes.BASELINE_MODELED_REST.code, codes.BASELINE_EDGE_CONCENTRATED.code)

#: Score offset of a warn/fail bias cause (see the module doc).
BIAS_TIER = 100.0

#: Consequences that follow the cause explaining them.
CONSEQUENCES = (codes.SENSITIVE_UNMODELED_SIGNAL.code, codes.CONTRAST_VARIANCE_INFLATED.code)

_CLASS_WORDS = {
    "nonsteady": "flagged non-steady-state volumes",
    "unmodeled_event": "unmodelled events",
    "short_gap": "short gaps next to blocks",
    "run_edge": "run-edge scans",
    "fixation": "fixation",
}


@dataclass(frozen=True)
class ContrastExplanation:
    """Ranked findings and the paragraph for one contrast."""

    contrast: str
    findings: tuple[Finding, ...]
    explanation: str

    def codes(self) -> list[str]:
        return [f.code for f in self.findings]


@dataclass(frozen=True)
class ContrastInputs:
    """What ``explain_contrasts`` needs to know about one contrast."""

    name: str
    kind: str
    task_sum: float
    composition: dict[str, Any]
    sensitivity: list[dict[str, Any]]
    findings: Sequence[Finding] = field(default_factory=tuple)
    unmodeled_types: tuple[str, ...] = ()
    n_nonsteady: int = 0


def _fam(source: str) -> str:
    return source.split(":", 1)[0]


def _sev_of_sd(a: float, th: Thresholds) -> str | None:
    if a >= th.sensitivity_fail:
        return "fail"
    if a >= th.sensitivity_warn:
        return "warn"
    return None


def _entry_sev(entry: dict[str, Any], th: Thresholds) -> str | None:
    """Severity of one sensitivity entry (recorded by assess_sensitivity; older records: |bias_sd|)."""
    if "severity" in entry:
        return entry["severity"]
    return _sev_of_sd(abs(_sd(entry)), th)


def _sd(entry: dict[str, Any]) -> float:
    v = entry.get("bias_sd")
    return float(v) if v is not None and np.isfinite(v) else 0.0


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def explain_contrasts(contrasts: Sequence[ContrastInputs], run_findings: Sequence[Finding],
                      thresholds: Thresholds | None = None, sample_mask_dropped: bool = True
                      ) -> dict[str, ContrastExplanation]:
    """Attribute causes to every contrast, rank them and write one paragraph each.

    Parameters
    ----------
    contrasts : sequence of ContrastInputs
    run_findings : sequence of Finding
        Run-level findings (``contrast=None``) of all diagnostics.
    thresholds : Thresholds, optional
    sample_mask_dropped : bool
        The fit drops load_confounds' sample mask (``first_level_from_bids``).
    """
    th = thresholds or Thresholds()
    run_by_code: dict[str, Finding] = {}
    for f in rank_findings(run_findings):
        if f.contrast is None:
            run_by_code.setdefault(f.code, f)
    out: dict[str, ContrastExplanation] = {}
    for ci in contrasts:
        out[ci.name] = _explain_one(ci, contrasts, run_by_code, th, sample_mask_dropped)
    return out


def _explain_one(ci: ContrastInputs, all_ci: Sequence[ContrastInputs], run_by_code: dict[str, Finding],
                 th: Thresholds, mask_dropped: bool) -> ContrastExplanation:
    name = ci.name
    comp = ci.composition
    neg = comp.get("negative", {})
    entries = ci.sensitivity
    own = [f for f in ci.findings if f.contrast == name]
    present: dict[str, Finding] = {}
    for f in rank_findings(own):
        if f.code not in CONSEQUENCES:
            present.setdefault(f.code, f)
    against_baseline = abs(ci.task_sum) > 1e-8

    def fam_entries(fam: str) -> list[dict[str, Any]]:
        return [e for e in entries if _fam(e["source"]) == fam]

    def max_sd(fam: str) -> float:
        return max((abs(_sd(e)) for e in fam_entries(fam)), default=0.0)

    # 1. copy run-level causes where this contrast's numbers support them
    for code in RUN_CAUSES:
        f = run_by_code.get(code)
        if f is None or code in present:
            continue
        ev: dict[str, Any] = {"run_level": f.evidence}
        if code in (codes.NONSTEADY_UNHANDLED.code, codes.SCRUB_NOT_APPLIED.code):
            fam = "nonsteady" if code == codes.NONSTEADY_UNHANDLED.code else "scrub"
            fe = fam_entries(fam)
            if not fe:
                continue
            sd = _sd(fe[0])
            lowering = -sd if fam == "nonsteady" else abs(sd)
            share = float(neg.get("nonsteady", 0.0)) if fam == "nonsteady" else 0.0
            if lowering < th.sensitivity_warn and share < th.unmodeled_weight_warn:
                continue
            sev = "fail" if (lowering >= th.sensitivity_fail or share >= th.unmodeled_weight_fail) else "warn"
            ev.update(negative_weight_share=share, bias_sd=sd)
            if fam == "nonsteady":
                msg = (f"{_pct(share)} of {name}'s baseline (negative) weight is on the {ci.n_nonsteady} "
                       f"flagged non-steady-state volume(s) left in the model; "
                       f"{fe[0]['label']} {'lowers' if sd < 0 else 'raises'} {name} by {abs(sd):.2f} σ.")
            else:
                msg = (f"{fe[0]['label'][0].upper() + fe[0]['label'][1:]} "
                       f"{'lowers' if sd < 0 else 'raises'} {name} by {abs(sd):.2f} σ.")
            present[code] = f.for_contrast(name, message=msg, evidence=ev, score=0.0, severity=sev)
            continue
        elif code in (codes.BASELINE_MODELED_REST.code, codes.BASELINE_SCARCE.code):
            if not against_baseline:
                continue
            ev.update(run_start_bias_sd=max_sd("run_start"))
            msg = (f"{name} is measured against the implicit baseline, which this design leaves scarce"
                   + (" because a rest-like condition is modelled." if code == codes.BASELINE_MODELED_REST.code else "."))
        elif code == codes.RT_REGRESSOR_OVERLAP.code:
            hits = [e for e in fam_entries("rt") if _entry_sev(e, th) in ("warn", "fail")]
            if not hits:
                continue
            e = max(hits, key=lambda x: abs(_sd(x)))
            msg = (f"{e['label'][0].upper() + e['label'][1:]} lowers {name} by {abs(_sd(e)):.2f} σ "
                   f"through the shared RT regressor.")
        else:
            continue  # drift codes come per contrast from the drift diagnostics
        present[code] = f.for_contrast(name, message=msg, evidence=ev, score=0.0)

    # 2. claims: each sensitivity source goes to the most specific cause present
    claimed_by: dict[str, str] = {}
    for e in entries:
        for cause in CLAIMS.get(_fam(e["source"]), ()):
            if cause in present:
                claimed_by[e["source"]] = cause
                break
    updated: dict[str, Finding] = {}
    for code, f in present.items():
        mine = [e for e in entries if claimed_by.get(e["source"]) == code]
        strong = [e for e in mine if _entry_sev(e, th) in ("warn", "fail")]
        score = max((abs(_sd(e)) * float(e.get("typical", 1.0)) for e in strong), default=0.0)
        sev = worst_severity([f.severity] + [_entry_sev(e, th) for e in strong])
        ev = dict(f.evidence)
        if mine:
            ev["sensitivity"] = [{"source": e["source"], "bias_sd": _sd(e), "bias": e.get("bias"),
                                  "typical": e.get("typical"), "severity": _entry_sev(e, th)} for e in mine]
        if code in (codes.BASELINE_SCARCE.code,) and not strong:
            score = 0.5 * max((abs(_sd(e)) * float(e.get("typical", 1.0)) for e in entries
                               if _fam(e["source"]) == "run_start"), default=0.0)
        if not strong and code not in (codes.BASELINE_SCARCE.code,):
            score = max(score, float(f.score))
        updated[code] = replace(f, severity=sev, score=float(score), evidence=ev)

    # 3. consequences follow their cause
    scarce_by = next((c for c in SCARCE_BECAUSE if c in updated), None) if codes.BASELINE_SCARCE.code in updated else None
    heads = [f for c, f in updated.items() if not (c == codes.BASELINE_SCARCE.code and scarce_by)]
    followers: dict[str, list[Finding]] = {}
    if scarce_by:
        f = updated[codes.BASELINE_SCARCE.code]
        followers[scarce_by] = [replace(f, evidence={**f.evidence, "explained_by": scarce_by})]
    for f in own:
        if f.code in CONSEQUENCES:
            cause = None
            if f.code == codes.SENSITIVE_UNMODELED_SIGNAL.code:
                cause = claimed_by.get(f.evidence.get("source", ""))
            elif codes.RT_REGRESSOR_OVERLAP.code in updated:
                cause = codes.RT_REGRESSOR_OVERLAP.code   # the RT-duration regressor shares the condition's variance
            elif against_baseline:
                cause = scarce_by or (codes.BASELINE_SCARCE.code if codes.BASELINE_SCARCE.code in updated else None)
            if cause:
                followers.setdefault(cause, []).append(
                    replace(f, evidence={**f.evidence, "explained_by": cause}))
            else:
                heads.append(f)
    heads = [replace(h, score=float(h.score) + BIAS_TIER)
             if h.code in BIAS_CODES and severity_rank(h.severity) >= severity_rank("warn") else h for h in heads]
    # a head ranks at least as high as what it explains (keeps order under any global re-sort)
    heads = [replace(h, severity=worst_severity([h.severity] + [f.severity for f in followers.get(h.code, [])]),
                     score=max([h.score] + [f.score + 1e-9 for f in followers.get(h.code, [])]))
             if h.code in followers else h for h in heads]
    ranked: list[Finding] = []
    for h in rank_findings(heads):
        ranked.append(h)
        ranked.extend(rank_findings(followers.get(h.code, [])))
    text = _paragraph(ci, all_ci, ranked, th, mask_dropped)
    return ContrastExplanation(contrast=name, findings=tuple(ranked), explanation=text)


def _paragraph(ci: ContrastInputs, all_ci: Sequence[ContrastInputs], ranked: list[Finding],
               th: Thresholds, mask_dropped: bool) -> str:
    name = ci.name
    neg = ci.composition.get("negative", {})
    parts = sorted(((v, k) for k, v in neg.items() if v >= 0.05), reverse=True)[:3]

    def cls_word(k: str) -> str:
        if k.startswith("condition:"):
            return f"{k.split(':', 1)[1]} scans"
        return _CLASS_WORDS.get(k, k)

    comp = ", ".join(f"{_pct(v)} {cls_word(k)}" for v, k in parts)
    if abs(ci.task_sum) > 1e-8:
        s1 = f"{name} compares its condition with an implicit baseline whose negative weight is {comp}." if comp \
            else f"{name} compares its condition with an implicit baseline."
    else:
        s1 = f"{name} is a differential contrast; its negative weight is {comp}." if comp \
            else f"{name} is a differential contrast."
    serious = [f for f in ranked if severity_rank(f.severity) >= severity_rank("warn")]
    if not serious:
        best = max(ci.sensitivity, key=lambda e: abs(_sd(e)), default=None)
        tail = " No design feature of this run explains a sign change."
        if best is not None and abs(_sd(best)) > 0:
            tail += (f" The largest bias among the plausible unmodelled signals is {abs(_sd(best)):.2f} σ "
                     f"({best['label']}"
                     + ("" if best.get("structural", True) else "; generic, present in every run") + ").")
        return s1 + tail
    top = serious[0]
    src = None
    sens = top.evidence.get("sensitivity") or []
    if top.code == codes.SENSITIVE_UNMODELED_SIGNAL.code:
        src = top.evidence.get("source")
    elif sens:
        src = max(sens, key=lambda e: abs(e["bias_sd"]))["source"]
    s2 = f" Most likely explanation: {top.title[0].lower() + top.title[1:]} — {top.message}"
    if top.code == codes.NONSTEADY_UNHANDLED.code:
        s2 += (" fMRIPrep flagged them as non-steady-state, but they stay in the model"
               + (" because first_level_from_bids drops the sample mask." if mask_dropped else "."))
    s3 = ""
    if src:
        entry = next((e for e in ci.sensitivity if e["source"] == src), None)
        if entry is not None:
            direction = "lowers" if entry["bias"] < 0 else "raises"
            others = []
            for o in all_ci:
                if o.name == name:
                    continue
                oe = next((e for e in o.sensitivity if e["source"] == src), None)
                if oe is not None:
                    others.append(f"{o.name} moves by {abs(_sd(oe)):.2f} σ")
            s3 = (f" {entry['label'][0].upper() + entry['label'][1:]} {direction} {name} by "
                  f"{abs(_sd(entry)):.2f} σ" + ("; " + "; ".join(others) if others else "") + ".")
    return s1 + s2 + s3
