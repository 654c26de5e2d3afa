"""BIDS-App command line (README: "Usage").

::

    nbdiag BIDS_DIR OUTPUT_DIR participant [--participant-label 01 02 ...] [options]
    nbdiag BIDS_DIR OUTPUT_DIR group [--fail-on warn|fail] [--allow-incomplete]
    nbdiag demo [OUTPUT_DIR]
    nbdiag design DESIGN_TSV --contrast EXPR ... [--t-r 0.8]

Exit codes (each means one thing):

==  ==========================================================================
0   pass: every run audited (participant), every expected run signed off (group)
1   some runs could not be audited: input errors, each named (file, column/row)
2   usage or configuration error, or nothing matched: nothing run (also: ``group`` refusing partial,
    stale or changed-input records, unless ``--allow-incomplete``)
3   ``group``: QC sign-off failed (a run at or above ``--fail-on``)
4   nbdiag's own bug: one line points to the record or crash log with the traceback
==  ==========================================================================
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from nbdiag._version import __version__
from nbdiag.config import SettingsError, load_config, resolve_settings
from nbdiag.core.errors import EXIT_BUG, EXIT_OK, EXIT_RUN_ERRORS, EXIT_SIGNOFF, EXIT_USAGE  # noqa: F401 (EXIT_SIGNOFF: group)
from nbdiag.core.errors import InputError
from nbdiag.core.thresholds import Thresholds
from nbdiag.inputs.bids_filter import load_bids_filter
from nbdiag.participant.runner import wants_live_progress

if TYPE_CHECKING:
    from nbdiag.record.model import SavedDesignRecord

# The imports inside functions below are deliberately lazy: each pulls in numpy, pandas,
# nilearn or matplotlib, which the start-up (--help, usage errors) does not need.


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so ``main`` returns 2 cleanly."""

    def error(self, message: str):  # noqa: D102
        raise _UsageError(f"{self.prog}: error: {message} (see '{self.prog} --help')")


class _UsageError(Exception):
    pass


def _finite(text: str) -> float:
    """argparse type: a finite number (``nan``/``inf`` are refused with the value named)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number; got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number; got {text!r}")
    return value


def _jobs(text: str) -> int:
    """argparse type for --n-jobs: a non-zero integer (-1: all cores)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer; got {text!r}") from None
    if value == 0:
        raise argparse.ArgumentTypeError("expected a positive number of jobs, or -1 for all cores; got 0")
    return value


def _model_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("model (first_level_from_bids names)")
    g.add_argument("--task", dest="task_label", metavar="LABEL", help="task_label, e.g. nback")
    g.add_argument("--space", dest="space_label", metavar="LABEL",
                   help="space_label (nilearn default MNI152NLin2009cAsym)")
    g.add_argument("--derivatives", dest="derivatives_folder", metavar="PATH",
                   help="derivatives_folder relative to BIDS_DIR (default 'derivatives')")
    g.add_argument("--img-filter", dest="img_filters", nargs=2, action="append", metavar=("ENTITY", "LABEL"),
                   help="img_filters entry, repeatable: --img-filter desc preproc")
    g.add_argument("--hrf-model", help="glover, spm, 'spm + derivative', fir, ... or None")
    g.add_argument("--drift-model", help="cosine, polynomial or None")
    g.add_argument("--high-pass", type=_finite, metavar="HZ")
    g.add_argument("--drift-order", type=int)
    g.add_argument("--fir-delays", type=int, nargs="+", metavar="N")
    g.add_argument("--min-onset", type=_finite, metavar="S")
    g.add_argument("--slice-time-ref", type=_finite, metavar="FRACTION")
    g.add_argument("--t-r", type=_finite, metavar="S")
    g.add_argument("--confounds-strategy", nargs="*", metavar="STRATEGY",
                   help="e.g. motion non_steady_state; 'none' for no confounds")
    g.add_argument("--confounds-motion")
    g.add_argument("--confounds-wm-csf")
    g.add_argument("--confounds-global-signal")
    g.add_argument("--confounds-compcor")
    g.add_argument("--confounds-n-compcor")
    g.add_argument("--confounds-scrub", type=int)
    g.add_argument("--confounds-fd-threshold", type=_finite)
    g.add_argument("--confounds-std-dvars-threshold", type=_finite)
    g.add_argument("--noise-model", metavar="MODEL", help="FirstLevelModel noise_model for the measured "
                   "estimates: ar1 (default) or ols")
    g.add_argument("--apply-sample-masks", action="store_true", default=None,
                   help="audit the design with load_confounds' sample mask applied "
                        "(as when you pass sample_masks to FirstLevelModel.fit)")
    e = parser.add_argument_group("events and contrasts")
    e.add_argument("--events-rename", action="append", metavar="OLD=NEW")
    e.add_argument("--events-drop", action="append", metavar="TYPE")
    e.add_argument("--events-transform", action="append", metavar="rtdur|pkg.mod:func")
    e.add_argument("--rt-column", metavar="NAME", help="response-time column (default response_time)")
    e.add_argument("--rest-conditions", nargs="+", metavar="NAME",
                   help="modelled conditions that are rest-like (fixation/control under any name); "
                        "config [events] rest_conditions")
    e.add_argument("--contrast", action="append", metavar="EXPR", help="nilearn expression, repeatable")


