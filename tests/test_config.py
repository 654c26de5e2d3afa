"""Settings: TOML + CLI, nilearn names, variants, validation messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbdiag.config import (
    UNSET, Config, SettingsError, config_from_mapping, load_config, override_config,
)
from nbdiag.demo.run import CONFIG as DEMO_CONFIG


def test_demo_toml_reproduces_the_forum_call():
    config = load_config(DEMO_CONFIG)
    names = [s.variant for s in config.all_variants()]
    assert names == ["nortdur", "rtdur", "compcor"]
    nortdur, rtdur = config.variants["nortdur"], config.variants["rtdur"]
    m = nortdur.model
    assert (m.task_label, m.space_label, m.img_filters) == ("nback", "MNI152NLin6Asym", (("desc", "preproc"),))
    assert (m.drift_model, m.high_pass) == ("cosine", 0.005)
    # exactly the kwargs first_level_from_bids passes to load_confounds (nilearn defaults for the rest)
    kwargs = m.load_confounds_kwargs()
    assert kwargs["strategy"] == ("motion", "non_steady_state")
    assert kwargs["motion"] == "basic"
    from nilearn.glm.first_level.first_level import _check_kwargs_load_confounds

    expected, _ = _check_kwargs_load_confounds(confounds_strategy=("motion", "non_steady_state"),
                                               confounds_motion="basic")
    assert kwargs == {**expected, "strategy": ("motion", "non_steady_state")}  # the installed nilearn's defaults
    assert dict(nortdur.events.rename) == {"0BACK": "zero_back", "2BACK": "two_back"}
    assert nortdur.events.transforms == () and rtdur.events.transforms == ("rtdur",)
    assert list(nortdur.contrasts) == ["two_back - zero_back", "two_back", "zero_back"]


def test_confounds_strategy_semantics_match_nilearn():
    base = config_from_mapping({"model": {"task_label": "t"}}).base.model
    assert base.confounds_strategy == UNSET and base.load_confounds_kwargs() == {}  # whole file
    none = config_from_mapping({"model": {"task_label": "t", "confounds_strategy": "none"}}).base.model
    assert none.load_confounds_kwargs() is None


def test_default_variant_when_none_configured():
    config = config_from_mapping({"model": {"task_label": "nback"}})
    assert [s.variant for s in config.all_variants()] == ["default"]


def test_cli_values_override_every_variant():
    config = load_config(DEMO_CONFIG)
    config = override_config(config, model={"high_pass": 0.01}, contrasts=["zero_back"])
    assert all(s.model.high_pass == 0.01 for s in config.all_variants())
    assert all(list(s.contrasts) == ["zero_back"] for s in config.all_variants())


@pytest.mark.parametrize("table, words", [
    ({"model": {"hrf_model": "glovr"}}, ["hrf_model", "'glovr'", "'glover'"]),
    ({"model": {"drift_model": "linear"}}, ["drift_model", "'linear'", "'cosine'"]),
    ({"model": {"high_pass": -1}}, ["high_pass", "> 0", "-1"]),
    ({"model": {"slice_time_ref": 2}}, ["slice_time_ref", "between 0.0 and 1.0", "2"]),
    ({"model": {"confounds_strategy": ["motion", "aroma"]}}, ["confounds_strategy", "'aroma'", "wm_csf"]),
    ({"model": {"confounds_strategy": ["compcor"]}}, ["high_pass", "compcor"]),
    ({"model": {"confounds_motion": "all"}}, ["confounds_motion", "'all'", "'basic'"]),
    ({"model": {"img_filters": [["desk", "preproc"]]}}, ["img_filters entity", "'desk'", "desc"]),
    ({"model": {"hpf": 0.01}}, ["unknown key 'hpf'", "high_pass"]),
    ({"events": {"transform": ["rt-dur"]}}, ["transform", "'rt-dur'", "rtdur"]),
    ({"thresholds": {"vif_wrn": 4}}, ["unknown threshold 'vif_wrn'", "vif_warn"]),
    ({"variants": {"rt_dur": {}}}, ["variant name", "letters and digits", "'rt_dur'"]),
    ({"modle": {}}, ["unknown table [modle]"]),
])
def test_invalid_values_name_key_allowed_and_given(table, words):
    with pytest.raises(SettingsError) as info:
        config_from_mapping(table, "cfg.toml")
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_variant_overrides_and_thresholds(tmp_path: Path):
    path = tmp_path / "c.toml"
    path.write_text(
        '[model]\ntask_label = "nback"\nhigh_pass = 0.01\n'
        '[thresholds]\nvif_warn = 4\n'
        '[variants.a]\n'
        '[variants.b.model]\nhigh_pass = 0.008\n'
        '[variants.b.thresholds]\nvif_fail = 8\n'
    )
    config = load_config(path)
    a, b = config.variants["a"], config.variants["b"]
    assert a.model.high_pass == 0.01 and b.model.high_pass == 0.008
    assert a.thresholds.vif_warn == 4 and b.thresholds.vif_warn == 4 and b.thresholds.vif_fail == 8


def test_bad_toml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_config(bad)
    with pytest.raises(SettingsError, match="not found"):
        load_config(tmp_path / "nope.toml")


def test_participant_labels_accept_sub_prefix():
    config = config_from_mapping({"model": {"task_label": "t", "sub_labels": ["sub-01", "02"]}})
    assert config.base.model.sub_labels == ("01", "02")
    assert isinstance(config, Config)
