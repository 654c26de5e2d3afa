"""Reviewer ratings saved by the subject reports, merged into the group sign-off.

Each subject report has, per run × variant, a rating (``include`` / ``exclude`` /
``unsure``) and a comment; **Download ratings** saves them as JSON::

    {"nbdiag_ratings": 1, "subject": "01", "reviewer": "AB",
     "ratings": [{"run": "sub-01_ses-1_task-nback_run-01", "variant": "nortdur",
                  "rating": "exclude", "comment": "cue gaps"}]}

``nbdiag BIDS_DIR OUTPUT_DIR group --ratings FILE...`` reads them with
:func:`load_ratings`; a rating for a run × variant that is not in OUTPUT_DIR is refused
by name. Several ratings of one run × variant (several reviewers) are combined: the
reviewers and comments are joined and the most conservative rating wins (exclude, then
unsure, then include).

Ratings in the formats reviewers already produce are read too (detected from the file's
shape), and mapped to include / exclude / unsure; ``signoff.tsv`` keeps the original
rating (``rating_original``), where it came from (``rating_source``) and the rule applied
(``rating_mapping``):

MRIQC rating widget (``rating_source`` ``mriqc``)
    The JSON the widget of MRIQC's reports (nireports) downloads:
    ``{"dataset", "subject": "sub-01_ses-1_task-nback_run-01_bold", "rating": "2.45",
    "artifacts": [...], "time_sec", "confidence", "comments"}``; ``rating`` is the slider,
    1.0 - 4.0, labelled Exclude / Poor / Acceptable / Excellent (the widget colours
    < 1.5 Exclude, < 2.5 Poor, < 3.5 Acceptable, else Excellent); ``confidence`` 0 - 4
    (Doubtful < 2, Confident). Mapping: Exclude (< 1.5) -> exclude; Poor (< 2.5) -> unsure;
    Acceptable / Excellent (>= 2.5) -> include, unless ``confidence`` < 2 (Doubtful):
    unsure. ``subject`` (the MRIQC report's BIDS name) minus its suffix names the run; a name
    with fewer entities (``sub-01_T1w``) rates every run it matches. Artifacts and comments go
    to ``comment``. MRIQC rates the data: the rating applies to every variant of the run.
AFNI APQC (``rating_source`` ``afni_apqc``)
    The ``apqc_*.json`` the APQC HTML saves: a list of ``[qcele, rating, comment]`` rows
    after the header ``["qcele", "rating", "comment"]``, ``rating`` one of ``good``,
    ``bad``, ``other`` or ``null`` (not rated). Mapping: a ``FINAL`` row that is rated
    decides alone; otherwise any ``bad`` -> exclude, else any ``other`` -> unsure, else at
    least one ``good`` -> include; nothing rated -> no rating. APQC rates one subject (all
    its runs): the subject is the ``sub-<label>`` in the file name (or ``apqc_<label>.json``),
    and the rating applies to every run and variant of that subject.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

__all__ = ["RATINGS", "RatingsError", "load_ratings", "final_signoff"]

#: Allowed ratings, most conservative first.
RATINGS = ("exclude", "unsure", "include")


class RatingsError(ValueError):
    """A ratings file that cannot be used (names the file and the entry)."""


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RatingsError(f"--ratings: cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise RatingsError(f"--ratings: {path} is not JSON ({exc})") from None


def _is_apqc(data: Any) -> bool:
    return (isinstance(data, list) and bool(data) and isinstance(data[0], list)
            and [str(x).lower() for x in data[0][:3]] == ["qcele", "rating", "comment"])


def _is_mriqc(data: Any) -> bool:
    return isinstance(data, dict) and "rating" in data and "ratings" not in data and "subject" in data


def _entries(path: Path, data: Any) -> tuple[str, list[Mapping[str, Any]]]:
    if not isinstance(data, dict) or not isinstance(data.get("ratings"), list):
        raise RatingsError(f"--ratings: {path}: expected an object with a 'ratings' list "
                           f"(as saved by a subject report), found {type(data).__name__} (MRIQC rating-widget "
                           f"files and AFNI APQC apqc_*.json files are read too)")
    reviewer = str(data.get("reviewer") or "").strip()
    return reviewer, data["ratings"]


#: MRIQC widget slider -> nbdiag (the widget's own colour bands)
MRIQC_MAPPING = "MRIQC rating < 1.5 (Exclude) -> exclude; < 2.5 (Poor) -> unsure; >= 2.5 (Acceptable, " \
                "Excellent) -> include, unsure when confidence < 2 (Doubtful)"
#: AFNI APQC -> nbdiag
APQC_MAPPING = "AFNI APQC: a rated FINAL row decides; else any bad -> exclude, any other -> unsure, " \
               "good -> include"


def _clean(text: Any) -> str:
    return str(text or "").replace("\t", " ").replace("\n", " ").strip()


def _mriqc(path: Path, data: Mapping[str, Any], prefixes: list[str]) -> tuple[list[str], dict[str, str]]:
    """Runs an MRIQC rating-widget file rates and its mapped rating (module docstring)."""
    try:
        value = float(data["rating"])
    except (TypeError, ValueError):
        raise RatingsError(f"--ratings: {path}: MRIQC 'rating' must be a number from 1 to 4; "
                           f"found {data['rating']!r}") from None
    if not 1.0 <= value <= 4.0:
        raise RatingsError(f"--ratings: {path}: MRIQC 'rating' must be a number from 1 to 4; found {value:g}")
    label = "Exclude" if value < 1.5 else "Poor" if value < 2.5 else "Acceptable" if value < 3.5 else "Excellent"
    rating = "exclude" if value < 1.5 else "unsure" if value < 2.5 else "include"
    conf = data.get("confidence")
    try:
        conf_v = None if conf in (None, "") else float(conf)
    except (TypeError, ValueError):
        conf_v = None
    if rating == "include" and conf_v is not None and conf_v < 2.0:
        rating = "unsure"
    artifacts = [str(a) for a in data.get("artifacts") or [] if str(a)]
    original = f"{value:g} ({label}" + (f"; confidence {conf_v:g}" if conf_v is not None else "") + ")"
    comment = "; ".join(x for x in (_clean(data.get("comments") or data.get("comment")),
                                    ("artifacts: " + ", ".join(artifacts)) if artifacts else "") if x)
    name = str(data.get("subject") or "")
    parts = [p for p in name.split("_") if "-" in p]  # BIDS entities; the suffix (bold, T1w) has no '-'
    stem = "_".join(parts)
    runs = [p for p in prefixes if p == stem] or [p for p in prefixes if parts and set(parts) <= set(p.split("_"))]
    if not runs:
        raise RatingsError(f"--ratings: {path}: MRIQC rating of {name!r} matches no run in OUTPUT_DIR")
    return runs, {"rating": rating, "comment": comment, "source": "mriqc", "original": original,
                  "mapping": MRIQC_MAPPING}


def _apqc(path: Path, data: list, subjects: Mapping[str, list[str]]) -> tuple[list[str], dict[str, str]] | None:
    """Runs an AFNI APQC file rates and its mapped rating; None when nothing is rated (module docstring)."""
    m = re.search(r"sub-([A-Za-z0-9]+)", path.name) or re.fullmatch(r"apqc_([A-Za-z0-9]+)\.json", path.name)
    if m is None:
        raise RatingsError(f"--ratings: {path}: an AFNI APQC file names no subject; name it apqc_sub-<label>.json")
    label = m.group(1)
    if label not in subjects:
        raise RatingsError(f"--ratings: {path}: AFNI APQC rating of sub-{label}, which has no run in OUTPUT_DIR")
    rows = []
    for i, row in enumerate(data[1:], start=1):
        if not isinstance(row, list) or len(row) < 2:
            raise RatingsError(f"--ratings: {path}: row {i} must be [qcele, rating, comment]; found {row!r}")
        qcele, rating = str(row[0]), str(row[1]).strip().lower()
        comment = "" if len(row) < 3 or row[2] in (None, "null") else _clean(row[2])
        if rating in ("", "none"):
            rating = "null"
        if rating not in ("good", "bad", "other", "null"):
            raise RatingsError(f"--ratings: {path}: row {i} ({qcele}) rating must be good, bad, other or null; "
                               f"found {row[1]!r}")
        rows.append((qcele, rating, comment))
    rated = [r for r in rows if r[1] != "null"]
    if not rated:
        return None
    final = [r for r in rated if r[0].upper() == "FINAL"]
    decide = [r[1] for r in (final or rated)]
    rating = "exclude" if "bad" in decide else "unsure" if "other" in decide else "include"
    original = "; ".join(f"{q}: {r}" for q, r, _ in rated)
    comment = "; ".join(f"{q}: {c}" for q, _, c in rows if c)
    return subjects[label], {"rating": rating, "comment": comment, "source": "afni_apqc", "original": original,
                             "mapping": APQC_MAPPING}


def load_ratings(paths: Iterable[str | Path], known: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict[str, str]]:  # noqa: C901
    """Read rating files; return ``{(run prefix, variant): {reviewer, rating, comment}}``.

    Ratings read from MRIQC or AFNI files also carry ``source``, ``original`` and
    ``mapping`` (module docstring); nbdiag's own ratings have the three keys only.

    Parameters
    ----------
    paths : iterable of path
        Files saved by the subject reports' **Download ratings** button, MRIQC's
        rating widget or AFNI's APQC page.
    known : iterable of (prefix, variant)
        The run × variants in OUTPUT_DIR.

    Raises
    ------
    RatingsError
        Unreadable file, wrong format, a rating outside ``RATINGS``, or ratings for run ×
        variants that are not in OUTPUT_DIR (all of them named).
    """
    known = set(known)
    variants: dict[str, list[str]] = {}
    for prefix, variant in sorted(known):
        variants.setdefault(prefix, []).append(variant)
    subjects: dict[str, list[str]] = {}
    for prefix in variants:
        m = re.match(r"sub-([A-Za-z0-9]+)", prefix)
        if m:
            subjects.setdefault(m.group(1), []).append(prefix)
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    unknown: list[str] = []

    def add(key: tuple[str, str], reviewer: str, rating: str, comment: str, extra: Mapping[str, str] | None) -> None:
        m = merged.setdefault(key, {"reviewers": [], "ratings": [], "comments": [], "extra": []})
        if reviewer and reviewer not in m["reviewers"]:
            m["reviewers"].append(reviewer)
        m["ratings"].append(rating)
        if comment:
            m["comments"].append(f"{reviewer}: {comment}" if reviewer else comment)
        m["extra"].append(dict(extra) if extra else {"source": "nbdiag", "original": rating, "mapping": "as rated"})

    for p in paths:
        path = Path(p)
        data = _read(path)
        if _is_apqc(data) or _is_mriqc(data):
            found = _apqc(path, data, subjects) if _is_apqc(data) else _mriqc(path, data, sorted(variants))
            if found is None:
                continue
            runs, entry = found
            reviewer = str(data.get("reviewer") or "").strip() if isinstance(data, dict) else ""
            for prefix in runs:
                for variant in variants[prefix]:
                    add((prefix, variant), reviewer, entry["rating"], entry["comment"], entry)
            continue
        reviewer, entries = _entries(path, data)
        for i, e in enumerate(entries):
            if not isinstance(e, Mapping) or not e.get("run") or not e.get("variant"):
                raise RatingsError(f"--ratings: {path}: ratings[{i}] needs 'run' and 'variant'; found {e!r}")
            rating = str(e.get("rating") or "unsure")
            if rating not in RATINGS:
                raise RatingsError(f"--ratings: {path}: ratings[{i}].rating must be one of {RATINGS}; "
                                   f"found {rating!r}")
            key = (str(e["run"]), str(e["variant"]))
            if key not in known:
                unknown.append(f"{key[0]} [{key[1]}] (in {path.name})")
                continue
            add(key, reviewer, rating, str(e.get("comment") or "").strip(), None)
    if unknown:
        raise RatingsError("--ratings: rating(s) for run × variant(s) not in OUTPUT_DIR: " + "; ".join(unknown))
    out: dict[tuple[str, str], dict[str, str]] = {}
    for k, v in merged.items():
        row = {"reviewer": "; ".join(v["reviewers"]),
               "rating": next(r for r in RATINGS if r in v["ratings"]),
               "comment": " | ".join(v["comments"]).replace("\t", " ").replace("\n", " ")}
        if any(x["source"] != "nbdiag" for x in v["extra"]):
            row.update({name: "; ".join(dict.fromkeys(x[name] for x in v["extra"]))
                        for name in ("source", "original", "mapping")})
        out[k] = row
    return out


def final_signoff(signoff: str, rating: str | None) -> str:
    """The reviewer's rating overrides the automatic sign-off (``unsure`` keeps it)."""
    if rating == "include":
        return "pass"
    if rating == "exclude":
        return "fail"
    return signoff
