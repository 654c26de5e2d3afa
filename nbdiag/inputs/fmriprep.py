"""Load fMRIPrep confounds exactly as ``first_level_from_bids`` does.

``first_level_from_bids`` calls ``load_confounds(img_files=imgs, **kwargs)``
and keeps only ``[0]``: the confounds. The second value, the **sample mask**
(volumes to drop: non-steady-state volumes, always, and scrubbed volumes with
``scrub``) is discarded, so those volumes stay in the model. We call nilearn
the same way and keep what it drops, so diagnostics can flag it.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nbdiag.config import ModelSettings, nilearn_fills_first_row
from nbdiag.errors import InputError
from nbdiag.inputs.safety import check_input_file, display, read_json_object
from nbdiag.limits import Limits, too_large
from nbdiag import codes

NSS_PATTERN = re.compile(r"^non_steady_state_outlier\d+$")
MOTION_OUTLIER_PATTERN = re.compile(r"^motion_outlier\d+$")


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
    """

    confounds: pd.DataFrame | None
    sample_mask: np.ndarray | None
    raw_columns: tuple[str, ...] = ()
    nonsteady_volumes: tuple[int, ...] = ()
    scrub_volumes: tuple[int, ...] = ()
    warnings: tuple[str, ...] = field(default_factory=tuple)

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
    hit = (raw[cols].fillna(0).to_numpy() != 0).any(axis=1)
    return tuple(int(i) for i in np.flatnonzero(hit))


def read_raw_confounds(path: Path, limits: Limits | None = None) -> pd.DataFrame:
    """Read an fMRIPrep confounds TSV with a clear error if it cannot be read.

    The header is read first: a file with more columns than ``limits.max_confound_columns``
    is refused before its body is parsed (memory bounded by the limit, not the file).
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
        raw = pd.read_csv(path, sep="\t", na_values=["n/a"], nrows=limits.max_scans + 1)
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


def _asked_by(kwargs: dict | None) -> str:
    if kwargs == {}:
        return "the model (confounds_strategy not given: nilearn uses every column of the file)"
    return f"confounds_strategy {list(kwargs['strategy'])}"


def load_run_confounds(bold: Path, confounds_path: Path | None, model: ModelSettings, n_scans: int,
                       roots: tuple[Path, ...] | None = None, limits: Limits | None = None) -> ConfoundsResult:
    """Confounds for one run, as ``first_level_from_bids`` builds them.

    A confounds file the settings ask for (any ``confounds_strategy`` other than
    ``None``) that is missing, an unfetched annex link or outside the dataset is an error
    naming it: a model silently without confounds would look *better* than the one asked for.

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
        from nbdiag.inputs.bids import expected_confounds

        expected = expected_confounds(bold)
        raise InputError(
            f"no confounds file for this run, but {_asked_by(kwargs)} asks for one (first_level_from_bids "
            "would silently fit without confounds when a subject has none, or refuse the subject when "
            "only some runs have one); give --confounds-strategy none to audit without confounds",
            file=display(expected), code=codes.INPUT_MISSING.code, expected="an fMRIPrep *_desc-confounds_timeseries.tsv",
            found="no file")
    check_input_file(confounds_path, "confounds file", _asked_by(kwargs), roots)
    raw = read_raw_confounds(confounds_path, limits)
    sidecar_note = None
    if kwargs:
        sidecar = confounds_path.with_suffix(".json")
        needs_sidecar = any(s in kwargs["strategy"] for s in ("compcor",))
        if sidecar.exists() or sidecar.is_symlink():
            data, problem = read_json_object(sidecar, roots)
            # nilearn json.load()s this file for every strategy (a syntax error stops it) and uses
            # its content for CompCor only: a valid JSON that is not an object matters only there
            if problem is not None and not needs_sidecar and "found a JSON" in problem:
                sidecar_note = f"confounds JSON sidecar not used: {problem}"
            elif problem is not None:
                raise InputError(f"confounds JSON sidecar cannot be used by load_confounds: {problem}",
                                 file=display(sidecar), code=codes.CONFOUNDS_INVALID.code,
                                 expected="a JSON object (fMRIPrep's confounds metadata)", found="see message")
        elif needs_sidecar:
            raise InputError(
                f"confounds JSON sidecar missing: {_asked_by(kwargs)} needs it (CompCor components are "
                "selected from its metadata; fMRIPrep < 1.4 did not write it)", file=display(sidecar),
                code=codes.INPUT_MISSING.code, expected="the *_desc-confounds_timeseries.json next to the TSV",
                found="no file")
    raw_columns = tuple(map(str, raw.columns))
    nss = _flagged(raw, NSS_PATTERN)
    caught: list[str] = []
    sample_mask = None
    if kwargs is None:
        confounds = None
    elif kwargs == {}:
        # nilearn reads the whole file; since 0.13 it fills NaNs of the first row with 0
        confounds = raw.copy()
        if nilearn_fills_first_row():
            confounds.iloc[0] = confounds.iloc[0].fillna(0.0)
    else:
        from nilearn.interfaces.fmriprep import load_confounds

        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            try:
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
    if sidecar_note:
        caught.append(sidecar_note)
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
    scrub: tuple[int, ...] = ()
    if sample_mask is not None:
        kept = set(int(i) for i in np.asarray(sample_mask))
        scrub = tuple(i for i in range(n_scans) if i not in kept and i not in nss)
    elif kwargs and "scrub" in kwargs.get("strategy", ()):
        scrub = ()
    return ConfoundsResult(confounds=confounds, sample_mask=None if sample_mask is None else np.asarray(sample_mask),
                           raw_columns=raw_columns, nonsteady_volumes=nss, scrub_volumes=scrub,
                           warnings=tuple(caught))
