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
from nbdiag.errors import InputError
from nbdiag.findings import Finding
from nbdiag import codes

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


def read_events(path: Path) -> pd.DataFrame:
    """Read an events.tsv and check what nilearn requires of it.

    Raises
    ------
    InputError
        Naming the file, column, row, expected and found value, for: missing
        ``onset``/``duration`` columns, non-numeric or NaN values, negative
        durations, an empty table.
    """
    try:
        table = pd.read_csv(path, sep="\t", na_values=["n/a", "N/A", ""], keep_default_na=True)
    except FileNotFoundError:
        raise InputError("events file not found", file=path) from None
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"cannot read events file as TSV: {exc}", file=path) from None
    if len(table.columns) == 1 and "," in str(table.columns[0]):
        raise InputError(
            "events file is not tab-separated", file=path,
            expected="tab-separated columns onset, duration, trial_type", found=str(table.columns[0]),
        )
    for column in ("onset", "duration"):
        if column not in table.columns:
            raise InputError(
                f"events file has no '{column}' column", file=path, column=column,
                expected="columns onset, duration[, trial_type]", found=", ".join(map(str, table.columns)),
            )
        numeric = pd.to_numeric(table[column], errors="coerce")
        bad = numeric.isna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(
                f"events file has a missing or non-numeric '{column}' (nilearn refuses NaN {column}s)",
                file=path, column=column, row=row + 2, expected="a number",
                found=repr(table[column].iloc[row]),
            )
        table[column] = numeric.astype(float)
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
    findings: list[Finding] = []
    unmodeled: list[pd.DataFrame] = []
    negative = events["onset"] < 0
    if negative.any():
        rows = [int(i) + 2 for i in np.flatnonzero(negative.to_numpy())]
        findings.append(codes.EVENTS_INVALID.finding(
            severity="warn", title="Events with negative onsets",
            message=(f"{path}: {len(rows)} events have a negative onset (first at row {rows[0]}: "
                     f"{float(events['onset'][negative].iloc[0])} s). nilearn models them down to min_onset, "
                     "but onsets should count from the first volume kept in the image."),
            evidence={"file": str(path), "rows": rows[:20], "column": "onset"},
            fix="check the events timing reference (dummy scans removed by the scanner or by you?)",
        ))
    if "trial_type" not in events.columns:
        findings.append(codes.EVENTS_INVALID.finding(
            severity="warn", title="No trial_type column",
            message=f"{path}: no 'trial_type' column; nilearn models every row as one condition named 'dummy'.",
            evidence={"file": str(path), "columns": list(map(str, events.columns))},
        ))
    else:
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
        events["trial_type"] = events["trial_type"].astype(str)
        if settings.drop:
            dropped = events["trial_type"].isin(settings.drop)
            if dropped.any():
                unmodeled.append(_unmodeled(events.loc[dropped], "dropped by events drop setting"))
            events = events.loc[~dropped]
        if settings.rename:
            events["trial_type"] = events["trial_type"].replace(dict(settings.rename))

    rt_events = None
    rt_col = settings.rt_column
    if rt_col in events.columns:
        rt = pd.to_numeric(events[rt_col], errors="coerce")
        has = rt.notna()
        if has.any():
            rt_events = pd.DataFrame({
                "onset": events.loc[has, "onset"].to_numpy(float),
                "duration": rt[has].to_numpy(float),
                "trial_type": events.loc[has, "trial_type"].to_numpy() if "trial_type" in events else "dummy",
            })

    for transform in settings.transforms:
        if transform == "rtdur":
            if rt_col not in events.columns:
                raise InputError(
                    "the rtdur transform needs a response-time column", file=path, column=rt_col,
                    expected=f"a column '{rt_col}' (set rt_column in [events])",
                    found=", ".join(map(str, events.columns)),
                )
            events = rtdur(events, rt_col, settings.rtdur_name)
        else:
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
            events = after

    if "trial_type" in events.columns:
        bad = sorted({t for t in events["trial_type"].astype(str).unique() if not t.isidentifier()})
        if bad:
            findings.append(codes.TRIAL_TYPE_NOT_IDENTIFIER.finding(
                severity="warn",
                title="Trial types that are not Python identifiers",
                message=(f"trial types {', '.join(repr(b) for b in bad)} in {path} are not Python identifiers: "
                         "nilearn can fit them, but contrast expressions such as 'a - b' that name them fail. "
                         "Rename them (e.g. --events-rename 0BACK=zero_back)."),
                evidence={"file": str(path), "trial_types": bad},
                fix="rename the trial types with --events-rename OLD=NEW or [events] rename",
            ))
    removed = pd.concat(unmodeled, ignore_index=True) if unmodeled else pd.DataFrame(columns=UNMODELED_COLUMNS)
    return EventsResult(events=events.reset_index(drop=True), unmodeled=removed,
                        rt_events=rt_events, findings=tuple(findings))


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
    late = events["onset"] >= end
    early = events["onset"] < frame_times[0] + min_onset
    long_ = (events["onset"] < end) & (events["onset"] + events["duration"] > end)
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
    if long_.any():
        findings.append(codes.EVENTS_OUTSIDE_RUN.finding(
            severity="info", title="Events that run past the end of the run",
            message=f"{int(long_.sum())} events end after the last volume ({end:.1f} s); they are cut at the run end.",
            evidence={"file": str(path), "n_truncated": int(long_.sum()), "run_end_s": end},
        ))
    return findings