def _model_values(args: argparse.Namespace) -> dict:
    keys = ("task_label", "space_label", "derivatives_folder", "img_filters", "hrf_model", "drift_model",
            "high_pass", "drift_order", "fir_delays", "min_onset", "slice_time_ref", "t_r",
            "apply_sample_masks", "noise_model")
    values = {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}
    if args.confounds_strategy is not None:
        strategy = args.confounds_strategy
        values["confounds_strategy"] = None if strategy in ([], ["none"], ["None"]) else strategy
    for key in ("motion", "wm_csf", "global_signal", "compcor", "scrub", "fd_threshold",
                "std_dvars_threshold"):
        value = getattr(args, f"confounds_{key}")
        if value is not None:
            values[f"confounds_{key}"] = value
    if args.confounds_n_compcor is not None:
        nc = args.confounds_n_compcor
        values["confounds_n_compcor"] = nc if nc == "all" else int(nc) if nc.isdigit() else nc
    return values


def _event_values(args: argparse.Namespace) -> dict:
    values = {}
    if args.events_rename:
        values["rename"] = args.events_rename
    if args.events_drop:
        values["drop"] = args.events_drop
    if args.events_transform:
        values["transform"] = args.events_transform
    if args.rt_column:
        values["rt_column"] = args.rt_column
    if getattr(args, "rest_conditions", None):
        values["rest_conditions"] = args.rest_conditions
    return values


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="nbdiag",
        description="Audit nilearn first-level GLM designs of a BIDS/fMRIPrep dataset before fitting them.",
        epilog="Other forms: 'nbdiag demo [OUTPUT_DIR]', 'nbdiag design DESIGN_TSV --contrast EXPR'.",
    )
    parser.add_argument("bids_dir", type=Path, help="BIDS dataset root (with fMRIPrep derivatives)")
    parser.add_argument("output_dir", type=Path, help="where nbdiag writes its derivative dataset")
    parser.add_argument("analysis_level", choices=["participant", "group"])
    parser.add_argument("--participant-label", "--participant_label", nargs="+", metavar="LABEL",
                        help="labels with or without 'sub-'")
    parser.add_argument("--config", type=Path, metavar="FILE.toml", help="TOML settings with [variants.NAME]")
    parser.add_argument("--model", type=Path, metavar="MODEL.json",
                        help="BIDS Stats Model (FitLins/pybids): its run-level node gives X, HRF, transformations, "
                             "high-pass and contrasts")
    parser.add_argument("--bids-filter-file", type=Path, metavar="FILE",
                        help="fMRIPrep's JSON filter, e.g. {\"bold\": {\"session\": \"1\", \"run\": [1, 2]}}; "
                             "its bold task/space also set --task/--space")
    parser.add_argument("--n-jobs", type=_jobs, default=1, help="runs audited in parallel (-1: all cores)")
    parser.add_argument("--no-reports", action="store_true", help="skip the HTML reports")
    parser.add_argument("--work-dir", type=Path, metavar="DIR",
                        help="resume cache: rerunning skips runs whose inputs, settings and outputs are unchanged")
    parser.add_argument("--dask-scheduler", metavar="ADDRESS",
                        help="audit the runs on a running Dask cluster, e.g. tcp://10.0.0.5:8786 "
                             "(pip install 'nbdiag[dask]')")
    parser.add_argument("--measure", choices=["confounds", "bold", "none"], default=None,
                        help="sizes measured from the run's own files: 'confounds' (default; global_signal, csf, "
                             "white_matter of the confounds file), 'bold' (also the preprocessed BOLD: effect "
                             "maps by scan class), 'none' (assumed sizes only)")
    parser.add_argument("--fail-on", choices=["warn", "fail"], default="fail",
                        help="group: the status at which a run fails sign-off (default fail)")
    parser.add_argument("--allow-incomplete", action="store_true",
                        help="group: sign off the current records even when some expected runs are missing "
                             "or refused (partial, other settings, changed inputs); they are listed, exit 1")
    parser.add_argument("--variant", dest="signoff_variants", action="append", metavar="NAME",
                        help="group: only this variant decides sign-off, include.tsv and the exit code "
                             "(repeatable; default every variant)")
    parser.add_argument("--ratings", nargs="+", type=Path, metavar="PATH",
                        help="group: reviewer rating files saved by the subject reports; "
                             "merged into signoff.tsv (reviewer, rating, comment, final)")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    parser.add_argument("--version", action="version", version=f"nbdiag {__version__}")
    _model_options(parser)
    return parser


