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

import glob
import gzip
import math
import re
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import nibabel as nib
from nilearn.interfaces.bids.query import (
    get_bids_files,
    parse_bids_filename,
)
from nilearn.interfaces.bids.utils import bids_entities

from nbdiag.core import compat
from nbdiag.core.compat import confounds_file_for
from nbdiag.config import ModelSettings
from nbdiag.core.errors import InputError, SettingsError
from nbdiag.inputs.safety import (allowed_roots, check_input_file, display, is_unfetched_annex,
                                  read_json_object, repetition_time)

NILEARN_DEFAULT_SPACE = "MNI152NLin2009cAsym"
#: a BIDS label: letters and digits only (checked before a label becomes part of a file name)
_BIDS_LABEL = re.compile(r"^[A-Za-z0-9]+$")
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
    t_r_sources: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: InputError | None = None
    #: resolved folders inputs may be read from (BIDS_DIR, derivatives); None: not checked
    roots: tuple[Path, ...] | None = None
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
        wanted = [p.name.split("-", 1)[1] for p in derivatives.glob("sub-*")
                  if p.is_dir() and _BIDS_LABEL.match(p.name.split("-", 1)[1])]
    present = [s for s in wanted if (derivatives / f"sub-{s}").is_dir()]
    missing = [s for s in wanted if s not in present]
    return sorted(set(present) - set(exclude)), missing


def _first_sidecar_value(files: list, key: str, notes: list[str] | None,
                         roots: tuple[Path, ...] | None) -> tuple[Any, str | None]:
    """nilearn's ``_get_metadata_from_bids``: ``key`` of the *first* sidecar, checked.

    nilearn's ``json.load`` fails on an empty, BOM-prefixed or non-object first sidecar (a
    traceback that names no file). nbdiag notes the file and what is wrong with it, and takes
    the value from the next readable sidecar instead, saying so in the source.
    """
    skipped: list[str] = []
    for i, name in enumerate(files):
        data, problem = read_json_object(Path(name), roots)
        value = None
        if data is not None:
            if key == "RepetitionTime":
                value, problem = repetition_time(data, display(name))
            else:
                value = data.get(key)
                if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                          or not math.isfinite(value) or value < 0):
                    value, problem = None, f"{display(name)}: {key} must be a finite number >= 0; found {value!r}"
        if problem is not None:
            if notes is not None:
                notes.append(f"sidecar unreadable for {key}: {problem}"
                             + (" (nilearn's first_level_from_bids reads this file first and would stop here)"
                                if i == 0 else ""))
            skipped.append(display(name))
            continue
        if value is None and not skipped:
            return None, None  # nilearn: the first sidecar has no such key -> not found
        if value is None:
            continue
        note = f" (the first sidecar(s) {', '.join(skipped)} could not be used)" if skipped else ""
        return value, f"{key} in {name}{note}"
    return None, None


def resolve_dataset_timing(bids_dir: Path, derivatives: Path, model: ModelSettings, space: str,
                           notes: list[str] | None = None) -> tuple[Resolved | None, Resolved]:
    """Dataset-level ``t_r`` and ``slice_time_ref``, as ``first_level_from_bids`` infers them.

    Sidecars that cannot be read (empty, BOM, not an object, a RepetitionTime that is not a
    finite number > 0) are appended to ``notes``, naming the file.
    """
    supported = bids_entities()["raw"] + bids_entities()["derivatives"]
    filters = _filters(model.task_label, space, model.img_filters, supported)
    roots = allowed_roots(bids_dir, derivatives)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        deriv_json = get_bids_files(derivatives, modality_folder="func", file_tag="bold", file_type="json",
                                    filters=filters)
        inferred, source = _first_sidecar_value(deriv_json, "RepetitionTime", notes, roots)
        if inferred is None:
            raw_filters = _filters(model.task_label, None, [f for f in model.img_filters if f[0] != "desc"],
                                   bids_entities()["raw"])
            raw_json = get_bids_files(bids_dir, modality_folder="func", file_tag="bold", file_type="json",
                                      filters=raw_filters)
            inferred, source = _first_sidecar_value(raw_json, "RepetitionTime", notes, roots)
        start_time, start_source = _first_sidecar_value(deriv_json, "StartTime", notes, roots)

    if model.t_r is not None:
        note = "" if inferred is None or float(inferred) == model.t_r else f" (the dataset says {inferred}: {source})"
        t_r = Resolved(float(model.t_r), f"settings (t_r){note}")
    elif inferred is not None:
        t_r = Resolved(float(inferred), f"{source} (first sidecar found, used for every run as nilearn does)")
    else:
        t_r = None

    if start_time is not None and t_r is not None:
        inferred_str = float(start_time) / t_r.value
        str_source = f"StartTime {start_time} s / t_r ({start_source})"
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
            shape = _load_header(bold).get_data_shape()
            if len(shape) != 4:
                problem = f"image is {len(shape)}D, expected 4D (shape {shape})"
            else:
                return Resolved(int(shape[3]), f"image header ({bold.name})")
        except Exception as exc:  # noqa: BLE001 - any unreadable image
            problem = f"image unreadable: {type(exc).__name__}: {exc}"
    else:
        problem = ("image not present (an unfetched git-annex/DataLad file)" if is_unfetched_annex(bold)
                   else "image not present (broken link)" if bold.is_symlink() else "image not present")
    if confounds is not None and confounds.is_file():
        try:
            with confounds.open("rb") as fh:
                n_rows = sum(1 for line in fh if line.strip()) - 1
        except OSError as exc:
            raise InputError(f"cannot tell the number of volumes: {problem}, and the confounds file cannot be "
                             f"read ({type(exc).__name__})", file=bold, found=problem) from None
        return Resolved(n_rows, f"confounds row count ({confounds.name}); {problem}")
    raise InputError(f"cannot tell the number of volumes: {problem}, and no confounds file to count rows",
                     file=bold, expected="a readable 4D image header or a confounds file", found=problem)


