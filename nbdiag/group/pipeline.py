"""Group level: collect run records, write group tables, QC sign-off.

``run_group(output_dir, fail_on)`` is what ``nbdiag BIDS_DIR OUTPUT_DIR group`` calls:
it reads every ``*_nbdiag.json`` under ``OUTPUT_DIR/sub-*``, writes
``group/nbdiag_runs.tsv``, ``group/signoff.tsv``, ``group/include.tsv`` and
``group.html``, and returns the exit code (0, or 3 when a run fails sign-off).
No statistics are computed here: every number comes from the records.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd

from nbdiag.core.errors import EXIT_OK, EXIT_RUN_ERRORS, EXIT_SIGNOFF, EXIT_USAGE
from nbdiag.core.findings import SEVERITIES, STATUSES, severity_rank, status_rank
from nbdiag.outputs.files import atomic_write_text
from nbdiag.core.jsonio import finite_number as _num
from nbdiag.record.model import Provenance, RecordFormatError

__all__ = [
    "FAIL_ON_CHOICES",
    "collect_records",
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


def _get(d: Any, *keys: str, default: Any = None) -> Any:
    for k in keys:
        if isinstance(d, Mapping) and k in d:
            d = d[k]
        else:
            return default
    return default if d is None else d


def _check_fail_on(fail_on: str) -> str:
    if fail_on not in FAIL_ON_CHOICES:
        raise ValueError(f"fail_on must be one of {FAIL_ON_CHOICES}; got {fail_on!r}")
    return fail_on


def collect_records(output_dir: str | Path) -> list[dict[str, Any]]:
    """Read every ``*_nbdiag.json`` under ``output_dir/sub-*``.

    A file that cannot be read becomes an error record (``status: "error"``) naming the
    file, so that it shows up in the group table and fails sign-off.

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
            unreadable = f"cannot be read as a JSON object ({type(exc).__name__})"
            name = path.name[: -len("_nbdiag.json")]
            ents = dict(p.split("-", 1) for p in name.split("_") if "-" in p)
            rec = {
                "run": {"subject": ents.get("sub"), "session": ents.get("ses"), "task": ents.get("task"),
                        "run": ents.get("run"), "entities": {k: v for k, v in ents.items() if k != "desc"},
                        "prefix": "_".join(p for p in name.split("_") if not p.startswith("desc-"))},
                "variant": ents.get("desc", "unknown"),
                "status": "error",
                "error": {"message": f"could not read the record: {exc}", "file": rel,
                          "expected": "a JSON object following docs/record.md", "found": type(exc).__name__},
                "findings": [],
                "_unreadable": unreadable,
            }
        rec["_path"] = rel
        records.append(rec)
    records.sort(key=lambda r: (str(_get(r, "run", "prefix", default="")), str(r.get("variant"))))
    return records


def _status(rec: Mapping[str, Any]) -> str:
    s = rec.get("status")
    return s if s in STATUSES else "error"


def _ident(rec: Mapping[str, Any]) -> dict[str, Any]:
    ent = _get(rec, "run", "entities", default={}) or {}
    return {
        "subject": _get(rec, "run", "subject") or ent.get("sub"),
        "session": _get(rec, "run", "session") or ent.get("ses"),
        "task": _get(rec, "run", "task") or ent.get("task"),
        "acq": ent.get("acq"),
        "run": _get(rec, "run", "run") or ent.get("run"),
        "variant": rec.get("variant"),
    }


