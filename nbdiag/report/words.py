"""Human words for the codes the reports show: unmodelled-signal sources and finding codes (scan
classes and signals: :mod:`nbdiag.core.labels`). Pages show the words and keep the code in a
tooltip (:func:`term`)."""

from __future__ import annotations

from markupsafe import Markup, escape

from nbdiag.core import codes
from nbdiag.core.labels import class_label, signal_words

__all__ = ["SOURCE_WORDS", "code_words", "source_words", "term"]

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


def source_words(source: str) -> str:
    """Words for an attribution source (``measured:global_signal:nonsteady``, ``predicted:<code>``)
    or a sensitivity source (``hrf_derivative:INSTRUCTION`` -> ``HRF timing shift (INSTRUCTION)``)."""
    source = str(source)
    if source.startswith("measured:"):
        _, signal, cls = (source.split(":", 2) + ["", ""])[:3]
        if cls == "total":
            return f"{signal_words(signal)} estimate"
        return class_label(cls)
    if source.startswith("predicted:"):
        return code_words(source.split(":", 1)[1])
    family, _, detail = source.partition(":")
    words = SOURCE_WORDS.get(family, family.replace("_", " "))
    return f"{words} ({detail})" if detail else words


def code_words(code: str) -> str:
    """A finding code's title from the registry (``nonsteady_unhandled`` -> its default title)."""
    try:
        return codes.get(str(code)).title
    except (KeyError, ValueError):
        return str(code).replace("_", " ")


def term(words: str, code: str) -> Markup:
    """``words`` with the code in a tooltip (the code is never lost, only moved)."""
    return Markup('<span class="term" title="{}">{}</span>').format(escape(code), escape(words))
