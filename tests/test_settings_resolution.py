"""Settings resolved once: every way in ends in ``nbdiag.config.resolve_settings``.

The command line, a TOML file, a parsed mapping, a BIDS Stats Model and the Python API,
given the same model, give equal resolved settings (dataclass equality and ``to_dict``).
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from nbdiag import api
from nbdiag.cli import _load, build_parser
from nbdiag.config import Config, SettingsError, resolve_settings
from nbdiag.inputs.bids_filter import load_bids_filter
from nbdiag.inputs.bids_stats_model import RunNode, load_stats_model
from nbdiag.core.thresholds import Thresholds

DEMO_MODEL = Path(__file__).resolve().parents[1] / "nbdiag" / "demo" / "model-nback_smdl.json"

TOML = """
[model]
task_label = "nback"
space_label = "MNI152NLin6Asym"
hrf_model = "spm"
high_pass = 0.008
confounds_strategy = ["motion", "non_steady_state"]
confounds_motion = "basic"

[events]
rename = { "0BACK" = "zero_back", "2BACK" = "two_back" }

[contrasts]
"two_back - zero_back" = "two_back - zero_back"
"""
ARGV = ["bids", "out", "participant", "--task", "nback", "--space", "MNI152NLin6Asym", "--hrf-model", "spm",
        "--high-pass", "0.008", "--confounds-strategy", "motion", "non_steady_state", "--confounds-motion", "basic",
        "--events-rename", "0BACK=zero_back", "--events-rename", "2BACK=two_back",
        "--contrast", "two_back - zero_back"]
PYTHON = dict(model={"task_label": "nback", "space_label": "MNI152NLin6Asym", "hrf_model": "spm", "high_pass": 0.008,
                     "confounds_strategy": ["motion", "non_steady_state"], "confounds_motion": "basic"},
              events={"rename": {"0BACK": "zero_back", "2BACK": "two_back"}},
              contrasts={"two_back - zero_back": "two_back - zero_back"})


def _cli(argv):
    return _load(build_parser().parse_args(argv))[0]


def _same(*configs: Config) -> None:
    first = configs[0]
    for other in configs[1:]:
        assert other == first
        assert [s.to_dict() for s in other.all_variants()] == [s.to_dict() for s in first.all_variants()]


def test_cli_toml_mapping_and_python_give_equal_settings(tmp_path):
    from nbdiag.config import tomllib

    path = tmp_path / "nbdiag.toml"
    path.write_text(TOML)
    from_toml = resolve_settings(path)
    _same(from_toml, resolve_settings(tomllib.loads(TOML)), _cli(ARGV), resolve_settings(**PYTHON),
          _cli(["bids", "out", "participant", "--config", str(path)]))
    settings = from_toml.all_variants()[0]
    assert (settings.model.hrf_model, settings.model.high_pass, settings.variant) == ("spm", 0.008, "default")
    assert settings.model.load_confounds_kwargs()["motion"] == "basic"


def test_bids_stats_model_from_cli_and_python_give_equal_settings(tmp_path):
    node, values, _ = load_stats_model(DEMO_MODEL)
    from_cli = _cli(["bids", "out", "participant", "--model", str(DEMO_MODEL), "--contrast", "ignored"])
    from_python = resolve_settings(stats_model=node)
    _same(from_cli, from_python)
    settings = from_python.all_variants()[0]
    assert settings.contrasts == dict(node.contrasts) and settings.stats_model is node
    # the node's model is the TOML model with the same values (a stats model has no confounds)
    toml = tmp_path / "same.toml"
    toml.write_text('[model]\ntask_label = "nback"\nspace_label = "MNI152NLin6Asym"\nhrf_model = "glover"\n'
                    'drift_model = "cosine"\nslice_time_ref = 0.0\nhigh_pass = 0.005\nconfounds_strategy = "none"\n')
    assert resolve_settings(toml).base.model == settings.model


def test_the_input_module_only_parses_the_model_into_a_typed_node():
    node, values, _ = load_stats_model(DEMO_MODEL)
    assert isinstance(node, RunNode) and dict(node.model_values) == values
    before = dict(values)
    out = node.config_values()
    assert values == before  # a translation: nothing parsed is changed
    assert out["confounds_strategy"] is None and out["high_pass"] == 0.005 and "fir_delays" in out
    assert node.where == f"{DEMO_MODEL.name} (run node {node.name})"
    # the resolver validates what the node states, naming the node
    bad = replace(node, model_values={**node.model_values, "high_pass": -1.0})
    with pytest.raises(SettingsError, match=r"model-nback_smdl.json \(run node .*\): invalid value for 'high_pass'"):
        resolve_settings(stats_model=bad)
    with pytest.raises(SettingsError, match="stats_model: expected a parsed run node"):
        resolve_settings(stats_model={"model": {}}, require_task=False)


def test_filter_file_and_participant_labels_resolve_in_the_same_place(tmp_path):
    flt = tmp_path / "filter.json"
    flt.write_text(json.dumps({"bold": {"task": "nback", "space": "MNI152NLin6Asym"}}))
    config = resolve_settings(bids_filter=load_bids_filter(flt), participant_labels=["sub-01", "02"])
    model = config.all_variants()[0].model
    assert (model.task_label, model.space_label, model.sub_labels) == ("nback", "MNI152NLin6Asym", ("01", "02"))
    _same(config, _cli(["bids", "out", "participant", "--bids-filter-file", str(flt),
                        "--participant-label", "01", "sub-02"]))
    with pytest.raises(SettingsError, match="participant_label"):
        resolve_settings(model={"task_label": "nback"}, participant_labels=["0 1"])
    with pytest.raises(SettingsError, match="missing setting 'task_label'"):
        resolve_settings()
    assert resolve_settings(require_task=False) == Config()


def test_python_api_settings_come_from_the_resolver():
    base = api._settings(["a - b"], {"vif_warn": 7.0}, "mine")
    expected = resolve_settings(contrasts=["a - b"], thresholds={"vif_warn": 7.0}, variant="mine",
                                require_task=False).base
    assert base == expected and base.variant == "mine" and base.thresholds.vif_warn == 7.0
    assert api._settings(None, Thresholds(vif_warn=8.0), "default").thresholds == Thresholds(vif_warn=8.0)
    with pytest.raises(SettingsError, match="variant"):
        api._settings(None, None, "not a label")
    with pytest.raises(SettingsError, match="contrast"):
        api._settings([""], None, "default")


def test_a_first_level_model_gives_the_settings_the_same_flags_give():
    """The Python API reads a FirstLevelModel's own settings; they equal the command line's."""
    from nilearn.glm.first_level import FirstLevelModel

    from nbdiag.inputs.nilearn_objects import model_settings

    flm = FirstLevelModel(t_r=2.0, slice_time_ref=0.5, hrf_model="spm", drift_model="cosine", high_pass=0.008,
                          min_onset=-12, noise_model="ols")
    cli = _cli(["bids", "out", "participant", "--task", "nback", "--t-r", "2", "--slice-time-ref", "0.5",
                "--hrf-model", "spm", "--high-pass", "0.008", "--min-onset", "-12", "--noise-model", "ols",
                "--confounds-strategy", "none"])
    assert replace(cli.base.model, task_label="") == model_settings(flm)
    # the model's own noise_model is what its fit uses for the measured estimates
    assert model_settings(FirstLevelModel(t_r=2.0)).noise_model == "ar1"
    with pytest.raises(SettingsError, match="noise_model.*read from the FirstLevelModel"):
        model_settings(FirstLevelModel(t_r=2.0, noise_model="gls"))


def test_the_same_bad_value_is_named_the_same_way_from_every_way_in(tmp_path):
    """file/where, key, what was expected and what was found, whichever way the value came in."""
    toml = tmp_path / "bad.toml"
    toml.write_text('[model]\ntask_label = "nback"\nhigh_pass = -1.0\n')
    node, _, _ = load_stats_model(DEMO_MODEL)
    tail = r"invalid value for 'high_pass': expected a number > 0; got -1.0"
    cases = [
        (lambda: resolve_settings(toml), rf"^{re.escape(str(toml))}\.model: {tail}$"),
        (lambda: _cli(["bids", "out", "participant", "--task", "nback", "--high-pass", "-1"]),
         rf"^command line\.model: {tail}$"),
        (lambda: resolve_settings(model={"task_label": "nback", "high_pass": -1.0}), rf"^command line\.model: {tail}$"),
        (lambda: resolve_settings(stats_model=replace(node, model_values={**node.model_values, "high_pass": -1.0})),
         rf"^model-nback_smdl\.json \(run node {node.name}\): {tail}$"),
    ]
    for call, message in cases:
        with pytest.raises(SettingsError, match=message):
            call()
