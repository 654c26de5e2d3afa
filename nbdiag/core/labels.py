"""The one table of scan classes and measured signals: keys, words, order and kind.

Every module that names a scan class (the diagnostics that measure it, the explanation
sentences, the report's charts, tables and sentences, the group table) reads it here;
colours stay in :mod:`nbdiag.report.palette`, keyed by the same keys. A leaf module: it
imports nothing from nbdiag.

A scan class has four forms of words, each for one place:

* ``label`` — short, for chart legends and table cells (``baseline at run edges``);
* ``noun`` — in a sentence, without an article (``run-edge scans``;
  :func:`class_the` adds ``the``);
* ``adjective`` — before "part" (``the run-edge part of the global signal``);

and a ``kind``: ``cause`` (something in the design or the data that should not move the
estimate: :data:`CAUSE_CLASSES`) or ``term`` (part of the model's own contrast: the implicit
baseline; the conditions ``condition:<name>`` are terms too).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CAUSE_CLASSES",
    "CLASS_ORDER",
    "SCAN_CLASS_TABLE",
    "SIGNAL_WORDS",
    "ScanClass",
    "class_adjective",
    "class_kind",
    "class_label",
    "class_noun",
    "class_the",
    "signal_words",
]

#: Prefix of the scan class of a modelled condition (``condition:<name>``).
CONDITION_PREFIX = "condition:"


@dataclass(frozen=True)
class ScanClass:
    """One scan class of the measured decomposition and the weight composition."""

    key: str
    label: str
    noun: str
    adjective: str
    kind: str


#: The scan classes in display order (the order of ``by_class``; conditions follow, sorted).
SCAN_CLASS_TABLE: tuple[ScanClass, ...] = (
    ScanClass("nonsteady", "non-steady-state volumes", "flagged non-steady-state volumes", "non-steady-state",
              "cause"),
    ScanClass("transient", "unflagged transients", "unflagged transient volumes", "transient", "cause"),
    ScanClass("high_motion", "high-motion volumes", "high-motion volumes left in the model", "high-motion",
              "cause"),
    ScanClass("unmodeled_event", "unmodelled events", "unmodelled events", "unmodelled-event", "cause"),
    ScanClass("short_gap", "short gaps next to blocks", "short gaps next to blocks", "short-gap", "cause"),
    ScanClass("fixation", "fixation / long baseline", "fixation", "fixation", "term"),
    ScanClass("run_edge", "baseline at run edges", "run-edge scans", "run-edge", "cause"),
)

_BY_KEY = {c.key: c for c in SCAN_CLASS_TABLE}

#: Scan-class keys in display order.
CLASS_ORDER: tuple[str, ...] = tuple(c.key for c in SCAN_CLASS_TABLE)
#: Classes that are causes (not the model's own terms: conditions, implicit baseline, ``reference``).
CAUSE_CLASSES: tuple[str, ...] = tuple(c.key for c in SCAN_CLASS_TABLE if c.kind == "cause")

#: Measured signals (fMRIPrep confounds-file columns) and their words.
SIGNAL_WORDS = {"global_signal": "global signal", "csf": "CSF signal", "white_matter": "white-matter signal"}


def _condition(key: str) -> str | None:
    return key[len(CONDITION_PREFIX):] if key.startswith(CONDITION_PREFIX) else None


def class_label(key: str) -> str:
    """Short label (``condition:two_back`` -> ``two_back scans``; unknown keys lose their underscores)."""
    key = str(key)
    cond = _condition(key)
    if cond is not None:
        return f"{cond} scans"
    c = _BY_KEY.get(key)
    return c.label if c else key.replace("_", " ")


def class_noun(key: str) -> str:
    """Words in a sentence, no article (``condition:two_back`` -> ``two_back scans``; unknown keys as is)."""
    key = str(key)
    cond = _condition(key)
    if cond is not None:
        return f"{cond} scans"
    c = _BY_KEY.get(key)
    return c.noun if c else key


def class_the(key: str) -> str:
    """:func:`class_noun` with ``the`` (``the run-edge scans``)."""
    return f"the {class_noun(key)}"


def class_adjective(key: str) -> str:
    """Words before "part" (``short_gap`` -> ``short-gap``; unknown keys as is)."""
    c = _BY_KEY.get(str(key))
    return c.adjective if c else str(key)


def class_kind(key: str) -> str:
    """``cause`` for :data:`CAUSE_CLASSES`, else ``term`` (conditions, implicit baseline, the reference remainder)."""
    return "cause" if str(key) in CAUSE_CLASSES else "term"


def signal_words(signal: str) -> str:
    """Words of a measured signal (``global_signal`` -> ``global signal``; unknown names as is)."""
    return SIGNAL_WORDS.get(str(signal), str(signal))
