"""Checks at the input boundary: confinement, unfetched annex links, readable JSON sidecars.

Every input file goes through :func:`check_input_file` before it is opened:

* it must exist (a dangling link into ``.git/annex`` is named as an unfetched
  git-annex/DataLad file, with the command that fetches it);
* resolved (symlinks followed), it must lie inside BIDS_DIR or the derivatives
  folder — a link pointing elsewhere is refused, naming the link, never followed;
* a symlink loop or a folder where a file is expected is an error naming it.

JSON sidecars are read by :func:`read_json_object`, which never raises: it returns the
object or a one-line problem (empty, BOM, not an object, not UTF-8...) naming the file,
so the caller can record a note. File content is never quoted in messages.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterable

from nbdiag.core import codes
from nbdiag.core.errors import InputError


def allowed_roots(bids_dir: Path, derivatives: Path | None = None) -> tuple[Path, ...]:
    """Resolved folders inputs may be read from (BIDS_DIR and the derivatives folder)."""
    roots = [Path(bids_dir).resolve()]
    if derivatives is not None:
        roots.append(Path(derivatives).resolve())
    return tuple(roots)


def _within(path: Path, roots: Iterable[Path]) -> bool:
    """``path`` is one of ``roots`` or below one (all resolved): a prefix test on the path text."""
    text = str(path)
    for root in roots:
        base = str(root)
        if text == base or text.startswith(base if base.endswith(os.sep) else base + os.sep):
            return True
    return False


def is_unfetched_annex(path: Path) -> bool:
    """A dangling symlink whose target goes through ``.git/annex`` (DataLad not fetched)."""
    try:
        if not path.is_symlink():
            return False
        target = os.readlink(path)
    except OSError:
        return False
    return ".git/annex/" in target.replace("\\", "/") or "/annex/objects/" in target.replace("\\", "/")


def display(path: Path | str, root: Path | None = None) -> str:
    """A path for messages: relative to ``root`` when inside it; undecodable bytes escaped."""
    path = Path(path)
    if root is not None:
        try:
            path = Path(os.path.abspath(path)).relative_to(Path(os.path.abspath(root)))
        except ValueError:
            pass
    return str(path).encode("utf-8", "backslashreplace").decode("utf-8")


def check_input_file(path: Path, role: str, asked_by: str, roots: tuple[Path, ...] | None,
                     code: str | None = None) -> Path:
    """Refuse an input that is missing, unfetched, a loop, not a file or outside the roots.

    Parameters
    ----------
    path : Path
        The file as found (not resolved).
    role : str
        What it is, for the message (``"events file"``, ``"confounds file"`` ...).
    asked_by : str
        What asked for it (``"confounds_strategy ['motion']"``, ``"the run's model"`` ...).
    roots : tuple of Path or None
        Resolved folders the file may live in (None: not checked).
    code : str, optional
        Error code (default ``input_missing``).

    Raises
    ------
    InputError
        Naming the file, what asked for it, expected and found.
    """
    code = code or codes.INPUT_MISSING.code
    if is_unfetched_annex(path) and not path.exists():
        raise InputError(
            f"{role} is an unfetched git-annex/DataLad file (asked for by {asked_by}); "
            f"fetch it with 'datalad get {display(path)}'", file=display(path), code=code,
            expected="the file's content", found="a broken link into .git/annex")
    try:
        resolved = path.resolve(strict=True)
    except RuntimeError:  # symlink loop (Python < 3.13)
        raise InputError(f"{role} is a symlink loop (asked for by {asked_by})", file=display(path), code=code,
                         expected="a file", found="a symlink loop") from None
    except FileNotFoundError:
        found = "a broken symlink" if path.is_symlink() else "no file"
        raise InputError(f"{role} not found (asked for by {asked_by})", file=display(path), code=code,
                         expected="a readable file", found=found) from None
    except OSError as exc:
        found = "a symlink loop" if getattr(exc, "errno", None) == 40 else type(exc).__name__
        raise InputError(f"{role} cannot be opened (asked for by {asked_by})", file=display(path), code=code,
                         expected="a readable file", found=found) from None
    if roots is not None and not _within(resolved, roots):
        raise InputError(
            f"{role} is a link to a file outside BIDS_DIR and the derivatives folder; nbdiag reads "
            f"inputs only inside the dataset (asked for by {asked_by})", file=display(path),
            code=codes.INPUT_OUTSIDE.code, expected="a file inside the dataset", found="a link pointing outside it")
    if not resolved.is_file():
        raise InputError(f"{role} is not a regular file (asked for by {asked_by})", file=display(path), code=code,
                         expected="a file", found="a folder" if resolved.is_dir() else "not a file")
    if not os.access(resolved, os.R_OK):
        raise InputError(f"{role} is not readable (asked for by {asked_by})", file=display(path), code=code,
                         expected="a readable file", found="permission denied")
    return path


def read_json_object(path: Path, roots: tuple[Path, ...] | None = None) -> tuple[dict[str, Any] | None, str | None]:
    """Read a JSON sidecar that must hold an object; never raises.

    Returns
    -------
    data, problem
        ``(dict, None)`` when readable, else ``(None, "<file>: <what is wrong>")``.
    """
    try:
        check_input_file(path, "JSON sidecar", "the run", roots)
        raw = path.read_bytes()
    except InputError as exc:
        return None, exc.describe()
    except OSError as exc:
        return None, f"{display(path)}: cannot read ({type(exc).__name__})"
    name = display(path)
    if raw.startswith(b"\xef\xbb\xbf"):
        return None, f"{name}: starts with a UTF-8 byte-order mark (BOM); JSON must not (nilearn's json.load fails)"
    if not raw.strip():
        return None, f"{name}: empty file (expected a JSON object)"
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return None, f"{name}: not UTF-8 text (expected a JSON object)"
    except ValueError as exc:
        return None, f"{name}: not valid JSON (line {getattr(exc, 'lineno', '?')}, column {getattr(exc, 'colno', '?')})"
    if not isinstance(data, dict):
        return None, f"{name}: expected a JSON object, found a JSON {type(data).__name__}"
    return data, None


def repetition_time(data: dict[str, Any], name: str) -> tuple[float | None, str | None]:
    """``RepetitionTime`` of a sidecar, validated: a finite number of seconds > 0.

    Returns ``(value, None)``, ``(None, None)`` when absent, or ``(None, problem)``.
    """
    if "RepetitionTime" not in data:
        return None, None
    value = data["RepetitionTime"]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None, (f"{name}: RepetitionTime must be a number of seconds; found a "
                      f"{type(value).__name__}{' (' + value[:20] + ')' if isinstance(value, str) else ''}")
    if not math.isfinite(value) or value <= 0:
        return None, f"{name}: RepetitionTime must be a finite number > 0; found {value}"
    if value > 100:
        return None, f"{name}: RepetitionTime {value} s is implausible (milliseconds?); expected seconds, e.g. 0.8"
    return float(value), None
