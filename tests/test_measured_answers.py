"""Issue 20: the answer sentences (run, subject verdict, group) name only distinguishable cause parts."""

import pandas as pd

from nbdiag.explain.attribution import bias_sentence, measured_answer
from nbdiag.report.attribution import attribution_sentences
from nbdiag.record.model import ContrastEntry, RunRecord
from nbdiag.report.summary import _cause, measured_sentence
from report_examples import contrast, finding, minimal_record, sensitivity


def _measured(gs=None):
    """A typed contrast entry whose global signal was measured as ``gs`` (nothing measured: None)."""
    return ContrastEntry.from_json(contrast("c", **({} if gs is None else {"measured": {"global_signal": gs}})))


def _gs(total=-0.5, t=-6.0, parts=None, ts=None, kinds=None, ses=None):
    parts = parts or {"nonsteady": -0.48, "fixation": 0.01, "condition:zero_back": -0.03}
    return {"estimate_ols": total, "t": t, "in_model": False, "by_class": parts,
            "by_class_t": ts or {"nonsteady": -9.0, "fixation": 8.0, "condition:zero_back": -1.0},
            "by_class_se": ses or {"nonsteady": 0.05, "fixation": 0.001, "condition:zero_back": 0.03},
            "by_class_kind": kinds or {"nonsteady": "cause", "fixation": "term", "condition:zero_back": "term"}}


def test_run_answer_names_causes_not_terms():
    text = measured_answer("zero_back", _gs())
    assert "the flagged non-steady-state volumes contribute -0.48 % (SE 0.05 %, t = -9.0, 96 % of it)" in text
    assert "fixation" not in text            # a term with t = 8 is no answer
    # total not distinct: no share
    text = measured_answer("zero_back", _gs(t=-1.0))
    assert "t = -9.0)" in text and "of it" not in text
    # no distinct cause, distinct total: the conditions themselves
    quiet = _gs(ts={"nonsteady": -1.0, "fixation": 8.0, "condition:zero_back": -1.0})
    assert "it comes from the conditions themselves" in measured_answer("zero_back", quiet)
    assert "not distinguishable from zero" in measured_answer("zero_back", {**quiet, "t": 0.5})
    assert measured_answer("zero_back", None) == "" and measured_answer("x", {"in_model": True}) == ""


def test_subject_verdict_sentence_from_the_measurement():
    assert measured_sentence(_measured(_gs())) == \
        "Global signal -0.500 % (t = -6.00): flagged non-steady-state volumes -0.480 % (t = -9.00)."
    quiet = _gs(ts={"nonsteady": -1.0, "fixation": 8.0, "condition:zero_back": -1.0})
    assert "comes from the conditions themselves" in measured_sentence(_measured(quiet))
    assert "not distinguishable from zero" in measured_sentence(_measured({**quiet, "t": 1}))
    assert measured_sentence(_measured({"estimate_ols": 1.0, "by_class": {}})) == ""
    assert measured_sentence(_measured()) == ""
    rec = RunRecord.from_json(minimal_record(contrasts={"zero_back": contrast(
        "zero_back", measured={"global_signal": quiet})}))
    row = _cause(rec, "zero_back", rec.contrasts["zero_back"])
    assert row["code"] is None and "conditions themselves" in row["sentence"]
    assert row["basis"]["kind"] == "measured"


def test_subject_verdict_words_measured_parts_and_hypotheses():
    measured = {"source": "pre_block", "bias_sd": -1.5, "bias_percent": -0.2, "severity_basis": "measured_part",
                "measured_bias_percent": -0.12, "measured_bias_sd": -1.1, "measured_t": -4.0, "label": "a cue"}
    hyp = {"source": "short_gaps", "bias_sd": -0.9, "bias_percent": -0.1, "hypothesis": True,
           "magnitude_source": "assumed", "label": "a 0.25 % HRF response"}
    for entry, words in ((measured, "measured, it lowers it by 1.10 σ (0.120 % signal, t = -4.00)"), (hyp, "if the data held the assumed size")):
        f = finding("baseline_short_gaps", "warn", "zero_back", title="Short gaps", message="m",
                    evidence={"bias_sd": entry["bias_sd"], "source": entry["source"]})
        rec = RunRecord.from_json(minimal_record(findings=[f], contrasts={"zero_back": contrast(
            "zero_back", findings=["baseline_short_gaps"], sensitivity=[sensitivity(**entry)])}))
        assert words in _cause(rec, "zero_back", rec.contrasts["zero_back"])["sentence"]
    assert bias_sentence(measured, "zero_back").startswith("Measured in this run:")
    assert bias_sentence(hyp, "zero_back").startswith("If the data held a 0.25 % HRF response, it would lower")


