"""Audit one run under one model variant: inputs -> design -> diagnostics -> record.

This is the only module that joins I/O-derived inputs to the pure diagnostics.
It never raises for bad input: a broken run becomes a record with
``status: "error"`` and an ``error`` object naming the file, column and row.
"""

from __future__ import annotations

import pickle
import re
import traceback
from pathlib import Path
from dataclasses import dataclass, replace
from typing import Any

import nilearn
import numpy as np
import pandas as pd

from nbdiag.core.jsonio import jsonable, records
from nbdiag._version import __version__
from nbdiag.inputs.bids import RunInputs, t_r_disagreement
from nbdiag.config import Settings
from nbdiag.design.context import DesignContext, frame_times
from nbdiag.design.matrix import DesignResult, build_design, infer_roles
from nbdiag.core.errors import InputError
from nbdiag.core.limits import too_large
from nbdiag.diagnostics.drift import dct_cosines
from nbdiag.diagnostics.sensitivity import MEAN_SIGNALS
from nbdiag.explain.audit import audit_design
from nbdiag.inputs.events import EventsResult, events_outside_run, read_events, transform_events
from nbdiag.inputs.saved_design import load_saved_design
from nbdiag.core.findings import Finding, rank_findings, status_from_findings
from nbdiag.record.model import Provenance, RunError, RunRecord, SavedDesignRecord
from nbdiag.record.types import RunSummary
from nbdiag.inputs.fmriprep import NSS_PATTERN, ConfoundsResult, load_run_confounds, raw_signals, read_raw_confounds
from nbdiag.core import codes


@dataclass
class RunAudit:
    """Result of auditing one run × variant.

    ``record`` is the typed record (:class:`nbdiag.record.model.RunRecord`; its ``to_json()``
    is the ``_nbdiag.json`` content, docs/record.md), or only its
    :class:`~nbdiag.record.types.RunSummary` once the outputs are written (:meth:`slim`);
    ``design`` is the design matrix (None when the run errored).
    """

    run: RunInputs
    variant: str
    record: RunRecord | RunSummary
    design: pd.DataFrame | None = None

    @property
    def status(self) -> str:
        return self.record.status

    @property
    def error_code(self) -> str | None:
        """The code of the record's ``error`` object (None when the run was audited)."""
        record = self.record
        if isinstance(record, RunSummary):
            return (record.error or {}).get("code")
        return record.error.code if isinstance(record.error, RunError) else None

    @property
    def summary(self) -> RunSummary:
        """The record's :class:`RunSummary` (derived from the typed record)."""
        return RunSummary.of(self.record)

    def slim(self) -> "RunAudit":
        """A copy holding only :class:`nbdiag.record.types.RunSummary` of the record (kept in
        memory once the outputs are written; the full record is in the ``_nbdiag.json``)."""
        return RunAudit(self.run, self.variant, self.summary, None)


@dataclass
class BoldSpec:
    """What BOLD mode needs of one audited run × variant, from the audit's own values (not the record):
    each contrast's weight per design row, each design row's scan class, and the image volume of each
    design row (the sample mask's kept volumes, or all)."""

    weights: dict[str, Any]
    scan_classes: list[str]
    rows: list[int]


@dataclass
class DraftRun:
    """One run × variant audited, before its record is built (:func:`build_record`).

    ``parts`` holds the record's JSON-ready sections as the audit produced them; nothing
    reads it but the builder. ``bold_spec`` is None for an errored run.
    """

    run: RunInputs
    variant: str
    parts: dict[str, Any]
    design: pd.DataFrame | None = None
    bold_spec: BoldSpec | None = None

    @property
    def status(self) -> str:
        return self.parts["status"]


def _base_record(run: RunInputs, settings: Settings) -> dict[str, Any]:
    resolved = {
        "t_r": {**run.t_r.to_dict(), "sources": list(getattr(run, "t_r_sources", []) or [])} if run.t_r else None,
        "slice_time_ref": run.slice_time_ref.to_dict() if run.slice_time_ref else None,
        "n_scans": run.n_scans.to_dict() if run.n_scans else None,
    }
    settings_dict = settings.to_dict()
    if isinstance(settings_dict.get("model"), dict):
        # which subjects were selected is not a setting of this run's model: a run audited in a
        # --participant-label shard gets the same record as in a whole-dataset run
        settings_dict["model"] = {k: v for k, v in settings_dict["model"].items()
                                  if k not in ("sub_labels", "exclude_subjects")}
    return {
        "nbdiag_version": __version__,
        "nilearn_version": nilearn.__version__,
        "run": run.to_dict(),
        "variant": settings.variant,
        "settings": {**resolved, **settings_dict},
        "notes": list(run.notes),
    }


