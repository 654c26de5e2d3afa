"""The task part of a design, as nilearn computes it, built once per timing and settings.

``make_first_level_design_matrix`` spends most of its time convolving each
condition's 50×-oversampled boxcar with the HRF (``numpy.convolve``, direct
summation). :func:`task_regressors` follows nilearn's ``_convolve_regressors``
step by step with nilearn's own event checks, and computes each condition's
regressor with :func:`nbdiag.design.hrf.compute_regressor_fast` (nilearn's sampling,
kernels, interpolation and orthogonalisation, with the convolution evaluated only
at the high-resolution samples the interpolation reads: equal to nilearn to
~1e-12, exact zeros kept exact). nilearn's duplicate-event groupby runs only when
two events share trial type, onset and duration. The result is memoised per
(events, HRF model, frame times, FIR delays, min_onset):
variants that share a timing file and an HRF (e.g. the same events under
different confound strategies) build it once. nilearn's warnings raised while
building it are replayed on every use, so each run's record lists them.

The rest of the design (confounds, drift, ``full_rank``) is left to nilearn:
:func:`nbdiag.design.matrix.build_design` passes the task part to
``make_first_level_design_matrix`` as the first additional regressors, which puts
the columns in nilearn's order (task, confounds, drift).
"""

from __future__ import annotations

import hashlib
import warnings
from collections import OrderedDict
from typing import Any, Sequence

import numpy as np
import pandas as pd

from nbdiag.core import compat
from nbdiag.design import hrf

_CACHE: "OrderedDict[str, tuple[np.ndarray | None, list[str], list[tuple[type, str]]]]" = OrderedDict()
_CACHE_SIZE = 16


def clear_cache() -> None:
    """Forget every memoised task part, kernel and regressor."""
    _CACHE.clear()
    hrf.clear_cache()


def _key(events: pd.DataFrame, hrf_model: str, frame_times: np.ndarray, fir_delays: Sequence[int],
         min_onset: float, oversampling: int) -> str:
    h = hashlib.sha256()
    h.update(repr((list(map(str, events.columns)), hrf_model, list(map(int, fir_delays)), float(min_onset),
                   int(oversampling), len(events))).encode())
    for column in ("onset", "duration", "modulation"):
        if column in events.columns:
            h.update(np.ascontiguousarray(pd.to_numeric(events[column], errors="coerce").to_numpy(float)).tobytes())
    if "trial_type" in events.columns:
        h.update("\x00".join(map(str, events["trial_type"].tolist())).encode())
        h.update(str(events["trial_type"].isna().tolist()).encode())
    h.update(np.ascontiguousarray(frame_times, dtype=float).tobytes())
    return h.hexdigest()


def supported(hrf_model: Any) -> bool:
    """Whether :func:`task_regressors` handles this HRF model (else use nilearn's function)."""
    if not isinstance(hrf_model, str):
        return False
    return _helpers() is not None


def _helpers():
    """nilearn's event checks of ``_convolve_regressors`` (None if laid out differently)."""
    return compat.private("nilearn.glm.first_level.experimental_paradigm", "check_events",
                          "handle_modulation_of_duplicate_events")


def task_regressors(events: pd.DataFrame, hrf_model: str, frame_times: np.ndarray, fir_delays: Sequence[int],
                    min_onset: float, oversampling: int = 50) -> tuple[np.ndarray | None, list[str]]:
    """nilearn's ``_convolve_regressors(events, hrf_model, frame_times, fir_delays, min_onset)``.

    Returns
    -------
    matrix : ndarray of shape (n_scans, n_task) or None
    names : list of str
    """
    hrf_model = hrf_model.lower()
    key = _key(events, hrf_model, frame_times, fir_delays, min_onset, oversampling)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        matrix, names, caught = _CACHE[key]
        for category, message in caught:
            warnings.warn(message, category, stacklevel=2)
        return (None if matrix is None else matrix.copy()), list(names)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        matrix, names = _compute(events, hrf_model, frame_times, list(fir_delays), min_onset, oversampling)
    caught = [(w.category, str(w.message)) for w in record]
    for category, message in caught:
        warnings.warn(message, category, stacklevel=2)
    _CACHE[key] = (matrix, names, caught)
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return (None if matrix is None else matrix.copy()), list(names)


def _compute(events, hrf_model, frame_times, fir_delays, min_onset, oversampling):
    check_events, handle_modulation_of_duplicate_events = _helpers()
    checked = check_events(events)
    cleaned = checked if _no_duplicates(checked) else handle_modulation_of_duplicate_events(checked)
    trial_type = cleaned["trial_type"].to_numpy()
    onset = cleaned["onset"].to_numpy()
    duration = cleaned["duration"].to_numpy()
    modulation = cleaned["modulation"].to_numpy()
    matrix, names = None, []
    for condition in np.unique(trial_type):
        mask = trial_type == condition
        reg, reg_names = _regressor((onset[mask], duration[mask], modulation[mask]), hrf_model, frame_times,
                                    condition, oversampling, fir_delays, min_onset)
        names += reg_names
        matrix = reg if matrix is None else np.hstack((matrix, reg))
    return matrix, names


def _no_duplicates(events: pd.DataFrame) -> bool:
    """No two events share (trial_type, onset, duration) and no trial_type is missing.

    Then nilearn's ``handle_modulation_of_duplicate_events`` (a groupby with
    ``sort=False`` summing ``modulation``) returns the same events in the same order,
    and is skipped.
    """
    trial_type = events["trial_type"]
    if trial_type.isna().any():
        return False  # the groupby drops these rows
    keys = list(zip(trial_type.tolist(), events["onset"].tolist(), events["duration"].tolist()))
    return len(set(keys)) == len(keys)


def _regressor(exp_condition, hrf_model, frame_times, con_id, oversampling, fir_delays, min_onset):
    """nilearn's ``compute_regressor``, evaluated where its interpolation reads the convolution
    (:func:`nbdiag.design.hrf.compute_regressor_fast`: nilearn's sampling, kernels, interpolation formula and
    orthogonalisation; equal to nilearn to ~1e-12, exact zeros kept exact)."""
    if fir_delays is not None:
        fir_delays = [int(x) for x in fir_delays]
    condition = np.vstack([np.asarray(v, dtype=float) for v in exp_condition])
    return hrf.compute_regressor_fast(condition, hrf_model, frame_times, con_id=str(con_id),
                                      oversampling=int(oversampling), fir_delays=fir_delays, min_onset=min_onset)
