"""Participant level: discover runs, audit every run × variant, write outputs.

This is the Python API behind ``nbdiag BIDS_DIR OUTPUT_DIR participant``::

    from nbdiag import load_config, run_participant
    result = run_participant("bids", "out", load_config("nbdiag.toml"))
    result.exit_code  # 0 all runs audited, 1 some runs could not be audited
"""

from __future__ import annotations

import contextlib
import gc
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from nbdiag.config import Config, resolve_settings
from nbdiag.core import codes
from nbdiag.core.errors import EXIT_OK, EXIT_RUN_ERRORS
from nbdiag.inputs.bids import RunInputs, discover
from nbdiag.outputs.files import (check_output_dir, read_design_tsv, run_folder, write_dataset_description,
                                  write_json, write_run_outputs)
from nbdiag.outputs.manifest import MANIFEST_DIR, make_manifest, manifest_path, provenance, settings_hash
from nbdiag.participant.preflight import check_before_runs
from nbdiag.participant.runner import Progress, execute, wants_live_progress
from nbdiag.participant.workdir import WorkDir, check_work_dir, run_input_files
from nbdiag.record.build import RunAudit, build_record, draft_run
from nbdiag.record.model import Provenance, RunRecord
from nbdiag.record.types import RunSummary


@dataclass
class ParticipantResult:
    """What a participant-level run produced.

    ``audits`` holds slim summaries of every run × variant only with
    ``run_participant(..., keep_audits=True)`` (the Python default); the command
    line keeps counts only, so memory does not grow with the number of runs.
    """

    audits: list[RunAudit]
    notes: list[str] = field(default_factory=list)
    reports: list[Path] = field(default_factory=list)
    #: run × variant count per status (pass / warn / fail / error)
    counts: dict[str, int] = field(default_factory=dict)
    #: runs skipped by ``--work-dir`` because their key and outputs were unchanged
    n_unchanged: int = 0
    #: run × variants that failed with an internal error (a bug in nbdiag), kept even without ``audits``
    internal_errors: list[RunAudit] = field(default_factory=list)

    @property
    def n_errors(self) -> int:
        if self.counts:
            return self.counts.get("error", 0)
        return sum(a.status == "error" for a in self.audits)

    @property
    def exit_code(self) -> int:
        """0 when every run was audited (findings do not count), else 1."""
        return EXIT_RUN_ERRORS if self.n_errors or any(n.startswith("participant label") for n in self.notes) else EXIT_OK


def _audit_and_write(run: RunInputs, config: Config, output_dir: Path,
                     bids_dir: Path | None = None) -> list[RunAudit]:
    drafts = []
    for settings in config.all_variants():
        drafts.append((settings, draft_run(run, settings)))
        _remove_leftover_temp_files(output_dir, run, settings.variant)
    bold: dict = {}
    measured = [d for s, d in drafts if s.measure == "bold"]
    if measured:  # --measure bold: one pass over the BOLD for every variant, before the records are built
        # lazy: BOLD mode only (~60 ms of imports every worker process would pay otherwise)
        from nbdiag.measure.bold import measure_bold_run

        bold = measure_bold_run(measured, output_dir)[1]
    audits = []
    for settings, draft in drafts:
        # the record is written last and carries the settings hash + input fingerprints:
        # its presence with a matching hash is the "done" marker the group level trusts
        prov = Provenance.from_json(provenance(settings.to_dict(), run_input_files(run), bids_dir))
        audit = build_record(draft, provenance=prov, bold=bold.get(settings.variant))
        write_run_outputs(output_dir, audit)
        audits.append(audit)
    return audits


def _remove_leftover_temp_files(output_dir: Path, run: RunInputs, variant: str) -> None:
    """Temp files of this run × variant left by a killed earlier invocation (only this run's own)."""
    folder = run_folder(output_dir, run.entities)
    if folder.is_dir():
        for tmp in folder.glob(f".{run.prefix}_desc-{variant}_*.tmp"):
            tmp.unlink(missing_ok=True)


def _write_manifests(output_dir: Path, config: Config, runs: list[RunInputs], discovery,
                     participant_labels) -> None:
    """One manifest per subject covered (a shard writes only its own subjects' files)."""
    variants = {s.variant: settings_hash(s.to_dict()) for s in config.all_variants()}
    expected: dict[str, list[dict]] = {}
    for run in runs:
        folder = run_folder(Path("."), run.entities).as_posix()
        for variant in variants:
            expected.setdefault(run.subject, []).append({
                "prefix": run.prefix, "subject": run.subject, "session": run.session, "run": run.run,
                "variant": variant, "record": f"{folder}/{run.prefix}_desc-{variant}_nbdiag.json"})
    skipped = dict(discovery.skipped)
    covered = set(expected) | set(skipped)
    for subject in sorted(covered):
        write_json(manifest_path(output_dir, subject),
                   make_manifest(subject=subject, expected=expected.get(subject, []),
                                 skipped=skipped.get(subject) if subject not in expected else None,
                                 variants=variants))
    if not participant_labels:  # the whole dataset: subjects no longer in it are stale
        for old in (Path(output_dir) / MANIFEST_DIR).glob("sub-*.json"):
            if old.stem.removeprefix("sub-") not in covered:
                old.unlink(missing_ok=True)


