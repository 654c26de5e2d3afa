"""A fast slice of the verdict battery (``benchmarks/verdict_battery.py``, issue 20).

Each case is a randomized simulated study (TR, blocked vs event-related, block and gap lengths, runs,
noise, confound set drawn from its seed) whose truth is proved by nilearn's ``FirstLevelModel`` (flaw in
place vs fixed). The case is right when (a) the first warn/fail finding on every contrast the flaw moves by
at least 1 SE names the true cause, and nothing is flagged where nothing moves; (b) the measured size is
within 15 % of nilearn's change; (c) the run fails only for an effect at the fail size. The whole battery
(README: "How often the verdicts are right") is slower; these seeds keep every family under test.
"""

import io
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import verdict_battery as vb  # noqa: E402

from nbdiag.explain.audit import audit_design  # noqa: E402
from nbdiag.thresholds import Thresholds  # noqa: E402

CASES = [
    ("cue_present", 201), ("cue_present", 202),
    ("cue_absent", 200), ("cue_absent", 201),
    ("nss_flagged", 200), ("nss_flagged", 201),
    ("nss_unflagged", 200), ("nss_unflagged", 202),
    ("motion_chance", 200), ("motion_chance", 201),
    ("motion_locked", 201), ("motion_locked", 204),
    ("spikes_harmless", 200), ("spikes_harmless", 203),
    ("spikes_harmful", 200), ("spikes_harmful", 203),
    ("true_deactivation", 200), ("true_deactivation", 201),
    ("settling", 200),
    ("tiled", 200), ("tiled", 201),
    ("forum", 201), ("forum", 202),
    ("clean", 201), ("clean", 202),
]


@pytest.mark.parametrize("family,seed", CASES)
def test_verdict_is_right(family, seed):
    th = Thresholds()
    study = vb.make_study(family, seed)
    for run in study.runs:
        audit = audit_design(run.design, run.roles, run.context, vb.CONTRASTS, th)
        right, expected, got, why, _ = vb.score_run(family, run, audit, th)
        assert right, (family, seed, study.params, expected, got, why)


def test_every_family_is_in_the_slice_and_the_truth_is_nilearns():
    assert {f for f, _ in CASES} == set(vb.FAMILIES)
    # the proof is a nilearn fit: a flaw that is in the data moves the contrasts it biases; a clean study's
    # 'fixed' fit is the same fit (no change)
    nss = vb.make_study("nss_flagged", 200).runs[0]
    assert abs(nss.proved["zero_back"]) > nss.se["zero_back"]
    clean = vb.make_study("clean", 201).runs[0]
    assert all(abs(v) < 1e-9 for v in clean.proved.values())


def test_scoring_catches_a_wrong_verdict():
    """The scorer is not vacuous: a flaw the audit is not shown (measured signals removed) is missed."""
    from dataclasses import replace

    th = Thresholds()
    run = vb.make_study("nss_unflagged", 200).runs[0]
    blind = replace(run.context, measured_signals=None)
    audit = audit_design(run.design, run.roles, blind, vb.CONTRASTS, th)
    right, _, _, why, quiet = vb.score_run("nss_unflagged", run, audit, th)
    assert not right and not quiet and any("expected transient" in w for w in why)


def test_battery_table_and_totals():
    out = io.StringIO()
    res = vb.run_battery(2, 3, families=("clean", "forum"), out=out)
    text = out.getvalue()
    assert res["n"] == 2 and "right:" in text and text.count("\n") >= 5
    assert {r["family"] for r in res["rows"]} == {"clean", "forum"}
