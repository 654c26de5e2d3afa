"""Load fMRIPrep confounds exactly as ``first_level_from_bids`` does.

``first_level_from_bids`` calls ``load_confounds(img_files=imgs, **kwargs)``
and keeps only ``[0]``: the confounds. The second value, the **sample mask**
(volumes to drop: non-steady-state volumes, always, and scrubbed volumes with
``scrub``) is discarded, so those volumes stay in the model. We call nilearn
the same way and keep what it drops, so diagnostics can flag it.
"""

from __future__ import annotations

import importlib.util
import re
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
from nilearn.interfaces.fmriprep import load_confounds

from nbdiag.config import ModelSettings, nilearn_fills_first_row
from nbdiag.core.errors import InputError
from nbdiag.inputs.bids import expected_confounds
from nbdiag.inputs.safety import check_input_file, display, read_json_object
from nbdiag.core.limits import Limits, too_large
from nbdiag.core import codes, compat

NSS_PATTERN = re.compile(r"^non_steady_state_outlier\d+$")


@dataclass(frozen=True)
class ConfoundsResult:
    """Confounds as nilearn passes them to the model, and what it dropped.

    Attributes
    ----------
    confounds : DataFrame or None
        What ``first_level_from_bids`` returns for this run.
    sample_mask : ndarray or None
        Kept volumes returned by ``load_confounds`` (``None``: keep all).
    raw_columns : tuple of str
        Every column of the confounds file.
    nonsteady_volumes : tuple of int
        Volumes flagged by ``non_steady_state_outlier*`` columns.
    scrub_volumes : tuple of int
        Other volumes the sample mask removes (scrubbing / motion outliers).
    warnings : tuple of str
        nilearn warnings raised while loading.
    motion : mapping or None
        The raw ``framewise_displacement`` / ``std_dvars`` / ``dvars`` columns present in the
        file (:func:`raw_motion`); ``None`` when no confounds file was read.
    signals : mapping
        The raw ``global_signal``, ``csf`` and ``white_matter`` columns (one
        value per volume, scanner units) when present, for the measured
        diagnostics (:mod:`nbdiag.diagnostics.measured`).
    """

    confounds: pd.DataFrame | None
    sample_mask: np.ndarray | None
    raw_columns: tuple[str, ...] = ()
    nonsteady_volumes: tuple[int, ...] = ()
    scrub_volumes: tuple[int, ...] = ()
    warnings: tuple[str, ...] = field(default_factory=tuple)
    signals: dict[str, np.ndarray] = field(default_factory=dict)
    motion: dict[str, np.ndarray] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": [] if self.confounds is None else list(map(str, self.confounds.columns)),
            "raw_columns": list(self.raw_columns),
            "nonsteady_volumes": list(self.nonsteady_volumes),
            "scrub_volumes": list(self.scrub_volumes),
            "sample_mask_kept": None if self.sample_mask is None else len(self.sample_mask),
            "nilearn_warnings": list(self.warnings),
        }


def _flagged(raw: pd.DataFrame, pattern: re.Pattern) -> tuple[int, ...]:
    cols = [c for c in raw.columns if pattern.match(str(c))]
    if not cols:
        return ()
    hit = np.zeros(len(raw), dtype=bool)
    for col in cols:  # a value other than 0 or missing flags the volume (fillna(0) != 0)
        values = _numeric(raw[col]) if raw[col].dtype.kind in "fiub" else raw[col].fillna(0).to_numpy()
        hit |= (values != 0) & ~pd.isna(values)
    return tuple(int(i) for i in np.flatnonzero(hit))


def _numeric(column: pd.Series) -> np.ndarray:
    """``pd.to_numeric(column, errors="coerce")`` as floats; a float column is taken as it is."""
    if column.dtype == np.float64:
        return column.to_numpy(copy=True)
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)


#: Raw confound columns kept for the measured diagnostics.
SIGNAL_COLUMNS = ("global_signal", "csf", "white_matter")
#: Confound columns also kept as measured signals: their footprint in the global signal is measured
#: when the model leaves them out (issue 20, ``confound_left_out:<column>`` sensitivity sources).
FOOTPRINT_COLUMNS = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")


