"""Config validation: every bad value is refused with a message naming where, key, expected and got."""

from __future__ import annotations

import pytest

from nbdiag.config import SettingsError, config_from_mapping, load_config, update_events, update_model
from nbdiag.config import EventSettings, ModelSettings


def _err(data) -> str:
    with pytest.raises(SettingsError) as exc:
        config_from_mapping(data, "cfg.toml")
    return str(exc.value)


@pytest.mark.parametrize("model, expected", [
    ({"derivatives_folder": ""}, "cfg.toml.model: invalid value for 'derivatives_folder': expected a folder path "
                                 "relative to BIDS_DIR; got ''"),
    ({"img_filters": [["desc"]]}, "invalid value for 'img_filters': expected pairs of (entity, label)"),
    ({"img_filters": [["colour", "red"]]}, "invalid value for 'img_filters entity': expected one of"),
    ({"t_r": "2"}, "invalid value for 't_r': expected a number; got '2'"),
    ({"t_r": float("inf")}, "invalid value for 't_r': expected a finite number; got inf"),
    ({"t_r": -2}, "invalid value for 't_r': expected a number > 0; got -2"),
    ({"slice_time_ref": 1.5}, "invalid value for 'slice_time_ref': expected a number between 0.0 and 1.0; got 1.5"),
    ({"drift_order": 1.5}, "invalid value for 'drift_order': expected an integer; got 1.5"),
    ({"fir_delays": [0, -1]}, "invalid value for 'fir_delays': expected a number between 0 and 1000; got -1"),
    ({"min_onset": "early"}, "invalid value for 'min_onset': expected a number; got 'early'"),
    ({"hrf_model": "boxcar"}, "invalid value for 'hrf_model': expected one of"),
    ({"confounds_strategy": 3}, "invalid value for 'confounds_strategy': expected a list of items from"),
    ({"confounds_strategy": ["motion", "magic"]}, "invalid value for 'confounds_strategy': expected items from"),
    ({"confounds_strategy": ["compcor"]}, "nilearn's load_confounds requires 'high_pass' with 'compcor'; "
                                          "got ['compcor']"),
    ({"noise_model": "ar0"}, "invalid value for 'noise_model': expected 'ols' or 'arN'"),
    ({"apply_sample_masks": "yes"}, "invalid value for 'apply_sample_masks': expected true or false; got 'yes'"),
    ({"confounds_motion": "huge"}, "invalid value for 'confounds_motion': expected one of"),
    ({"confounds_n_compcor": 0}, "invalid value for 'confounds_n_compcor': expected a number between 1 and 10000"),
    ({"confounds_fd_threshold": 0}, "invalid value for 'confounds_fd_threshold': expected a number > 0; got 0"),
    ({"confounds_demean": 1}, "invalid value for 'confounds_demean': expected true or false; got 1"),
    ({"confounds_ica_aroma": "x"}, "invalid value for 'confounds_ica_aroma': expected one of 'full', 'basic'"),
    ({"smoothing": 5}, "cfg.toml.model: unknown key 'smoothing'; allowed keys: "),
])
def test_model_values_refused(model, expected):
    msg = _err({"model": model})
    assert expected in msg, msg
    assert msg.startswith("cfg.toml.model: ")


def test_model_values_accepted():
    m = update_model(ModelSettings(), {
        "img_filters": {"desc": "preproc"}, "sub_labels": ["sub-01", 2], "space_label": "",
        "confounds_strategy": "none", "confounds_n_compcor": "all", "confounds_scrub": 0,
        "confounds_demean": False, "drift_model": "None", "fir_delays": 2, "min_onset": -10})
    assert m.img_filters == (("desc", "preproc"),)
    assert m.sub_labels == ("01", "2") and m.space_label is None
    assert m.confounds_strategy is None and m.drift_model is None
    assert m.fir_delays == (2,) and m.min_onset == -10.0
    assert m.confounds["n_compcor"] == "all" and m.confounds["scrub"] == 0 and m.confounds["demean"] is False
    m2 = update_model(ModelSettings(), {"img_filters": ["desc=preproc"],
                                        "confounds_strategy": ["compcor", "high_pass"]})
    assert m2.img_filters == (("desc", "preproc"),) and m2.confounds_strategy == ("compcor", "high_pass")


@pytest.mark.parametrize("events, expected", [
    ({"rename": {"A": ""}}, "invalid value for 'rename 'A'': expected a new trial_type name"),
    ({"rename": ["A"]}, "invalid value for 'rename': expected OLD=NEW pairs or a table {OLD = NEW}; got 'A'"),
    ({"rename": ["A= "]}, "invalid value for 'rename': expected OLD=NEW with both names non-empty; got 'A= '"),
    ({"drop": [True]}, "invalid value for 'drop': expected trial_type names (strings); got True"),
    ({"transform": ["nope"]}, "invalid value for 'transform': expected 'rtdur' or a plugin "
                              "'package.module:function'; got 'nope'"),
    ({"rt_column": ""}, "invalid value for 'rt_column': expected a non-empty string; got ''"),
    ({"colour": 1}, "unknown key 'colour'; allowed keys: rename, drop, transform, rt_column, rtdur_name"),
])
def test_event_values_refused(events, expected):
    msg = _err({"events": events})
    assert msg.startswith("cfg.toml.events: ") and expected in msg, msg


