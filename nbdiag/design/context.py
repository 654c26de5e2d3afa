"""What the diagnostics know about a run besides its design matrix.

``DesignContext`` is the only input diagnostics get next to the design
DataFrame (indexed by frame times) and the column roles. It holds no paths and
no file handles: ``design.py`` / ``audit.py`` fill it from the BIDS inputs,
``nbdiag design DESIGN_TSV`` fills it from a saved design alone (then
``events`` is ``None`` and the diagnostics fall back to the regressors).

Column roles are one of ``ROLES``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import pandas as pd

ROLES = ("task", "confound", "spike", "drift", "constant")

#: Time-point classes used by the baseline, weight and sensitivity diagnostics.
#: ``condition:<name>`` is also used for scans inside a modelled condition.
SCAN_CLASSES = (
    "nonsteady",       # flagged by fMRIPrep's non_steady_state_outlier* and left in the model
    "unmodeled_event", # inside an event listed in events.tsv but removed from the model
    "short_gap",       # unmodelled gap shorter than short_gap_seconds next to a block
    "run_edge",        # baseline scan in the first/last edge_fraction of the run
    "fixation",        # long unmodelled epoch (fixation/rest-like)
    "condition",       # a modelled condition is active (reported as condition:<name>)
)


@dataclass(frozen=True)
class DesignContext:
    """Run facts the diagnostics need (no I/O).

    Parameters
    ----------
    t_r : float
        Repetition time in seconds.
    slice_time_ref : float
        Fraction of ``t_r`` used for frame times.
    hrf_model, drift_model : str or None
        As given to nilearn.
    high_pass : float or None
        Cut-off frequency in Hz of the cosine drift model.
    drift_order : int
        Order of the polynomial drift model.
    events : DataFrame or None
        Modelled events after all transforms (``onset``, ``duration``,
        ``trial_type``, and ``modulation`` if given); ``None`` when unknown.
    unmodeled_events : DataFrame
        Events present in events.tsv that are not in the model (``onset``,
        ``duration``, ``trial_type``, ``reason``), e.g. dropped INSTRUCTION rows.
    nonsteady_volumes : tuple of int
        Scan indices flagged by fMRIPrep ``non_steady_state_outlier*`` columns.
    scrub_volumes : tuple of int
        Scan indices load_confounds would censor for scrubbing / motion outliers
        (not counting non-steady-state volumes).
    sample_mask_applied : bool
        Whether the fit removes the sample mask volumes. ``False`` for
        ``first_level_from_bids`` + ``FirstLevelModel.fit`` (the mask is dropped).
    confounds_strategy : tuple of str or None
        ``confounds_strategy`` given to ``load_confounds`` (None: no confounds).
    scrub_requested : bool
        ``"scrub"`` is in the strategy.
    raw_confound_columns : tuple of str
        All columns of the fMRIPrep confounds file (empty if none).
    nilearn_regularized : bool
        nilearn's ``full_rank`` modified the design (singular at working precision).
    rt_column : str or None
        Name of the response-time column in events.tsv, if present.
    rt_events : DataFrame or None
        Events with responses (``onset``, ``duration`` = response time,
        ``trial_type``), used for RT-proportional sensitivity signals.
    rt_regressor : str or None
        Design column holding the RT-duration regressor (e.g. ``"RTDur"``).
    scan_index : tuple of int or None
        Original scan index of each design row. ``None`` means rows are scans
        ``0..n-1``; set when a sample mask was applied and rows were removed
        (volume indices in this context always refer to original scans).
    n_scans_total : int or None
        Number of scans in the image (before any sample mask).
    notes : tuple of str
        Free-text notes about how inputs were resolved.
    measured_signals : mapping or None
        Full-length measured series (one value per acquired volume, scanner
        units) by name, e.g. the confounds file's ``global_signal``; ``None`` when
        nothing is measured (``--measure none`` or no confounds file).
    noise_model : str
        nilearn's ``noise_model`` for the measured estimates (``"ar1"``, ``"ols"``).
    other_t_r : tuple of (str, float)
        Repetition times other sources give for this run that differ from
        ``t_r`` (source, seconds), e.g. ``("image header (pixdim[4])", 1.5)``;
        each becomes a ``tr:<value>`` what-if signal (``tr_mismatch``).
    rest_conditions : tuple of str
        Conditions the user declares rest-like (setting ``rest_conditions``).
    motion : mapping or None
        fMRIPrep's ``framewise_displacement``, ``std_dvars`` and ``dvars`` columns
        (one value per acquired volume, first row NaN) read from the confounds file
        (``None``: no confounds file); motion per condition.
    unmasked_task : DataFrame or None
        Task columns of every acquired scan, before the sample mask (set only when
        one was applied; otherwise the design's own rows are all the scans).
    confound_medians : tuple of (str, float)
        Steady-state median (scanner units, volumes not flagged non-steady) of
        mean-signal confounds (``global_signal``, ``csf``, ``white_matter``)
        read from the raw confounds file: the scale that turns their (possibly
        demeaned) design columns into % signal.
    """

    t_r: float
    slice_time_ref: float = 0.0
    hrf_model: str | None = "glover"
    drift_model: str | None = "cosine"
    high_pass: float | None = 0.01
    drift_order: int = 1
    events: pd.DataFrame | None = None
    unmodeled_events: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["onset", "duration", "trial_type", "reason"])
    )
    nonsteady_volumes: tuple[int, ...] = ()
    scrub_volumes: tuple[int, ...] = ()
    sample_mask_applied: bool = False
    confounds_strategy: tuple[str, ...] | None = None
    scrub_requested: bool = False
    raw_confound_columns: tuple[str, ...] = ()
    nilearn_regularized: bool = False
    rt_column: str | None = None
    rt_events: pd.DataFrame | None = None
    rt_regressor: str | None = None
    scan_index: tuple[int, ...] | None = None
    n_scans_total: int | None = None
    notes: tuple[str, ...] = ()
    measured_signals: Mapping[str, np.ndarray] | None = None
    noise_model: str = "ar1"
    other_t_r: tuple[tuple[str, float], ...] = ()
    rest_conditions: tuple[str, ...] = ()
    confound_medians: tuple[tuple[str, float], ...] = ()
    motion: Mapping[str, np.ndarray] | None = None
    unmasked_task: pd.DataFrame | None = None

    def frame_times(self, n_scans: int) -> np.ndarray:
        """Frame times exactly as nilearn's FirstLevelModel computes them (:func:`frame_times`)."""
        return frame_times(n_scans, self.t_r, self.slice_time_ref)


def frame_times(n_scans: int, t_r: float, slice_time_ref: float) -> np.ndarray:
    """Frame times exactly as ``FirstLevelModel`` computes them.

    ``linspace(slice_time_ref * t_r, (n_scans - 1 + slice_time_ref) * t_r, n_scans)``.
    """
    return np.linspace(slice_time_ref * t_r, (n_scans - 1 + slice_time_ref) * t_r, n_scans)
