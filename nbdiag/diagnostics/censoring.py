"""Censoring per condition: which conditions lose their scans to a sample mask (AFNI's review numbers).

AFNI's single-subject review (``gen_ss_review_scripts.py``: "num TRs per stim",
"num TRs censored per stim", "fraction TRs censored per stim", "degrees of freedom
left") counts, for every stimulus class, the scans where the class's response is
"in" and how many of them the censor file removes. nbdiag gives the same numbers
for a nilearn run, for two masks:

``applied``
    The sample mask the fit actually applies (``sample_masks`` passed to
    ``FirstLevelModel.fit`` through :func:`nbdiag.audit_models`, or
    ``apply_sample_masks = true``); ``null`` when the fit keeps every scan.
``load_confounds``
    What ``load_confounds``' sample mask would remove: the volumes fMRIPrep
    flags as non-steady-state (always) plus, with ``scrub`` in the strategy,
    the high-motion volumes and their neighbours. ``first_level_from_bids``
    drops this mask, so these scans are *not* removed unless the mask is applied.
    ``null`` when that mask removes no volume (or no confounds file was read).

Definitions
-----------
Scan "in" a condition
    AFNI counts a TR for a class when the class's regressor in the uncensored
    matrix (``X.nocensor.xmat.1D``) is > 0. AFNI's response functions (BLOCK,
    GAM) are exactly 0 outside the response; nilearn's ``glover``/``spm`` HRFs
    have a negative undershoot and tails that never reach exactly 0, so "> 0"
    would count the undershoot and most of the run. nbdiag counts a scan when the
    condition's regressor (the column named after the trial type; for ``fir``
    any of its delay columns; derivative/dispersion columns never) exceeds
    :data:`IN_FRACTION` of that regressor's maximum (an all-negative modulated
    regressor is read sign-flipped). A scan can be in several conditions.
Baseline scans
    Scans in no condition (AFNI gives no per-class number for them; nbdiag adds it).
Scan "on" a condition (``conditions_by_events``, ``baseline_by_events``)
    The same counts by event timing, for a reviewer who counts scans by the events
    rather than by the response: scan ``k`` (acquired over ``[k·t_r, (k+1)·t_r)``) is on
    when an event of the condition overlaps it (:func:`event_activity`). Findings use the
    response definition (AFNI's).
Fractions
    ``n_censored / n_scans`` per condition, baseline and run.
Degrees of freedom left
    Scans the fit keeps minus the rank of the design on them, as nilearn counts
    its residual dof (AFNI subtracts the number of regressors; the two differ only
    for rank-deficient designs, which ``design_rank_deficient`` reports).

Findings (``censored_condition``, ``censored_run``) use AFNI's levels: a class
losing ≥ ``censor_condition_info`` / ``_warn`` / ``_fail`` (0.2 / 0.4 / 0.6) of its
scans, the run ≥ ``censor_run_info`` / ``_warn`` / ``_fail`` (0.1 / 0.2 / 0.5), as
info / warn / fail for the applied mask. For the ``load_confounds`` mask when it is
not applied the finding is ``info`` (nothing is censored in this fit; the level
AFNI would give is in the evidence, and ``nonsteady_unhandled`` /
``scrub_not_applied`` already report the dropped mask).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from nbdiag.core import codes
from nbdiag.diagnostics._linalg import column_values
from nbdiag.design.context import DesignContext
from nbdiag.core.findings import Finding
from nbdiag.core.thresholds import Thresholds

#: a scan is "in" a condition when its regressor exceeds this fraction of the regressor's maximum
IN_FRACTION = 0.01

_DERIVED = ("_derivative", "_dispersion")


def full_task(design: pd.DataFrame, roles: Mapping[str, str], context: DesignContext) -> pd.DataFrame:
    """Task columns of every acquired scan (rows = original scan indices 0..n-1).

    Uses ``context.unmasked_task`` when a sample mask removed rows; otherwise the
    design's own rows (all scans).
    """
    if context.unmasked_task is not None:
        return context.unmasked_task.reset_index(drop=True)
    cols = [c for c in design.columns if roles.get(c) == "task"]
    if not design.columns.is_unique:
        return design[cols].reset_index(drop=True)
    return pd.DataFrame(column_values(design, cols), columns=pd.Index(cols, dtype=design.columns.dtype))


def condition_columns(task: pd.DataFrame, context: DesignContext) -> dict[str, list[str]]:
    """Condition -> its response column(s) (module docstring), in design order."""
    cols = [str(c) for c in task.columns]
    names: list[str]
    if context.events is not None and "trial_type" in context.events:
        names = list(dict.fromkeys(map(str, context.events["trial_type"])))
    else:
        names = [c for c in cols if not c.endswith(_DERIVED)]
    out: dict[str, list[str]] = {}
    for name in names:
        if name in cols:
            out[name] = [name]
        else:
            fir = [c for c in cols if c.startswith(f"{name}_delay_")]
            if fir:
                out[name] = fir
    return dict(sorted(out.items(), key=lambda kv: cols.index(kv[1][0])))


def activity(task: pd.DataFrame, conditions: Mapping[str, list[str]]) -> dict[str, np.ndarray]:
    """Condition -> boolean per scan: the condition's response is "in" (module docstring)."""
    out = {}
    T = task.to_numpy(dtype=float)
    where = {str(c): j for j, c in enumerate(task.columns)}
    for name, cols in conditions.items():
        hit = np.zeros(T.shape[0], dtype=bool)
        for col in cols:
            x = T[:, where[col]]
            if np.max(x, initial=0.0) <= 0 and np.min(x, initial=0.0) < 0:
                x = -x
            peak = np.max(x, initial=0.0)
            if peak > 0:
                hit |= x > IN_FRACTION * peak
        out[name] = hit
    return out