def _load_header(image: Path):
    """The image header (``nib.load(image).header``; the data stay on disk), read once per file version.

    Discovery asks for the volume count and the header TR of the same image: the header is
    memoised on (path, size, modification time), so a file changed on disk is read again.
    """
    st = Path(image).stat()
    return _cached_header(str(image), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=64)
def _cached_header(path: str, size: int, mtime_ns: int):
    if path.endswith((".nii", ".nii.gz")):
        # a single-file NIfTI-1: its 348-byte header read directly (what nib.load parses first,
        # without trying every image class on the file name); anything else goes to nib.load
        try:
            with (gzip.open if path.endswith(".gz") else open)(path, "rb") as fh:
                raw = nib.Nifti1Header.from_fileobj(fh, check=False)
            if int(raw["sizeof_hdr"]) == 348 and raw["magic"].item() == b"n+1":
                return nib.Nifti1Header(raw.binaryblock, raw.endianness, check=True)  # nib.load's checks
        except Exception:  # noqa: BLE001 - NIfTI-2, damaged or not NIfTI: nib.load says what it is
            pass
    return nib.load(path).header


def _own_t_r(sidecar: Path | None, roots: tuple[Path, ...] | None = None,
             notes: list[str] | None = None) -> float | None:
    """The run's own ``RepetitionTime``; an unreadable or invalid sidecar is a note naming it."""
    if sidecar is None or not (sidecar.exists() or sidecar.is_symlink()):
        return None
    data, problem = read_json_object(sidecar, roots)
    value = None
    if data is not None:
        value, problem = repetition_time(data, display(sidecar))
    if problem is not None and notes is not None:
        notes.append(f"bold sidecar not used: {problem}")
    return value


def read_sidecar_t_r(sidecar: Path) -> float | None:
    """``RepetitionTime`` (s) of one JSON sidecar, or None when absent/unreadable.

    (Sidecar hardening — empty files, BOM, values such as ``"0.8s"`` — is
    done by ``_own_t_r``'s callers; this helper only reads a number.)
    """
    return _own_t_r(sidecar)


def _header_t_r(image: Path) -> tuple[float, str] | None:
    """(TR in s, how it was read) from a NIfTI header's ``pixdim[4]`` and ``xyzt_units``; None if not 4D/unset.

    ``msec``/``usec`` are converted to seconds. A value above 100 with units
    ``sec`` or ``unknown`` is read as milliseconds (a common mislabel) and the
    label says so; ``unknown`` units with the placeholder value 1 give no source.
    """
    try:
        hdr = _load_header(image)
        zooms = hdr.get_zooms()
        if len(zooms) < 4:
            return None
        value = float(zooms[3])
        unit = hdr.get_xyzt_units()[1]
    except Exception:  # noqa: BLE001 - an unreadable header gives no TR source
        return None
    if not value > 0 or (unit == "unknown" and value == 1.0):
        return None
    scale = {"msec": 1e-3, "usec": 1e-6}.get(unit, 1.0)
    how = unit if unit != "sec" else ""
    if unit in ("sec", "unknown") and value > 100:
        scale, how = 1e-3, f"{value:g} with units '{unit}': read as ms"
    elif unit == "unknown":
        how = "units unknown: read as s"
    return round(value * scale, 6), how