def raw_signals(raw: pd.DataFrame) -> dict[str, np.ndarray]:
    """The measured-signal columns of a confounds table (numeric, scanner units)."""
    out = {}
    for col in SIGNAL_COLUMNS + FOOTPRINT_COLUMNS:
        if col in raw.columns:
            out[col] = _numeric(raw[col])
    return out


#: fMRIPrep's motion summary columns (motion per condition, :mod:`nbdiag.diagnostics.motion`)
MOTION_COLUMNS = ("framewise_displacement", "std_dvars", "dvars")


def raw_motion(raw: pd.DataFrame) -> dict[str, np.ndarray]:
    """The motion summary columns of a confounds table present in it (first row NaN as fMRIPrep writes it)."""
    return {col: _numeric(raw[col]) for col in MOTION_COLUMNS if col in raw.columns}


def read_raw_confounds(path: Path, limits: Limits | None = None, usecols: list[str] | None = None) -> pd.DataFrame:
    """Read an fMRIPrep confounds TSV with a clear error if it cannot be read.

    The header is read first: a file with more columns than ``limits.max_confound_columns``
    is refused before its body is parsed (memory bounded by the limit, not the file).
    ``usecols``: parse only these columns (the others are tokenised, not converted).
    """
    limits = limits or Limits()
    try:
        with open(path, "rb") as fh:
            header = fh.readline(1_000_000)
    except OSError as exc:
        raise InputError(f"cannot read confounds file ({type(exc).__name__})", file=path,
                         code=codes.CONFOUNDS_INVALID.code) from None
    n_columns = header.count(b"\t") + 1 if header.strip() else 0
    if n_columns > limits.max_confound_columns:
        raise InputError(too_large("confounds columns", n_columns, limits.max_confound_columns,
                                   "max_confound_columns"), file=path, code=codes.INPUT_TOO_LARGE.code,
                         expected=f"at most {limits.max_confound_columns} columns", found=f"{n_columns} columns")
    try:
        raw = pd.read_csv(path, sep="\t", na_values=["n/a"], nrows=limits.max_scans + 1, usecols=usecols)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"cannot read confounds file as TSV ({type(exc).__name__})", file=path,
                         code=codes.CONFOUNDS_INVALID.code, expected="a tab-separated table with a header row",
                         found="a file pandas cannot parse") from None
    if len(raw) > limits.max_scans:
        raise InputError(too_large("confounds rows", len(raw), limits.max_scans, "max_scans"), file=path,
                         code=codes.INPUT_TOO_LARGE.code, expected=f"at most {limits.max_scans} rows",
                         found=f"more than {limits.max_scans} rows")
    if raw.empty:
        raise InputError("confounds file has no rows", file=path, code=codes.CONFOUNDS_INVALID.code,
                         expected="one row per volume", found="0 rows")
    return raw


def _read_header(path: Path) -> list[str]:
    """Column names of a TSV (first line only), as pandas would name them; [] when unreadable
    (the whole-file reader then reports the problem)."""
    try:
        with open(path, encoding="utf-8") as fh:
            first = fh.readline(1_000_000)
    except (OSError, UnicodeDecodeError, ValueError):
        return []
    return first.rstrip("\r\n").split("\t") if first.strip() else []


_NEEDED_CACHE: dict[tuple, list[str] | None] = {}


def _columns_needed(header: list[str], kwargs: dict[str, Any], json_path: str) -> list[str] | None:
    """The columns of the file nilearn's ``load_confounds`` can use under ``kwargs``.

    Runs nilearn's own column selection on a zero-row table with the file's header,
    then adds the columns it reads values from (``framewise_displacement``,
    ``std_dvars``, outlier one-hot columns). ``None`` when the selection cannot be
    made this way (then the whole file is read). Memoised on the header, the
    strategy and (for CompCor, which reads it) the JSON sidecar's text.
    """
    uses_json = "compcor" in kwargs["strategy"]
    json_text = None
    if uses_json:
        try:
            json_text = Path(json_path).read_text(encoding="utf-8")
        except OSError:
            json_text = ""
    key = (tuple(header), repr(sorted(kwargs.items())), json_text)
    if key not in _NEEDED_CACHE:
        if len(_NEEDED_CACHE) > 256:
            _NEEDED_CACHE.clear()
        _NEEDED_CACHE[key] = _select_columns(header, kwargs, json_path)
    keep = _NEEDED_CACHE[key]
    return None if keep is None else list(keep)


