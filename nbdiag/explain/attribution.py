"""Ranked, plain-language explanations per contrast (the sign-flip engine).

Inputs are the numbers the diagnostics already produced: each contrast's
weights, baseline composition and sensitivity entries, and the run's findings.

Attribution rules
-----------------
* **Every cause carries its bias to every contrast it touches.** Each
  sensitivity source is *claimed* by the most specific cause present for the
  contrast (``CLAIMS``: ``nonsteady`` -> ``nonsteady_unhandled``, ``confound:*``
  -> ``confound_task_correlated``, ``tr:*`` -> ``tr_mismatch``, ``slow_drift``
  -> ``drift_overlap``, ...). A run-level cause (``RUN_CAUSES``) is copied to
  every contrast on which one of its claimed sources has a nonzero bias, with
  that contrast's own ``bias_percent``, ``bias_sd``, ``magnitude_source`` and
  ``sd_source`` in its evidence and message. ``baseline_modeled_rest`` /
  ``baseline_scarce`` are copied to contrasts measured against the implicit
  baseline (task weights that do not sum to 0).
* **Graded, not cliffs.** A finding that claims to explain a contrast is
  ``warn`` only when a claimed source whose structural cause is present
  (``entry["structural"]``) moves the contrast by at least
  ``sensitivity_warn`` σ, ``fail`` at ``sensitivity_fail`` σ (for
  ``baseline_unmodeled_events`` a share of at least ``unmodeled_weight_fail``
  also gives ``fail`` once the bias reaches the warn size). Otherwise it is
  ``info`` context under the contrast, with its margin ("31 % vs 30 %") and
  its largest predicted bias. Pure precision properties
  (``contrast_variance_inflated``, ``drift_overlap`` without a drift bias,
  ``baseline_edge_concentrated`` without a settling bias) never claim a cause
  by themselves.
* **Both directions.** A bias that inflates a contrast counts as much as one
  that lowers it; the message says which ("inflates two_back - zero_back by
  1.2 σ").
* A cause's score is the largest ``|bias_sd| × typical`` over its claimed
  entries. Warn/fail heads get ``BIAS_TIER`` added, so they rank before
  ``info`` context. ``baseline_scarce`` follows ``baseline_modeled_rest``
  (else ``baseline_edge_concentrated``) when present; a claimed
  ``sensitive_unmodeled_signal`` or a ``contrast_variance_inflated`` follows
  the cause that explains it (its severity capped at the head's). Groups are
  ranked by the head's severity, then score, so the first finding is the most
  likely explanation.
* **Say when the design does not explain it.** When no cause reaches the warn
  size, the paragraph says so in one sentence with the largest predicted bias
  and its number, and, when a measured global-signal estimate of the contrast
  is given (``ContrastInputs.measured_global``), whether the run's overall
  signal has the same sign.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

import numpy as np

from nbdiag.core.findings import Finding, rank_findings, severity_rank, worst_severity
from nbdiag.core.thresholds import DISTINCT_T, Thresholds
from nbdiag.core import codes
from nbdiag.core.labels import CAUSE_CLASSES, SCAN_CLASS_TABLE, class_the

#: Which cause claims which sensitivity source family, in priority order.
CLAIMS: dict[str, tuple[str, ...]] = {
    "nonsteady": (codes.NONSTEADY_UNHANDLED.code,),
    "transient": (codes.TRANSIENT_UNFLAGGED.code,),
    "unmodeled": (codes.BASELINE_UNMODELED_EVENTS.code,),
    "short_gaps": (codes.BASELINE_SHORT_GAPS.code, codes.BASELINE_MODELED_REST.code),
    "pre_block": (codes.BASELINE_SHORT_GAPS.code, codes.BASELINE_MODELED_REST.code),
    "scrub": (codes.SCRUB_NOT_APPLIED.code,),
    "run_start": (codes.BASELINE_MODELED_REST.code, codes.BASELINE_EDGE_CONCENTRATED.code, codes.BASELINE_SCARCE.code),
    "slow_drift": (codes.DRIFT_OVERLAP.code, codes.BASELINE_MODELED_REST.code, codes.BASELINE_SCARCE.code, codes.HIGHPASS_CUTS_DESIGN.code),
    "hrf_derivative": (codes.BASELINE_MODELED_REST.code, codes.BASELINE_SCARCE.code),
    "hrf_dispersion": (codes.BASELINE_MODELED_REST.code, codes.BASELINE_SCARCE.code),
    "rt": (codes.RT_REGRESSOR_OVERLAP.code,),
    "confound": (codes.CONFOUND_TASK_CORRELATED.code,),
    "tr": (codes.TR_MISMATCH.code,),
}

#: Run-level codes that are copied to the contrasts they bias.
RUN_CAUSES = (codes.NONSTEADY_UNHANDLED.code, codes.TRANSIENT_UNFLAGGED.code, codes.SCRUB_NOT_APPLIED.code, codes.BASELINE_MODELED_REST.code, codes.BASELINE_SCARCE.code,
              codes.RT_REGRESSOR_OVERLAP.code, codes.CONFOUND_TASK_CORRELATED.code, codes.TR_MISMATCH.code)

#: Codes of causes that bias an estimate (the rest only cost precision).
BIAS_CODES = (codes.NONSTEADY_UNHANDLED.code, codes.TRANSIENT_UNFLAGGED.code, codes.SCRUB_NOT_APPLIED.code, codes.BASELINE_UNMODELED_EVENTS.code, codes.BASELINE_SHORT_GAPS.code,
              codes.BASELINE_EDGE_CONCENTRATED.code, codes.BASELINE_MODELED_REST.code, codes.BASELINE_SCARCE.code, codes.RT_REGRESSOR_OVERLAP.code,
              codes.SENSITIVE_UNMODELED_SIGNAL.code, codes.CONFOUND_TASK_CORRELATED.code, codes.TR_MISMATCH.code, codes.DRIFT_OVERLAP.code)
#: More specific baseline causes that ``baseline_scarce`` follows (first present wins).
SCARCE_BECAUSE = (codes.BASELINE_MODELED_REST.code, codes.BASELINE_EDGE_CONCENTRATED.code)

#: Score offset of a warn/fail bias cause (see the module doc).
BIAS_TIER = 100.0
#: Further offset of a warn/fail cause whose size is measured: an assumed size never outranks it.
MEASURED_TIER = 1000.0

#: Consequences that follow the cause explaining them.
CONSEQUENCES = (codes.SENSITIVE_UNMODELED_SIGNAL.code, codes.CONTRAST_VARIANCE_INFLATED.code)

_CLASS_WORDS = {c.key: c.noun for c in SCAN_CLASS_TABLE}


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
    measured_global: float | None = None
    #: the measured global signal of this contrast (``contrasts.<c>.measured.global_signal``), when measured
    measured_gs: Mapping[str, Any] | None = None


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


def _cap(v: str) -> str:
    return v[:1].upper() + v[1:]


_GIVES = re.compile(r"\(([≥>]) ?([^()]*?) gives (?:info|warn|fail)\)")


def _neutral_threshold(message: str) -> str:
    """"(≥ 0.5 gives fail)" -> "(threshold ≥ 0.5)": the contrast's severity is set by its predicted bias."""
    return _GIVES.sub(lambda m: f"(threshold {m.group(1)} {m.group(2)})", message)


