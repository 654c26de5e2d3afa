"""Rebuild a run's design exactly as ``FirstLevelModel.fit`` builds it.

``FirstLevelModel._create_single_design`` calls
``make_first_level_design_matrix(frame_times, events, hrf_model, drift_model,
high_pass, drift_order, fir_delays_, confounds.to_numpy(), confounds.columns,
min_onset)`` with ``frame_times = linspace(str*t_r, (n-1+str)*t_r, n)`` and
``fir_delays_ = [0]`` when ``fir_delays`` is None. We make the same call, so
the result equals ``model.design_matrices_[i]`` (column names and order
included); nilearn's warnings are captured into the run record.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from nilearn.glm.first_level import make_first_level_design_matrix

from nbdiag.config import ModelSettings
from nbdiag.design import taskpart
from nbdiag.design.context import frame_times  # noqa: F401 (re-exported: nbdiag.design.matrix.frame_times)

_DRIFT = re.compile(r"^drift_\d+$")
_COSINE_CONFOUND = re.compile(r"^cosine\d+$")
_SPIKE_NAME = re.compile(r"^(non_steady_state_outlier|motion_outlier)\d*")
#: fMRIPrep / common confound name patterns, used when roles are inferred from names only
_CONFOUND_NAME = re.compile(
    r"^(trans_|rot_|a_comp_cor|t_comp_cor|c_comp_cor|w_comp_cor|e_comp_cor|edge_comp_cor|csf|white_matter|"
    r"global_signal|framewise_displacement|dvars|std_dvars|non_std_dvars|vx_wise_std_dvars|rmsd|tcompcor|"
    r"csf_wm|aroma_motion|confound_|motion_|wm|gs|fd$|nuisance)",
    re.IGNORECASE,
)
REGULARISED_WARNING = "singular at working precision"


@dataclass(frozen=True)
class DesignResult:
    """A design matrix as nilearn builds it, with column roles.

    Attributes
    ----------
    design : DataFrame
        Indexed by frame times (rows removed when a sample mask was applied).
    roles : dict
        Column -> role (``task``, ``confound``, ``spike``, ``drift``, ``constant``).
    sources : dict
        Column -> where it came from (``events``, ``confounds``, ``drift model``).
    warnings : tuple of str
        nilearn warnings raised while building the design.
    regularized : bool
        nilearn's ``full_rank`` altered the design.
    scan_index : tuple of int or None
        Original scan of each row when a sample mask was applied.
    unmasked_task : DataFrame or None
        The task columns of every scan before the sample mask (only when one was
        applied): which conditions the removed scans belonged to (censoring per condition).
    """

    design: pd.DataFrame
    roles: dict[str, str]
    sources: dict[str, str]
    warnings: tuple[str, ...] = field(default_factory=tuple)
    regularized: bool = False
    scan_index: tuple[int, ...] | None = None
    unmasked_task: pd.DataFrame | None = None

    def columns_record(self) -> list[dict[str, str]]:
        return [{"name": c, "role": self.roles[c], "source": self.sources[c]} for c in self.design.columns]


def _is_spike(values: np.ndarray) -> bool:
    """One-hot (possibly demeaned) column: two distinct values, one of them once."""
    uniq, counts = np.unique(np.round(values, 10), return_counts=True)
    return len(uniq) == 2 and counts.min() == 1


def label_roles(design: pd.DataFrame, event_columns: Iterable[str], confound_columns: Iterable[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Roles and sources of a design built from known events and confounds."""
    event_columns, confound_columns = set(event_columns), set(confound_columns)
    roles: dict[str, str] = {}
    sources: dict[str, str] = {}
    for col in design.columns:
        if col in confound_columns:
            sources[col] = "confounds"
            if _COSINE_CONFOUND.match(col):
                roles[col] = "drift"
            elif _SPIKE_NAME.match(col) or _is_spike(design[col].to_numpy()):
                roles[col] = "spike"
            else:
                roles[col] = "confound"
        elif col == "constant":
            roles[col], sources[col] = "constant", "drift model"
        elif _DRIFT.match(col) and col not in event_columns:
            roles[col], sources[col] = "drift", "drift model"
        else:
            roles[col], sources[col] = "task", "events"
    return roles, sources


