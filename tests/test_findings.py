"""rank_findings: deterministic order (severity, score to 9 decimals, code, contrast)."""

import random

from nbdiag.core.findings import Finding, rank_findings


def _f(code, severity="warn", score=0.0, contrast=None, title="t"):
    return Finding(code=code, severity=severity, title=title, message="m", score=score, contrast=contrast)


def test_severity_then_score_first():
    fs = [_f("a", "info", 9.0), _f("b", "fail", 0.1), _f("c", "warn", 2.0), _f("d", "warn", 3.0)]
    assert [f.code for f in rank_findings(fs)] == ["b", "d", "c", "a"]


def test_last_bit_score_differences_tie_and_break_by_code_then_contrast():
    x = 0.1 + 0.2                      # 0.30000000000000004
    y = 0.3                            # mathematically equal, differs in the last bit
    assert x != y
    fs = [_f("zeta", score=x, contrast="c2"), _f("alpha", score=y, contrast="c2"),
          _f("alpha", score=x, contrast=None), _f("alpha", score=y, contrast="c1")]
    order = [(f.code, f.contrast) for f in rank_findings(fs)]
    assert order == [("alpha", None), ("alpha", "c1"), ("alpha", "c2"), ("zeta", "c2")]


def test_order_is_independent_of_input_order_up_to_full_key_ties():
    fs = [_f(code, sev, score, contrast)
          for code in ("vif_high", "drift_overlap", "baseline_scarce")
          for sev in ("info", "warn")
          for score in (0.0, 1.0, 1.0 + 1e-12)
          for contrast in (None, "a", "a - b")]
    ref = [(f.code, f.severity, round(f.score, 9), f.contrast) for f in rank_findings(fs)]
    rng = random.Random(0)
    for _ in range(20):
        shuffled = fs[:]
        rng.shuffle(shuffled)
        assert [(f.code, f.severity, round(f.score, 9), f.contrast) for f in rank_findings(shuffled)] == ref


def test_stable_for_identical_keys():
    first, second = _f("x", title="first"), _f("x", title="second")
    assert [f.title for f in rank_findings([first, second])] == ["first", "second"]
    assert [f.title for f in rank_findings([second, first])] == ["second", "first"]


def test_real_score_gap_above_rounding_still_orders():
    # explain.py makes a cause outrank its consequence by +1e-9
    fs = [_f("consequence", score=0.75), _f("zz_cause", score=0.75 + 1e-9)]
    assert [f.code for f in rank_findings(fs)] == ["zz_cause", "consequence"]


def test_status_rank_orders_statuses_and_rejects_others():
    import pytest

    from nbdiag.core.findings import STATUS_BY_SEVERITY, STATUSES, status_rank

    assert sorted(STATUSES, key=status_rank) == ["pass", "warn", "fail", "error"]
    assert set(STATUS_BY_SEVERITY.values()) == set(STATUSES)
    with pytest.raises(ValueError, match="status must be one of"):
        status_rank("info")