def _rank_sd(entry: Mapping[str, Any]) -> float:
    """The σ that ranks an entry: the measured one when the size is measured, else |bias_sd|."""
    v = entry.get("rank_sd")
    return float(v) if v is not None and np.isfinite(v) else abs(_sd(entry))


#: Who claims a settling footprint the run's own signal shows (:func:`_measured_settling`): the run-edge
#: finding only; otherwise it is its own finding, "settling at the run start".
SETTLING_CLAIMS = (codes.BASELINE_EDGE_CONCENTRATED.code,)


def _measured_settling(entry: Mapping[str, Any]) -> bool:
    """A ``run_start`` entry whose fitted footprint in the global signal is distinguishable from zero."""
    t = entry.get("measured_t")
    return (entry.get("severity_basis") == "measured_part" and t is not None and np.isfinite(t)
            and abs(float(t)) >= DISTINCT_T)


def _measured_basis(entry: Mapping[str, Any] | None) -> bool:
    return entry is not None and entry.get("severity_basis") in ("measured", "measured_part")


def bias_sentence(entry: Mapping[str, Any], name: str) -> str:
    """"<Label> lowers|inflates <name> by x σ (+y %; size ..., σ ...)." for one sensitivity entry.

    A size measured as a part of the global signal is said as such; an assumed size is worded as a
    hypothesis ("If the data held …, it would …")."""
    sd = _sd(entry)
    pct = entry.get("bias_percent", entry.get("bias"))
    size = entry.get("magnitude_source") or "assumed"
    sd_src = entry.get("sd_source") or "assumed: 1 % white noise per scan"
    word = "lowers" if (pct or 0.0) < 0 else "inflates"
    pct_txt = f"{float(pct):+.3g} %" if pct is not None else "n/a"
    label = str(entry.get("label", entry.get("source", "a signal")))
    if entry.get("severity_basis") == "measured_part":
        mb, mt, msd = entry.get("measured_bias_percent"), entry.get("measured_t"), entry.get("measured_bias_sd")
        tt = f"t = {float(mt):.1f}" if mt is not None and np.isfinite(mt) else "t n/a"
        return (f"Measured in this run: {entry.get('measured_what', 'its part of the global signal')} moves {name} by "
                f"{float(mb or 0):+.3g} % ({tt}; {abs(float(msd or 0)):.2f} σ, σ = residual of global_signal); "
                f"an assumed size ({label}) would {word[:-1]} it by {abs(sd):.2f} σ.")
    if entry.get("hypothesis"):
        return (f"If the data held {label}, it would {word[:-1]} {name} by {abs(sd):.2f} σ ({pct_txt}; size "
                f"assumed, not measured; σ {sd_src}).")
    return (f"{_cap(str(entry.get('label', entry.get('source', 'a signal'))))} {word} {name} by {abs(sd):.2f} σ "
            f"({pct_txt}; size {size}; σ {sd_src}).")


