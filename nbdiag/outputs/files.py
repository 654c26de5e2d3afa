"""Write outputs atomically (temp file + rename), only under OUTPUT_DIR."""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path
from typing import Any

import nilearn
import pandas as pd

from nbdiag._version import __version__
from nbdiag.core.floattext import float_texts

try:  # a declared dependency (the record writer's speed); without it the standard library writes
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised by monkeypatching _orjson in the tests
    _orjson = None  # type: ignore[assignment]


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` via a temporary file in the same folder."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder, then rename it into place.

    The temporary file ``.<name>.<pid>-<thread>.tmp`` is created with ``O_EXCL`` and mode
    0666 minus the umask (outputs are shared like any file the user writes). A killed
    process leaves only that file, never a partial ``path``; one left by a dead process
    with the same pid and thread id is replaced.
    """
    if not os.path.isdir(path.parent):  # one stat when it exists (mkdir would raise and stat again)
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(tmp, flags, 0o666)
    except FileExistsError:  # left by a killed process that had our pid and thread id
        os.unlink(tmp)
        fd = os.open(tmp, flags, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_json(path: Path, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def dumps_record(data: Any, depth: int = 2) -> str:
    """JSON text of a run record: keys indented down to ``depth`` levels, each value below on one line.

    The values below ``depth`` (frame times, per-scan series, the diagnostics' sections) are
    written compactly (``,`` and ``:``) by orjson, about 20 times faster than the standard
    library's encoder, which spent a tenth of a run's time here: floats as their shortest
    round-trip digits (``json.loads`` gives the same numbers back), non-ASCII characters escaped
    as ``\\uXXXX`` as ``json.dumps`` escapes them (the files stay ASCII), NaN and ±inf as
    ``null`` (the record's own rule for non-finite numbers, :mod:`nbdiag.core.jsonplain`).
    A value orjson refuses (an integer beyond 64 bits, a key that is not a string), or every
    value when orjson is not installed, goes through ``json`` with the same separators.
    """

    def encode(value: Any, level: int, pad: str) -> str:
        if level < depth and isinstance(value, dict) and value:
            inner = pad + "  "
            items = [f"{inner}{json.dumps(str(k))}: {encode(v, level + 1, inner)}" for k, v in value.items()]
            return "{\n" + ",\n".join(items) + f"\n{pad}}}"
        if level < depth and isinstance(value, list) and value and any(isinstance(v, (dict, list)) for v in value):
            inner = pad + "  "
            return "[\n" + ",\n".join(inner + encode(v, level + 1, inner) for v in value) + f"\n{pad}]"
        return _compact(value)

    return encode(data, 0, "") + "\n"


_FALLBACK = json.JSONEncoder(allow_nan=False, separators=(",", ":"))
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
#: json's own C escaper (``"\\u03c3"``, surrogate pairs beyond the BMP), applied to runs of non-ASCII characters
_escape_ascii = json.encoder.encode_basestring_ascii


def _compact(value: Any) -> str:
    """One value's compact JSON text (:func:`dumps_record`), ASCII only."""
    if _orjson is None:
        return _FALLBACK.encode(value)
    try:
        text = _orjson.dumps(value).decode()
    except TypeError:
        return _FALLBACK.encode(value)
    return text if text.isascii() else _NON_ASCII.sub(lambda m: _escape_ascii(m.group())[1:-1], text)


def write_record_json(path: Path, data: Any) -> Path:
    """Write a run record (``*_nbdiag.json``) atomically with :func:`dumps_record`."""
    return atomic_write_text(path, dumps_record(data))


def check_output_dir(output_dir: Path, bids_dir: Path | None = None, derivatives: Path | None = None) -> Path:
    """Resolve OUTPUT_DIR and refuse a location among the inputs.

    OUTPUT_DIR may not be BIDS_DIR, inside it (except under
    ``BIDS_DIR/derivatives/``), nor inside the fMRIPrep derivatives folder:
    nbdiag never writes into its inputs.

    Raises
    ------
    ValueError
        Naming both folders.
    """
    output_dir = Path(output_dir).absolute()
    if output_dir.exists() and not output_dir.is_dir():
        raise ValueError(f"OUTPUT_DIR {output_dir} is an existing file; expected a folder (new or nbdiag's own)")
    if output_dir.is_dir() and not os.access(output_dir, os.W_OK | os.X_OK):
        raise ValueError(f"OUTPUT_DIR {output_dir} is not writable")
    if bids_dir is None:
        return output_dir
    out, src = output_dir.resolve(), Path(bids_dir).absolute().resolve()

    def within(child: Path, parent: Path) -> bool:
        return child == parent or parent in child.parents

    if within(out, src) and (src / "derivatives") not in out.parents:
        raise ValueError(
            f"OUTPUT_DIR {output_dir} is inside BIDS_DIR {bids_dir}; nbdiag never writes into its inputs. "
            f"Choose a folder outside it, or e.g. {Path(bids_dir) / 'derivatives' / 'nbdiag'}"
        )
    if derivatives is not None and within(out, Path(derivatives).absolute().resolve()):
        raise ValueError(
            f"OUTPUT_DIR {output_dir} is inside the fMRIPrep derivatives {derivatives}; "
            "nbdiag never writes into its inputs. Choose a sibling folder such as derivatives/nbdiag"
        )
    return output_dir


def write_dataset_description(output_dir: Path, bids_dir: Path | None = None) -> Path:
    """BIDS derivative ``dataset_description.json``."""
    data = {
        "Name": "nbdiag design audit",
        "BIDSVersion": "1.9.0",
        "DatasetType": "derivative",
        "GeneratedBy": [{
            "Name": "nbdiag", "Version": __version__,
            "Description": f"first-level design audit; designs rebuilt with nilearn {nilearn.__version__}",
        }],
    }
    if bids_dir is not None:
        # no machine path in any output: name the source by its DOI / version when it has them
        source = _source_dataset(Path(bids_dir))
        if source:
            data["SourceDatasets"] = [source]
    return write_json(Path(output_dir) / "dataset_description.json", data)


def _source_dataset(bids_dir: Path) -> dict[str, str]:
    """``SourceDatasets`` entry of the input dataset: its DOI and version, never its path."""
    try:
        desc = json.loads((bids_dir / "dataset_description.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(desc, dict):
        return {}
    out = {}
    if isinstance(desc.get("DatasetDOI"), str):
        out["DOI"] = desc["DatasetDOI"]
    if isinstance(desc.get("DatasetVersion"), str):
        out["Version"] = desc["DatasetVersion"]
    return out


def run_folder(output_dir: Path, entities: dict[str, str]) -> Path:
    """``OUTPUT_DIR/sub-<s>/[ses-<x>/]func`` (labels are BIDS labels, checked by discovery)."""
    folder = Path(output_dir) / f"sub-{entities['sub']}"
    if entities.get("ses"):
        folder = folder / f"ses-{entities['ses']}"
    return folder / "func"


def design_tsv_text(design: pd.DataFrame) -> str:
    """``design.to_csv(sep="\\t", index=False)``, written directly for a finite float design.

    Same bytes as pandas (shortest round-trip ``repr`` of every float, names as they
    are); several times faster. Anything else (non-float columns, NaN, names pandas
    would quote) goes through pandas.
    """
    import numpy as np

    names = [str(c) for c in design.columns]
    values = design.to_numpy()
    if (values.dtype != np.float64 or not np.isfinite(values).all()
            or any(ch in name for name in names for ch in '\t\n\r"')):
        return design.to_csv(sep="\t", index=False)
    columns = [_column_text(values[:, j]) for j in range(values.shape[1])]
    return "\t".join(names) + "\n" + "".join("\t".join(row) + "\n" for row in zip(*columns))


_COLUMN_TEXT: dict[bytes, list[str]] = {}


def _column_text(values) -> list[str]:
    """``repr`` of every value of one design column, memoised on the column's bytes.

    The drift and constant columns of runs with the same frame times are the same numbers:
    their text is made once. Bounded (cleared at 64 columns); a pure function of the bytes.
    """
    key = values.tobytes()
    text = _COLUMN_TEXT.get(key)
    if text is None:
        if len(_COLUMN_TEXT) >= 64:
            _COLUMN_TEXT.clear()
        listed = values.tolist()
        text = _COLUMN_TEXT[key] = float_texts(listed) or list(map(repr, listed))
    return text


def write_run_outputs(output_dir: Path, audit) -> dict[str, Path]:
    """Write ``*_desc-<variant>_design.tsv`` (+ sidecar) and ``*_nbdiag.json`` for one run audit.

    ``audit.record`` is the typed record (``nbdiag.record.model.RunRecord``); its ``design.tsv``
    names the design TSV written here. The record is written as built (``to_json``).
    """
    folder = run_folder(output_dir, audit.run.entities)
    stem = f"{audit.run.prefix}_desc-{audit.variant}"
    paths: dict[str, Path] = {}
    record = audit.record
    if audit.design is not None:
        tsv = folder / record.design.tsv
        atomic_write_text(tsv, design_tsv_text(audit.design))
        sidecar = {"RepetitionTime": record.settings.t_r.value,
                   "SliceTimingRef": record.settings.slice_time_ref.value,
                   "FrameTimes": list(record.design.frame_times)}
        write_record_json(tsv.with_suffix(".json"), sidecar)
        paths["design"] = tsv
    paths["json"] = write_record_json(folder / f"{stem}_nbdiag.json", record.to_json())
    return paths


def read_design_tsv(path: Path) -> pd.DataFrame:
    """Read a design TSV as written by ``save_glm_to_bids`` (no index column)."""
    return pd.read_csv(path, sep="\t")