def _load(args: argparse.Namespace):
    """The resolved settings of the command line (:func:`nbdiag.config.resolve_settings`).

    Returns
    -------
    config, bids_filter, notes
        The settings of every variant, the ``--bids-filter-file`` (or None) and the notes of
        the ``--model`` file.
    """
    bids_filter = None
    if getattr(args, "bids_filter_file", None) is not None:
        bids_filter = load_bids_filter(args.bids_filter_file)
    stats_model, notes = None, []
    if getattr(args, "model", None) is not None:
        from nbdiag.inputs.bids_stats_model import load_stats_model  # lazy: numpy, pandas, bsmschema

        stats_model, _, notes = load_stats_model(args.model)
        if args.contrast:
            notes.append("--contrast ignored: the model's Contrasts and DummyContrasts are audited")
    config = resolve_settings(args.config, model=_model_values(args), events=_event_values(args),
                              contrasts=args.contrast, measure=getattr(args, "measure", None),
                              bids_filter=bids_filter, stats_model=stats_model,
                              participant_labels=getattr(args, "participant_label", None))
    return config, bids_filter, [f"{args.model.name}: {note}" for note in notes]


def _participant(args: argparse.Namespace) -> int:
    from nbdiag.core import codes  # lazy: numpy, pandas (core.jsonio)
    from nbdiag.participant.pipeline import run_participant  # lazy: numpy, pandas, nilearn

    log = (lambda text: print(text, file=sys.stderr, flush=True))
    config, bids_filter, notes = _load(args)
    for note in notes:
        log(f"note: {note}")
    result = run_participant(args.bids_dir, args.output_dir, config, participant_labels=args.participant_label,
                             n_jobs=args.n_jobs, reports=not args.no_reports, log=log, verbose=args.verbose,
                             bids_filter=bids_filter, work_dir=args.work_dir, dask_scheduler=args.dask_scheduler,
                             keep_audits=False, progress=wants_live_progress())
    bugs = [a for a in result.internal_errors if a.error_code == codes.INTERNAL_ERROR.code]
    if bugs:
        from nbdiag.outputs.files import run_folder  # lazy: pandas, nilearn

        first = bugs[0]
        where = run_folder(Path(args.output_dir), first.run.entities) / f"{first.run.prefix}_desc-{first.variant}_nbdiag.json"
        print(f"nbdiag: internal error (a bug in nbdiag) in {len(bugs)} run × variant(s); the traceback is in "
              f"'error.traceback' of {where}; please report it", file=sys.stderr)
        return EXIT_BUG
    if result.n_errors:
        print(f"nbdiag: {result.n_errors} run(s) could not be audited (see the messages above)", file=sys.stderr)
    return result.exit_code


def _group(args: argparse.Namespace) -> int:
    from nbdiag.group.pipeline import run_group  # lazy: numpy, pandas, scipy

    return run_group(args.output_dir, fail_on=args.fail_on, variants=args.signoff_variants, ratings=args.ratings,
                     bids_dir=args.bids_dir, allow_incomplete=args.allow_incomplete)


def _demo(argv: Sequence[str]) -> int:
    parser = _Parser(prog="nbdiag demo", description="Run the full audit on the bundled n-back demo dataset.")
    parser.add_argument("output_dir", nargs="?", type=Path, default=Path("nbdiag-demo"),
                        help="where to write (default ./nbdiag-demo; never inside the package or a checkout's "
                             "reports/)")
    parser.add_argument("--n-jobs", type=_jobs, default=1)
    args = parser.parse_args(argv)
    from nbdiag.demo import run_demo  # lazy: the whole participant and group levels

    return run_demo(args.output_dir, n_jobs=args.n_jobs)


