"""Deterministic synthetic BIDS + fMRIPrep n-back datasets.

This module writes small datasets shaped like a real n-back study
preprocessed with fMRIPrep: raw BIDS (``events.tsv``, bold sidecars) and an
fMRIPrep derivatives folder (``desc-preproc_bold``, ``desc-brain_mask``,
``desc-confounds_timeseries.tsv`` + ``.json`` with fMRIPrep's real column
names, order and CompCor metadata).  It is used by the test-suite and to build
the bundled demo (:mod:`nbdiag.demo.make_demo`).

Everything is deterministic: every random draw comes from a
:class:`numpy.random.Generator` seeded from the dataset seed and the run's
BIDS prefix, floats are written with a fixed format and gzip streams carry no
timestamp, so the same spec always gives byte-identical files.

Images come in four flavours (:attr:`RunSpec.image`):

``"tiny"``
    a real 4D NIfTI (a few voxels, float32) generated from a simple GLM so
    that :class:`nilearn.glm.first_level.FirstLevelModel` can fit it;
``"header"``
    a valid NIfTI header declaring the full 4D shape but no voxel data:
    ``nibabel.load(...).shape`` works, reading the data does not;
``"missing"``
    a dangling symlink into ``.git/annex/objects`` (an unfetched DataLad
    annex file);
``"broken"``
    garbage bytes with a ``.nii.gz`` name.

Examples
--------
>>> from nbdiag.demo.synth import DatasetSpec, RunSpec, write_dataset
>>> spec = DatasetSpec(runs=[RunSpec("01", session="1", run=1, n_scans=120,
...                                  t_r=2.0, image="tiny")])
>>> root = write_dataset(tmp_path / "bids", spec)  # doctest: +SKIP
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import nibabel as nib
import numpy as np
import pandas as pd

__all__ = [
    "DEFAULT_FIXATION_S",
    "DatasetSpec",
    "EventsRecipe",
    "RunPaths",
    "RunSpec",
    "confounds_columns",
    "make_confounds",
    "nback_events",
    "run_paths",
    "small_spec",
    "with_runs",
    "write_dataset",
]

ImageMode = Literal["tiny", "header", "missing", "broken"]
IMAGE_MODES: tuple[str, ...] = ("tiny", "header", "missing", "broken")

#: Fixation (s) after each of the six blocks: a few short gaps between
#: blocks, a longer one mid-run and the bulk at the end (70.4 s in total, so
#: that 6 x (9.6 + 48) + 70.4 = 416 s = 520 volumes x 0.8 s).
DEFAULT_FIXATION_S: tuple[float, ...] = (4.8, 4.8, 19.2, 4.8, 4.8, 32.0)

_LABEL_RE = re.compile(r"^[A-Za-z0-9]+$")


def _float_format(x: float) -> str:
    """Six significant digits, always recognisable as a float (``1.0``)."""
    s = f"{x:.6g}"
    return s if any(ch in s for ch in ".eni") else s + ".0"


#: fMRIPrep's high-pass cutoff for its ``cosine*`` regressors (s).
_COSINE_PERIOD_S = 128.0


# --------------------------------------------------------------------------
# events
# --------------------------------------------------------------------------
def nback_events(
    n_blocks: int = 6,
    block_s: float = 48.0,
    trial_s: float = 2.4,
    instruction_s: float = 9.6,
    fixation_s: float | Sequence[float] = DEFAULT_FIXATION_S,
    seed: int | np.random.Generator = 0,
    first_onset: float = 0.0,
    block_order: Sequence[str] | None = None,
    include_fixation: bool = False,
    p_response: Mapping[str, float] | None = None,
    trial_duration: float | None = None,
) -> pd.DataFrame:
    """Trial-level events of a block n-back run.

    Each block is an ``INSTRUCTION`` screen followed by ``block_s / trial_s``
    trials of the block's condition (``0BACK`` or ``2BACK``), then fixation.

    Parameters
    ----------
    n_blocks : int, default=6
        Number of task blocks.
    block_s : float, default=48.0
        Block length in seconds; must be a whole number of trials.
    trial_s : float, default=2.4
        Trial period (stimulus onset asynchrony) in seconds.
    instruction_s : float, default=9.6
        Duration of the ``INSTRUCTION`` screen shown before every block.
    fixation_s : float or sequence of float, default=DEFAULT_FIXATION_S
        Fixation after each block: one value for all blocks or one per block.
    seed : int or numpy.random.Generator, default=0
        Seed of the response-time draws.
    first_onset : float, default=0.0
        Onset of the first instruction screen (fixation before it).
    block_order : sequence of str, optional
        Condition of each block; default alternates ``0BACK``, ``2BACK``.
    include_fixation : bool, default=False
        Also list fixation periods as ``fixation`` rows.  The real study does
        not, so fixation is the implicit baseline by default.
    p_response : mapping of str to float, optional
        Probability of a response per condition; default
        ``{"0BACK": 0.95, "2BACK": 0.85}``.
    trial_duration : float, optional
        Duration written for each trial; default ``trial_s``.

    Returns
    -------
    pandas.DataFrame
        Columns ``onset``, ``duration``, ``trial_type``, ``response_time``
        (NaN for instruction/fixation rows and unanswered trials), sorted by
        onset.

    Raises
    ------
    ValueError
        If ``block_s`` is not a whole number of trials, or ``fixation_s`` or
        ``block_order`` do not have one entry per block.
    """
    if n_blocks < 1:
        raise ValueError(f"n_blocks must be >= 1, got {n_blocks!r}")
    n_trials = int(round(block_s / trial_s))
    if n_trials < 1 or abs(n_trials * trial_s - block_s) > 1e-9:
        raise ValueError(
            f"block_s ({block_s}) must be a whole number of trials of "
            f"trial_s ({trial_s})"
        )
    if np.ndim(fixation_s) == 0:
        fix = [float(fixation_s)] * n_blocks  # type: ignore[arg-type]
    else:
        fix = [float(f) for f in fixation_s]  # type: ignore[union-attr]
    if len(fix) != n_blocks:
        raise ValueError(
            f"fixation_s must have one value per block ({n_blocks}), "
            f"got {len(fix)}"
        )
    if block_order is None:
        order = ["0BACK" if b % 2 == 0 else "2BACK" for b in range(n_blocks)]
    else:
        order = [str(b) for b in block_order]
        if len(order) != n_blocks:
            raise ValueError(
                f"block_order must have one entry per block ({n_blocks}), "
                f"got {len(order)}"
            )
    p_resp = {"0BACK": 0.95, "2BACK": 0.85}
    if p_response is not None:
        p_resp.update(p_response)
    rt_median = {"0BACK": 0.55, "2BACK": 0.75}
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    dur = trial_s if trial_duration is None else float(trial_duration)

    rows: list[tuple[float, float, str, float]] = []
    t = float(first_onset)
    if include_fixation and t > 0:
        rows.append((0.0, t, "fixation", np.nan))
    for b, cond in enumerate(order):
        rows.append((t, instruction_s, "INSTRUCTION", np.nan))
        t += instruction_s
        for i in range(n_trials):
            responded = rng.random() < p_resp.get(cond, 0.9)
            rt = rng.lognormal(np.log(rt_median.get(cond, 0.65)), 0.25)
            rt = float(np.clip(np.round(rt, 3), 0.2, trial_s - 0.1))
            rows.append((t + i * trial_s, dur, cond, rt if responded else np.nan))
        t += block_s
        if include_fixation and fix[b] > 0:
            rows.append((t, fix[b], "fixation", np.nan))
        t += fix[b]
    events = pd.DataFrame(
        rows, columns=["onset", "duration", "trial_type", "response_time"]
    )
    events["onset"] = events["onset"].round(6)
    events["duration"] = events["duration"].round(6)
    return events.sort_values("onset", kind="stable").reset_index(drop=True)


@dataclass
class EventsRecipe:
    """Parameters of :func:`nback_events` for one run (seed filled per run).

    Parameters
    ----------
    n_blocks, block_s, trial_s, instruction_s, fixation_s, first_onset, \