def test_event_values_accepted():
    e = update_events(EventSettings(rename={"X": "x"}), {
        "rename": ["A=a", "B=b"], "drop": ["junk", 3], "transforms": "rtdur", "rtdur_name": "RT"})
    assert e.rename == {"X": "x", "A": "a", "B": "b"} and e.drop == ("junk", "3")
    assert e.transforms == ("rtdur",) and e.rtdur_name == "RT"


@pytest.mark.parametrize("data, expected", [
    ({"colour": {}}, "cfg.toml: unknown table [colour]; allowed: contrasts, events, limits, measure, model, "
                     "thresholds, variants"),
    ({"model": 3}, "cfg.toml: invalid value for 'model': expected a table; got 3"),
    ({"thresholds": 3}, "cfg.toml: invalid value for 'thresholds': expected a table; got 3"),
    ({"contrasts": {"c": ""}}, "cfg.toml.contrasts: invalid value for 'contrast 'c'': expected a nilearn contrast "
                               "expression string; got ''"),
    ({"contrasts": ["a - b", 3]}, "cfg.toml.contrasts: invalid value for 'contrast': expected a nilearn contrast "
                                  "expression string; got 3"),
    ({"measure": "eeg"}, "cfg.toml: invalid value for 'measure': expected one of 'confounds', 'bold', 'none'"),
    ({"limits": {"max_scans": 0}}, "cfg.toml.limits: invalid value for 'max_scans': expected an integer >= 1"),
    ({"variants": {"a-b": {}}}, "cfg.toml [variants]: invalid value for 'variant name': expected a BIDS label"),
    ({"variants": {"v": 3}}, "cfg.toml: invalid value for 'variants.v': expected a table; got 3"),
    ({"variants": {"v": {"sparkle": 1}}}, "cfg.toml [variants.v]: unknown key 'sparkle'; expected the tables"),
])
def test_tables_refused(data, expected):
    msg = _err(data)
    assert expected in msg, msg


def test_flat_keys_and_variants_applied():
    cfg = config_from_mapping({"model": {"t_r": 2.0}, "contrasts": ["a - b"],
                               "limits": {"max_scans": 99}, "measure": "none",
                               "variants": {"v1": {"hrf_model": "glover", "transform": ["rtdur"]}}}, "cfg.toml")
    assert cfg.base.model.t_r == 2.0 and cfg.base.events.transforms == ()
    assert cfg.base.contrasts == {"a - b": "a - b"} and cfg.base.limits.max_scans == 99
    (v1,) = cfg.all_variants()
    assert v1.variant == "v1" and v1.model.hrf_model == "glover" and v1.model.t_r == 2.0
    assert v1.events.transforms == ("rtdur",)
    assert v1.limits.max_scans == 99 and v1.measure == "none"


def test_load_config_file_problems(tmp_path):
    with pytest.raises(SettingsError, match="config file not found: .*nope.toml"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(SettingsError, match="expected a TOML file, found a folder"):
        load_config(tmp_path)
    bom = tmp_path / "bom.toml"
    bom.write_bytes(b"\xef\xbb\xbf[model]\n")
    with pytest.raises(SettingsError, match=r"starts with a UTF-8 byte-order mark \(BOM\)"):
        load_config(bom)
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b'[events]\nrename = { "caf\xe9" = "cafe" }\n')
    with pytest.raises(SettingsError, match=r"not UTF-8 text \(byte 24\)"):
        load_config(latin)
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\n")
    with pytest.raises(SettingsError, match=r"bad.toml: not valid TOML"):
        load_config(bad)
    good = tmp_path / "good.toml"
    good.write_text('[model]\nt_r = 1.5\n[variants.x]\n')
    assert load_config(good).variants["x"].model.t_r == 1.5


@pytest.mark.parametrize("value, expected", [
    ({"vif_wrn": 5}, "cfg.toml.thresholds: unknown threshold 'vif_wrn'; allowed: vif_warn, vif_fail"),
    ({"vif_warn": -1}, "cfg.toml.thresholds: threshold 'vif_warn' must be a finite non-negative number; got -1"),
    ({"vif_warn": float("inf")}, "threshold 'vif_warn' must be a finite non-negative number; got inf"),
    ({"vif_warn": "5"}, "threshold 'vif_warn' must be a finite non-negative number; got '5'"),
])
def test_thresholds_refused(value, expected):
    assert expected in _err({"thresholds": value})


def test_thresholds_applied():
    cfg = config_from_mapping({"thresholds": {"vif_warn": 4, "vif_fail": 8.5}}, "cfg.toml")
    assert (cfg.base.thresholds.vif_warn, cfg.base.thresholds.vif_fail) == (4.0, 8.5)
    from nbdiag.core.thresholds import Thresholds

    assert config_from_mapping({"thresholds": {}}, "cfg.toml").base.thresholds == Thresholds()