def _design(argv: Sequence[str]) -> int:
    parser = _Parser(prog="nbdiag design",
                     description="Audit a saved design matrix (e.g. written by nilearn's save_glm_to_bids).")
    parser.add_argument("design_tsv", type=Path)
    parser.add_argument("--contrast", action="append", metavar="EXPR")
    parser.add_argument("--t-r", type=_finite, help="repetition time (default: RepetitionTime in the .json sidecar)")
    parser.add_argument("--slice-time-ref", type=_finite, default=None)
    parser.add_argument("--high-pass", type=_finite, default=None, help="high_pass used (Hz), if a cosine drift")
    parser.add_argument("--hrf-model", default="glover")
    parser.add_argument("--output", type=Path, help="write the JSON record here (default: print a summary)")
    parser.add_argument("--report", type=Path, help="write an HTML report here")
    parser.add_argument("--config", type=Path, help="TOML for [thresholds]")
    args = parser.parse_args(argv)
    from nbdiag.participant.preflight import check_contrasts  # lazy: numpy, pandas, nilearn
    from nbdiag.record.build import audit_saved_design

    thresholds = _load_thresholds(args.config) if args.config else Thresholds()
    try:
        record, design = audit_saved_design(args.design_tsv, contrasts=args.contrast, t_r=args.t_r,
                                            slice_time_ref=args.slice_time_ref, high_pass=args.high_pass,
                                            hrf_model=args.hrf_model, thresholds=thresholds)
    except InputError as exc:
        print(f"nbdiag: error: {exc}", file=sys.stderr)
        return EXIT_RUN_ERRORS
    roles = {c.name: c.role for c in record.design.columns}
    problems = check_contrasts(args.contrast, design, roles, f" in {args.design_tsv.name}")
    if problems:
        print("nbdiag: error: " + "\n  ".join(problems), file=sys.stderr)
        return EXIT_USAGE
    if args.output:
        from nbdiag.outputs.files import write_json  # lazy: pandas, nilearn

        write_json(Path(args.output), record.to_json())
    _print_design_summary(args.design_tsv, record)
    if args.report:
        from nbdiag.report import render_subject_report  # lazy: jinja2, matplotlib

        stem = args.design_tsv.stem
        render_subject_report(stem, [record], {(stem, "saved"): design}, Path(args.report))
        print(f"  report: {args.report}")
    return EXIT_OK


def _load_thresholds(path: Path) -> Thresholds:
    return load_config(path).base.thresholds


