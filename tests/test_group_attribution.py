"""Group attribution table from hand-built records: means, SEM, t, shares, zero fill, skipped records."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from nbdiag.group.attribution import COLUMNS, attribution_table
from report_examples import contrast, minimal_record, sensitivity


def _rec(sub, gs_total, by_class, bias, status="pass"):
    rec = minimal_record(f"sub-{sub}_task-t", "v", status, contrasts={
        "c": contrast("c", measured={"global_signal": {"estimate_ols": gs_total, "by_class": by_class},
                                     "csf": {"in_model": True, "estimate_ols": 9.0}},
                      sensitivity=[sensitivity("s1", cause="drift", bias=bias),
                                   sensitivity("s2", cause="drift", bias=None)])})
    rec["run"]["subject"] = ""   # the subject is read from the entities when run.subject is empty
    return rec


def _no_subject():
    rec = minimal_record("task-t", "v", contrasts={})
    rec["run"].update(subject="", entities={})
    return rec


def test_attribution_table_by_hand():
    recs = [_rec("01", 2.0, {"fixation": 1.0}, 0.5),
            _rec("02", 4.0, {}, 1.5),                       # no fixation scans: counts as 0
            _rec("03", 100.0, {"fixation": 50.0}, 9.0, status="error"),   # skipped
            _no_subject()]  # no subject: skipped
    df = attribution_table(recs)
    assert list(df.columns) == COLUMNS
    assert df["source"].tolist() == ["measured:global_signal:total", "measured:global_signal:fixation",
                                     "predicted:drift"]
    rows = {r.source: r for r in df.itertuples()}
    total = rows["measured:global_signal:total"]
    assert (total.n_subjects, total.mean) == (2, 3.0)
    assert total.sem == pytest.approx(math.sqrt(2.0) / math.sqrt(2))  # std(ddof=1) of [2, 4] = sqrt(2)
    assert total.t == pytest.approx(3.0)
    # issue 20: t = 3 with 2 subjects is below t(0.975, 1) = 12.7, so the total is not distinguishable
    # from zero and no share is given (a share of a total that may be 0 means nothing)
    assert not total.distinct and pd.isna(total.share) and total.kind == "total"
    fix = rows["measured:global_signal:fixation"]
    assert fix.mean == 0.5 and pd.isna(fix.share) and fix.kind == "term"
    drift = rows["predicted:drift"]
    assert drift.mean == 1.0 and pd.isna(drift.share) and drift.kind == "cause" and not drift.distinct
    # three subjects with a clear total: shares are given again
    recs3 = [_rec("01", 2.0, {"fixation": 1.0}, 0.5), _rec("02", 2.2, {"fixation": 1.0}, 0.5),
             _rec("03", 2.1, {"fixation": 1.0}, 0.5)]
    rows3 = {r.source: r for r in attribution_table(recs3).itertuples()}
    assert rows3["measured:global_signal:total"].distinct
    assert rows3["measured:global_signal:fixation"].share == pytest.approx(1.0 / 2.1)


def test_attribution_table_single_subject_and_empty():
    df = attribution_table([_rec("01", 2.0, {}, 0.0)])
    total = df.iloc[0]
    assert total["n_subjects"] == 1 and pd.isna(total["sem"]) and pd.isna(total["t"])
    assert attribution_table([]).empty