def _entry_evidence(e: Mapping[str, Any], th: Thresholds) -> dict[str, Any]:
    return {"source": e["source"], "bias_sd": _sd(e), "bias": e.get("bias"),
            "bias_percent": e.get("bias_percent", e.get("bias")), "magnitude_source": e.get("magnitude_source"),
            "sd_source": e.get("sd_source"), "typical": e.get("typical"), "structural": e.get("structural"),
            "severity": _entry_sev(e, th)}


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


#: Per-contrast findings that describe a property of the design (not a bias by themselves),
#: with the margin words shown when they are only context.
_MARGINS = {
    codes.BASELINE_EDGE_CONCENTRATED.code: lambda f: (f"{100 * float(f.evidence.get('edge_share', 0)):.0f} % vs "
                                             f"{100 * float(f.evidence.get('warn_at', 0)):.0f} %"),
    codes.DRIFT_OVERLAP.code: lambda f: f"R² {float(f.evidence.get('r2', 0)):.3f} vs {float(f.evidence.get('threshold', 0)):g}",
    codes.BASELINE_SHORT_GAPS.code: lambda f: (f"{100 * float(f.evidence.get('negative_weight_share', 0)):.0f} % vs "
                                      f"{100 * float(f.evidence.get('warn_at', 0)):.0f} %"),
    codes.BASELINE_UNMODELED_EVENTS.code: lambda f: (f"{100 * float(f.evidence.get('negative_weight_share', 0)):.0f} % of "
                                            f"the negative weight"),
}


def _explain_one(ci: ContrastInputs, all_ci: Sequence[ContrastInputs], run_by_code: dict[str, Finding],
                 th: Thresholds, mask_dropped: bool) -> ContrastExplanation:
    """Attribute the run's and the contrast's causes to ``ci``, rank them (heads, then what each
    explains) and write the paragraph; the steps are the helpers below, in order."""
    own = [f for f in ci.findings if f.contrast == ci.name]
    against_baseline = abs(ci.task_sum) > 1e-8
    present, copied_codes = _present_causes(ci, own, run_by_code, against_baseline)
    _add_below_share_causes(ci, present, th)
    claimed_by, tiled = _claims(ci.sensitivity, present, run_by_code, against_baseline)
    updated = _graded_causes(ci, present, claimed_by, copied_codes, th)
    heads, followers = _heads_and_followers(ci, own, updated, claimed_by, tiled, against_baseline, th)
    ranked = _rank_heads(heads, followers)
    text = _paragraph(ci, all_ci, ranked, th, mask_dropped)
    return ContrastExplanation(contrast=ci.name, findings=tuple(ranked), explanation=text)


def _present_causes(ci: ContrastInputs, own: Sequence[Finding], run_by_code: Mapping[str, Finding],
                    against_baseline: bool) -> tuple[dict[str, Finding], set[str]]:
    """The causes present for the contrast: its own findings (consequences aside, the highest-ranked
    per code) and the run-level causes (``RUN_CAUSES``) copied to it; the codes copied."""
    present: dict[str, Finding] = {}
    for f in rank_findings(own):
        if f.code not in CONSEQUENCES:
            present.setdefault(f.code, f)
    copied_codes: set[str] = set()
    for code in RUN_CAUSES:
        f = run_by_code.get(code)
        if f is None or code in present:
            continue
        if code in (codes.BASELINE_MODELED_REST.code, codes.BASELINE_SCARCE.code) and not against_baseline:
            continue
        present[code] = f.for_contrast(ci.name, evidence={"run_level": f.evidence}, score=0.0)
        copied_codes.add(code)
    return present, copied_codes