def test_group_sentence_reads_older_tables_without_kind():
    rows = [("measured:global_signal:total", 20, -0.3, -6.0, 1.0),
            ("measured:global_signal:nonsteady", 20, -0.29, -5.0, 0.97),
            ("measured:global_signal:fixation", 20, 0.31, 78.2, -1.0)]
    df = pd.DataFrame([{"variant": "v", "contrast": "zero_back", "source": s, "n_subjects": n, "mean": m,
                        "sem": abs(m / t), "t": t, "share": sh} for s, n, m, t, sh in rows])
    text = attribution_sentences(df)["v"]
    assert "the flagged non-steady-state volumes contribute −0.29 % (t = −5.0, 97 % of it)" in text
    assert "fixation" not in text
    # a distinct cause of a total that is not distinct: no share, and it says why
    df2 = df.assign(t=[-1.0, -5.0, 78.2])
    text2 = attribution_sentences(df2)["v"]
    assert "(t = −5.0)" in text2 and "no share is given" in text2


def test_a_whatif_that_makes_a_contrast_worse_says_so():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from nback_scenarios import T_R, build, layout

    from nbdiag.design.context import DesignContext
    from nbdiag.explain.audit import audit_design

    ev, _ = layout(522, between_fix=10.4)              # fixation modelled as a condition
    X, roles = build(ev, 522, high_pass=0.005)
    audit = audit_design(X, roles, DesignContext(t_r=T_R, events=ev, high_pass=0.005),
                         {"zero_back": "zero_back", "two_back - zero_back": "two_back - zero_back"})
    drop = next(w for w in audit.whatif if w["fix"].startswith("drop modelled rest"))
    z = drop["contrasts"]["zero_back"]
    assert drop["worse"] == ["zero_back"]
    assert z["max_structural_bias_sd_after"] > z["max_structural_bias_sd_before"]
    assert drop["note"].startswith("This fix makes zero_back worse: zero_back: largest bias")
    assert all(not w["worse"] and "note" not in w for w in audit.whatif if w is not drop)


def test_a_distinct_but_tiny_part_is_no_answer():
    """A part with |t| >= 3 but below the warn size (0.5 × the estimate's SE) is not named."""
    gs = _gs(total=0.01, t=0.3, parts={"run_edge": 0.02, "fixation": -0.01},
             ts={"run_edge": 4.2, "fixation": 0.1}, kinds={"run_edge": "cause", "fixation": "term"},
             ses={"run_edge": 0.005, "fixation": 0.1})
    gs["se"] = 0.06
    assert "no cause in the design moves it" in measured_answer("c", gs)
    assert "no cause found" in measured_sentence(_measured(gs))
    gs["se"] = 0.02   # now 0.02 % is at least half the estimate's SE: named
    assert "the run-edge scans contribute +0.02 %" in measured_answer("c", gs)
    assert "run-edge scans 0.0200 %" in measured_sentence(_measured(gs))


def test_measured_section_shows_the_largest_distinct_cause_part():
    from nbdiag.report.measured import measured_view

    rec = RunRecord.from_json(minimal_record(
        measured={"signals": {"global_signal": {}}},
        contrasts={"zero_back": contrast("zero_back", measured={"global_signal": _gs()}),
                   "quiet": contrast("quiet", measured={"global_signal": _gs(ts={"nonsteady": -1.0, "fixation": 8.0,
                                                                                 "condition:zero_back": -1.0})})}))
    rows = {r["contrast"]: r for r in measured_view(rec)["rows"]}
    assert rows["zero_back"]["top_class"] == "non-steady-state volumes" and rows["zero_back"]["top_value"] == -0.48
    assert rows["quiet"]["top_class"] is None      # the fixation term (t = 8) is no answer
