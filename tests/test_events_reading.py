"""Events reading edge cases not covered elsewhere (nbdiag.inputs.events)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nbdiag.core.errors import InputError
from nbdiag.inputs.events import events_outside_run, load_plugin, read_events, rtdur
from nbdiag.core.limits import Limits


def _write(tmp_path, data: bytes | str, name="events.tsv"):
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


@pytest.mark.parametrize("data, message, found", [
    (b"", "events file is empty", "an empty file"),
    (b"onset\tduration\n1\t\xff\xfe\n", "events file is not UTF-8 text (byte", "undecodable bytes"),
    ('onset\tduration\n1\t2\n3\t4\t5\t6\n', "cannot read events file as TSV (Error tokenizing data",
     "a file pandas cannot parse"),
    ("onset,duration\n1,2\n", "events file is not tab-separated", "one comma-separated column"),
    ("onset\tduration\n1\tn/a\n", "has a missing or non-numeric 'duration'", "nan"),
    ("onset\tduration\n1\t2\ninf\t1\n", "events file has an infinite 'onset'", "inf"),
    ("onset\tduration\n1\t-2\n", "events file has a negative duration", "-2.0"),
])
def test_read_events_problems(tmp_path, data, message, found):
    path = _write(tmp_path, data)
    with pytest.raises(InputError) as exc:
        read_events(path)
    assert exc.value.file == str(path)
    assert message in exc.value.message and exc.value.found == found, (exc.value.message, exc.value.found)


def test_read_events_row_limit(tmp_path):
    path = _write(tmp_path, "onset\tduration\n" + "".join(f"{i}\t1\n" for i in range(5)))
    with pytest.raises(InputError) as exc:
        read_events(path, Limits(max_event_rows=3))
    assert exc.value.code == "input_too_large" and exc.value.found == "more than 3 rows"
    assert exc.value.message.startswith("event rows: more than 3 is above the limit of 3 ([limits] max_event_rows)")
    assert len(read_events(path, Limits(max_event_rows=5))) == 5


def test_read_events_folder(tmp_path):
    with pytest.raises(InputError) as exc:
        read_events(tmp_path)
    assert exc.value.found == "a file pandas cannot parse" and "IsADirectoryError" in exc.value.message


def test_rtdur_missing_column_and_plugin_errors():
    with pytest.raises(KeyError):
        rtdur(pd.DataFrame({"onset": [1.0], "duration": [1.0]}), rt_column="rt")
    with pytest.raises(InputError, match=r"cannot import events transform module 'no_such_mod_xyz'"):
        load_plugin("no_such_mod_xyz:f")
    with pytest.raises(InputError, match=r"events transform 'json:nothing_here': module has no function"):
        load_plugin("json:nothing_here")


def test_events_outside_run_long_durations():
    ft = np.arange(10) * 2.0  # run of 20 s
    ev = pd.DataFrame({"onset": [2.0, 4.0], "duration": [1.0, 5000.0], "trial_type": ["a", "b"]})
    found = {f.code: f for f in events_outside_run(ev, ft, 2.0, 0.0)}
    assert set(found) == {"events_invalid", "events_outside_run"}
    assert found["events_outside_run"].evidence["n_truncated"] == 1
    f = found["events_invalid"]
    assert f.evidence["n_events"] == 1 and "e.g. 5000 s" in f.message
    assert f.evidence["max_duration_s"] == 5000.0 and f.evidence["run_length_s"] == 20.0
    assert events_outside_run(ev.iloc[:0], ft, 2.0, 0.0) == []