def _raw_sidecar_chain(bids_dir: Path, entities: dict[str, str], memo: dict | None = None) -> list[Path]:
    """Raw ``*_bold.json`` files that apply to a run by BIDS inheritance, least specific first.

    A sidecar at the dataset root, subject or session level (or in ``func/``)
    applies when all of its entities are entities of the run. ``memo`` (one dict per
    discovery) keeps the listing of the dataset root, which every run would list again.
    """
    sub = entities.get("sub")
    ses = entities.get("ses")
    folders = [bids_dir]
    if sub:
        folders.append(bids_dir / f"sub-{sub}")
        if ses:
            folders.append(bids_dir / f"sub-{sub}" / f"ses-{ses}")
        folders.append((bids_dir / f"sub-{sub}" / f"ses-{ses}" / "func") if ses else (bids_dir / f"sub-{sub}" / "func"))
    chain: list[Path] = []
    for folder in folders:
        if not folder.is_dir():
            continue
        found = []
        if memo is not None and folder == bids_dir:
            key = ("root sidecars", str(bids_dir))
            if key not in memo:
                memo[key] = sorted(folder.glob("*_bold.json"))
            candidates = memo[key]
        else:
            candidates = sorted(folder.glob("*_bold.json"))
        for path in candidates:
            try:
                ents = bids_entities_of(path)
            except Exception:  # noqa: BLE001 - a file name nilearn cannot parse does not apply
                continue
            if ents and all(entities.get(k) == v for k, v in ents.items() if k in ENTITY_ORDER) \
                    and all(k in entities for k in ents if k in ENTITY_ORDER):
                found.append((sum(1 for k in ents if k in ENTITY_ORDER), path))
        chain += [p for _, p in sorted(found)]
    return chain


def collect_t_r_sources(bold: Path, bids_dir: Path | None, entities: dict[str, str],
                        derivative_sidecar: Path | None, settings_t_r: float | None,
                        root: Path | None = None, memo: dict | None = None) -> list[dict[str, Any]]:
    """Every repetition time a run's files and settings state, each with its source.

    Sources, in order: the image header (``pixdim[4]`` with its
    ``xyzt_units``: ``msec``/``usec`` converted to s), the raw image header
    when the raw image exists, the raw sidecar resolved by BIDS inheritance
    (dataset root ``task-*_bold.json``, subject and session levels, ``func/``;
    the most specific file that states ``RepetitionTime`` wins), the
    derivative sidecar next to the image, and the ``t_r`` setting
    (``--t-r``). Paths are relative to ``root`` (default ``bids_dir``).

    Returns
    -------
    list of dict
        ``{"source": kind, "value": seconds, "file": relative path or None}``.
    """
    def rel(path: Path) -> str:
        base = root or bids_dir
        try:
            return str(Path(path).absolute().relative_to(Path(base).absolute())) if base else Path(path).name
        except ValueError:
            return Path(path).name
    out: list[dict[str, Any]] = []
    head = _header_t_r(bold) if bold is not None and Path(bold).exists() else None
    if head is not None:
        out.append({"source": "image header (pixdim[4]" + (f", {head[1]}" if head[1] else "") + ")",
                    "value": head[0], "file": rel(bold)})
    prefix = "_".join(f"{k}-{entities[k]}" for k in ENTITY_ORDER if k in entities)
    if bids_dir is not None:
        sub, ses = entities.get("sub"), entities.get("ses")
        func = Path(bids_dir) / f"sub-{sub}" / (f"ses-{ses}" if ses else "") / "func"
        for ext in (".nii.gz", ".nii"):
            raw_img = func / f"{prefix}_bold{ext}"
            if raw_img.exists():
                h = _header_t_r(raw_img)
                if h is not None:
                    out.append({"source": "raw image header (pixdim[4]" + (f", {h[1]}" if h[1] else "")
                                + ")", "value": h[0], "file": rel(raw_img)})
                break
        value, where = None, None
        for path in _raw_sidecar_chain(Path(bids_dir), entities, memo):
            v = read_sidecar_t_r(path)
            if v is not None:
                value, where = v, path
        if value is not None:
            out.append({"source": "raw sidecar (BIDS inheritance)", "value": value, "file": rel(where)})
    if derivative_sidecar is not None:
        v = read_sidecar_t_r(derivative_sidecar)
        if v is not None:
            out.append({"source": "derivative sidecar", "value": v, "file": rel(derivative_sidecar)})
    if settings_t_r is not None:
        out.append({"source": "setting t_r (--t-r)", "value": float(settings_t_r), "file": None})
    return out


