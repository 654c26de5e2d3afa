"""Build an fMRIPrep-sized study of N runs quickly, for the scale benchmarks.

Every run looks like the forum post's: 522 volumes at TR 0.8 s, a header-only
preprocessed image (no voxel data), an fMRIPrep confounds file with ~300
columns (+ JSON sidecar for CompCor) and per-trial n-back events with a
``response_time`` column. Events differ in every run (own seed and first
onset), so no run can reuse another run's task regressors. The confounds
files are simulated once per *template* (a few templates, some with
non-steady-state volumes and motion outliers) and hard-linked into the runs,
so 10,000 runs do not need 15 GB of disk; reading a hard link costs what
reading a copy costs.

Usage::

    python benchmarks/study.py /tmp/study100 100      # 50 subjects x 2 runs
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

N_SCANS, T_R = 522, 0.8
N_ACOMPCOR = 245  # -> 300 confound columns with the others fMRIPrep writes


def _templates(n_templates: int):
    from nbdiag.demo.synth import DatasetSpec, RunSpec

    runs = []
    for i in range(n_templates):
        runs.append(RunSpec(f"tpl{i}", run=1, n_scans=N_SCANS, t_r=T_R, image="header", shape=(2, 2, 2),
                            n_acompcor=N_ACOMPCOR, n_nonsteady=(0, 3, 0, 2)[i % 4],
                            motion_outliers=((), (), (200, 301), ())[i % 4]))
    return DatasetSpec(runs=runs, seed=7)


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:  # another file system
        shutil.copyfile(src, dst)


def make_study(root: str | os.PathLike, n_runs: int, runs_per_subject: int = 2, n_templates: int = 4,
               seed: int = 0) -> Path:
    """Write a study of ``n_runs`` runs at ``root`` (BIDS + ``derivatives/fmriprep``).

    Parameters
    ----------
    root : path-like
        Dataset root (created; existing files of the same names are replaced).
    n_runs : int
        Number of runs; subjects are ``s00001``... with ``runs_per_subject`` runs each.
    runs_per_subject, n_templates, seed : int
        Shape of the study and of its confounds pool.

    Returns
    -------
    Path
        The dataset root.
    """
    from nbdiag.demo.synth import nback_events, run_paths, write_dataset

    root = Path(root).absolute()
    spec = _templates(n_templates)
    with tempfile.TemporaryDirectory(prefix="nbdiag-templates-") as tmp:
        tpl_root = write_dataset(Path(tmp) / "tpl", spec)
        tpl = [run_paths(tpl_root, spec, r) for r in spec.runs]
        for name in ("dataset_description.json", "README", "task-nback_bold.json"):
            _link(tpl_root / name, root / name)
        _link(tpl_root / spec.derivatives / "dataset_description.json",
              root / spec.derivatives / "dataset_description.json")
        rng = np.random.default_rng(seed)
        subjects = []
        for i in range(n_runs):
            subject = f"s{i // runs_per_subject + 1:05d}"
            if not subjects or subjects[-1] != subject:
                subjects.append(subject)
            t = i % n_templates
            run = replace(spec.runs[t], subject=subject, run=i % runs_per_subject + 1)
            paths = run_paths(root, spec, run)
            events = nback_events(seed=int(rng.integers(2**31)), first_onset=round(float(rng.uniform(0, 8)), 3))
            # per-trial jitter (ms): every run has its own timing, nothing is shared between runs
            events["onset"] = (events["onset"] + np.round(rng.uniform(0, 0.2, len(events)), 3)).round(3)
            paths.events.parent.mkdir(parents=True, exist_ok=True)
            events.to_csv(paths.events, sep="\t", index=False, na_rep="n/a", float_format="%.6g")
            for field in ("bold", "bold_sidecar", "confounds", "confounds_sidecar"):
                _link(getattr(tpl[t], field), getattr(paths, field))
        (root / "participants.tsv").write_text(
            "participant_id\n" + "".join(f"sub-{s}\n" for s in subjects))
    return root


#: The forum post's model (one variant), as an nbdiag config.
FORUM_TOML = """\
[model]
task_label = "nback"
space_label = "MNI152NLin6Asym"
derivatives_folder = "derivatives/fmriprep"
img_filters = [["desc", "preproc"]]
hrf_model = "glover"
drift_model = "cosine"
high_pass = 0.005
confounds_strategy = ["motion", "non_steady_state"]
confounds_motion = "basic"

[events]
rename = { "0BACK" = "zero_back", "2BACK" = "two_back" }

[contrasts]
"two_back - zero_back" = "two_back - zero_back"
two_back = "two_back"
zero_back = "zero_back"
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("n_runs", type=int)
    args = parser.parse_args(argv)
    make_study(args.root, args.n_runs)
    (args.root / "nbdiag.toml").write_text(FORUM_TOML)
    print(args.root)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