def _add_below_share_causes(ci: ContrastInputs, present: dict[str, Finding], th: Thresholds) -> None:
    """No cliffs: a baseline cause whose share of negative weight is below its threshold still explains
    the contrast when its signal moves it by the warn size (the share is shown with its threshold).
    Adds those causes to ``present``."""
    name = ci.name
    neg = ci.composition.get("negative", {})
    for fam, code, share_key, warn_key in (("unmodeled", codes.BASELINE_UNMODELED_EVENTS, "unmodeled_event",
                                            "unmodeled_weight_warn"),
                                           ("short_gaps", codes.BASELINE_SHORT_GAPS, "short_gap", "short_gaps_weight_warn"),
                                           ("pre_block", codes.BASELINE_SHORT_GAPS, "short_gap", "short_gaps_weight_warn")):
        if code.code in present:
            continue
        hits = [e for e in ci.sensitivity if _fam(e["source"]) == fam and e.get("structural", True)
                and abs(_sd(e)) >= th.sensitivity_warn]
        if not hits:
            continue
        share, limit = float(neg.get(share_key, 0.0)), float(getattr(th, warn_key))
        what = (f"unmodelled events ({', '.join(ci.unmodeled_types)})" if fam == "unmodeled" and ci.unmodeled_types
                else "unmodelled events" if fam == "unmodeled" else "short unmodelled gaps next to blocks")
        present[code.code] = code.finding(
            contrast=name, severity="warn", score=0.0,
            message=(f"{100 * share:.1f} % of {name}'s negative weight falls in {what}, below the {_pct(limit)} "
                     f"share threshold, but a response there of the assumed size would move {name} by at least the "
                     f"warn size ({th.sensitivity_warn:g} σ)."),
            evidence={"negative_weight_share": share, "warn_at": limit, "rule": "bias at the warn size below the "
                      "share threshold"})


#: The baseline causes that claim the slow and shape signals first when no implicit baseline is left.
_BASE_FIRST = (codes.BASELINE_MODELED_REST.code, codes.BASELINE_SCARCE.code)


def _claims(entries: Sequence[Mapping[str, Any]], present: Mapping[str, Finding], run_by_code: Mapping[str, Finding],
            against_baseline: bool) -> tuple[dict[str, str], bool]:
    """``({source: claiming cause}, tiled)``: each sensitivity source goes to the most specific cause
    present; when no implicit baseline is left (``tiled``), the baseline causes claim the slow and shape
    signals first (they are why those signals decide the contrast; edge concentration and drift
    overlap follow from it)."""
    scarce_run = run_by_code.get(codes.BASELINE_SCARCE.code)
    rest_run = run_by_code.get(codes.BASELINE_MODELED_REST.code)
    tiled = against_baseline and (
        (scarce_run is not None and scarce_run.evidence.get("rule") == "conditions_cover_the_run")
        or (rest_run is not None and bool(rest_run.evidence.get("no_baseline_left"))))
    claimed_by: dict[str, str] = {}
    for e in entries:
        order = CLAIMS.get(_fam(e["source"]), ())
        if tiled and _fam(e["source"]) in ("run_start", "slow_drift", "hrf_derivative", "hrf_dispersion"):
            order = _BASE_FIRST + tuple(c for c in order if c not in _BASE_FIRST)
        elif _fam(e["source"]) == "run_start" and _measured_settling(e):
            order = SETTLING_CLAIMS   # settling the signal shows is its own cause, not the baseline's scarcity
        for cause in order:
            if cause in present:
                claimed_by[e["source"]] = cause
                break
    return claimed_by, tiled


def _graded_causes(ci: ContrastInputs, present: Mapping[str, Finding], claimed_by: Mapping[str, str],
                   copied_codes: set[str], th: Thresholds) -> dict[str, Finding]:
    """Each present cause graded by the biases of the sources it claims (severity, score, evidence and
    the contrast's own message); a copied run-level cause that does not touch the contrast is dropped."""
    name = ci.name
    neg = ci.composition.get("negative", {})
    entries = ci.sensitivity
    updated: dict[str, Finding] = {}
    for code, f in present.items():
        mine = [e for e in entries if claimed_by.get(e["source"]) == code]
        copied = code in copied_codes
        if copied and code not in (codes.BASELINE_MODELED_REST.code, codes.BASELINE_SCARCE.code) and \
                not any(abs(_sd(e)) > 0 for e in mine):
            continue  # the run-level cause does not touch this contrast
        strong = [e for e in mine if e.get("structural", True) and _entry_sev(e, th) in ("warn", "fail")]
        specific = [e for e in mine if e.get("structural", True)]
        top = max(specific, key=lambda e: (severity_rank(_entry_sev(e, th)), _measured_basis(e),
                                           _rank_sd(e)), default=None)
        generic_top = max((e for e in mine if not e.get("structural", True)), key=lambda e: abs(_sd(e)), default=None)
        score = max((_rank_sd(e) * float(e.get("typical", 1.0)) for e in specific), default=0.0)
        bias_sev = worst_severity(_entry_sev(e, th) for e in strong)
        if strong and any(_measured_basis(e) for e in strong):
            score += MEASURED_TIER
        ev = dict(f.evidence)
        if mine:
            ev["sensitivity"] = [_entry_evidence(e, th) for e in mine]
        if top is not None:
            ev.update(bias_percent=top.get("bias_percent", top.get("bias")), bias_sd=_sd(top),
                      magnitude_source=top.get("magnitude_source"), sd_source=top.get("sd_source"),
                      source=top["source"])
        if bias_sev is None:
            sev = "info"
        elif code == codes.BASELINE_UNMODELED_EVENTS.code:
            sev = worst_severity([bias_sev, f.severity])
        else:
            sev = bias_sev
        msg = _message(code, replace(f, message=_neutral_threshold(f.message)), ci, top, strong, sev, th, copied, neg,
                       generic_top)
        if copied and code in _COPY_TITLES:
            f = replace(f, title=_COPY_TITLES[code].format(name=name))
        if code == codes.CONTRAST_VARIANCE_INFLATED.code:
            sev = "info"
        updated[code] = replace(f, severity=sev, score=float(score), evidence=ev, message=msg)
    return updated