def runs_table(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per run × variant with key metrics and status (``nbdiag_runs.tsv``)."""
    rows = []
    for rec in records:
        row: dict[str, Any] = _ident(rec)
        row["prefix"] = _get(rec, "run", "prefix")
        row["status"] = _status(rec)
        row["n_scans"] = _get(rec, "design", "n_scans") or _get(rec, "settings", "n_scans", "value")
        row["t_r"] = _get(rec, "settings", "t_r", "value")
        row["rank"] = _get(rec, "design", "rank")
        row["n_columns"] = _get(rec, "design", "n_columns")
        row["condition_number"] = _num(_get(rec, "diagnostics", "collinearity", "condition_number"))
        tasks = {c.get("name") for c in _get(rec, "design", "columns", default=[]) or [] if c.get("role") == "task"}
        vifs = [_num(v) for k, v in (_get(rec, "diagnostics", "collinearity", "vif", default={}) or {}).items()
                if k in tasks]
        vifs = [v for v in vifs if v is not None]
        row["max_task_vif"] = max(vifs) if vifs else None
        row["baseline_fraction"] = _num(_get(rec, "diagnostics", "baseline", "fraction"))
        row["dof"] = _get(rec, "diagnostics", "confounds", "dof")
        findings = [f for f in rec.get("findings") or [] if isinstance(f, Mapping)]
        for sev in SEVERITIES:
            row[f"n_{sev}"] = sum(1 for f in findings if f.get("severity") == sev)
        for name, c in (_get(rec, "contrasts", default={}) or {}).items():
            row[f"{name}:estimable"] = c.get("estimable")
            row[f"{name}:variance"] = _num(c.get("variance"))
            row[f"{name}:cvif"] = _num(c.get("cvif"))
            codes = c.get("findings") or [f.get("code") for f in findings if f.get("contrast") == name]
            row[f"{name}:top_finding"] = codes[0] if codes else ""
        row["error"] = (_get(rec, "error", "message") or "") if row["status"] == "error" else ""
        row["record"] = rec.get("_path", "")
        rows.append(row)
    df = pd.DataFrame(rows)
    for col in ("n_scans", "rank", "n_columns", "dof"):
        if col in df:
            df[col] = pd.to_numeric(df[col], errors="coerce").round().astype("Int64")
    return df


def _codes_at_or_above(rec: Mapping[str, Any], severity: str) -> list[str]:
    """Distinct ``code (contrast)`` of the findings at or above ``severity``, ranked order."""
    limit = severity_rank(severity)
    reasons: list[str] = []
    for f in rec.get("findings") or []:
        if not isinstance(f, Mapping):
            continue
        try:
            rank = severity_rank(f.get("severity"))
        except ValueError:
            continue
        if rank >= limit:
            where = f" ({f['contrast']})" if f.get("contrast") else ""
            reason = f"{f.get('code')}{where}"
            if reason not in reasons:
                reasons.append(reason)
    return reasons


def _fails_signoff(rec: Mapping[str, Any], fail_on: str) -> tuple[bool, list[str]]:
    status = _status(rec)
    if status == "error":
        msg = _get(rec, "error", "message") or "the run could not be audited"
        return True, [f"error: {msg}"]
    reasons = _codes_at_or_above(rec, fail_on)
    failed = status_rank(status) >= status_rank(fail_on)
    if failed and not reasons:
        reasons = [f"status {status}"]
    return failed, reasons


SIGNOFF_COLUMNS = ["subject", "session", "run", "variant", "status", "reasons", "warnings", "signoff", "task",
                   "acq", "prefix", "fail_on", "reviewer", "rating", "comment", "final",
                   "rating_source", "rating_original", "rating_mapping"]


def signoff_table(records: Iterable[Mapping[str, Any]], fail_on: str = "fail",
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
    for rec in records:
        ident = _ident(rec)
        failed, reasons = _fails_signoff(rec, fail_on)
        prefix = _get(rec, "run", "prefix")
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


def include_table(records: Iterable[Mapping[str, Any]], fail_on: str = "fail",
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
    for rec in records:
        failed, _ = _fails_signoff(rec, fail_on)
        rated = ratings.get((str(_get(rec, "run", "prefix")), str(rec.get("variant")))) or {}
        if final_signoff("fail" if failed else "pass", rated.get("rating")) == "fail":
            continue
        files = _get(rec, "run", "files", default={}) or {}
        rec_path = rec.get("_path", "")
        design_tsv = _get(rec, "design", "tsv") or ""
        if design_tsv and rec_path and "/" not in design_tsv:
            design_tsv = str(Path(rec_path).parent / design_tsv)
        rows.append({**_ident(rec), "prefix": _get(rec, "run", "prefix"), "status": _status(rec),
                     "bold": files.get("bold", ""), "events": files.get("events", ""),
                     "confounds": files.get("confounds", ""), "design_tsv": design_tsv,
                     "record": rec_path})
    return pd.DataFrame(rows, columns=["subject", "session", "task", "acq", "run", "variant", "prefix", "status",
                                       "bold", "events", "confounds", "design_tsv", "record"])


def _write_tsv(df: pd.DataFrame, path: Path) -> Path:
    return atomic_write_text(Path(path), df.to_csv(sep="\t", index=False, na_rep="n/a"))


def write_group_tables(records: list[dict[str, Any]], output_dir: str | Path,
                       fail_on: str = "fail", variants: Iterable[str] | None = None,
                       ratings: Mapping[tuple[str, str], Mapping[str, str]] | None = None) -> dict[str, Path]:
    """Write ``group/nbdiag_runs.tsv``, ``group/signoff.tsv`` and ``group/include.tsv``.

    Parameters
    ----------
    records : list of dict
        Run records (``collect_records``).
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

    chosen = select_variants(records, variants)
    return {
        "outliers": _write_tsv(outlier_table(records), group / "nbdiag_outliers.tsv"),
        "runs": _write_tsv(runs_table(records), group / "nbdiag_runs.tsv"),
        "signoff": _write_tsv(signoff_table(chosen, fail_on, ratings), group / "signoff.tsv"),
        "include": _write_tsv(include_table(chosen, fail_on, ratings), group / "include.tsv"),
        "attribution": _write_tsv(attribution_table(records), group / "nbdiag_attribution.tsv"),
    }


def subjects_without_output(bids_dir: str | Path, records: Iterable[Mapping[str, Any]]) -> list[str]:
    """Subjects of BIDS_DIR (``sub-*`` folders) with no record in OUTPUT_DIR, sorted.

    After sharded participant runs (``--participant-label``), these are the shards
    that did not run or did not finish any run.
    """
    have = {str(_get(r, "run", "subject")) for r in records}
    present = sorted(p.name[4:] for p in Path(bids_dir).glob("sub-*") if p.is_dir())
    return [s for s in present if s not in have]
def record_shape_problem(rec: Mapping[str, Any]) -> str | None:
    """What is wrong with a record's shape (docs/record.md), or None.

    Checked before the group level uses a record: ``run`` an object with a string
    ``prefix``, ``variant`` a string, ``status`` one of pass/warn/fail/error,
    ``findings`` a list of objects, ``contrasts`` (if present) an object of objects.
    """
    if rec.get("_unreadable"):
        return str(rec["_unreadable"])
    run = rec.get("run")
    if not isinstance(run, Mapping) or not isinstance(run.get("prefix"), str):
        return "'run' must be an object with a string 'prefix'"
    if not isinstance(rec.get("variant"), str):
        return f"'variant' must be a string; found {type(rec.get('variant')).__name__}"
    if rec.get("status") not in STATUSES:
        return "'status' must be one of pass, warn, fail, error"
    findings = rec.get("findings")
    if not isinstance(findings, list) or not all(isinstance(f, Mapping) for f in findings):
        return "'findings' must be a list of objects"
    contrasts = rec.get("contrasts")
    if contrasts is not None and (not isinstance(contrasts, Mapping)
                                  or not all(isinstance(c, Mapping) for c in contrasts.values())):
        return "'contrasts' must be an object of objects"
    for key in ("design", "settings", "diagnostics"):
        if rec.get(key) is not None and not isinstance(rec.get(key), Mapping):
            return f"'{key}' must be an object"
    return None


def check_records(records: list[dict[str, Any]], output_dir: str | Path,
                  bids_dir: str | Path | None = None) -> dict[str, Any]:
    """Sort records into trusted, refused and stale against the participant manifests.

    Each record's ``provenance`` is read through its type (:class:`nbdiag.record.model.Provenance`);
    one that does not fit is refused as malformed, naming the field.

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
        ``trusted`` (records to sign off), ``refused`` and ``stale`` (lists of
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
    for rec in records:
        ident = {"record": rec.get("_path", ""), "subject": _get(rec, "run", "subject"),
                 "variant": rec.get("variant"), "prefix": _get(rec, "run", "prefix"),
                 "session": _get(rec, "run", "session"), "run": _get(rec, "run", "run")}
        problem = record_shape_problem(rec)
        if problem:
            refused.append({**ident, "reason": f"partial or malformed record: {problem}"})
            key = (str(ident["prefix"]), str(ident["variant"]))
            seen.add(key)
            continue
        key = (rec["run"]["prefix"], rec["variant"])
        if not exp.n_manifests:
            trusted.append(rec)
            continue
        expected = exp.expected.get(key)
        if expected is None:
            stale.append({**ident, "reason": "not in the latest participant run for this subject "
                                             "(fewer variants, a deleted subject or another selection)"})
            continue
        seen.add(key)
        refusal = _provenance_refusal(rec, expected, exp.latest_hash.get(rec["variant"]), bids_dir)
        if refusal is not None:
            refused.append({**ident, **refusal})
            continue
        trusted.append(rec)
    missing = [{"record": v.get("record", ""), "subject": v.get("subject"), "variant": v.get("variant"),
                "prefix": v.get("prefix"), "session": v.get("session"), "run": v.get("run"),
                "reason": f"expected by {v.get('manifest')}, no record (participant level killed, still "
                          "running or failed before writing it)"}
               for k, v in sorted(exp.expected.items()) if k not in seen]
    return {"trusted": trusted, "refused": refused, "stale": stale, "missing": missing,
            "skipped": dict(exp.skipped), "problems": list(exp.problems), "verified": bool(exp.n_manifests)}


def _provenance_refusal(rec: Mapping[str, Any], expected: Mapping[str, Any], latest: str | None,
                        bids_dir: str | Path | None) -> dict[str, Any] | None:
    """Why a record's provenance refuses it (``reason``, and for inputs ``inputs``/``not_found``), or None.

    The provenance is read through its type (:class:`nbdiag.record.model.Provenance`): a malformed
    one, a missing one, another settings hash than the subject's latest participant run (or than a
    later run of the same variant), and inputs whose content changed or cannot be found are refused.
    """
    from nbdiag.outputs.manifest import NOT_FOUND_KINDS, input_changes

    try:
        prov = Provenance.from_json(rec["provenance"], "provenance") if "provenance" in rec else None
    except RecordFormatError as exc:
        return {"reason": f"partial or malformed record: {exc}"}
    if prov is None:
        return {"reason": "record has no provenance (settings hash, input fingerprints): "
                          "written by an older nbdiag or not by the participant level"}
    if prov.settings_hash != expected.get("settings_hash"):
        return {"reason": f"from another settings hash ({prov.settings_hash}; the "
                          f"latest participant run used {expected.get('settings_hash')})"}
    if latest is not None and latest != expected.get("settings_hash"):
        return {"reason": f"from another settings hash ({expected.get('settings_hash')}): "
                          f"a later participant run audited variant '{rec['variant']}' with "
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


def select_variants(records: list[dict[str, Any]], variants: Iterable[str] | None) -> list[dict[str, Any]]:
    """Records of the variants that decide the sign-off (all when ``variants`` is empty).

    Raises
    ------
    ValueError
        A requested variant that no record has (named, with the variants found).
    """
    wanted = list(dict.fromkeys(str(v) for v in variants or []))
    if not wanted:
        return list(records)
    found = list(dict.fromkeys(str(r.get("variant")) for r in records))
    missing = [v for v in wanted if v not in found]
    if missing:
        raise ValueError(f"--variant: no record of variant(s) {', '.join(map(repr, missing))} in OUTPUT_DIR; "
                         f"variants found: {', '.join(found) or 'none'}")
    return [r for r in records if str(r.get("variant")) in wanted]


def _outlier_sections(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The group page's outlier section (group/nbdiag_outliers.tsv by metric)."""
    from nbdiag.group.outliers import outlier_sections, outlier_table

    return outlier_sections(outlier_table(records))


