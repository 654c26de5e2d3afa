"""Benchmark: time to render one subject report with two model variants.

Usage::

    python benchmarks/bench_report.py                  # fake records (docs/record.md), 520 scans
    python benchmarks/bench_report.py OUTPUT_DIR 01    # real records written by `nbdiag ... participant`
                                                       # (first two variants of sub-01 are used)

Prints the absolute time, the time relative to a reference measured in the same
process (one nilearn ``plot_design_matrix`` of the same design + ``savefig`` to PNG),
and the file size. Targets (issue 5): <= 1 s and <= 3 MB.
"""

from __future__ import annotations

import io
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd


def _fake() -> tuple[list[dict], dict]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from report_examples import example_run  # test data, not shipped in the package

    records, designs = [], {}
    for variant, rtdur in (("nortdur", False), ("rtdur", True)):
        rec, design = example_run("01", variant, n_scans=520, rtdur=rtdur)
        records.append(rec)
        designs[(rec["run"]["prefix"], variant)] = design
    return records, designs


def _real(output_dir: Path, label: str) -> tuple[list[dict], dict]:
    records, designs = [], {}
    for path in sorted((output_dir / f"sub-{label}").glob("**/*_nbdiag.json")):
        rec = json.loads(path.read_text())
        records.append(rec)
        tsv = path.parent / (rec.get("design") or {}).get("tsv", "")
        if tsv.is_file():
            design = pd.read_csv(tsv, sep="\t")  # nilearn-style TSV: no index column
            frame_times = (rec.get("design") or {}).get("frame_times")
            if frame_times and len(frame_times) == len(design):
                design.index = pd.Index(frame_times, name="frame_times")
            designs[(rec["run"]["prefix"], rec["variant"])] = design
    first_run = records[0]["run"]["prefix"]
    variants = []
    for r in records:
        if r["run"]["prefix"] == first_run and r["variant"] not in variants:
            variants.append(r["variant"])
    keep = variants[:2]
    records = [r for r in records if r["run"]["prefix"] == first_run and r["variant"] in keep]
    return records, designs


def _reference(design: pd.DataFrame) -> float:
    import matplotlib.pyplot as plt
    from nilearn.plotting import plot_design_matrix

    t0 = time.perf_counter()
    ax = plot_design_matrix(design)
    ax.figure.savefig(io.BytesIO(), format="png")
    plt.close(ax.figure)
    return time.perf_counter() - t0


def main(argv: list[str]) -> int:
    warnings.simplefilter("ignore")
    from nbdiag.report.subject import render_subject_report

    records, designs = _real(Path(argv[0]), argv[1]) if len(argv) >= 2 else _fake()
    design = next(iter(designs.values()))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "sub-bench.html"
        render_subject_report("bench", records, designs, out)  # warm-up: imports, font cache
        _reference(design)
        ref = statistics.median(_reference(design) for _ in range(5))
        times, cpu = [], []
        for _ in range(5):
            t0, c0 = time.perf_counter(), time.process_time()
            render_subject_report("bench", records, designs, out)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        size = out.stat().st_size
    t = statistics.median(times)
    n_var = len({r["variant"] for r in records})
    n_scans = len(design)
    print(f"subject report, {len(records)} run x variant ({n_var} variants, {n_scans} scans)")
    print(f"  render time   {t:.3f} s wall, {statistics.median(cpu):.3f} s CPU (median of 5; target <= 1 s)")
    print(f"  reference     {ref:.3f} s (plot_design_matrix + savefig PNG)")
    print(f"  ratio         {t / ref:.1f} x reference")
    print(f"  file size     {size / 1e6:.2f} MB (target <= 3 MB)")
    return 0 if t <= 1.0 and size <= 3e6 else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
