"""Group level: collect run records, write group tables, QC sign-off (DESIGN §4, §5).

``run_group(output_dir, fail_on)`` is what ``nbdiag BIDS_DIR OUTPUT_DIR group`` calls:
it reads every ``*_nbdiag.json`` under ``OUTPUT_DIR/sub-*``, writes
``group/nbdiag_runs.tsv``, ``group/signoff.tsv``, ``group/include.tsv`` and
``group.html``, and returns the exit code (0, or 3 when a run fails sign-off).
No statistics are computed here: every number comes from the records.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd

from nbdiag.findings import SEVERITIES, severity_rank
from nbdiag.outputs import atomic_write_text

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
_STATUS_RANK = {"pass": 0, "warn": 1, "fail": 2, "error": 3}
EXIT_OK = 0
EXIT_USAGE = 2
EXIT_SIGNOFF_FAILED = 3


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
            }
        rec["_path"] = rel
        records.append(rec)
    records.sort(key=lambda r: (str(_get(r, "run", "prefix", default="")), str(r.get("variant"))))
    return records


def _status(rec: Mapping[str, Any]) -> str:
    s = rec.get("status")
    return s if s in _STATUS_RANK else "error"


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


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
    failed = _STATUS_RANK[status] >= _STATUS_RANK[fail_on]
    if failed and not reasons:
        reasons = [f"status {status}"]
    return failed, reasons


SIGNOFF_COLUMNS = ["subject", "session", "run", "variant", "status", "reasons", "warnings", "signoff", "task",
                   "acq", "prefix", "fail_on", "reviewer", "rating", "comment", "final"]


def signoff_table(records: Iterable[Mapping[str, Any]], fail_on: str = "fail",
                  ratings: Mapping[tuple[str, str], Mapping[str, str]] | None = None) -> pd.DataFrame:
    """Sign-off per run × variant (``signoff.tsv``).

    A run fails sign-off when its status is at or above ``fail_on`` (``error`` always
    fails). ``reasons`` lists the finding codes (with their contrast) at or above
    ``fail_on``, separated by ``; ``; ``warnings`` lists the ``warn`` findings of a
    run that passes, so a reviewer sees what to look at. ``reviewer``, ``rating`` and
    ``comment`` come from ``ratings`` (:func:`nbdiag.ratings.load_ratings`); ``final``
    is the reviewer's rating where there is one (``include`` -> pass, ``exclude`` ->
    fail), else ``signoff``.
    """
    from nbdiag.ratings import final_signoff

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
        })
    return pd.DataFrame(rows, columns=SIGNOFF_COLUMNS)


def include_table(records: Iterable[Mapping[str, Any]], fail_on: str = "fail",
                  ratings: Mapping[tuple[str, str], Mapping[str, str]] | None = None) -> pd.DataFrame:
    """Runs whose final sign-off passes, with their input files (``include.tsv``).

    One row per run × variant that passes (a reviewer's ``include`` / ``exclude`` rating
    overrides the automatic sign-off); filter on ``variant`` to build a second level
    with one model. Input files are named as in the records (``bids::`` URIs).
    """
    from nbdiag.ratings import final_signoff

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
        Reviewer ratings (:func:`nbdiag.ratings.load_ratings`).

    Returns
    -------
    dict
        ``{"runs": path, "signoff": path, "include": path}``.
    """
    _check_fail_on(fail_on)
    group = Path(output_dir) / "group"
    chosen = select_variants(records, variants)
    return {
        "runs": _write_tsv(runs_table(records), group / "nbdiag_runs.tsv"),
        "signoff": _write_tsv(signoff_table(chosen, fail_on, ratings), group / "signoff.tsv"),
        "include": _write_tsv(include_table(chosen, fail_on, ratings), group / "include.tsv"),
    }


def subjects_without_output(bids_dir: str | Path, records: Iterable[Mapping[str, Any]]) -> list[str]:
    """Subjects of BIDS_DIR (``sub-*`` folders) with no record in OUTPUT_DIR, sorted.

    After sharded participant runs (``--participant-label``), these are the shards
    that did not run or did not finish any run.
    """
    have = {str(_get(r, "run", "subject")) for r in records}
    present = sorted(p.name[4:] for p in Path(bids_dir).glob("sub-*") if p.is_dir())
    return [s for s in present if s not in have]


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


def run_group(output_dir: str | Path, fail_on: str = "fail", *, report: bool = True,
              variants: Iterable[str] | None = None, ratings: Iterable[str | Path] | None = None,
              bids_dir: str | Path | None = None) -> int:
    """Group level of ``nbdiag``: tables, ``group.html`` and the sign-off exit code.

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
        BIDS_DIR: subjects there with no record are listed on stderr.

    Returns
    -------
    int
        0 when every selected run × variant passes its final sign-off, 3 when one
        fails, 2 for bad usage (no record in ``output_dir``, an unknown ``--variant``,
        a ratings file that cannot be used or rates an unknown run). Problems are
        printed to stderr.
    """
    from nbdiag.ratings import RatingsError, load_ratings

    _check_fail_on(fail_on)
    root = Path(output_dir)
    records = collect_records(root)
    if not records:
        print(f"nbdiag group: no *_nbdiag.json found under {root}/sub-*; "
              "run the participant level first.", file=sys.stderr)
        return EXIT_USAGE
    if bids_dir is not None:
        absent = subjects_without_output(bids_dir, records)
        if absent:
            shown = ", ".join(f"sub-{s}" for s in absent[:50]) + (" ..." if len(absent) > 50 else "")
            print(f"nbdiag group: {len(absent)} subject(s) of {bids_dir} have no output in {root} "
                  f"(shard not run or not finished?): {shown}", file=sys.stderr)
    try:
        chosen = select_variants(records, variants)
        known = [(str(_get(r, "run", "prefix")), str(r.get("variant"))) for r in records]
        rated = load_ratings(ratings, known) if ratings else {}
    except (ValueError, RatingsError) as exc:
        print(f"nbdiag group: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    write_group_tables(records, root, fail_on, variants=variants, ratings=rated)
    signoff = signoff_table(chosen, fail_on, rated)
    if report:
        from nbdiag.report.group_report import render_group_report

        render_group_report(records, runs_table(records), signoff_table(records, fail_on, rated),
                            root / "group.html", fail_on=fail_on,
                            deciding=sorted({str(r.get("variant")) for r in chosen}))
    failed = signoff[signoff["final"] == "fail"]
    if len(failed):
        which = f" of variant(s) {', '.join(dict.fromkeys(map(str, signoff['variant'])))}"
        print(f"nbdiag group: {len(failed)} of {len(signoff)} run × variant(s){which} fail sign-off "
              f"(--fail-on {fail_on}); see {root / 'group' / 'signoff.tsv'}", file=sys.stderr)
        return EXIT_SIGNOFF_FAILED
    return EXIT_OK