def t_r_disagreement(sources: list[dict[str, Any]], model_t_r: float | None, tol: float = 1e-3) -> bool:
    """Whether the stated repetition times (and the model's) are not all the same (within ``tol`` s)."""
    values = [float(s["value"]) for s in sources] + ([float(model_t_r)] if model_t_r is not None else [])
    return bool(values) and (max(values) - min(values)) > tol


def _bids_files(main_path: Path, file_tag: str, file_type: str, sub_label: str = "*", modality_folder: str = "*",
                filters: list | None = None, sub_folder: bool = True,
                memo: dict | None = None) -> list[str]:
    """nilearn's ``get_bids_files`` with its dataset-wide globs done once per discovery.

    nilearn globs ``sub-*/ses-*`` over the whole dataset on every call (to know whether
    sessions exist) and lists the dataset root for root-level files: per run, that is work
    in proportion to the number of subjects (quadratic over a study). Here both are kept in
    ``memo`` (one dict per discovery); the per-subject glob, the filter (nilearn's
    ``_filter_bids_files``) and the ordering are nilearn's. Without ``memo``, or when nilearn
    lays its helpers out differently, nilearn's function is called.
    """
    helpers = compat.private("nilearn.interfaces.bids.query", "_filter_bids_files")
    if memo is None or helpers is None:
        return get_bids_files(main_path, file_tag=file_tag, file_type=file_type, sub_label=sub_label,
                              modality_folder=modality_folder, filters=filters, sub_folder=sub_folder)
    (filter_bids_files,) = helpers
    main_path = Path(main_path)
    subject_level_files: list[str] = []
    if sub_folder:
        key = ("sessions", str(main_path))
        if key not in memo:
            memo[key] = bool(glob.glob(str(main_path / "sub-*" / "ses-*")))
        session_folder_exists = memo[key]
        files = str(main_path / f"sub-{sub_label}" / ("ses-*" if session_folder_exists else "") / modality_folder
                    / f"sub-{sub_label}*_{file_tag}.{file_type}")
        if modality_folder in ["anat", "func"] and session_folder_exists:
            subject_level_files = glob.glob(str(main_path / f"sub-{sub_label}" / modality_folder
                                                / f"sub-{sub_label}*_{file_tag}.{file_type}"))
        found = glob.glob(files)
    else:
        key = ("root", str(main_path), file_tag, file_type)
        if key not in memo:
            memo[key] = glob.glob(str(main_path / f"*{file_tag}.{file_type}"))
        found = list(memo[key])
    found.sort()
    filters = filters or []
    if filters or subject_level_files:
        filtered = filter_bids_files(found, filters)
        if subject_level_files:
            filtered.extend(filter_bids_files(subject_level_files, filters))
            filtered.sort(key=lambda file_: str(file_["file_path"]))
        return [ref["file_path"] for ref in filtered]
    return found


def _find_events(bids_dir: Path, run: RunInputs, task: str, memo: dict | None = None) -> Path | None:
    """events.tsv for a run: matching raw entities (nilearn's check), else root-level."""
    filters = [("task", task)] + [(k, v) for k, v in run.entities.items() if k not in ("sub", "task")]
    found = _bids_files(bids_dir, modality_folder="func", file_tag="events", file_type="tsv",
                        sub_label=run.subject, filters=filters, memo=memo)
    if len(found) == 1:
        return Path(found[0])
    if len(found) > 1:
        raise InputError("more than one events.tsv matches this run", file=run.bold,
                         expected="exactly one events file", found=", ".join(found))
    root = _bids_files(bids_dir, file_tag="events", file_type="tsv", filters=[("task", task)],
                       sub_folder=False, memo=memo)
    if len(root) == 1:
        return Path(root[0])
    return None


