"""What to simulate: run and dataset specifications and their BIDS paths.

Part of :mod:`nbdiag.demo.synth` (see its docstring for the determinism rules).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from nbdiag.demo.synth.events import EventsRecipe

ImageMode = Literal["tiny", "header", "missing", "broken"]


IMAGE_MODES: tuple[str, ...] = ("tiny", "header", "missing", "broken")


_LABEL_RE = re.compile(r"^[A-Za-z0-9]+$")


# --------------------------------------------------------------------------
# specs
# --------------------------------------------------------------------------
@dataclass
class RunSpec:
    """One functional run of the synthetic dataset.

    Parameters
    ----------
    subject : str
        Subject label without ``sub-`` (alphanumeric).
    session : str, optional
        Session label without ``ses-``; None for no session level.
    run : int or str, optional
        Run index (``1`` -> ``run-01``) or label; None for no run entity.
    acq : str, optional
        ``acq-`` label (e.g. ``"VARIANTObliquity"``).
    task : str, default="nback"
        Task label.
    n_scans : int, default=520
        Number of volumes (rows of the confounds, 4th image dimension).
    t_r : float, default=0.8
        Repetition time in seconds (``RepetitionTime`` in the sidecars).
    start_time : float, optional
        Slice-timing reference written as ``StartTime`` in the fMRIPrep
        sidecar (and ``SliceTiming`` in the raw one); None for none.
    events : pandas.DataFrame or EventsRecipe, optional
        The events table, or a recipe for :func:`nback_events`; default
        ``EventsRecipe()``.  The simulated BOLD signal always follows these
        full events, even when ``drop_instruction`` hides rows from the file.
    n_nonsteady : int, default=0
        Number of first volumes flagged as non-steady-state
        (``non_steady_state_outlier00..`` one-hot columns; brighter volumes).
    motion_outliers : sequence of int, default=()
        Volumes with a head jerk: high ``framewise_displacement`` and
        ``std_dvars`` there, and ``motion_outlier00..`` one-hot columns.
    task_motion_corr : float, default=0.0
        Target correlation of the motion (``trans_z``, ``rot_x``) and of
        ``framewise_displacement`` with the ``2BACK`` blocks (0 = none).
    drop_instruction : bool, default=False
        Leave the ``INSTRUCTION`` rows out of ``events.tsv``.
    image : {"tiny", "header", "missing", "broken"}, default="tiny"
        How the raw and preprocessed bold images are written (module doc).
    shape : tuple of int, default=(2, 2, 2)
        Spatial shape of the images (and brain mask).
    n_acompcor : int, default=8
        Number of ``a_comp_cor_*`` columns (``Mask: combined``).
    betas : mapping of str to float, optional
        Percent signal change per condition of the ``"tiny"`` images;
        default ``{"0BACK": 1.0, "2BACK": 1.5, "INSTRUCTION": 0.8}``.
    seed : int, optional
        Seed of this run; default derived from the dataset seed and the
        run's BIDS prefix.
    """

    subject: str
    session: str | None = None
    run: int | str | None = None
    acq: str | None = None
    task: str = "nback"
    n_scans: int = 520
    t_r: float = 0.8
    start_time: float | None = None
    events: pd.DataFrame | EventsRecipe | None = field(default=None, compare=False)
    n_nonsteady: int = 0
    motion_outliers: tuple[int, ...] = ()
    task_motion_corr: float = 0.0
    drop_instruction: bool = False
    image: ImageMode = "tiny"
    shape: tuple[int, int, int] = (2, 2, 2)
    n_acompcor: int = 8
    betas: Mapping[str, float] | None = None
    seed: int | None = None

    def __post_init__(self) -> None:  # noqa: C901
        for name in ("subject", "session", "acq", "task"):
            value = getattr(self, name)
            if value is None and name in ("session", "acq"):
                continue
            if not isinstance(value, str) or not _LABEL_RE.match(value):
                raise ValueError(
                    f"RunSpec.{name} must be an alphanumeric BIDS label, "
                    f"got {value!r}"
                )
        if self.run is not None:
            label = self.run_label
            if not _LABEL_RE.match(label):
                raise ValueError(
                    f"RunSpec.run must be an int or alphanumeric label, "
                    f"got {self.run!r}"
                )
        if self.image not in IMAGE_MODES:
            raise ValueError(
                f"RunSpec.image must be one of {IMAGE_MODES}, got {self.image!r}"
            )
        if int(self.n_scans) < 2:
            raise ValueError(f"RunSpec.n_scans must be >= 2, got {self.n_scans!r}")
        if not float(self.t_r) > 0:
            raise ValueError(f"RunSpec.t_r must be > 0, got {self.t_r!r}")
        if self.start_time is not None and not 0 <= self.start_time < self.t_r:
            raise ValueError(
                f"RunSpec.start_time must be in [0, t_r={self.t_r}), "
                f"got {self.start_time!r}"
            )
        if not 0 <= int(self.n_nonsteady) < int(self.n_scans) // 2:
            raise ValueError(
                "RunSpec.n_nonsteady must be in [0, n_scans / 2), "
                f"got {self.n_nonsteady!r}"
            )
        self.motion_outliers = tuple(sorted(int(v) for v in self.motion_outliers))
        for v in self.motion_outliers:
            if not self.n_nonsteady < v < self.n_scans:
                raise ValueError(
                    "RunSpec.motion_outliers must be volumes after the "
                    f"non-steady ones and < n_scans ({self.n_scans}), got {v}"
                )
        if not 0 <= self.task_motion_corr <= 0.95:
            raise ValueError(
                "RunSpec.task_motion_corr must be in [0, 0.95], "
                f"got {self.task_motion_corr!r}"
            )
        if self.n_acompcor < 6:
            raise ValueError(
                f"RunSpec.n_acompcor must be >= 6, got {self.n_acompcor!r}"
            )
        if len(self.shape) != 3 or min(self.shape) < 1:
            raise ValueError(
                f"RunSpec.shape must be 3 positive ints, got {self.shape!r}"
            )
        self.shape = tuple(int(s) for s in self.shape)  # type: ignore[assignment]

    @property
    def run_label(self) -> str | None:
        """``run-`` label (``1`` -> ``"01"``), or None."""
        if self.run is None:
            return None
        if isinstance(self.run, (int, np.integer)):
            return f"{int(self.run):02d}"
        return str(self.run)

    @property
    def prefix(self) -> str:
        """BIDS prefix, e.g. ``sub-01_ses-1_task-nback_acq-X_run-01``."""
        parts = [f"sub-{self.subject}"]
        if self.session is not None:
            parts.append(f"ses-{self.session}")
        parts.append(f"task-{self.task}")
        if self.acq is not None:
            parts.append(f"acq-{self.acq}")
        if self.run is not None:
            parts.append(f"run-{self.run_label}")
        return "_".join(parts)

    @property
    def func_dir(self) -> Path:
        """``sub-<s>/[ses-<x>/]func`` relative to a dataset root."""
        d = Path(f"sub-{self.subject}")
        if self.session is not None:
            d = d / f"ses-{self.session}"
        return d / "func"


@dataclass
class DatasetSpec:
    """A whole synthetic dataset.

    Parameters
    ----------
    runs : sequence of RunSpec
        The runs; their BIDS prefixes must be unique.
    space : str, default="MNI152NLin6Asym"
        ``space-`` label of the fMRIPrep outputs.
    res : str, optional, default="2"
        ``res-`` label of the fMRIPrep outputs; None for no ``res`` entity.
    derivatives : str, default="derivatives/fmriprep"
        Derivatives folder, relative to the dataset root.
    name : str, default="nbdiag synthetic n-back"
        ``Name`` in ``dataset_description.json``.
    seed : int, default=0
        Dataset seed; each run's generator is seeded from it and the run's
        prefix.
    """

    runs: Sequence[RunSpec]
    space: str = "MNI152NLin6Asym"
    res: str | None = "2"
    derivatives: str = "derivatives/fmriprep"
    name: str = "nbdiag synthetic n-back"
    seed: int = 0

    def __post_init__(self) -> None:
        self.runs = list(self.runs)
        if not self.runs:
            raise ValueError("DatasetSpec.runs must not be empty")
        prefixes = [r.prefix for r in self.runs]
        dup = sorted({p for p in prefixes if prefixes.count(p) > 1})
        if dup:
            raise ValueError(f"DatasetSpec.runs has duplicate runs: {dup}")
        for name in ("space", "res"):
            value = getattr(self, name)
            if value is not None and not _LABEL_RE.match(str(value)):
                raise ValueError(
                    f"DatasetSpec.{name} must be an alphanumeric label, "
                    f"got {value!r}"
                )
        deriv = Path(self.derivatives)
        if deriv.is_absolute() or ".." in deriv.parts or not deriv.parts:
            raise ValueError(
                "DatasetSpec.derivatives must be a relative path inside the "
                f"dataset, got {self.derivatives!r}"
            )


@dataclass(frozen=True)
class RunPaths:
    """Where :func:`write_dataset` put the files of one run (absolute paths).

    Attributes
    ----------
    raw_bold, events, raw_sidecar : Path
        Raw BIDS files (``raw_sidecar`` may not exist: the dataset-level
        ``task-<task>_bold.json`` applies unless the run differs from it).
    bold, bold_sidecar, mask, confounds, confounds_sidecar : Path
        fMRIPrep derivatives.
    """

    raw_bold: Path
    events: Path
    raw_sidecar: Path
    bold: Path
    bold_sidecar: Path
    mask: Path
    confounds: Path
    confounds_sidecar: Path


def run_paths(root: str | os.PathLike[str], spec: DatasetSpec, run: RunSpec) -> RunPaths:
    """Paths of one run's files in a dataset written from ``spec``.

    Parameters
    ----------
    root : path-like
        Dataset root given to :func:`write_dataset`.
    spec : DatasetSpec
        The dataset spec.
    run : RunSpec
        One of ``spec.runs``.

    Returns
    -------
    RunPaths
    """
    root = Path(root).absolute()
    raw = root / run.func_dir
    der = root / spec.derivatives / run.func_dir
    space = f"space-{spec.space}" + (f"_res-{spec.res}" if spec.res else "")
    p = run.prefix
    return RunPaths(
        raw_bold=raw / f"{p}_bold.nii.gz",
        events=raw / f"{p}_events.tsv",
        raw_sidecar=raw / f"{p}_bold.json",
        bold=der / f"{p}_{space}_desc-preproc_bold.nii.gz",
        bold_sidecar=der / f"{p}_{space}_desc-preproc_bold.json",
        mask=der / f"{p}_{space}_desc-brain_mask.nii.gz",
        confounds=der / f"{p}_desc-confounds_timeseries.tsv",
        confounds_sidecar=der / f"{p}_desc-confounds_timeseries.json",
    )


def small_spec(**dataset_kwargs: Any) -> DatasetSpec:
    """A small, fast dataset for tests (tiny images, TR 2.0 s, 120 scans).

    Two subjects; ``sub-01`` has two sessions with two runs each, one of
    them an ``acq-VARIANTObliquity`` run with 110 scans, 3 non-steady
    volumes and a motion outlier; ``sub-02`` has no session level, one run,
    slice timing (``StartTime`` 1.0 s) and task-correlated motion.  Events
    are 4 blocks of 10 trials x 2.4 s.

    Parameters
    ----------
    **dataset_kwargs
        Overrides of :class:`DatasetSpec` fields (e.g. ``res=None``).

    Returns
    -------
    DatasetSpec
    """
    recipe = EventsRecipe(
        n_blocks=4, block_s=24.0, trial_s=2.4, instruction_s=4.8,
        fixation_s=(10.0, 10.0, 10.0, 16.0), first_onset=4.0,
    )
    common: dict[str, Any] = dict(n_scans=120, t_r=2.0, image="tiny", events=recipe)
    runs = [
        RunSpec("01", session="1", run=1, n_nonsteady=2, **common),
        RunSpec("01", session="1", run=2, drop_instruction=True, **common),
        RunSpec("01", session="2", run=1, **common),
        RunSpec(
            "01", session="2", run=2, acq="VARIANTObliquity",
            **{**common, "n_scans": 110}, n_nonsteady=3, motion_outliers=(50,),
        ),
        RunSpec(
            "02", run=1, start_time=1.0, task_motion_corr=0.5,
            **common,
        ),
    ]
    return DatasetSpec(runs=runs, **dataset_kwargs)


def with_runs(spec: DatasetSpec, **run_overrides: Any) -> DatasetSpec:
    """Copy of ``spec`` with the same overrides applied to every run.

    Parameters
    ----------
    spec : DatasetSpec
    **run_overrides
        :class:`RunSpec` fields, e.g. ``image="header"``.

    Returns
    -------
    DatasetSpec
    """
    return replace(spec, runs=[replace(r, **run_overrides) for r in spec.runs])
