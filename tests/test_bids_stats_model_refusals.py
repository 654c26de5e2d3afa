"""BIDS Stats Models: refusals named by path and node, HRF naming, transformations' error branches."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest

from nbdiag.core.errors import InputError, SettingsError
from nbdiag.inputs.bids_stats_model import design_inputs, load_stats_model, parse_stats_model

BASE = {"Name": "t", "BIDSModelVersion": "1.0.0",
        "Nodes": [{"Level": "Run", "Name": "run", "GroupBy": ["run", "subject"],
                   "Transformations": {"Transformer": "pybids-transforms-v1", "Instructions": [
                       {"Name": "Factor", "Input": ["trial_type"]},
                       {"Name": "Convolve", "Input": ["trial_type.*"], "Model": "spm"}]},
                   "Model": {"Type": "glm", "X": ["trial_type.A", "trial_type.B", 1],
                             "Options": {"HighPassFilterCutoffHz": 0.01}},
                   "Contrasts": [{"Name": "AvB", "ConditionList": ["trial_type.A", "trial_type.B"],
                                  "Weights": [1, "-1/1"], "Test": "t"}]}]}

EVENTS = pd.DataFrame({"onset": [0.0, 10.0, 20.0], "duration": [1.0, 1.0, 1.0], "trial_type": ["A", "B", "A"],
                       "rt": [0.4, "x", 0.5]})
CONF = pd.DataFrame({"trans_x": [0.0, 1.0, 2.0, 3.0], "const": [1.0, 1.0, 1.0, 1.0]})


def _model(change=None):
    data = copy.deepcopy(BASE)
    if change:
        change(data)
    return data


def _node(data):
    return data["Nodes"][0]


def _instr(data, *items):
    _node(data)["Transformations"]["Instructions"][1:1] = list(items)


def test_base_model_parses_to_settings_and_contrasts():
    node, values, notes = parse_stats_model(_model(), "m.json")
    assert values["hrf_model"] == "spm" and values["drift_model"] == "cosine" and values["high_pass"] == 0.01
    assert node.contrasts == {"AvB": {"trial_type.A": 1.0, "trial_type.B": -1.0}}
    assert notes == []


@pytest.mark.parametrize("change, where, message", [
    (lambda d: _node(d)["Model"].update(Type="meta"), "Nodes[run].Model.Type",
     "nbdiag audits 'glm' run models; got 'meta'"),
    (lambda d: _node(d)["Transformations"]["Instructions"].append({"Name": "Select", "Input": []}),
     "Nodes[run].Transformations.Instructions[2] (Select)", "no 'Input' given"),
    (lambda d: _node(d)["Transformations"]["Instructions"].append(
        {"Name": "Convolve", "Input": ["x"], "Model": "glover"}),
     "Nodes[run].Transformations", "two Convolve models ('spm' and 'glover')"),
    (lambda d: _node(d)["Transformations"]["Instructions"][1].update(Model="fir", Derivative=True),
     "Nodes[run].Transformations.Instructions[1] (Convolve)", "the fir model takes no derivative or dispersion"),
    (lambda d: _node(d)["Transformations"]["Instructions"][1].update(Model="fir"),
     "Nodes[run]", "the fir HRF needs fir_delays"),
    (lambda d: (_node(d).pop("Transformations"), _node(d)["Model"].update(
        HRF={"Variables": ["trial_type.A"], "Model": "glover", "Parameters": {"PeakDelay": 5}})),
     "Nodes[run].Model.HRF.Parameters", "HRF parameters {'PeakDelay': 5} differ from nilearn's 'glover' HRF"),
    (lambda d: d.update(Input={"task": ["a", "b"]}), "Input.Task", "nbdiag audits one task at a time"),
    (lambda d: d.update(Input={"session": ["1"]}), "Input.session", "nbdiag reads Task, Space and Subject"),
    (lambda d: _node(d)["Contrasts"][0].update(Weights=[1]), "Nodes[run].Contrasts[0] (AvB)",
     "2 conditions but 1 weights"),
    (lambda d: _node(d)["Contrasts"][0].update(Weights=[[1, 0], [0, 1]], Test="F"), "Nodes[run].Contrasts[0] (AvB)",
     "F contrasts with several rows are not audited"),
    (lambda d: _node(d)["Contrasts"][0].update(Weights=[1, "1/0"]), "Nodes[run].Contrasts[0]",
     "invalid weight: expected a number or a fraction such as '1/3'; got '1/0'"),
])
def test_refusals_name_path_and_node(change, where, message):
    with pytest.raises(SettingsError) as exc:
        parse_stats_model(_model(change), "m.json")
    assert str(exc.value).startswith(f"m.json: {where}: ") and message in str(exc.value), str(exc.value)


def test_normalise_defaults_and_notes():
    def change(d):
        d.pop("BIDSModelVersion")
        d["Input"] = {"Task": "nback", "Space": ["MNI", "T1w"], "Subject": ["01"]}
        n = _node(d)
        n["Level"] = "run"
        n.pop("GroupBy")
        n["Model"].pop("Type")
        n["Model"].pop("Options")
        n["Contrasts"][0].pop("Test")
        n["DummyContrasts"] = {"Contrasts": ["trial_type.A"]}
        d["Nodes"].append({"Level": "Run", "Name": "run2", "GroupBy": ["run"], "Model": {"Type": "glm", "X": [1]}})
        d["Nodes"].append({"Level": "Subject", "Name": "sub", "GroupBy": ["subject"],
                           "Model": {"Type": "glm", "X": [1]}})
        n["Transformations"]["Instructions"][1].update(Model="spm", Derivative=True)
        n["Model"]["HRF"] = {"Variables": ["trial_type.A"], "Model": "glover"}
    node, values, notes = parse_stats_model(_model(change), "m.json")
    assert values["task_label"] == "nback" and values["space_label"] is None and values["sub_labels"] == ["01"]
    assert values["hrf_model"] == "spm + derivative" and values["drift_model"] is None
    assert "no BIDSModelVersion: read as 1.0.0" in notes
    assert "node run: no Model.Type: read as 'glm' (pybids' default)" in notes
    assert "node run: contrast 'AvB' has no Test: read as 't'" in notes
    assert "3 run-level nodes; nbdiag audits the first, 'run'" not in notes  # two run nodes
    assert "2 run-level nodes; nbdiag audits the first, 'run'" in notes
    assert "higher-level nodes not audited by nbdiag: run2, sub" in notes
    assert any(n.startswith("Model.HRF ('glover') differs from the Convolve transformation ('spm + derivative')")
               for n in notes)
    assert node.contrasts["trial_type.A"] == {"trial_type.A": 1.0} and "AvB" in node.contrasts


def test_hrf_dispersion_from_model_hrf():
    def change(d):
        _node(d).pop("Transformations")
        _node(d)["Model"]["HRF"] = {"Variables": ["trial_type.A"], "Model": "DoubleGamma",
                                    "Parameters": {"Derivative": True, "Dispersion": True, "PeakDelay": 6}}
    _, values, notes = parse_stats_model(_model(change), "m.json")
    assert values["hrf_model"] == "spm + derivative + dispersion"
    assert any(n.startswith("Model.HRF convolves ['trial_type.A'] with 'spm + derivative + dispersion'")
               for n in notes)


def test_load_stats_model_file_problems(tmp_path):
    with pytest.raises(SettingsError, match=r"--model: file not found: .*none\.json"):
        load_stats_model(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(SettingsError, match=r"bad\.json: not valid JSON"):
        load_stats_model(bad)
    good = tmp_path / "good.json"
    good.write_text(json.dumps(BASE))
    assert load_stats_model(good)[0].name == "run"


@pytest.mark.parametrize("items, message", [
    ([{"Name": "Select", "Input": ["nothing*"]}], "Select transformation: no variable matches Input ['nothing*']"),
    ([{"Name": "Factor", "Input": ["rt"], "Constraint": "drop_one"}],
     "Factor constraint 'drop_one' is not supported (only 'none')"),
    ([{"Name": "Factor", "Input": ["trans_x"]}], "Factor applies to events.tsv columns; 'trans_x' is a confound"),
    ([{"Name": "Rename", "Input": ["trans_x"], "Output": []}], "Rename: 1 inputs but 0 outputs"),
    ([{"Name": "Rename", "Input": ["trans_*"], "Output": ["t"]}], "Rename: variable 'trans_*' does not exist"),
    ([{"Name": "Replace", "Input": ["rt"], "Replace": {"x": 1}, "Attribute": "color"}],
     "Replace attribute 'color': expected value, onset or duration"),
    ([{"Name": "Scale", "Input": ["const"]}], "Scale: variable 'const' is constant (1.0); pybids refuses"),
    ([{"Name": "Scale", "Input": ["rt"]}], "Scale needs numbers in variable 'rt'"),
])
def test_transformation_errors(items, message):
    data = _model(lambda d: _instr(d, *items))
    node, _, _ = parse_stats_model(data, "m.json")
    with pytest.raises(InputError) as exc:
        design_inputs(node, EVENTS, CONF, events_path="ev.tsv")
    assert message in exc.value.message and exc.value.file == "ev.tsv", exc.value.message


def test_transformations_on_dense_variables_and_x_errors():
    data = _model(lambda d: (
        _instr(d, {"Name": "Replace", "Input": ["trans_x"], "Replace": {0.0: 5.0}},
               {"Name": "Threshold", "Input": ["trans_x"], "Threshold": -2, "Signed": False, "Above": True},
               {"Name": "Scale", "Input": ["trans_x"], "Output": ["tx_na"], "ReplaceNa": "after", "Rescale": False}),
        _node(d)["Model"].update(X=["trial_type.A", "trans_x", "tx_na", 1])))
    node, _, _ = parse_stats_model(data, "m.json")
    table, conf, unmodeled, notes = design_inputs(node, EVENTS.drop(columns="rt"), CONF)
    # Replace 0 -> 5, |x| >= 2 keeps 5, 2, 3 (1 -> 0); Scale demeans only
    np.testing.assert_allclose(conf["trans_x"], [5.0, 0.0, 2.0, 3.0])
    np.testing.assert_allclose(conf["tx_na"], np.array([5.0, 0.0, 2.0, 3.0]) - 2.5)
    assert table["trial_type"].tolist() == ["trial_type.A", "trial_type.A"]
    assert unmodeled["trial_type"].tolist() == ["B"] and unmodeled["reason"].tolist() == ["not in the model's X"]

    not_convolved = _model(lambda d: _node(d)["Transformations"]["Instructions"][1].update(Input=["trial_type.A"]))
    node, _, _ = parse_stats_model(not_convolved, "m.json")
    with pytest.raises(InputError, match="Model.X variable 'trial_type.B' is an event variable that no Convolve"):
        design_inputs(node, EVENTS, CONF)
    dense_conv = _model(lambda d: (_node(d)["Transformations"]["Instructions"][1].update(
        Input=["trial_type.*", "trans_x"]), _node(d)["Model"].update(X=["trial_type.A", "trans_x"])))
    node, _, _ = parse_stats_model(dense_conv, "m.json")
    with pytest.raises(InputError, match="Convolve of the dense variable 'trans_x' is not supported"):
        design_inputs(node, EVENTS, CONF)


def test_nan_confounds_replaced_with_zero_and_noted():
    data = _model(lambda d: _node(d)["Model"].update(X=["trial_type.A", "trial_type.B", "trans_x", 1]))
    node, _, _ = parse_stats_model(data, "m.json")
    conf = CONF.assign(trans_x=[np.nan, 1.0, np.nan, 3.0])
    _, out, _, notes = design_inputs(node, EVENTS, conf)
    np.testing.assert_array_equal(out["trans_x"], [0.0, 1.0, 0.0, 3.0])
    assert "NaNs in trans_x replaced with 0 (as pybids does)" in notes
