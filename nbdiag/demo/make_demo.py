"""Build the bundled n-back demo dataset.

Usage::

    python -m nbdiag.demo.make_demo [DIR]

writes the demo (default: ``nbdiag/demo/data`` next to this file).  The
output is byte-for-byte reproducible; the committed copy is checked against a
fresh one by ``tests/test_synth.py``.  See ``nbdiag/demo/README.md`` for what
each subject shows.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from nbdiag.demo.synth import DatasetSpec, EventsRecipe, RunSpec, write_dataset

__all__ = ["DEMO_DIR", "DEMO_NAME", "demo_spec", "make_demo", "main"]

#: Where the committed demo lives inside the package.
DEMO_DIR: Path = Path(__file__).resolve().parent / "data"
#: ``Name`` in the demo's ``dataset_description.json``.
DEMO_NAME = "nbdiag demo: synthetic n-back (0BACK/2BACK) with fMRIPrep derivatives"

#: MNI152NLin6Asym at 2 mm (fMRIPrep ``space-MNI152NLin6Asym_res-2``).
_SHAPE = (91, 109, 91)


def demo_spec() -> DatasetSpec:
    """The demo dataset: five subjects, each showing a common situation.

    All runs: TR 0.8 s, 520 volumes (``StartTime`` 0.4 s), six 48-s blocks
    of 20 trials x 2.4 s alternating ``0BACK``/``2BACK``, a 9.6-s
    ``INSTRUCTION`` screen before each block and 70.4 s of fixation (short
    gaps between blocks, 19.2 s mid-run, 32 s at the end); header-only
    images of 91 x 109 x 91 x n_scans.

    - ``sub-01`` ses-1: 4 first volumes flagged non-steady-state (the forum
      post's situation);
    - ``sub-02`` ses-1 normal; ses-2 events without the INSTRUCTION rows;
    - ``sub-03`` ses-1: motion and framewise displacement locked to the
      2BACK blocks (r = 0.5), plus two motion outliers;
    - ``sub-04`` ses-1 normal; ses-2 ``acq-VARIANTObliquity`` with 500
      volumes;
    - ``sub-05`` ses-1: clean, fixation spread evenly between blocks.

    Returns
    -------
    DatasetSpec
    """
    common = dict(n_scans=520, t_r=0.8, start_time=0.4, image="header", shape=_SHAPE)
    spread = EventsRecipe(fixation_s=(11.2, 11.2, 11.2, 11.2, 11.2, 14.4))
    runs = [
        RunSpec("01", session="1", run=1, n_nonsteady=4, **common),
        RunSpec("02", session="1", run=1, **common),
        RunSpec("02", session="2", run=1, drop_instruction=True, **common),
        RunSpec("03", session="1", run=1, task_motion_corr=0.5,
                motion_outliers=(151, 388), **common),
        RunSpec("04", session="1", run=1, **common),
        RunSpec("04", session="2", run=1, acq="VARIANTObliquity",
                **{**common, "n_scans": 500}),
        RunSpec("05", session="1", run=1, events=spread, **common),
    ]
    return DatasetSpec(runs=runs, name=DEMO_NAME, seed=20240601)


def _is_demo(path: Path) -> bool:
    try:
        desc = json.loads((path / "dataset_description.json").read_text())
    except (OSError, ValueError):
        return False
    return desc.get("Name") == DEMO_NAME


def make_demo(out_dir: str | os.PathLike[str] | None = None) -> Path:
    """Write the demo dataset to ``out_dir`` (default :data:`DEMO_DIR`).

    The dataset is written to a temporary sibling folder first and then
    moved into place, so ``out_dir`` never holds a half-written or stale
    dataset.  An existing ``out_dir`` is replaced only if it is empty or an
    earlier demo.

    Parameters
    ----------
    out_dir : path-like, optional
        Destination folder.

    Returns
    -------
    pathlib.Path
        The absolute path of the written dataset.

    Raises
    ------
    FileExistsError
        If ``out_dir`` exists, is not empty and is not an nbdiag demo.
    """
    out = Path(os.path.abspath(out_dir if out_dir is not None else DEMO_DIR))
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not _is_demo(out))):
        raise FileExistsError(
            f"{out} exists and is not an nbdiag demo dataset; "
            "choose an empty or new folder"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        write_dataset(tmp, demo_spec())
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.replace(out, old / "data")
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m nbdiag.demo.make_demo [DIR]``.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 2 if the destination cannot be used.
    """
    parser = argparse.ArgumentParser(
        prog="python -m nbdiag.demo.make_demo",
        description="Write the bundled synthetic n-back BIDS/fMRIPrep demo dataset.",
    )
    parser.add_argument("out_dir", nargs="?", default=str(DEMO_DIR),
                        help=f"destination folder (default: {DEMO_DIR})")
    args = parser.parse_args(argv)
    try:
        out = make_demo(args.out_dir)
    except FileExistsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    n_files = sum(len(files) for _, _, files in os.walk(out))
    size = sum((Path(d) / f).stat().st_size for d, _, fs in os.walk(out) for f in fs)
    print(f"wrote {n_files} files ({size / 1e6:.2f} MB) to {out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
