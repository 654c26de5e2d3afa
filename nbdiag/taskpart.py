"""The task part of a design, as nilearn computes it, built once per timing and settings.

``make_first_level_design_matrix`` spends most of its time convolving each
condition's 50×-oversampled boxcar with the HRF (``numpy.convolve``, direct
summation). :func:`task_regressors` follows nilearn's ``_convolve_regressors`` /
``compute_regressor`` step by step with nilearn's own helpers (event checks,
sampling, kernels, resampling, orthogonalisation, names) but convolves by FFT
(``scipy.signal.fftconvolve``: the same sum, equal to ~1e-15 relative), and
memoises the result per (events, HRF model, frame times, FIR delays, min_onset):
variants that share a timing file and an HRF (e.g. the same events under
different confound strategies) build it once. nilearn's warnings raised while
building it are replayed on every use, so each run's record lists them.

The rest of the design (confounds, drift, ``full_rank``) is left to nilearn:
:func:`nbdiag.design.build_design` passes the task part to
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

_CACHE: "OrderedDict[str, tuple[np.ndarray | None, list[str], list[tuple[type, str]]]]" = OrderedDict()
_CACHE_SIZE = 16
#: HRF kernels per (model, t_r, oversampling, FIR delays): pure functions of these
_KERNELS: dict[tuple, list[np.ndarray]] = {}


def clear_cache() -> None:
    """Forget every memoised task part and kernel."""
    _CACHE.clear()
    _KERNELS.clear()


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


_HRF_NAMES = ("_calculate_tr", "_hrf_kernel", "_regressor_names", "_resample_regressor", "_sample_condition",
              "orthogonalize")


def _helpers():
    """nilearn's pieces of ``_convolve_regressors`` / ``compute_regressor`` (None if laid out differently)."""
    from nbdiag import compat

    events = compat.private("nilearn.glm.first_level.experimental_paradigm", "check_events",
                            "handle_modulation_of_duplicate_events")
    hrf = compat.private("nilearn.glm.first_level.hemodynamic_models", *_HRF_NAMES)
    return None if events is None or hrf is None else (events, hrf)


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
    (check_events, handle_modulation_of_duplicate_events), _ = _helpers()
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
    """nilearn's ``compute_regressor`` with an FFT convolution."""
    _calculate_tr, _hrf_kernel, _regressor_names, _resample_regressor, _sample_condition, orthogonalize = \
        _helpers()[1]
    from scipy.signal import fftconvolve

    if fir_delays is not None:
        fir_delays = [int(x) for x in fir_delays]
    oversampling = int(oversampling)
    t_r = _calculate_tr(frame_times)
    hr_regressor, frame_times_high_res = _sample_condition(exp_condition, frame_times, oversampling, min_onset)
    kernel_key = (hrf_model, float(t_r), oversampling, None if fir_delays is None else tuple(fir_delays))
    if kernel_key not in _KERNELS:
        _KERNELS[kernel_key] = [np.asarray(h, dtype=float) for h in _hrf_kernel(hrf_model, t_r, oversampling,
                                                                               fir_delays)]
    hkernel = _KERNELS[kernel_key]
    n = hr_regressor.size
    conv_reg = np.array([fftconvolve(hr_regressor, h)[:n] for h in hkernel])
    # where no non-zero sample meets the kernel's support, the direct sum is exactly 0: keep it exact
    # (FFT leaves ~1e-16 there), e.g. before the first event and in long gaps
    counts = np.concatenate(([0], np.cumsum(hr_regressor != 0)))
    for row, h in zip(conv_reg, hkernel):
        support = np.flatnonzero(h)
        if support.size == 0:
            row[:] = 0.0
        elif support[-1] - support[0] + 1 == support.size:  # contiguous: a window count from the cumsum
            t = np.arange(n)
            hi = np.clip(t - support[0] + 1, 0, n)
            lo = np.clip(t - support[-1], 0, n)
            row[counts[hi] - counts[lo] == 0] = 0.0
        else:
            overlap = fftconvolve((hr_regressor != 0).astype(float), (h != 0).astype(float))[:n]
            row[overlap < 0.5] = 0.0
    if hrf_model == "fir" and oversampling > 1:
        computed = _resample_regressor(conv_reg[:, oversampling - 1:], frame_times_high_res[: 1 - oversampling],
                                       frame_times)
    else:
        computed = _resample_regressor(conv_reg, frame_times_high_res, frame_times)
    if hrf_model != "fir":
        computed = orthogonalize(computed)
    return computed, _regressor_names(con_id, hrf_model, fir_delays=fir_delays)
