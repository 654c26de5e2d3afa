"""Read events.tsv and apply event transforms (drop, rename, rtdur, plugins).

Every transform records the events it removes from the model, so the baseline
diagnostics can tell "listed in events.tsv but not modelled" apart from true
rest (e.g. ``INSTRUCTION`` rows dropped by ``--events-drop INSTRUCTION``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from nbdiag.config import EventSettings
from nbdiag.core.errors import InputError
from nbdiag.core.findings import Finding
from nbdiag.core.limits import Limits, too_large
from nbdiag.core import codes

UNMODELED_COLUMNS = ["onset", "duration", "trial_type", "reason"]


@dataclass(frozen=True)
class EventsResult:
    """Events as the model sees them, plus what was left out.

    Attributes
    ----------
    events : DataFrame
        Events passed to nilearn (all original columns kept, like the forum
        script does: nilearn ignores extra columns).
    unmodeled : DataFrame
        ``onset, duration, trial_type, reason`` of events removed from the model.
    rt_events : DataFrame or None
        Responded trials (``duration`` = response time), for RT diagnostics.
    findings : tuple of Finding
        Input findings (``events_invalid``, ``trial_type_not_identifier`` ...).
    """

    events: pd.DataFrame
    unmodeled: pd.DataFrame
    rt_events: pd.DataFrame | None = None
    findings: tuple[Finding, ...] = field(default_factory=tuple)


def read_events(path: Path, limits: Limits | None = None) -> pd.DataFrame:
    """Read an events.tsv and check what nilearn requires of it.

    Raises
    ------
    InputError
        Naming the file, column, row, expected and found value, for: missing
        ``onset``/``duration`` columns, non-numeric or NaN values, negative
        durations, an empty table, infinite onsets or durations, more rows than
        ``limits.max_event_rows`` (read up to the limit + 1 rows only).
    """
    limits = limits or Limits()
    try:
        table = pd.read_csv(path, sep="\t", na_values=["n/a", "N/A", ""], keep_default_na=True,
                            nrows=limits.max_event_rows + 1)
    except FileNotFoundError:
        raise InputError("events file not found", file=path, code=codes.INPUT_MISSING.code) from None
    except pd.errors.EmptyDataError:
        raise InputError("events file is empty", file=path, expected="a header row onset, duration[, trial_type]",
                         found="an empty file") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"events file is not UTF-8 text (byte {exc.start})", file=path,
                         expected="a UTF-8 tab-separated table", found="undecodable bytes") from None
    except (pd.errors.ParserError, OSError, ValueError) as exc:
        where = str(exc).split(".")[0] if isinstance(exc, pd.errors.ParserError) else type(exc).__name__
        raise InputError(f"cannot read events file as TSV ({where})", file=path,
                         expected="a tab-separated table", found="a file pandas cannot parse") from None
    if len(table) > limits.max_event_rows:
        raise InputError(too_large("event rows", len(table), limits.max_event_rows, "max_event_rows")
                         .replace(f": {len(table)} is", f": more than {limits.max_event_rows} is"),
                         file=path, code=codes.INPUT_TOO_LARGE.code, expected=f"at most {limits.max_event_rows} rows",
                         found=f"more than {limits.max_event_rows} rows")
    if len(table.columns) == 1 and "," in str(table.columns[0]):
        raise InputError(
            "events file is not tab-separated (its header holds commas, no tabs)", file=path,
            expected="tab-separated columns onset, duration, trial_type", found="one comma-separated column",
        )
    for column in ("onset", "duration"):
        if column not in table.columns:
            raise InputError(
                f"events file has no '{column}' column", file=path, column=column,
                expected="columns onset, duration[, trial_type]", found=", ".join(map(str, table.columns)),
            )
        parsed = table[column].dtype == np.float64  # parsed as numbers already (the usual case)
        numeric = table[column] if parsed else pd.to_numeric(table[column], errors="coerce")
        bad = np.isnan(numeric.to_numpy(dtype=float))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(
                f"events file has a missing or non-numeric '{column}' (nilearn refuses NaN {column}s)",
                file=path, column=column, row=row + 2, expected="a number",
                found=repr(table[column].tolist()[row]),
            )
        if not parsed:
            table[column] = numeric.astype(float)
        infinite = ~np.isfinite(table[column].to_numpy())
        if infinite.any():
            row = int(np.flatnonzero(infinite)[0])
            raise InputError(
                f"events file has an infinite '{column}'", file=path, column=column, row=row + 2,
                expected="a finite number of seconds", found=str(table[column].iloc[row]),
            )
    negative = table["duration"] < 0
    if negative.any():
        row = int(np.flatnonzero(negative.to_numpy())[0])
        raise InputError(
            "events file has a negative duration", file=path, column="duration", row=row + 2,
            expected="a duration >= 0", found=str(table["duration"].iloc[row]),
        )
    if table.empty:
        raise InputError("events file has no rows", file=path, expected="at least one event", found="0 rows")
    return table


def _unmodeled(rows: pd.DataFrame, reason: str) -> pd.DataFrame:
    out = pd.DataFrame({
        "onset": rows["onset"].astype(float).to_numpy(),
        "duration": rows["duration"].astype(float).to_numpy(),
        "trial_type": rows["trial_type"].astype(str).to_numpy() if "trial_type" in rows else "dummy",
        "reason": reason,
    })
    return out


def rtdur(events: pd.DataFrame, rt_column: str = "response_time", name: str = "RTDur") -> pd.DataFrame:
    """ConsDurRTDur (Mumford et al.): add an ``RTDur`` event per responded trial.

    Reproduces the forum post's code exactly: rows whose ``rt_column`` is not
    NaN are duplicated with ``duration`` = response time and ``trial_type`` =
    ``name``, concatenated and sorted by onset (stable).
    """
    if rt_column not in events.columns:
        raise KeyError(rt_column)
    rt = pd.to_numeric(events[rt_column], errors="coerce")
    responses = events.loc[~np.isnan(rt.to_numpy(dtype=float))].copy()
    responses.loc[:, "duration"] = rt[responses.index].astype(float)
    responses.loc[:, "trial_type"] = name
    out = pd.concat((events, responses))
    return out.sort_values(by="onset")


def load_plugin(spec: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Import ``package.module:function``.

    Raises
    ------
    InputError
        If the module or function cannot be imported.
    """
    module_name, _, func_name = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import failure is user input
        raise InputError(f"cannot import events transform module {module_name!r}: {exc}",
                         expected="an importable 'package.module:function'", found=spec) from None
    func = getattr(module, func_name, None)
    if not callable(func):
        raise InputError(f"events transform {spec!r}: module has no function {func_name!r}",
                         expected="an importable 'package.module:function'", found=spec)
    return func


