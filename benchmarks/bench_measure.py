"""Benchmarks for issue 12 (measured, not assumed). Not a test: prints figures.

1. ``--measure confounds`` overhead: ``nbdiag participant --no-reports`` on the demo
   dataset (7 runs x 3 variants) with ``--measure confounds`` vs ``--measure none``,
   in process, alternating, median of ``--repeat`` runs each. Target: <= 10 %.
2. ``--measure bold`` on a full-size synthetic run (97 x 115 x 97 x 522 float32 in a
   .nii.gz, an ellipsoid brain mask of ~227 000 voxels), generated under ``--workdir``
   (default: a temporary folder in /tmp, never the repository). Each step runs in its own
   subprocess, which reports its wall time and peak resident memory (``ru_maxrss``):

   * reference: read the image once with nibabel (``np.asarray(nib.load(p).dataobj)``);
   * ``nbdiag participant --no-reports --measure confounds`` on that run;
   * ``nbdiag participant --no-reports --measure bold`` on that run.

   The BOLD part is the difference of the last two. Targets: BOLD part <= 1.5x the
   reference read; peak memory of the bold run <= 1.5 GB.

Usage::

    python benchmarks/bench_measure.py                 # both
    python benchmarks/bench_measure.py --only confounds
    python benchmarks/bench_measure.py --only bold --workdir /tmp/nbdiag-bench --keep
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHAPE = (97, 115, 97)
N_SCANS = 522
T_R = 0.8


def bench_confounds(repeat: int) -> dict:
    import io
    from contextlib import redirect_stderr

    from nbdiag.config import load_config, override_config
    from nbdiag.demo.run import CONFIG, DATA_DIR
    from nbdiag.participant.pipeline import run_participant

    times: dict[str, list[float]] = {"none": [], "confounds": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeat + 1):
            for mode in (("none", "confounds") if i % 2 else ("confounds", "none")):
                config = override_config(load_config(CONFIG), measure=mode)
                t0 = time.perf_counter()
                with redirect_stderr(io.StringIO()):
                    run_participant(DATA_DIR, Path(tmp) / mode, config, reports=False, log=lambda s: None)
                if i:  # the first round warms caches and imports
                    times[mode].append(time.perf_counter() - t0)
    none, conf = statistics.median(times["none"]), statistics.median(times["confounds"])
    return {"none_s": none, "confounds_s": conf, "overhead": conf / none - 1.0, "runs": times}


_CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
what = sys.argv[1]
if what == "read":
    import nibabel as nib, numpy as np
    a = np.asarray(nib.load(sys.argv[2]).dataobj)
    checksum = float(a[..., -1].sum())
    code = 0
else:
    from nbdiag.cli import main
    code = main(sys.argv[2:])
print(json.dumps({"seconds": time.perf_counter() - t0, "code": code,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}))
"""


def _child(*args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, *args], capture_output=True, text=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def make_full_size(workdir: Path) -> tuple[Path, Path]:
    """A one-run BIDS dataset whose preprocessed BOLD is a full-size float32 image."""
    import nibabel as nib
    import numpy as np

    from nbdiag.demo.synth import DatasetSpec, RunSpec, run_paths, write_dataset

    spec = DatasetSpec([RunSpec("01", run=1, n_scans=N_SCANS, t_r=T_R, n_nonsteady=4, image="header",
                                shape=SHAPE)])
    root = write_dataset(workdir / "bids", spec)
    paths = run_paths(root, spec, spec.runs[0])
    i, j, k = np.meshgrid(*(np.arange(s) for s in SHAPE), indexing="ij")
    c = [(s - 1) / 2 for s in SHAPE]
    mask = (((i - c[0]) / 35) ** 2 + ((j - c[1]) / 43) ** 2 + ((k - c[2]) / 36) ** 2) <= 1
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [-96.0, -132.0, -78.0]
    for p in (paths.bold, paths.mask):
        if p.is_symlink() or p.exists():
            p.unlink()
    nib.save(nib.Nifti1Image(mask.astype(np.uint8), affine), paths.mask)
    rng = np.random.default_rng(0)
    base = np.where(mask, 1000.0, 5.0).astype(np.float32)
    data = np.empty(SHAPE + (N_SCANS,), dtype=np.float32)
    for t in range(N_SCANS):
        data[..., t] = base * (1.0 + (0.3 * np.exp(-t / 1.5) if t < 4 else 0.0)) \
            + rng.normal(0, 10.0, SHAPE).astype(np.float32)
    img = nib.Nifti1Image(data, affine)
    img.header.set_zooms((2.0, 2.0, 2.0, T_R))
    nib.save(img, paths.bold)
    del data
    return root, paths.bold