block_order, include_fixation, trial_duration
        See :func:`nback_events`.
    seed : int, optional
        Seed of the response times; default derived from the run's name.
    """

    n_blocks: int = 6
    block_s: float = 48.0
    trial_s: float = 2.4
    instruction_s: float = 9.6
    fixation_s: float | tuple[float, ...] = DEFAULT_FIXATION_S
    first_onset: float = 0.0
    block_order: tuple[str, ...] | None = None
    include_fixation: bool = False
    trial_duration: float | None = None
    seed: int | None = None

    def make(self, seed: int | np.random.Generator) -> pd.DataFrame:
        """Build the events table.

        Parameters
        ----------
        seed : int or numpy.random.Generator
            Used when :attr:`seed` is None.

        Returns
        -------
        pandas.DataFrame
            See :func:`nback_events`.
        """
        return nback_events(
            n_blocks=self.n_blocks,
            block_s=self.block_s,
            trial_s=self.trial_s,
            instruction_s=self.instruction_s,
            fixation_s=self.fixation_s,
            seed=seed if self.seed is None else self.seed,
            first_onset=self.first_onset,
            block_order=self.block_order,
            include_fixation=self.include_fixation,
            trial_duration=self.trial_duration,
        )


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

    def __post_init__(self) -> None:
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


# --------------------------------------------------------------------------
# confounds
# --------------------------------------------------------------------------
_MOTION_ORDER: dict[str, tuple[str, ...]] = {
    # suffix order as written by fMRIPrep (taken from nilearn's v21 test file)
    "trans_x": ("_derivative1", "_power2", "_derivative1_power2"),
    "trans_y": ("_derivative1", "_derivative1_power2", "_power2"),
    "trans_z": ("_derivative1", "_power2", "_derivative1_power2"),
    "rot_x": ("_derivative1", "_power2", "_derivative1_power2"),
    "rot_y": ("_derivative1", "_power2", "_derivative1_power2"),
    "rot_z": ("_derivative1", "_power2", "_derivative1_power2"),
}
_SIGNAL_ORDER = ("_derivative1", "_derivative1_power2", "_power2")
_N_TCOMPCOR, _N_CCOMPCOR, _N_WCOMPCOR = 3, 3, 4


def _n_cosines(n_used: int, t_r: float) -> int:
    return int(np.floor(2 * n_used * t_r / _COSINE_PERIOD_S))


def confounds_columns(run: RunSpec) -> list[str]:
    """fMRIPrep confound column names, in fMRIPrep's order, for a run.

    Parameters
    ----------
    run : RunSpec

    Returns
    -------
    list of str
    """
    cols: list[str] = []
    for base in ("global_signal", "csf", "white_matter"):
        cols += [base] + [base + s for s in _SIGNAL_ORDER]
    cols += ["csf_wm", "tcompcor", "std_dvars", "dvars",
             "framewise_displacement", "rmsd"]
    cols += [f"t_comp_cor_{i:02d}" for i in range(_N_TCOMPCOR)]
    cols += [f"c_comp_cor_{i:02d}" for i in range(_N_CCOMPCOR)]
    cols += [f"w_comp_cor_{i:02d}" for i in range(_N_WCOMPCOR)]
    cols += [f"a_comp_cor_{i:02d}" for i in range(run.n_acompcor)]
    n_cos = _n_cosines(run.n_scans - run.n_nonsteady, run.t_r)
    cols += [f"cosine{i:02d}" for i in range(n_cos)]
    cols += [f"non_steady_state_outlier{i:02d}" for i in range(run.n_nonsteady)]
    for base, suffixes in _MOTION_ORDER.items():
        cols += [base] + [base + s for s in suffixes]
    cols += [f"motion_outlier{i:02d}" for i in range(len(run.motion_outliers))]
    return cols


def _block_indicator(events: pd.DataFrame, frame_times: np.ndarray, cond: str) -> np.ndarray:
    box = np.zeros(frame_times.size)
    for onset, dur in events.loc[events["trial_type"] == cond, ["onset", "duration"]].to_numpy():
        box[(frame_times >= onset) & (frame_times < onset + dur)] = 1.0
    # head motion follows the block with a little inertia
    return np.convolve(box, np.ones(3) / 3, mode="same")


def _fd(motion: np.ndarray) -> np.ndarray:
    """Power's framewise displacement (50 mm head radius); first value NaN."""
    d = np.abs(np.diff(motion, axis=0))
    fd = d[:, :3].sum(axis=1) + 50.0 * d[:, 3:].sum(axis=1)
    return np.concatenate([[np.nan], fd])


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def _make_motion(
    run: RunSpec, rng: np.random.Generator, box: np.ndarray
) -> np.ndarray:
    """Six rigid-body parameters (mm, rad): trans_x/y/z, rot_x/y/z."""
    n = run.n_scans
    # slow linear drift + short-memory AR(1) wobble: no random walk, whose
    # spurious correlation with slow block regressors would make every run
    # look task-correlated
    drift_sd = np.array([0.15, 0.2, 0.3, 2.0e-3, 1.5e-3, 1.5e-3])
    ar_sd = np.array([0.008, 0.01, 0.012, 1.5e-4, 1.0e-4, 1.0e-4])
    jit_sd = np.array([0.010, 0.012, 0.015, 2.0e-4, 1.2e-4, 1.2e-4])
    ramp = np.linspace(0.0, 1.0, n)[:, None]
    walk = ramp * rng.normal(0.0, 1.0, 6) * drift_sd
    innov = rng.normal(0.0, 1.0, (n, 6)) * ar_sd
    ar = np.zeros((n, 6))
    for t in range(1, n):
        ar[t] = 0.5 * ar[t - 1] + innov[t]
    walk = walk + ar
    noise = rng.normal(0.0, 1.0, (n, 6)) * jit_sd
    steps = np.zeros((n, 6))
    for v in run.motion_outliers:
        steps[v:, 0] += 0.6  # a 0.6 mm jerk that stays (FD ~ 0.6+ at v)
        steps[v:, 3] += 0.004  # and a 0.2 mm (at 50 mm) pitch
    r = float(run.task_motion_corr)
    if r == 0 or box.std() == 0:
        return walk + noise + steps

    x = (box - box.mean()) / box.std()
    locked = (2, 3)  # trans_z and rot_x: nodding with the button presses

    def compose(gain: float) -> np.ndarray:
        m = walk + noise * (1.0 + gain * box)[:, None]
        for j in locked:
            b = m[:, j] - m[:, j].mean()
            b = b - (b @ x) / (x @ x) * x  # orthogonal to the blocks
            a = r * b.std() / np.sqrt(1.0 - r**2)
            m[:, j] = m[:, j].mean() + b + a * x
        return m + steps

    lo, hi = 0.0, 20.0
    for _ in range(40):  # bisection on the jitter gain: corr(FD, 2BACK) ~ r
        mid = 0.5 * (lo + hi)
        if _corr(_fd(compose(mid)), box) < r:
            lo = mid
        else:
            hi = mid
    return compose(0.5 * (lo + hi))