def transform_events(table: pd.DataFrame, settings: EventSettings, *, path: Path | None = None) -> EventsResult:
    """Apply drop, rename and transforms; record what leaves the model.

    Parameters
    ----------
    table : DataFrame
        events.tsv as read by :func:`read_events` (not modified).
    settings : EventSettings
    path : Path, optional
        The events file, for messages.
    """
    events = table.copy()
    findings: list[Finding] = _negative_onsets(events, path)
    unmodeled: list[pd.DataFrame] = []
    events = _select_trial_types(events, settings, path, findings, unmodeled)
    rt_events = _rt_events(events, settings.rt_column)
    for transform in settings.transforms:
        events = _apply_transform(events, transform, settings, path, unmodeled)
    findings.extend(_not_identifiers(events, path))
    removed = pd.concat(unmodeled, ignore_index=True) if unmodeled else pd.DataFrame(columns=UNMODELED_COLUMNS)
    return EventsResult(events=events.reset_index(drop=True), unmodeled=removed,
                        rt_events=rt_events, findings=tuple(findings))


def _negative_onsets(events: pd.DataFrame, path: Path | None) -> list[Finding]:
    """A warning for events with a negative onset (nilearn models them down to ``min_onset``)."""
    negative = events["onset"] < 0
    if not negative.any():
        return []
    rows = [int(i) + 2 for i in np.flatnonzero(negative.to_numpy())]
    return [codes.EVENTS_INVALID.finding(
        severity="warn", title="Events with negative onsets",
        message=(f"{path}: {len(rows)} events have a negative onset (first at row {rows[0]}: "
                 f"{float(events['onset'][negative].iloc[0])} s). nilearn models them down to min_onset, "
                 "but onsets should count from the first volume kept in the image."),
        evidence={"file": str(path), "rows": rows[:20], "column": "onset"},
        fix="check the events timing reference (dummy scans removed by the scanner or by you?)",
    )]


