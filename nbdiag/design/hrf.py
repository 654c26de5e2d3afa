"""Fast drop-in for nilearn's ``compute_regressor`` (same numbers to ~1e-12).

nilearn (``nilearn.glm.first_level.hemodynamic_models.compute_regressor``)
builds the event time course on a grid ``oversampling`` times finer than the
TR (``_sample_condition``: +v at each onset index, -v at each offset index,
cumulative sum), convolves it with the HRF kernel(s) by direct
``np.convolve`` (O(n_high_res x kernel_length), ~5 ms per kernel for a 500-scan
run), linearly interpolates the result at the frame times (``interp1d``),
and orthogonalises derivative / dispersion columns.

:func:`compute_regressor_fast` computes the same thing but evaluates the
convolution only where the interpolation reads it (the two high-res samples
bracketing every frame time). With ``hr = cumsum(delta)`` and ``H = cumsum(h)``
(``H_end = H[L-1]`` for a kernel of length ``L``)::

    (hr * h)[k] = hr[k-L+1] * H_end + sum_{k-L+1 < i <= k} delta[i] * H[k-i]

(the first term is 0 when ``k < L-1``). ``delta`` has at most two non-zeros per
event, so each frame costs O(events in the last L samples). When that
would exceed a dense FFT (many events), the full convolution is done with
``scipy.signal.fftconvolve`` instead. Everything else (the high-res grid, the
onset/offset indices and the min_onset warning, the kernels, the
interpolation formula, ``orthogonalize``, the names) is nilearn's own code or
an exact transcription of it.

Memoisation (module-level state, used by the design build and the diagnostics): kernels are
memoised per ``(hrf_model, t_r, oversampling, fir_delays)``, the high-res grid per
``(frame times, min_onset, oversampling)`` (8 entries) and results per
complete input (a 128-entry LRU keyed by the *values* of every argument: frame
times and condition bytes, model, delays, min_onset), because the what-if
re-audits rebuild the same signals. Per run, the parts every regressor shares are made
once: the frame step, the grid's interpolation plan, the zero-padded kernels, nilearn's
regressor names, and the plain model's column, which a model with derivatives reuses as its
first (canonical) column (the columns are computed one by one, so it is the same column).
Every function memoised is pure, the key holds every input and the stored arrays are
read-only or copied on the way out, so a hit returns exactly what a fresh call would: the
cache changes the speed, never a result (``tests/test_hrf_fast.py`` compares cold and warm
calls). :func:`clear_cache` empties them all (the benchmark starts every repeat cold).

Supported ``hrf_model``: ``glover``, ``spm`` (``+ derivative``,
``+ derivative + dispersion``), ``fir`` and ``None``. Anything else (custom
callables, lists) goes to nilearn's function unchanged, as does any input the
fast path does not recognise (nilearn then raises its own errors).
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from functools import lru_cache
from typing import Any, Sequence

import numpy as np
from nilearn.glm.first_level import compute_regressor
from scipy.signal import fftconvolve

from nbdiag.core.compat import hrf_internals

_NILEARN = hrf_internals()  # nilearn internals reused so the numbers are nilearn's own
_FAST_OK = _NILEARN is not None

SUPPORTED_HRF_MODELS = (
    "glover", "glover + derivative", "glover + derivative + dispersion",
    "spm", "spm + derivative", "spm + derivative + dispersion", "fir", None,
)

#: above this many (frame x event-edge) products, a dense FFT convolution is cheaper
_SPARSE_MAX_PRODUCTS = 4_000_000
_MEMO_SIZE = 128
_memo: "OrderedDict[tuple, tuple[np.ndarray, list[str]]]" = OrderedDict()


def _keep(cache: OrderedDict, key: Any, value: Any, size: int) -> None:
    """Store ``value`` in a bounded memo, dropping the oldest entry beyond ``size`` (every memo here)."""
    cache[key] = value
    if len(cache) > size:
        cache.popitem(last=False)


def clear_cache() -> None:
    """Forget cached kernels and memoised regressors (benchmarks use it)."""
    _memo.clear()
    _GRIDS.clear()
    _CANONICAL.clear()
    _INTERP.clear()
    _PADDED.clear()
    _STEPS.clear()
    _kernels.cache_clear()
    _regressor_names.cache_clear()


@lru_cache(maxsize=32)
def _kernels(hrf_model: str | None, t_r: float, oversampling: int,
             fir_delays: tuple[int, ...] | None) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """nilearn's kernels and their cumulative sums (read-only)."""
    out = []
    for h in _NILEARN.hrf_kernel(hrf_model, t_r, oversampling, None if fir_delays is None else list(fir_delays)):
        h = np.asarray(h, dtype=float)
        H = np.cumsum(h)
        h.setflags(write=False)
        H.setflags(write=False)
        out.append((h, H))
    return tuple(out)


