"""Every settings key rejects a bad value with a message naming the key, what is allowed and what was given."""

from __future__ import annotations

import pytest

from nbdiag.config import Settings, SettingsError, apply_overrides


@pytest.mark.parametrize("table, key, expected", [
    ({"model": {"derivatives_folder": ""}}, "derivatives_folder", "a folder path"),
    ({"model": {"img_filters": [["desc"]]}}, "img_filters", "pairs of (entity, label)"),
    ({"model": {"fir_delays": [0, 1.5]}}, "fir_delays", "an integer"),
    ({"model": {"fir_delays": ["a"]}}, "fir_delays", "an integer"),
    ({"model": {"min_onset": "x"}}, "min_onset", "a number"),
    ({"model": {"high_pass": -1.0}}, "high_pass", "> 0"),
    ({"model": {"confounds_strategy": ["motion", "nope"]}}, "confounds_strategy", "items from"),
    ({"model": {"confounds_strategy": ["compcor"]}}, "confounds_strategy", "requires 'high_pass'"),
    ({"model": {"apply_sample_masks": "yes"}}, "apply_sample_masks", "true or false"),
    ({"model": {"not_a_key": 1}}, "not_a_key", "unknown key"),
    ({"model": {"confounds_ica_aroma": "half"}}, "confounds_ica_aroma", "full"),
    ({"model": {"confounds_n_compcor": 0}}, "confounds_n_compcor", "between 1 and 10000"),
    ({"model": {"confounds_demean": "no"}}, "confounds_demean", "true or false"),
    ({"model": {"confounds_nope": 1}}, "confounds_nope", "unknown key"),
    ({"events": {"rename": ["a:b"]}}, "rename", "OLD=NEW"),
    ({"events": {"rt_column": ""}}, "rt_column", "a non-empty string"),
    ({"events": {"colour": "red"}}, "colour", "allowed keys"),
    ({"contrasts": {"c": ""}}, "contrast 'c'", "a nilearn contrast expression"),
])
def test_bad_values_name_key_allowed_and_given(table, key, expected):
    with pytest.raises(SettingsError) as info:
        apply_overrides(Settings(), table, "cfg.toml")
    text = str(info.value)
    assert "cfg.toml" in text and key in text and expected in text


def test_good_values_are_cleaned():
    s = apply_overrides(Settings(), {"model": {"fir_delays": 2, "confounds_strategy": "none",
                                               "confounds_n_compcor": "all", "confounds_demean": False,
                                               "apply_sample_masks": True, "min_onset": -24},
                                     "events": {"drop": "INSTRUCTION", "rename": ["0BACK=zero_back"],
                                                "rtdur_name": "RT"}}, "cfg.toml")
    assert s.model.fir_delays == (2,) and s.model.confounds_strategy is None
    assert s.model.apply_sample_masks is True and s.model.min_onset == -24
    assert s.events.drop == ("INSTRUCTION",) and s.events.rename == {"0BACK": "zero_back"}
    assert s.events.rtdur_name == "RT"
