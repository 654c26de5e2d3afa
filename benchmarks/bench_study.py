"""Benchmark (issue 16): the participant level on a whole study vs nilearn's floor.

Usage::

    python benchmarks/bench_study.py --runs 100                 # forum-post model, one variant
    python benchmarks/bench_study.py --runs 1000 --resume       # + an unchanged rerun with --work-dir
    python benchmarks/bench_study.py --runs 10000 --repeats 1   # 5,000 subjects (~25 min here)
    python benchmarks/bench_study.py --runs 100 --config demo   # the demo's 3 variants
    python benchmarks/bench_study.py --runs 100 --reports       # + subject reports (2 runs x variants)
    python benchmarks/bench_study.py --quick                    # 20 runs, for a smoke test
    python benchmarks/bench_study.py --runs 100 --profile 30    # cProfile of the participant level

The study (``benchmarks/study.py``: 522 volumes, ~300 confound columns,
per-trial events, header-only images) is built on the fly in ``/tmp``.
In ONE process, for the same runs:

floor
    what nilearn itself spends to build the designs: for every run and every
    variant, read the events (``pandas.read_csv``), ``load_confounds`` with the
    variant's strategy, and ``make_first_level_design_matrix`` (the events
    transforms nilearn's users apply themselves are included).
nbdiag
    ``run_participant(..., reports=False)``: discovery, reading, designs, every
    diagnostic, the records and design TSVs written to disk.

Floor and nbdiag alternate in ``--repeats`` rounds (same system noise); the
figure is the median per-run time of each and their ratio. Peak memory is
``ru_maxrss`` of the process (and, with ``--tracemalloc``, the Python heap
peak during the participant level).
"""

from __future__ import annotations

import argparse
import gc
import resource
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def floor_once(runs, config) -> tuple[float, float]:
    """(wall, CPU) seconds nilearn needs to read events, load confounds and build every design."""
    import pandas as pd
    from nilearn.glm.first_level import make_first_level_design_matrix
    from nilearn.interfaces.fmriprep import load_confounds

    from nbdiag.design.matrix import frame_times
    from nbdiag.inputs.events import transform_events

    t0, c0 = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for run in runs:
            for settings in config.all_variants():
                model = settings.model
                events = pd.read_csv(run.events, sep="\t")
                events = transform_events(events, settings.events, path=run.events).events
                kwargs = model.load_confounds_kwargs()
                confounds = None
                if kwargs:
                    confounds, _ = load_confounds(img_files=str(run.bold), **kwargs)
                times = frame_times(int(run.n_scans.value), run.t_r.value, run.slice_time_ref.value)
                make_first_level_design_matrix(
                    times, events, model.hrf_model, model.drift_model, model.high_pass, model.drift_order,
                    [0] if model.fir_delays is None else list(model.fir_delays),
                    None if confounds is None else confounds.to_numpy(),
                    None if confounds is None else confounds.columns.tolist(), model.min_onset)
    return time.perf_counter() - t0, time.process_time() - c0


def clear_memos() -> None:
    """Empty every in-process memo of nbdiag, so each timed round starts as a new process would.

    Without this, a round would reuse what the previous round of the same runs memoised (the
    content fingerprints of every input file, image headers, regressors, transients): work a real
    ``nbdiag participant`` invocation does once per file and pays in full.
    """
    from nbdiag.design import contrasts, taskpart
    from nbdiag.diagnostics import baseline, drift, measured
    from nbdiag.inputs import bids, fmriprep
    from nbdiag.outputs import files, manifest

    taskpart.clear_cache()  # and the HRF memos (design.hrf.clear_cache)
    baseline.clear_cache()
    for cached in (manifest._content_fingerprint, bids._cached_header, contrasts._expression_vector,
                   drift._fsl_kernels, drift._fsl_kernel_spectrum, drift._fsl_denominator):
        cached.cache_clear()
    for memo in (measured._TRANSIENT_MEMO, fmriprep._NEEDED_CACHE, files._COLUMN_TEXT):
        memo.clear()