def _heads_and_followers(ci: ContrastInputs, own: Sequence[Finding], updated: Mapping[str, Finding],
                         claimed_by: Mapping[str, str], tiled: bool, against_baseline: bool, th: Thresholds
                         ) -> tuple[list[Finding], dict[str, list[Finding]]]:
    """Consequences follow their cause: ``(heads, {cause: followers})``. ``baseline_scarce`` follows the
    more specific baseline cause, edge concentration follows a tiled baseline, and each consequence
    (``CONSEQUENCES``) follows the cause that explains it, or stands as a head of its own."""
    scarce_by = next((c for c in SCARCE_BECAUSE if c in updated), None) if codes.BASELINE_SCARCE.code in updated else None
    if tiled and scarce_by == codes.BASELINE_EDGE_CONCENTRATED.code:
        scarce_by = None   # no baseline left: the scarcity is the cause, the edge concentration follows from it
    followers: dict[str, list[Finding]] = {}
    tied_edge = None
    if tiled and codes.BASELINE_EDGE_CONCENTRATED.code in updated:
        tied_edge = next((c for c in _BASE_FIRST if c in updated), None)
    heads = [f for c, f in updated.items() if not (c == codes.BASELINE_SCARCE.code and scarce_by)
             and not (c == codes.BASELINE_EDGE_CONCENTRATED.code and tied_edge)]
    if tied_edge:
        f = updated[codes.BASELINE_EDGE_CONCENTRATED.code]
        followers[tied_edge] = [replace(f, evidence={**f.evidence, "explained_by": tied_edge})]
    if scarce_by:
        f = updated[codes.BASELINE_SCARCE.code]
        followers.setdefault(scarce_by, []).append(replace(f, evidence={**f.evidence, "explained_by": scarce_by}))
    for f in own:
        if f.code not in CONSEQUENCES:
            continue
        cause = None
        if f.code == codes.SENSITIVE_UNMODELED_SIGNAL.code:
            cause = claimed_by.get(f.evidence.get("source", ""))
            if cause is not None and cause not in updated:
                cause = None
        elif codes.RT_REGRESSOR_OVERLAP.code in updated:
            cause = codes.RT_REGRESSOR_OVERLAP.code   # the RT-duration regressor shares the condition's variance
        elif against_baseline:
            cause = scarce_by or (codes.BASELINE_SCARCE.code if codes.BASELINE_SCARCE.code in updated else None)
        if f.code == codes.CONTRAST_VARIANCE_INFLATED.code:
            f = _variance_consequence(f, ci.name, th)
        if cause and f.code == codes.SENSITIVE_UNMODELED_SIGNAL.code:
            continue   # one cause, one finding: the cause carries the same number (evidence.sensitivity)
        if cause:
            followers.setdefault(cause, []).append(
                replace(f, evidence={**f.evidence, "explained_by": cause}))
        else:
            heads.append(f)
    return heads, followers


def _variance_consequence(f: Finding, name: str, th: Thresholds) -> Finding:
    """``contrast_variance_inflated`` graded as a consequence: a variance cause (warn, worded for what it
    does, issue 20) at a contrast VIF of ``cvif_fail`` or more, otherwise info (a loss of precision)."""
    cvif = f.evidence.get("cvif")
    big = cvif is None or (isinstance(cvif, (int, float)) and cvif >= th.cvif_fail)
    if big:   # a variance cause: warn, worded for what it does (issue 20)
        ctext = "infinite" if cvif is None or not np.isfinite(cvif) else f"{cvif:.1f}"
        return replace(f, severity="warn", score=0.0, evidence={**f.evidence, "own_severity": f.severity,
                                                                "rule": "variance cause"},
                       message=_neutral_threshold(f.message) + f" The sign of {name}'s estimate is unreliable: "
                               f"its standard error is {np.sqrt(cvif) if ctext != 'infinite' else float('inf'):.1f}"
                               f"× what a design with a real implicit baseline would give (contrast VIF "
                               f"{ctext} ≥ {th.cvif_fail:g}), so noise alone can flip it.")
    return replace(f, severity="info", score=0.0, evidence={**f.evidence, "own_severity": f.severity},
                   message=_neutral_threshold(f.message) + " (a loss of precision: it widens the estimate's "
                                                           "spread but does not move it)")