def _details(audits: list[RunAudit]) -> str:
    """``-v``: notes, nilearn warnings and the top finding of every variant."""
    lines = []
    for note in audits[0].summary.notes:
        lines.append(f"    note: {note}")
    for a in audits:
        summary = a.summary
        for warning in summary.nilearn_warnings:
            lines.append(f"    nilearn ({a.variant}): {warning}")
        top = next((f for f in summary.findings if f.severity in ("warn", "fail", "error")), None)
        if top:
            where = f" [{top.contrast}]" if top.contrast else ""
            lines.append(f"    {a.variant}: {top.severity} {top.code}{where}: {top.title}")
    return "\n".join(lines)


def _progress_line(i: int, n: int, audits: list[RunAudit], seconds: float) -> str:
    run = audits[0].run
    parts = [f"{a.variant}: {a.status}" for a in audits]
    line = f"[{i}/{n}] {run.prefix}  " + ", ".join(parts) + f"  ({seconds:.1f} s)"
    for a in audits:
        if a.status == "error":
            summary = a.summary
            errors = [f.message for f in summary.findings if f.severity == "error"]
            message = summary.error["message"] if summary.error else "; ".join(errors)
            line += f"\n    error ({a.variant}): {message}"
            break
    return line


def run_participant(bids_dir: str | Path, output_dir: str | Path, config: Config,
                    participant_labels: Iterable[str] | None = None, n_jobs: int = 1,
                    reports: bool = True, log: Callable[[str], None] | None = None,
                    verbose: int = 0, bids_filter=None, work_dir: str | Path | None = None,
                    dask_scheduler: str | None = None, keep_audits: bool = True,
                    progress: bool | None = None) -> ParticipantResult:
    """Audit every run of the selected participants under every variant.

    Parameters
    ----------
    bids_dir, output_dir : path
        BIDS dataset (with fMRIPrep derivatives) and the output folder.
    config : Config
        Settings and variants (see :mod:`nbdiag.config`).
    participant_labels : iterable of str, optional
        Labels with or without ``sub-``; overrides ``sub_labels``.
    n_jobs : int
        Runs audited in parallel (joblib; -1 = all cores).
    reports : bool
        Write one HTML report per subject.
    log : callable, optional
        Receives one progress line per run (default: print to stderr).
    verbose : int
        With 1 or more, each progress line is followed by the run's notes, nilearn's
        warnings and the top finding of every variant.
    bids_filter : nbdiag.inputs.bids_filter.BidsFilter, optional
        fMRIPrep-style ``--bids-filter-file``: only the BOLD images it accepts are audited.
    work_dir : path, optional
        Resume cache (:mod:`nbdiag.participant.workdir`): runs whose inputs, settings and outputs
        are unchanged since they were audited are skipped.
    dask_scheduler : str, optional
        Audit the runs on this running Dask cluster (:mod:`nbdiag.participant.runner`).
    keep_audits : bool
        Keep a slim summary of every run × variant in ``result.audits`` (memory grows
        with the number of runs; the CLI passes False).
    progress : bool, optional
        Live progress bar on stderr instead of one line per run; default: when
        ``log`` is not given and stderr is a terminal.

    Raises
    ------
    nbdiag.inputs.bids.DatasetError
        When the dataset cannot be read at all (nothing to audit).
    nbdiag.config.SettingsError
        For invalid or incomplete settings.
    """
    live = (log is None and wants_live_progress()) if progress is None else progress
    log = log or (lambda text: print(text, file=sys.stderr, flush=True))
    # the one resolver (idempotent on settings it already resolved): labels validated, task required
    config = resolve_settings(config, participant_labels=participant_labels)
    base = config.all_variants()[0].model
    bids_dir = Path(bids_dir)
    output_dir = check_output_dir(Path(output_dir), bids_dir, bids_dir / base.derivatives_folder)
    cache, discovery = _discover_runs(bids_dir, output_dir, base, work_dir, bids_filter, log)
    runs, notes = discovery.runs, discovery.notes
    for note in notes:
        log(f"note: {note}")
    check_before_runs(runs, config)  # a contrast/event-setting typo stops here (SettingsError, exit 2)
    write_dataset_description(output_dir, bids_dir)
    _write_manifests(output_dir, config, runs, discovery, participant_labels)
    n = len(runs)
    variants = [s.variant for s in config.all_variants()]
    log(f"nbdiag: auditing {n} runs x {len(variants)} variants -> {output_dir}")
    sink = _Collector.for_runs(runs, variants, output_dir, Progress(n, log, live=live), reports=reports,
                               keep_audits=keep_audits, verbose=verbose, log=log)
    start = time.perf_counter()
    try:
        _audit_runs(runs, config, variants, cache, sink, bids_dir, n_jobs, dask_scheduler)
    finally:
        sink.bar.close()
    audits = sink.audits
    audits.sort(key=lambda a: (sink.order[a.run.key], sink.variant_order[a.variant]))
    counts = dict(sink.bar.counts)
    result = ParticipantResult(audits=audits, notes=notes, reports=sink.reports_written, counts=counts,
                               n_unchanged=sink.bar.skipped, internal_errors=sink.bugs)
    log(f"nbdiag: {n} runs in {time.perf_counter() - start:.1f} s; "
        + ", ".join(f"{s}: {counts[s]}" for s in ("pass", "warn", "fail", "error"))
        + (f"; {sink.bar.skipped} unchanged runs skipped (--work-dir)" if sink.bar.skipped else ""))
    return result