def _find_confounds(bold: Path) -> Path | None:
    """The confounds file ``load_confounds`` would pick for this image."""
    ents = bids_entities_of(bold)
    stem = "_".join(f"{k}-{v}" for k, v in ents.items() if k in ENTITY_ORDER)
    try:
        found = confounds_file_for(bold, fallback_stem=stem)
    except ValueError as exc:  # nilearn: more than one file matches
        raise InputError("more than one confounds file matches this image", file=bold,
                         expected="one *_desc-confounds_timeseries.tsv", found=str(exc).split(":", 1)[-1].strip()) from None
    if found is not None:
        return found
    # nilearn does not see a broken (unfetched git-annex) link; name it so the run says why
    candidate = expected_confounds(bold)
    return candidate if candidate.is_symlink() else None


def expected_confounds(bold: Path) -> Path:
    """The fMRIPrep confounds file name ``load_confounds`` looks for next to ``bold``."""
    name = bold.name.split(".nii")[0]
    stem = re.split(r"_(?:space|res|den|desc)-", name)[0]
    stem = stem[: -len("_bold")] if stem.endswith("_bold") else stem
    return bold.parent / f"{stem}_desc-confounds_timeseries.tsv"


@dataclass
class Discovery:
    """What :func:`discover` found: runs, notes, and the subjects it covered or skipped."""

    runs: list[RunInputs]
    notes: list[str]
    subjects: list[str] = field(default_factory=list)
    #: (subject, reason) for subjects with no run to audit
    skipped: list[tuple[str, str]] = field(default_factory=list)


def check_derivatives_folder(bids_dir: Path, folder: str) -> Path:
    """``derivatives_folder`` must be a relative path that stays inside BIDS_DIR.

    Raises
    ------
    nbdiag.core.errors.SettingsError
        For an absolute path or one that climbs out of BIDS_DIR (e.g. ``../../etc``).
    """
    rel = Path(folder)
    if rel.is_absolute() or ".." in rel.parts:
        raise SettingsError(
            f"invalid value for 'derivatives_folder': expected a folder path inside BIDS_DIR, relative to it "
            f"(e.g. derivatives/fmriprep); got {folder!r}")
    return (Path(bids_dir) / rel).absolute()


def discover_runs(bids_dir: str | Path, model: ModelSettings, bids_filter=None) -> tuple[list[RunInputs], list[str]]:
    """``(runs, notes)`` of :func:`discover`."""
    found = discover(bids_dir, model, bids_filter)
    return found.runs, found.notes


def discover(bids_dir: str | Path, model: ModelSettings, bids_filter=None) -> Discovery:
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
    derivatives = _derivatives(bids_dir, model)
    space = model.space_label if model.space_label is not None else NILEARN_DEFAULT_SPACE
    notes: list[str] = []
    subjects, missing = list_subjects(derivatives, model.sub_labels, model.exclude_subjects)
    skipped: list[tuple[str, str]] = []
    for label in missing:
        notes.append(f"participant label '{label}' not found: no folder sub-{label} in {derivatives}")
        skipped.append((label, "participant label not found"))
    for folder in sorted(derivatives.glob("sub-*")):
        label = folder.name.split("-", 1)[1]
        if folder.is_dir() and not _BIDS_LABEL.match(label):
            notes.append(f"{display(folder, bids_dir)}: not a BIDS subject label (letters and digits only); skipped")
    if not subjects:
        raise DatasetError(
            f"no subject to audit in {derivatives}"
            + (f" (requested: {', '.join(model.sub_labels)})" if model.sub_labels else " (no sub-* folders)")
        )
    roots = allowed_roots(bids_dir, derivatives)
    t_r, slice_time_ref = resolve_dataset_timing(bids_dir, derivatives, model, space, notes)
    if t_r is None:
        notes.append("t_r not given and no RepetitionTime found in any bold.json sidecar")

    supported = bids_entities()["raw"] + bids_entities()["derivatives"]
    filters = _filters(model.task_label, space, model.img_filters, supported)
    runs: list[RunInputs] = []
    n_filtered = 0
    memo: dict = {}  # dataset-wide globs, done once for this discovery (_bids_files)
    timing = (t_r, slice_time_ref)
    for subject in subjects:
        images = _bids_files(derivatives, modality_folder="func", file_tag="bold", file_type="nii*",
                             sub_label=subject, filters=filters, memo=memo)
        if bids_filter is not None:
            kept = [i for i in images if bids_filter.matches(bids_entities_of(i), extension=_extension(i))]
            n_filtered += len(images) - len(kept)
            if images and not kept:
                notes.append(f"sub-{subject}: no BOLD image passes the bids filter file {Path(bids_filter.path).name}")
                skipped.append((subject, "no BOLD image passes the bids filter file"))
                continue
            images = kept
        if not images:
            notes.append(f"sub-{subject}: no BOLD image matches {filters} in {display(derivatives, bids_dir)}")
            skipped.append((subject, f"no BOLD image for task '{model.task_label}' matches {filters}"))
            continue
        found = _subject_runs(subject, images, bids_dir, model, timing, roots, memo, notes)
        if not found:
            skipped.append((subject, "no image with BIDS labels"))
        runs += found
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
    covered = sorted({r.subject for r in runs})
    return Discovery(runs=runs, notes=notes, subjects=covered, skipped=skipped)