def _rank_heads(heads: Sequence[Finding], followers: Mapping[str, list[Finding]]) -> list[Finding]:
    """Heads ranked (warn/fail bias causes get ``BIAS_TIER``; a head ranks at least as high as what it
    explains, which keeps the order under any global re-sort), each followed by its followers."""
    heads = [replace(h, score=float(h.score) + BIAS_TIER)
             if h.code in BIAS_CODES and severity_rank(h.severity) >= severity_rank("warn") else h for h in heads]
    heads = [replace(h, severity=worst_severity([h.severity] + [f.severity for f in followers.get(h.code, [])]),
                     score=max([h.score] + [f.score + 1e-9 for f in followers.get(h.code, [])]))
             if h.code in followers else h for h in heads]
    ranked: list[Finding] = []
    for h in rank_findings(heads):
        ranked.append(h)
        ranked.extend(rank_findings(followers.get(h.code, [])))
    return ranked


#: Titles of per-contrast copies whose run-level title names something else (a regressor, a file).
_COPY_TITLES = {
    codes.CONFOUND_TASK_CORRELATED.code: "Regressing out task-locked confounds moves {name}",
    codes.TR_MISMATCH.code: "The repetition time may be wrong for {name}",
}


def _message(code: str, f: Finding, ci: ContrastInputs, top: Mapping[str, Any] | None,
             strong: list, sev: str, th: Thresholds, copied: bool, neg: Mapping[str, Any],
             generic_top: Mapping[str, Any] | None = None) -> str:
    """The contrast's own message for a cause: what it is, its predicted bias, and whether that is material."""
    name = ci.name
    bias = bias_sentence(top, name) if top is not None else ""
    if code == codes.NONSTEADY_UNHANDLED.code:
        share = float(neg.get("nonsteady", 0.0))
        head = (f"{_pct(share)} of {name}'s baseline (negative) weight is on the {ci.n_nonsteady} flagged "
                f"non-steady-state volume(s) left in the model; " if share >= 0.005 else
                f"the {ci.n_nonsteady} flagged non-steady-state volume(s) stay in the model; ")
        text = head + (bias[:1].lower() + bias[1:] if bias else "")
    elif code in (codes.BASELINE_MODELED_REST.code, codes.BASELINE_SCARCE.code) and copied:
        rl = f.evidence.get("run_level", {})
        if rl.get("rule") == "conditions_cover_the_run" or rl.get("no_baseline_left"):
            what = (f"the modelled conditions cover {1 - float(rl.get('fraction', 0)):.0%} of the scans, so no "
                    f"implicit baseline is left for {name}: it is barely estimable and decided by the few "
                    f"leftover scans and by slow signal")
        elif code == codes.BASELINE_MODELED_REST.code:
            what = f"{name} is measured against the implicit baseline, which this design leaves scarce because a " \
                   f"rest-like condition is modelled ({'; '.join(f'{k}: {v}' for k, v in rl.get('rule', {}).items())})"
        else:
            what = f"{name} is measured against the implicit baseline, which this design leaves scarce"
        text = f"{what if what.startswith(name) else _cap(what)}. " + bias
    elif copied:
        text = bias
    else:
        text = f.message + (" " + bias if bias else "")
    if sev == "info" and code not in (codes.CONTRAST_VARIANCE_INFLATED.code,):
        margin = _MARGINS.get(code)
        mtxt = f" ({margin(f)})" if margin is not None and not copied else ""
        if top is not None:
            text += (f" Context, not a cause{mtxt}: its largest predicted bias on {name} is {abs(_sd(top)):.2f} σ, "
                     f"below the warn size of {th.sensitivity_warn:g} σ.")
        else:
            text += f" Context, not a cause{mtxt}: it predicts no bias specific to this design on {name}"
            if generic_top is not None and abs(_sd(generic_top)) > 0:
                text += (f" (signals present in every run, e.g. {generic_top['label']}, move it by "
                         f"{abs(_sd(generic_top)):.2f} σ whatever the design)")
            text += "."
    text = " ".join(text.split())
    return text if text.startswith(name) else _cap(text)


