"""The finding registry: every finding code nbdiag emits, defined once.

Each :class:`Code` holds the stable ``code`` (README findings table), its ``family``, the
default ``severity``, a default ``title``, what it ``meaning``\\s, the ``fix``
template, the keys of :data:`nbdiag.core.thresholds.THRESHOLD_TABLE` it reads and a
``rule`` (the default decision rule, with ``{threshold_key}`` placeholders
filled from the threshold table). Modules never write a code as a bare string:
they build findings with ``codes.VIF_HIGH.finding(message, ...)`` and compare
with ``codes.VIF_HIGH.code``.

The README's "Findings and thresholds" tables (:func:`markdown_table`) and the
code list of ``docs/record.schema.json`` are generated from this registry:
``python -m nbdiag.core.codes --write-readme --write-schema`` rewrites both, and tests
fail when either differs from the registry.

Adding a finding: register a ``Code`` here, emit it from one diagnostic with
``codes.NEW_CODE.finding(...)``, add one test (see docs/architecture.md).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from nbdiag.core.findings import SEVERITIES, Finding
from nbdiag.core.thresholds import GROUP_ONLY, THRESHOLD_TABLE

#: Families in the order the README table lists them.
FAMILIES = ("design", "estimability", "baseline", "drift", "confounds", "sensitivity", "rt", "input", "run")


class _Unset:
    """Marker for "not given": lets callers pass ``fix=None`` explicitly."""

    def __repr__(self) -> str:
        return "<default from the registry>"


_UNSET: Any = _Unset()


@dataclass(frozen=True)
class Code:
    """One finding code and its defaults.

    Parameters
    ----------
    code : str
        Stable snake_case code written to records.
    family : str
        One of :data:`FAMILIES`.
    severity : {"info", "warn", "fail", "error"}
        Default severity of a finding built with :meth:`finding`.
    title : str
        Default title (call sites usually give a specific one).
    meaning : str
        What the finding measures, in one sentence (README table).
    fix : str or None
        Default remedy in nilearn terms.
    thresholds : tuple of str
        Keys of ``THRESHOLD_TABLE`` the diagnostic reads for this code.
    rule : str
        Default decision rule; ``{key}`` / ``{key:fmt}`` placeholders name
        threshold keys and are filled with their defaults by :meth:`rule_text`.
    """

    code: str
    family: str
    severity: str
    title: str
    meaning: str
    fix: str | None = None
    thresholds: tuple[str, ...] = ()
    rule: str = ""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.code):
            raise ValueError(f"code must be snake_case; got {self.code!r}")
        if self.family not in FAMILIES:
            raise ValueError(f"family of {self.code!r} must be one of {FAMILIES}; got {self.family!r}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity of {self.code!r} must be one of {SEVERITIES}; got {self.severity!r}")
        unknown = [k for k in self.thresholds if k not in THRESHOLD_TABLE]
        if unknown:
            raise ValueError(f"thresholds of {self.code!r} must be keys of THRESHOLD_TABLE; unknown: {unknown}")
        named = set(rule_keys(self.rule))
        if not named <= set(self.thresholds):
            raise ValueError(f"rule of {self.code!r} names thresholds {sorted(named - set(self.thresholds))} "
                             f"that are not in its thresholds {self.thresholds}")

    def finding(self, message: str, *, evidence: dict[str, Any] | None = None, contrast: str | None = None,
                score: float = 0.0, severity: str | None = None, title: str | None = None,
                fix: str | None = _UNSET) -> Finding:
        """Build a :class:`~nbdiag.core.findings.Finding` with this code.

        ``severity`` and ``title`` default to the entry's; ``fix`` defaults to
        the entry's when not given (pass ``fix=None`` for a finding without one).
        """
        return Finding(code=self.code, severity=self.severity if severity is None else severity,
                       title=self.title if title is None else title, message=message,
                       evidence={} if evidence is None else evidence, contrast=contrast, score=score,
                       fix=self.fix if fix is _UNSET else fix)

    def rule_text(self) -> str:
        """The default decision rule with the threshold defaults filled in."""
        return self.rule.format(**{k: THRESHOLD_TABLE[k][0] for k in self.thresholds})


def rule_keys(rule: str) -> list[str]:
    """Threshold keys named by ``{key}`` / ``{key:fmt}`` placeholders in ``rule``."""
    return re.findall(r"\{([a-z_0-9]+)(?::[^}]*)?\}", rule)


#: code -> entry, in registration order.
REGISTRY: dict[str, Code] = {}


def _register(entry: Code) -> Code:
    if entry.code in REGISTRY:
        raise ValueError(f"finding code {entry.code!r} is registered twice")
    REGISTRY[entry.code] = entry
    return entry


def get(code: str) -> Code:
    """Return the registry entry for ``code``.

    Raises
    ------
    KeyError
        Naming the unknown code and listing the registered ones.
    """
    try:
        return REGISTRY[code]
    except KeyError:
        raise KeyError(f"unknown finding code {code!r}; registered: {', '.join(REGISTRY)}") from None


# --- design ---------------------------------------------------------------------------------------
VIF_HIGH = _register(Code(
    "vif_high", "design", "warn", "A regressor is largely explained by the other regressors",
    "VIF of a task regressor: 1/(1−R²) on all other columns, constant included",
    fix="Check which regressors explain it (correlation matrix); model the implicit baseline explicitly "
        "(leave rest/fixation unmodelled), drop or merge redundant conditions in events.tsv, or remove "
        "task-locked confounds from confounds_strategy; judge the contrasts you test (cVIF) rather than "
        "single betas.",
    thresholds=("vif_warn", "vif_fail"), rule="warn ≥ {vif_warn:g}, fail ≥ {vif_fail:g}"))
CORRELATION_HIGH = _register(Code(
    "correlation_high", "design", "warn", "Two regressors are correlated",
    "|r| between a task regressor and another column (task, confound, spike, drift) at AFNI's tiers, with the cosine",
    fix="Jitter or reorder conditions in the task design, or, for a task×confound pair, reconsider that "
        "confound in confounds_strategy (task-locked motion removes task signal).",
    thresholds=("corr_info", "corr_warn"),
    rule="info ≥ {corr_info:g} (medium), warn ≥ {corr_warn:g} (high), fail when identical (|r| or cosine ≥ 1 − 1e-10)"))
DESIGN_RANK_DEFICIENT = _register(Code(
    "design_rank_deficient", "design", "fail", "The design matrix is rank deficient",
    "rank < number of columns, or nilearn's `full_rank` regularised the design",
    fix="Remove the redundant column(s).", rule="fail"))
DESIGN_ILL_CONDITIONED = _register(Code(
    "design_ill_conditioned", "design", "warn", "The design matrix is ill-conditioned",
    "scaled condition index of the design (unit-length columns, Belsley) and the columns whose "
    "variance-decomposition proportions exceed 0.5 in that near-dependency",
    fix="Look at the columns involved: typically conditions that tile the run together "
        "with the constant, many drift cosines (raise 1/high_pass), or a slowly drifting confound.",
    thresholds=("cond_warn", "cond_fail"),
    rule="warn > {cond_warn:g}, fail > {cond_fail:g} when a task regressor takes part in the near-dependency; "
         "info otherwise"))
CONDITION_BLOCK_BEWARE = _register(Code(
    "condition_block_beware", "design", "info", "A block of the design is ill-conditioned",
    "condition number of the whole design, its task, baseline (drift + constant + confounds) or drift block on "
    "AFNI's scale (VERY GOOD < 20, GOOD < 400, OK < 8000, A LITTLE BIG < 160000, else BEWARE), AFNI's count of "
    "near-zero singular values, and FSL feat_model's smallest/largest singular value < 1e-7",
    fix="For the task block: conditions that are nearly sums of others (merge or drop one in events.tsv); for "
        "the baseline block: duplicated confounds or cosine confounds on top of the drift model "
        "(drop 'high_pass' from confounds_strategy or set drift_model=None).",
    rule="warn for the task block when AFNI rates it BEWARE/UNDEFINED, it has near-zero singular values or FSL's "
         "ratio < 1e-7; info for the other blocks"))

# --- estimability ---------------------------------------------------------------------------------
CONTRAST_NOT_ESTIMABLE = _register(Code(
    "contrast_not_estimable", "estimability", "fail", "A contrast is not estimable",
    "c is not in the row space of X (SPM's `spm_SpUtil('isCon')` rule and tolerance)",
    fix="Leave part of the run unmodelled (implicit baseline) or test differences between conditions; "
        "remove columns that are sums of others (e.g. a rest condition tiling the run with the others).",
    rule="fail"))
CONTRAST_VARIANCE_INFLATED = _register(Code(
    "contrast_variance_inflated", "estimability", "warn", "The variance of a contrast is inflated",
    "contrast VIF (Mumford et al. 2025): variance in this design ÷ variance if the contrast's regressors "
    "were orthogonal to the rest",
    fix="Keep a real implicit baseline (do not model fixation/rest as a condition; do not let conditions "
        "tile the run), or report differential contrasts such as two_back - zero_back; reduce task-locked "
        "confounds and drift overlap.",
    thresholds=("cvif_warn", "cvif_fail"), rule="warn ≥ {cvif_warn:g}, fail ≥ {cvif_fail:g}"))

# --- baseline -------------------------------------------------------------------------------------
BASELINE_SCARCE = _register(Code(
    "baseline_scarce", "baseline", "warn", "Implicit baseline is scarce",
    "share of scans with no modelled event, and number of baseline epochs of at least "
    "`baseline_epoch_seconds`",
    fix="Interpret differential contrasts (e.g. two_back - zero_back) or add fixation epochs of >= 10 s "
        "between blocks in the task design.",
    thresholds=("baseline_fraction_warn", "baseline_min_epochs", "baseline_epoch_seconds",
                "baseline_none_fraction", "sensitivity_warn"),
    rule="warn < {baseline_fraction_warn:.0%} or, in a block design, < {baseline_min_epochs:g} epochs ≥ "
         "{baseline_epoch_seconds:g} s; "
         "'no implicit baseline is left' < {baseline_none_fraction:.0%}; per contrast warn only when a signal it "
         "explains moves the contrast by ≥ {sensitivity_warn:g} σ, else info"))
BASELINE_MODELED_REST = _register(Code(
    "baseline_modeled_rest", "baseline", "warn", "A rest-like condition is modelled",
    "a condition that is rest-like by its name (fixation, fix, cross, control, baseline, rest, null, blank, iti, "
    "isi, off, pause, ...) or by the `rest_conditions` setting is modelled (never by elimination)",
    fix="Drop the rest-like condition from the events passed to FirstLevelModel.fit (so it becomes the "
        "implicit baseline), or use contrasts against it.",
    rule="warn"))
BASELINE_UNMODELED_EVENTS = _register(Code(
    "baseline_unmodeled_events", "baseline", "warn", "Unmodelled events sit in the baseline",
    "events listed in events.tsv but left out of the model carry the contrast's negative weight",
    fix="Model the unmodelled events as their own condition so they leave the implicit baseline.",
    thresholds=("unmodeled_weight_warn", "unmodeled_weight_fail", "sensitivity_warn", "sensitivity_fail"),
    rule="≥ {unmodeled_weight_warn:.0%} of negative weight; per contrast warn when the events' response moves it by "
         "≥ {sensitivity_warn:g} σ (fail ≥ {sensitivity_fail:g} σ or ≥ {unmodeled_weight_fail:.0%}), else info"))
BASELINE_SHORT_GAPS = _register(Code(
    "baseline_short_gaps", "baseline", "warn", "Short gaps next to blocks act as baseline",
    "unmodelled cue/transition time next to blocks carries the contrast's negative weight",
    fix="Model the cue/transition periods as a condition, or lengthen fixation between blocks.",
    thresholds=("short_gaps_weight_warn", "short_gap_seconds", "pre_block_seconds", "block_min_seconds",
                "sensitivity_warn"),
    rule="≥ {short_gaps_weight_warn:.0%} of negative weight; warn when a response there moves the contrast by "
         "≥ {sensitivity_warn:g} σ, else info with the margin"))
BASELINE_EDGE_CONCENTRATED = _register(Code(
    "baseline_edge_concentrated", "baseline", "warn", "Baseline weight concentrated at the run edges",
    "the contrast's baseline weight sits in the first/last `edge_fraction` of the run",
    fix="Add fixation epochs inside the run (not only at its start/end), discard the first volumes with a "
        "sample mask, or interpret differential contrasts.",
    thresholds=("edge_fraction", "edge_weight_warn", "sensitivity_warn"),
    rule="≥ {edge_weight_warn:.0%} in the first/last {edge_fraction:.0%}; warn when run-start settling moves the "
         "contrast by ≥ {sensitivity_warn:g} σ, else info with the margin"))

# --- drift ----------------------------------------------------------------------------------------
HIGHPASS_CUTS_DESIGN = _register(Code(
    "highpass_cuts_design", "drift", "warn", "The high-pass filter removes task signal",
    "the high-pass removes more than `highpass_variance_lost` of a task regressor's variance; evidence gives "
    "the cutoff that keeps the rest (FSL cutoffcalc rule, `highpass_min_cutoff_s` floor) and the matching "
    "`high_pass`",
    fix="Lower high_pass (longer cutoff period) to the recommended value in the evidence.",
    thresholds=("highpass_variance_lost", "highpass_min_cutoff_s", "sensitivity_warn", "sensitivity_fail"),
    rule="warn > {highpass_variance_lost:.0%} removed (when the global signal is measured: by the measured drift "
         "just inside the pass band, warn ≥ {sensitivity_warn:g} σ, fail ≥ {sensitivity_fail:g} σ, else info)"))
DRIFT_OVERLAP = _register(Code(
    "drift_overlap", "drift", "warn", "The drift model explains part of a task regressor",
    "R² of a task regressor, or of a contrast's regressor, on drift + constant",
    fix="Lower high_pass (longer cutoff period) so the drift cosines stay below the block frequency; or "
        "shorten/interleave blocks so conditions alternate faster than the cutoff.",
    thresholds=("drift_r2_warn", "drift_r2_fail", "sensitivity_warn", "sensitivity_fail"),
    rule="warn ≥ {drift_r2_warn:g}, fail ≥ {drift_r2_fail:g} for a task regressor (when the global signal is measured: "
         "by the measured drift just inside the pass band, warn ≥ {sensitivity_warn:g} σ, fail ≥ "
         "{sensitivity_fail:g} σ, else info); per contrast warn only when a "
         "drift just beyond the cut-off moves it by ≥ {sensitivity_warn:g} σ, else info with the margin"))
HIGHPASS_DUPLICATED = _register(Code(
    "highpass_duplicated", "drift", "warn", "High-pass filtering is applied twice",
    "fMRIPrep cosine confounds plus a drift model",
    fix="Keep one: drop 'high_pass' from confounds_strategy (load_confounds) or set drift_model=None in "
        "FirstLevelModel.",
    rule="warn"))

# --- confounds ------------------------------------------------------------------------------------
NONSTEADY_UNHANDLED = _register(Code(
    "nonsteady_unhandled", "confounds", "fail", "Non-steady-state volumes stay in the model",
    "volumes flagged non-steady-state are neither masked nor modelled (the sample mask "
    "`first_level_from_bids` drops)",
    fix="pass sample_masks from load_confounds to FirstLevelModel.fit or add the non_steady_state_outlier* "
        "columns as confounds",
    thresholds=("unmodeled_weight_warn", "unmodeled_weight_fail", "sensitivity_warn", "sensitivity_fail"),
    rule="for the run: when the flagged volumes' excess is measured (global_signal), fail only if it moves a "
         "contrast by ≥ {sensitivity_fail:g} σ, else warn (\"harmless here\" below {sensitivity_warn:g} σ); fail "
         "when it cannot be measured; per contrast warn when the excess moves it (either direction) by "
         "≥ {sensitivity_warn:g} σ, fail at ≥ {sensitivity_fail:g} σ; info below, with the share of negative "
         "weight (≥ {unmodeled_weight_warn:.0%} is noted)"))
SCRUB_NOT_APPLIED = _register(Code(
    "scrub_not_applied", "confounds", "fail", "Scrubbing was requested but not applied",
    "scrubbing asked for, but its sample mask is dropped",
    fix="pass sample_masks from load_confounds to FirstLevelModel.fit (fit the runs yourself instead of "
        "relying on first_level_from_bids' confound handling)",
    thresholds=("sensitivity_warn", "sensitivity_fail"),
    rule="for the run: when the censored volumes' part of every contrast is measured (global_signal), fail only "
         "if one moves a contrast by ≥ {sensitivity_fail:g} σ, else warn (\"harmless here\" below "
         "{sensitivity_warn:g} σ); fail when it cannot be measured; per contrast warn when the censored volumes "
         "move it by ≥ {sensitivity_warn:g} σ, fail at ≥ {sensitivity_fail:g} σ"))
CONFOUND_TASK_CORRELATED = _register(Code(
    "confound_task_correlated", "confounds", "warn", "Confounds explain part of a task regressor",
    "R² of a task regressor on the confounds",
    fix="Use a smaller confounds_strategy (e.g. motion='basic' instead of 'full'), drop task-locked "
        "confounds, or check whether the task causes the motion.",
    thresholds=("confound_r2_warn", "confound_r2_fail", "sensitivity_warn", "sensitivity_fail"),
    rule="warn ≥ {confound_r2_warn:g}, fail ≥ {confound_r2_fail:g} (when the confounds' loading in the global signal "
         "is measured, fail only if regressing them out moves a contrast by ≥ {sensitivity_fail:g} σ); per contrast "
         "warn/fail when regressing out the task-locked confound moves it by ≥ {sensitivity_warn:g} / "
         "{sensitivity_fail:g} σ, else info (no footprint, or no confound task-locked beyond the drift model with the global signal measured: "
         "info for the run too)"))
DOF_LOW = _register(Code(
    "dof_low", "confounds", "warn", "Few residual degrees of freedom",
    "residual degrees of freedom (n − rank, as nilearn counts them)",
    fix="Use fewer confounds (e.g. compcor with fewer components, motion='basic'), a longer high-pass "
        "cutoff (fewer drift cosines), or fewer spike regressors.",
    thresholds=("dof_warn", "dof_fail"), rule="warn < {dof_warn:g}, fail < {dof_fail:g}"))
CENSORED_CONDITION = _register(Code(
    "censored_condition", "confounds", "warn", "A condition loses its scans to the sample mask",
    "fraction of a condition's scans (its regressor above 1 % of its peak: AFNI's 'response > 0') removed by the "
    "sample mask applied to the fit, or by load_confounds' sample mask when it is dropped",
    fix="Loosen the scrubbing (load_confounds fd_threshold / std_dvars_threshold) or exclude the run when the "
        "condition that carries the contrast is mostly censored.",
    thresholds=("censor_condition_info", "censor_condition_warn", "censor_condition_fail"),
    rule="info ≥ {censor_condition_info:g}, warn ≥ {censor_condition_warn:g}, fail ≥ {censor_condition_fail:g} "
         "for the applied mask; info for load_confounds' mask when it is not applied"))
CENSORED_RUN = _register(Code(
    "censored_run", "confounds", "warn", "The sample mask censors much of the run",
    "fraction of the run's scans removed by the sample mask (applied, or load_confounds' when dropped), with "
    "the residual degrees of freedom left",
    fix="Loosen the scrubbing (load_confounds fd_threshold / std_dvars_threshold) or exclude the run.",
    thresholds=("censor_run_info", "censor_run_warn", "censor_run_fail"),
    rule="info ≥ {censor_run_info:g}, warn ≥ {censor_run_warn:g}, fail ≥ {censor_run_fail:g} for the applied "
         "mask; info for load_confounds' mask when it is not applied"))
MOTION_TASK_CORRELATED = _register(Code(
    "motion_task_correlated", "confounds", "warn", "Motion is correlated with a task regressor",
    "Pearson r of framewise_displacement / std_dvars / dvars (fMRIPrep confounds) with a task regressor: "
    "stimulus-correlated motion",
    fix="Motion locked to the task biases the contrast and is removed with it by motion confounds; compare "
        "motion per condition (diagnostics.motion), consider scrubbing (load_confounds strategy with 'scrub') "
        "and report the correlation; exclude the run if a contrast rests on it.",
    thresholds=("motion_corr_warn", "motion_corr_fail"),
    rule="warn |r| ≥ {motion_corr_warn:g}, fail |r| ≥ {motion_corr_fail:g}"))
MOTION_COLUMNS_MISSING = _register(Code(
    "motion_columns_missing", "confounds", "info", "Motion columns missing from the confounds file",
    "the confounds file lacks framewise_displacement, std_dvars or dvars, so motion per condition is not "
    "reported for it",
    fix="Use fMRIPrep's *_desc-confounds_timeseries.tsv (it writes all three columns).", rule="info"))
TRANSIENT_UNFLAGGED = _register(Code(
    "transient_unflagged", "confounds", "warn", "Volumes that stand out in the global signal are not flagged",
    "volumes whose measured global_signal departs from its local steady level by more than 5 robust "
    "SD of the volumes' departures from their running level (1.4826 MAD) stay in the model while no non_steady_state_outlier* / motion_outlier* column flags them",
    fix="Discard them with a sample mask (FirstLevelModel.fit(sample_masks=...)) or add one spike regressor per "
        "volume; for bright first volumes, drop the dummy scans",
    thresholds=("sensitivity_warn", "sensitivity_fail"),
    rule="per contrast and for the run, from the measured part of the volumes (global_signal): warn when it moves "
         "a contrast by ≥ {sensitivity_warn:g} σ and is distinguishable from zero (|t| ≥ 3), fail at "
         "≥ {sensitivity_fail:g} σ; info below"))

# --- sensitivity ----------------------------------------------------------------------------------
SENSITIVE_UNMODELED_SIGNAL = _register(Code(
    "sensitive_unmodeled_signal", "sensitivity", "warn", "A contrast is sensitive to an unmodelled signal",
    "bias wᵀm of a plausible unmodelled signal m, in contrast standard deviations; `evidence.source` names m",
    thresholds=("sensitivity_warn", "sensitivity_fail"),
    rule="warn ≥ {sensitivity_warn:g} σ, fail ≥ {sensitivity_fail:g} σ in either direction when the source's "
         "structural cause is present; info for generic sources"))

# --- rt -------------------------------------------------------------------------------------------
RT_REGRESSOR_OVERLAP = _register(Code(
    "rt_regressor_overlap", "rt", "warn", "RT-duration regressor overlaps conditions",
    "the RT-duration regressor vs the condition regressors, and what a single-condition beta then means",
    fix="Compare with the model without the RT-duration regressor and interpret differential contrasts.",
    thresholds=("rt_corr_warn", "sensitivity_warn", "sensitivity_fail"),
    rule="warn |r| ≥ {rt_corr_warn:g}; info for a single-condition contrast; per contrast warn/fail when an "
         "RT signal lowers it by ≥ {sensitivity_warn:g} / {sensitivity_fail:g} σ"))

# --- input ----------------------------------------------------------------------------------------
EVENTS_INVALID = _register(Code(
    "events_invalid", "input", "error", "Invalid events file",
    "events.tsv cannot be read as written (missing columns, non-numeric or negative values, rows without "
    "a trial_type)", rule="error; warn when nbdiag can go on"))
EVENTS_OUTSIDE_RUN = _register(Code(
    "events_outside_run", "input", "warn", "Events outside the run",
    "events start before `min_onset` or after the last volume (not modelled), or end after it (cut)",
    rule="warn; info when only cut at the end"))
TRIAL_TYPE_NOT_IDENTIFIER = _register(Code(
    "trial_type_not_identifier", "input", "warn", "Trial types that are not Python identifiers",
    "a trial type nilearn can fit but contrast expressions cannot name",
    fix="rename the trial types with --events-rename OLD=NEW or [events] rename", rule="warn"))
CONFOUNDS_INVALID = _register(Code(
    "confounds_invalid", "input", "error", "Invalid confounds file",
    "the confounds file cannot be read, lacks columns the strategy needs, or has non-finite values",
    rule="error"))
TR_MISMATCH = _register(Code(
    "tr_mismatch", "input", "warn", "Repetition times disagree between sources",
    "the TRs stated by the image header (pixdim[4]), the raw sidecar (BIDS inheritance), the derivative "
    "sidecar, --t-r and the model's t_r are not all equal; each source is named",
    thresholds=("sensitivity_warn", "sensitivity_fail"),
    rule="warn; per contrast warn/fail when a unit response acquired at the other TR moves it by "
         "≥ {sensitivity_warn:g} / {sensitivity_fail:g} σ, else info"))
N_SCANS_MISMATCH = _register(Code(
    "n_scans_mismatch", "input", "error", "Confounds rows differ from the number of volumes",
    "the confounds file has a different number of rows than the image has volumes (nilearn refuses it); "
    "n_scans read from the confounds rows because the image is not fetched is a note, not this finding",
    rule="error"))
CONTRAST_INVALID = _register(Code(
    "contrast_invalid", "input", "error", "A contrast cannot be computed",
    "a contrast expression names no design column or is not a valid expression",
    fix="Write the contrast with design column names (nilearn reads it with expression_to_contrast_vector); "
        "column names must be valid Python identifiers.",
    rule="error"))
INPUT_INVALID = _register(Code(
    "input_invalid", "input", "error", "Run could not be audited",
    "any other bad input for the run (missing or unreadable file, missing RepetitionTime, bad setting)",
    rule="error"))
INPUT_MISSING = _register(Code(
    "input_missing", "input", "error", "A requested input is missing",
    "a file the settings ask for (events, confounds, a sidecar CompCor needs) is missing, unreadable, a "
    "folder, a symlink loop or an unfetched git-annex/DataLad link; the message names it and what asked for it",
    fix="fetch the file (datalad get PATH) or change the setting that asks for it (e.g. --confounds-strategy none)",
    rule="error"))
INPUT_OUTSIDE = _register(Code(
    "input_outside", "input", "error", "An input links outside the dataset",
    "an input file is a symlink resolving outside BIDS_DIR and the derivatives folder; nbdiag does not read it",
    fix="copy the file into the dataset or fix the link", rule="error"))
INPUT_TOO_LARGE = _register(Code(
    "input_too_large", "input", "error", "An input is above a size limit",
    "confound columns, event rows or volumes above `[limits]` (max_confound_columns, max_event_rows, max_scans)",
    fix="raise the limit in the config's [limits] table if the size is intended", rule="error"))
N_SCANS_INVALID = _register(Code(
    "n_scans_invalid", "input", "error", "Too few volumes for a design",
    "the run has fewer than 2 volumes (image header or confounds rows)", rule="error"))
CHECKS_SKIPPED = _register(Code(
    "checks_skipped", "input", "info", "Checks that could not run on this input",
    "the input lacks what some checks need (e.g. a saved design has no events, confounds file or image): "
    "the finding lists those checks, why, and which ones are approximated; `skipped_checks` in the record",
    fix="audit the run from its BIDS inputs (nbdiag BIDS_DIR OUT participant) or from the FirstLevelModel "
        "and its events/confounds (nbdiag.audit_models)",
    rule="info"))

# --- run ------------------------------------------------------------------------------------------
AUDIT_FAILED = _register(Code(
    "audit_failed", "run", "error", "Run could not be audited",
    "the audit raised an unexpected exception (a bug: the record's `error` has the traceback)",
    rule="error"))
INTERNAL_ERROR = _register(Code(
    "internal_error", "run", "error", "Run could not be audited",
    "`error.code` of a record whose audit raised an unexpected exception (its finding is `audit_failed`)",
    rule="error"))


# --- README table ---------------------------------------------------------------------------------
TABLE_START = "<!-- findings-table:start -->"
TABLE_END = "<!-- findings-table:end -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_table() -> str:
    """The README's findings and thresholds reference, generated from the registry.

    Two tables: one row per registered code (family, code, default severity,
    meaning, default rule with the threshold defaults filled in, threshold
    keys read), then one row per key of ``THRESHOLD_TABLE`` (default,
    meaning, source, codes that read it).
    """
    lines = ["| family | code | default severity | what it means | default rule | thresholds read |",
             "|---|---|---|---|---|---|"]
    for fam in FAMILIES:
        for e in REGISTRY.values():
            if e.family != fam:
                continue
            keys = ", ".join(f"`{k}`" for k in e.thresholds) or "—"
            lines.append(f"| {e.family} | `{e.code}` | {e.severity} | {_cell(e.meaning)} | "
                         f"{_cell(e.rule_text()) or '—'} | {keys} |")
    lines += ["", "Every threshold can be changed in `[thresholds]` (or `[variants.NAME.thresholds]`). These",
              "are the defaults, where they come from, and the findings they decide:", "",
              "| threshold | default | meaning | source | read by |", "|---|---|---|---|---|"]
    for key, (default, meaning, source) in THRESHOLD_TABLE.items():
        users = ", ".join(f"`{e.code}`" for e in REGISTRY.values() if key in e.thresholds) or (
            "`group/nbdiag_outliers.tsv`" if key in GROUP_ONLY else "—")
        lines.append(f"| `{key}` | {default:g} | {_cell(meaning)} | {_cell(source)} | {users} |")
    return "\n".join(lines) + "\n"


def replace_table(text: str, table: str | None = None) -> str:
    """Return ``text`` with the part between the findings-table markers replaced.

    Raises
    ------
    ValueError
        When ``text`` does not contain both markers, in order.
    """
    table = markdown_table() if table is None else table
    start, end = text.find(TABLE_START), text.find(TABLE_END)
    if start < 0 or end < start:
        raise ValueError(f"README must contain {TABLE_START!r} followed by {TABLE_END!r}")
    return text[: start + len(TABLE_START)] + "\n" + table + text[end:]


SCHEMA_PATH = "docs/record.schema.json"


def schema_with_codes(schema: dict[str, Any]) -> dict[str, Any]:
    """Return ``schema`` (docs/record.schema.json) with its code enum set to the registry's codes."""
    out = json.loads(json.dumps(schema))
    out["$defs"]["code"]["enum"] = list(REGISTRY)
    return out


