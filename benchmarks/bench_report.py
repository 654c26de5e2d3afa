"""Benchmark: render one subject report with 2 runs × 3 variants, against building its records.

Usage::

    python benchmarks/bench_report.py            # demo sub-04: 2 runs x 3 variants x 3 contrasts

Builds the six run records exactly as ``nbdiag participant`` does (``audit_run`` on the
bundled demo dataset, timed), then renders the subject report from them (median of 5,
after one warm-up render). Prints both times, their ratio and the file size.
Targets (issue 14): render <= 1 s; file <= 3 MB.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path


def main(argv: list[str]) -> int:
    warnings.simplefilter("ignore")
    from nbdiag.config import load_config
    from nbdiag.demo.run import CONFIG, DATA_DIR
    from nbdiag.inputs.bids import discover_runs
    from nbdiag.record.build import audit_run
    from nbdiag.report.subject import render_subject_report

    label = argv[0] if argv else "04"
    config = load_config(CONFIG)
    runs, _ = discover_runs(DATA_DIR, config.all_variants()[0].model)
    runs = [r for r in runs if r.subject == label]
    audit_run(runs[0], config.all_variants()[0])  # warm-up: imports, HRF caches
    t0 = time.perf_counter()
    audits = [audit_run(run, settings) for run in runs for settings in config.all_variants()]
    build = time.perf_counter() - t0
    records = [a.record.to_json() for a in audits]
    designs = {(a.run.prefix, a.variant): a.design for a in audits if a.design is not None}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"sub-{label}.html"
        render_subject_report(label, records, designs, out)  # warm-up: template compilation
        times = []
        for _ in range(5):
            t1 = time.perf_counter()
            render_subject_report(label, records, designs, out)
            times.append(time.perf_counter() - t1)
        size = out.stat().st_size
    render = statistics.median(times)
    n_contrasts = len(records[0].get("contrasts") or {})
    print(f"sub-{label}: {len(runs)} runs x {len(config.all_variants())} variants x {n_contrasts} contrasts "
          f"({len(records)} records)")
    print(f"  build records  {build:.3f} s (audit_run, all run x variants)")
    print(f"  render report  {render:.3f} s (median of 5; target <= 1 s)")
    print(f"  ratio          {render / build:.2f} (render / build)")
    print(f"  file size      {size / 1e6:.2f} MB (target <= 3 MB)")
    return 0 if render <= 1.0 and size <= 3e6 else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