def _print_design_summary(path: Path, record: "SavedDesignRecord") -> None:
    """``nbdiag design``: one screen of text about a saved design's record."""
    from nbdiag.record.model import ABSENT  # lazy: the typed record costs ~40 ms to import

    design = record.design
    print(f"{path.name}: {design.n_scans} scans x {design.n_columns} columns, status {record.status}")
    if record.skipped_checks:
        print("  checks not run or approximated on a saved design (no events, confounds file or image):")
        for item in record.skipped_checks:
            print(f"    {item.effect}: {', '.join(item.checks)}: {item.reason}")
    for role in ("task", "confound", "spike", "drift", "constant"):
        cols = [c.name for c in design.columns if c.role == role]
        if cols:
            print(f"  {role:9s} {', '.join(cols[:12])}{' ...' if len(cols) > 12 else ''}")
    for name, stats in record.contrasts.items():
        cvif = None if stats.cvif is ABSENT else stats.cvif
        variance = None if stats.variance is ABSENT else stats.variance
        print(f"  contrast {name}: estimable={stats.estimable} "
              f"variance={'n/a' if variance is None else f'{variance:.4g}'} "
              f"cvif={'n/a' if cvif is None else f'{cvif:.2f}'}")
    for finding in record.findings[:10]:
        where = f" [{finding.contrast}]" if finding.contrast else ""
        print(f"  {finding.severity.upper():5s} {finding.code}{where}: {finding.message}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (never raises; see the exit codes above)."""
    argv = list(sys.argv[1:] if argv is None else argv)

    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warning
        return _main(argv)


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Library warnings that reach the console: one line naming nbdiag, not a Python source line."""
    text = " ".join(str(message).split())
    print(f"nbdiag: warning ({category.__name__}): {text}", file=sys.stderr)


def _main(argv: list[str]) -> int:
    try:
        if argv and argv[0] == "demo":
            return _demo(argv[1:])
        if argv and argv[0] == "design":
            return _design(argv[1:])
        args = build_parser().parse_args(argv)
        if args.analysis_level == "group":
            return _group(args)
        if args.signoff_variants or args.ratings:
            raise _UsageError("nbdiag: error: --variant and --ratings apply to the group level "
                              "('nbdiag BIDS_DIR OUTPUT_DIR group ...'), not to participant")
        return _participant(args)
    except SystemExit:  # --help, --version: printed by argparse (nothing heavy imported)
        raise
    except _UsageError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    except (SettingsError, ValueError, PermissionError, NotADirectoryError, FileExistsError) as exc:
        print(f"nbdiag: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except _dataset_error() as exc:  # nothing matched: nothing was audited
        print(f"nbdiag: error: {exc}{_what_was_found(argv)}", file=sys.stderr)
        return EXIT_USAGE
    except (InputError, FileNotFoundError) as exc:
        print(f"nbdiag: error: {exc}", file=sys.stderr)
        return EXIT_RUN_ERRORS
    except KeyboardInterrupt:
        print("nbdiag: interrupted", file=sys.stderr)
        return 130
    except Exception:  # noqa: BLE001 - nbdiag's own bug: one line, the traceback in a file
        return _report_bug(argv)


def _dataset_error() -> type:
    """:class:`~nbdiag.inputs.bids.DatasetError`, imported only once an exception is being matched."""
    from nbdiag.inputs.bids import DatasetError  # lazy: nibabel, nilearn

    return DatasetError


def _what_was_found(argv: Sequence[str]) -> str:
    """After "no run found" / "no subject to audit": the tasks, spaces and derivative folders present."""
    try:
        args = build_parser().parse_args(list(argv))
        config, _, _ = _load(args)
    except Exception:  # noqa: BLE001 - only a hint: the error itself is printed anyway
        return ""
    model = config.base.model
    return survey_dataset(args.bids_dir, model.derivatives_folder or "derivatives")


def survey_dataset(bids_dir: Path, derivatives_folder: str) -> str:
    """Lines naming what ``bids_dir`` holds: derivative folders with ``sub-*``, tasks and spaces of BOLD files.

    Cheap (file names only); empty when ``bids_dir`` is not a folder.
    """
    bids_dir = Path(bids_dir)
    if not bids_dir.is_dir():
        return ""
    root = bids_dir / "derivatives"
    folders = []
    for candidate in [root, *sorted(p for p in root.glob("*") if p.is_dir()), *sorted(root.glob("*/*"))]:
        if candidate.is_dir() and any(candidate.glob("sub-*")):
            folders.append(candidate)
    lines = []
    if folders:
        names = [p.relative_to(bids_dir).as_posix() for p in folders]
        lines.append(f"derivative folders with sub-* folders: {', '.join(names)}")
        current = (bids_dir / derivatives_folder)
        if current not in folders:
            lines.append(f"try --derivatives {names[0]} (derivatives_folder, relative to BIDS_DIR)")
    tasks: set[str] = set()
    spaces: set[str] = set()
    for folder in folders or [bids_dir]:
        for bold in folder.glob("sub-*/**/func/*_bold.nii*"):
            name = bold.name
            task = re.search(r"_task-([A-Za-z0-9]+)", name)
            space = re.search(r"_space-([A-Za-z0-9]+)", name)
            if task:
                tasks.add(task.group(1))
            if space:
                spaces.add(space.group(1))
    if tasks:
        lines.append(f"tasks found (--task): {', '.join(sorted(tasks))}")
    if spaces:
        lines.append(f"spaces found (--space): {', '.join(sorted(spaces))}")
    return "".join(f"\n  {line}" for line in lines)


def _report_bug(argv: Sequence[str]) -> int:
    """Write the traceback of an unexpected failure to a crash log; print one line pointing to it."""
    import tempfile  # lazy: needed only after a crash
    import traceback

    text = f"nbdiag {__version__}\nargv: {list(argv)}\n\n{traceback.format_exc()}"
    fd, path = tempfile.mkstemp(prefix="nbdiag-crash-", suffix=".log")
    with open(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    exc = sys.exc_info()[1]
    print(f"nbdiag: internal error (a bug in nbdiag: {type(exc).__name__}); traceback written to {path}; "
          "please report it", file=sys.stderr)
    return EXIT_BUG


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