def event_activity(context: DesignContext, conditions: Mapping[str, list[str]],
                   n_scans: int) -> dict[str, np.ndarray] | None:
    """Condition -> boolean per scan: an event of the condition is on while the scan is acquired.

    Scan ``k`` is acquired over ``[k·t_r, (k+1)·t_r)`` (BIDS onsets count from the start of the
    first volume); an event ``[onset, onset + duration)`` overlaps it when ``onset < (k+1)·t_r``
    and ``onset + duration > k·t_r``; a zero-duration event marks the scan its onset falls in.
    ``None`` without events (a saved design).
    """
    ev = context.events
    if ev is None or "trial_type" not in ev or not len(ev):
        return None
    t_r = float(context.t_r)
    out = {}
    types = ev["trial_type"].astype(str).to_numpy()
    onset = pd.to_numeric(ev["onset"], errors="coerce").to_numpy(dtype=float)
    duration = np.maximum(pd.to_numeric(ev["duration"], errors="coerce").to_numpy(dtype=float), 0.0)
    for name in conditions:
        sel = (types == name) & np.isfinite(onset) & np.isfinite(duration)
        on, off = onset[sel], onset[sel] + duration[sel]
        first = np.floor(on / t_r).astype(int)
        last = np.where(off > on, np.ceil(off / t_r).astype(int) - 1, first)  # last scan overlapped
        first, last = np.clip(first, 0, n_scans), np.clip(last, -1, n_scans - 1)
        ok = last >= first
        diff = np.zeros(n_scans + 1, dtype=int)
        np.add.at(diff, first[ok], 1)
        np.add.at(diff, last[ok] + 1, -1)
        out[name] = np.cumsum(diff[:-1]) > 0
    return out


Prepared = tuple[pd.DataFrame, dict[str, list[str]], dict[str, np.ndarray], dict[str, np.ndarray] | None]


def prepare(design: pd.DataFrame, roles: Mapping[str, str], context: DesignContext) -> Prepared:
    """Task columns of every scan, condition columns, activity by response and by event timing
    (shared by censoring and motion)."""
    task = full_task(design, roles, context)
    conds = condition_columns(task, context)
    return task, conds, activity(task, conds), event_activity(context, conds, len(task))