def participant_once(bids, out: Path, config, reports: bool = False, work_dir: Path | None = None,
                     n_jobs: int = 1) -> tuple[float, float]:
    """(wall, CPU) seconds of ``run_participant`` (CPU: this process only, i.e. n_jobs=1)."""
    from nbdiag.participant.pipeline import run_participant

    t0, c0 = time.perf_counter(), time.process_time()
    extra = {} if work_dir is None else {"work_dir": work_dir}
    run_participant(bids, out, config, reports=reports, log=lambda s: None, n_jobs=n_jobs, keep_audits=False,
                    **extra)
    return time.perf_counter() - t0, time.process_time() - c0


def phases(runs, config, out: Path) -> None:
    """CPU ms per run spent in each phase of ``_audit_and_write`` (wrappers around the module functions)."""
    import collections

    import nbdiag.participant.pipeline as pipeline_mod
    import nbdiag.record.build as record_mod

    acc: collections.Counter = collections.Counter()

    def wrap(mod, name, label):
        original = getattr(mod, name)

        def timed(*a, **k):
            c0 = time.process_time()
            try:
                return original(*a, **k)
            finally:
                acc[label] += time.process_time() - c0
        setattr(mod, name, timed)

    wrap(record_mod, "read_events", "events (read)")
    wrap(record_mod, "transform_events", "events (transforms)")
    wrap(record_mod, "load_run_confounds", "confounds")
    wrap(record_mod, "build_design", "design")
    wrap(record_mod, "make_context", "context")
    wrap(record_mod, "audit_design", "diagnostics (audit_design)")
    wrap(pipeline_mod, "build_record", "typed record (build_record)")
    wrap(pipeline_mod, "write_run_outputs", "writing (TSV + JSON)")
    for run in runs[:3]:  # warm-up
        pipeline_mod._audit_and_write(run, config, out)
    acc.clear()
    c0 = time.process_time()
    for run in runs:
        pipeline_mod._audit_and_write(run, config, out)
    total = time.process_time() - c0
    for label, seconds in acc.most_common():
        print(f"{label:28s} {seconds / len(runs) * 1e3:6.1f} ms/run CPU")
    print(f"{'other (record, roles...)':28s} {(total - sum(acc.values())) / len(runs) * 1e3:6.1f} ms/run CPU")
    print(f"{'total':28s} {total / len(runs) * 1e3:6.1f} ms/run CPU")


