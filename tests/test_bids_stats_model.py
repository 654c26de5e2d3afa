"""``--model model.json`` (BIDS Stats Models): the run node gives the design the equivalent TOML gives."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nbdiag.cli import main
from nbdiag.demo.run import DEMO_DIR
from nbdiag.core.errors import InputError, SettingsError
from nbdiag.inputs.bids_stats_model import design_inputs, load_stats_model, parse_stats_model

MOTION = ["rot_x", "rot_y", "rot_z", "trans_x", "trans_y", "trans_z"]  # load_confounds' order for motion=basic
BSM = {
    "Name": "nback", "BIDSModelVersion": "1.0.0", "Input": {"Task": ["nback"]},
    "Nodes": [{
        "Level": "Run", "Name": "run", "GroupBy": ["run", "subject"],
        "Transformations": {"Transformer": "pybids-transforms-v1", "Instructions": [
            {"Name": "Factor", "Input": ["trial_type"]},
            {"Name": "Convolve", "Input": ["trial_type.0BACK", "trial_type.2BACK", "trial_type.INSTRUCTION"],
             "Model": "spm"}]},
        "Model": {"Type": "glm", "X": ["trial_type.0BACK", "trial_type.2BACK", "trial_type.INSTRUCTION", *MOTION, 1],
                  "Options": {"HighPassFilterCutoffHz": 0.005}},
        "DummyContrasts": {"Test": "t"},
    }],
}
TOML = """
[model]
task_label = "nback"
space_label = "MNI152NLin6Asym"
derivatives_folder = "derivatives/fmriprep"
img_filters = [["desc", "preproc"]]
hrf_model = "spm"
drift_model = "cosine"
high_pass = 0.005
slice_time_ref = 0.0
confounds_strategy = ["motion"]
confounds_motion = "basic"
confounds_demean = false

