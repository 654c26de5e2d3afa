"""All decision thresholds in one place, each with the source of its default.

Users override any of them in the ``[thresholds]`` table of the TOML config
(``vif_warn = 4``) or per variant (``[variants.NAME.thresholds]``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Mapping

from nbdiag.core.errors import SettingsError

#: name -> (default, unit/meaning, source)
#: A measured part (of a contrast's estimate) is distinguishable from zero when ``|t| >= DISTINCT_T``.
#: Not 2: a run has up to six cause classes per contrast and a few contrasts, so ``|t| >= 2`` (5 %
#: two-sided per part) would name a spurious cause in a large share of clean runs; 3 keeps the
#: family-wise rate near 5 % over ~15 parts (Bonferroni: 0.05 / 15 -> z = 2.94) and leaves room for
#: the autocorrelation a white-noise SE ignores. Across subjects the floor of the group rule
#: (``nbdiag.group.attribution.distinct_threshold``). One definition, read by the run level, the
#: group table, the group page and the outlier table.
DISTINCT_T = 3.0

THRESHOLD_TABLE: dict[str, tuple[float, str, str]] = {
    "vif_warn": (5.0, "VIF of a task regressor", "Mumford et al. 2015; CANlab diagnostics"),
    "vif_fail": (10.0, "VIF of a task regressor", "Mumford et al. 2015; CANlab diagnostics"),
    "corr_info": (0.4, "|r| between two regressors", "AFNI 1d_tool.py -show_cormat_warnings"),
    "corr_warn": (0.7, "|r| between two regressors", "AFNI 1d_tool.py -show_cormat_warnings"),
    "cond_warn": (30.0, "condition number of the column-scaled design", "Belsley, Kuh & Welsch 1980; CANlab"),
    "cond_fail": (100.0, "condition number of the column-scaled design", "Belsley, Kuh & Welsch 1980; CANlab"),
    "cvif_warn": (5.0, "contrast VIF", "Smith et al. 2007; Mumford et al. 2025"),
    "cvif_fail": (10.0, "contrast VIF", "Smith et al. 2007; Mumford et al. 2025"),
    "baseline_fraction_warn": (0.15, "fraction of scans with no modelled event", "nbdiag default (cf. Smith et al. 2007 on implicit baselines)"),
    "baseline_none_fraction": (0.05, "below this fraction of scans with no modelled event, conditions cover the run: no implicit baseline is left", "nbdiag default (one scan in twenty)"),
    "baseline_min_epochs": (3.0, "number of baseline epochs >= baseline_epoch_seconds", "nbdiag default"),
    "baseline_epoch_seconds": (10.0, "minimum length (s) of a baseline epoch that counts", "nbdiag default"),
    "short_gap_seconds": (6.0, "a whole unmodelled gap shorter than this between two modelled events is a transition gap (short_gap, position 'transition'); also the largest pause inside a block", "nbdiag default: about the canonical HRF's time to peak, so the response to the neighbouring block never settles there"),
    "pre_block_seconds": (10.0, "the last this-many seconds of unmodelled time that ends at a block onset (no modelled event in between) are pre-block cue time (short_gap, position 'pre_block')", "nbdiag default: instruction/cue screens in block designs last about 2-10 s (9.6 s in the forum study's n-back)"),
    "block_min_seconds": (20.0, "consecutive same-condition events spanning at least this long form a block", "nbdiag default: shorter than the usual 20-60 s task blocks, longer than single trials"),
    "unmodeled_weight_warn": (0.05, "share of a contrast's negative weight on listed-but-unmodelled events", "nbdiag default"),
    "unmodeled_weight_fail": (0.25, "share of a contrast's negative weight on listed-but-unmodelled events", "nbdiag default"),
    "short_gaps_weight_warn": (0.25, "share of a contrast's negative weight on short gaps", "nbdiag default"),
    "edge_fraction": (0.10, "first/last fraction of the run counted as the run edge", "nbdiag default"),
    "edge_weight_warn": (0.30, "share of baseline weight in the run edges", "nbdiag default"),
    "highpass_variance_lost": (0.10, "fraction of a task regressor's variance the high-pass may remove", "FSL cutoffcalc (keep 90 %)"),
    "highpass_min_cutoff_s": (90.0, "floor of the recommended high-pass period (s)", "FSL cutoffcalc"),
    "drift_r2_warn": (0.2, "R² of a task regressor/contrast on drift + constant", "nbdiag default"),
    "drift_r2_fail": (0.5, "R² of a task regressor/contrast on drift + constant", "nbdiag default"),
    "confound_r2_warn": (0.2, "R² of a task regressor on the confounds", "nbdiag default (cf. Johnstone et al. 2006)"),
    "confound_r2_fail": (0.5, "R² of a task regressor on the confounds", "nbdiag default (cf. Johnstone et al. 2006)"),
    "dof_warn": (50.0, "residual degrees of freedom", "nbdiag default"),
    "dof_fail": (20.0, "residual degrees of freedom", "nbdiag default"),
    "sensitivity_warn": (0.5, "|bias| in contrast standard deviations per unit of a plausible unmodelled signal", "nbdiag default"),
    "sensitivity_fail": (2.0, "|bias| in contrast standard deviations per unit of a plausible unmodelled signal", "nbdiag default"),
    "rt_corr_warn": (0.5, "|r| between the RT-duration regressor and a condition regressor", "nbdiag default (Mumford et al. 2024)"),
    "censor_condition_info": (0.2, "fraction of a condition's scans removed by the sample mask", "AFNI gen_ss_review_table.py / APQC (censor fraction per stimulus class)"),
    "censor_condition_warn": (0.4, "fraction of a condition's scans removed by the sample mask", "AFNI gen_ss_review_table.py / APQC (censor fraction per stimulus class)"),
    "censor_condition_fail": (0.6, "fraction of a condition's scans removed by the sample mask", "AFNI gen_ss_review_table.py / APQC (censor fraction per stimulus class)"),
    "censor_run_info": (0.1, "fraction of the run's scans removed by the sample mask", "AFNI gen_ss_review_table.py / APQC (censor fraction)"),
    "censor_run_warn": (0.2, "fraction of the run's scans removed by the sample mask", "AFNI gen_ss_review_table.py / APQC (censor fraction)"),
    "censor_run_fail": (0.5, "fraction of the run's scans removed by the sample mask", "AFNI gen_ss_review_table.py / APQC (censor fraction)"),
    "motion_corr_warn": (0.4, "|r| between framewise_displacement / DVARS and a task regressor (stimulus-correlated motion)", "AFNI 1d_tool.py medium tier for any two regressors; MRIQC's stimulus-correlated-motion request (nipreps/mriqc issues)"),
    "outlier_fd_mean": (0.25, "mean framewise_displacement (mm) over a condition's scans above which a run is listed in group/nbdiag_outliers.tsv", "Parkes et al. 2018 (stringent mean-FD exclusion, 0.25 mm)"),
    "outlier_efficiency_fraction": (0.5, "a contrast's efficiency below this fraction of the group median (same variant) lists the run in group/nbdiag_outliers.tsv", "nbdiag default"),
    "motion_corr_fail": (0.7, "|r| between framewise_displacement / DVARS and a task regressor (stimulus-correlated motion)", "AFNI 1d_tool.py high tier for any two regressors"),
}

#: thresholds no finding reads: they decide which runs ``group/nbdiag_outliers.tsv`` lists
GROUP_ONLY = ("outlier_fd_mean", "outlier_efficiency_fraction")


@dataclass(frozen=True)
class Thresholds:
    """Threshold values used by the diagnostics (see ``THRESHOLD_TABLE``)."""

    vif_warn: float = THRESHOLD_TABLE["vif_warn"][0]
    vif_fail: float = THRESHOLD_TABLE["vif_fail"][0]
    corr_info: float = THRESHOLD_TABLE["corr_info"][0]
    corr_warn: float = THRESHOLD_TABLE["corr_warn"][0]
    cond_warn: float = THRESHOLD_TABLE["cond_warn"][0]
    cond_fail: float = THRESHOLD_TABLE["cond_fail"][0]
    cvif_warn: float = THRESHOLD_TABLE["cvif_warn"][0]
    cvif_fail: float = THRESHOLD_TABLE["cvif_fail"][0]
    baseline_fraction_warn: float = THRESHOLD_TABLE["baseline_fraction_warn"][0]
    baseline_none_fraction: float = THRESHOLD_TABLE["baseline_none_fraction"][0]
    baseline_min_epochs: float = THRESHOLD_TABLE["baseline_min_epochs"][0]
    baseline_epoch_seconds: float = THRESHOLD_TABLE["baseline_epoch_seconds"][0]
    short_gap_seconds: float = THRESHOLD_TABLE["short_gap_seconds"][0]
    pre_block_seconds: float = THRESHOLD_TABLE["pre_block_seconds"][0]
    block_min_seconds: float = THRESHOLD_TABLE["block_min_seconds"][0]
    unmodeled_weight_warn: float = THRESHOLD_TABLE["unmodeled_weight_warn"][0]
    unmodeled_weight_fail: float = THRESHOLD_TABLE["unmodeled_weight_fail"][0]
    short_gaps_weight_warn: float = THRESHOLD_TABLE["short_gaps_weight_warn"][0]
    edge_fraction: float = THRESHOLD_TABLE["edge_fraction"][0]
    edge_weight_warn: float = THRESHOLD_TABLE["edge_weight_warn"][0]
    highpass_variance_lost: float = THRESHOLD_TABLE["highpass_variance_lost"][0]
    highpass_min_cutoff_s: float = THRESHOLD_TABLE["highpass_min_cutoff_s"][0]
    drift_r2_warn: float = THRESHOLD_TABLE["drift_r2_warn"][0]
    drift_r2_fail: float = THRESHOLD_TABLE["drift_r2_fail"][0]
    confound_r2_warn: float = THRESHOLD_TABLE["confound_r2_warn"][0]
    confound_r2_fail: float = THRESHOLD_TABLE["confound_r2_fail"][0]
    dof_warn: float = THRESHOLD_TABLE["dof_warn"][0]
    dof_fail: float = THRESHOLD_TABLE["dof_fail"][0]
    sensitivity_warn: float = THRESHOLD_TABLE["sensitivity_warn"][0]
    sensitivity_fail: float = THRESHOLD_TABLE["sensitivity_fail"][0]
    rt_corr_warn: float = THRESHOLD_TABLE["rt_corr_warn"][0]
    censor_condition_info: float = THRESHOLD_TABLE["censor_condition_info"][0]
    censor_condition_warn: float = THRESHOLD_TABLE["censor_condition_warn"][0]
    censor_condition_fail: float = THRESHOLD_TABLE["censor_condition_fail"][0]
    censor_run_info: float = THRESHOLD_TABLE["censor_run_info"][0]
    censor_run_warn: float = THRESHOLD_TABLE["censor_run_warn"][0]
    censor_run_fail: float = THRESHOLD_TABLE["censor_run_fail"][0]
    motion_corr_warn: float = THRESHOLD_TABLE["motion_corr_warn"][0]
    motion_corr_fail: float = THRESHOLD_TABLE["motion_corr_fail"][0]
    outlier_fd_mean: float = THRESHOLD_TABLE["outlier_fd_mean"][0]
    outlier_efficiency_fraction: float = THRESHOLD_TABLE["outlier_efficiency_fraction"][0]

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None, where: str = "[thresholds]") -> "Thresholds":
        """Build thresholds from a mapping, validating names and values.

        Raises
        ------
        ValueError
            Naming the unknown key (with the allowed ones) or the bad value.
        """
        return cls().updated(values, where)

    def updated(self, values: Mapping[str, Any] | None, where: str = "[thresholds]") -> "Thresholds":
        """Return a copy with ``values`` applied (same validation as ``from_mapping``)."""
        if not values:
            return self
        allowed = [f.name for f in fields(self)]
        clean: dict[str, float] = {}
        for key, value in values.items():
            if key not in allowed:
                raise SettingsError(
                    f"{where}: unknown threshold {key!r}; allowed: {', '.join(allowed)}"
                )
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 \
                    or value == float("inf"):
                raise SettingsError(
                    f"{where}: threshold {key!r} must be a finite non-negative number; got {value!r}"
                )
            clean[key] = float(value)
        return replace(self, **clean)

    def to_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
