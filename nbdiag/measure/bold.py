"""BOLD mode (``--measure bold``): effect maps by scan class for every variant and contrast.

For one run, every audited variant's contrast weights and scan classes (from
the audits) are turned into one weight matrix
(:func:`nbdiag.measure.effect_maps.make_plan`); the preprocessed BOLD is read
once, in blocks of volumes, inside fMRIPrep's brain mask
(:mod:`nbdiag.measure.images`); then, per variant and contrast, two files are
written next to the run's record, named as nilearn's ``save_glm_to_bids`` names
statistical maps:

* ``<prefix>_desc-<variant>_contrast-<camelName>_stat-effect_statmap.nii.gz`` —
  the OLS effect map ``wᵀy`` in percent signal change (nilearn's
  ``signal_scaling=0``), equal to ``FirstLevelModel(noise_model="ols")
  .compute_contrast(..., output_type="effect_size")``;
* ``..._stat-effect_classes.nii.gz`` — 4D, one volume per scan class, summing to
  the effect map; its JSON sidecar lists the classes in order under ``"Classes"``.

It runs on the audits before their records are built (the weights, scan classes and
design rows come from each audit, :class:`nbdiag.record.build.BoldSpec`) and returns
each variant's ``measured.bold`` section (files and, per contrast, the share of each
class in the brain-mask mean and in the most negative 5 % of voxels), which the record
builder puts in the record. A BOLD that cannot be read (missing, broken annex link, no
mask, other grid) is a note in the record, never an error.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from nbdiag.core.compat import clean_contrast_name
from nbdiag.measure.effect_maps import accumulate, finish, make_plan, summarize_parts
from nbdiag.measure.images import find_inputs, load_mask, stream_masked
from nbdiag.outputs.files import atomic_write_bytes, atomic_write_text, run_folder


def camel_name(contrast: str) -> str:
    """The contrast name as nilearn's ``save_glm_to_bids`` writes it (``two_back - zero_back`` ->
    ``twoBackMinusZeroBack``)."""
    return clean_contrast_name(contrast)


def _nifti_gz(data: np.ndarray, affine: np.ndarray) -> bytes:
    """A .nii.gz byte string with no timestamp (byte-identical on rerun)."""
    import nibabel as nib  # lazy: nibabel (~150 ms) is needed only when BOLD mode writes a map

    img = nib.Nifti1Image(np.asarray(data, dtype=np.float32), affine)
    img.header.set_xyzt_units("mm", "sec")
    return gzip.compress(img.to_bytes(), compresslevel=6, mtime=0)


def _spec(draft: Any) -> dict[str, Any] | None:
    """The plan input of one audited variant, from the audit's own values (``draft.bold_spec``)."""
    spec = draft.bold_spec
    if spec is None or not spec.scan_classes or not spec.weights:
        return None
    return {"weights": spec.weights, "scan_classes": spec.scan_classes, "rows": spec.rows}


#: BOLD mode's result for one variant: the record's ``measured.bold`` section (or None) and its notes
BoldResult = tuple[Optional[dict[str, Any]], list[str]]


def _note(drafts: Sequence[Any], text: str) -> dict[str, BoldResult]:
    return {a.variant: ({"status": "not measured", "note": text}, [text]) for a in drafts}