[events]
rename = { "0BACK" = "trial_type.0BACK", "2BACK" = "trial_type.2BACK", "INSTRUCTION" = "trial_type.INSTRUCTION" }
"""
COMMON = ["--space", "MNI152NLin6Asym", "--derivatives", "derivatives/fmriprep", "--img-filter", "desc", "preproc",
          "--no-reports", "--participant-label", "01", "03"]


def _designs(out: Path) -> dict[str, pd.DataFrame]:
    return {p.name.split("_desc-")[0]: pd.read_csv(p, sep="\t") for p in sorted(out.rglob("*_design.tsv"))}


def test_bsm_equals_equivalent_toml(demo_bids, tmp_path, capsys):
    model = tmp_path / "model.json"
    model.write_text(json.dumps(BSM))
    toml = tmp_path / "same.toml"
    toml.write_text(TOML)
    assert main([str(demo_bids), str(tmp_path / "bsm"), "participant", "--model", str(model), *COMMON]) == 0
    assert main([str(demo_bids), str(tmp_path / "toml"), "participant", "--config", str(toml), "--no-reports",
                 "--participant-label", "01", "03"]) == 0
    ours, reference = _designs(tmp_path / "bsm"), _designs(tmp_path / "toml")
    assert sorted(ours) == sorted(reference) and len(ours) == 2
    for name, design in reference.items():
        assert list(ours[name].columns) == list(design.columns)
        assert {"trial_type.0BACK", "trans_x", "drift_1", "constant"} <= set(design.columns)
        np.testing.assert_allclose(ours[name].to_numpy(), design.to_numpy(), atol=1e-8, rtol=0)
    record = json.loads(next((tmp_path / "bsm").rglob("sub-01*_nbdiag.json")).read_text())
    # DummyContrasts without a list: one contrast per X column (as pybids builds them), 1 -> the constant
    assert list(record["contrasts"]) == [*BSM["Nodes"][0]["Model"]["X"][:-1], "intercept"]
    vec = record["contrasts"]["trial_type.0BACK"]["vector"]
    assert vec["trial_type.0BACK"] == 1 and sum(abs(v) for v in vec.values()) == 1
    assert record["contrasts"]["intercept"]["vector"]["constant"] == 1
    assert record["settings"]["stats_model"]["transformations"] == ["Factor", "Convolve"]
    assert record["settings"]["slice_time_ref"]["value"] == 0.0


@pytest.mark.parametrize("name", ["Orthogonalize", "Lag", "Demean"])
def test_unsupported_transformation_refused_by_name(demo_bids, tmp_path, capsys, name):
    data = copy.deepcopy(BSM)
    data["Nodes"][0]["Transformations"]["Instructions"].append({"Name": name, "Input": ["trans_x"]})
    model = tmp_path / "model.json"
    model.write_text(json.dumps(data))
    code = main([str(demo_bids), str(tmp_path / "out"), "participant", "--model", str(model), *COMMON])
    err = capsys.readouterr().err
    assert code == 2
    assert f"transformation {name!r} is not supported" in err and "Factor, Convolve, Select" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("change, message", [
    (lambda d: d.pop("Nodes"), "not a valid BIDS Stats Model (bsmschema)"),
    (lambda d: d["Nodes"][0].update(Level="Subject"), "no node with Level 'Run'"),
    (lambda d: d["Nodes"][0]["Model"].update(HRF={"Variables": ["trial_type.0BACK"], "Model": "afni"}),
     "unknown HRF model 'afni'"),
    (lambda d: d["Nodes"][0]["Model"].update(Options={"LowPassFilterCutoffHz": 0.1}), "LowPassFilterCutoffHz"),
])
def test_bad_models_are_refused(tmp_path, change, message):
    data = copy.deepcopy(BSM)
    change(data)
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_stats_model(data, "m.json")


def test_select_rename_replace_scale_threshold_on_one_run():
    events = pd.DataFrame({"onset": [0.0, 10.0, 20.0, 30.0], "duration": [2.0, 2.0, 2.0, 2.0],
                           "trial_type": ["A", "B", "A", "C"], "rt": [0.5, np.nan, np.nan, 0.9]})
    fd = np.array([np.nan, 0.1, 0.9, 0.2, 0.6])
    confounds = pd.DataFrame({"framewise_displacement": fd, "trans_x": [1.0, 2.0, 3.0, 4.0, 5.0],
                              "trans_x_derivative1": [np.nan, 1, 1, 1, 1]})
    node, _, _ = parse_stats_model({
        "Name": "t", "BIDSModelVersion": "1.0.0",
        "Nodes": [{"Level": "Run", "Name": "run", "GroupBy": ["run"],
                   "Transformations": {"Transformer": "pybids-transforms-v1", "Instructions": [
                       {"Name": "Replace", "Input": ["trial_type"], "Replace": {"C": "A"}},
                       {"Name": "Factor", "Input": ["trial_type"]},
                       {"Name": "Rename", "Input": ["trial_type.A"], "Output": ["alpha"]},
                       {"Name": "Scale", "Input": ["trans_x"], "Output": ["trans_x_z"]},
                       {"Name": "Scale", "Input": ["rt"], "Rescale": False},
                       {"Name": "Threshold", "Input": ["framewise_displacement"], "Threshold": 0.5,
                        "Binarize": True, "Output": ["fd_spike"]},
                       {"Name": "Select", "Input": ["alpha", "rt", "trans_x_z", "fd_spike",
                                                    "framewise_displacement", "trans_x_derivative1"]},
                       {"Name": "Convolve", "Input": ["alpha", "rt"], "Model": "glover"}]},
                   "Model": {"Type": "glm", "X": ["alpha", "rt", "trans_x_z", "fd_spike", "framewise_displacement",
                                                  "trans_x_derivative1", 1]}}]}, "t.json")
    table, conf, unmodeled, notes = design_inputs(node, events, confounds)
    # Replace C -> A before Factor: alpha has the A rows and the former C row; B is not in X
    alpha = table[table["trial_type"] == "alpha"]
    assert list(alpha["onset"]) == [0.0, 20.0, 30.0] and list(alpha["modulation"]) == [1.0, 1.0, 1.0]
    rt = table[table["trial_type"] == "rt"]
    np.testing.assert_allclose(rt["modulation"], [-0.2, 0.2])  # demeaned (mean 0.7), not rescaled
    assert list(rt["onset"]) == [0.0, 30.0]
    assert list(unmodeled["trial_type"]) == ["B"] and list(unmodeled["reason"]) == ["not in the model's X"]
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    np.testing.assert_allclose(conf["trans_x_z"], (x - x.mean()) / x.std(ddof=1))
    # Threshold runs before FitLins' imputation: the NaN first value is not >= 0.5 -> 0
    np.testing.assert_allclose(conf["fd_spike"], [0, 0, 1, 0, 1])
    # FitLins: framewise_displacement's first value = mean of the non-zero values; derivative1 -> 0
    assert conf["framewise_displacement"][0] == pytest.approx(np.mean([0.1, 0.9, 0.2, 0.6]))
    assert conf["trans_x_derivative1"][0] == 0.0
    assert list(conf.columns) == ["trans_x_z", "fd_spike", "framewise_displacement", "trans_x_derivative1"]


def test_missing_variable_is_a_run_error_naming_it():
    node, _, _ = parse_stats_model(BSM, "m.json")
    events = pd.DataFrame({"onset": [0.0], "duration": [1.0], "trial_type": ["0BACK"]})
    with pytest.raises(InputError, match="trial_type.2BACK"):
        design_inputs(node, events, pd.DataFrame({c: np.zeros(3) for c in MOTION}))


def test_shipped_demo_model(demo_bids, tmp_path, capsys):
    path = DEMO_DIR / "model-nback_smdl.json"
    node, values, notes = load_stats_model(path)
    assert values["hrf_model"] == "glover" and values["high_pass"] == 0.005 and values["task_label"] == "nback"
    out = tmp_path / "out"
    code = main([str(demo_bids), str(out), "participant", "--model", str(path), "--derivatives", "derivatives/fmriprep",
                 "--img-filter", "desc", "preproc", "--participant-label", "01", "--no-reports"])
    assert code == 0, capsys.readouterr().err
    record = json.loads(next(out.rglob("*_nbdiag.json")).read_text())
    assert list(record["contrasts"]) == ["zero_back", "two_back", "twoBackMinusZeroBack"]
    # the non-steady-state outlier columns are in X: the flagged volumes are modelled, not left in the baseline
    assert "nonsteady_unhandled" not in {f["code"] for f in record["findings"]}


def test_contrast_typo_in_model_refused_before_any_run(demo_bids, tmp_path, capsys):
    data = copy.deepcopy(BSM)
    data["Nodes"][0]["Contrasts"] = [{"Name": "twoVsZero", "ConditionList": ["trial_type.2BACK", "trial_type.0BAK"],
                                      "Weights": [1, -1], "Test": "t"}]
    model = tmp_path / "model.json"
    model.write_text(json.dumps(data))
    code = main([str(demo_bids), str(tmp_path / "out"), "participant", "--model", str(model), *COMMON])
    err = capsys.readouterr().err
    assert code == 2
    assert "'trial_type.0BAK' is not a column of the design (did you mean 'trial_type.0BACK'?)" in err
    assert "1*trial_type.2BACK - 1*trial_type.0BAK" in err
    assert not (tmp_path / "out").exists()


def test_fitlins_style_model_is_read_as_pybids_reads_it():
    """FitLins' own test model: lower-case Level and Input, no Model.Type, an HRF next to Convolve."""
    data = {"Name": "test_model", "Description": "", "Input": {"task": "nback"},
            "Nodes": [{"Level": "run", "Name": "run", "GroupBy": ["run", "session", "subject"],
                       "Transformations": {"Transformer": "pybids-transforms-v1", "Instructions": [
                           {"Name": "Factor", "Input": ["trial_type"]},
                           {"Name": "Convolve", "Input": ["trial_type.0BACK", "trial_type.2BACK"], "Model": "spm"}]},
                       "Model": {"X": ["trial_type.0BACK", "trial_type.2BACK", "trans_x"],
                                 "HRF": {"Variables": ["trial_type.0BACK"], "Model": "DoubleGamma",
                                         "Parameters": {"PeakDelay": 3, "PeakDispersion": 6}}},
                       "DummyContrasts": {"Contrasts": ["trial_type.0BACK", "trial_type.2BACK"]},
                       "Contrasts": [{"Name": "two_gt_zero", "ConditionList": ["trial_type.2BACK", "trial_type.0BACK"],
                                      "Weights": [1, -1]}]}]}
    node, values, notes = parse_stats_model(data, "fitlins.json")
    assert values["task_label"] == "nback" and values["hrf_model"] == "spm" and values["drift_model"] is None
    assert list(node.contrasts) == ["trial_type.0BACK", "trial_type.2BACK", "two_gt_zero"]
    assert any("Model.Type" in n for n in notes) and any("BIDSModelVersion" in n for n in notes)
