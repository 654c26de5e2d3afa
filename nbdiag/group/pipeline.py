"""Group level: collect run records, write group tables, QC sign-off.

``run_group(output_dir, fail_on)`` is what ``nbdiag BIDS_DIR OUTPUT_DIR group`` calls:
it reads every ``*_nbdiag.json`` under ``OUTPUT_DIR/sub-*``, writes
``group/nbdiag_runs.tsv``, ``group/signoff.tsv``, ``group/include.tsv`` and
``group.html``, and returns the exit code (0, or 3 when a run fails sign-off).
No statistics are computed here: every number comes from the records.

The records are JSON only at the boundary: :func:`collect_records` returns each file's content
as read, :func:`check_records` reads each with :meth:`RunRecord.from_json
<nbdiag.record.model.RunRecord.from_json>` once (one that does not fit the type is refused,
naming the field), and the tables and the sign-off read the typed :class:`StoredRecord`.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence, Union

import pandas as pd

from nbdiag.core.errors import EXIT_OK, EXIT_RUN_ERRORS, EXIT_SIGNOFF, EXIT_USAGE
from nbdiag.core.findings import SEVERITIES, STATUSES, severity_rank, status_rank
from nbdiag.core.jsonio import finite_number as _num
from nbdiag.outputs.files import atomic_write_text
from nbdiag.record.model import ABSENT, RecordFormatError, RunRecord

__all__ = [
    "FAIL_ON_CHOICES",
    "StoredRecord",
    "collect_records",
    "read_stored",
    "runs_table",
    "signoff_table",
    "include_table",
    "write_group_tables",
    "select_variants",
    "run_group",
]

#: Allowed values of ``fail_on``.
FAIL_ON_CHOICES = ("warn", "fail")
#: columns of ``group/nbdiag_missing.tsv``
MISSING_COLUMNS = ["kind", "subject", "session", "run", "variant", "prefix", "record", "reason"]


@dataclass(frozen=True)
class StoredRecord:
    """A run record of OUTPUT_DIR: the typed record and its ``*_nbdiag.json`` (relative to OUTPUT_DIR).

    ``path`` is empty for a record that was not read from a folder (the Python API's).
    """

    record: RunRecord
    path: str = ""


#: what the group functions take: stored records, typed records, or records as JSON (read once here)
AnyRecord = Union[StoredRecord, RunRecord, Mapping[str, Any]]


def read_stored(rec: AnyRecord) -> StoredRecord:
    """``rec`` as a :class:`StoredRecord`: JSON (a ``*_nbdiag.json``'s content, with the ``_path``
    :func:`collect_records` adds) is read once with ``RunRecord.from_json``.

    Raises
    ------
    nbdiag.record.model.RecordFormatError
        JSON that does not fit the record's type (the message names the field).
    """
    if isinstance(rec, StoredRecord):
        return rec
    if isinstance(rec, RunRecord):
        return StoredRecord(rec)
    path = rec.get("_path", "")  # collect_records' marks (_path, _unreadable) are not the record's
    return StoredRecord(RunRecord.from_json({k: v for k, v in rec.items() if not k.startswith("_")}), str(path))


def _check_fail_on(fail_on: str) -> str:
    if fail_on not in FAIL_ON_CHOICES:
        raise ValueError(f"fail_on must be one of {FAIL_ON_CHOICES}; got {fail_on!r}")
    return fail_on


def _unreadable_record(path: Path, rel: str, exc: Exception) -> dict[str, Any]:
    """The stand-in of a file that is not a JSON object: an error record (a complete one, typed like
    any other) named from the file name; ``_unreadable`` says why, so :func:`check_records` refuses it."""
    from nbdiag._version import __version__

    name = path.name[: -len("_nbdiag.json")]
    ents = dict(p.split("-", 1) for p in name.split("_") if "-" in p)
    variant = ents.get("desc", "unknown")
    return {
        "nbdiag_version": __version__, "nilearn_version": "unknown",
        "run": {"subject": ents.get("sub", ""), "session": ents.get("ses"), "task": ents.get("task"),
                "run": ents.get("run"), "entities": {k: v for k, v in ents.items() if k != "desc"},
                "prefix": "_".join(p for p in name.split("_") if not p.startswith("desc-")), "files": {}},
        "variant": variant,
        "settings": {"t_r": None, "slice_time_ref": None, "n_scans": None, "variant": variant, "measure": "",
                     "model": {}, "events": {}, "contrasts": None, "thresholds": {}, "limits": {}},
        "notes": [],
        "findings": [],
        "status": "error",
        "error": {"code": None, "message": f"could not read the record: {exc}", "file": rel,
                  "expected": "a JSON object following docs/record.md", "found": type(exc).__name__},
        "_unreadable": f"cannot be read as a JSON object ({type(exc).__name__})",
    }


def collect_records(output_dir: str | Path) -> list[dict[str, Any]]:
    """Read every ``*_nbdiag.json`` under ``output_dir/sub-*`` (the JSON, as written).

    A file that cannot be read becomes an error record (``status: "error"``) naming the
    file, so that it shows up in the group table and fails sign-off. :func:`check_records`
    reads each as the typed record.

    Parameters
    ----------
    output_dir : path
        The nbdiag OUTPUT_DIR.

    Returns
    -------
    list of dict
        Records sorted by run prefix and variant; each has ``_path`` set to the JSON
        file, relative to ``output_dir``.
    """
    root = Path(output_dir)
    records: list[dict[str, Any]] = []
    for path in sorted(root.glob("sub-*/**/*_nbdiag.json")):
        if not path.is_file():
            continue
        rel = path.relative_to(root).as_posix()
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(rec, dict):
                raise ValueError(f"expected a JSON object, found {type(rec).__name__}")
        except (OSError, ValueError) as exc:
            rec = _unreadable_record(path, rel, exc)
        rec["_path"] = rel
        records.append(rec)
    records.sort(key=lambda r: (str(_json_ident(r)["prefix"] or ""), str(r.get("variant"))))
    return records


def _json_ident(rec: Mapping[str, Any]) -> dict[str, Any]:
    """Where a record read as JSON comes from, read defensively: it may not fit the record's type
    (the one place the group level reads a record's JSON; :func:`check_records` refuses such records)."""
    run = rec.get("run")
    run = run if isinstance(run, Mapping) else {}
    return {"record": rec.get("_path", ""), "subject": run.get("subject"), "variant": rec.get("variant"),
            "prefix": run.get("prefix"), "session": run.get("session"), "run": run.get("run")}


def _status(rec: RunRecord) -> str:
    return rec.status if rec.status in STATUSES else "error"


def _ident(rec: RunRecord) -> dict[str, Any]:
    ent, run = rec.run.entities, rec.run
    return {
        "subject": run.subject or ent.get("sub"),
        "session": run.session or ent.get("ses"),
        "task": run.task or ent.get("task"),
        "acq": ent.get("acq"),
        "run": run.run or ent.get("run"),
        "variant": rec.variant,
    }


def _design_numbers(rec: RunRecord) -> dict[str, Any]:
    """Scans, TR, rank, columns, condition number, largest task VIF, baseline fraction, residual dof."""
    design, diag, settings = rec.design, rec.diagnostics, rec.settings
    coll = diag.collinearity if diag is not ABSENT else ABSENT
    base = diag.baseline if diag is not ABSENT else ABSENT
    confounds = diag.confounds if diag is not ABSENT else ABSENT
    tasks = {c.name for c in design.columns if c.role == "task"} if design is not ABSENT else set()
    vifs = [v for v in (_num(v) for k, v in (coll.vif if coll is not ABSENT else {}).items() if k in tasks)
            if v is not None]
    n_scans = design.n_scans if design is not ABSENT else None
    return {
        "n_scans": n_scans or (settings.n_scans.value if settings.n_scans is not None else None),
        "t_r": settings.t_r.value if settings.t_r is not None else None,
        "rank": design.rank if design is not ABSENT else None,
        "n_columns": design.n_columns if design is not ABSENT else None,
        "condition_number": _num(coll.condition_number) if coll is not ABSENT else None,
        "max_task_vif": max(vifs) if vifs else None,
        "baseline_fraction": _num(base.fraction) if base is not ABSENT else None,
        "dof": confounds.dof if confounds is not ABSENT and confounds.dof is not ABSENT else None,
    }


def _runs_row(stored: StoredRecord) -> dict[str, Any]:
    """One row of ``nbdiag_runs.tsv``."""
    rec = stored.record
    row: dict[str, Any] = {**_ident(rec), "prefix": rec.run.prefix, "status": _status(rec)}
    row.update(_design_numbers(rec))
    for sev in SEVERITIES:
        row[f"n_{sev}"] = sum(1 for f in rec.findings if f.severity == sev)
    for name, c in (rec.contrasts if rec.contrasts is not ABSENT else {}).items():
        row[f"{name}:estimable"] = c.estimable
        row[f"{name}:variance"] = _num(c.variance) if c.variance is not ABSENT else None
        row[f"{name}:cvif"] = _num(c.cvif) if c.cvif is not ABSENT else None
        codes = c.findings or [f.code for f in rec.findings if f.contrast == name]
        row[f"{name}:top_finding"] = codes[0] if codes else ""
    row["error"] = (_error_message(rec) or "") if row["status"] == "error" else ""
    row["record"] = stored.path
    return row


def _error_message(rec: RunRecord) -> str | None:
    return rec.error.message if rec.error is not ABSENT and rec.error is not None else None


def runs_table(records: Iterable[AnyRecord]) -> pd.DataFrame:
    """One row per run × variant with key metrics and status (``nbdiag_runs.tsv``)."""
    df = pd.DataFrame([_runs_row(read_stored(r)) for r in records])
    for col in ("n_scans", "rank", "n_columns", "dof"):
        if col in df:
            df[col] = pd.to_numeric(df[col], errors="coerce").round().astype("Int64")
    return df


def _codes_at_or_above(rec: RunRecord, severity: str) -> list[str]:
    """Distinct ``code (contrast)`` of the findings at or above ``severity``, ranked order."""
    limit = severity_rank(severity)
    reasons: list[str] = []
    for f in rec.findings:
        try:
            rank = severity_rank(f.severity)
        except ValueError:
            continue
        if rank >= limit:
            where = f" ({f.contrast})" if f.contrast else ""
            reason = f"{f.code}{where}"
            if reason not in reasons:
                reasons.append(reason)
    return reasons


def _fails_signoff(rec: RunRecord, fail_on: str) -> tuple[bool, list[str]]:
    status = _status(rec)
    if status == "error":
        msg = _error_message(rec) or "the run could not be audited"
        return True, [f"error: {msg}"]
    reasons = _codes_at_or_above(rec, fail_on)
    failed = status_rank(status) >= status_rank(fail_on)
    if failed and not reasons:
        reasons = [f"status {status}"]
    return failed, reasons


SIGNOFF_COLUMNS = ["subject", "session", "run", "variant", "status", "reasons", "warnings", "signoff", "task",
                   "acq", "prefix", "fail_on", "reviewer", "rating", "comment", "final",
                   "rating_source", "rating_original", "rating_mapping"]


def signoff_table(records: Iterable[AnyRecord], fail_on: str = "fail",
                  ratings: Mapping[tuple[str, str], Mapping[str, str]] | None = None) -> pd.DataFrame:
    """Sign-off per run × variant (``signoff.tsv``).

    A run fails sign-off when its status is at or above ``fail_on`` (``error`` always
    fails). ``reasons`` lists the finding codes (with their contrast) at or above
    ``fail_on``, separated by ``; ``; ``warnings`` lists the ``warn`` findings of a
    run that passes, so a reviewer sees what to look at. ``reviewer``, ``rating`` and
    ``comment`` come from ``ratings`` (:func:`nbdiag.group.ratings.load_ratings`), with
    ``rating_source`` / ``rating_original`` / ``rating_mapping`` (MRIQC and AFNI ratings are
    mapped, :mod:`nbdiag.group.ratings`); ``final``
    is the reviewer's rating where there is one (``include`` -> pass, ``exclude`` ->
    fail), else ``signoff``.
    """
    from nbdiag.group.ratings import final_signoff

    _check_fail_on(fail_on)
    ratings = ratings or {}
    rows = []
    for rec in (read_stored(r).record for r in records):
        ident = _ident(rec)
        failed, reasons = _fails_signoff(rec, fail_on)
        prefix = rec.run.prefix
        rated = ratings.get((str(prefix), str(ident["variant"]))) or {}
        signoff = "fail" if failed else "pass"
        rows.append({
            "subject": ident["subject"], "session": ident["session"], "run": ident["run"],
            "variant": ident["variant"], "status": _status(rec), "reasons": "; ".join(reasons),
            "warnings": "" if failed or _status(rec) == "error" else "; ".join(_codes_at_or_above(rec, "warn")),
            "signoff": signoff, "task": ident["task"], "acq": ident["acq"],
            "prefix": prefix, "fail_on": fail_on,
            "reviewer": rated.get("reviewer", ""), "rating": rated.get("rating", ""),
            "comment": rated.get("comment", ""), "final": final_signoff(signoff, rated.get("rating")),
            # where the rating came from (nbdiag, mriqc, afni_apqc), as given, and how it was mapped
            "rating_source": rated.get("source", "nbdiag" if rated else ""),
            "rating_original": rated.get("original", rated.get("rating", "")),
            "rating_mapping": rated.get("mapping", "as rated" if rated else ""),
        })
    return pd.DataFrame(rows, columns=SIGNOFF_COLUMNS)


def include_table(records: Iterable[AnyRecord], fail_on: str = "fail",
                  ratings: Mapping[tuple[str, str], Mapping[str, str]] | None = None) -> pd.DataFrame:
    """Runs whose final sign-off passes, with their input files (``include.tsv``).

    One row per run × variant that passes (a reviewer's ``include`` / ``exclude`` rating
    overrides the automatic sign-off); filter on ``variant`` to build a second level
    with one model. Input files are named as in the records (``bids::`` URIs).
    """
    from nbdiag.group.ratings import final_signoff

    _check_fail_on(fail_on)
    ratings = ratings or {}
    rows = []
    for stored in map(read_stored, records):
        rec = stored.record
        failed, _ = _fails_signoff(rec, fail_on)
        rated = ratings.get((str(rec.run.prefix), str(rec.variant))) or {}
        if final_signoff("fail" if failed else "pass", rated.get("rating")) == "fail":
            continue
        files = rec.run.files
        design_tsv = rec.design.tsv if rec.design is not ABSENT and rec.design.tsv is not ABSENT else ""
        if design_tsv and stored.path and "/" not in design_tsv:
            design_tsv = str(Path(stored.path).parent / design_tsv)
        rows.append({**_ident(rec), "prefix": rec.run.prefix, "status": _status(rec),
                     "bold": files.get("bold", ""), "events": files.get("events", ""),
                     "confounds": files.get("confounds", ""), "design_tsv": design_tsv,
                     "record": stored.path})
    return pd.DataFrame(rows, columns=["subject", "session", "task", "acq", "run", "variant", "prefix", "status",
                                       "bold", "events", "confounds", "design_tsv", "record"])


def _write_tsv(df: pd.DataFrame, path: Path) -> Path:
    return atomic_write_text(Path(path), df.to_csv(sep="\t", index=False, na_rep="n/a"))


def write_group_tables(records: Sequence[AnyRecord], output_dir: str | Path,
                       fail_on: str = "fail", variants: Iterable[str] | None = None,
                       ratings: Mapping[tuple[str, str], Mapping[str, str]] | None = None) -> dict[str, Path]:
    """Write ``group/nbdiag_runs.tsv``, ``group/signoff.tsv`` and ``group/include.tsv``.

    Parameters
    ----------
    records : list of StoredRecord (or RunRecord, or records as JSON)
        Run records (``check_records(...)["trusted"]``; JSON is read once with ``RunRecord.from_json``).
    output_dir : path
        The nbdiag OUTPUT_DIR; files go to ``output_dir/group/``.
    fail_on : {"fail", "warn"}
        Lowest run status that fails sign-off (``error`` always fails).
    variants : iterable of str, optional
        Variants that decide the sign-off: ``signoff.tsv`` and ``include.tsv`` hold
        their run × variants only (``nbdiag_runs.tsv`` keeps every variant).
    ratings : mapping, optional
        Reviewer ratings (:func:`nbdiag.group.ratings.load_ratings`).

    Returns
    -------
    dict
        ``{"runs": path, "signoff": path, "include": path, "attribution": path, "outliers": path}``
        (``nbdiag_attribution.tsv``: :mod:`nbdiag.group.attribution`; ``nbdiag_outliers.tsv``:
        :mod:`nbdiag.group.outliers`).
    """
    _check_fail_on(fail_on)
    group = Path(output_dir) / "group"
    from nbdiag.group.attribution import attribution_table
    from nbdiag.group.outliers import outlier_table

    stored = [read_stored(r) for r in records]
    chosen = select_variants(stored, variants)
    typed = [s.record for s in stored]
    return {
        "outliers": _write_tsv(outlier_table(typed), group / "nbdiag_outliers.tsv"),
        "runs": _write_tsv(runs_table(stored), group / "nbdiag_runs.tsv"),
        "signoff": _write_tsv(signoff_table(chosen, fail_on, ratings), group / "signoff.tsv"),
        "include": _write_tsv(include_table(chosen, fail_on, ratings), group / "include.tsv"),
        "attribution": _write_tsv(attribution_table(typed), group / "nbdiag_attribution.tsv"),
    }


def subjects_without_output(bids_dir: str | Path, records: Iterable[Mapping[str, Any]]) -> list[str]:
    """Subjects of BIDS_DIR (``sub-*`` folders) with no record in OUTPUT_DIR, sorted.

    After sharded participant runs (``--participant-label``), these are the shards
    that did not run or did not finish any run. ``records``: :func:`collect_records`'s (any
    record naming its subject counts, whether or not it fits the record's type).
    """
    have = {str(_json_ident(r)["subject"]) for r in records}
    present = sorted(p.name[4:] for p in Path(bids_dir).glob("sub-*") if p.is_dir())
    return [s for s in present if s not in have]


def record_problem(rec: Mapping[str, Any]) -> tuple[StoredRecord | None, str | None]:
    """A record read as JSON (:func:`collect_records`) as the typed record, or what is wrong with it.

    Returns ``(StoredRecord, None)``, or ``(None, reason)`` for a file that is not a JSON object or
    a record that does not fit :class:`~nbdiag.record.model.RunRecord` (the reason names the field:
    ``record.findings[0].severity: missing (FindingRecord requires 'severity')``).
    """
    if rec.get("_unreadable"):
        return None, str(rec["_unreadable"])
    try:
        stored = read_stored(rec)
    except RecordFormatError as exc:
        return None, str(exc)
    if stored.record.status not in STATUSES:
        return None, f"record.status: {stored.record.status!r} is none of {', '.join(STATUSES)}"
    return stored, None


def check_records(records: list[dict[str, Any]], output_dir: str | Path,
                  bids_dir: str | Path | None = None) -> dict[str, Any]:
    """Sort records into trusted, refused and stale against the participant manifests.

    Each record is read with ``RunRecord.from_json`` (:func:`record_problem`); one that does not
    fit the type (its provenance included) is refused as malformed, naming the field.

    Parameters
    ----------
    records : list of dict
        ``collect_records(output_dir)``.
    output_dir : path
    bids_dir : path, optional
        BIDS_DIR, to check each record's input fingerprints (None: not checked).

    Returns
    -------
    dict
        ``trusted`` (the :class:`StoredRecord` to sign off), ``refused`` and ``stale`` (lists of
        ``{"record", "subject", "variant", "prefix", "reason"}``; a record refused for its inputs
        also has ``inputs``, the list of :func:`nbdiag.outputs.manifest.input_changes`, and ``not_found``,
        True when every one of them is an input not found: nothing to compare with), ``missing`` (expected
        run × variants without a record), ``skipped`` (``{subject: reason}``),
        ``problems`` (manifest problems) and ``verified`` (manifests were found).
    """
    from nbdiag.outputs.manifest import expectations

    root = Path(output_dir)
    exp = expectations(root)
    trusted, refused, stale = [], [], []
    seen: set[tuple[str, str]] = set()
    for data in records:
        ident = _json_ident(data)
        stored, problem = record_problem(data)
        if stored is None:
            refused.append({**ident, "reason": f"partial or malformed record: {problem}"})
            seen.add((str(ident["prefix"]), str(ident["variant"])))
            continue
        rec = stored.record
        key = (rec.run.prefix, rec.variant)
        if not exp.n_manifests:
            trusted.append(stored)
            continue
        expected = exp.expected.get(key)
        if expected is None:
            stale.append({**ident, "reason": "not in the latest participant run for this subject "
                                             "(fewer variants, a deleted subject or another selection)"})
            continue
        seen.add(key)
        refusal = _provenance_refusal(rec, expected, exp.latest_hash.get(rec.variant), bids_dir)
        if refusal is not None:
            refused.append({**ident, **refusal})
            continue
        trusted.append(stored)
    missing = [{"record": v.get("record", ""), "subject": v.get("subject"), "variant": v.get("variant"),
                "prefix": v.get("prefix"), "session": v.get("session"), "run": v.get("run"),
                "reason": f"expected by {v.get('manifest')}, no record (participant level killed, still "
                          "running or failed before writing it)"}
               for k, v in sorted(exp.expected.items()) if k not in seen]
    return {"trusted": trusted, "refused": refused, "stale": stale, "missing": missing,
            "skipped": dict(exp.skipped), "problems": list(exp.problems), "verified": bool(exp.n_manifests)}


def _provenance_refusal(rec: RunRecord, expected: Mapping[str, Any], latest: str | None,
                        bids_dir: str | Path | None) -> dict[str, Any] | None:
    """Why a record's provenance refuses it (``reason``, and for inputs ``inputs``/``not_found``), or None.

    A missing provenance, another settings hash than the subject's latest participant run (or than a
    later run of the same variant), and inputs whose content changed or cannot be found are refused.
    (``expected`` is a manifest entry: the manifest is JSON read by :mod:`nbdiag.outputs.manifest`.)
    """
    from nbdiag.outputs.manifest import NOT_FOUND_KINDS, input_changes

    prov = rec.provenance
    if prov is ABSENT:
        return {"reason": "record has no provenance (settings hash, input fingerprints): "
                          "written by an older nbdiag or not by the participant level"}
    if prov.settings_hash != expected.get("settings_hash"):
        return {"reason": f"from another settings hash ({prov.settings_hash}; the "
                          f"latest participant run used {expected.get('settings_hash')})"}
    if latest is not None and latest != expected.get("settings_hash"):
        return {"reason": f"from another settings hash ({expected.get('settings_hash')}): "
                          f"a later participant run audited variant '{rec.variant}' with "
                          f"other settings ({latest}); rerun this subject with them"}
    inputs = {role: fp.to_json() for role, fp in prov.inputs.items()}
    changes = input_changes(inputs, Path(bids_dir) if bids_dir is not None else None)
    if not changes:
        return None
    not_found = all(c["kind"] in NOT_FOUND_KINDS for c in changes)
    what = "inputs not found under BIDS_DIR" if not_found else "inputs changed since the audit"
    return {"reason": f"{what}: " + "; ".join(c["message"] for c in changes), "inputs": changes, "not_found": not_found}


def missing_table(check: Mapping[str, Any]) -> pd.DataFrame:
    """``group/nbdiag_missing.tsv``: runs not signed off and why (missing, refused, stale, skipped)."""
    rows = []
    for kind in ("missing", "refused", "stale"):
        for item in check[kind]:
            rows.append({"kind": kind, **{c: item.get(c) for c in MISSING_COLUMNS if c not in ("kind",)}})
    for subject, reason in sorted(check["skipped"].items()):
        rows.append({"kind": "skipped_subject", "subject": subject, "reason": reason})
    return pd.DataFrame(rows, columns=MISSING_COLUMNS)


def _extra_rows(check: Mapping[str, Any], fail_on: str) -> tuple[list[dict], list[dict]]:
    """Rows of the runs and sign-off tables for expected-but-missing runs and skipped subjects."""
    runs, signoff = [], []
    for item in check["missing"] + check["refused"]:
        status = "missing" if item in check["missing"] else "refused"
        runs.append({"subject": item.get("subject"), "session": item.get("session"), "run": item.get("run"),
                     "variant": item.get("variant"), "prefix": item.get("prefix"), "status": status,
                     "error": item["reason"], "record": item.get("record", "")})
        signoff.append({"subject": item.get("subject"), "session": item.get("session"), "run": item.get("run"),
                        "variant": item.get("variant"), "status": status, "reasons": item["reason"],
                        "warnings": "", "signoff": "fail", "prefix": item.get("prefix"), "fail_on": fail_on,
                        "final": "fail"})
    for subject, reason in sorted(check["skipped"].items()):
        runs.append({"subject": subject, "status": "skipped", "error": reason})
        signoff.append({"subject": subject, "status": "skipped", "reasons": reason, "warnings": "",
                        "signoff": "excluded", "fail_on": fail_on, "final": "excluded"})
    return runs, signoff


#: outputs of a group run that sign off records; moved to ``group/stale/`` once those are not current
GROUP_OUTPUTS = ("group/signoff.tsv", "group/include.tsv", "group/nbdiag_runs.tsv",
                 "group/nbdiag_attribution.tsv", "group/nbdiag_outliers.tsv", "group.html")
STALE_DIR = "stale"
STALE_NOTE = "README.txt"


def move_stale_outputs(root: Path, reasons: Iterable[Mapping[str, Any]]) -> list[str]:
    """Move an earlier group run's outputs to ``group/stale/``, with a note saying why.

    Nothing is deleted: the files keep their content under ``group/stale/`` (replacing an older
    stale copy), where no tool reading ``group/signoff.tsv`` or ``group/include.tsv`` finds them,
    and ``group/stale/README.txt`` lists the records that made them stale.

    Parameters
    ----------
    root : path
        OUTPUT_DIR.
    reasons : iterable of mapping
        The refused and missing items of :func:`check_records` (``record``, ``reason``).

    Returns
    -------
    list of str
        The files moved, relative to OUTPUT_DIR (empty: nothing to move, the note is not written).
    """
    import os

    present = [rel for rel in GROUP_OUTPUTS if (root / rel).is_file()]
    if not present:
        return []
    stale = root / "group" / STALE_DIR
    stale.mkdir(parents=True, exist_ok=True)
    lines = ["These files were written by an earlier `nbdiag ... group` run. A later group run found that",
             "the records they sign off are no longer current, so they were moved here: they are NOT a",
             "valid sign-off. Rerun the participant level for the runs below, then the group level.", "",
             "Moved: " + ", ".join(present), "", "Why:"]
    lines += [f"- {item.get('record', '')}: {item.get('reason', '')}" for item in reasons]
    atomic_write_text(stale / STALE_NOTE, "\n".join(lines) + "\n")
    for rel in present:
        os.replace(root / rel, stale / Path(rel).name)
    return present


def _say(text: str) -> None:
    print(text, file=sys.stderr)


def select_variants(records: Sequence[AnyRecord], variants: Iterable[str] | None) -> list[StoredRecord]:
    """Records of the variants that decide the sign-off (all when ``variants`` is empty).

    Raises
    ------
    ValueError
        A requested variant that no record has (named, with the variants found).
    """
    stored = [read_stored(r) for r in records]
    wanted = list(dict.fromkeys(str(v) for v in variants or []))
    if not wanted:
        return stored
    found = list(dict.fromkeys(s.record.variant for s in stored))
    missing = [v for v in wanted if v not in found]
    if missing:
        raise ValueError(f"--variant: no record of variant(s) {', '.join(map(repr, missing))} in OUTPUT_DIR; "
                         f"variants found: {', '.join(found) or 'none'}")
    return [s for s in stored if s.record.variant in wanted]


def _outlier_sections(records: list[RunRecord]) -> list[dict[str, Any]]:
    """The group page's outlier section (group/nbdiag_outliers.tsv by metric)."""
    from nbdiag.group.outliers import outlier_sections, outlier_table

    return outlier_sections(outlier_table(records))


def _report_problems(check: Mapping[str, Any], records: list[dict[str, Any]], root: Path,
                     bids_dir: str | Path | None) -> None:
    """Say on stderr what :func:`check_records` found: subjects without output, manifest problems,
    stale, refused and missing records."""
    if bids_dir is not None:
        absent = subjects_without_output(bids_dir, records)
        if absent:
            shown = ", ".join(f"sub-{s}" for s in absent[:50]) + (" ..." if len(absent) > 50 else "")
            _say(f"nbdiag group: {len(absent)} subject(s) of {bids_dir} have no output in {root} "
                 f"(shard not run or not finished?): {shown}")
    for problem in check["problems"]:
        _say(f"nbdiag group: {problem}")


def _say_refusals(check: Mapping[str, Any], allow_incomplete: bool) -> None:
    """Stale records left out, refused and missing records (inputs not found: said once, by the caller)."""
    if not check["verified"]:
        _say("nbdiag group: note: no participant manifest in OUTPUT_DIR/.nbdiag/manifests; completeness and "
             "input changes cannot be checked (records written by an older nbdiag?)")
    for item in check["stale"]:
        _say(f"nbdiag group: stale record left out: {item['record']}: {item['reason']}")
    for item in check["refused"]:
        if allow_incomplete or not item.get("not_found"):
            _say(f"nbdiag group: refused {item['record']}: {item['reason']}")
    for item in check["missing"]:
        _say(f"nbdiag group: missing {item['record']}: {item['reason']}")


def _refuse(check: Mapping[str, Any], n_records: int, root: Path, bids_dir: str | Path | None,
            allow_incomplete: bool) -> int | None:
    """The exit code when nothing is signed off (refused or missing records), else None.

    Inputs not found at all (a wrong BIDS_DIR, a copy not fetched): no ground to judge the earlier
    sign-off, so OUTPUT_DIR is left exactly as it was. Otherwise an earlier group run's outputs no
    longer match the records: they are moved to ``group/stale/`` with a note saying why
    (:func:`move_stale_outputs`), so no sign-off that looks valid survives.
    """
    if allow_incomplete:
        return None
    unfound = [item for item in check["refused"] if item.get("not_found")]
    if unfound:
        examples = list(dict.fromkeys(c["message"] for item in unfound for c in item["inputs"]))
        _say(f"nbdiag group: the inputs of {len(unfound)} of {n_records} record(s) are not found under "
             f"BIDS_DIR {bids_dir}: " + "; ".join(examples[:3]) + (" ..." if len(examples) > 3 else "")
             + ". Is BIDS_DIR the dataset the participant level audited, and is it fetched (`datalad get`)? "
             "Nothing in OUTPUT_DIR was changed.")
        return EXIT_USAGE
    bad = check["refused"] + check["missing"]
    if not bad:
        return None
    group = root / "group"
    moved = move_stale_outputs(root, bad)
    if moved:
        _say(f"nbdiag group: the earlier group outputs ({', '.join(moved)}) no longer match the records: "
             f"moved to {group / STALE_DIR} (see {STALE_NOTE} there)")
    _write_tsv(missing_table(check), group / "nbdiag_missing.tsv")
    _say(f"nbdiag group: refused: {len(check['refused'])} record(s) refused and {len(check['missing'])} "
         f"missing (listed above and in {group / 'nbdiag_missing.tsv'}); rerun the participant level for "
         "them, or pass --allow-incomplete to sign off the others")
    return EXIT_USAGE


def _write_outputs(check: Mapping[str, Any], root: Path, fail_on: str, variants: Iterable[str] | None,
                   rated: Mapping[tuple[str, str], Mapping[str, str]], chosen: list[StoredRecord],
                   report: bool) -> pd.DataFrame:
    """Write the group tables (with rows for missing, refused and skipped runs), ``nbdiag_missing.tsv``
    and ``group.html``; return the sign-off of the deciding variants."""
    trusted: list[StoredRecord] = check["trusted"]
    group = root / "group"
    write_group_tables(trusted, root, fail_on, variants=variants, ratings=rated)
    runs_df, signoff = runs_table(trusted), signoff_table(chosen, fail_on, rated)
    extra_runs, extra_signoff = _extra_rows(check, fail_on)
    if variants:
        wanted = {str(v) for v in variants}
        extra_signoff = [r for r in extra_signoff if r.get("variant") is None or str(r["variant"]) in wanted]
    if extra_runs:
        _write_tsv(pd.concat([runs_df, pd.DataFrame(extra_runs)], ignore_index=True), group / "nbdiag_runs.tsv")
        _write_tsv(pd.concat([signoff, pd.DataFrame(extra_signoff, columns=signoff.columns)], ignore_index=True),
                   group / "signoff.tsv")
    _write_tsv(missing_table(check), group / "nbdiag_missing.tsv")
    if report:
        from nbdiag.report.group_report import render_group_report

        from nbdiag.group.attribution import attribution_table
        from nbdiag.group.summary import summarise

        typed = [s.record for s in trusted]
        render_group_report(typed, runs_df, signoff_table(trusted, fail_on, rated), root / "group.html",
                            fail_on=fail_on, deciding=sorted({s.record.variant for s in chosen}),
                            incomplete=missing_table(check), attribution=attribution_table(typed),
                            summary=summarise(typed), reviewer_outliers=_outlier_sections(typed))
    return signoff


def _exit_code(signoff: pd.DataFrame, n_bad: int, fail_on: str, group: Path) -> int:
    """1 when runs could not be audited (or were missing/refused), 3 when a run fails sign-off, else 0."""
    n_error = int((signoff["status"] == "error").sum()) if len(signoff) else 0
    if n_error or n_bad:
        _say(f"nbdiag group: {n_error} run × variant(s) could not be audited"
             + (f", {n_bad} missing or refused (--allow-incomplete)" if n_bad else "")
             + f"; see {group / 'signoff.tsv'}")
        return EXIT_RUN_ERRORS
    failed = signoff[signoff["final"] == "fail"]
    if len(failed):
        which = f" of variant(s) {', '.join(dict.fromkeys(map(str, signoff['variant'])))}"
        _say(f"nbdiag group: {len(failed)} of {len(signoff)} run × variant(s){which} fail sign-off "
             f"(--fail-on {fail_on}); see {group / 'signoff.tsv'}")
        return EXIT_SIGNOFF
    return EXIT_OK


def run_group(output_dir: str | Path, fail_on: str = "fail", *, report: bool = True,
              variants: Iterable[str] | None = None, ratings: Iterable[str | Path] | None = None,
              bids_dir: str | Path | None = None, allow_incomplete: bool = False) -> int:
    """Group level of ``nbdiag``: tables, ``group.html`` and the exit code.

    Only records the participant level finished for the settings and inputs of its latest
    invocation (``OUTPUT_DIR/.nbdiag/manifests``) are signed off. Records that are partial or
    malformed, from another settings hash, or whose inputs changed (by content:
    :func:`nbdiag.outputs.manifest.input_changes`) are refused; expected run × variants without a
    record are missing; records the latest invocation did not ask for (fewer variants, a
    deleted subject) are stale and left out.

    When some record's inputs are not found under ``bids_dir`` at all (a wrong BIDS_DIR, a
    DataLad copy not fetched), nothing can be judged: OUTPUT_DIR is left unchanged (exit 2;
    with ``allow_incomplete`` those records are refused like the others). When records are
    refused or missing otherwise, the outputs of an earlier group run are moved to
    ``group/stale/`` with a ``README.txt`` saying why (:func:`move_stale_outputs`): nothing
    is deleted, and no sign-off that looks valid is left.

    Parameters
    ----------
    output_dir : path
        The nbdiag OUTPUT_DIR holding ``sub-*/**/*_nbdiag.json``.
    fail_on : {"fail", "warn"}
        Lowest run status that fails sign-off (``error`` always fails).
    report : bool
        Also write ``group.html``.
    variants : iterable of str, optional
        ``--variant``: only these variants decide the sign-off, ``include.tsv`` and the
        exit code (default: every variant). The group page still compares all variants.
    ratings : iterable of path, optional
        ``--ratings``: rating files saved by the subject reports; a reviewer's
        ``include`` / ``exclude`` overrides the automatic sign-off (``final``).
    bids_dir : path, optional
        BIDS_DIR, to check that each record's inputs are unchanged; its subjects with no
        record are listed on stderr (shards that did not run).
    allow_incomplete : bool
        Sign off the trusted records even when some are refused or missing (they are
        listed in ``group/nbdiag_missing.tsv``, the tables and the page).

    Returns
    -------
    int
        0 every expected run × variant audited and passing its final sign-off; 1 some runs
        could not be audited (error records, or missing/refused with ``allow_incomplete``);
        2 bad usage (no record in ``output_dir``, an unknown ``--variant``, a ratings file
        that cannot be used or rates an unknown run) or refused / missing records without
        ``allow_incomplete`` (nothing signed off); 3 sign-off failed (QC only). Problems are
        printed to stderr.
    """
    from nbdiag.group.ratings import RatingsError, load_ratings

    _check_fail_on(fail_on)
    root = Path(output_dir)
    if root.exists() and not root.is_dir():
        _say(f"nbdiag group: OUTPUT_DIR {root} is a file, expected the participant level's output folder")
        return EXIT_USAGE
    records = collect_records(root)          # JSON, as written
    check = check_records(records, root, bids_dir)   # each read once as the typed record
    _report_problems(check, records, root, bids_dir)
    if not records and not check["missing"]:
        _say(f"nbdiag group: no *_nbdiag.json found under {root}/sub-*; run the participant level first.")
        return EXIT_USAGE
    _say_refusals(check, allow_incomplete)
    refused = _refuse(check, len(records), root, bids_dir, allow_incomplete)
    if refused is not None:
        return refused
    trusted: list[StoredRecord] = check["trusted"]
    try:
        chosen = select_variants(trusted, variants)
        known = [(s.record.run.prefix, s.record.variant) for s in trusted]
        rated = load_ratings(ratings, known) if ratings else {}
    except (ValueError, RatingsError) as exc:
        _say(f"nbdiag group: error: {exc}")
        return EXIT_USAGE
    signoff = _write_outputs(check, root, fail_on, variants, rated, chosen, report)
    return _exit_code(signoff, len(check["refused"]) + len(check["missing"]), fail_on, root / "group")