def measure_bold_run(drafts: Sequence[Any], output_dir: str | Path,
                     log: Callable[[str], None] | None = None) -> tuple[list[Path], dict[str, BoldResult]]:
    """Write the effect and class maps of one run's audited variants; return what goes into their records.

    Parameters
    ----------
    drafts : sequence of nbdiag.record.build.DraftRun
        The variants of ONE run (same BOLD), audited but not yet built into records; errored ones
        are skipped. Each carries ``bold_spec`` (weights, scan classes, design rows) from its audit.
    output_dir : path
        nbdiag OUTPUT_DIR.
    log : callable, optional
        Receives a line when the BOLD cannot be measured.

    Returns
    -------
    written : list of Path
        The files written.
    results : dict
        Per variant, the ``measured.bold`` section and the notes for the record builder
        (:func:`nbdiag.record.build.build_record`); a variant missing here gets neither.
    """
    ok = [a for a in drafts if a.status != "error"]
    if not ok:
        return [], {}
    run = ok[0].run
    found = find_inputs(Path(run.bold))
    if found.note:
        if log:
            log(f"    note: {found.note}")
        return [], _note(ok, found.note)
    try:
        mask, affine, shape = load_mask(found.mask, found.bold)
    except (ValueError, OSError, EOFError) as exc:
        return [], _note(ok, f"BOLD not measured: {exc}")
    specs = {a.variant: s for a in ok if (s := _spec(a)) is not None}
    if not specs:
        return [], {}
    try:
        plan = make_plan(shape[3], specs)
        acc = None
        for t0, Y in stream_masked(found.bold, mask):
            acc = accumulate(acc, Y, plan.weights[t0:t0 + Y.shape[0]])
    except (ValueError, OSError, EOFError) as exc:
        return [], _note(ok, f"BOLD not measured: {found.bold.name} could not be read ({type(exc).__name__}: {exc})")
    parts = finish(acc, plan)
    folder = run_folder(Path(output_dir), run.entities)
    written: list[Path] = []
    results: dict[str, BoldResult] = {}
    mask_idx = np.flatnonzero(mask.ravel())  # C order, as block[mask] in stream_masked
    for a in ok:
        if a.variant not in specs:
            continue
        section: dict[str, Any] = {"status": "measured", "bold": found.bold.name, "mask": found.mask.name,
                                   "n_voxels": int(mask.sum()), "units": "percent signal change (OLS)",
                                   "contrasts": {}}
        for contrast in specs[a.variant]["weights"]:
            key = (a.variant, contrast)
            stem = f"{run.prefix}_desc-{a.variant}_contrast-{camel_name(contrast)}_stat-effect"
            files, summary = _write_maps(folder, stem, parts[key], plan.classes[key], mask_idx, shape, affine,
                                         contrast, a.variant, found, Path(output_dir))
            written += files
            section["contrasts"][contrast] = summary
        results[a.variant] = (section, [])
    return written, results


def _write_maps(folder: Path, stem: str, p: np.ndarray, classes: Sequence[str], mask_idx: np.ndarray,
                shape: tuple[int, ...], affine: np.ndarray, contrast: str, variant: str, found: Any,
                root: Path) -> tuple[list[Path], dict[str, Any]]:
    """Write one contrast's effect map, its class maps and their sidecar; return the files and the record summary."""
    effect = np.zeros(int(np.prod(shape[:3])))
    effect[mask_idx] = p.sum(axis=1)
    vol = effect.reshape(shape[:3])
    four = np.zeros((int(np.prod(shape[:3])), len(classes)))
    four[mask_idx] = p
    four = four.reshape(tuple(shape[:3]) + (len(classes),))
    f_eff = atomic_write_bytes(folder / f"{stem}_statmap.nii.gz", _nifti_gz(vol, affine))
    f_cls = atomic_write_bytes(folder / f"{stem}_classes.nii.gz", _nifti_gz(four, affine))
    sidecar = {"Classes": list(classes), "Contrast": contrast, "Variant": variant,
               "Units": "percent signal change", "Sum": f"the volumes sum to {f_eff.name}",
               "Sources": [found.bold.name, found.mask.name]}
    atomic_write_text(f_cls.with_name(f_cls.name.replace(".nii.gz", ".json")), json.dumps(sidecar, indent=2) + "\n")
    summary = summarize_parts(p, classes)
    summary["statmap"] = f_eff.relative_to(root).as_posix()
    summary["classes_map"] = f_cls.relative_to(root).as_posix()
    return [f_eff, f_cls], summary
