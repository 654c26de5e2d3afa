"""What a participant-level invocation was asked to do, and how to tell a record is current.

One implementation of the two keys that say whether a run × variant record is still
valid (also used by ``--work-dir`` caching):

* :func:`settings_hash` — a hash of one variant's resolved settings (without the
  subject selection, so shards of one analysis share it) and the nbdiag / nilearn
  versions;
* :func:`fingerprint` / :func:`input_fingerprints` — size + modification time of every
  input file of a run (a broken link records its target instead: an unfetched
  git-annex file).

Every participant invocation writes, for each subject it covers, one manifest
``OUTPUT_DIR/.nbdiag/manifests/sub-<label>.json`` (concurrent ``--participant-label`` shards
cover disjoint subjects, so no shard rewrites another's file) listing the run × variant records
it will write, with each variant's settings hash, or why the subject was skipped. An invocation
over the whole dataset removes the manifests of subjects it no longer finds. Each record carries ``provenance`` (settings hash + input fingerprints) and is
written last for its run × variant, atomically: its presence with a matching hash is the
"done" marker. :func:`verify` is what ``nbdiag ... group`` trusts.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

MANIFEST_DIR = Path(".nbdiag") / "manifests"
MANIFEST_VERSION = 1
#: model keys that select subjects, not the model: excluded from the settings hash
_SELECTION_KEYS = ("sub_labels", "exclude_subjects")


def _canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str, allow_nan=True)


def settings_hash(settings_dict: Mapping[str, Any]) -> str:
    """SHA-256 (first 16 hex digits) of one variant's settings and the software versions.

    Parameters
    ----------
    settings_dict : mapping
        ``Settings.to_dict()``; the subject selection (``sub_labels``,
        ``exclude_subjects``) is left out, so shards of one analysis share a hash.
    """
    import nilearn

    from nbdiag._version import __version__

    data = json.loads(_canonical(settings_dict))
    model = data.get("model")
    if isinstance(model, dict):
        for key in _SELECTION_KEYS:
            model.pop(key, None)
    payload = {"settings": data, "nbdiag": __version__, "nilearn": nilearn.__version__}
    return hashlib.sha256(_canonical(payload).encode()).hexdigest()[:16]


def _rel(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return Path(os.path.abspath(path)).relative_to(Path(os.path.abspath(root))).as_posix()
        except ValueError:
            pass
    return Path(path).name


def fingerprint(path: str | Path | None) -> dict[str, Any] | None:
    """Size and modification time (ns) of a file; ``None`` for no file.

    A missing file gives ``{"exists": False}``; a broken link (e.g. an unfetched
    git-annex file) also records its target.
    """
    if path is None:
        return None
    path = Path(path)
    try:
        st = path.stat()
        return {"exists": True, "size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns)}
    except OSError:
        out: dict[str, Any] = {"exists": False}
        try:
            if path.is_symlink():
                out["link"] = os.readlink(path)
        except OSError:
            pass
        return out


def input_fingerprints(files: Mapping[str, str | Path | None], root: Path | None = None) -> dict[str, Any]:
    """``{role: {"path": relative to root, **fingerprint}}`` for a run's input files."""
    out: dict[str, Any] = {}
    for role, path in files.items():
        if path is None:
            continue
        fp = fingerprint(path) or {}
        out[role] = {"path": _rel(Path(path), root), **fp}
    return out


def provenance(settings_dict: Mapping[str, Any], files: Mapping[str, str | Path | None],
               root: Path | None) -> dict[str, Any]:
    """The record's ``provenance`` object: settings hash + input fingerprints."""
    return {"settings_hash": settings_hash(settings_dict), "inputs": input_fingerprints(files, root)}


# --------------------------------------------------------------------------- #
# manifests
# --------------------------------------------------------------------------- #
def manifest_path(output_dir: Path, subject: str) -> Path:
    """``OUTPUT_DIR/.nbdiag/manifests/sub-<label>.json`` (labels are BIDS labels)."""
    return Path(output_dir) / MANIFEST_DIR / f"sub-{subject}.json"