_MEASURED_WORDS = {k: class_the(k) for k in CAUSE_CLASSES}


def _measured(gs: Mapping[str, Any] | None) -> bool:
    return bool(gs) and not gs.get("in_model") and gs.get("estimate_ols") is not None and bool(gs.get("by_class"))


def distinct_causes(gs: Mapping[str, Any] | None, distinct_t: float = DISTINCT_T,
                    material_sd: float = 0.5, exclude: Sequence[str] = ()) -> list[tuple[str, float]]:
    """``(class, part %)`` of the measured cause parts distinguishable from zero (``|t| >= distinct_t``)
    and material (at least ``material_sd`` times the estimate's own SE), largest first; classes in
    ``exclude`` are left out (:func:`uncorroborated`)."""
    if gs is None or not _measured(gs):
        return []
    gs = {**gs, "by_class": {k: v for k, v in gs["by_class"].items() if k not in set(exclude)}}
    kinds, ts = gs.get("by_class_kind") or {}, gs.get("by_class_t") or {}
    se_total = gs.get("se")
    floor = material_sd * float(se_total) if se_total is not None and np.isfinite(se_total) else 0.0
    return sorted(((k, float(v)) for k, v in gs["by_class"].items() if kinds.get(k) == "cause"
                   and ts.get(k) is not None and np.isfinite(ts[k]) and abs(float(ts[k])) >= distinct_t
                   and abs(float(v)) >= floor),
                  key=lambda kv: -abs(kv[1]))


def uncorroborated(sensitivity: Sequence[Mapping[str, Any]], distinct_t: float = DISTINCT_T) -> tuple[str, ...]:
    """Cause classes whose part alone does not make them a cause: ``run_edge`` unless the fitted run-start
    settling footprint is distinguishable from zero too. The run edges are where a slowly wandering signal
    departs most from the baseline level, so their part is distinct in clean runs with a random-walk
    drift (verdict battery: clean studies named a run-edge cause); settling shows as the fitted shape."""
    for e in sensitivity:
        if e.get("source") == "run_start":
            t = e.get("measured_t")
            if t is not None and np.isfinite(t) and abs(float(t)) >= distinct_t:
                return ()
    return ("run_edge",)


def measured_answer(name: str, gs: Mapping[str, Any] | None, distinct_t: float = DISTINCT_T,
                    material_sd: float = 0.5, exclude: Sequence[str] = ()) -> str:
    """The answer from the measured global signal: the cause parts of :func:`distinct_causes`,
    largest first, with size, t and — when the estimate itself is distinguishable from zero —
    share; otherwise that nothing in the design explains it. Empty when nothing was measured."""
    if not _measured(gs):
        return ""
    total = float(gs["estimate_ols"])
    tt = gs.get("t")
    total_ok = tt is not None and np.isfinite(tt) and abs(float(tt)) >= distinct_t
    ts, ses = gs.get("by_class_t") or {}, gs.get("by_class_se") or {}
    causes = distinct_causes(gs, distinct_t, material_sd, exclude)
    head = (f"Measured in this run's global signal (OLS, % signal; SE from its residual noise), {name} is "
            f"{total:+.3g} %" + (f" (t = {float(tt):.1f})" if tt is not None and np.isfinite(tt) else ""))
    if causes:
        said = []
        for k, v in causes:
            share = f", {100 * v / total:.0f} % of it" if total_ok and total else ""
            se = ses.get(k)
            se_txt = f"SE {float(se):.2g} %, " if se is not None else ""
            said.append(f"{_MEASURED_WORDS.get(k, k)} contribute {v:+.3g} % ({se_txt}t = {float(ts[k]):.1f}{share})")
        return head + "; " + "; ".join(said) + "."
    if total_ok:
        return head + ("; nothing in the design explains it (no transient, unmodelled-event, gap, high-motion or "
                       "run-edge part is distinguishable from zero): it comes from the conditions themselves.")
    return head + "; it is not distinguishable from zero, and no cause in the design moves it."


def _paragraph(ci: ContrastInputs, all_ci: Sequence[ContrastInputs], ranked: list[Finding],
               th: Thresholds, mask_dropped: bool) -> str:
    """The contrast's paragraph: what it compares, then its most likely explanation (or that no cause
    reaches the warn size), and the measured global-signal answer when there is one."""
    s1 = _composition_sentence(ci)
    serious = [f for f in ranked if severity_rank(f.severity) >= severity_rank("warn")]
    if not serious:
        return s1 + _no_cause_text(ci, th)
    name = ci.name
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
    s3 = _comparison_sentence(ci, all_ci, src) if src else ""
    answer = measured_answer(name, ci.measured_gs, material_sd=th.sensitivity_warn,
                             exclude=uncorroborated(ci.sensitivity))
    return s1 + s2 + s3 + (" " + answer if answer else "")