def bench_bold(workdir: Path) -> dict:
    t0 = time.perf_counter()
    # generated in a subprocess: a child forked from a process holding the 2.3 GB array would
    # inherit that resident size in its ru_maxrss
    out = subprocess.run([sys.executable, __file__, "--make", str(workdir)], capture_output=True, text=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    root, bold = (Path(p) for p in out.stdout.strip().splitlines()[-1].split("\t"))
    made = time.perf_counter() - t0
    args = [str(root), "", "participant", "--task", "nback", "--space", "MNI152NLin6Asym",
            "--derivatives", "derivatives/fmriprep", "--img-filter", "desc", "preproc",
            "--events-rename", "0BACK=zero_back", "--events-rename", "2BACK=two_back",
            "--confounds-strategy", "motion", "non_steady_state", "--confounds-motion", "basic",
            "--contrast", "zero_back", "--contrast", "two_back - zero_back", "--contrast", "two_back",
            "--no-reports"]
    read = _child("read", str(bold))
    res = {"make_s": made, "bold_gz_mb": bold.stat().st_size / 1e6, "read": read}
    for mode in ("confounds", "bold"):
        a = list(args)
        a[1] = str(workdir / f"out-{mode}")
        res[mode] = _child("run", *a, "--measure", mode)
    res["bold_part_s"] = res["bold"]["seconds"] - res["confounds"]["seconds"]
    res["ratio_bold_part_to_read"] = res["bold_part_s"] / read["seconds"]
    res["ratio_bold_run_to_read"] = res["bold"]["seconds"] / read["seconds"]
    return res


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=["confounds", "bold"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None, help="where the full-size run goes (not the repo)")
    parser.add_argument("--keep", action="store_true", help="keep the generated full-size dataset")
    parser.add_argument("--make", type=Path, help=argparse.SUPPRESS)  # internal: generate the dataset only
    args = parser.parse_args(argv)
    if args.make:
        root, bold = make_full_size(args.make)
        print(f"{root}\t{bold}")
        return 0
    if args.only in (None, "confounds"):
        r = bench_confounds(args.repeat)
        print(f"participant --no-reports, demo (7 runs x 3 variants): --measure none {r['none_s']:.2f} s, "
              f"--measure confounds {r['confounds_s']:.2f} s -> overhead {100 * r['overhead']:+.1f} % (target <= 10 %)")
    if args.only in (None, "bold"):
        workdir = args.workdir or Path(tempfile.mkdtemp(prefix="nbdiag-bench-", dir="/tmp"))
        if ROOT in workdir.resolve().parents:
            raise SystemExit("--workdir must be outside the repository")
        workdir.mkdir(parents=True, exist_ok=True)
        try:
            r = bench_bold(workdir)
        finally:
            if not args.keep:
                shutil.rmtree(workdir, ignore_errors=True)
        print(f"full-size run {SHAPE + (N_SCANS,)} float32 ({r['bold_gz_mb']:.0f} MB .nii.gz):")
        print(f"  read once with nibabel: {r['read']['seconds']:.1f} s, peak {r['read']['peak_rss_mb']:.0f} MB")
        print(f"  participant --measure confounds: {r['confounds']['seconds']:.1f} s, "
              f"peak {r['confounds']['peak_rss_mb']:.0f} MB")
        print(f"  participant --measure bold: {r['bold']['seconds']:.1f} s, peak {r['bold']['peak_rss_mb']:.0f} MB "
              f"(target <= 1536 MB)")
        print(f"  BOLD part {r['bold_part_s']:.1f} s = {r['ratio_bold_part_to_read']:.2f}x the read "
              f"(whole bold run {r['ratio_bold_run_to_read']:.2f}x; target <= 1.5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