def _nl():
    """nilearn's load_confounds pieces the fast path uses, by name (None if laid out differently)."""
    lc = compat.private("nilearn.interfaces.fmriprep.load_confounds", "COMPCOR_TYPES", "CONFOUND_MODEL",
                        "_check_error", "_check_strategy", "_load_noise_component")
    utils = compat.private("nilearn.interfaces.fmriprep.load_confounds_utils", "load_confounds_json",
                           "prepare_output", "_demean_confounds")
    scrub = compat.private("nilearn.interfaces.fmriprep.load_confounds_scrub", "_get_outlier_cols",
                           "_outlier_to_sample_mask")
    other = compat.private("nilearn._utils.fmriprep_confounds", "is_camel_case")
    check = compat.private("nilearn._utils.param_validation", "check_parameter_in_allowed")
    if None in (lc, utils, scrub, other, check):
        return None
    names = ("COMPCOR_TYPES", "CONFOUND_MODEL", "check_error", "check_strategy", "load_noise_component",
             "load_confounds_json", "prepare_output", "demean_confounds", "get_outlier_cols",
             "outlier_to_sample_mask", "is_camel_case", "check_parameter_in_allowed")
    return SimpleNamespace(**dict(zip(names, lc + utils + scrub + other + check)))


def _select_columns(header: list[str], kwargs: dict[str, Any], json_path: str) -> list[str] | None:
    try:
        nl = _nl()
        _load_noise_component, load_confounds_json = nl.load_noise_component, nl.load_confounds_json
        empty = pd.DataFrame(np.empty((0, len(header))), columns=header)
        flag_acompcor = "compcor" in kwargs["strategy"] and "anat" in kwargs.get("compcor", "anat_combined")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            meta = load_confounds_json(json_path, flag_acompcor=flag_acompcor)
            params = {k: v for k, v in kwargs.items() if k not in ("strategy", "demean")}
            used: set[str] = set()
            for component in ("non_steady_state", *kwargs["strategy"]):
                if component in ("scrub", "tedana"):
                    continue
                missing = {"confounds": [], "keywords": []}
                loaded, missing = _load_noise_component(empty, component, missing, meta_json=meta, **params)
                if missing["confounds"] or missing["keywords"]:
                    return None  # nilearn will refuse the file: let it see every column for its message
                used.update(map(str, loaded.columns))
    except Exception:  # noqa: BLE001 - private nilearn API changed, or a sidecar problem: read everything
        return None
    extra = {*MOTION_COLUMNS, *SIGNAL_COLUMNS, *FOOTPRINT_COLUMNS}  # + the measured signals (raw_signals)
    return [c for c in header if c in used or c in extra or OUTLIER_PATTERN.search(c)]


#: one-hot outlier columns nilearn turns into the sample mask (any it may select)
OUTLIER_PATTERN = re.compile(r"motion_outlier|non_steady_state")  # nilearn's _get_outlier_cols rule


