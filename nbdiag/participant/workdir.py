"""``--work-dir DIR``: resume a participant level, redoing only what changed.

Two caches, both private to nbdiag and safe to delete at any time:

* **run keys** (``DIR/nbdiag/runs/sub-<s>/<prefix>.json``): per run, a key hashing the
  input files' content fingerprints (:func:`nbdiag.outputs.manifest.input_fingerprints`; a file
  whose size, modification time and inode are those stored with the entry keeps its stored
  fingerprint, any other is hashed again),
  what discovery resolved (t_r, slice_time_ref, n_scans and their sources, notes,
  input errors), every variant's settings hash (:func:`nbdiag.outputs.manifest.settings_hash`,
  which includes the nbdiag and nilearn versions), and the size + modification time
  of every output file written for it. A rerun skips a run when its key is unchanged
  *and* its outputs are still there, unchanged; otherwise the run is redone.
* **discovery** (``DIR/nbdiag/discovery/sub-<s>.pkl``): the runs found for a subject,
  reused while no file under ``BIDS_DIR/sub-<s>`` or ``<derivatives>/sub-<s>`` was added,
  removed or modified (size, modification time) and the dataset-level timing nilearn
  infers is the same.

Each file is written atomically and names one subject or run, so concurrent
shards (``--participant-label``) can share one work directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterable

import nilearn

from nbdiag._version import __version__
from nbdiag.config import Config, ModelSettings
from nbdiag.inputs.bids import (
    NILEARN_DEFAULT_SPACE,
    DatasetError,
    Discovery,
    RunInputs,
    discover,
    list_subjects,
    resolve_dataset_timing,
)
from nbdiag.outputs.manifest import _canonical, input_fingerprints, settings_hash
from nbdiag.outputs.files import atomic_write_text, check_output_dir, run_folder

WORK_VERSION = 1
OUTPUT_SUFFIXES = ("_design.tsv", "_design.json", "_nbdiag.json")


def run_input_files(run: RunInputs) -> dict[str, Path | None]:
    """Every input file of a run, by role (what the fingerprints cover).

    The image, its sidecar, the events, the confounds and their sidecar, and the raw
    sidecar that BIDS inheritance took the repetition time from (``raw_sidecar``).
    """
    files = {"bold": run.bold, "bold_sidecar": run.bold_sidecar, "events": run.events,
             "confounds": run.confounds,
             "confounds_sidecar": run.confounds.with_suffix(".json") if run.confounds else None}
    raw = next((s.get("file") for s in run.t_r_sources
                if s.get("source", "").startswith("raw sidecar") and s.get("file")), None)
    if raw and run.root is not None:
        files["raw_sidecar"] = Path(run.root) / raw
    return files


def _sha(data: Any) -> str:
    return hashlib.sha256(_canonical(data).encode()).hexdigest()


def _tree_signature(folder: Path) -> list[tuple[str, int, int]]:
    """(relative path, size, mtime_ns) of every file under ``folder`` (empty if absent)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            try:
                st = os.stat(path)
                out.append((os.path.relpath(path, folder), int(st.st_size), int(st.st_mtime_ns)))
            except OSError:  # broken link (unfetched annex file): its target is what identifies it
                try:
                    out.append((os.path.relpath(path, folder), -1, hash(os.readlink(path)) & 0xFFFFFFFF))
                except OSError:
                    out.append((os.path.relpath(path, folder), -1, -1))
    return out