def _derivatives(bids_dir: Path, model: ModelSettings) -> Path:
    """The derivatives folder of an existing BIDS_DIR (DatasetError otherwise)."""
    if not bids_dir.is_dir():
        raise DatasetError(f"BIDS_DIR does not exist or is not a folder: {bids_dir}")
    derivatives = check_derivatives_folder(bids_dir, model.derivatives_folder)
    if not derivatives.is_dir():
        raise DatasetError(
            f"derivatives folder not found: {derivatives} (set --derivatives / derivatives_folder, "
            "relative to BIDS_DIR, e.g. derivatives/fmriprep)"
        )
    return derivatives


def _subject_runs(subject: str, images: list, bids_dir: Path, model: ModelSettings, timing: tuple,
                  roots: tuple[Path, ...], memo: dict, notes: list[str]) -> list[RunInputs]:
    """One subject's runs, in image order; a run whose inputs are broken has ``error`` set."""
    t_r, slice_time_ref = timing
    runs: list[RunInputs] = []
    seen: dict[tuple, Path] = {}
    for image in images:
        bold = Path(image)
        entities = _raw_entities(bold)
        bad = {k: v for k, v in entities.items() if not _BIDS_LABEL.match(str(v))}
        if bad:
            notes.append(f"{display(bold, bids_dir)}: entity labels {sorted(bad)} are not BIDS labels "
                         "(letters and digits only); image skipped")
            continue
        run = RunInputs(subject=subject, entities=entities, bold=bold, root=bids_dir)
        runs.append(run)
        sidecar = Path(str(bold).split(".nii")[0] + ".json")
        run.bold_sidecar = sidecar if (sidecar.exists() or sidecar.is_symlink()) else None
        run.own_t_r = _own_t_r(run.bold_sidecar, roots, run.notes)
        run.t_r, run.slice_time_ref = t_r, slice_time_ref
        run.t_r_sources = collect_t_r_sources(bold, bids_dir, run.entities, run.bold_sidecar, model.t_r,
                                              memo=memo)
        run.roots = roots
        try:
            _resolve_run_files(run, seen, bids_dir, model, roots, memo)
        except InputError as exc:
            run.error = exc
    return runs


def _resolve_run_files(run: RunInputs, seen: dict[tuple, Path], bids_dir: Path, model: ModelSettings,
                       roots: tuple[Path, ...], memo: dict) -> None:
    """A run's confounds, events and volume count, checked (InputError names what is wrong)."""
    bold = run.bold
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
    if bold.is_symlink() and bold.exists():
        check_input_file(bold, "BOLD image", "the task and filters", roots)
    if run.t_r is None:
        raise InputError("no repetition time: give --t-r or add RepetitionTime to the bold.json sidecars",
                         file=run.bold_sidecar or bold, column="RepetitionTime",
                         expected="a number of seconds", found="nothing")
    run.confounds = _find_confounds(bold)
    if run.confounds is not None and (run.confounds.exists() or run.confounds.is_symlink()):
        if not is_unfetched_annex(run.confounds):
            check_input_file(run.confounds, "confounds file", "the BOLD image it belongs to", roots)
    run.events = _find_events(bids_dir, run, model.task_label, memo)
    if run.events is None:
        raise InputError(f"no events.tsv for this run in {bids_dir}", file=bold,
                         expected=f"{run.prefix}_events.tsv", found="no file")
    check_input_file(run.events, "events file", f"task '{model.task_label}'", roots)
    run.n_scans = read_n_scans(bold, run.confounds if run.confounds and run.confounds.exists() else None)
    if not run.n_scans.source.startswith("image header"):
        run.notes.append(f"n_scans {run.n_scans.value} from {run.n_scans.source}")


def _extension(path: str | Path) -> str:
    name = Path(path).name
    return name[name.index("."):] if "." in name else ""
