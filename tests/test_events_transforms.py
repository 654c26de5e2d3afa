"""Events: reading errors, drop / rename / rtdur / plugin transforms and what leaves the model."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from nbdiag.config import EventSettings
from nbdiag.core.errors import InputError
from nbdiag.inputs.events import events_outside_run, load_plugin, read_events, transform_events


def _events() -> pd.DataFrame:
    return pd.DataFrame({
        "onset": [0.0, 10.0, 20.0, 30.0, 40.0],
        "duration": [2.0, 2.0, 2.0, 2.0, 2.0],
        "trial_type": ["INSTRUCTION", "0BACK", "2BACK", "0BACK", "2BACK"],
        "response_time": [np.nan, 0.5, 0.8, np.nan, 1.1],
    })


def _write(tmp_path, text: str, name: str = "events.tsv"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, message", [
    ("onset,duration\n1,2\n", "not tab-separated"),
    ("onset\ttrial_type\n1\ta\n", "no 'duration' column"),
    ("onset\tduration\n1\tx\n", "non-numeric 'duration'"),
    ("onset\tduration\n1\t-2\n", "negative duration"),
    ("onset\tduration\n", "no rows"),
])
def test_read_events_names_the_problem(tmp_path, text, message):
    with pytest.raises(InputError, match=message) as info:
        read_events(_write(tmp_path, text))
    assert "events.tsv" in str(info.value)


def test_read_events_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_events(tmp_path / "nope.tsv")


def test_drop_moves_rows_to_unmodeled_and_rename_applies_after():
    table = _events()
    res = transform_events(table, EventSettings(drop=("INSTRUCTION",), rename={"0BACK": "zero_back",
                                                                              "2BACK": "two_back"}))
    assert list(res.events["trial_type"]) == ["zero_back", "two_back", "zero_back", "two_back"]
    assert list(res.unmodeled["trial_type"]) == ["INSTRUCTION"]
    assert list(res.unmodeled["reason"]) == ["dropped by events drop setting"]
    assert res.unmodeled["onset"].tolist() == [0.0] and res.unmodeled["duration"].tolist() == [2.0]
    assert list(table["trial_type"])[0] == "INSTRUCTION"  # input not modified
    # rt events: one per responded trial, durations = response times
    assert res.rt_events["duration"].tolist() == [0.5, 0.8, 1.1]
    assert res.findings == ()


def test_not_identifier_trial_types_and_missing_trial_type_are_findings():
    res = transform_events(_events(), EventSettings())
    (f,) = [f for f in res.findings if f.code == "trial_type_not_identifier"]
    assert f.evidence["trial_types"] == ["0BACK", "2BACK"]
    table = _events()
    table.loc[1, "trial_type"] = np.nan
    table.loc[0, "onset"] = -1.0
    res = transform_events(table, EventSettings(rename={"0BACK": "a", "2BACK": "b"}))
    codes = sorted(f.title for f in res.findings)
    assert codes == ["Events with negative onsets", "Events without a trial_type"]
    assert res.unmodeled["reason"].tolist() == ["trial_type is n/a"]
    assert len(res.events) == 4
    res = transform_events(table.drop(columns="trial_type"), EventSettings())
    assert [f.title for f in res.findings][-1] == "No trial_type column"


def test_rtdur_transform_and_its_missing_column():
    res = transform_events(_events(), EventSettings(transforms=("rtdur",), rename={"0BACK": "a", "2BACK": "b"}))
    rt = res.events[res.events["trial_type"] == "RTDur"]
    assert rt["duration"].tolist() == [0.5, 0.8, 1.1]
    assert rt["onset"].tolist() == [10.0, 20.0, 40.0]
    assert res.events["onset"].is_monotonic_increasing
    with pytest.raises(InputError, match="response-time column"):
        transform_events(_events().drop(columns="response_time"), EventSettings(transforms=("rtdur",)))


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    pkg = tmp_path / "labplugins"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "ev.py").write_text(textwrap.dedent("""
        import pandas as pd

        def only_2back(events):
            return events[events["trial_type"] != "0BACK"]

        def broken(events):
            raise RuntimeError("boom")

        def not_a_frame(events):
            return [1, 2]

        CONSTANT = 3
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "labplugins.ev"
    for name in [m for m in sys.modules if m.startswith("labplugins")]:
        del sys.modules[name]


def test_plugin_transform_removed_rows_are_unmodeled(plugin):
    res = transform_events(_events(), EventSettings(transforms=(f"{plugin}:only_2back",)))
    assert set(res.events["trial_type"]) == {"INSTRUCTION", "2BACK"}
    assert res.unmodeled["trial_type"].tolist() == ["0BACK", "0BACK"]
    assert set(res.unmodeled["reason"]) == {f"removed by transform {plugin}:only_2back"}
    assert load_plugin(f"{plugin}:only_2back").__name__ == "only_2back"


@pytest.mark.parametrize("spec, message", [
    ("labplugins.nothere:f", "cannot import events transform module"),
    ("labplugins.ev:missing", "has no function 'missing'"),
    ("labplugins.ev:CONSTANT", "has no function 'CONSTANT'"),
    ("labplugins.ev:broken", "failed: RuntimeError: boom"),
    ("labplugins.ev:not_a_frame", "must return a DataFrame"),
])
def test_plugin_errors_name_the_transform(plugin, spec, message):
    with pytest.raises(InputError, match=message):
        transform_events(_events(), EventSettings(transforms=(spec,)))


def test_events_outside_run():
    ft = np.arange(10) * 2.0
    ev = pd.DataFrame({"onset": [-1.0, 5.0, 17.0, 25.0], "duration": [1.0, 1.0, 8.0, 1.0],
                       "trial_type": ["a", "b", "c", "d"]})
    found = events_outside_run(ev, ft, 2.0, 0.0)
    assert [f.severity for f in found] == ["warn", "info"]
    assert found[0].evidence["n_after_end"] == 1 and found[0].evidence["n_before_min_onset"] == 1
    assert found[0].evidence["trial_types"] == ["a", "d"] and found[0].evidence["run_end_s"] == 20.0
    assert found[1].evidence["n_truncated"] == 1
    assert events_outside_run(ev.iloc[0:0], ft, 2.0, 0.0) == []


def test_no_response_times_give_no_rt_events_and_a_plugin_may_drop_trial_type(tmp_path, monkeypatch):
    events = _events().assign(response_time=np.nan)
    assert transform_events(events, EventSettings()).rt_events is None
    # a plugin that returns onsets and durations only: nothing to check against identifiers
    module = tmp_path / "only_timing_plugin.py"
    module.write_text("def run(df):\n    return df[['onset', 'duration']]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    result = transform_events(_events(), EventSettings(transforms=("only_timing_plugin:run",)))
    assert list(result.events.columns) == ["onset", "duration"]
    assert not [f for f in result.findings if f.code == "trial_type_not_identifier"]
