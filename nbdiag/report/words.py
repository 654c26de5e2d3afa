"""Human words for the codes the reports show: scan classes, signals, unmodelled-signal sources
and finding codes. Pages show the words and keep the code in a tooltip (:func:`term`)."""

from __future__ import annotations

from markupsafe import Markup, escape

__all__ = ["CLASS_WORDS", "SIGNAL_WORDS", "SOURCE_WORDS", "class_words", "code_words", "source_words", "term"]

#: Scan classes of the measured decomposition (``by_class`` keys); ``condition:<name>`` is added.
CLASS_WORDS = {
    "nonsteady": "non-steady-state volumes",
    "unmodeled_event": "unmodelled events",
    "short_gap": "short gaps next to blocks",
    "fixation": "fixation (implicit baseline)",
    "run_edge": "baseline at the run edges",
    "high_motion": "high-motion volumes",
}

#: Measured signals (confounds-file columns).
SIGNAL_WORDS = {"global_signal": "global signal", "csf": "CSF signal", "white_matter": "white-matter signal"}

#: Sensitivity sources (``contrasts.<c>.sensitivity[].source`` families, before any ``:``).
SOURCE_WORDS = {
    "nonsteady": "bright first volumes (non-steady state)",
    "unmodeled": "unmodelled events",
    "short_gaps": "short gaps next to blocks",
    "pre_block": "response before each block (cue)",
    "scrub": "high-motion volumes not scrubbed",
    "run_start": "settling at the run start",
    "slow_drift": "slow drift",
    "hrf_derivative": "HRF timing shift",
    "hrf_dispersion": "HRF width change",
    "rt": "response-time effect",
    "confound": "task-correlated confound",
    "tr": "wrong repetition time",
}


def class_words(cls: str) -> str:
    """Words for a scan class (``condition:two_back`` -> ``two_back scans``)."""
    cls = str(cls)
    if cls.startswith("condition:"):
        return f"{cls.split(':', 1)[1]} scans"
    return CLASS_WORDS.get(cls, cls.replace("_", " "))


def source_words(source: str) -> str:
    """Words for an attribution source (``measured:global_signal:nonsteady``, ``predicted:<code>``)
    or a sensitivity source (``hrf_derivative:INSTRUCTION`` -> ``HRF timing shift (INSTRUCTION)``)."""
    source = str(source)
    if source.startswith("measured:"):
        _, signal, cls = (source.split(":", 2) + ["", ""])[:3]
        if cls == "total":
            return f"{SIGNAL_WORDS.get(signal, signal)} estimate"
        return class_words(cls)
    if source.startswith("predicted:"):
        return code_words(source.split(":", 1)[1])
    family, _, detail = source.partition(":")
    words = SOURCE_WORDS.get(family, family.replace("_", " "))
    return f"{words} ({detail})" if detail else words


def code_words(code: str) -> str:
    """A finding code's title from the registry (``nonsteady_unhandled`` -> its default title)."""
    from nbdiag.core import codes

    try:
        return codes.get(str(code)).title
    except (KeyError, ValueError):
        return str(code).replace("_", " ")


def term(words: str, code: str) -> Markup:
    """``words`` with the code in a tooltip (the code is never lost, only moved)."""
    return Markup('<span class="term" title="{}">{}</span>').format(escape(code), escape(words))
