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


def read_raw_confounds(path: Path) -> pd.DataFrame:
    """Read an fMRIPrep confounds TSV with a clear error if it cannot be read."""
    try:
        raw = pd.read_csv(path, sep="\t", na_values=["n/a"])
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read confounds file: {exc}", file=path, code=codes.CONFOUNDS_INVALID.code) from None
    if raw.empty:
        raise InputError("confounds file has no rows", file=path, code=codes.CONFOUNDS_INVALID.code,
                         expected="one row per volume", found="0 rows")
    return raw


def load_run_confounds(bold: Path, confounds_path: Path | None, model: ModelSettings, n_scans: int) -> ConfoundsResult:
    """Confounds for one run, as ``first_level_from_bids`` builds them.

    Raises
    ------
    InputError
        With the file, column and row, for: a strategy whose columns are
        missing, row count != n_scans, NaN values beyond the first row.
    """
    kwargs = model.load_confounds_kwargs()
    if confounds_path is None:
        # nilearn: no confounds file found -> no confounds
        return ConfoundsResult(confounds=None, sample_mask=None)
    raw = read_raw_confounds(confounds_path)
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
            except ValueError as exc:
                text = str(exc)
                raise InputError(
                    f"nilearn's load_confounds refused this file: {text}", file=confounds_path,
                    code=codes.CONFOUNDS_INVALID.code,
                    expected=f"the columns needed by confounds_strategy {list(kwargs['strategy'])}",
                    found=f"{len(raw_columns)} columns",
                ) from None
        caught = [str(w.message) for w in record if "Non-steady state volumes are always detected" not in str(w.message)]
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