def run_group(output_dir: str | Path, fail_on: str = "fail", *, report: bool = True,  # noqa: C901
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
    records = collect_records(root)
    check = check_records(records, root, bids_dir)
    if bids_dir is not None:
        absent = subjects_without_output(bids_dir, records)
        if absent:
            shown = ", ".join(f"sub-{s}" for s in absent[:50]) + (" ..." if len(absent) > 50 else "")
            _say(f"nbdiag group: {len(absent)} subject(s) of {bids_dir} have no output in {root} "
                 f"(shard not run or not finished?): {shown}")
    group = root / "group"
    for problem in check["problems"]:
        _say(f"nbdiag group: {problem}")
    if not records and not check["missing"]:
        _say(f"nbdiag group: no *_nbdiag.json found under {root}/sub-*; run the participant level first.")
        return EXIT_USAGE
    if not check["verified"]:
        _say("nbdiag group: note: no participant manifest in OUTPUT_DIR/.nbdiag/manifests; completeness and "
             "input changes cannot be checked (records written by an older nbdiag?)")
    for item in check["stale"]:
        _say(f"nbdiag group: stale record left out: {item['record']}: {item['reason']}")
    bad = check["refused"] + check["missing"]
    unfound = [item for item in check["refused"] if item.get("not_found")]
    for item in check["refused"]:
        if allow_incomplete or not item.get("not_found"):
            _say(f"nbdiag group: refused {item['record']}: {item['reason']}")
    for item in check["missing"]:
        _say(f"nbdiag group: missing {item['record']}: {item['reason']}")
    if unfound and not allow_incomplete:
        # nothing to compare with (a wrong BIDS_DIR, a copy not fetched): no ground to judge the
        # earlier sign-off, so OUTPUT_DIR is left exactly as it was
        examples = list(dict.fromkeys(c["message"] for item in unfound for c in item["inputs"]))
        _say(f"nbdiag group: the inputs of {len(unfound)} of {len(records)} record(s) are not found under "
             f"BIDS_DIR {bids_dir}: " + "; ".join(examples[:3]) + (" ..." if len(examples) > 3 else "")
             + ". Is BIDS_DIR the dataset the participant level audited, and is it fetched (`datalad get`)? "
             "Nothing in OUTPUT_DIR was changed.")
        return EXIT_USAGE
    if bad and not allow_incomplete:
        # nothing signed off: an earlier group run's outputs no longer match the records; they are
        # moved to group/stale/ with a note saying why, so no sign-off that looks valid survives
        moved = move_stale_outputs(root, bad)
        if moved:
            _say(f"nbdiag group: the earlier group outputs ({', '.join(moved)}) no longer match the records: "
                 f"moved to {group / STALE_DIR} (see {STALE_NOTE} there)")
        _write_tsv(missing_table(check), group / "nbdiag_missing.tsv")
        _say(f"nbdiag group: refused: {len(check['refused'])} record(s) refused and {len(check['missing'])} "
             f"missing (listed above and in {group / 'nbdiag_missing.tsv'}); rerun the participant level for "
             "them, or pass --allow-incomplete to sign off the others")
        return EXIT_USAGE
    trusted = check["trusted"]
    try:
        chosen = select_variants(trusted, variants)
        known = [(str(_get(r, "run", "prefix")), str(r.get("variant"))) for r in trusted]
        rated = load_ratings(ratings, known) if ratings else {}
    except (ValueError, RatingsError) as exc:
        _say(f"nbdiag group: error: {exc}")
        return EXIT_USAGE
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

        render_group_report(trusted, runs_df, signoff_table(trusted, fail_on, rated), root / "group.html",
                            fail_on=fail_on, deciding=sorted({str(r.get("variant")) for r in chosen}),
                            incomplete=missing_table(check), attribution=attribution_table(trusted),
                            summary=summarise(trusted), reviewer_outliers=_outlier_sections(trusted))
    n_error = int((signoff["status"] == "error").sum()) if len(signoff) else 0
    if n_error or bad:
        _say(f"nbdiag group: {n_error} run × variant(s) could not be audited"
             + (f", {len(bad)} missing or refused (--allow-incomplete)" if bad else "")
             + f"; see {group / 'signoff.tsv'}")
        return EXIT_RUN_ERRORS
    failed = signoff[signoff["final"] == "fail"]
    if len(failed):
        which = f" of variant(s) {', '.join(dict.fromkeys(map(str, signoff['variant'])))}"
        _say(f"nbdiag group: {len(failed)} of {len(signoff)} run × variant(s){which} fail sign-off "
             f"(--fail-on {fail_on}); see {group / 'signoff.tsv'}")
        return EXIT_SIGNOFF
    return EXIT_OK