def _nilearn_load_selected(raw: pd.DataFrame, kwargs: dict[str, Any], json_path: str,
                           meta: dict[str, Any] | None = None):
    """``load_confounds`` for one file, on an already read (column-subset) table.

    Mirrors ``nilearn.interfaces.fmriprep.load_confounds._load_single_confounds_file``
    step by step with nilearn's own helpers, so the result is nilearn's. ``meta``: the
    JSON sidecar at ``json_path`` already parsed (``json.loads`` of its bytes, what
    nilearn's ``load_confounds_json`` returns for it); read by nilearn's helper when None.
    """
    nl = _nl()
    check_parameter_in_allowed, COMPCOR_TYPES, CONFOUND_MODEL = (nl.check_parameter_in_allowed, nl.COMPCOR_TYPES,
                                                                 nl.CONFOUND_MODEL)
    _check_error, _check_strategy, _load_noise_component = nl.check_error, nl.check_strategy, nl.load_noise_component
    load_confounds_json, prepare_output = nl.load_confounds_json, nl.prepare_output

    strategy = list(kwargs["strategy"])
    params = {k: v for k, v in kwargs.items() if k not in ("strategy", "demean")}
    _check_strategy(strategy)  # the checks load_confounds makes before reading
    for name in ("motion", "wm_csf", "global_signal"):
        if name in strategy:
            check_parameter_in_allowed(params.get(name), CONFOUND_MODEL, name)
    if "compcor" in strategy:
        check_parameter_in_allowed(params.get("compcor"), COMPCOR_TYPES, "compcor")
    flag_acompcor = "compcor" in strategy and "anat" in params.get("compcor", "anat_combined")
    if meta is None:
        meta = load_confounds_json(json_path, flag_acompcor=flag_acompcor)
    missing = {"confounds": [], "keywords": []}
    selected, missing = _load_noise_component(raw, "non_steady_state", missing, meta_json=meta, **params)
    nonsteady = selected  # nilearn loads it again for a "non_steady_state" strategy: the same columns, never missing
    for component in strategy:
        if component == "non_steady_state":
            loaded = nonsteady
        else:
            loaded, missing = _load_noise_component(raw, component, missing, meta_json=meta, **params)
        selected = pd.concat([selected, loaded], axis=1)
    _check_error(missing)
    sample_mask, confounds = _prepare_output(selected, kwargs.get("demean", True), prepare_output)
    return confounds, sample_mask


def _prepare_output(confounds: pd.DataFrame, demean: bool, nilearn_prepare_output):
    """nilearn's ``prepare_output`` without its ``outliers.T.drop_duplicates()``.

    The de-duplication only feeds the sample mask, ``where(sum of one-hot columns
    == 0)``, which duplicate 0/1 columns do not change; on a 500-volume run it costs
    ~50 ms (a transpose to 500 columns, hashed one by one). Other outlier values
    (not 0/1) go through nilearn's own function.
    """
    nl = _nl()
    _get_outlier_cols, _outlier_to_sample_mask = nl.get_outlier_cols, nl.outlier_to_sample_mask
    _demean_confounds = nl.demean_confounds
    outlier_cols, confounds_cols = _get_outlier_cols(confounds.columns)
    if outlier_cols:
        values = confounds.loc[:, outlier_cols].to_numpy()
        if not np.isin(values, (0.0, 1.0)).all():
            return nilearn_prepare_output(confounds, demean)
        outliers = pd.DataFrame(values)  # duplicate names (non_steady_state loaded twice) are fine here
    else:
        outliers = pd.DataFrame()
    confounds = _float_columns(confounds, confounds_cols)
    sample_mask = _outlier_to_sample_mask(outliers)
    if sample_mask is not None and sample_mask.size == 0:
        warnings.warn("All volumes were marked as motion outliers. This would lead to all volumes in the "
                      "time series to be scrubbed.", RuntimeWarning, stacklevel=2)
    if confounds.size != 0:
        mask_nan = np.isnan(confounds.to_numpy()[0, :])
        if mask_nan.any():  # nilearn's assignment, skipped when it would copy nothing
            confounds.iloc[0, mask_nan] = confounds.iloc[1, mask_nan]
        if demean:
            confounds = (_demean_all(confounds) if sample_mask is None
                         else _demean_masked(confounds, sample_mask, _demean_confounds))
    return sample_mask, confounds