def _error_record(record: dict[str, Any], error: InputError | Exception, findings: list[Finding]) -> dict[str, Any]:
    if isinstance(error, InputError):
        err = error.to_dict()
        if err["code"] is None:
            err["code"] = codes.INPUT_INVALID.code
    else:  # an unexpected failure: still a record, with the traceback summary for a bug report
        err = {"code": codes.INTERNAL_ERROR.code, "message": f"{type(error).__name__}: {error}",
               "traceback": traceback.format_exc(limit=5)}
    code = err.get("code", codes.INPUT_INVALID.code)
    if code == codes.INTERNAL_ERROR.code:
        code = codes.AUDIT_FAILED.code
    findings = findings + [Finding(code=code, severity="error",
                                   title="Run could not be audited", message=err["message"],
                                   evidence={k: v for k, v in err.items() if k not in ("message", "traceback")})]
    record.update({"findings": jsonable(rank_findings(findings)), "status": "error", "error": err})
    return record


def _mean_signal_medians(path, columns, nonsteady) -> tuple[tuple[str, float], ...]:
    """Steady-state medians (scanner units) of the mean-signal confounds in the design, from the raw file.

    load_confounds demeans its columns, so the design alone cannot say what 1 % of
    ``global_signal`` is; the raw file can. Empty when none is in the design.
    """

    wanted = [c for c in MEAN_SIGNALS if c in set(map(str, columns))]
    if not wanted or path is None:
        return ()
    raw = read_raw_confounds(path)
    flagged = set(int(v) for v in nonsteady)
    keep = np.array([i not in flagged for i in range(len(raw))], dtype=bool)
    out = []
    for col in wanted:
        if col in raw.columns:
            values = pd.to_numeric(raw[col], errors="coerce").to_numpy(dtype=float)[keep]
            values = values[np.isfinite(values)]
            if values.size and np.median(values) != 0:
                out.append((col, float(np.median(values))))
    return tuple(out)


def tr_mismatch_finding(run: RunInputs) -> Finding | None:
    """``tr_mismatch`` when the run's TR sources (``run.t_r_sources``) and the model's t_r disagree.

    Each source and its value is named in the message and listed in
    ``evidence.sources``; the TRs other than the model's become ``tr:<s>``
    what-if signals (``other_t_r`` of the design context).
    """

    sources = list(getattr(run, "t_r_sources", []) or [])
    if not sources and run.own_t_r is not None:
        sources = [{"source": "derivative sidecar", "value": run.own_t_r,
                    "file": str(run.bold_sidecar.name) if run.bold_sidecar else None}]
    model_t_r = run.t_r.value if run.t_r is not None else None
    if model_t_r is None or not t_r_disagreement(sources, model_t_r):
        return None
    listed = "; ".join(f"{s['source']}{' ' + s['file'] if s.get('file') else ''}: {float(s['value']):g} s"
                       for s in sources)
    others = sorted({float(s["value"]) for s in sources if abs(float(s["value"]) - model_t_r) > 1e-3})
    return Finding(
        code=codes.TR_MISMATCH.code, severity="warn", title="Repetition times disagree between sources",
        message=(f"The run's repetition time is stated differently by its sources ({listed}); the model uses t_r "
                 f"{model_t_r:g} s ({run.t_r.source}). first_level_from_bids reads t_r once per dataset, so if the "
                 f"data were acquired at {' or '.join(f'{v:g} s' for v in others) or 'another TR'}, every "
                 f"onset is placed on the wrong time grid."),
        evidence={"sources": sources, "model_t_r": model_t_r, "model_t_r_source": run.t_r.source,
                  "other_t_r": others, "sidecar_t_r": run.own_t_r,
                  "sidecar": str(run.bold_sidecar.name) if run.bold_sidecar else None,
                  "source": run.t_r.source, "threshold": "all sources equal within 1 ms"},
        fix="Find the true TR (the scanner protocol), fix the wrong file, and fit with that TR "
            "(FirstLevelModel(t_r=...) or --t-r); fit runs with different TRs separately.",
    )


def _input_findings(run: RunInputs) -> list[Finding]:
    findings = []
    tr = tr_mismatch_finding(run)
    if tr is not None:
        findings.append(tr)
    # n_scans taken from the confounds rows (image not fetched) is a note on the run
    # (run.notes), not an n_scans_mismatch: nothing mismatches.
    return findings


@dataclass
class PreparedRun:
    """Everything built for one run × variant before the diagnostics."""

    events: Any
    confounds: Any
    built: DesignResult
    context: DesignContext
    findings: list[Finding]
    notes: list[str]