def _select_trial_types(events: pd.DataFrame, settings: EventSettings, path: Path | None,
                        findings: list[Finding], unmodeled: list[pd.DataFrame]) -> pd.DataFrame:
    """``trial_type`` as nilearn reads it, then the drop and rename settings.

    No column: every row is ``dummy`` (nilearn's ``check_events``); ``n/a`` rows leave the
    model. Appends the findings and the unmodelled rows to the lists given.
    """
    if "trial_type" not in events.columns:
        findings.append(codes.EVENTS_INVALID.finding(
            severity="warn", title="No trial_type column",
            message=f"{path}: no 'trial_type' column; nilearn models every row as one condition named 'dummy'.",
            evidence={"file": str(path), "columns": list(map(str, events.columns))},
        ))
        # nilearn's check_events: warns and sets trial_type = "dummy" for every row
        events["trial_type"] = "dummy"
        return events
    missing = events["trial_type"].isna()
    if missing.any():
        unmodeled.append(_unmodeled(events.loc[missing].assign(trial_type="n/a"), "trial_type is n/a"))
        findings.append(codes.EVENTS_INVALID.finding(
            severity="warn", title="Events without a trial_type",
            message=(f"{path}: {int(missing.sum())} rows have trial_type 'n/a'; nbdiag leaves them out of the "
                     "model and counts them as unmodelled events (nilearn would make a condition named 'nan')."),
            evidence={"file": str(path), "rows": [int(i) + 2 for i in np.flatnonzero(missing.to_numpy())][:20]},
        ))
        events = events.loc[~missing]
    # non-string trial types (e.g. integers 1..12) keep their type: nilearn orders the
    # conditions by value (1, 2, ..., 12), not as strings (1, 10, 11, 12, 2, ...)
    numeric = pd.api.types.is_numeric_dtype(events["trial_type"]) and not pd.api.types.is_bool_dtype(
        events["trial_type"])
    as_str = events["trial_type"].astype(str)
    if not numeric or settings.transforms:  # transforms add string types (e.g. RTDur)
        events["trial_type"] = as_str
    if settings.drop:
        dropped = as_str.isin(settings.drop)
        if dropped.any():
            unmodeled.append(_unmodeled(events.loc[dropped], "dropped by events drop setting"))
        events, as_str = events.loc[~dropped], as_str.loc[~dropped]
    if settings.rename and as_str.isin(list(settings.rename)).any():
        events["trial_type"] = as_str.replace(dict(settings.rename))
    return events


def _rt_events(events: pd.DataFrame, rt_col: str) -> pd.DataFrame | None:
    """Events with ``duration`` = their response time (rows with one), for the RT diagnostics."""
    if rt_col not in events.columns:
        return None
    rt = pd.to_numeric(events[rt_col], errors="coerce")
    has = rt.notna()
    if not has.any():
        return None
    keep = has.to_numpy()
    return pd.DataFrame({
        "onset": events["onset"].to_numpy(float)[keep],
        "duration": rt.to_numpy(float)[keep],
        "trial_type": events["trial_type"].to_numpy()[keep] if "trial_type" in events else "dummy",
    })


def _apply_transform(events: pd.DataFrame, transform: str, settings: EventSettings, path: Path | None,
                     unmodeled: list[pd.DataFrame]) -> pd.DataFrame:
    """One transform (``rtdur`` or a plugin); rows a plugin removes are appended to ``unmodeled``."""
    rt_col = settings.rt_column
    if transform == "rtdur":
        if rt_col not in events.columns:
            raise InputError(
                "the rtdur transform needs a response-time column", file=path, column=rt_col,
                expected=f"a column '{rt_col}' (set rt_column in [events])",
                found=", ".join(map(str, events.columns)),
            )
        return rtdur(events, rt_col, settings.rtdur_name)
    func = load_plugin(transform)
    before = events
    try:
        after = func(before.copy())
    except Exception as exc:  # noqa: BLE001 - plugin code is user code
        raise InputError(f"events transform {transform!r} failed: {type(exc).__name__}: {exc}",
                         file=path) from None
    if not isinstance(after, pd.DataFrame) or not {"onset", "duration"} <= set(after.columns):
        raise InputError(f"events transform {transform!r} must return a DataFrame with onset and duration",
                         file=path, expected="DataFrame with onset, duration, trial_type",
                         found=type(after).__name__)
    if "trial_type" in before and "trial_type" in after:
        key = ["onset", "duration", "trial_type"]
        merged = before[key].merge(after[key].drop_duplicates(), on=key, how="left", indicator=True)
        gone = merged.loc[merged["_merge"] == "left_only", key]
        if len(gone):
            unmodeled.append(_unmodeled(gone, f"removed by transform {transform}"))
    return after


