"""What a participant-level invocation was asked to do, and how to tell a record is current.

One implementation of the two keys that say whether a run × variant record is still
valid (also used by ``--work-dir`` caching):

* :func:`settings_hash` — a hash of one variant's resolved settings (without the
  subject selection, so shards of one analysis share it) and the nbdiag / nilearn
  versions;
* :func:`fingerprint` / :func:`input_fingerprints` — every input file of a run by
  content: size + SHA-256 of events, confounds and sidecars, size + SHA-256 of the header
  of images (no voxel read); never the modification time or the location, so a copy of
  the dataset (``cp -r``, a checkout, a sync to scratch) gives the same fingerprints.
  A broken link records its target instead (an unfetched git-annex file: ``"fetched":
  false``).

Every participant invocation writes, for each subject it covers, one manifest
``OUTPUT_DIR/.nbdiag/manifests/sub-<label>.json`` (concurrent ``--participant-label`` shards
cover disjoint subjects, so no shard rewrites another's file) listing the run × variant records
it will write, with each variant's settings hash, or why the subject was skipped. An invocation
over the whole dataset removes the manifests of subjects it no longer finds. Each record
carries ``provenance`` (settings hash + input fingerprints) and is written last for its run × variant, atomically: its presence with a matching hash is the
"done" marker. :func:`expectations` and :func:`input_changes` are what ``nbdiag ... group`` trusts.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping

import nilearn

from nbdiag._version import __version__

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


#: file names fingerprinted by their header (+ size) only: their voxel data are never read
IMAGE_SUFFIXES = (".nii", ".nii.gz", ".gii", ".gii.gz", ".mgh", ".mgz", ".hdr", ".img", ".img.gz")
#: bytes hashed of an image that is not a readable NIfTI header (GIfTI, MGH, damaged files)
_IMAGE_PREFIX_BYTES = 4096
#: at most this much of a NIfTI header + its extensions is hashed
_MAX_HEADER_BYTES = 1 << 20


def _nifti_header_bytes(path: Path) -> bytes | None:
    """A NIfTI-1/2 file's header and header extensions (the bytes before ``vox_offset``), or None.

    A ``.nii.gz`` is decompressed only as far as the header: no voxel is read.
    """
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            head = fh.read(540)
            for endian in ("<", ">"):
                size = struct.unpack(endian + "i", head[:4])[0] if len(head) >= 4 else 0
                if size == 348 and len(head) >= 348:
                    offset = int(struct.unpack(endian + "f", head[108:112])[0])
                    break
                if size == 540 and len(head) >= 540:
                    offset = int(struct.unpack(endian + "q", head[168:176])[0])
                    break
            else:
                return None
            offset = min(max(offset, size), _MAX_HEADER_BYTES)
            return (head + fh.read(max(offset - len(head), 0)))[:offset]
    except (OSError, EOFError, ValueError, struct.error, gzip.BadGzipFile):
        return None


def _is_image(path: Path) -> bool:
    return path.name.lower().endswith(IMAGE_SUFFIXES)


@lru_cache(maxsize=4096)
def _content_fingerprint(path: str, size: int, mtime_ns: int, inode: int) -> tuple[tuple[str, Any], ...]:
    """The content part of :func:`fingerprint`, memoised per file version (path, size, mtime, inode).

    The cache key uses the modification time only to know when to hash again: the
    fingerprint itself holds the size and content hash, never the time.
    """
    p = Path(path)
    try:
        if _is_image(p):
            header = _nifti_header_bytes(p)
            if header is None:
                with open(p, "rb") as fh:
                    header = fh.read(_IMAGE_PREFIX_BYTES)
            return (("size", size), ("header_sha256", hashlib.sha256(header).hexdigest()))
        digest = hashlib.sha256()
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        return (("size", size), ("sha256", digest.hexdigest()))
    except OSError as exc:
        return (("size", size), ("unreadable", type(exc).__name__))


def fingerprint(path: str | Path | None) -> dict[str, Any] | None:
    """What a file holds, by content: ``{"exists", "size", "sha256" | "header_sha256"}``.

    Text inputs (events, confounds, JSON sidecars) are hashed whole (SHA-256 of their
    bytes); images (:data:`IMAGE_SUFFIXES`) by their header only — for NIfTI the header
    and its extensions, up to ``vox_offset``, decompressed as far as that — together with
    their size, so no voxel is read. Never the modification time or the location: the
    same bytes anywhere give the same fingerprint.

    ``None`` for no file. A missing file gives ``{"exists": False}``; a broken link
    also records its target, and a link into git-annex whose content is absent
    (DataLad, not fetched) says ``"fetched": False``.
    """
    if path is None:
        return None
    path = Path(path)
    try:
        st = path.stat()
    except OSError:
        out: dict[str, Any] = {"exists": False}
        try:
            if path.is_symlink():
                target = os.readlink(path)
                out["link"] = target.replace("\\", "/")
                if "/annex/objects/" in out["link"]:
                    out["fetched"] = False
        except OSError:
            pass
        return out
    return {"exists": True, **dict(_content_fingerprint(str(path.absolute()), int(st.st_size),
                                                        int(st.st_mtime_ns), int(st.st_ino)))}


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


#: kinds of :func:`input_changes` that mean "the input is not there to check" (wrong BIDS_DIR,
#: a copy not fetched yet), as opposed to an input whose content changed
NOT_FOUND_KINDS = ("vanished", "not_fetched")
_CONTENT_KEYS = ("sha256", "header_sha256")


def _short(fp: Mapping[str, Any]) -> str:
    for key in _CONTENT_KEYS:
        if fp.get(key):
            return f"{key} {str(fp[key])[:12]}, {fp.get('size')} bytes"
    return f"{fp.get('size')} bytes"


def input_changes(recorded: Mapping[str, Any], root: Path | None) -> list[dict[str, str]]:
    """Inputs of a record that changed, vanished or cannot be checked since it was written.

    Parameters
    ----------
    recorded : mapping
        The record's ``provenance.inputs``.
    root : path or None
        BIDS_DIR the recorded paths are relative to (None: not checked).

    Returns
    -------
    list of dict
        ``{"role", "path", "kind", "message"}`` per problem; ``kind`` is ``vanished`` or
        ``not_fetched`` (:data:`NOT_FOUND_KINDS`: nothing to compare with), ``changed``
        (other content: the message gives the old and new hash and size), ``appeared``,
        ``unverifiable`` (a fingerprint without a content hash, from an older nbdiag),
        ``outside`` or ``malformed``.
    """
    if root is None:
        return []
    problems = []

    def add(role: str, rel: str, kind: str, what: str) -> None:
        problems.append({"role": role, "path": rel, "kind": kind, "message": f"{role} {rel}: {what}".replace(" : ", ": ")})

    for role, fp in recorded.items():
        if not isinstance(fp, Mapping) or not isinstance(fp.get("path"), str):
            add(role, "", "malformed", "malformed fingerprint")
            continue
        rel = fp["path"]
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            add(role, rel, "outside", "path outside BIDS_DIR")
            continue
        if not fp.get("exists"):
            now = fingerprint(Path(root) / rel) or {}
            if now.get("exists"):
                add(role, rel, "appeared", "appeared (or was fetched) since the audit")
            continue
        if not any(fp.get(k) for k in _CONTENT_KEYS):
            add(role, rel, "unverifiable", "fingerprint without a content hash (written by an older nbdiag); "
                                           "rerun the participant level")
            continue
        now = fingerprint(Path(root) / rel) or {}
        if not now.get("exists"):
            if now.get("fetched") is False:
                add(role, rel, "not_fetched", "not fetched (a git-annex/DataLad link without its content; "
                                              "`datalad get` it)")
            else:
                add(role, rel, "vanished", "not found")
            continue
        old = {k: fp.get(k) for k in ("size", *_CONTENT_KEYS) if fp.get(k) is not None}
        new = {k: now.get(k) for k in old}
        if old != new:
            add(role, rel, "changed", f"content changed since the audit ({_short(fp)} -> {_short(now)})")
    return problems


def check_inputs(recorded: Mapping[str, Any], root: Path | None) -> list[str]:
    """The messages of :func:`input_changes` (``"<role> <path>: <what changed>"``)."""
    return [p["message"] for p in input_changes(recorded, root)]