def _float_columns(frame: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """``frame.loc[:, names]`` (a copy), made from the values when every name is one float column.

    Same columns, order, index, dtype and values as pandas' label selection, without its indexer
    machinery; anything else (repeated names, other dtypes) goes through ``.loc``.
    """
    if not frame.columns.is_unique:
        return frame.loc[:, names]
    at = frame.columns.get_indexer(names)
    if (at < 0).any() or not all(frame.dtypes.iloc[j] == np.float64 for j in at.tolist()):
        return frame.loc[:, names]
    return pd.DataFrame(frame.to_numpy(dtype=np.float64)[:, at], columns=frame.columns[at], index=frame.index)


def _demean_all(confounds: pd.DataFrame) -> pd.DataFrame:
    """nilearn's ``_demean_confounds(confounds, None)``: ``sklearn.preprocessing.scale(confounds,
    axis=0, with_std=False)`` as a DataFrame, without scikit-learn's input validation.

    The same numpy steps as ``scale`` on a dense float array: subtract the NaN-ignoring column
    means, and subtract the means of the result again when they are not close to 0 (with
    scikit-learn's warning). ``tests/test_fast_confounds.py`` compares the result with
    ``load_confounds`` bit for bit.
    """
    X = confounds.to_numpy(dtype=np.float64, copy=True)
    X -= np.nanmean(X, axis=0)
    mean_1 = np.nanmean(X, axis=0)
    if not np.allclose(mean_1, 0):
        warnings.warn("Numerical issues were encountered when centering the data and might not be solved. "
                      "Dataset may contain too large values. You may need to prescale your features.",
                      UserWarning, stacklevel=2)
        X -= mean_1
    return pd.DataFrame(X, columns=confounds.columns)


def _demean_masked(confounds: pd.DataFrame, sample_mask: np.ndarray, nilearn_demean) -> pd.DataFrame:
    """nilearn's ``_demean_confounds(confounds, sample_mask)`` without pandas' indexing and alignment.

    nilearn subtracts ``confounds.iloc[sample_mask].mean()``: pandas sums each column's kept
    values as one contiguous row (its block layout after ``take``), NaN read as 0, and divides
    by the count of non-NaN values. The same numpy steps on the same layout give the same bits
    (``tests/test_fast_confounds.py``). With bottleneck in use, pandas computes the mean with
    it instead: then nilearn's own function runs.
    """
    if _pandas_uses_bottleneck() or not all(t == np.float64 for t in confounds.dtypes):
        return nilearn_demean(confounds, sample_mask)
    X = confounds.to_numpy(dtype=np.float64)
    kept = np.ascontiguousarray(X[np.asarray(sample_mask)].T)  # (columns, kept volumes), as pandas' block
    missing = np.isnan(kept)
    if missing.any():
        kept = np.where(missing, 0.0, kept)
    mean = kept.sum(axis=1) / (kept.shape[1] - missing.sum(axis=1))
    return pd.DataFrame(X - mean, columns=confounds.columns)


def _pandas_uses_bottleneck() -> bool:
    """Whether pandas' reductions go through bottleneck (its ``nanmean`` sums differently)."""
    return _bottleneck_installed() and bool(pd.get_option("compute.use_bottleneck"))


@lru_cache(maxsize=1)
def _bottleneck_installed() -> bool:
    return importlib.util.find_spec("bottleneck") is not None


def _fast_path_ok(kwargs: dict[str, Any], header: list[str]) -> bool:
    """Strategies the column-subset path reproduces (everything but ICA-AROMA full / tedana)."""
    strategy = tuple(kwargs.get("strategy", ()))
    if not strategy or "tedana" in strategy or ("ica_aroma" in strategy and kwargs.get("ica_aroma") == "full"):
        return False
    nl = _nl()
    if nl is None:  # another nilearn layout: the public function
        return False
    if not header or any(nl.is_camel_case(c) for c in header):
        return False  # camelCase headers (fMRIPrep < 1.2): let nilearn raise its own message
    try:
        float(header[0])
        return False  # no header: nilearn's own message
    except ValueError:
        return True


def _asked_by(kwargs: dict | None) -> str:
    if kwargs == {}:
        return "the model (confounds_strategy not given: nilearn uses every column of the file)"
    return f"confounds_strategy {list(kwargs['strategy'])}"


def load_run_confounds(bold: Path, confounds_path: Path | None, model: ModelSettings, n_scans: int,
                       roots: tuple[Path, ...] | None = None, limits: Limits | None = None,
                       fast: bool = True) -> ConfoundsResult:
    """Confounds for one run, as ``first_level_from_bids`` builds them.

    A confounds file the settings ask for (any ``confounds_strategy`` other than
    ``None``) that is missing, an unfetched annex link or outside the dataset is an error
    naming it: a model silently without confounds would look *better* than the one asked for.

    With ``fast`` (default), only the columns the strategy can use are parsed
    (nilearn's own column selection, run on the header), and nilearn's own
    steps build the result from them: equal to ``load_confounds``' output bit for
    bit (tests/test_fast_confounds.py), several times faster on fMRIPrep's
    ~300-column files. ``fast=False`` calls ``load_confounds`` itself.

    Raises
    ------
    InputError
        With the file, column and row, for: a missing or unreadable confounds file or
        JSON sidecar the strategy needs, a strategy whose columns are missing, row count !=
        n_scans, NaN values beyond the first row, more columns than the limit.
    """
    kwargs = model.load_confounds_kwargs()
    if kwargs is None:
        return ConfoundsResult(confounds=None, sample_mask=None)
    if confounds_path is None:
        raise _no_confounds_file(bold, kwargs)
    check_input_file(confounds_path, "confounds file", _asked_by(kwargs), roots)
    header = _read_header(confounds_path) if fast else []
    keep = None
    if fast and kwargs and _fast_path_ok(kwargs, header):
        keep = _columns_needed(header, kwargs, str(confounds_path).replace("tsv", "json"))
    raw = read_raw_confounds(confounds_path, limits, usecols=keep)
    sidecar_data, sidecar_note = _read_sidecar(confounds_path, kwargs, roots) if kwargs else (None, None)
    raw_columns = tuple(header) if keep is not None else tuple(map(str, raw.columns))
    nss = _flagged(raw, NSS_PATTERN)
    confounds, sample_mask, caught = _apply_strategy(raw, kwargs, keep, bold, confounds_path, sidecar_data,
                                                     raw_columns)
    if sidecar_note:
        caught.append(sidecar_note)
    _check_loaded(raw, confounds, sample_mask, kwargs, n_scans, confounds_path)
    scrub: tuple[int, ...] = ()
    if sample_mask is not None:
        kept = set(int(i) for i in np.asarray(sample_mask))
        scrub = tuple(i for i in range(n_scans) if i not in kept and i not in nss)
    return ConfoundsResult(confounds=confounds, sample_mask=None if sample_mask is None else np.asarray(sample_mask),
                           raw_columns=raw_columns, nonsteady_volumes=nss, scrub_volumes=scrub,
                           warnings=tuple(caught), signals=raw_signals(raw), motion=raw_motion(raw))


def _no_confounds_file(bold: Path, kwargs: dict) -> InputError:
    """The error for a run without a confounds file when the settings ask for one."""
    return InputError(
        f"no confounds file for this run, but {_asked_by(kwargs)} asks for one (first_level_from_bids "
        "would silently fit without confounds when a subject has none, or refuse the subject when "
        "only some runs have one); give --confounds-strategy none to audit without confounds",
        file=display(expected_confounds(bold)), code=codes.INPUT_MISSING.code,
        expected="an fMRIPrep *_desc-confounds_timeseries.tsv", found="no file")


def _read_sidecar(confounds_path: Path, kwargs: dict,
                  roots: tuple[Path, ...] | None) -> tuple[dict | None, str | None]:
    """The confounds JSON sidecar as ``load_confounds`` reads it: ``(parsed object or None, note or None)``.

    nilearn ``json.load()``s the sidecar for every strategy (a syntax error stops it) and uses
    its content for CompCor only: a valid JSON that is not an object matters only there (a
    note otherwise); a missing sidecar is an error only for CompCor.
    """
    sidecar = confounds_path.with_suffix(".json")
    needs_sidecar = any(s in kwargs["strategy"] for s in ("compcor",))
    if not (sidecar.exists() or sidecar.is_symlink()):
        if needs_sidecar:
            raise InputError(
                f"confounds JSON sidecar missing: {_asked_by(kwargs)} needs it (CompCor components are "
                "selected from its metadata; fMRIPrep < 1.4 did not write it)", file=display(sidecar),
                code=codes.INPUT_MISSING.code, expected="the *_desc-confounds_timeseries.json next to the TSV",
                found="no file")
        return None, None
    data, problem = read_json_object(sidecar, roots)
    if problem is None:
        # the file nilearn would json.load: parsed once
        return (data if str(sidecar) == str(confounds_path).replace("tsv", "json") else None), None
    if not needs_sidecar and "found a JSON" in problem:
        return None, f"confounds JSON sidecar not used: {problem}"
    raise InputError(f"confounds JSON sidecar cannot be used by load_confounds: {problem}",
                     file=display(sidecar), code=codes.CONFOUNDS_INVALID.code,
                     expected="a JSON object (fMRIPrep's confounds metadata)", found="see message")


def _apply_strategy(raw: pd.DataFrame, kwargs: dict, keep: list[str] | None, bold: Path, confounds_path: Path,
                    sidecar_data: dict | None, raw_columns: tuple[str, ...]
                    ) -> tuple[pd.DataFrame, Any, list[str]]:
    """``(confounds, sample_mask, nilearn's warnings)`` of the strategy, as ``first_level_from_bids`` gets them.

    ``kwargs == {}`` (no strategy given): the whole file, first-row NaNs filled with 0 as
    nilearn >= 0.13 does; otherwise nilearn's ``load_confounds`` steps on the ``keep``
    columns (``keep`` None: ``load_confounds`` itself on the image).
    """
    if kwargs == {}:
        confounds = raw.copy()
        if nilearn_fills_first_row():
            confounds.iloc[0] = confounds.iloc[0].fillna(0.0)
        return confounds, None, []
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        try:
            if keep is not None:
                confounds, sample_mask = _nilearn_load_selected(
                    raw, kwargs, str(confounds_path).replace("tsv", "json"), meta=sidecar_data)
            else:
                confounds, sample_mask = load_confounds(img_files=str(bold), **kwargs)
        except (ValueError, TypeError, KeyError, AttributeError, OSError) as exc:
            text = f"{type(exc).__name__}: {exc}" if not isinstance(exc, ValueError) else str(exc)
            raise InputError(
                f"nilearn's load_confounds refused this file: {text}", file=confounds_path,
                code=codes.CONFOUNDS_INVALID.code,
                expected=f"the columns needed by confounds_strategy {list(kwargs['strategy'])}",
                found=f"{len(raw_columns)} columns",
            ) from None
    caught = [str(w.message) for w in record if "Non-steady state volumes are always detected" not in str(w.message)]
    return confounds, sample_mask, caught


def _check_loaded(raw: pd.DataFrame, confounds: pd.DataFrame | None, sample_mask: Any, kwargs: dict,
                  n_scans: int, confounds_path: Path) -> None:
    """Refuse confounds the design cannot use: every volume censored, a row count other than
    ``n_scans``, NaN/inf beyond the first row (each error names the file, column and row)."""
    if sample_mask is not None and len(sample_mask) == 0:
        raise InputError(
            "load_confounds censors every volume (all marked as motion outliers), so its confounds are all NaN",
            file=confounds_path, column="framewise_displacement", code=codes.CONFOUNDS_INVALID.code,
            expected=f"some volumes under fd_threshold={kwargs.get('fd_threshold')} / "
                     f"std_dvars_threshold={kwargs.get('std_dvars_threshold')}",
            found=f"0 of {len(raw)} volumes kept",
        )
    if len(raw) != n_scans:
        raise InputError(
            "confounds row count differs from the number of volumes (nilearn raises 'Rows in confounds "
            "does not match n_scans')", file=confounds_path, code=codes.N_SCANS_MISMATCH.code,
            expected=f"{n_scans} rows", found=f"{len(raw)} rows",
        )
    if confounds is not None and len(confounds.columns):
        values = confounds.to_numpy(dtype=float)
        bad = ~np.isfinite(values)
        if bad.any():
            row, col = (int(x[0]) for x in np.nonzero(bad))
            raise InputError(
                "confounds contain NaN/inf beyond what nilearn fills (only the first row is filled); "
                "the design would contain NaN", file=confounds_path, column=str(confounds.columns[col]),
                row=row + 2, code=codes.CONFOUNDS_INVALID.code, expected="a finite number", found=str(values[row, col]),
            )
