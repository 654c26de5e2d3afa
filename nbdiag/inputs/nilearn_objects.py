"""Runs from nilearn objects: what ``first_level_from_bids`` returns, or any ``FirstLevelModel``.

This adapter turns ``(model, run_imgs, events, confounds, sample_masks)`` into the
same run inputs the BIDS discovery produces (:class:`~nbdiag.inputs.bids.RunInputs`),
plus the in-memory tables the user will pass to ``FirstLevelModel.fit``:

* settings are read from the model object (``t_r``, ``slice_time_ref``, ``hrf_model``,
  ``drift_model``, ``high_pass``, ``drift_order``, ``fir_delays``, ``min_onset``; and, for
  the record, ``noise_model``, ``signal_scaling``, ``smoothing_fwhm``);
* ``n_scans`` comes from the image header (nibabel; no voxel data is read). When an image
  cannot be read (e.g. a DataLad file not fetched), the confounds' row count is used and
  the record says so; without confounds the run is refused with a message naming the image;
* events and confounds are used exactly as given (``DataFrame``, array or TSV path, as
  ``FirstLevelModel.fit`` accepts them), so the design equals ``model.design_matrices_``;
* when an image sits in an fMRIPrep folder, its confounds file is read (as
  ``load_confounds`` finds it) only to know which volumes fMRIPrep flagged as
  non-steady-state: ``first_level_from_bids`` drops that sample mask;
* a ConsDurRTDur regressor added by the user (rows duplicated with
  ``duration = response_time`` under one trial type, as in the forum post) is
  recognised, so the RT diagnostics treat it as the CLI's ``rtdur`` transform does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from nbdiag.config import EventSettings, ModelSettings, SettingsError, update_model
from nbdiag.core.errors import InputError
from nbdiag.inputs.bids import (
    ENTITY_ORDER,
    Resolved,
    RunInputs,
    _find_confounds,
    _own_t_r,
    bids_entities_of,
    read_n_scans,
)
from nbdiag.inputs.fmriprep import NSS_PATTERN, raw_motion, raw_signals, read_raw_confounds

#: ``FirstLevelModel`` attributes that shape the design, with their ``ModelSettings`` name.
DESIGN_ATTRIBUTES = ("t_r", "slice_time_ref", "hrf_model", "drift_model", "high_pass", "drift_order",
                     "fir_delays", "min_onset")
#: Attributes that do not change the design; recorded for reference.
OTHER_ATTRIBUTES = ("noise_model", "signal_scaling", "smoothing_fwhm", "standardize", "subject_label")

_LABEL_CHARS = re.compile(r"[^A-Za-z0-9]")


@dataclass
class GivenRun:
    """One run as the user will pass it to ``FirstLevelModel.fit``.

    Attributes
    ----------
    run : RunInputs
        Entities, image path, resolved t_r / slice_time_ref / n_scans (with sources).
    events : DataFrame
        The events exactly as given (the design is built from this table).
    confounds : DataFrame or None
        The confounds exactly as given (arrays get nilearn's ``confound_<i>`` names).
    sample_mask : ndarray or None
        The run's ``sample_masks`` entry.
    raw_confound_columns : tuple of str
        Columns of the fMRIPrep confounds file found next to the image (empty if none).
    nonsteady_volumes : tuple of int
        Volumes fMRIPrep flagged as non-steady-state in that file.
    rt_regressor : str or None
        Trial type recognised as a ConsDurRTDur regressor.
    model_info : dict
        Attributes read from the model object.
    fitted_design : DataFrame or None
        ``model.design_matrices_[i]`` when the model is already fitted.
    notes : list of str
    raw_motion : dict or None
        ``framewise_displacement`` / ``std_dvars`` / ``dvars`` of that file (motion per condition).
    raw_signals : dict
        ``global_signal`` / ``csf`` / ``white_matter`` of that file, for the measured
        diagnostics (as :func:`nbdiag.inputs.fmriprep.raw_signals`).
    """

    run: RunInputs
    events: pd.DataFrame | None
    confounds: pd.DataFrame | None
    sample_mask: np.ndarray | None = None
    raw_confound_columns: tuple[str, ...] = ()
    nonsteady_volumes: tuple[int, ...] = ()
    rt_regressor: str | None = None
    model_info: dict[str, Any] = field(default_factory=dict)
    fitted_design: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    raw_signals: dict[str, np.ndarray] = field(default_factory=dict)
    raw_motion: dict[str, np.ndarray] | None = None


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def model_info(model: Any) -> dict[str, Any]:
    """The design-relevant and reference attributes of a ``FirstLevelModel``."""
    return {name: _plain(getattr(model, name, None)) for name in DESIGN_ATTRIBUTES + OTHER_ATTRIBUTES}


def model_settings(model: Any) -> ModelSettings:
    """``ModelSettings`` read from a ``FirstLevelModel`` (fitted or not).

    Raises
    ------
    SettingsError
        If the object is not a ``FirstLevelModel``-like object, has no ``t_r``
        (nilearn's fit refuses it too), or holds a value nbdiag cannot audit
        (e.g. a custom HRF function); the message names the attribute.
    """
    missing = [a for a in DESIGN_ATTRIBUTES if not hasattr(model, a)]
    if missing:
        raise SettingsError(
            f"model: expected a nilearn FirstLevelModel; got {type(model).__name__} without "
            f"attribute(s) {', '.join(missing)}")
    if model.t_r is None:
        raise SettingsError("model.t_r: expected the repetition time in seconds (FirstLevelModel(t_r=...)); "
                            "got None (nilearn's fit refuses this too when it builds designs from events)")
    values: dict[str, Any] = {}
    for name in DESIGN_ATTRIBUTES:
        value = getattr(model, name)
        if isinstance(value, np.ndarray):
            value = value.tolist()
        if isinstance(value, np.generic):
            value = value.item()
        if name == "hrf_model" and value is not None and not isinstance(value, str):
            raise SettingsError(f"model.hrf_model: nbdiag audits nilearn's named HRF models; got {value!r}")
        if name == "fir_delays" and value is not None:
            value = [int(v) for v in np.atleast_1d(value)]
        if name == "high_pass" and value is None:
            continue
        values[name] = value
    # the measured estimates use the model's own noise_model, as its fit does
    noise_model = getattr(model, "noise_model", None)
    if noise_model is not None:
        values["noise_model"] = noise_model
    try:
        settings = update_model(ModelSettings(), values, where="model")
    except SettingsError as exc:
        raise SettingsError(f"{exc} (read from the FirstLevelModel object)") from None
    # the confounds are given as tables: no load_confounds strategy applies
    return replace(settings, confounds_strategy=None)


def _label(value: Any, fallback: str) -> str:
    text = _LABEL_CHARS.sub("", str(value)) if value not in (None, "") else ""
    return text or fallback


def _as_table(value: Any, what: str, index: int) -> pd.DataFrame | None:
    """A run's events / confounds as ``FirstLevelModel.fit`` reads them."""
    if value is None:
        return None
    if isinstance(value, pd.DataFrame):
        return value
    if isinstance(value, np.ndarray):
        if what == "events":
            raise InputError(f"events for run {index} is an array", expected="a DataFrame or a TSV path",
                             found="numpy array")
        array = value.reshape(len(value), -1) if value.ndim == 1 else value
        return pd.DataFrame(array, columns=[f"confound_{i}" for i in range(array.shape[1])])
    if isinstance(value, (str, Path)):
        path = Path(value)
        try:
            sep = "," if path.suffix == ".csv" else "\t"
            return pd.read_csv(path, sep=sep)
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read {what} file: {exc}", file=path) from None
    raise InputError(f"{what} for run {index} has an unsupported type",
                     expected="a DataFrame, a numpy array (confounds) or a TSV path", found=type(value).__name__)


def check_events_frame(events: pd.DataFrame, where: str) -> None:
    """Refuse events nilearn cannot model (missing/NaN/non-numeric onset or duration).

    Raises
    ------
    InputError
        Naming the run, column, row, expected and found value.
    """
    for column in ("onset", "duration"):
        if column not in events.columns:
            raise InputError(f"events have no '{column}' column", file=where, column=column,
                             expected="columns onset, duration[, trial_type]",
                             found=", ".join(map(str, events.columns)))
        numeric = pd.to_numeric(events[column], errors="coerce")
        bad = numeric.isna().to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(f"events have a missing or non-numeric '{column}'", file=where, column=column,
                             row=row, expected="a number", found=repr(_plain(events[column].iloc[row])))
    if len(events) == 0:
        raise InputError("events have no rows", file=where, expected="at least one event", found="0 rows")


def detect_rtdur(events: pd.DataFrame, rt_column: str = "response_time") -> str | None:
    """The trial type of a ConsDurRTDur regressor added to ``events``, if any.

    A trial type ``T`` qualifies when every row of ``T`` has ``duration`` equal to a
    non-missing ``rt_column`` and shares its onset with a row of another trial type
    (the forum post's ``pd.concat((events, response_events))``).
    """
    if rt_column not in events.columns or "trial_type" not in events.columns:
        return None
    rt = pd.to_numeric(events[rt_column], errors="coerce")
    types = events["trial_type"].astype(str)
    for name in pd.unique(types):
        rows = (types == name).to_numpy()
        others = events.loc[~rows, "onset"].to_numpy(dtype=float)
        if not rows.any() or rows.all() or len(others) == 0:
            continue
        r = rt.to_numpy(dtype=float)[rows]
        d = pd.to_numeric(events["duration"], errors="coerce").to_numpy(dtype=float)[rows]
        on = events["onset"].to_numpy(dtype=float)[rows]
        if np.all(np.isfinite(r)) and np.allclose(d, r) and np.all(np.isin(np.round(on, 6), np.round(others, 6))):
            return str(name)
    return None


def _run_entities(img: Any, model: Any, model_index: int | None, run_index: int) -> tuple[str, dict[str, str], Path]:
    subject = _label(getattr(model, "subject_label", None), f"{(model_index or 0) + 1:02d}")
    if isinstance(img, (str, Path)):
        path = Path(img)
        ents = {k: v for k, v in bids_entities_of(path).items() if k in ENTITY_ORDER}
        if ents.get("sub"):
            subject = ents["sub"]
            ents = {k: _label(v, "x") for k, v in ents.items()}
            if "run" not in ents and "ses" not in ents:
                ents["run"] = f"{run_index + 1:02d}"
            return subject, ents, path
        return subject, {"sub": subject, "run": f"{run_index + 1:02d}"}, path
    return subject, {"sub": subject, "run": f"{run_index + 1:02d}"}, Path(f"in-memory-image-{run_index + 1}")


def dataset_root(path: Path) -> Path | None:
    """The BIDS dataset an image belongs to: the folder above ``derivatives/``, else above ``sub-*``."""
    parts = Path(path).absolute().parts
    if "derivatives" in parts:
        return Path(*parts[:parts.index("derivatives")])
    subs = [i for i, p in enumerate(parts) if p.startswith("sub-")]
    return Path(*parts[:subs[0]]) if subs and subs[0] > 0 else None


def _n_scans(img: Any, path: Path, confounds: pd.DataFrame | None, where: str) -> Resolved:
    shape = getattr(img, "shape", None) if not isinstance(img, (str, Path)) else None
    if shape is not None:
        if len(shape) == 4:
            return Resolved(int(shape[3]), "image header (in-memory image)")
        if len(shape) == 2:  # SurfaceImage: (n_vertices, n_scans)
            return Resolved(int(shape[1]), "surface image shape")
        raise InputError(f"{where}: the image is {len(shape)}D", expected="a 4D image", found=str(shape))
    try:
        return read_n_scans(path, None)
    except InputError as exc:
        problem = exc.found
    if confounds is not None:
        return Resolved(int(len(confounds)), f"confounds row count (the confounds given for this run); {problem}")
    raise InputError(f"{where}: cannot tell the number of volumes: {problem}, and no confounds were given",
                     file=path, expected="a readable 4D image header, or confounds with one row per volume",
                     found=problem)


def _fmriprep_confounds(path: Path) -> tuple[tuple[str, ...], tuple[int, ...], str | None]:
    """Columns and flagged non-steady-state volumes of the fMRIPrep file next to ``path``."""
    try:
        found = _find_confounds(path)
    except InputError:
        return (), (), None
    if found is None or not found.exists():
        return (), (), None
    try:
        raw = read_raw_confounds(found)
    except InputError:
        return (), (), None
    cols = [c for c in raw.columns if NSS_PATTERN.match(str(c))]
    nss: tuple[int, ...] = ()
    if cols:
        hit = (raw[cols].fillna(0).to_numpy() != 0).any(axis=1)
        nss = tuple(int(i) for i in np.flatnonzero(hit))
    return tuple(map(str, raw.columns)), nss, str(found)


def given_runs(model: Any, run_imgs: Any, events: Any, confounds: Any = None, sample_masks: Any = None,
               model_index: int | None = None, rt_column: str = "response_time") -> list[GivenRun]:
    """One :class:`GivenRun` per image of one model, as ``model.fit(run_imgs, events, confounds,
    sample_masks)`` would see them.

    Raises
    ------
    SettingsError
        For a bad model or mismatched list lengths (nothing can be audited).
    """
    settings = model_settings(model)
    info = model_info(model)
    imgs = list(run_imgs) if isinstance(run_imgs, (list, tuple)) else [run_imgs]
    n = len(imgs)
    if events is None:
        raise SettingsError("events: expected one events table per run image (FirstLevelModel.fit needs them "
                            "to build a design); got None")
    ev_list = _per_run(events, "events", n, model_index)
    conf_list = _per_run(confounds, "confounds", n, model_index)
    mask_list = _per_run(sample_masks, "sample_masks", n, model_index)
    fitted = getattr(model, "design_matrices_", None)
    out: list[GivenRun] = []
    for j, img in enumerate(imgs):
        subject, ents, path = _run_entities(img, model, model_index, j)
        where = f"run {j} of model {model_index}" if model_index is not None else f"run {j}"
        run = RunInputs(subject=subject, entities=ents, bold=path)
        if isinstance(img, (str, Path)):
            run.root = dataset_root(path)
        run.t_r = Resolved(float(settings.t_r), "FirstLevelModel.t_r")
        run.slice_time_ref = Resolved(float(settings.slice_time_ref or 0.0), "FirstLevelModel.slice_time_ref")
        given = GivenRun(run=run, events=None, confounds=None, model_info=info)
        out.append(given)
        try:
            _read_given(given, img, path, j, where, ev_list[j], conf_list[j], mask_list[j], rt_column)
            if isinstance(fitted, list) and len(fitted) == n:
                given.fitted_design = fitted[j]
        except InputError as exc:
            run.error = exc
    return out


def _per_run(value: Any, name: str, n: int, model_index: int | None) -> list[Any]:
    """``value`` (events, confounds or sample masks of one model) as one entry per run image."""
    if value is None:
        return [None] * n
    single = (isinstance(value, np.ndarray) and value.ndim == 1) if name == "sample_masks" else \
        isinstance(value, (pd.DataFrame, np.ndarray, str, Path))
    items = [value] if single else list(value)
    if len(items) != n:
        where = f"model {model_index}" if model_index is not None else "model"
        raise SettingsError(f"{name} for {where}: expected one entry per run image ({n}); got {len(items)}")
    return items


def _read_given(given: GivenRun, img: Any, path: Path, j: int, where: str, events: Any, confounds: Any,
                mask: Any, rt_column: str) -> None:
    """Fill ``given`` with one run's tables, sample mask, fMRIPrep files, ``n_scans`` and RTDur regressor.

    Raises
    ------
    InputError
        A table or image that cannot be read (the run is then an error record).
    """
    run = given.run
    given.events = _as_table(events, "events", j)
    given.confounds = _as_table(confounds, "confounds", j)
    check_events_frame(given.events, f"events of {where}")
    if mask is not None:
        mask = np.asarray(mask).ravel()
        given.sample_mask = np.flatnonzero(mask) if mask.dtype == bool else mask.astype(int)
    if isinstance(img, (str, Path)):
        _read_fmriprep_files(given, path)
    run.n_scans = _n_scans(img, path, given.confounds, where)
    if not run.n_scans.source.startswith("image header"):
        run.notes.append(f"n_scans {run.n_scans.value} from {run.n_scans.source}")
    given.rt_regressor = detect_rtdur(given.events, rt_column)
    if given.rt_regressor:
        given.notes.append(f"trial type {given.rt_regressor!r} has duration = {rt_column} on rows that "
                           "copy other events' onsets: audited as a ConsDurRTDur regressor")


def _read_fmriprep_files(given: GivenRun, path: Path) -> None:
    """For an image on disk: its JSON sidecar's RepetitionTime and, in an fMRIPrep folder, the
    confounds file (read for its non-steady-state flags, signals and motion only)."""
    run = given.run
    sidecar = Path(str(path).split(".nii")[0] + ".json")
    run.bold_sidecar = sidecar if sidecar.exists() else None
    run.own_t_r = _own_t_r(run.bold_sidecar)
    cols, nss, found = _fmriprep_confounds(path)
    given.raw_confound_columns, given.nonsteady_volumes = cols, nss
    if found is not None:
        run.confounds = Path(found)
        raw_table = read_raw_confounds(Path(found))
        given.raw_signals, given.raw_motion = raw_signals(raw_table), raw_motion(raw_table)
        if nss:
            given.notes.append(f"fMRIPrep flags volumes {list(nss)} as non-steady-state in "
                               f"{Path(found).name} (read for that column only)")


def event_settings(given: GivenRun, rt_column: str = "response_time") -> EventSettings:
    """Event settings that describe the given events (nothing to transform; RTDur recognised)."""
    if given.rt_regressor:
        return EventSettings(transforms=("rtdur",), rt_column=rt_column, rtdur_name=given.rt_regressor)
    return EventSettings(rt_column=rt_column)


def as_list(value: Any, n: int, name: str) -> Sequence[Any]:
    """``value`` per model (``None`` -> ``[None] * n``), checking its length."""
    if value is None:
        return [None] * n
    items = list(value)
    if len(items) != n:
        raise SettingsError(f"{name}: expected one entry per model ({n}); got {len(items)}")
    return items
