"""Input adapter for ``nbdiag design DESIGN_TSV``: read a saved design matrix.

Reads a design as nilearn's ``save_glm_to_bids`` writes it (TSV without an
index column, ``RepetitionTime`` in the ``.json`` sidecar) and indexes it by
frame times. :func:`nbdiag.record.build.audit_saved_design` infers each column's role
and runs the same pipeline as the participant level.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from nbdiag.design.context import frame_times
from nbdiag.core.errors import InputError


def load_saved_design(path: Path, t_r: float | None = None,
                      slice_time_ref: float | None = None) -> tuple[pd.DataFrame, float, float, str]:
    """Read a design TSV and index it by frame times.

    Returns
    -------
    design, t_r, slice_time_ref, t_r_source

    Raises
    ------
    InputError
        If the file cannot be read, has non-numeric values, or no t_r is known.
    """
    path = Path(path)
    try:
        design = pd.read_csv(path, sep="\t")
    except FileNotFoundError:
        raise InputError("design file not found", file=path) from None
    except IsADirectoryError:
        raise InputError("expected a design TSV file, found a folder", file=path) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise InputError(f"cannot read design TSV: {exc}", file=path) from None
    if design.empty or design.shape[1] == 0:
        raise InputError("design file is empty", file=path, expected="one column per regressor", found="nothing")
    for col in design.columns:
        values = pd.to_numeric(design[col], errors="coerce")
        if values.isna().any():
            row = int(np.flatnonzero(values.isna().to_numpy())[0])
            raise InputError("design values must be numbers", file=path, column=str(col), row=row + 2,
                             expected="a finite number", found=repr(design[col].iloc[row]))
        design[col] = values.astype(float)
    sidecar = path.with_suffix(".json")
    meta = {}
    if sidecar.exists():
        try:
            meta = json.loads(sidecar.read_text())
        except ValueError:
            meta = {}
    source = "--t-r"
    if t_r is None:
        t_r = meta.get("RepetitionTime")
        source = f"RepetitionTime in {sidecar.name}"
    if t_r is None:
        raise InputError("no repetition time for this design: give --t-r or a .json sidecar with RepetitionTime",
                         file=path, expected="a number of seconds", found="nothing")
    if slice_time_ref is None:
        slice_time_ref = float(meta.get("SliceTimingRef", 0.0))
    times = meta.get("FrameTimes")
    if times is None or len(times) != len(design):
        times = frame_times(len(design), float(t_r), slice_time_ref)
    design.index = pd.Index(np.asarray(times, dtype=float))
    return design, float(t_r), float(slice_time_ref), source
