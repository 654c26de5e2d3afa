"""One definition of every scan class and signal word (nbdiag.core.labels)."""

from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd

from nbdiag.core import labels as L
from nbdiag.diagnostics import measured as M
from nbdiag.group import attribution as GA
from nbdiag.report import palette
from nbdiag.report.attribution import attribution_sentences
from nbdiag.report.measured import measured_view
from nbdiag.record.model import RunRecord
from nbdiag.report.summary import measured_sentence
from report_examples import contrast, minimal_record
from nbdiag.report.words import source_words

ROOT = Path(__file__).resolve().parents[1] / "nbdiag"


def test_table_order_kinds_and_forms():
    assert L.CLASS_ORDER == ("nonsteady", "transient", "high_motion", "unmodeled_event", "short_gap", "fixation",
                             "run_edge")
    assert L.CAUSE_CLASSES == tuple(k for k in L.CLASS_ORDER if k != "fixation")
    assert [L.class_kind(k) for k in ("fixation", "condition:a", "reference", "short_gap")] == \
        ["term", "term", "term", "cause"]
    assert L.class_label("condition:two_back") == L.class_noun("condition:two_back") == "two_back scans"
    assert L.class_the("run_edge") == "the run-edge scans"
    assert L.class_label("run_edge") == "baseline at run edges"
    assert L.class_adjective("short_gap") == "short-gap"
    # unknown keys: labels lose underscores, sentence words keep the key
    assert (L.class_label("odd_key"), L.class_noun("odd_key"), L.class_adjective("odd_key")) == \
        ("odd key", "odd_key", "odd_key")
    assert L.signal_words("csf") == "CSF signal" and L.signal_words("other") == "other"


def test_every_user_reads_the_one_table():
    assert M.CLASS_ORDER is L.CLASS_ORDER and M.CAUSE_CLASSES is L.CAUSE_CLASSES and M.class_kind is L.class_kind
    assert GA.CLASS_ORDER is L.CLASS_ORDER and GA.CAUSE_CLASSES is L.CAUSE_CLASSES
    # every coloured class is a class of the table (``scan`` is the placeholder of an unknown run)
    assert set(palette.CLASS_COLORS) - {"scan"} <= set(L.CLASS_ORDER)


def test_no_module_defines_class_words_of_its_own():
    """A dict literal keyed by two or more scan classes with words (strings with a space) as values
    is a second definition; colours and finding codes (no spaces) and fix sentences are keyed by class
    on purpose."""
    keys = set(L.CLASS_ORDER)
    offenders = []
    for path in sorted(ROOT.rglob("*.py")):
        if path.name == "labels.py" and path.parent.name == "core":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Dict):
                continue
            ks = [k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)]
            vs = [v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)]
            if len(keys.intersection(ks)) >= 2 and any(" " in v or "-" in v for v in vs) \
                    and all(len(v) < 60 for v in vs):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, offenders


def test_report_words_come_from_the_table():
    # the group page's cause words, the measured section, the run's measured sentence, the group sentence
    assert source_words("measured:global_signal:run_edge") == L.class_label("run_edge")
    assert source_words("measured:csf:total") == "CSF signal estimate"
    gs = {"in_model": False, "estimate_ols": -0.5, "se": 0.1, "t": -5.0,
          "by_class": {"short_gap": -0.4, "fixation": -0.1}, "by_class_kind": {"short_gap": "cause", "fixation": "term"},
          "by_class_t": {"short_gap": -4.0, "fixation": -1.0}}
    rec = RunRecord.from_json(minimal_record(contrasts={"c": contrast("c", measured={"global_signal": gs})}))
    assert "short gaps next to blocks -0.400 % (t = -4.00)" in measured_sentence(rec.contrasts["c"])
    view = measured_view(rec)
    assert view["rows"][0]["top_class"] == "short gaps next to blocks"
    rows = [("measured:global_signal:total", 20, -0.5, -6.0, 1.0),
            ("measured:global_signal:high_motion", 20, -0.4, -5.0, 0.8)]
    df = pd.DataFrame([{"variant": "v", "contrast": "c", "source": s, "n_subjects": n, "mean": m,
                        "sem": abs(m / t), "t": t, "share": sh} for s, n, m, t, sh in rows])
    assert "the high-motion volumes left in the model contribute" in attribution_sentences(df)["v"]


def test_group_verdict_reads_old_tables_by_the_class_kind():
    """Attribution tables without a ``kind`` column: a measured part is a cause when core.labels says so
    (the implicit baseline, conditions and the ``reference`` remainder are the model's own terms)."""
    from nbdiag.report.group_verdict import _is_cause

    def cause(source):
        return _is_cause({"source": source}, has_kind=False)

    assert [cause(f"measured:global_signal:{k}") for k in ("run_edge", "transient", "fixation", "condition:a",
                                                           "reference", "total")] == \
        [True, True, False, False, False, False]
    assert cause("predicted:baseline_short_gaps")
    assert not _is_cause({"source": "measured:global_signal:run_edge", "kind": "term"}, has_kind=True)
