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
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping

__all__ = ["RATINGS", "RatingsError", "load_ratings", "final_signoff"]

#: Allowed ratings, most conservative first.
RATINGS = ("exclude", "unsure", "include")


class RatingsError(ValueError):
    """A ratings file that cannot be used (names the file and the entry)."""


def _entries(path: Path) -> tuple[str, list[Mapping[str, Any]]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RatingsError(f"--ratings: cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise RatingsError(f"--ratings: {path} is not JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("ratings"), list):
        raise RatingsError(f"--ratings: {path}: expected an object with a 'ratings' list "
                           f"(as saved by a subject report), found {type(data).__name__}")
    reviewer = str(data.get("reviewer") or "").strip()
    return reviewer, data["ratings"]


def load_ratings(paths: Iterable[str | Path], known: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict[str, str]]:
    """Read rating files; return ``{(run prefix, variant): {reviewer, rating, comment}}``.

    Parameters
    ----------
    paths : iterable of path
        Files saved by the subject reports' **Download ratings** button.
    known : iterable of (prefix, variant)
        The run × variants in OUTPUT_DIR.

    Raises
    ------
    RatingsError
        Unreadable file, wrong format, a rating outside ``RATINGS``, or ratings for run ×
        variants that are not in OUTPUT_DIR (all of them named).
    """
    known = set(known)
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    unknown: list[str] = []
    for p in paths:
        path = Path(p)
        reviewer, entries = _entries(path)
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
            m = merged.setdefault(key, {"reviewers": [], "ratings": [], "comments": []})
            if reviewer and reviewer not in m["reviewers"]:
                m["reviewers"].append(reviewer)
            m["ratings"].append(rating)
            comment = str(e.get("comment") or "").strip()
            if comment:
                m["comments"].append(f"{reviewer}: {comment}" if reviewer else comment)
    if unknown:
        raise RatingsError("--ratings: rating(s) for run × variant(s) not in OUTPUT_DIR: " + "; ".join(unknown))
    return {k: {"reviewer": "; ".join(v["reviewers"]),
                "rating": next(r for r in RATINGS if r in v["ratings"]),
                "comment": " | ".join(v["comments"]).replace("\t", " ").replace("\n", " ")}
            for k, v in merged.items()}


def final_signoff(signoff: str, rating: str | None) -> str:
    """The reviewer's rating overrides the automatic sign-off (``unsure`` keeps it)."""
    if rating == "include":
        return "pass"
    if rating == "exclude":
        return "fail"
    return signoff