def _dump_schema(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def _sync(path: Path, new: str, write: bool, what: str) -> int:
    old = path.read_text(encoding="utf-8")
    if new == old:
        return 0
    if write:
        tmp = path.with_name(f".{path.name}.tmp")  # a maintainer's command: write, then rename into place
        tmp.write_text(new, encoding="utf-8")
        tmp.replace(path)
        return 0
    print(f"{path}: {what} differs from nbdiag.core.codes; run python -m nbdiag.core.codes --write-readme --write-schema",
          file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m nbdiag.core.codes [--write-readme|--check-readme [PATH]] [--write-schema|--check-schema [PATH]]``.

    Without options, print the generated tables. ``--write-*`` rewrite the
    README table (between the findings-table markers) and the code list of
    the record schema; ``--check-*`` exit 1 when they differ from the registry.
    """
    parser = argparse.ArgumentParser(prog="python -m nbdiag.core.codes",
                                     description="Findings tables and record-schema codes generated from the registry.")
    readme = parser.add_mutually_exclusive_group()
    readme.add_argument("--write-readme", nargs="?", const="README.md", metavar="PATH",
                        help="rewrite the table between the findings-table markers in PATH (default README.md)")
    readme.add_argument("--check-readme", nargs="?", const="README.md", metavar="PATH",
                        help="exit 1 when the table in PATH differs from the registry")
    schema = parser.add_mutually_exclusive_group()
    schema.add_argument("--write-schema", nargs="?", const=SCHEMA_PATH, metavar="PATH",
                        help=f"set the code list of the record schema PATH (default {SCHEMA_PATH})")
    schema.add_argument("--check-schema", nargs="?", const=SCHEMA_PATH, metavar="PATH",
                        help="exit 1 when the schema's code list differs from the registry")
    args = parser.parse_args(argv)
    status = 0
    readme_path = args.write_readme or args.check_readme
    if readme_path:
        path = Path(readme_path)
        status |= _sync(path, replace_table(path.read_text(encoding="utf-8")), bool(args.write_readme),
                        "the findings table")
    schema_path = args.write_schema or args.check_schema
    if schema_path:
        path = Path(schema_path)
        new = _dump_schema(schema_with_codes(json.loads(path.read_text(encoding="utf-8"))))
        status |= _sync(path, new, bool(args.write_schema), "the schema's code list")
    if not readme_path and not schema_path:
        sys.stdout.write(markdown_table())
    return status


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