@lru_cache(maxsize=256)
def _regressor_names(con_id: str, hrf_model: str | None, delays: tuple[int, ...] | None) -> tuple[str, ...]:
    """nilearn's regressor names (a pure function of its inputs, memoised; callers get a fresh list)."""
    return tuple(_NILEARN.regressor_names(con_id, hrf_model, fir_delays=None if delays is None else list(delays)))


def _nilearn_compute_regressor(*args, **kwargs):
    """nilearn's own ``compute_regressor`` (what the fast path falls back to)."""
    return compute_regressor(*args, **kwargs)


_GRIDS: "OrderedDict[tuple, np.ndarray]" = OrderedDict()


def _high_res_grid(frame_times: np.ndarray, min_onset: float, oversampling: int) -> np.ndarray:
    """nilearn's high-res grid (``_sample_condition``), memoised on its inputs' values (read-only).

    Every regressor of a run (the design's and the diagnostics') is sampled on the same grid.
    """
    key = (frame_times.tobytes(), frame_times.dtype.str, min_onset, oversampling)
    grid = _GRIDS.get(key)
    if grid is None:
        n_frames = frame_times.size
        n_frames_high_res = _NILEARN.n_frames_high_res(frame_times, min_onset, oversampling)
        grid = np.linspace(
            frame_times.min() + min_onset,
            frame_times.max() * (1 + 1.0 / (n_frames - 1)),
            np.rint(n_frames_high_res).astype(int),
        )
        grid.setflags(write=False)
        _keep(_GRIDS, key, grid, 8)
    return grid


def _sample_deltas(exp_condition, frame_times: np.ndarray, oversampling: int, min_onset: float):
    """nilearn ``_sample_condition`` before its ``cumsum``: the edge deltas and the high-res grid.

    Same steps as nilearn (grid, min_onset warning, onset/offset indices, zero-duration
    offsets moved one sample on); nilearn's two accumulation loops are ``np.add.at`` /
    ``np.subtract.at`` (unbuffered, in the same order). Returns ``(pos, dv, grid)``: the
    sorted grid indices with a non-zero delta and their values.
    """
    min_onset = float(min_onset)
    frame_times_high_res = _high_res_grid(frame_times, min_onset, oversampling)
    onsets, durations, values = tuple(map(np.asanyarray, exp_condition))
    if (onsets < frame_times[0] + min_onset).any():
        warnings.warn(
            ("Some stimulus onsets are earlier "
             f"than {frame_times[0] + min_onset} in the"
             " experiment and are thus not considered in the model."),
            UserWarning, stacklevel=3,
        )
    tmax = len(frame_times_high_res)
    delta = np.zeros(tmax, dtype=np.float64)
    t_onset = np.minimum(np.searchsorted(frame_times_high_res, onsets), tmax - 1)
    np.add.at(delta, t_onset, values)
    t_offset = np.minimum(np.searchsorted(frame_times_high_res, onsets + durations), tmax - 1)
    t_offset[(t_offset < tmax - 1) & (t_offset == t_onset)] += 1
    np.subtract.at(delta, t_offset, values)
    pos = np.unique(np.concatenate([t_onset, t_offset]).astype(np.int64))
    pos = pos[delta[pos] != 0]
    return pos, delta[pos], frame_times_high_res


def _full_regressor(pos: np.ndarray, dv: np.ndarray, size: int) -> np.ndarray:
    """nilearn's high-res regressor ``cumsum(delta)`` from the non-zero deltas."""
    delta = np.zeros(size)
    delta[pos] = dv
    return np.cumsum(delta)


