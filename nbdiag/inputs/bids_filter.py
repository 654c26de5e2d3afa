"""fMRIPrep's ``--bids-filter-file``: per-suffix entity filters, read the way fMRIPrep reads them.

The file is a JSON object whose keys are fMRIPrep's query names (``bold``, ``sbref``,
``t1w``, ``fmap``...) and whose values map pybids entity names to values, e.g.::

    {"bold": {"session": "1", "run": [1, 2], "acquisition": null}}

Semantics (fMRIPrep ``_filter_pybids_none_any`` + pybids ``BIDSLayout.get``):

* a string or number must equal the file's entity (``run`` and ``echo`` compare as
  integers, so ``1`` matches ``run-01``);
* a list matches any of its items;
* ``null`` (pybids ``Query.NONE``): the file must *not* have that entity;
* ``"*"`` (pybids ``Query.ANY``): the file must have it, any value.

nbdiag audits BOLD runs, so only ``bold`` selects anything; the other query names
fMRIPrep knows are accepted (the same file serves both tools) and ignored, with a note.
``task`` and ``space`` in the ``bold`` filter give ``task_label`` / ``space_label`` when
those are not set otherwise. Unknown query names and entities are refused by name.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from nbdiag.core.errors import SettingsError

#: Query names fMRIPrep's ``--bids-filter-file`` accepts (fMRIPrep / sMRIPrep / SDCFlows queries).
FMRIPREP_QUERIES = ("bold", "sbref", "t1w", "t2w", "flair", "fmap", "roi", "pet", "asl", "dwi", "epi",
                    "phasediff", "magnitude", "magnitude1", "magnitude2", "phase1", "phase2", "fieldmap")
#: pybids entity names -> BIDS file-name keys.
PYBIDS_ENTITIES = {
    "subject": "sub", "session": "ses", "task": "task", "acquisition": "acq", "ceagent": "ce",
    "reconstruction": "rec", "direction": "dir", "run": "run", "echo": "echo", "part": "part",
    "space": "space", "cohort": "cohort", "resolution": "res", "res": "res", "density": "den", "den": "den",
    "desc": "desc", "description": "desc", "tracer": "trc", "modality": "mod", "inv": "inv", "mt": "mt",
    "chunk": "chunk", "flip": "flip", "recording": "recording", "suffix": "suffix",
    "datatype": "datatype", "extension": "extension",
}
_INTEGER_KEYS = ("run", "echo", "inv", "flip", "chunk")

ANY = "*"
NONE = None


@dataclass(frozen=True)
class BidsFilter:
    """The ``bold`` filter of a BIDS filter file.

    Attributes
    ----------
    bold : dict
        BIDS key (``ses``, ``run``...) -> ``None`` (absent), ``"*"`` (present) or a tuple
        of accepted values (strings).
    path : str
        The file, for messages.
    ignored : tuple of str
        Query names present in the file that nbdiag does not use.
    """

    bold: Mapping[str, Any] = field(default_factory=dict)
    path: str = ""
    ignored: tuple[str, ...] = ()

    def matches(self, entities: Mapping[str, str], suffix: str = "bold", datatype: str = "func",
                extension: str = ".nii.gz") -> bool:
        """Whether a file with these entities passes the ``bold`` filter."""
        values = {**entities, "suffix": suffix, "datatype": datatype, "extension": extension}
        for key, wanted in self.bold.items():
            have = values.get(key)
            if wanted is NONE:
                if have is not None:
                    return False
            elif wanted == ANY:
                if have is None:
                    return False
            else:
                if have is None or not any(_same(key, have, w) for w in wanted):
                    return False
        return True

    def single(self, key: str) -> str | None:
        """The one value the filter requires for ``key`` (``task``, ``space``), if exactly one."""
        wanted = self.bold.get(key)
        if isinstance(wanted, tuple) and len(wanted) == 1:
            return str(wanted[0])
        return None

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if v is NONE else v if v == ANY else list(v)) for k, v in self.bold.items()}


def _same(key: str, have: str, wanted: str) -> bool:
    if key in _INTEGER_KEYS:
        try:
            return int(have) == int(wanted)
        except ValueError:
            return have == wanted
    if key == "extension":
        return have.lstrip(".") == wanted.lstrip(".")
    return have == wanted


def _close(name: str, known) -> str:
    match = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _value(path: str, query: str, entity: str, value: Any) -> Any:
    where = f"{path}: {query}.{entity}"
    if value is None:
        return NONE
    if value == ANY:
        return ANY
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (str, int)) or (isinstance(item, str) and not item):
            raise SettingsError(f"{where}: invalid value: expected a label (string), an integer, a list of "
                                f"them, null (entity absent) or \"*\" (entity present); got {item!r}")
        out.append(str(item))
    if not out:
        raise SettingsError(f"{where}: invalid value: expected at least one label in the list; got []")
    return tuple(out)


def parse_bids_filter(data: Any, path: str = "bids filter") -> BidsFilter:
    """Validate a parsed BIDS filter object.

    Raises
    ------
    SettingsError
        Naming the file, the query / entity and what was expected.
    """
    if not isinstance(data, dict):
        raise SettingsError(f"{path}: expected a JSON object such as {{\"bold\": {{\"session\": \"1\"}}}}; "
                            f"got {type(data).__name__}")
    bold: dict[str, Any] = {}
    ignored = []
    for query, entities in data.items():
        if query not in FMRIPREP_QUERIES:
            raise SettingsError(f"{path}: unknown query {query!r}{_close(query, FMRIPREP_QUERIES)}; fMRIPrep's "
                                f"are {', '.join(FMRIPREP_QUERIES)} (nbdiag uses 'bold')")
        if not isinstance(entities, dict):
            raise SettingsError(f"{path}: {query}: expected an object of entity filters; got {entities!r}")
        for entity, value in entities.items():
            if entity not in PYBIDS_ENTITIES:
                raise SettingsError(f"{path}: {query}: unknown entity {entity!r}{_close(entity, PYBIDS_ENTITIES)}; "
                                    f"use pybids names ({', '.join(sorted(PYBIDS_ENTITIES))})")
            clean = _value(path, query, entity, value)
            if query == "bold":
                bold[PYBIDS_ENTITIES[entity]] = clean
        if query != "bold":
            ignored.append(query)
    return BidsFilter(bold=bold, path=path, ignored=tuple(ignored))


def load_bids_filter(path: str | Path) -> BidsFilter:
    """Read a ``--bids-filter-file``.

    Raises
    ------
    SettingsError
        If the file is missing, is not JSON, or holds an unknown query/entity or a bad value.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SettingsError(f"--bids-filter-file: file not found: {path}") from None
    except OSError as exc:
        raise SettingsError(f"--bids-filter-file: cannot read {path}: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SettingsError(f"{path}: not valid JSON: {exc}") from None
    return parse_bids_filter(data, str(path))