def _not_identifiers(events: pd.DataFrame, path: Path | None) -> list[Finding]:
    """A warning for trial types a contrast expression cannot name (not Python identifiers)."""
    if "trial_type" not in events.columns:
        return []
    bad = sorted({t for t in events["trial_type"].astype(str).unique() if not t.isidentifier()})
    if not bad:
        return []
    return [codes.TRIAL_TYPE_NOT_IDENTIFIER.finding(
        severity="warn",
        title="Trial types that are not Python identifiers",
        message=(f"trial types {', '.join(repr(b) for b in bad)} in {path} are not Python identifiers: "
                 "nilearn can fit them, but contrast expressions such as 'a - b' that name them fail. "
                 "Rename them (e.g. --events-rename 0BACK=zero_back)."),
        evidence={"file": str(path), "trial_types": bad},
        fix="rename the trial types with --events-rename OLD=NEW or [events] rename",
    )]


def events_outside_run(events: pd.DataFrame, frame_times: np.ndarray, t_r: float,
                       min_onset: float, path: Path | None = None) -> list[Finding]:
    """Findings for events nilearn will not model as written.

    nilearn ignores events that start before ``frame_times[0] + min_onset``
    (with a warning) and clamps events that start after the last frame to the
    end of its high-resolution grid.
    """
    findings: list[Finding] = []
    if events.empty:
        return findings
    end = float(frame_times[-1] + t_r)
    onset, duration = events["onset"].to_numpy(dtype=float), events["duration"].to_numpy(dtype=float)
    late = onset >= end
    early = onset < frame_times[0] + min_onset
    long_ = (onset < end) & (onset + duration > end)
    if late.any() or early.any():
        types = sorted(set(events.loc[late | early, "trial_type"].astype(str))) if "trial_type" in events else []
        findings.append(codes.EVENTS_OUTSIDE_RUN.finding(
            severity="warn", title="Events outside the run",
            message=(f"{int(late.sum())} events start after the run ends ({end:.1f} s) and {int(early.sum())} "
                     f"before {frame_times[0] + min_onset:.1f} s (min_onset); nilearn does not model them as "
                     f"written. Check the events file and the number of volumes ({len(frame_times)})."),
            evidence={"file": str(path), "n_after_end": int(late.sum()), "n_before_min_onset": int(early.sum()),
                      "run_end_s": end, "first_late_onset": float(events.loc[late, "onset"].min()) if late.any() else None,
                      "trial_types": types},
            fix="check that events.tsv belongs to this run and that onsets are in seconds from the first volume",
        ))
    run_length = end - float(frame_times[0])
    huge = duration > 2 * max(run_length, t_r)
    if huge.any():
        row = int(np.flatnonzero(huge)[0])
        findings.append(codes.EVENTS_INVALID.finding(
            severity="warn", title="Event durations longer than the run",
            message=(f"{int(huge.sum())} events last longer than twice the run ({run_length:.1f} s), e.g. "
                     f"{float(events['duration'].iloc[row]):.6g} s; nilearn cuts them at the run end, so the "
                     "regressor is a step, not a response. Check the unit (ms vs s) of the duration column."),
            evidence={"file": str(path), "column": "duration", "n_events": int(huge.sum()),
                      "max_duration_s": float(events["duration"].max()), "run_length_s": run_length},
            fix="check the duration column of the events file",
        ))
    if long_.any():
        findings.append(codes.EVENTS_OUTSIDE_RUN.finding(
            severity="info", title="Events that run past the end of the run",
            message=f"{int(long_.sum())} events end after the last volume ({end:.1f} s); they are cut at the run end.",
            evidence={"file": str(path), "n_truncated": int(long_.sum()), "run_end_s": end},
        ))
    return findings
