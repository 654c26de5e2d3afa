"""Deterministic synthetic BIDS + fMRIPrep n-back datasets.

This package writes small datasets shaped like a real n-back study
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

Modules, by what they simulate:

:mod:`~nbdiag.demo.synth.events`
    n-back block timing, trials and responses (``events.tsv``);
:mod:`~nbdiag.demo.synth.specs`
    run and dataset specifications (:class:`RunSpec`, :class:`DatasetSpec`) and their paths;
:mod:`~nbdiag.demo.synth.confounds`
    fMRIPrep confounds (motion, CompCor, cosines, outliers);
:mod:`~nbdiag.demo.synth.images`
    tiny fittable images, header-only images, masks, annex links;
:mod:`~nbdiag.demo.synth.dataset`
    the whole dataset on disk (:func:`write_dataset`).

Examples
--------
>>> from nbdiag.demo.synth import DatasetSpec, RunSpec, write_dataset
>>> spec = DatasetSpec(runs=[RunSpec("01", session="1", run=1, n_scans=120,
...                                  t_r=2.0, image="tiny")])
>>> root = write_dataset(tmp_path / "bids", spec)  # doctest: +SKIP
"""

from __future__ import annotations

from nbdiag.demo.synth.confounds import confounds_columns, make_confounds
from nbdiag.demo.synth.dataset import write_dataset
from nbdiag.demo.synth.events import DEFAULT_FIXATION_S, EventsRecipe, nback_events
from nbdiag.demo.synth.specs import DatasetSpec, RunPaths, RunSpec, run_paths, small_spec, with_runs

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