def prepare_run(run: RunInputs, settings: Settings) -> PreparedRun:
    """Read events and confounds and rebuild the design as nilearn would.

    Raises
    ------
    InputError
        For bad input (file, column, row, expected, found).
    """
    if run.error is not None:
        raise run.error
    model = settings.model
    n_scans = int(run.n_scans.value)
    check_n_scans(n_scans, run, settings)
    table = read_events(run.events, limits=settings.limits)
    if settings.stats_model is not None:
        events, conf, notes = _stats_model_inputs(run, settings, table, n_scans)
    else:
        events = transform_events(table, settings.events, path=run.events)
        conf = load_run_confounds(run.bold, run.confounds, model, n_scans, roots=run.roots, limits=settings.limits)
        notes = [f"nilearn load_confounds: {m}" for m in conf.warnings]
    findings = list(events.findings)
    t_r = float(run.t_r.value)
    slice_time_ref = float(run.slice_time_ref.value)
    mask = conf.sample_mask if (model.apply_sample_masks and conf.sample_mask is not None) else None
    try:
        built = build_design(events.events, conf.confounds, n_scans, t_r, slice_time_ref, model, sample_mask=mask)
    except (ValueError, TypeError) as exc:  # nilearn's own checks of the events it is given
        raise InputError(f"nilearn cannot build a design from these events: {type(exc).__name__}: {exc}",
                         file=run.events, code=codes.EVENTS_INVALID.code,
                         expected="events nilearn's make_first_level_design_matrix accepts",
                         found=type(exc).__name__) from None
    times = frame_times(n_scans, t_r, slice_time_ref)
    findings += events_outside_run(events.events, times, t_r, model.min_onset, run.events)
    context = make_context(settings, events, conf, built, t_r, slice_time_ref, n_scans)
    medians = _mean_signal_medians(run.confounds, built.design.columns, conf.nonsteady_volumes)
    if medians:
        context = replace(context, confound_medians=medians)
    by_value: dict[float, list[str]] = {}
    for src in getattr(run, "t_r_sources", None) or []:
        if abs(float(src["value"]) - t_r) > 1e-3:
            by_value.setdefault(round(float(src["value"]), 6), []).append(str(src["source"]))
    if by_value:
        context = replace(context, other_t_r=tuple((", ".join(kinds), v) for v, kinds in sorted(by_value.items())))
    return PreparedRun(events, conf, built, context, findings, notes)


#: fewest volumes a design can be built from (nilearn's cosine drift and HRF sampling fail below)
MIN_SCANS = 2


def check_n_scans(n_scans: int, run: RunInputs, settings: Settings) -> None:
    """Refuse a run with too few or too many volumes for a design, naming where n_scans came from.

    Raises
    ------
    InputError
        ``n_scans`` < 2 (nilearn fails with an IndexError / empty reduction), or above
        ``[limits] max_scans``.
    """
    source = run.n_scans.source if run.n_scans is not None else "n_scans"
    if n_scans < MIN_SCANS:
        raise InputError(f"the run has {n_scans} volume(s) ({source}); a design needs at least {MIN_SCANS}",
                         file=run.bold, code=codes.N_SCANS_INVALID.code, expected=f">= {MIN_SCANS} volumes",
                         found=f"{n_scans}")
    limit = settings.limits.max_scans
    if n_scans > limit:
        raise InputError(too_large(f"volumes ({source})", n_scans, limit, "max_scans"), file=run.bold,
                         code=codes.INPUT_TOO_LARGE.code, expected=f"at most {limit} volumes", found=f"{n_scans}")


def _stats_model_inputs(run: RunInputs, settings: Settings, table: pd.DataFrame, n_scans: int):
    """Events and confounds of a run under a BIDS Stats Model's run node (``--model``)."""
    # lazy: the BIDS Stats Model reader (bsmschema, pydantic: ~130 ms) only for --model
    from nbdiag.inputs.bids_stats_model import design_inputs

    raw = read_raw_confounds(run.confounds) if run.confounds is not None else None
    if raw is not None and len(raw) != n_scans:
        raise InputError("confounds row count differs from the number of volumes", file=run.confounds,
                         code=codes.N_SCANS_MISMATCH.code, expected=f"{n_scans} rows", found=f"{len(raw)} rows")
    events_table, conf_table, unmodeled, notes = design_inputs(settings.stats_model, table, raw, run.events)
    checked = transform_events(table, replace(settings.events, transforms=()), path=run.events)
    events = EventsResult(events=events_table, unmodeled=unmodeled, rt_events=checked.rt_events,
                          findings=tuple(f for f in checked.findings if f.code != codes.TRIAL_TYPE_NOT_IDENTIFIER.code))
    nss: tuple[int, ...] = ()
    if raw is not None:
        cols = [c for c in raw.columns if NSS_PATTERN.match(str(c))]
        if cols:
            nss = tuple(int(i) for i in np.flatnonzero((raw[cols].fillna(0).to_numpy() != 0).any(axis=1)))
    conf = ConfoundsResult(confounds=conf_table, sample_mask=None,
                           raw_columns=() if raw is None else tuple(map(str, raw.columns)), nonsteady_volumes=nss,
                           signals={} if raw is None else raw_signals(raw))
    return events, conf, [f"BIDS Stats Model {settings.stats_model.to_dict()['file']}: {n}" for n in notes]


