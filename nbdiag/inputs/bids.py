"""Find the runs ``first_level_from_bids`` would model, and their inputs.

Uses ``nilearn.interfaces.bids`` for file queries, so the selection is
nilearn's: same subjects, same filters (``task``, ``space``, ``img_filters``),
same dataset-level ``t_r`` / ``slice_time_ref`` inference. Differences from
nilearn are deliberate and recorded:

* nilearn stops at the first subject with a problem; nbdiag records an error
  for that run and goes on;
* nilearn reads ``t_r`` from the *first* sidecar it finds and uses it for every
  run; nbdiag does the same (parity) and records each run's own sidecar value
  so a mismatch can be flagged (``tr_mismatch``);
* n_scans comes from the image header only (no voxel data is read). When the
  image is missing or unreadable (e.g. a DataLad annex link not fetched),
  n_scans is the confounds row count, with a note.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
from nilearn.interfaces.bids.query import (
    get_bids_files,
    infer_repetition_time_from_dataset,
    infer_slice_timing_start_time_from_dataset,
    parse_bids_filename,
)
from nilearn.interfaces.bids.utils import bids_entities

from nbdiag.config import ModelSettings
from nbdiag.errors import InputError

NILEARN_DEFAULT_SPACE = "MNI152NLin2009cAsym"
ENTITY_ORDER = ("sub", "ses", "task", "acq", "ce", "rec", "dir", "run", "echo", "part")


class DatasetError(Exception):
    """The dataset as a whole cannot be audited (no subject, no run...)."""


@dataclass(frozen=True)
class Resolved:
    """A value and where it came from."""

    value: Any
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "source": self.source}


@dataclass
class RunInputs:
    """One run's input files and resolved acquisition settings."""

    subject: str
    entities: dict[str, str]
    bold: Path
    events: Path | None = None
    confounds: Path | None = None
    bold_sidecar: Path | None = None
    t_r: Resolved | None = None
    slice_time_ref: Resolved | None = None
    n_scans: Resolved | None = None
    own_t_r: float | None = None
    notes: list[str] = field(default_factory=list)
    error: InputError | None = None
    #: BIDS_DIR: input files are written to records relative to it (``bids::<path>``).
    root: Path | None = None

    @property
    def session(self) -> str | None:
        return self.entities.get("ses")

    @property
    def run(self) -> str | None:
        return self.entities.get("run")

    @property
    def prefix(self) -> str:
        """BIDS prefix, e.g. ``sub-01_ses-1_task-nback_acq-X_run-01``."""
        return "_".join(f"{k}-{self.entities[k]}" for k in ENTITY_ORDER if k in self.entities)

    @property
    def key(self) -> tuple:
        return tuple((k, self.entities[k]) for k in ENTITY_ORDER if k in self.entities)

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject, "session": self.session, "task": self.entities.get("task"),
            "run": self.run, "entities": dict(self.entities), "prefix": self.prefix,
            "files": {
                "bold": bids_uri(self.bold, self.root), "events": bids_uri(self.events, self.root),
                "confounds": bids_uri(self.confounds, self.root),
                "bold_sidecar": bids_uri(self.bold_sidecar, self.root),
                "confounds_sidecar": bids_uri(self.confounds.with_suffix(".json"), self.root)
                if self.confounds else None,
            },
        }


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


def bids_uri(path: str | Path | None, root: str | Path | None) -> str | None:
    """Name ``path`` as BIDS derivatives do: ``bids::<path relative to root>``.

    Outputs never hold an absolute path of the machine: a file outside ``root`` (or
    with no ``root``) is named by its file name only.
    """
    if path is None:
        return None
    p = Path(path)
    if root is not None:
        try:
            return "bids::" + p.absolute().relative_to(Path(root).absolute()).as_posix()
        except ValueError:
            pass
    return p.name


def _filters(task: str, space: str | None, img_filters, supported) -> list[tuple[str, str]]:
    """nilearn's ``_make_bids_files_filter`` (entities not supported are skipped)."""
    out = [("task", task)]
    if space is not None:
        out.append(("space", space))
    out.extend(f for f in img_filters if f[0] in supported)
    return out