def _discover_runs(bids_dir: Path, output_dir: Path, base: Any, work_dir: str | Path | None, bids_filter: Any,
                   log: Callable[[str], None]) -> tuple[WorkDir | None, Any]:
    """``(cache, discovery)``: the runs to audit, through the ``--work-dir`` cache when one is given
    (then ``cache`` is its :class:`WorkDir`, else None)."""
    if work_dir is None:
        return None, discover(bids_dir, base, bids_filter=bids_filter)
    work_dir = check_work_dir(Path(work_dir), bids_dir, bids_dir / base.derivatives_folder)
    cache = WorkDir(work_dir, bids_dir, output_dir)
    discovery, n_cached = cache.discover(base, bids_filter=bids_filter)
    if n_cached:
        log(f"nbdiag: --work-dir: runs of {n_cached} unchanged subject(s) taken from {work_dir}")
    return cache, discovery


@dataclass
class _Collector:
    """Takes each run's audits as they finish (in any order): progress line, internal errors and, once
    all of a subject's runs are in, its report and the slim summaries kept (``keep_audits``)."""

    output_dir: Path
    n: int
    bar: Progress
    order: dict[Any, int]
    variant_order: dict[str, int]
    #: runs not yet collected, per subject
    remaining: dict[str, int]
    reports: bool
    keep_audits: bool
    verbose: int
    log: Callable[[str], None]
    pending: dict[str, list[RunAudit]] = field(default_factory=dict)
    #: subjects with at least one run audited anew (not skipped by --work-dir): their report is rewritten
    redone: set[str] = field(default_factory=set)
    bugs: list[RunAudit] = field(default_factory=list)
    audits: list[RunAudit] = field(default_factory=list)
    reports_written: list[Path] = field(default_factory=list)

    @classmethod
    def for_runs(cls, runs: list[RunInputs], variants: list[str], output_dir: Path, bar: Progress, *, reports: bool,
                 keep_audits: bool, verbose: int, log: Callable[[str], None]) -> "_Collector":
        """A collector for ``runs`` × ``variants``, ordering audits as the runs and variants are listed."""
        remaining: dict[str, int] = {}
        for run in runs:
            remaining[run.subject] = remaining.get(run.subject, 0) + 1
        return cls(output_dir=output_dir, n=len(runs), bar=bar, order={run.key: i for i, run in enumerate(runs)},
                   variant_order={v: i for i, v in enumerate(variants)}, remaining=remaining, reports=reports,
                   keep_audits=keep_audits, verbose=verbose, log=log)

    def subject_done(self, subject: str) -> None:
        """All runs of ``subject`` are in: write its report (when due) and keep slim summaries."""
        items = sorted(self.pending.pop(subject, []), key=lambda a: (self.order[a.run.key],
                                                                     self.variant_order[a.variant]))
        if self.reports and (subject in self.redone or not (self.output_dir / f"sub-{subject}.html").exists()):
            # a report reads full typed records: a summary (slim worker result, --work-dir stub) is read back
            items = [a if isinstance(a.record, RunRecord) and (a.design is not None or a.status == "error")
                     else _reload(self.output_dir, a) for a in items]
            self.reports_written.extend(write_subject_reports(self.output_dir, items, self.log))
        if self.keep_audits:
            self.audits.extend(a.slim() for a in items)

    def collect(self, run: RunInputs, done: list[RunAudit], seconds: float, skipped: bool = False) -> None:
        """One run's audits (every variant) are in."""
        line = _progress_line(self.bar.done + 1, self.n, done, seconds)
        if skipped:
            line = line.replace(f"  ({seconds:.1f} s)", "  (unchanged, skipped)")
        self.bugs.extend(a for a in done if a.error_code == codes.INTERNAL_ERROR.code)
        self.bar.update(line, [a.status for a in done], skipped=skipped,
                        details=_details(done) if self.verbose and not skipped else "")
        if (self.reports or self.keep_audits) and done:
            self.pending.setdefault(run.subject, []).extend(
                done if self.reports else [a.slim() if a.design is not None else a for a in done])
        self.remaining[run.subject] -= 1
        if self.remaining[run.subject] == 0:  # subject complete: report it, then keep only a slim summary
            self.subject_done(run.subject)