_PADDED: "OrderedDict[int, tuple[np.ndarray, np.ndarray]]" = OrderedDict()


def _zero_padded(H: np.ndarray) -> np.ndarray:
    """``H`` with its last entry set to 0 (out-of-window pairs read it), read-only; memoised per kernel
    array (the memoised kernels are long-lived; the entry keeps its array alive, so ids are not reused)."""
    hit = _PADDED.get(id(H))
    if hit is not None and hit[0] is H:
        return hit[1]
    Hz = np.array(H, dtype=float)
    Hz[-1] = 0.0
    Hz.setflags(write=False)
    _keep(_PADDED, id(H), (H, Hz), 64)
    return Hz


def _conv_at(k: np.ndarray, pos: np.ndarray, dv: np.ndarray,
             kernels: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
    """``np.convolve(hr, h)[k]`` for the sample indices ``k``, one array per kernel (module docstring).

    ``pos``/``dv``: sorted indices and values of the non-zero deltas (``hr = cumsum(delta)``).
    ``hr[k - L + 1]`` is the running sum of the deltas up to that index (``cumsum(dv)``: the
    same sequential additions as the full ``cumsum``, whose other terms are zeros). Only the
    event edges inside each sample's kernel window (``k - L + 1 < i <= k``) are gathered:
    the window is a slice of the sorted edges found by ``searchsorted``, padded to the
    widest window (padding reads the kernel's ``L - 1`` entry, set to 0). Cost O(len(k) x
    edges per window); the terms left out are exact zeros.
    """
    k64 = np.asarray(k, dtype=np.int64)
    pos64 = np.asarray(pos, dtype=np.int64)
    dv = np.asarray(dv, dtype=float)
    running = np.concatenate(([0.0], np.cumsum(dv)))  # running[j] = sum of the first j deltas
    outs = []
    for _, H in kernels:
        L = H.size
        out = np.zeros(k.size)
        first = k64 - (L - 1)
        old = first >= 0
        if pos64.size:
            out[old] = running[np.searchsorted(pos64, first[old], side="right")] * H[-1]
        outs.append(out)
    if not pos64.size:
        return outs
    for L in sorted({H.size for _, H in kernels}):
        same = [j for j, (_, H) in enumerate(kernels) if H.size == L]
        padded = [_zero_padded(kernels[j][1]) for j in same]
        lo = np.searchsorted(pos64, k64 - (L - 1), side="right")  # first edge inside the window
        hi = np.searchsorted(pos64, k64, side="right")  # one past the last edge at or before k
        width = int((hi - lo).max(initial=0))
        if width == 0:
            continue
        step = max(1, _SPARSE_MAX_PRODUCTS // 4 // width)
        offsets = np.arange(width, dtype=np.int64)
        for s in range(0, k.size, step):
            kk, lo_s, hi_s = k64[s:s + step], lo[s:s + step], hi[s:s + step]
            edge = lo_s[:, None] + offsets[None, :]
            inside = edge < hi_s[:, None]
            edge = np.minimum(edge, pos64.size - 1)
            lag = np.where(inside, kk[:, None] - pos64.take(edge), L - 1)
            weights = np.where(inside, dv.take(edge), 0.0)
            for j, Hz in zip(same, padded):
                outs[j][s:s + step] += np.einsum("ij,ij->i", Hz.take(lag), weights)
    return outs


def compute_regressor_fast(
    exp_condition: Any,
    hrf_model: Any,
    frame_times: Any,
    con_id: str = "cond",
    oversampling: int = 50,
    fir_delays: Sequence[int] | None = None,
    min_onset: float = -24,
) -> tuple[np.ndarray, list[str]]:
    """Same inputs and outputs as ``nilearn.glm.first_level.compute_regressor``.

    Parameters
    ----------
    exp_condition : array-like, shape (3, n_events)
        Onsets, durations, amplitudes.
    hrf_model : str or None
        One of ``SUPPORTED_HRF_MODELS``; anything else is passed to nilearn.
    frame_times : array, shape (n_scans,)
    con_id, oversampling, fir_delays, min_onset
        As in nilearn.

    Returns
    -------
    computed_regressors : ndarray, shape (n_scans, n_regressors)
    reg_names : list of str
    """
    args = (exp_condition, hrf_model, frame_times)
    kwargs = dict(con_id=con_id, oversampling=oversampling, fir_delays=fir_delays, min_onset=min_onset)
    checked = _fast_inputs(exp_condition, hrf_model, frame_times, con_id, oversampling, fir_delays, min_onset)
    if checked is None:
        return _nilearn_compute_regressor(*args, **kwargs)
    ft, cond, os_, delays, mo = checked
    key = (hrf_model, ft.tobytes(), cond.tobytes(), cond.shape, con_id, os_, delays, mo)
    hit = _memo.get(key)
    if hit is not None:
        _memo.move_to_end(key)
        if (cond[0] < ft[0] + mo).any():  # nilearn warns on every call
            warnings.warn(("Some stimulus onsets are earlier "
                           f"than {ft[0] + mo} in the"
                           " experiment and are thus not considered in the model."),
                          UserWarning, stacklevel=2)
        return hit[0].copy(), list(hit[1])

    canonical_key = (_CANONICAL_OF.get(hrf_model), key[1], key[2], cond.shape, os_, mo)
    known = _CANONICAL.get(canonical_key) if canonical_key[0] is not None else None
    if known is None:
        first = None
        pos, dv, fths = _sample_deltas(cond, ft, os_, mo)
    else:  # the plain model's column and its sampling of the same events (nilearn warns on every call)
        first, pos, dv, fths = known
        if (cond[0] < ft[0] + mo).any():
            warnings.warn(("Some stimulus onsets are earlier "
                           f"than {ft[0] + mo} in the"
                           " experiment and are thus not considered in the model."),
                          UserWarning, stacklevel=2)
    kernels = _kernels(hrf_model, _frame_step(ft), os_, delays)
    regs = _regressors_at_frames(pos, dv, fths, ft, kernels if first is None else kernels[1:],
                                 shift=os_ - 1 if hrf_model == "fir" and os_ > 1 else 0)
    if regs is None:  # interp1d would raise: let nilearn say so
        return _nilearn_compute_regressor(*args, **kwargs)
    if first is not None:
        regs = np.column_stack([first, regs])
    elif hrf_model in ("glover", "spm"):
        _remember_canonical((hrf_model, key[1], key[2], cond.shape, os_, mo), regs[:, 0], pos, dv, fths)
    if hrf_model != "fir":
        regs = _NILEARN.orthogonalize(regs)
    names = list(_regressor_names(con_id, hrf_model, delays))
    _keep(_memo, key, (regs.copy(), list(names)), _MEMO_SIZE)
    return regs, names


#: the canonical column of a model with derivatives is the plain model's regressor (same kernel, same
#: sampling, computed column by column): a derivative model reuses the plain one computed for the design
_CANONICAL_OF = {"glover + derivative": "glover", "glover + derivative + dispersion": "glover",
                 "spm + derivative": "spm", "spm + derivative + dispersion": "spm"}
_CANONICAL: "OrderedDict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]" = OrderedDict()


def _remember_canonical(key: tuple, column: np.ndarray, pos: np.ndarray, dv: np.ndarray, grid: np.ndarray) -> None:
    """Keep a plain model's regressor and its sampling of the events (:func:`_sample_deltas`; read-only)
    for the derivative models of the same events (32 entries)."""
    kept = tuple(np.array(a) for a in (column, pos, dv)) + (grid,)
    for a in kept:
        a.setflags(write=False)
    _keep(_CANONICAL, key, kept, 32)


def _fast_inputs(exp_condition: Any, hrf_model: Any, frame_times: Any, con_id: Any, oversampling: Any,
                 fir_delays: Any, min_onset: Any) -> tuple[np.ndarray, np.ndarray, int, tuple[int, ...] | None,
                                                         float] | None:
    """``(frame_times, conditions, oversampling, fir_delays, min_onset)`` as the fast path uses them,
    or None when nilearn itself must compute the regressor (another HRF, odd or non-finite
    inputs, FIR without delays, frame times that do not increase)."""
    if not _FAST_OK or not (hrf_model is None or isinstance(hrf_model, str)) \
            or hrf_model not in SUPPORTED_HRF_MODELS or not isinstance(con_id, str):
        return None
    try:
        ft = np.asarray(frame_times, dtype=float)
        cond = np.asarray(exp_condition, dtype=float)
        os_ = int(oversampling)
        delays = None if fir_delays is None else tuple(int(x) for x in fir_delays)
        mo = float(min_onset)
        ok = (ft.ndim == 1 and ft.size >= 2 and cond.ndim == 2
              and cond.shape[0] == 3 and np.all(np.isfinite(cond)) and os_ >= 1
              and (hrf_model != "fir" or (delays is not None and len(delays) > 0)))
    except (TypeError, ValueError):
        return None
    if not ok:
        return None
    t_r = _frame_step(ft)
    if not t_r > 0:  # also False for NaN: frame times not all finite
        return None
    return ft, cond, os_, delays, mo


_STEPS: "OrderedDict[bytes, float]" = OrderedDict()


def _frame_step(ft: np.ndarray) -> float:
    """nilearn's ``_calculate_tr`` (the smallest frame step), NaN when a frame time is not finite;
    memoised per frame times (every regressor of a run asks for the same)."""
    key = ft.tobytes()
    step = _STEPS.get(key)
    if step is None:
        step = float(np.min(np.diff(ft))) if np.all(np.isfinite(ft)) else float("nan")
        _keep(_STEPS, key, step, 16)
    return step


_INTERP: "OrderedDict[tuple, tuple]" = OrderedDict()


def _interpolation(fths: np.ndarray, ft: np.ndarray, shift: int) -> tuple | None:
    """scipy ``interp1d`` (linear) of the high-res grid at the frame times, the parts that do not depend
    on the regressor: ``(lo, hi, grid indices read by the convolution, ft - x_lo, x_hi - x_lo)``.

    None when a frame time lies outside the grid. Memoised per grid (the memoised grid object,
    kept alive by the entry), frame times and shift: every regressor of a run reads the same.
    """
    key = (id(fths), ft.tobytes(), shift)
    hit = _INTERP.get(key)
    if hit is not None and hit[0] is fths:
        return hit[1]
    grid = fths[: -shift] if shift else fths
    if ft.min() < grid[0] or ft.max() > grid[-1]:
        plan = None
    else:  # searchsorted, clip to [1, len-1], slope form
        hi = np.clip(np.searchsorted(grid, ft), 1, len(grid) - 1).astype(int)
        lo = hi - 1
        x_lo, x_hi = grid[lo], grid[hi]
        plan = (lo, hi, np.concatenate([lo, hi]) + shift, ft - x_lo, x_hi - x_lo)
        for a in plan:
            a.setflags(write=False)
    _keep(_INTERP, key, (fths, plan), 16)
    return plan


def _regressors_at_frames(pos: np.ndarray, dv: np.ndarray, fths: np.ndarray, ft: np.ndarray,
                          kernels: list, shift: int) -> np.ndarray | None:
    """The convolved regressors sampled at the frame times, one column per kernel.

    As nilearn: the oversampled convolution, linearly interpolated (scipy ``interp1d``) at
    ``ft``; ``shift`` drops the FIR's last ``oversampling - 1`` grid points. Sparse sums over
    the events when they are few, an FFT convolution otherwise. None when a frame time lies
    outside the grid (nilearn raises there).
    """
    plan = _interpolation(fths, ft, shift)
    if plan is None:
        return None
    lo, hi, both_at, ft_minus_lo, dx = plan
    n_pos = int(pos.size)
    sparse = 2 * ft.size * max(n_pos, 1) <= _SPARSE_MAX_PRODUCTS
    if sparse:
        both = _conv_at(both_at, pos, dv, kernels)
        pairs = [(b[: lo.size], b[lo.size:]) for b in both]
    else:
        pairs = []
        hr = _full_regressor(pos, dv, fths.size)
        for h, _ in kernels:
            full = fftconvolve(hr, h)[: hr.size]
            pairs.append((full[lo + shift], full[hi + shift]))
    cols = []
    for y_lo, y_hi in pairs:
        slope = (y_hi - y_lo) / dx
        cols.append(slope * ft_minus_lo + y_lo)
    return np.column_stack(cols)
