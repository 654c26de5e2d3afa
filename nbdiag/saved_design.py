"""``nbdiag design DESIGN_TSV``: audit a saved design matrix.

Reads a design as nilearn's ``save_glm_to_bids`` writes it (TSV without an
index column, ``RepetitionTime`` in the ``.json`` sidecar), infers each
column's role from its name and values, and runs the same diagnostics as the
participant level. Without events, the baseline is defined from the task
regressors themselves.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from nbdiag.context import DesignContext
from nbdiag.design import DesignResult, frame_times, infer_roles
from nbdiag.errors import InputError
from nbdiag.thresholds import Thresholds


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
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
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


def audit_saved_design(path: Path, contrasts: Sequence[str] | None = None, t_r: float | None = None,
                       slice_time_ref: float | None = None, high_pass: float | None = None,
                       hrf_model: str | None = "glover", output: Path | None = None, report: Path | None = None,
                       config_path: Path | None = None) -> int:
    """CLI body of ``nbdiag design``; returns the exit code."""
    from nbdiag import __version__
    from nbdiag.audit import jsonable
    from nbdiag.config import load_config
    from nbdiag.diagnostics import audit_design
    from nbdiag.outputs import write_json

    thresholds = load_config(config_path).base.thresholds if config_path else Thresholds()
    try:
        design, t_r, slice_time_ref, source = load_saved_design(path, t_r, slice_time_ref)
    except InputError as exc:
        print(f"nbdiag: error: {exc}", file=sys.stderr)
        return 1
    roles, sources = infer_roles(design)
    drift_cols = [c for c, r in roles.items() if r == "drift" and c.startswith("drift_")]
    drift_model = None
    if drift_cols:
        n = len(design)
        cosine_1 = np.sqrt(2.0 / n) * np.cos(np.pi / n * (np.arange(n) + 0.5))
        drift_model = "cosine" if np.allclose(design[drift_cols[0]].to_numpy(), cosine_1, atol=1e-6) else "polynomial"
    if drift_model == "cosine" and high_pass is None:
        # nilearn's cosine basis has floor(2 * n * dt * high_pass) columns: take the middle of that interval
        high_pass = (len(drift_cols) + 0.5) / (2.0 * len(design) * t_r)
    built = DesignResult(design=design, roles=roles, sources=sources)
    context = DesignContext(t_r=t_r, slice_time_ref=slice_time_ref, hrf_model=hrf_model, drift_model=drift_model,
                            high_pass=high_pass, drift_order=max(len(drift_cols), 1), events=None, n_scans_total=len(design),
                            notes=("roles inferred from column names; no events known: baseline from regressors",))
    contrast_map = {c: c for c in contrasts} if contrasts else None
    result = audit_design(design, roles, context, contrast_map, thresholds)
    record = {
        "nbdiag_version": __version__, "source": str(path), "settings": {"t_r": {"value": t_r, "source": source}},
        "design": {"columns": built.columns_record(), "n_scans": len(design), "n_columns": design.shape[1],
                   "rank": int(np.linalg.matrix_rank(design.to_numpy())),
                   "frame_times": [float(t) for t in design.index]},
        "diagnostics": jsonable(result.diagnostics), "contrasts": jsonable(result.contrasts),
        "whatif": jsonable(result.whatif), "findings": jsonable(result.findings), "status": result.status,
    }
    if output:
        write_json(Path(output), record)
    print(f"{path.name}: {design.shape[0]} scans x {design.shape[1]} columns, status {result.status}")
    for role in ("task", "confound", "spike", "drift", "constant"):
        cols = [c for c, r in roles.items() if r == role]
        if cols:
            print(f"  {role:9s} {', '.join(cols[:12])}{' ...' if len(cols) > 12 else ''}")
    for name, stats in result.contrasts.items():
        cvif = stats.get("cvif")
        print(f"  contrast {name}: estimable={stats.get('estimable')} variance={stats.get('variance'):.4g} "
              f"cvif={'n/a' if cvif is None else f'{cvif:.2f}'}")
    for finding in result.findings[:10]:
        where = f" [{finding.contrast}]" if finding.contrast else ""
        print(f"  {finding.severity.upper():5s} {finding.code}{where}: {finding.message}")
    if report:
        from nbdiag.report import render_subject_report

        record["run"] = {"subject": path.stem, "session": None, "run": None, "prefix": path.stem, "entities": {},
                         "files": {"design": str(path)}}
        record["variant"] = "saved"
        render_subject_report(path.stem, [record], {(path.stem, "saved"): design}, Path(report))
        print(f"  report: {report}")
    return 0