def _derivative(x: np.ndarray) -> np.ndarray:
    return np.concatenate([[np.nan], np.diff(x)])


def _orthonormal(rng: np.random.Generator, n_rows: int, n_cols: int) -> np.ndarray:
    q, _ = np.linalg.qr(rng.normal(size=(n_rows, n_cols)))
    return q * np.sign(q[0])  # deterministic sign


def make_confounds(
    run: RunSpec, events: pd.DataFrame, rng: np.random.Generator
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Simulate an fMRIPrep ``desc-confounds_timeseries`` table and sidecar.

    Parameters
    ----------
    run : RunSpec
        The run (n_scans, t_r, non-steady volumes, outliers, task-locked
        motion).
    events : pandas.DataFrame
        Full events of the run (motion may be locked to its ``2BACK`` rows).
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    confounds : pandas.DataFrame
        Columns :func:`confounds_columns`; NaN in the first row of the
        derivative columns, ``framewise_displacement``, ``dvars``,
        ``std_dvars`` and ``rmsd``, as fMRIPrep writes them.  CompCor and
        cosine columns are 0 on non-steady-state volumes (fMRIPrep computes
        them on the steady-state volumes only).
    sidecar : dict
        The JSON sidecar: CompCor metadata (``Method``, ``Mask``,
        ``Retained``, ``SingularValue``, ``VarianceExplained``,
        ``CumulativeVarianceExplained``) and ``Method: Mean`` entries.
    """
    n, k = run.n_scans, run.n_nonsteady
    frame_times = np.arange(n) * run.t_r
    box = _block_indicator(events, frame_times, "2BACK")
    motion = _make_motion(run, rng, box)
    data: dict[str, np.ndarray] = {}

    # mean signals, brighter on the non-steady-state volumes
    excess = np.zeros(n)
    excess[:k] = 0.3 * np.exp(-np.arange(k) / 1.5)
    slow = np.cumsum(rng.normal(0.0, 0.05, n))
    for base, level, sd in (("global_signal", 520.0, 1.2), ("csf", 710.0, 4.0),
                            ("white_matter", 480.0, 1.0)):
        sig = level * (1.0 + excess) + level / 500.0 * slow + rng.normal(0, sd, n)
        d1 = _derivative(sig)
        data[base] = sig
        data[base + "_derivative1"] = d1
        data[base + "_derivative1_power2"] = d1**2
        data[base + "_power2"] = sig**2
    data["csf_wm"] = 0.5 * (data["csf"] + data["white_matter"]) + rng.normal(0, 0.5, n)
    data["tcompcor"] = 590.0 * (1.0 + excess) + rng.normal(0, 2.0, n)

    fd = _fd(motion)
    std_dvars = np.clip(1.0 + rng.normal(0.0, 0.06, n), 0.8, 1.3)
    std_dvars[1:k] = 1.35  # bright but not beyond nilearn's 1.5 threshold
    for v in run.motion_outliers:
        std_dvars[v] = 2.4
    std_dvars[0] = np.nan
    data["std_dvars"] = std_dvars
    data["dvars"] = std_dvars * 14.0 * (1.0 + 0.02 * rng.normal(size=n))
    data["framewise_displacement"] = fd
    data["rmsd"] = 0.45 * fd

    # CompCor components: orthonormal over the steady-state volumes
    json_side: dict[str, Any] = {}

    def comps(prefix: str, n_comp: int, method: str, mask: str | None) -> None:
        q = np.zeros((n, n_comp))
        q[k:] = _orthonormal(rng, n - k, n_comp)
        sv = np.sort(rng.uniform(40.0, 120.0, n_comp))[::-1]
        ve = sv**2 / (sv**2).sum() * rng.uniform(0.3, 0.6)
        cum = np.cumsum(ve)
        for i in range(n_comp):
            name = f"{prefix}_comp_cor_{i:02d}"
            data[name] = q[:, i]
            meta: dict[str, Any] = {
                "CumulativeVarianceExplained": round(float(cum[i]), 10),
            }
            if mask is not None:
                meta["Mask"] = mask
            meta.update({
                "Method": method,
                "Retained": True,
                "SingularValue": round(float(sv[i]), 10),
                "VarianceExplained": round(float(ve[i]), 10),
            })
            json_side[name] = meta

    comps("t", _N_TCOMPCOR, "tCompCor", None)
    comps("c", _N_CCOMPCOR, "aCompCor", "CSF")
    comps("w", _N_WCOMPCOR, "aCompCor", "WM")
    comps("a", run.n_acompcor, "aCompCor", "combined")
    for name in ("csf", "csf_wm", "global_signal", "tcompcor", "white_matter"):
        json_side[name] = {"Method": "Mean"}

    n_used = n - k
    for i in range(_n_cosines(n_used, run.t_r)):
        c = np.zeros(n)
        c[k:] = np.sqrt(2.0 / n_used) * np.cos(
            np.pi / n_used * (np.arange(n_used) + 0.5) * (i + 1)
        )
        data[f"cosine{i:02d}"] = c
    for i in range(k):
        data[f"non_steady_state_outlier{i:02d}"] = (np.arange(n) == i).astype(float)
    for j, base in enumerate(_MOTION_ORDER):
        m = motion[:, j]
        d1 = _derivative(m)
        data[base] = m
        data[base + "_derivative1"] = d1
        data[base + "_power2"] = m**2
        data[base + "_derivative1_power2"] = d1**2
    for i, v in enumerate(run.motion_outliers):
        data[f"motion_outlier{i:02d}"] = (np.arange(n) == v).astype(float)

    table = pd.DataFrame({c: data[c] for c in confounds_columns(run)})
    sidecar = {key: json_side[key] for key in sorted(json_side)}
    return table, sidecar


# --------------------------------------------------------------------------
# images
# --------------------------------------------------------------------------
def _affine(shape: tuple[int, int, int]) -> np.ndarray:
    """2 mm voxels, MNI-like origin (FSL 2 mm template for 91x109x91)."""
    aff = np.diag([-2.0, 2.0, 2.0, 1.0])
    aff[:3, 3] = [2.0 * (shape[0] - 1) / 2, -2.0 * (shape[1] - 1) / 2 - 18.0,
                  -2.0 * (shape[2] - 1) / 2 + 18.0]
    return aff


def _gzip(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as f:
        f.write(data)
    return buf.getvalue()


def _nifti_bytes(img: nib.Nifti1Image) -> bytes:
    return _gzip(img.to_bytes())


def _header_only_bytes(shape4d: tuple[int, ...], t_r: float) -> bytes:
    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(np.float32)
    hdr.set_data_shape(shape4d)
    hdr.set_zooms((2.0, 2.0, 2.0, float(t_r)))
    hdr.set_xyzt_units("mm", "sec")
    aff = _affine(shape4d[:3])  # type: ignore[arg-type]
    hdr.set_qform(aff, code=4)
    hdr.set_sform(aff, code=4)
    hdr["descrip"] = b"nbdiag header-only: voxel data omitted"
    hdr.set_data_offset(352)
    raw = hdr.binaryblock + b"\x00\x00\x00\x00"  # no extensions, no voxels
    return _gzip(raw)


def _mask_img(shape: tuple[int, int, int]) -> nib.Nifti1Image:
    if min(shape) <= 4:
        data = np.ones(shape, dtype=np.uint8)
    else:  # an ellipsoid "brain"
        grid = np.indices(shape, dtype=float)
        c = (np.array(shape, dtype=float) - 1) / 2
        r = np.array(shape, dtype=float) * 0.42
        d = sum(((grid[i] - c[i]) / r[i]) ** 2 for i in range(3))
        data = (d <= 1.0).astype(np.uint8)
    img = nib.Nifti1Image(data, _affine(shape))
    img.header.set_xyzt_units("mm", "sec")
    return img


def _tiny_bold(
    run: RunSpec, events: pd.DataFrame, confounds: pd.DataFrame,
    rng: np.random.Generator,
) -> nib.Nifti1Image:
    """Simulated BOLD: baseline 1000, task responses, drift, noise, motion."""
    from nilearn.glm.first_level import make_first_level_design_matrix

    n = run.n_scans
    start = 0.0 if run.start_time is None else float(run.start_time)
    frame_times = np.arange(n) * run.t_r + start
    ev = events[["onset", "duration", "trial_type"]]
    dm = make_first_level_design_matrix(
        frame_times, ev, hrf_model="glover", drift_model=None
    )
    betas = {"0BACK": 1.0, "2BACK": 1.5, "INSTRUCTION": 0.8}
    if run.betas is not None:
        betas.update(run.betas)
    signal = np.zeros(n)
    for cond, beta in betas.items():
        if cond in dm.columns:
            signal += beta * dm[cond].to_numpy()
    n_vox = int(np.prod(run.shape))
    gain = rng.uniform(0.5, 1.5, n_vox)
    base = 1000.0 * rng.uniform(0.8, 1.2, n_vox)
    drift = np.linspace(-1.0, 1.0, n)[:, None] * rng.normal(0, 2.0, n_vox)
    excess = np.zeros(n)
    excess[: run.n_nonsteady] = 0.3 * np.exp(-np.arange(run.n_nonsteady) / 1.5)
    motion = confounds["trans_z"].to_numpy() - confounds["trans_z"].mean()
    data = (
        base * (1.0 + excess[:, None] + 0.01 * signal[:, None] * gain)
        + drift
        + 20.0 * motion[:, None]
        + rng.normal(0.0, 3.0, (n, n_vox))
    )
    vol = data.T.reshape(*run.shape, n).astype(np.float32)
    img = nib.Nifti1Image(vol, _affine(run.shape))
    img.header.set_zooms((2.0, 2.0, 2.0, float(run.t_r)))
    img.header.set_xyzt_units("mm", "sec")
    return img


def _annex_target(file_path: Path, root: Path, content_key: str) -> str:
    """Relative target of a DataLad/git-annex symlink for ``file_path``."""
    md5 = hashlib.md5(content_key.encode()).hexdigest()
    key = f"MD5E-s{int(md5[:6], 16)}--{md5}.nii.gz"
    h = hashlib.md5(key.encode()).hexdigest()
    depth = len(file_path.parent.relative_to(root).parts)
    return "/".join([".."] * depth + [".git", "annex", "objects", h[:2].upper(),
                                      h[2:4].upper(), key, key])


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
    deriv_root = root / spec.derivatives

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

    for run in spec.runs:
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
        if raw_meta != task_meta[run.task]:
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
    return root


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