def bids_entities_of(path: str | Path) -> dict[str, str]:
    """Entities of a BIDS file name, with nilearn's parser.

    nilearn >= 0.13 returns ``{"entities": {...}, ...}``; 0.12 returns the entities
    as top-level keys (``legacy=True``) and lists them in ``file_fields``.
    """
    parsed = parse_bids_filename(str(path))
    if "entities" in parsed:
        return dict(parsed["entities"])
    return {k: parsed[k] for k in parsed.get("file_fields", []) if k in parsed}


def _raw_entities(bold: Path) -> dict[str, str]:
    ents = bids_entities_of(bold)
    return {k: ents[k] for k in ENTITY_ORDER if k in ents}


def list_subjects(derivatives: Path, sub_labels: tuple[str, ...], exclude: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Subjects to audit and requested labels that do not exist (nilearn's rule)."""
    if sub_labels:
        wanted = list(sub_labels)
    else:
        wanted = [p.name.split("-", 1)[1] for p in derivatives.glob("sub-*") if p.is_dir()]
    present = [s for s in wanted if (derivatives / f"sub-{s}").is_dir()]
    missing = [s for s in wanted if s not in present]
    return sorted(set(present) - set(exclude)), missing


def resolve_dataset_timing(bids_dir: Path, derivatives: Path, model: ModelSettings, space: str) -> tuple[Resolved | None, Resolved]:
    """Dataset-level ``t_r`` and ``slice_time_ref``, as ``first_level_from_bids`` infers them."""
    supported = bids_entities()["raw"] + bids_entities()["derivatives"]
    filters = _filters(model.task_label, space, model.img_filters, supported)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        deriv_json = get_bids_files(derivatives, modality_folder="func", file_tag="bold", file_type="json",
                                    filters=filters)
        inferred = infer_repetition_time_from_dataset(bids_path=derivatives, filters=filters)
        source = f"RepetitionTime in {deriv_json[0]}" if inferred is not None and deriv_json else None
        if inferred is None:
            raw_filters = _filters(model.task_label, None, [f for f in model.img_filters if f[0] != "desc"],
                                   bids_entities()["raw"])
            raw_json = get_bids_files(bids_dir, modality_folder="func", file_tag="bold", file_type="json",
                                      filters=raw_filters)
            inferred = infer_repetition_time_from_dataset(bids_path=bids_dir, filters=raw_filters)
            if inferred is not None:
                source = f"RepetitionTime in {raw_json[0] if raw_json else 'raw dataset sidecar'}"
        start_time = infer_slice_timing_start_time_from_dataset(bids_path=derivatives, filters=filters)

    if model.t_r is not None:
        note = "" if inferred is None or float(inferred) == model.t_r else f" (the dataset says {inferred}: {source})"
        t_r = Resolved(float(model.t_r), f"settings (t_r){note}")
    elif inferred is not None:
        t_r = Resolved(float(inferred), f"{source} (first sidecar found, used for every run as nilearn does)")
    else:
        t_r = None

    if start_time is not None and t_r is not None:
        inferred_str = float(start_time) / t_r.value
        str_source = f"StartTime {start_time} s / t_r in {deriv_json[0] if deriv_json else 'derivatives sidecar'}"
    else:
        inferred_str = 0.0
        str_source = "nilearn default 0.0 (no StartTime in the derivatives sidecars)"
    if model.slice_time_ref is not None:
        slice_time_ref = Resolved(float(model.slice_time_ref), "settings (slice_time_ref)")
    else:
        slice_time_ref = Resolved(float(inferred_str), str_source)
    return t_r, slice_time_ref


def read_n_scans(bold: Path, confounds: Path | None) -> Resolved:
    """Number of volumes from the image header only; else the confounds rows.

    Raises
    ------
    InputError
        If neither the image header nor a confounds file can give it.
    """
    problem = None
    if bold.exists():
        try:
            img = nib.load(str(bold))  # reads the header only; data stays on disk
            shape = img.shape
            if len(shape) != 4:
                problem = f"image is {len(shape)}D, expected 4D (shape {shape})"
            else:
                return Resolved(int(shape[3]), f"image header ({bold.name})")
        except Exception as exc:  # noqa: BLE001 - any unreadable image
            problem = f"image unreadable: {type(exc).__name__}: {exc}"
    else:
        problem = ("image not present (broken link: a DataLad annex file not fetched?)"
                   if bold.is_symlink() else "image not present")
    if confounds is not None and confounds.exists():
        with confounds.open() as fh:
            n_rows = sum(1 for line in fh if line.strip()) - 1
        return Resolved(n_rows, f"confounds row count ({confounds.name}); {problem}")
    raise InputError(f"cannot tell the number of volumes: {problem}, and no confounds file to count rows",
                     file=bold, expected="a readable 4D image header or a confounds file", found=problem)


def _own_t_r(sidecar: Path | None) -> float | None:
    if sidecar is None or not sidecar.exists():
        return None
    try:
        value = json.loads(sidecar.read_text()).get("RepetitionTime")
        return None if value is None else float(value)
    except (ValueError, OSError):
        return None


def _find_events(bids_dir: Path, run: RunInputs, task: str) -> Path | None:
    """events.tsv for a run: matching raw entities (nilearn's check), else root-level."""
    filters = [("task", task)] + [(k, v) for k, v in run.entities.items() if k not in ("sub", "task")]
    found = get_bids_files(bids_dir, modality_folder="func", file_tag="events", file_type="tsv",
                           sub_label=run.subject, filters=filters)
    if len(found) == 1:
        return Path(found[0])
    if len(found) > 1:
        raise InputError("more than one events.tsv matches this run", file=run.bold,
                         expected="exactly one events file", found=", ".join(found))
    root = get_bids_files(bids_dir, file_tag="events", file_type="tsv", filters=[("task", task)],
                          sub_folder=False)
    if len(root) == 1:
        return Path(root[0])
    return None


def _find_confounds(bold: Path) -> Path | None:
    """The confounds file ``load_confounds`` would pick for this image."""
    try:
        from nilearn.interfaces.fmriprep.load_confounds_utils import _get_file_name

        return Path(_get_file_name(str(bold)))
    except ValueError as exc:
        if "more than one" in str(exc).lower():
            raise InputError("more than one confounds file matches this image", file=bold,
                             expected="one *_desc-confounds_timeseries.tsv", found=str(exc).split(":", 1)[-1].strip()) from None
        return None
    except ImportError:  # pragma: no cover - private helper moved in another nilearn
        ents = bids_entities_of(bold)
        stem = "_".join(f"{k}-{v}" for k, v in ents.items() if k in ENTITY_ORDER)
        for suffix in ("_desc-confounds_timeseries.tsv", "_desc-confounds_regressors.tsv"):
            candidate = bold.parent / f"{stem}{suffix}"
            if candidate.exists():
                return candidate
        return None


def discover_runs(bids_dir: str | Path, model: ModelSettings, bids_filter=None) -> tuple[list[RunInputs], list[str]]:
    """Runs ``first_level_from_bids`` would model, each with inputs resolved.

    ``bids_filter`` (:class:`nbdiag.inputs.bids_filter.BidsFilter`, from fMRIPrep's
    ``--bids-filter-file``) keeps only the BOLD images its ``bold`` filter accepts.

    Returns
    -------
    runs : list of RunInputs
        Sorted by subject then file name (nilearn's order). A run whose inputs
        are broken has ``error`` set; the others are unaffected.
    notes : list of str
        Dataset-level notes (unknown participant labels, t_r source...).

    Raises
    ------
    DatasetError
        If the dataset or derivatives folder is missing or no run matches.
    """
    bids_dir = Path(bids_dir).absolute()
    if not bids_dir.is_dir():
        raise DatasetError(f"BIDS_DIR does not exist or is not a folder: {bids_dir}")
    derivatives = (bids_dir / model.derivatives_folder).absolute()
    if not derivatives.is_dir():
        raise DatasetError(
            f"derivatives folder not found: {derivatives} (set --derivatives / derivatives_folder, "
            "relative to BIDS_DIR, e.g. derivatives/fmriprep)"
        )
    space = model.space_label if model.space_label is not None else NILEARN_DEFAULT_SPACE
    notes: list[str] = []
    subjects, missing = list_subjects(derivatives, model.sub_labels, model.exclude_subjects)
    for label in missing:
        notes.append(f"participant label '{label}' not found: no folder sub-{label} in {derivatives}")
    if not subjects:
        raise DatasetError(
            f"no subject to audit in {derivatives}"
            + (f" (requested: {', '.join(model.sub_labels)})" if model.sub_labels else " (no sub-* folders)")
        )
    t_r, slice_time_ref = resolve_dataset_timing(bids_dir, derivatives, model, space)
    if t_r is None:
        notes.append("t_r not given and no RepetitionTime found in any bold.json sidecar")

    supported = bids_entities()["raw"] + bids_entities()["derivatives"]
    filters = _filters(model.task_label, space, model.img_filters, supported)
    runs: list[RunInputs] = []
    n_filtered = 0
    for subject in subjects:
        images = get_bids_files(derivatives, modality_folder="func", file_tag="bold", file_type="nii*",
                                sub_label=subject, filters=filters)
        if bids_filter is not None:
            kept = [i for i in images if bids_filter.matches(bids_entities_of(i), extension=_extension(i))]
            n_filtered += len(images) - len(kept)
            if images and not kept:
                notes.append(f"sub-{subject}: no BOLD image passes the bids filter file {Path(bids_filter.path).name}")
                continue
            images = kept
        if not images:
            notes.append(f"sub-{subject}: no BOLD image matches {filters} in {derivatives}")
            continue
        seen: dict[tuple, Path] = {}
        for image in images:
            bold = Path(image)
            run = RunInputs(subject=subject, entities=_raw_entities(bold), bold=bold, root=bids_dir)
            runs.append(run)
            sidecar = Path(str(bold).split(".nii")[0] + ".json")
            run.bold_sidecar = sidecar if sidecar.exists() else None
            run.own_t_r = _own_t_r(run.bold_sidecar)
            run.t_r, run.slice_time_ref = t_r, slice_time_ref
            try:
                # nilearn's _check_bids_image_list: one image per (session, run), whatever other entities say
                nilearn_key = (run.session, run.run)
                if (run.session or run.run) and nilearn_key in seen:
                    raise InputError(
                        "more than one image for the same session/run: first_level_from_bids refuses this "
                        "subject ('Too many images found'); narrow the selection with img_filters, e.g. "
                        "--img-filter acq LABEL", file=bold,
                        expected="one image per session/run", found=f"{seen[nilearn_key].name} and {bold.name}",
                    )
                seen[nilearn_key] = bold
                if t_r is None:
                    raise InputError("no repetition time: give --t-r or add RepetitionTime to the bold.json sidecars",
                                     file=run.bold_sidecar or bold, column="RepetitionTime",
                                     expected="a number of seconds", found="nothing")
                run.confounds = _find_confounds(bold)
                run.events = _find_events(bids_dir, run, model.task_label)
                if run.events is None:
                    raise InputError(f"no events.tsv for this run in {bids_dir}", file=bold,
                                     expected=f"{run.prefix}_events.tsv", found="no file")
                run.n_scans = read_n_scans(bold, run.confounds)
                if not run.n_scans.source.startswith("image header"):
                    run.notes.append(f"n_scans {run.n_scans.value} from {run.n_scans.source}")
            except InputError as exc:
                run.error = exc
    if bids_filter is not None:
        notes.append(f"bids filter file {Path(bids_filter.path).name} (bold: {bids_filter.to_dict()}): "
                     f"{n_filtered} BOLD image(s) left out, {len(runs)} kept"
                     + (f"; queries not used by nbdiag: {', '.join(bids_filter.ignored)}" if bids_filter.ignored else ""))
    if not runs:
        raise DatasetError(
            f"no run found for task '{model.task_label}', space '{space}', filters {list(model.img_filters)} in {derivatives}"
            + (f" that passes the bids filter file {bids_filter.path} (bold: {bids_filter.to_dict()})"
               if bids_filter is not None else "")
        )
    return runs, notes


def _extension(path: str | Path) -> str:
    name = Path(path).name
    return name[name.index("."):] if "." in name else ""
