"""Where is the implicit baseline? Scan classes and baseline epochs.

A single-condition contrast such as ``zero_back`` compares the condition with
whatever the model leaves unmodelled (the *implicit baseline*). This module
says what that is, scan by scan and epoch by epoch.

Rules (documented contract of this module)
------------------------------------------
Timeline (stimulus time, seconds)
    The run spans ``[0, n_scans_total * t_r)``. A modelled event occupies
    ``[onset, onset + max(duration, t_r))`` (events shorter than one TR
    occupy one TR, so impulse events are not invisible). The baseline is the
    complement of the union of modelled events inside the run.
Epochs
    Each baseline gap is cut into pieces at the boundaries of unmodelled
    events (``context.unmodeled_events``) and of the flagged non-steady-state
    volumes still in the design (volume ``v`` spans ``[v t_r, (v+1) t_r)``).
    A gap that ends at a *block onset* is also cut ``pre_block_seconds``
    before that onset. A *block* is a run of consecutive modelled events of
    one condition of interest (not rest-like, not the RT regressor), each
    starting less than ``short_gap_seconds`` after the previous one ends,
    spanning at least ``block_min_seconds`` (n-back blocks of trials; a
    single long event counts too).
    A piece's ``kind`` is, in order of priority: ``nonsteady``;
    ``unmodeled_event``; ``short_gap`` with ``position: "pre_block"`` (the
    piece lies in the last ``pre_block_seconds`` of a gap that ends at a block
    onset with no modelled event in between: where a cue/instruction screen
    sits when it is missing from events.tsv); ``run_edge`` (the piece touches
    the start or end of the run); ``short_gap`` with ``position:
    "transition"`` (its whole gap is shorter than ``short_gap_seconds`` and
    lies between two modelled events); ``fixation``. A gap that ends at a
    modelled non-block event (e.g. a modelled INSTRUCTION) is fixation.
    Position, not length, separates a cue gap from fixation: an 11-s
    fixation before a modelled cue and a missing 9.6-s cue are equally long.
    Adjacent pieces of the same kind, position and content are merged.
    ``n_scans`` counts design rows whose frame time falls in
    ``[start, start+duration)``.
Scan classes (BOLD time)
    Responses lag the stimulus. A design row at frame time ``t`` is classified
    by the stimulus timeline at ``t - HRF_LAG_S`` (4 s for the canonical
    HRFs, about where a block response crosses half its plateau; 0 s for
    ``fir`` or no HRF): ``nonsteady`` if the scan itself is flagged (never
    lagged), ``condition:<name>`` if a modelled event is active (the most
    recent one; an RT-duration regressor only if nothing else is), else the
    kind of the epoch piece, with ``s < 0`` read as ``run_edge``. A baseline
    scan of kind ``fixation`` within the first/last ``edge_fraction`` of the
    rows becomes ``run_edge``.
Without events (``context.events is None``)
    A row is active for a task column when the column reaches half its
    maximum there (derivative/dispersion columns and the RT regressor
    excluded); epochs are runs of inactive rows (``start`` = frame time of
    the first row, ``duration`` = rows × t_r).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from nbdiag.design.context import DesignContext
from nbdiag.core.findings import Finding
from nbdiag.core.thresholds import Thresholds
from nbdiag.core import codes
from nbdiag.diagnostics._linalg import column_values

#: Seconds between stimulus and BOLD used to classify scans (canonical HRFs).
HRF_LAG_S = 4.0

#: Name tokens that mark a rest-like condition (case-insensitive). A condition
#: is rest-like only by its name or by the user's ``rest_conditions`` setting,
#: never by elimination (e.g. "the longest condition").
REST_WORDS = (
    "fixation", "fix", "fixate", "fixcross", "cross", "crosshair", "rest", "resting", "baseline", "control",
    "ctrl", "iti", "isi", "null", "blank", "pause", "off", "jitter", "intertrial", "interstimulus", "idle",
    "wait", "break", "interval", "gap", "empty",
)

_DERIV_SUFFIXES = ("_derivative", "_dispersion")


def _validate(design: pd.DataFrame, roles: dict[str, str]) -> None:
    if not isinstance(design, pd.DataFrame):
        raise TypeError(f"design must be a pandas DataFrame indexed by frame times; got {type(design).__name__}")
    missing = [c for c in design.columns if c not in roles]
    if missing:
        raise ValueError(
            f"roles must give a role for every design column; missing: {missing}"
        )


def hrf_lag(context: DesignContext) -> float:
    """Stimulus-to-BOLD lag used for scan classification (seconds)."""
    model = (context.hrf_model or "").lower() if isinstance(context.hrf_model, str) else ""
    if not model or model.startswith("fir"):
        return 0.0
    return HRF_LAG_S


def original_index(design: pd.DataFrame, context: DesignContext) -> np.ndarray:
    """Original scan index of each design row (``context.scan_index`` or 0..n-1)."""
    n = len(design)
    if context.scan_index is None:
        return np.arange(n)
    idx = np.asarray(context.scan_index, dtype=int)
    if idx.size != n:
        raise ValueError(
            f"context.scan_index must have one entry per design row ({n}); got {idx.size}"
        )
    return idx


def n_scans_total(design: pd.DataFrame, context: DesignContext) -> int:
    """Scans in the image (before any sample mask)."""
    if context.n_scans_total is not None:
        return int(context.n_scans_total)
    if context.scan_index is not None and len(context.scan_index):
        return int(max(context.scan_index)) + 1
    return len(design)


def present_nonsteady(design: pd.DataFrame, context: DesignContext) -> np.ndarray:
    """Boolean per row: the row is a flagged non-steady-state volume."""
    flagged = set(int(v) for v in context.nonsteady_volumes)
    return np.array([i in flagged for i in original_index(design, context)], dtype=bool)


def _intervals(events: pd.DataFrame | None, t_r: float) -> list[tuple[float, float, str]]:
    if events is None or len(events) == 0:
        return []
    types = events["trial_type"].astype(str).tolist() if "trial_type" in events else ["dummy"] * len(events)
    onset = events["onset"].to_numpy(dtype=float)
    # onset + max(duration, t_r), elementwise (np.maximum keeps a NaN duration like max() does)
    end = onset + np.maximum(events["duration"].to_numpy(dtype=float), float(t_r))
    return list(zip(onset.tolist(), end.tolist(), types))


def _union(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[list[float]] = []
    for a, b in sorted(intervals):
        if merged and a <= merged[-1][1] + 1e-9:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [(a, b) for a, b in merged]


def _gaps(covered: list[tuple[float, float]], t0: float, t1: float) -> list[tuple[float, float]]:
    gaps, cur = [], t0
    for a, b in _union(covered):
        a, b = max(a, t0), min(b, t1)
        if b <= a:
            continue
        if a > cur + 1e-9:
            gaps.append((cur, a))
        cur = max(cur, b)
    if t1 > cur + 1e-9:
        gaps.append((cur, t1))
    return gaps


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def _rt_name(design: pd.DataFrame, roles: dict[str, str], context: DesignContext) -> str | None:
    if context.rt_regressor:
        return context.rt_regressor
    for col in design.columns:
        if roles.get(col) == "task" and re.search(r"rt_?dur", col, re.IGNORECASE):
            return col
    return None


def _condition_columns(design: pd.DataFrame, roles: dict[str, str]) -> list[str]:
    return [c for c in design.columns if roles.get(c) == "task" and not c.endswith(_DERIV_SUFFIXES)]


@dataclass(frozen=True)
class _Timeline:
    pieces: list[dict[str, Any]]
    gaps: list[tuple[float, float]]
    modeled: list[tuple[float, float, str]]


@dataclass(frozen=True)
class _TimelineInputs:
    """What both timelines (with and without non-steady cuts) are built from."""

    t_r: float
    run_end: float
    modeled: list[tuple[float, float, str]]
    gaps: list[tuple[float, float]]
    unmod: list[tuple[float, float, str]]
    onsets: list[float]


def _timeline_inputs(design: pd.DataFrame, context: DesignContext, thresholds: Thresholds) -> _TimelineInputs:
    t_r = float(context.t_r)
    run_end = n_scans_total(design, context) * t_r
    modeled = _intervals(context.events, t_r)
    gaps = _gaps([(a, b) for a, b, _ in modeled], 0.0, run_end)
    unmod = _intervals(context.unmodeled_events, 0.0) if context.unmodeled_events is not None else []
    unmod = [(a, b, t) for a, b, t in unmod if b > a]
    onsets = block_onsets(context, thresholds, _rt_name_ctx(context))
    return _TimelineInputs(t_r, run_end, modeled, gaps, unmod, onsets)


def _timeline(design: pd.DataFrame, context: DesignContext, thresholds: Thresholds,
              with_nonsteady: bool, inputs: _TimelineInputs | None = None) -> _Timeline:
    inp = inputs if inputs is not None else _timeline_inputs(design, context, thresholds)
    t_r, run_end, modeled, gaps, unmod, onsets = inp.t_r, inp.run_end, inp.modeled, inp.gaps, inp.unmod, inp.onsets
    ns_int: list[tuple[float, float]] = []
    if with_nonsteady:
        idx = original_index(design, context)[present_nonsteady(design, context)]
        ns_int = _union([(v * t_r, (v + 1) * t_r) for v in idx])
    pre_s = float(thresholds.pre_block_seconds)
    pieces: list[dict[str, Any]] = []
    for g0, g1 in gaps:
        cuts = {g0, g1}
        pre_lo = g1  # start of the pre-block window in this gap (none when == g1)
        if pre_s > 0 and any(abs(g1 - o) < 1e-6 for o in onsets):
            pre_lo = max(g0, g1 - pre_s)
            if g0 < pre_lo < g1:
                cuts.add(pre_lo)
        for a, b, _ in unmod:
            cuts.update(x for x in (a, b) if g0 < x < g1)
        for a, b in ns_int:
            cuts.update(x for x in (a, b) if g0 < x < g1)
        bounds = sorted(cuts)
        touches_edge = g0 <= 1e-9 or g1 >= run_end - 1e-9
        in_gap = [(a, b) for a, b, _ in unmod if _overlap(a, b, g0, g1) > 0]
        zone_lo = min([a for a, _ in in_gap], default=g1) if g0 <= 1e-9 else -np.inf
        zone_hi = max([b for _, b in in_gap], default=g0) if g1 >= run_end - 1e-9 else np.inf
        borders_event = bool(modeled)
        for a, b in zip(bounds[:-1], bounds[1:]):
            if b - a <= 1e-9:
                continue
            mid = 0.5 * (a + b)
            contains = sorted({t for u0, u1, t in unmod if u0 <= mid < u1})
            position = None
            if any(n0 <= mid < n1 for n0, n1 in ns_int):
                kind = "nonsteady"
            elif contains:
                kind = "unmodeled_event"
            elif a >= pre_lo - 1e-9 and pre_lo < g1:
                kind, position = "short_gap", "pre_block"
            elif b <= zone_lo + 1e-9 or a >= zone_hi - 1e-9:
                kind = "run_edge"
            elif (g1 - g0) < thresholds.short_gap_seconds and borders_event and not touches_edge:
                kind, position = "short_gap", "transition"
            else:
                kind = "fixation"
            if pieces and pieces[-1]["kind"] == kind and pieces[-1]["contains"] == contains \
                    and pieces[-1]["position"] == position and abs(pieces[-1]["end"] - a) < 1e-9:
                pieces[-1]["end"] = b
            else:
                pieces.append({"start": a, "end": b, "kind": kind, "contains": contains, "position": position})
    return _Timeline(pieces=pieces, gaps=gaps, modeled=modeled)


def _rt_name_ctx(context: DesignContext) -> str | None:
    if context.rt_regressor:
        return context.rt_regressor
    if context.events is None or not len(context.events):
        return None
    for tt in sorted(set(context.events["trial_type"].astype(str).tolist())):
        if re.search(r"rt_?dur", tt, re.IGNORECASE):
            return tt
    return None


def block_onsets(context: DesignContext, thresholds: Thresholds, rt_name: str | None = None) -> list[float]:
    """Onsets (s) of the blocks of conditions of interest (see the module doc).

    Consecutive modelled events of one condition (sorted by onset, ignoring
    the RT regressor's events and rest-like conditions) belong to one block
    while each starts less than ``short_gap_seconds`` after the end of the
    previous one and no other condition's event starts in between; a block
    counts when it spans at least ``block_min_seconds``.
    """
    if context.events is None or not len(context.events):
        return []
    t_r = float(context.t_r)
    user_rest = set(context.rest_conditions)
    ivs = sorted((a, b, t) for a, b, t in _intervals(context.events, t_r)
                 if t != rt_name and not _rest_like_by_name(t) and t not in user_rest)
    out: list[float] = []
    cur: list[float] | None = None  # [start, end]
    cur_t = None
    for a, b, t in ivs:
        if cur is not None and t == cur_t and a - cur[1] < thresholds.short_gap_seconds:
            cur[1] = max(cur[1], b)
            continue
        if cur is not None and cur[1] - cur[0] >= thresholds.block_min_seconds - 1e-9:
            out.append(cur[0])
        cur, cur_t = [a, b], t
    if cur is not None and cur[1] - cur[0] >= thresholds.block_min_seconds - 1e-9:
        out.append(cur[0])
    return out


def _active_conditions(s: np.ndarray, modeled: list[tuple[float, float, str]],
                       rt_name: str | None) -> list[str | None]:
    """Active modelled condition at each stimulus time in ``s`` (None if none).

    Among the events with ``onset <= s < end``: the non-RT event with the
    largest onset (the first such event in ``modeled`` order on ties); if
    there is none, ``rt_name`` when an RT-regressor event is active.
    """
    s = np.asarray(s, dtype=float)
    if not modeled or s.size == 0:
        return [None] * s.size
    a = np.fromiter((m[0] for m in modeled), dtype=float, count=len(modeled))
    b = np.fromiter((m[1] for m in modeled), dtype=float, count=len(modeled))
    tt = [m[2] for m in modeled]
    is_rt = np.array([rt_name is not None and t == rt_name for t in tt], dtype=bool)
    col = s[:, None]
    hit = (a <= col) & (col < b)
    main = hit & ~is_rt
    has_main = main.any(axis=1)
    best = np.where(main, a, -np.inf).argmax(axis=1)  # first maximum = first event with the largest onset
    has_rt = (hit & is_rt).any(axis=1) if is_rt.any() else np.zeros(s.size, dtype=bool)
    return [tt[j] if m else (rt_name if r else None)
            for j, m, r in zip(best.tolist(), has_main.tolist(), has_rt.tolist())]


def _piece_kinds(s: np.ndarray, pieces: list[dict[str, Any]]) -> list[str]:
    """Kind of the first piece with ``start <= s < end`` at each time in ``s`` (``fixation`` if none)."""
    s = np.asarray(s, dtype=float)
    if not pieces or s.size == 0:
        return ["fixation"] * s.size
    ps = np.fromiter((p["start"] for p in pieces), dtype=float, count=len(pieces))
    pe = np.fromiter((p["end"] for p in pieces), dtype=float, count=len(pieces))
    col = s[:, None]
    hit = (ps <= col) & (col < pe)
    first = hit.argmax(axis=1)
    kinds = [p["kind"] for p in pieces]
    return [kinds[j] if h else "fixation" for j, h in zip(first.tolist(), hit.any(axis=1).tolist())]


def _edge_rows(n: int, edge_fraction: float) -> np.ndarray:
    k = int(np.ceil(edge_fraction * n)) if n else 0
    edge = np.zeros(n, dtype=bool)
    if k:
        edge[:k] = True
        edge[-k:] = True
    return edge


def _regressor_activity(design: pd.DataFrame, roles: dict[str, str], context: DesignContext) -> list[str | None]:
    rt_name = _rt_name(design, roles, context)
    cols = [c for c in _condition_columns(design, roles) if c != rt_name]
    out: list[str | None] = []
    if not cols:
        return [None] * len(design)
    vals = column_values(design, cols)
    peak = np.nanmax(np.abs(vals), axis=0)
    peak[peak == 0] = np.inf
    rel = vals / peak
    for row in rel:
        j = int(np.argmax(row))
        out.append(cols[j] if row[j] >= 0.5 else None)
    return out


def _classify(design, roles, context, thresholds):  # noqa: C901
    """Return (classes, active_mask, pieces, gaps) — shared by the public functions."""
    _validate(design, roles)
    n = len(design)
    times = np.asarray(design.index, dtype=float)
    t_r = float(context.t_r)
    lag = hrf_lag(context)
    ns_rows = present_nonsteady(design, context)
    edge = _edge_rows(n, thresholds.edge_fraction)
    unmod = _intervals(context.unmodeled_events, 0.0) if context.unmodeled_events is not None else []
    classes: list[str] = []
    active = np.zeros(n, dtype=bool)
    if context.events is not None:
        inputs = _timeline_inputs(design, context, thresholds)
        tl = _timeline(design, context, thresholds, with_nonsteady=False, inputs=inputs)
        rt_name = _rt_name(design, roles, context)
        s_all = times - lag
        conds = _active_conditions(s_all, tl.modeled, rt_name)
        kinds = _piece_kinds(s_all, tl.pieces)
        active = np.array([c is not None for c in conds], dtype=bool)
        for cond, kind, s, ns, ed in zip(conds, kinds, s_all.tolist(), ns_rows.tolist(), edge.tolist()):
            if ns:
                classes.append("nonsteady")
            elif cond is not None:
                classes.append(f"condition:{cond}")
            elif s < 0:
                classes.append("run_edge")
            else:
                classes.append("run_edge" if kind == "fixation" and ed else kind)
        # with no flagged volume in the design the non-steady cuts are empty: the same timeline
        pieces = (_timeline(design, context, thresholds, with_nonsteady=True, inputs=inputs).pieces
                  if ns_rows.any() else tl.pieces)
        return tuple(classes), active, pieces
    # Fallback: regressors.
    acts = _regressor_activity(design, roles, context)
    active = np.array([a is not None for a in acts], dtype=bool)
    pieces: list[dict[str, Any]] = []
    i = 0
    while i < n:
        if active[i]:
            i += 1
            continue
        j = i
        while j < n and not active[j]:
            j += 1
        pieces.append({"rows": (i, j), "start": float(times[i]), "end": float(times[i]) + (j - i) * t_r})
        i = j
    row_kind = ["fixation"] * n
    for p in pieces:
        i, j = p["rows"]
        dur = p["end"] - p["start"]
        touches = i == 0 or j == n
        kind = "run_edge" if touches else ("short_gap" if dur < thresholds.short_gap_seconds else "fixation")
        p["kind"] = kind
        p["position"] = "transition" if kind == "short_gap" else None
        p["contains"] = sorted({tt for a, b, tt in unmod
                                if _overlap(a + lag, b + lag, p["start"], p["end"]) > 0})
        for r in range(i, j):
            row_kind[r] = kind
    for i, t in enumerate(times):
        if ns_rows[i]:
            classes.append("nonsteady")
        elif acts[i] is not None:
            classes.append(f"condition:{acts[i]}")
        else:
            s = t - lag
            if any(a <= s < b for a, b, _ in unmod):
                classes.append("unmodeled_event")
            elif row_kind[i] == "fixation" and edge[i]:
                classes.append("run_edge")
            else:
                classes.append(row_kind[i])
    for p in pieces:
        p.pop("rows", None)
    return tuple(classes), active, pieces


def classify_scans(design: pd.DataFrame, roles: dict[str, str], context: DesignContext,
                   thresholds: Thresholds | None = None) -> tuple[str, ...]:
    """Classify every design row (see the module docstring for the rules).

    Parameters
    ----------
    design : DataFrame
        Design matrix indexed by frame times, nilearn column names.
    roles : dict
        Column -> role (``task``, ``confound``, ``spike``, ``drift``, ``constant``).
    context : DesignContext
        Run facts; ``events`` may be ``None`` (regressor fallback).
    thresholds : Thresholds, optional
        Uses ``short_gap_seconds`` and ``edge_fraction``.

    Returns
    -------
    tuple of str
        One of ``SCAN_CLASSES`` (``condition:<name>`` for modelled conditions) per row.
    """
    thresholds = thresholds or Thresholds()
    return _classify(design, roles, context, thresholds)[0]


def clear_cache() -> None:
    """Forget memoised condition-name checks (benchmarks use it)."""
    _rest_word.cache_clear()


@lru_cache(maxsize=4096)
@lru_cache(maxsize=4096)
def _rest_word(name: str) -> str | None:
    """The rest word of ``name`` (a token in ``REST_WORDS`` or a rest-like prefix), or None.

    Memoised (pure function of the string: the cache changes speed, never the answer).
    """
    low = name.lower()
    tokens = [t for t in re.split(r"[^a-z0-9]+", re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()) if t]
    for t in tokens:
        if t in REST_WORDS:
            return t
        stripped = t.rstrip("0123456789")
        if stripped in REST_WORDS:
            return stripped
    for prefix in ("fixation", "rest", "baseline", "control"):
        if low.startswith(prefix):
            return prefix
    return None


def _rest_like_by_name(name: str) -> bool:
    return _rest_word(name) is not None


def modeled_rest_conditions(design: pd.DataFrame, roles: dict[str, str], context: DesignContext) -> dict[str, str]:
    """Modelled conditions that are rest-like, with the rule that fired.

    A condition is rest-like when a token of its name is in ``REST_WORDS``
    (case-insensitive; ``FixCross``, ``fixation_1``, ``ITI``, ``control``):
    reason ``"name token '<word>'"``; or when the user lists it in the
    ``rest_conditions`` setting (``context.rest_conditions``): reason
    ``"setting rest_conditions"``. Never by elimination: conditions that
    tile the run are reported as "no implicit baseline left"
    (``baseline_scarce``), not by guessing which of them is rest.
    """
    rt_name = _rt_name(design, roles, context)
    out: dict[str, str] = {}
    if context.events is not None and len(context.events):
        names = sorted(set(map(str, context.events["trial_type"].tolist())))
    else:
        names = _condition_columns(design, roles)
    names = [n for n in names if n != rt_name]
    user = set(context.rest_conditions)
    for name in names:
        if name in user:
            out[name] = "setting rest_conditions"
        else:
            word = _rest_word(name)
            if word is not None:
                out[name] = f"name token '{word}'"
    return out


@dataclass(frozen=True)
class BaselineResult:
    """What the implicit baseline of a run is made of.

    Attributes
    ----------
    fraction : float
        Share of design rows where no modelled event is active (BOLD time).
    n_scans : int
        Number of such rows.
    epochs : tuple of dict
        ``start``, ``duration`` (s, stimulus time), ``n_scans``, ``kind``, ``contains``.
    scan_classes : tuple of str
        One class per design row.
    modeled_rest : tuple of str
        Modelled conditions that look like rest/fixation.
    n_long_epochs : int
        Epochs of kind ``fixation``/``run_edge`` at least ``baseline_epoch_seconds`` long.
    findings : tuple of Finding
    """

    fraction: float
    n_scans: int
    epochs: tuple[dict[str, Any], ...]
    scan_classes: tuple[str, ...]
    modeled_rest: tuple[str, ...]
    n_long_epochs: int
    findings: tuple[Finding, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready ``diagnostics.baseline`` section."""
        return {
            "fraction": float(self.fraction),
            "n_scans": int(self.n_scans),
            "epochs": [dict(e) for e in self.epochs],
            "scan_classes": list(self.scan_classes),
            "modeled_rest": list(self.modeled_rest),
            "n_long_epochs": int(self.n_long_epochs),
        }


def _scans_within(times: np.ndarray, pieces: list[dict[str, Any]]) -> list[int]:
    """Per piece, the number of frame times in ``[start - 1e-9, end - 1e-9)`` (two binary searches
    when the times increase, as a design's do; a count per piece otherwise)."""
    starts = np.array([float(p["start"]) for p in pieces], dtype=float) - 1e-9
    ends = np.array([float(p["end"]) for p in pieces], dtype=float) - 1e-9
    if times.size < 2 or bool(np.all(np.diff(times) > 0)):
        return np.maximum(np.searchsorted(times, ends, side="left") - np.searchsorted(times, starts, side="left"),
                          0).tolist()
    return [int(np.sum((times >= a) & (times < b))) for a, b in zip(starts.tolist(), ends.tolist())]


def _event_related(context: DesignContext, thresholds: Thresholds) -> bool:
    """Whether the modelled events form short episodes: events less than 1 s apart are merged (the trials
    of a block form one episode) and the median episode lasts less than ``baseline_epoch_seconds``. Such
    an event-related design's implicit baseline is the jittered time between events, so it needs no long
    rest epochs (the few-long-epochs rule is for block designs)."""
    ev = context.events
    if ev is None or not len(ev) or "duration" not in ev or "onset" not in ev:
        return False
    on = pd.to_numeric(ev["onset"], errors="coerce").to_numpy(dtype=float)
    dur = pd.to_numeric(ev["duration"], errors="coerce").to_numpy(dtype=float)
    ok = np.isfinite(on) & np.isfinite(dur)
    if not ok.any():
        return False
    order = np.argsort(on[ok], kind="stable")
    on, end = on[ok][order], (on + np.maximum(dur, 0.0))[ok][order]
    episodes, start, stop = [], on[0], end[0]
    for o, e in zip(on[1:], end[1:]):
        if o > stop + 1.0:
            episodes.append(stop - start)
            start, stop = o, e
        else:
            stop = max(stop, e)
    episodes.append(stop - start)
    return float(np.median(episodes)) < thresholds.baseline_epoch_seconds


def assess_baseline(design: pd.DataFrame, roles: dict[str, str], context: DesignContext,
                    thresholds: Thresholds | None = None) -> BaselineResult:
    """Describe the implicit baseline and flag scarce or modelled-away baselines.

    Findings
    --------
    ``baseline_scarce`` (warn)
        ``fraction < baseline_fraction_warn`` or, in a block design (median modelled
        event duration at least ``baseline_epoch_seconds``), fewer than
        ``baseline_min_epochs`` epochs (kind fixation/run_edge) of at least
        ``baseline_epoch_seconds``.
    ``baseline_modeled_rest`` (warn)
        A rest-like condition is modelled (see ``modeled_rest_conditions``).
    """
    thresholds = thresholds or Thresholds()
    classes, active, pieces = _classify(design, roles, context, thresholds)
    n_in = _scans_within(np.asarray(design.index, dtype=float), pieces)
    epochs = []
    for p, count in zip(pieces, n_in):
        start, end = float(p["start"]), float(p["end"])
        epochs.append({"start": round(start, 6), "duration": round(end - start, 6), "n_scans": count,
                       "kind": p["kind"], "contains": list(p["contains"]), "position": p.get("position")})
    n = len(design)
    n_base = int((~active).sum())
    fraction = n_base / n if n else float("nan")
    n_long = sum(1 for e in epochs if e["kind"] in ("fixation", "run_edge")
                 and e["duration"] >= thresholds.baseline_epoch_seconds - 1e-9)
    rest = modeled_rest_conditions(design, roles, context)
    tiled = fraction < thresholds.baseline_none_fraction
    findings = _scarce_findings(tiled, fraction, n_base, n, n_long, context, thresholds)
    findings += _modeled_rest_findings(rest, tiled, fraction, thresholds)
    return BaselineResult(fraction=float(fraction), n_scans=n_base, epochs=tuple(epochs),
                          scan_classes=classes, modeled_rest=tuple(sorted(rest)),
                          n_long_epochs=int(n_long), findings=tuple(findings))


def _scarce_findings(tiled: bool, fraction: float, n_base: int, n: int, n_long: int, context: DesignContext,
                     thresholds: Thresholds) -> list[Finding]:
    """``baseline_scarce`` (warn): no implicit baseline left (``tiled``), or too small a fraction of
    unmodelled scans, or (block designs) too few long unmodelled epochs."""
    findings: list[Finding] = []

    @lru_cache(maxsize=1)
    def few_long_epochs() -> bool:  # a block design with too few long rest epochs (asked at most once)
        return n_long < thresholds.baseline_min_epochs and not _event_related(context, thresholds)
    if tiled:
        rule = "conditions_cover_the_run"
        findings.append(Finding(
            code=codes.BASELINE_SCARCE.code, severity="warn", title="No implicit baseline is left",
            message=(f"The modelled conditions cover {1 - fraction:.0%} of the scans ({n_base} of {n} scans have "
                     f"no modelled event; below {thresholds.baseline_none_fraction:.0%} counts as none): no "
                     f"implicit baseline is left. A single-condition contrast then has almost nothing to be "
                     f"measured against: the constant is nearly the sum of the condition regressors, so the "
                     f"contrast is barely estimable and is decided by the few leftover scans and by slow "
                     f"signal (drift, settling) that the model cannot tell apart from the conditions."),
            evidence={"rule": rule, "fraction": fraction, "n_scans": n_base, "n_rows": n,
                      "n_long_epochs": n_long, "none_fraction": thresholds.baseline_none_fraction,
                      "fraction_warn": thresholds.baseline_fraction_warn},
            score=float(max(0.0, thresholds.baseline_fraction_warn - fraction) * 10
                        + max(0.0, thresholds.baseline_min_epochs - n_long)),
            fix="Interpret differential contrasts between the modelled conditions (e.g. two_back - zero_back), "
                "or leave the rest/fixation periods unmodelled so they form the implicit baseline.",
        ))
    elif fraction < thresholds.baseline_fraction_warn or few_long_epochs():
        parts = []
        rules = []
        if fraction < thresholds.baseline_fraction_warn:
            rules.append("fraction_below_warn")
            parts.append(f"only {fraction:.0%} of the scans have no modelled event "
                         f"(threshold {thresholds.baseline_fraction_warn:.0%})")
        if few_long_epochs():
            rules.append("few_long_epochs")
            parts.append(f"{n_long} unmodelled epoch(s) last at least "
                         f"{thresholds.baseline_epoch_seconds:g} s (need {int(thresholds.baseline_min_epochs)})")
        findings.append(codes.BASELINE_SCARCE.finding(
            severity="warn", title="Implicit baseline is scarce",
            message="The implicit baseline is scarce: " + "; ".join(parts)
                    + ". Single-condition contrasts are decided by few scans.",
            evidence={"rule": "+".join(rules), "fraction": fraction, "n_scans": n_base, "n_long_epochs": n_long,
                      "fraction_warn": thresholds.baseline_fraction_warn,
                      "min_epochs": thresholds.baseline_min_epochs,
                      "epoch_seconds": thresholds.baseline_epoch_seconds},
            score=float(max(0.0, thresholds.baseline_fraction_warn - fraction) * 10
                        + max(0.0, thresholds.baseline_min_epochs - n_long)),
            fix="Interpret differential contrasts (e.g. two_back - zero_back) or add fixation "
                "epochs of >= 10 s between blocks in the task design.",
        ))
    return findings


def _modeled_rest_findings(rest: dict[str, str], tiled: bool, fraction: float,
                           thresholds: Thresholds) -> list[Finding]:
    """``baseline_modeled_rest`` (warn) when a rest-like condition is modelled."""
    findings: list[Finding] = []
    if rest:
        names = sorted(rest)
        why = "; ".join(f"{k}: {rest[k]}" for k in names)
        left = ("so no implicit baseline is left" if tiled else
                f"so single-condition contrasts are measured against the {fraction:.0%} of scans left "
                f"unmodelled, not against {'it' if len(names) == 1 else 'them'}")
        findings.append(Finding(
            code=codes.BASELINE_MODELED_REST.code, severity="warn", title="A rest-like condition is modelled",
            message=f"{', '.join(names)} {'is' if len(names) == 1 else 'are'} rest-like ({why}) and modelled as "
                    f"condition(s), {left}.",
            evidence={"conditions": names, "reasons": {k: rest[k] for k in names}, "rule": {k: rest[k] for k in names},
                      "fraction": fraction, "no_baseline_left": bool(tiled)},
            score=float(1.0 + max(0.0, thresholds.baseline_fraction_warn - fraction) * 10),
            fix=f"Drop {', '.join(names)} from the events passed to FirstLevelModel.fit (so it "
                f"becomes the implicit baseline), or use contrasts against it, e.g. "
                f"'zero_back - {names[0]}'.",
        ))
    return findings