def _audit_runs(runs: list[RunInputs], config: Config, variants: list[str], cache: WorkDir | None,
                sink: _Collector, bids_dir: Path, n_jobs: int, dask_scheduler: str | None) -> None:
    """Audit every run not skipped by the ``--work-dir`` cache (in parallel when asked) and hand each
    result to ``sink`` as it finishes; skipped runs are handed over as stubs."""
    todo: list[tuple[RunInputs, str | None]] = []
    for run in runs:
        key = None
        if cache is not None:
            key = cache.run_key(run, config)
            statuses = cache.done(run, key, variants)
            if statuses is not None:
                sink.collect(run, [_stub(run, v, statuses[v]) for v in variants], 0.0, skipped=True)
                continue
            cache.forget(run)
        sink.redone.add(run.subject)
        todo.append((run, key))
    slim = not (sink.reports or sink.keep_audits)
    tasks = [(run, config, sink.output_dir, slim, bids_dir) for run, _ in todo]
    with _long_lived_frozen():
        for i, (done, seconds) in execute(_timed, tasks, n_jobs=n_jobs, dask_scheduler=dask_scheduler):
            run, key = todo[i]
            if cache is not None:
                cache.mark_done(run, key, {a.variant: a.status for a in done})
            sink.collect(run, done, seconds)


@contextlib.contextmanager
def _long_lived_frozen():
    """While the runs are audited, the objects alive before them (imported modules, settings, the list
    of runs) sit in the garbage collector's permanent generation (``gc.freeze``), so its full
    collections scan only what the runs create instead of every object of the process; they are
    moved back afterwards (``gc.unfreeze``). Objects are still freed as usual when no longer used.
    Left alone when the caller has frozen objects itself."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _stub(run: RunInputs, variant: str, status: str) -> RunAudit:
    """A run × variant skipped by ``--work-dir``: its record is on disk (:meth:`RunSummary.stub`)."""
    return RunAudit(run, variant, RunSummary.stub(run.to_dict(), variant, status), None)


def _reload(output_dir: Path, audit: RunAudit) -> RunAudit:
    """The full record and design of a run × variant from its output files (for a report)."""
    folder = run_folder(output_dir, audit.run.entities)
    stem = f"{audit.run.prefix}_desc-{audit.variant}"
    record = RunRecord.from_json(json.loads((folder / f"{stem}_nbdiag.json").read_text(encoding="utf-8")))
    design = None
    tsv = folder / f"{stem}_design.tsv"
    if tsv.exists():
        design = read_design_tsv(tsv)
        times = record.design.frame_times if record.design and record.design.frame_times else ()
        if len(times) == len(design):
            design.index = list(times)
    return RunAudit(audit.run, audit.variant, record, design)


def _timed(run: RunInputs, config: Config, output_dir: Path, slim: bool = False,
           bids_dir: Path | None = None) -> tuple[list[RunAudit], float]:
    """Audit and write one run (in a worker); ``slim`` returns summaries only (:class:`RunSummary`: less to send back)."""
    t0 = time.perf_counter()
    done = _audit_and_write(run, config, output_dir, bids_dir)
    if slim:
        done = [a.slim() for a in done]
    return done, time.perf_counter() - t0


def write_subject_reports(output_dir: Path, audits: list[RunAudit], log: Callable[[str], None]) -> list[Path]:
    """One self-contained HTML per subject (``OUTPUT_DIR/sub-<label>.html``)."""
    # lazy: the report stack (jinja2, ~50 ms) runs in the main process only, not in every worker
    from nbdiag.report import render_subject_report

    by_subject: dict[str, list[RunAudit]] = {}
    for audit in audits:
        by_subject.setdefault(audit.run.subject, []).append(audit)
    paths = []
    for subject, items in by_subject.items():
        records = [a.record for a in items if isinstance(a.record, RunRecord)]
        designs = {(a.run.prefix, a.variant): a.design for a in items if a.design is not None}
        try:
            paths.append(render_subject_report(subject, records, designs, Path(output_dir) / f"sub-{subject}.html"))
        except Exception as exc:  # noqa: BLE001 - a report failure must not lose the audit
            log(f"warning: report for sub-{subject} failed: {type(exc).__name__}: {exc}")
    return paths
