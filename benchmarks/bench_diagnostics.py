"""Benchmark (issue 3): diagnostics time relative to nilearn's design-matrix build.

Usage::

    python benchmarks/bench_diagnostics.py                       # demo runs, variants nortdur + rtdur
    python benchmarks/bench_diagnostics.py --check               # exit 1 if the median ratio > 1.5
    python benchmarks/bench_diagnostics.py --check --target 1.2  # stricter check
    python benchmarks/bench_diagnostics.py --breakdown           # + where audit_design's time goes
    python benchmarks/bench_diagnostics.py --repeats 15 --variants nortdur

For every run of the bundled demo dataset (``nbdiag/demo/data``, config
``nbdiag/demo/nbdiag.toml``) and every requested variant, in ONE process:

(a) ``nilearn.glm.first_level.make_first_level_design_matrix`` with exactly the
    arguments ``nbdiag.design.matrix.build_design`` gives it (frame times, events,
    hrf/drift settings, confounds);
(b) ``nbdiag.explain.audit.audit_design`` on the built design: every diagnostic,
    the explanations and the what-if re-audits (no figures, no files);
(c) for information, the whole participant level of the run
    (``nbdiag.record.build.audit_run``: reading events + confounds, rebuilding the
    design, (b), the JSON record; no report).

(a) and (b) alternate within each repeat (same system noise); each value is the
median over ``--repeats``. Every (b) starts cold: nbdiag's kernel / regressor
caches are cleared first, so nothing is reused across repeats. One warm-up call
of each is not counted (imports, first-call overheads). The figure checked by
``--check`` is the median over runs of the per-run ratio median(b) / median(a).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TARGET = 1.5


def _clear_caches() -> None:
    """Clear nbdiag's memoisation (HRF kernels + regressors, condition-name checks; older
    trees also SVDs + pseudo-inverses) so each repeat starts cold."""
    import importlib

    for mod, fn in (("nbdiag.design.hrf", "clear_cache"),
                    ("nbdiag.diagnostics.estimability", "clear_svd_cache"),
                    ("nbdiag.diagnostics.baseline", "clear_cache")):
        try:
            getattr(importlib.import_module(mod), fn)()
        except (ImportError, AttributeError):  # older trees have no caches
            pass


def _design_call(prepared, settings):
    """A zero-argument callable running nilearn exactly as build_design does."""
    from nilearn.glm.first_level import make_first_level_design_matrix

    from nbdiag.design.matrix import frame_times

    model = settings.model
    ctx = prepared.context
    n_scans = int(ctx.n_scans_total)
    times = frame_times(n_scans, ctx.t_r, ctx.slice_time_ref)
    conf = prepared.confounds.confounds
    add_regs = add_names = None
    if conf is not None and len(conf.columns):
        add_regs, add_names = conf.to_numpy(), conf.columns.tolist()
    fir_delays = [0] if model.fir_delays is None else list(model.fir_delays)
    events = prepared.events.events

    def run():
        return make_first_level_design_matrix(times, events, model.hrf_model, model.drift_model,
                                              model.high_pass, model.drift_order, fir_delays,
                                              add_regs, add_names, model.min_onset)
    return run


def _audit_call(prepared, settings):
    from nbdiag.explain.audit import audit_design

    built = prepared.built

    def run():
        _clear_caches()
        return audit_design(built.design, built.roles, prepared.context, settings.contrasts,
                            settings.thresholds)
    return run


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# --------------------------------------------------------------------------- breakdown
STAGES = {
    # stage: (module, attribute); only top-level calls are timed (nested ones belong to their caller)
    "collinearity": ("nbdiag.diagnostics.collinearity", "assess_collinearity"),
    "confounds": ("nbdiag.diagnostics.confounds", "assess_confounds"),
    "drift": ("nbdiag.diagnostics.drift", "assess_drift"),
    "baseline + signal library": ("nbdiag.diagnostics", "_core_signals"),
    "rt": ("nbdiag.diagnostics.rt", "assess_rt"),
    "sensitivity": ("nbdiag.diagnostics", "_sensitivity_by_contrast"),
    "contrast estimability": ("nbdiag.diagnostics.estimability", "assess_contrast"),
    "contrast weights": ("nbdiag.diagnostics.weights", "contrast_weights"),
    "composition": ("nbdiag.diagnostics.weights", "baseline_composition"),
    "composition findings": ("nbdiag.diagnostics.weights", "composition_findings"),
    "parse contrasts": ("nbdiag.design.contrasts", "parse_contrasts"),
    "explanations": ("nbdiag.explain.attribution", "explain_contrasts"),
    "what-ifs": ("nbdiag.diagnostics", "whatif_fixes"),
}
GROUPS = {
    "issue-3 diagnostics": ["collinearity", "confounds", "drift", "baseline + signal library", "rt",
                            "sensitivity", "contrast estimability", "contrast weights",
                            "composition", "composition findings", "parse contrasts"],
    "explanations": ["explanations"],
    "what-ifs": ["what-ifs"],
}


def _breakdown(calls, repeats: int) -> dict[str, float]:
    """Median ms per stage of audit_design over ``calls`` (list of zero-arg callables)."""
    import importlib

    depth = [0]
    spent: dict[str, float] = defaultdict(float)
    originals = []

    def wrap(stage, fn):
        def inner(*a, **k):
            if depth[0]:
                return fn(*a, **k)
            depth[0] += 1
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[stage] += time.perf_counter() - t0
                depth[0] -= 1
        return inner

    for stage, (mod, attr) in STAGES.items():
        m = importlib.import_module(mod)
        originals.append((m, attr, getattr(m, attr)))
        setattr(m, attr, wrap(stage, getattr(m, attr)))
    # per call: median over repeats of each stage; then the mean over calls (runs x variants)
    per_call: list[dict[str, list[float]]] = [defaultdict(list) for _ in calls]
    try:
        for _ in range(repeats):
            for i, call in enumerate(calls):
                spent.clear()
                total = _timed(call)
                for stage in STAGES:
                    per_call[i][stage].append(spent.get(stage, 0.0) * 1e3)
                per_call[i]["other (assembly, jsonable, findings)"].append(
                    (total - sum(spent.values())) * 1e3)
                per_call[i]["TOTAL"].append(total * 1e3)
    finally:
        for m, attr, fn in originals:
            setattr(m, attr, fn)
    keys = per_call[0].keys()
    return {k: statistics.fmean(statistics.median(pc[k]) for pc in per_call) for k in keys}


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(ROOT / "nbdiag/demo/data"))
    ap.add_argument("--config", default=str(ROOT / "nbdiag/demo/nbdiag.toml"))
    ap.add_argument("--variants", nargs="+", default=["nortdur", "rtdur"])
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--run-repeats", type=int, default=3, help="repeats of audit_run (information only)")
    ap.add_argument("--check", action="store_true", help="exit 1 if the median ratio > --target")
    ap.add_argument("--target", type=float, default=TARGET,
                    help=f"ratio checked by --check (default {TARGET}, the issue-3 requirement)")
    ap.add_argument("--breakdown", action="store_true", help="time audit_design's stages (separate pass)")
    args = ap.parse_args(argv)

    warnings.simplefilter("ignore")
    import nilearn

    from nbdiag.record.build import audit_run, prepare_run
    from nbdiag.inputs.bids import discover_runs
    from nbdiag.config import load_config

    cfg = load_config(args.config)
    rows = []
    audit_calls = []
    for vname in args.variants:
        if vname not in cfg.variants:
            print(f"--variants: unknown variant {vname!r}; config has {sorted(cfg.variants)}", file=sys.stderr)
            return 2
        settings = cfg.variants[vname]
        runs, _ = discover_runs(args.data, settings.model)
        for run in runs:
            prepared = prepare_run(run, settings)
            design_fn, audit_fn = _design_call(prepared, settings), _audit_call(prepared, settings)
            design_fn(), audit_fn()  # warm-up, not counted
            a, b = [], []
            for _ in range(args.repeats):
                a.append(_timed(design_fn))
                b.append(_timed(audit_fn))
            c = [_timed(lambda run=run, settings=settings: audit_run(run, settings)) for _ in range(args.run_repeats)]
            ma, mb, mc = (statistics.median(x) * 1e3 for x in (a, b, c))
            rows.append({"run": run.prefix, "variant": vname, "scans": prepared.built.design.shape[0],
                         "cols": prepared.built.design.shape[1], "design_ms": ma, "audit_ms": mb,
                         "ratio": mb / ma, "audit_run_ms": mc})
            audit_calls.append(audit_fn)

    print(f"nilearn {nilearn.__version__}, numpy {np.__version__}, repeats {args.repeats} "
          f"(audit_run {args.run_repeats}); times are medians in ms")
    head = f"{'run':<52} {'variant':<8} {'scans':>5} {'cols':>4} {'nilearn design':>14} " \
           f"{'audit_design':>12} {'ratio':>6} {'audit_run':>10}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['run']:<52} {r['variant']:<8} {r['scans']:>5} {r['cols']:>4} {r['design_ms']:>14.1f} "
              f"{r['audit_ms']:>12.1f} {r['ratio']:>6.2f} {r['audit_run_ms']:>10.1f}")
    med = statistics.median(r["ratio"] for r in rows)
    print("-" * len(head))
    print(f"median ratio audit_design / make_first_level_design_matrix = {med:.2f} "
          f"(target <= {args.target:g}); max {max(r['ratio'] for r in rows):.2f}")

    if args.breakdown:
        bd = _breakdown(audit_calls, max(3, args.repeats // 3))
        total = bd["TOTAL"]
        print("\naudit_design breakdown: ms per run (median over repeats, mean over runs x variants; "
              "top-level calls only, nested calls count for their caller):")
        for k, v in sorted(bd.items(), key=lambda kv: -kv[1]):
            if k != "TOTAL":
                print(f"  {k:<40} {v:7.2f}  {v / total:6.1%}")
        print(f"  {'TOTAL':<40} {total:7.2f}")
        for g, members in GROUPS.items():
            v = sum(bd[m] for m in members)
            print(f"  group {g:<34} {v:7.2f}  {v / total:6.1%}")
    if args.check and med > args.target:
        print(f"FAIL: median ratio {med:.2f} > {args.target:g}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
