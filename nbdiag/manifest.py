"""How to tell a run × variant record is current: settings hash and input fingerprints.

One implementation shared by ``--work-dir`` caching (:mod:`nbdiag.workdir`) and the
group level's refusal of stale records:

* :func:`settings_hash` — a hash of one variant's resolved settings (without the
  subject selection, so shards of one analysis share it) and the nbdiag / nilearn
  versions;
* :func:`fingerprint` / :func:`input_fingerprints` — size + modification time of every
  input file of a run (a broken link records its target instead: an unfetched
  git-annex file).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Mapping

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
