"""Python API: contrast typos refused before auditing (first buildable run), thresholds mapping, save(group)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pandas as pd
import pytest
from nilearn.glm.first_level import FirstLevelModel

import nbdiag
from nbdiag.config import SettingsError

EVENTS = pd.DataFrame({"onset": [10.0, 40.0, 70.0, 100.0], "duration": [10.0] * 4,
                       "trial_type": ["a", "b", "a", "b"]})
IMG = SimpleNamespace(shape=(2, 2, 2, 60))


def test_contrast_typo_refused_using_the_first_buildable_run():
    broken = EVENTS.drop(columns="duration")  # run 0 cannot be built: run 1 is checked
    with pytest.raises(SettingsError) as exc:
        nbdiag.audit_model(FirstLevelModel(t_r=2.0), [IMG, IMG], [broken, EVENTS], contrasts=["a - nope"])
    msg = str(exc.value)
    assert msg.startswith("contrasts refused before any run was audited:")
    assert "nope" in msg and "run-02" in msg


def test_thresholds_mapping_and_save_with_group(tmp_path):
    audit = nbdiag.audit_model(FirstLevelModel(t_r=2.0, subject_label="01"), IMG, EVENTS,
                               contrasts={"AvB": "a - b"}, thresholds={"vif_warn": 1.0})
    (record,) = audit.records
    assert record["settings"]["thresholds"]["vif_warn"] == 1.0
    assert list(audit.findings.columns) == ["run", "variant", "contrast", "code", "severity", "title", "message"]
    out = audit.save(tmp_path / "out", reports=False, group=True)
    runs = pd.read_csv(out / "group" / "nbdiag_runs.tsv", sep="\t", dtype=str)
    assert runs["subject"].tolist() == ["01"] and runs["variant"].tolist() == ["default"]
    written = json.loads(next(out.rglob("*_nbdiag.json")).read_text())
    assert written["contrasts"]["AvB"]["vector"] == record["contrasts"]["AvB"]["vector"]
    with pytest.raises(SettingsError, match="thresholds: unknown threshold 'vif'"):
        nbdiag.audit_model(FirstLevelModel(t_r=2.0), IMG, EVENTS, thresholds={"vif": 1})
