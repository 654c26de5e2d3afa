"""Writing a whole simulated BIDS + fMRIPrep dataset, byte for byte deterministic.

Part of :mod:`nbdiag.demo.synth` (see its docstring for the determinism rules).
"""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd

from nbdiag.demo.synth.events import EventsRecipe, _float_format
from nbdiag.demo.synth.specs import DatasetSpec, RunSpec, run_paths
from nbdiag.demo.synth.confounds import make_confounds
from nbdiag.demo.synth.images import _annex_target, _header_only_bytes, _mask_img, _nifti_bytes, _tiny_bold

# --------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------
class _Writer:
    """Writes files strictly inside ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.real_root = Path(os.path.realpath(root))

    def _check(self, path: Path) -> Path:
        target = Path(os.path.abspath(path))
        existing = target.parent
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        try:
            target.relative_to(self.root)
            Path(os.path.realpath(existing)).relative_to(self.real_root)
        except ValueError:
            raise ValueError(
                f"refusing to write outside the dataset root {self.root}: {path}"
            ) from None
        return target

    def _prepare(self, path: Path) -> Path:
        path = self._check(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink():
            path.unlink()
        return path

    def bytes(self, path: Path, data: bytes) -> None:
        path = self._prepare(path)
        path.write_bytes(data)

    def text(self, path: Path, text: str) -> None:
        self.bytes(path, text.encode("utf-8"))

    def json(self, path: Path, obj: Any) -> None:
        self.text(path, json.dumps(obj, indent=2) + "\n")

    def tsv(self, path: Path, table: pd.DataFrame) -> None:
        text = table.to_csv(
            sep="\t", index=False, na_rep="n/a", float_format=_float_format,
            lineterminator="\n",
        )
        self.text(path, text)

    def symlink(self, path: Path, target: str) -> None:
        path = self._prepare(path)
        os.symlink(target, path)


def _run_rng(spec: DatasetSpec, run: RunSpec) -> np.random.Generator:
    seed = run.seed if run.seed is not None else zlib.crc32(run.prefix.encode())
    return np.random.default_rng([int(spec.seed), int(seed)])


def _run_events(run: RunSpec, rng: np.random.Generator) -> pd.DataFrame:
    if isinstance(run.events, pd.DataFrame):
        return run.events.copy()
    recipe = run.events if run.events is not None else EventsRecipe()
    return recipe.make(rng)


def _write_image(
    w: _Writer, path: Path, root: Path, run: RunSpec, tiny: nib.Nifti1Image | None,
    rng: np.random.Generator,
) -> None:
    if run.image == "tiny":
        assert tiny is not None
        w.bytes(path, _nifti_bytes(tiny))
    elif run.image == "header":
        w.bytes(path, _header_only_bytes((*run.shape, run.n_scans), run.t_r))
    elif run.image == "missing":
        w.symlink(path, _annex_target(path, root, path.name))
    else:  # broken
        w.bytes(path, b"\x1f\x8bnot a nifti\n" + rng.bytes(64))


def _dominant(values: list[Any]) -> Any:
    return max(sorted(set(values), key=str), key=values.count)


def write_dataset(root: str | os.PathLike[str], spec: DatasetSpec) -> Path:
    """Write a synthetic BIDS dataset with fMRIPrep derivatives.

    Raw BIDS: ``dataset_description.json``, ``README``, ``participants.tsv``,
    ``task-<task>_bold.json`` (``RepetitionTime``, ``TaskName``; per-run
    ``*_bold.json`` only where a run's TR/slice timing differs) and, per run,
    ``*_events.tsv`` and ``*_bold.nii.gz``.  fMRIPrep derivatives under
    ``root/<spec.derivatives>``: ``dataset_description.json`` (GeneratedBy
    fMRIPrep) and, per run, ``*_space-<space>[_res-<res>]_desc-preproc_bold``
    (``.nii.gz`` + ``.json`` with ``RepetitionTime`` and ``StartTime`` when
    set), ``*_desc-brain_mask.nii.gz`` and
    ``*_desc-confounds_timeseries.tsv`` + ``.json``.  File locations:
    :func:`run_paths`.

    Parameters
    ----------
    root : path-like
        Dataset root; created if needed.  Files are only ever written inside
        it; files of an earlier, different spec are not removed.
    spec : DatasetSpec
        What to write.

    Returns
    -------
    pathlib.Path
        The absolute dataset root.

    Notes
    -----
    Works with ``nilearn.glm.first_level.first_level_from_bids(root, task,
    space_label=spec.space, img_filters=[("desc", "preproc")],
    derivatives_folder=spec.derivatives, ...)``; for ``"tiny"`` images the
    returned models can be fitted.
    """
    root = Path(os.path.abspath(root))
    root.mkdir(parents=True, exist_ok=True)
    w = _Writer(root)
    task_meta = _write_raw_top(w, root, spec)
    _write_derivatives_description(w, root / spec.derivatives)
    for run in spec.runs:
        _write_run(w, root, spec, run, task_meta[run.task])
    return root


def _write_raw_top(w: _Writer, root: Path, spec: DatasetSpec) -> dict[str, dict[str, Any]]:
    """The raw dataset's top-level files; returns each task's ``task-<task>_bold.json`` content.

    ``dataset_description.json``, ``README``, ``participants.tsv`` and one sidecar per task
    (BIDS inheritance: the most common TR of its runs; runs that differ get their own).
    """
    w.json(root / "dataset_description.json", {
        "Name": spec.name,
        "BIDSVersion": "1.8.0",
        "DatasetType": "raw",
        "GeneratedBy": [{
            "Name": "nbdiag.demo.synth",
            "Description": "Synthetic n-back dataset (no real participants).",
        }],
    })
    w.text(root / "README", (
        f"{spec.name}\n\nSynthetic BIDS dataset with fMRIPrep-style derivatives,\n"
        "written by nbdiag.demo.synth. No real participants; images may be\n"
        "header-only (no voxel data).\n"
    ))
    subjects = sorted({r.subject for r in spec.runs})
    w.tsv(root / "participants.tsv", pd.DataFrame({
        "participant_id": [f"sub-{s}" for s in subjects],
    }))
    # dataset-level sidecar per task (BIDS inheritance); per-run overrides
    task_meta: dict[str, dict[str, Any]] = {}
    for task in sorted({r.task for r in spec.runs}):
        runs = [r for r in spec.runs if r.task == task]
        task_meta[task] = {
            "RepetitionTime": float(_dominant([r.t_r for r in runs])),
            "TaskName": task,
        }
        w.json(root / f"task-{task}_bold.json", task_meta[task])
    return task_meta


def _write_derivatives_description(w: _Writer, deriv_root: Path) -> None:
    """fMRIPrep's ``dataset_description.json`` in the derivatives folder."""
    w.json(deriv_root / "dataset_description.json", {
        "Name": "fMRIPrep - fMRI PREProcessing workflow",
        "BIDSVersion": "1.4.0",
        "DatasetType": "derivative",
        "GeneratedBy": [{
            "Name": "fMRIPrep",
            "Version": "23.2.1",
            "CodeURL": "https://github.com/nipreps/fmriprep/archive/23.2.1.tar.gz",
        }],
        "HowToAcknowledge": "Synthetic outputs written by nbdiag.demo.synth "
                            "in fMRIPrep's layout; fMRIPrep was not run.",
        "SourceDatasets": [{"URL": "../../", "Version": "synthetic"}],
    })


def _write_run(w: _Writer, root: Path, spec: DatasetSpec, run: RunSpec, task_meta: dict[str, Any]) -> None:
    """One run's files: events, raw sidecar (where it differs from the task's), confounds + JSON,
    raw and preprocessed images, the preprocessed sidecar and the brain mask."""
    rng = _run_rng(spec, run)
    paths = run_paths(root, spec, run)
    events = _run_events(run, rng)
    written = events
    if run.drop_instruction:
        written = events[events["trial_type"] != "INSTRUCTION"]
    w.tsv(paths.events, written.reset_index(drop=True))

    raw_meta: dict[str, Any] = {"RepetitionTime": float(run.t_r), "TaskName": run.task}
    if run.start_time is not None:
        n_slices = run.shape[2]
        raw_meta["SliceTiming"] = [
            round(float(s), 6)
            for s in np.arange(n_slices) * run.t_r / n_slices
        ]
    if raw_meta != task_meta:
        w.json(paths.raw_sidecar, raw_meta)

    confounds, conf_json = make_confounds(run, events, rng)
    w.tsv(paths.confounds, confounds)
    w.json(paths.confounds_sidecar, conf_json)

    tiny = _tiny_bold(run, events, confounds, rng) if run.image == "tiny" else None
    _write_image(w, paths.raw_bold, root, run, tiny, rng)
    _write_image(w, paths.bold, root, run, tiny, rng)
    prep_meta: dict[str, Any] = {"RepetitionTime": float(run.t_r)}
    if run.start_time is not None:
        prep_meta["SliceTimingCorrected"] = True
        prep_meta["StartTime"] = float(run.start_time)
    prep_meta["SkullStripped"] = False
    prep_meta["TaskName"] = run.task
    w.json(paths.bold_sidecar, prep_meta)
    if run.image == "missing":
        w.symlink(paths.mask, _annex_target(paths.mask, root, paths.mask.name))
    else:
        w.bytes(paths.mask, _nifti_bytes(_mask_img(run.shape)))