_NO_TEXT = frozenset({float, int, bool, type(None)})  # element types that cannot hold a path
#: Record sections that audit_design_into builds fresh for each call, as plain JSON values (``jsonable``'s
#: output, referenced by nothing else): one that holds no dataset path is kept as it is (walking it would
#: only copy it unchanged).
_FRESH_SECTIONS = frozenset({"confounds", "events", "diagnostics", "contrasts", "whatif", "measured", "findings"})


def _may_hold(value: Any, needles: list[bytes]) -> bool:
    """False only when no string in ``value`` contains one of ``needles`` (UTF-8, surrogates passed).

    A pickle holds every string it reaches as its UTF-8 bytes, in one piece (C speed; no float
    is turned into text); anything that cannot be pickled counts as holding one.
    """
    try:
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - not picklable: walk it
        return True
    return any(n in data for n in needles)


def relative_to_dataset(obj: Any, root: Any) -> Any:
    """``obj`` with every path under ``root`` (BIDS_DIR) written as a BIDS URI ``bids::<path>``.

    Records never hold an absolute path of the machine where they were made (messages,
    setting sources and evidence included), so outputs are identical wherever the
    dataset sits. In a completed run record, the sections ``audit_design_into`` builds
    fresh (``_FRESH_SECTIONS``) are checked for the paths at C speed (their pickle) and
    walked only when one may hold a path; the result is the same.
    """
    if root is None:
        return obj
    prefixes = sorted({str(root), str(Path(root).absolute()), str(Path(root).resolve())}, key=len, reverse=True)
    bare = [re.compile(re.escape(p) + r"(?=$|[\s'\"),;:\]]|\.(?:\s|$))") for p in prefixes]  # the folder itself

    def fix_str(v: str) -> str:
        for p, pattern in zip(prefixes, bare):
            if p in v:
                v = pattern.sub("bids::", v.replace(p + "/", "bids::"))
        return v

    # numbers, booleans and None are returned as they are without a call (records hold thousands)
    def fix(v: Any) -> Any:
        t = type(v)
        if t is dict:
            return {k: x if type(x) in _NO_TEXT else fix(x) for k, x in v.items()}
        if t is str:
            return fix_str(v)
        if t in _NO_TEXT:
            return v
        if isinstance(v, str):
            return fix_str(v)
        if isinstance(v, dict):
            return {k: fix(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            if _NO_TEXT.issuperset(map(type, v)):  # per-scan series: nothing to rewrite
                return v
            return [x if type(x) in _NO_TEXT else fix(x) for x in v] if isinstance(v, list) \
                else tuple(fix(x) for x in v)
        return v

    if type(obj) is dict and "error" in obj and obj["error"] is None:  # a run record audit_design_into completed
        needles = [p.encode("utf-8", "surrogatepass") for p in prefixes]  # as pickle writes strings
        return {k: x if k in _FRESH_SECTIONS and not _may_hold(x, needles) else fix(x) for k, x in obj.items()}
    return fix(obj)


def audit_run(run: RunInputs, settings: Settings, provenance: Provenance | None = None) -> RunAudit:
    """Audit one run under one variant; never raises for bad input.

    ``provenance`` (settings hash + input fingerprints, written by the participant level)
    goes into the record; BOLD mode uses :func:`draft_run` + :func:`build_record` instead.
    """
    return build_record(draft_run(run, settings), provenance=provenance)


def draft_run(run: RunInputs, settings: Settings) -> DraftRun:
    """Audit one run under one variant, before the record is built; never raises for bad input."""
    draft = _audit_prepared(run, settings, _base_record(run, settings), lambda: prepare_run(run, settings))
    draft.parts = relative_to_dataset(draft.parts, getattr(run, "root", None))
    return draft


def build_record(draft: DraftRun, provenance: Provenance | None = None,
                 bold: tuple[dict[str, Any], list[str]] | None = None) -> RunAudit:
    """The one builder: the typed record of an audited run × variant.

    Parameters
    ----------
    draft : DraftRun
        The audit (:func:`draft_run`).
    provenance : Provenance, optional
        Settings hash + input fingerprints (the participant level's "done" marker).
    bold : (section, notes), optional
        BOLD mode's result for this variant (:func:`nbdiag.measure.bold.measure_bold_run`):
        the ``measured.bold`` section and the notes it adds to the record.

    Raises
    ------
    nbdiag.record.model.RecordFormatError
        When a producer wrote a key the typed record does not have (a bug, caught by the tests).
    """
    parts = draft.parts
    if draft.design is not None:  # the design TSV the writer puts next to the record (outputs.files)
        parts = {**parts, "design": {**parts["design"], "tsv": f"{draft.run.prefix}_desc-{draft.variant}_design.tsv"}}
    if bold is not None:
        section, notes = bold
        parts = {**parts, "notes": [*parts["notes"], *notes]}
        if section is not None:
            parts["measured"] = {**(parts.get("measured") or {}), "bold": section}
    record = RunRecord.from_json(parts)
    if provenance is not None:
        record = replace(record, provenance=provenance)
        parts = {**parts, "provenance": provenance.to_json()}
    record._keep_json(parts)  # the writer's to_json() needs no second encoding (same JSON, tested)
    return RunAudit(draft.run, draft.variant, record, draft.design)


def _audit_prepared(run: RunInputs, settings: Settings, record: dict[str, Any], prepare) -> DraftRun:
    """Complete ``record`` from ``prepare()`` (a :class:`PreparedRun`), or make it an error record.

    Shared by BIDS runs and runs given as nilearn objects; any failure (an ``InputError``
    naming the file, or anything else) becomes an error record: one broken run never
    stops the others.
    """
    findings: list[Finding] = _input_findings(run)
    try:
        prepared = prepare()
        record["notes"].extend(prepared.notes)
        spec = audit_design_into(record, prepared.built, prepared.context, settings, findings + prepared.findings,
                                 conf=prepared.confounds)
        return DraftRun(run, settings.variant, record, prepared.built.design, spec)
    except Exception as exc:  # noqa: BLE001 - InputError included; one broken run never stops the others
        return DraftRun(run, settings.variant, _error_record(record, exc, findings))


def make_context(settings: Settings, events, conf, built: DesignResult, t_r: float,
                 slice_time_ref: float, n_scans: int) -> DesignContext:
    """The diagnostics' view of a run (no paths)."""
    model = settings.model
    kwargs = model.load_confounds_kwargs()
    strategy = None if kwargs is None else tuple(kwargs.get("strategy", ())) if kwargs else ("all columns",)
    rt_name = settings.events.rtdur_name if "rtdur" in settings.events.transforms else None
    task_events = events.events[["onset", "duration", "trial_type"] + (
        ["modulation"] if "modulation" in events.events.columns else [])].copy()
    task_events["trial_type"] = task_events["trial_type"].astype(str)  # column names are strings
    return DesignContext(
        t_r=t_r, slice_time_ref=slice_time_ref, hrf_model=model.hrf_model, drift_model=model.drift_model,
        high_pass=model.high_pass, drift_order=model.drift_order, events=task_events,
        unmodeled_events=events.unmodeled, nonsteady_volumes=conf.nonsteady_volumes,
        scrub_volumes=conf.scrub_volumes,
        sample_mask_applied=built.scan_index is not None,
        confounds_strategy=strategy, scrub_requested=bool(kwargs and "scrub" in kwargs.get("strategy", ())),
        raw_confound_columns=conf.raw_columns, nilearn_regularized=built.regularized,
        rt_column=settings.events.rt_column if events.rt_events is not None else None,
        rt_events=events.rt_events, rt_regressor=rt_name if rt_name in built.design.columns else None,
        scan_index=built.scan_index, n_scans_total=n_scans,
        measured_signals=(dict(conf.signals) if settings.measure != "none" and conf.raw_columns else None),
        noise_model=model.noise_model,
        rest_conditions=tuple(getattr(settings.events, "rest_conditions", ())),
        motion=getattr(conf, "motion", None), unmasked_task=built.unmasked_task,
    )


def audit_design_into(record: dict[str, Any], built: DesignResult, context: DesignContext, settings: Settings,
                      findings: list[Finding], conf=None) -> BoldSpec:
    """Run the diagnostics on a built design and complete ``record`` (a draft's JSON-ready parts).

    Returns what BOLD mode needs of the audit (:class:`BoldSpec`), from the audit's values.
    """

    design = built.design
    record["design"] = {
        "n_scans": int(design.shape[0]), "n_columns": int(design.shape[1]),
        "rank": int(np.linalg.matrix_rank(design.to_numpy())),
        "columns": built.columns_record(),
        "frame_times": [float(t) for t in design.index],
        "nilearn_warnings": list(built.warnings), "regularized": built.regularized,
        "sample_mask": {
            "returned_by_load_confounds": None if conf is None or conf.sample_mask is None
            else [int(i) for i in conf.sample_mask],
            "applied": built.scan_index is not None,
            "n_removed": 0 if conf is None or conf.sample_mask is None
            else int((context.n_scans_total or design.shape[0]) - len(conf.sample_mask)),
            "removed_volumes": [] if conf is None or conf.sample_mask is None
            else sorted(set(range(context.n_scans_total or 0)) - set(int(i) for i in conf.sample_mask)),
        },
    }
    if conf is not None:
        record["confounds"] = conf.to_dict()
    record["events"] = {
        "modeled": records(context.events, ["onset", "duration", "trial_type"]) if context.events is not None else None,
        "unmodeled": jsonable(context.unmodeled_events),
    }
    result = audit_design(design, built.roles, context, settings.contrasts, settings.thresholds,
                          input_findings=[f for f in findings if f.code == codes.TR_MISMATCH.code])
    record["diagnostics"] = result.diagnostics  # audit_design returns these sections JSON-ready
    record["contrasts"] = result.contrasts
    record["whatif"] = jsonable(result.whatif)
    record["measured"] = _measured_section(settings, context, result.measured)
    all_findings = rank_findings(findings + list(result.findings))
    record["findings"] = jsonable(all_findings)
    record["status"] = status_from_findings(all_findings)
    record["error"] = None
    n_rows = int(design.shape[0])
    rows = list(range(n_rows)) if built.scan_index is None else sorted(set(int(i) for i in built.scan_index))
    weights = {name: c["weights"] for name, c in result.contrasts.items()
               if isinstance(c, dict) and c.get("weights") is not None}
    return BoldSpec(weights=weights, scan_classes=list((result.diagnostics.get("baseline") or {}).get("scan_classes")
                                                       or []), rows=rows)


def _measured_section(settings: Settings, context: DesignContext, measured: dict[str, Any] | None) -> dict[str, Any]:
    """Run-level ``measured`` record section (docs/record.md): what was measured, and from what."""
    mode = getattr(settings, "measure", "confounds")
    if measured is None:
        why = ("--measure none" if mode == "none" else
               "no global_signal/csf/white_matter column (or no confounds file) for this run")
        return {"mode": mode, "source": None, "signals": {}, "note": f"nothing measured: {why}; sizes are assumed"}
    return {"mode": mode, "source": "confounds", **measured}


def audit_saved_design(path, contrasts=None, t_r: float | None = None, slice_time_ref: float | None = None,
                       high_pass: float | None = None, hrf_model: str | None = "glover",
                       thresholds=None) -> tuple[SavedDesignRecord, pd.DataFrame]:
    """Record of a saved design matrix (``nbdiag design DESIGN_TSV``).

    Roles are inferred from column names and values; without events the
    baseline is defined from the task regressors themselves.

    Returns
    -------
    record : SavedDesignRecord
        The typed record (``record.to_json()`` is the JSON ``nbdiag design --output`` writes).
    design : DataFrame

    Raises
    ------
    InputError
        When the design file cannot be read or no t_r is known.
    """
    path = Path(path)
    given_high_pass = high_pass
    design, t_r, slice_time_ref, source = load_saved_design(path, t_r, slice_time_ref)
    roles, sources = infer_roles(design)
    drift_cols = [c for c, r in roles.items() if r == "drift" and c.startswith("drift_")]
    drift_model = None
    if drift_cols:
        n = len(design)
        cosine_1 = dct_cosines(n, 1)[:, 0]
        drift_model = "cosine" if np.allclose(design[drift_cols[0]].to_numpy(), cosine_1, atol=1e-6) else "polynomial"
    if drift_model == "cosine" and high_pass is None:
        # nilearn's cosine basis has floor(2 * n * dt * high_pass) columns: take the middle of that interval
        high_pass = (len(drift_cols) + 0.5) / (2.0 * len(design) * t_r)
    built = DesignResult(design=design, roles=roles, sources=sources)
    context = DesignContext(t_r=t_r, slice_time_ref=slice_time_ref, hrf_model=hrf_model, drift_model=drift_model,
                            high_pass=high_pass, drift_order=max(len(drift_cols), 1), events=None,
                            n_scans_total=len(design),
                            notes=("roles inferred from column names; no events known: baseline from regressors",))
    contrast_map = {c: c for c in contrasts} if contrasts else None
    result = audit_design(design, roles, context, contrast_map, thresholds)
    skipped = saved_design_skipped_checks(source, drift_model, high_pass, given_high_pass, len(drift_cols))
    record = {
        "nbdiag_version": __version__, "nilearn_version": nilearn.__version__, "source": path.name,
        "settings": {"t_r": {"value": t_r, "source": source}},
        "design": {"columns": built.columns_record(), "n_scans": len(design), "n_columns": design.shape[1],
                   "rank": int(np.linalg.matrix_rank(design.to_numpy())),
                   "frame_times": [float(t) for t in design.index]},
        "diagnostics": jsonable(result.diagnostics), "contrasts": jsonable(result.contrasts),
        "whatif": jsonable(result.whatif), "skipped_checks": skipped,
        "findings": jsonable(rank_findings(list(result.findings) + [skipped_checks_finding(skipped)])),
        "status": result.status,
        "run": {"subject": path.stem, "session": None, "run": None, "prefix": path.stem, "entities": {},
                "files": {"design": path.name}},
        "variant": "saved",
    }
    return SavedDesignRecord.from_json(jsonable(record)), design


#: Checks a saved design alone cannot run, and why (``nbdiag design``; record ``skipped_checks``).
SAVED_DESIGN_SKIPS = (
    {"checks": [codes.BASELINE_UNMODELED_EVENTS.code], "effect": "not run",
     "reason": "no events.tsv: events listed in it but left out of the model cannot be known"},
    {"checks": [codes.EVENTS_OUTSIDE_RUN.code, codes.EVENTS_INVALID.code, codes.TRIAL_TYPE_NOT_IDENTIFIER.code],
     "effect": "not run",
     "reason": "no events.tsv to check"},
    {"checks": [codes.NONSTEADY_UNHANDLED.code, codes.SCRUB_NOT_APPLIED.code], "effect": "not run",
     "reason": "no fMRIPrep confounds file: which volumes fMRIPrep flagged as non-steady-state, or scrubbing "
               "would censor, is unknown (the sample mask first_level_from_bids drops cannot be seen)"},
    {"checks": [codes.TR_MISMATCH.code, codes.N_SCANS_MISMATCH.code], "effect": "not run",
     "reason": "no image or BOLD sidecar: the repetition time and number of volumes cannot be cross-checked"},
    {"checks": [codes.BASELINE_SCARCE.code, codes.BASELINE_SHORT_GAPS.code, codes.BASELINE_MODELED_REST.code,
                codes.BASELINE_EDGE_CONCENTRATED.code],
     "effect": "approximated",
     "reason": "no events: the baseline is taken as the scans where no task regressor reaches half its "
               "maximum, not from the event timing"},
    {"checks": [codes.SENSITIVE_UNMODELED_SIGNAL.code], "effect": "partly run",
     "reason": "no events: the HRF-shape (derivative/dispersion), RT-proportional and unmodelled-event "
               "signals need event onsets; first-volume, run-start and drift signals are still measured"},
    {"checks": [codes.VIF_HIGH.code, codes.CORRELATION_HIGH.code, codes.CONFOUND_TASK_CORRELATED.code],
     "effect": "approximated",
     "reason": "column roles inferred from names and values: a confound not named like fMRIPrep's "
               "(trans_x, a_comp_cor_00, ...) counts as a task regressor"},
)


def saved_design_skipped_checks(t_r_source: str, drift_model: str | None, high_pass: float | None,
                                given_high_pass: float | None, n_drift: int) -> list[dict[str, Any]]:
    """What ``nbdiag design`` could not check on a saved design, and why."""
    out = [dict(item) for item in SAVED_DESIGN_SKIPS]
    if drift_model == "cosine" and given_high_pass is None and high_pass is not None:
        out.append({"checks": [codes.HIGHPASS_CUTS_DESIGN.code, codes.DRIFT_OVERLAP.code], "effect": "approximated",
                    "reason": f"high_pass not given: taken as {high_pass:.5g} Hz, the middle of the range that "
                              f"gives {n_drift} cosine columns (give --high-pass for the exact value)"})
    out.append({"checks": ["(all timing)"], "effect": "input", "reason": f"t_r from {t_r_source}"})
    return out


def skipped_checks_finding(skipped: list[dict[str, Any]]) -> Finding:
    """One ``info`` finding listing the checks that could not run (so a verdict says what it rests on)."""
    not_run = sorted({c for s in skipped if s["effect"] == "not run" for c in s["checks"]})
    approx = sorted({c for s in skipped if s["effect"] in ("approximated", "partly run") for c in s["checks"]})
    return codes.CHECKS_SKIPPED.finding(
        message=(f"{len(not_run)} checks could not run ({', '.join(not_run)}) and {len(approx)} are approximated "
                 f"({', '.join(approx)}): a saved design carries no events, confounds file or image. The status "
                 "rests on the checks that ran; audit the BIDS dataset (nbdiag BIDS_DIR OUT participant) or the "
                 "nilearn objects (nbdiag.audit_models) for all of them."),
        evidence={"skipped": skipped, "not_run": not_run, "approximated": approx},
        score=0.0)


def prepare_given_run(given, settings: Settings) -> PreparedRun:
    """Events, confounds, design and context of a run given as nilearn objects.

    The design is built from the events and confounds exactly as given (nilearn's own
    rules), so it equals ``model.design_matrices_`` after ``fit``.

    Raises
    ------
    InputError
        For bad input (run, column, row, expected, found).
    """
    run = given.run
    if run.error is not None:
        raise run.error
    n_scans = int(run.n_scans.value)
    t_r, slice_time_ref = float(run.t_r.value), float(run.slice_time_ref.value)
    table = given.events
    rt_free = table if not given.rt_regressor else table[table["trial_type"].astype(str) != given.rt_regressor]
    checked = transform_events(rt_free.reset_index(drop=True), replace(settings.events, transforms=()), path=None)
    # rows nbdiag would set aside (trial_type n/a) are modelled by nilearn: not "unmodelled" here
    kept = [f for f in checked.findings if f.title != "Events without a trial_type"]
    events = EventsResult(events=table, unmodeled=checked.unmodeled.iloc[0:0], rt_events=checked.rt_events,
                          findings=tuple(kept))
    findings = list(events.findings)
    conf_table = given.confounds
    if conf_table is not None and len(conf_table) != n_scans:
        raise InputError("confounds row count differs from the number of volumes (nilearn raises 'Rows in "
                         "confounds does not match n_scans')", file="confounds table", code=codes.N_SCANS_MISMATCH.code,
                         expected=f"{n_scans} rows ({run.n_scans.source})", found=f"{len(conf_table)} rows")
    if conf_table is not None and len(conf_table.columns):
        values = conf_table.to_numpy(dtype=float)
        bad = ~np.isfinite(values)
        if bad.any():
            row, col = (int(x[0]) for x in np.nonzero(bad))
            raise InputError("confounds contain NaN/inf: the design would contain NaN", file="confounds table",
                             column=str(conf_table.columns[col]), row=row, code=codes.CONFOUNDS_INVALID.code,
                             expected="a finite number", found=str(values[row, col]))
    mask = given.sample_mask
    scrub: tuple[int, ...] = ()
    if mask is not None:
        kept_scans = set(int(i) for i in mask)
        scrub = tuple(i for i in range(n_scans) if i not in kept_scans and i not in given.nonsteady_volumes)
    conf = ConfoundsResult(confounds=conf_table, sample_mask=mask, raw_columns=tuple(given.raw_confound_columns),
                           nonsteady_volumes=tuple(given.nonsteady_volumes), scrub_volumes=scrub,
                           signals=dict(getattr(given, "raw_signals", {}) or {}),
                           motion=getattr(given, "raw_motion", None))
    built = build_design(table, conf_table, n_scans, t_r, slice_time_ref, settings.model, sample_mask=mask)
    times = frame_times(n_scans, t_r, slice_time_ref)
    findings += events_outside_run(table, times, t_r, settings.model.min_onset, None)
    notes = []
    if given.fitted_design is not None:
        fitted = given.fitted_design
        same = (list(fitted.columns) == list(built.design.columns) and fitted.shape == built.design.shape
                and np.allclose(fitted.to_numpy(dtype=float), built.design.to_numpy(dtype=float), atol=1e-8))
        notes.append(
            "the fitted model's design_matrices_ equal the design rebuilt from the given inputs" if same else
            "the fitted model's design_matrices_ differ from the design rebuilt from the given inputs "
            "(the model was fitted with other events/confounds/settings): the audit is of the given inputs")
    context = make_context(settings, events, conf, built, t_r, slice_time_ref, n_scans)
    return PreparedRun(events, conf, built, context, findings, notes)


def audit_given_run(given, settings: Settings, provenance: Provenance | None = None) -> RunAudit:
    """Audit one run given as nilearn objects (``nbdiag.audit_model`` / ``audit_models``).

    ``given`` is a :class:`nbdiag.inputs.nilearn_objects.GivenRun`: the events and
    confounds exactly as they will be passed to ``FirstLevelModel.fit``, the run's
    resolved t_r / slice_time_ref / n_scans, and the non-steady-state volumes fMRIPrep
    flagged (read from its confounds file when the image sits in an fMRIPrep folder).
    The record has the same fields as :func:`audit_run`'s; ``settings.model_object``
    holds the attributes read from the model. Never raises for bad input.
    """
    run = given.run
    record = _base_record(run, settings)
    record["settings"]["model"]["confounds_strategy"] = (
        "given as tables" if given.confounds is not None else None)
    record["settings"]["model_object"] = dict(given.model_info)
    record["run"]["files"]["events"] = "events table given to nbdiag"
    record["run"]["files"]["confounds_given"] = None if given.confounds is None else "confounds table given to nbdiag"
    record["notes"].extend(given.notes)
    draft = _audit_prepared(run, settings, record, lambda: prepare_given_run(given, settings))
    draft.parts = relative_to_dataset(draft.parts, run.root)  # no absolute paths, as audit_run
    return build_record(draft, provenance=provenance)