def _any(act: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    for a in act.values():
        out |= a
    return out


def _counts(active: np.ndarray, censored: np.ndarray) -> dict[str, Any]:
    n = int(active.sum())
    c = int((active & censored).sum())
    return {"n_scans": n, "n_censored": c, "fraction": (c / n) if n else None}


@dataclass(frozen=True)
class CensoringResult:
    """Censoring per condition for the applied and the load_confounds masks (record ``diagnostics.censoring``)."""

    section: dict[str, Any]
    findings: tuple[Finding, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return self.section


def _level(value: float | None, info: float, warn: float, fail: float) -> str | None:
    if value is None or not np.isfinite(value):
        return None
    return "fail" if value >= fail else "warn" if value >= warn else "info" if value >= info else None


def assess_censoring(design: pd.DataFrame, roles: Mapping[str, str], context: DesignContext,
                     thresholds: Thresholds | None = None, rank: int | None = None,
                     prepared: Prepared | None = None,
                     ) -> CensoringResult:
    """Censoring per condition, baseline and run (module docstring).

    ``rank`` is the design's rank when the caller has it (the applied mask keeps exactly
    the design's rows); otherwise it is computed. ``prepared``: :func:`prepare`'s result.

    Returns
    -------
    CensoringResult
        ``section``: ``{"in_fraction", "conditions", "masks": {"applied": ..., "load_confounds": ...}}``
        where each mask is ``null`` or ``{"removed_volumes", "run": counts, "conditions": {name: counts},
        "baseline": counts, "n_kept", "rank_kept", "dof_left", "n_regressors", "applied"}`` and
        ``counts = {"n_scans", "n_censored", "fraction"}``.
    """
    th = thresholds or Thresholds()
    task, conds, act, by_events = prepared or prepare(design, roles, context)
    n_total = len(task)
    any_act = np.zeros(n_total, dtype=bool)
    for a in act.values():
        any_act |= a
    rows = (np.arange(design.shape[0]) if context.scan_index is None
            else np.asarray(context.scan_index, dtype=int))
    X = design.to_numpy(dtype=float)
    applied: set[int] | None = None
    if context.scan_index is not None:
        applied = set(range(n_total)) - {int(i) for i in context.scan_index}
    would = {int(i) for i in (*context.nonsteady_volumes, *context.scrub_volumes) if 0 <= int(i) < n_total}
    masks: dict[str, Any] = {"applied": None, "load_confounds": None}
    findings: list[Finding] = []
    for key, removed in (("applied", applied), ("load_confounds", would)):
        if removed is None:
            continue
        if key == "load_confounds" and not removed:
            continue  # load_confounds' mask removes nothing (or no confounds file): null
        censored = np.zeros(n_total, dtype=bool)
        censored[sorted(removed)] = True
        keep_rows = ~censored[rows]
        n_kept = int(keep_rows.sum())
        if n_kept == X.shape[0] and rank is not None:
            rank_kept = int(rank)  # the design's own rows
        else:
            rank_kept = int(np.linalg.matrix_rank(X[keep_rows])) if n_kept else 0
        is_applied = key == "applied" or (applied is not None and removed <= applied)
        entry = {
            "removed_volumes": sorted(int(i) for i in removed),
            "applied": bool(is_applied),
            "run": _counts(np.ones(n_total, dtype=bool), censored),
            "conditions": {name: _counts(a, censored) for name, a in act.items()},
            "baseline": _counts(~any_act, censored),
            "conditions_by_events": None if by_events is None else
            {name: _counts(a, censored) for name, a in by_events.items()},
            "baseline_by_events": None if by_events is None else _counts(~_any(by_events, n_total), censored),
            "n_kept": n_kept, "rank_kept": rank_kept, "dof_left": n_kept - rank_kept,
            "n_regressors": int(X.shape[1]),
        }
        masks[key] = entry
        if key == "load_confounds" and applied is not None and removed <= applied:
            continue  # the applied mask already removes these scans: its findings say it
        findings += _findings(key, entry, th, context)
    section = {"in_fraction": IN_FRACTION, "conditions": {k: list(v) for k, v in conds.items()},
               "n_scans_total": n_total, "masks": masks}
    return CensoringResult(section=section, findings=tuple(findings))


def _mask_name(key: str) -> str:
    return ("the sample mask applied to the fit" if key == "applied" else
            "load_confounds' sample mask (non-steady-state volumes + scrubbed volumes), which "
            "first_level_from_bids drops")


def _findings(key: str, entry: Mapping[str, Any], th: Thresholds, context: DesignContext) -> list[Finding]:
    out: list[Finding] = []
    applied = key == "applied"
    strategy = list(context.confounds_strategy or ())
    fix_applied = ("Check the mask: a looser scrubbing threshold (load_confounds fd_threshold / "
                   "std_dvars_threshold, scrub=) keeps more scans; if the lost condition carries the contrast, "
                   "exclude the run rather than rely on the scans left.")
    fix_would = ("If you apply load_confounds' sample_mask (FirstLevelModel.fit(sample_masks=...)), these scans "
                 f"go; with confounds_strategy {strategy} that is the mask to check before applying it.")
    fix = fix_applied if applied else fix_would
    for name, counts in entry["conditions"].items():
        def condition_words(level: str, limit: float, name: str = name, counts: Mapping[str, Any] = counts) -> str:
            return (f"{_mask_name(key)} removes {counts['n_censored']} of the {counts['n_scans']} scans where "
                    f"{name}'s response is in (fraction {counts['fraction']:.3f} ≥ {limit:g}, AFNI's {level} "
                    f"level for a stimulus class)"
                    + ("" if applied else "; this fit keeps them") + ". Contrasts on "
                    f"{name} are decided by the scans left ({counts['n_scans'] - counts['n_censored']}).")
        out += _censor_finding(codes.CENSORED_CONDITION, "condition", applied, counts["fraction"], th, f"{name}'s",
                               condition_words, {"condition": name, "mask": key, **counts},
                               "AFNI gen_ss_review_table.py (censor fraction per stimulus class)", fix)
    run = entry["run"]

    def run_words(level: str, limit: float) -> str:
        return (f"{_mask_name(key)} removes {run['n_censored']} of {run['n_scans']} scans (fraction "
                f"{run['fraction']:.3f} ≥ {limit:g}, AFNI's {level} level for a run); "
                f"{entry['dof_left']} residual degrees of freedom are left."
                + ("" if applied else " This fit keeps them."))
    out += _censor_finding(codes.CENSORED_RUN, "run", applied, run["fraction"], th, "the run's", run_words,
                           {"mask": key, **run, "dof_left": entry["dof_left"]},
                           "AFNI gen_ss_review_table.py (censor fraction per run)", fix)
    return out


def _censor_finding(code: Any, kind: str, applied: bool, fraction: float, th: Thresholds, whose: str,
                    words: Callable[[str, float], str], head: Mapping[str, Any], source: str,
                    fix: str) -> list[Finding]:
    """``[finding]`` of a censored fraction (``kind`` ``condition`` or ``run``: AFNI's levels are the
    ``censor_<kind>_info/warn/fail`` thresholds) or ``[]`` below the info level. The finding's severity is
    the level when the mask is applied (info when it only would be); ``words(level, limit)`` is its message,
    and its evidence is ``head`` followed by the level and the thresholds."""
    names = {lv: f"censor_{kind}_{lv}" for lv in ("info", "warn", "fail")}
    limits = {lv: getattr(th, name) for lv, name in names.items()}
    level = _level(fraction, limits["info"], limits["warn"], limits["fail"])
    if level is None:
        return []
    limit = limits[level]
    return [code.finding(
        severity=level if applied else "info",
        title=f"{fraction:.0%} of {whose} scans are censored" if applied else
        f"{fraction:.0%} of {whose} scans would be censored",
        message=words(level, limit),
        evidence={**head, "level": level, "threshold": limit, **{names[lv]: limits[lv] for lv in names},
                  "threshold_source": source},
        score=float(fraction) / max(limits["warn"], 1e-9),
        fix=fix)]
