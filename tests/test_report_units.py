"""Evidence tables format each number from the unit its field name states, never from its size.

``report/summary.py``: ``*_percent`` / ``*_pct`` are already percent, ``*_fraction`` /
``*_share`` are fractions of 1 (×100), ``*_sd`` are σ, ``*_s`` seconds, ``*_hz`` Hz.
"""

from __future__ import annotations

import pytest

from nbdiag.report.summary import FRACTION, _unit, evidence_rows


def _values(evidence, **kwargs):
    return {r["name"]: r["value"] for r in evidence_rows(evidence, **kwargs)}


def test_percent_fields_are_shown_as_they_are():
    # the sensitivity evidence of issue 21: -0.678 % printed as -67.8 % before
    rows = _values({"bias_percent": -0.678, "noise_sd_percent": 0.22, "residual_sd_percent": 1.4,
                    "effect_required_pct": 0.5, "percent_excess_nonsteady": 3.25})
    assert rows == {"bias_percent": "-0.678 %", "noise_sd_percent": "0.220 %", "residual_sd_percent": "1.40 %",
                    "effect_required_pct": "0.500 %", "percent_excess_nonsteady": "3.25 %"}


def test_fractions_are_shown_times_100_whatever_their_size():
    rows = _values({"negative_weight_share": 0.484, "mask_share": 2.5, "fraction": 0.004, "edge_share": -1.7,
                    "nested": {"tail_share": 1.6, "mask_mean": 0.3}})
    # 2.5 and -1.7 are fractions too (a class larger than the total): 250 %, -170 %
    assert rows == {"negative_weight_share": "48.4 %", "mask_share": "250 %", "fraction": "0.400 %",
                    "edge_share": "-170 %", "nested.tail_share": "160 %", "nested.mask_mean": "0.300"}


def test_sd_seconds_hz_and_the_bias_unit_come_from_the_name():
    rows = _values({"bias_sd": -8.0, "noise_sd": 0.5,
                    "short_gap_seconds": 6.0, "current_cutoff_s": 128.0, "recommended_high_pass_hz": 0.008,
                    "bias": -0.976, "unit": "% signal", "n_scans": 120})
    assert rows == {"bias_sd": "-8.00 σ", "noise_sd": "0.500 σ",
                    "short_gap_seconds": "6.00 s", "current_cutoff_s": "128 s",
                    "recommended_high_pass_hz": "0.00800 Hz", "bias": "-0.976 % signal", "n_scans": "120"}


@pytest.mark.parametrize("key, unit", [("baseline_fraction", FRACTION), ("share", FRACTION), ("sd_percent", "%"),
                                       ("pct", "%"), ("duration", ""), ("a.b_sd", "σ"), ("max_structural_bias_sd_before", "σ"), ("run_end_s", "s")])
def test_unit_of_a_field_name(key, unit):
    assert _unit(key, {}) == unit


def test_thresholds_and_margins_use_the_unit_of_the_value_they_bound():
    rows = evidence_rows({"negative_weight_share": 0.484, "warn_at": 0.25}, "warn")
    assert (rows[0]["value"], rows[0]["threshold"], rows[0]["margin"]) == ("48.4 %", "warn_at 25 %", "+23.4 points")
    rows = evidence_rows({"bias_percent": 2.0, "warn_at": 1.5}, "warn")
    assert (rows[0]["value"], rows[0]["threshold"], rows[0]["margin"]) == ("2.00 %", "warn_at 1.5 %", "+0.5 points")


def test_the_rendered_report_prints_each_evidence_number_in_its_unit(tmp_path):
    """End to end (issue 21): a sensitivity finding whose bias is −0.678 % and noise 0.22 % shows
    −0.678 % and 0.220 % in the subject report's evidence table, never ×100."""
    import re

    from report_examples import example_run

    from nbdiag.report.subject import render_subject_report

    rec, design = example_run("01", "nortdur")
    rec["findings"] = [{"code": "baseline_short_gaps", "severity": "warn", "contrast": "zero_back",
                        "title": "Short gaps", "message": "m",
                        "evidence": {"bias_sd": -3.08, "bias_percent": -0.678, "noise_sd_percent": 0.22,
                                     "negative_weight_share": 0.484, "source": "pre_block"},
                        "score": None, "fix": None}]
    rec["contrasts"]["zero_back"]["findings"] = ["baseline_short_gaps"]
    html = render_subject_report("01", [rec], {(rec["run"]["prefix"], "nortdur"): design}, tmp_path).read_text()
    cells = dict(re.findall(r'<td class="mono">([a-z_]+)</td><td class="n">([^<]*)</td>', html))
    assert cells["bias_percent"] == "-0.678 %" and cells["noise_sd_percent"] == "0.220 %"
    assert cells["negative_weight_share"] == "48.4 %" and cells["bias_sd"] == "-3.08 σ"
    assert "-67.8 %" not in html and "22.0 %" not in html


def test_a_measured_maximum_is_a_value_in_sigma_not_a_threshold_in_percent():
    """``measured_max_bias_sd`` (the largest measured bias) was read as a threshold because its name
    says ``max`` and printed in the unit of the number beside it: ``(measured_max_bias_sd 25.2666 %)``."""
    from nbdiag.record.model import FindingRecord
    from nbdiag.report.summary import key_number

    ev = {"volumes": [0, 1, 2, 3], "threshold": "any flagged volume", "measured_max_bias_sd": 25.2666,
          "measured_contrast": "zero_back", "measured_bias_percent": -0.678}
    finding = FindingRecord(code="nonsteady_unhandled", severity="fail", title="", message="", evidence=ev,
                            contrast=None, score=None, fix=None)
    assert key_number(finding) == \
        "measured_max_bias_sd 25.3 σ"
    assert _values(ev)["measured_max_bias_sd"] == "25.3 σ" and _values(ev)["measured_bias_percent"] == "-0.678 %"
    # a real threshold whose name states its unit is shown in that unit, not in the bounded value's
    rows = evidence_rows({"bias_percent": -0.9, "max_bias_sd": 2.0}, "warn")
    assert (rows[0]["name"], rows[0]["value"], rows[0]["threshold"], rows[0]["margin"]) == \
        ("bias_percent", "-0.900 %", "max_bias_sd 2 σ", "")   # no margin between % and σ