def make_manifest(*, subject: str, expected: Iterable[Mapping[str, Any]], skipped: str | None,
                  variants: Mapping[str, str]) -> dict[str, Any]:
    """The manifest of one subject, as the latest participant invocation covering it left it.

    One file per subject: concurrent ``--participant-label`` shards cover disjoint subjects,
    so none rewrites another's file; a rerun of a subject replaces its file. The content has
    no timestamp (byte-identical on rerun).

    Parameters
    ----------
    subject : str
        Subject label (without ``sub-``).
    expected : iterable of mapping
        One ``{"prefix", "subject", "session", "run", "variant", "record"}`` per record to write.
    skipped : str or None
        Why the subject has no run to audit (no run for the task, label not found...).
    variants : mapping
        Variant name -> settings hash.
    """
    return {
        "manifest_version": MANIFEST_VERSION,
        "subject": subject,
        "variants": dict(variants),
        "expected": list(expected),
        "skipped": skipped,
    }


def read_manifests(output_dir: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Every subject manifest under ``OUTPUT_DIR/.nbdiag/manifests``, oldest first, and problems."""
    folder = Path(output_dir) / MANIFEST_DIR
    out, problems = [], []
    for path in sorted(folder.glob("sub-*.json")) if folder.is_dir() else []:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or not isinstance(data.get("expected"), list) \
                    or not isinstance(data.get("subject"), str) or not isinstance(data.get("variants"), dict):
                raise ValueError("expected a JSON object with 'subject', 'expected' and 'variants'")
            data["_mtime_ns"] = path.stat().st_mtime_ns
        except (OSError, ValueError) as exc:
            problems.append(f"{path.relative_to(output_dir).as_posix()}: unreadable manifest ({type(exc).__name__}); "
                            "remove it or rerun the participant level for that subject")
            continue
        data["_path"] = path.relative_to(output_dir).as_posix()
        out.append(data)
    out.sort(key=lambda m: (m["_mtime_ns"], m["_path"]))
    return out, problems


@dataclass
class Expectations:
    """What the latest participant invocations say the output folder should hold."""

    #: (prefix, variant) -> {"subject", "session", "run", "variant", "prefix", "record", "settings_hash", "manifest"}
    expected: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    #: subject -> reason, for subjects skipped by the latest invocation covering them
    skipped: dict[str, str] = field(default_factory=dict)
    subjects: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    n_manifests: int = 0
    #: variant -> settings hash of the most recently written manifest that audited it
    latest_hash: dict[str, str] = field(default_factory=dict)


def expectations(output_dir: Path) -> Expectations:
    """Combine the subject manifests (the most recently written one decides each variant's hash)."""
    manifests, problems = read_manifests(output_dir)
    exp = Expectations(problems=problems, n_manifests=len(manifests))
    for m in manifests:
        subject = str(m["subject"])
        exp.subjects.add(subject)
        hashes = m.get("variants") or {}
        if m.get("expected"):
            exp.latest_hash.update({str(k): str(v) for k, v in hashes.items()})
        for item in m.get("expected") or []:
            if not isinstance(item, dict) or "prefix" not in item or "variant" not in item:
                exp.problems.append(f"{m['_path']}: malformed entry in 'expected'")
                continue
            key = (str(item["prefix"]), str(item["variant"]))
            exp.expected[key] = {**item, "subject": subject,
                                 "settings_hash": hashes.get(item["variant"]), "manifest": m["_path"]}
        if m.get("skipped"):
            exp.skipped[subject] = str(m["skipped"])
    return exp


def check_inputs(recorded: Mapping[str, Any], root: Path | None) -> list[str]:
    """Inputs of a record that changed or vanished since it was written.

    Parameters
    ----------
    recorded : mapping
        The record's ``provenance.inputs``.
    root : path or None
        BIDS_DIR the recorded paths are relative to (None: not checked).

    Returns
    -------
    list of str
        One ``"<role> <path>: <what changed>"`` per problem.
    """
    if root is None:
        return []
    problems = []
    for role, fp in recorded.items():
        if not isinstance(fp, Mapping) or not isinstance(fp.get("path"), str):
            problems.append(f"{role}: malformed fingerprint")
            continue
        rel = fp["path"]
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            problems.append(f"{role} {rel}: path outside BIDS_DIR")
            continue
        now = fingerprint(Path(root) / rel) or {}
        if fp.get("exists") and not now.get("exists"):
            problems.append(f"{role} {rel}: vanished")
        elif not fp.get("exists") and now.get("exists"):
            problems.append(f"{role} {rel}: appeared since the audit")
        elif fp.get("exists") and (now.get("size"), now.get("mtime_ns")) != (fp.get("size"), fp.get("mtime_ns")):
            problems.append(f"{role} {rel}: changed since the audit (size/modification time)")
    return problems
