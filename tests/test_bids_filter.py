"""``--bids-filter-file`` (fMRIPrep's format): selects exactly the runs its ``bold`` filter accepts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from nbdiag.cli import main
from nbdiag.config import ModelSettings
from nbdiag.core.errors import SettingsError
from nbdiag.inputs.bids import discover_runs
from nbdiag.inputs.bids_filter import load_bids_filter, parse_bids_filter

MODEL = ModelSettings(task_label="nback", space_label="MNI152NLin6Asym", derivatives_folder="derivatives/fmriprep",
                      img_filters=(("desc", "preproc"),))


def _expected(demo_bids: Path, keep) -> list[str]:
    """Independent reference: parse the file names with a regular expression, apply ``keep``."""
    out = []
    for path in sorted((demo_bids / "derivatives" / "fmriprep").rglob("*_desc-preproc_bold.nii.gz")):
        ents = dict(re.findall(r"([a-zA-Z]+)-([a-zA-Z0-9]+)", path.name))
        if keep(ents):
            out.append(path.name)
    return out


CASES = {
    "session_1": ({"bold": {"session": "1"}}, lambda e: e.get("ses") == "1"),
    "run_int_list": ({"bold": {"run": [1, 2]}}, lambda e: int(e["run"]) in (1, 2)),
    "no_acq": ({"bold": {"acquisition": None}}, lambda e: "acq" not in e),
    "any_acq": ({"bold": {"acquisition": "*"}}, lambda e: "acq" in e),
    "subjects_and_session": ({"bold": {"subject": ["02", "04"], "session": "2"}},
                             lambda e: e["sub"] in ("02", "04") and e.get("ses") == "2"),
    "other_queries_ignored": ({"t1w": {"session": "2"}, "bold": {"session": ["1", "2"], "acquisition": None}},
                              lambda e: "acq" not in e),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_filter_selects_exactly_the_filtered_runs(demo_bids, tmp_path, case):
    data, keep = CASES[case]
    path = tmp_path / "filter.json"
    path.write_text(json.dumps(data))
    runs, notes = discover_runs(demo_bids, MODEL, bids_filter=load_bids_filter(path))
    assert sorted(r.bold.name for r in runs) == _expected(demo_bids, keep)
    assert any("bids filter file filter.json" in n for n in notes)
    everything, _ = discover_runs(demo_bids, MODEL)
    assert len(everything) == 7 and len(runs) >= 1  # the filter never invents runs; no case selects none


def test_filter_gives_task_and_space_to_the_cli(demo_bids, tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text('[model]\nderivatives_folder = "derivatives/fmriprep"\nimg_filters = [["desc", "preproc"]]\n'
                      'confounds_strategy = ["motion"]\nconfounds_motion = "basic"\n')
    flt = tmp_path / "f.json"
    flt.write_text(json.dumps({"bold": {"task": "nback", "space": "MNI152NLin6Asym", "subject": "02",
                                        "session": "2"}}))
    out = tmp_path / "out"
    code = main([str(demo_bids), str(out), "participant", "--config", str(config), "--bids-filter-file", str(flt),
                 "--no-reports"])
    err = capsys.readouterr().err
    assert code == 0, err
    records = sorted(p.name for p in out.rglob("*_nbdiag.json"))
    assert records == ["sub-02_ses-2_task-nback_run-01_desc-default_nbdiag.json"]
    # a filter that contradicts --task is refused
    code = main([str(demo_bids), str(tmp_path / "out2"), "participant", "--config", str(config),
                 "--bids-filter-file", str(flt), "--task", "other"])
    assert code == 2 and "bold.task is 'nback' but task_label is 'other'" in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [
    ('{"blod": {"session": "1"}}', "unknown query 'blod' (did you mean 'bold'?)"),
    ('{"bold": {"sesion": "1"}}', "unknown entity 'sesion' (did you mean 'session'?)"),
    ('{"bold": {"session": {"a": 1}}}', "bold.session: invalid value"),
    ('{"bold": {"run": []}}', "at least one label"),
    ('{"bold": ["session"]}', "expected an object of entity filters"),
    ('["bold"]', "expected a JSON object"),
    ('{"bold": {"session": "1",}}', "not valid JSON"),
])
def test_bad_filter_file_is_refused(demo_bids, tmp_path, capsys, content, message):
    flt = tmp_path / "bad.json"
    flt.write_text(content)
    code = main([str(demo_bids), str(tmp_path / "out"), "participant", "--task", "nback",
                 "--bids-filter-file", str(flt)])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_missing_filter_file_and_parse_api(tmp_path):
    with pytest.raises(SettingsError, match="file not found"):
        load_bids_filter(tmp_path / "nope.json")
    flt = parse_bids_filter({"bold": {"echo": 1, "extension": ".nii.gz"}})
    assert flt.matches({"sub": "01", "echo": "01"}, extension=".nii.gz")
    assert not flt.matches({"sub": "01", "echo": "2"}, extension=".nii.gz")
    assert not flt.matches({"sub": "01"}, extension=".nii.gz")