def _stat(path: Path) -> list[int] | None:
    """[size, modification time (ns), inode] of a file, or None (absent, broken link)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [int(st.st_size), int(st.st_mtime_ns), int(st.st_ino)]


class WorkDir:
    """The resume cache of one participant level (see the module docstring).

    Parameters
    ----------
    path : path
        ``--work-dir``; created if needed. Must not be inside BIDS_DIR's inputs
        (checked by the caller like OUTPUT_DIR).
    bids_dir, output_dir : path
        The dataset and OUTPUT_DIR (outputs are checked relative to it).
    """

    def __init__(self, path: str | Path, bids_dir: str | Path, output_dir: str | Path) -> None:
        self.root = Path(path).absolute() / "nbdiag"
        self.bids_dir = Path(bids_dir).absolute()
        self.output_dir = Path(output_dir).absolute()
        self.root.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ discovery
    def discover(self, model: ModelSettings, bids_filter: Any = None) -> tuple[Discovery, int]:
        """:func:`nbdiag.inputs.bids.discover` with per-subject reuse.

        Returns
        -------
        discovery : Discovery
            As :func:`nbdiag.inputs.bids.discover`.
        n_cached : int
            Subjects whose discovery was reused.
        """
        derivatives = (self.bids_dir / model.derivatives_folder).absolute()
        if not self.bids_dir.is_dir() or not derivatives.is_dir():
            return discover(self.bids_dir, model, bids_filter=bids_filter), 0  # the usual DatasetError
        subjects, missing = list_subjects(derivatives, model.sub_labels, model.exclude_subjects)
        space = model.space_label if model.space_label is not None else NILEARN_DEFAULT_SPACE
        t_r, slice_time_ref = resolve_dataset_timing(self.bids_dir, derivatives, model, space)
        model_key = {k: v for k, v in model.to_dict().items() if k not in ("sub_labels", "exclude_subjects")}
        common = {"version": WORK_VERSION, "nbdiag": __version__, "nilearn": nilearn.__version__,
                  "model": model_key, "t_r": t_r and t_r.to_dict(), "str": slice_time_ref.to_dict(),
                  "bids_filter": repr(bids_filter)}
        cached: dict[str, tuple] = {}
        keys: dict[str, str] = {}
        for subject in subjects:
            keys[subject] = _sha({**common, "raw": _tree_signature(self.bids_dir / f"sub-{subject}"),
                                  "derivatives": _tree_signature(derivatives / f"sub-{subject}")})
            hit = self._load_discovery(subject, keys[subject])
            if hit is not None:
                cached[subject] = hit
        stale = [s for s in subjects if s not in cached]
        if not cached:  # nothing to reuse: exactly discover()
            found = discover(self.bids_dir, model, bids_filter=bids_filter)
            self._store(found, keys)
            return found, 0
        fresh = Discovery(runs=[], notes=[])
        if stale or missing:
            sub = replace(model, sub_labels=tuple(stale) + tuple(missing), exclude_subjects=())
            try:
                fresh = discover(self.bids_dir, sub, bids_filter=bids_filter)
            except DatasetError as exc:
                fresh = Discovery(runs=[], notes=[str(exc)], subjects=[], skipped=[(s, str(exc)) for s in stale])
            self._store(fresh, {s: keys[s] for s in stale})
        runs, notes, skipped, covered = [], list(fresh.notes), list(fresh.skipped), list(fresh.subjects)
        for subject in subjects:
            if subject in cached:
                c_runs, c_notes, c_skipped = cached[subject]
                runs += c_runs
                notes += c_notes
                skipped += c_skipped
                covered.append(subject)
            else:
                runs += [r for r in fresh.runs if r.subject == subject]
        if not runs:
            raise DatasetError(f"no run found for task '{model.task_label}', space '{space}', filters "
                               f"{list(model.img_filters)} in {derivatives}")
        return Discovery(runs=runs, notes=notes, subjects=sorted(set(covered)), skipped=skipped), len(cached)

    def _store(self, found: Discovery, keys: dict[str, str]) -> None:
        for subject, key in keys.items():
            self._save_discovery(subject, key, [r for r in found.runs if r.subject == subject],
                                 [n for n in found.notes if n.startswith(f"sub-{subject}:")],
                                 [x for x in found.skipped if x[0] == subject])

    def _discovery_path(self, subject: str) -> Path:
        return self.root / "discovery" / f"sub-{subject}.pkl"

    def _load_discovery(self, subject: str, key: str):
        try:
            with open(self._discovery_path(subject), "rb") as fh:
                data = pickle.load(fh)
            if data.get("key") == key:
                return data["runs"], data["notes"], data.get("skipped", [])
        except Exception:  # noqa: BLE001 - absent, truncated or from another version: rediscover
            pass
        return None

    def _save_discovery(self, subject: str, key: str, runs: list[RunInputs], notes: list[str],
                        skipped: list | None = None) -> None:
        path = self._discovery_path(subject)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            pickle.dump({"key": key, "runs": runs, "notes": notes, "skipped": skipped or []}, fh,
                        protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)

    # ------------------------------------------------------------------ runs
    def run_key(self, run: RunInputs, config: Config) -> str:
        """The key of one run under every variant of ``config``."""
        resolved = {k: (getattr(run, k).to_dict() if getattr(run, k) is not None else None)
                    for k in ("t_r", "slice_time_ref", "n_scans")}
        return _sha({
            "version": WORK_VERSION,
            "run": run.to_dict(), "resolved": resolved, "own_t_r": run.own_t_r, "notes": list(run.notes),
            "error": None if run.error is None else str(run.error),
            "inputs": self._input_fingerprints(run),
            "variants": self._variant_hashes(config),
        })

    def _input_fingerprints(self, run: RunInputs) -> dict[str, Any]:
        """:func:`nbdiag.outputs.manifest.input_fingerprints` of a run, reusing the stored ones when allowed.

        The shortcut: a file whose (size, modification time, inode) is what the run's
        entry stored keeps its stored content fingerprint; any other file (touched,
        copied, replaced) is hashed again, so the key always depends on content.
        """
        try:
            entry = json.loads(self._run_path(run).read_text(encoding="utf-8"))
            stored = entry.get("inputs") if isinstance(entry, dict) else None
        except (OSError, ValueError):
            stored = None
        stored = stored if isinstance(stored, dict) else {}
        out: dict[str, Any] = {}
        stats: dict[str, Any] = {}
        for role, path in run_input_files(run).items():
            if path is None:
                continue
            stat = _stat(path)
            old = stored.get(role)
            if stat is not None and isinstance(old, dict) and old.get("stat") == [str(path), *stat] \
                    and isinstance(old.get("fingerprint"), dict):
                fp = old["fingerprint"]
            else:
                fp = input_fingerprints({role: path}, self.bids_dir)[role]
            out[role] = fp
            if stat is not None:
                stats[role] = {"stat": [str(path), *stat], "fingerprint": fp}
        self._stats = getattr(self, "_stats", {})
        self._stats[run.key] = stats
        return out

    def _variant_hashes(self, config: Config) -> dict[str, str]:
        cached = getattr(self, "_hashes", None)
        if cached is None or cached[0] is not config:
            self._hashes = (config, {s.variant: settings_hash(s.to_dict()) for s in config.all_variants()})
        return self._hashes[1]

    def _run_path(self, run: RunInputs) -> Path:
        return self.root / "runs" / f"sub-{run.subject}" / f"{run.prefix}.json"

    def output_files(self, run: RunInputs, variants: Iterable[str]) -> list[Path]:
        folder = run_folder(self.output_dir, run.entities)
        return [folder / f"{run.prefix}_desc-{v}{suffix}" for v in variants for suffix in OUTPUT_SUFFIXES]

    def _outputs_state(self, run: RunInputs, variants: Iterable[str]) -> dict[str, list[int] | None]:
        state: dict[str, list[int] | None] = {}
        for path in self.output_files(run, variants):
            try:
                st = path.stat()
                state[path.relative_to(self.output_dir).as_posix()] = [int(st.st_size), int(st.st_mtime_ns)]
            except OSError:
                state[path.relative_to(self.output_dir).as_posix()] = None
        return state

    def done(self, run: RunInputs, key: str, variants: list[str]) -> dict[str, str] | None:
        """``{variant: status}`` when the run is done under ``key`` with its outputs intact, else None."""
        try:
            entry = json.loads(self._run_path(run).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(entry, dict) or entry.get("key") != key:
            return None
        outputs = entry.get("outputs") or {}
        now = self._outputs_state(run, variants)
        for rel, recorded in outputs.items():
            current = now.get(rel)
            if current is None or list(current) != list(recorded or []):
                return None
        statuses = entry.get("status") or {}
        if set(statuses) != set(variants) or not all(
                now.get(f"{run_folder(Path('.'), run.entities).as_posix()}/{run.prefix}_desc-{v}_nbdiag.json")
                for v in variants):
            return None
        return {v: str(statuses[v]) for v in variants}

    def mark_done(self, run: RunInputs, key: str, statuses: dict[str, str]) -> None:
        """Record that ``run`` is done under ``key`` (after its outputs are written)."""
        outputs = {rel: st for rel, st in self._outputs_state(run, statuses).items() if st is not None}
        path = self._run_path(run)
        inputs = getattr(self, "_stats", {}).pop(run.key, {})
        atomic_write_text(path, json.dumps({"key": key, "status": statuses, "outputs": outputs, "inputs": inputs},
                                           sort_keys=True) + "\n")

    def forget(self, run: RunInputs) -> None:
        """Drop a run's entry (before redoing it, so a crash leaves no stale 'done')."""
        try:
            self._run_path(run).unlink()
        except OSError:
            pass


def check_work_dir(work_dir: Path, bids_dir: Path, derivatives: Path) -> Path:
    """Refuse a work directory among the inputs (same rule as OUTPUT_DIR)."""
    try:
        return check_output_dir(work_dir, bids_dir, derivatives)
    except ValueError as exc:
        raise ValueError(str(exc).replace("OUTPUT_DIR", "--work-dir")) from None


__all__ = ["WorkDir", "check_work_dir", "run_input_files"]