def _class_word(k: str) -> str:
    """The words for a scan class (``condition:<name>`` -> ``<name> scans``)."""
    if k.startswith("condition:"):
        return f"{k.split(':', 1)[1]} scans"
    return _CLASS_WORDS.get(k, k)


def _composition_sentence(ci: ContrastInputs) -> str:
    """What the contrast compares, with the (up to three) largest parts of its negative weight."""
    name = ci.name
    neg = ci.composition.get("negative", {})
    parts = sorted(((v, k) for k, v in neg.items() if v >= 0.05), reverse=True)[:3]
    comp = ", ".join(f"{_pct(v)} {_class_word(k)}" for v, k in parts)
    if abs(ci.task_sum) > 1e-8:
        return f"{name} compares its condition with an implicit baseline whose negative weight is {comp}." if comp \
            else f"{name} compares its condition with an implicit baseline."
    return f"{name} is a differential contrast; its negative weight is {comp}." if comp \
        else f"{name} is a differential contrast."


def _bias_said(e: Mapping[str, Any]) -> str:
    """An entry's bias in words: σ, % signal, direction and what its σ is."""
    pct = float(e.get("bias_percent", e.get("bias")) or 0.0)
    sd, src = e.get("sd_percent"), str(e.get("sd_source") or "assumed")
    noise = "" if sd is None else (f"; σ = {float(sd):.2g} %, the contrast's SD under "
                                   + ("an assumed 1 % voxel noise per scan" if src.startswith("assumed")
                                      else f"the measured residual noise ({src})"))
    return f"{abs(_sd(e)):.2f} σ ({pct:+.3g} %, {'lowering' if pct < 0 else 'inflating'} it{noise})"


def _no_cause_text(ci: ContrastInputs, th: Thresholds) -> str:
    """The rest of the paragraph when no cause reaches the warn size: the largest predicted biases
    (measured or hypothetical, design-specific or generic) and the measured global-signal answer."""
    name = ci.name
    own = [e for e in ci.sensitivity if e.get("structural", True)]
    generic = [e for e in ci.sensitivity if not e.get("structural", True)]
    best = max(own, key=lambda e: abs(_sd(e)), default=None)
    gbest = max(generic, key=lambda e: abs(_sd(e)), default=None)
    skip = uncorroborated(ci.sensitivity)
    answer = measured_answer(name, ci.measured_gs, material_sd=th.sensitivity_warn, exclude=skip)
    if distinct_causes(ci.measured_gs, material_sd=th.sensitivity_warn, exclude=skip):  # named, graded by no check
        tail = (f" No check of this design grades a cause of {name} at the warn size ({th.sensitivity_warn:g} σ), "
                f"but the run's measured global signal holds a cause part distinguishable from zero (last "
                f"sentence): its assumed shape is not borne out, so it is reported, not graded; look at those "
                f"scans before trusting the estimate.")
    else:
        tail = f" No measured cause in this design moves {name} by the warn size ({th.sensitivity_warn:g} σ)."
    if best is not None and abs(_sd(best)) > 0:
        tail += (f" The largest measured bias from this run's own features is {_bias_said(best)}, from {best['label']}."
                 if str(best.get("magnitude_source") or "assumed").startswith("measured") else
                 f" Hypothesis, not measured: if the data held {best['label']}, it would move {name} by "
                 f"{_bias_said(best)}.")
    if gbest is not None and abs(_sd(gbest)) > 0:
        tail += (f" If the data held signals present in every run, not specific to this design (largest: "
                 f"{gbest['label']}), they would move it by {_bias_said(gbest)}.")
    if answer:
        return tail + " " + answer
    g = ci.measured_global
    if g is not None and np.isfinite(g):
        tail += (f" The run's global signal gives {name} an estimate of {g:+.3g} % (measured): "
                 + ("negative, so a negative estimate here is shared by the brain-wide signal rather than "
                    "produced by the design." if g < 0 else
                    "positive, so a negative estimate here is not shared by the brain-wide signal."))
    return tail


def _comparison_sentence(ci: ContrastInputs, all_ci: Sequence[ContrastInputs], src: str) -> str:
    """How the top cause's source moves the run's other contrasts ("For comparison, ..."), or ``""``."""
    entry = next((e for e in ci.sensitivity if e["source"] == src), None)
    if entry is None:
        return ""
    others = []
    for o in all_ci:
        if o.name == ci.name:
            continue
        oe = next((e for e in o.sensitivity if e["source"] == src), None)
        if oe is not None:
            word = "lowers" if _sd(oe) < 0 else "inflates"
            others.append(f"it {word} {o.name} by {abs(_sd(oe)):.2f} σ")
    return " For comparison, " + "; ".join(others) + "." if others else ""