def load_bench_config(name: str, bids: Path):
    from nbdiag.config import load_config

    if name == "demo":
        return load_config(ROOT / "nbdiag" / "demo" / "nbdiag.toml")
    if name == "forum":
        return load_config(bids / "nbdiag.toml")
    return load_config(Path(name))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="20 runs, 1 repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--config", default="forum", help="forum (1 variant), demo (3 variants) or a TOML")
    parser.add_argument("--reports", action="store_true", help="also time the participant level with reports")
    parser.add_argument("--resume", action="store_true", help="also time an unchanged rerun with --work-dir")
    parser.add_argument("--no-floor", action="store_true", help="skip the nilearn floor (large studies)")
    parser.add_argument("--tracemalloc", action="store_true", help="Python heap peak of the participant level")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="print the top N of a cProfile")
    parser.add_argument("--phases", type=int, default=0, metavar="N",
                        help="CPU time per phase of one run (events, confounds, design, diagnostics, writing) "
                             "over N runs")
    parser.add_argument("--keep", type=Path, help="build the study here and keep it")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.repeats = 20, 1

    from study import FORUM_TOML, make_study

    from nbdiag.config import replace_model
    from nbdiag.inputs.bids import discover_runs

    tmp = Path(tempfile.mkdtemp(prefix="nbdiag-bench-"))
    try:
        bids = args.keep or tmp / "bids"
        t0 = time.perf_counter()
        if not (bids / "nbdiag.toml").exists():
            make_study(bids, args.runs)
            (bids / "nbdiag.toml").write_text(FORUM_TOML)
        built = time.perf_counter() - t0
        config = load_bench_config(args.config, bids)
        runs, _ = discover_runs(bids, config.all_variants()[0].model)
        n_variants = len(config.all_variants())
        print(f"study: {len(runs)} runs x {n_variants} variant(s), built in {built:.1f} s ({bids})")

        if args.phases:
            phases(runs[: args.phases], config, tmp / "phases")
            return 0

        if args.profile:
            import cProfile
            import pstats

            prof = cProfile.Profile()
            prof.enable()
            participant_once(bids, tmp / "prof", config)
            prof.disable()
            pstats.Stats(prof).sort_stats("cumulative").print_stats(args.profile)
            pstats.Stats(prof).sort_stats("tottime").print_stats(args.profile)
            return 0

        # warm-up (imports, nilearn's first-call costs) on a few runs, not counted
        floor_once(runs[:2], config)
        participant_once(bids, tmp / "warm", replace_model(config, sub_labels=(runs[0].subject,)))

        floors, ours = [], []
        rss_before = _maxrss_mb()
        for r in range(args.repeats):
            if not args.no_floor:
                floors.append(floor_once(runs, config))
            out = tmp / f"out{r}"
            clear_memos()  # each round starts cold, as a new `nbdiag participant` process would
            gc.collect()
            ours.append(participant_once(bids, out, config))
            shutil.rmtree(out)
        n = len(runs)

        def ms(values, k):
            return statistics.median(v[k] for v in values) / n * 1e3

        print(f"nbdiag participant --no-reports: {ms(ours, 0):.1f} ms/run wall, {ms(ours, 1):.1f} ms/run CPU "
              f"(rounds {', '.join(f'{w:.1f}' for w, _ in ours)} s wall)")
        if floors:
            print(f"floor (nilearn read events + load_confounds + design): {ms(floors, 0):.1f} ms/run wall, "
                  f"{ms(floors, 1):.1f} ms/run CPU (rounds {', '.join(f'{w:.1f}' for w, _ in floors)} s wall)")
            for k, what in ((0, "wall"), (1, "CPU")):
                ratios = [o[k] / f[k] for o, f in zip(ours, floors)]
                total = sum(o[k] for o in ours) / sum(f[k] for f in floors)
                print(f"ratio to the floor ({what} time): {statistics.median(ratios):.2f}x median of rounds "
                      f"(rounds {', '.join(f'{x:.2f}' for x in ratios)}); {total:.2f}x summed over the rounds")
        print(f"peak memory (ru_maxrss): {_maxrss_mb():.0f} MB (before the timed rounds {rss_before:.0f} MB)")
        if args.tracemalloc:
            import tracemalloc

            tracemalloc.start()
            participant_once(bids, tmp / "traced", config)
            heap_peak = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
            print(f"Python heap peak during one participant level (tracemalloc, not timed): {heap_peak:.1f} MB")

        if args.resume:
            work = tmp / "work"
            out = tmp / "resume"
            first = participant_once(bids, out, config, work_dir=work)[0]
            again = participant_once(bids, out, config, work_dir=work)[0]
            print(f"--work-dir: first run {first:.1f} s, unchanged rerun {again:.2f} s "
                  f"({100 * again / first:.1f} % of the first)")
        if args.reports:
            n_subjects = len({r.subject for r in runs})
            t = participant_once(bids, tmp / "reports", config, reports=True)[0]
            per_subject = (t - statistics.median(w for w, _ in ours)) / n_subjects
            print(f"with reports: {t:.1f} s total; reports {per_subject:.2f} s per subject "
                  f"({n // n_subjects} runs x {n_variants} variants)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