def infer_roles(design: pd.DataFrame) -> tuple[dict[str, str], dict[str, str]]:
    """Roles of a saved design from column names and values alone.

    Rules, in order: ``constant`` or a constant non-zero column -> constant;
    ``drift_N`` and fMRIPrep ``cosineNN`` -> drift; ``non_steady_state_outlierNN``,
    ``motion_outlierNN`` and one-hot columns -> spike; fMRIPrep confound names
    (``trans_*``, ``rot_*``, ``*_comp_cor_*``, ``csf``, ``white_matter``,
    ``global_signal``, ``framewise_displacement``, ``*dvars``, ``rmsd``...)
    -> confound; everything else -> task.
    """
    roles: dict[str, str] = {}
    sources: dict[str, str] = {}
    for col in design.columns:
        values = design[col].to_numpy(dtype=float)
        if col == "constant" or (np.ptp(values) == 0 and values[0] != 0):
            roles[col], sources[col] = "constant", "inferred from name/values"
        elif _DRIFT.match(col) or _COSINE_CONFOUND.match(col):
            roles[col], sources[col] = "drift", "inferred from name"
        elif _SPIKE_NAME.match(col) or _is_spike(values):
            roles[col], sources[col] = "spike", "inferred from name/values"
        elif _CONFOUND_NAME.match(col):
            roles[col], sources[col] = "confound", "inferred from name"
        else:
            roles[col], sources[col] = "task", "inferred (not a known confound/drift name)"
    return roles, sources


def _make_design(times: np.ndarray, events: pd.DataFrame | None, model: ModelSettings, fir_delays: list[int],
                 add_regs: np.ndarray | None, add_names: list[str] | None) -> pd.DataFrame:
    """``make_first_level_design_matrix`` with the task part from :mod:`nbdiag.design.taskpart`.

    The task columns are computed (FFT, memoised) as nilearn computes them and handed
    to nilearn as the first additional regressors: nilearn then adds the confounds and
    drift and applies ``full_rank`` exactly as with ``events``; columns come out in
    nilearn's order (task, confounds, drift).
    """
    if events is None or not taskpart.supported(model.hrf_model):
        return make_first_level_design_matrix(times, events, model.hrf_model, model.drift_model, model.high_pass,
                                              model.drift_order, fir_delays, add_regs, add_names, model.min_onset)
    task, task_names = taskpart.task_regressors(events, model.hrf_model, times, fir_delays, model.min_onset)
    if task is None:
        regs, names = add_regs, add_names
    elif add_regs is None:
        regs, names = task, task_names
    else:
        regs, names = np.hstack((task, np.asarray(add_regs, dtype=float))), task_names + list(add_names or [])
    return make_first_level_design_matrix(times, None, model.hrf_model, model.drift_model, model.high_pass,
                                          model.drift_order, fir_delays, regs, names, model.min_onset)


def build_design(events: pd.DataFrame, confounds: pd.DataFrame | None, n_scans: int, t_r: float,
                 slice_time_ref: float, model: ModelSettings,
                 sample_mask: Sequence[int] | None = None) -> DesignResult:
    """Build the design ``FirstLevelModel.fit`` would build for one run.

    Parameters
    ----------
    events : DataFrame
        Events after transforms (extra columns are ignored by nilearn).
    confounds : DataFrame or None
        As returned by ``first_level_from_bids`` for this run.
    n_scans, t_r, slice_time_ref : as resolved for the run.
    model : ModelSettings
    sample_mask : sequence of int, optional
        Apply it as ``FirstLevelModel.fit(sample_masks=...)`` does
        (``design.iloc[sample_mask]``).
    """
    times = frame_times(n_scans, t_r, slice_time_ref)
    add_regs = add_names = None
    if confounds is not None and len(confounds.columns):
        add_regs = confounds.to_numpy()
        add_names = confounds.columns.tolist()
    fir_delays = [0] if model.fir_delays is None else list(model.fir_delays)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        design = _make_design(times, events, model, fir_delays, add_regs, add_names)
    messages = []
    for w in record:
        text = str(w.message).strip()
        if text not in messages:
            messages.append(text)
    regularized = any(REGULARISED_WARNING in m for m in messages)
    if any(not isinstance(c, str) for c in design.columns):
        # non-string trial types (e.g. 1..12): keep nilearn's column order, name them as text
        design.columns = [str(c) for c in design.columns]
    roles, sources = label_roles(design, [], add_names or [])
    scan_index = None
    unmasked_task = None
    if sample_mask is not None:
        unmasked_task = design[[c for c in design.columns if roles[c] == "task"]]
        design = design.iloc[list(sample_mask), :]
        scan_index = tuple(int(i) for i in sample_mask)
    return DesignResult(design=design, roles=roles, sources=sources, warnings=tuple(messages),
                        regularized=regularized, scan_index=scan_index, unmasked_task=unmasked_task)
